/* SPDX-License-Identifier: MIT */
/* Linux implementation of the os.h boundary. */
#define _GNU_SOURCE
#include "os.h"
#include "shmkit.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif

struct shmkit_futex_waitv {
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t reserved;
};
#define SHMKIT_FUTEX2_SIZE_U32 0x02 /* no FUTEX2_PRIVATE: the words are shared between processes */

static int neg(void) { return -errno; }

/* Build "/dev/shm/<name>" style paths from "/name". */
static int shm_path(const char *name, char *out, size_t n)
{
	while (*name == '/')
		name++;
	int r = snprintf(out, n, "/dev/shm/%s", name);
	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

static int size_and_reserve(int fd, uint64_t size)
{
	if (ftruncate(fd, (off_t)size) < 0)
		return neg();
	if (size == 0)
		return 0;
	/* Reserve tmpfs pages now, so a full /dev/shm is ENOSPC here rather than SIGBUS later. */
	int r;
	do
		r = posix_fallocate(fd, 0, (off_t)size);
	while (r == EINTR);
	if (r == EOPNOTSUPP || r == ENOSYS)
		return 0;
	return r ? -r : 0;
}

int os_shm_create(const char *name, uint64_t size, uint32_t mode)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 0777));
	if (fd < 0)
		return neg();
	/* The mode is applied exactly, whatever the umask (which can only remove bits). */
	int r = fchmod(fd, (mode_t)(mode & 0777)) < 0 ? neg() : size_and_reserve(fd, size);
	if (r < 0) {
		shm_unlink(name);
		close(fd);
		return r;
	}
	return fd;
}

/* Keeps fd only if it is a regular file, then makes it blocking again. Opening with O_NONBLOCK
 * means a FIFO squatting the name cannot block open(2) waiting for a writer. */
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

