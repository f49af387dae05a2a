/* SPDX-License-Identifier: MIT */
/*
 * SharedHeap operations in C, for bindings whose per-call cost is high (Python): one library call
 * per operation. A second implementation of docs/layout/heap.md, step for step the same as
 * src/heap.ts (the comments name the same steps: L1, U2, J1..J4, R1..R3; the TLSF helpers have
 * the names of the TypeScript methods), held against the TypeScript one by the cross-language
 * tests (tests/python_heap_test.ts): both place blocks identically, so either side frees, names
 * and recovers what the other did.
 *
 * Each heap is driven through a process-local struct shmkit_heap_local (csrc/shmkit.h) that the
 * binding fills after validating the header (python/shmkit/heap.py); every call re-derives the
 * geometry from (arenaSize, nameCount, slots), checks the range against the mapping (-EBADF,
 * -EINVAL) and the header fields against that geometry (-SHMKIT_EBADHDR when they changed). Every
 * size, link and journal index read from shared memory is checked before it is used, and every
 * word access is bounded by the heap's length; every walk is bounded by the number of granules.
 * A corrupt heap is -SHMKIT_EBADHDR with the reason in the local struct (why, a, b, c: the values
 * of the matching src/heap.ts message). No call sleeps: when the heap lock is taken (or this object
 * has no participant slot yet) the call returns -EAGAIN and the binding takes the lock through
 * its Mutex (csrc/ops_sync.c: liveness, recovery, futex sleeps), then calls again with
 * HEAP_HELD (and HEAP_RECOVERED when the Mutex reported a dead holder).
 */
#define _GNU_SOURCE
#include "shmkit.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "ops_common.h"

#define RLX __ATOMIC_RELAXED
#define EBADHDR_ (-SHMKIT_EBADHDR)

/* Layout (docs/layout/heap.md, src/heap.ts HEAP). */
#define H_ARENAOFFSET 64
#define H_ARENASIZE 68
#define H_NAMECOUNT 72
#define H_JOURNALCAP 76
#define H_MUTEXOFFSET 80
#define H_JOURNALOFFSET 84
#define H_NAMESOFFSET 88
#define H_BITMAPOFFSET 92
#define H_SLOTS 96
#define H_MUTEX 832u
#define MX_SLOTCOUNT 68u
#define MX_LOCK 64u
#define LOCK_WAITERS 0x80000000u

#define W_RECOVERIES (100 / 4)
#define W_ROLLEDBACK (104 / 4)
#define W_OPSEQ (108 / 4)
#define W_DONESEQ (112 / 4)
#define W_PENDING (116 / 4)
#define W_LASTLEAKED (120 / 4)
#define W_LEAKED (124 / 4)
#define W_FLBITMAP (128 / 4)
#define W_SLBITMAPS (192 / 4)
#define W_HEADS (320 / 4)

#define JOURNAL_CAP 256u
#define JOURNAL_BYTES 12u
#define NAME_BYTES 64u
#define NAME_MAX_ 48u
#define BLOCK_HEADER 16u
#define MIN_BLOCK 32u
#define MAX_ARENA 0x7fffffc0u
#define USED 1u
#define PREV_USED 2u
#define SL_BITS 2u
#define SL_COUNT 4u
#define FL_COUNT 32u

/* flags of the operations */
#define HEAP_HELD 1u      /* the caller took the heap lock through its Mutex */
#define HEAP_RECOVERED 2u /* ... and the Mutex reported a dead (or departed) holder */
#define HEAP_KEEP 4u      /* find_or_alloc: return with the operation open and the lock held */
#define HEAP_INSIDE 8u    /* continue the open operation (after HEAP_KEEP) */
#define HEAP_FLAGS (HEAP_HELD | HEAP_RECOVERED | HEAP_KEEP | HEAP_INSIDE)

/* shmkit_heap_name ops */
#define NAME_GET 0u
#define NAME_SET 1u
#define NAME_DELETE 2u
#define NAME_DESTROY 3u
#define NAME_FIND_OR_ALLOC 4u
#define NAME_PUT 5u /* inside a KEEP operation: name the block at arg (find_or_alloc's second step) */

/* EBADHDR reasons (l->why), each the src/heap.ts message with the values in a, b, c. */
enum {
	WHY_NONE = 0,
	WHY_HEADER,        /* the header no longer matches what was attached */
	WHY_SIZE,          /* block at a has impossible size b */
	WHY_LINK,          /* free-list link a is outside the arena */
	WHY_BITMAP_FREE,   /* the allocation bitmap marks a, a free block */
	WHY_NOT_LINKED,    /* free block a is not linked from b (c = list when b == 0) */
	WHY_LIST_BROKEN,   /* free list broken at a <- b */
	WHY_FL_EMPTY,      /* first-level bitmap names level a, whose lists are empty */
	WHY_SL_EMPTY,      /* bitmap names list a.b, which is empty */
	WHY_FREE_USED,     /* block a on a free list is marked used */
	WHY_TOO_SMALL,     /* block a of size b is on a list for c+ bytes */
	WHY_PRED_FREE,     /* block a says its used predecessor b is free */
	WHY_PREV_SIZE,     /* block a has an impossible previous size b */
	WHY_PRED_NOT_FREE, /* block a names a free predecessor at b that is not one */
	WHY_JOURNAL_FULL,  /* an operation outgrew the journal */
	WHY_LOCK_SLOT,     /* the heap lock named slot a while this process (slot b) held it */
	WHY_JOURNAL_INDEX, /* journal entry a names word b, outside the heap's mutable fields */
	WHY_NAME_PAYLOAD,  /* name entry a points to b */
	WHY_WALK,          /* the block walk does not end */
	WHY_NAME_LENGTH,   /* name entry a has length b */
	WHY_WORD,          /* word a is outside the heap (an index computed from corrupt state) */
};

