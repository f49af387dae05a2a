/* SPDX-License-Identifier: MIT */
/*
 * Windows implementation of the os.h boundary (mingw-w64; pthreads come from winpthreads).
 *
 * "File descriptors" are Windows HANDLE values (small multiples of 4), so a handle number can be
 * passed to another process and duplicated there (os_open_proc_fd), like /proc/<pid>/fd on Linux.
 *
 * Named segments are named file mappings (sections) in the session namespace, named exactly as
 * given without the leading "/" (Python's multiprocessing.shared_memory does the same, so the two
 * interoperate). Windows has no unlink: a section's name disappears when its last handle closes
 * (a mapped view does not keep the name), so each view holds a duplicate of its section handle,
 * and os_shm_unlink only checks that the name exists.
 *
 * Futexes. WaitOnAddress only wakes threads of the same process, so cross-process waits go through
 * kernel objects: a named table "shmkit-futex-v1" of FUTEX_BUCKETS waiter counts (one u32 each)
 * and one named semaphore per bucket. A word is keyed by what identifies it in every process (the
 * section's kernel name, or the file's volume and index, plus the byte offset), hashed to a
 * bucket. A waiter counts itself in, re-checks the word, and sleeps on the bucket's semaphore; a
 * waker changes the word first, then releases one count per waiter in the bucket (all of them:
 * distinct words can share a bucket, and a wake must never land on the wrong word only).
 * Spurious wakeups are possible; every caller re-checks its condition.
 *
 * Not supported (clean -ENOTSUP): mremap, shm_holders, shm_list, fchmod on sections, MADV_DONTNEED.
 */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602 /* Windows 8: PrefetchVirtualMemory, GetSystemTimePreciseAsFileTime */
#endif
#define WIN32_LEAN_AND_MEAN
#include "os.h"
#include "shmkit.h"

#include <windows.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define FUTEX_BUCKETS 1024
#define VIEWS_MAX 1024
#define KEY_MAX 300

/* ------------------------------------------------------------------------------------------ */
/* Errors, handles, names                                                                       */

static int err_of(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE: return -ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_WRITE_PROTECT: return -EACCES;
	case ERROR_ALREADY_EXISTS:
	case ERROR_FILE_EXISTS: return -EEXIST;
	case ERROR_INVALID_HANDLE: return -EBADF;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
	case ERROR_COMMITMENT_LIMIT: return -ENOMEM;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL: return -ENOSPC;
	case ERROR_FILENAME_EXCED_RANGE: return -ENAMETOOLONG;
	case ERROR_INVALID_NAME:
	case ERROR_INVALID_PARAMETER:
	case ERROR_MAPPED_ALIGNMENT: return -EINVAL;
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
	case ERROR_BUSY: return -EBUSY;
	case ERROR_NOT_SUPPORTED:
	case ERROR_CALL_NOT_IMPLEMENTED: return -ENOTSUP;
	case ERROR_TIMEOUT: return -ETIMEDOUT;
	case ERROR_TOO_MANY_OPEN_FILES: return -EMFILE;
	default: return -EIO;
	}
}

static int last_err(void) { return err_of(GetLastError()); }

static HANDLE handle_of(int fd) { return (HANDLE)(intptr_t)fd; }

static int fd_of(HANDLE h)
{
	if ((uintptr_t)h > (uintptr_t)INT_MAX) { /* never seen in practice: handle values are small */
		CloseHandle(h);
		return -EMFILE;
	}
	return (int)(intptr_t)h;
}

/* UTF-8 to UTF-16; returns 0 or -errno. */
static int widen(const char *s, wchar_t *out, int n)
{
	int r = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, n);
	if (r > 0)
		return 0;
	return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
}

/* "/jobs" -> L"jobs" (kernel object names may not contain '\\'). */
static int section_name(const char *name, wchar_t *out, int n)
{
	while (*name == '/')
		name++;
	if (!*name || strchr(name, '\\') || strchr(name, '/'))
		return -EINVAL;
	return widen(name, out, n);
}

