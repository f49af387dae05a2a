/* SPDX-License-Identifier: MIT */
/*
 * Hot operations of Ring and Mempool in C, for bindings whose per-call cost is high (Python):
 * one library call per operation. This is a second implementation of docs/layout/ring.md and
 * docs/layout/mempool.md, step for step the same as src/ring.ts and src/mempool.ts (the comments
 * name the same steps: A1..A4, C1, C2, R1..R4, B1..B4, W1, W2, G1, P1..P3), and the cross-language
 * tests (tests/python_test.ts) run it against the TypeScript implementation.
 *
 * Rules (csrc/shmkit.h): every call validates its process-local struct against the mapping (a
 * hostile struct is -EINVAL, a stale mapping -EBADF), every loop over shared state is bounded,
 * every index is masked or range-checked, and shared state that breaks an invariant is
 * -SHMKIT_EBADHDR. Only *_park sleeps.
 */
#define _GNU_SOURCE
#include "shmkit.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#endif

#include "ops_common.h"

/* A double that must be a non-negative integer below 2^53 (as shmkit.c). */
static int to_u64(double v, uint64_t *out)
{
	if (!(v >= 0) || v > 9007199254740991.0 || v != (double)(uint64_t)v)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

uint8_t *ops_range_at(int32_t id, double offset, uint64_t len, int *err)
{
	double a = shmkit_map_addr(id), L = shmkit_map_length(id);
	uint64_t off;
	if (a < 0 || L < 0) {
		*err = -EBADF;
		return NULL;
	}
	if (to_u64(offset, &off) < 0 || off % 64 != 0 || off > (uint64_t)L || (uint64_t)L - off < len) {
		*err = -EINVAL;
		return NULL;
	}
	return (uint8_t *)(uintptr_t)a + off;
}

/* ------------------------------------------------------------------------------------------ */
/* Process identity, forks, faults                                                              */

static uint32_t fork_gen = 1; /* bumped in a forked child: locals made before the fork are stale */

#if !defined(_WIN32)
static void on_fork_child(void) { __atomic_add_fetch(&fork_gen, 1, SEQ); }
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_register(void) { pthread_atfork(NULL, NULL, on_fork_child); }
void ops_watch_forks(void) { pthread_once(&fork_once, fork_register); }
#else
void ops_watch_forks(void) {}
#endif
uint32_t ops_fork_gen(void) { return __atomic_load_n(&fork_gen, SEQ); }

uint32_t ops_start_lo(uint32_t pid)
{
	double st = shmkit_proc_start_time((int32_t)pid);
	return st >= 0 ? (uint32_t)((uint64_t)st & 0xffffffffu) : 0;
}

/* Ring roles and bulk lock (src/ring.ts holderAlive): alive iff running and start time matches. */
int ops_holder_alive(uint32_t pid, uint32_t start_lo)
{
	if (pid == 0 || pid > PID_LIMIT)
		return 0;
	if (shmkit_proc_alive((int32_t)pid, -1) != 1)
		return 0;
	double st = shmkit_proc_start_time((int32_t)pid);
	if (st < 0)
		return 0;
	return (uint32_t)((uint64_t)st & 0xffffffffu) == start_lo;
}

/* Mempool and channel identities (src/mempool.ts, src/channel.ts identityAlive): when liveness
 * cannot be told, never rob. */
int ops_identity_alive(uint32_t pid, uint32_t start_lo)
{
	if (pid == 0 || pid > PID_LIMIT)
		return 0;
	double st = shmkit_proc_start_time((int32_t)pid);
	if (st < 0)
		return st == -(double)ESRCH ? 0 : 1;
	if ((uint32_t)((uint64_t)st & 0xffffffffu) != start_lo)
		return 0;
	return shmkit_proc_alive((int32_t)pid, st) == 1;
}

static char fault_point[64];
int32_t ops_fault_left; /* 0: off */

int32_t shmkit_ops_fault(const uint8_t *spec)
{
	if (!spec)
		return -EINVAL;
	const char *s = (const char *)spec;
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof fault_point)
		return -EINVAL;
	char *end;
	long n = strtol(colon + 1, &end, 10);
	if (*end != 0 || n < 0 || n > INT32_MAX)
		return -EINVAL;
	memcpy(fault_point, s, (size_t)(colon - s));
	fault_point[colon - s] = 0;
	ops_fault_left = (int32_t)n;
	return 0;
}

void ops_fault_hit(const char *point)
{
	if (strcmp(point, fault_point) != 0 || --ops_fault_left > 0)
		return;
#if !defined(_WIN32)
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
#else
	abort();
#endif
}

/* Decrements *w if it is non-zero; 1 if it did. */
int ops_take_one(uint32_t *w)
{
	uint32_t v = __atomic_load_n(w, SEQ);
	while (v > 0 && !__atomic_compare_exchange_n(w, &v, v - 1, 0, SEQ, SEQ)) {
	}
	return v > 0;
}

int32_t shmkit_ops_local_size(int32_t kind)
{
	return kind == 1 ? (int32_t)sizeof(struct shmkit_ring_local)
	       : kind == 2 ? (int32_t)sizeof(struct shmkit_mempool_local)
			   : -EINVAL;
}

/* ------------------------------------------------------------------------------------------ */
/* Ring (docs/layout/ring.md)                                                                   */

#define R_CAPACITY 64
#define R_SLOTCOUNT 68
#define R_MODE 72
#define R_SLOTSOFF 76
#define R_TAIL 128
#define R_HEAD 192
#define R_CWAIT 256
#define R_PWAIT 260
#define R_CSLEEP 264
#define R_PSLEEP 268
#define R_PROLE 320
#define R_PTOKEN 328
#define R_CROLE 336
#define R_CTOKEN 344
#define R_BLOCK 352
#define R_BPHASE 360
#define R_HEADER 384
#define R_MAX_SLOTS (1u << 28)
#define MAX_STEPS 4096
#define BULK_FREE 0
#define BULK_ALIVE 1
#define BULK_RECOVERED 2
#define EBADHDR_ (-SHMKIT_EBADHDR)

struct ring {
	struct shmkit_ring_local *l;
	uint8_t *b;
	uint32_t *tail, *head, *slots; /* slots: 2 words per slot (value, seq) */
	uint32_t n, mask, cap;
};

#define W(r, off) ((uint32_t *)((r)->b + (off)))

static int ring_geometry_ok(uint32_t n, uint32_t cap, uint32_t mode)
{
	return n >= 4 && n <= R_MAX_SLOTS && (n & (n - 1)) == 0 && cap >= 1 && cap <= n && mode <= 3;
}

