/* test_topology.c: the compose stack's topology without Docker: HAProxy
 * from Debian, run with docker/haproxy.cfg itself, in front of two gateways
 * and two workers on loopback. Clients connect only through HAProxy and land
 * on both gateways; one gateway is drained (SIGTERM) while they send. Its
 * clients are closed with 1001, reconnect through HAProxy to the other
 * gateway and resend what was not acknowledged with the same id. Afterwards
 * every acknowledged message is in history, with its seq and msg, seqs have
 * no gaps, and no message is stored twice.
 *
 * HAProxy is looked up as $HAPROXY, in PATH and in /usr/sbin; without it the
 * test is skipped, unless CHATMI_DEPLOY_CHECKS_REQUIRED=1 (CI), where that
 * fails. */
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

#define PAIRS 4
#define CLIENTS (2 * PAIRS)
#define ROUNDS_BEFORE 10 /* rounds of sends before the drain starts */
#define ROUNDS_AFTER 10  /* rounds after the drained gateway has exited */
#define MAX_ROUNDS 400
#define DRAIN "2"

struct client {
    char user[16];
    char peer[16];
    char conv[48];
    struct ws *ws;
    char node[128];   /* node of the gateway it is connected to */
    int reconnects;
    int closed_1001;
};

struct sent {
    char id[48];
    char conv[48];
    char text[64];
    int64_t seq;
    char msg[128];
};

static int g_lb_port;
static int g_lb_proc;
static char g_node[2][128]; /* node of gateway 0 and 1 */

static const char *haproxy_path(char *buf, size_t len)
{
    const char *env = getenv("HAPROXY");
    if (env != NULL && *env)
        return it_which(env, buf, len);
    const char *p = it_which("haproxy", buf, len);
    return p != NULL ? p : it_which("/usr/sbin/haproxy", buf, len);
}

/* The node a gateway reports in its hello, from a direct session. */
static void node_of_gateway(int gw, char *out, size_t len)
{
    struct ws *w = it_open(it_gw_port(gw), "probe", NULL);
    snprintf(out, len, "%s", js(w->hello, "node"));
    ws_free(w);
}

/* A session through HAProxy, retried with jittered backoff while HAProxy
 * has no gateway for it (a refused or failed handshake): as a real client
 * does after a close. NULL after deadline_ms. */
static struct ws *open_via_lb(const char *user, int deadline_ms)
{
    int64_t end = it_mono_ms() + deadline_ms;
    int delay = 50;
    for (int attempt = 0; attempt < 200 && it_mono_ms() < end; attempt++) {
        char path[64], err[256];
        snprintf(path, sizeof(path), "/ws?user=%s", user);
        struct ws_connect_opts o = {.path = path, .timeout_ms = it_ms(3000)};
        struct ws *w = ws_open(g_lb_port, &o, err, sizeof(err));
        if (w != NULL)
            return w;
        it_pause_ms(delay / 2 + rand() % (delay / 2 + 1));
        delay = delay * 2 > 800 ? 800 : delay * 2;
    }
    return NULL;
}

static void connect_client(struct client *c)
{
    ws_free(c->ws);
    c->ws = open_via_lb(c->user, it_ms(20000));
    cr_assert_not_null(c->ws, "%s: no session through HAProxy within 20 s", c->user);
    snprintf(c->node, sizeof(c->node), "%s", js(c->ws->hello, "node"));
}

