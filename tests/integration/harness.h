/* harness.h: real processes for the integration tests.
 *
 * Each Criterion test runs in its own process and gets its own stack: a
 * redis-server on a free loopback port with its own temporary directory,
 * chatmi-gateway instance(s) and chatmi-worker(s), all started with
 * --log-format json. Readiness is never guessed with sleeps: the harness
 * reads "Ready to accept connections" from redis-server's stdout and the
 * "event":"ready" line from the gateway master and the worker, with a
 * deadline. One thread keeps draining every child's output into
 * <test dir>/<name>.log so no child ever blocks on a full pipe.
 *
 * Cleanup: it_end() (the suites' .fini) sends SIGTERM, waits a bounded time,
 * then SIGKILLs the process group of each program (each is started in its
 * own group, so a gateway's children go too). Every spawned program also
 * gets PR_SET_PDEATHSIG(SIGKILL), so a crashed test leaves nothing running.
 * The Criterion runner (report hooks in harness.c) prints the logs of a
 * failed or crashed test and removes its directory; CHATMI_IT_KEEP=1 keeps
 * the directories.
 *
 * Environment: CHATMI_GATEWAY_BIN, CHATMI_WORKER_BIN, REDIS_SERVER,
 * CHATMI_WWW_DIR (Makefile.am sets them), CHATMI_IT_TIMEOUT_SCALE (a factor
 * for every timeout, for sanitizer or valgrind builds), CHATMI_IT_REDIS=cluster
 * (the test's Redis is a 3-master, 3-replica Redis Cluster: see "Redis
 * Cluster" below) and CHATMI_IT_QUEUE_PARTITIONS=N (gateways and workers get
 * --queue-partitions N).
 *
 * The start functions assert (cr_assert) on failure after printing the
 * program's log, so a test can simply call them. */
#ifndef CHATMI_IT_HARNESS_H
#define CHATMI_IT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A timeout in milliseconds, scaled by CHATMI_IT_TIMEOUT_SCALE. */
int it_ms(int base_ms);
/* The usual wait for one reply or delivery. */
#define IT_WAIT it_ms(5000)

/* Marks an option the harness would otherwise pass: do not pass it (so the
 * program's own default applies). */
#define IT_OMIT "\001omit"

struct it_gw_conf {
    const char *auth;              /* NULL: "none" */
    const char *jwt_secret;        /* with auth jwt */
    const char *jwt_secret_file;
    int processes;                 /* 0: 2 */
    const char *heartbeat;         /* NULL: the program's default */
    const char *rate_limit;        /* NULL: "0" (off); IT_OMIT: the default; --user-rate-limit
                                      is "0" too unless IT_OMIT (extra may set it) */
    const char *max_message_bytes; /* NULL: default */
    const char *max_queued_bytes;  /* NULL: default */
    const char *allowed_origins;   /* NULL: none */
    const char *handshake_timeout; /* NULL: default */
    const char *drain_seconds;     /* NULL: "0" */
    const char *redis_url;         /* NULL: the test's Redis */
    const char *const *extra;      /* more arguments, NULL terminated; may be NULL */
};

struct it_worker_conf {
    const char *stage;             /* NULL: default (all) */
    const char *max_text_bytes;    /* NULL: default */
    const char *const *extra;
    const char *redis_url;         /* NULL: the test's Redis */
};

/* Fixtures (.init / .fini). it_begin: the test directory and the log
 * drainer; it_redis_init: it_begin + Redis; it_stack_init: it_redis_init +
 * one gateway (defaults, 2 children) + one worker. it_end: stop everything. */
void it_begin(void);
void it_redis_init(void);
void it_stack_init(void);
void it_end(void);

/* The test's directory (logs, Redis data). */
const char *it_dir(void);

/* Starts redis-server (once per test). Returns its port. With
 * CHATMI_IT_REDIS=cluster, starts a Redis Cluster of 3 masters with one
 * replica each instead (it_cluster_start(3, 1)) and returns a master's port. */
