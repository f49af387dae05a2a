/* SPDX-License-Identifier: MIT */
/*
 * shmkit native core: the system calls that JavaScript cannot make.
 *
 * Conventions
 *  - Every function returns a value >= 0 on success or -errno on failure. It never calls exit(),
 *    never installs signal handlers and never prints.
 *  - Sizes and offsets are passed as double: exact for every integer below 2^53, and a plain
 *    number on every FFI (no BigInt allocation in Deno, Bun or koffi).
 *  - Mappings are named by a small integer id (a slot in a process-wide table). Atomic and futex
 *    calls take (id, offset) and bounds-check both, so a stale id or a bad offset returns -EBADF /
 *    -EINVAL instead of touching unmapped memory.
 *  - Futex operations are always process-shared (never FUTEX_PRIVATE_FLAG).
 *  - Strings are NUL-terminated UTF-8 byte arrays.
 *  - Every function validates its arguments: a NULL pointer, a NaN, negative, fractional or
 *    too large double, an unknown flag or an id or range outside its mapping is -EINVAL (-EBADF
 *    for a stale mapping id), never a crash (csrc/test/hostile.c checks it under ASan + UBSan).
 *  - Opening a name never blocks and never follows a symbolic link: a FIFO, a device or a
 *    directory squatting a segment name is -ENODEV ("not a regular file"), a symlink -ELOOP.
 *  - Blocking waits (shmkit_futex_wait) sleep in slices of at most 50 ms. When the process has a
 *    handler of its own for SIGINT, SIGTERM, SIGHUP or SIGQUIT (a runtime's signal listener),
 *    the library chains a counting wrapper in front of it (the only signal handling it does) and
 *    a wait that sees a signal arrive returns -EINTR, so the caller can return to its event loop
 *    and let the handler run. Without such a handler the default action is untouched.
 *
 * Platform code lives behind the os_* boundary in csrc/os_<platform>.c.
 */
#ifndef SHMKIT_H
#define SHMKIT_H

#include <stdint.h>

#if defined(_WIN32)
#define SHMKIT_API __declspec(dllexport)
#else
#define SHMKIT_API __attribute__((visibility("default")))
#endif

#define SHMKIT_ABI_VERSION 1

/* shmkit_shm_open / shmkit_open flags */
#define SHMKIT_O_RDONLY 0x1u
#define SHMKIT_O_CREATE 0x2u
#define SHMKIT_O_EXCL 0x4u
#define SHMKIT_O_TRUNC 0x8u

/* shmkit_mmap flags */
#define SHMKIT_MAP_WRITE 0x1u    /* PROT_WRITE */
#define SHMKIT_MAP_PRIVATE 0x2u  /* MAP_PRIVATE (copy-on-write); default MAP_SHARED */
#define SHMKIT_MAP_POPULATE 0x4u /* prefault the whole range after mapping */

/* shmkit_madvise advice */
#define SHMKIT_ADV_POPULATE_WRITE 1
#define SHMKIT_ADV_POPULATE_READ 2
#define SHMKIT_ADV_WILLNEED 3
#define SHMKIT_ADV_DONTNEED 4
#define SHMKIT_ADV_NORMAL 5
#define SHMKIT_ADV_RANDOM 6
#define SHMKIT_ADV_SEQUENTIAL 7

/* shmkit_munmap modes */
#define SHMKIT_UNMAP_RELEASE 0   /* munmap: touching old views afterwards faults */
#define SHMKIT_UNMAP_TOMBSTONE 1 /* replace with private zero pages: old views read 0, never fault */

/* Memory orders: the GCC/C11 __ATOMIC_* values. */
#define SHMKIT_RELAXED 0
#define SHMKIT_ACQUIRE 2
#define SHMKIT_RELEASE 3
#define SHMKIT_ACQ_REL 4
#define SHMKIT_SEQ_CST 5

SHMKIT_API int32_t shmkit_abi_version(void);
SHMKIT_API int32_t shmkit_nop(void);
SHMKIT_API int32_t shmkit_page_size(void);
SHMKIT_API int32_t shmkit_name_max(void);
SHMKIT_API int32_t shmkit_strerror(int32_t err, uint8_t *buf, uint32_t len);
SHMKIT_API int32_t shmkit_errno_name(int32_t err, uint8_t *buf, uint32_t len);
SHMKIT_API int32_t shmkit_errno_value(const uint8_t *name);

/* POSIX shared memory objects. */
SHMKIT_API int32_t shmkit_shm_create(const uint8_t *name, double size, uint32_t mode);
SHMKIT_API int32_t shmkit_shm_open(const uint8_t *name, uint32_t flags);
SHMKIT_API int32_t shmkit_shm_unlink(const uint8_t *name);
SHMKIT_API int32_t shmkit_memfd_create(const uint8_t *name, double size);
SHMKIT_API int32_t shmkit_open_proc_fd(int32_t pid, int32_t fd, uint32_t flags);

