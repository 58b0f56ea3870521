/* rooms.c: room membership of a child's users and the per-room channel
 * subscriptions (rooms.h). */
#include <config.h>

#include "rooms.h"

#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/log.h"
#include "common/proto.h"
#include "gateway/child.h"
#include "gateway/frame.h"

#define SUBSCRIBE_BATCH_MAX 512

struct gw_room *gw_rooms_find(struct gw_child *ch, const char *conv, size_t len)
{
    struct gw_room *r = NULL;
    HASH_FIND(hh, ch->rooms.table, conv, len, r);
    return r;
}

static long member_index(const struct gw_room *r, const struct gw_user *u);

static void waits_free(struct gw_room_wait **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

/* Sends held replies to the sessions still there. The array is the
 * caller's (taken from its room first: sending may close a session and so
 * change or free the room). */
static void waits_send(struct gw_child *ch, struct gw_room_wait **w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct gw_conn *c = (size_t)w[i]->fd < ch->conns_cap ? ch->conns[w[i]->fd] : NULL;
        if (c != NULL && c->gen == w[i]->gen && c->state == GW_CONN_OPEN) {
            gw_metric_add(ch->stats, GW_M_DELIVERIES, 1);
            gw_conn_send_msg(c, w[i]->msg, w[i]->len);
        }
    }
    waits_free(w, n);
}

static void room_free(struct gw_child *ch, struct gw_room *r)
{
    HASH_DEL(ch->rooms.table, r);
    /* Only a room whose members all left or went: nobody to answer. */
    waits_free(r->waiting, r->nwaiting);
    free(r->members);
    free(r);
}

int gw_rooms_hold_joined(struct gw_child *ch, struct gw_conn *c, const struct cm_delivery *d)
{
    struct gw_room *r = gw_rooms_find(ch, d->conv, d->conv_len);
    if (r == NULL || r->state == GW_SUB_SUBSCRIBED || member_index(r, c->user) < 0 || r->nwaiting == UINT16_MAX)
        return 0;
    struct gw_room_wait **n = realloc(r->waiting, (r->nwaiting + 1u) * sizeof(*n));
    if (n == NULL)
        return 0;
    r->waiting = n;
    struct gw_room_wait *w = malloc(sizeof(*w) + d->msg_len);
    if (w == NULL)
        return 0;
    w->fd = c->fd;
    w->gen = c->gen;
    w->len = d->msg_len;
    memcpy(w->msg, d->msg, d->msg_len);
    r->waiting[r->nwaiting++] = w;
    return 1;
}

static int room_queue(struct gw_child *ch, struct gw_room *r)
{
    struct gw_rooms *rs = &ch->rooms;
    if (rs->nqueued == rs->queued_cap) {
        size_t cap = rs->queued_cap ? rs->queued_cap * 2 : 64;
        struct gw_room **n = realloc(rs->queued, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        rs->queued = n;
        rs->queued_cap = cap;
    }
    rs->queued[rs->nqueued++] = r;
    r->state = GW_SUB_QUEUED;
    gw_child_schedule_flush(ch);
    return 0;
}

/* The room has no member left on this child. */
static void room_release(struct gw_child *ch, struct gw_room *r)
{
    switch (r->state) {
    case GW_SUB_SUBSCRIBED:
        ch->rooms.nsubscribed--;
        gw_metric_set(ch->stats, GW_M_ROOM_SUBSCRIPTIONS, ch->rooms.nsubscribed);
        r->max_seq = 0;
        if (gw_redis_unsubscribe_room(ch, r->conv, r->conv_len, r->link) == 0)
            r->state = GW_SUB_UNSUBSCRIBING;
        else
            room_free(ch, r);
        break;
    case GW_SUB_NONE:
        room_free(ch, r);
        break;
    default:
        break; /* QUEUED, SUBSCRIBING, UNSUBSCRIBING: decided when that step ends */
    }
}

static long member_index(const struct gw_room *r, const struct gw_user *u)
{
    for (uint32_t i = 0; i < r->nmembers; i++)
        if (r->members[i].user == u)
            return (long)i;
    return -1;
}

/* Sessions of u that had their hello may have missed a message of r. */
static void mark_gap(struct gw_child *ch, struct gw_user *u)
{
    for (struct gw_conn *c = u->sessions; c != NULL; c = c->next)
        if (!c->hello_pending)
            c->resync_pending = 1;
    gw_users_check_ready(ch, u);
}

/* Adds u to the room conv[0..len). join_seq >= 0 for a join reply (see
 * rooms.h), -1 for a membership read from the rooms set. */
static void member_add(struct gw_child *ch, struct gw_user *u, const char *conv, size_t len, int64_t join_seq)
{
    struct gw_room *r = gw_rooms_find(ch, conv, len);
    if (r != NULL && member_index(r, u) >= 0)
        return;
    if (u->nrooms == u->rooms_cap) {
        uint16_t cap = u->rooms_cap ? (uint16_t)(u->rooms_cap * 2) : 4;
        struct gw_room **n = cap > u->rooms_cap ? realloc(u->rooms, cap * sizeof(*n)) : NULL;
        if (n == NULL) {
            cm_error("room_member", "cannot track %s's rooms (out of memory or over %u)", u->name,
                     (unsigned)u->rooms_cap);
            return;
        }
        u->rooms = n;
        u->rooms_cap = cap;
    }
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return;
        memcpy(r->conv, conv, len);
        r->conv[len] = '\0';
        r->conv_len = (uint8_t)len;
        HASH_ADD(hh, ch->rooms.table, conv, len, r);
    }
    if (r->nmembers == r->members_cap) {
        uint32_t cap = r->members_cap ? r->members_cap * 2 : 4;
        struct gw_room_member *n = realloc(r->members, cap * sizeof(*n));
        if (n == NULL) {
            if (r->nmembers == 0)
                room_free(ch, r);
            return;
        }
        r->members = n;
        r->members_cap = cap;
    }
    r->members[r->nmembers].user = u;
    r->members[r->nmembers].join_seq = join_seq;
    r->nmembers++;
    u->rooms[u->nrooms++] = r;

    switch (r->state) {
    case GW_SUB_SUBSCRIBED:
        /* The channel was flowing: only a message already seen past the
         * join can have been missed. */
        r->members[r->nmembers - 1].join_seq = -1;
        if (join_seq >= 0 && r->max_seq > join_seq)
            mark_gap(ch, u);
        break;
    case GW_SUB_NONE:
        if (gw_redis_ready(ch) && room_queue(ch, r) < 0)
            cm_error("subscribe_failed", "out of memory queueing %s", r->conv);
        break;
    default:
        break;
    }
}

