/* keys.c: the only place Redis key and channel names are spelled out
 * (layout and hash tags: keys.h). */
#include "common/keys.h"

#include <stdio.h>
#include <string.h>

#include "common/ids.h"

#define CHANNEL_PREFIX CM_KEY_PREFIX ":{u:"
#define CONV_CHANNEL_PREFIX CM_KEY_PREFIX ":{c:"

/* Arguments are trusted ids, so the name always fits; clamping the length
 * keeps a caller's bug from turning into an out-of-bounds read. */
static size_t fitted(int n)
{
    if (n < 0)
        return 0;
    return (size_t)n < CM_KEY_MAX ? (size_t)n : CM_KEY_MAX - 1;
}

size_t cm_key_conv(char *out, const char *conv, const char *suffix)
{
    return fitted(snprintf(out, CM_KEY_MAX, CM_KEY_PREFIX ":{c:%s}:%s", conv, suffix));
}

size_t cm_key_idem(char *out, const char *conv, const char *user, const char *id, size_t idlen)
{
    /* The client's id may contain any byte, NUL included: copied, not formatted. */
    size_t n = fitted(snprintf(out, CM_KEY_MAX, CM_KEY_PREFIX ":{c:%s}:idem:%s:", conv, user));
    if (idlen > CM_KEY_MAX - 1 - n)
        idlen = CM_KEY_MAX - 1 - n;
    memcpy(out + n, id, idlen);
    out[n + idlen] = '\0';
    return n + idlen;
}

size_t cm_key_user(char *out, const char *user, const char *suffix)
{
    return fitted(snprintf(out, CM_KEY_MAX, CM_KEY_PREFIX ":{u:%s}:%s", user, suffix));
}

size_t cm_key_user_channel(char *out, const char *user, size_t userlen)
{
    return fitted(snprintf(out, CM_KEY_MAX, CHANNEL_PREFIX "%.*s}", (int)userlen, user));
}

size_t cm_key_conv_channel(char *out, const char *conv, size_t convlen)
{
    return fitted(snprintf(out, CM_KEY_MAX, CONV_CHANNEL_PREFIX "%.*s}", (int)convlen, conv));
}

size_t cm_key_node_alive(char *out, const char *node)
{
    return fitted(snprintf(out, CM_KEY_MAX, CM_KEY_PREFIX ":{n:%s}:alive", node));
}

size_t cm_key_queue(char *out, const char *name)
{
    return cm_key_queue_in(out, "q", name);
}

size_t cm_key_queue_proc(char *out, const char *name, const char *worker)
{
    return cm_key_queue_proc_in(out, "q", name, worker);
}

size_t cm_key_queue_in(char *out, const char *tag, const char *name)
{
    return fitted(snprintf(out, CM_KEY_MAX, CM_KEY_PREFIX ":{%s}:%s", tag, name));
}

size_t cm_key_queue_proc_in(char *out, const char *tag, const char *name, const char *worker)
{
    return fitted(snprintf(out, CM_KEY_MAX, CM_KEY_PREFIX ":{%s}:%s:proc:%s", tag, name, worker));
}

int cm_key_channel_user(const char *channel, size_t len, const char **user, size_t *userlen)
{
    const size_t plen = sizeof(CHANNEL_PREFIX) - 1;
    if (channel == NULL || len < plen + 2 || memcmp(channel, CHANNEL_PREFIX, plen) != 0 ||
        channel[len - 1] != '}')
        return 0;
    if (!cm_valid_user(channel + plen, len - plen - 1))
        return 0;
    *user = channel + plen;
    *userlen = len - plen - 1;
    return 1;
}

int cm_key_channel_room(const char *channel, size_t len, const char **conv, size_t *convlen)
{
    const size_t plen = sizeof(CONV_CHANNEL_PREFIX) - 1;
    if (channel == NULL || len < plen + 7 || memcmp(channel, CONV_CHANNEL_PREFIX, plen) != 0 ||
        channel[len - 1] != '}' || memcmp(channel + plen, "room:", 5) != 0)
        return 0;
    if (!cm_valid_room(channel + plen + 5, len - plen - 6))
        return 0;
    *conv = channel + plen;
    *convlen = len - plen - 1;
    return 1;
}
