/* test_redis_security.c: chatmi against a protected Redis (issue 6).
 *
 * acl: redis-server with docs/redis-acl.conf's user (only the commands,
 *   keys and channels chatmi uses), the default user off; the gateway and
 *   the worker log in as that user and a whole chat scenario runs with no
 *   ACL denial logged, while the same user is refused anything else.
 * tls: redis-server listening only on its tls-port, with a CA and a
 *   certificate the test makes with openssl; a stunnel client (Debian
 *   stunnel4) in front of it verifies the certificate, and the gateway and
 *   the worker reach Redis only through it, with AUTH. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

#define CHATMI_PW "chatmi-test-password"
#define ADMIN_PW "admin-test-password"

static const char *redis_server_bin(void)
{
    const char *r = getenv("REDIS_SERVER");
    return r != NULL && *r != '\0' ? r : "/usr/bin/redis-server";
}

/* Polls with redis-cli (bounded) until the server answers PONG to these
 * credentials. */
static void wait_redis(int port, const char *const *auth_args)
{
    char out[512];
    const char *args[16];
    size_t n = 0;
    for (const char *const *a = auth_args; a != NULL && *a != NULL && n < 12; a++)
        args[n++] = *a;
    args[n++] = "PING";
    args[n] = NULL;
    int64_t end = it_mono_ms() + it_ms(10000);
    for (int i = 0; i < 400 && it_mono_ms() < end; i++) {
        if (it_redis_cli(port, args, out, sizeof(out)) == 0 && strstr(out, "PONG") != NULL)
            return;
        it_pause_ms(25);
    }
    it_dump_logs();
    cr_assert_fail("redis on port %d never answered PONG: %s", port, out);
}

/* Starts redis-server on a free port with the ACL file acl (an admin user
 * with ADMIN_PW in it) and waits for it. Returns the port. */
static int start_acl_redis(const char *acl)
{
    int port = it_free_port();
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *rargv[] = {redis_server_bin(), "--port", portstr, "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", it_dir(), "--aclfile", acl, "--protected-mode", "no",
                           NULL};
    it_aux_start("redis-acl", rargv, NULL);
    const char *admin[] = {"--user", "admin", "--pass", ADMIN_PW, "--no-auth-warning", NULL};
    wait_redis(port, admin);
    return port;
}

/* start_acl_redis, then the chatmi user's URL in a file (path) and a
 * gateway reading it with --redis-url-file, as the systemd and container
 * examples do: a password never goes on a command line. Returns the port. */
static int start_acl_gateway(const char *acl, char *path, size_t pathlen)
{
    int port = start_acl_redis(acl);
    snprintf(path, pathlen, "%s/redis-url", it_dir());
    FILE *uf = fopen(path, "w");
    cr_assert_not_null(uf, "cannot write %s", path);
    fprintf(uf, "redis://chatmi:%s@127.0.0.1:%d/0\n", CHATMI_PW, port);
    fclose(uf);
    const char *from_file[] = {"--redis-url-file", path, NULL};
    struct it_gw_conf gc = {.redis_url = IT_OMIT, .extra = from_file};
    it_gateway_start(&gc);
    return port;
}

/* DM, its delivery, history, a room and presence: every kind of Redis work
 * a session causes (queue push, scripts, fan-out, pub/sub, sets). */
