/**
 * Mutex: a robust, futex-based lock in shared memory, usable from any number of processes of any
 * runtime at once. A holder that dies (or closes its Mutex) inside the critical section does not
 * deadlock anyone: the next locker gets the lock with `recovered === true` and repairs the data.
 *
 * Byte layout (little-endian, at a 64-byte aligned byteOffset; docs/layout/locks.md is the same):
 *
 * | off | size | field      | writer            | reader   | note                                         |
 * |-----|------|------------|-------------------|----------|----------------------------------------------|
 * | 0   | 64   | common     | init              | open     | src/layout.ts, kind 4 ("mutex")              |
 * | 64  | 4    | lock       | lockers, unlocker | lockers  | u32 lock word, bits below                    |
 * | 68  | 4    | slotCount  | init              | open     | N participant slots, 1..MUTEX_MAX_SLOTS      |
 * | 72  | 4    | recoveries | recoverers        | stats    | free-running count of dead-owner takeovers   |
 * | 76  | 52   | reserved   | -                 | -        | zero                                         |
 * | 128 | 8*N  | slots[N]   | claimers          | lockers  | u64 owner identity, 0 = free slot            |
 *
 * The object is `alignUp(128 + 8 * N, 64)` bytes. The lock word:
 *
 * | bits   | field     | meaning                                                                    |
 * |--------|-----------|----------------------------------------------------------------------------|
 * | 0..15  | owner     | 0 = free, k = held by the process registered in slots[k - 1]               |
 * | 16     | ABANDONED | free, and the last holder left without unlocking: the next holder recovers |
 * | 17..30 | -         | zero (any other value is a corrupt word: EBADHDR)                          |
 * | 31     | WAITERS   | someone may sleep on the word: the unlocker must FUTEX_WAKE                |
 *
 * A slot identity is `startTime * 2^22 + pid` (pid < 2^22 on Linux; startTime in clock ticks since
 * boot from /proc/<pid>/stat, 2^42 - 1 when unknown). A process claims a slot (one 64-bit CAS,
 * 0 -> identity) before its first lock, and frees it on close().
 *
 * Why the owner record and the lock state can never disagree: the lock word holds only a slot
 * number, and taking, handing over or recovering the lock is one 32-bit CAS on it. The identity
 * in the slot was written (one 64-bit CAS) before the process could ever name that slot in the
 * lock word, and a slot named by the lock word is never reused: a claimer skips it. So a crash at
 * any instruction leaves either the old word (the dead process never held it) or a word naming a
 * slot whose identity is the dead process (it held it: the next locker recovers).
 *
 * Invariants (checked where the value is read):
 *  I1: owner <= N, and no bit outside owner | ABANDONED | WAITERS is set.
 *  I2: ABANDONED is only set while owner == 0.
 *  I3: a slot named by the lock word is not claimed by another process while named.
 *  I4: only a process whose identity is dead (not running, zombie, or a pid with another start
 *      time) is ever robbed; a stopped (SIGSTOP) or slow holder is alive and keeps the lock.
 *
 * Liveness: a waiter sleeps on the lock word in slices of {@linkcode LIVENESS_SLICE_MS}; when a
 * slice passes without a wake, it checks the holder's identity, so a dead holder is noticed within
 * one slice (about 200 ms). The first contended attempt checks at once.
 *
 * @module
 */
