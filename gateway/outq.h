/* outq.h: bytes on their way to one client.
 *
 * A gw_buf is an immutable, reference-counted frame (or HTTP response): a
 * room message is framed once and the same buffer is queued on every
 * connection it goes to. A gw_outq exists only while a connection has
 * unwritten output; an idle connection has none. */
#ifndef CHATMI_GATEWAY_OUTQ_H
#define CHATMI_GATEWAY_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gw_buf {
    uint32_t refs;
    uint32_t len;
    unsigned char data[];
};

/* A buffer of len bytes, one reference held by the caller. NULL when out of memory. */
struct gw_buf *gw_buf_new(size_t len);
/* A WebSocket frame (header + payload) in a new buffer. */
struct gw_buf *gw_buf_frame(int opcode, const void *payload, size_t len);
static inline struct gw_buf *gw_buf_ref(struct gw_buf *b)
{
    b->refs++;
    return b;
}
void gw_buf_unref(struct gw_buf *b);

struct gw_outq_item {
    struct gw_buf *buf;
    uint32_t off;
};

struct gw_outq {
    size_t bytes;           /* unwritten bytes in the queue */
    uint32_t head, count, cap;
    struct gw_outq_item items[];
};

/* Appends buf (taking a new reference) from byte off on. *q may be NULL
 * (created) and may move. 0, or -1 when out of memory (nothing changed). */
int gw_outq_push(struct gw_outq **q, struct gw_buf *buf, size_t off);

/* Writes as much as the socket takes, up to max_bytes, with writev.
 * Returns the bytes written (>= 0); -1 with errno on a socket error other
 * than EAGAIN. */
ssize_t gw_outq_write(struct gw_outq *q, int fd, size_t max_bytes);

/* Drops every item and frees the queue. NULL is fine. */
void gw_outq_free(struct gw_outq *q);

#endif
