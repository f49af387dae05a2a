/**
 * Mempool: `count` fixed-size blocks in shared memory that any number of processes (Deno, Bun,
 * Node, or any language following docs/LAYOUT.md) get and put concurrently, tolerant of processes
 * that die (SIGKILL) at any instruction.
 *
 * Design. The free structure is one array of 32-bit state words, one per block: FREE (0) or the
 * tag of the participant holding it. A get claims a FREE word with one CAS (FREE -> tag); a put
 * releases it with one CAS (tag -> FREE). There is no second structure (no free list, no ring, no
 * counter) that a death between two steps could leave inconsistent: at every instant each block is
 * either FREE or recorded under exactly one holder, so a dead holder's blocks are found and
 * returned by `reclaim()` with a CAS each (a block is never returned twice), and a double put is
 * a failed CAS. Each process keeps a private cursor (the last block it put, or the one after the
 * last it got), so get+put pairs touch one word each; a get falls back to a linear scan (cache-
 * friendly, 16 words a line) when the cursor's block is taken. Worst case a get is O(count): the
 * price of a free structure with no multi-step transactions (see docs/layout/mempool.md).
 *
 * Holders. A process claims a participant slot on its first get: a 64-bit identity word
 * `pid | (startTime mod 2^32) << 32` set with one CAS (0 -> identity), then bumps the slot's
 * generation. Its tag is `HELD | gen << 8 | slot`. A reclaimer returns the blocks of a slot whose
 * identity is dead (or is a recycled pid: the start time differs), then frees the slot with a CAS
 * on the identity. The generation in the tag keeps a slow reclaimer from ever freeing the blocks
 * of the slot's next tenant.
 *
 * Byte layout (little-endian; the object starts at a 64-byte aligned byteOffset of a segment;
 * offsets are from the object's start):
 *
 * | off   | size     | field         | writer        | reader    | note                                       |
 * |-------|----------|---------------|---------------|-----------|--------------------------------------------|
 * | 0     | 64       | common header | init          | open      | src/layout.ts, kind 2 (mempool)            |
 * | 64    | 4        | count         | init          | open      | number of blocks, 1..2^28                  |
 * | 68    | 4        | blockSize     | init          | open      | bytes of a block, 1..2^31                  |
 * | 72    | 4        | blockStride   | init          | open      | alignUp(blockSize, 64)                     |
 * | 76    | 4        | maxProcesses  | init          | open      | participant slots P, 1..256                |
 * | 80    | 8        | slotsOffset   | init          | open      | u64, = 192                                 |
 * | 88    | 8        | statesOffset  | init          | open      | u64, = alignUp(192 + 16 P, 64)             |
 * | 96    | 8        | dataOffset    | init          | open      | u64, = alignUp(statesOffset + 4 count, 64) |
 * | 104   | 24       | reserved      | -             | -         | zero                                       |
 * | 128   | 4        | waiters       | get (parking) | put       | i32: getters parked now (all processes)    |
 * | 132   | 4        | wakeSeq       | put, reclaim  | get       | u32 futex word, bumped only if waiters > 0 |
 * | 136   | 56       | reserved      | -             | -         | zero                                       |
 * | 192   | 16 P     | slots[P]      | see below     | reclaim   | participant table                          |
 * | S     | 4 count  | states[count] | get/put/recl. | all       | 0 FREE, else a holder tag                  |
 * | D     | stride*c | blocks        | holders       | holders   | block i at D + i * blockStride (64-aligned)|
 *
 * byteLength = D + blockStride * count; headerSize (common header) = 192.
 *
 * Participant slot (16 bytes at 192 + 16 s):
 *
 * | off | size | field    | writer                  | note                                          |
 * |-----|------|----------|-------------------------|-----------------------------------------------|
 * | 0   | 8    | identity | claimant (CAS 0->id), reclaimer/closer (CAS id->0) | pid | startLo << 32; 0 free |
 * | 8   | 4    | gen      | claimant (add 1 after claiming) | tenure number, low 22 bits go in tags |
 * | 12  | 4    | parked   | owner (add/sub), reclaimer (exchange 0) | owner's getters parked now     |
 *
 * State word: 0 = FREE; HELD (bit 30) | (gen & 0x3fffff) << 8 | slot = held by that tenure of that
 * slot. Any other value is corrupt: reclaim() frees it, put() reports EBADHDR.
 *
 * Invariants (checked by {@linkcode Mempool.validate} on a quiescent pool, and by open() for the
 * header): I1 every state word is FREE or a held tag with slot < P; I2 a held tag's slot has a
 * non-zero identity; I3 waiters >= 0 and equals the sum of the slots' parked counts; I4 header
 * fields are exactly what (count, blockSize, P) imply and byteLength fits the segment.
 *
 * Crash guarantee: a process SIGKILLed anywhere inside get, put, reclaim or the slot claim leaves
 * every block FREE or held under a tag; after it is dead, reclaim() (which get() also runs before
 * it parks) returns its blocks, so `available === count` once the live holders have put theirs.
 *
 * @module
 */
import { ERRNO, native, nowNs, PID, processAlive, START_TIME, sys } from "./sys.ts";
import { checkKeys, ShmError } from "./errors.ts";
import { alignUp, OBJECT_ALIGN, publishReady, readHeader, writeHeader } from "./layout.ts";
import { checkHandle, registerKind } from "./handle.ts";
import { futexWait, futexWake, readFlag, timeoutError, timeoutOf, waitAsync, type WaitOptions } from "./wait.ts";
import { MAX_VIEW_BYTES } from "./mapping.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { createWhat, placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { armedFault, killSelf } from "./fault.ts";

// ---------------------------------------------------------------------------------------------
// Layout constants

/** Offsets (bytes from the object start) of the mempool header fields. */
export const MEMPOOL = {
  count: 64,
  blockSize: 68,
  blockStride: 72,
  maxProcesses: 76,
  slotsOffset: 80,
  statesOffset: 88,
  dataOffset: 96,
  waiters: 128,
  wakeSeq: 132,
  /** Bytes before the slot table; the common header's headerSize. */
  headerSize: 192,
  /** Bytes per participant slot. */
  slotSize: 16,
} as const;

