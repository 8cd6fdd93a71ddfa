/*
 * xsell bench — benchmark programs that print figures (never timed tests).
 *
 *   xsell bench core  [--json] [workload]              the engine alone, in memory
 *   xsell bench state [--json] [workload] [--state-dir D] [--checkpoint-events N]
 *                     [--cache-mb M]                   the engine over RocksDB, with
 *                                                      checkpoints; bytes on disk
 *   xsell bench e2e   [--json] [workload] [--rate R] [--partitions P]
 *                     [--bootstrap B | --bootstrap-file F]
 *                                                      the worker on the development
 *                                                      broker (or on the Kafka cluster
 *                                                      at B), against a passthrough
 *   xsell bench order [options] --dataset FORMAT FILE...
 *                                                      the neighbour lists' dependence on
 *                                                      the order of the input (cli_order.c)
 *   workload: --events N --users N --items N --seed S (synthetic, lib/tools/synth.c)
 *             or --dataset FORMAT FILE... (a real data set, as `xsell eval` reads it)
 *   --config FILE / --set key=value: engine and worker settings (as the worker)
 *
 * What is timed. core and state time xs_engine_process() (and, for state,
 * the checkpoints: flush into a WriteBatch, the atomic write, the cache
 * trim); the synthetic events are generated in chunks outside the timed
 * region. e2e times the whole pipeline from the first produce call to the
 * arrival of the last output message, for xsell and for a passthrough on
 * the same broker (consume, decode nothing, produce one message per input;
 * the same two input topics as the worker);
 * latency is the time from the produce call of a trigger event to the
 * arrival of its list at a consumer of the output topic, in one process on
 * one clock (CLOCK_MONOTONIC).
 *
 * External broker (--bootstrap). The run creates its own topics through the
 * Admin API, named "bench-<pid>-<ms>." + the usual name (a real broker keeps
 * what earlier runs wrote), with the broker's default replication; the
 * worker's group id gets the same prefix. The topics are left on the broker.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "xsell/codec.h"
#include "xsell/config.h"
#include "xsell/dataset.h"
#include "xsell/engine.h"
#include "xsell/hash.h"
#include "xsell/kafka.h"
#include "xsell/log.h"
#include "xsell/settings.h"
#include "xsell/store.h"
#include "xsell/synth.h"
#include "xsell/worker.h"

#define CHUNK 65536

typedef struct bench_opts {
    const char *mode;
    bool json;
    xs_synth_opts_t so;
    int dataset_fmt; /* -1: synthetic */
    xs_cli_strlist_t files;
    xs_config_t *cfg;
    const char *state_dir;
    uint64_t checkpoint_events;
    int cache_mb;
    double rate; /* e2e fixed offered rate, events/s */
    double rate_seconds;
    int partitions;
    uint64_t e2e_events;        /* e2e maximum-rate run */
    const char *bootstrap;      /* e2e: an external broker (NULL: the development broker) */
    const char *bootstrap_file; /* e2e: its bootstrap string in a file */
    bool digest;                /* core/state: digest of every list, for comparing builds */
} bench_opts_t;

/* ---- event source: synthetic chunks or a data set held in memory ---------------- */

typedef struct source {
    xs_synth_t *synth;
    xs_event_t *all; /* data set: every event, owned */
    size_t n_all, cap_all, pos;
    xs_event_t *chunk; /* synthetic: the current chunk */
    bool owned_chunk;
    double gen_seconds;
} source_t;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static xs_err_t keep_event(void *opaque, const xs_event_t *ev)
{
    source_t *s = opaque;
    if (s->n_all == s->cap_all) {
        size_t cap = s->cap_all ? s->cap_all * 2 : 65536;
        xs_event_t *v = realloc(s->all, cap * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        s->all = v;
        s->cap_all = cap;
    }
    xs_err_t err = xs_event_copy(&s->all[s->n_all], ev);
    if (!err)
        s->n_all++;
    return err;
}

static xs_err_t source_open(source_t *s, const bench_opts_t *o, uint64_t n_events, char *errstr,
                            size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    if (o->dataset_fmt >= 0) {
        xs_dataset_opts_t dopts;
        xs_dataset_opts_default(&dopts);
        dopts.max_events = n_events;
        double t0 = mono_s();
        xs_err_t err =
            xs_dataset_read((xs_dataset_format_t)o->dataset_fmt, (const char *const *)o->files.v,
                            o->files.n, &dopts, keep_event, s, NULL, errstr, errstr_size);
        s->gen_seconds = mono_s() - t0;
        return err;
    }
    xs_synth_opts_t so = o->so;
    so.n_events = n_events;
    if (!(s->synth = xs_synth_new(&so, errstr, errstr_size)))
        return XS_ERR_INVALID;
    if (!(s->chunk = calloc(CHUNK, sizeof(*s->chunk))))
        return XS_ERR_NOMEM;
    return XS_OK;
}

/* The next chunk of events (valid until the next call); *n = 0 at the end. */
static xs_err_t source_chunk(source_t *s, xs_event_t **out, size_t *n)
{
    *n = 0;
    if (!s->synth) {
        *out = s->all + s->pos;
        *n = XS_MIN((size_t)CHUNK, s->n_all - s->pos);
        s->pos += *n;
        return XS_OK;
    }
    for (size_t i = 0; s->owned_chunk && i < CHUNK; i++)
        xs_event_clear(&s->chunk[i]);
    s->owned_chunk = false;
    double t0 = mono_s();
    size_t k = 0;
    xs_err_t err = XS_OK;
    for (; k < CHUNK; k++) {
        if ((err = xs_synth_next(s->synth, &s->chunk[k])) != XS_OK)
            break;
    }
    for (size_t i = k; i < CHUNK; i++)
        xs_event_init(&s->chunk[i], XS_KIND_CLICK);
    s->owned_chunk = true;
    s->gen_seconds += mono_s() - t0;
    *out = s->chunk;
    *n = k;
    return err == XS_ERR_EOF ? XS_OK : err;
}

static void source_close(source_t *s)
{
    for (size_t i = 0; i < s->n_all; i++)
        xs_event_clear(&s->all[i]);
    free(s->all);
    for (size_t i = 0; s->owned_chunk && i < CHUNK; i++)
        xs_event_clear(&s->chunk[i]);
    free(s->chunk);
    xs_synth_destroy(s->synth);
    memset(s, 0, sizeof(*s));
}

/* ---- process figures ------------------------------------------------------------ */

/* VmRSS and VmHWM (peak) of this process, bytes. */
static void rss_bytes(uint64_t *rss, uint64_t *peak)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    *rss = *peak = 0;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long kb = 0;
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb * 1024;
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            *peak = kb * 1024;
    }
    if (f)
        fclose(f);
}

