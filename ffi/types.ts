/**
 * The interface every runtime backend implements. Code outside `ffi/` sees only this.
 *
 * @module
 */
import type { NativeSymbols } from "./symbols.ts";

/** The JavaScript runtime shmkit runs on. */
export type Runtime = "deno" | "bun" | "node";

/** What a backend gives the rest of the library. */
export interface Backend {
  /** Which runtime this is. */
  readonly runtime: Runtime;
  /**
   * True where `Atomics.load` is a locked read-modify-write and a plain typed-array read of a word
   * right after this thread's own `Atomics` store or read-modify-write is ordered as
   * `Atomics.load` would be: Bun (JavaScriptCore) on x86-64, where `Atomics.load` compiles to
   * `lock xadd 0` and `Atomics.store` to `xchg` (a full barrier the JIT does not move loads
   * across). The wake checks of the hot paths (src/wait.ts `readFlag`) then read plainly: a
   * locked read takes the peer's cache line exclusive on every message. False elsewhere (on Deno
   * plain reads measured no gain; other CPUs need the real acquire). `SHMKIT_PLAIN_FLAG_READS=0`
   * turns it off.
   */
  readonly plainFlagReads: boolean;
  /** The path of the loaded native library. */
  readonly libraryPath: string;
  /** The library's functions, all synchronous. */
  readonly symbols: NativeSymbols;
  /** A zero-copy ArrayBuffer over `length` bytes at `address`. */
  view(address: number, length: number): ArrayBuffer;
  /**
   * Detach `buffer` so every typed array over it reads length 0. Returns false where the runtime
   * cannot detach external memory (Node 20 + koffi): the caller then tombstones the mapping.
   */
  detach(buffer: ArrayBuffer): boolean;
  /** Calls shmkit_waiter_next off the JS thread; resolves with the number of tokens in `out`. */
  waiterNext(out: Int32Array, timeoutMs: number): Promise<number>;
  /** Marks the off-thread waiter as (not) keeping the process alive. */
  waiterRef(keepAlive: boolean): void;
}
