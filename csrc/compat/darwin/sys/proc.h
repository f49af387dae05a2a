/* SPDX-License-Identifier: MIT */
/* Stub of macOS <sys/proc.h> for `cc -fsyntax-only` on Linux (see ../README.md). */
#ifndef SHMKIT_COMPAT_SYS_PROC_H
#define SHMKIT_COMPAT_SYS_PROC_H
#define SZOMB 5
#endif
