/**
 * Condition: a condition variable in shared memory, used with a {@linkcode Mutex}.
 *
 * Byte layout (little-endian, at a 64-byte aligned byteOffset; docs/layout/locks.md is the same):
 *
 * | off | size | field    | writer    | reader    | note                                           |
 * |-----|------|----------|-----------|-----------|------------------------------------------------|
 * | 0   | 64   | common   | init      | open      | src/layout.ts, kind 6 ("condition")            |
 * | 64  | 4    | seq      | notifiers | waiters   | u32 free-running, +1 per notify / notifyAll    |
 * | 68  | 4    | waiters  | waiters   | notifiers | u32: waits in progress (may be high after a crash) |
 * | 72  | 56   | reserved | -         | -         | zero                                           |
 *
 * Protocol (sequence word). wait(guard): while holding the mutex, add 1 to `waiters` and read
 * `seq` into s; unlock the mutex; futex-wait on `seq` while it still reads s; subtract 1 from
 * `waiters`; lock the mutex again. notify(n): add 1 to `seq`, then if `waiters` is non-zero
 * FUTEX_WAKE n. A notify made after the waiter read s (in particular any notify made under the
 * mutex after the waiter's unlock) changes `seq`, so the kernel refuses to sleep on the stale s or
 * the wake finds the sleeper: no lost wake-up. A notify made before the waiter read s, under the
 * mutex, happened before the waiter checked its predicate, which the caller does under the mutex.
 *
 * Spurious wake-ups happen (as with every condition variable): always wait in a loop on a
 * predicate. A waiter that was woken and then killed may swallow a notify(1); sleepers therefore
 * re-read `seq` every {@linkcode CONDITION_SLICE_MS} and return when it moved, so a notify is never
 * lost to a death (it may then wake more than n waiters).
 *
 * @module
 */
