/* SPDX-License-Identifier: MIT */
/*
 * Channel operations in C, for bindings whose per-call cost is high (Python): one library call per
 * operation. A second implementation of docs/layout/channel.md, step for step the same as
 * src/channel.ts (the comments name the same steps: P1..P3, O1, O2, T1, Q1, D1, F1, W1..W3, R1
 * a/b/c), held against the TypeScript one by the cross-language tests
 * (tests/python_channel_test.ts). The ready ring (a kind-1 ring, docs/layout/ring.md) is driven
 * through the ring local embedded in the channel local, with csrc/ops.c's ring operations; only
 * the orphan scan of R1b reads its slots directly, as src/channel.ts does.
 *
 * Each channel is driven through a process-local struct shmkit_chan_local (csrc/shmkit.h) filled
 * by shmkit_chan_attach; every call re-checks that struct against its mapping and against the
 * header's sizes (a hostile struct is -EINVAL, a stale mapping -EBADF, a header changed under us
 * -SHMKIT_EBADHDR). Every index and length read from shared memory is range-checked; every loop
 * over shared state is bounded (by slots, maxProcesses or the ring's slot count). Only
 * shmkit_chan_park sleeps (at most its timeout, -EINTR on a handled signal).
 *
 * Mode 2 (spsc-ordered, src/channel.ts #o*) runs behind the same entry points (the o_* functions
 * below): no participant entries or slot-table states; its per-block state lives in a scratch
 * buffer the caller owns (shmkit_chan_scratch), guarded by a keyed check in chan_bind.
 */
#define _GNU_SOURCE
#include "shmkit.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops_common.h"

#define RLX __ATOMIC_RELAXED

/* Layout (docs/layout/channel.md, src/channel.ts CHANNEL). */
#define C_SLOTS 64
#define C_SLOTSIZE 68
#define C_MODE 72
#define C_ENTRYSIZE 76
#define C_STRIDE 80
#define C_PROCSOFF 88
#define C_READYOFF 96
#define C_TABLEOFF 104
#define C_DATAOFF 112
#define C_RECLAIMED 120
#define C_MAXPROCS 124
#define C_WAITERS 128
#define C_WAKESEQ 132
#define C_HEADER 192
#define ENTRY_SIZE 8u
#define PROC_SIZE 64u
#define E_GEN 8
#define E_OP 12
#define E_PARKED 16
#define MAX_SLOTS (1u << 24)
#define MAX_PROCS 256u
#define DATA_ALIGN 4096u
/* State words: 0 FREE, else phase << 30 | tag; tag = (gen & GEN_MASK) << 8 | p. */
#define PH_LOANED 1u
#define PH_HELD 2u
#define PH_QUEUED 3u
#define GEN_MASK 0x3fffffu
#define TAG_MASK 0x3fffffffu
#define RECLAIM_EVERY_MS 250.0
#define PARK_SLICE_MS 50.0
/* An spsc sender that finds the channel full polls this long before it registers as a waiter
 * (src/channel.ts #poll): it resumes when the block at its cursor and the one TAKE_AHEAD - 1 past
 * it are FREE (a table line after the receiver left it), with a whole-table look every SCAN_EVERY
 * polls (blocks released out of order). No syscall, and no wake asked of the receiver. */
#define POLL_NS 20000.0 /* src/channel.ts SPIN_MS */
#define TAKE_AHEAD 8u
#define SCAN_EVERY 16u
/* The ready ring's words R1b reads (docs/layout/ring.md). */
#define R_TAIL 128
#define R_HEAD 192
#define R_HEADER 384
#define EBADHDR_ (-SHMKIT_EBADHDR)

int32_t shmkit_chan_local_size(void) { return (int32_t)sizeof(struct shmkit_chan_local); }

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

struct geo {
	uint64_t stride, ready, table, data, len;
	uint32_t ring_n;
};

/* The layout (slots, slotSize, P) implies (src/channel.ts layoutOf); 0 if impossible. */
static int geometry(uint32_t slots, uint32_t slot_size, uint32_t procs, struct geo *g)
{
	if (slots < 1 || slots > MAX_SLOTS || slot_size < 1 || procs < 1 || procs > MAX_PROCS)
		return 0;
	uint32_t n = 4;
	while (n < slots)
		n <<= 1;
	g->ring_n = n;
	g->stride = align_up(slot_size, 64);
	g->ready = align_up(C_HEADER + (uint64_t)PROC_SIZE * procs, 64);
	g->table = align_up(g->ready + R_HEADER + 8ull * n, 64);
	g->data = align_up(g->table + (uint64_t)ENTRY_SIZE * slots, DATA_ALIGN);
	g->len = g->data + g->stride * slots;
	return 1;
}

struct ch {
	struct shmkit_chan_local *l;
	uint8_t *b;     /* the channel's first byte */
	uint32_t *tab;  /* slot table: length at 2i, state at 2i + 1 */
	uint8_t *procs; /* participant table */
	uint8_t *data;  /* block 0 */
	uint64_t stride;
	uint32_t n;     /* slots */
};

#define HW(c, off) ((uint32_t *)((c)->b + (off)))
static inline uint32_t *state_of(struct ch *c, uint32_t i) { return &c->tab[2 * i + 1]; }
static inline uint32_t *length_of(struct ch *c, uint32_t i) { return &c->tab[2 * i]; }
static inline uint64_t *entry_id(struct ch *c, uint32_t p) { return (uint64_t *)(c->procs + PROC_SIZE * p); }
static inline uint32_t *entry_w(struct ch *c, uint32_t p, uint32_t off)
{
	return (uint32_t *)(c->procs + PROC_SIZE * p + off);
}
static inline uint8_t *block_of(struct ch *c, uint32_t i) { return c->data + c->stride * i; }
static inline uint32_t word(uint32_t phase, uint32_t tag) { return phase << 30 | tag; }

static int o_bind_ok(const struct shmkit_chan_local *l);

static void chan_refork(struct shmkit_chan_local *l)
{
	/* A forked child is a new process: the parent's entry, tag and parks are not its own (the
	 * ring local refreshes itself on its next call; its roles are cleared now so that spsc_empty
	 * does not take the parent's consumer role for ours before that). */
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->p = -1;
	l->tag = 0;
	l->parked = 0;
	l->bad = 0;
	l->ring.roles = 0;
	l->o_roles = 0; /* mode 2: the roles were the parent's; they are taken again on first use */
	l->fork_gen = ops_fork_gen();
}

