/**
 * Bun backend: `bun:ffi`. Bun has no nonblocking FFI calls, so the waiter pump runs in a Worker
 * that blocks in shmkit_waiter_next and posts completed tokens back (threadsafe JSCallbacks have
 * a crash history; a Worker is the conservative choice).
 *
 * @module
 */
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";
import type { Backend } from "./types.ts";
import { type NativeSymbols, type NativeType, SYMBOLS } from "./symbols.ts";

function bunType(t: NativeType): FFIType {
  switch (t) {
    case "buffer":
      return FFIType.ptr;
    case "i32":
      return FFIType.i32;
    case "u32":
      return FFIType.u32;
    case "f64":
      return FFIType.f64;
    default:
      return FFIType.void;
  }
}

/** The Bun FFI declaration of every symbol. */
export function declarations(): Record<string, { args: FFIType[]; returns: FFIType }> {
  const out: Record<string, { args: FFIType[]; returns: FFIType }> = {};
  for (const [name, def] of Object.entries(SYMBOLS)) {
    out[name] = { args: def.parameters.map(bunType), returns: bunType(def.result) };
  }
  return out;
}

/** Bun Workers can stop keeping the process alive. */
interface Refable {
  ref(): void;
  unref(): void;
}

/** Opens the library at `path` and returns the Bun backend. */
export function open(path: string): Backend {
  const lib = dlopen(path, declarations());
  const symbols = lib.symbols as unknown as NativeSymbols;
  let worker: Worker | undefined;
  let keepAlive = false;
  const batches: number[][] = [];
  let resolveNext: (() => void) | undefined;
  const stop = new Int32Array(new SharedArrayBuffer(4));

  function start(): Worker {
    if (worker) return worker;
    const w = new Worker(
      new URL(import.meta.url.endsWith(".ts") ? "./bun_waiter.ts" : "./bun_waiter.js", import.meta.url).href,
    );
    w.onmessage = (e: MessageEvent<number[]>) => {
      batches.push(e.data);
      const r = resolveNext;
      resolveNext = undefined;
      r?.();
    };
    w.postMessage({ path, stop });
    if (!keepAlive) (w as unknown as Refable).unref();
    process.once("exit", () => {
      Atomics.store(stop, 0, 1);
      symbols.shmkit_waiter_interrupt();
    });
    worker = w;
    return w;
  }

  return {
    runtime: "bun",
    libraryPath: path,
    symbols,
    view(address: number, length: number): ArrayBuffer {
      return toArrayBuffer(address as never, 0, length);
    },
    detach(buffer: ArrayBuffer): boolean {
      if (!buffer.detached) buffer.transfer(0);
      return true;
    },
    async waiterNext(out: Int32Array, timeoutMs: number): Promise<number> {
      start();
      if (batches.length === 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          resolveNext = resolve;
          if (timeoutMs >= 0) timer = setTimeout(resolve, timeoutMs);
        });
        if (timer !== undefined) clearTimeout(timer);
      }
      const batch = batches.shift();
      if (!batch) return 0;
      const n = Math.min(batch.length, out.length);
      for (let i = 0; i < n; i++) out[i] = batch[i];
      if (n < batch.length) batches.unshift(batch.slice(n));
      return n;
    },
    waiterRef(on: boolean): void {
      keepAlive = on;
      if (!worker) return;
      if (on) (worker as unknown as Refable).ref();
      else (worker as unknown as Refable).unref();
    },
  };
}
