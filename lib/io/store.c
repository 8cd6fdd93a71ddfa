/*
 * store.c — RocksDB state store (see include/xsell/store.h).
 *
 * Error handling follows the RocksDB C API: every call takes a `char **err`
 * that must be NULL on entry and, when set, is freed here after being
 * converted into xs_err_t + errstr. A missing key is not an error.
 */
#include "xsell/store.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "xsell/hash.h"

struct xs_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_writeoptions_t *wopts_sync;
    rocksdb_column_family_handle_t *cf[XS_CF__COUNT];
    bool read_only;
    char *wal_damage; /* RocksDB's report of a damaged WAL at open, or NULL */
};

struct xs_store_batch {
    xs_store_t *store;
    rocksdb_writebatch_t *wb;
    size_t bytes;
    int count;
    xs_put_fn tap; /* also receives every put (xs_store_batch_tap) */
    void *tap_opaque;
};

static const char *const cf_rocks_names[XS_CF__COUNT] = {"users", "items", "names", "meta",
                                                         "neighbours"};

/* rocksdb::WALRecoveryMode */
enum { WAL_ABSOLUTE = 1, WAL_POINT_IN_TIME = 2 };

static xs_err_t rocks_err(char *rerr, const char *what, char *errstr, size_t errstr_size)
{
    /* Status::NoSpace() (ENOSPC), as such or as the background error that
     * stops every later write. */
    bool nospace = strstr(rerr, "No space left on device") != NULL;
    xs_err_set(errstr, errstr_size, "rocksdb: %s: %s", what, rerr);
    free(rerr);
    return nospace ? XS_ERR_NOSPACE : XS_ERR_STORE;
}

static xs_err_t check_format(xs_store_t *s, char *errstr, size_t errstr_size)
{
    static const char key[] = "format";
    xs_buf_t val = {0};
    bool found = false;
    xs_err_t err =
        xs_store_get(s, XS_CF_META, key, sizeof(key) - 1, &val, &found, errstr, errstr_size);
    if (err)
        goto out;
    if (found) {
        if (val.len != 11 || val.data[0] != 'X' || val.data[1] != 'S') {
            xs_err_set(errstr, errstr_size, "state store: meta/format is not an xsell store");
            err = XS_ERR_VERSION;
        } else if (val.data[2] > XS_STORE_FORMAT_VERSION) {
            xs_err_set(errstr, errstr_size,
                       "state store format version %u is newer than this build (%u)", val.data[2],
                       XS_STORE_FORMAT_VERSION);
            err = XS_ERR_VERSION;
        } else {
            uint64_t seed = 0;
            for (int i = 0; i < 8; i++)
                seed |= (uint64_t)val.data[3 + i] << (8 * i);
            if (seed != XS_HASH_SEED) {
                xs_err_set(errstr, errstr_size,
                           "state store uses hash seed %016" PRIx64 ", this build %016" PRIx64,
                           seed, (uint64_t)XS_HASH_SEED);
                err = XS_ERR_VERSION;
            }
        }
        /* An older layout opened read-write is this one now (the open
         * created the families it lacked): say so, so that older builds
         * refuse it. Read-only, it stays as it is. */
        if (err || val.data[2] == XS_STORE_FORMAT_VERSION || s->read_only)
            goto out;
    } else if (s->read_only) {
        goto out;
    }
    uint8_t v[11] = {'X', 'S', XS_STORE_FORMAT_VERSION};
    for (int i = 0; i < 8; i++)
        v[3 + i] = (uint8_t)((uint64_t)XS_HASH_SEED >> (8 * i));
    char *rerr = NULL;
    rocksdb_put_cf(s->db, s->wopts_sync, s->cf[XS_CF_META], key, sizeof(key) - 1, (char *)v,
                   sizeof(v), &rerr);
    if (rerr)
        err = rocks_err(rerr, "write format", errstr, errstr_size);
out:
    xs_buf_free(&val);
    return err;
}