static void workload_json(const bench_opts_t *o, uint64_t events)
{
    if (o->dataset_fmt >= 0) {
        printf("\"workload\":{\"dataset\":\"%s\",\"files\":%zu,\"events\":%" PRIu64 "}",
               xs_dataset_format_name((xs_dataset_format_t)o->dataset_fmt), o->files.n, events);
        return;
    }
    printf("\"workload\":{\"synthetic\":true,\"seed\":%" PRIu64 ",\"events\":%" PRIu64
           ",\"users\":%u,\"items\":%u,\"categories\":%u,\"zipf_users\":%.2f,"
           "\"zipf_items\":%.2f,\"complements\":%u}",
           o->so.seed, events, o->so.n_users, o->so.n_items, o->so.n_categories, o->so.zipf_users,
           o->so.zipf_items, o->so.n_complements);
}

/* Share of planted complement pairs (the 100 most popular anchors) whose
 * complement is among the anchor's top-5 bought-together neighbours. */
static double planted_recall(xs_engine_t *e, const source_t *src, uint32_t n_complements)
{
    uint32_t n = XS_MIN(n_complements, 100u), hits = 0;
    for (uint32_t k = 0; src->synth && k < n; k++) {
        char a[16], b[16];
        xs_neighbour_t *nb = NULL;
        int n_nb = 0;
        xs_synth_complement(src->synth, k, a, b);
        if (xs_engine_neighbours(e, a, XS_CLASS_BOUGHT, 5, &nb, &n_nb, NULL, NULL, 0) == XS_OK)
            for (int i = 0; i < n_nb; i++)
                hits += strcmp(nb[i].item_id, b) == 0;
        xs_engine_neighbours_free(nb, n_nb);
    }
    return n ? (double)hits / n : 0;
}

/* ---- core and state ------------------------------------------------------------------ */

typedef struct state_ctx {
    xs_store_t *store;
    xs_store_batch_t *batch;
    uint64_t checkpoints;
    double checkpoint_seconds;
    /* records the checkpoints wrote (deletes included), and their bytes
     * (keys and values), per column family */
    uint64_t written[XS_CF__COUNT], written_bytes[XS_CF__COUNT];
} state_ctx_t;

static xs_err_t counting_put(void *opaque, xs_cf_t cf, const void *key, size_t key_len,
                             const void *val, size_t val_len)
{
    state_ctx_t *st = opaque;
    st->written[cf]++;
    st->written_bytes[cf] += key_len + val_len;
    return xs_store_batch_put(st->batch, cf, key, key_len, val, val_len);
}

static xs_err_t checkpoint(xs_engine_t *e, state_ctx_t *st, char *errstr, size_t errstr_size)
{
    double t0 = mono_s();
    xs_store_batch_clear(st->batch);
    xs_err_t err = xs_engine_flush(e, counting_put, st, errstr, errstr_size);
    if (!err && xs_store_batch_count(st->batch) > 0)
        err = xs_store_write(st->store, st->batch, false, errstr, errstr_size);
    if (!err)
        xs_engine_trim(e);
    st->checkpoints++;
    st->checkpoint_seconds += mono_s() - t0;
    return err;
}

typedef struct count_ctx {
    uint64_t n;
} count_ctx_t;

static int count_rec(void *opaque, const void *key, size_t key_len, const void *val, size_t val_len)
{
    ((count_ctx_t *)opaque)->n++;
    return 0;
}

/* Folds a list, Avro-encoded as the worker publishes it (every field), into
 * *digest. Two builds that compute the same lists print the same digest. */
static xs_err_t digest_list(xs_codec_t *codec, xs_buf_t *b, const xs_list_t *list, uint64_t *digest)
{
    xs_buf_reset(b);
    xs_err_t err = xs_codec_encode_list(codec, list, b);
    if (!err)
        *digest = (*digest ^ xs_hash(b->data, b->len)) * UINT64_C(0x100000001b3);
    return err;
}

