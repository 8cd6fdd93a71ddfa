/*
 * cli_common.c — helpers shared by the CLI commands (see cli_common.h).
 *
 * The stop flag is a volatile sig_atomic_t written only by the signal
 * handler and xs_cli_request_stop(); everything else just reads it. The
 * handlers are installed without SA_RESTART so a blocking call returns
 * EINTR and the command notices the flag promptly.
 */
#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ======================================================================== */
/* Signals                                                                  */
/* ======================================================================== */

static volatile sig_atomic_t stop_flag = 0;

static void on_stop_signal(int sig)
{
    if (stop_flag) {
        /* Second signal: give the default action back to the operator. */
        signal(sig, SIG_DFL);
        return;
    }
    stop_flag = 1;
}

void xs_cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool xs_cli_stopping(void)
{
    return stop_flag != 0;
}

void xs_cli_request_stop(void)
{
    stop_flag = 1;
}

/* ======================================================================== */
/* Time                                                                     */
/* ======================================================================== */

int64_t xs_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void xs_cli_sleep_ms(int ms)
{
    int64_t deadline = xs_cli_now_ms() + ms;
    while (!xs_cli_stopping()) {
        int64_t left = deadline - xs_cli_now_ms();
        if (left <= 0)
            break;
        if (left > 50)
            left = 50;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ======================================================================== */
/* Numbers                                                                  */
/* ======================================================================== */

bool xs_cli_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out,
                      char *errstr, size_t errstr_size)
{
    char *end = NULL;
    long long v;
    if (!s || !*s) {
        xs_err_set(errstr, errstr_size, "%s: missing number", opt);
        return false;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s) {
        xs_err_set(errstr, errstr_size, "%s: '%s' is not an integer", opt, s);
        return false;
    }
    if (v < min || v > max) {
        xs_err_set(errstr, errstr_size, "%s: %lld is out of range [%" PRId64 ", %" PRId64 "]", opt,
                   v, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool xs_cli_parse_u64(const char *opt, const char *s, uint64_t *out, char *errstr,
                      size_t errstr_size)
{
    char *end = NULL;
    unsigned long long v;
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s)) {
        xs_err_set(errstr, errstr_size, "%s: '%s' is not a non-negative integer", opt, s ? s : "");
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end) {
        xs_err_set(errstr, errstr_size, "%s: '%s' is not a non-negative integer", opt, s);
        return false;
    }
    *out = v;
    return true;
}

bool xs_cli_parse_int(const char *opt, const char *s, int min, int max, int *out, char *errstr,
                      size_t errstr_size)
{
    int64_t v;
    if (!xs_cli_parse_i64(opt, s, min, max, &v, errstr, errstr_size))
        return false;
    *out = (int)v;
    return true;
}

/* ======================================================================== */
/* String lists                                                             */
/* ======================================================================== */

static xs_err_t strlist_push(xs_cli_strlist_t *list, char *owned)
{
    if (!owned)
        return XS_ERR_NOMEM;
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        char **grown = realloc(list->v, cap * sizeof(*grown));
        if (!grown) {
            free(owned);
            return XS_ERR_NOMEM;
        }
        list->v = grown;
        list->cap = cap;
    }
    list->v[list->n++] = owned;
    return XS_OK;
}

xs_err_t xs_cli_strlist_add(xs_cli_strlist_t *list, const char *s)
{
    return strlist_push(list, xs_str_dup(s ? s : ""));
}

xs_err_t xs_cli_strlist_split(xs_cli_strlist_t *list, const char *s)
{
    const char *p = s;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        xs_err_t err;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (e > b && (err = strlist_push(list, xs_str_ndup(b, (size_t)(e - b)))) != XS_OK)
            return err;
        p = comma ? comma + 1 : end;
    }
    return XS_OK;
}

void xs_cli_strlist_free(xs_cli_strlist_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i]);
    free(list->v);
    memset(list, 0, sizeof(*list));
}

/* ======================================================================== */
/* -X key=value                                                             */
/* ======================================================================== */

xs_err_t xs_cli_kvs_add(xs_cli_kvs_t *kvs, const char *arg, char *errstr, size_t errstr_size)
{
    const char *eq = arg ? strchr(arg, '=') : NULL;
    char *copy = NULL;

    if (!eq || eq == arg) {
        xs_err_set(errstr, errstr_size, "-X: expected key=value, got '%s'", arg ? arg : "");
        return XS_ERR_INVALID;
    }
    if (kvs->n == kvs->cap) {
        size_t cap = kvs->cap ? kvs->cap * 2 : 8;
        xs_kv_t *grown = realloc(kvs->kv, cap * sizeof(*grown));
        if (!grown)
            return XS_ERR_NOMEM;
        kvs->kv = grown;
        kvs->cap = cap;
    }
    /* One allocation "key\0value": key points at its start, value after. */
    copy = xs_str_dup(arg);
    if (!copy)
        return XS_ERR_NOMEM;
    copy[eq - arg] = '\0';
    kvs->kv[kvs->n].key = copy;
    kvs->kv[kvs->n].value = copy + (eq - arg) + 1;
    kvs->n++;
    return XS_OK;
}

