/* log.c: one-line records, text or JSON, each written with one write(2).
 *
 * A record is at most PIPE_BUF (4096) bytes so that the write to a pipe or
 * terminal shared by the gateway's children is atomic. */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/ids.h"

#define RECORD_MAX 4096
#define PROGRAM_MAX 64
/* Events are short identifiers; bounding them keeps the record's head
 * far from RECORD_MAX so only the message is ever cut. */
#define EVENT_MAX 64

/* The one piece of process-wide state log.h documents. */
static struct {
    char program[PROGRAM_MAX];
    enum cm_log_format format;
    enum cm_log_level min_level;
    int fd;
} logger = {"chatmi", CM_LOG_TEXT, CM_LOG_INFO, 2};

void cm_log_init(const char *program, enum cm_log_format format, enum cm_log_level min_level)
{
    snprintf(logger.program, sizeof(logger.program), "%s", program ? program : "chatmi");
    logger.format = format;
    logger.min_level = min_level;
}

void cm_log_set_fd(int fd)
{
    logger.fd = fd;
}

int cm_log_level_parse(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (s == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return CM_LOG_WARN;
    return -1;
}

struct out {
    char *p;
    size_t len, cap; /* cap excludes the room kept back for the record's tail */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    if (n > len || !cm_utf8_valid(s, n))
        return 0;
    return n;
}

/* Appends s as the inside of a JSON string. Invalid UTF-8 becomes U+FFFD so
 * the line stays valid JSON whatever a caller formats into it; an escape is
 * never cut in half by truncation. */
static void put_json_str(struct out *o, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        char esc[8];
        const char *piece;
        size_t n, adv;
        unsigned char c = s[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            piece = esc, n = 2, adv = 1;
        } else if (c == '\n') {
            piece = "\\n", n = 2, adv = 1;
        } else if (c == '\t') {
            piece = "\\t", n = 2, adv = 1;
        } else if (c == '\r') {
            piece = "\\r", n = 2, adv = 1;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            piece = esc, n = 6, adv = 1;
        } else if (c < 0x80) {
            piece = (const char *)s + i, n = 1, adv = 1;
        } else if ((adv = utf8_seq(s + i, len - i)) > 0) {
            piece = (const char *)s + i, n = adv;
        } else {
            piece = "\xEF\xBF\xBD", n = 3, adv = 1;
        }
        if (n > o->cap - o->len)
            return;
        put(o, piece, n);
        i += adv;
    }
}

/* Text records: control characters would split a line, so they are shown
 * as '?'; everything else goes out as given. */
