/* SPDX-License-Identifier: MIT */
/*
 * shmkit byte layout as C structs: the mirror of docs/LAYOUT.md (made from docs/layout/) and of the
 * tables at the top of src/layout.ts, src/ring.ts, src/mempool.ts, src/channel.ts, src/mutex.ts,
 * src/semaphore.ts, src/condition.ts and src/shared_array.ts. A C (or C++, Rust bindgen, ...)
 * program can include this header alone to read and write shmkit objects in a mapped segment.
 * It needs only <stddef.h> and <stdint.h> and compiles with `cc -std=c11 -fsyntax-only`.
 *
 * Every field is checked below with _Static_assert(offsetof(...)) and every struct with
 * _Static_assert(sizeof(...)), so the compiler refuses a mirror that drifts from the documented
 * offsets. csrc/shmkit.c exports the same numbers at run time (shmkit_layout_offset), and
 * tests/layout_c_test.ts compares them with the TypeScript constants.
 *
 * Rules a C program must follow (docs/layout/00_common.md):
 *  - Little-endian only: the structs use host byte order, so this header refuses big-endian hosts.
 *  - An object starts at a byte offset that is a multiple of SHMKIT_OBJECT_ALIGN (64) of its
 *    segment; cast `(struct shmkit_ring *)(base + byteOffset)`.
 *  - Read `common.state` with acquire ordering and touch nothing else until it reads
 *    SHMKIT_STATE_READY; check every size and offset against the segment size before using it.
 *  - Fields that processes change concurrently (lock words, counters, indices, identities) must be
 *    accessed with atomic operations on the mapped memory, e.g. `__atomic_load_n(&r->tail,
 *    __ATOMIC_ACQUIRE)`. They are plain integer types here (not _Atomic) so the structs also
 *    serve C++ (GCC, Clang) and FFI generators; 32-bit words are process-shared futex words.
 *  - Trailing variable-length regions (ring slots, mutex and mempool participant tables, array
 *    shape) are flexible array members: sizeof(struct) is the fixed header before them.
 *  - Names: struct members use the field names of docs/LAYOUT.md and the TypeScript offset
 *    constants (camelCase), so a name maps one-to-one between the three. `reserved*` members are
 *    documented zero bytes; `pad*` members are bytes the docs leave out (gaps between documented
 *    fields, always zero).
 */
#ifndef SHMKIT_LAYOUT_H
#define SHMKIT_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__cplusplus) && !defined(_Static_assert)
#define _Static_assert static_assert /* C++11; flexible array members need GCC or Clang there */
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shmkit objects are little-endian; these structs use host byte order"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Common header (64 bytes): src/layout.ts HDR, docs/layout/00_common.md                        */

#define SHMKIT_MAGIC 0x4B4D4853u /* the bytes "SHMK" read as a little-endian u32 */
#define SHMKIT_LAYOUT_VERSION 1
#define SHMKIT_COMMON_HEADER_SIZE 64
#define SHMKIT_OBJECT_ALIGN 64

/* kind */
#define SHMKIT_KIND_RING 1
#define SHMKIT_KIND_MEMPOOL 2
#define SHMKIT_KIND_CHANNEL 3
#define SHMKIT_KIND_MUTEX 4
#define SHMKIT_KIND_SEMAPHORE 5
#define SHMKIT_KIND_CONDITION 6
#define SHMKIT_KIND_ARRAY 7

/* state */
#define SHMKIT_STATE_INIT 0
#define SHMKIT_STATE_READY 1

/*
 * | off | size | field         | type | note                                              |
 * |-----|------|---------------|------|---------------------------------------------------|
 * | 0   | 4    | magic         | u32  | SHMKIT_MAGIC                                      |
 * | 4   | 2    | layoutVersion | u16  | SHMKIT_LAYOUT_VERSION                             |
 * | 6   | 2    | kind          | u16  | SHMKIT_KIND_*                                     |
 * | 8   | 4    | state         | u32  | 0 init, 1 ready (stored last, release)            |
 * | 12  | 4    | headerSize    | u32  | bytes from the object start to the kind's payload |
 * | 16  | 8    | byteLength    | u64  | total bytes of the object                         |
 * | 24  | 4    | creatorPid    | u32  |                                                   |
 * | 28  | 4    | flags         | u32  | kind-specific (ring, channel: the mode)           |
 * | 32  | 8    | creatorStart  | u64  | creator start time, clock ticks since boot        |
 * | 40  | 8    | createdMs     | f64  | ms since the Unix epoch                           |
 * | 48  | 16   | reserved      |      | zero                                              |
 */
struct shmkit_common {
	uint32_t magic;
	uint16_t layoutVersion;
	uint16_t kind;
	uint32_t state;
	uint32_t headerSize;
	uint64_t byteLength;
	uint32_t creatorPid;
	uint32_t flags;
	uint64_t creatorStart;
	double createdMs;
	uint8_t reserved[16];
};

_Static_assert(offsetof(struct shmkit_common, magic) == 0, "common.magic");
_Static_assert(offsetof(struct shmkit_common, layoutVersion) == 4, "common.layoutVersion");
_Static_assert(offsetof(struct shmkit_common, kind) == 6, "common.kind");
_Static_assert(offsetof(struct shmkit_common, state) == 8, "common.state");
_Static_assert(offsetof(struct shmkit_common, headerSize) == 12, "common.headerSize");
_Static_assert(offsetof(struct shmkit_common, byteLength) == 16, "common.byteLength");
_Static_assert(offsetof(struct shmkit_common, creatorPid) == 24, "common.creatorPid");
_Static_assert(offsetof(struct shmkit_common, flags) == 28, "common.flags");
_Static_assert(offsetof(struct shmkit_common, creatorStart) == 32, "common.creatorStart");
_Static_assert(offsetof(struct shmkit_common, createdMs) == 40, "common.createdMs");
_Static_assert(offsetof(struct shmkit_common, reserved) == 48, "common.reserved");
_Static_assert(sizeof(struct shmkit_common) == SHMKIT_COMMON_HEADER_SIZE, "common.size");
_Static_assert(sizeof(double) == 8, "f64 fields need an IEEE-754 double");

/* ------------------------------------------------------------------------------------------ */
/* Ring (kind 1): src/ring.ts RING, docs/layout/ring.md                                        */

#define SHMKIT_RING_HEADER_SIZE 384
#define SHMKIT_RING_MIN_SLOTS 4
#define SHMKIT_RING_MAX_SLOTS (1u << 28)
/* mode (also in common.flags) */
#define SHMKIT_RING_SPSC 0
#define SHMKIT_RING_MPSC 1
#define SHMKIT_RING_SPMC 2
#define SHMKIT_RING_MPMC 3

