/*
 * consumer.c — the consumer (include/xsell/kafka.h).
 *
 * Consumer. Both modes keep a table of assigned partitions:
 *
 *     topic, partition | start | lo, hi (at assignment) | position | caught
 *
 * `hi` is the high watermark queried when the partition was assigned;
 * `position` is the next offset to consume (offset + 1 of the last message
 * returned, or the partition-EOF offset). A partition is `caught` once
 * position >= hi, once a partition-EOF event arrives (position reached the
 * then-current end, which is >= hi), or right away when nothing was there
 * to read (hi == lo, hi == 0, start END, or an absolute start >= hi). The
 * flag latches: new messages arriving later do not un-catch a partition.
 * xs_consumer_caught_up() is false until the first assignment has arrived
 * (and again between an eager revoke and the next assignment).
 *
 * Group mode subscribes with a rebalance callback. For the eager protocol
 * (librdkafka 2.0.2's default range,roundrobin) an assignment replaces the
 * table and is applied with rd_kafka_assign(); with cooperative-sticky it is
 * incremental (rd_kafka_incremental_assign/unassign): only the partitions
 * that move are revoked and assigned. After every assignment the table is
 * checked against opts->n_copartitioned (partition p of each co-partitioned
 * topic here, or of none); a split is kept in `split` and returned by every
 * later poll. opts->group_instance_id makes the member static (KIP-345):
 * rd_kafka_consumer_close() still revokes locally (on_revoke runs) but sends
 * no LeaveGroup, so the group does not rebalance. hooks.on_assign picks
 * each new partition's start offset (preset to XS_OFFSET_STORED), and
 * hooks.on_revoke runs before the partition is unassigned. Group-less mode
 * reads metadata, assigns every partition of the topics at
 * opts->start_offset, and also offers each partition to hooks.on_assign
 * (preset to opts->start_offset) so a caller keeping offsets elsewhere can
 * seek; on_revoke runs for each partition at destroy.
 */
#include "xsell/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kafka_client.h"
#include "xsell/log.h"

#define XS_WATERMARK_TIMEOUT_MS 5000
#define XS_METADATA_TIMEOUT_MS 10000

typedef struct xs_part {
    char *topic;
    int32_t partition;
    int64_t start;    /* librdkafka offset the partition was assigned at */
    int64_t lo, hi;   /* watermarks at assignment; hi < 0 unknown */
    int64_t position; /* next offset to consume; < 0 unknown */
    bool caught;
} xs_part_t;

struct xs_consumer {
    rd_kafka_t *rk;
    bool group;
    xs_consumer_hooks_t hooks;
    rd_kafka_message_t *last; /* returned by the last poll; released at the next */

    xs_part_t *parts;
    size_t n_parts, cap_parts;
    size_t hint; /* index of the last looked-up partition */
    bool have_assignment;

    uint64_t eof_events;
    uint64_t transient_errors;

    char **copart; /* the co-partitioned topics (opts->n_copartitioned) */
    size_t n_copart;
    char split[384]; /* non-empty: an assignment split them (poll fails) */

    /* Broker connectivity (see xs_consumer_brokers_down()); set from the
     * error callback, which runs inside rd_kafka_consumer_poll(). */
    bool brokers_down;
    int64_t down_since, next_probe;
};

static int64_t to_rd_offset(int64_t off)
{
    switch (off) {
    case XS_OFFSET_BEGINNING:
        return RD_KAFKA_OFFSET_BEGINNING;
    case XS_OFFSET_END:
        return RD_KAFKA_OFFSET_END;
    case XS_OFFSET_STORED:
        return RD_KAFKA_OFFSET_STORED;
    default:
        return off < 0 ? RD_KAFKA_OFFSET_STORED : off;
    }
}

static xs_part_t *part_find(xs_consumer_t *c, const char *topic, int32_t partition)
{
    if (c->hint < c->n_parts && c->parts[c->hint].partition == partition &&
        strcmp(c->parts[c->hint].topic, topic) == 0)
        return &c->parts[c->hint];
    for (size_t i = 0; i < c->n_parts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0) {
            c->hint = i;
            return &c->parts[i];
        }
    return NULL;
}

