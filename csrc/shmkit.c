/* SPDX-License-Identifier: MIT */
/*
 * Portable part of the shmkit native core: the mapping table, bounds-checked atomics and futex
 * calls, the asynchronous wait multiplexer and error names. System calls go through os.h.
 */
#define _GNU_SOURCE
#include "shmkit.h"
#include "os.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                      */

/* A double that must be a non-negative integer below 2^53. */
static int to_u64(double v, uint64_t *out)
{
	if (!(v >= 0) || v > 9007199254740991.0 || v != floor(v))
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

/* A double that must be a non-negative number of milliseconds (Infinity allowed). */
static int valid_ms(double v) { return v >= 0; } /* false for NaN */

/* |err| without overflowing on INT32_MIN (which is no errno: it maps to a value no table holds). */
static int32_t err_abs(int32_t err) { return err == INT32_MIN ? INT32_MAX : err < 0 ? -err : err; }

int32_t shmkit_abi_version(void) { return SHMKIT_ABI_VERSION; }
int32_t shmkit_nop(void) { return 0; }
int32_t shmkit_page_size(void) { return os_page_size(); }
int32_t shmkit_name_max(void) { return os_name_max(); }

/* ------------------------------------------------------------------------------------------ */
/* Error names                                                                                  */

static const struct {
	int value;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" },     { ENOENT, "ENOENT" },       { ESRCH, "ESRCH" },
	{ EINTR, "EINTR" },     { EIO, "EIO" },             { EBADF, "EBADF" },
	{ EAGAIN, "EAGAIN" },   { ENOMEM, "ENOMEM" },       { EACCES, "EACCES" },
	{ EFAULT, "EFAULT" },   { EBUSY, "EBUSY" },         { EEXIST, "EEXIST" },
	{ ENODEV, "ENODEV" },   { ENOTDIR, "ENOTDIR" },     { EISDIR, "EISDIR" },
	{ EINVAL, "EINVAL" },   { ENFILE, "ENFILE" },       { EMFILE, "EMFILE" },
	{ EFBIG, "EFBIG" },     { ENOSPC, "ENOSPC" },       { ESPIPE, "ESPIPE" },
	{ EROFS, "EROFS" },     { ERANGE, "ERANGE" },       { ENAMETOOLONG, "ENAMETOOLONG" },
	{ ENOSYS, "ENOSYS" },   { ELOOP, "ELOOP" },         { EOVERFLOW, "EOVERFLOW" },
	{ ENOTSUP, "ENOTSUP" }, { ETIMEDOUT, "ETIMEDOUT" }, { ETXTBSY, "ETXTBSY" },
#ifdef EDQUOT /* not in the Windows CRT */
	{ EDQUOT, "EDQUOT" },
#endif
	{ EOWNERDEAD, "EOWNERDEAD" }, { ENXIO, "ENXIO" },
};

int32_t shmkit_errno_name(int32_t err, uint8_t *buf, uint32_t len)
{
	err = err_abs(err);
	const char *name = NULL;
	char tmp[32];
	for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++) {
		if (errno_names[i].value == err) {
			name = errno_names[i].name;
			break;
		}
	}
	if (!name) {
		snprintf(tmp, sizeof tmp, "E%ld", (long)err);
		name = tmp;
	}
	size_t n = strlen(name);
	if (!buf || len == 0)
		return (int32_t)n;
	if (n >= len)
		n = len - 1;
	memcpy(buf, name, n);
	buf[n] = 0;
	return (int32_t)n;
}

int32_t shmkit_errno_value(const uint8_t *name)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
		if (strcmp((const char *)name, errno_names[i].name) == 0)
			return errno_names[i].value;
	return -ENOENT;
}

int32_t shmkit_strerror(int32_t err, uint8_t *buf, uint32_t len)
{
	err = err_abs(err);
	char tmp[48];
	const char *msg = NULL;
	for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
		if (errno_names[i].value == err)
			msg = strerror(err); /* a known errno: its text is a constant string */
	if (!msg) {
		snprintf(tmp, sizeof tmp, "Unknown error %ld", (long)err);
		msg = tmp;
	}
	size_t n = strlen(msg);
	if (!buf || len == 0)
		return (int32_t)n;
	if (n >= len)
		n = len - 1;
	memcpy(buf, msg, n);
	buf[n] = 0;
	return (int32_t)n;
}

/* ------------------------------------------------------------------------------------------ */
/* Segment and file calls                                                                       */

int32_t shmkit_shm_create(const uint8_t *name, double size, uint32_t mode)
{
	uint64_t n;
	if (!name || to_u64(size, &n) < 0 || mode > 0777)
		return -EINVAL;
	return os_shm_create((const char *)name, n, mode);
}

int32_t shmkit_shm_open(const uint8_t *name, uint32_t flags)
{
	return name && (flags & ~SHMKIT_O_RDONLY) == 0 ? os_shm_open((const char *)name, flags) : -EINVAL;
}

int32_t shmkit_shm_unlink(const uint8_t *name)
{
	return name ? os_shm_unlink((const char *)name) : -EINVAL;
}

int32_t shmkit_memfd_create(const uint8_t *name, double size)
{
	uint64_t n;
	if (!name || to_u64(size, &n) < 0)
		return -EINVAL;
	return os_memfd_create((const char *)name, n);
}

int32_t shmkit_open_proc_fd(int32_t pid, int32_t fd, uint32_t flags)
{
	if (pid <= 0 || fd < 0 || (flags & ~SHMKIT_O_RDONLY) != 0)
		return -EINVAL;
	return os_open_proc_fd(pid, fd, flags);
}

int32_t shmkit_open(const uint8_t *path, uint32_t flags, uint32_t mode)
{
	const uint32_t known = SHMKIT_O_RDONLY | SHMKIT_O_CREATE | SHMKIT_O_EXCL | SHMKIT_O_TRUNC;
	if (!path || (flags & ~known) != 0 || mode > 07777)
		return -EINVAL;
	return os_open((const char *)path, flags, mode);
}

