/* harness.c: see harness.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pipe2, nftw, strndup, close_range */
#endif
#include "harness.h"
#include "harness_priv.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cluster.h"
#include "common/keys.h"

extern char **environ;

#define IT_MAX_PROCS 40 /* a 6-node cluster, its restarts, 4 gateways, workers */
#define IT_MAX_GW 4
#define IT_MAX_WORKERS 8
#define IT_LINE_MAX 8192
#define IT_SANITIZER_MARKER "sanitizer-errors"
#define IT_START_ATTEMPTS 3
#define IT_STOP_GRACE_MS 3000

enum ready_kind { READY_NONE, READY_REDIS, READY_JSON };

struct it_proc {
    char name[32];
    pid_t pid;            /* 0: not running (or reaped) */
    int fd;               /* read end of the output pipe; owned by the drainer once registered */
    int logfd;
    enum ready_kind kind;
    char line[IT_LINE_MAX];
    size_t linelen;
    int ready;            /* guarded by mu */
    int eof;              /* guarded by mu */
    int used;
};

struct it_env {
    char dir[PATH_MAX];
    int own_dir;          /* created without the runner's root: remove in it_end */
    struct it_proc procs[IT_MAX_PROCS];
    int nprocs;
    pthread_t drainer;
    int drainer_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake[2];
    int stop;

    int redis_proc;       /* index in procs, -1 */
    int redis_port;
    int redis_aof;        /* start with appendonly yes, appendfsync always */
    int redis_starts;     /* names the logs of restarts: redis, redis-1, ... */
    int ngw;
    int gw_proc[IT_MAX_GW];
    int gw_port[IT_MAX_GW];
    int nworkers;
    int worker_proc[IT_MAX_WORKERS];
    int nreplicas;        /* it_redis_replica_start: names the logs */
    int nsentinels;       /* it_sentinel_start: names the logs */
    int queue_partitions; /* > 0: --queue-partitions N to gateways and workers */
};

/* One test per process: the fixture's state lives here. */
static struct it_env *IT;

/* ---- time ------------------------------------------------------------------- */

int64_t it_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t it_now_s(void)
{
    return it_now_ms() / 1000;
}

void it_pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int it_ms(int base_ms)
{
    const char *s = getenv("CHATMI_IT_TIMEOUT_SCALE");
    double f = s != NULL ? atof(s) : 1.0;
    if (f < 1.0)
        f = 1.0;
    if (f > 50.0)
        f = 50.0;
    return (int)(base_ms * f);
}

/* ---- files -------------------------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    if (path[0] == '\0' || strcmp(path, "/") == 0)
        return;
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Prints the last `lines` lines of a file, each prefixed. */
static void tail_file(const char *path, const char *prefix, int lines)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return;
    }
    size_t want = 64 * 1024;
    off_t start = st.st_size > (off_t)want ? st.st_size - (off_t)want : 0;
    char *buf = malloc(want + 1);
    if (buf == NULL) {
        close(fd);
        return;
    }
    ssize_t n = pread(fd, buf, want, start);
    close(fd);
    if (n <= 0) {
        free(buf);
        return;
    }
    buf[n] = '\0';
    char *p = buf + n;
    int seen = 0;
    while (p > buf) {
        p--;
        if (*p == '\n' && p != buf + n - 1 && ++seen >= lines) {
            p++;
            break;
        }
    }
    fprintf(stderr, "---- %s (%s, last %d lines) ----\n", prefix, path, lines);
    char *save = NULL;
    for (char *l = strtok_r(p, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save))
        fprintf(stderr, "[%s] %s\n", prefix, l);
    free(buf);
}

static void dump_dir_logs(const char *dir, int lines)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0) {
            char path[PATH_MAX + 256], prefix[64];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            snprintf(prefix, sizeof(prefix), "%.*s", (int)(l - 4), e->d_name);
            tail_file(path, prefix, lines);
        }
    }
    closedir(d);
}

void it_dump_logs(void)
{
    if (IT != NULL)
        dump_dir_logs(IT->dir, 60);
}

const char *it_dir(void)
{
    return IT != NULL ? IT->dir : "";
}

/* ---- the log drainer ------------------------------------------------------------ */

static void handle_line(struct it_proc *p, char *line)
{
    if (p->ready)
        return;
    int ready = 0;
    if (p->kind == READY_REDIS) {
        ready = strstr(line, "Ready to accept connections") != NULL;
    } else if (p->kind == READY_JSON && line[0] == '{') {
        json_t *v = json_loads(line, 0, NULL);
        json_t *ev = json_object_get(v, "event");
        json_t *pid = json_object_get(v, "pid");
        if (json_is_string(ev) && strcmp(json_string_value(ev), "ready") == 0 &&
            (!json_is_integer(pid) || json_integer_value(pid) == p->pid))
            ready = 1;
        json_decref(v);
    }
    if (ready) {
        pthread_mutex_lock(&IT->mu);
        p->ready = 1;
        pthread_cond_broadcast(&IT->cv);
        pthread_mutex_unlock(&IT->mu);
    }
}

/* Reads what is available on p->fd. Returns 0 at EOF. */
static int drain_one(struct it_proc *p)
{
    char buf[16384];
    ssize_t n = read(p->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 1;
    if (n <= 0) {
        if (p->linelen > 0) {
            p->line[p->linelen] = '\0';
            handle_line(p, p->line);
            p->linelen = 0;
        }
        close(p->fd);
        pthread_mutex_lock(&IT->mu);
        p->fd = -1;
        p->eof = 1;
        pthread_cond_broadcast(&IT->cv);
        pthread_mutex_unlock(&IT->mu);
        return 0;
    }
    if (p->logfd >= 0) {
        ssize_t w = write(p->logfd, buf, (size_t)n);
        (void)w;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || p->linelen == IT_LINE_MAX - 1) {
            p->line[p->linelen] = '\0';
            handle_line(p, p->line);
            p->linelen = 0;
            if (buf[i] == '\n')
                continue;
        }
        p->line[p->linelen++] = buf[i];
    }
    return 1;
}

static void *drainer_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd fds[IT_MAX_PROCS + 1];
        struct it_proc *who[IT_MAX_PROCS + 1];
        int n = 0;
        pthread_mutex_lock(&IT->mu);
        int stop = IT->stop;
        fds[n].fd = IT->wake[0];
        fds[n].events = POLLIN;
        who[n++] = NULL;
        for (int i = 0; i < IT->nprocs; i++) {
            if (IT->procs[i].used && IT->procs[i].fd >= 0) {
                fds[n].fd = IT->procs[i].fd;
                fds[n].events = POLLIN;
                who[n++] = &IT->procs[i];
            }
        }
        pthread_mutex_unlock(&IT->mu);
        /* on stop: one last pass over what is readable now, then leave */
        int r = poll(fds, (nfds_t)n, stop ? 0 : 1000);
        if (r < 0 && errno != EINTR)
            break;
        for (int i = 1; r > 0 && i < n; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                drain_one(who[i]);
        if (r > 0 && (fds[0].revents & POLLIN)) {
            char tmp[64];
            ssize_t rr = read(IT->wake[0], tmp, sizeof(tmp));
            (void)rr;
        }
        if (stop)
            break;
    }
    return NULL;
}