static void part_remove(xs_consumer_t *c, const char *topic, int32_t partition)
{
    xs_part_t *pt = part_find(c, topic, partition);
    if (!pt)
        return;
    free(pt->topic);
    *pt = c->parts[--c->n_parts];
    c->hint = 0;
}

static void parts_clear(xs_consumer_t *c)
{
    for (size_t i = 0; i < c->n_parts; i++)
        free(c->parts[i].topic);
    c->n_parts = 0;
    c->hint = 0;
}

static void part_update_caught(xs_part_t *pt)
{
    if (!pt->caught && pt->hi >= 0 && pt->position >= pt->hi)
        pt->caught = true;
}

/*
 * Reads the low and high watermarks of every partition of `list` into lo[i]
 * and hi[i] (-1 where unknown): two ListOffsets rounds (earliest, latest)
 * for the whole list, one request per leader broker each, sharing one time
 * budget, instead of two round trips per partition. This runs in the
 * rebalance callback, on the thread that processes events, so its time is
 * bounded whatever the number of partitions or the state of the brokers.
 */
static void query_watermarks(xs_consumer_t *c, const rd_kafka_topic_partition_list_t *list,
                             int64_t *lo, int64_t *hi)
{
    for (int i = 0; i < list->cnt; i++)
        lo[i] = hi[i] = -1;
    if (list->cnt == 0)
        return;
    int64_t deadline = xs_kafka_mono_ms() + XS_WATERMARK_TIMEOUT_MS;
    const char *why = NULL;
    for (int round = 0; round < 2; round++) {
        int64_t *out = round == 0 ? lo : hi;
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(list->cnt);
        for (int i = 0; i < list->cnt; i++)
            rd_kafka_topic_partition_list_add(q, list->elems[i].topic, list->elems[i].partition)
                ->offset = round == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        int64_t left = deadline - xs_kafka_mono_ms();
        rd_kafka_resp_err_t rderr = RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (left > 0)
            rderr = rd_kafka_offsets_for_times(c->rk, q, (int)left);
        /* q holds the partitions of list, in its order */
        for (int i = 0; i < list->cnt; i++) {
            const rd_kafka_topic_partition_t *r = &q->elems[i];
            if (!r->err && r->offset >= 0) /* a partition answered before a timeout counts */
                out[i] = r->offset;
            else if (!why)
                why = rd_kafka_err2str(rderr ? rderr : r->err);
        }
        rd_kafka_topic_partition_list_destroy(q);
    }
    int failed = 0;
    for (int i = 0; i < list->cnt; i++)
        failed += lo[i] < 0 || hi[i] < 0;
    if (failed)
        /* Not fatal: a partition-EOF event will still mark them caught up. */
        XS_WARN("could not read partition watermarks", "partitions=%d of=%d error=\"%s\"", failed,
                list->cnt, why ? why : "unknown");
}

/*
 * Adds a partition about to be assigned at `start` (librdkafka offset), with
 * its watermarks (-1: unknown), and derives what is known of position/caught.
 */
static xs_err_t part_add(xs_consumer_t *c, const char *topic, int32_t partition, int64_t start,
                         int64_t lo, int64_t hi)
{
    xs_part_t *pt = NULL;

    if (part_find(c, topic, partition))
        part_remove(c, topic, partition);
    if (c->n_parts == c->cap_parts) {
        size_t cap = c->cap_parts ? c->cap_parts * 2 : 16;
        xs_part_t *grown = realloc(c->parts, cap * sizeof(*grown));
        if (!grown)
            return XS_ERR_NOMEM;
        c->parts = grown;
        c->cap_parts = cap;
    }
    pt = &c->parts[c->n_parts];
    memset(pt, 0, sizeof(*pt));
    pt->topic = xs_str_dup(topic);
    if (!pt->topic)
        return XS_ERR_NOMEM;
    c->n_parts++;
    pt->partition = partition;
    pt->start = start;
    pt->position = -1;
    pt->lo = lo;
    pt->hi = hi;
    if (start >= 0)
        pt->position = start;
    else if (start == RD_KAFKA_OFFSET_BEGINNING && lo >= 0)
        pt->position = lo;
    else if (start == RD_KAFKA_OFFSET_END && hi >= 0)
        pt->position = hi;
    if (hi == 0 || (hi >= 0 && hi == lo) || start == RD_KAFKA_OFFSET_END)
        pt->caught = true;
    part_update_caught(pt);
    XS_DEBUG("partition assigned", "topic=%s partition=%d start=%lld lo=%lld hi=%lld", topic,
             (int)partition, (long long)start, (long long)lo, (long long)hi);
    return XS_OK;
}

