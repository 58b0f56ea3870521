/* test_handshake.c: the /ws opening handshake, end to end from request bytes:
 * every failure status in the documented order, subprotocols, origins and
 * both authentication modes. Test tokens are built here with OpenSSL so the
 * tests do not depend on the signer they are checking against. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/handshake.h"
#include "gateway/http.h"

/* A hang is a failure too: the gateway must never stall on input. */
TestSuite(accept, .timeout = 20);
TestSuite(handshake, .timeout = 20);
TestSuite(fail, .timeout = 20);
TestSuite(order, .timeout = 20);
TestSuite(subproto, .timeout = 20);
TestSuite(origin, .timeout = 20);
TestSuite(auth_none, .timeout = 20);
TestSuite(auth_jwt, .timeout = 20);

#define NOW 1732300000LL
#define KEY "rfc-6455-test-secret"
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
/* RFC 6455 section 1.3; recomputed with `openssl sha1 -binary | base64`. */
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define WS_HEADERS                                                                                  \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"                     \
    "Sec-WebSocket-Key: " RFC_KEY "\r\n"

static const struct gw_handshake_config cfg_none = {.auth = GW_AUTH_NONE};
static const struct gw_handshake_config cfg_jwt = {
    .auth = GW_AUTH_JWT, .jwt_key = (const unsigned char *)KEY, .jwt_key_len = sizeof(KEY) - 1};

/* Parses "<line>\r\nHost: h\r\n<headers>\r\n" and runs the check. The
 * request line is "GET <target> HTTP/1.1" unless line is given whole. */
static void run_full(const char *line, const char *headers, const struct gw_handshake_config *cfg, int64_t now,
                     struct gw_handshake_result *res)
{
    size_t cap = strlen(line) + strlen(headers) + 64;
    char *buf = malloc(cap);
    struct gw_http_request req;
    int n, st;

    cr_assert_not_null(buf);
    n = snprintf(buf, cap, "%s\r\nHost: h\r\n%s\r\n", line, headers);
    cr_assert(n > 0 && (size_t)n < cap);
    st = gw_http_parse(buf, (size_t)n, &req);
    cr_assert_eq(st, 0, "request did not parse (%d): %s", st, buf);
    memset(res, 0xa5, sizeof(*res)); /* the check must set every field it reports */
    gw_handshake_check(&req, cfg, now, res);
    cr_assert_not_null(res->reason);
    free(buf);
}

static int run(const char *target, const char *headers, const struct gw_handshake_config *cfg,
               struct gw_handshake_result *res)
{
    char line[8192];

    snprintf(line, sizeof(line), "GET %s HTTP/1.1", target);
    run_full(line, headers, cfg, NOW, res);
    return res->status;
}

static const char *reason_of(const char *target, const char *headers, const struct gw_handshake_config *cfg)
{
    struct gw_handshake_result res;

    run(target, headers, cfg, &res);
    return res.reason;
}

/* ---- tokens ---------------------------------------------------------------- */

static void b64url(const unsigned char *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len), i;

    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
}

/* header.payload.signature with an HS256 signature under key (NULL key: empty signature). */
static void make_jwt(const char *hdr, const char *payload, const char *key, char *out, size_t outlen)
{
    char h64[512], p64[2048], s64[128];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char signing[2600];

    b64url((const unsigned char *)hdr, strlen(hdr), h64);
    b64url((const unsigned char *)payload, strlen(payload), p64);
    snprintf(signing, sizeof(signing), "%s.%s", h64, p64);
    s64[0] = '\0';
    if (key) {
        cr_assert_not_null(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)signing,
                                strlen(signing), md, &mdlen));
        b64url(md, mdlen, s64);
    }
    cr_assert_lt((size_t)snprintf(out, outlen, "%s.%s", signing, s64), outlen);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void good_jwt(const char *sub, char *out, size_t outlen)
{
    char payload[256];

    snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%lld}", sub, NOW + 3600);
    make_jwt(HS256, payload, KEY, out, outlen);
}

static int jwt_header_status(const char *token, struct gw_handshake_result *res)
{
    char headers[8192];

    snprintf(headers, sizeof(headers), WS_HEADERS "Authorization: Bearer %s\r\n", token);
    return run("/ws", headers, &cfg_jwt, res);
}

