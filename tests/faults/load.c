/* load.c: the steady load and the end-of-case checks of fault.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fault.h"
#include "itest.h"

#define RETRY_UNAVAILABLE_MS 150  /* first resend after `unavailable`, then backoff */
#define RESEND_SILENT_MS 4000     /* no ack for this long on a live session: resend */
#define BACKOFF_BASE_MS 50
#define BACKOFF_CAP_MS 1000
#define HISTORY_PAGE 200

struct send {
    int room;                   /* to the room, else a DM to the partner */
    int64_t first_ms, last_ms;  /* first and latest attempt (wall clock) */
    int64_t retry_at;           /* resend at this time (after `unavailable`); 0: none */
    int attempts;
    int acked;
    int64_t ack_ms;
    int64_t seq;
    int conv;                   /* index in fl_load.convs, from the ack */
    char msg[40];
    int ack_conflict;           /* acked twice with different seq or msg */
};

struct receipt {
    int conv;
    int session;
    int64_t seq;
    int64_t ms;
    char msg[40];
};

struct session {
    int64_t hello_ms;
    int64_t end_ms;             /* 0 while open */
    int code;
    int port;
    int local_port;
    int stopped;                /* ended by the end of the test, not by the server */
};

struct client {
    struct fl_load *l;
    char user[32];
    char partner[32];
    int msgpack;
    pthread_t thread;
    pthread_mutex_t mu;         /* guards everything below that the main thread reads */
    struct send *sends;
    size_t nsends, cap;
    long nacked;
    struct receipt *rec;
    size_t nrec, reccap;
    struct session *sess;
    size_t nsess, sesscap;
    int64_t *resync_ms;
    size_t nresync, resynccap;
    long connect_failures, errors, unavailable;
    char last_error[256];
    atomic_int quiet;           /* the thread saw producing == 0: it creates no more sends */
    /* thread-local from here */
    struct ws *ws;
    int port_idx;
    unsigned seed;
};

struct conv {
    char name[96];
    int member[FL_MAX_CLIENTS]; /* clients in it */
    int reader;                 /* a member whose user reads its history */
};

struct fl_load {
    struct fl_conf conf;
    char room[64];
    struct client c[FL_MAX_CLIENTS];
    int nclients;
    struct conv convs[FL_MAX_CLIENTS + 1];
    int nconvs;
    atomic_int producing;
    atomic_int running;
    atomic_long acked;
};

/* ---- helpers --------------------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "faults: out of memory\n");
        abort();
    }
    return q;
}

#define GROW(arr, n, cap)                                                 \
    do {                                                                  \
        if ((n) == (cap)) {                                               \
            (cap) = (cap) ? (cap) * 2 : 64;                               \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));              \
        }                                                                 \
    } while (0)

static int conv_index(struct fl_load *l, const char *name)
{
    for (int i = 0; i < l->nconvs; i++)
        if (strcmp(l->convs[i].name, name) == 0)
            return i;
    return -1;
}

static void dm_name(char *out, size_t len, const char *a, const char *b)
{
    if (strcmp(a, b) <= 0)
        snprintf(out, len, "dm:%s:%s", a, b);
    else
        snprintf(out, len, "dm:%s:%s", b, a);
}

static long backoff_ms(struct client *c, int attempt)
{
    long ms = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && ms < BACKOFF_CAP_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_CAP_MS)
        ms = BACKOFF_CAP_MS;
    return ms / 2 + (long)(rand_r(&c->seed) % (unsigned)(ms / 2 + 1)); /* equal jitter */
}

static int local_port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return 0;
    return ntohs(sa.sin_port);
}

static int cur_port(struct client *c)
{
    return c->l->conf.ports[c->port_idx % c->l->conf.nports];
}

/* ---- the client thread ------------------------------------------------------------ */

/* Sends (or resends) send k on the current session. 0, or -1 when the
 * session failed. */
