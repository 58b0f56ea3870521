/* harness_priv.h: what harness.c lends to cluster.c (the Redis Cluster part
 * of the harness lives in its own file, but its nodes are processes of the
 * same table: drained logs, readiness lines, it_end's cleanup). Not for
 * tests: they use harness.h. */
#ifndef CHATMI_IT_HARNESS_PRIV_H
#define CHATMI_IT_HARNESS_PRIV_H

#include <stddef.h>
#include <sys/types.h>

/* Starts a redis-server (argv[0] a path) whose readiness is its "Ready to
 * accept connections" line, output in <test dir>/<name>.log. Returns the
 * process index, or -1 when it could not be spawned. */
int it_priv_redis_proc_start(const char *name, const char *const *argv);
/* 1 ready, 0 exited before it was ready, -1 not ready within timeout_ms. */
int it_priv_proc_wait_ready(int idx, int timeout_ms);
/* Sends sig, waits up to timeout_ms, then SIGKILLs its group. 1 when it
 * exited of the signal within the time. */
int it_priv_proc_stop(int idx, int sig, int timeout_ms);
/* Sends sig to every index of idx[] first, then stops each as above: n
 * programs stop in about the time of one. */
void it_priv_proc_stop_many(const int *idx, int n, int sig, int timeout_ms);
/* 1 when the process's log holds needle. */
int it_priv_proc_log_contains(int idx, const char *needle);
/* Prints the end of the process's log and fails the test (never returns). */
void it_priv_proc_fail(int idx, const char *what, int rc);
/* The pid (0 once stopped). */
pid_t it_priv_proc_pid(int idx);

/* Paths of redis-server and of the redis-cli next to it (or on PATH). */
const char *it_priv_redis_server(char *buf, size_t buflen);
const char *it_priv_redis_cli(char *buf, size_t buflen);

/* cluster.c's hooks for harness.c: forget any cluster (it_begin), stop its
 * nodes (it_end, after the chatmi programs), and whether a process index
 * is one of its nodes (no sanitizer scan of Redis logs). */
void it_priv_cluster_reset(void);
void it_priv_cluster_stop(void);
int it_priv_cluster_owns(int idx);

#endif
