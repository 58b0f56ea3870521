/* test_logs.c: the log records as operators get them: --log-format json
 * gives one JSON object a line with the documented keys, secrets never
 * reach a log, and info level writes nothing per message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

/* Lines of <test dir>/<name>.log written by the program (the harness's
 * own lines start with '#'). */
static int program_lines(const char *name)
{
    char path[512], line[8192];
    snprintf(path, sizeof(path), "%s/%s.log", it_dir(), name);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += line[0] != '#';
    fclose(f);
    return n;
}

/* Program lines of the log holding needle. */
static int program_count(const char *name, const char *needle)
{
    char path[512], line[65536];
    snprintf(path, sizeof(path), "%s/%s.log", it_dir(), name);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += line[0] != '#' && strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Every program line of the log parses as one JSON object with the keys
 * of docs/operations.md. Returns how many there were. */
static int check_json_log(const char *name, const char *program)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.log", it_dir(), name);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED), 0);
    static char line[65536];
    int n = 0, config = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#')
            continue;
        size_t len = strlen(line);
        cr_assert(len > 0 && line[len - 1] == '\n', "%s: a line without its end: %s", name, line);
        json_error_t err;
        json_t *j = json_loadb(line, len - 1, 0, &err);
        cr_assert_not_null(j, "%s: not JSON (%s): %s", name, err.text, line);
        cr_assert(json_is_object(j), "%s: %s", name, line);
        const char *t = json_string_value(json_object_get(j, "time"));
        cr_assert(t != NULL && regexec(&re, t, 0, NULL, 0) == 0, "%s: time is not RFC 3339 UTC with ms: %s", name,
                  line);
        const char *level = json_string_value(json_object_get(j, "level"));
        cr_assert(level != NULL && (strcmp(level, "debug") == 0 || strcmp(level, "info") == 0 ||
                                    strcmp(level, "warn") == 0 || strcmp(level, "error") == 0),
                  "%s: level: %s", name, line);
        cr_assert_str_eq(json_string_value(json_object_get(j, "program")), program, "%s", line);
        cr_assert(json_integer_value(json_object_get(j, "pid")) > 0, "%s: pid: %s", name, line);
        cr_assert(json_string_length(json_object_get(j, "event")) > 0, "%s: event: %s", name, line);
        cr_assert(json_is_string(json_object_get(j, "msg")), "%s: msg: %s", name, line);
        json_t *fields = json_object_get(j, "fields");
        cr_assert(fields == NULL || json_is_object(fields), "%s: fields: %s", name, line);
        if (strcmp(json_string_value(json_object_get(j, "event")), "config") == 0) {
            config++;
            cr_assert(json_is_object(fields), "the config record carries fields: %s", line);
            cr_assert(json_is_string(json_object_get(fields, "redis-url")), "%s", line);
            cr_assert(json_is_string(json_object_get(fields, "log-level")), "%s", line);
            cr_assert(json_is_string(json_object_get(fields, "sources")), "%s", line);
        }
        json_decref(j);
        n++;
    }
    regfree(&re);
    fclose(f);
    cr_assert_eq(config, 1, "%s: %d config records, expected exactly one at start", name, config);
    return n;
}

/* A short chat: a DM both ways and a room. */
static void chat(int port, int rounds)
{
    struct ws *a = it_open(port, "alice", NULL);
    struct ws *b = it_open(port, "bob", NULL);
    for (int i = 0; i < rounds; i++) {
        char id[16];
        snprintf(id, sizeof(id), "a%d", i);
        json_decref(it_dm(a, id, "bob", "hi bob"));
        json_decref(ws_wait_op(b, "message", IT_WAIT));
        snprintf(id, sizeof(id), "b%d", i);
        json_decref(it_dm(b, id, "alice", "hi alice"));
        json_decref(ws_wait_op(a, "message", IT_WAIT));
    }
    ws_free(a);
    ws_free(b);
}

TestSuite(logs, .init = it_redis_init, .fini = it_end, .timeout = 120);

Test(logs, json_lines_have_the_documented_keys)
{
    it_gateway_start(NULL);
    it_worker_start(NULL);
    chat(it_port(), 3);
    /* bad input logged too: a refused handshake (debug) and a bad request */
    struct ws *a = it_open(it_port(), "carol", NULL);
    json_decref(it_req_err(a, json_pack("{s:s,s:s}", "op", "nope", "id", "x"), "bad_request"));
    ws_free(a);
    cr_assert_gt(check_json_log("gateway0", "chatmi-gateway"), 3);
    cr_assert_gt(check_json_log("worker0", "chatmi-worker"), 1);
}