static void topology_init(void)
{
    it_redis_init();
    /* One child each: a hello's node (one per child) then names the gateway. */
    struct it_gw_conf gc = {.drain_seconds = DRAIN, .processes = 1};
    it_gateway_start(&gc);
    it_gateway_start(&gc);
    it_worker_start(NULL);
    it_worker_start(NULL);

    char hp[PATH_MAX];
    if (haproxy_path(hp, sizeof(hp)) == NULL) {
        const char *req = getenv("CHATMI_DEPLOY_CHECKS_REQUIRED");
        cr_assert(req == NULL || strcmp(req, "1") != 0,
                  "haproxy not found (Debian: apt-get install haproxy), and CHATMI_DEPLOY_CHECKS_REQUIRED=1");
        cr_skip_test("haproxy not found (Debian: apt-get install haproxy)");
    }
    const char *srcdir = getenv("CHATMI_IT_SRCDIR");
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s/../../docker/haproxy.cfg", srcdir != NULL ? srcdir : ".");
    g_lb_port = it_free_port();
    char bind[64], gw1[64], gw2[64];
    snprintf(bind, sizeof(bind), "CHATMI_LB_BIND=127.0.0.1:%d", g_lb_port);
    snprintf(gw1, sizeof(gw1), "CHATMI_GW1=127.0.0.1:%d", it_gw_port(0));
    snprintf(gw2, sizeof(gw2), "CHATMI_GW2=127.0.0.1:%d", it_gw_port(1));
    const char *env[] = {bind, gw1, gw2, NULL};
    const char *argv[] = {hp, "-db", "-f", cfg, NULL};
    g_lb_proc = it_aux_start("haproxy", argv, env);

    node_of_gateway(0, g_node[0], sizeof(g_node[0]));
    node_of_gateway(1, g_node[1], sizeof(g_node[1]));
    cr_assert_str_neq(g_node[0], g_node[1]);
    /* HAProxy answers once it runs; /readyz through it is 200 once a gateway is up */
    int64_t end = it_mono_ms() + it_ms(10000);
    int ok = 0;
    while (!ok && it_mono_ms() < end) {
        struct it_http_resp r;
        memset(&r, 0, sizeof(r));
        ok = it_http_get(g_lb_port, "/readyz", 1000, &r) == 0 && r.status == 200;
        it_http_resp_free(&r);
        if (!ok)
            it_pause_ms(50);
    }
    cr_assert(ok, "GET /readyz through HAProxy was not 200 within 10 s (log: haproxy.log)");
}

TestSuite(topology, .init = topology_init, .fini = it_end, .timeout = 180);

/* Sends c's next message (id kept across reconnects) until it is acked.
 * Records the ack in *s. */
static void send_until_acked(struct client *c, struct sent *s)
{
    int64_t end = it_mono_ms() + it_ms(30000);
    for (int attempt = 0; attempt < 100 && it_mono_ms() < end; attempt++) {
        json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", s->id, "to", c->peer, "text", s->text);
        json_t *rep = ws_request(c->ws, req, IT_WAIT);
        if (rep != NULL && strcmp(js(rep, "op"), "ack") == 0) {
            cr_assert_str_eq(js(rep, "conv"), c->conv, "%s", jdump(rep));
            s->seq = ji(rep, "seq");
            snprintf(s->msg, sizeof(s->msg), "%s", js(rep, "msg"));
            json_decref(rep);
            return;
        }
        if (rep != NULL) {
            /* unavailable is a fair answer while a gateway drains or starts;
             * anything else is a bug */
            cr_assert_str_eq(js(rep, "code"), "unavailable", "%s: unexpected reply %s", c->user, jdump(rep));
            json_decref(rep);
            it_pause_ms(100);
            continue;
        }
        /* no reply: the connection closed (1001 from a draining gateway) */
        if (c->ws->close_code == 1001)
            c->closed_1001++;
        connect_client(c);
        c->reconnects++;
    }
    cr_assert_fail("%s: message %s was never acked within 30 s", c->user, s->id);
}

