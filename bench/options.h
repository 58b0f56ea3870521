/* options.h: chatmi-bench's options (common/opt.h: every option is a flag
 * and a CHATMI_ variable), checked and turned into a bn_config. */
#ifndef CHATMI_BENCH_OPTIONS_H
#define CHATMI_BENCH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/redis_url.h"

enum bn_scenario { BN_IDLE = 0, BN_DM, BN_ROOM, BN_STORM };
enum bn_auth { BN_AUTH_NONE = 0, BN_AUTH_JWT };

#define BN_PIDS_MAX 16
#define BN_PREFIX_MAX 40

struct bn_config {
    /* target: ws://host:port/path */
    char host[256];
    int port;
    char path[512];            /* "/ws", or "/ws?x=y" */
    struct sockaddr_storage dst;
    socklen_t dst_len;
    int dst_loopback;          /* IPv4 127.0.0.0/8 */

    enum bn_scenario scenario;
    long connections;
    double ramp;               /* connects started per second; 0: as fast as max-pending allows */
    long max_pending;          /* connects and handshakes in flight */
    double connect_timeout;    /* s, connect to hello */
    double rate;               /* room: msg/s per sender; dm: msg/s per pair */
    long senders;              /* room */
    double duration, warmup, drain;
    long message_bytes;        /* text length of each message (at least what the timestamp needs) */
    long storm_missed;         /* messages each storm client misses */
    double storm_window;       /* s over which storm clients reconnect */
    long storm_group;          /* storm clients per room */
    char prefix[BN_PREFIX_MAX + 1]; /* user and room names start with it */
    char room[65];             /* room scenario: room name */

    enum bn_auth auth;
    unsigned char *jwt_key;    /* malloc'ed; NULL with auth none */
    size_t jwt_key_len;

    uint32_t src_first;        /* source addresses (host order), src_count of them; 0: let the kernel pick */
    uint32_t src_count;
    int src_auto;              /* --source-addrs auto: decided once the fd limit and port range are known */

    long processes;            /* 0: as the descriptor limit requires */

    int gateway_pids[BN_PIDS_MAX];
    int ngateway_pids;
    int worker_pids[BN_PIDS_MAX];
    int nworker_pids;
    struct cm_redis_url redis;
    int have_redis;

    int json;
    int progress;
    int log_format;
    int log_level;
};

enum { BN_OPTIONS_OK = 0, BN_OPTIONS_EXIT = 1, BN_OPTIONS_ERROR = -1 };

/* Parses argv and the environment into cfg and checks every value: an
 * unknown scenario, an odd --connections for dm, --auth jwt without a key,
 * a bad URL or pid list are errors with a message naming the option in err
 * (the caller exits 2). BN_OPTIONS_EXIT after --help / --version. The target
 * host is resolved here. On success the caller frees cfg with bn_config_free. */
int bn_options_parse(int argc, char **argv, struct bn_config *cfg, char *err, size_t errlen);

void bn_config_free(struct bn_config *cfg);

const char *bn_scenario_name(enum bn_scenario s);

/* Parses "ws://host[:port][/path]". 0, or -1 with a message. */
int bn_parse_ws_url(const char *url, char *host, size_t hostlen, int *port, char *path, size_t pathlen, char *err,
                    size_t errlen);

/* Parses a rate per second: "10", "0.2", "5000/s"; at most 10^7. 0 or -1. */
int bn_parse_per_second(const char *s, double *out);

/* Parses "123,456" into up to max pids. Returns the count, or -1. */
int bn_parse_pids(const char *s, int *pids, int max);

/* Parses "127.0.0.2-127.0.0.9" (or one address) into the first address and
 * a count (host order). 0 or -1. */
int bn_parse_addr_range(const char *s, uint32_t *first, uint32_t *count);

#endif
