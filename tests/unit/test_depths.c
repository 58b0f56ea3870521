/* Unit tests: worker/depths.h (when the Prometheus gauges may take the
 * --emf record's reading of the queue depths instead of reading again). */
#include <criterion/criterion.h>

#include "worker/depths.h"

#define PERIOD 5000

Test(depths, no_reading_yet_is_never_fresh)
{
    struct wk_depth_reading r = {0};
    cr_assert_not(wk_depth_reading_fresh(&r, 0, PERIOD));
    cr_assert_not(wk_depth_reading_fresh(&r, 123456, PERIOD));
}

Test(depths, a_reading_serves_while_younger_than_the_period)
{
    struct wk_depth_reading r = {.valid = 1, .read_ms = 100000, .d = {1, 2, 3, 4}};
    cr_assert(wk_depth_reading_fresh(&r, 100000, PERIOD), "taken this turn");
    cr_assert(wk_depth_reading_fresh(&r, 100000 + PERIOD - 1, PERIOD));
    cr_assert_not(wk_depth_reading_fresh(&r, 100000 + PERIOD, PERIOD), "a period old: read again");
    cr_assert_not(wk_depth_reading_fresh(&r, 100000 + 10 * PERIOD, PERIOD));
}
