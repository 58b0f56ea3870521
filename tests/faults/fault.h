/* fault.h: the fault-injection suite's load, checks and probes.
 *
 * Load (load.c): N WebSocket clients, each a thread with its own session,
 * sending at a steady pace to one room and to a DM partner. Every send has a
 * unique id and a unique text; a client keeps its unacked sends and resends
 * them with the same id after every reconnect and every `resync`, when an
 * `unavailable` error comes back, and when no ack arrived for a long time,
 * as docs/protocol.md's reconnecting-client recipe says. A closed session
 * reconnects with capped exponential backoff and jitter, optionally to the
 * next gateway of its list. Clients record every ack, delivery, hello,
 * resync and close with the wall-clock time.
 *
 * Checks (fl_finish): once every send is acked, the history of every
 * conversation is read back through the protocol and must hold every acked
 * message exactly once (matched by its unique text, with the seq and msg id
 * of its ack), with seq 1..N and no gap; and every client must have got
 * each message of its conversations live, unless it was told to recover
 * (a resync, or a fresh hello after a reconnect) after the message was
 * stored, or it ended offline; and no session may get the same message
 * twice (unless live_dups_ok). Nothing waits with sleeps: every wait is for
 * an event, against a deadline scaled by CHATMI_IT_TIMEOUT_SCALE.
 *
 * Threads: the client threads never assert; only the test's main thread
 * calls the functions below. */
#ifndef CHATMI_FAULTS_FAULT_H
#define CHATMI_FAULTS_FAULT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FL_MAX_CLIENTS 16
#define FL_MAX_PORTS 4

struct fl_conf {
    int nclients;               /* 0: 6 */
    int ports[FL_MAX_PORTS];    /* gateway ports a client may use, in order */
    int nports;                 /* 0: gateway 0 only */
    int switch_on_close;        /* after a close or a failed connect, go to the next port */
    int interval_ms;            /* between two sends of one client; 0: 25 */
    int window;                 /* unacked sends per client at most; 0: 4 */
    size_t pad;                 /* bytes of padding in every text (bigger messages) */
    const char *room;           /* NULL: "load" */
    const char *prefix;         /* user ids are <prefix><i>; NULL: "c" */
    int live_dups_ok;           /* a session may get a message twice (counted, not asserted): a Redis
                                 * failover can lose the record that a fan-out was done */
};

struct fl_result {
    long sent;                  /* distinct sends (ids) created */
    long acked;                 /* of them, acked */
    long lost;                  /* acked but not in history */
    long duplicated;            /* in history more than once, or acked with two different seqs */
    long unknown;               /* history entries no client sent */
    long gaps;                  /* conversations whose seqs are not exactly 1..N */
    long mismatched;            /* a delivery whose msg id differs from history's at that seq */
    long live_missed;           /* missed live by a client that was online and never told to resync */
    long live_recovered;        /* missed live, but covered by a resync or reconnect */
    long live_dups;             /* the same message delivered twice on one session */
    long max_ack_wait_ms;       /* longest wait from a send's first attempt to its ack */
    long max_offline_ms;        /* longest time a client was without a session (close to next hello) */
    long max_recovery_ms;       /* the larger of the two: the longest a user could not chat */
    long reconnects;            /* sessions opened after the first one */
    long resyncs;               /* resync messages received */
    long connect_failures;      /* handshakes refused, failed or without hello */
    long errors;                /* error replies other than unavailable */
    long unavailable;           /* unavailable error replies (retried) */
};

/* One session's end, as a client saw it. */
struct fl_close {
    int client;
    int port;
    int code;                   /* close code; 1006 without a close frame */
    int64_t ms;                 /* wall clock */
};

struct fl_load;

/* Opens every client's first session (asserting), joins the room, then
 * starts the client threads. */
struct fl_load *fl_start(const struct fl_conf *conf);

