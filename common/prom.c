/* prom.c: the exposition buffer of prom.h. */
#include "common/prom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int cm_prom_init(struct cm_prom_text *t, size_t cap)
{
    t->p = malloc(cap);
    t->len = 0;
    t->cap = cap;
    t->failed = t->p == NULL;
    return t->p == NULL ? -1 : 0;
}

void cm_prom_add(struct cm_prom_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

void cm_prom_family(struct cm_prom_text *t, const char *name, const char *type, const char *help)
{
    cm_prom_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int cm_prom_finish(struct cm_prom_text *t, char **out, size_t *outlen)
{
    if (t->failed) {
        free(t->p);
        t->p = NULL;
        return -1;
    }
    *out = t->p;
    *outlen = t->len;
    return 0;
}