static int run_engine_bench(const bench_opts_t *o, bool with_state)
{
    char errstr[1024] = "";
    int rc = 1;
    source_t src;
    state_ctx_t st = {0};
    xs_engine_t *e = NULL;
    xs_experiment_t experiment;
    xs_engine_opts_t eo;
    xs_backend_t backend;
    xs_list_t list;
    uint64_t events = 0, lists = 0, since_cp = 0, digest = 0;
    double busy = 0, digest_s = 0;
    char *dir = NULL;
    xs_codec_t *codec = NULL;
    xs_buf_t enc = {0};
    xs_event_list_init(&list);
    if (o->digest && !(codec = xs_codec_new(errstr, sizeof(errstr))))
        goto out;
    xs_engine_opts_default(&eo);
    xs_settings_params(o->cfg, &eo.params);
    if (xs_settings_experiment(o->cfg, &eo.params, &experiment, errstr, sizeof(errstr)) != XS_OK)
        goto out;
    eo.experiment = &experiment;
    eo.cache_bytes = 0; /* core: everything in memory */
    if (with_state) {
        if (o->state_dir) {
            dir = xs_str_dup(o->state_dir);
        } else {
            char tmpl[] = "/tmp/xsell-bench-state-XXXXXX";
            dir = mkdtemp(tmpl) ? xs_str_dup(tmpl) : NULL;
        }
        if (!dir) {
            snprintf(errstr, sizeof(errstr), "cannot create a state directory");
            goto out;
        }
        size_t n_rocks = 0;
        const xs_kv_t *rocks = xs_config_passthrough(o->cfg, "rocksdb.", &n_rocks);
        if (!(st.store = xs_store_open(dir, rocks, n_rocks, false, errstr, sizeof(errstr))))
            goto out;
        if (!(st.batch = xs_store_batch_new(st.store))) {
            snprintf(errstr, sizeof(errstr), "out of memory");
            goto out;
        }
        xs_store_backend(st.store, &backend);
        eo.backend = &backend;
        eo.cache_bytes = (size_t)o->cache_mb << 20;
    }
    if (!(e = xs_engine_new(&eo, errstr, sizeof(errstr))))
        goto out;
    if (source_open(&src, o, o->so.n_events, errstr, sizeof(errstr)) != XS_OK)
        goto out_src;
    for (;;) {
        xs_event_t *v = NULL;
        size_t n = 0;
        if (source_chunk(&src, &v, &n) != XS_OK || n == 0)
            break;
        double t0 = mono_s();
        for (size_t i = 0; i < n; i++) {
            bool has = false;
            xs_err_t err = xs_engine_process(e, 0, &v[i], &list, &has, errstr, sizeof(errstr));
            if (err) {
                fprintf(stderr, "xsell bench: event %" PRIu64 ": %s\n", events,
                        *errstr ? errstr : xs_err_str(err));
                goto out_src;
            }
            lists += has;
            if (has && codec) {
                double t1 = mono_s();
                if (digest_list(codec, &enc, &list, &digest) != XS_OK) {
                    snprintf(errstr, sizeof(errstr), "cannot encode list %s", list.list_id);
                    goto out_src;
                }
                digest_s += mono_s() - t1;
            }
            xs_event_list_clear(&list);
            events++;
            if (with_state && ++since_cp >= o->checkpoint_events) {
                since_cp = 0;
                if (checkpoint(e, &st, errstr, sizeof(errstr)) != XS_OK)
                    goto out_src;
            }
        }
        busy += mono_s() - t0;
    }
    busy -= digest_s; /* the figures are the engine's, with or without --digest */
    if (with_state) {
        double t0 = mono_s();
        if (checkpoint(e, &st, errstr, sizeof(errstr)) != XS_OK)
            goto out_src;
        busy += mono_s() - t0;
    }
    uint64_t rss = 0, peak = 0;
    rss_bytes(&rss, &peak);
    xs_engine_stats_t es;
    xs_footprint_t fp;
    xs_engine_stats(e, &es);
    xs_engine_footprint(e, &fp);
    double recall = o->dataset_fmt < 0 ? planted_recall(e, &src, o->so.n_complements) : -1;
    uint64_t disk_users = 0, disk_items = 0, disk_names = 0, disk_lists = 0, n_users = 0,
             n_items = 0;
    double compact_s = 0;
    if (with_state) {
        double t0 = mono_s();
        xs_store_compact(st.store);
        compact_s = mono_s() - t0;
        disk_users = xs_store_cf_sst_bytes(st.store, XS_CF_USERS);
        disk_items = xs_store_cf_sst_bytes(st.store, XS_CF_ITEMS);
        disk_names = xs_store_cf_sst_bytes(st.store, XS_CF_NAMES);
        disk_lists = xs_store_cf_sst_bytes(st.store, XS_CF_NEIGHBOURS);
        count_ctx_t cu = {0}, ci = {0};
        xs_store_iterate(st.store, XS_CF_USERS, count_rec, &cu, NULL, 0);
        xs_store_iterate(st.store, XS_CF_ITEMS, count_rec, &ci, NULL, 0);
        n_users = cu.n;
        n_items = ci.n;
    }
    double eps = busy > 0 ? events / busy : 0, lps = busy > 0 ? lists / busy : 0;
    if (o->json) {
        printf("{\"mode\":\"%s\",", o->mode);
        workload_json(o, events);
        printf(",\"events\":%" PRIu64 ",\"lists\":%" PRIu64 ",\"seconds\":%.3f,"
               "\"events_per_s\":%.0f,\"lists_per_s\":%.0f,\"us_per_event\":%.3f,"
               "\"pair_updates\":%" PRIu64 ",\"generate_seconds\":%.3f,"
               "\"rss_bytes\":%" PRIu64 ",\"rss_peak_bytes\":%" PRIu64 ","
               "\"users\":%" PRIu64 ",\"items\":%" PRIu64 ","
               "\"user_bytes_encoded_avg\":%.1f,\"item_bytes_encoded_avg\":%.1f,"
               "\"user_bytes_encoded_max\":%" PRIu64 ",\"item_bytes_encoded_max\":%" PRIu64,
               events, lists, busy, eps, lps, events ? busy * 1e6 / events : 0, es.pair_updates,
               src.gen_seconds, rss, peak, es.users_total, fp.items, fp.user_bytes_avg,
               fp.item_bytes_avg, fp.user_bytes_max, fp.item_bytes_max);
        if (recall >= 0)
            printf(",\"planted_recall_at5\":%.3f", recall);
        if (codec)
            printf(",\"lists_digest\":\"%016" PRIx64 "\"", digest);
        if (with_state)
            printf(",\"checkpoints\":%" PRIu64 ",\"checkpoint_seconds\":%.3f,"
                   "\"compact_seconds\":%.3f,\"disk_users\":%" PRIu64 ",\"disk_items\":%" PRIu64
                   ",\"disk_bytes_users\":%" PRIu64 ",\"disk_bytes_items\":%" PRIu64
                   ",\"disk_bytes_names\":%" PRIu64 ",\"disk_bytes_neighbours\":%" PRIu64
                   ",\"disk_bytes_per_user\":%.1f,"
                   "\"disk_bytes_per_item\":%.1f,\"cache_hits\":%" PRIu64
                   ",\"cache_misses\":%" PRIu64 ",\"written_items\":%" PRIu64
                   ",\"written_neighbours\":%" PRIu64 ",\"written_bytes_items\":%" PRIu64
                   ",\"written_bytes_neighbours\":%" PRIu64,
                   st.checkpoints, st.checkpoint_seconds, compact_s, n_users, n_items, disk_users,
                   disk_items, disk_names, disk_lists, n_users ? (double)disk_users / n_users : 0,
                   n_items ? (double)(disk_items + disk_lists) / n_items : 0, es.cache_hits,
                   es.cache_misses, st.written[XS_CF_ITEMS], st.written[XS_CF_NEIGHBOURS],
                   st.written_bytes[XS_CF_ITEMS], st.written_bytes[XS_CF_NEIGHBOURS]);
        printf("}\n");
    } else {
        printf("xsell bench %s: %" PRIu64 " events, %" PRIu64 " lists in %.2f s\n", o->mode, events,
               lists, busy);
        printf("  events/s        %12.0f   (%.2f us/event, one thread)\n", eps,
               events ? busy * 1e6 / events : 0);
        printf("  lists/s         %12.0f\n", lps);
        printf("  pair updates    %12" PRIu64 "\n", es.pair_updates);
        printf("  users, items    %12" PRIu64 " %12" PRIu64 "\n", es.users_total, fp.items);
        printf("  encoded B/user  %12.1f (max %" PRIu64 ")   B/item %.1f (max %" PRIu64 ")\n",
               fp.user_bytes_avg, fp.user_bytes_max, fp.item_bytes_avg, fp.item_bytes_max);
        printf("  RSS             %12.1f MiB (peak %.1f MiB)\n", rss / 1048576.0, peak / 1048576.0);
        if (recall >= 0)
            printf("  planted pairs found in top-5: %.1f%%\n", recall * 100);
        if (codec)
            printf("  lists digest    %016" PRIx64 "\n", digest);
        if (with_state) {
            printf("  checkpoints     %12" PRIu64 " (%.2f s)\n", st.checkpoints,
                   st.checkpoint_seconds);
            printf("  written         items %" PRIu64 " records (%.1f MB), neighbours %" PRIu64
                   " records (%.1f MB)\n",
                   st.written[XS_CF_ITEMS], st.written_bytes[XS_CF_ITEMS] / 1e6,
                   st.written[XS_CF_NEIGHBOURS], st.written_bytes[XS_CF_NEIGHBOURS] / 1e6);
            printf("  on disk after compaction: users %" PRIu64 " B / %" PRIu64
                   " = %.1f B/user, items %" PRIu64 " B + neighbours %" PRIu64 " B / %" PRIu64
                   " = %.1f B/item, names %" PRIu64 " B\n",
                   disk_users, n_users, n_users ? (double)disk_users / n_users : 0, disk_items,
                   disk_lists, n_items, n_items ? (double)(disk_items + disk_lists) / n_items : 0,
                   disk_names);
        }
    }
    rc = 0;
out_src:
    source_close(&src);
out:
    if (rc)
        fprintf(stderr, "xsell bench: %s\n", *errstr ? errstr : "failed");
    xs_event_list_clear(&list);
    xs_buf_free(&enc);
    xs_codec_destroy(codec);
    xs_engine_destroy(e);
    xs_store_batch_destroy(st.batch);
    xs_store_close(st.store);
    if (with_state && dir && !o->state_dir)
        xs_store_destroy_dir(dir, NULL, 0);
    free(dir);
    return rc;
}

