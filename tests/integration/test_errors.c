/* test_errors.c: contract sections 5 and 6: every error code that a client
 * can provoke, the limits (text size, message size, rate, slow consumers),
 * bad frames (close 1007, 1009, RFC 6455 violations) and Redis loss. A bad
 * request never closes the connection nor stops the service. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itest.h"

TestSuite(errors, .init = it_stack_init, .fini = it_end, .timeout = 60);

/* The session still works: a full round trip through the worker. */
static void assert_alive(struct ws *ws, const char *id)
{
    json_t *r = it_req(ws, json_pack("{s:s,s:s}", "op", "convs", "id", id));
    cr_assert_str_eq(js(r, "op"), "convs", "%s: the session no longer works after an error: %s", ws->name, jdump(r));
    json_decref(r);
}

/* Sends raw text and expects an error with this code (and id, when given). */
static void raw_err(struct ws *ws, const char *text, const char *code, const char *id)
{
    cr_assert_eq(ws_send_text(ws, text), 0);
    json_t *e = ws_wait_op(ws, "error", IT_WAIT);
    cr_assert_not_null(e, "no error for %s (%s, close %d)", text, ws->err, ws->close_code);
    cr_assert_str_eq(js(e, "code"), code, "for %s: %s", text, jdump(e));
    cr_assert(json_is_string(json_object_get(e, "message")), "error without message: %s", jdump(e));
    if (id != NULL)
        cr_assert_str_eq(js(e, "id"), id, "the error must echo the id for %s: %s", text, jdump(e));
    json_decref(e);
}

Test(errors, malformed_json_bad_request)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    raw_err(a, "{not json", "bad_request", NULL);
    raw_err(a, "", "bad_request", NULL);
    raw_err(a, "[1,2,3]", "bad_request", NULL);
    raw_err(a, "\"send\"", "bad_request", NULL);
    raw_err(a, "42", "bad_request", NULL);
    raw_err(a, "{\"id\":\"n1\"}", "bad_request", "n1");
    raw_err(a, "{\"op\":17,\"id\":\"n2\"}", "bad_request", "n2");
    raw_err(a, "{\"op\":\"send\",\"id\":\"n3\",\"to\":\"bob\",\"text\":\"x\"} trailing", "bad_request", NULL);
    assert_alive(a, "alive");
    ws_free(a);
}

Test(errors, unknown_op_bad_request)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    it_req_err_drop(a, json_pack("{s:s,s:s}", "op", "dance", "id", "u1"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s}", "op", "", "id", "u2"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s}", "op", "SEND", "id", "u3"), "bad_request");
    assert_alive(a, "alive");
    ws_free(a);
}

Test(errors, request_ids)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    char id64[65], id65[66];
    memset(id64, 'i', 64);
    id64[64] = '\0';
    memset(id65, 'i', 65);
    id65[65] = '\0';
    json_t *r = it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", id64), "convs");
    cr_assert_str_eq(js(r, "id"), id64, "a 64-character id is echoed");
    json_decref(r);
    /* a 65-character id: an error (it cannot be echoed as such, so match the op) */
    cr_assert_eq(ws_send_json(a, json_pack("{s:s,s:s}", "op", "convs", "id", id65)), 0);
    json_t *e = ws_wait_op(a, "error", IT_WAIT);
    cr_assert_not_null(e, "no error for a 65-character id (%s)", a->err);
    cr_assert_str_eq(js(e, "code"), "bad_request", "%s", jdump(e));
    json_decref(e);
    /* an id that is not a string */
    cr_assert_eq(ws_send_text(a, "{\"op\":\"convs\",\"id\":7}"), 0);
    e = ws_wait_op(a, "error", IT_WAIT);
    cr_assert_not_null(e, "no error for a numeric id (%s)", a->err);
    cr_assert_str_eq(js(e, "code"), "bad_request", "%s", jdump(e));
    json_decref(e);
    /* no id at all is fine */
    cr_assert_eq(ws_send_text(a, "{\"op\":\"convs\"}"), 0);
    r = ws_wait_op(a, "convs", IT_WAIT);
    cr_assert_not_null(r, "a request without id got no reply (%s)", a->err);
    json_decref(r);
    ws_free(a);
}

