/* SPDX-License-Identifier: MIT */
/*
 * MessageLog operations in C, for bindings whose per-call cost is high (Python): one library call
 * per operation. A second implementation of docs/layout/log.md, step for step the same as
 * src/log.ts (the comments name the same steps: A1..A4, C1, C2, R2, R3, W-R1, W1, W2), held against
 * the TypeScript one by the cross-language tests (tests/python_log_test.ts).
 *
 * Each log is driven through a process-local struct shmkit_log_local (csrc/shmkit.h) filled by
 * shmkit_log_attach; every call re-checks that struct's geometry against the mapping (a hostile
 * struct is -EINVAL, a stale mapping -EBADF). Every length read from shared memory is validated
 * (L1..L4); shared state that breaks an invariant is -SHMKIT_EBADHDR. Every loop over shared state
 * is bounded. Only shmkit_log_park sleeps (at most its timeout, -EINTR on a handled signal).
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

#define RLX __ATOMIC_RELAXED

static inline uint32_t ldr(const uint32_t *p) { return __atomic_load_n(p, RLX); }
static inline void str_(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, RLX); }

/* Layout (docs/layout/log.md, src/log.ts LOG). */
#define L_CAPACITY 64
#define L_MODE 68
#define L_MAXRECORD 72
#define L_DATAOFFSET 76
#define L_SLOTCOUNT 80
#define L_TAIL 128
#define L_HEAD 192
#define L_CLEAN 196
#define L_RWAIT 256
#define L_WWAIT 260
#define L_RSLEEP 264
#define L_WSLEEP 268
#define L_SEQ 272
#define L_WROLE 320
#define L_WTOKEN 328
#define L_RROLE 336
#define L_RTOKEN 344
#define L_HEADER 384
#define L_SLOT 32
#define L_MPSC_SLOTS 32u
#define S_CLAIMPOS 12
#define S_CLAIMLEN 16
#define S_TOKEN 8
#define REC_HDR 8u
#define TYPE_PAD 0x80000000u
#define MAX_TYPE 0xffffu
#define IN_PROGRESS 0x80000000u
#define MIN_CAP 256u
#define MAX_CAP (1u << 30)
#define CAS_TRIES 4096
#define PARK_SLICE_MS 100.0
#define STUCK_MS 2.0
#define EBADHDR_ (-SHMKIT_EBADHDR)

/* ------------------------------------------------------------------------------------------ */
/* Faults (tests only), forks, identity                                                         */

/* Fault points are ops.c's (ops_common.h FAULT); this entry point arms them too. */
int32_t shmkit_log_fault(const uint8_t *spec) { return shmkit_ops_fault(spec); }

/* src/log.ts holderAlive: (pid, low 32 bits of its start time) names a live process. */
static int holder_alive(const struct shmkit_log_local *l, uint32_t pid, uint32_t st)
{
	return (pid == l->pid && st == l->start_lo) || ops_holder_alive(pid, st);
}

int32_t shmkit_log_local_size(void) { return (int32_t)sizeof(struct shmkit_log_local); }

/* ------------------------------------------------------------------------------------------ */
/* Binding a local struct to its mapping                                                        */

struct lg {
	struct shmkit_log_local *l;
	uint8_t *b;     /* the log's first byte */
	uint8_t *data;  /* the data area */
	uint32_t *slots; /* participant slots (8 words each) */
	uint32_t cap, mask, most; /* most: 8 + maxRecord */
};

#define W(g, off) ((uint32_t *)((g)->b + (off)))
#define HDR(g, p) ((uint32_t *)((g)->data + ((p) & (g)->mask)))


static int geometry_ok(uint32_t cap, uint32_t mode, uint32_t max_record, uint32_t data_offset, uint32_t nslots)
{
	if (cap < MIN_CAP || cap > MAX_CAP || (cap & (cap - 1)) != 0 || mode > 1)
		return 0;
	if (max_record > cap / 2 - REC_HDR)
		return 0;
	if (nslots != (mode == 1 ? L_MPSC_SLOTS : 0) || data_offset != L_HEADER + L_SLOT * nslots)
		return 0;
	return 1;
}

static void log_refork(struct shmkit_log_local *l)
{
	/* A forked child is a new process: the parent's roles, slot and waits are not its own. */
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->roles = 0;
	l->slot = -1;
	l->waits[0] = l->waits[1] = 0;
	l->claim_open = 0; /* the parent's claim */
	l->token = (l->token * 2654435761u + l->pid) | 1u;
	l->fork_gen = ops_fork_gen();
}

