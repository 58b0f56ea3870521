/* master.c: supervision of the gateway's children.
 *
 * Signals are blocked except inside ppoll(), whose handlers only set flags,
 * so the loop below sees every signal at one place and never races with it.
 * Children talk to the master through one pipe each: 'R' when ready (Redis
 * connected), 'N' when not; EOF when they exit. */

#include <config.h>

#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "gateway/child.h"
#include "gateway/metrics.h"

#define RESPAWN_DELAY_MIN_MS 100
#define RESPAWN_DELAY_MAX_MS 10000
#define STABLE_AFTER_MS 10000      /* a child that lived this long resets its backoff */
#define STOP_GRACE_MS 10000        /* after the drain period, SIGKILL what is left */
#define RELOAD_READY_MS 30000      /* a successor not ready by then replaces its predecessor anyway */

enum slot_state { SLOT_EMPTY = 0, SLOT_RUNNING, SLOT_WAITING, SLOT_FAILED };

struct child_slot {
    enum slot_state state;
    pid_t pid;
    int listen_fd;
    int notify_fd;            /* master's read end; -1 when none */
    int ready;
    unsigned respawns;
    int64_t started_ms;
    int64_t respawn_at_ms;    /* SLOT_WAITING: when to start again */
    int64_t delay_ms;         /* next backoff */
    pid_t predecessor;        /* reload: the child this one replaces, retired once this one is ready */
    int64_t reload_deadline_ms;
    size_t cell;              /* the running child's metrics cell (metrics.h) */
    size_t predecessor_cell;
    unsigned starts;          /* children started in this slot, reload successors included */
};

/* A replaced child still draining: reaped by pid, its metrics cell freed then. */
struct retired_child {
    pid_t pid;
    size_t cell;
};

struct master {
    struct gw_config *cfg;
    struct child_slot *slots;
    size_t nslots;
    struct gw_metrics metrics;
    int announced_ready;
    int stopping;
    int64_t stop_deadline_ms;
    int argc;                 /* for reloads */
    char **argv;
    int reloading;
    size_t reload_next;       /* slot being replaced */
    struct retired_child *retired; /* replaced children still draining */
    size_t nretired, retired_cap;
};

static volatile sig_atomic_t got_chld, got_term, got_hup;

static void on_signal(int sig)
{
    if (sig == SIGCHLD)
        got_chld = 1;
    else if (sig == SIGHUP)
        got_hup = 1;
    else
        got_term = 1;
}

static void close_slots_except(struct master *m, size_t keep)
{
    for (size_t i = 0; i < m->nslots; i++) {
        if (i != keep && m->slots[i].listen_fd >= 0)
            close(m->slots[i].listen_fd);
        if (m->slots[i].notify_fd >= 0)
            close(m->slots[i].notify_fd);
    }
}

