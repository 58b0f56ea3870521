/* test_http.c: contract sections 2 and 3: the HTTP endpoints, the RFC 6455
 * opening handshake, subprotocol negotiation, authentication (JWT and none),
 * Origin checks and the handshake timeout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/jwt.h"
#include "itest.h"

#define SECRET "it-secret-\x01-not-for-production"

/* ---- plain HTTP ----------------------------------------------------------- */

TestSuite(http, .init = it_stack_init, .fini = it_end, .timeout = 60);

static void get_status(const char *path, int want)
{
    struct it_http_resp r;
    int rc = it_http_get(it_port(), path, IT_WAIT, &r);
    cr_assert_eq(rc, 0, "GET %s: no complete response (status %d)", path, r.status);
    cr_assert_eq(r.status, want, "GET %s: status %d, expected %d\n%s", path, r.status, want, r.head);
    it_http_resp_free(&r);
}

Test(http, healthz_and_readyz)
{
    get_status("/healthz", 200);
    get_status("/readyz", 200);
}

Test(http, unknown_paths_404)
{
    get_status("/nope", 404);
    get_status("/ws/extra", 404);
    get_status("/healthz/x", 404);
    get_status("/index.html.bak", 404);
}

Test(http, demo_page)
{
    struct it_http_resp r;
    cr_assert_eq(it_http_get(it_port(), "/", IT_WAIT, &r), 0);
    cr_assert_eq(r.status, 200, "GET /: %s", r.head);
    char ct[128];
    cr_assert_not_null(it_http_header(r.head, "Content-Type", ct, sizeof(ct)), "GET / without Content-Type");
    cr_assert(strncmp(ct, "text/html", 9) == 0, "GET / Content-Type: %s", ct);
    cr_assert(strcasestr(r.body, "<html") != NULL || strcasestr(r.body, "<!doctype html") != NULL,
              "GET / is not an HTML page: %.200s", r.body);
    it_http_resp_free(&r);
}

/* The browser client's other files: each byte for byte as in --www-dir,
 * with its type and the CSP; nothing else of the directory, and no path
 * that only resolves to one of them, is served. */
static void get_file(const char *path, const char *file, const char *ctype)
{
    struct it_http_resp r;
    cr_assert_eq(it_http_get(it_port(), path, IT_WAIT, &r), 0);
    cr_assert_eq(r.status, 200, "GET %s: %s", path, r.head);
    char hv[512];
    cr_assert_not_null(it_http_header(r.head, "Content-Type", hv, sizeof(hv)), "GET %s without Content-Type", path);
    cr_assert_str_eq(hv, ctype, "GET %s", path);
    cr_assert_not_null(it_http_header(r.head, "Content-Security-Policy", hv, sizeof(hv)), "GET %s without CSP", path);
    cr_assert(strstr(hv, "script-src 'self'") != NULL && strstr(hv, "default-src 'none'") != NULL, "CSP: %s", hv);
    cr_assert_not_null(it_http_header(r.head, "X-Content-Type-Options", hv, sizeof(hv)));

    char fpath[1024];
    snprintf(fpath, sizeof(fpath), "%s/%s", getenv("CHATMI_WWW_DIR"), file);
    FILE *f = fopen(fpath, "rb");
    cr_assert_not_null(f, "%s", fpath);
    static char want[1024 * 1024];
    size_t n = fread(want, 1, sizeof(want), f);
    fclose(f);
    cr_assert_eq(r.body_len, n, "GET %s: %zu bytes, the file has %zu", path, r.body_len, n);
    cr_assert_eq(memcmp(r.body, want, n), 0, "GET %s: not the file's bytes", path);
    it_http_resp_free(&r);
}

Test(http, client_files)
{
    get_file("/", "index.html", "text/html; charset=utf-8");
    get_file("/app.js", "app.js", "text/javascript; charset=utf-8");
    get_file("/style.css", "style.css", "text/css; charset=utf-8");
    get_file("/icon.svg", "icon.svg", "image/svg+xml");
    const char *refused[] = {"/index.html", "/app.js/", "/%61pp.js", "/./app.js", "//app.js", "/www/app.js",
                             "/../www/app.js", "/..%2fwww/app.js", "/Makefile.am", "/app.js.map", "/style.css?x/../y"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        /* a query is not part of the path: "/style.css?x/../y" is /style.css */
        get_status(refused[i], strchr(refused[i], '?') != NULL ? 200 : 404);
    }
    struct it_http_resp r;
    const char *post = "POST /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    cr_assert_eq(it_http_raw(it_port(), post, strlen(post), IT_WAIT, 0, &r), 0);
    cr_assert_eq(r.status, 405, "POST /app.js: %s", r.head);
    it_http_resp_free(&r);
}

