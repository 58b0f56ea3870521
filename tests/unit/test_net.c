/* Unit tests: common/net.c (loopback only). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/net.h"

Test(net, parse_hostport_forms)
{
    char host[CM_NET_HOST_MAX], err[128];
    int port = -1;
    cr_assert_eq(cm_net_parse_hostport("127.0.0.1:8080", host, sizeof(host), &port, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 8080);
    cr_assert_eq(cm_net_parse_hostport(":9000", host, sizeof(host), &port, err, sizeof(err)), 0);
    cr_assert_str_eq(host, "0.0.0.0");
    cr_assert_eq(port, 9000);
    cr_assert_eq(cm_net_parse_hostport("[::1]:443", host, sizeof(host), &port, err, sizeof(err)), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 443);
    cr_assert_eq(cm_net_parse_hostport("localhost:0", host, sizeof(host), &port, err, sizeof(err)), 0);
    cr_assert_str_eq(host, "localhost");
    cr_assert_eq(port, 0);
}

Test(net, parse_hostport_rejects)
{
    char host[CM_NET_HOST_MAX], err[128];
    int port;
    const char *bad[] = {"", "host", "host:", "host:65536", "host:-1", "host:80x", "::1:80", "[::1]80",
                         "[::1", "[]:80", "host:8 0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cr_assert_eq(cm_net_parse_hostport(bad[i], host, sizeof(host), &port, err, sizeof(err)), -1,
                     "accepted \"%s\"", bad[i]);
        cr_assert_neq(err[0], '\0', "no message for \"%s\"", bad[i]);
    }
    char small[4];
    cr_assert_eq(cm_net_parse_hostport("longhost:1", small, sizeof(small), &port, err, sizeof(err)), -1);
}

Test(net, listen_connect_roundtrip)
{
    char err[256] = "";
    int lfd = cm_net_listen("127.0.0.1", 0, 16, 1, err, sizeof(err));
    cr_assert_geq(lfd, 0, "%s", err);
    cr_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    int port = cm_net_local_port(lfd);
    cr_assert_gt(port, 0);

    int cfd = cm_net_connect("127.0.0.1", port, 2000, err, sizeof(err));
    cr_assert_geq(cfd, 0, "%s", err);
    cr_assert_eq(fcntl(cfd, F_GETFL) & O_NONBLOCK, 0, "connect must return a blocking socket");
    cr_assert_eq(cm_net_set_nodelay(cfd), 0);
    int afd = -1;
    for (int i = 0; i < 200 && afd < 0; i++) {
        afd = accept(lfd, NULL, NULL);
        if (afd < 0)
            usleep(5000);
    }
    cr_assert_geq(afd, 0);
    cr_assert_eq(write(cfd, "ping", 4), 4);
    char buf[8];
    cr_assert_eq(read(afd, buf, sizeof(buf)), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert_eq(cm_net_set_nonblock(afd), 0);
    cr_assert(fcntl(afd, F_GETFL) & O_NONBLOCK);
    cr_assert_eq(read(afd, buf, sizeof(buf)), -1);
    cr_assert_eq(errno, EAGAIN);
    close(afd);
    close(cfd);
    close(lfd);
}

Test(net, reuseport_allows_two_listeners)
{
    char err[256] = "";
    int a = cm_net_listen("127.0.0.1", 0, 16, 1, err, sizeof(err));
    cr_assert_geq(a, 0, "%s", err);
    int b = cm_net_listen("127.0.0.1", cm_net_local_port(a), 16, 1, err, sizeof(err));
    cr_assert_geq(b, 0, "%s", err);
    /* without SO_REUSEPORT the port is taken */
    int c = cm_net_listen("127.0.0.1", cm_net_local_port(a), 16, 0, err, sizeof(err));
    cr_assert_eq(c, -1);
    cr_assert_not_null(strstr(err, "bind"), "%s", err);
    close(a);
    close(b);
}

Test(net, connect_refused_and_bad_host)
{
    char err[256] = "";
    int lfd = cm_net_listen("127.0.0.1", 0, 1, 0, err, sizeof(err));
    cr_assert_geq(lfd, 0);
    int port = cm_net_local_port(lfd);
    close(lfd); /* nothing listens there now */
    cr_assert_eq(cm_net_connect("127.0.0.1", port, 1000, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "refused"), "%s", err);
    cr_assert_eq(cm_net_listen("no-such-host.invalid", 0, 1, 0, err, sizeof(err)), -1);
    cr_assert_eq(cm_net_local_port(-1), -1);
}
