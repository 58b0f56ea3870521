/* cluster_link.c: the child's links to Redis, a cluster or one node
 * (cluster_link.h).
 *
 * Ownership and callbacks: node command contexts are hiredis async
 * contexts; hiredis frees them after their disconnect callback (and after a
 * failed connect), where the node's pointer is cleared. We free one
 * ourselves only from the loop (node_close, stop), clearing its pointer
 * first, so a callback for a context that is no longer its node's is a
 * stale one and does nothing. Subscription links are ours: a plain
 * redisContext in non-blocking mode, used for its socket, its output
 * buffer and its reader, driven by two libevent events. A new map is
 * applied from the loop (apply_ev), never inside a hiredis callback. */
#include <config.h>

#include "cluster_link.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/cluster.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/redis.h"
#include "gateway/child.h"
#include "gateway/sentinel.h"
#include "gateway/ssub.h"

#define LINKS_MAX 255          /* link ids 0..254; GW_LINK_NONE is 255 */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000        /* a cluster: a map change is expected soon */
#define BACKOFF_MAX_ONE_MS 5000    /* one Redis: it is restarting or failing over */
#define LINK_TIMEOUT_MS 5000   /* connect to PONG */
#define PROBE_TIMEOUT_MS 3000  /* connect to the CLUSTER SLOTS answer */
#define WATCH_MS 500
#define REDIRECTS_MAX 5
#define RETRIES_MAX 8          /* TRYAGAIN / CLUSTERDOWN */
#define RETRY_BASE_MS 50
#define RETRY_MAX_MS 1000

struct gw_sublink {
    redisContext *c;         /* NULL while down */
    struct event *rev, *wev;
    int connected;           /* the non-blocking connect finished */
    int up;                  /* AUTH (if any) and PING answered */
    int broken;              /* a command went out without its FIFO entry: reset (fix_ev) */
    struct gw_ssub_fifo fifo;
};

struct gw_cnode {
    struct gw_child *ch;
    uint8_t id;
    int in_map;
    int was_up;              /* both links were up (gw_users_link_up was called) */
    struct cm_redis_addr addr;
    redisAsyncContext *cmd;  /* NULL while down */
    int cmd_up;              /* PING answered */
    int64_t opened_ms;       /* monotonic: when the links were last opened */
    struct gw_sublink sub;
    int give_up;             /* one Redis: not a usable master; reset from the loop (fix_ev) */
    char give_up_why[256];
};

/* A routed command, kept until its answer so a redirection can resend it. */
struct gw_ccmd {
    struct gw_ccmd *prev, *next; /* the waiting list, while a retry timer runs */
    struct gw_child *ch;
    gw_cluster_cb *cb;
    void *priv;
    char *buf;
    size_t len;
    unsigned slot;
    uint8_t link;            /* where it was sent last */
    uint8_t redirects, retries;
    struct event *retry_ev;
};

struct gw_cluster {
    int sharded;                       /* redis+cluster://; else one Redis, a map of one node */
    struct cm_slot_map map, next;      /* in use; read by the probe, applied from the loop */
    int have_map;
    int apply_pending;                 /* next is set, apply_ev active */
    uint8_t map_link[CM_CLUSTER_NODES_MAX]; /* map.node[i] -> link id */
    struct gw_cnode *node[LINKS_MAX];  /* by link id */

    redisAsyncContext *probe;          /* the CLUSTER SLOTS connection */
    struct cm_redis_addr probe_addr;
    int64_t probe_opened_ms;
    size_t probe_next;                 /* the next seed to ask in this round */
    int refresh_again;                 /* asked for while a round ran */

    struct gw_sentinel *sentinel;      /* redis+sentinel:// only: where the master is */
    int discovering;                   /* a sentinel round is running */
    struct cm_redis_addr hint, hint_from; /* announced (+switch-master) while a round ran, and by whom */
    int have_hint;
    struct cm_redis_addr last_up;      /* one Redis: the master the links were last up to */
    int have_last_up;

    struct cm_backoff backoff;
    struct event *refresh_ev, *apply_ev, *fix_ev, *watch_ev;
    struct gw_ccmd *waiting;
    int all_up;
    int ever_up;
    int64_t down_since_ms;
    int stopping;
};

static void request_refresh(struct gw_child *ch);
static void schedule_refresh(struct gw_child *ch, int at_once);
static void node_open(struct gw_cnode *cn);
static void update_ready(struct gw_child *ch);

static const char *addr_text(const struct cm_redis_addr *a, char *buf)
{
    cm_redis_addr_format(a, buf, CM_REDIS_ADDR_TEXT_MAX);
    return buf;
}

/* The link serving slot in the current map, or GW_LINK_NONE. */
static uint8_t slot_link(const struct gw_cluster *c, unsigned slot)
{
    if (!c->have_map || slot >= CM_SLOTS || c->map.owner[slot] == CM_SLOT_NONE || c->map.owner[slot] >= c->map.nnodes)
        return GW_LINK_NONE;
    return c->map_link[c->map.owner[slot]];
}

static struct gw_cnode *link_node(const struct gw_cluster *c, uint8_t link)
{
    return link < LINKS_MAX ? c->node[link] : NULL;
}

/* ---- channels held by a link ---------------------------------------- */

static int holds(uint8_t state)
{
    return state == GW_SUB_SUBSCRIBING || state == GW_SUB_SUBSCRIBED || state == GW_SUB_UNSUBSCRIBING;
}

/* Every channel on link id (of slot `slot` only, when slot < CM_SLOTS, and
 * then only those being subscribed) is gone. */
static size_t channels_lost(struct gw_child *ch, uint8_t id, unsigned slot, int subscribing_only)
{
    size_t n = 0;
    char chan[CM_KEY_MAX];
    struct gw_user *u, *utmp;
    HASH_ITER(hh, ch->users.table, u, utmp) {
        if (u->link != id || !holds(u->state) || (subscribing_only && u->state != GW_SUB_SUBSCRIBING))
            continue;
        if (slot < CM_SLOTS && cm_key_slot(chan, cm_key_user_channel(chan, u->name, u->name_len)) != slot)
            continue;
        gw_users_on_lost(ch, u);
        n++;
    }
    struct gw_room *r, *rtmp;
    HASH_ITER(hh, ch->rooms.table, r, rtmp) {
        if (r->link != id || !holds(r->state) || (subscribing_only && r->state != GW_SUB_SUBSCRIBING))
            continue;
        if (slot < CM_SLOTS && cm_key_slot(chan, cm_key_conv_channel(chan, r->conv, r->conv_len)) != slot)
            continue;
        gw_rooms_on_lost(ch, r);
        n++;
    }
    return n;
}