typedef LONG(NTAPI *nt_query_object_fn)(HANDLE, int, void *, ULONG, ULONG *);

/* NtQueryObject (ntdll), looked up once. */
static nt_query_object_fn nt_query_object(void)
{
	static nt_query_object_fn query;
	if (!query) {
		HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
		query = ntdll ? (nt_query_object_fn)(void (*)(void))GetProcAddress(ntdll, "NtQueryObject") : NULL;
	}
	return query;
}

/* The UNICODE_STRING at the start of OBJECT_NAME_INFORMATION (class 1) and
 * OBJECT_TYPE_INFORMATION (class 2), as UTF-8; "" when there is none. */
static void object_string(HANDLE h, int cls, char *out, size_t n)
{
	nt_query_object_fn query = nt_query_object();
	out[0] = 0;
	if (!query)
		return;
	union {
		struct {
			USHORT Length, MaximumLength;
			PWSTR Buffer;
		} str;
		unsigned char bytes[2048];
	} info;
	ULONG len = 0;
	if (query(h, cls, &info, sizeof info, &len) != 0 || !info.str.Buffer)
		return;
	int r = WideCharToMultiByte(CP_UTF8, 0, info.str.Buffer, info.str.Length / 2, out, (int)n - 1, NULL, NULL);
	out[r > 0 ? r : 0] = 0;
}

/* A file (CreateFileW) rather than a section. By object type: GetFileType alone reports
 * FILE_TYPE_DISK for sections under wine. */
static int is_file(HANDLE h)
{
	char type[64];
	object_string(h, 2 /* ObjectTypeInformation */, type, sizeof type);
	if (type[0])
		return strcmp(type, "File") == 0;
	return GetFileType(h) == FILE_TYPE_DISK;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared memory objects                                                                        */

int os_shm_create(const char *name, uint64_t size, uint32_t mode)
{
	(void)mode; /* the default DACL gives access to the creating user (and SYSTEM/Administrators) */
	wchar_t w[MAX_PATH];
	int r = section_name(name, w, MAX_PATH);
	if (r < 0)
		return r;
	if (size == 0)
		return -EINVAL; /* a section cannot be empty */
	/* SEC_COMMIT charges the whole size now: a full commit limit is ENOMEM here, not a fault later. */
	HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, (DWORD)(size >> 32),
				      (DWORD)size, w);
	if (!h)
		return last_err();
	if (GetLastError() == ERROR_ALREADY_EXISTS) {
		CloseHandle(h);
		return -EEXIST;
	}
	return fd_of(h);
}

int os_shm_open(const char *name, uint32_t flags)
{
	wchar_t w[MAX_PATH];
	int r = section_name(name, w, MAX_PATH);
	if (r < 0)
		return r;
	DWORD access = (flags & SHMKIT_O_RDONLY) ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE;
	HANDLE h = OpenFileMappingW(access, FALSE, w);
	return h ? fd_of(h) : last_err();
}

int os_shm_unlink(const char *name)
{
	/* No unlink on Windows: the name goes away with the last handle. Report whether it exists. */
	int fd = os_shm_open(name, SHMKIT_O_RDONLY);
	if (fd < 0)
		return fd;
	CloseHandle(handle_of(fd));
	return 0;
}

int os_memfd_create(const char *name, uint64_t size)
{
	(void)name;
	if (size == 0)
		return -EINVAL;
	HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, (DWORD)(size >> 32),
				      (DWORD)size, NULL);
	return h ? fd_of(h) : last_err();
}

int os_open_proc_fd(int pid, int fd, uint32_t flags)
{
	HANDLE proc = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)pid);
	if (!proc)
		return GetLastError() == ERROR_INVALID_PARAMETER ? -ESRCH : last_err();
	HANDLE h = NULL;
	DWORD access = (flags & SHMKIT_O_RDONLY) ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE;
	BOOL ok = DuplicateHandle(proc, handle_of(fd), GetCurrentProcess(), &h, access, FALSE, 0);
	int r = ok ? 0 : last_err();
	CloseHandle(proc);
	return r < 0 ? r : fd_of(h);
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                        */