/* Files. */
/* Opens a regular file (never blocks on a FIFO: -ENODEV for anything that is not a regular file). */
SHMKIT_API int32_t shmkit_open(const uint8_t *path, uint32_t flags, uint32_t mode);
SHMKIT_API int32_t shmkit_unlink(const uint8_t *path);
SHMKIT_API int32_t shmkit_close(int32_t fd);
SHMKIT_API int32_t shmkit_ftruncate(int32_t fd, double size);
SHMKIT_API int32_t shmkit_fallocate(int32_t fd, double offset, double length);
/* out[0..7] = size, mode, uid, gid, ino, dev, nlink, is_regular */
SHMKIT_API int32_t shmkit_fstat(int32_t fd, double *out);
SHMKIT_API int32_t shmkit_stat(const uint8_t *path, double *out);
SHMKIT_API int32_t shmkit_fchmod(int32_t fd, uint32_t mode);

/* Mappings. */
SHMKIT_API int32_t shmkit_mmap(int32_t fd, double length, double offset, uint32_t flags);
SHMKIT_API double shmkit_map_addr(int32_t id);
SHMKIT_API double shmkit_map_length(int32_t id);
SHMKIT_API int32_t shmkit_munmap(int32_t id, uint32_t mode);
SHMKIT_API int32_t shmkit_mremap(int32_t id, double new_length);
SHMKIT_API int32_t shmkit_msync(int32_t id, double offset, double length, uint32_t sync);
SHMKIT_API int32_t shmkit_madvise(int32_t id, double offset, double length, int32_t advice);
SHMKIT_API int32_t shmkit_copy(int32_t dst_id, double dst_off, int32_t src_id, double src_off, double n);

/* Futex (process-shared). */
/* timeout_ms: >= 0 (Infinity waits for good); NaN or negative is -EINVAL. Returns 0 (woken or
 * spurious), 1 (the word did not hold expected), -ETIMEDOUT, -EINTR (a handled signal arrived). */
SHMKIT_API int32_t shmkit_futex_wait(int32_t id, double offset, uint32_t expected, double timeout_ms);
SHMKIT_API int32_t shmkit_futex_wake(int32_t id, double offset, int32_t count);

/* Asynchronous waits multiplexed over a few native threads (futex_waitv). */
SHMKIT_API int32_t shmkit_waiter_add(int32_t id, double offset, uint32_t expected);
SHMKIT_API int32_t shmkit_waiter_cancel(int32_t token);
/* timeout_ms >= 0 (at most an hour per call); NaN or negative is -EINVAL. */
SHMKIT_API int32_t shmkit_waiter_next(int32_t *out, int32_t max, double timeout_ms);
SHMKIT_API int32_t shmkit_waiter_interrupt(void);
SHMKIT_API int32_t shmkit_waiter_pending(void);

/* Atomics on mapped words. 32-bit results are returned as double (value >= 0, or -errno). */
SHMKIT_API double shmkit_atomic_load_u32(int32_t id, double offset, int32_t order);
SHMKIT_API int32_t shmkit_atomic_store_u32(int32_t id, double offset, uint32_t value, int32_t order);
SHMKIT_API double shmkit_atomic_exchange_u32(int32_t id, double offset, uint32_t value, int32_t order);
SHMKIT_API double shmkit_atomic_cas_u32(int32_t id, double offset, uint32_t expected, uint32_t desired, int32_t order);
SHMKIT_API double shmkit_atomic_fetch_add_u32(int32_t id, double offset, uint32_t delta, int32_t order);
/* 64-bit: the value travels through io[0] (in and out); the return is 0 or -errno. */
SHMKIT_API int32_t shmkit_atomic_load_u64(int32_t id, double offset, int32_t order, uint64_t *io);
SHMKIT_API int32_t shmkit_atomic_store_u64(int32_t id, double offset, int32_t order, uint64_t *io);
SHMKIT_API int32_t shmkit_atomic_exchange_u64(int32_t id, double offset, int32_t order, uint64_t *io);
/* io[0] = expected (out: previous value), io[1] = desired; returns 1 if swapped, 0 if not. */
SHMKIT_API int32_t shmkit_atomic_cas_u64(int32_t id, double offset, int32_t order, uint64_t *io);
SHMKIT_API int32_t shmkit_atomic_fetch_add_u64(int32_t id, double offset, int32_t order, uint64_t *io);

/* Processes. */
SHMKIT_API int32_t shmkit_getpid(void);
/* The effective user id (the owner a trusted segment must have), -ENOTSUP where there is none. */
SHMKIT_API int32_t shmkit_geteuid(void);
/* Signals the blocking waits have seen (a counter; see the conventions above). */
SHMKIT_API double shmkit_signal_count(void);
/* Start time of a process in clock ticks since boot (a pid-reuse-proof identity), or -errno. */
SHMKIT_API double shmkit_proc_start_time(int32_t pid);
/* 1 if pid runs and (start_time < 0 or it matches), 0 if dead, a zombie or a recycled pid. */
SHMKIT_API int32_t shmkit_proc_alive(int32_t pid, double start_time);
/* Pids of processes that have a file whose name ends in /dev/shm/<name> open or mapped. */
SHMKIT_API int32_t shmkit_shm_holders(const uint8_t *name, int32_t *out, int32_t max);
/* Names of the regular files in /dev/shm, each followed by a NUL, into out (at most len bytes).
 * Returns the bytes the full list needs (call again with a larger buffer if > len), or -errno. */