static int spawn(struct master *m, size_t i)
{
    struct child_slot *s = &m->slots[i];
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        cm_error("spawn_failed", "child %zu: pipe: %s", i, strerror(errno));
        return -1;
    }
    int overflow;
    size_t cell = gw_metrics_cell_take(&m->metrics, &overflow);
    if (overflow)
        cm_warn("metrics_cells", "child %zu: every metrics cell is taken (reloads while children drain); "
                "sharing the overflow cell", i);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cm_error("spawn_failed", "child %zu: fork: %s", i, strerror(errno));
        gw_metrics_cell_release(&m->metrics, cell);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        /* The master's gone: drain like on SIGTERM rather than serve unsupervised. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        int listen_fd = s->listen_fd;
        close_slots_except(m, i);
        struct gw_metrics metrics = m->metrics;
        metrics.own = gw_metrics_cell(&metrics, cell);
        struct gw_config *cfg = m->cfg;
        free(m->slots);
        free(m->retired);
        int status = gw_child_run(cfg, (int)i, listen_fd, pipefd[1], &metrics);
        close(listen_fd);
        gw_metrics_unmap(&metrics);
        gw_config_free(cfg);
        exit(status);
    }
    close(pipefd[1]);
    s->pid = pid;
    s->notify_fd = pipefd[0];
    s->state = SLOT_RUNNING;
    s->ready = 0;
    s->started_ms = cm_monotonic_ms();
    s->cell = cell;
    gw_metric_add(m->metrics.own, GW_M_CHILD_STARTS, 1);
    if (s->starts++ > 0)
        gw_metric_add(m->metrics.own, GW_M_CHILD_RESTARTS, 1);
    cm_info("child_start", "child %zu started as pid %d", i, (int)pid);
    return 0;
}

static struct child_slot *slot_of(struct master *m, pid_t pid, size_t *index)
{
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].state == SLOT_RUNNING && m->slots[i].pid == pid) {
            *index = i;
            return &m->slots[i];
        }
    return NULL;
}

static void forget_retired(struct master *m, pid_t pid, int status)
{
    for (size_t k = 0; k < m->nretired; k++) {
        if (m->retired[k].pid != pid)
            continue;
        gw_metrics_cell_release(&m->metrics, m->retired[k].cell);
        m->retired[k] = m->retired[--m->nretired];
        if (WIFEXITED(status))
            cm_info("child_exit", "replaced child (pid %d) exited with status %d", (int)pid, WEXITSTATUS(status));
        else
            cm_warn("child_exit", "replaced child (pid %d) killed by signal %d", (int)pid, WTERMSIG(status));
        return;
    }
}

/* Tells a replaced child to stop accepting and drain (SIGUSR1); the master
 * keeps its pid to reap it and to kill it if a stop runs out of time. */
static void retire(struct master *m, pid_t pid, size_t cell)
{
    if (m->nretired == m->retired_cap) {
        size_t cap = m->retired_cap ? m->retired_cap * 2 : 8;
        struct retired_child *n = realloc(m->retired, cap * sizeof(*n));
        if (n == NULL) {
            /* Untracked, it still drains and exits; only its exit goes
             * unlogged (and its metrics cell stays taken). */
            cm_warn("reload", "out of memory tracking replaced child %d", (int)pid);
            kill(pid, SIGUSR1);
            return;
        }
        m->retired = n;
        m->retired_cap = cap;
    }
    m->retired[m->nretired].pid = pid;
    m->retired[m->nretired++].cell = cell;
    kill(pid, SIGUSR1);
}

static void reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        size_t i;
        struct child_slot *s = slot_of(m, pid, &i);
        if (s == NULL) {
            forget_retired(m, pid, status);
            continue;
        }
        int64_t now = cm_monotonic_ms();
        int fatal = WIFEXITED(status) && WEXITSTATUS(status) == GW_EXIT_FATAL;
        if (WIFEXITED(status))
            cm_log(m->stopping || WEXITSTATUS(status) == 0 ? CM_LOG_INFO : CM_LOG_ERROR, "child_exit",
                   "child %zu (pid %d) exited with status %d", i, (int)pid, WEXITSTATUS(status));
        else
            cm_error("child_exit", "child %zu (pid %d) killed by signal %d", i, (int)pid, WTERMSIG(status));
        /* Its counters live on in the master's cell; its gauges described
         * connections that no longer exist. */
        gw_metrics_cell_release(&m->metrics, s->cell);
        if (s->notify_fd >= 0) {
            close(s->notify_fd);
            s->notify_fd = -1;
        }
        s->pid = 0;
        s->ready = 0;
        if (m->stopping) {
            s->state = SLOT_EMPTY;
            continue;
        }
        if (fatal) {
            cm_error("child_fatal", "child %zu failed fatally; not restarting it", i);
            s->state = SLOT_FAILED;
            continue;
        }
        if (now - s->started_ms >= STABLE_AFTER_MS)
            s->delay_ms = RESPAWN_DELAY_MIN_MS;
        s->state = SLOT_WAITING;
        s->respawn_at_ms = now + s->delay_ms;
        cm_info("child_respawn", "child %zu restarts in %lld ms", i, (long long)s->delay_ms);
        s->delay_ms = s->delay_ms * 2 > RESPAWN_DELAY_MAX_MS ? RESPAWN_DELAY_MAX_MS : s->delay_ms * 2;
        s->respawns++;
    }
}

