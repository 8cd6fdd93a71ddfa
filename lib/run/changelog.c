/*
 * changelog.c — the users changelog (see include/xsell/changelog.h for the
 * topic, the records, the protocol and its invariants C1-C4).
 *
 * Writing. xs_changelog_begin() opens a transaction and taps the
 * checkpoint's batch: every users record the processor puts (its snapshot,
 * a few per loop turn) is sent to changelog partition = the key's input
 * partition right then, asynchronously. xs_changelog_offsets() sends the
 * offsets records once the snapshot is complete, each with a slot for the
 * offset the broker gives it. xs_changelog_commit() runs on the checkpoint
 * writer thread: commit_transaction (flushing: the slots are filled), then
 * the meta record "changelog/<topic>/<partition>" = that offset + 1 goes
 * into the local batch, which the writer writes next.
 *
 * Crash windows (a restart on the same disk, or another instance):
 *   - before the commit: the transaction is aborted (by the next
 *     init_transactions of the same transactional.id, or by the broker's
 *     transaction.timeout.ms); changelog and local store both hold the
 *     previous checkpoint: the input after it is replayed.
 *   - after the commit, before the local write: the changelog holds
 *     checkpoint k, the local store k-1. On assignment the changelog's end
 *     is past the local "changelog/" position, the partition is read, its
 *     offsets are ahead of the local ones: restored to k (C4).
 *   - after both: the changelog's end is the local position + 1 (our
 *     offsets record, then the commit marker): nothing to read.
 * The local store is never ahead of the changelog (C2) for what this
 * instance wrote; a store that is (the changelog was turned on later, or
 * its topic recreated) is kept, not replaced.
 *
 * Restoring. One RocksDB WriteBatch per partition: the deletes of the
 * partition's local users (when it had local offsets: stale state), then
 * every users record of the changelog partition in log order (a later
 * value of a key replaces an earlier one in the batch; a null value is a
 * delete), then the offsets of the last offsets record and the changelog
 * position. The batch holds the partition's whole state while it is read
 * (memory: about the changelog partition's size); the restore blocks the
 * loop (it runs in the assignment), so /readyz is not ready meanwhile.
 */
#include "xsell/changelog.h"

#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xsell/hash.h"
#include "xsell/kafka_txn.h"
#include "xsell/log.h"

#define XS_USER_KEY_LEN 10
#define XS_CL_COMMIT_MS 60000
#define XS_CL_OFFSETS_MAX 4096
/* Longest wait of a restore for the markers of a transaction just committed. */
#define XS_CHANGELOG_SETTLE_MS 2000

typedef struct sent_offsets {
    int32_t partition;
    int64_t offset; /* where the broker put it (-1 until acknowledged) */
} sent_offsets_t;

struct xs_changelog {
    xs_changelog_opts_t o;
    char topic[256];
    char txn_id[512];
    char *topics[XS_CHANGELOG_MAX_TOPICS]; /* the user-keyed input topics */
    size_t n_topics;
    int restore_timeout_ms;
    bool sync;
    xs_kafka_txn_t *tp;
    xs_store_batch_t *batch; /* tapped by the open transaction */
    sent_offsets_t **sent;
    size_t n_sent, cap_sent;
    uint64_t records_sent;
    atomic_int restoring;
    /* fencing (xs_changelog_set_group): the group membership as of the
     * transaction's begin, and the input offsets its offsets records carry */
    xs_consumer_t *consumer;
    xs_consumer_group_meta_t *gm;
    xs_offset_t *txn_offs;
    size_t n_txn_offs, cap_txn_offs;
};

/* ---- names ---------------------------------------------------------------------------- */

const char *xs_changelog_topic_name(const xs_config_t *cfg, char *buf, size_t size)
{
    const char *t = xs_config_str(cfg, "changelog.topic");
    if (t && *t)
        snprintf(buf, size, "%s", t);
    else
        snprintf(buf, size, "%s-users-changelog", xs_config_str(cfg, "group.id"));
    return buf;
}

const char *xs_changelog_topic(const xs_changelog_t *cl)
{
    return cl->topic;
}

bool xs_changelog_user_topic(const xs_changelog_t *cl, const char *topic)
{
    for (size_t i = 0; i < cl->n_topics; i++)
        if (strcmp(cl->topics[i], topic) == 0)
            return true;
    return false;
}

