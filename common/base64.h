/* base64.h: base64 (RFC 4648 section 4) and base64url without padding
 * (section 5), as the WebSocket handshake and JWT need them. */
#ifndef CHATMI_COMMON_BASE64_H
#define CHATMI_COMMON_BASE64_H

#include <stddef.h>

/* Encodes with padding; out needs 4*((len+2)/3)+1 bytes. Returns the length. */
size_t cm_base64_encode(const unsigned char *in, size_t len, char *out);
/* base64url without padding; out needs 4*((len+2)/3)+1 bytes. Returns the length. */
size_t cm_base64url_encode(const unsigned char *in, size_t len, char *out);
/* Decodes base64url (padding optional, no whitespace). out needs 3*len/4+3 bytes.
 * Returns the decoded length, or -1 on a bad character or length. */
long cm_base64url_decode(const char *in, size_t len, unsigned char *out);

#endif