/* ---- accept key -------------------------------------------------------------- */

Test(accept, rfc6455_example)
{
    char out[32];

    memset(out, 'z', sizeof(out));
    gw_ws_accept(RFC_KEY, strlen(RFC_KEY), out);
    cr_assert_str_eq(out, RFC_ACCEPT);
}

static void reference_accept(const char *key, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    cr_assert(EVP_DigestInit_ex(c, EVP_sha1(), NULL));
    EVP_DigestUpdate(c, key, len);
    EVP_DigestUpdate(c, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

Test(accept, any_key_length)
{
    char key[1000], got[32], want[32];
    size_t lens[] = {0, 1, 24, 219, 220, 221, 400, 999}, i;

    memset(key, 'K', sizeof(key));
    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        gw_ws_accept(key, lens[i], got);
        reference_accept(key, lens[i], want);
        cr_assert_str_eq(got, want, "key length %zu", lens[i]);
    }
}

/* ---- success and the 101 response ------------------------------------------ */

Test(handshake, success_auth_none_and_response_bytes)
{
    struct gw_handshake_result res;
    char out[512];
    size_t n;
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                       "\r\n";

    cr_assert_eq(run("/ws?user=alice", WS_HEADERS, &cfg_none, &res), 101);
    cr_assert_str_eq(res.user, "alice");
    cr_assert_str_eq(res.accept, RFC_ACCEPT);
    cr_assert_eq(res.enc, CM_ENC_JSON);
    cr_assert_null(res.subprotocol);
    n = gw_handshake_response(&res, out, sizeof(out));
    cr_assert_eq(n, strlen(want));
    cr_assert_eq(memcmp(out, want, n), 0);
    cr_assert_eq(gw_handshake_response(&res, out, n), 0, "no room for the NUL snprintf needs is refused");
    cr_assert_eq(gw_handshake_response(&res, out, 10), 0);
}

Test(handshake, response_with_subprotocol)
{
    struct gw_handshake_result res;
    char out[512];
    size_t n;
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
                       "Sec-WebSocket-Protocol: chatmi.v1.msgpack\r\n"
                       "\r\n";

    cr_assert_eq(run("/ws?user=bob", WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.msgpack\r\n", &cfg_none, &res),
                 101);
    n = gw_handshake_response(&res, out, sizeof(out));
    cr_assert_eq(n, strlen(want));
    cr_assert_eq(memcmp(out, want, n), 0);
}

Test(handshake, no_response_for_failures)
{
    struct gw_handshake_result res;
    char out[512];

    cr_assert_eq(run("/ws", WS_HEADERS, &cfg_none, &res), 400);
    cr_assert_eq(gw_handshake_response(&res, out, sizeof(out)), 0);
}

Test(handshake, header_variants_accepted)
{
    struct gw_handshake_result res;

    cr_assert_eq(run("/ws?user=a",
                     "upgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-version:  13 \r\n"
                     "sec-websocket-key:   " RFC_KEY "  \r\n",
                     &cfg_none, &res),
                 101);
    cr_assert_str_eq(res.accept, RFC_ACCEPT);
    cr_assert_eq(run("/ws?user=a",
                     "Upgrade: h2c\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " RFC_KEY "\r\n",
                     &cfg_none, &res),
                 101, "tokens may come in separate header lines");
}

/* ---- each failure, alone ---------------------------------------------------- */

Test(fail, method_and_version)
{
    struct gw_handshake_result res;

    run_full("POST /ws?user=a HTTP/1.1", WS_HEADERS, &cfg_none, NOW, &res);
    cr_assert_eq(res.status, 400);
    run_full("HEAD /ws?user=a HTTP/1.1", WS_HEADERS, &cfg_none, NOW, &res);
    cr_assert_eq(res.status, 400);
    run_full("GET /ws?user=a HTTP/1.0", WS_HEADERS, &cfg_none, NOW, &res);
    cr_assert_eq(res.status, 400);
    run_full("GET /ws?user=a HTTP/1.1", WS_HEADERS, &cfg_none, NOW, &res);
    cr_assert_eq(res.status, 101);
}

Test(fail, upgrade_and_connection)
{
    struct gw_handshake_result res;
    const char *tail = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " RFC_KEY "\r\n";
    char h[512];

    snprintf(h, sizeof(h), "Connection: Upgrade\r\n%s", tail);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400, "no Upgrade");
    snprintf(h, sizeof(h), "Upgrade: websocket\r\n%s", tail);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400, "no Connection");
    snprintf(h, sizeof(h), "Upgrade: websocket2\r\nConnection: Upgrade\r\n%s", tail);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400);
    snprintf(h, sizeof(h), "Upgrade: websocket\r\nConnection: Upgraded\r\n%s", tail);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400);
    snprintf(h, sizeof(h), "Upgrade: websocket\r\nConnection: close\r\n%s", tail);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400);
}