static size_t position_key(const xs_changelog_t *cl, int32_t partition, char *buf, size_t size)
{
    int n = snprintf(buf, size, "changelog/%s/%" PRId32, cl->topic, partition);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- the offsets record --------------------------------------------------------------- */

size_t xs_changelog_offsets_encode(const xs_offset_t *offsets, size_t n, uint8_t *buf, size_t size)
{
    size_t len = 4;
    if (n > XS_CHANGELOG_MAX_TOPICS || size < len)
        return 0;
    buf[0] = 'X';
    buf[1] = 'O';
    buf[2] = XS_CHANGELOG_OFFSETS_VERSION;
    buf[3] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        size_t tl = strlen(offsets[i].topic);
        if (tl > 255 || len + 2 + tl + 8 > size)
            return 0;
        buf[len++] = (uint8_t)(tl >> 8);
        buf[len++] = (uint8_t)tl;
        memcpy(buf + len, offsets[i].topic, tl);
        len += tl;
        put_be64(buf + len, (uint64_t)offsets[i].offset);
        len += 8;
    }
    return len;
}

xs_err_t xs_changelog_offsets_decode(const uint8_t *buf, size_t len, xs_offset_t *offsets,
                                     size_t *n, char topics[][256], char *errstr,
                                     size_t errstr_size)
{
    *n = 0;
    if (len < 4 || buf[0] != 'X' || buf[1] != 'O') {
        xs_err_set(errstr, errstr_size, "changelog offsets record: bad magic (%zu bytes)", len);
        return XS_ERR_DECODE;
    }
    if (buf[2] != XS_CHANGELOG_OFFSETS_VERSION) {
        xs_err_set(errstr, errstr_size,
                   "changelog offsets record: version %u, this code reads version %d", buf[2],
                   XS_CHANGELOG_OFFSETS_VERSION);
        return buf[2] > XS_CHANGELOG_OFFSETS_VERSION ? XS_ERR_VERSION : XS_ERR_DECODE;
    }
    size_t cnt = buf[3], pos = 4;
    if (cnt > XS_CHANGELOG_MAX_TOPICS) {
        xs_err_set(errstr, errstr_size, "changelog offsets record: %zu topics", cnt);
        return XS_ERR_DECODE;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (pos + 2 > len)
            goto truncated;
        size_t tl = (size_t)buf[pos] << 8 | buf[pos + 1];
        pos += 2;
        if (tl > 255 || pos + tl + 8 > len)
            goto truncated;
        memcpy(topics[i], buf + pos, tl);
        topics[i][tl] = 0;
        pos += tl;
        offsets[i].topic = topics[i];
        offsets[i].partition = -1;
        offsets[i].offset = (int64_t)get_be64(buf + pos);
        pos += 8;
    }
    if (pos != len)
        goto truncated;
    *n = cnt;
    return XS_OK;
truncated:
    xs_err_set(errstr, errstr_size, "changelog offsets record: truncated or trailing bytes");
    return XS_ERR_DECODE;
}

/* ---- writing -------------------------------------------------------------------------- */

/* The batch's tap: a users record goes to the changelog partition of its
 * input partition (the key's first two bytes). */
static xs_err_t cl_tap(void *opaque, xs_cf_t cf, const void *key, size_t key_len, const void *val,
                       size_t val_len)
{
    xs_changelog_t *cl = opaque;
    char errstr[512];
    if (cf != XS_CF_USERS)
        return XS_OK;
    if (key_len != XS_USER_KEY_LEN) {
        XS_ERROR("changelog: unexpected users key", "len=%zu", key_len);
        return XS_ERR_INVALID;
    }
    const uint8_t *k = key;
    int32_t partition = (int32_t)(k[0] << 8 | k[1]);
    xs_err_t err = xs_kafka_txn_send(cl->tp, cl->topic, partition, key, key_len, val, val_len, NULL,
                                     errstr, sizeof(errstr));
    if (err) {
        XS_ERROR("changelog send failed", "error=\"%s\"", errstr);
        return err;
    }
    if (++cl->records_sent % 1024 == 0)
        xs_kafka_txn_poll(cl->tp);
    return XS_OK;
}

xs_err_t xs_changelog_begin(xs_changelog_t *cl, xs_store_batch_t *batch, char *errstr,
                            size_t errstr_size)
{
    xs_err_t err = xs_kafka_txn_begin(cl->tp, errstr, errstr_size);
    if (err)
        return err;
    xs_consumer_group_meta_free(cl->gm);
    cl->gm = NULL;
    if (cl->consumer && !(cl->gm = xs_consumer_group_meta(cl->consumer))) {
        xs_changelog_abort(cl);
        xs_err_set(errstr, errstr_size, "changelog: no group membership to fence with");
        return XS_ERR_NOMEM;
    }
    cl->n_txn_offs = 0;
    cl->n_sent = 0;
    cl->records_sent = 0;
    cl->batch = batch;
    xs_store_batch_tap(batch, cl_tap, cl);
    return XS_OK;
}