static int transmit(struct client *c, size_t k)
{
    struct fl_load *l = c->l;
    struct send *s = &c->sends[k];
    char id[32], text[96 + 4096];
    snprintf(id, sizeof(id), "m%zu", k);
    int n = snprintf(text, sizeof(text), "%s/%zu|", c->user, k);
    size_t pad = l->conf.pad < sizeof(text) - (size_t)n - 1 ? l->conf.pad : sizeof(text) - (size_t)n - 1;
    memset(text + n, 'x', pad);
    text[(size_t)n + pad] = '\0';
    json_t *req = s->room ? json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "room", l->room, "text", text)
                          : json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", c->partner, "text", text);
    int64_t now = it_now_ms();
    pthread_mutex_lock(&c->mu);
    if (s->attempts == 0)
        s->first_ms = now;
    s->last_ms = now;
    s->retry_at = 0;
    s->attempts++;
    pthread_mutex_unlock(&c->mu);
    return ws_send_json(c->ws, req);
}

/* Recipe step 2: every unacked send again, with its original id. */
static int resend_pending(struct client *c)
{
    for (size_t k = 0; k < c->nsends; k++)
        if (!c->sends[k].acked && c->sends[k].attempts > 0 && transmit(c, k) < 0)
            return -1;
    return 0;
}