Test(fail, websocket_version_426)
{
    struct gw_handshake_result res;
    const char *pre = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n";
    static const char *const bad[] = {
        "", "Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version: 12\r\n", "Sec-WebSocket-Version: 130\r\n",
        "Sec-WebSocket-Version: 13, 8\r\n", "Sec-WebSocket-Version:\r\n",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n",
    };
    char h[512];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(h, sizeof(h), "%s%s", pre, bad[i]);
        cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 426, "case %zu", i);
    }
}

Test(fail, websocket_key_400)
{
    struct gw_handshake_result res;
    const char *pre = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";
    static const char *const bad[] = {
        "",                                                /* missing */
        "Sec-WebSocket-Key:\r\n",                          /* empty */
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n",     /* 15 bytes */
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n" "Sec-WebSocket-Key: " RFC_KEY "\r\n", /* two */
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n", /* 17 bytes */
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n", /* 18 bytes */
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n",   /* unpadded */
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ-==\r\n", /* base64url alphabet */
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ_==\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ==\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j====\r\n",
        "Sec-WebSocket-Key: ========================\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==AAAA\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==, " RFC_KEY "\r\n",
    };
    char h[512];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(h, sizeof(h), "%s%s", pre, bad[i]);
        cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400, "case %zu: %s", i, bad[i]);
    }
    snprintf(h, sizeof(h), "%sSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n", pre);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 101, "16 zero bytes are a fine key");
    snprintf(h, sizeof(h), "%sSec-WebSocket-Key: +/+/+/+/+/+/+/+/+/+/+w==\r\n", pre);
    cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 101);
}

/* ---- order: with two faults, the earlier check answers --------------------- */

