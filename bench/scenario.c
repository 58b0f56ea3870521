/* scenario.c: a shard's phases, the pacing of connects and sends, and
 * what each scenario does with the server's messages (shard.h). */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/jscan.h"
#include "bench/shard.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"

#define TICK_NS 1000000LL
#define DEADLINE_CHECK_NS 100000000LL
#define QUIET_NS 300000000LL      /* drain: no ack or delivery for this long ends it */
#define IDLE_TAIL_NS 300000000LL  /* idle: hold this long past the period for the last sample */
#define FEED_RESEND_NS 2000000000LL
#define STORM_TIMEOUT_NS 60000000000LL
#define HISTORY_LIMIT 200
#define RBUF_SIZE (2 * 1024 * 1024 + 65536)

static void finish(struct bn_shard *sh);

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int needs_join(const struct bn_shard *sh)
{
    return sh->cfg->scenario == BN_ROOM || sh->cfg->scenario == BN_STORM;
}

static void send_msg(struct bn_shard *sh, uint32_t type, uint32_t phase)
{
    struct bn_msg m = {type, phase, bn_now_ns()};
    if (send(sh->link_fd, &m, sizeof(m), MSG_NOSIGNAL) < 0)
        cm_warn("link", "shard %d: cannot reach the coordinator: %s", sh->index, strerror(errno));
}

/* ---- names --------------------------------------------------------------- */

static uint32_t group_of(const struct bn_shard *sh, uint32_t idx)
{
    return idx / (uint32_t)sh->cfg->storm_group;
}

static size_t room_name(const struct bn_shard *sh, uint32_t idx, char *out)
{
    if (sh->cfg->scenario == BN_STORM)
        return (size_t)snprintf(out, CM_ROOM_MAX + 1, "%s-g%u", sh->cfg->prefix, group_of(sh, idx));
    return (size_t)snprintf(out, CM_ROOM_MAX + 1, "%s", sh->cfg->room);
}

/* ---- requests ------------------------------------------------------------ */

static void send_join(struct bn_client *c, const char *room, const char *id)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "{\"op\":\"join\",\"id\":\"%s\",\"room\":\"%s\"}", id, room);
    bn_client_send(c, buf, (size_t)n);
}

/* The text every measured message carries: "t=<send time ns>;j=<n>;" padded
 * with 'x' to --message-bytes. */
static size_t message_text(const struct bn_shard *sh, char *out, size_t cap, int64_t t, uint64_t j)
{
    int n = snprintf(out, cap, "t=%" PRId64 ";j=%" PRIu64 ";", t, j);
    size_t len = n < 0 ? 0 : (size_t)n;
    size_t want = (size_t)sh->cfg->message_bytes;
    if (want > cap - 1)
        want = cap - 1;
    while (len < want)
        out[len++] = 'x';
    out[len] = '\0';
    return len;
}

static void send_chat(struct bn_shard *sh, struct bn_client *from, const char *to_user, const char *room,
                      int64_t now, uint64_t j)
{
    static char text[65536], req[65536 + 512];
    int in_window = now >= sh->t_meas0 && now < sh->t_meas1;
    if (from->state != BN_C_READY) {
        if (in_window)
            sh->res.skipped++;
        return;
    }
    message_text(sh, text, sizeof(text), now, j);
    int n = snprintf(req, sizeof(req), "{\"op\":\"send\",\"id\":\"%" PRId64 ".%" PRIu64 "\",\"%s\":\"%s\",\"text\":\"%s\"}",
                     now, j, to_user ? "to" : "room", to_user ? to_user : room, text);
    if (n < 0 || (size_t)n >= sizeof(req))
        return;
    if (bn_client_send(from, req, (size_t)n) == 0 && in_window)
        sh->res.sent++;
}

/* Paced sends: send number j is due at t_go + j / total_rate; each sender
 * gets every nsenders-th one, so senders are evenly spread in time. */