/* Asks on_assign for each partition's start and records the partitions. */
static void assign_prepare(xs_consumer_t *c, rd_kafka_topic_partition_list_t *list, int64_t preset)
{
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t off = preset;
        if (c->hooks.on_assign)
            c->hooks.on_assign(c->hooks.opaque, tp->topic, tp->partition, &off);
        tp->offset = to_rd_offset(off);
    }
    size_t n = list->cnt > 0 ? (size_t)list->cnt : 0;
    int64_t *wm = n ? malloc(2 * n * sizeof(*wm)) : NULL;
    if (wm)
        query_watermarks(c, list, wm, wm + n);
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (part_add(c, tp->topic, tp->partition, tp->offset, wm ? wm[i] : -1,
                     wm ? wm[n + (size_t)i] : -1) != XS_OK)
            XS_ERROR("out of memory tracking partition", "topic=%s partition=%d", tp->topic,
                     (int)tp->partition);
    }
    free(wm);
}

/* After an assignment: partition p of one co-partitioned topic is here only
 * with partition p of each of the others (the first split found is kept). */
static void check_copartitioned(xs_consumer_t *c, const char *strategy)
{
    for (size_t i = 0; !c->split[0] && i < c->n_parts; i++) {
        const xs_part_t *pt = &c->parts[i];
        bool co = false;
        for (size_t t = 0; t < c->n_copart && !co; t++)
            co = !strcmp(pt->topic, c->copart[t]);
        for (size_t t = 0; co && t < c->n_copart; t++) {
            if (part_find(c, c->copart[t], pt->partition))
                continue;
            snprintf(c->split, sizeof(c->split),
                     "kafka: the group's assignment (%s protocol) gave this "
                     "instance %s [%d] without %s [%d]: co-partitioned topics must move "
                     "together (partition.assignment.strategy=range keeps them together)",
                     strategy, pt->topic, (int)pt->partition, c->copart[t], (int)pt->partition);
            XS_ERROR("co-partitioned topics split by the assignment", "error=\"%s\"", c->split);
            break;
        }
    }
}

static void revoke_notify(xs_consumer_t *c, const rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; list && i < list->cnt; i++)
        if (c->hooks.on_revoke)
            c->hooks.on_revoke(c->hooks.opaque, list->elems[i].topic, list->elems[i].partition);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    xs_consumer_t *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rderr = RD_KAFKA_RESP_ERR_NO_ERROR;
    int lost = 0;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if (!cooperative)
            parts_clear(c);
        assign_prepare(c, partitions, XS_OFFSET_STORED);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, partitions);
        else
            rderr = rd_kafka_assign(rk, partitions);
        c->have_assignment = true;
        XS_INFO("partitions assigned", "count=%d total=%zu protocol=%s", partitions->cnt,
                c->n_parts, cooperative ? "cooperative" : "eager");
        check_copartitioned(c, rd_kafka_rebalance_protocol(rk));
        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        lost = rd_kafka_assignment_lost(rk); /* before the unassign clears it */
        revoke_notify(c, partitions);
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, partitions);
            for (int i = 0; i < partitions->cnt; i++)
                part_remove(c, partitions->elems[i].topic, partitions->elems[i].partition);
        } else {
            rderr = rd_kafka_assign(rk, NULL);
            parts_clear(c);
            c->have_assignment = false;
        }
        XS_INFO("partitions revoked", "count=%d total=%zu lost=%d protocol=%s", partitions->cnt,
                c->n_parts, lost, cooperative ? "cooperative" : "eager");
        break;

    default:
        XS_WARN("rebalance failed", "error=\"%s\"", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        parts_clear(c);
        c->have_assignment = false;
        break;
    }
    if (error) {
        XS_ERROR("applying the assignment failed", "error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rderr) {
        XS_ERROR("applying the assignment failed", "error=\"%s\"", rd_kafka_err2str(rderr));
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err)
        XS_WARN("offset commit failed", "error=\"%s\"", rd_kafka_err2str(err));
    for (int i = 0; offsets && i < offsets->cnt; i++)
        if (offsets->elems[i].err)
            XS_WARN("offset commit failed", "topic=%s partition=%d offset=%lld error=\"%s\"",
                    offsets->elems[i].topic, (int)offsets->elems[i].partition,
                    (long long)offsets->elems[i].offset, rd_kafka_err2str(offsets->elems[i].err));
}

