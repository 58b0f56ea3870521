/* fuzz.h: what every libFuzzer target here shares. An invariant that does
 * not hold aborts, which libFuzzer reports as a crash and saves the input. */
#ifndef CHATMI_TESTS_FUZZ_H
#define CHATMI_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* 1 when p[0..n) lies inside buf[0..len). */
#define FUZZ_INSIDE(p, n, buf, len) \
    ((const char *)(p) >= (const char *)(buf) && (const char *)(p) + (n) <= (const char *)(buf) + (len))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