static void pace_sends(struct bn_shard *sh, int64_t now)
{
    const struct bn_config *cfg = sh->cfg;
    if (sh->nsenders == 0 || now < sh->t_go || now >= sh->t_meas1)
        return;
    double total_rate = (double)sh->nsenders * cfg->rate;
    uint64_t due = (uint64_t)((double)(now - sh->t_go) * total_rate / 1e9) + 1;
    char user[CM_USER_MAX + 1];
    while (sh->sends_done < due) {
        uint64_t j = sh->sends_done++;
        if (cfg->scenario == BN_DM) {
            uint32_t pair = (uint32_t)(j % sh->nsenders);
            uint32_t dir = (uint32_t)((j / sh->nsenders) & 1);
            struct bn_client *a = &sh->clients[2 * pair + dir];
            struct bn_client *b = &sh->clients[2 * pair + 1 - dir];
            bn_client_user(sh, b->idx, user);
            send_chat(sh, a, user, NULL, now, j);
        } else {
            struct bn_client *a = &sh->clients[sh->sender_first + j % sh->nsenders];
            send_chat(sh, a, NULL, cfg->room, now, j);
        }
    }
}

/* ---- connecting ------------------------------------------------------------ */

static void start_more(struct bn_shard *sh, int64_t now)
{
    if (sh->next_start >= sh->count)
        return;
    uint32_t target = sh->count;
    if (sh->ramp_rate > 0) {
        if (now < sh->ramp_t0)
            return;
        double due = (double)(now - sh->ramp_t0) * sh->ramp_rate / 1e9 + 1;
        if (due < (double)sh->count)
            target = (uint32_t)due;
    }
    uint32_t cap = (uint32_t)(sh->cfg->max_pending / sh->nshards);
    if (cap < 1)
        cap = 1;
    while (sh->next_start < target && sh->inflight < cap) {
        uint32_t pos = sh->next_start++;
        struct bn_client *c = &sh->clients[sh->order ? sh->order[pos] : pos];
        c->t_sched = sh->ramp_rate > 0 ? sh->ramp_t0 + (int64_t)((double)pos * 1e9 / sh->ramp_rate) : now;
        bn_client_connect(c);
    }
}

static void settle(struct bn_shard *sh, struct bn_client *c)
{
    if (sh->phase == BN_P_SETUP && c->idx != BN_FEEDER && !c->recovered) {
        c->recovered = 1; /* in SETUP the flag means "settled" */
        sh->settled++;
    }
}

static void check_setup_done(struct bn_shard *sh)
{
    if (sh->arrived || sh->settled < sh->count)
        return;
    if (sh->cfg->scenario == BN_STORM && sh->feeder.state != BN_C_DONE && sh->feeder_joined < sh->groups)
        return;
    sh->arrived = 1;
    sh->res.ramp_connected = sh->res.connected;
    send_msg(sh, BN_MSG_ARRIVE, 1);
}

/* ---- storm -------------------------------------------------------------------- */

static void feed(struct bn_shard *sh, int resend)
{
    const struct bn_config *cfg = sh->cfg;
    char req[512], room[CM_ROOM_MAX + 1];
    int64_t now = bn_now_ns();
    uint32_t g0 = sh->group_first;
    for (uint32_t g = 0; g < sh->groups; g++) {
        room_name(sh, (g0 + g) * (uint32_t)cfg->storm_group, room);
        for (long k = 0; k < cfg->storm_missed; k++) {
            size_t slot = (size_t)g * (size_t)cfg->storm_missed + (size_t)k;
            if (sh->feeder_acked[slot])
                continue;
            int n = snprintf(req, sizeof(req),
                             "{\"op\":\"send\",\"id\":\"f%u.%ld\",\"room\":\"%s\",\"text\":\"t=%" PRId64
                             ";missed %ld of %ld\"}",
                             g, k, room, now, k + 1, cfg->storm_missed);
            if (bn_client_send(&sh->feeder, req, (size_t)n) == 0) {
                if (resend)
                    sh->res.storm_feeder_resent++;
                else
                    sh->res.storm_feeder_sent++;
            }
        }
    }
    sh->feed_last_send = now;
}

