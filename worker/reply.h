/* reply.h: packing the server messages of contract section 5 that the
 * worker sends back to one session (ack, joined, left, history, convs,
 * presence, error) and the delivery record that carries them.
 *
 * Each function appends one packed MessagePack value to buf, which the caller
 * owns. `id` is the request's id; it is left out when id->p is NULL (the
 * request had none). Allocation failure aborts (mem.h). */
#ifndef CHATMI_WORKER_REPLY_H
#define CHATMI_WORKER_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/envelope.h"
#include "common/proto.h"

void reply_error(msgpack_sbuffer *buf, const struct cm_str *id, enum cm_err code, const char *message);

/* {"op":"ack","id","conv","seq","msg","ts"} built from the stored message
 * map; *seq (when not NULL) receives its seq. -1 (buf unchanged) when
 * stored is not a message map with those fields. */
int reply_ack(msgpack_sbuffer *buf, const struct cm_str *id, const char *stored, size_t len, uint64_t *seq);

void reply_joined(msgpack_sbuffer *buf, const struct cm_str *id, const struct cm_str *room, const char *conv,
                  size_t conv_len);
void reply_left(msgpack_sbuffer *buf, const struct cm_str *id, const struct cm_str *room);

/* {"op":"history","id","conv","messages":[...]}: begin packs everything up to
 * the array header of n messages; then exactly n reply_raw() calls append the
 * stored, already packed, messages as they are. */
void reply_history_begin(msgpack_sbuffer *buf, const struct cm_str *id, const char *conv, size_t conv_len,
                         size_t n);
void reply_raw(msgpack_sbuffer *buf, const char *packed, size_t len);

/* {"op":"convs","id","convs":[{"conv","last_seq"}...]}: begin, then exactly
 * n reply_convs_item() calls. */
void reply_convs_begin(msgpack_sbuffer *buf, const struct cm_str *id, size_t n);
void reply_convs_item(msgpack_sbuffer *buf, const char *conv, size_t conv_len, int64_t last_seq);

/* {"op":"presence","id","users":{user: "online"|"offline"}}: begin, then
 * exactly n reply_presence_item() calls with distinct users. */
void reply_presence_begin(msgpack_sbuffer *buf, const struct cm_str *id, size_t n);
void reply_presence_item(msgpack_sbuffer *buf, const char *user, size_t len, int online);

/* Packs the delivery record [session | nil, <bin msg>] (session NULL: nil),
 * with the membership element when change is not CM_MEMBER_NONE. */
void reply_delivery(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                    size_t msg_len);
void reply_delivery_member(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                           size_t msg_len, enum cm_member_change change, const char *conv, size_t conv_len,
                           int64_t seq);

#endif