static void member_remove(struct gw_child *ch, struct gw_user *u, struct gw_room *r)
{
    for (uint16_t k = 0; k < u->nrooms; k++) {
        if (u->rooms[k] == r) {
            u->rooms[k] = u->rooms[--u->nrooms];
            break;
        }
    }
    long i = member_index(r, u);
    if (i < 0)
        return;
    if (ch->rooms.walking == r) {
        /* Sending to a member can close a session and so remove its user:
         * the walk's array stays put until walk_end. */
        r->members[i].user = NULL;
        r->holes = 1;
        return;
    }
    r->members[i] = r->members[--r->nmembers];
    if (r->nmembers == 0)
        room_release(ch, r);
}

static void walk_begin(struct gw_child *ch, struct gw_room *r)
{
    ch->rooms.walking = r;
}

static void walk_end(struct gw_child *ch, struct gw_room *r)
{
    ch->rooms.walking = NULL;
    if (!r->holes)
        return;
    r->holes = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->nmembers; i++)
        if (r->members[i].user != NULL)
            r->members[k++] = r->members[i];
    r->nmembers = k;
    if (r->nmembers == 0)
        room_release(ch, r);
}

void gw_rooms_drop_user(struct gw_child *ch, struct gw_user *u)
{
    while (u->nrooms > 0)
        member_remove(ch, u, u->rooms[u->nrooms - 1]);
    free(u->rooms);
    u->rooms = NULL;
    u->rooms_cap = 0;
    u->rooms_state = GW_ROOMS_NONE;
    u->rooms_reload = 0;
}

void gw_rooms_load(struct gw_child *ch, struct gw_user *u)
{
    u->load_id = ++ch->rooms.next_load_id;
    u->rooms_reload = 0;
    if (gw_redis_load_rooms(ch, u->name, u->name_len, u->load_id) == 0)
        u->rooms_state = GW_ROOMS_LOADING;
    else
        u->rooms_state = GW_ROOMS_NONE; /* the link is down: link_up loads again */
}

void gw_rooms_on_loaded(struct gw_child *ch, const char *user, size_t user_len, uint32_t id,
                        const char *const *members, const size_t *lens, size_t n)
{
    struct gw_user *u = gw_users_find(ch, user, user_len);
    if (u == NULL || u->load_id != id || u->rooms_state != GW_ROOMS_LOADING)
        return; /* a load for a user since gone, or superseded */
    if (members == NULL) {
        u->rooms_state = GW_ROOMS_NONE;
        return;
    }
    if (u->rooms_reload) {
        /* A join or leave arrived while this read was in flight: it may
         * predate it. The next read cannot. */
        gw_rooms_load(ch, u);
        return;
    }
    /* Leave what the set no longer has, then join what it has. */
    for (uint16_t k = u->nrooms; k > 0; k--) {
        struct gw_room *r = u->rooms[k - 1];
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = lens[i] == r->conv_len && memcmp(members[i], r->conv, lens[i]) == 0;
        if (!found)
            member_remove(ch, u, r);
    }
    for (size_t i = 0; i < n; i++) {
        if (lens[i] <= 5 || memcmp(members[i], "room:", 5) != 0 || !cm_valid_room(members[i] + 5, lens[i] - 5)) {
            cm_warn("bad_room", "%s's rooms set holds a value that is not a room", u->name);
            continue;
        }
        member_add(ch, u, members[i], lens[i], -1);
    }
    u->rooms_state = GW_ROOMS_LOADED;
    gw_users_check_ready(ch, u);
}

