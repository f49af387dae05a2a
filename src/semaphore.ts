/**
 * Semaphore: a counting semaphore in shared memory (futex-based), for any number of processes.
 *
 * Byte layout (little-endian, at a 64-byte aligned byteOffset; docs/layout/locks.md is the same):
 *
 * | off | size | field    | writer              | reader             | note                                |
 * |-----|------|----------|---------------------|--------------------|-------------------------------------|
 * | 0   | 64   | common   | init                | open               | src/layout.ts, kind 5 ("semaphore") |
 * | 64  | 4    | value    | acquirers, releasers| everyone           | u32 count, 0..SEMAPHORE_MAX_VALUE   |
 * | 68  | 4    | waiters  | sleepers            | releasers          | u32: processes that may be asleep   |
 * | 72  | 56   | reserved | -                   | -                  | zero                                |
 *
 * Protocol. Acquire: CAS `value` v -> v - 1 for v > 0. To sleep: add 1 to `waiters`, re-read
 * `value`, futex-wait on `value` while it is 0, subtract 1 from `waiters`. Release(n): CAS `value`
 * v -> v + n, then if `waiters` is non-zero, FUTEX_WAKE n. Both sides use seq_cst, so either the
 * releaser sees the sleeper's `waiters` increment, or the sleeper sees the new value (Dekker), and
 * the kernel re-checks the value at the sleep: no lost wake-up.
 *
 * Invariants: S1 0 <= value <= SEMAPHORE_MAX_VALUE (a larger value is a corrupt word: EBADHDR);
 * S2 every unit is counted exactly once: a unit is moved by one CAS, so counts are never lost nor
 * duplicated under contention.
 *
 * Crashes: a semaphore has no owner (as POSIX): a process that dies holding units does not give them
 * back. A sleeper that dies leaves `waiters` too high, which only costs extra wake calls; a woken
 * sleeper that dies before taking its unit may swallow a wake, so sleepers re-check the value every
 * {@linkcode SEMAPHORE_SLICE_MS} and never sleep forever on a positive count.
 *
 * @module
 */