/* Group-less: assign every partition of every topic. */
static xs_err_t assign_all(xs_consumer_t *c, const xs_consumer_opts_t *opts, char *errstr,
                           size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t rderr;
    xs_err_t ret = XS_OK;

    list = rd_kafka_topic_partition_list_new((int)XS_MAX(opts->n_topics, 1));
    for (size_t t = 0; t < opts->n_topics; t++) {
        int64_t deadline = xs_kafka_mono_ms() + XS_METADATA_TIMEOUT_MS;
        int count;
        for (;;) {
            count = xs_kafka_metadata_partition_count(c->rk, opts->topics[t],
                                                      XS_METADATA_TIMEOUT_MS, errstr, errstr_size);
            if (count >= 0 || xs_kafka_mono_ms() >= deadline)
                break;
            /* Transient metadata error (leader not available...): retry. */
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (count == 0) {
            xs_err_set(errstr, errstr_size, "kafka: consumer: topic %s does not exist",
                       opts->topics[t]);
            ret = XS_ERR_KAFKA;
            goto out;
        }
        if (count < 0) {
            ret = XS_ERR_KAFKA;
            goto out;
        }
        for (int i = 0; i < count; i++)
            rd_kafka_topic_partition_list_add(list, opts->topics[t], i);
    }
    assign_prepare(c, list, opts->start_offset);
    rderr = rd_kafka_assign(c->rk, list);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: assign: %s", rd_kafka_err2str(rderr));
        ret = XS_ERR_KAFKA;
        goto out;
    }
    c->have_assignment = true;

out:
    rd_kafka_topic_partition_list_destroy(list);
    return ret;
}

static void consumer_brokers_down(xs_consumer_t *c, const char *reason);

/* Error callback: every broker down is an outage, warned about once until
 * one answers again (xs_consumer_brokers_down()); the rest as for every
 * handle (xs_kafka_error_cb). Fatal errors also come out of
 * rd_kafka_consumer_poll. */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && opaque) {
        consumer_brokers_down(opaque, reason);
        return;
    }
    xs_kafka_error_cb(rk, err, reason, opaque);
}

