/*
 * Bad-input test: dead letters never stop a partition.
 *
 * 150 good users each send a PRODUCT_VIEW and a cart ADD (plus 20 good
 * catalog updates); after every good message one bad message follows, of
 * 21 kinds in rotation (each kind 15 times), on 2-partition input topics:
 *
 *   framing:    empty message, not Avro, unknown single-object
 *               fingerprint, truncated single-object header, unknown
 *               Confluent schema id, truncated Confluent header
 *   Avro body:  truncated body, trailing garbage, a CrossSellList on an
 *               input topic, an ItemUpdate on the clicks topic
 *   validation: empty user_id, empty event_id, timestamp before
 *               limits.min_ts, timestamp after limits.max_ts, 51 cart lines
 *               (limit 50), a 65-byte user_id (limit 64), a PRODUCT_VIEW
 *               without item_id, quantity 0, an ADD without lines, an
 *               ItemUpdate with an empty item_id
 *   size:       a valid event with a 600 KB user id (limits.max_message_bytes 4096)
 *
 * The worker (in-process, --until-end) must finish normally; its counters
 * must say 320 events and 320 dead letters. Every good event is in the
 * state (each good user's profile: 2 events, the viewed item, the carted
 * item in the cart; no record of anything from a bad message). Every bad
 * message is on xsell.dlq exactly once with its original key and bytes and
 * an xsell.reason header naming the right problem (headers read with
 * kcat, which the development tooling already requires).
 * Runtime: about 10 s (group join ~3 s).
 *
 * test_bad_utf8: ids and strings that are not well-formed UTF-8 (bytes
 * 0xFF 0xFE, an encoded surrogate, overlong forms, a code point above
 * U+10FFFF, a cut sequence) in every string field of clicks, cart events
 * and catalog updates, between good events that do publish lists: each is
 * dead-lettered with a "... is not valid UTF-8" reason; the state holds
 * only good users, items and names; every published list holds only good,
 * well-formed strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsproc.h"
#include "xstest.h"
#include "xsell/hash.h"
#include "xsell/profile.h"
#include "xsell/store.h"

#define T0 INT64_C(1704067200000)
#define N_USERS 150
#define N_CATALOG 20

enum {
    K_EMPTY,
    K_NOT_AVRO,
    K_UNKNOWN_FP,
    K_TRUNC_SO,
    K_UNKNOWN_ID,
    K_TRUNC_CONF,
    K_TRUNC_BODY,
    K_TRAILING,
    K_LIST_ON_INPUT,
    K_WRONG_KIND,
    K_EMPTY_USER,
    K_EMPTY_EVENT,
    K_TS_OLD,
    K_TS_FUTURE,
    K_TOO_MANY_LINES,
    K_LONG_ID,
    K_MISSING_ITEM,
    K_QTY,
    K_NO_LINES,
    K_EMPTY_CATALOG_ID,
    K_OVERSIZE,
    K__COUNT
};

static const struct {
    const char *name;
    const char *topic;
    const char *reason; /* expected substring of xsell.reason */
} kinds[K__COUNT] = {
    [K_EMPTY] = {"empty", "xsell.clicks", "empty message"},
    [K_NOT_AVRO] = {"not-avro", "xsell.cart", "not Avro: no magic byte"},
    [K_UNKNOWN_FP] = {"unknown-fp", "xsell.clicks", "unknown fingerprint 0x"},
    [K_TRUNC_SO] = {"trunc-so", "xsell.cart", "truncated single-object header"},
    [K_UNKNOWN_ID] = {"unknown-id", "xsell.clicks", "unknown schema id 999"},
    [K_TRUNC_CONF] = {"trunc-conf", "xsell.cart", "truncated Confluent header"},
    [K_TRUNC_BODY] = {"trunc-body", "xsell.clicks", "truncated Avro body"},
    [K_TRAILING] = {"trailing", "xsell.cart", "trailing garbage after Avro body"},
    [K_LIST_ON_INPUT] = {"list", "xsell.cart", "a CrossSellList is not an input event"},
    [K_WRONG_KIND] = {"wrong-kind", "xsell.clicks", "unexpected ItemUpdate record on topic"},
    [K_EMPTY_USER] = {"empty-user", "xsell.clicks", "empty user_id"},
    [K_EMPTY_EVENT] = {"empty-event", "xsell.cart", "empty event_id"},
    [K_TS_OLD] = {"ts-old", "xsell.clicks", "timestamp out of range"},
    [K_TS_FUTURE] = {"ts-future", "xsell.cart", "timestamp out of range"},
    [K_TOO_MANY_LINES] = {"lines", "xsell.cart", "too many lines (51 > 50)"},
    [K_LONG_ID] = {"long-id", "xsell.clicks", "user_id too long (65 > 64 bytes)"},
    [K_MISSING_ITEM] = {"no-item", "xsell.clicks", "missing item_id"},
    [K_QTY] = {"qty", "xsell.cart", "quantity out of range (0)"},
    [K_NO_LINES] = {"no-lines", "xsell.cart", "no lines in ADD"},
    [K_EMPTY_CATALOG_ID] = {"catalog-id", "xsell.catalog", "empty item_id"},
    [K_OVERSIZE] = {"oversize", "xsell.clicks", "message too large (6"},
};

