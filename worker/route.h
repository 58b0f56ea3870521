/* route.h: where the worker's commands go on a Redis Cluster (pure: no I/O,
 * for conn.c and the unit tests).
 *
 * Every command goes to the master of one slot: its first key's, or for
 * commands without a key (MULTI, EXEC, ROLE, WAIT, ...) the slot the caller
 * pinned (conn_pin: the lane's queue partition). A script's slot is its
 * KEYS[1]; the worker's scripts only name keys of one hash tag. */
#ifndef CHATMI_WORKER_ROUTE_H
#define CHATMI_WORKER_ROUTE_H

#include <stddef.h>

/* The fanned bitmap of a conversation (scripts.c) is a ring of this many
 * bits, WK_FANNED_PARTS per message. */
#define WK_FANNED_RING 262144
#define WK_FANNED_PARTS 64

/* The slot of a command (argv[0] is its name, any case): the slot of
 * argv[1]; EVAL/EVALSHA: of argv[3] when numkeys (argv[2]) is not 0;
 * pin for a keyless command or one without arguments. */
unsigned wk_route_slot(int argc, const char *const *argv, const size_t *argvlen, unsigned pin);

/* The bit of part `part` of message seq in the fanned ring (as the fan-out
 * scripts compute it). */
long wk_fanned_bit(long long seq, unsigned part);

/* --partitions: "all", or a comma list of partitions and ranges ("0-3,6")
 * of the n queue partitions. Sets take[p] to 1 for each partition named
 * (take has n entries) and returns how many; -1 with a message in err for
 * a malformed list, a partition >= n, or one named twice. */
int wk_partitions_parse(const char *s, unsigned n, unsigned char *take, char *err, size_t errlen);

#endif
