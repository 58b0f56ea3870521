/* clientip.c: addresses, CIDR lists and X-Forwarded-For (clientip.h). */
#include "gateway/clientip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4(const struct gw_addr *a) { return memcmp(a->b, v4_prefix, 12) == 0; }

int gw_addr_parse(const char *s, size_t len, struct gw_addr *out)
{
    char buf[GW_ADDR_TEXT_MAX + 1];

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (memchr(buf, ':', len) == NULL) {
        struct in_addr v4;

        if (inet_pton(AF_INET, buf, &v4) != 1)
            return -1;
        memcpy(out->b, v4_prefix, 12);
        memcpy(out->b + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, out->b) == 1 ? 0 : -1;
}

void gw_addr_from_sockaddr(const struct sockaddr *sa, struct gw_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        memcpy(out->b, v4_prefix, 12);
        memcpy(out->b + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    }
}

void gw_addr_format(const struct gw_addr *a, char *out, size_t outlen)
{
    char buf[GW_ADDR_TEXT_MAX];

    if (is_v4(a))
        inet_ntop(AF_INET, a->b + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, a->b, buf, sizeof(buf));
    snprintf(out, outlen, "%s", buf);
}

void gw_addr_limit_key(const struct gw_addr *a, struct gw_addr *key)
{
    *key = *a;
    if (!is_v4(a))
        memset(key->b + 8, 0, 8);
}

static void mask_bits(struct gw_addr *a, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        if (bits >= lo + 8)
            continue;
        a->b[i] &= bits > lo ? (uint8_t)(0xff << (8 - (bits - lo))) : 0;
    }
}

static int parse_cidr(const char *s, size_t len, struct gw_cidr *c)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    struct gw_addr a;
    unsigned bits, max;

    if (gw_addr_parse(s, alen, &a) < 0)
        return -1;
    max = is_v4(&a) && memchr(s, ':', alen) == NULL ? 32 : 128;
    bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3)
            return -1;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return -1;
    }
    if (max == 32)
        bits += 96;
    mask_bits(&a, bits);
    c->net = a;
    c->bits = (uint8_t)bits;
    return 0;
}

int gw_cidrs_parse(const char *text, struct gw_cidrs *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || *text == '\0')
        return 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    out->v = calloc(cap, sizeof(*out->v));
    if (out->v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end == start)
            continue;
        if (parse_cidr(start, (size_t)(end - start), &out->v[out->n]) < 0) {
            snprintf(err, errlen, "\"%.*s\" is not an address or CIDR", (int)(end - start > 64 ? 64 : end - start),
                     start);
            gw_cidrs_free(out);
            return -1;
        }
        out->n++;
    }
    return 0;
}

void gw_cidrs_free(struct gw_cidrs *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int gw_cidrs_match(const struct gw_cidrs *l, const struct gw_addr *a)
{
    for (size_t i = 0; i < l->n; i++) {
        struct gw_addr m = *a;
        mask_bits(&m, l->v[i].bits);
        if (memcmp(&m, &l->v[i].net, sizeof(m)) == 0)
            return 1;
    }
    return 0;
}

/* Walks one header value's comma-separated entries from the right. Returns
 * 1 when the walk is over (*client decided), 0 to go on to the header on
 * its left. */
static int walk_value(const char *v, size_t len, const struct gw_cidrs *trusted, struct gw_addr *client)
{
    size_t end = len;

    for (;;) {
        size_t start = end;
        while (start > 0 && v[start - 1] != ',')
            start--;
        size_t s = start, e = end;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s) {
            struct gw_addr a;
            if (gw_addr_parse(v + s, e - s, &a) < 0)
                return 1; /* not an address: the last trusted hop is the client */
            *client = a;
            if (!gw_cidrs_match(trusted, &a))
                return 1;
        }
        if (start == 0)
            return 0;
        end = start - 1;
    }
}

void gw_client_addr(const struct gw_addr *peer, const struct gw_cidrs *trusted,
                    const struct gw_http_request *req, struct gw_addr *client)
{
    *client = *peer;
    if (trusted == NULL || !gw_cidrs_match(trusted, peer))
        return;
    for (size_t i = req->nheaders; i > 0; i--) {
        const struct gw_http_header *h = &req->headers[i - 1];
        if (h->name_len != 15 || strncasecmp(h->name, "X-Forwarded-For", 15) != 0)
            continue;
        if (walk_value(h->value, h->value_len, trusted, client))
            return;
    }
}