static int log_bind(struct shmkit_log_local *l, struct lg *g)
{
	if (!l || !geometry_ok(l->capacity, l->mode, l->max_record, l->data_offset, l->nslots) || l->token == 0)
		return -EINVAL;
	if ((l->roles & 1) && l->mode == 1 && (l->slot < 0 || (uint32_t)l->slot >= l->nslots))
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(l->map_id, l->offset, (uint64_t)l->data_offset + l->capacity, &err);
	if (!b)
		return err;
	/* The header must still be the one we validated (a reformat under us is not our log). */
	if (ldr((uint32_t *)(b + L_CAPACITY)) != l->capacity || ldr((uint32_t *)(b + L_MODE)) != l->mode)
		return EBADHDR_;
	if (l->fork_gen != ops_fork_gen())
		log_refork(l);
	g->l = l;
	g->b = b;
	g->data = b + l->data_offset;
	g->slots = (uint32_t *)(b + L_HEADER);
	g->cap = l->capacity;
	g->mask = l->capacity - 1;
	g->most = REC_HDR + l->max_record;
	return 0;
}

int32_t shmkit_log_attach(int32_t id, double offset, uint32_t token, struct shmkit_log_local *l)
{
	if (!l || token == 0)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(id, offset, L_HEADER, &err);
	if (!b)
		return err;
	uint32_t cap = ld32((uint32_t *)(b + L_CAPACITY)), mode = ld32((uint32_t *)(b + L_MODE));
	uint32_t mr = ld32((uint32_t *)(b + L_MAXRECORD)), doff = ld32((uint32_t *)(b + L_DATAOFFSET));
	uint32_t ns = ld32((uint32_t *)(b + L_SLOTCOUNT));
	if (!geometry_ok(cap, mode, mr, doff, ns))
		return EBADHDR_;
	if (!ops_range_at(id, offset, (uint64_t)doff + cap, &err))
		return EBADHDR_; /* does not fit the mapping */
	ops_watch_forks();
	memset(l, 0, sizeof *l);
	l->offset = offset;
	l->map_id = id;
	l->capacity = cap;
	l->mode = mode;
	l->max_record = mr;
	l->data_offset = doff;
	l->nslots = ns;
	l->token = token;
	l->slot = -1;
	l->pid = (uint32_t)shmkit_getpid();
	l->start_lo = ops_start_lo(l->pid);
	l->fork_gen = ops_fork_gen();
	return 0;
}

