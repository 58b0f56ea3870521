/* test_emf.c: the worker's --emf records (CloudWatch Embedded Metric
 * Format): one JSON object a line on stdout, with the queue depths read
 * from Redis, shaped as the EMF specification requires (every metric a
 * number at the root, every dimension key a string at the root, the
 * timestamp in milliseconds). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "itest.h"

/* redis-cli next to the redis-server under test. */
static const char *redis_cli(char *buf, size_t len)
{
    const char *srv = getenv("REDIS_SERVER");
    const char *slash = srv != NULL ? strrchr(srv, '/') : NULL;
    if (slash == NULL)
        snprintf(buf, len, "/usr/bin/redis-cli");
    else
        snprintf(buf, len, "%.*s/redis-cli", (int)(slash - srv), srv);
    return buf;
}

static void rpush_inbound(int n)
{
    char cli[PATH_MAX], port[16], out[4096];
    snprintf(port, sizeof(port), "%d", it_redis_port());
    const char *argv[8 + 64] = {redis_cli(cli, sizeof(cli)), "-h", "127.0.0.1", "-p", port, "RPUSH",
                                "chatmi:{q}:inbound"};
    int k = 7;
    for (int i = 0; i < n && i < 64; i++)
        argv[k++] = "not-an-envelope";
    argv[k] = NULL;
    int st = 0;
    cr_assert_eq(it_run(argv, NULL, it_ms(5000), out, sizeof(out), &st), 0, "redis-cli did not finish");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "redis-cli RPUSH failed: %s", out);
}

/* The first EMF record in worker idx's log (new reference), waiting up to timeout_ms. */
static json_t *first_emf_record(int idx, int timeout_ms)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/worker%d.log", it_dir(), idx);
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        FILE *f = fopen(path, "re");
        char line[8192];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            if (strstr(line, "\"_aws\"") == NULL)
                continue;
            fclose(f);
            json_error_t e;
            json_t *v = json_loads(line, 0, &e);
            cr_assert_not_null(v, "an EMF line is not JSON (%s): %s", e.text, line);
            return v;
        }
        if (f != NULL)
            fclose(f);
        if (it_mono_ms() >= deadline)
            return NULL;
        it_pause_ms(50);
    }
}

/* Checks the EMF specification's structural rules on record v. */
static void assert_emf_shape(json_t *v, const char *ns)
{
    cr_assert(json_is_object(v), "%s", jdump(v));
    json_t *aws = json_object_get(v, "_aws");
    cr_assert(json_is_object(aws), "no _aws object: %s", jdump(v));
    json_t *ts = json_object_get(aws, "Timestamp");
    cr_assert(json_is_integer(ts), "_aws.Timestamp is not an integer: %s", jdump(v));
    int64_t skew = json_integer_value(ts) - it_now_ms();
    cr_assert(skew > -60000 && skew < 60000, "_aws.Timestamp is not milliseconds of now: %s", jdump(v));
    json_t *directives = json_object_get(aws, "CloudWatchMetrics");
    cr_assert(json_is_array(directives) && json_array_size(directives) >= 1, "%s", jdump(v));
    size_t i;
    json_t *d;
    json_array_foreach(directives, i, d) {
        cr_assert_str_eq(js(d, "Namespace"), ns, "namespace: %s", jdump(d));
        json_t *dims = json_object_get(d, "Dimensions");
        cr_assert(json_is_array(dims), "Dimensions is not an array: %s", jdump(d));
        size_t j;
        json_t *set;
        json_array_foreach(dims, j, set) {
            cr_assert(json_is_array(set) && json_array_size(set) <= 30, "a dimension set: %s", jdump(d));
            size_t k;
            json_t *key;
            json_array_foreach(set, k, key) {
                cr_assert(json_is_string(key), "%s", jdump(d));
                cr_assert(json_is_string(json_object_get(v, json_string_value(key))),
                          "dimension %s has no string value at the root: %s", json_string_value(key), jdump(v));
            }
        }
        json_t *metrics = json_object_get(d, "Metrics");
        cr_assert(json_is_array(metrics) && json_array_size(metrics) >= 1 && json_array_size(metrics) <= 100, "%s",
                  jdump(d));
        size_t k;
        json_t *m;
        json_array_foreach(metrics, k, m) {
            const char *name = js(m, "Name");
            cr_assert(name[0] != '\0', "a metric without a Name: %s", jdump(d));
            cr_assert(json_is_number(json_object_get(v, name)), "metric %s has no number at the root: %s", name,
                      jdump(v));
            cr_assert_str_eq(js(m, "Unit"), "Count", "%s", jdump(m));
        }
    }
}

TestSuite(emf, .init = it_redis_init, .fini = it_end, .timeout = 60);

Test(emf, queue_depths_as_embedded_metric_format)
{
    it_skip_in_cluster("pushes onto the one chatmi:{q}:inbound list; partitioned queue names are the worker's");
    rpush_inbound(5);
    /* A fan-out worker leaves inbound alone, so the depth stays put. */
    const char *extra[] = {"--emf", "--emf-interval", "1", "--emf-namespace", "chatmi/it", NULL};
    struct it_worker_conf c = {.stage = "fanout", .extra = extra};
    it_worker_start(&c);
    json_t *v = first_emf_record(0, it_ms(5000));
    cr_assert_not_null(v, "no EMF record within 5 s with --emf-interval 1");
    assert_emf_shape(v, "chatmi/it");
    cr_assert_eq(ji(v, "InboundDepth"), 5, "%s", jdump(v));
    cr_assert_eq(ji(v, "FanoutDepth"), 0, "%s", jdump(v));
    cr_assert_eq(ji(v, "DeadLetters"), 0, "%s", jdump(v));
    cr_assert_eq(ji(v, "LiveWorkers"), 1, "%s", jdump(v));
    cr_assert_float_eq(json_number_value(json_object_get(v, "InboundPerWorker")), 5.0, 1e-9, "%s", jdump(v));
    json_decref(v);
    int st = -1;
    cr_assert(it_worker_signal_wait(0, SIGTERM, it_ms(8000), &st), "the worker did not exit after SIGTERM");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

Test(emf, off_by_default)
{
    rpush_inbound(1);
    struct it_worker_conf c = {.stage = "fanout"};
    it_worker_start(&c);
    /* the worker's own heartbeat runs every 2 s; give --emf's default 10 s no chance either way */
    it_pause_ms(1500);
    json_t *v = first_emf_record(0, 0);
    cr_assert_null(v, "an EMF record without --emf: %s", jdump(v));
}

Test(emf, bad_namespace_exits_2)
{
    static char out[65536];
    const char *bad[] = {"AWS/ECS", "has space", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = {it_worker_bin(), "--redis-url", "redis://127.0.0.1:1/0", "--emf", "--emf-namespace",
                              bad[i], NULL};
        int st = 0;
        cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &st), 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "--emf-namespace '%s': exit %d, expected 2: %s", bad[i],
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
        cr_assert_not_null(strstr(out, "emf-namespace"), "the message does not name the option: %s", out);
    }
}