static void wake_drainer(void)
{
    ssize_t w = write(IT->wake[1], "x", 1);
    (void)w;
}

/* ---- spawning -------------------------------------------------------------------- */

const char *it_gateway_bin(void)
{
    const char *s = getenv("CHATMI_GATEWAY_BIN");
    return s != NULL && *s ? s : "../../gateway/chatmi-gateway";
}

const char *it_worker_bin(void)
{
    const char *s = getenv("CHATMI_WORKER_BIN");
    return s != NULL && *s ? s : "../../worker/chatmi-worker";
}

static const char *redis_bin(void)
{
    const char *s = getenv("REDIS_SERVER");
    return s != NULL && *s ? s : "redis-server";
}

/* The environment for children: ours without CHATMI_* (options must come
 * only from the flags the test passes), plus extra. Caller frees the array. */
static char **child_env(const char *const *extra)
{
    size_t n = 0, k = 0;
    for (char **e = environ; *e != NULL; e++)
        n++;
    for (const char *const *e = extra; e != NULL && *e != NULL; e++)
        n++;
    char **env = calloc(n + 1, sizeof(char *));
    if (env == NULL)
        return NULL;
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "CHATMI_", 7) != 0)
            env[k++] = *e;
    for (const char *const *e = extra; e != NULL && *e != NULL; e++)
        env[k++] = (char *)*e;
    env[k] = NULL;
    return env;
}

/* fork + exec with stdout and stderr on outfd, stdin on /dev/null, its own
 * process group, SIGKILL when this process dies. Only async-signal-safe
 * calls between fork and exec (the drainer thread exists). */
static pid_t spawn(const char *const *argv, char **envp, int outfd)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(outfd, 1);
        dup2(outfd, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
        execve(argv[0], (char *const *)argv, envp);
        static const char msg[] = "harness: exec failed\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid); /* also here, so the group exists before we could signal it */
    if (devnull >= 0)
        close(devnull);
    return pid;
}

/* Resolves a program name through PATH when it has no slash. */
static const char *resolve(const char *prog, char *buf, size_t buflen)
{
    if (strchr(prog, '/') != NULL)
        return prog;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
        snprintf(buf, buflen, "%.*s/%s", (int)l, p, prog);
        if (access(buf, X_OK) == 0)
            return buf;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return prog;
}

/* Waits for pid to exit, up to timeout_ms. 1 with *status, 0 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        if (status)
            *status = st;
        return 1;
    }
    if (r < 0)
        return errno == ECHILD ? 1 : 0;
    int64_t deadline = it_mono_ms() + timeout_ms;
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
        int64_t left = deadline - it_mono_ms();
        if (left < 0)
            left = 0;
        if (pfd >= 0) {
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            int pr = poll(&p, 1, (int)left);
            (void)pr;
        } else {
            it_pause_ms(left > 10 ? 10 : (int)left); /* no pidfd: pace the waitpid loop */
        }
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            if (pfd >= 0)
                close(pfd);
            if (status)
                *status = st;
            return 1;
        }
        if (left == 0) {
            if (pfd >= 0)
                close(pfd);
            return 0;
        }
    }
}

static void record_pgid(pid_t pid)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/pgids", IT->dir);
    FILE *f = fopen(path, "ae");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
}

/* Starts a program with its output drained into <dir>/<name>.log and
 * env_extra ("NAME=value", NULL terminated, may be NULL) added to its
 * environment. Returns the proc index or -1. */
static int proc_start_env(const char *name, const char *const *argv, enum ready_kind kind,
                          const char *const *env_extra)
{
    cr_assert(IT != NULL, "it_begin() was not called");
    cr_assert(IT->nprocs < IT_MAX_PROCS, "too many processes");
    int idx = IT->nprocs;
    struct it_proc *p = &IT->procs[idx];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->kind = kind;
    char logpath[PATH_MAX + 64];
    snprintf(logpath, sizeof(logpath), "%s/%s.log", IT->dir, name);
    p->logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (p->logfd >= 0) {
        char hdr[4096];
        int n = snprintf(hdr, sizeof(hdr), "# harness: starting");
        for (const char *const *a = argv; *a != NULL && n < (int)sizeof(hdr) - 256; a++)
            n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, " '%s'", *a);
        n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "\n");
        ssize_t w = write(p->logfd, hdr, (size_t)n);
        (void)w;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    char **envp = child_env(env_extra);
    pid_t pid = spawn(argv, envp, pipefd[1]);
    free(envp);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return -1;
    }
    record_pgid(pid);
    pthread_mutex_lock(&IT->mu);
    p->pid = pid;
    p->fd = pipefd[0];
    p->used = 1;
    IT->nprocs++;
    pthread_mutex_unlock(&IT->mu);
    wake_drainer();
    return idx;
}

static int proc_start(const char *name, const char *const *argv, enum ready_kind kind)
{
    return proc_start_env(name, argv, kind, NULL);
}

/* Waits for the ready line. 1 ready, 0 exited first, -1 timeout. */
static int proc_wait_ready(int idx, int timeout_ms)
{
    struct it_proc *p = &IT->procs[idx];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = -1;
    pthread_mutex_lock(&IT->mu);
    for (;;) {
        if (p->ready) {
            rc = 1;
            break;
        }
        if (p->eof) {
            rc = 0;
            break;
        }
        if (pthread_cond_timedwait(&IT->cv, &IT->mu, &ts) == ETIMEDOUT) {
            rc = p->ready ? 1 : p->eof ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&IT->mu);
    return rc;
}

/* Stops one program: sig, a bounded wait, then SIGKILL of its group. */
static int proc_stop(int idx, int sig, int timeout_ms, int *status)
{
    struct it_proc *p = &IT->procs[idx];
    if (p->pid <= 0)
        return 1;
    int st = 0, exited;
    kill(p->pid, sig);
    exited = wait_exit(p->pid, timeout_ms, &st);
    if (!exited) {
        fprintf(stderr, "harness: %s (pid %d) did not exit within %d ms of signal %d; SIGKILL\n", p->name,
                (int)p->pid, timeout_ms, sig);
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
        wait_exit(p->pid, it_ms(5000), &st);
    }
    kill(-p->pid, SIGKILL); /* anything left in its group (a gateway's children) */
    p->pid = 0;
    if (status)
        *status = st;
    return exited;
}

static int proc_log_contains(int idx, const char *needle)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s.log", IT->dir, IT->procs[idx].name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    char line[IT_LINE_MAX];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void proc_fail(int idx, const char *what, int rc)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s.log", IT->dir, IT->procs[idx].name);
    tail_file(path, IT->procs[idx].name, 40);
    cr_assert_fail("%s (%s) %s", what, IT->procs[idx].name,
                   rc == 0 ? "exited before it was ready (log above)" : "was not ready in time (log above)");
}

