/* SPDX-License-Identifier: MIT */
/* Stub of macOS <sys/proc_info.h> for `cc -fsyntax-only` on Linux. Field names as in the SDK;
 * the layout is not the real one (see ../README.md). */
#ifndef SHMKIT_COMPAT_SYS_PROC_INFO_H
#define SHMKIT_COMPAT_SYS_PROC_INFO_H
#include <stdint.h>
#define PROC_PIDTBSDINFO 3
struct proc_bsdinfo {
	uint32_t pbi_flags;
	uint32_t pbi_status;
	uint32_t pbi_xstatus;
	uint32_t pbi_pid;
	uint32_t pbi_ppid;
	uint64_t pbi_start_tvsec;
	uint64_t pbi_start_tvusec;
};
#endif