/* L1/L2 on the shared counters. */
static int check_counters(struct lg *g)
{
	uint32_t t = ld32(W(g, L_TAIL)), h = ld32(W(g, L_HEAD)), c = ld32(W(g, L_CLEAN));
	if ((t | h | c) & 7)
		return EBADHDR_;
	if (t - h > g->cap)
		return EBADHDR_;
	if (g->l->mode == 1 && (h - c > g->cap || t - c > g->cap))
		return EBADHDR_;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Roles and participant slots                                                                  */

static int claim_role(struct lg *g, uint32_t role_off, uint32_t tok_off)
{
	struct shmkit_log_local *l = g->l;
	uint64_t *role = (uint64_t *)(g->b + role_off);
	uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
	for (int attempt = 0; attempt < 64; attempt++) {
		uint64_t cur = ld64(role);
		uint32_t pid = (uint32_t)cur, st = (uint32_t)(cur >> 32);
		if (pid == l->pid && st == l->start_lo) {
			if (ld32(W(g, tok_off)) == l->token)
				return 0;
			return -EBUSY; /* another object of this process */
		}
		if (pid != 0 && holder_alive(l, pid, st))
			return -EBUSY;
		if (cas64(role, cur, me)) {
			st32(W(g, tok_off), l->token);
			return 0;
		}
	}
	return -EBUSY;
}

static void release_role(struct lg *g, uint32_t role_off, uint32_t tok_off)
{
	struct shmkit_log_local *l = g->l;
	if (ld32(W(g, tok_off)) != l->token)
		return;
	st32(W(g, tok_off), 0);
	cas64((uint64_t *)(g->b + role_off), (uint64_t)l->pid | ((uint64_t)l->start_lo << 32), 0);
}

/* mpsc: a free participant slot, or one whose dead owner's claim is behind head (src/log.ts #takeSlot). */
static int take_slot(struct lg *g)
{
	struct shmkit_log_local *l = g->l;
	uint32_t head = ld32(W(g, L_HEAD));
	uint64_t me = (uint64_t)l->pid | ((uint64_t)l->start_lo << 32);
	for (uint32_t i = 0; i < l->nslots; i++) {
		uint32_t *s = g->slots + 8 * i;
		uint32_t pid = ld32(s), st = ld32(s + 1);
		if (pid != 0) {
			if (holder_alive(l, pid, st))
				continue;
			uint32_t len = ld32(s + S_CLAIMLEN / 4), pos = ld32(s + S_CLAIMPOS / 4);
			/* A dead owner's claim must be behind head before its slot is reused (L4). */
			if (len != 0 && (int32_t)(head - pos) < (int32_t)len)
				continue;
		}
		if (cas64((uint64_t *)s, (uint64_t)pid | ((uint64_t)st << 32), me)) {
			str_(s + S_CLAIMLEN / 4, 0);
			str_(s + S_CLAIMPOS / 4, 0);
			st32(s + S_TOKEN / 4, l->token);
			l->slot = (int32_t)i;
			return 0;
		}
	}
	return -EBUSY;
}

static int start_writer(struct lg *g)
{
	struct shmkit_log_local *l = g->l;
	if (l->mode == 1) {
		int e = take_slot(g);
		if (e < 0)
			return e;
	} else {
		int e = claim_role(g, L_WROLE, L_WTOKEN);
		if (e < 0)
			return e;
		uint32_t t = ld32(W(g, L_TAIL)), h = ld32(W(g, L_HEAD));
		if (t - h > g->cap || (t & 7)) {
			release_role(g, L_WROLE, L_WTOKEN);
			return EBADHDR_;
		}
		l->w_tail = t;
		l->w_limit = h;
	}
	l->roles |= 1;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                      */

static void wake_reader(struct lg *g)
{
	/* W2: only if a reader registered; only the waker that clears readSleep bumps and wakes. */
	if (ld32(W(g, L_RWAIT)) != 0 && xchg32(W(g, L_RSLEEP), 0) != 0) {
		__atomic_fetch_add(W(g, L_SEQ), 1, SEQ);
		shmkit_futex_wake(g->l->map_id, g->l->offset + L_SEQ, 0x7fffffff);
	}
}

static void wake_writers(struct lg *g)
{
	if (ld32(W(g, L_WWAIT)) != 0 && xchg32(W(g, L_WSLEEP), 0) != 0)
		shmkit_futex_wake(g->l->map_id, g->l->offset + (g->l->mode == 1 ? L_CLEAN : L_HEAD), 0x7fffffff);
}

/* Padding bytes before a record of `rec` bytes at position t (0 when it fits before the end). */
static uint32_t pad_for(struct lg *g, uint32_t t, uint32_t rec)
{
	uint32_t to_end = g->cap - (t & g->mask);
	return rec > to_end ? to_end : 0;
}

static void fill(struct lg *g, uint32_t p, const uint8_t *data, uint32_t n, uint32_t type)
{
	uint32_t *h = HDR(g, p);
	str_(h + 1, type);
	if (n) {
		memcpy((uint8_t *)(h + 2), data, n);
		FAULT("log.write.mid_payload");
	}
}

int32_t shmkit_log_write(struct shmkit_log_local *l, const uint8_t *data, uint32_t n, uint32_t type)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	if (n > l->max_record || type > MAX_TYPE || (n && !data))
		return -EINVAL;
	if (!(l->roles & 1) && (e = start_writer(&g)) < 0)
		return e;
	if (l->claim_open)
		return -EINPROGRESS; /* a claim of this object is open */
	uint32_t rec = (REC_HDR + n + 7) & ~7u;
	if (l->mode == 0) {
		uint32_t t = l->w_tail;
		uint32_t pad = pad_for(&g, t, rec);
		uint32_t used = t - l->w_limit;
		if (used > g.cap || (uint64_t)pad + rec > g.cap - used) {
			uint32_t h = ld32(W(&g, L_HEAD)); /* A2: acquire head; pairs with R2 */
			used = t - h;
			if (used > g.cap)
				return EBADHDR_; /* L1 */
			l->w_limit = h;
			if ((uint64_t)pad + rec > g.cap - used)
				return 0;
		}
		FAULT("log.write.after_claim");
		if (pad) {
			uint32_t *ph = HDR(&g, t);
			str_(ph, pad);
			str_(ph + 1, TYPE_PAD);
			t += pad;
		}
		fill(&g, t, data, n, type);
		FAULT("log.write.before_commit");
		str_(HDR(&g, t), REC_HDR + n);
		st32(W(&g, L_TAIL), t + rec); /* W-R1: publish tail (release); pairs with A1 */
		l->w_tail = t + rec;
		FAULT("log.write.after_commit");
		wake_reader(&g);
		return 1;
	}
	uint32_t *s = g.slots + 8 * (uint32_t)l->slot;
	for (int attempt = 0; attempt < CAS_TRIES; attempt++) {
		uint32_t t = ld32(W(&g, L_TAIL));
		uint32_t c = ld32(W(&g, L_CLEAN)); /* A4: pairs with R3 */
		uint32_t used = t - c;
		if (used > g.cap || (t & 7)) {
			if (ld32(W(&g, L_TAIL)) != t)
				continue; /* moved under us */
			return EBADHDR_; /* L1, L2 */
		}
		uint32_t pad = pad_for(&g, t, rec);
		if ((uint64_t)pad + rec > g.cap - used) {
			st32(s + S_CLAIMLEN / 4, 0);
			return 0;
		}
		uint32_t need = pad + rec;
		/* Slot first (L4): a reader that finds this claim unwritten can find its claimer. */
		str_(s + S_CLAIMPOS / 4, t);
		st32(s + S_CLAIMLEN / 4, need);
		if (!cas32(W(&g, L_TAIL), t, t + need)) /* C1: claim (seq_cst) */
			continue;
		FAULT("log.write.after_claim");
		uint32_t p = t;
		if (pad) {
			uint32_t *ph = HDR(&g, t);
			str_(ph + 1, TYPE_PAD);
			st32(ph, pad); /* a complete padding record */
			p = t + pad;
		}
		/* The marker: the first store into the record (seq_cst, so no payload store passes it). */
		st32(HDR(&g, p), IN_PROGRESS | rec);
		FAULT("log.write.after_marker");
		fill(&g, p, data, n, type);
		FAULT("log.write.before_commit");
		st32(HDR(&g, p), REC_HDR + n); /* C2: commit (seq_cst, as Atomics.store); pairs with A3 */
		FAULT("log.write.after_commit");
		st32(s + S_CLAIMLEN / 4, 0); /* the claim is done (L4 no longer needs it) */
		wake_reader(&g);
		return 1;
	}
	st32(s + S_CLAIMLEN / 4, 0);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Batches and claims (src/log.ts tryWriteBatch, #prefix, #reserve, tryClaim, #finishClaim)       */

#define REC_SIZE(n) ((REC_HDR + (n) + 7) & ~7u)

/* The longest prefix (at least one) of the records lens[0..count) that fits in `free` bytes from
 * position t and before the end of the data area (after a padding to the start when not even the
 * first fits before it): *k records of *total bytes. Returns the padding bytes, or -1 when the
 * first record does not fit (src/log.ts #prefix). */
static int64_t prefix(struct lg *g, uint32_t t, uint32_t free, const uint32_t *lens, uint32_t count, uint32_t *k,
                      uint32_t *total)
{
	uint32_t to_end = g->cap - (t & g->mask);
	uint32_t first = REC_SIZE(lens[0]);
	uint32_t pad = first > to_end ? to_end : 0;
	if (pad > free)
		return -1;
	uint32_t room = free - pad, lim = pad ? g->cap : to_end;
	if (room > lim)
		room = lim;
	if (first > room)
		return -1;
	uint32_t sum = first, i = 1;
	while (i < count && REC_SIZE(lens[i]) <= room - sum)
		sum += REC_SIZE(lens[i++]);
	*k = i;
	*total = sum;
	return pad;
}

/* Reserves room for the longest prefix of lens[0..count) (src/log.ts #reserve): 1 and *pos = the
 * first record's position (after any padding, which is written), 0 no room, -errno. mpsc: the
 * claim is made (C1) and the first header holds the IN_PROGRESS marker when this returns. */
static int reserve(struct lg *g, const uint32_t *lens, uint32_t count, uint32_t *pos, uint32_t *k, uint32_t *total)
{
	struct shmkit_log_local *l = g->l;
	if (l->mode == 0) {
		uint32_t t = l->w_tail;
		uint32_t used = t - l->w_limit;
		int64_t pad = used > g->cap ? -1 : prefix(g, t, g->cap - used, lens, count, k, total);
		if (pad < 0 || *k < count) {
			uint32_t h = ld32(W(g, L_HEAD)); /* A2: acquire head; pairs with R2 */
			used = t - h;
			if (used > g->cap)
				return EBADHDR_; /* L1 */
			l->w_limit = h;
			pad = prefix(g, t, g->cap - used, lens, count, k, total);
			if (pad < 0)
				return 0;
		}
		FAULT("log.write.after_claim");
		if (pad) {
			uint32_t *ph = HDR(g, t);
			str_(ph, (uint32_t)pad);
			str_(ph + 1, TYPE_PAD);
			t += (uint32_t)pad;
		}
		*pos = t;
		return 1;
	}
	uint32_t *s = g->slots + 8 * (uint32_t)l->slot;
	for (int attempt = 0; attempt < CAS_TRIES; attempt++) {
		uint32_t t = ld32(W(g, L_TAIL));
		uint32_t c = ld32(W(g, L_CLEAN)); /* A4: pairs with R3 */
		uint32_t used = t - c;
		if (used > g->cap || (t & 7)) {
			if (ld32(W(g, L_TAIL)) != t)
				continue; /* moved under us */
			return EBADHDR_; /* L1, L2 */
		}
		int64_t pad = prefix(g, t, g->cap - used, lens, count, k, total);
		if (pad < 0) {
			st32(s + S_CLAIMLEN / 4, 0);
			return 0;
		}
		uint32_t need = (uint32_t)pad + *total;
		/* Slot first (L4): a reader that finds this claim unwritten can find its claimer. */
		str_(s + S_CLAIMPOS / 4, t);
		st32(s + S_CLAIMLEN / 4, need);
		if (!cas32(W(g, L_TAIL), t, t + need)) /* C1: claim (seq_cst) */
			continue;
		FAULT("log.write.after_claim");
		uint32_t p = t;
		if (pad) {
			uint32_t *ph = HDR(g, t);
			str_(ph + 1, TYPE_PAD);
			st32(ph, (uint32_t)pad); /* a complete padding record */
			p = t + (uint32_t)pad;
		}
		/* The marker: the first store into the record (seq_cst, so no payload store passes it). */
		st32(HDR(g, p), IN_PROGRESS | *total);
		FAULT("log.write.after_marker");
		*pos = p;
		return 1;
	}
	st32(s + S_CLAIMLEN / 4, 0);
	return 0;
}

/* Commits the record (or batch) at p whose first length word is len and that ends at end
 * (src/log.ts #commitRecord). */
static void commit_record(struct lg *g, uint32_t p, uint32_t len, uint32_t end)
{
	struct shmkit_log_local *l = g->l;
	FAULT("log.write.before_commit");
	if (l->mode == 1) {
		st32(HDR(g, p), len); /* C2: commit (seq_cst, as Atomics.store); pairs with A3 */
		FAULT("log.write.after_commit");
		st32(g->slots + 8 * (uint32_t)l->slot + S_CLAIMLEN / 4, 0); /* the claim is done */
	} else {
		str_(HDR(g, p), len);
		st32(W(g, L_TAIL), end); /* W-R1: publish tail (release); pairs with A1 */
		l->w_tail = end;
		FAULT("log.write.after_commit");
	}
	wake_reader(g);
}

int32_t shmkit_log_write_batch(struct shmkit_log_local *l, const uint8_t *data, uint64_t data_len,
                               const uint32_t *lens, uint32_t count, uint32_t type)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	if (count == 0)
		return 0;
	if (!lens || type > MAX_TYPE || count > INT32_MAX)
		return -EINVAL;
	/* Every item is checked before anything is written (src/log.ts: nothing published). */
	uint64_t sum = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (lens[i] > l->max_record)
			return -EINVAL;
		sum += lens[i];
	}
	if (sum != data_len || (sum && !data))
		return -EINVAL;
	if (!(l->roles & 1) && (e = start_writer(&g)) < 0)
		return e;
	if (l->claim_open)
		return -EINPROGRESS;
	uint32_t p, k = 0, total = 0;
	int r = reserve(&g, lens, count, &p, &k, &total);
	if (r <= 0)
		return r;
	/* Records after the first are complete now (their lengths written); the batch commits with
	 * the first one's length (mpsc) or with the tail (spsc). */
	uint64_t at = lens[0];
	uint32_t q = p + REC_SIZE(lens[0]);
	for (uint32_t i = 1; i < k; i++) {
		fill(&g, q, data + at, lens[i], type);
		str_(HDR(&g, q), REC_HDR + lens[i]);
		at += lens[i];
		q += REC_SIZE(lens[i]);
	}
	fill(&g, p, data, lens[0], type);
	commit_record(&g, p, REC_HDR + lens[0], q);
	return (int32_t)k;
}

int32_t shmkit_log_claim(struct shmkit_log_local *l, uint32_t n, uint32_t type, uint32_t *out)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	if (!out || n > l->max_record || type > MAX_TYPE)
		return -EINVAL;
	if (!(l->roles & 1) && (e = start_writer(&g)) < 0)
		return e;
	if (l->claim_open)
		return -EINPROGRESS;
	uint32_t p, k = 0, total = 0;
	int r = reserve(&g, &n, 1, &p, &k, &total);
	if (r <= 0)
		return r;
	str_(HDR(&g, p) + 1, type);
	l->claim_open = 1;
	l->claim_pos = p;
	l->claim_end = p + REC_SIZE(n);
	l->claim_max = n;
	l->claim_type = type;
	out[0] = (p & g.mask) + REC_HDR;
	return 1;
}

