/* ipcount.h: connections per client address in one gateway child, for
 * --max-conns-per-ip. A small hash table keyed by gw_addr_limit_key (IPv4
 * address, IPv6 /64), with a per-table random seed so a client cannot pick
 * addresses that pile into one chain. An entry lives while its count is
 * above zero; a connection holds a pointer to its entry. */
#ifndef CHATMI_GATEWAY_IPCOUNT_H
#define CHATMI_GATEWAY_IPCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/clientip.h"

struct gw_ipcount_entry {
    struct gw_ipcount_entry *next;
    struct gw_addr key;
    uint32_t count;
};

struct gw_ipcount {
    struct gw_ipcount_entry **buckets;
    size_t nbuckets;   /* a power of two */
    size_t nentries;
    uint64_t seed;
};

/* 0, or -1 when out of memory. nbuckets is rounded up to a power of two. */
int gw_ipcount_init(struct gw_ipcount *t, size_t nbuckets, uint64_t seed);
void gw_ipcount_free(struct gw_ipcount *t);

enum gw_ipcount_result { GW_IPCOUNT_OK = 0, GW_IPCOUNT_FULL = 1, GW_IPCOUNT_NOMEM = -1 };

/* Counts one more connection from addr unless it already has max (0: no
 * limit). On GW_IPCOUNT_OK, *entry is what gw_ipcount_release takes. */
enum gw_ipcount_result gw_ipcount_acquire(struct gw_ipcount *t, const struct gw_addr *addr, uint32_t max,
                                          struct gw_ipcount_entry **entry);

/* Counts one connection less; frees the entry at zero. */
void gw_ipcount_release(struct gw_ipcount *t, struct gw_ipcount_entry *e);

/* Connections counted for addr now (tests, logs). */
uint32_t gw_ipcount_get(const struct gw_ipcount *t, const struct gw_addr *addr);

#endif