void xs_cli_kvs_free(xs_cli_kvs_t *kvs)
{
    for (size_t i = 0; i < kvs->n; i++)
        free((char *)kvs->kv[i].key);
    free(kvs->kv);
    memset(kvs, 0, sizeof(*kvs));
}

/* ======================================================================== */
/* Bootstrap servers                                                        */
/* ======================================================================== */

static xs_err_t read_first_line(const char *path, char **out, char *errstr, size_t errstr_size)
{
    FILE *f = NULL;
    char line[4096];
    char *b = line, *e = NULL;
    xs_err_t ret = XS_OK;

    f = fopen(path, "r");
    if (!f) {
        xs_err_set(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? XS_ERR_NOT_FOUND : XS_ERR_IO;
    }
    if (!fgets(line, sizeof(line), f)) {
        xs_err_set(errstr, errstr_size, "%s: empty bootstrap file", path);
        ret = XS_ERR_CONFIG;
        goto out;
    }
    while (isspace((unsigned char)*b))
        b++;
    e = b + strlen(b);
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    if (e == b) {
        xs_err_set(errstr, errstr_size, "%s: empty bootstrap file", path);
        ret = XS_ERR_CONFIG;
        goto out;
    }
    *out = xs_str_ndup(b, (size_t)(e - b));
    if (!*out)
        ret = XS_ERR_NOMEM;

out:
    fclose(f);
    return ret;
}

xs_err_t xs_cli_bootstrap(const char *bootstrap, const char *file, int wait_ms, char **out,
                          char *errstr, size_t errstr_size)
{
    int64_t deadline = xs_cli_now_ms() + (wait_ms > 0 ? wait_ms : 0);
    xs_err_t err;

    *out = NULL;
    if ((bootstrap != NULL) == (file != NULL)) {
        xs_err_set(errstr, errstr_size, "give exactly one of --bootstrap and --bootstrap-file");
        return XS_ERR_INVALID;
    }
    if (bootstrap) {
        if (!*bootstrap) {
            xs_err_set(errstr, errstr_size, "--bootstrap: empty");
            return XS_ERR_INVALID;
        }
        *out = xs_str_dup(bootstrap);
        return *out ? XS_OK : XS_ERR_NOMEM;
    }
    for (;;) {
        err = read_first_line(file, out, errstr, errstr_size);
        if (err != XS_ERR_NOT_FOUND || xs_cli_now_ms() >= deadline || xs_cli_stopping())
            return err;
        xs_cli_sleep_ms(100);
    }
}

/* ======================================================================== */
/* Files                                                                    */
/* ======================================================================== */

xs_err_t xs_cli_write_file_atomic(const char *path, const void *data, size_t len, char *errstr,
                                  size_t errstr_size)
{
    xs_buf_t tmp = {0};
    const char *p = data;
    size_t left = len;
    int fd = -1;
    xs_err_t ret = XS_OK;

    if (xs_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid()) != XS_OK) {
        ret = XS_ERR_NOMEM;
        goto out;
    }
    fd = open((const char *)tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        xs_err_set(errstr, errstr_size, "%s: %s", (const char *)tmp.data, strerror(errno));
        ret = XS_ERR_IO;
        goto out;
    }
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            xs_err_set(errstr, errstr_size, "%s: write: %s", (const char *)tmp.data,
                       strerror(errno));
            ret = XS_ERR_IO;
            goto out;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        xs_err_set(errstr, errstr_size, "%s: fsync: %s", (const char *)tmp.data, strerror(errno));
        ret = XS_ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        xs_err_set(errstr, errstr_size, "%s: close: %s", (const char *)tmp.data, strerror(errno));
        ret = XS_ERR_IO;
        goto out;
    }
    fd = -1;
    if (rename((const char *)tmp.data, path) != 0) {
        xs_err_set(errstr, errstr_size, "rename %s -> %s: %s", (const char *)tmp.data, path,
                   strerror(errno));
        ret = XS_ERR_IO;
        goto out;
    }

out:
    if (fd >= 0)
        close(fd);
    if (ret != XS_OK && tmp.data)
        unlink((const char *)tmp.data);
    xs_buf_free(&tmp);
    return ret;
}
