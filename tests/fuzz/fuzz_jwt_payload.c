/* fuzz_jwt_payload: the claims parser behind cm_jwt_verify's signature
 * check (common/jwt.c). The input is the payload (JSON, or anything); the
 * target wraps it in a correctly signed HS256 token, so every input reaches
 * the code that reads sub, exp and nbf.
 *
 * The token goes to cm_jwt_verify (one key) and to cm_jwt_check (two keys,
 * the signing one second, as during a rotation, and required aud and iss).
 * Checks: a valid signature is never reported as bad or malformed-header;
 * CM_JWT_OK only for a payload whose sub is a valid user id and whose exp
 * is a number not yet passed (as an independent jansson read says), and the
 * returned sub is that one; cm_jwt_check's OK also needs the aud (a string
 * or an array holding it) and the iss, and implies cm_jwt_verify's OK. */
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
#define FUZZ_AUD "chatmi"
#define FUZZ_ISS "https://auth.example.com"

/* aud names FUZZ_AUD: the string itself, or an array with it. */
static int has_aud(const json_t *aud)
{
    size_t i;
    const json_t *v;

    if (json_is_string(aud))
        return json_string_length(aud) == strlen(FUZZ_AUD) && strcmp(json_string_value(aud), FUZZ_AUD) == 0;
    json_array_foreach(aud, i, v)
        if (json_is_string(v) && json_string_length(v) == strlen(FUZZ_AUD) &&
            strcmp(json_string_value(v), FUZZ_AUD) == 0)
            return 1;
    return 0;
}

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
    static const char other_key[] = "fuzz-secret-new";
    const struct cm_jwt_rules rules = {
        .keys = {(const unsigned char *)other_key, (const unsigned char *)FUZZ_JWT_KEY},
        .key_lens = {sizeof(other_key) - 1, sizeof(FUZZ_JWT_KEY) - 1},
        .nkeys = 2, .leeway = FUZZ_LEEWAY, .audience = FUZZ_AUD, .issuer = FUZZ_ISS,
    };
    char tok[CM_JWT_MAX + 64], sub[CM_USER_MAX + 1], sub2[CM_USER_MAX + 1];
    int64_t exp = 0, exp2 = 0;
    enum cm_jwt_result r, r2;
    size_t n = sign(data, size, tok);

    if (n == 0 || n > CM_JWT_MAX)
        return 0;
    memset(sub, 0, sizeof(sub));
    r = cm_jwt_verify(tok, n, (const unsigned char *)FUZZ_JWT_KEY, sizeof(FUZZ_JWT_KEY) - 1, FUZZ_NOW,
                      FUZZ_LEEWAY, sub, &exp);
    FUZZ_ASSERT(r != CM_JWT_BAD_SIGNATURE && r != CM_JWT_BAD_ALG);
    FUZZ_ASSERT(r != CM_JWT_BAD_AUD && r != CM_JWT_BAD_ISS);
    memset(sub2, 0, sizeof(sub2));
    r2 = cm_jwt_check(tok, n, &rules, FUZZ_NOW, sub2, &exp2);
    FUZZ_ASSERT(r2 != CM_JWT_BAD_SIGNATURE && r2 != CM_JWT_BAD_ALG);

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
    }
    if (r2 == CM_JWT_OK) {
        const json_t *iss = json_object_get(j, "iss");
        FUZZ_ASSERT(r == CM_JWT_OK && exp2 == exp && strcmp(sub2, sub) == 0);
        FUZZ_ASSERT(has_aud(json_object_get(j, "aud")));
        FUZZ_ASSERT(json_is_string(iss) && json_string_length(iss) == strlen(FUZZ_ISS) &&
                    strcmp(json_string_value(iss), FUZZ_ISS) == 0);
    }
    if (r != CM_JWT_OK && !json_is_object(j)) {
        FUZZ_ASSERT(r == CM_JWT_MALFORMED);
    }
    json_decref(j);
    return 0;
}