int it_redis_start(void);
/* The single Redis's port; in a cluster, the port of a live master. */
int it_redis_port(void);
/* The --redis-url the harness gives gateways and workers: redis://127.0.0.1:
 * <port>/0, or in a cluster redis+cluster://127.0.0.1:P1,... (the live
 * masters). Returns buf. */
const char *it_redis_url(char *buf, size_t buflen);
/* --queue-partitions N for the gateways and workers started from now on
 * (0: not passed). Starts as CHATMI_IT_QUEUE_PARTITIONS. */
void it_set_queue_partitions(int n);
int it_queue_partitions(void);
/* The single-Redis helpers below (kill, restart, AOF, replicas,
 * sentinels) fail the test when it runs a cluster: such tests call
 * it_skip_in_cluster() first. */
/* SIGKILLs Redis (to test `unavailable`). */
void it_redis_kill(void);
/* Kills Redis with SIGKILL if it runs and starts it again on the same port
 * and data directory (with AOF, nothing acknowledged by Redis is lost). */
int it_redis_restart(void);
/* Before it_redis_start: run Redis with appendonly yes, appendfsync always. */
void it_redis_use_aof(void);

/* Starts a gateway instance; returns its index (0, 1, ...). */
int it_gateway_start(const struct it_gw_conf *c);
int it_gw_port(int idx);
pid_t it_gw_pid(int idx);
/* Sends sig to the gateway master and waits up to timeout_ms for it to
 * exit. Returns 1 with *status (waitpid status) set when it exited, 0 when
 * it did not (it keeps running; it_end() will kill it). */
int it_gateway_signal_wait(int idx, int sig, int timeout_ms, int *status);

/* Waits until the gateway's log (master and children) holds needle.
 * 1 when it appeared within timeout_ms, else 0. */
int it_gw_log_wait(int idx, const char *needle, int timeout_ms);

/* Starts a worker; returns its index. */
int it_worker_start(const struct it_worker_conf *c);
pid_t it_worker_pid(int idx);
int it_worker_signal_wait(int idx, int sig, int timeout_ms, int *status);

/* The --worker-id the harness gave worker idx (static buffer). */
const char *it_worker_id(int idx);

/* The pids of gateway idx's child processes (read from /proc), at most max.
 * Returns how many. */
int it_gw_children(int idx, pid_t *out, int max);

/* 1 when process pid holds the server end of the TCP connection whose
 * client end is client_fd (an IPv4 loopback socket of this process), i.e.
 * the process has accept()ed it; 0 when not (yet); read from /proc. */
int it_pid_accepted(pid_t pid, int client_fd);

/* CHATMI_IT_VALGRIND=1 (set, not "0"): gateways and workers run under
 * valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
 * --error-exitcode=99 --trace-children=yes, one log per process in the test
 * directory (valgrind-<name>.<pid>.log). it_end() fails the test (like a
 * sanitizer report) when any of them reports an error or a leak. Give
 * CHATMI_IT_TIMEOUT_SCALE too: everything runs ~20 times slower. */
int it_valgrind(void);
/* Reads the valgrind logs written so far: returns how many report errors
 * (printed to stderr); *nfiles: logs found, *nmissing: logs without an
 * ERROR SUMMARY (a process that did not exit, or was killed). Either may be
 * NULL. */
int it_valgrind_check(int *nfiles, int *nmissing);

/* Port of gateway 0 (the usual one). */
int it_port(void);

/* Paths of the programs under test. */
const char *it_gateway_bin(void);
const char *it_worker_bin(void);

/* Path of prog (a name looked up in PATH, or a path) when it is an
 * executable, written into buf; NULL when there is none. */
const char *it_which(const char *prog, char *buf, size_t buflen);

/* Starts another program (argv[0] a path) with env_extra ("NAME=value"
 * strings, NULL terminated, may be NULL) added to the scrubbed environment,
 * its output drained into <test dir>/<name>.log. Nothing is awaited: the
 * test checks readiness its own way. it_end() stops it (SIGKILL, after the
 * chatmi programs and Redis). Returns its index for it_aux_pid(). */
int it_aux_start(const char *name, const char *const *argv, const char *const *env_extra);
pid_t it_aux_pid(int idx);