static int chan_bind(struct shmkit_chan_local *l, struct ch *c)
{
	struct geo g;
	if (!l || !geometry(l->slots, l->slot_size, l->procs, &g) || l->mode > 2 || l->ready_off != g.ready ||
	    l->table_off != g.table || l->data_off != g.data || l->cursor >= l->slots || l->bad > 1)
		return -EINVAL;
	if (l->p < -1 || l->p >= (int32_t)l->procs || (l->p < 0 && l->tag != 0) ||
	    (l->p >= 0 && (l->tag > TAG_MASK || (l->tag & 0xff) != (uint32_t)l->p)))
		return -EINVAL;
	const struct shmkit_ring_local *r = &l->ring;
	if (r->map_id != l->map_id || r->offset != l->offset + l->ready_off || r->capacity != l->slots ||
	    r->mode != (l->mode == 1 ? 3u : 0u) || r->slots != g.ring_n)
		return -EINVAL;
	if (l->mode == 2 && !o_bind_ok(l))
		return -EINVAL; /* no scratch (shmkit_chan_scratch), or counters out of range */
	int err = 0;
	uint8_t *b = ops_range_at(l->map_id, l->offset, g.len, &err);
	if (!b)
		return err;
	/* The header must still be the one we validated (a reformat under us is not our channel). */
	if (__atomic_load_n((uint32_t *)(b + C_SLOTS), RLX) != l->slots ||
	    __atomic_load_n((uint32_t *)(b + C_SLOTSIZE), RLX) != l->slot_size ||
	    __atomic_load_n((uint32_t *)(b + C_MAXPROCS), RLX) != l->procs)
		return EBADHDR_;
	if (l->fork_gen != ops_fork_gen())
		chan_refork(l);
	c->l = l;
	c->b = b;
	c->tab = (uint32_t *)(b + g.table);
	c->procs = b + C_HEADER;
	c->data = b + g.data;
	c->stride = g.stride;
	c->n = l->slots;
	return 0;
}

