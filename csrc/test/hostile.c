/* SPDX-License-Identifier: MIT */
/*
 * Hostile-argument harness for every exported function of libshmkit (csrc/shmkit.h). Built with
 * the library sources under AddressSanitizer + UndefinedBehaviorSanitizer
 * (-fsanitize=address,undefined -fno-sanitize-recover=all): any out-of-bounds access, NULL
 * dereference, signed overflow or misaligned access aborts the run. Every call must also return
 * the documented error (-EINVAL, -EBADF, -ENODEV, -ELOOP ...) and must not block.
 *
 *   hostile                 the fixed cases (make test, via tests/c_sanitize_test.ts)
 *   hostile --random N SEED N random calls with arguments drawn from hostile pools (make stress)
 *
 * Linux only (it uses /dev/shm, mkfifo and /proc).
 */
#define _GNU_SOURCE
#include "../shmkit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;
static int checks;

#define EXPECT(call, cond)                                                                               \
	do {                                                                                             \
		double r_ = (double)(call);                                                              \
		checks++;                                                                                \
		if (!(cond)) {                                                                           \
			fprintf(stderr, "hostile: FAIL %s:%d: %s returned %g, expected %s\n", __FILE__, __LINE__, \
				#call, r_, #cond);                                                       \
			failures++;                                                                      \
		}                                                                                        \
	} while (0)
#define R r_

static const double bad_sizes[] = { NAN, -1.0, -0.5, 0.5, 1.5, INFINITY, -INFINITY, 1e300, 9007199254740992.0 };
static const double bad_offsets[] = { NAN, -1.0, -0.0 - 1e-9, 0.5, INFINITY, -INFINITY, 1e300, 9007199254740992.0, 4096.0 * 1024 * 1024 };
static const int32_t bad_ids[] = { INT32_MIN, -1, 0, 1, 65535, 65536, INT32_MAX, 0x7fff0001 };
static const int32_t bad_fds[] = { INT32_MIN, -1, -2, 1 << 24, INT32_MAX };
static const int32_t bad_errs[] = { INT32_MIN, INT32_MIN + 1, -1, 0, 1, 4095, INT32_MAX };
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "hostile: FAIL a call blocked for 20 s (FIFO open or endless wait)\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	_exit(3);
}

static volatile sig_atomic_t handled;
static void on_sigint(int sig) { handled += sig == SIGINT; }

static void *send_sigint(void *arg)
{
	(void)arg;
	usleep(150 * 1000);
	kill(getpid(), SIGINT);
	return NULL;
}

/* A blocking wait in a process that handles SIGINT returns -EINTR, and the process's own handler
 * still runs (the library's wrapper chains to it); SIGHUP (no handler) keeps SIG_DFL. */
static void signal_cases(int32_t id)
{
	struct sigaction sa, cur;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	usleep(25 * 1000); /* past the 20 ms between handler scans */
	double before = shmkit_signal_count();
	pthread_t t;
	pthread_create(&t, NULL, send_sigint, NULL);
	EXPECT(shmkit_futex_wait(id, 0, 0, INFINITY), R == -EINTR);
	pthread_join(t, NULL);
	EXPECT(handled, R == 1);
	EXPECT(shmkit_signal_count(), R == before + 1);
	sigaction(SIGINT, NULL, &cur);
	EXPECT((cur.sa_flags & SA_SIGINFO) != 0, R == 1); /* the wrapper is in front */
	sigaction(SIGHUP, NULL, &cur);
	EXPECT(!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL, R == 1);
	signal(SIGINT, SIG_DFL);
}

static void fixed_cases(void)
{
	uint8_t buf[64];
	double st[8];
	int32_t ids[4];
	uint64_t io[2] = { 0, 0 };

	/* Constants. */
	EXPECT(shmkit_abi_version(), R == SHMKIT_ABI_VERSION);
	EXPECT(shmkit_nop(), R == 0);
	EXPECT(shmkit_page_size(), R >= 4096);
	EXPECT(shmkit_name_max(), R > 0);
	EXPECT(shmkit_getpid(), R == getpid());
	EXPECT(shmkit_geteuid(), R == geteuid());
	EXPECT(shmkit_signal_count(), R >= 0);
	EXPECT(shmkit_now_ns(), R > 0);

	/* Error names: INT32_MIN must not overflow on negation; NULL/short buffers. */
	for (size_t i = 0; i < N(bad_errs); i++) {
		EXPECT(shmkit_errno_name(bad_errs[i], buf, sizeof buf), R > 0 && R < 64);
		EXPECT(shmkit_errno_name(bad_errs[i], NULL, 0), R > 0);
		EXPECT(shmkit_errno_name(bad_errs[i], buf, 1), R == 0);
		EXPECT(shmkit_strerror(bad_errs[i], buf, sizeof buf), R >= 0 && R < 64);
		EXPECT(shmkit_strerror(bad_errs[i], NULL, 0), R > 0);
		EXPECT(shmkit_strerror(bad_errs[i], NULL, 100), R > 0);
	}
	EXPECT(shmkit_errno_value(NULL), R == -EINVAL);
	EXPECT(shmkit_errno_value((const uint8_t *)""), R == -ENOENT);
	EXPECT(shmkit_errno_value((const uint8_t *)"EINVAL"), R == EINVAL);
	EXPECT(shmkit_layout_offset(NULL), R == -EINVAL);
	EXPECT(shmkit_layout_offset((const uint8_t *)""), R == -ENOENT || R == -ENOSYS);

	/* Segment names. */
	char name[64], path[96];
	snprintf(name, sizeof name, "/shmkit-test-hostile-%d", (int)getpid());
	snprintf(path, sizeof path, "/dev/shm%s", name);
	const uint8_t *un = (const uint8_t *)name;
	EXPECT(shmkit_shm_create(NULL, 4096, 0600), R == -EINVAL);
	for (size_t i = 0; i < N(bad_sizes); i++)
		EXPECT(shmkit_shm_create(un, bad_sizes[i], 0600), R == -EINVAL);
	EXPECT(shmkit_shm_create(un, 4096, 0xffffffffu), R == -EINVAL);
	EXPECT(shmkit_shm_open(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_shm_open(un, 0xffffffffu), R == -EINVAL);
	EXPECT(shmkit_shm_open((const uint8_t *)"", 0), R < 0);
	EXPECT(shmkit_shm_unlink(NULL), R == -EINVAL);
	EXPECT(shmkit_memfd_create(NULL, 4096), R == -EINVAL);
	for (size_t i = 0; i < N(bad_sizes); i++)
		EXPECT(shmkit_memfd_create((const uint8_t *)"x", bad_sizes[i]), R == -EINVAL);

	/* A FIFO and a symlink squatting the name: refused at once, never blocking. */
	unlink(path);
	if (mkfifo(path, 0600) == 0) {
		EXPECT(shmkit_shm_open(un, SHMKIT_O_RDONLY), R == -ENODEV);
		EXPECT(shmkit_shm_open(un, 0), R == -ENODEV);
		EXPECT(shmkit_open((const uint8_t *)path, SHMKIT_O_RDONLY, 0), R == -ENODEV);
		EXPECT(shmkit_open((const uint8_t *)path, 0, 0), R == -ENODEV);
		unlink(path);
	}
	if (symlink("/etc/hostname", path) == 0) {
		EXPECT(shmkit_shm_open(un, SHMKIT_O_RDONLY), R == -ELOOP);
		unlink(path);
	}
	EXPECT(shmkit_open((const uint8_t *)"/tmp", SHMKIT_O_RDONLY, 0), R == -ENODEV || R == -EISDIR);

	/* Files. */
	EXPECT(shmkit_open(NULL, 0, 0), R == -EINVAL);
	EXPECT(shmkit_open((const uint8_t *)"/nonexistent/x", 0xffffffffu, 0), R == -EINVAL);
	EXPECT(shmkit_open((const uint8_t *)"/nonexistent/x", 0, 0xffffffffu), R == -EINVAL);
	EXPECT(shmkit_unlink(NULL), R == -EINVAL);
	EXPECT(shmkit_unlink((const uint8_t *)"/nonexistent/x"), R == -ENOENT);
	for (size_t i = 0; i < N(bad_fds); i++) {
		EXPECT(shmkit_close(bad_fds[i]), R == -EBADF);
		EXPECT(shmkit_ftruncate(bad_fds[i], 4096), R == -EBADF);
		EXPECT(shmkit_fallocate(bad_fds[i], 0, 4096), R == -EBADF);
		EXPECT(shmkit_fstat(bad_fds[i], st), R == -EBADF);
		EXPECT(shmkit_fchmod(bad_fds[i], 0600), R == -EBADF);
		if (bad_fds[i] != -1) /* -1 is anonymous memory */
			EXPECT(shmkit_mmap(bad_fds[i], 4096, 0, 0), R < 0);
		EXPECT(shmkit_open_proc_fd(getpid(), bad_fds[i], 0), R < 0);
		EXPECT(shmkit_open_proc_fd(bad_fds[i], 0, 0), R < 0);
	}
	int fd = shmkit_memfd_create((const uint8_t *)"hostile", 8192);
	EXPECT(fd, R >= 0);
	for (size_t i = 0; i < N(bad_sizes); i++) {
		EXPECT(shmkit_ftruncate(fd, bad_sizes[i]), R == -EINVAL);
		EXPECT(shmkit_fallocate(fd, bad_sizes[i], 1), R == -EINVAL);
		EXPECT(shmkit_fallocate(fd, 0, bad_sizes[i]), R == -EINVAL);
		EXPECT(shmkit_mmap(fd, bad_sizes[i], 0, SHMKIT_MAP_WRITE), R == -EINVAL);
		EXPECT(shmkit_mmap(fd, 4096, bad_sizes[i], SHMKIT_MAP_WRITE), R == -EINVAL);
	}
	EXPECT(shmkit_fallocate(fd, 9007199254740991.0, 9007199254740991.0), R == -EINVAL);
	EXPECT(shmkit_fstat(fd, NULL), R == -EINVAL);
	EXPECT(shmkit_stat(NULL, st), R == -EINVAL);
	EXPECT(shmkit_stat((const uint8_t *)"/tmp", NULL), R == -EINVAL);
	EXPECT(shmkit_fchmod(fd, 0xffffffffu), R == -EINVAL);
	EXPECT(shmkit_mmap(fd, 4096, 0, 0xffffffffu), R == -EINVAL);
	EXPECT(shmkit_mmap(fd, 4096, 100, 0), R == -EINVAL);
	EXPECT(shmkit_open_proc_fd(getpid(), fd, 0xffffffffu), R == -EINVAL);
	/* A handle naming a pipe of a live process: refused, never blocking. */
	int pipefd[2];
	if (pipe(pipefd) == 0) {
		EXPECT(shmkit_open_proc_fd(getpid(), pipefd[0], SHMKIT_O_RDONLY), R == -ENODEV);
		EXPECT(shmkit_open_proc_fd(getpid(), pipefd[1], 0), R == -ENODEV);
		close(pipefd[0]);
		close(pipefd[1]);
	}

	/* Mappings. */
	int32_t id = shmkit_mmap(fd, 8192, 0, SHMKIT_MAP_WRITE);
	EXPECT(id, R > 0);
	EXPECT(shmkit_close(fd), R == 0);
	for (size_t i = 0; i < N(bad_ids); i++) {
		int32_t b = bad_ids[i];
		EXPECT(shmkit_map_addr(b), R == -EBADF);
		EXPECT(shmkit_map_length(b), R == -EBADF);
		EXPECT(shmkit_munmap(b, 0), R == -EBADF);
		EXPECT(shmkit_mremap(b, 4096), R == -EBADF);
		EXPECT(shmkit_msync(b, 0, 8, 0), R == -EBADF);
		EXPECT(shmkit_madvise(b, 0, 8, SHMKIT_ADV_WILLNEED), R == -EBADF);
		EXPECT(shmkit_copy(b, 0, id, 0, 8), R == -EBADF);
		EXPECT(shmkit_copy(id, 0, b, 0, 8), R == -EBADF);
		EXPECT(shmkit_futex_wait(b, 0, 0, 1), R == -EBADF);
		EXPECT(shmkit_futex_wake(b, 0, 1), R == -EBADF);
		EXPECT(shmkit_waiter_add(b, 0, 0), R == -EBADF);
		EXPECT(shmkit_atomic_load_u32(b, 0, SHMKIT_SEQ_CST), R == -EBADF);
		EXPECT(shmkit_atomic_store_u32(b, 0, 1, SHMKIT_SEQ_CST), R == -EBADF);
		EXPECT(shmkit_atomic_exchange_u32(b, 0, 1, SHMKIT_SEQ_CST), R == -EBADF);
		EXPECT(shmkit_atomic_cas_u32(b, 0, 0, 1, SHMKIT_SEQ_CST), R == -EBADF);
		EXPECT(shmkit_atomic_fetch_add_u32(b, 0, 1, SHMKIT_SEQ_CST), R == -EBADF);
		EXPECT(shmkit_atomic_load_u64(b, 0, SHMKIT_SEQ_CST, io), R == -EBADF);
		EXPECT(shmkit_atomic_store_u64(b, 0, SHMKIT_SEQ_CST, io), R == -EBADF);
		EXPECT(shmkit_atomic_exchange_u64(b, 0, SHMKIT_SEQ_CST, io), R == -EBADF);
		EXPECT(shmkit_atomic_cas_u64(b, 0, SHMKIT_SEQ_CST, io), R == -EBADF);
		EXPECT(shmkit_atomic_fetch_add_u64(b, 0, SHMKIT_SEQ_CST, io), R == -EBADF);
	}
	/* A stale id (same slot, other generation). */
	int32_t stale = (int32_t)(((((uint32_t)id >> 16) % 32767u) + 1u) << 16 | ((uint32_t)id & 0xffffu));
	EXPECT(shmkit_map_length(stale), R == -EBADF);
	EXPECT(shmkit_munmap(id, 7), R == -EINVAL);
	for (size_t i = 0; i < N(bad_sizes); i++)
		EXPECT(shmkit_mremap(id, bad_sizes[i]), R == -EINVAL);
	EXPECT(shmkit_mremap(id, 0), R == -EINVAL);
	for (size_t i = 0; i < N(bad_offsets); i++) {
		double o = bad_offsets[i];
		EXPECT(shmkit_msync(id, o, 8, 0), R == -EINVAL);
		EXPECT(shmkit_msync(id, 0, o, 0), R == -EINVAL);
		EXPECT(shmkit_madvise(id, o, 8, SHMKIT_ADV_WILLNEED), R == -EINVAL);
		EXPECT(shmkit_madvise(id, 0, o, SHMKIT_ADV_WILLNEED), R == -EINVAL);
		EXPECT(shmkit_copy(id, o, id, 0, 8), R == -EINVAL);
		EXPECT(shmkit_copy(id, 0, id, o, 8), R == -EINVAL);
		EXPECT(shmkit_copy(id, 0, id, 0, o), R == -EINVAL);
		EXPECT(shmkit_futex_wait(id, o, 0, 0), R == -EINVAL);
		EXPECT(shmkit_futex_wake(id, o, 1), R == -EINVAL);
		EXPECT(shmkit_waiter_add(id, o, 0), R == -EINVAL);
		EXPECT(shmkit_atomic_load_u32(id, o, SHMKIT_SEQ_CST), R == -EINVAL);
		EXPECT(shmkit_atomic_store_u32(id, o, 1, SHMKIT_SEQ_CST), R == -EINVAL);
		EXPECT(shmkit_atomic_exchange_u32(id, o, 1, SHMKIT_SEQ_CST), R == -EINVAL);
		EXPECT(shmkit_atomic_cas_u32(id, o, 0, 1, SHMKIT_SEQ_CST), R == -EINVAL);
		EXPECT(shmkit_atomic_fetch_add_u32(id, o, 1, SHMKIT_SEQ_CST), R == -EINVAL);
		EXPECT(shmkit_atomic_load_u64(id, o, SHMKIT_SEQ_CST, io), R == -EINVAL);
		EXPECT(shmkit_atomic_store_u64(id, o, SHMKIT_SEQ_CST, io), R == -EINVAL);
		EXPECT(shmkit_atomic_exchange_u64(id, o, SHMKIT_SEQ_CST, io), R == -EINVAL);
		EXPECT(shmkit_atomic_cas_u64(id, o, SHMKIT_SEQ_CST, io), R == -EINVAL);
		EXPECT(shmkit_atomic_fetch_add_u64(id, o, SHMKIT_SEQ_CST, io), R == -EINVAL);
	}
	/* Misaligned and edge offsets. */
	EXPECT(shmkit_atomic_load_u32(id, 2, SHMKIT_SEQ_CST), R == -EINVAL);
	EXPECT(shmkit_atomic_load_u32(id, 8192, SHMKIT_SEQ_CST), R == -EINVAL);
	EXPECT(shmkit_atomic_load_u32(id, 8188, SHMKIT_SEQ_CST), R == 0);
	EXPECT(shmkit_atomic_load_u64(id, 4, SHMKIT_SEQ_CST, io), R == -EINVAL);
	EXPECT(shmkit_atomic_load_u64(id, 8184, SHMKIT_SEQ_CST, io), R == 0);
	EXPECT(shmkit_msync(id, 8192, 1, 0), R == -EINVAL);
	EXPECT(shmkit_msync(id, 0, 8, 2), R == -EINVAL);
	EXPECT(shmkit_madvise(id, 0, 8, INT32_MIN), R == -EINVAL);
	EXPECT(shmkit_madvise(id, 0, 8, 99), R == -EINVAL);
	EXPECT(shmkit_copy(id, 4096, id, 0, 4097), R == -EINVAL);
	/* NULL io: -EINVAL, not a SEGV. */
	EXPECT(shmkit_atomic_load_u64(id, 0, SHMKIT_SEQ_CST, NULL), R == -EINVAL);
	EXPECT(shmkit_atomic_store_u64(id, 0, SHMKIT_SEQ_CST, NULL), R == -EINVAL);
	EXPECT(shmkit_atomic_exchange_u64(id, 0, SHMKIT_SEQ_CST, NULL), R == -EINVAL);
	EXPECT(shmkit_atomic_cas_u64(id, 0, SHMKIT_SEQ_CST, NULL), R == -EINVAL);
	EXPECT(shmkit_atomic_fetch_add_u64(id, 0, SHMKIT_SEQ_CST, NULL), R == -EINVAL);
	/* Orders. */
	const int32_t bad_orders[] = { INT32_MIN, -1, 6, 99, INT32_MAX };
	for (size_t i = 0; i < N(bad_orders); i++) {
		EXPECT(shmkit_atomic_load_u32(id, 0, bad_orders[i]), R == -EINVAL);
		EXPECT(shmkit_atomic_fetch_add_u64(id, 0, bad_orders[i], io), R == -EINVAL);
	}
	/* Timeouts: NaN and negative are -EINVAL (they used to wait forever / spin). */
	const double bad_ms[] = { NAN, -1.0, -INFINITY, -1e-9 };
	for (size_t i = 0; i < N(bad_ms); i++) {
		EXPECT(shmkit_futex_wait(id, 0, 0, bad_ms[i]), R == -EINVAL);
		EXPECT(shmkit_waiter_next(ids, 4, bad_ms[i]), R == -EINVAL);
	}
	EXPECT(shmkit_futex_wait(id, 0, 12345, INFINITY), R == 1); /* the word is 0: no wait */
	EXPECT(shmkit_futex_wait(id, 0, 0, 1), R == -ETIMEDOUT);
	EXPECT(shmkit_futex_wait(id, 0, 0, 0), R == -ETIMEDOUT);
	EXPECT(shmkit_futex_wait(id, 0, 0, 120), R == -ETIMEDOUT); /* three slices */
	signal_cases(id);
	EXPECT(shmkit_futex_wake(id, 0, INT32_MIN), R >= 0);
	EXPECT(shmkit_futex_wake(id, 0, INT32_MAX), R >= 0);

	/* Waiter: the first next() with nothing done (NULL queue) must not memmove NULL. */
	EXPECT(shmkit_waiter_next(ids, 4, 0), R == 0);
	EXPECT(shmkit_waiter_next(NULL, 4, 0), R == -EINVAL);
	EXPECT(shmkit_waiter_next(ids, 0, 0), R == -EINVAL);
	EXPECT(shmkit_waiter_next(ids, INT32_MIN, 0), R == -EINVAL);
	EXPECT(shmkit_waiter_cancel(INT32_MIN), R == -ENOENT);
	EXPECT(shmkit_waiter_cancel(0), R == -ENOENT);
	int32_t tok = shmkit_waiter_add(id, 0, 0);
	EXPECT(tok, R > 0);
	EXPECT(shmkit_waiter_pending(), R >= 1);
	EXPECT(shmkit_atomic_store_u32(id, 0, 1, SHMKIT_SEQ_CST), R == 0);
	EXPECT(shmkit_futex_wake(id, 0, 0), R >= 0);
	int got = 0;
	for (int i = 0; i < 100 && !got; i++) {
		int n = shmkit_waiter_next(ids, 4, 50);
		for (int k = 0; k < n; k++)
			got |= ids[k] == tok;
	}
	EXPECT(got, R == 1);
	EXPECT(shmkit_waiter_add(id, 0, 7), R > 0);
	EXPECT(shmkit_waiter_interrupt(), R == 0);
	EXPECT(shmkit_waiter_next(ids, 4, INFINITY), R >= 0); /* interrupted or done: returns */

	/* Processes. */
	const int32_t pids[] = { INT32_MIN, -1, 0, INT32_MAX, 4194305 };
	for (size_t i = 0; i < N(pids); i++) {
		EXPECT(shmkit_proc_start_time(pids[i]), R < 0);
		EXPECT(shmkit_proc_alive(pids[i], -1), R == 0);
		EXPECT(shmkit_proc_alive(pids[i], NAN), R == 0);
	}
	EXPECT(shmkit_proc_alive(getpid(), NAN), R == 1); /* NaN: unknown start, like -1 */
	EXPECT(shmkit_proc_alive(getpid(), -1), R == 1);
	EXPECT(shmkit_proc_alive(getpid(), shmkit_proc_start_time(getpid())), R == 1);
	EXPECT(shmkit_shm_holders(NULL, ids, 4), R == -EINVAL);
	EXPECT(shmkit_shm_holders(un, NULL, 4), R == -EINVAL);
	EXPECT(shmkit_shm_holders(un, ids, -1), R == -EINVAL);
	EXPECT(shmkit_shm_holders(un, ids, 0), R >= 0);
	EXPECT(shmkit_shm_list(NULL, 10), R == -EINVAL);
	EXPECT(shmkit_shm_list(NULL, 0), R >= 0);
	EXPECT(shmkit_shm_list(buf, 1), R >= 0);
	EXPECT(shmkit_pin_cpu(INT32_MIN), R == -EINVAL);
	EXPECT(shmkit_pin_cpu(-1), R == -EINVAL);
	EXPECT(shmkit_pin_cpu(INT32_MAX), R == -EINVAL);
	EXPECT(shmkit_rusage(NULL), R == -EINVAL);
	double ru[4];
	EXPECT(shmkit_rusage(ru), R == 0);

	/* Teardown, then the id is stale. */
	EXPECT(shmkit_mremap(id, 4096), R == 0);
	EXPECT(shmkit_map_length(id), R == 4096);
	EXPECT(shmkit_munmap(id, SHMKIT_UNMAP_RELEASE), R == 0);
	EXPECT(shmkit_munmap(id, SHMKIT_UNMAP_RELEASE), R == -EBADF);
	EXPECT(shmkit_atomic_load_u32(id, 0, SHMKIT_SEQ_CST), R == -EBADF);
	int32_t anon = shmkit_mmap(-1, 4096, 0, SHMKIT_MAP_WRITE | SHMKIT_MAP_POPULATE);
	EXPECT(anon, R > 0);
	EXPECT(shmkit_madvise(anon, 0, 4096, SHMKIT_ADV_SEQUENTIAL), R == 0);
	EXPECT(shmkit_madvise(anon, 0, 4096, SHMKIT_ADV_RANDOM), R == 0);
	EXPECT(shmkit_madvise(anon, 0, 4096, SHMKIT_ADV_NORMAL), R == 0);
	EXPECT(shmkit_munmap(anon, SHMKIT_UNMAP_TOMBSTONE), R == 0);
	/* Create + open + unlink of a real segment with a hostile size afterwards. */
	int sfd = shmkit_shm_create(un, 4096, 0600);
	EXPECT(sfd, R >= 0);
	EXPECT(shmkit_shm_create(un, 4096, 0600), R == -EEXIST);
	int ofd = shmkit_shm_open(un, SHMKIT_O_RDONLY);
	EXPECT(ofd, R >= 0);
	EXPECT(shmkit_fstat(ofd, st), R == 0 && st[0] == 4096 && st[7] == 1);
	EXPECT(shmkit_stat((const uint8_t *)path, st), R == 0);
	EXPECT(shmkit_close(ofd), R == 0);
	EXPECT(shmkit_close(sfd), R == 0);
	EXPECT(shmkit_shm_unlink(un), R == 0);
	EXPECT(shmkit_shm_unlink(un), R == -ENOENT);
}

/* Random calls with arguments drawn from hostile pools (plus a few valid values). */
static uint64_t rng_state;
static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}
static double rdouble(void)
{
	static const double pool[] = { NAN, -1, 0, 1, 3, 4, 8, 4095, 4096, 4097, 8192, 1e300, INFINITY, -INFINITY, 0.5, 9007199254740992.0 };
	return pool[rnd() % N(pool)];
}
static int32_t rint32(int32_t valid)
{
	static const int32_t pool[] = { INT32_MIN, -1, 0, 1, 2, 5, 65535, 65536, INT32_MAX };
	return rnd() % 3 == 0 ? valid : pool[rnd() % N(pool)];
}

