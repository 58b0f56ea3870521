/* test_metrics.c: GET /metrics of a whole gateway instance (one scrape covers
 * every child, through reloads and crashes) and of the worker
 * (--metrics-listen), each exposition checked by a strict parser of the
 * Prometheus text format (promcheck.py) and by promtool when installed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

/* ---- scraping and reading samples ----------------------------------------------- */

/* GET /metrics on port: the body (malloc'ed), asserted to be a 200 in the
 * Prometheus text format. */
static char *scrape(int port)
{
    struct it_http_resp r;
    cr_assert_eq(it_http_get(port, "/metrics", IT_WAIT, &r), 0, "GET /metrics on %d: no response", port);
    cr_assert_eq(r.status, 200, "GET /metrics: %s", r.head);
    char ct[128];
    cr_assert_not_null(it_http_header(r.head, "Content-Type", ct, sizeof(ct)));
    cr_assert(strstr(ct, "text/plain") != NULL && strstr(ct, "version=0.0.4") != NULL,
              "Content-Type of the text format, got %s", ct);
    char *body = strdup(r.body);
    it_http_resp_free(&r);
    cr_assert_not_null(body);
    return body;
}

/* The value of the sample `name` (labels: the exact text inside the braces,
 * NULL for none); NAN when the exposition has no such sample. */
static double sample(const char *text, const char *name, const char *labels)
{
    char want[256];
    if (labels != NULL)
        snprintf(want, sizeof(want), "%s{%s} ", name, labels);
    else
        snprintf(want, sizeof(want), "%s ", name);
    size_t n = strlen(want);
    for (const char *l = text; l != NULL && *l != '\0';) {
        if (strncmp(l, want, n) == 0)
            return strtod(l + n, NULL);
        l = strchr(l, '\n');
        if (l != NULL)
            l++;
    }
    return NAN;
}

static double must_sample(const char *text, const char *name, const char *labels)
{
    double v = sample(text, name, labels);
    cr_assert(!isnan(v), "no sample %s{%s} in:\n%s", name, labels ? labels : "", text);
    return v;
}

/* Runs the strict parser (and promtool when there is one) on text; asserts
 * both accept it. */
static void check_exposition(const char *text, const char *prefix)
{
    char path[512], out[8192];
    snprintf(path, sizeof(path), "%s/%sexposition.txt", it_dir(), prefix);
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);

    const char *py = getenv("PYTHON3") && *getenv("PYTHON3") ? getenv("PYTHON3") : "/usr/bin/python3";
    char script[512];
    snprintf(script, sizeof(script), "%s/promcheck.py", getenv("CHATMI_IT_SRCDIR"));
    const char *argv[] = {py, script, "--prefix", prefix, path, NULL};
    int status;
    cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &status), 0, "promcheck.py did not finish");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "promcheck.py rejects the exposition: %s", out);

    char promtool[512];
    if (it_which("promtool", promtool, sizeof(promtool)) != NULL) {
        /* promtool reads the exposition on stdin */
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "exec %s check metrics < %s", promtool, path);
        const char *sh[] = {"/bin/sh", "-c", cmd, NULL};
        cr_assert_eq(it_run(sh, NULL, it_ms(10000), out, sizeof(out), &status), 0, "promtool did not finish");
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "promtool check metrics: %s", out);
        cr_assert(out[0] == '\0', "promtool check metrics has remarks (lint): %s", out);
    }
}

/* Scrapes until `name` reaches want (bounded): the last value seen. */
static double wait_sample(int port, const char *name, const char *labels, double want, int timeout_ms)
{
    double v = NAN;
    int64_t deadline = it_mono_ms() + it_ms(timeout_ms);
    for (int i = 0; i < 1000; i++) {
        char *t = scrape(port);
        v = sample(t, name, labels);
        free(t);
        if (v == want || it_mono_ms() >= deadline)
            break;
        it_pause_ms(50);
    }
    return v;
}

