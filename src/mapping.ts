/**
 * A mapping of a file descriptor (or anonymous memory) into this process, and every ArrayBuffer
 * handed out over it. Closing detaches those buffers (Deno, Bun) or tombstones the range with
 * private zero pages (Node 20, which cannot detach external buffers), so stale views never fault.
 *
 * @module
 */
import { check, native, sys } from "./sys.ts";
import { ShmError } from "./errors.ts";

/** Flags for {@linkcode Mapping.map}. */
export const MAP_WRITE = 0x1;
/** Copy-on-write mapping (MAP_PRIVATE). */
export const MAP_PRIVATE = 0x2;
/** Prefault every page at map time. */
export const MAP_POPULATE = 0x4;

/**
 * The largest ArrayBuffer a runtime hands out in one piece over foreign memory. Bun's
 * `toArrayBuffer` stops below 4 GiB; koffi's `view` on Node 20 aborts the whole process
 * ("FATAL ERROR: Error::New napi_get_last_error_info") above 2^32 bytes, so Node is held to 2^32.
 * Deno's `getArrayBuffer` takes any safe length (verified with 5 GiB).
 */
export const MAX_VIEW_BYTES: number = native.runtime === "bun"
  ? 2 ** 32 - 1
  : native.runtime === "node"
  ? 2 ** 32
  : 2 ** 53 - 1;

// Whether this runtime can detach the ArrayBuffers it hands out (Node 20 cannot).
const CAN_DETACH = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === "function";

/**
 * Checks a typed window of `per`-byte elements at `byteOffset` inside `size` bytes and returns its
 * element count (`length`, or as many whole elements as fit when it is undefined).
 *
 * @throws {RangeError} when the window does not fit
 */
export function windowCount(
  size: number,
  per: number,
  byteOffset: number,
  length: number | undefined,
  what: string,
): number {
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset > size) {
    throw new RangeError(`${what}: byteOffset ${byteOffset} is outside 0..${size}`);
  }
  const count = length ?? Math.floor((size - byteOffset) / per);
  if (!Number.isSafeInteger(count) || count < 0 || byteOffset + count * per > size) {
    throw new RangeError(`${what}: ${count} elements of ${per} bytes at ${byteOffset} do not fit in ${size} bytes`);
  }
  return count;
}

/** A mapped range. Internal: users see SharedMemory, MappedFile and friends. */
export class Mapping {
  /** The native mapping id (for atomics, futex and waiter calls). */
  id: number;
  /** Base address in this process. */
  address: number;
  /** Mapped length in bytes. */
  length: number;
  #views: WeakRef<ArrayBuffer>[] = [];
  #sweepAt = 64;
  #closed = false;

  private constructor(id: number) {
    this.id = id;
    this.address = sys.shmkit_map_addr(id);
    this.length = sys.shmkit_map_length(id);
  }

  /** Maps `length` bytes of `fd` at `offset` (fd -1: anonymous private memory). */
  static map(fd: number, length: number, offset: number, flags: number, what: string): Mapping {
    const id = check(sys.shmkit_mmap(fd, length, offset, flags), "mmap", what);
    return new Mapping(id);
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** A zero-copy ArrayBuffer over [offset, offset + length), detached when the mapping closes. */
  view(offset: number, length: number, what: string): ArrayBuffer {
    if (this.#closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`${what}: offset ${offset} and length ${length} must be non-negative integers`);
    }
    if (offset + length > this.length) {
      throw new RangeError(`${what}: range [${offset}, ${offset + length}) is outside the ${this.length}-byte mapping`);
    }
    if (length > MAX_VIEW_BYTES) {
      throw new RangeError(
        `${what}: ${length} bytes exceed this runtime's ArrayBuffer limit (${MAX_VIEW_BYTES}); use smaller bytes()/view() windows`,
      );
    }
    const buf = length === 0 ? new ArrayBuffer(0) : native.view(this.address + offset, length);
    if (this.#views.length >= this.#sweepAt) {
      this.#views = this.#views.filter((r) => r.deref() !== undefined);
      this.#sweepAt = Math.max(64, this.#views.length * 2);
    }
    this.#views.push(new WeakRef(buf));
    return buf;
  }

  /** Detaches every view handed out (where the runtime can). Returns false if some could not be. */
  detachViews(): boolean {
    let all = true;
    for (const ref of this.#views) {
      const buf = ref.deref();
      if (buf && !native.detach(buf)) all = false;
    }
    this.#views = [];
    return all;
  }

  /** Grows or shrinks the mapping (it may move): every old view is detached first. */
  remap(newLength: number, what: string): void {
    if (this.#closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    // Node 20 cannot detach. Refuse before detachViews() forgets the views, or a later close()
    // would munmap under them instead of tombstoning (MappedFile.resize maps anew instead).
    if (!CAN_DETACH || !this.detachViews()) {
      throw new ShmError(
        "ENOTSUP",
        `${what}: resizing in place needs ArrayBuffer.prototype.transfer (Node >= 22, Deno, Bun)`,
      );
    }
    check(sys.shmkit_mremap(this.id, newLength), "mremap", what);
    this.address = sys.shmkit_map_addr(this.id);
    this.length = sys.shmkit_map_length(this.id);
  }

  /** Unmaps. Idempotent. Views read length 0 (Deno, Bun) or zeros (Node 20) afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const detached = this.detachViews();
    sys.shmkit_munmap(this.id, detached ? 0 : 1);
  }
}
