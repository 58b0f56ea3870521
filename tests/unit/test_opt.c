/* Unit tests: common/opt.c. Criterion runs each test in its own process, so
 * setenv() here does not leak between tests. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/opt.h"

struct cfg {
    char *listen;
    long procs;
    size_t bytes;
    double secs;
    struct cm_rate rate;
    int auth;
    int verbose;
    char *secret;
};

#define OPTS(c)                                                                                                  \
    {                                                                                                            \
        {"listen", CM_OPT_STRING, "0.0.0.0:8080", NULL, NULL, 0, 0, 0, "address", &(c)->listen},                 \
        {"processes", CM_OPT_INT, NULL, "number of CPUs", NULL, 1, 1024, 0, "children", &(c)->procs},           \
        {"max-message-bytes", CM_OPT_BYTES, "64k", NULL, NULL, 128, 16777216, 0, "frame cap", &(c)->bytes},      \
        {"handshake-timeout", CM_OPT_SECONDS, "10", NULL, NULL, 0.1, 300, 0, "timeout", &(c)->secs},            \
        {"rate-limit", CM_OPT_RATE, "20/40", NULL, NULL, 0, 0, 0, "rate", &(c)->rate},                           \
        {"auth", CM_OPT_ENUM, "jwt", NULL, "jwt|none", 0, 0, 0, "auth mode", &(c)->auth},                        \
        {"verbose", CM_OPT_BOOL, "false", NULL, NULL, 0, 0, 0, "chatty", &(c)->verbose},                         \
        {"jwt-secret", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 1, "key", &(c)->secret},                           \
    }

static enum cm_opt_result parse(struct cfg *c, int argc, char **argv, char *err, size_t errlen)
{
    const struct cm_opt opts[] = OPTS(c);
    memset(c, 0, sizeof(*c));
    c->procs = -7; /* computed default: untouched unless set */
    return cm_opt_parse(opts, sizeof(opts) / sizeof(opts[0]), argc, argv, "Usage: t [OPTIONS]", "t 1.2.3", err,
                        errlen);
}

static void release(struct cfg *c)
{
    const struct cm_opt opts[] = OPTS(c);
    cm_opt_free(opts, sizeof(opts) / sizeof(opts[0]));
    cr_assert_null(c->listen);
    cr_assert_null(c->secret);
}

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"prog", __VA_ARGS__}) / sizeof(char *)))

