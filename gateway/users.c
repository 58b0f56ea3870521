/* users.c: the user table of a child and the per-user subscription state
 * machine described in users.h. */
#include <config.h>

#include "users.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/child.h"
#include "gateway/rooms.h"

#define SUBSCRIBE_BATCH_MAX 512

struct gw_user *gw_users_find(struct gw_child *ch, const char *name, size_t len)
{
    struct gw_user *u = NULL;
    HASH_FIND(hh, ch->users.table, name, len, u);
    return u;
}

static void user_free(struct gw_child *ch, struct gw_user *u)
{
    gw_rooms_drop_user(ch, u);
    HASH_DEL(ch->users.table, u);
    free(u);
}

int gw_users_ready(const struct gw_user *u)
{
    if (u->state != GW_SUB_SUBSCRIBED || u->rooms_state != GW_ROOMS_LOADED)
        return 0;
    for (uint16_t k = 0; k < u->nrooms; k++)
        if (u->rooms[k]->state != GW_SUB_SUBSCRIBED)
            return 0;
    return 1;
}

void gw_users_check_ready(struct gw_child *ch, struct gw_user *u)
{
    (void)ch;
    if (!gw_users_ready(u))
        return;
    struct gw_conn *next;
    for (struct gw_conn *c = u->sessions; c != NULL; c = next) {
        next = c->next;
        if (c->hello_pending)
            gw_conn_send_hello(c);
        else if (c->resync_pending)
            gw_conn_send_resync(c);
    }
}

static int queue(struct gw_child *ch, struct gw_user *u)
{
    struct gw_users *us = &ch->users;
    if (us->nqueued == us->queued_cap) {
        size_t cap = us->queued_cap ? us->queued_cap * 2 : 64;
        struct gw_user **n = realloc(us->queued, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        us->queued = n;
        us->queued_cap = cap;
    }
    us->queued[us->nqueued++] = u;
    u->state = GW_SUB_QUEUED;
    gw_child_schedule_flush(ch);
    return 0;
}

int gw_users_attach(struct gw_child *ch, struct gw_conn *c, const char *name)
{
    size_t len = strlen(name);
    struct gw_user *u = gw_users_find(ch, name, len);
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        if (u == NULL)
            return -1;
        memcpy(u->name, name, len + 1);
        u->name_len = (uint8_t)len;
        HASH_ADD(hh, ch->users.table, name, len, u);
    }
    c->user = u;
    c->prev = NULL;
    c->next = u->sessions;
    if (u->sessions != NULL)
        u->sessions->prev = c;
    u->sessions = c;
    u->nsessions++;
    switch (u->state) {
    case GW_SUB_SUBSCRIBED:
        if (u->rooms_state == GW_ROOMS_NONE && gw_redis_ready(ch))
            gw_rooms_load(ch, u); /* an earlier read was lost with the command link */
        gw_users_check_ready(ch, u);
        break;
    case GW_SUB_NONE:
        /* With the link down the session waits; link_up queues everyone. */
        if (gw_redis_ready(ch) && queue(ch, u) < 0)
            return -1;
        break;
    default:
        break; /* a transition is in flight; its end sends the hello */
    }
    return 0;
}

