/* test_lifecycle.c: the programs as operators see them (contract sections
 * 1 and 7): --help/--version, bad option values (exit 2 naming the option,
 * as flags and as environment variables), SIGTERM (clients closed with
 * 1001, exit 0), and durability of acked messages across the loss of
 * gateway and worker processes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define OUT_MAX 65536

/* ---- command line ----------------------------------------------------------------- */

TestSuite(cli, .timeout = 60);

static int run(const char *const *argv, const char *const *env, char *out)
{
    int st = 0;
    int rc = it_run(argv, env, it_ms(10000), out, OUT_MAX, &st);
    cr_assert_eq(rc, 0, "%s did not exit within 10 s; output:\n%s", argv[0], out);
    cr_assert(WIFEXITED(st), "%s died of signal %d; output:\n%s", argv[0], WIFSIGNALED(st) ? WTERMSIG(st) : 0, out);
    return WEXITSTATUS(st);
}

Test(cli, gateway_version_and_help)
{
    static char out[OUT_MAX];
    const char *v[] = {it_gateway_bin(), "--version", NULL};
    cr_assert_eq(run(v, NULL, out), 0, "--version: %s", out);
    cr_assert(strstr(out, "0.") != NULL || strstr(out, "1.") != NULL, "--version prints no version: %s", out);
    const char *h[] = {it_gateway_bin(), "--help", NULL};
    cr_assert_eq(run(h, NULL, out), 0, "--help: %s", out);
    static const char *flags[] = {"--listen",         "--processes",       "--redis-url",       "--auth",
                                  "--jwt-secret",     "--jwt-secret-file", "--allowed-origins", "--log-format",
                                  "--log-level",      "--max-message-bytes", "--rate-limit",    "--max-queued-bytes",
                                  "--handshake-timeout", "--heartbeat",    "--drain-seconds",   "--www-dir",
                                  "CHATMI_REDIS_URL", "CHATMI_LISTEN"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        cr_assert_not_null(strstr(out, flags[i]), "--help does not mention %s", flags[i]);
    /* defaults of the contract */
    cr_assert_not_null(strstr(out, "0.0.0.0:8080"), "--help does not show the --listen default");
    cr_assert_not_null(strstr(out, "20/40"), "--help does not show the --rate-limit default");
    cr_assert_not_null(strstr(out, "65536"), "--help does not show the --max-message-bytes default");
}

Test(cli, worker_version_and_help)
{
    static char out[OUT_MAX];
    const char *v[] = {it_worker_bin(), "--version", NULL};
    cr_assert_eq(run(v, NULL, out), 0, "--version: %s", out);
    const char *h[] = {it_worker_bin(), "--help", NULL};
    cr_assert_eq(run(h, NULL, out), 0, "--help: %s", out);
    static const char *flags[] = {"--redis-url",    "--stage",       "--batch",    "--history-max",
                                  "--idempotency-ttl", "--max-text-bytes", "--worker-id", "--heartbeat",
                                  "--log-format",   "--log-level"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        cr_assert_not_null(strstr(out, flags[i]), "worker --help does not mention %s", flags[i]);
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return 1;
    return 0;
}

/* argv with a safe listen address and an unreachable Redis, so a program
 * that wrongly accepts the bad value binds nothing public and fails slowly
 * rather than doing harm; then the bad option. */
static void expect_exit2(const char *bin, const char *flag, const char *value, const char *names)
{
    static char out[OUT_MAX];
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
    const char *argv[12];
    int n = 0;
    argv[n++] = bin;
    if (strcmp(bin, it_gateway_bin()) == 0 && strcmp(flag, "--listen") != 0) {
        argv[n++] = "--listen";
        argv[n++] = listen;
    }
    if (strcmp(flag, "--redis-url") != 0) {
        argv[n++] = "--redis-url";
        argv[n++] = "redis://127.0.0.1:1/0";
    }
    argv[n++] = flag;
    if (value != NULL)
        argv[n++] = value;
    argv[n] = NULL;
    int code = run(argv, NULL, out);
    cr_assert_eq(code, 2, "%s %s %s: exit %d, expected 2; output:\n%s", bin, flag, value ? value : "", code, out);
    cr_assert(contains_ci(out, names), "%s %s %s: the message does not name %s:\n%s", bin, flag, value ? value : "",
              names, out);
}

Test(cli, gateway_bad_values_exit_2)
{
    const char *gw = it_gateway_bin();
    expect_exit2(gw, "--processes", "abc", "processes");
    expect_exit2(gw, "--processes", "0", "processes");
    expect_exit2(gw, "--auth", "maybe", "auth");
    expect_exit2(gw, "--log-format", "xml", "log-format");
    expect_exit2(gw, "--log-level", "loud", "log-level");
    expect_exit2(gw, "--max-message-bytes", "lots", "max-message-bytes");
    expect_exit2(gw, "--rate-limit", "fast/ish", "rate-limit");
    expect_exit2(gw, "--max-queued-bytes", "-5", "max-queued-bytes");
    expect_exit2(gw, "--handshake-timeout", "soon", "handshake-timeout");
    expect_exit2(gw, "--heartbeat", "never", "heartbeat");
    expect_exit2(gw, "--drain-seconds", "x", "drain-seconds");
    expect_exit2(gw, "--listen", "nowhere", "listen");
    expect_exit2(gw, "--listen", "127.0.0.1:99999", "listen");
    expect_exit2(gw, "--redis-url", "http://127.0.0.1:6379/", "redis-url");
    expect_exit2(gw, "--bogus-option", "1", "bogus-option");
    /* jwt (the default) without a key */
    expect_exit2(gw, "--auth", "jwt", "jwt-secret");
    expect_exit2(gw, "--jwt-secret-file", "/nonexistent/chatmi.key", "jwt-secret-file");
    /* security options (issue 6) */
    expect_exit2(gw, "--trusted-proxies", "10.0.0.0/33", "trusted-proxies");
    expect_exit2(gw, "--trusted-proxies", "alb.example", "trusted-proxies");
    expect_exit2(gw, "--max-conns", "0", "max-conns");
    expect_exit2(gw, "--max-conns-per-ip", "many", "max-conns-per-ip");
    expect_exit2(gw, "--max-sessions-per-user", "-1", "max-sessions-per-user");
    expect_exit2(gw, "--jwt-secret", "new,old,older", "jwt-secret");
    expect_exit2(gw, "--jwt-secret", "new,", "jwt-secret");
    expect_exit2(gw, "--user-rate-limit", "lots", "user-rate-limit");
    expect_exit2(gw, "--redis-url-file", "/nonexistent/redis-url", "redis-url-file");
}

Test(cli, worker_bad_values_exit_2)
{
    const char *w = it_worker_bin();
    expect_exit2(w, "--batch", "abc", "batch");
    expect_exit2(w, "--stage", "both", "stage");
    expect_exit2(w, "--history-max", "many", "history-max");
    expect_exit2(w, "--max-text-bytes", "huge", "max-text-bytes");
    expect_exit2(w, "--idempotency-ttl", "forever", "idempotency-ttl");
    expect_exit2(w, "--log-format", "yaml", "log-format");
    expect_exit2(w, "--redis-url", "redis://", "redis-url");
    expect_exit2(w, "--redis-url-file", "/nonexistent/redis-url", "redis-url-file");
}

Test(cli, bad_values_from_environment_exit_2)
{
    static char out[OUT_MAX];
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
    const char *argv[] = {it_gateway_bin(), "--listen", listen, "--redis-url", "redis://127.0.0.1:1/0", NULL};
    const char *env1[] = {"CHATMI_PROCESSES=lots", "CHATMI_AUTH=none", NULL};
    int code = run(argv, env1, out);
    cr_assert_eq(code, 2, "CHATMI_PROCESSES=lots: exit %d; output:\n%s", code, out);
    cr_assert(contains_ci(out, "processes"), "the message does not name the option:\n%s", out);

    const char *wargv[] = {it_worker_bin(), "--redis-url", "redis://127.0.0.1:1/0", NULL};
    const char *env2[] = {"CHATMI_STAGE=everything", NULL};
    code = run(wargv, env2, out);
    cr_assert_eq(code, 2, "CHATMI_STAGE=everything: exit %d; output:\n%s", code, out);
    cr_assert(contains_ci(out, "stage"), "the message does not name the option:\n%s", out);
}

/* ---- signals and durability ------------------------------------------------------------ */

TestSuite(lifecycle, .init = it_redis_init, .fini = it_end, .timeout = 60);

Test(lifecycle, gateway_sigterm_closes_1001_and_exits_0)
{
    struct it_gw_conf c = {.drain_seconds = "1"};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    struct ws *d = it_open(it_port(), "dave", IT_SUBPROTO_MSGPACK);
    json_decref(it_dm(a, "1", "bob", "before shutdown"));

    cr_assert_eq(kill(it_gw_pid(0), SIGTERM), 0);
    int64_t t0 = it_mono_ms();
    struct ws *all[] = {a, b, d};
    for (int i = 0; i < 3; i++) {
        int code = ws_wait_close(all[i], it_ms(6000));
        cr_assert_eq(code, 1001, "%s: close %d on SIGTERM, expected 1001 (going away)", all[i]->name, code);
    }
    cr_assert(it_mono_ms() - t0 < it_ms(5000), "clients closed only after %lld ms with --drain-seconds 1",
              (long long)(it_mono_ms() - t0));
    int st = -1;
    cr_assert(it_gateway_signal_wait(0, 0, it_ms(8000), &st), "the gateway master did not exit after SIGTERM");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gateway exit status %d (signal %d), expected 0",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    for (int i = 0; i < 3; i++)
        ws_free(all[i]);
}

Test(lifecycle, worker_sigterm_exits_0)
{
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    json_decref(it_dm(a, "1", "bob", "x"));
    int st = -1;
    cr_assert(it_worker_signal_wait(0, SIGTERM, it_ms(8000), &st), "the worker did not exit after SIGTERM");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status %d (signal %d), expected 0",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ws_free(a);
}

Test(lifecycle, acked_messages_survive_process_loss)
{
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    json_t *ack = it_dm(a, "1", "bob", "durable");
    char msg_id[128];
    snprintf(msg_id, sizeof(msg_id), "%s", js(ack, "msg"));
    json_decref(ack);
    ws_free(a);

    /* lose every chatmi process at once */
    cr_assert(it_gateway_signal_wait(0, SIGKILL, it_ms(5000), NULL));
    cr_assert(it_worker_signal_wait(0, SIGKILL, it_ms(5000), NULL));
    int gw = it_gateway_start(NULL);
    it_worker_start(NULL);

    struct ws *b = it_open(it_gw_port(gw), "bob", NULL);
    json_t *h = it_history(b, "h", "dm:alice:bob", "after", 0, 0);
    json_t *msgs = json_object_get(h, "messages");
    it_assert_seq_range(msgs, 1, 1, "history after losing gateway and worker");
    cr_assert_str_eq(js(json_array_get(msgs, 0), "msg"), msg_id);
    cr_assert_str_eq(js(json_array_get(msgs, 0), "text"), "durable");
    json_decref(h);
    ack = it_dm(b, "2", "alice", "next");
    cr_assert_eq(ji(ack, "seq"), 2, "seq continues after the restart: %s", jdump(ack));
    json_decref(ack);
    ws_free(b);
}

/* Architecture: the master respawns a child that dies; service goes on. */
Test(lifecycle, gateway_child_loss_service_continues)
{
    it_gateway_start(NULL);
    it_worker_start(NULL);
    pid_t kids[8];
    int n = it_gw_children(0, kids, 8);
    cr_assert_eq(n, 2, "--processes 2 but the master has %d children", n);
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    /* new sessions work again within a bounded time (respawn with backoff) */
    int64_t deadline = it_mono_ms() + it_ms(15000);
    struct ws *a = NULL;
    for (int i = 0; i < 300 && a == NULL && it_mono_ms() < deadline; i++) {
        char err[256];
        struct ws_connect_opts o = {.path = "/ws?user=alice", .timeout_ms = 1000};
        a = ws_open(it_port(), &o, err, sizeof(err));
        if (a == NULL)
            it_pause_ms(50);
    }
    cr_assert_not_null(a, "no session possible 15 s after the children were killed");
    /* a full round trip; `unavailable` is a fair answer while a fresh child
     * is still connecting to Redis, so retry that (bounded) */
    json_t *r = NULL;
    for (int i = 0; i < 100 && it_mono_ms() < deadline; i++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", i);
        json_decref(r);
        r = it_req(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", "bob", "text", "after respawn"));
        if (strcmp(js(r, "op"), "error") != 0 || strcmp(js(r, "code"), "unavailable") != 0)
            break;
        it_pause_ms(100);
    }
    cr_assert_str_eq(js(r, "op"), "ack", "after the children were replaced: %s", jdump(r));
    json_decref(r);
    pid_t now[8];
    int m = 0;
    for (int i = 0; i < 300 && it_mono_ms() < deadline; i++) {
        m = it_gw_children(0, now, 8);
        if (m == 2)
            break;
        it_pause_ms(50);
    }
    cr_assert_eq(m, 2, "the master has %d children 15 s after losing both, expected 2", m);
    ws_free(a);
}

/* ---- SIGHUP: reload ------------------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* SIGHUP re-reads the --config file and replaces every child, one at a
 * time: connections opened throughout the reload all get their hello (none
 * refused), sessions of replaced children are closed with 1001, and new
 * sessions run with the new options. */
Test(lifecycle, sighup_reload_without_refusing_connections, .timeout = 120)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/gateway.env", it_dir());
    write_file(path, "# before the reload\nCHATMI_MAX_MESSAGE_BYTES=65536\n");
    const char *extra[] = {"--config", path, NULL};
    struct it_gw_conf c = {.drain_seconds = "1", .extra = extra};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    json_decref(it_dm(a, "1", "bob", "before the reload"));

    write_file(path, "CHATMI_MAX_MESSAGE_BYTES=1024\n");
    cr_assert_eq(kill(it_gw_pid(0), SIGHUP), 0);
    int opened = 0, done = 0;
    int64_t deadline = it_mono_ms() + it_ms(60000);
    while (!done && it_mono_ms() < deadline && opened < 5000) {
        done = it_gw_log_wait(0, "\"event\":\"reloaded\"", 0);
        char user[32];
        snprintf(user, sizeof(user), "probe%d", opened);
        struct ws *p = ws_open_user(it_port(), user, NULL);
        cr_assert_not_null(p, "connection %d during the reload was refused or got no hello", opened);
        ws_free(p);
        opened++;
    }
    cr_assert(done, "the gateway did not log \"reloaded\" within 60 s");
    cr_assert_gt(opened, 0);
    cr_log_info("%d connections opened during the reload, none refused", opened);

    int code = ws_wait_close(a, it_ms(10000));
    cr_assert_eq(code, 1001, "a session of a replaced child closed with %d, expected 1001", code);
    ws_free(a);

    /* the new limit holds for new sessions */
    struct ws *b = it_open(it_port(), "bob", NULL);
    char big[2048];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char req[2200];
    snprintf(req, sizeof(req), "{\"op\":\"send\",\"id\":\"2\",\"to\":\"alice\",\"text\":\"%s\"}", big);
    cr_assert_eq(ws_send_text(b, req), 0);
    code = ws_wait_close(b, IT_WAIT);
    cr_assert_eq(code, 1009, "a 2 KiB message after the reload to 1 KiB closed with %d, expected 1009", code);
    ws_free(b);
    struct ws *d = it_open(it_port(), "dave", NULL);
    json_decref(it_dm(d, "3", "bob", "after the reload"));
    ws_free(d);
}

/* A connection the replaced child had accepted but whose upgrade request
 * had not arrived yet when the reload retired that child still gets its
 * 101: the retiring child waits for its handshakes (up to the drain) rather
 * than closing them with its last session. */
Test(lifecycle, reload_keeps_accepted_handshakes, .timeout = 60)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/gateway.env", it_dir());
    write_file(path, "CHATMI_MAX_MESSAGE_BYTES=65536\n");
    const char *extra[] = {"--config", path, NULL};
    struct it_gw_conf c = {.processes = 1, .drain_seconds = "2", .extra = extra};
    it_gateway_start(&c);
    pid_t old = 0;
    cr_assert_eq(it_gw_children(0, &old, 1), 1, "no gateway child");

    int fd = it_tcp_connect(it_port(), it_ms(5000));
    cr_assert_geq(fd, 0, "cannot connect to the gateway");
    int accepted = 0;
    for (int i = 0; i < 500 && !accepted; i++) {
        accepted = it_pid_accepted(old, fd);
        if (!accepted)
            it_pause_ms(10);
    }
    cr_assert(accepted, "child %d did not accept the connection within 5 s", (int)old);

    cr_assert_eq(kill(it_gw_pid(0), SIGHUP), 0);
    cr_assert(it_gw_log_wait(0, "\"event\":\"retiring\"", it_ms(10000)), "the old child did not retire");
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws?user=late HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n");
    struct it_http_resp resp;
    it_http_raw_fd(fd, req, (size_t)n, it_ms(5000), 0, &resp);
    int status = resp.status;
    it_http_resp_free(&resp);
    cr_assert_eq(status, 101, "an accepted connection upgraded after its child retired got status %d (0: closed)",
                 status);
    cr_assert(it_gw_log_wait(0, "\"event\":\"reloaded\"", it_ms(10000)), "the reload did not finish");
}

/* A reload with a bad option changes nothing: logged, and the running
 * children keep their sessions. */
Test(lifecycle, sighup_bad_config_keeps_running)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/gateway.env", it_dir());
    write_file(path, "CHATMI_HEARTBEAT=25\n");
    const char *extra[] = {"--config", path, NULL};
    struct it_gw_conf c = {.extra = extra};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    write_file(path, "CHATMI_HEARTBEAT=banana\n");
    cr_assert_eq(kill(it_gw_pid(0), SIGHUP), 0);
    cr_assert(it_gw_log_wait(0, "reload_failed", it_ms(10000)), "no reload_failed logged for a bad value");
    cr_assert(it_gw_log_wait(0, "CHATMI_HEARTBEAT", 0), "the error does not name the setting");
    json_decref(it_dm(a, "1", "bob", "still here"));
    it_sync(a, "s");
    ws_free(a);
}