static void ring_refork(struct shmkit_ring_local *l)
{
	/* A forked child is a new process: the parent's roles, waits and identity are not its own. */
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->roles = 0;
	l->waits[0] = l->waits[1] = 0;
	l->token = (l->token * 2654435761u + l->pid) | 1u;
	l->fork_gen = ops_fork_gen();
}

static int ring_bind(struct shmkit_ring_local *l, struct ring *r)
{
	if (!l || !ring_geometry_ok(l->slots, l->capacity, l->mode) || l->token == 0)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(l->map_id, l->offset, R_HEADER + 8ull * l->slots, &err);
	if (!b)
		return err;
	if (l->fork_gen != ops_fork_gen())
		ring_refork(l);
	r->l = l;
	r->b = b;
	r->tail = W(r, R_TAIL);
	r->head = W(r, R_HEAD);
	r->slots = W(r, R_HEADER);
	r->n = l->slots;
	r->mask = l->slots - 1;
	r->cap = l->capacity;
	return 0;
}

int32_t shmkit_ring_format(int32_t id, double offset, uint32_t capacity, uint32_t mode, uint32_t start)
{
	if (capacity < 1 || capacity > R_MAX_SLOTS || mode > 3)
		return -EINVAL;
	uint32_t n = 4;
	while (n < capacity)
		n <<= 1;
	int err = 0;
	uint8_t *b = ops_range_at(id, offset, R_HEADER + 8ull * n, &err);
	if (!b)
		return err;
	memset(b + 64, 0, R_HEADER - 64);
	memcpy(b + R_CAPACITY, &capacity, 4);
	memcpy(b + R_SLOTCOUNT, &n, 4);
	memcpy(b + R_MODE, &mode, 4);
	uint32_t so = R_HEADER;
	memcpy(b + R_SLOTSOFF, &so, 4);
	uint32_t *slots = (uint32_t *)(b + R_HEADER);
	if (mode == 0) {
		memset(slots, 0, 8ull * n);
	} else {
		for (uint32_t i = 0; i < n; i++) {
			slots[2 * i] = 0;
			slots[2 * i + 1] = start + ((i - start) & (n - 1)); /* EMPTY for its position */
		}
	}
	st32((uint32_t *)(b + R_TAIL), start);
	st32((uint32_t *)(b + R_HEAD), start);
	return (int32_t)n;
}

int32_t shmkit_ring_attach(int32_t id, double offset, uint32_t token, struct shmkit_ring_local *l)
{
	if (!l || token == 0)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(id, offset, R_HEADER, &err);
	if (!b)
		return err;
	ops_watch_forks();
	uint32_t cap, n, mode, so, hsize;
	uint64_t blen;
	memcpy(&cap, b + R_CAPACITY, 4);
	memcpy(&n, b + R_SLOTCOUNT, 4);
	memcpy(&mode, b + R_MODE, 4);
	memcpy(&so, b + R_SLOTSOFF, 4);
	memcpy(&hsize, b + 12, 4);
	memcpy(&blen, b + 16, 8);
	if (!ring_geometry_ok(n, cap, mode) || so != R_HEADER || hsize != R_HEADER || blen != R_HEADER + 8ull * n)
		return EBADHDR_;
	if (!ops_range_at(id, offset, blen, &err))
		return EBADHDR_; /* the ring does not fit its mapping */
	uint32_t t = ld32((uint32_t *)(b + R_TAIL)), h = ld32((uint32_t *)(b + R_HEAD));
	int32_t apart = (int32_t)(t - h);
	if (apart > (int32_t)cap || apart < (mode == 0 ? 0 : -(int32_t)n))
		return EBADHDR_; /* I1 */
	memset(l, 0, sizeof *l);
	l->offset = offset;
	l->map_id = id;
	l->mode = mode;
	l->capacity = cap;
	l->slots = n;
	l->token = token;
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->fork_gen = ops_fork_gen();
	l->head_cache = h; /* at or behind the true head: never a made-up 0 */
	return 0;
}

static void ring_wake(struct ring *r, int consumers)
{
	/* W2: one futex wake per sleep episode: only the waker that clears the sleep flag wakes. */
	uint32_t *flag = W(r, consumers ? R_CSLEEP : R_PSLEEP);
	if (xchg32(flag, 0) != 0)
		shmkit_futex_wake(r->l->map_id, r->l->offset + (consumers ? R_TAIL : R_HEAD), 0);
}
#define WAKE_CONSUMERS(r)                          \
	do {                                       \
		if (ld32(W(r, R_CWAIT)) != 0)      \
			ring_wake(r, 1);           \
	} while (0)
#define WAKE_PRODUCERS(r)                          \
	do {                                       \
		if (ld32(W(r, R_PWAIT)) != 0)      \
			ring_wake(r, 0);           \
	} while (0)

static int ring_claim(struct ring *r, int producer)
{
	struct shmkit_ring_local *l = r->l;
	uint64_t *role = (uint64_t *)(r->b + (producer ? R_PROLE : R_CROLE));
	uint32_t *tok = W(r, producer ? R_PTOKEN : R_CTOKEN);
	uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
	for (int attempt = 0;; attempt++) {
		uint64_t cur = ld64(role);
		uint32_t pid = (uint32_t)cur, st = (uint32_t)(cur >> 32);
		if (pid == l->pid && st == l->start_lo) {
			if (ld32(tok) == l->token)
				break;
			return -EBUSY; /* another object of this process holds it */
		}
		if (pid != 0 && ops_holder_alive(pid, st))
			return -EBUSY;
		/* Free, or its holder is dead: take it with one 64-bit CAS on (pid, start). */
		if (cas64(role, cur, me)) {
			FAULT("ring.role.after_claim");
			st32(tok, l->token);
			break;
		}
		if (attempt == 63)
			return -EBUSY;
	}
	/* Start from the shared state: a previous holder may have left mid-operation. */
	if (producer) {
		l->roles |= 1;
		l->p_tail = ld32(r->tail);
		l->p_head = ld32(r->head);
	} else {
		l->roles |= 2;
		l->c_head = ld32(r->head);
		l->c_tail = l->c_head;
	}
	return 0;
}

static void ring_release_role(struct ring *r, int producer)
{
	struct shmkit_ring_local *l = r->l;
	uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
	l->roles &= producer ? ~1u : ~2u;
	st32(W(r, producer ? R_PTOKEN : R_CTOKEN), 0);
	cas64((uint64_t *)(r->b + (producer ? R_PROLE : R_CROLE)), me, 0);
}