/* src/log.ts #finishClaim. */
static int finish_claim(struct lg *g, uint32_t length, uint32_t abort)
{
	struct shmkit_log_local *l = g->l;
	if (!l->claim_open)
		return -EINVAL;
	uint32_t p = l->claim_pos, end = l->claim_end, n = end - p;
	/* A hostile local: the claim must be one record of claim_max bytes inside the data area. */
	if (!(l->roles & 1) || (p & 7) || l->claim_max > l->max_record || l->claim_type > MAX_TYPE ||
	    n != REC_SIZE(l->claim_max) || n > g->cap - (p & g->mask)) {
		l->claim_open = 0;
		return -EINVAL;
	}
	if (!abort && length > l->claim_max)
		return -EINVAL; /* the claim stays open */
	l->claim_open = 0;
	if (abort) {
		str_(HDR(g, p) + 1, TYPE_PAD);
		commit_record(g, p, n, end);
		return 0;
	}
	uint32_t used = p + REC_SIZE(length);
	if (used != end) {
		/* Shrunk: the rest of the claim becomes a complete padding record (visible with the commit). */
		uint32_t *h = HDR(g, used);
		str_(h + 1, TYPE_PAD);
		str_(h, end - used);
	}
	str_(HDR(g, p) + 1, l->claim_type);
	commit_record(g, p, REC_HDR + length, end);
	return 0;
}