SHMKIT_API int32_t shmkit_shm_list(uint8_t *out, uint32_t len);

/* Byte layout (csrc/shmkit_layout.h), for tests: "ring.tail" -> offsetof, "ring.tail.size" ->
 * sizeof the field (one element of a trailing array), "ring.size" -> sizeof the struct; kinds are
 * common, ring, ring_slot, mempool, mempool_slot, channel, channel_entry, mutex, semaphore,
 * condition, array. -ENOENT for an unknown name; -ENOSYS if built without shmkit_layout.h. */
SHMKIT_API int32_t shmkit_layout_offset(const uint8_t *name);

/* Clocks and scheduling (benchmarks). */
SHMKIT_API double shmkit_now_ns(void);
SHMKIT_API int32_t shmkit_pin_cpu(int32_t cpu);
/* out[0] = user seconds, out[1] = system seconds, out[2] = voluntary ctx switches, out[3] = involuntary */
SHMKIT_API int32_t shmkit_rusage(double *out);

/* ------------------------------------------------------------------------------------------ */
/* Hot operations of Ring and Mempool for bindings with a high per-call cost (Python), one call
 * per operation (csrc/ops.c). A second implementation of docs/layout/ring.md and mempool.md,
 * held against src/ring.ts and src/mempool.ts by the cross-language tests.
 *
 * Each object is driven through a process-local state struct the caller allocates (zeroed) and
 * fills with shmkit_ring_attach / shmkit_mempool_attach; every call re-checks that struct's
 * geometry against the mapping's length (a hostile struct is -EINVAL, a stale mapping -EBADF).
 * Shared state that breaks an invariant is -SHMKIT_EBADHDR. No call blocks except *_park, which
 * sleeps at most timeout_ms (sliced, like shmkit_futex_wait, and -EINTR on a handled signal). */

/* Returned (negated) for shared state that breaks the layout's invariants: shmkit's EBADHDR. */
#define SHMKIT_EBADHDR 1000

struct shmkit_ring_local {
	double offset;      /* the ring's byte offset in the mapping */
	int32_t map_id;     /* the mapping */
	uint32_t mode;      /* 0 spsc, 1 mpsc, 2 spmc, 3 mpmc */
	uint32_t capacity;
	uint32_t slots;     /* N */
	uint32_t token;     /* non-zero, random per object */
	uint32_t roles;     /* bit 0 producer role held, bit 1 consumer role held */
	uint32_t pid;
	uint32_t start_lo;
	uint32_t fork_gen;
	uint32_t p_tail, p_head, c_head, c_tail, head_cache, last_pos;
	uint32_t waits[2]; /* this object's registrations in prodWaiters / consWaiters (parked now) */
	uint32_t reserved;
};

struct shmkit_mempool_local {
	double offset;      /* the pool's byte offset in the mapping */
	int32_t map_id;
	uint32_t count;
	uint32_t block_size;
	uint32_t stride;
	uint32_t procs;
	uint32_t states;    /* statesOffset (from the pool's start) */
	double data;        /* dataOffset (from the pool's start) */
	int32_t slot;       /* our participant slot, -1 until the first get */
	uint32_t tag;       /* our holder tag, 0 until the first get */
	uint32_t cursor;
	uint32_t pid;
	uint32_t start_lo;
	uint32_t fork_gen;
	uint32_t parked;    /* this object's parks counted in waiters now */
	uint32_t reserved;
};

/* sizeof the local structs (kind 1 ring, 2 mempool), so a binding can check its own definition. */
SHMKIT_API int32_t shmkit_ops_local_size(int32_t kind);
/* Tests only: arms a fault point of ops.c ("ring.enq.after_commit:3": SIGKILL at the 3rd hit). */
SHMKIT_API int32_t shmkit_ops_fault(const uint8_t *spec);

/* Formats a ring (capacity 1..2^28, mode 0..3) at offset of mapping id; the caller has written the
 * common header (state 0) and publishes it after. Positions start at `start`. */
SHMKIT_API int32_t shmkit_ring_format(int32_t id, double offset, uint32_t capacity, uint32_t mode, uint32_t start);
/* Validates the ring header at offset (after the common header) and fills *l. */
SHMKIT_API int32_t shmkit_ring_attach(int32_t id, double offset, uint32_t token, struct shmkit_ring_local *l);
/* flags: 0 one value (n must be 1), SHMKIT_BULK all n or none, SHMKIT_BURST as many as fit.
 * Returns the number of values enqueued (dequeued into out), or -errno (-EBUSY: another live
 * process or object holds this single side's role). */
