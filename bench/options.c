/* options.c: chatmi-bench's option table and checks (options.h). */
#include <config.h>

#include "bench/options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/ids.h"
#include "common/opt.h"

#define SECRET_FILE_MAX 4096

static const char *const scenario_names[] = {"idle", "dm", "room", "storm"};

const char *bn_scenario_name(enum bn_scenario s)
{
    return (unsigned)s < 4 ? scenario_names[s] : "?";
}

int bn_parse_ws_url(const char *url, char *host, size_t hostlen, int *port, char *path, size_t pathlen, char *err,
                    size_t errlen)
{
    const char *p;
    if (strncasecmp(url, "wss://", 6) == 0) {
        snprintf(err, errlen, "wss:// is not supported: point the bench at a gateway's plain ws:// address");
        return -1;
    }
    if (strncasecmp(url, "ws://", 5) != 0) {
        snprintf(err, errlen, "expected ws://host:port/path, got \"%s\"", url);
        return -1;
    }
    p = url + 5;
    const char *hend;
    const char *hstart = p;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (hend == NULL) {
            snprintf(err, errlen, "unterminated [IPv6] host in \"%s\"", url);
            return -1;
        }
        hstart = p + 1;
        p = hend + 1;
    } else {
        hend = p + strcspn(p, ":/?");
        p = hend;
    }
    size_t hl = (size_t)(hend - hstart);
    if (hl == 0 || hl >= hostlen) {
        snprintf(err, errlen, "missing or too long host in \"%s\"", url);
        return -1;
    }
    memcpy(host, hstart, hl);
    host[hl] = '\0';
    *port = 80;
    if (*p == ':') {
        char *end;
        errno = 0;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || errno != 0 || v < 1 || v > 65535 || (*end != '\0' && *end != '/' && *end != '?')) {
            snprintf(err, errlen, "bad port in \"%s\"", url);
            return -1;
        }
        *port = (int)v;
        p = end;
    }
    if (*p == '\0')
        p = "/ws";
    else if (*p == '?') {
        snprintf(err, errlen, "a query needs a path first (ws://host:port/ws?...), got \"%s\"", url);
        return -1;
    }
    if (strlen(p) >= pathlen || strpbrk(p, " \r\n#") != NULL) {
        snprintf(err, errlen, "path too long or with spaces or a fragment in \"%s\"", url);
        return -1;
    }
    strcpy(path, p);
    return 0;
}

int bn_parse_per_second(const char *s, double *out)
{
    char *end;
    if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '.'))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v) || v < 0 || v > 1e7)
        return -1;
    if (strcmp(end, "/s") != 0 && *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int bn_parse_pids(const char *s, int *pids, int max)
{
    int n = 0;
    const char *p = s;
    while (*p != '\0') {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 1 || v > 0x3fffffff || (*end != ',' && *end != '\0') || n == max)
            return -1;
        pids[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0')
            return -1;
    }
    return n;
}

int bn_parse_addr_range(const char *s, uint32_t *first, uint32_t *count)
{
    char a[64], b[64];
    const char *dash = strchr(s, '-');
    size_t al = dash ? (size_t)(dash - s) : strlen(s);
    if (al == 0 || al >= sizeof(a))
        return -1;
    memcpy(a, s, al);
    a[al] = '\0';
    snprintf(b, sizeof(b), "%s", dash ? dash + 1 : a);
    struct in_addr x, y;
    if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1)
        return -1;
    uint32_t lo = ntohl(x.s_addr), hi = ntohl(y.s_addr);
    if (hi < lo || hi - lo >= 65536)
        return -1;
    *first = lo;
    *count = hi - lo + 1;
    return 0;
}

static int read_secret_file(const char *path, struct bn_config *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "--jwt-secret-file: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char *buf = malloc(SECRET_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, SECRET_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > SECRET_FILE_MAX) {
        snprintf(err, errlen, "--jwt-secret-file: %s", buf ? "larger than 4096 bytes" : "out of memory");
        free(buf);
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0) {
        snprintf(err, errlen, "--jwt-secret-file: %s is empty", path);
        free(buf);
        return -1;
    }
    cfg->jwt_key = buf;
    cfg->jwt_key_len = n;
    return 0;
}