Test(errors, bad_room_names)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    char r64[65], r65[66];
    memset(r64, 'r', 64);
    r64[64] = '\0';
    memset(r65, 'r', 65);
    r65[65] = '\0';
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "join", "id", "b1", "room", "bad room!"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "join", "id", "b2", "room", r65), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "join", "id", "b3", "room", ""), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "join", "id", "b4", "room", "a:b"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:i}", "op", "join", "id", "b5", "room", 5), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s}", "op", "join", "id", "b6"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "b7", "room", "bad/room"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "b8", "room", "no spaces", "text", "x"),
                    "bad_request");
    it_join(a, "ok", r64);
    ws_free(a);
}

Test(errors, bad_sends)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "send", "id", "s1", "to", "bob"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:i}", "op", "send", "id", "s2", "to", "bob", "text", 5),
                    "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "send", "id", "s3", "text", "to nobody"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "s4", "to", "bad user", "text", "x"),
                    "bad_request");
    char u65[66];
    memset(u65, 'u', 65);
    u65[65] = '\0';
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "s5", "to", u65, "text", "x"),
                    "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s,s:s}", "op", "send", "id", "s6", "to", "bob", "room", "general",
                                 "text", "both"),
                    "bad_request");
    /* a lone surrogate escape is not valid UTF-8 text: an error, not a close */
    raw_err(a, "{\"op\":\"send\",\"id\":\"s7\",\"to\":\"bob\",\"text\":\"\\ud800\"}", "bad_request", NULL);
    assert_alive(a, "alive");
    ws_free(a);
}

Test(errors, bad_history_and_presence)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h1", "conv", "nonsense"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s}", "op", "history", "id", "h2"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h3", "conv", "room:bad room"),
                    "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "history", "id", "h4", "conv", "dm:alice:bob", "after",
                                 "ten"),
                    "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "presence", "id", "p1", "users", "bob"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:[s]}", "op", "presence", "id", "p2", "users", "bad user"),
                    "bad_request");
    assert_alive(a, "alive");
    ws_free(a);
}

static char *repeat(const char *unit, size_t times)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * times + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * times] = '\0';
    return s;
}

Test(errors, text_size_limit_in_bytes)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    char *t4096 = repeat("a", 4096), *t4097 = repeat("a", 4097);
    char *e2048 = repeat("\xc3\xa9", 2048); /* 2048 characters, 4096 bytes */
    char *e2049 = repeat("\xc3\xa9", 2049); /* 4098 bytes */
    json_t *ack = it_dm(a, "t1", "bob", t4096);
    cr_assert_eq(ji(ack, "seq"), 1);
    json_decref(ack);
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "t2", "to", "bob", "text", t4097),
                    "too_large");
    ack = it_dm(a, "t3", "bob", e2048);
    cr_assert_eq(ji(ack, "seq"), 2, "4096 bytes of 2-byte characters are within the limit");
    json_decref(ack);
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "t4", "to", "bob", "text", e2049),
                    "too_large");
    /* the delivered text is intact */
    json_t *m = it_deliv(a, "dm:alice:bob", 2);
    cr_assert_str_eq(js(m, "text"), e2048);
    json_decref(m);
    free(t4096);
    free(t4097);
    free(e2048);
    free(e2049);
    ws_free(a);
}

Test(errors, forbidden_and_not_found)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    it_join(a, "j", "club");
    it_req_err_drop(b, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "f1", "room", "club", "text", "let me in"),
                    "forbidden");
    it_req_err_drop(b, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "f2", "conv", "room:club"), "forbidden");
    it_req_err_drop(b, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "f3", "conv", "room:nowhere"), "not_found");
    assert_alive(b, "alive");
    ws_free(a);
    ws_free(b);
}

