/**
 * Ring: a lock-free FIFO of u32 values shared by processes (DPDK rte_ring semantics, exact
 * capacity, crash tolerant). docs/layout/ring.md holds the same layout and the full protocol.
 *
 * Ring layout (little-endian, at the object's byteOffset, 64-byte aligned; N = slot count):
 *
 * | off | size | field          | writer              | reader          | note                                   |
 * |-----|------|----------------|---------------------|-----------------|----------------------------------------|
 * | 0   | 64   | common header  | init                | open            | src/layout.ts; kind 1 (ring), flags = mode |
 * | 64  | 4    | capacity       | init                | all             | exact item count, 1 <= capacity <= N   |
 * | 68  | 4    | slotCount (N)  | init                | all             | power of two, 4 <= N <= 2^28, N >= capacity |
 * | 72  | 4    | mode           | init                | all             | 0 spsc, 1 mpsc, 2 spmc, 3 mpmc         |
 * | 76  | 4    | slotsOffset    | init                | all             | 384: bytes from byteOffset to slot 0   |
 * | 80  | 48   | reserved       | -                   | -               | zero                                   |
 * | 128 | 4    | tail           | producers           | all             | u32 free-running; own cache line       |
 * | 192 | 4    | head           | consumers (+helpers)| all             | u32 free-running; own cache line       |
 * | 256 | 4    | consWaiters    | parked consumers    | producers       | futex word of consumers is `tail`      |
 * | 260 | 4    | prodWaiters    | parked producers    | consumers       | futex word of producers is `head`      |
 * | 264 | 4    | consSleep      | parking consumers: 1; waker: 0 (xchg) | producers | 1 = a consumer asked for a wake |
 * | 268 | 4    | prodSleep      | parking producers: 1; waker: 0 (xchg) | consumers | 1 = a producer asked for a wake |
 * | 320 | 8    | producerRole   | role claimant (CAS) | role claimants  | u64: lo = pid, hi = start time (low 32 bits); 0 free |
 * | 328 | 4    | producerToken  | role holder         | role claimants  | per-object token (same-process check)  |
 * | 336 | 8    | consumerRole   | role claimant (CAS) | role claimants  | as producerRole                        |
 * | 344 | 4    | consumerToken  | role holder         | role claimants  |                                        |
 * | 348 | 4    | reserved       | -                   | -               | zero                                   |
 * | 352 | 8    | bulkLock       | bulk producer (CAS) | all             | u64 (pid, start lo) of the multi-producer enqueueBulk in progress; 0 none |
 * | 360 | 4    | bulkPhase      | bulkLock holder     | recoverer       | 0 placing (abort on death), 1 committing (complete on death) |
 * | 364 | 20   | reserved       | -                   | -               | zero                                   |
 * | 384 | 8*N  | slots          | see below           |                 | CAS modes: slot i = value u32 at +8i, seq u32 at +8i+4; spsc: dense u32 at +4i |
 *
 * byteLength = 384 + 8 * N. Position p lives in slot p & (N - 1).
 *
 * spsc: `tail` and `head` are exact; the slot area is a dense u32 array instead (the value of
 * position p at 384 + 4 * (p & (N - 1)); the upper half is unused), written before `tail`
 * publishes it.
 * mpsc / spmc / mpmc: every slot is one 64-bit word (value, seq); producers change it with a
 * 64-bit CAS (value and seq together), consumers with a 32-bit CAS of seq:
 * seq == p      EMPTY for position p
 * seq == p + 1  FULL: holds the item of position p (value and seq committed by the same CAS)
 * seq == p + 2  PENDING: value of p placed by a multi-producer enqueueBulk, not yet visible
 * seq == p + 3  CLAIMED: item of p claimed by a multi-consumer dequeueBulk (value kept)
 * seq == p + N  taken (= EMPTY for position p + N)
 * `tail` and `head` are hints that trail the slots by at most the number of processes that died
 * between a slot CAS and the hint CAS; anyone who finds a FULL/taken slot at the hint advances it.
 *
 * Invariants (checked by validate(), and on the indices every operation reads):
 * - I1: spsc: (tail - head) >>> 0 <= capacity. CAS modes: -N < (tail - head) | 0 <= capacity (the tail
 *   hint may trail head when a producer died between its commit and its tail CAS)
 * - I2: capacity <= N, N is a power of two, 4 <= N <= 2^28
 * - I3: (CAS modes) every slot's seq is p, p + 1, p + 2, p + 3 or p + N for some position
 *   p == slot (mod N) with head - N <= p <= tail + N; p + 2 and p + 3 only while bulkLock is held
 * - I4: positions fill in order: a slot of position p becomes FULL only when position p - 1 is
 *   FULL or taken.
 *
 * Memory orders (JS Atomics are seq_cst; the pairs are what the protocol needs):
 * - R1/A1 (spsc): producer writes slot values, then stores `tail` (release); consumer loads
 *   `tail` (acquire), then reads values.
 * - R2/A2 (spsc): consumer reads values, then stores `head` (release); producer loads `head`
 *   (acquire) before reusing those slots.
 * - C1/A4 (CAS modes): the commit CAS (EMPTY -> FULL) pairs with the consumer's seq load A4.
 * - C2/A3 (CAS modes): the take, a 32-bit CAS of seq (FULL -> taken) after reading the value,
 *   pairs with the producer's seq load A3.
 * - W1/W2 (waiting): a waiter reads `tail`/`head`, increments its waiters word, stores 1 in its
 *   sleep flag (both seq_cst), re-checks, then waits on `tail`/`head` with the value it read; a
 *   waker changes `tail`/`head` (seq_cst), loads the waiters word and, only if it is non-zero,
 *   exchanges the sleep flag with 0 and calls futex wake (all) only if it was 1 (store-load,
 *   Dekker): no syscall on the fast path, one per sleep episode otherwise. spsc on x86-64: R1/R2
 *   are plain (release) stores (PLAIN_PUBLISH), so W2 may miss a registering waiter; spsc waiters
 *   wait at most 0.2 ms first and re-check, which bounds what that costs.
 * - Asynchronous waiters (enqueueAsync / dequeueAsync) of one Ring object wait in a local FIFO;
 *   only its parker registers and waits (W1) for them, and serves them in order when woken, so a
 *   publish costs one native wake per process and wakes as many local waiters as it has items.
 *
 * Bounded work on hostile memory: every loop over shared state takes at most MAX_STEPS steps
 * (each a re-read after some process's progress); a state no live peer can produce (checked by
 * re-reading it: seq and the hints only move forward) is EBADHDR.
 *
 * @module
 */
import { faultHook } from "./fault.ts";
import { checkKeys, ShmError } from "./errors.ts";
import { checkHandle, registerKind } from "./handle.ts";
import { COMMON_HEADER_SIZE, OBJECT_ALIGN, publishReady, readHeader, writeHeader } from "./layout.ts";
import type { Mapping } from "./mapping.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { createWhat, placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { ERRNO, native, PID, plainPublish, processAlive, START_TIME, sys } from "./sys.ts";
import {
  futexWait,
  futexWaitShortFirst,
  futexWake,
  readFlag,
  timeoutError,
  timeoutOf,
  waitAsync,
  waitAsyncShortFirst,
  type WaitOptions,
} from "./wait.ts";

/** Which sides of a ring may have more than one process: s = single, m = multi (producer first). */
export type RingMode = "spsc" | "mpsc" | "spmc" | "mpmc";

const MODES: readonly RingMode[] = ["spsc", "mpsc", "spmc", "mpmc"];

/** Byte offsets of the ring's own fields (from the object's byteOffset). */
export const RING = {
  capacity: 64,
  slotCount: 68,
  mode: 72,
  slotsOffset: 76,
  tail: 128,
  head: 192,
  consWaiters: 256,
  prodWaiters: 260,
  consSleep: 264,
  prodSleep: 268,
  producerRole: 320,
  producerToken: 328,
  consumerRole: 336,
  consumerToken: 344,
  bulkLock: 352,
  bulkPhase: 360,
  slots: 384,
} as const;

/** The ring header size; slots start here. */
export const RING_HEADER_SIZE = 384;
/** The smallest ring (4 slots): what readHeader checks before any view over the ring's fields. */
const RING_MIN_BYTES = RING_HEADER_SIZE + 8 * 4;
/** Largest slot count (so the slot array stays below 2 GiB). */
export const MAX_SLOTS = 2 ** 28;
/** Largest capacity. */
export const MAX_CAPACITY = MAX_SLOTS;

// Word indices into the header view (u32 words).
const W_TAIL = RING.tail >> 2;
const W_HEAD = RING.head >> 2;
const W_CW = RING.consWaiters >> 2;
const W_PW = RING.prodWaiters >> 2;
const W_CS = RING.consSleep >> 2;
const W_PS = RING.prodSleep >> 2;
const W_PROLE = RING.producerRole >> 2;
const W_CROLE = RING.consumerRole >> 2;
const W_BLOCK = RING.bulkLock >> 2;
const W_BPHASE = RING.bulkPhase >> 2;
/**
 * Tokens of the Ring objects of this thread (this module instance: a worker has its own) that hold
 * a single-producer role. A Channel receiver asks whether its ready ring's producer is one of them
 * (`_producerHere`): then its sender is the thread that would wait, and receive pacing only loses.
 */
const localProducers = new Set<number>();
/** The keys of RingCreateOptions (create, init, byteLength; `initialPosition`, a test hook, is accepted too). */
const RING_KEYS = ["capacity", "mode", "fileMode"] as const;
/** #recoverBulk results. */
const BULK_FREE = 0;
const BULK_ALIVE = 1;
const BULK_RECOVERED = 2;

/** How long a blocking call keeps trying before it parks (ms): a futex sleep/wake costs tens of
 * microseconds on small VMs, so a hand-off that arrives within this budget stays in user space. */
const SPIN_MS = 0.05;
/** Tries between two clock reads while spinning. */
const SPIN_BATCH = 64;
/** Longest single park: a waiter re-checks (and helps) at least this often, so a peer that dies
 * between its slot CAS and its wake never delays the others by more than this. */
const PARK_SLICE_MS = 200;
/**
 * spsc publishes of `tail` (producer) and `head` (consumer) are plain typed-array stores on x86-64
 * (ffi/mod.ts plainPublish; `SHMKIT_PLAIN_PUBLISH=0` makes them `Atomics.store`): a release store
 * there, which does not wait for the slot lines as `Atomics.store`'s `xchg` does. The wake check
 * after it (W2) may then read a waiter count from before a peer registered, so spsc parkers (both
 * sides, here and csrc/ops.c shmkit_ring_park) wait at most FIRST_WAIT_MS first and re-check
 * (docs/layout/ring.md "Waiting").
 */
