/*
 * codec.c — Avro codec for events and cross-sell lists (see xsell/codec.h).
 *
 * The only file that includes <avro.h>. Split of work:
 *   codec_schema.c   schema model from JSON, Parsing Canonical Form, CRC-64;
 *   codec_resolve.c  writer->reader resolution compiled once per writer
 *                    schema, and the bounded decoder producing a tree shaped
 *                    like the reader schema;
 *   codec.c          framing, the registry of writer schemas, mapping the
 *                    reader-shaped tree into xs_event_t / xs_list_t, and
 *                    encoding: events with Avro-C's generic values, lists
 *                    (one per trigger event in the worker) directly.
 *
 * Message layouts:
 *
 *   single-object   +----+----+------------------------+-------------+
 *                   | C3 | 01 | CRC-64-AVRO(PCF), LE 8 | Avro body   |
 *                   +----+----+------------------------+-------------+
 *   Confluent       +----+----------------------+-------------+
 *                   | 00 | schema id, BE int32  | Avro body   |
 *                   +----+----------------------+-------------+
 *   bare            +-------------+
 *                   | Avro body   |   (only on topics configured as bare)
 *                   +-------------+
 *
 * On a bare topic a body may itself start with 00 (an empty first string)
 * or C3 01, so there a header only wins when it names a registered schema
 * (known fingerprint / schema id); anything else is decoded as bare.
 *
 * Registry: every writer schema (the reader schemas themselves included) is
 * an entry holding its parsed schema, fingerprint, optional Confluent id
 * and its compiled resolver. Compatibility is therefore checked once, in
 * xs_codec_add_writer(); decoding only looks an entry up (a linear scan: a
 * deployment has a handful of schema versions) and runs its resolver.
 * After setup, decode and encode do not modify the codec.
 *
 * Decoding never trusts a length: see codec_resolve.c. The reason strings
 * written on failure end up in the dead-letter queue's reason header.
 */
#include "xsell/codec.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_resolve.h"
#include "codec_schema.h"
#include "schemas.h"

typedef struct writer_entry {
    xs_event_kind_t kind;
    xs_aschema_t *schema;
    xs_resolver_t *res;
    uint64_t fp;
    int32_t confluent_id; /* -1 when none */
    bool by_fingerprint;  /* false for bare-only writers */
} writer_entry_t;

/*
 * Reader fields that map_event() and map_list() read. Their indexes in each
 * record of the reader schemas are looked up by name once (rtables_build,
 * in xs_codec_new), so mapping a message compares no field names.
 */
typedef enum rfield {
    RF_EVENT_ID,
    RF_USER_ID,
    RF_SESSION_ID,
    RF_LIST_ID,
    RF_TS,
    RF_TYPE,
    RF_ITEM_ID,
    RF_CATEGORY,
    RF_ORDER_ID,
    RF_CURRENCY,
    RF_LINES,
    RF_QUANTITY,
    RF_UNIT_PRICE,
    RF_TITLE,
    RF_BRAND,
    RF_PRICE,
    RF_IN_STOCK,
    RF_REPURCHASABLE,
    RF_DELETED,
    RF_GENERATED_AT,
    RF_TRIGGER,
    RF_ITEM_IDS,
    RF_PLACEMENT,
    RF_EXPERIMENT,
    RF_ARM,
    RF_ITEMS,
    RF_SCORE,
    RF_SOURCE,
    RF_BECAUSE_OF,
    RF_MODEL,
    RF_NAME,
    RF_VERSION,
    RF_FAMILY,
    RF_AVAILABLE_FROM,
    RF_AVAILABLE_UNTIL,
    RF__COUNT
} rfield_t;

static const char *const rfield_name[RF__COUNT] = {
    "event_id",
    "user_id",
    "session_id",
    "list_id",
    "ts",
    "type",
    "item_id",
    "category",
    "order_id",
    "currency",
    "lines",
    "quantity",
    "unit_price",
    "title",
    "brand",
    "price",
    "in_stock",
    "repurchasable",
    "deleted",
    "generated_at",
    "trigger",
    "item_ids",
    "placement",
    "experiment",
    "arm",
    "items",
    "score",
    "source",
    "because_of",
    "model",
    "name",
    "version",
    "family",
    "available_from",
    "available_until", /* ItemUpdate version 2 */
};

/* Stack room for a decoded tree: an event or a full list needs no malloc. */
#define XS_DECODE_LOCAL_BYTES 4096

#define XS_READER_RECORDS 16 /* the reader schemas have 8 records */

typedef struct rtable {
    const xs_anode_t *rec;
    int8_t index[RF__COUNT]; /* -1 when the record has no such field */
} rtable_t;

struct xs_codec {
    xs_aschema_t *reader[XS_KIND__COUNT];
    uint64_t reader_fp[XS_KIND__COUNT];
    avro_schema_t avro_schema[XS_KIND__COUNT];
    avro_value_iface_t *avro_iface[XS_KIND__COUNT];
    writer_entry_t **writers;
    size_t n_writers, cap_writers;
    writer_entry_t *bare[XS_KIND__COUNT]; /* NULL: the reader's own entry */
    writer_entry_t *self[XS_KIND__COUNT]; /* the reader schema as a writer */
    rtable_t rtab[XS_READER_RECORDS];     /* field indexes of every reader record */
    size_t n_rtab;
};

/* ======================================================================== */
/* Registry                                                                 */
/* ======================================================================== */

const char *xs_codec_schema_json(xs_event_kind_t kind)
{
    switch (kind) {
    case XS_KIND_CLICK:
        return xs_schemas_text_ClickEvent;
    case XS_KIND_CART:
        return xs_schemas_text_CartEvent;
    case XS_KIND_ITEM:
        return xs_schemas_text_ItemUpdate;
    case XS_KIND_LIST:
        return xs_schemas_text_CrossSellList;
    default:
        return NULL;
    }
}

static void entry_destroy(writer_entry_t *e)
{
    if (!e)
        return;
    xs_codec_resolve_destroy(e->res);
    xs_codec_schema_destroy(e->schema);
    free(e);
}

