/* rooms.h: the rooms a child's users are members of, and the per-room
 * channel subscription that carries their messages.
 *
 * A room message is published once, on chatmi:{c:room:<name>}; every child
 * holding a session of a member subscribes to it while it holds one and
 * hands the message to its members' sessions. Redis's work per message thus
 * grows with the children that have members online, not with members.
 *
 * Membership comes from two places:
 *   - the user's rooms set (chatmi:{u:<user>}:rooms), read once the user's
 *     own channel is subscribed (so no join or leave can fall between the
 *     two: a later one arrives on the channel), and read again if a change
 *     arrives while that read is in flight;
 *   - the join and leave replies, which carry a membership element that
 *     every child holding a session of the user acts on.
 * A session's hello waits until its user's channel and every room channel
 * of the user are subscribed (users.c, gw_users_ready).
 *
 * A member added by a join reply may have missed a message published
 * between the join and the moment this child knew of it. The reply carries
 * the room's seq from before the join: if the room's channel has already
 * delivered a higher seq (or, for a channel only now subscribed, the room's
 * seq read after the subscription is higher), the member's sessions get a
 * resync. A lower seq than the truth can only cost a needless resync.
 *
 * Subscription states are those of users (enum gw_sub_state): one
 * SUBSCRIBE or UNSUBSCRIBE in flight per channel. */
#ifndef CHATMI_GATEWAY_ROOMS_H
#define CHATMI_GATEWAY_ROOMS_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "common/ids.h"

struct gw_child;
struct gw_conn;
struct gw_user;
struct cm_delivery;

/* A joined reply held until the room's channel is subscribed: a client that
 * sends after seeing "joined" then always gets its own message. */
struct gw_room_wait {
    int fd;
    uint32_t gen;
    size_t len;
    char msg[];
};

struct gw_room_member {
    struct gw_user *user;
    int64_t join_seq;          /* >= 0: added by a join reply, not yet checked for a gap */
};

struct gw_room {
    UT_hash_handle hh;
    struct gw_room_member *members;
    uint32_t nmembers, members_cap;
    uint8_t state;             /* enum gw_sub_state */
    uint8_t checking;          /* a GET of the room's seq is in flight */
    uint8_t conv_len;
    uint8_t holes;             /* members left while the room was walked: user NULL */
    uint8_t link;              /* the subscription link holding the channel (redis_link.h) */
    uint16_t nwaiting;
    struct gw_room_wait **waiting; /* joined replies held until SUBSCRIBED */
    int64_t max_seq;           /* highest seq delivered on the channel since subscribed */
    char conv[CM_CONV_MAX + 1]; /* "room:<name>" */
};

struct gw_rooms {
    struct gw_room *table;     /* uthash head, by conv */
    struct gw_room **queued;   /* rooms waiting for the next SUBSCRIBE batch */
    size_t nqueued, queued_cap;
    size_t nsubscribed;
    uint32_t next_load_id;
    struct gw_room *walking;   /* the room whose members are being walked: removals leave holes */
};

/* The user's channel is subscribed: read its rooms (again). */
void gw_rooms_load(struct gw_child *ch, struct gw_user *u);

/* The rooms set of a user, read by load #id: the user's membership becomes
 * exactly that set. members NULL: the read failed (the link went down). */
void gw_rooms_on_loaded(struct gw_child *ch, const char *user, size_t user_len, uint32_t id,
                        const char *const *members, const size_t *lens, size_t n);

/* A join or leave reply passing through the user's channel. */
void gw_rooms_on_change(struct gw_child *ch, struct gw_user *u, const struct cm_delivery *d);

/* A joined reply (d, for session c) to hold until its room's channel is
 * subscribed. 1 when held (sent later), 0 when it can go now. */
int gw_rooms_hold_joined(struct gw_child *ch, struct gw_conn *c, const struct cm_delivery *d);

/* The user has no session left: leaves every room it was in. */
void gw_rooms_drop_user(struct gw_child *ch, struct gw_user *u);

/* Subscription replies and messages of a room's channel. */
struct gw_room *gw_rooms_find(struct gw_child *ch, const char *conv, size_t len);
void gw_rooms_on_subscribed(struct gw_child *ch, struct gw_room *r);
void gw_rooms_on_unsubscribed(struct gw_child *ch, struct gw_room *r);
void gw_rooms_deliver(struct gw_child *ch, struct gw_room *r, const char *data, size_t len);

/* The room's seq read after its subscription (value < 0: the read failed). */
void gw_rooms_on_seq(struct gw_child *ch, const char *conv, size_t len, long long value);

/* Sends the queued SUBSCRIBE batch. */
void gw_rooms_flush(struct gw_child *ch);

/* The room's channel subscription is gone from its link (lost or reset,
 * its master changed, or its slot moved away): back to NONE (gw_rooms_link_up queues it
 * again); members that may have missed a message get a resync once it is
 * subscribed again. */
void gw_rooms_on_lost(struct gw_child *ch, struct gw_room *r);

/* Both links are up: rooms left unsubscribed while they were not are queued. */
void gw_rooms_link_up(struct gw_child *ch);

void gw_rooms_free_all(struct gw_child *ch);

#endif
