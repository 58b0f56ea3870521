/* procstat.c: /proc sampling (procstat.h). */
#include "bench/procstat.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

int bn_parse_proc_stat(const char *line, struct bn_proc *p, long clk_tck, long page_size)
{
    /* pid (comm) state ppid ... utime(14) stime(15) ... rss(24); comm may
     * hold spaces and parentheses, so fields are counted from the last ')'. */
    const char *rp = strrchr(line, ')');
    if (rp == NULL)
        return -1;
    int pid = atoi(line);
    const char *f = rp + 1;
    unsigned long long v[24];
    int field = 3;
    memset(v, 0, sizeof(v));
    while (*f != '\0' && field <= 24) {
        while (*f == ' ')
            f++;
        if (*f == '\0')
            break;
        if (field >= 4) {
            char *end;
            v[field - 1] = strtoull(f, &end, 10);
            if (end == f)
                return -1;
            f = end;
        } else {
            while (*f != ' ' && *f != '\0')
                f++;
        }
        field++;
    }
    if (field <= 24)
        return -1;
    p->pid = pid;
    p->ppid = (int)v[3];
    p->cpu_s = (double)(v[13] + v[14]) / (double)clk_tck;
    p->rss = (uint64_t)v[23] * (uint64_t)page_size;
    return 0;
}

static int sample_one(int pid, int want_pss, int want_fds, struct bn_proc *p)
{
    char path[64], buf[4096];
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (read_file(path, buf, sizeof(buf)) <= 0 || bn_parse_proc_stat(buf, p, tck > 0 ? tck : 100, page) < 0)
        return -1;
    p->pss = 0;
    p->fds = -1;
    if (want_pss) {
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
        if (read_file(path, buf, sizeof(buf)) > 0) {
            const char *s = strstr(buf, "\nPss:");
            if (s != NULL)
                p->pss = strtoull(s + 5, NULL, 10) * 1024;
        }
    }
    if (want_fds) {
        snprintf(path, sizeof(path), "/proc/%d/fd", pid);
        DIR *d = opendir(path);
        if (d != NULL) {
            long n = 0;
            struct dirent *e;
            while ((e = readdir(d)) != NULL)
                if (e->d_name[0] != '.')
                    n++;
            closedir(d);
            p->fds = n;
        }
    }
    return 0;
}

static int known(const struct bn_tree_sample *s, int pid)
{
    for (int i = 0; i < s->nprocs; i++)
        if (s->procs[i].pid == pid)
            return 1;
    return 0;
}

static void add(struct bn_tree_sample *s, int pid, int want_pss, int want_fds)
{
    if (s->nprocs >= BN_PROCS_MAX || known(s, pid))
        return;
    struct bn_proc *p = &s->procs[s->nprocs];
    if (sample_one(pid, want_pss, want_fds, p) < 0)
        return;
    s->nprocs++;
    s->rss += p->rss;
    s->pss += p->pss;
    s->cpu_s += p->cpu_s;
}

/* Children of pid from /proc/<pid>/task/<pid>/children; -1 when the file
 * does not exist (CONFIG_PROC_CHILDREN is off). */
static int children_file(struct bn_tree_sample *s, int pid, int want_pss, int want_fds)
{
    char path[80], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
    if (read_file(path, buf, sizeof(buf)) < 0)
        return -1;
    for (char *p = buf; *p;) {
        char *end;
        long c = strtol(p, &end, 10);
        if (end == p)
            break;
        add(s, (int)c, want_pss, want_fds);
        p = end;
    }
    return 0;
}

static void scan_proc(struct bn_tree_sample *s, int want_pss, int want_fds)
{
    /* Descendants by parent pid; repeated so grandchildren are found too. */
    for (int round = 0; round < 4; round++) {
        int before = s->nprocs;
        DIR *d = opendir("/proc");
        if (d == NULL)
            return;
        struct dirent *e;
        long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        while ((e = readdir(d)) != NULL) {
            if (!isdigit((unsigned char)e->d_name[0]))
                continue;
            int pid = atoi(e->d_name);
            if (known(s, pid))
                continue;
            char path[64], buf[4096];
            struct bn_proc p;
            snprintf(path, sizeof(path), "/proc/%d/stat", pid);
            if (read_file(path, buf, sizeof(buf)) <= 0 || bn_parse_proc_stat(buf, &p, tck, page) < 0)
                continue;
            if (known(s, p.ppid))
                add(s, pid, want_pss, want_fds);
        }
        closedir(d);
        if (s->nprocs == before)
            return;
    }
}

int bn_tree_sample(const int *roots, int nroots, int want_pss, int want_fds, struct bn_tree_sample *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < nroots; i++)
        add(out, roots[i], want_pss, want_fds);
    if (out->nprocs == 0)
        return 0;
    int have_children_file = 1;
    for (int i = 0; i < out->nprocs && have_children_file; i++)
        if (children_file(out, out->procs[i].pid, want_pss, want_fds) < 0)
            have_children_file = 0;
    if (!have_children_file)
        scan_proc(out, want_pss, want_fds);
    return out->nprocs;
}

int bn_sockstat_read(struct bn_sockstat *out)
{
    char buf[2048];
    memset(out, 0, sizeof(*out));
    if (read_file("/proc/net/sockstat", buf, sizeof(buf)) <= 0)
        return -1;
    const char *t = strstr(buf, "\nTCP:");
    if (t == NULL)
        return -1;
    if (sscanf(t + 5, " inuse %ld orphan %ld tw %ld alloc %ld mem %ld", &out->tcp_inuse, &out->tcp_orphan,
               &out->tcp_tw, &out->tcp_alloc, &out->tcp_mem_pages) != 5)
        return -1;
    if (read_file("/proc/meminfo", buf, sizeof(buf)) > 0) {
        const char *s = strstr(buf, "\nSlab:");
        if (s != NULL)
            out->slab_kb = strtol(s + 6, NULL, 10);
    }
    return 0;
}

long bn_local_port_count(void)
{
    char buf[128];
    long lo, hi;
    if (read_file("/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof(buf)) <= 0 ||
        sscanf(buf, "%ld %ld", &lo, &hi) != 2 || hi < lo)
        return 28232;
    return hi - lo + 1;
}
