/**
 * MappedFile: a file mapped into memory with the semantics of Python's `mmap.mmap`.
 *
 * | Python                       | shmkit                                   |
 * |------------------------------|------------------------------------------|
 * | `mmap(fd, length, offset=, access=)` | `MappedFile.open(path, { length, offset, access, create })` |
 * | `ACCESS_READ` / `ACCESS_WRITE` / `ACCESS_COPY` | `"read"` / `"write"` / `"copy"` |
 * | `len(m)`, `m.size()`         | `m.length`, `m.fileSize()`               |
 * | `mmap(-1, length)` (anonymous) | `MappedFile.anonymous(length)` (shareable through `handle()`) |
 * | `tell seek read read_byte readline write write_byte find rfind move flush resize madvise close` | same names in camelCase |
 * | `seek(pos, 0 / 1 / 2)`       | `seek(pos, 0 / 1 / 2)` or `"start"` / `"current"` / `"end"` |
 * | `MADV_NORMAL` ... `MADV_DONTNEED` | `"normal"` ... `"dontneed"` |
 * | `ValueError` (out of range)  | `RangeError`                             |
 * | `TypeError` (read-only map)  | `TypeError`                              |
 * | `ValueError` (closed)        | `ShmError` `ECLOSED`                     |
 *
 * Mapping kinds (what the kernel is asked for):
 *
 * | access  | open(2)  | mmap(2)                         | writes go to        |
 * |---------|----------|---------------------------------|---------------------|
 * | "write" | O_RDWR   | PROT_READ/WRITE, MAP_SHARED     | the file (and every other mapping of it) |
 * | "copy"  | O_RDONLY | PROT_READ/WRITE, MAP_PRIVATE    | private copies of the touched pages; the file never changes |
 * | "read"  | O_RDONLY | PROT_READ/WRITE, MAP_PRIVATE    | nowhere: write()/writeByte()/move() throw TypeError; a raw store through `buffer` lands in a private page instead of crashing the process |
 *
 * Memory ordering: every access here is a plain (non-atomic) load or store, like Python's. A
 * file mapped by several processes needs its own synchronization (Mutex, Semaphore) or atomics
 * on `view(Int32Array)`; `flush()` (msync) only concerns the file on disk, not visibility between
 * processes, which share the page cache.
 *
 * Truncation: if another process shrinks the file below the mapped range, touching a page past
 * the new end of file raises SIGBUS. Every method here checks the file size (fstat) before it
 * touches the mapping and throws `ShmError` `EFAULT` instead. Raw views (`buffer`, `bytes()`,
 * `view()`) cannot be guarded: reading them after such a truncation still kills the process.
 *
 * @module
 */
import { check, cstr, ERRNO, osError, PAGE_SIZE, PID, processAlive, START_TIME, sys } from "./sys.ts";
import { checkKeys, ShmError } from "./errors.ts";
import { MAP_PRIVATE, MAP_WRITE, Mapping, MAX_VIEW_BYTES, windowCount } from "./mapping.ts";
import type { ViewConstructor } from "./segment.ts";
import { checkHandle, HANDLE_VERSION, isId, registerKind } from "./handle.ts";

/** How a {@linkcode MappedFile} maps its file (Python `ACCESS_READ`, `ACCESS_WRITE`, `ACCESS_COPY`). */
export type MappedFileAccess = "read" | "write" | "copy";

/** Where {@linkcode MappedFile.seek} counts from: Python's whence 0, 1, 2 or their names. */
export type SeekWhence = "start" | "current" | "end" | 0 | 1 | 2;

/** Access-pattern advice of {@linkcode MappedFile.madvise} (Python `mmap.MADV_*`). */
export type MadviseAdvice = "normal" | "random" | "sequential" | "willneed" | "dontneed";

/** The handle of an anonymous {@linkcode MappedFile}: JSON-safe, reopened by {@linkcode MappedFile.attach}. */
export interface MappedFileHandle {
  /** Always `"shmkit.mappedfile"`. */
  readonly kind: "shmkit.mappedfile";
  /** The handle format version. */
  readonly version: number;
  /** Always null: only anonymous mappings have handles (a file is shared by its path). */
  readonly name: null;
  /** The mapped length in bytes. */
  readonly length: number;
  /** The creator's pid. */
  readonly pid: number;
  /** The creator's start time (with `pid`, a pid-reuse-proof identity). */
  readonly startTime: number;
  /** The memfd number in the creator process. */
  readonly fd: number;
}

// shmkit_madvise advice numbers (csrc/shmkit.h)
const ADVICE: Record<MadviseAdvice, number> = { willneed: 3, dontneed: 4, normal: 5, random: 6, sequential: 7 };

/** Options of {@linkcode MappedFile.open}. */
export interface MappedFileOptions {
  /** Bytes to map; 0 or omitted maps from `offset` to the end of the file. */
  length?: number;
  /** File offset of the mapping; a multiple of the page size (default 0). */
  offset?: number;
  /** "write" (default, like Python), "read" or "copy". */
  access?: MappedFileAccess;
  /**
   * Create the file if it does not exist (mode 0o666 minus the umask, like `open(2)`), and grow it
   * with zeros to `offset + length` if it is shorter. The new blocks are allocated at once
   * (posix_fallocate), so a full file system fails here with ENOSPC instead of a SIGBUS on the
   * first store. A file this call created is removed again if the call fails. Needs
   * `access: "write"`.
   */
  create?: boolean;
}

