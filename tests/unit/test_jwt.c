/* Unit tests: common/jwt.c */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/base64.h"
#include "common/jwt.h"

#define KEY ((const unsigned char *)"test-secret-key")
#define KEYLEN 15
#define NOW 1732300000

/* Builds header.payload.signature from raw JSON texts, signed with HS256
 * unless sig_override is given, so tests can make tokens cm_jwt_sign won't. */
static size_t make(char *out, const char *header, const char *payload, const char *sig_override)
{
    size_t n = cm_base64url_encode((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    n += cm_base64url_encode((const unsigned char *)payload, strlen(payload), out + n);
    if (sig_override) {
        out[n++] = '.';
        strcpy(out + n, sig_override);
        return n + strlen(sig_override);
    }
    unsigned char mac[32];
    unsigned int maclen;
    HMAC(EVP_sha256(), KEY, KEYLEN, (const unsigned char *)out, n, mac, &maclen);
    out[n++] = '.';
    return n + cm_base64url_encode(mac, maclen, out + n);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static enum cm_jwt_result verify(const char *tok, size_t len, char *sub, int64_t *exp)
{
    return cm_jwt_verify(tok, len, KEY, KEYLEN, NOW, 0, sub, exp);
}

Test(jwt, sign_then_verify)
{
    char tok[512], sub[CM_USER_MAX + 1] = "";
    int64_t exp = 0;
    size_t n = cm_jwt_sign("alice", NOW + 60, 0, KEY, KEYLEN, tok, sizeof(tok));
    cr_assert_gt(n, 0);
    cr_assert_eq(n, strlen(tok));
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_OK);
    cr_assert_str_eq(sub, "alice");
    cr_assert_eq(exp, NOW + 60);
    /* the key matters */
    cr_assert_eq(cm_jwt_verify(tok, n, (const unsigned char *)"other", 5, NOW, 0, sub, &exp), CM_JWT_BAD_SIGNATURE);
}

Test(jwt, known_token_from_another_implementation)
{
    /* HS256 over {"alg":"HS256","typ":"JWT"}.{"sub":"bob","exp":4102444800}, key "secret",
     * computed with Python's hmac module. */
    const char *tok = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib2IiLCJleHAiOjQxMDI0NDQ4MDB9."
                      "-hlAIiQnShtxuwadox2PQu6XBNQw2DtmGq9cTCzoUwk";
    char sub[CM_USER_MAX + 1], mine[512];
    int64_t exp;
    cr_assert_eq(cm_jwt_verify(tok, strlen(tok), (const unsigned char *)"secret", 6, NOW, 0, sub, &exp), CM_JWT_OK);
    cr_assert_str_eq(sub, "bob");
    cr_assert_eq(exp, 4102444800);
    /* and cm_jwt_sign produces exactly that token */
    cm_jwt_sign("bob", 4102444800, 0, (const unsigned char *)"secret", 6, mine, sizeof(mine));
    cr_assert_str_eq(mine, tok);
}

Test(jwt, expired_and_leeway)
{
    char tok[512], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = cm_jwt_sign("alice", NOW, 0, KEY, KEYLEN, tok, sizeof(tok));
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_EXPIRED); /* now >= exp */
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW, 5, sub, &exp), CM_JWT_OK);
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW + 5, 5, sub, &exp), CM_JWT_EXPIRED);
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW - 1, 0, sub, &exp), CM_JWT_OK);
}

Test(jwt, not_before)
{
    char tok[512], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = cm_jwt_sign("alice", NOW + 600, NOW + 10, KEY, KEYLEN, tok, sizeof(tok));
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_NOT_YET_VALID);
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW + 10, 0, sub, &exp), CM_JWT_OK);
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW, 10, sub, &exp), CM_JWT_OK);
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW, 9, sub, &exp), CM_JWT_NOT_YET_VALID);
}

