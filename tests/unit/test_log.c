/* Unit tests: common/log.c, reading records back through a pipe. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int fds[2];

static void setup(void)
{
    cr_assert_eq(pipe(fds), 0);
    /* non-blocking read end: a missing record reads as empty, not a hang */
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 16);
    cm_log_set_fd(fds[1]);
}

static void teardown(void)
{
    close(fds[0]);
    close(fds[1]);
}

/* Reads what is in the pipe; each cm_log call must have produced whole lines. */
static size_t drain(char *buf, size_t cap)
{
    ssize_t n = read(fds[0], buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static json_t *one_json_record(char *buf, size_t cap)
{
    size_t n = drain(buf, cap);
    cr_assert_gt(n, 0, "nothing written");
    cr_assert_eq(buf[n - 1], '\n', "record does not end the line");
    cr_assert_null(memchr(buf, '\n', n - 1), "record spans lines: %s", buf);
    json_error_t err;
    json_t *j = json_loadb(buf, n - 1, 0, &err);
    cr_assert_not_null(j, "not JSON (%s): %s", err.text, buf);
    cr_assert(json_is_object(j));
    return j;
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, json_fields)
{
    char buf[8192];
    cm_log_init("chatmi-test", CM_LOG_JSON, CM_LOG_DEBUG);
    cm_info("listen", "listening on %s:%d", "0.0.0.0", 8080);
    json_t *j = one_json_record(buf, sizeof(buf));
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(j, "program")), "chatmi-test");
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "listen");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "listening on 0.0.0.0:8080");
    cr_assert_eq(json_integer_value(json_object_get(j, "pid")), getpid());
    const char *t = json_string_value(json_object_get(j, "time"));
    cr_assert_not_null(t);
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED), 0);
    cr_assert_eq(regexec(&re, t, 0, NULL, 0), 0, "bad time %s", t);
    regfree(&re);
    json_decref(j);
}

Test(log, json_escapes_hostile_messages)
{
    char buf[8192];
    cm_log_init("prog\"with\\quotes", CM_LOG_JSON, CM_LOG_DEBUG);
    const char *nasty = "quote\" backslash\\ newline\n tab\t ctl\x01\x1f del\x7f utf8 \xc3\xa9 bad \xff\xc3 end";
    cm_warn("ev\"ent", "%s", nasty);
    json_t *j = one_json_record(buf, sizeof(buf));
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(j, "program")), "prog\"with\\quotes");
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "ev\"ent");
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")),
                     "quote\" backslash\\ newline\n tab\t ctl\x01\x1f del\x7f utf8 \xc3\xa9 bad \xef\xbf\xbd\xef\xbf\xbd end");
    json_decref(j);
}

Test(log, json_truncated_record_is_still_one_valid_line)
{
    static char big[10000], buf[16384];
    cm_log_init("p", CM_LOG_JSON, CM_LOG_DEBUG);
    /* quotes expand to two bytes each: truncation must not split an escape */
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = i % 2 ? '"' : '\xe2';
    big[sizeof(big) - 1] = '\0';
    cm_error("big", "%s", big);
    json_t *j = one_json_record(buf, sizeof(buf));
    cr_assert_leq(strlen(buf), 4096);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "error");
    cr_assert_gt(json_string_length(json_object_get(j, "msg")), 1000);
    json_decref(j);

    memset(big, 'x', sizeof(big) - 1);
    cm_error("big", "%s", big);
    j = one_json_record(buf, sizeof(buf));
    cr_assert_eq(strlen(buf), 4096);
    json_decref(j);
}

Test(log, text_format)
{
    char buf[8192];
    cm_log_init("chatmi-gateway", CM_LOG_TEXT, CM_LOG_DEBUG);
    cm_error("child_exit", "child %d exited\nwith a newline", 3);
    size_t n = drain(buf, sizeof(buf));
    cr_assert_gt(n, 0);
    cr_assert_eq(buf[n - 1], '\n');
    cr_assert_null(memchr(buf, '\n', n - 1), "%s", buf);
    char want[128];
    snprintf(want, sizeof(want), " ERROR chatmi-gateway[%d] child_exit: child 3 exited?with a newline\n", (int)getpid());
    cr_assert_not_null(strstr(buf, want), "%s", buf);
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ", REG_EXTENDED), 0);
    cr_assert_eq(regexec(&re, buf, 0, NULL, 0), 0, "%s", buf);
    regfree(&re);
}

