/* master.h: the pre-fork master. It binds one SO_REUSEPORT listener per
 * child (so the kernel spreads connections evenly and a listener outlives its
 * child), forks the children, respawns those that die (with backoff), reports
 * readiness once every child serves, and on SIGTERM/SIGINT has them drain and
 * exits 0. On SIGHUP it re-reads the options (argv, environment, --config
 * file, --jwt-secret-file) and replaces the children one at a time: each
 * successor inherits its slot's listener, and its predecessor stops accepting
 * only once the successor is ready, so no connection is refused. It never
 * touches a client connection. */
#ifndef CHATMI_GATEWAY_MASTER_H
#define CHATMI_GATEWAY_MASTER_H

#include "gateway/options.h"

/* Exit status a child uses for "fatal, do not respawn" (as nginx does). */
#define GW_EXIT_FATAL 2

/* Runs until shutdown. Returns the process exit status: 0 after a clean
 * drain, 1 when the listeners cannot be opened or every child failed fatally. */
int gw_master_run(struct gw_config *cfg, int argc, char **argv);

#endif
