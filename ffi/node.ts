/**
 * Node backend: koffi. koffi 3 has zero-copy `koffi.view`, but Node 20 cannot detach those
 * buffers, so `detach` returns false and closing tombstones the mapping instead. The waiter pump
 * is one koffi async call at a time (one libuv threadpool thread).
 *
 * @module
 */
import koffi from "koffi";
import type { Backend } from "./types.ts";
import { type NativeSymbols, SYMBOLS } from "./symbols.ts";

type AsyncFn = (o: Int32Array, m: number, t: number, cb: (err: unknown, res: number) => void) => void;

/** Opens the library at `path` and returns the Node backend. */
export function open(path: string): Backend {
  const lib = koffi.load(path);
  const symbols: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(SYMBOLS)) {
    const proto = def.c.replace(
      /const uint8_t \*|_Out_ uint8_t \*|_Out_ double \*|_Out_ int32_t \*|_Inout_ uint64_t \*/g,
      "void *",
    );
    symbols[name] = lib.func(proto);
  }
  const next = symbols.shmkit_waiter_next as { async: AsyncFn };
  const detachable = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === "function";
  let refs = 0;
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  return {
    runtime: "node",
    libraryPath: path,
    symbols: symbols as unknown as NativeSymbols,
    view(address: number, length: number): ArrayBuffer {
      return koffi.view(BigInt(address), length);
    },
    detach(buffer: ArrayBuffer): boolean {
      if (!detachable) return false;
      try {
        (buffer as unknown as { transfer(n: number): ArrayBuffer }).transfer(0);
        return true;
      } catch {
        return false;
      }
    },
    waiterNext(out: Int32Array, timeoutMs: number): Promise<number> {
      return new Promise((resolve, reject) => {
        next.async(out, out.length, timeoutMs, (err, res) => err ? reject(err) : resolve(res));
      });
    },
    waiterRef(on: boolean): void {
      // koffi async calls do not keep Node's loop alive on their own: hold a timer while waiting.
      refs = on ? 1 : 0;
      if (refs && !keepAlive) keepAlive = setInterval(() => {}, 1 << 30);
      if (!refs && keepAlive) {
        clearInterval(keepAlive);
        keepAlive = undefined;
      }
    },
  };
}
