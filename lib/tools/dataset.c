/*
 * dataset.c — readers that turn public e-commerce datasets and user files
 * into xs_event_t streams (see include/xsell/dataset.h for the formats).
 *
 * Two shapes of reader
 * --------------------
 * jsonl and baskets are streamed: a line is read, turned into events and
 * delivered before the next line is read, so memory does not grow with the
 * file and max_events stops reading early.
 *
 * online-retail and retailrocket must be reordered (by event time, or by a
 * seeded user order) before anything is delivered, so they are read whole
 * first. To keep that affordable, a row is stored as a small fixed-size
 * record of integer ids (about 24-32 bytes) and every string is interned
 * once in a string table (strtab_t below: one byte pool plus an
 * open-addressing index). xs_event_t values are built only at delivery time,
 * one at a time. UCI Online Retail (541,909 rows) needs about 15 MB.
 * Reading errors are therefore reported before the first event is delivered.
 *
 * Ordering and ids (everything here is deterministic: the same input and
 * seed give the same events, ids and times on every machine)
 * -----------------
 * online-retail  Rows are filtered in this order, the first matching rule
 *                counting the row: empty CustomerID -> skipped_no_user;
 *                InvoiceNo starting with 'C' -> skipped_cancelled;
 *                Quantity <= 0, or a non-product StockCode ->
 *                skipped_other. A StockCode is a non-product code when it
 *                holds no ASCII digit (POST, DOT, M, m, D, S, B, CRUK, PADS,
 *                AMAZONFEE, BANK CHARGES, DCGSSBOY, DCGSSGIRL) or is exactly
 *                "C2" (CARRIAGE, a shipping charge that would otherwise
 *                co-occur with everything). Codes are compared exactly (the
 *                file has both 85123A and 85123a; they stay distinct).
 *                The catalog is built from the kept rows only, so every
 *                item a cart event names has exactly one ItemUpdate and no
 *                ItemUpdate carries a stock-adjustment note ("check",
 *                "damaged") as its title: one ItemUpdate per distinct kept
 *                StockCode in order of first kept appearance; title = first
 *                non-empty Description with surrounding spaces trimmed;
 *                family = the StockCode's leading digits when only letters
 *                follow them (85099B -> 85099: colour/print variants),
 *                else none;
 *                price = UnitPrice of the first kept row; ts = earliest
 *                InvoiceDate of any parsed row in the input.
 *                Invoices are grouped by InvoiceNo (even when their rows are
 *                not adjacent). An invoice's time is the earliest
 *                InvoiceDate of its kept rows (a few UCI invoices span two
 *                minutes), its user the CustomerID of its first kept row.
 *                Invoices are delivered by (time, first appearance).
 *                Duplicate StockCodes within an invoice are merged into one
 *                line at the position of the first: quantities are summed
 *                (saturating at INT32_MAX), the unit price of the first
 *                occurrence is kept. InvoiceDate is read as UTC.
 *   retailrocket Kaggle events.csv: ids "rr-<visitor>-v-<item>-<ts>" (view),
 *                "rr-<visitor>-a-<item>-<ts>" (addtocart) and
 *                "rr-<visitor>-p-<transactionid>" (one PURCHASE per
 *                transactionid, placed at the earliest timestamp of its
 *                rows). Rows are delivered by (timestamp, file order).
 *                Identical rows give identical ids, so downstream
 *                deduplication removes them.
 *                caserec: distinct users are put in canonical order
 *                (shorter id first, then bytewise: numeric order for plain
 *                decimal ids), then shuffled by Fisher-Yates with j =
 *                splitmix64() % (i + 1), i from n-1 down to 1, splitmix64
 *                seeded with opts->seed. Ids "rr-<user>-v-<item>",
 *                "rr-<user>-a-<item>", "rr-<user>-p"; times from
 *                2015-06-01T00:00:00Z, +1 s per event.
 *   baskets      The separator is decided per file: comma when the file
 *                holds a comma anywhere, else runs of spaces/tabs. (Deciding
 *                per line would split groceries' one-item baskets such as
 *                "whole milk" into two items.) Basket numbers n continue
 *                across files. An item listed twice in a basket becomes one
 *                line with quantity 2. A line with no items after trimming
 *                (",,") counts as skipped_other. Times: the b-th basket
 *                starts at 2000-01-03T00:00:00Z + (b - 1) minutes (or 1 ms
 *                after the previous basket's PURCHASE, if that is later); its
 *                k-th ADD is at start + k - 1 ms and its PURCHASE at start +
 *                n_items ms, so every event has its own time, in basket
 *                order, and no tie is left to the engine's tie-breaks (item
 *                hashes). The PURCHASE names the basket's items, except in a
 *                basket of more than XS_PROFILE_MAX_ITEMS (24) items: then
 *                only its last 24. The user profile holds 24 items, so the
 *                earlier ones have left it by then, and a PURCHASE naming
 *                them would be a new interaction to the engine, paired with
 *                the basket a second time.
 *   jsonl        File order; the caller is responsible for ordering. Unknown
 *                fields are ignored; a field of the wrong type, an unknown
 *                "type"/"kind" symbol or a missing required field is an
 *                error like a line that does not parse.
 *
 * stats.rows counts non-blank data lines (CSV records), headers excluded.
 * bad_rows (CSV rows with the wrong field count, unparseable numbers or
 * dates) are skipped and logged (the first few per file, then a total).
 */
#include "xsell/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <zlib.h>

#include "xsell/event_json.h"
#include "xsell/hash.h"
#include "xsell/json.h"
#include "xsell/log.h"
#include "xsell/profile.h"

#define XS_DATASET_MAX_LINE (64u << 20) /* one line or CSV record */
#define XS_CSV_MAX_FIELDS 64
#define XS_BAD_ROWS_LOGGED 5                    /* per file */
#define XS_TS_RR_CASEREC INT64_C(1433116800000) /* 2015-06-01T00:00:00Z */
#define XS_TS_BASKETS INT64_C(946857600000)     /* 2000-01-03T00:00:00Z */

static const char *const format_names[XS_FORMAT__COUNT] = {"online-retail", "retailrocket", "jsonl",
                                                           "baskets", "yoochoose"};

/* ======================================================================
 * Public: names and options
 * ====================================================================== */

int xs_dataset_format_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < XS_FORMAT__COUNT; i++)
        if (strcmp(format_names[i], name) == 0)
            return i;
    return -1;
}

const char *xs_dataset_format_name(xs_dataset_format_t fmt)
{
    return ((int)fmt >= 0 && fmt < XS_FORMAT__COUNT) ? format_names[fmt] : "unknown";
}

void xs_dataset_opts_default(xs_dataset_opts_t *opts)
{
    opts->seed = 42;
    opts->max_events = 0;
    opts->progress = NULL;
}

/* ======================================================================
 * Private: growable arrays, string pool and string table
 * ====================================================================== */

/* Makes room for `need` elements of `elem` bytes in *arr (capacity *cap). */
static xs_err_t grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return XS_OK;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return XS_ERR_NOMEM;
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return XS_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return XS_OK;
}

/* Appends s[0..len) + NUL to pool; *off receives its offset. */
static xs_err_t pool_add(xs_buf_t *pool, const char *s, size_t len, uint32_t *off)
{
    if (pool->len + len + 1 > UINT32_MAX)
        return XS_ERR_TOO_LARGE;
    *off = (uint32_t)pool->len;
    xs_err_t err = xs_buf_append(pool, s, len);
    if (!err)
        err = xs_buf_append_u8(pool, 0);
    return err;
}

static const char *pool_str(const xs_buf_t *pool, uint32_t off)
{
    return (const char *)pool->data + off;
}

/* Interns strings: equal strings get the same dense id 0, 1, 2... */
typedef struct strtab {
    xs_buf_t pool;
    uint32_t *off; /* id -> offset in pool */
    size_t n, cap;
    uint32_t *slots; /* id + 1; 0 = empty */
    size_t n_slots;  /* power of two, or 0 */
} strtab_t;