// shmkit_open flags (csrc/shmkit.h)
const O_RDONLY = 0x1;
const O_CREATE = 0x2;
const O_EXCL = 0x4;
// Searches and copies walk the mapping in windows of this many bytes (Bun and Node cannot hand
// out one ArrayBuffer over more than 4 GiB).
const CHUNK = 2 ** 30;
const NEWLINE = new Uint8Array([10]);
const stat = new Float64Array(8);
const encoder = new TextEncoder();

function toPath(path: unknown): string {
  if (typeof path === "string") {
    if (path.length === 0) {
      throw new ShmError("EINVAL", 'Cannot map file "": the path is empty (EINVAL)', { errno: ERRNO.EINVAL });
    }
    return path;
  }
  if (path instanceof URL) {
    if (path.protocol !== "file:") {
      throw new TypeError(`Cannot map file ${JSON.stringify(path.href)}: only file: URLs can be mapped`);
    }
    return decodeURIComponent(path.pathname);
  }
  throw new TypeError(`Cannot map file: the path must be a string or a file: URL, got ${typeof path}`);
}

// Grows the file behind fd from `from` to `to` bytes with its blocks allocated (ENOSPC now rather
// than SIGBUS at the first store). On failure the file gets its old size back.
function growFile(fd: number, from: number, to: number, what: string): void {
  check(sys.shmkit_ftruncate(fd, to), "ftruncate", what);
  const r = sys.shmkit_fallocate(fd, from, to - from);
  if (r >= 0) return;
  const e = osError(r, "posix_fallocate", what);
  if (e.code === "ENOTSUP" || e.code === "ENOSYS") return; // this file system cannot reserve: sized anyway
  sys.shmkit_ftruncate(fd, from);
  throw e;
}

function toBytes(data: unknown, what: string): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`${what}: expected a Uint8Array or a string, got ${data === null ? "null" : typeof data}`);
}

function integer(v: unknown, name: string, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new TypeError(`${what}: ${name} must be an integer, got ${typeof v === "number" ? v : typeof v}`);
  }
  return v;
}

// Python slice-style index adjustment (mmap.find): negative counts from the end, then clamp.
function clampIndex(i: number, size: number): number {
  if (i < 0) {
    i += size;
    return i < 0 ? 0 : i;
  }
  return i > size ? size : i;
}

// First index of `needle` (non-empty) in `hay`, or -1.
function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  const nl = needle.length;
  const last = hay.length - nl;
  const first = needle[0];
  let p = 0;
  while (p <= last) {
    p = hay.indexOf(first, p);
    if (p < 0 || p > last) return -1;
    let k = 1;
    while (k < nl && hay[p + k] === needle[k]) k++;
    if (k === nl) return p;
    p++;
  }
  return -1;
}

// Last index of `needle` (non-empty) in `hay`, or -1.
function lastIndexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  const nl = needle.length;
  const first = needle[0];
  let p = hay.length - nl;
  while (p >= 0) {
    p = hay.lastIndexOf(first, p);
    if (p < 0) return -1;
    let k = 1;
    while (k < nl && hay[p + k] === needle[k]) k++;
    if (k === nl) return p;
    p--;
  }
  return -1;
}

/**
 * A memory-mapped file with Python `mmap` semantics: a byte array with a file position.
 *
 * Role contract: one MappedFile object belongs to one thread (its position is not shared). Any
 * number of processes may map the same file; with access "write" they all see each other's
 * stores at once (shared page cache), with no locking added here. `close()` unmaps and closes
 * the descriptor; every view handed out is detached (Deno, Bun, Node >= 22) or reads zeros
 * (Node 20, which cannot detach external buffers: the range is tombstoned).
 *
 * @example
 * ```ts
 * import { MappedFile } from "./mod.ts";
 * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-mapped";
 * using f = MappedFile.open(path, { length: 4096, create: true });
 * f.write("hello\nworld\n");
 * f.seek(0);
 * console.assert(new TextDecoder().decode(f.readLine()) === "hello\n");
 * console.assert(f.find("world") === 6);
 * f.flush();
 * ```
 */
export class MappedFile implements Disposable {
  /** The path as given (a file: URL is turned into its path). */
  readonly path: string;
  /** How the file is mapped. */
  readonly access: MappedFileAccess;
  /** The file offset of the mapping (a multiple of the page size). */
  readonly offset: number;
  #fd: number;
  #mapping: Mapping;
  #length: number;
  #pos = 0;
  #u8?: Uint8Array; // the whole mapping, when it fits in one ArrayBuffer
  #buffer?: ArrayBuffer;
  #anonymous: boolean;

  private constructor(
    path: string,
    access: MappedFileAccess,
    offset: number,
    fd: number,
    mapping: Mapping,
    length: number,
    anonymous: boolean,
  ) {
    this.path = path;
    this.access = access;
    this.offset = offset;
    this.#fd = fd;
    this.#mapping = mapping;
    this.#length = length;
    this.#anonymous = anonymous;
  }