xs_store_t *xs_store_open(const char *dir, const xs_kv_t *opts, size_t n_opts, bool read_only,
                          char *errstr, size_t errstr_size)
{
    xs_store_t *s = calloc(1, sizeof(*s));
    char *rerr = NULL;
    xs_buf_t ostr = {0};
    const char *names[XS_CF__COUNT + 1];
    const rocksdb_options_t *cf_opts[XS_CF__COUNT + 1];
    rocksdb_column_family_handle_t *handles[XS_CF__COUNT + 1] = {0};
    if (!s) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->read_only = read_only;
    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, !read_only);
    rocksdb_options_set_create_missing_column_families(s->opts, !read_only);
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_open_files(s->opts, 512);
    rocksdb_options_increase_parallelism(s->opts, 2);
    rocksdb_options_set_keep_log_file_num(s->opts, 3);
    /* RocksDB's own LOG file lives in the state directory: on a full device
     * its writer fails, and Debian's librocksdb (built with assertions)
     * aborts on the next line written after a failed one (exit 134) while
     * RocksDB logs its error recovery. Only fatal messages by default;
     * rocksdb.info_log_level=INFO_LEVEL brings the LOG back (and the abort). */
    rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL_LEVEL */);
    rocksdb_options_set_wal_recovery_mode(s->opts, WAL_POINT_IN_TIME);
    if (n_opts) {
        for (size_t i = 0; i < n_opts; i++)
            xs_buf_printf(&ostr, "%s%s=%s", i ? ";" : "", opts[i].key, opts[i].value);
        rocksdb_options_t *n = rocksdb_options_create();
        rocksdb_get_options_from_string(s->opts, (const char *)ostr.data, n, &rerr);
        if (rerr) {
            rocksdb_options_destroy(n);
            rocks_err(rerr, "rocksdb.* options", errstr, errstr_size);
            goto fail;
        }
        rocksdb_options_destroy(s->opts);
        s->opts = n;
    }
    int n_cf = 1, cf_of[XS_CF__COUNT + 1];
    names[0] = "default";
    cf_opts[0] = s->opts;
    for (int i = 0; i < XS_CF__COUNT; i++) {
        names[n_cf] = cf_rocks_names[i];
        cf_opts[n_cf] = s->opts;
        cf_of[n_cf++] = i;
    }
    if (read_only) {
        /* A state directory written before a column family existed (the
         * `neighbours` one came with item record version 5) lacks it: open
         * the ones it has; a missing one reads as empty. */
        size_t n_have = 0;
        char **have = rocksdb_list_column_families(s->opts, dir, &n_have, &rerr);
        if (rerr) {
            rocks_err(rerr, dir, errstr, errstr_size);
            goto fail;
        }
        n_cf = 1;
        for (int i = 0; i < XS_CF__COUNT; i++) {
            for (size_t k = 0; k < n_have; k++) {
                if (strcmp(have[k], cf_rocks_names[i]) == 0) {
                    names[n_cf] = cf_rocks_names[i];
                    cf_of[n_cf++] = i;
                    break;
                }
            }
        }
        rocksdb_list_column_families_destroy(have, n_have);
        s->db = rocksdb_open_for_read_only_column_families(s->opts, dir, n_cf, names, cf_opts,
                                                           handles, 0, &rerr);
    } else {
        /* See xs_store_open() in store.h: a strict open that reports damage,
         * then, if there is any, the point-in-time one. */
        int mode = rocksdb_options_get_wal_recovery_mode(s->opts);
        if (mode != WAL_ABSOLUTE) {
            rocksdb_options_set_wal_recovery_mode(s->opts, WAL_ABSOLUTE);
            s->db = rocksdb_open_column_families(s->opts, dir, XS_CF__COUNT + 1, names, cf_opts,
                                                 handles, &rerr);
            rocksdb_options_set_wal_recovery_mode(s->opts, mode);
            if (rerr && strstr(rerr, "Corruption")) {
                s->wal_damage = rerr;
                rerr = NULL;
            }
        }
        if (!s->db && !rerr)
            s->db = rocksdb_open_column_families(s->opts, dir, XS_CF__COUNT + 1, names, cf_opts,
                                                 handles, &rerr);
    }
    if (rerr) {
        rocks_err(rerr, dir, errstr, errstr_size);
        goto fail;
    }
    rocksdb_column_family_handle_destroy(handles[0]);
    for (int i = 1; i < n_cf; i++)
        s->cf[cf_of[i]] = handles[i];
    s->ropts = rocksdb_readoptions_create();
    s->wopts = rocksdb_writeoptions_create();
    s->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wopts_sync, 1);
    if (check_format(s, errstr, errstr_size) != XS_OK)
        goto fail;
    xs_buf_free(&ostr);
    return s;
fail:
    xs_buf_free(&ostr);
    xs_store_close(s);
    return NULL;
}

