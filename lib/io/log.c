/*
 * log.c — one line per event of interest on stderr, logfmt or JSON (see
 * include/xsell/log.h).
 *
 * Callers format their fields with printf as `key=value key2="value"`, and
 * a value may hold anything (an error from a library, a path, an id from a
 * message): quotes, backslashes, newlines, '='. The fields are therefore
 * parsed back before they are written: a key is [A-Za-z0-9_.-]+ followed by
 * '='; a value is either bare (up to the next space) or quoted, and a quoted
 * value ends at the last '"' that is followed by the end of the fields or by
 * ` key=`. Each value is then written escaped: in logfmt, quoted (when the
 * caller quoted it, or when it holds a space, '=', '"', '\' or a control
 * character) with \" \\ \n \r \t and \u00XX; in JSON as a string, or as a
 * number when it is a bare number. Bytes of a value that is not valid UTF-8
 * are written as '?'.
 */
#include "xsell/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xsell/common.h"

static xs_log_level_t log_level = XS_LOG_INFO;
static xs_log_format_t log_format = XS_LOG_LOGFMT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void xs_log_set_level(xs_log_level_t level)
{
    log_level = level;
}

xs_log_level_t xs_log_get_level(void)
{
    return log_level;
}

int xs_log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void xs_log_set_format(xs_log_format_t format)
{
    log_format = format;
}

int xs_log_format_from_name(const char *name)
{
    if (name && !strcmp(name, "logfmt"))
        return XS_LOG_LOGFMT;
    if (name && !strcmp(name, "json"))
        return XS_LOG_JSON;
    return -1;
}

/* ---- rendering ------------------------------------------------------------------------- */

typedef struct out {
    char *p;
    size_t cap, n;
} out_t;

static void put_c(out_t *o, char c)
{
    if (o->n + 1 < o->cap)
        o->p[o->n] = c;
    o->n++;
}

static void put_s(out_t *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        put_c(o, s[i]);
}

static bool is_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* True when s[i..] is `key=` (a key then '='). */
static bool key_at(const char *s, size_t len, size_t i)
{
    size_t j = i;
    while (j < len && is_key_char(s[j]))
        j++;
    return j > i && j < len && s[j] == '=';
}

static bool needs_quotes(const char *v, size_t len)
{
    if (!len)
        return true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* The escaped body of a quoted value (logfmt and JSON share the escapes). */
static void put_escaped(out_t *o, const char *v, size_t len)
{
    bool utf8 = xs_str_utf8_valid(v, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        char u[8];
        switch (c) {
        case '"':
            put_s(o, "\\\"", 2);
            break;
        case '\\':
            put_s(o, "\\\\", 2);
            break;
        case '\n':
            put_s(o, "\\n", 2);
            break;
        case '\r':
            put_s(o, "\\r", 2);
            break;
        case '\t':
            put_s(o, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(u, sizeof(u), "\\u%04x", c);
                put_s(o, u, 6);
            } else if (c >= 0x80 && !utf8) {
                put_c(o, '?');
            } else {
                put_c(o, (char)c);
            }
        }
    }
}

static bool is_number(const char *v, size_t len)
{
    if (!len || len > 40)
        return false;
    char buf[48], *end = NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    if (!(isdigit((unsigned char)buf[0]) ||
          (buf[0] == '-' && len > 1 && isdigit((unsigned char)buf[1]))))
        return false;
    if (buf[0] == '0' && len > 1 && isdigit((unsigned char)buf[1]))
        return false; /* leading zeros are not JSON */
    if (buf[0] == '-' && buf[1] == '0' && len > 2 && isdigit((unsigned char)buf[2]))
        return false;
    strtod(buf, &end);
    return end && *end == '\0' && !strpbrk(buf, "xXpPiInN");
}

static void put_value(out_t *o, xs_log_format_t fmt, const char *v, size_t len, bool quoted)
{
    if (fmt == XS_LOG_JSON) {
        if (!quoted && is_number(v, len)) {
            put_s(o, v, len);
            return;
        }
    } else if (!quoted && !needs_quotes(v, len)) {
        put_s(o, v, len);
        return;
    }
    put_c(o, '"');
    put_escaped(o, v, len);
    put_c(o, '"');
}

static void put_field(out_t *o, xs_log_format_t fmt, const char *k, size_t klen, const char *v,
                      size_t vlen, bool quoted)
{
    if (fmt == XS_LOG_JSON) {
        put_s(o, ",\"", 2);
        put_escaped(o, k, klen);
        put_s(o, "\":", 2);
    } else {
        put_c(o, ' ');
        put_s(o, k, klen);
        put_c(o, '=');
    }
    put_value(o, fmt, v, vlen, quoted);
}

size_t xs_log_render(char *buf, size_t cap, xs_log_format_t fmt, const char *ts, const char *level,
                     const char *msg, const char *fields)
{
    out_t o = {buf, cap, 0};
    if (fmt == XS_LOG_JSON) {
        put_s(&o, "{\"ts\":\"", 7);
        put_escaped(&o, ts, strlen(ts));
        put_s(&o, "\",\"level\":\"", 11);
        put_escaped(&o, level, strlen(level));
        put_s(&o, "\",\"msg\":", 8);
        put_value(&o, fmt, msg, strlen(msg), true);
    } else {
        put_s(&o, ts, strlen(ts));
        put_s(&o, " level=", 7);
        put_s(&o, level, strlen(level));
        put_s(&o, " msg=", 5);
        put_value(&o, fmt, msg, strlen(msg), true);
    }
    size_t len = fields ? strlen(fields) : 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && fields[i] == ' ')
            i++;
        if (i >= len)
            break;
        size_t k0 = i;
        while (i < len && is_key_char(fields[i]))
            i++;
        if (i == k0 || i >= len || fields[i] != '=') {
            /* not `key=`: the rest of the text as one value of key "text" */
            put_field(&o, fmt, "text", 4, fields + k0, len - k0, true);
            break;
        }
        size_t klen = i - k0;
        i++; /* '=' */
        if (i < len && fields[i] == '"') {
            size_t v0 = i + 1, end = len;
            /* the last '"' before ` key=` or the end */
            for (size_t j = v0; j < len; j++)
                if (fields[j] == '"' &&
                    (j + 1 == len || (fields[j + 1] == ' ' && key_at(fields, len, j + 2)))) {
                    end = j;
                    break;
                }
            if (end == len && len > v0 && fields[len - 1] == '"')
                end = len - 1;
            put_field(&o, fmt, fields + k0, klen, fields + v0, end - v0, true);
            i = end < len ? end + 1 : len;
        } else {
            size_t v0 = i;
            while (i < len && fields[i] != ' ')
                i++;
            put_field(&o, fmt, fields + k0, klen, fields + v0, i - v0, false);
        }
    }
    if (fmt == XS_LOG_JSON)
        put_c(&o, '}');
    if (cap)
        buf[o.n < cap ? o.n : cap - 1] = '\0';
    return o.n;
}

void xs_log(xs_log_level_t level, const char *msg, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char fields[2048] = "", ts[96], line[4096];
    struct timespec tsp;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &tsp);
    gmtime_r(&tsp.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tsp.tv_nsec / 1000000);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fields, sizeof(fields), fmt, ap);
        va_end(ap);
    }
    size_t n =
        xs_log_render(line, sizeof(line) - 1, log_format, ts, level_names[level], msg, fields);
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2; /* cut (a JSON line then lacks its end; 4 KiB is rare) */
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}