/* ---- e2e: the worker on the development broker, against a passthrough ---------------- */

#define PT_IN "bench.passthrough.in"
#define PT_IN_CART "bench.passthrough.in.cart"
#define PT_OUT "bench.passthrough.out"

/* Encoded input events; index = position in the stream. */
typedef struct enc_events {
    xs_buf_t data;
    size_t *off, *len, *key_off, *key_len;
    uint8_t *is_cart;
    uint64_t *id_hash;
    size_t n;
    /* event id hash -> index + 1 (open addressing) */
    uint64_t *slot_key;
    uint32_t *slot_val;
    size_t slot_mask;
} enc_events_t;

static void enc_free(enc_events_t *v)
{
    xs_buf_free(&v->data);
    free(v->off);
    free(v->len);
    free(v->key_off);
    free(v->key_len);
    free(v->is_cart);
    free(v->id_hash);
    free(v->slot_key);
    free(v->slot_val);
    memset(v, 0, sizeof(*v));
}

static long enc_index(const enc_events_t *v, uint64_t h)
{
    for (size_t i = h & v->slot_mask; v->slot_key[i]; i = (i + 1) & v->slot_mask)
        if (v->slot_key[i] == h)
            return (long)v->slot_val[i] - 1;
    return -1;
}

static xs_err_t enc_build(enc_events_t *v, const bench_opts_t *o, uint64_t n, char *errstr,
                          size_t errstr_size)
{
    source_t src;
    xs_codec_t *codec = xs_codec_new(errstr, errstr_size);
    xs_err_t err = codec ? source_open(&src, o, n, errstr, errstr_size) : XS_ERR_INVALID;
    if (!codec || err)
        goto out;
    size_t cap = 0;
    for (;;) {
        xs_event_t *ev = NULL;
        size_t k = 0;
        if ((err = source_chunk(&src, &ev, &k)) != XS_OK || k == 0)
            break;
        for (size_t i = 0; i < k; i++) {
            if (ev[i].kind == XS_KIND_ITEM)
                continue;
            if (v->n == cap) {
                cap = cap ? cap * 2 : 65536;
                size_t *a = realloc(v->off, cap * sizeof(size_t)),
                       *b = a ? realloc(v->len, cap * sizeof(size_t)) : NULL;
                if (a)
                    v->off = a;
                if (b)
                    v->len = b;
                size_t *c = b ? realloc(v->key_off, cap * sizeof(size_t)) : NULL;
                if (c)
                    v->key_off = c;
                size_t *d = c ? realloc(v->key_len, cap * sizeof(size_t)) : NULL;
                if (d)
                    v->key_len = d;
                uint8_t *f = d ? realloc(v->is_cart, cap) : NULL;
                if (f)
                    v->is_cart = f;
                uint64_t *g = f ? realloc(v->id_hash, cap * sizeof(uint64_t)) : NULL;
                if (g)
                    v->id_hash = g;
                if (!g) {
                    err = XS_ERR_NOMEM;
                    goto out_src;
                }
            }
            v->key_off[v->n] = v->data.len;
            v->key_len[v->n] = strlen(ev[i].user_id);
            xs_buf_append(&v->data, ev[i].user_id, v->key_len[v->n]);
            v->off[v->n] = v->data.len;
            if ((err = xs_codec_encode_event(codec, &ev[i], &v->data)) != XS_OK)
                goto out_src;
            v->len[v->n] = v->data.len - v->off[v->n];
            v->is_cart[v->n] = ev[i].kind == XS_KIND_CART;
            v->id_hash[v->n] = xs_hash_str(ev[i].event_id);
            v->n++;
        }
    }
    size_t slots = 16;
    while (slots < v->n * 2)
        slots *= 2;
    v->slot_mask = slots - 1;
    v->slot_key = calloc(slots, sizeof(uint64_t));
    v->slot_val = calloc(slots, sizeof(uint32_t));
    if (!v->slot_key || !v->slot_val) {
        err = XS_ERR_NOMEM;
        goto out_src;
    }
    for (size_t i = 0; i < v->n; i++) {
        uint64_t h = v->id_hash[i] ? v->id_hash[i] : 1;
        size_t s = h & v->slot_mask;
        while (v->slot_key[s] && v->slot_key[s] != h)
            s = (s + 1) & v->slot_mask;
        v->slot_key[s] = h;
        v->slot_val[s] = (uint32_t)(i + 1);
    }
out_src:
    source_close(&src);
out:
    xs_codec_destroy(codec);
    return err;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Shared between the orchestrating thread and the measuring consumer. */
typedef struct e2e {
    const bench_opts_t *o;
    const char *bootstrap;
    bool external;
    /* topic names: the usual ones on the development broker, prefixed on an external one */
    char t_clicks[160], t_cart[160], t_catalog[160], t_out[160], t_dlq[160];
    char t_pt_in[160], t_pt_in_cart[160], t_pt_out[160], group[160];
    enc_events_t ev;
    _Atomic int64_t *sent_us; /* per event: produce call time, 0 = not sent */
    int64_t *lat_xsell_us;    /* per event: latency of its list (-1 none) */
    int64_t *lat_pt_us;       /* per event: latency of its passthrough copy */
    atomic_uint_fast64_t n_lists, n_pt, n_other;
    _Atomic int64_t last_list_us, last_pt_us;
    atomic_int stop_meter, stop_pt, stop_worker;
    volatile sig_atomic_t worker_stop;
    xs_worker_t *worker;
    xs_err_t worker_err;
    char worker_errstr[512];
    char meter_errstr[512];
} e2e_t;

static void *meter_thread(void *arg)
{
    e2e_t *x = arg;
    char errstr[512] = "";
    const char *topics[] = {x->t_out, x->t_pt_out};
    xs_consumer_opts_t co = {.bootstrap = x->bootstrap,
                             .topics = topics,
                             .n_topics = 2,
                             .start_offset = XS_OFFSET_BEGINNING};
    xs_kv_t conf[] = {{"fetch.wait.max.ms", "1"}, {"log.connection.close", "false"}};
    co.conf = conf;
    co.n_conf = XS_ARRAY_SIZE(conf);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    xs_consumer_t *c = codec ? xs_consumer_new(&co, errstr, sizeof(errstr)) : NULL;
    xs_list_ref_t ref;
    xs_event_t ev;
    if (!c) {
        snprintf(x->meter_errstr, sizeof(x->meter_errstr), "%s", errstr);
        goto out;
    }
    while (!atomic_load(&x->stop_meter)) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 50, &m, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF)
            continue;
        if (err) {
            snprintf(x->meter_errstr, sizeof(x->meter_errstr), "%s", errstr);
            break;
        }
        int64_t now = mono_us();
        char reason[256];
        bool pt = strcmp(m.topic, x->t_pt_out) == 0;
        uint64_t h = 0;
        if (pt) {
            xs_event_kind_t kind;
            xs_framing_t framing;
            if (xs_codec_decode(codec, m.value, m.value_len, -1, &ev, &kind, &framing, reason,
                                sizeof(reason)) == XS_OK)
                h = xs_hash_str(ev.event_id);
            xs_event_clear(&ev);
        } else if (xs_codec_peek_list(codec, m.value, m.value_len, &ref, reason, sizeof(reason)) ==
                       XS_OK &&
                   ref.trigger_event_id_len > 0) {
            /* a list's identity only: this thread shares the worker's CPUs */
            h = xs_hash(ref.trigger_event_id, ref.trigger_event_id_len);
        }
        long i = h ? enc_index(&x->ev, h ? h : 1) : -1;
        int64_t sent = i >= 0 ? atomic_load(&x->sent_us[i]) : 0;
        if (i < 0 || !sent) {
            atomic_fetch_add(&x->n_other, 1);
            continue;
        }
        if (pt) {
            x->lat_pt_us[i] = now - sent;
            atomic_fetch_add(&x->n_pt, 1);
            atomic_store(&x->last_pt_us, now);
        } else {
            x->lat_xsell_us[i] = now - sent;
            atomic_fetch_add(&x->n_lists, 1);
            atomic_store(&x->last_list_us, now);
        }
    }