static void feed_check(struct bn_shard *sh, int64_t now)
{
    uint64_t total = (uint64_t)sh->groups * (uint64_t)sh->cfg->storm_missed;
    if (sh->arrived)
        return;
    if (sh->feeder_acks >= total || sh->feeder.state != BN_C_READY) {
        if (sh->feeder_acks < total)
            cm_warn("storm_feeder", "shard %d: the feeder connection is gone; %" PRIu64 " of %" PRIu64
                    " missed messages were stored", sh->index, sh->feeder_acks, total);
        sh->res.storm_feed_s = (double)(now - sh->feed_t0) / 1e9;
        sh->arrived = 1;
        send_msg(sh, BN_MSG_ARRIVE, 2);
        return;
    }
    if (now - sh->feed_last_send > FEED_RESEND_NS)
        feed(sh, 1);
}

static void storm_drop_and_feed(struct bn_shard *sh)
{
    for (uint32_t i = 0; i < sh->count; i++)
        bn_client_close(&sh->clients[i]);
    sh->res.storm_clients = sh->count;
    sh->feed_t0 = bn_now_ns();
    sh->arrived = 0;
    feed(sh, 0);
}

static void storm_reconnect(struct bn_shard *sh, int64_t t)
{
    sh->phase = BN_P_STORM;
    sh->t_go = sh->ramp_t0 = t;
    sh->res.storm_t_go = t;
    sh->t_end = t + (int64_t)(sh->cfg->storm_window * 1e9) + STORM_TIMEOUT_NS;
    sh->ramp_rate = sh->cfg->storm_window > 0 ? (double)sh->count / sh->cfg->storm_window : 0;
    sh->next_start = 0;
    sh->storm_pending = sh->count;
    free(sh->order);
    sh->order = malloc(sizeof(uint32_t) * (sh->count ? sh->count : 1));
    if (sh->order != NULL) {
        for (uint32_t i = 0; i < sh->count; i++)
            sh->order[i] = i;
        for (uint32_t i = sh->count; i > 1; i--) { /* Fisher-Yates */
            sh->rng ^= sh->rng << 13;
            sh->rng ^= sh->rng >> 7;
            sh->rng ^= sh->rng << 17;
            uint32_t j = (uint32_t)(sh->rng % i);
            uint32_t tmp = sh->order[i - 1];
            sh->order[i - 1] = sh->order[j];
            sh->order[j] = tmp;
        }
    }
    for (uint32_t i = 0; i < sh->count; i++) {
        struct bn_client *c = &sh->clients[i];
        c->recovered = 0;
        c->target_seq = 0;
    }
    sh->meas_started = 1;
    sh->cpu_at_meas0 = cpu_seconds();
    sh->t_meas0 = t;
}

static void storm_recovered(struct bn_shard *sh, struct bn_client *c, int64_t now, int ok)
{
    if (c->recovered)
        return;
    c->recovered = ok ? 1 : 2;
    if (sh->storm_pending > 0)
        sh->storm_pending--;
    if (ok) {
        sh->res.storm_recovered++;
        sh->res.storm_t_last_recovered = now;
        bn_hist_add(&sh->res.recovery, (uint64_t)(now > c->t_sched ? now - c->t_sched : 0));
    }
}

static void send_history(struct bn_client *c)
{
    char req[256], room[CM_ROOM_MAX + 1];
    room_name(c->sh, c->idx, room);
    int n = snprintf(req, sizeof(req), "{\"op\":\"history\",\"id\":\"h\",\"conv\":\"room:%s\",\"after\":%u,\"limit\":%d}",
                     room, c->known_seq, HISTORY_LIMIT);
    c->sh->res.storm_history_requests++;
    bn_client_send(c, req, (size_t)n);
}

