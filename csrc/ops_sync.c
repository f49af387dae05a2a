/* SPDX-License-Identifier: MIT */
/*
 * Mutex, Semaphore and Condition operations in C, for bindings whose per-call cost is high
 * (Python): one library call per operation. A second implementation of docs/layout/locks.md,
 * step for step the same as src/mutex.ts, src/semaphore.ts and src/condition.ts (the comments name
 * the same steps: A1..A7, C1, C2, R1, R2, W1..W3, N1, N2), held against the TypeScript one by the
 * cross-language tests (tests/python_locks_test.ts).
 *
 * Every call takes (mapping id, object offset) and re-checks the range against the mapping (a bad
 * id is -EBADF, a bad offset -EINVAL); a Mutex call also takes the slot count N the caller read at
 * attach and checks it against the header's slotCount (-SHMKIT_EBADHDR when it changed), so every
 * slot index stays inside [offset + 128, offset + 128 + 8N). Shared words that break an invariant
 * are -SHMKIT_EBADHDR. Every loop over shared state is bounded. Only *_park sleeps, at most
 * slice_ms (sliced by shmkit_futex_wait, -EINTR on a handled signal).
 */
#define _GNU_SOURCE
#include "shmkit.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "ops_common.h"



/* A timeout in ms for one park: >= 0 and not NaN (Infinity is allowed; callers pass slices). */
static int valid_slice(double ms) { return ms >= 0; }

/* ------------------------------------------------------------------------------------------ */
/* Mutex (kind 4)                                                                               */

#define MX_LOCK 64
#define MX_SLOTCOUNT 68
#define MX_RECOVERIES 72
#define MX_SLOTS 128
#define MX_MAX_SLOTS 0xffffu
#define LOCK_OWNER 0xffffu
#define LOCK_ABANDONED 0x10000u
#define LOCK_WAITERS 0x80000000u
#define LOCK_VALID (LOCK_OWNER | LOCK_ABANDONED | LOCK_WAITERS)
#define MX_STEPS 1024
#define PID_BITS 22
#define PID_MASK 0x3fffffull
#define UNKNOWN_START ((1ull << 42) - 1)

/* Results of one acquisition attempt (src/mutex.ts GOT .. BUSY_SELF). */
#define MX_GOT 0
#define MX_GOT_RECOVERED 1
#define MX_BUSY_OTHER 2
#define MX_BUSY_SELF 3

struct mx {
	uint32_t *lock;
	uint32_t *recoveries;
	uint64_t *ids;
	uint32_t n;
};

static int mx_at(int32_t id, double offset, uint32_t n, struct mx *m)
{
	int err;
	if (n < 1 || n > MX_MAX_SLOTS)
		return -EINVAL;
	uint8_t *b = ops_range_at(id, offset, MX_SLOTS + 8ull * n, &err);
	if (!b)
		return err;
	if (ld32((uint32_t *)(b + MX_SLOTCOUNT)) != n)
		return -SHMKIT_EBADHDR; /* the header changed since attach: not the mutex we validated */
	m->lock = (uint32_t *)(b + MX_LOCK);
	m->recoveries = (uint32_t *)(b + MX_RECOVERIES);
	m->ids = (uint64_t *)(b + MX_SLOTS);
	m->n = n;
	return 0;
}

/* This process as a slot identity: start * 2^22 + pid (src/mutex.ts SELF_ID), per pid (forks). */
static uint32_t self_pid;
static uint64_t self_ident;

static uint64_t self_id(void)
{
	uint32_t pid = (uint32_t)shmkit_getpid();
	if (__atomic_load_n(&self_pid, __ATOMIC_ACQUIRE) == pid)
		return __atomic_load_n(&self_ident, __ATOMIC_RELAXED);
	double st = shmkit_proc_start_time((int32_t)pid);
	uint64_t s = st >= 0 && st < (double)UNKNOWN_START ? (uint64_t)st : UNKNOWN_START;
	uint64_t v = (s << PID_BITS) | ((uint64_t)pid & PID_MASK);
	__atomic_store_n(&self_ident, v, __ATOMIC_RELAXED);
	__atomic_store_n(&self_pid, pid, __ATOMIC_RELEASE);
	return v;
}

/* src/mutex.ts identityAlive: true unless certainly dead; an unreadable entry counts as alive. */
static int identity_alive(uint64_t v)
{
	if (v == 0)
		return 0;
	if (v == self_id())
		return 1;
	uint64_t start = v >> PID_BITS;
	int32_t pid = (int32_t)(v & PID_MASK);
	if (pid == 0)
		return 0;
	return shmkit_proc_alive(pid, start == UNKNOWN_START ? -1.0 : (double)start) != 0;
}