#define SHMKIT_BULK 1u
#define SHMKIT_BURST 2u
SHMKIT_API int32_t shmkit_ring_enqueue(struct shmkit_ring_local *l, const uint32_t *values, int32_t n, uint32_t flags);
SHMKIT_API int32_t shmkit_ring_dequeue(struct shmkit_ring_local *l, uint32_t *out, int32_t n, uint32_t flags);
/* One value without an array (the cheapest call for a binding): 1 enqueued, 0 full, -errno. */
SHMKIT_API int32_t shmkit_ring_enqueue1(struct shmkit_ring_local *l, uint32_t value);
/* One value: the value (0..2^32-1), -EAGAIN when empty, or -errno. */
SHMKIT_API int64_t shmkit_ring_dequeue1(struct shmkit_ring_local *l);
/* Parks a producer (side 0: waits for room) or consumer (side 1: waits for an item) once, for at
 * most timeout_ms (<= 200 ms per call is what callers use): registers as a waiter, re-checks,
 * sleeps on the futex word. Returns 1 if the re-check found room/an item, 0 if woken or the word
 * changed, -ETIMEDOUT, -EINTR (a handled signal), -errno. The caller then retries its operation. */
SHMKIT_API int32_t shmkit_ring_park(struct shmkit_ring_local *l, uint32_t side, double timeout_ms);
/* Items queued now (tail - head, clamped to 0..capacity), or -errno. */
SHMKIT_API double shmkit_ring_count(struct shmkit_ring_local *l);
/* Releases this object's roles (close). */
SHMKIT_API int32_t shmkit_ring_release(struct shmkit_ring_local *l);

/* Validates the mempool at offset (after the common header) and fills *l. */
SHMKIT_API int32_t shmkit_mempool_attach(int32_t id, double offset, struct shmkit_mempool_local *l);
/* Gets a free block: its index, -EAGAIN when none is free, -EBUSY when every participant slot is
 * held by a live process. */
SHMKIT_API int32_t shmkit_mempool_get(struct shmkit_mempool_local *l);
/* Puts block index back (any process may put any held block): 0, -EINVAL (index out of range or
 * already free), -SHMKIT_EBADHDR (a corrupt state word). */
SHMKIT_API int32_t shmkit_mempool_put(struct shmkit_mempool_local *l, int32_t index);
/* Returns the blocks of dead participants; the number of blocks freed. */
SHMKIT_API int32_t shmkit_mempool_reclaim(struct shmkit_mempool_local *l);
/* One park of a getter (needs a slot: call shmkit_mempool_get first): registers, re-checks
 * (a FREE word or a reclaim), sleeps on wakeSeq for at most timeout_ms. 1 = something is free,
 * 0 = woken, -ETIMEDOUT, -EINTR, -errno. */
SHMKIT_API int32_t shmkit_mempool_park(struct shmkit_mempool_local *l, double timeout_ms);
/* Free blocks now (a snapshot). */
SHMKIT_API int32_t shmkit_mempool_available(struct shmkit_mempool_local *l);
/* close(): frees our participant slot if no block carries our tag. */
SHMKIT_API int32_t shmkit_mempool_release(struct shmkit_mempool_local *l);

/* ------------------------------------------------------------------------------------------ */
/* MessageLog operations for bindings (Python), one call per operation (csrc/ops_log.c): a second
 * implementation of docs/layout/log.md, held against src/log.ts by tests/python_log_test.ts. The
 * process-local struct is filled by shmkit_log_attach and re-checked on every call (a hostile
 * struct is -EINVAL, a stale mapping -EBADF); shared state that breaks L1..L4 is -SHMKIT_EBADHDR.
 * Only shmkit_log_park sleeps. */
struct shmkit_log_local {
	double offset;      /* the log's byte offset in the mapping */
	int32_t map_id;
	uint32_t capacity;  /* C */
	uint32_t mode;      /* 0 spsc, 1 mpsc */
	uint32_t max_record;
	uint32_t data_offset;
	uint32_t nslots;    /* P */
	uint32_t token;     /* non-zero, random per object */
	uint32_t roles;     /* bit 0 writer (role or participant slot), bit 1 reader */
	uint32_t pid;
	uint32_t start_lo;
	uint32_t fork_gen;
	int32_t slot;       /* mpsc participant slot, -1 none */
	uint32_t w_tail, w_limit;          /* spsc writer: local tail, cached head */
	uint32_t r_pos, r_head, r_tail;    /* reader: read position, published head, cached tail */
	uint32_t stuck, stuck_at;          /* mpsc reader: waiting at an unwritten header since */
	double stuck_since;                /* ms (shmkit_now_ns / 1e6) */
	uint32_t waits[2];  /* this object's registrations in writeWaiters / readWaiters */
	uint32_t claim_open;               /* a claim (shmkit_log_claim) is open: 1 */
	uint32_t claim_pos, claim_end;     /* its record's position and end */
	uint32_t claim_max, claim_type;    /* its payload bytes and type */
};

SHMKIT_API int32_t shmkit_log_local_size(void);
/* Tests only: arms a fault point of ops_log.c ("log.write.mid_payload:3": SIGKILL at the 3rd hit). */
SHMKIT_API int32_t shmkit_log_fault(const uint8_t *spec);
/* Validates the log fields at offset (after the common header) and fills *l. */
SHMKIT_API int32_t shmkit_log_attach(int32_t id, double offset, uint32_t token, struct shmkit_log_local *l);
/* Appends one record of n payload bytes (n <= maxRecord, type <= 65535): 1 written, 0 no room now,
 * -EBUSY (another live writer holds the spsc role / every participant slot), -errno. */
