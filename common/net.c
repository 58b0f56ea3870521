/* net.c: socket set-up helpers. None logs; errors go to the caller's buffer. */
#include "common/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"

static int parse_port(const char *s, int *port)
{
    if (*s == '\0')
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return -1;
    }
    *port = (int)v;
    return 0;
}

int cm_net_parse_hostport(const char *s, char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
    const char *h, *colon;
    size_t hl;

    if (s == NULL || *s == '\0') {
        snprintf(err, errlen, "expected host:port, got an empty value");
        return -1;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            snprintf(err, errlen, "expected [v6-address]:port, got \"%s\"", s);
            return -1;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            snprintf(err, errlen, "expected host:port, got \"%s\" (no port)", s);
            return -1;
        }
        h = s;
        hl = (size_t)(colon - s);
        if (memchr(h, ':', hl) != NULL) {
            snprintf(err, errlen, "an IPv6 address needs brackets, like [::1]:8080; got \"%s\"", s);
            return -1;
        }
        if (hl == 0) {
            h = "0.0.0.0";
            hl = 7;
        }
    }
    if (hl == 0 || hl >= hostlen || hl >= CM_NET_HOST_MAX) {
        snprintf(err, errlen, "bad host in \"%s\"", s);
        return -1;
    }
    if (parse_port(colon + 1, port) < 0) {
        snprintf(err, errlen, "port must be a number from 0 to 65535, got \"%s\"", colon + 1);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    return 0;
}

static struct addrinfo *resolve(const char *host, int port, int passive, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return NULL;
    }
    return res;
}

int cm_net_listen(const char *host, int port, int backlog, int reuseport, char *err, size_t errlen)
{
    struct addrinfo *res = resolve(host, port, 1, err, errlen);
    if (res == NULL)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int on = 1;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
            (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)) {
            snprintf(err, errlen, "setsockopt: %s", strerror(errno));
        } else if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            snprintf(err, errlen, "bind %s:%d: %s", host, port, strerror(errno));
        } else if (listen(fd, backlog) < 0) {
            snprintf(err, errlen, "listen %s:%d: %s", host, port, strerror(errno));
        } else {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* One non-blocking connect attempt bounded by deadline_ms; leaves the fd blocking on success. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ms, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "connect: %s", strerror(errno));
            goto fail;
        }
        for (;;) {
            int64_t left = deadline_ms - cm_monotonic_ms();
            if (left <= 0) {
                snprintf(err, errlen, "connect: timed out");
                goto fail;
            }
            struct pollfd pfd = {fd, POLLOUT, 0};
            int r = poll(&pfd, 1, (int)left);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                snprintf(err, errlen, "poll: %s", strerror(errno));
                goto fail;
            }
            if (r > 0)
                break;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr != 0) {
            snprintf(err, errlen, "connect: %s", strerror(soerr));
            goto fail;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

int cm_net_connect(const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo *res = resolve(host, port, 0, err, errlen);
    if (res == NULL)
        return -1;
    int64_t deadline = cm_monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline, err, errlen);
    freeaddrinfo(res);
    return fd;
}

int cm_net_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -1 : 0;
}

int cm_net_set_nodelay(int fd)
{
    int on = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) < 0 ? -1 : 0;
}

int cm_net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}