/* The lock word, checked against I1/I2. */
static int mx_word(const struct mx *m, uint32_t *out)
{
	uint32_t c = ld32(m->lock); /* A2 */
	uint32_t owner = c & LOCK_OWNER;
	if ((c & ~LOCK_VALID) != 0 || owner > m->n || (owner != 0 && (c & LOCK_ABANDONED) != 0))
		return -SHMKIT_EBADHDR;
	*out = c;
	return 0;
}

int32_t shmkit_mutex_check(int32_t id, double offset, uint32_t n)
{
	struct mx m;
	uint32_t c;
	int r = mx_at(id, offset, n, &m);
	return r < 0 ? r : mx_word(&m, &c);
}

int32_t shmkit_mutex_claim(int32_t id, double offset, uint32_t n)
{
	struct mx m;
	uint32_t c;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	uint64_t me = self_id();
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < n; i++) {
			if ((r = mx_word(&m, &c)) < 0)
				return r;
			if ((c & LOCK_OWNER) == i + 1)
				continue; /* I3 */
			uint64_t v = ld64(&m.ids[i]); /* A7 */
			if (v == 0 || (pass == 1 && !identity_alive(v))) {
				if ((r = mx_word(&m, &c)) < 0)
					return r;
				if ((c & LOCK_OWNER) == i + 1)
					continue; /* I3, re-checked after liveness */
				if (cas64(&m.ids[i], v, me)) /* C2 */
					return (int32_t)(i + 1);
			}
		}
	}
	return -ENOSPC;
}

int32_t shmkit_mutex_release_slot(int32_t id, double offset, uint32_t n, uint32_t slot)
{
	struct mx m;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	if (slot < 1 || slot > n)
		return -EINVAL;
	cas64(&m.ids[slot - 1], self_id(), 0); /* C1 */
	return 0;
}

static void count_recovery(const struct mx *m) { __atomic_fetch_add(m->recoveries, 1, SEQ); }

/* flags of shmkit_mutex_try */
#define MX_CHECK 1u  /* test the holder's liveness, take over from a dead one */
#define MX_PARKED 2u /* the caller slept before: keep WAITERS set */
#define MX_FAST 4u   /* first the A1 fast path (CAS 0 -> slot) */

int32_t shmkit_mutex_try(int32_t id, double offset, uint32_t n, uint32_t slot, uint32_t flags)
{
	struct mx m;
	uint32_t c;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	if (slot < 1 || slot > n || (flags & ~(MX_CHECK | MX_PARKED | MX_FAST)) != 0)
		return -EINVAL;
	/* A1: take a free lock (acquire). */
	if ((flags & MX_FAST) && cmpxchg32(m.lock, 0, slot) == 0)
		return MX_GOT;
	for (int step = 0; step < MX_STEPS; step++) {
		if ((r = mx_word(&m, &c)) < 0)
			return r;
		uint32_t owner = c & LOCK_OWNER;
		if (owner == 0) {
			uint32_t next = slot | (c & LOCK_WAITERS) | ((flags & MX_PARKED) ? LOCK_WAITERS : 0);
			/* A3: take the free (or abandoned) lock. */
			if (cmpxchg32(m.lock, c, next) == c) {
				if (c & LOCK_ABANDONED) {
					count_recovery(&m);
					return MX_GOT_RECOVERED;
				}
				return MX_GOT;
			}
			continue;
		}
		/* A4: the holder's identity (it cannot change while named, I3). */
		uint64_t v = ld64(&m.ids[owner - 1]);
		if (v == self_id())
			return MX_BUSY_SELF;
		if (!(flags & MX_CHECK))
			return MX_BUSY_OTHER;
		if (identity_alive(v))
			return MX_BUSY_OTHER;
		/* A5: take over from the dead holder, only if the word still names it. */
		if (cmpxchg32(m.lock, c, slot | (c & LOCK_WAITERS)) == c) {
			count_recovery(&m);
			return MX_GOT_RECOVERED;
		}
	}
	return MX_BUSY_OTHER; /* bounded: the word kept changing */
}