static void strtab_free(strtab_t *t)
{
    xs_buf_free(&t->pool);
    free(t->off);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static const char *strtab_str(const strtab_t *t, uint32_t id)
{
    return pool_str(&t->pool, t->off[id]);
}

static xs_err_t strtab_rehash(strtab_t *t)
{
    size_t n_slots = t->n_slots ? t->n_slots * 2 : 1024;
    uint32_t *slots = calloc(n_slots, sizeof(*slots));
    if (!slots)
        return XS_ERR_NOMEM;
    for (size_t id = 0; id < t->n; id++) {
        const char *s = strtab_str(t, (uint32_t)id);
        size_t i = (size_t)xs_hash(s, strlen(s)) & (n_slots - 1);
        while (slots[i])
            i = (i + 1) & (n_slots - 1);
        slots[i] = (uint32_t)id + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    return XS_OK;
}

static xs_err_t strtab_intern(strtab_t *t, const char *s, size_t len, uint32_t *id, bool *created)
{
    xs_err_t err = XS_OK;
    if ((t->n + 1) * 2 > t->n_slots && (err = strtab_rehash(t)) != XS_OK)
        return err;
    size_t i = (size_t)xs_hash(s, len) & (t->n_slots - 1);
    while (t->slots[i]) {
        uint32_t cand = t->slots[i] - 1;
        const char *c = strtab_str(t, cand);
        if (strncmp(c, s, len) == 0 && c[len] == '\0') {
            *id = cand;
            if (created)
                *created = false;
            return XS_OK;
        }
        i = (i + 1) & (t->n_slots - 1);
    }
    if (t->n >= UINT32_MAX - 1)
        return XS_ERR_TOO_LARGE;
    if ((err = grow((void **)&t->off, &t->cap, t->n + 1, sizeof(*t->off))) != XS_OK)
        return err;
    uint32_t off = 0;
    if ((err = pool_add(&t->pool, s, len, &off)) != XS_OK)
        return err;
    t->off[t->n] = off;
    *id = (uint32_t)t->n;
    t->slots[i] = (uint32_t)t->n + 1;
    t->n++;
    if (created)
        *created = true;
    return XS_OK;
}

/* malloc'd printf; NULL on allocation failure. */
static char *str_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Sets *dst to a copy of s (NULL stays NULL). */
static xs_err_t set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = NULL;
    if (!s)
        return XS_OK;
    *dst = xs_str_dup(s);
    return *dst ? XS_OK : XS_ERR_NOMEM;
}

static bool is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims blanks on both sides of s[0..*len); returns the new start. */
static const char *trim(const char *s, size_t *len)
{
    size_t b = 0, e = *len;
    while (b < e && is_blank((unsigned char)s[b]))
        b++;
    while (e > b && is_blank((unsigned char)s[e - 1]))
        e--;
    *len = e - b;
    return s + b;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool parse_i32(const char *s, int32_t *out)
{
    int64_t v = 0;
    if (!xs_str_parse_i64(s, &v) || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (!*s || is_blank((unsigned char)*s))
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* ======================================================================
 * Private: line reader (plain or gzip through zlib) and CSV records
 * ====================================================================== */

typedef struct line_reader {
    gzFile gz;
    const char *path;
    uint64_t lineno; /* of the line last returned */
    xs_buf_t line;
} line_reader_t;

static xs_err_t lr_open(line_reader_t *lr, const char *path, char *errstr, size_t errstr_size)
{
    memset(lr, 0, sizeof(*lr));
    lr->path = path;
    struct stat st;
    if (stat(path, &st) != 0) {
        xs_err_set(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return XS_ERR_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        xs_err_set(errstr, errstr_size, "%s: is a directory", path);
        return XS_ERR_IO;
    }
    errno = 0;
    lr->gz = gzopen(path, "rb");
    if (!lr->gz) {
        xs_err_set(errstr, errstr_size, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        return XS_ERR_IO;
    }
    gzbuffer(lr->gz, 1 << 17);
    return XS_OK;
}

static void lr_close(line_reader_t *lr)
{
    if (lr->gz)
        gzclose(lr->gz);
    xs_buf_free(&lr->line);
    lr->gz = NULL;
}

/*
 * Next line without its "\n" / "\r\n", NUL-terminated, valid until the next
 * call. XS_ERR_EOF at the end; XS_ERR_IO on a read or gzip error.
 */
static xs_err_t lr_next(line_reader_t *lr, char **line, size_t *len, char *errstr,
                        size_t errstr_size)
{
    xs_err_t err = XS_OK;
    bool eof = false;
    xs_buf_reset(&lr->line);
    for (;;) {
        if ((err = xs_buf_reserve(&lr->line, 8192)) != XS_OK)
            return err;
        char *dst = (char *)lr->line.data + lr->line.len;
        size_t avail = XS_MIN(lr->line.cap - lr->line.len, (size_t)INT_MAX);
        if (!gzgets(lr->gz, dst, (int)avail)) {
            int zerr = Z_OK;
            const char *msg = gzerror(lr->gz, &zerr);
            if (zerr != Z_OK) {
                xs_err_set(errstr, errstr_size, "%s:%" PRIu64 ": read error: %s", lr->path,
                           lr->lineno + 1, zerr == Z_ERRNO ? strerror(errno) : msg);
                return XS_ERR_IO;
            }
            eof = true;
            break;
        }
        size_t n = strlen(dst);
        lr->line.len += n;
        if (n > 0 && dst[n - 1] == '\n')
            break;
        if (lr->line.len > XS_DATASET_MAX_LINE) {
            xs_err_set(errstr, errstr_size, "%s:%" PRIu64 ": line longer than %u bytes", lr->path,
                       lr->lineno + 1, XS_DATASET_MAX_LINE);
            return XS_ERR_TOO_LARGE;
        }
    }
    if (eof && lr->line.len == 0)
        return XS_ERR_EOF;
    lr->lineno++;
    char *s = (char *)lr->line.data;
    size_t n = lr->line.len;
    if (n > 0 && s[n - 1] == '\n')
        n--;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    s[n] = '\0';
    *line = s;
    *len = n;
    return XS_OK;
}

/* One parsed CSV record: fields unescaped into buf, NUL-separated. */
typedef struct csv_record {
    xs_buf_t raw; /* the record's text (several lines when a quoted field has newlines) */
    xs_buf_t buf;
    size_t off[XS_CSV_MAX_FIELDS];
    size_t n_fields; /* may exceed XS_CSV_MAX_FIELDS; only the first are stored */
    uint64_t lineno; /* first line of the record */
    bool malformed;  /* a quote problem; the fields are not reliable */
} csv_record_t;

static void csv_free(csv_record_t *rec)
{
    xs_buf_free(&rec->raw);
    xs_buf_free(&rec->buf);
}

/* Field i, NUL-terminated; owned by rec and writable until the next record. */
static char *csv_field(const csv_record_t *rec, size_t i)
{
    return (char *)rec->buf.data + rec->off[i];
}

/* Splits rec->raw into fields (RFC 4180 quoting when sep is ','). */
static xs_err_t csv_split(csv_record_t *rec, char sep)
{
    xs_err_t err = XS_OK;
    const char *s = (const char *)rec->raw.data;
    size_t n = rec->raw.len, i = 0;
    xs_buf_reset(&rec->buf);
    rec->n_fields = 0;
    rec->malformed = false;
    for (;;) {
        size_t start = rec->buf.len;
        if (i < n && s[i] == '"') {
            i++;
            for (;;) {
                if (i >= n) {
                    rec->malformed = true; /* unterminated quote */
                    break;
                }
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        err = xs_buf_append_u8(&rec->buf, '"');
                        i += 2;
                    } else {
                        i++;
                        break;
                    }
                } else {
                    err = xs_buf_append_u8(&rec->buf, (uint8_t)s[i++]);
                }
                if (err)
                    return err;
            }
            if (i < n && s[i] != sep)
                rec->malformed = true; /* text after the closing quote */
            while (i < n && s[i] != sep)
                i++;
        } else {
            size_t b = i;
            while (i < n && s[i] != sep)
                i++;
            if ((err = xs_buf_append(&rec->buf, s + b, i - b)) != XS_OK)
                return err;
        }
        if ((err = xs_buf_append_u8(&rec->buf, 0)) != XS_OK)
            return err;
        if (rec->n_fields < XS_CSV_MAX_FIELDS)
            rec->off[rec->n_fields] = start;
        rec->n_fields++;
        if (i >= n)
            break;
        i++; /* the separator */
    }
    return XS_OK;
}

/*
 * Next non-blank record. With sep ',' a quoted field may span lines: lines
 * are joined while the record holds an odd number of quote characters.
 */
static xs_err_t csv_next(line_reader_t *lr, csv_record_t *rec, char sep, char *errstr,
                         size_t errstr_size)
{
    xs_err_t err = XS_OK;
    char *line = NULL;
    size_t len = 0;
    do {
        if ((err = lr_next(lr, &line, &len, errstr, errstr_size)) != XS_OK)
            return err;
    } while (len == 0);
    rec->lineno = lr->lineno;
    xs_buf_reset(&rec->raw);
    size_t quotes = 0;
    for (;;) {
        if ((err = xs_buf_append(&rec->raw, line, len)) != XS_OK)
            return err;
        if (sep != ',')
            break;
        for (size_t i = 0; i < len; i++)
            quotes += line[i] == '"';
        if (quotes % 2 == 0)
            break;
        if (rec->raw.len > XS_DATASET_MAX_LINE) {
            xs_err_set(errstr, errstr_size, "%s:%" PRIu64 ": record longer than %u bytes", lr->path,
                       rec->lineno, XS_DATASET_MAX_LINE);
            return XS_ERR_TOO_LARGE;
        }
        err = lr_next(lr, &line, &len, errstr, errstr_size);
        if (err == XS_ERR_EOF)
            break; /* unterminated quote: csv_split marks it malformed */
        if (err)
            return err;
        if ((err = xs_buf_append_u8(&rec->raw, '\n')) != XS_OK)
            return err;
    }
    return csv_split(rec, sep);
}

/* Column index of `name` in a header record (case-insensitive), or -1. */
static int csv_column(const csv_record_t *rec, const char *name)
{
    size_t n = XS_MIN(rec->n_fields, (size_t)XS_CSV_MAX_FIELDS);
    for (size_t i = 0; i < n; i++) {
        const char *f = csv_field(rec, i);
        if (i == 0 && (unsigned char)f[0] == 0xEF && (unsigned char)f[1] == 0xBB &&
            (unsigned char)f[2] == 0xBF)
            f += 3; /* UTF-8 byte order mark */
        size_t len = strlen(f);
        f = trim(f, &len);
        if (len == strlen(name) && strncasecmp(f, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* ======================================================================
 * Private: delivery to the callback
 * ====================================================================== */

typedef struct sink {
    xs_dataset_cb cb;
    void *opaque;
    uint64_t max_events;
    _Atomic uint64_t *progress; /* NULL, or the events delivered so far */
    xs_dataset_stats_t *stats;
    bool limit_reached;
    xs_event_t ev;       /* reused for every event */
    uint64_t bad_logged; /* bad rows logged for the current file */
} sink_t;

/*
 * Delivers s->ev and clears it. XS_ERR_EOF (with limit_reached) once
 * max_events have been delivered; the callback's error otherwise.
 */
static xs_err_t emit(sink_t *s)
{
    xs_err_t err = XS_OK;
    if (s->limit_reached) {
        err = XS_ERR_EOF;
        goto out;
    }
    s->stats->events++;
    if (s->progress)
        atomic_store_explicit(s->progress, s->stats->events, memory_order_relaxed);
    if (s->ev.kind == XS_KIND_ITEM)
        s->stats->catalog_events++;
    err = s->cb(s->opaque, &s->ev);
    if (!err && s->max_events && s->stats->events >= s->max_events) {
        s->limit_reached = true;
        err = XS_ERR_EOF;
    }
out:
    xs_event_clear(&s->ev);
    return err;
}

static void bad_row(sink_t *s, const char *path, uint64_t lineno, const char *why)
{
    s->stats->bad_rows++;
    if (s->bad_logged++ < XS_BAD_ROWS_LOGGED)
        XS_WARN("skipping bad row", "path=%s line=%" PRIu64 " reason=\"%s\"", path, lineno, why);
}

static void bad_rows_summary(sink_t *s, const char *path)
{
    if (s->bad_logged > XS_BAD_ROWS_LOGGED)
        XS_WARN("skipped bad rows", "path=%s count=%" PRIu64, path, s->bad_logged);
    s->bad_logged = 0;
}

/* Fills s->ev as a cart event (lines are added by the caller). */
static xs_err_t cart_event(sink_t *s, int type, char *event_id, const char *user_id,
                           const char *session_id, const char *order_id, const char *currency,
                           int64_t ts)
{
    xs_event_t *ev = &s->ev;
    xs_event_clear(ev);
    xs_event_init(ev, XS_KIND_CART);
    ev->type = type;
    ev->event_id = event_id; /* takes ownership */
    ev->ts = ts;
    if (!event_id)
        return XS_ERR_NOMEM;
    xs_err_t err = set_str(&ev->user_id, user_id);
    if (!err)
        err = set_str(&ev->session_id, session_id);
    if (!err)
        err = set_str(&ev->order_id, order_id);
    if (!err)
        err = set_str(&ev->currency, currency);
    return err;
}

/* ======================================================================
 * Private: online-retail (UCI)
 * ====================================================================== */

typedef struct or_row {
    uint32_t invoice;
    uint32_t item;
    int32_t qty;
    double price;
} or_row_t;

typedef struct or_invoice {
    int64_t ts;
    uint32_t customer; /* offset in text */
    uint32_t n_rows;
    uint32_t start; /* into the grouped row order */
} or_invoice_t;

typedef struct or_item {
    uint32_t title; /* offset in text + 1; 0 = none yet */
    double price;
} or_item_t;

typedef struct or_ctx {
    strtab_t invoices, items;
    xs_buf_t text; /* customers and titles */
    or_row_t *rows;
    size_t n_rows, cap_rows;
    or_invoice_t *inv;
    size_t cap_inv;
    or_item_t *item;
    size_t cap_item;
    int64_t earliest;
    bool have_earliest;
} or_ctx_t;

enum { OR_INVOICE, OR_CODE, OR_DESC, OR_QTY, OR_DATE, OR_PRICE, OR_CUSTOMER, OR__COUNT };
static const char *const or_columns[OR__COUNT] = {
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"};

static bool or_is_product(const char *code)
{
    if (strcmp(code, "C2") == 0)
        return false;
    for (const char *p = code; *p; p++)
        if (*p >= '0' && *p <= '9')
            return true;
    return false;
}

static xs_err_t or_keep_row(or_ctx_t *c, const char *invoice, const char *code, const char *desc,
                            int32_t qty, int64_t ts, double price, const char *customer)
{
    xs_err_t err = XS_OK;
    uint32_t inv = 0, item = 0, off = 0;
    bool created = false;
    if ((err = strtab_intern(&c->invoices, invoice, strlen(invoice), &inv, &created)) != XS_OK)
        return err;
    if (created) {
        if ((err = grow((void **)&c->inv, &c->cap_inv, inv + 1, sizeof(*c->inv))) != XS_OK)
            return err;
        if ((err = pool_add(&c->text, customer, strlen(customer), &off)) != XS_OK)
            return err;
        c->inv[inv] = (or_invoice_t){ts, off, 0, 0};
    } else if (ts < c->inv[inv].ts) {
        c->inv[inv].ts = ts;
    }
    c->inv[inv].n_rows++;

    if ((err = strtab_intern(&c->items, code, strlen(code), &item, &created)) != XS_OK)
        return err;
    if (created) {
        if ((err = grow((void **)&c->item, &c->cap_item, item + 1, sizeof(*c->item))) != XS_OK)
            return err;
        c->item[item] = (or_item_t){0, price};
    }
    size_t dlen = strlen(desc);
    const char *d = trim(desc, &dlen);
    if (c->item[item].title == 0 && dlen > 0) {
        if ((err = pool_add(&c->text, d, dlen, &off)) != XS_OK)
            return err;
        c->item[item].title = off + 1;
    }

    if (c->n_rows >= UINT32_MAX)
        return XS_ERR_TOO_LARGE;
    if ((err = grow((void **)&c->rows, &c->cap_rows, c->n_rows + 1, sizeof(*c->rows))) != XS_OK)
        return err;
    c->rows[c->n_rows++] = (or_row_t){inv, item, qty, price};
    return XS_OK;
}

static xs_err_t or_read_file(or_ctx_t *c, sink_t *s, const char *path, char *errstr,
                             size_t errstr_size)
{
    xs_err_t err = XS_OK;
    line_reader_t lr = {0};
    csv_record_t rec = {0};
    int col[OR__COUNT];
    size_t n_cols = 0;

    if ((err = lr_open(&lr, path, errstr, errstr_size)) != XS_OK)
        goto out;
    err = csv_next(&lr, &rec, ',', errstr, errstr_size);
    if (err == XS_ERR_EOF) {
        xs_err_set(errstr, errstr_size, "%s:1: empty file (expected an Online Retail header)",
                   path);
        err = XS_ERR_DECODE;
    }
    if (err)
        goto out;
    for (int i = 0; i < OR__COUNT; i++) {
        if ((col[i] = csv_column(&rec, or_columns[i])) < 0) {
            xs_err_set(errstr, errstr_size,
                       "%s:%" PRIu64 ": no %s column (not an Online Retail CSV)", path, rec.lineno,
                       or_columns[i]);
            err = XS_ERR_DECODE;
            goto out;
        }
    }
    n_cols = rec.n_fields;

    while ((err = csv_next(&lr, &rec, ',', errstr, errstr_size)) == XS_OK) {
        s->stats->rows++;
        if (rec.malformed || rec.n_fields != n_cols) {
            bad_row(s, path, rec.lineno, rec.malformed ? "bad quoting" : "wrong field count");
            continue;
        }
        char *f[OR__COUNT];
        for (int i = 0; i < OR__COUNT; i++)
            f[i] = csv_field(&rec, (size_t)col[i]);
        int32_t qty = 0;
        int64_t ts = 0;
        double price = 0;
        if (!parse_i32(f[OR_QTY], &qty)) {
            bad_row(s, path, rec.lineno, "bad Quantity");
            continue;
        }
        if (!xs_event_time_parse(f[OR_DATE], &ts)) {
            bad_row(s, path, rec.lineno, "bad InvoiceDate");
            continue;
        }
        if (!parse_double(f[OR_PRICE], &price)) {
            bad_row(s, path, rec.lineno, "bad UnitPrice");
            continue;
        }
        if (!c->have_earliest || ts < c->earliest) {
            c->earliest = ts;
            c->have_earliest = true;
        }
        size_t clen = strlen(f[OR_CUSTOMER]), ilen = strlen(f[OR_INVOICE]);
        char *customer = (char *)trim(f[OR_CUSTOMER], &clen);
        char *invoice = (char *)trim(f[OR_INVOICE], &ilen);
        if (clen == 0) {
            s->stats->skipped_no_user++;
            continue;
        }
        if (ilen == 0) {
            bad_row(s, path, rec.lineno, "empty InvoiceNo");
            continue;
        }
        if (invoice[0] == 'C' || invoice[0] == 'c') {
            s->stats->skipped_cancelled++;
            continue;
        }
        if (qty <= 0 || !or_is_product(f[OR_CODE])) {
            s->stats->skipped_other++;
            continue;
        }
        customer[clen] = '\0'; /* trimmed in place */
        invoice[ilen] = '\0';
        if ((err = or_keep_row(c, invoice, f[OR_CODE], f[OR_DESC], qty, ts, price, customer)) !=
            XS_OK)
            goto out;
    }
    if (err == XS_ERR_EOF)
        err = XS_OK;
out:
    bad_rows_summary(s, path);
    csv_free(&rec);
    lr_close(&lr);
    return err;
}

/* qsort_r comparator; ctx is the invoice array (no globals: readers may run
 * in several threads at once). */
static int or_cmp_invoice(const void *a, const void *b, void *ctx)
{
    const or_invoice_t *inv = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t tx = inv[x].ts, ty = inv[y].ts;
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return x < y ? -1 : x > y;
}

typedef struct or_line {
    uint32_t item;
    int32_t qty;
    double price;
} or_line_t;

static xs_err_t or_emit_invoice(or_ctx_t *c, sink_t *s, uint32_t inv, const uint32_t *grouped,
                                or_line_t *merged)
{
    xs_err_t err = XS_OK;
    const or_invoice_t *in = &c->inv[inv];
    const char *invoice = strtab_str(&c->invoices, inv);
    const char *customer = pool_str(&c->text, in->customer);
    size_t n = 0;
    for (uint32_t k = 0; k < in->n_rows; k++) {
        const or_row_t *r = &c->rows[grouped[in->start + k]];
        size_t j = 0;
        while (j < n && merged[j].item != r->item)
            j++;
        if (j == n) {
            merged[n++] = (or_line_t){r->item, r->qty, r->price};
        } else {
            int64_t q = (int64_t)merged[j].qty + r->qty;
            merged[j].qty = q > INT32_MAX ? INT32_MAX : (int32_t)q;
        }
    }
    for (size_t j = 0; j < n; j++) {
        err = cart_event(s, XS_CART_ADD, str_fmt("%s-%zu", invoice, j + 1), customer, invoice,
                         invoice, "GBP", in->ts);
        if (!err)
            err = xs_event_add_line(&s->ev, strtab_str(&c->items, merged[j].item), merged[j].qty,
                                    merged[j].price, true);
        if (err || (err = emit(s)) != XS_OK)
            return err;
    }
    err = cart_event(s, XS_CART_PURCHASE, str_fmt("%s-P", invoice), customer, invoice, invoice,
                     "GBP", in->ts);
    for (size_t j = 0; j < n && !err; j++)
        err = xs_event_add_line(&s->ev, strtab_str(&c->items, merged[j].item), merged[j].qty,
                                merged[j].price, true);
    if (!err)
        err = emit(s);
    return err;
}

/* The product family of a StockCode: its leading digits when only ASCII
 * letters follow them (85099B, 85099C and 85099F are colour variants of
 * 85099; 22423 is its own family), else none (NULL: DCGS0003, gift_0001_10). */
static xs_err_t or_family(const char *code, char **out)
{
    size_t d = 0;
    while (code[d] >= '0' && code[d] <= '9')
        d++;
    if (!d)
        return XS_OK;
    for (size_t i = d; code[i]; i++)
        if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= 'a' && code[i] <= 'z')))
            return XS_OK;
    *out = xs_str_ndup(code, d);
    return *out ? XS_OK : XS_ERR_NOMEM;
}

static xs_err_t or_deliver(or_ctx_t *c, sink_t *s)
{
    xs_err_t err = XS_OK;
    uint32_t *order = NULL, *grouped = NULL;
    or_line_t *merged = NULL;
    size_t n_inv = c->invoices.n, max_rows = 0;

    /* Catalog first. */
    for (size_t i = 0; i < c->items.n; i++) {
        xs_event_t *ev = &s->ev;
        xs_event_init(ev, XS_KIND_ITEM);
        ev->ts = c->earliest;
        ev->price = c->item[i].price;
        ev->has_price = true;
        ev->in_stock = true;
        err = set_str(&ev->item_id, strtab_str(&c->items, (uint32_t)i));
        if (!err)
            err = or_family(ev->item_id, &ev->family);
        if (!err && c->item[i].title)
            err = set_str(&ev->title, pool_str(&c->text, c->item[i].title - 1));
        if (err || (err = emit(s)) != XS_OK)
            goto out;
    }
    if (n_inv == 0)
        goto out;

    /* Group rows by invoice (counting sort keeps file order inside each). */
    order = malloc(n_inv * sizeof(*order));
    grouped = malloc((c->n_rows ? c->n_rows : 1) * sizeof(*grouped));
    if (!order || !grouped) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    uint32_t start = 0;
    for (size_t i = 0; i < n_inv; i++) {
        c->inv[i].start = start;
        start += c->inv[i].n_rows;
        max_rows = XS_MAX(max_rows, (size_t)c->inv[i].n_rows);
        c->inv[i].n_rows = 0;
        order[i] = (uint32_t)i;
    }
    for (size_t r = 0; r < c->n_rows; r++) {
        or_invoice_t *in = &c->inv[c->rows[r].invoice];
        grouped[in->start + in->n_rows++] = (uint32_t)r;
    }
    qsort_r(order, n_inv, sizeof(*order), or_cmp_invoice, c->inv);

    if (!(merged = malloc(max_rows * sizeof(*merged)))) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_inv; i++)
        if ((err = or_emit_invoice(c, s, order[i], grouped, merged)) != XS_OK)
            goto out;
out:
    free(order);
    free(grouped);
    free(merged);
    return err;
}

static xs_err_t read_online_retail(const char *const *paths, size_t n_paths, sink_t *s,
                                   char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    or_ctx_t c = {0};
    for (size_t i = 0; i < n_paths; i++)
        if ((err = or_read_file(&c, s, paths[i], errstr, errstr_size)) != XS_OK)
            goto out;
    err = or_deliver(&c, s);
out:
    strtab_free(&c.invoices);
    strtab_free(&c.items);
    xs_buf_free(&c.text);
    free(c.rows);
    free(c.inv);
    free(c.item);
    return err;
}

/* ======================================================================
 * Private: retailrocket (Kaggle events.csv and the caserec subset)
 * ====================================================================== */

enum { RR_VIEW = 0, RR_ADD = 1, RR_PURCHASE = 2 };

typedef struct rr_unit {
    int64_t ts;
    uint32_t seq;     /* file order, for stability */
    uint32_t visitor; /* id in users */
    uint32_t ref;     /* item id (view/add) or transaction id (purchase) */
    uint8_t kind;     /* RR_* */
} rr_unit_t;

typedef struct rr_tx_row {
    uint32_t tx;
    uint32_t item;
} rr_tx_row_t;

typedef struct rr_tx {
    uint32_t unit; /* index of its rr_unit_t */
    uint32_t n_rows;
    uint32_t start; /* into the grouped tx rows */
} rr_tx_t;

typedef struct rr_ctx {
    strtab_t users, items, txids;
    /* Kaggle */
    rr_unit_t *units;
    size_t n_units, cap_units;
    rr_tx_row_t *tx_rows;
    size_t n_tx_rows, cap_tx_rows;
    rr_tx_t *tx;
    size_t cap_tx;
    /* caserec (reuses units: ts unused, ref = item, kind = role) */
    uint32_t n_rows;
} rr_ctx_t;

static xs_err_t rr_add_unit(rr_ctx_t *c, int64_t ts, uint32_t visitor, uint32_t ref, int kind)
{
    xs_err_t err = XS_OK;
    if (c->n_units >= UINT32_MAX)
        return XS_ERR_TOO_LARGE;
    if ((err = grow((void **)&c->units, &c->cap_units, c->n_units + 1, sizeof(*c->units))) != XS_OK)
        return err;
    c->units[c->n_units] = (rr_unit_t){ts, (uint32_t)c->n_units, visitor, ref, (uint8_t)kind};
    c->n_units++;
    return XS_OK;
}

enum { RK_TS, RK_VISITOR, RK_EVENT, RK_ITEM, RK_TX, RK__COUNT };
static const char *const rk_columns[RK__COUNT] = {"timestamp", "visitorid", "event", "itemid",
                                                  "transactionid"};

static xs_err_t rr_kaggle_row(rr_ctx_t *c, sink_t *s, const char *path, const csv_record_t *rec,
                              const int *col, size_t n_cols)
{
    xs_err_t err = XS_OK;
    const char *f[RK__COUNT] = {0};
    int64_t ts = 0;
    uint32_t visitor = 0, item = 0, tx = 0;
    bool created = false;

    if (rec->malformed || rec->n_fields != n_cols) {
        bad_row(s, path, rec->lineno, rec->malformed ? "bad quoting" : "wrong field count");
        return XS_OK;
    }
    for (int i = 0; i < RK__COUNT; i++)
        f[i] = col[i] >= 0 ? csv_field(rec, (size_t)col[i]) : "";
    if (!xs_str_parse_i64(f[RK_TS], &ts)) {
        bad_row(s, path, rec->lineno, "bad timestamp");
        return XS_OK;
    }
    int kind = strcmp(f[RK_EVENT], "view") == 0          ? RR_VIEW
               : strcmp(f[RK_EVENT], "addtocart") == 0   ? RR_ADD
               : strcmp(f[RK_EVENT], "transaction") == 0 ? RR_PURCHASE
                                                         : -1;
    if (kind < 0) {
        bad_row(s, path, rec->lineno, "unknown event");
        return XS_OK;
    }
    if (!*f[RK_ITEM] || (kind == RR_PURCHASE && !*f[RK_TX])) {
        bad_row(s, path, rec->lineno, kind == RR_PURCHASE ? "no transactionid" : "no itemid");
        return XS_OK;
    }
    if (!*f[RK_VISITOR]) {
        s->stats->skipped_no_user++;
        return XS_OK;
    }
    if ((err = strtab_intern(&c->users, f[RK_VISITOR], strlen(f[RK_VISITOR]), &visitor, NULL)) ||
        (err = strtab_intern(&c->items, f[RK_ITEM], strlen(f[RK_ITEM]), &item, NULL)))
        return err;
    if (kind != RR_PURCHASE)
        return rr_add_unit(c, ts, visitor, item, kind);

    if ((err = strtab_intern(&c->txids, f[RK_TX], strlen(f[RK_TX]), &tx, &created)) != XS_OK)
        return err;
    if (created) {
        if ((err = grow((void **)&c->tx, &c->cap_tx, tx + 1, sizeof(*c->tx))) != XS_OK)
            return err;
        c->tx[tx] = (rr_tx_t){(uint32_t)c->n_units, 0, 0};
        if ((err = rr_add_unit(c, ts, visitor, tx, RR_PURCHASE)) != XS_OK)
            return err;
    } else if (ts < c->units[c->tx[tx].unit].ts) {
        c->units[c->tx[tx].unit].ts = ts;
    }
    c->tx[tx].n_rows++;
    if ((err = grow((void **)&c->tx_rows, &c->cap_tx_rows, c->n_tx_rows + 1,
                    sizeof(*c->tx_rows))) != XS_OK)
        return err;
    c->tx_rows[c->n_tx_rows++] = (rr_tx_row_t){tx, item};
    return XS_OK;
}

static int rr_role_of(const char *path)
{
    const char *b = base_name(path);
    if (strncmp(b, "view_", 5) == 0)
        return RR_VIEW;
    if (strncmp(b, "add_to_cart_", 12) == 0)
        return RR_ADD;
    if (strncmp(b, "purchase_", 9) == 0)
        return RR_PURCHASE;
    return -1;
}

/* Reads one file; role >= 0 for caserec files, -1 for a Kaggle events.csv. */
static xs_err_t rr_read_file(rr_ctx_t *c, sink_t *s, const char *path, int role, char *errstr,
                             size_t errstr_size)
{
    xs_err_t err = XS_OK;
    line_reader_t lr = {0};
    csv_record_t rec = {0};
    char sep = role >= 0 ? '\t' : ',';
    int col[RK__COUNT];
    size_t n_cols = 0;

    if ((err = lr_open(&lr, path, errstr, errstr_size)) != XS_OK)
        goto out;
    err = csv_next(&lr, &rec, sep, errstr, errstr_size);
    if (err == XS_ERR_EOF) {
        xs_err_set(errstr, errstr_size, "%s:1: empty file (expected a header)", path);
        err = XS_ERR_DECODE;
    }
    if (err)
        goto out;
    n_cols = rec.n_fields;
    for (int i = 0; i < RK__COUNT; i++)
        col[i] = csv_column(&rec, rk_columns[i]);
    if (role >= 0) {
        if (col[RK_VISITOR] < 0 || col[RK_ITEM] < 0) {
            xs_err_set(errstr, errstr_size,
                       "%s:%" PRIu64
                       ": expected a tab-separated header visitorid<TAB>itemid<TAB>event",
                       path, rec.lineno);
            err = XS_ERR_DECODE;
            goto out;
        }
    } else if (col[RK_TS] < 0 || col[RK_VISITOR] < 0 || col[RK_EVENT] < 0 || col[RK_ITEM] < 0) {
        xs_err_set(errstr, errstr_size,
                   "%s:%" PRIu64
                   ": expected header timestamp,visitorid,event,itemid[,transactionid] "
                   "(caserec files must be named view_*, add_to_cart_* or purchase_*)",
                   path, rec.lineno);
        err = XS_ERR_DECODE;
        goto out;
    }

    while ((err = csv_next(&lr, &rec, sep, errstr, errstr_size)) == XS_OK) {
        s->stats->rows++;
        if (role < 0) {
            if ((err = rr_kaggle_row(c, s, path, &rec, col, n_cols)) != XS_OK)
                goto out;
            continue;
        }
        if (rec.n_fields != n_cols) {
            bad_row(s, path, rec.lineno, "wrong field count");
            continue;
        }
        const char *user = csv_field(&rec, (size_t)col[RK_VISITOR]);
        const char *itemid = csv_field(&rec, (size_t)col[RK_ITEM]);
        uint32_t u = 0, it = 0;
        if (!*itemid) {
            bad_row(s, path, rec.lineno, "no itemid");
            continue;
        }
        if (!*user) {
            s->stats->skipped_no_user++;
            continue;
        }
        if ((err = strtab_intern(&c->users, user, strlen(user), &u, NULL)) != XS_OK ||
            (err = strtab_intern(&c->items, itemid, strlen(itemid), &it, NULL)) != XS_OK ||
            (err = rr_add_unit(c, 0, u, it, role)) != XS_OK)
            goto out;
    }
    if (err == XS_ERR_EOF)
        err = XS_OK;
out:
    bad_rows_summary(s, path);
    csv_free(&rec);
    lr_close(&lr);
    return err;
}

static int rr_cmp_units_time(const void *a, const void *b)
{
    const rr_unit_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Adds item with quantity 1 to ev, or bumps the quantity of an equal line. */
static xs_err_t add_or_merge_line(xs_event_t *ev, const char *item_id, double price, bool has_price)
{
    for (size_t i = 0; i < ev->n_lines; i++) {
        if (strcmp(ev->lines[i].item_id, item_id) == 0) {
            if (ev->lines[i].quantity < INT32_MAX)
                ev->lines[i].quantity++;
            return XS_OK;
        }
    }
    return xs_event_add_line(ev, item_id, 1, price, has_price);
}

static xs_err_t rr_emit_single(sink_t *s, const char *user, const char *item, int kind,
                               char *event_id, int64_t ts)
{
    xs_err_t err = XS_OK;
    if (kind == RR_VIEW) {
        xs_event_init(&s->ev, XS_KIND_CLICK);
        s->ev.type = XS_CLICK_PRODUCT_VIEW;
        s->ev.event_id = event_id;
        s->ev.ts = ts;
        if (!event_id)
            return XS_ERR_NOMEM;
        if ((err = set_str(&s->ev.user_id, user)) || (err = set_str(&s->ev.item_id, item)))
            return err;
    } else {
        if ((err = cart_event(s, XS_CART_ADD, event_id, user, NULL, NULL, NULL, ts)) ||
            (err = xs_event_add_line(&s->ev, item, 1, 0, false)))
            return err;
    }
    return emit(s);
}

static xs_err_t rr_deliver_kaggle(rr_ctx_t *c, sink_t *s)
{
    xs_err_t err = XS_OK;
    uint32_t *grouped = NULL;
    size_t n_tx = c->txids.n;

    /* Group transaction rows (counting sort, file order inside). */
    grouped = malloc((c->n_tx_rows ? c->n_tx_rows : 1) * sizeof(*grouped));
    if (!grouped) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    uint32_t start = 0;
    for (size_t t = 0; t < n_tx; t++) {
        c->tx[t].start = start;
        start += c->tx[t].n_rows;
        c->tx[t].n_rows = 0;
    }
    for (size_t r = 0; r < c->n_tx_rows; r++) {
        rr_tx_t *tx = &c->tx[c->tx_rows[r].tx];
        grouped[tx->start + tx->n_rows++] = (uint32_t)r;
    }
    /* Sorting moves units, so a transaction is found through unit->ref. */
    qsort(c->units, c->n_units, sizeof(*c->units), rr_cmp_units_time);

    for (size_t i = 0; i < c->n_units; i++) {
        const rr_unit_t *u = &c->units[i];
        const char *user = strtab_str(&c->users, u->visitor);
        if (u->kind != RR_PURCHASE) {
            const char *item = strtab_str(&c->items, u->ref);
            char *id =
                str_fmt("rr-%s-%c-%s-%" PRId64, user, u->kind == RR_VIEW ? 'v' : 'a', item, u->ts);
            if ((err = rr_emit_single(s, user, item, u->kind, id, u->ts)) != XS_OK)
                goto out;
            continue;
        }
        const rr_tx_t *tx = &c->tx[u->ref];
        const char *txid = strtab_str(&c->txids, u->ref);
        err = cart_event(s, XS_CART_PURCHASE, str_fmt("rr-%s-p-%s", user, txid), user, NULL, txid,
                         NULL, u->ts);
        for (uint32_t k = 0; k < tx->n_rows && !err; k++)
            err = add_or_merge_line(
                &s->ev, strtab_str(&c->items, c->tx_rows[grouped[tx->start + k]].item), 0, false);
        if (err || (err = emit(s)) != XS_OK)
            goto out;
    }
out:
    free(grouped);
    return err;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int rr_cmp_user_ids(const void *a, const void *b, void *ctx)
{
    const strtab_t *users = ctx;
    const char *x = strtab_str(users, *(const uint32_t *)a);
    const char *y = strtab_str(users, *(const uint32_t *)b);
    size_t lx = strlen(x), ly = strlen(y);
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x, y);
}

static int rr_cmp_units_user(const void *a, const void *b, void *ctx)
{
    const rr_unit_t *x = a, *y = b;
    const uint32_t *rank = ctx;
    uint32_t rx = rank[x->visitor], ry = rank[y->visitor];
    if (rx != ry)
        return rx < ry ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static xs_err_t rr_deliver_caserec(rr_ctx_t *c, sink_t *s, uint64_t seed)
{
    xs_err_t err = XS_OK;
    uint32_t *users = NULL, *rank = NULL;
    size_t n = c->users.n;
    int64_t ts = XS_TS_RR_CASEREC;

    if (n == 0)
        goto out;
    users = malloc(n * sizeof(*users));
    rank = malloc(n * sizeof(*rank));
    if (!users || !rank) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        users[i] = (uint32_t)i;
    qsort_r(users, n, sizeof(*users), rr_cmp_user_ids, &c->users);
    uint64_t state = seed;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(splitmix64(&state) % (uint64_t)(i + 1));
        uint32_t tmp = users[i];
        users[i] = users[j];
        users[j] = tmp;
    }
    for (size_t i = 0; i < n; i++)
        rank[users[i]] = (uint32_t)i;
    qsort_r(c->units, c->n_units, sizeof(*c->units), rr_cmp_units_user, rank);

    for (size_t i = 0; i < c->n_units;) {
        uint32_t visitor = c->units[i].visitor;
        const char *user = strtab_str(&c->users, visitor);
        for (; i < c->n_units && c->units[i].visitor == visitor && c->units[i].kind != RR_PURCHASE;
             i++) {
            const rr_unit_t *u = &c->units[i];
            const char *item = strtab_str(&c->items, u->ref);
            char *id = str_fmt("rr-%s-%c-%s", user, u->kind == RR_VIEW ? 'v' : 'a', item);
            if ((err = rr_emit_single(s, user, item, u->kind, id, ts)) != XS_OK)
                goto out;
            ts += 1000;
        }
        if (i < c->n_units && c->units[i].visitor == visitor) {
            char *id = str_fmt("rr-%s-p", user);
            err = cart_event(s, XS_CART_PURCHASE, id, user, NULL, id ? id : "", NULL, ts);
            for (; i < c->n_units && c->units[i].visitor == visitor && !err; i++)
                err = add_or_merge_line(&s->ev, strtab_str(&c->items, c->units[i].ref), 0, false);
            if (err || (err = emit(s)) != XS_OK)
                goto out;
            ts += 1000;
        }
    }
out:
    free(users);
    free(rank);
    return err;
}

/* Appends the caserec files inside directory `dir` (sorted by name) to *files. */
static xs_err_t rr_list_dir(const char *dir, char ***files, size_t *n_files, size_t *cap_files,
                            char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    DIR *d = opendir(dir);
    size_t first = *n_files;
    if (!d) {
        xs_err_set(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        return XS_ERR_IO;
    }
    struct dirent *de = NULL;
    while ((de = readdir(d)) != NULL) {
        if (rr_role_of(de->d_name) < 0)
            continue;
        if ((err = grow((void **)files, cap_files, *n_files + 1, sizeof(**files))) != XS_OK)
            goto out;
        char *p = str_fmt("%s/%s", dir, de->d_name);
        if (!p) {
            err = XS_ERR_NOMEM;
            goto out;
        }
        (*files)[(*n_files)++] = p;
    }
    if (*n_files == first) {
        xs_err_set(errstr, errstr_size,
                   "%s: no view_*, add_to_cart_* or purchase_* files in directory", dir);
        err = XS_ERR_IO;
    }
out:
    closedir(d);
    return err;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static xs_err_t read_retailrocket(const char *const *paths, size_t n_paths, uint64_t seed,
                                  sink_t *s, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    rr_ctx_t c = {0};
    char **files = NULL;
    size_t n_files = 0, cap_files = 0, n_caserec = 0, n_kaggle = 0;

    for (size_t i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            size_t before = n_files;
            err = rr_list_dir(paths[i], &files, &n_files, &cap_files, errstr, errstr_size);
            if (err)
                goto out;
            qsort(files + before, n_files - before, sizeof(*files), cmp_strp);
            n_caserec += n_files - before;
            continue;
        }
        if ((err = grow((void **)&files, &cap_files, n_files + 1, sizeof(*files))) != XS_OK)
            goto out;
        if (!(files[n_files] = xs_str_dup(paths[i]))) {
            err = XS_ERR_NOMEM;
            goto out;
        }
        n_files++;
        if (rr_role_of(paths[i]) >= 0)
            n_caserec++;
        else
            n_kaggle++;
    }
    if (n_caserec && n_kaggle) {
        xs_err_set(errstr, errstr_size,
                   "retailrocket: cannot mix events.csv files with caserec files");
        err = XS_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < n_files; i++)
        if ((err = rr_read_file(&c, s, files[i], n_caserec ? rr_role_of(files[i]) : -1, errstr,
                                errstr_size)) != XS_OK)
            goto out;
    err = n_caserec ? rr_deliver_caserec(&c, s, seed) : rr_deliver_kaggle(&c, s);
out:
    for (size_t i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    strtab_free(&c.users);
    strtab_free(&c.items);
    strtab_free(&c.txids);
    free(c.units);
    free(c.tx_rows);
    free(c.tx);
    return err;
}

/* ======================================================================
 * Private: yoochoose (RecSys Challenge 2015 clicks, session-rec layout)
 * ====================================================================== */

/* "1396437466.94" (epoch seconds, up to millisecond decimals) -> epoch ms. */
static bool parse_epoch_seconds(const char *f, int64_t *ms)
{
    const char *dot = strchr(f, '.');
    char whole[24];
    size_t wl = dot ? (size_t)(dot - f) : strlen(f);
    int64_t sec = 0, frac = 0;
    if (wl == 0 || wl >= sizeof(whole))
        return false;
    memcpy(whole, f, wl);
    whole[wl] = '\0';
    if (!xs_str_parse_i64(whole, &sec) || sec < 0 || sec > INT64_MAX / 1000 - 1)
        return false;
    if (dot) {
        const char *p = dot + 1;
        int n = 0;
        if (!*p)
            return false;
        for (; *p; p++, n++) {
            if (!isdigit((unsigned char)*p))
                return false;
            if (n < 3)
                frac = frac * 10 + (*p - '0');
        }
        for (; n < 3; n++)
            frac *= 10;
    }
    *ms = sec * 1000 + frac;
    return true;
}

static xs_err_t yc_read_file(rr_ctx_t *c, sink_t *s, const char *path, char *errstr,
                             size_t errstr_size)
{
    xs_err_t err = XS_OK;
    line_reader_t lr = {0};
    csv_record_t rec = {0};
    int c_session = -1, c_item = -1, c_time = -1;
    size_t n_cols = 0;
    if ((err = lr_open(&lr, path, errstr, errstr_size)) != XS_OK)
        goto out;
    err = csv_next(&lr, &rec, '\t', errstr, errstr_size);
    if (err == XS_ERR_EOF) {
        xs_err_set(errstr, errstr_size, "%s:1: empty file (expected a header)", path);
        err = XS_ERR_DECODE;
    }
    if (err)
        goto out;
    n_cols = rec.n_fields;
    c_session = csv_column(&rec, "SessionId");
    c_item = csv_column(&rec, "ItemId");
    c_time = csv_column(&rec, "Time");
    if (c_session < 0 || c_item < 0 || c_time < 0) {
        xs_err_set(errstr, errstr_size,
                   "%s:%" PRIu64 ": expected a tab-separated header SessionId<TAB>ItemId<TAB>Time",
                   path, rec.lineno);
        err = XS_ERR_DECODE;
        goto out;
    }
    while ((err = csv_next(&lr, &rec, '\t', errstr, errstr_size)) == XS_OK) {
        s->stats->rows++;
        if (rec.n_fields != n_cols) {
            bad_row(s, path, rec.lineno, "wrong field count");
            continue;
        }
        const char *session = csv_field(&rec, (size_t)c_session);
        const char *item = csv_field(&rec, (size_t)c_item);
        int64_t ts = 0;
        uint32_t u = 0, it = 0;
        if (!*item) {
            bad_row(s, path, rec.lineno, "no ItemId");
            continue;
        }
        if (!parse_epoch_seconds(csv_field(&rec, (size_t)c_time), &ts)) {
            bad_row(s, path, rec.lineno, "bad Time");
            continue;
        }
        if (!*session) {
            s->stats->skipped_no_user++;
            continue;
        }
        if ((err = strtab_intern(&c->users, session, strlen(session), &u, NULL)) != XS_OK ||
            (err = strtab_intern(&c->items, item, strlen(item), &it, NULL)) != XS_OK ||
            (err = rr_add_unit(c, ts, u, it, RR_VIEW)) != XS_OK)
            goto out;
    }
    if (err == XS_ERR_EOF)
        err = XS_OK;
out:
    bad_rows_summary(s, path);
    csv_free(&rec);
    lr_close(&lr);
    return err;
}

static xs_err_t read_yoochoose(const char *const *paths, size_t n_paths, sink_t *s, char *errstr,
                               size_t errstr_size)
{
    xs_err_t err = XS_OK;
    rr_ctx_t c = {0};
    for (size_t i = 0; i < n_paths && !err; i++)
        err = yc_read_file(&c, s, paths[i], errstr, errstr_size);
    if (!err)
        qsort(c.units, c.n_units, sizeof(*c.units), rr_cmp_units_time);
    for (size_t i = 0; i < c.n_units && !err; i++) {
        const rr_unit_t *u = &c.units[i];
        const char *session = strtab_str(&c.users, u->visitor);
        const char *item = strtab_str(&c.items, u->ref);
        xs_event_init(&s->ev, XS_KIND_CLICK);
        s->ev.type = XS_CLICK_PRODUCT_VIEW;
        s->ev.ts = u->ts;
        if (!(s->ev.event_id = str_fmt("yc-%s-%s-%" PRId64, session, item, u->ts)))
            err = XS_ERR_NOMEM;
        if (!err && !(err = set_str(&s->ev.user_id, session)) &&
            !(err = set_str(&s->ev.session_id, session)) && !(err = set_str(&s->ev.item_id, item)))
            err = emit(s);
    }
    strtab_free(&c.users);
    strtab_free(&c.items);
    free(c.units);
    return err;
}

/* ======================================================================
 * Private: baskets
 * ====================================================================== */

/* True when the file holds a comma anywhere (then ',' separates items). */
static xs_err_t file_has_comma(line_reader_t *lr, bool *has, char *errstr, size_t errstr_size)
{
    char buf[65536];
    int n = 0;
    *has = false;
    while ((n = gzread(lr->gz, buf, sizeof(buf))) > 0) {
        if (memchr(buf, ',', (size_t)n)) {
            *has = true;
            break;
        }
    }
    int zerr = Z_OK;
    const char *msg = gzerror(lr->gz, &zerr);
    if (n < 0 || zerr != Z_OK) {
        xs_err_set(errstr, errstr_size, "%s: read error: %s", lr->path,
                   zerr == Z_ERRNO ? strerror(errno) : msg);
        return XS_ERR_IO;
    }
    if (gzrewind(lr->gz) != 0) {
        xs_err_set(errstr, errstr_size, "%s: cannot rewind", lr->path);
        return XS_ERR_IO;
    }
    return XS_OK;
}

static xs_err_t baskets_line(sink_t *s, char *line, size_t len, bool comma, uint64_t n,
                             uint64_t *basket_no, int64_t *clock)
{
    xs_err_t err = XS_OK;
    char user[32];
    snprintf(user, sizeof(user), "basket-%" PRIu64, n);
    /* A basket starts on its minute, or after the previous one when that
     * ran over; its events are 1 ms apart (see the file header). */
    int64_t ts = XS_TS_BASKETS + (int64_t)*basket_no * 60000;
    if (ts <= *clock)
        ts = *clock + 1;
    xs_event_t basket;
    xs_event_init(&basket, XS_KIND_CART);

    /* Collect the distinct items first (in order), then emit. */
    size_t i = 0;
    while (i < len) {
        size_t b = i;
        if (comma) {
            while (i < len && line[i] != ',')
                i++;
        } else {
            while (i < len && is_blank((unsigned char)line[i]))
                i++;
            b = i;
            while (i < len && !is_blank((unsigned char)line[i]))
                i++;
        }
        size_t ilen = i - b;
        char *item = (char *)trim(line + b, &ilen);
        i++;
        if (ilen == 0)
            continue;
        char saved = item[ilen];
        item[ilen] = '\0';
        err = add_or_merge_line(&basket, item, 0, false);
        item[ilen] = saved;
        if (err)
            goto out;
    }
    if (basket.n_lines == 0) {
        s->stats->skipped_other++;
        goto out;
    }
    (*basket_no)++;
    for (size_t k = 0; k < basket.n_lines; k++) {
        err = cart_event(s, XS_CART_ADD, str_fmt("%s-%zu", user, k + 1), user, user, NULL, NULL,
                         ts + (int64_t)k);
        if (!err)
            err = xs_event_add_line(&s->ev, basket.lines[k].item_id, basket.lines[k].quantity, 0,
                                    false);
        if (err || (err = emit(s)) != XS_OK)
            goto out;
    }
    *clock = ts + (int64_t)basket.n_lines;
    err = cart_event(s, XS_CART_PURCHASE, str_fmt("%s-P", user), user, user, user, NULL, *clock);
    if (!err) {
        /* Hand the collected lines over to the event: the last
         * XS_PROFILE_MAX_ITEMS, those the profile still holds from their ADD
         * (naming the earlier ones again would count their pairs twice). */
        size_t skip =
            basket.n_lines > XS_PROFILE_MAX_ITEMS ? basket.n_lines - XS_PROFILE_MAX_ITEMS : 0;
        for (size_t k = 0; k < skip; k++)
            free(basket.lines[k].item_id);
        memmove(basket.lines, basket.lines + skip, (basket.n_lines - skip) * sizeof(*basket.lines));
        s->ev.lines = basket.lines;
        s->ev.n_lines = basket.n_lines - skip;
        basket.lines = NULL;
        basket.n_lines = 0;
        err = emit(s);
    }
out:
    xs_event_clear(&basket);
    return err;
}

static xs_err_t read_baskets(const char *const *paths, size_t n_paths, sink_t *s, char *errstr,
                             size_t errstr_size)
{
    xs_err_t err = XS_OK;
    uint64_t line_base = 0, basket_no = 0;
    int64_t clock = INT64_MIN;
    line_reader_t lr = {0};
    for (size_t p = 0; p < n_paths && !err; p++) {
        bool comma = false;
        char *line = NULL;
        size_t len = 0;
        if ((err = lr_open(&lr, paths[p], errstr, errstr_size)) != XS_OK ||
            (err = file_has_comma(&lr, &comma, errstr, errstr_size)) != XS_OK)
            goto out;
        while ((err = lr_next(&lr, &line, &len, errstr, errstr_size)) == XS_OK) {
            size_t tlen = len;
            trim(line, &tlen);
            if (tlen == 0)
                continue;
            s->stats->rows++;
            if ((err = baskets_line(s, line, len, comma, line_base + lr.lineno, &basket_no,
                                    &clock)) != XS_OK)
                goto out;
        }
        if (err == XS_ERR_EOF)
            err = XS_OK;
        line_base += lr.lineno;
        lr_close(&lr);
    }
out:
    lr_close(&lr);
    return err;
}

/* ======================================================================
 * Private: jsonl
 * ====================================================================== */

static xs_err_t read_jsonl(const char *const *paths, size_t n_paths, sink_t *s, char *errstr,
                           size_t errstr_size)
{
    xs_err_t err = XS_OK;
    line_reader_t lr = {0};
    xs_json_t *root = NULL;
    char why[256];
    for (size_t p = 0; p < n_paths; p++) {
        char *line = NULL;
        size_t len = 0;
        if ((err = lr_open(&lr, paths[p], errstr, errstr_size)) != XS_OK)
            goto out;
        while ((err = lr_next(&lr, &line, &len, errstr, errstr_size)) == XS_OK) {
            size_t tlen = len;
            trim(line, &tlen);
            if (tlen == 0)
                continue;
            s->stats->rows++;
            why[0] = '\0';
            if (!(root = xs_json_parse(line, len, why, sizeof(why)))) {
                err = XS_ERR_DECODE;
            } else {
                err = xs_event_json_decode(root, &s->ev, why, sizeof(why));
                xs_json_free(root);
                root = NULL;
            }
            if (err == XS_ERR_NOMEM)
                goto out;
            if (err) {
                /* The parser saw one line: "line 1 col 7: ..." -> "col 7: ...". */
                const char *msg = strncmp(why, "line 1 col ", 11) == 0 ? why + 7 : why;
                xs_event_clear(&s->ev);
                s->stats->bad_rows++;
                xs_err_set(errstr, errstr_size, "%s:%" PRIu64 ": %s", paths[p], lr.lineno,
                           msg[0] ? msg : "invalid JSON");
                goto out;
            }
            if ((err = emit(s)) != XS_OK)
                goto out;
        }
        if (err != XS_ERR_EOF)
            goto out;
        err = XS_OK;
        lr_close(&lr);
    }
out:
    xs_json_free(root);
    lr_close(&lr);
    return err;
}

/* ======================================================================
 * Public: the reader
 * ====================================================================== */

xs_err_t xs_dataset_read(xs_dataset_format_t fmt, const char *const *paths, size_t n_paths,
                         const xs_dataset_opts_t *opts, xs_dataset_cb cb, void *opaque,
                         xs_dataset_stats_t *stats, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    xs_dataset_opts_t defaults;
    xs_dataset_stats_t local = {0};
    sink_t s = {0};

    xs_err_set(errstr, errstr_size, "%s", "");
    if (!opts) {
        xs_dataset_opts_default(&defaults);
        opts = &defaults;
    }
    if ((int)fmt < 0 || fmt >= XS_FORMAT__COUNT || !cb || n_paths == 0 || !paths) {
        xs_err_set(errstr, errstr_size, "invalid arguments to xs_dataset_read");
        err = XS_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < n_paths; i++) {
        if (!paths[i]) {
            xs_err_set(errstr, errstr_size, "invalid arguments to xs_dataset_read");
            err = XS_ERR_INVALID;
            goto out;
        }
    }
    s.cb = cb;
    s.opaque = opaque;
    s.max_events = opts->max_events;
    s.progress = opts->progress;
    s.stats = &local;
    xs_event_init(&s.ev, XS_KIND_CLICK);

    switch (fmt) {
    case XS_FORMAT_ONLINE_RETAIL:
        err = read_online_retail(paths, n_paths, &s, errstr, errstr_size);
        break;
    case XS_FORMAT_RETAILROCKET:
        err = read_retailrocket(paths, n_paths, opts->seed, &s, errstr, errstr_size);
        break;
    case XS_FORMAT_JSONL:
        err = read_jsonl(paths, n_paths, &s, errstr, errstr_size);
        break;
    case XS_FORMAT_BASKETS:
        err = read_baskets(paths, n_paths, &s, errstr, errstr_size);
        break;
    case XS_FORMAT_YOOCHOOSE:
        err = read_yoochoose(paths, n_paths, &s, errstr, errstr_size);
        break;
    default:
        err = XS_ERR_INVALID;
        break;
    }
    if (err == XS_ERR_EOF && s.limit_reached)
        err = XS_OK;
    if (err == XS_ERR_NOMEM && errstr && errstr_size && !errstr[0])
        xs_err_set(errstr, errstr_size, "out of memory");
out:
    xs_event_clear(&s.ev);
    if (stats)
        *stats = local;
    return err;
}