int32_t shmkit_chan_attach(int32_t id, double offset, uint32_t token, struct shmkit_chan_local *l)
{
	if (!l || token == 0)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(id, offset, C_HEADER, &err);
	if (!b)
		return err;
	ops_watch_forks();
	uint32_t hsize, slots, slot_size, mode, esize, procs;
	uint64_t blen, stride, procs_off, ready, table, data;
	memcpy(&hsize, b + 12, 4);
	memcpy(&blen, b + 16, 8);
	memcpy(&slots, b + C_SLOTS, 4);
	memcpy(&slot_size, b + C_SLOTSIZE, 4);
	memcpy(&mode, b + C_MODE, 4);
	memcpy(&esize, b + C_ENTRYSIZE, 4);
	memcpy(&stride, b + C_STRIDE, 8);
	memcpy(&procs_off, b + C_PROCSOFF, 8);
	memcpy(&ready, b + C_READYOFF, 8);
	memcpy(&table, b + C_TABLEOFF, 8);
	memcpy(&data, b + C_DATAOFF, 8);
	memcpy(&procs, b + C_MAXPROCS, 4);
	struct geo g;
	/* Every stored offset is recomputed from slots, slotSize and maxProcesses (channel.md). */
	if (hsize != C_HEADER || !geometry(slots, slot_size, procs, &g) || mode > 2 || esize != ENTRY_SIZE ||
	    blen != g.len || stride != g.stride || procs_off != C_HEADER || ready != g.ready || table != g.table ||
	    data != g.data)
		return EBADHDR_;
	if (!ops_range_at(id, offset, g.len, &err))
		return EBADHDR_; /* the channel does not fit its mapping */
	memset(l, 0, sizeof *l);
	int r = shmkit_ring_attach(id, offset + (double)g.ready, token, &l->ring);
	if (r < 0)
		return r == -EINVAL ? EBADHDR_ : r;
	if (l->ring.capacity != slots || l->ring.mode != (mode == 1 ? 3u : 0u) || l->ring.slots != g.ring_n)
		return EBADHDR_; /* the ready ring is not spsc/mpmc of `slots` */
	l->offset = offset;
	l->map_id = id;
	l->slots = slots;
	l->slot_size = slot_size;
	l->mode = mode;
	l->procs = procs;
	l->ready_off = (uint32_t)g.ready; /* < 2^32: at most ~2^28 for 2^24 slots */
	l->table_off = (uint32_t)g.table;
	l->data_off = (uint32_t)g.data;
	l->p = -1;
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->fork_gen = ops_fork_gen();
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* spsc-ordered (mode 2, docs/layout/channel.md "spsc-ordered (mode 2)", src/channel.ts #o*): the
 * ready ring's positions are the messages, the value of position p is the block of message p, and
 * blocks follow each other in ring order. The sender publishes with one tail store, the receiver
 * frees with one head store; no slot-table state words, no CAS, no participant entries. The
 * sender pre-touch and the receive pacing of src/channel.ts (heuristics, not layout) are not done
 * here. */

#define SKIP 0xffffffffu
#define R_CWAIT 256
#define R_PWAIT 260
#define R_CSLEEP 264
#define R_PSLEEP 268

static uint64_t o_key;

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The keyed check of a local's scratch: a struct of random bytes never passes it. */
static uint64_t o_check(const struct shmkit_chan_local *l)
{
	uint64_t k = __atomic_load_n(&o_key, RLX);
	if (k == 0) {
		uint64_t nk = mix64((uint64_t)shmkit_now_ns() ^ (uint64_t)(uintptr_t)&o_key ^
				    ((uint64_t)shmkit_getpid() << 32)) | 1;
		if (!__atomic_compare_exchange_n(&o_key, &k, nk, 0, SEQ, SEQ))
			nk = k;
		k = nk;
	}
	return mix64((uint64_t)(uintptr_t)l->o_mem ^ mix64(l->o_len ^ k) ^ mix64((uint64_t)(uintptr_t)l + k));
}

static uint64_t o_bytes(uint32_t slots, uint32_t ring_n) { return 6ull * slots + ring_n; }

/* chan_bind's extra checks of a mode 2 local: its scratch, and its counters in range (every loop
 * below is bounded by them). */
static int o_bind_ok(const struct shmkit_chan_local *l)
{
	uint32_t n = l->slots;
	return l->o_mem && l->o_len == o_bytes(n, l->ring.slots) && l->o_chk == o_check(l) && l->o_roles <= 3 &&
	       l->o_b < n && l->o_n <= n && l->o_next - l->o_head <= n && l->o_tc - l->o_head <= n &&
	       l->o_tc - l->o_next <= n;
}

static inline uint32_t *o_pos(struct ch *c) { return (uint32_t *)(void *)c->l->o_mem; }
static inline uint8_t *o_done(struct ch *c) { return c->l->o_mem + 4ull * c->n; }
static inline uint8_t *o_held(struct ch *c) { return c->l->o_mem + 5ull * c->n; }
static inline uint8_t *o_rel(struct ch *c) { return c->l->o_mem + 6ull * c->n; }
static inline uint32_t *o_rw(struct ch *c, uint32_t off) { return (uint32_t *)(c->b + c->l->ready_off + off); }
/* The ring value of position p (an spsc ring: one u32 per slot, ring.md). */
static inline uint32_t *o_val(struct ch *c, uint32_t p)
{
	return (uint32_t *)(c->b + c->l->ready_off + R_HEADER) + (p & (c->l->ring.slots - 1));
}

/* The sender's start (#oClaimProducer): the ring's producer role, the published tail, the block
 * after the last one sent (a dead sender's reserved blocks were never published). */
static int o_claim_producer(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	int e = ops_ring_role(&l->ring, 1);
	if (e < 0)
		return e == -EINVAL ? EBADHDR_ : e;
	uint32_t t = ld32(o_rw(c, R_TAIL)), h = ld32(o_rw(c, R_HEAD));
	if (t - h > c->n)
		return EBADHDR_; /* tail more than `slots` past head */
	uint32_t prev = __atomic_load_n(o_val(c, t - 1), RLX); /* read once, checked, used as the local */
	if (prev >= c->n)
		return EBADHDR_;
	l->o_t = t;
	l->o_hc = h;
	l->o_n = 0;
	l->o_b = prev + 1 == c->n ? 0 : prev + 1;
	st32(o_rw(c, R_PWAIT), 0); /* only this object sends now: a dead sender's waiter count goes */
	l->o_roles |= 1;
	return 0;
}

/* #oReloadHead: reloads the cached head (A2: acquire the receiver's releases); returns the blocks in
 * flight, unchecked (more than `slots` only when the counters are corrupt). */
static uint32_t o_reload_head(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	uint32_t h = ld32(o_rw(c, R_HEAD));
	l->o_hc = h;
	return l->o_t - h;
}

/* #oTake: reserves the next block in ring order: its index, -1 when every block is in flight or
 * reserved, -errno. */
static int32_t o_take(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	int e;
	if (!(l->o_roles & 1) && (e = o_claim_producer(c)) < 0)
		return e;
	uint32_t n = c->n;
	if (l->o_t + l->o_n - l->o_hc >= n) {
		uint32_t used = o_reload_head(c);
		if (used > n)
			return EBADHDR_;
		if (used + l->o_n >= n)
			return -1;
	}
	uint32_t b = l->o_b + l->o_n;
	if (b >= n)
		b -= n;
	l->o_n++;
	o_done(c)[b] = 0;
	FAULT("channel.take.after_claim");
	return (int32_t)b;
}

/* #oPublish: the reserved blocks that are done, in order, up to the first one still loaned: one
 * value store each, then the tail store (the commit), then a wake if the receiver is parked. */
static void o_publish(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	uint8_t *done = o_done(c);
	uint32_t n = c->n, t = l->o_t, b = l->o_b, k = 0;
	while (k < l->o_n) {
		uint8_t d = done[b];
		if (d == 0)
			break;
		if (d == 2)
			__atomic_store_n(length_of(c, b), SKIP, RLX);
		__atomic_store_n(o_val(c, t + k), b, RLX); /* published by the tail store */
		k++;
		b = b + 1 == n ? 0 : b + 1;
	}
	if (k == 0)
		return;
	l->o_t = t + k;
	l->o_n -= k;
	l->o_b = b;
	st32(o_rw(c, R_TAIL), l->o_t); /* the commit (seq_cst, a release); pairs with A1 */
	FAULT("channel.send.after_enqueue");
	if (ld32(o_rw(c, R_CWAIT)) != 0 && xchg32(o_rw(c, R_CSLEEP), 0) != 0)
		shmkit_futex_wake(l->map_id, l->offset + l->ready_off + R_TAIL, 0);
}

/* A block the caller names as a loan: reserved by this sender and not yet sent or discarded. */
static int o_is_loan(struct ch *c, int32_t index)
{
	struct shmkit_chan_local *l = c->l;
	if (!(l->o_roles & 1) || index < 0 || (uint32_t)index >= c->n)
		return 0;
	uint32_t d = (uint32_t)index >= l->o_b ? (uint32_t)index - l->o_b : (uint32_t)index + c->n - l->o_b;
	return d < l->o_n && o_done(c)[index] == 0;
}

/* #oUnloan: the last reservation is simply undone; any other becomes a SKIP record. */
static void o_unloan(struct ch *c, uint32_t b)
{
	struct shmkit_chan_local *l = c->l;
	uint32_t last = l->o_b + l->o_n - 1;
	if (last >= c->n)
		last -= c->n;
	if (l->o_n > 0 && b == last && o_done(c)[b] == 0) {
		l->o_n--;
		return;
	}
	o_done(c)[b] = 2;
	o_publish(c);
}

/* True when a block is free for this sender (reloads the head). */
static int o_room(struct ch *c)
{
	uint32_t used = o_reload_head(c);
	return used <= c->n && used + c->l->o_n < c->n;
}

static int o_claim_consumer(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	int e = ops_ring_role(&l->ring, 0);
	if (e < 0)
		return e == -EINVAL ? EBADHDR_ : e;
	uint32_t h = ld32(o_rw(c, R_HEAD)); /* a dead receiver's unreleased messages come again */
	l->o_next = l->o_head = l->o_pub = l->o_tc = h;
	memset(o_held(c), 0, c->n);
	memset(o_rel(c), 0, l->ring.slots);
	l->o_roles |= 2;
	return 0;
}

/* #oRetire: marks position p released and moves the local head over every released position. */
static void o_retire(struct ch *c, uint32_t p)
{
	struct shmkit_chan_local *l = c->l;
	uint8_t *rel = o_rel(c);
	uint32_t mask = l->ring.slots - 1;
	if (p != l->o_head) {
		if (p - l->o_head < l->o_next - l->o_head)
			rel[p & mask] = 1;
		return;
	}
	uint32_t end = l->o_next, h = p + 1;
	while (h != end && rel[h & mask] != 0) { /* at most o_next - o_head <= slots steps */
		rel[h & mask] = 0;
		h++;
	}
	l->o_head = h;
}

/* #oPublishHead: stores the ring's head if it moved (R2: releases the blocks; pairs with A2),
 * then wakes a parked sender (W2: one wake per park). */
static void o_publish_head(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	if (l->o_head == l->o_pub)
		return;
	l->o_pub = l->o_head;
	st32(o_rw(c, R_HEAD), l->o_head);
	if (ld32(o_rw(c, R_PWAIT)) != 0 && xchg32(o_rw(c, R_PSLEEP), 0) != 0)
		shmkit_futex_wake(l->map_id, l->offset + l->ready_off + R_HEAD, 0);
}

/* #oRelease without the head store: 0, or EBADHDR when b is not held by this object. */
static int o_release(struct ch *c, uint32_t b)
{
	FAULT("channel.release.before");
	if (!(c->l->o_roles & 2) || b >= c->n || o_held(c)[b] == 0)
		return EBADHDR_;
	o_held(c)[b] = 0;
	o_retire(c, o_pos(c)[b]);
	return 0;
}

/* #oNextBlock: the next message's block, marked held; -1 when none is queued; EBADHDR (the
 * position dropped); -EBUSY. SKIP records are released on the way, at most one lap per call. */
static int32_t o_next_block(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	int e;
	if (!(l->o_roles & 2) && (e = o_claim_consumer(c)) < 0)
		return e;
	uint32_t n = c->n;
	for (uint32_t guard = 0; guard <= n; guard++) {
		uint32_t p = l->o_next;
		if (p == l->o_tc) {
			uint32_t t = ld32(o_rw(c, R_TAIL)); /* A1: acquire the sender's writes */
			uint32_t ahead = t - l->o_head;
			if (ahead > n || ahead < p - l->o_head)
				return EBADHDR_;
			l->o_tc = t;
			if (p == t) {
				o_publish_head(c); /* skips released on the way */
				return -1;
			}
		}
		uint32_t b = __atomic_load_n(o_val(c, p), RLX); /* read once, checked, used as the local */
		l->o_next = p + 1;
		if (b >= n || o_held(c)[b] != 0) {
			o_retire(c, p); /* the position is dropped */
			o_publish_head(c);
			return EBADHDR_;
		}
		if (__atomic_load_n(length_of(c, b), RLX) == SKIP) {
			o_retire(c, p);
			continue;
		}
		o_pos(c)[b] = p;
		o_held(c)[b] = 1;
		FAULT("channel.recv.after_dequeue");
		return (int32_t)b;
	}
	o_publish_head(c);
	return -1;
}

/* One received message of mode 2: (length << 24 | block), -EAGAIN, EBADHDR (a corrupt length:
 * the block released), -errno. */
static int64_t o_recv(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	if (l->bad) {
		l->bad = 0;
		return EBADHDR_; /* reported after the good messages of a batch */
	}
	int32_t b = o_next_block(c);
	if (b < 0)
		return b == -1 ? -EAGAIN : b;
	uint32_t len = __atomic_load_n(length_of(c, (uint32_t)b), RLX); /* read once, check, use the local */
	if (len > l->slot_size) {
		o_release(c, (uint32_t)b);
		o_publish_head(c);
		return EBADHDR_;
	}
	return (int64_t)len << 24 | (uint32_t)b;
}

static int32_t o_recv_batch(struct ch *c, uint32_t *out, uint32_t m)
{
	struct shmkit_chan_local *l = c->l;
	if (l->bad) {
		l->bad = 0;
		return EBADHDR_;
	}
	uint32_t good = 0;
	int32_t err = 0;
	while (good < m) {
		int32_t b = o_next_block(c);
		if (b == -1)
			break;
		if (b < 0) {
			err = b;
			break;
		}
		uint32_t len = __atomic_load_n(length_of(c, (uint32_t)b), RLX);
		if (len > l->slot_size) {
			o_release(c, (uint32_t)b);
			err = EBADHDR_;
			break;
		}
		out[2 * good] = (uint32_t)b;
		out[2 * good + 1] = len;
		good++;
	}
	o_publish_head(c);
	if (err < 0) {
		if (good == 0)
			return err;
		if (err == EBADHDR_)
			l->bad = 1; /* the next receive reports it, after these */
	}
	return (int32_t)good;
}

static int32_t o_send_batch(struct ch *c, const uint8_t *data, const uint32_t *lens, int32_t n)
{
	uint64_t off = 0;
	int32_t sent = 0;
	while (sent < n) {
		int32_t b = o_take(c);
		if (b == -1)
			break;
		if (b < 0) {
			o_publish(c);
			return sent > 0 ? sent : b;
		}
		uint32_t len = lens[sent];
		if (len > 0)
			memmove(block_of(c, (uint32_t)b), data + off, len);
		off += len;
		__atomic_store_n(length_of(c, (uint32_t)b), len, RLX); /* published by the tail store */
		o_done(c)[b] = 1;
		sent++;
	}
	if (sent > 0) {
		FAULT("channel.send.after_write");
		o_publish(c);
	}
	return sent;
}

/* One park of mode 2 (the ring's W1, src/channel.ts #oWaitRoom / #waitReady): side 0 a sender on
 * the ring's head (prodWaiters/prodSleep), side 1 a receiver on its tail (consWaiters/consSleep). */
static int32_t o_park(struct ch *c, uint32_t side, double timeout_ms)
{
	struct shmkit_chan_local *l = c->l;
	int e;
	if (side == 0 && !(l->o_roles & 1) && (e = o_claim_producer(c)) < 0)
		return e;
	if (side == 1 && !(l->o_roles & 2) && (e = o_claim_consumer(c)) < 0)
		return e;
	double slice = timeout_ms < PARK_SLICE_MS ? timeout_ms : PARK_SLICE_MS;
	uint32_t *word = o_rw(c, side ? R_TAIL : R_HEAD);
	uint32_t *count = o_rw(c, side ? R_CWAIT : R_PWAIT);
	uint32_t w0 = ld32(word); /* W1: the futex word, read before the re-check */
	add32(count, 1);
	__atomic_fetch_add(&l->ring.waits[side], 1, SEQ); /* given back by close if we never return */
	st32(o_rw(c, side ? R_CSLEEP : R_PSLEEP), 1); /* ask for a wake, then re-check */
	int rc;
	int ready = side ? (int32_t)(ld32(o_rw(c, R_TAIL)) - l->o_next) > 0 : o_room(c);
	if (ready) {
		rc = 1;
	} else {
		/* a short first wait, then the rest of the slice: TypeScript peers publish tail and head
		 * with plain stores on x86-64 */
		rc = futex_wait_short_first(l->map_id, l->offset + l->ready_off + (side ? R_TAIL : R_HEAD), w0, slice);
		if (rc == 1 || (rc == -ETIMEDOUT && timeout_ms > PARK_SLICE_MS))
			rc = 0; /* the word moved, or a slice (not the caller's timeout) ended */
	}
	if (ops_take_one(&l->ring.waits[side])) {
		struct ch c2;
		if (chan_bind(l, &c2) == 0 && c2.b == c->b)
			__atomic_fetch_sub(count, 1, SEQ);
	}
	return rc;
}

/* close() of mode 2 (src/channel.ts close): held messages are released, loans discarded (the
 * last reserved ones unreserved, the others published as SKIP records), then the roles go. */
static void o_close(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	if (l->o_roles & 2) {
		uint8_t *held = o_held(c);
		for (uint32_t b = 0; b < c->n; b++)
			if (held[b])
				o_release(c, b);
		o_publish_head(c);
	}
	if (l->o_roles & 1) {
		uint8_t *done = o_done(c);
		while (l->o_n > 0) { /* trailing loans: unreserved */
			uint32_t last = l->o_b + l->o_n - 1;
			if (last >= c->n)
				last -= c->n;
			if (done[last] != 0)
				break;
			l->o_n--;
		}
		uint32_t b = l->o_b;
		for (uint32_t k = 0; k < l->o_n; k++) {
			if (done[b] == 0)
				done[b] = 2;
			b = b + 1 == c->n ? 0 : b + 1;
		}
		o_publish(c);
	}
	l->o_roles = 0;
}

int32_t shmkit_chan_scratch(struct shmkit_chan_local *l, uint8_t *buf, double len)
{
	struct geo g;
	if (!l || !geometry(l->slots, l->slot_size, l->procs, &g))
		return -EINVAL;
	uint64_t need = l->mode == 2 ? o_bytes(l->slots, g.ring_n) : 0;
	if (!buf)
		return (int32_t)need; /* < 2^31: 6 * 2^24 + 2^24 */
	if (l->mode != 2 || !(len == (double)need) || l->ring.slots != g.ring_n)
		return -EINVAL;
	memset(buf, 0, need);
	l->o_mem = buf;
	l->o_len = need;
	l->o_roles = 0;
	l->o_t = l->o_n = l->o_b = l->o_hc = 0;
	l->o_next = l->o_head = l->o_pub = l->o_tc = 0;
	l->o_chk = o_check(l);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Wakes, reclaim                                                                               */

static void wake_senders(struct ch *c)
{
	add32(HW(c, C_WAKESEQ), 1); /* W3: bump the futex word (seq_cst); pairs with W1 in park */
	shmkit_futex_wake(c->l->map_id, c->l->offset + C_WAKESEQ, 0);
}

static void wake_if_waiters(struct ch *c)
{
	if (ld32(HW(c, C_WAITERS)) != 0) /* W2: after the freeing CAS; pairs with W1 */
		wake_senders(c);
}

struct orphan {
	uint32_t i; /* bit 31: found in the ready ring */
	uint32_t w; /* the QUEUED word read */
};

static struct orphan *find_orphan(struct orphan *o, uint32_t n, uint32_t i)
{
	uint32_t lo = 0, hi = n; /* o is sorted by index (collected in table order) */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint32_t v = o[mid].i & 0x7fffffffu;
		if (v == i)
			return &o[mid];
		if (v < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Marks the orphan candidates the ready ring may still hold (conservative: any value of a
 * non-empty position, src/channel.ts #ringIndices). 0, or 1 when the ring's counters are
 * impossible (then nothing counts as orphaned). */
static int mark_ring_values(struct ch *c, struct orphan *o, uint32_t k)
{
	uint8_t *rb = c->b + c->l->ready_off;
	uint32_t *rs = (uint32_t *)(rb + R_HEADER);
	uint32_t n = c->l->ring.slots, mask = n - 1;
	if (c->l->mode == 0) {
		uint32_t h = ld32((uint32_t *)(rb + R_HEAD)), t = ld32((uint32_t *)(rb + R_TAIL));
		uint32_t used = t - h;
		if (used > n)
			return 1;
		for (uint32_t k2 = 0; k2 < used; k2++) {
			uint32_t v = ld32(&rs[(h + k2) & mask]);
			struct orphan *f = v < c->n ? find_orphan(o, k, v) : NULL;
			if (f)
				f->i |= 0x80000000u;
		}
		return 0;
	}
	for (uint32_t s = 0; s < n; s++) {
		uint32_t sq = ld32(&rs[2 * s + 1]); /* seq first: the value below is at least as new */
		if (((sq - s) & mask) == 0)
			continue; /* EMPTY (or taken) for its position */
		uint32_t v = ld32(&rs[2 * s]);
		struct orphan *f = v < c->n ? find_orphan(o, k, v) : NULL;
		if (f)
			f->i |= 0x80000000u;
	}
	return 0;
}

/* R1 (channel.md Protocol, src/channel.ts reclaim): returns how many blocks were freed. */
static int32_t reclaim(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	uint32_t procs = l->procs;
	uint32_t dead_tag[MAX_PROCS], live_op[MAX_PROCS];
	uint64_t dead_id[MAX_PROCS], id0[MAX_PROCS]; /* id0: every identity at r0, for r2 */
	uint8_t dead[MAX_PROCS], live[MAX_PROCS];
	int quiet = 1; /* no live participant is inside a queue or receive bracket (R1b) */
	for (uint32_t p = 0; p < procs; p++) {
		dead[p] = live[p] = 0;
		uint64_t id = ld64(entry_id(c, p)); /* r0; pairs with P1/P3 */
		id0[p] = id;
		if (id == 0)
			continue;
		if ((int32_t)p == l->p || ops_identity_alive((uint32_t)id, (uint32_t)(id >> 32))) {
			live[p] = 1;
			live_op[p] = ld32(entry_w(c, p, E_OP)); /* r1: before the table is read */
			if (live_op[p] & 1)
				quiet = 0;
			continue;
		}
		/* Dead: its gen is final (only the owner bumps it). Confirm the entry still names it. */
		uint32_t gen = ld32(entry_w(c, p, E_GEN)) & GEN_MASK;
		if (ld64(entry_id(c, p)) != id)
			continue;
		dead[p] = 1;
		dead_tag[p] = gen << 8 | p;
		dead_id[p] = id;
	}
	int32_t freed = 0;
	struct orphan stack[64];
	struct orphan *orph = stack;
	uint32_t k = 0, cap = 64;
	int lost = 0; /* an allocation failed: no R1b this time */
	for (uint32_t i = 0; i < c->n; i++) {
		uint32_t *sw = state_of(c, i);
		uint32_t w = ld32(sw);
		if (w == 0)
			continue;
		uint32_t phase = w >> 30, tag = w & TAG_MASK, p = tag & 0xff;
		if (phase == PH_QUEUED) {
			if (k == cap && !lost) {
				struct orphan *m = malloc(sizeof *m * (size_t)cap * 2);
				if (!m) {
					lost = 1;
				} else {
					memcpy(m, orph, sizeof *m * k);
					if (orph != stack)
						free(orph);
					orph = m;
					cap *= 2;
				}
			}
			if (!lost)
				orph[k++] = (struct orphan){i, w};
			continue;
		}
		/* R1a: LOANED/HELD of a dead tenure, or a malformed word (phase 0 with bits, or p >= P). */
		if (phase == 0 || p >= procs || (dead[p] && dead_tag[p] == tag)) {
			if (cas32(sw, w, 0)) { /* from exactly the word read; pairs with T1, F1, D1 */
				freed++;
				FAULT("channel.reclaim.mid");
			}
		}
	}
	if (k > 0 && quiet && !lost && mark_ring_values(c, orph, k) == 0) {
		/* r2: every live op unchanged since r1: no live process moved a block into or out of the
		 * ring meanwhile, so a QUEUED block the scan did not find is an orphan. And no entry
		 * changed hands since r0 (a process registered after r0 has no r1 op, and its P1 precedes
		 * any QUEUED store or dequeue the scans may have seen: src/channel.ts reclaim). */
		for (uint32_t p = 0; p < procs && quiet; p++)
			if ((live[p] && ld32(entry_w(c, p, E_OP)) != live_op[p]) || ld64(entry_id(c, p)) != id0[p])
				quiet = 0;
		for (uint32_t j = 0; quiet && j < k; j++) {
			if (orph[j].i & 0x80000000u)
				continue;
			if (cas32(state_of(c, orph[j].i), orph[j].w, 0)) { /* R1b */
				freed++;
				FAULT("channel.reclaim.mid");
			}
		}
	}
	if (orph != stack)
		free(orph);
	for (uint32_t p = 0; p < procs; p++) {
		if (!dead[p])
			continue;
		/* R1c / P3: free the dead entry once its blocks are back: take over its parked count, then
		 * CAS identity -> 0. A gen that moved means a new tenant. */
		if ((ld32(entry_w(c, p, E_GEN)) & GEN_MASK) != (dead_tag[p] >> 8))
			continue;
		uint32_t parked = xchg32(entry_w(c, p, E_PARKED), 0);
		if ((int32_t)parked > 0)
			__atomic_fetch_sub(HW(c, C_WAITERS), parked, SEQ);
		cas64(entry_id(c, p), dead_id[p], 0);
	}
	if (freed > 0) {
		add32(HW(c, C_RECLAIMED), (uint32_t)freed);
		wake_if_waiters(c);
	}
	return freed;
}

int32_t shmkit_chan_reclaim(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e == 0 && l->mode == 2)
		return 0; /* nothing to reclaim (channel.md "spsc-ordered") */
	return e < 0 ? e : reclaim(&c);
}

/* ------------------------------------------------------------------------------------------ */
/* Participants, takes, the queue step                                                          */

static int chan_register(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	if (l->p >= 0)
		return 0;
	uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
	for (int attempt = 0; attempt < 2; attempt++) {
		for (uint32_t p = 0; p < l->procs; p++) {
			/* P1: claim a free entry (seq_cst CAS 0 -> our identity); pairs with P3. */
			if (ld64(entry_id(c, p)) == 0 && cas64(entry_id(c, p), 0, me)) {
				/* P2: a new tenure before any state word carries our tag. */
				uint32_t gen = (add32(entry_w(c, p, E_GEN), 1) + 1) & GEN_MASK;
				/* O0: continue the op counter from an even value (a dead tenant may have left it odd). */
				uint32_t op = ld32(entry_w(c, p, E_OP));
				if (op & 1)
					op++;
				st32(entry_w(c, p, E_OP), op);
				l->op = op;
				l->p = (int32_t)p;
				l->tag = gen << 8 | p;
				l->cursor = (8 * p) % c->n;
				return 0;
			}
		}
		reclaim(c); /* dead processes may be sitting on entries */
	}
	return -EBUSY;
}

int32_t shmkit_chan_register(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e == 0 && l->mode == 2)
		return 0; /* no participant entries */
	return e < 0 ? e : chan_register(&c);
}

/* T1: a FREE block from the cursor (at most `slots` words), LOANED to us; -1 when none. */
static int32_t take(struct ch *c)
{
	struct shmkit_chan_local *l = c->l;
	uint32_t want = word(PH_LOANED, l->tag), n = c->n, i = l->cursor;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t *sw = state_of(c, i);
		/* T1: relaxed peek, then claim with a CAS (seq_cst; acquires the last owner's bytes). */
		if (__atomic_load_n(sw, RLX) == 0 && cas32(sw, 0, want)) {
			FAULT("channel.take.after_claim");
			l->cursor = i + 1 == n ? 0 : i + 1;
			return (int32_t)i;
		}
		i = i + 1 == n ? 0 : i + 1;
	}
	return -1;
}

/* A take on a full channel reclaims at most every RECLAIM_EVERY_MS, then tries once more. */
static int32_t take_or_reclaim(struct ch *c)
{
	int32_t i = take(c);
	if (i >= 0)
		return i;
	double now = shmkit_now_ns() / 1e6;
	if (now - c->l->last_reclaim < RECLAIM_EVERY_MS)
		return -1;
	c->l->last_reclaim = now;
	return reclaim(c) > 0 ? take(c) : -1;
}

int32_t shmkit_chan_take(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) {
		int32_t b = o_take(&c);
		return b == -1 ? -EAGAIN : b;
	}
	if ((e = chan_register(&c)) < 0)
		return e;
	int32_t i = take_or_reclaim(&c);
	return i >= 0 ? i : -EAGAIN;
}

/* Q1 for LOANED block i (its length stored): op odd, QUEUED, enqueue, op even. 0 or -errno. */
static int queue_one(struct ch *c, uint32_t i)
{
	struct shmkit_chan_local *l = c->l;
	uint32_t *opw = entry_w(c, (uint32_t)l->p, E_OP);
	uint32_t queued = word(PH_QUEUED, l->tag);
	/* O1: bracket open (odd), a plain store: the seq_cst QUEUED store below publishes it. */
	__atomic_store_n(opw, ++l->op, RLX);
	st32(state_of(c, i), queued); /* Q1: LOANED -> QUEUED by the owner; publishes length and bytes */
	FAULT("channel.send.after_queued");
	int32_t r = shmkit_ring_enqueue1(&l->ring, i); /* C3: never full */
	if (r == 1)
		FAULT("channel.send.after_enqueue");
	else
		cas32(state_of(c, i), queued, 0); /* not enqueued (corrupt ring or EBUSY): ours to give back */
	st32(opw, ++l->op); /* O2: bracket closed (seq_cst) */
	if (r == 1)
		return 0;
	return r < 0 ? (r == -EINVAL ? EBADHDR_ : r) : EBADHDR_; /* full while a slot was free: corrupt */
}

int32_t shmkit_chan_send(struct shmkit_chan_local *l, const uint8_t *data, uint32_t n)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if ((!data && n > 0) || n > l->slot_size)
		return -EINVAL;
	if (l->mode == 2) {
		int32_t b = o_take(&c);
		if (b < 0)
			return b == -1 ? 0 : b;
		if (n > 0)
			memmove(block_of(&c, (uint32_t)b), data, n);
		__atomic_store_n(length_of(&c, (uint32_t)b), n, RLX); /* published by the tail store */
		FAULT("channel.send.after_write");
		o_done(&c)[b] = 1;
		o_publish(&c);
		return 1;
	}
	if ((e = chan_register(&c)) < 0)
		return e;
	int32_t i = take_or_reclaim(&c);
	if (i < 0)
		return 0;
	if (n > 0)
		memmove(block_of(&c, (uint32_t)i), data, n); /* data may be a view of this very mapping */
	__atomic_store_n(length_of(&c, (uint32_t)i), n, RLX); /* published by the QUEUED store (Q1) */
	FAULT("channel.send.after_write");
	e = queue_one(&c, (uint32_t)i);
	return e < 0 ? e : 1;
}

/* Q1 for the k LOANED blocks idx[0, k) (their lengths stored): one bracket, the QUEUED stores, one
 * burst enqueue (channel.md: "A batch does one op bracket and one burst enqueue", src/channel.ts
 * #queueMany). 0 or -errno; blocks not enqueued are CASed back to FREE inside the bracket. */
static int queue_many(struct ch *c, const uint32_t *idx, uint32_t k)
{
	struct shmkit_chan_local *l = c->l;
	uint32_t *opw = entry_w(c, (uint32_t)l->p, E_OP);
	uint32_t queued = word(PH_QUEUED, l->tag);
	__atomic_store_n(opw, ++l->op, RLX); /* O1, published by the QUEUED stores */
	for (uint32_t j = 0; j < k; j++)
		st32(state_of(c, idx[j]), queued); /* Q1 */
	FAULT("channel.send.after_queued");
	int32_t r = shmkit_ring_enqueue(&l->ring, idx, (int32_t)k, SHMKIT_BURST); /* C3: never short */
	uint32_t m = r > 0 ? (uint32_t)r : 0;
	if (m > 0)
		FAULT("channel.send.after_enqueue");
	for (uint32_t j = m; j < k; j++)
		cas32(state_of(c, idx[j]), queued, 0); /* not enqueued: ours to give back */
	st32(opw, ++l->op); /* O2 */
	if (m < k)
		wake_if_waiters(c); /* blocks came back */
	if (m == k)
		return 0;
	if (r < 0 && r != -EINVAL)
		return r;  /* -EBUSY: an spsc ring's producer role is another process's */
	return EBADHDR_; /* a corrupt ring, or full while blocks were free */
}

#define SEND_CHUNK 256u

int32_t shmkit_chan_send_batch(struct shmkit_chan_local *l, const uint8_t *data, double total, const uint32_t *lens,
			       int32_t n)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (n < 0 || (n > 0 && (!lens || (!data && total > 0))) || !(total >= 0))
		return -EINVAL;
	/* Every length fits a slot and the lengths add up to at most the bytes the caller passed. */
	double sum = 0;
	for (int32_t j = 0; j < n; j++) {
		if (lens[j] > l->slot_size)
			return -EINVAL;
		sum += lens[j];
	}
	if (sum > total)
		return -EINVAL;
	if (n == 0)
		return 0;
	if (l->mode == 2)
		return o_send_batch(&c, data, lens, n);
	if ((e = chan_register(&c)) < 0)
		return e;
	uint32_t idx[SEND_CHUNK];
	uint64_t off = 0;
	int32_t sent = 0;
	while (sent < n) {
		uint32_t k = 0, want = (uint32_t)(n - sent) < SEND_CHUNK ? (uint32_t)(n - sent) : SEND_CHUNK;
		if (want > c.n)
			want = c.n;
		while (k < want) {
			/* The call's first take may reclaim (at most every 250 ms), as a single send's does. */
			int32_t i = sent == 0 && k == 0 ? take_or_reclaim(&c) : take(&c);
			if (i < 0)
				break;
			uint32_t len = lens[sent + (int32_t)k];
			if (len > 0)
				memmove(block_of(&c, (uint32_t)i), data + off, len);
			off += len;
			__atomic_store_n(length_of(&c, (uint32_t)i), len, RLX); /* published by Q1 */
			idx[k++] = (uint32_t)i;
		}
		if (k == 0)
			break;
		FAULT("channel.send.after_write");
		if ((e = queue_many(&c, idx, k)) < 0)
			return e;
		sent += (int32_t)k;
		if (k < want)
			break; /* no free block left */
	}
	return sent;
}

