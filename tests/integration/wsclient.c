/* wsclient.c: see wsclient.h. Blocking sockets, every wait bounded by a
 * monotonic deadline through poll(2). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pipe2, nftw, strndup, close_range */
#endif
#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_DEFAULT_TIMEOUT_MS 5000
#define WS_MAX_PAYLOAD (64u * 1024 * 1024) /* refuse absurd lengths from a broken peer */
#define HTTP_HEAD_MAX 65536
#define HTTP_BODY_MAX (8u * 1024 * 1024)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- time and raw I/O ------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline)
{
    int64_t r = deadline - now_ms();
    if (r < 0)
        return 0;
    if (r > 3600 * 1000)
        return 3600 * 1000;
    return (int)r;
}

/* Waits for events on fd until the deadline. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, remaining(deadline));
        if (r < 0 && errno == EINTR) {
            if (now_ms() >= deadline)
                return 0;
            continue;
        }
        if (r < 0)
            return -1;
        return r > 0 ? 1 : 0;
    }
}

/* Writes everything before the deadline. 0 or -1. */
static int write_all(int fd, const void *data, size_t len, int64_t deadline)
{
    const unsigned char *p = data;
    while (len > 0) {
        int w = wait_fd(fd, POLLOUT, deadline);
        if (w <= 0)
            return -1;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One read of whatever is available before the deadline.
 * >0 bytes, 0 EOF, -1 timeout, -2 error. */
static ssize_t read_some(int fd, void *buf, size_t cap, int64_t deadline)
{
    for (;;) {
        int w = wait_fd(fd, POLLIN, deadline);
        if (w == 0)
            return -1;
        if (w < 0)
            return -2;
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0)
            return errno == ECONNRESET ? 0 : -2;
        return n;
    }
}

int it_tcp_connect(int port, int timeout_ms)
{
    return it_tcp_connect_rcvbuf(port, timeout_ms, 0);
}

int it_tcp_connect_rcvbuf(int port, int timeout_ms, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r < 0 && errno == EINPROGRESS) {
        if (wait_fd(fd, POLLOUT, now_ms() + timeout_ms) != 1) {
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        r = soerr == 0 ? 0 : -1;
    }
    if (r < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* back to blocking: all I/O below goes through poll() with deadlines and MSG_DONTWAIT */
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int it_wait_eof(int fd, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        ssize_t n = read_some(fd, buf, sizeof(buf), deadline);
        if (n == 0 || n == -2)
            return 1;
        if (n == -1)
            return 0;
    }
}

/* ---- HTTP -------------------------------------------------------------------- */

static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
    return 0;
}

const char *it_http_header(const char *head, const char *name, char *out, size_t outlen)
{
    if (head == NULL || outlen == 0)
        return NULL;
    size_t nlen = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line != NULL) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (eol == NULL || eol == line)
            break;
        if ((size_t)(eol - line) > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            size_t n = (size_t)(e - v);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        line = eol;
    }
    return NULL;
}

