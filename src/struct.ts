/**
 * Typed structs in shared memory (shmutils' `m.new("size_t *", 0)`, Python's
 * `multiprocessing.Value` and `ctypes.Structure`): a small schema of fields gives a type whose
 * accessors have a property per field, atomic operations on integer fields, and a byte layout any
 * other runtime or language reads from the same schema.
 *
 * Layout rules (those of a C struct on x86-64 / arm64, so a C program declaring the fields in the
 * same order reads the same bytes): fields in schema order, each at the next multiple of its
 * alignment; the struct's alignment is its largest field alignment and its size a multiple of it.
 *
 * | field spec                          | bytes      | align | JS value                          |
 * |-------------------------------------|------------|-------|-----------------------------------|
 * | "u8" "i8" "bool"                    | 1          | 1     | number (bool: boolean)            |
 * | "u16" "i16"                         | 2          | 2     | number                            |
 * | "u32" "i32" "f32"                   | 4          | 4     | number                            |
 * | "u64" "i64"                         | 8          | 8     | bigint                            |
 * | "f64"                               | 8          | 8     | number                            |
 * | { type: "utf8", length: n }         | n          | 1     | string (NUL-padded UTF-8)         |
 * | { type: "bytes", length: n }        | n          | 1     | Uint8Array (a live view)          |
 * | { type: "f64", length: n } (any scalar) | n * size | size | typed array (a live view)         |
 * | OtherStruct                         | its size   | its   | nested accessor                   |
 * | { type: OtherStruct, length: n }    | n * size   | its   | array of nested accessors         |
 *
 * All values are little-endian. Integer fields (u8..u64, i8..i64) support atomic `$add`, `$sub`,
 * `$and`, `$or`, `$xor`, `$exchange`, `$compareExchange`, `$load` and `$store` (sequentially
 * consistent); plain property reads and writes are plain loads and stores.
 *
 * @module
 */
import { SharedMemory } from "./segment.ts";

/** A scalar field type. */
export type ScalarType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64" | "i64" | "f32" | "f64" | "bool";

/** One field of a schema. */
export type FieldSpec =
  | ScalarType
  | { readonly type: ScalarType; readonly length: number }
  | { readonly type: "utf8"; readonly length: number }
  | { readonly type: "bytes"; readonly length: number }
  // deno-lint-ignore no-explicit-any
  | StructType<any>
  // deno-lint-ignore no-explicit-any
  | { readonly type: StructType<any>; readonly length: number };

/** A schema: field names (not starting with `$`) to field specs, in layout order. */
export type Schema = Record<string, FieldSpec>;

/** The JS value of a scalar field type. */
export type ScalarValue<T> = T extends "u64" | "i64" ? bigint : T extends "bool" ? boolean : number;
/** The typed array of an array field of scalar type T. */
export type ArrayOf<T> = T extends "u8" ? Uint8Array
  : T extends "i8" ? Int8Array
  : T extends "u16" ? Uint16Array
  : T extends "i16" ? Int16Array
  : T extends "u32" ? Uint32Array
  : T extends "i32" ? Int32Array
  : T extends "u64" ? BigUint64Array
  : T extends "i64" ? BigInt64Array
  : T extends "f32" ? Float32Array
  : T extends "f64" ? Float64Array
  : T extends "bool" ? Uint8Array
  : never;

/** The JS value of a field. */
export type FieldValue<F> = F extends ScalarType ? ScalarValue<F>
  : F extends StructType<infer S> ? StructValue<S>
  : F extends { type: "utf8" } ? string
  : F extends { type: "bytes" } ? Uint8Array
  : F extends { type: StructType<infer S>; length: number } ? readonly StructValue<S>[]
  : F extends { type: infer T; length: number } ? ArrayOf<T>
  : never;

/** Names of the integer fields of a schema (the ones with atomic operations). */
export type IntegerField<S extends Schema> =
  & {
    [K in keyof S]: S[K] extends "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64" | "i64" ? K : never;
  }[keyof S]
  & string;

/** The value type of integer field K: bigint for u64/i64, else number. */
export type IntValue<S extends Schema, K extends keyof S> = S[K] extends "u64" | "i64" ? bigint : number;

