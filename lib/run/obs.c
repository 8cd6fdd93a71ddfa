/*
 * obs.c — the worker's operational metrics (see include/xsell/obs.h).
 *
 * Histogram buckets (seconds) are fixed per metric, chosen for what each
 * measures on this workload: an event takes tens of microseconds to a few
 * milliseconds on the worker thread; event-to-publish spans milliseconds
 * (live traffic) to hours (a replay of old events); a checkpoint takes
 * milliseconds to seconds; an HTTP query, sub-millisecond to the 5 s a query
 * may wait for the worker.
 */
#include "xsell/obs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "xsell/version.h"

enum {
    O_PROC,
    O_E2P,
    O_CP,
    O_HTTP,
    O_CP_FAIL,
    O_CP_OK,
    O_PART_LAG,
    O_LAG_UNKNOWN,
    O_BUILD,
    O_CPU,
    O_RSS,
    O_FDS,
    O_MAX_FDS,
    O_START,
    O__COUNT
};

struct xs_obs {
    xs_metrics_t *m;
    int id[O__COUNT];
};

static const double proc_buckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                                      0.0005,  0.001,    0.0025,  0.005,  0.01,
                                      0.025,   0.05,     0.1,     0.25,   1};
static const double e2p_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                     2.5,   5,    10,    30,   60,  300,  900, 3600};
static const double cp_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,      2.5,   5,    10,    30,   60};
static const double http_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};

/* Routes of lib/http.c (its resp_t.route values), created at start. */
static const char *const routes[] = {"/metrics",       "/healthz",
                                     "/readyz",        "/v1/users/{id}/cross-sell",
                                     "/v1/cross-sell", "/v1/items/{id}/neighbours",
                                     "/v1/events",     "/shop/",
                                     "other"};

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

xs_obs_t *xs_obs_new(xs_metrics_t *m, const char *const *input_topics, size_t n_topics)
{
    xs_obs_t *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->m = m;
    int *id = o->id;
    id[O_PROC] = xs_metrics_define_histogram(
        m, "xsell_event_processing_seconds",
        "Time to process one input message on the worker thread (decode, state update, list "
        "built and handed to the producer), by input topic.",
        "topic", proc_buckets, XS_ARRAY_SIZE(proc_buckets));
    id[O_E2P] = xs_metrics_define_histogram(
        m, "xsell_event_to_publish_seconds",
        "From the triggering event's own timestamp (event time) to its list handed to the "
        "producer; a replay of old events shows their age.",
        NULL, e2p_buckets, XS_ARRAY_SIZE(e2p_buckets));
    id[O_CP] = xs_metrics_define_histogram(m, "xsell_checkpoint_seconds",
                                           "Checkpoint duration (producer acknowledgements and "
                                           "the state batch written).",
                                           NULL, cp_buckets, XS_ARRAY_SIZE(cp_buckets));
    id[O_HTTP] = xs_metrics_define_histogram(
        m, "xsell_http_request_duration_seconds",
        "HTTP request to its answer queued, by route template (other: unknown paths and "
        "requests refused before routing).",
        "route", http_buckets, XS_ARRAY_SIZE(http_buckets));
    id[O_CP_FAIL] = xs_metrics_define(m, "xsell_checkpoint_failures_total", XS_METRIC_COUNTER,
                                      "Checkpoints that failed (the worker then stops; the next "
                                      "start replays from the last checkpoint).",
                                      NULL);
    id[O_CP_OK] =
        xs_metrics_define(m, "xsell_checkpoint_last_success_timestamp_seconds", XS_METRIC_GAUGE,
                          "Wall-clock time of the last checkpoint written (0: none yet).", NULL);
    id[O_PART_LAG] = xs_metrics_define(m, "xsell_consumer_partition_lag_messages", XS_METRIC_GAUGE,
                                       "Messages behind the high watermark, per assigned input "
                                       "partition whose lag is known (no series while unknown).",
                                       "topic,partition");
    id[O_LAG_UNKNOWN] =
        xs_metrics_define(m, "xsell_consumer_lag_unknown_partitions", XS_METRIC_GAUGE,
                          "Assigned input partitions whose lag is not known yet "
                          "(no watermark or position).",
                          NULL);
    id[O_BUILD] = xs_metrics_define(m, "xsell_build_info", XS_METRIC_GAUGE,
                                    "Always 1; the labels say what runs.",
                                    "version,commit,librdkafka,rocksdb,avro");
    id[O_CPU] = xs_metrics_define(m, "process_cpu_seconds_total", XS_METRIC_COUNTER,
                                  "Total user and system CPU time spent in seconds.", NULL);
    id[O_RSS] = xs_metrics_define(m, "process_resident_memory_bytes", XS_METRIC_GAUGE,
                                  "Resident memory size in bytes.", NULL);
    id[O_FDS] = xs_metrics_define(m, "process_open_fds", XS_METRIC_GAUGE,
                                  "Number of open file descriptors.", NULL);
    id[O_MAX_FDS] = xs_metrics_define(m, "process_max_fds", XS_METRIC_GAUGE,
                                      "Maximum number of open file descriptors.", NULL);
    id[O_START] =
        xs_metrics_define(m, "process_start_time_seconds", XS_METRIC_GAUGE,
                          "Start time of the process since the Unix epoch in seconds.", NULL);
    for (int i = 0; i < O__COUNT; i++)
        if (id[i] < 0) {
            free(o);
            return NULL;
        }
    xs_build_info_t bi;
    xs_version_build_info(&bi);
    xs_metrics_set(m, id[O_BUILD],
                   (const char *[]){bi.version, bi.commit, bi.librdkafka, bi.rocksdb, bi.avro}, 1);
    for (size_t i = 0; i < n_topics; i++)
        if (input_topics[i] && *input_topics[i])
            xs_metrics_touch(m, id[O_PROC], (const char *[]){input_topics[i]});
    for (size_t i = 0; i < XS_ARRAY_SIZE(routes); i++)
        xs_metrics_touch(m, id[O_HTTP], (const char *[]){routes[i]});
    xs_metrics_set(m, id[O_START], NULL, wall_seconds());
    xs_obs_sample_process(o);
    return o;
}