static void on_ack(struct client *c, json_t *m, int64_t now)
{
    const char *id = js(m, "id");
    if (id[0] != 'm')
        return;
    size_t k = (size_t)strtoul(id + 1, NULL, 10);
    if (k >= c->nsends)
        return;
    int conv = conv_index(c->l, js(m, "conv"));
    pthread_mutex_lock(&c->mu);
    struct send *s = &c->sends[k];
    if (!s->acked) {
        s->acked = 1;
        s->ack_ms = now;
        s->seq = ji(m, "seq");
        s->conv = conv;
        snprintf(s->msg, sizeof(s->msg), "%s", js(m, "msg"));
        c->nacked++;
        atomic_fetch_add(&c->l->acked, 1);
    } else if (s->seq != ji(m, "seq") || strcmp(s->msg, js(m, "msg")) != 0 || s->conv != conv) {
        s->ack_conflict = 1;
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_message(struct client *c, json_t *m, int64_t now)
{
    int conv = conv_index(c->l, js(m, "conv"));
    pthread_mutex_lock(&c->mu);
    GROW(c->rec, c->nrec, c->reccap);
    struct receipt *r = &c->rec[c->nrec++];
    r->conv = conv;
    r->session = (int)c->nsess - 1;
    r->seq = ji(m, "seq");
    r->ms = now;
    snprintf(r->msg, sizeof(r->msg), "%s", js(m, "msg"));
    pthread_mutex_unlock(&c->mu);
}

static void on_error(struct client *c, json_t *m, int64_t now)
{
    const char *id = js(m, "id");
    const char *code = js(m, "code");
    pthread_mutex_lock(&c->mu);
    if (strcmp(code, "unavailable") == 0 && id[0] == 'm') {
        size_t k = (size_t)strtoul(id + 1, NULL, 10);
        if (k < c->nsends && !c->sends[k].acked) {
            int a = c->sends[k].attempts;
            long wait = RETRY_UNAVAILABLE_MS * (a < 4 ? a : 4);
            c->sends[k].retry_at = now + wait / 2 + (long)(rand_r(&c->seed) % (unsigned)(wait / 2 + 1));
        }
        c->unavailable++;
    } else {
        c->errors++;
        snprintf(c->last_error, sizeof(c->last_error), "%s: %.200s", code, js(m, "message"));
    }
    pthread_mutex_unlock(&c->mu);
}

/* Handles one server message. -1 when the session must be dropped. */
static int handle(struct client *c, json_t *m)
{
    int64_t now = it_now_ms();
    const char *op = js(m, "op");
    int rc = 0;
    if (strcmp(op, "message") == 0) {
        on_message(c, m, now);
    } else if (strcmp(op, "ack") == 0) {
        on_ack(c, m, now);
    } else if (strcmp(op, "error") == 0) {
        on_error(c, m, now);
    } else if (strcmp(op, "resync") == 0) {
        pthread_mutex_lock(&c->mu);
        GROW(c->resync_ms, c->nresync, c->resynccap);
        c->resync_ms[c->nresync++] = now;
        pthread_mutex_unlock(&c->mu);
        rc = resend_pending(c);
    }
    json_decref(m);
    return rc;
}

static void session_begin(struct client *c, struct ws *ws, int port)
{
    pthread_mutex_lock(&c->mu);
    GROW(c->sess, c->nsess, c->sesscap);
    struct session *s = &c->sess[c->nsess++];
    memset(s, 0, sizeof(*s));
    s->hello_ms = it_now_ms();
    s->port = port;
    s->local_port = local_port_of(ws->fd);
    c->ws = ws;
    pthread_mutex_unlock(&c->mu);
}

static void session_end(struct client *c)
{
    pthread_mutex_lock(&c->mu);
    struct session *s = &c->sess[c->nsess - 1];
    s->end_ms = it_now_ms();
    s->stopped = !atomic_load(&c->l->running);
    s->code = c->ws->close_code != 0 ? c->ws->close_code : WS_CLOSE_ABNORMAL;
    s->local_port = 0;
    ws_free(c->ws);
    c->ws = NULL;
    pthread_mutex_unlock(&c->mu);
    if (c->l->conf.switch_on_close)
        c->port_idx++;
}

static void open_session(struct client *c, int attempt)
{
    char path[96], name[64], err[512];
    snprintf(path, sizeof(path), "/ws?user=%s", c->user);
    snprintf(name, sizeof(name), "%s", c->user);
    int port = cur_port(c);
    struct ws_connect_opts o = {.path = path,
                                .name = name,
                                .protocols = c->msgpack ? IT_SUBPROTO_MSGPACK : IT_SUBPROTO_JSON,
                                .timeout_ms = it_ms(3000)};
    struct ws *ws = ws_open(port, &o, err, sizeof(err));
    if (ws == NULL) {
        pthread_mutex_lock(&c->mu);
        c->connect_failures++;
        snprintf(c->last_error, sizeof(c->last_error), "connect to %d: %.200s", port, err);
        pthread_mutex_unlock(&c->mu);
        if (c->l->conf.switch_on_close)
            c->port_idx++;
        /* a client's reconnect backoff, not a wait for an event */
        it_pause_ms((int)backoff_ms(c, attempt));
        return;
    }
    session_begin(c, ws, port);
    if (resend_pending(c) < 0)
        session_end(c);
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct fl_load *l = c->l;
    int64_t next_send = it_now_ms();
    int attempt = 0;
    while (atomic_load(&l->running)) {
        /* producing only ever goes from 1 to 0: no send is created after this */
        if (!atomic_load(&l->producing))
            atomic_store(&c->quiet, 1);
        if (c->ws == NULL) {
            open_session(c, attempt++);
            continue;
        }
        int64_t now = it_now_ms();
        int producing = atomic_load(&l->producing);
        long unacked = (long)c->nsends - c->nacked;
        int wait = 50;
        if (producing && unacked < l->conf.window)
            wait = next_send > now ? (int)(next_send - now) : 0;
        json_t *m = ws_recv_json(c->ws, wait);
        int dead = 0;
        while (m != NULL && !dead) {
            dead = handle(c, m) < 0;
            m = dead ? NULL : ws_recv_json(c->ws, 0);
        }
        if (dead || c->ws->last_rc == 0 || (c->ws->last_rc < 0 && strcmp(c->ws->err, "timeout") != 0)) {
            session_end(c);
            it_pause_ms((int)backoff_ms(c, 0));
            attempt = 1;
            continue;
        }
        attempt = 0;
        now = it_now_ms();
        /* retries: after `unavailable`, and sends silent for too long */
        for (size_t k = 0; k < c->nsends && !dead; k++) {
            struct send *s = &c->sends[k];
            if (s->acked || s->attempts == 0)
                continue;
            if ((s->retry_at != 0 && now >= s->retry_at) || now - s->last_ms >= it_ms(RESEND_SILENT_MS))
                dead = transmit(c, k) < 0;
        }
        if (!dead && producing && unacked < l->conf.window && now >= next_send) {
            pthread_mutex_lock(&c->mu);
            GROW(c->sends, c->nsends, c->cap);
            size_t k = c->nsends++;
            memset(&c->sends[k], 0, sizeof(c->sends[k]));
            c->sends[k].room = (k % 2) == 0;
            c->sends[k].conv = -1;
            pthread_mutex_unlock(&c->mu);
            dead = transmit(c, k) < 0;
            next_send = now + l->conf.interval_ms;
        }
        if (dead) {
            session_end(c);
            attempt = 1;
        }
    }
    if (c->ws != NULL)
        session_end(c);
    return NULL;
}

/* ---- start ---------------------------------------------------------------------- */

struct fl_load *fl_start(const struct fl_conf *conf)
{
    struct fl_load *l = calloc(1, sizeof(*l));
    cr_assert_not_null(l);
    l->conf = *conf;
    if (l->conf.nclients <= 0)
        l->conf.nclients = 6;
    cr_assert(l->conf.nclients >= 2 && l->conf.nclients <= FL_MAX_CLIENTS);
    if (l->conf.nports <= 0) {
        l->conf.ports[0] = it_port();
        l->conf.nports = 1;
    }
    if (l->conf.interval_ms <= 0)
        l->conf.interval_ms = 25;
    if (l->conf.window <= 0)
        l->conf.window = 4;
    snprintf(l->room, sizeof(l->room), "%s", conf->room != NULL ? conf->room : "load");
    const char *prefix = conf->prefix != NULL ? conf->prefix : "c";
    l->nclients = l->conf.nclients;

    /* conversations: the room, and client i's DM with client i+1 */
    snprintf(l->convs[0].name, sizeof(l->convs[0].name), "room:%s", l->room);
    for (int i = 0; i < l->nclients; i++) {
        struct client *c = &l->c[i];
        c->l = l;
        c->seed = (unsigned)(i * 7919 + getpid());
        c->msgpack = i % 2;
        snprintf(c->user, sizeof(c->user), "%s%d", prefix, i);
        snprintf(c->partner, sizeof(c->partner), "%s%d", prefix, (i + 1) % l->nclients);
        pthread_mutex_init(&c->mu, NULL);
        l->convs[0].member[i] = 1;
    }
    l->nconvs = 1;
    for (int i = 0; i < l->nclients; i++) {
        struct conv *v = &l->convs[l->nconvs++];
        dm_name(v->name, sizeof(v->name), l->c[i].user, l->c[i].partner);
        v->member[i] = 1;
        v->member[(i + 1) % l->nclients] = 1;
        v->reader = i;
    }
    for (int i = 0; i < l->nclients; i++) {
        struct client *c = &l->c[i];
        struct ws *ws = it_open(cur_port(c), c->user, c->msgpack ? IT_SUBPROTO_MSGPACK : IT_SUBPROTO_JSON);
        it_join(ws, "join", l->room);
        session_begin(c, ws, cur_port(c));
    }
    atomic_store(&l->running, 1);
    atomic_store(&l->producing, 1);
    for (int i = 0; i < l->nclients; i++)
        cr_assert_eq(pthread_create(&l->c[i].thread, NULL, client_main, &l->c[i]), 0);
    return l;
}

/* ---- observation ------------------------------------------------------------------- */

long fl_acked(struct fl_load *l)
{
    return atomic_load(&l->acked);
}

int fl_wait_acked(struct fl_load *l, long n, int timeout_ms)
{
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        if (fl_acked(l) >= n)
            return 1;
        if (it_mono_ms() >= deadline)
            return 0;
        it_pause_ms(10); /* paces the check of a counter the client threads raise */
    }
}

int fl_wait_connected(struct fl_load *l, int64_t since_ms, int fresh, int timeout_ms)
{
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        int ok = 1;
        for (int i = 0; i < l->nclients && ok; i++) {
            struct client *c = &l->c[i];
            pthread_mutex_lock(&c->mu);
            struct session *s = c->nsess > 0 ? &c->sess[c->nsess - 1] : NULL;
            ok = s != NULL && s->end_ms == 0 && (!fresh || s->hello_ms >= since_ms);
            pthread_mutex_unlock(&c->mu);
        }
        if (ok)
            return 1;
        if (it_mono_ms() >= deadline)
            return 0;
        it_pause_ms(10);
    }
}

