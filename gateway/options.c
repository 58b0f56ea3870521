/* options.c: the gateway's option table and the checks that need more than
 * one option (auth jwt needs a key) or outside data (the secret file). */
#include <config.h>

#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cluster.h"
#include "common/log.h"

#ifndef CHATMI_WWW_DIR
#define CHATMI_WWW_DIR "/usr/local/share/chatmi/www"
#endif

#define GW_SECRET_FILE_MAX 4096

#define GW_OPTS(cfg)                                                                                  \
    {                                                                                                 \
        {"listen", CM_OPT_STRING, "0.0.0.0:8080", NULL, NULL, 0, 0, 0,                               \
         "address for WebSocket and HTTP", &(cfg)->listen},                                          \
        {"processes", CM_OPT_INT, NULL, "number of CPUs", NULL, 1, 1024, 0,                           \
         "child processes", &(cfg)->processes},                                                      \
        {"redis-url", CM_OPT_STRING, "redis://127.0.0.1:6379/0", NULL, NULL, 0, 0, CM_OPT_SECRET_URL, \
         "redis://[user:password@]host:port[/db] or "                                               \
         "redis+sentinel://[user:password@]h1:26379,h2:26379/mastername[/db] or "                    \
         "redis+cluster://[user:password@]h1:p1,h2:p2", &(cfg)->redis_url_text},                     \
        {"queue-partitions", CM_OPT_INT, "1", NULL, NULL, 1, CM_QUEUE_PARTITIONS_MAX, 0,               \
         "inbound queue partitions (as the workers' --queue-partitions)", &(cfg)->queue_partitions},  \
        {"auth", CM_OPT_ENUM, "jwt", NULL, "jwt|none", 0, 0, 0,                                       \
         "jwt, or none (development only: identity from ?user=)", &(cfg)->auth},                     \
        {"jwt-secret", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 1,                                      \
         "HS256 key; \"new,old\" accepts two during a rotation", &(cfg)->jwt_secret},                \
        {"jwt-secret-file", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 0,                                 \
         "file holding the HS256 key, or two keys one per line (rotation)", &(cfg)->jwt_secret_file},\
        {"jwt-leeway", CM_OPT_SECONDS, "0", NULL, NULL, 0, 300, 0,                                    \
         "clock skew allowed on exp and nbf", &(cfg)->jwt_leeway},                                   \
        {"jwt-audience", CM_OPT_STRING, NULL, "not checked", NULL, 0, 0, 0,                          \
         "tokens must name this in aud", &(cfg)->jwt_audience},                                      \
        {"jwt-issuer", CM_OPT_STRING, NULL, "not checked", NULL, 0, 0, 0,                            \
         "tokens must have this iss", &(cfg)->jwt_issuer},                                           \
        {"allowed-origins", CM_OPT_STRING, NULL, "any", NULL, 0, 0, 0,                                \
         "comma list of browser origins allowed to connect", &(cfg)->allowed_origins_text},          \
        {"trusted-proxies", CM_OPT_STRING, NULL, "none", NULL, 0, 0, 0,                               \
         "comma list of CIDRs whose X-Forwarded-For is believed", &(cfg)->trusted_proxies_text},     \
        {"max-conns", CM_OPT_INT, "50000", NULL, NULL, 1, 10000000, 0,                                \
         "connections per child; more get 503", &(cfg)->max_conns},                                  \
        {"max-conns-per-ip", CM_OPT_INT, "256", NULL, NULL, 0, 10000000, 0,                           \
         "connections per client address (IPv6: per /64) per child; more get 503; 0 turns it off",  \
         &(cfg)->max_conns_per_ip},                                                                  \
        {"max-sessions-per-user", CM_OPT_INT, "32", NULL, NULL, 0, 1000000, 0,                        \
         "WebSocket sessions of one user per child; more get 429; 0 turns it off",          \
         &(cfg)->max_sessions_per_user},                                                             \
        {"log-format", CM_OPT_ENUM, "text", NULL, "text|json", 0, 0, 0,                               \
         "text, or json (one object a line)", &(cfg)->log_format},                                   \
        {"log-level", CM_OPT_STRING, "info", NULL, NULL, 0, 0, 0,                                     \
         "debug, info, warn or error", &(cfg)->log_level_text},                                      \
        {"max-message-bytes", CM_OPT_BYTES, "65536", NULL, NULL, 128, 16777216, 0,                    \
         "largest WebSocket message accepted (close 1009 above)", &(cfg)->max_message_bytes},        \
        {"rate-limit", CM_OPT_RATE, "20/40", NULL, NULL, 0, 0, 0,                                     \
         "requests per second per session / burst; 0 turns it off", &(cfg)->rate_limit},            \
        {"user-rate-limit", CM_OPT_RATE, "50/100", NULL, NULL, 0, 0, 0,                               \
         "requests per second per user (all sessions on one child) / burst; 0 turns it off",        \
         &(cfg)->user_rate_limit},                                                                   \
        {"max-queued-bytes", CM_OPT_BYTES, "1MiB", NULL, NULL, 1024, 1073741824, 0,                   \
         "outbound bytes queued for one slow client (close 1013 above)", &(cfg)->max_queued_bytes},  \
        {"handshake-timeout", CM_OPT_SECONDS, "10", NULL, NULL, 0.1, 300, 0,                          \
         "time allowed for the HTTP request and upgrade", &(cfg)->handshake_timeout},                \
        {"heartbeat", CM_OPT_SECONDS, "25", NULL, NULL, 1, 3600, 0,                                   \
         "seconds between server pings; silent for two periods: dropped", &(cfg)->heartbeat},        \
        {"drain-seconds", CM_OPT_SECONDS, "20", NULL, NULL, 0, 3600, 0,                               \
         "SIGTERM: period over which clients are closed with 1001", &(cfg)->drain_seconds},          \
        {"www-dir", CM_OPT_STRING, CHATMI_WWW_DIR, NULL, NULL, 0, 0, 0,                               \
         "directory of the browser demo client served at /", &(cfg)->www_dir},                       \
    }