static void log_format(int32_t id, double off, uint32_t cap, uint32_t mode, uint32_t start);
static int heap_format(int32_t id, double off, uint32_t arena, uint32_t names, uint32_t slots,
		       struct shmkit_heap_local *l);
static uint64_t chan_format(int32_t id, double off, uint32_t slots, uint32_t slot_size, uint32_t mode, uint32_t procs);

static void random_cases(long iterations, uint64_t seed)
{
	rng_state = seed;
	int32_t live[8] = { 0 };
	uint64_t io[2];
	uint8_t buf[32];
	int32_t ids[8];
	for (long it = 0; it < iterations; it++) {
		int32_t *slot = &live[rnd() % 8];
		if (*slot <= 0) {
			*slot = shmkit_mmap(-1, 4096 * (1 + rnd() % 4), 0, SHMKIT_MAP_WRITE);
			continue;
		}
		int32_t id = rint32(*slot);
		double off = rnd() % 2 ? rdouble() : (double)(rnd() % 20000);
		int32_t order = (int32_t)(rnd() % 8) - 1;
		io[0] = rnd(), io[1] = rnd();
		switch (rnd() % 28) {
		case 0: shmkit_atomic_load_u32(id, off, order); break;
		case 1: shmkit_atomic_store_u32(id, off, rnd(), order); break;
		case 2: shmkit_atomic_exchange_u32(id, off, rnd(), order); break;
		case 3: shmkit_atomic_cas_u32(id, off, rnd() % 2, rnd(), order); break;
		case 4: shmkit_atomic_fetch_add_u32(id, off, rnd(), order); break;
		case 5: shmkit_atomic_load_u64(id, off, order, rnd() % 4 ? io : NULL); break;
		case 6: shmkit_atomic_store_u64(id, off, order, rnd() % 4 ? io : NULL); break;
		case 7: shmkit_atomic_exchange_u64(id, off, order, rnd() % 4 ? io : NULL); break;
		case 8: shmkit_atomic_cas_u64(id, off, order, rnd() % 4 ? io : NULL); break;
		case 9: shmkit_atomic_fetch_add_u64(id, off, order, rnd() % 4 ? io : NULL); break;
		case 10: {
			double t = rnd() % 2 ? rdouble() : 0;
			if (t > 2 && t == t) /* keep the soak fast: long valid timeouts only when the word differs */
				t = 1;
			shmkit_futex_wait(id, off, rnd(), t);
			break;
		}
		case 11: shmkit_futex_wake(id, off, rint32(1)); break;
		case 12: shmkit_msync(id, off, rdouble(), rnd() % 3); break;
		case 13: shmkit_madvise(id, off, rdouble(), (int32_t)(rnd() % 10) - 1); break;
		case 14: shmkit_copy(id, off, rint32(*slot), rdouble(), rdouble()); break;
		case 15: shmkit_map_addr(id); shmkit_map_length(id); break;
		case 16:
			if (shmkit_munmap(id, rnd() % 3) == 0 && id == *slot)
				*slot = 0;
			break;
		case 17: shmkit_mremap(id, rdouble()); break;
		case 18: {
			int32_t t = shmkit_waiter_add(id, off, rnd());
			if (t > 0 && rnd() % 2)
				shmkit_waiter_cancel(t);
			shmkit_waiter_next(ids, (int32_t)(rnd() % 9) - 1, rnd() % 2 ? 0 : rdouble() > 0 ? 0 : NAN);
			break;
		}
		case 19:
			shmkit_errno_name(rint32((int32_t)rnd()), rnd() % 2 ? buf : NULL, rnd() % 33);
			shmkit_strerror(rint32((int32_t)rnd()), rnd() % 2 ? buf : NULL, rnd() % 33);
			break;
		case 20: shmkit_proc_alive(rint32(getpid()), rdouble()); shmkit_proc_start_time(rint32(getpid())); break;
		case 22: {
			/* csrc/ops.c on random memory: a ring or pool formatted there (or not), random words
			 * scribbled over it, and locals whose fields are random. No crash, never a hang. */
			struct shmkit_ring_local rl;
			uint32_t vals[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out8[8];
			double o64 = (double)(64 * (rnd() % 8));
			if (rnd() % 2)
				shmkit_ring_format(id, o64, 1 + rnd() % 8, rnd() % 4, (uint32_t)rnd());
			if (shmkit_ring_attach(id, rnd() % 4 ? o64 : off, 1 + (uint32_t)rnd() % 1000, &rl) != 0) {
				for (size_t b = 0; b < sizeof rl; b++)
					((uint8_t *)&rl)[b] = (uint8_t)rnd();
			} else if (rnd() % 4 == 0) {
				((uint32_t *)&rl)[2 + rnd() % 16] = (uint32_t)rnd();
			}
			for (int k = 0; k < 4; k++)
				shmkit_atomic_store_u32(id, o64 + 4 * (double)(rnd() % 200), (uint32_t)rnd(), 5);
			shmkit_ring_enqueue(&rl, vals, (int32_t)(rnd() % 9), (uint32_t)(rnd() % 3));
			shmkit_ring_dequeue(&rl, out8, (int32_t)(rnd() % 9), (uint32_t)(rnd() % 3));
			shmkit_ring_enqueue1(&rl, (uint32_t)rnd());
			shmkit_ring_dequeue1(&rl);
			shmkit_ring_count(&rl);
			shmkit_ring_park(&rl, (uint32_t)(rnd() % 3), 0);
			shmkit_ring_release(&rl);
			break;
		}
		case 23: {
			struct shmkit_mempool_local ml;
			if (shmkit_mempool_attach(id, rnd() % 2 ? 0 : off, &ml) != 0) {
				for (size_t b = 0; b < sizeof ml; b++)
					((uint8_t *)&ml)[b] = (uint8_t)rnd();
			}
			shmkit_mempool_get(&ml);
			shmkit_mempool_put(&ml, (int32_t)(rnd() % 16) - 2);
			shmkit_mempool_reclaim(&ml);
			shmkit_mempool_available(&ml);
			shmkit_mempool_park(&ml, 0);
			shmkit_mempool_release(&ml);
			break;
		}
		case 24: {
			/* csrc/ops_sync.c on random memory: a mutex, semaphore or condition formatted there
			 * (or not), random words scribbled over it, random slot counts and slots. */
			double o64 = (double)(64 * (rnd() % 8));
			uint32_t n = rnd() % 4 ? 1 + (uint32_t)(rnd() % 8) : (uint32_t)rnd();
			if (rnd() % 2)
				shmkit_atomic_store_u32(id, o64 + 68, n, 5);
			for (int k = 0; k < 3; k++)
				shmkit_atomic_store_u32(id, o64 + 4 * (double)(rnd() % 64), (uint32_t)rnd(), 5);
			double o = rnd() % 4 ? o64 : off;
			uint32_t slot = rnd() % 4 ? 1 + (uint32_t)(rnd() % 8) : (uint32_t)rnd();
			int32_t k = shmkit_mutex_claim(id, o, n);
			if (k > 0)
				slot = (uint32_t)k;
			shmkit_mutex_check(id, o, n);
			shmkit_mutex_try(id, o, n, slot, (uint32_t)(rnd() % 9));
			shmkit_mutex_park(id, o, n, 0);
			shmkit_mutex_pass_wake(id, o, n, (uint32_t)rnd());
			shmkit_mutex_unlock(id, o, n, slot);
			shmkit_mutex_abandon(id, o, n, slot);
			shmkit_mutex_release_slot(id, o, n, slot);
			shmkit_sem_value(id, o);
			shmkit_sem_try(id, o);
			shmkit_sem_release(id, o, (uint32_t)rnd());
			shmkit_sem_park(id, o, 0);
			shmkit_sem_pass_wake(id, o);
			int64_t s = shmkit_cond_enter(id, o);
			shmkit_cond_park(id, o, (uint32_t)(rnd() % 2 ? s : (int64_t)rnd()), 0);
			shmkit_cond_leave(id, o);
			shmkit_cond_notify(id, o, rint32(1));
			break;
		}
		case 25: {
			/* csrc/ops_log.c on random memory: a log formatted there (or not), random words
			 * scribbled over its header and data, locals with random fields. No crash, no hang. */
			struct shmkit_log_local ll;
			uint32_t out4[4 * 4];
			static uint8_t payload[8192]; /* a random local's maxRecord is below 8192 (its mapping is 16 KiB at most) */
			double o64 = (double)(64 * (rnd() % 4));
			if (rnd() % 2)
				log_format(id, o64, 256, (uint32_t)(rnd() % 2), (uint32_t)rnd() & ~7u);
			if (shmkit_log_attach(id, rnd() % 4 ? o64 : off, 1 + (uint32_t)rnd() % 1000, &ll) != 0) {
				for (size_t b = 0; b < sizeof ll; b++)
					((uint8_t *)&ll)[b] = (uint8_t)rnd();
			} else if (rnd() % 4 == 0) {
				((uint32_t *)&ll)[2 + rnd() % 20] = (uint32_t)rnd();
			}
			for (int k = 0; k < 4; k++)
				shmkit_atomic_store_u32(id, o64 + 4 * (double)(rnd() % 600), (uint32_t)rnd(), 5);
			shmkit_log_write(&ll, payload, (uint32_t)(rnd() % 3 ? rnd() % 65 : rnd()), (uint32_t)(rnd() % 3 ? 1 : rnd()));
			shmkit_log_read(&ll, out4);
			shmkit_log_read_batch(&ll, out4, (int32_t)(rnd() % 5));
			shmkit_log_consume(&ll, (uint32_t)rnd());
			uint32_t lens4[4] = { (uint32_t)rnd() % 70, (uint32_t)rnd() % 70, (uint32_t)(rnd() % 3 ? rnd() % 70 : rnd()),
					      (uint32_t)rnd() % 70 };
			uint32_t nb = (uint32_t)(rnd() % 5);
			uint64_t sum = 0;
			for (uint32_t j = 0; j < nb; j++)
				sum += lens4[j];
			shmkit_log_write_batch(&ll, payload, rnd() % 4 ? sum : (uint64_t)rnd() % 100, rnd() % 8 ? lens4 : NULL, nb,
					       (uint32_t)(rnd() % 3 ? 1 : rnd()));
			if (shmkit_log_claim(&ll, (uint32_t)(rnd() % 3 ? rnd() % 65 : rnd()), 2, out4) == 1 && out4[0] > (1u << 30))
				failures++; /* a payload offset past any data area would be a bug */
			if (rnd() % 3 == 0)
				((uint32_t *)&ll)[sizeof ll / 4 - 1 - rnd() % 5] = (uint32_t)rnd(); /* the claim fields */
			shmkit_log_finish_claim(&ll, (uint32_t)(rnd() % 3 ? rnd() % 70 : rnd()), (uint32_t)(rnd() % 2));
			shmkit_log_size(&ll);
			shmkit_log_park(&ll, (uint32_t)(rnd() % 3), (uint32_t)(rnd() % 100), 0);
			shmkit_log_release(&ll);
			break;
		}
		case 26: {
			/* csrc/ops_heap.c on random memory: a heap formatted there (or not), random words
			 * scribbled over it, locals with random fields. No crash, no hang. */
			struct shmkit_heap_local hl;
			double st[10];
			double o64 = (double)(64 * (rnd() % 4));
			if (rnd() % 2 == 0 || heap_format(id, o64, 64u << (rnd() % 6), 1 + rnd() % 4, 1 + rnd() % 3, &hl) != 0) {
				for (size_t b = 0; b < sizeof hl; b++)
					((uint8_t *)&hl)[b] = (uint8_t)rnd();
				if (rnd() % 2) {
					hl.map_id = id;
					hl.offset = o64;
				}
			} else if (rnd() % 4 == 0) {
				((uint32_t *)&hl)[2 + rnd() % 16] = (uint32_t)rnd();
			}
			for (int k = 0; k < 4; k++)
				shmkit_atomic_store_u32(id, o64 + 4 * (double)(rnd() % 3000), (uint32_t)rnd(), 5);
			int64_t a = shmkit_heap_alloc(&hl, rnd() % 2 ? rdouble() : (double)(rnd() % 600), 16u << (rnd() % 3), rnd() % 3 ? 0 : rnd() % 16);
			shmkit_heap_free(&hl, a > 0 && rnd() % 2 ? (double)a : off, rnd() % 3 ? 0 : rnd() % 16);
			shmkit_heap_size_of(&hl, off, 0);
			shmkit_heap_name(&hl, rnd() % 7, (const uint8_t *)"abcdefgh", (uint32_t)(rnd() % 9), rdouble(), 16u << (rnd() % 3), rnd(), rnd() % 16);
			if (hl.holding && rnd() % 2)
				shmkit_heap_end(&hl, rnd() % 2);
			shmkit_heap_begin(&hl, rnd() % 3);
			shmkit_heap_stats(&hl, rnd() % 4 ? st : NULL, 0);
			shmkit_heap_release(&hl);
			break;
		}
		case 27: {
			/* csrc/ops_chan.c on random memory: a channel formatted there (or not), random words
			 * scribbled over its header, participants, ready ring and slot table, locals with
			 * random fields. No crash, no hang. */
			struct shmkit_chan_local cl;
			uint32_t outb[2 * 8];
			static uint8_t payload[4096];
			double o64 = (double)(64 * (rnd() % 4));
			uint64_t clen = 0;
			if (rnd() % 2)
				clen = chan_format(id, o64, 1 + (uint32_t)rnd() % 6, 1 + (uint32_t)rnd() % 100, (uint32_t)(rnd() % 3),
						   1 + (uint32_t)rnd() % 4);
			static uint8_t oscratch[6 * 6 + 8];
			if (shmkit_chan_attach(id, rnd() % 4 ? o64 : off, 1 + (uint32_t)rnd() % 1000, &cl) != 0) {
				for (size_t b = 0; b < sizeof cl; b++)
					((uint8_t *)&cl)[b] = (uint8_t)rnd();
			} else {
				int32_t need = shmkit_chan_scratch(&cl, NULL, 0); /* mode 2: its scratch (44 bytes at most) */
				if (need > 0 && need <= (int32_t)sizeof oscratch && rnd() % 8)
					shmkit_chan_scratch(&cl, oscratch, need);
				if (rnd() % 4 == 0)
					((uint32_t *)&cl)[2 + rnd() % 24] = (uint32_t)rnd();
				if (rnd() % 8 == 0) /* the mode 2 counters */
					((uint32_t *)&cl.o_roles)[rnd() % 10] = (uint32_t)rnd();
			}
			for (int k = 0; k < 6; k++)
				shmkit_atomic_store_u32(id, o64 + 4 * (double)(rnd() % (clen ? clen / 4 : 1200)), (uint32_t)rnd(), 5);
			shmkit_chan_send(&cl, payload, (uint32_t)(rnd() % 3 ? rnd() % 101 : rnd()));
			uint32_t lensb[8];
			for (int q = 0; q < 8; q++)
				lensb[q] = (uint32_t)(rnd() % 4 ? rnd() % 101 : rnd());
			shmkit_chan_send_batch(&cl, payload, (double)(rnd() % 4097), lensb, (int32_t)(rnd() % 10) - 1);
			int32_t ti = shmkit_chan_take(&cl);
			shmkit_chan_queue(&cl, rnd() % 2 ? ti : rint32(8), (uint32_t)(rnd() % 120));
			shmkit_chan_unloan(&cl, rint32(8));
			int64_t rv = shmkit_chan_recv(&cl);
			shmkit_chan_release(&cl, rnd() % 2 && rv >= 0 ? (int32_t)(rv & 0xffffff) : rint32(8));
			int32_t k = shmkit_chan_recv_batch(&cl, outb, (int32_t)(rnd() % 9));
			shmkit_chan_release_batch(&cl, outb, rnd() % 2 && k > 0 ? k : (int32_t)(rnd() % 9));
			shmkit_chan_reclaim(&cl);
			shmkit_chan_size(&cl);
			shmkit_chan_available(&cl);
			shmkit_chan_park(&cl, (uint32_t)(rnd() % 3), 0);
			shmkit_chan_close(&cl);
			break;
		}
		case 21: {
			/* Never a real descriptor of this process (0..2 are the test's stdio). */
			static const int32_t fds[] = { INT32_MIN, -1, 1 << 24, INT32_MAX };
			shmkit_fallocate(fds[rnd() % 4], rdouble(), rdouble());
			shmkit_ftruncate(fds[rnd() % 4], rdouble());
			break;
		}
		}
	}
	for (int i = 0; i < 8; i++)
		if (live[i] > 0)
			shmkit_munmap(live[i], 0);
	shmkit_waiter_interrupt();
	shmkit_waiter_next(ids, 8, 0);
	checks += (int)(iterations > 0);
}

/* csrc/ops.c: hostile local structs, stale mappings and garbage shared state. */
static void ops_cases(void)
{
	struct shmkit_ring_local rl;
	struct shmkit_mempool_local ml;
	uint32_t v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8];
	EXPECT(shmkit_ops_local_size(0), R == -EINVAL);
	EXPECT(shmkit_ops_local_size(1), R == (double)sizeof rl);
	EXPECT(shmkit_ops_local_size(2), R == (double)sizeof ml);
	EXPECT(shmkit_ops_fault(NULL), R == -EINVAL);
	EXPECT(shmkit_ops_fault((const uint8_t *)"no-colon"), R == -EINVAL);
	EXPECT(shmkit_ops_fault((const uint8_t *)"ring.x:-1"), R == -EINVAL);
	EXPECT(shmkit_ops_fault((const uint8_t *)"ring.x:1z"), R == -EINVAL);
	EXPECT(shmkit_ops_fault((const uint8_t *)"none.point:0"), R == 0); /* 0: disarmed */

	/* NULL and zeroed locals. */
	EXPECT(shmkit_ring_enqueue(NULL, v, 1, 0), R == -EINVAL);
	EXPECT(shmkit_ring_dequeue(NULL, out, 1, 0), R == -EINVAL);
	EXPECT(shmkit_ring_park(NULL, 0, 0), R == -EINVAL);
	EXPECT(shmkit_ring_count(NULL), R == -EINVAL);
	EXPECT(shmkit_ring_enqueue1(NULL, 1), R == -EINVAL);
	EXPECT(shmkit_ring_dequeue1(NULL), R == -EINVAL);
	EXPECT(shmkit_ring_release(NULL), R == -EINVAL);
	EXPECT(shmkit_ring_attach(1, 0, 1, NULL), R == -EINVAL);
	EXPECT(shmkit_mempool_get(NULL), R == -EINVAL);
	EXPECT(shmkit_mempool_put(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_mempool_reclaim(NULL), R == -EINVAL);
	EXPECT(shmkit_mempool_park(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_mempool_available(NULL), R == -EINVAL);
	EXPECT(shmkit_mempool_release(NULL), R == -EINVAL);
	EXPECT(shmkit_mempool_attach(1, 0, NULL), R == -EINVAL);
	memset(&rl, 0, sizeof rl);
	memset(&ml, 0, sizeof ml);
	EXPECT(shmkit_ring_enqueue(&rl, v, 1, 0), R == -EINVAL);
	EXPECT(shmkit_mempool_get(&ml), R == -EINVAL);

	const double len = 1 << 20;
	int32_t id = shmkit_mmap(-1, len, 0, SHMKIT_MAP_WRITE);
	EXPECT(id, R > 0);
	uint8_t *base = (uint8_t *)(uintptr_t)shmkit_map_addr(id);
	for (size_t i = 0; i < N(bad_ids); i++)
		EXPECT(shmkit_ring_attach(bad_ids[i], 0, 1, &rl), R == -EBADF);
	for (size_t i = 0; i < N(bad_offsets); i++) {
		EXPECT(shmkit_ring_attach(id, bad_offsets[i], 1, &rl), R == -EINVAL);
		EXPECT(shmkit_mempool_attach(id, bad_offsets[i], &ml), R == -EINVAL);
		EXPECT(shmkit_ring_format(id, bad_offsets[i], 4, 3, 0), R == -EINVAL);
	}
	EXPECT(shmkit_ring_format(id, 0, 0, 3, 0), R == -EINVAL);
	EXPECT(shmkit_ring_format(id, 0, (1u << 28) + 1, 3, 0), R == -EINVAL);
	EXPECT(shmkit_ring_format(id, 0, 4, 4, 0), R == -EINVAL);
	EXPECT(shmkit_ring_format(id, 0, 1u << 20, 3, 0), R == -EINVAL); /* does not fit */
	EXPECT(shmkit_ring_attach(id, 0, 0, &rl), R == -EINVAL);            /* token 0 */
	EXPECT(shmkit_ring_attach(id, 0, 1, &rl), R == -SHMKIT_EBADHDR);    /* zeros: no ring */
	EXPECT(shmkit_mempool_attach(id, 0, &ml), R == -SHMKIT_EBADHDR);

	/* A good ring, then hostile locals over it. */
	for (uint32_t mode = 0; mode < 4; mode++) {
		memset(base, 0, 4096);
		uint32_t hs = 384;
		uint64_t bl = 384 + 8 * 8;
		memcpy(base + 12, &hs, 4);
		memcpy(base + 16, &bl, 8);
		EXPECT(shmkit_ring_format(id, 0, 5, mode, 0xfffffffe), R == 8);
		EXPECT(shmkit_ring_attach(id, 0, 7, &rl), R == 0);
		EXPECT(shmkit_ring_enqueue(&rl, NULL, 1, 0), R == -EINVAL);
		EXPECT(shmkit_ring_enqueue(&rl, v, 2, 0), R == -EINVAL);
		EXPECT(shmkit_ring_enqueue(&rl, v, -1, SHMKIT_BURST), R == -EINVAL);
		EXPECT(shmkit_ring_enqueue(&rl, v, 1, 3), R == -EINVAL);
		EXPECT(shmkit_ring_dequeue(&rl, NULL, 1, 0), R == -EINVAL);
		EXPECT(shmkit_ring_park(&rl, 2, 0), R == -EINVAL);
		EXPECT(shmkit_ring_park(&rl, 0, NAN), R == -EINVAL);
		EXPECT(shmkit_ring_park(&rl, 0, -1), R == -EINVAL);
		EXPECT(shmkit_ring_enqueue(&rl, v, 8, SHMKIT_BULK), R == 0); /* more than capacity */
		EXPECT(shmkit_ring_enqueue(&rl, v, 8, SHMKIT_BURST), R == 5);
		EXPECT(shmkit_ring_park(&rl, 0, 0), R == -ETIMEDOUT);        /* full: no room */
		EXPECT(shmkit_ring_park(&rl, 1, 0), R == 1);                 /* items are there */
		EXPECT(shmkit_ring_count(&rl), R == 5);
		EXPECT(shmkit_ring_enqueue1(&rl, 9), R == 0); /* full */
		EXPECT(shmkit_ring_dequeue1(&rl), R == 1);
		EXPECT(shmkit_ring_enqueue1(&rl, 0xffffffffu), R == 1);
		EXPECT(shmkit_ring_dequeue(&rl, out, 8, SHMKIT_BULK), R == 0);
		EXPECT(shmkit_ring_dequeue(&rl, out, 8, SHMKIT_BURST), R == 5 && out[0] == 2 && out[4] == 0xffffffffu);
		EXPECT(shmkit_ring_dequeue1(&rl), R == -EAGAIN);
		/* Garbage in every slot and counter: EBADHDR or a bounded result, never a crash. */
		for (int round = 0; round < 64; round++) {
			for (uint32_t i = 128; i < 384 + 64; i += 4) {
				uint32_t g = (uint32_t)rand() * 2654435761u;
				if (i == 320 || i == 336 || i == 352)
					g = 0; /* roles and bulk lock: kept sane so the loop does not EBUSY */
				memcpy(base + i, &g, 4);
			}
			int32_t r = shmkit_ring_enqueue(&rl, v, 1 + round % 8, round % 2 ? SHMKIT_BURST : SHMKIT_BULK);
			EXPECT(r, (R >= 0 && R <= 8) || R == -SHMKIT_EBADHDR || R == -EBUSY);
			r = shmkit_ring_dequeue(&rl, out, 1 + round % 8, round % 2 ? SHMKIT_BURST : SHMKIT_BULK);
			EXPECT(r, (R >= 0 && R <= 8) || R == -SHMKIT_EBADHDR || R == -EBUSY);
			EXPECT(shmkit_ring_count(&rl), R >= 0 && R <= 5);
		}
		EXPECT(shmkit_ring_release(&rl), R == 0);
		struct shmkit_ring_local bad = rl;
		bad.slots = 12; /* not a power of two */
		EXPECT(shmkit_ring_enqueue(&bad, v, 1, 0), R == -EINVAL);
		bad = rl;
		bad.slots = 1u << 28; /* larger than the mapping */
		bad.capacity = 1;
		EXPECT(shmkit_ring_dequeue(&bad, out, 1, 0), R == -EINVAL);
		bad = rl;
		bad.capacity = 9;
		EXPECT(shmkit_ring_enqueue(&bad, v, 1, 0), R == -EINVAL);
		bad = rl;
		bad.mode = 4;
		EXPECT(shmkit_ring_count(&bad), R == -EINVAL);
		bad = rl;
		bad.offset = len;
		EXPECT(shmkit_ring_park(&bad, 1, 0), R == -EINVAL);
		bad = rl;
		bad.offset = NAN;
		EXPECT(shmkit_ring_enqueue(&bad, v, 1, 0), R == -EINVAL);
		bad = rl;
		bad.map_id = 0x7fff0001;
		EXPECT(shmkit_ring_enqueue(&bad, v, 1, 0), R == -EBADF);
	}

	/* A mempool of 8 blocks of 100 bytes, 4 participant slots. */
	memset(base, 0, 8192);
	uint32_t hs = 192, cnt = 8, bs = 100, stride = 128, procs = 4;
	uint64_t so = 192, st = 256, data = 320, bl = 320 + 128 * 8;
	memcpy(base + 12, &hs, 4);
	memcpy(base + 16, &bl, 8);
	memcpy(base + 64, &cnt, 4);
	memcpy(base + 68, &bs, 4);
	memcpy(base + 72, &stride, 4);
	memcpy(base + 76, &procs, 4);
	memcpy(base + 80, &so, 8);
	memcpy(base + 88, &st, 8);
	memcpy(base + 96, &data, 8);
	EXPECT(shmkit_mempool_attach(id, 0, &ml), R == 0);
	EXPECT(shmkit_mempool_park(&ml, 0), R == -EINVAL); /* no slot yet */
	EXPECT(shmkit_mempool_put(&ml, -1), R == -EINVAL);
	EXPECT(shmkit_mempool_put(&ml, 8), R == -EINVAL);
	EXPECT(shmkit_mempool_put(&ml, 0), R == -EINVAL); /* already free */
	for (int i = 0; i < 8; i++)
		EXPECT(shmkit_mempool_get(&ml), R >= 0 && R < 8);
	EXPECT(shmkit_mempool_get(&ml), R == -EAGAIN);
	EXPECT(shmkit_mempool_park(&ml, NAN), R == -EINVAL);
	EXPECT(shmkit_mempool_park(&ml, 0), R == -ETIMEDOUT);
	EXPECT(shmkit_mempool_available(&ml), R == 0);
	EXPECT(shmkit_mempool_put(&ml, 3), R == 0);
	EXPECT(shmkit_mempool_available(&ml), R == 1);
	uint32_t corrupt = 0x12345678;
	memcpy(base + 256 + 4 * 5, &corrupt, 4);
	EXPECT(shmkit_mempool_put(&ml, 5), R == -SHMKIT_EBADHDR);
	EXPECT(shmkit_mempool_reclaim(&ml), R == 1); /* frees the malformed word */
	for (int round = 0; round < 64; round++) {
		for (uint32_t i = 128; i < 320; i += 4) {
			uint32_t g = (uint32_t)rand() * 2654435761u;
			memcpy(base + i, &g, 4);
		}
		EXPECT(shmkit_mempool_get(&ml), (R >= 0 && R < 8) || R == -EAGAIN || R == -EBUSY);
		EXPECT(shmkit_mempool_put(&ml, round % 8), R == 0 || R == -EINVAL || R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_mempool_reclaim(&ml), R >= 0 && R <= 8);
		EXPECT(shmkit_mempool_available(&ml), R >= 0 && R <= 8);
	}
	EXPECT(shmkit_mempool_release(&ml), R == 0);
	struct shmkit_mempool_local mb = ml;
	mb.count = 0;
	EXPECT(shmkit_mempool_get(&mb), R == -EINVAL);
	mb = ml;
	mb.stride = 64;
	EXPECT(shmkit_mempool_get(&mb), R == -EINVAL);
	mb = ml;
	mb.slot = 4;
	EXPECT(shmkit_mempool_get(&mb), R == -EINVAL);
	mb = ml;
	mb.cursor = 8;
	EXPECT(shmkit_mempool_put(&mb, 0), R == -EINVAL);
	mb = ml;
	mb.count = 1u << 28; /* larger than the mapping */
	EXPECT(shmkit_mempool_available(&mb), R == -EINVAL);
	shmkit_munmap(id, 0);
	EXPECT(shmkit_ring_enqueue(&rl, v, 1, 0), R == -EBADF);
	EXPECT(shmkit_mempool_get(&ml), R == -EBADF);
}

/* csrc/ops_sync.c: bad ids, offsets, slot counts, slots and slices; corrupt lock words and counts;
 * a slot count changed under the caller; a stale mapping. */
static void sync_cases(void)
{
	for (size_t i = 0; i < N(bad_ids); i++) {
		EXPECT(shmkit_mutex_claim(bad_ids[i], 0, 4), R == -EBADF);
		EXPECT(shmkit_mutex_try(bad_ids[i], 0, 4, 1, 7), R == -EBADF);
		EXPECT(shmkit_mutex_park(bad_ids[i], 0, 4, 0), R == -EBADF);
		EXPECT(shmkit_sem_try(bad_ids[i], 0), R == -EBADF);
		EXPECT(shmkit_sem_park(bad_ids[i], 0, 0), R == -EBADF);
		EXPECT(shmkit_cond_enter(bad_ids[i], 0), R == -EBADF);
		EXPECT(shmkit_cond_notify(bad_ids[i], 0, 1), R == -EBADF);
	}
	const double len = 1 << 16;
	int32_t id = shmkit_mmap(-1, len, 0, SHMKIT_MAP_WRITE);
	EXPECT(id, R > 0);
	uint8_t *base = (uint8_t *)(uintptr_t)shmkit_map_addr(id);
	uint32_t *w = (uint32_t *)(void *)base;
	for (size_t i = 0; i < N(bad_offsets); i++) {
		EXPECT(shmkit_mutex_check(id, bad_offsets[i], 4), R == -EINVAL);
		EXPECT(shmkit_mutex_claim(id, bad_offsets[i], 4), R == -EINVAL);
		EXPECT(shmkit_mutex_try(id, bad_offsets[i], 4, 1, 0), R == -EINVAL);
		EXPECT(shmkit_mutex_park(id, bad_offsets[i], 4, 0), R == -EINVAL);
		EXPECT(shmkit_mutex_pass_wake(id, bad_offsets[i], 4, 0), R == -EINVAL);
		EXPECT(shmkit_mutex_unlock(id, bad_offsets[i], 4, 1), R == -EINVAL);
		EXPECT(shmkit_mutex_abandon(id, bad_offsets[i], 4, 1), R == -EINVAL);
		EXPECT(shmkit_mutex_release_slot(id, bad_offsets[i], 4, 1), R == -EINVAL);
		EXPECT(shmkit_sem_value(id, bad_offsets[i]), R == -EINVAL);
		EXPECT(shmkit_sem_try(id, bad_offsets[i]), R == -EINVAL);
		EXPECT(shmkit_sem_release(id, bad_offsets[i], 1), R == -EINVAL);
		EXPECT(shmkit_sem_park(id, bad_offsets[i], 0), R == -EINVAL);
		EXPECT(shmkit_sem_pass_wake(id, bad_offsets[i]), R == -EINVAL);
		EXPECT(shmkit_cond_enter(id, bad_offsets[i]), R == -EINVAL);
		EXPECT(shmkit_cond_park(id, bad_offsets[i], 0, 0), R == -EINVAL);
		EXPECT(shmkit_cond_leave(id, bad_offsets[i]), R == -EINVAL);
		EXPECT(shmkit_cond_notify(id, bad_offsets[i], 1), R == -EINVAL);
	}
	/* Slot counts: 0, too many, more than the mapping holds; a range ending past the mapping. */
	EXPECT(shmkit_mutex_claim(id, 0, 0), R == -EINVAL);
	EXPECT(shmkit_mutex_claim(id, 0, 65536), R == -EINVAL);
	EXPECT(shmkit_mutex_claim(id, 0, UINT32_MAX), R == -EINVAL);
	EXPECT(shmkit_mutex_claim(id, len - 128, 4), R == -EINVAL);
	EXPECT(shmkit_sem_value(id, len - 64), R == -EINVAL);
	/* Zeroed memory: slotCount 0 is not the 4 the caller read. */
	EXPECT(shmkit_mutex_claim(id, 0, 4), R == -SHMKIT_EBADHDR);
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 7), R == -SHMKIT_EBADHDR);
	w[68 / 4] = 4;
	EXPECT(shmkit_mutex_check(id, 0, 4), R == 0);
	EXPECT(shmkit_mutex_try(id, 0, 4, 0, 0), R == -EINVAL); /* slot 0 */
	EXPECT(shmkit_mutex_try(id, 0, 4, 5, 0), R == -EINVAL); /* slot > n */
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 8), R == -EINVAL); /* unknown flag */
	EXPECT(shmkit_mutex_unlock(id, 0, 4, 0), R == -EINVAL);
	EXPECT(shmkit_mutex_release_slot(id, 0, 4, 9), R == -EINVAL);
	EXPECT(shmkit_mutex_park(id, 0, 4, NAN), R == -EINVAL);
	EXPECT(shmkit_mutex_park(id, 0, 4, -1), R == -EINVAL);
	int32_t slot = shmkit_mutex_claim(id, 0, 4);
	EXPECT(slot, R == 1);
	EXPECT(shmkit_mutex_unlock(id, 0, 4, 1), R == -EPERM); /* not held */
	EXPECT(shmkit_mutex_park(id, 0, 4, 0), R == 2);        /* free: retry */
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 4), R == 0);
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 1), R == 3); /* held by this process */
	EXPECT(shmkit_mutex_park(id, 0, 4, 0), R == 1);   /* a slice without a wake */
	EXPECT(w[64 / 4], R == (double)(1u | 0x80000000u));
	EXPECT(shmkit_mutex_pass_wake(id, 0, 4, 0), R == 0);
	EXPECT(shmkit_mutex_unlock(id, 0, 4, 1), R == 0);
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 4), R == 0);
	EXPECT(shmkit_mutex_abandon(id, 0, 4, 1), R == 0);
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 1), R == 1); /* recovered from ABANDONED */
	EXPECT(w[72 / 4], R == 1);
	EXPECT(shmkit_mutex_unlock(id, 0, 4, 1), R == 0);
	/* A dead identity in slot 2 holding the lock: taken over; then corrupt words. */
	((uint64_t *)(void *)(base + 128))[1] = ((uint64_t)1 << 22) | 0x3ffffe; /* pid 4194302, surely not running */
	w[64 / 4] = 2;
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 0), R == 2); /* no liveness check requested */
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 1), R == 1);
	EXPECT(shmkit_mutex_unlock(id, 0, 4, 1), R == 0);
	static const uint32_t corrupt[] = { 5, 0x10001, 0x20000, 0x40000000, 0xffffffff };
	for (size_t i = 0; i < N(corrupt); i++) {
		w[64 / 4] = corrupt[i];
		EXPECT(shmkit_mutex_check(id, 0, 4), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_mutex_claim(id, 0, 4), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_mutex_try(id, 0, 4, 1, 7), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_mutex_park(id, 0, 4, 0), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_mutex_unlock(id, 0, 4, 1), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_mutex_abandon(id, 0, 4, 1), R == -SHMKIT_EBADHDR);
	}
	w[64 / 4] = 0;
	EXPECT(shmkit_mutex_release_slot(id, 0, 4, 1), R == 0);
	EXPECT(((uint64_t *)(void *)(base + 128))[0], R == 0);
	w[68 / 4] = 8; /* the slot count changed under the caller */
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 7), R == -SHMKIT_EBADHDR);

	/* Semaphore at 4096. */
	uint32_t *sw = (uint32_t *)(void *)(base + 4096);
	EXPECT(shmkit_sem_value(id, 4096), R == 0);
	EXPECT(shmkit_sem_try(id, 4096), R == 0);
	EXPECT(shmkit_sem_park(id, 4096, NAN), R == -EINVAL);
	EXPECT(shmkit_sem_park(id, 4096, 0), R == -ETIMEDOUT);
	EXPECT(sw[68 / 4], R == 0); /* waiters given back */
	EXPECT(shmkit_sem_release(id, 4096, 0), R == -EINVAL);
	EXPECT(shmkit_sem_release(id, 4096, 0x80000000u), R == -EINVAL);
	EXPECT(shmkit_sem_release(id, 4096, 2), R == 0);
	EXPECT(shmkit_sem_park(id, 4096, 0), R == 0); /* units there: no sleep */
	EXPECT(shmkit_sem_try(id, 4096), R == 1);
	EXPECT(shmkit_sem_value(id, 4096), R == 1);
	EXPECT(shmkit_sem_release(id, 4096, 0x7fffffff), R == -EOVERFLOW);
	EXPECT(shmkit_sem_pass_wake(id, 4096), R == 0);
	sw[64 / 4] = 0x80000000u;
	EXPECT(shmkit_sem_value(id, 4096), R == -SHMKIT_EBADHDR);
	EXPECT(shmkit_sem_try(id, 4096), R == -SHMKIT_EBADHDR);
	EXPECT(shmkit_sem_release(id, 4096, 1), R == -SHMKIT_EBADHDR);
	EXPECT(shmkit_sem_park(id, 4096, 0), R == -SHMKIT_EBADHDR);

	/* Condition at 8192. */
	uint32_t *cw = (uint32_t *)(void *)(base + 8192);
	cw[64 / 4] = 0xffffffffu;
	EXPECT(shmkit_cond_enter(id, 8192), R == (double)0xffffffffu);
	EXPECT(shmkit_cond_park(id, 8192, 0xffffffffu, NAN), R == -EINVAL);
	EXPECT(shmkit_cond_park(id, 8192, 0xffffffffu, 0), R == 0); /* the slice passed */
	EXPECT(shmkit_cond_park(id, 8192, 7, 0), R == 1);           /* seq moved */
	EXPECT(shmkit_cond_notify(id, 8192, 0), R == -EINVAL);
	EXPECT(shmkit_cond_notify(id, 8192, INT32_MIN), R == -EINVAL);
	EXPECT(shmkit_cond_notify(id, 8192, INT32_MAX), R == 0);
	EXPECT(cw[64 / 4], R == 0); /* wrapped */
	EXPECT(shmkit_cond_leave(id, 8192), R == 0);
	EXPECT(cw[68 / 4], R == 0);

	shmkit_munmap(id, 0);
	EXPECT(shmkit_mutex_try(id, 0, 4, 1, 7), R == -EBADF);
	EXPECT(shmkit_sem_release(id, 4096, 1), R == -EBADF);
	EXPECT(shmkit_cond_notify(id, 8192, 1), R == -EBADF);
}

