/* probe.c: looking at the system under test from the side (fault.h):
 * Redis counters, which gateway child holds a connection, and a session
 * that never reads. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/keys.h"
#include "fault.h"
#include "itest.h"

/* ---- Redis -------------------------------------------------------------------------- */

static int g_redis_port; /* 0: the test's Redis */

void fl_redis_use_port(int port)
{
    g_redis_port = port;
}

/* One command on 127.0.0.1:port (a fresh connection); the reply, or NULL.
 * asking: send ASKING first (after an ASK redirection). */
static redisReply *command_at(int port, int asking, const char *fmt, va_list ap)
{
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (asking) {
        redisReply *a = redisCommand(c, "ASKING");
        if (a != NULL)
            freeReplyObject(a);
    }
    redisReply *r = redisvCommand(c, fmt, ap);
    redisFree(c);
    return r;
}

/* The port of a "MOVED <slot> <host>:<port>" or "ASK ..." error; 0 if not one. */
static int redirect_port(const redisReply *r, int *asking)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return 0;
    int ask = strncmp(r->str, "ASK ", 4) == 0;
    if (!ask && strncmp(r->str, "MOVED ", 6) != 0)
        return 0;
    const char *colon = strrchr(r->str, ':');
    *asking = ask;
    return colon != NULL ? atoi(colon + 1) : 0;
}

long long fl_redis_int(const char *fmt, ...)
{
    int port = g_redis_port > 0 ? g_redis_port : it_redis_port();
    int asking = 0;
    long long v = -1;
    /* in a cluster a key command may be redirected to the slot's owner */
    for (int hop = 0; hop < 5; hop++) {
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = command_at(port, asking, fmt, ap);
        va_end(ap);
        int next = redirect_port(r, &asking);
        if (next == 0)
            v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        if (r != NULL)
            freeReplyObject(r);
        if (next == 0)
            break;
        port = next;
    }
    return v;
}

/* Over the keys matching pattern on every live master of the cluster
 * (SCAN; a fresh connection per master): the sum of their LLEN, or with
 * member set how many of them (zsets) hold member. -1 on failure. */
static long long cluster_scan_sum(const char *pattern, const char *member)
{
    int m[16];
    int nm = it_cluster_masters(m, 16);
    long long sum = 0;
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    for (int i = 0; i < nm; i++) {
        redisContext *c = redisConnectWithTimeout("127.0.0.1", it_cluster_port(m[i]), tv);
        if (c == NULL || c->err) {
            if (c != NULL)
                redisFree(c);
            return -1;
        }
        redisSetTimeout(c, tv);
        char cursor[32] = "0";
        for (int round = 0; round < 10000; round++) {
            redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
            if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                if (r != NULL)
                    freeReplyObject(r);
                redisFree(c);
                return -1;
            }
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            for (size_t k = 0; k < r->element[1]->elements; k++) {
                const redisReply *key = r->element[1]->element[k];
                redisReply *n = member != NULL ? redisCommand(c, "ZSCORE %b %s", key->str, key->len, member)
                                               : redisCommand(c, "LLEN %b", key->str, key->len);
                if (n != NULL && n->type == REDIS_REPLY_INTEGER)
                    sum += n->integer;
                else if (n != NULL && member != NULL && n->type != REDIS_REPLY_NIL && n->type != REDIS_REPLY_ERROR)
                    sum++;
                if (n != NULL)
                    freeReplyObject(n);
            }
            freeReplyObject(r);
            if (strcmp(cursor, "0") == 0)
                break;
        }
        redisFree(c);
    }
    return sum;
}

long long fl_worker_listed(const char *worker_id)
{
    if (it_cluster_active()) {
        char pattern[CM_KEY_MAX];
        snprintf(pattern, sizeof(pattern), "%s:{q*}:workers", CM_KEY_PREFIX);
        return cluster_scan_sum(pattern, worker_id);
    }
    char workers[CM_KEY_MAX];
    cm_key_queue(workers, "workers");
    return fl_redis_int("EVAL %s 1 %s %s", "return redis.call('ZSCORE', KEYS[1], ARGV[1]) and 1 or 0", workers,
                        worker_id);
}