xs_err_t xs_changelog_offsets(xs_changelog_t *cl, int32_t partition, const xs_offset_t *offsets,
                              size_t n, char *errstr, size_t errstr_size)
{
    uint8_t buf[XS_CL_OFFSETS_MAX];
    size_t len = xs_changelog_offsets_encode(offsets, n, buf, sizeof(buf));
    if (!len) {
        xs_err_set(errstr, errstr_size, "changelog: offsets record of partition %d too large",
                   (int)partition);
        return XS_ERR_TOO_LARGE;
    }
    if (cl->n_sent == cl->cap_sent) {
        size_t cap = cl->cap_sent ? cl->cap_sent * 2 : 16;
        sent_offsets_t **s = realloc(cl->sent, cap * sizeof(*s));
        if (!s)
            goto nomem;
        cl->sent = s;
        for (size_t i = cl->cap_sent; i < cap; i++)
            cl->sent[i] = NULL;
        cl->cap_sent = cap;
    }
    /* the slot must stay where it is until the commit: one allocation each */
    if (!cl->sent[cl->n_sent] && !(cl->sent[cl->n_sent] = malloc(sizeof(sent_offsets_t))))
        goto nomem;
    sent_offsets_t *s = cl->sent[cl->n_sent++];
    s->partition = partition;
    for (size_t i = 0; i < n; i++) { /* for the group's commit in the transaction */
        const char *topic = NULL;
        for (size_t t = 0; t < cl->n_topics && !topic; t++)
            if (strcmp(cl->topics[t], offsets[i].topic) == 0)
                topic = cl->topics[t]; /* ours: lives until the commit */
        if (!topic || offsets[i].offset < 0)
            continue;
        if (cl->n_txn_offs == cl->cap_txn_offs) {
            size_t cap = cl->cap_txn_offs ? cl->cap_txn_offs * 2 : 16;
            xs_offset_t *o = realloc(cl->txn_offs, cap * sizeof(*o));
            if (!o)
                goto nomem;
            cl->txn_offs = o;
            cl->cap_txn_offs = cap;
        }
        cl->txn_offs[cl->n_txn_offs++] = (xs_offset_t){topic, partition, offsets[i].offset};
    }
    return xs_kafka_txn_send(cl->tp, cl->topic, partition, XS_CHANGELOG_OFFSETS_KEY,
                             strlen(XS_CHANGELOG_OFFSETS_KEY), buf, len, &s->offset, errstr,
                             errstr_size);
nomem:
    xs_err_set(errstr, errstr_size, "out of memory");
    return XS_ERR_NOMEM;
}

xs_err_t xs_changelog_send(xs_changelog_t *cl, const char *topic, int32_t partition,
                           const void *key, size_t key_len, const void *val, size_t val_len,
                           char *errstr, size_t errstr_size)
{
    xs_err_t err = xs_kafka_txn_send(cl->tp, topic, partition, key, key_len, val, val_len, NULL,
                                     errstr, errstr_size);
    if (!err)
        xs_kafka_txn_poll(cl->tp); /* a few per checkpoint: delivery reports served */
    return err;
}