/* Parses a writer schema and compiles its resolution against kind's reader. */
static xs_err_t entry_new(xs_codec_t *codec, xs_event_kind_t kind, const char *json,
                          writer_entry_t **out, char *errstr, size_t errstr_size)
{
    writer_entry_t *e = calloc(1, sizeof(*e));
    xs_buf_t pcf = {0};
    char msg[256] = "";
    xs_err_t err = XS_ERR_NOMEM;
    *out = NULL;
    if (!e)
        goto out;
    e->kind = kind;
    e->confluent_id = -1;
    if ((err = xs_codec_schema_parse(json, strlen(json), &e->schema, msg, sizeof(msg)))) {
        xs_err_set(errstr, errstr_size, "bad %s writer schema: %s", xs_event_kind_name(kind), msg);
        goto out;
    }
    if ((err = xs_codec_schema_canonical(e->schema, &pcf)))
        goto out;
    e->fp = xs_codec_schema_crc64(pcf.data, pcf.len);
    if ((err = xs_codec_resolve_new(e->schema, codec->reader[kind], &e->res, msg, sizeof(msg)))) {
        xs_err_set(errstr, errstr_size,
                   "%s writer schema 0x%016" PRIx64 " is incompatible with the reader: %s",
                   xs_event_kind_name(kind), e->fp, msg);
        goto out;
    }
    *out = e;
    e = NULL;
out:
    if (err == XS_ERR_NOMEM)
        xs_err_set(errstr, errstr_size, "out of memory");
    xs_buf_free(&pcf);
    entry_destroy(e);
    return err;
}

static bool list_writer_check(xs_codec_t *codec, char *errstr, size_t errstr_size);

/* The field index table of every record of the reader schemas. */
static xs_err_t rtables_build(xs_codec_t *codec, char *errstr, size_t errstr_size)
{
    for (int k = 0; k < XS_KIND__COUNT; k++)
        for (const xs_anode_t *n = codec->reader[k]->nodes; n; n = n->next_alloc) {
            if (n->type != XS_AT_RECORD)
                continue;
            if (codec->n_rtab == XS_READER_RECORDS) {
                xs_err_set(errstr, errstr_size, "internal: more than %d reader records",
                           XS_READER_RECORDS);
                return XS_ERR_SCHEMA;
            }
            rtable_t *t = &codec->rtab[codec->n_rtab++];
            t->rec = n;
            for (int f = 0; f < RF__COUNT; f++) {
                int i = xs_codec_resolve_field_index(n, rfield_name[f]);
                t->index[f] = (int8_t)(i < INT8_MAX ? i : -1);
            }
        }
    return XS_OK;
}

static xs_err_t registry_push(xs_codec_t *codec, writer_entry_t *e)
{
    if (codec->n_writers == codec->cap_writers) {
        size_t cap = codec->cap_writers ? codec->cap_writers * 2 : 8;
        writer_entry_t **w = realloc(codec->writers, cap * sizeof(*w));
        if (!w)
            return XS_ERR_NOMEM;
        codec->writers = w;
        codec->cap_writers = cap;
    }
    codec->writers[codec->n_writers++] = e;
    return XS_OK;
}

static const writer_entry_t *find_fp(const xs_codec_t *codec, uint64_t fp)
{
    for (size_t i = 0; i < codec->n_writers; i++)
        if (codec->writers[i]->by_fingerprint && codec->writers[i]->fp == fp)
            return codec->writers[i];
    return NULL;
}

static const writer_entry_t *find_id(const xs_codec_t *codec, int32_t id)
{
    for (size_t i = 0; i < codec->n_writers; i++)
        if (codec->writers[i]->confluent_id == id)
            return codec->writers[i];
    return NULL;
}

bool xs_codec_has_confluent_id(const xs_codec_t *codec, int32_t id)
{
    return codec && id >= 0 && find_id(codec, id) != NULL;
}

xs_codec_t *xs_codec_new(char *errstr, size_t errstr_size)
{
    xs_codec_t *codec = calloc(1, sizeof(*codec));
    xs_buf_t pcf = {0};
    char msg[256] = "";
    if (!codec) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (int k = 0; k < XS_KIND__COUNT; k++) {
        const char *json = xs_codec_schema_json((xs_event_kind_t)k);
        if (xs_codec_schema_parse(json, strlen(json), &codec->reader[k], msg, sizeof(msg))) {
            xs_err_set(errstr, errstr_size, "embedded %s schema: %s",
                       xs_event_kind_name((xs_event_kind_t)k), msg);
            goto fail;
        }
        xs_buf_reset(&pcf);
        if (xs_codec_schema_canonical(codec->reader[k], &pcf)) {
            xs_err_set(errstr, errstr_size, "out of memory");
            goto fail;
        }
        codec->reader_fp[k] = xs_codec_schema_crc64(pcf.data, pcf.len);
        /* Avro-C encodes with the reader schema, so it must accept it too. */
        if (avro_schema_from_json_length(json, strlen(json), &codec->avro_schema[k]) ||
            !(codec->avro_iface[k] = avro_generic_class_from_schema(codec->avro_schema[k]))) {
            xs_err_set(errstr, errstr_size, "Avro-C rejects the %s schema: %s",
                       xs_event_kind_name((xs_event_kind_t)k), avro_strerror());
            goto fail;
        }
        writer_entry_t *e = NULL;
        if (entry_new(codec, (xs_event_kind_t)k, json, &e, errstr, errstr_size))
            goto fail;
        e->by_fingerprint = true;
        if (registry_push(codec, e)) {
            entry_destroy(e);
            xs_err_set(errstr, errstr_size, "out of memory");
            goto fail;
        }
        codec->self[k] = e;
    }
    if (rtables_build(codec, errstr, errstr_size) || !list_writer_check(codec, errstr, errstr_size))
        goto fail;
    /* Earlier versions of the schemas (schemas/previous/): what producers
     * wrote with them still decodes by its fingerprint, resolved against
     * the current reader (new fields take their defaults). */
    if (xs_codec_add_writer(codec, XS_KIND_ITEM, xs_schemas_text_ItemUpdate_1, -1, msg,
                            sizeof(msg)) != XS_OK) {
        xs_err_set(errstr, errstr_size, "embedded ItemUpdate version 1: %s", msg);
        goto fail;
    }
    xs_buf_free(&pcf);
    return codec;
fail:
    xs_buf_free(&pcf);
    xs_codec_destroy(codec);
    return NULL;
}

void xs_codec_destroy(xs_codec_t *codec)
{
    if (!codec)
        return;
    for (size_t i = 0; i < codec->n_writers; i++)
        entry_destroy(codec->writers[i]);
    free(codec->writers);
    for (int k = 0; k < XS_KIND__COUNT; k++) {
        if (codec->avro_iface[k])
            avro_value_iface_decref(codec->avro_iface[k]);
        if (codec->avro_schema[k])
            avro_schema_decref(codec->avro_schema[k]);
        xs_codec_schema_destroy(codec->reader[k]);
    }
    free(codec);
}

static bool kind_ok(int kind)
{
    return kind >= 0 && kind < XS_KIND__COUNT;
}

