/**
 * SharedHeap: variable-size allocation, named roots and objects in one shared segment (shmutils'
 * `MappedMemory`, Boost.Interprocess `managed_shared_memory`). Any number of processes of any
 * runtime allocate and free at any time; an allocation is a plain number (its byte offset in the
 * segment), which is what another process uses to find it.
 *
 * Design choices (see docs/layout/heap.md for the byte layout, the same tables as below):
 *
 * - Allocator: TLSF (two-level segregated fit, Masmano et al. 2004) with 4 second-level lists per
 *   power of two, boundary tags and immediate coalescing. alloc and free are O(1): a list index is
 *   computed from the size, two bitmap words find the first non-empty list that certainly fits,
 *   and neighbours are found through the block headers. Good fit, not best fit: a request rounds up
 *   to the next list boundary (at most 25 % of slack is searched past).
 * - Concurrency: one heap lock, a robust {@linkcode Mutex} placed in the heap header (owner-tagged
 *   futex lock: a dead holder is noticed within one 200 ms liveness slice and the next locker gets
 *   `recovered`). A lock-free TLSF would need multi-word CAS; the critical sections are a few dozen
 *   plain stores, so one uncontended lock costs two atomic read-modify-writes per operation.
 * - Crash safety: an undo journal in the header. Every store an operation makes to shared memory is
 *   preceded by a journal entry (word index, old value, operation sequence). The operation commits
 *   by storing `doneSeq = opSeq`. Whoever takes the lock from a dead holder (`recovered`) restores
 *   the old values of an uncommitted operation in reverse order (idempotent, so a recoverer that
 *   dies too is recovered the same way): nothing half done survives, nothing is leaked. A holder
 *   killed after committing an `alloc` but before unlocking never returned the offset: that one
 *   block is leaked in flight, and `stats().leakedInFlight` / `lastLeaked` (and the CLI) say so.
 *   A process killed after `alloc()` returned but before it stored the offset anywhere leaks that
 *   allocation too; the heap cannot tell it from a live one.
 * - Validation: `free(offset)` checks a bitmap with one bit per 16-byte granule marking the start of
 *   every live allocation, so a foreign, interior or double free is `EINVAL` and changes nothing.
 *   Every size and link read from shared memory is range-checked (`EBADHDR`), and every walk is
 *   bounded by the number of granules.
 *
 * Heap header (little-endian, offsets from the heap's byteOffset, which is 64-byte aligned):
 *
 * | off  | size | field             | writer      | reader  | note                                           |
 * |------|------|-------------------|-------------|---------|------------------------------------------------|
 * | 0    | 64   | common            | init        | open    | src/layout.ts, kind 9 ("heap"), headerSize = arenaOffset |
 * | 64   | 4    | arenaOffset       | init        | open    | where the arena starts, multiple of 64         |
 * | 68   | 4    | arenaSize         | init        | open    | S bytes, multiple of 64, 64..2^31-64           |
 * | 72   | 4    | nameCount         | init        | open    | N named-root entries, 1..65536                 |
 * | 76   | 4    | journalCapacity   | init        | open    | J journal entries (256)                        |
 * | 80   | 4    | mutexOffset       | init        | open    | 832: the heap lock (a Mutex object)            |
 * | 84   | 4    | journalOffset     | init        | open    | J entries of 12 bytes                          |
 * | 88   | 4    | namesOffset       | init        | open    | N entries of 64 bytes                          |
 * | 92   | 4    | bitmapOffset      | init        | open    | ceil(S / 512) u32 words, bit per granule       |
 * | 96   | 4    | slots             | init        | cli     | participant slots of the heap lock             |
 * | 100  | 4    | recoveries        | recoverer   | stats   | locks taken over from dead holders             |
 * | 104  | 4    | rolledBack        | recoverer   | stats   | uncommitted operations undone                  |
 * | 108  | 4    | opSeq             | lock holder | recover | sequence of the operation in progress          |
 * | 112  | 4    | doneSeq           | lock holder | recover | == opSeq when no operation is in progress      |
 * | 116  | 4    | pendingAlloc      | lock holder | recover | block of an alloc committed, not yet unlocked (journaled; 0 at each begin) |
 * | 120  | 4    | lastLeaked        | recoverer   | stats   | heap-relative payload of the last leaked-in-flight allocation |
 * | 124  | 4    | leakedInFlight    | recoverer   | stats   | allocs committed for a holder that died before unlocking |
 * | 128  | 4    | flBitmap          | lock holder | alloc   | bit f: some list of first level f is non-empty |
 * | 132  | 60   | reserved          | -           | -       | zero                                           |
 * | 192  | 128  | slBitmaps         | lock holder | alloc   | u32 per first level: bit s = list (f,s) non-empty |
 * | 320  | 512  | heads             | lock holder | alloc   | u32 per list (f * 4 + s): first free block, 0 = none |
 * | 832  | M    | mutex             | Mutex       | Mutex   | Mutex.byteLength({ slots }), src/mutex.ts       |
 *
 * Journal entry (12 bytes): u32 word index (from the heap's byteOffset), u32 old value, u32 seq.
 * Entries of the current operation are those from entry 0 on whose seq equals opSeq.
 *
 * Named root entry (64 bytes): u32 nameLength (0 = empty), u32 kind (the common-header kind of
 * an object placed there, 0 for raw memory and structs), u32 payload (heap-relative offset of the
 * allocation), u32 length (usable bytes of the block), then 48 bytes of UTF-8 name.
 *
 * Block (in the arena; `b` is heap-relative, 16-aligned; the payload starts at b + 16):
 *
 * | off | size | field      | note                                                         |
 * |-----|------|------------|--------------------------------------------------------------|
 * | 0   | 4    | sizeFlags  | size (multiple of 16, >= 32) pipe USED (bit 0), PREV_USED (bit 1) |
 * | 4   | 4    | prevSize   | size of the previous block, valid when PREV_USED is clear    |
 * | 8   | 4    | next       | free: next block in its list (0 = none); used: undefined     |
 * | 12  | 4    | prev       | free: previous block in its list; used: undefined            |
 *
 * Invariants (checked by {@linkcode SharedHeap.validate}; the hot paths check what they read):
 *  I1: blocks tile the arena exactly: b0 = arenaOffset, b(k+1) = b(k) + size(k), last ends at S.
 *  I2: no two free blocks are adjacent; PREV_USED of a block equals USED of its predecessor, and a
 *      block after a free block has prevSize equal to that block's size.
 *  I3: a free block is on exactly the list its size maps to, and the lists are doubly linked;
 *      the bitmaps have a bit set exactly for the non-empty lists.
 *  I4: the allocation bitmap has a bit set exactly at the start granule of every used block.
 *  I5: the journal holds at most one open operation: doneSeq == opSeq whenever the lock is free.
 *
 * @module
 */