/* After a new map: channels whose slot is now served by another link. */
static size_t channels_moved(struct gw_child *ch)
{
    struct gw_cluster *c = ch->redis.cluster;
    size_t n = 0;
    char chan[CM_KEY_MAX];
    struct gw_user *u, *utmp;
    HASH_ITER(hh, ch->users.table, u, utmp) {
        if (holds(u->state) &&
            slot_link(c, cm_key_slot(chan, cm_key_user_channel(chan, u->name, u->name_len))) != u->link) {
            gw_users_on_lost(ch, u);
            n++;
        }
    }
    struct gw_room *r, *rtmp;
    HASH_ITER(hh, ch->rooms.table, r, rtmp) {
        if (holds(r->state) &&
            slot_link(c, cm_key_slot(chan, cm_key_conv_channel(chan, r->conv, r->conv_len))) != r->link) {
            gw_rooms_on_lost(ch, r);
            n++;
        }
    }
    return n;
}

/* One Redis: the node stopped being a usable master (a replica now, or
 * READONLY, LOADING, ...). Both its links go, from the loop (fix_ev), and
 * the master is looked up again: the sentinels are asked, or the URL's
 * name is resolved again (an endpoint that moved). Safe inside hiredis
 * callbacks; the first reason is the one logged. */
static void node_give_up(struct gw_cnode *cn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void node_give_up(struct gw_cnode *cn, const char *fmt, ...)
{
    struct gw_cluster *c = cn->ch->redis.cluster;
    if (cn->give_up || c == NULL || c->stopping)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cn->give_up_why, sizeof(cn->give_up_why), fmt, ap);
    va_end(ap);
    cn->give_up = 1;
    event_active(c->fix_ev, 0, 0);
}

/* An error reply saying the node is no longer a master we can use: on a
 * cluster the map is read again (it will say who took over); one Redis is
 * given up. 1 when it was such a reply. */
static int failover_reply(struct gw_child *ch, struct gw_cnode *cn, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR || !cm_redis_error_is_failover(r->str, r->len))
        return 0;
    if (cn == NULL || ch->redis.cluster->sharded) {
        request_refresh(ch);
        return 1;
    }
    char at[CM_REDIS_ADDR_TEXT_MAX];
    node_give_up(cn, "Redis at %s is no longer a usable master (%s)", addr_text(&cn->addr, at), r->str);
    return 1;
}

/* ---- subscription links --------------------------------------------- */

static void sublink_close(struct gw_cnode *cn)
{
    struct gw_sublink *s = &cn->sub;
    if (s->rev != NULL)
        event_free(s->rev);
    if (s->wev != NULL)
        event_free(s->wev);
    s->rev = s->wev = NULL;
    if (s->c != NULL)
        redisFree(s->c);
    s->c = NULL;
    s->connected = s->up = s->broken = 0;
    gw_ssub_fifo_clear(&s->fifo);
}

/* The node's links stopped being both up. */
static void node_down(struct gw_cnode *cn)
{
    cn->was_up = 0;
}

static void sub_lost(struct gw_cnode *cn, const char *why)
{
    struct gw_child *ch = cn->ch;
    struct gw_cluster *c = ch->redis.cluster;
    char at[CM_REDIS_ADDR_TEXT_MAX];
    if (cn->sub.up)
        cm_warn("redis_disconnected", "lost Redis at %s (subscription link): %s", addr_text(&cn->addr, at), why);
    else
        cm_warn("redis_connect_failed", "Redis at %s (subscription link): %s", addr_text(&cn->addr, at), why);
    sublink_close(cn);
    node_down(cn);
    gw_metric_add(ch->stats, GW_M_REDIS_RECONNECTS, 1);
    if (!c->stopping) {
        size_t n = channels_lost(ch, cn->id, CM_SLOTS, 0);
        if (n > 0)
            cm_info("redis_resubscribe", "%zu channels were on %s: subscribing them again where the map says", n, at);
        request_refresh(ch);
    }
    update_ready(ch);
}

static void sub_kick(struct gw_cnode *cn)
{
    struct gw_sublink *s = &cn->sub;
    if (s->c != NULL && s->wev != NULL && s->connected && sdslen(s->c->obuf) > 0)
        event_add(s->wev, NULL);
}

static void node_check_up(struct gw_cnode *cn)
{
    if (cn->was_up || !cn->cmd_up || !cn->sub.up || cn->give_up)
        return;
    cn->was_up = 1;
    char at[CM_REDIS_ADDR_TEXT_MAX];
    cm_debug("redis_node_up", "Redis master %s: both links up", addr_text(&cn->addr, at));
    /* Channels left unsubscribed while their master was down go now. */
    gw_users_link_up(cn->ch);
    update_ready(cn->ch);
}