int32_t shmkit_unlink(const uint8_t *path) { return path ? os_unlink((const char *)path) : -EINVAL; }

int32_t shmkit_close(int32_t fd) { return fd < 0 ? -EBADF : os_close(fd); }

int32_t shmkit_ftruncate(int32_t fd, double size)
{
	uint64_t n;
	if (to_u64(size, &n) < 0 || n > INT64_MAX)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	return os_ftruncate(fd, n);
}

int32_t shmkit_fallocate(int32_t fd, double offset, double length)
{
	uint64_t o, n;
	if (to_u64(offset, &o) < 0 || to_u64(length, &n) < 0 || o + n > 9007199254740991ull)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	if (n == 0)
		return 0;
	return os_fallocate(fd, o, n);
}

int32_t shmkit_fstat(int32_t fd, double *out) { return !out ? -EINVAL : fd < 0 ? -EBADF : os_fstat(fd, out); }

int32_t shmkit_stat(const uint8_t *path, double *out)
{
	return path && out ? os_stat((const char *)path, out) : -EINVAL;
}

int32_t shmkit_fchmod(int32_t fd, uint32_t mode) { return mode > 07777 ? -EINVAL : fd < 0 ? -EBADF : os_fchmod(fd, mode); }

/* ------------------------------------------------------------------------------------------ */
/* Mapping table                                                                                */
/*
 * id = (generation << 16) | slot. Generations make a stale id (after munmap and slot reuse) fail
 * with -EBADF instead of reaching another mapping. Slot bases are read without the lock by the
 * atomic and futex calls of the JS thread that owns the mapping; the lock serializes map/unmap.
 */

#define MAP_SLOTS 65536

struct map_slot {
	_Atomic(uintptr_t) base;
	uint64_t length;
	uint32_t gen; /* 1..32767 */
};

static struct map_slot maps[MAP_SLOTS];
static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t maps_hint;

static struct map_slot *slot_of(int32_t id)
{
	if (id <= 0)
		return NULL;
	uint32_t s = (uint32_t)id & 0xffffu, gen = (uint32_t)id >> 16;
	struct map_slot *m = &maps[s];
	if (m->gen != gen || atomic_load_explicit(&m->base, memory_order_acquire) == 0)
		return NULL;
	return m;
}

/* Address of [offset, offset + size) inside mapping id, aligned to size, or NULL. */
static void *word_at(int32_t id, double offset, uint64_t size, int *err)
{
	struct map_slot *m = slot_of(id);
	if (!m) {
		*err = -EBADF;
		return NULL;
	}
	uint64_t off;
	if (to_u64(offset, &off) < 0 || off % size != 0 || off > m->length || m->length - off < size) {
		*err = -EINVAL;
		return NULL;
	}
	return (void *)(atomic_load_explicit(&m->base, memory_order_relaxed) + off);
}

int32_t shmkit_mmap(int32_t fd, double length, double offset, uint32_t flags)
{
	uint64_t len, off;
	const uint32_t known = SHMKIT_MAP_WRITE | SHMKIT_MAP_PRIVATE | SHMKIT_MAP_POPULATE;
	if (to_u64(length, &len) < 0 || to_u64(offset, &off) < 0 || len == 0 || (flags & ~known) != 0 ||
	    off % (uint64_t)os_page_size() != 0 || fd < -1)
		return -EINVAL;
	void *addr;
	int r = os_mmap(fd, len, off, flags, &addr);
	if (r < 0)
		return r;
	pthread_mutex_lock(&maps_lock);
	for (uint32_t i = 0; i < MAP_SLOTS; i++) {
		uint32_t s = (maps_hint + i) % MAP_SLOTS;
		if (s == 0)
			continue; /* id 0 is never valid */
		struct map_slot *m = &maps[s];
		if (atomic_load_explicit(&m->base, memory_order_relaxed) != 0)
			continue;
		m->gen = m->gen % 32767u + 1u;
		m->length = len;
		atomic_store_explicit(&m->base, (uintptr_t)addr, memory_order_release);
		maps_hint = s + 1;
		pthread_mutex_unlock(&maps_lock);
		return (int32_t)((m->gen << 16) | s);
	}
	pthread_mutex_unlock(&maps_lock);
	os_munmap(addr, len);
	return -EMFILE;
}

double shmkit_map_addr(int32_t id)
{
	struct map_slot *m = slot_of(id);
	return m ? (double)atomic_load_explicit(&m->base, memory_order_relaxed) : -EBADF;
}

double shmkit_map_length(int32_t id)
{
	struct map_slot *m = slot_of(id);
	return m ? (double)m->length : -EBADF;
}

static void waiter_forget_map(uintptr_t base, uint64_t length);

int32_t shmkit_munmap(int32_t id, uint32_t mode)
{
	if (mode != SHMKIT_UNMAP_RELEASE && mode != SHMKIT_UNMAP_TOMBSTONE)
		return -EINVAL;
	pthread_mutex_lock(&maps_lock);
	struct map_slot *m = slot_of(id);
	if (!m) {
		pthread_mutex_unlock(&maps_lock);
		return -EBADF;
	}
	uintptr_t base = atomic_load_explicit(&m->base, memory_order_relaxed);
	uint64_t len = m->length;
	atomic_store_explicit(&m->base, 0, memory_order_release);
	pthread_mutex_unlock(&maps_lock);
	waiter_forget_map(base, len);
	return mode == SHMKIT_UNMAP_TOMBSTONE ? os_tombstone((void *)base, len)
					      : os_munmap((void *)base, len);
}