int fl_closes(struct fl_load *l, struct fl_close *out, int max, int *total)
{
    int n = 0, t = 0;
    for (int i = 0; i < l->nclients; i++) {
        struct client *c = &l->c[i];
        pthread_mutex_lock(&c->mu);
        for (size_t k = 0; k < c->nsess; k++) {
            if (c->sess[k].end_ms == 0 || c->sess[k].stopped)
                continue;
            t++;
            if (n < max)
                out[n++] = (struct fl_close){i, c->sess[k].port, c->sess[k].code, c->sess[k].end_ms};
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (total != NULL)
        *total = t;
    return n;
}

int fl_local_ports(struct fl_load *l, int *out, int max)
{
    int n = 0;
    for (int i = 0; i < l->nclients && n < max; i++) {
        struct client *c = &l->c[i];
        pthread_mutex_lock(&c->mu);
        out[n++] = c->nsess > 0 && c->sess[c->nsess - 1].end_ms == 0 ? c->sess[c->nsess - 1].local_port : 0;
        pthread_mutex_unlock(&c->mu);
    }
    return n;
}

long fl_max_latency(struct fl_load *l, int64_t from_ms, int64_t to_ms)
{
    long max = 0;
    int64_t now = it_now_ms();
    for (int i = 0; i < l->nclients; i++) {
        struct client *c = &l->c[i];
        pthread_mutex_lock(&c->mu);
        for (size_t k = 0; k < c->nsends; k++) {
            struct send *s = &c->sends[k];
            if (s->attempts == 0 || s->first_ms < from_ms || s->first_ms >= to_ms)
                continue;
            long w = (long)((s->acked ? s->ack_ms : now) - s->first_ms);
            if (w > max)
                max = w;
        }
        pthread_mutex_unlock(&c->mu);
    }
    return max;
}

long fl_connect_failures(struct fl_load *l)
{
    long n = 0;
    for (int i = 0; i < l->nclients; i++) {
        pthread_mutex_lock(&l->c[i].mu);
        n += l->c[i].connect_failures;
        pthread_mutex_unlock(&l->c[i].mu);
    }
    return n;
}

/* ---- the checks -------------------------------------------------------------------- */

struct hmsg {
    int64_t seq;
    int64_t ts;
    char msg[40];
    int client;                 /* sender, from the text; -1 unknown */
    size_t send;                /* index in the sender's sends */
};

struct history {
    struct hmsg *m;
    size_t n, cap;
};

/* Reads the whole history of conv as user (a fresh session on port). */
static void read_history(int port, const char *user, const char *conv, struct history *h, struct fl_load *l)
{
    struct ws *ws = it_open(port, user, NULL);
    int64_t after = 0;
    for (int page = 0; page < 100000; page++) {
        char id[32];
        snprintf(id, sizeof(id), "h%d", page);
        json_t *rep = it_history(ws, id, conv, "after", after, HISTORY_PAGE);
        json_t *msgs = json_object_get(rep, "messages");
        size_t n = json_array_size(msgs);
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(msgs, i);
            GROW(h->m, h->n, h->cap);
            struct hmsg *e = &h->m[h->n++];
            memset(e, 0, sizeof(*e));
            e->seq = ji(m, "seq");
            e->ts = ji(m, "ts");
            snprintf(e->msg, sizeof(e->msg), "%s", js(m, "msg"));
            e->client = -1;
            /* text: <user>/<send index>|padding */
            const char *text = js(m, "text");
            const char *slash = strchr(text, '/');
            if (slash != NULL) {
                for (int c = 0; c < l->nclients; c++) {
                    size_t ul = strlen(l->c[c].user);
                    if ((size_t)(slash - text) == ul && strncmp(text, l->c[c].user, ul) == 0) {
                        e->client = c;
                        e->send = (size_t)strtoul(slash + 1, NULL, 10);
                    }
                }
            }
            after = e->seq;
        }
        json_decref(rep);
        if (n < HISTORY_PAGE)
            break;
    }
    ws_free(ws);
}

/* Live deliveries: messages of c's conversations it neither got live nor
 * was told to recover from. Counts into r (missed, recovered, dups,
 * mismatches). */
static void check_live(struct fl_load *l, struct history *hist, struct fl_result *r, int report)
{
    r->live_missed = r->live_recovered = r->live_dups = r->mismatched = 0;
    for (int ci = 0; ci < l->nclients; ci++) {
        struct client *c = &l->c[ci];
        pthread_mutex_lock(&c->mu);
        int64_t first_hello = c->nsess > 0 ? c->sess[0].hello_ms : 0;
        int offline_at_end = c->nsess == 0 || (c->sess[c->nsess - 1].end_ms != 0 && !c->sess[c->nsess - 1].stopped);
        /* recovery events: every hello after the first, every resync */
        int64_t last_recovery = 0;
        for (size_t k = 1; k < c->nsess; k++)
            if (c->sess[k].hello_ms > last_recovery)
                last_recovery = c->sess[k].hello_ms;
        for (size_t k = 0; k < c->nresync; k++)
            if (c->resync_ms[k] > last_recovery)
                last_recovery = c->resync_ms[k];
        for (int v = 0; v < l->nconvs; v++) {
            if (!l->convs[v].member[ci])
                continue;
            struct history *h = &hist[v];
            int64_t maxseq = h->n > 0 ? h->m[h->n - 1].seq : 0;
            int *seen_session = calloc((size_t)maxseq + 2, sizeof(int));
            cr_assert_not_null(seen_session);
            for (int64_t s = 0; s <= maxseq; s++)
                seen_session[s] = -1;
            for (size_t k = 0; k < c->nrec; k++) {
                struct receipt *rc = &c->rec[k];
                if (rc->conv != v || rc->seq < 1 || rc->seq > maxseq)
                    continue;
                if (seen_session[rc->seq] == rc->session) {
                    r->live_dups++;
                    if (report)
                        fprintf(stderr, "faults: %s got %s seq %lld twice on its session %d (again at %lld)\n",
                                c->user, l->convs[v].name, (long long)rc->seq, rc->session, (long long)rc->ms);
                }
                seen_session[rc->seq] = rc->session;
                if ((size_t)rc->seq <= h->n && h->m[rc->seq - 1].seq == rc->seq &&
                    strcmp(h->m[rc->seq - 1].msg, rc->msg) != 0) {
                    r->mismatched++;
                    if (report)
                        fprintf(stderr, "faults: %s got %s seq %lld as msg %s, history says %s\n", c->user,
                                l->convs[v].name, (long long)rc->seq, rc->msg, h->m[rc->seq - 1].msg);
                }
            }
            for (size_t k = 0; k < h->n; k++) {
                struct hmsg *m = &h->m[k];
                if (m->ts < first_hello || seen_session[m->seq] >= 0)
                    continue;
                /* told to recover after the message was stored, or offline at the end */
                if (offline_at_end || last_recovery >= m->ts) {
                    r->live_recovered++;
                    continue;
                }
                r->live_missed++;
                if (report && r->live_missed <= 10)
                    fprintf(stderr,
                            "faults: %s never got %s seq %lld (stored at %lld) live and was not told to "
                            "resync (sessions %zu, resyncs %zu, last recovery %lld)\n",
                            c->user, l->convs[v].name, (long long)m->seq, (long long)m->ts, c->nsess, c->nresync,
                            (long long)last_recovery);
            }
            free(seen_session);
        }
        pthread_mutex_unlock(&c->mu);
    }
}

/* Unacked sends, all clients; -1 while some client may still create one. */
static long total_unacked(struct fl_load *l)
{
    long n = 0;
    for (int i = 0; i < l->nclients; i++)
        if (!atomic_load(&l->c[i].quiet))
            return -1;
    for (int i = 0; i < l->nclients; i++) {
        pthread_mutex_lock(&l->c[i].mu);
        n += (long)l->c[i].nsends - l->c[i].nacked;
        pthread_mutex_unlock(&l->c[i].mu);
    }
    return n;
}

void fl_finish(struct fl_load *l, int check_port, struct fl_result *r)
{
    memset(r, 0, sizeof(*r));
    atomic_store(&l->producing, 0);

    /* every send acked: the clients keep retrying */
    int64_t deadline = it_mono_ms() + it_ms(30000);
    while (total_unacked(l) != 0 && it_mono_ms() < deadline)
        it_pause_ms(20);
    long unacked = total_unacked(l);

    struct history hist[FL_MAX_CLIENTS + 1];
    memset(hist, 0, sizeof(hist));
    for (int v = 0; v < l->nconvs; v++)
        read_history(check_port, l->c[l->convs[v].reader].user, l->convs[v].name, &hist[v], l);

    /* deliveries still on their way: give them a bounded time */
    deadline = it_mono_ms() + it_ms(5000);
    for (;;) {
        check_live(l, hist, r, 0);
        if ((r->live_missed == 0 && r->mismatched == 0) || it_mono_ms() >= deadline)
            break;
        it_pause_ms(50);
    }
    atomic_store(&l->running, 0);
    for (int i = 0; i < l->nclients; i++)
        pthread_join(l->c[i].thread, NULL);
    check_live(l, hist, r, 1);

    /* history against the acks */
    for (int v = 0; v < l->nconvs; v++) {
        struct history *h = &hist[v];
        for (size_t k = 0; k < h->n; k++) {
            if (h->m[k].seq != (int64_t)k + 1) {
                fprintf(stderr, "faults: %s: entry %zu has seq %lld, expected %zu (a gap or a repeat)\n",
                        l->convs[v].name, k, (long long)h->m[k].seq, k + 1);
                r->gaps++;
                break;
            }
        }
    }
    for (int ci = 0; ci < l->nclients; ci++) {
        struct client *c = &l->c[ci];
        int *count = calloc(c->nsends + 1, sizeof(int));
        cr_assert_not_null(count);
        for (int v = 0; v < l->nconvs; v++) {
            for (size_t k = 0; k < hist[v].n; k++) {
                struct hmsg *m = &hist[v].m[k];
                if (m->client != ci)
                    continue;
                if (m->send >= c->nsends) {
                    r->unknown++;
                    continue;
                }
                count[m->send]++;
                struct send *s = &c->sends[m->send];
                if (s->acked && (s->conv != v || s->seq != m->seq || strcmp(s->msg, m->msg) != 0)) {
                    fprintf(stderr, "faults: %s send m%zu acked as %s seq %lld msg %s, stored as %s seq %lld msg %s\n",
                            c->user, m->send, s->conv >= 0 ? l->convs[s->conv].name : "?", (long long)s->seq,
                            s->msg, l->convs[v].name, (long long)m->seq, m->msg);
                    r->duplicated++;
                }
            }
        }
        for (size_t k = 0; k < c->nsends; k++) {
            struct send *s = &c->sends[k];
            r->sent++;
            if (!s->acked)
                continue;
            r->acked++;
            if (count[k] == 0) {
                r->lost++;
                fprintf(stderr, "faults: LOST: %s send m%zu (acked %s seq %lld) is not in history\n", c->user, k,
                        s->conv >= 0 ? l->convs[s->conv].name : "?", (long long)s->seq);
            } else if (count[k] > 1) {
                r->duplicated += count[k] - 1;
                fprintf(stderr, "faults: DUPLICATE: %s send m%zu is in history %d times\n", c->user, k, count[k]);
            }
            if (s->ack_conflict) {
                r->duplicated++;
                fprintf(stderr, "faults: %s send m%zu was acked twice with different seq/msg\n", c->user, k);
            }
            long w = (long)(s->ack_ms - s->first_ms);
            if (w > r->max_ack_wait_ms)
                r->max_ack_wait_ms = w;
        }
        free(count);
        /* time without a session: from a session's end to the next hello */
        for (size_t k = 1; k < c->nsess; k++) {
            long gap = (long)(c->sess[k].hello_ms - c->sess[k - 1].end_ms);
            if (gap > r->max_offline_ms)
                r->max_offline_ms = gap;
        }
        r->reconnects += c->nsess > 0 ? (long)c->nsess - 1 : 0;
        r->resyncs += (long)c->nresync;
        r->connect_failures += c->connect_failures;
        r->errors += c->errors;
        r->unavailable += c->unavailable;
        if (c->errors > 0)
            fprintf(stderr, "faults: %s got %ld unexpected error replies, the last: %s\n", c->user, c->errors,
                    c->last_error);
    }
    r->max_recovery_ms = r->max_ack_wait_ms > r->max_offline_ms ? r->max_ack_wait_ms : r->max_offline_ms;
    fprintf(stderr,
            "faults: sent %ld acked %ld lost %ld duplicated %ld unknown %ld gaps %ld | live: missed %ld recovered "
            "%ld dups %ld mismatched %ld | longest ack wait %ld ms, longest offline %ld ms, reconnects %ld, resyncs %ld, connect failures %ld, "
            "unavailable %ld, errors %ld\n",
            r->sent, r->acked, r->lost, r->duplicated, r->unknown, r->gaps, r->live_missed, r->live_recovered,
            r->live_dups, r->mismatched, r->max_ack_wait_ms, r->max_offline_ms, r->reconnects, r->resyncs, r->connect_failures,
            r->unavailable, r->errors);

    int live_dups_ok = l->conf.live_dups_ok;
    for (int v = 0; v < l->nconvs; v++)
        free(hist[v].m);
    for (int i = 0; i < l->nclients; i++) {
        struct client *c = &l->c[i];
        free(c->sends);
        free(c->rec);
        free(c->sess);
        free(c->resync_ms);
        pthread_mutex_destroy(&c->mu);
    }
    free(l);

    cr_assert_eq(unacked, 0, "%ld sends were still unacked %d ms after the load stopped", unacked, it_ms(30000));
    cr_assert_eq(r->lost, 0, "%ld acked messages are missing from history", r->lost);
    cr_assert_eq(r->duplicated, 0, "%ld acked messages are duplicated", r->duplicated);
    cr_assert_eq(r->unknown, 0, "%ld history entries match no send", r->unknown);
    cr_assert_eq(r->gaps, 0, "%ld conversations have a seq gap or repeat", r->gaps);
    cr_assert_eq(r->mismatched, 0, "%ld deliveries disagree with history", r->mismatched);
    cr_assert_eq(r->live_missed, 0, "%ld deliveries were missed by online clients that were not told to resync",
                 r->live_missed);
    cr_assert_eq(r->errors, 0, "%ld unexpected error replies", r->errors);
    if (!live_dups_ok)
        cr_assert_eq(r->live_dups, 0, "%ld messages were delivered twice to the same session", r->live_dups);
    cr_assert_eq(r->sent, r->acked);
}