int32_t shmkit_chan_queue(struct shmkit_chan_local *l, int32_t index, uint32_t n)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) {
		if (n > l->slot_size || !o_is_loan(&c, index))
			return -EINVAL; /* not a loan of this object */
		__atomic_store_n(length_of(&c, (uint32_t)index), n, RLX);
		FAULT("channel.send.after_write");
		o_done(&c)[index] = 1;
		o_publish(&c);
		return 0;
	}
	if (index < 0 || (uint32_t)index >= c.n || n > l->slot_size || l->p < 0)
		return -EINVAL;
	if (ld32(state_of(&c, (uint32_t)index)) != word(PH_LOANED, l->tag))
		return -EINVAL; /* not loaned to this object */
	__atomic_store_n(length_of(&c, (uint32_t)index), n, RLX);
	FAULT("channel.send.after_write");
	return queue_one(&c, (uint32_t)index);
}

int32_t shmkit_chan_unloan(struct shmkit_chan_local *l, int32_t index)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) {
		if (!o_is_loan(&c, index))
			return -EINVAL;
		o_unloan(&c, (uint32_t)index);
		return 0;
	}
	if (index < 0 || (uint32_t)index >= c.n || l->p < 0)
		return -EINVAL;
	if (!cas32(state_of(&c, (uint32_t)index), word(PH_LOANED, l->tag), 0))
		return -EINVAL;
	wake_if_waiters(&c);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Receiving and releasing                                                                      */

