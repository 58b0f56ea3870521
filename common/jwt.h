/* jwt.h: HS256 JSON Web Tokens (RFC 7519), verified strictly: the header's
 * alg must be "HS256" (never "none" or anything else), the signature is
 * compared in constant time, `exp` is required, `nbf` honoured when present,
 * `sub` must be a valid user id. */
#ifndef CHATMI_COMMON_JWT_H
#define CHATMI_COMMON_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

enum cm_jwt_result {
    CM_JWT_OK = 0,
    CM_JWT_MALFORMED,     /* not three base64url parts of JSON objects, or too long */
    CM_JWT_BAD_ALG,       /* alg is not HS256 */
    CM_JWT_BAD_SIGNATURE,
    CM_JWT_EXPIRED,       /* now >= exp + leeway */
    CM_JWT_NOT_YET_VALID, /* now < nbf - leeway */
    CM_JWT_NO_EXP,        /* exp missing or not a number */
    CM_JWT_BAD_SUB,       /* sub is a string but not a valid user id (a missing sub is CM_JWT_MALFORMED) */
    CM_JWT_BAD_AUD,       /* an audience is required and aud does not name it */
    CM_JWT_BAD_ISS        /* an issuer is required and iss is not it */
};

#define CM_JWT_MAX 4096

/* Verifies token[0..len) against key. On CM_JWT_OK, sub (size CM_USER_MAX + 1)
 * receives the user id and *exp the expiry (seconds since the epoch). now and
 * leeway are in seconds. */
enum cm_jwt_result cm_jwt_verify(const char *token, size_t len, const unsigned char *key, size_t keylen,
                                 int64_t now, int64_t leeway, char *sub, int64_t *exp);

#define CM_JWT_KEYS_MAX 2 /* the current key and, during a rotation, the other one */

/* What a token must satisfy besides a good HS256 signature, exp and sub. */
struct cm_jwt_rules {
    const unsigned char *keys[CM_JWT_KEYS_MAX]; /* a signature by any of them is accepted */
    size_t key_lens[CM_JWT_KEYS_MAX];
    size_t nkeys;
    int64_t leeway;        /* seconds of clock skew allowed on exp and nbf */
    const char *audience;  /* NULL: aud not checked; else aud (a string or an array of strings) must hold it */
    const char *issuer;    /* NULL: iss not checked; else iss must equal it */
};

/* cm_jwt_verify with several keys and the optional aud and iss checks.
 * Every key is tried (each compare in constant time); the checks then run
 * in the order of the result codes: alg, signature, claims' types, exp
 * missing, sub, exp, nbf, aud, iss. */
enum cm_jwt_result cm_jwt_check(const char *token, size_t len, const struct cm_jwt_rules *rules, int64_t now,
                                char *sub, int64_t *exp);

/* A short reason for logs and the 401 body ("expired", "bad signature"). */
const char *cm_jwt_result_str(enum cm_jwt_result r);

/* Writes a signed HS256 token {"sub":sub,"exp":exp} (plus "nbf" when nbf > 0)
 * into out. Returns its length, or 0 when out is too small. For tests and
 * chatmi-bench. */
size_t cm_jwt_sign(const char *sub, int64_t exp, int64_t nbf, const unsigned char *key, size_t keylen,
                   char *out, size_t outlen);

#endif
