/* client.c: a bench client's connection: non-blocking connect from a
 * chosen source address, the upgrade, masked frames out, server frames in
 * (shard.h). */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/handshake.h"
#include "bench/jscan.h"
#include "bench/shard.h"
#include "bench/wsframe.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/jwt.h"
#include "common/log.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_PAYLOAD (1024 * 1024)

static void on_event(evutil_socket_t fd, short what, void *arg);

static uint32_t rng32(struct bn_shard *sh)
{
    uint64_t x = sh->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sh->rng = x;
    return (uint32_t)(x >> 16);
}

size_t bn_client_user(const struct bn_shard *sh, uint32_t idx, char *out)
{
    int n;
    if (idx == BN_FEEDER)
        n = snprintf(out, CM_USER_MAX + 1, "%s-f%d", sh->cfg->prefix, sh->index);
    else
        n = snprintf(out, CM_USER_MAX + 1, "%s-%u", sh->cfg->prefix, idx);
    return n < 0 ? 0 : (size_t)n;
}

void bn_client_free_buffers(struct bn_client *c)
{
    free(c->in);
    free(c->out);
    free(c->frag);
    c->in = c->out = c->frag = NULL;
}

static void set_events(struct bn_client *c, short what)
{
    event_del(&c->ev);
    event_assign(&c->ev, c->sh->base, c->fd, what, on_event, c);
    event_add(&c->ev, NULL);
    c->writing = (what & EV_WRITE) != 0;
}

static int in_flight(const struct bn_client *c)
{
    return c->state == BN_C_CONNECTING || c->state == BN_C_HANDSHAKE || c->state == BN_C_OPEN;
}

/* Ends the connection: socket closed, buffers freed, state DONE. */
static void teardown(struct bn_client *c)
{
    if (in_flight(c) && c->sh->inflight > 0)
        c->sh->inflight--;
    if (c->fd >= 0) {
        event_del(&c->ev);
        close(c->fd);
        c->fd = -1;
    }
    bn_client_free_buffers(c);
    c->state = BN_C_DONE;
    c->writing = 0;
}

enum fail_kind { F_CONNECT, F_STATUS, F_HANDSHAKE, F_TIMEOUT, F_CLOSED };

static void fail(struct bn_client *c, enum fail_kind kind, int code)
{
    struct bn_result *r = &c->sh->res;
    int was_ready = c->state == BN_C_READY;
    if (!was_ready) {
        switch (kind) {
        case F_CONNECT:
            r->fail_connect++;
            r->last_errno = code;
            break;
        case F_STATUS:
            if (code >= 400 && code < 500)
                r->fail_4xx++;
            else if (code >= 500)
                r->fail_5xx++;
            else
                r->fail_status_other++;
            r->last_status = code;
            break;
        case F_HANDSHAKE:
            r->fail_handshake++;
            break;
        case F_TIMEOUT:
            r->fail_timeout++;
            break;
        case F_CLOSED:
            r->fail_closed++;
            break;
        }
    } else if (!c->closing) {
        r->dropped++;
    }
    int ours = c->closing;
    teardown(c);
    if (!ours)
        bn_shard_on_failed(c, was_ready);
}

void bn_client_close(struct bn_client *c)
{
    if (c->state == BN_C_IDLE || c->state == BN_C_DONE)
        return;
    c->closing = 1;
    teardown(c);
}

/* ---- output -------------------------------------------------------------- */

