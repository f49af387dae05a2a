/* SPDX-License-Identifier: MIT */
/*
 * The C floor of S2's message API: the Channel protocol of docs/layout/channel.md (slot table of
 * [length | state] words, participant op words, an spsc ready ring of block indices) with no
 * runtime in the way, one 64-byte message per send and per receive + release, 1024 slots, like
 * bench/scenarios/s2_channel_msgs.ts's "message API" cell. A sender process (cpu0) takes a FREE
 * block with a CAS (T1), writes 64 bytes (its sequence number first), stores the length, opens its
 * op bracket, marks the block QUEUED, enqueues the index (ring slot, then a release store of tail)
 * and closes the bracket (Q1); a receiver process (cpu1) opens its bracket, dequeues one index
 * (acquire tail, release head), claims QUEUED -> HELD with a CAS, closes the bracket (D1), checks
 * length and sequence number, and frees the block with a CAS HELD -> FREE (F1), reading `waiters`.
 * Steps the doc makes sequentially consistent are seq_cst here; the ring's tail and head are
 * release/acquire as in ring.md (JavaScript has only seq_cst: an xchg per store).
 *
 *   "64 B message API"               what src/channel.ts does: the sender claims the rest of a
 *                                    slot-table line ahead and writes a byte of each block; the
 *                                    receiver paces its polls after a run (src/pace.ts); a sender
 *                                    on a full channel pauses between polls
 *   "64 B message API, eager polls"  the same protocol, both sides polling as fast as they can and
 *                                    the sender taking one block at a time (the library before)
 *
 * The same cell on an "spsc-ordered" channel (channel.md "spsc-ordered (mode 2)"; src/channel.ts
 * #oTake, #oTouch, #oPublish, #oNextBlock, #oRetire, #oPublishHead), laid out at a channel object's
 * real offsets (see run_ordered): the sender reserves the block of tail position t in ring order
 * against a cached head (reloaded, acquire, when it looks full; on a full channel paced polls as
 * above), writes 64 bytes (its sequence number first) and the length word, stores the block index
 * as the ring value of t, stores tail = t + 1 and reads consWaiters; at the first block of each
 * group of 8 it pre-touches one byte of each of the 16 blocks after the next 8 (when free by its
 * cached head), one word of their two slot-table lines and the ring word 16 positions ahead. The
 * receiver loads tail (acquire) when its cached tail is used up, pacing (src/pace.ts) at every
 * such refill with the run since the last one and, when dry, as #nextBlocking does; it reads the
 * ring value (< slots) and the length once, checks length and sequence number, and releases: its
 * local head moves on and is stored, then it reads prodWaiters.
 *
 *   "64 B message API, spsc-ordered"                  tail and head stored seq_cst (an xchg), as
 *                                                     JavaScript's Atomics.store does
 *   "64 B message API, spsc-ordered, release stores"  tail and head stored with release, the
 *                                                     ordering the protocol asks for (plain movs)
 *
 * Build: cc -O2 -std=gnu11 -o build/bench/chan_floor bench/c/chan_floor.c (scripts/bench.sh; floor_common.h beside it).
 * Usage: chan_floor   (SHMKIT_BENCH_QUICK=1 shortens each case). Prints bench/FORMAT.md JSON lines.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "floor_common.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SLOTS 1024u
#define SIZE 64u
#define FREE 0u
#define LOANED 1u
#define HELD 2u
#define QUEUED 3u
#define TAG_TX 1u /* participant 0 */
#define TAG_RX 2u /* participant 1 */
#define AHEAD 8u

/* One shared area, lines laid out as in a channel object: header words, participant entries,
 * the ready ring's tail and head on lines of their own, ring slots, slot table, data blocks. */