/* One reply read from a subscription link. -1: reset the link. */
static int sub_handle(struct gw_cnode *cn, const redisReply *r)
{
    struct gw_child *ch = cn->ch;
    struct gw_ssub_result res;
    enum gw_ssub_event ev = gw_ssub_classify(&cn->sub.fifo, r, &res);
    const char *name;
    size_t nlen;
    struct gw_user *u = NULL;
    struct gw_room *room = NULL;
    if (res.channel != NULL) {
        if (cm_key_channel_user(res.channel, res.channel_len, &name, &nlen)) {
            u = gw_users_find(ch, name, nlen);
            if (u != NULL && u->link != cn->id)
                u = NULL; /* a late word from a link the channel has left */
        } else if (cm_key_channel_room(res.channel, res.channel_len, &name, &nlen)) {
            room = gw_rooms_find(ch, name, nlen);
            if (room != NULL && room->link != cn->id)
                room = NULL;
        }
    }
    char at[CM_REDIS_ADDR_TEXT_MAX];
    switch (ev) {
    case GW_SSUB_EV_MESSAGE:
        if (u != NULL && u->state == GW_SUB_SUBSCRIBED)
            gw_child_deliver(ch, u, res.payload, res.payload_len);
        else if (room != NULL)
            gw_rooms_deliver(ch, room, res.payload, res.payload_len);
        return 0;
    case GW_SSUB_EV_SUBSCRIBED:
        if (u != NULL)
            gw_users_on_subscribed(ch, u);
        else if (room != NULL)
            gw_rooms_on_subscribed(ch, room);
        return 0;
    case GW_SSUB_EV_UNSUBSCRIBED:
        if (u != NULL)
            gw_users_on_unsubscribed(ch, u);
        else if (room != NULL)
            gw_rooms_on_unsubscribed(ch, room);
        return 0;
    case GW_SSUB_EV_DROPPED:
        cm_debug("redis_channel_dropped", "Redis at %s dropped %.*s (its slot moved)", addr_text(&cn->addr, at),
                 (int)res.channel_len, res.channel);
        if (u != NULL)
            gw_users_on_lost(ch, u);
        else if (room != NULL)
            gw_rooms_on_lost(ch, room);
        request_refresh(ch);
        return 0;
    case GW_SSUB_EV_SUB_FAILED: {
        /* One Redis groups all slots in one SUBSCRIBE: its refusal is
         * every channel being subscribed on the link. */
        size_t n = channels_lost(ch, cn->id, ch->redis.cluster->sharded ? res.slot : CM_SLOTS, 1);
        cm_info("redis_subscribe_refused", "Redis at %s refused to subscribe %zu channels in slot %u (%.*s)",
                addr_text(&cn->addr, at), n, res.slot, (int)res.error_len, res.error);
        /* With backoff even while whole: a refusal that is not a slot move
         * (an ACL without the permission, say) must not spin. */
        schedule_refresh(ch, 0);
        return 0;
    }
    case GW_SSUB_EV_AUTH_OK:
        return 0;
    case GW_SSUB_EV_AUTH_FAILED:
        cm_error("redis_refused", "Redis at %s refused the connection: %.*s", addr_text(&cn->addr, at),
                 (int)res.error_len, res.error);
        return -1;
    case GW_SSUB_EV_PONG:
        cn->sub.up = 1;
        node_check_up(cn);
        return 0;
    case GW_SSUB_EV_MALFORMED:
    default:
        if (failover_reply(ch, cn, r))
            return -1; /* LOADING, say, to the PING: given up or the map read again */
        cm_warn("redis_bad_reply", "unexpected reply (type %d) on the subscription link to %s", r ? r->type : -1,
                addr_text(&cn->addr, at));
        return -1;
    }
}

static void on_sub_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_cnode *cn = arg;
    redisContext *c = cn->sub.c;
    if (redisBufferRead(c) != REDIS_OK) {
        sub_lost(cn, c->errstr[0] ? c->errstr : "closed");
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
            sub_lost(cn, c->errstr[0] ? c->errstr : "protocol error");
            return;
        }
        if (reply == NULL)
            break;
        int rc = sub_handle(cn, reply);
        freeReplyObject(reply);
        if (rc < 0) {
            sub_lost(cn, "reset after a bad reply");
            return;
        }
        if (cn->sub.c != c)
            return; /* handled loss (cannot happen today; keeps the loop honest) */
    }
    sub_kick(cn);
}

static void on_sub_write(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct gw_cnode *cn = arg;
    struct gw_sublink *s = &cn->sub;
    if (!s->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            sub_lost(cn, strerror(err));
            return;
        }
        s->connected = 1;
    }
    int done = 0;
    if (redisBufferWrite(s->c, &done) != REDIS_OK) {
        sub_lost(cn, s->c->errstr[0] ? s->c->errstr : "write failed");
        return;
    }
    if (!done)
        event_add(s->wev, NULL);
}

static int sub_open(struct gw_cnode *cn)
{
    struct gw_child *ch = cn->ch;
    struct gw_sublink *s = &cn->sub;
    const struct cm_redis_url *u = &ch->cfg->redis;
    char at[CM_REDIS_ADDR_TEXT_MAX];
    s->c = redisConnectNonBlock(cn->addr.host, cn->addr.port);
    if (s->c == NULL || s->c->err) {
        cm_warn("redis_connect_failed", "Redis at %s (subscription link): %s", addr_text(&cn->addr, at),
                s->c ? s->c->errstr : "out of memory");
        sublink_close(cn);
        return -1;
    }
    (void)redisEnableKeepAlive(s->c);
    s->rev = event_new(ch->base, s->c->fd, EV_READ | EV_PERSIST, on_sub_read, cn);
    s->wev = event_new(ch->base, s->c->fd, EV_WRITE, on_sub_write, cn);
    int rc = s->rev != NULL && s->wev != NULL ? 0 : -1;
    if (rc == 0 && (u->password[0] != '\0' || u->user[0] != '\0')) {
        rc = u->user[0] != '\0' ? redisAppendCommand(s->c, "AUTH %s %s", u->user, u->password)
                                : redisAppendCommand(s->c, "AUTH %s", u->password);
        if (rc == REDIS_OK)
            rc = gw_ssub_fifo_push(&s->fifo, GW_SSUB_AUTH, 0, 0, NULL, 0);
    }
    if (rc == 0)
        rc = redisAppendCommand(s->c, "PING") == REDIS_OK ? gw_ssub_fifo_push(&s->fifo, GW_SSUB_PING, 0, 0, NULL, 0)
                                                          : -1;
    if (rc != 0) {
        sublink_close(cn);
        return -1;
    }
    event_add(s->rev, NULL);
    event_add(s->wev, NULL); /* the connect's end */
    return 0;
}

/* ---- command links -------------------------------------------------- */

static void cmd_gone(struct gw_cnode *cn)
{
    cn->cmd = NULL;
    cn->cmd_up = 0;
    node_down(cn);
}