/* ---- ports ---------------------------------------------------------------------- */

int it_free_port(void)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)it_mono_ms();
    /* below the default ephemeral range (32768-60999), so client sockets never take it */
    for (int attempt = 0; attempt < 200; attempt++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return port;
    }
    cr_assert_fail("no free port found");
    return -1;
}

/* ---- fixtures -------------------------------------------------------------------- */

void it_begin(void)
{
    cr_assert(IT == NULL, "it_begin() twice");
    IT = calloc(1, sizeof(*IT));
    cr_assert(IT != NULL);
    IT->redis_proc = -1;
    const char *qp = getenv("CHATMI_IT_QUEUE_PARTITIONS");
    IT->queue_partitions = qp != NULL && *qp != '\0' ? atoi(qp) : 0;
    it_priv_cluster_reset();
    signal(SIGPIPE, SIG_IGN);
    const char *root = getenv("CHATMI_IT_ROOT");
    struct stat st;
    if (root != NULL && stat(root, &st) == 0 && S_ISDIR(st.st_mode) && criterion_current_test != NULL) {
        snprintf(IT->dir, sizeof(IT->dir), "%s/%s.%s", root, criterion_current_suite->name,
                 criterion_current_test->name);
        rm_rf(IT->dir);
        cr_assert(mkdir(IT->dir, 0700) == 0, "mkdir %s: %s", IT->dir, strerror(errno));
    } else {
        snprintf(IT->dir, sizeof(IT->dir), "/tmp/chatmi-it.XXXXXX");
        cr_assert(mkdtemp(IT->dir) != NULL, "mkdtemp: %s", strerror(errno));
        IT->own_dir = 1;
    }
    pthread_mutex_init(&IT->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&IT->cv, &ca);
    pthread_condattr_destroy(&ca);
    cr_assert(pipe2(IT->wake, O_CLOEXEC | O_NONBLOCK) == 0);
    cr_assert(pthread_create(&IT->drainer, NULL, drainer_main, NULL) == 0);
    IT->drainer_running = 1;
}

void it_end(void)
{
    if (IT == NULL)
        return;
    /* gateways first (clients go), then workers, then Redis */
    for (int i = 0; i < IT->ngw; i++)
        proc_stop(IT->gw_proc[i], SIGTERM, it_ms(IT_STOP_GRACE_MS), NULL);
    for (int i = 0; i < IT->nworkers; i++)
        proc_stop(IT->worker_proc[i], SIGTERM, it_ms(IT_STOP_GRACE_MS), NULL);
    if (IT->redis_proc >= 0)
        proc_stop(IT->redis_proc, SIGTERM, it_ms(IT_STOP_GRACE_MS), NULL);
    it_priv_cluster_stop();
    for (int i = 0; i < IT->nprocs; i++)
        if (IT->procs[i].pid > 0)
            proc_stop(i, SIGKILL, it_ms(IT_STOP_GRACE_MS), NULL);
    if (IT->drainer_running) {
        pthread_mutex_lock(&IT->mu);
        IT->stop = 1;
        pthread_mutex_unlock(&IT->mu);
        wake_drainer();
        pthread_join(IT->drainer, NULL);
    }
    /* A sanitizer report from a program under test (a leak at exit, a
     * heap error in a child that was then respawned) fails the test even
     * though every client-side check passed. Redis is not ours: skip it. */
    int sanitizer_reports = 0;
    char dir_copy[PATH_MAX];
    snprintf(dir_copy, sizeof(dir_copy), "%s", IT->own_dir ? "" : IT->dir);
    for (int i = 0; i < IT->nprocs; i++) {
        if (!IT->procs[i].used || i == IT->redis_proc || it_priv_cluster_owns(i))
            continue;
        static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                              "runtime error:"};
        for (size_t m = 0; m < sizeof(markers) / sizeof(markers[0]); m++) {
            if (proc_log_contains(i, markers[m])) {
                fprintf(stderr, "harness: %s reported \"%s\"; its log:\n", IT->procs[i].name, markers[m]);
                char path[PATH_MAX + 64];
                snprintf(path, sizeof(path), "%s/%s.log", IT->dir, IT->procs[i].name);
                tail_file(path, IT->procs[i].name, 200);
                sanitizer_reports++;
                break;
            }
        }
    }
    if (it_valgrind())
        sanitizer_reports += it_valgrind_check(NULL, NULL);
    for (int i = 0; i < IT->nprocs; i++) {
        if (IT->procs[i].fd >= 0 && IT->procs[i].used)
            close(IT->procs[i].fd);
        if (IT->procs[i].logfd >= 0)
            close(IT->procs[i].logfd);
    }
    close(IT->wake[0]);
    close(IT->wake[1]);
    /* Redis data is never needed after the test; logs are (the runner prints and removes them) */
    char rd[PATH_MAX + 16];
    snprintf(rd, sizeof(rd), "%s/redis-data", IT->dir);
    rm_rf(rd);
    if (IT->own_dir && getenv("CHATMI_IT_KEEP") == NULL)
        rm_rf(IT->dir);
    free(IT);
    IT = NULL;
    if (sanitizer_reports > 0) {
        /* Criterion ignores a failed assertion in .fini, so the verdict goes
         * to the runner through a marker file (finish_test reads it). */
        fprintf(stderr, "harness: %d program(s) under test reported sanitizer errors\n", sanitizer_reports);
        char marker[PATH_MAX + 32];
        snprintf(marker, sizeof(marker), "%s/" IT_SANITIZER_MARKER, dir_copy);
        int fd = dir_copy[0] != '\0' ? open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
        if (fd < 0)
            _exit(70); /* no runner directory to report through: fail loudly */
        close(fd);
    }
}

void it_redis_init(void)
{
    it_begin();
    it_redis_start();
}

void it_stack_init(void)
{
    it_redis_init();
    it_gateway_start(NULL);
    it_worker_start(NULL);
}