xs_err_t xs_changelog_commit(xs_changelog_t *cl, xs_store_batch_t *batch, char *errstr,
                             size_t errstr_size)
{
    xs_store_batch_tap(batch, NULL, NULL);
    cl->batch = NULL;
    /* The input offsets committed to the group in the transaction: if the
     * group has moved on since the begin (this member's partitions were
     * given to another), the coordinator refuses them and the transaction
     * is aborted: a member that lost its partitions writes nothing more. */
    xs_err_t err = xs_kafka_txn_send_offsets(cl->tp, cl->txn_offs, cl->n_txn_offs, cl->gm,
                                             XS_CL_COMMIT_MS, errstr, errstr_size);
    if (err) {
        char e[512];
        snprintf(e, sizeof(e), "%s", errstr);
        xs_err_set(errstr, errstr_size,
                   "changelog transaction fenced or failed (the group may have given this "
                   "instance's partitions to another): %s",
                   e);
        return err;
    }
    err = xs_kafka_txn_commit(cl->tp, XS_CL_COMMIT_MS, errstr, errstr_size);
    if (err)
        return err;
    for (size_t i = 0; i < cl->n_sent; i++) {
        const sent_offsets_t *s = cl->sent[i];
        char key[400];
        uint8_t v[8];
        size_t kl = position_key(cl, s->partition, key, sizeof(key));
        if (s->offset < 0 || !kl)
            continue; /* cannot happen after a successful commit; then a later read */
        put_be64(v, (uint64_t)(s->offset + 1));
        if ((err = xs_store_batch_put(batch, XS_CF_META, key, kl, v, sizeof(v)))) {
            xs_err_set(errstr, errstr_size, "changelog position: %s", xs_err_str(err));
            return err;
        }
    }
    if (cl->o.metrics)
        xs_worker_metrics_changelog(cl->o.metrics, cl->records_sent + cl->n_sent);
    return XS_OK;
}

void xs_changelog_abort(xs_changelog_t *cl)
{
    char errstr[512];
    if (cl->batch) {
        xs_store_batch_tap(cl->batch, NULL, NULL);
        cl->batch = NULL;
    }
    if (xs_kafka_txn_open(cl->tp) && xs_kafka_txn_abort(cl->tp, 10000, errstr, sizeof(errstr)))
        XS_WARN("changelog transaction abort failed", "error=\"%s\"", errstr);
}

/* ---- restoring ------------------------------------------------------------------------ */

typedef struct restore_ctx {
    xs_changelog_t *cl;
    int32_t partition;
    xs_store_batch_t *batch;
    uint64_t users, deletes, offsets_records, foreign;
    xs_offset_t offsets[XS_CHANGELOG_MAX_TOPICS];
    char topics[XS_CHANGELOG_MAX_TOPICS][256];
    size_t n_offsets;
    int64_t position; /* after the last offsets record */
    /* users records since the last offsets record: klen u8, vlen u32 (UINT32_MAX:
     * a tombstone), key, value; applied when the next offsets record comes */
    xs_buf_t pending;
    uint64_t n_pending;
    xs_err_t err;
    char errstr[512];
    uint64_t reported_records, reported_bytes;
} restore_ctx_t;

/* The users records before an offsets record belong to its checkpoint (an
 * offsets record is the last record of its partition in a transaction):
 * into the batch, in log order. */
static xs_err_t apply_pending(restore_ctx_t *rc)
{
    const uint8_t *p = rc->pending.data, *end = p + rc->pending.len;
    while (p < end) {
        size_t kl = p[0];
        uint32_t vl = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        const uint8_t *key = p + 5, *val = vl == UINT32_MAX ? NULL : key + kl;
        xs_err_t err = xs_store_batch_put(rc->batch, XS_CF_USERS, key, kl, val, val ? vl : 0);
        if (err)
            return err;
        if (val)
            rc->users++;
        else
            rc->deletes++;
        p = key + kl + (val ? vl : 0);
    }
    xs_buf_reset(&rc->pending);
    rc->n_pending = 0;
    return XS_OK;
}

static int restore_record(void *opaque, const xs_msg_t *m)
{
    restore_ctx_t *rc = opaque;
    const uint8_t *k = m->key;
    if (m->key_len == XS_USER_KEY_LEN && (int32_t)(k[0] << 8 | k[1]) == rc->partition) {
        uint8_t h[5] = {(uint8_t)m->key_len};
        uint32_t vl = m->value ? (uint32_t)m->value_len : UINT32_MAX;
        for (int i = 0; i < 4; i++)
            h[1 + i] = (uint8_t)(vl >> (24 - 8 * i));
        if (xs_buf_append(&rc->pending, h, sizeof(h)) ||
            xs_buf_append(&rc->pending, m->key, m->key_len) ||
            (m->value && xs_buf_append(&rc->pending, m->value, m->value_len))) {
            rc->err = XS_ERR_NOMEM;
            return 1;
        }
        rc->n_pending++;
        return 0;
    }
    if (m->key_len == strlen(XS_CHANGELOG_OFFSETS_KEY) &&
        memcmp(m->key, XS_CHANGELOG_OFFSETS_KEY, m->key_len) == 0 && m->value) {
        rc->err = xs_changelog_offsets_decode(m->value, m->value_len, rc->offsets, &rc->n_offsets,
                                              rc->topics, rc->errstr, sizeof(rc->errstr));
        rc->offsets_records++;
        rc->position = m->offset + 1;
        if (!rc->err)
            rc->err = apply_pending(rc);
        return rc->err != XS_OK;
    }
    /* a record of another partition's key, or no changelog record at all */
    if (rc->foreign++ == 0)
        XS_WARN("changelog: foreign record skipped",
                "topic=%s partition=%d offset=%" PRId64 " key_len=%zu", m->topic, (int)m->partition,
                m->offset, m->key_len);
    return 0;
}

