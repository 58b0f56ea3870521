/* ssub.c: SSUBSCRIBE grouping and the reply FIFO of a subscription link
 * (ssub.h). */
#include <config.h>

#include "ssub.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t gw_ssub_group(const uint32_t *keys, size_t n, size_t *order, size_t *starts)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    /* Insertion sort on the common case (few distinct keys among up to a
     * flush batch) is fine: batches are at most a few hundred. */
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && keys[order[j - 1]] > keys[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    size_t g = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || keys[order[i]] != keys[order[i - 1]])
            starts[g++] = i;
    starts[g] = n;
    return g;
}

int gw_ssub_fifo_push(struct gw_ssub_fifo *f, enum gw_ssub_kind kind, unsigned slot, uint32_t left, const char *name,
                      size_t name_len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct gw_ssub_entry *e = malloc(cap * sizeof(*e));
        if (e == NULL)
            return -1;
        for (size_t i = 0; i < f->n; i++)
            e[i] = f->e[(f->head + i) % f->cap];
        free(f->e);
        f->e = e;
        f->cap = cap;
        f->head = 0;
    }
    struct gw_ssub_entry en = {.kind = (uint8_t)kind, .slot = (uint16_t)slot, .left = left};
    if (name != NULL) {
        en.name = malloc(name_len + 1);
        if (en.name == NULL)
            return -1;
        memcpy(en.name, name, name_len);
        en.name[name_len] = '\0';
        en.name_len = name_len;
    }
    f->e[(f->head + f->n) % f->cap] = en;
    f->n++;
    return 0;
}

static struct gw_ssub_entry *fifo_head(struct gw_ssub_fifo *f)
{
    return f->n > 0 ? &f->e[f->head] : NULL;
}

static void fifo_pop(struct gw_ssub_fifo *f)
{
    free(f->e[f->head].name);
    f->e[f->head].name = NULL;
    f->head = (f->head + 1) % f->cap;
    f->n--;
}

void gw_ssub_fifo_clear(struct gw_ssub_fifo *f)
{
    while (f->n > 0)
        fifo_pop(f);
    free(f->e);
    free(f->popped);
    memset(f, 0, sizeof(*f));
}

static int is_str(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static int str_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return is_str(r) && r->len == n && strncasecmp(r->str, s, n) == 0;
}

/* A reply kind of either family: plain pub/sub ("message") on one Redis,
 * sharded ("smessage") on a cluster. Each link uses one family only. */
static int kind_is(const redisReply *r, const char *plain)
{
    size_t n = strlen(plain);
    if (str_is(r, plain))
        return 1;
    return is_str(r) && r->len == n + 1 && (r->str[0] == 's' || r->str[0] == 'S') &&
           strncasecmp(r->str + 1, plain, n) == 0;
}

/* The popped entry's name stays readable until the next classify call. */
static void pop_keep_name(struct gw_ssub_fifo *f)
{
    free(f->popped);
    f->popped = f->e[f->head].name;
    f->e[f->head].name = NULL;
    fifo_pop(f);
}

enum gw_ssub_event gw_ssub_classify(struct gw_ssub_fifo *f, const redisReply *r, struct gw_ssub_result *out)
{
    memset(out, 0, sizeof(*out));
    free(f->popped);
    f->popped = NULL;
    struct gw_ssub_entry *h = fifo_head(f);
    if (r == NULL)
        return GW_SSUB_EV_MALFORMED;
    if (r->type == REDIS_REPLY_ARRAY) {
        if (r->elements < 2 || !is_str(r->element[0]))
            return GW_SSUB_EV_MALFORMED;
        const redisReply *kind = r->element[0];
        if (str_is(kind, "pong")) {
            if (h == NULL || h->kind != GW_SSUB_PING)
                return GW_SSUB_EV_MALFORMED;
            fifo_pop(f);
            return GW_SSUB_EV_PONG;
        }
        if (r->elements != 3 || r->element[1]->type != REDIS_REPLY_STRING)
            return GW_SSUB_EV_MALFORMED;
        out->channel = r->element[1]->str;
        out->channel_len = r->element[1]->len;
        if (kind_is(kind, "message")) {
            if (r->element[2]->type != REDIS_REPLY_STRING)
                return GW_SSUB_EV_MALFORMED;
            out->payload = r->element[2]->str;
            out->payload_len = r->element[2]->len;
            return GW_SSUB_EV_MESSAGE;
        }
        if (r->element[2]->type != REDIS_REPLY_INTEGER)
            return GW_SSUB_EV_MALFORMED;
        if (kind_is(kind, "subscribe")) {
            if (h == NULL || h->kind != GW_SSUB_SUB || h->left == 0)
                return GW_SSUB_EV_MALFORMED;
            out->slot = h->slot;
            if (--h->left == 0)
                fifo_pop(f);
            return GW_SSUB_EV_SUBSCRIBED;
        }
        if (kind_is(kind, "unsubscribe")) {
            if (h != NULL && h->kind == GW_SSUB_UNSUB && h->name_len == out->channel_len &&
                memcmp(h->name, out->channel, h->name_len) == 0) {
                fifo_pop(f);
                return GW_SSUB_EV_UNSUBSCRIBED;
            }
            return GW_SSUB_EV_DROPPED;
        }
        return GW_SSUB_EV_MALFORMED;
    }
    if (h == NULL)
        return GW_SSUB_EV_MALFORMED; /* a reply to nothing sent */
    if (r->type == REDIS_REPLY_ERROR) {
        out->error = r->str;
        out->error_len = r->len;
        switch (h->kind) {
        case GW_SSUB_AUTH:
            fifo_pop(f);
            return GW_SSUB_EV_AUTH_FAILED;
        case GW_SSUB_SUB:
            out->slot = h->slot;
            fifo_pop(f);
            return GW_SSUB_EV_SUB_FAILED;
        case GW_SSUB_UNSUB:
            pop_keep_name(f);
            out->channel = f->popped;
            out->channel_len = f->popped != NULL ? strlen(f->popped) : 0;
            return GW_SSUB_EV_UNSUBSCRIBED;
        default:
            return GW_SSUB_EV_MALFORMED;
        }
    }
    if (r->type == REDIS_REPLY_STATUS) {
        if (h->kind == GW_SSUB_AUTH && str_is(r, "OK")) {
            fifo_pop(f);
            return GW_SSUB_EV_AUTH_OK;
        }
        if (h->kind == GW_SSUB_PING && str_is(r, "PONG")) {
            fifo_pop(f);
            return GW_SSUB_EV_PONG;
        }
    }
    return GW_SSUB_EV_MALFORMED;
}