/** Atomic operations of an accessor, on its integer fields. */
export interface StructAtomics<S extends Schema> {
  /** Atomically adds `n`; returns the previous value. */
  $add<K extends IntegerField<S>>(field: K, n: IntValue<S, K>): IntValue<S, K>;
  /** Atomically subtracts `n`; returns the previous value. */
  $sub<K extends IntegerField<S>>(field: K, n: IntValue<S, K>): IntValue<S, K>;
  /** Atomic bitwise and; returns the previous value. */
  $and<K extends IntegerField<S>>(field: K, n: IntValue<S, K>): IntValue<S, K>;
  /** Atomic bitwise or; returns the previous value. */
  $or<K extends IntegerField<S>>(field: K, n: IntValue<S, K>): IntValue<S, K>;
  /** Atomic bitwise xor; returns the previous value. */
  $xor<K extends IntegerField<S>>(field: K, n: IntValue<S, K>): IntValue<S, K>;
  /** Atomically stores `v`; returns the previous value. */
  $exchange<K extends IntegerField<S>>(field: K, v: IntValue<S, K>): IntValue<S, K>;
  /** Stores `replacement` if the field holds `expected`; returns the value it held. */
  $compareExchange<K extends IntegerField<S>>(
    field: K,
    expected: IntValue<S, K>,
    replacement: IntValue<S, K>,
  ): IntValue<S, K>;
  /** Atomic (sequentially consistent) load. */
  $load<K extends IntegerField<S>>(field: K): IntValue<S, K>;
  /** Atomic (sequentially consistent) store; returns `v`. */
  $store<K extends IntegerField<S>>(field: K, v: IntValue<S, K>): IntValue<S, K>;
  /** The struct's bytes (a live view). */
  readonly $bytes: Uint8Array;
  /** Plain object copy of every field (for logging and JSON; bigints stay bigints). */
  $toObject(): Record<string, unknown>;
}

/** An accessor: a property per field, plus {@linkcode StructAtomics}. */
export type StructValue<S extends Schema> = { -readonly [K in keyof S]: FieldValue<S[K]> } & StructAtomics<S>;

/** Where a field sits. */
export interface FieldInfo {
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Bytes the field occupies. */
  readonly size: number;
  /** Its spec as JSON (`"u32"`, `{ type: "utf8", length: 16 }`, nested structs as their schema). */
  readonly spec: unknown;
}

const SCALARS: Record<ScalarType, { size: number; ctor: TypedCtor; int: boolean }> = {
  u8: { size: 1, ctor: Uint8Array, int: true },
  i8: { size: 1, ctor: Int8Array, int: true },
  u16: { size: 2, ctor: Uint16Array, int: true },
  i16: { size: 2, ctor: Int16Array, int: true },
  u32: { size: 4, ctor: Uint32Array, int: true },
  i32: { size: 4, ctor: Int32Array, int: true },
  u64: { size: 8, ctor: BigUint64Array, int: true },
  i64: { size: 8, ctor: BigInt64Array, int: true },
  f32: { size: 4, ctor: Float32Array, int: false },
  f64: { size: 8, ctor: Float64Array, int: false },
  bool: { size: 1, ctor: Uint8Array, int: false },
};

// deno-lint-ignore no-explicit-any
type TypedCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => any;
// deno-lint-ignore no-explicit-any
type Typed = any;

type Kind = "scalar" | "array" | "utf8" | "bytes" | "struct" | "structs";
interface Field {
  name: string;
  kind: Kind;
  offset: number;
  size: number;
  align: number;
  length: number;
  scalar?: ScalarType;
  // deno-lint-ignore no-explicit-any
  sub?: StructType<any>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Accessor storage: one typed array per field (index = field index). */
interface Instance {
  _v: Typed[];
  _bytes: Uint8Array;
}

/**
 * A struct type made by {@linkcode struct}. It places like any shmkit object
 * (`heap.findOrCreate(Counter, "counter", {})`, `Counter.init(seg, off)`, `Counter.at(seg, off)`)
 * and wraps any bytes (`Counter.view(heap.bytes(off, Counter.size))`).
 */
export class StructType<S extends Schema> {
  /** Bytes of one struct (a multiple of `align`). */
  readonly size: number;
  /** Alignment (the largest field alignment). */
  readonly align: number;
  /** The schema as given. */
  readonly schema: S;
  /** Every field's offset and size, by name. */
  readonly fields: Readonly<Record<keyof S & string, FieldInfo>>;
  readonly #fields: Field[];
  readonly #index: Map<string, number>;
  readonly #proto: object;