struct chan {
	_Alignas(64) _Atomic uint32_t waiters;
	_Alignas(64) _Atomic uint32_t op_tx;
	_Alignas(64) _Atomic uint32_t op_rx;
	_Alignas(64) _Atomic uint32_t tail;
	_Alignas(64) _Atomic uint32_t head;
	_Alignas(64) _Atomic uint32_t ring[SLOTS];
	_Alignas(64) _Atomic uint32_t table[2 * SLOTS]; /* length at 2i, state at 2i + 1 */
	_Alignas(64) uint8_t data[SLOTS * SIZE];
};

struct ctl {
	_Atomic uint32_t start, done, bad, consumer_done;
	_Atomic uint64_t msgs, end_ns;
};

static int quick;
static volatile uint32_t sink;

/* Local work that touches no shared line (src/pace.ts localWork). */
static void local_work(uint32_t n)
{
	uint32_t x = sink;
	for (uint32_t k = 0; k < n; k++) x = x * 1103515245u + 12345u;
	sink = x;
}

/* src/pace.ts Pacer.dry */
struct pacer {
	uint32_t pace;
	int paced;
};
static void pacer_dry(struct pacer *p, uint32_t got)
{
	uint32_t v = p->pace;
	if (p->paced) {
		if (got <= 1) v = v <= 256 ? 0 : v >> 1;
		else if (got < 16) v = v + (v >> 1) < 16384 ? v + (v >> 1) : 16384;
		else if (got > 64) v -= v >> 2;
	} else if (got >= 2 && v == 0)
		v = 256;
	p->pace = v;
	p->paced = v > 0 && got > 0;
	if (p->paced) local_work(v);
}

static inline uint32_t word(uint32_t phase, uint32_t tag) { return phase << 30 | tag; }

static void receiver(struct chan *ch, struct ctl *c, int smart)
{
	uint32_t head = 0, tail = 0, seq = 0, bad = 0, op = 0, since = 0;
	uint64_t msgs = 0;
	struct pacer pc = {0, 0};
	while (!atomic_load_explicit(&c->start, memory_order_acquire)) CPU_RELAX();
	for (;;) {
		if (tail == head) {
			tail = atomic_load_explicit(&ch->tail, memory_order_acquire); /* A1 */
			if (tail == head) {
				if (atomic_load_explicit(&c->done, memory_order_acquire) &&
				    atomic_load_explicit(&ch->tail, memory_order_acquire) == head)
					break;
				if (smart && since > 0) { /* first dry poll after messages: pace (recv's #paceDry) */
					pacer_dry(&pc, since);
					since = 0;
				} else if (smart)
					local_work(256); /* then poll every PAUSE_ITERS, as #nextBlocking does */
				else
					CPU_RELAX();
				continue;
			}
			if (tail - head > SLOTS) {
				bad = 1;
				break;
			}
		}
		atomic_store_explicit(&ch->op_rx, ++op, memory_order_relaxed); /* bracket open */
		uint32_t i = atomic_load_explicit(&ch->ring[head & (SLOTS - 1)], memory_order_relaxed);
		atomic_store_explicit(&ch->head, ++head, memory_order_release); /* R2 */
		if (i >= SLOTS) {
			bad = 2;
			break;
		}
		uint32_t q = word(QUEUED, TAG_TX);
		if (!atomic_compare_exchange_strong(&ch->table[2 * i + 1], &q, word(HELD, TAG_RX))) { /* D1 */
			bad = 3;
			break;
		}
		atomic_store(&ch->op_rx, ++op); /* bracket closed (seq_cst) */
		uint32_t len = atomic_load_explicit(&ch->table[2 * i], memory_order_relaxed);
		uint32_t got;
		memcpy(&got, ch->data + (size_t)i * SIZE, 4);
		if (len != SIZE || got != seq) {
			bad = 4;
			break;
		}
		seq++;
		msgs++;
		since++;
		uint32_t h = word(HELD, TAG_RX);
		if (!atomic_compare_exchange_strong(&ch->table[2 * i + 1], &h, FREE)) { /* F1 */
			bad = 5;
			break;
		}
		if (atomic_load(&ch->waiters) != 0) bad = 6; /* nobody parks here */
	}
	atomic_store_explicit(&c->end_ns, now_ns(), memory_order_relaxed);
	atomic_store_explicit(&c->msgs, msgs, memory_order_relaxed);
	atomic_store_explicit(&c->bad, bad, memory_order_relaxed);
	atomic_store_explicit(&c->consumer_done, 1, memory_order_release);
}