import { checkKeys, ShmError } from "./errors.ts";
import { COMMON_HEADER_SIZE, publishReady, readHeader, writeHeader } from "./layout.ts";
import { placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { checkHandle, type Handle, registerKind } from "./handle.ts";
import { futexWait, futexWake, readFlag, timeoutError, timeoutOf, waitAsync, type WaitOptions } from "./wait.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { checkPlacement } from "./mutex.ts";

/** Byte offsets of the semaphore fields, from the object's byteOffset. */
export const SEMAPHORE = { value: 64, waiters: 68 } as const;
/** Size of a semaphore object (header and payload). */
export const SEMAPHORE_BYTES = 128;
/** The largest count a semaphore holds. */
export const SEMAPHORE_MAX_VALUE = 0x7fffffff;
/** Sleepers re-check the count at least this often (guards against a wake swallowed by a death). */
export const SEMAPHORE_SLICE_MS = 250;

const I_VALUE = 0;
const I_WAITERS = 1;
const SPIN = 32;
/** Most CAS retries of one tryAcquire/release: each failure is another process's change of the
 * count; past this tryAcquire reports "no unit" (a blocking caller retries within its timeout) and
 * release reports a count that never holds still (only a hostile writer does that). */
const MAX_STEPS = 1 << 14;

/** The keys of SemaphoreOptions (create, init). */
const SEMAPHORE_KEYS = ["value", "fileMode"] as const;

/** Options of {@linkcode Semaphore.create} and {@linkcode Semaphore.init}. */
export interface SemaphoreOptions {
  /** The initial count, 0..2^31-1 (default 0). */
  value?: number;
  /** File mode of the new segment (create only; default 0o600). */
  fileMode?: number;
}

/** The handle of a Semaphore: JSON-safe, reopened by {@linkcode Semaphore.attach} in any process. */
export interface SemaphoreHandle extends Handle {
  /** Always `"shmkit.semaphore"`. */
  readonly kind: "shmkit.semaphore";
  /** Where the semaphore starts in its segment. */
  readonly byteOffset: number;
  /** The segment that holds it. */
  readonly segment: SharedMemoryHandle;
}

/**
 * A counting semaphore shared by processes.
 *
 * Role contract: any number of processes (and threads) acquire and release, in any mix. The count
 * never goes negative and never exceeds 2^31-1; units are not owned, so anyone may release, and a
 * process that dies does not return the units it took.
 *
 * @example
 * ```ts
 * import { Semaphore } from "./mod.ts";
 * using s = Semaphore.create(`doc-sem-${Date.now()}`, { value: 2 });
 * s.acquire();
 * console.assert(s.tryAcquire() && !s.tryAcquire());
 * s.release(2);
 * console.assert(s.value === 2);
 * s.unlink();
 * ```
 */
export class Semaphore implements Disposable {
  readonly #seg: SharedMemory;
  readonly #ownsSegment: boolean;
  readonly #offset: number;
  readonly #valueOff: number;
  readonly #what: string;
  readonly #u32: Uint32Array;
  #closed = false;

  private constructor(seg: SharedMemory, offset: number, owns: boolean) {
    this.#seg = seg;
    this.#ownsSegment = owns;
    this.#offset = offset;
    this.#valueOff = offset + SEMAPHORE.value;
    this.#what = seg.name === null
      ? `semaphore at ${offset} of anonymous memory`
      : offset === 0
      ? `semaphore "${seg.name}"`
      : `semaphore at ${offset} of "${seg.name}"`;
    this.#u32 = seg.view(Uint32Array, offset + SEMAPHORE.value, 2);
  }

  /**
   * Bytes a semaphore occupies (128).
   * @returns the byte length
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * console.assert(Semaphore.byteLength() === 128);
   * ```
   */
  static byteLength(_options: SemaphoreOptions = {}): number {
    return SEMAPHORE_BYTES;
  }

  /**
   * Formats a semaphore at `byteOffset` of `segment` and attaches it (the caller keeps the segment).
   * @param segment the segment
   * @param byteOffset a multiple of 64 with 128 bytes of room
   * @param options `value`: the initial count
   * @returns the semaphore
   * @throws {RangeError} for a bad value or when it does not fit; {@linkcode ShmError} EINVAL for
   * a misaligned offset
   * @example
   * ```ts
   * import { Semaphore, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * using s = Semaphore.init(seg, 128, { value: 1 });
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: SemaphoreOptions = {}): Semaphore {
    checkKeys(options, SEMAPHORE_KEYS, "Cannot init semaphore");
    const value = options.value ?? 0;
    if (!Number.isInteger(value) || value < 0 || value > SEMAPHORE_MAX_VALUE) {
      throw new RangeError(`Semaphore value must be an integer in 0..${SEMAPHORE_MAX_VALUE}, got ${value}`);
    }
    checkPlacement(segment, byteOffset, SEMAPHORE_BYTES, "Cannot init semaphore");
    const buf = segment.buffer;
    writeHeader(buf, byteOffset, "semaphore", SEMAPHORE_BYTES, SEMAPHORE_BYTES);
    new Uint8Array(buf, byteOffset + COMMON_HEADER_SIZE, SEMAPHORE_BYTES - COMMON_HEADER_SIZE).fill(0);
    new DataView(buf, byteOffset).setUint32(SEMAPHORE.value, value, true);
    publishReady(buf, byteOffset); // release: the count is visible before "ready"
    return new Semaphore(segment, byteOffset, false);
  }

  /**
   * Attaches the semaphore at `byteOffset` of `segment`, validating its header.
   * @param segment the segment (the caller keeps it)
   * @param byteOffset where it starts
   * @returns the semaphore
   * @throws {ShmError} EBADHDR when no valid semaphore is there
   * @example
   * ```ts
   * import { Semaphore, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * Semaphore.init(seg, 0).close();
   * using s = Semaphore.at(seg, 0);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): Semaphore {
    return Semaphore.#at(segment, byteOffset, false, `Cannot attach semaphore at ${byteOffset}`);
  }

  static #at(segment: SharedMemory, byteOffset: number, owns: boolean, what: string): Semaphore {
    const h = readHeader(segment.buffer, byteOffset, "semaphore", what, undefined, undefined, SEMAPHORE_BYTES);
    if (h.headerSize !== SEMAPHORE_BYTES || h.byteLength !== SEMAPHORE_BYTES) {
      throw new ShmError(
        "EBADHDR",
        `${what}: header size ${h.headerSize} / length ${h.byteLength}, expected ${SEMAPHORE_BYTES} (EBADHDR)`,
      );
    }
    const s = new Semaphore(segment, byteOffset, owns);
    s.#load(); // S1
    return s;
  }

  /**
   * Creates a segment named `name` holding one semaphore with count `options.value`.
   * @param name the segment name
   * @param options `value` (default 0), `fileMode`
   * @returns the semaphore, which owns its segment
   * @throws {ShmError} EEXIST when the name is taken, EINVAL for a bad name
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-create-${Date.now()}`, { value: 3 });
   * console.assert(s.value === 3);
   * s.unlink();
   * ```
   */
  static create(name: string | null, options: SemaphoreOptions = {}): Semaphore {
    checkKeys(options, SEMAPHORE_KEYS, "Cannot create semaphore");
    const seg = renamed(
      () => SharedMemory.create(name, SEMAPHORE_BYTES, { mode: options.fileMode }),
      "Cannot create semaphore",
      name,
    );
    return placeOrRelease(seg, true, () => {
      Semaphore.init(seg, 0, options).close();
      return Semaphore.#at(seg, 0, true, `Cannot create semaphore "${seg.name}"`);
    });
  }

  /**
   * Opens the semaphore of segment `name`.
   * @param name the segment name
   * @returns the semaphore, which owns its segment
   * @throws {ShmError} ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * const name = `doc-sem-open-${Date.now()}`;
   * using a = Semaphore.create(name, { value: 1 });
   * using b = Semaphore.open(name);
   * console.assert(b.tryAcquire() && a.value === 0);
   * a.unlink();
   * ```
   */
  static open(name: string): Semaphore {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open semaphore", name);
    return placeOrRelease(seg, false, () => Semaphore.#at(seg, 0, true, `Cannot open semaphore "${seg.name}"`));
  }

  /**
   * Reopens a semaphore from its {@linkcode Semaphore.handle}.
   * @param handle from `handle()`
   * @returns the semaphore, which owns its segment
   * @throws {ShmError} EINVAL for another kind, ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-attach-${Date.now()}`);
   * using again = Semaphore.attach(JSON.parse(JSON.stringify(s.handle())));
   * s.unlink();
   * ```
   */
  static attach(handle: SemaphoreHandle): Semaphore {
    checkHandle(handle, "shmkit.semaphore");
    const off = handle.byteOffset;
    const seg = SharedMemory.attach(handle.segment);
    return placeOrRelease(
      seg,
      false,
      () => Semaphore.#at(seg, off, true, `Cannot attach semaphore at ${off} of ${seg.name ?? "anonymous memory"}`),
    );
  }

  /** The current count (a snapshot). @throws {ShmError} ECLOSED, EBADHDR */
  get value(): number {
    if (this.#closed || this.#seg.closed) throw this.#closedError("read");
    return this.#load();
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Takes one unit if the count is positive. Never blocks.
   * @returns true if a unit was taken
   * @throws {ShmError} ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-try-${Date.now()}`, { value: 1 });
   * console.assert(s.tryAcquire() === true && s.tryAcquire() === false);
   * s.unlink();
   * ```
   */
  tryAcquire(): boolean {
    if (this.#closed || this.#seg.closed) throw this.#closedError("acquire");
    // Bounded: every failed CAS means the count changed (someone's progress); past MAX_STEPS
    // report "no unit" and let a blocking caller retry within its timeout.
    for (let step = 0; step < MAX_STEPS; step++) {
      const v = this.#load();
      if (v === 0) return false;
      // A1: take a unit (seq_cst CAS); pairs with R1 in release.
      if (Atomics.compareExchange(this.#u32, I_VALUE, v, v - 1) === v) return true;
    }
    return false;
  }

  /**
   * Takes one unit, blocking the calling thread while the count is 0.
   * @param options `timeout` in ms (default Infinity)
   * @throws {ShmError} ETIMEDOUT, ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-acq-${Date.now()}`, { value: 1 });
   * s.acquire({ timeout: 100 });
   * s.release();
   * s.unlink();
   * ```
   */
  acquire(options?: WaitOptions): void {
    const what = `Cannot acquire ${this.#what}`;
    const ms = timeoutOf(options, what);
    if (this.tryAcquire()) return;
    for (let i = 0; i < SPIN; i++) {
      if (Atomics.load(this.#u32, I_VALUE) !== 0 && this.tryAcquire()) return;
    }
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      // W1: announce a sleeper (seq_cst), then re-read the count; pairs with R2 in release.
      Atomics.add(this.#u32, I_WAITERS, 1);
      try {
        if (this.#load() === 0) futexWait(this.#seg.mapping, this.#valueOff, 0, Math.min(SEMAPHORE_SLICE_MS, left));
      } finally {
        if (!this.#seg.closed) Atomics.sub(this.#u32, I_WAITERS, 1);
      }
      if (this.tryAcquire()) return;
    }
  }

  /**
   * Takes one unit without blocking the event loop.
   * @param options `timeout` in ms, `signal` to abort
   * @returns a promise that resolves once a unit is taken
   * @throws {ShmError} ETIMEDOUT (rejection), or `signal.reason` on abort; ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-async-${Date.now()}`);
   * const p = s.acquireAsync({ timeout: 1000 });
   * s.release();
   * await p;
   * s.unlink();
   * ```
   */
  async acquireAsync(options?: WaitOptions): Promise<void> {
    const what = `Cannot acquire ${this.#what}`;
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    if (this.tryAcquire()) return;
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      // W2: as W1, asynchronously; pairs with R2 in release.
      Atomics.add(this.#u32, I_WAITERS, 1);
      let woke = true;
      try {
        if (this.#load() === 0) {
          woke = await waitAsync(this.#seg.mapping, this.#valueOff, 0, Math.min(SEMAPHORE_SLICE_MS, left), signal);
        }
      } catch (e) {
        this.#passWake();
        throw e;
      } finally {
        if (!this.#seg.closed) Atomics.sub(this.#u32, I_WAITERS, 1);
      }
      if (this.#closed || this.#seg.closed) throw this.#closedError("acquire");
      if (this.tryAcquire()) return;
      if (!woke) this.#passWake();
    }
  }

  /**
   * Adds `n` units and wakes up to `n` sleepers.
   * @param n units to add, a positive integer (default 1)
   * @throws {RangeError} when n is not a positive integer; {@linkcode ShmError} EOVERFLOW when the count
   * would pass 2^31-1, ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-rel-${Date.now()}`);
   * s.release(3);
   * console.assert(s.value === 3);
   * s.unlink();
   * ```
   */
  release(n = 1): void {
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`Cannot release ${this.#what}: n must be a positive integer, got ${n}`);
    }
    if (this.#closed || this.#seg.closed) throw this.#closedError("release");
    for (let step = 0;; step++) {
      if (step === MAX_STEPS) {
        throw new ShmError(
          "EBADHDR",
          `Cannot release ${this.#what}: its count keeps changing under every CAS (EBADHDR)`,
        );
      }
      const v = this.#load();
      if (n > SEMAPHORE_MAX_VALUE - v) {
        // The count lives in shared memory (another process, or corruption, may have raised it):
        // a state error like POSIX sem_post's EOVERFLOW, not a bad argument.
        throw new ShmError(
          "EOVERFLOW",
          `Cannot release ${this.#what}: ${v} + ${n} exceeds the maximum count ${SEMAPHORE_MAX_VALUE} (EOVERFLOW)`,
        );
      }
      // R1: add the units (seq_cst CAS); pairs with A1 and with the kernel's check in W1/W2.
      if (Atomics.compareExchange(this.#u32, I_VALUE, v, v + n) === v) break;
    }
    // R2: any sleepers? (seq_cst load); pairs with W1/W2's add.
    if (readFlag(this.#u32, I_WAITERS) !== 0) futexWake(this.#seg.mapping, this.#valueOff, n);
  }

  /**
   * A JSON-safe handle; {@linkcode Semaphore.attach} reopens it in any process.
   * @returns the handle
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-handle-${Date.now()}`);
   * console.assert(s.handle().kind === "shmkit.semaphore");
   * s.unlink();
   * ```
   */
  handle(): SemaphoreHandle {
    if (this.#closed || this.#seg.closed) throw this.#closedError("make a handle of");
    return placedHandle("shmkit.semaphore", this.#seg, this.#offset);
  }

  /**
   * Detaches this object (idempotent); closes the segment if it owns it.
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * const s = Semaphore.create(`doc-sem-close-${Date.now()}`);
   * s.unlink();
   * s.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsSegment) this.#seg.close();
  }

  /**
   * Removes the segment's name (attached processes keep working).
   * @throws {ShmError} from shm_unlink
   * @example
   * ```ts
   * import { Semaphore } from "./mod.ts";
   * using s = Semaphore.create(`doc-sem-unlink-${Date.now()}`);
   * s.unlink();
   * ```
   */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The count, checked against S1. */
  #load(): number {
    const v = Atomics.load(this.#u32, I_VALUE); // A2: read the count once (seq_cst)
    if (v > SEMAPHORE_MAX_VALUE) {
      throw new ShmError("EBADHDR", `Cannot use ${this.#what}: corrupt count ${v} (EBADHDR)`);
    }
    return v;
  }

  /** After an asynchronous wait that may have swallowed a wake: if units remain and others sleep, wake one. */
  #passWake(): void {
    if (this.#seg.closed) return;
    if (Atomics.load(this.#u32, I_VALUE) !== 0 && Atomics.load(this.#u32, I_WAITERS) !== 0) {
      futexWake(this.#seg.mapping, this.#valueOff, 1);
    }
  }

  #closedError(action: string): ShmError {
    return new ShmError("ECLOSED", `Cannot ${action} ${this.#what}: it is closed (ECLOSED)`);
  }
}

registerKind("shmkit.semaphore", (h) => Semaphore.attach(h as SemaphoreHandle));