/* An spsc receiver that holds the ring's consumer role sees an empty ring from its two counters
 * without opening a bracket (the head is ours alone). */
static int spsc_empty(struct ch *c)
{
	if (c->l->mode != 0 || !(c->l->ring.roles & 2))
		return 0;
	uint8_t *rb = c->b + c->l->ready_off;
	return ld32((uint32_t *)(rb + R_TAIL)) == ld32((uint32_t *)(rb + R_HEAD));
}

/* D1's claim of index v: 1 if block v was QUEUED and is now HELD by us. */
static int claim(struct ch *c, uint32_t v)
{
	if (v >= c->n)
		return 0; /* the ready ring returned an index out of range */
	uint32_t *sw = state_of(c, v);
	uint32_t s = ld32(sw);
	/* D1: CAS from the exact QUEUED word (seq_cst; acquires Q1's length and bytes). A second copy
	 * of an index (or any other state) fails. */
	return (s >> 30) == PH_QUEUED && cas32(sw, s, word(PH_HELD, c->l->tag));
}

/* F1 without the wake. */
static int free_held(struct ch *c, uint32_t i)
{
	FAULT("channel.release.before");
	/* F1: CAS HELD|tag -> FREE (seq_cst; releases our reads of the block); pairs with T1. */
	return cas32(state_of(c, i), word(PH_HELD, c->l->tag), 0) ? 0 : EBADHDR_;
}

