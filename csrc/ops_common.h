/* SPDX-License-Identifier: MIT */
/*
 * Internal to csrc/ops.c, ops_sync.c, ops_log.c and ops_chan.c (the per-operation C implementations for
 * bindings such as Python): seq_cst atomics, the range check every call makes against its
 * mapping, process identity and forks, and the test-only fault points. The functions below are
 * defined once, in ops.c; their names do not start with "shmkit_", so csrc/exports.map does not
 * export them (and -fvisibility=hidden keeps them inside the library).
 */
#ifndef SHMKIT_OPS_COMMON_H
#define SHMKIT_OPS_COMMON_H

#include <errno.h>
#include <stdint.h>

#include "shmkit.h"

#define SEQ __ATOMIC_SEQ_CST

static inline uint32_t ld32(const uint32_t *p) { return __atomic_load_n(p, SEQ); }
static inline void st32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, SEQ); }
static inline uint32_t xchg32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, SEQ); }
static inline uint32_t add32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, SEQ); }
static inline int cas32(uint32_t *p, uint32_t e, uint32_t d)
{
	return __atomic_compare_exchange_n(p, &e, d, 0, SEQ, SEQ);
}
/* The CAS that returns the value it found (Atomics.compareExchange). */
static inline uint32_t cmpxchg32(uint32_t *p, uint32_t e, uint32_t d)
{
	__atomic_compare_exchange_n(p, &e, d, 0, SEQ, SEQ);
	return e;
}
static inline uint64_t ld64(const uint64_t *p) { return __atomic_load_n(p, SEQ); }
static inline int cas64(uint64_t *p, uint64_t e, uint64_t d)
{
	return __atomic_compare_exchange_n(p, &e, d, 0, SEQ, SEQ);
}

/* Linux's PID_MAX_LIMIT: no pid is larger (a corrupt owner word names no process). */
#define PID_LIMIT 0x400000u
/* The first wait of a park on a counter the peer may publish with a plain (release) store
 * (spsc rings on either side, so also spsc and spsc-ordered channel receivers on the tail and
 * spsc-ordered senders on the head, spsc log readers;
 * src/wait.ts FIRST_WAIT_MS): the peer's wake check may read the waiter count before that store
 * is visible to a process registering right then; a wake lost that way costs at most this
 * (docs/layout "Waiting"). */
#define FIRST_WAIT_MS 0.2

/* shmkit_futex_wait on the counter at `offset` of mapping `id` for up to `ms`, the first
 * FIRST_WAIT_MS of it separately: a park on a counter published plainly (above). The second wait's
 * futex compares the word with w0 again, so a publish whose wake was lost ends it at once. Returns
 * what shmkit_futex_wait returns. (ops_log.c parks on dataSeq, not on the counter, and re-checks
 * between the two waits itself.) */
static inline int32_t futex_wait_short_first(int32_t id, double offset, uint32_t w0, double ms)
{
	if (ms <= FIRST_WAIT_MS)
		return shmkit_futex_wait(id, offset, w0, ms);
	int32_t rc = shmkit_futex_wait(id, offset, w0, FIRST_WAIT_MS);
	return rc == -ETIMEDOUT ? shmkit_futex_wait(id, offset, w0, ms - FIRST_WAIT_MS) : rc;
}

/* Base address of [offset, offset + len) of mapping id (offset a multiple of 64 inside the
 * mapping), or NULL with *err = -EBADF (no such mapping) or -EINVAL. */
uint8_t *ops_range_at(int32_t id, double offset, uint64_t len, int *err);

/* Forks: ops_watch_forks() registers (once) a pthread_atfork child handler that bumps the fork
 * generation; a local struct stamped with an older ops_fork_gen() belongs to the parent. */
void ops_watch_forks(void);
uint32_t ops_fork_gen(void);

/* The low 32 bits of a process's start time (0 when it cannot be read). */
uint32_t ops_start_lo(uint32_t pid);
/* src/ring.ts / src/log.ts holderAlive: (pid, low 32 bits of its start time) names a running process. */
int ops_holder_alive(uint32_t pid, uint32_t start_lo);
/* src/mempool.ts / src/channel.ts identityAlive: dead only when certainly gone (no such process, a
 * zombie, or another start time); when liveness cannot be told, alive (never rob). */
int ops_identity_alive(uint32_t pid, uint32_t start_lo);

/* Claims an spsc ring's producer (producer = 1) or consumer role for this ring local if it does
 * not hold it yet (docs/layout/ring.md: a dead holder's role is taken over): 0, -EBUSY, -errno.
 * Channel mode 2 (csrc/ops_chan.c) runs its own protocol on the roles' ring. */
struct shmkit_ring_local;
int ops_ring_role(struct shmkit_ring_local *l, int producer);

/* Decrements *w if it is non-zero (seq_cst CAS loop); 1 if it did. A park gives back its waiter
 * registration this way unless close() (maybe on another thread) already took it. */
int ops_take_one(uint32_t *w);

/* Test-only fault points (armed by shmkit_ops_fault "point:n"): the n-th pass SIGKILLs the process. */
extern int32_t ops_fault_left;
void ops_fault_hit(const char *point);
#define FAULT(p)                              \
	do {                                  \
		if (ops_fault_left > 0)       \
			ops_fault_hit(p);     \
	} while (0)

#endif
