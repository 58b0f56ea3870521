/* conn.c: a client connection: HTTP request head, routing, the WebSocket
 * upgrade, frames in through wslay, frames out through the shared-buffer
 * queue, close handshake and lingering close. */
#include <config.h>

#include "conn.h"

#include <errno.h>
#include <http_parser.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto.h"
#include "gateway/child.h"
#include "gateway/frame.h"
#include "gateway/clientip.h"
#include "gateway/http.h"
#include "gateway/www.h"
#include "gateway/ipcount.h"

#define CLOSE_WAIT_MS 2000          /* after our close/response: wait this long for the peer */
#define WRITE_BUDGET (256 * 1024)   /* bytes per write event, so one client cannot starve others */
#define HTTP_BUF_MAX (GW_HTTP_HEAD_MAX + 4096)
/* Over --max-conns a connection still gets its 503 (held at most
 * CLOSE_WAIT_MS); this many more than that are closed without a word. */
#define REFUSE_SLACK(max) ((size_t)(max) / 8 + 64)

struct gw_http_buf {
    size_t len, cap;
    char data[];
};

struct gw_conn_io {
    wslay_event_context_ptr ws;
    struct gw_frame_scan scan;
    const unsigned char *in;   /* the bytes wslay reads next */
    size_t in_len;
};

static void on_event(evutil_socket_t fd, short what, void *arg);
static int ws_input(struct gw_conn *c, const unsigned char *data, size_t len);
static void respond_text(struct gw_conn *c, int status, const char *text, const char *extra);

/* ---- state and events -------------------------------------------------- */

static void set_writing(struct gw_conn *c, int on)
{
    if ((c->writing != 0) == (on != 0))
        return;
    event_del(&c->ev);
    event_assign(&c->ev, c->child->base, c->fd, EV_READ | EV_PERSIST | (on ? EV_WRITE : 0), on_event, c);
    event_add(&c->ev, NULL);
    c->writing = (uint8_t)(on != 0);
}

/* Undoes what being in its current state registered: list, user, gauge. */
static void leave_state(struct gw_conn *c)
{
    struct gw_child *ch = c->child;
    switch (c->state) {
    case GW_CONN_HTTP:
        gw_child_list_del(&ch->handshaking, c);
        break;
    case GW_CONN_OPEN:
        gw_users_detach(ch, c);
        ch->nsessions--;
        gw_metric_add(ch->stats, GW_M_CONNS_OPEN, -1);
        break;
    case GW_CONN_CLOSING:
        gw_child_list_del(&ch->closing, c);
        break;
    }
}

/* The one place a connection changes state; keeps lists and gauges right. */
static void set_state(struct gw_conn *c, enum gw_conn_state to)
{
    struct gw_child *ch = c->child;
    leave_state(c);
    c->state = (uint8_t)to;
    switch (to) {
    case GW_CONN_HTTP:
        gw_child_list_add(&ch->handshaking, c);
        break;
    case GW_CONN_OPEN:
        ch->nsessions++;
        gw_metric_add(ch->stats, GW_M_CONNS_OPEN, 1);
        gw_metric_add(ch->stats, GW_M_CONNS_TOTAL, 1);
        break;
    case GW_CONN_CLOSING:
        gw_child_list_add(&ch->closing, c);
        c->deadline_ms = cm_monotonic_ms() + CLOSE_WAIT_MS;
        /* The write event runs flush(), which half-closes once output is out. */
        set_writing(c, 1);
        break;
    }
}

static void free_io(struct gw_conn *c)
{
    if (c->io == NULL)
        return;
    wslay_event_context_free(c->io->ws);
    free(c->io);
    c->io = NULL;
}

/* The client's address for logs: as counted for --max-conns-per-ip (an
 * IPv6 client shows as its /64), "proxy" for a proxied connection whose
 * head has not arrived yet. */
static const char *client_text(const struct gw_conn *c, char *buf, size_t len)
{
    if (c->ip == NULL)
        return c->via_proxy ? "proxy" : "?";
    gw_addr_format(&c->ip->key, buf, len);
    return buf;
}

/* Counts the connection under its client address. 0; 1 when that address
 * is over --max-conns-per-ip (the connection is answered 503); -1 when out
 * of memory (c was freed). */
