/* SPDX-License-Identifier: MIT */
/*
 * The C floor: what this machine can do with no runtime in the way, measured in the same run as
 * the TypeScript scenarios and the peers. It prints the JSON lines of bench/FORMAT.md with
 * runtime "c" and transport "C floor".
 *
 *   S9  plain (non-inlined) function call; FUTEX_WAKE with no waiter
 *   S1  cross-process SPSC ring of u32 in a MAP_SHARED shm segment, producer cpu0 / consumer cpu1,
 *       batch 1, 8, 32, 256, release/acquire index stores (and seq_cst for reference)
 *   S3  cross-process 64 B ping-pong: spin (p50/p99/p99.9) and futex park (p50/p99)
 *   S4  wake from idle: consumer parked >= 1 ms, one message, one-way CLOCK_MONOTONIC latency
 *   S6  mempool-like get+put: a lock-free index stack (tagged head, CAS), one process
 *   S7  MPMC ring (per-cell sequence numbers), 1P1C and 2P2C processes, items/s
 *   S8  shm_open + ftruncate + mmap + first touch of 64 MiB; open + mmap + touch of the same
 *   S5  memcpy 1, 16, 64 MiB (GB/s and time per copy)
 *
 * Build: gcc -O2 -pthread -o build/bench/floor bench/c/floor.c (scripts/bench.sh does it).
 * Usage: floor [S1,S3,...]   (default: all); SHMKIT_BENCH_QUICK=1 shortens every case.
 *
 * Processes are fork()ed; each cell reports user+sys CPU of every process it used (getrusage of
 * the parent plus wait4() of the children).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "floor_common.h"

static int quick;
static int probe; /* argv[1] == "PROBE": one short S3 spin case (bench/lib.ts phaseProbe) */
static const char *only;
static volatile uint32_t sink; /* keeps results of timed loops alive */

/* ---------------------------------------------------------------------------------------------
 * Helpers: clock, CPU time, pinning, shm, futex, percentiles, JSON */

/* Waits for a child and returns its user+sys CPU seconds. */
static double reap(pid_t pid)
{
	int st;
	struct rusage ru;
	if (wait4(pid, &st, 0, &ru) < 0) {
		perror("wait4");
		exit(1);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "floor: child %d failed (status %d)\n", (int)pid, st);
		exit(1);
	}
	return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static void unpin(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET((int)i, &set);
	sched_setaffinity(0, sizeof set, &set);
}

static long futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
	return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected, NULL, NULL, 0);
}

static long futex_wake(_Atomic uint32_t *addr, int n)
{
	return syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *sorted, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);
	if (i >= n) i = n - 1;
	return (double)sorted[i];
}

static void emit(const char *bench, const char *variant, const char *metric, double value, double cpu_s, double wall_s,
		 const char *note)
{
	printf("{\"bench\":\"%s\",\"variant\":\"%s\",\"transport\":\"C floor\",\"runtime\":\"c\",\"metric\":\"%s\","
	       "\"value\":%.6g",
	       bench, variant, metric, value);
	if (cpu_s >= 0) printf(",\"cpu_s\":%.4f", cpu_s);
	if (wall_s >= 0) printf(",\"wall_s\":%.4f", wall_s);
	if (note && *note) printf(",\"note\":\"%s\"", note);
	printf("}\n");
	fflush(stdout);
}

static int wanted(const char *id)
{
	if (!only || !*only) return 1;
	size_t n = strlen(id);
	for (const char *p = only; (p = strstr(p, id)) != NULL; p += n)
		if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
	return 0;
}

#define CL 64
#define BARRIER() __asm__ __volatile__("" ::: "memory")
#define CPU_RELAX() __builtin_ia32_pause()

/* ---------------------------------------------------------------------------------------------
 * S9: a plain call and a futex wake with no waiter */

__attribute__((noinline)) static int nop_fn(void)
{
	BARRIER();
	return 0;
}