Test(order, each_check_before_the_next)
{
    struct gw_handshake_result res;
    static const char *const origins[] = {"https://ok.example"};
    struct gw_handshake_config cfg = {.auth = GW_AUTH_JWT,
                                      .jwt_key = (const unsigned char *)KEY,
                                      .jwt_key_len = sizeof(KEY) - 1,
                                      .allowed_origins = origins,
                                      .norigins = 1};
    const char *method_reason, *upgrade_reason, *key_reason, *proto_reason;

    /* method (400) before upgrade (400): the same reason as method alone */
    run_full("POST /ws HTTP/1.1", "Sec-WebSocket-Version: 8\r\n", &cfg, NOW, &res);
    cr_assert_eq(res.status, 400);
    method_reason = res.reason;
    run_full("POST /ws HTTP/1.1", WS_HEADERS, &cfg, NOW, &res);
    cr_assert_str_eq(res.reason, method_reason);

    /* upgrade (400) before version (426) */
    upgrade_reason = reason_of("/ws", "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
                                      "Sec-WebSocket-Version: 13\r\n", &cfg);
    cr_assert_str_neq(upgrade_reason, method_reason);
    cr_assert_eq(run("/ws", "Connection: Upgrade\r\nSec-WebSocket-Version: 9\r\n", &cfg, &res), 400);
    cr_assert_str_eq(res.reason, upgrade_reason);

    /* version (426) before key (400) */
    cr_assert_eq(run("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 9\r\n"
                            "Sec-WebSocket-Key: short\r\n", &cfg, &res), 426);

    /* key (400) before origin (403) */
    key_reason = reason_of("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Key: short\r\n", &cfg);
    cr_assert_eq(run("/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                            "Sec-WebSocket-Key: short\r\nOrigin: https://evil.example\r\n", &cfg, &res), 400);
    cr_assert_str_eq(res.reason, key_reason);

    /* origin (403) before subprotocol (400) */
    cr_assert_eq(run("/ws", WS_HEADERS "Origin: https://evil.example\r\nSec-WebSocket-Protocol: x\r\n", &cfg, &res),
                 403);

    /* subprotocol (400) before auth (401 when jwt) */
    proto_reason = reason_of("/ws", WS_HEADERS "Sec-WebSocket-Protocol: x\r\n", &cfg);
    cr_assert_eq(run("/ws", WS_HEADERS "Sec-WebSocket-Protocol: x\r\n", &cfg, &res), 400);
    cr_assert_str_eq(res.reason, proto_reason);
    cr_assert_str_neq(proto_reason, key_reason);

    /* then auth */
    cr_assert_eq(run("/ws", WS_HEADERS "Origin: https://ok.example\r\nSec-WebSocket-Protocol: chatmi.v1.json\r\n",
                     &cfg, &res), 401);
    /* auth none: the subprotocol failure still comes first, then the user */
    cr_assert_eq(run("/ws?user=bad%20user", WS_HEADERS "Sec-WebSocket-Protocol: x\r\n", &cfg_none, &res), 400);
    cr_assert_str_eq(res.reason, proto_reason);
    cr_assert_eq(run("/ws?user=bad%20user", WS_HEADERS, &cfg_none, &res), 400);
    cr_assert_str_neq(res.reason, proto_reason);
}

/* ---- subprotocols ----------------------------------------------------------- */

Test(subproto, selection)
{
    struct gw_handshake_result res;

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.json\r\n", &cfg_none, &res), 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_JSON);
    cr_assert_eq(res.enc, CM_ENC_JSON);

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.msgpack\r\n", &cfg_none, &res), 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_MSGPACK);
    cr_assert_eq(res.enc, CM_ENC_MSGPACK);

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.msgpack, chatmi.v1.json\r\n",
                     &cfg_none, &res), 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_MSGPACK, "the client's first choice wins");

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.json,chatmi.v1.msgpack\r\n",
                     &cfg_none, &res), 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_JSON);

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: mqtt, chatmi.v1.msgpack\r\n", &cfg_none, &res),
                 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_MSGPACK, "unknown offers are skipped");
}

Test(subproto, two_headers)
{
    struct gw_handshake_result res;

    cr_assert_eq(run("/ws?user=a",
                     WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.msgpack\r\nSec-WebSocket-Protocol: chatmi.v1.json\r\n",
                     &cfg_none, &res), 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_MSGPACK);
    cr_assert_eq(run("/ws?user=a",
                     WS_HEADERS "Sec-WebSocket-Protocol: chatmi.v1.json\r\nSec-WebSocket-Protocol: chatmi.v1.msgpack\r\n",
                     &cfg_none, &res), 101);
    cr_assert_str_eq(res.subprotocol, GW_SUBPROTO_JSON);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: foo\r\nSec-WebSocket-Protocol: chatmi.v1.msgpack\r\n",
                     &cfg_none, &res), 101);
    cr_assert_eq(res.enc, CM_ENC_MSGPACK);
}

Test(subproto, unknown_only_400)
{
    struct gw_handshake_result res;
    static const char *const bad[] = {
        "Sec-WebSocket-Protocol: mqtt\r\n",
        "Sec-WebSocket-Protocol: chat, superchat\r\n",
        "Sec-WebSocket-Protocol: CHATMI.V1.JSON\r\n",
        "Sec-WebSocket-Protocol: chatmi.v1\r\n",
        "Sec-WebSocket-Protocol: chatmi.v1.jsonx\r\n",
        "Sec-WebSocket-Protocol: chatmi.v1.json.x\r\n",
        "Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Protocol: stomp\r\n",
    };
    char h[512];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(h, sizeof(h), WS_HEADERS "%s", bad[i]);
        cr_assert_eq(run("/ws?user=a", h, &cfg_none, &res), 400, "case %zu", i);
    }
}

