/* route.c: command routing of route.h. */
#include <string.h>
#include <strings.h>

#include "common/cluster.h"
#include "worker/route.h"

static int word_is(const char *p, size_t len, const char *w)
{
    return len == strlen(w) && strncasecmp(p, w, len) == 0;
}

unsigned wk_route_slot(int argc, const char *const *argv, const size_t *argvlen, unsigned pin)
{
    static const char *const keyless[] = {"MULTI", "EXEC", "DISCARD", "ROLE", "WAIT", "SCRIPT", "PING",
                                          "ASKING", "CLUSTER", "INFO"};
    if (argc < 1)
        return pin;
    for (size_t i = 0; i < sizeof keyless / sizeof keyless[0]; i++)
        if (word_is(argv[0], argvlen[0], keyless[i]))
            return pin;
    if (word_is(argv[0], argvlen[0], "EVALSHA") || word_is(argv[0], argvlen[0], "EVAL")) {
        if (argc < 4 || (argvlen[2] == 1 && argv[2][0] == '0'))
            return pin;
        return cm_key_slot(argv[3], argvlen[3]);
    }
    if (argc < 2)
        return pin;
    return cm_key_slot(argv[1], argvlen[1]);
}

long wk_fanned_bit(long long seq, unsigned part)
{
    return (long)(((unsigned long long)seq * WK_FANNED_PARTS + part) % WK_FANNED_RING);
}