Test(http, metrics_prometheus_text)
{
    /* some traffic first, so the counters have something to count */
    struct ws *a = it_open(it_port(), "alice", NULL);
    json_decref(it_dm(a, "1", "bob", "count me"));
    struct it_http_resp r;
    cr_assert_eq(it_http_get(it_port(), "/metrics", IT_WAIT, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.head);
    char ct[128];
    cr_assert_not_null(it_http_header(r.head, "Content-Type", ct, sizeof(ct)));
    cr_assert(strncmp(ct, "text/plain", 10) == 0, "Prometheus text format is text/plain, got %s", ct);
    /* every line: a comment, or `name[{labels}] value` */
    int samples = 0;
    char *save = NULL;
    char *body = strdup(r.body);
    for (char *l = strtok_r(body, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#')
            continue;
        cr_assert(isalpha((unsigned char)l[0]) || l[0] == '_' || l[0] == ':', "bad metric line: %s", l);
        const char *sp = strrchr(l, ' ');
        cr_assert_not_null(sp, "metric line without a value: %s", l);
        char *end;
        strtod(sp + 1, &end);
        cr_assert(*end == '\0' || *end == ' ', "metric value is not a number: %s", l);
        samples++;
    }
    free(body);
    cr_assert(samples > 0, "no samples in /metrics");
    it_http_resp_free(&r);
    ws_free(a);
}

static void raw_expect(const char *req, int want, int want_close)
{
    struct it_http_resp r;
    it_http_raw(it_port(), req, strlen(req), IT_WAIT, want_close, &r);
    cr_assert_eq(r.status, want, "request %.60s...: status %d, expected %d\n%s", req, r.status, want,
                 r.head ? r.head : "");
    if (want_close)
        cr_assert(r.closed, "the connection stays open after %d for %.60s", want, req);
    it_http_resp_free(&r);
}

Test(http, malformed_requests_400_and_closed)
{
    raw_expect("GARBAGE\r\n\r\n", 400, 1);
    raw_expect("GET\r\n\r\n", 400, 1);
    raw_expect("GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400, 1);
    /* binary junk (a TLS ClientHello prefix, no NUL so strlen() covers it) */
    raw_expect("\x16\x03\x01\x02\x05\x01\x07\x01\xfc\x03\x03\r\n\r\n", 400, 1);
    /* and the process still serves */
    get_status("/healthz", 200);
}

Test(http, upgrade_without_headers_400)
{
    /* a plain GET of /ws */
    raw_expect("GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, 0);
    /* Upgrade without Connection: Upgrade */
    raw_expect("GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
               400, 0);
    /* no Sec-WebSocket-Key */
    raw_expect("GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n",
               400, 0);
    /* not GET: refused (400, 404 or 405 are all fair answers), never upgraded */
    const char *post = "POST /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                       "Content-Length: 0\r\n\r\n";
    struct it_http_resp r;
    it_http_raw(it_port(), post, strlen(post), IT_WAIT, 0, &r);
    cr_assert(r.status == 400 || r.status == 404 || r.status == 405, "POST /ws answered %d", r.status);
    it_http_resp_free(&r);
}

Test(http, bad_key_400)
{
    raw_expect("GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
               400, 0);
    raw_expect("GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: !!!!not*base64!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n\r\n",
               400, 0);
}

Test(http, version_426)
{
    const char *req = "GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    struct it_http_resp r;
    it_http_raw(it_port(), req, strlen(req), IT_WAIT, 0, &r);
    cr_assert_eq(r.status, 426, "version 8: %d\n%s", r.status, r.head ? r.head : "");
    char v[64];
    cr_assert_not_null(it_http_header(r.head, "Sec-WebSocket-Version", v, sizeof(v)),
                       "426 must say which version is supported (RFC 6455 4.4)");
    cr_assert(strstr(v, "13") != NULL, "Sec-WebSocket-Version: %s", v);
    it_http_resp_free(&r);
}

Test(http, accept_header_and_upgrade_response)
{
    struct it_http_resp r;
    char err[256];
    struct ws_connect_opts o = {.path = "/ws?user=alice"};
    struct ws *ws = ws_connect(it_port(), &o, &r, err, sizeof(err));
    cr_assert_not_null(ws, "%s", err); /* ws_connect checks Sec-WebSocket-Accept */
    cr_assert_eq(r.status, 101);
    char v[64];
    cr_assert_not_null(it_http_header(r.head, "Upgrade", v, sizeof(v)));
    cr_assert(strcasecmp(v, "websocket") == 0, "Upgrade: %s", v);
    cr_assert_not_null(it_http_header(r.head, "Connection", v, sizeof(v)));
    cr_assert(strcasestr(v, "upgrade") != NULL, "Connection: %s", v);
    /* no subprotocol offered: none echoed, JSON spoken */
    cr_assert_null(it_http_header(r.head, "Sec-WebSocket-Protocol", v, sizeof(v)),
                   "a subprotocol the client did not offer was selected: %s", v);
    json_t *h = ws_recv_json(ws, IT_WAIT);
    cr_assert_not_null(h, "%s", ws->err);
    cr_assert_str_eq(js(h, "op"), "hello");
    cr_assert_str_eq(js(h, "__frame"), "text", "default encoding is JSON in text frames");
    json_decref(h);
    it_http_resp_free(&r);
    ws_free(ws);
}

static struct ws *connect_proto(const char *offer, struct it_http_resp *r)
{
    char err[256];
    struct ws_connect_opts o = {.path = "/ws?user=alice", .protocols = offer};
    struct ws *ws = ws_connect(it_port(), &o, r, err, sizeof(err));
    cr_assert_not_null(ws, "offer \"%s\": %s", offer, err);
    return ws;
}

Test(http, subprotocols)
{
    struct it_http_resp r;
    char v[128];

    struct ws *ws = connect_proto("chatmi.v1.json", &r);
    cr_assert_not_null(it_http_header(r.head, "Sec-WebSocket-Protocol", v, sizeof(v)), "json not echoed");
    cr_assert_str_eq(v, "chatmi.v1.json");
    json_t *h = ws_recv_json(ws, IT_WAIT);
    cr_assert_not_null(h, "%s", ws->err);
    cr_assert_str_eq(js(h, "__frame"), "text");
    json_decref(h);
    ws_free(ws);
    it_http_resp_free(&r);

    ws = connect_proto("chatmi.v1.msgpack", &r);
    cr_assert_not_null(it_http_header(r.head, "Sec-WebSocket-Protocol", v, sizeof(v)), "msgpack not echoed");
    cr_assert_str_eq(v, "chatmi.v1.msgpack");
    h = ws_recv_json(ws, IT_WAIT);
    cr_assert_not_null(h, "msgpack hello: %s", ws->err);
    cr_assert_str_eq(js(h, "op"), "hello");
    cr_assert_str_eq(js(h, "__frame"), "binary", "msgpack sessions get binary frames");
    json_decref(h);
    ws_free(ws);
    it_http_resp_free(&r);

    /* an unknown offer next to a known one: the known one */
    ws = connect_proto("x.unknown, chatmi.v1.msgpack", &r);
    cr_assert_not_null(it_http_header(r.head, "Sec-WebSocket-Protocol", v, sizeof(v)));
    cr_assert_str_eq(v, "chatmi.v1.msgpack");
    ws_free(ws);
    it_http_resp_free(&r);
}

Test(http, unknown_subprotocol_400)
{
    struct it_http_resp r;
    char err[256];
    struct ws_connect_opts o = {.path = "/ws?user=alice", .protocols = "chat.v2, mqtt"};
    struct ws *ws = ws_connect(it_port(), &o, &r, err, sizeof(err));
    cr_assert_null(ws, "unknown subprotocols accepted");
    cr_assert_eq(r.status, 400, "status %d", r.status);
    it_http_resp_free(&r);
}

static int ws_status(const char *path, const char *headers)
{
    struct it_http_resp r;
    char err[256];
    struct ws_connect_opts o = {.path = path, .headers = headers};
    struct ws *ws = ws_connect(it_port(), &o, &r, err, sizeof(err));
    int st = ws != NULL ? 101 : r.status;
    ws_free(ws);
    it_http_resp_free(&r);
    return st;
}

Test(http, auth_none_user_ids)
{
    char path[256], user64[65];
    memset(user64, 'u', 64);
    user64[64] = '\0';
    /* 1..64 of A-Z a-z 0-9 _ . - */
    snprintf(path, sizeof(path), "/ws?user=%s", user64);
    cr_assert_eq(ws_status(path, NULL), 101, "a 64-character user id");
    cr_assert_eq(ws_status("/ws?user=Az09_.-", NULL), 101);
    cr_assert_eq(ws_status("/ws?user=x", NULL), 101);
    snprintf(path, sizeof(path), "/ws?user=%su", user64);
    cr_assert_eq(ws_status(path, NULL), 400, "a 65-character user id");
    cr_assert_eq(ws_status("/ws?user=al%20ice", NULL), 400, "space in the user id");
    cr_assert_eq(ws_status("/ws?user=al:ice", NULL), 400, "':' in the user id");
    cr_assert_eq(ws_status("/ws?user=%C3%A9", NULL), 400, "non-ASCII user id");
    cr_assert_eq(ws_status("/ws?user=", NULL), 400, "empty user id");
    cr_assert_eq(ws_status("/ws", NULL), 400, "no user parameter");

    struct ws *ws = it_open(it_port(), "Az09_.-", NULL);
    cr_assert_str_eq(js(ws->hello, "user"), "Az09_.-");
    ws_free(ws);
}

Test(http, any_origin_without_allowlist)
{
    cr_assert_eq(ws_status("/ws?user=alice", "Origin: https://anything.example\r\n"), 101);
}

/* a request that never completes must not hang the process */
Test(http, stalled_requests_do_not_block_others)
{
    int fds[20];
    for (int i = 0; i < 20; i++) {
        fds[i] = it_tcp_connect(it_port(), IT_WAIT);
        cr_assert(fds[i] >= 0);
        const char *part = "GET /healthz HTTP/1.1\r\nHo";
        cr_assert_eq(write(fds[i], part, strlen(part)), (ssize_t)strlen(part));
    }
    int64_t t0 = it_mono_ms();
    get_status("/healthz", 200);
    struct ws *ws = it_open(it_port(), "alice", NULL);
    ws_free(ws);
    cr_assert(it_mono_ms() - t0 < it_ms(2000), "serving took %lld ms next to stalled requests",
              (long long)(it_mono_ms() - t0));
    for (int i = 0; i < 20; i++)
        close(fds[i]);
}

/* ---- handshake timeout -------------------------------------------------------- */

TestSuite(hstimeout, .init = it_redis_init, .fini = it_end, .timeout = 60);

Test(hstimeout, silent_and_partial_connections_closed)
{
    struct it_gw_conf c = {.handshake_timeout = "1"};
    it_gateway_start(&c);
    int silent = it_tcp_connect(it_port(), IT_WAIT);
    int partial = it_tcp_connect(it_port(), IT_WAIT);
    cr_assert(silent >= 0 && partial >= 0);
    const char *part = "GET /ws?user=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    cr_assert_eq(write(partial, part, strlen(part)), (ssize_t)strlen(part));
    int64_t t0 = it_mono_ms();
    cr_assert(it_wait_eof(silent, it_ms(4000)), "a silent connection is still open 4 s after a 1 s handshake timeout");
    cr_assert(it_wait_eof(partial, it_ms(4000)), "a partial request is still open 4 s after a 1 s handshake timeout");
    int64_t took = it_mono_ms() - t0;
    cr_assert(took >= 500, "closed after %lld ms: earlier than the 1 s timeout", (long long)took);
    close(silent);
    close(partial);
    /* a completed WebSocket handshake is not subject to it */
    it_worker_start(NULL);
    struct ws *ws = it_open(it_port(), "alice", NULL);
    int op;
    unsigned char *data;
    size_t len;
    int r = ws_recv_msg(ws, &op, &data, &len, it_ms(2000));
    cr_assert_eq(r, -1, "an open session was closed or sent something unexpected (close %d)", ws->close_code);
    json_decref(it_req_op(ws, json_pack("{s:s,s:s}", "op", "convs", "id", "1"), "convs"));
    ws_free(ws);
}

/* ---- JWT ------------------------------------------------------------------------ */

static void jwt_init(void)
{
    it_redis_init();
    struct it_gw_conf c = {.auth = "jwt", .jwt_secret = SECRET};
    it_gateway_start(&c);
    it_worker_start(NULL);
}

TestSuite(jwt, .init = jwt_init, .fini = it_end, .timeout = 60);

static int bearer_status(const char *token)
{
    char hdr[4200];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    return ws_status("/ws", hdr);
}

Test(jwt, good_token_in_header_and_query)
{
    char tok[1024];
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() + 600, 0);
    struct ws *ws = ws_open_token(it_port(), tok, NULL);
    cr_assert_not_null(ws, "a valid bearer token was refused");
    cr_assert_str_eq(js(ws->hello, "user"), "alice", "the user is the token's sub: %s", jdump(ws->hello));
    /* and the session works */
    json_decref(it_req_op(ws, json_pack("{s:s,s:s}", "op", "convs", "id", "1"), "convs"));
    ws_free(ws);

    char path[1200];
    snprintf(path, sizeof(path), "/ws?token=%s", tok);
    struct ws_connect_opts o = {.path = path};
    char err[256];
    ws = ws_open(it_port(), &o, err, sizeof(err));
    cr_assert_not_null(ws, "token in the query: %s", err);
    cr_assert_str_eq(js(ws->hello, "user"), "alice");
    ws_free(ws);
}

Test(jwt, user_parameter_ignored_with_jwt)
{
    char tok[1024], path[1300];
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() + 600, 0);
    snprintf(path, sizeof(path), "/ws?user=mallory&token=%s", tok);
    struct ws_connect_opts o = {.path = path};
    char err[256];
    struct ws *ws = ws_open(it_port(), &o, err, sizeof(err));
    cr_assert_not_null(ws, "%s", err);
    cr_assert_str_eq(js(ws->hello, "user"), "alice", "?user= must not override the token: %s", jdump(ws->hello));
    ws_free(ws);
    cr_assert_eq(ws_status("/ws?user=alice", NULL), 401, "--auth jwt: ?user= alone must not authenticate");
}

Test(jwt, missing_token_401)
{
    cr_assert_eq(ws_status("/ws", NULL), 401);
    cr_assert_eq(ws_status("/ws", "Authorization: Bearer \r\n"), 401);
    cr_assert_eq(ws_status("/ws", "Authorization: Basic YWxpY2U6cHc=\r\n"), 401);
}

Test(jwt, expired_401)
{
    char tok[1024];
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() - 120, 0);
    cr_assert_eq(bearer_status(tok), 401);
}

Test(jwt, bad_signature_401)
{
    char tok[1024];
    it_jwt(tok, sizeof(tok), "another-secret", "alice", it_now_s() + 600, 0);
    cr_assert_eq(bearer_status(tok), 401, "token signed with another key");
    /* a valid token with one signature character changed */
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() + 600, 0);
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    cr_assert_eq(bearer_status(tok), 401, "tampered signature");
    /* a valid signature over another payload */
    char other[1024];
    it_jwt(other, sizeof(other), SECRET, "mallory", it_now_s() + 600, 0);
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() + 600, 0);
    char spliced[2048];
    const char *dot1 = strchr(other, '.'), *dot2 = strrchr(other, '.');
    const char *sig = strrchr(tok, '.');
    snprintf(spliced, sizeof(spliced), "%.*s%s", (int)(dot2 - other), other, sig);
    (void)dot1;
    cr_assert_eq(bearer_status(spliced), 401, "payload swapped under another token's signature");
}