/* ---- Redis ------------------------------------------------------------------------ */

/* Starts redis-server on port (0: a free one, retried when taken) over the
 * test's data directory. Returns the port. */
static int redis_spawn(int fixed_port)
{
    char data[PATH_MAX + 16];
    snprintf(data, sizeof(data), "%s/redis-data", IT->dir);
    mkdir(data, 0700);
    char rbuf[PATH_MAX];
    const char *bin = resolve(redis_bin(), rbuf, sizeof(rbuf));
    for (int attempt = 0; attempt < IT_START_ATTEMPTS; attempt++) {
        int port = fixed_port > 0 ? fixed_port : it_free_port();
        char ports[16];
        snprintf(ports, sizeof(ports), "%d", port);
        const char *aof = IT->redis_aof ? "yes" : "no";
        const char *argv[] = {bin,      "--port",     ports, "--bind",      "127.0.0.1", "--save", "",
                              "--appendonly", aof, "--appendfsync", "always", "--dir", data,
                              "--daemonize", "no", "--logfile", "", "--protected-mode", "no", NULL};
        char name[32];
        snprintf(name, sizeof(name), IT->redis_starts == 0 ? "redis" : "redis-%d", IT->redis_starts);
        IT->redis_starts++;
        int idx = proc_start(name, argv, READY_REDIS);
        cr_assert(idx >= 0, "cannot start %s", bin);
        int rc = proc_wait_ready(idx, it_ms(10000));
        if (rc == 1) {
            IT->redis_proc = idx;
            IT->redis_port = port;
            return port;
        }
        proc_stop(idx, SIGKILL, it_ms(2000), NULL);
        if (rc == 0 && proc_log_contains(idx, "in use"))
            continue;
        proc_fail(idx, "redis-server", rc);
    }
    cr_assert_fail("redis-server: no free port after %d attempts", IT_START_ATTEMPTS);
    return -1;
}

int it_redis_start(void)
{
    cr_assert(IT->redis_proc < 0 && !it_cluster_active(), "Redis already started");
    if (it_cluster_mode()) {
        IT->redis_port = it_cluster_start(3, 1);
        return IT->redis_port;
    }
    return redis_spawn(0);
}

/* The single-Redis helpers below cannot stand for anything in a cluster:
 * a test that uses them skips itself first (it_skip_in_cluster). */
static void single_redis_only(const char *what)
{
    cr_assert(!it_cluster_active(), "%s needs the single Redis; this test runs a cluster (it_skip_in_cluster)",
              what);
}

void it_redis_use_aof(void)
{
    single_redis_only("it_redis_use_aof");
    cr_assert(IT->redis_proc < 0, "it_redis_use_aof must come before it_redis_start");
    IT->redis_aof = 1;
}

int it_redis_restart(void)
{
    single_redis_only("it_redis_restart");
    cr_assert(IT->redis_port > 0, "Redis was never started");
    if (IT->procs[IT->redis_proc].pid > 0)
        proc_stop(IT->redis_proc, SIGKILL, it_ms(3000), NULL);
    return redis_spawn(IT->redis_port);
}

int it_redis_port(void)
{
    if (IT != NULL && it_cluster_active())
        return it_cluster_master_port();
    return IT != NULL ? IT->redis_port : -1;
}

void it_redis_kill(void)
{
    single_redis_only("it_redis_kill");
    cr_assert(IT->redis_proc >= 0);
    proc_stop(IT->redis_proc, SIGKILL, it_ms(3000), NULL);
}

const char *it_redis_url(char *buf, size_t buflen)
{
    if (it_cluster_active())
        return it_cluster_url(buf, buflen);
    snprintf(buf, buflen, "redis://127.0.0.1:%d/0", IT->redis_port);
    return buf;
}

void it_set_queue_partitions(int n)
{
    cr_assert(IT != NULL && n >= 0);
    IT->queue_partitions = n;
}

int it_queue_partitions(void)
{
    return IT != NULL ? IT->queue_partitions : 0;
}

/* ---- gateway and worker ------------------------------------------------------------- */

#define ARGS_MAX 96

struct argv_b {
    const char *v[ARGS_MAX];
    int n;
};

static void arg(struct argv_b *a, const char *s)
{
    cr_assert(a->n < ARGS_MAX - 1, "too many arguments");
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void opt(struct argv_b *a, const char *flag, const char *value, const char *def)
{
    const char *v = value != NULL ? value : def;
    if (v == NULL || strcmp(v, IT_OMIT) == 0)
        return;
    arg(a, flag);
    arg(a, v);
}

size_t it_queue_key(char *out, const char *name)
{
    long n = it_queue_partitions() > 0 ? it_queue_partitions() : 1;
    char tag[CM_QUEUE_TAG_MAX];
    cm_queue_tag(tag, 0, n >= 1 && n <= CM_QUEUE_PARTITIONS_MAX ? (unsigned)n : 1);
    return cm_key_queue_in(out, tag, name);
}

/* Under CHATMI_IT_VALGRIND=1: the valgrind command line that runs the
 * program, one log file per process (%p: the gateway's children get their
 * own) named valgrind-<name>.<pid>.log in the test directory. The strings
 * live in static storage until the next call (the argv is used at once). */
static void valgrind_prefix(struct argv_b *a, const char *name)
{
    static char bin[PATH_MAX], logopt[PATH_MAX + 96];
    if (!it_valgrind())
        return;
    const char *v = getenv("VALGRIND");
    snprintf(bin, sizeof(bin), "%s", resolve(v != NULL && *v ? v : "valgrind", logopt, sizeof(logopt)));
    snprintf(logopt, sizeof(logopt), "--log-file=%s/valgrind-%s.%%p.log", IT->dir, name);
    arg(a, bin);
    arg(a, "--leak-check=full");
    arg(a, "--show-leak-kinds=definite,indirect");
    arg(a, "--errors-for-leak-kinds=definite,indirect");
    arg(a, "--error-exitcode=99");
    arg(a, "--trace-children=yes");
    arg(a, "--num-callers=30");
    arg(a, logopt);
}

/* The port a gateway listens on, from its "listening on 127.0.0.1:<port>"
 * line; -1 when absent. */
static int log_listen_port(int idx)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s.log", IT->dir, IT->procs[idx].name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    char line[IT_LINE_MAX];
    int port = -1;
    while (port < 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *p = strstr(line, "listening on 127.0.0.1:");
        if (p != NULL)
            port = atoi(p + strlen("listening on 127.0.0.1:"));
    }
    fclose(f);
    return port > 0 ? port : -1;
}

