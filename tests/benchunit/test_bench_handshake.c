/* The client's opening handshake: key, accept, request, answer checks. */
#include <criterion/criterion.h>
#include <string.h>

#include "bench/handshake.h"

Test(handshake, accept_of_the_rfc_example)
{
    char acc[BN_HS_ACCEPT_LEN + 1];
    cr_assert_eq(bn_hs_accept("dGhlIHNhbXBsZSBub25jZQ==", acc), 0);
    cr_assert_str_eq(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(handshake, keys_are_reproducible_and_distinct)
{
    char a[BN_HS_KEY_LEN + 1], b[BN_HS_KEY_LEN + 1], c[BN_HS_KEY_LEN + 1];
    bn_hs_key(42, 7, 1, a);
    bn_hs_key(42, 7, 1, b);
    bn_hs_key(42, 7, 2, c);
    cr_assert_eq(strlen(a), BN_HS_KEY_LEN);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
}

Test(handshake, request_carries_user_or_token)
{
    char req[2048];
    size_t n = bn_hs_request(req, sizeof(req), "127.0.0.1", 8080, "/ws", "alice", NULL, "KEY");
    cr_assert_gt(n, 0);
    cr_assert(strncmp(req, "GET /ws?user=alice HTTP/1.1\r\n", 29) == 0, "%s", req);
    cr_assert(strstr(req, "Sec-WebSocket-Protocol: chatmi.v1.json\r\n") != NULL);
    cr_assert(strstr(req, "Authorization") == NULL);
    cr_assert(strcmp(req + n - 4, "\r\n\r\n") == 0);
    n = bn_hs_request(req, sizeof(req), "::1", 80, "/ws?x=1", NULL, "tok.en.sig", "KEY");
    cr_assert(strncmp(req, "GET /ws?x=1 HTTP/1.1\r\nHost: [::1]:80\r\n", 38) == 0, "%s", req);
    cr_assert(strstr(req, "Authorization: Bearer tok.en.sig\r\n") != NULL);
    cr_assert_eq(bn_hs_request(req, 10, "h", 1, "/ws", "u", NULL, "KEY"), 0, "too small");
}

static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                         "Sec-WebSocket-Protocol: chatmi.v1.json\r\n\r\n"
                         "\x81\x02hi";

Test(handshake, answer_checked_only_once_complete)
{
    const char *acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    size_t full = sizeof(ok) - 1, head = strstr(ok, "\r\n\r\n") + 4 - ok;
    for (size_t n = 0; n < head; n++) {
        size_t hl = 0;
        cr_assert_eq(bn_hs_check(ok, n, acc, &hl), BN_HS_MORE, "after %zu bytes", n);
    }
    size_t hl = 0;
    cr_assert_eq(bn_hs_check(ok, full, acc, &hl), BN_HS_OK);
    cr_assert_eq(hl, head, "the frame after the head is not part of it");
}

Test(handshake, refusals_and_bad_answers)
{
    size_t hl;
    const char *r401 = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 0\r\n\r\n";
    cr_assert_eq(bn_hs_check(r401, strlen(r401), "x", &hl), 401);
    const char *r503 = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
    cr_assert_eq(bn_hs_check(r503, strlen(r503), "x", &hl), 503);
    cr_assert_eq(bn_hs_check(ok, sizeof(ok) - 1, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", &hl), BN_HS_BAD, "wrong accept");
    const char *proto = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "Sec-WebSocket-Protocol: chatmi.v1.msgpack\r\n\r\n";
    cr_assert_eq(bn_hs_check(proto, strlen(proto), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &hl), BN_HS_BAD,
                 "another subprotocol");
    const char *junk = "SSH-2.0-OpenSSH\r\n\r\n";
    cr_assert_eq(bn_hs_check(junk, strlen(junk), "x", &hl), BN_HS_BAD);
}