int32_t shmkit_log_finish_claim(struct shmkit_log_local *l, uint32_t length, uint32_t abort)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	return finish_claim(&g, length, abort);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                      */

static void zero_range(struct lg *g, uint32_t from, uint32_t to)
{
	uint32_t n = to - from;
	if (n > g->cap)
		n = g->cap;
	uint32_t a = from & g->mask;
	uint32_t first = n < g->cap - a ? n : g->cap - a;
	memset(g->data + a, 0, first);
	if (n > first)
		memset(g->data, 0, n - first);
}

static void publish_head(struct lg *g)
{
	struct shmkit_log_local *l = g->l;
	uint32_t p = l->r_pos, h = l->r_head;
	if (p == h)
		return;
	st32(W(g, L_HEAD), p); /* R2: publish head (release); pairs with A2 */
	l->r_head = p;
	FAULT("log.read.after_head");
	if (l->mode == 1) {
		zero_range(g, h, p);
		FAULT("log.read.after_zero");
		st32(W(g, L_CLEAN), p); /* R3: the zeroed bytes are free; pairs with A4 */
	}
	wake_writers(g);
}

static int start_reader(struct lg *g)
{
	struct shmkit_log_local *l = g->l;
	int e = claim_role(g, L_RROLE, L_RTOKEN);
	if (e < 0)
		return e;
	if ((e = check_counters(g)) < 0) {
		release_role(g, L_RROLE, L_RTOKEN);
		return e;
	}
	uint32_t h = ld32(W(g, L_HEAD));
	if (l->mode == 1) {
		/* A previous reader may have died between publishing head and clean: finish its zeroing. */
		uint32_t c = ld32(W(g, L_CLEAN));
		if (c != h) {
			zero_range(g, c, h);
			st32(W(g, L_CLEAN), h); /* R3 */
		}
	}
	l->r_pos = l->r_head = l->r_tail = h;
	l->stuck = 0;
	l->roles |= 2;
	return 0;
}