xs_consumer_t *xs_consumer_new(const xs_consumer_opts_t *opts, char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {"enable.auto.commit",
                                           "false",
                                           "enable.auto.offset.store",
                                           "false",
                                           "auto.offset.reset",
                                           "earliest",
                                           "enable.partition.eof",
                                           "true",
                                           "session.timeout.ms",
                                           "6000",
                                           NULL};
    xs_consumer_t *c = NULL;
    rd_kafka_conf_t *rkconf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t rderr;
    char groupless_id[64];

    if (!opts || !opts->bootstrap || !*opts->bootstrap || opts->n_topics == 0 || !opts->topics) {
        xs_err_set(errstr, errstr_size, "kafka: consumer: bootstrap and topics are required");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        xs_err_set(errstr, errstr_size, "kafka: consumer: out of memory");
        return NULL;
    }
    c->group = opts->group_id != NULL;
    c->hooks = opts->hooks;
    if (c->group && opts->n_copartitioned > 1) {
        size_t n = XS_MIN(opts->n_copartitioned, opts->n_topics);
        if (!(c->copart = calloc(n, sizeof(*c->copart)))) {
            xs_err_set(errstr, errstr_size, "kafka: consumer: out of memory");
            goto fail;
        }
        for (c->n_copart = 0; c->n_copart < n; c->n_copart++)
            if (!(c->copart[c->n_copart] = xs_str_dup(opts->topics[c->n_copart]))) {
                xs_err_set(errstr, errstr_size, "kafka: consumer: out of memory");
                goto fail;
            }
    }

    if (!c->group) {
        /* librdkafka's assign() needs a group.id even though a consumer that
         * neither subscribes nor commits never uses it on the wire. */
        static unsigned groupless_seq;
        snprintf(groupless_id, sizeof(groupless_id), "xsell-groupless-%ld-%u", (long)getpid(),
                 ++groupless_seq);
    }
    rkconf = rd_kafka_conf_new();
    if (xs_kafka_conf_set(rkconf, "bootstrap.servers", opts->bootstrap, errstr, errstr_size) !=
            XS_OK ||
        xs_kafka_conf_set(rkconf, "group.id", c->group ? opts->group_id : groupless_id, errstr,
                          errstr_size) != XS_OK ||
        (c->group && opts->group_instance_id && *opts->group_instance_id &&
         xs_kafka_conf_set(rkconf, "group.instance.id", opts->group_instance_id, errstr,
                           errstr_size) != XS_OK) ||
        xs_kafka_conf_apply(rkconf, defaults, opts->conf, opts->n_conf, errstr, errstr_size) !=
            XS_OK ||
        (opts->offset_reset_error &&
         xs_kafka_conf_set(rkconf, "auto.offset.reset", "error", errstr, errstr_size) != XS_OK))
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, c);
    rd_kafka_conf_set_error_cb(rkconf, consumer_error_cb);
    rd_kafka_conf_set_offset_commit_cb(rkconf, offset_commit_cb);
    if (c->group)
        rd_kafka_conf_set_rebalance_cb(rkconf, rebalance_cb);
    c->rk = xs_kafka_handle_new(RD_KAFKA_CONSUMER, rkconf, errstr, errstr_size);
    rkconf = NULL; /* owned by handle_new */
    if (!c->rk)
        goto fail;
    /* Serve logs, errors and rebalances from rd_kafka_consumer_poll(). */
    rd_kafka_poll_set_consumer(c->rk);

    if (c->group) {
        subs = rd_kafka_topic_partition_list_new((int)opts->n_topics);
        for (size_t i = 0; i < opts->n_topics; i++)
            rd_kafka_topic_partition_list_add(subs, opts->topics[i], RD_KAFKA_PARTITION_UA);
        rderr = rd_kafka_subscribe(c->rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (rderr) {
            xs_err_set(errstr, errstr_size, "kafka: subscribe: %s", rd_kafka_err2str(rderr));
            goto fail;
        }
    } else if (assign_all(c, opts, errstr, errstr_size) != XS_OK) {
        goto fail;
    }
    return c;

fail:
    if (rkconf)
        rd_kafka_conf_destroy(rkconf);
    xs_consumer_destroy(c);
    return NULL;
}

void xs_consumer_destroy(xs_consumer_t *c)
{
    if (!c)
        return;
    if (c->last) {
        rd_kafka_message_destroy(c->last);
        c->last = NULL;
    }
    if (c->rk) {
        rd_kafka_resp_err_t rderr;
        if (!c->group && c->have_assignment) {
            for (size_t i = 0; i < c->n_parts; i++)
                if (c->hooks.on_revoke)
                    c->hooks.on_revoke(c->hooks.opaque, c->parts[i].topic, c->parts[i].partition);
        }
        /* In group mode this leaves the group; rebalance_cb revokes. */
        rderr = rd_kafka_consumer_close(c->rk);
        if (rderr)
            XS_WARN("consumer close failed", "error=\"%s\"", rd_kafka_err2str(rderr));
        rd_kafka_destroy(c->rk);
    }
    parts_clear(c);
    free(c->parts);
    for (size_t i = 0; i < c->n_copart; i++)
        free(c->copart[i]);
    free(c->copart);
    free(c);
}