import { checkKeys, ShmError } from "./errors.ts";
import { COMMON_HEADER_SIZE, publishReady, readHeader, writeHeader } from "./layout.ts";
import { placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { checkHandle, type Handle, registerKind } from "./handle.ts";
import { futexWait, futexWake, readFlag, timeoutError, timeoutOf, waitAsync, type WaitOptions } from "./wait.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { checkPlacement, Guard, type LockGuard } from "./mutex.ts";

/** Byte offsets of the condition fields, from the object's byteOffset. */
export const CONDITION = { seq: 64, waiters: 68 } as const;
/** Size of a condition object (header and payload). */
export const CONDITION_BYTES = 128;
/** Sleepers re-read the sequence word at least this often. */
export const CONDITION_SLICE_MS = 250;

const I_SEQ = 0;
const I_WAITERS = 1;

/** Options of {@linkcode Condition.create}. */
export interface ConditionOptions {
  /** File mode of the new segment (create only; default 0o600). */
  fileMode?: number;
}

/** The handle of a Condition: JSON-safe, reopened by {@linkcode Condition.attach} in any process. */
export interface ConditionHandle extends Handle {
  /** Always `"shmkit.condition"`. */
  readonly kind: "shmkit.condition";
  /** Where the condition starts in its segment. */
  readonly byteOffset: number;
  /** The segment that holds it. */
  readonly segment: SharedMemoryHandle;
}

/**
 * A condition variable shared by processes.
 *
 * Role contract: any number of processes wait and notify. Every waiter of one Condition uses the
 * same Mutex (the one protecting the predicate) and holds it when calling wait; notifiers should
 * hold it while changing the predicate (they may notify after unlocking). `wait` returns (or
 * throws ETIMEDOUT / rejects on abort) only after re-acquiring the mutex; if the mutex holder died
 * meanwhile, `guard.recovered` is true afterwards.
 *
 * @example
 * ```ts
 * import { Condition, Mutex, SharedMemory } from "./mod.ts";
 * using seg = SharedMemory.create(null, 4096);
 * using m = Mutex.init(seg, 0);
 * using c = Condition.init(seg, Mutex.byteLength());
 * using g = m.lock();
 * try {
 *   c.wait(g, { timeout: 10 }); // nobody notifies: times out, holding the mutex again
 * } catch (e) {
 *   console.assert((e as { code?: string }).code === "ETIMEDOUT" && m.held);
 * }
 * seg.unlink();
 * ```
 */
export class Condition implements Disposable {
  readonly #seg: SharedMemory;
  readonly #ownsSegment: boolean;
  readonly #offset: number;
  readonly #seqOff: number;
  readonly #what: string;
  readonly #u32: Uint32Array;
  #closed = false;

  private constructor(seg: SharedMemory, offset: number, owns: boolean) {
    this.#seg = seg;
    this.#ownsSegment = owns;
    this.#offset = offset;
    this.#seqOff = offset + CONDITION.seq;
    this.#what = seg.name === null
      ? `condition at ${offset} of anonymous memory`
      : offset === 0
      ? `condition "${seg.name}"`
      : `condition at ${offset} of "${seg.name}"`;
    this.#u32 = seg.view(Uint32Array, offset + CONDITION.seq, 2);
  }

  /**
   * Bytes a condition occupies (128).
   * @returns the byte length
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * console.assert(Condition.byteLength() === 128);
   * ```
   */
  static byteLength(): number {
    return CONDITION_BYTES;
  }

  /**
   * Formats a condition at `byteOffset` of `segment` (typically right after its Mutex).
   * @param segment the segment (the caller keeps it)
   * @param byteOffset a multiple of 64 with 128 bytes of room
   * @returns the condition
   * @throws {RangeError} when it does not fit; {@linkcode ShmError} EINVAL for a misaligned offset
   * @example
   * ```ts
   * import { Condition, Mutex, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, Mutex.byteLength() + Condition.byteLength());
   * using m = Mutex.init(seg, 0);
   * using c = Condition.init(seg, Mutex.byteLength());
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number): Condition {
    checkPlacement(segment, byteOffset, CONDITION_BYTES, "Cannot init condition");
    const buf = segment.buffer;
    writeHeader(buf, byteOffset, "condition", CONDITION_BYTES, CONDITION_BYTES);
    new Uint8Array(buf, byteOffset + COMMON_HEADER_SIZE, CONDITION_BYTES - COMMON_HEADER_SIZE).fill(0);
    publishReady(buf, byteOffset);
    return new Condition(segment, byteOffset, false);
  }

  /**
   * Attaches the condition at `byteOffset` of `segment`, validating its header.
   * @param segment the segment (the caller keeps it)
   * @param byteOffset where it starts
   * @returns the condition
   * @throws {ShmError} EBADHDR when no valid condition is there
   * @example
   * ```ts
   * import { Condition, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * Condition.init(seg, 0).close();
   * using c = Condition.at(seg, 0);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): Condition {
    return Condition.#at(segment, byteOffset, false, `Cannot attach condition at ${byteOffset}`);
  }

  static #at(segment: SharedMemory, byteOffset: number, owns: boolean, what: string): Condition {
    const h = readHeader(segment.buffer, byteOffset, "condition", what, undefined, undefined, CONDITION_BYTES);
    if (h.headerSize !== CONDITION_BYTES || h.byteLength !== CONDITION_BYTES) {
      throw new ShmError(
        "EBADHDR",
        `${what}: header size ${h.headerSize} / length ${h.byteLength}, expected ${CONDITION_BYTES} (EBADHDR)`,
      );
    }
    return new Condition(segment, byteOffset, owns);
  }

  /**
   * Creates a segment named `name` holding one condition.
   * @param name the segment name
   * @param options `fileMode`
   * @returns the condition, which owns its segment
   * @throws {ShmError} EEXIST, EINVAL
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * using c = Condition.create(`doc-cond-${Date.now()}`);
   * c.notifyAll();
   * c.unlink();
   * ```
   */
  static create(name: string | null, options: ConditionOptions = {}): Condition {
    checkKeys(options, ["fileMode"], "Cannot create condition");
    const seg = renamed(
      () => SharedMemory.create(name, CONDITION_BYTES, { mode: options.fileMode }),
      "Cannot create condition",
      name,
    );
    return placeOrRelease(seg, true, () => {
      Condition.init(seg, 0).close();
      return Condition.#at(seg, 0, true, `Cannot create condition "${seg.name}"`);
    });
  }

  /**
   * Opens the condition of segment `name`.
   * @param name the segment name
   * @returns the condition, which owns its segment
   * @throws {ShmError} ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * const name = `doc-cond-open-${Date.now()}`;
   * using a = Condition.create(name);
   * using b = Condition.open(name);
   * a.unlink();
   * ```
   */
  static open(name: string): Condition {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open condition", name);
    return placeOrRelease(seg, false, () => Condition.#at(seg, 0, true, `Cannot open condition "${seg.name}"`));
  }

  /**
   * Reopens a condition from its {@linkcode Condition.handle}.
   * @param handle from `handle()`
   * @returns the condition, which owns its segment
   * @throws {ShmError} EINVAL for another kind, ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * using c = Condition.create(`doc-cond-attach-${Date.now()}`);
   * using again = Condition.attach(JSON.parse(JSON.stringify(c.handle())));
   * c.unlink();
   * ```
   */
  static attach(handle: ConditionHandle): Condition {
    checkHandle(handle, "shmkit.condition");
    const off = handle.byteOffset;
    const seg = SharedMemory.attach(handle.segment);
    return placeOrRelease(
      seg,
      false,
      () => Condition.#at(seg, off, true, `Cannot attach condition at ${off} of ${seg.name ?? "anonymous memory"}`),
    );
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Unlocks the guard's mutex, sleeps until notified (or a spurious wake-up), then locks it again.
   * @param guard a held guard of the mutex protecting the predicate
   * @param options `timeout` in ms (default Infinity); the mutex is re-acquired even on timeout
   * @throws {ShmError} ETIMEDOUT (the mutex is held again), EPERM when the guard does not hold its
   * mutex, ECLOSED; from the re-lock: EBUSY when another Mutex object of this process holds it
   * @example
   * ```ts
   * import { Condition, Mutex } from "./mod.ts";
   * const name = `doc-cond-wait-${Date.now()}`;
   * using m = Mutex.create(name);
   * using c = Condition.create(name + "-c");
   * using g = m.lock();
   * try {
   *   c.wait(g, { timeout: 5 });
   * } catch {
   *   // timed out; the mutex is held again
   * }
   * m.unlink(); c.unlink();
   * ```
   */
  wait(guard: LockGuard, options?: WaitOptions): void {
    const what = `Cannot wait on ${this.#what}`;
    const ms = timeoutOf(options, what);
    const g = this.#checkGuard(guard, what);
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    // W1: register, then read seq (seq_cst) while still holding the mutex; pairs with N1/N2.
    Atomics.add(this.#u32, I_WAITERS, 1);
    const s = Atomics.load(this.#u32, I_SEQ);
    let timedOut = false;
    try {
      g.unlock();
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) {
          timedOut = true;
          break;
        }
        // W2: sleep while seq still reads s (the kernel compares); pairs with N2's wake.
        const woke = futexWait(this.#seg.mapping, this.#seqOff, s, Math.min(CONDITION_SLICE_MS, left));
        if (woke || Atomics.load(this.#u32, I_SEQ) !== s) break;
      }
    } finally {
      if (!this.#seg.closed) Atomics.sub(this.#u32, I_WAITERS, 1);
      relock(g);
    }
    if (timedOut) throw timeoutError(what, ms);
  }

  /**
   * Like {@linkcode wait}, without blocking the event loop: the mutex is re-acquired with lockAsync.
   * @param guard a held guard of the mutex protecting the predicate
   * @param options `timeout` in ms, `signal` to abort (the mutex is re-acquired before rejecting)
   * @returns a promise that resolves with the mutex held again
   * @throws {ShmError} ETIMEDOUT (rejection), or `signal.reason` on abort; EPERM, ECLOSED
   * @example
   * ```ts
   * import { Condition, Mutex } from "./mod.ts";
   * const name = `doc-cond-async-${Date.now()}`;
   * using m = Mutex.create(name);
   * using c = Condition.create(name + "-c");
   * const g = await m.lockAsync();
   * const p = c.waitAsync(g, { timeout: 2000 });
   * c.notifyAll();
   * await p;
   * g.unlock();
   * m.unlink(); c.unlink();
   * ```
   */
  async waitAsync(guard: LockGuard, options?: WaitOptions): Promise<void> {
    const what = `Cannot wait on ${this.#what}`;
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const g = this.#checkGuard(guard, what);
    const deadline = ms === Infinity ? Infinity : performance.now() + ms;
    // W1 (as in wait).
    Atomics.add(this.#u32, I_WAITERS, 1);
    const s = Atomics.load(this.#u32, I_SEQ);
    let failure: unknown = undefined;
    let failed = false;
    try {
      g.unlock();
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) {
          failed = true;
          failure = timeoutError(what, ms);
          break;
        }
        // W3: asynchronous sleep while seq reads s; pairs with N2's wake.
        const woke = await waitAsync(this.#seg.mapping, this.#seqOff, s, Math.min(CONDITION_SLICE_MS, left), signal);
        if (this.#seg.closed || Atomics.load(this.#u32, I_SEQ) !== s) break;
        void woke;
      }
    } catch (e) {
      failed = true;
      failure = e;
    }
    if (!this.#seg.closed) Atomics.sub(this.#u32, I_WAITERS, 1);
    await relockAsync(g);
    if (failed) throw failure;
  }

  /**
   * Wakes up to `n` waiters (default 1).
   * @param n a positive integer
   * @throws {RangeError} for a bad n; {@linkcode ShmError} ECLOSED
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * using c = Condition.create(`doc-cond-notify-${Date.now()}`);
   * c.notify();
   * c.unlink();
   * ```
   */
  notify(n = 1): void {
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`Cannot notify ${this.#what}: n must be a positive integer, got ${n}`);
    }
    if (this.#closed || this.#seg.closed) {
      throw new ShmError("ECLOSED", `Cannot notify ${this.#what}: it is closed (ECLOSED)`);
    }
    // N1: move the sequence (seq_cst); pairs with W1's read and the kernel's compare in W2/W3.
    Atomics.add(this.#u32, I_SEQ, 1);
    // N2: wake only if someone waits (seq_cst); pairs with W1's add.
    if (readFlag(this.#u32, I_WAITERS) !== 0) futexWake(this.#seg.mapping, this.#seqOff, Math.min(n, 0x7fffffff));
  }

  /**
   * Wakes every waiter.
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * using c = Condition.create(`doc-cond-all-${Date.now()}`);
   * c.notifyAll();
   * c.unlink();
   * ```
   */
  notifyAll(): void {
    this.notify(0x7fffffff);
  }

  /**
   * A JSON-safe handle; {@linkcode Condition.attach} reopens it in any process.
   * @returns the handle
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * using c = Condition.create(`doc-cond-handle-${Date.now()}`);
   * console.assert(c.handle().kind === "shmkit.condition");
   * c.unlink();
   * ```
   */
  handle(): ConditionHandle {
    if (this.#closed || this.#seg.closed) {
      throw new ShmError("ECLOSED", `Cannot make a handle of ${this.#what}: it is closed (ECLOSED)`);
    }
    return placedHandle("shmkit.condition", this.#seg, this.#offset);
  }

  /**
   * Detaches this object (idempotent); closes the segment if it owns it.
   * @example
   * ```ts
   * import { Condition } from "./mod.ts";
   * const c = Condition.create(`doc-cond-close-${Date.now()}`);
   * c.unlink();
   * c.close();
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
   * import { Condition } from "./mod.ts";
   * using c = Condition.create(`doc-cond-unlink-${Date.now()}`);
   * c.unlink();
   * ```
   */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkGuard(guard: LockGuard, what: string): Guard {
    if (this.#closed || this.#seg.closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    if (!(guard instanceof Guard)) {
      throw new TypeError(`${what}: the guard must come from Mutex.lock / tryLock / lockAsync`);
    }
    if (!guard.mutex.held) throw new ShmError("EPERM", `${what}: the guard does not hold its mutex (EPERM)`);
    return guard;
  }
}

/** Re-locks the guard's mutex after a wait (blocking), carrying over a recovery. */
function relock(g: Guard): void {
  if (g.mutex.closed) return;
  const again = g.mutex.lock(); // the same Guard object: its `recovered` now reports this acquisition
  void again;
}

async function relockAsync(g: Guard): Promise<void> {
  if (g.mutex.closed) return;
  await g.mutex.lockAsync();
}

registerKind("shmkit.condition", (h) => Condition.attach(h as ConditionHandle));