/** State word of a free block. */
export const FREE = 0;
/** Bit set in every holder tag. */
export const HELD = 0x40000000;
/** Mask of the generation bits kept in a tag (after shifting right by 8). */
export const GEN_MASK = 0x3fffff;
/** Largest block count. */
export const MAX_COUNT = 2 ** 28;
/** Largest block size in bytes. */
export const MAX_BLOCK_SIZE = 2 ** 31;
/** Largest number of participant slots (a slot number takes 8 bits of a tag). */
export const MAX_PROCESSES = 256;
/** Participant slots when `maxProcesses` is not given. */
export const DEFAULT_MAX_PROCESSES = 64;

const W_WAITERS = MEMPOOL.waiters / 4;
const W_SEQ = MEMPOOL.wakeSeq / 4;
const PARK_SLICE_MS = 50; // parked getters re-check and reclaim at least this often
const SPIN_NS = 20_000; // get() spins this long on an empty pool before parking

// ---------------------------------------------------------------------------------------------
// Fault injection (tests, src/fault.ts): "mempool.get.after_claim:N" SIGKILLs this process at the
// Nth time that point is reached. Read once at load; `FAULTS` is false otherwise, so every hook is
// one never-taken branch.

/** Named fault points, in the order their numbers are used internally. */
export const FAULT_POINTS = [
  "mempool.get.before_claim",
  "mempool.get.after_claim",
  "mempool.get.parked",
  "mempool.put.before_release",
  "mempool.put.after_release",
  "mempool.claim.after_identity",
  "mempool.reclaim.mid_sweep",
  "mempool.reclaim.before_free_slot",
] as const;
const F_GET_BEFORE = 0, F_GET_AFTER = 1, F_GET_PARKED = 2, F_PUT_BEFORE = 3, F_PUT_AFTER = 4;
const F_CLAIM = 5, F_RECLAIM_MID = 6, F_RECLAIM_FREE = 7;

let faultPoint = -1;
let faultLeft = 0;
function readFaultSpec(): boolean {
  const armed = armedFault("mempool.");
  if (!armed) return false;
  const p = (FAULT_POINTS as readonly string[]).indexOf(armed.point);
  if (p < 0) return false;
  faultPoint = p;
  faultLeft = armed.count;
  return true;
}
const FAULTS: boolean = readFaultSpec();
function fault(point: number): void {
  if (point === faultPoint && --faultLeft === 0) killSelf();
}

// ---------------------------------------------------------------------------------------------
// Public types

/** A block of a {@linkcode Mempool}: its index and a zero-copy view of its `blockSize` bytes. */
export interface Block {
  /** The block number, 0..count-1: what you pass to another process (then `pool.block(index)`). */
  readonly index: number;
  /** The block's bytes (length === blockSize), a view into shared memory. */
  readonly bytes: Uint8Array;
}

/** The keys of MempoolCreateOptions (create, init, byteLength). */
const POOL_KEYS = ["count", "blockSize", "maxProcesses", "fileMode"] as const;

/** Options of {@linkcode Mempool.create}, {@linkcode Mempool.byteLength} and {@linkcode Mempool.init}. */
export interface MempoolOptions {
  /** Number of blocks (1..2^28). */
  count: number;
  /** Bytes per block (1..2^31); each block starts 64-byte aligned. */
  blockSize: number;
  /** Participant slots: how many processes may get blocks at once (1..256, default 64). */
  maxProcesses?: number;
}

/** Options of {@linkcode Mempool.create}. */
export interface MempoolCreateOptions extends MempoolOptions {
  /** File mode of the new segment (default 0o600). */
  fileMode?: number;
}

/** The handle of a Mempool: JSON-safe, reopened by {@linkcode Mempool.attach}. */
export interface MempoolHandle {
  /** Always `"shmkit.mempool"`. */
  readonly kind: "shmkit.mempool";
  /** Handle format version. */
  readonly version: number;
  /** The segment name, or null for anonymous memory (then `segment` reopens it). */
  readonly name: string | null;
  /** Where the pool starts in its segment. */
  readonly byteOffset: number;
  /** The segment's own handle. */
  readonly segment: SharedMemoryHandle;
}

interface Geometry {
  count: number;
  blockSize: number;
  stride: number;
  procs: number;
  statesOffset: number;
  dataOffset: number;
  byteLength: number;
}

function einval(what: string, why: string): ShmError {
  return new ShmError("EINVAL", `${what}: ${why} (EINVAL)`, { errno: ERRNO.EINVAL });
}

function geometry(options: MempoolOptions, what: string): Geometry {
  if (typeof options !== "object" || options === null) throw new TypeError(`${what}: options must be an object`);
  checkKeys(options, POOL_KEYS, what);
  const { count, blockSize } = options;
  const procs = options.maxProcesses ?? DEFAULT_MAX_PROCESSES;
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    throw einval(what, `count must be an integer in 1..${MAX_COUNT}, got ${String(count)}`);
  }
  if (typeof blockSize !== "number" || !Number.isInteger(blockSize) || blockSize < 1 || blockSize > MAX_BLOCK_SIZE) {
    throw einval(what, `blockSize must be an integer in 1..${MAX_BLOCK_SIZE}, got ${String(blockSize)}`);
  }
  if (typeof procs !== "number" || !Number.isInteger(procs) || procs < 1 || procs > MAX_PROCESSES) {
    throw einval(what, `maxProcesses must be an integer in 1..${MAX_PROCESSES}, got ${String(procs)}`);
  }
  const stride = alignUp(blockSize, OBJECT_ALIGN);
  const statesOffset = alignUp(MEMPOOL.headerSize + MEMPOOL.slotSize * procs, OBJECT_ALIGN);
  const dataOffset = alignUp(statesOffset + 4 * count, OBJECT_ALIGN);
  const byteLength = dataOffset + stride * count; // < 2^28 * 2^31 + small: exact in a double
  return { count, blockSize, stride, procs, statesOffset, dataOffset, byteLength };
}

/** Linux's PID_MAX_LIMIT: no pid is larger. */
const PID_LIMIT = 0x400000;

/** Start time of `pid` (ticks since boot), or -errno. */
function startTimeOf(pid: number): number {
  return sys.shmkit_proc_start_time(pid);
}

