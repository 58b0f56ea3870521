/* ipcount.c: per-address connection counts of one child (ipcount.h). */
#include "gateway/ipcount.h"

#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t x)
{
    /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t bucket_of(const struct gw_ipcount *t, const struct gw_addr *key)
{
    uint64_t hi, lo;
    memcpy(&hi, key->b, 8);
    memcpy(&lo, key->b + 8, 8);
    return (size_t)(mix(mix(hi ^ t->seed) ^ lo) & (t->nbuckets - 1));
}

int gw_ipcount_init(struct gw_ipcount *t, size_t nbuckets, uint64_t seed)
{
    size_t n = 16;
    memset(t, 0, sizeof(*t));
    while (n < nbuckets)
        n *= 2;
    t->buckets = calloc(n, sizeof(*t->buckets));
    if (t->buckets == NULL)
        return -1;
    t->nbuckets = n;
    t->seed = seed;
    return 0;
}

void gw_ipcount_free(struct gw_ipcount *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct gw_ipcount_entry *e = t->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

static struct gw_ipcount_entry *find(const struct gw_ipcount *t, const struct gw_addr *key, size_t b)
{
    for (struct gw_ipcount_entry *e = t->buckets[b]; e != NULL; e = e->next)
        if (memcmp(&e->key, key, sizeof(*key)) == 0)
            return e;
    return NULL;
}

enum gw_ipcount_result gw_ipcount_acquire(struct gw_ipcount *t, const struct gw_addr *addr, uint32_t max,
                                          struct gw_ipcount_entry **entry)
{
    struct gw_addr key;
    gw_addr_limit_key(addr, &key);
    size_t b = bucket_of(t, &key);
    struct gw_ipcount_entry *e = find(t, &key, b);
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            return GW_IPCOUNT_NOMEM;
        e->key = key;
        e->next = t->buckets[b];
        t->buckets[b] = e;
        t->nentries++;
    }
    if (max > 0 && e->count >= max)
        return GW_IPCOUNT_FULL; /* count >= max >= 1: the entry is in use, nothing to free */
    e->count++;
    *entry = e;
    return GW_IPCOUNT_OK;
}

void gw_ipcount_release(struct gw_ipcount *t, struct gw_ipcount_entry *e)
{
    if (e->count > 0)
        e->count--;
    if (e->count > 0)
        return;
    size_t b = bucket_of(t, &e->key);
    for (struct gw_ipcount_entry **p = &t->buckets[b]; *p != NULL; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            t->nentries--;
            free(e);
            return;
        }
}

uint32_t gw_ipcount_get(const struct gw_ipcount *t, const struct gw_addr *addr)
{
    struct gw_addr key;
    gw_addr_limit_key(addr, &key);
    const struct gw_ipcount_entry *e = find(t, &key, bucket_of(t, &key));
    return e != NULL ? e->count : 0;
}