int it_gateway_start(const struct it_gw_conf *c)
{
    static const struct it_gw_conf defaults;
    if (c == NULL)
        c = &defaults;
    cr_assert(IT->ngw < IT_MAX_GW, "too many gateways");
    int gi = IT->ngw;
    char redis_url[512], procs[16], listen[64], name[32], partitions[16];
    it_redis_url(redis_url, sizeof(redis_url));
    snprintf(partitions, sizeof(partitions), "%d", IT->queue_partitions);
    snprintf(procs, sizeof(procs), "%d", c->processes > 0 ? c->processes : 2);
    const char *www = getenv("CHATMI_WWW_DIR");
    for (int attempt = 0; attempt < IT_START_ATTEMPTS; attempt++) {
        /* Port 0: the kernel picks a port no other socket holds. A port
         * chosen here could be taken by a concurrent test's gateway, and
         * SO_REUSEPORT would then let both bind it and split the clients. */
        snprintf(listen, sizeof(listen), "127.0.0.1:0");
        struct argv_b a = {.n = 0};
        snprintf(name, sizeof(name), "gateway%d", gi);
        valgrind_prefix(&a, name);
        arg(&a, it_gateway_bin());
        opt(&a, "--listen", listen, NULL);
        opt(&a, "--processes", procs, NULL);
        opt(&a, "--redis-url", c->redis_url, redis_url);
        if (IT->queue_partitions > 0)
            opt(&a, "--queue-partitions", partitions, NULL);
        opt(&a, "--auth", c->auth, "none");
        opt(&a, "--jwt-secret", c->jwt_secret, NULL);
        opt(&a, "--jwt-secret-file", c->jwt_secret_file, NULL);
        opt(&a, "--log-format", "json", NULL);
        opt(&a, "--log-level", "info", NULL);
        opt(&a, "--heartbeat", c->heartbeat, NULL);
        opt(&a, "--rate-limit", c->rate_limit, "0");
        /* the per-user bucket follows: off unless the test wants the defaults
         * (a test of --rate-limit sees only the session's bucket) */
        opt(&a, "--user-rate-limit", c->rate_limit != NULL && strcmp(c->rate_limit, IT_OMIT) == 0 ? IT_OMIT : "0",
            NULL);
        opt(&a, "--max-message-bytes", c->max_message_bytes, NULL);
        opt(&a, "--max-queued-bytes", c->max_queued_bytes, NULL);
        opt(&a, "--allowed-origins", c->allowed_origins, NULL);
        opt(&a, "--handshake-timeout", c->handshake_timeout, NULL);
        opt(&a, "--drain-seconds", c->drain_seconds, "0");
        opt(&a, "--www-dir", www != NULL && *www ? www : NULL, NULL);
        for (const char *const *e = c->extra; e != NULL && *e != NULL; e++)
            arg(&a, *e);
        snprintf(name, sizeof(name), attempt == 0 ? "gateway%d" : "gateway%d-%d", gi, attempt);
        int idx = proc_start(name, a.v, READY_JSON);
        cr_assert(idx >= 0, "cannot start %s", it_gateway_bin());
        int rc = proc_wait_ready(idx, it_ms(10000));
        if (rc == 1) {
            int port = log_listen_port(idx);
            cr_assert_gt(port, 0, "chatmi-gateway did not log its port");
            IT->gw_proc[gi] = idx;
            IT->gw_port[gi] = port;
            IT->ngw++;
            return gi;
        }
        proc_stop(idx, SIGKILL, it_ms(2000), NULL);
        if (rc == 0 && proc_log_contains(idx, "in use"))
            continue;
        proc_fail(idx, "chatmi-gateway", rc);
    }
    cr_assert_fail("chatmi-gateway: no free port after %d attempts", IT_START_ATTEMPTS);
    return -1;
}

int it_gw_port(int idx)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->ngw, "no gateway %d", idx);
    return IT->gw_port[idx];
}

int it_port(void)
{
    return it_gw_port(0);
}

pid_t it_gw_pid(int idx)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->ngw, "no gateway %d", idx);
    return IT->procs[IT->gw_proc[idx]].pid;
}

int it_gw_log_wait(int idx, const char *needle, int timeout_ms)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->ngw, "no gateway %d", idx);
    int64_t deadline = it_mono_ms() + timeout_ms;
    /* The drainer thread appends to the log as lines arrive: poll it, paced. */
    for (int i = 0; i < 100000; i++) {
        if (proc_log_contains(IT->gw_proc[idx], needle))
            return 1;
        if (it_mono_ms() >= deadline)
            return 0;
        it_pause_ms(20);
    }
    return 0;
}

int it_gateway_signal_wait(int idx, int sig, int timeout_ms, int *status)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->ngw, "no gateway %d", idx);
    struct it_proc *p = &IT->procs[IT->gw_proc[idx]];
    if (p->pid <= 0)
        return 1;
    kill(p->pid, sig);
    int st = 0;
    if (!wait_exit(p->pid, timeout_ms, &st))
        return 0;
    kill(-p->pid, SIGKILL);
    p->pid = 0;
    if (status)
        *status = st;
    return 1;
}

int it_worker_start(const struct it_worker_conf *c)
{
    static const struct it_worker_conf defaults;
    if (c == NULL)
        c = &defaults;
    cr_assert(IT->nworkers < IT_MAX_WORKERS, "too many workers");
    int wi = IT->nworkers;
    char redis_url[512], name[32], wid[64], partitions[16];
    it_redis_url(redis_url, sizeof(redis_url));
    snprintf(partitions, sizeof(partitions), "%d", IT->queue_partitions);
    snprintf(wid, sizeof(wid), "it-worker-%d-%d", (int)getpid(), wi);
    struct argv_b a = {.n = 0};
    snprintf(name, sizeof(name), "worker%d", wi);
    valgrind_prefix(&a, name);
    arg(&a, it_worker_bin());
    opt(&a, "--redis-url", c->redis_url, redis_url);
    if (IT->queue_partitions > 0)
        opt(&a, "--queue-partitions", partitions, NULL);
    opt(&a, "--stage", c->stage, NULL);
    opt(&a, "--max-text-bytes", c->max_text_bytes, NULL);
    opt(&a, "--worker-id", wid, NULL);
    opt(&a, "--log-format", "json", NULL);
    opt(&a, "--log-level", "info", NULL);
    for (const char *const *e = c->extra; e != NULL && *e != NULL; e++)
        arg(&a, *e);
    snprintf(name, sizeof(name), "worker%d", wi);
    int idx = proc_start(name, a.v, READY_JSON);
    cr_assert(idx >= 0, "cannot start %s", it_worker_bin());
    int rc = proc_wait_ready(idx, it_ms(10000));
    if (rc != 1)
        proc_fail(idx, "chatmi-worker", rc);
    IT->worker_proc[wi] = idx;
    IT->nworkers++;
    return wi;
}

