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