/* Results besides offsets (positive) and -errno. */
#define R_NONE 0 /* get / delete / destroy: no such name; free / set: done */

/* ------------------------------------------------------------------------------------------ */

struct hp {
	struct shmkit_heap_local *l;
	uint32_t *w;      /* the heap's words */
	uint64_t off;     /* the heap's byte offset in the mapping */
	uint32_t total;   /* words of the heap */
	uint32_t arena;   /* heap-relative byte offsets */
	uint32_t end;
	uint32_t bitmap_w;
	uint32_t names_w;
	uint32_t j_base;
	uint32_t mutex_w;
	uint32_t lock_w;
	uint32_t seq;
	uint32_t jpos;
};

static uint32_t align_up(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }

/* src/heap.ts heapGeometry. */
struct geo {
	uint32_t mutex, journal, names, bitmap, arena;
	uint64_t byte_length;
};

static int geometry(uint32_t arena_size, uint32_t names, uint32_t slots, struct geo *g)
{
	if (arena_size < 64 || arena_size > MAX_ARENA || arena_size % 64 != 0 || names < 1 || names > 65536 ||
	    slots < 1 || slots > 0xffff)
		return -EINVAL;
	g->mutex = H_MUTEX;
	g->journal = align_up(H_MUTEX + align_up(128 + 8 * slots, 64), 64);
	g->names = align_up(g->journal + JOURNAL_CAP * JOURNAL_BYTES, 64);
	g->bitmap = align_up(g->names + names * NAME_BYTES, 64);
	uint32_t words = (arena_size / BLOCK_HEADER + 31) / 32;
	g->arena = align_up(g->bitmap + 4 * words, 64);
	g->byte_length = (uint64_t)g->arena + arena_size;
	return 0;
}

int32_t shmkit_heap_local_size(void) { return (int32_t)sizeof(struct shmkit_heap_local); }

int32_t shmkit_heap_byte_length(uint32_t arena_size, uint32_t names, uint32_t slots, double *out)
{
	struct geo g;
	int r = geometry(arena_size, names, slots, &g);
	if (r < 0 || !out)
		return -EINVAL;
	out[0] = (double)g.byte_length;
	out[1] = g.arena;
	out[2] = g.mutex;
	out[3] = g.journal;
	out[4] = g.names;
	out[5] = g.bitmap;
	return 0;
}

static inline uint32_t ldr(const uint32_t *p) { return __atomic_load_n(p, RLX); }
static inline void str_(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, RLX); }

static int bad(struct hp *h, uint32_t why, uint32_t a, uint32_t b, uint32_t c)
{
	h->l->why = why;
	h->l->a = a;
	h->l->b = b;
	h->l->c = c;
	return EBADHDR_;
}

/* Word i of the heap; an index outside the heap (never for checked values) reads 0 and is flagged
 * by rdc. Every index below is built from checked offsets, so this is belt and braces. */
static inline uint32_t rd(const struct hp *h, uint32_t i) { return i < h->total ? ldr(h->w + i) : 0; }

static int bind(struct shmkit_heap_local *l, struct hp *h)
{
	if (!l)
		return -EINVAL;
	struct geo g;
	if (geometry(l->arena_size, l->name_count, l->slots, &g) < 0)
		return -EINVAL;
	int err = 0;
	uint8_t *b = ops_range_at(l->map_id, l->offset, g.byte_length, &err);
	if (!b)
		return err;
	h->l = l;
	h->w = (uint32_t *)(void *)b;
	h->off = (uint64_t)l->offset;
	h->total = (uint32_t)(g.byte_length / 4);
	/* The header must still be the one the binding validated (a reformat under us is not our heap). */
	const uint32_t *w = h->w;
	if (ldr(w + H_ARENASIZE / 4) != l->arena_size || ldr(w + H_NAMECOUNT / 4) != l->name_count ||
	    ldr(w + H_SLOTS / 4) != l->slots || ldr(w + H_ARENAOFFSET / 4) != g.arena ||
	    ldr(w + H_JOURNALCAP / 4) != JOURNAL_CAP || ldr(w + H_MUTEXOFFSET / 4) != g.mutex ||
	    ldr(w + H_JOURNALOFFSET / 4) != g.journal || ldr(w + H_NAMESOFFSET / 4) != g.names ||
	    ldr(w + H_BITMAPOFFSET / 4) != g.bitmap || ldr(w + (H_MUTEX + MX_SLOTCOUNT) / 4) != l->slots)
		return bad(h, WHY_HEADER, 0, 0, 0);
	if (l->fork_gen != ops_fork_gen()) {
		/* A forked child: the parent's slot and open operation are not its own. */
		l->fork_gen = ops_fork_gen();
		l->slot = 0;
		l->holding = 0;
	}
	h->arena = g.arena;
	h->end = g.arena + l->arena_size;
	h->bitmap_w = g.bitmap / 4;
	h->names_w = g.names / 4;
	h->j_base = g.journal / 4;
	h->mutex_w = g.mutex / 4;
	h->lock_w = (g.mutex + MX_LOCK) / 4;
	h->seq = l->seq;
	h->jpos = l->jpos;
	l->why = WHY_NONE;
	return 0;
}

int32_t shmkit_heap_bind(struct shmkit_heap_local *l)
{
	struct hp h;
	ops_watch_forks();
	return bind(l, &h);
}