static void on_cmd_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_cnode *cn = ac->data;
    redisReply *rep = reply;
    if (rep == NULL || ac != cn->cmd || cn->give_up)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        /* One Redis given up is reset from the loop; else the link goes. */
        if (failover_reply(cn->ch, cn, rep) && cn->give_up)
            return;
        char at[CM_REDIS_ADDR_TEXT_MAX];
        cm_error("redis_refused", "Redis at %s refused the connection: %s", addr_text(&cn->addr, at), rep->str);
        redisAsyncDisconnect(ac);
        return;
    }
    cn->cmd_up = 1;
    node_check_up(cn);
}

/* One Redis: ROLE, queued before the PING, so a replica is given up before
 * the link counts as up. A refused ROLE (an ACL) proves nothing either
 * way: the node is taken at its word. */
static void on_cmd_role(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_cnode *cn = ac->data;
    redisReply *rep = reply;
    if (rep == NULL || ac != cn->cmd)
        return;
    char role[32], at[CM_REDIS_ADDR_TEXT_MAX];
    int rc = cm_redis_parse_role(rep, role, sizeof(role));
    if (rc == 0)
        node_give_up(cn, "Redis at %s is a %s, not the master", addr_text(&cn->addr, at), role);
    else if (rc < 0 && rep->type == REDIS_REPLY_ERROR && !failover_reply(cn->ch, cn, rep))
        cm_debug("redis_role", "ROLE refused by %s (%s): the node is taken for a master", addr_text(&cn->addr, at),
                 rep->str);
}

static void on_cmd_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_cnode *cn = ac->data;
    if (ac != cn->cmd || status == REDIS_OK)
        return;
    char at[CM_REDIS_ADDR_TEXT_MAX];
    cm_warn("redis_connect_failed", "Redis at %s (command link): %s", addr_text(&cn->addr, at), ac->errstr);
    cmd_gone(cn); /* hiredis frees the context after this callback */
    gw_metric_add(cn->ch->stats, GW_M_REDIS_RECONNECTS, 1);
    request_refresh(cn->ch);
    update_ready(cn->ch);
}

static void on_cmd_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_cnode *cn = ac->data;
    if (ac != cn->cmd)
        return; /* let go by us */
    char at[CM_REDIS_ADDR_TEXT_MAX];
    cm_warn("redis_disconnected", "lost Redis at %s (command link): %s", addr_text(&cn->addr, at),
            ac->errstr[0] ? ac->errstr : "closed");
    cmd_gone(cn);
    gw_metric_add(cn->ch->stats, GW_M_REDIS_RECONNECTS, 1);
    request_refresh(cn->ch);
    update_ready(cn->ch);
}

static int cmd_open(struct gw_cnode *cn)
{
    char err[512];
    redisAsyncContext *ac = cm_redis_connect_async_addr(&cn->ch->cfg->redis, &cn->addr, err, sizeof(err));
    if (ac == NULL) {
        cm_warn("redis_connect_failed", "%s", err);
        return -1;
    }
    ac->data = cn;
    if (redisLibeventAttach(ac, cn->ch->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return -1;
    }
    redisAsyncSetConnectCallback(ac, on_cmd_connect);
    redisAsyncSetDisconnectCallback(ac, on_cmd_disconnect);
    cn->cmd = ac;
    if (!cn->ch->redis.cluster->sharded)
        redisAsyncCommand(ac, on_cmd_role, NULL, "ROLE");
    redisAsyncCommand(ac, on_cmd_ping, NULL, "PING");
    return 0;
}

/* ---- nodes ---------------------------------------------------------- */

static void node_open(struct gw_cnode *cn)
{
    int opened = 0, failed = 0;
    if (cn->cmd == NULL) {
        opened = 1;
        failed |= cmd_open(cn) < 0;
    }
    if (cn->sub.c == NULL) {
        opened = 1;
        failed |= sub_open(cn) < 0;
    }
    if (opened)
        cn->opened_ms = cm_monotonic_ms();
    if (failed)
        request_refresh(cn->ch);
}

/* Lets the node go (it serves no slot now, or we stop). From the loop only. */
static void node_close(struct gw_child *ch, struct gw_cnode *cn)
{
    struct gw_cluster *c = ch->redis.cluster;
    redisAsyncContext *ac = cn->cmd;
    cmd_gone(cn);
    if (ac != NULL)
        redisAsyncFree(ac); /* commands in flight get their NULL answer */
    int had_sub = cn->sub.c != NULL;
    sublink_close(cn);
    c->node[cn->id] = NULL;
    if ((ac != NULL || had_sub) && !c->stopping)
        gw_metric_add(ch->stats, GW_M_REDIS_RECONNECTS, 1);
    if (had_sub && !c->stopping)
        channels_lost(ch, cn->id, CM_SLOTS, 0);
    free(cn);
}

static struct gw_cnode *node_find(const struct gw_cluster *c, const struct cm_redis_addr *a)
{
    for (int i = 0; i < LINKS_MAX; i++)
        if (c->node[i] != NULL && cm_redis_addr_eq(&c->node[i]->addr, a))
            return c->node[i];
    return NULL;
}

static struct gw_cnode *node_new(struct gw_child *ch, const struct cm_redis_addr *a)
{
    struct gw_cluster *c = ch->redis.cluster;
    for (int i = 0; i < LINKS_MAX; i++) {
        if (c->node[i] != NULL)
            continue;
        struct gw_cnode *cn = calloc(1, sizeof(*cn));
        if (cn == NULL)
            return NULL;
        cn->ch = ch;
        cn->id = (uint8_t)i;
        cn->addr = *a;
        c->node[i] = cn;
        return cn;
    }
    return NULL;
}

/* ---- readiness ------------------------------------------------------ */

static int compute_ready(const struct gw_cluster *c)
{
    if (!c->have_map)
        return 0;
    for (size_t s = 0; s < CM_SLOTS; s++)
        if (c->map.owner[s] == CM_SLOT_NONE)
            return 0;
    for (size_t i = 0; i < c->map.nnodes; i++) {
        const struct gw_cnode *cn = link_node(c, c->map_link[i]);
        if (cn == NULL || !cn->cmd_up || !cn->sub.up)
            return 0;
    }
    return 1;
}

/* One Redis is up: say where, and whether the master changed. */
static void connected_one(struct gw_child *ch, const char *down)
{
    struct gw_cluster *c = ch->redis.cluster;
    const struct cm_redis_addr *m = &c->map.node[0].addr;
    char at[CM_REDIS_ADDR_TEXT_MAX], was[CM_REDIS_ADDR_TEXT_MAX];
    int sentinel = c->sentinel != NULL;
    if (c->have_last_up && !cm_redis_addr_eq(&c->last_up, m))
        cm_warn("redis_master_changed", "following the new Redis master %s%s%s (was %s)", addr_text(m, at),
                sentinel ? " of " : "", sentinel ? ch->cfg->redis.master : "", addr_text(&c->last_up, was));
    cm_info("redis_connected", "connected to Redis at %s%s", addr_text(m, at), down);
    c->last_up = *m;
    c->have_last_up = 1;
}

static void update_ready(struct gw_child *ch)
{
    struct gw_cluster *c = ch->redis.cluster;
    if (c == NULL || c->stopping)
        return;
    int up = compute_ready(c);
    if (up != c->all_up) {
        c->all_up = up;
        if (up) {
            char down[64] = "";
            if (c->ever_up)
                snprintf(down, sizeof(down), " after %lld ms without it",
                         (long long)(cm_monotonic_ms() - c->down_since_ms));
            if (c->sharded)
                cm_info("redis_connected", "connected to Redis Cluster: %zu masters serve every slot%s",
                        c->map.nnodes, down);
            else
                connected_one(ch, down);
            c->ever_up = 1;
            cm_backoff_reset(&c->backoff);
            gw_redis_heartbeat(ch);
        } else {
            c->down_since_ms = cm_monotonic_ms();
        }
    }
    gw_child_update_ready(ch);
}

/* ---- the slot map --------------------------------------------------- */

static void probe_try(struct gw_child *ch);

static void on_probe_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_child *ch = ac->data;
    struct gw_cluster *c = ch->redis.cluster;
    if (c == NULL || ac != c->probe)
        return;
    c->probe = NULL;
    char at[CM_REDIS_ADDR_TEXT_MAX], err[256];
    if (reply == NULL) {
        cm_debug("redis_cluster_slots", "no CLUSTER SLOTS answer from %s: %s", addr_text(&c->probe_addr, at),
                 ac->errstr[0] ? ac->errstr : "connection lost");
        probe_try(ch);
        return;
    }
    redisAsyncDisconnect(ac); /* after this callback */
    if (cm_slot_map_parse(&c->next, reply, &c->probe_addr, err, sizeof(err)) < 0) {
        cm_warn("redis_cluster_slots", "%s: %s", addr_text(&c->probe_addr, at), err);
        probe_try(ch);
        return;
    }
    c->apply_pending = 1;
    event_active(c->apply_ev, 0, 0);
}

