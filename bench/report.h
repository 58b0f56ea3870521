/* report.h: the results as a table for people or as one JSON object. */
#ifndef CHATMI_BENCH_REPORT_H
#define CHATMI_BENCH_REPORT_H

#include <stdio.h>

#include "bench/coord.h"

void bn_report_text(const struct bn_report *rep, FILE *out);

/* 0, or -1 when out of memory. */
int bn_report_json(const struct bn_report *rep, FILE *out);

#endif