static void bench_s9(void)
{
	int (*volatile fp)(void) = nop_fn;
	long n = quick ? 20000000 : 100000000;
	int acc = 0;
	for (long i = 0; i < 1000000; i++) acc += fp();
	double c0 = self_cpu();
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) acc += fp();
	uint64_t t1 = now_ns();
	double c1 = self_cpu();
	sink = (uint32_t)acc;
	emit("S9", "nop call", "ns/call", (double)(t1 - t0) / (double)n, c1 - c0, (double)(t1 - t0) / 1e9,
	     "call through a volatile function pointer");

	_Atomic uint32_t *word = shm_map(4096);
	long m = quick ? 200000 : 1000000;
	c0 = self_cpu();
	t0 = now_ns();
	for (long i = 0; i < m; i++) futex_wake(word, 1);
	t1 = now_ns();
	c1 = self_cpu();
	emit("S9", "futex wake, no waiter", "ns/call", (double)(t1 - t0) / (double)m, c1 - c0, (double)(t1 - t0) / 1e9,
	     "FUTEX_WAKE (shared) on a MAP_SHARED word");

	/* the C11 seq_cst equivalents of Atomics.load / store / add / compareExchange (one thread) */
	_Atomic uint32_t *a = word + 16;
	long k = quick ? 5000000 : 20000000;
	static const char *names[] = {"Atomics.load", "Atomics.store", "Atomics.add", "Atomics.compareExchange"};
	for (int op = 0; op < 4; op++) {
		uint32_t s = 0;
		c0 = self_cpu();
		t0 = now_ns();
		switch (op) {
		case 0:
			for (long i = 0; i < k; i++) s += atomic_load(a);
			break;
		case 1:
			for (long i = 0; i < k; i++) atomic_store(a, (uint32_t)i);
			break;
		case 2:
			for (long i = 0; i < k; i++) s += atomic_fetch_add(a, 1);
			break;
		case 3:
			for (long i = 0; i < k; i++) {
				uint32_t e = (uint32_t)i;
				atomic_compare_exchange_strong(a, &e, (uint32_t)i + 1);
				s += e;
			}
			break;
		}
		t1 = now_ns();
		c1 = self_cpu();
		sink = s;
		emit("S9", names[op], "ns/op", (double)(t1 - t0) / (double)k, c1 - c0, (double)(t1 - t0) / 1e9,
		     "C11 seq_cst atomic on a MAP_SHARED word, one thread");
	}
	munmap((void *)word, 4096);
}

/* ---------------------------------------------------------------------------------------------
 * S1: SPSC ring of u32 across two processes */

#define RING_CAP 16384u
#define RING_MASK (RING_CAP - 1)

struct spsc {
	alignas(CL) _Atomic uint32_t tail; /* written by the producer */
	alignas(CL) _Atomic uint32_t head; /* written by the consumer */
	alignas(CL) _Atomic uint32_t start;
	_Atomic uint32_t produced_done;
	_Atomic uint64_t total;
	alignas(CL) _Atomic uint32_t consumer_done;
	_Atomic uint64_t consumed;
	_Atomic uint32_t bad;
	_Atomic uint64_t end_ns;
	alignas(CL) uint32_t slots[RING_CAP];
};

/* Index stores and loads of S1: seq_cst, or release / acquire. The order must be a constant at
 * each call: GCC compiles an `atomic_*_explicit` whose order is a run-time value as seq_cst (until
 * 2026-12-02 the "release/acquire" cases measured seq_cst stores, an `xchg` per publish). */
static inline void st_idx(_Atomic uint32_t *p, uint32_t v, int seq_cst)
{
	if (seq_cst)
		atomic_store_explicit(p, v, memory_order_seq_cst);
	else
		atomic_store_explicit(p, v, memory_order_release);
}

static inline uint32_t ld_idx(_Atomic uint32_t *p, int seq_cst)
{
	return seq_cst ? atomic_load_explicit(p, memory_order_seq_cst) : atomic_load_explicit(p, memory_order_acquire);
}

static void spsc_consumer(struct spsc *r, uint32_t batch, int seq_cst)
{
	uint32_t head = 0, tail_cache = 0, bad = 0;
	uint64_t count = 0;
	while (!atomic_load_explicit(&r->start, memory_order_acquire)) CPU_RELAX();
	for (;;) {
		if (tail_cache == head) {
			tail_cache = ld_idx(&r->tail, seq_cst);
			if (tail_cache == head) {
				if (atomic_load_explicit(&r->produced_done, memory_order_acquire) &&
				    atomic_load_explicit(&r->tail, memory_order_acquire) == head)
					break;
				CPU_RELAX();
				continue;
			}
		}
		uint32_t n = tail_cache - head;
		if (n > batch) n = batch;
		for (uint32_t i = 0; i < n; i++) bad |= r->slots[(head + i) & RING_MASK] ^ (head + i);
		head += n;
		count += n;
		st_idx(&r->head, head, seq_cst);
	}
	atomic_store_explicit(&r->end_ns, now_ns(), memory_order_relaxed);
	atomic_store_explicit(&r->consumed, count, memory_order_relaxed);
	atomic_store_explicit(&r->bad, bad, memory_order_relaxed);
	atomic_store_explicit(&r->consumer_done, 1, memory_order_release);
}