  /** @internal Use {@linkcode struct}. */
  constructor(schema: S) {
    if (typeof schema !== "object" || schema === null) throw new TypeError("A struct schema must be an object");
    const fields: Field[] = [];
    let off = 0;
    let align = 1;
    for (const [name, spec] of Object.entries(schema)) {
      if (name.startsWith("$") || name === "_v" || name === "_bytes" || name === "constructor") {
        throw new TypeError(`Struct field name ${JSON.stringify(name)} is reserved`);
      }
      const f = fieldOf(name, spec);
      off = Math.ceil(off / f.align) * f.align;
      f.offset = off;
      off += f.size;
      if (f.align > align) align = f.align;
      fields.push(f);
    }
    if (fields.length === 0) throw new TypeError("A struct needs at least one field");
    this.size = Math.max(align, Math.ceil(off / align) * align);
    this.align = align;
    this.schema = schema;
    this.#fields = fields;
    this.#index = new Map(fields.map((f, i) => [f.name, i]));
    const info: Record<string, FieldInfo> = {};
    for (const f of fields) info[f.name] = { offset: f.offset, size: f.size, spec: specJson(schema[f.name]) };
    this.fields = info as Record<keyof S & string, FieldInfo>;
    this.#proto = makeProto(fields, this.#index);
  }

  /**
   * Bytes of one struct (for {@linkcode SharedHeap.create} and friends: same as `size`).
   * @returns the size
   * @example
   * ```ts
   * import { struct } from "./mod.ts";
   * console.assert(struct({ a: "u8", b: "u32" }).byteLength() === 8);
   * ```
   */
  byteLength(): number {
    return this.size;
  }

  /**
   * Zeroes a struct at `byteOffset` of `segment` and returns its accessor.
   * @param segment the segment
   * @param byteOffset a multiple of `align`
   * @returns the accessor
   * @throws {RangeError} when it does not fit or is misaligned
   * @example
   * ```ts
   * import { SharedMemory, struct } from "./mod.ts";
   * const Point = struct({ x: "f64", y: "f64" });
   * using seg = SharedMemory.create(null, 4096);
   * const p = Point.init(seg, 0);
   * p.x = 1.5;
   * seg.unlink();
   * ```
   */
  init(segment: SharedMemory, byteOffset: number): StructValue<S> {
    const v = this.at(segment, byteOffset);
    v.$bytes.fill(0);
    return v;
  }

  /**
   * The accessor of the struct at `byteOffset` of `segment` (no header: the schema is the contract).
   * @param segment the segment
   * @param byteOffset a multiple of `align`
   * @returns the accessor
   * @throws {RangeError} when it does not fit or is misaligned
   * @example
   * ```ts
   * import { SharedMemory, struct } from "./mod.ts";
   * const Point = struct({ x: "f64", y: "f64" });
   * using seg = SharedMemory.create(null, 4096);
   * Point.init(seg, 64).y = 2;
   * console.assert(Point.at(seg, 64).y === 2);
   * seg.unlink();
   * ```
   */
  at(segment: SharedMemory, byteOffset: number): StructValue<S> {
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % this.align !== 0) {
      throw new RangeError(`A struct must start at a multiple of ${this.align}, got ${byteOffset}`);
    }
    return this.view(segment.bytes(byteOffset, this.size));
  }

