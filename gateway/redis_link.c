/* redis_link.c: what a gateway child asks of Redis (redis_link.h), over
 * the links of gateway/cluster_link.h, whatever the URL scheme. */
#include <config.h>

#include "redis_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "common/cluster.h"
#include "common/keys.h"
#include "common/log.h"
#include "gateway/child.h"
#include "gateway/cluster_link.h"

#define NODE_TTL_S 15

int gw_redis_start(struct gw_child *ch)
{
    return gw_cluster_start(ch);
}

void gw_redis_stop(struct gw_child *ch)
{
    gw_cluster_stop(ch);
}

int gw_redis_ready(const struct gw_child *ch)
{
    return gw_cluster_ready(ch);
}

/* The answer of a push (cluster_link.c has looked at any error already). */
static void push_done(struct gw_child *ch, redisReply *rep, void *priv)
{
    struct gw_push_origin *o = priv;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        cm_debug("redis_push_failed", "a request may not have reached the queue: %s",
                 rep ? rep->str : "connection lost");
        gw_child_push_failed(ch, o);
    }
    free(o);
}

int gw_redis_push(struct gw_child *ch, const char *user, size_t user_len, const char *data, size_t len,
                  const struct gw_push_origin *origin)
{
    struct gw_push_origin *o = malloc(sizeof(*o));
    if (o == NULL)
        return -1;
    *o = *origin;
    char key[CM_KEY_MAX], tag[CM_QUEUE_TAG_MAX];
    unsigned n = (unsigned)ch->cfg->queue_partitions;
    cm_queue_tag(tag, cm_queue_partition(user, user_len, n), n);
    size_t klen = cm_key_queue_in(key, tag, "inbound");
    if (gw_cluster_command(ch, push_done, o, key, klen, "RPUSH %b %b", key, klen, data, len) < 0) {
        free(o);
        return -1;
    }
    return 0;
}

static void ignore_done(struct gw_child *ch, redisReply *r, void *priv)
{
    (void)ch;
    (void)priv;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        cm_warn("redis_error", "%s", r->str);
}

/* One command on the key's link that nobody waits for. */
static void send_ignored(struct gw_child *ch, const char *key, const char *fmt, const char *arg, int num)
{
    (void)gw_cluster_command(ch, ignore_done, NULL, key, strlen(key), fmt, key, arg, num);
}

/* Subscribes the channels of n ids (channel names from `channel`): one
 * SUBSCRIBE on one Redis, one SSUBSCRIBE per slot on a cluster; for users,
 * also adds this node to each one's node set. */
static void subscribe_batch(struct gw_child *ch, const char *const *ids, const size_t *lens, size_t n,
                            size_t (*channel)(char *, const char *, size_t), int user_nodes, uint8_t *links)
{
    for (size_t i = 0; i < n; i++)
        links[i] = GW_LINK_NONE;
    if (n == 0)
        return;
    const char **argv = calloc(n, sizeof(*argv));
    size_t *argvlen = calloc(n, sizeof(*argvlen));
    char *names = malloc(n * CM_KEY_MAX);
    if (argv != NULL && argvlen != NULL && names != NULL) {
        for (size_t i = 0; i < n; i++) {
            argvlen[i] = channel(names + i * CM_KEY_MAX, ids[i], lens[i]);
            argv[i] = names + i * CM_KEY_MAX;
        }
        gw_cluster_subscribe(ch, argv, argvlen, n, links);
        for (size_t i = 0; user_nodes && i < n; i++) {
            if (links[i] == GW_LINK_NONE)
                continue;
            char nodes[CM_KEY_MAX];
            cm_key_user(nodes, ids[i], "nodes");
            send_ignored(ch, nodes, "SADD %s %s", ch->node, 0);
        }
    }
    free(argv);
    free(argvlen);
    free(names);
}

void gw_redis_subscribe(struct gw_child *ch, const char *const *users, const size_t *lens, size_t n, uint8_t *links)
{
    subscribe_batch(ch, users, lens, n, cm_key_user_channel, 1, links);
}