const PLAIN_PUBLISH = plainPublish;
/** Most steps one non-blocking call takes over shared state (each step is a re-read after a failed
 * CAS or a helping CAS, i.e. some process's progress). Past it the call gives up as if the ring
 * were full (empty): a blocking call then retries within its timeout, and states that no live peer
 * can produce are reported as EBADHDR before this bound is reached. */
const MAX_STEPS = 4096;

const START_LO = Math.max(0, START_TIME) >>> 0;

// ---------------------------------------------------------------------------------------------
// Fault injection for crash tests (src/fault.ts): "ring.enq.after_commit:N" kills this process
// (SIGKILL) at the Nth time it reaches that point. Read once; when unset every check is a
// constant-false branch.

/** The named fault points of the ring (see docs/layout/ring.md, crash guarantee). */
export const RING_FAULT_POINTS = [
  "ring.enq.before_commit",
  "ring.enq.after_commit",
  "ring.enq.after_publish",
  "ring.deq.before_take",
  "ring.deq.after_take",
  "ring.deq.after_publish",
  "ring.role.after_claim",
  "ring.wait.parked",
  "ring.bulk.after_place",
  "ring.bulk.after_commit",
  "ring.bulk.after_claim",
  "ring.bulk.after_take",
] as const;

const faultHit = faultHook("ring.");
const FAULT_ON = faultHit !== undefined;
const fault = (point: string): void => faultHit!(point);

// ---------------------------------------------------------------------------------------------
// 64-bit CAS of a (lo, hi) u32 pair (a slot's (value, seq), a role or bulkLock word's (pid, start)).
//
// Node: Atomics.compareExchange on a BigUint64Array view of the ring (the same lock cmpxchg the C
// library issues, so JS and C peers interoperate). The BigInts are made by writing the four halves
// into a scratch buffer and reading them back as two u64s: both views use the platform's byte
// order, so the pair maps onto the word exactly as the ring's Uint32Array views see it. Measured
// (bench/micro/cas64.ts, one process): Node 31 ns against 72 ns for the koffi call. Deno and Bun
// keep the native call (io = [expLo, expHi, desLo, desHi]), which allocates nothing: on Deno the
// BigInt CAS costs the same 31 ns in one process and was slower across 8 processes on 2 CPUs (S7
// 4P+4C, 5 of 5 interleaved A/B pairs, likely the BigInt garbage); on Bun JSC's BigInts make it
// ~60 ns against 12.5 ns for the call.

const JS_CAS = native.runtime === "node";

/**
 * spsc bulk copies of at least this many items use `TypedArray.set` (one memmove per contiguous
 * run; a subarray view per run, so one or two small allocations per call, none per item). Measured
 * in one process (bench/micro/ring_ops.ts): at 256 items 3-4x faster than the per-item loop on all
 * three runtimes; at 32 equal on Deno and Node, 1.4x faster on Bun.
 */
const SET_MIN = 32;
/**
 * The spsc consumer's copy out (#readSpsc) goes through `slots.subarray(...)` and `set` from this
 * many items: 64 on Bun, where below it a per-item loop moved twice as much across processes
 * (bench S1 batch 32, paired runs: 239 / 325 -> 480 / 488 M/s; batch 256 unchanged, and a loop
 * there lost 25 %), SET_MIN on V8, where the loop gained nothing at 32 (Deno 527 / 486 -> 517 /
 * 489, Node 24 392 / 346 -> 338 / 402 M/s). The producer's copy in measured the same either way.
 */
const READ_SET_MIN = native.runtime === "bun" ? 64 : SET_MIN;

const ioBuf = new ArrayBuffer(16);
const io8 = new Uint8Array(ioBuf);
const io32 = new Uint32Array(ioBuf);
const io64 = new BigUint64Array(ioBuf);

/** Options of {@linkcode Ring.create}, {@linkcode Ring.init} and {@linkcode Ring.byteLength}. */
export interface RingOptions {
  /** The exact number of items the ring holds (1 .. 2^28). */
  capacity: number;
  /** Default "mpmc". */
  mode?: RingMode;
}

/** Options of {@linkcode Ring.create}. */
export interface RingCreateOptions extends RingOptions {
  /** File mode of the new segment (default 0o600). */
  fileMode?: number;
}

/** Options of {@linkcode Ring.init}. */
export type RingInitOptions = RingOptions;

/** What tests may pass beside the public options (not exported, so not in the public docs):
 * `initialPosition` starts both counters at this u32 position (e.g. near 2**32). */
type RingTestOptions = RingOptions & { initialPosition?: number };

/** The handle of a ring: JSON-safe, reopened by {@linkcode Ring.attach} in any process. */
export interface RingHandle {
  /** Always `"shmkit.ring"`. */
  readonly kind: "shmkit.ring";
  /** Handle format version. */
  readonly version: number;
  /** The segment name, or null for an anonymous segment. */
  readonly name: string | null;
  /** Where the ring starts in its segment. */
  readonly byteOffset: number;
  /** The segment's own handle. */
  readonly segment: SharedMemoryHandle;
}

function checkCapacity(o: unknown, what: string): { capacity: number; slots: number; mode: number } {
  if (typeof o !== "object" || o === null) throw new TypeError(`${what}: options must be an object with a capacity`);
  checkKeys(o, RING_KEYS, what, "initialPosition");
  const { capacity, mode } = o as RingOptions;
  if (typeof capacity !== "number") throw new TypeError(`${what}: capacity must be a number, got ${typeof capacity}`);
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
    throw new ShmError(
      "EINVAL",
      `${what}: capacity must be an integer in 1..${MAX_CAPACITY}, got ${capacity} (EINVAL)`,
      {
        errno: ERRNO.EINVAL,
      },
    );
  }
  const m = MODES.indexOf(mode ?? "mpmc");
  if (m < 0) {
    throw new ShmError(
      "EINVAL",
      `${what}: mode must be one of ${MODES.join(", ")}, got ${JSON.stringify(mode)} (EINVAL)`,
      {
        errno: ERRNO.EINVAL,
      },
    );
  }
  let slots = 4;
  while (slots < capacity) slots *= 2;
  return { capacity, slots, mode: m };
}

function badValue(v: unknown, what: string): Error {
  if (typeof v !== "number") return new TypeError(`${what}: values must be numbers, got ${typeof v}`);
  return new RangeError(`${what}: values must be integers in 0..4294967295, got ${v}`);
}

/**
 * A lock-free FIFO of u32 values (0..2^32-1) in shared memory, usable at once by processes of
 * Deno, Bun and Node (and any language following docs/layout/ring.md).
 *
 * Role contract: `mpmc` (default) allows any number of producer and consumer processes; `mpsc`
 * one consumer process, `spmc` one producer process, `spsc` one of each. A single role is taken
 * by the first process that produces (or consumes) and is held until that Ring object is closed
 * or its process dies; another process that tries gets `ShmError` EBUSY. Within one process,
 * use one Ring object per single role. Any process may read `size` and `capacity`.
 *
 * Crash guarantee: a process killed (SIGKILL) at any instruction of an enqueue or dequeue never
 * wedges the ring. An enqueue takes effect at one atomic step (the spsc `tail` store, or the
 * 64-bit slot CAS that writes value and sequence together), so an item is either committed whole
 * or not at all; committed items are delivered exactly once, in order per producer. A dequeue
 * takes effect at one atomic step too (the spsc `head` store or the take CAS): an item whose
 * consumer dies after that step is consumed by that consumer (at-most-once, as with any queue
 * without acknowledgements); before it, the item stays for the others. Survivors repair the
 * trailing `head`/`tail` hints as they go and parked peers re-check at least every 200 ms, so
 * the others carry on well within 1 s. Nothing is ever taken from a live process: a stopped
 * (SIGSTOP) process holds only its single role and its bulk lock, if any. A process killed while parked leaves its
 * waiter count raised: wakers then do one extra atomic exchange per publish (no syscall).
 *
 * Batches: `enqueueBulk` and `dequeueBulk` are all or nothing on every mode. On spsc a batch is
 * published by one store. On a multi side (mpsc/mpmc producers, spmc/mpmc consumers) a bulk call
 * takes a short bulk lock (owner-tagged like the roles), places its values PENDING (or claims
 * its items CLAIMED) so nobody else can deliver them, then commits with one store of
 * `bulkPhase`: a process killed before that store has nothing of its batch enqueued (dequeued:
 * the items go back to the ring), after it the whole batch (a survivor completes it). A stopped
 * bulk holder delays consumers at its slots until it continues. On a single side (spmc
 * producer, mpsc consumer) a process killed in the middle of a bulk call, and on any mode one
 * killed in a burst call, has committed (taken) a prefix.
 *
 * @example
 * ```ts
 * import { Ring } from "./mod.ts";
 * using ring = Ring.create("shmkit-doc-ring", { capacity: 1000, mode: "mpmc" });
 * ring.tryEnqueue(42);
 * ring.enqueueBurst([1, 2, 3]);
 * console.assert(ring.tryDequeue() === 42);
 * const out = new Uint32Array(8);
 * console.assert(ring.dequeueBurst(out) === 3);
 * ring.unlink();
 * ```
 */
export class Ring implements Disposable {
  /** The exact number of items the ring holds. */
  readonly capacity: number;
  /** The role mode, fixed at creation. */
  readonly mode: RingMode;
  #name: string;
  #enqWhat: string; // error prefixes, made once (no string per call)
  #deqWhat: string;
  #seg: SharedMemory;
  #owns: boolean;
  #mapping: Mapping;
  #base: number;
  #ctl: Uint32Array;
  #slots: Uint32Array;
  /** The whole ring as u64 words (the 64-bit CAS on Node). */
  #words: BigUint64Array;
  #mask: number;
  #n: number;
  #spsc: boolean;
  #singleProd: boolean;
  #singleCons: boolean;
  #prodRole = false;
  #consRole = false;
  #token: number;
  #closed = false;
  // spsc producer: published tail and cached head; spsc consumer: published head, cached tail.
  #pTail = 0;
  #pHead = 0;
  #cHead = 0;
  #cTail = 0;
  // CAS modes: cached head for the capacity check.
  #headCache = 0;
  // Multi-producer enqueueBulk: positions placed so far (reused), and the last placed position.
  #bulkPos = new Uint32Array(64);
  #lastPos = 0;
  // Waits of this object registered in prodWaiters / consWaiters (given back by close()).
  #pWaits = 0;
  #cWaits = 0;
  // Asynchronous waiters of this object, per side (see #waitLocal).
  #prodQ: LocalQueue = newQueue();
  #consQ: LocalQueue = newQueue();

