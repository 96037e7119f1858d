/*
 * kc_log.c - log lines with a UTC timestamp and a level, on stderr.
 */
#include "kc_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* The only process-wide state of the daemon: a log goes to one stderr. */
static int log_level = LOG_INFO;

static const char *const level_names[] = {
    "ERROR", "WARN ", "INFO ", "DEBUG", "TRACE",
};

void log_set_level(int level)
{
    if (level < LOG_ERROR)
        level = LOG_ERROR;
    if (level > LOG_TRACE)
        level = LOG_TRACE;
    log_level = level;
}

int log_enabled(int level)
{
    return level <= log_level;
}

void log_write(int level, const char *fmt, ...)
{
    char line[1024], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;
    int n;

    if (!log_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, sizeof(line), "%s.%03ldZ %s ", ts,
                 now.tv_nsec / 1000000, level_names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* one fputs per line so concurrent processes do not interleave words */
    fprintf(stderr, "%s\n", line);
}