static int recv_prologue(struct ch *c)
{
	int e = chan_register(c);
	if (e < 0)
		return e;
	if (c->l->bad) {
		c->l->bad = 0;
		return EBADHDR_; /* reported after the good messages of a batch */
	}
	return spsc_empty(c) ? -EAGAIN : 0;
}

int64_t shmkit_chan_recv(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2)
		return o_recv(&c);
	if ((e = recv_prologue(&c)) < 0)
		return e;
	uint32_t *opw = entry_w(&c, (uint32_t)l->p, E_OP);
	__atomic_store_n(opw, ++l->op, RLX); /* O1: the ring's seq_cst head store publishes it */
	int64_t v = shmkit_ring_dequeue1(&l->ring);
	int ok = 0;
	if (v >= 0) {
		FAULT("channel.recv.after_dequeue");
		ok = claim(&c, (uint32_t)v);
		FAULT("channel.recv.after_claim");
	}
	st32(opw, ++l->op); /* O2 */
	if (v < 0)
		return v == -EINVAL ? EBADHDR_ : v; /* -EAGAIN: empty */
	if (!ok)
		return EBADHDR_; /* the index is dropped */
	uint32_t i = (uint32_t)v;
	uint32_t len = __atomic_load_n(length_of(&c, i), RLX); /* read once, check, use the local (C2) */
	if (len > l->slot_size) {
		free_held(&c, i);
		wake_if_waiters(&c);
		return EBADHDR_;
	}
	return (int64_t)len << 24 | i;
}