/* Acks received so far, all clients together. */
long fl_acked(struct fl_load *l);
/* Waits until at least n acks were received: 1, or 0 at the deadline. */
int fl_wait_acked(struct fl_load *l, long n, int timeout_ms);
/* Waits until every client has an open session again whose hello came
 * after since_ms (wall clock) when fresh is set, or any open session when
 * not. 1, or 0 at the deadline. */
int fl_wait_connected(struct fl_load *l, int64_t since_ms, int fresh, int timeout_ms);

/* Every session end so far, in no particular order. Returns how many were
 * written (at most max); *total gets how many there are. */
int fl_closes(struct fl_load *l, struct fl_close *out, int max, int *total);
/* Local TCP ports of the clients' open sessions (0 for a client without
 * one). Returns the number of clients. */
int fl_local_ports(struct fl_load *l, int *out, int max);
/* Longest wait from first attempt to ack, over the sends first attempted
 * in [from_ms, to_ms) (wall clock); sends still unacked count up to now. */
long fl_max_latency(struct fl_load *l, int64_t from_ms, int64_t to_ms);
/* Connect failures so far (all clients). */
long fl_connect_failures(struct fl_load *l);

/* Stops new sends, waits for every send to be acked (clients keep
 * retrying), reads every conversation's history through check_port, waits
 * a bounded time for deliveries still in flight, stops the clients and
 * fills r. Asserts the invariant: nothing lost, nothing duplicated, seqs
 * gap-free, every send acked, no delivery missed without a resync, no
 * unexpected error reply. Frees l. */
void fl_finish(struct fl_load *l, int check_port, struct fl_result *r);

/* ---- the table (table.c) ----------------------------------------------------------- */

/* Appends one row of the run's table (printed at the end of the run and
 * written to fault-table.md in the working directory), sorted by the number
 * fault starts with ("1. kill -9 worker"). injections: how many times the
 * fault was applied; r NULL: the case was skipped; note: a short remark
 * (may be NULL). */
void fl_row(const char *fault, int injections, const struct fl_result *r, const char *note);

/* ---- probes (probe.c) ------------------------------------------------------------- */

/* A Redis command on the test's Redis (a fresh connection each time);
 * integer replies only. Returns the integer, or -1 on any failure. In a
 * cluster it follows MOVED and ASK to the key's slot owner. */
long long fl_redis_int(const char *fmt, ...);
/* Items in a queue list ("inbound", "fanout", "dead"): chatmi:{q}:<name>,
 * or in a cluster the sum over every partition's list (keys matching
 * chatmi:{q*}:<name> on every master). -1 on failure. */
long long fl_queue_items(const char *name);
/* Sends fl_redis_int() to this port from now on (after a failover). */
void fl_redis_use_port(int port);
/* How many workers sets list worker_id (chatmi:{q}:workers; in a cluster
 * every partition's chatmi:{q*}:workers): 0 once it was reaped. -1 on
 * failure. */
long long fl_worker_listed(const char *worker_id);
/* Items in the two processing lists of a worker (in a cluster: every
 * chatmi:{q*}:*:proc:<worker> list). -1 on failure. */
long long fl_worker_in_hand(const char *worker_id);
/* The gateway child (among pids) that holds the server side of the TCP
 * connection from 127.0.0.1:local_port to gw_port. 0 when not found. */
pid_t fl_conn_owner(int gw_port, int local_port, const pid_t *pids, int npids);

/* A session that never reads: a raw socket with a tiny receive buffer and
 * MSS (so the kernel hides little of what the gateway sends), upgraded to a
 * WebSocket for user. Returns the fd (asserting on failure). Its first
 * bytes (101, hello) are left unread. */
int fl_stalled_open(int port, const char *user);
/* Reads the stalled socket to its end and returns the close code the
 * server sent (1006 when none came) or -1 on timeout. */
int fl_stalled_close_code(int fd, int timeout_ms);

#endif