static void bench_s1_case(uint32_t batch, int seq_cst)
{
	struct spsc *r = shm_map(sizeof *r);
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		spsc_consumer(r, batch, seq_cst);
		_exit(0);
	}
	pin(0);
	double c0 = self_cpu();
	uint64_t dur = (quick ? 150 : 400) * 1000000ull;
	uint32_t tail = 0, head_cache = 0;
	uint64_t total = 0;
	uint64_t t0 = now_ns(), deadline = t0 + dur;
	atomic_store_explicit(&r->start, 1, memory_order_release);
	for (;;) {
		for (int k = 0; k < 1024; k++) {
			while (RING_CAP - (tail - head_cache) < batch) {
				head_cache = ld_idx(&r->head, seq_cst);
				if (RING_CAP - (tail - head_cache) < batch) CPU_RELAX();
			}
			for (uint32_t i = 0; i < batch; i++) r->slots[(tail + i) & RING_MASK] = tail + i;
			tail += batch;
			st_idx(&r->tail, tail, seq_cst);
		}
		total += 1024ull * batch;
		if (now_ns() >= deadline) break;
	}
	atomic_store_explicit(&r->total, total, memory_order_relaxed);
	atomic_store_explicit(&r->produced_done, 1, memory_order_release);
	while (!atomic_load_explicit(&r->consumer_done, memory_order_acquire)) CPU_RELAX();
	uint64_t t1 = atomic_load_explicit(&r->end_ns, memory_order_relaxed);
	double cpu = self_cpu() - c0 + reap(pid);
	unpin();
	if (atomic_load(&r->consumed) != total || atomic_load(&r->bad)) {
		fprintf(stderr, "floor: S1 lost or corrupted items (%llu of %llu)\n", (unsigned long long)atomic_load(&r->consumed),
			(unsigned long long)total);
		exit(1);
	}
	char variant[64], note[160];
	snprintf(variant, sizeof variant, "batch=%u%s", batch, seq_cst ? " seq_cst" : "");
	snprintf(note, sizeof note, "%s index stores, ring %u slots, producer cpu0, consumer cpu1, %.3g M items",
		 seq_cst ? "seq_cst" : "release/acquire", RING_CAP, (double)total / 1e6);
	double wall = (double)(t1 - t0) / 1e9;
	emit("S1", variant, "items/s", (double)total / wall, cpu, wall, note);
	munmap(r, sizeof *r);
}

static void bench_s1(void)
{
	static const uint32_t batches[] = {1, 8, 32, 256};
	for (int s = 0; s < 2; s++)
		for (int b = 0; b < 4; b++) bench_s1_case(batches[b], s);
}

/* ---------------------------------------------------------------------------------------------
 * S3: 64 B ping-pong, spin and futex park; S4: wake from idle */

struct pingpong {
	alignas(CL) _Atomic uint32_t ping;
	_Atomic uint32_t ping_waiters;
	alignas(CL) uint8_t ping_msg[64];
	alignas(CL) _Atomic uint32_t pong;
	_Atomic uint32_t pong_waiters;
	alignas(CL) uint8_t pong_msg[64];
	alignas(CL) _Atomic uint64_t stamp;
	_Atomic uint32_t armed; /* S4: the sequence number the consumer is about to wait for */
	uint64_t lat[4096];
};

/* Waits until *seq reaches want (free-running, compared by signed difference): spin, or park
 * (register as a waiter, re-check, FUTEX_WAIT). */
static void wait_for(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, uint32_t want, int park)
{
	for (;;) {
		uint32_t v = atomic_load_explicit(seq, memory_order_acquire);
		if ((int32_t)(v - want) >= 0) return;
		if (!park) {
			CPU_RELAX();
			continue;
		}
		atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
		if (atomic_load_explicit(seq, memory_order_seq_cst) == v) futex_wait(seq, v);
		atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
	}
}