static void read_notifications(struct master *m, size_t i)
{
    struct child_slot *s = &m->slots[i];
    char buf[64];
    ssize_t n = read(s->notify_fd, buf, sizeof(buf));
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(s->notify_fd);
            s->notify_fd = -1;
        }
        return;
    }
    for (ssize_t k = 0; k < n; k++) {
        if (buf[k] == 'R')
            s->ready = 1;
        else if (buf[k] == 'N')
            s->ready = 0;
    }
    if (!m->announced_ready && !m->stopping) {
        for (size_t j = 0; j < m->nslots; j++)
            if (!m->slots[j].ready)
                return;
        m->announced_ready = 1;
        cm_info("ready", "serving on %s:%d with %zu processes", m->cfg->host, m->cfg->port, m->nslots);
    }
}

static void begin_stop(struct master *m)
{
    m->stopping = 1;
    m->stop_deadline_ms = cm_monotonic_ms() + (int64_t)(m->cfg->drain_seconds * 1000) + STOP_GRACE_MS;
    cm_info("draining", "SIGTERM: draining clients over %.1f s", m->cfg->drain_seconds);
    m->reloading = 0;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].predecessor > 0) {
            retire(m, m->slots[i].predecessor, m->slots[i].predecessor_cell); /* stops accepting and drains too */
            m->slots[i].predecessor = 0;
        }
    for (size_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].state == SLOT_RUNNING)
            kill(m->slots[i].pid, SIGTERM);
        else
            m->slots[i].state = SLOT_EMPTY;
    }
}

static size_t running(const struct master *m)
{
    size_t n = m->nretired;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].state == SLOT_RUNNING)
            n++;
    return n;
}

/* SIGHUP: new options, then a rolling replacement of the children. A bad
 * new configuration is logged and changes nothing. */
static void begin_reload(struct master *m)
{
    struct gw_config next;
    char err[512];
    int r = gw_config_load(&next, m->argc, m->argv, err, sizeof(err));
    if (r != GW_CONFIG_OK) {
        cm_error("reload_failed", "SIGHUP: %s; keeping the running configuration",
                 r == GW_CONFIG_ERROR ? err : "options printed help or version");
        gw_config_free(&next);
        return;
    }
    struct gw_config *cur = m->cfg;
    /* The listeners and the slot count are fixed for the master's life. */
    if (strcmp(next.listen, cur->listen) != 0 || next.processes != cur->processes)
        cm_warn("reload", "--listen and --processes take effect only on restart; keeping %s and %ld", cur->listen,
                cur->processes);
    free(next.listen);
    next.listen = strdup(cur->listen);
    if (next.listen == NULL) {
        cm_error("reload_failed", "SIGHUP: out of memory; keeping the running configuration");
        gw_config_free(&next);
        return;
    }
    next.processes = cur->processes;
    memcpy(next.host, cur->host, sizeof(next.host));
    next.port = cur->port;
    gw_config_free(cur);
    *cur = next;
    cm_log_init("chatmi-gateway", (enum cm_log_format)cur->log_format, (enum cm_log_level)cur->log_level);
    cm_info("reload", "SIGHUP: new configuration read; replacing the children");
    gw_config_log(cur, "config");

    /* A reload during a reload starts over with the newest options; the
     * predecessor of a successor still starting is retired now. */
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].predecessor > 0) {
            retire(m, m->slots[i].predecessor, m->slots[i].predecessor_cell);
            m->slots[i].predecessor = 0;
        }
    m->reloading = 1;
    m->reload_next = 0;
}

/* One step of the rolling replacement: start the successor of the current
 * slot, or, once it is ready, retire its predecessor and move on. */