/* The first position after p (bounded by the tail, slot claim starts, the end) with a non-zero
 * header word: where a dead winner's unwritten claim ends (L5). */
static uint32_t scan_dead_claim(struct lg *g, uint32_t p, uint32_t tail)
{
	uint32_t limit = tail - p;
	for (uint32_t i = 0; i < g->l->nslots; i++) {
		uint32_t *s = g->slots + 8 * i;
		if (ld32(s + S_CLAIMLEN / 4) == 0)
			continue;
		uint32_t d = ld32(s + S_CLAIMPOS / 4) - p;
		if (d > 0 && d < limit)
			limit = d;
	}
	uint32_t to_end = g->cap - (p & g->mask);
	if (limit > to_end)
		limit = to_end;
	for (uint32_t d = REC_HDR; d < limit; d += REC_HDR)
		if (ldr(HDR(g, p + d)) != 0)
			return d;
	return limit;
}

/* mpsc reader: the header at p stayed unwritten or in progress. 1 = padded over a dead claim,
 * 0 = a covering claimer lives (wait), or -errno. */
static int recover(struct lg *g, uint32_t p)
{
	struct shmkit_log_local *l = g->l;
	uint32_t tail = ld32(W(g, L_TAIL));
	uint32_t avail = tail - p;
	if (avail > g->cap)
		return EBADHDR_; /* L1 */
	if (avail == 0)
		return 0;
	uint32_t covering = 0, only_end = 0;
	for (uint32_t i = 0; i < l->nslots; i++) {
		uint32_t *s = g->slots + 8 * i;
		uint32_t len = ld32(s + S_CLAIMLEN / 4);
		if (len == 0)
			continue;
		uint32_t pos = ld32(s + S_CLAIMPOS / 4);
		if (p - pos >= len)
			continue;
		uint32_t pid = ld32(s), st = ld32(s + 1);
		if (pid == 0 || holder_alive(l, pid, st))
			return 0; /* a live claimer: wait for it */
		covering++;
		only_end = pos + len;
	}
	uint32_t *h = HDR(g, p);
	uint32_t w0 = ld32(h); /* its writer may have committed meanwhile (C2 before clearing its slot) */
	if (w0 != 0 && (w0 & IN_PROGRESS) == 0)
		return 1;
	if (covering == 0) {
		if (w0 == 0 && ld32(W(g, L_TAIL)) == p)
			return 0;
		return EBADHDR_; /* L4: unwritten and nobody claims it */
	}
	uint32_t to_end = g->cap - (p & g->mask);
	uint32_t n;
	if (w0 & IN_PROGRESS)
		n = w0 & ~IN_PROGRESS; /* the dead writer's own marker */
	else if (covering == 1)
		n = only_end - p;
	else
		n = scan_dead_claim(g, p, tail);
	if (n > to_end)
		n = to_end; /* the rest (after the wrap) is recovered at the next position */
	if (n < REC_HDR || (n & 7) != 0 || n > avail)
		return EBADHDR_;
	str_(h + 1, TYPE_PAD);
	st32(h, n); /* a committed padding record over the dead claim */
	l->stuck = 0;
	return 1;
}

