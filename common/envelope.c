/* envelope.c: packing and strictly unpacking the records that travel
 * through Redis (envelope.h). */
#include "common/envelope.h"

#include <stdio.h>
#include <string.h>

#include "common/ids.h"

/* Walks one value's encoding without allocating. Every value takes at least
 * one byte, so the number of values still owed never exceeds the bytes left;
 * that bound is what keeps msgpack-c's per-container allocations in check. */
static int mp_scan(const unsigned char *p, size_t len, size_t *used)
{
    size_t pos = 0;
    size_t pending = 1;

    while (pending > 0) {
        if (pos >= len)
            return -1;
        unsigned char b = p[pos++];
        size_t hdr = 0;  /* length bytes after the type byte */
        size_t body = 0; /* fixed payload size */
        int kind = 0;    /* 0 scalar, 1 str/bin/ext length, 2 array, 3 map */
        size_t count = 0;
        pending--;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            ;
        } else if (b >= 0x80 && b <= 0x8f) {
            kind = 3, count = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            kind = 2, count = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            body = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: hdr = 1, kind = 1; break;
            case 0xc5: case 0xda: hdr = 2, kind = 1; break;
            case 0xc6: case 0xdb: hdr = 4, kind = 1; break;
            case 0xc7: hdr = 1, kind = 1, body = 1; break;
            case 0xc8: hdr = 2, kind = 1, body = 1; break;
            case 0xc9: hdr = 4, kind = 1, body = 1; break;
            case 0xca: body = 4; break;
            case 0xcb: body = 8; break;
            case 0xcc: case 0xd0: body = 1; break;
            case 0xcd: case 0xd1: body = 2; break;
            case 0xce: case 0xd2: body = 4; break;
            case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xdc: hdr = 2, kind = 2; break;
            case 0xdd: hdr = 4, kind = 2; break;
            case 0xde: hdr = 2, kind = 3; break;
            case 0xdf: hdr = 4, kind = 3; break;
            default: return -1; /* 0xc1: never used */
            }
        }
        if (hdr > 0) {
            size_t n = 0;
            if (len - pos < hdr)
                return -1;
            for (size_t i = 0; i < hdr; i++)
                n = (n << 8) | p[pos + i];
            pos += hdr;
            if (kind == 1)
                body += n;
            else
                count = n;
        }
        if (kind == 3)
            count *= 2; /* at most 2^33: no overflow in size_t on 64-bit, bounded below anyway */
        if (body > len - pos)
            return -1;
        pos += body;
        if (count > len - pos || pending + count > len - pos)
            return -1;
        pending += count;
    }
    *used = pos;
    return 0;
}

int cm_msgpack_unpack_one(const char *data, size_t len, msgpack_unpacked *u, char *err, size_t errlen)
{
    size_t used = 0, off = 0;
    if (data == NULL || len == 0) {
        snprintf(err, errlen, "empty record");
        return -1;
    }
    if (mp_scan((const unsigned char *)data, len, &used) < 0) {
        snprintf(err, errlen, "malformed or truncated MessagePack");
        return -1;
    }
    if (used != len) {
        snprintf(err, errlen, "%zu trailing bytes after the MessagePack value", len - used);
        return -1;
    }
    msgpack_unpack_return r = msgpack_unpack_next(u, data, len, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        snprintf(err, errlen, "out of memory decoding MessagePack");
        return -1;
    }
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(err, errlen, "malformed MessagePack (or nested too deeply)");
        return -1;
    }
    return 0;
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

/* bytes fields are packed as bin; str is accepted too because Lua's cmsgpack
 * can only produce str. */
static int get_bytes(const msgpack_object *o, const char **p, size_t *n)
{
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr, *n = o->via.bin.size;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr, *n = o->via.str.size;
        return 0;
    }
    return -1;
}

static int get_str(const msgpack_object *o, const char **p, size_t *n, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > max)
        return -1;
    *p = o->via.str.ptr, *n = o->via.str.size;
    return 0;
}

static int check_version(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == CM_ENVELOPE_VERSION ? 0 : -1;
}

