/* child.c: a gateway child's life: set-up, the accept loop, the one
 * housekeeping timer (handshake and close deadlines, heartbeats, drain),
 * deliveries from Redis, and teardown. */
#include <config.h>

#include "child.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>

#include "common/clock.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/proto.h"
#include "gateway/frame.h"
#include "gateway/master.h"

#define READ_BUF_SIZE (64 * 1024)
#define ACCEPT_BATCH 64
#define TICK_MS 100                /* housekeeping period */
#define NODE_REFRESH_MS 5000
#define DRAIN_GRACE_MS 3000        /* after the drain period, close what is left */

void gw_child_list_add(struct gw_conn **head, struct gw_conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

void gw_child_list_del(struct gw_conn **head, struct gw_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (*head == c)
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

struct gw_conn *gw_child_find_session(struct gw_child *ch, const char *id, size_t len)
{
    /* "<node>.<fd hex>.<gen hex>" */
    size_t nlen = strlen(ch->node);
    if (len <= nlen + 1 || memcmp(id, ch->node, nlen) != 0 || id[nlen] != '.')
        return NULL;
    char buf[64];
    size_t rest = len - nlen - 1;
    if (rest >= sizeof(buf))
        return NULL;
    memcpy(buf, id + nlen + 1, rest);
    buf[rest] = '\0';
    char *dot = strchr(buf, '.');
    if (dot == NULL)
        return NULL;
    *dot = '\0';
    char *end;
    errno = 0;
    unsigned long fd = strtoul(buf, &end, 16);
    if (errno != 0 || *end != '\0' || end == buf)
        return NULL;
    unsigned long gen = strtoul(dot + 1, &end, 16);
    if (errno != 0 || *end != '\0' || end == dot + 1)
        return NULL;
    if (fd >= ch->conns_cap || ch->conns[fd] == NULL)
        return NULL;
    struct gw_conn *c = ch->conns[fd];
    return c->gen == gen && c->state == GW_CONN_OPEN ? c : NULL;
}

void gw_child_push_failed(struct gw_child *ch, const struct gw_push_origin *o)
{
    if (o->fd < 0 || (size_t)o->fd >= ch->conns_cap || ch->conns[o->fd] == NULL)
        return;
    struct gw_conn *c = ch->conns[o->fd];
    if (c->gen == o->gen && c->state == GW_CONN_OPEN)
        gw_conn_send_push_failed(c, o->id, o->idlen);
}

void gw_child_update_ready(struct gw_child *ch)
{
    int ready = gw_redis_ready(ch) && !ch->draining;
    if (ready == ch->ready_sent)
        return;
    ch->ready_sent = ready;
    char b = ready ? 'R' : 'N';
    if (ch->notify_fd >= 0 && write(ch->notify_fd, &b, 1) < 0)
        cm_debug("notify_failed", "master pipe: %s", strerror(errno));
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_users_flush(arg);
    gw_rooms_flush(arg);
}

static void on_write_pass(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    /* A connection freed since it was listed left a NULL, or a newer
     * connection on the same fd that is listed (or not) in its own right. */
    for (size_t i = 0; i < ch->nwrite_fds; i++) {
        struct gw_conn *c = ch->conns[ch->write_fds[i]];
        if (c != NULL && c->flush_queued)
            gw_conn_write_pass(c);
    }
    ch->nwrite_fds = 0;
}

int gw_child_defer_write(struct gw_child *ch, int fd)
{
    if (ch->write_ev == NULL)
        return -1;
    if (ch->nwrite_fds == ch->write_fds_cap) {
        size_t cap = ch->write_fds_cap ? ch->write_fds_cap * 2 : 256;
        int *n = realloc(ch->write_fds, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        ch->write_fds = n;
        ch->write_fds_cap = cap;
    }
    ch->write_fds[ch->nwrite_fds++] = fd;
    if (ch->nwrite_fds == 1)
        event_active(ch->write_ev, 0, 0);
    return 0;
}

void gw_child_schedule_flush(struct gw_child *ch)
{
    /* One SUBSCRIBE per loop pass carries every user that arrived in it. */
    if (!event_pending(ch->flush_ev, EV_TIMEOUT, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(ch->flush_ev, &zero);
    }
}

void gw_frames_init(struct gw_frames *f, const char *msg, size_t len, const char *where)
{
    memset(f, 0, sizeof(*f));
    f->msg = msg;
    f->len = len;
    f->where = where;
}

void gw_frames_release(struct gw_frames *f)
{
    gw_buf_unref(f->frame[0]);
    gw_buf_unref(f->frame[1]);
    f->frame[0] = f->frame[1] = NULL;
}

/* The message framed for encoding e, made on first use. */
static struct gw_buf *frame_for(struct gw_frames *f, int e)
{
    if (f->frame[e] != NULL || f->failed[e])
        return f->frame[e];
    if (e == CM_ENC_MSGPACK) {
        f->frame[e] = gw_buf_frame(GW_OP_BINARY, f->msg, f->len);
    } else {
        msgpack_sbuffer json;
        msgpack_sbuffer_init(&json);
        if (cm_msgpack_to_json(f->msg, f->len, &json) == 0)
            f->frame[e] = gw_buf_frame(GW_OP_TEXT, json.data, json.size);
        else
            cm_warn("bad_delivery", "channel of %s: message is not convertible to JSON", f->where);
        msgpack_sbuffer_destroy(&json);
    }
    f->failed[e] = f->frame[e] == NULL;
    return f->frame[e];
}

void gw_child_send_user(struct gw_child *ch, struct gw_user *u, struct gw_frames *f)
{
    struct gw_conn *next;
    for (struct gw_conn *c = u->sessions; c != NULL; c = next) {
        next = c->next;
        if (c->hello_pending)
            continue;
        struct gw_buf *b = frame_for(f, c->enc);
        if (b != NULL) {
            gw_metric_add(ch->stats, GW_M_DELIVERIES, 1);
            gw_conn_send(c, b);
        }
    }
}

void gw_child_deliver(struct gw_child *ch, struct gw_user *u, const char *data, size_t len)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    struct cm_delivery d;
    char err[128];
    if (cm_delivery_unpack(data, len, &up, &d, err, sizeof(err)) < 0) {
        cm_warn("bad_delivery", "channel of %s: %s", u->name, err);
        msgpack_unpacked_destroy(&up);
        return;
    }
    /* Membership first: a message of the room may follow at once. */
    if (d.change != CM_MEMBER_NONE)
        gw_rooms_on_change(ch, u, &d);
    if (d.session != NULL) {
        struct gw_conn *c = gw_child_find_session(ch, d.session, d.session_len);
        if (c != NULL && c->user == u && !(d.change == CM_MEMBER_JOINED && gw_rooms_hold_joined(ch, c, &d))) {
            gw_metric_add(ch->stats, GW_M_DELIVERIES, 1);
            gw_conn_send_msg(c, d.msg, d.msg_len);
        }
        msgpack_unpacked_destroy(&up);
        return;
    }
    /* Frame each encoding once; every session shares the buffer. */
    struct gw_frames f;
    gw_frames_init(&f, d.msg, d.msg_len, u->name);
    gw_child_send_user(ch, u, &f);
    gw_frames_release(&f);
    msgpack_unpacked_destroy(&up);
}

/* ---- accept ------------------------------------------------------------------ */

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    if (!ch->draining)
        event_add(ch->accept_ev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct gw_child *ch = arg;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a second instead of spinning. */
                cm_warn("accept_backoff", "accept: %s; pausing accepts for 1 s", strerror(errno));
                event_del(ch->accept_ev);
                struct timeval tv = {1, 0};
                evtimer_add(ch->accept_retry_ev, &tv);
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        gw_conn_new(ch, fd, (struct sockaddr *)&peer);
    }
}

/* ---- housekeeping -------------------------------------------------------------- */

static void drain_step(struct gw_child *ch, int64_t now)
{
    size_t target_closed = ch->drain_initial;
    if (now < ch->drain_end_ms && ch->drain_end_ms > ch->drain_start_ms)
        target_closed = (size_t)((double)ch->drain_initial * (double)(now - ch->drain_start_ms) /
                                 (double)(ch->drain_end_ms - ch->drain_start_ms));
    size_t closed = ch->drain_initial > ch->nsessions ? ch->drain_initial - ch->nsessions : 0;
    /* At the end, every session goes, including any opened during the
     * drain (a retiring child still upgrades what it had accepted). */
    int all = now >= ch->drain_end_ms;
    for (size_t fd = 0; fd < ch->conns_cap && (all || closed < target_closed); fd++) {
        struct gw_conn *c = ch->conns[fd];
        if (c != NULL && c->state == GW_CONN_OPEN) {
            gw_conn_close_ws(c, 1001, "server going away: reconnect");
            closed++;
        }
    }
    /* Done once no session, answer or handshake is left. A connection
     * accepted but not yet upgraded holds the drain too (up to its end):
     * closing it would refuse a client that did nothing wrong, and during a
     * reload that client was accepted by us instead of our successor only
     * by the race for the shared listening socket. */
    if ((ch->nsessions == 0 && ch->closing == NULL && ch->handshaking == NULL) ||
        now >= ch->drain_end_ms + DRAIN_GRACE_MS)
        event_base_loopexit(ch->base, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    int64_t now = cm_monotonic_ms();
    ch->ticks++;

    struct gw_conn *c, *next;
    for (c = ch->handshaking; c != NULL; c = next) {
        next = c->next;
        gw_conn_check_deadline(c, now);
    }
    for (c = ch->closing; c != NULL; c = next) {
        next = c->next;
        gw_conn_check_deadline(c, now);
    }
    /* Every session is visited once per heartbeat period, a slice per tick:
     * one timer for all of them instead of one each. */
    uint64_t slices = (uint64_t)ch->heartbeat_s * (1000 / TICK_MS);
    uint64_t slice = ch->ticks % slices;
    for (size_t i = (size_t)slice; i < ch->conns_cap; i += (size_t)slices) {
        c = ch->conns[i];
        if (c != NULL)
            gw_conn_heartbeat(c, now);
    }
    if (ch->ticks % (NODE_REFRESH_MS / TICK_MS) == 0)
        gw_redis_heartbeat(ch);
    if (ch->draining)
        drain_step(ch, now);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    if (ch->draining)
        return;
    ch->draining = 1;
    ch->drain_start_ms = cm_monotonic_ms();
    ch->drain_end_ms = ch->drain_start_ms + (int64_t)(ch->cfg->drain_seconds * 1000);
    ch->drain_initial = ch->nsessions;
    cm_info("draining", "child %d: closing %zu sessions over %.1f s", ch->index, ch->nsessions,
            ch->cfg->drain_seconds);
    gw_child_update_ready(ch);
    drain_step(ch, ch->drain_start_ms);
}

/* SIGUSR1: the master has started this child's successor on the same
 * listening socket (a reload). Unlike SIGTERM, where this child keeps
 * answering (503 to upgrades, /readyz failing) so load balancers see the
 * drain, a retired child stops accepting at once: every new connection goes
 * to the successor, and none is refused. Then it drains like on SIGTERM. */
static void on_retire(evutil_socket_t fd, short what, void *arg)
{
    struct gw_child *ch = arg;
    ch->retiring = 1;
    event_del(ch->accept_ev);
    event_del(ch->accept_retry_ev);
    cm_info("retiring", "child %d (node %s): replaced by a reload; no longer accepting", ch->index, ch->node);
    on_term(fd, what, arg);
}

/* ---- set-up and teardown ---------------------------------------------------------- */

static void load_www(struct gw_child *ch)
{
    char err[512];
    size_t n = gw_www_load(&ch->www, ch->cfg->www_dir, err, sizeof(err));
    if (n < GW_WWW_NFILES && ch->index == 0)
        cm_warn("www_missing", "browser client: %zu of %d files loaded (%s); the rest answer 404", n,
                GW_WWW_NFILES, err);
}

static void teardown(struct gw_child *ch)
{
    for (size_t fd = 0; fd < ch->conns_cap; fd++)
        if (ch->conns[fd] != NULL)
            gw_conn_free(ch->conns[fd]);
    gw_ipcount_free(&ch->ips);
    gw_redis_stop(ch);
    gw_rooms_free_all(ch);
    gw_users_free_all(ch);
    struct event **evs[] = {&ch->accept_ev, &ch->accept_retry_ev, &ch->tick_ev, &ch->flush_ev, &ch->term_ev,
                            &ch->int_ev, &ch->retire_ev, &ch->write_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    if (ch->base != NULL)
        event_base_free(ch->base);
    gw_buf_unref(ch->ping);
    free(ch->conns);
    free(ch->write_fds);
    free(ch->rbuf);
    gw_www_free(&ch->www);
    if (ch->notify_fd >= 0)
        close(ch->notify_fd);
}

int gw_child_run(const struct gw_config *cfg, int index, int listen_fd, int notify_fd, struct gw_metrics *metrics)
{
    struct gw_child ch;
    memset(&ch, 0, sizeof(ch));
    ch.cfg = cfg;
    ch.index = index;
    ch.listen_fd = listen_fd;
    ch.notify_fd = notify_fd;
    ch.metrics = metrics;
    ch.stats = metrics->own;
    ch.heartbeat_s = (int)cfg->heartbeat;
    if (ch.heartbeat_s < 1)
        ch.heartbeat_s = 1;
    ch.exit_status = 0;
    gw_config_handshake(cfg, &ch.hs);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    char hex[13];
    if (cm_random_hex(hex, 6) < 0) {
        cm_error("start_failed", "child %d: no randomness for the node id", index);
        teardown(&ch);
        return GW_EXIT_FATAL;
    }
    snprintf(ch.node, sizeof(ch.node), "g%s", hex);

    uint64_t seed = 0;
    if (cm_random_bytes(&seed, sizeof(seed)) < 0 || gw_ipcount_init(&ch.ips, 4096, seed) < 0)
        goto fatal;
    ch.base = event_base_new();
    ch.rbuf_cap = READ_BUF_SIZE;
    ch.rbuf = malloc(ch.rbuf_cap);
    ch.ping = gw_buf_frame(GW_OP_PING, NULL, 0);
    if (ch.base == NULL || ch.rbuf == NULL || ch.ping == NULL)
        goto fatal;
    ch.accept_ev = event_new(ch.base, listen_fd, EV_READ | EV_PERSIST, on_accept, &ch);
    ch.accept_retry_ev = evtimer_new(ch.base, on_accept_retry, &ch);
    ch.tick_ev = event_new(ch.base, -1, EV_PERSIST, on_tick, &ch);
    ch.flush_ev = evtimer_new(ch.base, on_flush, &ch);
    ch.term_ev = evsignal_new(ch.base, SIGTERM, on_term, &ch);
    ch.int_ev = evsignal_new(ch.base, SIGINT, on_term, &ch);
    ch.retire_ev = evsignal_new(ch.base, SIGUSR1, on_retire, &ch);
    ch.write_ev = event_new(ch.base, -1, 0, on_write_pass, &ch);
    if (!ch.accept_ev || !ch.accept_retry_ev || !ch.tick_ev || !ch.flush_ev || !ch.term_ev || !ch.int_ev ||
        !ch.retire_ev || !ch.write_ev)
        goto fatal;
    struct timeval tick = {0, TICK_MS * 1000};
    event_add(ch.tick_ev, &tick);
    event_add(ch.term_ev, NULL);
    event_add(ch.int_ev, NULL);
    event_add(ch.retire_ev, NULL);
    event_add(ch.accept_ev, NULL);
    load_www(&ch);
    if (gw_redis_start(&ch) < 0)
        goto fatal;
    cm_debug("child_ready", "child %d serving as node %s", index, ch.node);

    event_base_dispatch(ch.base);
    /* Freeing the signal events restores the default action; a second
     * SIGTERM during teardown must not kill us half way, so block it. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGUSR1);
    sigprocmask(SIG_BLOCK, &stop, NULL);

    cm_info("child_stopped", "child %d (node %s) stopped", index, ch.node);
    teardown(&ch);
    return ch.exit_status;
fatal:
    cm_error("start_failed", "child %d: out of memory or event set-up failed", index);
    teardown(&ch);
    return GW_EXIT_FATAL;
}
