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
};

struct master {
    struct gw_config *cfg;
    struct child_slot *slots;
    size_t nslots;
    struct gw_metrics metrics;
    int announced_ready;
    int stopping;
    int64_t stop_deadline_ms;
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
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        cm_error("spawn_failed", "child %zu: fork: %s", i, strerror(errno));
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
        struct gw_config *cfg = m->cfg;
        free(m->slots);
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
    gw_metric_add(&m->metrics.slots[i], GW_M_CHILD_STARTS, 1);
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

static void reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        size_t i;
        struct child_slot *s = slot_of(m, pid, &i);
        if (s == NULL)
            continue;
        int64_t now = cm_monotonic_ms();
        int fatal = WIFEXITED(status) && WEXITSTATUS(status) == GW_EXIT_FATAL;
        if (WIFEXITED(status))
            cm_log(m->stopping || WEXITSTATUS(status) == 0 ? CM_LOG_INFO : CM_LOG_ERROR, "child_exit",
                   "child %zu (pid %d) exited with status %d", i, (int)pid, WEXITSTATUS(status));
        else
            cm_error("child_exit", "child %zu (pid %d) killed by signal %d", i, (int)pid, WTERMSIG(status));
        /* Its gauges describe connections that no longer exist. */
        gw_metric_set(&m->metrics.slots[i], GW_M_CONNS_OPEN, 0);
        gw_metric_set(&m->metrics.slots[i], GW_M_SUBSCRIPTIONS, 0);
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
    for (size_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].state == SLOT_RUNNING)
            kill(m->slots[i].pid, SIGTERM);
        else
            m->slots[i].state = SLOT_EMPTY;
    }
}

static size_t running(const struct master *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].state == SLOT_RUNNING)
            n++;
    return n;
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

int gw_master_run(struct gw_config *cfg)
{
    struct master m;
    memset(&m, 0, sizeof(m));
    m.cfg = cfg;
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
            cm_warn("reload", "SIGHUP: reload is not implemented in this version; ignored");
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
        }

        int64_t timeout = 1000;
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
    gw_metrics_unmap(&m.metrics);
    return status;
}