static void on_convs(struct bn_client *c, const struct bn_jval *convs, int64_t now)
{
    char room[CM_ROOM_MAX + 1], conv[CM_CONV_MAX + 1];
    room_name(c->sh, c->idx, room);
    int cl = snprintf(conv, sizeof(conv), "room:%s", room);
    struct bn_jiter it, o;
    struct bn_jval e, k, v;
    int64_t last = -1;
    if (convs->type == BN_J_ARRAY && bn_json_array(&it, convs->s, convs->len) == 0) {
        while (bn_json_next_elem(&it, &e) > 0) {
            if (e.type != BN_J_OBJECT || bn_json_object(&o, e.s, e.len) < 0)
                continue;
            int mine = 0;
            int64_t seq = -1;
            while (bn_json_next_member(&o, &k, &v) > 0) {
                if (bn_jval_is(&k, "conv"))
                    mine = v.type == BN_J_STRING && v.len == (size_t)cl && memcmp(v.s, conv, v.len) == 0;
                else if (bn_jval_is(&k, "last_seq"))
                    bn_jval_int(&v, &seq);
            }
            if (mine)
                last = seq;
        }
    }
    if (last < 0) {
        storm_recovered(c->sh, c, now, 0); /* the room is not in convs: membership lost */
        return;
    }
    c->target_seq = (uint32_t)last;
    if (c->known_seq >= c->target_seq)
        storm_recovered(c->sh, c, now, 1);
    else
        send_history(c);
}

static void on_history(struct bn_client *c, const struct bn_jval *msgs, int64_t now)
{
    struct bn_jiter it, o;
    struct bn_jval e, k, v;
    int count = 0;
    if (msgs->type == BN_J_ARRAY && bn_json_array(&it, msgs->s, msgs->len) == 0) {
        while (bn_json_next_elem(&it, &e) > 0) {
            count++;
            if (e.type != BN_J_OBJECT || bn_json_object(&o, e.s, e.len) < 0)
                continue;
            while (bn_json_next_member(&o, &k, &v) > 0) {
                int64_t seq;
                if (bn_jval_is(&k, "seq") && bn_jval_int(&v, &seq) == 0 && seq > (int64_t)c->known_seq) {
                    c->known_seq = (uint32_t)seq;
                    c->sh->res.storm_msgs++;
                }
            }
        }
    }
    if (c->known_seq >= c->target_seq || count == 0)
        storm_recovered(c->sh, c, now, c->known_seq >= c->target_seq);
    else
        send_history(c);
}

/* ---- events from the clients ------------------------------------------------------ */

void bn_shard_on_ready(struct bn_client *c, int64_t now)
{
    struct bn_shard *sh = c->sh;
    char room[CM_ROOM_MAX + 1];
    if (c->idx == BN_FEEDER) {
        for (uint32_t g = 0; g < sh->groups; g++) {
            room_name(sh, (sh->group_first + g) * (uint32_t)sh->cfg->storm_group, room);
            send_join(c, room, "j");
        }
        return;
    }
    if (sh->phase == BN_P_SETUP) {
        if (now > sh->res.ramp_last_ns)
            sh->res.ramp_last_ns = now;
        if (needs_join(sh)) {
            room_name(sh, c->idx, room);
            send_join(c, room, "j");
        } else {
            settle(sh, c);
        }
    } else if (sh->phase == BN_P_STORM) {
        sh->res.storm_reconnected++;
        sh->res.storm_t_last_hello = now;
        bn_client_send(c, "{\"op\":\"convs\",\"id\":\"c\"}", 23);
    }
}

void bn_shard_on_failed(struct bn_client *c, int was_ready)
{
    struct bn_shard *sh = c->sh;
    (void)was_ready;
    if (c->idx == BN_FEEDER)
        return;
    if (sh->phase == BN_P_SETUP)
        settle(sh, c);
    else if (sh->phase == BN_P_STORM)
        storm_recovered(sh, c, bn_now_ns(), 0);
}

/* "t=<ns>;..." -> ns; -1 when the text is not one of ours. */
static int64_t text_time(const struct bn_jval *text)
{
    if (text->type != BN_J_STRING || text->len < 3 || text->s[0] != 't' || text->s[1] != '=')
        return -1;
    int64_t t = 0;
    for (size_t i = 2; i < text->len && text->s[i] != ';'; i++) {
        if (text->s[i] < '0' || text->s[i] > '9')
            return -1;
        t = t * 10 + (text->s[i] - '0');
    }
    return t;
}