/* ------------------------------------------------------------------------------------------ */
/* Lock and journal                                                                             */

/* Journaled store: entry (index, old, seq) first, then the value (J2). */
static int set(struct hp *h, uint32_t i, uint32_t v)
{
	if (i >= h->total)
		return bad(h, WHY_WORD, i, 0, 0);
	uint32_t j = h->jpos;
	if (j >= JOURNAL_CAP)
		return bad(h, WHY_JOURNAL_FULL, 0, 0, 0);
	uint32_t *e = h->w + h->j_base + j * 3;
	/* J2: the journal entry before the store it undoes; the seq word last marks it valid. */
	str_(e, i);
	str_(e + 1, ldr(h->w + i));
	str_(e + 2, h->seq);
	h->jpos = j + 1;
	str_(h->w + i, v);
	return 0;
}

/* A journal index a recoverer may restore (src/heap.ts #recover's check). */
static int mutable_word(const struct hp *h, uint32_t i)
{
	return !(i < W_PENDING || i >= h->total || (i >= h->mutex_w && i < h->names_w));
}

/* U2: release (seq_cst exchange); wakes a sleeper; checks the word named our slot. */
static int unlock(struct hp *h)
{
	h->l->holding = 0;
	uint32_t prev = xchg32(h->w + h->lock_w, 0);
	if (prev & LOCK_WAITERS)
		shmkit_futex_wake(h->l->map_id, (double)(h->off + (uint64_t)h->lock_w * 4), 1);
	if ((prev & 0xffffu) != h->l->slot)
		return bad(h, WHY_LOCK_SLOT, prev & 0xffffu, h->l->slot, 0);
	return 0;
}

/* Undoes this process's entries of the current operation and commits the empty result. */
static int rollback(struct hp *h)
{
	int r = 0;
	for (uint32_t j = h->jpos; j-- > 0;) {
		const uint32_t *e = h->w + h->j_base + j * 3;
		uint32_t i = ldr(e);
		if (!mutable_word(h, i)) {
			r = bad(h, WHY_JOURNAL_INDEX, j, i, 0);
			continue;
		}
		str_(h->w + i, ldr(e + 1));
	}
	h->jpos = 0;
	str_(h->w + W_DONESEQ, h->seq);
	return r;
}

/* An error in the middle of an operation: undo it, unlock, return the error. */
static int abort_op(struct hp *h, int err)
{
	rollback(h);
	int u = unlock(h);
	return err == EBADHDR_ || u == 0 ? err : u;
}

/* R1..R3: the previous holder died holding the lock, or left an operation open. */
static int recover(struct hp *h, int dead)
{
	uint32_t *w = h->w;
	if (dead)
		str_(w + W_RECOVERIES, ldr(w + W_RECOVERIES) + 1);
	uint32_t seq = ldr(w + W_OPSEQ);
	if (ldr(w + W_DONESEQ) != seq) {
		/* R1: the dead holder's entries (those of its sequence, from 0, bounded by capacity). */
		uint32_t n = 0;
		while (n < JOURNAL_CAP && ldr(w + h->j_base + n * 3 + 2) == seq)
			n++;
		for (uint32_t j = n; j-- > 0;) {
			const uint32_t *e = w + h->j_base + j * 3;
			uint32_t i = ldr(e);
			if (!mutable_word(h, i))
				return bad(h, WHY_JOURNAL_INDEX, j, i, 0);
			str_(w + i, ldr(e + 1));
			if (j == n >> 1)
				FAULT("heap.recover.mid_rollback");
		}
		/* R2: the dead operation is undone. */
		str_(w + W_DONESEQ, seq);
		str_(w + W_ROLLEDBACK, ldr(w + W_ROLLEDBACK) + 1);
	}
	/* R3: an alloc committed for a dead holder that never returned it: leaked in flight. */
	uint32_t b = ldr(w + W_PENDING);
	if (dead && b != 0) {
		str_(w + W_LEAKED, ldr(w + W_LEAKED) + 1);
		str_(w + W_LASTLEAKED, b + BLOCK_HEADER);
	}
	str_(w + W_PENDING, 0);
	return 0;
}

/* Takes the lock (L1 fast path, or the caller's Mutex: HEAP_HELD), recovers, begins (J1, J4).
 * HEAP_INSIDE continues the open operation instead. */
static int enter(struct hp *h, uint32_t flags)
{
	struct shmkit_heap_local *l = h->l;
	if (flags & ~HEAP_FLAGS)
		return -EINVAL;
	if (flags & HEAP_INSIDE) {
		if (!l->holding || (flags & (HEAP_HELD | HEAP_RECOVERED)))
			return -EINVAL;
		return 0;
	}
	if (l->holding)
		return -EAGAIN; /* an operation of this object is open (another thread): the binding waits */
	l->recovered = 0;
	if (!(flags & HEAP_HELD)) {
		if (flags & HEAP_RECOVERED)
			return -EINVAL;
		/* L1: uncontended fast path (acquire CAS); pairs with U2. */
		if (l->slot == 0 || cmpxchg32(h->w + h->lock_w, 0, l->slot) != 0)
			return -EAGAIN;
	} else if (l->slot == 0 || l->slot > l->slots || (ld32(h->w + h->lock_w) & 0xffffu) != l->slot) {
		return -EINVAL; /* HEAP_HELD, but the word does not name our slot */
	}
	uint32_t *w = h->w;
	int dead = (flags & HEAP_RECOVERED) != 0;
	if (dead || ldr(w + W_DONESEQ) != ldr(w + W_OPSEQ)) {
		l->recovered = 1;
		int r = recover(h, dead);
		if (r < 0) {
			unlock(h);
			return r;
		}
	}
	/* J1: a new operation sequence; J4: no alloc of this operation is pending yet. */
	h->seq = ldr(w + W_OPSEQ) + 1;
	str_(w + W_OPSEQ, h->seq);
	h->jpos = 0;
	str_(w + W_PENDING, 0);
	return 0;
}