int64_t cm_message_seq(const char *msg, size_t len)
{
    msgpack_unpacked u;
    char err[64];
    int64_t seq = -1;
    msgpack_unpacked_init(&u);
    if (cm_msgpack_unpack_one(msg, len, &u, err, sizeof(err)) == 0 && u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *v = &m->ptr[i].val;
            if (key_is(&m->ptr[i].key, "seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                v->via.u64 <= (uint64_t)INT64_MAX)
                seq = (int64_t)v->via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
    return seq;
}

#define FAIL(...)                                  \
    do {                                           \
        snprintf(err, errlen, __VA_ARGS__);        \
        return -1;                                 \
    } while (0)

int cm_envelope_pack(msgpack_sbuffer *buf, const struct cm_envelope *e)
{
    msgpack_packer pk;
    const char *enc = e->enc == CM_ENC_MSGPACK ? "msgpack" : "json";
    int r = 0;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    r |= msgpack_pack_map(&pk, 7);
    r |= msgpack_pack_str_with_body(&pk, "v", 1);
    r |= msgpack_pack_int(&pk, CM_ENVELOPE_VERSION);
    r |= msgpack_pack_str_with_body(&pk, "u", 1);
    r |= msgpack_pack_str_with_body(&pk, e->user, e->user_len);
    r |= msgpack_pack_str_with_body(&pk, "s", 1);
    r |= msgpack_pack_str_with_body(&pk, e->session, e->session_len);
    r |= msgpack_pack_str_with_body(&pk, "n", 1);
    r |= msgpack_pack_str_with_body(&pk, e->node, e->node_len);
    r |= msgpack_pack_str_with_body(&pk, "t", 1);
    r |= msgpack_pack_int64(&pk, e->recv_ms);
    r |= msgpack_pack_str_with_body(&pk, "e", 1);
    r |= msgpack_pack_str_with_body(&pk, enc, strlen(enc));
    r |= msgpack_pack_str_with_body(&pk, "p", 1);
    r |= msgpack_pack_bin_with_body(&pk, e->payload, e->payload_len);
    return r == 0 ? 0 : -1;
}

int cm_envelope_unpack(const char *data, size_t len, msgpack_unpacked *u, struct cm_envelope *e, char *err,
                       size_t errlen)
{
    unsigned seen = 0;
    memset(e, 0, sizeof(*e));
    if (cm_msgpack_unpack_one(data, len, u, err, errlen) < 0)
        return -1;
    const msgpack_object *root = &u->data;
    if (root->type != MSGPACK_OBJECT_MAP)
        FAIL("envelope: not a map");
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        unsigned bit;
        if (key_is(k, "v")) {
            bit = 1;
            if (check_version(v) < 0)
                FAIL("envelope: unsupported version");
        } else if (key_is(k, "u")) {
            bit = 2;
            if (get_str(v, &e->user, &e->user_len, CM_USER_MAX) < 0 || !cm_valid_user(e->user, e->user_len))
                FAIL("envelope: bad user");
        } else if (key_is(k, "s")) {
            bit = 4;
            if (get_str(v, &e->session, &e->session_len, CM_SESSION_MAX) < 0)
                FAIL("envelope: bad session");
        } else if (key_is(k, "n")) {
            bit = 8;
            if (get_str(v, &e->node, &e->node_len, CM_NODE_MAX) < 0)
                FAIL("envelope: bad node");
        } else if (key_is(k, "t")) {
            bit = 16;
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > INT64_MAX)
                FAIL("envelope: bad time");
            e->recv_ms = (int64_t)v->via.u64;
        } else if (key_is(k, "e")) {
            bit = 32;
            if (key_is(v, "json"))
                e->enc = CM_ENC_JSON;
            else if (key_is(v, "msgpack"))
                e->enc = CM_ENC_MSGPACK;
            else
                FAIL("envelope: bad encoding");
        } else if (key_is(k, "p")) {
            bit = 64;
            if (get_bytes(v, &e->payload, &e->payload_len) < 0)
                FAIL("envelope: bad payload");
        } else {
            continue; /* a newer writer's field */
        }
        if (seen & bit)
            FAIL("envelope: duplicate field");
        seen |= bit;
    }
    if (seen != 127)
        FAIL("envelope: missing field");
    return 0;
}

static int pack_delivery(msgpack_packer *pk, size_t n, const char *session, size_t session_len, const char *msg,
                         size_t msg_len)
{
    int r = msgpack_pack_array(pk, n);
    if (session != NULL)
        r |= msgpack_pack_str_with_body(pk, session, session_len);
    else
        r |= msgpack_pack_nil(pk);
    r |= msgpack_pack_bin_with_body(pk, msg, msg_len);
    return r;
}

int cm_delivery_pack(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                     size_t msg_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    return pack_delivery(&pk, 2, session, session_len, msg, msg_len) == 0 ? 0 : -1;
}

int cm_delivery_pack_member(msgpack_sbuffer *buf, const char *session, size_t session_len, const char *msg,
                            size_t msg_len, enum cm_member_change change, const char *conv, size_t conv_len,
                            int64_t seq)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int r = pack_delivery(&pk, 3, session, session_len, msg, msg_len);
    r |= msgpack_pack_array(&pk, 3);
    r |= msgpack_pack_str_with_body(&pk, change == CM_MEMBER_JOINED ? "+" : "-", 1);
    r |= msgpack_pack_str_with_body(&pk, conv, conv_len);
    r |= msgpack_pack_int64(&pk, seq);
    return r == 0 ? 0 : -1;
}

