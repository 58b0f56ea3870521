/* fuzz_request_json, fuzz_request_msgpack: the client request decoder
 * (cm_request_decode in common/proto.c), built once per encoding
 * (FUZZ_ENC is CM_ENC_JSON or CM_ENC_MSGPACK).
 *
 * Checks, on success, every limit proto.h promises: a known op, an id of
 * 1..64 bytes of UTF-8, names that are valid user ids / room names, a text
 * of 1..max bytes of UTF-8, exactly one of to/room, a canonical conv, not
 * both after and before, limit 1..200, 1..100 presence users; on failure a
 * message and, when echoed, a valid id. cm_request_peek_id must agree with
 * the decoder on the id of a valid request. */
#include <string.h>

#include "common/ids.h"
#include "common/proto.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENC
#error "build with -DFUZZ_ENC=CM_ENC_JSON or -DFUZZ_ENC=CM_ENC_MSGPACK"
#endif

/* Small, so the too_large path is reachable by short inputs. */
#define FUZZ_MAX_TEXT 100

static int name_ok(struct cm_str s, int room)
{
    return s.p != NULL && (room ? cm_valid_room(s.p, s.len) : cm_valid_user(s.p, s.len));
}

static void check_ok(const struct cm_request *req)
{
    char a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];
    size_t i;

    switch (req->op) {
    case CM_OP_SEND:
        FUZZ_ASSERT((req->to.p != NULL) != (req->room.p != NULL));
        FUZZ_ASSERT(req->to.p == NULL || name_ok(req->to, 0));
        FUZZ_ASSERT(req->room.p == NULL || name_ok(req->room, 1));
        FUZZ_ASSERT(req->text.p != NULL && req->text.len >= 1 && req->text.len <= FUZZ_MAX_TEXT);
        FUZZ_ASSERT(cm_utf8_valid((const unsigned char *)req->text.p, req->text.len));
        break;
    case CM_OP_JOIN:
    case CM_OP_LEAVE:
        FUZZ_ASSERT(name_ok(req->room, 1));
        break;
    case CM_OP_HISTORY:
        FUZZ_ASSERT(req->conv.p != NULL && req->conv.len <= CM_CONV_MAX);
        FUZZ_ASSERT(cm_conv_parse(req->conv.p, req->conv.len, a, b) != CM_CONV_INVALID);
        FUZZ_ASSERT(!(req->has_after && req->has_before));
        FUZZ_ASSERT(!req->has_after || req->after >= 0);
        FUZZ_ASSERT(!req->has_before || req->before >= 0);
        FUZZ_ASSERT(req->limit >= 1 && req->limit <= CM_HISTORY_LIMIT_MAX);
        break;
    case CM_OP_CONVS:
        break;
    case CM_OP_PRESENCE:
        FUZZ_ASSERT(req->nusers >= 1 && req->nusers <= CM_PRESENCE_USERS_MAX);
        for (i = 0; i < req->nusers; i++)
            FUZZ_ASSERT(name_ok(req->users[i], 0));
        break;
    default:
        FUZZ_ASSERT(!"decoded an unknown op");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct cm_request req;
    char msg[256], peek[CM_REQ_ID_MAX + 1];
    enum cm_err e;
    size_t npeek;

    e = cm_request_decode(FUZZ_ENC, buf, size, FUZZ_MAX_TEXT, &req, msg, sizeof(msg));
    FUZZ_ASSERT(memchr(msg, '\0', sizeof(msg)) != NULL);
    if (req.id.p != NULL) {
        FUZZ_ASSERT(req.id.len >= 1 && req.id.len <= CM_REQ_ID_MAX);
        FUZZ_ASSERT(cm_utf8_valid((const unsigned char *)req.id.p, req.id.len));
    }
    if (e == CM_ERR_NONE) {
        check_ok(&req);
        npeek = cm_request_peek_id(FUZZ_ENC, buf, size, peek);
        FUZZ_ASSERT(npeek == (req.id.p ? req.id.len : 0));
        FUZZ_ASSERT(npeek == 0 || memcmp(peek, req.id.p, npeek) == 0);
    } else {
        FUZZ_ASSERT(e == CM_ERR_BAD_REQUEST || e == CM_ERR_TOO_LARGE);
        FUZZ_ASSERT(msg[0] != '\0');
        npeek = cm_request_peek_id(FUZZ_ENC, buf, size, peek);
        FUZZ_ASSERT(npeek <= CM_REQ_ID_MAX && peek[npeek] == '\0');
    }
    cm_request_free(&req);
    return 0;
}