out:
    xs_consumer_destroy(c);
    xs_codec_destroy(codec);
    return NULL;
}

/* The baseline: consume, decode nothing, produce one message per input. It
 * reads the same layout as the worker (click and cart events on two topics
 * of the same partition count), so both pay the broker for as many
 * partitions and message sets. */
static void *passthrough_thread(void *arg)
{
    e2e_t *x = arg;
    char errstr[512] = "";
    const char *topics[] = {x->t_pt_in, x->t_pt_in_cart};
    xs_kv_t cconf[] = {{"fetch.wait.max.ms", "1"}};
    xs_kv_t pconf[] = {{"linger.ms", "1"}};
    xs_consumer_opts_t co = {.bootstrap = x->bootstrap,
                             .topics = topics,
                             .n_topics = 2,
                             .start_offset = XS_OFFSET_BEGINNING,
                             .conf = cconf,
                             .n_conf = 1};
    xs_consumer_t *c = xs_consumer_new(&co, errstr, sizeof(errstr));
    xs_producer_t *p = c ? xs_producer_new(x->bootstrap, pconf, 1, errstr, sizeof(errstr)) : NULL;
    while (p && !atomic_load(&x->stop_pt)) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 50, &m, errstr, sizeof(errstr));
        if (err == XS_OK)
            err = xs_producer_send(p, x->t_pt_out, -1, m.key, m.key_len, m.value, m.value_len, NULL,
                                   0, errstr, sizeof(errstr));
        if (err && err != XS_ERR_EOF)
            break;
        xs_producer_poll(p);
    }
    xs_producer_destroy(p);
    xs_consumer_destroy(c);
    return NULL;
}

static void *worker_thread(void *arg)
{
    e2e_t *x = arg;
    x->worker_err =
        xs_worker_run(x->worker, &x->worker_stop, x->worker_errstr, sizeof(x->worker_errstr));
    return NULL;
}

/* Produces events [from, to) to the worker's topics (or the passthrough's),
 * at `rate` events/s (0: as fast as possible). */
static xs_err_t feed(e2e_t *x, xs_producer_t *p, size_t from, size_t to, bool passthrough,
                     double rate, char *errstr, size_t errstr_size)
{
    int64_t t0 = mono_us();
    for (size_t i = from; i < to; i++) {
        if (rate > 0) {
            int64_t due = t0 + (int64_t)((double)(i - from) * 1e6 / rate);
            int64_t wait;
            while ((wait = due - mono_us()) > 0) {
                struct timespec ts = {0, (long)(wait > 1000 ? 1000 : wait) * 1000L};
                nanosleep(&ts, NULL);
            }
        }
        const enc_events_t *v = &x->ev;
        const char *topic = passthrough     ? (v->is_cart[i] ? x->t_pt_in_cart : x->t_pt_in)
                            : v->is_cart[i] ? x->t_cart
                                            : x->t_clicks;
        atomic_store(&x->sent_us[i], mono_us());
        xs_err_t err =
            xs_producer_send(p, topic, -1, v->data.data + v->key_off[i], v->key_len[i],
                             v->data.data + v->off[i], v->len[i], NULL, 0, errstr, errstr_size);
        if (err)
            return err;
        if ((i & 255) == 0)
            xs_producer_poll(p);
    }
    return xs_producer_flush(p, 60000, errstr, errstr_size);
}

/* Waits until `counter` has not moved for quiet_ms (or timeout_ms passed). */
/* Waits until *counter has reached at_least and then not changed for quiet_ms
 * (or timeout_ms in all). A consumer still joining its group counts nothing
 * for a while: without at_least, that silence would read as the end. */
static void wait_quiet(atomic_uint_fast64_t *counter, uint64_t at_least, int quiet_ms,
                       int timeout_ms)
{
    int64_t start = xs_cli_now_ms(), last_change = start;
    uint64_t last = atomic_load(counter);
    while ((last < at_least || xs_cli_now_ms() - last_change < quiet_ms) &&
           xs_cli_now_ms() - start < timeout_ms) {
        xs_cli_sleep_ms(20);
        uint64_t now = atomic_load(counter);
        if (now != last) {
            last = now;
            last_change = xs_cli_now_ms();
        }
    }
}

typedef struct pct {
    uint64_t n;
    double p50, p95, p99, max;
} pct_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static pct_t percentiles(const int64_t *lat, size_t from, size_t to)
{
    pct_t r = {0};
    int64_t *v = malloc((to - from + 1) * sizeof(*v));
    for (size_t i = from; v && i < to; i++)
        if (lat[i] >= 0)
            v[r.n++] = lat[i];
    if (v && r.n) {
        qsort(v, r.n, sizeof(*v), cmp_i64);
        r.p50 = v[(size_t)(0.50 * (r.n - 1))] / 1e3;
        r.p95 = v[(size_t)(0.95 * (r.n - 1))] / 1e3;
        r.p99 = v[(size_t)(0.99 * (r.n - 1))] / 1e3;
        r.max = v[r.n - 1] / 1e3;
    }
    free(v);
    return r;
}

static void print_pct(const char *name, pct_t p)
{
    printf("\"%s\":{\"n\":%" PRIu64 ",\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f}", name,
           p.n, p.p50, p.p95, p.p99, p.max);
}

/* Worker settings the bench uses unless --set/--config says otherwise:
 * latency over batching (see docs/BENCHMARKS.md). */
static const char *const e2e_overrides[][2] = {
    {"kafka.linger.ms", "1"},
    {"kafka.fetch.wait.max.ms", "1"},
    {"commit.interval.ms", "200"},
};

/*
 * The broker and the topics: a development broker in process, or the
 * external one of --bootstrap with topics of this run's own (Admin API).
 */