void it_http_resp_free(struct it_http_resp *resp)
{
    if (resp == NULL)
        return;
    free(resp->head);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

/* Reads a response head into resp on fd; leftover bytes after the head go
 * to resp->body. 0, or -1 when no complete head arrived. */
static int read_head(int fd, int64_t deadline, struct it_http_resp *resp)
{
    char *buf = malloc(HTTP_HEAD_MAX + 1);
    if (buf == NULL)
        return -1;
    size_t len = 0, hl = 0;
    while (hl == 0 && len < HTTP_HEAD_MAX) {
        ssize_t n = read_some(fd, buf + len, HTTP_HEAD_MAX - len, deadline);
        if (n <= 0) {
            if (n == 0)
                resp->closed = 1;
            break;
        }
        len += (size_t)n;
        hl = head_end(buf, len);
    }
    buf[len] = '\0';
    if (len > 0 && strncmp(buf, "HTTP/1.", 7) == 0 && len > 12)
        resp->status = atoi(buf + 9);
    if (hl == 0) {
        resp->head = buf;
        resp->body = strdup("");
        return -1;
    }
    resp->head = strndup(buf, hl);
    resp->body_len = len - hl;
    resp->body = malloc(resp->body_len + 1);
    if (resp->head == NULL || resp->body == NULL) {
        free(buf);
        return -1;
    }
    memcpy(resp->body, buf + hl, resp->body_len);
    resp->body[resp->body_len] = '\0';
    free(buf);
    return 0;
}

int it_http_raw(int port, const void *req, size_t len, int timeout_ms, int wait_close, struct it_http_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    int fd = it_tcp_connect(port, timeout_ms);
    if (fd < 0)
        return -1;
    return it_http_raw_fd(fd, req, len, timeout_ms, wait_close, resp);
}

int it_http_raw_fd(int fd, const void *req, size_t len, int timeout_ms, int wait_close, struct it_http_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    int64_t deadline = now_ms() + timeout_ms;
    if (write_all(fd, req, len, deadline) < 0) {
        /* the server may answer and close before reading everything: read anyway */
    }
    int rc = read_head(fd, deadline, resp);
    if (rc == 0) {
        char cl[32];
        long want = -1;
        if (it_http_header(resp->head, "Content-Length", cl, sizeof(cl)) != NULL)
            want = atol(cl);
        /* 1xx/204/304 have no body; 101 is not expected here */
        if (resp->status == 101 || resp->status == 204 || resp->status == 304)
            want = 0;
        while (!resp->closed && (want < 0 || resp->body_len < (size_t)want) && resp->body_len < HTTP_BODY_MAX) {
            char tmp[16384];
            ssize_t n = read_some(fd, tmp, sizeof(tmp), deadline);
            if (n == 0)
                resp->closed = 1;
            if (n <= 0)
                break;
            char *nb = realloc(resp->body, resp->body_len + (size_t)n + 1);
            if (nb == NULL)
                break;
            resp->body = nb;
            memcpy(resp->body + resp->body_len, tmp, (size_t)n);
            resp->body_len += (size_t)n;
            resp->body[resp->body_len] = '\0';
        }
        if (want >= 0 && resp->body_len < (size_t)want)
            rc = -1;
    }
    if (wait_close && !resp->closed)
        resp->closed = it_wait_eof(fd, remaining(deadline) > 0 ? remaining(deadline) : 1);
    close(fd);
    return rc;
}

int it_http_get(int port, const char *path, int timeout_ms, struct it_http_resp *resp)
{
    char req[2048];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path,
                     port);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        memset(resp, 0, sizeof(*resp));
        return -1;
    }
    return it_http_raw(port, req, (size_t)n, timeout_ms, 0, resp);
}

/* ---- WebSocket handshake ------------------------------------------------------ */

static void werr(struct ws *ws, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void werr(struct ws *ws, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ws->err, sizeof(ws->err), fmt, ap);
    va_end(ap);
}