void xs_store_close(xs_store_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < XS_CF__COUNT; i++)
        if (s->cf[i])
            rocksdb_column_family_handle_destroy(s->cf[i]);
    if (s->db)
        rocksdb_close(s->db);
    if (s->ropts)
        rocksdb_readoptions_destroy(s->ropts);
    if (s->wopts)
        rocksdb_writeoptions_destroy(s->wopts);
    if (s->wopts_sync)
        rocksdb_writeoptions_destroy(s->wopts_sync);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    free(s->wal_damage);
    free(s);
}

const char *xs_store_wal_damage(const xs_store_t *s)
{
    return s->wal_damage;
}

xs_err_t xs_store_get(xs_store_t *s, xs_cf_t cf, const void *key, size_t key_len, xs_buf_t *val,
                      bool *found, char *errstr, size_t errstr_size)
{
    char *rerr = NULL;
    size_t len = 0;
    *found = false;
    if (!s->cf[cf]) /* a read-only store without this column family */
        return XS_OK;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned_cf(s->db, s->ropts, s->cf[cf], key, key_len, &rerr);
    if (rerr)
        return rocks_err(rerr, "get", errstr, errstr_size);
    if (!ps)
        return XS_OK;
    const char *v = rocksdb_pinnableslice_value(ps, &len);
    xs_err_t err = v ? xs_buf_append(val, v, len) : XS_OK;
    *found = v != NULL;
    rocksdb_pinnableslice_destroy(ps);
    return err;
}

static xs_err_t backend_get(void *opaque, xs_cf_t cf, const void *key, size_t key_len,
                            xs_buf_t *val, bool *found, char *errstr, size_t errstr_size)
{
    return xs_store_get(opaque, cf, key, key_len, val, found, errstr, errstr_size);
}

void xs_store_backend(xs_store_t *s, xs_backend_t *backend)
{
    backend->opaque = s;
    backend->get = backend_get;
}

xs_store_batch_t *xs_store_batch_new(xs_store_t *s)
{
    xs_store_batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->store = s;
    b->wb = rocksdb_writebatch_create();
    return b;
}

void xs_store_batch_destroy(xs_store_batch_t *b)
{
    if (!b)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void xs_store_batch_clear(xs_store_batch_t *b)
{
    rocksdb_writebatch_clear(b->wb);
    b->bytes = 0;
    b->count = 0;
}

xs_err_t xs_store_batch_put(xs_store_batch_t *b, xs_cf_t cf, const void *key, size_t key_len,
                            const void *val, size_t val_len)
{
    if (cf < 0 || cf >= XS_CF__COUNT)
        return XS_ERR_INVALID;
    if (val)
        rocksdb_writebatch_put_cf(b->wb, b->store->cf[cf], key, key_len, val, val_len);
    else
        rocksdb_writebatch_delete_cf(b->wb, b->store->cf[cf], key, key_len);
    b->bytes += key_len + val_len;
    b->count++;
    return b->tap ? b->tap(b->tap_opaque, cf, key, key_len, val, val_len) : XS_OK;
}

void xs_store_batch_tap(xs_store_batch_t *b, xs_put_fn fn, void *opaque)
{
    b->tap = fn;
    b->tap_opaque = opaque;
}

xs_err_t xs_store_batch_put_fn(void *opaque, xs_cf_t cf, const void *key, size_t key_len,
                               const void *val, size_t val_len)
{
    return xs_store_batch_put(opaque, cf, key, key_len, val, val_len);
}

static size_t offset_key(char *buf, size_t size, const char *topic, int32_t partition)
{
    int n = snprintf(buf, size, "offset/%s/%" PRId32, topic, partition);
    return n < 0 ? 0 : XS_MIN((size_t)n, size - 1);
}

void xs_store_batch_put_offset(xs_store_batch_t *b, const char *topic, int32_t partition,
                               int64_t next)
{
    char key[300];
    uint8_t v[8];
    for (int i = 0; i < 8; i++)
        v[i] = (uint8_t)((uint64_t)next >> (56 - 8 * i));
    xs_store_batch_put(b, XS_CF_META, key, offset_key(key, sizeof(key), topic, partition), v, 8);
}

size_t xs_store_batch_bytes(const xs_store_batch_t *b)
{
    return b->bytes;
}

int xs_store_batch_count(const xs_store_batch_t *b)
{
    return b->count;
}

xs_err_t xs_store_write(xs_store_t *s, xs_store_batch_t *b, bool sync, char *errstr,
                        size_t errstr_size)
{
    char *rerr = NULL;
    rocksdb_write(s->db, sync ? s->wopts_sync : s->wopts, b->wb, &rerr);
    if (rerr)
        return rocks_err(rerr, "write batch", errstr, errstr_size);
    return XS_OK;
}

xs_err_t xs_store_get_offset(xs_store_t *s, const char *topic, int32_t partition, int64_t *next,
                             bool *found, char *errstr, size_t errstr_size)
{
    char key[300];
    xs_buf_t val = {0};
    xs_err_t err = xs_store_get(s, XS_CF_META, key, offset_key(key, sizeof(key), topic, partition),
                                &val, found, errstr, errstr_size);
    if (!err && *found) {
        if (val.len != 8) {
            xs_err_set(errstr, errstr_size, "meta/%s: corrupt offset", key);
            err = XS_ERR_DECODE;
        } else {
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = v << 8 | val.data[i];
            *next = (int64_t)v;
        }
    }
    xs_buf_free(&val);
    return err;
}

xs_err_t xs_store_iterate(xs_store_t *s, xs_cf_t cf, xs_store_iter_fn fn, void *opaque,
                          char *errstr, size_t errstr_size)
{
    if (!s->cf[cf]) /* a read-only store without this column family */
        return XS_OK;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, s->cf[cf]);
    char *rerr = NULL;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (fn(opaque, k, kl, v, vl))
            break;
    }
    rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
    if (rerr)
        return rocks_err(rerr, "iterate", errstr, errstr_size);
    return XS_OK;
}

