/* SPDX-License-Identifier: MIT */
/* Forced-included (-include) for the Linux syntax check of os_darwin.c: the Darwin additions to
 * <fcntl.h> and <time.h> that glibc lacks (see README.md). */
#ifndef SHMKIT_COMPAT_DARWIN_EXTRAS_H
#define SHMKIT_COMPAT_DARWIN_EXTRAS_H
/* _DARWIN_C_SOURCE exposes the whole BSD/POSIX API on macOS; glibc needs its own switch. */
#define _DEFAULT_SOURCE 1
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* Dl_info / dladdr, which macOS declares in <dlfcn.h> by default */
#endif
#include <stdint.h>
#include <sys/types.h>
#define F_PREALLOCATE 42
#define F_ALLOCATECONTIG 0x00000002
#define F_ALLOCATEALL 0x00000004
#define F_PEOFPOSMODE 3
typedef struct fstore {
	unsigned int fst_flags;
	int fst_posmode;
	off_t fst_offset;
	off_t fst_length;
	off_t fst_bytesalloc;
} fstore_t;
#define CLOCK_UPTIME_RAW 8
uint64_t clock_gettime_nsec_np(int clock_id);
#endif
