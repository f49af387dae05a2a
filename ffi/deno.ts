/**
 * Deno backend: `Deno.dlopen`. Needs plain `--allow-ffi` (a path-scoped grant cannot build
 * ArrayBuffers over pointers).
 *
 * @module
 */
import type { Backend } from "./types.ts";
import { type NativeSymbols, type NativeType, SYMBOLS } from "./symbols.ts";

function denoType(t: NativeType): Deno.NativeType | Deno.NativeResultType {
  return t === "buffer" ? "buffer" : t;
}

function declarations(): Record<string, Deno.ForeignFunction> {
  const out: Record<string, Deno.ForeignFunction> = {};
  for (const [name, def] of Object.entries(SYMBOLS)) {
    out[name] = {
      parameters: def.parameters.map(denoType) as Deno.NativeType[],
      result: denoType(def.result) as Deno.NativeResultType,
    };
  }
  // The waiter pump runs on Deno's blocking pool: one outstanding call per process.
  out.waiter_next_async = {
    name: "shmkit_waiter_next",
    parameters: ["buffer", "i32", "f64"],
    result: "i32",
    nonblocking: true,
  };
  return out;
}

/** Opens the library at `path` and returns the Deno backend. */
export function open(path: string): Backend {
  const lib = Deno.dlopen(path, declarations());
  const symbols = lib.symbols as unknown as NativeSymbols;
  const nextAsync = (lib.symbols as unknown as Record<string, (o: Int32Array, m: number, t: number) => Promise<number>>)
    .waiter_next_async;
  return {
    runtime: "deno",
    libraryPath: path,
    symbols,
    view(address: number, length: number): ArrayBuffer {
      const ptr = Deno.UnsafePointer.create(BigInt(address));
      if (ptr === null) throw new RangeError("Cannot view a null address");
      return Deno.UnsafePointerView.getArrayBuffer(ptr, length);
    },
    detach(buffer: ArrayBuffer): boolean {
      if (!buffer.detached) buffer.transfer(0);
      return true;
    },
    waiterNext(out: Int32Array, timeoutMs: number): Promise<number> {
      return nextAsync(out, out.length, timeoutMs);
    },
    waiterRef(): void {
      // A pending nonblocking call keeps Deno alive; the pump only runs while waits are pending.
    },
  };
}
