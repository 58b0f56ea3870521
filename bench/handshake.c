/* handshake.c: client opening handshake (handshake.h). */
#include "bench/handshake.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/sha.h>

#include "common/base64.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void bn_hs_key(uint64_t seed, uint32_t client, uint32_t attempt, char *out)
{
    unsigned char raw[16];
    uint64_t a = splitmix64(seed ^ ((uint64_t)client << 32 | attempt));
    uint64_t b = splitmix64(a ^ seed);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    cm_base64_encode(raw, sizeof(raw), out);
}

int bn_hs_accept(const char *key, char *out)
{
    char buf[BN_HS_KEY_LEN + sizeof(ws_guid)];
    unsigned char digest[SHA_DIGEST_LENGTH];
    size_t kl = strlen(key);
    if (kl > BN_HS_KEY_LEN)
        return -1;
    memcpy(buf, key, kl);
    memcpy(buf + kl, ws_guid, sizeof(ws_guid) - 1);
    if (SHA1((const unsigned char *)buf, kl + sizeof(ws_guid) - 1, digest) == NULL)
        return -1;
    cm_base64_encode(digest, sizeof(digest), out);
    return 0;
}

size_t bn_hs_request(char *out, size_t cap, const char *host, int port, const char *path, const char *user,
                     const char *token, const char *key)
{
    const char *sep = strchr(path, '?') ? "&" : "?";
    int bracket = strchr(host, ':') != NULL; /* an IPv6 literal */
    int n = snprintf(out, cap,
                     "GET %s%s%s%s HTTP/1.1\r\n"
                     "Host: %s%s%s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: chatmi.v1.json\r\n"
                     "%s%s%s"
                     "\r\n",
                     path, user ? sep : "", user ? "user=" : "", user ? user : "", bracket ? "[" : "", host,
                     bracket ? "]" : "", port, key, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* The value of header `name` in head[0..len), trimmed; NULL when absent. */
static const char *header(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len); /* skip the status line */
    const char *end = head + len;
    while (p != NULL && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol < end ? eol : NULL;
    }
    return NULL;
}

static int value_is(const char *v, size_t vlen, const char *want)
{
    return v != NULL && vlen == strlen(want) && strncasecmp(v, want, vlen) == 0;
}

int bn_hs_check(const char *buf, size_t len, const char *accept, size_t *head_len)
{
    const char *end = NULL;
    for (size_t i = 3; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = buf + i + 1;
            break;
        }
    }
    if (end == NULL)
        return len > BN_HS_HEAD_MAX ? BN_HS_BAD : BN_HS_MORE;
    size_t hl = (size_t)(end - buf);
    if (hl > BN_HS_HEAD_MAX)
        return BN_HS_BAD;
    if (hl < 12 || strncmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
        buf[10] > '9' || buf[11] < '0' || buf[11] > '9')
        return BN_HS_BAD;
    int status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    *head_len = hl;
    if (status != 101)
        return status;
    size_t vl = 0;
    const char *v = header(buf, hl, "Sec-WebSocket-Accept", &vl);
    if (v == NULL || vl != strlen(accept) || memcmp(v, accept, vl) != 0)
        return BN_HS_BAD;
    v = header(buf, hl, "Upgrade", &vl);
    if (!value_is(v, vl, "websocket"))
        return BN_HS_BAD;
    v = header(buf, hl, "Sec-WebSocket-Protocol", &vl);
    if (v != NULL && !value_is(v, vl, "chatmi.v1.json"))
        return BN_HS_BAD;
    return BN_HS_OK;
}
