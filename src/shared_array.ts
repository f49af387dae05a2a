/**
 * SharedArray: a numeric n-dimensional array in shared memory, zero-copy on every runtime and
 * byte-compatible with numpy (`np.ndarray(shape, dtype, buffer=shm.buf, offset=byteOffset)`).
 *
 * Array object layout (little-endian, at the object's byteOffset `o`, which is 64-byte aligned;
 * docs/layout/array.md documents the same table for other languages):
 *
 * | off | size      | field     | writer | reader | note                                            |
 * |-----|-----------|-----------|--------|--------|-------------------------------------------------|
 * | 0   | 64        | common    | init   | open   | common header (src/layout.ts), kind 7 "array"   |
 * | 64  | 2         | dtype     | init   | open   | DTYPE_CODE below (1 int8 ... 10 float64)        |
 * | 66  | 2         | itemSize  | init   | open   | bytes per element, must match dtype             |
 * | 68  | 4         | ndim      | init   | open   | 0..32 (0 = a scalar: one element)               |
 * | 72  | 8         | length    | init   | open   | u64, product of shape (checked on open)         |
 * | 80  | 16        | reserved  | -      | -      | zero                                            |
 * | 96  | 8 * ndim  | shape     | init   | open   | u64 per dimension, outermost first              |
 * | H   | len * isz | data      | anyone | anyone | H = headerSize (common header), multiple of 64  |
 *
 * The data is C-contiguous (row-major), little-endian, and starts at `o + headerSize`, where
 * headerSize = alignUp(96 + 8 * ndim, 64). The common header's byteLength is headerSize +
 * length * itemSize.
 *
 * Invariants checked on open (any failure is EBADHDR, nothing is read out of bounds):
 * A1 dtype is a known code and itemSize matches it; A2 ndim <= 32; A3 every dimension and
 * their product are safe integers and the product equals `length`; A4 headerSize is a multiple
 * of 64 and >= 96 + 8 * ndim; A5 headerSize + length * itemSize <= byteLength (and the common
 * header already checked byteOffset + byteLength <= segment size).
 *
 * Zero-length dimensions are allowed (as in numpy): the array then has length 0 and `data` is
 * an empty typed array.
 *
 * @module
 */
import { checkKeys, ShmError } from "./errors.ts";
import { alignUp, COMMON_HEADER_SIZE, OBJECT_ALIGN, publishReady, readHeader, writeHeader } from "./layout.ts";
import { checkHandle, HANDLE_VERSION, handleName, registerKind } from "./handle.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { createWhat, placeOrRelease, renamed } from "./object.ts";
import { native } from "./sys.ts";

/** Element types, named as numpy names them. */
export type DType =
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "float32"
  | "float64";

/** The typed array `data` is, for each dtype. */
export type ArrayData =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** The typed array `data` is for dtype `D`: `ArrayDataOf<"float64">` is Float64Array. */
export type ArrayDataOf<D extends DType> = {
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  float32: Float32Array;
  float64: Float64Array;
}[D];

/** The dtype code stored in the array header. */
export const DTYPE_CODE = {
  int8: 1,
  uint8: 2,
  int16: 3,
  uint16: 4,
  int32: 5,
  uint32: 6,
  int64: 7,
  uint64: 8,
  float32: 9,
  float64: 10,
} as const satisfies Record<DType, number>;

/** The numpy type string of each dtype (`np.dtype("<u8")`). */
export const NUMPY_TYPESTR = {
  int8: "|i1",
  uint8: "|u1",
  int16: "<i2",
  uint16: "<u2",
  int32: "<i4",
  uint32: "<u4",
  int64: "<i8",
  uint64: "<u8",
  float32: "<f4",
  float64: "<f8",
} as const satisfies Record<DType, string>;

type Ctor = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): ArrayData;
  readonly BYTES_PER_ELEMENT: number;
};

const CTORS: Record<DType, Ctor> = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
};

const DTYPES = Object.keys(DTYPE_CODE) as DType[];

/** Byte offsets of the array header fields, from the object's byteOffset (see the table above). */
export const ARRAY_LAYOUT = {
  dtype: 64,
  itemSize: 66,
  ndim: 68,
  length: 72,
  reserved: 80,
  shape: 96,
} as const;

/** The most dimensions an array may have (numpy's historical NPY_MAXDIMS). */
export const MAX_NDIM = 32;

/** The largest header (ndim = MAX_NDIM). */
const MAX_HEADER = alignUp(ARRAY_LAYOUT.shape + 8 * MAX_NDIM, OBJECT_ALIGN);

/**
 * The handle of a SharedArray: JSON-safe, reopened by {@linkcode SharedArray.attach}. Other
 * languages read the data at `dataOffset` (numpy:
 * `np.ndarray(h["shape"], dtype=h["dtype"], buffer=shm.buf, offset=h["dataOffset"])`).
 */
