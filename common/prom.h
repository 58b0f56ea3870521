/* prom.h: building a Prometheus text exposition (version 0.0.4) in a
 * growing buffer, for the gateway's and the worker's /metrics. */
#ifndef CHATMI_COMMON_PROM_H
#define CHATMI_COMMON_PROM_H

#include <stddef.h>

struct cm_prom_text {
    char *p;
    size_t len, cap;
    int failed; /* out of memory: the text is incomplete and must not be served */
};

/* 0, or -1 when out of memory (nothing to free then). */
int cm_prom_init(struct cm_prom_text *t, size_t cap);

/* Appends printf-style text; after a failure, does nothing. */
void cm_prom_add(struct cm_prom_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The HELP and TYPE lines of a metric family. */
void cm_prom_family(struct cm_prom_text *t, const char *name, const char *type, const char *help);

/* Hands the text to the caller (*out malloc'ed, *outlen) and returns 0, or
 * frees it and returns -1 when anything failed. */
int cm_prom_finish(struct cm_prom_text *t, char **out, size_t *outlen);

#endif
