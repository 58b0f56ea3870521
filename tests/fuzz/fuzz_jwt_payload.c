/* fuzz_jwt_payload: the claims parser behind cm_jwt_verify's signature
 * check (common/jwt.c). The input is the payload (JSON, or anything); the
 * target wraps it in a correctly signed HS256 token, so every input reaches
 * the code that reads sub, exp and nbf.
 *
 * Checks: a valid signature is never reported as bad or malformed-header;
 * CM_JWT_OK only for a payload whose sub is a valid user id and whose exp
 * is a number not yet passed (as an independent jansson read says), and the
 * returned sub is that one. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/base64.h"
#include "common/ids.h"
#include "common/jwt.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_JWT_KEY "fuzz-secret"
#define FUZZ_NOW 1800000000
#define FUZZ_LEEWAY 30

/* Builds header.payload.signature into tok (size CM_JWT_MAX + 64). Returns
 * the token's length, or 0 when the payload is too long for a token. */
static size_t sign(const uint8_t *payload, size_t len, char *tok)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char sig[64];
    size_t n;

    /* The encoders write padding past their output; keep that much room. */
    if (len > (CM_JWT_MAX / 4) * 3 - 100)
        return 0;
    n = cm_base64url_encode((const unsigned char *)header, sizeof(header) - 1, tok);
    tok[n++] = '.';
    n += cm_base64url_encode(payload, len, tok + n);
    FUZZ_ASSERT(HMAC(EVP_sha256(), FUZZ_JWT_KEY, sizeof(FUZZ_JWT_KEY) - 1, (const unsigned char *)tok, n, mac,
                     &maclen) != NULL);
    tok[n++] = '.';
    size_t sl = cm_base64url_encode(mac, maclen, sig);
    memcpy(tok + n, sig, sl);
    n += sl;
    tok[n] = '\0';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char tok[CM_JWT_MAX + 64], sub[CM_USER_MAX + 1];
    int64_t exp = 0;
    enum cm_jwt_result r;
    size_t n = sign(data, size, tok);

    if (n == 0 || n > CM_JWT_MAX)
        return 0;
    memset(sub, 0, sizeof(sub));
    r = cm_jwt_verify(tok, n, (const unsigned char *)FUZZ_JWT_KEY, sizeof(FUZZ_JWT_KEY) - 1, FUZZ_NOW,
                      FUZZ_LEEWAY, sub, &exp);
    FUZZ_ASSERT(r != CM_JWT_BAD_SIGNATURE && r != CM_JWT_BAD_ALG);

    /* An empty payload encodes to an empty segment, which is malformed. */
    json_t *j = size > 0 ? json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const json_t *jsub = json_is_object(j) ? json_object_get(j, "sub") : NULL;
    const json_t *jexp = json_is_object(j) ? json_object_get(j, "exp") : NULL;
    if (r == CM_JWT_OK) {
        FUZZ_ASSERT(json_is_object(j));
        FUZZ_ASSERT(json_is_string(jsub) && json_is_number(jexp));
        FUZZ_ASSERT(strlen(sub) == json_string_length(jsub) && strcmp(sub, json_string_value(jsub)) == 0);
        FUZZ_ASSERT(cm_valid_user(sub, strlen(sub)));
        FUZZ_ASSERT(exp > FUZZ_NOW - FUZZ_LEEWAY);
        FUZZ_ASSERT(json_number_value(jexp) > (double)(FUZZ_NOW - FUZZ_LEEWAY - 1));
    } else if (!json_is_object(j)) {
        FUZZ_ASSERT(r == CM_JWT_MALFORMED);
    }
    json_decref(j);
    return 0;
}
