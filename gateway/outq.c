/* outq.c: shared frame buffers and the per-connection output ring. */
#include <config.h>

#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "gateway/frame.h"

#define OUTQ_IOV_MAX 64

struct gw_buf *gw_buf_new(size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct gw_buf *b = malloc(sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

struct gw_buf *gw_buf_frame(int opcode, const void *payload, size_t len)
{
    unsigned char hdr[GW_FRAME_HEADER_MAX];
    size_t hlen = gw_frame_header(hdr, opcode, len);
    struct gw_buf *b = gw_buf_new(hlen + len);
    if (b == NULL)
        return NULL;
    memcpy(b->data, hdr, hlen);
    if (len > 0)
        memcpy(b->data + hlen, payload, len);
    return b;
}

void gw_buf_unref(struct gw_buf *b)
{
    if (b != NULL && --b->refs == 0)
        free(b);
}

int gw_outq_push(struct gw_outq **qp, struct gw_buf *buf, size_t off)
{
    struct gw_outq *q = *qp;
    if (q == NULL || q->count == q->cap) {
        uint32_t cap = q == NULL ? 4 : q->cap * 2;
        struct gw_outq *n = malloc(sizeof(*n) + cap * sizeof(n->items[0]));
        if (n == NULL)
            return -1;
        n->bytes = 0;
        n->head = 0;
        n->count = 0;
        n->cap = cap;
        if (q != NULL) {
            /* Unroll the ring into the new array. */
            for (uint32_t i = 0; i < q->count; i++)
                n->items[i] = q->items[(q->head + i) % q->cap];
            n->count = q->count;
            n->bytes = q->bytes;
            free(q);
        }
        q = n;
        *qp = q;
    }
    struct gw_outq_item *it = &q->items[(q->head + q->count) % q->cap];
    it->buf = gw_buf_ref(buf);
    it->off = (uint32_t)off;
    q->count++;
    q->bytes += buf->len - off;
    return 0;
}

ssize_t gw_outq_write(struct gw_outq *q, int fd, size_t max_bytes)
{
    size_t total = 0;
    while (q->count > 0 && total < max_bytes) {
        struct iovec iov[OUTQ_IOV_MAX];
        int n = 0;
        size_t want = 0;
        for (uint32_t i = 0; i < q->count && n < OUTQ_IOV_MAX && want < max_bytes - total; i++) {
            struct gw_outq_item *it = &q->items[(q->head + i) % q->cap];
            iov[n].iov_base = it->buf->data + it->off;
            iov[n].iov_len = it->buf->len - it->off;
            want += iov[n].iov_len;
            n++;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        total += (size_t)w;
        q->bytes -= (size_t)w;
        size_t left = (size_t)w;
        while (left > 0) {
            struct gw_outq_item *it = &q->items[q->head];
            size_t avail = it->buf->len - it->off;
            if (left < avail) {
                it->off += (uint32_t)left;
                break;
            }
            left -= avail;
            gw_buf_unref(it->buf);
            q->head = (q->head + 1) % q->cap;
            q->count--;
        }
        if ((size_t)w < want)
            break; /* the socket is full */
    }
    return (ssize_t)total;
}

void gw_outq_free(struct gw_outq *q)
{
    if (q == NULL)
        return;
    for (uint32_t i = 0; i < q->count; i++)
        gw_buf_unref(q->items[(q->head + i) % q->cap].buf);
    free(q);
}