Test(subproto, none_offered_is_json_without_echo)
{
    struct gw_handshake_result res;
    char out[512];

    cr_assert_eq(run("/ws?user=a", WS_HEADERS, &cfg_none, &res), 101);
    cr_assert_eq(res.enc, CM_ENC_JSON);
    cr_assert_null(res.subprotocol);
    cr_assert_gt(gw_handshake_response(&res, out, sizeof(out)), 0);
    cr_assert_null(strstr(out, "Sec-WebSocket-Protocol"));
    /* an empty list offers nothing */
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Sec-WebSocket-Protocol: , ,\r\n", &cfg_none, &res), 101);
    cr_assert_null(res.subprotocol);
}

/* ---- origins ---------------------------------------------------------------- */

Test(origin, allowlist)
{
    struct gw_handshake_result res;
    static const char *const origins[] = {"https://chat.example.com", "http://localhost:8080"};
    struct gw_handshake_config cfg = {.auth = GW_AUTH_NONE, .allowed_origins = origins, .norigins = 2};

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://chat.example.com\r\n", &cfg, &res), 101);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: http://localhost:8080\r\n", &cfg, &res), 101);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS, &cfg, &res), 101, "no Origin: not a browser");
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://CHAT.example.com\r\n", &cfg, &res), 101);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://evil.example.com\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: null\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://chat.example.com.evil.net\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://chat.example.co\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: http://chat.example.com\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: http://localhost:8081\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin:\r\n", &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://chat.example.com\r\nOrigin: https://evil.example\r\n",
                     &cfg, &res), 403);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://evil.example\r\nOrigin: https://chat.example.com\r\n",
                     &cfg, &res), 403);
}

Test(origin, no_allowlist_allows_any)
{
    struct gw_handshake_result res;

    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: https://anything.example\r\n", &cfg_none, &res), 101);
    cr_assert_eq(run("/ws?user=a", WS_HEADERS "Origin: null\r\n", &cfg_none, &res), 101);
}

/* ---- auth none -------------------------------------------------------------- */

Test(auth_none, good_users)
{
    struct gw_handshake_result res;
    char target[256], u64[65];

    cr_assert_eq(run("/ws?user=alice", WS_HEADERS, &cfg_none, &res), 101);
    cr_assert_str_eq(res.user, "alice");
    cr_assert_eq(run("/ws?x=1&user=%61l-i_c.e9&y=2", WS_HEADERS, &cfg_none, &res), 101);
    cr_assert_str_eq(res.user, "al-i_c.e9");
    cr_assert_eq(run("/ws?user=Z", WS_HEADERS, &cfg_none, &res), 101);
    cr_assert_str_eq(res.user, "Z");
    memset(u64, 'u', 64);
    u64[64] = '\0';
    snprintf(target, sizeof(target), "/ws?user=%s", u64);
    cr_assert_eq(run(target, WS_HEADERS, &cfg_none, &res), 101);
    cr_assert_str_eq(res.user, u64);
}

Test(auth_none, bad_or_missing_users)
{
    struct gw_handshake_result res;
    char target[256], u65[66];
    static const char *const bad[] = {
        "/ws", "/ws?", "/ws?user", "/ws?user=", "/ws?users=alice", "/ws?USER=alice", "/ws?user=al+ice",
        "/ws?user=al%20ice", "/ws?user=a%00b", "/ws?user=a%2Fb", "/ws?user=a/b", "/ws?user=%", "/ws?user=%zz",
        "/ws?user=%C3%A9", "/ws?user=a:b", "/ws?user=a%3Ab", "/ws?user=%0a",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(run(bad[i], WS_HEADERS, &cfg_none, &res), 400, "%s", bad[i]);
        cr_assert_str_eq(res.user, "", "no identity on failure: %s", bad[i]);
    }
    memset(u65, 'u', 65);
    u65[65] = '\0';
    snprintf(target, sizeof(target), "/ws?user=%s", u65);
    cr_assert_eq(run(target, WS_HEADERS, &cfg_none, &res), 400);
}

Test(auth_none, token_is_not_an_identity)
{
    struct gw_handshake_result res;
    char tok[1024], target[1200];

    good_jwt("alice", tok, sizeof(tok));
    snprintf(target, sizeof(target), "/ws?token=%s", tok);
    cr_assert_eq(run(target, WS_HEADERS, &cfg_none, &res), 400);
}

/* ---- auth jwt --------------------------------------------------------------- */

