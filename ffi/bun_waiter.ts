/**
 * Bun waiter Worker: blocks in shmkit_waiter_next (off the main thread) and posts every batch of
 * completed wait tokens to the main thread. Stops when the main thread sets `stop[0]`.
 *
 * @module
 */
import { dlopen } from "bun:ffi";
import { declarations } from "./bun.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent<{ path: string; stop: Int32Array }>) => {
  const { path, stop } = e.data;
  const lib = dlopen(path, declarations());
  const next = lib.symbols.shmkit_waiter_next as unknown as (o: Int32Array, m: number, t: number) => number;
  const out = new Int32Array(256);
  const loop = (): void => {
    while (Atomics.load(stop, 0) === 0) {
      const n = next(out, out.length, 1000);
      // postMessage only enqueues: the batch is delivered while this thread blocks again.
      if (n > 0) self.postMessage(Array.from(out.subarray(0, n)));
    }
  };
  loop();
};