static int count_address(struct gw_conn *c, const struct gw_addr *addr)
{
    struct gw_child *ch = c->child;
    enum gw_ipcount_result r = gw_ipcount_acquire(&ch->ips, addr, (uint32_t)ch->cfg->max_conns_per_ip, &c->ip);
    if (r == GW_IPCOUNT_OK)
        return 0;
    if (r == GW_IPCOUNT_NOMEM) {
        gw_conn_free(c);
        return -1;
    }
    if (r != GW_IPCOUNT_FULL)
        return 0;
    char text[GW_ADDR_TEXT_MAX];
    gw_addr_format(addr, text, sizeof(text));
    gw_metric_add(ch->stats, GW_M_HANDSHAKE_OVER_LIMIT, 1);
    cm_info("conn_refused", "client %s: over --max-conns-per-ip %ld", text, ch->cfg->max_conns_per_ip);
    respond_text(c, 503, "too many connections from your address\n", "Retry-After: 5\r\n");
    return 1;
}

struct gw_conn *gw_conn_new(struct gw_child *ch, int fd, const struct sockaddr *peer)
{
    const struct gw_config *cfg = ch->cfg;
    if (ch->nconns >= (size_t)cfg->max_conns + REFUSE_SLACK(cfg->max_conns)) {
        close(fd);
        return NULL;
    }
    if ((size_t)fd >= ch->conns_cap) {
        size_t cap = ch->conns_cap ? ch->conns_cap : 1024;
        while (cap <= (size_t)fd)
            cap *= 2;
        struct gw_conn **n = realloc(ch->conns, cap * sizeof(*n));
        if (n == NULL) {
            close(fd);
            return NULL;
        }
        memset(n + ch->conns_cap, 0, (cap - ch->conns_cap) * sizeof(*n));
        ch->conns = n;
        ch->conns_cap = cap;
    }
    struct gw_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->gen = ++ch->next_gen;
    c->child = ch;
    c->state = GW_CONN_HTTP;
    int64_t now = cm_monotonic_ms();
    c->last_seen_ms = now;
    c->deadline_ms = now + (int64_t)(cfg->handshake_timeout * 1000);
    event_assign(&c->ev, ch->base, fd, EV_READ | EV_PERSIST, on_event, c);
    if (event_add(&c->ev, NULL) < 0) {
        close(fd);
        free(c);
        return NULL;
    }
    gw_child_list_add(&ch->handshaking, c);
    ch->conns[fd] = c;
    ch->nconns++;

    /* Limits that need no request: the overall cap, and the per-address
     * cap of a direct client (a proxied one is counted once its
     * X-Forwarded-For is read). */
    if (ch->nconns > (size_t)cfg->max_conns) {
        gw_metric_add(ch->stats, GW_M_HANDSHAKE_OVER_LIMIT, 1);
        cm_debug("conn_refused", "fd %d: over --max-conns %ld", fd, cfg->max_conns);
        respond_text(c, 503, "server full: try again later\n", "Retry-After: 5\r\n");
        return c;
    }
    struct gw_addr addr;
    gw_addr_from_sockaddr(peer, &addr);
    if (gw_cidrs_match(&cfg->trusted_proxies, &addr)) {
        c->via_proxy = 1;
        return c;
    }
    return count_address(c, &addr) < 0 ? NULL : c;
}

void gw_conn_free(struct gw_conn *c)
{
    struct gw_child *ch = c->child;
    leave_state(c);
    if (c->ip != NULL)
        gw_ipcount_release(&ch->ips, c->ip);
    event_del(&c->ev);
    close(c->fd);
    ch->conns[c->fd] = NULL;
    ch->nconns--;
    free_io(c);
    gw_outq_free(c->outq);
    free(c->http);
    free(c);
}

/* ---- output ---------------------------------------------------------------- */

/* Queues output for the write pass (or the write event, when it is on
 * already). No state checks. */
