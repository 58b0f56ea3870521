/* procstat.h: what /proc says about local processes (a gateway master and
 * its children, workers) and about the kernel's TCP sockets, for runs where
 * the bench shares the machine with what it measures. Linux only. */
#ifndef CHATMI_BENCH_PROCSTAT_H
#define CHATMI_BENCH_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

#define BN_PROCS_MAX 64

struct bn_proc {
    int pid, ppid;
    uint64_t rss;   /* bytes, /proc/<pid>/stat */
    uint64_t pss;   /* bytes, /proc/<pid>/smaps_rollup (0 when unreadable) */
    double cpu_s;   /* user + system */
    long fds;       /* entries of /proc/<pid>/fd, -1 when unreadable */
};

struct bn_tree_sample {
    int nprocs;
    uint64_t rss, pss;
    double cpu_s;
    struct bn_proc procs[BN_PROCS_MAX]; /* the roots first, then their descendants */
};

/* Samples the processes roots[0..nroots) and all their descendants (found
 * through /proc/<pid>/task/<pid>/children where the kernel has it, else by
 * scanning /proc for parent pids). pss and fds are read only when asked,
 * they cost more. Returns the number of processes found (0: none alive). */
int bn_tree_sample(const int *roots, int nroots, int want_pss, int want_fds, struct bn_tree_sample *out);

/* Parses the contents of a /proc/<pid>/stat line. 0 or -1. */
int bn_parse_proc_stat(const char *line, struct bn_proc *p, long clk_tck, long page_size);

struct bn_sockstat {
    long tcp_inuse, tcp_orphan, tcp_tw, tcp_alloc;
    long tcp_mem_pages; /* pages of kernel memory for TCP buffers */
    long slab_kb;       /* /proc/meminfo Slab: where socket structures live; 0 when unknown */
};

/* Reads /proc/net/sockstat and the Slab line of /proc/meminfo. 0 or -1. */
int bn_sockstat_read(struct bn_sockstat *out);

/* The local port range (net.ipv4.ip_local_port_range): how many ephemeral
 * ports one source address has toward one destination. 28232 when unknown. */
long bn_local_port_count(void);

#endif