/* The start of a broker outage (from the error callback). */
static void consumer_brokers_down(xs_consumer_t *c, const char *reason)
{
    if (c->brokers_down)
        return;
    c->brokers_down = true;
    c->down_since = xs_kafka_mono_ms();
    c->next_probe = c->down_since + 1000;
    XS_WARN("kafka brokers unreachable", "client=%s error=\"%s\"", rd_kafka_name(c->rk), reason);
}

/* The end of a broker outage. */
static void brokers_back(xs_consumer_t *c)
{
    c->brokers_down = false;
    XS_INFO("kafka brokers reachable", "client=%s down_s=%.1f", rd_kafka_name(c->rk),
            (xs_kafka_mono_ms() - c->down_since) / 1e3);
}

/* During an outage, asks for metadata every second (200 ms budget): the
 * first answer ends it, even when there is nothing to consume. */
static void probe_brokers(xs_consumer_t *c)
{
    const struct rd_kafka_metadata *md = NULL;
    c->next_probe = xs_kafka_mono_ms() + 1000;
    if (rd_kafka_metadata(c->rk, 0, NULL, &md, 200) == RD_KAFKA_RESP_ERR_NO_ERROR)
        brokers_back(c);
    if (md)
        rd_kafka_metadata_destroy(md);
}

bool xs_consumer_brokers_down(xs_consumer_t *c, int64_t *down_ms)
{
    if (down_ms)
        *down_ms = c->brokers_down ? xs_kafka_mono_ms() - c->down_since : 0;
    return c->brokers_down;
}