/* The node part ("g0123456789ab") of a session id "node.fd.gen". */
static void node_of(const struct ws *ws, char *out, size_t outlen)
{
    const char *s = ws_session(ws);
    const char *dot = strchr(s, '.');
    cr_assert_not_null(dot, "session id %s has no node part", s);
    snprintf(out, outlen, "%.*s", (int)(dot - s), s);
}

/* Opens at least n sessions (users u0, u1, ...) on port, and more until
 * they landed on `children` distinct children (SO_REUSEPORT spreads
 * connections by their source port, so this ends quickly; bounded by
 * MAX_SESSIONS). Returns how many it opened. */
#define MAX_SESSIONS 64
static int open_spread(int port, struct ws **ws, int n, int children)
{
    char nodes[MAX_SESSIONS][32];
    int nnodes = 0, opened = 0;
    while (opened < MAX_SESSIONS && (opened < n || nnodes < children)) {
        char user[16];
        snprintf(user, sizeof(user), "u%d", opened);
        ws[opened] = it_open(port, user, NULL);
        char node[32];
        node_of(ws[opened], node, sizeof(node));
        opened++;
        int known = 0;
        for (int k = 0; k < nnodes; k++)
            known |= strcmp(nodes[k], node) == 0;
        if (!known)
            snprintf(nodes[nnodes++], sizeof(nodes[0]), "%s", node);
    }
    cr_assert(nnodes >= children, "%d sessions landed on %d children only (wanted %d)", opened, nnodes, children);
    cr_log_info("%d sessions on %d children", opened, nnodes);
    return opened;
}

/* ---- gateway ---------------------------------------------------------------------- */

TestSuite(gw_metrics, .init = it_redis_init, .fini = it_end, .timeout = 120);

/* The acceptance test: one scrape of a gateway with N children
 * reports the connections of all of them. */
Test(gw_metrics, one_scrape_counts_every_child)
{
    struct it_gw_conf c = {.processes = 3};
    int g = it_gateway_start(&c);
    int port = it_gw_port(g);
    struct ws *ws[MAX_SESSIONS];
    int n = open_spread(port, ws, 24, 3);

    /* Every scrape, whichever child answers it, sees all of them. */
    for (int k = 0; k < 6; k++) {
        char *t = scrape(port);
        cr_assert_eq(must_sample(t, "chatmi_gateway_connections", NULL), n, "scrape %d:\n%s", k, t);
        cr_assert_eq(must_sample(t, "chatmi_gateway_processes_running", NULL), 3);
        cr_assert_eq(must_sample(t, "chatmi_gateway_processes", NULL), 3);
        cr_assert(must_sample(t, "chatmi_gateway_connections_total", NULL) >= n);
        cr_assert(must_sample(t, "chatmi_gateway_handshakes_total", "result=\"ok\"") >= n);
        cr_assert_eq(must_sample(t, "chatmi_gateway_subscriptions", NULL), n, "one channel per user:\n%s", t);
        free(t);
    }
    for (int i = 0; i < n / 2; i++)
        ws_free(ws[i]);
    cr_assert_eq(wait_sample(port, "chatmi_gateway_connections", NULL, n - n / 2, 5000), n - n / 2,
                 "closed sessions leave the gauge");
    for (int i = n / 2; i < n; i++)
        ws_free(ws[i]);
    cr_assert_eq(wait_sample(port, "chatmi_gateway_connections", NULL, 0, 5000), 0);
    cr_assert_eq(wait_sample(port, "chatmi_gateway_subscriptions", NULL, 0, 5000), 0);
}

