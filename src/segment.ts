/**
 * SharedMemory: a raw named (POSIX shm) or anonymous (memfd) segment, mapped zero-copy.
 * Byte-compatible with Python's `multiprocessing.shared_memory.SharedMemory`.
 *
 * @module
 */
import { check, cstr, ERRNO, EUID, osError, PAGE_SIZE, PID, processAlive, START_TIME, sys } from "./sys.ts";
import { checkKeys, ShmError } from "./errors.ts";
import { MAP_PRIVATE, MAP_WRITE, Mapping, MAX_VIEW_BYTES, windowCount } from "./mapping.ts";
import { checkHandle, HANDLE_VERSION, handleName, isId, registerKind } from "./handle.ts";

/** The handle of a SharedMemory segment: JSON-safe, reopened by {@linkcode SharedMemory.attach}. */
export interface SharedMemoryHandle {
  /** Always `"shmkit.shm"`. */
  readonly kind: "shmkit.shm";
  /** The handle format version. */
  readonly version: number;
  /** The name without a leading "/", or null for an anonymous segment. */
  readonly name: string | null;
  /** The segment size in bytes. */
  readonly size: number;
  /** Anonymous segments: the creator's pid, its start time and the memfd number there. */
  readonly pid?: number;
  /** Anonymous segments: the creator's start time (with `pid`, a pid-reuse-proof identity). */
  readonly startTime?: number;
  /** Anonymous segments: the memfd number in the creator process. */
  readonly fd?: number;
}

/** Options of {@linkcode SharedMemory.create}. */
export interface CreateOptions {
  /** File mode of the new segment, applied exactly (default 0o600). */
  mode?: number;
}

/** Options of {@linkcode SharedMemory.open}. */
export interface OpenOptions {
  /** Open read-only: the segment is never modified through this mapping. */
  readOnly?: boolean;
  /**
   * Open a segment that another user owns, or that other users may write (mode bits 0o022).
   * By default such a segment is refused with EACCES: anyone who could create or write it may
   * have squatted the name and written its contents. Default false.
   */
  trustOthers?: boolean;
}

/** Anything TypedArray- or DataView-like that can be built over (buffer, byteOffset, length). */
export type ViewConstructor<T extends ArrayBufferView> = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT?: number;
};

const NAME_MAX: number = sys.shmkit_name_max();

/**
 * Normalizes a segment name: "jobs" and "/jobs" are the same segment. Throws EINVAL for an empty
 * name, an inner "/", a NUL or a name too long for the platform.
 */
export function normalizeName(name: unknown, what: string): string {
  if (typeof name !== "string") throw new TypeError(`${what}: the name must be a string, got ${typeof name}`);
  const n = name.startsWith("/") ? name.slice(1) : name;
  let why = "";
  if (n.length === 0) why = "it is empty";
  else if (n.includes("/")) why = 'it contains "/" after the first character';
  else if (n.includes("\0")) why = "it contains a NUL character";
  else if (!wellFormed(n)) why = "it is not well-formed Unicode (a lone surrogate would become U+FFFD)";
  else if (n === "." || n === "..") why = `"${n}" is not a valid name`;
  else if (new TextEncoder().encode(n).length > NAME_MAX) why = `it is longer than ${NAME_MAX} bytes`;
  if (why) {
    throw new ShmError("EINVAL", `${what} ${JSON.stringify(name)}: invalid name, ${why} (EINVAL)`, {
      errno: ERRNO.EINVAL,
    });
  }
  return n;
}

