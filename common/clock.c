/* clock.c: wall and monotonic clocks, and kernel randomness. */
#include "common/clock.h"

#include <errno.h>
#include <stddef.h>
#include <sys/random.h>
#include <time.h>

int64_t cm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cm_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cm_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    /* getrandom() may return fewer bytes than asked for large requests or
     * when a signal arrives; keep going until all are filled. */
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int cm_random_hex(char *out, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char chunk[64];
    size_t done = 0;

    while (done < n) {
        size_t k = n - done < sizeof(chunk) ? n - done : sizeof(chunk);
        if (cm_random_bytes(chunk, k) < 0)
            return -1;
        for (size_t i = 0; i < k; i++) {
            out[2 * (done + i)] = digits[chunk[i] >> 4];
            out[2 * (done + i) + 1] = digits[chunk[i] & 15];
        }
        done += k;
    }
    out[2 * n] = '\0';
    return 0;
}