Test(gw_metrics, exposition_is_strict_prometheus_text)
{
    struct it_gw_conf c = {.processes = 2};
    int g = it_gateway_start(&c);
    it_worker_start(NULL);
    int port = it_gw_port(g);
    /* traffic of every kind the counters count */
    struct ws *a = it_open(port, "alice", NULL);
    struct ws *b = it_open(port, "bob", NULL);
    json_decref(it_dm(a, "1", "bob", "hello"));
    json_decref(ws_wait_op(b, "message", IT_WAIT));
    json_decref(it_req_err(a, json_pack("{s:s,s:s}", "op", "nope", "id", "x"), "bad_request"));
    struct ws_connect_opts o = {.path = "/ws"}; /* no ?user=: refused */
    struct it_http_resp r;
    cr_assert_null(ws_connect(port, &o, &r, NULL, 0));
    it_http_resp_free(&r);

    it_join(a, "j", "lobby");
    cr_assert_eq(wait_sample(port, "chatmi_gateway_room_subscriptions", NULL, 1, 5000), 1,
                 "one child subscribes the room's channel");
    char *t = scrape(port);
    check_exposition(t, "chatmi_gateway_");
    cr_assert(must_sample(t, "chatmi_gateway_deliveries_total", NULL) >= 2, "%s", t);
    cr_assert(must_sample(t, "chatmi_gateway_requests_queued_total", NULL) >= 1);
    cr_assert(must_sample(t, "chatmi_gateway_messages_in_total", NULL) >= 2);
    cr_assert(must_sample(t, "chatmi_gateway_bytes_in_total", NULL) > 0);
    cr_assert(must_sample(t, "chatmi_gateway_bytes_out_total", NULL) > 0);
    cr_assert(must_sample(t, "chatmi_gateway_frames_out_total", NULL) >= 4);
    cr_assert(must_sample(t, "chatmi_gateway_handshakes_total", "result=\"bad_request\"") >= 1, "%s", t);
    cr_assert_eq(must_sample(t, "chatmi_gateway_process_starts_total", NULL), 2);
    cr_assert_eq(must_sample(t, "chatmi_gateway_process_restarts_total", NULL), 0);
    cr_assert_not_null(strstr(t, "chatmi_gateway_build_info{version=\""), "%s", t);
    free(t);
    ws_free(a);
    ws_free(b);
}

/* The checker itself refuses what it should (so a pass above means something). */
Test(gw_metrics, promcheck_rejects_bad_expositions)
{
    static const char *const bad[] = {
        "# HELP x_total c\n# TYPE x_total counter\nx_total -1\n",                 /* negative counter */
        "# HELP x c\n# TYPE x counter\nx 1\n",                                     /* counter not *_total */
        "# HELP x_total g\n# TYPE x_total gauge\nx_total 1\n",                     /* gauge named *_total */
        "# TYPE x gauge\nx 1\n",                                                   /* no HELP */
        "# HELP x g\n# TYPE x gauge\nx 1\nx 2\n",                                  /* duplicate sample */
        "# HELP x g\n# TYPE x gauge\nx{a=\"1} 1\n",                                /* unterminated label */
        "# HELP x g\n# TYPE x gauge\nx one\n",                                     /* not a number */
        "# HELP x g\n# TYPE x gauge\nx 1",                                         /* no final newline */
        "# HELP h_seconds h\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 2\n"
        "h_seconds_bucket{le=\"+Inf\"} 1\nh_seconds_sum 1\nh_seconds_count 1\n", /* buckets decrease */
        "# HELP x g\n# TYPE x gauge\nx 1\n# HELP y g\n# TYPE y gauge\ny 1\nx{a=\"b\"} 1\n", /* split family */
    };
    const char *py = getenv("PYTHON3") && *getenv("PYTHON3") ? getenv("PYTHON3") : "/usr/bin/python3";
    char script[512], path[512], out[2048];
    snprintf(script, sizeof(script), "%s/promcheck.py", getenv("CHATMI_IT_SRCDIR"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(path, sizeof(path), "%s/bad%zu.txt", it_dir(), i);
        FILE *f = fopen(path, "we");
        cr_assert_not_null(f);
        fputs(bad[i], f);
        fclose(f);
        const char *argv[] = {py, script, path, NULL};
        int status;
        cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &status), 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "promcheck accepted bad exposition %zu:\n%s", i,
                  bad[i]);
    }
}

/* A SIGHUP reload runs a retiring child and its successor side by side: the
 * gauges must count both (each process has its own cell), and counters must
 * survive the old children's exit. */
