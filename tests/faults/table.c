/* table.c: the run's table of fault figures (fault.h, fl_row).
 *
 * Each test runs in its own process, so rows go to a file the runner
 * creates before the first test (CHATMI_FAULTS_ROWS); after the last test
 * the runner prints the table to stderr (the test log) and writes it as
 * Markdown to fault-table.md in the working directory (the build's
 * tests/faults), ready for docs/reliability.md.
 *
 * Criterion names a report hook's function after its line number, with
 * external linkage: the hooks below must not sit on the same line as
 * harness.c's (which are near its end). */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"

static char g_rows[256];

void fl_row(const char *fault, int injections, const struct fl_result *r, const char *note)
{
    const char *path = getenv("CHATMI_FAULTS_ROWS");
    if (path == NULL || *path == '\0')
        return;
    FILE *f = fopen(path, "ae");
    if (f == NULL)
        return;
    if (r == NULL)
        fprintf(f, "%s\t%d\t-\t-\t-\t-\t-\t-\t-\t%s\n", fault, injections, note != NULL ? note : "");
    else
        fprintf(f, "%s\t%d\t%ld\t%ld\t%ld\t%ld\t%ld\t%ld\t%ld\t%s\n", fault, injections, r->sent, r->acked, r->lost,
                r->duplicated, r->max_recovery_ms, r->reconnects, r->resyncs, note != NULL ? note : "");
    fclose(f);
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    snprintf(g_rows, sizeof(g_rows), "/tmp/chatmi-faults-rows.XXXXXX");
    int fd = mkstemp(g_rows);
    if (fd < 0) {
        g_rows[0] = '\0';
        return;
    }
    close(fd);
    setenv("CHATMI_FAULTS_ROWS", g_rows, 1);
}

static const char *const columns[] = {"fault",      "injections", "sent",    "acked", "lost",
                                      "duplicated", "max recovery ms", "reconnects", "resyncs", "note"};
#define NCOLS 10

ReportHook(POST_ALL)(struct criterion_global_stats *gs)
{
    (void)gs;
    if (g_rows[0] == '\0')
        return;
    /* rows in case order: sort the file by the fault's leading number */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "sort -n -o '%s' '%s'", g_rows, g_rows);
    if (system(cmd) != 0)
        fprintf(stderr, "faults: could not sort the table's rows\n");
    FILE *in = fopen(g_rows, "re");
    FILE *md = fopen("fault-table.md", "we");
    if (md != NULL) {
        for (int i = 0; i < NCOLS; i++)
            fprintf(md, "| %s ", columns[i]);
        fprintf(md, "|\n");
        for (int i = 0; i < NCOLS; i++)
            fprintf(md, "| %s ", i == 0 || i == NCOLS - 1 ? "---" : "---:");
        fprintf(md, "|\n");
    }
    fprintf(stderr, "\n==== fault-injection results ====\n");
    fprintf(stderr, "%-38s %5s %7s %7s %5s %5s %9s %6s %6s  %s\n", "fault", "inj", "sent", "acked", "lost", "dup",
            "recov_ms", "reconn", "resync", "note");
    char line[2048];
    while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *f[NCOLS] = {0};
        int n = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, "\t", &save); t != NULL && n < NCOLS; t = strtok_r(NULL, "\t", &save))
            f[n++] = t;
        for (int i = n; i < NCOLS; i++)
            f[i] = "";
        fprintf(stderr, "%-38s %5s %7s %7s %5s %5s %9s %6s %6s  %s\n", f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7],
                f[8], f[9]);
        if (md != NULL) {
            for (int i = 0; i < NCOLS; i++)
                fprintf(md, "| %s ", f[i]);
            fprintf(md, "|\n");
        }
    }
    fprintf(stderr, "(max recovery: the longest any client was without a session, or any acked message waited "
                    "from its first send to its ack, retries included)\n\n");
    if (in != NULL)
        fclose(in);
    if (md != NULL)
        fclose(md);
    unlink(g_rows);
}