xs_err_t xs_codec_add_writer(xs_codec_t *codec, xs_event_kind_t kind, const char *schema_json,
                             int32_t confluent_id, char *errstr, size_t errstr_size)
{
    writer_entry_t *e = NULL;
    xs_err_t err = XS_ERR_INVALID;
    if (!codec || !kind_ok((int)kind) || !schema_json) {
        xs_err_set(errstr, errstr_size, "invalid argument");
        goto out;
    }
    if ((err = entry_new(codec, kind, schema_json, &e, errstr, errstr_size)))
        goto out;
    const writer_entry_t *same = find_fp(codec, e->fp);
    if (same && same->kind != kind) {
        xs_err_set(errstr, errstr_size, "schema 0x%016" PRIx64 " is already registered for %s",
                   e->fp, xs_event_kind_name(same->kind));
        err = XS_ERR_SCHEMA;
        goto out;
    }
    const writer_entry_t *by_id = confluent_id >= 0 ? find_id(codec, confluent_id) : NULL;
    if (by_id) {
        if (by_id->fp == e->fp && by_id->kind == kind) {
            err = XS_OK; /* the same registration again */
            goto out;
        }
        xs_err_set(errstr, errstr_size, "schema id %" PRId32 " is already registered",
                   confluent_id);
        err = XS_ERR_SCHEMA;
        goto out;
    }
    e->by_fingerprint = !same; /* an earlier identical entry already answers the fingerprint */
    e->confluent_id = confluent_id >= 0 ? confluent_id : -1;
    if (!e->by_fingerprint && e->confluent_id < 0) {
        err = XS_OK; /* nothing new */
        goto out;
    }
    if ((err = registry_push(codec, e))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto out;
    }
    e = NULL;
out:
    entry_destroy(e);
    return err;
}

xs_err_t xs_codec_set_bare_writer(xs_codec_t *codec, xs_event_kind_t kind, const char *schema_json,
                                  char *errstr, size_t errstr_size)
{
    writer_entry_t *e = NULL;
    xs_err_t err = XS_ERR_INVALID;
    if (!codec || !kind_ok((int)kind) || !schema_json) {
        xs_err_set(errstr, errstr_size, "invalid argument");
        return err;
    }
    if ((err = entry_new(codec, kind, schema_json, &e, errstr, errstr_size)))
        return err;
    if ((err = registry_push(codec, e))) { /* owned by the registry, found by no key */
        entry_destroy(e);
        xs_err_set(errstr, errstr_size, "out of memory");
        return err;
    }
    codec->bare[kind] = e;
    return XS_OK;
}

uint64_t xs_codec_fingerprint(const xs_codec_t *codec, xs_event_kind_t kind)
{
    return (codec && kind_ok((int)kind)) ? codec->reader_fp[kind] : 0;
}

