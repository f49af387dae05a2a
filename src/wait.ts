/**
 * Waiting on 32-bit words in shared memory: blocking (futex), asynchronous (the native waiter
 * multiplexer: one off-thread call per process, however many waits are pending) and waking.
 *
 * Protocol for every caller: read the word, decide to wait, then wait with the value read as
 * `expected`. A wake between the read and the wait is never lost: the kernel (or the multiplexer)
 * compares the word with `expected` first.
 *
 * @module
 */
import { ERRNO, native, plainFlagReads, sys } from "./sys.ts";
import { checkKeys, ShmError } from "./errors.ts";
import type { Mapping } from "./mapping.ts";

/** Options for every blocking or asynchronous wait in shmkit. */
export interface WaitOptions {
  /** Milliseconds before giving up with ShmError ETIMEDOUT (default Infinity). */
  timeout?: number;
  /** Aborts an asynchronous wait: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Reads a waiter count or sleep flag for the wake check (W2) that follows this thread's own
 * `Atomics` store or read-modify-write of the state a parked peer waits for: `Atomics.load`, or a
 * plain read on x86-64, where that is the same ordering and cheaper (on Bun `Atomics.load` is a
 * locked read-modify-write: per message it took the peer's line exclusive and halved the
 * cross-process message rate; on Deno and Node it is a builtin call; see ffi/mod.ts
 * `plainFlagReads`). Only for that check: acquiring a peer's data still takes `Atomics.load`.
 */
export const readFlag: (a: Int32Array | Uint32Array, index: number) => number = plainFlagReads
  ? (a, i) => a[i]
  : (a, i) => Atomics.load(a, i);

/**
 * The first futex wait of a process parked on a counter its peer may publish with a plain store
 * (ffi/mod.ts plainPublish: spsc Ring consumers on the tail and producers on the head, so also
 * spsc and spsc-ordered Channel receivers on the tail and spsc-ordered senders on the head, spsc
 * MessageLog readers on the tail): the peer's wake check may have read the waiter count
 * before its store was visible to a process registering at that moment, so a wake lost to that
 * race costs at most this, never a park slice (docs/layout/channel.md and docs/layout/log.md
 * "Waiting"; csrc mirrors it).
 */
export const FIRST_WAIT_MS = 0.2;

/**
 * {@linkcode futexWait} for up to `slice` ms, the first FIRST_WAIT_MS of it separately, with
 * `recheck()` between. True if woken (or the word moved) or `recheck()` said ready.
 */
export function futexWaitShortFirst(
  m: Mapping,
  offset: number,
  expected: number,
  slice: number,
  recheck: () => boolean,
): boolean {
  if (slice <= FIRST_WAIT_MS) return futexWait(m, offset, expected, slice);
  if (futexWait(m, offset, expected, FIRST_WAIT_MS) || recheck()) return true;
  return futexWait(m, offset, expected, slice - FIRST_WAIT_MS);
}

/** {@linkcode futexWaitShortFirst} without blocking the event loop ({@linkcode waitAsync}). */
export async function waitAsyncShortFirst(
  m: Mapping,
  offset: number,
  expected: number,
  slice: number,
  recheck: () => boolean,
  signal?: AbortSignal,
): Promise<boolean> {
  if (slice <= FIRST_WAIT_MS) return waitAsync(m, offset, expected, slice, signal);
  if (await waitAsync(m, offset, expected, FIRST_WAIT_MS, signal) || recheck()) return true;
  return waitAsync(m, offset, expected, slice - FIRST_WAIT_MS, signal);
}

/** Every key of WaitOptions and of its extensions (RecvBatchOptions, LogWriteOptions, LogReadBatchOptions). */
const WAIT_KEYS = ["timeout", "signal", "max", "type"] as const;

/**
 * Validates a timeout option and returns it in ms (Infinity when absent). Options without a
 * `timeout` are checked for unknown keys (src/errors.ts checkKeys): `{ timout: 100 }` would
 * otherwise wait for good. Options with one are not (the per-message path with a timeout pays nothing).
 */
export function timeoutOf(options: WaitOptions | undefined, what: string): number {
  const t = options?.timeout;
  if (t === undefined) {
    if (options !== undefined) checkKeys(options, WAIT_KEYS, what);
    return Infinity;
  }
  if (typeof t !== "number" || Number.isNaN(t) || t < 0) {
    throw new RangeError(`${what}: timeout must be a non-negative number of milliseconds, got ${String(t)}`);
  }
  return t;
}

/** The ShmError for a timed-out wait. */
export function timeoutError(what: string, ms: number): ShmError {
  return new ShmError("ETIMEDOUT", `${what}: timed out after ${ms} ms (ETIMEDOUT)`);
}

/**
 * Blocks the calling thread until the word at `offset` no longer holds `expected`, a wake arrives,
 * or `timeoutMs` passes (a negative or NaN timeout is 0, Infinity waits for good). Returns false
 * on timeout. Spurious returns are possible: re-check.
 *
 * Signals: the native wait sleeps in slices of at most 50 ms and watches SIGINT, SIGTERM, SIGHUP
 * and SIGQUIT. When this process has a handler for one of them (`Deno.addSignalListener`,
 * `process.on("SIGINT")`) and it arrives, the wait throws `ShmError` `EINTR` so the blocking
 * call returns to the event loop and the handler runs (as Python raises KeyboardInterrupt).
 * Without a handler the signal's default action (usually: the process dies) is untouched. Other
 * signals (a child's SIGCHLD, a profiler's) do not end the wait: it goes on for the rest of its
 * timeout.
 *
 * @throws {ShmError} EINTR when a handled signal arrived; ECLOSED when the mapping is gone
 */
export function futexWait(m: Mapping, offset: number, expected: number, timeoutMs: number): boolean {
  const r = sys.shmkit_futex_wait(m.id, offset, expected >>> 0, timeoutMs > 0 ? timeoutMs : 0);
  if (r >= 0) return true;
  if (r === -ERRNO.ETIMEDOUT) return false;
  if (r === -ERRNO.EINTR) {
    throw new ShmError(
      "EINTR",
      "Wait interrupted by a signal: returning to the event loop so its handler runs (EINTR)",
      {
        errno: ERRNO.EINTR,
        syscall: "futex",
      },
    );
  }
  if (r === -ERRNO.EAGAIN) return true;
  throw new ShmError("ECLOSED", `Wait failed: the mapping is gone (${r})`);
}

/** Wakes up to `count` waiters (all when omitted) parked on the word at `offset`. */
export function futexWake(m: Mapping, offset: number, count = 0x7fffffff): number {
  return sys.shmkit_futex_wake(m.id, offset, count);
}

// ---------------------------------------------------------------------------------------------
// The asynchronous pump: tokens registered natively, one off-thread `waiter_next` outstanding.

const pending = new Map<number, () => void>();
const out = new Int32Array(512);
let pumping = false;

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  native.waiterRef(true);
  try {
    while (pending.size > 0) {
      const n = await native.waiterNext(out, 1000);
      for (let i = 0; i < n; i++) {
        const resolve = pending.get(out[i]);
        if (resolve) {
          pending.delete(out[i]);
          resolve();
        }
      }
    }
  } finally {
    pumping = false;
    native.waiterRef(false);
  }
}