typedef struct bad_msg {
    char key[48];
    int kind;
    uint8_t *value;
    size_t len;
    bool seen;
} bad_msg_t;

static bad_msg_t bads[2 * N_USERS + N_CATALOG];
static size_t n_bad;

static void encode(xs_codec_t *codec, const xs_event_t *ev, xs_buf_t *b)
{
    xs_buf_reset(b);
    assert_int_equal(xs_codec_encode_event(codec, ev, b), XS_OK);
}

/* Builds the bytes of one bad message of `kind` into b. */
static void make_bad(xs_codec_t *codec, int kind, int seq, xs_buf_t *b)
{
    xs_event_t ev;
    char id[32], user[40];
    const char *one[] = {"c-0", NULL};
    snprintf(id, sizeof(id), "bad-%d", seq);
    snprintf(user, sizeof(user), "evil-%d", seq);
    xs_buf_reset(b);
    switch (kind) {
    case K_EMPTY:
        return;
    case K_NOT_AVRO:
        xs_buf_append_str(b, "{\"user_id\": \"u1\", \"type\": \"ADD\"}");
        return;
    case K_UNKNOWN_FP:
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0, "v-0", NULL);
        encode(codec, &ev, b);
        b->data[2] ^= 0x5a; /* another fingerprint */
        break;
    case K_TRUNC_SO:
        xs_buf_append(b, "\xc3\x01\xaa\xbb\xcc", 5);
        return;
    case K_UNKNOWN_ID:
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0, "v-0", NULL);
        encode(codec, &ev, b);
        memmove(b->data + 5, b->data + 10, b->len - 10); /* 10-byte header -> 5-byte one */
        b->len -= 5;
        memcpy(b->data, "\x00\x00\x00\x03\xe7", 5);
        break;
    case K_TRUNC_CONF:
        xs_buf_append(b, "\x00\x00\x01", 3);
        return;
    case K_TRUNC_BODY:
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0, "v-0", NULL);
        encode(codec, &ev, b);
        b->len -= 4;
        break;
    case K_TRAILING:
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0, one);
        encode(codec, &ev, b);
        xs_buf_append(b, "\x01\x02\x03", 3);
        break;
    case K_LIST_ON_INPUT: {
        xs_list_t list;
        xs_event_list_init(&list);
        snprintf(list.list_id, sizeof(list.list_id), "%032d", seq);
        list.user_id = strdup(user);
        list.trigger_event_id = strdup(id);
        list.trigger_type = strdup("ADD");
        list.model_name = strdup("m");
        list.model_version = strdup("1");
        list.generated_at = T0;
        assert_int_equal(xs_codec_encode_list(codec, &list, b), XS_OK);
        xs_event_list_clear(&list);
        return;
    }
    case K_WRONG_KIND:
        xst_item_event(&ev, "v-0", "title", NULL, true, T0);
        encode(codec, &ev, b);
        break;
    case K_EMPTY_USER:
        xst_click_event(&ev, id, "", XS_CLICK_PRODUCT_VIEW, T0, "v-0", NULL);
        encode(codec, &ev, b);
        break;
    case K_EMPTY_EVENT:
        xst_cart_event(&ev, "", user, XS_CART_ADD, T0, one);
        encode(codec, &ev, b);
        break;
    case K_TS_OLD:
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, 1000, "v-0", NULL);
        encode(codec, &ev, b);
        break;
    case K_TS_FUTURE:
        xst_cart_event(&ev, id, user, XS_CART_ADD, INT64_C(7258118400000) /* 2200 */, one);
        encode(codec, &ev, b);
        break;
    case K_TOO_MANY_LINES: {
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0, NULL);
        for (int i = 0; i < 51; i++) {
            char item[16];
            snprintf(item, sizeof(item), "x-%d", i);
            assert_int_equal(xs_event_add_line(&ev, item, 1, 1.0, true), XS_OK);
        }
        encode(codec, &ev, b);
        break;
    }
    case K_LONG_ID: {
        char longid[66];
        memset(longid, 'u', 65);
        longid[65] = '\0';
        xst_click_event(&ev, id, longid, XS_CLICK_PRODUCT_VIEW, T0, "v-0", NULL);
        encode(codec, &ev, b);
        break;
    }
    case K_MISSING_ITEM:
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0, NULL, NULL);
        encode(codec, &ev, b);
        break;
    case K_QTY:
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0, one);
        ev.lines[0].quantity = 0;
        encode(codec, &ev, b);
        break;
    case K_NO_LINES:
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0, NULL);
        encode(codec, &ev, b);
        break;
    case K_EMPTY_CATALOG_ID:
        xst_item_event(&ev, "", "no id", NULL, true, T0);
        encode(codec, &ev, b);
        break;
    case K_OVERSIZE: {
        char *huge = malloc(600001);
        assert_non_null(huge);
        memset(huge, 'm', 600000);
        huge[600000] = '\0';
        xst_click_event(&ev, id, huge, XS_CLICK_PRODUCT_VIEW, T0, "v-0", NULL);
        free(huge);
        encode(codec, &ev, b);
        break;
    }
    default:
        fail_msg("kind %d", kind);
    }
    xs_event_clear(&ev);
}