/* "<ns>.<n>" -> ns; -1 for other ids. */
static int64_t id_time(const struct bn_jval *id)
{
    if (id->type != BN_J_STRING || id->len == 0 || id->s[0] < '0' || id->s[0] > '9')
        return -1;
    int64_t t = 0;
    for (size_t i = 0; i < id->len && id->s[i] != '.'; i++) {
        if (id->s[i] < '0' || id->s[i] > '9')
            return -1;
        t = t * 10 + (id->s[i] - '0');
    }
    return t;
}

static void feeder_reply(struct bn_shard *sh, const struct bn_jval *op, const struct bn_jval *id,
                         const struct bn_jval *code, int64_t now)
{
    if (bn_jval_is(op, "joined")) {
        sh->feeder_joined++;
        return;
    }
    if (id->type != BN_J_STRING || id->len < 2 || id->s[0] != 'f')
        return;
    unsigned g = 0;
    long k = 0;
    char buf[32];
    size_t n = id->len < sizeof(buf) - 1 ? id->len : sizeof(buf) - 1;
    memcpy(buf, id->s, n);
    buf[n] = '\0';
    if (sscanf(buf, "f%u.%ld", &g, &k) != 2 || g >= sh->groups || k < 0 || k >= sh->cfg->storm_missed)
        return;
    if (bn_jval_is(op, "ack")) {
        size_t slot = (size_t)g * (size_t)sh->cfg->storm_missed + (size_t)k;
        if (!sh->feeder_acked[slot]) {
            sh->feeder_acked[slot] = 1;
            sh->feeder_acks++;
        }
    } else if (bn_jval_is(op, "error")) {
        sh->res.errors[code->type == BN_J_STRING ? bn_err_from(code->s, code->len) : BN_E_OTHER]++;
    }
    (void)now;
}

void bn_shard_on_text(struct bn_client *c, const char *text, size_t len, int64_t now)
{
    struct bn_shard *sh = c->sh;
    struct bn_jiter it;
    struct bn_jval k, v;
    struct bn_jval op = {BN_J_NULL, NULL, 0}, id = op, seq = op, body = op, code = op, list = op;
    if (bn_json_object(&it, text, len) < 0) {
        sh->res.protocol_errors++;
        return;
    }
    int r;
    while ((r = bn_json_next_member(&it, &k, &v)) > 0) {
        if (k.len < 2)
            continue;
        switch (k.s[0]) {
        case 'o':
            if (bn_jval_is(&k, "op"))
                op = v;
            break;
        case 'i':
            if (bn_jval_is(&k, "id"))
                id = v;
            break;
        case 's':
            if (bn_jval_is(&k, "seq"))
                seq = v;
            break;
        case 't':
            if (bn_jval_is(&k, "text"))
                body = v;
            break;
        case 'c':
            if (bn_jval_is(&k, "code"))
                code = v;
            else if (bn_jval_is(&k, "convs"))
                list = v;
            break;
        case 'm':
            if (bn_jval_is(&k, "messages"))
                list = v;
            break;
        }
    }
    if (r < 0 || op.type != BN_J_STRING) {
        sh->res.protocol_errors++;
        return;
    }
    if (c->idx == BN_FEEDER) {
        feeder_reply(sh, &op, &id, &code, now);
        return;
    }
    if (bn_jval_is(&op, "message")) {
        if (sh->phase == BN_P_STORM) {
            int64_t s;
            if (bn_jval_int(&seq, &s) == 0 && s == (int64_t)c->known_seq + 1) {
                c->known_seq = (uint32_t)s;
                sh->res.storm_live++;
            }
            return;
        }
        int64_t t = text_time(&body);
        if (t < 0) {
            sh->res.delivered_other++;
            return;
        }
        sh->last_rx = now;
        if (t >= sh->t_meas0 && t < sh->t_meas1) {
            sh->res.delivered++;
            bn_hist_add(&sh->res.latency, (uint64_t)(now > t ? now - t : 0));
        } else {
            sh->res.delivered_other++;
        }
    } else if (bn_jval_is(&op, "ack")) {
        int64_t t = id_time(&id);
        sh->last_rx = now;
        if (t >= sh->t_meas0 && t < sh->t_meas1) {
            sh->res.acked++;
            bn_hist_add(&sh->res.ack_latency, (uint64_t)(now > t ? now - t : 0));
        }
    } else if (bn_jval_is(&op, "error")) {
        int64_t t = id_time(&id);
        if (t < 0 || (t >= sh->t_meas0 && t < sh->t_meas1))
            sh->res.errors[code.type == BN_J_STRING ? bn_err_from(code.s, code.len) : BN_E_OTHER]++;
        if (t < 0 && id.type == BN_J_STRING && id.len == 1) {
            if (id.s[0] == 'j' && sh->phase == BN_P_SETUP) {
                c->joined = 2;
                settle(sh, c);
            } else if ((id.s[0] == 'c' || id.s[0] == 'h') && sh->phase == BN_P_STORM) {
                storm_recovered(sh, c, now, 0);
            }
        }
        if (t >= 0)
            sh->last_rx = now;
    } else if (bn_jval_is(&op, "joined")) {
        c->joined = 1;
        settle(sh, c);
    } else if (bn_jval_is(&op, "convs")) {
        if (sh->phase == BN_P_STORM)
            on_convs(c, &list, now);
    } else if (bn_jval_is(&op, "history")) {
        if (sh->phase == BN_P_STORM)
            on_history(c, &list, now);
    } else if (bn_jval_is(&op, "resync")) {
        sh->res.resyncs++;
    } else {
        sh->res.unknown_ops++;
    }
}