/*
 * | off | size | field         | note                                                         |
 * |-----|------|---------------|--------------------------------------------------------------|
 * | 0   | 64   | common        | kind 1, headerSize 384, byteLength 384 + 8 N, flags = mode    |
 * | 64  | 4    | capacity      | exact item count, 1 <= capacity <= N                         |
 * | 68  | 4    | slotCount     | N, a power of two, 4..2^28                                   |
 * | 72  | 4    | mode          | SHMKIT_RING_*                                                |
 * | 76  | 4    | slotsOffset   | 384                                                          |
 * | 80  | 48   | reserved      | zero                                                         |
 * | 128 | 4    | tail          | u32 free-running; alone on its cache line (pad1: 132..191)   |
 * | 192 | 4    | head          | u32 free-running; alone on its cache line (pad2: 196..255)   |
 * | 256 | 4    | consWaiters   | consumers parked on tail                                     |
 * | 260 | 4    | prodWaiters   | producers parked on head                                     |
 * | 264 | 4    | consSleep     | 1 = a consumer asked to be woken                             |
 * | 268 | 4    | prodSleep     | 1 = a producer asked to be woken                             |
 * | 272 | 48   | pad3          | not in the docs; zero                                        |
 * | 320 | 8    | producerRole  | u64: lo = pid, hi = low 32 bits of start time; 0 = free      |
 * | 328 | 4    | producerToken | per-object token of the holder                               |
 * | 332 | 4    | pad4          | not in the docs; zero                                        |
 * | 336 | 8    | consumerRole  | as producerRole                                              |
 * | 344 | 4    | consumerToken |                                                              |
 * | 348 | 4    | pad5          | not in src/ring.ts's table; zero                             |
 * | 352 | 8    | bulkLock      | u64 (pid, start lo) of the enqueueBulk in progress; 0 none   |
 * | 360 | 4    | bulkPhase     | 0 placing (abort on death), 1 committing (complete on death) |
 * | 364 | 20   | reserved2     | zero                                                         |
 * | 384 | 8 N  | slots         | CAS modes: struct shmkit_ring_slot[N]; spsc: u32 values[N]    |
 *
 * spsc stores dense u32 values instead: the value of position p is at
 * ((uint32_t *)r->slots)[p & (N - 1)] (SHMKIT_RING_SPSC_VALUES).
 */
struct shmkit_ring_slot {
	uint32_t value;
	uint32_t seq; /* p EMPTY, p + 1 FULL, p + N taken; 64-bit CAS (value, seq) together */
};

struct shmkit_ring {
	struct shmkit_common common;
	uint32_t capacity;
	uint32_t slotCount;
	uint32_t mode;
	uint32_t slotsOffset;
	uint8_t reserved[48];
	uint32_t tail;
	uint8_t pad1[60];
	uint32_t head;
	uint8_t pad2[60];
	uint32_t consWaiters;
	uint32_t prodWaiters;
	uint32_t consSleep;
	uint32_t prodSleep;
	uint8_t pad3[48];
	uint64_t producerRole;
	uint32_t producerToken;
	uint32_t pad4;
	uint64_t consumerRole;
	uint32_t consumerToken;
	uint32_t pad5;
	uint64_t bulkLock;
	uint32_t bulkPhase;
	uint8_t reserved2[20];
	struct shmkit_ring_slot slots[];
};

#define SHMKIT_RING_SPSC_VALUES(r) ((uint32_t *)(void *)(r)->slots)

_Static_assert(offsetof(struct shmkit_ring_slot, value) == 0, "ring_slot.value");
_Static_assert(offsetof(struct shmkit_ring_slot, seq) == 4, "ring_slot.seq");
_Static_assert(sizeof(struct shmkit_ring_slot) == 8, "ring_slot.size");
_Static_assert(offsetof(struct shmkit_ring, common) == 0, "ring.common");
_Static_assert(offsetof(struct shmkit_ring, capacity) == 64, "ring.capacity");
_Static_assert(offsetof(struct shmkit_ring, slotCount) == 68, "ring.slotCount");
_Static_assert(offsetof(struct shmkit_ring, mode) == 72, "ring.mode");
_Static_assert(offsetof(struct shmkit_ring, slotsOffset) == 76, "ring.slotsOffset");
_Static_assert(offsetof(struct shmkit_ring, reserved) == 80, "ring.reserved");
_Static_assert(offsetof(struct shmkit_ring, tail) == 128, "ring.tail");
_Static_assert(offsetof(struct shmkit_ring, pad1) == 132, "ring.pad1");
_Static_assert(offsetof(struct shmkit_ring, head) == 192, "ring.head");
_Static_assert(offsetof(struct shmkit_ring, pad2) == 196, "ring.pad2");
_Static_assert(offsetof(struct shmkit_ring, consWaiters) == 256, "ring.consWaiters");
_Static_assert(offsetof(struct shmkit_ring, prodWaiters) == 260, "ring.prodWaiters");
_Static_assert(offsetof(struct shmkit_ring, consSleep) == 264, "ring.consSleep");
_Static_assert(offsetof(struct shmkit_ring, prodSleep) == 268, "ring.prodSleep");
_Static_assert(offsetof(struct shmkit_ring, pad3) == 272, "ring.pad3");
_Static_assert(offsetof(struct shmkit_ring, producerRole) == 320, "ring.producerRole");
_Static_assert(offsetof(struct shmkit_ring, producerToken) == 328, "ring.producerToken");
_Static_assert(offsetof(struct shmkit_ring, pad4) == 332, "ring.pad4");
_Static_assert(offsetof(struct shmkit_ring, consumerRole) == 336, "ring.consumerRole");
_Static_assert(offsetof(struct shmkit_ring, consumerToken) == 344, "ring.consumerToken");
_Static_assert(offsetof(struct shmkit_ring, pad5) == 348, "ring.pad5");
_Static_assert(offsetof(struct shmkit_ring, bulkLock) == 352, "ring.bulkLock");
_Static_assert(offsetof(struct shmkit_ring, bulkPhase) == 360, "ring.bulkPhase");
_Static_assert(offsetof(struct shmkit_ring, reserved2) == 364, "ring.reserved2");
_Static_assert(offsetof(struct shmkit_ring, slots) == SHMKIT_RING_HEADER_SIZE, "ring.slots");
_Static_assert(sizeof(struct shmkit_ring) == SHMKIT_RING_HEADER_SIZE, "ring.size");