Test(errors, binary_frame_on_json_session)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    static const unsigned char junk[] = {0x81, 0xa2, 'o', 'p', 0xa5, 'c', 'o', 'n', 'v', 's'};
    cr_assert_eq(ws_send_binary(a, junk, sizeof(junk)), 0);
    json_t *e = ws_wait_op(a, "error", IT_WAIT);
    cr_assert_not_null(e, "no error for a binary frame on a JSON session (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(e, "code"), "bad_request", "%s", jdump(e));
    json_decref(e);
    assert_alive(a, "alive");
    ws_free(a);
}

Test(errors, invalid_utf8_closes_1007)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    const char bad[] = "{\"op\":\"send\",\"id\":\"u\",\"to\":\"bob\",\"text\":\"\xff\xfe\"}";
    cr_assert_eq(ws_send_textn(a, bad, sizeof(bad) - 1), 0);
    int code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1007, "invalid UTF-8 in a text frame: close %d, expected 1007", code);
    ws_free(a);

    /* split across fragments: valid only when joined */
    a = it_open(it_port(), "alice", NULL);
    const char *p1 = "{\"op\":\"send\",\"id\":\"v\",\"to\":\"bob\",\"text\":\"caf\xc3";
    const char *p2 = "\xa9\"}";
    cr_assert_eq(ws_send_frame(a, WS_OP_TEXT, 0, p1, strlen(p1)), 0);
    cr_assert_eq(ws_send_frame(a, WS_OP_CONT, 1, p2, strlen(p2)), 0);
    json_t *ack = ws_wait_reply(a, "v", IT_WAIT);
    cr_assert_not_null(ack, "a character split across fragments (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
    json_decref(ack);
    /* overlong encoding and a surrogate are invalid too */
    const char overlong[] = "{\"op\":\"convs\",\"id\":\"\xc0\xaf\"}";
    cr_assert_eq(ws_send_textn(a, overlong, sizeof(overlong) - 1), 0);
    code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1007, "overlong UTF-8: close %d", code);
    ws_free(a);
    a = it_open(it_port(), "alice", NULL);
    const char surrogate[] = "{\"op\":\"convs\",\"id\":\"\xed\xa0\x80\"}";
    cr_assert_eq(ws_send_textn(a, surrogate, sizeof(surrogate) - 1), 0);
    code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1007, "UTF-8 encoded surrogate: close %d", code);
    ws_free(a);

    /* the others are unaffected */
    assert_alive(b, "alive");
    ws_free(b);
}

Test(errors, client_ping_and_close)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    cr_assert_eq(ws_send_ping(a, "abc", 3), 0);
    /* a round trip makes sure the pong, sent before the reply, has been read */
    assert_alive(a, "alive");
    cr_assert(a->pongs >= 1, "no pong for a ping");
    cr_assert(a->last_pong_len == 3 && memcmp(a->last_pong, "abc", 3) == 0, "pong must carry the ping's data");
    cr_assert_eq(ws_send_close(a, 1000, "done"), 0);
    int code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1000, "close handshake: server answered %d", code);
    cr_assert(it_wait_eof(a->fd, IT_WAIT), "the server keeps the TCP connection after the close handshake");
    ws_free(a);
}