pid_t it_worker_pid(int idx)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->nworkers, "no worker %d", idx);
    return IT->procs[IT->worker_proc[idx]].pid;
}

int it_worker_signal_wait(int idx, int sig, int timeout_ms, int *status)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->nworkers, "no worker %d", idx);
    struct it_proc *p = &IT->procs[IT->worker_proc[idx]];
    if (p->pid <= 0)
        return 1;
    kill(p->pid, sig);
    int st = 0;
    if (!wait_exit(p->pid, timeout_ms, &st))
        return 0;
    p->pid = 0;
    if (status)
        *status = st;
    return 1;
}

/* ---- other programs ------------------------------------------------------------------ */

const char *it_which(const char *prog, char *buf, size_t buflen)
{
    const char *p = resolve(prog, buf, buflen);
    return access(p, X_OK) == 0 ? p : NULL;
}

int it_aux_start(const char *name, const char *const *argv, const char *const *env_extra)
{
    cr_assert(IT != NULL, "it_begin() was not called");
    int idx = proc_start_env(name, argv, READY_NONE, env_extra);
    cr_assert(idx >= 0, "cannot start %s", argv[0]);
    return idx;
}

pid_t it_aux_pid(int idx)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->nprocs, "no process %d", idx);
    return IT->procs[idx].pid;
}

const char *it_worker_id(int idx)
{
    static char id[64];
    cr_assert(IT != NULL && idx >= 0 && idx < IT->nworkers, "no worker %d", idx);
    snprintf(id, sizeof(id), "it-worker-%d-%d", (int)getpid(), idx); /* as it_worker_start names it */
    return id;
}

int it_gw_children(int idx, pid_t *out, int max)
{
    cr_assert(IT != NULL && idx >= 0 && idx < IT->ngw, "no gateway %d", idx);
    pid_t master = IT->procs[IT->gw_proc[idx]].pid;
    if (master <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)master, (int)master);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    int n = 0, p;
    while (n < max && fscanf(f, "%d", &p) == 1)
        out[n++] = p;
    fclose(f);
    return n;
}

/* The inode of the socket in /proc/<pid>/net/tcp whose local port is
 * local and remote port is remote; 0 when none. */
static unsigned long tcp_inode(pid_t pid, int local, int remote)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/net/tcp", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    unsigned long found = 0;
    while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
        unsigned la, lp, ra, rp, st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %8X:%4X %8X:%4X %2X %*s %*s %*s %*s %*s %lu", &la, &lp, &ra, &rp, &st, &inode) ==
                6 &&
            (int)lp == local && (int)rp == remote)
            found = inode;
    }
    fclose(f);
    return found;
}

int it_pid_accepted(pid_t pid, int client_fd)
{
    struct sockaddr_in me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer);
    if (getsockname(client_fd, (struct sockaddr *)&me, &ml) < 0 ||
        getpeername(client_fd, (struct sockaddr *)&peer, &pl) < 0)
        return 0;
    unsigned long inode = tcp_inode(pid, ntohs(peer.sin_port), ntohs(me.sin_port));
    if (inode == 0)
        return 0;
    char want[64], dir[64];
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int held = 0;
    struct dirent *e;
    while (!held && (e = readdir(d)) != NULL) {
        char link[PATH_MAX], target[128];
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            held = strcmp(target, want) == 0;
        }
    }
    closedir(d);
    return held;
}

/* ---- valgrind ------------------------------------------------------------------------ */

int it_valgrind(void)
{
    const char *s = getenv("CHATMI_IT_VALGRIND");
    return s != NULL && *s != '\0' && strcmp(s, "0") != 0;
}

int it_valgrind_check(int *nfiles, int *nmissing)
{
    int files = 0, missing = 0, bad = 0;
    DIR *d = IT != NULL ? opendir(IT->dir) : NULL;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "valgrind-", 9) != 0 || l < 4 || strcmp(e->d_name + l - 4, ".log") != 0)
            continue;
        files++;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", IT->dir, e->d_name);
        FILE *f = fopen(path, "re");
        int summary = -1;
        char line[IT_LINE_MAX];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            const char *p = strstr(line, "ERROR SUMMARY: ");
            if (p != NULL)
                summary = atoi(p + 15);
        }
        if (f != NULL)
            fclose(f);
        if (summary < 0) {
            fprintf(stderr, "harness: %s has no ERROR SUMMARY (the process was killed before it could exit)\n",
                    e->d_name);
            missing++;
        } else if (summary > 0) {
            fprintf(stderr, "harness: %s reports %d valgrind error(s):\n", e->d_name, summary);
            tail_file(path, e->d_name, 200);
            bad++;
        }
    }
    if (d != NULL)
        closedir(d);
    if (nfiles != NULL)
        *nfiles = files;
    if (nmissing != NULL)
        *nmissing = missing;
    return bad;
}

/* ---- one-shot runs ------------------------------------------------------------------ */

int it_run(const char *const *argv, const char *const *env_extra, int timeout_ms, char *out, size_t outlen,
           int *status)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    char **envp = child_env(env_extra);
    pid_t pid = spawn(argv, envp, pipefd[1]);
    free(envp);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return -1;
    }
    size_t len = 0;
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - it_mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char tmp[4096];
        ssize_t n = read(pipefd[0], tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (outlen > 0 && len < outlen - 1) {
            size_t c = (size_t)n < outlen - 1 - len ? (size_t)n : outlen - 1 - len;
            memcpy(out + len, tmp, c);
            len += c;
        }
    }
    if (outlen > 0)
        out[len] = '\0';
    close(pipefd[0]);
    int64_t left = deadline - it_mono_ms();
    int st = 0;
    if (!wait_exit(pid, left > 0 ? (int)left : 1, &st)) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        wait_exit(pid, it_ms(5000), NULL);
        return -1;
    }
    kill(-pid, SIGKILL);
    if (status)
        *status = st;
    return 0;
}

/* ---- JWT ---------------------------------------------------------------------------- */

static size_t b64url(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    if (outlen < 4 * ((len + 2) / 3) + 1)
        return 0;
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[n] = '\0';
    return (size_t)n;
}