static void post(_Atomic uint32_t *seq, _Atomic uint32_t *waiters, uint32_t v, int park)
{
	atomic_store_explicit(seq, v, park ? memory_order_seq_cst : memory_order_release);
	if (park && atomic_load_explicit(waiters, memory_order_seq_cst)) futex_wake(seq, 1);
}

static void bench_s3_case(int park)
{
	struct pingpong *p = shm_map(sizeof *p);
	uint32_t warm = park ? 500 : probe ? 5000 : 20000;
	uint32_t n = park ? (quick ? 1500 : 5000) : probe ? 30000 : (quick ? 50000 : 300000);
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		for (uint32_t i = 1; i <= warm + n; i++) {
			wait_for(&p->ping, &p->ping_waiters, i, park);
			memcpy(p->pong_msg, p->ping_msg, 64);
			post(&p->pong, &p->pong_waiters, i, park);
		}
		_exit(0);
	}
	pin(0);
	uint64_t *rtt = malloc(sizeof(uint64_t) * n);
	uint8_t msg[64], back[64];
	memset(msg, 7, sizeof msg);
	double c0 = self_cpu();
	uint64_t w0 = now_ns();
	for (uint32_t i = 1; i <= warm + n; i++) {
		uint64_t t0 = now_ns();
		msg[0] = (uint8_t)i;
		memcpy(p->ping_msg, msg, 64);
		post(&p->ping, &p->ping_waiters, i, park);
		wait_for(&p->pong, &p->pong_waiters, i, park);
		memcpy(back, p->pong_msg, 64);
		uint64_t t1 = now_ns();
		if (back[0] != (uint8_t)i) {
			fprintf(stderr, "floor: S3 payload mismatch\n");
			exit(1);
		}
		if (i > warm) rtt[i - warm - 1] = t1 - t0;
	}
	uint64_t w1 = now_ns();
	double cpu = self_cpu() - c0 + reap(pid);
	unpin();
	qsort(rtt, n, sizeof *rtt, cmp_u64);
	double wall = (double)(w1 - w0) / 1e9;
	char note[128];
	snprintf(note, sizeof note, "%s, pinger cpu0, ponger cpu1, %u samples", park ? "FUTEX_WAIT/WAKE, no spinning" : "busy-poll",
		 n);
	const char *v = park ? "park 64B" : "spin 64B";
	emit("S3", v, "ns p50", pct(rtt, n, 0.5), cpu, wall, note);
	emit("S3", v, "ns p99", pct(rtt, n, 0.99), cpu, wall, note);
	if (!park) emit("S3", v, "ns p99.9", pct(rtt, n, 0.999), cpu, wall, note);
	free(rtt);
	munmap(p, sizeof *p);
}

static void bench_s4(void)
{
	struct pingpong *p = shm_map(sizeof *p);
	uint32_t n = quick ? 200 : 600;
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		for (uint32_t i = 1; i <= n; i++) {
			atomic_store_explicit(&p->armed, i, memory_order_seq_cst);
			wait_for(&p->ping, &p->ping_waiters, i, 1);
			uint64_t t1 = now_ns();
			p->lat[i - 1] = t1 - atomic_load_explicit(&p->stamp, memory_order_relaxed);
		}
		_exit(0);
	}
	pin(0);
	double c0 = self_cpu();
	uint64_t w0 = now_ns();
	struct timespec nap = {0, 1200000};
	for (uint32_t i = 1; i <= n; i++) {
		nanosleep(&nap, NULL);
		/* the consumer must be parked (registered as a waiter) before the stamp */
		while (atomic_load_explicit(&p->armed, memory_order_seq_cst) != i ||
		       !atomic_load_explicit(&p->ping_waiters, memory_order_seq_cst))
			nanosleep(&(struct timespec){0, 100000}, NULL);
		atomic_store_explicit(&p->stamp, now_ns(), memory_order_relaxed);
		post(&p->ping, &p->ping_waiters, i, 1);
	}
	double cpu = self_cpu() - c0 + reap(pid);
	uint64_t w1 = now_ns();
	unpin();
	uint64_t *lat = malloc(sizeof(uint64_t) * n);
	memcpy(lat, p->lat, sizeof(uint64_t) * n);
	qsort(lat, n, sizeof *lat, cmp_u64);
	char note[128];
	snprintf(note, sizeof note, "consumer parked >= 1.2 ms (FUTEX_WAIT), cpu1; waker cpu0; %u samples", n);
	double wall = (double)(w1 - w0) / 1e9;
	emit("S4", "park", "us p50", pct(lat, n, 0.5) / 1e3, cpu, wall, note);
	emit("S4", "park", "us p99", pct(lat, n, 0.99) / 1e3, cpu, wall, note);
	free(lat);
	munmap(p, sizeof *p);
}

