/* Log-bucket histogram: bucket bounds, quantiles, merging. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "bench/hist.h"

Test(hist, buckets_tile_the_range)
{
    for (size_t i = 0; i + 1 < BN_HIST_BUCKETS; i++) {
        uint64_t lo = bn_hist_bucket_low(i), hi = bn_hist_bucket_high(i);
        cr_assert_leq(lo, hi, "bucket %zu", i);
        cr_assert_eq(bn_hist_index(lo), i, "low of bucket %zu", i);
        cr_assert_eq(bn_hist_index(hi), i, "high of bucket %zu", i);
        cr_assert_eq(hi + 1, bn_hist_bucket_low(i + 1), "bucket %zu ends where %zu starts", i, i + 1);
    }
    cr_assert_eq(bn_hist_index(UINT64_MAX), BN_HIST_BUCKETS - 1);
}

Test(hist, bucket_width_is_within_a_32nd)
{
    for (size_t i = BN_HIST_SUB; i + 1 < BN_HIST_BUCKETS; i++) {
        double lo = (double)bn_hist_bucket_low(i), hi = (double)bn_hist_bucket_high(i);
        cr_assert_leq((hi - lo) / lo, 1.0 / 32, "bucket %zu is [%g, %g]", i, lo, hi);
    }
}

Test(hist, empty_gives_zero)
{
    struct bn_hist h;
    bn_hist_init(&h);
    cr_assert_eq(bn_hist_quantile(&h, 0.5), 0);
    cr_assert_eq(bn_hist_quantile(&h, 1.0), 0);
    cr_assert_eq(bn_hist_mean(&h), 0);
}

Test(hist, one_value_is_exact_at_every_quantile)
{
    struct bn_hist h;
    bn_hist_init(&h);
    bn_hist_add(&h, 123456789);
    cr_assert_eq(bn_hist_quantile(&h, 0.5), 123456789);
    cr_assert_eq(bn_hist_quantile(&h, 0.999), 123456789);
    cr_assert_eq(bn_hist_quantile(&h, 1.0), 123456789);
}

/* Each quantile of 1..n is never below the true value and at most 1/32 above. */
Test(hist, quantiles_of_a_uniform_range)
{
    static struct bn_hist h;
    const uint64_t n = 100000;
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    bn_hist_init(&h);
    for (uint64_t v = 1; v <= n; v++)
        bn_hist_add(&h, v * 1000);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double truth = qs[i] * (double)n * 1000;
        double got = (double)bn_hist_quantile(&h, qs[i]);
        cr_assert_geq(got, truth, "q%g: %g below %g", qs[i], got, truth);
        cr_assert_leq(got, truth * (1 + 1.0 / 32), "q%g: %g too far above %g", qs[i], got, truth);
    }
    cr_assert_eq(bn_hist_quantile(&h, 1.0), n * 1000);
    cr_assert_eq(h.min, 1000);
    cr_assert_float_eq(bn_hist_mean(&h), (double)(n + 1) / 2 * 1000, 1e-3);
}

Test(hist, a_tail_shows_in_p999_but_not_p99)
{
    static struct bn_hist h;
    bn_hist_init(&h);
    for (int i = 0; i < 9990; i++)
        bn_hist_add(&h, 1000000); /* 1 ms */
    for (int i = 0; i < 10; i++)
        bn_hist_add(&h, 500000000); /* 500 ms */
    cr_assert_leq(bn_hist_quantile(&h, 0.99), 1000000 + 1000000 / 32);
    cr_assert_geq(bn_hist_quantile(&h, 0.9995), 500000000);
    cr_assert_eq(bn_hist_quantile(&h, 1.0), 500000000);
}

Test(hist, merge_equals_adding_everything_to_one)
{
    static struct bn_hist a, b, all;
    bn_hist_init(&a);
    bn_hist_init(&b);
    bn_hist_init(&all);
    for (uint64_t v = 1; v < 5000; v += 7) {
        bn_hist_add(v % 2 ? &a : &b, v * v);
        bn_hist_add(&all, v * v);
    }
    bn_hist_merge(&a, &b);
    cr_assert_eq(a.count, all.count);
    cr_assert_eq(a.min, all.min);
    cr_assert_eq(a.max, all.max);
    for (double q = 0.05; q < 1.0; q += 0.05)
        cr_assert_eq(bn_hist_quantile(&a, q), bn_hist_quantile(&all, q), "q%g", q);
}