/* ---- phases --------------------------------------------------------------------------- */

static void go(struct bn_shard *sh, uint32_t phase, int64_t t)
{
    const struct bn_config *cfg = sh->cfg;
    sh->arrived = 0;
    if (phase == 1) {
        sh->phase = BN_P_RUN;
        sh->t_go = t;
        sh->res.ready_at_go = 0;
        for (uint32_t i = 0; i < sh->count; i++)
            if (sh->clients[i].state == BN_C_READY)
                sh->res.ready_at_go++;
        switch (cfg->scenario) {
        case BN_IDLE:
            sh->t_meas0 = t;
            sh->t_meas1 = t + (int64_t)(cfg->duration * 1e9);
            sh->t_end = sh->t_meas1 + IDLE_TAIL_NS;
            break;
        case BN_DM:
        case BN_ROOM:
            sh->t_meas0 = t + (int64_t)(cfg->warmup * 1e9);
            sh->t_meas1 = sh->t_meas0 + (int64_t)(cfg->duration * 1e9);
            sh->t_end = sh->t_meas1 + (int64_t)(cfg->drain * 1e9);
            break;
        case BN_STORM:
            sh->t_meas0 = sh->t_meas1 = 0;
            storm_drop_and_feed(sh);
            break;
        }
    } else if (phase == 2 && cfg->scenario == BN_STORM) {
        storm_reconnect(sh, t);
    }
}

static void on_link(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct bn_shard *sh = arg;
    struct bn_msg m;
    ssize_t n = recv(fd, &m, sizeof(m), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n != (ssize_t)sizeof(m)) {
        if (!sh->done)
            cm_error("link", "shard %d: the coordinator went away", sh->index);
        event_del(sh->link_ev);
        finish(sh);
        sh->hung_up = 1;
        return;
    }
    if (m.type == BN_MSG_GO)
        go(sh, m.phase, m.t_ns);
}

