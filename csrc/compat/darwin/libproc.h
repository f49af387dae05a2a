/* SPDX-License-Identifier: MIT */
/* Stub of macOS <libproc.h> for `cc -fsyntax-only` on Linux (see README.md). Not a real header. */
#ifndef SHMKIT_COMPAT_LIBPROC_H
#define SHMKIT_COMPAT_LIBPROC_H
#include <sys/proc_info.h>
int proc_pidinfo(int pid, int flavor, uint64_t arg, void *buffer, int buffersize);
#endif