xs_err_t xs_consumer_watermarks(xs_consumer_t *c, const char *topic, int32_t partition, int64_t *lo,
                                int64_t *hi, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rderr =
        rd_kafka_query_watermark_offsets(c->rk, topic, partition, lo, hi, timeout_ms);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: watermarks of %s [%d]: %s", topic, (int)partition,
                   rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

/*
 * Assigns the partition again at offset: a partition whose fetcher stopped
 * (auto.offset.reset=error) refuses a seek. Cooperative: unassign and assign
 * it alone; eager: the whole assignment again, every other partition at its
 * position (the offset after the last message returned, or where it started).
 */
static rd_kafka_error_t *reassign_at(xs_consumer_t *c, const char *topic, int32_t partition,
                                     int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_error_t *error = NULL;
    if (c->group && strcmp(rd_kafka_rebalance_protocol(c->rk), "COOPERATIVE") == 0) {
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        if (!(error = rd_kafka_incremental_unassign(c->rk, l)))
            error = rd_kafka_incremental_assign(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        return error;
    }
    rd_kafka_resp_err_t rderr = rd_kafka_assignment(c->rk, &l);
    for (int i = 0; !rderr && i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        const xs_part_t *pt = part_find(c, tp->topic, tp->partition);
        if (tp->partition == partition && strcmp(tp->topic, topic) == 0)
            tp->offset = offset;
        else
            tp->offset = pt && pt->position >= 0 ? pt->position : pt ? pt->start : tp->offset;
    }
    if (!rderr)
        rderr = rd_kafka_assign(c->rk, l);
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return rderr ? rd_kafka_error_new(rderr, "%s", rd_kafka_err2str(rderr)) : NULL;
}

xs_err_t xs_consumer_seek(xs_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                          char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    xs_err_t ret = XS_OK;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, 10000);
    if ((error && rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__STATE) ||
        (!error && l->elems[0].err == RD_KAFKA_RESP_ERR__STATE)) {
        if (error)
            rd_kafka_error_destroy(error);
        l->elems[0].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        error = reassign_at(c, topic, partition, offset);
    }
    if (error) {
        xs_err_set(errstr, errstr_size, "kafka: seek %s [%d] to %lld: %s", topic, (int)partition,
                   (long long)offset, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        ret = XS_ERR_KAFKA;
    } else if (l->elems[0].err) {
        xs_err_set(errstr, errstr_size, "kafka: seek %s [%d] to %lld: %s", topic, (int)partition,
                   (long long)offset, rd_kafka_err2str(l->elems[0].err));
        ret = XS_ERR_KAFKA;
    }
    rd_kafka_topic_partition_list_destroy(l);
    xs_part_t *pt = part_find(c, topic, partition);
    if (!ret && pt) {
        pt->position = offset;
        pt->caught = false;
        part_update_caught(pt);
    }
    return ret;
}

/* Errors that will not go away by retrying. */
static bool consumer_error_is_fatal(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

xs_err_t xs_consumer_poll(xs_consumer_t *c, int timeout_ms, xs_msg_t *msg, char *errstr,
                          size_t errstr_size)
{
    /* A negative timeout waits until a message or a fatal error. */
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : xs_kafka_mono_ms() + timeout_ms;

    if (c->last) {
        rd_kafka_message_destroy(c->last);
        c->last = NULL;
    }
    if (c->split[0]) {
        xs_err_set(errstr, errstr_size, "%s", c->split);
        return XS_ERR_CONFIG;
    }
    for (;;) {
        int64_t left = deadline == INT64_MAX ? 1000 : deadline - xs_kafka_mono_ms();
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, (int)XS_MIN(XS_MAX(left, 0), 1000));
        const char *topic;
        xs_part_t *pt;

        if (!rkm) {
            if (c->brokers_down && xs_kafka_mono_ms() >= c->next_probe)
                probe_brokers(c);
            if (xs_kafka_mono_ms() >= deadline)
                return XS_ERR_EOF;
            continue;
        }
        topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;
        pt = topic ? part_find(c, topic, rkm->partition) : NULL;
        if (c->brokers_down && (!rkm->err || rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF))
            brokers_back(c); /* a fetch answered */

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            c->eof_events++;
            if (pt) {
                pt->position = rkm->offset;
                pt->caught = true;
            }
            XS_DEBUG("partition end reached", "topic=%s partition=%d offset=%lld",
                     topic ? topic : "?", (int)rkm->partition, (long long)rkm->offset);
            rd_kafka_message_destroy(rkm);
        } else if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && topic) {
            /* auto.offset.reset=error: the fetch offset is out of range */
            xs_err_set(errstr, errstr_size, "kafka: %s [%d] offset %lld: %s", topic,
                       (int)rkm->partition, (long long)rkm->offset, rd_kafka_message_errstr(rkm));
            c->last = rkm;
            memset(msg, 0, sizeof(*msg));
            msg->topic = topic;
            msg->partition = rkm->partition;
            msg->offset = rkm->offset;
            msg->timestamp = -1;
            return XS_ERR_INPUT_LOST;
        } else if (rkm->err) {
            if (consumer_error_is_fatal(rkm->err)) {
                char why[512];
                if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
                    rd_kafka_fatal_error(c->rk, why, sizeof(why));
                else
                    snprintf(why, sizeof(why), "%s", rd_kafka_message_errstr(rkm));
                xs_err_set(errstr, errstr_size, "kafka: consume%s%s: %s", topic ? " " : "",
                           topic ? topic : "", why);
                rd_kafka_message_destroy(rkm);
                return XS_ERR_KAFKA;
            }
            c->transient_errors++;
            XS_DEBUG("consumer error (retrying)", "topic=%s partition=%d error=\"%s\"",
                     topic ? topic : "-", (int)rkm->partition, rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
        } else {
            if (pt) {
                pt->position = rkm->offset + 1;
                part_update_caught(pt);
            }
            c->last = rkm;
            msg->topic = topic;
            msg->partition = rkm->partition;
            msg->offset = rkm->offset;
            msg->key = rkm->key;
            msg->key_len = rkm->key_len;
            msg->value = rkm->payload;
            msg->value_len = rkm->len;
            msg->native = rkm;
            {
                rd_kafka_timestamp_type_t tstype;
                int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
                msg->timestamp = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
            }
            return XS_OK;
        }
        if (xs_kafka_mono_ms() >= deadline)
            return XS_ERR_EOF;
    }
}

bool xs_consumer_caught_up(xs_consumer_t *c)
{
    if (!c->have_assignment)
        return false;
    for (size_t i = 0; i < c->n_parts; i++)
        if (!c->parts[i].caught)
            return false;
    return true;
}

bool xs_consumer_assignment_lost(xs_consumer_t *c)
{
    return c && c->group && rd_kafka_assignment_lost(c->rk);
}

xs_consumer_group_meta_t *xs_consumer_group_meta(xs_consumer_t *c)
{
    if (!c || !c->group)
        return NULL;
    return (xs_consumer_group_meta_t *)rd_kafka_consumer_group_metadata(c->rk);
}

void xs_consumer_group_meta_free(xs_consumer_group_meta_t *gm)
{
    if (gm)
        rd_kafka_consumer_group_metadata_destroy((rd_kafka_consumer_group_metadata_t *)gm);
}

int xs_consumer_assigned_count(xs_consumer_t *c)
{
    return (int)c->n_parts;
}

int64_t xs_consumer_lag(xs_consumer_t *c)
{
    int64_t lag = 0;
    if (!c->have_assignment)
        return -1;
    for (size_t i = 0; i < c->n_parts; i++) {
        xs_part_t *pt = &c->parts[i];
        int64_t lo = -1, hi = -1;
        /* Latest high watermark seen in fetch responses (no request). */
        if (rd_kafka_get_watermark_offsets(c->rk, pt->topic, pt->partition, &lo, &hi) || hi < 0)
            hi = pt->hi;
        if (hi < 0 || pt->position < 0)
            return -1;
        if (hi > pt->position)
            lag += hi - pt->position;
    }
    return lag;
}

int64_t xs_consumer_partition_lag(xs_consumer_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        xs_part_t *pt = &c->parts[i];
        if (pt->partition != partition || strcmp(pt->topic, topic) != 0)
            continue;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(c->rk, pt->topic, pt->partition, &lo, &hi) || hi < 0)
            hi = pt->hi;
        if (hi < 0 || pt->position < 0)
            return -1;
        return hi > pt->position ? hi - pt->position : 0;
    }
    return -1;
}

