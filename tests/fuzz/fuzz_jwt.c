/* fuzz_jwt: cm_jwt_verify (common/jwt.c) on arbitrary tokens, as they come
 * from "Authorization: Bearer" or ?token=, with a fixed key and clock.
 *
 * Almost no input is validly signed, so this covers the splitting, the
 * base64url and header decoding and the alg check; fuzz_jwt_payload covers
 * what lies behind the signature. Checks: the result is one jwt.h
 * documents, and CM_JWT_OK comes with a valid user id. */
#include <string.h>

#include "common/ids.h"
#include "common/jwt.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_JWT_KEY "fuzz-secret"
#define FUZZ_NOW 1800000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sub[CM_USER_MAX + 1];
    int64_t exp = 0;
    enum cm_jwt_result r;

    memset(sub, 0, sizeof(sub));
    r = cm_jwt_verify((const char *)data, size, (const unsigned char *)FUZZ_JWT_KEY, sizeof(FUZZ_JWT_KEY) - 1,
                      FUZZ_NOW, 30, sub, &exp);
    FUZZ_ASSERT(r >= CM_JWT_OK && r <= CM_JWT_BAD_ISS);
    FUZZ_ASSERT(cm_jwt_result_str(r) != NULL);
    if (r == CM_JWT_OK) {
        FUZZ_ASSERT(cm_valid_user(sub, strlen(sub)));
        FUZZ_ASSERT(exp > FUZZ_NOW - 30);
    }
    return 0;
}