void gw_users_detach(struct gw_child *ch, struct gw_conn *c)
{
    struct gw_user *u = c->user;
    if (u == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        u->sessions = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->user = NULL;
    u->nsessions--;
    if (u->nsessions > 0)
        return;
    gw_rooms_drop_user(ch, u);
    switch (u->state) {
    case GW_SUB_SUBSCRIBED:
        if (gw_redis_unsubscribe(ch, u->name, u->name_len, u->link) == 0) {
            u->state = GW_SUB_UNSUBSCRIBING;
        } else {
            u->state = GW_SUB_NONE;
            ch->users.nsubscribed--;
            user_free(ch, u);
        }
        gw_metric_set(ch->stats, GW_M_SUBSCRIPTIONS, ch->users.nsubscribed);
        break;
    case GW_SUB_NONE:
        user_free(ch, u);
        break;
    default:
        break; /* QUEUED, SUBSCRIBING, UNSUBSCRIBING: decided when that step ends */
    }
}

void gw_users_flush(struct gw_child *ch)
{
    struct gw_users *us = &ch->users;
    const char *names[SUBSCRIBE_BATCH_MAX];
    size_t lens[SUBSCRIBE_BATCH_MAX];
    struct gw_user *batch[SUBSCRIBE_BATCH_MAX];
    uint8_t links[SUBSCRIBE_BATCH_MAX];
    size_t i = 0;
    while (i < us->nqueued) {
        size_t n = 0;
        for (; i < us->nqueued && n < SUBSCRIBE_BATCH_MAX; i++) {
            struct gw_user *u = us->queued[i];
            if (u->nsessions == 0) {
                user_free(ch, u);
                continue;
            }
            names[n] = u->name;
            lens[n] = u->name_len;
            batch[n++] = u;
        }
        if (n == 0)
            continue;
        gw_redis_subscribe(ch, names, lens, n, links);
        for (size_t k = 0; k < n; k++) {
            /* Not sent (its node is down): link_up queues it again. */
            batch[k]->state = links[k] != GW_LINK_NONE ? GW_SUB_SUBSCRIBING : GW_SUB_NONE;
            batch[k]->link = links[k];
        }
    }
    us->nqueued = 0;
}

void gw_users_on_subscribed(struct gw_child *ch, struct gw_user *u)
{
    if (u->state != GW_SUB_SUBSCRIBING)
        return;
    u->state = GW_SUB_SUBSCRIBED;
    ch->users.nsubscribed++;
    gw_metric_set(ch->stats, GW_M_SUBSCRIPTIONS, ch->users.nsubscribed);
    if (u->nsessions == 0) {
        if (gw_redis_unsubscribe(ch, u->name, u->name_len, u->link) == 0)
            u->state = GW_SUB_UNSUBSCRIBING;
        return;
    }
    /* Only now: a join or leave after this read arrives on the channel. */
    gw_rooms_load(ch, u);
}

void gw_users_on_unsubscribed(struct gw_child *ch, struct gw_user *u)
{
    if (u->state != GW_SUB_UNSUBSCRIBING)
        return;
    ch->users.nsubscribed--;
    gw_metric_set(ch->stats, GW_M_SUBSCRIPTIONS, ch->users.nsubscribed);
    if (u->nsessions > 0) {
        if (queue(ch, u) < 0)
            u->state = GW_SUB_NONE;
        return;
    }
    user_free(ch, u);
}

void gw_users_on_lost(struct gw_child *ch, struct gw_user *u)
{
    switch (u->state) {
    case GW_SUB_SUBSCRIBED:
    case GW_SUB_UNSUBSCRIBING:
        ch->users.nsubscribed--;
        gw_metric_set(ch->stats, GW_M_SUBSCRIPTIONS, ch->users.nsubscribed);
        break;
    case GW_SUB_SUBSCRIBING:
        break;
    default:
        return; /* NONE, or QUEUED: the next flush subscribes where the map says */
    }
    u->state = GW_SUB_NONE;
    u->link = GW_LINK_NONE;
    if (u->nsessions == 0) {
        user_free(ch, u);
        return;
    }
    for (struct gw_conn *c = u->sessions; c != NULL; c = c->next)
        if (!c->hello_pending)
            c->resync_pending = 1;
}

void gw_users_link_up(struct gw_child *ch)
{
    struct gw_user *u, *tmp;
    HASH_ITER(hh, ch->users.table, u, tmp) {
        if (u->state == GW_SUB_NONE && queue(ch, u) < 0)
            cm_error("subscribe_failed", "out of memory queueing %s", u->name);
        else if (u->state == GW_SUB_SUBSCRIBED && u->nsessions > 0 && u->rooms_state == GW_ROOMS_NONE)
            gw_rooms_load(ch, u); /* the command link was lost with the read */
    }
    gw_rooms_link_up(ch);
}

void gw_users_free_all(struct gw_child *ch)
{
    struct gw_user *u, *tmp;
    HASH_ITER(hh, ch->users.table, u, tmp) {
        HASH_DEL(ch->users.table, u);
        free(u->rooms);
        free(u);
    }
    free(ch->users.queued);
    memset(&ch->users, 0, sizeof(ch->users));
}