/* ------------------------------------------------------------------------------------------ */
/* Mempool (kind 2): src/mempool.ts MEMPOOL, docs/layout/mempool.md                            */

#define SHMKIT_MEMPOOL_HEADER_SIZE 192
#define SHMKIT_MEMPOOL_MAX_COUNT (1u << 28)
#define SHMKIT_MEMPOOL_MAX_PROCESSES 256
/* state word of a block: FREE, or HELD | (gen & GEN_MASK) << 8 | slot */
#define SHMKIT_MEMPOOL_FREE 0u
#define SHMKIT_MEMPOOL_HELD 0x40000000u
#define SHMKIT_MEMPOOL_GEN_MASK 0x3fffffu

/*
 * | off | size     | field         | note                                               |
 * |-----|----------|---------------|----------------------------------------------------|
 * | 0   | 64       | common        | kind 2, headerSize 192                             |
 * | 64  | 4        | count         | blocks, 1..2^28                                    |
 * | 68  | 4        | blockSize     | 1..2^31                                            |
 * | 72  | 4        | blockStride   | alignUp(blockSize, 64)                             |
 * | 76  | 4        | maxProcesses  | participant slots P, 1..256                        |
 * | 80  | 8        | slotsOffset   | u64 = 192                                          |
 * | 88  | 8        | statesOffset  | u64 = alignUp(192 + 16 P, 64)                      |
 * | 96  | 8        | dataOffset    | u64 = alignUp(statesOffset + 4 count, 64)          |
 * | 104 | 24       | reserved      | zero                                               |
 * | 128 | 4        | waiters       | i32, getters parked now                            |
 * | 132 | 4        | wakeSeq       | u32 futex word                                     |
 * | 136 | 56       | reserved2     | zero                                               |
 * | 192 | 16 P     | slots         | struct shmkit_mempool_slot[P]                      |
 * | S   | 4 count  | states        | u32 per block at statesOffset                      |
 * | D   | stride*c | blocks        | block i at dataOffset + i * blockStride            |
 */
struct shmkit_mempool_slot {
	uint64_t identity; /* pid | (startTime mod 2^32) << 32; 0 = free */
	uint32_t gen;
	uint32_t parked;
};

struct shmkit_mempool {
	struct shmkit_common common;
	uint32_t count;
	uint32_t blockSize;
	uint32_t blockStride;
	uint32_t maxProcesses;
	uint64_t slotsOffset;
	uint64_t statesOffset;
	uint64_t dataOffset;
	uint8_t reserved[24];
	int32_t waiters;
	uint32_t wakeSeq;
	uint8_t reserved2[56];
	struct shmkit_mempool_slot slots[];
};

_Static_assert(offsetof(struct shmkit_mempool_slot, identity) == 0, "mempool_slot.identity");
_Static_assert(offsetof(struct shmkit_mempool_slot, gen) == 8, "mempool_slot.gen");
_Static_assert(offsetof(struct shmkit_mempool_slot, parked) == 12, "mempool_slot.parked");
_Static_assert(sizeof(struct shmkit_mempool_slot) == 16, "mempool_slot.size");
_Static_assert(offsetof(struct shmkit_mempool, common) == 0, "mempool.common");
_Static_assert(offsetof(struct shmkit_mempool, count) == 64, "mempool.count");
_Static_assert(offsetof(struct shmkit_mempool, blockSize) == 68, "mempool.blockSize");
_Static_assert(offsetof(struct shmkit_mempool, blockStride) == 72, "mempool.blockStride");
_Static_assert(offsetof(struct shmkit_mempool, maxProcesses) == 76, "mempool.maxProcesses");
_Static_assert(offsetof(struct shmkit_mempool, slotsOffset) == 80, "mempool.slotsOffset");
_Static_assert(offsetof(struct shmkit_mempool, statesOffset) == 88, "mempool.statesOffset");
_Static_assert(offsetof(struct shmkit_mempool, dataOffset) == 96, "mempool.dataOffset");
_Static_assert(offsetof(struct shmkit_mempool, reserved) == 104, "mempool.reserved");
_Static_assert(offsetof(struct shmkit_mempool, waiters) == 128, "mempool.waiters");
_Static_assert(offsetof(struct shmkit_mempool, wakeSeq) == 132, "mempool.wakeSeq");
_Static_assert(offsetof(struct shmkit_mempool, reserved2) == 136, "mempool.reserved2");
_Static_assert(offsetof(struct shmkit_mempool, slots) == SHMKIT_MEMPOOL_HEADER_SIZE, "mempool.slots");
_Static_assert(sizeof(struct shmkit_mempool) == SHMKIT_MEMPOOL_HEADER_SIZE, "mempool.size");

/* ------------------------------------------------------------------------------------------ */
/* Channel (kind 3): src/channel.ts CHANNEL, docs/layout/channel.md (channel layout 2)         */

#define SHMKIT_CHANNEL_HEADER_SIZE 192
#define SHMKIT_CHANNEL_ENTRY_SIZE 8
#define SHMKIT_CHANNEL_PROC_SIZE 64
#define SHMKIT_CHANNEL_DATA_ALIGN 4096
#define SHMKIT_CHANNEL_MAX_SLOTS (1u << 24)
#define SHMKIT_CHANNEL_MAX_PROCS 256
/* mode (also in common.flags) */
#define SHMKIT_CHANNEL_SPSC 0
#define SHMKIT_CHANNEL_MPMC 1
/* slot-table state word: 0 FREE, else phase << 30 | (gen & 0x3fffff) << 8 | participant */
#define SHMKIT_CHANNEL_FREE 0
#define SHMKIT_CHANNEL_LOANED 1
#define SHMKIT_CHANNEL_HELD 2
#define SHMKIT_CHANNEL_QUEUED 3

/*
 * | off         | size         | field        | note                                        |
 * |-------------|--------------|--------------|---------------------------------------------|
 * | 0           | 64           | common       | kind 3, headerSize 192, flags = mode        |
 * | 64          | 4            | slots        | number of blocks, 1..2^24                   |
 * | 68          | 4            | slotSize     | bytes per block, >= 1                       |
 * | 72          | 4            | mode         | SHMKIT_CHANNEL_SPSC / _MPMC                 |
 * | 76          | 4            | entrySize    | 8                                           |
 * | 80          | 8            | blockStride  | u64, alignUp(slotSize, 64)                  |
 * | 88          | 8            | procsOffset  | u64, 192: struct shmkit_channel_proc[P]     |
 * | 96          | 8            | readyOffset  | u64, alignUp(192 + 64 P, 64): a shmkit_ring |
 * | 104         | 8            | tableOffset  | u64, alignUp(readyOffset + ringBytes, 64)   |
 * | 112         | 8            | dataOffset   | u64, alignUp(tableOffset + 8 slots, 4096)   |
 * | 120         | 4            | reclaimed    | slots reclaimed from dead processes         |
 * | 124         | 4            | maxProcesses | P, 1..256                                   |
 * | 128         | 4            | waiters      | i32, parked senders                         |
 * | 132         | 4            | wakeSeq      | u32 futex word of parked senders            |
 * | 136         | 56           | reserved     | zero                                        |
 * | tableOffset | 8 slots      | slot table   | struct shmkit_channel_entry[slots]          |
 * | dataOffset  | stride*slots | blocks       | block i at dataOffset + i * blockStride     |
 */