static xs_err_t set_up_broker(e2e_t *x, xs_devbroker_t **db, char **bs_owned, char *errstr,
                              size_t errstr_size)
{
    const bench_opts_t *o = x->o;
    char prefix[96] = "";
    x->external = o->bootstrap || o->bootstrap_file;
    if (x->external) {
        if (xs_cli_bootstrap(o->bootstrap, o->bootstrap_file, 10000, bs_owned, errstr,
                             errstr_size) != XS_OK)
            return XS_ERR_INVALID;
        x->bootstrap = *bs_owned;
        snprintf(prefix, sizeof(prefix), "bench-%ld-%lld.", (long)getpid(), (long long)time(NULL));
    }
    char *names[] = {x->t_clicks, x->t_cart,  x->t_catalog,    x->t_out,
                     x->t_dlq,    x->t_pt_in, x->t_pt_in_cart, x->t_pt_out};
    const char *base[] = {"xsell.clicks", "xsell.cart", "xsell.catalog", "xsell.cross-sell",
                          "xsell.dlq",    PT_IN,        PT_IN_CART,      PT_OUT};
    for (size_t i = 0; i < XS_ARRAY_SIZE(names); i++)
        snprintf(names[i], sizeof(x->t_clicks), "%s%s", prefix, base[i]);
    snprintf(x->group, sizeof(x->group), "%sxsell-bench", prefix);
    if (!x->external) {
        if (!(*db = xs_devbroker_new(1, errstr, errstr_size)))
            return XS_ERR_KAFKA;
        x->bootstrap = xs_devbroker_bootstraps(*db);
        for (size_t i = 0; i < XS_ARRAY_SIZE(names); i++)
            if (xs_devbroker_create_topic(*db, names[i], o->partitions, errstr, errstr_size))
                return XS_ERR_KAFKA;
        return XS_OK;
    }
    static const xs_kv_t compact[] = {{"cleanup.policy", "compact"}};
    xs_topic_spec_t specs[XS_ARRAY_SIZE(names)];
    for (size_t i = 0; i < XS_ARRAY_SIZE(names); i++)
        specs[i] = (xs_topic_spec_t){names[i], o->partitions, -1, i == 2 ? compact : NULL, i == 2};
    return xs_kafka_create_topics(x->bootstrap, NULL, 0, specs, XS_ARRAY_SIZE(specs), 30000, errstr,
                                  errstr_size);
}