/* ---------------------------------------------------------------------------------------------
 * S6: lock-free index stack (tagged 64-bit head: tag << 32 | index) */

#define POOL_N 1024u
#define NIL 0xffffffffu

struct pool {
	alignas(CL) _Atomic uint64_t head;
	alignas(CL) _Atomic uint32_t next[POOL_N];
};

static inline uint32_t pool_get(struct pool *p)
{
	uint64_t old = atomic_load_explicit(&p->head, memory_order_acquire);
	for (;;) {
		uint32_t idx = (uint32_t)old;
		if (idx == NIL) return NIL;
		uint32_t nxt = atomic_load_explicit(&p->next[idx], memory_order_relaxed);
		uint64_t neu = (((old >> 32) + 1) << 32) | nxt;
		if (atomic_compare_exchange_weak_explicit(&p->head, &old, neu, memory_order_acq_rel, memory_order_acquire))
			return idx;
	}
}

static inline void pool_put(struct pool *p, uint32_t idx)
{
	uint64_t old = atomic_load_explicit(&p->head, memory_order_relaxed);
	for (;;) {
		atomic_store_explicit(&p->next[idx], (uint32_t)old, memory_order_relaxed);
		uint64_t neu = (((old >> 32) + 1) << 32) | idx;
		if (atomic_compare_exchange_weak_explicit(&p->head, &old, neu, memory_order_release, memory_order_relaxed)) return;
	}
}

static void bench_s6(void)
{
	struct pool *p = shm_map(sizeof *p);
	for (uint32_t i = 0; i < POOL_N; i++) atomic_store(&p->next[i], i + 1 < POOL_N ? i + 1 : NIL);
	atomic_store(&p->head, 0);
	long n = quick ? 5000000 : 30000000;
	uint32_t acc = 0;
	double c0 = self_cpu();
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		uint32_t b = pool_get(p);
		acc += b;
		pool_put(p, b);
	}
	uint64_t t1 = now_ns();
	double cpu = self_cpu() - c0;
	double wall = (double)(t1 - t0) / 1e9;
	sink = acc;
	emit("S6", "get+put, 1 process", "ops/s", (double)n / wall, cpu, wall,
	     "get+put pairs/s; Treiber stack of u32 indices, tagged CAS head, MAP_SHARED");
	munmap(p, sizeof *p);
}

/* ---------------------------------------------------------------------------------------------
 * S7: bounded MPMC ring with per-cell sequence numbers, processes, yield when full/empty */

#define MQ_CAP 1024u

struct mpmc {
	alignas(CL) _Atomic uint32_t enq;
	alignas(CL) _Atomic uint32_t deq;
	alignas(CL) _Atomic uint32_t start;
	_Atomic uint32_t producers_done;
	_Atomic uint64_t start_ns;
	alignas(CL) _Atomic uint64_t sent_sum[8];
	_Atomic uint64_t sent_n[8];
	_Atomic uint64_t got_sum[8];
	_Atomic uint64_t got_n[8];
	_Atomic uint64_t end_ns[8];
	alignas(CL) struct {
		_Atomic uint32_t seq;
		uint32_t val;
	} cell[MQ_CAP];
};