struct shmkit_channel_entry {
	uint32_t length;
	uint32_t state; /* 0 FREE, else phase << 30 | tag */
};

struct shmkit_channel_proc {
	uint64_t identity; /* pid | (start time mod 2^32) << 32; 0 free */
	uint32_t gen;
	uint32_t op; /* odd inside a queue/receive bracket */
	uint32_t parked;
	uint8_t reserved[44];
};

struct shmkit_channel {
	struct shmkit_common common;
	uint32_t slots;
	uint32_t slotSize;
	uint32_t mode;
	uint32_t entrySize;
	uint64_t blockStride;
	uint64_t procsOffset;
	uint64_t readyOffset;
	uint64_t tableOffset;
	uint64_t dataOffset;
	uint32_t reclaimed;
	uint32_t maxProcesses;
	int32_t waiters;
	uint32_t wakeSeq;
	uint8_t reserved[56];
};

_Static_assert(offsetof(struct shmkit_channel_entry, length) == 0, "channel_entry.length");
_Static_assert(offsetof(struct shmkit_channel_entry, state) == 4, "channel_entry.state");
_Static_assert(sizeof(struct shmkit_channel_entry) == SHMKIT_CHANNEL_ENTRY_SIZE, "channel_entry.size");
_Static_assert(offsetof(struct shmkit_channel_proc, identity) == 0, "channel_proc.identity");
_Static_assert(offsetof(struct shmkit_channel_proc, gen) == 8, "channel_proc.gen");
_Static_assert(offsetof(struct shmkit_channel_proc, op) == 12, "channel_proc.op");
_Static_assert(offsetof(struct shmkit_channel_proc, parked) == 16, "channel_proc.parked");
_Static_assert(offsetof(struct shmkit_channel_proc, reserved) == 20, "channel_proc.reserved");
_Static_assert(sizeof(struct shmkit_channel_proc) == SHMKIT_CHANNEL_PROC_SIZE, "channel_proc.size");
_Static_assert(offsetof(struct shmkit_channel, common) == 0, "channel.common");
_Static_assert(offsetof(struct shmkit_channel, slots) == 64, "channel.slots");
_Static_assert(offsetof(struct shmkit_channel, slotSize) == 68, "channel.slotSize");
_Static_assert(offsetof(struct shmkit_channel, mode) == 72, "channel.mode");
_Static_assert(offsetof(struct shmkit_channel, entrySize) == 76, "channel.entrySize");
_Static_assert(offsetof(struct shmkit_channel, blockStride) == 80, "channel.blockStride");
_Static_assert(offsetof(struct shmkit_channel, procsOffset) == 88, "channel.procsOffset");
_Static_assert(offsetof(struct shmkit_channel, readyOffset) == 96, "channel.readyOffset");
_Static_assert(offsetof(struct shmkit_channel, tableOffset) == 104, "channel.tableOffset");
_Static_assert(offsetof(struct shmkit_channel, dataOffset) == 112, "channel.dataOffset");
_Static_assert(offsetof(struct shmkit_channel, reclaimed) == 120, "channel.reclaimed");
_Static_assert(offsetof(struct shmkit_channel, maxProcesses) == 124, "channel.maxProcesses");
_Static_assert(offsetof(struct shmkit_channel, waiters) == 128, "channel.waiters");
_Static_assert(offsetof(struct shmkit_channel, wakeSeq) == 132, "channel.wakeSeq");
_Static_assert(offsetof(struct shmkit_channel, reserved) == 136, "channel.reserved");
_Static_assert(sizeof(struct shmkit_channel) == SHMKIT_CHANNEL_HEADER_SIZE, "channel.size");

/* ------------------------------------------------------------------------------------------ */
/* Mutex (kind 4): src/mutex.ts MUTEX, docs/layout/locks.md                                    */

#define SHMKIT_MUTEX_HEADER_SIZE 128
#define SHMKIT_MUTEX_MAX_SLOTS 0xffff
/* lock word */
#define SHMKIT_LOCK_OWNER_MASK 0xffffu
#define SHMKIT_LOCK_ABANDONED 0x10000u
#define SHMKIT_LOCK_WAITERS 0x80000000u

/*
 * | off | size | field      | note                                                    |
 * |-----|------|------------|---------------------------------------------------------|
 * | 0   | 64   | common     | kind 4, headerSize 128, byteLength alignUp(128 + 8 N, 64) |
 * | 64  | 4    | lock       | u32 lock word: owner slot k (1-based) | ABANDONED | WAITERS |
 * | 68  | 4    | slotCount  | N, 1..65535                                             |
 * | 72  | 4    | recoveries | free-running count of dead-owner takeovers              |
 * | 76  | 52   | reserved   | zero                                                    |
 * | 128 | 8 N  | slots      | u64 identity startTime * 2^22 + pid; 0 = free           |
 */
struct shmkit_mutex {
	struct shmkit_common common;
	uint32_t lock;
	uint32_t slotCount;
	uint32_t recoveries;
	uint8_t reserved[52];
	uint64_t slots[];
};

_Static_assert(offsetof(struct shmkit_mutex, common) == 0, "mutex.common");
_Static_assert(offsetof(struct shmkit_mutex, lock) == 64, "mutex.lock");
_Static_assert(offsetof(struct shmkit_mutex, slotCount) == 68, "mutex.slotCount");
_Static_assert(offsetof(struct shmkit_mutex, recoveries) == 72, "mutex.recoveries");
_Static_assert(offsetof(struct shmkit_mutex, reserved) == 76, "mutex.reserved");
_Static_assert(offsetof(struct shmkit_mutex, slots) == SHMKIT_MUTEX_HEADER_SIZE, "mutex.slots");
_Static_assert(sizeof(struct shmkit_mutex) == SHMKIT_MUTEX_HEADER_SIZE, "mutex.size");

