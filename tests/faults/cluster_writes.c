/* cluster_writes.c: the harness's cluster faults under a plain Redis write
 * load, without chatmi.
 *
 * Why: cluster_master_kill and cluster_reshard kill masters and move slots
 * while chatmi writes to them, and cannot run until the programs take
 * redis+cluster:// URLs. This case proves now that the harness's part holds
 * under writes to the very slots those cases pick (the room conversation's
 * and some users'): a writer thread INCRs keys in them the way a cluster
 * client does (following MOVED, ASKING after ASK, retrying TRYAGAIN and
 * CLUSTERDOWN), while redis-cli --cluster reshard moves the slots away and
 * rebalance brings them back, and then while the master of the room's slot
 * is killed. Slot moves must lose no increment (every key's value equals
 * the INCRs answered); after the failover, writes must go on. It reports
 * the longest time one key went without an answered write, a client's view
 * of each fault. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "itest.h"

#define CW_MAX_KEYS 8
#define CW_MAX_NODES 12

struct cw_writer {
    pthread_t thread;
    atomic_int running;
    int ports[CW_MAX_NODES]; /* every node, to start from and to fall back on */
    int nports;
    const char *keys[CW_MAX_KEYS];
    int nkeys;
    pthread_mutex_t mu;      /* guards what follows */
    long acked[CW_MAX_KEYS]; /* INCRs answered with an integer */
    long skipped[CW_MAX_KEYS]; /* a reply value other than the last + 1 */
    long long last[CW_MAX_KEYS];
    long redirects, retries, unknown; /* unknown: sent, no answer (connection lost) */
    int64_t last_ok_ms[CW_MAX_KEYS], max_gap_ms[CW_MAX_KEYS]; /* per key: its slot's unavailability */
};

/* A connection per port, reused. */
struct cw_conns {
    int port[CW_MAX_NODES];
    redisContext *c[CW_MAX_NODES];
};

