/* child.h: one gateway child process: a libevent loop that accepts on the
 * child's listener and serves HTTP and WebSocket sessions. */
#ifndef CHATMI_GATEWAY_CHILD_H
#define CHATMI_GATEWAY_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "gateway/options.h"
#include "gateway/conn.h"
#include "gateway/handshake.h"
#include "gateway/ipcount.h"
#include "gateway/metrics.h"
#include "gateway/redis_link.h"
#include "gateway/rooms.h"
#include "gateway/users.h"
#include "gateway/www.h"

struct gw_child {
    const struct gw_config *cfg;
    struct gw_handshake_config hs;
    int index;
    char node[CM_NODE_MAX];          /* "g" + 12 hex digits, new at every start */
    struct event_base *base;
    int listen_fd;
    int notify_fd;                   /* pipe to the master */
    struct event *accept_ev, *accept_retry_ev, *tick_ev, *flush_ev, *term_ev, *int_ev, *retire_ev, *write_ev;
    int *write_fds;                  /* connections with output queued in this loop pass */
    size_t nwrite_fds, write_fds_cap;
    struct gw_metrics *metrics;
    struct gw_metrics_cell *stats;   /* this child's cell (only this process writes it) */

    struct gw_conn **conns;          /* by fd */
    size_t conns_cap;
    size_t nconns;                   /* every connection */
    size_t nsessions;                /* OPEN */
    uint32_t next_gen;
    struct gw_conn *handshaking;     /* HTTP connections */
    struct gw_conn *closing;         /* CLOSING connections */
    struct gw_ipcount ips;           /* connections per client address (--max-conns-per-ip) */

    struct gw_users users;
    struct gw_rooms rooms;
    struct gw_redis redis;

    unsigned char *rbuf;             /* the one read buffer of the child */
    size_t rbuf_cap;
    struct gw_www www;               /* the browser client, read at start */
    struct gw_buf *ping;             /* one ping frame shared by every session */
    int heartbeat_s;
    uint64_t ticks;

    int draining;
    int retiring;             /* draining because a reload replaced this child */
    int64_t drain_start_ms, drain_end_ms;
    size_t drain_initial;
    int ready_sent;                  /* last readiness told to the master */
    int exit_status;
};

/* Runs the child until it has drained or failed. Returns its exit status
 * (GW_EXIT_FATAL when it cannot start at all). */
int gw_child_run(const struct gw_config *cfg, int index, int listen_fd, int notify_fd, struct gw_metrics *metrics);

/* Lists of connections (handshaking, closing). */
void gw_child_list_add(struct gw_conn **head, struct gw_conn *c);
void gw_child_list_del(struct gw_conn **head, struct gw_conn *c);

/* The session with this id on this child, or NULL. */
struct gw_conn *gw_child_find_session(struct gw_child *ch, const char *id, size_t len);

/* Tells the master whether the child is ready (Redis up, not draining). */
/* A push whose confirmation was lost with the Redis link: answers its
 * session, if that session is still open. */
void gw_child_push_failed(struct gw_child *ch, const struct gw_push_origin *o);

void gw_child_update_ready(struct gw_child *ch);

/* Puts the connection on fd on this loop pass's write list (the write
 * pass runs after the events that queued output). 0, or -1 when out of
 * memory. */
int gw_child_defer_write(struct gw_child *ch, int fd);

/* Asks the loop to run gw_users_flush soon (once per loop pass). */
void gw_child_schedule_flush(struct gw_child *ch);

/* A delivery from a user's channel: to one session or all of that user's. */
void gw_child_deliver(struct gw_child *ch, struct gw_user *u, const char *data, size_t len);

/* One server message on its way to many sessions: framed at most once per
 * encoding (JSON made from the packed map on first use), every session
 * sharing the buffer. `where` names the channel in logs. */
struct gw_frames {
    const char *msg;
    size_t len;
    const char *where;
    struct gw_buf *frame[2];
    int failed[2];
};
void gw_frames_init(struct gw_frames *f, const char *msg, size_t len, const char *where);
void gw_frames_release(struct gw_frames *f);

/* Sends the message to every session of u that has had its hello. */
void gw_child_send_user(struct gw_child *ch, struct gw_user *u, struct gw_frames *f);

#endif