export interface SharedArrayHandle<D extends DType = DType> {
  /** Always `"shmkit.array"`. */
  readonly kind: "shmkit.array";
  /** Handle format version. */
  readonly version: number;
  /** The segment name, or null for an anonymous segment (then `segment` is set). */
  readonly name: string | null;
  /**
   * Where the object starts in the segment: its shmkit header (the data follows the header), or
   * the data itself for a raw array ({@linkcode SharedArray.wrap}). Not the data offset: use
   * `dataOffset` to read the elements.
   */
  readonly offset: number;
  /**
   * Where the elements start in the segment (bytes; `offset` plus the header size): pass it to
   * numpy as `offset`. Written by every handle since 0.2; optional when reading older handles.
   */
  readonly dataOffset?: number;
  /** Element type. */
  readonly dtype: D;
  /** Dimensions, C order. */
  readonly shape: readonly number[];
  /** True for an array made by {@linkcode SharedArray.wrap}: no shmkit header, data at `offset`. */
  readonly raw?: boolean;
  /** The segment handle when the segment is anonymous. */
  readonly segment?: SharedMemoryHandle;
}

/** Options of {@linkcode SharedArray.create} and {@linkcode SharedArray.init}. */
export interface SharedArrayCreateOptions {
  /** Every element starts as this value (default 0: a new segment is already zero). */
  fill?: number | bigint;
  /** File mode of the new segment (create only; default 0o600). */
  mode?: number;
}

/** Options of {@linkcode SharedArray.byteLength} and {@linkcode SharedArray.init}. */
export interface SharedArrayShapeOptions<D extends DType = DType> {
  /** Element type. */
  dtype: D;
  /** Dimensions (a number for one dimension), C order. */
  shape: number | readonly number[];
}

/** Options of {@linkcode SharedArray.open}. */
export interface SharedArrayOpenOptions<D extends DType = DType> {
  /**
   * The dtype the caller expects: checked against the header (EBADHDR when it differs), and the
   * array's type says so (`open(name, { dtype: "float64" }).data` is a Float64Array).
   */
  dtype?: D;
  /**
   * Map the segment read-only (a private copy-on-write mapping): writes through `data` never
   * reach the segment and never fault; other processes do not see them.
   */
  readOnly?: boolean;
}

/** Options of {@linkcode SharedArray.wrap}. */
export interface SharedArrayWrapOptions {
  /** Where the data starts in the segment (default 0); a multiple of the element size. */
  byteOffset?: number;
  /** When a name is given: open the segment read-only (copy-on-write). */
  readOnly?: boolean;
}

/** Checks a dtype name; TypeError for anything else. */
export function checkDType(dtype: unknown, what: string): DType {
  if (typeof dtype !== "string" || !(DTYPES as string[]).includes(dtype)) {
    throw new TypeError(`${what}: dtype must be one of ${DTYPES.join(", ")}, got ${JSON.stringify(dtype)}`);
  }
  return dtype as DType;
}

/** Checks a shape and returns it as a frozen array with its element count. RangeError if impossible. */
function checkShape(shape: unknown, itemSize: number, what: string): { shape: readonly number[]; length: number } {
  const dims = typeof shape === "number" ? [shape] : shape;
  if (!Array.isArray(dims)) throw new TypeError(`${what}: shape must be a number or an array of numbers`);
  if (dims.length > MAX_NDIM) {
    throw new RangeError(`${what}: ${dims.length} dimensions, at most ${MAX_NDIM} are supported`);
  }
  let length = 1;
  for (const d of dims) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`${what}: every dimension must be a non-negative integer, got ${String(d)}`);
    }
    length *= d;
    if (!Number.isSafeInteger(length * itemSize)) {
      throw new RangeError(`${what}: shape [${dims.join(", ")}] is too large to address`);
    }
  }
  return { shape: Object.freeze(dims.slice()), length };
}

function headerSizeOf(ndim: number): number {
  return alignUp(ARRAY_LAYOUT.shape + 8 * ndim, OBJECT_ALIGN);
}

function dtypeOf(data: unknown): DType | undefined {
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array || data instanceof Uint8ClampedArray) return "uint8";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Uint16Array) return "uint16";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint32Array) return "uint32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof BigUint64Array) return "uint64";
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  return undefined;
}

/** The fill value in the form the typed array of `dtype` takes. */
function fillValue(dtype: DType, fill: number | bigint, what: string): number | bigint {
  const big = dtype === "int64" || dtype === "uint64";
  if (typeof fill === "bigint") return big ? fill : Number(fill);
  if (typeof fill !== "number") throw new TypeError(`${what}: fill must be a number or a bigint, got ${typeof fill}`);
  if (big) {
    if (!Number.isInteger(fill)) throw new RangeError(`${what}: fill ${fill} is not an integer, the dtype is ${dtype}`);
    return BigInt(fill);
  }
  return fill;
}