Test(opt, defaults)
{
    struct cfg c;
    char err[256] = "";
    char *argv[] = {"prog", NULL};
    cr_assert_eq(parse(&c, 1, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.listen, "0.0.0.0:8080");
    cr_assert_eq(c.procs, -7);
    cr_assert_eq(c.bytes, 65536);
    cr_assert_float_eq(c.secs, 10.0, 1e-9);
    cr_assert_float_eq(c.rate.per_second, 20.0, 1e-9);
    cr_assert_float_eq(c.rate.burst, 40.0, 1e-9);
    cr_assert_eq(c.auth, 0);
    cr_assert_eq(c.verbose, 0);
    cr_assert_null(c.secret);
    release(&c);
}

Test(opt, flags_both_forms)
{
    struct cfg c;
    char err[256] = "";
    char **argv = ARGV("--listen", "127.0.0.1:9", "--processes=4", "--max-message-bytes", "1MiB",
                       "--handshake-timeout=500ms", "--rate-limit", "5", "--auth=none", "--verbose", "--jwt-secret",
                       "s3cret");
    cr_assert_eq(parse(&c, ARGC("--listen", "127.0.0.1:9", "--processes=4", "--max-message-bytes", "1MiB",
                                "--handshake-timeout=500ms", "--rate-limit", "5", "--auth=none", "--verbose",
                                "--jwt-secret", "s3cret"),
                       argv, err, sizeof(err)),
                 CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.listen, "127.0.0.1:9");
    cr_assert_eq(c.procs, 4);
    cr_assert_eq(c.bytes, 1048576);
    cr_assert_float_eq(c.secs, 0.5, 1e-9);
    cr_assert_float_eq(c.rate.per_second, 5.0, 1e-9);
    cr_assert_float_eq(c.rate.burst, 5.0, 1e-9);
    cr_assert_eq(c.auth, 1);
    cr_assert_eq(c.verbose, 1);
    cr_assert_str_eq(c.secret, "s3cret");
    release(&c);
}

Test(opt, env_then_flag_precedence)
{
    struct cfg c;
    char err[256] = "";
    setenv("CHATMI_LISTEN", "10.0.0.1:1", 1);
    setenv("CHATMI_MAX_MESSAGE_BYTES", "2k", 1);
    setenv("CHATMI_AUTH", "none", 1);
    char **argv = ARGV("--listen=10.0.0.2:2");
    cr_assert_eq(parse(&c, 2, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.listen, "10.0.0.2:2"); /* flag beats env */
    cr_assert_eq(c.bytes, 2048);              /* env beats default */
    cr_assert_eq(c.auth, 1);
    release(&c);
}

Test(opt, bad_env_value_overridden_by_flag_is_fine)
{
    struct cfg c;
    char err[256] = "";
    setenv("CHATMI_RATE_LIMIT", "nonsense", 1);
    char **argv = ARGV("--rate-limit", "0");
    cr_assert_eq(parse(&c, 3, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_float_eq(c.rate.per_second, 0.0, 1e-9);
    release(&c);
}

Test(opt, bad_env_value_names_variable_and_option)
{
    struct cfg c;
    char err[256] = "";
    setenv("CHATMI_PROCESSES", "lots", 1);
    char *argv[] = {"prog", NULL};
    cr_assert_eq(parse(&c, 1, argv, err, sizeof(err)), CM_OPT_ERROR);
    cr_assert_not_null(strstr(err, "CHATMI_PROCESSES"), "%s", err);
    cr_assert_not_null(strstr(err, "--processes"), "%s", err);
    release(&c);
}

static void expect_error(const char *flag, const char *value, const char *needle)
{
    struct cfg c;
    char err[256] = "";
    char *argv[] = {"prog", (char *)flag, (char *)value, NULL};
    cr_assert_eq(parse(&c, value ? 3 : 2, argv, err, sizeof(err)), CM_OPT_ERROR, "%s %s accepted", flag,
                 value ? value : "");
    cr_assert_not_null(strstr(err, needle), "error \"%s\" lacks \"%s\"", err, needle);
    release(&c);
}

Test(opt, errors_name_the_option)
{
    expect_error("--rate-limit", "x", "--rate-limit: expected RATE/BURST like 20/40, got \"x\"");
    expect_error("--rate-limit", "20/0", "--rate-limit");
    expect_error("--rate-limit", "-1", "--rate-limit");
    expect_error("--rate-limit", "20/40/60", "--rate-limit");
    expect_error("--processes", "0", "--processes: expected an integer from 1 to 1024");
    expect_error("--processes", "2000", "--processes");
    expect_error("--processes", "4x", "--processes");
    expect_error("--processes", "", "--processes");
    expect_error("--max-message-bytes", "64", "--max-message-bytes"); /* below min */
    expect_error("--max-message-bytes", "1t", "--max-message-bytes");
    expect_error("--max-message-bytes", "-5", "--max-message-bytes");
    expect_error("--handshake-timeout", "0", "--handshake-timeout");
    expect_error("--handshake-timeout", "10 s", "--handshake-timeout");
    expect_error("--handshake-timeout", "nan", "--handshake-timeout");
    expect_error("--auth", "basic", "--auth: expected one of jwt|none");
    expect_error("--auth", "JWT", "--auth");
    expect_error("--verbose=maybe", NULL, "--verbose");
    expect_error("--listen", NULL, "--listen: missing value");
    expect_error("--nope", "1", "unknown option --nope");
    expect_error("positional", NULL, "positional");
    expect_error("-p", "1", "-p");
}

Test(opt, bool_flag_does_not_eat_next_argument)
{
    struct cfg c;
    char err[256] = "";
    char **argv = ARGV("--verbose", "--auth", "none");
    cr_assert_eq(parse(&c, 4, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_eq(c.verbose, 1);
    cr_assert_eq(c.auth, 1);
    release(&c);
    argv = ARGV("--verbose=off");
    cr_assert_eq(parse(&c, 2, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_eq(c.verbose, 0);
    release(&c);
}

Test(opt, value_may_look_like_a_flag_after_equals)
{
    struct cfg c;
    char err[256] = "";
    char **argv = ARGV("--jwt-secret=--x=y");
    cr_assert_eq(parse(&c, 2, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.secret, "--x=y");
    release(&c);
}

Test(opt, bytes_parser)
{
    size_t v;
    char err[128];
    struct {
        const char *s;
        size_t v;
    } ok[] = {{"0", 0},          {"65536", 65536},   {"64k", 65536},      {"64K", 65536},   {"64KiB", 65536},
              {"64kb", 65536},   {"1m", 1048576},    {"1MiB", 1048576},   {"1g", 1u << 30}, {"1GiB", 1u << 30},
              {"10b", 10}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert_eq(cm_opt_parse_bytes(ok[i].s, &v, err, sizeof(err)), 0, "%s: %s", ok[i].s, err);
        cr_assert_eq(v, ok[i].v, "%s gave %zu", ok[i].s, v);
    }
    const char *bad[] = {"", "k", "1.5m", "1 m", " 1", "1x", "-1", "99999999999999999999999", "18014398509481984g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cm_opt_parse_bytes(bad[i], &v, err, sizeof(err)), -1, "accepted \"%s\"", bad[i]);
    cr_assert_not_null(strstr(err, "18014398509481984g"));
}

Test(opt, seconds_parser)
{
    double d;
    char err[128];
    struct {
        const char *s;
        double v;
    } ok[] = {{"10", 10}, {"2.5", 2.5}, {"500ms", 0.5}, {"10s", 10}, {"1m", 60}, {"0", 0}, {".5", 0.5}, {"1h", 3600}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert_eq(cm_opt_parse_seconds(ok[i].s, &d, err, sizeof(err)), 0, "%s: %s", ok[i].s, err);
        cr_assert_float_eq(d, ok[i].v, 1e-9, "%s", ok[i].s);
    }
    const char *bad[] = {"", "s", "-1", "1x", "1 s", "inf", "nan", "1e999", "10sec"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cm_opt_parse_seconds(bad[i], &d, err, sizeof(err)), -1, "accepted \"%s\"", bad[i]);
}

Test(opt, rate_parser)
{
    struct cm_rate r;
    char err[128];
    cr_assert_eq(cm_opt_parse_rate("20/40", &r, err, sizeof(err)), 0);
    cr_assert_float_eq(r.per_second, 20, 1e-9);
    cr_assert_float_eq(r.burst, 40, 1e-9);
    cr_assert_eq(cm_opt_parse_rate("0.5/2", &r, err, sizeof(err)), 0);
    cr_assert_float_eq(r.per_second, 0.5, 1e-9);
    cr_assert_eq(cm_opt_parse_rate("0", &r, err, sizeof(err)), 0);
    cr_assert_float_eq(r.per_second, 0, 1e-9);
    const char *bad[] = {"", "/", "20/", "/40", "a/b", "20/40x", "inf/1", "-20/40", "1/0.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cm_opt_parse_rate(bad[i], &r, err, sizeof(err)), -1, "accepted \"%s\"", bad[i]);
}

/* Runs cm_opt_parse with stdout sent to a temporary file; returns what was printed. */
static enum cm_opt_result capture(char *argv1, char *out, size_t outlen)
{
    struct cfg c;
    char err[256] = "";
    char path[] = "/tmp/test_opt_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    char *argv[] = {"prog", "--bogus=ignored-because-help-wins", argv1, NULL};
    enum cm_opt_result r = parse(&c, 3, argv, err, sizeof(err));
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    release(&c);
    return r;
}

Test(opt, help_lists_every_option_default_and_env)
{
    char out[8192];
    cr_assert_eq(capture("--help", out, sizeof(out)), CM_OPT_EXIT);
    cr_assert_eq(strncmp(out, "Usage: t [OPTIONS]", 18), 0, "%s", out);
    const char *needles[] = {"--listen",         "CHATMI_LISTEN",      "0.0.0.0:8080",       "--processes",
                             "number of CPUs",   "CHATMI_PROCESSES",   "CHATMI_MAX_MESSAGE_BYTES",
                             "CHATMI_HANDSHAKE_TIMEOUT", "20/40",      "jwt|none",           "CHATMI_JWT_SECRET",
                             "--version",        "--help"};
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        cr_assert_not_null(strstr(out, needles[i]), "help lacks \"%s\":\n%s", needles[i], out);
}

Test(opt, version)
{
    char out[256];
    cr_assert_eq(capture("--version", out, sizeof(out)), CM_OPT_EXIT);
    cr_assert_str_eq(out, "t 1.2.3\n");
}

Test(opt, describe_masks_secrets)
{
    struct cfg c;
    char err[256] = "", buf[1024];
    const struct cm_opt opts[] = OPTS(&c);
    char **argv = ARGV("--jwt-secret", "hunter2", "--processes", "3");
    cr_assert_eq(parse(&c, 5, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cm_opt_describe(opts, sizeof(opts) / sizeof(opts[0]), buf, sizeof(buf));
    cr_assert_null(strstr(buf, "hunter2"), "%s", buf);
    cr_assert_not_null(strstr(buf, "jwt-secret=***"), "%s", buf);
    cr_assert_not_null(strstr(buf, "listen=0.0.0.0:8080"), "%s", buf);
    cr_assert_not_null(strstr(buf, "processes=3"), "%s", buf);
    cr_assert_not_null(strstr(buf, "auth=jwt"), "%s", buf);
    cr_assert_not_null(strstr(buf, "rate-limit=20/40"), "%s", buf);
    cr_assert_not_null(strstr(buf, "max-message-bytes=65536"), "%s", buf);
    /* a small buffer is filled and terminated, never overrun */
    char tiny[16];
    memset(tiny, 'Z', sizeof(tiny));
    cm_opt_describe(opts, sizeof(opts) / sizeof(opts[0]), tiny, 10);
    cr_assert_eq(strlen(tiny), 9);
    cr_assert_eq(tiny[10], 'Z');
    release(&c);

    char *argv2[] = {"prog", NULL};
    cr_assert_eq(parse(&c, 1, argv2, err, sizeof(err)), CM_OPT_OK);
    cm_opt_describe(opts, sizeof(opts) / sizeof(opts[0]), buf, sizeof(buf));
    cr_assert_not_null(strstr(buf, "jwt-secret=(unset)"), "%s", buf);
    release(&c);
}

Test(opt, empty_env_counts_as_unset)
{
    struct cfg c;
    char err[256] = "";
    setenv("CHATMI_HANDSHAKE_TIMEOUT", "", 1);
    char *argv[] = {"prog", NULL};
    cr_assert_eq(parse(&c, 1, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_float_eq(c.secs, 10.0, 1e-9);
    release(&c);
}

/* ---- --config FILE ------------------------------------------------------------ */

static char *write_config(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/chatmi-opt-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(opt, config_file_between_default_and_environment)
{
    char *path = write_config("# chatmi settings\n\n  CHATMI_LISTEN = 127.0.0.1:9000 \n"
                              "CHATMI_PROCESSES=3\n; another comment\nCHATMI_AUTH=\"none\"\n"
                              "CHATMI_JWT_SECRET='s e c r e t'\nCHATMI_RATE_LIMIT=5/10\n");
    setenv("CHATMI_PROCESSES", "4", 1);
    struct cfg c;
    char err[256] = "";
    char cfgarg[80];
    snprintf(cfgarg, sizeof(cfgarg), "--config=%s", path);
    cr_assert_eq(parse(&c, ARGC(cfgarg, "--rate-limit", "7"), ARGV(cfgarg, "--rate-limit", "7"), err, sizeof(err)),
                 CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.listen, "127.0.0.1:9000", "the file sets what nothing else does");
    cr_assert_eq(c.procs, 4, "the environment wins over the file");
    cr_assert_eq(c.auth, 1, "quotes are stripped");
    cr_assert_str_eq(c.secret, "s e c r e t");
    cr_assert_float_eq(c.rate.per_second, 7, 1e-9, "the flag wins over the file");
    release(&c);
    unlink(path);
}

Test(opt, config_file_from_environment_variable)
{
    char *path = write_config("CHATMI_MAX_MESSAGE_BYTES=1k");
    setenv("CHATMI_CONFIG", path, 1);
    struct cfg c;
    char err[256] = "";
    char *argv[] = {"prog", NULL};
    cr_assert_eq(parse(&c, 1, argv, err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_eq(c.bytes, 1024, "a last line without newline counts");
    release(&c);
    unlink(path);
}

Test(opt, config_file_errors_name_file_and_line)
{
    struct {
        const char *text, *want;
    } cases[] = {
        {"CHATMI_LISTEN=x:1\nCHATMI_LISTN=y\n", ":2: unknown setting CHATMI_LISTN"},
        {"CHATMI_LISTEN x\n", ":1: expected NAME=value"},
        {"CHATMI_PROCESSES=0\n", "--config: CHATMI_PROCESSES (--processes)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_config(cases[i].text);
        struct cfg c;
        char err[256] = "";
        cr_assert_eq(parse(&c, ARGC("--config", path), ARGV("--config", path), err, sizeof(err)), CM_OPT_ERROR,
                     "case %zu accepted", i);
        cr_assert(strstr(err, cases[i].want) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
        release(&c);
        unlink(path);
    }
    struct cfg c;
    char err[256] = "";
    cr_assert_eq(parse(&c, ARGC("--config", "/nonexistent/chatmi.env"), ARGV("--config", "/nonexistent/chatmi.env"),
                       err, sizeof(err)),
                 CM_OPT_ERROR);
    cr_assert(strstr(err, "cannot open /nonexistent/chatmi.env") != NULL, "%s", err);
    release(&c);
    cr_assert_eq(parse(&c, ARGC("--config"), ARGV("--config"), err, sizeof(err)), CM_OPT_ERROR);
    cr_assert(strstr(err, "--config: missing value") != NULL, "%s", err);
    release(&c);
}

Test(opt, mask_url_passwords)
{
    static const char *const cases[][2] = {
        {"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
        {"redis://user:hunter2@h:1/0", "redis://user:***@h:1/0"},
        {"redis://:hunter2@h:1", "redis://:***@h:1"},
        {"redis://hunter2@h:1", "redis://***@h:1"},
        {"redis://u:p@ss/w:rd@h:1/0", "redis://u:***@h:1/0"},
        {"redis+sentinel://u:hunter2@a:26379,b:26379/m/0", "redis+sentinel://u:***@a:26379,b:26379/m/0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        cm_opt_mask_url(cases[i][0], out, sizeof(out));
        cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
    }
}

Test(opt, sources_and_config_record)
{
    struct cfg c;
    char err[256] = "";
    const struct cm_opt opts[] = OPTS(&c);
    size_t n = sizeof(opts) / sizeof(opts[0]);
    char from[64];
    setenv("CHATMI_AUTH", "none", 1);
    char *argv[] = {"prog", "--processes", "3", "--jwt-secret", "hunter2", NULL};
    cr_assert_eq(cm_opt_parse_from(opts, n, 5, argv, "u", "v", from, err, sizeof(err)), CM_OPT_OK, "%s", err);
    unsetenv("CHATMI_AUTH");
    for (size_t i = 0; i < n; i++) {
        const char *want = strcmp(opts[i].name, "processes") == 0 || strcmp(opts[i].name, "jwt-secret") == 0
                               ? "flag"
                           : strcmp(opts[i].name, "auth") == 0 ? "env"
                                                                : "default";
        cr_assert_str_eq(cm_opt_source_name(from[i]), want, "--%s", opts[i].name);
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cm_log_set_fd(fds[1]);
    cm_log_init("t", CM_LOG_JSON, CM_LOG_INFO);
    const struct cm_log_field extra[] = {{"derived", "x"}};
    cm_opt_log_config(opts, n, from, "config", extra, 1);
    cm_log_set_fd(2);
    close(fds[1]);
    char buf[8192];
    ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    cr_assert_gt(got, 0);
    buf[got] = '\0';
    cr_assert_null(strstr(buf, "hunter2"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"jwt-secret\":\"***\""), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"processes\":\"3\""), "%s", buf);
    cr_assert_not_null(strstr(buf, "\"sources\":\"flag: processes jwt-secret; env: auth; the rest: default\""), "%s",
                       buf);
    cr_assert_not_null(strstr(buf, "\"derived\":\"x\""), "%s", buf);
    release(&c);
}

/* ---- a secret's file twin (--jwt-secret-file here; --redis-url-file in the programs) ---- */

static const char *secret_file(const char *name, const char *text)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 256, "/tmp/chatmi-test-opt-%d-%s", (int)getpid(), name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

Test(opt, secret_from_its_file_twin)
{
    struct cfg c;
    char err[256];
    char *p = (char *)secret_file("a", "s3cret\n");
    cr_assert_eq(parse(&c, ARGC("--jwt-secret-file", p), ARGV("--jwt-secret-file", (char *)p), err, sizeof(err)),
                 CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.secret, "s3cret", "the trailing newline is dropped");
    release(&c);

    /* the environment form; a flag value still wins over it */
    setenv("CHATMI_JWT_SECRET_FILE", p, 1);
    cr_assert_eq(parse(&c, 1, ARGV(NULL), err, sizeof(err)), CM_OPT_OK, "%s", err);
    cr_assert_str_eq(c.secret, "s3cret");
    release(&c);
    cr_assert_eq(parse(&c, ARGC("--jwt-secret", "flag"), ARGV("--jwt-secret", "flag"), err, sizeof(err)), CM_OPT_OK,
                 "%s", err);
    cr_assert_str_eq(c.secret, "flag");
    release(&c);
    /* both variables: refused */
    setenv("CHATMI_JWT_SECRET", "env", 1);
    cr_assert_eq(parse(&c, 1, ARGV(NULL), err, sizeof(err)), CM_OPT_ERROR);
    cr_assert(strstr(err, "give only one") != NULL, "%s", err);
    release(&c);
    unlink(p);
}

Test(opt, secret_file_errors_name_the_option)
{
    struct cfg c;
    char err[256];
    char *empty = (char *)secret_file("e", "\n");
    struct {
        int argc;
        char **argv;
        const char *want;
    } cases[] = {
        {ARGC("--jwt-secret-file", "/nonexistent/x"), ARGV("--jwt-secret-file", "/nonexistent/x"),
         "--jwt-secret-file: cannot open"},
        {ARGC("--jwt-secret-file", (char *)empty), ARGV("--jwt-secret-file", (char *)empty), "--jwt-secret-file"},
        {ARGC("--jwt-secret", "x", "--jwt-secret-file", (char *)empty),
         ARGV("--jwt-secret", "x", "--jwt-secret-file", (char *)empty), "give only one"},
        {ARGC("--jwt-secret-file"), ARGV("--jwt-secret-file"), "missing value"},
        {ARGC("--listen-file", "x"), ARGV("--listen-file", "x"), "unknown option --listen-file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        cr_assert_eq(parse(&c, cases[i].argc, cases[i].argv, err, sizeof(err)), CM_OPT_ERROR, "case %zu", i);
        cr_assert(strstr(err, cases[i].want) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
        release(&c);
    }
    unlink(empty);
}
