/* backoff.c: see backoff.h. */
#include "common/backoff.h"

#include "common/clock.h"

void cm_backoff_init(struct cm_backoff *b, int64_t min_ms, int64_t max_ms)
{
    b->min_ms = min_ms > 0 ? min_ms : 1;
    b->max_ms = max_ms > b->min_ms ? max_ms : b->min_ms;
    b->attempt = 0;
}

void cm_backoff_reset(struct cm_backoff *b)
{
    b->attempt = 0;
}

int64_t cm_backoff_base(int64_t min_ms, int64_t max_ms, unsigned attempt)
{
    int64_t ms = min_ms > 0 ? min_ms : 1;
    for (unsigned i = 0; i < attempt && ms < max_ms; i++)
        ms *= 2;
    return ms > max_ms ? max_ms : ms;
}

int64_t cm_backoff_jitter(int64_t base_ms, uint32_t rnd)
{
    int64_t half = base_ms / 2;
    return half + (int64_t)(rnd % (uint64_t)(base_ms - half + 1));
}

int64_t cm_backoff_next(struct cm_backoff *b)
{
    int64_t base = cm_backoff_base(b->min_ms, b->max_ms, b->attempt);
    if (b->attempt < 64)
        b->attempt++;
    uint32_t rnd = 0;
    if (cm_random_bytes(&rnd, sizeof rnd) < 0)
        rnd = (uint32_t)cm_monotonic_ms();
    return cm_backoff_jitter(base, rnd);
}