static void progress(struct bn_shard *sh, int64_t now)
{
    static const char *const names[] = {"setup", "run", "storm", "done"};
    const struct bn_result *r = &sh->res;
    fprintf(stderr,
            "chatmi-bench[%d] %5.1fs %s: connected %" PRIu64 " failed %" PRIu64 " in-flight %u | sent %" PRIu64
            " acked %" PRIu64 " delivered %" PRIu64 " | storm recovered %" PRIu64 "\n",
            sh->index, (double)(now - sh->ramp_first) / 1e9, names[sh->phase], r->connected,
            r->fail_connect + r->fail_4xx + r->fail_5xx + r->fail_status_other + r->fail_handshake +
                r->fail_timeout + r->fail_closed,
            sh->inflight, r->sent, r->acked, r->delivered, r->storm_recovered);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bn_shard *sh = arg;
    const struct bn_config *cfg = sh->cfg;
    int64_t now = bn_now_ns();
    if (sh->last_tick != 0 && (sh->phase == BN_P_RUN || sh->phase == BN_P_STORM)) {
        int64_t late = now - sh->last_tick - TICK_NS;
        bn_hist_add(&sh->res.lag, (uint64_t)(late > 0 ? late : 0));
    }
    sh->last_tick = now;
    if (cfg->progress && now - sh->last_progress >= 1000000000LL) {
        sh->last_progress = now;
        progress(sh, now);
    }
    if (now - sh->last_deadline_check >= DEADLINE_CHECK_NS &&
        (sh->phase != BN_P_RUN || cfg->scenario == BN_STORM)) {
        sh->last_deadline_check = now;
        bn_clients_check_deadlines(sh, now);
    }
    switch (sh->phase) {
    case BN_P_SETUP:
        start_more(sh, now);
        check_setup_done(sh);
        break;
    case BN_P_RUN:
        if (cfg->scenario == BN_STORM) {
            feed_check(sh, now);
            break;
        }
        if (!sh->meas_started && now >= sh->t_meas0) {
            sh->meas_started = 1;
            sh->cpu_at_meas0 = cpu_seconds();
        }
        if (sh->meas_started && !sh->meas_ended && now >= sh->t_meas1) {
            sh->meas_ended = 1;
            double cpu = cpu_seconds() - sh->cpu_at_meas0;
            sh->res.cpu_run_s = sh->res.cpu_run_max_s = cpu;
            sh->res.run_s = (double)(sh->t_meas1 - sh->t_meas0) / 1e9;
        }
        if (cfg->scenario == BN_IDLE) {
            if (now >= sh->t_end)
                finish(sh);
            break;
        }
        pace_sends(sh, now);
        if (sh->meas_ended) {
            uint64_t answered = sh->res.acked;
            for (int i = 0; i < BN_E__COUNT; i++)
                answered += sh->res.errors[i];
            if ((answered >= sh->res.sent && now - sh->last_rx > QUIET_NS) || now >= sh->t_end)
                finish(sh);
        }
        break;
    case BN_P_STORM:
        start_more(sh, now);
        if ((sh->next_start >= sh->count && sh->storm_pending == 0) || now >= sh->t_end)
            finish(sh);
        break;
    case BN_P_DONE:
        break;
    }
}