Test(log, level_filter)
{
    char buf[8192];
    cm_log_init("p", CM_LOG_TEXT, CM_LOG_WARN);
    cm_debug("d", "hidden");
    cm_info("i", "hidden");
    cr_assert_eq(drain(buf, sizeof(buf)), 0, "%s", buf);
    cm_warn("w", "shown");
    drain(buf, sizeof(buf));
    cr_assert_not_null(strstr(buf, "WARN p["), "%s", buf);
    /* re-init changes everything at once */
    cm_log_init("q", CM_LOG_JSON, CM_LOG_DEBUG);
    cm_debug("d", "now shown");
    json_t *j = one_json_record(buf, sizeof(buf));
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "debug");
    cr_assert_str_eq(json_string_value(json_object_get(j, "program")), "q");
    json_decref(j);
}

Test(log, level_parse)
{
    cr_assert_eq(cm_log_level_parse("debug"), CM_LOG_DEBUG);
    cr_assert_eq(cm_log_level_parse("info"), CM_LOG_INFO);
    cr_assert_eq(cm_log_level_parse("warn"), CM_LOG_WARN);
    cr_assert_eq(cm_log_level_parse("error"), CM_LOG_ERROR);
    cr_assert_eq(cm_log_level_parse("INFO"), CM_LOG_INFO);
    cr_assert_eq(cm_log_level_parse("verbose"), -1);
    cr_assert_eq(cm_log_level_parse(""), -1);
    cr_assert_eq(cm_log_level_parse(NULL), -1);
}

Test(log, many_records_each_one_line)
{
    char buf[65536];
    cm_log_init("p", CM_LOG_JSON, CM_LOG_DEBUG);
    for (int i = 0; i < 50; i++)
        cm_info("n", "record %d", i);
    size_t n = drain(buf, sizeof(buf));
    int lines = 0;
    for (char *line = buf; line < buf + n;) {
        char *nl = memchr(line, '\n', (size_t)(buf + n - line));
        cr_assert_not_null(nl);
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert_not_null(j, "line %d not JSON", lines);
        char want[32];
        snprintf(want, sizeof(want), "record %d", lines);
        cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), want);
        json_decref(j);
        lines++;
        line = nl + 1;
    }
    cr_assert_eq(lines, 50);
}

Test(log, json_record_fields)
{
    char buf[8192];
    cm_log_init("p", CM_LOG_JSON, CM_LOG_DEBUG);
    const struct cm_log_field f[] = {{"listen", "0.0.0.0:8080"}, {"odd\"key", "va\"l\nue"}, {"empty", NULL}};
    cm_log_fields(CM_LOG_INFO, "config", f, 3, "effective %s", "configuration");
    json_t *j = one_json_record(buf, sizeof(buf));
    cr_assert_str_eq(json_string_value(json_object_get(j, "msg")), "effective configuration");
    json_t *fields = json_object_get(j, "fields");
    cr_assert(json_is_object(fields), "%s", buf);
    cr_assert_str_eq(json_string_value(json_object_get(fields, "listen")), "0.0.0.0:8080");
    cr_assert_str_eq(json_string_value(json_object_get(fields, "odd\"key")), "va\"l\nue");
    cr_assert_str_eq(json_string_value(json_object_get(fields, "empty")), "");
    json_decref(j);
}

Test(log, text_record_fields)
{
    char buf[8192];
    cm_log_init("p", CM_LOG_TEXT, CM_LOG_DEBUG);
    const struct cm_log_field f[] = {{"a", "1"}, {"b", "two words"}};
    cm_log_fields(CM_LOG_WARN, "ev", f, 2, "msg");
    drain(buf, sizeof(buf));
    cr_assert_not_null(strstr(buf, " WARN p["), "%s", buf);
    cr_assert_not_null(strstr(buf, "] ev: msg a=1 b=\"two words\"\n"), "%s", buf);
}

/* Fields that do not fit are left out whole; the record stays one JSON line. */
Test(log, json_fields_truncated_stay_valid)
{
    static char big[3000], buf[16384];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cm_log_init("p", CM_LOG_JSON, CM_LOG_DEBUG);
    const struct cm_log_field f[] = {{"first", big}, {"second", big}, {"third", "small"}};
    for (size_t msglen = 0; msglen < 4200; msglen += 700) {
        char msg[4200];
        memset(msg, 'm', msglen);
        msg[msglen] = '\0';
        cm_log_fields(CM_LOG_INFO, "ev", f, 3, "%s", msg);
        json_t *j = one_json_record(buf, sizeof(buf));
        cr_assert_leq(strlen(buf), 4096);
        json_t *fields = json_object_get(j, "fields");
        if (fields != NULL) {
            const char *first = json_string_value(json_object_get(fields, "first"));
            cr_assert(first == NULL || strlen(first) == sizeof(big) - 1, "a field was cut");
            cr_assert_null(json_object_get(fields, "second"), "two 3 KB fields in a 4 KB record");
        }
        json_decref(j);
    }
}
