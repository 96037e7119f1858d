/*
 * kc_log.h - leveled, timestamped log lines on stderr.
 *
 * One line per event: "2026-01-02T03:04:05.678Z INFO  message". The level is
 * process-wide (the daemon has one log), set once from -v flags.
 */
#ifndef KC_LOG_H
#define KC_LOG_H

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
    LOG_TRACE = 4,
};

/* Set the highest level written (default LOG_INFO). */
void log_set_level(int level);

/* True if lines at level are written (to skip building costly ones). */
int log_enabled(int level);

/* Write one line at level, printf style; a newline is added. */
void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