Test(errors, fragmented_request_with_interleaved_ping)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    const char *parts[] = {"{\"op\":\"send\",\"id\":\"fr\",", "\"to\":\"bob\",\"text\":", "\"in three parts\"}"};
    cr_assert_eq(ws_send_frame(a, WS_OP_TEXT, 0, parts[0], strlen(parts[0])), 0);
    cr_assert_eq(ws_send_ping(a, "mid", 3), 0);
    cr_assert_eq(ws_send_frame(a, WS_OP_CONT, 0, parts[1], strlen(parts[1])), 0);
    cr_assert_eq(ws_send_frame(a, WS_OP_CONT, 1, parts[2], strlen(parts[2])), 0);
    json_t *ack = ws_wait_reply(a, "fr", IT_WAIT);
    cr_assert_not_null(ack, "fragmented request (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
    json_decref(ack);
    json_t *m = it_deliv(a, "dm:alice:bob", 1);
    cr_assert_str_eq(js(m, "text"), "in three parts");
    json_decref(m);
    cr_assert(a->pongs >= 1, "the ping between fragments was not answered");
    ws_free(a);
}

/* RFC 6455: a server must fail the connection (close 1002, or just drop it) */
static void expect_protocol_failure(const char *what, int opcode, int fin, int rsv, int unmasked, const void *data,
                                    size_t len)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    cr_assert_eq(ws_send_frame_ex(a, opcode, fin, rsv, unmasked, data, len), 0);
    int code = ws_wait_close(a, IT_WAIT);
    cr_assert(code == 1002 || code == WS_CLOSE_ABNORMAL, "%s: close %d, expected 1002 or a dropped connection", what,
              code);
    ws_free(a);
}

Test(errors, rfc6455_violations_fail_the_connection)
{
    const char *req = "{\"op\":\"convs\",\"id\":\"x\"}";
    expect_protocol_failure("unmasked client frame", WS_OP_TEXT, 1, 0, 1, req, strlen(req));
    expect_protocol_failure("RSV1 without an extension", WS_OP_TEXT, 1, 4, 0, req, strlen(req));
    expect_protocol_failure("reserved opcode 3", 3, 1, 0, 0, req, strlen(req));
    expect_protocol_failure("fragmented ping", WS_OP_PING, 0, 0, 0, "p", 1);
    char big[200];
    memset(big, 'p', sizeof(big));
    expect_protocol_failure("ping over 125 bytes", WS_OP_PING, 1, 0, 0, big, sizeof(big));
    expect_protocol_failure("continuation without a start", WS_OP_CONT, 1, 0, 0, req, strlen(req));
    /* still serving */
    struct ws *b = it_open(it_port(), "bob", NULL);
    assert_alive(b, "alive");
    ws_free(b);
}

/* ---- limits needing their own gateway options ------------------------------------------ */

TestSuite(limits, .init = it_redis_init, .fini = it_end, .timeout = 90);

Test(limits, oversize_message_closes_1009_and_service_continues)
{
    struct it_gw_conf c = {.max_message_bytes = "1024"};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);

    /* exactly at the limit: fine */
    char msg[1025];
    int n = snprintf(msg, sizeof(msg), "{\"op\":\"send\",\"id\":\"at\",\"to\":\"bob\",\"text\":\"");
    memset(msg + n, 'x', 1024 - (size_t)n - 2);
    memcpy(msg + 1022, "\"}", 2);
    msg[1024] = '\0';
    cr_assert_eq(strlen(msg), 1024);
    cr_assert_eq(ws_send_textn(a, msg, 1024), 0);
    json_t *ack = ws_wait_reply(a, "at", IT_WAIT);
    cr_assert_not_null(ack, "a 1024-byte message with --max-message-bytes 1024 (%s, close %d)", a->err,
                       a->close_code);
    cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
    json_decref(ack);

    /* one byte more: close 1009 */
    char *big = malloc(2001);
    memset(big, ' ', 2000);
    memcpy(big, "{\"op\":\"convs\",\"id\":\"big\"}", 25);
    cr_assert_eq(ws_send_textn(a, big, 2000), 0);
    int code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1009, "oversize message: close %d, expected 1009", code);
    ws_free(a);

    /* the same over fragments */
    a = it_open(it_port(), "alice", NULL);
    cr_assert_eq(ws_send_frame(a, WS_OP_TEXT, 0, big, 600), 0);
    cr_assert_eq(ws_send_frame(a, WS_OP_CONT, 0, big + 600, 600), 0);
    ws_send_frame(a, WS_OP_CONT, 1, big + 1200, 600); /* may fail: the server may have closed already */
    code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1009, "oversize fragmented message: close %d, expected 1009", code);
    ws_free(a);

    /* and a single frame header announcing far more than the limit */
    a = it_open(it_port(), "alice", NULL);
    unsigned char hdr[14] = {0x81, 0xFF, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 2, 3, 4}; /* 256 MiB, masked */
    cr_assert_eq(ws_send_raw(a, hdr, sizeof(hdr)), 0);
    code = ws_wait_close(a, IT_WAIT);
    cr_assert_eq(code, 1009, "a frame header announcing 256 MiB: close %d, expected 1009", code);
    ws_free(a);
    free(big);

    /* the process keeps serving: the old session and new ones */
    assert_alive(b, "b-alive");
    a = it_open(it_port(), "alice", NULL);
    assert_alive(a, "a-alive");
    struct it_http_resp r;
    cr_assert_eq(it_http_get(it_port(), "/healthz", IT_WAIT, &r), 0);
    cr_assert_eq(r.status, 200);
    it_http_resp_free(&r);
    ws_free(a);
    ws_free(b);
}