static int stash(struct bn_bytes **bp, const uint8_t *data, size_t len)
{
    struct bn_bytes *b = *bp;
    size_t have = b ? b->len : 0;
    if (b == NULL || have + len > b->cap) {
        size_t cap = b ? b->cap : 0;
        if (cap < 256)
            cap = 256;
        while (cap < have + len)
            cap *= 2;
        struct bn_bytes *n = realloc(b, sizeof(*n) + cap);
        if (n == NULL)
            return -1;
        n->len = have;
        n->cap = cap;
        *bp = b = n;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static int write_raw(struct bn_client *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    if (c->out == NULL) {
        ssize_t w;
        do
            w = write(c->fd, data, len);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return 0; /* the read side sees the connection go */
        off = w > 0 ? (size_t)w : 0;
        if (off == len)
            return 0;
    }
    if (stash(&c->out, data + off, len - off) < 0)
        return -1;
    if (!c->writing)
        set_events(c, EV_READ | EV_WRITE | EV_PERSIST);
    return 0;
}

static void flush(struct bn_client *c)
{
    if (c->out != NULL) {
        ssize_t w;
        do
            w = write(c->fd, c->out->data, c->out->len);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            fail(c, F_CLOSED, 0);
            return;
        }
        if (w > 0) {
            memmove(c->out->data, c->out->data + w, c->out->len - (size_t)w);
            c->out->len -= (size_t)w;
        }
        if (c->out->len > 0)
            return;
        free(c->out);
        c->out = NULL;
    }
    set_events(c, EV_READ | EV_PERSIST);
}

static int send_frame(struct bn_client *c, int opcode, const void *payload, size_t len)
{
    struct bn_shard *sh = c->sh;
    uint8_t stackbuf[512];
    uint8_t *buf = stackbuf;
    if (len + BN_WS_HEADER_MAX > sizeof(stackbuf)) {
        buf = malloc(len + BN_WS_HEADER_MAX);
        if (buf == NULL)
            return -1;
    }
    uint32_t m = rng32(sh);
    uint8_t mask[4];
    memcpy(mask, &m, 4);
    size_t n = bn_ws_frame(buf, opcode, payload, len, mask);
    int r = write_raw(c, buf, n);
    if (buf != stackbuf)
        free(buf);
    return r;
}

int bn_client_send(struct bn_client *c, const char *text, size_t len)
{
    if (c->state != BN_C_READY)
        return -1;
    return send_frame(c, BN_WS_TEXT, text, len);
}

/* ---- connect and handshake ------------------------------------------------ */

void bn_client_connect(struct bn_client *c)
{
    struct bn_shard *sh = c->sh;
    const struct bn_config *cfg = sh->cfg;
    c->attempt++;
    c->t_start = bn_now_ns();
    c->closing = 0;
    c->writing = 0;
    c->state = BN_C_CONNECTING;
    sh->inflight++;
    sh->res.connects++;

    int fd = socket(cfg->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->fd = fd;
    if (fd < 0) {
        fail(c, F_CONNECT, errno);
        return;
    }
    if (cfg->src_count > 0 && cfg->dst.ss_family == AF_INET) {
        /* Bind only the address: the port is picked at connect() for the
         * whole 4-tuple, so each source address has the full port range. */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in src;
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        uint32_t k = c->idx == BN_FEEDER ? 0 : c->idx % cfg->src_count;
        src.sin_addr.s_addr = htonl(cfg->src_first + k);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            fail(c, F_CONNECT, errno);
            return;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&cfg->dst, cfg->dst_len) < 0 && errno != EINPROGRESS) {
        fail(c, F_CONNECT, errno);
        return;
    }
    event_assign(&c->ev, sh->base, fd, EV_WRITE, on_event, c);
    event_add(&c->ev, NULL);
}

static void send_request(struct bn_client *c)
{
    struct bn_shard *sh = c->sh;
    const struct bn_config *cfg = sh->cfg;
    char user[CM_USER_MAX + 1], key[BN_HS_KEY_LEN + 1], token[CM_JWT_MAX], req[CM_JWT_MAX + 1024];
    const char *tok = NULL;
    bn_client_user(sh, c->idx, user);
    bn_hs_key(sh->seed, c->idx, c->attempt, key);
    if (cfg->auth == BN_AUTH_JWT) {
        int64_t exp = cm_now_ms() / 1000 + 24 * 3600;
        if (cm_jwt_sign(user, exp, 0, cfg->jwt_key, cfg->jwt_key_len, token, sizeof(token)) == 0) {
            fail(c, F_HANDSHAKE, 0);
            return;
        }
        tok = token;
    }
    size_t n = bn_hs_request(req, sizeof(req), cfg->host, cfg->port, cfg->path,
                             cfg->auth == BN_AUTH_NONE ? user : NULL, tok, key);
    if (n == 0) {
        fail(c, F_HANDSHAKE, 0);
        return;
    }
    c->state = BN_C_HANDSHAKE;
    set_events(c, EV_READ | EV_PERSIST);
    write_raw(c, (const uint8_t *)req, n);
}

static void on_connected(struct bn_client *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        fail(c, F_CONNECT, err);
        return;
    }
    send_request(c);
}

void bn_clients_check_deadlines(struct bn_shard *sh, int64_t now)
{
    int64_t limit = (int64_t)(sh->cfg->connect_timeout * 1e9);
    for (uint32_t i = 0; i <= sh->count; i++) {
        struct bn_client *c = i < sh->count ? &sh->clients[i] : &sh->feeder;
        if (in_flight(c) && now - c->t_start > limit)
            fail(c, F_TIMEOUT, 0);
    }
}

/* ---- input ------------------------------------------------------------------ */

static void got_hello(struct bn_client *c, int64_t now)
{
    struct bn_shard *sh = c->sh;
    if (sh->inflight > 0)
        sh->inflight--;
    c->state = BN_C_READY;
    if (c->idx != BN_FEEDER) {
        sh->res.connected++;
        bn_hist_add(&sh->res.handshake, (uint64_t)(now - c->t_start));
    }
    bn_shard_on_ready(c, now);
}

static void on_message(struct bn_client *c, int opcode, const uint8_t *data, size_t len, int64_t now)
{
    if (opcode != BN_WS_TEXT) {
        c->sh->res.protocol_errors++;
        return;
    }
    if (c->state == BN_C_OPEN) {
        struct bn_jiter it;
        struct bn_jval k, v;
        int is_hello = 0;
        if (bn_json_object(&it, (const char *)data, len) == 0)
            while (bn_json_next_member(&it, &k, &v) > 0)
                if (bn_jval_is(&k, "op")) {
                    is_hello = bn_jval_is(&v, "hello");
                    break;
                }
        if (is_hello)
            got_hello(c, now);
        else
            c->sh->res.unknown_ops++;
        return;
    }
    bn_shard_on_text(c, (const char *)data, len, now);
}

