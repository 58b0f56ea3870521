/* shard.h: one bench process's share of the clients (a "shard"), its event
 * loop, and the link to the coordinator that starts each phase for all
 * shards at once.
 *
 * A client is a fixed slot in the shard's array, reused across reconnects,
 * so nothing is freed while one of its callbacks runs. An idle connected
 * client is this struct and its struct event; the input, output and
 * fragment buffers exist only while bytes are waiting.
 *
 * Phases (the coordinator says "go" for each one when every shard arrived):
 *   SETUP    connect every client (ramp), room and storm: join;  -> arrive 1
 *   RUN      idle: hold; dm/room: warm-up, measured period, drain;
 *            storm: drop every client, the feeder sends what they will miss
 *            and waits for its acks                              -> arrive 2
 *   STORM    storm: reconnect over the window, convs + history, until all
 *            recovered
 *   DONE     the result goes to the coordinator */
#ifndef CHATMI_BENCH_SHARD_H
#define CHATMI_BENCH_SHARD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "bench/options.h"
#include "bench/result.h"

enum bn_cstate {
    BN_C_IDLE = 0,   /* no socket */
    BN_C_CONNECTING, /* TCP connect in progress */
    BN_C_HANDSHAKE,  /* request sent, reading the answer */
    BN_C_OPEN,       /* upgraded, waiting for hello */
    BN_C_READY,      /* hello received */
    BN_C_DONE        /* closed or failed; back to IDLE only to reconnect */
};

struct bn_bytes {
    size_t len, cap;
    uint8_t data[];
};

struct bn_client {
    struct event ev;
    struct bn_shard *sh;
    struct bn_bytes *in;   /* the start of a frame (or response head) cut by a read */
    struct bn_bytes *out;  /* output the socket did not take yet */
    struct bn_bytes *frag; /* a fragmented message being put together */
    int64_t t_start;       /* ns: this connection attempt started */
    int64_t t_sched;       /* ns: storm: when the reconnect was due */
    uint32_t idx;          /* global client number; the feeder has BN_FEEDER */
    uint32_t known_seq;    /* storm: the room's last seq this client has */
    uint32_t target_seq;   /* storm: the room's last_seq from convs */
    uint32_t attempt;      /* connection attempts, for the handshake key */
    int fd;
    uint8_t state;         /* enum bn_cstate */
    uint8_t writing;       /* EV_WRITE is part of the event */
    uint8_t joined;        /* 1 joined, 2 join failed */
    uint8_t recovered;     /* storm: 1 done, 2 gave up */
    uint8_t frag_op;
    uint8_t closing;       /* the bench closed it on purpose */
};

#define BN_FEEDER UINT32_MAX

enum bn_phase { BN_P_SETUP = 0, BN_P_RUN, BN_P_STORM, BN_P_DONE };

/* Messages between a shard and the coordinator (SOCK_SEQPACKET, one each). */
enum { BN_MSG_ARRIVE = 1, BN_MSG_GO = 2, BN_MSG_RESULT = 3 };
struct bn_msg {
    uint32_t type;
    uint32_t phase;
    int64_t t_ns;
};

struct bn_shard {
    const struct bn_config *cfg;
    struct event_base *base;
    int index, nshards;
    uint32_t first, count;      /* global client numbers [first, first + count) */
    struct bn_client *clients;
    struct bn_client feeder;    /* storm: sends what the others miss */
    uint8_t *rbuf;              /* one read buffer for every client */
    size_t rbuf_cap;
    uint64_t seed, rng;
    struct event *tick_ev, *link_ev;
    int link_fd;
    int done;                   /* the result was sent */
    int hung_up;                /* the coordinator closed the link: a forked shard exits */

    enum bn_phase phase;
    int arrived;                /* the current phase's arrival was sent */

    /* connecting: clients started in `order` (NULL: index order) */
    uint32_t *order;
    uint32_t next_start, inflight, settled;
    int64_t ramp_t0, ramp_first;
    double ramp_rate;
    int64_t last_deadline_check;
    uint32_t joined;

    /* run timing (ns, CLOCK_MONOTONIC) */
    int64_t t_go, t_meas0, t_meas1, t_end;
    uint64_t sends_done;        /* paced sends issued since t_go */
    uint32_t nsenders;          /* room: local senders; dm: local pairs */
    uint32_t sender_first;      /* room: first local sender (local index) */
    int64_t last_rx;            /* last delivery or ack */
    int64_t last_tick;
    int64_t last_progress;
    double cpu_at_meas0;
    int meas_started, meas_ended;

    /* storm */
    uint32_t groups, group_first; /* local rooms [group_first, group_first + groups) */
    uint32_t feeder_joined;
    uint8_t *feeder_acked;        /* groups * missed flags */
    uint64_t feeder_acks;
    int64_t feed_t0, feed_last_send;
    uint32_t storm_pending;       /* clients neither recovered nor failed */

    struct bn_result res;
};

static inline int64_t bn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An event base whose clock is CLOCK_MONOTONIC rather than the coarse
 * clock libevent prefers (a jiffy, 4 ms on many kernels): the 1 ms pacing
 * tick and its lateness figure need the fine one. */
struct event_base *bn_event_base_new(void);

/* ---- client.c: connections and frames ---- */

/* Starts a connection attempt (state IDLE or DONE). Failure is reported
 * through bn_shard_on_failed, possibly before this returns. */
void bn_client_connect(struct bn_client *c);

/* Sends one text message (masked). Queues what the socket does not take.
 * -1 when the client is not connected. */
int bn_client_send(struct bn_client *c, const char *text, size_t len);

/* Closes the connection on the bench's behalf (not a drop). */
void bn_client_close(struct bn_client *c);

/* Writes the client's user id into out (CM_USER_MAX + 1). */
size_t bn_client_user(const struct bn_shard *sh, uint32_t idx, char *out);

/* Deadline sweep: connects and handshakes past --connect-timeout fail. */
void bn_clients_check_deadlines(struct bn_shard *sh, int64_t now);

void bn_client_free_buffers(struct bn_client *c);

/* ---- scenario.c: what the clients do ---- */

/* A client got its hello. */
void bn_shard_on_ready(struct bn_client *c, int64_t now);
/* A text message arrived on a ready client. */
void bn_shard_on_text(struct bn_client *c, const char *text, size_t len, int64_t now);
/* A connection attempt failed, or a ready session ended without the bench
 * asking (ready says which). */
void bn_shard_on_failed(struct bn_client *c, int was_ready);

/* Sets the shard up (clients, events, link). 0 or -1. */
int bn_shard_init(struct bn_shard *sh, const struct bn_config *cfg, struct event_base *base, int index,
                  int nshards, uint32_t first, uint32_t count, int link_fd);
void bn_shard_free(struct bn_shard *sh);

/* Runs a shard alone in this process (a forked shard): its own loop until
 * the result is sent. */
int bn_shard_main(const struct bn_config *cfg, int index, int nshards, uint32_t first, uint32_t count,
                  int link_fd);

#endif
