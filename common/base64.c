/* base64.c: base64 encoding through OpenSSL, and a strict base64url decoder
 * (OpenSSL has none for the URL alphabet). */
#include "common/base64.h"

#include <limits.h>
#include <openssl/evp.h>

/* EVP_EncodeBlock takes an int length; feed it whole 3-byte groups so chunks
 * concatenate into the same text as one call would produce. */
#define CHUNK ((size_t)3 * 1024 * 1024)

size_t cm_base64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = 0;
    out[0] = '\0';
    while (len > 0) {
        size_t k = len < CHUNK ? len : CHUNK;
        n += (size_t)EVP_EncodeBlock((unsigned char *)out + n, in, (int)k);
        in += k;
        len -= k;
    }
    return n;
}

size_t cm_base64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = cm_base64_encode(in, len, out);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return n;
}

static int url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long cm_base64url_decode(const char *in, size_t len, unsigned char *out)
{
    if (len > LONG_MAX / 3)
        return -1;
    /* Optional padding, but when present it must complete the last quantum. */
    if (len % 4 == 0 && len > 0 && in[len - 1] == '=') {
        len--;
        if (in[len - 1] == '=')
            len--;
    }
    if (len % 4 == 1)
        return -1;

    size_t n = 0;
    unsigned int acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned int)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: otherwise several texts decode to the same
     * bytes, which a signature check should not have to think about. */
    if (acc != 0)
        return -1;
    return (long)n;
}