static void run_case(int smart)
{
	struct chan *ch = shm_map(sizeof *ch);
	struct ctl *c = shm_map(sizeof *c);
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		receiver(ch, c, smart);
		_exit(0);
	}
	pin(0);
	uint8_t src[SIZE];
	for (uint32_t k = 0; k < SIZE; k++) src[k] = (uint8_t)k;
	double c0 = self_cpu();
	uint64_t dur = (quick ? 200 : 1000) * 1000000ull;
	uint32_t tail = 0, head_cache = 0, seq = 0, op = 0, cursor = 0, stash[AHEAD], st_n = 0, st_i = 0, spause = 256;
	const uint32_t loaned = word(LOANED, TAG_TX), queued = word(QUEUED, TAG_TX);
	uint64_t t0 = now_ns(), deadline = t0 + dur;
	atomic_store_explicit(&c->start, 1, memory_order_release);
	for (;;) {
		for (int k = 0; k < 256; k++) {
			uint32_t i;
			if (st_i < st_n) {
				i = stash[st_i++];
			} else {
				/* T1 from the cursor; on a full channel poll the cursor slot (paced when smart) */
				for (;;) {
					uint32_t f = FREE;
					if (atomic_load_explicit(&ch->table[2 * cursor + 1], memory_order_relaxed) == FREE &&
					    atomic_compare_exchange_strong(&ch->table[2 * cursor + 1], &f, loaned)) {
						if (smart && spause > 256) spause -= spause >> 2;
						break;
					}
					if (smart) {
						local_work(spause);
						if (spause < 4096) spause += spause >> 1;
					} else
						CPU_RELAX();
				}
				i = cursor;
				cursor = (cursor + 1) & (SLOTS - 1);
				st_n = st_i = 0;
				if (smart) { /* claim the rest of the table line ahead, touching each block */
					while ((cursor & (AHEAD - 1)) != 0) {
						uint32_t f = FREE;
						if (atomic_load_explicit(&ch->table[2 * cursor + 1], memory_order_relaxed) != FREE ||
						    !atomic_compare_exchange_strong(&ch->table[2 * cursor + 1], &f, loaned))
							break;
						ch->data[(size_t)cursor * SIZE] = 0;
						stash[st_n++] = cursor;
						cursor = (cursor + 1) & (SLOTS - 1);
					}
				}
			}
			memcpy(src, &seq, 4);
			memcpy(ch->data + (size_t)i * SIZE, src, SIZE);
			atomic_store_explicit(&ch->table[2 * i], SIZE, memory_order_relaxed);
			atomic_store_explicit(&ch->op_tx, ++op, memory_order_relaxed); /* bracket open */
			atomic_store(&ch->table[2 * i + 1], queued);                   /* Q1 (seq_cst) */
			while (tail - head_cache >= SLOTS) {                            /* C3: never full */
				head_cache = atomic_load_explicit(&ch->head, memory_order_acquire);
			}
			atomic_store_explicit(&ch->ring[tail & (SLOTS - 1)], i, memory_order_relaxed);
			atomic_store_explicit(&ch->tail, ++tail, memory_order_release); /* R1 */
			atomic_store(&ch->op_tx, ++op);                                 /* bracket closed */
			seq++;
		}
		if (now_ns() >= deadline) break;
	}
	atomic_store_explicit(&c->done, 1, memory_order_release);
	while (!atomic_load_explicit(&c->consumer_done, memory_order_acquire)) CPU_RELAX();
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	double cpu = self_cpu() - c0 + tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	uint64_t msgs = atomic_load(&c->msgs);
	if (atomic_load(&c->bad) || msgs != seq) {
		fprintf(stderr, "chan_floor: the receiver found a bad message (%u) or lost some (%llu of %u)\n",
			atomic_load(&c->bad), (unsigned long long)msgs, seq);
		exit(1);
	}
	double wall = (double)(atomic_load(&c->end_ns) - t0) / 1e9;
	const char *variant = smart ? "64 B message API" : "64 B message API, eager polls";
	const char *note = smart ? "channel protocol (docs/layout/channel.md), spsc, 1024 slots, one message per send "
				   "and per receive+release, claim-ahead sender, paced receiver; sender cpu0, receiver cpu1"
				 : "channel protocol, spsc, 1024 slots, one message per send and per receive+release, both "
				   "sides polling as fast as they can; sender cpu0, receiver cpu1";
	printf("{\"bench\":\"S2\",\"variant\":\"%s\",\"transport\":\"C floor\",\"runtime\":\"c\",\"metric\":\"msgs/s\","
	       "\"value\":%.6g,\"cpu_s\":%.4f,\"wall_s\":%.4f,\"note\":\"%s\"}\n",
	       variant, (double)msgs / wall, cpu, wall, note);
	fflush(stdout);
	munmap(ch, sizeof *ch);
	munmap(c, sizeof *c);
}