int ops_ring_role(struct shmkit_ring_local *l, int producer)
{
	struct ring r;
	int e = ring_bind(l, &r);
	if (e < 0)
		return e;
	if (l->mode != 0)
		return -EINVAL;
	return (l->roles & (producer ? 1u : 2u)) ? 0 : ring_claim(&r, producer);
}

/* --- spsc ------------------------------------------------------------------------------------ */

/* Free slots for the spsc producer, refreshing the cached head only when fewer than want. */
static int64_t spsc_free(struct ring *r, uint32_t want)
{
	struct shmkit_ring_local *l = r->l;
	uint32_t t = l->p_tail;
	uint32_t used = t - l->p_head;
	if (used > r->cap)
		used = r->cap; /* a stale cache cannot say more than full */
	uint32_t fr = r->cap - used;
	if (fr < want) {
		uint32_t h = ld32(r->head); /* A2: acquire head; pairs with R2 */
		used = t - h;
		if (used > r->cap)
			return EBADHDR_; /* I1 */
		l->p_head = h;
		fr = r->cap - used;
	}
	return fr;
}

static void spsc_write(struct ring *r, const uint32_t *v, uint32_t k)
{
	struct shmkit_ring_local *l = r->l;
	uint32_t t = l->p_tail;
	uint32_t a = t & r->mask;
	uint32_t first = k < r->n - a ? k : r->n - a;
	uint32_t *s = r->slots; /* dense u32 values at 384 + 4 i */
	for (uint32_t i = 0; i < first; i++)
		__atomic_store_n(&s[a + i], v[i], __ATOMIC_RELAXED);
	for (uint32_t i = first; i < k; i++)
		__atomic_store_n(&s[i - first], v[i], __ATOMIC_RELAXED);
	FAULT("ring.enq.before_commit");
	/* R1: publish the batch once (release; pairs with A1). A release store, not seq_cst: on x86-64
	 * a seq_cst store is an xchg that waits for the slot stores before it. The wake check after it
	 * may then pass it, which spsc parkers cover with their short first wait (shmkit_ring_park). */
	__atomic_store_n(r->tail, t + k, __ATOMIC_RELEASE);
	l->p_tail = t + k;
	FAULT("ring.enq.after_commit");
	WAKE_CONSUMERS(r);
}

static int64_t spsc_avail(struct ring *r)
{
	struct shmkit_ring_local *l = r->l;
	uint32_t t = ld32(r->tail); /* A1 */
	uint32_t avail = t - l->c_head;
	if (avail > r->cap)
		return EBADHDR_; /* I1 */
	l->c_tail = t;
	return avail;
}

static void spsc_read(struct ring *r, uint32_t *out, uint32_t k)
{
	struct shmkit_ring_local *l = r->l;
	uint32_t h = l->c_head;
	uint32_t a = h & r->mask;
	uint32_t first = k < r->n - a ? k : r->n - a;
	uint32_t *s = r->slots;
	for (uint32_t i = 0; i < first; i++)
		out[i] = __atomic_load_n(&s[a + i], __ATOMIC_RELAXED);
	for (uint32_t i = first; i < k; i++)
		out[i] = __atomic_load_n(&s[i - first], __ATOMIC_RELAXED);
	FAULT("ring.deq.before_take");
	__atomic_store_n(r->head, h + k, __ATOMIC_RELEASE); /* R2: publish the batch once (release, as R1); pairs with A2 */
	l->c_head = h + k;
	FAULT("ring.deq.after_take");
	WAKE_PRODUCERS(r);
}

/* --- CAS modes ------------------------------------------------------------------------------- */

static inline uint32_t *seq_of(struct ring *r, uint32_t p) { return &r->slots[2 * (p & r->mask) + 1]; }
static inline uint32_t *val_of(struct ring *r, uint32_t p) { return &r->slots[2 * (p & r->mask)]; }
static inline uint64_t *word_of(struct ring *r, uint32_t p) { return (uint64_t *)&r->slots[2 * (p & r->mask)]; }

/* Advances the head hint past a taken slot (a consumer died before doing it). 1 if it moved. */
static int help_head(struct ring *r, uint32_t h)
{
	uint32_t s = ld32(seq_of(r, h));
	if ((int32_t)(s - h) != (int32_t)r->n)
		return 0;
	cas32(r->head, h, h + 1); /* R4 (helping) */
	return 1;
}

static uint32_t settle_head(struct ring *r)
{
	uint32_t h = ld32(r->head);
	for (int step = 0; step < MAX_STEPS && help_head(r, h); step++)
		h = ld32(r->head);
	return h;
}

/* Commits value at the tail (seq_add 1: FULL) or places it PENDING (2, bulk). 1 done, 0 full. */
static int enq_cas(struct ring *r, uint32_t value, uint32_t seq_add)
{
	struct shmkit_ring_local *l = r->l;
	uint32_t n = r->n, cap = r->cap;
	for (int step = 0; step < MAX_STEPS; step++) {
		uint32_t t = ld32(r->tail); /* tail hint */
		uint32_t *sq = seq_of(r, t);
		uint32_t s = ld32(sq); /* A3: pairs with C2 and other producers' C1 */
		int32_t d = (int32_t)(s - t);
		if (d == 0) {
			if (t - l->head_cache >= cap) {
				uint32_t h = ld32(r->head);
				int32_t used = (int32_t)(t - h);
				if (used < 0) {
					if (ld32(sq) == s && ld32(r->tail) == t)
						return EBADHDR_; /* head ahead of a tail whose slot is still EMPTY (I1) */
					continue;
				}
				if ((uint32_t)used > cap)
					return EBADHDR_; /* I1 */
				l->head_cache = h;
				if ((uint32_t)used >= cap) {
					if (help_head(r, h))
						continue;
					return 0;
				}
			}
			uint32_t lo = ld32(val_of(r, t));
			if (seq_add == 1)
				FAULT("ring.enq.before_commit");
			/* C1: commit value and FULL (or PENDING) in one 64-bit CAS; pairs with A4. */
			uint64_t expect = (uint64_t)lo | ((uint64_t)t << 32);
			uint64_t want = (uint64_t)value | ((uint64_t)(t + seq_add) << 32);
			if (cas64(word_of(r, t), expect, want)) {
				if (seq_add == 1)
					FAULT("ring.enq.after_commit");
				cas32(r->tail, t, t + 1); /* R3 */
				if (seq_add == 1)
					FAULT("ring.enq.after_publish");
				l->last_pos = t;
				if (seq_add == 1)
					WAKE_CONSUMERS(r);
				return 1;
			}
		} else if (d == 1 || d == 2 || d == 3 || d == (int32_t)n) {
			cas32(r->tail, t, t + 1); /* R3 (helping): position t is FULL/PENDING/CLAIMED/taken */
		} else if (d == 1 - (int32_t)n || d == 2 - (int32_t)n || d == 3 - (int32_t)n) {
			uint32_t h = ld32(r->head);
			if (t - h >= cap) {
				l->head_cache = h;
				if (help_head(r, h))
					continue;
				return 0;
			}
			if (ld32(sq) == s && ld32(r->tail) == t)
				return EBADHDR_; /* still unconsumed behind head (I3) */
		} else if (ld32(r->tail) == t) {
			return EBADHDR_; /* impossible sequence for tail (I3) */
		}
	}
	return 0; /* bounded: the others' progress kept us from a slot */
}