int32_t shmkit_mremap(int32_t id, double new_length)
{
	uint64_t n;
	if (to_u64(new_length, &n) < 0 || n == 0)
		return -EINVAL;
	pthread_mutex_lock(&maps_lock);
	struct map_slot *m = slot_of(id);
	if (!m) {
		pthread_mutex_unlock(&maps_lock);
		return -EBADF;
	}
	uintptr_t base = atomic_load_explicit(&m->base, memory_order_relaxed);
	uint64_t old_length = m->length;
	pthread_mutex_unlock(&maps_lock);
	waiter_forget_map(base, old_length);
	void *addr;
	int r = os_mremap((void *)base, old_length, n, &addr);
	if (r < 0)
		return r;
	pthread_mutex_lock(&maps_lock);
	m->length = n;
	atomic_store_explicit(&m->base, (uintptr_t)addr, memory_order_release);
	pthread_mutex_unlock(&maps_lock);
	return 0;
}

static int range_of(int32_t id, double offset, double length, void **addr, uint64_t *len)
{
	struct map_slot *m = slot_of(id);
	if (!m)
		return -EBADF;
	uint64_t off, n;
	if (to_u64(offset, &off) < 0 || to_u64(length, &n) < 0 || off > m->length || m->length - off < n)
		return -EINVAL;
	*addr = (void *)(atomic_load_explicit(&m->base, memory_order_relaxed) + off);
	*len = n;
	return 0;
}

int32_t shmkit_msync(int32_t id, double offset, double length, uint32_t sync)
{
	void *addr;
	uint64_t n;
	if (sync > 1)
		return -EINVAL;
	int r = range_of(id, offset, length, &addr, &n);
	if (r < 0)
		return r;
	/* msync needs a page-aligned start: round down, extend the length accordingly. */
	uintptr_t page = (uintptr_t)os_page_size();
	uintptr_t start = (uintptr_t)addr & ~(page - 1);
	return n == 0 ? 0 : os_msync((void *)start, n + ((uintptr_t)addr - start), sync);
}

int32_t shmkit_madvise(int32_t id, double offset, double length, int32_t advice)
{
	void *addr;
	uint64_t n;
	int r = range_of(id, offset, length, &addr, &n);
	if (r < 0)
		return r;
	uintptr_t page = (uintptr_t)os_page_size();
	uintptr_t start = (uintptr_t)addr & ~(page - 1);
	return n == 0 ? 0 : os_madvise((void *)start, n + ((uintptr_t)addr - start), advice);
}