void gw_rooms_on_change(struct gw_child *ch, struct gw_user *u, const struct cm_delivery *d)
{
    if (u->rooms_state == GW_ROOMS_NONE)
        return; /* the load to come reads the change */
    if (u->rooms_state == GW_ROOMS_LOADING)
        u->rooms_reload = 1;
    if (d->change == CM_MEMBER_JOINED) {
        member_add(ch, u, d->conv, d->conv_len, d->seq);
    } else if (d->change == CM_MEMBER_LEFT) {
        struct gw_room *r = gw_rooms_find(ch, d->conv, d->conv_len);
        if (r != NULL && member_index(r, u) >= 0)
            member_remove(ch, u, r);
    }
}

void gw_rooms_flush(struct gw_child *ch)
{
    struct gw_rooms *rs = &ch->rooms;
    const char *convs[SUBSCRIBE_BATCH_MAX];
    size_t lens[SUBSCRIBE_BATCH_MAX];
    struct gw_room *batch[SUBSCRIBE_BATCH_MAX];
    uint8_t links[SUBSCRIBE_BATCH_MAX];
    size_t i = 0;
    while (i < rs->nqueued) {
        size_t n = 0;
        for (; i < rs->nqueued && n < SUBSCRIBE_BATCH_MAX; i++) {
            struct gw_room *r = rs->queued[i];
            if (r->nmembers == 0) {
                room_free(ch, r);
                continue;
            }
            convs[n] = r->conv;
            lens[n] = r->conv_len;
            batch[n++] = r;
        }
        if (n == 0)
            continue;
        gw_redis_subscribe_rooms(ch, convs, lens, n, links);
        for (size_t k = 0; k < n; k++) {
            batch[k]->state = links[k] != GW_LINK_NONE ? GW_SUB_SUBSCRIBING : GW_SUB_NONE;
            batch[k]->link = links[k];
        }
    }
    rs->nqueued = 0;
}

void gw_rooms_on_subscribed(struct gw_child *ch, struct gw_room *r)
{
    if (r->state != GW_SUB_SUBSCRIBING)
        return;
    r->state = GW_SUB_SUBSCRIBED;
    r->max_seq = 0;
    ch->rooms.nsubscribed++;
    gw_metric_set(ch->stats, GW_M_ROOM_SUBSCRIPTIONS, ch->rooms.nsubscribed);
    if (r->nmembers == 0) {
        room_release(ch, r);
        return;
    }
    int check = 0;
    for (uint32_t i = 0; i < r->nmembers; i++)
        check |= r->members[i].join_seq >= 0;
    /* The room's seq cannot be read: every member added by a join reply
     * is taken to have missed something, as gw_rooms_on_seq does. */
    int unread = 0;
    if (check && !r->checking) {
        if (gw_redis_room_seq(ch, r->conv, r->conv_len) == 0)
            r->checking = 1;
        else
            unread = 1;
    }
    struct gw_room_wait **waits = r->waiting;
    size_t nwaits = r->nwaiting;
    r->waiting = NULL;
    r->nwaiting = 0;
    walk_begin(ch, r);
    for (uint32_t i = 0; i < r->nmembers; i++) {
        struct gw_room_member *m = &r->members[i];
        if (m->user == NULL)
            continue;
        if (unread && m->join_seq >= 0) {
            m->join_seq = -1;
            mark_gap(ch, m->user);
        } else {
            gw_users_check_ready(ch, m->user);
        }
    }
    walk_end(ch, r);
    waits_send(ch, waits, nwaits);
}

void gw_rooms_on_seq(struct gw_child *ch, const char *conv, size_t len, long long value)
{
    struct gw_room *r = gw_rooms_find(ch, conv, len);
    if (r == NULL)
        return;
    r->checking = 0;
    walk_begin(ch, r);
    for (uint32_t i = 0; i < r->nmembers; i++) {
        struct gw_room_member *m = &r->members[i];
        if (m->user == NULL || m->join_seq < 0)
            continue;
        int gap = value < 0 || value > m->join_seq;
        m->join_seq = -1;
        if (gap)
            mark_gap(ch, m->user);
    }
    walk_end(ch, r);
}

