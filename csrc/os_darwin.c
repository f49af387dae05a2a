/* SPDX-License-Identifier: MIT */
/*
 * macOS implementation of the os.h boundary.
 *
 * - POSIX shm names are at most PSHMNAMLEN (31) bytes including the leading "/", so os_name_max
 *   is 30. An shm object can be sized with ftruncate once only; it is not in any filesystem, so
 *   it cannot be listed (os_shm_list) nor its holders found (os_shm_holders): -ENOTSUP.
 * - No memfd and no /proc/<pid>/fd: os_memfd_create and os_open_proc_fd return -ENOTSUP.
 * - Futex: os_sync_wait_on_address / os_sync_wake_by_address_* with OS_SYNC_*_SHARED (macOS 14.4+),
 *   looked up at run time; older systems use __ulock_wait / __ulock_wake with
 *   UL_COMPARE_AND_WAIT_SHARED (private but stable since 10.12, used by libc++ and Chromium).
 *   There is no multi-word wait: os_futex_waitv returns -ENOSYS and the waiter falls back to
 *   polling its registry every millisecond (shmkit.c).
 * - Process identity: the start time from proc_pidinfo(PROC_PIDTBSDINFO), in microseconds.
 */
#define _DARWIN_C_SOURCE
#include "os.h"
#include "shmkit.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libproc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/proc.h> /* SZOMB */
#include <sys/proc_info.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DARWIN_SHM_NAME_MAX 30 /* PSHMNAMLEN (31) minus the leading "/" */

static int neg(void) { return -errno; }

/* "/jobs" with the length check macOS itself makes (ENAMETOOLONG beyond PSHMNAMLEN). */
static int shm_name(const char *name, char *out, size_t n)
{
	while (*name == '/')
		name++;
	size_t len = strlen(name);
	if (len == 0)
		return -EINVAL;
	if (len > DARWIN_SHM_NAME_MAX || len + 2 > n)
		return -ENAMETOOLONG;
	out[0] = '/';
	memcpy(out + 1, name, len + 1);
	return 0;
}

static void cloexec(int fd) { fcntl(fd, F_SETFD, FD_CLOEXEC); }

int os_shm_create(const char *name, uint64_t size, uint32_t mode)
{
	char n[64];
	int r = shm_name(name, n, sizeof n);
	if (r < 0)
		return r;
	int fd = shm_open(n, O_RDWR | O_CREAT | O_EXCL, (mode_t)(mode & 0777));
	if (fd < 0)
		return neg();
	cloexec(fd);
	/* Exact mode whatever the umask; the one ftruncate macOS allows sizes the object. There is no
	 * fallocate for shm objects: macOS backs them with wired-on-demand anonymous memory. */
	r = fchmod(fd, (mode_t)(mode & 0777)) < 0 ? neg() : ftruncate(fd, (off_t)size) < 0 ? neg() : 0;
	if (r < 0) {
		shm_unlink(n);
		close(fd);
		return r;
	}
	return fd;
}

int os_shm_open(const char *name, uint32_t flags)
{
	char n[64];
	int r = shm_name(name, n, sizeof n);
	if (r < 0)
		return r;
	int fd = shm_open(n, (flags & SHMKIT_O_RDONLY) ? O_RDONLY : O_RDWR, 0);
	if (fd < 0)
		return neg();
	cloexec(fd);
	return fd;
}

int os_shm_unlink(const char *name)
{
	char n[64];
	int r = shm_name(name, n, sizeof n);
	if (r < 0)
		return r;
	return shm_unlink(n) < 0 ? neg() : 0;
}

int os_memfd_create(const char *name, uint64_t size)
{
	(void)name, (void)size;
	return -ENOTSUP;
}

int os_open_proc_fd(int pid, int fd, uint32_t flags)
{
	(void)pid, (void)fd, (void)flags;
	return -ENOTSUP;
}

/* Keeps fd only if it is a regular file (opened O_NONBLOCK so a FIFO never blocks), then makes
 * it blocking again; -ENODEV for anything else. */
