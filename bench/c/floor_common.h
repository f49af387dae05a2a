/* SPDX-License-Identifier: MIT */
/* What every C floor of bench/c/ needs: a monotonic clock, its own CPU time, pinning to a CPU and
 * a shared mapping that survives fork. Included by floor.c, heap_floor.c, log_floor.c and
 * chan_floor.c (each defines _GNU_SOURCE first). */
#ifndef SHMKIT_FLOOR_COMMON_H
#define SHMKIT_FLOOR_COMMON_H

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* user + sys CPU seconds of this process so far */
static inline double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static inline void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0) perror("sched_setaffinity");
}

/* A zeroed MAP_SHARED segment from shm_open, unlinked at once (the mapping survives fork). */
static inline void *shm_map(size_t len)
{
	char name[64];
	snprintf(name, sizeof name, "/shmkit-bench-floor-%d-%llu", (int)getpid(), (unsigned long long)now_ns());
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		perror("shm_open");
		exit(1);
	}
	shm_unlink(name);
	if (ftruncate(fd, (off_t)len) < 0) {
		perror("ftruncate");
		exit(1);
	}
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 0, len);
	return p;
}

#endif
