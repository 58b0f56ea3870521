/* handshake.h: the client half of the WebSocket opening handshake
 * (RFC 6455 section 4.1) with the chatmi.v1.json subprotocol. */
#ifndef CHATMI_BENCH_HANDSHAKE_H
#define CHATMI_BENCH_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#define BN_HS_KEY_LEN 24    /* base64 of 16 bytes */
#define BN_HS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define BN_HS_HEAD_MAX 8192 /* larger response heads are refused */

/* A Sec-WebSocket-Key derived from (seed, client, attempt), so it can be
 * recomputed when the answer arrives instead of being stored. out gets
 * BN_HS_KEY_LEN characters and a NUL. */
void bn_hs_key(uint64_t seed, uint32_t client, uint32_t attempt, char *out);

/* The Sec-WebSocket-Accept the server must answer for key: out gets
 * BN_HS_ACCEPT_LEN characters and a NUL. 0, or -1 when hashing failed. */
int bn_hs_accept(const char *key, char *out);

/* Writes the upgrade request into out. user (with --auth none) goes into the
 * query as ?user= (or &user= after an existing query); token, when not NULL,
 * into an Authorization: Bearer header. Returns the length, or 0 when out is
 * too small. */
size_t bn_hs_request(char *out, size_t cap, const char *host, int port, const char *path, const char *user,
                     const char *token, const char *key);

enum { BN_HS_MORE = 0, BN_HS_BAD = -1, BN_HS_OK = 101 };

/* Looks at the response received so far. BN_HS_MORE until the head is
 * complete; then BN_HS_OK (and *head_len, the bytes of the head: what
 * follows is WebSocket frames) when the status is 101 with the right
 * Sec-WebSocket-Accept and Upgrade headers and no subprotocol other than
 * chatmi.v1.json; the status code (400, 401, 503, ...) for any other status;
 * BN_HS_BAD for a malformed head, a head over BN_HS_HEAD_MAX, or a 101 with a
 * wrong accept, protocol or upgrade header. */
int bn_hs_check(const char *buf, size_t len, const char *accept, size_t *head_len);

#endif