/* Sends n presence requests back to back; counts replies and rate_limited errors. */
static void burst(struct ws *a, int n, int *ok, int *limited)
{
    char id[16];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "q%d", i);
        cr_assert_eq(ws_send_json(a, json_pack("{s:s,s:s,s:[s]}", "op", "presence", "id", id, "users", "bob")), 0);
    }
    *ok = *limited = 0;
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "q%d", i);
        json_t *r = ws_wait_reply(a, id, IT_WAIT);
        cr_assert_not_null(r, "request %s got no answer (%s, close %d)", id, a->err, a->close_code);
        if (strcmp(js(r, "op"), "presence") == 0)
            (*ok)++;
        else if (strcmp(js(r, "op"), "error") == 0 && strcmp(js(r, "code"), "rate_limited") == 0)
            (*limited)++;
        else
            cr_assert_fail("unexpected answer to %s: %s", id, jdump(r));
        json_decref(r);
    }
}

Test(limits, rate_limited)
{
    struct it_gw_conf c = {.rate_limit = "1/3"};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    int ok, limited;
    burst(a, 12, &ok, &limited);
    cr_assert(ok >= 3, "the burst of 3 should pass: %d ok, %d limited", ok, limited);
    cr_assert(limited >= 5, "--rate-limit 1/3: 12 requests at once, only %d limited (%d ok)", limited, ok);
    /* the connection stays; a second session has its own budget */
    struct ws *a2 = it_open(it_port(), "alice", NULL);
    json_decref(it_req_op(a2, json_pack("{s:s,s:s}", "op", "convs", "id", "other"), "convs"));
    ws_free(a);
    ws_free(a2);
}

Test(limits, rate_limit_default_20_40)
{
    struct it_gw_conf c = {.rate_limit = IT_OMIT};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    int ok, limited;
    burst(a, 100, &ok, &limited);
    cr_assert(ok >= 40, "a burst of 40 is allowed by default: %d ok, %d limited", ok, limited);
    cr_assert(limited >= 20, "default 20/40: 100 requests at once, only %d limited (%d ok)", limited, ok);
    ws_free(a);
}

Test(limits, rate_limit_off)
{
    struct it_gw_conf c = {.rate_limit = "0"};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    int ok, limited;
    burst(a, 150, &ok, &limited);
    cr_assert_eq(limited, 0, "--rate-limit 0 turns limiting off, yet %d were limited", limited);
    ws_free(a);
}

