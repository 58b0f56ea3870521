/* ids.c: syntax of user ids, room names and conversation ids; UTF-8 checks. */
#include "common/ids.h"

#include <string.h>

static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static int valid_name(const char *s, size_t len, size_t max)
{
    if (s == NULL || len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int cm_valid_user(const char *s, size_t len)
{
    return valid_name(s, len, CM_USER_MAX);
}

int cm_valid_room(const char *s, size_t len)
{
    return valid_name(s, len, CM_ROOM_MAX);
}

/* RFC 3629 table 3-7: the second byte's range depends on the first so that
 * overlong forms, surrogates (U+D800..DFFF) and code points above U+10FFFF
 * are all rejected. */
int cm_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2, lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            n = 2;
        } else if (c == 0xED) {
            n = 2, hi = 0x9F;
        } else if (c == 0xF0) {
            n = 3, lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3, hi = 0x8F;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += n + 1;
    }
    return 1;
}

/* Byte order, shorter first on a common prefix: the order the contract's
 * dm:<a>:<b> uses, so both users compute the same id. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

size_t cm_conv_dm(const char *a, size_t alen, const char *b, size_t blen, char *out)
{
    if (bytes_cmp(a, alen, b, blen) > 0) {
        const char *t = a;
        size_t tl = alen;
        a = b, alen = blen;
        b = t, blen = tl;
    }
    size_t n = 0;
    memcpy(out, "dm:", 3), n += 3;
    memcpy(out + n, a, alen), n += alen;
    out[n++] = ':';
    memcpy(out + n, b, blen), n += blen;
    out[n] = '\0';
    return n;
}

size_t cm_conv_room(const char *room, size_t len, char *out)
{
    memcpy(out, "room:", 5);
    memcpy(out + 5, room, len);
    out[5 + len] = '\0';
    return 5 + len;
}

enum cm_conv_kind cm_conv_parse(const char *conv, size_t len, char *a, char *b)
{
    if (conv == NULL || len > CM_CONV_MAX)
        return CM_CONV_INVALID;
    if (len > 5 && memcmp(conv, "room:", 5) == 0) {
        if (!cm_valid_room(conv + 5, len - 5))
            return CM_CONV_INVALID;
        memcpy(a, conv + 5, len - 5);
        a[len - 5] = '\0';
        b[0] = '\0';
        return CM_CONV_ROOM;
    }
    if (len > 3 && memcmp(conv, "dm:", 3) == 0) {
        const char *u1 = conv + 3;
        const char *colon = memchr(u1, ':', len - 3);
        if (colon == NULL)
            return CM_CONV_INVALID;
        size_t l1 = (size_t)(colon - u1);
        const char *u2 = colon + 1;
        size_t l2 = len - 3 - l1 - 1;
        /* User ids cannot contain ':', so a second one fails validation. */
        if (!cm_valid_user(u1, l1) || !cm_valid_user(u2, l2))
            return CM_CONV_INVALID;
        if (bytes_cmp(u1, l1, u2, l2) > 0)
            return CM_CONV_INVALID;
        memcpy(a, u1, l1);
        a[l1] = '\0';
        memcpy(b, u2, l2);
        b[l2] = '\0';
        return CM_CONV_DM;
    }
    return CM_CONV_INVALID;
}