static int run_e2e(const bench_opts_t *o)
{
    char errstr[1024] = "";
    int rc = 1;
    e2e_t x;
    xs_devbroker_t *db = NULL;
    char *bs_owned = NULL;
    xs_producer_t *prod = NULL;
    xs_config_t *cfg = NULL;
    pthread_t th_meter, th_pt, th_worker;
    bool meter_on = false, pt_on = false, worker_on = false;
    char dir[] = "/tmp/xsell-bench-e2e-XXXXXX";
    bool dir_made = false;
    memset(&x, 0, sizeof(x));
    x.o = o;
    xs_log_set_level(XS_LOG_WARN);
    size_t n_max = (size_t)o->e2e_events, n_rate = (size_t)(o->rate * o->rate_seconds);
    size_t n_warm = 200;
    if (enc_build(&x.ev, o, n_warm + n_max + n_rate, errstr, sizeof(errstr)) != XS_OK)
        goto out;
    if (x.ev.n < n_warm + n_max + n_rate) {
        snprintf(errstr, sizeof(errstr), "the workload has %zu events, %zu needed", x.ev.n,
                 n_warm + n_max + n_rate);
        goto out;
    }
    x.sent_us = calloc(x.ev.n, sizeof(*x.sent_us));
    x.lat_xsell_us = malloc(x.ev.n * sizeof(int64_t));
    x.lat_pt_us = malloc(x.ev.n * sizeof(int64_t));
    if (!x.sent_us || !x.lat_xsell_us || !x.lat_pt_us) {
        snprintf(errstr, sizeof(errstr), "out of memory");
        goto out;
    }
    for (size_t i = 0; i < x.ev.n; i++)
        x.lat_xsell_us[i] = x.lat_pt_us[i] = -1;

    if (set_up_broker(&x, &db, &bs_owned, errstr, sizeof(errstr)) != XS_OK)
        goto out;
    xs_kv_t pconf[] = {{"linger.ms", "1"}};
    if (!(prod = xs_producer_new(x.bootstrap, pconf, 1, errstr, sizeof(errstr))))
        goto out;
    if (pthread_create(&th_meter, NULL, meter_thread, &x) != 0)
        goto out;
    meter_on = true;

    /* 1. passthrough at maximum rate */
    if (pthread_create(&th_pt, NULL, passthrough_thread, &x) != 0)
        goto out;
    pt_on = true;
    if (feed(&x, prod, 0, n_warm, true, 0, errstr, sizeof(errstr)))
        goto out;
    wait_quiet(&x.n_pt, n_warm, 1000, 30000);
    uint64_t pt0 = atomic_load(&x.n_pt);
    int64_t t_pt0 = mono_us();
    if (feed(&x, prod, n_warm, n_warm + n_max, true, 0, errstr, sizeof(errstr)))
        goto out;
    wait_quiet(&x.n_pt, pt0 + n_max, 1500, 120000);
    double pt_s = (atomic_load(&x.last_pt_us) - t_pt0) / 1e6;
    uint64_t pt_n = atomic_load(&x.n_pt) - pt0;
    /* the broker's own latency floor: the passthrough at the fixed rate */
    if (feed(&x, prod, n_warm + n_max, n_warm + n_max + n_rate, true, o->rate, errstr,
             sizeof(errstr)))
        goto out;
    wait_quiet(&x.n_pt, pt0 + n_max + n_rate, 1500, 60000);
    atomic_store(&x.stop_pt, 1);
    pthread_join(th_pt, NULL);
    pt_on = false;

    /* 2. the worker: warm-up (group join), maximum rate, then a fixed offered rate */
    if (!mkdtemp(dir)) {
        snprintf(errstr, sizeof(errstr), "cannot create a state directory");
        goto out;
    }
    dir_made = true;
    if (!(cfg = xs_config_new()))
        goto out;
    for (size_t i = 0; i < XS_ARRAY_SIZE(e2e_overrides); i++)
        if (!xs_config_get_raw(o->cfg, e2e_overrides[i][0]) &&
            xs_config_set(cfg, e2e_overrides[i][0], e2e_overrides[i][1], "bench", errstr,
                          sizeof(errstr)))
            goto out;
    {
        /* the user's settings (--config/--set) win over the bench's */
        const char *keys[] = {"kafka.", "rocksdb."};
        for (size_t k = 0; k < 2; k++) {
            size_t n = 0;
            const xs_kv_t *kv = xs_config_passthrough(o->cfg, keys[k], &n);
            for (size_t i = 0; i < n; i++) {
                char full[256];
                snprintf(full, sizeof(full), "%s%s", keys[k], kv[i].key);
                if (xs_config_set(cfg, full, kv[i].value, "--set", errstr, sizeof(errstr)))
                    goto out;
            }
        }
        const char *plain[] = {"commit.interval.ms", "checkpoint.dirty.bytes",
                               "cache.max.bytes",    "state.sync",
                               "model.kmax",         "model.similarity",
                               "model.min_support",  "list.suppress_minutes"};
        for (size_t i = 0; i < XS_ARRAY_SIZE(plain); i++) {
            const char *v = xs_config_get_raw(o->cfg, plain[i]);
            if (v && xs_config_set(cfg, plain[i], v, "--set", errstr, sizeof(errstr)))
                goto out;
        }
    }
    const char *fixed[][2] = {{"kafka.bootstrap.servers", x.bootstrap},
                              {"state.dir", dir},
                              {"group.id", x.group},
                              {"http.address", ""},
                              {"log.progress.seconds", "0"},
                              {"topics.clicks", x.t_clicks},
                              {"topics.cart", x.t_cart},
                              {"topics.catalog", x.t_catalog},
                              {"topics.output", x.t_out},
                              {"topics.dlq", x.t_dlq}};
    for (size_t i = 0; i < XS_ARRAY_SIZE(fixed); i++)
        if (xs_config_set(cfg, fixed[i][0], fixed[i][1], "bench", errstr, sizeof(errstr)))
            goto out;
    xs_worker_opts_t wo = {.config = cfg};
    if (!(x.worker = xs_worker_new(&wo, errstr, sizeof(errstr))))
        goto out;
    if (pthread_create(&th_worker, NULL, worker_thread, &x) != 0)
        goto out;
    worker_on = true;
    if (feed(&x, prod, 0, n_warm, false, 0, errstr, sizeof(errstr)))
        goto out;
    for (int i = 0; i < 600 && atomic_load(&x.n_lists) == 0; i++)
        xs_cli_sleep_ms(50);
    wait_quiet(&x.n_lists, 0, 1000, 30000);
    uint64_t l0 = atomic_load(&x.n_lists);
    int64_t t_x0 = mono_us();
    if (feed(&x, prod, n_warm, n_warm + n_max, false, 0, errstr, sizeof(errstr)))
        goto out;
    wait_quiet(&x.n_lists, 0, 1500, 300000);
    double x_s = (atomic_load(&x.last_list_us) - t_x0) / 1e6;
    uint64_t x_lists = atomic_load(&x.n_lists) - l0;

    uint64_t l1 = atomic_load(&x.n_lists);
    int64_t t_r0 = mono_us();
    if (feed(&x, prod, n_warm + n_max, n_warm + n_max + n_rate, false, o->rate, errstr,
             sizeof(errstr)))
        goto out;
    double r_feed_s = (mono_us() - t_r0) / 1e6;
    wait_quiet(&x.n_lists, 0, 1500, 60000);
    uint64_t r_lists = atomic_load(&x.n_lists) - l1;
    x.worker_stop = 1;
    pthread_join(th_worker, NULL);
    worker_on = false;
    if (x.worker_err) {
        snprintf(errstr, sizeof(errstr), "worker: %s", x.worker_errstr);
        goto out;
    }

    pct_t lp = percentiles(x.lat_pt_us, n_warm, n_warm + n_max);
    pct_t lx = percentiles(x.lat_xsell_us, n_warm, n_warm + n_max);
    pct_t lr = percentiles(x.lat_xsell_us, n_warm + n_max, n_warm + n_max + n_rate);
    pct_t lpr = percentiles(x.lat_pt_us, n_warm + n_max, n_warm + n_max + n_rate);
    double pt_eps = pt_s > 0 ? n_max / pt_s : 0, x_eps = x_s > 0 ? n_max / x_s : 0;
    uint64_t rss = 0, peak = 0;
    rss_bytes(&rss, &peak);
    if (o->json) {
        printf("{\"mode\":\"e2e\",");
        workload_json(o, x.ev.n);
        printf(",\"partitions\":%d,\"broker\":\"%s\",", o->partitions,
               x.external ? "external" : "librdkafka mock cluster, in process");
        if (x.external)
            printf("\"bootstrap\":\"%s\",", x.bootstrap);
        printf("\"passthrough\":{\"events\":%zu,\"delivered\":%" PRIu64
               ",\"seconds\":%.3f,\"events_per_s\":%.0f,",
               n_max, pt_n, pt_s, pt_eps);
        print_pct("latency_ms", lp);
        printf(",");
        print_pct("latency_ms_at_fixed_rate", lpr);
        printf("},\"xsell_max_rate\":{\"events\":%zu,\"lists\":%" PRIu64
               ",\"seconds\":%.3f,\"events_per_s\":%.0f,\"lists_per_s\":%.0f,",
               n_max, x_lists, x_s, x_eps, x_s > 0 ? x_lists / x_s : 0);
        print_pct("latency_ms", lx);
        printf("},\"ratio_vs_passthrough\":%.3f,", pt_eps > 0 ? x_eps / pt_eps : 0);
        printf("\"xsell_fixed_rate\":{\"offered_per_s\":%.0f,\"events\":%zu,\"achieved_per_s\":"
               "%.0f,\"lists\":%" PRIu64 ",",
               o->rate, n_rate, r_feed_s > 0 ? n_rate / r_feed_s : 0, r_lists);
        print_pct("latency_ms", lr);
        printf("},\"settings\":{");
        for (size_t i = 0; i < XS_ARRAY_SIZE(e2e_overrides); i++) {
            const char *v = xs_config_get_raw(cfg, e2e_overrides[i][0]);
            printf("%s\"%s\":\"%s\"", i ? "," : "", e2e_overrides[i][0], v ? v : "");
        }
        printf("},\"rss_peak_bytes\":%" PRIu64 "}\n", peak);
    } else {
        if (x.external)
            printf("xsell bench e2e: %d partitions, broker at %s (topics %s*)\n", o->partitions,
                   x.bootstrap, x.group);
        else
            printf("xsell bench e2e: %d partitions, development broker in process\n",
                   o->partitions);
        printf("  passthrough  %9.0f events/s   latency ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
               pt_eps, lp.p50, lp.p95, lp.p99, lp.max);
        printf("  passthrough at %.0f events/s offered: latency ms p50 %.2f p95 %.2f p99 %.2f "
               "max %.2f\n",
               o->rate, lpr.p50, lpr.p95, lpr.p99, lpr.max);
        printf("  xsell max    %9.0f events/s   %.0f lists/s   latency ms p50 %.2f p95 %.2f p99 "
               "%.2f max %.2f\n",
               x_eps, x_s > 0 ? x_lists / x_s : 0, lx.p50, lx.p95, lx.p99, lx.max);
        printf("  ratio xsell / passthrough: %.3f\n", pt_eps > 0 ? x_eps / pt_eps : 0);
        printf("  xsell at %.0f events/s offered (%zu events, %" PRIu64
               " lists): latency ms p50 %.2f p95 %.2f p99 %.2f max %.2f\n",
               o->rate, n_rate, r_lists, lr.p50, lr.p95, lr.p99, lr.max);
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "xsell bench e2e: %s\n", *errstr ? errstr : "failed");
    if (worker_on) {
        x.worker_stop = 1;
        pthread_join(th_worker, NULL);
    }
    if (pt_on) {
        atomic_store(&x.stop_pt, 1);
        pthread_join(th_pt, NULL);
    }
    if (meter_on) {
        atomic_store(&x.stop_meter, 1);
        pthread_join(th_meter, NULL);
    }
    xs_worker_destroy(x.worker);
    xs_producer_destroy(prod);
    xs_devbroker_destroy(db);
    free(bs_owned);
    xs_config_destroy(cfg);
    if (dir_made)
        xs_store_destroy_dir(dir, NULL, 0);
    free(x.sent_us);
    free(x.lat_xsell_us);
    free(x.lat_pt_us);
    enc_free(&x.ev);
    return rc;
}