// True if `s` has no lone surrogate (String.prototype.isWellFormed where the runtime has it).
function wellFormed(s: string): boolean {
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  if (typeof f === "function") return f.call(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

// The error for a failed shm_open: a name squatted by something that is not a segment gets a
// sentence of its own.
function openError(r: number, what: string): ShmError {
  if (r === -ERRNO.ENODEV) {
    return new ShmError(
      "EINVAL",
      `${what}: the name is taken by something that is not a shared memory object (a FIFO, device or directory) (EINVAL)`,
      { errno: ERRNO.EINVAL, syscall: "shm_open" },
    );
  }
  if (r === -ERRNO.ELOOP) {
    return new ShmError("ELOOP", `${what}: the name is a symbolic link, which is never followed (ELOOP)`, {
      errno: ERRNO.ELOOP,
      syscall: "shm_open",
    });
  }
  if (r === -ERRNO.ENOENT) {
    return new ShmError("ENOENT", `${what}: no such segment (ENOENT). ${MISSING_HINT}`, {
      errno: ERRNO.ENOENT,
      syscall: "shm_open",
    });
  }
  return osError(r, "shm_open", what);
}

/** What to do about a name that is not there (appended to ENOENT messages of open). */
const MISSING_HINT = "Create it first, or check the name (`shmkit ls`, e.g. `npx shmkit ls`, lists them)";

/** EEXIST of a create, with what to do: the usual cause is a segment left over from an earlier run. */
function takenError(what: string, name: string): ShmError {
  return new ShmError(
    "EEXIST",
    `${what}: the name is taken (EEXIST). Open the existing object instead, or, if it is left over from an ` +
      `earlier run, remove it first: \`shmkit rm ${name}\` or SharedMemory.unlink(${JSON.stringify(name)})`,
    { errno: ERRNO.EEXIST, syscall: "shm_open" },
  );
}

/**
 * Refuses (EACCES) a segment owned by another user or writable by group or others, unless the
 * caller trusts them. `st` is an fstat result (mode, uid at 1, 2).
 */
function checkTrust(st: Float64Array, trustOthers: boolean | undefined, what: string): void {
  if (trustOthers === true || EUID < 0) return;
  const mode = st[1], owner = st[2];
  let why = "";
  if (owner !== EUID) why = `it belongs to user ${owner}, not to this process's user ${EUID}`;
  else if (mode & 0o022) why = `its mode 0o${mode.toString(8)} lets other users write it`;
  if (why) {
    throw new ShmError(
      "EACCES",
      `${what}: ${why}, so anyone could have created it or written its contents; pass { trustOthers: true } to open it anyway (EACCES)`,
      { errno: ERRNO.EACCES },
    );
  }
}

function checkSize(size: unknown, what: string): number {
  if (typeof size !== "number") throw new TypeError(`${what}: size must be a number, got ${typeof size}`);
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new ShmError("EINVAL", `${what}: size must be a positive integer number of bytes, got ${size} (EINVAL)`, {
      errno: ERRNO.EINVAL,
    });
  }
  return size;
}

function randomName(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return "shmkit-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const stat = new Float64Array(8);

/**
 * A raw shared memory segment.
 *
 * Role contract: any number of processes (and threads) may map the same segment and read and
 * write it at once; shmkit adds no locking and no ordering to raw segments. Use the structured
 * objects (Ring, Mutex, ...) or `Atomics` on `view(Int32Array)` to coordinate. One SharedMemory
 * object is one mapping in this process.
 * `close()` unmaps (every view handed out is detached); `unlink()` removes the name, and processes
 * already attached keep working.
 *
 * @example
 * ```ts
 * import { SharedMemory } from "./mod.ts";
 * using seg = SharedMemory.create(null, 1024);
 * seg.bytes().set([1, 2, 3]);
 * using other = SharedMemory.open(seg.name!);
 * console.assert(other.bytes(0, 3).join() === "1,2,3");
 * seg.unlink();
 * ```
 */
export class SharedMemory implements Disposable {
  /** The name (without a leading "/"), or null for anonymous memory. */
  readonly name: string | null;
  /** Size in bytes. */
  readonly size: number;
  /** True if opened read-only: writes through views stay private to this process. */
  readonly readOnly: boolean;
  #mapping: Mapping;
  #fd: number; // kept open for anonymous segments (others attach through /proc/<pid>/fd/<fd>)
  #buffer?: ArrayBuffer;

  private constructor(name: string | null, size: number, readOnly: boolean, mapping: Mapping, fd: number) {
    this.name = name;
    this.size = size;
    this.readOnly = readOnly;
    this.#mapping = mapping;
    this.#fd = fd;
  }

  /**
   * Creates a new segment exclusively (`O_CREAT|O_EXCL`), mode 0o600 unless `options.mode`.
   * The memory is reserved at once, so a full /dev/shm fails here with ENOSPC.
   *
   * @param name the segment name ("jobs" and "/jobs" are the same), or null for a random unused one
   * @param size bytes, a positive integer
   * @param options `mode` (default 0o600), applied exactly whatever the umask
   * @returns the mapped segment (zero-filled)
   * @throws {ShmError} EEXIST when the name is taken, EINVAL for a bad name or size, ENOSPC when
   *   /dev/shm is full, EACCES
   * @throws {RangeError} for a mode outside 0..0o777
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096, { mode: 0o640 });
   * console.assert(seg.bytes().every((b: number) => b === 0));
   * seg.unlink();
   * ```
   */
  static create(name: string | null, size: number, options: CreateOptions = {}): SharedMemory {
    checkKeys(options, ["mode"], "Cannot create shared memory");
    const mode = options.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
      throw new RangeError(`Cannot create shared memory: mode must be an integer in 0..0o777, got ${mode}`);
    }
    for (let attempt = 0;; attempt++) {
      const n = name === null ? randomName() : normalizeName(name, "Cannot create shared memory");
      const what = `Cannot create shared memory "${n}"`;
      checkSize(size, what);
      const fd = sys.shmkit_shm_create(cstr("/" + n), size, mode);
      if (fd === -ERRNO.EEXIST && name === null && attempt < 100) continue; // EEXIST: draw another name
      if (fd === -ERRNO.EEXIST) throw takenError(what, n);
      check(fd, "shm_open", what);
      try {
        const m = Mapping.map(fd, size, 0, MAP_WRITE, what);
        return new SharedMemory(n, size, false, m, -1);
      } catch (e) {
        sys.shmkit_shm_unlink(cstr("/" + n));
        throw e;
      } finally {
        sys.shmkit_close(fd);
      }
    }
  }

  /**
   * Opens an existing segment (created by shmkit, Python or anyone else) at its full size.
   * Read-only segments are mapped copy-on-write: a store through a view never faults and never
   * reaches the segment.
   *
   * Trust: a segment owned by another user, or writable by group or others (mode & 0o022), is
   * refused with EACCES unless `options.trustOthers`: whoever could create or write it may have
   * squatted the name and filled it. A FIFO, device or directory at the name is EINVAL and a
   * symbolic link ELOOP; neither is ever opened through (opening never blocks).
   *
   * @param name the segment name
   * @param options `readOnly` (default false), `trustOthers` (default false)
   * @returns the mapped segment
   * @throws {ShmError} ENOENT when there is no such segment, EACCES (permissions, or an untrusted
   *   owner or mode), EINVAL for a bad name, an empty segment or a non-segment file at the name,
   *   ELOOP for a symbolic link
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * using ro = SharedMemory.open(seg.name!, { readOnly: true });
   * ro.bytes()[0] = 1; // private to this mapping
   * console.assert(seg.bytes()[0] === 0);
   * seg.unlink();
   * ```
   */
  static open(name: string, options: OpenOptions = {}): SharedMemory {
    checkKeys(options, ["readOnly", "trustOthers"], "Cannot open shared memory");
    const n = normalizeName(name, "Cannot open shared memory");
    const what = `Cannot open shared memory "${n}"`;
    const readOnly = options.readOnly === true;
    const fd = sys.shmkit_shm_open(cstr("/" + n), readOnly ? 1 : 0);
    if (fd < 0) throw openError(fd, what);
    try {
      check(sys.shmkit_fstat(fd, stat), "fstat", what);
      const size = stat[0];
      if (stat[7] !== 1) throw new ShmError("EINVAL", `${what}: it is not a regular shared memory object (EINVAL)`);
      checkTrust(stat, options.trustOthers, what);
      if (size === 0) throw new ShmError("EINVAL", `${what}: it is empty (size 0), nothing to map (EINVAL)`);
      // Read-only: a private copy-on-write mapping, so a stray write never faults nor leaks out.
      const m = Mapping.map(fd, size, 0, readOnly ? MAP_WRITE | MAP_PRIVATE : MAP_WRITE, what);
      return new SharedMemory(n, size, readOnly, m, -1);
    } finally {
      sys.shmkit_close(fd);
    }
  }

  /**
   * Creates an anonymous segment (memfd): no name in /dev/shm, freed when the last process closes
   * it. Other processes attach by {@linkcode handle} while this process keeps it open (Linux:
   * through /proc/<pid>/fd, so the attacher needs the same user or ptrace rights).
   *
   * @param size bytes, a positive integer
   * @returns the mapped segment, `name` null
   * @throws {ShmError} EINVAL for a bad size, ENOMEM, ENOSPC
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.anonymous(4096);
   * const handle = JSON.stringify(seg.handle()); // another process: SharedMemory.attach(JSON.parse(handle))
   * ```
   */
  static anonymous(size: number): SharedMemory {
    const what = "Cannot create anonymous shared memory";
    checkSize(size, what);
    const fd = check(sys.shmkit_memfd_create(cstr("shmkit-anon"), size), "memfd_create", what);
    try {
      return new SharedMemory(null, size, false, Mapping.map(fd, size, 0, MAP_WRITE, what), fd);
    } catch (e) {
      sys.shmkit_close(fd);
      throw e;
    }
  }

  /**
   * Removes a segment's name; processes already attached keep working.
   *
   * @param name the segment name
   * @returns false if it did not exist
   * @throws {ShmError} EINVAL for a bad name, EACCES
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * console.assert(SharedMemory.unlink("shmkit-doc-never-created") === false);
   * ```
   */
  static unlink(name: string): boolean {
    const n = normalizeName(name, "Cannot unlink shared memory");
    const r = sys.shmkit_shm_unlink(cstr("/" + n));
    if (r === -ERRNO.ENOENT) return false;
    check(r, "shm_unlink", `Cannot unlink shared memory "${n}"`);
    return true;
  }

  /**
   * True if the name is taken: by a segment (even one this process may not open or would not
   * trust), or by a FIFO, device, directory or symbolic link squatting it. Never blocks.
   *
   * @param name the segment name
   * @returns whether it exists
   * @throws {ShmError} EINVAL for a bad name
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * console.assert(!SharedMemory.exists("shmkit-doc-never-created"));
   * ```
   */
  static exists(name: string): boolean {
    const n = normalizeName(name, "Cannot look up shared memory");
    const fd = sys.shmkit_shm_open(cstr("/" + n), 1);
    if (fd >= 0) {
      sys.shmkit_close(fd);
      return true;
    }
    if (fd === -ERRNO.ENOENT) return false;
    if (fd === -ERRNO.EACCES) return true; // EACCES: it exists, we may not read it
    if (fd === -ERRNO.ENODEV || fd === -ERRNO.ELOOP) return true; // taken by a non-segment or a link
    throw osError(fd, "shm_open", `Cannot look up shared memory "${n}"`);
  }

  /**
   * Reopens a segment from its {@linkcode handle} (in any process).
   *
   * @param handle a handle from {@linkcode SharedMemory.handle}, possibly through JSON
   * @param options for a named segment, as {@linkcode SharedMemory.open} (`trustOthers`)
   * @returns the mapped segment
   * @throws {ShmError} EINVAL for a foreign or malformed handle, ENOENT when the segment (or the
   *   process holding an anonymous one) is gone, EACCES
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * using again = SharedMemory.attach(JSON.parse(JSON.stringify(seg.handle())));
   * seg.unlink();
   * ```
   */
  static attach(handle: SharedMemoryHandle, options: { trustOthers?: boolean } = {}): SharedMemory {
    checkKeys(options, ["trustOthers"], "Cannot attach shared memory");
    checkHandle(handle, "shmkit.shm");
    const name = handleName(handle.name, "Cannot attach shared memory");
    if (name !== null) return SharedMemory.open(name, { trustOthers: options.trustOthers });
    const { pid, fd, startTime, size } = handle;
    const what = `Cannot attach anonymous shared memory of process ${pid}`;
    // A pid no process can have is ENOENT below (processAlive: "that process has exited").
    if (typeof pid !== "number" || !isId(fd) || !Number.isSafeInteger(size) || size <= 0) {
      throw new ShmError("EINVAL", `${what}: the handle lacks a valid pid, fd or size (EINVAL)`);
    }
    if (!processAlive(pid, startTime ?? -1)) {
      throw new ShmError("ENOENT", `${what}: that process has exited, and the memory with it (ENOENT)`);
    }
    const own = sys.shmkit_open_proc_fd(pid, fd | 0, 0); // fd | 0: -0 is no i32 to Deno's FFI
    if (own === -ERRNO.ENODEV) {
      throw new ShmError("EINVAL", `${what}: descriptor ${fd} there is not shared memory (EINVAL)`, {
        errno: ERRNO.EINVAL,
      });
    }
    check(own, "open", what);
    try {
      check(sys.shmkit_fstat(own, stat), "fstat", what);
      if (stat[0] !== size) {
        throw new ShmError("EINVAL", `${what}: descriptor ${fd} is ${stat[0]} bytes, the handle says ${size} (EINVAL)`);
      }
      return new SharedMemory(null, size, false, Mapping.map(own, size, 0, MAP_WRITE, what), own);
    } catch (e) {
      sys.shmkit_close(own);
      throw e;
    }
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#mapping.closed;
  }

  /** @internal The mapping, for structured objects placed in this segment. */
  get mapping(): Mapping {
    return this.#mapping;
  }

  #what(): string {
    return this.name === null ? "anonymous shared memory" : `shared memory "${this.name}"`;
  }

  /**
   * The whole mapping as one zero-copy ArrayBuffer. Detached by {@linkcode close}.
   * @throws {RangeError} if the segment is larger than this runtime's ArrayBuffer limit: use windows
   */
  get buffer(): ArrayBuffer {
    if (this.#buffer && !this.#buffer.detached && this.#buffer.byteLength === this.size) return this.#buffer;
    this.#buffer = this.#mapping.view(0, this.size, `Cannot view ${this.#what()}`);
    return this.#buffer;
  }

  /**
   * A zero-copy Uint8Array over [byteOffset, byteOffset + length) (default: to the end).
   *
   * @param byteOffset start (default 0)
   * @param length bytes (default: to the end)
   * @returns a live view, detached by close()
   * @throws {RangeError} outside the segment; {@linkcode ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * seg.bytes(100, 3).set([1, 2, 3]);
   * seg.unlink();
   * ```
   */
  bytes(byteOffset = 0, length?: number): Uint8Array {
    return this.view(Uint8Array, byteOffset, length);
  }

  /**
   * A zero-copy typed array (or DataView) at `byteOffset` with `length` elements (default: as many
   * as fit). Windows work on segments larger than the runtime's ArrayBuffer limit.
   *
   * @param type the view constructor (Uint32Array, Float64Array, DataView, ...)
   * @param byteOffset start (default 0)
   * @param length element count (default: as many as fit)
   * @returns a live view, detached by close()
   * @throws {RangeError} outside the segment; {@linkcode ShmError} ECLOSED after close
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * const words = seg.view(Int32Array, 64, 4);
   * Atomics.add(words, 0, 1);
   * seg.unlink();
   * ```
   */
  view<T extends ArrayBufferView>(type: ViewConstructor<T>, byteOffset = 0, length?: number): T {
    const what = `Cannot view ${this.#what()}`;
    const per = type.BYTES_PER_ELEMENT ?? 1;
    const count = windowCount(this.size, per, byteOffset, length, what);
    if (this.closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    if (this.size <= MAX_VIEW_BYTES) return new type(this.buffer, byteOffset, count);
    // Larger than one ArrayBuffer may be: a window of its own, page-aligned underneath.
    const start = byteOffset - (byteOffset % PAGE_SIZE);
    const buf = this.#mapping.view(start, byteOffset - start + count * per, what);
    return new type(buf, byteOffset - start, count);
  }

  /**
   * A JSON-safe handle; {@linkcode SharedMemory.attach} reopens it anywhere.
   *
   * @returns `{ kind: "shmkit.shm", version, name, size }` (+ pid, startTime, fd when anonymous)
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * console.assert(seg.handle().size === 4096);
   * seg.unlink();
   * ```
   */
  handle(): SharedMemoryHandle {
    if (this.closed) {
      throw new ShmError(
        "ECLOSED",
        `Cannot make a handle of ${
          this.name === null ? "an anonymous segment" : `segment "${this.name}"`
        }: it is closed (ECLOSED)`,
      );
    }
    if (this.name !== null) return { kind: "shmkit.shm", version: HANDLE_VERSION, name: this.name, size: this.size };
    return {
      kind: "shmkit.shm",
      version: HANDLE_VERSION,
      name: null,
      size: this.size,
      pid: PID,
      startTime: START_TIME,
      fd: this.#fd,
    };
  }

  /**
   * Unmaps the segment; every view handed out is detached (Deno, Bun, Node >= 22) or reads zeros
   * (Node 20: the range is tombstoned with private zero pages). Idempotent. Does not unlink.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * const seg = SharedMemory.create(null, 4096);
   * seg.unlink();
   * seg.close(); seg.close();
   * ```
   */
  close(): void {
    if (this.#mapping.closed) return;
    this.#mapping.close();
    this.#buffer = undefined;
    if (this.#fd >= 0) {
      sys.shmkit_close(this.#fd);
      this.#fd = -1;
    }
  }

  /**
   * Removes the segment's name (no-op for anonymous memory). Attached processes keep working.
   *
   * @throws {ShmError} EACCES
   * @example
   * ```ts
   * import { SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 4096);
   * seg.unlink();
   * console.assert(!SharedMemory.exists(seg.name!));
   * ```
   */
  unlink(): void {
    if (this.name !== null) SharedMemory.unlink(this.name);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

registerKind("shmkit.shm", (h) => SharedMemory.attach(h as SharedMemoryHandle));