  /**
   * The accessor over `bytes` (at least `size` long, aligned to `align` in its buffer).
   * @param bytes e.g. `heap.bytes(offset, T.size)` or a plain `new Uint8Array(T.size)`
   * @returns the accessor (live: it reads and writes `bytes`)
   * @throws {RangeError} when too short or misaligned
   * @example
   * ```ts
   * import { struct } from "./mod.ts";
   * const T = struct({ n: "u32", name: { type: "utf8", length: 12 } });
   * const t = T.view(new Uint8Array(T.size));
   * t.name = "hello";
   * t.$add("n", 2);
   * console.assert(t.n === 2 && t.name === "hello");
   * ```
   */
  view(bytes: Uint8Array): StructValue<S> {
    if (!(bytes instanceof Uint8Array) || bytes.length < this.size) {
      throw new RangeError(`A struct of ${this.size} bytes needs a Uint8Array of at least that length`);
    }
    if (bytes.byteOffset % this.align !== 0) {
      throw new RangeError(`A struct aligned to ${this.align} cannot start at buffer offset ${bytes.byteOffset}`);
    }
    const base = bytes.byteOffset;
    const buf = bytes.buffer;
    const v: Typed[] = [];
    for (const f of this.#fields) {
      const at = base + f.offset;
      switch (f.kind) {
        case "scalar":
          v.push(new SCALARS[f.scalar!].ctor(buf, at, 1));
          break;
        case "array":
          v.push(new SCALARS[f.scalar!].ctor(buf, at, f.length));
          break;
        case "utf8":
        case "bytes":
          v.push(new Uint8Array(buf, at, f.size));
          break;
        case "struct":
          v.push(f.sub!.view(new Uint8Array(buf, at, f.sub!.size)));
          break;
        case "structs":
          v.push(
            Object.freeze(
              Array.from(
                { length: f.length },
                (_, i) => f.sub!.view(new Uint8Array(buf, at + i * f.sub!.size, f.sub!.size)),
              ),
            ),
          );
          break;
      }
    }
    const o = Object.create(this.#proto) as Instance;
    o._v = v;
    o._bytes = new Uint8Array(buf, base, this.size);
    return o as unknown as StructValue<S>;
  }
}

function fieldOf(name: string, spec: FieldSpec): Field {
  const bad = (why: string) => new TypeError(`Struct field ${JSON.stringify(name)}: ${why}`);
  if (typeof spec === "string") {
    const s = SCALARS[spec];
    if (!s) throw bad(`unknown type ${JSON.stringify(spec)}`);
    return { name, kind: "scalar", offset: 0, size: s.size, align: s.size, length: 1, scalar: spec };
  }
  if (spec instanceof StructType) {
    return { name, kind: "struct", offset: 0, size: spec.size, align: spec.align, length: 1, sub: spec };
  }
  if (typeof spec !== "object" || spec === null) throw bad("a field spec is a type name, a struct or { type, length }");
  const n = spec.length;
  if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 30) throw bad(`length must be a positive integer, got ${n}`);
  const t = spec.type;
  if (t === "utf8" || t === "bytes") return { name, kind: t, offset: 0, size: n, align: 1, length: n };
  if (t instanceof StructType) {
    return { name, kind: "structs", offset: 0, size: n * t.size, align: t.align, length: n, sub: t };
  }
  const s = SCALARS[t as ScalarType];
  if (!s) throw bad(`unknown type ${JSON.stringify(t)}`);
  return { name, kind: "array", offset: 0, size: n * s.size, align: s.size, length: n, scalar: t as ScalarType };
}

function specJson(spec: FieldSpec): unknown {
  if (typeof spec === "string") return spec;
  if (spec instanceof StructType) {
    return {
      type: "struct",
      fields: Object.fromEntries(Object.entries(spec.schema as Schema).map(([k, v]) => [k, specJson(v)])),
    };
  }
  const t = spec.type;
  return { type: t instanceof StructType ? specJson(t) : t, length: spec.length };
}

