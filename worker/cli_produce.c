/*
 * cli_produce.c — `xsell produce`: load a dataset or JSON-lines file into
 * xsell's input topics.
 *
 * Pipeline: xs_dataset_read() turns the files into events in event-time
 * order; each event is encoded (Avro single-object encoding, or the bare
 * Avro body with --framing bare) and produced:
 *
 *     ClickEvent  -> --click-topic   (default xsell.clicks)   key user_id
 *     CartEvent   -> --cart-topic    (default xsell.cart)     key user_id
 *     ItemUpdate  -> --catalog-topic (default xsell.catalog)  key item_id
 *
 * Keying by user keeps a user's events in one partition, in order, which is
 * what the worker's per-partition user state relies on. The producer is
 * idempotent with acks=all; a full local queue blocks (backpressure), so a
 * big file never drops messages. Progress goes to stderr (cli_progress.h: a
 * line rewritten in place on a terminal, a plain line every 5 s otherwise;
 * --quiet turns it off); at the end everything is flushed and one summary
 * line goes to stdout:
 *
 *     produced events=N clicks=N carts=N items=N rows=N skipped_no_user=N
 *     skipped_cancelled=N skipped_other=N bad_rows=N encode_failed=N
 *     delivered=N failed=N
 *
 * Exit status: 0 when every event was delivered; 1 when a delivery failed,
 * the input could not be read, or the load was interrupted (SIGINT/SIGTERM
 * stop reading, then what was queued is still flushed); 2 on usage errors.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_progress.h"
#include "xsell/codec.h"
#include "xsell/dataset.h"
#include "xsell/event.h"
#include "xsell/kafka.h"

#define PRODUCE_FLUSH_MS 60000
#define SINGLE_OBJECT_HEADER 10 /* C3 01 + 8-byte fingerprint */

typedef struct produce_ctx {
    xs_producer_t *producer;
    xs_codec_t *codec;
    xs_buf_t buf;
    const char *topic[XS_KIND__COUNT]; /* by event kind; NULL = not produced */
    bool bare;
    uint64_t per_kind[XS_KIND__COUNT];
    uint64_t events;
    uint64_t encode_failed;
    xs_cli_progress_t progress;
    bool interrupted;
    bool send_failed;
    char errstr[512];
} produce_ctx_t;

static void produce_usage(FILE *out)
{
    fprintf(out, "usage: xsell produce (--bootstrap B | --bootstrap-file F) --format FMT\n"
                 "                     [--click-topic T] [--cart-topic T] [--catalog-topic T]\n"
                 "                     [--framing single-object|bare] [--max-events N] [--seed S]\n"
                 "                     [--quiet] [-X key=value ...] FILE...\n\n"
                 "Reads FILE... and produces clicks, cart events and catalog updates.\n\n"
                 "  --bootstrap B        Kafka bootstrap servers\n"
                 "  --bootstrap-file F   read them from F (as written by xsell devbroker)\n"
                 "  --format FMT         online-retail | retailrocket | jsonl | baskets |\n"
                 "                       yoochoose\n"
                 "  --click-topic T      default xsell.clicks\n"
                 "  --cart-topic T       default xsell.cart\n"
                 "  --catalog-topic T    default xsell.catalog\n"
                 "  --framing F          single-object (default) or bare (Avro body only)\n"
                 "  --max-events N       stop after N events\n"
                 "  --seed S             seed for formats replayed in a seeded order (default 42)\n"
                 "  -q, --quiet          no progress on stderr\n"
                 "  -X key=value         librdkafka producer property (repeatable)\n");
}

/* The progress line's extra fields: what the broker acknowledged so far. */
static const char *produce_extra(produce_ctx_t *ctx, char *buf, size_t size)
{
    snprintf(buf, size, "delivered %" PRIu64 ", in flight %d", xs_producer_delivered(ctx->producer),
             xs_producer_outq_len(ctx->producer));
    return buf;
}

