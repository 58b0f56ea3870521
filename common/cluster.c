/* cluster.c: hash slots, the slot map, redirections and queue partition
 * tags (cluster.h). */
#include "common/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint16_t cm_crc16(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned cm_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t start = (size_t)(open - key) + 1;
        const char *close = memchr(key + start, '}', len - start);
        if (close != NULL && close > key + start)
            return cm_crc16(key + start, (size_t)(close - key - start)) & (CM_SLOTS - 1);
    }
    return cm_crc16(key, len) & (CM_SLOTS - 1);
}

void cm_slot_map_single(struct cm_slot_map *m, const struct cm_redis_addr *addr)
{
    memset(m->node, 0, sizeof(m->node[0]));
    m->node[0].addr = *addr;
    m->nnodes = 1;
    for (size_t s = 0; s < CM_SLOTS; s++)
        m->owner[s] = 0;
}

static int reply_int(const redisReply *r, long long *out)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        return -1;
    *out = r->integer;
    return 0;
}

/* The index of the master described by [host, port, id, ...], added when
 * new; -1 when malformed or the table is full. */
static int node_index(struct cm_slot_map *m, const redisReply *n, const struct cm_redis_addr *asked, char *err,
                      size_t errlen)
{
    long long port;
    if (n == NULL || n->type != REDIS_REPLY_ARRAY || n->elements < 2 || n->element[0]->type != REDIS_REPLY_STRING ||
        reply_int(n->element[1], &port) < 0 || port <= 0 || port > 65535) {
        snprintf(err, errlen, "CLUSTER SLOTS: a node entry is not [host, port, ...]");
        return -1;
    }
    struct cm_cluster_node node;
    memset(&node, 0, sizeof(node));
    const redisReply *h = n->element[0];
    if (h->len == 0 || (h->len == 1 && h->str[0] == '?')) {
        if (asked == NULL) {
            snprintf(err, errlen, "CLUSTER SLOTS: a node has no known host");
            return -1;
        }
        snprintf(node.addr.host, sizeof(node.addr.host), "%s", asked->host);
    } else if (h->len >= sizeof(node.addr.host)) {
        snprintf(err, errlen, "CLUSTER SLOTS: a host name is too long");
        return -1;
    } else {
        memcpy(node.addr.host, h->str, h->len);
    }
    node.addr.port = (int)port;
    if (n->elements >= 3 && n->element[2]->type == REDIS_REPLY_STRING && n->element[2]->len <= CM_NODE_ID_MAX)
        memcpy(node.id, n->element[2]->str, n->element[2]->len);

    for (size_t i = 0; i < m->nnodes; i++)
        if (cm_redis_addr_eq(&m->node[i].addr, &node.addr))
            return (int)i;
    if (m->nnodes == CM_CLUSTER_NODES_MAX) {
        snprintf(err, errlen, "CLUSTER SLOTS: more than %d masters", CM_CLUSTER_NODES_MAX);
        return -1;
    }
    m->node[m->nnodes] = node;
    return (int)m->nnodes++;
}

int cm_slot_map_parse(struct cm_slot_map *m, const redisReply *r, const struct cm_redis_addr *asked, char *err,
                      size_t errlen)
{
    m->nnodes = 0;
    for (size_t s = 0; s < CM_SLOTS; s++)
        m->owner[s] = CM_SLOT_NONE;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "CLUSTER SLOTS: %s", r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        long long lo, hi;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || reply_int(e->element[0], &lo) < 0 ||
            reply_int(e->element[1], &hi) < 0 || lo < 0 || hi < lo || hi >= CM_SLOTS) {
            snprintf(err, errlen, "CLUSTER SLOTS: entry %zu is not [start, end, master, ...]", i);
            return -1;
        }
        int idx = node_index(m, e->element[2], asked, err, errlen);
        if (idx < 0)
            return -1;
        for (long long s = lo; s <= hi; s++)
            m->owner[s] = (uint16_t)idx;
    }
    if (m->nnodes == 0) {
        snprintf(err, errlen, "CLUSTER SLOTS: no slot is served");
        return -1;
    }
    return 0;
}