static int read_secret_file(const char *path, unsigned char **key, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--jwt-secret-file: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char *buf = malloc(GW_SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        snprintf(err, errlen, "--jwt-secret-file: out of memory");
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, GW_SECRET_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "--jwt-secret-file: cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > GW_SECRET_FILE_MAX) {
            snprintf(err, errlen, "--jwt-secret-file: %s is larger than %d bytes", path, GW_SECRET_FILE_MAX);
            goto fail;
        }
    }
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        free(buf);
        snprintf(err, errlen, "--jwt-secret-file: %s is empty", path);
        return -1;
    }
    *key = buf;
    *len = n;
    return 0;
fail:
    close(fd);
    free(buf);
    return -1;
}

/* One key, or two separated by sep (a rotation: the new key and the old
 * one, both accepted). A CR before a newline separator is dropped, so a file
 * written on Windows works. */
static int split_keys(struct gw_config *cfg, const unsigned char *text, size_t len, char sep, const char *opt,
                      char *err, size_t errlen)
{
    const unsigned char *cut = memchr(text, sep, len);
    size_t l1 = cut ? (size_t)(cut - text) : len;
    size_t l2 = cut ? len - l1 - 1 : 0;
    const unsigned char *k2 = cut ? cut + 1 : NULL;

    if (sep == '\n' && l1 > 0 && text[l1 - 1] == '\r')
        l1--;
    if (k2 != NULL && memchr(k2, sep, l2) != NULL) {
        snprintf(err, errlen, "%s: at most two keys (the new one and the old one)", opt);
        return -1;
    }
    if (l1 == 0 || (cut != NULL && l2 == 0)) {
        snprintf(err, errlen, "%s: empty key", opt);
        return -1;
    }
    cfg->jwt_key = malloc(l1);
    cfg->jwt_key2 = l2 ? malloc(l2) : NULL;
    if (cfg->jwt_key == NULL || (l2 && cfg->jwt_key2 == NULL)) {
        snprintf(err, errlen, "%s: out of memory", opt);
        return -1;
    }
    memcpy(cfg->jwt_key, text, l1);
    cfg->jwt_key_len = l1;
    if (l2) {
        memcpy(cfg->jwt_key2, k2, l2);
        cfg->jwt_key2_len = l2;
    }
    return 0;
}

static int split_origins(struct gw_config *cfg, char *err, size_t errlen)
{
    const char *s = cfg->allowed_origins_text;
    if (s == NULL || *s == '\0')
        return 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        if (*p == ',')
            cap++;
    cfg->origins = calloc(cap, sizeof(char *));
    if (cfg->origins == NULL) {
        snprintf(err, errlen, "--allowed-origins: out of memory");
        return -1;
    }
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && end[-1] == ' ')
            end--;
        if (end == start)
            continue;
        char *o = strndup(start, (size_t)(end - start));
        if (o == NULL) {
            snprintf(err, errlen, "--allowed-origins: out of memory");
            return -1;
        }
        cfg->origins[cfg->norigins++] = o;
    }
    if (cfg->norigins == 0) {
        snprintf(err, errlen, "--allowed-origins: no origin in \"%s\"", s);
        return -1;
    }
    return 0;
}

