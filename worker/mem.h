/* mem.h: the worker's out-of-memory policy in one place.
 *
 * The worker aborts with a message when an allocation fails instead of
 * propagating the failure: a batch it cannot finish stays in its processing
 * list, and the reaper of another worker hands it on after the crash. */
#ifndef CHATMI_WORKER_MEM_H
#define CHATMI_WORKER_MEM_H

#include <stddef.h>
#include <msgpack.h>

/* Writes a message to stderr and aborts. */
void wk_oom(void) __attribute__((noreturn));

/* malloc/calloc/realloc that never return NULL (they abort instead). A size
 * of 0 is treated as 1, so the result can always be passed to free(). */
void *wk_xmalloc(size_t size);
void *wk_xcalloc(size_t n, size_t size);
void *wk_xrealloc(void *p, size_t size);

/* Initialises pk to append to sb, aborting on allocation failure so a
 * packed record can never come out silently truncated. */
void wk_packer_init(msgpack_packer *pk, msgpack_sbuffer *sb);

/* Appends len raw bytes to sb (already packed MessagePack). Aborts on
 * allocation failure. */
void wk_sbuffer_append(msgpack_sbuffer *sb, const char *data, size_t len);

#endif