/* ======================================================================== */
/* Framing                                                                  */
/* ======================================================================== */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Finds the writer entry and the body; XS_ERR_DECODE/SCHEMA + reason. */
static xs_err_t unframe(const xs_codec_t *codec, const uint8_t *p, size_t len, int bare_kind,
                        const writer_entry_t **entry, const uint8_t **body, size_t *body_len,
                        xs_framing_t *framing, char *reason, size_t reason_size)
{
    bool bare_ok = kind_ok(bare_kind);
    if (len == 0) {
        xs_err_set(reason, reason_size, "empty message");
        return XS_ERR_DECODE;
    }
    if (len >= 2 && p[0] == 0xC3 && p[1] == 0x01) {
        if (len >= 10) {
            uint64_t fp = le64(p + 2);
            const writer_entry_t *e = find_fp(codec, fp);
            if (e) {
                *entry = e;
                *body = p + 10;
                *body_len = len - 10;
                *framing = XS_FRAMING_SINGLE_OBJECT;
                return XS_OK;
            }
            if (!bare_ok) {
                xs_err_set(reason, reason_size, "unknown fingerprint 0x%016" PRIx64, fp);
                return XS_ERR_SCHEMA;
            }
        } else if (!bare_ok) {
            xs_err_set(reason, reason_size, "truncated single-object header");
            return XS_ERR_DECODE;
        }
    } else if (p[0] == 0x00) {
        if (len >= 5) {
            int32_t id =
                (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
            const writer_entry_t *e = find_id(codec, id);
            if (e) {
                *entry = e;
                *body = p + 5;
                *body_len = len - 5;
                *framing = XS_FRAMING_CONFLUENT;
                return XS_OK;
            }
            if (!bare_ok) {
                xs_err_set(reason, reason_size, "unknown schema id %" PRId32, id);
                return XS_ERR_SCHEMA;
            }
        } else if (!bare_ok) {
            xs_err_set(reason, reason_size, "truncated Confluent header");
            return XS_ERR_DECODE;
        }
    }
    if (!bare_ok) {
        xs_err_set(reason, reason_size, "not Avro: no magic byte and topic is not bare");
        return XS_ERR_DECODE;
    }
    *entry = codec->bare[bare_kind] ? codec->bare[bare_kind] : codec->self[bare_kind];
    *body = p;
    *body_len = len;
    *framing = XS_FRAMING_BARE;
    return XS_OK;
}

/* ======================================================================== */
/* Reader-shaped tree -> xs_event_t / xs_list_t                             */
/* ======================================================================== */

/* A value with its reader type node. */
typedef struct rv {
    const xs_anode_t *t;
    const xs_aval_t *v;
} rv_t;

static rv_t rv_unwrap(rv_t x)
{
    if (x.t && x.v && x.t->type == XS_AT_UNION && x.v->type == XS_AT_UNION) {
        rv_t y = {x.t->branches[x.v->u.un.branch], x.v->u.un.v};
        return y;
    }
    return x;
}

typedef struct mctx {
    const xs_codec_t *codec;
    char *reason;
    size_t reason_size;
    xs_err_t err;
} mctx_t;

/* Field f of a reader record (through unions); {NULL, NULL} when absent. */
static rv_t rv_field(const mctx_t *m, rv_t rec, rfield_t f)
{
    rv_t none = {NULL, NULL};
    int i = -1;
    rec = rv_unwrap(rec);
    for (size_t k = 0; rec.t && k < m->codec->n_rtab; k++)
        if (m->codec->rtab[k].rec == rec.t) {
            i = m->codec->rtab[k].index[f];
            break;
        }
    if (i < 0 || !rec.v || rec.v->type != XS_AT_RECORD || (size_t)i >= rec.v->u.a.n)
        return none;
    rv_t v = {rec.t->fields[i].type, &rec.v->u.a.v[i]};
    return rv_unwrap(v);
}

static void merr(mctx_t *m, xs_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void merr(mctx_t *m, xs_err_t err, const char *fmt, ...)
{
    if (m->err)
        return;
    m->err = err;
    va_list ap;
    va_start(ap, fmt);
    if (m->reason && m->reason_size)
        vsnprintf(m->reason, m->reason_size, fmt, ap);
    va_end(ap);
}

/* Copies a string field (NULL when the value is null/absent). */
static char *m_str(mctx_t *m, rv_t x, const char *name)
{
    char *s = NULL;
    if (!x.v || (x.v->type != XS_AT_STRING && x.v->type != XS_AT_BYTES))
        return NULL;
    if (memchr(x.v->u.s.p, '\0', x.v->u.s.len)) {
        merr(m, XS_ERR_DECODE, "NUL byte in field %s", name);
        return NULL;
    }
    if (!(s = xs_str_ndup(x.v->u.s.p, x.v->u.s.len)))
        merr(m, XS_ERR_NOMEM, "out of memory");
    return s;
}

static char *m_field_str(mctx_t *m, rv_t rec, rfield_t f)
{
    return m_str(m, rv_field(m, rec, f), rfield_name[f]);
}

static int64_t m_long(rv_t x)
{
    return (x.v && (x.v->type == XS_AT_INT || x.v->type == XS_AT_LONG)) ? x.v->u.l : 0;
}

static bool m_opt_long(rv_t x, int64_t *out)
{
    if (!x.v || (x.v->type != XS_AT_INT && x.v->type != XS_AT_LONG))
        return false;
    *out = x.v->u.l;
    return true;
}

static bool m_double(rv_t x, double *out)
{
    if (!x.v || (x.v->type != XS_AT_DOUBLE && x.v->type != XS_AT_FLOAT))
        return false;
    *out = x.v->u.d;
    return true;
}

static bool m_bool(rv_t x)
{
    return x.v && x.v->type == XS_AT_BOOLEAN && x.v->u.b;
}

static const char *m_symbol(rv_t x)
{
    if (!x.v || x.v->type != XS_AT_ENUM || x.v->u.e < 0 || (size_t)x.v->u.e >= x.t->n_symbols)
        return NULL;
    return x.t->symbols[x.v->u.e];
}

static int m_enum(mctx_t *m, rv_t x, int (*from_name)(const char *), const char *name)
{
    int v = from_name(m_symbol(x));
    if (v < 0)
        merr(m, XS_ERR_DECODE, "unsupported %s symbol %s", name,
             m_symbol(x) ? m_symbol(x) : "(none)");
    return v < 0 ? 0 : v;
}

static void map_event(mctx_t *m, xs_event_kind_t kind, rv_t root, xs_event_t *ev)
{
    if (kind == XS_KIND_ITEM) {
        ev->item_id = m_field_str(m, root, RF_ITEM_ID);
        ev->title = m_field_str(m, root, RF_TITLE);
        ev->category = m_field_str(m, root, RF_CATEGORY);
        ev->brand = m_field_str(m, root, RF_BRAND);
        ev->family = m_field_str(m, root, RF_FAMILY);
        ev->has_price = m_double(rv_field(m, root, RF_PRICE), &ev->price);
        ev->has_available_from =
            m_opt_long(rv_field(m, root, RF_AVAILABLE_FROM), &ev->available_from);
        ev->has_available_until =
            m_opt_long(rv_field(m, root, RF_AVAILABLE_UNTIL), &ev->available_until);
        ev->in_stock = m_bool(rv_field(m, root, RF_IN_STOCK));
        ev->repurchasable = m_bool(rv_field(m, root, RF_REPURCHASABLE));
        ev->deleted = m_bool(rv_field(m, root, RF_DELETED));
        ev->ts = m_long(rv_field(m, root, RF_TS));
        return;
    }
    ev->event_id = m_field_str(m, root, RF_EVENT_ID);
    ev->user_id = m_field_str(m, root, RF_USER_ID);
    ev->session_id = m_field_str(m, root, RF_SESSION_ID);
    ev->list_id = m_field_str(m, root, RF_LIST_ID);
    ev->ts = m_long(rv_field(m, root, RF_TS));
    if (kind == XS_KIND_CLICK) {
        ev->type = m_enum(m, rv_field(m, root, RF_TYPE), xs_event_click_type_from_name, "type");
        ev->item_id = m_field_str(m, root, RF_ITEM_ID);
        ev->category = m_field_str(m, root, RF_CATEGORY);
        return;
    }
    ev->type = m_enum(m, rv_field(m, root, RF_TYPE), xs_event_cart_type_from_name, "type");
    ev->order_id = m_field_str(m, root, RF_ORDER_ID);
    ev->currency = m_field_str(m, root, RF_CURRENCY);
    rv_t lines = rv_field(m, root, RF_LINES);
    if (!lines.v || lines.v->type != XS_AT_ARRAY)
        return;
    for (size_t i = 0; !m->err && i < lines.v->u.a.n; i++) {
        rv_t line = {lines.t->child, &lines.v->u.a.v[i]};
        char *item = m_field_str(m, line, RF_ITEM_ID);
        double price = 0;
        bool has_price = m_double(rv_field(m, line, RF_UNIT_PRICE), &price);
        int64_t qty = m_long(rv_field(m, line, RF_QUANTITY));
        if (!m->err && !item)
            merr(m, XS_ERR_DECODE, "cart line %zu without item_id", i);
        if (!m->err && (qty < INT32_MIN || qty > INT32_MAX))
            merr(m, XS_ERR_DECODE, "quantity out of range in cart line %zu", i);
        if (!m->err && xs_event_add_line(ev, item, (int32_t)qty, price, has_price))
            merr(m, XS_ERR_NOMEM, "out of memory");
        free(item);
    }
}

static void map_list(mctx_t *m, rv_t root, void *out)
{
    xs_list_t *list = out;
    char *id = m_field_str(m, root, RF_LIST_ID);
    if (id && strlen(id) >= sizeof(list->list_id))
        merr(m, XS_ERR_DECODE, "list_id longer than %zu bytes", sizeof(list->list_id) - 1);
    else if (id)
        memcpy(list->list_id, id, strlen(id) + 1);
    free(id);
    list->user_id = m_field_str(m, root, RF_USER_ID);
    list->generated_at = m_long(rv_field(m, root, RF_GENERATED_AT));
    rv_t trig = rv_field(m, root, RF_TRIGGER);
    list->trigger_event_id = m_field_str(m, trig, RF_EVENT_ID);
    list->trigger_type = m_field_str(m, trig, RF_TYPE);
    rv_t ids = rv_field(m, trig, RF_ITEM_IDS);
    if (ids.v && ids.v->type == XS_AT_ARRAY) {
        if (ids.v->u.a.n > XS_TRIGGER_MAX_ITEMS)
            merr(m, XS_ERR_DECODE, "too many trigger item_ids (%zu > %d)", ids.v->u.a.n,
                 XS_TRIGGER_MAX_ITEMS);
        for (size_t i = 0; !m->err && i < ids.v->u.a.n; i++) {
            rv_t s = {ids.t->child, &ids.v->u.a.v[i]};
            list->trigger_items[list->n_trigger_items++] = m_str(m, s, "trigger.item_ids");
        }
    }
    list->placement =
        m_enum(m, rv_field(m, root, RF_PLACEMENT), xs_event_placement_from_name, "placement");
    list->experiment = m_field_str(m, root, RF_EXPERIMENT);
    list->arm = m_field_str(m, root, RF_ARM);
    rv_t items = rv_field(m, root, RF_ITEMS);
    if (items.v && items.v->type == XS_AT_ARRAY) {
        if (items.v->u.a.n > XS_LIST_MAX_ITEMS)
            merr(m, XS_ERR_DECODE, "too many items (%zu > %d)", items.v->u.a.n, XS_LIST_MAX_ITEMS);
        for (size_t i = 0; !m->err && i < items.v->u.a.n; i++) {
            rv_t it = {items.t->child, &items.v->u.a.v[i]};
            xs_rec_t *rec = &list->items[list->n_items++];
            rec->item_id = m_field_str(m, it, RF_ITEM_ID);
            m_double(rv_field(m, it, RF_SCORE), &rec->score);
            rec->source =
                m_enum(m, rv_field(m, it, RF_SOURCE), xs_event_source_from_name, "source");
            rv_t because = rv_field(m, it, RF_BECAUSE_OF);
            if (!because.v || because.v->type != XS_AT_ARRAY)
                continue;
            if (because.v->u.a.n > XS_BECAUSE_MAX)
                merr(m, XS_ERR_DECODE, "too many because_of (%zu > %d)", because.v->u.a.n,
                     XS_BECAUSE_MAX);
            for (size_t k = 0; !m->err && k < because.v->u.a.n; k++) {
                rv_t s = {because.t->child, &because.v->u.a.v[k]};
                rec->because_of[rec->n_because++] = m_str(m, s, "because_of");
            }
        }
    }
    rv_t model = rv_field(m, root, RF_MODEL);
    list->model_name = m_field_str(m, model, RF_NAME);
    list->model_version = m_field_str(m, model, RF_VERSION);
}

/* Unframes and decodes the body into a reader-shaped tree. */
static xs_err_t decode_tree(const xs_codec_t *codec, const void *data, size_t len, int bare_kind,
                            xs_apool_t *pool, const writer_entry_t **entry, rv_t *root,
                            xs_framing_t *framing, char *reason, size_t reason_size)
{
    const uint8_t *body = NULL;
    size_t body_len = 0;
    xs_aval_t *v = NULL;
    xs_framing_t fr = XS_FRAMING_BARE;
    xs_err_t err =
        unframe(codec, data, len, bare_kind, entry, &body, &body_len, &fr, reason, reason_size);
    if (err)
        return err;
    if (framing)
        *framing = fr;
    if ((err =
             xs_codec_resolve_decode((*entry)->res, body, body_len, pool, &v, reason, reason_size)))
        return err;
    root->t = codec->reader[(*entry)->kind]->root;
    root->v = v;
    return XS_OK;
}

xs_err_t xs_codec_decode(xs_codec_t *codec, const void *data, size_t len, int bare_kind,
                         xs_event_t *ev, xs_event_kind_t *kind_out, xs_framing_t *framing_out,
                         char *reason, size_t reason_size)
{
    max_align_t local[XS_DECODE_LOCAL_BYTES / sizeof(max_align_t)];
    xs_apool_t pool;
    const writer_entry_t *entry = NULL;
    rv_t root = {NULL, NULL};
    mctx_t m = {.codec = codec, .reason = reason, .reason_size = reason_size};
    xs_err_t err = XS_ERR_INVALID;
    xs_codec_resolve_pool_init(&pool, local, sizeof(local));
    xs_event_init(ev, XS_KIND_CLICK);
    if (!codec || (!data && len) || (bare_kind >= 0 && !kind_ok(bare_kind)) ||
        bare_kind == XS_KIND_LIST) {
        xs_err_set(reason, reason_size, "invalid argument");
        goto out;
    }
    if ((err = decode_tree(codec, data, len, bare_kind, &pool, &entry, &root, framing_out, reason,
                           reason_size)))
        goto out;
    if (entry->kind == XS_KIND_LIST) {
        xs_err_set(reason, reason_size, "a CrossSellList is not an input event");
        err = XS_ERR_SCHEMA;
        goto out;
    }
    xs_event_init(ev, entry->kind);
    map_event(&m, entry->kind, root, ev);
    if ((err = m.err))
        goto out;
    if (kind_out)
        *kind_out = entry->kind;
out:
    if (err)
        xs_event_clear(ev);
    xs_codec_resolve_pool_free(&pool);
    return err;
}

/* What a list decoder does with the tree of a CrossSellList (m->err on failure). */
typedef void (*list_map_fn)(mctx_t *m, rv_t root, void *out);

/* Decodes a message that must be a CrossSellList into its tree (in a pool on
 * the stack, spilling to the heap) and hands the root to fn. */
static xs_err_t decode_list_with(xs_codec_t *codec, const void *data, size_t len, list_map_fn fn,
                                 void *out, char *reason, size_t reason_size)
{
    max_align_t local[XS_DECODE_LOCAL_BYTES / sizeof(max_align_t)];
    xs_apool_t pool;
    const writer_entry_t *entry = NULL;
    rv_t root = {NULL, NULL};
    mctx_t m = {.codec = codec, .reason = reason, .reason_size = reason_size};
    if (!codec || (!data && len)) {
        xs_err_set(reason, reason_size, "invalid argument");
        return XS_ERR_INVALID;
    }
    xs_codec_resolve_pool_init(&pool, local, sizeof(local));
    xs_err_t err =
        decode_tree(codec, data, len, -1, &pool, &entry, &root, NULL, reason, reason_size);
    if (!err && entry->kind != XS_KIND_LIST) {
        xs_err_set(reason, reason_size, "a %s is not a CrossSellList",
                   xs_event_kind_name(entry->kind));
        err = XS_ERR_SCHEMA;
    }
    if (!err) {
        fn(&m, root, out);
        err = m.err;
    }
    xs_codec_resolve_pool_free(&pool);
    return err;
}

xs_err_t xs_codec_decode_list(xs_codec_t *codec, const void *data, size_t len, xs_list_t *list,
                              char *reason, size_t reason_size)
{
    xs_event_list_init(list);
    xs_err_t err = decode_list_with(codec, data, len, map_list, list, reason, reason_size);
    if (err)
        xs_event_list_clear(list);
    return err;
}

/* A string field as a pointer into the message; false when absent. */
static bool ref_str(const mctx_t *m, rv_t rec, rfield_t f, const char **p, size_t *len)
{
    rv_t x = rv_field(m, rec, f);
    *p = NULL;
    *len = 0;
    if (!x.v || (x.v->type != XS_AT_STRING && x.v->type != XS_AT_BYTES))
        return false;
    *p = x.v->u.s.p;
    *len = x.v->u.s.len;
    return true;
}

static void map_list_ref(mctx_t *m, rv_t root, void *out)
{
    xs_list_ref_t *ref = out;
    if (!ref_str(m, root, RF_LIST_ID, &ref->list_id, &ref->list_id_len) ||
        !ref_str(m, root, RF_USER_ID, &ref->user_id, &ref->user_id_len) ||
        !ref_str(m, rv_field(m, root, RF_TRIGGER), RF_EVENT_ID, &ref->trigger_event_id,
                 &ref->trigger_event_id_len)) {
        xs_err_set(m->reason, m->reason_size, "CrossSellList without list_id, user_id or trigger");
        m->err = XS_ERR_DECODE;
    }
}

xs_err_t xs_codec_peek_list(xs_codec_t *codec, const void *data, size_t len, xs_list_ref_t *ref,
                            char *reason, size_t reason_size)
{
    memset(ref, 0, sizeof(*ref));
    xs_err_t err = decode_list_with(codec, data, len, map_list_ref, ref, reason, reason_size);
    if (err)
        memset(ref, 0, sizeof(*ref));
    return err;
}

/* ======================================================================== */
/* Encoding (Avro-C generic values, reader schema)                          */
/* ======================================================================== */

static int av_field(avro_value_t *rec, const char *name, avro_value_t *out)
{
    return avro_value_get_by_name(rec, name, out, NULL);
}

static int av_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    if (!s || av_field(rec, name, &f))
        return EINVAL;
    return avro_value_set_string(&f, s);
}

static int av_long(avro_value_t *rec, const char *name, int64_t v)
{
    avro_value_t f;
    return av_field(rec, name, &f) ? EINVAL : avro_value_set_long(&f, v);
}

static int av_int(avro_value_t *rec, const char *name, int32_t v)
{
    avro_value_t f;
    return av_field(rec, name, &f) ? EINVAL : avro_value_set_int(&f, v);
}

static int av_double(avro_value_t *rec, const char *name, double v)
{
    avro_value_t f;
    return av_field(rec, name, &f) ? EINVAL : avro_value_set_double(&f, v);
}

static int av_bool(avro_value_t *rec, const char *name, bool v)
{
    avro_value_t f;
    return av_field(rec, name, &f) ? EINVAL : avro_value_set_boolean(&f, v);
}

static int av_enum(avro_value_t *rec, const char *name, const char *symbol)
{
    avro_value_t f;
    if (!symbol || av_field(rec, name, &f))
        return EINVAL;
    int idx = avro_schema_enum_get_by_name(avro_value_get_schema(&f), symbol);
    return idx < 0 ? EINVAL : avro_value_set_enum(&f, idx);
}

/* Selects the union branch of the given Avro type; *branch receives it. */
static int av_branch(avro_value_t *rec, const char *name, avro_type_t type, avro_value_t *branch)
{
    avro_value_t f;
    if (av_field(rec, name, &f))
        return EINVAL;
    avro_schema_t u = avro_value_get_schema(&f);
    if (!is_avro_union(u))
        return EINVAL;
    for (size_t i = 0; i < avro_schema_union_size(u); i++)
        if (avro_typeof(avro_schema_union_branch(u, (int)i)) == type)
            return avro_value_set_branch(&f, (int)i, branch);
    return EINVAL;
}

static int av_opt_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t b;
    if (!s)
        return av_branch(rec, name, AVRO_NULL, &b) || avro_value_set_null(&b);
    return av_branch(rec, name, AVRO_STRING, &b) || avro_value_set_string(&b, s);
}