static void on_probe_connect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status; /* a failure reaches on_probe_reply as a NULL reply */
}

/* The seed of index i: the masters of the map in use, then the URL's. */
static const struct cm_redis_addr *seed(const struct gw_child *ch, size_t i)
{
    const struct gw_cluster *c = ch->redis.cluster;
    size_t nmap = c->have_map ? c->map.nnodes : 0;
    if (i < nmap)
        return &c->map.node[i].addr;
    i -= nmap;
    return i < ch->cfg->redis.naddrs ? &ch->cfg->redis.addrs[i] : NULL;
}

/* Asks the next seed of this round; when none is left, the round ends and
 * another starts after a backoff. */
static void probe_try(struct gw_child *ch)
{
    struct gw_cluster *c = ch->redis.cluster;
    const struct cm_redis_addr *a;
    while ((a = seed(ch, c->probe_next)) != NULL) {
        c->probe_next++;
        char err[512];
        redisAsyncContext *ac = cm_redis_connect_async_addr(&ch->cfg->redis, a, err, sizeof(err));
        if (ac == NULL) {
            cm_debug("redis_cluster_slots", "%s", err);
            continue;
        }
        ac->data = ch;
        if (redisLibeventAttach(ac, ch->base) != REDIS_OK ||
            redisAsyncCommand(ac, on_probe_reply, NULL, "CLUSTER SLOTS") != REDIS_OK) {
            redisAsyncFree(ac);
            continue;
        }
        redisAsyncSetConnectCallback(ac, on_probe_connect);
        c->probe = ac;
        c->probe_addr = *a;
        c->probe_opened_ms = cm_monotonic_ms();
        return;
    }
    cm_warn("redis_cluster_slots", "no Redis Cluster node answered CLUSTER SLOTS; retrying");
    c->probe_next = 0;
    c->refresh_again = 0;
    schedule_refresh(ch, 0);
}

/* A map of the one node: applied from the loop like a read one. */
static void use_single(struct gw_child *ch, const struct cm_redis_addr *node, const struct cm_redis_addr *from)
{
    struct gw_cluster *c = ch->redis.cluster;
    cm_slot_map_single(&c->next, node);
    c->probe_addr = *from;
    c->apply_pending = 1;
    event_active(c->apply_ev, 0, 0);
}

/* A sentinel round ended (gateway/sentinel.h). */
static void on_sentinel_found(void *arg, const struct cm_redis_addr *master, const struct cm_redis_addr *from,
                              const char *why)
{
    struct gw_child *ch = arg;
    struct gw_cluster *c = ch->redis.cluster;
    c->discovering = 0;
    if (c->have_hint) {
        /* A sentinel announced a switch while this round ran: its answer
         * may predate it. The announcement wins (ROLE checks it anyway). */
        c->have_hint = 0;
        if (master == NULL || !cm_redis_addr_eq(master, &c->hint)) {
            master = &c->hint;
            from = &c->hint_from;
        }
    }
    if (master == NULL) {
        cm_error("redis_sentinel_failed", "%s; retrying", why);
        c->refresh_again = 0;
        schedule_refresh(ch, 0);
        return;
    }
    char at[CM_REDIS_ADDR_TEXT_MAX], by[CM_REDIS_ADDR_TEXT_MAX];
    addr_text(master, at);
    addr_text(from, by);
    cm_log(!c->have_last_up || !cm_redis_addr_eq(master, &c->last_up) ? CM_LOG_INFO : CM_LOG_DEBUG, "redis_master",
           "sentinel %s: master %s is at %s", by, ch->cfg->redis.master, at);
    use_single(ch, master, from);
}