SHMKIT_API int32_t shmkit_log_write(struct shmkit_log_local *l, const uint8_t *data, uint32_t n, uint32_t type);
/* Publishes what was read before, then takes the next record: 1 and out[0..3] = payload offset in
 * the data area, payload length, type, position after it; 0 none ready; -errno. */
SHMKIT_API int32_t shmkit_log_read(struct shmkit_log_local *l, uint32_t *out);
/* Publishes what was read before, then takes up to max records (at most one lap) into out (4 words
 * each, as shmkit_log_read); returns how many. The head is published by the next read call,
 * shmkit_log_consume or shmkit_log_release, so the caller can copy the payloads first. */
SHMKIT_API int32_t shmkit_log_read_batch(struct shmkit_log_local *l, uint32_t *out, int32_t max);
/* Counts the records read up to position pos (an end position a read returned, or the current
 * one) as consumed and publishes the head; records after pos are delivered again. */
SHMKIT_API int32_t shmkit_log_consume(struct shmkit_log_local *l, uint32_t pos);
/* One park: side 1 the reader (until a record may be there), side 0 a writer (until n payload
 * bytes may fit). 1 ready at the re-check, 0 woken or a slice passed, -ETIMEDOUT, -EINTR, -errno. */
SHMKIT_API int32_t shmkit_log_park(struct shmkit_log_local *l, uint32_t side, uint32_t n, double timeout_ms);
/* Appends the longest prefix of `count` records that fits (src/log.ts tryWriteBatch: one claim and
 * one publish; never wraps the end of the data area): payload i is lens[i] bytes of data, packed one
 * after the other (exactly data_len bytes in all). Every lens[i] <= maxRecord and type <= 65535, else
 * -EINVAL with nothing written. Returns how many were written (0: no room), -EINPROGRESS while a
 * claim of this object is open, -EBUSY, -errno. */
SHMKIT_API int32_t shmkit_log_write_batch(struct shmkit_log_local *l, const uint8_t *data, uint64_t data_len,
                                          const uint32_t *lens, uint32_t count, uint32_t type);
/* Claims room for one record of up to n payload bytes to write in place (src/log.ts tryClaim): 1
 * and out[0] = the payload's offset in the data area; 0 no room now; -EINPROGRESS if a claim is
 * open already; -errno. The claim is finished by shmkit_log_finish_claim (or shmkit_log_release,
 * which aborts it). */
SHMKIT_API int32_t shmkit_log_claim(struct shmkit_log_local *l, uint32_t n, uint32_t type, uint32_t *out);
/* Commits the open claim with `length` payload bytes (<= its n; the rest becomes padding), or with
 * abort != 0 gives it up (a padding record readers skip). 0, or -EINVAL (no claim open, length too
 * long: the claim stays open), -errno. */
SHMKIT_API int32_t shmkit_log_finish_claim(struct shmkit_log_local *l, uint32_t length, uint32_t abort);
/* Bytes claimed and not consumed (tail - head, 0 if impossible), or -errno. */
SHMKIT_API double shmkit_log_size(struct shmkit_log_local *l);
/* close(): publishes the head, releases the roles and the participant slot, gives back waits. */
SHMKIT_API int32_t shmkit_log_release(struct shmkit_log_local *l);

/* ------------------------------------------------------------------------------------------ */
/* Mutex, Semaphore and Condition operations for bindings (Python), one call per operation
 * (csrc/ops_sync.c): a second implementation of docs/layout/locks.md, held against src/mutex.ts,
 * src/semaphore.ts and src/condition.ts by tests/python_locks_test.ts. Each call takes the mapping
 * id and the object's offset (64-byte aligned, inside the mapping: else -EINVAL, -EBADF for a
 * stale id); Mutex calls also take N, the slot count read at attach (1..65535), which must still
 * be the header's slotCount (else -SHMKIT_EBADHDR). A corrupt lock word or count is
 * -SHMKIT_EBADHDR. Only *_park sleeps (at most slice_ms; -EINTR on a handled signal). */

/* Checks the lock word against I1/I2: 0 or -SHMKIT_EBADHDR. */
SHMKIT_API int32_t shmkit_mutex_check(int32_t id, double offset, uint32_t n);
/* Claims a participant slot for this process: the slot number 1..n, or -ENOSPC. */
SHMKIT_API int32_t shmkit_mutex_claim(int32_t id, double offset, uint32_t n);
/* Frees slot (1..n) if it holds this process's identity. */
SHMKIT_API int32_t shmkit_mutex_release_slot(int32_t id, double offset, uint32_t n, uint32_t slot);
/* One acquisition attempt with our slot. flags: 1 check the holder's liveness (take over from a
 * dead one), 2 the caller parked before (keep WAITERS), 4 try the fast path first. Returns 0 got
 * it, 1 got it from a dead or departed holder (recovered), 2 held by another live process, 3 held
 * by this process, or -errno. */
SHMKIT_API int32_t shmkit_mutex_try(int32_t id, double offset, uint32_t n, uint32_t slot, uint32_t flags);
/* Sets WAITERS on a held word and sleeps on it for at most slice_ms. Returns 0 woken (or the word
 * moved), 1 the slice passed without a wake, 2 the lock was free (retry), -EINTR, -errno. */