static void chat_scenario(int port)
{
    struct ws *a = it_open(port, "alice", NULL);
    struct ws *b = it_open(port, "bob", NULL);
    json_t *ack = it_dm(a, "d1", "bob", "hello over a protected redis");
    cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
    json_t *m = it_deliv(b, "dm:alice:bob", ji(ack, "seq"));
    cr_assert_str_eq(js(m, "text"), "hello over a protected redis");
    json_decref(m);
    json_decref(ack);
    json_t *h = it_req_op(b, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h1", "conv", "dm:alice:bob"),
                          "history");
    cr_assert_eq(json_array_size(json_object_get(h, "messages")), 1, "%s", jdump(h));
    json_decref(h);
    it_join(a, "j1", "club");
    it_join(b, "j2", "club");
    ack = it_room_send(a, "r1", "club", "room message");
    cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
    m = it_deliv(b, "room:club", ji(ack, "seq"));
    json_decref(m);
    json_decref(ack);
    json_decref(it_req_op(a, json_pack("{s:s,s:s,s:[s]}", "op", "presence", "id", "p1", "users", "bob"), "presence"));
    json_decref(it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", "c1"), "convs"));
    ws_free(a);
    ws_free(b);
}

/* ---- ACL -------------------------------------------------------------------------- */

TestSuite(acl, .init = it_begin, .fini = it_end, .timeout = 90);

Test(acl, least_privilege_user_runs_the_chat)
{
    it_skip_in_cluster("ACL users on one Redis of its own (docs/redis-acl.conf)");
    /* the ACL user of docs/redis-acl.conf, plus an admin for the checks */
    const char *srcdir = getenv("CHATMI_IT_SRCDIR");
    char src[PATH_MAX], acl[PATH_MAX], line[1024];
    snprintf(src, sizeof(src), "%s/../../docs/redis-acl.conf", srcdir != NULL ? srcdir : ".");
    snprintf(acl, sizeof(acl), "%s/users.acl", it_dir());
    FILE *in = fopen(src, "r"), *out = fopen(acl, "w");
    cr_assert(in != NULL && out != NULL, "cannot read %s or write %s", src, acl);
    int users = 0;
    while (fgets(line, sizeof(line), in) != NULL) {
        if (strncmp(line, "user chatmi ", 12) != 0)
            continue; /* comments; the file's example password is replaced below */
        char *pw = strstr(line, " >");
        cr_assert_not_null(pw, "the chatmi user has no password in %s", src);
        char *end = strchr(pw + 2, ' ');
        cr_assert_not_null(end);
        fprintf(out, "%.*s >%s%s", (int)(pw - line), line, CHATMI_PW, end);
        users++;
    }
    fclose(in);
    cr_assert_eq(users, 1, "one 'user chatmi' line expected in %s", src);
    fprintf(out, "user default off\nuser admin on >%s ~* &* +@all\n", ADMIN_PW);
    fclose(out);

    char url_file[PATH_MAX];
    int port = start_acl_gateway(acl, url_file, sizeof(url_file));
    const char *from_file[] = {"--redis-url-file", url_file, NULL};
    struct it_worker_conf wc = {.redis_url = IT_OMIT, .extra = from_file};
    it_worker_start(&wc);
    chat_scenario(it_port());
    cr_assert(!it_gw_log_wait(0, CHATMI_PW, 10), "the gateway logged the Redis password");

    /* nothing chatmi did was denied */
    char res[4096];
    const char *log[] = {"--user", "admin", "--pass", ADMIN_PW, "--no-auth-warning", "ACL", "LOG", NULL};
    cr_assert_eq(it_redis_cli(port, log, res, sizeof(res)), 0);
    cr_assert(strstr(res, "reason") == NULL, "ACL denials during the chat scenario:\n%s", res);

    /* and the user is limited: other keys, other channels, admin commands */
    struct {
        const char *args[5];
    } refused[] = {
        {{"GET", "not-chatmi", NULL}},
        {{"FLUSHALL", NULL}},
        {{"KEYS", "*", NULL}},
        {{"CONFIG", "GET", "dir", NULL}},
        {{"PUBLISH", "other", "x", NULL}},
        {{"ACL", "LIST", NULL}},
        {{"SUBSCRIBE", "other", NULL}},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const char *argv[16] = {"--user", "chatmi", "--pass", CHATMI_PW, "--no-auth-warning"};
        size_t n = 5;
        for (size_t k = 0; refused[i].args[k] != NULL; k++)
            argv[n++] = refused[i].args[k];
        argv[n] = NULL;
        it_redis_cli(port, argv, res, sizeof(res));
        cr_assert(strstr(res, "NOPERM") != NULL, "the chatmi ACL user may run %s: %s", refused[i].args[0], res);
    }
    /* the default user is off: no password, no access */
    const char *anon[] = {"GET", "chatmi:x", NULL};
    it_redis_cli(port, anon, res, sizeof(res));
    cr_assert(strstr(res, "NOAUTH") != NULL || strstr(res, "NOPERM") != NULL || strstr(res, "WRONGPASS") != NULL,
              "anonymous access: %s", res);
}

/* A Redis whose ACL lets chatmi run every command but subscribe to no
 * channel (a misconfigured user): the gateway logs the refusal with
 * Redis's reason, keeps running and retries with backoff; the session
 * gets its hello once an administrator grants the channels. */
Test(acl, refused_subscribe_logged_and_retried)
{
    it_skip_in_cluster("ACL users on one Redis of its own");
    char acl[PATH_MAX];
    snprintf(acl, sizeof(acl), "%s/users.acl", it_dir());
    FILE *out = fopen(acl, "w");
    cr_assert_not_null(out, "cannot write %s", acl);
    fprintf(out, "user default off\nuser admin on >%s ~* &* +@all\nuser chatmi on >%s ~* resetchannels +@all\n",
            ADMIN_PW, CHATMI_PW);
    fclose(out);
    char url_file[PATH_MAX];
    int port = start_acl_gateway(acl, url_file, sizeof(url_file));
    struct ws_connect_opts o = {.path = "/ws?user=alice", .timeout_ms = it_ms(10000)};
    char err[256];
    struct ws *a = ws_connect(it_port(), &o, NULL, err, sizeof(err));
    cr_assert_not_null(a, "no WebSocket: %s", err);
    cr_assert(it_gw_log_wait(0, "\"event\":\"redis_subscribe_refused\"", it_ms(15000)),
              "the refused SUBSCRIBE was not logged");
    cr_assert(it_gw_log_wait(0, "NOPERM", 0), "the log does not give Redis's reason");
    cr_assert(!it_gw_log_wait(0, CHATMI_PW, 0), "the gateway logged the Redis password");

    char res[512];
    const char *grant[] = {"--user", "admin", "--pass", ADMIN_PW, "--no-auth-warning",
                           "ACL", "SETUSER", "chatmi", "allchannels", NULL};
    cr_assert_eq(it_redis_cli(port, grant, res, sizeof(res)), 0, "ACL SETUSER: %s", res);
    json_t *hello = ws_wait_op(a, "hello", it_ms(20000));
    cr_assert_not_null(hello, "no hello after the channels were granted");
    json_decref(hello);
    ws_free(a);
}

/* ---- TLS through a stunnel sidecar ----------------------------------------------------- */

TestSuite(redis_tls, .init = it_begin, .fini = it_end, .timeout = 120);

static void run_ok(const char *const *argv, const char *what)
{
    char out[4096];
    int status = 0;
    int rc = it_run(argv, NULL, it_ms(30000), out, sizeof(out), &status);
    cr_assert(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed:\n%s", what, out);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

Test(redis_tls, chat_through_stunnel_to_redis_tls_port)
{
    it_skip_in_cluster("TLS to one Redis of its own through stunnel");
    char openssl[PATH_MAX], stunnel[PATH_MAX];
    if (it_which("stunnel4", stunnel, sizeof(stunnel)) == NULL &&
        it_which("stunnel", stunnel, sizeof(stunnel)) == NULL) {
        const char *req = getenv("CHATMI_DEPLOY_CHECKS_REQUIRED");
        cr_assert(req == NULL || strcmp(req, "1") != 0,
                  "stunnel4 not found (Debian: apt-get install stunnel4), and CHATMI_DEPLOY_CHECKS_REQUIRED=1");
        cr_skip_test("stunnel4 not found (Debian: apt-get install stunnel4; scripts/install-deps.sh does)");
    }
    cr_assert_not_null(it_which("openssl", openssl, sizeof(openssl)), "openssl not found");

    /* a CA and a server certificate for localhost / 127.0.0.1 */
    const char *d = it_dir();
    char ca_key[PATH_MAX], ca[PATH_MAX], key[PATH_MAX], csr[PATH_MAX], crt[PATH_MAX], ext[PATH_MAX];
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", d);
    snprintf(ca, sizeof(ca), "%s/ca.pem", d);
    snprintf(key, sizeof(key), "%s/redis.key", d);
    snprintf(csr, sizeof(csr), "%s/redis.csr", d);
    snprintf(crt, sizeof(crt), "%s/redis.pem", d);
    snprintf(ext, sizeof(ext), "%s/san.ext", d);
    write_file(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    const char *mkca[] = {openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=chatmi test CA",
                          NULL};
    run_ok(mkca, "openssl: CA");
    const char *mkcsr[] = {openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                           "-keyout", key, "-out", csr, "-subj", "/CN=localhost", NULL};
    run_ok(mkcsr, "openssl: server key");
    const char *sign[] = {openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                          "-out", crt, "-days", "2", "-extfile", ext, NULL};
    run_ok(sign, "openssl: server certificate");

    /* Redis with TLS only: the plain port is off */
    int tls_port = it_free_port(), local_port = it_free_port();
    char tls_str[16];
    snprintf(tls_str, sizeof(tls_str), "%d", tls_port);
    const char *rargv[] = {redis_server_bin(), "--port", "0", "--tls-port", tls_str, "--bind", "127.0.0.1",
                           "--tls-cert-file", crt, "--tls-key-file", key, "--tls-ca-cert-file", ca,
                           "--tls-auth-clients", "no", "--requirepass", CHATMI_PW, "--save", "", "--appendonly",
                           "no", "--dir", d, "--protected-mode", "no", NULL};
    it_aux_start("redis-tls", rargv, NULL);

    /* stunnel in client mode: plain on 127.0.0.1:local_port, TLS to Redis,
     * the certificate checked against the CA and the name "localhost" */
    char conf[PATH_MAX], text[PATH_MAX + 512];
    snprintf(conf, sizeof(conf), "%s/stunnel.conf", d);
    snprintf(text, sizeof(text),
             "foreground = yes\npid =\n\n[redis]\nclient = yes\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
             "verifyChain = yes\nCAfile = %s\ncheckHost = localhost\n",
             local_port, tls_port, ca);
    write_file(conf, text);
    const char *sargv[] = {stunnel, conf, NULL};
    it_aux_start("stunnel", sargv, NULL);
    const char *auth[] = {"-a", CHATMI_PW, "--no-auth-warning", NULL};
    wait_redis(local_port, auth); /* through stunnel: TLS works end to end */

    char url[256];
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/0", CHATMI_PW, local_port);
    struct it_gw_conf gc = {.redis_url = url};
    it_gateway_start(&gc);
    struct it_worker_conf wc = {.redis_url = url};
    it_worker_start(&wc);
    chat_scenario(it_port());

    /* plain text to the TLS port gets nowhere: what worked went through TLS */
    char res[1024];
    const char *plain[] = {"-a", CHATMI_PW, "--no-auth-warning", "PING", NULL};
    it_redis_cli(tls_port, plain, res, sizeof(res));
    cr_assert(strstr(res, "PONG") == NULL, "Redis answered plain text on its TLS port: %s", res);
    /* the clients Redis sees are chatmi's, all arrived over TLS (no plain port) */
    const char *list[] = {"-a", CHATMI_PW, "--no-auth-warning", "CLIENT", "LIST", NULL};
    cr_assert_eq(it_redis_cli(local_port, list, res, sizeof(res)), 0);
    cr_assert(strstr(res, "cmd=") != NULL, "%s", res);
}
