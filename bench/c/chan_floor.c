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

int main(void)
{
	const char *q = getenv("SHMKIT_BENCH_QUICK");
	quick = q && *q && strcmp(q, "0") != 0;
	run_case(1);
	run_case(0);
	return 0;
}