static int queue_buf(struct gw_conn *c, struct gw_buf *buf)
{
    if (gw_outq_push(&c->outq, buf, 0) < 0) {
        shutdown(c->fd, SHUT_RDWR);
        return -1;
    }
    if (c->writing || c->flush_queued)
        return 0;
    if (gw_child_defer_write(c->child, c->fd) < 0) {
        set_writing(c, 1); /* out of memory for the pass list: the write event does it */
        return 0;
    }
    c->flush_queued = 1;
    return 0;
}

void gw_conn_write_pass(struct gw_conn *c)
{
    c->flush_queued = 0;
    if (c->outq == NULL || c->writing)
        return;
    ssize_t w = gw_outq_write(c->outq, c->fd, WRITE_BUDGET);
    if (w < 0) {
        /* The peer is gone; the read event sees it and frees the connection. */
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    gw_metric_add(c->child->stats, GW_M_BYTES_OUT, w);
    if (c->outq->count == 0) {
        gw_outq_free(c->outq);
        c->outq = NULL;
    } else {
        set_writing(c, 1);
    }
}

int gw_conn_send(struct gw_conn *c, struct gw_buf *buf)
{
    if (c->state != GW_CONN_OPEN)
        return -1;
    size_t max = c->child->cfg->max_queued_bytes;
    /* A burst within one loop pass is not a slow client: write it out first. */
    if (c->outq != NULL && c->outq->bytes + buf->len > max && c->flush_queued)
        gw_conn_write_pass(c);
    if (c->outq != NULL && c->outq->bytes + buf->len > max) {
        gw_metric_add(c->child->stats, GW_M_SLOW_CLOSES, 1);
        char addr[GW_ADDR_TEXT_MAX];
        cm_info("slow_client", "session %s:%u (client %s) queued over %zu bytes: closing with 1013",
                c->user != NULL ? c->user->name : "?", c->gen, client_text(c, addr, sizeof(addr)),
                c->child->cfg->max_queued_bytes);
        gw_conn_close_ws(c, 1013, "output queue full: reconnect and resync");
        return -1;
    }
    gw_metric_add(c->child->stats, GW_M_FRAMES_OUT, 1);
    return queue_buf(c, buf);
}

void gw_conn_close_ws(struct gw_conn *c, uint16_t code, const char *reason)
{
    if (c->state != GW_CONN_OPEN)
        return;
    unsigned char frame[2 + 2 + 125];
    size_t len = gw_frame_close(frame, code, reason);
    struct gw_buf *buf = gw_buf_new(len);
    if (buf != NULL) {
        memcpy(buf->data, frame, len);
        queue_buf(c, buf);
        gw_buf_unref(buf);
    }
    c->close_code = code;
    set_state(c, GW_CONN_CLOSING);
}

/* Runs from the write event: flush, then half-close a closing connection. */
static int flush(struct gw_conn *c)
{
    if (c->outq != NULL) {
        ssize_t w = gw_outq_write(c->outq, c->fd, WRITE_BUDGET);
        if (w < 0) {
            gw_conn_free(c);
            return -1;
        }
        gw_metric_add(c->child->stats, GW_M_BYTES_OUT, w);
        if (c->outq->count == 0) {
            gw_outq_free(c->outq);
            c->outq = NULL;
        }
    }
    if (c->outq == NULL) {
        set_writing(c, 0);
        if (c->state == GW_CONN_CLOSING && !c->wr_shut) {
            /* Lingering close: the peer sees EOF after our last byte and
             * closes; closing at once could reset what it has not read. */
            shutdown(c->fd, SHUT_WR);
            c->wr_shut = 1;
        }
    }
    return 0;
}

int gw_conn_send_msg(struct gw_conn *c, const char *msg, size_t len)
{
    struct gw_buf *buf;
    if (c->enc == CM_ENC_MSGPACK) {
        buf = gw_buf_frame(GW_OP_BINARY, msg, len);
    } else {
        msgpack_sbuffer json;
        msgpack_sbuffer_init(&json);
        if (cm_msgpack_to_json(msg, len, &json) < 0) {
            msgpack_sbuffer_destroy(&json);
            cm_warn("bad_delivery", "a server message could not be turned into JSON; dropped");
            return -1;
        }
        buf = gw_buf_frame(GW_OP_TEXT, json.data, json.size);
        msgpack_sbuffer_destroy(&json);
    }
    if (buf == NULL)
        return -1;
    int r = gw_conn_send(c, buf);
    gw_buf_unref(buf);
    return r;
}

size_t gw_conn_session_id(const struct gw_conn *c, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s.%x.%x", c->child->node, (unsigned)c->fd, (unsigned)c->gen);
    return n < 0 ? 0 : (size_t)n;
}

static void send_error(struct gw_conn *c, const char *id, size_t idlen, enum cm_err code, const char *message)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cm_pack_error(&pk, idlen > 0 ? id : NULL, idlen, code, message);
    gw_metric_add(c->child->stats, gw_metric_error(code), 1);
    gw_conn_send_msg(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

void gw_conn_send_push_failed(struct gw_conn *c, const char *id, size_t idlen)
{
    send_error(c, id, idlen, CM_ERR_UNAVAILABLE,
               "the connection to the message queue failed before this request was confirmed; "
               "retry it with the same id");
}

void gw_conn_send_hello(struct gw_conn *c)
{
    char session[128];
    size_t slen = gw_conn_session_id(c, session, sizeof(session));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    cm_pack_str(&pk, "op");
    cm_pack_str(&pk, "hello");
    cm_pack_str(&pk, "user");
    cm_pack_strn(&pk, c->user->name, c->user->name_len);
    cm_pack_str(&pk, "session");
    cm_pack_strn(&pk, session, slen);
    cm_pack_str(&pk, "node");
    cm_pack_str(&pk, c->child->node);
    cm_pack_str(&pk, "heartbeat");
    msgpack_pack_int(&pk, c->child->heartbeat_s);
    c->hello_pending = 0;
    gw_conn_send_msg(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

void gw_conn_send_resync(struct gw_conn *c)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    cm_pack_str(&pk, "op");
    cm_pack_str(&pk, "resync");
    cm_pack_str(&pk, "reason");
    cm_pack_str(&pk, "subscription_interrupted");
    c->resync_pending = 0;
    gw_metric_add(c->child->stats, GW_M_RESYNCS, 1);
    gw_conn_send_msg(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- HTTP ------------------------------------------------------------------ */

static void respond(struct gw_conn *c, int status, const char *ctype, const char *body, size_t body_len,
                    const char *extra)
{
    size_t cap = 512 + body_len + (extra ? strlen(extra) : 0);
    struct gw_buf *buf = gw_buf_new(cap);
    if (buf != NULL) {
        size_t n = gw_http_response((char *)buf->data, cap, status, ctype, body, body_len, extra, 1);
        if (n > 0) {
            buf->len = (uint32_t)n;
            queue_buf(c, buf);
        }
        gw_buf_unref(buf);
    }
    set_state(c, GW_CONN_CLOSING);
}

static void respond_text(struct gw_conn *c, int status, const char *text, const char *extra)
{
    respond(c, status, "text/plain; charset=utf-8", text, strlen(text), extra);
}

static int path_is(const struct gw_http_request *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

/* Returns -1 when the connection was freed. */
static int upgrade(struct gw_conn *c, const struct gw_http_request *req, const char *rest, size_t rest_len)
{
    struct gw_child *ch = c->child;
    /* A retiring child still upgrades the connections it accepted before
     * its successor took over (they are drained with 1001 like the rest):
     * a reload refuses nobody. A stopping gateway answers 503. */
    if (ch->draining && !ch->retiring) {
        gw_metric_add(ch->stats, GW_M_HANDSHAKE_DRAINING, 1);
        respond_text(c, 503, "draining: connect to another instance\n", "Retry-After: 1\r\n");
        return 0;
    }
    struct gw_handshake_result res;
    gw_handshake_check(req, &ch->hs, cm_now_ms() / 1000, &res);
    if (res.status != 101) {
        gw_metric_add(ch->stats, gw_metric_handshake_status(res.status), 1);
        char addr[GW_ADDR_TEXT_MAX];
        cm_debug("handshake_refused", "client %s: status %d: %s", client_text(c, addr, sizeof(addr)), res.status,
                 res.reason ? res.reason : "");
        char body[160];
        snprintf(body, sizeof(body), "%s\n", res.reason ? res.reason : gw_http_reason(res.status));
        const char *extra = res.status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                            : res.status == 401 ? "WWW-Authenticate: Bearer\r\n"
                                                : NULL;
        respond_text(c, res.status, body, extra);
        return 0;
    }
    long max_sessions = ch->cfg->max_sessions_per_user;
    struct gw_user *known = gw_users_find(ch, res.user, strlen(res.user));
    if (max_sessions > 0 && known != NULL && known->nsessions >= (uint32_t)max_sessions) {
        gw_metric_add(ch->stats, GW_M_HANDSHAKE_OVER_LIMIT, 1);
        char addr[GW_ADDR_TEXT_MAX];
        cm_info("handshake_refused", "user %s (client %s): over --max-sessions-per-user %ld", res.user,
                client_text(c, addr, sizeof(addr)), max_sessions);
        respond_text(c, 429, "too many sessions for this user\n", "Retry-After: 5\r\n");
        return 0;
    }
    char resp[512];
    size_t n = gw_handshake_response(&res, resp, sizeof(resp));
    struct gw_buf *buf = gw_buf_new(n);
    if (buf == NULL || n == 0) {
        gw_buf_unref(buf);
        gw_conn_free(c);
        return -1;
    }
    memcpy(buf->data, resp, n);
    queue_buf(c, buf);
    gw_buf_unref(buf);
    gw_metric_add(ch->stats, GW_M_HANDSHAKE_OK, 1);

    c->enc = (uint8_t)res.enc;
    c->tokens = ch->cfg->rate_limit.burst;
    c->tokens_ms = cm_monotonic_ms();
    c->hello_pending = 1;
    c->auth_exp_s = res.exp;
    set_state(c, GW_CONN_OPEN);
    if (gw_users_attach(ch, c, res.user) < 0) {
        gw_conn_close_ws(c, 1011, "out of memory");
        return 0;
    }
    if (rest_len > 0)
        return ws_input(c, (const unsigned char *)rest, rest_len);
    return 0;
}

/* Returns -1 when the connection was freed. */
static int http_input(struct gw_conn *c, const unsigned char *data, size_t len)
{
    struct gw_child *ch = c->child;
    struct gw_http_buf *h = c->http;
    if (h == NULL || h->len + len > h->cap) {
        size_t need = (h ? h->len : 0) + len;
        if (need > HTTP_BUF_MAX)
            need = HTTP_BUF_MAX;
        size_t cap = h ? h->cap : 0;
        if (cap < need) {
            cap = cap ? cap * 2 : 1024;
            while (cap < need)
                cap *= 2;
            if (cap > HTTP_BUF_MAX)
                cap = HTTP_BUF_MAX;
            struct gw_http_buf *n = realloc(h, sizeof(*n) + cap);
            if (n == NULL) {
                gw_conn_free(c);
                return -1;
            }
            if (h == NULL)
                n->len = 0;
            n->cap = cap;
            c->http = h = n;
        }
    }
    size_t take = len < h->cap - h->len ? len : h->cap - h->len;
    memcpy(h->data + h->len, data, take);
    h->len += take;

    size_t head = gw_http_head_end(h->data, h->len);
    if (head == 0 || head > GW_HTTP_HEAD_MAX) {
        /* Refuse as soon as a limit is passed, not when the head ends. */
        const char *eol = memchr(h->data, '\n', h->len);
        size_t line = eol ? gw_http_line_len(h->data, (size_t)(eol - h->data)) : h->len;
        if (line > GW_HTTP_REQUEST_LINE_MAX)
            respond_text(c, 414, "request line too long\n", NULL);
        else if (h->len >= GW_HTTP_HEAD_MAX || head > GW_HTTP_HEAD_MAX)
            respond_text(c, 431, "request head too large\n", NULL);
        return 0;
    }
    struct gw_http_request req;
    int status = gw_http_parse(h->data, head, &req);
    if (status != 0) {
        respond_text(c, status,
                     status == 431   ? "request head too large\n"
                     : status == 414 ? "request line too long\n"
                                     : "malformed request\n",
                     NULL);
        return 0;
    }
    if (c->via_proxy && c->ip == NULL) {
        /* A trusted proxy relays many clients: count the one it names. */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct gw_addr peer, client;
        memset(&ss, 0, sizeof(ss));
        if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0) {
            gw_conn_free(c);
            return -1;
        }
        gw_addr_from_sockaddr((struct sockaddr *)&ss, &peer);
        gw_client_addr(&peer, &ch->cfg->trusted_proxies, &req, &client);
        int r = count_address(c, &client);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    if (req.has_body) {
        respond_text(c, 400, "request bodies are not accepted\n", NULL);
        return 0;
    }
    const struct gw_www_file *file = gw_www_route(&ch->www, req.path, req.path_len);
    int known = file != NULL || path_is(&req, "/ws") || path_is(&req, "/healthz") || path_is(&req, "/readyz") ||
                path_is(&req, "/metrics");
    if (!known) {
        gw_metric_add(ch->stats, GW_M_HTTP_REQUESTS, 1);
        respond_text(c, 404, "not found\n", NULL);
        return 0;
    }
    if (req.method != HTTP_GET) {
        gw_metric_add(ch->stats, GW_M_HTTP_REQUESTS, 1);
        respond_text(c, 405, "method not allowed\n", "Allow: GET\r\n");
        return 0;
    }
    if (path_is(&req, "/ws")) {
        int r = upgrade(c, &req, h->data + head, h->len - head);
        if (r == 0 && c->http != NULL && c->state != GW_CONN_HTTP) {
            free(c->http);
            c->http = NULL;
        }
        return r;
    }
    gw_metric_add(ch->stats, GW_M_HTTP_REQUESTS, 1);
    if (path_is(&req, "/healthz")) {
        respond_text(c, 200, "ok\n", NULL);
    } else if (path_is(&req, "/readyz")) {
        if (gw_redis_ready(ch) && !ch->draining)
            respond_text(c, 200, "ready\n", NULL);
        else
            respond_text(c, 503, ch->draining ? "draining\n" : "redis unavailable\n", NULL);
    } else if (path_is(&req, "/metrics")) {
        char *text;
        size_t tlen;
        if (gw_metrics_render(ch->metrics, &text, &tlen) < 0) {
            respond_text(c, 500, "out of memory\n", NULL);
        } else {
            respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, tlen, NULL);
            free(text);
        }
    } else if (file->data != NULL) {
        respond(c, 200, file->ctype, file->data, file->len, GW_WWW_HEADERS);
    } else {
        respond_text(c, 404, "browser client not installed (see --www-dir)\n", NULL);
    }
    free(c->http);
    c->http = NULL;
    return 0;
}

/* ---- WebSocket input --------------------------------------------------------- */

/* Token bucket: refills at r->per_second up to r->burst; a token_ms of 0
 * means a bucket never used (full). 1 when a token was taken. */
static int bucket_take(const struct cm_rate *r, double *tokens, int64_t *tokens_ms, int64_t now)
{
    if (r->per_second <= 0)
        return 1;
    if (*tokens_ms == 0)
        *tokens = r->burst;
    else
        *tokens += (double)(now - *tokens_ms) * r->per_second / 1000.0;
    if (*tokens > r->burst)
        *tokens = r->burst;
    *tokens_ms = now;
    if (*tokens < 1.0)
        return 0;
    *tokens -= 1.0;
    return 1;
}

static int rate_allows(struct gw_conn *c)
{
    return bucket_take(&c->child->cfg->rate_limit, &c->tokens, &c->tokens_ms, cm_monotonic_ms());
}

/* The user's bucket, shared by all of the user's sessions on this child:
 * more sessions do not buy more requests. */
static int user_rate_allows(struct gw_conn *c)
{
    return c->user == NULL ||
           bucket_take(&c->child->cfg->user_rate_limit, &c->user->tokens, &c->user->tokens_ms, cm_monotonic_ms());
}

/* 1 when the session's token has expired (exp + leeway passed) at now_ms
 * (wall clock): the session is closed with 1008. */
static int token_expired(struct gw_conn *c, int64_t now_ms)
{
    if (c->auth_exp_s == 0 || now_ms / 1000 < c->auth_exp_s + c->child->hs.jwt_leeway)
        return 0;
    char addr[GW_ADDR_TEXT_MAX];
    cm_info("token_expired", "session %s:%u (client %s): token expired; closing with 1008",
            c->user != NULL ? c->user->name : "?", c->gen, client_text(c, addr, sizeof(addr)));
    gw_conn_close_ws(c, 1008, "token expired: reconnect with a new token");
    return 1;
}

static void handle_message(struct gw_conn *c, int opcode, const uint8_t *msg, size_t len)
{
    struct gw_child *ch = c->child;
    gw_metric_add(ch->stats, GW_M_FRAMES_IN, 1);
    int64_t now_ms = cm_now_ms();
    if (token_expired(c, now_ms))
        return;
    if (opcode == GW_OP_TEXT && !cm_utf8_valid(msg, len)) {
        gw_conn_close_ws(c, 1007, "text frame is not valid UTF-8");
        return;
    }
    enum cm_encoding enc = opcode == GW_OP_TEXT ? CM_ENC_JSON : CM_ENC_MSGPACK;
    if (enc != c->enc) {
        send_error(c, NULL, 0, CM_ERR_BAD_REQUEST,
                   c->enc == CM_ENC_JSON ? "this session speaks chatmi.v1.json: send text frames"
                                         : "this session speaks chatmi.v1.msgpack: send binary frames");
        return;
    }
    char id[CM_REQ_ID_MAX + 1];
    int session_ok = rate_allows(c);
    if (!session_ok || !user_rate_allows(c)) {
        const struct cm_rate *r = session_ok ? &ch->cfg->user_rate_limit : &ch->cfg->rate_limit;
        size_t idlen = cm_request_peek_id(enc, (const char *)msg, len, id);
        char text[112];
        snprintf(text, sizeof(text), "too many requests: at most %g per second, bursts of %g, per %s", r->per_second,
                 r->burst, session_ok ? "user" : "session");
        send_error(c, id, idlen, CM_ERR_RATE_LIMITED, text);
        return;
    }
    char session[128];
    size_t slen = gw_conn_session_id(c, session, sizeof(session));
    struct cm_envelope e = {
        .user = c->user->name,
        .user_len = c->user->name_len,
        .session = session,
        .session_len = slen,
        .node = ch->node,
        .node_len = strlen(ch->node),
        .recv_ms = now_ms,
        .enc = enc,
        .payload = (const char *)msg,
        .payload_len = len,
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    struct gw_push_origin origin = {.fd = c->fd, .gen = c->gen};
    origin.idlen = (uint8_t)cm_request_peek_id(enc, (const char *)msg, len, id);
    memcpy(origin.id, id, origin.idlen);
    int r = cm_envelope_pack(&sb, &e);
    if (r == 0)
        r = gw_redis_push(ch, c->user->name, c->user->name_len, sb.data, sb.size, &origin);
    msgpack_sbuffer_destroy(&sb);
    if (r < 0) {
        send_error(c, origin.id, origin.idlen, CM_ERR_UNAVAILABLE, "the message queue is unavailable: retry shortly");
        return;
    }
    gw_metric_add(ch->stats, GW_M_REQUESTS_QUEUED, 1);
}

/* Every frame that is not a whole data message (a continuation, a ping,
 * a pong) costs a token too, so floods of tiny fragments or pings cannot
 * run free; as such a frame has no request id to answer, running out
 * closes the session with 1008. A data message is charged once, whole, in
 * handle_message. */
static void ws_frame_start_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                              void *user_data)
{
    (void)ctx;
    struct gw_conn *c = user_data;
    if (c->state != GW_CONN_OPEN || arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME ||
        arg->opcode == WSLAY_CONNECTION_CLOSE)
        return;
    if (!rate_allows(c)) {
        char addr[GW_ADDR_TEXT_MAX];
        cm_info("rate_limited", "session %s:%u (client %s): too many control or continuation frames; closing with 1008",
                c->user != NULL ? c->user->name : "?", c->gen, client_text(c, addr, sizeof(addr)));
        gw_conn_close_ws(c, 1008, "too many frames");
    }
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data)
{
    (void)flags;
    struct gw_conn_io *io = ((struct gw_conn *)user_data)->io;
    if (io->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < io->in_len ? len : io->in_len;
    memcpy(buf, io->in, n);
    io->in += n;
    io->in_len -= n;
    return (ssize_t)n;
}

/* wslay's own frames (pong, its close replies) join the normal output. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user_data)
{
    (void)flags;
    struct gw_conn *c = user_data;
    struct gw_buf *buf = gw_buf_new(len);
    if (buf == NULL) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    memcpy(buf->data, data, len);
    queue_buf(c, buf);
    gw_buf_unref(buf);
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
    (void)ctx;
    struct gw_conn *c = user_data;
    if (c->state != GW_CONN_OPEN)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        handle_message(c, arg->opcode, arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .on_frame_recv_start_callback = ws_frame_start_cb,
    .on_msg_recv_callback = ws_msg_cb,
};

/* Returns -1 when the connection was freed. */
static int ws_input(struct gw_conn *c, const unsigned char *data, size_t len)
{
    if (c->io == NULL) {
        struct gw_conn_io *io = calloc(1, sizeof(*io));
        if (io == NULL || wslay_event_context_server_init(&io->ws, &ws_callbacks, c) != 0) {
            free(io);
            gw_conn_free(c);
            return -1;
        }
        wslay_event_config_set_max_recv_msg_length(io->ws, c->child->cfg->max_message_bytes);
        c->io = io;
    }
    struct gw_conn_io *io = c->io;
    gw_frame_scan_feed(&io->scan, data, len);
    io->in = data;
    io->in_len = len;
    int r = wslay_event_recv(io->ws);
    if (r != 0) {
        gw_conn_free(c);
        return -1;
    }
    if (c->state == GW_CONN_OPEN) {
        /* Pongs, close replies, and wslay's own closes (1002, 1009). */
        if (wslay_event_send(io->ws) != 0) {
            gw_conn_free(c);
            return -1;
        }
        if (wslay_event_get_close_sent(io->ws)) {
            c->close_code = wslay_event_get_status_code_sent(io->ws);
            set_state(c, GW_CONN_CLOSING);
        }
    }
    if (c->state != GW_CONN_OPEN || gw_frame_scan_idle(&io->scan))
        free_io(c);
    return 0;
}

/* ---- events ------------------------------------------------------------------ */

static void on_readable(struct gw_conn *c)
{
    struct gw_child *ch = c->child;
    ssize_t n;
    do
        n = read(c->fd, ch->rbuf, ch->rbuf_cap);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        gw_conn_free(c);
        return;
    }
    if (n < 0)
        return;
    gw_metric_add(ch->stats, GW_M_BYTES_IN, n);
    c->last_seen_ms = cm_monotonic_ms();
    switch (c->state) {
    case GW_CONN_HTTP:
        http_input(c, ch->rbuf, (size_t)n);
        break;
    case GW_CONN_OPEN:
        ws_input(c, ch->rbuf, (size_t)n);
        break;
    default:
        break; /* closing: whatever the peer still sends is dropped */
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct gw_conn *c = arg;
    if ((what & EV_WRITE) && flush(c) < 0)
        return;
    if (what & EV_READ)
        on_readable(c);
}

void gw_conn_check_deadline(struct gw_conn *c, int64_t now_ms)
{
    if (now_ms < c->deadline_ms)
        return;
    if (c->state == GW_CONN_HTTP) {
        gw_metric_add(c->child->stats, GW_M_HANDSHAKE_TIMEOUT, 1);
        cm_debug("handshake_timeout", "fd %d: no complete request in time", c->fd);
    }
    gw_conn_free(c);
}

void gw_conn_heartbeat(struct gw_conn *c, int64_t now_ms)
{
    if (c->state != GW_CONN_OPEN)
        return;
    if (now_ms - c->last_seen_ms > 2 * (int64_t)c->child->heartbeat_s * 1000) {
        gw_conn_close_ws(c, 1001, "heartbeat timeout");
        return;
    }
    /* An idle session's token is checked here, once per heartbeat period;
     * a request is checked as it arrives (handle_message). */
    if (c->auth_exp_s != 0 && token_expired(c, cm_now_ms()))
        return;
    gw_conn_send(c, c->child->ping);
}