/* J3 (doneSeq = opSeq), then U2. */
static int commit_unlock(struct hp *h)
{
	str_(h->w + W_DONESEQ, h->seq);
	return unlock(h);
}

/* After an operation that may stay open (HEAP_KEEP): records where it is. */
static void keep(struct hp *h)
{
	h->l->holding = 1;
	h->l->seq = h->seq;
	h->l->jpos = h->jpos;
}

/* ------------------------------------------------------------------------------------------ */
/* TLSF (src/heap.ts, same method names)                                                        */

static uint32_t fl_of(uint32_t size) { return 31u - (uint32_t)__builtin_clz(size); }
static uint32_t ctz_(uint32_t x) { return (uint32_t)__builtin_ctz(x); }

static uint32_t list_of(uint32_t size)
{
	uint32_t fl = fl_of(size);
	return fl * SL_COUNT + ((size >> (fl - SL_BITS)) & (SL_COUNT - 1));
}

/* The size of the block at b (a checked block offset), validated (I1). */
static int size_at(struct hp *h, uint32_t b, uint32_t *out)
{
	uint32_t sz = rd(h, b >> 2) & ~15u;
	if (sz < MIN_BLOCK || sz > h->end - b)
		return bad(h, WHY_SIZE, b, sz, 0);
	*out = sz;
	return 0;
}

/* A free-list link read from shared memory, validated. */
static int link_ok(struct hp *h, uint32_t v)
{
	if (v != 0 && (v < h->arena || v >= h->end || (v & 15) != 0))
		return bad(h, WHY_LINK, v, 0, 0);
	return 0;
}

static int bit_of(const struct hp *h, uint32_t b)
{
	uint32_t gi = (b - h->arena) >> 4;
	return (rd(h, h->bitmap_w + (gi >> 5)) >> (gi & 31)) & 1;
}

/* The heap-relative block of a live allocation at segment offset `offset`: 1 and *out, 0 when it
 * is not one, or -EBADHDR. */
static int live_block(struct hp *h, double offset, uint32_t *out)
{
	if (!(offset >= 0 && offset <= 9007199254740991.0) || offset != (double)(uint64_t)offset)
		return 0;
	uint64_t o = (uint64_t)offset;
	if (o < h->off + BLOCK_HEADER)
		return 0;
	uint64_t b64 = o - h->off - BLOCK_HEADER;
	if (b64 < h->arena || b64 >= h->end || (b64 & 15) != 0)
		return 0;
	uint32_t b = (uint32_t)b64, sz;
	if (!bit_of(h, b))
		return 0;
	if ((rd(h, b >> 2) & USED) == 0)
		return bad(h, WHY_BITMAP_FREE, b, 0, 0);
	int r = size_at(h, b, &sz);
	if (r < 0)
		return r;
	*out = b;
	return 1;
}

static int set_bit(struct hp *h, uint32_t b, int on)
{
	uint32_t gi = (b - h->arena) >> 4;
	uint32_t i = h->bitmap_w + (gi >> 5);
	uint32_t v = rd(h, i);
	return set(h, i, on ? v | (1u << (gi & 31)) : v & ~(1u << (gi & 31)));
}

#define TRY(x)                      \
	do {                        \
		int r_ = (x);       \
		if (r_ < 0)         \
			return r_;  \
	} while (0)

/* The start of an operation that takes the heap lock itself: bind, refuse bad arguments
 * (`args_ok` 0) and the flags only find_or_alloc uses (EINVAL, nothing touched), enter.
 * 0 or -errno. */
static int start_op(struct shmkit_heap_local *l, struct hp *h, int args_ok, uint32_t flags)
{
	int r = bind(l, h);
	if (r < 0)
		return r;
	if (!args_ok || (flags & (HEAP_KEEP | HEAP_INSIDE)))
		return -EINVAL;
	return enter(h, flags);
}

static int insert(struct hp *h, uint32_t b, uint32_t size)
{
	uint32_t li = list_of(size);
	uint32_t head = rd(h, W_HEADS + li);
	TRY(link_ok(h, head));
	TRY(set(h, (b >> 2) + 2, head));
	TRY(set(h, (b >> 2) + 3, 0));
	if (head != 0)
		TRY(set(h, (head >> 2) + 3, b));
	TRY(set(h, W_HEADS + li, b));
	uint32_t fl = li >> SL_BITS;
	uint32_t slm = rd(h, W_SLBITMAPS + fl);
	uint32_t bit = 1u << (li & (SL_COUNT - 1));
	if ((slm & bit) == 0)
		TRY(set(h, W_SLBITMAPS + fl, slm | bit));
	uint32_t flm = rd(h, W_FLBITMAP);
	if ((flm & (1u << fl)) == 0)
		TRY(set(h, W_FLBITMAP, flm | (1u << fl)));
	return 0;
}