/* ------------------------------------------------------------------------------------------ */
/* Semaphore (kind 5): src/semaphore.ts SEMAPHORE, docs/layout/locks.md                        */

#define SHMKIT_SEMAPHORE_BYTES 128
#define SHMKIT_SEMAPHORE_MAX_VALUE 0x7fffffffu

/*
 * | off | size | field    | note                                 |
 * |-----|------|----------|--------------------------------------|
 * | 0   | 64   | common   | kind 5, headerSize 128, byteLength 128 |
 * | 64  | 4    | value    | u32 count, 0..2^31-1; futex word      |
 * | 68  | 4    | waiters  | processes that may be asleep          |
 * | 72  | 56   | reserved | zero                                  |
 */
struct shmkit_semaphore {
	struct shmkit_common common;
	uint32_t value;
	uint32_t waiters;
	uint8_t reserved[56];
};

_Static_assert(offsetof(struct shmkit_semaphore, common) == 0, "semaphore.common");
_Static_assert(offsetof(struct shmkit_semaphore, value) == 64, "semaphore.value");
_Static_assert(offsetof(struct shmkit_semaphore, waiters) == 68, "semaphore.waiters");
_Static_assert(offsetof(struct shmkit_semaphore, reserved) == 72, "semaphore.reserved");
_Static_assert(sizeof(struct shmkit_semaphore) == SHMKIT_SEMAPHORE_BYTES, "semaphore.size");

/* ------------------------------------------------------------------------------------------ */
/* Condition (kind 6): src/condition.ts CONDITION, docs/layout/locks.md                        */

#define SHMKIT_CONDITION_BYTES 128

/*
 * | off | size | field    | note                                   |
 * |-----|------|----------|----------------------------------------|
 * | 0   | 64   | common   | kind 6, headerSize 128, byteLength 128 |
 * | 64  | 4    | seq      | u32 free-running, +1 per notify; futex word |
 * | 68  | 4    | waiters  | waits in progress                      |
 * | 72  | 56   | reserved | zero                                   |
 */
struct shmkit_condition {
	struct shmkit_common common;
	uint32_t seq;
	uint32_t waiters;
	uint8_t reserved[56];
};

_Static_assert(offsetof(struct shmkit_condition, common) == 0, "condition.common");
_Static_assert(offsetof(struct shmkit_condition, seq) == 64, "condition.seq");
_Static_assert(offsetof(struct shmkit_condition, waiters) == 68, "condition.waiters");
_Static_assert(offsetof(struct shmkit_condition, reserved) == 72, "condition.reserved");
_Static_assert(sizeof(struct shmkit_condition) == SHMKIT_CONDITION_BYTES, "condition.size");

/* ------------------------------------------------------------------------------------------ */
/* Array (kind 7): src/shared_array.ts ARRAY_LAYOUT, docs/layout/array.md                       */

#define SHMKIT_ARRAY_MAX_NDIM 32
/* dtype */
#define SHMKIT_DTYPE_INT8 1
#define SHMKIT_DTYPE_UINT8 2
#define SHMKIT_DTYPE_INT16 3
#define SHMKIT_DTYPE_UINT16 4
#define SHMKIT_DTYPE_INT32 5
#define SHMKIT_DTYPE_UINT32 6
#define SHMKIT_DTYPE_INT64 7
#define SHMKIT_DTYPE_UINT64 8
#define SHMKIT_DTYPE_FLOAT32 9
#define SHMKIT_DTYPE_FLOAT64 10

/*
 * | off | size     | field    | note                                                |
 * |-----|----------|----------|-----------------------------------------------------|
 * | 0   | 64       | common   | kind 7, headerSize alignUp(96 + 8 ndim, 64)         |
 * | 64  | 2        | dtype    | SHMKIT_DTYPE_*                                      |
 * | 66  | 2        | itemSize | bytes per element, matches dtype                    |
 * | 68  | 4        | ndim     | 0..32                                               |
 * | 72  | 8        | length   | u64, product of shape                               |
 * | 80  | 16       | reserved | zero                                                |
 * | 96  | 8 ndim   | shape    | u64 per dimension, outermost first                  |
 * | H   | len*isz  | data     | at common.headerSize, C-contiguous, little-endian    |
 */
struct shmkit_array {
	struct shmkit_common common;
	uint16_t dtype;
	uint16_t itemSize;
	uint32_t ndim;
	uint64_t length;
	uint8_t reserved[16];
	uint64_t shape[];
};

_Static_assert(offsetof(struct shmkit_array, common) == 0, "array.common");
_Static_assert(offsetof(struct shmkit_array, dtype) == 64, "array.dtype");
_Static_assert(offsetof(struct shmkit_array, itemSize) == 66, "array.itemSize");
_Static_assert(offsetof(struct shmkit_array, ndim) == 68, "array.ndim");
_Static_assert(offsetof(struct shmkit_array, length) == 72, "array.length");
_Static_assert(offsetof(struct shmkit_array, reserved) == 80, "array.reserved");
_Static_assert(offsetof(struct shmkit_array, shape) == 96, "array.shape");
_Static_assert(sizeof(struct shmkit_array) == 96, "array.size");

/* ------------------------------------------------------------------------------------------ */
/* Heap (kind 9): src/heap.ts HEAP, HEAP_NAME_LAYOUT, HEAP_BLOCK_LAYOUT, HEAP_JOURNAL_LAYOUT,   */
/* docs/layout/heap.md                                                                          */

#define SHMKIT_KIND_HEAP 9
#define SHMKIT_HEAP_HEADER_SIZE 832 /* the heap lock (a Mutex) starts here */
#define SHMKIT_HEAP_NAME_BYTES 64
#define SHMKIT_HEAP_NAME_MAX 48
#define SHMKIT_HEAP_JOURNAL_CAPACITY 256
#define SHMKIT_HEAP_BLOCK_HEADER 16
#define SHMKIT_HEAP_MIN_BLOCK 32
/* block sizeFlags */
#define SHMKIT_HEAP_USED 1u
#define SHMKIT_HEAP_PREV_USED 2u