SHMKIT_API int32_t shmkit_mutex_park(int32_t id, double offset, uint32_t n, double slice_ms);
/* After a park whose wake may have been ours but was not used: wakes one if the word is not seen. */
SHMKIT_API int32_t shmkit_mutex_pass_wake(int32_t id, double offset, uint32_t n, uint32_t seen);
/* Unlocks when the word names slot: 0, -EPERM when it does not. */
SHMKIT_API int32_t shmkit_mutex_unlock(int32_t id, double offset, uint32_t n, uint32_t slot);
/* Releases a held lock as ABANDONED (close while holding): 0 (also when slot does not hold it). */
SHMKIT_API int32_t shmkit_mutex_abandon(int32_t id, double offset, uint32_t n, uint32_t slot);

/* Semaphore: the count (0..2^31-1); 1 if a unit was taken, 0 if none; release n (1..2^31-1):
 * 0, -EOVERFLOW past 2^31-1; park: registers in waiters, sleeps while the count is 0 for at most
 * slice_ms, unregisters: 0, -ETIMEDOUT, -EINTR; pass_wake: wakes one sleeper if units remain. */
SHMKIT_API int32_t shmkit_sem_value(int32_t id, double offset);
SHMKIT_API int32_t shmkit_sem_try(int32_t id, double offset);
SHMKIT_API int32_t shmkit_sem_release(int32_t id, double offset, uint32_t n);
SHMKIT_API int32_t shmkit_sem_park(int32_t id, double offset, double slice_ms);
SHMKIT_API int32_t shmkit_sem_pass_wake(int32_t id, double offset);

/* Condition: enter adds 1 to waiters and returns seq (0..2^32-1) or -errno; park sleeps while seq
 * reads s for at most slice_ms: 1 woken or seq moved, 0 the slice passed, -EINTR; leave subtracts
 * 1 from waiters; notify(n >= 1) moves seq and wakes up to n if anyone waits. */
SHMKIT_API int64_t shmkit_cond_enter(int32_t id, double offset);
SHMKIT_API int32_t shmkit_cond_park(int32_t id, double offset, uint32_t s, double slice_ms);
SHMKIT_API int32_t shmkit_cond_leave(int32_t id, double offset);
SHMKIT_API int32_t shmkit_cond_notify(int32_t id, double offset, int32_t n);

/* ------------------------------------------------------------------------------------------ */
/* SharedHeap operations for bindings (Python), one call per operation (csrc/ops_heap.c): a second
 * implementation of docs/layout/heap.md, held against src/heap.ts by tests/python_heap_test.ts.
 * The binding validates the header and fills the local struct (offset, map_id, arena_size,
 * name_count, slots, fork_gen); every call re-derives the geometry, re-checks the range (-EINVAL,
 * -EBADF) and the header (-SHMKIT_EBADHDR). A corrupt heap is -SHMKIT_EBADHDR with why/a/b/c set
 * (python/shmkit/heap.py turns them into src/heap.ts's messages). No call sleeps: -EAGAIN means
 * "the heap lock is taken (or no participant slot yet)": take it through the Mutex at offset + 832
 * (csrc/ops_sync.c), set slot, and call again with flags 1 (held) | 2 (the Mutex recovered it).
 * Flags 4 / 8: find_or_alloc's open operation (see shmkit_heap_name). */
struct shmkit_heap_local {
	double offset;       /* the heap's byte offset in the mapping */
	int32_t map_id;
	uint32_t arena_size; /* S, nameCount and slots read at attach */
	uint32_t name_count;
	uint32_t slots;
	uint32_t slot;       /* this object's participant slot in the heap lock, 0 before the first lock */
	uint32_t fork_gen;
	uint32_t holding;    /* an operation of this object is open and holds the lock (flag 4) */
	uint32_t seq, jpos;  /* that operation's sequence and journal position */
	uint32_t created;    /* out: find_or_alloc made a new allocation */
	uint32_t recovered;  /* out: the last lock rolled back or recovered something */
	uint32_t why, a, b, c; /* out: the EBADHDR reason and its values; ENOMEM: a = largest free block */
};

SHMKIT_API int32_t shmkit_heap_local_size(void);
/* out[0..5]: byteLength, arenaOffset, mutexOffset, journalOffset, namesOffset, bitmapOffset. */
SHMKIT_API int32_t shmkit_heap_byte_length(uint32_t arena_size, uint32_t names, uint32_t slots, double *out);
/* Checks the local struct against the mapping and the header: 0 or -errno. */
SHMKIT_API int32_t shmkit_heap_bind(struct shmkit_heap_local *l);
/* The offset (in the mapping) of n bytes aligned to align, -ENOMEM (a = largest free block), -EAGAIN. */
SHMKIT_API int64_t shmkit_heap_alloc(struct shmkit_heap_local *l, double n, uint32_t align, uint32_t flags);
/* 0, -EINVAL when offset is not a live allocation (nothing changes), -EAGAIN, -errno. */
SHMKIT_API int32_t shmkit_heap_free(struct shmkit_heap_local *l, double offset, uint32_t flags);
/* Usable bytes of the live allocation at offset, -EINVAL, -EAGAIN, -errno. */
SHMKIT_API int64_t shmkit_heap_size_of(struct shmkit_heap_local *l, double offset, uint32_t flags);
/* Named roots: op 0 get (offset or 0), 1 set (arg = offset: 0, -EINVAL, -ENOSPC), 2 delete,
 * 3 destroy (1 existed, 0 not), 4 find_or_alloc (arg bytes zeroed, align; offset, l->created;
 * with flag 4 a new allocation returns with the operation open), 5 put (flag 8: name the block at
 * arg with kind inside the open operation); shmkit_heap_end then commits or undoes it. */