static void finish(struct bn_shard *sh)
{
    if (sh->done)
        return;
    int64_t now = bn_now_ns();
    if (!sh->meas_ended && sh->meas_started) {
        double cpu = cpu_seconds() - sh->cpu_at_meas0;
        sh->res.cpu_run_s = sh->res.cpu_run_max_s = cpu;
        sh->res.run_s = (double)(now - sh->t_meas0) / 1e9;
        sh->meas_ended = 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    sh->res.cpu_total_s = cpu_seconds();
    sh->res.maxrss_kb = ru.ru_maxrss;
    sh->phase = BN_P_DONE;
    sh->done = 1;
    event_del(sh->tick_ev);
    /* The connections stay up until the coordinator has taken its last
     * sample and hangs up (on_link). */

    struct {
        struct bn_msg m;
        struct bn_result r;
    } *out = malloc(sizeof(*out));
    if (out != NULL) {
        out->m.type = BN_MSG_RESULT;
        out->m.phase = 0;
        out->m.t_ns = now;
        out->r = sh->res;
        if (send(sh->link_fd, out, sizeof(*out), MSG_NOSIGNAL) < 0) {
            cm_error("link", "shard %d: cannot send the result: %s", sh->index, strerror(errno));
            sh->hung_up = 1;
        }
        free(out);
    }
}

/* ---- set-up ------------------------------------------------------------------------------ */

int bn_shard_init(struct bn_shard *sh, const struct bn_config *cfg, struct event_base *base, int index,
                  int nshards, uint32_t first, uint32_t count, int link_fd)
{
    memset(sh, 0, sizeof(*sh));
    sh->cfg = cfg;
    sh->base = base;
    sh->index = index;
    sh->nshards = nshards;
    sh->first = first;
    sh->count = count;
    sh->link_fd = link_fd;
    sh->clients = calloc(count ? count : 1, sizeof(*sh->clients));
    sh->rbuf_cap = RBUF_SIZE;
    sh->rbuf = malloc(sh->rbuf_cap);
    if (sh->clients == NULL || sh->rbuf == NULL)
        return -1;
    if (cm_random_bytes(&sh->seed, sizeof(sh->seed)) < 0)
        sh->seed = (uint64_t)bn_now_ns() ^ ((uint64_t)getpid() << 32);
    sh->rng = sh->seed | 1;
    bn_result_init(&sh->res);
    sh->res.processes = 1;
    for (uint32_t i = 0; i < count; i++) {
        sh->clients[i].sh = sh;
        sh->clients[i].idx = first + i;
        sh->clients[i].fd = -1;
    }
    sh->feeder.sh = sh;
    sh->feeder.idx = BN_FEEDER;
    sh->feeder.fd = -1;

    switch (cfg->scenario) {
    case BN_DM:
        sh->nsenders = count / 2;
        break;
    case BN_ROOM:
        if (first < (uint32_t)cfg->senders) {
            uint32_t end = first + count < (uint32_t)cfg->senders ? first + count : (uint32_t)cfg->senders;
            sh->sender_first = 0;
            sh->nsenders = end - first;
        }
        break;
    case BN_STORM: {
        uint32_t g = (uint32_t)cfg->storm_group;
        sh->group_first = first / g;
        sh->groups = count ? (first + count - 1) / g - first / g + 1 : 0;
        sh->feeder_acked = calloc((size_t)sh->groups * (size_t)cfg->storm_missed + 1, 1);
        if (sh->feeder_acked == NULL)
            return -1;
        break;
    }
    case BN_IDLE:
        break;
    }

    sh->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, sh);
    sh->link_ev = event_new(base, link_fd, EV_READ | EV_PERSIST, on_link, sh);
    if (sh->tick_ev == NULL || sh->link_ev == NULL)
        return -1;
    struct timeval tick = {0, TICK_NS / 1000};
    event_add(sh->tick_ev, &tick);
    event_add(sh->link_ev, NULL);

    int64_t now = bn_now_ns();
    sh->ramp_t0 = sh->ramp_first = now;
    sh->res.ramp_first_ns = now;
    sh->ramp_rate = cfg->ramp / nshards;
    sh->phase = BN_P_SETUP;
    if (cfg->scenario == BN_STORM)
        bn_client_connect(&sh->feeder);
    return 0;
}

void bn_shard_free(struct bn_shard *sh)
{
    if (sh->clients != NULL) {
        for (uint32_t i = 0; i < sh->count; i++)
            bn_client_close(&sh->clients[i]);
    }
    bn_client_close(&sh->feeder);
    if (sh->tick_ev != NULL)
        event_free(sh->tick_ev);
    if (sh->link_ev != NULL)
        event_free(sh->link_ev);
    free(sh->clients);
    free(sh->rbuf);
    free(sh->order);
    free(sh->feeder_acked);
    memset(sh, 0, sizeof(*sh));
}

struct event_base *bn_event_base_new(void)
{
    struct event_config *ec = event_config_new();
    if (ec == NULL)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    struct event_base *base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

int bn_shard_main(const struct bn_config *cfg, int index, int nshards, uint32_t first, uint32_t count,
                  int link_fd)
{
    struct event_base *base = bn_event_base_new();
    struct bn_shard *sh = malloc(sizeof(*sh));
    if (base == NULL || sh == NULL || bn_shard_init(sh, cfg, base, index, nshards, first, count, link_fd) < 0) {
        cm_error("start_failed", "bench process %d: out of memory or event set-up failed", index);
        return 1;
    }
    while (!sh->hung_up && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    bn_shard_free(sh);
    free(sh);
    event_base_free(base);
    return 0;
}