/* Runs argv (argv[0] is the program path) to completion with a scrubbed
 * environment plus env_extra ("NAME=value" strings, NULL terminated, may be
 * NULL), capturing stdout and stderr together into out (NUL terminated,
 * truncated to outlen - 1). Returns 0 and *status (waitpid) when it exited
 * within timeout_ms, else kills it and returns -1. */
int it_run(const char *const *argv, const char *const *env_extra, int timeout_ms, char *out, size_t outlen,
           int *status);

/* Prints the last lines of every log of the test to stderr. */
void it_dump_logs(void);

/* A free TCP port on 127.0.0.1 (outside the ephemeral range). */
int it_free_port(void);

/* HS256 JWT from raw header and payload JSON text, signed with key; a
 * test-side implementation independent of common/jwt.c. Returns out. */
char *it_jwt_make(char *out, size_t outlen, const char *key, const char *header_json, const char *payload_json);
/* {"alg":"HS256","typ":"JWT"} / {"sub":sub,"exp":exp[,"nbf":nbf]} (nbf 0: absent). */
char *it_jwt(char *out, size_t outlen, const char *key, const char *sub, int64_t exp, int64_t nbf);

/* Wall clock, seconds and milliseconds since the epoch. */
int64_t it_now_s(void);
int64_t it_now_ms(void);
/* The key of queue name ("inbound", "fanout", "dead") in queue partition 0
 * (chatmi:{q}:<name> unless CHATMI_IT_QUEUE_PARTITIONS says otherwise):
 * its workers take what a test pushes there. */
size_t it_queue_key(char *out, const char *name);
/* Monotonic milliseconds. */
int64_t it_mono_ms(void);
/* Pauses ms milliseconds: only to pace a bounded retry loop, never to wait for an event. */
void it_pause_ms(int ms);

/* ---- Redis replication and Sentinel (test_sentinel.c) ----
 * Each on a free loopback port with its own directory; it_end kills them. */

/* Runs redis-cli -h 127.0.0.1 -p port args... (NULL terminated), output in
 * out. Its exit status, or -1 when it did not finish within 5 s. In a
 * cluster it passes -c: key commands follow MOVED/ASK to the slot's owner. */
int it_redis_cli(int port, const char *const *args, char *out, size_t outlen);
/* Starts a replica of the test's Redis (it_redis_start first) and waits
 * until its first sync has finished. Log names replica0, replica1, ...
 * Returns its port. */
int it_redis_replica_start(void);
/* Starts a sentinel that monitors the test's Redis as master_name with
 * this quorum, down-after-milliseconds and failover-timeout; ready once it
 * logs +monitor. Log names sentinel0, sentinel1, ... Returns its port. */
int it_sentinel_start(const char *master_name, int quorum, int down_after_ms, int failover_timeout_ms);
/* Lines of the log <logname>.log ("redis", "gateway0", "worker0",
 * "sentinel1", ...) holding needle; waits (polling, bounded) until at least
 * count of them are there: 1 when they were within timeout_ms, else 0. */
int it_log_count(const char *logname, const char *needle);
int it_log_wait_count(const char *logname, const char *needle, int count, int timeout_ms);
/* Starts a program with its output drained into <name>.log, without
 * waiting for it to be ready (one that cannot be). Returns an id. */
int it_spawn(const char *name, const char *const *argv);
/* Sends sig to it and waits up to timeout_ms: 1 with *status (waitpid)
 * when it exited, 0 when not (it_end kills it). */
int it_spawn_stop(int id, int sig, int timeout_ms, int *status);

/* ---- Redis Cluster (cluster.c) ----
 * A real Redis Cluster on loopback: redis-server processes with
 * cluster-enabled yes, each with its own directory and cluster-config-file
 * under <test dir>/redis-data, a free port and a free bus port
 * (cluster-port), cluster-node-timeout 1000 ms (failover within a few
 * seconds), no persistence, created with redis-cli --cluster create.
 * "Healthy" (it_cluster_wait_ok) means: every live node says
 * cluster_state:ok with 16384 slots assigned and ok, all live nodes agree
 * on which master owns each slot, no slot is migrating or importing, and
 * every live replica has master_link_status:up. Nodes are numbered in start
 * order; roles change (a replica is promoted), node numbers do not. it_end
 * stops the nodes with everything else. Every wait polls a condition
 * against a deadline scaled by it_ms(). */

