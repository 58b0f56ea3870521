/* wsframe.c: client frames out, server frames in (wsframe.h). */
#include "bench/wsframe.h"

#include <string.h>

static size_t header(uint8_t *out, int opcode, uint64_t len, const uint8_t mask[4])
{
    size_t n;

    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)(0x80 | len);
        n = 2;
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    memcpy(out + n, mask, 4);
    return n + 4;
}

size_t bn_ws_frame(uint8_t *out, int opcode, const void *payload, size_t len, const uint8_t mask[4])
{
    size_t h = header(out, opcode, len, mask);
    const uint8_t *p = payload;
    uint8_t *o = out + h;
    for (size_t i = 0; i < len; i++)
        o[i] = p[i] ^ mask[i & 3];
    return h + len;
}

size_t bn_ws_close_frame(uint8_t *out, uint16_t code, const uint8_t mask[4])
{
    uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    return bn_ws_frame(out, BN_WS_CLOSE, body, code ? 2 : 0, mask);
}

long bn_ws_parse(const uint8_t *buf, size_t len, uint64_t max_payload, struct bn_ws_frame *f)
{
    if (len < 2)
        return BN_WS_NEED_MORE;
    int fin = buf[0] & 0x80, op = buf[0] & 0x0f;
    if (buf[0] & 0x70)
        return BN_WS_ERROR; /* RSV bits: no extension was negotiated */
    if (buf[1] & 0x80)
        return BN_WS_ERROR; /* servers never mask */
    if (!(op <= BN_WS_BINARY || (op >= BN_WS_CLOSE && op <= BN_WS_PONG)))
        return BN_WS_ERROR;
    uint64_t plen = buf[1] & 0x7f;
    size_t h = 2;
    if (op >= BN_WS_CLOSE && (!fin || plen > 125))
        return BN_WS_ERROR;
    if (plen == 126) {
        if (len < 4)
            return BN_WS_NEED_MORE;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        h = 4;
    } else if (plen == 127) {
        if (len < 10)
            return BN_WS_NEED_MORE;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
        if (plen >> 63)
            return BN_WS_ERROR;
        h = 10;
    }
    if (plen > max_payload)
        return BN_WS_ERROR;
    if (len - h < plen)
        return BN_WS_NEED_MORE;
    f->fin = fin != 0;
    f->opcode = op;
    f->payload = buf + h;
    f->len = plen;
    f->frame_len = h + (size_t)plen;
    return (long)f->frame_len;
}