int os_open(const char *path, uint32_t flags, uint32_t mode)
{
	wchar_t w[32768];
	int r = widen(path, w, 32768);
	if (r < 0)
		return r;
	DWORD disp = OPEN_EXISTING;
	if ((flags & SHMKIT_O_CREATE) && (flags & SHMKIT_O_EXCL))
		disp = CREATE_NEW;
	else if ((flags & SHMKIT_O_CREATE) && (flags & SHMKIT_O_TRUNC))
		disp = CREATE_ALWAYS;
	else if (flags & SHMKIT_O_CREATE)
		disp = OPEN_ALWAYS;
	else if (flags & SHMKIT_O_TRUNC)
		disp = TRUNCATE_EXISTING;
	DWORD access = GENERIC_READ | ((flags & SHMKIT_O_RDONLY) ? 0 : GENERIC_WRITE);
	DWORD attrs = (mode & 0200) || !(flags & SHMKIT_O_CREATE) ? FILE_ATTRIBUTE_NORMAL : FILE_ATTRIBUTE_READONLY;
	HANDLE h = CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, disp, attrs, NULL);
	return h == INVALID_HANDLE_VALUE ? last_err() : fd_of(h);
}

int os_unlink(const char *path)
{
	wchar_t w[32768];
	int r = widen(path, w, 32768);
	if (r < 0)
		return r;
	return DeleteFileW(w) ? 0 : last_err();
}
int os_geteuid(void) { return -ENOTSUP; } /* no uid: segment trust is the session's ACL */

int os_close(int fd) { return CloseHandle(handle_of(fd)) ? 0 : last_err(); }

static int set_file_size(HANDLE h, uint64_t size)
{
	FILE_END_OF_FILE_INFO info;
	info.EndOfFile.QuadPart = (LONGLONG)size;
	return SetFileInformationByHandle(h, FileEndOfFileInfo, &info, sizeof info) ? 0 : last_err();
}

int os_ftruncate(int fd, uint64_t size)
{
	HANDLE h = handle_of(fd);
	return is_file(h) ? set_file_size(h, size) : -ENOTSUP; /* a section's size is fixed at creation */
}

/* The size of a section: map it whole and ask how large the view is (rounded up to pages). */
static int section_size(HANDLE h, uint64_t *size)
{
	void *p = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
	if (!p)
		return last_err();
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T n = VirtualQuery(p, &mbi, sizeof mbi);
	UnmapViewOfFile(p);
	if (n == 0)
		return last_err();
	*size = (uint64_t)mbi.RegionSize;
	return 0;
}

int os_fallocate(int fd, uint64_t offset, uint64_t length)
{
	HANDLE h = handle_of(fd);
	if (!is_file(h)) {
		uint64_t size;
		int r = section_size(h, &size); /* SEC_COMMIT sections are reserved whole at creation */
		return r < 0 ? r : offset + length <= size ? 0 : -EINVAL;
	}
	LARGE_INTEGER cur;
	if (!GetFileSizeEx(h, &cur))
		return last_err();
	if ((uint64_t)cur.QuadPart >= offset + length)
		return 0;
	FILE_ALLOCATION_INFO alloc;
	alloc.AllocationSize.QuadPart = (LONGLONG)(offset + length);
	if (!SetFileInformationByHandle(h, FileAllocationInfo, &alloc, sizeof alloc))
		return last_err();
	return set_file_size(h, offset + length);
}

