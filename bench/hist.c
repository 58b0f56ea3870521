/* hist.c: log-bucket histogram (hist.h). */
#include "bench/hist.h"

#include <math.h>
#include <string.h>

void bn_hist_init(struct bn_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

size_t bn_hist_index(uint64_t v)
{
    if (v < BN_HIST_SUB)
        return (size_t)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v); /* floor(log2 v) >= SUB_BITS */
    if (m > BN_HIST_MAX_EXP)
        return BN_HIST_BUCKETS - 1;
    uint64_t top = v >> (m - BN_HIST_SUB_BITS); /* in [SUB, 2 SUB) */
    return (size_t)(m - BN_HIST_SUB_BITS + 1) * BN_HIST_SUB + (size_t)(top - BN_HIST_SUB);
}

uint64_t bn_hist_bucket_low(size_t idx)
{
    if (idx < BN_HIST_SUB)
        return idx;
    unsigned octave = (unsigned)(idx / BN_HIST_SUB); /* >= 1 */
    uint64_t top = BN_HIST_SUB + idx % BN_HIST_SUB;
    return top << (octave - 1);
}

uint64_t bn_hist_bucket_high(size_t idx)
{
    if (idx < BN_HIST_SUB)
        return idx;
    if (idx >= BN_HIST_BUCKETS - 1)
        return UINT64_MAX;
    unsigned octave = (unsigned)(idx / BN_HIST_SUB);
    uint64_t top = BN_HIST_SUB + idx % BN_HIST_SUB;
    return ((top + 1) << (octave - 1)) - 1;
}

void bn_hist_add(struct bn_hist *h, uint64_t v)
{
    h->buckets[bn_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bn_hist_merge(struct bn_hist *dst, const struct bn_hist *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < BN_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bn_hist_quantile(const struct bn_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    double r = ceil(q * (double)h->count);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    uint64_t seen = 0;
    for (size_t i = 0; i < BN_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bn_hist_bucket_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double bn_hist_mean(const struct bn_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}