char *it_jwt_make(char *out, size_t outlen, const char *key, const char *header_json, const char *payload_json)
{
    char h[1024], p[4096];
    b64url((const unsigned char *)header_json, strlen(header_json), h, sizeof(h));
    b64url((const unsigned char *)payload_json, strlen(payload_json), p, sizeof(p));
    char signing[6000];
    snprintf(signing, sizeof(signing), "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)signing, strlen(signing), mac, &maclen);
    char sig[128];
    b64url(mac, maclen, sig, sizeof(sig));
    snprintf(out, outlen, "%s.%s", signing, sig);
    return out;
}

char *it_jwt(char *out, size_t outlen, const char *key, const char *sub, int64_t exp, int64_t nbf)
{
    char payload[512];
    if (nbf > 0)
        snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%lld,\"nbf\":%lld}", sub, (long long)exp,
                 (long long)nbf);
    else
        snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%lld}", sub, (long long)exp);
    return it_jwt_make(out, outlen, key, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
}

/* ---- Criterion runner hooks ---------------------------------------------------------
 * These run in the runner process, not in the forked test: they own the
 * per-run root directory, print the logs of failed tests, and clean up. */

static char g_root[PATH_MAX];

static void test_dir(const struct criterion_test *t, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s.%s", g_root, t->category, t->name);
}

/* Kills whatever a crashed test left behind (the process groups it recorded). */
static void kill_recorded(const char *dir)
{
    char path[PATH_MAX + 512];
    snprintf(path, sizeof(path), "%s/pgids", dir);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    int pid;
    while (fscanf(f, "%d", &pid) == 1)
        if (pid > 1)
            kill(-pid, SIGKILL);
    fclose(f);
}

static int g_sanitizer_failures;

static void finish_test(struct criterion_test_stats *st, int crashed)
{
    if (g_root[0] == '\0' || st == NULL || st->test == NULL)
        return;
    char dir[PATH_MAX + 256];
    test_dir(st->test, dir, sizeof(dir));
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return;
    if (crashed || st->timed_out)
        kill_recorded(dir);
    char marker[PATH_MAX + 512];
    snprintf(marker, sizeof(marker), "%s/" IT_SANITIZER_MARKER, dir);
    int sanitizer = access(marker, F_OK) == 0;
    if (sanitizer) {
        fprintf(stderr, "harness: FAIL %s::%s: a program under test reported sanitizer errors\n",
                st->test->category, st->test->name);
        g_sanitizer_failures++;
    }
    if (crashed || sanitizer || st->timed_out || st->test_status == CR_STATUS_FAILED) {
        fprintf(stderr, "==== logs of %s::%s%s ====\n", st->test->category, st->test->name,
                crashed ? " (crashed)" : st->timed_out ? " (timed out)" : "");
        dump_dir_logs(dir, 80);
    }
    if (getenv("CHATMI_IT_KEEP") == NULL)
        rm_rf(dir);
}

/* Criterion's verdict ignores what finish_test found: turn the runner's exit
 * status into a failure after its summary is printed. */
static void exit_on_sanitizer_failures(void)
{
    if (g_sanitizer_failures > 0) {
        fprintf(stderr, "harness: %d test(s) failed on sanitizer reports of the programs under test\n",
                g_sanitizer_failures);
        _exit(1);
    }
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    atexit(exit_on_sanitizer_failures);
    snprintf(g_root, sizeof(g_root), "/tmp/chatmi-it.XXXXXX");
    if (mkdtemp(g_root) == NULL) {
        g_root[0] = '\0';
        return;
    }
    setenv("CHATMI_IT_ROOT", g_root, 1);
}

ReportHook(POST_FINI)(struct criterion_test_stats *st)
{
    finish_test(st, 0);
}

ReportHook(TEST_CRASH)(struct criterion_test_stats *st)
{
    finish_test(st, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *gs)
{
    (void)gs;
    if (g_root[0] != '\0' && getenv("CHATMI_IT_KEEP") == NULL)
        rm_rf(g_root);
}

/* ---- Redis replication and Sentinel ----------------------------------------------
 * Replicas and sentinels of the test's Redis (the master), each on a free
 * loopback port with its own directory under redis-data; it_end kills them
 * with everything else. */

/* Occurrences of needle in a file (one per line at most). */
static int file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    char line[IT_LINE_MAX];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

int it_log_count(const char *logname, const char *needle)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s.log", IT->dir, logname);
    return file_count(path, needle);
}

int it_log_wait_count(const char *logname, const char *needle, int count, int timeout_ms)
{
    int64_t deadline = it_mono_ms() + timeout_ms;
    /* the drainer appends to the log as lines arrive: poll it, paced */
    for (;;) {
        if (it_log_count(logname, needle) >= count)
            return 1;
        if (it_mono_ms() >= deadline)
            return 0;
        it_pause_ms(20);
    }
}

/* Waits for needle in proc idx's log: 1 seen, 0 the program exited first,
 * -1 timeout. */
static int proc_wait_log(int idx, const char *needle, int timeout_ms)
{
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        if (it_log_count(IT->procs[idx].name, needle) > 0)
            return 1;
        pthread_mutex_lock(&IT->mu);
        int eof = IT->procs[idx].eof;
        pthread_mutex_unlock(&IT->mu);
        if (eof)
            return it_log_count(IT->procs[idx].name, needle) > 0 ? 1 : 0;
        if (it_mono_ms() >= deadline)
            return -1;
        it_pause_ms(20);
    }
}