int32_t shmkit_copy(int32_t dst_id, double dst_off, int32_t src_id, double src_off, double n)
{
	void *dst, *src;
	uint64_t len, len2;
	int r = range_of(dst_id, dst_off, n, &dst, &len);
	if (r < 0)
		return r;
	r = range_of(src_id, src_off, n, &src, &len2);
	if (r < 0)
		return r;
	memmove(dst, src, len);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Futex                                                                                        */

#if !defined(_WIN32)
#include <signal.h>

/* ------------------------------------------------------------------------------------------ */
/* Signals: a counting wrapper chained in front of the process's own handlers (POSIX)          */
/*
 * A runtime delivers a signal to JavaScript from its event loop, which never turns while the JS
 * thread blocks in a futex wait. So, before a blocking wait, every watched signal whose handler is
 * neither SIG_DFL, SIG_IGN nor ours gets our wrapper installed in front of it (same mask, same
 * flags plus SA_SIGINFO). The wrapper counts the signal, wakes the word the wait sleeps on, then
 * calls the saved handler exactly as the kernel would have. All of it is async-signal-safe:
 * atomics and the futex system call. Saved actions live in two slots per signal; the wrapper
 * reads the slot published last, so re-wrapping (a runtime that reinstalled its handler) never
 * shows it a half-written action.
 */

static const int watched[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define NWATCHED (sizeof watched / sizeof watched[0])

static struct sigaction saved_action[NWATCHED][2];
static int saved_slot[NWATCHED];  /* atomic: which slot holds the current saved action */
static uint32_t signal_counter;   /* atomic */
static uint32_t *signal_word;     /* atomic: the word the JS thread's wait sleeps on */
static int64_t signal_armed_ns;   /* atomic: time of the last os_signal_arm scan */
static pthread_mutex_t signal_lock = PTHREAD_MUTEX_INITIALIZER;

static void signal_wrapper(int sig, siginfo_t *info, void *ctx)
{
	int saved_errno = errno;
	__atomic_fetch_add(&signal_counter, 1, __ATOMIC_SEQ_CST);
	uint32_t *word = __atomic_load_n(&signal_word, __ATOMIC_SEQ_CST);
	if (word) /* spurious wakes are part of every waiter's protocol; EFAULT if it was unmapped is fine */
		os_futex_wake(word, 0x7fffffff); /* one system call: async-signal-safe */
	errno = saved_errno;
	for (size_t i = 0; i < NWATCHED; i++) {
		if (watched[i] != sig)
			continue;
		const struct sigaction *a = &saved_action[i][__atomic_load_n(&saved_slot[i], __ATOMIC_ACQUIRE)];
		if (a->sa_flags & SA_SIGINFO) {
			if (a->sa_sigaction)
				a->sa_sigaction(sig, info, ctx);
		} else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN && a->sa_handler) {
			a->sa_handler(sig);
		}
		return;
	}
}

static int is_ours(const struct sigaction *a)
{
	return (a->sa_flags & SA_SIGINFO) && a->sa_sigaction == signal_wrapper;
}

static void signal_arm(void)
{
	/* A scan costs one sigaction per watched signal: at most one per 20 ms per process. */
	int64_t now = (int64_t)os_now_ns();
	if (now - __atomic_load_n(&signal_armed_ns, __ATOMIC_RELAXED) < 20000000)
		return;
	pthread_mutex_lock(&signal_lock);
	__atomic_store_n(&signal_armed_ns, now, __ATOMIC_RELAXED);
	for (size_t i = 0; i < NWATCHED; i++) {
		struct sigaction cur;
		if (sigaction(watched[i], NULL, &cur) < 0 || is_ours(&cur))
			continue;
		if (!(cur.sa_flags & SA_SIGINFO) && (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN))
			continue; /* the default action (or none) stays */
		int slot = 1 - __atomic_load_n(&saved_slot[i], __ATOMIC_RELAXED);
		saved_action[i][slot] = cur;
		__atomic_store_n(&saved_slot[i], slot, __ATOMIC_RELEASE);
		struct sigaction mine = cur;
		mine.sa_flags |= SA_SIGINFO;
		mine.sa_sigaction = signal_wrapper;
		/* Install only if the handler is still the one saved (another thread may have changed it
		 * meanwhile: then the next scan wraps the new one). */
		struct sigaction prev;
		if (sigaction(watched[i], &mine, &prev) == 0 && !is_ours(&prev) &&
		    ((prev.sa_flags & SA_SIGINFO) ? (void *)prev.sa_sigaction : (void *)prev.sa_handler) !=
			    ((cur.sa_flags & SA_SIGINFO) ? (void *)cur.sa_sigaction : (void *)cur.sa_handler))
			sigaction(watched[i], &prev, NULL);
	}
	pthread_mutex_unlock(&signal_lock);
}

static uint32_t signal_count(void) { return __atomic_load_n(&signal_counter, __ATOMIC_SEQ_CST); }
static void signal_target(uint32_t *addr) { __atomic_store_n(&signal_word, addr, __ATOMIC_SEQ_CST); }
#else /* Windows: no POSIX signals; Ctrl-C handlers run on a thread of their own (docs/platforms.md) */
static void signal_arm(void) {}
static uint32_t signal_count(void) { return 0; }
static void signal_target(uint32_t *addr) { (void)addr; }
#endif

/* The longest a blocking wait sleeps before it looks at the signal counter again. */
#define WAIT_SLICE_MS 50.0

int32_t shmkit_futex_wait(int32_t id, double offset, uint32_t expected, double timeout_ms)
{
	int err;
	if (!valid_ms(timeout_ms))
		return -EINVAL;
	uint32_t *w = word_at(id, offset, 4, &err);
	if (!w)
		return err;
	/* Signals delivered from here on interrupt the wait (one that came earlier had its chance:
	 * its handler runs as soon as the caller returns to its event loop). */
	uint32_t seen = signal_count();
	signal_arm();
	double start = os_now_ns();
	for (;;) {
		double left = timeout_ms - (os_now_ns() - start) / 1e6;
		if (left < 0)
			left = 0;
		signal_target(w);
		int r = os_futex_wait(w, expected, left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
		signal_target(NULL);
		if (signal_count() != seen)
			return -EINTR;
		if (r == 2) {
			/* Interrupted by a signal shmkit does not watch (SIGCHLD from a child, a profiler):
			 * not a wake. Wait out the rest; a zero or spent timeout is a timeout. */
			if (left <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (r != -ETIMEDOUT)
			return r; /* 0 woken (or spurious), 1 the word changed, or an error */
		if (left <= WAIT_SLICE_MS)
			return -ETIMEDOUT;
		signal_arm(); /* a handler installed while we slept is wrapped from the next slice on */
	}
}

double shmkit_signal_count(void) { return (double)signal_count(); }

int32_t shmkit_futex_wake(int32_t id, double offset, int32_t count)
{
	int err;
	uint32_t *w = word_at(id, offset, 4, &err);
	if (!w)
		return err;
	return os_futex_wake(w, count <= 0 ? 0x7fffffff : count);
}

/* ------------------------------------------------------------------------------------------ */
/* Atomics                                                                                      */

static int valid_order(int32_t o)
{
	return o == SHMKIT_RELAXED || o == 1 || o == SHMKIT_ACQUIRE || o == SHMKIT_RELEASE ||
	       o == SHMKIT_ACQ_REL || o == SHMKIT_SEQ_CST;
}

/* Loads cannot be release/acq_rel, stores cannot be acquire/acq_rel: C11 forbids it. */
static int load_order(int32_t o) { return o == SHMKIT_RELEASE || o == SHMKIT_ACQ_REL ? SHMKIT_ACQUIRE : o; }
static int store_order(int32_t o) { return o == SHMKIT_ACQUIRE || o == 1 || o == SHMKIT_ACQ_REL ? SHMKIT_RELEASE : o; }

#define WORD(T, size)                                   \
	int err;                                        \
	if (!valid_order(order))                        \
		return -EINVAL;                         \
	T *w = word_at(id, offset, size, &err);         \
	if (!w)                                         \
		return err

double shmkit_atomic_load_u32(int32_t id, double offset, int32_t order)
{
	WORD(uint32_t, 4);
	switch (load_order(order)) {
	case SHMKIT_RELAXED: return __atomic_load_n(w, __ATOMIC_RELAXED);
	case SHMKIT_SEQ_CST: return __atomic_load_n(w, __ATOMIC_SEQ_CST);
	default: return __atomic_load_n(w, __ATOMIC_ACQUIRE);
	}
}

int32_t shmkit_atomic_store_u32(int32_t id, double offset, uint32_t value, int32_t order)
{
	WORD(uint32_t, 4);
	switch (store_order(order)) {
	case SHMKIT_RELAXED: __atomic_store_n(w, value, __ATOMIC_RELAXED); break;
	case SHMKIT_SEQ_CST: __atomic_store_n(w, value, __ATOMIC_SEQ_CST); break;
	default: __atomic_store_n(w, value, __ATOMIC_RELEASE); break;
	}
	return 0;
}

double shmkit_atomic_exchange_u32(int32_t id, double offset, uint32_t value, int32_t order)
{
	WORD(uint32_t, 4);
	return __atomic_exchange_n(w, value, __ATOMIC_SEQ_CST);
}

double shmkit_atomic_cas_u32(int32_t id, double offset, uint32_t expected, uint32_t desired, int32_t order)
{
	WORD(uint32_t, 4);
	uint32_t e = expected;
	__atomic_compare_exchange_n(w, &e, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return e; /* the previous value: equals expected exactly when the swap happened */
}

double shmkit_atomic_fetch_add_u32(int32_t id, double offset, uint32_t delta, int32_t order)
{
	WORD(uint32_t, 4);
	if (order == SHMKIT_RELAXED)
		return __atomic_fetch_add(w, delta, __ATOMIC_RELAXED);
	return __atomic_fetch_add(w, delta, __ATOMIC_SEQ_CST);
}

int32_t shmkit_atomic_load_u64(int32_t id, double offset, int32_t order, uint64_t *io)
{
	if (!io)
		return -EINVAL;
	WORD(uint64_t, 8);
	io[0] = load_order(order) == SHMKIT_RELAXED ? __atomic_load_n(w, __ATOMIC_RELAXED)
						   : __atomic_load_n(w, __ATOMIC_SEQ_CST);
	return 0;
}

int32_t shmkit_atomic_store_u64(int32_t id, double offset, int32_t order, uint64_t *io)
{
	if (!io)
		return -EINVAL;
	WORD(uint64_t, 8);
	if (store_order(order) == SHMKIT_RELAXED)
		__atomic_store_n(w, io[0], __ATOMIC_RELAXED);
	else if (store_order(order) == SHMKIT_RELEASE)
		__atomic_store_n(w, io[0], __ATOMIC_RELEASE);
	else
		__atomic_store_n(w, io[0], __ATOMIC_SEQ_CST);
	return 0;
}

int32_t shmkit_atomic_exchange_u64(int32_t id, double offset, int32_t order, uint64_t *io)
{
	if (!io)
		return -EINVAL;
	WORD(uint64_t, 8);
	io[0] = __atomic_exchange_n(w, io[0], __ATOMIC_SEQ_CST);
	return 0;
}

int32_t shmkit_atomic_cas_u64(int32_t id, double offset, int32_t order, uint64_t *io)
{
	if (!io)
		return -EINVAL;
	WORD(uint64_t, 8);
	return __atomic_compare_exchange_n(w, &io[0], io[1], 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) ? 1 : 0;
}

int32_t shmkit_atomic_fetch_add_u64(int32_t id, double offset, int32_t order, uint64_t *io)
{
	if (!io)
		return -EINVAL;
	WORD(uint64_t, 8);
	io[0] = __atomic_fetch_add(w, io[0], __ATOMIC_SEQ_CST);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Asynchronous wait multiplexer                                                                */
/*
 * JS registers (mapping, offset, expected) and gets a token. Native threads park on up to
 * WAIT_GROUP_MAX distinct words each with futex_waitv (plus a control word that wakes them when
 * the registry changes). A registration completes when its word differs from the expected value;
 * completed tokens queue up until shmkit_waiter_next() hands them to JS. Many registrations on the
 * same word share one futex slot, so thousands of pending waits on one ring cost one entry.
 *
 * Lock order: w.lock only (maps_lock is never held together with it).
 */

#define WAIT_GROUP_MAX 127 /* futex_waitv takes at most 128 words; one is the control word */
#define WAIT_THREADS_MAX 64

struct wait_reg {
	int32_t token;
	uint32_t expected;
	uint32_t *addr;
};

/* Distinct (addr, expected) pairs with the number of registrations on each. */
struct wait_group {
	uint32_t *addr;
	uint32_t expected;
	uint32_t refs;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	struct wait_reg *regs;
	size_t nregs, capregs;
	struct wait_group *groups;
	size_t ngroups, capgroups;
	int32_t *done;
	size_t ndone, capdone;
	int32_t next_token;
	uint32_t ctl; /* bumped and woken whenever the registry changes */
	int nthreads;
	int interrupted;
} w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, NULL, 0, 0, NULL, 0, 0, 1, 0, 0, 0 };

static void ctl_bump_locked(void)
{
	__atomic_fetch_add(&w.ctl, 1, __ATOMIC_SEQ_CST);
	os_futex_wake(&w.ctl, 0x7fffffff);
}

static int group_ref_locked(uint32_t *addr, uint32_t expected)
{
	for (size_t i = 0; i < w.ngroups; i++) {
		if (w.groups[i].addr == addr && w.groups[i].expected == expected) {
			w.groups[i].refs++;
			return 0;
		}
	}
	if (w.ngroups == w.capgroups) {
		size_t cap = w.capgroups ? w.capgroups * 2 : 16;
		struct wait_group *g = realloc(w.groups, cap * sizeof *g);
		if (!g)
			return -ENOMEM;
		w.groups = g;
		w.capgroups = cap;
	}
	w.groups[w.ngroups++] = (struct wait_group){ addr, expected, 1 };
	return 0;
}

static void group_unref_locked(uint32_t *addr, uint32_t expected)
{
	for (size_t i = 0; i < w.ngroups; i++) {
		if (w.groups[i].addr == addr && w.groups[i].expected == expected) {
			if (--w.groups[i].refs == 0)
				w.groups[i] = w.groups[--w.ngroups];
			return;
		}
	}
}

static int push_done_locked(int32_t token)
{
	if (w.ndone == w.capdone) {
		size_t cap = w.capdone ? w.capdone * 2 : 64;
		int32_t *d = realloc(w.done, cap * sizeof *d);
		if (!d)
			return -ENOMEM;
		w.done = d;
		w.capdone = cap;
	}
	w.done[w.ndone++] = token;
	return 0;
}

/* Move every registration whose word changed to the done queue. */
static int sweep_locked(void)
{
	int moved = 0;
	size_t j = 0;
	for (size_t i = 0; i < w.nregs; i++) {
		struct wait_reg *r = &w.regs[i];
		if (__atomic_load_n(r->addr, __ATOMIC_SEQ_CST) != r->expected && push_done_locked(r->token) == 0) {
			group_unref_locked(r->addr, r->expected);
			moved++;
			continue;
		}
		w.regs[j++] = *r;
	}
	w.nregs = j;
	if (moved)
		pthread_cond_broadcast(&w.done_cond);
	return moved;
}

static void *waiter_thread(void *arg)
{
	size_t index = (size_t)(intptr_t)arg;
	uint32_t *addrs[WAIT_GROUP_MAX + 1];
	uint32_t expected[WAIT_GROUP_MAX + 1];
	for (;;) {
		pthread_mutex_lock(&w.lock);
		sweep_locked();
		int n = 0;
		addrs[n] = &w.ctl;
		expected[n++] = __atomic_load_n(&w.ctl, __ATOMIC_SEQ_CST);
		/* This thread parks on groups [index * MAX, (index + 1) * MAX). */
		for (size_t g = index * WAIT_GROUP_MAX; g < w.ngroups && n <= WAIT_GROUP_MAX; g++) {
			addrs[n] = w.groups[g].addr;
			expected[n++] = w.groups[g].expected;
		}
		pthread_mutex_unlock(&w.lock);
		int r = os_futex_waitv(addrs, expected, n);
		if (r == -ENOSYS) /* kernel < 5.16: fall back to polling the registry every millisecond */
			os_futex_wait(&w.ctl, expected[0], 1.0);
	}
	return NULL;
}

static int ensure_threads_locked(void)
{
	int need = (int)((w.ngroups + WAIT_GROUP_MAX - 1) / WAIT_GROUP_MAX);
	while (w.nthreads < need && w.nthreads < WAIT_THREADS_MAX) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		int r = pthread_create(&t, &attr, waiter_thread, (void *)(intptr_t)w.nthreads);
		pthread_attr_destroy(&attr);
		if (r != 0)
			return -r;
		w.nthreads++;
	}
	return 0;
}

int32_t shmkit_waiter_add(int32_t id, double offset, uint32_t expected)
{
	int err;
	uint32_t *addr = word_at(id, offset, 4, &err);
	if (!addr)
		return err;
	pthread_mutex_lock(&w.lock);
	if (w.nregs == w.capregs) {
		size_t cap = w.capregs ? w.capregs * 2 : 64;
		struct wait_reg *r = realloc(w.regs, cap * sizeof *r);
		if (!r) {
			pthread_mutex_unlock(&w.lock);
			return -ENOMEM;
		}
		w.regs = r;
		w.capregs = cap;
	}
	if (group_ref_locked(addr, expected) < 0) {
		pthread_mutex_unlock(&w.lock);
		return -ENOMEM;
	}
	int32_t token = w.next_token;
	w.next_token = w.next_token == 0x7fffffff ? 1 : w.next_token + 1;
	w.regs[w.nregs++] = (struct wait_reg){ token, expected, addr };
	int r = ensure_threads_locked();
	if (r < 0 && w.nthreads == 0) {
		w.nregs--;
		group_unref_locked(addr, expected);
		pthread_mutex_unlock(&w.lock);
		return r;
	}
	ctl_bump_locked();
	pthread_mutex_unlock(&w.lock);
	return token;
}

int32_t shmkit_waiter_cancel(int32_t token)
{
	int32_t found = -ENOENT;
	pthread_mutex_lock(&w.lock);
	for (size_t i = 0; i < w.nregs; i++) {
		if (w.regs[i].token == token) {
			group_unref_locked(w.regs[i].addr, w.regs[i].expected);
			w.regs[i] = w.regs[--w.nregs];
			found = 0;
			ctl_bump_locked();
			break;
		}
	}
	if (found < 0) {
		for (size_t i = 0; i < w.ndone; i++) {
			if (w.done[i] == token) {
				memmove(&w.done[i], &w.done[i + 1], (w.ndone - i - 1) * sizeof *w.done);
				w.ndone--;
				found = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&w.lock);
	return found;
}

/* Registrations on an unmapped range complete at once (JS re-checks and sees a closed object). */
static void waiter_forget_map(uintptr_t base, uint64_t length)
{
	pthread_mutex_lock(&w.lock);
	size_t j = 0;
	int moved = 0;
	for (size_t i = 0; i < w.nregs; i++) {
		uintptr_t a = (uintptr_t)w.regs[i].addr;
		if (a >= base && a < base + length && push_done_locked(w.regs[i].token) == 0) {
			group_unref_locked(w.regs[i].addr, w.regs[i].expected);
			moved = 1;
			continue;
		}
		w.regs[j++] = w.regs[i];
	}
	w.nregs = j;
	if (moved) {
		pthread_cond_broadcast(&w.done_cond);
		ctl_bump_locked();
	}
	pthread_mutex_unlock(&w.lock);
}

int32_t shmkit_waiter_next(int32_t *out, int32_t max, double timeout_ms)
{
	if (!out || max <= 0 || !valid_ms(timeout_ms))
		return -EINVAL;
	pthread_mutex_lock(&w.lock);
	sweep_locked();
	if (w.ndone == 0 && !w.interrupted && timeout_ms != 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double ms = timeout_ms > 3600e3 ? 3600e3 : timeout_ms;
		long long ns = ts.tv_nsec + (long long)(ms * 1e6);
		ts.tv_sec += ns / 1000000000LL;
		ts.tv_nsec = ns % 1000000000LL;
		while (w.ndone == 0 && !w.interrupted) {
			if (pthread_cond_timedwait(&w.done_cond, &w.lock, &ts) == ETIMEDOUT)
				break;
		}
	}
	w.interrupted = 0;
	int32_t n = 0;
	while (n < max && (size_t)n < w.ndone) {
		out[n] = w.done[n];
		n++;
	}
	if (n > 0) {
		memmove(w.done, w.done + n, (w.ndone - (size_t)n) * sizeof *w.done);
		w.ndone -= (size_t)n;
	}
	pthread_mutex_unlock(&w.lock);
	return n;
}

int32_t shmkit_waiter_interrupt(void)
{
	pthread_mutex_lock(&w.lock);
	w.interrupted = 1;
	pthread_cond_broadcast(&w.done_cond);
	pthread_mutex_unlock(&w.lock);
	return 0;
}

int32_t shmkit_waiter_pending(void)
{
	pthread_mutex_lock(&w.lock);
	int32_t n = (int32_t)(w.nregs + w.ndone);
	pthread_mutex_unlock(&w.lock);
	return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Processes, clocks                                                                            */

int32_t shmkit_getpid(void) { return os_getpid(); }
int32_t shmkit_geteuid(void) { return os_geteuid(); }

double shmkit_proc_start_time(int32_t pid)
{
	return pid <= 0 ? -EINVAL : (double)os_proc_start_time(pid);
}

int32_t shmkit_proc_alive(int32_t pid, double start_time)
{
	/* A NaN start time (from a corrupt word) compares like an unknown one (< 0): never rob the living. */
	return pid <= 0 ? 0 : os_proc_alive(pid, start_time != start_time ? -1 : start_time);
}

int32_t shmkit_shm_holders(const uint8_t *name, int32_t *out, int32_t max)
{
	return name && out && max >= 0 ? os_shm_holders((const char *)name, out, max) : -EINVAL;
}

int32_t shmkit_shm_list(uint8_t *out, uint32_t len)
{
	return out || len == 0 ? os_shm_list(out, len) : -EINVAL;
}

double shmkit_now_ns(void) { return os_now_ns(); }
int32_t shmkit_pin_cpu(int32_t cpu) { return cpu < 0 ? -EINVAL : os_pin_cpu(cpu); }
int32_t shmkit_rusage(double *out) { return out ? os_rusage(out) : -EINVAL; }

/* ------------------------------------------------------------------------------------------ */
/* Layout mirror (csrc/shmkit_layout.h), for tests that compare it with the TypeScript constants */

#include "shmkit_layout.h"

/* "kind.field" -> offsetof, "kind.field.size" -> sizeof the field (of one element for a trailing
 * array), "kind.size" -> sizeof the struct. Generated from the structs, never typed by hand. */
#define LAYOUT_FIELD(k, T, m)                                                                   \
	{ #k "." #m, (int32_t)offsetof(struct T, m) },                                          \
	{ #k "." #m ".size", (int32_t)sizeof(((struct T *)0)->m) }
#define LAYOUT_ARRAY(k, T, m)                                                                   \
	{ #k "." #m, (int32_t)offsetof(struct T, m) },                                          \
	{ #k "." #m ".size", (int32_t)sizeof(((struct T *)0)->m[0]) }
#define LAYOUT_SIZE(k, T) { #k ".size", (int32_t)sizeof(struct T) }

static const struct {
	const char *name;
	int32_t value;
} layout_table[] = {
	LAYOUT_SIZE(common, shmkit_common),
	LAYOUT_FIELD(common, shmkit_common, magic),
	LAYOUT_FIELD(common, shmkit_common, layoutVersion),
	LAYOUT_FIELD(common, shmkit_common, kind),
	LAYOUT_FIELD(common, shmkit_common, state),
	LAYOUT_FIELD(common, shmkit_common, headerSize),
	LAYOUT_FIELD(common, shmkit_common, byteLength),
	LAYOUT_FIELD(common, shmkit_common, creatorPid),
	LAYOUT_FIELD(common, shmkit_common, flags),
	LAYOUT_FIELD(common, shmkit_common, creatorStart),
	LAYOUT_FIELD(common, shmkit_common, createdMs),
	LAYOUT_FIELD(common, shmkit_common, reserved),

	LAYOUT_SIZE(ring, shmkit_ring),
	LAYOUT_FIELD(ring, shmkit_ring, common),
	LAYOUT_FIELD(ring, shmkit_ring, capacity),
	LAYOUT_FIELD(ring, shmkit_ring, slotCount),
	LAYOUT_FIELD(ring, shmkit_ring, mode),
	LAYOUT_FIELD(ring, shmkit_ring, slotsOffset),
	LAYOUT_FIELD(ring, shmkit_ring, reserved),
	LAYOUT_FIELD(ring, shmkit_ring, tail),
	LAYOUT_FIELD(ring, shmkit_ring, pad1),
	LAYOUT_FIELD(ring, shmkit_ring, head),
	LAYOUT_FIELD(ring, shmkit_ring, pad2),
	LAYOUT_FIELD(ring, shmkit_ring, consWaiters),
	LAYOUT_FIELD(ring, shmkit_ring, prodWaiters),
	LAYOUT_FIELD(ring, shmkit_ring, consSleep),
	LAYOUT_FIELD(ring, shmkit_ring, prodSleep),
	LAYOUT_FIELD(ring, shmkit_ring, pad3),
	LAYOUT_FIELD(ring, shmkit_ring, producerRole),
	LAYOUT_FIELD(ring, shmkit_ring, producerToken),
	LAYOUT_FIELD(ring, shmkit_ring, pad4),
	LAYOUT_FIELD(ring, shmkit_ring, consumerRole),
	LAYOUT_FIELD(ring, shmkit_ring, consumerToken),
	LAYOUT_FIELD(ring, shmkit_ring, pad5),
	LAYOUT_FIELD(ring, shmkit_ring, bulkLock),
	LAYOUT_FIELD(ring, shmkit_ring, bulkPhase),
	LAYOUT_FIELD(ring, shmkit_ring, reserved2),
	LAYOUT_ARRAY(ring, shmkit_ring, slots),
	LAYOUT_SIZE(ring_slot, shmkit_ring_slot),
	LAYOUT_FIELD(ring_slot, shmkit_ring_slot, value),
	LAYOUT_FIELD(ring_slot, shmkit_ring_slot, seq),

	LAYOUT_SIZE(mempool, shmkit_mempool),
	LAYOUT_FIELD(mempool, shmkit_mempool, common),
	LAYOUT_FIELD(mempool, shmkit_mempool, count),
	LAYOUT_FIELD(mempool, shmkit_mempool, blockSize),
	LAYOUT_FIELD(mempool, shmkit_mempool, blockStride),
	LAYOUT_FIELD(mempool, shmkit_mempool, maxProcesses),
	LAYOUT_FIELD(mempool, shmkit_mempool, slotsOffset),
	LAYOUT_FIELD(mempool, shmkit_mempool, statesOffset),
	LAYOUT_FIELD(mempool, shmkit_mempool, dataOffset),
	LAYOUT_FIELD(mempool, shmkit_mempool, reserved),
	LAYOUT_FIELD(mempool, shmkit_mempool, waiters),
	LAYOUT_FIELD(mempool, shmkit_mempool, wakeSeq),
	LAYOUT_FIELD(mempool, shmkit_mempool, reserved2),
	LAYOUT_ARRAY(mempool, shmkit_mempool, slots),
	LAYOUT_SIZE(mempool_slot, shmkit_mempool_slot),
	LAYOUT_FIELD(mempool_slot, shmkit_mempool_slot, identity),
	LAYOUT_FIELD(mempool_slot, shmkit_mempool_slot, gen),
	LAYOUT_FIELD(mempool_slot, shmkit_mempool_slot, parked),

	LAYOUT_SIZE(channel, shmkit_channel),
	LAYOUT_FIELD(channel, shmkit_channel, common),
	LAYOUT_FIELD(channel, shmkit_channel, slots),
	LAYOUT_FIELD(channel, shmkit_channel, slotSize),
	LAYOUT_FIELD(channel, shmkit_channel, mode),
	LAYOUT_FIELD(channel, shmkit_channel, entrySize),
	LAYOUT_FIELD(channel, shmkit_channel, blockStride),
	LAYOUT_FIELD(channel, shmkit_channel, procsOffset),
	LAYOUT_FIELD(channel, shmkit_channel, readyOffset),
	LAYOUT_FIELD(channel, shmkit_channel, tableOffset),
	LAYOUT_FIELD(channel, shmkit_channel, dataOffset),
	LAYOUT_FIELD(channel, shmkit_channel, reclaimed),
	LAYOUT_FIELD(channel, shmkit_channel, maxProcesses),
	LAYOUT_FIELD(channel, shmkit_channel, waiters),
	LAYOUT_FIELD(channel, shmkit_channel, wakeSeq),
	LAYOUT_FIELD(channel, shmkit_channel, reserved),
	LAYOUT_SIZE(channel_entry, shmkit_channel_entry),
	LAYOUT_FIELD(channel_entry, shmkit_channel_entry, length),
	LAYOUT_FIELD(channel_entry, shmkit_channel_entry, state),
	LAYOUT_SIZE(channel_proc, shmkit_channel_proc),
	LAYOUT_FIELD(channel_proc, shmkit_channel_proc, identity),
	LAYOUT_FIELD(channel_proc, shmkit_channel_proc, gen),
	LAYOUT_FIELD(channel_proc, shmkit_channel_proc, op),
	LAYOUT_FIELD(channel_proc, shmkit_channel_proc, parked),
	LAYOUT_FIELD(channel_proc, shmkit_channel_proc, reserved),

	LAYOUT_SIZE(mutex, shmkit_mutex),
	LAYOUT_FIELD(mutex, shmkit_mutex, common),
	LAYOUT_FIELD(mutex, shmkit_mutex, lock),
	LAYOUT_FIELD(mutex, shmkit_mutex, slotCount),
	LAYOUT_FIELD(mutex, shmkit_mutex, recoveries),
	LAYOUT_FIELD(mutex, shmkit_mutex, reserved),
	LAYOUT_ARRAY(mutex, shmkit_mutex, slots),

	LAYOUT_SIZE(semaphore, shmkit_semaphore),
	LAYOUT_FIELD(semaphore, shmkit_semaphore, common),
	LAYOUT_FIELD(semaphore, shmkit_semaphore, value),
	LAYOUT_FIELD(semaphore, shmkit_semaphore, waiters),
	LAYOUT_FIELD(semaphore, shmkit_semaphore, reserved),

	LAYOUT_SIZE(condition, shmkit_condition),
	LAYOUT_FIELD(condition, shmkit_condition, common),
	LAYOUT_FIELD(condition, shmkit_condition, seq),
	LAYOUT_FIELD(condition, shmkit_condition, waiters),
	LAYOUT_FIELD(condition, shmkit_condition, reserved),

	LAYOUT_SIZE(array, shmkit_array),
	LAYOUT_FIELD(array, shmkit_array, common),
	LAYOUT_FIELD(array, shmkit_array, dtype),
	LAYOUT_FIELD(array, shmkit_array, itemSize),
	LAYOUT_FIELD(array, shmkit_array, ndim),
	LAYOUT_FIELD(array, shmkit_array, length),
	LAYOUT_FIELD(array, shmkit_array, reserved),
	LAYOUT_ARRAY(array, shmkit_array, shape),
#ifdef SHMKIT_HEAP_LAYOUT_ENTRIES
	SHMKIT_HEAP_LAYOUT_ENTRIES,
#endif
#ifdef SHMKIT_LOG_LAYOUT_TABLE
	SHMKIT_LOG_LAYOUT_TABLE,
#endif
};

#undef LAYOUT_FIELD
#undef LAYOUT_ARRAY
#undef LAYOUT_SIZE

int32_t shmkit_layout_offset(const uint8_t *name)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < sizeof layout_table / sizeof layout_table[0]; i++)
		if (strcmp((const char *)name, layout_table[i].name) == 0)
			return layout_table[i].value;
	return -ENOENT;
}
