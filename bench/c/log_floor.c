/* SPDX-License-Identifier: MIT */
/*
 * The C floor of S10: the MessageLog spsc protocol (csrc/shmkit_layout.h struct shmkit_log,
 * docs/layout/log.md) with no runtime in the way. A writer process (cpu0) appends records
 * [length | type | payload] packed 8-byte aligned into a 1 MiB data area, a padding record at
 * the wrap, and publishes `tail` once per batch (release); a reader process (cpu1) validates
 * every header against the tail and the end of the data area, checks the sequence number in
 * the payload, and publishes `head` once per batch. Same batch sizes as bench/scenarios/s10_log.ts.
 *
 *   S10 "64B"               64-byte records (56-byte payload), batches of 32: msgs/s and GB/s
 *   S10 "random 16..1024B"  payloads of 16..1024 bytes (xorshift), batches of 32: GB/s of payload and msgs/s
 *
 * Build: cc -O2 -std=gnu11 -Icsrc -o build/bench/log_floor bench/c/log_floor.c (scripts/bench.sh).
 * Usage: log_floor   (SHMKIT_BENCH_QUICK=1 shortens each case). Prints bench/FORMAT.md JSON lines.
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

#include "shmkit_layout.h"
#include "floor_common.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define CAP (1u << 20)
#define MASK (CAP - 1)
#define BATCH 32

struct ctl {
	_Atomic uint32_t start, done, bad, consumer_done;
	_Atomic uint64_t msgs, bytes, end_ns;
};

static int quick;

static inline uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Payload bytes of record i: 56 for "64B", 16..1024 for random (same sequence in both processes). */
static inline uint32_t payload_len(int random, uint32_t *rng) { return random ? 16 + xorshift(rng) % 1009 : 56; }

static void reader(struct shmkit_log *log, uint8_t *data, struct ctl *c, int random)
{
	uint32_t head = 0, tail = 0, seq = 0, bad = 0, rng = 12345;
	uint64_t msgs = 0, bytes = 0;
	while (!atomic_load_explicit(&c->start, memory_order_acquire)) CPU_RELAX();
	_Atomic uint32_t *tailp = (_Atomic uint32_t *)&log->tail, *headp = (_Atomic uint32_t *)&log->head;
	for (;;) {
		tail = atomic_load_explicit(tailp, memory_order_acquire); /* A1 */
		if (tail == head) {
			if (atomic_load_explicit(&c->done, memory_order_acquire) &&
			    atomic_load_explicit(tailp, memory_order_acquire) == head)
				break;
			CPU_RELAX();
			continue;
		}
		if (tail - head > CAP) {
			bad = 1;
			break;
		}
		uint32_t p = head;
		while (p != tail) { /* the whole batch, then one head store */
			uint32_t off = p & MASK;
			struct shmkit_log_record *r = (struct shmkit_log_record *)(data + off);
			uint32_t len = r->length, type = r->type, rec = (len + 7) & ~7u;
			if (len < 8 || off + rec > CAP || rec > tail - p) {
				bad = 2;
				break;
			}
			if (type == SHMKIT_LOG_TYPE_PAD) {
				p += len;
				continue;
			}
			uint32_t want = payload_len(random, &rng);
			uint32_t got;
			memcpy(&got, r->payload, 4);
			if (type > SHMKIT_LOG_MAX_TYPE || len - 8 != want || got != seq) bad = 3;
			seq++;
			msgs++;
			bytes += len - 8;
			p += rec;
		}
		if (bad) break;
		head = p;
		atomic_store_explicit(headp, head, memory_order_release); /* R2 */
	}
	atomic_store_explicit(&c->end_ns, now_ns(), memory_order_relaxed);
	atomic_store_explicit(&c->msgs, msgs, memory_order_relaxed);
	atomic_store_explicit(&c->bytes, bytes, memory_order_relaxed);
	atomic_store_explicit(&c->bad, bad, memory_order_relaxed);
	atomic_store_explicit(&c->consumer_done, 1, memory_order_release);
}

