/* backoff.h: capped exponential backoff with jitter, for reconnecting to
 * Redis (gateway children, workers) and to sentinels.
 *
 * The n-th delay (0 based) is drawn uniformly from [base/2, base] where
 * base = min_ms * 2^n, capped at max_ms: half fixed, so a retry never comes
 * too soon, half random, so a fleet of processes that lost Redis together
 * does not come back in step. */
#ifndef CHATMI_COMMON_BACKOFF_H
#define CHATMI_COMMON_BACKOFF_H

#include <stdint.h>

struct cm_backoff {
    int64_t min_ms, max_ms;
    unsigned attempt;       /* delays handed out since the last reset */
};

/* min_ms >= 1, max_ms >= min_ms. */
void cm_backoff_init(struct cm_backoff *b, int64_t min_ms, int64_t max_ms);
/* The delay before the next attempt; advances the sequence. */
int64_t cm_backoff_next(struct cm_backoff *b);
/* Back to the first (shortest) delay, after a success. */
void cm_backoff_reset(struct cm_backoff *b);

/* The pure part, for tests: the base of attempt n, and the delay from a
 * base and 32 random bits. */
int64_t cm_backoff_base(int64_t min_ms, int64_t max_ms, unsigned attempt);
int64_t cm_backoff_jitter(int64_t base_ms, uint32_t rnd);

#endif