Test(auth_jwt, via_header)
{
    struct gw_handshake_result res;
    char tok[1024], h[2048];

    good_jwt("alice", tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 101, "%s", res.reason);
    cr_assert_str_eq(res.user, "alice");
    snprintf(h, sizeof(h), WS_HEADERS "authorization: bEaReR   %s  \r\n", tok);
    cr_assert_eq(run("/ws", h, &cfg_jwt, &res), 101, "scheme is case-insensitive");
    cr_assert_str_eq(res.user, "alice");
}

Test(auth_jwt, via_query)
{
    struct gw_handshake_result res;
    char tok[1024], target[1200];

    good_jwt("bob.b-_9", tok, sizeof(tok));
    snprintf(target, sizeof(target), "/ws?a=b&token=%s", tok);
    cr_assert_eq(run(target, WS_HEADERS, &cfg_jwt, &res), 101, "%s", res.reason);
    cr_assert_str_eq(res.user, "bob.b-_9");
    /* the user parameter is ignored in jwt mode */
    snprintf(target, sizeof(target), "/ws?user=mallory&token=%s", tok);
    cr_assert_eq(run(target, WS_HEADERS, &cfg_jwt, &res), 101);
    cr_assert_str_eq(res.user, "bob.b-_9");
}

Test(auth_jwt, header_wins_over_query)
{
    struct gw_handshake_result res;
    char good[1024], bad[1024], target[1200], h[2048];

    good_jwt("alice", good, sizeof(good));
    good_jwt("carol", bad, sizeof(bad));
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    snprintf(target, sizeof(target), "/ws?token=%s", bad);
    snprintf(h, sizeof(h), WS_HEADERS "Authorization: Bearer %s\r\n", good);
    cr_assert_eq(run(target, h, &cfg_jwt, &res), 101);
    cr_assert_str_eq(res.user, "alice");
    snprintf(target, sizeof(target), "/ws?token=%s", good);
    snprintf(h, sizeof(h), WS_HEADERS "Authorization: Bearer %s\r\n", bad);
    cr_assert_eq(run(target, h, &cfg_jwt, &res), 401);
    cr_assert_str_eq(res.user, "");
}

Test(auth_jwt, missing_401)
{
    struct gw_handshake_result res;

    cr_assert_eq(run("/ws", WS_HEADERS, &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws?token=", WS_HEADERS, &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws?user=alice", WS_HEADERS, &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws", WS_HEADERS "Authorization: Bearer\r\n", &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws", WS_HEADERS "Authorization: Bearer    \r\n", &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws", WS_HEADERS "Authorization: Basic YWxpY2U6cHc=\r\n", &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws", WS_HEADERS "Authorization:\r\n", &cfg_jwt, &res), 401);
    cr_assert_eq(run("/ws", WS_HEADERS "Authorization: Bearerx.y.z\r\n", &cfg_jwt, &res), 401);
    cr_assert_str_eq(res.user, "");
}

Test(auth_jwt, malformed_401)
{
    struct gw_handshake_result res;
    static const char *const bad[] = {
        "abc", "a.b", "a.b.c", "a.b.c.d", "..", "...", "%", "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.e30.", "e30.e30.e30",
    };
    char target[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(jwt_header_status(bad[i], &res), 401, "header %s", bad[i]);
        snprintf(target, sizeof(target), "/ws?token=%s", bad[i]);
        cr_assert_eq(run(target, WS_HEADERS, &cfg_jwt, &res), 401, "query %s", bad[i]);
    }
    cr_assert_eq(run("/ws?token=a%00b", WS_HEADERS, &cfg_jwt, &res), 401);
}

Test(auth_jwt, oversized_token_401)
{
    struct gw_handshake_result res;
    char *tok = malloc(6000), *target = malloc(6100);
    char hdr[6200];

    cr_assert_not_null(tok);
    cr_assert_not_null(target);
    memset(tok, 'A', 5000);
    tok[5000] = '\0';
    tok[100] = '.';
    tok[200] = '.';
    snprintf(target, 6100, "/ws?token=%s", tok);
    cr_assert_eq(run(target, WS_HEADERS, &cfg_jwt, &res), 401);
    snprintf(hdr, sizeof(hdr), WS_HEADERS "Authorization: Bearer %s\r\n", tok);
    cr_assert_eq(run("/ws", hdr, &cfg_jwt, &res), 401);
    free(tok);
    free(target);
}

