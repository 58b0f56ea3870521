/* options.h: the gateway's options (contract sections 1 and 6), parsed once
 * by the master before it forks; children inherit a read-only copy. */
#ifndef CHATMI_GATEWAY_OPTIONS_H
#define CHATMI_GATEWAY_OPTIONS_H

#include <stddef.h>

#include "common/net.h"
#include "common/opt.h"
#include "common/redis_url.h"
#include "gateway/clientip.h"
#include "gateway/handshake.h"

struct gw_config {
    /* as given */
    char *listen;
    long processes;
    char *redis_url_text;
    long queue_partitions;    /* 1..CM_QUEUE_PARTITIONS_MAX */
    int auth;                 /* enum gw_auth_mode */
    char *jwt_secret;
    char *jwt_secret_file;
    double jwt_leeway;
    char *jwt_audience;
    char *jwt_issuer;
    char *allowed_origins_text;
    char *trusted_proxies_text;
    long max_conns;           /* per child */
    long max_conns_per_ip;    /* per child; 0: off */
    long max_sessions_per_user; /* per child; 0: off */
    int log_format;           /* enum cm_log_format */
    char *log_level_text;
    size_t max_message_bytes;
    struct cm_rate rate_limit;
    struct cm_rate user_rate_limit; /* per user per child */
    size_t max_queued_bytes;
    double handshake_timeout;
    double heartbeat;
    double drain_seconds;
    char *www_dir;

    /* derived by gw_config_load */
    char host[CM_NET_HOST_MAX];
    int port;
    int log_level;
    struct cm_redis_url redis;
    unsigned char *jwt_key;   /* from --jwt-secret or the file; NULL with auth none */
    size_t jwt_key_len;
    unsigned char *jwt_key2;  /* the second key of a rotation; NULL when only one is given */
    size_t jwt_key2_len;
    struct gw_cidrs trusted_proxies;
    char **origins;           /* split --allowed-origins */
    size_t norigins;
    char opt_from[32];        /* where each option came from (enum cm_opt_source), table order */
};

enum { GW_CONFIG_OK = 0, GW_CONFIG_EXIT = 1, GW_CONFIG_ERROR = -1 };

/* Parses argv and the environment into cfg and checks every value.
 * GW_CONFIG_EXIT after --help/--version; GW_CONFIG_ERROR with a message naming
 * the option in err (the caller exits 2). */
int gw_config_load(struct gw_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Logs the effective configuration (cm_opt_log_config): every option's
 * value, secrets masked, and where it came from. */
void gw_config_log(const struct gw_config *cfg, const char *event);

/* The handshake's view of the configuration (points into cfg). */
void gw_config_handshake(const struct gw_config *cfg, struct gw_handshake_config *hs);

void gw_config_free(struct gw_config *cfg);

#endif