xs_err_t xs_consumer_commit(xs_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                            bool async, char *errstr, size_t errstr_size)
{
    xs_offset_t one = {topic, partition, offset};
    return xs_consumer_commit_offsets(c, &one, 1, async, errstr, errstr_size);
}

xs_err_t xs_consumer_commit_offsets(xs_consumer_t *c, const xs_offset_t *offsets, size_t n,
                                    bool async, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t rderr;
    xs_err_t ret = XS_OK;

    if (n == 0)
        return XS_OK;
    if (!c->group) {
        xs_err_set(errstr, errstr_size, "kafka: commit %s[%d]: consumer has no group.id",
                   offsets[0].topic, (int)offsets[0].partition);
        return XS_ERR_INVALID;
    }
    list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, offsets[i].topic, offsets[i].partition)->offset =
            offsets[i].offset;
    rderr = rd_kafka_commit(c->rk, list, async ? 1 : 0);
    for (int i = 0; !rderr && !async && i < list->cnt; i++)
        rderr = list->elems[i].err;
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: commit %s[%d] offset %lld%s: %s", offsets[0].topic,
                   (int)offsets[0].partition, (long long)offsets[0].offset,
                   n > 1 ? " (and more)" : "", rd_kafka_err2str(rderr));
        ret = XS_ERR_KAFKA;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return ret;
}

xs_err_t xs_consumer_pause_all(xs_consumer_t *c, bool pause)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t rderr;

    rderr = rd_kafka_assignment(c->rk, &list);
    if (rderr) {
        XS_WARN("could not read the assignment", "error=\"%s\"", rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    rderr =
        pause ? rd_kafka_pause_partitions(c->rk, list) : rd_kafka_resume_partitions(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rderr) {
        XS_WARN(pause ? "pause failed" : "resume failed", "error=\"%s\"", rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}
