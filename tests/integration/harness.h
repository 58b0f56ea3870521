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
 * for every timeout, for sanitizer or valgrind builds).
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

/* Starts redis-server (once per test). Returns its port. */
int it_redis_start(void);
int it_redis_port(void);
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
 * out. Its exit status, or -1 when it did not finish within 5 s. */
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

#endif