/* Formats a log at off of mapping id (as src/log.ts init: header, zeroed fields, counters at start). */
static void log_format(int32_t id, double off, uint32_t cap, uint32_t mode, uint32_t start)
{
	double L = shmkit_map_length(id);
	uint32_t doff = 384 + (mode ? 32 * 32 : 0);
	if (L < 0 || !(off >= 0) || off + doff + cap > L)
		return;
	uint8_t *b = (uint8_t *)(uintptr_t)shmkit_map_addr(id) + (uint64_t)off;
	memset(b, 0, doff + cap);
	uint32_t *w = (uint32_t *)(void *)b;
	w[12 / 4] = doff;
	w[64 / 4] = cap;
	w[68 / 4] = mode;
	w[72 / 4] = cap / 2 - 8;
	w[76 / 4] = doff;
	w[80 / 4] = mode ? 32 : 0;
	w[128 / 4] = w[192 / 4] = w[196 / 4] = start;
}

/* csrc/ops_log.c: hostile locals, bad ids and offsets, corrupt headers, records and counters, a
 * stale mapping. */
static void log_cases(void)
{
	struct shmkit_log_local l;
	uint32_t out[4 * 8];
	uint8_t data[600];
	memset(data, 7, sizeof data);
	EXPECT(shmkit_log_local_size(), R == (double)sizeof l);
	EXPECT(shmkit_log_fault(NULL), R == -EINVAL);
	EXPECT(shmkit_log_fault((const uint8_t *)"log.x"), R == -EINVAL);
	EXPECT(shmkit_log_fault((const uint8_t *)"log.x:-3"), R == -EINVAL);
	EXPECT(shmkit_log_fault((const uint8_t *)"none.point:0"), R == 0);
	EXPECT(shmkit_log_write(NULL, data, 1, 0), R == -EINVAL);
	EXPECT(shmkit_log_read(NULL, out), R == -EINVAL);
	EXPECT(shmkit_log_read_batch(NULL, out, 1), R == -EINVAL);
	EXPECT(shmkit_log_consume(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_log_park(NULL, 1, 0, 0), R == -EINVAL);
	EXPECT(shmkit_log_size(NULL), R == -EINVAL);
	EXPECT(shmkit_log_release(NULL), R == -EINVAL);
	uint32_t lens[4] = { 1, 2, 3, 4 };
	EXPECT(shmkit_log_write_batch(NULL, data, sizeof data, lens, 4, 0), R == -EINVAL);
	EXPECT(shmkit_log_claim(NULL, 1, 0, out), R == -EINVAL);
	EXPECT(shmkit_log_finish_claim(NULL, 0, 0), R == -EINVAL);
	memset(&l, 0, sizeof l);
	EXPECT(shmkit_log_write_batch(&l, data, sizeof data, lens, 4, 0), R == -EINVAL);
	EXPECT(shmkit_log_claim(&l, 1, 0, out), R == -EINVAL);
	EXPECT(shmkit_log_finish_claim(&l, 0, 0), R == -EINVAL);
	EXPECT(shmkit_log_write(&l, data, 1, 0), R == -EINVAL);
	EXPECT(shmkit_log_read(&l, out), R == -EINVAL);
	for (size_t i = 0; i < N(bad_ids); i++)
		EXPECT(shmkit_log_attach(bad_ids[i], 0, 1, &l), R == -EBADF);
	const double len = 1 << 16;
	int32_t id = shmkit_mmap(-1, len, 0, SHMKIT_MAP_WRITE);
	EXPECT(id, R > 0);
	uint8_t *base = (uint8_t *)(uintptr_t)shmkit_map_addr(id);
	for (size_t i = 0; i < N(bad_offsets); i++)
		EXPECT(shmkit_log_attach(id, bad_offsets[i], 1, &l), R == -EINVAL);
	EXPECT(shmkit_log_attach(id, 0, 0, &l), R == -EINVAL); /* token 0 */
	EXPECT(shmkit_log_attach(id, 0, 1, NULL), R == -EINVAL);
	EXPECT(shmkit_log_attach(id, 0, 1, &l), R == -SHMKIT_EBADHDR); /* zeroed memory: capacity 0 */
	EXPECT(shmkit_log_attach(id, len - 256, 1, &l), R == -EINVAL); /* header past the mapping */
	/* Header fields: each corrupt one is EBADHDR. */
	static const struct { uint32_t off, val; } bad_fields[] = {
		{ 64, 255 }, { 64, 1000 }, { 64, 1u << 31 }, { 68, 2 }, { 72, 1024 / 2 - 7 }, { 76, 384 }, { 80, 31 },
	};
	for (size_t i = 0; i < N(bad_fields); i++) {
		log_format(id, 0, 1024, 1, 0);
		*(uint32_t *)(void *)(base + bad_fields[i].off) = bad_fields[i].val;
		EXPECT(shmkit_log_attach(id, 0, 1, &l), R == -SHMKIT_EBADHDR);
	}
	log_format(id, len - 2048, 1024, 0, 0);
	*(uint32_t *)(void *)(base + (uint64_t)len - 2048 + 64) = 1u << 20;
	EXPECT(shmkit_log_attach(id, len - 2048, 1, &l), R == -SHMKIT_EBADHDR); /* claims more than is mapped */

	for (uint32_t mode = 0; mode < 2; mode++) {
		uint32_t doff = 384 + (mode ? 1024 : 0);
		uint32_t *w = (uint32_t *)(void *)base;
		uint32_t *d = (uint32_t *)(void *)(base + doff);
		log_format(id, 0, 1024, mode, 0);
		EXPECT(shmkit_log_attach(id, 0, 1, &l), R == 0);
		EXPECT(shmkit_log_write(&l, data, 505, 0), R == -EINVAL); /* > maxRecord */
		EXPECT(shmkit_log_write(&l, data, 5, 65536), R == -EINVAL);
		EXPECT(shmkit_log_write(&l, NULL, 5, 0), R == -EINVAL);
		/* Batches and claims: bad arguments are -EINVAL with nothing written. */
		uint32_t bl[3] = { 10, 505, 10 };
		EXPECT(shmkit_log_write_batch(&l, data, sizeof data, bl, 3, 0), R == -EINVAL); /* an item > maxRecord */
		bl[1] = 10;
		EXPECT(shmkit_log_write_batch(&l, data, 29, bl, 3, 0), R == -EINVAL);   /* data shorter than the lengths */
		EXPECT(shmkit_log_write_batch(&l, data, 31, bl, 3, 0), R == -EINVAL);   /* or longer */
		EXPECT(shmkit_log_write_batch(&l, NULL, 30, bl, 3, 0), R == -EINVAL);
		EXPECT(shmkit_log_write_batch(&l, data, 30, NULL, 3, 0), R == -EINVAL);
		EXPECT(shmkit_log_write_batch(&l, data, 30, bl, 3, 65536), R == -EINVAL);
		EXPECT(shmkit_log_write_batch(&l, data, 30, bl, 0, 0), R == 0);
		EXPECT(shmkit_log_size(&l), R == 0);
		EXPECT(shmkit_log_claim(&l, 505, 0, out), R == -EINVAL);
		EXPECT(shmkit_log_claim(&l, 5, 65536, out), R == -EINVAL);
		EXPECT(shmkit_log_claim(&l, 5, 0, NULL), R == -EINVAL);
		EXPECT(shmkit_log_finish_claim(&l, 0, 0), R == -EINVAL); /* none open */
		EXPECT(shmkit_log_claim(&l, 40, 3, out), R == 1 && out[0] == 8);
		EXPECT(shmkit_log_claim(&l, 5, 0, out), R == -EINPROGRESS);
		EXPECT(shmkit_log_write(&l, data, 5, 0), R == -EINPROGRESS);
		EXPECT(shmkit_log_write_batch(&l, data, 30, bl, 3, 0), R == -EINPROGRESS);
		EXPECT(shmkit_log_finish_claim(&l, 41, 0), R == -EINVAL); /* longer than claimed: stays open */
		struct shmkit_log_local hc = l;
		hc.claim_end = hc.claim_pos + 4096; /* a hostile claim: never written */
		EXPECT(shmkit_log_finish_claim(&hc, 0, 0), R == -EINVAL);
		hc = l;
		hc.claim_pos += 4;
		EXPECT(shmkit_log_finish_claim(&hc, 0, 1), R == -EINVAL);
		EXPECT(shmkit_log_finish_claim(&l, 0, 1), R == 0); /* aborted: a padding record of 48 bytes */
		EXPECT(shmkit_log_write_batch(&l, data, 30, bl, 3, 2), R == 3);
		EXPECT(shmkit_log_read(&l, out), R == 1 && out[1] == 10 && out[2] == 2 && out[0] == 48 + 8);
		EXPECT(shmkit_log_read_batch(&l, out, 8), R == 2);
		EXPECT(shmkit_log_read(&l, out), R == 0);
		EXPECT(shmkit_log_release(&l), R == 0);
		log_format(id, 0, 1024, mode, 0);
		EXPECT(shmkit_log_attach(id, 0, 1, &l), R == 0);
		EXPECT(shmkit_log_write(&l, data, 504, 1), R == 1);
		EXPECT(shmkit_log_write(&l, data, 504, 1), R == 1);
		EXPECT(shmkit_log_write(&l, data, 0, 1), R == 0); /* full */
		EXPECT(shmkit_log_write_batch(&l, data, 30, bl, 3, 0), R == 0);
		EXPECT(shmkit_log_claim(&l, 0, 0, out), R == 0);
		EXPECT(shmkit_log_read_batch(&l, out, 0), R == -EINVAL);
		EXPECT(shmkit_log_read(&l, NULL), R == -EINVAL);
		EXPECT(shmkit_log_read(&l, out), R == 1 && out[1] == 504 && out[2] == 1);
		EXPECT(shmkit_log_consume(&l, 12345), R == -EINVAL); /* not between head and the read position */
		EXPECT(shmkit_log_park(&l, 2, 0, 0), R == -EINVAL);
		EXPECT(shmkit_log_park(&l, 0, 100000, 0), R == -EINVAL);
		EXPECT(shmkit_log_park(&l, 1, 0, NAN), R == -EINVAL);
		/* Corrupt lengths and types of the second record: EBADHDR, never an out-of-bounds read. */
		static const uint32_t bad_len[] = { 0, 4, 7, 513, 0x7ffffff8, 0xfffffff8, 2048 };
		for (size_t i = 0; i < N(bad_len); i++) {
			uint32_t save = d[512 / 4];
			d[512 / 4] = bad_len[i];
			if (mode == 0 || (bad_len[i] != 0 && !(bad_len[i] & 0x80000000u)))
				EXPECT(shmkit_log_read(&l, out), R == -SHMKIT_EBADHDR);
			d[512 / 4] = save;
		}
		uint32_t save = d[516 / 4];
		d[516 / 4] = 0x80000001u;
		EXPECT(shmkit_log_read(&l, out), R == -SHMKIT_EBADHDR);
		d[516 / 4] = 0x80000000u; /* a padding record of 512 bytes: fine, then nothing */
		EXPECT(shmkit_log_read(&l, out), R == 0);
		d[516 / 4] = save;
		/* Counters that break L1/L2. */
		w[128 / 4] = 4;
		EXPECT(shmkit_log_read(&l, out), R == -SHMKIT_EBADHDR || R == 0);
		w[128 / 4] = 1u << 20;
		EXPECT(shmkit_log_read(&l, out), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_log_size(&l), R == 0);
		EXPECT(shmkit_log_release(&l), R == 0);
		w[128 / 4] = 1u << 20;
		EXPECT(shmkit_log_attach(id, 0, 2, &l), R == 0);
		EXPECT(shmkit_log_read(&l, out), R == -SHMKIT_EBADHDR); /* the reader start checks L1 */
		EXPECT(shmkit_log_write(&l, data, 1, 0), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_log_release(&l), R == 0);
		/* A reformat under an attached local: not the log it validated. */
		log_format(id, 0, 1024, mode, 0);
		EXPECT(shmkit_log_attach(id, 0, 3, &l), R == 0);
		w[64 / 4] = 2048;
		EXPECT(shmkit_log_write(&l, data, 1, 0), R == -SHMKIT_EBADHDR);
		w[64 / 4] = 1024;
		/* A hostile local: capacity, slot, offset. */
		struct shmkit_log_local h = l;
		h.capacity = 1u << 30;
		EXPECT(shmkit_log_write(&h, data, 1, 0), R == -EINVAL);
		h = l;
		h.roles = 1;
		h.slot = 99;
		EXPECT(shmkit_log_write(&h, data, 1, 0), mode ? R == -EINVAL : R >= 0);
		h = l;
		h.offset = len - 64;
		EXPECT(shmkit_log_read(&h, out), R == -EINVAL);
		EXPECT(shmkit_log_release(&l), R == 0);
	}
	/* mpsc: an unwritten header no slot claims (L4) is EBADHDR once the reader looks (after 2 ms). */
	log_format(id, 0, 1024, 1, 0);
	EXPECT(shmkit_log_attach(id, 0, 4, &l), R == 0);
	*(uint32_t *)(void *)(base + 128) = 64;
	int r = 0;
	for (int i = 0; i < 200 && r == 0; i++) {
		r = shmkit_log_read(&l, out);
		if (r == 0)
			shmkit_log_park(&l, 1, 0, 1);
	}
	EXPECT(r, R == -SHMKIT_EBADHDR);
	EXPECT(shmkit_log_release(&l), R == 0);
	EXPECT(shmkit_log_attach(id, 0, 5, &l), R == 0);
	shmkit_munmap(id, 0);
	EXPECT(shmkit_log_write(&l, data, 1, 0), R == -EBADF);
	EXPECT(shmkit_log_read(&l, out), R == -EBADF);
	EXPECT(shmkit_log_release(&l), R == -EBADF);
}

/* Formats a SharedHeap (docs/layout/heap.md) at off of mapping id; fills *l for it (slot 1). */
static int heap_format(int32_t id, double off, uint32_t arena, uint32_t names, uint32_t slots,
		       struct shmkit_heap_local *l)
{
	double g[6];
	double L = shmkit_map_length(id);
	if (L < 0 || !(off >= 0) || shmkit_heap_byte_length(arena, names, slots, g) != 0 || off + g[0] > L)
		return -1;
	uint8_t *b = (uint8_t *)(uintptr_t)shmkit_map_addr(id) + (uint64_t)off;
	memset(b, 0, (size_t)g[1]);
	uint32_t *w = (uint32_t *)(void *)b;
	w[12 / 4] = (uint32_t)g[1];
	w[64 / 4] = (uint32_t)g[1];
	w[68 / 4] = arena;
	w[72 / 4] = names;
	w[76 / 4] = 256;
	w[80 / 4] = (uint32_t)g[2];
	w[84 / 4] = (uint32_t)g[3];
	w[88 / 4] = (uint32_t)g[4];
	w[92 / 4] = (uint32_t)g[5];
	w[96 / 4] = slots;
	w[(832 + 68) / 4] = slots;
	uint32_t a = (uint32_t)g[1];
	w[a / 4] = arena | 2u;
	uint32_t fl = 31u - (uint32_t)__builtin_clz(arena), sl = (arena >> (fl - 2)) & 3;
	w[320 / 4 + fl * 4 + sl] = a;
	w[192 / 4 + fl] = 1u << sl;
	w[128 / 4] = 1u << fl;
	memset(l, 0, sizeof *l);
	l->offset = off;
	l->map_id = id;
	l->arena_size = arena;
	l->name_count = names;
	l->slots = slots;
	int r = shmkit_heap_bind(l); /* stamps the fork generation */
	l->slot = 1;
	return r;
}

/* csrc/ops_heap.c: hostile locals, bad ids and offsets, a busy lock, corrupt headers, blocks, lists
 * and journals; after every call the heap lock is free again (no call leaves it held). */
static void heap_cases(void)
{
	struct shmkit_heap_local l;
	double st[10];
	const uint8_t *nm = (const uint8_t *)"name";
	EXPECT(shmkit_heap_local_size(), R == (double)sizeof l);
	EXPECT(shmkit_heap_byte_length(63, 1, 1, st), R == -EINVAL);
	EXPECT(shmkit_heap_byte_length(4096, 0, 1, st), R == -EINVAL);
	EXPECT(shmkit_heap_byte_length(4096, 1, 65536, st), R == -EINVAL);
	EXPECT(shmkit_heap_byte_length(4096, 1, 1, NULL), R == -EINVAL);
	EXPECT(shmkit_heap_bind(NULL), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(NULL, 8, 16, 0), R == -EINVAL);
	EXPECT(shmkit_heap_free(NULL, 8, 0), R == -EINVAL);
	EXPECT(shmkit_heap_size_of(NULL, 8, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(NULL, 0, nm, 4, 0, 16, 0, 0), R == -EINVAL);
	EXPECT(shmkit_heap_begin(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_heap_end(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_heap_stats(NULL, st, 0), R == -EINVAL);
	EXPECT(shmkit_heap_release(NULL), R == -EINVAL);
	int32_t id = shmkit_mmap(-1, 65536, 0, SHMKIT_MAP_WRITE);
	EXPECT(id, R > 0);
	uint32_t *w = (uint32_t *)(uintptr_t)shmkit_map_addr(id);
	EXPECT(heap_format(id, 0, 16384, 4, 2, &l), R == 0);
	uint32_t *lock = w + (832 + 64) / 4;
	int64_t a = shmkit_heap_alloc(&l, 100, 16, 0);
	EXPECT(a, R > 0 && (int64_t)R % 16 == 0);
	EXPECT(shmkit_heap_size_of(&l, (double)a, 0), R == 112);
	EXPECT(shmkit_heap_alloc(&l, 0, 16, 0), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(&l, 16385, 16, 0), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(&l, NAN, 16, 0), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(&l, 8, 3, 0), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 64), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 4), R == -EINVAL);
	EXPECT(shmkit_heap_alloc(&l, 16384, 16, 0), R == -ENOMEM);
	for (size_t i = 0; i < N(bad_offsets); i++)
		EXPECT(shmkit_heap_free(&l, bad_offsets[i], 0), R == -EINVAL);
	EXPECT(shmkit_heap_free(&l, (double)a + 16, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 1, nm, 4, (double)a, 16, 0, 0), R == 0);
	EXPECT(shmkit_heap_name(&l, 0, nm, 4, 0, 16, 0, 0), R == (double)a);
	EXPECT(shmkit_heap_name(&l, 0, nm, 0, 0, 16, 0, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 0, nm, 49, 0, 16, 0, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 0, NULL, 4, 0, 16, 0, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 6, nm, 4, 0, 16, 0, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 5, nm, 4, (double)a, 16, 0, 0), R == -EINVAL); /* put outside an open operation */
	EXPECT(shmkit_heap_name(&l, 1, (const uint8_t *)"other", 5, 12345, 16, 0, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 4, (const uint8_t *)"new", 3, 64, 16, 0, 4), R > 0 && l.holding == 1 && l.created);
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 0), R == -EAGAIN); /* our own open operation holds the lock */
	EXPECT(shmkit_heap_end(&l, 1), R == 0 && *lock == 0 && l.holding == 0);
	EXPECT(shmkit_heap_name(&l, 0, (const uint8_t *)"new", 3, 0, 16, 0, 0), R == 0);
	EXPECT(shmkit_heap_end(&l, 0), R == -EINVAL);
	w[108 / 4] = 0xfffffff0u; /* an opSeq past 2^31: still a sequence, not an error */
	w[112 / 4] = 0xfffffff0u;
	EXPECT(shmkit_heap_begin(&l, 0), R == 0 && l.holding && l.seq == 0xfffffff1u);
	EXPECT(shmkit_heap_release(&l), R == 0 && *lock == 0 && l.holding == 0);
	EXPECT(shmkit_heap_stats(&l, st, 0), R == 0 && st[3] == 1 && st[5] == 1);
	EXPECT(shmkit_heap_stats(&l, NULL, 0), R == -EINVAL);
	EXPECT(shmkit_heap_name(&l, 3, nm, 4, 0, 16, 0, 0), R == 1);
	EXPECT(shmkit_heap_stats(&l, st, 0), R == 0 && st[0] == 0 && st[1] == 16384 && st[3] == 0);
	/* A busy lock: -EAGAIN without the Mutex; "held" when the word does not name our slot: -EINVAL. */
	*lock = 2;
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 0), R == -EAGAIN);
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 1), R == -EINVAL);
	*lock = 0;
	l.slot = 0;
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 0), R == -EAGAIN);
	l.slot = 1;
	/* Hostile locals and a changed header. */
	struct shmkit_heap_local k = l;
	k.arena_size = 100;
	EXPECT(shmkit_heap_alloc(&k, 8, 16, 0), R == -EINVAL);
	k = l;
	k.arena_size = 1u << 20;
	EXPECT(shmkit_heap_alloc(&k, 8, 16, 0), R == -EINVAL);
	for (size_t i = 0; i < N(bad_offsets); i++) {
		k = l;
		k.offset = bad_offsets[i];
		EXPECT(shmkit_heap_free(&k, 8, 0), R == -EINVAL);
	}
	for (size_t i = 0; i < N(bad_ids); i++) {
		k = l;
		k.map_id = bad_ids[i];
		EXPECT(shmkit_heap_alloc(&k, 8, 16, 0), R == -EBADF || R == -EINVAL);
	}
	k = l;
	k.name_count = 5;
	EXPECT(shmkit_heap_alloc(&k, 8, 16, 0), R == -SHMKIT_EBADHDR && k.why == 1);
	w[(832 + 68) / 4] = 3;
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 0), R == -SHMKIT_EBADHDR);
	w[(832 + 68) / 4] = 2;
	/* A journal entry outside the mutable words, in an open operation: EBADHDR, the lock released. */
	double g[6];
	shmkit_heap_byte_length(16384, 4, 2, g);
	uint32_t jw = (uint32_t)g[3] / 4;
	w[108 / 4] += 1;
	w[jw] = 2;
	w[jw + 2] = w[108 / 4];
	EXPECT(shmkit_heap_alloc(&l, 8, 16, 0), R == -SHMKIT_EBADHDR && l.why == 16 && *lock == 0);
	/* Random scribbles over a busy heap: every call returns, never a crash, the lock always free. */
	int corrupt = 0, fine = 0;
	for (int round = 0; round < 400; round++) {
		heap_format(id, 64 * (round % 3), 16384, 4, 2, &l);
		w = (uint32_t *)(uintptr_t)shmkit_map_addr(id) + 16 * (round % 3);
		lock = w + (832 + 64) / 4;
		int64_t offs[24];
		int n = 0;
		for (int i = 0; i < 24; i++) {
			int64_t o = shmkit_heap_alloc(&l, 1 + (round * 7 + i * 13) % 700, i % 5 ? 16 : 256, 0);
			if (o > 0)
				offs[n++] = o;
		}
		for (int i = 0; i < n; i += 3)
			shmkit_heap_free(&l, (double)offs[i], 0);
		uint32_t words = (uint32_t)(g[0] / 4);
		for (int s = 0; s < 1 + round % 6; s++) {
			uint32_t i = 29 + (uint32_t)rand() % (words - 29);
			if (i >= 832 / 4 && i < (uint32_t)g[3] / 4)
				continue; /* not the heap lock */
			w[i] = (round % 4 == 0) ? (uint32_t)rand() : w[i] ^ (1u << (rand() % 32));
		}
		for (int i = 0; i < 12; i++) {
			int64_t r = 0;
			switch ((round + i) % 6) {
			case 0: r = shmkit_heap_alloc(&l, 1 + (uint32_t)rand() % 3000, 16u << (rand() % 4), 0); break;
			case 1: r = shmkit_heap_free(&l, (double)offs[(uint32_t)rand() % (n ? (uint32_t)n : 1)], 0); break;
			case 2: r = shmkit_heap_stats(&l, st, 0); break;
			case 3: r = shmkit_heap_name(&l, (uint32_t)rand() % 5, nm, 4, (double)offs[0], 16, 0, 0); break;
			case 4: r = shmkit_heap_size_of(&l, (double)offs[(uint32_t)rand() % (n ? (uint32_t)n : 1)], 0); break;
			case 5:
				r = shmkit_heap_name(&l, 4, nm, 4, 100, 64, 0, 4);
				if (r > 0 && l.holding) {
					shmkit_heap_name(&l, 5, nm, 4, 0, 16, 0, 8);
					if (l.holding)
						shmkit_heap_end(&l, (uint32_t)rand() % 2);
				}
				break;
			}
			corrupt += r == -SHMKIT_EBADHDR;
			fine += r >= 0;
			EXPECT(*lock, R == 0);
		}
	}
	EXPECT(corrupt, R > 100); /* the scribbles were noticed ... */
	EXPECT(fine, R > 100);    /* ... and calls on intact parts went on */
	shmkit_munmap(id, 0);
	k = l;
	EXPECT(shmkit_heap_alloc(&k, 8, 16, 0), R == -EBADF);
}