static void b64(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static void expected_accept(const char *key, char *out)
{
    char cat[128];
    snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    unsigned char dig[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, strlen(cat), dig);
    b64(dig, sizeof(dig), out);
}

static void set_errbuf(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_errbuf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

struct ws *ws_connect(int port, const struct ws_connect_opts *o, struct it_http_resp *resp_out, char *errbuf,
                      size_t errlen)
{
    static const struct ws_connect_opts none;
    if (o == NULL)
        o = &none;
    int timeout = o->timeout_ms > 0 ? o->timeout_ms : WS_DEFAULT_TIMEOUT_MS;
    int64_t deadline = now_ms() + timeout;
    struct it_http_resp local;
    struct it_http_resp *resp = resp_out != NULL ? resp_out : &local;
    memset(resp, 0, sizeof(*resp));

    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        set_errbuf(errbuf, errlen, "RAND_bytes failed");
        return NULL;
    }
    char key[32];
    b64(nonce, sizeof(nonce), key);

    char proto_line[512] = "";
    if (o->protocols != NULL)
        snprintf(proto_line, sizeof(proto_line), "Sec-WebSocket-Protocol: %s\r\n", o->protocols);
    size_t reqcap = 4096 + (o->headers != NULL ? strlen(o->headers) : 0) + (o->path != NULL ? strlen(o->path) : 0);
    char *req = malloc(reqcap);
    if (req == NULL)
        return NULL;
    int reqlen = snprintf(req, reqcap,
                          "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s\r\n",
                          o->path != NULL ? o->path : "/ws", port, key, proto_line,
                          o->headers != NULL ? o->headers : "");

    int fd = it_tcp_connect_rcvbuf(port, timeout, o->rcvbuf);
    if (fd < 0) {
        free(req);
        set_errbuf(errbuf, errlen, "connect to 127.0.0.1:%d failed", port);
        return NULL;
    }
    if (write_all(fd, req, (size_t)reqlen, deadline) < 0) {
        free(req);
        close(fd);
        set_errbuf(errbuf, errlen, "sending the handshake failed");
        return NULL;
    }
    free(req);
    if (read_head(fd, deadline, resp) < 0) {
        set_errbuf(errbuf, errlen, "no complete handshake response (status %d, %s)", resp->status,
                   resp->closed ? "closed" : "timeout");
        close(fd);
        if (resp == &local)
            it_http_resp_free(&local);
        return NULL;
    }
    if (resp->status != 101) {
        /* read the error body so the caller can show it */
        char cl[32];
        if (it_http_header(resp->head, "Content-Length", cl, sizeof(cl)) != NULL) {
            size_t want = (size_t)atol(cl);
            while (resp->body_len < want && want < HTTP_BODY_MAX) {
                char tmp[4096];
                ssize_t n = read_some(fd, tmp, sizeof(tmp), deadline);
                if (n <= 0)
                    break;
                char *nb = realloc(resp->body, resp->body_len + (size_t)n + 1);
                if (nb == NULL)
                    break;
                resp->body = nb;
                memcpy(nb + resp->body_len, tmp, (size_t)n);
                resp->body_len += (size_t)n;
                nb[resp->body_len] = '\0';
            }
        }
        set_errbuf(errbuf, errlen, "handshake answered %d: %.200s", resp->status, resp->body);
        close(fd);
        if (resp == &local)
            it_http_resp_free(&local);
        return NULL;
    }
    char acc[128], want_acc[64];
    expected_accept(key, want_acc);
    if (it_http_header(resp->head, "Sec-WebSocket-Accept", acc, sizeof(acc)) == NULL || strcmp(acc, want_acc) != 0) {
        set_errbuf(errbuf, errlen, "bad Sec-WebSocket-Accept (got \"%s\", want \"%s\")",
                   it_http_header(resp->head, "Sec-WebSocket-Accept", acc, sizeof(acc)) ? acc : "(none)", want_acc);
        close(fd);
        if (resp == &local)
            it_http_resp_free(&local);
        return NULL;
    }

    struct ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        close(fd);
        return NULL;
    }
    ws->fd = fd;
    ws->port = port;
    ws->auto_pong = 1;
    ws->backlog = json_array();
    if (o->name != NULL)
        snprintf(ws->name, sizeof(ws->name), "%s", o->name);
    else
        snprintf(ws->name, sizeof(ws->name), "ws:%d%.40s", port, o->path != NULL ? o->path : "/ws");
    char proto[128];
    if (it_http_header(resp->head, "Sec-WebSocket-Protocol", proto, sizeof(proto)) != NULL &&
        strcmp(proto, IT_SUBPROTO_MSGPACK) == 0)
        ws->msgpack = 1;
    /* bytes after the head (the hello may come in the same segment) */
    if (resp->body_len > 0) {
        ws->rbuf = malloc(resp->body_len);
        if (ws->rbuf == NULL) {
            ws_free(ws);
            return NULL;
        }
        memcpy(ws->rbuf, resp->body, resp->body_len);
        ws->rlen = ws->rcap = resp->body_len;
    }
    if (resp == &local)
        it_http_resp_free(&local);
    return ws;
}

