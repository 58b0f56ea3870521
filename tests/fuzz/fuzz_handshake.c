/* fuzz_handshake: the WebSocket opening handshake and authentication
 * (gateway/handshake.c) behind the HTTP parser, with two JWT keys (a rotation), a
 * fixed clock and an Origin allowlist, in both auth modes.
 *
 * Checks: the status is one handshake.h documents; a 101 always carries a
 * valid user id, a 28-character Sec-WebSocket-Accept and a response that
 * fits; any other status leaves no user behind. */
#include <string.h>

#include "common/ids.h"
#include "gateway/handshake.h"
#include "gateway/http.h"
#include "tests/fuzz/fuzz.h"

/* The corpus's tokens are signed with this key and expire in 2100. */
#define FUZZ_JWT_KEY "fuzz-secret"
#define FUZZ_JWT_KEY2 "fuzz-secret-old"
#define FUZZ_NOW 1800000000

static void check_result(const struct gw_handshake_result *res)
{
    char out[512];

    switch (res->status) {
    case 101: {
        size_t n = strnlen(res->user, sizeof(res->user));
        FUZZ_ASSERT(n < sizeof(res->user) && cm_valid_user(res->user, n));
        FUZZ_ASSERT(strlen(res->accept) == 28);
        FUZZ_ASSERT(res->enc == CM_ENC_JSON || res->enc == CM_ENC_MSGPACK);
        FUZZ_ASSERT(gw_handshake_response(res, out, sizeof(out)) > 0);
        FUZZ_ASSERT(res->exp == 0 || res->exp > FUZZ_NOW - 30);
        break;
    }
    case 400: case 401: case 403: case 426:
        FUZZ_ASSERT(res->user[0] == '\0');
        FUZZ_ASSERT(res->reason != NULL);
        FUZZ_ASSERT(gw_handshake_response(res, out, sizeof(out)) == 0);
        break;
    default:
        FUZZ_ASSERT(!"unexpected handshake status");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const origins[] = {"https://chat.example.com", "http://127.0.0.1:8080"};
    /* A key rotation in progress: tokens signed by either key are accepted. */
    const struct gw_handshake_config jwt = {
        .auth = GW_AUTH_JWT,
        .jwt_key = (const unsigned char *)FUZZ_JWT_KEY, .jwt_key_len = sizeof(FUZZ_JWT_KEY) - 1,
        .jwt_key2 = (const unsigned char *)FUZZ_JWT_KEY2, .jwt_key2_len = sizeof(FUZZ_JWT_KEY2) - 1,
        .jwt_leeway = 30, .allowed_origins = origins, .norigins = 2,
    };
    const struct gw_handshake_config none = {.auth = GW_AUTH_NONE};
    struct gw_http_request req;
    struct gw_handshake_result res;
    size_t end = gw_http_head_end((const char *)data, size);

    if (end == 0 || gw_http_parse((const char *)data, end, &req) != 0)
        return 0;
    gw_handshake_check(&req, &jwt, FUZZ_NOW, &res);
    check_result(&res);
    gw_handshake_check(&req, &none, FUZZ_NOW, &res);
    check_result(&res);
    return 0;
}