static void reload_step(struct master *m, int64_t now)
{
    while (m->reload_next < m->nslots) {
        size_t i = m->reload_next;
        struct child_slot *s = &m->slots[i];
        if (s->predecessor == 0) {
            if (s->state != SLOT_RUNNING) {
                /* Not running: its next start uses the new options; a slot
                 * that failed fatally gets another chance with them. */
                if (s->state == SLOT_FAILED) {
                    s->state = SLOT_WAITING;
                    s->delay_ms = RESPAWN_DELAY_MIN_MS;
                    s->respawn_at_ms = now;
                }
                m->reload_next++;
                continue;
            }
            struct child_slot old = *s;
            if (spawn(m, i) < 0) {
                *s = old;
                cm_error("reload", "child %zu: cannot start its successor; keeping the old one", i);
                m->reload_next++;
                continue;
            }
            if (old.notify_fd >= 0)
                close(old.notify_fd);
            s->predecessor = old.pid;
            s->predecessor_cell = old.cell;
            s->reload_deadline_ms = now + RELOAD_READY_MS;
            return;
        }
        if (s->state == SLOT_RUNNING && !s->ready && now < s->reload_deadline_ms)
            return; /* successor still starting */
        if (s->state != SLOT_RUNNING) {
            /* The successor died: the predecessor keeps serving in its slot. */
            cm_error("reload", "child %zu: its successor exited; keeping the old child (pid %d)", i,
                     (int)s->predecessor);
            s->pid = s->predecessor;
            s->cell = s->predecessor_cell;
            s->state = SLOT_RUNNING;
            s->ready = 1;
            s->notify_fd = -1;
            s->started_ms = now;
            s->predecessor = 0;
            m->reload_next++;
            continue;
        }
        if (!s->ready)
            cm_warn("reload", "child %zu: successor not ready after %d s; replacing anyway", i,
                    RELOAD_READY_MS / 1000);
        retire(m, s->predecessor, s->predecessor_cell);
        s->predecessor = 0;
        m->reload_next++;
    }
    m->reloading = 0;
    cm_info("reloaded", "all %zu children replaced", m->nslots);
}

static int open_listeners(struct master *m)
{
    char err[256];
    for (size_t i = 0; i < m->nslots; i++) {
        int port = m->cfg->port;
        /* Port 0 picks a free port once; every other listener shares it. */
        if (port == 0 && i > 0)
            port = cm_net_local_port(m->slots[0].listen_fd);
        int fd = cm_net_listen(m->cfg->host, port, 4096, 1, err, sizeof(err));
        if (fd < 0) {
            cm_error("listen_failed", "--listen %s: %s", m->cfg->listen, err);
            return -1;
        }
        m->slots[i].listen_fd = fd;
    }
    if (m->cfg->port == 0)
        m->cfg->port = cm_net_local_port(m->slots[0].listen_fd);
    return 0;
}