int gw_config_load(struct gw_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->processes = ncpu > 0 ? ncpu : 1;

    const struct cm_opt opts[] = GW_OPTS(cfg);
    _Static_assert(sizeof(opts) / sizeof(opts[0]) <= sizeof(cfg->opt_from), "gw_config.opt_from is too small");
    enum cm_opt_result r = cm_opt_parse_from(opts, sizeof(opts) / sizeof(opts[0]), argc, argv,
                                             "Usage: chatmi-gateway [OPTIONS]\n"
                                             "Pre-fork WebSocket gateway of chatmi.",
                                             "chatmi-gateway " PACKAGE_VERSION, cfg->opt_from, err, errlen);
    if (r == CM_OPT_EXIT)
        return GW_CONFIG_EXIT;
    if (r == CM_OPT_ERROR)
        return GW_CONFIG_ERROR;

    if (cm_net_parse_hostport(cfg->listen, cfg->host, sizeof(cfg->host), &cfg->port, err, errlen) < 0) {
        char inner[256];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "--listen: %s", inner);
        return GW_CONFIG_ERROR;
    }
    if (cm_redis_url_parse(cfg->redis_url_text, &cfg->redis, err, errlen) < 0) {
        char inner[256];
        snprintf(inner, sizeof(inner), "%s", err);
        snprintf(err, errlen, "--redis-url: %s", inner);
        return GW_CONFIG_ERROR;
    }
    cfg->log_level = cm_log_level_parse(cfg->log_level_text);
    if (cfg->log_level < 0) {
        snprintf(err, errlen, "--log-level: expected debug, info, warn or error, got \"%s\"", cfg->log_level_text);
        return GW_CONFIG_ERROR;
    }
    {
        char inner[200];
        if (gw_cidrs_parse(cfg->trusted_proxies_text, &cfg->trusted_proxies, inner, sizeof(inner)) < 0) {
            snprintf(err, errlen, "--trusted-proxies: %s", inner);
            return GW_CONFIG_ERROR;
        }
    }
    if (cfg->jwt_secret != NULL && cfg->jwt_secret_file != NULL) {
        snprintf(err, errlen, "--jwt-secret and --jwt-secret-file: give only one");
        return GW_CONFIG_ERROR;
    }
    if (cfg->auth == GW_AUTH_JWT) {
        if (cfg->jwt_secret_file != NULL) {
            unsigned char *buf;
            size_t len;
            if (read_secret_file(cfg->jwt_secret_file, &buf, &len, err, errlen) < 0)
                return GW_CONFIG_ERROR;
            int rc = split_keys(cfg, buf, len, '\n', "--jwt-secret-file", err, errlen);
            explicit_bzero(buf, len);
            free(buf);
            if (rc < 0)
                return GW_CONFIG_ERROR;
        } else if (cfg->jwt_secret != NULL && cfg->jwt_secret[0] != '\0') {
            if (split_keys(cfg, (const unsigned char *)cfg->jwt_secret, strlen(cfg->jwt_secret), ',', "--jwt-secret",
                           err, errlen) < 0)
                return GW_CONFIG_ERROR;
        } else {
            snprintf(err, errlen, "--auth jwt needs --jwt-secret or --jwt-secret-file (or --auth none for development)");
            return GW_CONFIG_ERROR;
        }
    }
    if (cfg->jwt_audience != NULL && cfg->jwt_audience[0] == '\0') {
        snprintf(err, errlen, "--jwt-audience: empty");
        return GW_CONFIG_ERROR;
    }
    if (cfg->jwt_issuer != NULL && cfg->jwt_issuer[0] == '\0') {
        snprintf(err, errlen, "--jwt-issuer: empty");
        return GW_CONFIG_ERROR;
    }
    if (split_origins(cfg, err, errlen) < 0)
        return GW_CONFIG_ERROR;
    return GW_CONFIG_OK;
}

void gw_config_log(const struct gw_config *cfg, const char *event)
{
    struct gw_config *c = (struct gw_config *)cfg; /* the table only reads through dst here */
    const struct cm_opt opts[] = GW_OPTS(c);
    char redis[512];
    cm_redis_url_describe(&cfg->redis, redis, sizeof(redis));
    const struct cm_log_field extra[] = {{"redis_effective", redis}};
    cm_opt_log_config(opts, sizeof(opts) / sizeof(opts[0]), cfg->opt_from, event, extra, 1);
}

void gw_config_handshake(const struct gw_config *cfg, struct gw_handshake_config *hs)
{
    memset(hs, 0, sizeof(*hs));
    hs->auth = (enum gw_auth_mode)cfg->auth;
    hs->jwt_key = cfg->jwt_key;
    hs->jwt_key_len = cfg->jwt_key_len;
    hs->jwt_key2 = cfg->jwt_key2;
    hs->jwt_key2_len = cfg->jwt_key2_len;
    hs->jwt_leeway = (int64_t)cfg->jwt_leeway;
    hs->jwt_audience = cfg->jwt_audience;
    hs->jwt_issuer = cfg->jwt_issuer;
    hs->allowed_origins = (const char *const *)cfg->origins;
    hs->norigins = cfg->norigins;
}

void gw_config_free(struct gw_config *cfg)
{
    const struct cm_opt opts[] = GW_OPTS(cfg);
    cm_opt_free(opts, sizeof(opts) / sizeof(opts[0]));
    if (cfg->jwt_key != NULL) {
        explicit_bzero(cfg->jwt_key, cfg->jwt_key_len);
        free(cfg->jwt_key);
    }
    if (cfg->jwt_key2 != NULL) {
        explicit_bzero(cfg->jwt_key2, cfg->jwt_key2_len);
        free(cfg->jwt_key2);
    }
    gw_cidrs_free(&cfg->trusted_proxies);
    for (size_t i = 0; i < cfg->norigins; i++)
        free(cfg->origins[i]);
    free(cfg->origins);
    memset(cfg, 0, sizeof(*cfg));
}