/* A sentinel says where the master is now (gateway/sentinel.h). */
static void on_sentinel_moved(void *arg, const struct cm_redis_addr *master, const struct cm_redis_addr *from)
{
    struct gw_child *ch = arg;
    struct gw_cluster *c = ch->redis.cluster;
    if (c->discovering) {
        c->hint = *master; /* see on_sentinel_found */
        c->hint_from = *from;
        c->have_hint = 1;
        return;
    }
    const struct cm_slot_map *now = c->apply_pending ? &c->next : c->have_map ? &c->map : NULL;
    if (now != NULL && now->nnodes == 1 && cm_redis_addr_eq(master, &now->node[0].addr))
        return; /* what we use, or are about to */
    char at[CM_REDIS_ADDR_TEXT_MAX], by[CM_REDIS_ADDR_TEXT_MAX];
    cm_warn("redis_sentinel_switch", "sentinel %s: master %s is now at %s", addr_text(from, by),
            ch->cfg->redis.master, addr_text(master, at));
    use_single(ch, master, from);
}

/* A round of looking the map up is running. */
static int round_running(const struct gw_cluster *c)
{
    return c->probe != NULL || c->discovering;
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    struct gw_cluster *c = ch->redis.cluster;
    if (round_running(c)) {
        c->refresh_again = 1;
        return;
    }
    const struct cm_redis_url *u = &ch->cfg->redis;
    if (c->sharded) {
        c->probe_next = 0;
        probe_try(ch);
    } else if (c->sentinel != NULL) {
        c->discovering = 1;
        gw_sentinel_discover(c->sentinel);
    } else {
        use_single(ch, &u->addrs[0], &u->addrs[0]); /* the name is resolved again at connect */
    }
}

/* The map is read again (one Redis: looked up again, then applied, which
 * opens what is closed): at once when at_once, else after the backoff (so a
 * node that stays down is not hammered). */
static void schedule_refresh(struct gw_child *ch, int at_once)
{
    struct gw_cluster *c = ch->redis.cluster;
    if (c == NULL || c->stopping || c->refresh_ev == NULL)
        return;
    if (round_running(c)) {
        c->refresh_again = 1;
        return;
    }
    if (evtimer_pending(c->refresh_ev, NULL))
        return;
    int64_t delay = at_once ? 0 : cm_backoff_next(&c->backoff);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    evtimer_add(c->refresh_ev, &tv);
}

/* At once while every node was up (something just changed), else after
 * the backoff. */
static void request_refresh(struct gw_child *ch)
{
    struct gw_cluster *c = ch->redis.cluster;
    schedule_refresh(ch, c != NULL && c->all_up);
}

static void on_apply(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    struct gw_cluster *c = ch->redis.cluster;
    c->apply_pending = 0;
    int changed = !c->have_map || memcmp(c->map.owner, c->next.owner, sizeof(c->map.owner)) != 0 ||
                  c->map.nnodes != c->next.nnodes;
    for (size_t i = 0; !changed && i < c->map.nnodes; i++)
        changed = !cm_redis_addr_eq(&c->map.node[i].addr, &c->next.node[i].addr);
    memcpy(&c->map, &c->next, sizeof(c->map));
    c->have_map = 1;
    for (int i = 0; i < LINKS_MAX; i++)
        if (c->node[i] != NULL)
            c->node[i]->in_map = 0;
    for (size_t i = 0; i < c->map.nnodes; i++) {
        struct gw_cnode *cn = node_find(c, &c->map.node[i].addr);
        if (cn == NULL)
            cn = node_new(ch, &c->map.node[i].addr);
        if (cn == NULL) {
            cm_error("redis_cluster", "cannot track more than %d masters", LINKS_MAX);
            c->map_link[i] = GW_LINK_NONE;
            continue;
        }
        c->map_link[i] = cn->id;
        cn->in_map = 1;
    }
    for (int i = 0; i < LINKS_MAX; i++) {
        struct gw_cnode *cn = c->node[i];
        if (cn != NULL && !cn->in_map) {
            char at[CM_REDIS_ADDR_TEXT_MAX];
            cm_info("redis_node_gone", "Redis at %s %s now: its links are closed", addr_text(&cn->addr, at),
                    c->sharded ? "serves no slot" : "is not the master");
            node_close(ch, cn);
        }
    }
    size_t uncovered = cm_slot_map_uncovered(&c->map);
    char from[CM_REDIS_ADDR_TEXT_MAX];
    if (c->sharded && (changed || uncovered > 0))
        cm_info("redis_cluster_map", "slot map from %s: %zu masters, %zu slots not served",
                addr_text(&c->probe_addr, from), c->map.nnodes, uncovered);
    size_t moved = channels_moved(ch);
    if (moved > 0)
        cm_info("redis_resubscribe", "%zu channels changed master: subscribing them again", moved);
    for (int i = 0; i < LINKS_MAX; i++)
        if (c->node[i] != NULL)
            node_open(c->node[i]);
    gw_users_link_up(ch); /* queues what is not subscribed; the flush sends what it can */
    update_ready(ch);
    if (c->refresh_again || uncovered > 0) {
        c->refresh_again = 0;
        request_refresh(ch);
    }
}

/* Links that do not come up in time, a probe that does not answer, and a
 * cluster left not whole with no refresh scheduled. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    struct gw_cluster *c = ch->redis.cluster;
    int64_t now = cm_monotonic_ms();
    char at[CM_REDIS_ADDR_TEXT_MAX];
    if (c->probe != NULL && now - c->probe_opened_ms > PROBE_TIMEOUT_MS) {
        redisAsyncContext *ac = c->probe;
        cm_warn("redis_cluster_slots", "%s did not answer CLUSTER SLOTS within %d ms", addr_text(&c->probe_addr, at),
                PROBE_TIMEOUT_MS);
        c->probe = NULL;
        redisAsyncFree(ac);
        probe_try(ch);
    }
    for (int i = 0; i < LINKS_MAX; i++) {
        struct gw_cnode *cn = c->node[i];
        if (cn == NULL || now - cn->opened_ms < LINK_TIMEOUT_MS)
            continue;
        if (cn->cmd != NULL && !cn->cmd_up) {
            redisAsyncContext *ac = cn->cmd;
            cm_warn("redis_timeout", "Redis at %s (command link) did not answer within %d ms",
                    addr_text(&cn->addr, at), LINK_TIMEOUT_MS);
            cmd_gone(cn);
            redisAsyncFree(ac);
            request_refresh(ch);
        }
        if (cn->sub.c != NULL && !cn->sub.up)
            sub_lost(cn, "no answer in time");
    }
    if (!c->all_up)
        request_refresh(ch);
    update_ready(ch);
}

/* ---- commands ------------------------------------------------------- */