static xs_err_t produce_event(void *opaque, const xs_event_t *ev)
{
    produce_ctx_t *ctx = opaque;
    const char *topic = NULL;
    const char *key = NULL;
    const uint8_t *value = NULL;
    size_t value_len = 0;
    xs_err_t err;

    if (xs_cli_stopping()) {
        ctx->interrupted = true;
        return XS_ERR_EOF;
    }
    if ((unsigned)ev->kind >= XS_KIND__COUNT || !(topic = ctx->topic[ev->kind])) {
        ctx->encode_failed++;
        return XS_OK;
    }
    key = ev->kind == XS_KIND_ITEM ? ev->item_id : ev->user_id;

    xs_buf_reset(&ctx->buf);
    err = xs_codec_encode_event(ctx->codec, ev, &ctx->buf);
    if (err != XS_OK || ctx->buf.len < SINGLE_OBJECT_HEADER) {
        if (ctx->encode_failed++ < 10)
            fprintf(stderr, "xsell produce: cannot encode %s event %s: %s\n",
                    xs_event_kind_name(ev->kind),
                    ev->kind == XS_KIND_ITEM ? (ev->item_id ? ev->item_id : "?")
                                             : (ev->event_id ? ev->event_id : "?"),
                    xs_err_str(err));
        return XS_OK;
    }
    value = ctx->buf.data;
    value_len = ctx->buf.len;
    if (ctx->bare) {
        value += SINGLE_OBJECT_HEADER;
        value_len -= SINGLE_OBJECT_HEADER;
    }
    err = xs_producer_send(ctx->producer, topic, -1, key, key ? strlen(key) : 0, value, value_len,
                           NULL, 0, ctx->errstr, sizeof(ctx->errstr));
    if (err != XS_OK) {
        ctx->send_failed = true;
        return err;
    }
    ctx->per_kind[ev->kind]++;
    ctx->events++;
    if ((ctx->events & 255) == 0) {
        int64_t now = xs_cli_now_ms();
        char extra[96];
        xs_producer_poll(ctx->producer);
        if (xs_cli_progress_due(&ctx->progress, now))
            xs_cli_progress_print(&ctx->progress, ctx->events,
                                  produce_extra(ctx, extra, sizeof(extra)), now);
    }
    return XS_OK;
}