/*
 * | off  | size | field           | note                                                   |
 * |------|------|-----------------|--------------------------------------------------------|
 * | 0    | 64   | common          | kind 9, headerSize = arenaOffset                       |
 * | 64   | 4    | arenaOffset     | multiple of 64                                         |
 * | 68   | 4    | arenaSize       | S, multiple of 64, 64..2^31-64                         |
 * | 72   | 4    | nameCount       | N                                                      |
 * | 76   | 4    | journalCapacity | 256                                                    |
 * | 80   | 4    | mutexOffset     | 832                                                    |
 * | 84   | 4    | journalOffset   | alignUp(832 + mutex bytes, 64)                         |
 * | 88   | 4    | namesOffset     | alignUp(journalOffset + 12 * 256, 64)                  |
 * | 92   | 4    | bitmapOffset    | alignUp(namesOffset + 64 N, 64)                        |
 * | 96   | 4    | slots           | heap lock participant slots                            |
 * | 100  | 4    | recoveries      | dead-holder takeovers                                  |
 * | 104  | 4    | rolledBack      | operations undone                                      |
 * | 108  | 4    | opSeq           | journal sequence of the operation in progress          |
 * | 112  | 4    | doneSeq         | == opSeq when none is in progress                      |
 * | 116  | 4    | pendingAlloc    | block of a committed alloc whose holder has not unlocked |
 * | 120  | 4    | lastLeaked      | payload of the last allocation leaked in flight        |
 * | 124  | 4    | leakedInFlight  | count                                                  |
 * | 128  | 4    | flBitmap        | TLSF first-level bitmap                                |
 * | 132  | 60   | reserved        | zero                                                   |
 * | 192  | 128  | slBitmaps       | u32 per first level                                    |
 * | 320  | 512  | heads           | u32 per list fl * 4 + sl (heap-relative block, 0 none) |
 * | 832  | M    | mutex           | struct shmkit_mutex with `slots` slots                 |
 */
struct shmkit_heap {
	struct shmkit_common common;
	uint32_t arenaOffset;
	uint32_t arenaSize;
	uint32_t nameCount;
	uint32_t journalCapacity;
	uint32_t mutexOffset;
	uint32_t journalOffset;
	uint32_t namesOffset;
	uint32_t bitmapOffset;
	uint32_t slots;
	uint32_t recoveries;
	uint32_t rolledBack;
	uint32_t opSeq;
	uint32_t doneSeq;
	uint32_t pendingAlloc;
	uint32_t lastLeaked;
	uint32_t leakedInFlight;
	uint32_t flBitmap;
	uint8_t reserved[60];
	uint32_t slBitmaps[32];
	uint32_t heads[128];
	uint8_t mutex[];
};

_Static_assert(offsetof(struct shmkit_heap, common) == 0, "heap.common");
_Static_assert(offsetof(struct shmkit_heap, arenaOffset) == 64, "heap.arenaOffset");
_Static_assert(offsetof(struct shmkit_heap, arenaSize) == 68, "heap.arenaSize");
_Static_assert(offsetof(struct shmkit_heap, nameCount) == 72, "heap.nameCount");
_Static_assert(offsetof(struct shmkit_heap, journalCapacity) == 76, "heap.journalCapacity");
_Static_assert(offsetof(struct shmkit_heap, mutexOffset) == 80, "heap.mutexOffset");
_Static_assert(offsetof(struct shmkit_heap, journalOffset) == 84, "heap.journalOffset");
_Static_assert(offsetof(struct shmkit_heap, namesOffset) == 88, "heap.namesOffset");
_Static_assert(offsetof(struct shmkit_heap, bitmapOffset) == 92, "heap.bitmapOffset");
_Static_assert(offsetof(struct shmkit_heap, slots) == 96, "heap.slots");
_Static_assert(offsetof(struct shmkit_heap, recoveries) == 100, "heap.recoveries");
_Static_assert(offsetof(struct shmkit_heap, rolledBack) == 104, "heap.rolledBack");
_Static_assert(offsetof(struct shmkit_heap, opSeq) == 108, "heap.opSeq");
_Static_assert(offsetof(struct shmkit_heap, doneSeq) == 112, "heap.doneSeq");
_Static_assert(offsetof(struct shmkit_heap, pendingAlloc) == 116, "heap.pendingAlloc");
_Static_assert(offsetof(struct shmkit_heap, lastLeaked) == 120, "heap.lastLeaked");
_Static_assert(offsetof(struct shmkit_heap, leakedInFlight) == 124, "heap.leakedInFlight");
_Static_assert(offsetof(struct shmkit_heap, flBitmap) == 128, "heap.flBitmap");
_Static_assert(offsetof(struct shmkit_heap, reserved) == 132, "heap.reserved");
_Static_assert(offsetof(struct shmkit_heap, slBitmaps) == 192, "heap.slBitmaps");
_Static_assert(offsetof(struct shmkit_heap, heads) == 320, "heap.heads");
_Static_assert(offsetof(struct shmkit_heap, mutex) == SHMKIT_HEAP_HEADER_SIZE, "heap.mutex");
_Static_assert(sizeof(struct shmkit_heap) == SHMKIT_HEAP_HEADER_SIZE, "heap.size");

/* Named root entry (N of them at namesOffset). */
struct shmkit_heap_name {
	uint32_t nameLength; /* 0 = empty entry, else 1..48 */
	uint32_t kind;       /* common-header kind of an object placed there; 0 raw memory / struct */
	uint32_t payload;    /* heap-relative offset of the allocation */
	uint32_t length;     /* usable bytes of its block */
	uint8_t name[SHMKIT_HEAP_NAME_MAX]; /* UTF-8, zero padded */
};

_Static_assert(offsetof(struct shmkit_heap_name, nameLength) == 0, "heap_name.nameLength");
_Static_assert(offsetof(struct shmkit_heap_name, kind) == 4, "heap_name.kind");
_Static_assert(offsetof(struct shmkit_heap_name, payload) == 8, "heap_name.payload");
_Static_assert(offsetof(struct shmkit_heap_name, length) == 12, "heap_name.length");
_Static_assert(offsetof(struct shmkit_heap_name, name) == 16, "heap_name.name");
_Static_assert(sizeof(struct shmkit_heap_name) == SHMKIT_HEAP_NAME_BYTES, "heap_name.size");

/* Arena block header (heap-relative offset b, 16-aligned; payload at b + 16). */
struct shmkit_heap_block {
	uint32_t sizeFlags; /* size (multiple of 16, >= 32) | USED | PREV_USED */
	uint32_t prevSize;  /* size of the previous block when PREV_USED is clear */
	uint32_t next;      /* free: next block on its list */
	uint32_t prev;      /* free: previous block on its list */
};

_Static_assert(offsetof(struct shmkit_heap_block, sizeFlags) == 0, "heap_block.sizeFlags");
_Static_assert(offsetof(struct shmkit_heap_block, prevSize) == 4, "heap_block.prevSize");
_Static_assert(offsetof(struct shmkit_heap_block, next) == 8, "heap_block.next");
_Static_assert(offsetof(struct shmkit_heap_block, prev) == 12, "heap_block.prev");
_Static_assert(sizeof(struct shmkit_heap_block) == SHMKIT_HEAP_BLOCK_HEADER, "heap_block.size");