int cm_delivery_unpack(const char *data, size_t len, msgpack_unpacked *u, struct cm_delivery *d, char *err,
                       size_t errlen)
{
    memset(d, 0, sizeof(*d));
    if (cm_msgpack_unpack_one(data, len, u, err, errlen) < 0)
        return -1;
    const msgpack_object *root = &u->data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 2 || root->via.array.size > 3)
        FAIL("delivery: not a 2- or 3-element array");
    const msgpack_object *s = &root->via.array.ptr[0];
    if (s->type != MSGPACK_OBJECT_NIL && get_str(s, &d->session, &d->session_len, CM_SESSION_MAX) < 0)
        FAIL("delivery: bad session");
    if (get_bytes(&root->via.array.ptr[1], &d->msg, &d->msg_len) < 0 || d->msg_len == 0)
        FAIL("delivery: bad message");
    if (root->via.array.size == 2)
        return 0;
    const msgpack_object *m = &root->via.array.ptr[2];
    if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size != 3)
        FAIL("delivery: membership is not a 3-element array");
    const msgpack_object *kind = &m->via.array.ptr[0], *seq = &m->via.array.ptr[2];
    if (key_is(kind, "+"))
        d->change = CM_MEMBER_JOINED;
    else if (key_is(kind, "-"))
        d->change = CM_MEMBER_LEFT;
    else
        FAIL("delivery: membership change is not + or -");
    if (get_str(&m->via.array.ptr[1], &d->conv, &d->conv_len, CM_CONV_MAX) < 0 || d->conv_len <= 5 ||
        memcmp(d->conv, "room:", 5) != 0 || !cm_valid_room(d->conv + 5, d->conv_len - 5))
        FAIL("delivery: membership conversation is not a room");
    if (seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER || seq->via.u64 > (uint64_t)INT64_MAX)
        FAIL("delivery: membership seq is not a non-negative integer");
    d->seq = (int64_t)seq->via.u64;
    return 0;
}

int cm_fanout_job_pack(msgpack_sbuffer *buf, const char *conv, size_t conv_len, const char *const *recipients,
                       const size_t *recipient_lens, size_t nrecipients, const char *msg, size_t msg_len)
{
    return cm_fanout_job_pack_ack(buf, conv, conv_len, recipients, recipient_lens, nrecipients, msg, msg_len, NULL,
                                  0, NULL, 0);
}