static void fill_file(const BY_HANDLE_FILE_INFORMATION *fi, double *out)
{
	out[0] = (double)(((uint64_t)fi->nFileSizeHigh << 32) | fi->nFileSizeLow);
	out[1] = (fi->dwFileAttributes & FILE_ATTRIBUTE_READONLY) ? 0444 : 0644;
	out[2] = 0;
	out[3] = 0;
	out[4] = (double)(((uint64_t)fi->nFileIndexHigh << 32) | fi->nFileIndexLow);
	out[5] = (double)fi->dwVolumeSerialNumber;
	out[6] = (double)fi->nNumberOfLinks;
	out[7] = (fi->dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? 0 : 1;
}

int os_fstat(int fd, double *out)
{
	HANDLE h = handle_of(fd);
	if (is_file(h)) {
		BY_HANDLE_FILE_INFORMATION fi;
		if (!GetFileInformationByHandle(h, &fi))
			return last_err();
		fill_file(&fi, out);
		return 0;
	}
	uint64_t size;
	int r = section_size(h, &size);
	if (r < 0)
		return r;
	out[0] = (double)size;
	out[1] = 0600;
	out[2] = out[3] = out[4] = out[5] = 0;
	out[6] = 1;
	out[7] = 1; /* a shared memory object, like a regular file in /dev/shm */
	return 0;
}

int os_stat(const char *path, double *out)
{
	int fd = os_open(path, SHMKIT_O_RDONLY, 0);
	if (fd < 0)
		return fd;
	int r = os_fstat(fd, out);
	CloseHandle(handle_of(fd));
	return r;
}

int os_fchmod(int fd, uint32_t mode)
{
	HANDLE h = handle_of(fd);
	if (!is_file(h))
		return -ENOTSUP; /* sections have ACLs, not modes */
	FILE_BASIC_INFO bi;
	if (!GetFileInformationByHandleEx(h, FileBasicInfo, &bi, sizeof bi))
		return last_err();
	if (mode & 0200)
		bi.FileAttributes &= ~(DWORD)FILE_ATTRIBUTE_READONLY;
	else
		bi.FileAttributes |= FILE_ATTRIBUTE_READONLY;
	if (bi.FileAttributes == 0)
		bi.FileAttributes = FILE_ATTRIBUTE_NORMAL;
	return SetFileInformationByHandle(h, FileBasicInfo, &bi, sizeof bi) ? 0 : last_err();
}

/* ------------------------------------------------------------------------------------------ */
/* Views and their cross-process identity (for futex keys)                                      */

struct view {
	uintptr_t base;
	uint64_t length;
	uint64_t offset; /* of the view in its object */
	HANDLE file;     /* duplicate of the file handle (msync), or NULL */
	HANDLE section;  /* duplicate of the section handle: keeps its name alive, or NULL */
	char key[KEY_MAX];
};

static struct view views[VIEWS_MAX];
static SRWLOCK views_lock = SRWLOCK_INIT;

/* The kernel name of a section ("\\Sessions\\1\\BaseNamedObjects\\jobs"), or "" when unnamed. */
static void object_name(HANDLE h, char *out, size_t n) { object_string(h, 1 /* ObjectNameInformation */, out, n); }

static void view_add(void *base, uint64_t length, uint64_t offset, HANDLE src, HANDLE file)
{
	struct view v = { (uintptr_t)base, length, offset, NULL, NULL, { 0 } };
	if (file) {
		BY_HANDLE_FILE_INFORMATION fi;
		if (GetFileInformationByHandle(file, &fi))
			snprintf(v.key, sizeof v.key, "file:%lx:%lx%08lx", (unsigned long)fi.dwVolumeSerialNumber,
				 (unsigned long)fi.nFileIndexHigh, (unsigned long)fi.nFileIndexLow);
		DuplicateHandle(GetCurrentProcess(), file, GetCurrentProcess(), &v.file, 0, FALSE, DUPLICATE_SAME_ACCESS);
	} else if (src) {
		/* A name lasts while a handle is open, not while a view is mapped: hold one, so a
		 * segment stays openable by name while any process maps it (as on Linux until unlink). */
		DuplicateHandle(GetCurrentProcess(), src, GetCurrentProcess(), &v.section, 0, FALSE, DUPLICATE_SAME_ACCESS);
		char name[KEY_MAX - 8];
		object_name(src, name, sizeof name);
		if (name[0])
			snprintf(v.key, sizeof v.key, "sec:%s", name);
	}
	AcquireSRWLockExclusive(&views_lock);
	for (int i = 0; i < VIEWS_MAX; i++) {
		if (views[i].base == 0) {
			views[i] = v;
			break;
		}
	}
	ReleaseSRWLockExclusive(&views_lock);
}

/* Removes the view at base; returns 1 if it was a file/section view, 0 if unknown. */
static int view_remove(uintptr_t base)
{
	int found = 0;
	HANDLE file = NULL, section = NULL;
	AcquireSRWLockExclusive(&views_lock);
	for (int i = 0; i < VIEWS_MAX; i++) {
		if (views[i].base == base) {
			file = views[i].file;
			section = views[i].section;
			views[i].base = 0;
			found = 1;
			break;
		}
	}
	ReleaseSRWLockExclusive(&views_lock);
	if (file)
		CloseHandle(file);
	if (section)
		CloseHandle(section);
	return found;
}

static void touch(void *addr, uint64_t length, int write)
{
	volatile unsigned char *p = addr;
	SYSTEM_INFO si;
	GetSystemInfo(&si);
	for (uint64_t i = 0; i < length; i += si.dwPageSize) {
		if (write)
			__atomic_fetch_add(&p[i], 0, __ATOMIC_RELAXED);
		else
			(void)p[i];
	}
}

int os_mmap(int fd, uint64_t length, uint64_t offset, uint32_t flags, void **out)
{
	int write = (flags & SHMKIT_MAP_WRITE) != 0, priv = (flags & SHMKIT_MAP_PRIVATE) != 0;
	if (length == 0)
		return -EINVAL;
	void *p;
	if (fd < 0) {
		p = VirtualAlloc(NULL, (SIZE_T)length, MEM_RESERVE | MEM_COMMIT, write ? PAGE_READWRITE : PAGE_READONLY);
		if (!p)
			return last_err();
		*out = p;
		return 0;
	}
	HANDLE h = handle_of(fd), section = h, file = NULL;
	DWORD access = write ? (priv ? FILE_MAP_COPY : FILE_MAP_WRITE) : FILE_MAP_READ;
	if (is_file(h)) {
		file = h;
		section = CreateFileMappingW(h, NULL, write ? (priv ? PAGE_WRITECOPY : PAGE_READWRITE) : PAGE_READONLY, 0, 0,
					     NULL);
		if (!section)
			return last_err();
	}
	p = MapViewOfFile(section, access, (DWORD)(offset >> 32), (DWORD)offset, (SIZE_T)length);
	int r = p ? 0 : last_err();
	if (p)
		view_add(p, length, offset, section, file);
	if (file)
		CloseHandle(section); /* the view keeps the section alive */
	if (r < 0)
		return r;
	if (flags & SHMKIT_MAP_POPULATE)
		touch(p, length, write && !priv);
	*out = p;
	return 0;
}

int os_munmap(void *addr, uint64_t length)
{
	(void)length;
	if (view_remove((uintptr_t)addr))
		return UnmapViewOfFile(addr) ? 0 : last_err();
	MEMORY_BASIC_INFORMATION mbi;
	if (VirtualQuery(addr, &mbi, sizeof mbi) && mbi.Type == MEM_MAPPED)
		return UnmapViewOfFile(addr) ? 0 : last_err();
	return VirtualFree(addr, 0, MEM_RELEASE) ? 0 : last_err();
}

int os_tombstone(void *addr, uint64_t length)
{
	/* Windows cannot replace a view in place (placeholders need the view to be created as one).
	 * Unmap, then commit private zero pages at the same address at once; another thread could take
	 * the range in between, in which case this fails with ENOMEM and the range stays unmapped. */
	int r = os_munmap(addr, length);
	if (r < 0)
		return r;
	return VirtualAlloc(addr, (SIZE_T)length, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) == addr ? 0 : -ENOMEM;
}

int os_mremap(void *addr, uint64_t old_length, uint64_t new_length, void **out)
{
	(void)addr, (void)old_length, (void)new_length, (void)out;
	return -ENOTSUP; /* callers unmap and map again */
}

int os_msync(void *addr, uint64_t length, uint32_t sync)
{
	if (!FlushViewOfFile(addr, (SIZE_T)length))
		return last_err();
	if (!sync)
		return 0;
	HANDLE file = NULL;
	AcquireSRWLockShared(&views_lock);
	for (int i = 0; i < VIEWS_MAX; i++) {
		if (views[i].base && (uintptr_t)addr >= views[i].base && (uintptr_t)addr < views[i].base + views[i].length) {
			file = views[i].file;
			break;
		}
	}
	ReleaseSRWLockShared(&views_lock);
	return !file || FlushFileBuffers(file) ? 0 : last_err();
}

typedef BOOL(WINAPI *prefetch_fn)(HANDLE, ULONG_PTR, PWIN32_MEMORY_RANGE_ENTRY, ULONG);

int os_madvise(void *addr, uint64_t length, int advice)
{
	switch (advice) {
	case SHMKIT_ADV_POPULATE_WRITE: touch(addr, length, 1); return 0;
	case SHMKIT_ADV_POPULATE_READ: touch(addr, length, 0); return 0;
	case SHMKIT_ADV_WILLNEED: {
		HMODULE k32 = GetModuleHandleW(L"kernel32.dll");
		prefetch_fn prefetch = k32 ? (prefetch_fn)(void (*)(void))GetProcAddress(k32, "PrefetchVirtualMemory") : NULL;
		WIN32_MEMORY_RANGE_ENTRY range = { addr, (SIZE_T)length };
		if (prefetch && !prefetch(GetCurrentProcess(), 1, &range, 0))
			return last_err();
		return 0; /* a hint: nothing to do where the call does not exist */
	}
	case SHMKIT_ADV_DONTNEED: return -ENOTSUP;
	case SHMKIT_ADV_NORMAL:
	case SHMKIT_ADV_RANDOM:
	case SHMKIT_ADV_SEQUENTIAL: return 0; /* access-pattern hints: Windows has none for views */
	default: return -EINVAL;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Futex emulation (see the top of the file)                                                    */

static volatile LONG *futex_table;
static HANDLE futex_sems[FUTEX_BUCKETS];
static INIT_ONCE futex_once = INIT_ONCE_STATIC_INIT;
static SRWLOCK sems_lock = SRWLOCK_INIT;

static BOOL CALLBACK futex_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
	(void)once, (void)param, (void)ctx;
	HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0,
				      FUTEX_BUCKETS * sizeof(LONG), L"shmkit-futex-v1");
	if (!h)
		return TRUE; /* futex_table stays NULL: waits fail with the error below */
	/* The handle stays open for the life of the process: a name lives only while handles do. */
	futex_table = MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, FUTEX_BUCKETS * sizeof(LONG));
	return TRUE;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* The bucket of a word: by (object identity, offset) when it lies in a named or file view, else
 * by (this process, address) for process-private words. */
static unsigned bucket_of(const uint32_t *addr)
{
	uintptr_t a = (uintptr_t)addr;
	uint64_t h = 0xcbf29ce484222325ull;
	int keyed = 0;
	AcquireSRWLockShared(&views_lock);
	for (int i = 0; i < VIEWS_MAX; i++) {
		if (views[i].base && views[i].key[0] && a >= views[i].base && a < views[i].base + views[i].length) {
			uint64_t off = views[i].offset + (a - views[i].base);
			h = fnv1a(h, views[i].key, strlen(views[i].key));
			h = fnv1a(h, &off, sizeof off);
			keyed = 1;
			break;
		}
	}
	ReleaseSRWLockShared(&views_lock);
	if (!keyed) {
		DWORD pid = GetCurrentProcessId();
		h = fnv1a(h, &pid, sizeof pid);
		h = fnv1a(h, &a, sizeof a);
	}
	return (unsigned)(h % FUTEX_BUCKETS);
}

static int bucket_sem(unsigned b, HANDLE *out)
{
	InitOnceExecuteOnce(&futex_once, futex_init, NULL, NULL);
	if (!futex_table)
		return -ENOMEM;
	AcquireSRWLockExclusive(&sems_lock);
	if (!futex_sems[b]) {
		wchar_t name[64];
		swprintf(name, 64, L"shmkit-futex-v1-%u", b);
		futex_sems[b] = CreateSemaphoreW(NULL, 0, 0x7fffffff, name);
	}
	*out = futex_sems[b];
	ReleaseSRWLockExclusive(&sems_lock);
	return *out ? 0 : last_err();
}

static DWORD millis(double timeout_ms)
{
	if (timeout_ms < 0 || timeout_ms >= 4e9)
		return INFINITE;
	double ms = timeout_ms + 0.999;
	return ms >= (double)INFINITE ? INFINITE - 1 : (DWORD)ms;
}

int os_futex_wait(uint32_t *addr, uint32_t expected, double timeout_ms)
{
	unsigned b = bucket_of(addr);
	HANDLE sem;
	int r = bucket_sem(b, &sem);
	if (r < 0)
		return r;
	InterlockedIncrement(&futex_table[b]); /* full barrier: pairs with the waker's load in os_futex_wake */
	if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected) {
		InterlockedDecrement(&futex_table[b]);
		return 1; /* the word no longer holds `expected` */
	}
	DWORD w = WaitForSingleObject(sem, millis(timeout_ms));
	InterlockedDecrement(&futex_table[b]);
	if (w == WAIT_OBJECT_0)
		return 0;
	return w == WAIT_TIMEOUT ? -ETIMEDOUT : last_err();
}