/* Undo journal entry (256 of them at journalOffset). */
struct shmkit_heap_journal {
	uint32_t index; /* u32 word index from the heap's start */
	uint32_t old;   /* the value to restore */
	uint32_t seq;   /* the operation's opSeq: entries of an open operation are those from 0 on with seq == opSeq */
};

_Static_assert(offsetof(struct shmkit_heap_journal, index) == 0, "heap_journal.index");
_Static_assert(offsetof(struct shmkit_heap_journal, old) == 4, "heap_journal.old");
_Static_assert(offsetof(struct shmkit_heap_journal, seq) == 8, "heap_journal.seq");
_Static_assert(sizeof(struct shmkit_heap_journal) == 12, "heap_journal.size");

/* Entries for shmkit_layout_offset's table in shmkit.c. */
#define SHMKIT_HEAP_LAYOUT_ENTRIES                                                              \
	LAYOUT_SIZE(heap, shmkit_heap), LAYOUT_FIELD(heap, shmkit_heap, common),               \
	LAYOUT_FIELD(heap, shmkit_heap, arenaOffset), LAYOUT_FIELD(heap, shmkit_heap, arenaSize), \
	LAYOUT_FIELD(heap, shmkit_heap, nameCount), LAYOUT_FIELD(heap, shmkit_heap, journalCapacity), \
	LAYOUT_FIELD(heap, shmkit_heap, mutexOffset), LAYOUT_FIELD(heap, shmkit_heap, journalOffset), \
	LAYOUT_FIELD(heap, shmkit_heap, namesOffset), LAYOUT_FIELD(heap, shmkit_heap, bitmapOffset), \
	LAYOUT_FIELD(heap, shmkit_heap, slots), LAYOUT_FIELD(heap, shmkit_heap, recoveries),    \
	LAYOUT_FIELD(heap, shmkit_heap, rolledBack), LAYOUT_FIELD(heap, shmkit_heap, opSeq),    \
	LAYOUT_FIELD(heap, shmkit_heap, doneSeq), LAYOUT_FIELD(heap, shmkit_heap, pendingAlloc), \
	LAYOUT_FIELD(heap, shmkit_heap, lastLeaked), LAYOUT_FIELD(heap, shmkit_heap, leakedInFlight), \
	LAYOUT_FIELD(heap, shmkit_heap, flBitmap), LAYOUT_FIELD(heap, shmkit_heap, reserved),   \
	LAYOUT_FIELD(heap, shmkit_heap, slBitmaps), LAYOUT_FIELD(heap, shmkit_heap, heads),     \
	LAYOUT_ARRAY(heap, shmkit_heap, mutex), LAYOUT_SIZE(heap_name, shmkit_heap_name),       \
	LAYOUT_FIELD(heap_name, shmkit_heap_name, nameLength),                                  \
	LAYOUT_FIELD(heap_name, shmkit_heap_name, kind),                                        \
	LAYOUT_FIELD(heap_name, shmkit_heap_name, payload),                                     \
	LAYOUT_FIELD(heap_name, shmkit_heap_name, length),                                      \
	LAYOUT_FIELD(heap_name, shmkit_heap_name, name), LAYOUT_SIZE(heap_block, shmkit_heap_block), \
	LAYOUT_FIELD(heap_block, shmkit_heap_block, sizeFlags),                                 \
	LAYOUT_FIELD(heap_block, shmkit_heap_block, prevSize),                                  \
	LAYOUT_FIELD(heap_block, shmkit_heap_block, next),                                      \
	LAYOUT_FIELD(heap_block, shmkit_heap_block, prev),                                      \
	LAYOUT_SIZE(heap_journal, shmkit_heap_journal),                                         \
	LAYOUT_FIELD(heap_journal, shmkit_heap_journal, index),                                 \
	LAYOUT_FIELD(heap_journal, shmkit_heap_journal, old),                                   \
	LAYOUT_FIELD(heap_journal, shmkit_heap_journal, seq)

/* Log (kind 8): src/log.ts LOG, LOG_SLOT_LAYOUT, LOG_RECORD_LAYOUT; docs/layout/log.md         */

#define SHMKIT_KIND_LOG 8
#define SHMKIT_LOG_HEADER_SIZE 384
#define SHMKIT_LOG_SPSC 0
#define SHMKIT_LOG_MPSC 1
#define SHMKIT_LOG_MPSC_SLOTS 32
#define SHMKIT_LOG_MIN_CAPACITY 256u
#define SHMKIT_LOG_MAX_CAPACITY (1u << 30)
#define SHMKIT_LOG_RECORD_HEADER_SIZE 8
#define SHMKIT_LOG_TYPE_PAD 0x80000000u    /* record type of a padding record */
#define SHMKIT_LOG_MAX_TYPE 0xffffu        /* user record types are 0..65535 */
#define SHMKIT_LOG_IN_PROGRESS 0x80000000u /* mpsc: set in a length while its writer writes */

/*
 * The data area (capacity C bytes, a power of two) starts at dataOffset = 384 + 32 * slotCount.
 * Position p (u32, free-running) is at data offset p & (C - 1). A record occupies
 * (length + 7) & ~7 bytes and never crosses the end of the data area; a padding record fills
 * the end when the next record does not fit. spsc: records from head to tail are complete.
 * mpsc: a length of 0 is unwritten, IN_PROGRESS | n is being written; commit = the length store.
 * The reader zeroes the bytes it consumed before it moves `clean` (mpsc).
 */
struct shmkit_log_record {
	uint32_t length;   /* 8 + payload bytes (padding: its size, a multiple of 8) */
	uint32_t type;     /* 0..65535, or SHMKIT_LOG_TYPE_PAD */
	uint8_t payload[];
};

struct shmkit_log_slot {
	uint32_t pid;      /* owner; 0 = free (pid and startLo change together, 64-bit CAS) */
	uint32_t startLo;  /* low 32 bits of the owner's start time */
	uint32_t token;    /* per-object token */
	uint32_t claimPos; /* position of the claim in progress */
	uint32_t claimLen; /* its bytes; 0 = none (written before the claim CAS) */
	uint8_t reserved[12];
};