static int recover_bulk(struct ring *r);

/* One dequeue: 1 with *out set, 0 empty, or -errno. */
static int deq_cas(struct ring *r, uint32_t *out)
{
	uint32_t n = r->n;
	for (int step = 0; step < MAX_STEPS; step++) {
		uint32_t h = ld32(r->head); /* head hint */
		uint32_t *sq = seq_of(r, h);
		uint32_t s = ld32(sq); /* A4: pairs with C1 */
		int32_t d = (int32_t)(s - h);
		if (d == 1) {
			uint32_t v = ld32(val_of(r, h)); /* a FULL slot's value never changes */
			FAULT("ring.deq.before_take");
			if (cas32(sq, s, h + n)) { /* C2: take; pairs with A3 */
				FAULT("ring.deq.after_take");
				cas32(r->head, h, h + 1); /* R4 */
				FAULT("ring.deq.after_publish");
				WAKE_PRODUCERS(r);
				*out = v;
				return 1;
			}
		} else if (d == 0) {
			return 0; /* EMPTY for h: nothing is queued (I4) */
		} else if (d == 2 || d == 3) {
			int rb = recover_bulk(r);
			if (rb < 0)
				return rb;
			if (rb == BULK_ALIVE)
				return 0;
			if (rb == BULK_FREE && ld32(sq) == s && ld32(W(r, R_BLOCK)) == 0)
				return EBADHDR_; /* PENDING/CLAIMED with no bulk in progress (I3) */
		} else if (d == (int32_t)n) {
			cas32(r->head, h, h + 1); /* R4 (helping): taken, hint trails */
		} else if (ld32(r->head) == h) {
			return EBADHDR_; /* impossible sequence for head (I3) */
		}
	}
	return 0;
}

static uint64_t me_of(struct ring *r) { return (uint64_t)r->l->pid | ((uint64_t)r->l->start_lo << 32); }

/* Recovers the bulk lock from a dead holder (see ring.md, Recovery). */
static int recover_bulk(struct ring *r)
{
	uint64_t *lock = (uint64_t *)(r->b + R_BLOCK);
	uint64_t cur = ld64(lock);
	uint32_t pid = (uint32_t)cur, st = (uint32_t)(cur >> 32);
	if (pid == 0)
		return BULK_FREE;
	if ((pid == r->l->pid && st == r->l->start_lo) || ops_holder_alive(pid, st))
		return BULK_ALIVE;
	if (!cas64(lock, cur, me_of(r)))
		return BULK_RECOVERED; /* someone else did */
	int commit = ld32(W(r, R_BPHASE)) == 1;
	uint32_t h = ld32(r->head), n = r->n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = h + ((i - h) & r->mask);
		uint32_t *w = &r->slots[2 * i + 1];
		uint32_t s = ld32(w);
		if (s == p + 2)
			cas32(w, s, commit ? p + 1 : p + n); /* PENDING: FULL if committed, else skipped */
		else if (s == p + 3)
			cas32(w, s, commit ? p + n : p + 1); /* CLAIMED: taken if committed, else FULL again */
	}
	st32(W(r, R_BPHASE), 0);
	cas64(lock, me_of(r), 0);
	WAKE_CONSUMERS(r);
	WAKE_PRODUCERS(r);
	return BULK_RECOVERED;
}

static int lock_bulk(struct ring *r)
{
	uint64_t *lock = (uint64_t *)(r->b + R_BLOCK);
	for (int attempt = 0; attempt < 1000; attempt++) {
		uint64_t cur = ld64(lock);
		if ((uint32_t)cur == 0) {
			if (cas64(lock, cur, me_of(r)))
				return 1;
		} else if (recover_bulk(r) == BULK_ALIVE && (attempt & 63) == 63) {
			double until = shmkit_now_ns() + 50000.0; /* another process's bulk: let it run */
			while (shmkit_now_ns() < until) {
			}
		}
	}
	return 0;
}

static int resolve_pending(struct ring *r, uint32_t p, int commit)
{
	/* B3: PENDING -> FULL (commit) or taken (abort); only the bulk lock holder calls this. */
	if (!cas32(seq_of(r, p), p + 2, commit ? p + 1 : p + r->n))
		return EBADHDR_;
	return 0;
}

static int resolve_claimed(struct ring *r, uint32_t p, int commit)
{
	if (!cas32(seq_of(r, p), p + 3, commit ? p + r->n : p + 1))
		return EBADHDR_;
	return 0;
}

static void unlock_bulk(struct ring *r)
{
	st32(W(r, R_BPHASE), 0);
	cas64((uint64_t *)(r->b + R_BLOCK), me_of(r), 0); /* B2 */
}

/* Multi-producer enqueueBulk (mpsc, mpmc), all or nothing. pos: n words of scratch. */
static int enq_bulk_multi(struct ring *r, const uint32_t *v, uint32_t n, uint32_t *pos)
{
	if (n > r->cap)
		return 0;
	uint32_t h = settle_head(r);
	if ((int64_t)(int32_t)(ld32(r->tail) - h) + n > r->cap)
		return 0;
	if (!lock_bulk(r))
		return 0;
	uint32_t k = 0;
	int rc = 0;
	st32(W(r, R_BPHASE), 0); /* placing */
	for (; k < n; k++) {
		int e = enq_cas(r, v[k], 2);
		if (e < 0) {
			rc = e;
			break;
		}
		if (e == 0)
			break;
		pos[k] = r->l->last_pos;
		FAULT("ring.bulk.after_place");
	}
	if (k < n) {
		for (uint32_t j = 0; j < k; j++) {
			int e = resolve_pending(r, pos[j], 0);
			if (e < 0 && rc == 0)
				rc = e;
		}
		unlock_bulk(r);
		return rc;
	}
	st32(W(r, R_BPHASE), 1); /* B1: the commit point of the whole batch */
	for (uint32_t j = 0; j < n; j++) {
		int e = resolve_pending(r, pos[j], 1);
		if (e < 0 && rc == 0)
			rc = e;
		FAULT("ring.bulk.after_commit");
	}
	unlock_bulk(r);
	if (rc < 0)
		return rc;
	WAKE_CONSUMERS(r);
	return (int)n;
}

