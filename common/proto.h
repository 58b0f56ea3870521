/* proto.h: the client protocol's requests and server messages (contract
 * sections 4 and 5).
 *
 * Requests arrive as JSON (chatmi.v1.json) or MessagePack (chatmi.v1.msgpack)
 * and decode into one struct. Server messages are always built as MessagePack
 * maps (that is what travels through Redis) and turned into JSON text for JSON
 * sessions by cm_msgpack_to_json(). */
#ifndef CHATMI_COMMON_PROTO_H
#define CHATMI_COMMON_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/envelope.h"
#include "common/ids.h"

enum cm_op {
    CM_OP_UNKNOWN = 0,
    CM_OP_SEND,
    CM_OP_JOIN,
    CM_OP_LEAVE,
    CM_OP_HISTORY,
    CM_OP_CONVS,
    CM_OP_PRESENCE
};

/* Error codes of contract section 5. */
enum cm_err {
    CM_ERR_NONE = 0,
    CM_ERR_BAD_REQUEST,
    CM_ERR_FORBIDDEN,
    CM_ERR_NOT_FOUND,
    CM_ERR_TOO_LARGE,
    CM_ERR_RATE_LIMITED,
    CM_ERR_UNAVAILABLE,
    CM_ERR_INTERNAL
};

/* "bad_request", "forbidden", ... ; "internal" for anything unknown. */
const char *cm_err_code(enum cm_err e);

struct cm_str {
    const char *p; /* NULL when absent; not NUL terminated */
    size_t len;
};

#define CM_PRESENCE_USERS_MAX 100
#define CM_HISTORY_LIMIT_MAX 200
#define CM_HISTORY_LIMIT_DEFAULT 50

struct cm_request {
    enum cm_op op;
    struct cm_str id;       /* p NULL when absent */
    struct cm_str to;       /* send: DM recipient */
    struct cm_str room;     /* send/join/leave */
    struct cm_str conv;     /* history */
    struct cm_str text;     /* send */
    int has_after, has_before;
    int64_t after, before;  /* history: >= 0 */
    int64_t limit;          /* history: 1..200 (larger values are capped), default 50 */
    size_t nusers;          /* presence: 1..CM_PRESENCE_USERS_MAX */
    struct cm_str users[CM_PRESENCE_USERS_MAX];

    /* private: what the strings point into */
    void *json_root;
    msgpack_unpacked mp;
    int mp_used;
};

/* Decodes one request and checks everything that needs no Redis: the op,
 * field types, id length (1..64), user/room/conv syntax, text present, valid
 * UTF-8 and at most max_text_bytes (else CM_ERR_TOO_LARGE), exactly one of
 * to/room for send, not both after and before, limit >= 1, presence list size.
 * Unknown fields are ignored. Returns CM_ERR_NONE, or an error with a human
 * message in msg; req->id is filled whenever the id itself was well formed, so
 * the error reply can echo it. Call cm_request_free() in every case. */
enum cm_err cm_request_decode(enum cm_encoding enc, const char *data, size_t len, size_t max_text_bytes,
                              struct cm_request *req, char *msg, size_t msglen);
void cm_request_free(struct cm_request *req);

/* Best effort: the request's "id" when the payload is an object/map with a
 * string id of 1..64 bytes, copied into out (size CM_REQ_ID_MAX + 1).
 * Returns its length, 0 when there is none. For errors the gateway answers
 * itself (rate_limited, unavailable). */
size_t cm_request_peek_id(enum cm_encoding enc, const char *data, size_t len, char *out);

/* Packs {"op":"error","id":id,"code":code,"message":message}; the id is left
 * out when id is NULL. */
void cm_pack_error(msgpack_packer *pk, const char *id, size_t idlen, enum cm_err code, const char *message);

/* Packs a str; shorthands for building maps. */
void cm_pack_strn(msgpack_packer *pk, const char *s, size_t len);
void cm_pack_str(msgpack_packer *pk, const char *s);

/* Appends the JSON text of one packed value (map/array/str/int/float/bool/nil;
 * map keys must be strings) to out. 0, or -1 when the data is not packed
 * MessagePack of that kind or a string is not valid UTF-8. */
int cm_msgpack_to_json(const char *data, size_t len, msgpack_sbuffer *out);

#endif