static void mq_producer(struct mpmc *q, int me, uint64_t dur)
{
	while (!atomic_load_explicit(&q->start, memory_order_acquire)) sched_yield();
	uint64_t deadline = atomic_load(&q->start_ns) + dur, sent = 0, sum = 0;
	for (;;) {
		for (int k = 0; k < 4096; k++) {
			uint32_t val = (uint32_t)(sent * 2654435761u) ^ (uint32_t)me;
			uint32_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
			for (;;) {
				uint32_t seq = atomic_load_explicit(&q->cell[pos & (MQ_CAP - 1)].seq, memory_order_acquire);
				int32_t dif = (int32_t)(seq - pos);
				if (dif == 0) {
					if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1, memory_order_relaxed,
										  memory_order_relaxed))
						break;
				} else if (dif < 0) {
					sched_yield(); /* full */
					pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
				} else {
					pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
				}
			}
			q->cell[pos & (MQ_CAP - 1)].val = val;
			atomic_store_explicit(&q->cell[pos & (MQ_CAP - 1)].seq, pos + 1, memory_order_release);
			sent++;
			sum += val;
		}
		if (now_ns() >= deadline) break;
	}
	atomic_store(&q->sent_n[me], sent);
	atomic_store(&q->sent_sum[me], sum);
	atomic_fetch_add_explicit(&q->producers_done, 1, memory_order_release);
}

static void mq_consumer(struct mpmc *q, int me, uint32_t nprod)
{
	uint64_t got = 0, sum = 0;
	while (!atomic_load_explicit(&q->start, memory_order_acquire)) sched_yield();
	for (;;) {
		uint32_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
		uint32_t seq = atomic_load_explicit(&q->cell[pos & (MQ_CAP - 1)].seq, memory_order_acquire);
		int32_t dif = (int32_t)(seq - (pos + 1));
		if (dif == 0) {
			if (!atomic_compare_exchange_weak_explicit(&q->deq, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed))
				continue;
			sum += q->cell[pos & (MQ_CAP - 1)].val;
			atomic_store_explicit(&q->cell[pos & (MQ_CAP - 1)].seq, pos + MQ_CAP, memory_order_release);
			got++;
		} else if (dif < 0) {
			/* empty: finished when every producer is done and nothing is left */
			if (atomic_load_explicit(&q->producers_done, memory_order_acquire) == nprod &&
			    atomic_load_explicit(&q->deq, memory_order_relaxed) == atomic_load_explicit(&q->enq, memory_order_relaxed))
				break;
			sched_yield();
		}
	}
	atomic_store(&q->got_n[me], got);
	atomic_store(&q->got_sum[me], sum);
	atomic_store(&q->end_ns[me], now_ns());
}

static void bench_s7_case(int np, int nc)
{
	struct mpmc *q = shm_map(sizeof *q);
	for (uint32_t i = 0; i < MQ_CAP; i++) atomic_store(&q->cell[i].seq, i);
	uint64_t dur = (quick ? 200 : 500) * 1000000ull;
	pid_t pids[16];
	int k = 0;
	for (int i = 0; i < np; i++)
		if ((pids[k++] = fork()) == 0) {
			if (np == 1 && nc == 1) pin(0);
			mq_producer(q, i, dur);
			_exit(0);
		}
	for (int i = 0; i < nc; i++)
		if ((pids[k++] = fork()) == 0) {
			if (np == 1 && nc == 1) pin(1);
			mq_consumer(q, i, (uint32_t)np);
			_exit(0);
		}
	usleep(20000);
	atomic_store(&q->start_ns, now_ns());
	atomic_store_explicit(&q->start, 1, memory_order_release);
	double cpu = 0;
	for (int i = 0; i < k; i++) cpu += reap(pids[i]);
	uint64_t sent = 0, ssum = 0, got = 0, gsum = 0, end = 0;
	for (int i = 0; i < np; i++) sent += q->sent_n[i], ssum += q->sent_sum[i];
	for (int i = 0; i < nc; i++) {
		got += q->got_n[i], gsum += q->got_sum[i];
		if (q->end_ns[i] > end) end = q->end_ns[i];
	}
	if (sent != got || ssum != gsum) {
		fprintf(stderr, "floor: S7 lost items (%llu sent, %llu received)\n", (unsigned long long)sent,
			(unsigned long long)got);
		exit(1);
	}
	double wall = (double)(end - q->start_ns) / 1e9;
	char variant[32], note[160];
	snprintf(variant, sizeof variant, "%dP%dC", np, nc);
	snprintf(note, sizeof note, "per-cell sequence MPMC, %u slots, one item per op, sched_yield when full/empty, %s", MQ_CAP,
		 np == 1 && nc == 1 ? "pinned cpu0/cpu1" : "unpinned");
	emit("S7", variant, "items/s", (double)got / wall, cpu, wall, note);
	munmap(q, sizeof *q);
}