/**
 * A numeric array in shared memory: a shape, a dtype and C-contiguous little-endian data.
 *
 * Role contract: any number of processes (and threads) may read and write the elements at once;
 * SharedArray itself adds no synchronization. Element reads and writes are plain memory accesses
 * with no ordering: publish results with a Mutex, a Ring message or `Atomics` on an integer
 * `data` view. Only the header is ordered: the creator's release store of `state = ready`
 * (publishReady) pairs with the acquire load in `open()`/`at()` (readHeader), so an opener sees
 * the whole header and the initial fill.
 *
 * `data` is one zero-copy typed array over all elements. A runtime whose ArrayBuffers or typed
 * arrays cannot be that large (Bun near 4 GiB, Node 20 at 2**32 elements) throws a RangeError
 * from `data`; {@linkcode SharedArray.window} gives zero-copy windows of any array on every
 * runtime.
 *
 * @example
 * ```ts
 * import { SharedArray } from "./mod.ts";
 * using a = SharedArray.zeros("doc-array", "float64", [2, 3]);
 * a.data[4] = 1.5;                        // row 1, column 1
 * using b = SharedArray.open("doc-array"); // any process, any runtime (or numpy)
 * console.assert(b.data[4] === 1.5 && b.shape.join() === "2,3");
 * a.unlink();
 * ```
 */
export class SharedArray<D extends DType = DType> implements Disposable {
  /** The element type. */
  readonly dtype: D;
  /** The dimensions, outermost first (frozen). */
  readonly shape: readonly number[];
  /** The number of elements (the product of `shape`). */
  readonly length: number;
  /** Where the data starts in the segment (bytes): pass it to numpy as `offset`. */
  readonly byteOffset: number;
  /** True if the segment is mapped read-only (copy-on-write: writes stay private). */
  readonly readOnly: boolean;
  #seg: SharedMemory;
  #owns: boolean;
  #offset: number; // the object's offset in the segment (header, or data of a raw array)
  #raw: boolean;
  #data?: ArrayDataOf<D>;
  #views: WeakRef<ArrayBuffer>[] = [];
  #closed = false;

  private constructor(
    seg: SharedMemory,
    owns: boolean,
    offset: number,
    raw: boolean,
    dtype: D,
    shape: readonly number[],
    length: number,
    byteOffset: number,
  ) {
    this.#seg = seg;
    this.#owns = owns;
    this.#offset = offset;
    this.#raw = raw;
    this.dtype = dtype;
    this.shape = shape;
    this.length = length;
    this.byteOffset = byteOffset;
    this.readOnly = seg.readOnly;
  }

  /**
   * Bytes an array of this dtype and shape takes (header and data), for placing it in a segment.
   *
   * @param options the dtype and the shape
   * @returns the object size in bytes
   * @throws {TypeError} for an unknown dtype
   * @throws {RangeError} for an impossible shape
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * console.assert(SharedArray.byteLength({ dtype: "uint8", shape: [10] }) === 128 + 10);
   * ```
   */
  static byteLength(options: SharedArrayShapeOptions): number {
    const what = "Cannot size array";
    const dtype = checkDType(options?.dtype, what);
    const per = CTORS[dtype].BYTES_PER_ELEMENT;
    const { shape, length } = checkShape(options.shape, per, what);
    return headerSizeOf(shape.length) + length * per;
  }

