/* users.h: the users with a session on this child, their sessions, and
 * their per-user channel subscription.
 *
 * Subscription state of a user (the first session subscribes, the last
 * one leaving unsubscribes; one SUBSCRIBE/UNSUBSCRIBE is in flight at a
 * time per channel, because hiredis keeps one callback per channel and an
 * overlapping UNSUBSCRIBE reply would drop a new SUBSCRIBE's callback):
 *   NONE --first session--> QUEUED --batch flushed--> SUBSCRIBING
 *   SUBSCRIBING --confirmed--> SUBSCRIBED (rooms read; hello to waiting
 *                              sessions once every room channel is subscribed too)
 *   SUBSCRIBED --last session gone--> UNSUBSCRIBING --confirmed--> freed,
 *                                     or QUEUED again if a session came back
 *   any --Redis subscription link lost--> NONE (freed if it has no session)
 *       (Redis Cluster: only the users whose channel was on the lost link,
 *       or in a slot that moved: gw_users_on_lost)
 * A session that already had its hello when the link was lost may have
 * missed deliveries: it gets a resync message once SUBSCRIBED again (sent
 * after the confirmation, so whatever the client fetches then is complete). */
#ifndef CHATMI_GATEWAY_USERS_H
#define CHATMI_GATEWAY_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "common/ids.h"

struct gw_child;
struct gw_conn;

enum gw_sub_state { GW_SUB_NONE = 0, GW_SUB_QUEUED, GW_SUB_SUBSCRIBING, GW_SUB_SUBSCRIBED, GW_SUB_UNSUBSCRIBING };

/* Whether the user's rooms (rooms.h) are known: read once its channel is
 * subscribed. */
enum gw_rooms_state { GW_ROOMS_NONE = 0, GW_ROOMS_LOADING, GW_ROOMS_LOADED };

struct gw_room;

struct gw_user {
    UT_hash_handle hh;
    struct gw_conn *sessions;  /* doubly linked through gw_conn.prev/next */
    struct gw_room **rooms;    /* rooms the user is a member of (rooms.c) */
    uint32_t nsessions;
    uint32_t load_id;          /* the rooms read in flight */
    uint16_t nrooms, rooms_cap;
    double tokens;             /* --user-rate-limit bucket (conn.c); tokens_ms 0: full */
    int64_t tokens_ms;
    uint8_t state;             /* enum gw_sub_state */
    uint8_t rooms_state;       /* enum gw_rooms_state */
    uint8_t rooms_reload;      /* a membership change arrived during the read */
    uint8_t link;              /* the subscription link holding the channel (redis_link.h) */
    uint8_t name_len;
    char name[CM_USER_MAX + 1];
};

struct gw_users {
    struct gw_user *table;     /* uthash head */
    struct gw_user **queued;   /* users waiting for the next SUBSCRIBE batch */
    size_t nqueued, queued_cap;
    size_t nsubscribed;
};

/* Adds an OPEN session to its user (created when new) and starts the
 * subscription if needed; sends hello at once when already subscribed.
 * -1 when out of memory. */
int gw_users_attach(struct gw_child *ch, struct gw_conn *c, const char *user);

/* Removes a session from its user; the last one leaving unsubscribes. */
void gw_users_detach(struct gw_child *ch, struct gw_conn *c);

struct gw_user *gw_users_find(struct gw_child *ch, const char *name, size_t len);

/* Sends the queued SUBSCRIBE batch (many channels per command). */
void gw_users_flush(struct gw_child *ch);

/* Whether the user's sessions may get their hello: its channel and every
 * room channel of the user are subscribed. */
int gw_users_ready(const struct gw_user *u);
/* Sends hello (or resync) to the sessions waiting for it, once ready. */
void gw_users_check_ready(struct gw_child *ch, struct gw_user *u);

/* Subscription replies from Redis for a user's channel. */
void gw_users_on_subscribed(struct gw_child *ch, struct gw_user *u);
void gw_users_on_unsubscribed(struct gw_child *ch, struct gw_user *u);

/* The user's channel subscription is gone from its link (the link was
 * lost or reset, its master changed, or its slot moved away). Back to NONE (freed without
 * sessions); sessions that had their hello get a resync once the channel
 * is subscribed again (gw_users_link_up queues it). */
void gw_users_on_lost(struct gw_child *ch, struct gw_user *u);

/* A master's links are up: every user left NONE is queued (and rooms). */
void gw_users_link_up(struct gw_child *ch);

void gw_users_free_all(struct gw_child *ch);

#endif