static void restore_progress(void *opaque, uint64_t records, uint64_t bytes, int64_t end)
{
    restore_ctx_t *rc = opaque;
    xs_changelog_t *cl = rc->cl;
    XS_INFO("restoring", "topic=%s partition=%d records=%" PRIu64 " bytes=%" PRIu64 " end=%" PRId64,
            cl->topic, (int)rc->partition, records, bytes, end);
    if (cl->o.metrics)
        xs_worker_metrics_restore(cl->o.metrics, atomic_load(&cl->restoring),
                                  records - rc->reported_records, bytes - rc->reported_bytes,
                                  false);
    rc->reported_records = records;
    rc->reported_bytes = bytes;
    if (cl->o.progress)
        cl->o.progress(cl->o.progress_opaque);
}

/* Puts the deletes of partition's local users into batch. */
typedef struct delete_ctx {
    xs_store_batch_t *batch;
    int32_t partition;
    uint64_t n;
    xs_err_t err;
} delete_ctx_t;

static int delete_user(void *opaque, const void *key, size_t key_len, const void *val,
                       size_t val_len)
{
    delete_ctx_t *dc = opaque;
    const uint8_t *k = key;
    (void)val;
    (void)val_len;
    if (key_len < 2)
        return 0;
    int32_t p = (int32_t)(k[0] << 8 | k[1]);
    if (p < dc->partition)
        return 0;
    if (p > dc->partition)
        return 1; /* key order: past the partition */
    dc->n++;
    dc->err = xs_store_batch_put(dc->batch, XS_CF_USERS, key, key_len, NULL, 0);
    return dc->err != XS_OK;
}

/*
 * Waits (at most XS_CHANGELOG_SETTLE_MS) until the partition's last stable
 * offset reaches its end. A rebalance assigns a partition right after its
 * previous owner committed its checkpoint on revocation, and the broker
 * writes a transaction's markers after the commit returns: a read_committed
 * read started in between stops before that checkpoint and restores the one
 * before it (a correct state, but the input after it is processed twice).
 * A transaction that stays open (its writer died) is left to the read.
 */
static void settle_end(xs_changelog_t *cl, int32_t partition)
{
    char e[256];
    int64_t end =
        xs_kafka_txn_end_offset(cl->o.bootstrap, cl->o.kafka_conf, cl->o.n_kafka_conf, cl->topic,
                                partition, false, cl->restore_timeout_ms, e, sizeof(e));
    struct timespec t0, now, pause = {0, 50 * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int64_t stable = xs_kafka_txn_end_offset(cl->o.bootstrap, cl->o.kafka_conf,
                                                 cl->o.n_kafka_conf, cl->topic, partition, true,
                                                 cl->restore_timeout_ms, e, sizeof(e));
        clock_gettime(CLOCK_MONOTONIC, &now);
        double ms = (now.tv_sec - t0.tv_sec) * 1e3 + (now.tv_nsec - t0.tv_nsec) / 1e6;
        if (end < 0 || stable < 0 || stable >= end || ms >= XS_CHANGELOG_SETTLE_MS) {
            if (stable >= 0 && stable < end)
                XS_INFO("changelog transaction open",
                        "topic=%s partition=%d stable=%" PRId64 " end=%" PRId64 " waited_ms=%.0f",
                        cl->topic, (int)partition, stable, end, ms);
            return;
        }
        nanosleep(&pause, NULL);
    }
}

