/*
 * C floor for S11 (SharedHeap): glibc malloc/free of the same sizes the scenario allocates, in one
 * process, in the same run. Prints one JSON line per cell, in bench/FORMAT.md's format.
 *   S11 "alloc+free 64B, 1 process": malloc(64) then free, in a loop (pairs/s)
 *   S11 "mixed 16..1024B, 1 process": a window of 64 live blocks of pseudo-random sizes (pairs/s)
 * glibc serves the first from its per-thread cache (tcache), which is the best a general
 * allocator does; a process-shared heap additionally takes a lock and journals its writes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "floor_common.h"

static void emit(const char *variant, double value, double cpu, double wall, const char *note)
{
	printf("{\"bench\":\"S11\",\"variant\":\"%s\",\"transport\":\"C floor\",\"runtime\":\"c\",\"metric\":\"pairs/s\","
	       "\"value\":%.6g,\"cpu_s\":%.4f,\"wall_s\":%.4f,\"note\":\"%s\"}\n",
	       variant, value, cpu, wall, note);
	fflush(stdout);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	const char *q = getenv("SHMKIT_BENCH_QUICK");
	int quick = q && *q && strcmp(q, "0") != 0;
	long n = quick ? 2000000 : 10000000;
	volatile uintptr_t sink = 0;
	double per[5];
	double c0 = self_cpu();
	uint64_t w0 = now_ns();
	for (int b = 0; b < 5; b++) {
		uint64_t t0 = now_ns();
		for (long i = 0; i < n; i++) {
			char *p = malloc(64);
			p[0] = (char)i; /* touch it, as the scenario does not: keeps the call */
			sink += (uintptr_t)p;
			free(p);
		}
		per[b] = (double)n / ((double)(now_ns() - t0) / 1e9);
	}
	qsort(per, 5, sizeof per[0], cmp);
	emit("alloc+free 64B, 1 process", per[2], self_cpu() - c0, (double)(now_ns() - w0) / 1e9,
	     "glibc malloc(64)+free pairs/s, median of 5");

	/* Mixed sizes: the same PRNG and window as the scenario. */
	void *live[64] = {0};
	uint32_t x = 12345;
	c0 = self_cpu();
	w0 = now_ns();
	for (int b = 0; b < 5; b++) {
		uint64_t t0 = now_ns();
		for (long i = 0; i < n / 2; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			int k = (int)(x & 63);
			if (live[k]) free(live[k]);
			live[k] = malloc(16 + ((x >> 8) & 1008));
			sink += (uintptr_t)live[k];
		}
		per[b] = (double)(n / 2) / ((double)(now_ns() - t0) / 1e9);
	}
	for (int k = 0; k < 64; k++) free(live[k]);
	qsort(per, 5, sizeof per[0], cmp);
	emit("mixed 16..1024B, 1 process", per[2], self_cpu() - c0, (double)(now_ns() - w0) / 1e9,
	     "glibc, a window of 64 live blocks, free+malloc pairs/s, median of 5");
	return sink == 1;
}