int os_shm_open(const char *name, uint32_t flags)
{
	int fd = shm_open(name, ((flags & SHMKIT_O_RDONLY) ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0);
	return regular_only(fd);
}

int os_shm_unlink(const char *name) { return shm_unlink(name) < 0 ? neg() : 0; }

int os_memfd_create(const char *name, uint64_t size)
{
	int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return neg();
	int r = size_and_reserve(fd, size);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int os_open_proc_fd(int pid, int fd, uint32_t flags)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
	/* A handle may name any descriptor of that process: only a regular file (a memfd) is mapped.
	 * A socket's /proc entry cannot be opened at all (ENXIO): not a memory file either. */
	int r = open(path, ((flags & SHMKIT_O_RDONLY) ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_CLOEXEC);
	if (r < 0 && errno == ENXIO)
		return -ENODEV;
	return regular_only(r);
}

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

int os_unlink(const char *path) { return unlink(path) < 0 ? neg() : 0; }
int os_geteuid(void) { return (int)geteuid(); }

int os_close(int fd) { return close(fd) < 0 ? neg() : 0; }
int os_ftruncate(int fd, uint64_t size) { return ftruncate(fd, (off_t)size) < 0 ? neg() : 0; }

int os_fallocate(int fd, uint64_t offset, uint64_t length)
{
	int r;
	do
		r = posix_fallocate(fd, (off_t)offset, (off_t)length);
	while (r == EINTR);
	return -r;
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
	out[7] = S_ISREG(st->st_mode) ? 1 : 0;
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

static int populate(void *addr, uint64_t length, int write)
{
	if (madvise(addr, length, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
		return 0;
	if (errno != EINVAL)
		return neg(); /* EFAULT: the object is shorter than the mapping; ENOMEM: out of memory */
	/* Kernel < 5.14: touch one byte per page. */
	long page = sysconf(_SC_PAGESIZE);
	volatile unsigned char *p = addr;
	for (uint64_t i = 0; i < length; i += (uint64_t)page) {
		if (write)
			__atomic_fetch_add(&p[i], 0, __ATOMIC_RELAXED);
		else
			(void)p[i];
	}
	return 0;
}

int os_mmap(int fd, uint64_t length, uint64_t offset, uint32_t flags, void **out)
{
	int prot = PROT_READ | ((flags & SHMKIT_MAP_WRITE) ? PROT_WRITE : 0);
	int mflags = (flags & SHMKIT_MAP_PRIVATE) ? MAP_PRIVATE : MAP_SHARED;
	if (fd < 0)
		mflags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p = mmap(NULL, length, prot, mflags, fd, (off_t)offset);
	if (p == MAP_FAILED)
		return neg();
	if (flags & SHMKIT_MAP_POPULATE) {
		/* Read-populate private mappings: a write would copy every page. */
		int r = populate(p, length, (flags & SHMKIT_MAP_WRITE) && !(flags & SHMKIT_MAP_PRIVATE));
		if (r < 0) {
			munmap(p, length);
			return r;
		}
	}
	*out = p;
	return 0;
}

int os_munmap(void *addr, uint64_t length) { return munmap(addr, length) < 0 ? neg() : 0; }

int os_tombstone(void *addr, uint64_t length)
{
	/* Atomically replace the range with private zero pages: stale views read zeros and writes land
	 * in private memory, so nothing faults. Costs address space only (MAP_NORESERVE). */
	void *p = mmap(addr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		       -1, 0);
	return p == MAP_FAILED ? neg() : 0;
}

int os_mremap(void *addr, uint64_t old_length, uint64_t new_length, void **out)
{
	void *p = mremap(addr, old_length, new_length, MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return neg();
	*out = p;
	return 0;
}

int os_msync(void *addr, uint64_t length, uint32_t sync)
{
	return msync(addr, length, sync ? MS_SYNC : MS_ASYNC) < 0 ? neg() : 0;
}

int os_madvise(void *addr, uint64_t length, int advice)
{
	switch (advice) {
	case SHMKIT_ADV_POPULATE_WRITE: return populate(addr, length, 1);
	case SHMKIT_ADV_POPULATE_READ: return populate(addr, length, 0);
	case SHMKIT_ADV_WILLNEED: return madvise(addr, length, MADV_WILLNEED) < 0 ? neg() : 0;
	case SHMKIT_ADV_DONTNEED: return madvise(addr, length, MADV_DONTNEED) < 0 ? neg() : 0;
	case SHMKIT_ADV_NORMAL: return madvise(addr, length, MADV_NORMAL) < 0 ? neg() : 0;
	case SHMKIT_ADV_RANDOM: return madvise(addr, length, MADV_RANDOM) < 0 ? neg() : 0;
	case SHMKIT_ADV_SEQUENTIAL: return madvise(addr, length, MADV_SEQUENTIAL) < 0 ? neg() : 0;
	default: return -EINVAL;
	}
}

int os_futex_wait(uint32_t *addr, uint32_t expected, double timeout_ms)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ms >= 0 && timeout_ms < 1e12) {
		ts.tv_sec = (time_t)(timeout_ms / 1000);
		ts.tv_nsec = (long)((timeout_ms - (double)ts.tv_sec * 1000) * 1e6);
		tsp = &ts;
	}
	long r = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, NULL, 0);
	if (r == 0)
		return 0;
	if (errno == EAGAIN)
		return 1; /* the word no longer holds `expected` */
	if (errno == EINTR)
		return 2; /* a signal interrupted the wait (shmkit_futex_wait waits out the rest) */
	return neg();
}

int os_futex_wake(uint32_t *addr, int count)
{
	long r = syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
	return r < 0 ? neg() : (int)r;
}

int os_futex_waitv(uint32_t **addrs, const uint32_t *expected, int n)
{
	struct shmkit_futex_waitv v[128];
	if (n <= 0 || n > 128)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		v[i].val = expected[i];
		v[i].uaddr = (uint64_t)(uintptr_t)addrs[i];
		v[i].flags = SHMKIT_FUTEX2_SIZE_U32;
		v[i].reserved = 0;
	}
	long r = syscall(SYS_futex_waitv, v, (unsigned)n, 0, NULL, 0);
	if (r >= 0)
		return (int)r;
	return errno == EAGAIN || errno == EINTR ? 0 : neg();
}

int os_getpid(void) { return (int)getpid(); }


/* Fields of /proc/<pid>/stat after the command name: state (3) and starttime (22). */
static int read_proc_stat(int pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : neg();
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p += 2; /* ") " */
	*state = *p;
	/* skip to field 22: we are at field 3 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*start = strtoull(p, NULL, 10);
	return 0;
}

int64_t os_proc_start_time(int pid)
{
	char state;
	unsigned long long start;
	int r = read_proc_stat(pid, &state, &start);
	return r < 0 ? r : (int64_t)start;
}

int os_proc_alive(int pid, double start_time)
{
	char state;
	unsigned long long start;
	int r = read_proc_stat(pid, &state, &start);
	if (r == -ESRCH)
		return 0;
	if (r < 0)
		return r;
	if (state == 'Z' || state == 'X' || state == 'x')
		return 0;
	if (start_time >= 0 && (double)start != start_time)
		return 0;
	return 1;
}

static int name_matches(const char *target, const char *want)
{
	size_t n = strlen(target), m = strlen(want);
	/* "/dev/shm/name" or "/dev/shm/name (deleted)" */
	if (n >= m && strcmp(target + n - m, want) == 0)
		return 1;
	const char *del = " (deleted)";
	size_t d = strlen(del);
	return n >= m + d && strncmp(target + n - m - d, want, m) == 0 && strcmp(target + n - d, del) == 0;
}

int os_shm_holders(const char *name, int32_t *out, int max)
{
	char want[PATH_MAX];
	if (shm_path(name, want, sizeof want) < 0)
		return -ENAMETOOLONG;
	DIR *proc = opendir("/proc");
	if (!proc)
		return neg();
	int count = 0;
	struct dirent *de;
	char path[PATH_MAX], target[PATH_MAX], line[PATH_MAX + 256];
	while ((de = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int pid = atoi(de->d_name), found = 0;
		char state;
		unsigned long long start;
		if (read_proc_stat(pid, &state, &start) < 0 || state == 'Z')
			continue;
		snprintf(path, sizeof path, "/proc/%d/fd", pid);
		DIR *fds = opendir(path);
		if (fds) {
			struct dirent *fe;
			while (!found && (fe = readdir(fds)) != NULL) {
				if (fe->d_name[0] == '.')
					continue;
				snprintf(path, sizeof path, "/proc/%d/fd/%s", pid, fe->d_name);
				ssize_t n = readlink(path, target, sizeof target - 1);
				if (n > 0) {
					target[n] = 0;
					found = name_matches(target, want);
				}
			}
			closedir(fds);
		}
		if (!found) {
			snprintf(path, sizeof path, "/proc/%d/maps", pid);
			FILE *f = fopen(path, "re");
			if (f) {
				while (!found && fgets(line, sizeof line, f)) {
					line[strcspn(line, "\n")] = 0;
					char *slash = strchr(line, '/');
					found = slash && name_matches(slash, want);
				}
				fclose(f);
			}
		}
		if (found) {
			if (count < max)
				out[count] = pid;
			count++;
		}
	}
	closedir(proc);
	return count;
}

int os_shm_list(uint8_t *out, uint32_t len)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return neg();
	uint64_t need = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		size_t n = strlen(de->d_name) + 1;
		if (need + n <= len)
			memcpy(out + need, de->d_name, n);
		need += n;
		if (need > INT32_MAX) {
			closedir(d);
			return -EOVERFLOW;
		}
	}
	closedir(d);
	return (int)need;
}

int os_page_size(void) { return (int)sysconf(_SC_PAGESIZE); }
int os_name_max(void) { return NAME_MAX; }

double os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int os_pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) < 0 ? neg() : 0;
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