int os_futex_wake(uint32_t *addr, int count)
{
	unsigned b = bucket_of(addr);
	HANDLE sem;
	int r = bucket_sem(b, &sem);
	if (r < 0)
		return r;
	LONG waiters = InterlockedCompareExchange(&futex_table[b], 0, 0); /* seq_cst load */
	if (waiters <= 0)
		return 0;
	ReleaseSemaphore(sem, waiters, NULL); /* fails only at the maximum count: they are awake anyway */
	return waiters < count ? (int)waiters : count;
}

static BOOL CALLBACK pin_module(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
	(void)once, (void)param, (void)ctx;
	HMODULE self;
	GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN, (LPCWSTR)(void *)pin_module,
			   &self);
	return TRUE;
}

int os_futex_waitv(uint32_t **addrs, const uint32_t *expected, int n)
{
	/* Only the waiter threads call this: pin the DLL so FreeLibrary never unmaps code they run
	 * (what -z nodelete does on Linux). */
	static INIT_ONCE pinned = INIT_ONCE_STATIC_INIT;
	InitOnceExecuteOnce(&pinned, pin_module, NULL, NULL);
	if (n <= 0)
		return -EINVAL;
	if (n > MAXIMUM_WAIT_OBJECTS)
		return -ENOSYS; /* the caller falls back to polling */
	HANDLE sems[MAXIMUM_WAIT_OBJECTS];
	unsigned buckets[MAXIMUM_WAIT_OBJECTS];
	int first[MAXIMUM_WAIT_OBJECTS];
	int nb = 0;
	for (int i = 0; i < n; i++) {
		unsigned b = bucket_of(addrs[i]);
		int seen = 0;
		for (int j = 0; j < nb; j++)
			seen |= buckets[j] == b;
		if (seen)
			continue;
		int r = bucket_sem(b, &sems[nb]);
		if (r < 0)
			return r;
		buckets[nb] = b;
		first[nb++] = i;
	}
	for (int j = 0; j < nb; j++)
		InterlockedIncrement(&futex_table[buckets[j]]);
	int changed = -1;
	for (int i = 0; i < n && changed < 0; i++)
		if (__atomic_load_n(addrs[i], __ATOMIC_SEQ_CST) != expected[i])
			changed = i;
	DWORD w = changed < 0 ? WaitForMultipleObjects((DWORD)nb, sems, FALSE, INFINITE) : WAIT_FAILED;
	for (int j = 0; j < nb; j++)
		InterlockedDecrement(&futex_table[buckets[j]]);
	if (changed >= 0)
		return 0;
	if (w - WAIT_OBJECT_0 < (DWORD)nb) /* WAIT_OBJECT_0 is 0 */
		return first[w - WAIT_OBJECT_0];
	return last_err();
}