/* The JWT key and the Redis password are given (flags and environment),
 * logged at debug level through a whole chat: neither appears anywhere. */
#define JWT_KEY "jwt-KEY-9f8e7d6c5b4a"
#define REDIS_PW "redisPW-0a1b2c3d4e"

Test(logs, secrets_never_logged)
{
    it_skip_in_cluster("sets requirepass on one Redis and gives the programs a redis:// URL with it");
    char out[1024], port[16];
    snprintf(port, sizeof(port), "%d", it_redis_port());
    const char *set[] = {"CONFIG", "SET", "requirepass", REDIS_PW, NULL};
    cr_assert_eq(it_redis_cli(it_redis_port(), set, out, sizeof(out)), 0, "%s", out);
    char url[256];
    snprintf(url, sizeof(url), "redis://default:" REDIS_PW "@127.0.0.1:%d/0", it_redis_port());

    const char *gw_extra[] = {"--log-level", "debug", NULL};
    struct it_gw_conf c = {.auth = "jwt", .jwt_secret = JWT_KEY, .redis_url = url, .extra = gw_extra};
    int g = it_gateway_start(&c);
    const char *wk_extra[] = {"--redis-url", url, "--log-level", "debug", NULL};
    struct it_worker_conf wc = {.extra = wk_extra};
    it_worker_start(&wc);

    char ta[1024], tb[1024];
    it_jwt(ta, sizeof(ta), JWT_KEY, "alice", it_now_s() + 600, 0);
    it_jwt(tb, sizeof(tb), JWT_KEY, "bob", it_now_s() + 600, 0);
    struct ws *a = ws_open_token(it_gw_port(g), ta, NULL);
    struct ws *b = ws_open_token(it_gw_port(g), tb, NULL);
    cr_assert(a != NULL && b != NULL);
    json_decref(it_dm(a, "1", "bob", "secret-free"));
    json_decref(ws_wait_op(b, "message", IT_WAIT));
    /* a refused token is logged at debug: the key must not be in it either */
    char bad[1024];
    it_jwt(bad, sizeof(bad), "wrong-key", "mallory", it_now_s() + 600, 0);
    cr_assert_null(ws_open_token(it_gw_port(g), bad, NULL));
    ws_free(a);
    ws_free(b);

    /* the config records are there, masked */
    cr_assert(program_count("gateway0", "\"jwt-secret\":\"***\"") >= 1, "the gateway's config record masks the key");
    cr_assert(program_count("gateway0", "\"redis-url\":\"redis://default:***@127.0.0.1:") >= 1,
              "the gateway's config record masks the Redis password");
    cr_assert(program_count("worker0", "\"redis-url\":\"redis://default:***@127.0.0.1:") >= 1,
              "the worker's config record masks the Redis password");
    static const char *const logs[] = {"gateway0", "worker0"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(program_count(logs[i], JWT_KEY), 0, "%s logs the JWT key", logs[i]);
        cr_assert_eq(program_count(logs[i], REDIS_PW), 0, "%s logs the Redis password", logs[i]);
    }
}

/* Info level: the log does not grow with the number of messages. The same
 * scenario at debug level does grow, so the count can tell. */
static int lines_for(int rounds, const char *level)
{
    const char *extra[] = {"--log-level", level, NULL};
    struct it_gw_conf c = {.extra = extra};
    int g = it_gateway_start(&c);
    struct it_worker_conf wc = {.extra = extra};
    it_worker_start(&wc);
    chat(it_gw_port(g), 1); /* warm up: first sessions, subscriptions */
    int before = program_lines("gateway0") + program_lines("worker0");
    chat(it_gw_port(g), rounds);
    return program_lines("gateway0") + program_lines("worker0") - before;
}

Test(logs, info_level_no_line_per_message)
{
    int grew = lines_for(25, "info");
    cr_assert_eq(grew, 0, "50 messages at info level wrote %d log lines", grew);
}

Test(logs, debug_level_does_log_messages)
{
    int grew = lines_for(25, "debug");
    cr_assert_geq(grew, 50, "50 messages at debug level wrote only %d log lines", grew);
}