/* redis-cli next to the redis-server under test (or on PATH). */
static const char *redis_cli_bin(char *buf, size_t buflen)
{
    char rbuf[PATH_MAX];
    const char *srv = resolve(redis_bin(), rbuf, sizeof(rbuf));
    const char *slash = strrchr(srv, '/');
    if (slash != NULL) {
        snprintf(buf, buflen, "%.*s/redis-cli", (int)(slash - srv), srv);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return resolve("redis-cli", buf, buflen);
}

int it_redis_cli(int port, const char *const *args, char *out, size_t outlen)
{
    char bin[PATH_MAX], ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    const char *argv[40] = {redis_cli_bin(bin, sizeof(bin)), "-h", "127.0.0.1", "-p", ports};
    int n = 5;
    if (it_cluster_active())
        argv[n++] = "-c"; /* key commands follow MOVED and ASK to the slot's owner */
    for (const char *const *a = args; *a != NULL && n < 39; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    int st = 0;
    if (it_run(argv, NULL, it_ms(5000), out, outlen, &st) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int it_redis_replica_start(void)
{
    single_redis_only("it_redis_replica_start");
    cr_assert(IT->redis_proc >= 0 && IT->redis_port > 0, "start the master (it_redis_start) first");
    char out[512];
    /* Redis 7 waits 5 s before a diskless full sync by default: none here. */
    const char *cfg[] = {"CONFIG", "SET", "repl-diskless-sync-delay", "0", NULL};
    cr_assert_eq(it_redis_cli(IT->redis_port, cfg, out, sizeof(out)), 0, "CONFIG SET on the master: %s", out);
    char rbuf[PATH_MAX], master[16];
    const char *bin = resolve(redis_bin(), rbuf, sizeof(rbuf));
    snprintf(master, sizeof(master), "%d", IT->redis_port);
    for (int attempt = 0; attempt < IT_START_ATTEMPTS; attempt++) {
        int port = it_free_port();
        char ports[16], data[PATH_MAX + 64], name[32];
        snprintf(ports, sizeof(ports), "%d", port);
        snprintf(data, sizeof(data), "%s/redis-data", IT->dir);
        mkdir(data, 0700);
        snprintf(data, sizeof(data), "%s/redis-data/replica-%d", IT->dir, port);
        mkdir(data, 0700);
        const char *argv[] = {bin,       "--port",      ports,     "--bind",       "127.0.0.1", "--save", "",
                              "--appendonly", "no",     "--dir",   data,           "--daemonize", "no",
                              "--logfile", "",          "--protected-mode", "no",  "--replicaof", "127.0.0.1",
                              master,      NULL};
        snprintf(name, sizeof(name), "replica%d", IT->nreplicas);
        int idx = proc_start(name, argv, READY_REDIS);
        cr_assert(idx >= 0, "cannot start %s", bin);
        int rc = proc_wait_ready(idx, it_ms(10000));
        if (rc == 1)
            rc = proc_wait_log(idx, "MASTER <-> REPLICA sync: Finished with success", it_ms(15000));
        if (rc == 1) {
            IT->nreplicas++;
            return port;
        }
        proc_stop(idx, SIGKILL, it_ms(2000), NULL);
        if (rc == 0 && proc_log_contains(idx, "in use")) {
            IT->nreplicas++; /* the log name is taken */
            continue;
        }
        proc_fail(idx, "redis replica", rc);
    }
    cr_assert_fail("redis replica: no free port after %d attempts", IT_START_ATTEMPTS);
    return -1;
}

int it_sentinel_start(const char *master_name, int quorum, int down_after_ms, int failover_timeout_ms)
{
    single_redis_only("it_sentinel_start");
    cr_assert(IT->redis_port > 0, "start the master (it_redis_start) first");
    char rbuf[PATH_MAX], sbuf[PATH_MAX];
    const char *server = resolve(redis_bin(), rbuf, sizeof(rbuf));
    const char *sentinel = resolve("redis-sentinel", sbuf, sizeof(sbuf));
    int own_binary = strchr(sentinel, '/') != NULL && access(sentinel, X_OK) == 0;
    for (int attempt = 0; attempt < IT_START_ATTEMPTS; attempt++) {
        int port = it_free_port();
        char dir[PATH_MAX + 64], conf[PATH_MAX + 96], name[32];
        snprintf(dir, sizeof(dir), "%s/redis-data", IT->dir);
        mkdir(dir, 0700);
        snprintf(dir, sizeof(dir), "%s/redis-data/sentinel-%d", IT->dir, port);
        mkdir(dir, 0700);
        /* a file of its own: a sentinel rewrites its configuration */
        snprintf(conf, sizeof(conf), "%s/sentinel.conf", dir);
        FILE *f = fopen(conf, "we");
        cr_assert(f != NULL, "cannot write %s: %s", conf, strerror(errno));
        fprintf(f,
                "port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"\"\ndir %s\n"
                "sentinel monitor %s 127.0.0.1 %d %d\n"
                "sentinel down-after-milliseconds %s %d\n"
                "sentinel failover-timeout %s %d\n"
                "sentinel parallel-syncs %s 1\n",
                port, dir, master_name, IT->redis_port, quorum, master_name, down_after_ms, master_name,
                failover_timeout_ms, master_name);
        fclose(f);
        const char *argv[] = {own_binary ? sentinel : server, conf, "--sentinel", NULL};
        snprintf(name, sizeof(name), "sentinel%d", IT->nsentinels++);
        int idx = proc_start(name, argv, READY_NONE);
        cr_assert(idx >= 0, "cannot start %s", argv[0]);
        int rc = proc_wait_log(idx, "+monitor master", it_ms(10000));
        if (rc == 1)
            return port;
        proc_stop(idx, SIGKILL, it_ms(2000), NULL);
        if (rc == 0 && proc_log_contains(idx, "in use"))
            continue;
        proc_fail(idx, "redis sentinel", rc);
    }
    cr_assert_fail("redis sentinel: no free port after %d attempts", IT_START_ATTEMPTS);
    return -1;
}

int it_spawn(const char *name, const char *const *argv)
{
    int idx = proc_start(name, argv, READY_NONE);
    cr_assert(idx >= 0, "cannot start %s", argv[0]);
    return idx;
}

int it_spawn_stop(int id, int sig, int timeout_ms, int *status)
{
    cr_assert(IT != NULL && id >= 0 && id < IT->nprocs, "no process %d", id);
    struct it_proc *p = &IT->procs[id];
    if (p->pid <= 0)
        return 1;
    kill(p->pid, sig);
    int st = 0;
    if (!wait_exit(p->pid, timeout_ms, &st))
        return 0;
    kill(-p->pid, SIGKILL); /* anything left in its group (a gateway's children) */
    p->pid = 0;
    if (status)
        *status = st;
    return 1;
}

/* ---- for cluster.c (harness_priv.h) ------------------------------------------------ */

int it_priv_redis_proc_start(const char *name, const char *const *argv)
{
    return proc_start(name, argv, READY_REDIS);
}

int it_priv_proc_wait_ready(int idx, int timeout_ms)
{
    return proc_wait_ready(idx, timeout_ms);
}

int it_priv_proc_stop(int idx, int sig, int timeout_ms)
{
    return proc_stop(idx, sig, timeout_ms, NULL);
}

void it_priv_proc_stop_many(const int *idx, int n, int sig, int timeout_ms)
{
    for (int i = 0; i < n; i++)
        if (IT->procs[idx[i]].pid > 0)
            kill(IT->procs[idx[i]].pid, sig);
    for (int i = 0; i < n; i++)
        proc_stop(idx[i], sig, timeout_ms, NULL);
}

int it_priv_proc_log_contains(int idx, const char *needle)
{
    return proc_log_contains(idx, needle);
}

void it_priv_proc_fail(int idx, const char *what, int rc)
{
    proc_fail(idx, what, rc);
}

pid_t it_priv_proc_pid(int idx)
{
    return IT != NULL && idx >= 0 && idx < IT->nprocs ? IT->procs[idx].pid : 0;
}

const char *it_priv_redis_server(char *buf, size_t buflen)
{
    return resolve(redis_bin(), buf, buflen);
}

const char *it_priv_redis_cli(char *buf, size_t buflen)
{
    return redis_cli_bin(buf, buflen);
}
