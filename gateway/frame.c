/* frame.c: server frame headers, close frames, and the client frame
 * boundary scanner (RFC 6455 section 5.2). */
#include "gateway/frame.h"

#include <string.h>

size_t gw_frame_header(unsigned char *out, int opcode, uint64_t len)
{
    int i;

    out[0] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

size_t gw_frame_close(unsigned char *out, uint16_t code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0, h;

    /* Code 0 is not a close code: send an empty close (the peer reads 1005). */
    if (code == 0)
        return gw_frame_header(out, GW_OP_CLOSE, 0);
    if (rlen > 123) {
        rlen = 123;
        /* The reason must stay valid UTF-8 (section 5.5.1): never cut a
         * multi-byte character in half. */
        while (rlen > 0 && ((unsigned char)reason[rlen] & 0xc0) == 0x80)
            rlen--;
    }
    h = gw_frame_header(out, GW_OP_CLOSE, 2 + rlen);
    out[h] = (unsigned char)(code >> 8);
    out[h + 1] = (unsigned char)code;
    if (rlen)
        memcpy(out + h + 2, reason, rlen);
    return h + 2 + rlen;
}

/* Header length once its first two bytes are known. */
static uint8_t header_len(const unsigned char *hdr)
{
    uint8_t n = 2, l7 = hdr[1] & 0x7f;

    if (l7 == 126)
        n += 2;
    else if (l7 == 127)
        n += 8;
    if (hdr[1] & 0x80)
        n += 4;
    return n;
}

static void header_done(struct gw_frame_scan *s)
{
    const unsigned char *h = s->hdr;
    int fin = h[0] & 0x80, op = h[0] & 0x0f;
    uint8_t l7 = h[1] & 0x7f;
    uint64_t len = l7;
    int i;

    if (l7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (l7 == 127) {
        len = 0;
        for (i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    }
    s->remaining = len;
    s->hdr_len = 0;
    /* Control frames (opcode >= 8) may sit between the fragments of a
     * message and never end or start one. */
    if (op == GW_OP_TEXT || op == GW_OP_BINARY)
        s->in_message = !fin;
    else if (op == GW_OP_CONT && fin)
        s->in_message = 0;
}

void gw_frame_scan_feed(struct gw_frame_scan *s, const unsigned char *p, size_t len)
{
    while (len > 0) {
        if (s->remaining > 0) {
            uint64_t take = s->remaining < len ? s->remaining : len;

            s->remaining -= take;
            p += take;
            len -= (size_t)take;
            continue;
        }
        s->hdr[s->hdr_len++] = *p++;
        len--;
        if (s->hdr_len >= 2 && s->hdr_len == header_len(s->hdr))
            header_done(s);
    }
}

int gw_frame_scan_idle(const struct gw_frame_scan *s)
{
    return s->remaining == 0 && s->hdr_len == 0 && !s->in_message;
}
