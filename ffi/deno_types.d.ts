/**
 * The few `Deno` FFI declarations ffi/deno.ts uses, for the tsc passes (Node, Bun, the npm build)
 * that compile ffi/deno.ts because ffi/mod.ts imports it statically. `deno check` never sees this
 * file: Deno has the real declarations.
 */
declare namespace Deno {
  type NativeType =
    | "i8"
    | "u8"
    | "i16"
    | "u16"
    | "i32"
    | "u32"
    | "i64"
    | "u64"
    | "usize"
    | "isize"
    | "f32"
    | "f64"
    | "pointer"
    | "buffer"
    | "function";
  type NativeResultType = NativeType | "void";
  interface ForeignFunction {
    name?: string;
    parameters: readonly NativeType[];
    result: NativeResultType;
    nonblocking?: boolean;
  }
  interface DynamicLibrary {
    symbols: Record<string, unknown>;
    close(): void;
  }
  type PointerObject = { readonly __brand: "Deno.PointerObject" };
  const UnsafePointer: { create(value: bigint): PointerObject | null };
  const UnsafePointerView: { getArrayBuffer(pointer: PointerObject, byteLength: number, offset?: number): ArrayBuffer };
  /** Not used by ffi/deno.ts: declared because tests read `globalThis.Deno.args` through casts. */
  const args: string[];
  function dlopen(path: string, symbols: Record<string, ForeignFunction>): DynamicLibrary;
}