Test(gw_metrics, reload_keeps_gauges_and_counters)
{
    struct it_gw_conf c = {.processes = 2, .drain_seconds = "300"};
    int g = it_gateway_start(&c);
    int port = it_gw_port(g);
    struct ws *ws[MAX_SESSIONS];
    int n = open_spread(port, ws, 8, 2);
    char *t = scrape(port);
    double total_before = must_sample(t, "chatmi_gateway_connections_total", NULL);
    free(t);

    kill(it_gw_pid(g), SIGHUP);
    cr_assert(it_gw_log_wait(g, "\"event\":\"reloaded\"", it_ms(20000)), "no reload");
    /* The old children drain over 300 s: they still hold every session. */
    t = scrape(port);
    cr_assert_eq(must_sample(t, "chatmi_gateway_connections", NULL), n, "after the reload:\n%s", t);
    cr_assert_eq(must_sample(t, "chatmi_gateway_subscriptions", NULL), n,
                 "the successors' empty subscription sets hide the old children's:\n%s", t);
    cr_assert_eq(must_sample(t, "chatmi_gateway_processes_running", NULL), 4);
    cr_assert_eq(must_sample(t, "chatmi_gateway_process_restarts_total", NULL), 2);
    free(t);

    /* New sessions land on the successors and add to the same gauge. */
    struct ws *late = it_open(port, "late", NULL);
    t = scrape(port);
    cr_assert_eq(must_sample(t, "chatmi_gateway_connections", NULL), n + 1, "%s", t);
    /* (with one cell per child index, the successor's count of 1 overwrote
     * its predecessor's here) */
    cr_assert_eq(must_sample(t, "chatmi_gateway_subscriptions", NULL), n + 1, "%s", t);
    free(t);

    /* The old children go (killed: they would drain for 300 s): their
     * sessions leave the gauges, their counts stay in the totals. */
    pid_t kids[8];
    int nk = it_gw_children(g, kids, 8);
    cr_assert_eq(nk, 4, "expected 2 retiring + 2 new children, got %d", nk);
    for (int i = 0; i < n; i++)
        ws_free(ws[i]);
    cr_assert_eq(wait_sample(port, "chatmi_gateway_connections", NULL, 1, 10000), 1);
    t = scrape(port);
    cr_assert(must_sample(t, "chatmi_gateway_connections_total", NULL) >= total_before + 1,
              "counters of children that exited are kept:\n%s", t);
    free(t);
    ws_free(late);
}

/* A child killed with open sessions: the master drops its gauges (no
 * connection counted forever) and keeps its counters. */
Test(gw_metrics, crashed_child_gauges_dropped_counters_kept)
{
    struct it_gw_conf c = {.processes = 2};
    int g = it_gateway_start(&c);
    int port = it_gw_port(g);
    struct ws *ws[MAX_SESSIONS];
    int n = open_spread(port, ws, 10, 2);
    char *t = scrape(port);
    double total = must_sample(t, "chatmi_gateway_connections_total", NULL);
    free(t);

    /* Kill one child; its sessions are those that see EOF once the
     * master has reaped it (the kernel closed its sockets at exit). */
    pid_t kids[8];
    int nk = it_gw_children(g, kids, 8);
    cr_assert_eq(nk, 2);
    kill(kids[0], SIGKILL);
    char needle[96];
    snprintf(needle, sizeof(needle), "(pid %d) killed by signal 9", (int)kids[0]);
    cr_assert(it_gw_log_wait(g, needle, it_ms(10000)), "the master did not reap %d", (int)kids[0]);
    int on_it = 0;
    for (int i = 0; i < n; i++)
        on_it += it_wait_eof(ws[i]->fd, 0);
    cr_assert(on_it > 0 && on_it < n, "%d of %d sessions on the killed child", on_it, n);
    double left = wait_sample(port, "chatmi_gateway_connections", NULL, n - on_it, 10000);
    cr_assert_eq(left, n - on_it, "the dead child's %d sessions still counted (%g)", on_it, left);
    t = scrape(port);
    cr_assert(must_sample(t, "chatmi_gateway_connections_total", NULL) >= total, "%s", t);
    free(t);
    cr_assert_eq(wait_sample(port, "chatmi_gateway_process_restarts_total", NULL, 1, 15000), 1);
    for (int i = 0; i < n; i++)
        ws_free(ws[i]);
}