int gw_master_run(struct gw_config *cfg, int argc, char **argv)
{
    struct master m;
    memset(&m, 0, sizeof(m));
    m.cfg = cfg;
    m.argc = argc;
    m.argv = argv;
    m.nslots = (size_t)cfg->processes;
    m.slots = calloc(m.nslots, sizeof(*m.slots));
    if (m.slots == NULL) {
        cm_error("start_failed", "out of memory");
        return 1;
    }
    for (size_t i = 0; i < m.nslots; i++) {
        m.slots[i].listen_fd = -1;
        m.slots[i].notify_fd = -1;
        m.slots[i].delay_ms = RESPAWN_DELAY_MIN_MS;
    }
    int status = 1;
    if (gw_metrics_map(&m.metrics, m.nslots) < 0) {
        cm_error("start_failed", "cannot map the metrics segment: %s", strerror(errno));
        goto out;
    }
    if (open_listeners(&m) < 0)
        goto out;

    sigset_t blocked, orig;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGHUP);
    sigprocmask(SIG_BLOCK, &blocked, &orig);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cm_info("listen", "listening on %s:%d, starting %zu processes", cfg->host, cfg->port, m.nslots);
    for (size_t i = 0; i < m.nslots; i++)
        if (spawn(&m, i) < 0) {
            m.slots[i].state = SLOT_WAITING;
            m.slots[i].respawn_at_ms = cm_monotonic_ms() + m.slots[i].delay_ms;
        }

    struct pollfd *pfds = calloc(m.nslots, sizeof(*pfds));
    size_t *pidx = calloc(m.nslots, sizeof(*pidx));
    if (pfds == NULL || pidx == NULL) {
        free(pfds);
        free(pidx);
        cm_error("start_failed", "out of memory");
        begin_stop(&m);
        pfds = NULL;
    }
    for (;;) {
        if (got_chld) {
            got_chld = 0;
            reap(&m);
        }
        if (got_term && !m.stopping) {
            got_term = 0;
            begin_stop(&m);
            for (size_t i = 0; i < m.nslots; i++)
                if (m.slots[i].listen_fd >= 0) {
                    close(m.slots[i].listen_fd);
                    m.slots[i].listen_fd = -1;
                }
        }
        if (got_hup) {
            got_hup = 0;
            if (!m.stopping)
                begin_reload(&m);
        }
        int64_t now = cm_monotonic_ms();
        if (m.stopping) {
            if (running(&m) == 0) {
                cm_info("stopped", "all children exited");
                status = 0;
                break;
            }
            if (now >= m.stop_deadline_ms) {
                for (size_t i = 0; i < m.nslots; i++)
                    if (m.slots[i].state == SLOT_RUNNING) {
                        cm_warn("child_kill", "child %zu (pid %d) did not drain in time: SIGKILL", i,
                                (int)m.slots[i].pid);
                        kill(m.slots[i].pid, SIGKILL);
                    }
                for (size_t k = 0; k < m.nretired; k++) {
                    cm_warn("child_kill", "replaced child (pid %d) did not drain in time: SIGKILL",
                            (int)m.retired[k].pid);
                    kill(m.retired[k].pid, SIGKILL);
                }
                m.stop_deadline_ms = now + 1000;
            }
        } else {
            size_t failed = 0;
            for (size_t i = 0; i < m.nslots; i++) {
                if (m.slots[i].state == SLOT_FAILED)
                    failed++;
                if (m.slots[i].state == SLOT_WAITING && now >= m.slots[i].respawn_at_ms && spawn(&m, i) < 0)
                    m.slots[i].respawn_at_ms = now + m.slots[i].delay_ms;
            }
            if (failed == m.nslots) {
                cm_error("stopped", "every child failed fatally");
                break;
            }
            if (m.reloading)
                reload_step(&m, now);
        }

        int64_t timeout = m.reloading ? 100 : 1000;
        for (size_t i = 0; i < m.nslots; i++)
            if (m.slots[i].state == SLOT_WAITING && m.slots[i].respawn_at_ms - now < timeout)
                timeout = m.slots[i].respawn_at_ms - now;
        if (timeout < 0)
            timeout = 0;
        nfds_t n = 0;
        for (size_t i = 0; pfds != NULL && i < m.nslots; i++)
            if (m.slots[i].notify_fd >= 0) {
                pfds[n].fd = m.slots[i].notify_fd;
                pfds[n].events = POLLIN;
                pidx[n++] = i;
            }
        struct timespec ts = {(time_t)(timeout / 1000), (long)(timeout % 1000) * 1000000L};
        int r = ppoll(pfds, n, &ts, &orig);
        if (r > 0)
            for (nfds_t k = 0; k < n; k++)
                if (pfds[k].revents & (POLLIN | POLLHUP | POLLERR))
                    read_notifications(&m, pidx[k]);
    }
    free(pfds);
    free(pidx);
out:
    for (size_t i = 0; i < m.nslots; i++) {
        if (m.slots[i].listen_fd >= 0)
            close(m.slots[i].listen_fd);
        if (m.slots[i].notify_fd >= 0)
            close(m.slots[i].notify_fd);
    }
    free(m.slots);
    free(m.retired);
    gw_metrics_unmap(&m.metrics);
    return status;
}