void xs_obs_destroy(xs_obs_t *o)
{
    free(o);
}

void xs_obs_event(xs_obs_t *o, const char *topic, double seconds)
{
    if (!o)
        return;
    xs_metrics_observe(o->m, o->id[O_PROC], (const char *[]){topic}, seconds);
}

void xs_obs_published(xs_obs_t *o, int64_t event_ts_ms)
{
    if (!o)
        return;
    double age = wall_seconds() - (double)event_ts_ms / 1e3;
    xs_metrics_observe(o->m, o->id[O_E2P], NULL, age > 0 ? age : 0);
}

void xs_obs_checkpoint(xs_obs_t *o, double seconds)
{
    if (!o)
        return;
    xs_metrics_observe(o->m, o->id[O_CP], NULL, seconds);
    xs_metrics_set(o->m, o->id[O_CP_OK], NULL, wall_seconds());
}

void xs_obs_checkpoint_failed(xs_obs_t *o)
{
    if (!o)
        return;
    xs_metrics_add(o->m, o->id[O_CP_FAIL], NULL, 1);
}

void xs_obs_http(xs_obs_t *o, const char *route, double seconds)
{
    if (!o)
        return;
    xs_metrics_observe(o->m, o->id[O_HTTP], (const char *[]){route}, seconds);
}

void xs_obs_partition_lag(xs_obs_t *o, const char *topic, int32_t partition, int64_t lag)
{
    if (!o)
        return;
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    const char *lv[] = {topic, part};
    if (lag >= 0)
        xs_metrics_set(o->m, o->id[O_PART_LAG], lv, (double)lag);
    else
        xs_metrics_remove(o->m, o->id[O_PART_LAG], lv);
}

void xs_obs_lag_unknown(xs_obs_t *o, int partitions)
{
    if (!o)
        return;
    xs_metrics_set(o->m, o->id[O_LAG_UNKNOWN], NULL, partitions);
}

void xs_obs_sample_process(xs_obs_t *o)
{
    if (!o)
        return;
    /* /proc/self/stat: utime and stime are fields 14 and 15 (clock ticks),
     * after the command name in parentheses (which may hold spaces). */
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        unsigned long utime = 0, stime = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                        &stime) == 2) {
            long tck = sysconf(_SC_CLK_TCK);
            if (tck > 0)
                xs_metrics_set(o->m, o->id[O_CPU], NULL, (double)(utime + stime) / (double)tck);
        }
    }
    if ((f = fopen("/proc/self/statm", "r"))) {
        unsigned long size = 0, rss = 0;
        if (fscanf(f, "%lu %lu", &size, &rss) == 2)
            xs_metrics_set(o->m, o->id[O_RSS], NULL, (double)rss * (double)sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        xs_metrics_set(o->m, o->id[O_FDS], NULL, n - 1); /* less the directory's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        xs_metrics_set(o->m, o->id[O_MAX_FDS], NULL, (double)rl.rlim_cur);
}