SHMKIT_API int64_t shmkit_heap_name(struct shmkit_heap_local *l, uint32_t op, const uint8_t *name, uint32_t len,
				    double arg, uint32_t align, uint32_t kind, uint32_t flags);
/* Opens an empty operation (the lock held, its sequence in l->seq): 0 or -errno; shmkit_heap_end(l,
 * abort) closes it. */
SHMKIT_API int32_t shmkit_heap_begin(struct shmkit_heap_local *l, uint32_t flags);
SHMKIT_API int32_t shmkit_heap_end(struct shmkit_heap_local *l, uint32_t abort);
/* out[0..9]: used, free, largest free, allocations, free blocks, names, recoveries, rolledBack,
 * leakedInFlight, lastLeaked (heap-relative payload, 0 none). */
SHMKIT_API int32_t shmkit_heap_stats(struct shmkit_heap_local *l, double *out, uint32_t flags);
/* Undoes and unlocks an operation of this object left open (close after an exception). */
SHMKIT_API int32_t shmkit_heap_release(struct shmkit_heap_local *l);

/* Channel operations for bindings (Python), one call per operation (csrc/ops_chan.c): a second
 * implementation of docs/layout/channel.md (T1, Q1, D1, F1, R1 and the waits), held against
 * src/channel.ts by tests/python_channel_test.ts. The ready ring is driven through the embedded
 * ring local with csrc/ops.c's ring operations. The process-local struct is filled by
 * shmkit_chan_attach and re-checked against the mapping on every call (a hostile struct is
 * -EINVAL, a stale mapping -EBADF); shared state that breaks C1..C4 (a ready index >= slots, a
 * claimed block that is not QUEUED, a length > slotSize, a participant or slot word that changed
 * under its owner) is -SHMKIT_EBADHDR. Every loop over shared state is bounded. Only
 * shmkit_chan_park sleeps. The caller formats a channel (header fields, the ready ring through
 * shmkit_ring_format) itself, as src/channel.ts init does. Mode 2 (spsc-ordered) uses the same
 * calls after shmkit_chan_scratch: indices are blocks in ring order, take/queue/unloan reserve and
 * publish them in order, release marks a position (the head moves over released ones), reclaim is
 * 0, register a no-op, -EBUSY names the ready ring's producer/consumer role. */
struct shmkit_chan_local {
	double offset;        /* the channel's byte offset in the mapping */
	int32_t map_id;
	uint32_t slots;
	uint32_t slot_size;
	uint32_t mode;        /* 0 spsc, 1 mpmc, 2 spsc-ordered */
	uint32_t procs;       /* maxProcesses */
	uint32_t ready_off;   /* readyOffset, tableOffset, dataOffset (from the channel's start) */
	uint32_t table_off;
	uint32_t data_off;
	int32_t p;            /* our participant entry, -1 until the first send or receive */
	uint32_t tag;         /* (gen & 0x3fffff) << 8 | p, 0 until registered */
	uint32_t op;          /* our op counter (even between brackets) */
	uint32_t cursor;      /* where the next take looks first */
	uint32_t pid;
	uint32_t start_lo;
	uint32_t fork_gen;
	uint32_t parked;      /* this object's parks counted in waiters now */
	uint32_t bad;         /* a batch receive found a corrupt index: the next receive reports it */
	double last_reclaim;  /* ms (shmkit_now_ns / 1e6) of the last reclaim by a full take */
	struct shmkit_ring_local ring; /* the ready ring (offset + ready_off) */
	/* spsc-ordered (mode 2) only (docs/layout/channel.md "spsc-ordered"): this object's sender
	 * and receiver state, and its scratch (shmkit_chan_scratch). */
	uint32_t o_roles;     /* bit 0 the sender has started (o_t.. valid), bit 1 the receiver */
	uint32_t o_t, o_n;    /* sender: published tail, positions reserved after it (loans, unpublished sends) */
	uint32_t o_b, o_hc;   /* sender: the block of position o_t, cached head (<= the shared head) */
	uint32_t o_next;      /* receiver: the next position to hand out */
	uint32_t o_head;      /* receiver: every position before it is released */
	uint32_t o_pub;       /* receiver: the head last stored */
	uint32_t o_tc;        /* receiver: cached tail */
	uint32_t o_pad;
	uint8_t *o_mem;       /* scratch: pos u32[slots], done u8[slots], held u8[slots], rel u8[ring slots] */
	uint64_t o_len;       /* its byte length */
	uint64_t o_chk;       /* a keyed check of (o_mem, o_len, this struct's address) */
};

