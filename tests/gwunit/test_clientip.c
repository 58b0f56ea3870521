/* test_clientip.c: addresses, CIDR lists, X-Forwarded-For from trusted
 * proxies (gateway/clientip.c) and connection counts per address
 * (gateway/ipcount.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "gateway/clientip.h"
#include "gateway/http.h"
#include "gateway/ipcount.h"

TestSuite(cidr, .timeout = 20);
TestSuite(xff, .timeout = 20);
TestSuite(ipcount, .timeout = 20);

static struct gw_addr A(const char *s)
{
    struct gw_addr a;
    cr_assert_eq(gw_addr_parse(s, strlen(s), &a), 0, "%s", s);
    return a;
}

static const char *fmt(const struct gw_addr *a)
{
    static char buf[GW_ADDR_TEXT_MAX];
    gw_addr_format(a, buf, sizeof(buf));
    return buf;
}

Test(cidr, parse_and_match)
{
    struct gw_cidrs l;
    char err[128];
    cr_assert_eq(gw_cidrs_parse(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,172.16.0.0/12", &l, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(l.n, 4);
    struct gw_addr in[] = {A("10.1.2.3"), A("192.0.2.7"), A("2001:db8:1::5"), A("172.31.255.255"), A("10.0.0.0")};
    struct gw_addr out[] = {A("11.0.0.1"), A("192.0.2.8"), A("2001:db9::1"), A("172.32.0.0"), A("::ffff:0:a00:1"),
                            A("::")};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        cr_assert(gw_cidrs_match(&l, &in[i]), "%s should match", fmt(&in[i]));
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        cr_assert(!gw_cidrs_match(&l, &out[i]), "%s should not match", fmt(&out[i]));
    gw_cidrs_free(&l);

    /* host bits are cleared; /0 matches everything of its family */
    cr_assert_eq(gw_cidrs_parse("10.9.9.9/8,0.0.0.0/0", &l, err, sizeof(err)), 0);
    struct gw_addr x = A("203.0.113.1");
    cr_assert(gw_cidrs_match(&l, &x));
    x = A("2001:db8::1");
    cr_assert(!gw_cidrs_match(&l, &x), "an IPv4 /0 does not cover IPv6");
    gw_cidrs_free(&l);

    cr_assert_eq(gw_cidrs_parse("", &l, err, sizeof(err)), 0);
    cr_assert_eq(l.n, 0);
    cr_assert(!gw_cidrs_match(&l, &x));
    cr_assert_eq(gw_cidrs_parse(NULL, &l, err, sizeof(err)), 0);
}

Test(cidr, bad_lists_refused)
{
    const char *bad[] = {"10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/8x", "host.example",
                         "10.0.0.0/-1", "1.2.3.4/0008", "10.0.0.1 10.0.0.2", "::1/64/1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gw_cidrs l;
        char err[128] = "";
        cr_assert_eq(gw_cidrs_parse(bad[i], &l, err, sizeof(err)), -1, "\"%s\" accepted", bad[i]);
        cr_assert(strlen(err) > 0);
        cr_assert_null(l.v);
    }
}

Test(cidr, format_and_limit_key)
{
    struct gw_addr a = A("192.0.2.1"), k;
    cr_assert_str_eq(fmt(&a), "192.0.2.1");
    a = A("2001:db8:0:1:aaaa:bbbb:cccc:dddd");
    cr_assert_str_eq(fmt(&a), "2001:db8:0:1:aaaa:bbbb:cccc:dddd");
    gw_addr_limit_key(&a, &k);
    cr_assert_str_eq(fmt(&k), "2001:db8:0:1::", "IPv6 counts per /64");
    a = A("192.0.2.200");
    gw_addr_limit_key(&a, &k);
    cr_assert_str_eq(fmt(&k), "192.0.2.200", "IPv4 counts per address");
    struct gw_addr bad;
    cr_assert_eq(gw_addr_parse("1.2.3.4 ", 8, &bad), -1);
    cr_assert_eq(gw_addr_parse("", 0, &bad), -1);
    cr_assert_eq(gw_addr_parse("[::1]", 5, &bad), -1);
}

/* Parses a head with the given X-Forwarded-For lines and resolves the client of peer. */
static const char *client_of(const char *peer, const char *trusted, const char *xff_lines)
{
    static char head[2048];
    struct gw_http_request req;
    struct gw_cidrs l;
    char err[128];
    snprintf(head, sizeof(head), "GET /ws HTTP/1.1\r\nHost: x\r\n%s\r\n", xff_lines);
    cr_assert_eq(gw_http_parse(head, strlen(head), &req), 0, "%s", head);
    cr_assert_eq(gw_cidrs_parse(trusted, &l, err, sizeof(err)), 0);
    struct gw_addr p = A(peer), c;
    gw_client_addr(&p, &l, &req, &c);
    gw_cidrs_free(&l);
    return fmt(&c);
}