int xs_cli_produce(int argc, char **argv)
{
    enum {
        OPT_BOOTSTRAP = 256,
        OPT_BOOTSTRAP_FILE,
        OPT_FORMAT,
        OPT_CLICK,
        OPT_CART,
        OPT_CATALOG,
        OPT_FRAMING,
        OPT_MAX,
        OPT_SEED
    };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
        {"bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"click-topic", required_argument, NULL, OPT_CLICK},
        {"cart-topic", required_argument, NULL, OPT_CART},
        {"catalog-topic", required_argument, NULL, OPT_CATALOG},
        {"framing", required_argument, NULL, OPT_FRAMING},
        {"max-events", required_argument, NULL, OPT_MAX},
        {"seed", required_argument, NULL, OPT_SEED},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    produce_ctx_t ctx;
    xs_cli_kvs_t kvs = {0};
    xs_dataset_opts_t dopts;
    xs_dataset_stats_t stats;
    const char *bootstrap_arg = NULL, *bootstrap_file = NULL;
    char *bootstrap = NULL;
    int format = -1;
    char errstr[512];
    xs_err_t err, read_err = XS_OK;
    bool flush_failed = false, quiet = false;
    char extra[96];
    int opt, rc = 0;

    memset(&ctx, 0, sizeof(ctx));
    memset(&stats, 0, sizeof(stats));
    ctx.topic[XS_KIND_CLICK] = "xsell.clicks";
    ctx.topic[XS_KIND_CART] = "xsell.cart";
    ctx.topic[XS_KIND_ITEM] = "xsell.catalog";
    xs_dataset_opts_default(&dopts);

    optind = 1;
    while ((opt = getopt_long(argc, argv, "X:qh", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_BOOTSTRAP:
            bootstrap_arg = optarg;
            break;
        case OPT_BOOTSTRAP_FILE:
            bootstrap_file = optarg;
            break;
        case OPT_FORMAT:
            if ((format = xs_dataset_format_from_name(optarg)) < 0) {
                snprintf(errstr, sizeof(errstr), "--format: unknown format '%s'", optarg);
                goto usage_error;
            }
            break;
        case OPT_CLICK:
            ctx.topic[XS_KIND_CLICK] = optarg;
            break;
        case OPT_CART:
            ctx.topic[XS_KIND_CART] = optarg;
            break;
        case OPT_CATALOG:
            ctx.topic[XS_KIND_ITEM] = optarg;
            break;
        case OPT_FRAMING:
            if (strcmp(optarg, "bare") == 0) {
                ctx.bare = true;
            } else if (strcmp(optarg, "single-object") == 0) {
                ctx.bare = false;
            } else {
                snprintf(errstr, sizeof(errstr),
                         "--framing: expected single-object or bare, got '%s'", optarg);
                goto usage_error;
            }
            break;
        case OPT_MAX:
            if (!xs_cli_parse_u64("--max-events", optarg, &dopts.max_events, errstr,
                                  sizeof(errstr)))
                goto usage_error;
            break;
        case OPT_SEED:
            if (!xs_cli_parse_u64("--seed", optarg, &dopts.seed, errstr, sizeof(errstr)))
                goto usage_error;
            break;
        case 'X':
            if ((err = xs_cli_kvs_add(&kvs, optarg, errstr, sizeof(errstr))) != XS_OK) {
                if (err == XS_ERR_NOMEM)
                    goto nomem;
                goto usage_error;
            }
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            produce_usage(stdout);
            goto out;
        default:
            produce_usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (format < 0) {
        snprintf(errstr, sizeof(errstr), "--format is required");
        goto usage_error;
    }
    if (optind >= argc) {
        snprintf(errstr, sizeof(errstr), "no input FILE given");
        goto usage_error;
    }
    xs_cli_install_signals();
    if ((err = xs_cli_bootstrap(bootstrap_arg, bootstrap_file, 10000, &bootstrap, errstr,
                                sizeof(errstr))) != XS_OK) {
        if (err == XS_ERR_INVALID)
            goto usage_error;
        fprintf(stderr, "xsell produce: %s\n", errstr);
        rc = 1;
        goto out;
    }

    ctx.codec = xs_codec_new(errstr, sizeof(errstr));
    if (!ctx.codec) {
        fprintf(stderr, "xsell produce: %s\n", errstr);
        rc = 1;
        goto out;
    }
    ctx.producer = xs_producer_new(bootstrap, kvs.kv, kvs.n, errstr, sizeof(errstr));
    if (!ctx.producer) {
        fprintf(stderr, "xsell produce: %s\n", errstr);
        rc = 1;
        goto out;
    }

    xs_cli_progress_init(&ctx.progress, "xsell produce", "events", dopts.max_events, quiet);
    read_err = xs_dataset_read((xs_dataset_format_t)format, (const char *const *)argv + optind,
                               (size_t)(argc - optind), &dopts, produce_event, &ctx, &stats, errstr,
                               sizeof(errstr));
    if (read_err != XS_OK && !ctx.interrupted) {
        /* Stop reading, but still deliver what was queued (like kcat). */
        fprintf(stderr, "xsell produce: %s\n", ctx.send_failed ? ctx.errstr : errstr);
    }
    if (ctx.interrupted)
        fprintf(stderr, "xsell produce: interrupted, flushing %d queued messages\n",
                xs_producer_outq_len(ctx.producer));
    xs_cli_progress_finish(&ctx.progress, ctx.events, produce_extra(&ctx, extra, sizeof(extra)));
    if (xs_producer_flush(ctx.producer, PRODUCE_FLUSH_MS, errstr, sizeof(errstr)) != XS_OK) {
        fprintf(stderr, "xsell produce: %s\n", errstr);
        flush_failed = true;
    }

    printf("produced events=%" PRIu64 " clicks=%" PRIu64 " carts=%" PRIu64 " items=%" PRIu64
           " rows=%" PRIu64 " skipped_no_user=%" PRIu64 " skipped_cancelled=%" PRIu64
           " skipped_other=%" PRIu64 " bad_rows=%" PRIu64 " encode_failed=%" PRIu64
           " delivered=%" PRIu64 " failed=%" PRIu64 "%s\n",
           ctx.events, ctx.per_kind[XS_KIND_CLICK], ctx.per_kind[XS_KIND_CART],
           ctx.per_kind[XS_KIND_ITEM], stats.rows, stats.skipped_no_user, stats.skipped_cancelled,
           stats.skipped_other, stats.bad_rows, ctx.encode_failed,
           xs_producer_delivered(ctx.producer), xs_producer_failed(ctx.producer),
           ctx.interrupted ? " interrupted=1" : "");
    fflush(stdout);
    if (read_err != XS_OK || flush_failed || xs_producer_failed(ctx.producer) > 0 ||
        xs_producer_delivered(ctx.producer) < ctx.events)
        rc = 1;
    goto out;

nomem:
    fprintf(stderr, "xsell produce: out of memory\n");
    rc = 1;
    goto out;
usage_error:
    fprintf(stderr, "xsell produce: %s\n", errstr);
    produce_usage(stderr);
    rc = 2;
out:
    xs_producer_destroy(ctx.producer);
    xs_codec_destroy(ctx.codec);
    xs_buf_free(&ctx.buf);
    xs_cli_kvs_free(&kvs);
    free(bootstrap);
    return rc;
}