static int av_opt_double(avro_value_t *rec, const char *name, bool has, double v)
{
    avro_value_t b;
    if (!has)
        return av_branch(rec, name, AVRO_NULL, &b) || avro_value_set_null(&b);
    return av_branch(rec, name, AVRO_DOUBLE, &b) || avro_value_set_double(&b, v);
}

static int av_opt_long(avro_value_t *rec, const char *name, bool has, int64_t v)
{
    avro_value_t b;
    if (!has)
        return av_branch(rec, name, AVRO_NULL, &b) || avro_value_set_null(&b);
    return av_branch(rec, name, AVRO_INT64, &b) || avro_value_set_long(&b, v);
}

static int av_append_str(avro_value_t *arr, const char *s)
{
    avro_value_t e;
    if (!s)
        return EINVAL;
    return avro_value_append(arr, &e, NULL) || avro_value_set_string(&e, s);
}

static int fill_event(avro_value_t *rec, const xs_event_t *ev)
{
    int rc = 0;
    if (ev->kind == XS_KIND_ITEM) {
        rc = rc || av_str(rec, "item_id", ev->item_id);
        rc = rc || av_opt_str(rec, "title", ev->title);
        rc = rc || av_opt_str(rec, "category", ev->category);
        rc = rc || av_opt_str(rec, "brand", ev->brand);
        rc = rc || av_opt_str(rec, "family", ev->family);
        rc = rc || av_opt_double(rec, "price", ev->has_price, ev->price);
        rc = rc || av_bool(rec, "in_stock", ev->in_stock);
        rc = rc || av_bool(rec, "repurchasable", ev->repurchasable);
        rc = rc || av_bool(rec, "deleted", ev->deleted);
        rc = rc || av_long(rec, "ts", ev->ts);
        rc = rc || av_opt_long(rec, "available_from", ev->has_available_from, ev->available_from);
        rc =
            rc || av_opt_long(rec, "available_until", ev->has_available_until, ev->available_until);
        return rc;
    }
    rc = rc || av_str(rec, "event_id", ev->event_id);
    rc = rc || av_str(rec, "user_id", ev->user_id);
    rc = rc || av_opt_str(rec, "session_id", ev->session_id);
    rc = rc || av_opt_str(rec, "list_id", ev->list_id);
    rc = rc || av_long(rec, "ts", ev->ts);
    if (ev->kind == XS_KIND_CLICK) {
        rc = rc || av_enum(rec, "type",
                           ev->type >= 0 && ev->type < XS_CLICK__COUNT
                               ? xs_event_click_type_name((xs_click_type_t)ev->type)
                               : NULL);
        rc = rc || av_opt_str(rec, "item_id", ev->item_id);
        rc = rc || av_opt_str(rec, "category", ev->category);
        return rc;
    }
    rc = rc || av_enum(rec, "type",
                       ev->type >= 0 && ev->type < XS_CART__COUNT
                           ? xs_event_cart_type_name((xs_cart_type_t)ev->type)
                           : NULL);
    rc = rc || av_opt_str(rec, "order_id", ev->order_id);
    rc = rc || av_opt_str(rec, "currency", ev->currency);
    avro_value_t lines;
    rc = rc || av_field(rec, "lines", &lines);
    for (size_t i = 0; !rc && i < ev->n_lines; i++) {
        avro_value_t line;
        const xs_line_t *l = &ev->lines[i];
        rc = rc || avro_value_append(&lines, &line, NULL);
        rc = rc || av_str(&line, "item_id", l->item_id);
        rc = rc || av_int(&line, "quantity", l->quantity);
        rc = rc || av_opt_double(&line, "unit_price", l->has_unit_price, l->unit_price);
    }
    return rc;
}