int32_t shmkit_mutex_park(int32_t id, double offset, uint32_t n, double slice_ms)
{
	struct mx m;
	uint32_t c = 0, w = 0;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	if (!valid_slice(slice_ms))
		return -EINVAL;
	/* Sets WAITERS on a held word (src/mutex.ts #markWaiters). */
	for (int step = 0;; step++) {
		if ((r = mx_word(&m, &c)) < 0)
			return r;
		if ((c & LOCK_OWNER) == 0)
			return 2; /* free: retry at once */
		if (step == MX_STEPS || (c & LOCK_WAITERS) != 0) {
			w = c;
			break;
		}
		/* A6: announce a sleeper; pairs with R1's exchange, which then wakes. */
		if (cmpxchg32(m.lock, c, c | LOCK_WAITERS) == c) {
			w = c | LOCK_WAITERS;
			break;
		}
	}
	/* W1: sleep while the word still reads w (the kernel compares); pairs with R1's wake. */
	r = shmkit_futex_wait(id, offset + MX_LOCK, w, slice_ms);
	if (r >= 0 || r == -EAGAIN)
		return 0; /* woken, or the word moved */
	return r == -ETIMEDOUT ? 1 : r;
}

int32_t shmkit_mutex_pass_wake(int32_t id, double offset, uint32_t n, uint32_t seen)
{
	struct mx m;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	if (ld32(m.lock) != seen)
		shmkit_futex_wake(id, offset + MX_LOCK, 1);
	return 0;
}

int32_t shmkit_mutex_unlock(int32_t id, double offset, uint32_t n, uint32_t slot)
{
	struct mx m;
	uint32_t c;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	if (slot < 1 || slot > n)
		return -EINVAL;
	if ((r = mx_word(&m, &c)) < 0)
		return r;
	if ((c & LOCK_OWNER) != slot)
		return -EPERM;
	/* R1: release the lock; pairs with A1/A3/A5 and A6. */
	uint32_t prev = __atomic_exchange_n(m.lock, 0, SEQ);
	if (prev & LOCK_WAITERS)
		shmkit_futex_wake(id, offset + MX_LOCK, 1);
	return 0;
}

int32_t shmkit_mutex_abandon(int32_t id, double offset, uint32_t n, uint32_t slot)
{
	struct mx m;
	uint32_t c;
	int r = mx_at(id, offset, n, &m);
	if (r < 0)
		return r;
	if (slot < 1 || slot > n)
		return -EINVAL;
	for (int step = 0; step < MX_STEPS; step++) {
		if ((r = mx_word(&m, &c)) < 0)
			return r;
		if ((c & LOCK_OWNER) != slot)
			return 0;
		/* R2: release as abandoned; pairs with A3. */
		if (cmpxchg32(m.lock, c, LOCK_ABANDONED | (c & LOCK_WAITERS)) == c) {
			if (c & LOCK_WAITERS)
				shmkit_futex_wake(id, offset + MX_LOCK, 1);
			return 0;
		}
	}
	return -SHMKIT_EBADHDR; /* the word never held still */
}

/* ------------------------------------------------------------------------------------------ */
/* Semaphore (kind 5)                                                                           */

#define SEM_VALUE 64
#define SEM_WAITERS 68
#define SEM_BYTES 128
#define SEM_MAX 0x7fffffffu
#define SEM_STEPS (1 << 14)

static uint32_t *sem_at(int32_t id, double offset, int *err)
{
	return (uint32_t *)(void *)ops_range_at(id, offset, SEM_BYTES, err);
}

/* The count, checked against S1. */
static int sem_load(const uint32_t *b, uint32_t *out)
{
	uint32_t v = ld32(b + SEM_VALUE / 4); /* A2 */
	if (v > SEM_MAX)
		return -SHMKIT_EBADHDR;
	*out = v;
	return 0;
}

int32_t shmkit_sem_value(int32_t id, double offset)
{
	int err;
	uint32_t v, *b = sem_at(id, offset, &err);
	if (!b)
		return err;
	err = sem_load(b, &v);
	return err < 0 ? err : (int32_t)v;
}

int32_t shmkit_sem_try(int32_t id, double offset)
{
	int err;
	uint32_t v, *b = sem_at(id, offset, &err);
	if (!b)
		return err;
	for (int step = 0; step < SEM_STEPS; step++) {
		if ((err = sem_load(b, &v)) < 0)
			return err;
		if (v == 0)
			return 0;
		/* A1: take a unit; pairs with R1 in release. */
		if (cmpxchg32(b + SEM_VALUE / 4, v, v - 1) == v)
			return 1;
	}
	return 0;
}