/* Formats a channel at off of mapping id (as src/channel.ts init: header, participants, the ready
 * ring with its common header's headerSize and byteLength, the slot table); returns its byteLength,
 * 0 if it does not fit. */
static uint64_t chan_format(int32_t id, double off, uint32_t slots, uint32_t slot_size, uint32_t mode, uint32_t procs)
{
	double L = shmkit_map_length(id);
	uint32_t n = 4;
	while (n < slots)
		n <<= 1;
	uint64_t stride = ((uint64_t)slot_size + 63) / 64 * 64;
	uint64_t ready = (192 + 64ull * procs + 63) / 64 * 64;
	uint64_t table = (ready + 384 + 8ull * n + 63) / 64 * 64;
	uint64_t data = (table + 8ull * slots + 4095) / 4096 * 4096;
	uint64_t blen = data + stride * slots;
	if (L < 0 || !(off >= 0) || off + (double)blen > L)
		return 0;
	uint8_t *b = (uint8_t *)(uintptr_t)shmkit_map_addr(id) + (uint64_t)off;
	memset(b, 0, data);
	uint32_t *w = (uint32_t *)(void *)b;
	uint64_t *q = (uint64_t *)(void *)b;
	w[12 / 4] = 192;
	q[16 / 8] = blen;
	w[64 / 4] = slots;
	w[68 / 4] = slot_size;
	w[72 / 4] = mode;
	w[76 / 4] = 8;
	q[80 / 8] = stride;
	q[88 / 8] = 192;
	q[96 / 8] = ready;
	q[104 / 8] = table;
	q[112 / 8] = data;
	w[124 / 4] = procs;
	uint32_t *rw = (uint32_t *)(void *)(b + ready);
	rw[12 / 4] = 384;
	*(uint64_t *)(void *)(b + ready + 16) = 384 + 8ull * n;
	shmkit_ring_format(id, off + (double)ready, slots, mode == 1 ? 3 : 0, 0);
	w[28 / 4] = mode; /* flags = mode */
	return blen;
}