/* ------------------------------------------------------------------------------------------ */
/* Processes, clocks                                                                            */

int os_getpid(void) { return (int)GetCurrentProcessId(); }

/* Creation time in units of 10 us since 1601 (exact in a double). */
static int64_t creation_time(HANDLE proc)
{
	FILETIME created, exited, kernel, user;
	if (!GetProcessTimes(proc, &created, &exited, &kernel, &user))
		return last_err();
	return (int64_t)((((uint64_t)created.dwHighDateTime << 32) | created.dwLowDateTime) / 100);
}

int64_t os_proc_start_time(int pid)
{
	HANDLE proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
	if (!proc)
		return GetLastError() == ERROR_INVALID_PARAMETER ? -ESRCH : last_err();
	int64_t t = creation_time(proc);
	CloseHandle(proc);
	return t;
}

int os_proc_alive(int pid, double start_time)
{
	HANDLE proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
	if (!proc) {
		DWORD e = GetLastError();
		if (e == ERROR_INVALID_PARAMETER)
			return 0; /* no such process */
		return e == ERROR_ACCESS_DENIED ? 1 : err_of(e); /* it exists, owned by someone else */
	}
	DWORD code = 0;
	int alive = GetExitCodeProcess(proc, &code) && code == STILL_ACTIVE;
	/* A process that exited with code 259 looks alive here; a wait tells the two apart. */
	if (alive && WaitForSingleObject(proc, 0) == WAIT_OBJECT_0)
		alive = 0;
	if (alive && start_time >= 0) {
		int64_t t = creation_time(proc);
		alive = t >= 0 && (double)t == start_time;
	}
	CloseHandle(proc);
	return alive;
}