/* ---- spsc-ordered (mode 2): docs/layout/channel.md "spsc-ordered (mode 2)" ---------------------
 * Laid out at the real offsets of a channel object (slots 1024, slotSize 64, maxProcesses 64, the
 * defaults of src/channel.ts but slots and slotSize): header 192, participant table, the ready ring
 * (a kind-1 object: tail at +128, head at +192, consWaiters +256, prodWaiters +260, dense u32 values
 * at +384), the slot table ([length | state] per block, state unused) and the data at a
 * 4096-aligned offset. The mapping starts on a page, so every field sits on the same cache line
 * offsets as in the library's segment (a channel starts at a multiple of 64). */
#define O_PROCS 64u
#define O_RING_N 1024u /* the ready ring's slotCount: the smallest power of two >= slots */
#define O_TOUCH_AHEAD 16u
#define O_SKIP 0xffffffffu
#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))
#define O_READY ALIGN_UP(192u + 64u * O_PROCS, 64u)
#define O_RING_BYTES (384u + 8u * O_RING_N)
#define O_TABLE ALIGN_UP(O_READY + O_RING_BYTES, 64u)
#define O_DATA ALIGN_UP(O_TABLE + 8u * SLOTS, 4096u)
#define O_STRIDE ALIGN_UP(SIZE, 64u)
#define O_BYTES (O_DATA + O_STRIDE * SLOTS)
#define R_TAIL 128u
#define R_HEAD 192u
#define R_CW 256u
#define R_PW 260u
#define R_VALUES 384u

struct ochan {
	uint8_t *base;
	uint32_t *tail, *head, *cw, *pw, *ring, *len; /* len[2 i] = length of block i */
	uint8_t *data;
};

static struct ochan ochan_at(uint8_t *base)
{
	struct ochan o;
	o.base = base;
	o.tail = (uint32_t *)(base + O_READY + R_TAIL);
	o.head = (uint32_t *)(base + O_READY + R_HEAD);
	o.cw = (uint32_t *)(base + O_READY + R_CW);
	o.pw = (uint32_t *)(base + O_READY + R_PW);
	o.ring = (uint32_t *)(base + O_READY + R_VALUES);
	o.len = (uint32_t *)(base + O_TABLE);
	o.data = base + O_DATA;
	return o;
}

