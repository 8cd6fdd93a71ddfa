/*
 * json.c — a strict RFC 8259 JSON reader (DOM) and writer helpers.
 *
 * What: xs_json_parse() turns one JSON text into a tree of xs_json_t nodes;
 * the root owns everything and xs_json_free(root) releases the whole tree.
 * The writer helpers append escaped strings or a compact re-serialisation
 * of a tree to an xs_buf_t.
 *
 * Why hand-written: we need three things a general library does not give
 * us together — the source text of numbers (Avro defaults and ids are
 * int64 and must not round-trip through a double), object members in
 * source order (Avro canonical form and field order), and error messages
 * in "line L col C: message" form for config-style diagnostics.
 *
 * Strictness (the input may be hostile: jsonl datasets, schema texts):
 *   - exactly one value, optionally surrounded by whitespace (SP HT LF CR);
 *     anything else after it is "trailing characters";
 *   - literals true/false/null only; numbers follow the RFC grammar
 *     -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? — no leading '+',
 *     no leading zeros, no NaN/Infinity, no hex;
 *   - strings: no raw control characters (< 0x20), only the RFC escapes,
 *     \uXXXX with surrogate pairs combined into one code point; a lone
 *     surrogate is an error (it has no UTF-8 encoding); the raw bytes must
 *     be well-formed UTF-8 (no overlongs, no encoded surrogates, nothing
 *     above U+10FFFF). \u0000 is allowed: xs_json_string_len() reports the
 *     true length and the text is still NUL-terminated;
 *   - nesting of arrays/objects deeper than XS_JSON_MAX_DEPTH is rejected,
 *     so recursion depth is bounded whatever the input;
 *   - duplicate object keys are accepted (the RFC allows them);
 *     xs_json_get() returns the first match. Keys are NUL-terminated, so a
 *     key containing \u0000 is seen (and re-written) up to its first NUL.
 * Memory is bounded by the input: every node consumes at least one input
 * byte, and arrays/objects grow geometrically.
 *
 * Columns in error messages are 1-based byte offsets within the line.
 */
#include "xsell/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xs_json {
    xs_json_type_t type;
    union {
        bool b;
        struct {
            double value;
            char *text; /* the source text, NUL-terminated */
        } num;
        struct {
            char *s; /* NUL-terminated UTF-8 */
            size_t len;
        } str;
        struct {
            xs_json_t **items;
            char **keys; /* OBJECT only; parallel to items */
            size_t n;
            size_t cap;
        } agg;
    } u;
};

/* ======================================================================== */
/* Parser                                                                   */
/* ======================================================================== */

typedef struct parser {
    const char *text;
    size_t len;
    size_t pos;
    char *errstr;
    size_t errstr_size;
    bool failed;
} parser_t;

static void perr_at(parser_t *p, size_t at, const char *msg)
{
    if (p->failed)
        return;
    p->failed = true;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    xs_err_set(p->errstr, p->errstr_size, "line %zu col %zu: %s", line, col, msg);
}

static void perr(parser_t *p, const char *msg)
{
    perr_at(p, p->pos, msg);
}

static void skip_ws(parser_t *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static xs_json_t *node_new(xs_json_type_t type)
{
    xs_json_t *v = calloc(1, sizeof(*v));
    if (v)
        v->type = type;
    return v;
}

static xs_json_t *parse_value(parser_t *p, int depth);

static xs_err_t agg_push(xs_json_t *agg, char *key, xs_json_t *item)
{
    if (agg->u.agg.n == agg->u.agg.cap) {
        size_t cap = agg->u.agg.cap ? agg->u.agg.cap * 2 : 4;
        xs_json_t **items = realloc(agg->u.agg.items, cap * sizeof(*items));
        if (!items)
            return XS_ERR_NOMEM;
        agg->u.agg.items = items;
        if (agg->type == XS_JSON_OBJECT) {
            char **keys = realloc(agg->u.agg.keys, cap * sizeof(*keys));
            if (!keys)
                return XS_ERR_NOMEM;
            agg->u.agg.keys = keys;
        }
        agg->u.agg.cap = cap;
    }
    agg->u.agg.items[agg->u.agg.n] = item;
    if (agg->type == XS_JSON_OBJECT)
        agg->u.agg.keys[agg->u.agg.n] = key;
    agg->u.agg.n++;
    return XS_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads XXXX after "\u" at p->pos; -1 on error. */
static long read_hex4(parser_t *p)
{
    if (p->len - p->pos < 4) {
        perr(p, "truncated \\u escape");
        return -1;
    }
    long cp = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->text[p->pos + i]);
        if (h < 0) {
            perr_at(p, p->pos + i, "bad hex digit in \\u escape");
            return -1;
        }
        cp = cp * 16 + h;
    }
    p->pos += 4;
    return cp;
}

