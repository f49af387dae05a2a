/* SPDX-License-Identifier: MIT */
/* The platform boundary: everything below is implemented once per OS (os_linux.c today). */
#ifndef SHMKIT_OS_H
#define SHMKIT_OS_H

#include <stddef.h>
#include <stdint.h>

/* All return >= 0 or -errno. */
int os_shm_create(const char *name, uint64_t size, uint32_t mode);
int os_shm_open(const char *name, uint32_t flags);
int os_shm_unlink(const char *name);
int os_memfd_create(const char *name, uint64_t size);
int os_open_proc_fd(int pid, int fd, uint32_t flags);
int os_open(const char *path, uint32_t flags, uint32_t mode);
int os_unlink(const char *path);
int os_geteuid(void);
int os_close(int fd);
int os_ftruncate(int fd, uint64_t size);
int os_fallocate(int fd, uint64_t offset, uint64_t length);
int os_fstat(int fd, double *out);
int os_stat(const char *path, double *out);
int os_fchmod(int fd, uint32_t mode);

int os_mmap(int fd, uint64_t length, uint64_t offset, uint32_t flags, void **out);
int os_munmap(void *addr, uint64_t length);
int os_tombstone(void *addr, uint64_t length);
int os_mremap(void *addr, uint64_t old_length, uint64_t new_length, void **out);
int os_msync(void *addr, uint64_t length, uint32_t sync);
int os_madvise(void *addr, uint64_t length, int advice);

/* 0 woken (or spurious), 1 the word no longer holds `expected`, 2 interrupted by a signal, or -errno
 * (-ETIMEDOUT). */
int os_futex_wait(uint32_t *addr, uint32_t expected, double timeout_ms);
int os_futex_wake(uint32_t *addr, int count);
/* Wait until any word differs from its expected value or is woken; returns index, or -errno. */
int os_futex_waitv(uint32_t **addrs, const uint32_t *expected, int n);

int os_getpid(void);
int64_t os_proc_start_time(int pid);
int os_proc_alive(int pid, double start_time);
int os_shm_holders(const char *name, int32_t *out, int max);
int os_shm_list(uint8_t *out, uint32_t len);
int os_page_size(void);
int os_name_max(void);
double os_now_ns(void);
int os_pin_cpu(int cpu);
int os_rusage(double *out);

#endif