static void send_raw(xs_producer_t *p, const char *topic, const char *key, const void *v,
                     size_t len)
{
    char errstr[512] = "";
    if (xs_producer_send(p, topic, -1, key, strlen(key), len ? v : NULL, len, NULL, 0, errstr,
                         sizeof(errstr)))
        fail_msg("produce: %s", errstr);
}

static void send_bad(xs_producer_t *p, xs_codec_t *codec, xs_buf_t *b)
{
    bad_msg_t *m = &bads[n_bad];
    m->kind = (int)(n_bad % K__COUNT);
    snprintf(m->key, sizeof(m->key), "bad-%s-%zu", kinds[m->kind].name, n_bad);
    make_bad(codec, m->kind, (int)n_bad, b);
    m->len = b->len;
    m->value = malloc(b->len ? b->len : 1);
    assert_non_null(m->value);
    if (b->len)
        memcpy(m->value, b->data, b->len);
    send_raw(p, xst_topic(kinds[m->kind].topic), m->key, m->value, m->len);
    n_bad++;
}

static bad_msg_t *find_bad(const char *key, size_t len)
{
    for (size_t i = 0; i < n_bad; i++)
        if (strlen(bads[i].key) == len && memcmp(bads[i].key, key, len) == 0)
            return &bads[i];
    return NULL;
}

typedef struct users_ctx {
    uint64_t hashes[N_USERS * 2];
    xs_profile_t prof[N_USERS * 2];
    size_t n;
} users_ctx_t;

static int collect_user(void *opaque, const void *key, size_t key_len, const void *val,
                        size_t val_len)
{
    users_ctx_t *u = opaque;
    const uint8_t *k = key;
    char why[160];
    assert_int_equal(key_len, 10);
    assert_true(u->n < N_USERS * 2);
    uint64_t h = 0;
    for (int i = 2; i < 10; i++)
        h = h << 8 | k[i];
    u->hashes[u->n] = h;
    if (xs_profile_decode(&u->prof[u->n], val, val_len, why, sizeof(why)))
        fail_msg("profile: %s", why);
    u->n++;
    return 0;
}

