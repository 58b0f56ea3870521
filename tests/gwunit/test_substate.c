/* test_substate.c: what a lost channel subscription does to users and rooms
 * (gw_users_on_lost, gw_rooms_on_lost; cluster mode loses one link's
 * channels, or one slot's, at a time). users.c and rooms.c run for real;
 * the Redis link, the sessions' output and the loop are stubs that record. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/child.h"

/* ---- stubs ---- */
static int redis_up = 1;
static uint8_t next_link = 3;
static int flushes, hellos, resyncs, loads, unsubs;
static uint32_t last_load_id;

void gw_child_schedule_flush(struct gw_child *ch) { (void)ch; flushes++; }
void gw_conn_send_hello(struct gw_conn *c) { c->hello_pending = 0; c->resync_pending = 0; hellos++; }
void gw_conn_send_resync(struct gw_conn *c) { c->resync_pending = 0; resyncs++; }
int gw_conn_send_msg(struct gw_conn *c, const char *msg, size_t len) { (void)c; (void)msg; (void)len; return 0; }
void gw_child_send_user(struct gw_child *ch, struct gw_user *u, struct gw_frames *f) { (void)ch; (void)u; (void)f; }
void gw_frames_init(struct gw_frames *f, const char *msg, size_t len, const char *where)
{
    memset(f, 0, sizeof(*f));
    f->msg = msg, f->len = len, f->where = where;
}
void gw_frames_release(struct gw_frames *f) { (void)f; }
int gw_redis_ready(const struct gw_child *ch) { (void)ch; return redis_up; }
void gw_redis_subscribe(struct gw_child *ch, const char *const *u, const size_t *l, size_t n, uint8_t *links)
{
    (void)ch, (void)u, (void)l;
    for (size_t i = 0; i < n; i++)
        links[i] = redis_up ? next_link : GW_LINK_NONE;
}
void gw_redis_subscribe_rooms(struct gw_child *ch, const char *const *c, const size_t *l, size_t n, uint8_t *links)
{
    gw_redis_subscribe(ch, c, l, n, links);
}
int gw_redis_unsubscribe(struct gw_child *ch, const char *u, size_t l, uint8_t link)
{
    (void)ch, (void)u, (void)l, (void)link;
    unsubs++;
    return redis_up ? 0 : -1;
}
int gw_redis_unsubscribe_room(struct gw_child *ch, const char *c, size_t l, uint8_t link)
{
    return gw_redis_unsubscribe(ch, c, l, link);
}
int gw_redis_load_rooms(struct gw_child *ch, const char *u, size_t l, uint32_t id)
{
    (void)ch, (void)u, (void)l;
    loads++;
    last_load_id = id;
    return redis_up ? 0 : -1;
}
int gw_redis_room_seq(struct gw_child *ch, const char *c, size_t l) { (void)ch, (void)c, (void)l; return -1; }

/* ---- fixture ---- */
static struct gw_metrics_cell cell;
static struct gw_child ch;

static void setup(void)
{
    memset(&ch, 0, sizeof(ch));
    memset(&cell, 0, sizeof(cell));
    ch.stats = &cell;
    redis_up = 1;
    next_link = 3;
    flushes = hellos = resyncs = loads = unsubs = 0;
}

static void teardown(void)
{
    gw_rooms_free_all(&ch);
    gw_users_free_all(&ch);
}

TestSuite(lost, .init = setup, .fini = teardown, .timeout = 20);

static struct gw_conn *session(void)
{
    struct gw_conn *c = calloc(1, sizeof(*c));
    cr_assert_not_null(c);
    c->state = GW_CONN_OPEN;
    c->hello_pending = 1;
    return c;
}

/* A user subscribed and loaded with rooms (room names "room:<r>"), its
 * sessions hello'd. */
static struct gw_user *subscribed(const char *name, struct gw_conn *c, const char *const *rooms, size_t nrooms)
{
    cr_assert_eq(gw_users_attach(&ch, c, name), 0);
    gw_users_flush(&ch);
    gw_rooms_flush(&ch);
    struct gw_user *u = gw_users_find(&ch, name, strlen(name));
    cr_assert_eq(u->state, GW_SUB_SUBSCRIBING);
    cr_assert_eq(u->link, next_link);
    gw_users_on_subscribed(&ch, u);
    size_t lens[8];
    static const char *const none[] = {""};
    for (size_t i = 0; i < nrooms; i++)
        lens[i] = strlen(rooms[i]);
    gw_rooms_on_loaded(&ch, name, strlen(name), last_load_id, rooms ? rooms : none, lens, nrooms);
    gw_rooms_flush(&ch);
    for (size_t i = 0; i < nrooms; i++)
        gw_rooms_on_subscribed(&ch, gw_rooms_find(&ch, rooms[i], lens[i]));
    cr_assert(gw_users_ready(u));
    cr_assert_eq(c->hello_pending, 0, "no hello");
    return u;
}

