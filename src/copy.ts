/**
 * Copying a caller's bytes into shared memory (a message's payload into its slot or record).
 *
 * `TypedArray.prototype.set` is a call into the runtime with its own stack traffic; for the
 * shortest payloads (up to ffi/mod.ts `loopCopyMax`, 16 bytes) a loop of 4-byte stores is cheaper.
 * Across processes the payload's stores wait for the peer's cache lines, and stores leave the
 * CPU's store buffer in program order, so the call's stack stores can queue behind them: on Bun a
 * loop of 4-byte stores up to 64 bytes once doubled the MessageLog's cross-process rate for 64-byte
 * records in interleaved runs; paired runs of 2026-12-02 put `set` ahead on Bun too (ffi/mod.ts;
 * cause of the change not found), and on V8 (Deno, Node) the loop never gained across processes.
 *
 * @module
 */
import { loopCopyMax } from "./sys.ts";

/** The loop assembles little-endian words (every platform shmkit builds for today is little-endian). */
const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Payloads of at most this many bytes are copied by {@linkcode copyIn}'s loop. */
export const LOOP_COPY_MAX: number = loopCopyMax;

/**
 * Copies `n` bytes of `src` (its whole length) to `u8[at..at+n)`; `i32` views the same buffer
 * from the same byte offset and `at` is a multiple of 4. The caller has checked that the bytes fit.
 */
export function copyIn(u8: Uint8Array, i32: Int32Array, at: number, src: Uint8Array, n: number): void {
  if (n > LOOP_COPY_MAX) {
    u8.set(src, at);
    return;
  }
  let i = 0;
  if (LE) {
    for (let q = at >> 2; i + 4 <= n; i += 4, q++) {
      i32[q] = src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24);
    }
  }
  for (; i < n; i++) u8[at + i] = src[i];
}