static int regular_only(int fd)
{
	struct stat st;
	if (fd < 0)
		return neg();
	int r = fstat(fd, &st) < 0 ? neg() : !S_ISREG(st.st_mode) ? -ENODEV : 0;
	if (r == 0) {
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			r = neg();
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int os_unlink(const char *path) { return unlink(path) < 0 ? neg() : 0; }
int os_geteuid(void) { return (int)geteuid(); }

int os_open(const char *path, uint32_t flags, uint32_t mode)
{
	int oflags = ((flags & SHMKIT_O_RDONLY) ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_CLOEXEC;
	if (flags & SHMKIT_O_CREATE)
		oflags |= O_CREAT;
	if (flags & SHMKIT_O_EXCL)
		oflags |= O_EXCL | O_NOFOLLOW;
	if (flags & SHMKIT_O_TRUNC)
		oflags |= O_TRUNC;
	return regular_only(open(path, oflags, (mode_t)(mode & 0777)));
}

int os_close(int fd) { return close(fd) < 0 ? neg() : 0; }
int os_ftruncate(int fd, uint64_t size) { return ftruncate(fd, (off_t)size) < 0 ? neg() : 0; }

int os_fallocate(int fd, uint64_t offset, uint64_t length)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return neg();
	uint64_t end = offset + length;
	if ((uint64_t)st.st_size >= end)
		return 0;
	/* Reserve blocks (all or nothing first, then whatever is contiguous), then set the size. */
	fstore_t fs = { F_ALLOCATECONTIG | F_ALLOCATEALL, F_PEOFPOSMODE, 0, (off_t)(end - (uint64_t)st.st_size), 0 };
	if (fcntl(fd, F_PREALLOCATE, &fs) < 0) {
		fs.fst_flags = F_ALLOCATEALL;
		if (fcntl(fd, F_PREALLOCATE, &fs) < 0)
			return neg();
	}
	return ftruncate(fd, (off_t)end) < 0 ? neg() : 0;
}

static void fill_stat(const struct stat *st, double *out)
{
	out[0] = (double)st->st_size;
	out[1] = (double)(st->st_mode & 07777);
	out[2] = (double)st->st_uid;
	out[3] = (double)st->st_gid;
	out[4] = (double)st->st_ino;
	out[5] = (double)st->st_dev;
	out[6] = (double)st->st_nlink;
	/* shm objects report S_IFREG neither on fstat nor as a directory: count them as regular */
	out[7] = S_ISREG(st->st_mode) || (st->st_mode & S_IFMT) == 0 ? 1 : 0;
}

int os_fstat(int fd, double *out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return neg();
	fill_stat(&st, out);
	return 0;
}

int os_stat(const char *path, double *out)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return neg();
	fill_stat(&st, out);
	return 0;
}

int os_fchmod(int fd, uint32_t mode) { return fchmod(fd, (mode_t)(mode & 07777)) < 0 ? neg() : 0; }

static void touch(void *addr, uint64_t length, int write)
{
	long page = sysconf(_SC_PAGESIZE);
	volatile unsigned char *p = addr;
	for (uint64_t i = 0; i < length; i += (uint64_t)page) {
		if (write)
			__atomic_fetch_add(&p[i], 0, __ATOMIC_RELAXED);
		else
			(void)p[i];
	}
}

int os_mmap(int fd, uint64_t length, uint64_t offset, uint32_t flags, void **out)
{
	int prot = PROT_READ | ((flags & SHMKIT_MAP_WRITE) ? PROT_WRITE : 0);
	int mflags = (flags & SHMKIT_MAP_PRIVATE) ? MAP_PRIVATE : MAP_SHARED;
	if (fd < 0)
		mflags = MAP_PRIVATE | MAP_ANON;
	void *p = mmap(NULL, length, prot, mflags, fd, (off_t)offset);
	if (p == MAP_FAILED)
		return neg();
	if (flags & SHMKIT_MAP_POPULATE)
		touch(p, length, (flags & SHMKIT_MAP_WRITE) && !(flags & SHMKIT_MAP_PRIVATE));
	*out = p;
	return 0;
}

int os_munmap(void *addr, uint64_t length) { return munmap(addr, length) < 0 ? neg() : 0; }

int os_tombstone(void *addr, uint64_t length)
{
	void *p = mmap(addr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? neg() : 0;
}

int os_mremap(void *addr, uint64_t old_length, uint64_t new_length, void **out)
{
	(void)addr, (void)old_length, (void)new_length, (void)out;
	return -ENOTSUP; /* no mremap on macOS: callers unmap and map again */
}

int os_msync(void *addr, uint64_t length, uint32_t sync)
{
	return msync(addr, length, sync ? MS_SYNC : MS_ASYNC) < 0 ? neg() : 0;
}

int os_madvise(void *addr, uint64_t length, int advice)
{
	switch (advice) {
	case SHMKIT_ADV_POPULATE_WRITE: touch(addr, length, 1); return 0;
	case SHMKIT_ADV_POPULATE_READ: touch(addr, length, 0); return 0;
	case SHMKIT_ADV_WILLNEED: return madvise(addr, length, MADV_WILLNEED) < 0 ? neg() : 0;
	case SHMKIT_ADV_DONTNEED: return madvise(addr, length, MADV_DONTNEED) < 0 ? neg() : 0;
	case SHMKIT_ADV_NORMAL: return madvise(addr, length, MADV_NORMAL) < 0 ? neg() : 0;
	case SHMKIT_ADV_RANDOM: return madvise(addr, length, MADV_RANDOM) < 0 ? neg() : 0;
	case SHMKIT_ADV_SEQUENTIAL: return madvise(addr, length, MADV_SEQUENTIAL) < 0 ? neg() : 0;
	default: return -EINVAL;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Futex                                                                                        */

/* <os/os_sync_wait_on_address.h> (macOS 14.4+), resolved at run time so one build runs on older
 * systems too. */
#define SHMKIT_OS_SYNC_WAIT_ON_ADDRESS_SHARED 1u
#define SHMKIT_OS_SYNC_WAKE_BY_ADDRESS_SHARED 1u
#define SHMKIT_OS_CLOCK_MACH_ABSOLUTE_TIME 32u
typedef int (*wait_fn)(void *addr, uint64_t value, size_t size, uint32_t flags);
typedef int (*wait_timeout_fn)(void *addr, uint64_t value, size_t size, uint32_t flags, uint32_t clockid,
			       uint64_t timeout_ns);
typedef int (*wake_fn)(void *addr, size_t size, uint32_t flags);

/* The private ulock interface (sys/ulock.h in xnu), present since macOS 10.12. */
#define SHMKIT_UL_COMPARE_AND_WAIT_SHARED 3u
#define SHMKIT_ULF_WAKE_ALL 0x00000100u
#define SHMKIT_ULF_NO_ERRNO 0x01000000u
extern int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
extern int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);

static struct {
	int resolved;
	wait_fn wait;
	wait_timeout_fn wait_timeout;
	wake_fn wake_one, wake_all;
} os_sync;

static void resolve_os_sync(void)
{
	if (__atomic_load_n(&os_sync.resolved, __ATOMIC_ACQUIRE))
		return;
	wait_fn w = (wait_fn)dlsym(RTLD_DEFAULT, "os_sync_wait_on_address");
	wait_timeout_fn wt = (wait_timeout_fn)dlsym(RTLD_DEFAULT, "os_sync_wait_on_address_with_timeout");
	wake_fn w1 = (wake_fn)dlsym(RTLD_DEFAULT, "os_sync_wake_by_address_any");
	wake_fn wa = (wake_fn)dlsym(RTLD_DEFAULT, "os_sync_wake_by_address_all");
	if (w && wt && w1 && wa) {
		os_sync.wait = w;
		os_sync.wait_timeout = wt;
		os_sync.wake_one = w1;
		os_sync.wake_all = wa;
	}
	__atomic_store_n(&os_sync.resolved, 1, __ATOMIC_RELEASE);
}

int os_futex_wait(uint32_t *addr, uint32_t expected, double timeout_ms)
{
	resolve_os_sync();
	int timed = timeout_ms >= 0 && timeout_ms < 1e12;
	if (os_sync.wait) {
		int r;
		if (timed) {
			/* a relative timeout in nanoseconds, measured on the given clock */
			r = os_sync.wait_timeout(addr, expected, 4, SHMKIT_OS_SYNC_WAIT_ON_ADDRESS_SHARED,
						 SHMKIT_OS_CLOCK_MACH_ABSOLUTE_TIME, (uint64_t)(timeout_ms * 1e6));
		} else {
			r = os_sync.wait(addr, expected, 4, SHMKIT_OS_SYNC_WAIT_ON_ADDRESS_SHARED);
		}
		if (r >= 0)
			return __atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected ? 1 : 0;
		if (errno == ETIMEDOUT)
			return -ETIMEDOUT;
		if (errno == EINTR)
			return 2; /* a signal interrupted the wait (shmkit_futex_wait waits out the rest) */
		if (errno == EFAULT)
			return 0; /* spurious (the page is being remapped); callers re-check */
		return neg();
	}
	uint32_t us = 0; /* 0 = no timeout */
	if (timed) {
		double t = timeout_ms * 1000;
		us = t < 1 ? 1 : t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
	}
	int r = __ulock_wait(SHMKIT_UL_COMPARE_AND_WAIT_SHARED | SHMKIT_ULF_NO_ERRNO, addr, expected, us);
	if (r >= 0)
		return __atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected ? 1 : 0;
	if (r == -ETIMEDOUT)
		return -ETIMEDOUT;
	return r == -EINTR || r == -EFAULT ? 0 : r;
}

int os_futex_wake(uint32_t *addr, int count)
{
	resolve_os_sync();
	/* Neither interface reports how many it woke: wake one, or all. */
	if (os_sync.wait) {
		int r = count == 1 ? os_sync.wake_one(addr, 4, SHMKIT_OS_SYNC_WAKE_BY_ADDRESS_SHARED)
				   : os_sync.wake_all(addr, 4, SHMKIT_OS_SYNC_WAKE_BY_ADDRESS_SHARED);
		if (r < 0)
			return errno == ENOENT ? 0 : neg(); /* ENOENT: nobody was waiting */
		return count == 1 ? 1 : count;
	}
	uint32_t op = SHMKIT_UL_COMPARE_AND_WAIT_SHARED | SHMKIT_ULF_NO_ERRNO | (count == 1 ? 0 : SHMKIT_ULF_WAKE_ALL);
	int r = __ulock_wake(op, addr, 0);
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : count == 1 ? 1 : count;
}

int os_futex_waitv(uint32_t **addrs, const uint32_t *expected, int n)
{
	/* Only the waiter threads call this: keep the library loaded for good, so dlclose never
	 * unmaps code they run (what -z nodelete does on Linux). */
	static int pinned;
	if (!__atomic_exchange_n(&pinned, 1, __ATOMIC_ACQ_REL)) {
		Dl_info info;
		if (dladdr((void *)os_futex_waitv, &info) && info.dli_fname)
			dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
	}
	(void)addrs, (void)expected, (void)n;
	return -ENOSYS;
}

/* ------------------------------------------------------------------------------------------ */
/* Processes, clocks                                                                            */

int os_getpid(void) { return (int)getpid(); }

static int bsd_info(int pid, struct proc_bsdinfo *info)
{
	int n = proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, info, (int)sizeof *info);
	if (n == (int)sizeof *info)
		return 0;
	return errno == ESRCH || errno == 0 ? -ESRCH : neg();
}

int64_t os_proc_start_time(int pid)
{
	struct proc_bsdinfo info;
	int r = bsd_info(pid, &info);
	if (r < 0)
		return r;
	return (int64_t)info.pbi_start_tvsec * 1000000 + (int64_t)info.pbi_start_tvusec;
}

int os_proc_alive(int pid, double start_time)
{
	struct proc_bsdinfo info;
	int r = bsd_info(pid, &info);
	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return r == -EPERM ? 1 : r; /* it exists, owned by someone else */
	if (info.pbi_status == SZOMB)
		return 0;
	if (start_time >= 0 &&
	    (double)((int64_t)info.pbi_start_tvsec * 1000000 + (int64_t)info.pbi_start_tvusec) != start_time)
		return 0;
	return 1;
}

int os_shm_holders(const char *name, int32_t *out, int max)
{
	(void)name, (void)out, (void)max;
	return -ENOTSUP;
}

int os_shm_list(uint8_t *out, uint32_t len)
{
	(void)out, (void)len;
	return -ENOTSUP;
}

int os_page_size(void) { return (int)sysconf(_SC_PAGESIZE); }
int os_name_max(void) { return DARWIN_SHM_NAME_MAX; }

double os_now_ns(void) { return (double)clock_gettime_nsec_np(CLOCK_UPTIME_RAW); }

int os_pin_cpu(int cpu)
{
	(void)cpu;
	return -ENOTSUP; /* macOS has affinity tags only, no pinning */
}

int os_rusage(double *out)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return neg();
	out[0] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	out[1] = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	out[2] = (double)ru.ru_nvcsw;
	out[3] = (double)ru.ru_nivcsw;
	return 0;
}
