/* SPDX-License-Identifier: MIT */
/*
 * Cross-process smoke test of shmkit.dll, run under wine by `make cross` (no JavaScript runtime
 * for Windows starts under the wine here, see docs/platforms.md). Parent and child are two
 * processes of this program:
 *   parent: named section + anonymous section, starts the child, waits on a futex word (blocking
 *           and through the async waiter) that the child changes, checks liveness of the child.
 *   child:  opens the named section by name and the anonymous one by (parent pid, handle), checks
 *           the text, the parent's liveness, then stores + wakes.
 * Prints "wine smoke: ok" and exits 0, or names the failed step and exits 1.
 */
#include "../shmkit.h"

#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE 65536
#define WORD_OFF 4096

static int fail(const char *what, double r)
{
	printf("wine smoke: FAIL %s (%g)\n", what, r);
	return 1;
}

#define CHECK(cond, what, r)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return fail(what, (double)(r));                                            \
	} while (0)

static int child(const char *name, int parent_pid, int anon_fd, double parent_start)
{
	int fd = shmkit_shm_open((const uint8_t *)name, 0);
	CHECK(fd >= 0, "child: shm_open by name", fd);
	double st[8];
	int r = shmkit_fstat(fd, st);
	CHECK(r == 0 && st[0] >= SIZE, "child: fstat size", st[0]);
	int id = shmkit_mmap(fd, SIZE, 0, SHMKIT_MAP_WRITE);
	CHECK(id >= 0, "child: mmap", id);
	shmkit_close(fd);
	const char *p = (const char *)(uintptr_t)shmkit_map_addr(id);
	CHECK(strcmp(p, "hello from the parent") == 0, "child: read the parent's text", 0);
	CHECK(shmkit_proc_alive(parent_pid, parent_start) == 1, "child: parent is alive", 0);
	CHECK(shmkit_proc_alive(parent_pid, parent_start + 1) == 0, "child: wrong start time is not alive", 0);

	int afd = shmkit_open_proc_fd(parent_pid, anon_fd, 0);
	CHECK(afd >= 0, "child: open the anonymous section by (pid, handle)", afd);
	int aid = shmkit_mmap(afd, 4096, 0, SHMKIT_MAP_WRITE);
	CHECK(aid >= 0, "child: mmap anonymous", aid);
	shmkit_close(afd);
	const char *a = (const char *)(uintptr_t)shmkit_map_addr(aid);
	CHECK(strcmp(a, "anonymous") == 0, "child: read the anonymous section", 0);

	Sleep(300); /* let the parent block first */
	shmkit_atomic_store_u32(id, WORD_OFF, 1, SHMKIT_SEQ_CST);
	r = shmkit_futex_wake(id, WORD_OFF, 1);
	CHECK(r >= 0, "child: futex_wake", r);
	Sleep(300);
	shmkit_atomic_store_u32(id, WORD_OFF + 4, 7, SHMKIT_SEQ_CST);
	r = shmkit_futex_wake(id, WORD_OFF + 4, 0x7fffffff);
	CHECK(r >= 0, "child: futex_wake (async word)", r);
	shmkit_munmap(id, SHMKIT_UNMAP_RELEASE);
	shmkit_munmap(aid, SHMKIT_UNMAP_RELEASE);
	return 0;
}

static int parent(const char *exe)
{
	char name[64];
	snprintf(name, sizeof name, "/shmkit-wine-%lu", (unsigned long)GetCurrentProcessId());
	int fd = shmkit_shm_create((const uint8_t *)name, SIZE, 0600);
	CHECK(fd >= 0, "shm_create", fd);
	int again = shmkit_shm_create((const uint8_t *)name, SIZE, 0600);
	CHECK(again == -EEXIST, "shm_create of a taken name is EEXIST", again);
	int missing = shmkit_shm_open((const uint8_t *)"/shmkit-wine-no-such-name", 0);
	CHECK(missing == -ENOENT, "shm_open of a missing name is ENOENT", missing);
	int id = shmkit_mmap(fd, SIZE, 0, SHMKIT_MAP_WRITE);
	CHECK(id >= 0, "mmap", id);
	/* Like SharedMemory.create: the descriptor is closed once mapped; the name must live on. */
	shmkit_close(fd);
	char *p = (char *)(uintptr_t)shmkit_map_addr(id);
	strcpy(p, "hello from the parent");

	int afd = shmkit_memfd_create((const uint8_t *)"anon", 4096);
	CHECK(afd >= 0, "memfd_create (anonymous section)", afd);
	int aid = shmkit_mmap(afd, 4096, 0, SHMKIT_MAP_WRITE);
	CHECK(aid >= 0, "mmap anonymous", aid);
	strcpy((char *)(uintptr_t)shmkit_map_addr(aid), "anonymous");

	/* The async waiter: registered before the child starts, completed by the child's second wake. */
	int token = shmkit_waiter_add(id, WORD_OFF + 4, 0);
	CHECK(token > 0, "waiter_add", token);

	int me = shmkit_getpid();
	double start = shmkit_proc_start_time(me);
	CHECK(start > 0, "proc_start_time", start);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "\"%s\" child %s %d %d %.0f", exe, name, me, afd, start);
	STARTUPINFOA si;
	memset(&si, 0, sizeof si);
	si.cb = sizeof si;
	PROCESS_INFORMATION pi;
	CHECK(CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi), "CreateProcess", GetLastError());
	int child_pid = (int)pi.dwProcessId;
	double child_start = shmkit_proc_start_time(child_pid);
	CHECK(child_start > 0, "proc_start_time of the child", child_start);

	/* Blocking futex wait until the child stores 1. Spurious wakeups are allowed (loop), but each
	 * wait is long: the loop ends only if the child's wake reaches this process. */
	int woke = 0;
	for (int i = 0; i < 3 && !woke; i++) {
		int r = shmkit_futex_wait(id, WORD_OFF, 0, 20000);
		CHECK(r >= 0 || r == -ETIMEDOUT, "futex_wait", r);
		woke = shmkit_atomic_load_u32(id, WORD_OFF, SHMKIT_SEQ_CST) == 1;
	}
	CHECK(woke, "the child's store + wake reached the blocked parent", 0);

	int32_t done[4];
	int n = 0;
	for (int i = 0; i < 100 && n == 0; i++)
		n = shmkit_waiter_next(done, 4, 100);
	CHECK(n == 1 && done[0] == token, "the async waiter completed the token", n);

	WaitForSingleObject(pi.hProcess, 30000);
	DWORD code = 1;
	GetExitCodeProcess(pi.hProcess, &code);
	CHECK(code == 0, "child exit code", code);
	CloseHandle(pi.hThread);
	CloseHandle(pi.hProcess);
	CHECK(shmkit_proc_alive(child_pid, child_start) == 0, "an exited child is not alive", 0);

	CHECK(shmkit_shm_unlink((const uint8_t *)name) == 0, "shm_unlink of an existing name", 0);
	shmkit_munmap(id, SHMKIT_UNMAP_RELEASE);
	shmkit_munmap(aid, SHMKIT_UNMAP_RELEASE);
	shmkit_close(afd);
	int gone = shmkit_shm_open((const uint8_t *)name, 0);
	CHECK(gone == -ENOENT, "the name is gone after the last view was unmapped", gone);
	printf("wine smoke: ok (named + anonymous sections across processes, futex wait/wake, async waiter, liveness)\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "child") == 0)
		return child(argv[2], atoi(argv[3]), atoi(argv[4]), strtod(argv[5], NULL));
	return parent(argv[0]);
}