function makeProto(fields: Field[], index: Map<string, number>): object {
  const proto: Record<string, unknown> = {};
  fields.forEach((f, i) => {
    let d: PropertyDescriptor;
    switch (f.kind) {
      case "scalar":
        if (f.scalar === "bool") {
          d = {
            get(this: Instance) {
              return this._v[i][0] !== 0;
            },
            set(this: Instance, x: boolean) {
              this._v[i][0] = x ? 1 : 0;
            },
          };
        } else if (f.scalar === "u64" || f.scalar === "i64") {
          d = {
            get(this: Instance) {
              return this._v[i][0];
            },
            set(this: Instance, x: bigint | number) {
              this._v[i][0] = typeof x === "bigint" ? x : BigInt(x);
            },
          };
        } else {
          d = {
            get(this: Instance) {
              return this._v[i][0];
            },
            set(this: Instance, x: number) {
              this._v[i][0] = x;
            },
          };
        }
        break;
      case "utf8":
        d = {
          get(this: Instance) {
            const b: Uint8Array = this._v[i];
            let end = b.indexOf(0);
            if (end < 0) end = b.length;
            return decoder.decode(b.slice(0, end));
          },
          set(this: Instance, x: string) {
            const enc = encoder.encode(String(x));
            if (enc.length > f.size) {
              throw new RangeError(
                `Struct field ${JSON.stringify(f.name)} holds ${f.size} UTF-8 bytes, got ${enc.length}`,
              );
            }
            const b: Uint8Array = this._v[i];
            b.set(enc);
            b.fill(0, enc.length);
          },
        };
        break;
      case "bytes":
      case "array":
        d = {
          get(this: Instance) {
            return this._v[i];
          },
          set(this: Instance, x: ArrayLike<number | bigint>) {
            const b = this._v[i];
            if (x.length > b.length) {
              throw new RangeError(
                `Struct field ${JSON.stringify(f.name)} holds ${b.length} elements, got ${x.length}`,
              );
            }
            b.set(x);
            if (x.length < b.length) b.fill(typeof b[0] === "bigint" ? 0n : 0, x.length);
          },
        };
        break;
      default:
        d = {
          get(this: Instance) {
            return this._v[i];
          },
        };
    }
    Object.defineProperty(proto, f.name, { ...d, enumerable: true });
  });
  const intField = (self: Instance, name: string): Typed => {
    const i = index.get(name);
    const f = i === undefined ? undefined : fields[i];
    if (!f || f.kind !== "scalar" || !SCALARS[f.scalar!].int) {
      throw new TypeError(
        `Struct field ${JSON.stringify(name)} is not an integer field: atomics need u8..u64 or i8..i64`,
      );
    }
    return self._v[i!];
  };
  const ops: Record<string, unknown> = {
    $add(this: Instance, name: string, n: number | bigint) {
      return Atomics.add(intField(this, name), 0, n as never);
    },
    $sub(this: Instance, name: string, n: number | bigint) {
      return Atomics.sub(intField(this, name), 0, n as never);
    },
    $and(this: Instance, name: string, n: number | bigint) {
      return Atomics.and(intField(this, name), 0, n as never);
    },
    $or(this: Instance, name: string, n: number | bigint) {
      return Atomics.or(intField(this, name), 0, n as never);
    },
    $xor(this: Instance, name: string, n: number | bigint) {
      return Atomics.xor(intField(this, name), 0, n as never);
    },
    $exchange(this: Instance, name: string, n: number | bigint) {
      return Atomics.exchange(intField(this, name), 0, n as never);
    },
    $compareExchange(this: Instance, name: string, e: number | bigint, r: number | bigint) {
      return Atomics.compareExchange(intField(this, name), 0, e as never, r as never);
    },
    $load(this: Instance, name: string) {
      return Atomics.load(intField(this, name), 0);
    },
    $store(this: Instance, name: string, n: number | bigint) {
      return Atomics.store(intField(this, name), 0, n as never);
    },
    $toObject(this: Instance) {
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        const v = (this as unknown as Record<string, unknown>)[f.name];
        out[f.name] = f.kind === "struct"
          ? (v as { $toObject(): unknown }).$toObject()
          : f.kind === "structs"
          ? (v as { $toObject(): unknown }[]).map((x) => x.$toObject())
          : f.kind === "array" || f.kind === "bytes"
          ? Array.from(v as ArrayLike<unknown>)
          : v;
      }
      return out;
    },
  };
  for (const [k, fn] of Object.entries(ops)) Object.defineProperty(proto, k, { value: fn, enumerable: false });
  Object.defineProperty(proto, "$bytes", {
    get(this: Instance) {
      return this._bytes;
    },
    enumerable: false,
  });
  return proto;
}

/**
 * Defines a struct type from a schema (C layout rules, little-endian).
 * @param schema field names to types, in layout order
 * @returns the type: `size`, `align`, `fields`, `init` / `at` / `view`, placeable in a heap
 * @throws {TypeError} for an unknown type, a bad length or a reserved name (`$...`)
 * @example
 * ```ts
 * import { SharedHeap, struct } from "./mod.ts";
 * const Stats = struct({
 *   hits: "u64",
 *   ratio: "f64",
 *   ok: "bool",
 *   host: { type: "utf8", length: 32 },
 *   last: { type: "u32", length: 4 },
 * });
 * using heap = SharedHeap.create(null, { size: 1 << 16 });
 * const s = heap.findOrCreate(Stats, "stats", {}); // another process: heap.open(Stats, "stats")
 * s.$add("hits", 1n);
 * s.host = "db-1";
 * s.last[0] = 7;
 * console.assert(s.hits === 1n && s.host === "db-1");
 * heap.unlink();
 * ```
 */
export function struct<S extends Schema>(schema: S): StructType<S> {
  return new StructType(schema);
}