static size_t utf8_put(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Length of the well-formed UTF-8 sequence at s[0..avail), 0 if malformed
 * (RFC 3629 table: no overlongs, no surrogates, max U+10FFFF).
 */
static size_t utf8_valid_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/*
 * Parses a string starting at the opening quote. On success returns a
 * malloc'd NUL-terminated buffer and its length in *len_out. The decoded
 * text is never longer than the source text, which bounds the allocation.
 */
static char *parse_string_raw(parser_t *p, size_t *len_out)
{
    char *out = NULL;
    size_t start = ++p->pos; /* skip '"' */
    size_t end = start;
    /* Find the closing quote first to size the buffer. */
    while (end < p->len && p->text[end] != '"') {
        if (p->text[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len) {
        perr_at(p, start - 1, "unterminated string");
        return NULL;
    }
    out = malloc(end - start + 1);
    if (!out) {
        perr(p, "out of memory");
        return NULL;
    }
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c < 0x20) {
            perr(p, "control character in string");
            goto fail;
        }
        if (c != '\\') {
            size_t k = utf8_valid_len((const unsigned char *)p->text + p->pos, end - p->pos);
            if (k == 0) {
                perr(p, "invalid UTF-8 in string");
                goto fail;
            }
            memcpy(out + n, p->text + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        p->pos++;
        char e = p->text[p->pos++];
        switch (e) {
        case '"':
            out[n++] = '"';
            break;
        case '\\':
            out[n++] = '\\';
            break;
        case '/':
            out[n++] = '/';
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'u': {
            size_t esc_at = p->pos - 2;
            long cp = read_hex4(p);
            if (cp < 0)
                goto fail;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                perr_at(p, esc_at, "lone low surrogate in \\u escape");
                goto fail;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p->pos < 6 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u') {
                    perr_at(p, esc_at, "high surrogate not followed by a low surrogate");
                    goto fail;
                }
                p->pos += 2;
                long lo = read_hex4(p);
                if (lo < 0)
                    goto fail;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    perr_at(p, esc_at, "high surrogate not followed by a low surrogate");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            /* 6 source bytes ("\uXXXX") yield at most 3 output bytes, 12 at most 4. */
            n += utf8_put(out + n, (unsigned long)cp);
            break;
        }
        default:
            perr_at(p, p->pos - 2, "invalid escape in string");
            goto fail;
        }
    }
    p->pos = end + 1;
    out[n] = '\0';
    *len_out = n;
    return out;
fail:
    free(out);
    return NULL;
}

static xs_json_t *parse_number(parser_t *p)
{
    xs_json_t *v = NULL;
    size_t start = p->pos;
    const char *t = p->text;
    size_t i = p->pos;
    if (i < p->len && t[i] == '-')
        i++;
    if (i >= p->len || t[i] < '0' || t[i] > '9') {
        perr_at(p, i, "invalid number");
        return NULL;
    }
    if (t[i] == '0') {
        i++;
        if (i < p->len && t[i] >= '0' && t[i] <= '9') {
            perr_at(p, i, "leading zero in number");
            return NULL;
        }
    } else {
        while (i < p->len && t[i] >= '0' && t[i] <= '9')
            i++;
    }
    if (i < p->len && t[i] == '.') {
        i++;
        if (i >= p->len || t[i] < '0' || t[i] > '9') {
            perr_at(p, i, "expected digit after '.'");
            return NULL;
        }
        while (i < p->len && t[i] >= '0' && t[i] <= '9')
            i++;
    }
    if (i < p->len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < p->len && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i >= p->len || t[i] < '0' || t[i] > '9') {
            perr_at(p, i, "expected digit in exponent");
            return NULL;
        }
        while (i < p->len && t[i] >= '0' && t[i] <= '9')
            i++;
    }
    v = node_new(XS_JSON_NUMBER);
    if (!v || !(v->u.num.text = xs_str_ndup(t + start, i - start))) {
        free(v);
        perr(p, "out of memory");
        return NULL;
    }
    /* The text is NUL-terminated and grammar-checked, so strtod consumes all of it. */
    v->u.num.value = strtod(v->u.num.text, NULL);
    p->pos = i;
    return v;
}

static bool match_lit(parser_t *p, const char *lit)
{
    size_t n = strlen(lit);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, lit, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static xs_json_t *parse_array(parser_t *p, int depth)
{
    xs_json_t *arr = node_new(XS_JSON_ARRAY);
    xs_json_t *item = NULL;
    if (!arr) {
        perr(p, "out of memory");
        return NULL;
    }
    p->pos++; /* '[' */
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == ']') {
        p->pos++;
        return arr;
    }
    for (;;) {
        item = parse_value(p, depth);
        if (!item)
            goto fail;
        if (agg_push(arr, NULL, item) != XS_OK) {
            perr(p, "out of memory");
            goto fail;
        }
        item = NULL;
        skip_ws(p);
        if (p->pos >= p->len) {
            perr(p, "unterminated array");
            goto fail;
        }
        if (p->text[p->pos] == ']') {
            p->pos++;
            return arr;
        }
        if (p->text[p->pos] != ',') {
            perr(p, "expected ',' or ']'");
            goto fail;
        }
        p->pos++;
    }
fail:
    xs_json_free(item);
    xs_json_free(arr);
    return NULL;
}

static xs_json_t *parse_object(parser_t *p, int depth)
{
    xs_json_t *obj = node_new(XS_JSON_OBJECT);
    xs_json_t *item = NULL;
    char *key = NULL;
    if (!obj) {
        perr(p, "out of memory");
        return NULL;
    }
    p->pos++; /* '{' */
    skip_ws(p);
    if (p->pos < p->len && p->text[p->pos] == '}') {
        p->pos++;
        return obj;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != '"') {
            perr(p, p->pos >= p->len ? "unterminated object" : "expected string key");
            goto fail;
        }
        size_t klen = 0;
        key = parse_string_raw(p, &klen);
        if (!key)
            goto fail;
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != ':') {
            perr(p, "expected ':'");
            goto fail;
        }
        p->pos++;
        item = parse_value(p, depth);
        if (!item)
            goto fail;
        if (agg_push(obj, key, item) != XS_OK) {
            perr(p, "out of memory");
            goto fail;
        }
        key = NULL;
        item = NULL;
        skip_ws(p);
        if (p->pos >= p->len) {
            perr(p, "unterminated object");
            goto fail;
        }
        if (p->text[p->pos] == '}') {
            p->pos++;
            return obj;
        }
        if (p->text[p->pos] != ',') {
            perr(p, "expected ',' or '}'");
            goto fail;
        }
        p->pos++;
    }