import { checkKeys, ShmError } from "./errors.ts";
import { alignUp, COMMON_HEADER_SIZE, OBJECT_ALIGN, publishReady, readHeader, writeHeader } from "./layout.ts";
import { placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { checkHandle, type Handle, registerKind } from "./handle.ts";
import { PID, START_TIME, sys } from "./sys.ts";
import { futexWait, futexWake, timeoutError, timeoutOf, waitAsync, type WaitOptions } from "./wait.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";

/** Byte offsets of the mutex fields, from the object's byteOffset. */
export const MUTEX = {
  lock: 64,
  slotCount: 68,
  recoveries: 72,
  slots: 128,
} as const;

/** Size of the mutex header (common header + mutex fields), before the slot table. */
export const MUTEX_HEADER_SIZE = 128;
/** Default number of participant slots. */
export const MUTEX_DEFAULT_SLOTS = 64;
/** The most participant slots a mutex can have (the owner field is 16 bits). */
export const MUTEX_MAX_SLOTS = 0xffff;
/** Lock word: the owner slot number (0 = free). */
export const LOCK_OWNER_MASK = 0xffff;
/** Lock word: free, and the previous holder left without unlocking. */
export const LOCK_ABANDONED = 0x10000;
/** Lock word: a process may sleep on the word; the unlocker wakes one. */
export const LOCK_WAITERS = 0x80000000;
/** A waiter re-checks the holder's liveness after this many ms without a wake. */
export const LIVENESS_SLICE_MS = 200;

const VALID_BITS = LOCK_OWNER_MASK | LOCK_ABANDONED | LOCK_WAITERS;
const SPIN = 32;
/** Most CAS retries of one attempt on the lock word: each failure means the word changed under
 * us (some process's progress); past this the attempt reports "busy" and a blocking caller retries
 * within its timeout. */
const MAX_STEPS = 1024;
// Indices into the Uint32Array over [byteOffset + 64, byteOffset + 128).
const I_LOCK = 0;
// index 1 is slotCount (read once at open through a DataView)
const I_RECOVERIES = 2;

const PID_BITS = 22n;
const UNKNOWN_START = 2 ** 42 - 1;

/** This process as a slot identity: start * 2^22 + pid. */
export const SELF_ID: bigint = (BigInt(START_TIME >= 0 ? START_TIME : UNKNOWN_START) << PID_BITS) | BigInt(PID);
const SELF_LO = Number(SELF_ID & 0xffffffffn);
const SELF_HI = Number(SELF_ID >> 32n);

/** Decodes a slot identity into pid and start time (-1 when unknown). */
export function decodeIdentity(id: bigint): { pid: number; startTime: number } {
  const start = Number(id >> PID_BITS);
  return { pid: Number(id & 0x3fffffn), startTime: start === UNKNOWN_START ? -1 : start };
}

/**
 * True unless the identity is certainly dead: 0 (free), not running, a zombie, or a pid now used
 * by a process with another start time. An unreadable /proc entry counts as alive (never rob).
 */
function identityAlive(id: bigint): boolean {
  if (id === 0n) return false;
  if (id === SELF_ID) return true;
  const start = Number(id >> PID_BITS);
  const pid = Number(id & 0x3fffffn);
  if (pid === 0) return false;
  return sys.shmkit_proc_alive(pid, start === UNKNOWN_START ? -1 : start) !== 0;
}

/** The keys of MutexOptions (create, init). */
const MUTEX_KEYS = ["slots", "fileMode"] as const;

/** Options of {@linkcode Mutex.create}, {@linkcode Mutex.init} and {@linkcode Mutex.byteLength}. */
export interface MutexOptions {
  /**
   * Participant slots (default 64): how many Mutex objects, across all processes, may use the lock
   * at the same time. A process takes one slot per Mutex object on its first lock and frees it on
   * close(); slots of dead processes are reused.
   */
  slots?: number;
  /** File mode of the new segment (create only; default 0o600). */
  fileMode?: number;
}

/** The handle of a Mutex: JSON-safe, reopened by {@linkcode Mutex.attach} in any process. */
export interface MutexHandle extends Handle {
  /** Always `"shmkit.mutex"`. */
  readonly kind: "shmkit.mutex";
  /** Where the mutex starts in its segment. */
  readonly byteOffset: number;
  /** The segment that holds it. */
  readonly segment: SharedMemoryHandle;
}

/**
 * Proof of holding a lock. `using g = m.lock()` unlocks at the end of the scope.
 *
 * `recovered` is true when the previous holder died (or closed its Mutex) while holding the lock:
 * the data it protects may be half-updated, and the new holder is expected to repair it.
 */
export interface LockGuard extends Disposable {
  /** True if the previous holder died inside the critical section; repair the protected data. */
  readonly recovered: boolean;
  /**
   * Releases the lock.
   * @throws {ShmError} EPERM when this guard no longer holds the lock (unlocked twice),
   * ECLOSED when its Mutex was closed (the lock was abandoned then)
   */
  unlock(): void;
}

// Results of one acquisition attempt.
const GOT = 0;
const GOT_RECOVERED = 1;
const BUSY_OTHER = 2;
const BUSY_SELF = 3;

/** @internal The guard handed out by a Mutex (one per Mutex object, reused by every lock). */
export class Guard implements LockGuard {
  /** True if the previous holder died inside the critical section. */
  recovered = false;
  /** @internal The Mutex this guard belongs to. */
  readonly mutex: Mutex;

  constructor(mutex: Mutex) {
    this.mutex = mutex;
  }

  /** Releases the lock; throws EPERM when already released. */
  unlock(): void {
    unlockOf(this.mutex);
  }

  /** Releases the lock if this guard still holds it (no error after an explicit unlock()). */
  [Symbol.dispose](): void {
    if (heldBy(this.mutex)) unlockOf(this.mutex);
  }
}

let unlockOf: (m: Mutex) => void;
let heldBy: (m: Mutex) => boolean;

/**
 * A robust inter-process mutex in shared memory (a futex lock word plus a table of owner
 * identities).
 *
 * Role contract: any number of processes (Deno, Bun, Node, or anything that follows
 * docs/LAYOUT.md) lock and unlock it; at most one holds it at a time. Ownership is per process:
 * Worker threads of one process count as the same owner. Within one process:
 *  - a second blocking {@linkcode lock} while this process holds the lock (through any Mutex
 *    object) throws `EBUSY` at once instead of deadlocking the thread; {@linkcode tryLock}
 *    returns undefined;
 *  - {@linkcode lockAsync} waits (without blocking the event loop) for the in-process holder too,
 *    like an async mutex.
 * If the holder dies or closes its Mutex while holding the lock, the next locker gets it with
 * `guard.recovered === true`. A stopped or slow holder is never robbed.
 *
 * Each Mutex object hands out one reusable guard (no allocation per lock): a guard is valid from
 * lock until unlock; do not keep it afterwards.
 *
 * @example
 * ```ts
 * import { Mutex } from "./mod.ts";
 * using m = Mutex.create(`doc-mutex-${Date.now()}`);
 * {
 *   using g = m.lock({ timeout: 1000 });
 *   if (g.recovered) {
 *     // the previous holder died inside: repair the protected data here
 *   }
 *   // critical section
 * }
 * m.unlink();
 * ```
 */
export class Mutex implements Disposable {
  readonly #seg: SharedMemory;
  readonly #ownsSegment: boolean;
  readonly #offset: number;
  readonly #lockOff: number;
  readonly #what: string;
  readonly #n: number;
  readonly #u32: Uint32Array;
  readonly #ids: BigUint64Array;
  readonly #ids32: Uint32Array;
  readonly #guard: Guard;
  #slot = 0;
  #held = false;
  #closed = false;

  static {
    unlockOf = (m) => m.#unlock();
    heldBy = (m) => m.#held;
  }

  private constructor(seg: SharedMemory, offset: number, n: number, owns: boolean) {
    this.#seg = seg;
    this.#ownsSegment = owns;
    this.#offset = offset;
    this.#lockOff = offset + MUTEX.lock;
    this.#n = n;
    this.#what = seg.name === null
      ? `mutex at ${offset} of anonymous memory`
      : offset === 0
      ? `mutex "${seg.name}"`
      : `mutex at ${offset} of "${seg.name}"`;
    this.#u32 = seg.view(Uint32Array, offset + MUTEX.lock, (MUTEX.slots - MUTEX.lock) / 4);
    this.#ids = seg.view(BigUint64Array, offset + MUTEX.slots, n);
    this.#ids32 = seg.view(Uint32Array, offset + MUTEX.slots, 2 * n);
    this.#guard = new Guard(this);
  }

  /**
   * Bytes a mutex with these options occupies (a multiple of 64).
   * @param options `slots` (default 64)
   * @returns the byte length
   * @throws {RangeError} for a slot count outside 1..65535
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * console.assert(Mutex.byteLength({ slots: 8 }) === 192);
   * ```
   */
  static byteLength(options: MutexOptions = {}): number {
    return alignUp(MUTEX.slots + 8 * slotsOf(options), OBJECT_ALIGN);
  }

  /**
   * Formats a mutex at `byteOffset` of `segment` (unlocked, all slots free) and attaches it. The
   * segment stays owned by the caller.
   * @param segment the segment to place it in
   * @param byteOffset a multiple of 64 with room for {@linkcode Mutex.byteLength} bytes
   * @param options `slots`
   * @returns the mutex
   * @throws {RangeError} when it does not fit, {@linkcode ShmError} EINVAL for a misaligned offset
   * @example
   * ```ts
   * import { Mutex, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * using m = Mutex.init(seg, 0);
   * m.lock().unlock();
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: MutexOptions = {}): Mutex {
    checkKeys(options, MUTEX_KEYS, "Cannot init mutex");
    const n = slotsOf(options);
    const len = Mutex.byteLength(options);
    checkPlacement(segment, byteOffset, len, "Cannot init mutex");
    const buf = segment.buffer;
    writeHeader(buf, byteOffset, "mutex", MUTEX_HEADER_SIZE, len);
    new Uint8Array(buf, byteOffset + COMMON_HEADER_SIZE, len - COMMON_HEADER_SIZE).fill(0);
    new DataView(buf, byteOffset).setUint32(MUTEX.slotCount, n, true);
    publishReady(buf, byteOffset); // release: the zeroed word and table are visible before "ready"
    return new Mutex(segment, byteOffset, n, false);
  }

  /**
   * Attaches the mutex at `byteOffset` of `segment`, validating its header.
   * @param segment the segment holding it (stays owned by the caller)
   * @param byteOffset where it starts
   * @returns the mutex
   * @throws {ShmError} EBADHDR when no valid mutex is there
   * @example
   * ```ts
   * import { Mutex, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * Mutex.init(seg, 64).close();
   * using m = Mutex.at(seg, 64);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): Mutex {
    return Mutex.#at(segment, byteOffset, false, `Cannot attach mutex at ${byteOffset}`);
  }

  static #at(segment: SharedMemory, byteOffset: number, owns: boolean, what: string): Mutex {
    const buf = segment.buffer;
    const h = readHeader(buf, byteOffset, "mutex", what, undefined, undefined, MUTEX_HEADER_SIZE + 8);
    const bad = (why: string) => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    if (h.headerSize !== MUTEX_HEADER_SIZE) throw bad(`header size ${h.headerSize}, expected ${MUTEX_HEADER_SIZE}`);
    const n = new DataView(buf, byteOffset).getUint32(MUTEX.slotCount, true); // read once
    if (n < 1 || n > MUTEX_MAX_SLOTS) throw bad(`impossible slot count ${n}`);
    if (h.byteLength !== alignUp(MUTEX.slots + 8 * n, OBJECT_ALIGN)) {
      throw bad(`byte length ${h.byteLength} does not match ${n} slots`);
    }
    const m = new Mutex(segment, byteOffset, n, owns);
    m.#word(); // I1 on the current lock word
    return m;
  }

  /**
   * Creates a segment named `name` holding one mutex (exclusive: EEXIST when the name is taken).
   * @param name the segment name
   * @param options `slots`, `fileMode`
   * @returns the mutex, which owns its segment
   * @throws {ShmError} EEXIST, EINVAL for a bad name, EACCES
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-create-${Date.now()}`);
   * m.unlink();
   * ```
   */
  static create(name: string | null, options: MutexOptions = {}): Mutex {
    checkKeys(options, MUTEX_KEYS, "Cannot create mutex");
    const len = Mutex.byteLength(options);
    const seg = renamed(() => SharedMemory.create(name, len, { mode: options.fileMode }), "Cannot create mutex", name);
    return placeOrRelease(seg, true, () => {
      Mutex.init(seg, 0, options).close();
      return Mutex.#at(seg, 0, true, `Cannot create mutex "${seg.name}"`);
    });
  }

  /**
   * Opens the mutex of segment `name` (made by {@linkcode Mutex.create}).
   * @param name the segment name
   * @returns the mutex, which owns its segment
   * @throws {ShmError} ENOENT when there is no such segment, EBADHDR when it holds no valid mutex
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * const name = `doc-mutex-open-${Date.now()}`;
   * using a = Mutex.create(name);
   * using b = Mutex.open(name);
   * b.lock().unlock();
   * a.unlink();
   * ```
   */
  static open(name: string): Mutex {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open mutex", name);
    return placeOrRelease(seg, false, () => Mutex.#at(seg, 0, true, `Cannot open mutex "${seg.name}"`));
  }

  /**
   * Reopens a mutex from its {@linkcode Mutex.handle} (in any process).
   * @param handle from `handle()`, possibly through JSON
   * @returns the mutex, which owns its (newly attached) segment
   * @throws {ShmError} EINVAL for a handle of another kind, ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-attach-${Date.now()}`);
   * using again = Mutex.attach(JSON.parse(JSON.stringify(m.handle())));
   * m.unlink();
   * ```
   */
  static attach(handle: MutexHandle): Mutex {
    checkHandle(handle, "shmkit.mutex");
    const off = handle.byteOffset;
    const seg = SharedMemory.attach(handle.segment);
    return placeOrRelease(
      seg,
      false,
      () => Mutex.#at(seg, off, true, `Cannot attach mutex at ${off} of ${seg.name ?? "anonymous memory"}`),
    );
  }

  /** The number of participant slots. */
  get slots(): number {
    return this.#n;
  }

  /** How many times a dead or departed holder's lock was taken over (a free-running u32). */
  get recoveries(): number {
    if (this.#closed || this.#seg.closed) throw this.#closedError("read");
    return Atomics.load(this.#u32, I_RECOVERIES); // relaxed use; pairs with the add in #recover
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while this Mutex object holds the lock. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * Takes the lock if it is free, or if its holder is dead (then `recovered` is true). Never blocks.
   * @returns the guard, or undefined when a live process (this one included) holds the lock
   * @throws {ShmError} ECLOSED after close(), ENOSPC when every slot is used by a live process,
   * EBADHDR for a corrupt lock word
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-try-${Date.now()}`);
   * const g = m.tryLock();
   * console.assert(g !== undefined && m.tryLock() === undefined);
   * g!.unlock();
   * m.unlink();
   * ```
   */
  tryLock(): LockGuard | undefined {
    if (this.#closed || this.#seg.closed) throw this.#closedError("lock");
    if (this.#held) return undefined;
    if (this.#slot === 0) this.#claimSlot();
    // A1: take a free lock (acquire, seq_cst CAS); pairs with R1 in #unlock.
    if (Atomics.compareExchange(this.#u32, I_LOCK, 0, this.#slot) === 0) return this.#grant(false);
    const r = this.#attempt(true, false);
    return r === GOT || r === GOT_RECOVERED ? this.#grant(r === GOT_RECOVERED) : undefined;
  }

  /**
   * Takes the lock, blocking the calling thread (a short spin, then a futex sleep).
   * @param options `timeout` in ms (default Infinity)
   * @returns the guard (`recovered` is true if the previous holder died holding it)
   * @throws {ShmError} ETIMEDOUT when the timeout passes, EBUSY when this process already holds
   * the lock (a blocking wait could never end), ECLOSED, ENOSPC, EBADHDR
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-lock-${Date.now()}`);
   * {
   *   using g = m.lock({ timeout: 1000 });
   * }
   * m.unlink();
   * ```
   */
  lock(options?: WaitOptions): LockGuard {
    const what = `Cannot lock ${this.#what}`;
    const ms = timeoutOf(options, what);
    if (this.#closed || this.#seg.closed) throw this.#closedError("lock");
    if (this.#held) throw this.#selfError();
    if (this.#slot === 0) this.#claimSlot();
    // A1: fast path, no system call (acquire); pairs with R1 in #unlock.
    if (Atomics.compareExchange(this.#u32, I_LOCK, 0, this.#slot) === 0) return this.#grant(false);
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    for (let i = 0; i < SPIN; i++) {
      if ((Atomics.load(this.#u32, I_LOCK) & LOCK_OWNER_MASK) === 0) break;
    }
    let check = true;
    let parked = false;
    let freed = 0;
    for (;;) {
      const r = this.#attempt(check, parked);
      if (r === GOT || r === GOT_RECOVERED) return this.#grant(r === GOT_RECOVERED);
      if (r === BUSY_SELF) throw this.#selfError();
      const c = this.#markWaiters();
      // It was released meanwhile: try again (checking the timeout now and then: a word that keeps
      // flipping between free and held must not keep this loop from ending).
      if (c === 0 && (++freed % MAX_STEPS !== 0 || performance.now() < deadline)) continue;
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      // W1: sleep while the word still reads c (the kernel compares); pairs with R1's wake.
      const woke = futexWait(this.#seg.mapping, this.#lockOff, c, Math.min(LIVENESS_SLICE_MS, left));
      parked = true;
      check = !woke; // a whole slice without a wake: look at the holder's liveness
    }
  }

  /**
   * Takes the lock without blocking the event loop. Waits for holders in this process too.
   * @param options `timeout` in ms, `signal` to abort
   * @returns a promise of the guard
   * @throws {ShmError} ETIMEDOUT (rejection), or `signal.reason` on abort; ECLOSED, ENOSPC, EBADHDR
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-async-${Date.now()}`);
   * const g = await m.lockAsync({ timeout: 1000 });
   * g.unlock();
   * m.unlink();
   * ```
   */
  async lockAsync(options?: WaitOptions): Promise<LockGuard> {
    const what = `Cannot lock ${this.#what}`;
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    if (this.#closed || this.#seg.closed) throw this.#closedError("lock");
    if (this.#slot === 0) this.#claimSlot();
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    let check = true;
    let parked = false;
    let freed = 0;
    for (;;) {
      if (this.#closed || this.#seg.closed) throw this.#closedError("lock");
      if (!this.#held) {
        const r = this.#attempt(check, parked);
        if (r === GOT || r === GOT_RECOVERED) return this.#grant(r === GOT_RECOVERED);
      }
      const c = this.#markWaiters();
      if (c === 0) {
        // As in lock(); and let the event loop run now and then while the word keeps flipping.
        if (++freed % MAX_STEPS !== 0) continue;
        await new Promise((r) => setTimeout(r, 0));
        if (performance.now() < deadline) continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      let woke: boolean;
      try {
        // W2: asynchronous sleep while the word reads c; pairs with R1's wake.
        woke = await waitAsync(this.#seg.mapping, this.#lockOff, c, Math.min(LIVENESS_SLICE_MS, left), signal);
      } catch (e) {
        this.#passWake(c);
        throw e;
      }
      if (!woke) this.#passWake(c);
      parked = true;
      check = !woke;
    }
  }

  /**
   * A JSON-safe handle; {@linkcode Mutex.attach} reopens it in any process.
   * @returns the handle
   * @throws {ShmError} ECLOSED after close()
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-handle-${Date.now()}`);
   * console.assert(m.handle().kind === "shmkit.mutex");
   * m.unlink();
   * ```
   */
  handle(): MutexHandle {
    if (this.#closed || this.#seg.closed) throw this.#closedError("make a handle of");
    return placedHandle("shmkit.mutex", this.#seg, this.#offset);
  }

  /**
   * Detaches this object. Idempotent. If it holds the lock, the lock is abandoned: released so
   * that the next locker gets `recovered === true` (the protected data may be half-updated). Frees
   * this object's participant slot; closes the segment if the mutex owns it (create/open/attach).
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * const m = Mutex.create(`doc-mutex-close-${Date.now()}`);
   * m.unlink();
   * m.close();
   * m.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    let corrupt: unknown;
    if (!this.#seg.closed) {
      // Whatever the shared words say, this object lets go of what it holds: a corrupt lock word
      // is reported (a warning) but never keeps the slot or the mapping.
      try {
        if (this.#held) this.#abandon();
      } catch (e) {
        corrupt = e;
      }
      if (this.#slot !== 0) {
        // C1: free the slot (seq_cst CAS); pairs with the loads in #claimSlot / #attempt.
        Atomics.compareExchange(this.#ids, this.#slot - 1, SELF_ID, 0n);
      }
    }
    this.#held = false;
    this.#slot = 0;
    this.#closed = true;
    if (this.#ownsSegment) this.#seg.close();
    if (corrupt !== undefined) {
      console.warn(`shmkit: closed ${this.#what} without releasing it: ${(corrupt as Error).message}`);
    }
  }

  /**
   * Removes the segment's name (processes already attached keep working).
   * @throws {ShmError} from shm_unlink
   * @example
   * ```ts
   * import { Mutex } from "./mod.ts";
   * using m = Mutex.create(`doc-mutex-unlink-${Date.now()}`);
   * m.unlink();
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

  #grant(recovered: boolean): LockGuard {
    this.#held = true;
    this.#guard.recovered = recovered;
    return this.#guard;
  }

  /** The lock word, checked against I1/I2. */
  #word(): number {
    const c = Atomics.load(this.#u32, I_LOCK); // A2: read the lock word once (seq_cst)
    const owner = c & LOCK_OWNER_MASK;
    if ((c & ~VALID_BITS) !== 0 || owner > this.#n || (owner !== 0 && (c & LOCK_ABANDONED) !== 0)) {
      throw new ShmError(
        "EBADHDR",
        `Cannot use ${this.#what}: corrupt lock word 0x${
          c.toString(16)
        } (owner ${owner} of ${this.#n} slots) (EBADHDR)`,
      );
    }
    return c;
  }

  /** True if slot k (1-based) holds this process's identity (no BigInt: two 32-bit halves). */
  #isSelf(k: number): boolean {
    return Atomics.load(this.#ids32, 2 * k - 2) === SELF_LO && Atomics.load(this.#ids32, 2 * k - 1) === SELF_HI;
  }

  /**
   * One acquisition attempt. `checkOwner`: test the holder's liveness and take over from a dead
   * one. `parked`: this caller slept before, so others may sleep too: keep WAITERS set.
   */
  #attempt(checkOwner: boolean, parked: boolean): number {
    for (let step = 0; step < MAX_STEPS; step++) {
      const c = this.#word();
      const owner = c & LOCK_OWNER_MASK;
      if (owner === 0) {
        const next = (this.#slot | (c & LOCK_WAITERS) | (parked ? LOCK_WAITERS : 0)) >>> 0;
        // A3: take the free (or abandoned) lock (acquire); pairs with R1 / R2.
        if (Atomics.compareExchange(this.#u32, I_LOCK, c, next) === c) {
          if ((c & LOCK_ABANDONED) !== 0) this.#countRecovery();
          return (c & LOCK_ABANDONED) !== 0 ? GOT_RECOVERED : GOT;
        }
        continue;
      }
      if (this.#isSelf(owner)) return BUSY_SELF;
      if (!checkOwner) return BUSY_OTHER;
      // A4: the holder's identity (seq_cst); pairs with C1/C2 (it cannot change while named, I3).
      const id = Atomics.load(this.#ids, owner - 1);
      if (identityAlive(id)) return BUSY_OTHER;
      // A5: take over from the dead holder, only if the word still names it (acquire).
      if (Atomics.compareExchange(this.#u32, I_LOCK, c, (this.#slot | (c & LOCK_WAITERS)) >>> 0) === c) {
        this.#countRecovery();
        return GOT_RECOVERED;
      }
    }
    return BUSY_OTHER; // bounded: the word kept changing (see MAX_STEPS)
  }

  #countRecovery(): void {
    Atomics.add(this.#u32, I_RECOVERIES, 1); // statistics only (seq_cst add)
  }

  /** Sets WAITERS on a held word; returns the word to sleep on, or 0 if the lock is free. */
  #markWaiters(): number {
    for (let step = 0;; step++) {
      const c = this.#word();
      if ((c & LOCK_OWNER_MASK) === 0) return 0;
      // Bounded: after MAX_STEPS failed CASes sleep on what we read (the kernel returns at once if
      // the word moved; else a slice ends it), so the caller's timeout is checked.
      if (step === MAX_STEPS) return c;
      if ((c & LOCK_WAITERS) !== 0) return c;
      const w = (c | LOCK_WAITERS) >>> 0;
      // A6: announce a sleeper (seq_cst CAS); pairs with R1's exchange, which then wakes.
      if (Atomics.compareExchange(this.#u32, I_LOCK, c, w) === c) return w;
    }
  }

  /** After an asynchronous wait ended without taking a wake: if one may have been ours, pass it on. */
  #passWake(seen: number): void {
    if (!this.#seg.closed && Atomics.load(this.#u32, I_LOCK) !== seen) futexWake(this.#seg.mapping, this.#lockOff, 1);
  }

  #unlock(): void {
    if (this.#seg.closed && !this.#closed) {
      this.#held = false;
      throw this.#closedError("unlock");
    }
    if (!this.#held) {
      if (this.#closed) {
        throw new ShmError(
          "ECLOSED",
          `Cannot unlock ${this.#what}: it was closed while held, the lock was abandoned (ECLOSED)`,
        );
      }
      throw new ShmError(
        "EPERM",
        `Cannot unlock ${this.#what}: this guard does not hold it (already unlocked) (EPERM)`,
      );
    }
    const c = this.#word();
    if ((c & LOCK_OWNER_MASK) !== this.#slot) {
      this.#held = false;
      throw new ShmError(
        "EPERM",
        `Cannot unlock ${this.#what}: the lock word names slot ${
          c & LOCK_OWNER_MASK
        }, not this holder's slot ${this.#slot} (EPERM)`,
      );
    }
    this.#held = false;
    // R1: release the lock (seq_cst exchange; release suffices); pairs with A1/A3/A5 and A6.
    const prev = Atomics.exchange(this.#u32, I_LOCK, 0);
    if ((prev & LOCK_WAITERS) !== 0) futexWake(this.#seg.mapping, this.#lockOff, 1);
  }

  /** Releases a held lock as ABANDONED, so the next holder reports recovery. */
  #abandon(): void {
    this.#held = false;
    for (let step = 0; step < MAX_STEPS; step++) {
      const c = this.#word();
      if ((c & LOCK_OWNER_MASK) !== this.#slot) return;
      // R2: release as abandoned (seq_cst CAS); pairs with A3.
      if (Atomics.compareExchange(this.#u32, I_LOCK, c, (LOCK_ABANDONED | (c & LOCK_WAITERS)) >>> 0) === c) {
        if ((c & LOCK_WAITERS) !== 0) futexWake(this.#seg.mapping, this.#lockOff, 1);
        return;
      }
    }
  }

  /** Claims a participant slot: a free one, else one of a dead process not named by the lock word. */
  #claimSlot(): void {
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < this.#n; i++) {
        if ((this.#word() & LOCK_OWNER_MASK) === i + 1) continue; // I3
        const v = Atomics.load(this.#ids, i); // A7: (seq_cst); pairs with C1/C2
        if (v === 0n || (pass === 1 && !identityAlive(v))) {
          if ((this.#word() & LOCK_OWNER_MASK) === i + 1) continue; // I3, re-checked after liveness
          // C2: claim the slot (seq_cst 64-bit CAS); pairs with A4/A7.
          if (Atomics.compareExchange(this.#ids, i, v, SELF_ID) === v) {
            this.#slot = i + 1;
            return;
          }
        }
      }
    }
    throw new ShmError(
      "ENOSPC",
      `Cannot lock ${this.#what}: all ${this.#n} participant slots are used by live processes (ENOSPC)`,
    );
  }

  #selfError(): ShmError {
    return new ShmError(
      "EBUSY",
      `Cannot lock ${this.#what}: it is already held by this process, a blocking lock would never return; use lockAsync() to wait for it (EBUSY)`,
    );
  }

  #closedError(action: string): ShmError {
    return new ShmError("ECLOSED", `Cannot ${action} ${this.#what}: it is closed (ECLOSED)`);
  }
}

function slotsOf(options: MutexOptions): number {
  const n = options.slots ?? MUTEX_DEFAULT_SLOTS;
  if (!Number.isInteger(n) || n < 1 || n > MUTEX_MAX_SLOTS) {
    throw new RangeError(`Mutex slots must be an integer in 1..${MUTEX_MAX_SLOTS}, got ${n}`);
  }
  return n;
}

/** @internal Checks that [byteOffset, byteOffset + len) is a 64-aligned range inside `segment`. */
export function checkPlacement(segment: SharedMemory, byteOffset: number, len: number, what: string): void {
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % OBJECT_ALIGN !== 0) {
    throw new ShmError(
      "EINVAL",
      `${what}: byteOffset ${byteOffset} must be a non-negative multiple of ${OBJECT_ALIGN} (EINVAL)`,
    );
  }
  if (byteOffset + len > segment.size) {
    throw new RangeError(`${what}: ${len} bytes at ${byteOffset} do not fit in the ${segment.size}-byte segment`);
  }
}

registerKind("shmkit.mutex", (h) => Mutex.attach(h as MutexHandle));