  private constructor(seg: SharedMemory, byteOffset: number, owns: boolean, what: string) {
    const buf = seg.buffer;
    const ctl = new Uint32Array(buf, byteOffset, RING_HEADER_SIZE / 4);
    const dv = new DataView(buf, byteOffset, RING_HEADER_SIZE);
    const bad = (why: string): ShmError => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    // Read each field once into a local, then validate before using any of them.
    const capacity = dv.getUint32(RING.capacity, true);
    const n = dv.getUint32(RING.slotCount, true);
    const mode = dv.getUint32(RING.mode, true);
    const slotsOffset = dv.getUint32(RING.slotsOffset, true);
    const byteLength = Number(dv.getBigUint64(16, true));
    const headerSize = dv.getUint32(12, true);
    if (n < 4 || n > MAX_SLOTS || (n & (n - 1)) !== 0) {
      throw bad(`slot count ${n} is not a power of two in 4..${MAX_SLOTS}`);
    }
    if (capacity < 1 || capacity > n) throw bad(`capacity ${capacity} is outside 1..${n}`);
    if (mode > 3) throw bad(`mode ${mode} is not a ring mode`);
    if (slotsOffset !== RING_HEADER_SIZE || headerSize !== RING_HEADER_SIZE) {
      throw bad(`header size ${headerSize} / slots offset ${slotsOffset}, expected ${RING_HEADER_SIZE}`);
    }
    if (byteLength !== RING_HEADER_SIZE + 8 * n) throw bad(`byteLength ${byteLength} does not match ${n} slots`);
    if (byteOffset + byteLength > buf.byteLength) {
      throw bad(`it needs ${byteLength} bytes at ${byteOffset}, the segment is ${buf.byteLength}`);
    }
    const tail = Atomics.load(ctl, W_TAIL);
    const head = Atomics.load(ctl, W_HEAD);
    // I1 (spsc: 0 <= tail - head <= capacity; CAS modes: the tail hint may trail head, by < N).
    const apart = (tail - head) | 0;
    if (apart > capacity || apart < (mode === 0 ? 0 : -n)) {
      throw bad(`tail ${tail} and head ${head} are ${apart} apart, outside ${mode === 0 ? 0 : -n}..${capacity} (I1)`);
    }
    this.capacity = capacity;
    this.mode = MODES[mode];
    this.#name = seg.name ?? "anonymous";
    this.#enqWhat = `Cannot enqueue on ring "${this.#name}"`;
    this.#deqWhat = `Cannot dequeue from ring "${this.#name}"`;
    this.#seg = seg;
    this.#owns = owns;
    this.#mapping = seg.mapping;
    this.#base = byteOffset;
    this.#ctl = ctl;
    this.#slots = new Uint32Array(buf, byteOffset + RING_HEADER_SIZE, 2 * n);
    this.#words = new BigUint64Array(buf, byteOffset, byteLength / 8);
    this.#n = n;
    this.#mask = n - 1;
    this.#spsc = mode === 0;
    this.#singleProd = mode === 0 || mode === 2;
    this.#singleCons = mode === 0 || mode === 1;
    this.#token = ((Math.random() * 0xfffffffe) >>> 0) + 1;
    // The capacity check needs a head at or behind the true head: never a made-up 0.
    this.#headCache = head;
  }

  /**
   * Bytes a ring of `options.capacity` items occupies (for placing it inside a segment).
   *
   * @param options `{ capacity }`
   * @returns the byte length (a multiple of 64)
   * @throws {ShmError} EINVAL for a capacity outside 1..2^28
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * console.assert(Ring.byteLength({ capacity: 100 }) === 384 + 8 * 128);
   * ```
   */
  static byteLength(options: RingOptions): number {
    const { slots } = checkCapacity(options, "Cannot size a ring");
    return RING_HEADER_SIZE + 8 * slots;
  }

  /**
   * Formats a ring at `byteOffset` (a multiple of 64) of `segment`, overwriting what is there.
   * Nobody may use that range while it is being formatted.
   *
   * @param segment the segment to place the ring in (it stays owned by the caller)
   * @param byteOffset a multiple of 64 with room for {@linkcode Ring.byteLength} bytes
   * @param options `{ capacity, mode }`
   * @returns the ring
   * @throws {ShmError} EINVAL for a bad capacity, mode or offset; ENOSPC if it does not fit
   * @example
   * ```ts
   * import { Ring, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 64 + Ring.byteLength({ capacity: 16 }));
   * const ring = Ring.init(seg, 64, { capacity: 16, mode: "spsc" });
   * ring.tryEnqueue(7);
   * console.assert(Ring.at(seg, 64).size === 1);
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: RingInitOptions): Ring {
    const what = `Cannot initialize a ring in ${
      segment.name === null ? "anonymous shared memory" : `"${segment.name}"`
    }`;
    const { capacity, slots, mode } = checkCapacity(options, what);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % OBJECT_ALIGN !== 0) {
      throw new ShmError(
        "EINVAL",
        `${what}: byteOffset ${byteOffset} must be a non-negative multiple of ${OBJECT_ALIGN} (EINVAL)`,
      );
    }
    const len = RING_HEADER_SIZE + 8 * slots;
    if (byteOffset + len > segment.size) {
      throw new ShmError(
        "ENOSPC",
        `${what}: it needs ${len} bytes at ${byteOffset}, the segment has ${segment.size} (ENOSPC)`,
      );
    }
    const pos = ((options as RingTestOptions).initialPosition ?? 0) >>> 0;
    const buf = segment.buffer;
    writeHeader(buf, byteOffset, "ring", RING_HEADER_SIZE, len, mode);
    const dv = new DataView(buf, byteOffset, RING_HEADER_SIZE);
    for (let i = COMMON_HEADER_SIZE; i < RING_HEADER_SIZE; i += 4) dv.setUint32(i, 0, true);
    dv.setUint32(RING.capacity, capacity, true);
    dv.setUint32(RING.slotCount, slots, true);
    dv.setUint32(RING.mode, mode, true);
    dv.setUint32(RING.slotsOffset, RING_HEADER_SIZE, true);
    dv.setUint32(RING.tail, pos, true);
    dv.setUint32(RING.head, pos, true);
    const s = new Uint32Array(buf, byteOffset + RING_HEADER_SIZE, 2 * slots);
    const mask = slots - 1;
    for (let i = 0; i < slots; i++) {
      s[2 * i] = 0;
      // Slot i is EMPTY for the first position >= pos that maps to it (CAS modes; 0 for spsc).
      s[2 * i + 1] = mode === 0 ? 0 : (pos + ((i - pos) & mask)) >>> 0;
    }
    publishReady(buf, byteOffset);
    return new Ring(segment, byteOffset, false, what);
  }

  /**
   * Attaches the ring at `byteOffset` of `segment` and validates its header.
   *
   * @param segment the segment holding the ring (it stays owned by the caller)
   * @param byteOffset where the ring starts
   * @returns the ring
   * @throws {ShmError} EBADHDR when there is no valid ring there; EINVAL for a bad offset
   * @example
   * ```ts
   * import { Ring, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, Ring.byteLength({ capacity: 4 }));
   * Ring.init(seg, 0, { capacity: 4 });
   * console.assert(Ring.at(seg, 0).capacity === 4);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): Ring {
    const what = `Cannot open the ring at ${byteOffset} of ${
      segment.name === null ? "anonymous shared memory" : `"${segment.name}"`
    }`;
    readHeader(segment.buffer, byteOffset, "ring", what, undefined, undefined, RING_MIN_BYTES);
    return new Ring(segment, byteOffset, false, what);
  }

  /**
   * Creates a named ring: a new segment (exclusive, mode 0o600 unless `fileMode`) holding it.
   *
   * @param name the segment name ("jobs" and "/jobs" are the same)
   * @param options `{ capacity, mode?, fileMode? }`
   * @returns the ring (owning its segment)
   * @throws {ShmError} EEXIST when the name is taken; EINVAL for a bad name, capacity or mode
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using ring = Ring.create("shmkit-doc-create", { capacity: 3 });
   * console.assert(ring.capacity === 3 && ring.mode === "mpmc");
   * ring.unlink();
   * ```
   */
  static create(name: string | null, options: RingCreateOptions & RingInitOptions): Ring {
    const what = createWhat("ring", name);
    const { slots } = checkCapacity(options, what);
    const seg = renamed(
      () => SharedMemory.create(name, RING_HEADER_SIZE + 8 * slots, { mode: options.fileMode }),
      "Cannot create ring",
      name,
    );
    return placeOrRelease(seg, true, () => {
      const r = Ring.init(seg, 0, options);
      r.#owns = true;
      return r;
    });
  }

  /**
   * Opens an existing named ring and validates its header.
   *
   * @param name the segment name
   * @returns the ring (owning its mapping)
   * @throws {ShmError} ENOENT when there is no such segment; EBADHDR when it is not a valid ring
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using a = Ring.create("shmkit-doc-open", { capacity: 8 });
   * using b = Ring.open("shmkit-doc-open");
   * a.tryEnqueue(1);
   * console.assert(b.tryDequeue() === 1);
   * a.unlink();
   * ```
   */
  static open(name: string): Ring {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open ring", name);
    return placeOrRelease(seg, false, () => {
      const what = `Cannot open ring ${JSON.stringify(name)}`;
      readHeader(seg.buffer, 0, "ring", what, undefined, undefined, RING_MIN_BYTES);
      return new Ring(seg, 0, true, what);
    });
  }

  /**
   * Reopens a ring from its {@linkcode Ring.handle} (in any process).
   *
   * @param handle a handle from `ring.handle()`, possibly through JSON
   * @returns the ring (owning its mapping)
   * @throws {ShmError} EINVAL for a bad handle; ENOENT; EBADHDR
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using a = Ring.create("shmkit-doc-attach", { capacity: 8 });
   * using b = Ring.attach(JSON.parse(JSON.stringify(a.handle())));
   * console.assert(b.capacity === 8);
   * a.unlink();
   * ```
   */
  static attach(handle: RingHandle): Ring {
    checkHandle(handle, "shmkit.ring");
    const seg = SharedMemory.attach(handle.segment);
    return placeOrRelease(seg, false, () => {
      const what = `Cannot attach ring ${JSON.stringify(handle.name)}`;
      readHeader(seg.buffer, handle.byteOffset, "ring", what, undefined, undefined, RING_MIN_BYTES);
      return new Ring(seg, handle.byteOffset, true, what);
    });
  }