  /**
   * Maps a file, like Python's `mmap.mmap(fd, length, access=..., offset=...)`.
   *
   * @param path a file path or a file: URL
   * @param options length (0 = to the end of the file), offset (page-aligned), access, create
   * @returns the mapping, position 0
   * @throws {ShmError} ENOENT (no such file), EACCES, EINVAL (empty file, unaligned offset, offset
   *   or length past the end of the file, not a regular file)
   * @throws {RangeError} negative or non-integer length/offset
   * @throws {TypeError} unknown access, or `create` without access "write"
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-open";
   * using f = MappedFile.open(path, { length: 8192, create: true });
   * using ro = MappedFile.open(path, { access: "read" });
   * console.assert(ro.length === 8192);
   * ```
   */
  static open(path: string | URL, options: MappedFileOptions = {}): MappedFile {
    checkKeys(options, ["length", "offset", "access", "create"], "Cannot map file");
    const p = toPath(path);
    const what = `Cannot map file ${JSON.stringify(p)}`;
    const access = options.access ?? "write";
    if (access !== "read" && access !== "write" && access !== "copy") {
      throw new TypeError(`${what}: access must be "read", "write" or "copy", got ${JSON.stringify(access)}`);
    }
    const offset = options.offset ?? 0;
    const length = options.length ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`${what}: offset must be a non-negative integer, got ${offset}`);
    }
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`${what}: length must be a non-negative integer, got ${length}`);
    }
    if (offset % PAGE_SIZE !== 0) {
      throw new ShmError(
        "EINVAL",
        `${what}: offset ${offset} is not a multiple of the page size ${PAGE_SIZE} (EINVAL)`,
        { errno: ERRNO.EINVAL },
      );
    }
    const create = options.create === true;
    if (create && access !== "write") {
      throw new TypeError(`${what}: create needs access "write", got ${JSON.stringify(access)}`);
    }
    // create: try O_EXCL first, so a failure below knows whether the file is ours to remove.
    let created = false;
    let fd = create ? sys.shmkit_open(cstr(p), O_CREATE | O_EXCL, 0o666) : -ERRNO.EEXIST;
    if (fd >= 0) created = true;
    else if (fd === -ERRNO.EEXIST) fd = sys.shmkit_open(cstr(p), access === "write" ? 0 : O_RDONLY, 0);
    if (fd === -ERRNO.ENODEV) {
      throw new ShmError("EINVAL", `${what}: it is not a regular file (EINVAL)`, { errno: ERRNO.EINVAL });
    }
    check(fd, "open", what);
    try {
      check(sys.shmkit_fstat(fd, stat), "fstat", what);
      if (stat[7] !== 1) {
        throw new ShmError("EINVAL", `${what}: it is not a regular file (EINVAL)`, { errno: ERRNO.EINVAL });
      }
      let size = stat[0];
      if (create && length > 0 && size < offset + length) {
        growFile(fd, size, offset + length, what);
        size = offset + length;
      }
      let len = length;
      if (len === 0) {
        if (size === 0) {
          throw new ShmError("EINVAL", `${what}: the file is empty, there is nothing to map (EINVAL)`, {
            errno: ERRNO.EINVAL,
          });
        }
        if (offset >= size) {
          throw new ShmError("EINVAL", `${what}: offset ${offset} is not below the file size ${size} (EINVAL)`, {
            errno: ERRNO.EINVAL,
          });
        }
        len = size - offset;
      } else if (offset > size || size - offset < len) {
        throw new ShmError(
          "EINVAL",
          `${what}: ${len} bytes at offset ${offset} reach past the end of the ${size}-byte file (EINVAL)`,
          {
            errno: ERRNO.EINVAL,
          },
        );
      }
      const m = Mapping.map(fd, len, offset, access === "write" ? MAP_WRITE : MAP_WRITE | MAP_PRIVATE, what);
      return new MappedFile(p, access, offset, fd, m, len, false);
    } catch (e) {
      sys.shmkit_close(fd);
      if (created) sys.shmkit_unlink(cstr(p)); // leave no empty or short file behind
      throw e;
    }
  }

  /**
   * Anonymous shared memory with the MappedFile interface, like Python's `mmap.mmap(-1, length)`:
   * zero-filled, backed by a memfd (Linux) whose pages are reserved at once (ENOSPC up front).
   * A child process maps the same memory with {@linkcode MappedFile.attach} on {@linkcode handle}
   * while this one keeps it open (through /proc/<pid>/fd: same user or ptrace rights).
   *
   * @param length bytes, a positive integer
   * @returns the mapping (access "write", path "", position 0)
   * @throws {ShmError} EINVAL for a bad length, ENOMEM, ENOSPC, ENOTSUP where there is no memfd
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * using m = MappedFile.anonymous(4096);
   * m.write("shared");
   * const handle = JSON.stringify(m.handle()); // a child: MappedFile.attach(JSON.parse(handle))
   * ```
   */
  static anonymous(length: number): MappedFile {
    const what = "Cannot map anonymous memory";
    if (!Number.isSafeInteger(length) || length <= 0) {
      throw new RangeError(`${what}: length must be a positive integer, got ${String(length)}`);
    }
    const fd = check(sys.shmkit_memfd_create(cstr("shmkit-mapped"), length), "memfd_create", what);
    try {
      return new MappedFile("", "write", 0, fd, Mapping.map(fd, length, 0, MAP_WRITE, what), length, true);
    } catch (e) {
      sys.shmkit_close(fd);
      throw e;
    }
  }

  /**
   * Maps the anonymous memory of another process's {@linkcode MappedFile.anonymous} from its
   * {@linkcode handle}: both see each other's stores at once.
   *
   * @param handle a handle from `handle()`, possibly through JSON
   * @returns the mapping (access "write", path "", position 0)
   * @throws {ShmError} EINVAL for a foreign or malformed handle, ENOENT when that process has
   *   exited, EACCES
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * using m = MappedFile.anonymous(4096);
   * using again = MappedFile.attach(JSON.parse(JSON.stringify(m.handle())));
   * again.write("hi");
   * console.assert(m.read(2).length === 2);
   * ```
   */
  static attach(handle: MappedFileHandle): MappedFile {
    checkHandle(handle, "shmkit.mappedfile");
    const { pid, fd, startTime, length } = handle;
    const what = `Cannot attach the anonymous mapping of process ${pid}`;
    if (!isId(fd) || !Number.isSafeInteger(length) || length <= 0) {
      throw new ShmError("EINVAL", `${what}: the handle lacks a valid fd or length (EINVAL)`, {
        errno: ERRNO.EINVAL,
      });
    }
    if (!processAlive(pid, typeof startTime === "number" ? startTime : -1)) {
      throw new ShmError("ENOENT", `${what}: that process has exited, and the memory with it (ENOENT)`, {
        errno: ERRNO.ENOENT,
      });
    }
    const own = sys.shmkit_open_proc_fd(pid, fd | 0, 0); // fd | 0: -0 is no i32 to Deno's FFI
    if (own === -ERRNO.ENODEV) {
      throw new ShmError("EINVAL", `${what}: descriptor ${fd} there is not a memory file (EINVAL)`, {
        errno: ERRNO.EINVAL,
      });
    }
    check(own, "open", what);
    try {
      check(sys.shmkit_fstat(own, stat), "fstat", what);
      if (stat[0] < length) {
        throw new ShmError(
          "EINVAL",
          `${what}: descriptor ${fd} is ${stat[0]} bytes, the handle says ${length} (EINVAL)`,
          {
            errno: ERRNO.EINVAL,
          },
        );
      }
      return new MappedFile("", "write", 0, own, Mapping.map(own, length, 0, MAP_WRITE, what), length, true);
    } catch (e) {
      sys.shmkit_close(own);
      throw e;
    }
  }

  /**
   * A JSON-safe handle of an anonymous mapping; {@linkcode MappedFile.attach} maps it in another
   * process (while this one keeps it open).
   *
   * @returns `{ kind: "shmkit.mappedfile", version, name: null, length, pid, startTime, fd }`
   * @throws {TypeError} for a mapping of a file (share the path instead); ShmError ECLOSED
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * using m = MappedFile.anonymous(4096);
   * console.assert(m.handle().length === 4096);
   * ```
   */
  handle(): MappedFileHandle {
    const what = "Cannot make a handle of a mapped file";
    this.#live(what);
    if (!this.#anonymous) {
      throw new TypeError(`${what}: ${JSON.stringify(this.path)} is a file; other processes open it by its path`);
    }
    return {
      kind: "shmkit.mappedfile",
      version: HANDLE_VERSION,
      name: null,
      length: this.#length,
      pid: PID,
      startTime: START_TIME,
      fd: this.#fd,
    };
  }

  /** Mapped length in bytes (Python `len(m)`); changes with {@linkcode resize}. */
  get length(): number {
    return this.#length;
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#mapping.closed;
  }

  #live(what: string): void {
    if (this.#mapping.closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
  }

  #writable(what: string): void {
    this.#live(what);
    if (this.access === "read") throw new TypeError(`${what}: mmap can't modify a readonly memory map (access "read")`);
  }

  // Throws EFAULT unless the file still backs mapping bytes [0, end): touching a page past the
  // end of file would raise SIGBUS.
  #guard(end: number, what: string): void {
    if (end <= 0) return;
    check(sys.shmkit_fstat(this.#fd, stat), "fstat", what);
    const backed = stat[0] - this.offset;
    if (backed < end) {
      throw new ShmError(
        "EFAULT",
        `${what}: the file shrank to ${
          stat[0]
        } bytes under the mapping (offset ${this.offset}, length ${this.#length}), so byte ${end - 1} is gone (EFAULT)`,
        { errno: ERRNO.EFAULT },
      );
    }
  }

  // Bytes of the file still mapped and backed (for readLine, which stops early when it can).
  #backed(what: string): number {
    check(sys.shmkit_fstat(this.#fd, stat), "fstat", what);
    const b = stat[0] - this.offset;
    return b < 0 ? 0 : b > this.#length ? this.#length : b;
  }

  // A Uint8Array over mapping bytes [off, off + len).
  #span(off: number, len: number, what: string): Uint8Array {
    if (this.#u8 === undefined && this.#length <= MAX_VIEW_BYTES) {
      this.#u8 = new Uint8Array(this.#mapping.view(0, this.#length, what));
    }
    if (this.#u8 !== undefined) return this.#u8.subarray(off, off + len);
    return new Uint8Array(this.#mapping.view(off, len, what));
  }

  /**
   * The whole mapping as one zero-copy ArrayBuffer, detached by {@linkcode close} and
   * {@linkcode resize}. Stores into it follow the access mode (private for "read" and "copy").
   *
   * @throws {ShmError} ECLOSED after close
   * @throws {RangeError} if the mapping is larger than this runtime's ArrayBuffer limit: use windows
   */
  get buffer(): ArrayBuffer {
    const what = `Cannot view mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    if (this.#buffer && this.#buffer.byteLength === this.#length) return this.#buffer;
    this.#buffer = this.#mapping.view(0, this.#length, what);
    return this.#buffer;
  }

  /**
   * A zero-copy Uint8Array over mapping bytes [byteOffset, byteOffset + length).
   *
   * @param byteOffset start in the mapping (default 0)
   * @param length bytes (default: to the end)
   * @returns a live view, detached by close() and resize()
   * @throws {RangeError} outside the mapping; {@linkcode ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-bytes";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.bytes(10, 2).set([1, 2]);
   * console.assert(f.bytes()[11] === 2);
   * ```
   */
  bytes(byteOffset = 0, length?: number): Uint8Array {
    return this.view(Uint8Array, byteOffset, length);
  }

  /**
   * A zero-copy typed array (or DataView) at `byteOffset` with `length` elements (default: as many
   * as fit). Works on mappings larger than the runtime's ArrayBuffer limit as a window.
   *
   * @param type the view constructor, e.g. Uint32Array
   * @param byteOffset start in the mapping (default 0)
   * @param length element count (default: as many as fit)
   * @returns a live view, detached by close() and resize()
   * @throws {RangeError} outside the mapping; {@linkcode ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-view";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.view(Uint32Array, 8, 1)[0] = 0xdeadbeef;
   * ```
   */
  view<T extends ArrayBufferView>(type: ViewConstructor<T>, byteOffset = 0, length?: number): T {
    const what = `Cannot view mapped file ${JSON.stringify(this.path)}`;
    const count = windowCount(this.#length, type.BYTES_PER_ELEMENT ?? 1, byteOffset, length, what);
    this.#live(what);
    if (this.#length <= MAX_VIEW_BYTES) return new type(this.buffer, byteOffset, count);
    const start = byteOffset - (byteOffset % PAGE_SIZE);
    const buf = this.#mapping.view(start, byteOffset - start + count * (type.BYTES_PER_ELEMENT ?? 1), what);
    return new type(buf, byteOffset - start, count);
  }

  /**
   * The current position (Python `tell()`).
   *
   * @returns the position, 0..length (it can be past the end after a shrinking resize)
   * @throws {ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-tell";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.read(3);
   * console.assert(f.tell() === 3);
   * ```
   */
  tell(): number {
    this.#live(`Cannot tell the position in mapped file ${JSON.stringify(this.path)}`);
    return this.#pos;
  }

  /**
   * Moves the position (Python `seek(pos, whence)`).
   *
   * @param pos the distance from `whence`
   * @param whence "start" or 0 (default), "current" or 1, "end" or 2 (Python's os.SEEK_*)
   * @returns the new position
   * @throws {RangeError} when the new position is outside 0..length ("seek out of range")
   * @throws {TypeError} for a non-integer pos or an unknown whence; {@linkcode ShmError} ECLOSED
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-seek";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * console.assert(f.seek(-1, "end") === 4095);
   * ```
   */
  seek(pos: number, whence: SeekWhence = "start"): number {
    const what = `Cannot seek in mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    const d = integer(pos, "pos", what);
    let where: number;
    if (whence === "start" || whence === 0) where = d;
    else if (whence === "current" || whence === 1) where = this.#pos + d;
    else if (whence === "end" || whence === 2) where = this.#length + d;
    else {
      throw new TypeError(
        `${what}: whence must be 0 / "start", 1 / "current" or 2 / "end", got ${JSON.stringify(whence)}`,
      );
    }
    if (where < 0 || where > this.#length) {
      throw new RangeError(`${what}: position ${where} is outside 0..${this.#length} (seek out of range)`);
    }
    this.#pos = where;
    return where;
  }

  /**
   * Reads up to `n` bytes from the position and advances it (Python `read(n)`).
   *
   * @param n bytes to read; omitted, null or negative reads to the end
   * @returns a copy of the bytes (empty at the end)
   * @throws {ShmError} ECLOSED, EFAULT when the file shrank under the range
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-read";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * console.assert(f.read(10).length === 10 && f.read().length === 4086);
   * ```
   */
  read(n?: number | null): Uint8Array {
    const what = `Cannot read mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    const pos = this.#pos;
    const rest = pos < this.#length ? this.#length - pos : 0;
    let k = rest;
    if (n !== undefined && n !== null) {
      const want = integer(n, "n", what);
      if (want >= 0 && want < rest) k = want;
    }
    const out = new Uint8Array(k);
    if (k > 0) {
      this.#guard(pos + k, what);
      for (let o = 0; o < k; o += CHUNK) out.set(this.#span(pos + o, Math.min(CHUNK, k - o), what), o);
    }
    this.#pos = pos + k;
    return out;
  }

  /**
   * Reads one byte at the position and advances it (Python `read_byte()`).
   *
   * @returns the byte, 0..255
   * @throws {RangeError} at the end ("read byte out of range"); {@linkcode ShmError} ECLOSED, EFAULT
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-readbyte";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.writeByte(65); f.seek(0);
   * console.assert(f.readByte() === 65);
   * ```
   */
  readByte(): number {
    const what = `Cannot read a byte of mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    const pos = this.#pos;
    if (pos >= this.#length) {
      throw new RangeError(`${what}: position ${pos} is at or past the end ${this.#length} (read byte out of range)`);
    }
    this.#guard(pos + 1, what);
    const b = this.#span(pos, 1, what)[0];
    this.#pos = pos + 1;
    return b;
  }

  /**
   * Reads one line: up to and including the next "\n", or to the end (Python `readline()`).
   *
   * @returns a copy of the line (empty at the end)
   * @throws {ShmError} ECLOSED, EFAULT when the file shrank before a newline was found
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-readline";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.write("a\nb"); f.seek(0);
   * console.assert(f.readLine().length === 2);
   * ```
   */
  readLine(): Uint8Array {
    const what = `Cannot read a line of mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    const pos = this.#pos;
    if (pos >= this.#length) return new Uint8Array(0);
    const backed = this.#backed(what);
    let eol = pos < backed ? this.#search(NEWLINE, pos, backed, false, what) : -1;
    if (eol < 0) {
      this.#guard(this.#length, what); // no newline in the backed part: the rest must exist
      eol = this.#length;
    } else eol++;
    this.#pos = pos; // read() below advances it
    return this.read(eol - pos);
  }

  /**
   * Writes bytes (a string is UTF-8 encoded) at the position and advances it (Python `write()`).
   * All or nothing: data that does not fit before the end throws and writes nothing.
   *
   * @param data the bytes or text
   * @returns the number of bytes written
   * @throws {TypeError} on an access "read" map ("mmap can't modify a readonly memory map")
   * @throws {RangeError} when the data does not fit ("data out of range")
   * @throws {ShmError} ECLOSED, EFAULT when the file shrank under the range
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-write";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * console.assert(f.write("héllo") === 6 && f.tell() === 6);
   * ```
   */
  write(data: Uint8Array | string): number {
    const what = `Cannot write to mapped file ${JSON.stringify(this.path)}`;
    const b = toBytes(data, what);
    this.#writable(what);
    const pos = this.#pos;
    if (pos > this.#length || this.#length - pos < b.length) {
      throw new RangeError(
        `${what}: ${b.length} bytes at position ${pos} do not fit in ${this.#length} bytes (data out of range)`,
      );
    }
    if (b.length > 0) {
      this.#guard(pos + b.length, what);
      for (let o = 0; o < b.length; o += CHUNK) {
        const n = Math.min(CHUNK, b.length - o);
        this.#span(pos + o, n, what).set(b.subarray(o, o + n));
      }
    }
    this.#pos = pos + b.length;
    return b.length;
  }

  /**
   * Writes one byte at the position and advances it (Python `write_byte()`).
   *
   * @param b the byte, an integer 0..255
   * @throws {TypeError} on an access "read" map, or for a non-integer
   * @throws {RangeError} for a value outside 0..255, or at the end ("write byte out of range")
   * @throws {ShmError} ECLOSED, EFAULT
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-writebyte";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.writeByte(0xff);
   * console.assert(f.bytes()[0] === 0xff);
   * ```
   */
  writeByte(b: number): void {
    const what = `Cannot write a byte to mapped file ${JSON.stringify(this.path)}`;
    integer(b, "the byte", what); // the argument first, then the access, as Python does
    if (b < 0 || b > 255) throw new RangeError(`${what}: ${b} is not a byte value 0..255`);
    this.#writable(what);
    const pos = this.#pos;
    if (pos >= this.#length) {
      throw new RangeError(`${what}: position ${pos} is at or past the end ${this.#length} (write byte out of range)`);
    }
    this.#guard(pos + 1, what);
    this.#span(pos, 1, what)[0] = b;
    this.#pos = pos + 1;
  }

  // Python's find/rfind bounds: start defaults to the position, end to the length; negative
  // values count from the end; both are clamped to 0..length.
  #find(needle: unknown, start: number | undefined, end: number | undefined, reverse: boolean): number {
    const what = `Cannot search mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    const n = toBytes(needle, what);
    const size = this.#length;
    const s = clampIndex(start === undefined ? this.#pos : integer(start, "start", what), size);
    const e = clampIndex(end === undefined ? size : integer(end, "end", what), size);
    if (e < s) return -1;
    if (n.length === 0) return reverse ? e : s;
    if (e - s < n.length) return -1;
    this.#guard(e, what);
    return this.#search(n, s, e, reverse, what);
  }

  // Index of `needle` (non-empty) in mapping bytes [s, e), in windows of CHUNK bytes that overlap
  // by needle.length - 1 so no match straddling two windows is missed.
  #search(needle: Uint8Array, s: number, e: number, reverse: boolean, what: string): number {
    const over = needle.length - 1;
    const windows = Math.max(1, Math.ceil((e - s) / CHUNK));
    for (let i = 0; i < windows; i++) {
      const w = reverse ? windows - 1 - i : i;
      const ws = s + w * CHUNK;
      const we = Math.min(e, ws + CHUNK + over);
      if (we - ws < needle.length) continue;
      const hay = this.#span(ws, we - ws, what);
      const r = reverse ? lastIndexOfBytes(hay, needle) : indexOfBytes(hay, needle);
      if (r >= 0) return ws + r;
    }
    return -1;
  }

  /**
   * The lowest index of `needle` in [start, end), or -1 (Python `find()`): `start` defaults to
   * the position, `end` to the length, negative values count from the end. An empty needle is
   * found at `start`.
   *
   * @param needle bytes, or a string (UTF-8)
   * @param start first index searched (default: the position)
   * @param end the match must end by here (default: the length)
   * @returns the index, or -1 when absent
   * @throws {ShmError} ECLOSED, EFAULT when the file shrank under [start, end)
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-find";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.write("abcabc");
   * console.assert(f.find("bc", 0) === 1 && f.find("bc", 2) === 4 && f.find("x", 0) === -1);
   * ```
   */
  find(needle: Uint8Array | string, start?: number, end?: number): number {
    return this.#find(needle, start, end, false);
  }

  /**
   * The highest index of `needle` in [start, end), or -1 (Python `rfind()`); bounds as in
   * {@linkcode find}. An empty needle is found at `end`.
   *
   * @param needle bytes, or a string (UTF-8)
   * @param start first index searched (default: the position)
   * @param end the match must end by here (default: the length)
   * @returns the index, or -1 when absent
   * @throws {ShmError} ECLOSED, EFAULT when the file shrank under [start, end)
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-rfind";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.write("abcabc");
   * console.assert(f.rfind("bc", 0) === 4 && f.rfind("bc", 0, 4) === 1);
   * ```
   */
  rfind(needle: Uint8Array | string, start?: number, end?: number): number {
    return this.#find(needle, start, end, true);
  }

  /**
   * Copies `count` bytes from `src` to `dest` inside the mapping; the ranges may overlap
   * (Python `move()`, memmove).
   *
   * @param dest destination index
   * @param src source index
   * @param count bytes
   * @throws {TypeError} on an access "read" map, or for non-integers
   * @throws {RangeError} when a range leaves the mapping ("source, destination, or count out of range")
   * @throws {ShmError} ECLOSED, EFAULT
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-move";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.write("abcdef");
   * f.move(1, 0, 3);
   * console.assert(new TextDecoder().decode(f.bytes(0, 6)) === "aabcef");
   * ```
   */
  move(dest: number, src: number, count: number): void {
    const what = `Cannot move bytes in mapped file ${JSON.stringify(this.path)}`;
    this.#writable(what);
    integer(dest, "dest", what);
    integer(src, "src", what);
    integer(count, "count", what);
    const size = this.#length;
    if (count < 0 || src < 0 || dest < 0 || size - dest < count || size - src < count) {
      throw new RangeError(
        `${what}: ${count} bytes from ${src} to ${dest} leave the ${size}-byte mapping (source, destination, or count out of range)`,
      );
    }
    if (count === 0) return;
    this.#guard(Math.max(src, dest) + count, what);
    check(sys.shmkit_copy(this.#mapping.id, dest, this.#mapping.id, src, count), "memmove", what);
  }

  /**
   * Writes dirty pages of [offset, offset + length) back to the file and waits (msync MS_SYNC;
   * Python `flush()`). A no-op for "read" and "copy" maps. Unlike Python, `offset` need not be
   * page-aligned (it is rounded down).
   *
   * @param offset start in the mapping (default 0)
   * @param length bytes (default: to the end)
   * @throws {RangeError} outside the mapping ("flush values out of range")
   * @throws {ShmError} ECLOSED, or the msync error (EIO, ...)
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-flush";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.write("durable");
   * f.flush();
   * ```
   */
  flush(offset = 0, length?: number): void {
    const what = `Cannot flush mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    integer(offset, "offset", what);
    const size = this.#length;
    const n = length === undefined ? size - offset : integer(length, "length", what);
    if (n < 0 || offset < 0 || offset > size || size - offset < n) {
      throw new RangeError(
        `${what}: ${n} bytes at ${offset} leave the ${size}-byte mapping (flush values out of range)`,
      );
    }
    if (this.access !== "write" || n === 0) return;
    check(sys.shmkit_msync(this.#mapping.id, offset, n, 1), "msync", what);
  }

  /**
   * Changes the file size to `offset + newLength` (ftruncate) and maps the new length (Python
   * `resize()`). Views handed out before are detached (Deno, Bun, Node >= 22) or read zeros
   * (Node 20: the old range is tombstoned and the file mapped anew); take new views after. The
   * position is kept, even past the new end (reads there return nothing, like Python). If the
   * new mapping cannot be made, the file gets its old size back and the old mapping stays.
   *
   * @param newLength the new mapped length, a positive integer
   * @throws {TypeError} on a "read" or "copy" map ("mmap can't resize a readonly or copy-on-write memory map")
   * @throws {RangeError} for a length that is not a positive integer
   * @throws {ShmError} ECLOSED, ENOSPC, ENOMEM, EFBIG
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-resize";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * f.resize(10000);
   * console.assert(f.length === 10000 && f.fileSize() === 10000);
   * ```
   */
  resize(newLength: number): void {
    const what = `Cannot resize mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    if (this.access !== "write") {
      throw new TypeError(
        `${what}: mmap can't resize a readonly or copy-on-write memory map (access "${this.access}")`,
      );
    }
    if (!Number.isSafeInteger(newLength) || newLength <= 0 || newLength + this.offset > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`${what}: the new length must be a positive integer, got ${newLength}`);
    }
    check(sys.shmkit_fstat(this.#fd, stat), "fstat", what);
    const oldFileSize = stat[0];
    const end = this.offset + newLength;
    if (end > oldFileSize) growFile(this.#fd, oldFileSize, end, what); // blocks allocated: ENOSPC now
    else check(sys.shmkit_ftruncate(this.#fd, end), "ftruncate", what);
    let m: Mapping;
    try {
      m = Mapping.map(this.#fd, newLength, this.offset, MAP_WRITE, what);
    } catch (e) {
      sys.shmkit_ftruncate(this.#fd, oldFileSize);
      throw e;
    }
    const old = this.#mapping;
    this.#mapping = m;
    this.#length = newLength;
    this.#u8 = undefined;
    this.#buffer = undefined;
    old.close(); // detaches (or tombstones) every view over the old range
  }

  /**
   * Advises the kernel how [offset, offset + length) of the mapping will be used (Python
   * `madvise()`): "normal", "random", "sequential", "willneed" (read ahead now) or "dontneed"
   * (drop the pages: a "write" or anonymous map keeps its contents, which live in the file or
   * the shared memory; a "copy" or "read" map loses its private changes and sees the file again).
   * `offset` need not be page-aligned (it is rounded down).
   *
   * @param advice the access pattern
   * @param offset start in the mapping (default 0)
   * @param length bytes (default: to the end)
   * @throws {TypeError} for an unknown advice
   * @throws {RangeError} outside the mapping
   * @throws {ShmError} ECLOSED, ENOTSUP where the platform lacks the advice
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * using m = MappedFile.anonymous(1 << 20);
   * m.madvise("sequential");
   * m.madvise("willneed", 0, 65536);
   * ```
   */
  madvise(advice: MadviseAdvice, offset = 0, length?: number): void {
    const what = `Cannot advise mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    const code = Object.hasOwn(ADVICE, advice) ? ADVICE[advice] : undefined;
    if (code === undefined) {
      throw new TypeError(
        `${what}: advice must be "normal", "random", "sequential", "willneed" or "dontneed", got ${
          JSON.stringify(advice)
        }`,
      );
    }
    integer(offset, "offset", what);
    const size = this.#length;
    const n = length === undefined ? size - offset : integer(length, "length", what);
    if (n < 0 || offset < 0 || offset > size || size - offset < n) {
      throw new RangeError(
        `${what}: ${n} bytes at ${offset} leave the ${size}-byte mapping (madvise values out of range)`,
      );
    }
    if (n === 0) return;
    check(sys.shmkit_madvise(this.#mapping.id, offset, n, code), "madvise", what);
  }

  /**
   * The size of the file in bytes now (Python `size()`), which may differ from {@linkcode length}.
   *
   * @returns the file size (fstat)
   * @throws {ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-size";
   * using f = MappedFile.open(path, { length: 4096, create: true });
   * console.assert(f.fileSize() === 4096);
   * ```
   */
  fileSize(): number {
    const what = `Cannot stat mapped file ${JSON.stringify(this.path)}`;
    this.#live(what);
    check(sys.shmkit_fstat(this.#fd, stat), "fstat", what);
    return stat[0];
  }

  /**
   * Unmaps and closes the file. Idempotent. Views handed out are detached (Deno, Bun, Node >= 22)
   * or read zeros (Node 20). Does not flush: the page cache writes "write" maps back in its own time.
   *
   * @example
   * ```ts
   * import { MappedFile } from "./mod.ts";
   * const path = (globalThis as any).Deno ? Deno.makeTempFileSync() : "/tmp/shmkit-doc-close";
   * const f = MappedFile.open(path, { length: 4096, create: true });
   * f.close(); f.close();
   * console.assert(f.closed);
   * ```
   */
  close(): void {
    if (this.#mapping.closed) return;
    this.#mapping.close();
    this.#u8 = undefined;
    this.#buffer = undefined;
    sys.shmkit_close(this.#fd);
    this.#fd = -1;
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

registerKind("shmkit.mappedfile", (h) => MappedFile.attach(h as unknown as MappedFileHandle));