/* CHATMI_IT_REDIS=cluster: it_redis_start() starts a cluster. */
int it_cluster_mode(void);
/* This test runs a cluster (it_cluster_start was called). */
int it_cluster_active(void);
/* In cluster mode (CHATMI_IT_REDIS=cluster), skips the test with reason
 * (cr_skip_test): for tests that need the single Redis. */
void it_skip_in_cluster(const char *reason);

/* Starts masters * (1 + replicas) nodes, creates the cluster (redis-cli
 * --cluster create ... --cluster-replicas replicas --cluster-yes) and waits
 * until it is healthy; asserts. Returns the port of a master.
 * CHATMI_IT_SKIP_CLUSTER=1 makes it skip the test instead (scripts/test.sh
 * sets it for distcheck, after build/ and build-san/ ran every cluster case).
 * it_cluster_start_ms(): how long that took, first spawn to healthy. */
int it_cluster_start(int masters, int replicas);
long it_cluster_start_ms(void);
/* Waits until the cluster is healthy (see above): 1, or 0 at the deadline
 * with the reason written to why (may be NULL). */
int it_cluster_wait_ok(int timeout_ms, char *why, size_t whylen);

int it_cluster_nodes(void);             /* nodes started (alive or not) */
int it_cluster_port(int node);          /* its port */
int it_cluster_alive(int node);         /* not killed */
const char *it_cluster_id(int node);    /* its node id (CLUSTER MYID), static storage per node */
int it_cluster_is_master(int node);     /* per CLUSTER NODES of a live node */
int it_cluster_master_of(int node);     /* a replica's master (node number), -1 for a master */
int it_cluster_masters(int *out, int max); /* live masters, node numbers; returns how many */
int it_cluster_master_port(void);       /* port of a live master (the lowest-numbered) */
int it_cluster_slot_count(int node);    /* slots the node owns */
/* redis+cluster://127.0.0.1:P1,127.0.0.1:P2,... (live masters). Returns buf. */
const char *it_cluster_url(char *buf, size_t buflen);

/* CLUSTER KEYSLOT key; the live master owning a slot (node number, per
 * CLUSTER NODES); the owner of key's slot. Assert on failure. */
int it_cluster_keyslot(const char *key);
int it_cluster_slot_owner(int slot);
int it_cluster_key_owner(const char *key);
/* Every slot's owner (node number, -1 unassigned) in one read: out holds
 * 16384 entries. */
void it_cluster_slot_map(int *out);

/* kill -9 master node, then waits until one of its replicas has been
 * promoted to own its slots and the cluster is healthy again. Returns the
 * milliseconds from the kill to that; *promoted (may be NULL): the new
 * master's node number. */
long it_cluster_kill_master(int node, int *promoted);
/* Starts a killed node again on its port and directory (its nodes.conf):
 * it rejoins as a replica of whoever took its slots. Waits until healthy. */
void it_cluster_restart_node(int node);
/* redis-cli --cluster reshard 127.0.0.1:<port> --cluster-from <id of from>
 * --cluster-to <id of to> --cluster-slots nslots --cluster-yes (redis-cli
 * picks from's lowest slots), then waits until healthy. Returns ms. */
long it_cluster_reshard(int from, int to, int nslots);
/* Moves one chosen slot to master node to, keys included, the way redis-cli
 * does for each slot (SETSLOT IMPORTING / MIGRATING, GETKEYSINSLOT +
 * MIGRATE, SETSLOT NODE on every master), then waits until healthy.
 * Returns ms (0 when to already owns it). */
long it_cluster_move_slot(int slot, int to);
/* redis-cli --cluster rebalance (threshold 0.1%): every master back to its
 * share of the slots. Returns ms. */
long it_cluster_rebalance(void);


#endif