/* The neighbours of free block b on list li, validated: *next and *prev. */
static int links(struct hp *h, uint32_t b, uint32_t li, uint32_t *next, uint32_t *prev)
{
	uint32_t n = rd(h, (b >> 2) + 2), p = rd(h, (b >> 2) + 3);
	TRY(link_ok(h, n));
	TRY(link_ok(h, p));
	if (p != 0 ? rd(h, (p >> 2) + 2) != b : rd(h, W_HEADS + li) != b)
		return bad(h, WHY_NOT_LINKED, b, p, li);
	if (n != 0 && rd(h, (n >> 2) + 3) != b)
		return bad(h, WHY_LIST_BROKEN, b, n, 0);
	*next = n;
	*prev = p;
	return 0;
}

static int remove_(struct hp *h, uint32_t b, uint32_t size)
{
	uint32_t li = list_of(size), next, prev;
	TRY(links(h, b, li, &next, &prev));
	if (prev != 0) {
		TRY(set(h, (prev >> 2) + 2, next));
	} else {
		TRY(set(h, W_HEADS + li, next));
		if (next == 0) {
			uint32_t fl = li >> SL_BITS;
			uint32_t slm = rd(h, W_SLBITMAPS + fl) & ~(1u << (li & (SL_COUNT - 1)));
			TRY(set(h, W_SLBITMAPS + fl, slm));
			if (slm == 0)
				TRY(set(h, W_FLBITMAP, rd(h, W_FLBITMAP) & ~(1u << fl)));
		}
	}
	if (next != 0)
		TRY(set(h, (next >> 2) + 3, prev));
	return 0;
}

/* Free block old (oldSize, on its list) becomes free block neu of newSize. */
static int replace(struct hp *h, uint32_t old, uint32_t old_size, uint32_t neu, uint32_t new_size)
{
	uint32_t li = list_of(old_size);
	if (li != list_of(new_size)) {
		TRY(remove_(h, old, old_size));
		return insert(h, neu, new_size);
	}
	if (neu == old)
		return 0;
	uint32_t next, prev;
	TRY(links(h, old, li, &next, &prev));
	TRY(set(h, (neu >> 2) + 2, next));
	TRY(set(h, (neu >> 2) + 3, prev));
	if (prev != 0)
		TRY(set(h, (prev >> 2) + 2, neu));
	else
		TRY(set(h, W_HEADS + li, neu));
	if (next != 0)
		TRY(set(h, (next >> 2) + 3, neu));
	return 0;
}

/* The head of the first non-empty list whose blocks all hold size bytes (*out, 0 = none). */
static int find(struct hp *h, uint32_t size, uint32_t *out)
{
	*out = 0;
	uint32_t fl = fl_of(size);
	uint32_t r = size + (1u << (fl - SL_BITS)) - 1;
	fl = fl_of(r);
	uint32_t sl = (r >> (fl - SL_BITS)) & (SL_COUNT - 1);
	uint32_t slm = rd(h, W_SLBITMAPS + fl) & (0xffffffffu << sl);
	if (slm == 0) {
		if (fl >= FL_COUNT - 1)
			return 0;
		uint32_t flm = rd(h, W_FLBITMAP) & (0xffffffffu << (fl + 1));
		if (flm == 0)
			return 0;
		fl = ctz_(flm);
		slm = rd(h, W_SLBITMAPS + fl);
		if (slm == 0)
			return bad(h, WHY_FL_EMPTY, fl, 0, 0);
	}
	sl = ctz_(slm);
	uint32_t b = rd(h, W_HEADS + fl * SL_COUNT + sl);
	TRY(link_ok(h, b));
	if (b == 0)
		return bad(h, WHY_SL_EMPTY, fl, sl, 0);
	*out = b;
	return 0;
}

/* Allocates a block for n payload bytes with the payload aligned to align (*out, 0 if none fits). */
static int alloc_block(struct hp *h, uint32_t n, uint32_t align, uint32_t *out)
{
	*out = 0;
	uint32_t need = n + BLOCK_HEADER <= MIN_BLOCK ? MIN_BLOCK : (n + BLOCK_HEADER + 15) & ~15u;
	uint64_t search64 = align <= 16 ? need : (uint64_t)need + align + MIN_BLOCK;
	if (search64 > h->l->arena_size)
		return 0;
	uint32_t search = (uint32_t)search64, b, sz;
	TRY(find(h, search, &b));
	if (b == 0) {
		/* Rounding up to a list boundary may skip a block that fits exactly: try the lower list's head. */
		uint32_t hd = rd(h, W_HEADS + list_of(search));
		TRY(link_ok(h, hd));
		if (hd == 0 || (rd(h, hd >> 2) & USED) != 0)
			return 0;
		TRY(size_at(h, hd, &sz));
		if (sz < search)
			return 0;
		b = hd;
	}
	uint32_t w0 = rd(h, b >> 2);
	if (w0 & USED)
		return bad(h, WHY_FREE_USED, b, 0, 0);
	TRY(size_at(h, b, &sz));
	if (sz < search)
		return bad(h, WHY_TOO_SMALL, b, sz, search);
	uint32_t prev_bit = w0 & PREV_USED;
	int listed = 1;
	if (align > 16) {
		uint64_t payload = h->off + b + BLOCK_HEADER;
		uint64_t gap = (payload + align - 1) / align * align - payload;
		if (gap != 0 && gap < MIN_BLOCK)
			gap += align;
		if (gap != 0) {
			/* The leading gap stays a free block (same start, smaller size); the rest is carved out. */
			uint32_t g = (uint32_t)gap;
			TRY(set(h, b >> 2, g | prev_bit));
			TRY(replace(h, b, sz, b, g));
			b += g;
			sz -= g;
			TRY(set(h, (b >> 2) + 1, g));
			prev_bit = 0;
			listed = 0;
		}
	}
	uint32_t next = b + sz;
	if (sz - need >= MIN_BLOCK) {
		uint32_t rem = b + need, rem_size = sz - need;
		TRY(set(h, rem >> 2, rem_size | PREV_USED));
		if (listed)
			TRY(replace(h, b, sz, rem, rem_size));
		else
			TRY(insert(h, rem, rem_size));
		if (next < h->end)
			TRY(set(h, (next >> 2) + 1, rem_size));
		sz = need;
	} else {
		if (listed)
			TRY(remove_(h, b, sz));
		if (next < h->end)
			TRY(set(h, next >> 2, rd(h, next >> 2) | PREV_USED));
	}
	FAULT("heap.alloc.after_remove");
	TRY(set(h, b >> 2, sz | USED | prev_bit));
	TRY(set_bit(h, b, 1));
	*out = b;
	return 0;
}

