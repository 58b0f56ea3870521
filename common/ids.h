/* ids.h: the identifiers of the client protocol (contract sections 3 and 4)
 * and UTF-8 validation. Pure functions, no allocation. */
#ifndef CHATMI_COMMON_IDS_H
#define CHATMI_COMMON_IDS_H

#include <stddef.h>

#define CM_USER_MAX 64      /* user id: 1..64 of A-Z a-z 0-9 _ . - */
#define CM_ROOM_MAX 64      /* room name: same alphabet and length */
#define CM_REQ_ID_MAX 64    /* client request id: 1..64 bytes */
/* "dm:" + user + ":" + user, or "room:" + room */
#define CM_CONV_MAX (3 + CM_USER_MAX + 1 + CM_USER_MAX)

/* 1 when s[0..len) is a valid user id / room name, else 0. */
int cm_valid_user(const char *s, size_t len);
int cm_valid_room(const char *s, size_t len);

/* 1 when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), else 0. */
int cm_utf8_valid(const unsigned char *s, size_t len);

enum cm_conv_kind { CM_CONV_INVALID = 0, CM_CONV_DM, CM_CONV_ROOM };

/* Writes "dm:<lo>:<hi>" (the two ids in byte order) into out (size >=
 * CM_CONV_MAX + 1). Both ids must be valid. Returns the length. */
size_t cm_conv_dm(const char *a, size_t alen, const char *b, size_t blen, char *out);
/* Writes "room:<name>". Returns the length. */
size_t cm_conv_room(const char *room, size_t len, char *out);

/* Parses a conversation id. For a DM, a and b receive the two user ids (NUL
 * terminated; buffers of CM_USER_MAX + 1) and the DM must be canonical
 * (a < b in byte order, or a == b); for a room, a receives the name and b is
 * set to "". Returns CM_CONV_INVALID for anything else. */
enum cm_conv_kind cm_conv_parse(const char *conv, size_t len, char *a, char *b);

#endif
