/*
 * The `neighbours` column family on a state directory written before it
 * existed (item records version 4, lists inside them): a read-only open
 * works without it (inspect on an old directory), a read-write open creates
 * it, the engine reads the lists of a version 4 record, and of a version 5
 * record from its neighbours record, and so does `xsell inspect item`; the
 * dump's lines of a neighbours record; a neighbours record of another item
 * is an error naming both (a CORRUPT line in the dump).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <rocksdb/c.h>

#include "xsell/engine.h"
#include "xsell/hash.h"
#include "xsell/inspect.h"
#include "xsell/sketch.h"
#include "xsell/store.h"
#include "xsengine.h"

/* Item "A" (version 4): bought together with "B" (count 9) and "C" (4),
 * listed C (sim 1.0) then B (sim 2.0); nothing viewed. */
static void v4_record(xs_buf_t *out)
{
    uint64_t b = xs_hash_str("B"), c = xs_hash_str("C");
    uint8_t head[] = {'I', 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 3, 2};
    xs_buf_append(out, head, sizeof(head));
    for (int i = 0; i < 8; i++)
        xs_buf_append_u8(out, (uint8_t)(b >> (8 * i)));
    xs_buf_append_u8(out, 9);
    for (int i = 0; i < 8; i++)
        xs_buf_append_u8(out, (uint8_t)(c >> (8 * i)));
    xs_buf_append_u8(out, 4);
    uint8_t tail[] = {2, 1,  0x80, 0x3f, 0, 0x00, 0x40, /* list: C 1.0, B 2.0 */
                      0, 13,                            /* sweep, total */
                      0, 0,  0,    0,                   /* viewed: none */
                      0};                               /* scored_at */
    xs_buf_append(out, tail, sizeof(tail));
}

/* meta "format" as the store writes it: 'X' 'S' version seed (LE). */
static void format_record(uint8_t v[11], uint8_t version)
{
    v[0] = 'X';
    v[1] = 'S';
    v[2] = version;
    for (int i = 0; i < 8; i++)
        v[3 + i] = (uint8_t)((uint64_t)XS_HASH_SEED >> (8 * i));
}

/* An old state directory (store format 1): the four families of before,
 * its format record, A's version 4 record. */