/* Frees the used block b (validated live), coalescing with free neighbours. */
static int free_block(struct hp *h, uint32_t b)
{
	uint32_t w0 = rd(h, b >> 2), sz;
	TRY(size_at(h, b, &sz));
	uint32_t n_free = 0, nsz = 0, p_free = 0, psz = 0;
	uint32_t next = b + sz;
	if (next < h->end) {
		uint32_t nw = rd(h, next >> 2);
		if ((nw & PREV_USED) == 0)
			return bad(h, WHY_PRED_FREE, next, b, 0);
		if ((nw & USED) == 0) {
			TRY(size_at(h, next, &nsz));
			n_free = next;
		}
	}
	if ((w0 & PREV_USED) == 0) {
		psz = rd(h, (b >> 2) + 1);
		if (psz < MIN_BLOCK || (psz & 15) != 0 || psz > b - h->arena)
			return bad(h, WHY_PREV_SIZE, b, psz, 0);
		uint32_t p = b - psz, ps;
		if ((rd(h, p >> 2) & USED) != 0)
			return bad(h, WHY_PRED_NOT_FREE, b, p, 0);
		TRY(size_at(h, p, &ps));
		if (ps != psz)
			return bad(h, WHY_PRED_NOT_FREE, b, p, 0);
		p_free = p;
	}
	TRY(set_bit(h, b, 0));
	uint32_t start = b;
	uint32_t size = psz + sz + nsz;
	if (p_free != 0) {
		if (n_free != 0)
			TRY(remove_(h, n_free, nsz));
		TRY(replace(h, p_free, psz, p_free, size));
		start = p_free;
	} else if (n_free != 0) {
		TRY(replace(h, n_free, nsz, b, size));
	} else {
		TRY(insert(h, b, size));
	}
	FAULT("heap.free.after_unlink");
	/* The merged block's predecessor is used (I2), so PREV_USED is set. */
	TRY(set(h, start >> 2, size | PREV_USED));
	uint32_t after = start + size;
	if (after < h->end) {
		if (n_free == 0)
			TRY(set(h, after >> 2, rd(h, after >> 2) & ~PREV_USED));
		TRY(set(h, (after >> 2) + 1, size));
	}
	return 0;
}

