/* frame.h: the parts of RFC 6455 framing the gateway does itself.
 *
 * wslay parses what clients send. Server frames are built here because a
 * frame for a room message is encoded once and shared by every connection it
 * goes to; wslay would copy it per connection. The scanner follows client
 * frame boundaries so a connection's wslay context can be freed whenever no
 * frame or fragmented message is half received. */
#ifndef CHATMI_GATEWAY_FRAME_H
#define CHATMI_GATEWAY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define GW_OP_CONT 0x0
#define GW_OP_TEXT 0x1
#define GW_OP_BINARY 0x2
#define GW_OP_CLOSE 0x8
#define GW_OP_PING 0x9
#define GW_OP_PONG 0xa

#define GW_FRAME_HEADER_MAX 10

/* Writes an unmasked FIN frame header for a payload of len bytes. Returns 2, 4 or 10. */
size_t gw_frame_header(unsigned char *out, int opcode, uint64_t len);

/* Writes a whole close frame (header, 2-byte code, reason cut to fit 125
 * bytes of payload) into out (at least 2 + 125 bytes). Returns its length. */
size_t gw_frame_close(unsigned char *out, uint16_t code, const char *reason);

struct gw_frame_scan {
    uint64_t remaining;     /* payload bytes of the current frame still to come */
    unsigned char hdr[14];  /* a header split across reads */
    uint8_t hdr_len;
    uint8_t in_message;     /* a data message's last frame had FIN=0 */
};

/* Follows len more bytes of the client's stream. */
void gw_frame_scan_feed(struct gw_frame_scan *s, const unsigned char *p, size_t len);

/* 1 when the stream is between frames and not inside a fragmented message. */
int gw_frame_scan_idle(const struct gw_frame_scan *s);

#endif