static int fill_list(avro_value_t *rec, const xs_list_t *list)
{
    int rc = 0;
    avro_value_t trig, ids, items, model;
    rc = rc || av_str(rec, "list_id", list->list_id);
    rc = rc || av_str(rec, "user_id", list->user_id);
    rc = rc || av_long(rec, "generated_at", list->generated_at);
    rc = rc || av_field(rec, "trigger", &trig);
    rc = rc || av_str(&trig, "event_id", list->trigger_event_id);
    rc = rc || av_str(&trig, "type", list->trigger_type);
    rc = rc || av_field(&trig, "item_ids", &ids);
    if (list->n_trigger_items < 0 || list->n_trigger_items > XS_TRIGGER_MAX_ITEMS ||
        list->n_items < 0 || list->n_items > XS_LIST_MAX_ITEMS)
        return EINVAL;
    for (int i = 0; !rc && i < list->n_trigger_items; i++)
        rc = av_append_str(&ids, list->trigger_items[i]);
    rc = rc || av_enum(rec, "placement",
                       list->placement >= 0 && list->placement < XS_PLACEMENT__COUNT
                           ? xs_event_placement_name(list->placement)
                           : NULL);
    rc = rc || av_opt_str(rec, "experiment", list->experiment);
    rc = rc || av_opt_str(rec, "arm", list->arm);
    rc = rc || av_field(rec, "items", &items);
    for (int i = 0; !rc && i < list->n_items; i++) {
        const xs_rec_t *r = &list->items[i];
        avro_value_t it, because;
        if (r->n_because < 0 || r->n_because > XS_BECAUSE_MAX)
            return EINVAL;
        rc = rc || avro_value_append(&items, &it, NULL);
        rc = rc || av_str(&it, "item_id", r->item_id);
        rc = rc || av_double(&it, "score", r->score);
        rc = rc || av_enum(&it, "source",
                           r->source >= 0 && r->source < XS_SOURCE__COUNT
                               ? xs_event_source_name(r->source)
                               : NULL);
        rc = rc || av_field(&it, "because_of", &because);
        for (int k = 0; !rc && k < r->n_because; k++)
            rc = av_append_str(&because, r->because_of[k]);
    }
    rc = rc || av_field(rec, "model", &model);
    rc = rc || av_str(&model, "name", list->model_name);
    rc = rc || av_str(&model, "version", list->model_version);
    return rc;
}