Test(lost, a_user_channel_lost_resyncs_only_sessions_that_had_hello)
{
    struct gw_conn *a = session(), *b = session();
    struct gw_user *u = subscribed("alice", a, NULL, 0);
    cr_assert_eq(ch.users.nsubscribed, 1);
    redis_up = 0; /* its master is down: b waits for its hello */
    cr_assert_eq(gw_users_attach(&ch, b, "alice"), 0);
    cr_assert_eq(b->hello_pending, 0, "already subscribed: hello at once");
    b->hello_pending = 1; /* pretend b came in just now and has no hello yet */

    gw_users_on_lost(&ch, u);
    cr_assert_eq(u->state, GW_SUB_NONE);
    cr_assert_eq(u->link, GW_LINK_NONE);
    cr_assert_eq(ch.users.nsubscribed, 0);
    cr_assert_eq(cell.v[GW_M_SUBSCRIPTIONS], 0);
    cr_assert_eq(a->resync_pending, 1, "a had its hello: it may have missed deliveries");
    cr_assert_eq(b->resync_pending, 0, "b had no hello: the hello says it all");

    /* the slot is served again, on another link */
    redis_up = 1;
    next_link = 7;
    gw_users_link_up(&ch);
    cr_assert_eq(u->state, GW_SUB_QUEUED);
    gw_users_flush(&ch);
    cr_assert_eq(u->state, GW_SUB_SUBSCRIBING);
    cr_assert_eq(u->link, 7);
    hellos = resyncs = 0;
    gw_users_on_subscribed(&ch, u);
    cr_assert_eq(resyncs + hellos, 0, "nothing before the user's rooms are read again");
    gw_rooms_on_loaded(&ch, "alice", 5, last_load_id, NULL, NULL, 0);
    cr_assert_eq(resyncs, 0, "a failed read sends nothing");
    gw_users_link_up(&ch); /* reads again */
    gw_rooms_on_loaded(&ch, "alice", 5, last_load_id, (const char *const[]){"room:x"}, (size_t[]){6}, 0);
    cr_assert_eq(resyncs, 1);
    cr_assert_eq(hellos, 1);
    cr_assert_eq(a->resync_pending, 0);
    gw_users_detach(&ch, a);
    gw_users_detach(&ch, b);
    free(a);
    free(b);
}

Test(lost, a_user_without_sessions_is_freed)
{
    struct gw_conn *a = session();
    struct gw_user *u = subscribed("bob", a, NULL, 0);
    gw_users_detach(&ch, a);
    cr_assert_eq(u->state, GW_SUB_UNSUBSCRIBING);
    gw_users_on_lost(&ch, u);
    cr_assert_null(gw_users_find(&ch, "bob", 3));
    cr_assert_eq(ch.users.nsubscribed, 0);
    free(a);
}

Test(lost, queued_and_unsubscribed_users_are_left_alone)
{
    struct gw_conn *a = session();
    cr_assert_eq(gw_users_attach(&ch, a, "carl"), 0);
    struct gw_user *u = gw_users_find(&ch, "carl", 4);
    cr_assert_eq(u->state, GW_SUB_QUEUED);
    gw_users_on_lost(&ch, u);
    cr_assert_eq(u->state, GW_SUB_QUEUED, "the flush subscribes it where the map says");
    gw_users_flush(&ch);
    cr_assert_eq(u->state, GW_SUB_SUBSCRIBING);
    gw_users_detach(&ch, a);
    free(a);
}

Test(lost, a_room_channel_lost_resyncs_its_members_once_back)
{
    static const char *const rooms[] = {"room:lobby"};
    struct gw_conn *a = session(), *b = session(), *c = session();
    struct gw_user *ua = subscribed("ann", a, rooms, 1);
    struct gw_user *ub = subscribed("ben", b, rooms, 1);
    struct gw_user *uc = subscribed("cid", c, NULL, 0);
    struct gw_room *r = gw_rooms_find(&ch, "room:lobby", 10);
    cr_assert_eq(r->state, GW_SUB_SUBSCRIBED);
    cr_assert_eq(ch.rooms.nsubscribed, 1);
    resyncs = 0;

    gw_rooms_on_lost(&ch, r);
    cr_assert_eq(r->state, GW_SUB_NONE);
    cr_assert_eq(ch.rooms.nsubscribed, 0);
    cr_assert_eq(a->resync_pending, 1);
    cr_assert_eq(b->resync_pending, 1);
    cr_assert_eq(c->resync_pending, 0, "not a member");
    cr_assert_eq(resyncs, 0, "no resync while the room is not subscribed");
    cr_assert(!gw_users_ready(ua) && !gw_users_ready(ub) && gw_users_ready(uc));

    gw_users_link_up(&ch);
    cr_assert_eq(r->state, GW_SUB_QUEUED);
    gw_rooms_flush(&ch);
    cr_assert_eq(r->state, GW_SUB_SUBSCRIBING);
    gw_rooms_on_subscribed(&ch, r);
    cr_assert_eq(resyncs, 2, "each member once");
    cr_assert_eq(a->resync_pending + b->resync_pending, 0);
    gw_rooms_on_subscribed(&ch, r);
    cr_assert_eq(resyncs, 2, "a second confirmation sends nothing");
    gw_users_detach(&ch, a);
    gw_users_detach(&ch, b);
    gw_users_detach(&ch, c);
    free(a);
    free(b);
    free(c);
}

Test(lost, a_room_lost_while_being_left_is_freed)
{
    static const char *const rooms[] = {"room:gone"};
    struct gw_conn *a = session();
    subscribed("dee", a, rooms, 1);
    struct gw_room *r = gw_rooms_find(&ch, "room:gone", 9);
    gw_users_detach(&ch, a); /* the last member leaves: UNSUBSCRIBING */
    cr_assert_eq(r->state, GW_SUB_UNSUBSCRIBING);
    gw_rooms_on_lost(&ch, r);
    cr_assert_null(gw_rooms_find(&ch, "room:gone", 9));
    free(a);
}