/** True unless the identity's process is certainly gone (dead, zombie, or its pid was recycled). */
function identityAlive(pid: number, startLo: number): boolean {
  // A pid above Linux's PID_MAX_LIMIT (2^22) names no process (a corrupt identity word).
  if (pid <= 0 || pid > PID_LIMIT) return false;
  const st = startTimeOf(pid);
  if (st === -ERRNO.ESRCH) return false; // no such process
  if (st < 0) return true; // cannot tell (e.g. /proc hidden): never rob
  if (st % 2 ** 32 !== startLo) return false; // the pid now names another process
  return processAlive(pid, st); // false for a zombie
}

const MY_IDENTITY = BigInt(PID) | (BigInt(START_TIME >= 0 ? START_TIME % 2 ** 32 : 0) << 32n);

// ---------------------------------------------------------------------------------------------

/**
 * A pool of `count` fixed-size blocks in shared memory (DPDK rte_mempool, pyshm Mempool).
 *
 * Role contract: any number of processes, of any runtime, may call get/tryGet/getAsync/put/
 * reclaim on the same pool at the same time; a block may be got in one process and put in
 * another (send its `index`, view it there with {@linkcode Mempool.block}). A block stays
 * recorded under the process that got it until someone puts it: if that process dies first,
 * `reclaim()` returns the block, so a process handing blocks to others should outlive their use
 * (or the receiver must tolerate losing them). Each Mempool object is used by one JS thread.
 * A process may hold blocks of up to `maxProcesses` Mempool objects of one pool at a time.
 *
 * @example
 * ```ts
 * import { Mempool } from "./mod.ts";
 * using pool = Mempool.create(`doc-pool-${Date.now()}`, { count: 8, blockSize: 256 });
 * const b = pool.get();
 * b.bytes.set([1, 2, 3]);
 * // another process: Mempool.open(name).block(b.index).bytes[0] === 1
 * pool.put(b);
 * console.assert(pool.available === 8);
 * pool.unlink();
 * ```
 */
export class Mempool implements Disposable {
  /** Number of blocks. */
  readonly count: number;
  /** Bytes per block (`block.bytes.length`). */
  readonly blockSize: number;
  /** Participant slots (processes that may hold blocks at once). */
  readonly maxProcesses: number;
  /** Where the pool starts in its segment. */
  readonly byteOffset: number;
  /** Total bytes of the pool in its segment. */
  readonly byteLength: number;

  #seg: SharedMemory;
  #ownsSegment: boolean;
  #buf: ArrayBuffer;
  #i32: Int32Array; // the whole object as words
  #states: Int32Array;
  #slots64: BigInt64Array;
  #stride: number;
  #dataOffset: number;
  #blocks: (Block | undefined)[];
  #what: string;
  #closed = false;
  #slot = -1; // our participant slot, -1 until the first get
  #tag = 0; // our holder tag, 0 until the first get
  #cursor = 0; // where the next get looks first
  #seqOff: number; // byte offset of wakeSeq in the mapping
  #parkedAsync = 0; // getAsync parkers of this object counted in waiters now (0 or 1)
  // Queued getAsync callers (FIFO) and the state of their parker (see getAsync).
  #q: AsyncGetter[] = [];
  #qHead = 0;
  #qLive = 0;
  #parking = false;
  #parkWake: AbortController | undefined;

  private constructor(seg: SharedMemory, off: number, g: Geometry, buf: ArrayBuffer, owns: boolean, what: string) {
    this.#seg = seg;
    this.#ownsSegment = owns;
    this.#buf = buf;
    this.byteOffset = off;
    this.byteLength = g.byteLength;
    this.count = g.count;
    this.blockSize = g.blockSize;
    this.maxProcesses = g.procs;
    this.#stride = g.stride;
    this.#dataOffset = g.dataOffset;
    this.#i32 = new Int32Array(buf, 0, MEMPOOL.headerSize / 4);
    this.#slots64 = new BigInt64Array(buf, MEMPOOL.headerSize, 2 * g.procs);
    this.#states = new Int32Array(buf, g.statesOffset, g.count);
    this.#blocks = new Array(g.count);
    this.#what = what;
    this.#seqOff = off + MEMPOOL.wakeSeq;
    // Slot words (gen, parked) as an Int32Array over the slot table.
    this.#slotI32 = new Int32Array(buf, MEMPOOL.headerSize, 4 * g.procs);
  }
  #slotI32: Int32Array;

  // -------------------------------------------------------------------------------------------
  // Placement

  /**
   * Bytes a pool with these options occupies (header, slot table, state words, blocks).
   *
   * @param options count, blockSize, maxProcesses
   * @returns the byte length, a multiple of 64
   * @throws {ShmError} EINVAL for an impossible count, blockSize or maxProcesses
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * console.assert(Mempool.byteLength({ count: 4, blockSize: 100 }) % 64 === 0);
   * ```
   */
  static byteLength(options: MempoolOptions): number {
    return geometry(options, "Cannot size mempool").byteLength;
  }