static int resolve(struct bn_config *cfg, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", cfg->port);
    int r = getaddrinfo(cfg->host, port, &hints, &res);
    if (r != 0 || res == NULL) {
        snprintf(err, errlen, "--url: cannot resolve %s: %s", cfg->host, r ? gai_strerror(r) : "no address");
        return -1;
    }
    /* IPv4 first: "localhost" often lists ::1 first, and gateways listen
     * on 0.0.0.0 by default. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    memcpy(&cfg->dst, pick->ai_addr, pick->ai_addrlen);
    cfg->dst_len = (socklen_t)pick->ai_addrlen;
    cfg->dst_loopback = 0;
    if (pick->ai_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)pick->ai_addr;
        cfg->dst_loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    freeaddrinfo(res);
    return 0;
}

static int valid_prefix(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= BN_PREFIX_MAX && cm_valid_user(s, n);
}

int bn_options_parse(int argc, char **argv, struct bn_config *cfg, char *err, size_t errlen)
{
    char *url = NULL, *prefix = NULL, *room = NULL, *secret = NULL, *secret_file = NULL, *src = NULL;
    char *gw_pids = NULL, *wk_pids = NULL, *redis_url = NULL;
    int scenario = 0, auth = 0, json = 0, progress = 0, log_format = 0, log_level = 1;
    long connections = 1000, max_pending = 1000, senders = 10, message_bytes = 64, storm_missed = 10;
    long storm_group = 100, processes = 0;
    char *ramp_text = NULL, *rate_text = NULL;
    double ramp = 0, rate = 0;
    double connect_timeout = 10, duration = 10, warmup = 2, drain = 5, storm_window = 5;
    char why[512];
    int result = BN_OPTIONS_ERROR;

    const struct cm_opt opts[] = {
        {"url", CM_OPT_STRING, "ws://127.0.0.1:8080/ws", NULL, NULL, 0, 0, 0,
         "gateway WebSocket URL (ws://host:port/path)", &url},
        {"scenario", CM_OPT_ENUM, "idle", NULL, "idle|dm|room|storm", 0, 0, 0,
         "idle: hold the connections; dm: pairs exchange messages; room: one room, some senders; "
         "storm: all drop, reconnect within --storm-window and recover what they missed",
         &scenario},
        {"connections", CM_OPT_INT, "1000", NULL, NULL, 1, 1000000, 0,
         "client connections (dm: an even number, making connections/2 pairs)", &connections},
        {"ramp", CM_OPT_STRING, "5000", NULL, NULL, 0, 0, 0,
         "connects started per second (0: as fast as --max-pending allows)", &ramp_text},
        {"max-pending", CM_OPT_INT, "1000", NULL, NULL, 1, 100000, 0,
         "connects and handshakes in flight at once", &max_pending},
        {"connect-timeout", CM_OPT_SECONDS, "10", NULL, NULL, 0.1, 600, 0,
         "time from connect to hello before a connection counts as a handshake failure", &connect_timeout},
        {"rate", CM_OPT_STRING, "1", NULL, NULL, 0, 0, 0,
         "messages per second per sender (room) or per pair (dm, alternating direction), e.g. 10 or 0.2",
         &rate_text},
        {"senders", CM_OPT_INT, "10", NULL, NULL, 1, 1000000, 0, "room: members that send", &senders},
        {"duration", CM_OPT_SECONDS, "10", NULL, NULL, 0.1, 86400, 0,
         "measured period (idle: how long the connections are held)", &duration},
        {"warmup", CM_OPT_SECONDS, "2", NULL, NULL, 0, 3600, 0,
         "dm/room: sending before the measured period, not counted", &warmup},
        {"drain", CM_OPT_SECONDS, "5", NULL, NULL, 0, 600, 0,
         "dm/room: longest wait after the measured period for its acks and deliveries", &drain},
        {"message-bytes", CM_OPT_INT, "64", NULL, NULL, 0, 60000, 0,
         "length of each message text (padded; never shorter than the timestamp it carries)", &message_bytes},
        {"storm-missed", CM_OPT_INT, "10", NULL, NULL, 1, 100000, 0,
         "storm: messages each client misses while away and recovers with history", &storm_missed},
        {"storm-window", CM_OPT_SECONDS, "5", NULL, NULL, 0, 3600, 0,
         "storm: the clients reconnect spread over this period", &storm_window},
        {"storm-group", CM_OPT_INT, "100", NULL, NULL, 1, 100000, 0,
         "storm: clients per room (the missed messages are sent to these rooms)", &storm_group},
        {"prefix", CM_OPT_STRING, NULL, "b<random hex>", NULL, 0, 0, 0,
         "user ids are <prefix>-<n>, rooms <prefix>-...: a fresh prefix keeps runs apart in one Redis", &prefix},
        {"room", CM_OPT_STRING, NULL, "<prefix>-room", NULL, 0, 0, 0, "room scenario: the room's name", &room},
        {"auth", CM_OPT_ENUM, "jwt", NULL, "jwt|none", 0, 0, 0,
         "jwt: mint an HS256 token per client with --jwt-secret; none: user id in ?user=", &auth},
        {"jwt-secret", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 1, "HS256 key (the gateway's)", &secret},
        {"jwt-secret-file", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 0,
         "file holding the HS256 key (a trailing newline is ignored)", &secret_file},
        {"source-addrs", CM_OPT_STRING, "auto", NULL, NULL, 0, 0, 0,
         "local addresses to connect from: FIRST-LAST (IPv4), none, or auto (spread over 127.0.0.0/8 when "
         "the target is loopback and one address has too few ports)",
         &src},
        {"bench-processes", CM_OPT_INT, "0", "as the descriptor limit requires", NULL, 0, 64, 0,
         "bench processes sharing the connections (0: one, or more when RLIMIT_NOFILE cannot hold them all)",
         &processes},
        {"gateway-pid", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 0,
         "local gateway master pid(s), comma separated: RSS and CPU of them and their children", &gw_pids},
        {"worker-pid", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 0, "local worker pid(s), comma separated",
         &wk_pids},
        {"redis-url", CM_OPT_STRING, NULL, NULL, NULL, 0, 0, 1,
         "the deployment's Redis: INFO commandstats before and after gives commands per message", &redis_url},
        {"json", CM_OPT_BOOL, "false", NULL, NULL, 0, 0, 0, "print the results as JSON instead of a table",
         &json},
        {"progress", CM_OPT_BOOL, "false", NULL, NULL, 0, 0, 0, "a progress line on stderr every second",
         &progress},
        {"log-format", CM_OPT_ENUM, "text", NULL, "text|json", 0, 0, 0, "log records as text or JSON lines",
         &log_format},
        {"log-level", CM_OPT_ENUM, "info", NULL, "debug|info|warn|error", 0, 0, 0, "lowest level logged",
         &log_level},
    };
    const size_t nopts = sizeof(opts) / sizeof(opts[0]);

    memset(cfg, 0, sizeof(*cfg));
    enum cm_opt_result pr = cm_opt_parse(opts, nopts, argc, argv, "Usage: chatmi-bench [OPTIONS]",
                                         "chatmi-bench " PACKAGE_VERSION, why, sizeof(why));
    if (pr == CM_OPT_EXIT) {
        result = BN_OPTIONS_EXIT;
        goto out;
    }
    if (pr != CM_OPT_OK) {
        snprintf(err, errlen, "%s", why);
        goto out;
    }
    if (bn_parse_ws_url(url, cfg->host, sizeof(cfg->host), &cfg->port, cfg->path, sizeof(cfg->path), why,
                        sizeof(why)) < 0) {
        snprintf(err, errlen, "--url: %s", why);
        goto out;
    }
    cfg->scenario = (enum bn_scenario)scenario;
    if (cfg->scenario == BN_DM && (connections < 2 || connections % 2 != 0)) {
        snprintf(err, errlen, "--connections: dm needs an even number of at least 2 (pairs), got %ld", connections);
        goto out;
    }
    if (cfg->scenario == BN_ROOM && senders > connections) {
        snprintf(err, errlen, "--senders: %ld senders but only %ld connections", senders, connections);
        goto out;
    }
    if (bn_parse_per_second(ramp_text, &ramp) < 0) {
        snprintf(err, errlen, "--ramp: expected connects per second (a number, 0 for no limit), got \"%s\"",
                 ramp_text);
        goto out;
    }
    if (bn_parse_per_second(rate_text, &rate) < 0) {
        snprintf(err, errlen, "--rate: expected messages per second (a number like 10 or 0.2), got \"%s\"", rate_text);
        goto out;
    }
    if ((cfg->scenario == BN_DM || cfg->scenario == BN_ROOM) && rate <= 0) {
        snprintf(err, errlen, "--rate: %s needs a rate above 0 messages per second", bn_scenario_name(cfg->scenario));
        goto out;
    }
    if (secret != NULL && secret_file != NULL) {
        snprintf(err, errlen, "--jwt-secret and --jwt-secret-file: give only one");
        goto out;
    }
    cfg->auth = auth == 0 ? BN_AUTH_JWT : BN_AUTH_NONE; /* choices "jwt|none" */
    if (cfg->auth == BN_AUTH_JWT) {
        if (secret_file != NULL) {
            if (read_secret_file(secret_file, cfg, err, errlen) < 0)
                goto out;
        } else if (secret != NULL && *secret != '\0') {
            cfg->jwt_key_len = strlen(secret);
            cfg->jwt_key = malloc(cfg->jwt_key_len);
            if (cfg->jwt_key == NULL) {
                snprintf(err, errlen, "--jwt-secret: out of memory");
                goto out;
            }
            memcpy(cfg->jwt_key, secret, cfg->jwt_key_len);
        } else {
            snprintf(err, errlen,
                     "--auth jwt needs --jwt-secret or --jwt-secret-file (or --auth none for a gateway "
                     "started with --auth none)");
            goto out;
        }
    }
    if (prefix != NULL) {
        if (!valid_prefix(prefix)) {
            snprintf(err, errlen, "--prefix: 1 to %d characters of A-Z a-z 0-9 _ . -, got \"%s\"", BN_PREFIX_MAX,
                     prefix);
            goto out;
        }
        strcpy(cfg->prefix, prefix);
    } else {
        char hex[9];
        if (cm_random_hex(hex, 4) < 0) {
            snprintf(err, errlen, "--prefix: no randomness for the default");
            goto out;
        }
        snprintf(cfg->prefix, sizeof(cfg->prefix), "b%s", hex);
    }
    if (room != NULL) {
        if (!cm_valid_room(room, strlen(room))) {
            snprintf(err, errlen, "--room: 1 to 64 characters of A-Z a-z 0-9 _ . -, got \"%s\"", room);
            goto out;
        }
        strcpy(cfg->room, room);
    } else {
        snprintf(cfg->room, sizeof(cfg->room), "%s-room", cfg->prefix);
    }
    if (strcmp(src, "auto") == 0) {
        cfg->src_auto = 1;
    } else if (strcmp(src, "none") != 0 && bn_parse_addr_range(src, &cfg->src_first, &cfg->src_count) < 0) {
        snprintf(err, errlen, "--source-addrs: expected auto, none or FIRST-LAST IPv4 addresses, got \"%s\"", src);
        goto out;
    }
    if (gw_pids != NULL && (cfg->ngateway_pids = bn_parse_pids(gw_pids, cfg->gateway_pids, BN_PIDS_MAX)) < 0) {
        snprintf(err, errlen, "--gateway-pid: expected up to %d pids separated by commas, got \"%s\"", BN_PIDS_MAX,
                 gw_pids);
        goto out;
    }
    if (wk_pids != NULL && (cfg->nworker_pids = bn_parse_pids(wk_pids, cfg->worker_pids, BN_PIDS_MAX)) < 0) {
        snprintf(err, errlen, "--worker-pid: expected up to %d pids separated by commas, got \"%s\"", BN_PIDS_MAX,
                 wk_pids);
        goto out;
    }
    if (redis_url != NULL && *redis_url != '\0') {
        if (cm_redis_url_parse(redis_url, &cfg->redis, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "--redis-url: %s", why);
            goto out;
        }
        if (cfg->redis.kind == CM_REDIS_SENTINEL) {
            snprintf(err, errlen, "--redis-url: use redis:// (the master) or redis+cluster:// for the statistics");
            goto out;
        }
        cfg->have_redis = 1;
    }
    cfg->connections = connections;
    cfg->ramp = ramp;
    cfg->max_pending = max_pending;
    cfg->connect_timeout = connect_timeout;
    cfg->rate = rate;
    cfg->senders = senders;
    cfg->duration = duration;
    cfg->warmup = warmup;
    cfg->drain = drain;
    cfg->message_bytes = message_bytes;
    cfg->storm_missed = storm_missed;
    cfg->storm_window = storm_window;
    cfg->storm_group = storm_group;
    cfg->processes = processes;
    cfg->json = json;
    cfg->progress = progress;
    cfg->log_format = log_format;
    cfg->log_level = log_level;
    if (resolve(cfg, err, errlen) < 0)
        goto out;
    result = BN_OPTIONS_OK;
out:
    if (result != BN_OPTIONS_OK) {
        free(cfg->jwt_key);
        cfg->jwt_key = NULL;
    }
    cm_opt_free(opts, nopts);
    return result;
}

void bn_config_free(struct bn_config *cfg)
{
    free(cfg->jwt_key);
    cfg->jwt_key = NULL;
}