/* Single consumer (mpsc): FULL slots from the head, up to max. */
static uint32_t count_full(struct ring *r, uint32_t max)
{
	uint32_t h = settle_head(r), k = 0;
	while (k < max) {
		uint32_t p = h + k;
		if (ld32(seq_of(r, p)) != p + 1)
			break;
		k++;
	}
	return k;
}

/* Multi-consumer dequeueBulk (spmc, mpmc): count or 0. pos: count words of scratch. */
static int deq_bulk_multi(struct ring *r, uint32_t *out, uint32_t count, uint32_t *pos)
{
	if (count > r->cap || count_full(r, count) < count)
		return 0;
	if (!lock_bulk(r))
		return 0;
	uint32_t k = 0, n = r->n;
	int rc = 0;
	st32(W(r, R_BPHASE), 0); /* claiming */
	uint32_t p = ld32(r->head);
	for (uint32_t step = 0; k < count && step < MAX_STEPS + count; step++) {
		uint32_t *sq = seq_of(r, p);
		uint32_t s = ld32(sq);
		int32_t d = (int32_t)(s - p);
		if (d == 1) {
			uint32_t v = ld32(val_of(r, p));
			if (!cas32(sq, s, p + 3)) /* B4: claim, value kept */
				continue;
			out[k] = v;
			pos[k++] = p;
			FAULT("ring.bulk.after_claim");
		} else if (d != (int32_t)n) {
			break; /* EMPTY (or anything but taken): not enough items */
		}
		p++;
	}
	if (k < count) {
		for (uint32_t j = 0; j < k; j++) {
			int e = resolve_claimed(r, pos[j], 0);
			if (e < 0 && rc == 0)
				rc = e;
		}
		unlock_bulk(r);
		if (k > 0)
			WAKE_CONSUMERS(r); /* the items are back */
		return rc;
	}
	st32(W(r, R_BPHASE), 1); /* B1 */
	for (uint32_t j = 0; j < count; j++) {
		int e = resolve_claimed(r, pos[j], 1);
		if (e < 0 && rc == 0)
			rc = e;
		FAULT("ring.bulk.after_take");
	}
	settle_head(r); /* R4 over the taken slots */
	unlock_bulk(r);
	if (rc < 0)
		return rc;
	WAKE_PRODUCERS(r);
	return (int)count;
}

/* Single producer (spmc): brings the tail hint to the true tail; returns the items queued. */
static int64_t sync_tail(struct ring *r)
{
	for (int step = 0; step < MAX_STEPS; step++) {
		uint32_t t = ld32(r->tail);
		int32_t d = (int32_t)(ld32(seq_of(r, t)) - t);
		if (d == 1 || d == 2 || d == 3 || d == (int32_t)r->n) {
			cas32(r->tail, t, t + 1); /* R3 (helping) */
			continue;
		}
		uint32_t h = settle_head(r);
		int32_t used = (int32_t)(t - h);
		if (used < 0 || (uint32_t)used > r->cap)
			return EBADHDR_; /* I1 */
		r->l->head_cache = h;
		return used;
	}
	return r->cap; /* bounded: report no room, retried later */
}

/* Bulk scratch: positions of a multi-side bulk batch (on the stack up to 256, else malloc). */
#define POS_STACK 256

int32_t shmkit_ring_enqueue(struct shmkit_ring_local *l, const uint32_t *values, int32_t n, uint32_t flags)
{
	struct ring r;
	int e = ring_bind(l, &r);
	if (e < 0)
		return e;
	if (!values || n < 0 || flags > SHMKIT_BURST || (flags == 0 && n != 1))
		return -EINVAL;
	if (n == 0)
		return 0;
	uint32_t mode = l->mode;
	int single_prod = mode == 0 || mode == 2;
	if (single_prod && !(l->roles & 1) && (e = ring_claim(&r, 1)) < 0)
		return e;
	uint32_t k = (uint32_t)n;
	if (mode == 0) {
		int64_t fr = spsc_free(&r, k);
		if (fr < 0)
			return (int32_t)fr;
		if (flags == SHMKIT_BURST) {
			if ((uint64_t)fr < k)
				k = (uint32_t)fr;
		} else if ((uint64_t)fr < k) {
			return 0;
		}
		if (k > 0)
			spsc_write(&r, values, k);
		return (int32_t)k;
	}
	if (flags == SHMKIT_BULK && k > 1) {
		if (!single_prod) {
			if (k > r.cap)
				return 0;
			uint32_t stack[POS_STACK];
			uint32_t *pos = k <= POS_STACK ? stack : malloc(sizeof(uint32_t) * k);
			if (!pos)
				return -ENOMEM;
			int rc = enq_bulk_multi(&r, values, k, pos);
			if (pos != stack)
				free(pos);
			return rc;
		}
		/* spmc: this process is the only producer, so the room seen now stays. */
		int64_t used = sync_tail(&r);
		if (used < 0)
			return (int32_t)used;
		if ((int64_t)r.cap - used < (int64_t)k)
			return 0;
		for (uint32_t i = 0; i < k; i++) {
			int c = enq_cas(&r, values[i], 1);
			if (c < 0)
				return c;
			if (c == 0)
				return EBADHDR_; /* room vanished during a single-producer bulk */
		}
		return (int32_t)k;
	}
	uint32_t done = 0;
	while (done < k) {
		int c = enq_cas(&r, values[done], 1);
		if (c < 0)
			return done > 0 ? (int32_t)done : c;
		if (c == 0)
			break;
		done++;
	}
	return (int32_t)done;
}