typedef struct hashes_ctx {
    uint64_t v[256];
    size_t n;
} hashes_ctx_t;

static int collect_key(void *opaque, const void *key, size_t key_len, const void *val,
                       size_t val_len)
{
    hashes_ctx_t *h = opaque;
    const uint8_t *k = key;
    (void)val;
    (void)val_len;
    assert_int_equal(key_len, 8);
    assert_true(h->n < 256);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | k[i];
    h->v[h->n++] = x;
    return 0;
}

static bool in_list(uint64_t h, const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == h)
            return true;
    return false;
}

static void test_bad_input(void **state)
{
    (void)state;
    char errstr[1024] = "";
    int64_t t0 = xsp_now_ms();
    xst_broker_t *db = xst_broker("badinput", 2);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(p);
    char *dir = xst_tmpdir("badinput");
    xs_buf_t b = {0};
    xs_event_t ev;
    char id[32], user[32], item[32];
    uint64_t good_items[N_CATALOG + 20];
    size_t n_good_items = 0;

    for (int i = 0; i < N_CATALOG; i++) {
        snprintf(item, sizeof(item), "cat-%d", i);
        xst_item_event(&ev, item, "A title", "kitchen", true, T0);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
        good_items[n_good_items++] = xs_hash_str(item);
        send_bad(p, codec, &b);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(item, sizeof(item), "v-%d", i);
        good_items[n_good_items++] = xs_hash_str(item);
    }
    for (int i = 0; i < 7; i++) {
        snprintf(item, sizeof(item), "c-%d", i);
        good_items[n_good_items++] = xs_hash_str(item);
    }
    for (int i = 0; i < N_USERS; i++) {
        snprintf(user, sizeof(user), "good-%d", i);
        snprintf(id, sizeof(id), "view-%d", i);
        snprintf(item, sizeof(item), "v-%d", i % 10);
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0 + i * 1000, item, NULL);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
        send_bad(p, codec, &b);
        snprintf(id, sizeof(id), "add-%d", i);
        snprintf(item, sizeof(item), "c-%d", i % 7);
        const char *one[] = {item, NULL};
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0 + i * 1000 + 500, one);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
        send_bad(p, codec, &b);
    }
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(n_bad, 2 * N_USERS + N_CATALOG);

    xs_config_t *cfg = xst_worker_config(bs, dir, "badinput");
    const char *kv[][2] = {{"http.address", ""},
                           {"limits.max_message_bytes", "4096"},
                           {"limits.max_id_len", "64"},
                           {"limits.max_lines", "50"}};
    for (size_t i = 0; i < XS_ARRAY_SIZE(kv); i++)
        if (xs_config_set(cfg, kv[i][0], kv[i][1], "test", errstr, sizeof(errstr)))
            fail_msg("config: %s", errstr);
    xst_run_t r = xst_run_worker_until_end(cfg); /* fails the test on a worker error */
    xs_config_destroy(cfg);
    fprintf(stderr, "bad input: events %llu, lists %llu, dead letters %llu\n",
            (unsigned long long)r.events, (unsigned long long)r.lists, (unsigned long long)r.dlq);
    assert_int_equal(r.events, 2 * N_USERS + N_CATALOG);
    assert_int_equal(r.dlq, n_bad);

    /* State: every good event, nothing from a bad one. */
    xs_store_t *s = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    users_ctx_t *u = calloc(1, sizeof(*u));
    assert_non_null(u);
    assert_int_equal(xs_store_iterate(s, XS_CF_USERS, collect_user, u, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(u->n, N_USERS);
    for (int i = 0; i < N_USERS; i++) {
        snprintf(user, sizeof(user), "good-%d", i);
        uint64_t uh = xs_hash_str(user);
        size_t k = 0;
        while (k < u->n && u->hashes[k] != uh)
            k++;
        if (k == u->n)
            fail_msg("user %s has no profile", user);
        const xs_profile_t *pr = &u->prof[k];
        assert_int_equal(pr->n_events, 2);
        snprintf(item, sizeof(item), "v-%d", i % 10);
        int vi = xs_profile_find(pr, xs_hash_str(item));
        assert_true(vi >= 0);
        assert_int_equal(pr->items[vi].signal, XS_SIG_VIEW);
        snprintf(item, sizeof(item), "c-%d", i % 7);
        int ci = xs_profile_find(pr, xs_hash_str(item));
        assert_true(ci >= 0);
        assert_int_equal(pr->items[ci].signal, XS_SIG_CART);
        assert_true(xs_profile_in_cart(pr, xs_hash_str(item)));
        assert_int_equal(pr->n_items, 2);
    }
    hashes_ctx_t items = {0}, names = {0};
    assert_int_equal(xs_store_iterate(s, XS_CF_ITEMS, collect_key, &items, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(xs_store_iterate(s, XS_CF_NAMES, collect_key, &names, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(items.n, n_good_items);
    for (size_t i = 0; i < items.n; i++)
        assert_true(in_list(items.v[i], good_items, n_good_items));
    uint64_t good_names[N_CATALOG + 20];
    memcpy(good_names, good_items, n_good_items * sizeof(uint64_t));
    good_names[n_good_items] = xs_hash_str("kitchen"); /* the catalog category */
    assert_int_equal(names.n, n_good_items + 1);
    for (size_t i = 0; i < names.n; i++)
        assert_true(in_list(names.v[i], good_names, n_good_items + 1));
    xs_store_close(s);
    free(u);

    /* Dead letters: original key and bytes, once each. */
    const char *topics[] = {xst_topic("xsell.dlq")};
    xs_consumer_opts_t co = {
        .bootstrap = bs, .topics = topics, .n_topics = 1, .start_offset = XS_OFFSET_BEGINNING};
    xs_consumer_t *c = xs_consumer_new(&co, errstr, sizeof(errstr));
    if (!c)
        fail_msg("consumer: %s", errstr);
    size_t got = 0;
    for (int idle = 0; idle < 300 && got < n_bad;) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 100, &m, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF) {
            idle++;
            continue;
        }
        assert_int_equal(err, XS_OK);
        bad_msg_t *bm = find_bad(m.key, m.key_len);
        if (!bm)
            fail_msg("dead letter with unknown key '%.*s'", (int)m.key_len, (const char *)m.key);
        assert_false(bm->seen);
        bm->seen = true;
        assert_int_equal(m.value_len, bm->len);
        assert_true(bm->len == 0 || memcmp(m.value, bm->value, bm->len) == 0);
        got++;
    }
    xs_consumer_destroy(c);
    assert_int_equal(got, n_bad);

    /* Reason headers, through kcat. */
    char cmd[1024], hdr_path[600];
    snprintf(hdr_path, sizeof(hdr_path), "%s/dlq-headers.txt", dir);
    snprintf(cmd, sizeof(cmd),
             "kcat -b '%s' -C -t '%s' -o beginning -e -q -f '%%k\\t%%h\\n' > '%s'", bs,
             xst_topic("xsell.dlq"), hdr_path);
    if (system(cmd) != 0)
        fail_msg("kcat failed (is kcat installed? deploy/install-deps.sh installs it): %s", cmd);
    size_t hl = 0;
    char *hdrs = xsp_read_file(hdr_path, &hl);
    assert_non_null(hdrs);
    size_t lines = 0;
    int per_kind[K__COUNT] = {0};
    for (char *line = strtok(hdrs, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        bad_msg_t *bm = find_bad(line, (size_t)(tab - line));
        if (!bm)
            fail_msg("kcat line with unknown key: %.80s", line);
        const char *reason = strstr(tab, "xsell.reason=");
        assert_non_null(reason);
        if (!strstr(reason, kinds[bm->kind].reason))
            fail_msg("%s: reason header '%.200s' does not contain '%s'", bm->key, reason,
                     kinds[bm->kind].reason);
        char src[320];
        snprintf(src, sizeof(src), "xsell.source.topic=%s", xst_topic(kinds[bm->kind].topic));
        assert_non_null(strstr(tab, src));
        assert_non_null(strstr(tab, "xsell.source.offset="));
        per_kind[bm->kind]++;
        lines++;
    }
    assert_int_equal(lines, n_bad);
    for (int k = 0; k < K__COUNT; k++)
        assert_true(per_kind[k] >= 15);
    fprintf(stderr, "bad input: %d kinds, %zu dead letters checked (bytes, key, reason), %.1f s\n",
            K__COUNT, lines, (xsp_now_ms() - t0) / 1e3);

    free(hdrs);
    for (size_t i = 0; i < n_bad; i++)
        free(bads[i].value);
    xs_buf_free(&b);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    xst_rmrf(dir);
    free(dir);
}

/* ======================================================================== */
/* Invalid UTF-8                                                            */
/* ======================================================================== */

#define U_USERS 12
#define U_ITEMS 4

static const char *const bad_utf8[] = {
    "\xff\xfe",         /* never valid bytes */
    "u-\xed\xa0\x80",   /* encoded surrogate U+D800 */
    "\xc0\xaf",         /* overlong '/' */
    "x\xe0\x80\xaf",    /* overlong 3-byte '/' */
    "\xf4\x90\x80\x80", /* above U+10FFFF */
    "ab\xe2\x82",       /* cut sequence */
};

static bool list_is_clean(const xs_list_t *l, const uint64_t *good, size_t n_good)
{
    if (!xs_str_utf8_valid(l->user_id, strlen(l->user_id)) ||
        !xs_str_utf8_valid(l->trigger_event_id, strlen(l->trigger_event_id)))
        return false;
    for (int i = 0; i < l->n_trigger_items; i++)
        if (!in_list(xs_hash_str(l->trigger_items[i]), good, n_good))
            return false;
    for (int i = 0; i < l->n_items; i++) {
        if (!in_list(xs_hash_str(l->items[i].item_id), good, n_good))
            return false;
        for (int j = 0; j < l->items[i].n_because; j++)
            if (!in_list(xs_hash_str(l->items[i].because_of[j]), good, n_good))
                return false;
    }
    return true;
}

static void test_bad_utf8(void **state)
{
    (void)state;
    char errstr[1024] = "";
    xst_broker_t *db = xst_broker("badutf8", 1);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(p);
    char *dir = xst_tmpdir("badutf8");
    xs_event_t ev;
    char id[48], user[32], item[32];
    uint64_t good_items[U_ITEMS], good_names[U_ITEMS + 1];
    size_t n_good = 0, n_bad_sent = 0;
    const size_t n_kinds = XS_ARRAY_SIZE(bad_utf8);

    for (int i = 0; i < U_ITEMS; i++) {
        snprintf(item, sizeof(item), "g-%d", i);
        xst_item_event(&ev, item, "A title \xc3\xa9t\xc3\xa9", "kitchen", true, T0);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
        good_items[i] = good_names[i] = xs_hash_str(item);
        n_good++;
    }
    good_names[U_ITEMS] = xs_hash_str("kitchen");
    /* Catalog updates with a bad item_id, title, category or brand. */
    for (size_t k = 0; k < n_kinds; k++) {
        for (int f = 0; f < 4; f++) {
            snprintf(item, sizeof(item), "g-%d", (int)k % U_ITEMS);
            xst_item_event(&ev, f == 0 ? bad_utf8[k] : item, f == 1 ? bad_utf8[k] : "t",
                           f == 2 ? bad_utf8[k] : "kitchen", true, T0);
            if (f == 3)
                ev.brand = strdup(bad_utf8[k]);
            xst_produce_event(p, codec, &ev);
            xs_event_clear(&ev);
            n_bad_sent++;
        }
    }
    for (int i = 0; i < U_USERS; i++) {
        snprintf(user, sizeof(user), "good-%d", i);
        snprintf(id, sizeof(id), "add-%d", i);
        const char *two[] = {i % 2 ? "g-0" : "g-2", i % 3 ? "g-1" : "g-3", NULL};
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0 + i * 1000, two);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
        n_good++;
        /* One bad string in one field of a click or a cart event by this user. */
        const char *bad = bad_utf8[(size_t)i % n_kinds];
        for (int f = 0; f < 8; f++) {
            snprintf(id, sizeof(id), "bad-%d-%d", i, f);
            const char *one[] = {f == 3 ? bad : "g-0", NULL};
            if (f < 3 || f == 6) {
                xst_click_event(&ev, f == 2 ? bad : id, f == 0 ? bad : user, XS_CLICK_PRODUCT_VIEW,
                                T0 + i * 1000 + 10 + f, f == 1 ? bad : "g-1", f == 6 ? bad : NULL);
            } else {
                xst_cart_event(&ev, id, user, XS_CART_ADD, T0 + i * 1000 + 10 + f, one);
                if (f == 4)
                    ev.currency = strdup(bad);
                if (f == 5)
                    ev.session_id = strdup(bad);
                if (f == 7)
                    ev.order_id = strdup(bad);
            }
            xst_produce_event(p, codec, &ev);
            xs_event_clear(&ev);
            n_bad_sent++;
        }
    }
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);

    xs_config_t *cfg = xst_worker_config(bs, dir, "badutf8");
    if (xs_config_set(cfg, "http.address", "", "test", errstr, sizeof(errstr)))
        fail_msg("config: %s", errstr);
    xst_run_t r = xst_run_worker_until_end(cfg);
    xs_config_destroy(cfg);
    fprintf(stderr, "bad utf-8: events %llu, lists %llu, dead letters %llu (sent %zu bad)\n",
            (unsigned long long)r.events, (unsigned long long)r.lists, (unsigned long long)r.dlq,
            n_bad_sent);
    assert_int_equal(r.dlq, n_bad_sent);
    assert_int_equal(r.events, n_good);
    assert_true(r.lists > 0);

    /* State: the good users, items and names only. */
    xs_store_t *s = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    users_ctx_t *u = calloc(1, sizeof(*u));
    assert_non_null(u);
    assert_int_equal(xs_store_iterate(s, XS_CF_USERS, collect_user, u, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(u->n, U_USERS);
    for (size_t i = 0; i < u->n; i++) {
        assert_int_equal(u->prof[i].n_events, 1);
        assert_int_equal(u->prof[i].n_items, 2);
    }
    hashes_ctx_t items = {0}, names = {0};
    assert_int_equal(xs_store_iterate(s, XS_CF_ITEMS, collect_key, &items, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(xs_store_iterate(s, XS_CF_NAMES, collect_key, &names, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(items.n, U_ITEMS);
    for (size_t i = 0; i < items.n; i++)
        assert_true(in_list(items.v[i], good_items, U_ITEMS));
    assert_int_equal(names.n, U_ITEMS + 1);
    for (size_t i = 0; i < names.n; i++)
        assert_true(in_list(names.v[i], good_names, U_ITEMS + 1));
    xs_store_close(s);
    free(u);

    /* Published lists: good strings only. */
    xst_lists_t lists = xst_read_lists(bs, codec, xst_topic("xsell.cross-sell"));
    size_t n_lists = lists.n;
    assert_int_equal(lists.n, r.lists);
    for (size_t i = 0; i < lists.n; i++)
        if (!list_is_clean(&lists.v[i], good_items, U_ITEMS))
            fail_msg("list %zu (user %s) holds a string that is not a good item", i,
                     lists.v[i].user_id);
    xst_lists_free(&lists);

    /* Reasons, through kcat. */
    char cmd[1024], hdr_path[600];
    snprintf(hdr_path, sizeof(hdr_path), "%s/dlq-headers.txt", dir);
    snprintf(cmd, sizeof(cmd), "kcat -b '%s' -C -t '%s' -o beginning -e -q -f '%%h\\n' > '%s'", bs,
             xst_topic("xsell.dlq"), hdr_path);
    if (system(cmd) != 0)
        fail_msg("kcat failed (is kcat installed? deploy/install-deps.sh installs it): %s", cmd);
    size_t hl = 0, lines = 0;
    char *hdrs = xsp_read_file(hdr_path, &hl);
    assert_non_null(hdrs);
    for (char *line = strtok(hdrs, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "is not valid UTF-8"))
            fail_msg("dead letter reason: %.200s", line);
        lines++;
    }
    assert_int_equal(lines, n_bad_sent);
    fprintf(stderr, "bad utf-8: %zu dead letters with a UTF-8 reason, %zu clean lists\n", lines,
            n_lists);
    free(hdrs);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    xst_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bad_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
