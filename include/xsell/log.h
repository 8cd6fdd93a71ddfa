/*
 * xsell — logging: one line per event of interest, to stderr, as logfmt
 *   2026-11-21T08:35:33.123Z level=info msg="worker started" key=value ...
 * or, with log.format = json, one JSON object per line
 *   {"ts":"2026-11-21T08:35:33.123Z","level":"info","msg":"worker started","key":"value",...}
 * Callers pass the key=value fields already formatted in `fmt` (a value in
 * quotes when it may hold spaces); values are escaped when the line is
 * written, whatever they hold (log.c says how the fields are read back).
 */
#ifndef XSELL_LOG_H
#define XSELL_LOG_H

#include <stddef.h>

typedef enum xs_log_level {
    XS_LOG_DEBUG = 0,
    XS_LOG_INFO,
    XS_LOG_WARN,
    XS_LOG_ERROR,
} xs_log_level_t;

void xs_log_set_level(xs_log_level_t level);
xs_log_level_t xs_log_get_level(void);
/* "debug"/"info"/"warn"/"error" -> level; -1 when unknown. */
int xs_log_level_from_name(const char *name);

typedef enum xs_log_format {
    XS_LOG_LOGFMT = 0,
    XS_LOG_JSON,
} xs_log_format_t;

void xs_log_set_format(xs_log_format_t format);
/* "logfmt"/"json" -> format; -1 when unknown. */
int xs_log_format_from_name(const char *name);

/*
 * One line (without its newline) into buf, NUL-terminated when cap > 0;
 * returns the length it needed (as snprintf). fields: the callers'
 * `key=value key="value"` text, or NULL.
 */
size_t xs_log_render(char *buf, size_t cap, xs_log_format_t fmt, const char *ts, const char *level,
                     const char *msg, const char *fields);

/* msg is quoted; fmt (may be NULL) supplies the extra key=value fields. */
void xs_log(xs_log_level_t level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define XS_DEBUG(msg, ...) xs_log(XS_LOG_DEBUG, msg, __VA_ARGS__)
#define XS_INFO(msg, ...) xs_log(XS_LOG_INFO, msg, __VA_ARGS__)
#define XS_WARN(msg, ...) xs_log(XS_LOG_WARN, msg, __VA_ARGS__)
#define XS_ERROR(msg, ...) xs_log(XS_LOG_ERROR, msg, __VA_ARGS__)

#endif
