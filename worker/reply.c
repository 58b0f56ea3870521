/* reply.c: server message packing of reply.h. */
#include <string.h>

#include "common/envelope.h"
#include "worker/mem.h"
#include "worker/reply.h"

/* Starts a map of `fields` entries plus the id when there is one, with "op"
 * first. */
static void begin_map(msgpack_packer *pk, const char *op, const struct cm_str *id, uint32_t fields)
{
    msgpack_pack_map(pk, fields + 1 + (id->p ? 1 : 0));
    cm_pack_str(pk, "op");
    cm_pack_str(pk, op);
    if (id->p) {
        cm_pack_str(pk, "id");
        cm_pack_strn(pk, id->p, id->len);
    }
}

void reply_error(msgpack_sbuffer *buf, const struct cm_str *id, enum cm_err code, const char *message)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    cm_pack_error(&pk, id->p, id->len, code, message);
}

static int map_key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

int reply_ack(msgpack_sbuffer *buf, const struct cm_str *id, const char *stored, size_t len, uint64_t *seq_out)
{
    msgpack_unpacked u;
    size_t off = 0;
    const msgpack_object *conv = NULL, *seq = NULL, *msg = NULL, *ts = NULL;
    int rc = -1;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, stored, len, &off) != MSGPACK_UNPACK_SUCCESS || u.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key, *v = &u.data.via.map.ptr[i].val;
        if (map_key_is(k, "conv") && v->type == MSGPACK_OBJECT_STR)
            conv = v;
        else if (map_key_is(k, "seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            seq = v;
        else if (map_key_is(k, "msg") && v->type == MSGPACK_OBJECT_STR)
            msg = v;
        else if (map_key_is(k, "ts") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            ts = v;
    }
    if (!conv || !seq || !msg || !ts)
        goto out;

    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    begin_map(&pk, "ack", id, 4);
    cm_pack_str(&pk, "conv");
    cm_pack_strn(&pk, conv->via.str.ptr, conv->via.str.size);
    cm_pack_str(&pk, "seq");
    msgpack_pack_uint64(&pk, seq->via.u64);
    cm_pack_str(&pk, "msg");
    cm_pack_strn(&pk, msg->via.str.ptr, msg->via.str.size);
    cm_pack_str(&pk, "ts");
    msgpack_pack_uint64(&pk, ts->via.u64);
    if (seq_out != NULL)
        *seq_out = seq->via.u64;
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

void reply_joined(msgpack_sbuffer *buf, const struct cm_str *id, const struct cm_str *room, const char *conv,
                  size_t conv_len)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    begin_map(&pk, "joined", id, 2);
    cm_pack_str(&pk, "room");
    cm_pack_strn(&pk, room->p, room->len);
    cm_pack_str(&pk, "conv");
    cm_pack_strn(&pk, conv, conv_len);
}

void reply_left(msgpack_sbuffer *buf, const struct cm_str *id, const struct cm_str *room)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    begin_map(&pk, "left", id, 1);
    cm_pack_str(&pk, "room");
    cm_pack_strn(&pk, room->p, room->len);
}

void reply_history_begin(msgpack_sbuffer *buf, const struct cm_str *id, const char *conv, size_t conv_len,
                         size_t n)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    begin_map(&pk, "history", id, 2);
    cm_pack_str(&pk, "conv");
    cm_pack_strn(&pk, conv, conv_len);
    cm_pack_str(&pk, "messages");
    msgpack_pack_array(&pk, n);
}

void reply_raw(msgpack_sbuffer *buf, const char *packed, size_t len)
{
    wk_sbuffer_append(buf, packed, len);
}

void reply_convs_begin(msgpack_sbuffer *buf, const struct cm_str *id, size_t n)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    begin_map(&pk, "convs", id, 1);
    cm_pack_str(&pk, "convs");
    msgpack_pack_array(&pk, n);
}

void reply_convs_item(msgpack_sbuffer *buf, const char *conv, size_t conv_len, int64_t last_seq)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    msgpack_pack_map(&pk, 2);
    cm_pack_str(&pk, "conv");
    cm_pack_strn(&pk, conv, conv_len);
    cm_pack_str(&pk, "last_seq");
    msgpack_pack_int64(&pk, last_seq);
}

void reply_presence_begin(msgpack_sbuffer *buf, const struct cm_str *id, size_t n)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    begin_map(&pk, "presence", id, 1);
    cm_pack_str(&pk, "users");
    msgpack_pack_map(&pk, n);
}

void reply_presence_item(msgpack_sbuffer *buf, const char *user, size_t len, int online)
{
    msgpack_packer pk;
    wk_packer_init(&pk, buf);
    cm_pack_strn(&pk, user, len);
    cm_pack_str(&pk, online ? "online" : "offline");
}

void reply_delivery(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                    size_t msg_len)
{
    if (cm_delivery_pack(buf, session, session_len, msg, msg_len) != 0)
        wk_oom();
}

void reply_delivery_member(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                           size_t msg_len, enum cm_member_change change, const char *conv, size_t conv_len,
                           int64_t seq)
{
    int r = change == CM_MEMBER_NONE
                ? cm_delivery_pack(buf, session, session_len, msg, msg_len)
                : cm_delivery_pack_member(buf, session, session_len, msg, msg_len, change, conv, conv_len, seq);
    if (r != 0)
        wk_oom();
}