Test(topology, drain_one_gateway_behind_haproxy_loses_no_acked_message)
{
    static struct client cl[CLIENTS];
    static struct sent sent[CLIENTS * MAX_ROUNDS];
    size_t nsent = 0;
    memset(cl, 0, sizeof(cl));
    for (int p = 0; p < PAIRS; p++) {
        struct client *a = &cl[2 * p], *b = &cl[2 * p + 1];
        snprintf(a->user, sizeof(a->user), "a%d", p);
        snprintf(b->user, sizeof(b->user), "b%d", p);
        snprintf(a->peer, sizeof(a->peer), "b%d", p);
        snprintf(b->peer, sizeof(b->peer), "a%d", p);
        snprintf(a->conv, sizeof(a->conv), "dm:a%d:b%d", p, p);
        snprintf(b->conv, sizeof(b->conv), "dm:a%d:b%d", p, p);
    }
    /* Clients through HAProxy, on both gateways (leastconn alternates). */
    int on[2] = {0, 0};
    for (int i = 0; i < CLIENTS; i++) {
        connect_client(&cl[i]);
        on[strcmp(cl[i].node, g_node[0]) == 0 ? 0 : 1]++;
    }
    cr_assert(on[0] > 0 && on[1] > 0, "HAProxy put %d clients on gateway 0 and %d on gateway 1", on[0], on[1]);
    cr_log_info("clients through HAProxy: %d on gateway 0, %d on gateway 1", on[0], on[1]);

    int drained_at = -1, exited_at = -1, status = -1;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        if (round == ROUNDS_BEFORE) {
            cr_assert_eq(kill(it_gw_pid(0), SIGTERM), 0);
            drained_at = round;
        }
        if (drained_at >= 0 && exited_at < 0 && it_gateway_signal_wait(0, 0, 0, &status))
            exited_at = round;
        if (exited_at >= 0 && round >= exited_at + ROUNDS_AFTER)
            break;
        for (int i = 0; i < CLIENTS; i++) {
            struct sent *s = &sent[nsent++];
            snprintf(s->id, sizeof(s->id), "%.15s-%d", cl[i].user, round);
            snprintf(s->text, sizeof(s->text), "%.15s says %d", cl[i].user, round);
            memcpy(s->conv, cl[i].conv, sizeof(s->conv));
            send_until_acked(&cl[i], s);
        }
        it_pause_ms(20); /* pace the rounds so the traffic spans the drain */
    }
    cr_assert(exited_at >= 0, "gateway 0 did not exit after SIGTERM with --drain-seconds " DRAIN);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gateway 0 exit status %d, expected 0",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    int moved = 0, got_1001 = 0;
    for (int i = 0; i < CLIENTS; i++) {
        cr_assert_str_eq(cl[i].node, g_node[1], "%s is still on the drained gateway", cl[i].user);
        moved += cl[i].reconnects > 0;
        got_1001 += cl[i].closed_1001 > 0;
    }
    cr_assert_eq(moved, on[0], "%d clients reconnected, %d were on the drained gateway", moved, on[0]);
    cr_assert(got_1001 > 0, "no client of the drained gateway was closed with 1001");
    cr_log_info("%zu messages acked; %d clients moved to gateway 1 (%d closed with 1001)", nsent, moved, got_1001);

    /* Every acked message is stored once, with the seq and msg of its ack. */
    struct ws *r = open_via_lb("a0", it_ms(10000));
    cr_assert_not_null(r);
    for (int p = 0; p < PAIRS; p++) {
        const char *conv = cl[2 * p].conv;
        size_t want = 0;
        for (size_t k = 0; k < nsent; k++)
            want += strcmp(sent[k].conv, conv) == 0;
        /* a0 reads its own DM; other pairs' histories through their own users */
        struct ws *reader = p == 0 ? r : open_via_lb(cl[2 * p].user, it_ms(10000));
        cr_assert_not_null(reader);
        json_t *all = json_array();
        for (int64_t after = 0;;) {
            json_t *h = it_history(reader, "h", conv, "after", after, 200);
            json_t *msgs = json_object_get(h, "messages");
            json_array_extend(all, msgs);
            size_t n = json_array_size(msgs);
            if (n > 0)
                after = ji(json_array_get(msgs, n - 1), "seq");
            json_decref(h);
            if (n < 200)
                break;
        }
        it_assert_seq_range(all, 1, (int64_t)want, conv);
        for (size_t k = 0; k < nsent; k++) {
            if (strcmp(sent[k].conv, conv) != 0)
                continue;
            json_t *m = json_array_get(all, (size_t)(sent[k].seq - 1));
            cr_assert_not_null(m, "%s: acked seq %lld is not in history", conv, (long long)sent[k].seq);
            cr_assert_str_eq(js(m, "msg"), sent[k].msg, "%s seq %lld: history has another message than the ack",
                             conv, (long long)sent[k].seq);
            cr_assert_str_eq(js(m, "text"), sent[k].text, "%s seq %lld", conv, (long long)sent[k].seq);
        }
        json_decref(all);
        if (reader != r)
            ws_free(reader);
    }
    ws_free(r);
    for (int i = 0; i < CLIENTS; i++)
        ws_free(cl[i].ws);
}