  /** Items queued now (a snapshot; may trail by in-flight operations). @throws {ShmError} EBADHDR if the counters are corrupt */
  get size(): number {
    this.#live(`Cannot read the size of ring "${this.#name}"`);
    const ctl = this.#ctl;
    for (let step = 0;; step++) {
      const h = Atomics.load(ctl, W_HEAD);
      const t = Atomics.load(ctl, W_TAIL);
      // A head that moved between the two reads: read again (bounded: a busy ring's snapshot).
      if (Atomics.load(ctl, W_HEAD) !== h && step < MAX_STEPS) continue;
      const n = (t - h) | 0;
      if (n < 0) return 0; // CAS modes: a trailing tail hint (a producer died before advancing it)
      if (n > this.capacity) throw this.#corrupt(`tail ${t} and head ${h} are ${n} apart (I1)`);
      return n;
    }
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------
  // Non-blocking operations

  /**
   * Enqueues `value` if there is room; never blocks.
   *
   * @param value an integer in 0..2^32-1
   * @returns true if enqueued, false if the ring is full
   * @throws {RangeError|TypeError} for a value that is not an integer in range
   * @throws {ShmError} EBUSY when another live process holds this single-producer ring's role;
   * EBADHDR when shared counters are corrupt
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-tryenq", { capacity: 1 });
   * console.assert(r.tryEnqueue(1) && !r.tryEnqueue(2));
   * r.unlink();
   * ```
   */
  tryEnqueue(value: number): boolean {
    if (this.#closed || this.#mapping.closed) throw this.#closedError(this.#enqWhat);
    if ((value >>> 0) !== value) throw badValue(value, this.#enqWhat);
    if (this.#singleProd && !this.#prodRole) this.#claim(true);
    return this.#spsc ? this.#enqSpsc(value) : this.#enqCas(value);
  }

  /**
   * Dequeues the oldest value if there is one; never blocks.
   *
   * @returns the value, or undefined if the ring is empty
   * @throws {ShmError} EBUSY when another live process holds this single-consumer ring's role;
   * EBADHDR when shared counters are corrupt
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-trydeq", { capacity: 2 });
   * console.assert(r.tryDequeue() === undefined);
   * r.tryEnqueue(5);
   * console.assert(r.tryDequeue() === 5);
   * r.unlink();
   * ```
   */
  tryDequeue(): number | undefined {
    if (this.#closed || this.#mapping.closed) throw this.#closedError(this.#deqWhat);
    if (this.#singleCons && !this.#consRole) this.#claim(false);
    return this.#spsc ? this.#deqSpsc() : this.#deqCas();
  }

  /**
   * Enqueues all of `values` or none of them; never blocks.
   *
   * @param values integers in 0..2^32-1 (validated before anything is enqueued)
   * @returns true if all were enqueued, false (nothing enqueued) if they do not all fit (or, on a
   * multi-producer ring, another process's bulk enqueue stayed in progress for ~1000 tries)
   * @throws {RangeError|TypeError} for a bad value
   * @throws {ShmError} EBUSY when another process holds this single-producer ring's role
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-bulk", { capacity: 4, mode: "spsc" });
   * console.assert(r.enqueueBulk([1, 2, 3]) && !r.enqueueBulk([4, 5]));
   * r.unlink();
   * ```
   */
  enqueueBulk(values: ArrayLike<number>): boolean {
    const what = this.#enqWhat;
    this.#live(what);
    const n = checkValues(values, what);
    if (n === 0) return true;
    if (n === 1) return this.tryEnqueue(values[0]);
    if (!this.#singleProd) return this.#enqBulkMulti(values, n);
    if (!this.#prodRole) this.#claim(true);
    if (this.#spsc) {
      if (this.#freeSpsc(n) < n) return false;
      this.#writeSpsc(values, n);
      return true;
    }
    // spmc: this process is the only producer, so room seen now stays (consumers only add room).
    if (this.capacity - this.#syncTail() < n) return false;
    for (let i = 0; i < n; i++) {
      if (!this.#enqCas(values[i])) throw this.#corrupt("room vanished during a single-producer bulk enqueue");
    }
    return true;
  }

  /**
   * Enqueues as many of `values` (from the start) as fit; never blocks.
   *
   * @param values integers in 0..2^32-1 (validated before anything is enqueued)
   * @returns how many were enqueued
   * @throws {RangeError|TypeError} for a bad value; {ShmError} EBUSY
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-burst", { capacity: 2 });
   * console.assert(r.enqueueBurst([1, 2, 3]) === 2);
   * r.unlink();
   * ```
   */
  enqueueBurst(values: ArrayLike<number>): number {
    this.#live(this.#enqWhat);
    const n = checkValues(values, this.#enqWhat);
    if (n === 0) return 0;
    if (this.#singleProd && !this.#prodRole) this.#claim(true);
    if (this.#spsc) {
      const k = Math.min(n, this.#freeSpsc(n));
      if (k > 0) this.#writeSpsc(values, k);
      return k;
    }
    let k = 0;
    while (k < n && this.#enqCas(values[k])) k++;
    return k;
  }

  /**
   * Dequeues exactly `count` values into `out`, or nothing; never blocks.
   *
   * @param out receives the values from index 0
   * @param count how many (default `out.length`)
   * @returns `count`, or 0 when fewer are queued
   * @throws {RangeError} if `count` exceeds `out.length`; {ShmError} EBUSY
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-dbulk", { capacity: 4, mode: "mpsc" });
   * r.enqueueBurst([1, 2, 3]);
   * const out = new Uint32Array(2);
   * console.assert(r.dequeueBulk(out) === 2 && out[1] === 2);
   * r.unlink();
   * ```
   */
  dequeueBulk(out: Uint32Array, count: number = out.length): number {
    const what = this.#deqWhat;
    this.#live(what);
    checkOut(out, count, what);
    if (count === 0) return 0;
    if (count === 1) {
      const v = this.tryDequeue();
      if (v === undefined) return 0;
      out[0] = v;
      return 1;
    }
    if (!this.#singleCons) return this.#deqBulkMulti(out, count);
    if (!this.#consRole) this.#claim(false);
    if (this.#spsc) {
      if (this.#availSpsc(count) < count) return 0;
      this.#readSpsc(out, count);
      return count;
    }
    // mpsc: this process is the only consumer; FULL slots seen now stay FULL.
    if (this.#countFull(count) < count) return 0;
    for (let i = 0; i < count; i++) {
      const v = this.#deqCas();
      if (v === undefined) throw this.#corrupt("items vanished during a single-consumer bulk dequeue");
      out[i] = v;
    }
    return count;
  }

  /**
   * Dequeues up to `max` values into `out`; never blocks.
   *
   * @param out receives the values from index 0
   * @param max the most to take (default `out.length`)
   * @returns how many were dequeued (0 when empty)
   * @throws {RangeError} if `max` exceeds `out.length`; {ShmError} EBUSY
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-dburst", { capacity: 8 });
   * r.enqueueBurst([1, 2]);
   * console.assert(r.dequeueBurst(new Uint32Array(8)) === 2);
   * r.unlink();
   * ```
   */
  dequeueBurst(out: Uint32Array, max: number = out.length): number {
    this.#live(this.#deqWhat);
    checkOut(out, max, this.#deqWhat);
    if (max === 0) return 0;
    if (this.#singleCons && !this.#consRole) this.#claim(false);
    if (this.#spsc) {
      const k = Math.min(max, this.#availSpsc(max));
      if (k > 0) this.#readSpsc(out, k);
      return k;
    }
    let k = 0;
    while (k < max) {
      const v = this.#deqCas();
      if (v === undefined) break;
      out[k++] = v;
    }
    return k;
  }

  // -------------------------------------------------------------------------------------------
  // Blocking and asynchronous operations

  /**
   * Enqueues `value`, waiting for room: spins briefly, then sleeps on a futex.
   *
   * @param value an integer in 0..2^32-1
   * @param options `{ timeout }` in ms (default Infinity)
   * @throws {ShmError} ETIMEDOUT when no room appeared in time; EBUSY; {RangeError|TypeError}
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-enq", { capacity: 1 });
   * r.enqueue(1);
   * try { r.enqueue(2, { timeout: 10 }); } catch (e) { console.assert((e as { code: string }).code === "ETIMEDOUT"); }
   * r.unlink();
   * ```
   */
  enqueue(value: number, options?: WaitOptions): void {
    const timeout = timeoutOf(options, this.#enqWhat);
    if (this.tryEnqueue(value)) return;
    const spinEnd = performance.now() + SPIN_MS;
    do {
      for (let i = 0; i < SPIN_BATCH; i++) if (this.tryEnqueue(value)) return;
    } while (performance.now() < spinEnd);
    const deadline = performance.now() + timeout;
    const ctl = this.#ctl;
    for (;;) {
      const rem = deadline - performance.now();
      if (rem <= 0) throw timeoutError(this.#enqWhat, timeout);
      const h0 = Atomics.load(ctl, W_HEAD); // W1: futex word, read before the re-check
      Atomics.add(ctl, W_PW, 1); // W1: register (seq_cst); pairs with W2 in the dequeue paths
      Atomics.store(ctl, W_PS, 1); // W1: ask for a wake (seq_cst), then re-check
      this.#pWaits++;
      try {
        if (this.tryEnqueue(value)) return;
        if (FAULT_ON) fault("ring.wait.parked");
        this.#waitWord(W_HEAD, h0, Math.min(rem, PARK_SLICE_MS));
      } finally {
        if (!this.#closed && !this.#mapping.closed) {
          Atomics.sub(ctl, W_PW, 1);
          this.#pWaits--;
        }
      }
      if (this.tryEnqueue(value)) return;
    }
  }

  /**
   * Dequeues the oldest value, waiting for one: spins briefly, then sleeps on a futex.
   *
   * @param options `{ timeout }` in ms (default Infinity)
   * @returns the value
   * @throws {ShmError} ETIMEDOUT when nothing arrived in time; EBUSY
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-deq", { capacity: 4 });
   * r.enqueue(9);
   * console.assert(r.dequeue({ timeout: 100 }) === 9);
   * r.unlink();
   * ```
   */
  dequeue(options?: WaitOptions): number {
    const timeout = timeoutOf(options, this.#deqWhat);
    let v = this.tryDequeue();
    if (v !== undefined) return v;
    const spinEnd = performance.now() + SPIN_MS;
    do {
      for (let i = 0; i < SPIN_BATCH; i++) {
        v = this.tryDequeue();
        if (v !== undefined) return v;
      }
    } while (performance.now() < spinEnd);
    const deadline = performance.now() + timeout;
    const ctl = this.#ctl;
    for (;;) {
      const rem = deadline - performance.now();
      if (rem <= 0) throw timeoutError(this.#deqWhat, timeout);
      const t0 = Atomics.load(ctl, W_TAIL); // W1: futex word, read before the re-check
      Atomics.add(ctl, W_CW, 1); // W1: register (seq_cst); pairs with W2 in the enqueue paths
      Atomics.store(ctl, W_CS, 1); // W1: ask for a wake (seq_cst), then re-check
      this.#cWaits++;
      try {
        v = this.tryDequeue();
        if (v !== undefined) return v;
        if (FAULT_ON) fault("ring.wait.parked");
        this.#waitWord(W_TAIL, t0, Math.min(rem, PARK_SLICE_MS));
      } finally {
        if (!this.#closed && !this.#mapping.closed) {
          Atomics.sub(ctl, W_CW, 1);
          this.#cWaits--;
        }
      }
      v = this.tryDequeue();
      if (v !== undefined) return v;
    }
  }

  /**
   * Enqueues `value`, waiting for room without blocking the event loop (no busy polling: the
   * wait is one of the process's shared native waits).
   *
   * @param value an integer in 0..2^32-1
   * @param options `{ timeout, signal }`
   * @returns a promise that resolves once enqueued
   * @throws {ShmError} ETIMEDOUT (rejects); rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-enqa", { capacity: 4 });
   * await r.enqueueAsync(3);
   * console.assert(r.tryDequeue() === 3);
   * r.unlink();
   * ```
   */
  async enqueueAsync(value: number, options?: WaitOptions): Promise<void> {
    const what = this.#enqWhat;
    const timeout = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    if (this.tryEnqueue(value)) return;
    await this.#waitLocal(this.#prodQ, what, timeout, signal, () => this.tryEnqueue(value) ? true : undefined);
  }

  /**
   * Dequeues the oldest value, waiting for one without blocking the event loop.
   *
   * @param options `{ timeout, signal }`
   * @returns a promise of the value
   * @throws {ShmError} ETIMEDOUT (rejects); rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-deqa", { capacity: 4 });
   * const p = r.dequeueAsync({ timeout: 1000 });
   * r.tryEnqueue(11);
   * console.assert(await p === 11);
   * r.unlink();
   * ```
   */
  async dequeueAsync(options?: WaitOptions): Promise<number> {
    const what = this.#deqWhat;
    const timeout = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const v = this.tryDequeue();
    if (v !== undefined) return v;
    return await this.#waitLocal(this.#consQ, what, timeout, signal, () => this.tryDequeue());
  }

  // -------------------------------------------------------------------------------------------
  // Asynchronous waiters: a FIFO per side in this object; only its parker waits on the futex word
  // (W1/W2 as the blocking calls), and serves the queue in order when woken: each publish wakes
  // one native wait per process, and as many local waiters go as there are items (or room).

  #waitLocal<T>(
    q: LocalQueue,
    what: string,
    timeout: number,
    signal: AbortSignal | undefined,
    attempt: () => T | undefined,
  ): Promise<T> {
    if (timeout === 0) return Promise.reject(timeoutError(what, timeout));
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w: LocalWaiter = {
        settled: false,
        attempt: () => {
          const v = attempt();
          if (v === undefined) return false;
          finish();
          resolve(v);
          return true;
        },
        fail: (e) => {
          finish();
          reject(e);
        },
      };
      const onAbort = (): void => {
        if (w.settled) return;
        w.fail(signal!.reason);
        this.#leave(q);
      };
      const finish = (): void => {
        w.settled = true;
        q.live--;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      if (timeout !== Infinity) {
        timer = setTimeout(() => {
          if (w.settled) return;
          w.fail(timeoutError(what, timeout));
          this.#leave(q);
        }, timeout);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      q.items.push(w);
      q.live++;
      if (!q.parking) void this.#park(q);
    });
  }

  /** A waiter left early (timeout, abort): with nobody left, end the parker's wait now. */
  #leave(q: LocalQueue): void {
    if (q.live === 0) q.wake?.abort();
  }

  /**
   * One futex wait of a blocking call on `tail` or `head` (`word`, a #ctl index) while it holds
   * `w0`, for up to `slice` ms; spsc: a short first wait and a re-check of the word, then the rest
   * (PLAIN_PUBLISH above).
   */
  #waitWord(word: number, w0: number, slice: number): void {
    const at = this.#base + 4 * word;
    if (this.#spsc) futexWaitShortFirst(this.#mapping, at, w0, slice, () => Atomics.load(this.#ctl, word) !== w0);
    else futexWait(this.#mapping, at, w0, slice);
  }

  /** Serves the front of `q` in order while attempts succeed; drops settled waiters. */
  #serve(q: LocalQueue): void {
    const items = q.items;
    while (q.head < items.length) {
      const w = items[q.head];
      if (!w.settled && !w.attempt()) return;
      items[q.head++] = undefined as unknown as LocalWaiter;
    }
    items.length = 0;
    q.head = 0;
  }

  /** The parker of one side: waits on `tail` (consumers) or `head` (producers) for the queue. */
  async #park(q: LocalQueue): Promise<void> {
    const cons = q === this.#consQ;
    const ctl = this.#ctl;
    const word = cons ? W_TAIL : W_HEAD;
    const waiters = cons ? W_CW : W_PW;
    q.parking = true;
    try {
      for (;;) {
        this.#serve(q);
        if (q.live === 0) return;
        if (this.#closed || this.#mapping.closed) throw this.#closedError(`Cannot use ring "${this.#name}"`);
        const w0 = Atomics.load(ctl, word); // W1: futex word, read before the re-check
        Atomics.add(ctl, waiters, 1); // W1: register (seq_cst); pairs with W2
        Atomics.store(ctl, cons ? W_CS : W_PS, 1); // W1: ask for a wake (seq_cst), then re-check
        if (cons) this.#cWaits++;
        else this.#pWaits++;
        try {
          this.#serve(q);
          if (q.live === 0) return;
          const wake = new AbortController();
          q.wake = wake;
          try {
            const at = this.#base + (cons ? RING.tail : RING.head);
            // spsc: a short first wait and a re-check, then the rest (PLAIN_PUBLISH above).
            if (this.#spsc) {
              await waitAsyncShortFirst(this.#mapping, at, w0, PARK_SLICE_MS, () => ctl[word] !== w0, wake.signal);
            } else await waitAsync(this.#mapping, at, w0, PARK_SLICE_MS, wake.signal);
          } catch { /* ended early: every waiter left, or close() */ }
          q.wake = undefined;
        } finally {
          if (!this.#closed && !this.#mapping.closed) {
            Atomics.sub(ctl, waiters, 1);
            if (cons) this.#cWaits--;
            else this.#pWaits--;
          }
        }
      }
    } catch (e) {
      // EBADHDR from an attempt, or ECLOSED: every waiter of this side gets it.
      this.#failAll(q, e);
    } finally {
      q.parking = false;
    }
  }

  #failAll(q: LocalQueue, e: unknown): void {
    const items = q.items;
    for (let i = q.head; i < items.length; i++) if (!items[i].settled) items[i].fail(e);
    items.length = 0;
    q.head = 0;
    q.wake?.abort();
  }

  /**
   * Iterates the values as they arrive (`for await`), never blocking the event loop; ends when
   * the ring is closed.
   *
   * @returns an async iterator of values
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-iter", { capacity: 4 });
   * r.enqueueBurst([1, 2]);
   * const got: number[] = [];
   * for await (const v of r) { got.push(v); if (got.length === 2) break; }
   * console.assert(got.join() === "1,2");
   * r.unlink();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<number> {
    while (!this.#closed) {
      let v: number;
      try {
        v = await this.dequeueAsync();
      } catch (e) {
        if (this.#closed) return;
        throw e;
      }
      yield v;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Lifetime

  /**
   * A JSON-safe handle; {@linkcode Ring.attach} reopens it in any process.
   *
   * @returns `{ kind: "shmkit.ring", version, name, byteOffset, segment }`
   * @throws {ShmError} ECLOSED after close()
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-handle", { capacity: 4 });
   * console.assert(r.handle().kind === "shmkit.ring");
   * r.unlink();
   * ```
   */
  handle(): RingHandle {
    this.#live(`Cannot make a handle of ring "${this.#name}"`);
    return placedHandle("shmkit.ring", this.#seg, this.#base);
  }

  /**
   * Releases this object's roles and, if it owns its mapping (create/open/attach), unmaps it.
   * Idempotent. Afterwards every operation throws.
   *
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * const r = Ring.create("shmkit-doc-close", { capacity: 4 });
   * r.unlink();
   * r.close();
   * r.close();
   * console.assert(r.closed);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#prodRole) this.#release(true);
    if (this.#consRole) this.#release(false);
    if (!this.#seg.closed) {
      // Waits still pending (async ones) give their registration back now.
      if (this.#pWaits) Atomics.sub(this.#ctl, W_PW, this.#pWaits);
      if (this.#cWaits) Atomics.sub(this.#ctl, W_CW, this.#cWaits);
    }
    this.#pWaits = this.#cWaits = 0;
    this.#closed = true;
    this.#failAll(this.#prodQ, this.#closedError(this.#enqWhat));
    this.#failAll(this.#consQ, this.#closedError(this.#deqWhat));
    this.#ctl = new Uint32Array(0);
    this.#slots = new Uint32Array(0);
    this.#words = new BigUint64Array(0);
    if (this.#owns) this.#seg.close();
  }

  /**
   * Removes the ring's segment name; processes already attached keep working. A ring in anonymous
   * memory has no name: nothing happens (as for every other object).
   *
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-unlink", { capacity: 4 });
   * r.unlink();
   * ```
   */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Checks the invariants I1..I3 over the whole ring (tests, tools; not for the hot path).
   *
   * @throws {ShmError} EBADHDR naming the first invariant that does not hold
   * @example
   * ```ts
   * import { Ring } from "./mod.ts";
   * using r = Ring.create("shmkit-doc-validate", { capacity: 4 });
   * r.validate();
   * r.unlink();
   * ```
   */
  validate(): void {
    this.#live(`Cannot validate ring "${this.#name}"`);
    const ctl = this.#ctl;
    const h = Atomics.load(ctl, W_HEAD);
    const t = Atomics.load(ctl, W_TAIL);
    const apart = (t - h) | 0;
    if (apart > this.capacity || apart < (this.#spsc ? 0 : -this.#n)) {
      throw this.#corrupt(`tail ${t} and head ${h} are ${apart} apart (I1)`);
    }
    if (this.#spsc) return;
    const n = this.#n;
    for (let i = 0; i < n; i++) {
      const s = Atomics.load(this.#slots, 2 * i + 1);
      // The position p == i (mod N) this slot belongs to, judged from the head hint.
      const p = (h + ((i - h) & this.#mask)) >>> 0;
      const d = (s - p) | 0;
      const ok = d === 0 || d === 1 || d === 2 || d === 3 || d === n || d === n + 1; // n + 1: refilled while we scanned
      if (!ok) throw this.#corrupt(`slot ${i} holds sequence ${s}, impossible near head ${h} (I3)`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // spsc internals

  #enqSpsc(value: number): boolean {
    const t = this.#pTail;
    if (((t - this.#pHead) >>> 0) >= this.capacity) {
      const h = Atomics.load(this.#ctl, W_HEAD); // A2: acquire head; pairs with R2
      const used = (t - h) >>> 0;
      if (used > this.capacity) throw this.#corrupt(`head ${h} is ${used} behind tail ${t} (I1)`);
      this.#pHead = h;
      if (used >= this.capacity) return false;
    }
    this.#slots[t & this.#mask] = value; // plain write, published by R1
    if (FAULT_ON) fault("ring.enq.before_commit");
    const nt = (t + 1) >>> 0;
    // R1: publish tail (release); pairs with A1. A plain store on x86-64 (PLAIN_PUBLISH).
    if (PLAIN_PUBLISH) this.#ctl[W_TAIL] = nt;
    else Atomics.store(this.#ctl, W_TAIL, nt);
    this.#pTail = nt;
    if (FAULT_ON) fault("ring.enq.after_commit");
    if (readFlag(this.#ctl, W_CW) !== 0) this.#wakeConsumers(); // W2
    return true;
  }

  /**
   * @internal For Channel: how many items an spsc consumer that holds the role (it dequeued before)
   * can take now, from its cached tail; the shared tail (the producer's line) is read only when
   * the cache says none, so a consumer draining a backlog does not pull that line once per item.
   */
  _spscReady(): number {
    const h = this.#cHead;
    if (this.#cTail !== h) return (this.#cTail - h) >>> 0;
    const t = Atomics.load(this.#ctl, W_TAIL); // A1, as in #deqSpsc
    const avail = (t - h) >>> 0;
    if (avail > this.capacity) throw this.#corrupt(`tail ${t} is ${avail} ahead of head ${h} (I1)`);
    this.#cTail = t;
    return avail;
  }

  /**
   * @internal For Channel ("spsc-ordered"): takes this single-producer or single-consumer ring's
   * role now (EBUSY as an enqueue or dequeue would throw); no-op when this object holds it.
   */
  _role(producer: boolean): void {
    if (this.#closed || this.#mapping.closed) throw this.#closedError(`Cannot use ring "${this.#name}"`);
    if (producer ? !this.#prodRole : !this.#consRole) this.#claim(producer);
  }

  /**
   * @internal For Channel: whether the holder of this ring's producer role is a Ring object of this
   * thread (its pid and token). Free when no object of this thread holds a producer role.
   */
  _producerHere(): boolean {
    if (localProducers.size === 0) return false;
    const ctl = this.#ctl;
    return Atomics.load(ctl, W_PROLE) === PID && localProducers.has(Atomics.load(ctl, W_PROLE + 2));
  }

  /** @internal For Channel: the spsc consumer's own head (how many items it took, mod 2^32). */
  _spscHead(): number {
    return this.#cHead;
  }

  #deqSpsc(): number | undefined {
    const h = this.#cHead;
    if (this.#cTail === h) {
      const t = Atomics.load(this.#ctl, W_TAIL); // A1: acquire tail; pairs with R1
      const avail = (t - h) >>> 0;
      if (avail > this.capacity) throw this.#corrupt(`tail ${t} is ${avail} ahead of head ${h} (I1)`);
      this.#cTail = t;
      if (avail === 0) return undefined;
    }
    const v = this.#slots[h & this.#mask];
    if (FAULT_ON) fault("ring.deq.before_take");
    const nh = (h + 1) >>> 0;
    // R2: publish head (release); pairs with A2. A plain store on x86-64 (PLAIN_PUBLISH).
    if (PLAIN_PUBLISH) this.#ctl[W_HEAD] = nh;
    else Atomics.store(this.#ctl, W_HEAD, nh);
    this.#cHead = nh;
    if (FAULT_ON) fault("ring.deq.after_take");
    if (readFlag(this.#ctl, W_PW) !== 0) this.#wakeProducers(); // W2
    return v;
  }

  /** Free slots for the spsc producer (refreshing the cached head only if fewer than `want`). */
  #freeSpsc(want: number): number {
    const t = this.#pTail;
    let free = this.capacity - ((t - this.#pHead) >>> 0);
    if (free < want) {
      const h = Atomics.load(this.#ctl, W_HEAD); // A2
      const used = (t - h) >>> 0;
      if (used > this.capacity) throw this.#corrupt(`head ${h} is ${used} behind tail ${t} (I1)`);
      this.#pHead = h;
      free = this.capacity - used;
    }
    return free;
  }

  #writeSpsc(values: ArrayLike<number>, k: number): void {
    const t = this.#pTail;
    const slots = this.#slots;
    // Two contiguous runs (before and after the wrap of the slot array), no per-item masking.
    const a = t & this.#mask;
    const first = Math.min(k, this.#n - a);
    if (k >= SET_MIN && values instanceof Uint32Array) {
      // One memmove per run; a whole-array batch without a wrap needs no subarray.
      if (first === k && values.length === k) slots.set(values, a);
      else {
        slots.set(values.subarray(0, first), a);
        if (first < k) slots.set(values.subarray(first, k), 0);
      }
    } else {
      for (let i = 0; i < first; i++) slots[a + i] = values[i];
      for (let i = first; i < k; i++) slots[i - first] = values[i];
    }
    if (FAULT_ON) fault("ring.enq.before_commit");
    const nt = (t + k) >>> 0;
    // R1: publish the batch once; pairs with A1 (plain on x86-64, PLAIN_PUBLISH).
    if (PLAIN_PUBLISH) this.#ctl[W_TAIL] = nt;
    else Atomics.store(this.#ctl, W_TAIL, nt);
    this.#pTail = nt;
    if (FAULT_ON) fault("ring.enq.after_commit");
    if (readFlag(this.#ctl, W_CW) !== 0) this.#wakeConsumers(); // W2
  }

  /**
   * Items queued for the spsc consumer: from the cached tail when it shows at least `want` (the
   * slots up to it were acquired when it was loaded), else from `tail` (A1). A consumer draining a
   * backlog in batches then reads the producer's line once per backlog, not once per batch.
   */
  #availSpsc(want: number): number {
    const h = this.#cHead;
    const cached = (this.#cTail - h) >>> 0;
    if (cached >= want) return cached;
    const t = Atomics.load(this.#ctl, W_TAIL); // A1
    const avail = (t - h) >>> 0;
    if (avail > this.capacity) throw this.#corrupt(`tail ${t} is ${avail} ahead of head ${h} (I1)`);
    this.#cTail = t;
    return avail;
  }

  #readSpsc(out: Uint32Array, k: number): void {
    const h = this.#cHead;
    const slots = this.#slots;
    const a = h & this.#mask;
    const first = Math.min(k, this.#n - a);
    if (k >= READ_SET_MIN) {
      out.set(slots.subarray(a, a + first), 0);
      if (first < k) out.set(slots.subarray(0, k - first), first);
    } else {
      for (let i = 0; i < first; i++) out[i] = slots[a + i];
      for (let i = first; i < k; i++) out[i] = slots[i - first];
    }
    if (FAULT_ON) fault("ring.deq.before_take");
    const nh = (h + k) >>> 0;
    // R2: publish the batch once; pairs with A2 (plain on x86-64, PLAIN_PUBLISH).
    if (PLAIN_PUBLISH) this.#ctl[W_HEAD] = nh;
    else Atomics.store(this.#ctl, W_HEAD, nh);
    this.#cHead = nh;
    if (FAULT_ON) fault("ring.deq.after_take");
    if (readFlag(this.#ctl, W_PW) !== 0) this.#wakeProducers(); // W2
  }

  // -------------------------------------------------------------------------------------------
  // CAS-mode internals (mpsc, spmc, mpmc)

  /** 64-bit CAS (seq_cst) of the word at `byteOff` (a multiple of 8) from the ring's start. */
  #cas64(byteOff: number, expLo: number, expHi: number, desLo: number, desHi: number): boolean {
    io32[0] = expLo;
    io32[1] = expHi;
    io32[2] = desLo;
    io32[3] = desHi;
    if (JS_CAS) {
      // Never operate on views of a closed mapping (detached, or tombstoned on Node 20).
      if (this.#mapping.closed) throw this.#closedError(`Cannot use ring "${this.#name}"`);
      const exp = io64[0];
      return Atomics.compareExchange(this.#words, byteOff >>> 3, exp, io64[1]) === exp;
    }
    const r = sys.shmkit_atomic_cas_u64(this.#mapping.id, this.#base + byteOff, 5, io8);
    if (r < 0) throw this.#closedError(`Cannot use ring "${this.#name}"`);
    return r === 1;
  }

  /** Commits `value` at the tail (seqAdd 1: FULL) or places it PENDING (seqAdd 2, bulk). */
  #enqCas(value: number, seqAdd = 1): boolean {
    const ctl = this.#ctl;
    const slots = this.#slots;
    const n = this.#n;
    const cap = this.capacity;
    for (let step = 0;; step++) {
      if (step === MAX_STEPS) return false; // bounded: the others' progress kept us from a slot
      const t = Atomics.load(ctl, W_TAIL); // tail hint
      const i = (t & this.#mask) << 1;
      const s = Atomics.load(slots, i + 1); // A3: slot seq; pairs with C2 (take) and C1 (other producers)
      const d = (s - t) | 0;
      if (d === 0) {
        if (((t - this.#headCache) >>> 0) >= cap) {
          const h = Atomics.load(ctl, W_HEAD); // head hint: trails the true head, so the check is conservative
          const used = (t - h) | 0;
          if (used < 0) {
            // Our tail is stale (the ring moved on), unless it is not: the head hint only passes
            // taken positions (I4), so a head ahead of a tail whose slot is still EMPTY for it is
            // impossible. Re-read both (seq and tail only move forward) before calling it corrupt.
            if (Atomics.load(slots, i + 1) === s && Atomics.load(ctl, W_TAIL) === t) {
              throw this.#corrupt(`head ${h} is ahead of tail ${t}, whose slot ${i >> 1} is still empty (I1)`);
            }
            continue;
          }
          if (used > cap) throw this.#corrupt(`head ${h} is ${used} behind tail ${t} (I1)`);
          this.#headCache = h;
          if (used >= cap) {
            if (this.#helpHead(h)) continue;
            return false;
          }
        }
        const lo = Atomics.load(slots, i);
        if (FAULT_ON && seqAdd === 1) fault("ring.enq.before_commit");
        // C1: commit value and FULL (or PENDING) in one 64-bit CAS (seq_cst); pairs with A4.
        if (this.#cas64(RING_HEADER_SIZE + i * 4, lo, t, value, (t + seqAdd) >>> 0)) {
          if (FAULT_ON && seqAdd === 1) fault("ring.enq.after_commit");
          Atomics.compareExchange(ctl, W_TAIL, t, (t + 1) >>> 0); // R3: advance the tail hint (anyone may)
          if (FAULT_ON && seqAdd === 1) fault("ring.enq.after_publish");
          this.#lastPos = t;
          if (seqAdd === 1 && readFlag(ctl, W_CW) !== 0) this.#wakeConsumers(); // W2
          return true;
        }
      } else if (d === 1 || d === 2 || d === 3 || d === n) {
        // Position t is FULL, PENDING, CLAIMED or taken but the hint trails (its producer was slower, or died).
        Atomics.compareExchange(ctl, W_TAIL, t, (t + 1) >>> 0); // R3 (helping)
      } else if (d === 1 - n || d === 2 - n || d === 3 - n) {
        // The slot still holds position t - N (FULL or PENDING): full (capacity == N), unless a
        // take happened since.
        const h = Atomics.load(ctl, W_HEAD);
        if (((t - h) >>> 0) >= cap) {
          this.#headCache = h;
          if (this.#helpHead(h)) continue;
          return false;
        }
        // The head hint passed position t - N, so it was taken (seq moved on): unless the slot
        // still reads the same, which no live peer can produce.
        if (Atomics.load(slots, i + 1) === s && Atomics.load(ctl, W_TAIL) === t) {
          throw this.#corrupt(`slot ${i >> 1} holds sequence ${s}, still unconsumed behind head ${h} (I3)`);
        }
      } else if (Atomics.load(ctl, W_TAIL) === t) {
        throw this.#corrupt(`slot ${i >> 1} holds sequence ${s}, impossible for tail ${t} (I3)`);
      }
    }
  }

  #deqCas(): number | undefined {
    const ctl = this.#ctl;
    const slots = this.#slots;
    const n = this.#n;
    for (let step = 0;; step++) {
      if (step === MAX_STEPS) return undefined; // bounded: the others' progress kept us from an item
      const h = Atomics.load(ctl, W_HEAD); // head hint
      const i = (h & this.#mask) << 1;
      const s = Atomics.load(slots, i + 1); // A4: slot seq; pairs with C1
      const d = (s - h) | 0;
      if (d === 1) {
        // The value of a FULL slot never changes (producers only write EMPTY slots), and seq only
        // moves forward, so if the take below finds seq still h + 1, v is the item of h.
        const v = Atomics.load(slots, i);
        if (FAULT_ON) fault("ring.deq.before_take");
        // C2: take (FULL -> EMPTY for h + N) with a 32-bit CAS of seq (seq_cst); pairs with A3.
        if (Atomics.compareExchange(slots, i + 1, s, (h + n) >>> 0) === s) {
          if (FAULT_ON) fault("ring.deq.after_take");
          Atomics.compareExchange(ctl, W_HEAD, h, (h + 1) >>> 0); // R4: advance the head hint (anyone may)
          if (FAULT_ON) fault("ring.deq.after_publish");
          if (readFlag(ctl, W_PW) !== 0) this.#wakeProducers(); // W2
          return v;
        }
      } else if (d === 0) {
        return undefined; // EMPTY for h: positions fill in order (I4), so nothing is queued
      } else if (d === 2 || d === 3) {
        // PENDING or CLAIMED: a bulk operation is in progress; nothing is deliverable before it.
        const r = this.#recoverBulk();
        if (r === BULK_ALIVE) return undefined;
        if (r === BULK_FREE && Atomics.load(slots, i + 1) === s && Atomics.load(ctl, W_BLOCK) === 0) {
          throw this.#corrupt(
            `slot ${i >> 1} is PENDING/CLAIMED for position ${h} with no bulk operation in progress (I3)`,
          );
        }
      } else if (d === n) {
        Atomics.compareExchange(ctl, W_HEAD, h, (h + 1) >>> 0); // R4 (helping): taken, hint trails
      } else if (Atomics.load(ctl, W_HEAD) === h) {
        throw this.#corrupt(`slot ${i >> 1} holds sequence ${s}, impossible for head ${h} (I3)`);
      }
    }
  }

  /**
   * Multi-producer enqueueBulk: under the bulk lock, place every value PENDING (invisible), then
   * store bulkPhase = 1 (the commit point) and turn them FULL in order. Too little room: turn the
   * placed ones into taken (skipped) positions. A dead holder is recovered by #recoverBulk.
   */
  #enqBulkMulti(values: ArrayLike<number>, n: number): boolean {
    if (n > this.capacity) return false;
    const ctl = this.#ctl;
    // Cheap pre-check, so that a batch that cannot fit does not burn positions by placing and
    // skipping (that still happens when other producers take the room meanwhile).
    const h = this.#settleHead();
    if (((Atomics.load(ctl, W_TAIL) - h) | 0) + n > this.capacity) return false;
    if (!this.#lockBulk()) return false;
    if (this.#bulkPos.length < n) this.#bulkPos = new Uint32Array(Math.max(n, this.#bulkPos.length * 2));
    const pos = this.#bulkPos;
    let k = 0;
    try {
      Atomics.store(ctl, W_BPHASE, 0); // placing
      try {
        for (; k < n; k++) {
          if (!this.#enqCas(values[k], 2)) break;
          pos[k] = this.#lastPos;
          if (FAULT_ON) fault("ring.bulk.after_place");
        }
      } catch (e) {
        for (let j = 0; j < k; j++) this.#resolvePending(pos[j], false);
        throw e;
      }
      if (k < n) {
        for (let j = 0; j < k; j++) this.#resolvePending(pos[j], false);
        return false;
      }
      Atomics.store(ctl, W_BPHASE, 1); // B1: the commit point of the whole batch (seq_cst)
      for (let j = 0; j < n; j++) {
        this.#resolvePending(pos[j], true);
        if (FAULT_ON) fault("ring.bulk.after_commit");
      }
    } finally {
      Atomics.store(ctl, W_BPHASE, 0);
      this.#cas64(RING.bulkLock, PID, START_LO, 0, 0); // B2: release
    }
    if (readFlag(ctl, W_CW) !== 0) this.#wakeConsumers(); // W2
    return true;
  }

  /**
   * Multi-consumer dequeueBulk: under the bulk lock, claim `count` FULL slots from the head (seq
   * p + 1 -> p + 3, value kept), then store bulkPhase = 1 (the commit point) and mark them taken.
   * Too few items: make the claimed ones FULL again. A dead holder is recovered by #recoverBulk.
   */
  #deqBulkMulti(out: Uint32Array, count: number): number {
    if (count > this.capacity) return 0;
    if (this.#countFull(count) < count) return 0; // cheap pre-check, no claims
    if (!this.#lockBulk()) return 0;
    const ctl = this.#ctl;
    const slots = this.#slots;
    const n = this.#n;
    if (this.#bulkPos.length < count) this.#bulkPos = new Uint32Array(Math.max(count, this.#bulkPos.length * 2));
    const pos = this.#bulkPos;
    let k = 0;
    try {
      Atomics.store(ctl, W_BPHASE, 0); // claiming
      try {
        let p = Atomics.load(ctl, W_HEAD);
        for (let step = 0; k < count && step < MAX_STEPS + count; step++) {
          const i = (p & this.#mask) << 1;
          const s = Atomics.load(slots, i + 1);
          const d = (s - p) | 0;
          if (d === 1) {
            const v = Atomics.load(slots, i); // stable while FULL (see #deqCas)
            // B4: claim (seq_cst 32-bit CAS of seq), value kept for a revert.
            if (Atomics.compareExchange(slots, i + 1, s, (p + 3) >>> 0) !== s) continue;
            out[k] = v;
            pos[k++] = p;
            if (FAULT_ON) fault("ring.bulk.after_claim");
          } else if (d !== n) break; // EMPTY (or anything but taken): not enough items
          p = (p + 1) >>> 0;
        }
      } catch (e) {
        for (let j = 0; j < k; j++) this.#resolveClaimed(pos[j], false);
        throw e;
      }
      if (k < count) {
        for (let j = 0; j < k; j++) this.#resolveClaimed(pos[j], false);
        // Consumers that found these slots CLAIMED may have parked: the items are back.
        if (k > 0 && readFlag(ctl, W_CW) !== 0) this.#wakeConsumers(); // W2
        return 0;
      }
      Atomics.store(ctl, W_BPHASE, 1); // B1: the commit point of the whole batch (seq_cst)
      for (let j = 0; j < count; j++) {
        this.#resolveClaimed(pos[j], true);
        if (FAULT_ON) fault("ring.bulk.after_take");
      }
      this.#settleHead(); // R4 over the taken slots
    } finally {
      Atomics.store(ctl, W_BPHASE, 0);
      this.#cas64(RING.bulkLock, PID, START_LO, 0, 0); // B2: release
    }
    if (readFlag(ctl, W_PW) !== 0) this.#wakeProducers(); // W2
    return count;
  }

  /** CLAIMED position p -> taken (commit) or FULL again (abort). Only the bulk lock holder calls this. */
  #resolveClaimed(p: number, commit: boolean): void {
    const i = ((p & this.#mask) << 1) + 1;
    const claimed = (p + 3) >>> 0;
    if (Atomics.compareExchange(this.#slots, i, claimed, (commit ? p + this.#n : p + 1) >>> 0) !== claimed) {
      throw this.#corrupt(`CLAIMED slot of position ${p} changed under the bulk lock`);
    }
  }

  /** PENDING position p -> FULL (commit) or taken (abort). Only the bulk lock holder calls this. */
  #resolvePending(p: number, commit: boolean): void {
    const i = ((p & this.#mask) << 1) + 1;
    const pending = (p + 2) >>> 0;
    // B3: seq_cst CAS; pairs with A4 (consumers wait at a PENDING slot until it changes).
    if (Atomics.compareExchange(this.#slots, i, pending, (commit ? p + 1 : p + this.#n) >>> 0) !== pending) {
      throw this.#corrupt(`PENDING slot of position ${p} changed under the bulk lock`);
    }
  }

  /** Takes the bulk lock (64-bit CAS of (pid, start)), recovering it from a dead holder. */
  #lockBulk(): boolean {
    const ctl = this.#ctl;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const pid = Atomics.load(ctl, W_BLOCK);
      const st = Atomics.load(ctl, W_BLOCK + 1);
      if (pid === 0) {
        if (this.#cas64(RING.bulkLock, 0, st, PID, START_LO)) return true;
      } else if (this.#recoverBulk() === BULK_ALIVE && (attempt & 63) === 63) {
        // Another process's bulk is in progress: let it run.
        const until = performance.now() + 0.05;
        while (performance.now() < until) { /* brief pause */ }
      }
    }
    return false;
  }

  /**
   * Recovers the bulk lock from a dead holder: completes its PENDING slots if it had reached the
   * commit point (bulkPhase 1), else skips them; then frees the lock.
   */
  #recoverBulk(): number {
    const ctl = this.#ctl;
    const pid = Atomics.load(ctl, W_BLOCK);
    const st = Atomics.load(ctl, W_BLOCK + 1);
    if (pid === 0) return BULK_FREE;
    if ((pid === PID && st === START_LO) || holderAlive(pid, st)) return BULK_ALIVE;
    if (!this.#cas64(RING.bulkLock, pid, st, PID, START_LO)) return BULK_RECOVERED; // someone else did
    const commit = Atomics.load(ctl, W_BPHASE) === 1;
    const h = Atomics.load(ctl, W_HEAD);
    const n = this.#n;
    for (let i = 0; i < n; i++) {
      const p = (h + ((i - h) & this.#mask)) >>> 0;
      const w = 2 * i + 1;
      const s = Atomics.load(this.#slots, w);
      if (s === ((p + 2) >>> 0)) {
        // PENDING (producer bulk): FULL if committed, else skipped.
        Atomics.compareExchange(this.#slots, w, s, (commit ? p + 1 : p + n) >>> 0);
      } else if (s === ((p + 3) >>> 0)) {
        // CLAIMED (consumer bulk): taken if committed, else FULL again (redelivered).
        Atomics.compareExchange(this.#slots, w, s, (commit ? p + n : p + 1) >>> 0);
      }
    }
    Atomics.store(ctl, W_BPHASE, 0);
    this.#cas64(RING.bulkLock, PID, START_LO, 0, 0);
    if (readFlag(ctl, W_CW) !== 0) this.#wakeConsumers();
    if (readFlag(ctl, W_PW) !== 0) this.#wakeProducers();
    return BULK_RECOVERED;
  }

  /** W2: one futex wake per sleep episode: only the waker that clears the sleep flag calls wake. */
  #wakeConsumers(): void {
    if (Atomics.exchange(this.#ctl, W_CS, 0) !== 0) futexWake(this.#mapping, this.#base + RING.tail);
  }

  /** W2, producer side. */
  #wakeProducers(): void {
    if (Atomics.exchange(this.#ctl, W_PS, 0) !== 0) futexWake(this.#mapping, this.#base + RING.head);
  }

  /** Advances the head hint past a taken slot (a consumer died before doing it). True if it moved. */
  #helpHead(h: number): boolean {
    const s = Atomics.load(this.#slots, ((h & this.#mask) << 1) + 1);
    if (((s - h) | 0) !== this.#n) return false;
    Atomics.compareExchange(this.#ctl, W_HEAD, h, (h + 1) >>> 0); // R4 (helping)
    return true;
  }

  /** Loads the head hint and helps it past taken slots (at most MAX_STEPS of them); returns it. */
  #settleHead(): number {
    let h = Atomics.load(this.#ctl, W_HEAD);
    for (let step = 0; step < MAX_STEPS && this.#helpHead(h); step++) h = Atomics.load(this.#ctl, W_HEAD);
    return h;
  }

  /** Single producer (spmc): brings the tail hint to the true tail; returns the items queued. */
  #syncTail(): number {
    for (let step = 0;; step++) {
      if (step === MAX_STEPS) return this.capacity; // bounded: report no room, retried later
      const t = Atomics.load(this.#ctl, W_TAIL);
      const s = Atomics.load(this.#slots, ((t & this.#mask) << 1) + 1);
      const d = (s - t) | 0;
      if (d === 1 || d === 2 || d === 3 || d === this.#n) {
        Atomics.compareExchange(this.#ctl, W_TAIL, t, (t + 1) >>> 0); // R3 (helping)
        continue;
      }
      const h = this.#settleHead();
      const used = (t - h) | 0;
      if (used < 0 || used > this.capacity) throw this.#corrupt(`tail ${t} and head ${h} are ${used} apart (I1)`);
      this.#headCache = h;
      return used;
    }
  }

  /** Single consumer (mpsc): counts FULL slots from the head, up to `max`. */
  #countFull(max: number): number {
    const h = this.#settleHead();
    let k = 0;
    while (k < max) {
      const p = (h + k) >>> 0;
      if (Atomics.load(this.#slots, ((p & this.#mask) << 1) + 1) !== ((p + 1) >>> 0)) break;
      k++;
    }
    return k;
  }

  // -------------------------------------------------------------------------------------------
  // Roles

  #claim(producer: boolean): void {
    const w = producer ? W_PROLE : W_CROLE;
    const side = producer ? "producer" : "consumer";
    const what = producer ? this.#enqWhat : this.#deqWhat;
    if (this.#closed) throw this.#closedError(what);
    const ctl = this.#ctl;
    for (let attempt = 0; attempt < 64; attempt++) {
      const pid = Atomics.load(ctl, w);
      const st = Atomics.load(ctl, w + 1);
      if (pid === PID && st === START_LO) {
        const tok = Atomics.load(ctl, w + 2);
        if (tok === this.#token) break;
        throw new ShmError(
          "EBUSY",
          `${what}: another Ring object in this process holds the ${side} role of this ${this.mode} ring (EBUSY)`,
        );
      }
      if (pid !== 0 && holderAlive(pid, st)) {
        throw new ShmError("EBUSY", `${what}: process ${pid} holds the ${side} role of this ${this.mode} ring (EBUSY)`);
      }
      // Free, or its holder is dead: take it with one 64-bit CAS on (pid, start).
      if (this.#cas64(w * 4, pid, st, PID, START_LO)) {
        if (FAULT_ON) fault("ring.role.after_claim");
        Atomics.store(ctl, w + 2, this.#token);
        break;
      }
      if (attempt === 63) {
        throw new ShmError("EBUSY", `${what}: the ${side} role of this ${this.mode} ring keeps changing hands (EBUSY)`);
      }
    }
    // Start from the shared state: a previous holder may have left mid-operation.
    if (producer) {
      this.#prodRole = true;
      localProducers.add(this.#token);
      this.#pTail = Atomics.load(ctl, W_TAIL);
      this.#pHead = Atomics.load(ctl, W_HEAD);
    } else {
      this.#consRole = true;
      this.#cHead = Atomics.load(ctl, W_HEAD);
      this.#cTail = this.#cHead;
    }
  }

  #release(producer: boolean): void {
    const w = producer ? W_PROLE : W_CROLE;
    if (producer) {
      this.#prodRole = false;
      localProducers.delete(this.#token);
    } else this.#consRole = false;
    if (this.#seg.closed) return;
    Atomics.store(this.#ctl, w + 2, 0);
    this.#cas64(w * 4, PID, START_LO, 0, 0);
  }

  // -------------------------------------------------------------------------------------------
  // Errors

  #corrupt(why: string): ShmError {
    return new ShmError("EBADHDR", `Ring "${this.#name}" is corrupt: ${why} (EBADHDR)`);
  }

  /** ECLOSED once this object, or the segment it lives in, is closed (views may be detached or
   * tombstoned with zero pages on Node 20: never operate on them). */
  #live(what: string): void {
    if (this.#closed || this.#mapping.closed) throw this.#closedError(what);
  }

  #closedError(what: string): ShmError {
    return new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
  }
}

/** One asynchronous caller waiting in this process (Ring#waitLocal). */
interface LocalWaiter {
  settled: boolean;
  /** Tries once; on success it settles itself and returns true. */
  attempt(): boolean;
  fail(e: unknown): void;
}

/** The FIFO of one side's asynchronous waiters, and its parker's state. */
interface LocalQueue {
  items: LocalWaiter[];
  head: number;
  /** Waiters not settled yet. */
  live: number;
  parking: boolean;
  /** Ends the parker's current wait early. */
  wake: AbortController | undefined;
}

function newQueue(): LocalQueue {
  return { items: [], head: 0, live: 0, parking: false, wake: undefined };
}

/** True if (pid, low 32 bits of its start time) names a live process. */
function holderAlive(pid: number, startLo: number): boolean {
  // A pid above Linux's PID_MAX_LIMIT (2^22) names no process (a corrupt role or lock word).
  if (pid <= 0 || pid > 0x400000) return false;
  if (!processAlive(pid, -1)) return false;
  const st = sys.shmkit_proc_start_time(pid);
  if (st < 0) return false;
  return (st >>> 0) === startLo || (Math.max(0, st) % 4294967296) === startLo;
}

function checkValues(values: ArrayLike<number>, what: string): number {
  if (values === null || typeof values !== "object" || typeof values.length !== "number") {
    throw new TypeError(`${what}: values must be an array-like of numbers`);
  }
  const n = values.length;
  if (values instanceof Uint32Array) return n;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if ((v >>> 0) !== v) throw badValue(v, what);
  }
  return n;
}

function checkOut(out: Uint32Array, count: number, what: string): void {
  if (!(out instanceof Uint32Array)) throw new TypeError(`${what}: out must be a Uint32Array`);
  if (!Number.isInteger(count) || count < 0 || count > out.length) {
    throw new RangeError(`${what}: count must be an integer in 0..${out.length}, got ${count}`);
  }
}

registerKind("shmkit.ring", (h) => Ring.attach(h as unknown as RingHandle));