function settleIdle(): void {
  // No waits left: end the outstanding native call so the process may exit.
  if (pending.size === 0 && pumping) sys.shmkit_waiter_interrupt();
}

/**
 * Resolves once the word at `offset` differs from `expected` (or was woken after changing), never
 * blocking the event loop. Resolves `false` on timeout; rejects with `signal.reason` on abort.
 */
export function waitAsync(
  m: Mapping,
  offset: number,
  expected: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const token = sys.shmkit_waiter_add(m.id, offset, expected >>> 0);
  if (token < 0) return Promise.reject(new ShmError("ECLOSED", `Cannot wait: the mapping is gone (${token})`));
  return new Promise<boolean>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const cancel = (): void => {
      pending.delete(token);
      sys.shmkit_waiter_cancel(token);
      finish();
      settleIdle();
    };
    const onAbort = (): void => {
      cancel();
      reject(signal!.reason);
    };
    pending.set(token, () => {
      finish();
      settleIdle();
      resolve(true);
    });
    if (timeoutMs !== Infinity) {
      timer = setTimeout(() => {
        cancel();
        resolve(false);
      }, timeoutMs);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    pump();
  });
}

/** Number of asynchronous waits this process has pending (for tests and leak checks). */
export function pendingAsyncWaits(): number {
  return pending.size;
}