int cm_fanout_job_pack_ack(msgpack_sbuffer *buf, const char *conv, size_t conv_len, const char *const *recipients,
                           const size_t *recipient_lens, size_t nrecipients, const char *msg, size_t msg_len,
                           const char *ack_user, size_t ack_user_len, const char *ack, size_t ack_len)
{
    msgpack_packer pk;
    int r = 0;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    r |= msgpack_pack_map(&pk, ack_user != NULL ? 5 : 4);
    r |= msgpack_pack_str_with_body(&pk, "v", 1);
    r |= msgpack_pack_int(&pk, CM_ENVELOPE_VERSION);
    r |= msgpack_pack_str_with_body(&pk, "c", 1);
    r |= msgpack_pack_str_with_body(&pk, conv, conv_len);
    r |= msgpack_pack_str_with_body(&pk, "r", 1);
    r |= msgpack_pack_array(&pk, nrecipients);
    for (size_t i = 0; i < nrecipients && r == 0; i++)
        r |= msgpack_pack_str_with_body(&pk, recipients[i], recipient_lens[i]);
    r |= msgpack_pack_str_with_body(&pk, "m", 1);
    r |= msgpack_pack_bin_with_body(&pk, msg, msg_len);
    if (ack_user != NULL) {
        r |= msgpack_pack_str_with_body(&pk, "a", 1);
        r |= msgpack_pack_array(&pk, 2);
        r |= msgpack_pack_str_with_body(&pk, ack_user, ack_user_len);
        r |= msgpack_pack_bin_with_body(&pk, ack, ack_len);
    }
    return r == 0 ? 0 : -1;
}

int cm_fanout_job_unpack(const char *data, size_t len, msgpack_unpacked *u, struct cm_fanout_job *j, char *err,
                         size_t errlen)
{
    unsigned seen = 0;
    char a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];
    memset(j, 0, sizeof(*j));
    if (cm_msgpack_unpack_one(data, len, u, err, errlen) < 0)
        return -1;
    const msgpack_object *root = &u->data;
    if (root->type != MSGPACK_OBJECT_MAP)
        FAIL("fan-out job: not a map");
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        unsigned bit;
        if (key_is(k, "v")) {
            bit = 1;
            if (check_version(v) < 0)
                FAIL("fan-out job: unsupported version");
        } else if (key_is(k, "c")) {
            bit = 2;
            if (get_str(v, &j->conv, &j->conv_len, CM_CONV_MAX) < 0 ||
                cm_conv_parse(j->conv, j->conv_len, a, b) == CM_CONV_INVALID)
                FAIL("fan-out job: bad conversation");
        } else if (key_is(k, "r")) {
            bit = 4;
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > CM_FANOUT_RECIPIENTS_MAX)
                FAIL("fan-out job: bad recipient list");
            for (uint32_t x = 0; x < v->via.array.size; x++) {
                const msgpack_object *r = &v->via.array.ptr[x];
                if (r->type != MSGPACK_OBJECT_STR || !cm_valid_user(r->via.str.ptr, r->via.str.size))
                    FAIL("fan-out job: bad recipient %u", (unsigned)x);
            }
            j->recipients = v->via.array.ptr;
            j->nrecipients = v->via.array.size;
        } else if (key_is(k, "m")) {
            bit = 8;
            if (get_bytes(v, &j->msg, &j->msg_len) < 0 || j->msg_len == 0)
                FAIL("fan-out job: bad message");
        } else if (key_is(k, "a")) {
            bit = 16;
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != 2 ||
                get_str(&v->via.array.ptr[0], &j->ack_user, &j->ack_user_len, CM_USER_MAX) < 0 ||
                !cm_valid_user(j->ack_user, j->ack_user_len) ||
                get_bytes(&v->via.array.ptr[1], &j->ack, &j->ack_len) < 0 || j->ack_len == 0)
                FAIL("fan-out job: bad ack");
        } else {
            continue;
        }
        if (seen & bit)
            FAIL("fan-out job: duplicate field");
        seen |= bit;
    }
    if ((seen & 15) != 15)
        FAIL("fan-out job: missing field");
    return 0;
}
