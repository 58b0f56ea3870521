/* itest.h: assertion helpers shared by the scenario tests. Each helper
 * asserts (Criterion) with the message it got, so tests read as the
 * contract does. */
#ifndef CHATMI_IT_ITEST_H
#define CHATMI_IT_ITEST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "wsclient.h"

/* A hello'ed session of user on a gateway port (auth none). */
static inline struct ws *it_open(int port, const char *user, const char *proto)
{
    struct ws *ws = ws_open_user(port, user, proto);
    cr_assert_not_null(ws, "cannot open a session for %s on port %d (reason on stderr)", user, port);
    return ws;
}

/* Sends req and returns the reply with the same id (asserted to arrive). */
static inline json_t *it_req(struct ws *ws, json_t *req)
{
    cr_assert_not_null(req, "json_pack failed");
    char id[80];
    snprintf(id, sizeof(id), "%s", js(req, "id"));
    char what[256];
    snprintf(what, sizeof(what), "%s", jdump(req));
    json_t *rep = ws_request(ws, req, IT_WAIT);
    cr_assert_not_null(rep, "%s: no reply to %s within %d ms (%s; close code %d)", ws->name, what, IT_WAIT, ws->err,
                       ws->close_code);
    return rep;
}

/* Sends req and asserts the reply has op `op`. */
static inline json_t *it_req_op(struct ws *ws, json_t *req, const char *op)
{
    char what[256];
    snprintf(what, sizeof(what), "%s", jdump(req));
    json_t *rep = it_req(ws, req);
    cr_assert_str_eq(js(rep, "op"), op, "%s: request %s: expected op \"%s\", got %s", ws->name, what, op,
                     jdump(rep));
    return rep;
}

/* Sends req and asserts an error reply with this code; returns it. */
static inline json_t *it_req_err(struct ws *ws, json_t *req, const char *code)
{
    char what[256];
    snprintf(what, sizeof(what), "%s", jdump(req));
    json_t *rep = it_req(ws, req);
    cr_assert_str_eq(js(rep, "op"), "error", "%s: request %s: expected an error %s, got %s", ws->name, what, code,
                     jdump(rep));
    cr_assert_str_eq(js(rep, "code"), code, "%s: request %s: expected code %s, got %s", ws->name, what, code,
                     jdump(rep));
    cr_assert(json_is_string(json_object_get(rep, "message")), "error without a message: %s", jdump(rep));
    return rep;
}

static inline void it_req_err_drop(struct ws *ws, json_t *req, const char *code)
{
    json_decref(it_req_err(ws, req, code));
}

/* DM send; asserts and returns the ack. */
static inline json_t *it_dm(struct ws *ws, const char *id, const char *to, const char *text)
{
    return it_req_op(ws, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", to, "text", text), "ack");
}

/* Room send; asserts and returns the ack. */
static inline json_t *it_room_send(struct ws *ws, const char *id, const char *room, const char *text)
{
    return it_req_op(ws, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "room", room, "text", text), "ack");
}

/* Join; asserts the joined reply of the contract. */
static inline void it_join(struct ws *ws, const char *id, const char *room)
{
    json_t *r = it_req_op(ws, json_pack("{s:s,s:s,s:s}", "op", "join", "id", id, "room", room), "joined");
    char conv[128];
    snprintf(conv, sizeof(conv), "room:%s", room);
    cr_assert_str_eq(js(r, "room"), room, "joined: %s", jdump(r));
    cr_assert_str_eq(js(r, "conv"), conv, "joined: %s", jdump(r));
    json_decref(r);
}

/* Waits for a delivery of conv/seq (asserted). */
static inline json_t *it_deliv(struct ws *ws, const char *conv, int64_t seq)
{
    json_t *m = ws_wait_message(ws, conv, seq, IT_WAIT);
    cr_assert_not_null(m, "%s: no delivery of %s seq %lld within %d ms (%s)", ws->name, conv ? conv : "*",
                       (long long)seq, IT_WAIT, ws->err);
    return m;
}

/* Round trip on ws (a convs request): everything published to this user
 * before it has arrived afterwards, so the backlog can be checked for what
 * must not be there. */
static inline void it_sync(struct ws *ws, const char *id)
{
    json_decref(it_req_op(ws, json_pack("{s:s,s:s}", "op", "convs", "id", id), "convs"));
}

/* history request; returns the reply (asserted op history). */
static inline json_t *it_history(struct ws *ws, const char *id, const char *conv, const char *dir, int64_t from,
                                 int64_t limit)
{
    json_t *req = json_pack("{s:s,s:s,s:s}", "op", "history", "id", id, "conv", conv);
    if (dir != NULL)
        json_object_set_new(req, dir, json_integer(from));
    if (limit > 0)
        json_object_set_new(req, "limit", json_integer(limit));
    json_t *r = it_req_op(ws, req, "history");
    cr_assert_str_eq(js(r, "conv"), conv, "history reply for another conv: %s", jdump(r));
    cr_assert(json_is_array(json_object_get(r, "messages")), "history without messages: %s", jdump(r));
    return r;
}

/* Asserts messages hold exactly seqs first..last ascending (last < first: empty). */
static inline void it_assert_seq_range(json_t *messages, int64_t first, int64_t last, const char *what)
{
    size_t want = last >= first ? (size_t)(last - first + 1) : 0;
    cr_assert_eq(json_array_size(messages), want, "%s: %zu messages, expected %zu (seq %lld..%lld)", what,
                 json_array_size(messages), want, (long long)first, (long long)last);
    for (size_t i = 0; i < want; i++) {
        json_t *m = json_array_get(messages, i);
        cr_assert_eq(ji(m, "seq"), first + (int64_t)i, "%s: message %zu has seq %lld, expected %lld (%s)", what, i,
                     (long long)ji(m, "seq"), (long long)(first + (int64_t)i), jdump(m));
    }
}

#endif