  /**
   * Formats a pool at `byteOffset` of `segment` (every block free) and attaches to it. The
   * segment stays owned by the caller. The pool's memory is prefaulted (MADV_POPULATE_WRITE).
   *
   * @param segment the segment to place the pool in
   * @param byteOffset a multiple of 64 with room for {@linkcode Mempool.byteLength} bytes
   * @param options count, blockSize, maxProcesses
   * @returns the pool
   * @throws {ShmError} EINVAL for bad options, a misaligned offset or a segment too small
   * @example
   * ```ts
   * import { Mempool, SharedMemory } from "./mod.ts";
   * const o = { count: 4, blockSize: 64 };
   * using seg = SharedMemory.create(null, 4096 + Mempool.byteLength(o));
   * const pool = Mempool.init(seg, 4096, o);
   * console.assert(Mempool.at(seg, 4096).count === 4);
   * pool.close();
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: MempoolOptions): Mempool {
    const what = `Cannot create mempool in ${describeSeg(segment)}`;
    const g = geometry(options, what);
    checkPlacement(segment, byteOffset, g.byteLength, what);
    const buf = segment.mapping.view(byteOffset, g.byteLength, what);
    // Zero the metadata: header, counters, slots and every state word (FREE).
    new Uint8Array(buf, 0, g.dataOffset).fill(0);
    writeHeader(buf, 0, "mempool", MEMPOOL.headerSize, g.byteLength);
    const dv = new DataView(buf);
    dv.setUint32(MEMPOOL.count, g.count, true);
    dv.setUint32(MEMPOOL.blockSize, g.blockSize, true);
    dv.setUint32(MEMPOOL.blockStride, g.stride, true);
    dv.setUint32(MEMPOOL.maxProcesses, g.procs, true);
    dv.setBigUint64(MEMPOOL.slotsOffset, BigInt(MEMPOOL.headerSize), true);
    dv.setBigUint64(MEMPOOL.statesOffset, BigInt(g.statesOffset), true);
    dv.setBigUint64(MEMPOOL.dataOffset, BigInt(g.dataOffset), true);
    // Prefault every page so first use is not page-fault bound (best effort: an old kernel
    // without MADV_POPULATE_WRITE is handled natively by touching each page).
    sys.shmkit_madvise(segment.mapping.id, byteOffset, g.byteLength, 1);
    publishReady(buf, 0); // P1: release; pairs with readHeader's acquire of state in at()
    return new Mempool(segment, byteOffset, g, buf, false, mempoolWhat(segment));
  }

  /**
   * Attaches to the pool at `byteOffset` of `segment`, validating its header.
   *
   * @param segment the segment holding the pool (stays owned by the caller)
   * @param byteOffset where {@linkcode Mempool.init} placed it
   * @returns the pool
   * @throws {ShmError} EBADHDR if no valid mempool is there, EINVAL for a misaligned offset
   * @example
   * ```ts
   * import { Mempool, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, Mempool.byteLength({ count: 2, blockSize: 8 }));
   * Mempool.init(seg, 0, { count: 2, blockSize: 8 });
   * using again = Mempool.at(seg, 0);
   * console.assert(again.blockSize === 8);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): Mempool {
    return Mempool.#at(segment, byteOffset, false);
  }

  static #at(segment: SharedMemory, off: number, owns: boolean): Mempool {
    const what = `Cannot open ${mempoolWhat(segment)}`;
    if (typeof off !== "number" || !Number.isSafeInteger(off) || off < 0 || off % OBJECT_ALIGN !== 0) {
      throw einval(what, `byteOffset ${String(off)} must be a non-negative multiple of ${OBJECT_ALIGN}`);
    }
    const bad = (why: string): ShmError => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    if (off + MEMPOOL.headerSize > segment.size) throw bad(`the segment is too small for a mempool at ${off}`);
    const win = segment.mapping.view(off, Math.min(segment.size - off, MAX_VIEW_BYTES), what);
    const h = readHeader(win, 0, "mempool", what, undefined, undefined, MEMPOOL.headerSize);
    if (h.headerSize !== MEMPOOL.headerSize) throw bad(`header size ${h.headerSize}, expected ${MEMPOOL.headerSize}`);
    const dv = new DataView(win, 0, MEMPOOL.headerSize);
    const count = dv.getUint32(MEMPOOL.count, true);
    const blockSize = dv.getUint32(MEMPOOL.blockSize, true);
    const maxProcesses = dv.getUint32(MEMPOOL.maxProcesses, true);
    let g: Geometry;
    try {
      g = geometry({ count, blockSize, maxProcesses }, what);
    } catch (e) {
      throw bad(`impossible sizes (${(e as Error).message})`);
    }
    const stride = dv.getUint32(MEMPOOL.blockStride, true);
    const slots = dv.getBigUint64(MEMPOOL.slotsOffset, true);
    const states = dv.getBigUint64(MEMPOOL.statesOffset, true);
    const data = dv.getBigUint64(MEMPOOL.dataOffset, true);
    if (
      stride !== g.stride || slots !== BigInt(MEMPOOL.headerSize) || states !== BigInt(g.statesOffset) ||
      data !== BigInt(g.dataOffset)
    ) {
      throw bad("its offsets do not match its count, blockSize and maxProcesses");
    }
    if (h.byteLength !== g.byteLength) {
      throw bad(`byteLength ${h.byteLength} does not match its geometry (${g.byteLength})`);
    }
    if (off + g.byteLength > segment.size) {
      throw bad(`it needs ${g.byteLength} bytes at ${off}, the segment has ${segment.size}`);
    }
    const buf = segment.mapping.view(off, g.byteLength, what);
    native.detach(win);
    return new Mempool(segment, off, g, buf, owns, mempoolWhat(segment));
  }

  /**
   * Creates a named segment holding a new pool (exclusive: EEXIST if the name is taken).
   *
   * @param name the segment name ("pool" and "/pool" are the same)
   * @param options count, blockSize, maxProcesses, fileMode
   * @returns the pool, which owns its segment
   * @throws {ShmError} EEXIST, EINVAL for bad options or name, ENOSPC
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-create-${Date.now()}`, { count: 16, blockSize: 1024 });
   * console.assert(pool.available === 16);
   * pool.unlink();
   * ```
   */
  static create(name: string | null, options: MempoolCreateOptions): Mempool {
    const g = geometry(options, createWhat("mempool", name));
    const seg = renamed(
      () => SharedMemory.create(name, g.byteLength, options.fileMode === undefined ? {} : { mode: options.fileMode }),
      "Cannot create mempool",
      name,
    );
    return placeOrRelease(seg, true, () => {
      const pool = Mempool.init(seg, 0, options);
      pool.#ownsSegment = true;
      return pool;
    });
  }