SHMKIT_API int32_t shmkit_chan_local_size(void);
/* Validates the channel at offset (after the common header), its ready ring, and fills *l (token:
 * non-zero, random per object, for the ring's single roles). */
SHMKIT_API int32_t shmkit_chan_attach(int32_t id, double offset, uint32_t token, struct shmkit_chan_local *l);
/* spsc-ordered (mode 2) keeps per-block state in process memory the caller owns: buf NULL returns
 * the bytes it needs (0 for modes 0 and 1); then, right after attach, pass a buffer of exactly that
 * length (zeroed here; it must outlive the local's use): 0, -EINVAL. Every other call on a mode 2
 * local without it is -EINVAL. */
SHMKIT_API int32_t shmkit_chan_scratch(struct shmkit_chan_local *l, uint8_t *buf, double len);
/* Claims a participant entry (the first send, take or receive does it): 0, -EBUSY when every entry
 * is held by a live Channel object. */
SHMKIT_API int32_t shmkit_chan_register(struct shmkit_chan_local *l);
/* T1: takes a FREE block (LOANED to us): its index, -EAGAIN when none is free (after a reclaim at
 * most every 250 ms), -errno. */
SHMKIT_API int32_t shmkit_chan_take(struct shmkit_chan_local *l);
/* T1 + write + Q1: sends n <= slotSize bytes: 1 sent, 0 no free block, -EINVAL (n too large),
 * -EBUSY (spsc: another process sends), -errno. */
SHMKIT_API int32_t shmkit_chan_send(struct shmkit_chan_local *l, const uint8_t *data, uint32_t n);
/* Sends lens[0], lens[1], ... bytes taken in turn from data (total: the bytes data holds, at least
 * their sum) while blocks are free, in order: T1 for each, then one Q1 bracket and one burst
 * enqueue per chunk of up to 256. Returns how many were sent (0 no free block), -EINVAL (a length
 * > slotSize, or more bytes than total), -EBUSY, -SHMKIT_EBADHDR, -errno. */
SHMKIT_API int32_t shmkit_chan_send_batch(struct shmkit_chan_local *l, const uint8_t *data, double total,
					  const uint32_t *lens, int32_t n);
/* Q1 for a block this object took (shmkit_chan_take) and wrote in place: length n <= slotSize.
 * 0, -EINVAL (not loaned to this object, or n too large), -errno. */
SHMKIT_API int32_t shmkit_chan_queue(struct shmkit_chan_local *l, int32_t index, uint32_t n);
/* Gives back a block taken and not queued: 0, -EINVAL (not loaned to this object). */
SHMKIT_API int32_t shmkit_chan_unloan(struct shmkit_chan_local *l, int32_t index);
/* D1 for one message: (length << 24 | index) of a block now HELD by us, -EAGAIN when none is
 * queued, -SHMKIT_EBADHDR (an index >= slots or not QUEUED, dropped; a length > slotSize, its
 * block released), -EBUSY (spsc: another process receives), -errno. */
SHMKIT_API int64_t shmkit_chan_recv(struct shmkit_chan_local *l);
/* D1 for up to max messages in one bracket (a burst from the ready ring): out[2j] = index,
 * out[2j + 1] = length; returns how many (0 none queued). A corrupt index or length among them is
 * dropped (its block released if claimed) and reported by the next receive call, after the good
 * ones. */
SHMKIT_API int32_t shmkit_chan_recv_batch(struct shmkit_chan_local *l, uint32_t *out, int32_t max);
/* F1: frees a block HELD by us and wakes parked senders: 0, -SHMKIT_EBADHDR (not held by us). */
SHMKIT_API int32_t shmkit_chan_release(struct shmkit_chan_local *l, int32_t index);
/* F1 for out[0], out[2], ... out[2(n-1)] (a batch from shmkit_chan_recv_batch), one wake. */
SHMKIT_API int32_t shmkit_chan_release_batch(struct shmkit_chan_local *l, const uint32_t *out, int32_t n);
/* One park. side 0, a sender with no free block: reclaims if 250 ms passed since the last
 * reclaim, registers in waiters (and its entry's parked), re-checks for a FREE word, sleeps on
 * wakeSeq for at most min(timeout_ms, 50). side 1, a receiver: the ready ring's consumer park.
 * 1 = ready at the re-check (retry), 0 = woken or a slice passed, -ETIMEDOUT, -EINTR, -errno. */
SHMKIT_API int32_t shmkit_chan_park(struct shmkit_chan_local *l, uint32_t side, double timeout_ms);
/* R1 a/b/c: frees blocks of dead participants and orphaned QUEUED blocks, frees dead entries;
 * returns how many blocks were freed. */
SHMKIT_API int32_t shmkit_chan_reclaim(struct shmkit_chan_local *l);
/* Snapshots: messages queued (ready ring count), FREE blocks. */
SHMKIT_API int32_t shmkit_chan_size(struct shmkit_chan_local *l);
SHMKIT_API int32_t shmkit_chan_available(struct shmkit_chan_local *l);
/* close(): frees every block still LOANED to or HELD by this object, gives back its parks, frees
 * its participant entry and the ready ring's roles. */
SHMKIT_API int32_t shmkit_chan_close(struct shmkit_chan_local *l);

#endif
