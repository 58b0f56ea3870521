/* envelope.h: the MessagePack records that travel through Redis.
 *
 * 1. Envelope (gateway -> chatmi:{q}:inbound), a map:
 *      {"v":1, "u":user, "s":session, "n":node, "t":recv_ms, "e":"json"|"msgpack", "p":<bin payload>}
 *    `u` comes from authentication only, never from the client's payload.
 *    `p` is the client's request exactly as received (one WebSocket message).
 *
 * 2. Delivery (worker -> per-user channel chatmi:{u:<user>}, or per-room
 *    channel chatmi:{c:room:<name>}), an array:
 *      [session or nil, <bin: one server message, a packed map>]
 *    With a session, only that session gets it (ack, error, replies); with
 *    nil, every session of the user (of every member, on a room channel) on
 *    every gateway does (message). A join or leave reply carries a third
 *    element that every gateway holding a session of the user acts on (it
 *    keeps the room channels it subscribes to in step with membership):
 *      ["+", conv, seq]   joined conv; seq: the room's last seq before the join
 *      ["-", conv, 0]     left conv
 *
 * 3. Fan-out job (ingest -> chatmi:{q}:fanout), a map:
 *      {"v":1, "c":conv, "r":[user, ...], "m":<bin: the packed "message" map>,
 *       "a":[user, <bin: a delivery record>]}
 *    "a" (optional) is the sender's ack: published to that user's channel
 *    by the same fan-out script, just before the message, so an accepted
 *    send costs one script call for both.
 *
 * Decoding is zero-copy: the strings of a decoded record point into the
 * caller's input buffer (or the msgpack_unpacked the caller passes), which
 * must outlive them. Every decoder checks types and bounds and returns -1
 * with a message in err on anything malformed; none allocates except through
 * the msgpack_unpacked the caller owns and destroys. */
#ifndef CHATMI_COMMON_ENVELOPE_H
#define CHATMI_COMMON_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

enum cm_encoding { CM_ENC_JSON = 0, CM_ENC_MSGPACK = 1 };

/* Unpacks exactly one MessagePack value filling all of data[0..len) into u
 * (zero-copy, as above). The bytes are first walked without allocating, so a
 * hostile length cannot make msgpack-c reserve more than about 24 times len.
 * 0, or -1 with a message in err (truncated, trailing bytes, malformed, or
 * nested deeper than msgpack-c allows). Used by every decoder here and in
 * proto.c. */
int cm_msgpack_unpack_one(const char *data, size_t len, msgpack_unpacked *u, char *err, size_t errlen);

/* The "seq" of a packed server message (a map, as the send script stores
 * it); -1 when it has none or is not a map. */
int64_t cm_message_seq(const char *msg, size_t len);

#define CM_ENVELOPE_VERSION 1
#define CM_SESSION_MAX 64
#define CM_NODE_MAX 64

struct cm_envelope {
    const char *user;    size_t user_len;
    const char *session; size_t session_len;
    const char *node;    size_t node_len;
    int64_t recv_ms;
    enum cm_encoding enc;
    const char *payload; size_t payload_len;
};

/* Appends the packed envelope to buf. 0, or -1 when out of memory. */
int cm_envelope_pack(msgpack_sbuffer *buf, const struct cm_envelope *e);
/* `u` must be msgpack_unpacked_init'ed by the caller and destroyed after e is no longer used. */
int cm_envelope_unpack(const char *data, size_t len, msgpack_unpacked *u, struct cm_envelope *e,
                       char *err, size_t errlen);

enum cm_member_change { CM_MEMBER_NONE = 0, CM_MEMBER_JOINED, CM_MEMBER_LEFT };

struct cm_delivery {
    const char *session; size_t session_len; /* NULL: every session of the user */
    const char *msg;     size_t msg_len;     /* the packed server message */
    enum cm_member_change change;            /* with conv (a valid room conversation) and seq */
    const char *conv;    size_t conv_len;
    int64_t seq;
};

int cm_delivery_pack(msgpack_sbuffer *buf, const char *session, size_t session_len,
                     const char *msg, size_t msg_len);
/* A delivery with the membership element (change is JOINED or LEFT). */
int cm_delivery_pack_member(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                            size_t msg_len, enum cm_member_change change, const char *conv, size_t conv_len,
                            int64_t seq);
int cm_delivery_unpack(const char *data, size_t len, msgpack_unpacked *u, struct cm_delivery *d,
                       char *err, size_t errlen);

#define CM_FANOUT_RECIPIENTS_MAX 100000

struct cm_fanout_job {
    const char *conv; size_t conv_len;
    const msgpack_object *recipients; /* array of str, each a user id */
    size_t nrecipients;
    const char *msg; size_t msg_len;
    const char *ack_user; size_t ack_user_len; /* NULL: no ack rides along */
    const char *ack; size_t ack_len;           /* a packed delivery record */
};

/* recipients: nrecipients user ids with their lengths. */
int cm_fanout_job_pack(msgpack_sbuffer *buf, const char *conv, size_t conv_len,
                       const char *const *recipients, const size_t *recipient_lens, size_t nrecipients,
                       const char *msg, size_t msg_len);
/* The same with the sender's ack (ack_user NULL: none). */
int cm_fanout_job_pack_ack(msgpack_sbuffer *buf, const char *conv, size_t conv_len,
                           const char *const *recipients, const size_t *recipient_lens, size_t nrecipients,
                           const char *msg, size_t msg_len, const char *ack_user, size_t ack_user_len,
                           const char *ack, size_t ack_len);
int cm_fanout_job_unpack(const char *data, size_t len, msgpack_unpacked *u, struct cm_fanout_job *j,
                         char *err, size_t errlen);

#endif