  /**
   * Opens the pool in the named segment (at offset 0).
   *
   * @param name the segment name
   * @returns the pool, which owns its segment mapping
   * @throws {ShmError} ENOENT if there is no such segment, EBADHDR if it holds no valid mempool
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * const name = `doc-open-${Date.now()}`;
   * using a = Mempool.create(name, { count: 2, blockSize: 32 });
   * using b = Mempool.open(name);
   * console.assert(b.count === 2);
   * a.unlink();
   * ```
   */
  static open(name: string): Mempool {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open mempool", name);
    return placeOrRelease(seg, false, () => Mempool.#at(seg, 0, true));
  }

  /**
   * Reopens a pool from its {@linkcode Mempool.handle} (in any process).
   *
   * @param handle what `handle()` returned, possibly through JSON
   * @returns the pool, which owns its segment mapping
   * @throws {ShmError} EINVAL for a bad handle, ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using a = Mempool.create(`doc-attach-${Date.now()}`, { count: 2, blockSize: 32 });
   * using b = Mempool.attach(JSON.parse(JSON.stringify(a.handle())));
   * console.assert(b.count === 2);
   * a.unlink();
   * ```
   */
  static attach(handle: MempoolHandle): Mempool {
    checkHandle(handle, "shmkit.mempool");
    const h = handle as MempoolHandle;
    if (typeof h.byteOffset !== "number" || typeof h.segment !== "object" || h.segment === null) {
      throw new ShmError("EINVAL", "Cannot attach shmkit.mempool: the handle lacks byteOffset or segment (EINVAL)");
    }
    const seg = SharedMemory.attach(h.segment);
    return placeOrRelease(seg, false, () => {
      return Mempool.#at(seg, h.byteOffset, true);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Properties

  /**
   * Free blocks now (a snapshot; O(count): it counts FREE state words, so it is exact whatever
   * crashed).
   */
  get available(): number {
    this.#live("read");
    const st = this.#states;
    let n = 0;
    for (let i = 0; i < st.length; i++) if (st[i] === FREE) n++; // relaxed snapshot reads
    return n;
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------
  // Get and put

  /**
   * Takes a free block without waiting.
   *
   * @returns a block, or undefined when none is free
   * @throws {ShmError} ECLOSED after close(), EBUSY if every participant slot is held by live processes
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-tryget-${Date.now()}`, { count: 1, blockSize: 8 });
   * const b = pool.tryGet()!;
   * console.assert(pool.tryGet() === undefined);
   * pool.put(b);
   * pool.unlink();
   * ```
   */
  tryGet(): Block | undefined {
    if (this.#closed || this.#seg.closed) throw this.#closedError("get a block from");
    const tag = this.#tag;
    if (tag !== 0) {
      // Fast path: the cursor's word (the block this process put last, or the one after the
      // block it got last), so get+put pairs touch one word.
      const st = this.#states;
      const i = this.#cursor;
      // G1: relaxed peek, then claim with a CAS (seq_cst; acquire of the block's bytes the last
      // putter wrote); pairs with P1 in put and R1 in reclaim.
      if (st[i] === FREE) {
        if (FAULTS) fault(F_GET_BEFORE);
        if (Atomics.compareExchange(st, i, FREE, tag) === FREE) {
          if (FAULTS) fault(F_GET_AFTER);
          this.#cursor = i + 1 === st.length ? 0 : i + 1;
          const b = this.#blocks[i];
          return b !== undefined ? b : this.#makeBlock(i);
        }
      }
    }
    return this.#scan();
  }

  /** tryGet's slow path: claims the slot on first use, then scans every word from the cursor. */
  #scan(): Block | undefined {
    let tag = this.#tag;
    if (tag === 0) tag = this.#claimSlot();
    const st = this.#states;
    const n = st.length;
    let i = this.#cursor;
    for (let k = 0; k < n; k++) {
      // G1 (as in tryGet)
      if (st[i] === FREE) {
        if (FAULTS) fault(F_GET_BEFORE);
        if (Atomics.compareExchange(st, i, FREE, tag) === FREE) {
          if (FAULTS) fault(F_GET_AFTER);
          this.#cursor = i + 1 === n ? 0 : i + 1;
          return this.#blocks[i] ?? this.#makeBlock(i);
        }
      }
      i = i + 1 === n ? 0 : i + 1;
    }
    return undefined;
  }

  /**
   * Takes a free block, waiting for one if none is free: spins briefly, runs
   * {@linkcode reclaim}, then parks on a futex until a put (re-checking and reclaiming every 50 ms).
   * Blocks the calling thread.
   *
   * @param options timeout in ms (default Infinity)
   * @returns a block
   * @throws {ShmError} ETIMEDOUT when the timeout passes, ECLOSED, EBUSY (no participant slot)
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-get-${Date.now()}`, { count: 1, blockSize: 8 });
   * const b = pool.get({ timeout: 1000 });
   * pool.put(b.index);
   * pool.unlink();
   * ```
   */
  get(options?: WaitOptions): Block {
    const b = this.tryGet();
    if (b !== undefined) return b;
    return this.#getSlow(timeoutOf(options, `Cannot get a block from ${this.#what}`));
  }

  #getSlow(ms: number): Block {
    const start = nowNs();
    // Spin briefly: a block put within a few microseconds is taken without a syscall.
    while (nowNs() - start < SPIN_NS) {
      const b = this.tryGet();
      if (b !== undefined) return b;
    }
    const deadline = ms === Infinity ? Infinity : start / 1e6 + ms;
    const i32 = this.#i32;
    const parkedWord = 4 * this.#slot + 3;
    for (;;) {
      // W1: read the wake sequence before the last re-check (seq_cst); pairs with P2 in put.
      const seen = Atomics.load(i32, W_SEQ);
      // W2: announce the waiter (seq_cst add) before re-checking; pairs with P2's load of waiters.
      Atomics.add(this.#slotI32, parkedWord, 1);
      Atomics.add(i32, W_WAITERS, 1);
      try {
        let b = this.tryGet();
        if (b === undefined && this.reclaim() > 0) b = this.tryGet();
        if (b !== undefined) return b;
        const left = deadline - nowNs() / 1e6;
        if (left <= 0) throw timeoutError(`Cannot get a block from ${this.#what}`, ms);
        if (FAULTS) fault(F_GET_PARKED);
        futexWait(this.#seg.mapping, this.#seqOff, seen, Math.min(left, PARK_SLICE_MS));
      } finally {
        Atomics.sub(i32, W_WAITERS, 1);
        Atomics.sub(this.#slotI32, parkedWord, 1);
      }
      if (this.#closed || this.#seg.closed) throw this.#closedError("get a block from");
    }
  }

  /**
   * Takes a free block, waiting without blocking the event loop (the futex wait runs off-thread).
   *
   * @param options timeout in ms (default Infinity), signal to abort
   * @returns a promise of a block
   * @throws {ShmError} rejects with ETIMEDOUT, ECLOSED; rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-async-${Date.now()}`, { count: 1, blockSize: 8 });
   * const a = pool.tryGet()!;
   * const later = pool.getAsync({ timeout: 5000 });
   * pool.put(a);
   * pool.put(await later);
   * pool.unlink();
   * ```
   */
  async getAsync(options?: WaitOptions): Promise<Block> {
    const what = `Cannot get a block from ${this.#what}`;
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const first = this.tryGet();
    if (first !== undefined) return first;
    if (ms === 0) throw timeoutError(what, ms);
    // Queue locally (FIFO); one parker per Mempool object waits on wakeSeq for all of them, so a
    // put wakes one native wait per process and as many getters go as there are blocks.
    return await new Promise<Block>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w: AsyncGetter = {
        settled: false,
        resolve: (b) => {
          finish();
          resolve(b);
        },
        fail: (e) => {
          finish();
          reject(e);
        },
      };
      const onAbort = (): void => {
        if (w.settled) return;
        w.fail(signal!.reason);
        this.#leave();
      };
      const finish = (): void => {
        w.settled = true;
        this.#qLive--;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      if (ms !== Infinity) {
        timer = setTimeout(() => {
          if (w.settled) return;
          w.fail(timeoutError(what, ms));
          this.#leave();
        }, ms);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#q.push(w);
      this.#qLive++;
      if (!this.#parking) void this.#park();
    });
  }

  /** A getter left early (timeout, abort): with nobody left, end the parker's wait now. */
  #leave(): void {
    if (this.#qLive === 0) this.#parkWake?.abort();
  }

  /** Hands free blocks to the queued getters in order; false when a getter is still waiting. */
  #serve(): void {
    const q = this.#q;
    while (this.#qHead < q.length) {
      const w = q[this.#qHead];
      if (!w.settled) {
        const b = this.tryGet();
        if (b === undefined) return;
        w.resolve(b);
      }
      q[this.#qHead++] = undefined as unknown as AsyncGetter;
    }
    q.length = 0;
    this.#qHead = 0;
  }

  async #park(): Promise<void> {
    this.#parking = true;
    const i32 = this.#i32;
    try {
      for (;;) {
        this.#serve();
        if (this.#qLive === 0) return;
        if (this.#closed || this.#seg.closed) throw this.#closedError("get a block from");
        const parkedWord = 4 * this.#slot + 3;
        const seen = Atomics.load(i32, W_SEQ); // W1 (see #getSlow)
        Atomics.add(this.#slotI32, parkedWord, 1); // W2
        Atomics.add(i32, W_WAITERS, 1);
        this.#parkedAsync++;
        try {
          this.#serve();
          if (this.#qLive === 0) return;
          if (this.reclaim() > 0) this.#serve();
          if (this.#qLive === 0) return;
          if (FAULTS) fault(F_GET_PARKED);
          const wake = new AbortController();
          this.#parkWake = wake;
          try {
            await waitAsync(this.#seg.mapping, this.#seqOff, seen, PARK_SLICE_MS, wake.signal);
          } catch { /* ended early: every getter left, or close() */ }
          this.#parkWake = undefined;
        } finally {
          if (!this.#closed && !this.#seg.closed) { // close() already withdrew this wait
            this.#parkedAsync--;
            Atomics.sub(i32, W_WAITERS, 1);
            Atomics.sub(this.#slotI32, parkedWord, 1);
          }
        }
      }
    } catch (e) {
      this.#failAll(e); // EBADHDR, EBUSY or ECLOSED: every queued getter gets it
    } finally {
      this.#parking = false;
    }
  }

  #failAll(e: unknown): void {
    const q = this.#q;
    for (let i = this.#qHead; i < q.length; i++) if (!q[i].settled) q[i].fail(e);
    q.length = 0;
    this.#qHead = 0;
    this.#parkWake?.abort();
  }

  /**
   * Returns a block to the pool. Any process may put a block any process got.
   *
   * @param block a Block of this pool object, or a block index
   * @throws {ShmError} EINVAL (and nothing changes) for a block of another pool object, an
   * out-of-range or non-integer index, or a block that is already free; EBADHDR for a corrupt
   * state word; ECLOSED
   * @example
   * ```ts
   * import { Mempool, ShmError } from "./mod.ts";
   * using pool = Mempool.create(`doc-put-${Date.now()}`, { count: 2, blockSize: 8 });
   * const b = pool.get();
   * pool.put(b);
   * try { pool.put(b); } catch (e) { console.assert((e as ShmError).code === "EINVAL"); }
   * pool.unlink();
   * ```
   */
  put(block: Block | number): void {
    if (this.#closed || this.#seg.closed) throw this.#closedError("put a block into");
    // The index is validated, then narrowed with `| 0` so it stays an int32 for the JIT whatever
    // callers passed before: in JavaScriptCore a NaN or fraction flowing into `i` makes the
    // Atomics call below take its generic path (measured 5x slower for a get+put pair in Bun).
    let i: number;
    if (typeof block === "number") {
      if (!Number.isInteger(block) || block < 0 || block >= this.count) throw this.#badIndex("put", block);
      i = block | 0;
    } else {
      const x = typeof block === "object" && block !== null ? block.index : -1;
      if (!Number.isInteger(x) || x < 0 || x >= this.count || this.#blocks[x] !== block) {
        throw einval(`Cannot put a block into ${this.#what}`, "the block does not belong to this mempool");
      }
      i = x | 0;
    }
    const st = this.#states;
    const mine = this.#tag;
    if (FAULTS) fault(F_PUT_BEFORE);
    // P1: release with a CAS (seq_cst: our writes to the block happen before the next getter's
    // G1); the fast path assumes we hold it, #putOther handles blocks got elsewhere.
    if (mine === 0 || Atomics.compareExchange(st, i, mine, FREE) !== mine) this.#putOther(i);
    if (FAULTS) fault(F_PUT_AFTER);
    this.#cursor = i;
    // P2: seq_cst load of waiters after the seq_cst release CAS; pairs with W2 in get (Dekker:
    // either we see the waiter, or its re-check sees the free block).
    // Getters queued in this object take the block now, without a round trip through the futex.
    if (this.#qLive !== 0) this.#serve();
    if (readFlag(this.#i32, W_WAITERS) !== 0) this.#wake();
  }

  /** P1 for a block not held under our tag: CAS whatever holder tag it carries -> FREE. */
  #putOther(i: number): void {
    const st = this.#states;
    let cur = Atomics.load(st, i);
    for (let step = 0;; step++) {
      if (step === 64) {
        // Every CAS failed because the word kept changing: only a hostile writer does that to one
        // block's word (a holder puts it once).
        throw new ShmError(
          "EBADHDR",
          `Cannot put block ${i} into ${this.#what}: its state word keeps changing (EBADHDR)`,
        );
      }
      if (cur === FREE) throw einval(`Cannot put block ${i} into ${this.#what}`, "it is already free");
      if ((cur & ~0x3fffffff) !== HELD || (cur & 0xff) >= this.maxProcesses) {
        throw new ShmError(
          "EBADHDR",
          `Cannot put block ${i} into ${this.#what}: its state word 0x${(cur >>> 0).toString(16)} is corrupt (EBADHDR)`,
        );
      }
      // P1 (seq_cst CAS from the holder's tag, as above)
      const prev = Atomics.compareExchange(st, i, cur, FREE);
      if (prev === cur) return;
      cur = prev;
    }
  }

  #wake(): void {
    Atomics.add(this.#i32, W_SEQ, 1); // P3: bump the futex word (seq_cst); pairs with W1
    futexWake(this.#seg.mapping, this.#seqOff);
  }

  /**
   * The block with this index (a zero-copy view), e.g. one whose index arrived from another
   * process. It does not change who holds the block.
   *
   * @param index 0..count-1
   * @returns the block
   * @throws {ShmError} EINVAL for an out-of-range or non-integer index, ECLOSED
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-block-${Date.now()}`, { count: 2, blockSize: 8 });
   * const b = pool.get();
   * console.assert(pool.block(b.index) === b);
   * pool.put(b);
   * pool.unlink();
   * ```
   */
  block(index: number): Block {
    if (this.#closed || this.#seg.closed) throw this.#closedError("view a block of");
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= this.count) {
      throw this.#badIndex("view", index);
    }
    return this.#blocks[index] ?? this.#makeBlock(index);
  }

  #makeBlock(i: number): Block {
    const b = new PoolBlock(i, new Uint8Array(this.#buf, this.#dataOffset + i * this.#stride, this.blockSize));
    this.#blocks[i] = b;
    return b;
  }

  // -------------------------------------------------------------------------------------------
  // Recovery

  /**
   * Returns to the pool every block held by a process that has died (or whose pid now names
   * another process), frees those processes' participant slots, and frees state words that are
   * corrupt. Safe from any process at any time, concurrently with everything else: each block is
   * returned by one CAS (never twice), and live holders, even stopped ones, are never robbed.
   *
   * @returns the number of blocks returned
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-reclaim-${Date.now()}`, { count: 2, blockSize: 8 });
   * console.assert(pool.reclaim() === 0); // nobody died
   * pool.unlink();
   * ```
   */
  reclaim(): number {
    if (this.#closed || this.#seg.closed) throw this.#closedError("reclaim blocks of");
    const procs = this.maxProcesses;
    const slots = this.#slots64;
    // Dead tenures found: tag per slot (0 = none) and the identity to free the slot with.
    let deadTags: Int32Array | undefined;
    let deadIds: bigint[] | undefined;
    for (let s = 0; s < procs; s++) {
      // R0: identity (seq_cst load); pairs with the claim CAS C1 and the free CAS R3.
      const id = Atomics.load(slots, 2 * s);
      if (id === 0n || s === this.#slot) continue;
      const pid = Number(BigInt.asUintN(32, id));
      const startLo = Number(BigInt.asUintN(32, id >> 32n));
      if (identityAlive(pid, startLo)) continue;
      // Dead: its gen is final now (only the owner changes it). Read it, then confirm the slot
      // still names the same dead identity (else another reclaimer freed it; it may be re-used).
      const gen = Atomics.load(this.#slotI32, 4 * s + 2) & GEN_MASK;
      if (Atomics.load(slots, 2 * s) !== id) continue;
      deadTags ??= new Int32Array(procs);
      deadIds ??= new Array(procs);
      deadTags[s] = HELD | (gen << 8) | s;
      deadIds[s] = id;
    }
    const st = this.#states;
    let freed = 0;
    for (let i = 0; i < st.length; i++) {
      const w = st[i]; // relaxed peek; the CAS below decides
      if (w === FREE) continue;
      const slot = w & 0xff;
      const malformed = (w & ~0x3fffffff) !== HELD || slot >= procs;
      if (malformed || (deadTags !== undefined && deadTags[slot] === w)) {
        // R1: return the block (seq_cst CAS from exactly the dead tag); pairs with G1 and P1.
        if (Atomics.compareExchange(st, i, w, FREE) === w) {
          freed++;
          if (FAULTS) fault(F_RECLAIM_MID);
        }
      }
    }
    if (deadIds !== undefined) {
      for (let s = 0; s < procs; s++) {
        const id = deadIds[s];
        if (id === undefined) continue;
        // A gen that moved means the tenant bumped it after our read and before dying: its
        // blocks carry the new gen, so keep the slot for the next reclaim to sweep.
        if ((Atomics.load(this.#slotI32, 4 * s + 2) & GEN_MASK) !== ((deadTags![s] >>> 8) & GEN_MASK)) continue;
        if (Atomics.load(slots, 2 * s) !== id) continue;
        if (FAULTS) fault(F_RECLAIM_FREE);
        // R2: hold the slot under our own identity (seq_cst CAS dead id -> ours) while its parked
        // count is settled: claimants take free slots only and other reclaimers see a live holder,
        // so the count exchanged next is the dead tenant's alone (without this, another reclaimer
        // could free the slot and a new tenant park on it between the checks above and the
        // exchange, and its count would be taken: waiters -1 later).
        if (Atomics.compareExchange(slots, 2 * s, id, MY_IDENTITY) !== id) continue;
        const parked = Atomics.exchange(this.#slotI32, 4 * s + 3, 0);
        if (parked > 0) Atomics.sub(this.#i32, W_WAITERS, parked);
        // R3: free the slot (seq_cst CAS our id -> 0); pairs with C1 in #claimSlot.
        Atomics.compareExchange(slots, 2 * s, MY_IDENTITY, 0n);
      }
    }
    if (freed > 0 && readFlag(this.#i32, W_WAITERS) !== 0) this.#wake();
    return freed;
  }

  #claimSlot(): number {
    const slots = this.#slots64;
    for (let attempt = 0; attempt < 2; attempt++) {
      for (let s = 0; s < this.maxProcesses; s++) {
        // C1: claim a free slot (seq_cst CAS 0 -> our identity); pairs with R0/R3 in reclaim.
        if (Atomics.load(slots, 2 * s) === 0n && Atomics.compareExchange(slots, 2 * s, 0n, MY_IDENTITY) === 0n) {
          if (FAULTS) fault(F_CLAIM);
          // C2: start a new tenure (seq_cst add) before any block carries our tag.
          const gen = (Atomics.add(this.#slotI32, 4 * s + 2, 1) + 1) & GEN_MASK;
          this.#slot = s;
          this.#tag = HELD | (gen << 8) | s;
          // Start each slot's cursor on its own cache line (16 state words) so that processes
          // doing get+put pairs settle on different lines instead of sharing line 0.
          this.#cursor = (16 * s) % this.count;
          return this.#tag;
        }
      }
      this.reclaim(); // dead processes may be sitting on slots
    }
    throw new ShmError(
      "EBUSY",
      `Cannot get a block from ${this.#what}: all ${this.maxProcesses} participant slots are held by live processes (EBUSY)`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Diagnostics

  /**
   * Checks the invariants I1-I3 on a quiescent pool (no get/put in flight anywhere).
   *
   * @returns a list of violations, empty when the pool is consistent
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-validate-${Date.now()}`, { count: 2, blockSize: 8 });
   * console.assert(pool.validate().length === 0);
   * pool.unlink();
   * ```
   */
  validate(): string[] {
    this.#live("validate");
    const out: string[] = [];
    const st = this.#states;
    for (let i = 0; i < st.length; i++) {
      const w = Atomics.load(st, i);
      if (w === FREE) continue;
      const s = w & 0xff;
      if ((w & ~0x3fffffff) !== HELD || s >= this.maxProcesses) {
        out.push(`I1: block ${i} has corrupt state 0x${(w >>> 0).toString(16)}`);
      } else if (Atomics.load(this.#slots64, 2 * s) === 0n) out.push(`I2: block ${i} is held by free slot ${s}`);
    }
    let parked = 0;
    for (let s = 0; s < this.maxProcesses; s++) parked += Atomics.load(this.#slotI32, 4 * s + 3);
    const waiters = Atomics.load(this.#i32, W_WAITERS);
    if (waiters < 0 || waiters !== parked) out.push(`I3: waiters ${waiters}, slots report ${parked} parked`);
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Lifetime

  /**
   * A JSON-safe handle; {@linkcode Mempool.attach} reopens the pool in any process.
   *
   * @returns the handle
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { attach, Mempool } from "./mod.ts";
   * using pool = Mempool.create(`doc-handle-${Date.now()}`, { count: 2, blockSize: 8 });
   * using again = attach(pool.handle()) as Mempool;
   * pool.unlink();
   * ```
   */
  handle(): MempoolHandle {
    this.#live("make a handle of");
    return placedHandle("shmkit.mempool", this.#seg, this.byteOffset);
  }

  /**
   * Detaches this object: every Block's bytes read length 0 afterwards (zeros on Node 20).
   * Blocks this process still holds stay recorded under it (another process may be using them)
   * and are reclaimed once it exits; with none held, its participant slot is freed now.
   * Idempotent.
   *
   * @example
   * ```ts
   * import { Mempool } from "./mod.ts";
   * const pool = Mempool.create(`doc-close-${Date.now()}`, { count: 2, blockSize: 8 });
   * pool.unlink();
   * pool.close();
   * pool.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#slot >= 0 && !this.#seg.closed) {
      const st = this.#states;
      const tag = this.#tag;
      let held = false;
      for (let i = 0; i < st.length && !held; i++) held = Atomics.load(st, i) === tag;
      // R3': free our slot only when no block carries our tag (seq_cst CAS id -> 0).
      if (!held) Atomics.compareExchange(this.#slots64, 2 * this.#slot, MY_IDENTITY, 0n);
      // Withdraw pending getAsync waits from the shared counts (they end with ECLOSED).
      const n = this.#parkedAsync;
      if (n > 0) {
        Atomics.sub(this.#i32, W_WAITERS, n);
        Atomics.sub(this.#slotI32, 4 * this.#slot + 3, n);
        this.#parkedAsync = 0;
      }
    }
    this.#closed = true;
    this.#failAll(this.#closedError("get a block from"));
    if (this.#ownsSegment) this.#seg.close();
    else native.detach(this.#buf);
    this.#blocks = [];
  }

  /** Removes the segment's name; attached processes keep working. */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #live(doing: string): void {
    if (this.#closed || this.#seg.closed) throw this.#closedError(doing);
  }

  #closedError(doing: string): ShmError {
    return new ShmError("ECLOSED", `Cannot ${doing} ${this.#what}: it is closed (ECLOSED)`);
  }

  #badIndex(doing: string, i: unknown): ShmError {
    return einval(
      `Cannot ${doing} a block of ${this.#what}`,
      `index ${String(i)} is not an integer in 0..${this.count - 1}`,
    );
  }
}

/** A queued getAsync caller. */
interface AsyncGetter {
  settled: boolean;
  resolve(b: Block): void;
  fail(e: unknown): void;
}

/** A block as handed out: one per index per Mempool object, made on first use and reused. */
class PoolBlock implements Block {
  readonly index: number;
  readonly bytes: Uint8Array;
  constructor(index: number, bytes: Uint8Array) {
    this.index = index;
    this.bytes = bytes;
  }
}

function describeSeg(seg: SharedMemory): string {
  return seg.name === null ? "anonymous shared memory" : `shared memory "${seg.name}"`;
}

function mempoolWhat(seg: SharedMemory): string {
  return seg.name === null ? "mempool in anonymous shared memory" : `mempool "${seg.name}"`;
}

function checkPlacement(seg: SharedMemory, off: number, len: number, what: string): void {
  if (typeof off !== "number" || !Number.isSafeInteger(off) || off < 0 || off % OBJECT_ALIGN !== 0) {
    throw einval(what, `byteOffset ${String(off)} must be a non-negative multiple of ${OBJECT_ALIGN}`);
  }
  if (off + len > seg.size) throw einval(what, `${len} bytes at ${off} do not fit in ${seg.size}`);
  if (seg.readOnly) throw einval(what, "the segment is read-only");
}

registerKind("shmkit.mempool", (h) => Mempool.attach(h as unknown as MempoolHandle));
