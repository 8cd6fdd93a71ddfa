/*
 * xsell schemas — prints the embedded reader schemas with their Avro
 * single-object fingerprints, so producers in any language can frame
 * messages (C3 01 + fingerprint, little-endian) without a registry.
 *
 * xsell config --doc | --check FILE... — prints the configuration table as
 * Markdown (docs/CONFIG.md), or applies to the files every check the worker
 * applies at start (xs_check_config()) and prints every error, not the first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "xsell/check.h"
#include "xsell/codec.h"
#include "xsell/config.h"
#include "xsell/json.h"

int xs_cli_schemas(int argc, char **argv)
{
    char errstr[512];
    bool full = argc > 1 && !strcmp(argv[1], "--canonical");
    if (argc > 1 && !full) {
        fprintf(stderr, "usage: xsell schemas [--canonical]\n");
        return 2;
    }
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "xsell schemas: %s\n", errstr);
        return 1;
    }
    for (int k = 0; k < XS_KIND__COUNT; k++) {
        uint64_t fp = xs_codec_fingerprint(codec, (xs_event_kind_t)k);
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(fp >> (8 * i));
        printf("%-14s fingerprint=0x%016" PRIx64 " header=c3 01",
               xs_event_kind_name((xs_event_kind_t)k), fp);
        for (int i = 0; i < 8; i++)
            printf(" %02x", le[i]);
        printf("\n");
        if (full) {
            xs_buf_t b = {0};
            if (xs_codec_schema_canonical_form(xs_codec_schema_json((xs_event_kind_t)k), &b, errstr,
                                               sizeof(errstr)) == XS_OK)
                printf("  %s\n", (const char *)b.data);
            xs_buf_free(&b);
        }
    }
    xs_codec_destroy(codec);
    return 0;
}

static void print_error(void *opaque, const char *message)
{
    (void)opaque;
    fprintf(stderr, "%s\n", message);
}

static void collect_error(void *opaque, const char *message)
{
    xs_buf_t *b = opaque;
    if (b->len)
        xs_buf_append_u8(b, ',');
    xs_json_write_string(b, message, strlen(message));
}

int xs_cli_config(int argc, char **argv)
{
    char errstr[1024];
    if (argc == 2 && !strcmp(argv[1], "--doc")) {
        xs_config_doc(stdout);
        return 0;
    }
    bool json = argc >= 2 && !strcmp(argv[1], "--json");
    if (json) {
        argc--;
        argv++;
    }
    if (argc >= 3 && !strcmp(argv[1], "--check")) {
        /* Every file (later ones override earlier ones, as the worker's
         * --config), then every check the worker applies at start. With
         * --json: one object {"ok", "errors": [...], "config": {...}} on
         * stdout (config only when ok). */
        xs_config_t *cfg = xs_config_new();
        xs_buf_t errors = {0}, out = {0};
        if (!cfg)
            return 1;
        xs_report_fn report = json ? collect_error : print_error;
        void *opaque = json ? &errors : NULL;
        int bad = 0;
        for (int i = 2; i < argc; i++)
            bad += xs_config_load_file_all(cfg, argv[i], report, opaque);
        bad += xs_check_config(cfg, report, opaque);
        if (json) {
            xs_buf_printf(&out, "{\"ok\":%s,\"errors\":[%.*s]", bad ? "false" : "true",
                          (int)errors.len, errors.len ? (const char *)errors.data : "");
            if (!bad) {
                xs_buf_append_str(&out, ",\"config\":");
                xs_config_dump_json(cfg, &out);
            }
            xs_buf_append_str(&out, "}\n");
            fwrite(out.data, 1, out.len, stdout);
        } else if (bad) {
            fprintf(stderr, "%d error%s\n", bad, bad == 1 ? "" : "s");
        } else {
            xs_config_dump(cfg, stdout);
        }
        xs_buf_free(&errors);
        xs_buf_free(&out);
        xs_config_destroy(cfg);
        return bad ? 1 : 0;
    }
    (void)errstr;
    fprintf(stderr, "usage: xsell config --doc | [--json] --check FILE...\n");
    return 2;
}
