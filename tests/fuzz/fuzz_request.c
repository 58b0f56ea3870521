/* fuzz_request_json, fuzz_request_msgpack: the client request decoder
 * (cm_request_decode in common/proto.c), built once per encoding
 * (FUZZ_JSON is 1 or 0).
 *
 * Checks, on success, every limit proto.h promises: a known op, an id of
 * 1..64 bytes of UTF-8, names that are valid user ids / room names, a text
 * of 1..max bytes of UTF-8, exactly one of to/room, a canonical conv, not
 * both after and before, limit 1..200, 1..100 presence users; on failure a
 * message and, when echoed, a valid id. cm_request_peek_id must agree with
 * the decoder on the id of a valid request. The JSON target also decodes
 * the MessagePack twin of each JSON input: both must agree. */
#include <jansson.h>
#include <string.h>

#include "common/ids.h"
#include "common/proto.h"
#include "tests/fuzz/fuzz.h"
#include "tests/support/twin.h"

/* FUZZ_JSON (1 or 0) picks the encoding: a macro the preprocessor can
 * test, which the enum is not. */
#if !defined(FUZZ_JSON)
#error "build with -DFUZZ_JSON=1 (JSON) or -DFUZZ_JSON=0 (MessagePack)"
#elif FUZZ_JSON
#define FUZZ_ENC CM_ENC_JSON
#else
#define FUZZ_ENC CM_ENC_MSGPACK
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

#if FUZZ_JSON
static int same_str(struct cm_str a, struct cm_str b)
{
    return (a.p == NULL) == (b.p == NULL) && a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* The validation rules exist once for both encodings: a JSON request and
 * its MessagePack twin must get the same verdict and the same fields. */
static void check_twin(const char *buf, size_t size, enum cm_err e, const struct cm_request *req)
{
    json_t *j = json_loadb(buf, size, JSON_REJECT_DUPLICATES, NULL);
    msgpack_sbuffer sb;
    struct cm_request r2;
    char msg2[256];
    enum cm_err e2;
    size_t i;

    if (j == NULL)
        return;
    twin_pack_json(&sb, j);
    json_decref(j);
    e2 = cm_request_decode(CM_ENC_MSGPACK, sb.data, sb.size, FUZZ_MAX_TEXT, &r2, msg2, sizeof(msg2));
    FUZZ_ASSERT(e == e2);
    FUZZ_ASSERT(same_str(req->id, r2.id));
    if (e == CM_ERR_NONE) {
        FUZZ_ASSERT(req->op == r2.op);
        FUZZ_ASSERT(same_str(req->to, r2.to) && same_str(req->room, r2.room));
        FUZZ_ASSERT(same_str(req->conv, r2.conv) && same_str(req->text, r2.text));
        FUZZ_ASSERT(req->has_after == r2.has_after && req->after == r2.after);
        FUZZ_ASSERT(req->has_before == r2.has_before && req->before == r2.before);
        FUZZ_ASSERT(req->limit == r2.limit && req->nusers == r2.nusers);
        for (i = 0; i < req->nusers; i++)
            FUZZ_ASSERT(same_str(req->users[i], r2.users[i]));
    }
    cm_request_free(&r2);
    msgpack_sbuffer_destroy(&sb);
}
#endif

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
#if FUZZ_JSON
    check_twin(buf, size, e, &req);
#endif
    cm_request_free(&req);
    return 0;
}