static void run_case(int random)
{
	size_t len = SHMKIT_LOG_HEADER_SIZE + CAP;
	struct shmkit_log *log = shm_map(len);
	struct ctl *c = shm_map(sizeof *c);
	uint8_t *data = (uint8_t *)log + SHMKIT_LOG_HEADER_SIZE;
	log->capacity = CAP;
	log->dataOffset = SHMKIT_LOG_HEADER_SIZE;
	pid_t pid = fork();
	if (pid == 0) {
		pin(1);
		reader(log, data, c, random);
		_exit(0);
	}
	pin(0);
	uint8_t src[1024 + 8];
	for (int i = 0; i < (int)sizeof src; i++) src[i] = (uint8_t)i;
	double c0 = self_cpu();
	uint64_t dur = (quick ? 200 : 1000) * 1000000ull;
	uint32_t tail = 0, head_cache = 0, seq = 0, rng = 12345, lens[BATCH];
	_Atomic uint32_t *tailp = (_Atomic uint32_t *)&log->tail, *headp = (_Atomic uint32_t *)&log->head;
	uint64_t t0 = now_ns(), deadline = t0 + dur;
	atomic_store_explicit(&c->start, 1, memory_order_release);
	for (;;) {
		for (int k = 0; k < 64; k++) {
			for (int i = 0; i < BATCH; i++) lens[i] = payload_len(random, &rng);
			int i = 0;
			while (i < BATCH) {
				uint32_t n = lens[i], rec = (8 + n + 7) & ~7u, off = tail & MASK, room = CAP - off;
				uint32_t need = rec > room ? room + rec : rec;
				while (CAP - (tail - head_cache) < need) {
					head_cache = atomic_load_explicit(headp, memory_order_acquire); /* A2 */
					if (CAP - (tail - head_cache) < need) CPU_RELAX();
				}
				if (rec > room) { /* padding to the end */
					struct shmkit_log_record *pr = (struct shmkit_log_record *)(data + off);
					pr->length = room;
					pr->type = SHMKIT_LOG_TYPE_PAD;
					tail += room;
					off = 0;
				}
				struct shmkit_log_record *r = (struct shmkit_log_record *)(data + off);
				memcpy(src, &seq, 4);
				memcpy(r->payload, src, n);
				r->type = 1;
				r->length = 8 + n;
				tail += rec;
				seq++;
				i++;
			}
			atomic_store_explicit(tailp, tail, memory_order_release); /* W-R1: one per batch */
		}
		if (now_ns() >= deadline) break;
	}
	atomic_store_explicit(&c->done, 1, memory_order_release);
	while (!atomic_load_explicit(&c->consumer_done, memory_order_acquire)) CPU_RELAX();
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	double cpu = self_cpu() - c0 + tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	uint64_t msgs = atomic_load(&c->msgs), bytes = atomic_load(&c->bytes);
	if (atomic_load(&c->bad) || msgs != seq) {
		fprintf(stderr, "log_floor: reader found a bad record (%u) or lost some (%llu of %u)\n", atomic_load(&c->bad),
			(unsigned long long)msgs, seq);
		exit(1);
	}
	double wall = (double)(atomic_load(&c->end_ns) - t0) / 1e9;
	const char *variant = random ? "random 16..1024B" : "64B";
	const char *note = "log spsc protocol, 1 MiB data area, batches of 32, writer cpu0, reader cpu1";
	printf("{\"bench\":\"S10\",\"variant\":\"%s\",\"transport\":\"C floor\",\"runtime\":\"c\",\"metric\":\"msgs/s\","
	       "\"value\":%.6g,\"cpu_s\":%.4f,\"wall_s\":%.4f,\"note\":\"%s\"}\n",
	       variant, (double)msgs / wall, cpu, wall, note);
	printf("{\"bench\":\"S10\",\"variant\":\"%s\",\"transport\":\"C floor\",\"runtime\":\"c\",\"metric\":\"GB/s\","
	       "\"value\":%.6g,\"cpu_s\":%.4f,\"wall_s\":%.4f,\"note\":\"payload bytes; %s\"}\n",
	       variant, (double)bytes / wall / 1e9, cpu, wall, note);
	fflush(stdout);
	munmap(log, len);
	munmap(c, sizeof *c);
}

int main(void)
{
	const char *q = getenv("SHMKIT_BENCH_QUICK");
	quick = q && *q && strcmp(q, "0") != 0;
	run_case(0);
	run_case(1);
	return 0;
}
