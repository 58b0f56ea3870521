/* jwt.c: strict HS256 JWT verification and signing (jwt.h). */
#include "common/jwt.h"

#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"

#define SHA256_LEN 32

const char *cm_jwt_result_str(enum cm_jwt_result r)
{
    switch (r) {
    case CM_JWT_OK: return "ok";
    case CM_JWT_MALFORMED: return "malformed token";
    case CM_JWT_BAD_ALG: return "unsupported alg (HS256 only)";
    case CM_JWT_BAD_SIGNATURE: return "bad signature";
    case CM_JWT_EXPIRED: return "expired";
    case CM_JWT_NOT_YET_VALID: return "not yet valid";
    case CM_JWT_NO_EXP: return "exp missing";
    case CM_JWT_BAD_SUB: return "sub is not a valid user id";
    case CM_JWT_BAD_AUD: return "wrong audience";
    case CM_JWT_BAD_ISS: return "wrong issuer";
    }
    return "invalid token";
}

static int hs256(const unsigned char *key, size_t keylen, const char *data, size_t len, unsigned char *mac)
{
    static const unsigned char empty[1] = {0};
    unsigned int maclen = 0;
    /* OpenSSL refuses a NULL key even when its length is 0. */
    if (HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, (const unsigned char *)data, len, mac, &maclen) ==
            NULL ||
        maclen != SHA256_LEN)
        return -1;
    return 0;
}

/* Decodes one base64url segment of JSON into an object; NULL if it is not one. */
static json_t *segment_json(const char *s, size_t len)
{
    unsigned char buf[CM_JWT_MAX];
    long n = cm_base64url_decode(s, len, buf);
    if (n <= 0)
        return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* NumericDate (RFC 7519 2): any JSON number of seconds; clamped into int64. */
static int64_t numeric_date(const json_t *j)
{
    if (json_is_integer(j))
        return (int64_t)json_integer_value(j);
    double d = floor(json_real_value(j));
    if (d >= 9.2e18)
        return INT64_MAX;
    if (d <= -9.2e18)
        return INT64_MIN;
    return (int64_t)d;
}

/* a + b without signed overflow. */
static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* aud may be one string or an array of strings (RFC 7519 section 4.1.3). */
static int audience_ok(const json_t *aud, const char *want)
{
    size_t i;
    const json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0 && json_string_length(aud) == strlen(want);
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0 && json_string_length(v) == strlen(want))
            return 1;
    return 0;
}

static int signature_ok(const struct cm_jwt_rules *rules, const char *signed_part, size_t len,
                        const unsigned char *sig, long siglen)
{
    unsigned char mac[SHA256_LEN];
    int ok = 0;

    if (siglen != SHA256_LEN)
        return 0;
    for (size_t k = 0; k < rules->nkeys && k < CM_JWT_KEYS_MAX; k++)
        if (hs256(rules->keys[k], rules->key_lens[k], signed_part, len, mac) == 0 &&
            CRYPTO_memcmp(mac, sig, SHA256_LEN) == 0)
            ok = 1;
    return ok;
}

enum cm_jwt_result cm_jwt_verify(const char *token, size_t len, const unsigned char *key, size_t keylen,
                                 int64_t now, int64_t leeway, char *sub, int64_t *exp)
{
    struct cm_jwt_rules rules = {.keys = {key}, .key_lens = {keylen}, .nkeys = 1, .leeway = leeway};

    return cm_jwt_check(token, len, &rules, now, sub, exp);
}

