/* clock.h: time sources. */
#ifndef CHATMI_COMMON_CLOCK_H
#define CHATMI_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t cm_now_ms(void);        /* wall clock, milliseconds since the epoch */
int64_t cm_monotonic_ms(void);  /* CLOCK_MONOTONIC, milliseconds */

/* Fills buf with `n` random bytes from getrandom(2). 0 or -1. */
int cm_random_bytes(void *buf, size_t n);

/* Writes 2*n lowercase hex digits of n random bytes plus NUL into out (size >= 2n+1). 0 or -1. */
int cm_random_hex(char *out, size_t n);

#endif