/* Whether a committed record (or padding) is at p: 1, 0, or -errno (src/log.ts #ready). */
static int ready_at(struct lg *g, uint32_t p)
{
	struct shmkit_log_local *l = g->l;
	if (l->mode == 0) {
		if (p != l->r_tail)
			return 1;
		uint32_t t = ld32(W(g, L_TAIL)); /* A1: acquire tail; pairs with W-R1 */
		if (t - p > g->cap)
			return EBADHDR_;
		l->r_tail = t;
		return t != p;
	}
	if (p == l->r_tail) {
		uint32_t t = ld32(W(g, L_TAIL));
		if (t - p > g->cap)
			return EBADHDR_;
		l->r_tail = t;
		if (t == p) {
			l->stuck = 0;
			return 0;
		}
	}
	uint32_t w = ld32(HDR(g, p)); /* A3: pairs with C2 */
	if (w != 0 && (w & IN_PROGRESS) == 0)
		return 1;
	if (w == 0 && ld32(W(g, L_TAIL)) == p) {
		l->stuck = 0;
		return 0;
	}
	/* Unwritten or in progress: its writer is at work, or dead. */
	double now = shmkit_now_ns() / 1e6;
	if (!l->stuck || l->stuck_at != p) {
		l->stuck = 1;
		l->stuck_at = p;
		l->stuck_since = now;
		return 0;
	}
	if (now - l->stuck_since < STUCK_MS)
		return 0;
	l->stuck_since = now;
	return recover(g, p);
}

/* Moves to the next record (skipping paddings); out = [data offset of payload, length, type, end
 * position]. 1, 0 (none ready), or -errno. At most 4 hops (two paddings in a row are possible). */
static int next_record(struct lg *g, uint32_t *out)
{
	struct shmkit_log_local *l = g->l;
	for (int hop = 0; hop < 4; hop++) {
		uint32_t p = l->r_pos;
		int r = ready_at(g, p);
		if (r <= 0)
			return r;
		uint32_t off = p & g->mask;
		uint32_t *h = HDR(g, p);
		uint32_t len = ld32(h), type = ldr(h + 1);
		uint32_t avail = l->r_tail - p;
		if (l->mode == 1 && ((len + 7) & ~7u) > avail) {
			l->r_tail = ld32(W(g, L_TAIL));
			avail = l->r_tail - p;
			if (avail > g->cap)
				return EBADHDR_;
		}
		if (type == TYPE_PAD) {
			if (len < REC_HDR || (len & 7) || len > g->cap - off || len > avail)
				return EBADHDR_; /* L3 */
			l->r_pos = p + len;
			continue;
		}
		uint32_t rec = (len + 7) & ~7u;
		if (type > MAX_TYPE || len < REC_HDR || len > g->most || rec > g->cap - off || rec > avail)
			return EBADHDR_; /* L3 */
		out[0] = off + REC_HDR;
		out[1] = len - REC_HDR;
		out[2] = type;
		l->r_pos = p + rec;
		out[3] = l->r_pos;
		return 1;
	}
	return 0;
}

static int reader_bind(struct shmkit_log_local *l, struct lg *g)
{
	int e = log_bind(l, g);
	if (e < 0)
		return e;
	if (!(l->roles & 2))
		return start_reader(g);
	return 0;
}

int32_t shmkit_log_read(struct shmkit_log_local *l, uint32_t *out)
{
	struct lg g;
	if (!out)
		return -EINVAL;
	int e = reader_bind(l, &g);
	if (e < 0)
		return e;
	publish_head(&g);
	return next_record(&g, out);
}

int32_t shmkit_log_read_batch(struct shmkit_log_local *l, uint32_t *out, int32_t max)
{
	struct lg g;
	if (!out || max < 1)
		return -EINVAL;
	int e = reader_bind(l, &g);
	if (e < 0)
		return e;
	publish_head(&g);
	uint32_t start = l->r_pos;
	int32_t k = 0;
	/* At most one lap per call: writers that never stop cannot keep the caller here. */
	while (k < max && l->r_pos - start < g.cap) {
		int r = next_record(&g, out + 4 * (uint32_t)k);
		if (r < 0)
			return k > 0 ? k : r; /* the records before a corrupt one stay delivered */
		if (r == 0)
			break;
		k++;
	}
	return k;
}

int32_t shmkit_log_consume(struct shmkit_log_local *l, uint32_t pos)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	if (!(l->roles & 2))
		return 0;
	if (pos - l->r_head > l->r_pos - l->r_head)
		return -EINVAL; /* not between the published head and the read position */
	l->r_pos = pos;
	publish_head(&g);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Waiting                                                                                      */