Test(jwt, alg_none_and_others_rejected)
{
    char tok[1024], sub[CM_USER_MAX + 1];
    int64_t exp;
    const char *payload = "{\"sub\":\"alice\",\"exp\":4102444800}";
    size_t n = make(tok, "{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, "");
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, "{\"alg\":\"none\"}", payload, NULL); /* even with a valid MAC */
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, "{\"alg\":\"RS256\"}", payload, NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, "{\"alg\":\"hs256\"}", payload, NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, "{\"typ\":\"JWT\"}", payload, NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, "{\"alg\":[\"HS256\"]}", payload, NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_ALG);
    n = make(tok, HS256, payload, NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_OK);
}

Test(jwt, tampered_payload)
{
    char tok[512], forged[1024], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = cm_jwt_sign("alice", NOW + 60, 0, KEY, KEYLEN, tok, sizeof(tok));
    /* swap the payload for one naming someone else, keeping alice's signature */
    char *sig = strrchr(tok, '.') + 1;
    make(forged, HS256, "{\"sub\":\"mallory\",\"exp\":4102444800}", sig);
    cr_assert_eq(verify(forged, strlen(forged), sub, &exp), CM_JWT_BAD_SIGNATURE);
    /* flip one character of the payload */
    char *p = strchr(tok, '.') + 2;
    *p = *p == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SIGNATURE);
}

Test(jwt, bad_signature_forms)
{
    char tok[512], sub[CM_USER_MAX + 1];
    int64_t exp;
    const char *payload = "{\"sub\":\"alice\",\"exp\":4102444800}";
    size_t n = make(tok, HS256, payload, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SIGNATURE);
    n = make(tok, HS256, payload, "");
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SIGNATURE);
    n = make(tok, HS256, payload, "AAAA"); /* too short */
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SIGNATURE);
    /* a correct MAC with one more byte appended */
    n = make(tok, HS256, payload, NULL);
    tok[n - 1] = tok[n - 1] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SIGNATURE);
}

Test(jwt, segment_count)
{
    char tok[512], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = cm_jwt_sign("alice", NOW + 60, 0, KEY, KEYLEN, tok, sizeof(tok));
    char four[600];
    snprintf(four, sizeof(four), "%s.AAAA", tok);
    cr_assert_eq(verify(four, strlen(four), sub, &exp), CM_JWT_MALFORMED);
    *strrchr(tok, '.') = '\0';
    cr_assert_eq(verify(tok, strlen(tok), sub, &exp), CM_JWT_MALFORMED);
    cr_assert_eq(verify("abc", 3, sub, &exp), CM_JWT_MALFORMED);
    cr_assert_eq(verify("", 0, sub, &exp), CM_JWT_MALFORMED);
    cr_assert_eq(verify("..", 2, sub, &exp), CM_JWT_MALFORMED);
    (void)n;
}

