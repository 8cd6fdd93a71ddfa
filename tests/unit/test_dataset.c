/*
 * test_dataset.c — dataset readers: exact event sequences on small fixtures
 * written to a temporary directory, error reporting, and counts on the real
 * datasets under $XS_DATA_DIR.
 *
 * The real-data figures were computed independently of this code with
 * throwaway Python 3 scripts (csv + gzip modules) that apply the rules
 * documented at the top of lib/tools/dataset.c: e.g. for UCI, iterate the rows of
 * csv.reader(gzip.open(...)), skip no CustomerID, then InvoiceNo starting
 * with 'C', then Quantity <= 0 or StockCode without a digit or == "C2";
 * count distinct kept StockCodes (catalog), distinct kept InvoiceNos
 * (PURCHASE) and distinct (InvoiceNo, StockCode) pairs (ADD). The caserec
 * user order was recomputed with a Python splitmix64 + Fisher-Yates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "xsell/dataset.h"

/* ---- helpers ---------------------------------------------------------- */

typedef struct collect {
    xs_event_t *evs;
    size_t n, cap;
    size_t stop_after; /* return XS_ERR_INVALID once this many were seen (0 = never) */
} collect_t;

static xs_err_t collect_cb(void *opaque, const xs_event_t *ev)
{
    collect_t *c = opaque;
    if (c->stop_after && c->n >= c->stop_after)
        return XS_ERR_INVALID;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->evs = realloc(c->evs, c->cap * sizeof(*c->evs));
        assert_non_null(c->evs);
    }
    assert_int_equal(xs_event_copy(&c->evs[c->n], ev), XS_OK);
    c->n++;
    return XS_OK;
}

static void collect_free(collect_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        xs_event_clear(&c->evs[i]);
    free(c->evs);
    memset(c, 0, sizeof(*c));
}