xs_err_t xs_changelog_restore(xs_changelog_t *cl, int32_t partition, bool *restored, char *errstr,
                              size_t errstr_size)
{
    xs_err_t err = XS_OK;
    int64_t local[XS_CHANGELOG_MAX_TOPICS];
    bool have_local = false;
    int64_t position = -1;
    restore_ctx_t *rc = NULL;
    *restored = false;
    for (size_t i = 0; i < cl->n_topics; i++) {
        bool found = false;
        if ((err = xs_store_get_offset(cl->o.store, cl->topics[i], partition, &local[i], &found,
                                       errstr, errstr_size)))
            return err;
        if (!found)
            local[i] = -1;
        have_local |= found;
    }
    {
        char key[400];
        xs_buf_t val = {0};
        bool found = false;
        size_t kl = position_key(cl, partition, key, sizeof(key));
        err = xs_store_get(cl->o.store, XS_CF_META, key, kl, &val, &found, errstr, errstr_size);
        if (!err && found && val.len == 8)
            position = (int64_t)get_be64(val.data);
        xs_buf_free(&val);
        if (err)
            return err;
    }
    settle_end(cl, partition);
    if (have_local && position >= 0) {
        char e[512] = "";
        int64_t end = xs_kafka_txn_end_offset(cl->o.bootstrap, cl->o.kafka_conf, cl->o.n_kafka_conf,
                                              cl->topic, partition, true, cl->restore_timeout_ms, e,
                                              sizeof(e));
        /* our offsets record, then the commit marker: nothing after ours */
        if (end >= 0 && end <= position + 1) {
            XS_INFO("partition state current", "topic=%s partition=%d changelog_end=%" PRId64,
                    cl->topic, (int)partition, end);
            return XS_OK;
        }
        if (end < 0)
            XS_WARN("changelog end unknown: reading it", "topic=%s partition=%d error=\"%s\"",
                    cl->topic, (int)partition, e);
    }

    if (!(rc = calloc(1, sizeof(*rc))) || !(rc->batch = xs_store_batch_new(cl->o.store))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        err = XS_ERR_NOMEM;
        goto out;
    }
    rc->cl = cl;
    rc->partition = partition;
    rc->position = -1;
    atomic_fetch_add(&cl->restoring, 1);
    if (cl->o.metrics)
        xs_worker_metrics_restore(cl->o.metrics, atomic_load(&cl->restoring), 0, 0, false);
    XS_INFO("restore started", "topic=%s partition=%d local_state=%s local_position=%" PRId64,
            cl->topic, (int)partition, have_local ? "stale-or-unknown" : "none", position);
    uint64_t deleted = 0;
    if (have_local) { /* the changelog replaces the partition's users */
        delete_ctx_t dc = {rc->batch, partition, 0, XS_OK};
        if ((err =
                 xs_store_iterate(cl->o.store, XS_CF_USERS, delete_user, &dc, errstr, errstr_size)))
            goto done;
        if ((err = dc.err)) {
            xs_err_set(errstr, errstr_size, "restore: %s", xs_err_str(err));
            goto done;
        }
        deleted = dc.n;
    }
    double t0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
    }
    xs_kafka_txn_read_t r = {
        .bootstrap = cl->o.bootstrap,
        .conf = cl->o.kafka_conf,
        .n_conf = cl->o.n_kafka_conf,
        .topic = cl->topic,
        .partition = partition,
        .read_committed = true,
        .timeout_ms = cl->restore_timeout_ms,
        .fn = restore_record,
        .progress = restore_progress,
        .opaque = rc,
    };
    uint64_t records = 0, bytes = 0;
    int64_t end = 0;
    err = xs_kafka_txn_read_partition(&r, &records, &bytes, &end, errstr, errstr_size);
    if (err == XS_ERR_INVALID && rc->err) { /* stopped by a bad record */
        err = rc->err;
        xs_err_set(errstr, errstr_size, "restore of %s [%d]: %s", cl->topic, (int)partition,
                   rc->errstr[0] ? rc->errstr : xs_err_str(err));
    }
    if (cl->o.metrics)
        xs_worker_metrics_restore(cl->o.metrics, atomic_load(&cl->restoring),
                                  records - rc->reported_records, bytes - rc->reported_bytes,
                                  false);
    if (err)
        goto done;
    if (rc->n_pending)
        /* Committed transactions end with their offsets records: these are
         * of a transaction not committed, which only a broker that does not
         * isolate transactions shows (the development broker). */
        XS_WARN("changelog records after the last offsets record dropped",
                "topic=%s partition=%d records=%" PRIu64
                " reason=\"a checkpoint that did not commit (a broker without transaction "
                "isolation)\"",
                cl->topic, (int)partition, rc->n_pending);

    /* The changelog's offsets against the local ones (C2, C4). */
    int64_t remote[XS_CHANGELOG_MAX_TOPICS];
    bool ahead = false, behind = false;
    for (size_t i = 0; i < cl->n_topics; i++) {
        remote[i] = -1;
        for (size_t k = 0; k < rc->n_offsets; k++)
            if (strcmp(rc->offsets[k].topic, cl->topics[i]) == 0)
                remote[i] = rc->offsets[k].offset;
        ahead |= remote[i] > local[i];
        behind |= remote[i] < local[i];
    }
    if (!rc->offsets_records || !ahead || behind) {
        if (behind)
            XS_WARN("changelog behind the local state: local state kept",
                    "topic=%s partition=%d records=%" PRIu64
                    " action=\"the changelog holds only the users changed since it was "
                    "turned on (or its topic was recreated)\"",
                    cl->topic, (int)partition, records);
        else
            XS_INFO("nothing to restore", "topic=%s partition=%d records=%" PRIu64, cl->topic,
                    (int)partition, records);
        goto done;
    }
    for (size_t i = 0; i < cl->n_topics; i++)
        if (remote[i] >= 0)
            xs_store_batch_put_offset(rc->batch, cl->topics[i], partition, remote[i]);
    {
        char key[400];
        uint8_t v[8];
        size_t kl = position_key(cl, partition, key, sizeof(key));
        put_be64(v, (uint64_t)rc->position);
        if (kl && (err = xs_store_batch_put(rc->batch, XS_CF_META, key, kl, v, sizeof(v))))
            goto done;
    }
    if ((err = xs_store_write(cl->o.store, rc->batch, cl->sync, errstr, errstr_size)))
        goto done;
    *restored = true;
    double ms;
    {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ms = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 - t0;
    }
    char offs[600] = "";
    for (size_t i = 0, o = 0; i < cl->n_topics && o < sizeof(offs); i++) {
        int n = snprintf(offs + o, sizeof(offs) - o, "%s%s=%" PRId64, i ? "," : "", cl->topics[i],
                         remote[i]);
        o += n > 0 ? (size_t)n : 0;
    }
    XS_INFO("partition restored",
            "topic=%s partition=%d records=%" PRIu64 " bytes=%" PRIu64 " users=%" PRIu64
            " deleted=%" PRIu64 " local_users_replaced=%" PRIu64 " offsets_records=%" PRIu64
            " changelog_end=%" PRId64 " offsets=\"%s\" ms=%.0f",
            cl->topic, (int)partition, records, bytes, rc->users, rc->deletes, deleted,
            rc->offsets_records, end, offs, ms);