static void ccmd_finish(struct gw_ccmd *q, redisReply *reply)
{
    q->cb(q->ch, reply, q->priv);
    if (q->retry_ev != NULL)
        event_free(q->retry_ev);
    free(q->buf);
    free(q);
}

static void on_ccmd_reply(redisAsyncContext *ac, void *reply, void *priv);

/* Sends q on cn's command link (ASKING first for an ASK). -1 when it is down. */
static int ccmd_send(struct gw_cnode *cn, struct gw_ccmd *q, int asking)
{
    if (cn == NULL || cn->cmd == NULL)
        return -1;
    if (asking && redisAsyncCommand(cn->cmd, NULL, NULL, "ASKING") != REDIS_OK)
        return -1;
    q->link = cn->id;
    return redisAsyncFormattedCommand(cn->cmd, on_ccmd_reply, q, q->buf, q->len) == REDIS_OK ? 0 : -1;
}

static void waiting_del(struct gw_cluster *c, struct gw_ccmd *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else if (c->waiting == q)
        c->waiting = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void on_ccmd_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_ccmd *q = arg;
    struct gw_cluster *c = q->ch->redis.cluster;
    waiting_del(c, q);
    struct gw_cnode *cn = link_node(c, slot_link(c, q->slot));
    if (cn == NULL || !cn->cmd_up || ccmd_send(cn, q, 0) < 0)
        ccmd_finish(q, NULL);
}

static int error_is(const redisReply *r, const char *code)
{
    size_t n = strlen(code);
    return r->len >= n && memcmp(r->str, code, n) == 0 && (r->len == n || r->str[n] == ' ');
}

static void on_ccmd_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct gw_ccmd *q = priv;
    struct gw_child *ch = q->ch;
    struct gw_cluster *c = ch->redis.cluster;
    redisReply *r = reply;
    if (r == NULL || r->type != REDIS_REPLY_ERROR || c == NULL || c->stopping) {
        ccmd_finish(q, r);
        return;
    }
    unsigned slot;
    struct cm_redis_addr to;
    enum cm_redirect rd = cm_redirect_parse(r->str, r->len, &slot, &to);
    if (rd != CM_REDIRECT_NONE) {
        if (rd == CM_REDIRECT_MOVED)
            request_refresh(ch);
        if (q->redirects++ < REDIRECTS_MAX && ccmd_send(node_find(c, &to), q, rd == CM_REDIRECT_ASK) == 0)
            return;
        ccmd_finish(q, r);
        return;
    }
    if ((error_is(r, "TRYAGAIN") || error_is(r, "CLUSTERDOWN")) && q->retries < RETRIES_MAX) {
        if (q->retry_ev == NULL)
            q->retry_ev = evtimer_new(ch->base, on_ccmd_retry, q);
        if (q->retry_ev != NULL) {
            int64_t delay = cm_backoff_base(RETRY_BASE_MS, RETRY_MAX_MS, q->retries++);
            struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
            evtimer_add(q->retry_ev, &tv);
            q->next = c->waiting;
            if (c->waiting != NULL)
                c->waiting->prev = q;
            c->waiting = q;
            if (error_is(r, "CLUSTERDOWN"))
                request_refresh(ch);
            return;
        }
    }
    failover_reply(ch, link_node(c, q->link), r); /* a master turned replica, or is loading */
    ccmd_finish(q, r);
}

int gw_cluster_command(struct gw_child *ch, gw_cluster_cb *cb, void *priv, const char *key, size_t keylen,
                       const char *fmt, ...)
{
    struct gw_cluster *c = ch->redis.cluster;
    unsigned slot = cm_key_slot(key, keylen);
    struct gw_cnode *cn = link_node(c, slot_link(c, slot));
    if (cn == NULL || !cn->cmd_up)
        return -1;
    struct gw_ccmd *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&q->buf, fmt, ap);
    va_end(ap);
    if (len < 0) {
        free(q);
        return -1;
    }
    q->len = (size_t)len;
    q->ch = ch;
    q->cb = cb;
    q->priv = priv;
    q->slot = slot;
    if (ccmd_send(cn, q, 0) < 0) {
        free(q->buf);
        free(q);
        return -1;
    }
    return 0;
}

/* ---- subscriptions -------------------------------------------------- */

