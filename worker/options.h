/* options.h: the worker's command line and environment (docs/architecture.md,
 * "Worker"), checked and turned into a struct wk_config. */
#ifndef CHATMI_WORKER_OPTIONS_H
#define CHATMI_WORKER_OPTIONS_H

#include "worker/worker.h"

enum wk_options_result {
    WK_OPTIONS_OK = 0,
    WK_OPTIONS_EXIT = 1, /* --help or --version printed: exit 0 */
    WK_OPTIONS_ERROR = 2 /* a message naming the option is on stderr: exit 2 */
};

/* Parses argv and the CHATMI_* environment into cfg, initialises the logger
 * (--log-format, --log-level) and logs the effective configuration with
 * secrets masked. */
enum wk_options_result wk_options_parse(int argc, char **argv, struct wk_config *cfg);

/* Name of a stage for logs. */
const char *wk_stage_name(enum wk_stage s);

#endif