long long fl_queue_items(const char *name)
{
    if (it_cluster_active()) {
        /* partitioned queues: chatmi:{q<partition>}:<name>, whatever the partition's spelling */
        char pattern[CM_KEY_MAX];
        snprintf(pattern, sizeof(pattern), "%s:{q*}:%s", CM_KEY_PREFIX, name);
        return cluster_scan_sum(pattern, NULL);
    }
    char k[CM_KEY_MAX];
    cm_key_queue(k, name);
    return fl_redis_int("LLEN %s", k);
}

long long fl_worker_in_hand(const char *worker_id)
{
    if (it_cluster_active()) {
        char pattern[CM_KEY_MAX];
        snprintf(pattern, sizeof(pattern), "%s:{q*}:*:proc:%s", CM_KEY_PREFIX, worker_id);
        return cluster_scan_sum(pattern, NULL);
    }
    char in[CM_KEY_MAX], out[CM_KEY_MAX];
    cm_key_queue_proc(in, "inbound", worker_id);
    cm_key_queue_proc(out, "fanout", worker_id);
    long long a = fl_redis_int("LLEN %s", in), b = fl_redis_int("LLEN %s", out);
    return a < 0 || b < 0 ? -1 : a + b;
}

/* ---- who holds a connection ---------------------------------------------------------- */

/* The socket inode of the server side of 127.0.0.1:client_port -> gw_port. */
static unsigned long server_inode(int gw_port, int client_port)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    if (f == NULL)
        return 0;
    char line[512];
    unsigned long found = 0;
    while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
        unsigned laddr, lport, raddr, rport, st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %x:%x %x:%x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &laddr, &lport, &raddr, &rport, &st,
                   &inode) != 6)
            continue;
        if ((int)lport == gw_port && (int)rport == client_port && inode != 0)
            found = inode;
    }
    fclose(f);
    return found;
}

static int holds_inode(pid_t pid, unsigned long inode)
{
    char dir[64], want[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL) {
        char path[600], target[128];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        found = strcmp(target, want) == 0;
    }
    closedir(d);
    return found;
}

pid_t fl_conn_owner(int gw_port, int local_port, const pid_t *pids, int npids)
{
    unsigned long inode = local_port > 0 ? server_inode(gw_port, local_port) : 0;
    if (inode == 0)
        return 0;
    for (int i = 0; i < npids; i++)
        if (holds_inode(pids[i], inode))
            return pids[i];
    return 0;
}

/* ---- a session that never reads --------------------------------------------------------- */

int fl_stalled_open(int port, const char *user)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    /* set before connecting: the window scale and the MSS are negotiated
     * in the handshake; a small MSS keeps the server's send buffer small */
    int rcvbuf = 4096, mss = 536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect to %d: %s", port, strerror(errno));
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws?user=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: c3RhbGxlZCBjbGllbnQhIQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: chatmi.v1.json\r\n\r\n",
                     user, port);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n, "sending the stalled client's handshake failed");
    /* the response head, byte by byte so no frame byte is taken */
    struct timeval tv = {.tv_sec = it_ms(5000) / 1000, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char head[2048];
    size_t len = 0;
    while (len < sizeof(head) - 1) {
        ssize_t r = recv(fd, head + len, 1, 0);
        cr_assert(r == 1, "the stalled client's handshake got no complete answer (%zu bytes: %.*s)", len, (int)len,
                  head);
        len++;
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[len] = '\0';
    cr_assert(strncmp(head, "HTTP/1.1 101", 12) == 0, "stalled client handshake: %s", head);
    return fd;
}

int fl_stalled_close_code(int fd, int timeout_ms)
{
    struct timeval none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    struct ws *ws = calloc(1, sizeof(*ws));
    cr_assert_not_null(ws);
    ws->fd = fd;
    ws->auto_pong = 1;
    ws->backlog = json_array();
    snprintf(ws->name, sizeof(ws->name), "stalled");
    int code = ws_wait_close(ws, timeout_ms);
    ws_free(ws);
    return code;
}
