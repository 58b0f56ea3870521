/* ssub.h: the pure part of the subscription links (cluster_link.c):
 * grouping channels into SSUBSCRIBE commands, and matching what a
 * subscription connection reads to what was sent on it.
 *
 * Redis Cluster wants every channel of one SSUBSCRIBE in one slot, so the
 * channels of a flush are sorted by (link, slot) and each run is one
 * command (several go out in one write).
 *
 * hiredis 0.14's async layer does not know SSUBSCRIBE's reply shape, so a
 * subscription connection is read with a plain redisReader and this FIFO
 * says what each reply answers: one entry per command sent, in order; an
 * SSUBSCRIBE of n channels is answered by n `ssubscribe` arrays (or one
 * error). `smessage` and unsolicited `sunsubscribe` (Redis dropping the
 * channels of a slot that moved away) arrive between replies and take no
 * entry. One Redis (redis://, sentinel) gets plain SUBSCRIBE on the same
 * kind of link, answered by `subscribe`, `message` and `unsubscribe`:
 * classified the same way. No network here: tests/gwunit/test_ssub.c
 * drives it with bytes. */
#ifndef CHATMI_GATEWAY_SSUB_H
#define CHATMI_GATEWAY_SSUB_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

/* Sorts order[0..n) (filled with 0..n-1) so that equal keys[] are
 * adjacent, and writes the start of each run into starts[] (room for n
 * + 1: starts[groups] == n). Returns the number of runs. Stable: channels of
 * one run keep their order. */
size_t gw_ssub_group(const uint32_t *keys, size_t n, size_t *order, size_t *starts);

/* The grouping key of a channel: its link (0..254) and its slot. */
static inline uint32_t gw_ssub_key(unsigned link, unsigned slot)
{
    return ((uint32_t)link << 14) | (slot & 0x3fffu);
}

enum gw_ssub_kind { GW_SSUB_AUTH = 1, GW_SSUB_PING, GW_SSUB_SUB, GW_SSUB_UNSUB };

struct gw_ssub_entry {
    uint8_t kind;            /* enum gw_ssub_kind */
    uint16_t slot;           /* GW_SSUB_SUB: the slot of its channels */
    uint32_t left;           /* GW_SSUB_SUB: confirmations still to come */
    size_t name_len;         /* GW_SSUB_UNSUB: its one channel */
    char *name;
};

struct gw_ssub_fifo {
    struct gw_ssub_entry *e;
    size_t head, n, cap;     /* ring */
    char *popped;            /* the last popped UNSUB entry's name (gw_ssub_classify) */
};

/* 0, or -1 when out of memory (name is copied). */
int gw_ssub_fifo_push(struct gw_ssub_fifo *f, enum gw_ssub_kind kind, unsigned slot, uint32_t left, const char *name,
                      size_t name_len);
/* Frees every entry and the ring. */
void gw_ssub_fifo_clear(struct gw_ssub_fifo *f);

/* What one reply read from a subscription connection means. */
enum gw_ssub_event {
    GW_SSUB_EV_MALFORMED = 0, /* not a reply this link can get: reset the link */
    GW_SSUB_EV_MESSAGE,       /* smessage: channel, payload */
    GW_SSUB_EV_SUBSCRIBED,    /* ssubscribe confirmation: channel */
    GW_SSUB_EV_UNSUBSCRIBED,  /* our SUNSUBSCRIBE confirmed (or refused: channel gone either way): channel */
    GW_SSUB_EV_DROPPED,       /* unsolicited sunsubscribe: channel (its slot moved away) */
    GW_SSUB_EV_SUB_FAILED,    /* an SSUBSCRIBE refused (MOVED, ASK, TRYAGAIN, ...): slot, error text */
    GW_SSUB_EV_AUTH_OK,
    GW_SSUB_EV_AUTH_FAILED,   /* error text */
    GW_SSUB_EV_PONG,
};

struct gw_ssub_result {
    const char *channel, *payload, *error;
    size_t channel_len, payload_len, error_len;
    unsigned slot;
};

/* Classifies reply r against the FIFO, popping the entry it answers.
 * Pointers in out point into r (or into a popped entry's name, valid until
 * the next call on f). */
enum gw_ssub_event gw_ssub_classify(struct gw_ssub_fifo *f, const redisReply *r, struct gw_ssub_result *out);

#endif
