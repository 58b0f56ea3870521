/* Unit tests: gateway/metrics.c, the shared cells without any fork: taking
 * and folding cells, gauges dropped and counters kept when a child goes,
 * the overflow cell, and the rendered sums. */
#include <config.h>

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/metrics.h"

/* The value of a sample line "name[{labels}] value" in the rendering. */
static double value_of(const struct gw_metrics *m, const char *sample)
{
    char *text;
    size_t len;
    cr_assert_eq(gw_metrics_render(m, &text, &len), 0);
    cr_assert_eq(strlen(text), len);
    cr_assert_eq(text[len - 1], '\n');
    size_t n = strlen(sample);
    double v = -12345;
    for (char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, sample, n) == 0 && l[n] == ' ')
            v = strtod(l + n + 1, NULL);
    free(text);
    cr_assert_neq(v, -12345, "no sample %s", sample);
    return v;
}

Test(gw_metrics, cells_sum_and_fold)
{
    struct gw_metrics m;
    cr_assert_eq(gw_metrics_map(&m, 2), 0);
    int overflow;
    size_t a = gw_metrics_cell_take(&m, &overflow);
    cr_assert_not(overflow);
    size_t b = gw_metrics_cell_take(&m, &overflow);
    cr_assert_neq(a, b, "two live children share a cell");
    struct gw_metrics_cell *ca = gw_metrics_cell(&m, a), *cb = gw_metrics_cell(&m, b);
    gw_metric_add(ca, GW_M_CONNS_OPEN, 3);
    gw_metric_add(ca, GW_M_CONNS_TOTAL, 3);
    gw_metric_add(cb, GW_M_CONNS_OPEN, 2);
    gw_metric_add(cb, GW_M_CONNS_TOTAL, 5);
    gw_metric_set(ca, GW_M_SUBSCRIPTIONS, 7);
    gw_metric_set(cb, GW_M_SUBSCRIPTIONS, 1);
    gw_metric_add(cb, gw_metric_error(CM_ERR_RATE_LIMITED), 4);
    gw_metric_add(ca, gw_metric_handshake_status(401), 1);
    cr_assert_eq(value_of(&m, "chatmi_gateway_connections"), 5);
    cr_assert_eq(value_of(&m, "chatmi_gateway_connections_total"), 8);
    cr_assert_eq(value_of(&m, "chatmi_gateway_subscriptions"), 8, "set gauges of two processes add up");
    cr_assert_eq(value_of(&m, "chatmi_gateway_processes_running"), 2);
    cr_assert_eq(value_of(&m, "chatmi_gateway_errors_total{code=\"rate_limited\"}"), 4);
    cr_assert_eq(value_of(&m, "chatmi_gateway_handshakes_total{result=\"unauthorized\"}"), 1);

    /* child b dies with sessions open: its gauges go, its counters stay */
    gw_metrics_cell_release(&m, b);
    cr_assert_eq(value_of(&m, "chatmi_gateway_connections"), 3);
    cr_assert_eq(value_of(&m, "chatmi_gateway_subscriptions"), 7);
    cr_assert_eq(value_of(&m, "chatmi_gateway_processes_running"), 1);
    cr_assert_eq(value_of(&m, "chatmi_gateway_connections_total"), 8);
    cr_assert_eq(value_of(&m, "chatmi_gateway_errors_total{code=\"rate_limited\"}"), 4);

    /* its successor gets a clean cell */
    size_t c = gw_metrics_cell_take(&m, &overflow);
    cr_assert_eq(gw_metrics_cell(&m, c)->v[GW_M_CONNS_OPEN], 0);
    cr_assert_eq(gw_metrics_cell(&m, c)->v[GW_M_CONNS_TOTAL], 0);
    gw_metrics_unmap(&m);
}

Test(gw_metrics, gauge_below_zero_in_a_cell_sums_right)
{
    struct gw_metrics m;
    cr_assert_eq(gw_metrics_map(&m, 1), 0);
    int overflow;
    struct gw_metrics_cell *x = gw_metrics_cell(&m, gw_metrics_cell_take(&m, &overflow));
    struct gw_metrics_cell *y = gw_metrics_cell(&m, gw_metrics_cell_take(&m, &overflow));
    gw_metric_add(x, GW_M_CONNS_OPEN, 4);
    gw_metric_add(y, GW_M_CONNS_OPEN, -1); /* wraps in its cell */
    cr_assert_eq(value_of(&m, "chatmi_gateway_connections"), 3);
    gw_metrics_unmap(&m);
}

Test(gw_metrics, overflow_when_every_cell_is_taken)
{
    struct gw_metrics m;
    cr_assert_eq(gw_metrics_map(&m, 1), 0);
    int overflow = 0;
    size_t last = 0;
    int taken = 0;
    for (int i = 0; i < 100 && !overflow; i++, taken++)
        last = gw_metrics_cell_take(&m, &overflow);
    cr_assert(overflow, "cells never run out");
    cr_assert_geq(taken, 4, "room for a child, its successor and retiring children");
    /* the overflow cell is shared and never folded */
    size_t again = gw_metrics_cell_take(&m, &overflow);
    cr_assert(overflow);
    cr_assert_eq(again, last);
    cr_assert_eq(value_of(&m, "chatmi_gateway_processes_running"), taken + 1);
    gw_metrics_cell_release(&m, again);
    cr_assert_eq(value_of(&m, "chatmi_gateway_processes_running"), taken);
    gw_metrics_unmap(&m);
}

Test(gw_metrics, master_counters_and_info)
{
    struct gw_metrics m;
    cr_assert_eq(gw_metrics_map(&m, 3), 0);
    gw_metric_add(m.own, GW_M_CHILD_STARTS, 3);
    cr_assert_eq(value_of(&m, "chatmi_gateway_process_starts_total"), 3);
    cr_assert_eq(value_of(&m, "chatmi_gateway_processes"), 3);
    cr_assert_gt(value_of(&m, "chatmi_gateway_start_time_seconds"), 1.7e9);
    cr_assert_eq(value_of(&m, "chatmi_gateway_build_info{version=\"" PACKAGE_VERSION "\",program=\"chatmi-gateway\"}"),
                 1);
    gw_metrics_unmap(&m);
}