static redisContext *conn_to(struct cw_conns *cs, int port)
{
    int free_slot = -1;
    for (int i = 0; i < CW_MAX_NODES; i++) {
        if (cs->c[i] != NULL && cs->port[i] == port)
            return cs->c[i];
        if (cs->c[i] == NULL && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0)
        return NULL;
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    cs->c[free_slot] = c;
    cs->port[free_slot] = port;
    return c;
}

static void conn_drop(struct cw_conns *cs, redisContext *c)
{
    for (int i = 0; i < CW_MAX_NODES; i++)
        if (cs->c[i] == c) {
            redisFree(c);
            cs->c[i] = NULL;
        }
}

static int redirect_to(const redisReply *r, int *ask)
{
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    *ask = strncmp(r->str, "ASK ", 4) == 0;
    if (!*ask && strncmp(r->str, "MOVED ", 6) != 0)
        return 0;
    const char *colon = strrchr(r->str, ':');
    return colon != NULL ? atoi(colon + 1) : 0;
}

static void *writer_main(void *arg)
{
    struct cw_writer *w = arg;
    struct cw_conns cs;
    memset(&cs, 0, sizeof(cs));
    int owner[CW_MAX_KEYS];
    for (int k = 0; k < w->nkeys; k++)
        owner[k] = w->ports[0];
    unsigned seed = 7;
    for (long n = 0; atomic_load(&w->running); n++) {
        int k = (int)(n % w->nkeys);
        int port = owner[k], ask = 0, done = 0;
        for (int hop = 0; hop < 5 && !done; hop++) {
            redisContext *c = conn_to(&cs, port);
            if (c == NULL) {
                /* that node is gone: ask another one (it redirects) */
                port = owner[k] = w->ports[rand_r(&seed) % (unsigned)w->nports];
                it_pause_ms(10); /* paces reconnects to a dead node */
                continue;
            }
            if (ask) {
                redisReply *a = redisCommand(c, "ASKING");
                if (a != NULL)
                    freeReplyObject(a);
            }
            redisReply *r = redisCommand(c, "INCR %s", w->keys[k]);
            if (r == NULL) {
                pthread_mutex_lock(&w->mu);
                w->unknown++;
                pthread_mutex_unlock(&w->mu);
                conn_drop(&cs, c);
                break;
            }
            int next = redirect_to(r, &ask);
            if (r->type == REDIS_REPLY_INTEGER) {
                int64_t now = it_mono_ms();
                pthread_mutex_lock(&w->mu);
                if (w->acked[k] > 0 && r->integer != w->last[k] + 1)
                    w->skipped[k]++;
                w->last[k] = r->integer;
                w->acked[k]++;
                if (w->last_ok_ms[k] > 0 && now - w->last_ok_ms[k] > w->max_gap_ms[k])
                    w->max_gap_ms[k] = now - w->last_ok_ms[k];
                w->last_ok_ms[k] = now;
                pthread_mutex_unlock(&w->mu);
                done = 1;
            } else if (next > 0) {
                pthread_mutex_lock(&w->mu);
                w->redirects++;
                pthread_mutex_unlock(&w->mu);
                if (!ask)
                    owner[k] = next;
                port = next;
            } else {
                /* TRYAGAIN (a slot half moved), CLUSTERDOWN (a failover): later */
                pthread_mutex_lock(&w->mu);
                w->retries++;
                pthread_mutex_unlock(&w->mu);
                done = 1;
                it_pause_ms(5); /* paces the retry of a refused write */
            }
            freeReplyObject(r);
        }
    }
    for (int i = 0; i < CW_MAX_NODES; i++)
        if (cs.c[i] != NULL)
            redisFree(cs.c[i]);
    return NULL;
}

static void writer_start(struct cw_writer *w, const char *const *keys, int nkeys)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    for (int i = 0; i < it_cluster_nodes() && w->nports < CW_MAX_NODES; i++)
        if (it_cluster_alive(i))
            w->ports[w->nports++] = it_cluster_port(i);
    for (int k = 0; k < nkeys && k < CW_MAX_KEYS; k++)
        w->keys[w->nkeys++] = keys[k];
    atomic_store(&w->running, 1);
    cr_assert_eq(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

static long writer_acked(struct cw_writer *w)
{
    long n = 0;
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < w->nkeys; k++)
        n += w->acked[k];
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Waits until the writer has `more` more answered INCRs (asserted). */
static void writer_more(struct cw_writer *w, long more, const char *after)
{
    long want = writer_acked(w) + more;
    int64_t deadline = it_mono_ms() + it_ms(30000);
    while (writer_acked(w) < want && it_mono_ms() < deadline)
        it_pause_ms(10); /* paces the check of a counter the writer raises */
    cr_assert_geq(writer_acked(w), want, "%s: the writer got %ld of %ld more INCRs answered within %d ms", after,
                  writer_acked(w) - (want - more), more, it_ms(30000));
}

/* The longest time any one key went without an answered INCR since the
 * last call (and resets it): the longest a slot was not writable. */
static long writer_gap(struct cw_writer *w)
{
    long g = 0;
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < w->nkeys; k++) {
        if (w->max_gap_ms[k] > g)
            g = (long)w->max_gap_ms[k];
        w->max_gap_ms[k] = 0;
    }
    pthread_mutex_unlock(&w->mu);
    return g;
}

static void writer_stop(struct cw_writer *w)
{
    atomic_store(&w->running, 0);
    pthread_join(w->thread, NULL);
}

Test(faults, cluster_harness_under_writes, .timeout = 180)
{
    it_cluster_start(3, 1);
    const char *keys[] = {"chatmi:{c:room:load}:seq", "chatmi:{u:c0}:n", "chatmi:{u:c1}:n", "chatmi:{u:c5}:n",
                          "chatmi:{c:dm:c0:c1}:seq", "chatmi:{q}:n"};
    const int nkeys = 6;
    static struct cw_writer w;
    writer_start(&w, keys, nkeys);
    writer_more(&w, 500, "start");
    writer_gap(&w);

    /* what cluster_reshard does: from's lowest slots up to the room's and
     * the users' below it, then back by rebalance */
    static int map[16384];
    it_cluster_slot_map(map);
    int room_slot = it_cluster_keyslot("chatmi:{c:room:load}");
    int from = map[room_slot], m[8];
    int nm = it_cluster_masters(m, 8);
    cr_assert_geq(nm, 2);
    int to = m[0] != from ? m[0] : m[1];
    int nslots = 0;
    for (int s = 0; s <= room_slot; s++)
        nslots += map[s] == from;
    for (int k = 1; k <= 3; k++) {
        int s = it_cluster_keyslot(keys[k]), below = 0;
        for (int t = 0; t <= s; t++)
            below += map[t] == from;
        if (map[s] == from && below <= 2000 && below > nslots)
            nslots = below;
    }
    long t_reshard = it_cluster_reshard(from, to, nslots);
    cr_assert_eq(it_cluster_slot_owner(room_slot), to, "the room's slot %d did not move", room_slot);
    writer_more(&w, 500, "after the reshard");
    long gap_reshard = writer_gap(&w);
    long t_rebalance = it_cluster_rebalance();
    writer_more(&w, 500, "after the rebalance");
    long gap_rebalance = writer_gap(&w);
    writer_stop(&w);

    /* nothing lost or counted twice while slots moved */
    long total = 0, redirects = w.redirects, retries = w.retries;
    for (int k = 0; k < nkeys; k++) {
        char out[64];
        const char *get[] = {"GET", keys[k], NULL};
        cr_assert_eq(it_redis_cli(it_redis_port(), get, out, sizeof(out)), 0, "%s", out);
        cr_assert_eq(atol(out), w.acked[k], "%s is %ld after %ld answered INCRs", keys[k], atol(out), w.acked[k]);
        cr_assert_eq(w.skipped[k], 0, "%s: %ld INCR answers out of sequence", keys[k], w.skipped[k]);
        total += w.acked[k];
    }
    cr_assert_eq(w.unknown, 0, "%ld INCRs lost their connection while slots moved", w.unknown);

    /* what cluster_master_kill does first: the room slot's master dies */
    static struct cw_writer w2;
    writer_start(&w2, keys, nkeys);
    writer_more(&w2, 500, "before the kill");
    writer_gap(&w2);
    int victim = it_cluster_slot_owner(room_slot), promoted = -1;
    long t_failover = it_cluster_kill_master(victim, &promoted);
    writer_more(&w2, 500, "after the failover");
    long gap_failover = writer_gap(&w2);
    it_cluster_restart_node(victim);
    writer_more(&w2, 500, "after the killed node came back");
    writer_stop(&w2);
    fprintf(stderr,
            "faults: cluster_harness_under_writes: reshard of %d slots %ld ms (longest unanswered write %ld ms), "
            "rebalance %ld ms (%ld ms); %ld INCRs exact, %ld redirections, %ld TRYAGAIN/CLUSTERDOWN retried; "
            "kill -9 master: promoted node %d, cluster ok after %ld ms, its slots took no write for %ld ms\n",
            nslots, t_reshard, gap_reshard, t_rebalance, gap_rebalance, total, redirects, retries, promoted,
            t_failover, gap_failover);
}