const struct cm_cluster_node *cm_slot_map_node(const struct cm_slot_map *m, unsigned slot)
{
    if (slot >= CM_SLOTS || m->owner[slot] == CM_SLOT_NONE || m->owner[slot] >= m->nnodes)
        return NULL;
    return &m->node[m->owner[slot]];
}

int cm_slot_map_find(const struct cm_slot_map *m, const struct cm_redis_addr *addr)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (cm_redis_addr_eq(&m->node[i].addr, addr))
            return (int)i;
    return -1;
}

size_t cm_slot_map_uncovered(const struct cm_slot_map *m)
{
    size_t n = 0;
    for (size_t s = 0; s < CM_SLOTS; s++)
        n += m->owner[s] == CM_SLOT_NONE || m->owner[s] >= m->nnodes;
    return n;
}

enum cm_redirect cm_redirect_parse(const char *err, size_t len, unsigned *slot, struct cm_redis_addr *to)
{
    enum cm_redirect kind;
    size_t skip;
    if (len > 6 && memcmp(err, "MOVED ", 6) == 0) {
        kind = CM_REDIRECT_MOVED;
        skip = 6;
    } else if (len > 4 && memcmp(err, "ASK ", 4) == 0) {
        kind = CM_REDIRECT_ASK;
        skip = 4;
    } else {
        return CM_REDIRECT_NONE;
    }
    const char *p = err + skip, *end = err + len;
    unsigned long s = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && p - digits < 6)
        s = s * 10 + (unsigned long)(*p++ - '0');
    if (p == digits || p == end || *p != ' ' || s >= CM_SLOTS)
        return CM_REDIRECT_NONE;
    p++;
    /* host:port, the port after the last ':' (an IPv6 host holds colons) */
    const char *colon = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == ':')
            colon = q;
    if (colon == NULL || colon == p || colon + 1 == end || end - colon - 1 > 5)
        return CM_REDIRECT_NONE;
    long port = 0;
    for (const char *q = colon + 1; q < end; q++) {
        if (*q < '0' || *q > '9')
            return CM_REDIRECT_NONE;
        port = port * 10 + (*q - '0');
    }
    const char *hs = p, *he = colon;
    if (*hs == '[' && he > hs + 1 && he[-1] == ']') {
        hs++;
        he--;
    }
    if (port <= 0 || port > 65535 || (size_t)(he - hs) >= sizeof(to->host) || he == hs)
        return CM_REDIRECT_NONE;
    memcpy(to->host, hs, (size_t)(he - hs));
    to->host[he - hs] = '\0';
    to->port = (int)port;
    *slot = (unsigned)s;
    return kind;
}

void cm_queue_tag(char *out, unsigned p, unsigned n)
{
    if (n <= 1) {
        snprintf(out, CM_QUEUE_TAG_MAX, "q");
        return;
    }
    unsigned lo = (unsigned)((unsigned long)p * CM_SLOTS / n);
    unsigned hi = (unsigned)((unsigned long)(p + 1) * CM_SLOTS / n);
    /* A range of 16384/256 = 64 slots is hit with probability 1/256 per
     * try: 100,000 tries miss it with a chance below e^-390. */
    for (unsigned k = 0; k < 100000; k++) {
        int len = snprintf(out, CM_QUEUE_TAG_MAX, "q%u.%u", p, k);
        unsigned s = cm_key_slot(out, (size_t)len);
        if (s >= lo && s < hi)
            return;
    }
    snprintf(out, CM_QUEUE_TAG_MAX, "q%u", p);
}

unsigned cm_queue_partition(const char *user, size_t len, unsigned n)
{
    if (n <= 1)
        return 0;
    return cm_crc16(user, len) % n;
}