fail:
    free(key);
    xs_json_free(item);
    xs_json_free(obj);
    return NULL;
}

static xs_json_t *parse_value(parser_t *p, int depth)
{
    xs_json_t *v = NULL;
    skip_ws(p);
    if (p->pos >= p->len) {
        perr(p, "unexpected end of input");
        return NULL;
    }
    char c = p->text[p->pos];
    switch (c) {
    case '{':
    case '[':
        if (depth >= XS_JSON_MAX_DEPTH) {
            perr(p, "nesting too deep");
            return NULL;
        }
        return c == '{' ? parse_object(p, depth + 1) : parse_array(p, depth + 1);
    case '"': {
        size_t len = 0;
        char *s = parse_string_raw(p, &len);
        if (!s)
            return NULL;
        v = node_new(XS_JSON_STRING);
        if (!v) {
            free(s);
            perr(p, "out of memory");
            return NULL;
        }
        v->u.str.s = s;
        v->u.str.len = len;
        return v;
    }
    case 't':
    case 'f':
    case 'n':
        if (match_lit(p, "true") || match_lit(p, "false")) {
            v = node_new(XS_JSON_BOOL);
            if (v)
                v->u.b = (c == 't');
        } else if (match_lit(p, "null")) {
            v = node_new(XS_JSON_NULL);
        } else {
            perr(p, "invalid literal");
            return NULL;
        }
        if (!v)
            perr(p, "out of memory");
        return v;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p);
        perr(p, "unexpected character");
        return NULL;
    }
}

/* ======================================================================== */
/* Public API: parse, free, getters                                         */
/* ======================================================================== */

xs_json_t *xs_json_parse(const char *text, size_t len, char *errstr, size_t errstr_size)
{
    parser_t p = {.text = text, .len = len, .errstr = errstr, .errstr_size = errstr_size};
    xs_json_t *root = NULL;
    if (!text && len > 0) {
        xs_err_set(errstr, errstr_size, "line 1 col 1: no input");
        return NULL;
    }
    root = parse_value(&p, 0);
    if (!root)
        return NULL;
    skip_ws(&p);
    if (p.pos != p.len) {
        perr(&p, "trailing characters after JSON value");
        xs_json_free(root);
        return NULL;
    }
    return root;
}

void xs_json_free(xs_json_t *root)
{
    if (!root)
        return;
    switch (root->type) {
    case XS_JSON_NUMBER:
        free(root->u.num.text);
        break;
    case XS_JSON_STRING:
        free(root->u.str.s);
        break;
    case XS_JSON_ARRAY:
    case XS_JSON_OBJECT:
        /* Depth is bounded by XS_JSON_MAX_DEPTH, so recursion is bounded. */
        for (size_t i = 0; i < root->u.agg.n; i++) {
            xs_json_free(root->u.agg.items[i]);
            if (root->u.agg.keys)
                free(root->u.agg.keys[i]);
        }
        free(root->u.agg.items);
        free(root->u.agg.keys);
        break;
    default:
        break;
    }
    free(root);
}