int32_t shmkit_ring_dequeue(struct shmkit_ring_local *l, uint32_t *out, int32_t n, uint32_t flags)
{
	struct ring r;
	int e = ring_bind(l, &r);
	if (e < 0)
		return e;
	if (!out || n < 0 || flags > SHMKIT_BURST || (flags == 0 && n != 1))
		return -EINVAL;
	if (n == 0)
		return 0;
	uint32_t mode = l->mode;
	int single_cons = mode == 0 || mode == 1;
	if (single_cons && !(l->roles & 2) && (e = ring_claim(&r, 0)) < 0)
		return e;
	uint32_t k = (uint32_t)n;
	if (mode == 0) {
		int64_t av;
		uint32_t cached = l->c_tail - l->c_head;
		if (cached >= k && cached <= r.cap) /* the cached tail covers it (acquired when loaded) */
			av = cached;
		else
			av = spsc_avail(&r);
		if (av < 0)
			return (int32_t)av;
		if (flags == SHMKIT_BURST) {
			if ((uint64_t)av < k)
				k = (uint32_t)av;
		} else if ((uint64_t)av < k) {
			return 0;
		}
		if (k > 0)
			spsc_read(&r, out, k);
		return (int32_t)k;
	}
	if (flags == SHMKIT_BULK && k > 1) {
		if (!single_cons) {
			if (k > r.cap)
				return 0;
			uint32_t stack[POS_STACK];
			uint32_t *pos = k <= POS_STACK ? stack : malloc(sizeof(uint32_t) * k);
			if (!pos)
				return -ENOMEM;
			int rc = deq_bulk_multi(&r, out, k, pos);
			if (pos != stack)
				free(pos);
			return rc;
		}
		/* mpsc: this process is the only consumer; FULL slots seen now stay FULL. */
		if (count_full(&r, k) < k)
			return 0;
		for (uint32_t i = 0; i < k; i++) {
			int c = deq_cas(&r, &out[i]);
			if (c < 0)
				return c;
			if (c == 0)
				return EBADHDR_; /* items vanished during a single-consumer bulk */
		}
		return (int32_t)k;
	}
	uint32_t done = 0;
	while (done < k) {
		int c = deq_cas(&r, &out[done]);
		if (c < 0)
			return done > 0 ? (int32_t)done : c;
		if (c == 0)
			break;
		done++;
	}
	return (int32_t)done;
}

int32_t shmkit_ring_enqueue1(struct shmkit_ring_local *l, uint32_t value)
{
	return shmkit_ring_enqueue(l, &value, 1, 0);
}

int64_t shmkit_ring_dequeue1(struct shmkit_ring_local *l)
{
	uint32_t v = 0;
	int32_t r = shmkit_ring_dequeue(l, &v, 1, 0);
	return r == 1 ? (int64_t)v : r == 0 ? -EAGAIN : r;
}

/* 1 if the side could make progress now (room for a producer, an item for a consumer). */
static int ring_ready(struct ring *r, int consumer)
{
	uint32_t t = ld32(r->tail), h = ld32(r->head);
	if (r->l->mode == 0)
		return consumer ? t != h : (uint32_t)(t - h) < r->cap;
	if (consumer) {
		int32_t d = (int32_t)(ld32(seq_of(r, h)) - h);
		return d == 1 || d == (int32_t)r->n || ((d == 2 || d == 3) && recover_bulk(r) == BULK_RECOVERED);
	}
	int32_t used = (int32_t)(t - h);
	return used < (int32_t)r->cap || help_head(r, h);
}

#define PARK_SLICE_MS 200.0

int32_t shmkit_ring_park(struct shmkit_ring_local *l, uint32_t side, double timeout_ms)
{
	struct ring r;
	int e = ring_bind(l, &r);
	if (e < 0)
		return e;
	if (side > 1 || !(timeout_ms >= 0))
		return -EINVAL;
	int consumer = side == 1;
	uint32_t *word = consumer ? r.tail : r.head;
	uint32_t *count = W(&r, consumer ? R_CWAIT : R_PWAIT);
	uint32_t w0 = ld32(word);                     /* W1: the futex word, read before the re-check */
	add32(count, 1);                              /* register (seq_cst); pairs with W2 */
	__atomic_fetch_add(&l->waits[side], 1, SEQ);
	st32(W(&r, consumer ? R_CSLEEP : R_PSLEEP), 1); /* ask for a wake, then re-check */
	int rc;
	if (ring_ready(&r, consumer)) {
		rc = 1;
	} else {
		FAULT("ring.wait.parked");
		double ms = timeout_ms < PARK_SLICE_MS ? timeout_ms : PARK_SLICE_MS;
		double off = l->offset + (consumer ? R_TAIL : R_HEAD);
		/* spsc: a short first wait, then the rest: TypeScript peers publish tail and head with
		 * plain stores on x86-64 (src/ring.ts PLAIN_PUBLISH), so their wake check may miss this
		 * registration */
		if (r.l->mode == 0)
			rc = futex_wait_short_first(l->map_id, off, w0, ms);
		else
			rc = shmkit_futex_wait(l->map_id, off, w0, ms);
		if (rc == 1)
			rc = 0; /* the word changed: retry */
		if (rc == -ETIMEDOUT && timeout_ms > PARK_SLICE_MS)
			rc = 0; /* a slice ended, not the caller's timeout */
	}
	/* Give the registration back, unless close() (shmkit_ring_release, maybe on another thread)
	 * already did: whoever takes it off the local count gives it back to the shared one. */
	if (ops_take_one(&l->waits[side])) {
		struct ring r2;
		if (ring_bind(l, &r2) == 0 && r2.b == r.b)
			__atomic_fetch_sub(count, 1, SEQ);
	}
	return rc;
}

double shmkit_ring_count(struct shmkit_ring_local *l)
{
	struct ring r;
	int e = ring_bind(l, &r);
	if (e < 0)
		return e;
	int32_t d = (int32_t)(ld32(r.tail) - ld32(r.head));
	return d < 0 ? 0.0 : d > (int32_t)r.cap ? (double)r.cap : (double)d;
}