int32_t shmkit_chan_recv_batch(struct shmkit_chan_local *l, uint32_t *out, int32_t max)
{
	struct ch c;
	if (!out || max < 1)
		return -EINVAL;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	uint32_t m = (uint32_t)max < c.n ? (uint32_t)max : c.n;
	if (l->mode == 2)
		return o_recv_batch(&c, out, m);
	if ((e = recv_prologue(&c)) < 0)
		return e == -EAGAIN ? 0 : e;
	uint32_t *opw = entry_w(&c, (uint32_t)l->p, E_OP);
	__atomic_store_n(opw, ++l->op, RLX); /* O1 */
	/* Dequeue into the upper half of out, claim into pairs from the start (a pair j never passes
	 * the index it came from). */
	int32_t k = shmkit_ring_dequeue(&l->ring, out + m, (int32_t)m, SHMKIT_BURST);
	uint32_t g = 0, bad = 0;
	if (k > 0) {
		FAULT("channel.recv.after_dequeue");
		for (uint32_t j = 0; j < (uint32_t)k; j++) {
			uint32_t v = out[m + j];
			if (claim(&c, v))
				out[2 * g++] = v;
			else
				bad++;
		}
		FAULT("channel.recv.after_claim");
	}
	st32(opw, ++l->op); /* O2 */
	if (k < 0)
		return k == -EINVAL ? EBADHDR_ : k;
	uint32_t good = 0, freed = 0;
	for (uint32_t j = 0; j < g; j++) {
		uint32_t i = out[2 * j];
		uint32_t len = __atomic_load_n(length_of(&c, i), RLX);
		if (len > l->slot_size) {
			free_held(&c, i); /* C2 broken: the block comes back, the message is dropped */
			freed++;
			bad++;
			continue;
		}
		out[2 * good] = i;
		out[2 * good + 1] = len;
		good++;
	}
	if (freed)
		wake_if_waiters(&c);
	if (bad) {
		if (good == 0)
			return EBADHDR_;
		l->bad = 1; /* the next receive reports it, after these */
	}
	return (int32_t)good;
}

int32_t shmkit_chan_release(struct shmkit_chan_local *l, int32_t index)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) {
		if (index < 0 || (uint32_t)index >= c.n)
			return -EINVAL;
		e = o_release(&c, (uint32_t)index);
		o_publish_head(&c);
		return e;
	}
	if (index < 0 || (uint32_t)index >= c.n || l->p < 0)
		return -EINVAL;
	e = free_held(&c, (uint32_t)index);
	wake_if_waiters(&c);
	return e;
}