/* The tail and head stores: seq_cst like JavaScript's Atomics.store, or the release the protocol asks for. */
static inline void o_store(uint32_t *p, uint32_t v, int seqcst)
{
	if (seqcst) __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
	else __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The receiver's state (src/channel.ts #oNext, #oHead, #oPub, #oTc, #oRun, #oPacing, #paceHead,
 * #oPos, #oHeld, #oRel) and its pacer. */
struct orecv {
	struct ochan o;
	uint32_t next, head, pub, tc, run, pace_head;
	int pacing, seqcst;
	uint32_t bad;
	struct pacer pc;
	uint32_t pos[SLOTS];
	uint8_t held[SLOTS];
	uint8_t rel[O_RING_N];
};

/* #oPublishHead: the head store (R2), then the prodWaiters check (the sender never parks here). */
static void o_publish_head(struct orecv *r)
{
	if (r->head == r->pub) return;
	r->pub = r->head;
	o_store(r->o.head, r->head, r->seqcst);
	if (__atomic_load_n(r->o.pw, __ATOMIC_SEQ_CST) != 0) r->bad = 16;
}

/* #oRetire */
static void o_retire(struct orecv *r, uint32_t p)
{
	if (p != r->head) {
		r->rel[p & (O_RING_N - 1)] = 1;
		return;
	}
	uint32_t h = p + 1;
	for (uint32_t k = 0; h != r->next && r->rel[h & (O_RING_N - 1)] != 0 && k < O_RING_N; k++) {
		r->rel[h & (O_RING_N - 1)] = 0;
		h++;
	}
	r->head = h;
}

/* #oNextBlock: the next message's block, held; -1 when none is queued; sets r->bad on a corrupt ring.
 * *len_out gets its length word, read once. */
static int32_t o_next_block(struct orecv *r, uint32_t *len_out)
{
	for (uint32_t guard = 0; guard <= SLOTS; guard++) {
		uint32_t p = r->next;
		if (p == r->tc) {
			if (r->pacing) pacer_dry(&r->pc, p - r->run); /* pacing at every refill */
			r->run = p;
			uint32_t t = __atomic_load_n(r->o.tail, __ATOMIC_ACQUIRE); /* A1 */
			uint32_t ahead = t - r->head;
			if (ahead > SLOTS || ahead < p - r->head) {
				r->bad = 11;
				return -1;
			}
			r->tc = t;
			if (p == t) {
				o_publish_head(r);
				return -1;
			}
		}
		uint32_t b = __atomic_load_n(&r->o.ring[p & (O_RING_N - 1)], __ATOMIC_RELAXED);
		r->next = p + 1;
		if (b >= SLOTS || r->held[b] != 0) {
			r->bad = 12;
			return -1;
		}
		uint32_t len = __atomic_load_n(&r->o.len[2 * b], __ATOMIC_RELAXED);
		if (len == O_SKIP) {
			o_retire(r, p);
			continue;
		}
		r->pos[b] = p;
		r->held[b] = 1;
		*len_out = len;
		return (int32_t)b;
	}
	o_publish_head(r);
	return -1;
}

static void o_receiver(uint8_t *base, struct ctl *c, int seqcst)
{
	static struct orecv r; /* this process's own memory */
	memset(&r, 0, sizeof r);
	r.o = ochan_at(base);
	r.seqcst = seqcst;
	/* #oClaimConsumer */
	r.next = r.head = r.pub = r.tc = r.run = r.pace_head = __atomic_load_n(r.o.head, __ATOMIC_SEQ_CST);
	uint32_t seq = 0;
	uint64_t msgs = 0;
	while (!atomic_load_explicit(&c->start, memory_order_acquire)) CPU_RELAX();
	for (;;) {
		/* #nextBlocking: one next() with pacing at refills; when dry the pacer's dry poll
		 * (#paceDry, the run since the last dry poll), then polls every PAUSE_ITERS */
		uint32_t len = 0;
		r.pacing = 1;
		int32_t b = o_next_block(&r, &len);
		r.pacing = 0;
		if (b < 0 && !r.bad) {
			pacer_dry(&r.pc, r.next - r.pace_head);
			r.pace_head = r.next;
			b = o_next_block(&r, &len);
			while (b < 0 && !r.bad) {
				if (atomic_load_explicit(&c->done, memory_order_acquire)) {
					b = o_next_block(&r, &len); /* everything sent is visible now */
					break;
				}
				local_work(256);
				b = o_next_block(&r, &len);
			}
		}
		if (b < 0) break; /* done and drained, or bad */
		/* #lengthOf and the scenario's check of length and sequence number */
		uint32_t got;
		memcpy(&got, r.o.data + (size_t)b * O_STRIDE, 4);
		if (len != SIZE || got != seq) {
			r.bad = 14;
			break;
		}
		seq++;
		msgs++;
		/* release: #oRelease + #oPublishHead */
		r.held[b] = 0;
		o_retire(&r, r.pos[b]);
		o_publish_head(&r);
		if (r.bad) break;
	}
	atomic_store_explicit(&c->end_ns, now_ns(), memory_order_relaxed);
	atomic_store_explicit(&c->msgs, msgs, memory_order_relaxed);
	atomic_store_explicit(&c->bad, r.bad, memory_order_relaxed);
	atomic_store_explicit(&c->consumer_done, 1, memory_order_release);
}

/* The sender's state (#oT, #oB, #oHc; one message per send, so #oN is 0 between sends). */
struct osend {
	struct ochan o;
	uint32_t t, b, hc, bad;
	int seqcst;
};

/* #oTouch: one byte of each of the 16 blocks after the next 8, one word of their two slot-table
 * lines, one ring word 16 positions ahead (all free by the cached head: the caller checked). */
static void o_touch(struct osend *s, uint32_t b)
{
	for (uint32_t k = 8; k < 8 + O_TOUCH_AHEAD; k++) {
		uint32_t j = b + k;
		if (j >= SLOTS) j -= SLOTS;
		((volatile uint8_t *)s->o.data)[(size_t)j * O_STRIDE] = 0;
		if ((k & 7) == 0) __atomic_store_n(&s->o.len[2 * j], 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&s->o.ring[(s->t + 1 + 15) & (O_RING_N - 1)], 0, __ATOMIC_RELAXED);
}

/* #oTake with #oN = 0: the block of position t, -1 when all are in flight (reloads the head then). */
static int32_t o_take(struct osend *s)
{
	if (s->t - s->hc >= SLOTS) {
		uint32_t h = __atomic_load_n(s->o.head, __ATOMIC_ACQUIRE); /* A2 */
		uint32_t used = s->t - h;
		if (used > SLOTS) {
			s->bad = 1;
			return -1;
		}
		s->hc = h;
		if (used >= SLOTS) return -1;
	}
	uint32_t b = s->b;
	if ((b & 7) == 0 && SLOTS - (s->t + 1 - s->hc) >= 8 + O_TOUCH_AHEAD) o_touch(s, b);
	return (int32_t)b;
}

static void run_ordered(int seqcst)
{
	uint8_t *base = shm_map(O_BYTES);
	struct ctl *c = shm_map(sizeof *c);
	/* a new channel: zeroed ring, so the first sender starts at block 1 (#oClaimProducer) */
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		o_receiver(base, c, seqcst);
		_exit(0);
	}
	pin(0);
	struct osend s = {ochan_at(base), 0, 0, 0, 0, seqcst};
	{ /* #oClaimProducer */
		s.t = __atomic_load_n(s.o.tail, __ATOMIC_SEQ_CST);
		s.hc = __atomic_load_n(s.o.head, __ATOMIC_SEQ_CST);
		uint32_t prev = s.o.ring[(s.t - 1) & (O_RING_N - 1)];
		s.b = prev + 1 == SLOTS ? 0 : prev + 1;
		__atomic_store_n(s.o.pw, 0, __ATOMIC_SEQ_CST);
	}
	uint8_t src[SIZE];
	for (uint32_t k = 0; k < SIZE; k++) src[k] = (uint8_t)k;
	double c0 = self_cpu();
	uint64_t dur = (quick ? 200 : 1000) * 1000000ull;
	uint32_t seq = 0, spause = 256;
	uint64_t t0 = now_ns(), deadline = t0 + dur;
	atomic_store_explicit(&c->start, 1, memory_order_release);
	for (;;) {
		for (int k = 0; k < 256 && !s.bad; k++) {
			int32_t b = o_take(&s);
			if (b < 0) { /* #take on a full channel: paced polls (sender pacing) */
				for (uint32_t polls = 1; b < 0 && !s.bad;) {
					if (atomic_load_explicit(&c->consumer_done, memory_order_acquire)) break; /* it failed */
					local_work(spause);
					polls++;
					if ((b = o_take(&s)) >= 0) {
						if (polls == 2 && spause > 256) spause -= spause >> 2;
					} else if (spause < 4096)
						spause += spause >> 1;
				}
				if (b < 0) break;
			}
			memcpy(src, &seq, 4);
			memcpy(s.o.data + (size_t)b * O_STRIDE, src, SIZE);
			__atomic_store_n(&s.o.len[2 * b], SIZE, __ATOMIC_RELAXED);
			/* #oPublish: the ring value, the tail (R1, the commit), then the consWaiters check */
			__atomic_store_n(&s.o.ring[s.t & (O_RING_N - 1)], (uint32_t)b, __ATOMIC_RELAXED);
			s.t++;
			s.b = (uint32_t)b + 1 == SLOTS ? 0 : (uint32_t)b + 1;
			o_store(s.o.tail, s.t, seqcst);
			if (__atomic_load_n(s.o.cw, __ATOMIC_SEQ_CST) != 0) s.bad = 2; /* nobody parks here */
			seq++;
		}
		if (s.bad || atomic_load_explicit(&c->consumer_done, memory_order_relaxed) || now_ns() >= deadline) break;
	}
	atomic_store_explicit(&c->done, 1, memory_order_release);
	while (!atomic_load_explicit(&c->consumer_done, memory_order_acquire)) CPU_RELAX();
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	double cpu = self_cpu() - c0 + tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	uint64_t msgs = atomic_load(&c->msgs);
	if (s.bad || atomic_load(&c->bad) || msgs != seq) {
		fprintf(stderr,
			"chan_floor: spsc-ordered: the sender (%u) or the receiver (%u) found a bad ring or message, or "
			"some were lost (%llu of %u)\n",
			s.bad, atomic_load(&c->bad), (unsigned long long)msgs, seq);
		exit(1);
	}
	double wall = (double)(atomic_load(&c->end_ns) - t0) / 1e9;
	const char *variant = seqcst ? "64 B message API, spsc-ordered" : "64 B message API, spsc-ordered, release stores";
	const char *note = seqcst
		? "channel protocol spsc-ordered (docs/layout/channel.md mode 2), 1024 slots, one message per send and "
		  "per receive+release, seq_cst tail/head stores as Atomics.store, sender pre-touch, receiver paced at "
		  "every refill; sender cpu0, receiver cpu1"
		: "the spsc-ordered case with release stores of tail and head (the protocol's own ordering; JavaScript "
		  "has only seq_cst); sender cpu0, receiver cpu1";
	printf("{\"bench\":\"S2\",\"variant\":\"%s\",\"transport\":\"C floor\",\"runtime\":\"c\",\"metric\":\"msgs/s\","
	       "\"value\":%.6g,\"cpu_s\":%.4f,\"wall_s\":%.4f,\"note\":\"%s\"}\n",
	       variant, (double)msgs / wall, cpu, wall, note);
	fflush(stdout);
	munmap(base, O_BYTES);
	munmap(c, sizeof *c);
}

int main(void)
{
	const char *q = getenv("SHMKIT_BENCH_QUICK");
	quick = q && *q && strcmp(q, "0") != 0;
	run_case(1);
	run_case(0);
	run_ordered(1);
	run_ordered(0);
	return 0;
}
