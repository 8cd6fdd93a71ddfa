/*
 * test_json.c — the strict JSON reader and the writer helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/json.h"

static xs_json_t *parse(const char *s)
{
    char err[128] = "";
    xs_json_t *v = xs_json_parse(s, strlen(s), err, sizeof(err));
    if (!v)
        print_error("unexpected parse error for %s: %s\n", s, err);
    return v;
}

/* Parses s expecting failure; returns the error message (static). */
static const char *parse_fail(const char *s, size_t len)
{
    static char err[128];
    err[0] = '\0';
    xs_json_t *v = xs_json_parse(s, len, err, sizeof(err));
    if (v) {
        xs_json_free(v);
        print_error("input unexpectedly parsed: %s\n", s);
        fail();
    }
    return err;
}

static void test_scalars(void **state)
{
    (void)state;
    xs_json_t *v = parse(" true ");
    assert_non_null(v);
    assert_int_equal(xs_json_type(v), XS_JSON_BOOL);
    assert_true(xs_json_bool(v));
    xs_json_free(v);

    v = parse("false");
    assert_int_equal(xs_json_type(v), XS_JSON_BOOL);
    assert_false(xs_json_bool(v));
    xs_json_free(v);

    v = parse("null");
    assert_int_equal(xs_json_type(v), XS_JSON_NULL);
    assert_null(xs_json_string(v));
    xs_json_free(v);

    v = parse("-12.5e2");
    assert_int_equal(xs_json_type(v), XS_JSON_NUMBER);
    assert_true(xs_json_number(v) == -1250.0);
    assert_string_equal(xs_json_number_text(v), "-12.5e2");
    xs_json_free(v);

    /* int64 beyond double precision: the text is kept exactly. */
    v = parse("9007199254740993");
    assert_string_equal(xs_json_number_text(v), "9007199254740993");
    assert_true(xs_json_number(v) > 9.0e15);
    xs_json_free(v);

    v = parse("0");
    assert_true(xs_json_number(v) == 0.0);
    assert_null(xs_json_string(v));
    xs_json_free(v);
}

static void test_strings_and_escapes(void **state)
{
    (void)state;
    xs_json_t *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
    assert_non_null(v);
    assert_string_equal(xs_json_string(v), "a\"b\\c/d\b\f\n\r\t");
    assert_int_equal(xs_json_string_len(v), 12);
    xs_json_free(v);

    /* BMP escapes: U+00E9 (2 bytes), U+20AC (3 bytes). */
    v = parse("\"\\u00e9\\u20AC\"");
    assert_string_equal(xs_json_string(v), "\xC3\xA9\xE2\x82\xAC");
    xs_json_free(v);

    /* Surrogate pair U+1F600 -> F0 9F 98 80. */
    v = parse("\"x\\ud83d\\ude00y\"");
    assert_string_equal(xs_json_string(v), "x\xF0\x9F\x98\x80y");
    assert_int_equal(xs_json_string_len(v), 6);
    xs_json_free(v);

    /* \u0000 is kept; the length tells the truth. */
    v = parse("\"a\\u0000b\"");
    assert_int_equal(xs_json_string_len(v), 3);
    assert_memory_equal(xs_json_string(v), "a\0b", 4);
    xs_json_free(v);

    /* Raw UTF-8 passes through. */
    v = parse("\"caf\xC3\xA9\"");
    assert_string_equal(xs_json_string(v), "caf\xC3\xA9");
    xs_json_free(v);
}

static void test_containers(void **state)
{
    (void)state;
    xs_json_t *v = parse("{\"b\": [1, 2, {\"x\": null}], \"a\": \"s\", \"b\": 3}");
    assert_non_null(v);
    assert_int_equal(xs_json_type(v), XS_JSON_OBJECT);
    assert_int_equal(xs_json_size(v), 3);
    assert_string_equal(xs_json_key_at(v, 0), "b");
    assert_string_equal(xs_json_key_at(v, 1), "a");
    assert_null(xs_json_key_at(v, 3));
    const xs_json_t *b = xs_json_get(v, "b"); /* first of the duplicates */
    assert_int_equal(xs_json_type(b), XS_JSON_ARRAY);
    assert_int_equal(xs_json_size(b), 3);
    assert_true(xs_json_number(xs_json_at(b, 1)) == 2.0);
    assert_null(xs_json_at(b, 3));
    assert_null(xs_json_key_at(b, 0));
    const xs_json_t *inner = xs_json_at(b, 2);
    assert_non_null(xs_json_get(inner, "x"));
    assert_int_equal(xs_json_type(xs_json_get(inner, "x")), XS_JSON_NULL);
    assert_null(xs_json_get(v, "zz"));
    assert_string_equal(xs_json_string(xs_json_get(v, "a")), "s");
    xs_json_free(v);

    v = parse("[]");
    assert_int_equal(xs_json_size(v), 0);
    xs_json_free(v);
    v = parse("{ }");
    assert_int_equal(xs_json_type(v), XS_JSON_OBJECT);
    assert_int_equal(xs_json_size(v), 0);
    xs_json_free(v);

    xs_json_free(NULL);
}