static void old_dir(const char *dir)
{
    char *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    const char *names[] = {"default", "users", "items", "names", "meta"};
    const rocksdb_options_t *opts[] = {o, o, o, o, o};
    rocksdb_column_family_handle_t *h[5];
    rocksdb_t *db = rocksdb_open_column_families(o, dir, 5, names, opts, h, &err);
    if (!db)
        fail_msg("rocksdb: %s", err);
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str("A"));
    xs_buf_t v = {0};
    v4_record(&v);
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, w, h[2], (const char *)key, 8, (const char *)v.data, v.len, &err);
    assert_null(err);
    uint8_t format[11];
    format_record(format, 1);
    rocksdb_put_cf(db, w, h[4], "format", 6, (const char *)format, sizeof(format), &err);
    assert_null(err);
    rocksdb_writeoptions_destroy(w);
    xs_buf_free(&v);
    for (int i = 0; i < 5; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

static bool has_family(const char *dir, const char *name)
{
    char *err = NULL;
    size_t n = 0;
    rocksdb_options_t *o = rocksdb_options_create();
    char **v = rocksdb_list_column_families(o, dir, &n, &err);
    assert_null(err);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(v[i], name) == 0;
    rocksdb_list_column_families_destroy(v, n);
    rocksdb_options_destroy(o);
    return found;
}

/* The store format version in meta "format" (read-only open). */
static int format_version(const char *dir)
{
    char errstr[256];
    xs_store_t *s = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("read-only open: %s", errstr);
    xs_buf_t v = {0};
    bool found = false;
    assert_int_equal(xs_store_get(s, XS_CF_META, "format", 6, &v, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found && v.len == 11);
    int version = v.data[2];
    xs_buf_free(&v);
    xs_store_close(s);
    return version;
}

/* A's bought list as the engine reads it from the store: "C:1 B:2 " best first. */
static void engine_list(xs_store_t *s, char *out, size_t size, xs_err_t want)
{
    xs_backend_t be;
    xs_store_backend(s, &be);
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.backend = &be;
    char errstr[256];
    xs_engine_t *e = xs_engine_new(&o, errstr, sizeof(errstr));
    assert_non_null(e);
    xs_neighbour_t *v = NULL;
    int n = 0;
    xs_err_t err = xs_engine_item_list(e, "A", XS_CLASS_BOUGHT, 10, &v, &n, errstr, sizeof(errstr));
    assert_int_equal(err, want);
    out[0] = 0;
    if (err)
        snprintf(out, size, "%s", errstr);
    for (int i = 0; i < n; i++) {
        size_t at = strlen(out);
        snprintf(out + at, size - at, "%s:%g ", v[i].item_id, v[i].similarity);
    }
    xs_engine_neighbours_free(v, n);
    xs_engine_destroy(e);
}

static void test_old_directory(void **state)
{
    (void)state;
    char dir[] = "/tmp/xsell-upgrade-XXXXXX", errstr[256], got[512], cmd[64];
    assert_non_null(mkdtemp(dir));
    old_dir(dir);
    assert_false(has_family(dir, "neighbours"));

    /* read-only: opens, the missing family reads as empty */
    xs_store_t *s = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("read-only open: %s", errstr);
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str("A"));
    xs_buf_t val = {0};
    bool found = true;
    assert_int_equal(
        xs_store_get(s, XS_CF_NEIGHBOURS, key, 8, &val, &found, errstr, sizeof(errstr)), XS_OK);
    assert_false(found);
    engine_list(s, got, sizeof(got), XS_OK);
    xs_store_close(s);
    /* no names in the store: the neighbours are shown by their hashes */
    char want[256];
    snprintf(want, sizeof(want), "#%016llx:2 #%016llx:1 ", (unsigned long long)xs_hash_str("B"),
             (unsigned long long)xs_hash_str("C"));
    assert_string_equal(got, want);
    assert_false(has_family(dir, "neighbours"));
    assert_int_equal(format_version(dir), 1); /* read-only leaves it as it is */

    /* read-write: creates the family and says the store is of format 2
     * now; the version 4 lists still read */
    s = xs_store_open(dir, NULL, 0, false, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    assert_true(has_family(dir, "neighbours"));
    assert_int_equal(XS_STORE_FORMAT_VERSION, 2);
    xs_buf_reset(&val);
    assert_int_equal(xs_store_get(s, XS_CF_META, "format", 6, &val, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found && val.len == 11);
    assert_int_equal(val.data[2], 2);
    xs_buf_reset(&val);
    engine_list(s, got, sizeof(got), XS_OK);
    assert_string_equal(got, want);

    /* written as the engine writes it now: version 5 and the neighbours
     * record, in one batch; read back the same */
    xs_item_t *it = malloc(sizeof(*it));
    assert_int_equal(xs_store_get(s, XS_CF_ITEMS, key, 8, &val, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found);
    assert_int_equal(xs_sketch_decode(it, val.data, val.len, errstr, sizeof(errstr)), XS_OK);
    xs_buf_t rec = {0}, lists = {0};
    assert_int_equal(xs_sketch_encode(it, &rec), XS_OK);
    assert_int_equal(xs_sketch_lists_encode(it, xs_hash_str("A"), &lists), XS_OK);
    xs_store_batch_t *b = xs_store_batch_new(s);
    assert_int_equal(xs_store_batch_put(b, XS_CF_ITEMS, key, 8, rec.data, rec.len), XS_OK);
    assert_int_equal(xs_store_batch_put(b, XS_CF_NEIGHBOURS, key, 8, lists.data, lists.len), XS_OK);
    assert_int_equal(xs_store_write(s, b, true, errstr, sizeof(errstr)), XS_OK);
    xs_store_batch_clear(b);
    engine_list(s, got, sizeof(got), XS_OK);
    assert_string_equal(got, want);
    /* inspect: the item view loads the lists as the engine does; the dump
     * line of the neighbours record, by key */
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    assert_int_equal(xs_inspect_item(s, "A", 10, f, errstr, sizeof(errstr)), XS_OK);
    fclose(f);
    assert_non_null(strstr(text, "bought neighbour list (2,"));
    free(text);
    xs_buf_t line = {0};
    assert_int_equal(
        xs_inspect_format_record(XS_CF_NEIGHBOURS, key, 8, lists.data, lists.len, &line), XS_OK);
    char expect[256];
    snprintf(expect, sizeof(expect),
             "neighbours %016llx bought=2 viewed=0\n"
             "neighbours %016llx bought-list 0 other=%016llx sim=1\n"
             "neighbours %016llx bought-list 1 other=%016llx sim=2\n",
             (unsigned long long)xs_hash_str("A"), (unsigned long long)xs_hash_str("A"),
             (unsigned long long)xs_hash_str("C"), (unsigned long long)xs_hash_str("A"),
             (unsigned long long)xs_hash_str("B"));
    assert_int_equal(line.len, strlen(expect));
    assert_memory_equal(line.data, expect, line.len);
    xs_buf_free(&line);

    /* the summary record alone (no neighbours record): no list */
    assert_int_equal(xs_store_batch_put(b, XS_CF_NEIGHBOURS, key, 8, NULL, 0), XS_OK);
    assert_int_equal(xs_store_write(s, b, true, errstr, sizeof(errstr)), XS_OK);
    xs_store_batch_clear(b);
    engine_list(s, got, sizeof(got), XS_OK);
    assert_string_equal(got, "");

    /* another item's lists under A's key: an error naming both */
    xs_buf_reset(&lists);
    assert_int_equal(xs_sketch_lists_encode(it, xs_hash_str("Z"), &lists), XS_OK);
    assert_int_equal(xs_store_batch_put(b, XS_CF_NEIGHBOURS, key, 8, lists.data, lists.len), XS_OK);
    assert_int_equal(xs_store_write(s, b, true, errstr, sizeof(errstr)), XS_OK);
    engine_list(s, got, sizeof(got), XS_ERR_DECODE);
    xs_buf_t bad = {0};
    assert_int_equal(
        xs_inspect_format_record(XS_CF_NEIGHBOURS, key, 8, lists.data, lists.len, &bad),
        XS_ERR_DECODE);
    xs_buf_append_u8(&bad, 0);
    assert_non_null(strstr((const char *)bad.data, "neighbours CORRUPT key="));
    xs_buf_free(&bad);
    char name[64];
    snprintf(name, sizeof(name), "neighbours/%016llx", (unsigned long long)xs_hash_str("A"));
    assert_non_null(strstr(got, name));
    snprintf(name, sizeof(name), "item %016llx's", (unsigned long long)xs_hash_str("Z"));
    assert_non_null(strstr(got, name));

    xs_store_batch_destroy(b);
    xs_buf_free(&rec);
    xs_buf_free(&lists);
    xs_buf_free(&val);
    free(it);
    xs_store_close(s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The engine on an old directory: an item of version 4 that changes is
 * written as version 5 and a neighbours record with the lists it had (they
 * did not change, but were in no neighbours record yet); read back the
 * same. */
static void test_old_item_written_in_two_records(void **state)
{
    (void)state;
    char dir[] = "/tmp/xsell-upgrade-XXXXXX", errstr[256], got[512], want[256], cmd[64];
    assert_non_null(mkdtemp(dir));
    old_dir(dir);
    xs_store_t *s = xs_store_open(dir, NULL, 0, false, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    engine_list(s, want, sizeof(want), XS_OK);
    xs_backend_t be;
    xs_store_backend(s, &be);
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.backend = &be;
    xs_engine_t *e = xs_engine_new(&o, errstr, sizeof(errstr));
    assert_non_null(e);
    const char *a[] = {"A", NULL};
    xse_basket(e, "u-1", a); /* a new buyer of A: its counts change */
    xs_store_batch_t *b = xs_store_batch_new(s);
    assert_int_equal(xs_engine_flush(e, xs_store_batch_put_fn, b, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(xs_store_write(s, b, true, errstr, sizeof(errstr)), XS_OK);
    xs_store_batch_destroy(b);
    xs_engine_destroy(e);
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str("A"));
    xs_buf_t val = {0};
    bool found = false;
    assert_int_equal(xs_store_get(s, XS_CF_ITEMS, key, 8, &val, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found && val.len > 2);
    assert_int_equal(val.data[1], 5);
    xs_buf_reset(&val);
    assert_int_equal(
        xs_store_get(s, XS_CF_NEIGHBOURS, key, 8, &val, &found, errstr, sizeof(errstr)), XS_OK);
    assert_true(found);
    xs_item_lists_t *l = malloc(sizeof(*l));
    assert_int_equal(xs_sketch_lists_decode(l, val.data, val.len, errstr, sizeof(errstr)), XS_OK);
    assert_true(l->item == xs_hash_str("A"));
    assert_int_equal(l->n[XS_CLASS_BOUGHT], 2);
    engine_list(s, got, sizeof(got), XS_OK);
    assert_string_equal(got, want);
    free(l);
    xs_buf_free(&val);
    xs_store_close(s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A store of a newer format than this build's is refused, read-only and
 * read-write, with a message naming both versions (as a build of format 1
 * refuses a store of format 2), and is left as it is. */
static void test_newer_format_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/xsell-upgrade-XXXXXX", errstr[256], cmd[64];
    assert_non_null(mkdtemp(dir));
    xs_store_t *s = xs_store_open(dir, NULL, 0, false, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    xs_store_close(s);
    assert_int_equal(format_version(dir), XS_STORE_FORMAT_VERSION); /* a new store */
    /* the format record of the next version */
    char *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[] = {"default", "users", "items", "names", "meta", "neighbours"};
    const rocksdb_options_t *opts[] = {o, o, o, o, o, o};
    rocksdb_column_family_handle_t *h[6];
    rocksdb_t *db = rocksdb_open_column_families(o, dir, 6, names, opts, h, &err);
    if (!db)
        fail_msg("rocksdb: %s", err);
    uint8_t format[11];
    format_record(format, XS_STORE_FORMAT_VERSION + 1);
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, w, h[4], "format", 6, (const char *)format, sizeof(format), &err);
    assert_null(err);
    rocksdb_writeoptions_destroy(w);
    for (int i = 0; i < 6; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    char want[128];
    snprintf(want, sizeof(want), "state store format version %d is newer than this build (%d)",
             XS_STORE_FORMAT_VERSION + 1, XS_STORE_FORMAT_VERSION);
    for (int ro = 0; ro < 2; ro++) {
        errstr[0] = 0;
        assert_null(xs_store_open(dir, NULL, 0, ro, errstr, sizeof(errstr)));
        assert_string_equal(errstr, want);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_directory),
        cmocka_unit_test(test_old_item_written_in_two_records),
        cmocka_unit_test(test_newer_format_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