void xs_store_compact(xs_store_t *s)
{
    for (int i = 0; i < XS_CF__COUNT; i++)
        if (s->cf[i])
            rocksdb_compact_range_cf(s->db, s->cf[i], NULL, 0, NULL, 0);
}

uint64_t xs_store_size_bytes(xs_store_t *s)
{
    uint64_t total = 0;
    static const char *const props[] = {"rocksdb.total-sst-files-size",
                                        "rocksdb.cur-size-all-mem-tables"};
    for (int i = 0; i < XS_CF__COUNT; i++) {
        for (size_t k = 0; s->cf[i] && k < XS_ARRAY_SIZE(props); k++) {
            char *v = rocksdb_property_value_cf(s->db, s->cf[i], props[k]);
            if (v) {
                total += strtoull(v, NULL, 10);
                free(v);
            }
        }
    }
    return total;
}

uint64_t xs_store_cf_sst_bytes(xs_store_t *s, xs_cf_t cf)
{
    uint64_t total = 0;
    if (!s->cf[cf])
        return 0;
    char *v = rocksdb_property_value_cf(s->db, s->cf[cf], "rocksdb.total-sst-files-size");
    if (v) {
        total = strtoull(v, NULL, 10);
        free(v);
    }
    return total;
}

bool xs_store_dir_nonempty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *de;
    bool any = false;
    while (!any && (de = readdir(d)) != NULL)
        any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return any;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

xs_err_t xs_store_destroy_dir(const char *dir, char *errstr, size_t errstr_size)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return XS_OK;
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        xs_err_set(errstr, errstr_size, "cannot remove %s: %s", dir, strerror(errno));
        return XS_ERR_IO;
    }
    return XS_OK;
}

int xs_store_check_options(const xs_kv_t *opts, size_t n_opts,
                           void (*report)(void *opaque, const char *message), void *opaque)
{
    int bad = 0;
    for (size_t i = 0; i < n_opts; i++) {
        char *rerr = NULL, errstr[1024], what[512];
        xs_buf_t ostr = {0};
        xs_buf_printf(&ostr, "%s=%s", opts[i].key, opts[i].value);
        rocksdb_options_t *base = rocksdb_options_create(), *n = rocksdb_options_create();
        rocksdb_get_options_from_string(base, (const char *)ostr.data, n, &rerr);
        if (rerr) {
            snprintf(what, sizeof(what), "option rocksdb.%s", opts[i].key);
            rocks_err(rerr, what, errstr, sizeof(errstr));
            report(opaque, errstr);
            bad++;
        }
        rocksdb_options_destroy(n);
        rocksdb_options_destroy(base);
        xs_buf_free(&ostr);
    }
    return bad;
}