Test(limits, redis_loss_unavailable)
{
    it_skip_in_cluster("kills the one Redis (a cluster loses one master at a time: the cluster fault cases)");
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    assert_alive(a, "before");
    it_redis_kill();
    /* /readyz turns 503 (bounded poll), /healthz stays 200 */
    int64_t deadline = it_mono_ms() + it_ms(10000);
    int st = 0;
    for (int i = 0; i < 400 && it_mono_ms() < deadline; i++) {
        struct it_http_resp r;
        it_http_get(it_port(), "/readyz", IT_WAIT, &r);
        st = r.status;
        it_http_resp_free(&r);
        if (st == 503)
            break;
        it_pause_ms(25);
    }
    cr_assert_eq(st, 503, "/readyz answered %d 10 s after Redis went away", st);
    struct it_http_resp r;
    cr_assert_eq(it_http_get(it_port(), "/healthz", IT_WAIT, &r), 0);
    cr_assert_eq(r.status, 200, "/healthz while Redis is down: %d", r.status);
    it_http_resp_free(&r);
    /* a request now is answered with unavailable, and the session stays */
    json_t *e = ws_request(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "u1", "to", "bob", "text", "x"),
                           IT_WAIT);
    cr_assert_not_null(e, "no answer to a send while Redis is down (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(e, "op"), "error", "%s", jdump(e));
    cr_assert_str_eq(js(e, "code"), "unavailable", "%s", jdump(e));
    json_decref(e);
    ws_free(a);
}

/* A request whose RPUSH was sent but never confirmed (Redis paused, then
 * killed) is answered `unavailable` with its id: never silence. */
Test(limits, push_lost_with_link_answers_unavailable_with_id)
{
    it_skip_in_cluster("pauses and kills the one Redis the gateway pushes to");
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    assert_alive(a, "before");
    char port[16];
    snprintf(port, sizeof(port), "%d", it_redis_port());
    const char *argv[] = {"/usr/bin/redis-cli", "-p", port, "CLIENT", "PAUSE", "30000", "ALL", NULL};
    char out[256];
    int st = -1;
    cr_assert_eq(it_run(argv, NULL, IT_WAIT, out, sizeof(out), &st), 0, "redis-cli did not finish");
    cr_assert(strstr(out, "OK") != NULL, "CLIENT PAUSE: %s", out);
    json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "lost-1", "to", "bob", "text", "x");
    cr_assert_eq(ws_send_json(a, req), 0); /* takes req */
    it_redis_kill();
    json_t *e = ws_wait_reply(a, "lost-1", IT_WAIT);
    cr_assert_not_null(e, "no answer to a request in flight when Redis died (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(e, "op"), "error", "%s", jdump(e));
    cr_assert_str_eq(js(e, "code"), "unavailable", "%s", jdump(e));
    json_decref(e);
    ws_free(a);
}

/* Redis restarted under the gateway: sessions stay open and, once the
 * gateway has subscribed again, each one that was already live is told to
 * resync (deliveries published meanwhile were lost to it); a session that
 * connected during the outage gets its hello instead. Then chat works. */