/* csrc/ops_chan.c: hostile locals, bad ids and offsets, corrupt headers, slot tables and ready
 * ring indices, a stale mapping. */
static void chan_cases(void)
{
	struct shmkit_chan_local l;
	uint32_t out[2 * 8];
	uint8_t data[200];
	memset(data, 5, sizeof data);
	EXPECT(shmkit_chan_local_size(), R == (double)sizeof l);
	EXPECT(shmkit_chan_attach(0, 0, 1, NULL), R == -EINVAL);
	EXPECT(shmkit_chan_register(NULL), R == -EINVAL);
	EXPECT(shmkit_chan_take(NULL), R == -EINVAL);
	EXPECT(shmkit_chan_send(NULL, data, 1), R == -EINVAL);
	EXPECT(shmkit_chan_queue(NULL, 0, 1), R == -EINVAL);
	EXPECT(shmkit_chan_unloan(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_chan_recv(NULL), R == -EINVAL);
	EXPECT(shmkit_chan_recv_batch(NULL, out, 1), R == -EINVAL);
	EXPECT(shmkit_chan_release(NULL, 0), R == -EINVAL);
	EXPECT(shmkit_chan_release_batch(NULL, out, 1), R == -EINVAL);
	EXPECT(shmkit_chan_park(NULL, 0, 0), R == -EINVAL);
	EXPECT(shmkit_chan_reclaim(NULL), R == -EINVAL);
	EXPECT(shmkit_chan_size(NULL), R == -EINVAL);
	EXPECT(shmkit_chan_available(NULL), R == -EINVAL);
	EXPECT(shmkit_chan_close(NULL), R == -EINVAL);
	memset(&l, 0, sizeof l);
	EXPECT(shmkit_chan_send(&l, data, 1), R == -EINVAL);
	EXPECT(shmkit_chan_recv(&l), R == -EINVAL);
	for (size_t i = 0; i < N(bad_ids); i++)
		EXPECT(shmkit_chan_attach(bad_ids[i], 0, 1, &l), R == -EBADF);
	const double len = 1 << 16;
	int32_t id = shmkit_mmap(-1, len, 0, SHMKIT_MAP_WRITE);
	EXPECT(id, R > 0);
	uint8_t *base = (uint8_t *)(uintptr_t)shmkit_map_addr(id);
	for (size_t i = 0; i < N(bad_offsets); i++)
		EXPECT(shmkit_chan_attach(id, bad_offsets[i], 1, &l), R == -EINVAL);
	EXPECT(shmkit_chan_attach(id, 0, 0, &l), R == -EINVAL); /* token 0 */
	EXPECT(shmkit_chan_attach(id, 0, 1, &l), R == -SHMKIT_EBADHDR); /* zeroed memory */
	EXPECT(shmkit_chan_attach(id, len - 128, 1, &l), R == -EINVAL); /* header past the mapping */
	uint64_t blen = chan_format(id, 0, 4, 100, 1, 2);
	EXPECT(blen, R > 0);
	uint64_t ready = *(uint64_t *)(void *)(base + 96), table = *(uint64_t *)(void *)(base + 104);
	/* Header fields (and the ready ring's): each corrupt one is EBADHDR. */
	static const struct { uint32_t off, val; } bad_fields[] = {
		{ 12, 128 }, { 64, 0 }, { 64, 5 }, { 64, (1u << 24) + 1 }, { 68, 0 }, { 68, 129 }, { 72, 2 }, { 72, 3 }, { 76, 4 },
		{ 80, 64 }, { 88, 128 }, { 96, 0 }, { 104, 0 }, { 112, 0 }, { 124, 0 }, { 124, 257 }, { 16, 7 },
	};
	for (size_t i = 0; i < N(bad_fields); i++) {
		chan_format(id, 0, 4, 100, 1, 2);
		*(uint32_t *)(void *)(base + bad_fields[i].off) = bad_fields[i].val;
		EXPECT(shmkit_chan_attach(id, 0, 1, &l), R == -SHMKIT_EBADHDR);
	}
	static const uint32_t bad_ring[][2] = { { 64, 3 }, { 64, 8 }, { 68, 8 }, { 72, 0 }, { 72, 9 }, { 76, 0 } };
	for (size_t i = 0; i < N(bad_ring); i++) {
		chan_format(id, 0, 4, 100, 1, 2);
		*(uint32_t *)(void *)(base + ready + bad_ring[i][0]) = bad_ring[i][1];
		EXPECT(shmkit_chan_attach(id, 0, 1, &l), R == -SHMKIT_EBADHDR);
	}
	chan_format(id, len - 8192, 4, 100, 1, 2);
	*(uint32_t *)(void *)(base + (uint64_t)len - 8192 + 64) = 1000;
	EXPECT(shmkit_chan_attach(id, len - 8192, 1, &l), R == -SHMKIT_EBADHDR); /* claims more than is mapped */

	for (uint32_t mode = 0; mode < 2; mode++) {
		chan_format(id, 0, 4, 100, mode, 2);
		uint32_t *tab = (uint32_t *)(void *)(base + table);
		uint32_t *rs = (uint32_t *)(void *)(base + ready + 384); /* spsc: dense values; mpmc: (value, seq) */
		EXPECT(shmkit_chan_attach(id, 0, 1, &l), R == 0);
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);
		EXPECT(shmkit_chan_send(&l, data, 101), R == -EINVAL); /* > slotSize */
		EXPECT(shmkit_chan_send(&l, NULL, 5), R == -EINVAL);
		for (int i = 0; i < 4; i++)
			EXPECT(shmkit_chan_send(&l, data, 10 + (uint32_t)i), R == 1);
		EXPECT(shmkit_chan_send(&l, data, 1), R == 0); /* full */
		EXPECT(shmkit_chan_size(&l), R == 4);
		EXPECT(shmkit_chan_available(&l), R == 0);
		EXPECT(shmkit_chan_recv_batch(&l, out, 0), R == -EINVAL);
		EXPECT(shmkit_chan_recv_batch(&l, NULL, 1), R == -EINVAL);
		int64_t v = shmkit_chan_recv(&l);
		EXPECT(v, R >= 0 && (v >> 24) == 10);
		EXPECT(shmkit_chan_release(&l, -1), R == -EINVAL);
		EXPECT(shmkit_chan_release(&l, 4), R == -EINVAL);
		EXPECT(shmkit_chan_release(&l, (int32_t)((v & 0xffffff) ^ 1)), R == -SHMKIT_EBADHDR); /* not held by us */
		EXPECT(shmkit_chan_release(&l, (int32_t)(v & 0xffffff)), R == 0);
		EXPECT(shmkit_chan_release(&l, (int32_t)(v & 0xffffff)), R == -SHMKIT_EBADHDR); /* twice */
		EXPECT(shmkit_chan_queue(&l, 0, 1), R == -EINVAL); /* not loaned to us */
		EXPECT(shmkit_chan_unloan(&l, 0), R == -EINVAL);
		int32_t t = shmkit_chan_take(&l);
		EXPECT(t, R >= 0 && R < 4);
		EXPECT(shmkit_chan_take(&l), R == -EAGAIN);
		EXPECT(shmkit_chan_queue(&l, t, 101), R == -EINVAL);
		EXPECT(shmkit_chan_unloan(&l, t), R == 0);
		EXPECT(shmkit_chan_park(&l, 2, 0), R == -EINVAL);
		EXPECT(shmkit_chan_park(&l, 0, NAN), R == -EINVAL);
		EXPECT(shmkit_chan_park(&l, 0, 0), R == 1); /* a free block at the re-check */
		/* The ready ring hands out an index >= slots: EBADHDR, the index is dropped. */
		uint32_t *v1 = mode ? &rs[2 * 1] : &rs[1];
		uint32_t save = *v1;
		*v1 = 1000;
		EXPECT(shmkit_chan_recv(&l), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_chan_reclaim(&l), R == 1); /* its block: QUEUED, in no ring */
		(void)save;
		/* A claimed block that is not QUEUED. */
		uint32_t *v2 = mode ? &rs[2 * 2] : &rs[2];
		uint32_t i2 = *v2 < 4 ? *v2 : 0;
		tab[2 * i2 + 1] = 0x40000000u | 0x1234; /* LOANED to someone */
		EXPECT(shmkit_chan_recv(&l), R == -SHMKIT_EBADHDR);
		/* A length above slotSize: EBADHDR, its block comes back. */
		uint32_t *v3 = mode ? &rs[2 * 3] : &rs[3];
		uint32_t i3 = *v3 < 4 ? *v3 : 0;
		tab[2 * i3] = 101;
		int32_t before = shmkit_chan_available(&l);
		EXPECT(shmkit_chan_recv_batch(&l, out, 8), R == -SHMKIT_EBADHDR);
		EXPECT(shmkit_chan_available(&l), R == before + 1);
		/* Malformed words and out-of-range participants are reclaimed, never followed. */
		tab[1] = 0x12345678u;
		tab[3] = 0x800000ffu;
		tab[5] = 0x40000000u | (0x5 << 8) | 200u;
		EXPECT(shmkit_chan_reclaim(&l), R >= 2);
		EXPECT(shmkit_chan_release_batch(&l, out, -1), R == -EINVAL);
		out[0] = 99;
		EXPECT(shmkit_chan_release_batch(&l, out, 1), R == -EINVAL);
		/* A reformat under an attached local: not the channel it validated. */
		*(uint32_t *)(void *)(base + 68) = 64;
		EXPECT(shmkit_chan_send(&l, data, 1), R == -SHMKIT_EBADHDR);
		*(uint32_t *)(void *)(base + 68) = 100;
		/* Hostile locals. */
		struct shmkit_chan_local h = l;
		h.slots = (1u << 24) + 1;
		EXPECT(shmkit_chan_send(&h, data, 1), R == -EINVAL);
		h = l;
		h.p = 300;
		EXPECT(shmkit_chan_recv(&h), R == -EINVAL);
		h = l;
		h.tag = 0x40000000u;
		EXPECT(shmkit_chan_recv(&h), R == -EINVAL);
		h = l;
		h.ring.offset += 64;
		EXPECT(shmkit_chan_send(&h, data, 1), R == -EINVAL);
		h = l;
		h.offset = len - 64;
		h.ring.offset = h.offset + h.ready_off;
		EXPECT(shmkit_chan_reclaim(&h), R == -EINVAL);
		h = l;
		h.cursor = 4;
		EXPECT(shmkit_chan_take(&h), R == -EINVAL);
		EXPECT(shmkit_chan_close(&l), R == 0);
	}
	/* spsc-ordered (mode 2): the scratch, ring order, out-of-order release, loans and SKIP
	 * records, every corrupt ring value, length and counter EBADHDR, hostile locals -EINVAL. */
	{
		static uint8_t scratch[6 * 4 + 4 + 8];
		uint8_t *data0;
		chan_format(id, 0, 4, 100, 2, 2);
		uint64_t rdy = *(uint64_t *)(void *)(base + 96), tb = *(uint64_t *)(void *)(base + 104);
		uint32_t *tab = (uint32_t *)(void *)(base + tb);
		uint32_t *rs = (uint32_t *)(void *)(base + rdy + 384);
		uint32_t *tail = (uint32_t *)(void *)(base + rdy + 128), *head = (uint32_t *)(void *)(base + rdy + 192);
		data0 = base + *(uint64_t *)(void *)(base + 112);
		EXPECT(shmkit_chan_attach(id, 0, 11, &l), R == 0);
		EXPECT(shmkit_chan_send(&l, data, 1), R == -EINVAL); /* no scratch yet */
		EXPECT(shmkit_chan_recv(&l), R == -EINVAL);
		EXPECT(shmkit_chan_scratch(NULL, NULL, 0), R == -EINVAL);
		EXPECT(shmkit_chan_scratch(&l, NULL, 0), R == 6 * 4 + 4);
		EXPECT(shmkit_chan_scratch(&l, scratch, 27), R == -EINVAL);
		EXPECT(shmkit_chan_scratch(&l, scratch, NAN), R == -EINVAL);
		EXPECT(shmkit_chan_scratch(&l, scratch, 28), R == 0);
		EXPECT(shmkit_chan_register(&l), R == 0);
		EXPECT(shmkit_chan_reclaim(&l), R == 0);
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);
		EXPECT(shmkit_chan_send(&l, data, 101), R == -EINVAL);
		for (uint32_t i = 0; i < 4; i++)
			EXPECT(shmkit_chan_send(&l, data, 10 + i), R == 1);
		EXPECT(shmkit_chan_send(&l, data, 1), R == 0); /* full */
		EXPECT(shmkit_chan_take(&l), R == -EAGAIN);
		EXPECT(shmkit_chan_size(&l), R == 4);
		EXPECT(shmkit_chan_available(&l), R == 0);
		EXPECT(*tail - *head, R == 4);
		EXPECT(rs[0], R == 1); /* a new channel's first block is 1 (the zeroed ring's value + 1) */
		int64_t m[4];
		for (int i = 0; i < 4; i++) {
			m[i] = shmkit_chan_recv(&l);
			EXPECT(m[i], R >= 0 && (m[i] >> 24) == 10 + i && (m[i] & 0xffffff) == (uint32_t)(1 + i) % 4);
		}
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);
		EXPECT(shmkit_chan_size(&l), R == 0);
		EXPECT(shmkit_chan_release(&l, (int32_t)(m[2] & 0xffffff)), R == 0); /* out of order: no room yet */
		EXPECT(shmkit_chan_release(&l, (int32_t)(m[2] & 0xffffff)), R == -SHMKIT_EBADHDR); /* twice */
		EXPECT(shmkit_chan_release(&l, 4), R == -EINVAL);
		EXPECT(shmkit_chan_available(&l), R == 0);
		EXPECT(shmkit_chan_release(&l, (int32_t)(m[0] & 0xffffff)), R == 0);
		EXPECT(shmkit_chan_available(&l), R == 1);
		out[0] = (uint32_t)(m[1] & 0xffffff);
		out[2] = (uint32_t)(m[3] & 0xffffff);
		EXPECT(shmkit_chan_release_batch(&l, out, 2), R == 0);
		EXPECT(shmkit_chan_available(&l), R == 4);
		EXPECT(*head, R == 4);
		/* Loans: published in order, a discarded one as a SKIP record, the last one unreserved. */
		int32_t a = shmkit_chan_take(&l), b = shmkit_chan_take(&l), c = shmkit_chan_take(&l);
		EXPECT(a, R == 1);
		EXPECT(b, R == 2);
		EXPECT(shmkit_chan_queue(&l, 0, 1), R == -EINVAL); /* not reserved */
		EXPECT(shmkit_chan_queue(&l, -1, 1), R == -EINVAL);
		EXPECT(shmkit_chan_queue(&l, b, 101), R == -EINVAL);
		EXPECT(shmkit_chan_queue(&l, b, 7), R == 0);
		EXPECT(shmkit_chan_queue(&l, b, 7), R == -EINVAL); /* sent already */
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);        /* behind loan a */
		EXPECT(shmkit_chan_unloan(&l, c), R == 0);          /* the last reserved: unreserved */
		EXPECT(shmkit_chan_unloan(&l, c), R == -EINVAL);
		EXPECT(shmkit_chan_unloan(&l, a), R == 0);          /* a SKIP record: b goes out */
		EXPECT(tab[2 * a], R == 0xffffffffu);
		int64_t v = shmkit_chan_recv(&l);
		EXPECT(v, R >= 0 && (v & 0xffffff) == (uint32_t)b && (v >> 24) == 7);
		EXPECT(shmkit_chan_release(&l, b), R == 0);
		EXPECT(shmkit_chan_available(&l), R == 4);
		/* A batch, byte for byte, then one receive burst. */
		uint32_t lens[5] = { 0, 1, 100, 3, 50 };
		EXPECT(shmkit_chan_send_batch(&l, data, 200, lens, 5), R == 4);
		EXPECT(shmkit_chan_recv_batch(&l, out, 8), R == 4);
		EXPECT(out[1] + out[3] + out[5] + out[7], R == 104);
		EXPECT(memcmp(data0 + 64ull * 2 * out[4], data, 100), R == 0); /* stride 128 */
		EXPECT(shmkit_chan_release_batch(&l, out, 4), R == 0);
		EXPECT(shmkit_chan_park(&l, 1, 0), R == -ETIMEDOUT); /* nothing queued */
		EXPECT(shmkit_chan_park(&l, 0, 0), R == 1);          /* room */
		EXPECT(shmkit_chan_park(&l, 2, 0), R == -EINVAL);
		/* A second local: both roles are this process's other object's (EBUSY). */
		struct shmkit_chan_local l2;
		static uint8_t scratch2[28];
		EXPECT(shmkit_chan_attach(id, 0, 12, &l2), R == 0);
		EXPECT(shmkit_chan_scratch(&l2, scratch2, 28), R == 0);
		EXPECT(shmkit_chan_send(&l2, data, 1), R == -EBUSY);
		EXPECT(shmkit_chan_recv(&l2), R == -EBUSY);
		EXPECT(shmkit_chan_close(&l2), R == 0);
		/* Corrupt ring values: out of range, a block held twice; a length above slotSize. */
		uint32_t t0 = *tail, mask = 3;
		for (int i = 0; i < 4; i++)
			EXPECT(shmkit_chan_send(&l, data, 5), R == 1);
		rs[t0 & mask] = 1000;
		EXPECT(shmkit_chan_recv(&l), R == -SHMKIT_EBADHDR); /* dropped */
		v = shmkit_chan_recv(&l);
		EXPECT(v, R >= 0);
		rs[(t0 + 2) & mask] = (uint32_t)(v & 0xffffff);
		EXPECT(shmkit_chan_recv(&l), R == -SHMKIT_EBADHDR); /* held already: dropped */
		tab[2 * rs[(t0 + 3) & mask]] = 101;
		EXPECT(shmkit_chan_recv_batch(&l, out, 8), R == -SHMKIT_EBADHDR); /* released on the way */
		EXPECT(shmkit_chan_available(&l), R == 1); /* the 1st position freed; v holds itself and the two after it */
		EXPECT(shmkit_chan_release(&l, (int32_t)(v & 0xffffff)), R == 0);
		EXPECT(shmkit_chan_available(&l), R == 4);
		/* The tail more than `slots` past the head, or behind the receiver. */
		uint32_t t1 = *tail;
		*tail = t1 + 5;
		EXPECT(shmkit_chan_recv(&l), R == -SHMKIT_EBADHDR);
		*tail = t1 - 1;
		EXPECT(shmkit_chan_recv(&l), R == -SHMKIT_EBADHDR);
		*tail = t1;
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);
		/* A lap and more of SKIP records costs one call: at most one lap per receive. */
		for (int i = 0; i < 4; i++)
			EXPECT(shmkit_chan_send(&l, data, 5), R == 1);
		for (int i = 0; i < 4; i++)
			tab[2 * i] = 0xffffffffu;
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);
		EXPECT(shmkit_chan_available(&l), R == 4);
		/* A head the sender cannot trust: EBADHDR, never a block in flight reused. */
		for (int i = 0; i < 4; i++)
			EXPECT(shmkit_chan_send(&l, data, 5), R == 1);
		uint32_t h1 = *head;
		*head = h1 + 9;
		EXPECT(shmkit_chan_send(&l, data, 5), R == -SHMKIT_EBADHDR);
		*head = h1;
		/* Hostile locals. */
		struct shmkit_chan_local h = l;
		h.o_n = 5;
		EXPECT(shmkit_chan_send(&h, data, 1), R == -EINVAL);
		h = l;
		h.o_b = 4;
		EXPECT(shmkit_chan_take(&h), R == -EINVAL);
		h = l;
		h.o_next = h.o_head + 5;
		EXPECT(shmkit_chan_recv(&h), R == -EINVAL);
		h = l;
		h.o_mem = scratch2;
		EXPECT(shmkit_chan_recv(&h), R == -EINVAL); /* the keyed check */
		h = l;
		h.o_len = 1 << 20;
		EXPECT(shmkit_chan_recv(&h), R == -EINVAL);
		EXPECT(shmkit_chan_recv(&h), R == -EINVAL);
		h = l; /* a copy at another address fails the keyed check too */
		EXPECT(shmkit_chan_size(&h), R == -EINVAL);
		/* close releases what it holds and discards its loans; a new sender starts after the
		 * published tail, a new receiver at the head (the unreleased messages again). */
		v = shmkit_chan_recv(&l);
		EXPECT(v, R >= 0);
		EXPECT(shmkit_chan_close(&l), R == 0);
		EXPECT(shmkit_chan_attach(id, 0, 13, &l), R == 0);
		EXPECT(shmkit_chan_scratch(&l, scratch, 28), R == 0);
		EXPECT(shmkit_chan_size(&l), R == 3);
		rs[(*tail - 1) & mask] = 9;
		EXPECT(shmkit_chan_send(&l, data, 1), R == -SHMKIT_EBADHDR); /* the last value is out of range */
		EXPECT(shmkit_chan_close(&l), R == 0);
	}
	/* Batch send: lengths checked before anything is taken, as many as there are free blocks (in
	 * chunks of 256: one bracket and one burst each), in order, byte for byte. */
	for (uint32_t mode = 0; mode < 2; mode++) {
		static uint8_t bdata[400 * 16];
		static uint32_t blens[400];
		double total = 0;
		for (size_t k = 0; k < sizeof bdata; k++)
			bdata[k] = (uint8_t)(k * 7 + 3);
		for (int i = 0; i < 400; i++) {
			blens[i] = (uint32_t)(i % 17);
			total += blens[i];
		}
		chan_format(id, 0, 300, 16, mode, 2);
		EXPECT(shmkit_chan_attach(id, 0, 7, &l), R == 0);
		EXPECT(shmkit_chan_send_batch(NULL, bdata, total, blens, 1), R == -EINVAL);
		EXPECT(shmkit_chan_send_batch(&l, bdata, total, blens, -1), R == -EINVAL);
		EXPECT(shmkit_chan_send_batch(&l, bdata, total, NULL, 1), R == -EINVAL);
		EXPECT(shmkit_chan_send_batch(&l, NULL, total, blens, 1), R == -EINVAL);
		EXPECT(shmkit_chan_send_batch(&l, bdata, total - 1, blens, 400), R == -EINVAL); /* more than passed */
		EXPECT(shmkit_chan_send_batch(&l, bdata, NAN, blens, 400), R == -EINVAL);
		blens[399] = 17;
		EXPECT(shmkit_chan_send_batch(&l, bdata, total + 1, blens, 400), R == -EINVAL); /* > slotSize */
		blens[399] = 399 % 17;
		EXPECT(shmkit_chan_available(&l), R == 300);
		EXPECT(shmkit_chan_send_batch(&l, bdata, total, blens, 0), R == 0);
		EXPECT(shmkit_chan_send_batch(&l, bdata, total, blens, 400), R == 300);
		EXPECT(shmkit_chan_size(&l), R == 300);
		EXPECT(shmkit_chan_send_batch(&l, bdata, total, blens, 400), R == 0); /* full */
		uint8_t *data0 = base + *(uint64_t *)(void *)(base + 112);
		uint64_t at = 0;
		int good = 1;
		for (int i = 0; i < 300; i++) {
			int64_t v = shmkit_chan_recv(&l);
			if (v < 0 || (uint32_t)(v >> 24) != blens[i] ||
			    memcmp(data0 + 64 * (uint64_t)(v & 0xffffff), bdata + at, blens[i]) != 0)
				good = 0;
			at += blens[i];
			if (v >= 0)
				shmkit_chan_release(&l, (int32_t)(v & 0xffffff));
		}
		EXPECT(good, R == 1);
		EXPECT(shmkit_chan_recv(&l), R == -EAGAIN);
		if (mode == 0) {
			/* A ready ring that claims to be full while blocks are free: EBADHDR, every block
			 * of the batch given back. */
			uint64_t rdy = *(uint64_t *)(void *)(base + 96);
			uint32_t *tail = (uint32_t *)(void *)(base + rdy + 128), *head = (uint32_t *)(void *)(base + rdy + 192);
			uint32_t h0 = *head;
			*head = *tail - 300; /* 300 used of a capacity of 300 */
			EXPECT(shmkit_chan_send_batch(&l, bdata, total, blens, 5), R == -SHMKIT_EBADHDR);
			EXPECT(shmkit_chan_available(&l), R == 300);
			*head = h0;
		}
		EXPECT(shmkit_chan_close(&l), R == 0);
	}
	/* R1b with more QUEUED blocks than the reclaimer's stack list holds (64): none is an orphan
	 * while the ring holds them all; those whose ring entries are overwritten are. */
	chan_format(id, 0, 200, 64, 1, 2);
	EXPECT(shmkit_chan_attach(id, 0, 6, &l), R == 0);
	for (int i = 0; i < 150; i++)
		EXPECT(shmkit_chan_send(&l, data, 8), R == 1);
	EXPECT(shmkit_chan_reclaim(&l), R == 0);
	{
		uint64_t rdy = *(uint64_t *)(void *)(base + 96);
		uint32_t *rs = (uint32_t *)(void *)(base + rdy + 384);
		for (int k = 100; k < 110; k++)
			rs[2 * k] = 1000 + (uint32_t)k; /* values out of range: their blocks are in no ring */
	}
	EXPECT(shmkit_chan_reclaim(&l), R == 10);
	EXPECT(shmkit_chan_available(&l), R == 60);
	EXPECT(shmkit_chan_close(&l), R == 0);
	EXPECT(shmkit_chan_attach(id, 0, 5, &l), R == 0);
	shmkit_munmap(id, 0);
	EXPECT(shmkit_chan_send(&l, data, 1), R == -EBADF);
	EXPECT(shmkit_chan_recv(&l), R == -EBADF);
	EXPECT(shmkit_chan_park(&l, 0, 0), R == -EBADF);
	EXPECT(shmkit_chan_close(&l), R == -EBADF);
}

int main(int argc, char **argv)
{
	signal(SIGALRM, on_alarm);
	alarm(20);
	fixed_cases();
	ops_cases();
	sync_cases();
	log_cases();
	heap_cases();
	chan_cases();
	if (argc >= 3 && strcmp(argv[1], "--random") == 0) {
		long n = atol(argv[2]);
		uint64_t seed = argc >= 4 ? strtoull(argv[3], NULL, 10) : (uint64_t)getpid();
		printf("hostile: random soak of %ld calls, seed %llu\n", n, (unsigned long long)seed);
		fflush(stdout);
		alarm((unsigned)(60 + n / 1000));
		random_cases(n, seed);
	}
	if (failures) {
		fprintf(stderr, "hostile: %d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("hostile: ok %d checks\n", checks);
	return 0;
}
