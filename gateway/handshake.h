/* handshake.h: the RFC 6455 opening handshake of GET /ws and chatmi's
 * authentication (contract section 3). Pure: no I/O, the clock is passed in. */
#ifndef CHATMI_GATEWAY_HANDSHAKE_H
#define CHATMI_GATEWAY_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "common/ids.h"
#include "gateway/http.h"

enum gw_auth_mode { GW_AUTH_JWT = 0, GW_AUTH_NONE = 1 };

#define GW_SUBPROTO_JSON "chatmi.v1.json"
#define GW_SUBPROTO_MSGPACK "chatmi.v1.msgpack"

struct gw_handshake_config {
    enum gw_auth_mode auth;
    const unsigned char *jwt_key; size_t jwt_key_len;
    const unsigned char *jwt_key2; size_t jwt_key2_len; /* key rotation: also accepted; NULL: none */
    int64_t jwt_leeway;                  /* seconds of clock skew allowed */
    const char *jwt_audience;            /* NULL: aud not checked */
    const char *jwt_issuer;              /* NULL: iss not checked */
    const char *const *allowed_origins;  /* exact matches ("https://chat.example.com"); NULL: any */
    size_t norigins;
};

struct gw_handshake_result {
    int status;                /* 101 on success, else the HTTP status to answer */
    const char *reason;        /* short static text for the error body and logs */
    char user[CM_USER_MAX + 1];
    enum cm_encoding enc;
    const char *subprotocol;   /* to echo in Sec-WebSocket-Protocol; NULL when the client offered none */
    char accept[32];           /* Sec-WebSocket-Accept value */
    int64_t exp;               /* auth jwt: the token's exp (seconds since the epoch); 0 with auth none */
};

/* Checks a parsed request for /ws, in this order:
 *   method GET and HTTP/1.1 or later, else 400;
 *   Upgrade contains "websocket" and Connection contains "Upgrade", else 400;
 *   Sec-WebSocket-Version is 13, else 426 (answer with "Sec-WebSocket-Version: 13");
 *   Sec-WebSocket-Key is base64 of 16 bytes, else 400;
 *   Origin, when present and an allowlist is configured, is in it, else 403;
 *   subprotocols: the first of the client's offers that chatmi speaks; offers
 *     but none chatmi speaks: 400; no offer: JSON without echo;
 *   auth none: `user` query parameter a valid user id, else 400;
 *   auth jwt: token from "Authorization: Bearer <t>" or the `token` query
 *     parameter; missing, malformed, signed by neither key, expired, not yet
 *     valid, or failing the configured aud/iss checks: 401; a well-formed
 *     token whose sub is not a valid user id: 400. */
void gw_handshake_check(const struct gw_http_request *req, const struct gw_handshake_config *cfg,
                        int64_t now_s, struct gw_handshake_result *res);

/* Writes the 101 Switching Protocols response. Returns its length, 0 when out is too small. */
size_t gw_handshake_response(const struct gw_handshake_result *res, char *out, size_t outlen);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). out: 29 bytes at least. */
void gw_ws_accept(const char *key, size_t len, char *out);

#endif