struct ws *ws_open(int port, const struct ws_connect_opts *o, char *errbuf, size_t errlen)
{
    struct ws *ws = ws_connect(port, o, NULL, errbuf, errlen);
    if (ws == NULL)
        return NULL;
    int timeout = o != NULL && o->timeout_ms > 0 ? o->timeout_ms : WS_DEFAULT_TIMEOUT_MS;
    json_t *h = ws_recv_json(ws, timeout);
    if (h == NULL || strcmp(js(h, "op"), "hello") != 0) {
        set_errbuf(errbuf, errlen, "%s: first message is not a hello: %s (%s)", ws->name,
                   h != NULL ? jdump(h) : "none", ws->err);
        json_decref(h);
        ws_free(ws);
        return NULL;
    }
    ws->hello = h;
    return ws;
}

struct ws *ws_open_user(int port, const char *user, const char *proto)
{
    char path[256], name[96];
    snprintf(path, sizeof(path), "/ws?user=%s", user);
    snprintf(name, sizeof(name), "%s@%d", user, port);
    struct ws_connect_opts o = {.path = path, .protocols = proto, .name = name};
    char err[512];
    struct ws *ws = ws_open(port, &o, err, sizeof(err));
    if (ws == NULL)
        fprintf(stderr, "ws_open_user(%s): %s\n", user, err);
    return ws;
}

struct ws *ws_open_token(int port, const char *token, const char *proto)
{
    char hdr[4200];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    struct ws_connect_opts o = {.path = "/ws", .protocols = proto, .headers = hdr, .name = "token"};
    char err[512];
    struct ws *ws = ws_open(port, &o, err, sizeof(err));
    if (ws == NULL)
        fprintf(stderr, "ws_open_token: %s\n", err);
    return ws;
}

const char *ws_session(const struct ws *ws)
{
    return ws != NULL && ws->hello != NULL ? js(ws->hello, "session") : "";
}

void ws_free(struct ws *ws)
{
    if (ws == NULL)
        return;
    if (ws->fd >= 0)
        close(ws->fd);
    free(ws->rbuf);
    json_decref(ws->backlog);
    json_decref(ws->hello);
    free(ws);
}

/* ---- frames ---------------------------------------------------------------- */