/* ---- command line ------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xsell bench core|state|e2e [--json] [--events N] [--users N] [--items N]\n"
            "                  [--seed S] [--complements N] [--dataset FORMAT FILE...]\n"
            "                  [--config FILE] [--set key=value]...\n"
            "  core, state: [--digest] (a digest of every list, to compare builds)\n"
            "  state: [--state-dir D] [--checkpoint-events N] [--cache-mb M]\n"
            "  e2e:   [--partitions P] [--e2e-events N] [--rate EVENTS_PER_S] [--rate-seconds S]\n"
            "         [--bootstrap B | --bootstrap-file F] (a Kafka cluster; default: the\n"
            "         development broker in process)\n"
            "       xsell bench order [--events N] [--partitions P] [--every K] [--chunk C]\n"
            "                  [--exact] [--set key=value]... --dataset FORMAT FILE...\n"
            "         the neighbour lists of one input in several orders and groupings\n");
}

int xs_cli_bench(int argc, char **argv)
{
    char errstr[1024] = "";
    int rc = 2;
    bool events_set = false;
    bench_opts_t o;
    memset(&o, 0, sizeof(o));
    xs_synth_opts_default(&o.so);
    o.dataset_fmt = -1;
    o.checkpoint_events = 100000;
    o.cache_mb = 256;
    o.rate = 10000;
    o.rate_seconds = 10;
    o.partitions = 8;
    o.e2e_events = 200000;
    if (!(o.cfg = xs_config_new()))
        return 1;
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? stdout
                                                                                  : stderr);
        rc = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0 : 2;
        goto out;
    }
    o.mode = argv[1];
    if (!strcmp(o.mode, "order")) { /* its own options (cli_order.c) */
        xs_config_destroy(o.cfg);
        return xs_cli_order_bench(argc - 1, argv + 1);
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        uint64_t u = 0;
        int64_t v = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--json")) {
            o.json = true;
        } else if (!strcmp(a, "--digest")) {
            o.digest = true;
        } else if (!strcmp(a, "--events") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &o.so.n_events, errstr, sizeof(errstr)))
                goto bad;
            events_set = true;
        } else if (!strcmp(a, "--users") && more) {
            if (!xs_cli_parse_i64(a, argv[++i], 1, UINT32_MAX, &v, errstr, sizeof(errstr)))
                goto bad;
            o.so.n_users = (uint32_t)v;
        } else if (!strcmp(a, "--items") && more) {
            if (!xs_cli_parse_i64(a, argv[++i], 2, UINT32_MAX, &v, errstr, sizeof(errstr)))
                goto bad;
            o.so.n_items = (uint32_t)v;
        } else if (!strcmp(a, "--complements") && more) {
            if (!xs_cli_parse_i64(a, argv[++i], 0, UINT32_MAX, &v, errstr, sizeof(errstr)))
                goto bad;
            o.so.n_complements = (uint32_t)v;
        } else if (!strcmp(a, "--seed") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &o.so.seed, errstr, sizeof(errstr)))
                goto bad;
        } else if (!strcmp(a, "--dataset") && more) {
            if ((o.dataset_fmt = xs_dataset_format_from_name(argv[++i])) < 0) {
                snprintf(errstr, sizeof(errstr), "--dataset: unknown format '%s'", argv[i]);
                goto bad;
            }
        } else if (!strcmp(a, "--config") && more) {
            if (xs_config_load_file(o.cfg, argv[++i], errstr, sizeof(errstr)) != XS_OK)
                goto bad;
        } else if (!strcmp(a, "--set") && more) {
            if (xs_config_set_pair(o.cfg, argv[++i], "--set", errstr, sizeof(errstr)) != XS_OK)
                goto bad;
        } else if (!strcmp(a, "--state-dir") && more) {
            o.state_dir = argv[++i];
        } else if (!strcmp(a, "--checkpoint-events") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &u, errstr, sizeof(errstr)) || !u)
                goto bad;
            o.checkpoint_events = u;
        } else if (!strcmp(a, "--cache-mb") && more) {
            if (!xs_cli_parse_int(a, argv[++i], 1, 1 << 20, &o.cache_mb, errstr, sizeof(errstr)))
                goto bad;
        } else if (!strcmp(a, "--rate") && more) {
            if (!xs_cli_parse_i64(a, argv[++i], 1, 10000000, &v, errstr, sizeof(errstr)))
                goto bad;
            o.rate = (double)v;
        } else if (!strcmp(a, "--rate-seconds") && more) {
            if (!xs_cli_parse_i64(a, argv[++i], 1, 3600, &v, errstr, sizeof(errstr)))
                goto bad;
            o.rate_seconds = (double)v;
        } else if (!strcmp(a, "--partitions") && more) {
            if (!xs_cli_parse_int(a, argv[++i], 1, 256, &o.partitions, errstr, sizeof(errstr)))
                goto bad;
        } else if (!strcmp(a, "--bootstrap") && more) {
            o.bootstrap = argv[++i];
        } else if (!strcmp(a, "--bootstrap-file") && more) {
            o.bootstrap_file = argv[++i];
        } else if (!strcmp(a, "--e2e-events") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &o.e2e_events, errstr, sizeof(errstr)))
                goto bad;
        } else if (a[0] != '-' && o.dataset_fmt >= 0) {
            if (xs_cli_strlist_add(&o.files, a) != XS_OK) {
                rc = 1;
                goto out;
            }
        } else {
            snprintf(errstr, sizeof(errstr), "unknown or incomplete option '%s'", a);
            goto bad;
        }
    }
    if (o.dataset_fmt >= 0 && o.files.n == 0) {
        snprintf(errstr, sizeof(errstr), "--dataset needs at least one file");
        goto bad;
    }
    if (o.so.n_complements > o.so.n_items / 2)
        o.so.n_complements = o.so.n_items / 2; /* small catalogues: keep pairs distinct */
    if (o.dataset_fmt >= 0 && !events_set)
        o.so.n_events = 0; /* a data set: all of it unless --events says otherwise */
    if (!strcmp(o.mode, "core")) {
        rc = run_engine_bench(&o, false);
    } else if (!strcmp(o.mode, "state")) {
        rc = run_engine_bench(&o, true);
    } else if (!strcmp(o.mode, "e2e")) {
        rc = run_e2e(&o);
    } else {
        snprintf(errstr, sizeof(errstr), "unknown mode '%s' (core, state, e2e or order)", o.mode);
        goto bad;
    }
    goto out;
bad:
    fprintf(stderr, "xsell bench: %s\n", errstr);
    usage(stderr);
    rc = 2;
out:
    xs_cli_strlist_free(&o.files);
    xs_config_destroy(o.cfg);
    return rc;
}
