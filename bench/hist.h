/* hist.h: a log-bucket histogram of non-negative 64-bit values (chatmi-bench
 * records nanoseconds in it).
 *
 * Values below 32 have a bucket each; above, every power of two is split
 * into 32 equal buckets, so a bucket is at most 1/32 (3.1 %) wide relative
 * to its values. The largest bucket starts at 2^43 (2.4 hours in ns); larger
 * values fall into it. min, max, count and sum are kept exactly. The struct
 * is plain data: copy it, send it through a pipe, add two together. */
#ifndef CHATMI_BENCH_HIST_H
#define CHATMI_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define BN_HIST_SUB_BITS 5
#define BN_HIST_SUB (1u << BN_HIST_SUB_BITS)
#define BN_HIST_MAX_EXP 43
#define BN_HIST_BUCKETS ((BN_HIST_MAX_EXP - BN_HIST_SUB_BITS + 2) * BN_HIST_SUB)

struct bn_hist {
    uint64_t count;
    uint64_t min, max; /* min is UINT64_MAX while count is 0 */
    double sum;
    uint32_t buckets[BN_HIST_BUCKETS];
};

void bn_hist_init(struct bn_hist *h);
void bn_hist_add(struct bn_hist *h, uint64_t v);
/* Adds every value recorded in src to dst. */
void bn_hist_merge(struct bn_hist *dst, const struct bn_hist *src);

/* The bucket of v, and the smallest and largest value a bucket holds. */
size_t bn_hist_index(uint64_t v);
uint64_t bn_hist_bucket_low(size_t idx);
uint64_t bn_hist_bucket_high(size_t idx);

/* The value at quantile q (0 < q <= 1): the upper bound of the bucket that
 * holds the ceil(q * count)-th smallest value, clamped to [min, max], so
 * the answer is never below the true value and at most 3.1 % above it.
 * q = 1 gives max exactly. 0 when the histogram is empty. */
uint64_t bn_hist_quantile(const struct bn_hist *h, double q);

double bn_hist_mean(const struct bn_hist *h);

#endif
