/* mem.c: allocation helpers implementing the abort-on-OOM policy of mem.h. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "worker/mem.h"

void wk_oom(void)
{
    static const char msg[] = "chatmi-worker: out of memory\n";
    /* write(2), not stdio: the heap may be what failed. */
    ssize_t rc = write(2, msg, sizeof msg - 1);
    (void)rc;
    abort();
}

void *wk_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        wk_oom();
    return p;
}

void *wk_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        wk_oom();
    return p;
}

void *wk_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        wk_oom();
    return q;
}

static int sbuffer_write_or_die(void *data, const char *buf, size_t len)
{
    if (msgpack_sbuffer_write(data, buf, len) != 0)
        wk_oom();
    return 0;
}

void wk_packer_init(msgpack_packer *pk, msgpack_sbuffer *sb)
{
    msgpack_packer_init(pk, sb, sbuffer_write_or_die);
}

void wk_sbuffer_append(msgpack_sbuffer *sb, const char *data, size_t len)
{
    sbuffer_write_or_die(sb, data, len);
}
