/* opt.h: table-driven options. Every option is a long flag (--redis-url) and
 * an environment variable (CHATMI_REDIS_URL); the flag wins over the
 * environment, which wins over the settings file (--config), which wins over
 * the default. Both "--name value" and
 * "--name=value" are accepted. --help and --version are built in.
 *
 * Parsed values are written through each entry's `dst`:
 *   CM_OPT_STRING  char **        (malloc'ed copy; cm_opt_free() frees it)
 *   CM_OPT_INT     long *         decimal, checked against [min, max]
 *   CM_OPT_BYTES   size_t *       "65536", "64k"/"64KiB", "1m"/"1MiB", "1g" (powers of 1024), within [min, max]
 *   CM_OPT_SECONDS double *       "10", "2.5", "500ms", "10s", "1m"; within [min, max] seconds
 *   CM_OPT_RATE    struct cm_rate * "20/40" (20 per second, burst 40), "20" (burst = rate), "0" (off)
 *   CM_OPT_ENUM    int *          index of the value in `choices` ("jwt|none")
 *   CM_OPT_BOOL    int *          "1/0/true/false/yes/no/on/off"; a bare flag means true
 */
#ifndef CHATMI_COMMON_OPT_H
#define CHATMI_COMMON_OPT_H

#include <stddef.h>

#include "common/log.h"

enum cm_opt_type {
    CM_OPT_STRING,
    CM_OPT_INT,
    CM_OPT_BYTES,
    CM_OPT_SECONDS,
    CM_OPT_RATE,
    CM_OPT_ENUM,
    CM_OPT_BOOL
};

struct cm_rate {
    double per_second; /* 0: no limit */
    double burst;
};

struct cm_opt {
    const char *name;       /* "redis-url": flag --redis-url, env CHATMI_REDIS_URL */
    enum cm_opt_type type;
    const char *def;        /* default in the option's own syntax; NULL: none / computed */
    const char *def_help;   /* shown in --help instead of `def` when set ("number of CPUs") */
    const char *choices;    /* CM_OPT_ENUM: "a|b|c" */
    double min, max;        /* CM_OPT_INT/BYTES/SECONDS bounds (both 0: unbounded) */
    int secret;             /* CM_OPT_SECRET: value shown as "***"; CM_OPT_SECRET_URL: a URL
                               shown with its password masked (scheme://user:***@host) */
    const char *help;
    void *dst;
};

enum { CM_OPT_PUBLIC = 0, CM_OPT_SECRET = 1, CM_OPT_SECRET_URL = 2 };

/* Where an option's value came from (cm_opt_parse_from). */
enum cm_opt_source { CM_SRC_DEFAULT = 'd', CM_SRC_FILE = 'c', CM_SRC_ENV = 'e', CM_SRC_FLAG = 'f' };

enum cm_opt_result {
    CM_OPT_OK = 0,
    CM_OPT_EXIT = 1,  /* --help or --version printed to stdout: exit 0 */
    CM_OPT_ERROR = -1 /* err names the option and the problem: exit 2 */
};

/* Applies defaults, then the settings file named by --config FILE or
 * CHATMI_CONFIG (lines "CHATMI_NAME=value", as in a systemd EnvironmentFile;
 * an unknown name is an error), then the environment, then argv (argv[0] is
 * skipped).
 * `usage` is printed first by --help ("Usage: chatmi-gateway [OPTIONS]"),
 * `version` by --version. Unknown flags, missing values and bad values are
 * errors. Positional arguments are errors. */
enum cm_opt_result cm_opt_parse(const struct cm_opt *opts, size_t nopts, int argc, char **argv,
                                const char *usage, const char *version, char *err, size_t errlen);

/* cm_opt_parse(), also writing where each option's value came from into
 * from[0..nopts) (enum cm_opt_source), for the start-up log. */
enum cm_opt_result cm_opt_parse_from(const struct cm_opt *opts, size_t nopts, int argc, char **argv,
                                     const char *usage, const char *version, char *from, char *err,
                                     size_t errlen);

/* "default", "file", "env" or "flag". */
const char *cm_opt_source_name(char from);

/* The option's effective value as text, masked as its `secret` says; a
 * string never set shows its def_help ("off"), else "(unset)". */
void cm_opt_value(const struct cm_opt *o, char *buf, size_t buflen);

/* Copies url into buf with the password of its userinfo (between the first
 * ':' and the last '@' after "://") replaced by "***"; a userinfo without
 * ':' is masked whole. */
void cm_opt_mask_url(const char *url, char *buf, size_t buflen);

/* Logs the effective configuration once (event, level info): every
 * option's value (masked) and where it came from (from: as filled by
 * cm_opt_parse_from), as fields, plus `extra` fields (derived values). */
void cm_opt_log_config(const struct cm_opt *opts, size_t nopts, const char *from, const char *event,
                       const struct cm_log_field *extra, size_t nextra);

/* Parsers for single values, shared with programs that validate later.
 * Each returns 0 or -1 with a message in err. */
int cm_opt_parse_bytes(const char *s, size_t *out, char *err, size_t errlen);
int cm_opt_parse_seconds(const char *s, double *out, char *err, size_t errlen);
int cm_opt_parse_rate(const char *s, struct cm_rate *out, char *err, size_t errlen);

/* Writes "name=value name=value ..." of the effective configuration into buf,
 * secrets shown as "***" (or "(unset)"), for the start-up log line. */
void cm_opt_describe(const struct cm_opt *opts, size_t nopts, char *buf, size_t buflen);

/* Frees every CM_OPT_STRING value and sets it to NULL. */
void cm_opt_free(const struct cm_opt *opts, size_t nopts);

#endif
