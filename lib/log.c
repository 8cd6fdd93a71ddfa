/*
 * log.c — key=value log lines on stderr (see include/xsell/log.h).
 */
#include "xsell/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static xs_log_level_t log_level = XS_LOG_INFO;
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

void xs_log(xs_log_level_t level, const char *msg, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], msg);
    if (n < 0)
        return;
    if (fmt && *fmt && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}