/* Handles one frame; returns -1 when the connection ended. */
static int on_frame(struct bn_client *c, const struct bn_ws_frame *f, int64_t now)
{
    switch (f->opcode) {
    case BN_WS_TEXT:
    case BN_WS_BINARY:
        if (c->frag != NULL)
            goto protocol;
        if (f->fin) {
            on_message(c, f->opcode, f->payload, (size_t)f->len, now);
        } else {
            c->frag_op = (uint8_t)f->opcode;
            if (stash(&c->frag, f->payload, (size_t)f->len) < 0)
                goto protocol;
        }
        break;
    case BN_WS_CONT:
        if (c->frag == NULL || c->frag->len + f->len > MAX_PAYLOAD || stash(&c->frag, f->payload, (size_t)f->len) < 0)
            goto protocol;
        if (f->fin) {
            struct bn_bytes *m = c->frag;
            c->frag = NULL;
            on_message(c, c->frag_op, m->data, m->len, now);
            free(m);
        }
        break;
    case BN_WS_PING:
        send_frame(c, BN_WS_PONG, f->payload, (size_t)f->len);
        break;
    case BN_WS_PONG:
        break;
    case BN_WS_CLOSE: {
        uint16_t code = f->len >= 2 ? (uint16_t)(f->payload[0] << 8 | f->payload[1]) : 0;
        struct bn_result *r = &c->sh->res;
        if (c->state == BN_C_READY && !c->closing) {
            if (code == 1001)
                r->close_1001++;
            else if (code == 1013)
                r->close_1013++;
            else
                r->close_other++;
        }
        /* Answer the close, then let the socket go. */
        uint8_t buf[BN_WS_HEADER_MAX + 2];
        uint32_t m = rng32(c->sh);
        uint8_t mask[4];
        memcpy(mask, &m, 4);
        size_t n = bn_ws_close_frame(buf, code, mask);
        ssize_t w = write(c->fd, buf, n);
        (void)w;
        fail(c, F_CLOSED, 0);
        return -1;
    }
    }
    return c->state == BN_C_DONE ? -1 : 0;
protocol:
    c->sh->res.protocol_errors++;
    fail(c, F_CLOSED, 0);
    return -1;
}

static void on_readable(struct bn_client *c)
{
    struct bn_shard *sh = c->sh;
    uint8_t *buf = sh->rbuf;
    size_t have = 0;
    if (c->in != NULL) {
        have = c->in->len;
        memcpy(buf, c->in->data, have);
        free(c->in);
        c->in = NULL;
    }
    ssize_t n;
    do
        n = read(c->fd, buf + have, sh->rbuf_cap - have);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (have > 0 && stash(&c->in, buf, have) < 0)
            fail(c, F_CLOSED, 0);
        return;
    }
    if (n <= 0) {
        fail(c, F_CLOSED, 0);
        return;
    }
    size_t total = have + (size_t)n, off = 0;
    int64_t now = bn_now_ns();
    if (c->state == BN_C_HANDSHAKE) {
        char key[BN_HS_KEY_LEN + 1], accept[BN_HS_ACCEPT_LEN + 1];
        size_t head = 0;
        bn_hs_key(sh->seed, c->idx, c->attempt, key);
        if (bn_hs_accept(key, accept) < 0) {
            fail(c, F_HANDSHAKE, 0);
            return;
        }
        int r = bn_hs_check((const char *)buf, total, accept, &head);
        if (r == BN_HS_MORE) {
            if (stash(&c->in, buf, total) < 0)
                fail(c, F_CLOSED, 0);
            return;
        }
        if (r != BN_HS_OK) {
            if (r == BN_HS_BAD)
                fail(c, F_HANDSHAKE, 0);
            else
                fail(c, F_STATUS, r);
            return;
        }
        c->state = BN_C_OPEN;
        off = head;
    }
    while (off < total) {
        struct bn_ws_frame f;
        long r = bn_ws_parse(buf + off, total - off, MAX_PAYLOAD, &f);
        if (r == BN_WS_NEED_MORE)
            break;
        if (r < 0) {
            sh->res.protocol_errors++;
            fail(c, F_CLOSED, 0);
            return;
        }
        off += (size_t)r;
        if (on_frame(c, &f, now) < 0)
            return;
    }
    if (off < total && stash(&c->in, buf + off, total - off) < 0)
        fail(c, F_CLOSED, 0);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct bn_client *c = arg;
    if (c->state == BN_C_CONNECTING) {
        on_connected(c);
        return;
    }
    if (what & EV_WRITE) {
        flush(c);
        if (c->state == BN_C_DONE)
            return;
    }
    if (what & EV_READ)
        on_readable(c);
}
