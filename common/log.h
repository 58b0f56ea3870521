/* log.h: one-line log records on stderr, as text for people or JSON for
 * CloudWatch and other collectors.
 *
 * The logger has one piece of process-wide state (program name, format,
 * minimum level); cm_log_init() sets all of it, so a test can reset it.
 * A record is written with a single write(2) so lines from the gateway's
 * children never interleave. Never pass a secret to these functions. */
#ifndef CHATMI_COMMON_LOG_H
#define CHATMI_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum cm_log_level { CM_LOG_DEBUG = 0, CM_LOG_INFO, CM_LOG_WARN, CM_LOG_ERROR };
enum cm_log_format { CM_LOG_TEXT = 0, CM_LOG_JSON };

/* Sets the program name shown in every record (copied), the format and the
 * lowest level written. May be called again (after fork, in tests). */
void cm_log_init(const char *program, enum cm_log_format format, enum cm_log_level min_level);

/* Redirects records to fd (default 2). For tests. */
void cm_log_set_fd(int fd);

/* Writes one record. `event` is a short stable identifier for the kind of
 * record ("listen", "child_exit", "redis_error"); the rest is a printf-style
 * human message. Text:  2026-11-23T08:59:05.123Z INFO chatmi-gateway[123] listen: message
 * JSON: {"time":"...","level":"info","program":"...","pid":123,"event":"listen","msg":"..."}
 * Records longer than 4 KiB are truncated. */
void cm_log(enum cm_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cm_logv(enum cm_log_level level, const char *event, const char *fmt, va_list ap);

/* A key=value pair attached to a record. Keys are short identifiers;
 * values any text (escaped as needed). */
struct cm_log_field {
    const char *key;
    const char *value;
};

/* cm_log() with fields: JSON gets "fields":{"key":"value",...} after "msg";
 * text gets ` key=value` after the message (a value with blanks or quotes
 * in double quotes). Fields that no longer fit in the record are left out
 * whole (the record stays valid JSON). */
void cm_log_fields(enum cm_log_level level, const char *event, const struct cm_log_field *fields, size_t nfields,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Attaches one field (key=value, both copied; at most 31 and 63 bytes) to
 * every record the calling thread writes from now on, after the record's
 * own fields: a worker lane's partition. key NULL removes it. */
void cm_log_thread_field(const char *key, const char *value);

/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int cm_log_level_parse(const char *s);

#define cm_debug(ev, ...) cm_log(CM_LOG_DEBUG, ev, __VA_ARGS__)
#define cm_info(ev, ...) cm_log(CM_LOG_INFO, ev, __VA_ARGS__)
#define cm_warn(ev, ...) cm_log(CM_LOG_WARN, ev, __VA_ARGS__)
#define cm_error(ev, ...) cm_log(CM_LOG_ERROR, ev, __VA_ARGS__)

#endif