static void put_text(struct out *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len && o->len < o->cap; i++) {
        unsigned char c = (unsigned char)s[i];
        o->p[o->len++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
}

static void format_time(char *buf, size_t buflen)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, buflen - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Appends the fields: whole ones only, each built aside first. */
static void put_fields(struct out *o, const struct cm_log_field *f, size_t n, int json)
{
    if (n == 0)
        return;
    char one[RECORD_MAX];
    int first = 1;
    if (json) {
        if (o->cap - o->len < 12)
            return;
        puts_(o, ",\"fields\":{");
    }
    for (size_t i = 0; i < n; i++) {
        if (f[i].key == NULL)
            continue;
        const char *v = f[i].value ? f[i].value : "";
        struct out t = {one, 0, sizeof(one)};
        if (json) {
            if (!first)
                puts_(&t, ",");
            puts_(&t, "\"");
            put_json_str(&t, f[i].key, strnlen(f[i].key, EVENT_MAX));
            puts_(&t, "\":\"");
            put_json_str(&t, v, strlen(v));
            puts_(&t, "\"");
        } else {
            int quote = *v == '\0' || strpbrk(v, " \t\"=") != NULL;
            puts_(&t, " ");
            put_text(&t, f[i].key, strnlen(f[i].key, EVENT_MAX));
            puts_(&t, quote ? "=\"" : "=");
            put_text(&t, v, strlen(v));
            if (quote)
                puts_(&t, "\"");
        }
        /* Room for this field and the closing brace. */
        if (t.len == t.cap || t.len + (json ? 1 : 0) > o->cap - o->len)
            break;
        put(o, one, t.len);
        first = 0;
    }
    if (json)
        puts_(o, "}");
}

/* The calling thread's own field (cm_log_thread_field); "" key: none. */
static __thread char thread_key[32], thread_value[64];

void cm_log_thread_field(const char *key, const char *value)
{
    if (key == NULL || value == NULL) {
        thread_key[0] = '\0';
        return;
    }
    snprintf(thread_key, sizeof(thread_key), "%s", key);
    snprintf(thread_value, sizeof(thread_value), "%s", value);
}

#define THREAD_FIELDS_MAX 16

static void logv_fields(enum cm_log_level level, const char *event, const struct cm_log_field *fields,
                        size_t nfields, const char *fmt, va_list ap)
{
    struct cm_log_field all[THREAD_FIELDS_MAX + 1];
    if (thread_key[0] != '\0' && nfields <= THREAD_FIELDS_MAX) {
        for (size_t i = 0; i < nfields; i++)
            all[i] = fields[i];
        all[nfields].key = thread_key;
        all[nfields].value = thread_value;
        fields = all;
        nfields++;
    }
    static const char *const text_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    static const char *const json_names[] = {"debug", "info", "warn", "error"};
    char msg[RECORD_MAX];
    char record[RECORD_MAX];
    char when[40];
    char pid[24];
    int saved_errno = errno;

    if (level < logger.min_level)
        return;
    if ((int)level < CM_LOG_DEBUG || level > CM_LOG_ERROR)
        level = CM_LOG_ERROR;
    if (event == NULL)
        event = "log";

    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t msglen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    format_time(when, sizeof(when));
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());

    /* Keep room for the closing `"}` and the newline so a truncated record
     * is still one whole line (and one whole JSON object). */
    struct out o = {record, 0, sizeof(record) - 3};
    if (logger.format == CM_LOG_JSON && nfields > 0)
        o.cap -= 1; /* the fields' closing brace is kept back too */
    if (logger.format == CM_LOG_JSON) {
        puts_(&o, "{\"time\":\"");
        puts_(&o, when);
        puts_(&o, "\",\"level\":\"");
        puts_(&o, json_names[level]);
        puts_(&o, "\",\"program\":\"");
        put_json_str(&o, logger.program, strlen(logger.program));
        puts_(&o, "\",\"pid\":");
        puts_(&o, pid);
        puts_(&o, ",\"event\":\"");
        put_json_str(&o, event, strnlen(event, EVENT_MAX));
        puts_(&o, "\",\"msg\":\"");
        /* The message may be cut; the fields get what it leaves. */
        put_json_str(&o, msg, msglen);
        o.cap += 1;
        puts_(&o, "\"");
        if (nfields > 0) {
            put_fields(&o, fields, nfields, 1);
            o.cap += 1;
        }
        o.cap += 1;
        puts_(&o, "}");
    } else {
        puts_(&o, when);
        puts_(&o, " ");
        puts_(&o, text_names[level]);
        puts_(&o, " ");
        put_text(&o, logger.program, strlen(logger.program));
        puts_(&o, "[");
        puts_(&o, pid);
        puts_(&o, "] ");
        put_text(&o, event, strnlen(event, EVENT_MAX));
        puts_(&o, ": ");
        put_text(&o, msg, msglen);
        put_fields(&o, fields, nfields, 0);
    }
    record[o.len++] = '\n';

    ssize_t w;
    do {
        w = write(logger.fd, record, o.len);
    } while (w < 0 && errno == EINTR);
    errno = saved_errno;
}

void cm_logv(enum cm_log_level level, const char *event, const char *fmt, va_list ap)
{
    logv_fields(level, event, NULL, 0, fmt, ap);
}

void cm_log_fields(enum cm_log_level level, const char *event, const struct cm_log_field *fields, size_t nfields,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logv_fields(level, event, fields, nfields, fmt, ap);
    va_end(ap);
}

void cm_log(enum cm_log_level level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cm_logv(level, event, fmt, ap);
    va_end(ap);
}