Test(jwt, malformed_401)
{
    cr_assert_eq(bearer_status("abc"), 401);
    cr_assert_eq(bearer_status("abc.def"), 401);
    cr_assert_eq(bearer_status("abc.def.ghi"), 401);
    cr_assert_eq(bearer_status("..."), 401);
    char tok[1024];
    /* alg none, unsigned */
    it_jwt_make(tok, sizeof(tok), SECRET, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\",\"exp\":9999999999}");
    char *last = strrchr(tok, '.');
    last[1] = '\0';
    cr_assert_eq(bearer_status(tok), 401, "alg none");
    /* alg none even with an HMAC signature attached */
    it_jwt_make(tok, sizeof(tok), SECRET, "{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\",\"exp\":9999999999}");
    cr_assert_eq(bearer_status(tok), 401, "alg none, signed");
    it_jwt_make(tok, sizeof(tok), SECRET, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\",\"exp\":9999999999}");
    cr_assert_eq(bearer_status(tok), 401, "alg HS512 header over an HS256 signature");
    /* exp is required */
    it_jwt_make(tok, sizeof(tok), SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\"}");
    cr_assert_eq(bearer_status(tok), 401, "no exp");
    it_jwt_make(tok, sizeof(tok), SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"sub\":\"alice\",\"exp\":\"soon\"}");
    cr_assert_eq(bearer_status(tok), 401, "exp not a number");
    /* no sub */
    it_jwt_make(tok, sizeof(tok), SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"exp\":9999999999}");
    cr_assert_eq(bearer_status(tok), 401, "no sub");
}

