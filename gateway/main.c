/* main.c: chatmi-gateway: options, logging, then the master. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/redis_url.h"
#include "gateway/options.h"
#include "gateway/master.h"

int main(int argc, char **argv)
{
    struct gw_config cfg;
    char err[512];
    cm_log_init("chatmi-gateway", CM_LOG_TEXT, CM_LOG_INFO);
    int r = gw_config_load(&cfg, argc, argv, err, sizeof(err));
    if (r == GW_CONFIG_EXIT) {
        gw_config_free(&cfg);
        return 0;
    }
    if (r == GW_CONFIG_ERROR) {
        fprintf(stderr, "chatmi-gateway: %s\n", err);
        gw_config_free(&cfg);
        return 2;
    }
    cm_log_init("chatmi-gateway", (enum cm_log_format)cfg.log_format, (enum cm_log_level)cfg.log_level);

    gw_config_log(&cfg, "config");
    if (cfg.auth == GW_AUTH_NONE)
        cm_warn("auth_none", "AUTHENTICATION IS OFF (--auth none): anyone can connect as any user. "
                             "Development only; never expose this instance.");
    if (geteuid() == 0)
        cm_warn("running_as_root", "running as root; run chatmi as an unprivileged user in production");

    int status = gw_master_run(&cfg, argc, argv);
    gw_config_free(&cfg);
    return status;
}