void gw_rooms_on_unsubscribed(struct gw_child *ch, struct gw_room *r)
{
    if (r->state != GW_SUB_UNSUBSCRIBING)
        return;
    if (r->nmembers > 0) {
        if (room_queue(ch, r) < 0)
            r->state = GW_SUB_NONE;
        return;
    }
    room_free(ch, r);
}

void gw_rooms_deliver(struct gw_child *ch, struct gw_room *r, const char *data, size_t len)
{
    if (r->state != GW_SUB_SUBSCRIBED)
        return;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    struct cm_delivery d;
    char err[128];
    if (cm_delivery_unpack(data, len, &up, &d, err, sizeof(err)) < 0 || d.session != NULL) {
        cm_warn("bad_delivery", "channel of %s: %s", r->conv, d.session != NULL ? "delivery for one session" : err);
        msgpack_unpacked_destroy(&up);
        return;
    }
    int64_t seq = cm_message_seq(d.msg, d.msg_len);
    if (seq > r->max_seq)
        r->max_seq = seq;
    struct gw_frames f;
    gw_frames_init(&f, d.msg, d.msg_len, r->conv);
    walk_begin(ch, r);
    for (uint32_t i = 0; i < r->nmembers; i++)
        if (r->members[i].user != NULL)
            gw_child_send_user(ch, r->members[i].user, &f);
    walk_end(ch, r);
    gw_frames_release(&f);
    msgpack_unpacked_destroy(&up);
}

void gw_rooms_on_lost(struct gw_child *ch, struct gw_room *r)
{
    int was_flowing = r->state == GW_SUB_SUBSCRIBED;
    switch (r->state) {
    case GW_SUB_SUBSCRIBED:
        ch->rooms.nsubscribed--;
        gw_metric_set(ch->stats, GW_M_ROOM_SUBSCRIPTIONS, ch->rooms.nsubscribed);
        break;
    case GW_SUB_SUBSCRIBING:
    case GW_SUB_UNSUBSCRIBING:
        break;
    default:
        return;
    }
    r->state = GW_SUB_NONE;
    r->link = GW_LINK_NONE;
    r->max_seq = 0;
    if (r->nmembers == 0) {
        room_free(ch, r);
        return;
    }
    if (!was_flowing)
        return; /* members waiting for it had no hello or check its seq on subscribe */
    /* The members' hello waits for this room again (gw_users_ready), so
     * marking sends nothing now: the resync goes once it is subscribed. */
    walk_begin(ch, r);
    for (uint32_t i = 0; i < r->nmembers; i++)
        if (r->members[i].user != NULL)
            mark_gap(ch, r->members[i].user);
    walk_end(ch, r);
}

/* Forgets every room; held joined replies go out first. */
static void forget_all(struct gw_child *ch)
{
    struct gw_user *u, *tmp;
    HASH_ITER(hh, ch->users.table, u, tmp) {
        free(u->rooms);
        u->rooms = NULL;
        u->nrooms = u->rooms_cap = 0;
        u->rooms_state = GW_ROOMS_NONE;
        u->rooms_reload = 0;
    }
    /* Held joined replies are answers the clients wait for: they go out
     * once every room is gone (the sessions get a resync too). */
    struct gw_room_wait **held = NULL;
    size_t nheld = 0;
    struct gw_room *r, *rtmp;
    HASH_ITER(hh, ch->rooms.table, r, rtmp) {
        struct gw_room_wait **n = r->nwaiting ? realloc(held, (nheld + r->nwaiting) * sizeof(*n)) : held;
        if (n != NULL) {
            held = n;
            memcpy(held + nheld, r->waiting, r->nwaiting * sizeof(*held));
            nheld += r->nwaiting;
            free(r->waiting);
            r->waiting = NULL;
            r->nwaiting = 0;
        }
        room_free(ch, r);
    }
    ch->rooms.nqueued = 0;
    ch->rooms.nsubscribed = 0;
    waits_send(ch, held, nheld);
    gw_metric_set(ch->stats, GW_M_ROOM_SUBSCRIPTIONS, ch->rooms.nsubscribed);
}

void gw_rooms_link_up(struct gw_child *ch)
{
    struct gw_room *r, *tmp;
    HASH_ITER(hh, ch->rooms.table, r, tmp) {
        if (r->state == GW_SUB_NONE && r->nmembers > 0 && room_queue(ch, r) < 0)
            cm_error("subscribe_failed", "out of memory queueing %s", r->conv);
    }
}

void gw_rooms_free_all(struct gw_child *ch)
{
    forget_all(ch);
    free(ch->rooms.queued);
    memset(&ch->rooms, 0, sizeof(ch->rooms));
}