Test(jwt, nbf_honoured)
{
    char tok[1024];
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() + 600, it_now_s() + 300);
    cr_assert_eq(bearer_status(tok), 401, "nbf in the future");
    it_jwt(tok, sizeof(tok), SECRET, "alice", it_now_s() + 600, it_now_s() - 60);
    cr_assert_eq(bearer_status(tok), 101, "nbf in the past");
}

Test(jwt, invalid_sub_400)
{
    char tok[1024];
    it_jwt(tok, sizeof(tok), SECRET, "bad user!", it_now_s() + 600, 0);
    cr_assert_eq(bearer_status(tok), 400, "a signed token whose sub is not a valid user id");
}

Test(jwt, project_signer_interoperates)
{
    /* common/jwt.c's signer (used by chatmi-bench) against the gateway */
    char tok[CM_JWT_MAX];
    size_t n = cm_jwt_sign("bob", it_now_s() + 600, 0, (const unsigned char *)SECRET, strlen(SECRET), tok,
                           sizeof(tok));
    cr_assert(n > 0);
    struct ws *ws = ws_open_token(it_port(), tok, NULL);
    cr_assert_not_null(ws);
    cr_assert_str_eq(js(ws->hello, "user"), "bob");
    ws_free(ws);
}

TestSuite(jwtfile, .init = it_redis_init, .fini = it_end, .timeout = 60);