int32_t shmkit_ring_release(struct shmkit_ring_local *l)
{
	struct ring r;
	int e = ring_bind(l, &r);
	if (e < 0)
		return e;
	if (l->roles & 1)
		ring_release_role(&r, 1);
	if (l->roles & 2)
		ring_release_role(&r, 0);
	/* Waits still registered (another thread parked on this object) give their count back. */
	for (int side = 0; side < 2; side++) {
		uint32_t w = __atomic_exchange_n(&l->waits[side], 0, SEQ);
		if (w)
			__atomic_fetch_sub(W(&r, side ? R_CWAIT : R_PWAIT), w, SEQ);
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Mempool (docs/layout/mempool.md)                                                             */

#define M_COUNT 64
#define M_BLOCKSIZE 68
#define M_STRIDE 72
#define M_PROCS 76
#define M_SLOTSOFF 80
#define M_STATESOFF 88
#define M_DATAOFF 96
#define M_WAITERS 128
#define M_WAKESEQ 132
#define M_HEADER 192
#define M_HELD 0x40000000u
#define M_GEN_MASK 0x3fffffu
#define M_MAX_COUNT (1u << 28)
#define M_MAX_PROCS 256u
#define M_PARK_SLICE_MS 50.0

struct pool {
	struct shmkit_mempool_local *l;
	uint8_t *b;
	uint32_t *states;
	uint32_t n, procs;
};

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* The layout a (count, blockSize, P) implies; 0 if impossible. */
static int pool_geometry(uint32_t count, uint32_t bsize, uint32_t procs, uint32_t *stride, uint64_t *states,
			 uint64_t *data, uint64_t *len)
{
	if (count < 1 || count > M_MAX_COUNT || bsize < 1 || bsize > 0x80000000u || procs < 1 || procs > M_MAX_PROCS)
		return 0;
	uint64_t s = align64(bsize);
	if (s > 0xffffffffu)
		return 0;
	*stride = (uint32_t)s;
	*states = align64(M_HEADER + 16ull * procs);
	*data = align64(*states + 4ull * count);
	*len = *data + s * count;
	return 1;
}

static void pool_refork(struct shmkit_mempool_local *l)
{
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->slot = -1;
	l->tag = 0;
	l->parked = 0;
	l->fork_gen = ops_fork_gen();
}

static int pool_bind(struct shmkit_mempool_local *l, struct pool *p)
{
	if (!l)
		return -EINVAL;
	uint32_t stride;
	uint64_t states, data, len;
	if (!pool_geometry(l->count, l->block_size, l->procs, &stride, &states, &data, &len) || stride != l->stride ||
	    states != l->states || (double)data != l->data || l->slot < -1 || l->slot >= (int32_t)l->procs ||
	    l->cursor >= l->count)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(l->map_id, l->offset, len, &err);
	if (!b)
		return err;
	if (l->fork_gen != ops_fork_gen())
		pool_refork(l);
	p->l = l;
	p->b = b;
	p->states = (uint32_t *)(b + states);
	p->n = l->count;
	p->procs = l->procs;
	return 0;
}

static inline uint64_t *slot_id(struct pool *p, uint32_t s) { return (uint64_t *)(p->b + M_HEADER + 16ull * s); }
static inline uint32_t *slot_gen(struct pool *p, uint32_t s) { return (uint32_t *)(p->b + M_HEADER + 16ull * s + 8); }
static inline uint32_t *slot_parked(struct pool *p, uint32_t s)
{
	return (uint32_t *)(p->b + M_HEADER + 16ull * s + 12);
}

int32_t shmkit_mempool_attach(int32_t id, double offset, struct shmkit_mempool_local *l)
{
	if (!l)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(id, offset, M_HEADER, &err);
	if (!b)
		return err;
	ops_watch_forks();
	uint32_t count, bsize, stride, procs, hsize;
	uint64_t slots, states, data, blen;
	memcpy(&hsize, b + 12, 4);
	memcpy(&blen, b + 16, 8);
	memcpy(&count, b + M_COUNT, 4);
	memcpy(&bsize, b + M_BLOCKSIZE, 4);
	memcpy(&stride, b + M_STRIDE, 4);
	memcpy(&procs, b + M_PROCS, 4);
	memcpy(&slots, b + M_SLOTSOFF, 8);
	memcpy(&states, b + M_STATESOFF, 8);
	memcpy(&data, b + M_DATAOFF, 8);
	uint32_t g_stride;
	uint64_t g_states, g_data, g_len;
	if (hsize != M_HEADER || !pool_geometry(count, bsize, procs, &g_stride, &g_states, &g_data, &g_len) ||
	    stride != g_stride || slots != M_HEADER || states != g_states || data != g_data || blen != g_len)
		return EBADHDR_; /* I4 */
	if (!ops_range_at(id, offset, g_len, &err))
		return EBADHDR_;
	memset(l, 0, sizeof *l);
	l->offset = offset;
	l->map_id = id;
	l->count = count;
	l->block_size = bsize;
	l->stride = stride;
	l->procs = procs;
	l->states = (uint32_t)g_states;
	l->data = (double)g_data;
	l->slot = -1;
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->fork_gen = ops_fork_gen();
	return 0;
}

static void pool_wake(struct pool *p)
{
	add32((uint32_t *)(p->b + M_WAKESEQ), 1); /* P3: bump the futex word; pairs with W1 */
	shmkit_futex_wake(p->l->map_id, p->l->offset + M_WAKESEQ, 0);
}

static int pool_reclaim(struct pool *p)
{
	struct shmkit_mempool_local *l = p->l;
	uint32_t procs = p->procs;
	uint32_t dead_tag[M_MAX_PROCS];
	uint64_t dead_id[M_MAX_PROCS];
	int any = 0;
	for (uint32_t s = 0; s < procs; s++) {
		dead_tag[s] = 0;
		uint64_t id = ld64(slot_id(p, s)); /* R0 */
		if (id == 0 || (int32_t)s == l->slot)
			continue;
		if (ops_identity_alive((uint32_t)id, (uint32_t)(id >> 32)))
			continue;
		uint32_t gen = ld32(slot_gen(p, s)) & M_GEN_MASK;
		if (ld64(slot_id(p, s)) != id)
			continue;
		dead_tag[s] = M_HELD | (gen << 8) | s;
		dead_id[s] = id;
		any = 1;
	}
	int freed = 0;
	for (uint32_t i = 0; i < p->n; i++) {
		uint32_t w = __atomic_load_n(&p->states[i], __ATOMIC_RELAXED);
		if (w == 0)
			continue;
		uint32_t slot = w & 0xff;
		int malformed = (w & ~0x3fffffffu) != M_HELD || slot >= procs;
		if (malformed || (any && dead_tag[slot] == w)) {
			if (cas32(&p->states[i], w, 0)) { /* R1 */
				freed++;
				FAULT("mempool.reclaim.mid_sweep");
			}
		}
	}
	if (any) {
		for (uint32_t s = 0; s < procs; s++) {
			if (dead_tag[s] == 0)
				continue;
			if ((ld32(slot_gen(p, s)) & M_GEN_MASK) != ((dead_tag[s] >> 8) & M_GEN_MASK))
				continue;
			if (ld64(slot_id(p, s)) != dead_id[s])
				continue;
			FAULT("mempool.reclaim.before_free_slot");
			/* R2: hold the slot under our own identity while its parked count is settled, so the
			 * count is the dead tenant's alone (docs/layout/mempool.md; src/mempool.ts). */
			uint64_t me = (uint64_t)p->l->pid | ((uint64_t)p->l->start_lo << 32);
			if (!cas64(slot_id(p, s), dead_id[s], me))
				continue;
			uint32_t parked = xchg32(slot_parked(p, s), 0);
			if ((int32_t)parked > 0)
				__atomic_fetch_sub((uint32_t *)(p->b + M_WAITERS), parked, SEQ);
			cas64(slot_id(p, s), me, 0); /* R3 */
		}
	}
	if (freed > 0 && ld32((uint32_t *)(p->b + M_WAITERS)) != 0)
		pool_wake(p);
	return freed;
}

int32_t shmkit_mempool_reclaim(struct shmkit_mempool_local *l)
{
	struct pool p;
	int e = pool_bind(l, &p);
	return e < 0 ? e : pool_reclaim(&p);
}

static int pool_claim_slot(struct pool *p)
{
	struct shmkit_mempool_local *l = p->l;
	uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
	for (int attempt = 0; attempt < 2; attempt++) {
		for (uint32_t s = 0; s < p->procs; s++) {
			if (ld64(slot_id(p, s)) == 0 && cas64(slot_id(p, s), 0, me)) { /* C1 */
				FAULT("mempool.claim.after_identity");
				uint32_t gen = (add32(slot_gen(p, s), 1) + 1) & M_GEN_MASK; /* C2 */
				l->slot = (int32_t)s;
				l->tag = M_HELD | (gen << 8) | s;
				l->cursor = (16 * s) % p->n;
				return 0;
			}
		}
		pool_reclaim(p);
	}
	return -EBUSY;
}

int32_t shmkit_mempool_get(struct shmkit_mempool_local *l)
{
	struct pool p;
	int e = pool_bind(l, &p);
	if (e < 0)
		return e;
	if (l->tag == 0 && (e = pool_claim_slot(&p)) < 0)
		return e;
	uint32_t tag = l->tag, n = p.n, i = l->cursor;
	for (uint32_t k = 0; k < n; k++) {
		/* G1: relaxed peek, then claim with a CAS; pairs with P1 and R1. */
		if (__atomic_load_n(&p.states[i], __ATOMIC_RELAXED) == 0) {
			FAULT("mempool.get.before_claim");
			if (cas32(&p.states[i], 0, tag)) {
				FAULT("mempool.get.after_claim");
				l->cursor = i + 1 == n ? 0 : i + 1;
				return (int32_t)i;
			}
		}
		i = i + 1 == n ? 0 : i + 1;
	}
	return -EAGAIN;
}

int32_t shmkit_mempool_put(struct shmkit_mempool_local *l, int32_t index)
{
	struct pool p;
	int e = pool_bind(l, &p);
	if (e < 0)
		return e;
	if (index < 0 || (uint32_t)index >= p.n)
		return -EINVAL;
	uint32_t *w = &p.states[index];
	FAULT("mempool.put.before_release");
	/* P1: release with a CAS (the fast path assumes we hold it; else any holder's tag). */
	if (l->tag == 0 || !cas32(w, l->tag, 0)) {
		uint32_t cur = ld32(w);
		for (int step = 0;; step++) {
			if (step == 64)
				return EBADHDR_; /* the word keeps changing: only a hostile writer does that */
			if (cur == 0)
				return -EINVAL; /* already free */
			if ((cur & ~0x3fffffffu) != M_HELD || (cur & 0xff) >= p.procs)
				return EBADHDR_;
			uint32_t prev = cmpxchg32(w, cur, 0);
			if (prev == cur)
				break;
			cur = prev;
		}
	}
	FAULT("mempool.put.after_release");
	l->cursor = (uint32_t)index;
	/* P2: load waiters after the release CAS; pairs with W2 in park. */
	if (ld32((uint32_t *)(p.b + M_WAITERS)) != 0)
		pool_wake(&p);
	return 0;
}

int32_t shmkit_mempool_park(struct shmkit_mempool_local *l, double timeout_ms)
{
	struct pool p;
	int e = pool_bind(l, &p);
	if (e < 0)
		return e;
	if (!(timeout_ms >= 0))
		return -EINVAL;
	if (l->slot < 0)
		return -EINVAL; /* get first: the parked count lives in our slot */
	uint32_t s = (uint32_t)l->slot;
	uint32_t *waiters = (uint32_t *)(p.b + M_WAITERS);
	uint32_t seen = ld32((uint32_t *)(p.b + M_WAKESEQ)); /* W1 */
	add32(slot_parked(&p, s), 1);                        /* W2 */
	add32(waiters, 1);
	__atomic_fetch_add(&l->parked, 1, SEQ);
	int rc = 0;
	for (uint32_t i = 0; i < p.n; i++) {
		if (ld32(&p.states[i]) == 0) {
			rc = 1;
			break;
		}
	}
	if (rc == 0 && pool_reclaim(&p) > 0)
		rc = 1;
	if (rc == 0) {
		FAULT("mempool.get.parked");
		double ms = timeout_ms < M_PARK_SLICE_MS ? timeout_ms : M_PARK_SLICE_MS;
		rc = shmkit_futex_wait(l->map_id, l->offset + M_WAKESEQ, seen, ms);
		if (rc == 1)
			rc = 0;
		if (rc == -ETIMEDOUT && timeout_ms > M_PARK_SLICE_MS)
			rc = 0;
	}
	if (ops_take_one(&l->parked)) { /* unless close() already gave it back */
		struct pool p2;
		if (pool_bind(l, &p2) == 0 && p2.b == p.b) {
			__atomic_fetch_sub(waiters, 1, SEQ);
			__atomic_fetch_sub(slot_parked(&p, s), 1, SEQ);
		}
	}
	return rc;
}

int32_t shmkit_mempool_available(struct shmkit_mempool_local *l)
{
	struct pool p;
	int e = pool_bind(l, &p);
	if (e < 0)
		return e;
	int32_t n = 0;
	for (uint32_t i = 0; i < p.n; i++)
		n += __atomic_load_n(&p.states[i], __ATOMIC_RELAXED) == 0;
	return n;
}

int32_t shmkit_mempool_release(struct shmkit_mempool_local *l)
{
	struct pool p;
	int e = pool_bind(l, &p);
	if (e < 0)
		return e;
	if (l->slot >= 0) {
		uint32_t s = (uint32_t)l->slot;
		int held = 0;
		for (uint32_t i = 0; i < p.n && !held; i++)
			held = ld32(&p.states[i]) == l->tag;
		uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
		if (!held)
			cas64(slot_id(&p, s), me, 0); /* R3' */
		uint32_t parked = __atomic_exchange_n(&l->parked, 0, SEQ);
		if (parked > 0) {
			__atomic_fetch_sub((uint32_t *)(p.b + M_WAITERS), parked, SEQ);
			__atomic_fetch_sub(slot_parked(&p, s), parked, SEQ);
		}
		l->slot = -1;
		l->tag = 0;
	}
	return 0;
}
