/* fuzz_envelope: the decoders of what travels through Redis
 * (common/envelope.c): the inbound envelope, the per-user delivery and the
 * fan-out job. Every input goes to all three; the worker and the gateway
 * trust what they decode, so a record that Redis holds but a bug or an
 * older writer produced must never crash them.
 *
 * Checks: decoded fields stay within the documented bounds and point into
 * the input, and whatever decodes packs back to a record that decodes to the
 * same fields. */
#include <string.h>

#include "common/envelope.h"
#include "common/ids.h"
#include "tests/fuzz/fuzz.h"

#define SAME(p1, n1, p2, n2) ((n1) == (n2) && ((n1) == 0 || memcmp((p1), (p2), (n1)) == 0))

static void fuzz_envelope(const char *buf, size_t size)
{
    msgpack_unpacked u, u2;
    msgpack_sbuffer sb;
    struct cm_envelope e, e2;
    char err[128];

    msgpack_unpacked_init(&u);
    if (cm_envelope_unpack(buf, size, &u, &e, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(cm_valid_user(e.user, e.user_len));
        FUZZ_ASSERT(e.session_len >= 1 && e.session_len <= CM_SESSION_MAX);
        FUZZ_ASSERT(e.node_len >= 1 && e.node_len <= CM_NODE_MAX);
        FUZZ_ASSERT(e.recv_ms >= 0);
        FUZZ_ASSERT(e.enc == CM_ENC_JSON || e.enc == CM_ENC_MSGPACK);
        FUZZ_ASSERT(FUZZ_INSIDE(e.user, e.user_len, buf, size));
        FUZZ_ASSERT(e.payload_len == 0 || FUZZ_INSIDE(e.payload, e.payload_len, buf, size));

        msgpack_sbuffer_init(&sb);
        FUZZ_ASSERT(cm_envelope_pack(&sb, &e) == 0);
        msgpack_unpacked_init(&u2);
        FUZZ_ASSERT(cm_envelope_unpack(sb.data, sb.size, &u2, &e2, err, sizeof(err)) == 0);
        FUZZ_ASSERT(SAME(e.user, e.user_len, e2.user, e2.user_len));
        FUZZ_ASSERT(SAME(e.session, e.session_len, e2.session, e2.session_len));
        FUZZ_ASSERT(SAME(e.node, e.node_len, e2.node, e2.node_len));
        FUZZ_ASSERT(SAME(e.payload, e.payload_len, e2.payload, e2.payload_len));
        FUZZ_ASSERT(e.recv_ms == e2.recv_ms && e.enc == e2.enc);
        msgpack_unpacked_destroy(&u2);
        msgpack_sbuffer_destroy(&sb);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    msgpack_unpacked_destroy(&u);
}

static void fuzz_delivery(const char *buf, size_t size)
{
    msgpack_unpacked u, u2;
    msgpack_sbuffer sb;
    struct cm_delivery d, d2;
    char err[128];

    msgpack_unpacked_init(&u);
    if (cm_delivery_unpack(buf, size, &u, &d, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(d.session == NULL || (d.session_len >= 1 && d.session_len <= CM_SESSION_MAX));
        FUZZ_ASSERT(d.msg_len >= 1 && FUZZ_INSIDE(d.msg, d.msg_len, buf, size));
        FUZZ_ASSERT(d.change == CM_MEMBER_NONE || d.change == CM_MEMBER_JOINED || d.change == CM_MEMBER_LEFT);
        if (d.change != CM_MEMBER_NONE) {
            FUZZ_ASSERT(d.conv_len > 5 && memcmp(d.conv, "room:", 5) == 0);
            FUZZ_ASSERT(cm_valid_room(d.conv + 5, d.conv_len - 5) && d.seq >= 0);
        }

        msgpack_sbuffer_init(&sb);
        if (d.change == CM_MEMBER_NONE)
            FUZZ_ASSERT(cm_delivery_pack(&sb, d.session, d.session_len, d.msg, d.msg_len) == 0);
        else
            FUZZ_ASSERT(cm_delivery_pack_member(&sb, d.session, d.session_len, d.msg, d.msg_len, d.change,
                                                d.conv, d.conv_len, d.seq) == 0);
        msgpack_unpacked_init(&u2);
        FUZZ_ASSERT(cm_delivery_unpack(sb.data, sb.size, &u2, &d2, err, sizeof(err)) == 0);
        FUZZ_ASSERT((d.session == NULL) == (d2.session == NULL));
        FUZZ_ASSERT(SAME(d.session, d.session_len, d2.session, d2.session_len));
        FUZZ_ASSERT(SAME(d.msg, d.msg_len, d2.msg, d2.msg_len));
        FUZZ_ASSERT(d.change == d2.change && d.seq == d2.seq);
        FUZZ_ASSERT(SAME(d.conv, d.conv_len, d2.conv, d2.conv_len));
        msgpack_unpacked_destroy(&u2);
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_unpacked_destroy(&u);
}

static void fuzz_fanout(const char *buf, size_t size)
{
    msgpack_unpacked u, u2;
    msgpack_sbuffer sb;
    struct cm_fanout_job j, j2;
    char err[128], a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];
    const char *names[64];
    size_t lens[64], i;

    msgpack_unpacked_init(&u);
    if (cm_fanout_job_unpack(buf, size, &u, &j, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(j.conv_len <= CM_CONV_MAX && cm_conv_parse(j.conv, j.conv_len, a, b) != CM_CONV_INVALID);
        FUZZ_ASSERT(j.nrecipients <= CM_FANOUT_RECIPIENTS_MAX);
        FUZZ_ASSERT(j.nrecipients == 0 || j.recipients != NULL);
        for (i = 0; i < j.nrecipients; i++) {
            const msgpack_object *r = &j.recipients[i];
            FUZZ_ASSERT(r->type == MSGPACK_OBJECT_STR && cm_valid_user(r->via.str.ptr, r->via.str.size));
        }
        FUZZ_ASSERT(j.msg_len >= 1 && FUZZ_INSIDE(j.msg, j.msg_len, buf, size));
        if (j.ack_user != NULL)
            FUZZ_ASSERT(cm_valid_user(j.ack_user, j.ack_user_len) && j.ack_len >= 1 &&
                        FUZZ_INSIDE(j.ack, j.ack_len, buf, size));

        /* Each recipient takes at least 2 bytes, so short inputs have few. */
        if (j.nrecipients <= 64) {
            for (i = 0; i < j.nrecipients; i++) {
                names[i] = j.recipients[i].via.str.ptr;
                lens[i] = j.recipients[i].via.str.size;
            }
            msgpack_sbuffer_init(&sb);
            FUZZ_ASSERT(cm_fanout_job_pack_ack(&sb, j.conv, j.conv_len, names, lens, j.nrecipients, j.msg,
                                               j.msg_len, j.ack_user, j.ack_user_len, j.ack, j.ack_len) == 0);
            msgpack_unpacked_init(&u2);
            FUZZ_ASSERT(cm_fanout_job_unpack(sb.data, sb.size, &u2, &j2, err, sizeof(err)) == 0);
            FUZZ_ASSERT(SAME(j.conv, j.conv_len, j2.conv, j2.conv_len));
            FUZZ_ASSERT(SAME(j.msg, j.msg_len, j2.msg, j2.msg_len));
            FUZZ_ASSERT(j.nrecipients == j2.nrecipients);
            FUZZ_ASSERT((j.ack_user == NULL) == (j2.ack_user == NULL));
            FUZZ_ASSERT(SAME(j.ack_user, j.ack_user_len, j2.ack_user, j2.ack_user_len));
            FUZZ_ASSERT(SAME(j.ack, j.ack_len, j2.ack, j2.ack_len));
            msgpack_unpacked_destroy(&u2);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    msgpack_unpacked_destroy(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_envelope((const char *)data, size);
    fuzz_delivery((const char *)data, size);
    fuzz_fanout((const char *)data, size);
    return 0;
}