typedef struct fixture {
    char dir[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/xs_dataset_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de = NULL;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* Writes text to dir/name (gzip-compressed when gz); returns the path (static buffer rotation). */
static const char *write_file(const fixture_t *f, const char *name, const char *text, bool gz)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%.200s/%.200s", f->dir, name);
    if (gz) {
        gzFile g = gzopen(p, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *fp = fopen(p, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
        assert_int_equal(fclose(fp), 0);
    }
    return p;
}

static xs_err_t read1(xs_dataset_format_t fmt, const char *path, const xs_dataset_opts_t *opts,
                      collect_t *c, xs_dataset_stats_t *st, char *errstr, size_t errstr_size)
{
    const char *paths[] = {path};
    return xs_dataset_read(fmt, paths, 1, opts, collect_cb, c, st, errstr, errstr_size);
}

static void check_line(const xs_event_t *ev, size_t i, const char *item, int32_t qty,
                       bool has_price, double price)
{
    assert_true(i < ev->n_lines);
    assert_string_equal(ev->lines[i].item_id, item);
    assert_int_equal(ev->lines[i].quantity, qty);
    assert_int_equal(ev->lines[i].has_unit_price, has_price);
    if (has_price)
        assert_true(ev->lines[i].unit_price == price);
}

static void check_cart(const xs_event_t *ev, int type, const char *event_id, const char *user,
                       int64_t ts, size_t n_lines)
{
    assert_int_equal(ev->kind, XS_KIND_CART);
    assert_int_equal(ev->type, type);
    assert_string_equal(ev->event_id, event_id);
    assert_string_equal(ev->user_id, user);
    assert_int_equal(ev->ts, ts);
    assert_int_equal(ev->n_lines, n_lines);
}

static void check_view(const xs_event_t *ev, const char *event_id, const char *user,
                       const char *item, int64_t ts)
{
    assert_int_equal(ev->kind, XS_KIND_CLICK);
    assert_int_equal(ev->type, XS_CLICK_PRODUCT_VIEW);
    assert_string_equal(ev->event_id, event_id);
    assert_string_equal(ev->user_id, user);
    assert_string_equal(ev->item_id, item);
    assert_int_equal(ev->ts, ts);
}

/* ---- names and arguments ---------------------------------------------- */

static void test_format_names(void **state)
{
    (void)state;
    for (int i = 0; i < XS_FORMAT__COUNT; i++)
        assert_int_equal(
            xs_dataset_format_from_name(xs_dataset_format_name((xs_dataset_format_t)i)), i);
    assert_int_equal(xs_dataset_format_from_name("online-retail"), XS_FORMAT_ONLINE_RETAIL);
    assert_int_equal(xs_dataset_format_from_name("baskets"), XS_FORMAT_BASKETS);
    assert_int_equal(xs_dataset_format_from_name("yoochoose"), XS_FORMAT_YOOCHOOSE);
    assert_int_equal(xs_dataset_format_from_name("csv"), -1);
    assert_int_equal(xs_dataset_format_from_name(NULL), -1);
    xs_dataset_opts_t o;
    xs_dataset_opts_default(&o);
    assert_int_equal(o.seed, 42);
    assert_int_equal(o.max_events, 0);
}

static void test_invalid_args(void **state)
{
    (void)state;
    char err[256];
    collect_t c = {0};
    const char *paths[] = {"/nonexistent"};
    assert_int_equal(
        xs_dataset_read(XS_FORMAT_JSONL, paths, 0, NULL, collect_cb, &c, NULL, err, sizeof(err)),
        XS_ERR_INVALID);
    assert_int_equal(
        xs_dataset_read(XS_FORMAT__COUNT, paths, 1, NULL, collect_cb, &c, NULL, err, sizeof(err)),
        XS_ERR_INVALID);
    assert_int_equal(
        xs_dataset_read(XS_FORMAT_JSONL, paths, 1, NULL, NULL, &c, NULL, err, sizeof(err)),
        XS_ERR_INVALID);
    assert_int_equal(c.n, 0);
}

static void test_missing_file(void **state)
{
    fixture_t *f = *state;
    char path[600], err[600];
    snprintf(path, sizeof(path), "%s/does-not-exist.csv", f->dir);
    for (int fmt = 0; fmt < XS_FORMAT__COUNT; fmt++) {
        collect_t c = {0};
        xs_dataset_stats_t st;
        err[0] = '\0';
        assert_int_equal(read1((xs_dataset_format_t)fmt, path, NULL, &c, &st, err, sizeof(err)),
                         XS_ERR_IO);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "No such file"));
        assert_int_equal(c.n, 0);
        assert_int_equal(st.events, 0);
    }
    /* A directory is not a file (except for retailrocket, tested below). */
    collect_t c = {0};
    assert_int_equal(read1(XS_FORMAT_BASKETS, f->dir, NULL, &c, NULL, err, sizeof(err)), XS_ERR_IO);
    assert_non_null(strstr(err, "is a directory"));
}

/* ---- online-retail ---------------------------------------------------- */

/*
 * Covers: RFC 4180 quoting (comma, doubled quote, newline inside a field),
 * a cancelled invoice, a row without CustomerID (and with the earliest date,
 * which still sets the catalog time), non-product codes (POST, C2, m), a
 * zero quantity (its invoice emits nothing), a duplicate StockCode (merged),
 * an invoice whose rows are not adjacent and span two times, invoices out of
 * date order, an empty first Description, a row with the wrong field count.
 */
static const char *const retail_csv =
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n"
    "536400,22000,\"TRAY, \"\"BREAKFAST\"\" IN BED  \",2,2010-12-01 10:00:00,1.5,17850,United "
    "Kingdom\r\n"
    "536400,POST,POSTAGE,1,2010-12-01 10:00:00,18,17850,France\r\n"
    "536400,22001,,3,2010-12-01 10:00:00,2.0,17850,United Kingdom\r\n"
    "536401,22002,NO CUSTOMER,1,2010-12-01 07:00:00,1.0,,United Kingdom\r\n"
    "C536402,22000,TRAY,-1,2010-12-01 09:30:00,1.5,17850,United Kingdom\r\n"
    "536403,22001,\"MULTI\nLINE \",5,2010-12-01 08:00:00,2.5,12345,United Kingdom\r\n"
    "536400,22000,TRAY AGAIN,4,2010-12-01 10:00:00,1.6,17850,United Kingdom\r\n"
    "536400,C2,CARRIAGE,1,2010-12-01 10:00:00,50,17850,United Kingdom\r\n"
    "536404,22003,ZERO QTY,0,2010-12-01 11:00:00,1,17850,United Kingdom\r\n"
    "536400,m,Manual,1,2010-12-01 10:00:00,3,17850,United Kingdom\r\n"
    "536400,22004,EARLY ROW,1,2010-12-01 09:59:00,3,17850,United Kingdom\r\n"
    "536405,22005,TOO,FEW\r\n"
    "\r\n";

#define T07 INT64_C(1291186800000) /* 2010-12-01 07:00:00Z */
#define T08 INT64_C(1291190400000)
#define T0959 INT64_C(1291197540000)

static void check_retail_events(const collect_t *c, const xs_dataset_stats_t *st)
{
    assert_true(c->n >= 8);
    assert_int_equal(st->rows, 12);
    assert_int_equal(st->catalog_events, 3);
    assert_int_equal(st->skipped_no_user, 1);
    assert_int_equal(st->skipped_cancelled, 1);
    assert_int_equal(st->skipped_other, 4); /* POST, C2, zero quantity, m */
    assert_int_equal(st->bad_rows, 1);

    const xs_event_t *e = c->evs;
    /* Catalog: kept StockCodes in first-appearance order, at the earliest date. */
    assert_int_equal(e[0].kind, XS_KIND_ITEM);
    assert_string_equal(e[0].item_id, "22000");
    assert_string_equal(e[0].title, "TRAY, \"BREAKFAST\" IN BED");
    assert_string_equal(e[0].family, "22000"); /* the numeric stock code */
    assert_true(e[0].has_price && e[0].price == 1.5);
    assert_true(e[0].in_stock);
    assert_int_equal(e[0].ts, T07);
    assert_int_equal(e[1].kind, XS_KIND_ITEM);
    assert_string_equal(e[1].item_id, "22001");
    assert_string_equal(e[1].title, "MULTI\nLINE"); /* first non-empty Description */
    assert_true(e[1].price == 2.0);                 /* price of the first appearance */
    assert_int_equal(e[1].ts, T07);
    assert_string_equal(e[2].item_id, "22004");
    assert_string_equal(e[2].title, "EARLY ROW");

    /* Invoice 536403 (08:00) comes before 536400 (09:59, its earliest row). */
    check_cart(&e[3], XS_CART_ADD, "536403-1", "12345", T08, 1);
    check_line(&e[3], 0, "22001", 5, true, 2.5);
    assert_string_equal(e[3].session_id, "536403");
    assert_string_equal(e[3].order_id, "536403");
    assert_string_equal(e[3].currency, "GBP");
    check_cart(&e[4], XS_CART_PURCHASE, "536403-P", "12345", T08, 1);
    check_line(&e[4], 0, "22001", 5, true, 2.5);

    check_cart(&e[5], XS_CART_ADD, "536400-1", "17850", T0959, 1);
    check_line(&e[5], 0, "22000", 6, true, 1.5); /* 2 + 4 merged, first price kept */
    check_cart(&e[6], XS_CART_ADD, "536400-2", "17850", T0959, 1);
    check_line(&e[6], 0, "22001", 3, true, 2.0);
    check_cart(&e[7], XS_CART_ADD, "536400-3", "17850", T0959, 1);
    check_line(&e[7], 0, "22004", 1, true, 3.0);
}

static void test_online_retail_fixture(void **state)
{
    fixture_t *f = *state;
    const char *plain = write_file(f, "retail.csv", retail_csv, false);
    const char *gz = write_file(f, "retail.csv.gz", retail_csv, true);
    const char *paths[] = {plain, gz};
    for (size_t p = 0; p < 2; p++) {
        collect_t c = {0};
        xs_dataset_stats_t st;
        char err[256] = "";
        assert_int_equal(read1(XS_FORMAT_ONLINE_RETAIL, paths[p], NULL, &c, &st, err, sizeof(err)),
                         XS_OK);
        assert_int_equal(c.n, 9);
        assert_int_equal(st.events, 9);
        check_retail_events(&c, &st);
        const xs_event_t *e = &c.evs[8];
        check_cart(e, XS_CART_PURCHASE, "536400-P", "17850", T0959, 3);
        check_line(e, 0, "22000", 6, true, 1.5);
        check_line(e, 1, "22001", 3, true, 2.0);
        check_line(e, 2, "22004", 1, true, 3.0);
        assert_string_equal(e->order_id, "536400");
        collect_free(&c);
    }
}

static void test_online_retail_max_events(void **state)
{
    fixture_t *f = *state;
    const char *path = write_file(f, "retail.csv", retail_csv, false);
    xs_dataset_opts_t o;
    _Atomic uint64_t progress = 0;
    xs_dataset_opts_default(&o);
    assert_null(o.progress);
    o.max_events = 4;
    o.progress = &progress; /* the count a progress display reads */
    collect_t c = {0};
    xs_dataset_stats_t st;
    assert_int_equal(read1(XS_FORMAT_ONLINE_RETAIL, path, &o, &c, &st, NULL, 0), XS_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(st.events, 4);
    assert_int_equal(atomic_load(&progress), 4);
    assert_int_equal(st.catalog_events, 3);
    assert_int_equal(st.rows, 12); /* read whole before delivery */
    assert_string_equal(c.evs[3].event_id, "536403-1");
    collect_free(&c);

    /* A callback error stops reading and is returned. */
    c.stop_after = 2;
    assert_int_equal(read1(XS_FORMAT_ONLINE_RETAIL, path, NULL, &c, &st, NULL, 0), XS_ERR_INVALID);
    assert_int_equal(c.n, 2);
    collect_free(&c);
}

static void test_online_retail_bad_header(void **state)
{
    fixture_t *f = *state;
    char err[512];
    collect_t c = {0};
    const char *path = write_file(f, "other.csv", "a,b,c\n1,2,3\n", false);
    assert_int_equal(read1(XS_FORMAT_ONLINE_RETAIL, path, NULL, &c, NULL, err, sizeof(err)),
                     XS_ERR_DECODE);
    char want[600];
    snprintf(want, sizeof(want), "%s:1: no InvoiceNo column", path);
    assert_non_null(strstr(err, want));
    path = write_file(f, "empty.csv", "", false);
    assert_int_equal(read1(XS_FORMAT_ONLINE_RETAIL, path, NULL, &c, NULL, err, sizeof(err)),
                     XS_ERR_DECODE);
    assert_int_equal(c.n, 0);
}

static void test_truncated_gzip(void **state)
{
    fixture_t *f = *state;
    char big[20000] = "";
    strcat(big,
           "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n");
    for (int i = 0; i < 150; i++) {
        char row[128];
        snprintf(row, sizeof(row), "5%05d,2%04d,ITEM %d,1,2010-12-01 10:00:00,1.0,17850,UK\n", i, i,
                 i * 7919);
        strcat(big, row);
    }
    const char *gz = write_file(f, "t.csv.gz", big, true);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    assert_int_equal(truncate(gz, st.st_size / 2), 0);
    char err[512] = "";
    collect_t c = {0};
    assert_int_equal(read1(XS_FORMAT_ONLINE_RETAIL, gz, NULL, &c, NULL, err, sizeof(err)),
                     XS_ERR_IO);
    assert_non_null(strstr(err, gz));
    assert_int_equal(c.n, 0);
}

/* ---- retailrocket ----------------------------------------------------- */

static void test_retailrocket_kaggle(void **state)
{
    fixture_t *f = *state;
    const char *path = write_file(f, "events.csv",
                                  "timestamp,visitorid,event,itemid,transactionid\n"
                                  "1433224214164,992329,view,248676,\n"
                                  "1433221999827,111016,transaction,10,5\n"
                                  "1433221955914,111016,addtocart,10,\n"
                                  "1433221332117,257597,view,355908,\n"
                                  "1433222000000,111016,transaction,11,5\n"
                                  "1433221999827,111016,transaction,10,5\n"
                                  "1433221100000,42,bogus,1,\n"
                                  "1433221100000,,view,1,\n",
                                  false);
    collect_t c = {0};
    xs_dataset_stats_t st;
    char err[256] = "";
    assert_int_equal(read1(XS_FORMAT_RETAILROCKET, path, NULL, &c, &st, err, sizeof(err)), XS_OK);
    assert_int_equal(st.rows, 8);
    assert_int_equal(st.bad_rows, 1);
    assert_int_equal(st.skipped_no_user, 1);
    assert_int_equal(c.n, 4);
    check_view(&c.evs[0], "rr-257597-v-355908-1433221332117", "257597", "355908",
               INT64_C(1433221332117));
    check_cart(&c.evs[1], XS_CART_ADD, "rr-111016-a-10-1433221955914", "111016",
               INT64_C(1433221955914), 1);
    check_line(&c.evs[1], 0, "10", 1, false, 0);
    /* The transaction sits at its earliest row; the repeated item is merged. */
    check_cart(&c.evs[2], XS_CART_PURCHASE, "rr-111016-p-5", "111016", INT64_C(1433221999827), 2);
    check_line(&c.evs[2], 0, "10", 2, false, 0);
    check_line(&c.evs[2], 1, "11", 1, false, 0);
    assert_string_equal(c.evs[2].order_id, "5");
    check_view(&c.evs[3], "rr-992329-v-248676-1433224214164", "992329", "248676",
               INT64_C(1433224214164));
    collect_free(&c);
}

#define TRR INT64_C(1433116800000) /* 2015-06-01T00:00:00Z */

static void check_caserec_seed42(const collect_t *c)
{
    /* Canonical order 1, 2, 10; splitmix64(42) Fisher-Yates gives 1, 10, 2. */
    assert_int_equal(c->n, 8);
    const xs_event_t *e = c->evs;
    check_view(&e[0], "rr-1-v-a", "1", "a", TRR);
    check_view(&e[1], "rr-1-v-b", "1", "b", TRR + 1000);
    check_cart(&e[2], XS_CART_ADD, "rr-1-a-b", "1", TRR + 2000, 1);
    check_line(&e[2], 0, "b", 1, false, 0);
    check_cart(&e[3], XS_CART_PURCHASE, "rr-1-p", "1", TRR + 3000, 1);
    check_line(&e[3], 0, "b", 1, false, 0);
    check_view(&e[4], "rr-10-v-d", "10", "d", TRR + 4000);
    check_cart(&e[5], XS_CART_ADD, "rr-10-a-d", "10", TRR + 5000, 1);
    check_cart(&e[6], XS_CART_PURCHASE, "rr-10-p", "10", TRR + 6000, 2);
    check_line(&e[6], 0, "d", 1, false, 0);
    check_line(&e[6], 1, "e", 1, false, 0);
    check_view(&e[7], "rr-2-v-c", "2", "c", TRR + 7000);
}

static void test_retailrocket_caserec(void **state)
{
    fixture_t *f = *state;
    char dir[128];
    snprintf(dir, sizeof(dir), "%.100s/rr", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    char vp[700], ap[700], pp[700];
    snprintf(vp, sizeof(vp), "%s/view_x.dat", dir);
    snprintf(ap, sizeof(ap), "%s/add_to_cart_x.dat", dir);
    snprintf(pp, sizeof(pp), "%s/purchase_x.dat", dir);
    fixture_t sub;
    snprintf(sub.dir, sizeof(sub.dir), "%s", dir);
    write_file(&sub, "view_x.dat",
               "visitorid\titemid\tevent\n1\ta\t1\n1\tb\t1\n2\tc\t1\n10\td\t1\n", false);
    write_file(&sub, "add_to_cart_x.dat", "visitorid\titemid\tevent\n1\tb\t1\n10\td\t1\n", false);
    write_file(&sub, "purchase_x.dat", "visitorid\titemid\tevent\n1\tb\t1\n10\td\t1\n10\te\t1\n",
               false);
    write_file(&sub, "README", "not a data file\n", false);

    collect_t c = {0};
    xs_dataset_stats_t st;
    char err[256] = "";
    assert_int_equal(read1(XS_FORMAT_RETAILROCKET, dir, NULL, &c, &st, err, sizeof(err)), XS_OK);
    assert_int_equal(st.rows, 9);
    assert_int_equal(st.events, 8);
    check_caserec_seed42(&c);
    collect_free(&c);

    /* The same files named one by one, in another order: same stream. */
    const char *paths[] = {pp, vp, ap};
    assert_int_equal(xs_dataset_read(XS_FORMAT_RETAILROCKET, paths, 3, NULL, collect_cb, &c, &st,
                                     err, sizeof(err)),
                     XS_OK);
    check_caserec_seed42(&c);
    collect_free(&c);

    /* Another seed, another user order (1, 2, 10 for seed 1). */
    xs_dataset_opts_t o;
    xs_dataset_opts_default(&o);
    o.seed = 1;
    assert_int_equal(read1(XS_FORMAT_RETAILROCKET, dir, &o, &c, &st, err, sizeof(err)), XS_OK);
    assert_int_equal(c.n, 8);
    assert_string_equal(c.evs[4].event_id, "rr-2-v-c");
    assert_string_equal(c.evs[5].event_id, "rr-10-v-d");
    assert_int_equal(c.evs[7].ts, TRR + 7000);
    collect_free(&c);

    /* A caserec file not named by role cannot be told apart. */
    const char *bad = write_file(f, "data.dat", "visitorid\titemid\tevent\n1\ta\t1\n", false);
    assert_int_equal(read1(XS_FORMAT_RETAILROCKET, bad, NULL, &c, &st, err, sizeof(err)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(err, ":1: expected header timestamp"));
    /* Mixing both kinds is refused. */
    const char *ev = write_file(f, "events.csv", "timestamp,visitorid,event,itemid\n", false);
    const char *mixed[] = {ev, vp};
    assert_int_equal(xs_dataset_read(XS_FORMAT_RETAILROCKET, mixed, 2, NULL, collect_cb, &c, &st,
                                     err, sizeof(err)),
                     XS_ERR_INVALID);
    /* A directory without role files. */
    assert_int_equal(read1(XS_FORMAT_RETAILROCKET, f->dir, NULL, &c, &st, err, sizeof(err)),
                     XS_ERR_IO);
    assert_non_null(strstr(err, "no view_*"));
    assert_int_equal(c.n, 0);
}

/* ---- baskets ---------------------------------------------------------- */

#define TB INT64_C(946857600000) /* 2000-01-03T00:00:00Z */

static void test_baskets_comma(void **state)
{
    fixture_t *f = *state;
    /* "whole milk" has no comma on its line but the file does: one item. */
    const char *path = write_file(f, "g.csv",
                                  "citrus fruit,semi-finished bread ,margarine\n"
                                  "\n"
                                  "whole milk\n"
                                  "yogurt, yogurt ,soda,\n"
                                  ",,\n",
                                  false);
    collect_t c = {0};
    xs_dataset_stats_t st;
    assert_int_equal(read1(XS_FORMAT_BASKETS, path, NULL, &c, &st, NULL, 0), XS_OK);
    assert_int_equal(st.rows, 4);
    assert_int_equal(st.skipped_other, 1);
    assert_int_equal(c.n, 9);
    const xs_event_t *e = c.evs;
    /* Every event of a basket has its own time, in basket order (1 ms
     * apart), the PURCHASE last; baskets start one minute apart. */
    check_cart(&e[0], XS_CART_ADD, "basket-1-1", "basket-1", TB, 1);
    check_line(&e[0], 0, "citrus fruit", 1, false, 0);
    check_cart(&e[1], XS_CART_ADD, "basket-1-2", "basket-1", TB + 1, 1);
    check_line(&e[1], 0, "semi-finished bread", 1, false, 0);
    check_cart(&e[2], XS_CART_ADD, "basket-1-3", "basket-1", TB + 2, 1);
    check_cart(&e[3], XS_CART_PURCHASE, "basket-1-P", "basket-1", TB + 3, 3);
    check_line(&e[3], 0, "citrus fruit", 1, false, 0);
    check_line(&e[3], 1, "semi-finished bread", 1, false, 0);
    check_line(&e[3], 2, "margarine", 1, false, 0);
    check_cart(&e[4], XS_CART_ADD, "basket-3-1", "basket-3", TB + 60000, 1);
    check_line(&e[4], 0, "whole milk", 1, false, 0);
    check_cart(&e[5], XS_CART_PURCHASE, "basket-3-P", "basket-3", TB + 60001, 1);
    check_cart(&e[6], XS_CART_ADD, "basket-4-1", "basket-4", TB + 120000, 1);
    check_line(&e[6], 0, "yogurt", 2, false, 0);
    check_cart(&e[7], XS_CART_ADD, "basket-4-2", "basket-4", TB + 120001, 1);
    check_line(&e[7], 0, "soda", 1, false, 0);
    check_cart(&e[8], XS_CART_PURCHASE, "basket-4-P", "basket-4", TB + 120002, 2);
    check_line(&e[8], 0, "yogurt", 2, false, 0);
    check_line(&e[8], 1, "soda", 1, false, 0);
    collect_free(&c);
}

static void test_baskets_whitespace_gz(void **state)
{
    fixture_t *f = *state;
    const char *a = write_file(f, "r.dat.gz", "0 1 2 \n\n3  3\t4 \n", true);
    const char *b = write_file(f, "s.dat", "7\n", false);
    const char *paths[] = {a, b};
    collect_t c = {0};
    xs_dataset_stats_t st;
    assert_int_equal(
        xs_dataset_read(XS_FORMAT_BASKETS, paths, 2, NULL, collect_cb, &c, &st, NULL, 0), XS_OK);
    assert_int_equal(c.n, 9);
    assert_int_equal(st.rows, 3);
    check_cart(&c.evs[3], XS_CART_PURCHASE, "basket-1-P", "basket-1", TB + 3, 3);
    check_line(&c.evs[3], 2, "2", 1, false, 0);
    check_cart(&c.evs[6], XS_CART_PURCHASE, "basket-3-P", "basket-3", TB + 60002, 2);
    check_line(&c.evs[6], 0, "3", 2, false, 0);
    check_line(&c.evs[6], 1, "4", 1, false, 0);
    /* Line numbers continue in the second file (3 lines before it). */
    check_cart(&c.evs[7], XS_CART_ADD, "basket-4-1", "basket-4", TB + 120000, 1);
    check_cart(&c.evs[8], XS_CART_PURCHASE, "basket-4-P", "basket-4", TB + 120001, 1);
    collect_free(&c);

    xs_dataset_opts_t o;
    xs_dataset_opts_default(&o);
    o.max_events = 5;
    assert_int_equal(read1(XS_FORMAT_BASKETS, a, &o, &c, &st, NULL, 0), XS_OK);
    assert_int_equal(c.n, 5);
    assert_int_equal(st.events, 5);
    assert_int_equal(st.rows, 2); /* stopped inside the second basket */
    collect_free(&c);
}

/* A basket over the profile's 24 items: its PURCHASE names the last 24 (the
 * earlier ones would be paired again); one over 60,000 items pushes the next
 * basket's start past its PURCHASE, so times never tie or go back. */
static void test_baskets_big(void **state)
{
    fixture_t *f = *state;
    size_t big = 60001, cap = big * 8 + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 1; i <= 40; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s%d", i > 1 ? " " : "", i);
    text[len++] = '\n';
    for (size_t i = 0; i < big; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s%zu", i ? " " : "", i + 1000);
    len += (size_t)snprintf(text + len, cap - len, "\nx y\n");
    const char *path = write_file(f, "big.dat", text, false);
    free(text);
    collect_t c = {0};
    xs_dataset_stats_t st;
    assert_int_equal(read1(XS_FORMAT_BASKETS, path, NULL, &c, &st, NULL, 0), XS_OK);
    assert_int_equal(c.n, 40 + 1 + big + 1 + 3);
    const xs_event_t *p1 = &c.evs[40];
    check_cart(p1, XS_CART_PURCHASE, "basket-1-P", "basket-1", TB + 40, 24);
    check_line(p1, 0, "17", 1, false, 0);
    check_line(p1, 23, "40", 1, false, 0);
    const xs_event_t *p2 = &c.evs[40 + 1 + big];
    check_cart(p2, XS_CART_PURCHASE, "basket-2-P", "basket-2", TB + 60000 + (int64_t)big, 24);
    /* basket 3 would start at TB + 120000, before basket 2's PURCHASE */
    check_cart(&c.evs[c.n - 3], XS_CART_ADD, "basket-3-1", "basket-3",
               TB + 60000 + (int64_t)big + 1, 1);
    check_cart(&c.evs[c.n - 1], XS_CART_PURCHASE, "basket-3-P", "basket-3",
               TB + 60000 + (int64_t)big + 3, 2);
    for (size_t i = 1; i < c.n; i++)
        assert_true(c.evs[i].ts > c.evs[i - 1].ts);
    collect_free(&c);
}

/* ---- yoochoose -------------------------------------------------------- */

static void test_yoochoose(void **state)
{
    fixture_t *f = *state;
    const char *a = write_file(f, "train.txt.gz",
                               "SessionId\tItemId\tTime\n"
                               "3\t10\t1396437466.94\n"
                               "3\t11\t1396438212.318\n"
                               "6\t10\t1396437000\n",
                               true);
    const char *b = write_file(f, "test.txt",
                               "SessionId\tItemId\tTime\n"
                               "1\t12\t1396437466.940\n" /* ties with session 3: file order */
                               "1\t13\tnoon\n"
                               "1\t13\n"
                               "\t13\t1396437466.5\n",
                               false);
    const char *paths[] = {a, b};
    collect_t c = {0};
    xs_dataset_stats_t st;
    assert_int_equal(
        xs_dataset_read(XS_FORMAT_YOOCHOOSE, paths, 2, NULL, collect_cb, &c, &st, NULL, 0), XS_OK);
    assert_int_equal(st.rows, 7);
    assert_int_equal(st.bad_rows, 2);
    assert_int_equal(st.skipped_no_user, 1);
    assert_int_equal(c.n, 4);
    check_view(&c.evs[0], "yc-6-10-1396437000000", "6", "10", INT64_C(1396437000000));
    check_view(&c.evs[1], "yc-3-10-1396437466940", "3", "10", INT64_C(1396437466940));
    check_view(&c.evs[2], "yc-1-12-1396437466940", "1", "12", INT64_C(1396437466940));
    check_view(&c.evs[3], "yc-3-11-1396438212318", "3", "11", INT64_C(1396438212318));
    assert_string_equal(c.evs[3].session_id, "3");
    collect_free(&c);

    char err[256] = "";
    const char *bad = write_file(f, "bad.txt", "visitorid\titemid\n1\t2\n", false);
    assert_int_equal(read1(XS_FORMAT_YOOCHOOSE, bad, NULL, &c, &st, err, sizeof(err)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(err, "SessionId"));
    assert_int_equal(c.n, 0);
}

/* ---- jsonl ------------------------------------------------------------ */

static void test_jsonl(void **state)
{
    fixture_t *f = *state;
    const char *path = write_file(
        f, "ev.jsonl",
        "{\"kind\":\"click\",\"event_id\":\"e1\",\"user_id\":\"u1\",\"type\":\"PRODUCT_VIEW\","
        "\"item_id\":\"i1\",\"list_id\":\"L\",\"ts\":1714564800000}\n"
        "   \n"
        "{\"event_id\":\"e2\",\"user_id\":\"u1\",\"type\":\"ADD\",\"lines\":[{\"item_id\":\"i1\","
        "\"quantity\":2,\"unit_price\":9.5},{\"item_id\":\"i2\",\"unit_price\":null}],"
        "\"currency\":\"EUR\",\"order_id\":null,\"ts\":\"2024-05-01T12:00:01.250Z\"}\n"
        "{\"item_id\":\"i1\",\"title\":\"Mug\",\"price\":9.5,\"in_stock\":false,\"deleted\":true,"
        "\"ts\":\"2024-05-01T14:00:00+02:00\",\"extra\":[1,2]}\n"
        "{\"user_id\":\"u2\",\"event_id\":\"e3\",\"type\":\"SEARCH\",\"ts\":\"2024-02-29 "
        "00:00:00\",\"session_id\":null}\n"
        "{\"kind\":\"cart\",\"event_id\":\"e4\",\"user_id\":\"u2\",\"type\":\"CHECKOUT\","
        "\"lines\":[],\"ts\":5}\r\n",
        false);
    collect_t c = {0};
    xs_dataset_stats_t st;
    char err[256] = "";
    assert_int_equal(read1(XS_FORMAT_JSONL, path, NULL, &c, &st, err, sizeof(err)), XS_OK);
    assert_int_equal(st.rows, 5);
    assert_int_equal(st.events, 5);
    assert_int_equal(st.catalog_events, 1);
    assert_int_equal(c.n, 5);
    const xs_event_t *e = c.evs;
    check_view(&e[0], "e1", "u1", "i1", INT64_C(1714564800000));
    assert_string_equal(e[0].list_id, "L");
    assert_null(e[0].session_id);
    check_cart(&e[1], XS_CART_ADD, "e2", "u1", INT64_C(1714564801250), 2);
    check_line(&e[1], 0, "i1", 2, true, 9.5);
    check_line(&e[1], 1, "i2", 1, false, 0);
    assert_string_equal(e[1].currency, "EUR");
    assert_null(e[1].order_id);
    assert_int_equal(e[2].kind, XS_KIND_ITEM);
    assert_string_equal(e[2].item_id, "i1");
    assert_string_equal(e[2].title, "Mug");
    assert_true(e[2].has_price && e[2].price == 9.5);
    assert_false(e[2].in_stock);
    assert_true(e[2].deleted);
    assert_false(e[2].repurchasable);
    assert_int_equal(e[2].ts, INT64_C(1714564800000));
    assert_int_equal(e[3].kind, XS_KIND_CLICK);
    assert_int_equal(e[3].type, XS_CLICK_SEARCH);
    assert_null(e[3].item_id);
    assert_int_equal(e[3].ts, INT64_C(1709164800000));
    check_cart(&e[4], XS_CART_CHECKOUT, "e4", "u2", 5, 0);
    collect_free(&c);
}

static void expect_jsonl_error(const fixture_t *f, const char *text, size_t line,
                               const char *msg_part, size_t events_before)
{
    const char *path = write_file(f, "bad.jsonl", text, false);
    collect_t c = {0};
    xs_dataset_stats_t st;
    char err[512] = "", want[700];
    assert_int_equal(read1(XS_FORMAT_JSONL, path, NULL, &c, &st, err, sizeof(err)), XS_ERR_DECODE);
    snprintf(want, sizeof(want), "%s:%zu: ", path, line);
    if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, msg_part))
        fail_msg("error \"%s\" does not start with \"%s\" or lacks \"%s\"", err, want, msg_part);
    assert_int_equal(c.n, events_before);
    assert_int_equal(st.events, events_before);
    assert_int_equal(st.bad_rows, 1);
    collect_free(&c);
}

static void test_jsonl_errors(void **state)
{
    fixture_t *f = *state;
    const char *ok = "{\"event_id\":\"e1\",\"user_id\":\"u\",\"type\":\"SEARCH\",\"ts\":1}\n";
    char text[1024];
    snprintf(text, sizeof(text), "%s\n%s{\"event_id\": \"e3\", \"user_id\": \n%s", ok, ok, ok);
    expect_jsonl_error(f, text, 4, ": col 31: ", 2); /* the parser's column */
    snprintf(text, sizeof(text), "%s[1,2]\n", ok);
    expect_jsonl_error(f, text, 2, "expected a JSON object", 1);
    expect_jsonl_error(f, "{\"event_id\":\"e\",\"user_id\":\"u\",\"type\":\"LOOK\",\"ts\":1}\n", 1,
                       "unknown click type \"LOOK\"", 0);
    expect_jsonl_error(f, "{\"event_id\":\"e\",\"user_id\":\"u\",\"type\":\"SEARCH\"}\n", 1,
                       "missing \"ts\"", 0);
    expect_jsonl_error(f,
                       "{\"event_id\":\"e\",\"user_id\":\"u\",\"type\":\"SEARCH\","
                       "\"ts\":\"2023-02-29T00:00:00Z\"}\n",
                       1, "ISO-8601", 0);
    expect_jsonl_error(f, "{\"event_id\":\"e\",\"user_id\":\"u\",\"type\":\"SEARCH\",\"ts\":1.5}\n",
                       1, "epoch milliseconds", 0);
    expect_jsonl_error(f,
                       "{\"event_id\":\"e\",\"user_id\":\"u\",\"type\":\"ADD\",\"ts\":1,"
                       "\"lines\":[{\"quantity\":1}]}\n",
                       1, "lines[0]: missing \"item_id\"", 0);
    expect_jsonl_error(f,
                       "{\"event_id\":\"e\",\"user_id\":\"u\",\"type\":\"ADD\",\"ts\":1,"
                       "\"lines\":[{\"item_id\":\"i\",\"quantity\":\"2\"}]}\n",
                       1, "\"quantity\" must be", 0);
    expect_jsonl_error(f, "{\"kind\":\"order\",\"ts\":1}\n", 1, "unknown \"kind\"", 0);
    expect_jsonl_error(f, "{\"user_id\":7,\"event_id\":\"e\",\"type\":\"SEARCH\",\"ts\":1}\n", 1,
                       "\"user_id\" must be a string", 0);
    expect_jsonl_error(f, "{\"title\":\"no id\",\"ts\":1}\n", 1, "missing \"item_id\"", 0);
}

/* ---- real datasets ---------------------------------------------------- */

typedef struct tally {
    uint64_t n;
    uint64_t items, views, adds, purchases, purchase_lines;
    int64_t last_ts;
    bool ts_decreased, ts_tied;
    uint64_t first_decrease;
    size_t max_purchase_lines;
    xs_event_t first, first_cart, last;
    bool have_first, have_first_cart;
} tally_t;

static xs_err_t tally_cb(void *opaque, const xs_event_t *ev)
{
    tally_t *t = opaque;
    if (t->n && ev->ts < t->last_ts && !t->ts_decreased) {
        t->ts_decreased = true;
        t->first_decrease = t->n;
    }
    if (t->n && ev->ts == t->last_ts)
        t->ts_tied = true;
    t->last_ts = ev->ts;
    t->n++;
    if (ev->kind == XS_KIND_ITEM)
        t->items++;
    else if (ev->kind == XS_KIND_CLICK && ev->type == XS_CLICK_PRODUCT_VIEW)
        t->views++;
    else if (ev->kind == XS_KIND_CART && ev->type == XS_CART_ADD)
        t->adds++;
    else if (ev->kind == XS_KIND_CART && ev->type == XS_CART_PURCHASE) {
        t->purchases++;
        t->purchase_lines += ev->n_lines;
        if (ev->n_lines > t->max_purchase_lines)
            t->max_purchase_lines = ev->n_lines;
    }
    if (!t->have_first) {
        assert_int_equal(xs_event_copy(&t->first, ev), XS_OK);
        t->have_first = true;
    }
    if (!t->have_first_cart && ev->kind == XS_KIND_CART) {
        assert_int_equal(xs_event_copy(&t->first_cart, ev), XS_OK);
        t->have_first_cart = true;
    }
    xs_event_clear(&t->last);
    assert_int_equal(xs_event_copy(&t->last, ev), XS_OK);
    return XS_OK;
}

static void tally_free(tally_t *t)
{
    xs_event_clear(&t->first);
    xs_event_clear(&t->first_cart);
    xs_event_clear(&t->last);
}

static const char *data_path(const char *rel, char *buf, size_t size)
{
    const char *dir = getenv("XS_DATA_DIR");
    if (!dir || !*dir)
        fail_msg("XS_DATA_DIR is not set (ctest sets it to the shared data directory)");
    snprintf(buf, size, "%s/%s", dir, rel);
    struct stat st;
    if (stat(buf, &st) != 0)
        fail_msg("dataset %s is missing (XS_DATA_DIR=%s)", buf, dir);
    return buf;
}

static void read_real(xs_dataset_format_t fmt, const char *rel, tally_t *t, xs_dataset_stats_t *st)
{
    char path[1024], err[512] = "";
    const char *paths[] = {data_path(rel, path, sizeof(path))};
    xs_err_t rc = xs_dataset_read(fmt, paths, 1, NULL, tally_cb, t, st, err, sizeof(err));
    if (rc != XS_OK)
        fail_msg("reading %s: %s: %s", path, xs_err_str(rc), err);
    if (t->ts_decreased)
        fail_msg("%s: event time decreases at event %" PRIu64, rel, t->first_decrease);
    assert_int_equal(st->events, t->n);
    assert_int_equal(st->catalog_events, t->items);
}

static void test_real_online_retail(void **state)
{
    (void)state;
    tally_t t = {0};
    xs_dataset_stats_t st;
    read_real(XS_FORMAT_ONLINE_RETAIL, "uci-online-retail/online_retail.csv.gz", &t, &st);
    assert_int_equal(st.rows, 541909);
    assert_int_equal(st.skipped_no_user, 135080);
    /* 9,288 cancelled rows, of which 383 have no CustomerID and count as no_user. */
    assert_int_equal(st.skipped_cancelled, 8905);
    assert_int_equal(st.skipped_other, 1554);
    assert_int_equal(st.bad_rows, 0);
    assert_int_equal(t.items, 3659);      /* distinct kept StockCodes */
    assert_int_equal(t.purchases, 18405); /* distinct kept invoices */
    assert_int_equal(t.adds, 386354); /* distinct (invoice, StockCode) among 396,370 kept rows */
    assert_int_equal(t.purchase_lines, 386354);
    assert_int_equal(t.n, 408418);
    assert_int_equal(t.views, 0);
    assert_int_equal(t.first.kind, XS_KIND_ITEM);
    assert_string_equal(t.first.item_id, "85123A");
    assert_string_equal(t.first.title, "WHITE HANGING HEART T-LIGHT HOLDER");
    assert_string_equal(t.first.family, "85123"); /* 85123A: a colour of 85123 */
    assert_true(t.first.price == 2.55);
    assert_int_equal(t.first.ts, INT64_C(1291191960000)); /* 2010-12-01 08:26:00 */
    assert_string_equal(t.first_cart.event_id, "536365-1");
    assert_string_equal(t.first_cart.user_id, "17850");
    assert_string_equal(t.last.event_id, "581587-P");
    tally_free(&t);
}

static void test_real_groceries(void **state)
{
    (void)state;
    tally_t t = {0};
    xs_dataset_stats_t st;
    read_real(XS_FORMAT_BASKETS, "groceries/groceries.csv", &t, &st);
    assert_int_equal(st.rows, 9835);
    assert_int_equal(t.purchases, 9835);
    assert_int_equal(t.adds,
                     43367); /* item occurrences, PROVENANCE.md; no duplicates in a basket */
    /* baskets over the profile's 24 items name their last 24: sum of min(items, 24) */
    assert_int_equal(t.purchase_lines, 43335);
    assert_int_equal(t.n, 9835 + 43367);
    assert_int_equal(st.skipped_other + st.bad_rows, 0);
    /* the last basket has 5 items: its PURCHASE 5 ms after its start */
    assert_int_equal(t.last.ts, TB + INT64_C(9834) * 60000 + 5);
    assert_string_equal(t.last.event_id, "basket-9835-P");
    assert_false(t.ts_decreased);
    assert_false(t.ts_tied);
    tally_free(&t);
}

static void test_real_fimi_retail(void **state)
{
    (void)state;
    tally_t t = {0};
    xs_dataset_stats_t st;
    read_real(XS_FORMAT_BASKETS, "retail-belgium-fimi/retail.dat.gz", &t, &st);
    assert_int_equal(st.rows, 88162);
    assert_int_equal(t.purchases, 88162);
    assert_int_equal(t.adds, 908576);
    assert_int_equal(t.n, 88162 + 908576);
    /* baskets of more than 24 items (76 at most): their PURCHASE names the
     * last 24, sum over baskets of min(items, 24) */
    assert_int_equal(t.purchase_lines, 862619);
    assert_int_equal(t.max_purchase_lines, 24);
    assert_false(t.ts_decreased);
    assert_false(t.ts_tied);
    assert_string_equal(t.first.event_id, "basket-1-1");
    assert_string_equal(t.first.lines[0].item_id, "0");
    tally_free(&t);
}

/* Both session-rec files (PROVENANCE.md: 70,278 + 13,568 clicks, 17,794 +
 * 3,416 sessions, 2,933 items); first and last by time, merged. */
static void test_real_yoochoose(void **state)
{
    (void)state;
    tally_t t = {0};
    xs_dataset_stats_t st;
    char p1[1024], p2[1024], err[512] = "";
    const char *paths[] = {
        data_path("yoochoose-clicks-100k/yoochoose-clicks-100k_train_full.txt.gz", p1, sizeof(p1)),
        data_path("yoochoose-clicks-100k/yoochoose-clicks-100k_test.txt", p2, sizeof(p2))};
    xs_err_t rc =
        xs_dataset_read(XS_FORMAT_YOOCHOOSE, paths, 2, NULL, tally_cb, &t, &st, err, sizeof(err));
    if (rc != XS_OK)
        fail_msg("reading yoochoose: %s: %s", xs_err_str(rc), err);
    assert_false(t.ts_decreased);
    assert_int_equal(st.rows, 70278 + 13568);
    assert_int_equal(t.views, 70278 + 13568);
    assert_int_equal(t.n, 70278 + 13568);
    assert_int_equal(st.bad_rows + st.skipped_no_user, 0);
    assert_string_equal(t.first.event_id, "yc-5182-214821026-1396314141719");
    assert_string_equal(t.last.event_id, "yc-4986-214537535-1396918201534");
    tally_free(&t);
}

static void test_real_caserec(void **state)
{
    (void)state;
    tally_t t = {0};
    xs_dataset_stats_t st;
    read_real(XS_FORMAT_RETAILROCKET, "retailrocket-caserec", &t, &st);
    assert_int_equal(st.rows, 92487);
    assert_int_equal(t.views, 78371);
    assert_int_equal(t.adds, 9028);
    assert_int_equal(t.purchases, 824); /* users with a purchase row */
    assert_int_equal(t.purchase_lines, 5088);
    assert_int_equal(t.n, 88223);
    assert_int_equal(st.bad_rows + st.skipped_no_user, 0);
    /* Seed 42: the first user is 582 (11 views, nothing else). */
    check_view(&t.first, "rr-582-v-564", "582", "564", TRR);
    assert_int_equal(t.last.ts, TRR + INT64_C(88222) * 1000);
    tally_free(&t);
}

/* 3,431 distinct users: count the distinct user ids delivered. */
typedef struct users {
    char **ids;
    size_t n, cap;
} users_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static xs_err_t users_cb(void *opaque, const xs_event_t *ev)
{
    users_t *u = opaque;
    if (u->n && strcmp(u->ids[u->n - 1], ev->user_id) == 0)
        return XS_OK;
    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 1024;
        u->ids = realloc(u->ids, u->cap * sizeof(*u->ids));
        assert_non_null(u->ids);
    }
    u->ids[u->n++] = strdup(ev->user_id);
    return XS_OK;
}

static void test_real_caserec_users(void **state)
{
    (void)state;
    char path[1024];
    const char *paths[] = {data_path("retailrocket-caserec", path, sizeof(path))};
    users_t u = {0};
    assert_int_equal(
        xs_dataset_read(XS_FORMAT_RETAILROCKET, paths, 1, NULL, users_cb, &u, NULL, NULL, 0),
        XS_OK);
    /* Each user's events are contiguous: one run per user. */
    assert_int_equal(u.n, 3431);
    qsort(u.ids, u.n, sizeof(*u.ids), cmp_str);
    for (size_t i = 1; i < u.n; i++)
        assert_string_not_equal(u.ids[i - 1], u.ids[i]);
    for (size_t i = 0; i < u.n; i++)
        free(u.ids[i]);
    free(u.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_invalid_args),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_retail_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_retail_max_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_online_retail_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retailrocket_kaggle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retailrocket_caserec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baskets_comma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baskets_whitespace_gz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baskets_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yoochoose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jsonl_errors, setup, teardown),
        cmocka_unit_test(test_real_online_retail),
        cmocka_unit_test(test_real_groceries),
        cmocka_unit_test(test_real_fimi_retail),
        cmocka_unit_test(test_real_caserec),
        cmocka_unit_test(test_real_yoochoose),
        cmocka_unit_test(test_real_caserec_users),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