/* ---- worker ----------------------------------------------------------------------- */

TestSuite(wk_metrics, .init = it_redis_init, .fini = it_end, .timeout = 120);

static int worker_with_metrics(void)
{
    static char listen[64];
    int port = it_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    const char *extra[] = {"--metrics-listen", listen, NULL};
    struct it_worker_conf wc = {.extra = extra};
    it_worker_start(&wc);
    return port;
}

static void get_expect(int port, const char *req, int want)
{
    struct it_http_resp r;
    it_http_raw(port, req, strlen(req), IT_WAIT, 0, &r);
    cr_assert_eq(r.status, want, "%s: status %d, expected %d", req, r.status, want);
    it_http_resp_free(&r);
}

Test(wk_metrics, counters_move_and_exposition_parses)
{
    it_gateway_start(NULL);
    int mport = worker_with_metrics();
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    int sends = 5;
    for (int i = 0; i < sends; i++) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        json_decref(it_dm(a, id, "bob", "hello"));
        json_decref(ws_wait_op(b, "message", IT_WAIT));
    }
    /* one request the worker refuses: text above --max-text-bytes (4096) */
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_decref(it_req_err(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "big", "to", "bob", "text", big),
                           "too_large"));

    /* and one it forbids: a DM's history read by a third user */
    json_decref(it_req_err(a, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h", "conv", "dm:bob:carol"),
                           "forbidden"));

    /* The counters are published once per turn of the worker's loop:
     * wait (bounded) for the last request to show. */
    cr_assert_eq(wait_sample(mport, "chatmi_worker_errors_total", "code=\"forbidden\"", 1, 5000), 1);
    char *t = scrape(mport);
    check_exposition(t, "chatmi_worker_");
    cr_assert_eq(must_sample(t, "chatmi_worker_processed_total", "op=\"send\",result=\"ok\""), sends, "%s", t);
    cr_assert_eq(must_sample(t, "chatmi_worker_processed_total", "op=\"send\",result=\"error\""), 1);
    cr_assert_eq(must_sample(t, "chatmi_worker_errors_total", "code=\"too_large\""), 1);
    cr_assert_eq(must_sample(t, "chatmi_worker_processed_total", "op=\"history\",result=\"error\""), 1);
    cr_assert_eq(must_sample(t, "chatmi_worker_errors_total", "code=\"internal\""), 0);
    cr_assert_eq(must_sample(t, "chatmi_worker_messages_stored_total", NULL), sends);
    cr_assert(must_sample(t, "chatmi_worker_deliveries_published_total", NULL) >= sends);
    cr_assert(must_sample(t, "chatmi_worker_redis_round_trips_total", NULL) > sends);
    cr_assert_eq(must_sample(t, "chatmi_worker_redis_up", NULL), 1);
    cr_assert(must_sample(t, "chatmi_worker_queue_depth", "queue=\"inbound\"") >= 0, "depths read at start");
    cr_assert(must_sample(t, "chatmi_worker_live_workers", NULL) >= 1);
    static const char *const stages[] = {"take", "store", "reply", "fanout"};
    for (int i = 0; i < 4; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "stage=\"%s\"", stages[i]);
        cr_assert(must_sample(t, "chatmi_worker_stage_seconds_count", labels) >= 1, "stage %s never timed:\n%s",
                  stages[i], t);
    }
    free(t);

    get_expect(mport, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200);
    get_expect(mport, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 200);
    get_expect(mport, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404);
    get_expect(mport, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405);
    get_expect(mport, "garbage\r\n\r\n", 400);
    get_expect(mport, "GET /metrics HTTP/1.1\r\n\r\n", 200);
    get_expect(mport, "GET /metrics?x=1 HTTP/1.1\r\n\r\n", 200);
    get_expect(mport, "GET /metricsx HTTP/1.1\r\n\r\n", 404);
    get_expect(mport, "GET /metrics FTP/1.1\r\n\r\n", 400);
    /* a head that never ends within 4 KiB */
    static char huge[6000];
    memcpy(huge, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(huge + 26, 'a', sizeof(huge) - 27);
    get_expect(mport, huge, 400);
    ws_free(a);
    ws_free(b);
}

