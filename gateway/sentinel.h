/* sentinel.h: a gateway child's view of the sentinels of a
 * redis+sentinel:// URL, on its libevent loop and never blocking it (hiredis
 * async connections, a timer per sentinel asked):
 *
 *   - discovery: a round asks the sentinels one after the other (the one
 *     that answered last time first) for the master's address, each within
 *     CM_SENTINEL_TIMEOUT_MS, until one answers;
 *   - watch: one subscription to +switch-master on one sentinel, kept
 *     open (a lost one moves on to the next sentinel, with capped backoff);
 *     each time it is made, that sentinel is also asked for the master's
 *     address, so a switch missed while it was down is noticed too.
 *
 * Sentinels are asked without credentials; one that answers NOAUTH is
 * asked again after AUTH with the URL's user and password (as in
 * common/sentinel.h). Nothing here decides what to do: results go to the
 * callbacks, which always run from their own loop event, never from inside
 * a hiredis callback, so they may do anything, gw_sentinel_free included. */
#ifndef CHATMI_GATEWAY_SENTINEL_H
#define CHATMI_GATEWAY_SENTINEL_H

#include "common/redis_url.h"

struct event_base;
struct gw_sentinel;

struct gw_sentinel_cb {
    /* A discovery round ended. Success: master is the address and from the
     * sentinel that gave it, why is NULL. Failure: master and from are
     * NULL, why says what each sentinel did. */
    void (*found)(void *arg, const struct cm_redis_addr *master, const struct cm_redis_addr *from, const char *why);
    /* A sentinel (from) says the master is at master now: a +switch-master
     * announcement, or its answer when the watch was (re)made. May repeat
     * what is already known. */
    void (*moved)(void *arg, const struct cm_redis_addr *master, const struct cm_redis_addr *from);
};

/* For url (CM_REDIS_SENTINEL; borrowed, must outlive the object). Starts
 * the watch at once. NULL when out of memory. */
struct gw_sentinel *gw_sentinel_new(struct event_base *base, const struct cm_redis_url *url,
                                    const struct gw_sentinel_cb *cb, void *arg);

/* Starts a discovery round, unless one is running (its result will do). */
void gw_sentinel_discover(struct gw_sentinel *s);

/* Closes every connection (no callback runs afterwards) and frees s. */
void gw_sentinel_free(struct gw_sentinel *s);

#endif