Test(limits, redis_restart_resync, .timeout = 90)
{
    it_skip_in_cluster("restarts the one Redis on its port");
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_decref(it_dm(a, "d1", "bob", "before"));
    json_decref(it_deliv(b, "dm:alice:bob", 1));

    it_redis_kill();
    it_redis_restart();

    json_t *ra = ws_wait_op(a, "resync", it_ms(20000));
    cr_assert_not_null(ra, "alice got no resync after Redis came back (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(ra, "reason"), "subscription_interrupted", "%s", jdump(ra));
    json_decref(ra);
    json_t *rb = ws_wait_op(b, "resync", it_ms(20000));
    cr_assert_not_null(rb, "bob got no resync after Redis came back (%s)", b->err);
    json_decref(rb);

    /* no data survived (no persistence in this Redis): seq starts again at 1 */
    json_t *ack = it_dm(a, "d2", "bob", "after");
    cr_assert_eq(ji(ack, "seq"), 1, "%s", jdump(ack));
    json_decref(ack);
    json_decref(it_deliv(b, "dm:alice:bob", 1));
    /* exactly one resync per interruption */
    it_sync(a, "s1");
    cr_assert_eq(ws_backlog_count(a, ws_match_op, "resync"), 0, "alice got a second resync");
    ws_free(a);
    ws_free(b);
}

/* A client that stops reading is cut off once its queue passes
 * --max-queued-bytes (close 1013), and recovers with history afterwards. */
Test(limits, slow_consumer_closed_1013_then_recovers, .timeout = 120)
{
    struct it_gw_conf c = {.max_queued_bytes = "64KiB"};
    it_gateway_start(&c);
    it_worker_start(NULL);
    struct ws *fast = it_open(it_port(), "fast", NULL);
    /* a small receive buffer set before connecting (set later, the window
     * scale negotiated for a big one can stall the connection) */
    struct ws_connect_opts so = {.path = "/ws?user=slow", .name = "slow", .rcvbuf = 16384};
    char err[256];
    struct ws *slow = ws_open(it_port(), &so, err, sizeof(err));
    cr_assert_not_null(slow, "%s", err);
    it_join(fast, "j1", "flood");
    it_join(slow, "j2", "flood");

    /* 3.5 KiB texts; the fast sender reads its own acks and copies as it goes */
    char *text = repeat("z", 3500);
    const int total = 1800; /* ~6.5 MiB: more than the kernel's send buffer (up to 4 MiB) can hide */
    char id[16];
    int acked = 0;
    for (int i = 0; i < total; i++) {
        snprintf(id, sizeof(id), "f%d", i);
        cr_assert_eq(ws_send_json(fast, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "room", "flood",
                                                  "text", text)),
                     0);
        if (i % 20 == 19 || i == total - 1) {
            for (; acked <= i; acked++) {
                snprintf(id, sizeof(id), "f%d", acked);
                json_t *ack = ws_wait_reply(fast, id, IT_WAIT);
                cr_assert_not_null(ack, "no ack for %s (%s)", id, fast->err);
                json_decref(ack);
            }
            json_decref(ws_backlog_take(fast, ws_match_op, "message"));
        }
    }
    free(text);
    /* now read the slow client: it must end with 1013 (or a dropped connection) before the end */
    int64_t last = 0;
    int code = 0;
    int64_t deadline = it_mono_ms() + it_ms(30000);
    while (it_mono_ms() < deadline) {
        json_t *m = ws_recv_json(slow, it_ms(5000));
        if (m == NULL) {
            code = slow->close_code;
            break;
        }
        if (strcmp(js(m, "op"), "message") == 0)
            last = ji(m, "seq");
        json_decref(m);
    }
    cr_assert(code == 1013 || code == WS_CLOSE_ABNORMAL,
              "the slow client was not cut off: close code %d, last seq %lld of %d (%s)", code, (long long)last, total,
              slow->err);
    cr_assert(last < total, "the slow client received everything, the limit did nothing");
    fprintf(stderr, "slow consumer: close %d after seq %lld of %d\n", code, (long long)last, total);
    ws_free(slow);

    /* reconnect and recover what was missed */
    slow = it_open(it_port(), "slow", NULL);
    int64_t after = last;
    for (int page = 0; page < 20 && after < total; page++) {
        char hid[16];
        snprintf(hid, sizeof(hid), "h%d", page);
        json_t *h = it_history(slow, hid, "room:flood", "after", after, 200);
        json_t *msgs = json_object_get(h, "messages");
        cr_assert(json_array_size(msgs) > 0, "history after %lld is empty, %d messages exist", (long long)after,
                  total);
        it_assert_seq_range(msgs, after + 1, after + (int64_t)json_array_size(msgs), "recovery page");
        after += (int64_t)json_array_size(msgs);
        json_decref(h);
    }
    cr_assert_eq(after, total, "recovered up to %lld of %d", (long long)after, total);
    ws_free(slow);
    ws_free(fast);
}
