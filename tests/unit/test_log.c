/*
 * Log lines (lib/io/log.c): values escaped so logfmt parsers read them, and
 * log.format = json lines that a JSON parser reads back to the same values.
 * The fields are what callers write with printf: a value in quotes may hold
 * quotes, '=', newlines, invalid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/json.h"
#include "xsell/log.h"

#define TS "2026-01-02T03:04:05.678Z"

static const char *render(xs_log_format_t fmt, const char *msg, const char *fields)
{
    static char buf[4096];
    size_t n = xs_log_render(buf, sizeof(buf), fmt, TS, "info", msg, fields);
    assert_true(n < sizeof(buf));
    assert_int_equal(strlen(buf), n);
    fprintf(stderr, "  %s\n", buf);
    return buf;
}

/* Ordinary lines are unchanged: what operators and the tests grep for. */
static void test_plain(void **state)
{
    (void)state;
    assert_string_equal(
        render(XS_LOG_LOGFMT, "partition assigned", "topic=xsell.clicks partition=3"),
        TS " level=info msg=\"partition assigned\" topic=xsell.clicks partition=3");
    assert_string_equal(render(XS_LOG_LOGFMT, "http listening", "address=127.0.0.1:8080"),
                        TS " level=info msg=\"http listening\" address=127.0.0.1:8080");
    assert_string_equal(render(XS_LOG_LOGFMT, "ready", NULL), TS " level=info msg=\"ready\"");
    assert_string_equal(render(XS_LOG_LOGFMT, "x", "error=\"a b\" n=1"),
                        TS " level=info msg=\"x\" error=\"a b\" n=1");
}

/* Quotes, '=', newlines, backslashes, control bytes, invalid UTF-8. */
static void test_escaped(void **state)
{
    (void)state;
    const char *f = "error=\"it said \"no\" = yes\nend\\\" n=42 name=a\"b id=\"\xff\x01\" "
                    "path=\"C:\\tmp\"";
    assert_string_equal(render(XS_LOG_LOGFMT, "say \"hi\"", f),
                        TS " level=info msg=\"say \\\"hi\\\"\" error=\"it said \\\"no\\\" = "
                           "yes\\nend\\\\\" n=42 name=\"a\\\"b\" id=\"?\\u0001\" "
                           "path=\"C:\\\\tmp\"");
    /* JSON: parsed back, every value as written by the caller. */
    const char *line = render(XS_LOG_JSON, "say \"hi\"", f);
    char errstr[256];
    xs_json_t *j = xs_json_parse(line, strlen(line), errstr, sizeof(errstr));
    if (!j)
        fail_msg("not JSON: %s", errstr);
    assert_string_equal(xs_json_string(xs_json_get(j, "ts")), TS);
    assert_string_equal(xs_json_string(xs_json_get(j, "level")), "info");
    assert_string_equal(xs_json_string(xs_json_get(j, "msg")), "say \"hi\"");
    assert_string_equal(xs_json_string(xs_json_get(j, "error")), "it said \"no\" = yes\nend\\");
    assert_int_equal(xs_json_type(xs_json_get(j, "n")), XS_JSON_NUMBER);
    assert_true(xs_json_number(xs_json_get(j, "n")) == 42);
    assert_string_equal(xs_json_string(xs_json_get(j, "name")), "a\"b");
    assert_string_equal(xs_json_string(xs_json_get(j, "id")), "?\x01");
    assert_string_equal(xs_json_string(xs_json_get(j, "path")), "C:\\tmp");
    xs_json_free(j);
    /* Bare values that are not JSON numbers stay strings. */
    line = render(XS_LOG_JSON, "m", "a=007 b=1e3 c=nan d=-1.5 e=0x10");
    j = xs_json_parse(line, strlen(line), errstr, sizeof(errstr));
    if (!j)
        fail_msg("not JSON: %s", errstr);
    assert_string_equal(xs_json_string(xs_json_get(j, "a")), "007");
    assert_true(xs_json_number(xs_json_get(j, "b")) == 1000);
    assert_string_equal(xs_json_string(xs_json_get(j, "c")), "nan");
    assert_true(xs_json_number(xs_json_get(j, "d")) == -1.5);
    assert_string_equal(xs_json_string(xs_json_get(j, "e")), "0x10");
    xs_json_free(j);
}

/* A small buffer: the length needed is returned, the text cut and terminated. */
static void test_truncated(void **state)
{
    (void)state;
    char small[16];
    size_t n = xs_log_render(small, sizeof(small), XS_LOG_LOGFMT, TS, "info", "m", "k=v");
    assert_int_equal(n, strlen(TS " level=info msg=\"m\" k=v"));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(xs_log_format_from_name("json"), XS_LOG_JSON);
    assert_int_equal(xs_log_format_from_name("logfmt"), XS_LOG_LOGFMT);
    assert_int_equal(xs_log_format_from_name("xml"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
