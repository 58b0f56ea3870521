/* Unit tests: common/backoff.c */
#include <criterion/criterion.h>
#include <stdint.h>

#include "common/backoff.h"

Test(backoff, base_doubles_to_the_cap)
{
    cr_assert_eq(cm_backoff_base(100, 5000, 0), 100);
    cr_assert_eq(cm_backoff_base(100, 5000, 1), 200);
    cr_assert_eq(cm_backoff_base(100, 5000, 5), 3200);
    cr_assert_eq(cm_backoff_base(100, 5000, 6), 5000);
    cr_assert_eq(cm_backoff_base(100, 5000, 1000), 5000, "no overflow on long outages");
    cr_assert_eq(cm_backoff_base(0, 10, 0), 1, "min below 1 counts as 1");
}

Test(backoff, jitter_stays_in_half_to_full)
{
    cr_assert_eq(cm_backoff_jitter(100, 0), 50);
    cr_assert_eq(cm_backoff_jitter(100, 50), 100);
    cr_assert_eq(cm_backoff_jitter(100, 51), 50);
    cr_assert_eq(cm_backoff_jitter(1, 0), 0);
    cr_assert_eq(cm_backoff_jitter(1, 1), 1);
    for (uint32_t r = 0; r < 100000; r += 997) {
        int64_t d = cm_backoff_jitter(5000, r * 2654435761u);
        cr_assert(d >= 2500 && d <= 5000, "%lld", (long long)d);
    }
}

Test(backoff, sequence_grows_and_resets)
{
    struct cm_backoff b;
    cm_backoff_init(&b, 100, 1000);
    int64_t caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        int64_t d = cm_backoff_next(&b);
        cr_assert(d >= caps[i] / 2 && d <= caps[i], "delay %zu: %lld not in [%lld, %lld]", i, (long long)d,
                  (long long)caps[i] / 2, (long long)caps[i]);
    }
    cm_backoff_reset(&b);
    int64_t d = cm_backoff_next(&b);
    cr_assert(d >= 50 && d <= 100, "after reset: %lld", (long long)d);
}

Test(backoff, init_repairs_bounds)
{
    struct cm_backoff b;
    cm_backoff_init(&b, 0, -5);
    cr_assert_eq(b.min_ms, 1);
    cr_assert_eq(b.max_ms, 1);
    int64_t d = cm_backoff_next(&b);
    cr_assert(d >= 0 && d <= 1);
}