static int writer_room(struct lg *g, uint32_t n)
{
	struct shmkit_log_local *l = g->l;
	uint32_t rec = (REC_HDR + n + 7) & ~7u;
	uint32_t t, base;
	if (l->mode == 0) {
		t = l->w_tail;
		base = ld32(W(g, L_HEAD));
	} else {
		t = ld32(W(g, L_TAIL));
		base = ld32(W(g, L_CLEAN));
	}
	uint32_t used = t - base;
	if (used > g->cap)
		return 1; /* let the write report it */
	return (uint64_t)pad_for(g, t, rec) + rec <= g->cap - used;
}

int32_t shmkit_log_park(struct shmkit_log_local *l, uint32_t side, uint32_t n, double timeout_ms)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	if (side > 1 || !(timeout_ms >= 0) || (side == 0 && n > l->max_record))
		return -EINVAL;
	int reader = side == 1;
	if (reader && !(l->roles & 2) && (e = start_reader(&g)) < 0)
		return e;
	if (!reader && !(l->roles & 1) && (e = start_writer(&g)) < 0)
		return e;
	uint32_t word_off = reader ? L_SEQ : l->mode == 1 ? L_CLEAN : L_HEAD;
	uint32_t *count = W(&g, reader ? L_RWAIT : L_WWAIT);
	uint32_t w0 = ld32(W(&g, word_off)); /* W1: the futex word, read before the re-check */
	__atomic_fetch_add(count, 1, SEQ);   /* W1: register; pairs with W2 */
	__atomic_fetch_add(&l->waits[side], 1, SEQ);
	st32(W(&g, reader ? L_RSLEEP : L_WSLEEP), 1); /* W1: ask for a wake, then re-check */
	int rc = reader ? ready_at(&g, l->r_pos) : writer_room(&g, n);
	if (rc == 0) {
		FAULT("log.wait.parked");
		/* A reader stuck at an unwritten record wakes up soon to ask whether its writer lives. */
		double slice = reader && l->stuck ? STUCK_MS * 2 : PARK_SLICE_MS;
		double ms = timeout_ms < slice ? timeout_ms : slice;
		if (reader && l->mode == 0 && ms > FIRST_WAIT_MS) {
			/* spsc: a short first wait and a re-check, then the rest: a writer publishing its
			 * tail with a plain store (TypeScript on x86-64) may have missed this registration
			 * (docs/layout/log.md "Waiting"). */
			rc = shmkit_futex_wait(l->map_id, l->offset + word_off, w0, FIRST_WAIT_MS);
			if (rc == -ETIMEDOUT) {
				rc = ready_at(&g, l->r_pos); /* 1 ready (reported as a wake below), < 0 corrupt */
				if (rc == 0)
					rc = shmkit_futex_wait(l->map_id, l->offset + word_off, w0, ms - FIRST_WAIT_MS);
			}
		} else {
			rc = shmkit_futex_wait(l->map_id, l->offset + word_off, w0, ms);
		}
		if (rc == 1 || (rc == -ETIMEDOUT && timeout_ms > slice))
			rc = 0;
	}
	/* Give the registration back unless shmkit_log_release already did. */
	uint32_t v = __atomic_load_n(&l->waits[side], SEQ);
	while (v > 0 && !__atomic_compare_exchange_n(&l->waits[side], &v, v - 1, 0, SEQ, SEQ)) {
	}
	if (v > 0) {
		struct lg g2;
		if (log_bind(l, &g2) == 0 && g2.b == g.b)
			__atomic_fetch_sub(count, 1, SEQ);
	}
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* State and lifetime                                                                           */

double shmkit_log_size(struct shmkit_log_local *l)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	uint32_t h = ld32(W(&g, L_HEAD)), t = ld32(W(&g, L_TAIL));
	uint32_t n = t - h;
	return n > g.cap ? 0.0 : (double)n;
}

int32_t shmkit_log_release(struct shmkit_log_local *l)
{
	struct lg g;
	int e = log_bind(l, &g);
	if (e < 0)
		return e;
	if (l->claim_open)
		finish_claim(&g, 0, 1); /* an open claim is given up (readers skip it) */
	if (l->roles & 2) {
		publish_head(&g);
		release_role(&g, L_RROLE, L_RTOKEN);
	}
	if (l->roles & 1) {
		if (l->mode == 1) {
			uint32_t *s = g.slots + 8 * (uint32_t)l->slot;
			st32(s + S_CLAIMLEN / 4, 0);
			st32(s + S_TOKEN / 4, 0);
			cas64((uint64_t *)s, (uint64_t)l->pid | ((uint64_t)l->start_lo << 32), 0);
		} else {
			release_role(&g, L_WROLE, L_WTOKEN);
		}
	}
	l->roles = 0;
	l->slot = -1;
	for (int side = 0; side < 2; side++) {
		uint32_t w = __atomic_exchange_n(&l->waits[side], 0, SEQ);
		if (w)
			__atomic_fetch_sub(W(&g, side ? L_RWAIT : L_WWAIT), w, SEQ);
	}
	return 0;
}