struct shmkit_log {
	struct shmkit_common common; /* kind 8, flags = mode */
	uint32_t capacity;
	uint32_t mode;
	uint32_t maxRecord;
	uint32_t dataOffset;
	uint32_t slotCount;
	uint8_t reserved[44];
	uint32_t tail; /* own cache line */
	uint8_t pad1[60];
	uint32_t head; /* reader's line */
	uint32_t clean;
	uint8_t pad2[56];
	uint32_t readWaiters;
	uint32_t writeWaiters;
	uint32_t readSleep;
	uint32_t writeSleep;
	uint32_t dataSeq;
	uint8_t pad3[44];
	uint64_t writerRole; /* lo = pid, hi = start time low 32 bits; spsc only */
	uint32_t writerToken;
	uint32_t pad4;
	uint64_t readerRole;
	uint32_t readerToken;
	uint8_t pad5[36];
	struct shmkit_log_slot participants[]; /* slotCount entries, then the data area */
};

_Static_assert(offsetof(struct shmkit_log_record, length) == 0, "log_record.length");
_Static_assert(offsetof(struct shmkit_log_record, type) == 4, "log_record.type");
_Static_assert(offsetof(struct shmkit_log_record, payload) == 8, "log_record.payload");
_Static_assert(offsetof(struct shmkit_log_slot, pid) == 0, "log_slot.pid");
_Static_assert(offsetof(struct shmkit_log_slot, startLo) == 4, "log_slot.startLo");
_Static_assert(offsetof(struct shmkit_log_slot, token) == 8, "log_slot.token");
_Static_assert(offsetof(struct shmkit_log_slot, claimPos) == 12, "log_slot.claimPos");
_Static_assert(offsetof(struct shmkit_log_slot, claimLen) == 16, "log_slot.claimLen");
_Static_assert(sizeof(struct shmkit_log_slot) == 32, "log_slot.size");
_Static_assert(offsetof(struct shmkit_log, common) == 0, "log.common");
_Static_assert(offsetof(struct shmkit_log, capacity) == 64, "log.capacity");
_Static_assert(offsetof(struct shmkit_log, mode) == 68, "log.mode");
_Static_assert(offsetof(struct shmkit_log, maxRecord) == 72, "log.maxRecord");
_Static_assert(offsetof(struct shmkit_log, dataOffset) == 76, "log.dataOffset");
_Static_assert(offsetof(struct shmkit_log, slotCount) == 80, "log.slotCount");
_Static_assert(offsetof(struct shmkit_log, reserved) == 84, "log.reserved");
_Static_assert(offsetof(struct shmkit_log, tail) == 128, "log.tail");
_Static_assert(offsetof(struct shmkit_log, head) == 192, "log.head");
_Static_assert(offsetof(struct shmkit_log, clean) == 196, "log.clean");
_Static_assert(offsetof(struct shmkit_log, readWaiters) == 256, "log.readWaiters");
_Static_assert(offsetof(struct shmkit_log, writeWaiters) == 260, "log.writeWaiters");
_Static_assert(offsetof(struct shmkit_log, readSleep) == 264, "log.readSleep");
_Static_assert(offsetof(struct shmkit_log, writeSleep) == 268, "log.writeSleep");
_Static_assert(offsetof(struct shmkit_log, dataSeq) == 272, "log.dataSeq");
_Static_assert(offsetof(struct shmkit_log, writerRole) == 320, "log.writerRole");
_Static_assert(offsetof(struct shmkit_log, writerToken) == 328, "log.writerToken");
_Static_assert(offsetof(struct shmkit_log, readerRole) == 336, "log.readerRole");
_Static_assert(offsetof(struct shmkit_log, readerToken) == 344, "log.readerToken");
_Static_assert(offsetof(struct shmkit_log, participants) == 384, "log.participants");
_Static_assert(sizeof(struct shmkit_log) == SHMKIT_LOG_HEADER_SIZE, "log.size");

/* Entries for the shmkit_layout_offset table in csrc/shmkit.c (one line there:
 * SHMKIT_LOG_LAYOUT_TABLE), written with its LAYOUT_FIELD / LAYOUT_ARRAY / LAYOUT_SIZE macros. */
#define SHMKIT_LOG_LAYOUT_TABLE                                                                  \
	LAYOUT_SIZE(log, shmkit_log), LAYOUT_FIELD(log, shmkit_log, common),                    \
	LAYOUT_FIELD(log, shmkit_log, capacity), LAYOUT_FIELD(log, shmkit_log, mode),            \
	LAYOUT_FIELD(log, shmkit_log, maxRecord), LAYOUT_FIELD(log, shmkit_log, dataOffset),     \
	LAYOUT_FIELD(log, shmkit_log, slotCount), LAYOUT_FIELD(log, shmkit_log, reserved),       \
	LAYOUT_FIELD(log, shmkit_log, tail), LAYOUT_FIELD(log, shmkit_log, pad1),                \
	LAYOUT_FIELD(log, shmkit_log, head), LAYOUT_FIELD(log, shmkit_log, clean),               \
	LAYOUT_FIELD(log, shmkit_log, pad2), LAYOUT_FIELD(log, shmkit_log, readWaiters),         \
	LAYOUT_FIELD(log, shmkit_log, writeWaiters), LAYOUT_FIELD(log, shmkit_log, readSleep),   \
	LAYOUT_FIELD(log, shmkit_log, writeSleep), LAYOUT_FIELD(log, shmkit_log, dataSeq),       \
	LAYOUT_FIELD(log, shmkit_log, pad3), LAYOUT_FIELD(log, shmkit_log, writerRole),          \
	LAYOUT_FIELD(log, shmkit_log, writerToken), LAYOUT_FIELD(log, shmkit_log, pad4),         \
	LAYOUT_FIELD(log, shmkit_log, readerRole), LAYOUT_FIELD(log, shmkit_log, readerToken),   \
	LAYOUT_FIELD(log, shmkit_log, pad5), LAYOUT_ARRAY(log, shmkit_log, participants),        \
	LAYOUT_SIZE(log_slot, shmkit_log_slot), LAYOUT_FIELD(log_slot, shmkit_log_slot, pid),    \
	LAYOUT_FIELD(log_slot, shmkit_log_slot, startLo),                                        \
	LAYOUT_FIELD(log_slot, shmkit_log_slot, token),                                          \
	LAYOUT_FIELD(log_slot, shmkit_log_slot, claimPos),                                       \
	LAYOUT_FIELD(log_slot, shmkit_log_slot, claimLen),                                       \
	LAYOUT_FIELD(log_slot, shmkit_log_slot, reserved),                                       \
	LAYOUT_SIZE(log_record, shmkit_log_record),                                              \
	LAYOUT_FIELD(log_record, shmkit_log_record, length),                                     \
	LAYOUT_FIELD(log_record, shmkit_log_record, type),                                       \
	LAYOUT_ARRAY(log_record, shmkit_log_record, payload)


#endif