xs_json_type_t xs_json_type(const xs_json_t *v)
{
    return v ? v->type : XS_JSON_NULL;
}

bool xs_json_bool(const xs_json_t *v)
{
    return v && v->type == XS_JSON_BOOL && v->u.b;
}

double xs_json_number(const xs_json_t *v)
{
    return (v && v->type == XS_JSON_NUMBER) ? v->u.num.value : 0.0;
}

const char *xs_json_number_text(const xs_json_t *v)
{
    return (v && v->type == XS_JSON_NUMBER) ? v->u.num.text : NULL;
}

const char *xs_json_string(const xs_json_t *v)
{
    return (v && v->type == XS_JSON_STRING) ? v->u.str.s : NULL;
}

size_t xs_json_string_len(const xs_json_t *v)
{
    return (v && v->type == XS_JSON_STRING) ? v->u.str.len : 0;
}

size_t xs_json_size(const xs_json_t *v)
{
    if (!v || (v->type != XS_JSON_ARRAY && v->type != XS_JSON_OBJECT))
        return 0;
    return v->u.agg.n;
}

const xs_json_t *xs_json_at(const xs_json_t *v, size_t i)
{
    if (!v || (v->type != XS_JSON_ARRAY && v->type != XS_JSON_OBJECT) || i >= v->u.agg.n)
        return NULL;
    return v->u.agg.items[i];
}

const char *xs_json_key_at(const xs_json_t *v, size_t i)
{
    if (!v || v->type != XS_JSON_OBJECT || i >= v->u.agg.n)
        return NULL;
    return v->u.agg.keys[i];
}

const xs_json_t *xs_json_get(const xs_json_t *obj, const char *key)
{
    if (!obj || obj->type != XS_JSON_OBJECT || !key)
        return NULL;
    for (size_t i = 0; i < obj->u.agg.n; i++)
        if (strcmp(obj->u.agg.keys[i], key) == 0)
            return obj->u.agg.items[i];
    return NULL;
}

/* ======================================================================== */
/* Writer                                                                   */
/* ======================================================================== */

/*
 * Escapes '"', '\\' and control characters; other bytes pass through.
 * Malformed UTF-8 bytes are replaced by U+FFFD so the output is always
 * valid JSON (ids from Kafka are arbitrary bytes).
 */
xs_err_t xs_json_write_string(xs_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    xs_err_t err = xs_buf_append_u8(out, '"');
    size_t i = 0;
    while (!err && i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            size_t j = i;
            while (j < len && u[j] >= 0x20 && u[j] != '"' && u[j] != '\\' && u[j] < 0x80)
                j++;
            err = xs_buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_valid_len(u + i, len - i);
            if (k == 0) {
                err = xs_buf_append(out, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                err = xs_buf_append(out, s + i, k);
                i += k;
            }
            continue;
        }
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            n = 6;
            break;
        }
        err = xs_buf_append(out, esc, n);
        i++;
    }
    if (!err)
        err = xs_buf_append_u8(out, '"');
    return err;
}

xs_err_t xs_json_write(xs_buf_t *out, const xs_json_t *v)
{
    xs_err_t err = XS_OK;
    if (!v)
        return XS_ERR_INVALID;
    switch (v->type) {
    case XS_JSON_NULL:
        return xs_buf_append_str(out, "null");
    case XS_JSON_BOOL:
        return xs_buf_append_str(out, v->u.b ? "true" : "false");
    case XS_JSON_NUMBER:
        return xs_buf_append_str(out, v->u.num.text);
    case XS_JSON_STRING:
        return xs_json_write_string(out, v->u.str.s, v->u.str.len);
    case XS_JSON_ARRAY:
    case XS_JSON_OBJECT: {
        bool obj = v->type == XS_JSON_OBJECT;
        err = xs_buf_append_u8(out, obj ? '{' : '[');
        for (size_t i = 0; !err && i < v->u.agg.n; i++) {
            if (i > 0)
                err = xs_buf_append_u8(out, ',');
            if (!err && obj) {
                err = xs_json_write_string(out, v->u.agg.keys[i], strlen(v->u.agg.keys[i]));
                if (!err)
                    err = xs_buf_append_u8(out, ':');
            }
            if (!err)
                err = xs_json_write(out, v->u.agg.items[i]);
        }
        if (!err)
            err = xs_buf_append_u8(out, obj ? '}' : ']');
        return err;
    }
    }
    return XS_ERR_INVALID;
}