Test(xff, only_from_trusted_peers)
{
    const char *t = "10.0.0.0/8";
    cr_assert_str_eq(client_of("203.0.113.5", t, "X-Forwarded-For: 198.51.100.1\r\n"), "203.0.113.5",
                     "an untrusted peer's header is ignored");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 198.51.100.1\r\n"), "198.51.100.1");
    cr_assert_str_eq(client_of("10.0.0.2", t, ""), "10.0.0.2", "no header: the proxy itself");
    cr_assert_str_eq(client_of("10.0.0.2", "", "X-Forwarded-For: 198.51.100.1\r\n"), "10.0.0.2",
                     "no trusted proxies: never believed");
}

Test(xff, rightmost_untrusted_is_the_client)
{
    const char *t = "10.0.0.0/8, 2001:db8:ffff::/48";
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 1.1.1.1, 198.51.100.1\r\n"), "198.51.100.1",
                     "what the client wrote itself (left) does not count");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 198.51.100.1, 10.3.3.3 ,10.2.2.2\r\n"),
                     "198.51.100.1", "trusted hops are skipped");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 10.9.9.9, 10.3.3.3\r\n"), "10.9.9.9",
                     "every entry trusted: the leftmost");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 198.51.100.1, junk, 10.3.3.3\r\n"), "10.3.3.3",
                     "garbage stops the walk at the last trusted hop");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 198.51.100.1, junk\r\n"), "10.0.0.2",
                     "garbage at the right: the proxy itself");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 198.51.100.1, 10.3.3.3\r\n"),
                     "198.51.100.1", "several headers are one list, in order");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 10.3.3.3\r\n"),
                     "198.51.100.1");
    cr_assert_str_eq(client_of("10.0.0.2", t, "X-Forwarded-For: ,, 198.51.100.1 ,,\r\n"), "198.51.100.1",
                     "empty entries are skipped");
    cr_assert_str_eq(client_of("2001:db8:ffff::1", t, "x-forwarded-for: 2001:db8:1::7\r\n"), "2001:db8:1::7",
                     "IPv6, header name in any case");
}

Test(ipcount, limit_release_and_keys)
{
    struct gw_ipcount t;
    cr_assert_eq(gw_ipcount_init(&t, 4, 42), 0);
    struct gw_addr a = A("192.0.2.1"), b = A("192.0.2.2");
    struct gw_ipcount_entry *e[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gw_ipcount_acquire(&t, &a, 3, &e[i]), GW_IPCOUNT_OK);
    cr_assert_eq(gw_ipcount_acquire(&t, &a, 3, &e[3]), GW_IPCOUNT_FULL);
    cr_assert_eq(gw_ipcount_get(&t, &a), 3);
    cr_assert_eq(gw_ipcount_acquire(&t, &b, 3, &e[3]), GW_IPCOUNT_OK, "another address has its own count");
    gw_ipcount_release(&t, e[0]);
    cr_assert_eq(gw_ipcount_acquire(&t, &a, 3, &e[0]), GW_IPCOUNT_OK, "a released place is free again");
    for (int i = 0; i < 4; i++)
        gw_ipcount_release(&t, e[i]);
    cr_assert_eq(gw_ipcount_get(&t, &a), 0);
    cr_assert_eq(t.nentries, 0, "entries go at zero");

    /* IPv6 addresses of one /64 share a count */
    struct gw_addr v1 = A("2001:db8:0:1::1"), v2 = A("2001:db8:0:1:ffff::9"), v3 = A("2001:db8:0:2::1");
    cr_assert_eq(gw_ipcount_acquire(&t, &v1, 1, &e[0]), GW_IPCOUNT_OK);
    cr_assert_eq(gw_ipcount_acquire(&t, &v2, 1, &e[1]), GW_IPCOUNT_FULL);
    cr_assert_eq(gw_ipcount_acquire(&t, &v3, 1, &e[1]), GW_IPCOUNT_OK);
    /* 0: counted, not limited */
    for (int i = 0; i < 100; i++)
        cr_assert_eq(gw_ipcount_acquire(&t, &a, 0, &e[2]), GW_IPCOUNT_OK);
    cr_assert_eq(gw_ipcount_get(&t, &a), 100);
    gw_ipcount_free(&t); /* frees what is still counted */
}

Test(ipcount, many_addresses)
{
    struct gw_ipcount t;
    cr_assert_eq(gw_ipcount_init(&t, 16, 7), 0);
    static struct gw_ipcount_entry *e[5000];
    char s[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(s, sizeof(s), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        struct gw_addr a = A(s);
        cr_assert_eq(gw_ipcount_acquire(&t, &a, 1, &e[i]), GW_IPCOUNT_OK);
    }
    cr_assert_eq(t.nentries, 5000);
    for (int i = 4999; i >= 0; i--)
        gw_ipcount_release(&t, e[i]);
    cr_assert_eq(t.nentries, 0);
    gw_ipcount_free(&t);
}