/* Builds a value of kind's reader schema with fill(), writes header + body. */
static xs_err_t encode(xs_codec_t *codec, xs_event_kind_t kind,
                       int (*fill)(avro_value_t *, const void *), const void *obj, xs_buf_t *out)
{
    avro_value_t val;
    avro_writer_t writer = NULL;
    bool have_val = false;
    size_t size = 0;
    xs_err_t err = XS_ERR_INVALID;
    if (!codec || !obj || !out)
        goto out;
    if (avro_generic_value_new(codec->avro_iface[kind], &val)) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    have_val = true;
    if (fill(&val, obj) || avro_value_sizeof(&val, &size) || size > INT64_MAX - 10)
        goto out;
    if ((err = xs_buf_reserve(out, 10 + size)))
        goto out;
    uint8_t *p = out->data + out->len;
    uint64_t fp = codec->reader_fp[kind];
    p[0] = 0xC3;
    p[1] = 0x01;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)(fp >> (8 * i));
    err = XS_ERR_NOMEM;
    if (!(writer = avro_writer_memory((const char *)p + 10, (int64_t)size)))
        goto out;
    err = XS_ERR_INVALID;
    if (avro_value_write(writer, &val))
        goto out;
    out->len += 10 + size;
    err = XS_OK;
out:
    if (writer)
        avro_writer_free(writer);
    if (have_val)
        avro_value_decref(&val);
    return err;
}

static int fill_event_cb(avro_value_t *rec, const void *obj)
{
    return fill_event(rec, obj);
}

static int fill_list_cb(avro_value_t *rec, const void *obj)
{
    return fill_list(rec, obj);
}

xs_err_t xs_codec_encode_event(xs_codec_t *codec, const xs_event_t *ev, xs_buf_t *out)
{
    if (!ev || (ev->kind != XS_KIND_CLICK && ev->kind != XS_KIND_CART && ev->kind != XS_KIND_ITEM))
        return XS_ERR_INVALID;
    return encode(codec, ev->kind, fill_event_cb, ev, out);
}

/* ======================================================================== */
/* CrossSellList: direct writer                                             */
/* ======================================================================== */

/*
 * The worker encodes one list per trigger event, so this is on its hot
 * path: Avro-C's generic values cost ~5 us a list (a value tree built and
 * freed, every field looked up by name), this writer ~0.1 us. It writes the
 * same bytes: fields in the order of schemas/CrossSellList.avsc, enums as
 * xs_placement_t / xs_source_t (whose order is the schema's symbol order),
 * optional strings as the union ["null", "string"], arrays as one block and
 * the terminating 0 (none for an empty array). xs_codec_new() refuses to
 * create a codec when this writer and Avro-C's encoding of the embedded
 * schema disagree on a sample list of each placement (list_writer_check),
 * and test_codec compares the two on many lists.
 */

/* Zig-zag varint (Avro int and long): at most 10 bytes. */
static uint8_t *put_long(uint8_t *p, int64_t v)
{
    uint64_t z = (uint64_t)v << 1 ^ (0 - ((uint64_t)v >> 63));
    while (z > 0x7F) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    return p;
}

/* Length and bytes: at most 10 + strlen(s). */
static uint8_t *put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p = put_long(p, (int64_t)n);
    memcpy(p, s, n);
    return p + n;
}

static uint8_t *put_double(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
    return p + 8;
}