static int largest_free_locked(struct hp *h, uint32_t *out)
{
	*out = 0;
	uint32_t flm = rd(h, W_FLBITMAP);
	if (flm == 0)
		return 0;
	uint32_t fl = fl_of(flm);
	uint32_t slm = rd(h, W_SLBITMAPS + fl);
	if (slm == 0)
		return 0;
	uint32_t b = rd(h, W_HEADS + fl * SL_COUNT + fl_of(slm)), best = 0, sz;
	TRY(link_ok(h, b));
	for (uint32_t i = 0; b != 0 && i < h->l->arena_size / MIN_BLOCK; i++) {
		TRY(size_at(h, b, &sz));
		if (sz > best)
			best = sz;
		b = rd(h, (b >> 2) + 2);
		TRY(link_ok(h, b));
	}
	*out = best;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                   */

/* A byte length: an integer in 1..arenaSize. */
static int length_ok(double n, uint32_t arena_size)
{
	return n >= 1 && n <= (double)arena_size && n == (double)(uint32_t)n;
}

static int align_ok(uint32_t align) { return align >= 1 && align <= 65536 && (align & (align - 1)) == 0; }

int64_t shmkit_heap_alloc(struct shmkit_heap_local *l, double n, uint32_t align, uint32_t flags)
{
	struct hp h;
	int r = bind(l, &h);
	if (r < 0)
		return r;
	if (!length_ok(n, l->arena_size) || !align_ok(align) || (flags & (HEAP_KEEP | HEAP_INSIDE)))
		return -EINVAL;
	TRY(enter(&h, flags));
	uint32_t b;
	r = alloc_block(&h, (uint32_t)n, align < 16 ? 16 : align, &b);
	if (r < 0)
		return abort_op(&h, r);
	if (b == 0) {
		uint32_t largest = 0;
		r = largest_free_locked(&h, &largest);
		l->a = largest;
		rollback(&h);
		int u = unlock(&h);
		return r < 0 ? r : u < 0 ? u : -ENOMEM;
	}
	r = set(&h, W_PENDING, b);
	if (r < 0)
		return abort_op(&h, r);
	FAULT("heap.alloc.before_commit");
	str_(h.w + W_DONESEQ, h.seq); /* J3 */
	FAULT("heap.alloc.after_commit");
	TRY(unlock(&h));
	FAULT("heap.alloc.after_unlock");
	return (int64_t)(h.off + b + BLOCK_HEADER);
}

/* 0 freed, -EINVAL not a live allocation (nothing written), -errno. */
int32_t shmkit_heap_free(struct shmkit_heap_local *l, double offset, uint32_t flags)
{
	struct hp h;
	TRY(start_op(l, &h, 1, flags));
	uint32_t b;
	int r = live_block(&h, offset, &b);
	if (r < 0)
		return abort_op(&h, r);
	if (r == 0) {
		TRY(commit_unlock(&h));
		return -EINVAL;
	}
	r = free_block(&h, b);
	if (r < 0)
		return abort_op(&h, r);
	FAULT("heap.free.before_commit");
	str_(h.w + W_DONESEQ, h.seq); /* J3 */
	FAULT("heap.free.after_commit");
	return unlock(&h);
}

/* Usable bytes of a live allocation, -EINVAL when offset is not one, -errno. */
int64_t shmkit_heap_size_of(struct shmkit_heap_local *l, double offset, uint32_t flags)
{
	struct hp h;
	TRY(start_op(l, &h, 1, flags));
	uint32_t b, sz = 0;
	int live = live_block(&h, offset, &b);
	int r = live > 0 ? size_at(&h, b, &sz) : live;
	if (r < 0)
		return abort_op(&h, r);
	TRY(commit_unlock(&h));
	return live == 0 ? -EINVAL : (int64_t)(sz - BLOCK_HEADER);
}

/* --- names ---------------------------------------------------------------------------------- */

static int entry_payload(struct hp *h, uint32_t e, uint32_t *out)
{
	uint32_t p = rd(h, h->names_w + e * 16 + 2);
	if (p < h->arena + BLOCK_HEADER || p >= h->end)
		return bad(h, WHY_NAME_PAYLOAD, e, p, 0);
	*out = p;
	return 0;
}

/* Index of the entry named nb (len bytes), or -1 (bounded by the table size). */
static int64_t find_name(struct hp *h, const uint8_t *nb, uint32_t len)
{
	const uint8_t *names = (const uint8_t *)(h->w + h->names_w);
	for (uint32_t e = 0; e < h->l->name_count; e++) {
		if (rd(h, h->names_w + e * 16) != len)
			continue;
		const uint8_t *s = names + (uint64_t)e * NAME_BYTES + 16;
		uint32_t i = 0;
		while (i < len && __atomic_load_n(s + i, RLX) == nb[i])
			i++;
		if (i == len)
			return e;
	}
	return -1;
}

static int put_name(struct hp *h, const uint8_t *nb, uint32_t len, uint32_t b, uint32_t kind)
{
	int64_t e = find_name(h, nb, len);
	if (e < 0) {
		for (uint32_t i = 0; i < h->l->name_count; i++) {
			if (rd(h, h->names_w + i * 16) == 0) {
				e = i;
				break;
			}
		}
	}
	if (e < 0)
		return -ENOSPC;
	uint32_t base = h->names_w + (uint32_t)e * 16, sz;
	uint8_t padded[NAME_MAX_] = {0};
	memcpy(padded, nb, len);
	for (uint32_t i = 0; i < NAME_MAX_ / 4; i++) {
		uint32_t v;
		memcpy(&v, padded + 4 * i, 4);
		TRY(set(h, base + 4 + i, v));
	}
	TRY(set(h, base + 1, kind));
	TRY(set(h, base + 2, b + BLOCK_HEADER));
	TRY(size_at(h, b, &sz));
	TRY(set(h, base + 3, sz - BLOCK_HEADER));
	return set(h, base, len); /* the length last: a reader without the lock never sees half a name */
}

static int clear_name(struct hp *h, uint32_t e)
{
	uint32_t base = h->names_w + e * 16;
	TRY(set(h, base, 0));
	for (uint32_t i = 1; i < 16; i++)
		if (rd(h, base + i) != 0)
			TRY(set(h, base + i, 0));
	return 0;
}

/* The body of a name operation under the lock: >= 0 result, < 0 error (the caller aborts). */
static int64_t name_body(struct hp *h, uint32_t op, const uint8_t *nb, uint32_t len, double arg, uint32_t align,
			 uint32_t kind, uint32_t flags)
{
	uint32_t b, p;
	int64_t e;
	int r;
	switch (op) {
	case NAME_GET:
		e = find_name(h, nb, len);
		if (e < 0)
			return 0;
		TRY(entry_payload(h, (uint32_t)e, &p));
		return (int64_t)(h->off + p);
	case NAME_SET:
		r = live_block(h, arg, &b);
		if (r <= 0)
			return r < 0 ? r : -EINVAL;
		TRY(put_name(h, nb, len, b, 0));
		return 0;
	case NAME_DELETE:
		e = find_name(h, nb, len);
		if (e < 0)
			return 0;
		TRY(clear_name(h, (uint32_t)e));
		return 1;
	case NAME_DESTROY:
		e = find_name(h, nb, len);
		if (e < 0)
			return 0;
		TRY(entry_payload(h, (uint32_t)e, &p));
		TRY(clear_name(h, (uint32_t)e));
		r = live_block(h, (double)(h->off + p), &b);
		if (r < 0)
			return r;
		if (r > 0)
			TRY(free_block(h, b));
		return 1;
	case NAME_FIND_OR_ALLOC:
		h->l->created = 0;
		e = find_name(h, nb, len);
		if (e >= 0) {
			TRY(entry_payload(h, (uint32_t)e, &p));
			return (int64_t)(h->off + p);
		}
		if (!length_ok(arg, h->l->arena_size))
			return -EINVAL;
		TRY(alloc_block(h, (uint32_t)arg, align < 16 ? 16 : align, &b));
		if (b == 0)
			return -ENOMEM;
		/* The payload is not journaled: a rollback frees the block, so its bytes do not matter. */
		memset((uint8_t *)h->w + b + BLOCK_HEADER, 0, (uint32_t)arg);
		h->l->created = 1;
		if (!(flags & HEAP_KEEP))
			TRY(put_name(h, nb, len, b, kind)); /* else NAME_PUT names it after the binding's init */
		return (int64_t)(h->off + b + BLOCK_HEADER);
	case NAME_PUT:
		r = live_block(h, arg, &b);
		if (r <= 0)
			return r < 0 ? r : -EINVAL;
		TRY(put_name(h, nb, len, b, kind));
		return 0;
	}
	return -EINVAL;
}

/*
 * A named-root operation as one heap operation: op NAME_GET (offset, 0 none), NAME_SET (name the
 * live allocation at arg: 0, -EINVAL, -ENOSPC), NAME_DELETE / NAME_DESTROY (1 existed, 0 not),
 * NAME_FIND_OR_ALLOC (the existing or new offset; l->created; arg bytes zeroed, align; with
 * HEAP_KEEP a new allocation is returned with the operation open and the lock held, for the
 * binding's init step, then NAME_PUT | HEAP_INSIDE names it (kind) and shmkit_heap_end commits).
 */
int64_t shmkit_heap_name(struct shmkit_heap_local *l, uint32_t op, const uint8_t *name, uint32_t len, double arg,
			 uint32_t align, uint32_t kind, uint32_t flags)
{
	struct hp h;
	int r = bind(l, &h);
	if (r < 0)
		return r;
	if (!name || len < 1 || len > NAME_MAX_ || op > NAME_PUT || !align_ok(align))
		return -EINVAL;
	if ((op == NAME_PUT) != ((flags & HEAP_INSIDE) != 0) || ((flags & HEAP_KEEP) && op != NAME_FIND_OR_ALLOC))
		return -EINVAL;
	TRY(enter(&h, flags));
	int64_t v = name_body(&h, op, name, len, arg, align, kind, flags);
	if (v < 0)
		return abort_op(&h, (int)v);
	if ((flags & HEAP_KEEP) && l->created) {
		keep(&h);
		return v;
	}
	if (flags & HEAP_INSIDE) {
		keep(&h); /* the open operation goes on: shmkit_heap_end commits it */
		return v;
	}
	FAULT("heap.name.before_commit");
	r = commit_unlock(&h);
	return r < 0 ? r : v;
}

/* Begins an operation with nothing in it (the binding reads under the lock: names, validate): 0, the
 * lock held and l->holding set, or -errno. */
int32_t shmkit_heap_begin(struct shmkit_heap_local *l, uint32_t flags)
{
	struct hp h;
	TRY(start_op(l, &h, 1, flags));
	keep(&h);
	return 0; /* the operation's sequence is l->seq (it may be any u32: not a return value) */
}

/* Ends the open operation: commit (abort 0) or undo it (abort 1), then unlock. */
int32_t shmkit_heap_end(struct shmkit_heap_local *l, uint32_t abort)
{
	struct hp h;
	int r = bind(l, &h);
	if (r < 0)
		return r;
	if (!l->holding)
		return -EINVAL;
	if (abort) {
		r = rollback(&h);
		int u = unlock(&h);
		return r < 0 ? r : u;
	}
	FAULT("heap.name.before_commit");
	return commit_unlock(&h);
}

/*
 * Figures from a walk of the arena under the lock: out[0] used bytes, [1] free bytes, [2] largest
 * free block, [3] allocations, [4] free blocks, [5] named roots, [6] recoveries, [7] rolledBack,
 * [8] leakedInFlight, [9] lastLeaked (heap-relative, 0 none).
 */
int32_t shmkit_heap_stats(struct shmkit_heap_local *l, double *out, uint32_t flags)
{
	struct hp h;
	TRY(start_op(l, &h, out != NULL, flags));
	int r;
	double used = 0, fr = 0;
	uint32_t largest = 0, allocs = 0, blocks = 0, names = 0, sz;
	uint32_t b = h.arena, max_steps = l->arena_size / BLOCK_HEADER;
	for (uint32_t i = 0; b < h.end; i++) {
		if (i > max_steps)
			return abort_op(&h, bad(&h, WHY_WALK, 0, 0, 0));
		r = size_at(&h, b, &sz);
		if (r < 0)
			return abort_op(&h, r);
		if (rd(&h, b >> 2) & USED) {
			used += sz;
			allocs++;
		} else {
			fr += sz;
			blocks++;
			if (sz > largest)
				largest = sz;
		}
		b += sz;
	}
	for (uint32_t e = 0; e < l->name_count; e++)
		if (rd(&h, h.names_w + e * 16) != 0)
			names++;
	out[0] = used;
	out[1] = fr;
	out[2] = largest;
	out[3] = allocs;
	out[4] = blocks;
	out[5] = names;
	out[6] = rd(&h, W_RECOVERIES);
	out[7] = rd(&h, W_ROLLEDBACK);
	out[8] = rd(&h, W_LEAKED);
	out[9] = rd(&h, W_LASTLEAKED);
	return commit_unlock(&h);
}

/* close() while an operation of this object is open (an exception in the binding): undo and unlock. */
int32_t shmkit_heap_release(struct shmkit_heap_local *l)
{
	struct hp h;
	int r = bind(l, &h);
	if (r < 0)
		return r;
	if (!l->holding)
		return 0;
	return abort_op(&h, 0);
}