done:
    atomic_fetch_sub(&cl->restoring, 1);
    if (cl->o.metrics)
        xs_worker_metrics_restore(cl->o.metrics, atomic_load(&cl->restoring), 0, 0, *restored);
    if (err)
        XS_ERROR("restore failed", "topic=%s partition=%d error=\"%s\"", cl->topic, (int)partition,
                 errstr);
out:
    if (rc) {
        xs_store_batch_destroy(rc->batch);
        xs_buf_free(&rc->pending);
    }
    free(rc);
    return err;
}

int xs_changelog_restoring(const xs_changelog_t *cl)
{
    return cl ? atomic_load(&cl->restoring) : 0;
}

/* ---- setup ---------------------------------------------------------------------------- */

/* Creates the topic when missing; checks its partition count. */
static xs_err_t ensure_topic(xs_changelog_t *cl, char *errstr, size_t errstr_size)
{
    const xs_changelog_opts_t *o = &cl->o;
    char why[512] = "";
    int timeout = XS_MIN(cl->restore_timeout_ms, 15000);
    int input = xs_kafka_partition_count(o->bootstrap, o->kafka_conf, o->n_kafka_conf,
                                         cl->topics[0], 10000, why, sizeof(why));
    if (input <= 0) {
        xs_err_set(errstr, errstr_size,
                   "changelog: the partition count of input topic %s is unknown (%s): the "
                   "changelog topic is sized after it, so the input topics must exist",
                   cl->topics[0], why[0] ? why : "no such topic");
        return XS_ERR_CONFIG;
    }
    int have = xs_kafka_partition_count(o->bootstrap, o->kafka_conf, o->n_kafka_conf, cl->topic,
                                        10000, why, sizeof(why));
    if (have <= 0) {
        static const xs_kv_t compact[] = {{"cleanup.policy", "compact"}};
        xs_topic_spec_t spec = {cl->topic, input, 0, compact, 1};
        char why2[512] = "";
        xs_err_t err = xs_kafka_create_topics(o->bootstrap, o->kafka_conf, o->n_kafka_conf, &spec,
                                              1, timeout, why2, sizeof(why2));
        if (err) {
            xs_err_set(errstr, errstr_size,
                       "changelog topic %s does not exist and could not be created (%s): "
                       "create it with cleanup.policy=compact and %d partitions (on the "
                       "development broker: xsell devbroker --topics ...,%s)",
                       cl->topic, why2, input, cl->topic);
            return err;
        }
        have = xs_kafka_partition_count(o->bootstrap, o->kafka_conf, o->n_kafka_conf, cl->topic,
                                        10000, why, sizeof(why));
        XS_INFO("changelog topic created", "topic=%s partitions=%d cleanup_policy=compact",
                cl->topic, have);
    }
    if (have < input) {
        xs_err_set(errstr, errstr_size,
                   "changelog topic %s has %d partitions, fewer than input topic %s (%d): "
                   "input partition p is kept in changelog partition p",
                   cl->topic, have, cl->topics[0], input);
        return XS_ERR_CONFIG;
    }
    xs_topic_info_t info;
    if (xs_kafka_describe_topic(o->bootstrap, o->kafka_conf, o->n_kafka_conf, cl->topic, 10000,
                                &info, why, sizeof(why)) == XS_OK) {
        if (!strstr(info.cleanup_policy, "compact"))
            XS_WARN("changelog topic not compacted",
                    "topic=%s cleanup_policy=%s action=\"set cleanup.policy=compact, or the "
                    "changelog grows without bound (and retention would lose state)\"",
                    cl->topic, info.cleanup_policy);
    } else {
        XS_DEBUG("changelog topic not described", "topic=%s error=\"%s\"", cl->topic, why);
    }
    return XS_OK;
}