Test(auth_jwt, expired_401)
{
    struct gw_handshake_result res;
    char tok[1024], payload[256];
    struct gw_handshake_config leeway = cfg_jwt;

    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld}", NOW - 10);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    cr_assert_str_eq(res.user, "");
    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld}", NOW);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401, "exp is exclusive");
    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld}", NOW + 1);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 101);

    /* leeway covers a little skew */
    leeway.jwt_leeway = 30;
    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld}", NOW - 10);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    {
        char h[2048];

        snprintf(h, sizeof(h), WS_HEADERS "Authorization: Bearer %s\r\n", tok);
        cr_assert_eq(run("/ws", h, &leeway, &res), 101);
    }
}

Test(auth_jwt, no_exp_401)
{
    struct gw_handshake_result res;
    char tok[1024];

    make_jwt(HS256, "{\"sub\":\"alice\"}", KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    make_jwt(HS256, "{\"sub\":\"alice\",\"exp\":\"soon\"}", KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
}

Test(auth_jwt, nbf_future_401)
{
    struct gw_handshake_result res;
    char tok[1024], payload[256];

    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}", NOW + 3600, NOW + 100);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld,\"nbf\":%lld}", NOW + 3600, NOW - 100);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 101);
}

Test(auth_jwt, bad_signature_401)
{
    struct gw_handshake_result res;
    char tok[1024], payload[256], good[1024], forged[2048];
    char *dot;

    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld}", NOW + 3600);
    make_jwt(HS256, payload, "another-secret", tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    cr_assert_str_eq(res.user, "");

    /* a genuine signature over another payload */
    good_jwt("alice", good, sizeof(good));
    make_jwt(HS256, "{\"sub\":\"admin\",\"exp\":9999999999}", NULL, forged, sizeof(forged));
    dot = strrchr(good, '.');
    cr_assert_lt(strlen(forged) + strlen(dot + 1), sizeof(forged));
    strcat(forged, dot + 1);
    cr_assert_eq(jwt_header_status(forged, &res), 401);

    /* a truncated signature */
    good[strlen(good) - 3] = '\0';
    cr_assert_eq(jwt_header_status(good, &res), 401);
}

Test(auth_jwt, alg_none_and_others_401)
{
    struct gw_handshake_result res;
    char tok[1024], payload[256];

    snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":%lld}", NOW + 3600);
    make_jwt("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, NULL, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401, "alg none, empty signature");
    make_jwt("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401, "alg none, with a signature");
    make_jwt("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    make_jwt("{\"alg\":\"hs256\"}", payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    make_jwt("{\"typ\":\"JWT\"}", payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    make_jwt("{\"alg\":\"RS256\"}", payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
    cr_assert_str_eq(res.user, "");
}

Test(auth_jwt, sub_invalid_400)
{
    struct gw_handshake_result res;
    char tok[1024], sub65[66];

    good_jwt("al ice", tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 400);
    cr_assert_str_eq(res.user, "");
    good_jwt("", tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 400);
    good_jwt("a/b", tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 400);
    memset(sub65, 's', 65);
    sub65[65] = '\0';
    good_jwt(sub65, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 400);
    sub65[64] = '\0';
    good_jwt(sub65, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 101);
    cr_assert_str_eq(res.user, sub65);
}

Test(auth_jwt, sub_missing_401)
{
    struct gw_handshake_result res;
    char tok[1024], payload[256];

    snprintf(payload, sizeof(payload), "{\"exp\":%lld}", NOW + 3600);
    make_jwt(HS256, payload, KEY, tok, sizeof(tok));
    cr_assert_eq(jwt_header_status(tok, &res), 401);
}

Test(auth_jwt, no_key_configured_never_succeeds)
{
    struct gw_handshake_result res;
    struct gw_handshake_config nokey = {.auth = GW_AUTH_JWT};
    char tok[1024], h[2048];

    good_jwt("alice", tok, sizeof(tok));
    snprintf(h, sizeof(h), WS_HEADERS "Authorization: Bearer %s\r\n", tok);
    cr_assert_neq(run("/ws", h, &nokey, &res), 101);
    cr_assert_str_eq(res.user, "");
}
