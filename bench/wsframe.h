/* wsframe.h: the client side of RFC 6455 framing, as chatmi-bench needs it.
 *
 * Writing: every client frame is masked (section 5.3). Parsing: frames the
 * server sends, which are never masked. The parser keeps no state: it looks
 * at the bytes buffered so far and either finds one whole frame at their
 * start or says how far it got, so a connection needs no parser state, only
 * the few bytes of a frame cut by a read (the caller keeps those). */
#ifndef CHATMI_BENCH_WSFRAME_H
#define CHATMI_BENCH_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    BN_WS_CONT = 0x0,
    BN_WS_TEXT = 0x1,
    BN_WS_BINARY = 0x2,
    BN_WS_CLOSE = 0x8,
    BN_WS_PING = 0x9,
    BN_WS_PONG = 0xa
};

#define BN_WS_HEADER_MAX 14 /* 2 + 8 length + 4 mask */

/* Writes a final (FIN) masked frame with the given opcode, payload and
 * mask key into out, which needs BN_WS_HEADER_MAX + len bytes. Returns the
 * frame's length. */
size_t bn_ws_frame(uint8_t *out, int opcode, const void *payload, size_t len, const uint8_t mask[4]);

/* Writes a close frame with code (0: no code) into out (BN_WS_HEADER_MAX + 2
 * bytes). Returns its length. */
size_t bn_ws_close_frame(uint8_t *out, uint16_t code, const uint8_t mask[4]);

struct bn_ws_frame {
    int fin;
    int opcode;
    const uint8_t *payload; /* points into the parsed buffer */
    uint64_t len;
    size_t frame_len;       /* header + payload */
};

enum {
    BN_WS_NEED_MORE = 0, /* no whole frame yet */
    BN_WS_ERROR = -1     /* the bytes are not a valid server frame */
};

/* Looks for one whole frame at the start of buf[0..len). Returns the frame's
 * length (> 0) and fills *f; BN_WS_NEED_MORE when more bytes are needed;
 * BN_WS_ERROR for a masked frame, reserved bits or opcodes, a control frame
 * that is fragmented or longer than 125 bytes, or a payload longer than
 * max_payload. */
long bn_ws_parse(const uint8_t *buf, size_t len, uint64_t max_payload, struct bn_ws_frame *f);

#endif