enum cm_jwt_result cm_jwt_check(const char *token, size_t len, const struct cm_jwt_rules *rules, int64_t now,
                                char *sub, int64_t *exp)
{
    int64_t leeway = rules->leeway;
    const char *dot1, *dot2;
    unsigned char sig[CM_JWT_MAX];
    json_t *header = NULL, *payload = NULL;
    enum cm_jwt_result r = CM_JWT_MALFORMED;

    if (token == NULL || len == 0 || len > CM_JWT_MAX)
        return CM_JWT_MALFORMED;
    dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return CM_JWT_MALFORMED;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return CM_JWT_MALFORMED;

    header = segment_json(token, (size_t)(dot1 - token));
    if (header == NULL)
        goto out;
    const json_t *alg = json_object_get(header, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0 || json_string_length(alg) != 5) {
        r = CM_JWT_BAD_ALG;
        goto out;
    }

    /* The signature is checked before the payload is looked at. */
    long siglen = cm_base64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig);
    if (siglen < 0)
        goto out;
    if (!signature_ok(rules, token, (size_t)(dot2 - token), sig, siglen)) {
        r = CM_JWT_BAD_SIGNATURE;
        goto out;
    }

    payload = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (payload == NULL)
        goto out;
    const json_t *jsub = json_object_get(payload, "sub");
    const json_t *jexp = json_object_get(payload, "exp");
    const json_t *jnbf = json_object_get(payload, "nbf");
    if (!json_is_string(jsub))
        goto out;
    if (jnbf != NULL && !json_is_number(jnbf))
        goto out;
    if (!json_is_number(jexp)) {
        r = CM_JWT_NO_EXP;
        goto out;
    }
    if (!cm_valid_user(json_string_value(jsub), json_string_length(jsub))) {
        r = CM_JWT_BAD_SUB;
        goto out;
    }
    int64_t e = numeric_date(jexp);
    if (now >= sat_add(e, leeway)) {
        r = CM_JWT_EXPIRED;
        goto out;
    }
    if (jnbf != NULL && now < sat_add(numeric_date(jnbf), -leeway)) {
        r = CM_JWT_NOT_YET_VALID;
        goto out;
    }
    if (rules->audience != NULL && !audience_ok(json_object_get(payload, "aud"), rules->audience)) {
        r = CM_JWT_BAD_AUD;
        goto out;
    }
    if (rules->issuer != NULL) {
        const json_t *iss = json_object_get(payload, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), rules->issuer) != 0 ||
            json_string_length(iss) != strlen(rules->issuer)) {
            r = CM_JWT_BAD_ISS;
            goto out;
        }
    }
    memcpy(sub, json_string_value(jsub), json_string_length(jsub) + 1);
    if (exp != NULL)
        *exp = e;
    r = CM_JWT_OK;
out:
    json_decref(header);
    json_decref(payload);
    return r;
}

size_t cm_jwt_sign(const char *sub, int64_t exp, int64_t nbf, const unsigned char *key, size_t keylen, char *out,
                   size_t outlen)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char mac[SHA256_LEN];
    size_t n = 0, result = 0;
    char *body = NULL;
    json_t *claims;

    if (nbf > 0)
        claims = json_pack("{s:s, s:I, s:I}", "sub", sub, "exp", (json_int_t)exp, "nbf", (json_int_t)nbf);
    else
        claims = json_pack("{s:s, s:I}", "sub", sub, "exp", (json_int_t)exp);
    if (claims == NULL)
        return 0;
    body = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(claims);
    if (body == NULL)
        return 0;

    size_t hl = sizeof(header) - 1, bl = strlen(body);
    char sig[4 * ((SHA256_LEN + 2) / 3) + 1];
    /* Unpadded base64url is ceil(4n/3) characters. */
    size_t need = (4 * hl + 2) / 3 + 1 + (4 * bl + 2) / 3 + 1 + (4 * SHA256_LEN + 2) / 3 + 1;
    if (need > outlen)
        goto out;
    /* The encoder briefly writes padding past each segment; the segments that
     * follow leave room for it, and the last one goes through sig. */
    n = cm_base64url_encode((const unsigned char *)header, hl, out);
    out[n++] = '.';
    n += cm_base64url_encode((const unsigned char *)body, bl, out + n);
    if (hs256(key, keylen, out, n, mac) < 0)
        goto out;
    out[n++] = '.';
    size_t sl = cm_base64url_encode(mac, SHA256_LEN, sig);
    memcpy(out + n, sig, sl + 1);
    n += sl;
    result = n;
out:
    free(body);
    if (result == 0 && outlen > 0)
        out[0] = '\0';
    return result;
}