/* ["null", "string"]: branch 0 is null, branch 1 a string. */
static uint8_t *put_opt_str(uint8_t *p, const char *s)
{
    *p++ = s ? 2 : 0; /* the branch index as a varint */
    return s ? put_str(p, s) : p;
}

/* An array of n strings: one block (when n > 0), then the end marker. */
static uint8_t *put_str_array(uint8_t *p, char *const *s, int n)
{
    if (n > 0) {
        p = put_long(p, n);
        for (int i = 0; i < n; i++)
            p = put_str(p, s[i]);
    }
    *p++ = 0;
    return p;
}

/*
 * An upper bound of the list's body size, or 0 for what fill_list() refuses:
 * a missing required string, a count or an enum out of range.
 */
static size_t list_bound(const xs_list_t *list)
{
    if (!list->user_id || !list->trigger_event_id || !list->trigger_type || !list->model_name ||
        !list->model_version || list->n_trigger_items < 0 ||
        list->n_trigger_items > XS_TRIGGER_MAX_ITEMS || list->n_items < 0 ||
        list->n_items > XS_LIST_MAX_ITEMS || list->placement < 0 ||
        list->placement >= XS_PLACEMENT__COUNT ||
        !memchr(list->list_id, '\0', sizeof(list->list_id)))
        return 0;
    /* 9 strings, 3 array blocks and an end each, a long, an enum, 2 branches */
    size_t n = 9 * 10 + 6 * 10 + 10 + 10 + 2 + strlen(list->list_id) + strlen(list->user_id) +
               strlen(list->trigger_event_id) + strlen(list->trigger_type) +
               strlen(list->model_name) + strlen(list->model_version) +
               (list->experiment ? strlen(list->experiment) : 0) +
               (list->arm ? strlen(list->arm) : 0);
    for (int i = 0; i < list->n_trigger_items; i++) {
        if (!list->trigger_items[i])
            return 0;
        n += 10 + strlen(list->trigger_items[i]);
    }
    for (int i = 0; i < list->n_items; i++) {
        const xs_rec_t *r = &list->items[i];
        if (!r->item_id || r->source < 0 || r->source >= XS_SOURCE__COUNT || r->n_because < 0 ||
            r->n_because > XS_BECAUSE_MAX)
            return 0;
        /* item_id, score, source, because_of block and end */
        n += 10 + strlen(r->item_id) + 8 + 10 + 20;
        for (int k = 0; k < r->n_because; k++) {
            if (!r->because_of[k])
                return 0;
            n += 10 + strlen(r->because_of[k]);
        }
    }
    return n;
}

xs_err_t xs_codec_encode_list(xs_codec_t *codec, const xs_list_t *list, xs_buf_t *out)
{
    size_t bound = codec && list && out ? list_bound(list) : 0;
    if (!bound)
        return XS_ERR_INVALID;
    xs_err_t err = xs_buf_reserve(out, 10 + bound);
    if (err)
        return err;
    uint8_t *p = out->data + out->len;
    uint64_t fp = codec->reader_fp[XS_KIND_LIST];
    *p++ = 0xC3;
    *p++ = 0x01;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(fp >> (8 * i));
    p = put_str(p, list->list_id);
    p = put_str(p, list->user_id);
    p = put_long(p, list->generated_at);
    p = put_str(p, list->trigger_event_id);
    p = put_str(p, list->trigger_type);
    p = put_str_array(p, list->trigger_items, list->n_trigger_items);
    p = put_long(p, list->placement);
    p = put_opt_str(p, list->experiment);
    p = put_opt_str(p, list->arm);
    if (list->n_items > 0) {
        p = put_long(p, list->n_items);
        for (int i = 0; i < list->n_items; i++) {
            const xs_rec_t *r = &list->items[i];
            p = put_str(p, r->item_id);
            p = put_double(p, r->score);
            p = put_long(p, r->source);
            p = put_str_array(p, r->because_of, r->n_because);
        }
    }
    *p++ = 0;
    p = put_str(p, list->model_name);
    p = put_str(p, list->model_version);
    out->len = (size_t)(p - out->data);
    return XS_OK;
}

/*
 * The direct writer against Avro-C's encoding of the embedded schema: one
 * sample list per placement, every source, both union branches, empty and
 * full arrays, multi-byte varints and strings. False + errstr on a mismatch.
 */
static bool list_writer_check(xs_codec_t *codec, char *errstr, size_t errstr_size)
{
    static char *const ids[] = {"a", "bb", "\xc3\xa9t\xc3\xa9", ""};
    char long_id[200];
    xs_buf_t direct = {0}, generic = {0};
    bool ok = true;
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    for (int p = 0; p < XS_PLACEMENT__COUNT && ok; p++) {
        xs_list_t l;
        xs_event_list_init(&l); /* strings borrowed: never cleared */
        memcpy(l.list_id, "0123456789abcdef0123456789abcdef", 33);
        l.user_id = ids[p];
        l.generated_at = p == 0 ? -1 : (int64_t)1 << (20 * p);
        l.trigger_event_id = long_id;
        l.trigger_type = ids[(p + 1) % 4];
        l.n_trigger_items = p == 1 ? 0 : XS_TRIGGER_MAX_ITEMS;
        for (int i = 0; i < l.n_trigger_items; i++)
            l.trigger_items[i] = ids[i % 4];
        l.placement = (xs_placement_t)p;
        l.experiment = p % 2 ? ids[p] : NULL;
        l.arm = p % 2 ? NULL : long_id;
        l.n_items = p == 2 ? 0 : XS_LIST_MAX_ITEMS;
        for (int i = 0; i < l.n_items; i++) {
            l.items[i].item_id = ids[i % 4];
            l.items[i].score = i ? 1.0 / i : -0.0;
            l.items[i].source = (xs_source_t)(i % XS_SOURCE__COUNT);
            l.items[i].n_because = i % (XS_BECAUSE_MAX + 1);
            for (int k = 0; k < l.items[i].n_because; k++)
                l.items[i].because_of[k] = ids[(i + k) % 4];
        }
        l.model_name = ids[p];
        l.model_version = long_id;
        xs_buf_reset(&direct);
        xs_buf_reset(&generic);
        ok = xs_codec_encode_list(codec, &l, &direct) == XS_OK &&
             encode(codec, XS_KIND_LIST, fill_list_cb, &l, &generic) == XS_OK &&
             direct.len == generic.len && memcmp(direct.data, generic.data, direct.len) == 0;
        if (!ok)
            xs_err_set(errstr, errstr_size,
                       "internal: the CrossSellList writer does not match the embedded "
                       "schema (placement %s)",
                       xs_event_placement_name((xs_placement_t)p));
    }
    xs_buf_free(&direct);
    xs_buf_free(&generic);
    return ok;
}