Test(jwtfile, secret_from_file)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/jwt.key", it_dir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", SECRET); /* a trailing newline is not part of the key */
    fclose(f);
    struct it_gw_conf c = {.auth = "jwt", .jwt_secret_file = path};
    it_gateway_start(&c);
    char tok[1024];
    it_jwt(tok, sizeof(tok), SECRET, "carol", it_now_s() + 600, 0);
    struct ws *ws = ws_open_token(it_port(), tok, NULL);
    cr_assert_not_null(ws, "token signed with the file's key refused");
    cr_assert_str_eq(js(ws->hello, "user"), "carol");
    ws_free(ws);
    it_jwt(tok, sizeof(tok), SECRET "\n", "carol", it_now_s() + 600, 0);
    cr_assert_eq(bearer_status(tok), 401, "the newline must not be part of the key");
}

/* ---- Origin ------------------------------------------------------------------------ */

static void origin_init(void)
{
    it_redis_init();
    struct it_gw_conf c = {.allowed_origins = "https://a.example,https://b.example"};
    it_gateway_start(&c);
}

TestSuite(origin, .init = origin_init, .fini = it_end, .timeout = 60);

Test(origin, allowlist)
{
    cr_assert_eq(ws_status("/ws?user=alice", "Origin: https://evil.example\r\n"), 403);
    cr_assert_eq(ws_status("/ws?user=alice", "Origin: https://a.example.evil.example\r\n"), 403);
    cr_assert_eq(ws_status("/ws?user=alice", "Origin: http://a.example\r\n"), 403, "scheme is part of the origin");
    cr_assert_eq(ws_status("/ws?user=alice", "Origin: https://b.example\r\n"), 101);
    cr_assert_eq(ws_status("/ws?user=alice", "Origin: https://a.example\r\n"), 101);
    /* not a browser: no Origin header */
    cr_assert_eq(ws_status("/ws?user=alice", NULL), 101);
}
