/* chatmi-bench options: defaults, parsing helpers, and the errors a user
 * gets for a bad combination (each names the option). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench/options.h"

static void clean_env(void)
{
    static const char *const vars[] = {"CHATMI_URL", "CHATMI_SCENARIO", "CHATMI_CONNECTIONS", "CHATMI_AUTH",
                                       "CHATMI_JWT_SECRET", "CHATMI_JWT_SECRET_FILE", "CHATMI_SENDERS",
                                       "CHATMI_RATE", "CHATMI_REDIS_URL", "CHATMI_CONFIG", "CHATMI_PREFIX",
                                       "CHATMI_GATEWAY_PID", "CHATMI_WORKER_PID", "CHATMI_SOURCE_ADDRS",
                                       "CHATMI_ROOM", "CHATMI_LOG_LEVEL", "CHATMI_LOG_FORMAT"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

TestSuite(bench_options, .init = clean_env);

static int parse(struct bn_config *cfg, char *err, size_t errlen, int n, ...)
{
    char *argv[32] = {"chatmi-bench"};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 30; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    err[0] = '\0';
    return bn_options_parse(n + 1, argv, cfg, err, errlen);
}

Test(bench_options, defaults_with_auth_none)
{
    struct bn_config cfg;
    char err[512];
    cr_assert_eq(parse(&cfg, err, sizeof(err), 2, "--auth", "none"), BN_OPTIONS_OK, "%s", err);
    cr_assert_str_eq(cfg.host, "127.0.0.1");
    cr_assert_eq(cfg.port, 8080);
    cr_assert_str_eq(cfg.path, "/ws");
    cr_assert_eq(cfg.scenario, BN_IDLE);
    cr_assert_eq(cfg.auth, BN_AUTH_NONE);
    cr_assert_eq(cfg.connections, 1000);
    cr_assert(cfg.dst_loopback);
    cr_assert(cfg.src_auto);
    cr_assert_eq(cfg.prefix[0], 'b', "a random default prefix");
    bn_config_free(&cfg);
}

Test(bench_options, a_full_dm_line)
{
    struct bn_config cfg;
    char err[512];
    cr_assert_eq(parse(&cfg, err, sizeof(err), 13, "--url", "ws://127.0.0.1:9000/chat?x=1", "--scenario", "dm",
                       "--connections=20000", "--rate", "2.5", "--auth", "jwt", "--jwt-secret", "s3cret",
                       "--gateway-pid", "10,11"),
                 BN_OPTIONS_OK, "%s", err);
    cr_assert_eq(cfg.port, 9000);
    cr_assert_str_eq(cfg.path, "/chat?x=1");
    cr_assert_eq(cfg.scenario, BN_DM);
    cr_assert_eq(cfg.connections, 20000);
    cr_assert_float_eq(cfg.rate, 2.5, 1e-9);
    cr_assert_eq(cfg.auth, BN_AUTH_JWT);
    cr_assert_eq(cfg.jwt_key_len, 6);
    cr_assert_eq(memcmp(cfg.jwt_key, "s3cret", 6), 0);
    cr_assert_eq(cfg.ngateway_pids, 2);
    cr_assert_eq(cfg.gateway_pids[1], 11);
    bn_config_free(&cfg);
}

struct bad_case {
    const char *why;
    const char *args[6];
    const char *mentions;
};

Test(bench_options, errors_name_the_option)
{
    static const struct bad_case cases[] = {
        {"jwt without a key", {"--auth", "jwt"}, "--jwt-secret"},
        {"the default auth is jwt", {"--scenario", "idle"}, "--auth jwt"},
        {"odd dm", {"--auth", "none", "--scenario", "dm", "--connections", "7"}, "--connections"},
        {"unknown scenario", {"--auth", "none", "--scenario", "flood"}, "--scenario"},
        {"tls", {"--auth", "none", "--url", "wss://example.com/ws"}, "--url"},
        {"not a ws url", {"--auth", "none", "--url", "http://127.0.0.1/ws"}, "--url"},
        {"bad port", {"--auth", "none", "--url", "ws://127.0.0.1:99999/ws"}, "--url"},
        {"more senders than members", {"--auth", "none", "--scenario", "room", "--senders", "2000"}, "--senders"},
        {"zero connections", {"--auth", "none", "--connections", "0"}, "--connections"},
        {"bad pid list", {"--auth", "none", "--gateway-pid", "12,,13"}, "--gateway-pid"},
        {"bad source range", {"--auth", "none", "--source-addrs", "127.0.0.9-127.0.0.1"}, "--source-addrs"},
        {"bad prefix", {"--auth", "none", "--prefix", "no spaces"}, "--prefix"},
        {"bad redis url", {"--auth", "none", "--redis-url", "mysql://x"}, "--redis-url"},
        {"unknown flag", {"--auth", "none", "--conections", "5"}, "--conections"},
        {"zero rate", {"--auth", "none", "--scenario", "room", "--rate", "0"}, "--rate"},
        {"rate not a number", {"--auth", "none", "--rate", "fast"}, "--rate"},
        {"negative ramp", {"--auth", "none", "--ramp", "-5"}, "--ramp"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[8] = {"chatmi-bench"};
        int argc = 1;
        for (int k = 0; k < 6 && cases[i].args[k] != NULL; k++)
            argv[argc++] = (char *)cases[i].args[k];
        struct bn_config cfg;
        char err[512] = "";
        cr_assert_eq(bn_options_parse(argc, argv, &cfg, err, sizeof(err)), BN_OPTIONS_ERROR, "%s", cases[i].why);
        cr_assert(strstr(err, cases[i].mentions) != NULL, "%s: \"%s\" does not name %s", cases[i].why, err,
                  cases[i].mentions);
    }
}

Test(bench_options, environment_is_read_and_flags_win)
{
    struct bn_config cfg;
    char err[512];
    setenv("CHATMI_AUTH", "none", 1);
    setenv("CHATMI_CONNECTIONS", "33", 1);
    cr_assert_eq(parse(&cfg, err, sizeof(err), 2, "--connections", "44"), BN_OPTIONS_OK, "%s", err);
    cr_assert_eq(cfg.auth, BN_AUTH_NONE);
    cr_assert_eq(cfg.connections, 44);
    bn_config_free(&cfg);
}

Test(bench_options, helpers)
{
    char host[64], path[64], err[256];
    int port;
    cr_assert_eq(bn_parse_ws_url("ws://[::1]:81", host, sizeof(host), &port, path, sizeof(path), err, sizeof(err)), 0);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 81);
    cr_assert_str_eq(path, "/ws");
    cr_assert_eq(bn_parse_ws_url("ws://h/x", host, sizeof(host), &port, path, sizeof(path), err, sizeof(err)), 0);
    cr_assert_eq(port, 80);
    cr_assert_str_eq(path, "/x");

    int pids[4];
    cr_assert_eq(bn_parse_pids("1,2,3", pids, 4), 3);
    cr_assert_eq(bn_parse_pids("1,2,3,4,5", pids, 4), -1, "too many");
    cr_assert_eq(bn_parse_pids("1,x", pids, 4), -1);
    cr_assert_eq(bn_parse_pids("0", pids, 4), -1);

    double r;
    cr_assert_eq(bn_parse_per_second("0.2", &r), 0);
    cr_assert_float_eq(r, 0.2, 1e-12);
    cr_assert_eq(bn_parse_per_second("5000/s", &r), 0);
    cr_assert_float_eq(r, 5000, 1e-9);
    cr_assert_eq(bn_parse_per_second("1e99", &r), -1);
    cr_assert_eq(bn_parse_per_second("2/3", &r), -1);

    uint32_t first, count;
    cr_assert_eq(bn_parse_addr_range("127.0.0.2-127.0.1.1", &first, &count), 0);
    cr_assert_eq(first, 0x7f000002u);
    cr_assert_eq(count, 256);
    cr_assert_eq(bn_parse_addr_range("10.0.0.1", &first, &count), 0);
    cr_assert_eq(count, 1);
    cr_assert_eq(bn_parse_addr_range("::1", &first, &count), -1);
}