xs_changelog_t *xs_changelog_new(const xs_changelog_opts_t *opts, char *errstr, size_t errstr_size)
{
    const xs_config_t *cfg = opts->config;
    xs_changelog_t *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    cl->o = *opts;
    cl->restore_timeout_ms = (int)xs_config_int(cfg, "changelog.restore.timeout.ms");
    cl->sync = xs_config_bool(cfg, "state.sync");
    xs_changelog_topic_name(cfg, cl->topic, sizeof(cl->topic));
    if (opts->n_topics == 0 || opts->n_topics > XS_CHANGELOG_MAX_TOPICS) {
        xs_err_set(errstr, errstr_size, "changelog: %zu input topics", opts->n_topics);
        goto fail;
    }
    for (size_t i = 0; i < opts->n_topics; i++)
        if (!(cl->topics[cl->n_topics++] = xs_str_dup(opts->topics[i]))) {
            xs_err_set(errstr, errstr_size, "out of memory");
            goto fail;
        }
    const char *tid = xs_config_str(cfg, "changelog.transactional.id");
    if (tid && *tid) {
        snprintf(cl->txn_id, sizeof(cl->txn_id), "%s", tid);
    } else {
        char host[256] = "", path[PATH_MAX];
        const char *dir = xs_config_str(cfg, "state.dir");
        if (gethostname(host, sizeof(host) - 1) != 0)
            snprintf(host, sizeof(host), "host");
        if (!realpath(dir, path))
            snprintf(path, sizeof(path), "%s", dir);
        snprintf(cl->txn_id, sizeof(cl->txn_id), "%s-%s-%08x", cl->topic, host,
                 (unsigned)(xs_hash_str(path) & 0xffffffffu));
    }
    if (ensure_topic(cl, errstr, errstr_size))
        goto fail;
    if (!(cl->tp = xs_kafka_txn_new(opts->bootstrap, opts->kafka_conf, opts->n_kafka_conf,
                                    cl->txn_id, cl->restore_timeout_ms, errstr, errstr_size)))
        goto fail;
    XS_INFO("changelog on", "topic=%s transactional_id=%s", cl->topic, cl->txn_id);
    return cl;
fail:
    xs_changelog_destroy(cl);
    return NULL;
}

void xs_changelog_set_group(xs_changelog_t *cl, xs_consumer_t *consumer)
{
    cl->consumer = consumer;
}

void xs_changelog_destroy(xs_changelog_t *cl)
{
    if (!cl)
        return;
    xs_kafka_txn_destroy(cl->tp);
    xs_consumer_group_meta_free(cl->gm);
    free(cl->txn_offs);
    for (size_t i = 0; i < cl->n_topics; i++)
        free(cl->topics[i]);
    for (size_t i = 0; i < cl->cap_sent; i++)
        free(cl->sent[i]);
    free(cl->sent);
    free(cl);
}