static void test_errors_have_positions(void **state)
{
    (void)state;
    assert_string_equal(parse_fail("[1,\n 2\n  3]", 11), "line 3 col 3: expected ',' or ']'");
    assert_string_equal(parse_fail("{\"a\" 1}", 7), "line 1 col 6: expected ':'");
    assert_string_equal(parse_fail("", 0), "line 1 col 1: unexpected end of input");
    assert_string_equal(parse_fail("1 2", 3), "line 1 col 3: trailing characters after JSON value");
    assert_string_equal(parse_fail("[1,]", 4), "line 1 col 4: unexpected character");
}

static void test_strict_rejections(void **state)
{
    (void)state;
    static const char *bad[] = {
        "01",
        "+1",
        "1.",
        ".5",
        "1e",
        "-",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "[1 2]",
        "{\"a\":1,}",
        "{a:1}",
        "'x'",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "[",
        "{\"a\":1",
        "\"\\",
        "\"a\tb\"",
        "\"\xC0\xAF\"",         /* overlong '/' */
        "\"\xED\xA0\x80\"",     /* encoded surrogate */
        "\"\xF4\x90\x80\x80\"", /* > U+10FFFF */
        "\"\xE2\x82\"",         /* truncated sequence */
        "\xEF\xBB\xBF{}",       /* BOM is not JSON whitespace */
    };
    for (size_t i = 0; i < XS_ARRAY_SIZE(bad); i++) {
        const char *msg = parse_fail(bad[i], strlen(bad[i]));
        assert_true(strncmp(msg, "line ", 5) == 0);
    }
    /* An embedded NUL byte in the text is not whitespace. */
    parse_fail("1\0", 2);
    parse_fail("\"a\0b\"", 5);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char buf[2 * (XS_JSON_MAX_DEPTH + 1) + 1];
    /* Exactly the limit parses. */
    memset(buf, '[', XS_JSON_MAX_DEPTH);
    memset(buf + XS_JSON_MAX_DEPTH, ']', XS_JSON_MAX_DEPTH);
    xs_json_t *v = xs_json_parse(buf, 2 * XS_JSON_MAX_DEPTH, NULL, 0);
    assert_non_null(v);
    xs_json_free(v);
    /* One more does not. */
    memset(buf, '[', XS_JSON_MAX_DEPTH + 1);
    memset(buf + XS_JSON_MAX_DEPTH + 1, ']', XS_JSON_MAX_DEPTH + 1);
    const char *msg = parse_fail(buf, 2 * (XS_JSON_MAX_DEPTH + 1));
    assert_non_null(strstr(msg, "nesting too deep"));

    /* A huge unclosed nest fails fast and cleanly, without recursion blowup. */
    size_t n = 1000000;
    char *deep = malloc(n);
    assert_non_null(deep);
    memset(deep, '[', n);
    msg = parse_fail(deep, n);
    assert_non_null(strstr(msg, "nesting too deep"));
    free(deep);
}

static void test_write_string(void **state)
{
    (void)state;
    xs_buf_t out = {0};
    assert_int_equal(xs_json_write_string(&out, "a\"b\\c\n\x01\x1f\xC3\xA9", 10), XS_OK);
    xs_buf_append_u8(&out, 0);
    assert_string_equal((char *)out.data, "\"a\\\"b\\\\c\\n\\u0001\\u001f\xC3\xA9\"");
    xs_buf_reset(&out);

    /* Embedded NUL and malformed UTF-8 still give valid JSON. */
    assert_int_equal(xs_json_write_string(&out, "x\0\xFFy", 4), XS_OK);
    xs_buf_append_u8(&out, 0);
    assert_string_equal((char *)out.data, "\"x\\u0000\xEF\xBF\xBDy\"");
    xs_buf_free(&out);
}

static void test_write_roundtrip(void **state)
{
    (void)state;
    const char *src = "{ \"k\" : [ 1.50, -0, 1e300, true, false, null, \"\\u20ac\\n\" ],\n"
                      "  \"z\": {}, \"a\": [] }";
    xs_json_t *v = parse(src);
    assert_non_null(v);
    xs_buf_t out = {0};
    assert_int_equal(xs_json_write(&out, v), XS_OK);
    xs_buf_append_u8(&out, 0);
    assert_string_equal(
        (char *)out.data,
        "{\"k\":[1.50,-0,1e300,true,false,null,\"\xE2\x82\xAC\\n\"],\"z\":{},\"a\":[]}");
    /* The compact form re-parses to the same compact form. */
    xs_json_t *w = xs_json_parse((char *)out.data, out.len - 1, NULL, 0);
    assert_non_null(w);
    xs_buf_t out2 = {0};
    assert_int_equal(xs_json_write(&out2, w), XS_OK);
    assert_int_equal(out2.len, out.len - 1);
    assert_memory_equal(out2.data, out.data, out2.len);
    xs_buf_free(&out);
    xs_buf_free(&out2);
    xs_json_free(v);
    xs_json_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),           cmocka_unit_test(test_strings_and_escapes),
        cmocka_unit_test(test_containers),        cmocka_unit_test(test_errors_have_positions),
        cmocka_unit_test(test_strict_rejections), cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_write_string),      cmocka_unit_test(test_write_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