Test(jwt, bad_base64_and_json)
{
    char tok[1024], sub[CM_USER_MAX + 1];
    int64_t exp;
    const char *t = "eyJhbGciOiJIUzI1NiJ9!.eyJzdWIiOiJhIn0.AAAA";
    cr_assert_eq(verify(t, strlen(t), sub, &exp), CM_JWT_MALFORMED);
    t = "e.eyJzdWIiOiJhIn0.AAAA"; /* one base64 char: impossible length */
    cr_assert_eq(verify(t, strlen(t), sub, &exp), CM_JWT_MALFORMED);
    size_t n = make(tok, "[\"HS256\"]", "{\"sub\":\"a\",\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED); /* header not an object */
    n = make(tok, "{\"alg\":\"HS256\"", "{}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
    n = make(tok, HS256, "not json", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
    n = make(tok, HS256, "\"alice\"", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
    /* signature segment with a character outside base64url */
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":4102444800}", "abc+def/");
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
}

Test(jwt, sub_missing_vs_invalid)
{
    char tok[1024], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = make(tok, HS256, "{\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
    n = make(tok, HS256, "{\"sub\":42,\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
    n = make(tok, HS256, "{\"sub\":\"not valid!\",\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SUB);
    n = make(tok, HS256, "{\"sub\":\"\",\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SUB);
    n = make(tok, HS256,
             "{\"sub\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_BAD_SUB); /* 65 characters */
    n = make(tok, HS256, "{\"sub\":\"a\\u0000b\",\"exp\":4102444800}", NULL);
    cr_assert_neq(verify(tok, n, sub, &exp), CM_JWT_OK);
}

Test(jwt, exp_missing_or_wrong_type)
{
    char tok[1024], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = make(tok, HS256, "{\"sub\":\"alice\"}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_NO_EXP);
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":\"4102444800\"}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_NO_EXP);
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":null}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_NO_EXP);
    /* a fractional NumericDate is a number and counts */
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":4102444800.5}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_OK);
    cr_assert_eq(exp, 4102444800);
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":1e300}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_OK);
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":-1e300}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_EXPIRED);
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":4102444800,\"nbf\":\"soon\"}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
    /* extreme leeway does not overflow */
    n = make(tok, HS256, "{\"sub\":\"alice\",\"exp\":9223372036854775807,\"nbf\":-9223372036854775807}", NULL);
    cr_assert_eq(cm_jwt_verify(tok, n, KEY, KEYLEN, NOW, INT64_MAX, sub, &exp), CM_JWT_OK);
}

Test(jwt, duplicate_claims_rejected)
{
    char tok[1024], sub[CM_USER_MAX + 1];
    int64_t exp;
    size_t n = make(tok, HS256, "{\"sub\":\"alice\",\"sub\":\"admin\",\"exp\":4102444800}", NULL);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_MALFORMED);
}

Test(jwt, huge_token)
{
    static char big[CM_JWT_MAX * 3];
    char sub[CM_USER_MAX + 1];
    int64_t exp;
    memset(big, 'A', sizeof(big));
    big[100] = '.';
    big[200] = '.';
    cr_assert_eq(verify(big, sizeof(big), sub, &exp), CM_JWT_MALFORMED);
    cr_assert_eq(verify(big, CM_JWT_MAX + 1, sub, &exp), CM_JWT_MALFORMED);
    /* a payload padded right up to the limit still verifies */
    static char payload[CM_JWT_MAX];
    static char tok[CM_JWT_MAX * 2];
    int k = snprintf(payload, sizeof(payload), "{\"sub\":\"alice\",\"exp\":4102444800,\"pad\":\"");
    memset(payload + k, 'x', 2800);
    strcpy(payload + k + 2800, "\"}");
    size_t n = make(tok, HS256, payload, NULL);
    cr_assert_leq(n, CM_JWT_MAX);
    cr_assert_eq(verify(tok, n, sub, &exp), CM_JWT_OK);
}

Test(jwt, sign_output_too_small)
{
    char tok[512];
    size_t full = cm_jwt_sign("alice", NOW + 60, NOW, KEY, KEYLEN, tok, sizeof(tok));
    cr_assert_gt(full, 0);
    cr_assert_eq(cm_jwt_sign("alice", NOW + 60, NOW, KEY, KEYLEN, tok, full), 0); /* no room for the NUL */
    cr_assert_eq(cm_jwt_sign("alice", NOW + 60, NOW, KEY, KEYLEN, tok, full + 1), full);
}

Test(jwt, result_strings)
{
    cr_assert_str_eq(cm_jwt_result_str(CM_JWT_EXPIRED), "expired");
    cr_assert_str_eq(cm_jwt_result_str(CM_JWT_BAD_SIGNATURE), "bad signature");
    for (int r = CM_JWT_OK; r <= CM_JWT_BAD_SUB; r++)
        cr_assert_gt(strlen(cm_jwt_result_str((enum cm_jwt_result)r)), 0);
}

/* ---- cm_jwt_check: rotation keys, aud, iss ---- */

#define KEY2 ((const unsigned char *)"the-previous-key")
#define KEY2LEN 16

static enum cm_jwt_result check(const char *tok, const struct cm_jwt_rules *r)
{
    char sub[CM_USER_MAX + 1];
    int64_t exp;
    return cm_jwt_check(tok, strlen(tok), r, NOW, sub, &exp);
}

Test(jwt_check, either_of_two_keys)
{
    char tok[512];
    struct cm_jwt_rules both = {.keys = {KEY, KEY2}, .key_lens = {KEYLEN, KEY2LEN}, .nkeys = 2};
    struct cm_jwt_rules first = {.keys = {KEY}, .key_lens = {KEYLEN}, .nkeys = 1};
    struct cm_jwt_rules second = {.keys = {KEY2}, .key_lens = {KEY2LEN}, .nkeys = 1};
    cr_assert(cm_jwt_sign("alice", NOW + 60, 0, KEY2, KEY2LEN, tok, sizeof(tok)) > 0);
    cr_assert_eq(check(tok, &both), CM_JWT_OK, "signed by the second key");
    cr_assert_eq(check(tok, &first), CM_JWT_BAD_SIGNATURE);
    cr_assert(cm_jwt_sign("alice", NOW + 60, 0, KEY, KEYLEN, tok, sizeof(tok)) > 0);
    cr_assert_eq(check(tok, &both), CM_JWT_OK, "signed by the first key");
    cr_assert_eq(check(tok, &second), CM_JWT_BAD_SIGNATURE);
    cr_assert(cm_jwt_sign("alice", NOW + 60, 0, (const unsigned char *)"third", 5, tok, sizeof(tok)) > 0);
    cr_assert_eq(check(tok, &both), CM_JWT_BAD_SIGNATURE, "signed by neither");
    struct cm_jwt_rules none = {.nkeys = 0};
    cr_assert(cm_jwt_sign("alice", NOW + 60, 0, KEY, KEYLEN, tok, sizeof(tok)) > 0);
    cr_assert_eq(check(tok, &none), CM_JWT_BAD_SIGNATURE, "no key verifies nothing");
}

Test(jwt_check, audience_and_issuer)
{
    char tok[1024];
    struct cm_jwt_rules r = {.keys = {KEY}, .key_lens = {KEYLEN}, .nkeys = 1, .audience = "chat",
                             .issuer = "https://auth.example"};
    struct {
        const char *payload;
        enum cm_jwt_result want;
    } cases[] = {
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"chat\",\"iss\":\"https://auth.example\"}", CM_JWT_OK},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":[\"x\",\"chat\"],\"iss\":\"https://auth.example\"}", CM_JWT_OK},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"iss\":\"https://auth.example\"}", CM_JWT_BAD_AUD},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"cha\",\"iss\":\"https://auth.example\"}", CM_JWT_BAD_AUD},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"CHAT\",\"iss\":\"https://auth.example\"}",
         CM_JWT_BAD_AUD},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":[],\"iss\":\"https://auth.example\"}", CM_JWT_BAD_AUD},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":[1],\"iss\":\"https://auth.example\"}", CM_JWT_BAD_AUD},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"chat\"}", CM_JWT_BAD_ISS},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"chat\",\"iss\":\"https://auth.example/\"}", CM_JWT_BAD_ISS},
        {"{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"chat\",\"iss\":7}", CM_JWT_BAD_ISS},
        /* expiry is judged before aud and iss */
        {"{\"sub\":\"a\",\"exp\":1732299999,\"aud\":\"x\"}", CM_JWT_EXPIRED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        make(tok, HS256, cases[i].payload, NULL);
        cr_assert_eq(check(tok, &r), cases[i].want, "%s: %s", cases[i].payload,
                     cm_jwt_result_str(check(tok, &r)));
    }
    /* unchecked when not configured */
    struct cm_jwt_rules plain = {.keys = {KEY}, .key_lens = {KEYLEN}, .nkeys = 1};
    make(tok, HS256, "{\"sub\":\"a\",\"exp\":1732300060,\"aud\":\"whatever\",\"iss\":3}", NULL);
    cr_assert_eq(check(tok, &plain), CM_JWT_OK);
}