int gw_redis_unsubscribe(struct gw_child *ch, const char *user, size_t len, uint8_t link)
{
    char chan[CM_KEY_MAX], nodes[CM_KEY_MAX];
    size_t clen = cm_key_user_channel(chan, user, len);
    cm_key_user(nodes, user, "nodes");
    send_ignored(ch, nodes, "SREM %s %s", ch->node, 0);
    return gw_cluster_unsubscribe(ch, chan, clen, link);
}

void gw_redis_heartbeat(struct gw_child *ch)
{
    char key[CM_KEY_MAX];
    cm_key_node_alive(key, ch->node);
    send_ignored(ch, key, "SET %s %s EX %d", "1", NODE_TTL_S);
}

void gw_redis_subscribe_rooms(struct gw_child *ch, const char *const *convs, const size_t *lens, size_t n,
                              uint8_t *links)
{
    subscribe_batch(ch, convs, lens, n, cm_key_conv_channel, 0, links);
}

int gw_redis_unsubscribe_room(struct gw_child *ch, const char *conv, size_t len, uint8_t link)
{
    char chan[CM_KEY_MAX];
    size_t clen = cm_key_conv_channel(chan, conv, len);
    return gw_cluster_unsubscribe(ch, chan, clen, link);
}

/* What a read on the command link is for, until its answer. */
struct read_for {
    uint32_t id;
    uint8_t len;
    char name[CM_CONV_MAX + 1];
};

/* A read for name (the key's master is checked when sending). */
static struct read_for *read_begin(const char *name, size_t len, uint32_t id)
{
    struct read_for *f = malloc(sizeof(*f));
    if (f == NULL || len > CM_CONV_MAX) {
        free(f);
        return NULL;
    }
    f->id = id;
    f->len = (uint8_t)len;
    memcpy(f->name, name, len);
    f->name[len] = '\0';
    return f;
}

/* Sends "cmd key" with f for done; f is freed when that fails. 0 or -1. */
static int read_send(struct gw_child *ch, gw_cluster_cb *done, struct read_for *f, const char *cmd, const char *key)
{
    int rc = gw_cluster_command(ch, done, f, key, strlen(key), "%s %s", cmd, key);
    if (rc < 0)
        free(f);
    return rc;
}

static void rooms_done(struct gw_child *ch, redisReply *rep, void *priv)
{
    struct read_for *f = priv;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL)
            cm_warn("redis_error", "reading %s's rooms: %s", f->name,
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        gw_rooms_on_loaded(ch, f->name, f->len, f->id, NULL, NULL, 0);
        free(f);
        return;
    }
    const char **members = malloc((rep->elements + 1) * sizeof(*members));
    size_t *lens = malloc((rep->elements + 1) * sizeof(*lens));
    size_t n = 0;
    for (size_t i = 0; members != NULL && lens != NULL && i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_STRING) {
            members[n] = rep->element[i]->str;
            lens[n++] = rep->element[i]->len;
        }
    }
    if (members != NULL && lens != NULL)
        gw_rooms_on_loaded(ch, f->name, f->len, f->id, members, lens, n);
    else
        gw_rooms_on_loaded(ch, f->name, f->len, f->id, NULL, NULL, 0);
    free(members);
    free(lens);
    free(f);
}

int gw_redis_load_rooms(struct gw_child *ch, const char *user, size_t len, uint32_t id)
{
    struct read_for *f = read_begin(user, len, id);
    if (f == NULL)
        return -1;
    char key[CM_KEY_MAX];
    cm_key_user(key, f->name, "rooms");
    return read_send(ch, rooms_done, f, "SMEMBERS", key);
}

static void room_seq_done(struct gw_child *ch, redisReply *rep, void *priv)
{
    struct read_for *f = priv;
    long long value = -1;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING)
        value = strtoll(rep->str, NULL, 10);
    else if (rep != NULL && rep->type == REDIS_REPLY_NIL)
        value = 0;
    else if (rep != NULL)
        cm_warn("redis_error", "reading the seq of %s: %s", f->name,
                rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    gw_rooms_on_seq(ch, f->name, f->len, value);
    free(f);
}

int gw_redis_room_seq(struct gw_child *ch, const char *conv, size_t len)
{
    struct read_for *f = read_begin(conv, len, 0);
    if (f == NULL)
        return -1;
    char key[CM_KEY_MAX];
    cm_key_conv(key, f->name, "seq");
    return read_send(ch, room_seq_done, f, "GET", key);
}
