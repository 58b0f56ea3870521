/* conn.h: one client connection of a gateway child, from accept to close.
 *
 * State machine (gw_conn_set_state is the only place that changes it):
 *   HTTP     reading the request head; on the child's handshake list
 *   OPEN     WebSocket session; on its user's session list
 *   CLOSING  close frame or HTTP response queued; on the child's closing
 *            list until the output is flushed and the peer is gone, or the
 *            close deadline passes
 * An idle OPEN connection is this struct and its one event: the wslay
 * context (`io`), the output queue and the HTTP buffer are allocated only
 * while something is in flight. */
#ifndef CHATMI_GATEWAY_CONN_H
#define CHATMI_GATEWAY_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/socket.h>

#include "gateway/outq.h"

struct gw_child;
struct gw_user;
struct gw_conn_io;
struct gw_http_buf;
struct gw_ipcount_entry;

enum gw_conn_state { GW_CONN_HTTP = 0, GW_CONN_OPEN, GW_CONN_CLOSING };

struct gw_conn {
    int fd;
    uint32_t gen;                 /* makes the session id unique within the child */
    uint8_t state;                /* enum gw_conn_state */
    uint8_t enc;                  /* enum cm_encoding of the session */
    uint8_t hello_pending;        /* OPEN: hello waits for the user's subscription */
    uint8_t resync_pending;       /* OPEN: deliveries may have been missed; resync once resubscribed */
    uint8_t close_now;            /* CLOSING: close the socket once output is flushed */
    uint8_t writing;              /* EV_WRITE is part of the event */
    uint8_t wr_shut;              /* CLOSING: SHUT_WR done */
    uint8_t flush_queued;         /* output waits for the child's write pass */
    uint8_t via_proxy;            /* the peer is a trusted proxy: the client is in X-Forwarded-For */
    uint16_t close_code;          /* the close code sent, for logs */
    struct event ev;
    struct gw_child *child;
    struct gw_user *user;         /* OPEN */
    struct gw_conn *prev, *next;  /* HTTP/CLOSING: child's list; OPEN: the user's sessions */
    struct gw_conn_io *io;        /* OPEN and mid-frame: wslay state */
    struct gw_outq *outq;         /* unwritten output */
    struct gw_http_buf *http;     /* HTTP: the request head so far */
    int64_t deadline_ms;          /* HTTP: handshake timeout; CLOSING: give up */
    int64_t last_seen_ms;         /* last byte received */
    double tokens;                /* rate limit bucket */
    int64_t tokens_ms;
    struct gw_ipcount_entry *ip;  /* this connection's count under --max-conns-per-ip; NULL: not counted */
    int64_t auth_exp_s;           /* OPEN with auth jwt: the token's exp (epoch seconds); 0: none */
};

/* The child's write pass (see gw_conn_send): writes what the connection
 * queued during this loop pass. */
void gw_conn_write_pass(struct gw_conn *c);

/* Takes an accepted, non-blocking socket and accept()'s peer address.
 * Over --max-conns, or --max-conns-per-ip for a peer that is not a trusted
 * proxy, the connection is answered 503 and closed (far over --max-conns it
 * is closed without an answer). NULL (socket closed) when out of memory or
 * closed at once. */
struct gw_conn *gw_conn_new(struct gw_child *child, int fd, const struct sockaddr *peer);

/* Queues a shared buffer (a frame) to the connection. Output is written by
 * the child's write pass at the end of the current loop pass (every frame
 * queued to a socket in that pass goes out in one writev), or by the write
 * event while the socket is full. Past --max-queued-bytes the session is
 * closed with 1013. Returns 0, or -1 when the connection is closing or was
 * closed for it. */
int gw_conn_send(struct gw_conn *c, struct gw_buf *buf);

/* Queues a close frame with code and reason and moves to CLOSING. */
void gw_conn_close_ws(struct gw_conn *c, uint16_t code, const char *reason);

/* Closes the socket and frees everything now. Never call it from inside
 * one of the connection's own wslay callbacks. */
void gw_conn_free(struct gw_conn *c);

/* Sends a packed server message (MessagePack) in the session's encoding. */
int gw_conn_send_msg(struct gw_conn *c, const char *msg, size_t len);

/* `unavailable` for a request whose push to the queue was not confirmed. */
void gw_conn_send_push_failed(struct gw_conn *c, const char *id, size_t idlen);

/* The hello frame, once the user's channel is subscribed. */
void gw_conn_send_hello(struct gw_conn *c);

/* Tells the session that deliveries may have been lost while its user's
 * subscription was down, once the subscription is back: the client then
 * catches up with convs and history. */
void gw_conn_send_resync(struct gw_conn *c);

/* Writes the session id ("<node>.<fd hex>.<gen hex>") into out (size >= 96). */
size_t gw_conn_session_id(const struct gw_conn *c, char *out, size_t outlen);

/* Per-second housekeeping: handshake and close deadlines. */
void gw_conn_check_deadline(struct gw_conn *c, int64_t now_ms);

/* Heartbeat visit: ping, or drop a session silent for two periods, or
 * close with 1008 one whose token has expired. */
void gw_conn_heartbeat(struct gw_conn *c, int64_t now_ms);

#endif