int32_t shmkit_sem_release(int32_t id, double offset, uint32_t n)
{
	int err;
	uint32_t v, *b = sem_at(id, offset, &err);
	if (!b)
		return err;
	if (n < 1 || n > SEM_MAX)
		return -EINVAL;
	for (int step = 0;; step++) {
		if (step == SEM_STEPS)
			return -SHMKIT_EBADHDR; /* the count keeps changing under every CAS */
		if ((err = sem_load(b, &v)) < 0)
			return err;
		if (n > SEM_MAX - v)
			return -EOVERFLOW;
		/* R1: add the units; pairs with A1 and the kernel's check in W1. */
		if (cmpxchg32(b + SEM_VALUE / 4, v, v + n) == v)
			break;
	}
	/* R2: any sleepers? pairs with W1's add. */
	if (ld32(b + SEM_WAITERS / 4) != 0)
		shmkit_futex_wake(id, offset + SEM_VALUE, (int32_t)n);
	return 0;
}

int32_t shmkit_sem_park(int32_t id, double offset, double slice_ms)
{
	int err;
	uint32_t v, *b = sem_at(id, offset, &err);
	if (!b)
		return err;
	if (!valid_slice(slice_ms))
		return -EINVAL;
	/* W1: announce a sleeper, then re-read the count; pairs with R2 in release. */
	__atomic_fetch_add(b + SEM_WAITERS / 4, 1, SEQ);
	int r = sem_load(b, &v);
	if (r == 0 && v == 0)
		r = shmkit_futex_wait(id, offset + SEM_VALUE, 0, slice_ms);
	__atomic_fetch_sub(b + SEM_WAITERS / 4, 1, SEQ);
	if (r >= 0 || r == -EAGAIN)
		return 0;
	return r;
}

/* After a wait that may have swallowed a wake: if units remain and others sleep, wake one. */
int32_t shmkit_sem_pass_wake(int32_t id, double offset)
{
	int err;
	uint32_t *b = sem_at(id, offset, &err);
	if (!b)
		return err;
	if (ld32(b + SEM_VALUE / 4) != 0 && ld32(b + SEM_WAITERS / 4) != 0)
		shmkit_futex_wake(id, offset + SEM_VALUE, 1);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Condition (kind 6)                                                                           */

#define CV_SEQ 64
#define CV_WAITERS 68
#define CV_BYTES 128

/* W1: register as a waiter and read seq (while the caller holds the mutex). Returns seq. */
int64_t shmkit_cond_enter(int32_t id, double offset)
{
	int err;
	uint32_t *b = (uint32_t *)(void *)ops_range_at(id, offset, CV_BYTES, &err);
	if (!b)
		return err;
	__atomic_fetch_add(b + CV_WAITERS / 4, 1, SEQ);
	return (int64_t)ld32(b + CV_SEQ / 4);
}

/* W2: one sleep while seq reads s. 1 = woken or seq moved (stop waiting), 0 = the slice passed
 * with seq still s, -EINTR, -errno. */
int32_t shmkit_cond_park(int32_t id, double offset, uint32_t s, double slice_ms)
{
	int err;
	uint32_t *b = (uint32_t *)(void *)ops_range_at(id, offset, CV_BYTES, &err);
	if (!b)
		return err;
	if (!valid_slice(slice_ms))
		return -EINVAL;
	int r = shmkit_futex_wait(id, offset + CV_SEQ, s, slice_ms);
	if (r >= 0 || r == -EAGAIN)
		return 1;
	if (r != -ETIMEDOUT)
		return r;
	return ld32(b + CV_SEQ / 4) != s ? 1 : 0;
}

/* The end of a wait: subtract 1 from waiters. */
int32_t shmkit_cond_leave(int32_t id, double offset)
{
	int err;
	uint32_t *b = (uint32_t *)(void *)ops_range_at(id, offset, CV_BYTES, &err);
	if (!b)
		return err;
	__atomic_fetch_sub(b + CV_WAITERS / 4, 1, SEQ);
	return 0;
}

int32_t shmkit_cond_notify(int32_t id, double offset, int32_t n)
{
	int err;
	uint32_t *b = (uint32_t *)(void *)ops_range_at(id, offset, CV_BYTES, &err);
	if (!b)
		return err;
	if (n < 1)
		return -EINVAL;
	/* N1: move the sequence; pairs with W1's read and the kernel's compare in W2. */
	__atomic_fetch_add(b + CV_SEQ / 4, 1, SEQ);
	/* N2: wake only if someone waits; pairs with W1's add. */
	if (ld32(b + CV_WAITERS / 4) != 0)
		shmkit_futex_wake(id, offset + CV_SEQ, n);
	return 0;
}
