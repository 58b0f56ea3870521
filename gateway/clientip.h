/* clientip.h: who the client is. Addresses are kept as 16 bytes (IPv4 as
 * ::ffff:a.b.c.d), trusted proxies as a list of CIDRs, and the client of a
 * request relayed by a trusted proxy is read from X-Forwarded-For. Pure:
 * no I/O. */
#ifndef CHATMI_GATEWAY_CLIENTIP_H
#define CHATMI_GATEWAY_CLIENTIP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gateway/http.h"

#define GW_ADDR_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

struct gw_addr {
    uint8_t b[16];
};

struct gw_cidr {
    struct gw_addr net; /* host bits cleared */
    uint8_t bits;       /* prefix length over the 16 bytes (an IPv4 /24 is 120) */
};

struct gw_cidrs {
    struct gw_cidr *v;
    size_t n;
};

/* Parses "10.0.0.0/16, 2001:db8::/32, 192.0.2.7" (a bare address is a /32
 * or /128) into out (caller frees with gw_cidrs_free). NULL or "" gives an
 * empty list. Returns 0, or -1 with a reason in err. */
int gw_cidrs_parse(const char *text, struct gw_cidrs *out, char *err, size_t errlen);
void gw_cidrs_free(struct gw_cidrs *l);

/* 1 when a is inside one of the CIDRs. */
int gw_cidrs_match(const struct gw_cidrs *l, const struct gw_addr *a);

/* Parses one textual address (IPv4 or IPv6, blanks not allowed). 0 or -1. */
int gw_addr_parse(const char *s, size_t len, struct gw_addr *out);

/* From accept()'s address; an unknown family gives ::. */
void gw_addr_from_sockaddr(const struct sockaddr *sa, struct gw_addr *out);

/* Dotted quad for IPv4, RFC 5952 text for IPv6. out: GW_ADDR_TEXT_MAX bytes. */
void gw_addr_format(const struct gw_addr *a, char *out, size_t outlen);

/* The key per-IP limits count by: the address itself for IPv4, its /64 for
 * IPv6 (one subscriber usually holds a whole /64). */
void gw_addr_limit_key(const struct gw_addr *a, struct gw_addr *key);

/* The client of a request that arrived from peer. X-Forwarded-For is read
 * only when peer is a trusted proxy: walking its entries from the right
 * (every X-Forwarded-For header, in order, as one list), each trusted
 * address is skipped and the first untrusted one is the client. When every
 * entry is trusted, the leftmost one is the client; an entry that is not an
 * address stops the walk and the last trusted hop is the client (an
 * attacker can write anything left of what the proxy appended). */
void gw_client_addr(const struct gw_addr *peer, const struct gw_cidrs *trusted,
                    const struct gw_http_request *req, struct gw_addr *client);

#endif