import { checkKeys, ShmError } from "./errors.ts";
import {
  alignUp,
  COMMON_HEADER_SIZE,
  KIND,
  kindName,
  OBJECT_ALIGN,
  peekHeader,
  publishReady,
  readHeader,
  writeHeader,
} from "./layout.ts";
import { createWhat, placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { checkHandle, type Handle, registerKind } from "./handle.ts";
import { type LockGuard, Mutex } from "./mutex.ts";
import { SharedMemory, type SharedMemoryHandle, type ViewConstructor } from "./segment.ts";
import { faultHook } from "./fault.ts";
import { futexWake } from "./wait.ts";

/** Byte offsets of the heap header fields, from the heap's byteOffset. */
export const HEAP = {
  arenaOffset: 64,
  arenaSize: 68,
  nameCount: 72,
  journalCapacity: 76,
  mutexOffset: 80,
  journalOffset: 84,
  namesOffset: 88,
  bitmapOffset: 92,
  slots: 96,
  recoveries: 100,
  rolledBack: 104,
  opSeq: 108,
  doneSeq: 112,
  pendingAlloc: 116,
  lastLeaked: 120,
  leakedInFlight: 124,
  flBitmap: 128,
  reserved: 132,
  slBitmaps: 192,
  heads: 320,
  mutex: 832,
} as const;

/** Byte offsets inside one named-root entry. */
export const HEAP_NAME_LAYOUT = { nameLength: 0, kind: 4, payload: 8, length: 12, name: 16 } as const;
/** Byte offsets inside one block header. */
export const HEAP_BLOCK_LAYOUT = { sizeFlags: 0, prevSize: 4, next: 8, prev: 12 } as const;
/** Byte offsets inside one journal entry. */
export const HEAP_JOURNAL_LAYOUT = { index: 0, old: 4, seq: 8 } as const;

/** Bytes of one named-root entry. */
export const HEAP_NAME_BYTES = 64;
/** The longest name, in UTF-8 bytes. */
export const HEAP_NAME_MAX = 48;
/** Bytes of one journal entry. */
export const HEAP_JOURNAL_BYTES = 12;
/** Journal entries (enough for the largest operation: a named create). */
export const HEAP_JOURNAL_CAPACITY = 256;
/** Block header bytes; also the allocation granule. */
export const HEAP_BLOCK_HEADER = 16;
/** The smallest block (header + 16 bytes). */
export const HEAP_MIN_BLOCK = 32;
/** The largest arena. */
export const HEAP_MAX_ARENA = 2 ** 31 - 64;
/** Default named-root entries. */
export const HEAP_DEFAULT_NAMES = 64;
/** Default participant slots of the heap lock (processes using the heap at once). */
export const HEAP_DEFAULT_SLOTS = 64;

const USED = 1;
const PREV_USED = 2;
const SL_BITS = 2; // 4 second-level lists per power of two
const SL_COUNT = 1 << SL_BITS;
const FL_COUNT = 32;
const SPIN = 64;

// Word indices (u32) of the header fields.
const W_OPSEQ = HEAP.opSeq >> 2;
const W_DONESEQ = HEAP.doneSeq >> 2;
const W_PENDING = HEAP.pendingAlloc >> 2;
const W_RECOVERIES = HEAP.recoveries >> 2;
const W_ROLLEDBACK = HEAP.rolledBack >> 2;
const W_LEAKED = HEAP.leakedInFlight >> 2;
const W_LASTLEAKED = HEAP.lastLeaked >> 2;
const W_FLBITMAP = HEAP.flBitmap >> 2;
const W_SLBITMAPS = HEAP.slBitmaps >> 2;
const W_HEADS = HEAP.heads >> 2;

// ---------------------------------------------------------------------------------------------
// Fault points for crash tests (src/fault.ts): one never-taken branch when unarmed.

/** Every fault point of the heap, for crash tests. */
export const FAULT_POINTS = [
  "heap.alloc.after_remove",
  "heap.alloc.before_commit",
  "heap.alloc.after_commit",
  "heap.alloc.after_unlock",
  "heap.free.after_unlink",
  "heap.free.before_commit",
  "heap.free.after_commit",
  "heap.name.before_commit",
  "heap.recover.mid_rollback",
] as const;
const faultHit = faultHook("heap.");
const FAULT_ON = faultHit !== undefined;
const fault = (point: string): void => faultHit!(point);

// ---------------------------------------------------------------------------------------------
// Public types

/** The keys of SharedHeapOptions (create, init, byteLength). */
const HEAP_KEYS = ["size", "names", "slots", "fileMode"] as const;

/** Options of {@linkcode SharedHeap.create}, {@linkcode SharedHeap.init} and {@linkcode SharedHeap.byteLength}. */
export interface SharedHeapOptions {
  /** Bytes of the arena allocations come from (rounded up to 64); block headers (16 bytes each) count. */
  size: number;
  /** Named-root entries (default 64). */
  names?: number;
  /** Processes (heap objects) that may use the heap lock at once (default 64). */
  slots?: number;
  /** File mode of the new segment (create only; default 0o600). */
  fileMode?: number;
}

/** Options of {@linkcode SharedHeap.alloc}. */
export interface AllocOptions {
  /** Alignment of the returned offset in the segment: a power of two, 16 (default) .. 65536. */
  align?: number;
}

/** What {@linkcode SharedHeap.stats} reports. */
export interface HeapStats {
  /** Arena bytes. */
  size: number;
  /** Bytes in live allocations, block headers included. */
  used: number;
  /** Bytes in free blocks (headers included). */
  free: number;
  /** The largest free block (an allocation of up to `largestFree - 16` bytes, align 16, succeeds). */
  largestFree: number;
  /** Live allocations. */
  allocations: number;
  /** Free blocks. */
  freeBlocks: number;
  /** External fragmentation, 0..1: `1 - largestFree / free` (0 when nothing is free). */
  fragmentation: number;
  /** Times the heap lock was taken over from a dead holder. */
  recoveries: number;
  /** Operations a dead holder left half done, undone by the recoverer. */
  rolledBack: number;
  /**
   * Allocations leaked in flight: committed for a process that died holding the heap lock, before
   * alloc() could return the offset (at most one per death). They stay allocated; see `lastLeaked`.
   */
  leakedInFlight: number;
  /** The offset of the last of them, or undefined. */
  lastLeaked: number | undefined;
  /** Named roots in use, and the table size. */
  names: number;
  /** Named-root entries. */
  nameCapacity: number;
}

/** A named root: what {@linkcode SharedHeap.names} lists. */
export interface HeapName {
  /** The name. */
  name: string;
  /** Offset of the allocation in the segment. */
  offset: number;
  /** Usable bytes of its block (at least what was requested). */
  length: number;
  /** The shmkit kind of an object placed there ("ring", ...), or undefined for raw memory and structs. */
  kind?: string;
}

/** The handle of a SharedHeap: JSON-safe, reopened by {@linkcode SharedHeap.attach} in any process. */
export interface SharedHeapHandle extends Handle {
  /** Always `"shmkit.heap"`. */
  readonly kind: "shmkit.heap";
  /** Where the heap starts in its segment. */
  readonly byteOffset: number;
  /** The segment that holds it. */
  readonly segment: SharedMemoryHandle;
}

/**
 * Anything that can be placed in a heap allocation and found again: Ring, Mempool, Channel, Mutex,
 * Semaphore, Condition, SharedArray (their static `byteLength` / `init` / `at`) and struct types
 * from {@linkcode struct}.
 */
export interface Placeable<T, O> {
  /** Bytes an object with these options occupies. */
  byteLength(options: O): number;
  /** Formats one at `byteOffset` of `segment`. */
  init(segment: SharedMemory, byteOffset: number, options: O): T;
  /** Attaches the one at `byteOffset` of `segment`. */
  at(segment: SharedMemory, byteOffset: number): T;
  /** Alignment it needs (default 64). */
  readonly align?: number;
}

// ---------------------------------------------------------------------------------------------
// Layout arithmetic (shared by init, at and the command line reader)

/** @internal The computed layout of a heap with these counts. */
export interface HeapGeometry {
  arenaSize: number;
  nameCount: number;
  slots: number;
  mutexOffset: number;
  journalOffset: number;
  namesOffset: number;
  bitmapOffset: number;
  bitmapWords: number;
  arenaOffset: number;
  byteLength: number;
}

/** @internal Where everything goes for an arena of `arenaSize`, `names` entries and `slots`. */
export function heapGeometry(arenaSize: number, nameCount: number, slots: number): HeapGeometry {
  const mutexOffset = HEAP.mutex;
  const journalOffset = alignUp(mutexOffset + Mutex.byteLength({ slots }), OBJECT_ALIGN);
  const namesOffset = alignUp(journalOffset + HEAP_JOURNAL_CAPACITY * HEAP_JOURNAL_BYTES, OBJECT_ALIGN);
  const bitmapOffset = alignUp(namesOffset + nameCount * HEAP_NAME_BYTES, OBJECT_ALIGN);
  const bitmapWords = Math.ceil(arenaSize / HEAP_BLOCK_HEADER / 32);
  const arenaOffset = alignUp(bitmapOffset + 4 * bitmapWords, OBJECT_ALIGN);
  return {
    arenaSize,
    nameCount,
    slots,
    mutexOffset,
    journalOffset,
    namesOffset,
    bitmapOffset,
    bitmapWords,
    arenaOffset,
    byteLength: arenaOffset + arenaSize,
  };
}

function checkOptions(o: SharedHeapOptions, what: string): HeapGeometry {
  if (typeof o !== "object" || o === null) throw new TypeError(`${what}: options { size } are required`);
  checkKeys(o, HEAP_KEYS, what);
  const size = o.size;
  if (!Number.isSafeInteger(size) || size < 64 || size > HEAP_MAX_ARENA) {
    throw new RangeError(`${what}: size must be an integer in 64..${HEAP_MAX_ARENA}, got ${size}`);
  }
  const names = o.names ?? HEAP_DEFAULT_NAMES;
  if (!Number.isInteger(names) || names < 1 || names > 65536) {
    throw new RangeError(`${what}: names must be an integer in 1..65536, got ${names}`);
  }
  const slots = o.slots ?? HEAP_DEFAULT_SLOTS;
  if (!Number.isInteger(slots) || slots < 1 || slots > 0xffff) {
    throw new RangeError(`${what}: slots must be an integer in 1..65535, got ${slots}`);
  }
  return heapGeometry(alignUp(size, 64), names, slots);
}

/** First-level index: floor(log2(size)). */
function flOf(size: number): number {
  return 31 - Math.clz32(size);
}

/** Count of trailing zeros of a non-zero u32. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------

/**
 * A heap in shared memory: variable-size allocations addressed by offset, named roots, and
 * objects (Ring, Mutex, structs, ...) placed inside allocations and found by name.
 *
 * Role contract: any number of processes (Deno, Bun, Node, or anything that follows
 * docs/LAYOUT.md) allocate, free and name at the same time; each operation holds the heap lock
 * for a few dozen stores. A process killed at any instruction never corrupts or wedges the heap:
 * the next operation (in any process) rolls back its half-done change within one liveness slice
 * (200 ms). Worker threads of one process share the process's lock identity; they serialize by
 * spinning on each other.
 *
 * An allocation's offset is the byte offset in the segment: `seg.bytes(offset, n)`,
 * `Ring.at(seg, offset)` and another process's `heap.bytes(offset, n)` all reach it.
 *
 * @example
 * ```ts
 * import { SharedHeap } from "./mod.ts";
 * using heap = SharedHeap.create(`doc-heap-${Date.now()}`, { size: 1 << 16 });
 * const off = heap.alloc(100);
 * heap.bytes(off, 5).set([1, 2, 3, 4, 5]);
 * heap.set("greeting", off); // another process: heap.get("greeting")
 * heap.free(off);
 * heap.unlink();
 * ```
 */
export class SharedHeap implements Disposable {
  readonly #seg: SharedMemory;
  readonly #owns: boolean;
  readonly #off: number;
  readonly #what: string;
  readonly #g: HeapGeometry;
  readonly #w: Int32Array; // the whole heap region, heap-relative word indices (int32: JSC keeps them unboxed)
  readonly #mutex: Mutex;
  readonly #lockWord: number; // word index of the mutex lock word
  readonly #jBase: number; // word index of journal entry 0
  readonly #jCap: number;
  readonly #arena: number; // heap-relative byte offset of the arena
  readonly #end: number; // heap-relative end of the arena
  readonly #bitmapW: number; // word index of the allocation bitmap
  readonly #namesW: number; // word index of name entry 0
  #guard: LockGuard | undefined = undefined; // held through the Mutex object (slow path)
  #holding = false;
  #slot = 0; // this object's participant slot in the heap lock, learnt at the first lock
  #seq = 0;
  #jpos = 0;
  #closed = false;
  /** Lock timeout in ms for every operation (default Infinity): a holder stopped (SIGSTOP) forever stalls others otherwise. */
  lockTimeout: number = Infinity;

  private constructor(seg: SharedMemory, off: number, g: HeapGeometry, owns: boolean, mutex: Mutex) {
    this.#seg = seg;
    this.#owns = owns;
    this.#off = off;
    this.#g = g;
    this.#what = seg.name === null
      ? `heap at ${off} of anonymous memory`
      : off === 0
      ? `heap "${seg.name}"`
      : `heap at ${off} of "${seg.name}"`;
    this.#w = seg.view(Int32Array, off, g.byteLength / 4);
    this.#mutex = mutex;
    this.#lockWord = (g.mutexOffset + 64) >> 2;
    this.#jBase = g.journalOffset >> 2;
    this.#jCap = HEAP_JOURNAL_CAPACITY;
    this.#arena = g.arenaOffset;
    this.#end = g.arenaOffset + g.arenaSize;
    this.#bitmapW = g.bitmapOffset >> 2;
    this.#namesW = g.namesOffset >> 2;
  }

  /**
   * Bytes a heap with these options occupies (header, lock, journal, names, bitmap and arena).
   * @param options `size` (arena bytes), `names`, `slots`
   * @returns the byte length, a multiple of 64
   * @throws {RangeError} for sizes or counts out of range
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * console.assert(SharedHeap.byteLength({ size: 4096 }) > 4096);
   * ```
   */
  static byteLength(options: SharedHeapOptions): number {
    return checkOptions(options, "Cannot size heap").byteLength;
  }

  /**
   * Formats an empty heap at `byteOffset` of `segment` and attaches it (the segment stays the caller's).
   * @param segment the segment
   * @param byteOffset a multiple of 64 with room for {@linkcode SharedHeap.byteLength} bytes
   * @param options `size`, `names`, `slots`
   * @returns the heap
   * @throws {RangeError} when it does not fit; {@linkcode ShmError} EINVAL for a misaligned offset
   * @example
   * ```ts
   * import { SharedHeap, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, SharedHeap.byteLength({ size: 4096 }));
   * using heap = SharedHeap.init(seg, 0, { size: 4096 });
   * heap.free(heap.alloc(10));
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: SharedHeapOptions): SharedHeap {
    const what = "Cannot init heap";
    const g = checkOptions(options, what);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % OBJECT_ALIGN !== 0) {
      throw new ShmError(
        "EINVAL",
        `${what}: byteOffset ${byteOffset} must be a non-negative multiple of ${OBJECT_ALIGN} (EINVAL)`,
      );
    }
    if (byteOffset + g.byteLength > segment.size) {
      throw new RangeError(
        `${what}: ${g.byteLength} bytes at ${byteOffset} do not fit in the ${segment.size}-byte segment`,
      );
    }
    const hb = segment.bytes(byteOffset, g.byteLength);
    const buf = hb.buffer as ArrayBuffer;
    const base = hb.byteOffset;
    writeHeader(buf, base, "heap", g.arenaOffset, g.byteLength);
    hb.fill(0, COMMON_HEADER_SIZE, g.arenaOffset);
    const dv = new DataView(buf, base, g.arenaOffset);
    dv.setUint32(HEAP.arenaOffset, g.arenaOffset, true);
    dv.setUint32(HEAP.arenaSize, g.arenaSize, true);
    dv.setUint32(HEAP.nameCount, g.nameCount, true);
    dv.setUint32(HEAP.journalCapacity, HEAP_JOURNAL_CAPACITY, true);
    dv.setUint32(HEAP.mutexOffset, g.mutexOffset, true);
    dv.setUint32(HEAP.journalOffset, g.journalOffset, true);
    dv.setUint32(HEAP.namesOffset, g.namesOffset, true);
    dv.setUint32(HEAP.bitmapOffset, g.bitmapOffset, true);
    dv.setUint32(HEAP.slots, g.slots, true);
    Mutex.init(segment, byteOffset + g.mutexOffset, { slots: g.slots }).close();
    // One free block spanning the arena.
    const w = new Uint32Array(buf, base, g.byteLength / 4);
    const b = g.arenaOffset;
    w[b >> 2] = g.arenaSize | PREV_USED;
    w[(b >> 2) + 1] = 0;
    w[(b >> 2) + 2] = 0;
    w[(b >> 2) + 3] = 0;
    const fl = flOf(g.arenaSize);
    const sl = (g.arenaSize >>> (fl - SL_BITS)) & (SL_COUNT - 1);
    w[W_HEADS + fl * SL_COUNT + sl] = b;
    w[W_SLBITMAPS + fl] = 1 << sl;
    w[W_FLBITMAP] = (1 << fl) >>> 0;
    publishReady(buf, base); // release: everything above is visible before "ready"
    return SharedHeap.#at(segment, byteOffset, false, what);
  }

  /**
   * Attaches the heap at `byteOffset` of `segment`, validating its header.
   * @param segment the segment (stays the caller's)
   * @param byteOffset where the heap starts
   * @returns the heap
   * @throws {ShmError} EBADHDR when no valid heap is there
   * @example
   * ```ts
   * import { SharedHeap, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, SharedHeap.byteLength({ size: 4096 }));
   * SharedHeap.init(seg, 0, { size: 4096 }).close();
   * using heap = SharedHeap.at(seg, 0);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): SharedHeap {
    return SharedHeap.#at(segment, byteOffset, false, `Cannot attach heap at ${byteOffset}`);
  }

  static #at(seg: SharedMemory, off: number, owns: boolean, what: string): SharedHeap {
    const bad = (why: string) => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    if (!Number.isSafeInteger(off) || off < 0 || off % OBJECT_ALIGN !== 0 || off + 1024 > seg.size) {
      if (Number.isSafeInteger(off) && off >= 0 && off % OBJECT_ALIGN === 0) throw bad("the segment is too small");
      throw new ShmError("EINVAL", `${what}: byteOffset ${off} must be a non-negative multiple of 64 (EINVAL)`);
    }
    const first = seg.bytes(off, 1024);
    const h = readHeader(
      first.buffer as ArrayBuffer,
      first.byteOffset,
      "heap",
      what,
      1000,
      first.byteOffset + seg.size - off,
    );
    const dv = new DataView(first.buffer, first.byteOffset, 1024);
    const arenaSize = dv.getUint32(HEAP.arenaSize, true);
    const nameCount = dv.getUint32(HEAP.nameCount, true);
    const slots = dv.getUint32(HEAP.slots, true);
    if (arenaSize < 64 || arenaSize > HEAP_MAX_ARENA || arenaSize % 64 !== 0) {
      throw bad(`impossible arena size ${arenaSize}`);
    }
    if (nameCount < 1 || nameCount > 65536) throw bad(`impossible name count ${nameCount}`);
    if (slots < 1 || slots > 0xffff) throw bad(`impossible slot count ${slots}`);
    const g = heapGeometry(arenaSize, nameCount, slots);
    const fields: [keyof typeof HEAP, number][] = [
      ["arenaOffset", g.arenaOffset],
      ["journalCapacity", HEAP_JOURNAL_CAPACITY],
      ["mutexOffset", g.mutexOffset],
      ["journalOffset", g.journalOffset],
      ["namesOffset", g.namesOffset],
      ["bitmapOffset", g.bitmapOffset],
    ];
    for (const [k, v] of fields) {
      const got = dv.getUint32(HEAP[k], true);
      if (got !== v) throw bad(`${k} is ${got}, expected ${v} for this arena, name count and slot count`);
    }
    if (h.byteLength !== g.byteLength || h.headerSize !== g.arenaOffset) {
      throw bad(`byte length ${h.byteLength} / header size ${h.headerSize} do not match the layout`);
    }
    if (off + g.byteLength > seg.size) throw bad(`it needs ${g.byteLength} bytes, the segment has ${seg.size - off}`);
    const mutex = Mutex.at(seg, off + g.mutexOffset);
    if (mutex.slots !== slots) {
      mutex.close();
      throw bad(`the heap lock has ${mutex.slots} slots, the header says ${slots}`);
    }
    return new SharedHeap(seg, off, g, owns, mutex);
  }

  /**
   * Creates a segment named `name` (null: a random name) holding an empty heap (exclusive).
   * @param name the segment name, or null
   * @param options `size` (arena bytes), `names`, `slots`, `fileMode`
   * @returns the heap, which owns its segment
   * @throws {ShmError} EEXIST, EINVAL for a bad name, EACCES; {@linkcode RangeError} for bad sizes
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(`doc-heap-create-${Date.now()}`, { size: 1 << 20 });
   * heap.unlink();
   * ```
   */
  static create(name: string | null, options: SharedHeapOptions): SharedHeap {
    const g = checkOptions(options, createWhat("heap", name));
    const seg = renamed(
      () => SharedMemory.create(name, g.byteLength, { mode: options.fileMode }),
      "Cannot create heap",
      name ?? "",
    );
    return placeOrRelease(seg, true, () => {
      SharedHeap.init(seg, 0, options).close();
      return SharedHeap.#at(seg, 0, true, `Cannot create heap "${seg.name}"`);
    });
  }

  /**
   * Opens the heap of segment `name` (made by {@linkcode SharedHeap.create}).
   * @param name the segment name
   * @returns the heap, which owns its segment
   * @throws {ShmError} ENOENT when there is no such segment, EBADHDR when it holds no valid heap
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * const name = `doc-heap-open-${Date.now()}`;
   * using a = SharedHeap.create(name, { size: 4096 });
   * using b = SharedHeap.open(name);
   * b.free(b.alloc(8));
   * a.unlink();
   * ```
   */
  static open(name: string): SharedHeap {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open heap", name);
    return placeOrRelease(seg, false, () => SharedHeap.#at(seg, 0, true, `Cannot open heap "${seg.name}"`));
  }

  /**
   * Reopens a heap from its {@linkcode SharedHeap.handle} (in any process).
   * @param handle from `handle()`, possibly through JSON
   * @returns the heap, which owns its (newly attached) segment
   * @throws {ShmError} EINVAL for a handle of another kind, ENOENT, EBADHDR
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * using again = SharedHeap.attach(JSON.parse(JSON.stringify(heap.handle())));
   * heap.unlink();
   * ```
   */
  static attach(handle: SharedHeapHandle): SharedHeap {
    checkHandle(handle, "shmkit.heap");
    const off = handle.byteOffset;
    const seg = SharedMemory.attach(handle.segment);
    return placeOrRelease(
      seg,
      false,
      () => SharedHeap.#at(seg, off, true, `Cannot attach heap at ${off} of ${seg.name ?? "anonymous memory"}`),
    );
  }

  /** The segment holding the heap (objects placed in the heap live in it). */
  get segment(): SharedMemory {
    return this.#seg;
  }

  /** Where the heap starts in its segment. */
  get byteOffset(): number {
    return this.#off;
  }

  /** Arena bytes. */
  get size(): number {
    return this.#g.arenaSize;
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------
  // Allocation

  /**
   * Allocates `byteLength` bytes (contents undefined: a freed block keeps old bytes).
   * @param byteLength bytes, 1 .. arena size
   * @param options `align`: power of two 16..65536 (default 16) for the returned offset
   * @returns the allocation's byte offset in the segment (the handle other processes use)
   * @throws {ShmError} ENOMEM when no free block fits, ECLOSED, ETIMEDOUT (lockTimeout), EBADHDR
   * for a corrupt heap; {@linkcode RangeError} for a bad length or alignment
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * const off = heap.alloc(256, { align: 64 });
   * console.assert(off % 64 === 0);
   * heap.free(off);
   * heap.unlink();
   * ```
   */
  alloc(byteLength: number, options?: AllocOptions): number {
    const align = options?.align ?? 16;
    if (!(byteLength >= 1 && byteLength <= this.#g.arenaSize) || byteLength !== Math.floor(byteLength)) {
      throw new RangeError(
        `Cannot allocate in ${this.#what}: byteLength must be an integer in 1..${this.#g.arenaSize}, got ${byteLength}`,
      );
    }
    if (!(align >= 1 && align <= 65536) || (align & (align - 1)) !== 0) {
      throw new RangeError(`Cannot allocate in ${this.#what}: align must be a power of two up to 65536, got ${align}`);
    }
    this.#lock("allocate in");
    let b = 0;
    try {
      b = this.#alloc(byteLength, align < 16 ? 16 : align);
      if (b === 0) {
        this.#rollback();
        this.#unlock();
        throw new ShmError(
          "ENOMEM",
          `Cannot allocate ${byteLength} bytes in ${this.#what}: no free block fits (largest free ${this.#largestFreeLocked()} bytes) (ENOMEM)`,
        );
      }
      this.#set(W_PENDING, b);
      if (FAULT_ON) fault("heap.alloc.before_commit");
      this.#commit();
      if (FAULT_ON) fault("heap.alloc.after_commit");
    } catch (e) {
      if (this.#holding) this.#abort();
      throw e;
    }
    this.#unlock();
    if (FAULT_ON) fault("heap.alloc.after_unlock");
    return this.#off + b + HEAP_BLOCK_HEADER;
  }

  /**
   * Frees an allocation.
   * @param offset what {@linkcode alloc} returned (in this or another process)
   * @throws {ShmError} EINVAL for an offset that is not a live allocation (foreign, interior,
   * already freed), which changes nothing; ECLOSED, ETIMEDOUT, EBADHDR
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * const off = heap.alloc(10);
   * heap.free(off);
   * try { heap.free(off); } catch (e) { console.assert((e as { code: string }).code === "EINVAL"); }
   * heap.unlink();
   * ```
   */
  free(offset: number): void {
    this.#lock("free in");
    try {
      const b = this.#liveBlock(offset);
      if (b < 0) {
        this.#commit();
        this.#unlock();
        throw new ShmError(
          "EINVAL",
          `Cannot free ${offset} in ${this.#what}: it is not a live allocation (foreign, interior or already freed) (EINVAL)`,
        );
      }
      this.#free(b);
      if (FAULT_ON) fault("heap.free.before_commit");
      this.#commit();
      if (FAULT_ON) fault("heap.free.after_commit");
    } catch (e) {
      if (this.#holding) this.#abort();
      throw e;
    }
    this.#unlock();
  }

  /**
   * The usable size of a live allocation (at least what was asked; the block may be larger).
   * @param offset a live allocation
   * @returns bytes usable from `offset`
   * @throws {ShmError} EINVAL when `offset` is not a live allocation
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * console.assert(heap.sizeOf(heap.alloc(10)) >= 10);
   * heap.unlink();
   * ```
   */
  sizeOf(offset: number): number {
    this.#lock("inspect");
    let n = -1;
    try {
      const b = this.#liveBlock(offset);
      if (b >= 0) n = this.#sizeAt(b) - HEAP_BLOCK_HEADER;
      this.#commit();
    } catch (e) {
      this.#abort();
      throw e;
    }
    this.#unlock();
    if (n < 0) {
      throw new ShmError("EINVAL", `Cannot size ${offset} in ${this.#what}: it is not a live allocation (EINVAL)`);
    }
    return n;
  }

  /**
   * A zero-copy byte view of `length` bytes at `offset` (an allocation, or part of one).
   * @param offset byte offset in the segment, inside the arena
   * @param length bytes
   * @returns the view, detached by close()
   * @throws {RangeError} when the range is not inside the arena
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * const off = heap.alloc(4);
   * heap.bytes(off, 4).set([1, 2, 3, 4]);
   * heap.unlink();
   * ```
   */
  bytes(offset: number, length: number): Uint8Array {
    this.#checkRange(offset, length, 1);
    return this.#seg.bytes(offset, length);
  }

  /**
   * A zero-copy typed view of `length` elements at `offset`.
   * @param type Uint32Array, Float64Array, DataView, ...
   * @param offset byte offset in the segment (aligned for the type)
   * @param length element count
   * @returns the view, detached by close()
   * @throws {RangeError} when the range is not inside the arena
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * const counters = heap.view(Int32Array, heap.alloc(16), 4);
   * Atomics.add(counters, 0, 1);
   * heap.unlink();
   * ```
   */
  view<T extends ArrayBufferView>(type: ViewConstructor<T>, offset: number, length: number): T {
    const per = (type as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    this.#checkRange(offset, length * per, 1);
    return this.#seg.view(type, offset, length);
  }

  // -------------------------------------------------------------------------------------------
  // Named roots

  /**
   * Names a live allocation so other processes find it with {@linkcode get}; replaces an
   * existing name.
   * @param name 1..48 UTF-8 bytes
   * @param offset a live allocation
   * @throws {ShmError} EINVAL when `offset` is not a live allocation, ENOSPC when the table is full;
   * {@linkcode RangeError} for a bad name
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * heap.set("config", heap.alloc(64));
   * console.assert(heap.get("config") !== undefined);
   * heap.unlink();
   * ```
   */
  set(name: string, offset: number): void {
    const nb = this.#nameBytes(name);
    this.#locked("name in", () => {
      const b = this.#liveBlock(offset);
      if (b < 0) {
        throw new ShmError("EINVAL", `Cannot name ${offset} in ${this.#what}: it is not a live allocation (EINVAL)`);
      }
      this.#putName(nb, name, b, 0);
    });
  }

  /**
   * The offset stored under `name`, or undefined.
   * @param name the name
   * @returns the allocation's offset in the segment, or undefined
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * console.assert(heap.get("nothing") === undefined);
   * heap.unlink();
   * ```
   */
  get(name: string): number | undefined {
    const nb = this.#nameBytes(name);
    return this.#locked("look up in", () => {
      const e = this.#findName(nb);
      return e < 0 ? undefined : this.#off + this.#entryPayload(e);
    });
  }

  /**
   * Removes a name (the allocation stays; see {@linkcode destroy}).
   * @param name the name
   * @returns true if it existed
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * heap.set("x", heap.alloc(8));
   * console.assert(heap.delete("x") && !heap.delete("x"));
   * heap.unlink();
   * ```
   */
  delete(name: string): boolean {
    const nb = this.#nameBytes(name);
    return this.#locked("unname in", () => {
      const e = this.#findName(nb);
      if (e < 0) return false;
      this.#clearName(e);
      return true;
    });
  }

  /**
   * Removes a name and frees its allocation, in one step (atomic across processes). Objects
   * placed there must no longer be used by anyone.
   * @param name the name
   * @returns true if it existed
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * heap.findOrAlloc("scratch", 100);
   * console.assert(heap.destroy("scratch"));
   * heap.unlink();
   * ```
   */
  destroy(name: string): boolean {
    const nb = this.#nameBytes(name);
    return this.#locked("destroy in", () => {
      const e = this.#findName(nb);
      if (e < 0) return false;
      const b = this.#entryPayload(e) - HEAP_BLOCK_HEADER;
      this.#clearName(e);
      if (this.#liveBlock(this.#off + b + HEAP_BLOCK_HEADER) >= 0) this.#free(b);
      return true;
    });
  }

  /**
   * The allocation named `name`; if there is none, allocates `byteLength` zeroed bytes, runs
   * `init` on them and names them, all under the heap lock: exactly one process creates it,
   * whatever the races, and a creator killed halfway leaves nothing behind.
   * @param name the name
   * @param byteLength bytes to allocate when missing
   * @param options `align`, `init(bytes)` run on the new zeroed bytes before anyone can see them
   * @returns the offset (existing or new)
   * @throws {ShmError} ENOMEM, ENOSPC (name table full)
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * const a = heap.findOrAlloc("table", 64);
   * console.assert(heap.findOrAlloc("table", 64) === a);
   * heap.unlink();
   * ```
   */
  findOrAlloc(
    name: string,
    byteLength: number,
    options?: AllocOptions & { init?: (bytes: Uint8Array) => void },
  ): number {
    return this.#findOrPlace(name, byteLength, options?.align ?? 16, 0, (off) => {
      const bytes = this.#seg.bytes(off, byteLength);
      bytes.fill(0);
      options?.init?.(bytes);
    }).offset;
  }

  /**
   * Creates an object (Ring, Mempool, Channel, Mutex, Semaphore, Condition, SharedArray, or a
   * {@linkcode struct} type) in a new allocation and names it, in one step.
   * @param type the class (or struct type)
   * @param name the name other processes use with {@linkcode open}
   * @param options the class's options (as for its `init`)
   * @returns the object (it shares the heap's segment: close it before or with the heap)
   * @throws {ShmError} EEXIST when the name is taken, ENOMEM, ENOSPC
   * @example
   * ```ts
   * import { Ring, SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 1 << 16 });
   * using jobs = heap.create(Ring, "jobs", { capacity: 64 });
   * jobs.tryEnqueue(7);
   * using same = heap.open(Ring, "jobs"); // in any process
   * console.assert(same.tryDequeue() === 7);
   * heap.unlink();
   * ```
   */
  create<T, O>(type: Placeable<T, O>, name: string, options?: O): T {
    const o = (options ?? {}) as O;
    const r = this.#findOrPlace(name, type.byteLength(o), type.align ?? OBJECT_ALIGN, 1, (off) => {
      const obj = type.init(this.#seg, off, o) as { close?: unknown };
      if (typeof obj.close === "function") obj.close();
    });
    if (!r.created) {
      throw new ShmError(
        "EEXIST",
        `Cannot create ${JSON.stringify(name)} in ${this.#what}: the name is taken (EEXIST)`,
      );
    }
    return type.at(this.#seg, r.offset);
  }

  /**
   * Attaches the object named `name` (made by {@linkcode create} or {@linkcode findOrCreate}).
   * @param type the class (or struct type)
   * @param name the name
   * @returns the object
   * @throws {ShmError} ENOENT when the name is unknown, EBADHDR when it holds another kind
   * @example
   * ```ts
   * import { Mutex, SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 1 << 16 });
   * heap.create(Mutex, "lock", {}).close();
   * using m = heap.open(Mutex, "lock");
   * m.lock().unlock();
   * heap.unlink();
   * ```
   */
  open<T, O>(type: Placeable<T, O>, name: string): T {
    const off = this.get(name);
    if (off === undefined) {
      throw new ShmError("ENOENT", `Cannot open ${JSON.stringify(name)} in ${this.#what}: no such name (ENOENT)`);
    }
    return type.at(this.#seg, off);
  }

  /**
   * The object named `name`, created (and named) first if missing: atomic across processes, like
   * Boost's `find_or_construct`.
   * @param type the class (or struct type)
   * @param name the name
   * @param options the class's options, used only when creating
   * @returns the object
   * @throws {ShmError} ENOMEM, ENOSPC, EBADHDR when the name holds another kind
   * @example
   * ```ts
   * import { SharedHeap, Semaphore } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 1 << 16 });
   * using s = heap.findOrCreate(Semaphore, "slots", { value: 2 });
   * console.assert(s.tryAcquire());
   * heap.unlink();
   * ```
   */
  findOrCreate<T, O>(type: Placeable<T, O>, name: string, options?: O): T {
    const o = (options ?? {}) as O;
    const r = this.#findOrPlace(name, type.byteLength(o), type.align ?? OBJECT_ALIGN, 1, (off) => {
      const obj = type.init(this.#seg, off, o) as { close?: unknown };
      if (typeof obj.close === "function") obj.close();
    });
    return type.at(this.#seg, r.offset);
  }

  /**
   * Every named root.
   * @returns the names with offsets, lengths and kinds
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * heap.findOrAlloc("a", 8);
   * console.assert(heap.names()[0].name === "a");
   * heap.unlink();
   * ```
   */
  names(): HeapName[] {
    return this.#locked("list", () => this.#listNames());
  }

  // -------------------------------------------------------------------------------------------
  // Diagnostics

  /**
   * Sizes, counts and fragmentation, from a walk of the whole arena under the lock.
   * @returns the figures
   * @throws {ShmError} EBADHDR when the walk finds a corrupt block
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * heap.alloc(100);
   * const s = heap.stats();
   * console.assert(s.allocations === 1 && s.used + s.free === s.size);
   * heap.unlink();
   * ```
   */
  stats(): HeapStats {
    return this.#locked("read stats of", () => {
      const w = this.#w;
      let free = 0, largest = 0, used = 0, allocs = 0, freeBlocks = 0;
      const maxSteps = this.#g.arenaSize / HEAP_BLOCK_HEADER;
      let b = this.#arena;
      for (let i = 0; b < this.#end; i++) {
        if (i > maxSteps) throw this.#bad("the block walk does not end");
        const sz = this.#sizeAt(b);
        if ((w[b >> 2] & USED) !== 0) {
          used += sz;
          allocs++;
        } else {
          free += sz;
          freeBlocks++;
          if (sz > largest) largest = sz;
        }
        b += sz;
      }
      let names = 0;
      for (let e = 0; e < this.#g.nameCount; e++) if (w[this.#namesW + e * 16] !== 0) names++;
      return {
        size: this.#g.arenaSize,
        used,
        free,
        largestFree: largest,
        allocations: allocs,
        freeBlocks,
        fragmentation: free === 0 ? 0 : 1 - largest / free,
        recoveries: w[W_RECOVERIES] >>> 0,
        rolledBack: w[W_ROLLEDBACK] >>> 0,
        leakedInFlight: w[W_LEAKED] >>> 0,
        lastLeaked: w[W_LASTLEAKED] === 0 ? undefined : this.#off + (w[W_LASTLEAKED] >>> 0),
        names,
        nameCapacity: this.#g.nameCount,
      };
    });
  }

  /**
   * Checks every invariant (I1..I5 in the module documentation) under the lock.
   * @returns a list of problems, empty for a sound heap
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * console.assert(heap.validate().length === 0);
   * heap.unlink();
   * ```
   */
  validate(): string[] {
    return this.#locked("validate", () => this.#validate());
  }

  /**
   * A JSON-safe handle; {@linkcode SharedHeap.attach} reopens it in any process.
   * @returns the handle
   * @throws {ShmError} ECLOSED after close()
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(null, { size: 4096 });
   * console.assert(heap.handle().kind === "shmkit.heap");
   * heap.unlink();
   * ```
   */
  handle(): SharedHeapHandle {
    if (this.#closed) throw this.#closedError("make a handle of");
    return placedHandle("shmkit.heap", this.#seg, this.#off);
  }

  /**
   * Detaches this object (idempotent); closes the segment if the heap owns it, which detaches the
   * views of objects opened from the heap too.
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * const heap = SharedHeap.create(null, { size: 4096 });
   * heap.unlink();
   * heap.close();
   * heap.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mutex.close();
    if (this.#owns) this.#seg.close();
  }

  /**
   * Removes the segment's name (processes already attached keep working).
   * @example
   * ```ts
   * import { SharedHeap } from "./mod.ts";
   * using heap = SharedHeap.create(`doc-heap-unlink-${Date.now()}`, { size: 4096 });
   * heap.unlink();
   * ```
   */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  // -------------------------------------------------------------------------------------------
  // Lock and journal

  /**
   * Takes the heap lock, recovers a dead holder's operation, and begins a new operation.
   *
   * The lock is the Mutex in the header (docs/layout/locks.md). The first lock goes through the
   * Mutex object, which claims this object's participant slot k; later uncontended locks take the
   * word with the Mutex's own fast-path step (CAS 0 -> k) and release it with its unlock step
   * (exchange with 0, FUTEX_WAKE when WAITERS was set), without the Mutex object's bookkeeping.
   * Anything else (held, abandoned, a dead owner) goes through Mutex.lock().
   */
  #lock(action: string): void {
    if (this.#closed) throw this.#closedError(action);
    const w = this.#w;
    let recovered = false;
    // L1: uncontended fast path (acquire CAS); pairs with U1 / U2.
    if (this.#slot === 0 || Atomics.compareExchange(w, this.#lockWord, 0, this.#slot) !== 0) {
      const g = this.#mutex.tryLock() ?? this.#lockSlow(action);
      this.#guard = g;
      recovered = g.recovered;
      // The word names this object's slot now (seq_cst load; we hold the lock).
      if (this.#slot === 0) this.#slot = Atomics.load(w, this.#lockWord) & 0xffff;
    }
    this.#holding = true;
    if (recovered || w[W_DONESEQ] !== w[W_OPSEQ]) {
      try {
        this.#recover(recovered);
      } catch (e) {
        this.#unlock();
        throw e;
      }
    }
    this.#begin();
  }

  #lockSlow(action: string): LockGuard {
    const what = `Cannot ${action} ${this.#what}`;
    const ms = this.lockTimeout;
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    const w = this.#w;
    for (;;) {
      // L2: wait briefly for the owner field to clear (seq_cst load); pairs with U1.
      for (let i = 0; i < SPIN && (Atomics.load(w, this.#lockWord) & 0xffff) !== 0; i++) { /* spin */ }
      const left = deadline - performance.now();
      if (left <= 0) throw new ShmError("ETIMEDOUT", `${what}: the heap lock was not free within ${ms} ms (ETIMEDOUT)`);
      try {
        // L3: blocking lock: futex sleep, dead-holder recovery within 200 ms (src/mutex.ts).
        return this.#mutex.lock({ timeout: Math.min(left, 1000) });
      } catch (e) {
        if (!(e instanceof ShmError) || (e.code !== "ETIMEDOUT" && e.code !== "EBUSY")) throw e;
        // EBUSY: another thread of this process holds it (same identity): spin until it lets go.
      }
    }
  }

  #begin(): void {
    const w = this.#w;
    // J1: a new operation sequence (plain store under the lock; ordered before J2 by program order).
    const seq = (w[W_OPSEQ] + 1) | 0;
    w[W_OPSEQ] = seq;
    this.#seq = seq;
    this.#jpos = 0;
    // J4: no alloc of this operation is pending yet (plain store; the alloc path journals its own).
    w[W_PENDING] = 0;
  }

  /** Journaled store: entry (index, old, seq) first, then the value. */
  #set(i: number, v: number): void {
    const w = this.#w;
    const j = this.#jpos;
    if (j >= this.#jCap) throw this.#bad("an operation outgrew the journal");
    const e = this.#jBase + j * 3;
    // J2: journal entry before the store it undoes (plain stores, program order, x86-TSO/arm64 dmb
    // through the lock's release at commit); the seq word last marks the entry valid.
    w[e] = i;
    w[e + 1] = w[i];
    w[e + 2] = this.#seq;
    this.#jpos = j + 1;
    w[i] = v;
  }

  /** Marks the current operation done (J3: doneSeq = opSeq, plain store before U1's release). */
  #commit(): void {
    this.#w[W_DONESEQ] = this.#seq;
  }

  #unlock(): void {
    this.#holding = false;
    const g = this.#guard;
    if (g !== undefined) {
      this.#guard = undefined;
      g.unlock(); // U1: release (seq_cst exchange in Mutex.unlock); pairs with L1 / the Mutex's A1
      return;
    }
    // U2: release (seq_cst exchange, as Mutex.unlock's R1); pairs with L1 and the Mutex's A1/A6.
    const prev = Atomics.exchange(this.#w, this.#lockWord, 0);
    if ((prev & 0x80000000) !== 0) futexWake(this.#seg.mapping, this.#off + (this.#lockWord << 2), 1);
    if ((prev & 0xffff) !== this.#slot) {
      throw this.#bad(`the heap lock named slot ${prev & 0xffff} while this process (slot ${this.#slot}) held it`);
    }
  }

  /** Undoes the current operation (an error in the middle of it), then unlocks. */
  #abort(): void {
    try {
      this.#rollback();
    } finally {
      this.#unlock();
    }
  }

  /** Undoes the entries of the current operation of this process and commits the empty result. */
  #rollback(): void {
    const w = this.#w;
    for (let j = this.#jpos - 1; j >= 0; j--) {
      const e = this.#jBase + j * 3;
      w[w[e]] = w[e + 1];
    }
    this.#jpos = 0;
    w[W_DONESEQ] = this.#seq;
  }

  /**
   * The previous holder died holding the lock (or left an operation open): undo or finish what it
   * left. Idempotent: a recoverer that dies here is recovered the same way.
   */
  #recover(deadHolder: boolean): void {
    const w = this.#w;
    if (deadHolder) w[W_RECOVERIES] = (w[W_RECOVERIES] + 1) | 0;
    const seq = w[W_OPSEQ];
    if (w[W_DONESEQ] !== seq) {
      // R1: collect the dead holder's entries (those of its sequence, from 0, bounded by capacity).
      let n = 0;
      while (n < this.#jCap && w[this.#jBase + n * 3 + 2] === seq) n++;
      const total = this.#g.byteLength >> 2;
      for (let j = n - 1; j >= 0; j--) {
        const e = this.#jBase + j * 3;
        const i = w[e];
        if (i < W_PENDING || i >= total || (i >= this.#g.mutexOffset >> 2 && i < this.#namesW)) {
          throw this.#bad(`journal entry ${j} names word ${i}, outside the heap's mutable fields`);
        }
        w[i] = w[e + 1];
        if (FAULT_ON && j === n >> 1) fault("heap.recover.mid_rollback");
      }
      // R2: the dead operation is undone (plain store; a recoverer killed before it redoes R1).
      w[W_DONESEQ] = seq;
      w[W_ROLLEDBACK] = (w[W_ROLLEDBACK] + 1) | 0;
    }
    // R3: a dead holder with an alloc committed but not returned (it died between J3 and U1):
    // nobody can know that offset. Count it as leaked in flight (the block stays allocated:
    // freeing it would be wrong in the rare case where the dead holder was a later locker
    // killed before J1, after the allocating process had returned the offset).
    const b = w[W_PENDING];
    if (deadHolder && b !== 0) {
      w[W_LEAKED] = (w[W_LEAKED] + 1) | 0;
      w[W_LASTLEAKED] = b + HEAP_BLOCK_HEADER;
    }
    w[W_PENDING] = 0;
  }

  /** Runs `fn` as one operation under the lock; an error undoes it. */
  #locked<R>(action: string, fn: () => R): R {
    this.#lock(action);
    let r: R;
    try {
      r = fn();
      if (FAULT_ON) fault("heap.name.before_commit");
      this.#commit();
    } catch (e) {
      if (this.#holding) this.#abort();
      throw e;
    }
    this.#unlock();
    return r;
  }

  // -------------------------------------------------------------------------------------------
  // TLSF

  #bad(why: string): ShmError {
    return new ShmError("EBADHDR", `Corrupt ${this.#what}: ${why} (EBADHDR)`);
  }

  /** The size of the block at `b`, validated (I1). */
  #sizeAt(b: number): number {
    const sz = this.#w[b >> 2] & ~15;
    if (sz < HEAP_MIN_BLOCK || sz > this.#end - b) throw this.#bad(`block at ${b} has impossible size ${sz}`);
    return sz;
  }

  /** A free-list link read from shared memory, validated. */
  #link(v: number): number {
    if (v !== 0 && (v < this.#arena || v >= this.#end || (v & 15) !== 0)) {
      throw this.#bad(`free-list link ${v} is outside the arena`);
    }
    return v;
  }

  /** The heap-relative block of a live allocation at segment `offset`, or -1. */
  #liveBlock(offset: number): number {
    if (typeof offset !== "number" || !Number.isSafeInteger(offset)) return -1;
    const b = offset - this.#off - HEAP_BLOCK_HEADER;
    if (b < this.#arena || b >= this.#end || (b & 15) !== 0) return -1;
    const gi = (b - this.#arena) >> 4;
    if ((this.#w[this.#bitmapW + (gi >> 5)] & (1 << (gi & 31))) === 0) return -1;
    if ((this.#w[b >> 2] & USED) === 0) throw this.#bad(`the allocation bitmap marks ${b}, a free block`);
    this.#sizeAt(b);
    return b;
  }

  #setBit(b: number, on: boolean): void {
    const gi = (b - this.#arena) >> 4;
    const i = this.#bitmapW + (gi >> 5);
    const v = this.#w[i];
    this.#set(i, on ? v | (1 << (gi & 31)) : v & ~(1 << (gi & 31)));
  }

  /** List index of a free block of `size`. */
  #listOf(size: number): number {
    const fl = flOf(size);
    return fl * SL_COUNT + ((size >>> (fl - SL_BITS)) & (SL_COUNT - 1));
  }

  #insert(b: number, size: number): void {
    const w = this.#w;
    const li = this.#listOf(size);
    const head = this.#link(w[W_HEADS + li]);
    this.#set((b >> 2) + 2, head);
    this.#set((b >> 2) + 3, 0);
    if (head !== 0) this.#set((head >> 2) + 3, b);
    this.#set(W_HEADS + li, b);
    const fl = li >> SL_BITS;
    const slm = w[W_SLBITMAPS + fl];
    const bit = 1 << (li & (SL_COUNT - 1));
    if ((slm & bit) === 0) this.#set(W_SLBITMAPS + fl, slm | bit);
    const flm = w[W_FLBITMAP];
    if ((flm & (1 << fl)) === 0) this.#set(W_FLBITMAP, flm | (1 << fl));
  }

  /** The neighbours of free block `b` on list `li`, validated: [next, prev]. */
  #links(b: number, li: number): number {
    const w = this.#w;
    const next = this.#link(w[(b >> 2) + 2]);
    const prev = this.#link(w[(b >> 2) + 3]);
    if (prev !== 0 ? w[(prev >> 2) + 2] !== b : w[W_HEADS + li] !== b) {
      throw this.#bad(`free block ${b} is not linked from ${prev === 0 ? `the head of list ${li}` : prev}`);
    }
    if (next !== 0 && w[(next >> 2) + 3] !== b) throw this.#bad(`free list broken at ${b} <- ${next}`);
    return next;
  }

  #remove(b: number, size: number): void {
    const w = this.#w;
    const li = this.#listOf(size);
    const next = this.#links(b, li);
    const prev = w[(b >> 2) + 3];
    if (prev !== 0) {
      this.#set((prev >> 2) + 2, next);
    } else {
      this.#set(W_HEADS + li, next);
      if (next === 0) {
        const fl = li >> SL_BITS;
        const slm = w[W_SLBITMAPS + fl] & ~(1 << (li & (SL_COUNT - 1)));
        this.#set(W_SLBITMAPS + fl, slm);
        if (slm === 0) this.#set(W_FLBITMAP, w[W_FLBITMAP] & ~(1 << fl));
      }
    }
    if (next !== 0) this.#set((next >> 2) + 3, prev);
  }

  /**
   * Free block `old` (of `oldSize`, on its list) becomes free block `neu` of `newSize`: relinked in
   * place when both sizes map to the same list (no bitmap churn), else removed and inserted.
   */
  #replace(old: number, oldSize: number, neu: number, newSize: number): void {
    const li = this.#listOf(oldSize);
    if (li !== this.#listOf(newSize)) {
      this.#remove(old, oldSize);
      this.#insert(neu, newSize);
      return;
    }
    if (neu === old) return;
    const w = this.#w;
    const next = this.#links(old, li);
    const prev = w[(old >> 2) + 3];
    this.#set((neu >> 2) + 2, next);
    this.#set((neu >> 2) + 3, prev);
    if (prev !== 0) this.#set((prev >> 2) + 2, neu);
    else this.#set(W_HEADS + li, neu);
    if (next !== 0) this.#set((next >> 2) + 3, neu);
  }

  /** The head of the first non-empty list whose blocks all hold `size` bytes, or 0. */
  #find(size: number): number {
    const w = this.#w;
    // Round up to the next list boundary, so every block of the list found fits.
    let fl = flOf(size);
    const r = size + (1 << (fl - SL_BITS)) - 1;
    fl = flOf(r);
    let sl = (r >>> (fl - SL_BITS)) & (SL_COUNT - 1);
    let slm = w[W_SLBITMAPS + fl] & (~0 << sl);
    if (slm === 0) {
      if (fl >= FL_COUNT - 1) return 0;
      const flm = w[W_FLBITMAP] & (~0 << (fl + 1));
      if (flm === 0) return 0;
      fl = ctz(flm);
      slm = w[W_SLBITMAPS + fl];
      if (slm === 0) throw this.#bad(`first-level bitmap names level ${fl}, whose lists are empty`);
    }
    sl = ctz(slm);
    const b = this.#link(w[W_HEADS + fl * SL_COUNT + sl]);
    if (b === 0) throw this.#bad(`bitmap names list ${fl}.${sl}, which is empty`);
    return b;
  }

  /** Allocates a block for `n` payload bytes with the payload aligned to `align`; 0 if none fits. */
  #alloc(n: number, align: number): number {
    const w = this.#w;
    const need = n + HEAP_BLOCK_HEADER <= HEAP_MIN_BLOCK ? HEAP_MIN_BLOCK : (n + HEAP_BLOCK_HEADER + 15) & ~15;
    const search = align <= 16 ? need : need + align + HEAP_MIN_BLOCK;
    if (search > this.#g.arenaSize) return 0;
    let b = this.#find(search);
    if (b === 0) {
      // Rounding up to a list boundary may skip a block that fits exactly: try the lower list's head.
      const h = this.#link(w[W_HEADS + this.#listOf(search)]);
      if (h === 0 || (w[h >> 2] & USED) !== 0 || this.#sizeAt(h) < search) return 0;
      b = h;
    }
    const w0 = w[b >> 2];
    if ((w0 & USED) !== 0) throw this.#bad(`block ${b} on a free list is marked used`);
    let sz = this.#sizeAt(b);
    if (sz < search) throw this.#bad(`block ${b} of size ${sz} is on a list for ${search}+ bytes`);
    let prevBit = w0 & PREV_USED;
    let listed = true; // b is still on its free list
    if (align > 16) {
      const payload = this.#off + b + HEAP_BLOCK_HEADER;
      let gap = (Math.ceil(payload / align) * align) - payload;
      if (gap !== 0 && gap < HEAP_MIN_BLOCK) gap += align;
      if (gap !== 0) {
        // The leading gap stays a free block (same start, smaller size); the rest is carved out.
        this.#set(b >> 2, gap | prevBit);
        this.#replace(b, sz, b, gap);
        b += gap;
        sz -= gap;
        this.#set((b >> 2) + 1, gap);
        prevBit = 0;
        listed = false;
      }
    }
    const next = b + sz;
    if (sz - need >= HEAP_MIN_BLOCK) {
      const rem = b + need;
      const remSize = sz - need;
      this.#set(rem >> 2, remSize | PREV_USED);
      if (listed) this.#replace(b, sz, rem, remSize);
      else this.#insert(rem, remSize);
      if (next < this.#end) this.#set((next >> 2) + 1, remSize);
      sz = need;
    } else {
      if (listed) this.#remove(b, sz);
      if (next < this.#end) this.#set(next >> 2, w[next >> 2] | PREV_USED);
    }
    if (FAULT_ON) fault("heap.alloc.after_remove");
    this.#set(b >> 2, sz | USED | prevBit);
    this.#setBit(b, true);
    return b;
  }

  /** Frees the used block `b` (validated live), coalescing with free neighbours. */
  #free(b: number): void {
    const w = this.#w;
    const w0 = w[b >> 2];
    const sz = this.#sizeAt(b);
    let nFree = 0, nsz = 0, pFree = 0, psz = 0;
    const next = b + sz;
    if (next < this.#end) {
      const nw = w[next >> 2];
      if ((nw & PREV_USED) === 0) throw this.#bad(`block ${next} says its used predecessor ${b} is free`);
      if ((nw & USED) === 0) {
        nsz = this.#sizeAt(next);
        nFree = next;
      }
    }
    if ((w0 & PREV_USED) === 0) {
      psz = w[(b >> 2) + 1];
      const p = b - psz;
      if (psz < HEAP_MIN_BLOCK || (psz & 15) !== 0 || p < this.#arena) {
        throw this.#bad(`block ${b} has an impossible previous size ${psz}`);
      }
      if ((w[p >> 2] & USED) !== 0 || this.#sizeAt(p) !== psz) {
        throw this.#bad(`block ${b} names a free predecessor at ${p} that is not one`);
      }
      pFree = p;
    }
    this.#setBit(b, false);
    let start = b;
    const size = psz + sz + nsz;
    if (pFree !== 0) {
      if (nFree !== 0) this.#remove(nFree, nsz);
      this.#replace(pFree, psz, pFree, size);
      start = pFree;
    } else if (nFree !== 0) {
      this.#replace(nFree, nsz, b, size);
    } else {
      this.#insert(b, size);
    }
    if (FAULT_ON) fault("heap.free.after_unlink");
    // The merged block's predecessor is used (I2), so PREV_USED is set.
    this.#set(start >> 2, size | PREV_USED);
    const after = start + size;
    if (after < this.#end) {
      if (nFree === 0) this.#set(after >> 2, w[after >> 2] & ~PREV_USED);
      this.#set((after >> 2) + 1, size);
    }
  }

  #largestFreeLocked(): number {
    const w = this.#w;
    const flm = w[W_FLBITMAP];
    if (flm === 0) return 0;
    const fl = flOf(flm);
    const slm = w[W_SLBITMAPS + fl];
    if (slm === 0) return 0;
    // The highest list: walk it (bounded) for its largest block.
    let b = this.#link(w[W_HEADS + fl * SL_COUNT + flOf(slm)]);
    let best = 0;
    for (let i = 0; b !== 0 && i < this.#g.arenaSize / HEAP_MIN_BLOCK; i++) {
      const sz = this.#sizeAt(b);
      if (sz > best) best = sz;
      b = this.#link(w[(b >> 2) + 2]);
    }
    return best;
  }

  #validate(): string[] {
    const w = this.#w;
    const out: string[] = [];
    const maxSteps = this.#g.arenaSize / HEAP_BLOCK_HEADER;
    const freeSet = new Map<number, number>();
    let prevUsed = true;
    let prevSize = 0;
    let b = this.#arena;
    for (let i = 0; b < this.#end; i++) {
      if (i > maxSteps) {
        out.push("I1: the block walk does not end");
        return out;
      }
      const v = w[b >> 2];
      const sz = v & ~15;
      if (sz < HEAP_MIN_BLOCK || sz > this.#end - b) {
        out.push(`I1: block ${b} has impossible size ${sz}`);
        return out;
      }
      const isUsed = (v & USED) !== 0;
      if (((v & PREV_USED) !== 0) !== prevUsed) out.push(`I2: block ${b} PREV_USED disagrees with its predecessor`);
      if (!prevUsed && w[(b >> 2) + 1] !== prevSize) {
        out.push(`I2: block ${b} prevSize ${w[(b >> 2) + 1]} != ${prevSize}`);
      }
      if (!prevUsed && !isUsed) out.push(`I2: free blocks ${b - prevSize} and ${b} are adjacent`);
      const gi = (b - this.#arena) >> 4;
      const bit = (w[this.#bitmapW + (gi >> 5)] & (1 << (gi & 31))) !== 0;
      if (bit !== isUsed) out.push(`I4: allocation bit of block ${b} is ${bit}, block is ${isUsed ? "used" : "free"}`);
      if (!isUsed) freeSet.set(b, sz);
      // Interior granules carry no allocation bit.
      for (let g = gi + 1; g < gi + sz / 16; g++) {
        if ((w[this.#bitmapW + (g >> 5)] & (1 << (g & 31))) !== 0) {
          out.push(`I4: allocation bit set inside block ${b} at granule ${g}`);
          break;
        }
      }
      prevUsed = isUsed;
      prevSize = sz;
      b += sz;
    }
    if (b !== this.#end) out.push(`I1: blocks end at ${b}, the arena at ${this.#end}`);
    // I3: lists.
    let onLists = 0;
    for (let li = 0; li < FL_COUNT * SL_COUNT; li++) {
      let x = w[W_HEADS + li];
      let prev = 0;
      const fl = li >> SL_BITS;
      const bitOn = (w[W_SLBITMAPS + fl] & (1 << (li & 3))) !== 0;
      if (bitOn !== (x !== 0)) {
        out.push(`I3: bitmap bit of list ${li} is ${bitOn}, list ${x === 0 ? "empty" : "non-empty"}`);
      }
      for (let i = 0; x !== 0; i++) {
        if (i > maxSteps) {
          out.push(`I3: list ${li} does not end`);
          break;
        }
        const sz = freeSet.get(x);
        if (sz === undefined) {
          out.push(`I3: list ${li} holds ${x}, which is not a free block`);
          break;
        }
        if (this.#listOf(sz) !== li) out.push(`I3: block ${x} (size ${sz}) is on list ${li}`);
        if (w[(x >> 2) + 3] !== prev) out.push(`I3: back link of ${x} is ${w[(x >> 2) + 3]}, expected ${prev}`);
        onLists++;
        prev = x;
        x = w[(x >> 2) + 2];
      }
    }
    for (let fl = 0; fl < FL_COUNT; fl++) {
      const on = (w[W_FLBITMAP] & (1 << fl)) !== 0;
      if (on !== (w[W_SLBITMAPS + fl] !== 0)) out.push(`I3: first-level bit ${fl} disagrees with its lists`);
    }
    if (onLists !== freeSet.size) out.push(`I3: ${onLists} blocks on lists, ${freeSet.size} free blocks`);
    if (w[W_DONESEQ] !== ((this.#seq - 1) | 0)) {
      out.push(`I5: the previous operation ${(w[W_OPSEQ] - 1) >>> 0} was left open (doneSeq ${w[W_DONESEQ]})`);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Names

  #nameBytes(name: string): Uint8Array {
    if (typeof name !== "string" || name.length === 0) {
      throw new RangeError(`Cannot use name ${JSON.stringify(name)} in ${this.#what}: it must be a non-empty string`);
    }
    const nb = encoder.encode(name);
    if (nb.length > HEAP_NAME_MAX) {
      throw new RangeError(
        `Cannot use name ${JSON.stringify(name)} in ${this.#what}: longer than ${HEAP_NAME_MAX} UTF-8 bytes`,
      );
    }
    return nb;
  }

  #entryPayload(e: number): number {
    const p = this.#w[this.#namesW + e * 16 + 2];
    if (p < this.#arena + HEAP_BLOCK_HEADER || p >= this.#end) throw this.#bad(`name entry ${e} points to ${p}`);
    return p;
  }

  /** Index of the entry named `nb`, or -1 (bounded by the table size). */
  #findName(nb: Uint8Array): number {
    const w = this.#w;
    const bytes = new Uint8Array(w.buffer, w.byteOffset + this.#g.namesOffset, this.#g.nameCount * HEAP_NAME_BYTES);
    for (let e = 0; e < this.#g.nameCount; e++) {
      const len = w[this.#namesW + e * 16];
      if (len !== nb.length) continue;
      const base = e * HEAP_NAME_BYTES + HEAP_NAME_LAYOUT.name;
      let same = true;
      for (let i = 0; i < len; i++) {
        if (bytes[base + i] !== nb[i]) {
          same = false;
          break;
        }
      }
      if (same) return e;
    }
    return -1;
  }

  #putName(nb: Uint8Array, name: string, b: number, kind: number): void {
    let e = this.#findName(nb);
    if (e < 0) {
      for (let i = 0; i < this.#g.nameCount; i++) {
        if (this.#w[this.#namesW + i * 16] === 0) {
          e = i;
          break;
        }
      }
    }
    if (e < 0) {
      throw new ShmError(
        "ENOSPC",
        `Cannot name ${JSON.stringify(name)} in ${this.#what}: all ${this.#g.nameCount} name entries are used (ENOSPC)`,
      );
    }
    const base = this.#namesW + e * 16;
    const padded = new Uint8Array(HEAP_NAME_MAX);
    padded.set(nb);
    const words = new Int32Array(padded.buffer);
    for (let i = 0; i < HEAP_NAME_MAX / 4; i++) this.#set(base + 4 + i, words[i]);
    this.#set(base + 1, kind);
    this.#set(base + 2, b + HEAP_BLOCK_HEADER);
    this.#set(base + 3, this.#sizeAt(b) - HEAP_BLOCK_HEADER);
    this.#set(base, nb.length); // the length last: a reader without the lock never sees half a name
  }

  #clearName(e: number): void {
    const base = this.#namesW + e * 16;
    this.#set(base, 0);
    for (let i = 1; i < 16; i++) if (this.#w[base + i] !== 0) this.#set(base + i, 0);
  }

  #listNames(): HeapName[] {
    const w = this.#w;
    const out: HeapName[] = [];
    const bytes = new Uint8Array(w.buffer, w.byteOffset + this.#g.namesOffset, this.#g.nameCount * HEAP_NAME_BYTES);
    for (let e = 0; e < this.#g.nameCount; e++) {
      const len = w[this.#namesW + e * 16];
      if (len === 0) continue;
      if (len < 0 || len > HEAP_NAME_MAX) throw this.#bad(`name entry ${e} has length ${len}`);
      const base = e * HEAP_NAME_BYTES + HEAP_NAME_LAYOUT.name;
      const k = w[this.#namesW + e * 16 + 1];
      out.push({
        name: decoder.decode(bytes.slice(base, base + len)),
        offset: this.#off + this.#entryPayload(e),
        length: w[this.#namesW + e * 16 + 3],
        kind: k === 0 ? undefined : kindName(k),
      });
    }
    return out;
  }

  /** findOrAlloc / create / findOrCreate: look up, else allocate, init and name, as one operation. */
  #findOrPlace(
    name: string,
    byteLength: number,
    align: number,
    objectKind: number,
    init: (offset: number) => void,
  ): { offset: number; created: boolean } {
    const nb = this.#nameBytes(name);
    if (!Number.isSafeInteger(byteLength) || byteLength < 1 || byteLength > this.#g.arenaSize) {
      throw new RangeError(
        `Cannot allocate ${JSON.stringify(name)} in ${this.#what}: byteLength ${byteLength} is out of range`,
      );
    }
    if (!(align >= 1 && align <= 65536) || (align & (align - 1)) !== 0) {
      throw new RangeError(`Cannot allocate ${JSON.stringify(name)} in ${this.#what}: bad align ${align}`);
    }
    return this.#locked("create in", () => {
      const e = this.#findName(nb);
      if (e >= 0) return { offset: this.#off + this.#entryPayload(e), created: false };
      const b = this.#alloc(byteLength, align < 16 ? 16 : align);
      if (b === 0) {
        throw new ShmError(
          "ENOMEM",
          `Cannot allocate ${byteLength} bytes for ${
            JSON.stringify(name)
          } in ${this.#what}: no free block fits (ENOMEM)`,
        );
      }
      const off = this.#off + b + HEAP_BLOCK_HEADER;
      // The object's own bytes are not journaled: a rollback frees the block, so they do not matter.
      init(off);
      let kind = 0;
      if (objectKind !== 0) {
        const p = this.#seg.bytes(off, COMMON_HEADER_SIZE);
        const h = peekHeader(p.buffer as ArrayBuffer, p.byteOffset);
        kind = h ? KIND[h.kind] : 0;
      }
      this.#putName(nb, name, b, kind);
      return { offset: off, created: true };
    });
  }

  #checkRange(offset: number, byteLength: number, _align: number): void {
    if (this.#closed) throw this.#closedError("view");
    const lo = this.#off + this.#arena;
    const hi = this.#off + this.#end;
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(byteLength) || byteLength < 0 || offset < lo ||
      offset + byteLength > hi
    ) {
      throw new RangeError(
        `Cannot view ${byteLength} bytes at ${offset} of ${this.#what}: outside the arena [${lo}, ${hi})`,
      );
    }
  }

  #closedError(action: string): ShmError {
    return new ShmError("ECLOSED", `Cannot ${action} ${this.#what}: it is closed (ECLOSED)`);
  }
}

registerKind("shmkit.heap", (h) => SharedHeap.attach(h as SharedHeapHandle));

/**
 * A read-only snapshot of the heap at `byteOffset` of `segment` for the command line (`shmkit
 * inspect`): sizes and fragmentation from a bounded walk of the arena, recovery and leak counters,
 * and the named roots. Takes no lock and writes nothing (the segment may be mapped read-only), so
 * the figures may mix states of an operation in progress; a corrupt heap is reported, not followed.
 *
 * @param segment the segment
 * @param byteOffset where the heap starts
 * @returns label/value pairs
 * @example
 * ```ts
 * import { SharedHeap } from "./mod.ts";
 * import { describeHeap } from "./src/heap.ts";
 * using heap = SharedHeap.create(null, { size: 4096 });
 * heap.findOrAlloc("x", 10);
 * console.assert(describeHeap(heap.segment, 0).some(([k]) => k === "name x"));
 * heap.unlink();
 * ```
 */
export function describeHeap(segment: SharedMemory, byteOffset: number): [string, string | number | boolean][] {
  const out: [string, string | number | boolean][] = [];
  if (byteOffset + HEAP.mutex > segment.size) return [["error", "the heap header is cut short"]];
  const hd = new DataView(segment.buffer, byteOffset, HEAP.mutex);
  const arenaSize = hd.getUint32(HEAP.arenaSize, true);
  const nameCount = hd.getUint32(HEAP.nameCount, true);
  const slots = hd.getUint32(HEAP.slots, true);
  if (
    arenaSize < 64 || arenaSize > HEAP_MAX_ARENA || nameCount < 1 || nameCount > 65536 || slots < 1 || slots > 0xffff
  ) {
    return [["error", `impossible heap header (arena ${arenaSize}, names ${nameCount}, slots ${slots})`]];
  }
  const g = heapGeometry(arenaSize, nameCount, slots);
  if (hd.getUint32(HEAP.arenaOffset, true) !== g.arenaOffset || byteOffset + g.byteLength > segment.size) {
    return [["error", "the heap header does not match its layout"]];
  }
  const w = new DataView(segment.buffer, byteOffset, g.byteLength);
  let used = 0, free = 0, largest = 0, allocs = 0, freeBlocks = 0;
  let b = g.arenaOffset;
  const end = g.arenaOffset + arenaSize;
  let corrupt = "";
  for (let i = 0; b < end; i++) {
    const v = w.getUint32(b, true);
    const sz = (v & ~15) >>> 0;
    if (sz < HEAP_MIN_BLOCK || sz > end - b || i > arenaSize / 16) {
      corrupt = `block at ${b} has size ${sz}`;
      break;
    }
    if ((v & USED) !== 0) {
      used += sz;
      allocs++;
    } else {
      free += sz;
      freeBlocks++;
      if (sz > largest) largest = sz;
    }
    b += sz;
  }
  out.push(["arena", arenaSize], ["allocations", allocs], ["used", used], ["free", free]);
  out.push(["largest free", largest], ["free blocks", freeBlocks]);
  out.push(["fragmentation", free === 0 ? "0 %" : `${((1 - largest / free) * 100).toFixed(1)} %`]);
  if (corrupt) out.push(["error", `corrupt arena: ${corrupt} (operations on this heap fail with EBADHDR)`]);
  out.push(["recovered dead holders", hd.getUint32(HEAP.recoveries, true)], [
    "rolled back",
    hd.getUint32(HEAP.rolledBack, true),
  ]);
  const leaked = hd.getUint32(HEAP.leakedInFlight, true);
  const last = hd.getUint32(HEAP.lastLeaked, true);
  out.push(["leaked in flight", leaked === 0 ? 0 : `${leaked} (last at offset ${byteOffset + last})`]);
  if (hd.getUint32(HEAP.doneSeq, true) !== hd.getUint32(HEAP.opSeq, true)) {
    out.push(["open operation", "yes: in progress, or left by a dead holder (the next operation rolls it back)"]);
  }
  const names = new Uint8Array(segment.buffer, byteOffset + g.namesOffset, nameCount * HEAP_NAME_BYTES);
  let n = 0;
  for (let e = 0; e < nameCount; e++) {
    const base = g.namesOffset + e * HEAP_NAME_BYTES;
    const len = w.getUint32(base, true);
    if (len === 0) continue;
    n++;
    if (len > HEAP_NAME_MAX) {
      out.push([`name entry ${e}`, `corrupt (length ${len})`]);
      continue;
    }
    const label = decoder.decode(names.slice(e * HEAP_NAME_BYTES + 16, e * HEAP_NAME_BYTES + 16 + len));
    const k = w.getUint32(base + 4, true);
    const payload = w.getUint32(base + 8, true);
    const length = w.getUint32(base + 12, true);
    out.push([
      `name ${label}`,
      `offset ${byteOffset + payload}, ${length} bytes${k ? `, ${kindName(k) ?? `kind ${k}`}` : ""}`,
    ]);
  }
  out.push(["names", `${n} of ${nameCount}`]);
  return out;
}
