/* metrics_http.c: the metrics thread (metrics_http.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "worker/metrics_http.h"

#define REQUEST_MAX 4096
#define CLIENT_DEADLINE_MS 2000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wk_metrics_route(const char *head, size_t len, int *what)
{
    *what = 0;
    const char *sp = memchr(head, ' ', len);
    if (sp == NULL)
        return 400;
    const char *path = sp + 1;
    const char *end = memchr(path, ' ', len - (size_t)(path - head));
    if (end == NULL || (size_t)(head + len - end) < 9 || memcmp(end + 1, "HTTP/1.", 7) != 0)
        return 400;
    size_t plen = (size_t)(end - path);
    const char *q = memchr(path, '?', plen);
    if (q != NULL)
        plen = (size_t)(q - path);
    static const char *const paths[] = {"/metrics", "/healthz", "/readyz"};
    for (int i = 0; i < 3; i++) {
        if (plen == strlen(paths[i]) && memcmp(path, paths[i], plen) == 0) {
            *what = i + 1;
            return (size_t)(sp - head) == 3 && memcmp(head, "GET", 3) == 0 ? 200 : 405;
        }
    }
    return 404;
}

/* Waits for fd to be ready for events until deadline: 1, or 0 on timeout. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

static void write_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            if (!wait_fd(fd, POLLOUT, deadline))
                return;
        } else {
            return;
        }
    }
}

static void respond(int fd, int status, const char *ctype, const char *body, size_t len, int64_t deadline)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 503 ? "Service Unavailable"
                         : status == 500 ? "Internal Server Error"
                                         : "Bad Request";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     status, reason, ctype, len, status == 405 ? "Allow: GET\r\n" : "");
    write_all(fd, head, (size_t)n, deadline);
    write_all(fd, body, len, deadline);
}

static void serve(struct wk_metrics_server *s, int fd)
{
    int64_t deadline = mono_ms() + CLIENT_DEADLINE_MS;
    char req[REQUEST_MAX];
    size_t len = 0;
    const char *end = NULL;
    while (end == NULL && len < sizeof(req)) {
        ssize_t r = read(fd, req + len, sizeof(req) - len);
        if (r > 0) {
            len += (size_t)r;
            for (size_t i = len >= 4 ? 0 : len; i + 4 <= len && end == NULL; i++)
                if (memcmp(req + i, "\r\n\r\n", 4) == 0)
                    end = req + i;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && errno == EAGAIN) {
            if (!wait_fd(fd, POLLIN, deadline))
                return;
        } else {
            return;
        }
    }
    if (end == NULL) {
        respond(fd, 400, "text/plain; charset=utf-8", "request head too large\n", 23, deadline);
        /* Closing with unread input would reset the connection and lose
         * the answer: read what the client still sends (bounded). */
        shutdown(fd, SHUT_WR);
        while (len > 0 && wait_fd(fd, POLLIN, deadline)) {
            ssize_t r = read(fd, req, sizeof(req));
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                break;
        }
        return;
    }
    const char *eol = memchr(req, '\r', (size_t)(end - req) + 1);
    int what;
    int status = wk_metrics_route(req, (size_t)(eol - req), &what);
    const char *text = "text/plain; charset=utf-8";
    if (status != 200) {
        const char *msg = status == 404 ? "not found\n" : status == 405 ? "method not allowed\n" : "bad request\n";
        respond(fd, status, text, msg, strlen(msg), deadline);
    } else if (what == 2) {
        respond(fd, 200, text, "ok\n", 3, deadline);
    } else if (what == 3) {
        int up = 1;
        for (size_t i = 0; i < s->nm; i++)
            up &= __atomic_load_n(&s->m[i]->redis_up, __ATOMIC_RELAXED) != 0;
        respond(fd, up ? 200 : 503, text, up ? "ready\n" : "redis unavailable\n", up ? 6 : 18, deadline);
    } else {
        char *body;
        size_t blen;
        if (wk_metrics_render(s->m, s->nm, s->worker_id, s->stage, &body, &blen) < 0) {
            respond(fd, 500, text, "out of memory\n", 14, deadline);
            return;
        }
        respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8", body, blen, deadline);
        free(body);
    }
}

static void *run(void *arg)
{
    struct wk_metrics_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || p[1].revents != 0)
            break;
        if (p[0].revents == 0)
            continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Back off rather than spin on a listener that stays readable. */
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

int wk_metrics_server_start(struct wk_metrics_server *s, const char *host, int port,
                            const struct wk_metrics *const *m, size_t nm, const char *worker_id, const char *stage,
                            char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->listen_fd = -1;
    s->wake[0] = s->wake[1] = -1;
    s->m = m;
    s->nm = nm;
    s->worker_id = worker_id;
    s->stage = stage;
    char why[256];
    int fd = cm_net_listen(host, port, 64, 0, why, sizeof(why));
    if (fd < 0) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (cm_net_set_nonblock(fd) < 0 || pipe2(s->wake, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    s->listen_fd = fd;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, run, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the metrics thread: %s", strerror(rc));
        close(s->wake[0]);
        close(s->wake[1]);
        close(fd);
        s->listen_fd = -1;
        return -1;
    }
    return 0;
}

void wk_metrics_server_stop(struct wk_metrics_server *s)
{
    if (s->listen_fd < 0)
        return;
    close(s->wake[1]); /* EOF wakes the thread */
    pthread_join(s->thread, NULL);
    close(s->wake[0]);
    close(s->listen_fd);
    s->listen_fd = -1;
}