int os_shm_holders(const char *name, int32_t *out, int max)
{
	(void)name, (void)out, (void)max;
	return -ENOTSUP; /* would need the system handle table (NtQuerySystemInformation) */
}

int os_shm_list(uint8_t *out, uint32_t len)
{
	(void)out, (void)len;
	return -ENOTSUP; /* sections live in the object manager's namespace, not in a directory to list */
}

int os_page_size(void)
{
	SYSTEM_INFO si;
	GetSystemInfo(&si);
	return (int)si.dwPageSize;
}

int os_name_max(void) { return 255; }

double os_now_ns(void)
{
	static LARGE_INTEGER freq;
	LARGE_INTEGER now;
	if (!freq.QuadPart)
		QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&now);
	return (double)now.QuadPart * (1e9 / (double)freq.QuadPart);
}

int os_pin_cpu(int cpu)
{
	if (cpu < 0 || cpu >= 64)
		return -EINVAL;
	return SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu) ? 0 : last_err();
}

int os_rusage(double *out)
{
	FILETIME created, exited, kernel, user;
	if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user))
		return last_err();
	out[0] = (double)(((uint64_t)user.dwHighDateTime << 32) | user.dwLowDateTime) / 1e7;
	out[1] = (double)(((uint64_t)kernel.dwHighDateTime << 32) | kernel.dwLowDateTime) / 1e7;
	out[2] = -1; /* context switch counts: not available per process on Windows */
	out[3] = -1;
	return 0;
}