  /**
   * Formats an array at `byteOffset` of `segment` (header, then the fill if one is given) and
   * attaches it. The array does not own the segment: closing it leaves the segment mapped.
   *
   * @param segment the segment to place the array in
   * @param byteOffset a multiple of 64 where the header goes
   * @param options dtype, shape and an optional fill
   * @returns the attached array
   * @throws {ShmError} EINVAL for a misaligned offset or when the array does not fit
   * @throws {TypeError} for an unknown dtype
   * @throws {RangeError} for an impossible shape
   * @example
   * ```ts
   * import { SharedArray, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * using a = SharedArray.init(seg, 64, { dtype: "int32", shape: [4], fill: 7 });
   * console.assert(SharedArray.at(seg, 64).data[3] === 7);
   * seg.unlink();
   * ```
   */
  static init<D extends DType>(
    segment: SharedMemory,
    byteOffset: number,
    options: SharedArrayShapeOptions<D> & SharedArrayCreateOptions,
  ): SharedArray<D> {
    const what = `Cannot create array in ${segment.name === null ? "anonymous shared memory" : `"${segment.name}"`}`;
    checkKeys(options, ["dtype", "shape", "fill", "mode"], what);
    const dtype = checkDType(options?.dtype, what);
    const per = CTORS[dtype].BYTES_PER_ELEMENT;
    const { shape, length } = checkShape(options.shape, per, what);
    const fill = options.fill === undefined ? undefined : fillValue(dtype, options.fill, what);
    const headerSize = headerSizeOf(shape.length);
    const byteLength = headerSize + length * per;
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % OBJECT_ALIGN !== 0) {
      throw new ShmError(
        "EINVAL",
        `${what}: byteOffset ${byteOffset} must be a non-negative multiple of ${OBJECT_ALIGN} (EINVAL)`,
      );
    }
    if (byteOffset + byteLength > segment.size) {
      throw new ShmError(
        "EINVAL",
        `${what}: ${byteLength} bytes at ${byteOffset} do not fit in ${segment.size} bytes (EINVAL)`,
      );
    }
    if (segment.readOnly) throw new ShmError("EACCES", `${what}: the segment is mapped read-only (EACCES)`);
    const h = segment.bytes(byteOffset, headerSize);
    writeHeader(h.buffer as ArrayBuffer, h.byteOffset, "array", headerSize, byteLength);
    const dv = new DataView(h.buffer, h.byteOffset, headerSize);
    dv.setUint16(ARRAY_LAYOUT.dtype, DTYPE_CODE[dtype], true);
    dv.setUint16(ARRAY_LAYOUT.itemSize, per, true);
    dv.setUint32(ARRAY_LAYOUT.ndim, shape.length, true);
    dv.setBigUint64(ARRAY_LAYOUT.length, BigInt(length), true);
    for (let i = ARRAY_LAYOUT.reserved; i < ARRAY_LAYOUT.shape; i++) dv.setUint8(i, 0);
    for (let i = 0; i < shape.length; i++) dv.setBigUint64(ARRAY_LAYOUT.shape + 8 * i, BigInt(shape[i]), true);
    for (let i = ARRAY_LAYOUT.shape + 8 * shape.length; i < headerSize; i++) dv.setUint8(i, 0);
    const a = new SharedArray<D>(segment, false, byteOffset, false, dtype as D, shape, length, byteOffset + headerSize);
    if (fill !== undefined) a.#fill(fill);
    // I1: publish state = ready (release, inside publishReady); pairs with the acquire load of
    // state in readHeader (open/at), which then sees the header fields and the fill above.
    publishReady(h.buffer as ArrayBuffer, h.byteOffset);
    return a;
  }

  /**
   * Attaches the array whose header is at `byteOffset` of `segment`, validating the header.
   * The array does not own the segment.
   *
   * @param segment the segment holding the array
   * @param byteOffset where its header is (a multiple of 64)
   * @returns the attached array
   * @throws {ShmError} EBADHDR when there is no valid array header there, EINVAL for a misaligned offset
   * @example
   * ```ts
   * import { SharedArray, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * SharedArray.init(seg, 0, { dtype: "uint16", shape: [2, 2] });
   * using a = SharedArray.at(seg, 0);
   * console.assert(a.dtype === "uint16" && a.length === 4);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): SharedArray {
    const what = `Cannot open array ${segment.name === null ? "in anonymous shared memory" : `"${segment.name}"`}`;
    return SharedArray.#attach(segment, false, byteOffset, what);
  }

  static #attach(seg: SharedMemory, owns: boolean, off: number, what: string): SharedArray {
    const bad = (why: string): ShmError => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    if (!Number.isSafeInteger(off) || off < 0 || off % OBJECT_ALIGN !== 0) {
      throw new ShmError(
        "EINVAL",
        `${what}: byteOffset ${off} must be a non-negative multiple of ${OBJECT_ALIGN} (EINVAL)`,
      );
    }
    if (off + COMMON_HEADER_SIZE > seg.size) {
      throw bad(`the segment (${seg.size} bytes) is too small for a header at ${off}`);
    }
    // A window over the header only, so huge segments work where one ArrayBuffer cannot span them.
    const w = seg.bytes(off, Math.min(MAX_HEADER, seg.size - off));
    const base = off - w.byteOffset; // the segment offset where w.buffer starts
    // A1 (acquire, in readHeader): load state; pairs with I1 in init.
    const h = readHeader(w.buffer as ArrayBuffer, w.byteOffset, "array", what, 1000, seg.size - base);
    // A segment that ends inside the array header (a 64-byte segment holds only the common header).
    if (w.length < ARRAY_LAYOUT.shape) {
      throw bad(
        `the segment ends ${w.length} bytes after the header start, an array header needs ${ARRAY_LAYOUT.shape}`,
      );
    }
    if (h.headerSize > w.length) throw bad(`impossible header size ${h.headerSize}`);
    const dv = new DataView(w.buffer, w.byteOffset, w.length);
    // Every field is read once into a local and checked before use.
    const code = dv.getUint16(ARRAY_LAYOUT.dtype, true);
    const dtype = DTYPES.find((d) => DTYPE_CODE[d] === code);
    if (dtype === undefined) throw bad(`unknown dtype code ${code}`);
    const per = CTORS[dtype].BYTES_PER_ELEMENT;
    const itemSize = dv.getUint16(ARRAY_LAYOUT.itemSize, true);
    if (itemSize !== per) throw bad(`item size ${itemSize} does not match dtype ${dtype} (${per} bytes)`);
    const ndim = dv.getUint32(ARRAY_LAYOUT.ndim, true);
    if (ndim > MAX_NDIM) throw bad(`${ndim} dimensions (at most ${MAX_NDIM})`);
    const hs = h.headerSize;
    if (hs % OBJECT_ALIGN !== 0 || hs < ARRAY_LAYOUT.shape + 8 * ndim) {
      throw bad(`header size ${hs} cannot hold ${ndim} dimensions`);
    }
    const shape: number[] = [];
    let length = 1;
    for (let i = 0; i < ndim; i++) {
      const d = dv.getBigUint64(ARRAY_LAYOUT.shape + 8 * i, true);
      if (d > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`dimension ${i} is ${d}, too large`);
      shape.push(Number(d));
      length *= Number(d);
      if (!Number.isSafeInteger(length * per)) throw bad(`shape [${shape.join(", ")}, ...] overflows`);
    }
    const stored = dv.getBigUint64(ARRAY_LAYOUT.length, true);
    if (stored !== BigInt(length)) throw bad(`length ${stored} is not the product of shape [${shape.join(", ")}]`);
    if (hs + length * per > h.byteLength) {
      throw bad(`${length} elements of ${per} bytes need ${hs + length * per} bytes, the object has ${h.byteLength}`);
    }
    return new SharedArray(seg, owns, off, false, dtype, Object.freeze(shape), length, off + hs);
  }

  /**
   * Creates a segment named `name` holding a new array. Elements start as `options.fill` (0).
   *
   * @param name the segment name ("x" and "/x" are the same)
   * @param dtype the element type
   * @param shape a length, or the dimensions outermost first (0-length dimensions are allowed)
   * @param options fill value and file mode
   * @returns the array; it owns its segment
   * @throws {ShmError} EEXIST when the name is taken, EINVAL for a bad name, ENOSPC
   * @throws {TypeError} for an unknown dtype
   * @throws {RangeError} for an impossible shape or fill
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.create("doc-create", "int64", [2, 2], { fill: 5n });
   * console.assert(a.data[3] === 5n);
   * a.unlink();
   * ```
   */
  static create<D extends DType>(
    name: string | null,
    dtype: D,
    shape: number | readonly number[],
    options: SharedArrayCreateOptions = {},
  ): SharedArray<D> {
    const what = createWhat("array", name);
    checkKeys(options, ["fill", "mode"], what);
    const size = SharedArray.byteLength({ dtype: checkDType(dtype, what), shape });
    const make = () => SharedMemory.create(name, size, options.mode === undefined ? {} : { mode: options.mode });
    const seg = name === null ? make() : renamed(make, "Cannot create array", name);
    return placeOrRelease(seg, true, () => {
      // A new segment is zero already: a fill of 0 writes nothing.
      const zero = options.fill === undefined || options.fill === 0 || options.fill === 0n;
      const a = SharedArray.init<D>(seg, 0, { dtype, shape, ...(zero ? {} : { fill: options.fill }) });
      a.#owns = true;
      return a;
    });
  }

  /**
   * Creates an array of zeros. Same as `create(name, dtype, shape)`.
   *
   * @param name the segment name
   * @param dtype the element type
   * @param shape a length or the dimensions
   * @returns the array
   * @throws {ShmError} as {@linkcode SharedArray.create}
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.zeros("doc-zeros", "float32", 3);
   * console.assert(a.data.join() === "0,0,0");
   * a.unlink();
   * ```
   */
  static zeros<D extends DType>(name: string | null, dtype: D, shape: number | readonly number[]): SharedArray<D> {
    return SharedArray.create(name, dtype, shape);
  }

  /**
   * Creates an array of ones.
   *
   * @param name the segment name
   * @param dtype the element type
   * @param shape a length or the dimensions
   * @returns the array
   * @throws {ShmError} as {@linkcode SharedArray.create}
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.ones("doc-ones", "uint64", 2);
   * console.assert(a.data[1] === 1n);
   * a.unlink();
   * ```
   */
  static ones<D extends DType>(name: string | null, dtype: D, shape: number | readonly number[]): SharedArray<D> {
    return SharedArray.create(name, dtype, shape, { fill: 1 });
  }

  /**
   * Creates an array holding a copy of `data`. A typed array keeps its dtype (Uint8ClampedArray
   * becomes uint8, a DataView or other view its bytes as uint8); a plain array of numbers
   * becomes float64 (numbers are doubles), of bigints int64.
   *
   * @param name the segment name
   * @param data the values
   * @param shape the dimensions (default `[data.length]`); their product must equal the length
   * @returns the array
   * @throws {ShmError} as {@linkcode SharedArray.create}
   * @throws {RangeError} when the shape does not match the data
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.from("doc-from", new Int16Array([1, 2, 3, 4]), [2, 2]);
   * console.assert(a.dtype === "int16" && a.data[3] === 4);
   * a.unlink();
   * ```
   */
  static from(
    name: string | null,
    data: ArrayLike<number> | ArrayLike<bigint> | ArrayBufferView,
    shape?: readonly number[],
  ): SharedArray {
    const what = createWhat("array", name);
    let dtype = dtypeOf(data);
    let src: ArrayLike<number | bigint>;
    if (dtype !== undefined) src = data as ArrayLike<number>;
    else if (ArrayBuffer.isView(data)) {
      dtype = "uint8";
      src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else if (data !== null && typeof data === "object" && typeof (data as ArrayLike<number>).length === "number") {
      src = data as ArrayLike<number | bigint>;
      dtype = src.length > 0 && typeof src[0] === "bigint" ? "int64" : "float64";
    } else {
      throw new TypeError(`${what}: data must be an array-like of numbers or a typed array`);
    }
    const dims = shape ?? [src.length];
    const { length } = checkShape(dims, CTORS[dtype].BYTES_PER_ELEMENT, what);
    if (length !== src.length) {
      throw new RangeError(`${what}: shape [${dims.join(", ")}] holds ${length} elements, the data has ${src.length}`);
    }
    const a = SharedArray.create(name, dtype, dims);
    try {
      if (length > 0) (a.#window(0, length) as unknown as { set(s: ArrayLike<number | bigint>): void }).set(src);
      return a;
    } catch (e) {
      a.unlink();
      a.close();
      throw e instanceof TypeError ? new TypeError(`${what}: ${e.message}`) : e;
    }
  }

  /**
   * Opens the array in segment `name` (made by shmkit in any process or runtime).
   *
   * @param name the segment name
   * @param options `readOnly`: map copy-on-write (writes stay private and never fault)
   * @returns the array; it owns its mapping of the segment
   * @throws {ShmError} ENOENT when there is no such segment, EBADHDR when it holds no valid array, EACCES
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.ones("doc-open", "int32", 4);
   * using r = SharedArray.open("doc-open", { readOnly: true });
   * console.assert(r.readOnly && r.data[0] === 1);
   * a.unlink();
   * ```
   */
  static open<D extends DType = DType>(name: string, options: SharedArrayOpenOptions<D> = {}): SharedArray<D> {
    const what = `Cannot open array ${JSON.stringify(name)}`;
    checkKeys(options, ["dtype", "readOnly"], what);
    const want = options.dtype === undefined ? undefined : checkDType(options.dtype, what);
    const seg = renamed(
      () => SharedMemory.open(name, { readOnly: options.readOnly === true }),
      "Cannot open array",
      name,
    );
    return placeOrRelease(seg, false, () => {
      const a = SharedArray.#attach(seg, true, 0, what);
      if (want !== undefined && a.dtype !== want) {
        throw new ShmError("EBADHDR", `${what}: it holds ${a.dtype}, the caller expects ${want} (EBADHDR)`);
      }
      return a as SharedArray<D>;
    });
  }

  /**
   * Narrows the array's type to dtype `dtype` when that is what it holds (a type guard).
   *
   * @param dtype the dtype to test for
   * @returns true when `this.dtype === dtype`; `data` is then typed as that dtype's typed array
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.create(null, "float64", 3); // a random unused name
   * using b = SharedArray.attach(JSON.parse(JSON.stringify(a.handle())));
   * if (b.is("float64")) console.assert(b.data.reduce((x, y) => x + y, 0) === 0);
   * a.unlink();
   * ```
   */
  is<T extends DType>(dtype: T): this is SharedArray<T> {
    return (this.dtype as DType) === dtype;
  }

  /**
   * Views a segment that has no shmkit header (say, made by numpy or Python `SharedMemory`) as
   * an array: `dtype` and `shape` say what is at `byteOffset`. Nothing is validated beyond the
   * bounds, since a raw segment does not describe itself.
   *
   * @param segmentOrName an open segment (not owned) or a segment name (opened and owned)
   * @param dtype the element type
   * @param shape a length or the dimensions
   * @param options `byteOffset` of the data (a multiple of the element size), `readOnly` for a name
   * @returns the array
   * @throws {ShmError} ENOENT for a missing name, EINVAL when the array does not fit or is misaligned
   * @example
   * ```ts
   * import { SharedArray, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 64);
   * seg.view(Float64Array)[1] = 2.5;
   * using a = SharedArray.wrap(seg, "float64", [2], { byteOffset: 0 });
   * console.assert(a.data[1] === 2.5);
   * seg.unlink();
   * ```
   */
  static wrap<D extends DType>(
    segmentOrName: SharedMemory | string,
    dtype: D,
    shape: number | readonly number[],
    options: SharedArrayWrapOptions = {},
  ): SharedArray<D> {
    const named = typeof segmentOrName === "string";
    const what = `Cannot wrap ${named ? JSON.stringify(segmentOrName) : "segment"} as an array`;
    checkKeys(options, ["byteOffset", "readOnly"], what);
    checkDType(dtype, what);
    const per = CTORS[dtype].BYTES_PER_ELEMENT;
    const dims = checkShape(shape, per, what);
    const off = options.byteOffset ?? 0;
    if (!Number.isSafeInteger(off) || off < 0 || off % per !== 0) {
      throw new ShmError("EINVAL", `${what}: byteOffset ${off} must be a non-negative multiple of ${per} (EINVAL)`);
    }
    const seg = named ? SharedMemory.open(segmentOrName, { readOnly: options.readOnly === true }) : segmentOrName;
    if (off + dims.length * per > seg.size) {
      if (named) seg.close();
      throw new ShmError(
        "EINVAL",
        `${what}: ${dims.length} elements of ${per} bytes at ${off} do not fit in ${seg.size} bytes (EINVAL)`,
      );
    }
    return new SharedArray(seg, named, off, true, dtype, dims.shape, dims.length, off);
  }

  /**
   * Reopens an array from its {@linkcode SharedArray.handle} in any process.
   *
   * @param handle the handle
   * @returns the array; it owns its mapping
   * @throws {ShmError} EINVAL for a bad handle, ENOENT, EBADHDR when the segment no longer holds that array
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.zeros("doc-attach", "uint8", 8);
   * using b = SharedArray.attach(JSON.parse(JSON.stringify(a.handle())));
   * console.assert(b.length === 8);
   * a.unlink();
   * ```
   */
  static attach<D extends DType = DType>(handle: SharedArrayHandle<D>): SharedArray<D> {
    checkHandle(handle, "shmkit.array");
    const what = `Cannot attach array ${JSON.stringify(handle.name) ?? "(no name)"}`;
    // A handle comes from another process: what the argument checks report as a TypeError or
    // RangeError (a dtype outside the list, an impossible shape) is a malformed handle, EINVAL.
    const fromHandle = <T>(check: () => T, prefix: string): T => {
      try {
        return check();
      } catch (e) {
        if (e instanceof RangeError || e instanceof TypeError) {
          throw new ShmError("EINVAL", `${prefix}${e.message} (EINVAL)`, { cause: e });
        }
        throw e;
      }
    };
    const dtype = fromHandle(() => checkDType(handle.dtype, what), "");
    const name = handleName(handle.name, what);
    if (!Array.isArray(handle.shape) || !Number.isSafeInteger(handle.offset)) {
      throw new ShmError("EINVAL", `${what}: the handle lacks a shape or an offset (EINVAL)`);
    }
    let seg: SharedMemory;
    if (name !== null) seg = SharedMemory.open(name);
    else if (handle.segment) seg = SharedMemory.attach(handle.segment);
    else throw new ShmError("EINVAL", `${what}: an anonymous array handle needs its segment handle (EINVAL)`);
    return placeOrRelease(seg, false, () => {
      if (handle.raw) {
        const a = fromHandle(
          () => SharedArray.wrap(seg, dtype as D, handle.shape.slice(), { byteOffset: handle.offset }),
          `${what}: `,
        );
        a.#owns = true;
        return a;
      }
      const a = SharedArray.#attach(seg, true, handle.offset, what) as SharedArray<D>;
      if (a.dtype !== dtype || a.shape.join() !== handle.shape.join()) {
        throw new ShmError(
          "EBADHDR",
          `${what}: the handle says ${dtype} [${handle.shape.join(", ")}], the segment holds ${a.dtype} [${
            a.shape.join(", ")
          }] (EBADHDR)`,
        );
      }
      if (handle.dataOffset !== undefined && handle.dataOffset !== a.byteOffset) {
        throw new ShmError(
          "EBADHDR",
          `${what}: the handle says the data starts at ${handle.dataOffset}, the header says ${a.byteOffset} (EBADHDR)`,
        );
      }
      return a;
    });
  }

  /** The segment name, or null for anonymous memory. */
  get name(): string | null {
    return this.#seg.name;
  }

  /** The number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** True after {@linkcode SharedArray.close}. */
  get closed(): boolean {
    return this.#closed || this.#seg.closed;
  }

  #what(): string {
    return `array ${this.#seg.name === null ? "(anonymous)" : JSON.stringify(this.#seg.name)}`;
  }

  /**
   * All elements as one zero-copy typed array (BigInt64Array / BigUint64Array for int64 / uint64).
   * Row-major: element [i, j] of a 2-D array is `data[i * shape[1] + j]`.
   *
   * @throws {ShmError} ECLOSED after close
   * @throws {RangeError} when the runtime cannot make a typed array this large (Bun: ArrayBuffers
   * stop near 4 GiB; Node 20: 2**32 elements); use {@linkcode SharedArray.window} there
   */
  get data(): ArrayDataOf<D> {
    if (this.#data !== undefined && !this.closed) return this.#data;
    this.#data = this.#window(0, this.length, "data");
    return this.#data;
  }

  /**
   * A zero-copy typed array over elements [start, start + length) (default: to the end), on any
   * runtime and for arrays of any size.
   *
   * @param start the first element (flat, row-major index)
   * @param length the number of elements
   * @returns the window; detached by close()
   * @throws {RangeError} when the range is outside the array or too large for one typed array here
   * @throws {ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.from("doc-window", new Uint32Array([1, 2, 3, 4, 5]));
   * console.assert(a.window(1, 3).join() === "2,3,4");
   * a.unlink();
   * ```
   */
  window(start: number, length?: number): ArrayDataOf<D> {
    return this.#window(start, length ?? this.length - start, "window");
  }

  #window(start: number, length: number, method = "window"): ArrayDataOf<D> {
    const what = `Cannot view ${this.#what()}`;
    if (this.closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    if (
      !Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0 ||
      start + length > this.length
    ) {
      throw new RangeError(`${what}: elements [${start}, ${start + length}) are outside 0..${this.length}`);
    }
    const ctor = CTORS[this.dtype];
    const per = ctor.BYTES_PER_ELEMENT;
    let buf: ArrayBuffer;
    try {
      buf = this.#seg.mapping.view(this.byteOffset + start * per, length * per, what);
      const view = new ctor(buf, 0, length) as ArrayDataOf<D>;
      this.#track(buf);
      return view;
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new RangeError(
        `${what}: ${length * per} bytes are more than one typed array can span on this runtime` +
          (method === "data" ? "; use window(start, length) for parts of it" : "; use smaller windows"),
        { cause: e },
      );
    }
  }

  #track(buf: ArrayBuffer): void {
    if (this.#views.length >= 64) this.#views = this.#views.filter((r) => r.deref() !== undefined);
    this.#views.push(new WeakRef(buf));
  }

  #fill(v: number | bigint): void {
    // In windows of at most 256 MiB, so a fill works where one typed array cannot span the data.
    const per = CTORS[this.dtype].BYTES_PER_ELEMENT;
    const step = Math.floor(2 ** 28 / per);
    for (let i = 0; i < this.length; i += step) {
      const w = this.#window(i, Math.min(step, this.length - i)) as { fill(x: number | bigint): unknown };
      w.fill(v);
    }
  }

  /**
   * A JSON-safe handle; {@linkcode SharedArray.attach} (or the top-level `attach`) reopens it.
   *
   * @returns the handle
   * @throws {ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.zeros("doc-handle", "int8", [3, 2]);
   * console.assert(a.handle().shape.join() === "3,2");
   * a.unlink();
   * ```
   */
  handle(): SharedArrayHandle<D> {
    if (this.closed) throw new ShmError("ECLOSED", `Cannot make a handle of ${this.#what()}: it is closed (ECLOSED)`);
    const h: SharedArrayHandle<D> = {
      kind: "shmkit.array",
      version: HANDLE_VERSION,
      name: this.#seg.name,
      offset: this.#offset,
      dataOffset: this.byteOffset,
      dtype: this.dtype,
      shape: this.shape.slice(),
      ...(this.#raw ? { raw: true } : {}),
      ...(this.#seg.name === null ? { segment: this.#seg.handle() } : {}),
    };
    return h;
  }

  /**
   * Detaches `data` and every window, and unmaps the segment if this array owns it (made by
   * create/open/attach/wrap by name). Idempotent.
   *
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * const a = SharedArray.zeros("doc-close", "int32", 2);
   * const d = a.data;
   * a.unlink();
   * a.close();
   * console.assert(d.length === 0 || d[0] === 0); // detached (Node 20: zero pages)
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#data = undefined;
    if (this.#owns) this.#seg.close(); // detaches every view of the mapping
    else {
      for (const r of this.#views) {
        const b = r.deref();
        if (b) native.detach(b); // Node 20 cannot detach: the views stay valid while the segment is mapped
      }
    }
    this.#views = [];
  }

  /**
   * Removes the segment's name; processes already attached keep working. No-op for anonymous memory.
   *
   * @throws {ShmError} EACCES when not permitted
   * @example
   * ```ts
   * import { SharedArray } from "./mod.ts";
   * using a = SharedArray.zeros("doc-unlink", "int32", 2);
   * a.unlink();
   * ```
   */
  unlink(): void {
    if (this.#seg.name !== null) SharedMemory.unlink(this.#seg.name);
  }

  /** Same as {@linkcode SharedArray.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

registerKind("shmkit.array", (h) => SharedArray.attach(h as SharedArrayHandle));