int ws_send_raw(struct ws *ws, const void *data, size_t len)
{
    if (write_all(ws->fd, data, len, now_ms() + WS_DEFAULT_TIMEOUT_MS) < 0) {
        werr(ws, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int ws_send_frame_ex(struct ws *ws, int opcode, int fin, int rsv, int unmasked, const void *data, size_t len)
{
    size_t hl = 2 + (len < 126 ? 0 : len <= 0xFFFF ? 2 : 8) + (unmasked ? 0 : 4);
    unsigned char *buf = malloc(hl + len);
    if (buf == NULL)
        return -1;
    size_t i = 0;
    buf[i++] = (unsigned char)((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0F));
    unsigned char maskbit = unmasked ? 0 : 0x80;
    if (len < 126) {
        buf[i++] = (unsigned char)(maskbit | len);
    } else if (len <= 0xFFFF) {
        buf[i++] = maskbit | 126;
        buf[i++] = (unsigned char)(len >> 8);
        buf[i++] = (unsigned char)len;
    } else {
        buf[i++] = maskbit | 127;
        for (int s = 56; s >= 0; s -= 8)
            buf[i++] = (unsigned char)((uint64_t)len >> s);
    }
    unsigned char mask[4] = {0, 0, 0, 0};
    if (!unmasked) {
        RAND_bytes(mask, 4);
        memcpy(buf + i, mask, 4);
        i += 4;
    }
    const unsigned char *src = data;
    for (size_t k = 0; k < len; k++)
        buf[i + k] = unmasked ? src[k] : (unsigned char)(src[k] ^ mask[k & 3]);
    int rc = ws_send_raw(ws, buf, i + len);
    free(buf);
    return rc;
}

int ws_send_frame(struct ws *ws, int opcode, int fin, const void *data, size_t len)
{
    return ws_send_frame_ex(ws, opcode, fin, 0, 0, data, len);
}

int ws_send_textn(struct ws *ws, const void *text, size_t len)
{
    return ws_send_frame(ws, WS_OP_TEXT, 1, text, len);
}

int ws_send_text(struct ws *ws, const char *text)
{
    return ws_send_textn(ws, text, strlen(text));
}

int ws_send_binary(struct ws *ws, const void *data, size_t len)
{
    return ws_send_frame(ws, WS_OP_BINARY, 1, data, len);
}

int ws_send_ping(struct ws *ws, const void *data, size_t len)
{
    return ws_send_frame(ws, WS_OP_PING, 1, data, len);
}

int ws_send_close(struct ws *ws, int code, const char *reason)
{
    unsigned char p[125] = {0};
    size_t n = 0;
    if (code > 0) {
        p[0] = (unsigned char)(code >> 8);
        p[1] = (unsigned char)code;
        n = 2;
        if (reason != NULL) {
            size_t rl = strlen(reason);
            if (rl > sizeof(p) - 2)
                rl = sizeof(p) - 2;
            memcpy(p + 2, reason, rl);
            n += rl;
        }
    }
    ws->close_sent = 1;
    return ws_send_frame(ws, WS_OP_CLOSE, 1, p, n);
}

/* Ensures n bytes in rbuf. 1 ok, 0 EOF, -1 timeout, -2 error. */
static int fill(struct ws *ws, size_t n, int64_t deadline)
{
    if (n > WS_MAX_PAYLOAD + 16)
        return -2;
    if (ws->rcap < n) {
        size_t cap = ws->rcap ? ws->rcap : 4096;
        while (cap < n)
            cap *= 2;
        unsigned char *nb = realloc(ws->rbuf, cap);
        if (nb == NULL)
            return -2;
        ws->rbuf = nb;
        ws->rcap = cap;
    }
    while (ws->rlen < n) {
        size_t room = ws->rcap - ws->rlen;
        ssize_t r = read_some(ws->fd, ws->rbuf + ws->rlen, room, deadline);
        if (r == 0)
            return 0;
        if (r == -1)
            return -1;
        if (r < 0)
            return -2;
        ws->rlen += (size_t)r;
    }
    return 1;
}

static void consume(struct ws *ws, size_t n)
{
    memmove(ws->rbuf, ws->rbuf + n, ws->rlen - n);
    ws->rlen -= n;
}

static int frame_rc(struct ws *ws, int r)
{
    if (r == 0)
        werr(ws, "EOF");
    else if (r == -1)
        werr(ws, "timeout");
    else
        werr(ws, "read error or oversized frame");
    return r == 0 ? 0 : -1;
}

static int recv_frame_deadline(struct ws *ws, struct ws_frame *f, int64_t deadline)
{
    memset(f, 0, sizeof(*f));
    int r = fill(ws, 2, deadline);
    if (r != 1)
        return frame_rc(ws, r);
    unsigned char b0 = ws->rbuf[0], b1 = ws->rbuf[1];
    size_t hl = 2;
    uint64_t len = b1 & 0x7F;
    if (len == 126)
        hl += 2;
    else if (len == 127)
        hl += 8;
    if (b1 & 0x80)
        hl += 4;
    r = fill(ws, hl, deadline);
    if (r != 1)
        return frame_rc(ws, r);
    if (len == 126) {
        len = ((uint64_t)ws->rbuf[2] << 8) | ws->rbuf[3];
    } else if (len == 127) {
        len = 0;
        for (int k = 0; k < 8; k++)
            len = (len << 8) | ws->rbuf[2 + k];
    }
    if (len > WS_MAX_PAYLOAD) {
        werr(ws, "frame of %llu bytes", (unsigned long long)len);
        return -1;
    }
    r = fill(ws, hl + (size_t)len, deadline);
    if (r != 1)
        return frame_rc(ws, r);
    f->opcode = b0 & 0x0F;
    f->fin = (b0 & 0x80) != 0;
    f->rsv = (b0 >> 4) & 7;
    f->masked = (b1 & 0x80) != 0;
    f->len = (size_t)len;
    f->data = malloc(f->len + 1);
    if (f->data == NULL)
        return -1;
    memcpy(f->data, ws->rbuf + hl, f->len);
    if (f->masked) {
        const unsigned char *m = ws->rbuf + hl - 4;
        for (size_t k = 0; k < f->len; k++)
            f->data[k] ^= m[k & 3];
    }
    f->data[f->len] = '\0';
    consume(ws, hl + f->len);
    return 1;
}

int ws_recv_frame(struct ws *ws, struct ws_frame *f, int timeout_ms)
{
    return recv_frame_deadline(ws, f, now_ms() + timeout_ms);
}

static void record_close(struct ws *ws, const struct ws_frame *f)
{
    if (f->len >= 2) {
        ws->close_code = (f->data[0] << 8) | f->data[1];
        size_t rl = f->len - 2;
        if (rl >= sizeof(ws->close_reason))
            rl = sizeof(ws->close_reason) - 1;
        memcpy(ws->close_reason, f->data + 2, rl);
        ws->close_reason[rl] = '\0';
    } else {
        ws->close_code = WS_CLOSE_NO_STATUS;
    }
    if (!ws->close_sent) {
        /* echo the close, as RFC 6455 5.5.1 asks; errors do not matter now */
        if (f->len >= 2)
            ws_send_close(ws, ws->close_code, NULL);
        else
            ws_send_close(ws, 0, NULL);
    }
}

int ws_recv_msg(struct ws *ws, int *opcode, unsigned char **data, size_t *len, int timeout_ms)
{
    if (ws->close_code != 0) {
        werr(ws, "closed (%d)", ws->close_code);
        return 0;
    }
    int64_t deadline = now_ms() + timeout_ms;
    unsigned char *acc = NULL;
    size_t acclen = 0;
    int accop = -1;
    for (;;) {
        struct ws_frame f;
        int r = recv_frame_deadline(ws, &f, deadline);
        if (r == 0) {
            ws->close_code = WS_CLOSE_ABNORMAL;
            free(acc);
            return 0;
        }
        if (r < 0) {
            free(acc);
            return -1;
        }
        switch (f.opcode) {
        case WS_OP_PING:
            ws->pings++;
            if (ws->auto_pong)
                ws_send_frame(ws, WS_OP_PONG, 1, f.data, f.len);
            free(f.data);
            continue;
        case WS_OP_PONG:
            ws->pongs++;
            ws->last_pong_len = f.len < sizeof(ws->last_pong) ? f.len : sizeof(ws->last_pong);
            memcpy(ws->last_pong, f.data, ws->last_pong_len);
            free(f.data);
            continue;
        case WS_OP_CLOSE:
            record_close(ws, &f);
            free(f.data);
            free(acc);
            werr(ws, "closed (%d %s)", ws->close_code, ws->close_reason);
            return 0;
        case WS_OP_TEXT:
        case WS_OP_BINARY:
            if (accop >= 0) {
                free(f.data);
                free(acc);
                werr(ws, "server started a new message inside a fragmented one");
                return -1;
            }
            if (f.fin) {
                *opcode = f.opcode;
                *data = f.data;
                *len = f.len;
                return 1;
            }
            accop = f.opcode;
            acc = f.data;
            acclen = f.len;
            continue;
        case WS_OP_CONT: {
            if (accop < 0) {
                free(f.data);
                werr(ws, "server sent a continuation without a message");
                return -1;
            }
            unsigned char *nb = realloc(acc, acclen + f.len + 1);
            if (nb == NULL) {
                free(f.data);
                free(acc);
                return -1;
            }
            acc = nb;
            memcpy(acc + acclen, f.data, f.len);
            acclen += f.len;
            acc[acclen] = '\0';
            free(f.data);
            if (f.fin) {
                *opcode = accop;
                *data = acc;
                *len = acclen;
                return 1;
            }
            continue;
        }
        default:
            free(f.data);
            free(acc);
            werr(ws, "server sent opcode %d", f.opcode);
            return -1;
        }
    }
}

/* ---- JSON view --------------------------------------------------------------- */

const char *js(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

int64_t ji(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

const char *jdump(json_t *v)
{
    static char buf[1024];
    if (v == NULL)
        return "(null)";
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s == NULL)
        return "(unprintable)";
    snprintf(buf, sizeof(buf), "%s", s);
    if (strlen(s) >= sizeof(buf))
        memcpy(buf + sizeof(buf) - 5, "...", 4);
    free(s);
    return buf;
}

static json_t *mp_to_json(const msgpack_object *o, int depth)
{
    if (depth > 64)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return NULL;
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return json_stringn(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *e = mp_to_json(&o->via.array.ptr[i], depth + 1);
            if (e == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, e);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) {
                json_decref(m);
                return NULL;
            }
            json_t *e = mp_to_json(&kv->val, depth + 1);
            if (e == NULL) {
                json_decref(m);
                return NULL;
            }
            char *k = strndup(kv->key.via.str.ptr, kv->key.via.str.size);
            if (k == NULL || json_object_set_new(m, k, e) != 0) {
                free(k);
                json_decref(m);
                return NULL;
            }
            free(k);
        }
        return m;
    }
    default:
        return NULL;
    }
}

json_t *ws_msgpack_to_json(const void *data, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *out = NULL;
    if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        out = mp_to_json(&u.data, 0);
    msgpack_unpacked_destroy(&u);
    return out;
}

static int pack_json(msgpack_packer *pk, json_t *v, int depth)
{
    if (depth > 64)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            size_t kl = strlen(k);
            msgpack_pack_str(pk, kl);
            msgpack_pack_str_body(pk, k, kl);
            if (pack_json(pk, e, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (pack_json(pk, e, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    case JSON_STRING: {
        size_t l = json_string_length(v);
        msgpack_pack_str(pk, l);
        msgpack_pack_str_body(pk, json_string_value(v), l);
        return 0;
    }
    case JSON_INTEGER:
        msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
        return 0;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    return -1;
}

int ws_json_to_msgpack(json_t *v, unsigned char **out, size_t *outlen)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (pack_json(&pk, v, 0) < 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    *outlen = sb.size; /* before release(), which resets it */
    *out = (unsigned char *)msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

json_t *ws_recv_json(struct ws *ws, int timeout_ms)
{
    int op = 0;
    unsigned char *data = NULL;
    size_t len = 0;
    int r = ws_recv_msg(ws, &op, &data, &len, timeout_ms);
    ws->last_rc = r;
    if (r != 1)
        return NULL;
    json_t *v = NULL;
    if (op == WS_OP_TEXT) {
        json_error_t je;
        v = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
        if (v == NULL)
            werr(ws, "text frame is not JSON (%s): %.100s", je.text, data);
        else if (ws->msgpack)
            werr(ws, "note: text frame on a msgpack session");
    } else {
        v = ws_msgpack_to_json(data, len);
        if (v == NULL)
            werr(ws, "binary frame of %zu bytes is not a MessagePack map", len);
    }
    if (v != NULL && !json_is_object(v)) {
        werr(ws, "server message is not an object: %.100s", jdump(v));
        json_decref(v);
        v = NULL;
    }
    if (v != NULL) {
        /* remember which framing carried it: tests check the encoding */
        json_object_set_new(v, "__frame", json_string(op == WS_OP_TEXT ? "text" : "binary"));
    }
    free(data);
    return v;
}

int ws_send_json(struct ws *ws, json_t *req)
{
    if (req == NULL) {
        werr(ws, "NULL request (json_pack failed?)");
        return -1;
    }
    int rc;
    if (ws->msgpack) {
        unsigned char *buf;
        size_t len;
        if (ws_json_to_msgpack(req, &buf, &len) < 0) {
            json_decref(req);
            return -1;
        }
        rc = ws_send_binary(ws, buf, len);
        free(buf);
    } else {
        char *s = json_dumps(req, JSON_COMPACT);
        if (s == NULL) {
            json_decref(req);
            return -1;
        }
        rc = ws_send_text(ws, s);
        free(s);
    }
    json_decref(req);
    return rc;
}

/* ---- waiting ------------------------------------------------------------------ */

int ws_match_id(json_t *msg, const void *id)
{
    json_t *v = json_object_get(msg, "id");
    return json_is_string(v) && strcmp(json_string_value(v), (const char *)id) == 0;
}

int ws_match_op(json_t *msg, const void *op)
{
    return strcmp(js(msg, "op"), (const char *)op) == 0;
}

int ws_match_msg_id(json_t *msg, const void *msg_id)
{
    return strcmp(js(msg, "op"), "message") == 0 && strcmp(js(msg, "msg"), (const char *)msg_id) == 0;
}

struct conv_seq {
    const char *conv;
    int64_t seq;
};

static int match_message(json_t *msg, const void *arg)
{
    const struct conv_seq *cs = arg;
    if (strcmp(js(msg, "op"), "message") != 0)
        return 0;
    if (cs->conv != NULL && strcmp(js(msg, "conv"), cs->conv) != 0)
        return 0;
    return cs->seq <= 0 || ji(msg, "seq") == cs->seq;
}

json_t *ws_wait(struct ws *ws, ws_match_fn match, const void *arg, int timeout_ms)
{
    size_t i;
    json_t *m;
    json_array_foreach(ws->backlog, i, m)
    {
        if (match(m, arg)) {
            json_incref(m);
            json_array_remove(ws->backlog, i);
            return m;
        }
    }
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int left = remaining(deadline);
        if (left <= 0) {
            werr(ws, "timeout");
            return NULL;
        }
        json_t *v = ws_recv_json(ws, left);
        if (v == NULL) {
            if (ws->last_rc != 1)
                return NULL; /* timeout, close or a broken connection: ws->err says */
            fprintf(stderr, "%s: ignoring an undecodable message: %s\n", ws->name, ws->err);
            continue;
        }
        if (match(v, arg))
            return v;
        json_array_append_new(ws->backlog, v);
    }
}

json_t *ws_wait_reply(struct ws *ws, const char *id, int timeout_ms)
{
    return ws_wait(ws, ws_match_id, id, timeout_ms);
}

json_t *ws_wait_op(struct ws *ws, const char *op, int timeout_ms)
{
    return ws_wait(ws, ws_match_op, op, timeout_ms);
}

json_t *ws_wait_message(struct ws *ws, const char *conv, int64_t seq, int timeout_ms)
{
    struct conv_seq cs = {conv, seq};
    return ws_wait(ws, match_message, &cs, timeout_ms);
}

json_t *ws_wait_msg_id(struct ws *ws, const char *msg_id, int timeout_ms)
{
    return ws_wait(ws, ws_match_msg_id, msg_id, timeout_ms);
}

json_t *ws_request(struct ws *ws, json_t *req, int timeout_ms)
{
    if (req == NULL) {
        werr(ws, "NULL request");
        return NULL;
    }
    char id[128];
    snprintf(id, sizeof(id), "%s", js(req, "id"));
    if (ws_send_json(ws, req) < 0)
        return NULL;
    return ws_wait_reply(ws, id, timeout_ms);
}

size_t ws_backlog_count(struct ws *ws, ws_match_fn match, const void *arg)
{
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(ws->backlog, i, m)
    {
        if (match(m, arg))
            n++;
    }
    return n;
}

json_t *ws_backlog_take(struct ws *ws, ws_match_fn match, const void *arg)
{
    json_t *out = json_array();
    size_t i = 0;
    while (i < json_array_size(ws->backlog)) {
        json_t *m = json_array_get(ws->backlog, i);
        if (match(m, arg)) {
            json_array_append(out, m);
            json_array_remove(ws->backlog, i);
        } else {
            i++;
        }
    }
    return out;
}

int ws_wait_close(struct ws *ws, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (ws->close_code == 0) {
        int left = remaining(deadline);
        if (left <= 0)
            return -1;
        int op;
        unsigned char *data;
        size_t len;
        int r = ws_recv_msg(ws, &op, &data, &len, left);
        if (r == 1) {
            json_t *v = op == WS_OP_TEXT ? json_loadb((const char *)data, len, 0, NULL) : ws_msgpack_to_json(data, len);
            if (v != NULL)
                json_array_append_new(ws->backlog, v);
            free(data);
        } else if (r < 0 && ws->close_code == 0) {
            if (strcmp(ws->err, "timeout") == 0)
                return -1;
            /* protocol error from the peer: treat as an abnormal end */
            ws->close_code = WS_CLOSE_ABNORMAL;
        }
    }
    return ws->close_code;
}