int32_t shmkit_chan_release_batch(struct shmkit_chan_local *l, const uint32_t *out, int32_t n)
{
	struct ch c;
	if (!out || n < 0)
		return -EINVAL;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) {
		int rc = 0;
		for (int32_t j = 0; j < n; j++) {
			uint32_t i = out[2 * j];
			if (i >= c.n) {
				rc = -EINVAL;
				continue;
			}
			if (o_release(&c, i) < 0 && rc == 0)
				rc = EBADHDR_;
		}
		o_publish_head(&c); /* one head store for the batch */
		return rc;
	}
	if (n > 0 && l->p < 0)
		return -EINVAL;
	int rc = 0;
	for (int32_t j = 0; j < n; j++) {
		uint32_t i = out[2 * j];
		if (i >= c.n) {
			rc = -EINVAL;
			continue;
		}
		if (free_held(&c, i) < 0 && rc == 0)
			rc = EBADHDR_;
	}
	if (n > 0)
		wake_if_waiters(&c); /* once per batch, after its last release */
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Waiting, state, close                                                                        */

static int any_free(struct ch *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (__atomic_load_n(state_of(c, i), RLX) == 0)
			return 1;
	return 0;
}

/* The spsc sender's poll before it parks: 1 when it may go on (see POLL_NS), 0 after POLL_NS. */
static int spsc_poll(struct ch *c, double timeout_ms)
{
	uint32_t n = c->n, ahead = (n < TAKE_AHEAD ? n : TAKE_AHEAD) - 1;
	double until = shmkit_now_ns() + (timeout_ms * 1e6 < POLL_NS ? timeout_ms * 1e6 : POLL_NS);
	for (uint32_t k = 1;; k++) {
		uint32_t i = c->l->cursor, a = i + ahead >= n ? i + ahead - n : i + ahead;
		if (k % SCAN_EVERY == 0 ? any_free(c)
					: __atomic_load_n(state_of(c, a), RLX) == 0 && __atomic_load_n(state_of(c, i), RLX) == 0)
			return 1;
		if (shmkit_now_ns() >= until)
			return 0;
		for (volatile int spin = 0; spin < 64; spin++) {
		} /* stay off the receiver's table lines for a moment */
	}
}

int32_t shmkit_chan_park(struct shmkit_chan_local *l, uint32_t side, double timeout_ms)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (side > 1 || !(timeout_ms >= 0))
		return -EINVAL;
	if (l->mode == 2)
		return o_park(&c, side, timeout_ms);
	double slice = timeout_ms < PARK_SLICE_MS ? timeout_ms : PARK_SLICE_MS;
	if (side == 1) {
		/* A receiver parks on the ready ring's tail with the ring's waiter protocol (ring.md). */
		int rc = shmkit_ring_park(&l->ring, 1, slice);
		return rc == -ETIMEDOUT && timeout_ms > PARK_SLICE_MS ? 0 : rc;
	}
	if ((e = chan_register(&c)) < 0)
		return e;
	/* A sender with no free block: reclaim every RECLAIM_EVERY_MS while it waits. */
	double now = shmkit_now_ns() / 1e6;
	if (now - l->last_reclaim >= RECLAIM_EVERY_MS) {
		l->last_reclaim = now;
		if (reclaim(&c) > 0)
			return 1;
	}
	if (l->mode == 0 && spsc_poll(&c, timeout_ms))
		return 1;
	uint32_t p = (uint32_t)l->p;
	uint32_t *waiters = HW(&c, C_WAITERS);
	/* W1: read the futex word, register as a waiter (seq_cst), re-check, park; pairs with W2/W3. */
	uint32_t seen = ld32(HW(&c, C_WAKESEQ));
	add32(entry_w(&c, p, E_PARKED), 1);
	add32(waiters, 1);
	__atomic_fetch_add(&l->parked, 1, SEQ);
	int rc = 0;
	for (uint32_t i = 0; i < c.n; i++) {
		if (ld32(state_of(&c, i)) == 0) { /* the re-check: any FREE block (seq_cst, after W1) */
			rc = 1;
			break;
		}
	}
	if (rc == 0) {
		rc = shmkit_futex_wait(l->map_id, l->offset + C_WAKESEQ, seen, slice);
		if (rc == 1 || (rc == -ETIMEDOUT && timeout_ms > PARK_SLICE_MS))
			rc = 0; /* the word moved, or a slice (not the caller's timeout) ended */
	}
	/* Give the registration back, unless shmkit_chan_close (maybe on another thread) already did. */
	if (ops_take_one(&l->parked)) {
		struct ch c2;
		if (chan_bind(l, &c2) == 0 && c2.b == c.b) {
			__atomic_fetch_sub(waiters, 1, SEQ);
			__atomic_fetch_sub(entry_w(&c, p, E_PARKED), 1, SEQ);
		}
	}
	return rc;
}

int32_t shmkit_chan_size(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) { /* queued: sent and not handed out yet (our next, else the shared head) */
		uint32_t from = (l->o_roles & 2) ? l->o_next : ld32(HW(&c, l->ready_off + R_HEAD));
		int32_t q = (int32_t)(ld32(HW(&c, l->ready_off + R_TAIL)) - from);
		return q < 0 ? 0 : q > (int32_t)c.n ? (int32_t)c.n : q;
	}
	double n = shmkit_ring_count(&l->ring);
	return n < 0 ? (int32_t)n : (int32_t)n;
}

int32_t shmkit_chan_available(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2) { /* blocks not in flight and not reserved by this object */
		uint32_t used = ld32(HW(&c, l->ready_off + R_TAIL)) - ld32(HW(&c, l->ready_off + R_HEAD));
		int64_t a = (int64_t)c.n - (used < c.n ? used : c.n) - ((l->o_roles & 1) ? l->o_n : 0);
		return a < 0 ? 0 : (int32_t)a;
	}
	int32_t n = 0;
	for (uint32_t i = 0; i < c.n; i++)
		n += __atomic_load_n(state_of(&c, i), RLX) == 0;
	return n;
}

int32_t shmkit_chan_close(struct shmkit_chan_local *l)
{
	struct ch c;
	int e = chan_bind(l, &c);
	if (e < 0)
		return e;
	if (l->mode == 2)
		o_close(&c);
	if (l->p >= 0) {
		uint32_t p = (uint32_t)l->p;
		uint32_t loaned = word(PH_LOANED, l->tag), held = word(PH_HELD, l->tag);
		int freed = 0, kept = 0;
		/* Every block still LOANED to or HELD by this object (its messages, loans, and a batch's
		 * claimed blocks) comes back. */
		for (uint32_t i = 0; i < c.n; i++) {
			uint32_t *sw = state_of(&c, i);
			uint32_t w = ld32(sw);
			if (w == loaned || w == held) {
				if (cas32(sw, w, 0))
					freed++;
				else
					kept = 1;
			}
		}
		if (freed)
			wake_if_waiters(&c);
		uint32_t parked = __atomic_exchange_n(&l->parked, 0, SEQ);
		if (parked) {
			__atomic_fetch_sub(HW(&c, C_WAITERS), parked, SEQ);
			__atomic_fetch_sub(entry_w(&c, p, E_PARKED), parked, SEQ);
		}
		/* P3': free our entry only when no LOANED/HELD word carries our tag (CAS id -> 0). */
		if (!kept)
			cas64(entry_id(&c, p), (uint64_t)l->pid | ((uint64_t)l->start_lo << 32), 0);
		l->p = -1;
		l->tag = 0;
	}
	l->bad = 0;
	shmkit_ring_release(&l->ring);
	return 0;
}