/* ---------------------------------------------------------------------------------------------
 * S8: create + map + first touch of 64 MiB; S5: memcpy */

static double ms_median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

static void bench_s8(void)
{
	const size_t len = 64u << 20;
	const long page = sysconf(_SC_PAGESIZE);
	int reps = quick ? 3 : 7;
	double create_ms[16], open_ms[16], cpu_c = 0, cpu_o = 0;
	char name[64];
	for (int r = 0; r < reps; r++) {
		snprintf(name, sizeof name, "/shmkit-bench-floor-s8-%d-%d", (int)getpid(), r);
		double c0 = self_cpu();
		uint64_t t0 = now_ns();
		int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
			perror("shm_open/ftruncate");
			exit(1);
		}
		volatile uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED) exit(1);
		for (size_t o = 0; o < len; o += (size_t)page) p[o] = 1;
		uint64_t t1 = now_ns();
		cpu_c += self_cpu() - c0;
		create_ms[r] = (double)(t1 - t0) / 1e6;
		munmap((void *)p, len);

		c0 = self_cpu();
		t0 = now_ns();
		fd = shm_open(name, O_RDWR, 0);
		if (fd < 0) exit(1);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED) exit(1);
		unsigned s = 0;
		for (size_t o = 0; o < len; o += (size_t)page) s += p[o];
		t1 = now_ns();
		cpu_o += self_cpu() - c0;
		open_ms[r] = (double)(t1 - t0) / 1e6;
		if (s != len / (size_t)page) exit(1);
		munmap((void *)p, len);
		shm_unlink(name);
	}
	emit("S8", "create+map+touch 64 MiB", "ms", ms_median(create_ms, reps), cpu_c / reps, -1,
	     "shm_open O_EXCL + ftruncate + mmap + write one byte per page; median");
	emit("S8", "open+map+touch 64 MiB", "ms", ms_median(open_ms, reps), cpu_o / reps, -1,
	     "shm_open + mmap + read one byte per page of a populated segment; median");
}

static void bench_memcpy(void)
{
	static const size_t sizes[] = {1u << 20, 16u << 20, 64u << 20};
	static const char *names[] = {"memcpy 1 MiB", "memcpy 16 MiB", "memcpy 64 MiB"};
	uint8_t *src = malloc(64u << 20), *dst = malloc(64u << 20);
	memset(src, 1, 64u << 20);
	memset(dst, 2, 64u << 20);
	void *(*volatile cp)(void *, const void *, size_t) = memcpy;
	for (int s = 0; s < 3; s++) {
		size_t len = sizes[s];
		long reps = (long)((quick ? (256u << 20) : (1024u << 20)) / len);
		cp(dst, src, len);
		double c0 = self_cpu();
		uint64_t t0 = now_ns();
		for (long r = 0; r < reps; r++) {
			src[r & 4095] = (uint8_t)r;
			cp(dst, src, len);
			BARRIER();
		}
		uint64_t t1 = now_ns();
		double cpu = self_cpu() - c0, wall = (double)(t1 - t0) / 1e9;
		emit("S5", names[s], "GB/s", (double)len * (double)reps / wall / 1e9, cpu, wall, "one core, warm buffers");
		emit("S5", names[s], "us", wall / (double)reps * 1e6, cpu, wall, "time of one copy");
	}
	free(src);
	free(dst);
}

int main(int argc, char **argv)
{
	const char *q = getenv("SHMKIT_BENCH_QUICK");
	quick = q && *q && strcmp(q, "0") != 0;
	only = argc > 1 ? argv[1] : getenv("SHMKIT_BENCH_FLOOR");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (only && strcmp(only, "PROBE") == 0) {
		probe = 1;
		bench_s3_case(0);
		return 0;
	}
	if (wanted("S9")) bench_s9();
	if (wanted("S1")) bench_s1();
	if (wanted("S3")) {
		bench_s3_case(0);
		bench_s3_case(1);
	}
	if (wanted("S4")) bench_s4();
	if (wanted("S6")) bench_s6();
	if (wanted("S7")) {
		bench_s7_case(1, 1);
		bench_s7_case(2, 2);
	}
	if (wanted("S8")) bench_s8();
	if (wanted("S5")) bench_memcpy();
	return 0;
}
