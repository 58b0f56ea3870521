/* scripts.h: the worker's Lua scripts (Redis 7 EVAL/EVALSHA).
 *
 * Each script touches the keys of one hash tag only, so a Redis Cluster can
 * run it on one node. Redis 7 replicates the effects of a script, not the
 * script, so the scripts may read TIME before writing. */
#ifndef CHATMI_WORKER_SCRIPTS_H
#define CHATMI_WORKER_SCRIPTS_H

enum wk_script {
    /* KEYS queue, proc; ARGV max. Moves up to max items from the head of
     * queue to the tail of proc; returns them in order. */
    WK_SCRIPT_TAKE = 0,
    /* KEYS seq, log, members[, idem]; ARGV is_room, conv, from, text, msg id,
     * history max, idempotency ttl (s), envelope fingerprint (16 chars).
     * Returns {status, packed message, members}: status 0 stored now, 1 an
     * earlier send with this id (a client retry), 2 the same envelope again
     * (a redelivery after a crash: fan out again); {-1} the sender is not a
     * member of the room, {-2} the room does not exist. */
    WK_SCRIPT_SEND,
    /* KEYS members, log; ARGV user to check ("" when the worker checked),
     * mode after|before|latest, bound, limit. Returns {0, message...}
     * ascending by seq, {-1} not a member, {-2} no such room. */
    WK_SCRIPT_HISTORY,
    /* KEYS workers, inbound, fanout; ARGV worker id, ttl ms, inbound proc
     * key prefix, fanout proc key prefix. Sets the worker's deadline to the
     * Redis clock + ttl, then returns the processing lists of every worker
     * past its deadline to the head of their queues, in order, and removes
     * those workers. Returns {items moved, workers reaped}. */
    WK_SCRIPT_BEAT,
    /* KEYS fanned (the conversation's bitmap of fanned-out seqs); ARGV seq,
     * part, packed delivery, channel... Publishes the delivery to every
     * channel unless this (seq, part) was fanned out already, all in one
     * step: a job redone after a crash, or handed on twice, never reaches a
     * client twice. Returns the number of channels published to (0: a
     * repeat). Not on a Redis Cluster, where those channels live in other
     * slots than the bitmap: see WK_SCRIPT_FANOUT_SHARD. */
    WK_SCRIPT_FANOUT,
    /* Redis Cluster (fanout.c, "sharded"). KEYS fanned[, room channel];
     * ARGV seq, part, delivery. Marks (seq, part) as fanned out and, when
     * it was not yet and a room channel is given (it shares the
     * conversation's slot), SPUBLISHes the delivery to it. Returns 1, or 0
     * when the part was marked already. */
    WK_SCRIPT_FANOUT_SHARD,
    WK_SCRIPT_COUNT
};

/* The Lua source (static storage). */
const char *wk_script_source(enum wk_script s);
/* A short name for logs ("send"). */
const char *wk_script_name(enum wk_script s);

#endif
