/* route.c: command routing and partition lists of route.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/cluster.h"
#include "worker/route.h"

static int word_is(const char *p, size_t len, const char *w)
{
    return len == strlen(w) && strncasecmp(p, w, len) == 0;
}

unsigned wk_route_slot(int argc, const char *const *argv, const size_t *argvlen, unsigned pin)
{
    static const char *const keyless[] = {"MULTI", "EXEC", "DISCARD", "ROLE", "WAIT", "SCRIPT", "PING",
                                          "ASKING", "CLUSTER", "INFO"};
    if (argc < 1)
        return pin;
    for (size_t i = 0; i < sizeof keyless / sizeof keyless[0]; i++)
        if (word_is(argv[0], argvlen[0], keyless[i]))
            return pin;
    if (word_is(argv[0], argvlen[0], "EVALSHA") || word_is(argv[0], argvlen[0], "EVAL")) {
        if (argc < 4 || (argvlen[2] == 1 && argv[2][0] == '0'))
            return pin;
        return cm_key_slot(argv[3], argvlen[3]);
    }
    if (argc < 2)
        return pin;
    return cm_key_slot(argv[1], argvlen[1]);
}

long wk_fanned_bit(long long seq, unsigned part)
{
    return (long)(((unsigned long long)seq * WK_FANNED_PARTS + part) % WK_FANNED_RING);
}

/* One decimal number of at most 3 digits; the end of it, or NULL. */
static const char *parse_index(const char *p, unsigned *out)
{
    unsigned v = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9' && p - start < 4)
        v = v * 10 + (unsigned)(*p++ - '0');
    if (p == start || p - start > 3)
        return NULL;
    *out = v;
    return p;
}

int wk_partitions_parse(const char *s, unsigned n, unsigned char *take, char *err, size_t errlen)
{
    for (unsigned p = 0; p < n; p++)
        take[p] = 0;
    if (s == NULL || *s == '\0' || strcmp(s, "all") == 0) {
        for (unsigned p = 0; p < n; p++)
            take[p] = 1;
        return (int)n;
    }
    int count = 0;
    for (const char *p = s;;) {
        unsigned lo, hi;
        const char *q = parse_index(p, &lo);
        if (q == NULL)
            goto bad;
        hi = lo;
        if (*q == '-' && (q = parse_index(q + 1, &hi)) == NULL)
            goto bad;
        if (hi < lo) {
            snprintf(err, errlen, "range %u-%u runs backwards", lo, hi);
            return -1;
        }
        if (hi >= n) {
            snprintf(err, errlen, "partition %u does not exist: --queue-partitions %u numbers them 0 to %u", hi, n,
                     n - 1);
            return -1;
        }
        for (unsigned i = lo; i <= hi; i++) {
            if (take[i]) {
                snprintf(err, errlen, "partition %u is named twice", i);
                return -1;
            }
            take[i] = 1;
            count++;
        }
        if (*q == '\0')
            return count;
        if (*q != ',')
            goto bad;
        p = q + 1;
    }
bad:
    snprintf(err, errlen, "expected all, or partitions and ranges separated by commas (0-3,6), got \"%.64s\"", s);
    return -1;
}