void gw_cluster_subscribe(struct gw_child *ch, const char *const *chans, const size_t *lens, size_t n,
                          uint8_t *links)
{
    struct gw_cluster *c = ch->redis.cluster;
    uint32_t *keys = malloc(n * sizeof(*keys));
    size_t *order = malloc(n * sizeof(*order));
    size_t *starts = malloc((n + 1) * sizeof(*starts));
    const char **argv = malloc((n + 1) * sizeof(*argv));
    size_t *argvlen = malloc((n + 1) * sizeof(*argvlen));
    for (size_t i = 0; i < n; i++)
        links[i] = GW_LINK_NONE;
    if (keys == NULL || order == NULL || starts == NULL || argv == NULL || argvlen == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        unsigned slot = cm_key_slot(chans[i], lens[i]);
        uint8_t l = slot_link(c, slot);
        struct gw_cnode *cn = link_node(c, l);
        /* One Redis takes any channels in one SUBSCRIBE: one group. */
        /* Both links: the user's node-set SADD goes on the command link. */
        keys[i] = cn != NULL && cn->was_up ? gw_ssub_key(l, c->sharded ? slot : 0) : UINT32_MAX;
    }
    size_t groups = gw_ssub_group(keys, n, order, starts);
    argv[0] = c->sharded ? "SSUBSCRIBE" : "SUBSCRIBE";
    argvlen[0] = strlen(argv[0]);
    for (size_t g = 0; g < groups; g++) {
        uint32_t key = keys[order[starts[g]]];
        if (key == UINT32_MAX)
            continue; /* its master is down: left NONE */
        uint8_t l = (uint8_t)(key >> 14);
        unsigned slot = key & 0x3fffu;
        struct gw_cnode *cn = c->node[l];
        size_t m = starts[g + 1] - starts[g];
        for (size_t k = 0; k < m; k++) {
            argv[k + 1] = chans[order[starts[g] + k]];
            argvlen[k + 1] = lens[order[starts[g] + k]];
        }
        if (redisAppendCommandArgv(cn->sub.c, (int)(m + 1), argv, argvlen) != REDIS_OK)
            continue;
        if (gw_ssub_fifo_push(&cn->sub.fifo, GW_SSUB_SUB, slot, (uint32_t)m, NULL, 0) < 0) {
            /* The command went into the buffer without its entry: the
             * link's replies no longer match. Reset it from the loop. */
            cn->sub.broken = 1;
            event_active(c->fix_ev, 0, 0);
            continue;
        }
        for (size_t k = 0; k < m; k++)
            links[order[starts[g] + k]] = l;
        sub_kick(cn);
    }
out:
    free(keys);
    free(order);
    free(starts);
    free(argv);
    free(argvlen);
}

int gw_cluster_unsubscribe(struct gw_child *ch, const char *chan, size_t len, uint8_t link)
{
    struct gw_cluster *c = ch->redis.cluster;
    struct gw_cnode *cn = link_node(c, link);
    if (cn == NULL || !cn->sub.up)
        return -1;
    if (gw_ssub_fifo_push(&cn->sub.fifo, GW_SSUB_UNSUB, 0, 0, chan, len) < 0)
        return -1;
    if (redisAppendCommand(cn->sub.c, c->sharded ? "SUNSUBSCRIBE %b" : "UNSUBSCRIBE %b", chan, len) != REDIS_OK) {
        cn->sub.broken = 1;
        event_active(c->fix_ev, 0, 0);
        return -1;
    }
    sub_kick(cn);
    return 0;
}

/* One Redis given up (node_give_up): both links go; the channels they
 * held are subscribed again, with a resync, once a master is up. */
static void node_reset(struct gw_child *ch, struct gw_cnode *cn)
{
    cm_warn("redis_reconnect", "%s; reconnecting", cn->give_up_why);
    redisAsyncContext *ac = cn->cmd;
    cmd_gone(cn);
    if (ac != NULL)
        redisAsyncFree(ac); /* commands in flight get their NULL answer */
    if (cn->sub.c != NULL) {
        sublink_close(cn);
        channels_lost(ch, cn->id, CM_SLOTS, 0);
    }
    cn->give_up = 0;
    gw_metric_add(ch->stats, GW_M_REDIS_RECONNECTS, 1);
    update_ready(ch);
    request_refresh(ch);
}

/* Subscription links whose FIFO no longer matches (out of memory), and
 * nodes given up. */
static void on_fix(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    struct gw_cluster *c = ch->redis.cluster;
    for (int i = 0; i < LINKS_MAX; i++) {
        struct gw_cnode *cn = c->node[i];
        if (cn != NULL && cn->give_up)
            node_reset(ch, cn);
        else if (cn != NULL && cn->sub.c != NULL && cn->sub.broken)
            sub_lost(cn, "out of memory");
    }
}

/* ---- start and stop ------------------------------------------------- */

int gw_cluster_start(struct gw_child *ch)
{
    struct gw_cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    ch->redis.cluster = c;
    c->sharded = ch->cfg->redis.kind == CM_REDIS_CLUSTER;
    cm_backoff_init(&c->backoff, BACKOFF_MIN_MS, c->sharded ? BACKOFF_MAX_MS : BACKOFF_MAX_ONE_MS);
    c->refresh_ev = evtimer_new(ch->base, on_refresh, ch);
    c->apply_ev = event_new(ch->base, -1, 0, on_apply, ch);
    c->fix_ev = event_new(ch->base, -1, 0, on_fix, ch);
    c->watch_ev = event_new(ch->base, -1, EV_PERSIST, on_watch, ch);
    if (c->refresh_ev == NULL || c->apply_ev == NULL || c->fix_ev == NULL || c->watch_ev == NULL)
        return -1; /* gw_redis_stop frees what was made */
    if (ch->cfg->redis.kind == CM_REDIS_SENTINEL) {
        static const struct gw_sentinel_cb cb = {on_sentinel_found, on_sentinel_moved};
        c->sentinel = gw_sentinel_new(ch->base, &ch->cfg->redis, &cb, ch);
        if (c->sentinel == NULL)
            return -1;
    }
    struct timeval tv = {WATCH_MS / 1000, (WATCH_MS % 1000) * 1000};
    evtimer_add(c->watch_ev, &tv);
    c->down_since_ms = cm_monotonic_ms();
    on_refresh(-1, 0, ch);
    return 0;
}

void gw_cluster_stop(struct gw_child *ch)
{
    struct gw_cluster *c = ch->redis.cluster;
    if (c == NULL)
        return;
    c->stopping = 1;
    gw_sentinel_free(c->sentinel);
    c->sentinel = NULL;
    struct event **evs[] = {&c->refresh_ev, &c->apply_ev, &c->fix_ev, &c->watch_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    }
    if (c->probe != NULL) {
        redisAsyncContext *ac = c->probe;
        c->probe = NULL;
        redisAsyncFree(ac);
    }
    for (int i = 0; i < LINKS_MAX; i++)
        if (c->node[i] != NULL)
            node_close(ch, c->node[i]);
    while (c->waiting != NULL) {
        struct gw_ccmd *q = c->waiting;
        waiting_del(c, q);
        ccmd_finish(q, NULL);
    }
    free(c);
    ch->redis.cluster = NULL;
}

int gw_cluster_ready(const struct gw_child *ch)
{
    return ch->redis.cluster != NULL && ch->redis.cluster->all_up;
}