/* A silent client holds the metrics thread at most its deadline, and never
 * the queue work: requests keep flowing while it hangs on. */
Test(wk_metrics, silent_scraper_does_not_stall_the_worker)
{
    it_gateway_start(NULL);
    int mport = worker_with_metrics();
    int fd = it_tcp_connect(mport, IT_WAIT);
    cr_assert(fd >= 0);
    struct ws *a = it_open(it_port(), "alice", NULL);
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "s%d", i);
        json_decref(it_dm(a, id, "bob", "while a scraper hangs"));
    }
    /* the silent client is dropped; scrapes work again */
    cr_assert(it_wait_eof(fd, it_ms(10000)), "the metrics thread never dropped a silent client");
    close(fd);
    char *t = scrape(mport);
    free(t);
    ws_free(a);
}

Test(wk_metrics, bad_metrics_listen_exits_2)
{
    static const char *const bad[] = {"nope", "127.0.0.1:99999", "127.0.0.1:"};
    for (size_t i = 0; i < 3; i++) {
        const char *argv[] = {it_worker_bin(), "--metrics-listen", bad[i], NULL};
        char out[2048];
        int status;
        cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &status), 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "--metrics-listen %s: status %d", bad[i], status);
        cr_assert(strstr(out, "--metrics-listen") != NULL, "the message names the option: %s", out);
    }
}

/* Every metric the Grafana dashboard queries is in a live scrape of the
 * gateway or the worker (tests/deploy/check-dashboard.py). */
Test(wk_metrics, dashboard_queries_exist_in_live_scrapes)
{
    it_gateway_start(NULL);
    int mport = worker_with_metrics();
    char gw[512], wk[512], dash[512], script[512], out[4096];
    const char *src = getenv("CHATMI_IT_SRCDIR");
    snprintf(gw, sizeof(gw), "%s/gateway.txt", it_dir());
    snprintf(wk, sizeof(wk), "%s/worker.txt", it_dir());
    snprintf(dash, sizeof(dash), "%s/../../docker/grafana/chatmi-dashboard.json", src);
    snprintf(script, sizeof(script), "%s/../deploy/check-dashboard.py", src);
    const char *paths[2] = {gw, wk};
    int ports[2] = {it_port(), mport};
    for (int i = 0; i < 2; i++) {
        char *t = scrape(ports[i]);
        FILE *f = fopen(paths[i], "we");
        cr_assert_not_null(f);
        fputs(t, f);
        fclose(f);
        free(t);
    }
    const char *py = getenv("PYTHON3") && *getenv("PYTHON3") ? getenv("PYTHON3") : "/usr/bin/python3";
    const char *argv[] = {py, script, dash, "--exposition", gw, wk, NULL};
    int status;
    cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &status), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "check-dashboard.py: %s", out);
}

/* Refusals by the connection limits are counted under their own result. */
Test(gw_metrics, limit_refusals_counted)
{
    const char *extra[] = {"--max-sessions-per-user", "1", NULL};
    struct it_gw_conf c = {.processes = 1, .extra = extra};
    int g = it_gateway_start(&c);
    struct ws *a = it_open(it_gw_port(g), "alice", NULL);
    struct ws_connect_opts o = {.path = "/ws?user=alice"};
    struct it_http_resp r;
    cr_assert_null(ws_connect(it_gw_port(g), &o, &r, NULL, 0), "a second session of alice is refused");
    it_http_resp_free(&r);
    char *t = scrape(it_gw_port(g));
    cr_assert_eq(must_sample(t, "chatmi_gateway_handshakes_total", "result=\"over_limit\""), 1, "%s", t);
    cr_assert_eq(must_sample(t, "chatmi_gateway_handshakes_total", "result=\"ok\""), 1, "%s", t);
    free(t);
    ws_free(a);
}
