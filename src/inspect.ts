/**
 * Reading and describing any shmkit object from outside, for the command line (`cli.ts`) and for
 * tools: which segments are shmkit objects, what kind, who created them, whether any live process
 * still has them open, and the live state of each kind (ring fill, pool available, lock holder,
 * array dtype and shape).
 *
 * Everything here is read-only and defensive: segments are mapped read-only (a private
 * copy-on-write mapping, so nothing is ever written back), every field is read once into a local
 * and bounds-checked, and a corrupt or foreign segment is reported, never trusted. The readers
 * use the offsets each kind documents in docs/LAYOUT.md; {@linkcode READER_LAYOUT} lists them and
 * tests/layout_test.ts checks them against that document.
 *
 * Reads of live words are plain snapshots (relaxed): the state may change while it is printed.
 *
 * @module
 */
import { ShmError } from "./errors.ts";
import { type CommonHeader, peekHeader } from "./layout.ts";
import { SharedMemory } from "./segment.ts";
import { check, cstr, PID, processAlive, sys } from "./sys.ts";
import { describeHeap, HEAP } from "./heap.ts";

/**
 * The kind-specific offsets the readers below use (from each kind's layout table in
 * docs/LAYOUT.md; offsets from the object's byteOffset).
 */
export const READER_LAYOUT = {
  mutex: { lock: 64, slotCount: 68, recoveries: 72, slots: 128 },
  semaphore: { value: 64, waiters: 68 },
  mempool: { count: 64, blockSize: 68, maxProcesses: 76, slotsOffset: 80, statesOffset: 88, waiters: 128 },
  ring: {
    capacity: 64,
    slotCount: 68,
    mode: 72,
    tail: 128,
    head: 192,
    consWaiters: 256,
    prodWaiters: 260,
    producerRole: 320,
    consumerRole: 336,
  },
  channel: {
    slots: 64,
    slotSize: 68,
    mode: 72,
    blockStride: 80,
    procsOffset: 88,
    readyOffset: 96,
    tableOffset: 104,
    dataOffset: 112,
    reclaimed: 120,
    maxProcesses: 124,
  },
  array: { dtype: 64, itemSize: 66, ndim: 68, length: 72, shape: 96 },
  log: {
    capacity: 64,
    mode: 68,
    maxRecord: 72,
    dataOffset: 76,
    slotCount: 80,
    tail: 128,
    head: 192,
    clean: 196,
    readWaiters: 256,
    writeWaiters: 260,
    writerRole: 320,
    readerRole: 336,
    participants: 384,
  },
} as const;

const DTYPE_NAMES = [
  "",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "float32",
  "float64",
];

/** What is known about one segment in /dev/shm. */
export interface SegmentInfo {
  /** The name (without "/"). */
  name: string;
  /** Size in bytes (-1 when it could not be read). */
  size: number;
  /** True if it starts with a shmkit common header. */
  shmkit: boolean;
  /** The kind, for shmkit objects. */
  kind?: string;
  /** The common header, for shmkit objects. */
  header?: CommonHeader;
  /** Live processes (other than this one) that have it open or mapped. */
  holders: number[];
  /** True if any live process other than this one has it open or mapped. */
  inUse: boolean;
  /** True if the creator process (pid and start time) still runs. */
  creatorAlive?: boolean;
  /** Why the segment could not be read (EACCES, ...). */
  error?: string;
}

/** A JSON value of a description: numbers, booleans and pid lists stay typed (`--json`). */
export type DetailValue = string | number | boolean | null | number[];

/** A kind-specific description: ordered label/value pairs. */
export type Details = [string, DetailValue][];

/**
 * The names of every regular file in /dev/shm (shmkit or not), sorted. Read natively, so Deno
 * needs no read permission on /dev.
 *
 * @returns the names, without "/"
 * @throws {ShmError} when /dev/shm cannot be read
 * @example
 * ```ts
 * import { listSegments } from "./src/inspect.ts";
 * console.assert(Array.isArray(listSegments()));
 * ```
 */
export function listSegments(): string[] {
  let buf = new Uint8Array(16384);
  for (;;) {
    const n = check(sys.shmkit_shm_list(buf, buf.length), "opendir", "Cannot list /dev/shm");
    if (n <= buf.length) {
      const text = new TextDecoder().decode(buf.subarray(0, n));
      return text.split("\0").filter((s) => s.length > 0).sort();
    }
    buf = new Uint8Array(n + 4096);
  }
}

/**
 * The pids of live processes, other than this one, that have `/dev/shm/<name>` open or mapped.
 *
 * @param name the segment name
 * @returns the pids (ascending)
 * @throws {ShmError} when /proc cannot be read
 * @example
 * ```ts
 * import { holders } from "./src/inspect.ts";
 * console.assert(Array.isArray(holders("no-such-segment")));
 * ```
 */
export function holders(name: string): number[] {
  let out = new Int32Array(64);
  for (;;) {
    const n = sys.shmkit_shm_holders(cstr("/" + name), out, out.length);
    if (n < 0) throw new ShmError("EIO", `Cannot list the holders of "${name}": /proc is not readable (${n})`);
    if (n <= out.length) return Array.from(out.subarray(0, n)).filter((p) => p !== PID).sort((a, b) => a - b);
    out = new Int32Array(n * 2);
  }
}

/**
 * Reads what can be known about segment `name` without changing it.
 *
 * @param name the segment name
 * @returns its description (with `error` set when it could not be opened)
 * @throws {ShmError} ENOENT when there is no such segment
 * @example
 * ```ts
 * import { SharedMemory } from "./mod.ts";
 * import { describe } from "./src/inspect.ts";
 * using seg = SharedMemory.create(null, 4096);
 * console.assert(describe(seg.name!).shmkit === false);
 * seg.unlink();
 * ```
 */
export function describe(name: string): SegmentInfo {
  const info: SegmentInfo = { name, size: -1, shmkit: false, holders: [], inUse: false };
  let seg: SharedMemory;
  try {
    // trustOthers: listing never writes, and every field it shows is read through bounds-checked readers
    seg = SharedMemory.open(name, { readOnly: true, trustOthers: true });
  } catch (e) {
    if (e instanceof ShmError && e.code === "ENOENT") throw e;
    info.error = (e as Error).message;
    info.holders = holders(name);
    info.inUse = info.holders.length > 0;
    return info;
  }
  try {
    info.size = seg.size;
    const head = seg.bytes(0, Math.min(seg.size, 64));
    const h = peekHeader(head.buffer as ArrayBuffer, head.byteOffset);
    if (h) {
      info.shmkit = true;
      info.kind = h.kind;
      info.header = h;
      info.creatorAlive = h.creatorPid > 0 && processAlive(h.creatorPid, h.creatorStart > 0 ? h.creatorStart : -1);
    }
  } finally {
    seg.close();
  }
  info.holders = holders(name);
  info.inUse = info.holders.length > 0;
  return info;
}

function u64(dv: DataView, off: number): number {
  return Number(dv.getBigUint64(off, true));
}

/** Reads `len` bytes at `off` of the segment as a DataView, or undefined if they are not all there. */
function window(seg: SharedMemory, off: number, len: number): DataView | undefined {
  if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > seg.size) {
    return undefined;
  }
  const b = seg.bytes(off, len);
  return new DataView(b.buffer, b.byteOffset, len);
}

function liveness(pid: number, start: number): string {
  return `${pid} (${processAlive(pid, start) ? "alive" : "dead"})`;
}

function describeMutex(seg: SharedMemory, off: number, out: Details): void {
  const L = READER_LAYOUT.mutex;
  const dv = window(seg, off, L.slots);
  if (!dv) return void out.push(["error", "the mutex header is cut short"]);
  const word = dv.getUint32(L.lock, true); // a snapshot (relaxed)
  const slots = dv.getUint32(L.slotCount, true);
  const owner = word & 0xffff;
  out.push(["slots", slots], ["recoveries", dv.getUint32(L.recoveries, true)]);
  out.push(["waiters", (word & 0x80000000) !== 0]);
  if (owner === 0) {
    out.push(["holder", (word & 0x10000) !== 0 ? "none (abandoned: the next locker recovers)" : "none"]);
    return;
  }
  const slot = window(seg, off + L.slots + 8 * (owner - 1), 8);
  if (owner > slots || !slot) return void out.push(["holder", `corrupt lock word 0x${word.toString(16)}`]);
  const id = slot.getBigUint64(0, true);
  const pid = Number(id % (1n << 22n));
  const start = Number(id >> 22n);
  out.push(["holder", liveness(pid, start === 2 ** 42 - 1 ? -1 : start)]);
}

function describeSemaphore(seg: SharedMemory, off: number, out: Details): void {
  const dv = window(seg, off, 72);
  if (!dv) return void out.push(["error", "the semaphore header is cut short"]);
  out.push(["value", dv.getUint32(READER_LAYOUT.semaphore.value, true)]);
  out.push(["waiters", dv.getUint32(READER_LAYOUT.semaphore.waiters, true)]);
}

function describeMempool(seg: SharedMemory, off: number, h: CommonHeader, out: Details, prefix = ""): void {
  const L = READER_LAYOUT.mempool;
  const dv = window(seg, off, 136);
  if (!dv) return void out.push([prefix + "error", "the mempool header is cut short"]);
  const count = dv.getUint32(L.count, true);
  const procs = dv.getUint32(L.maxProcesses, true);
  const slotsOff = u64(dv, L.slotsOffset);
  const statesOff = u64(dv, L.statesOffset);
  out.push([prefix + "count", count], [prefix + "blockSize", dv.getUint32(L.blockSize, true)]);
  const states = statesOff + 4 * count <= h.byteLength && count <= 2 ** 28
    ? window(seg, off + statesOff, 4 * count)
    : undefined;
  if (!states) return void out.push([prefix + "error", "the state array lies outside the object"]);
  let free = 0;
  for (let i = 0; i < count; i++) if (states.getUint32(4 * i, true) === 0) free++;
  out.push([prefix + "available", free], [prefix + "waiters", dv.getInt32(L.waiters, true)]);
  const table = procs <= 256 && slotsOff + 16 * procs <= statesOff
    ? window(seg, off + slotsOff, 16 * procs)
    : undefined;
  if (!table) return;
  const users: string[] = [];
  for (let s = 0; s < procs; s++) {
    const id = table.getBigUint64(16 * s, true);
    if (id === 0n) continue;
    users.push(liveness(Number(id & 0xffffffffn), -1));
  }
  out.push([prefix + "participants", users.length === 0 ? "none" : users.join(", ")]);
}

const RING_MODES = ["spsc", "mpsc", "spmc", "mpmc"];

function roleHolder(dv: DataView, at: number): string {
  const pid = dv.getUint32(at, true);
  if (pid === 0) return "free";
  return `pid ${pid} (${processAlive(pid) ? "alive" : "dead"})`;
}

function describeRing(seg: SharedMemory, off: number, out: Details, prefix = ""): void {
  const L = READER_LAYOUT.ring;
  const dv = window(seg, off, 384);
  if (!dv) return void out.push([prefix + "error", "the ring header is cut short"]);
  const capacity = dv.getUint32(L.capacity, true);
  const mode = dv.getUint32(L.mode, true);
  const queued = (dv.getUint32(L.tail, true) - dv.getUint32(L.head, true)) >>> 0;
  out.push([prefix + "capacity", capacity], [prefix + "mode", RING_MODES[mode] ?? `unknown (${mode})`]);
  out.push([prefix + "queued", queued <= capacity ? queued : `corrupt (tail - head = ${queued})`]);
  out.push([
    prefix + "parked",
    `${dv.getUint32(L.consWaiters, true)} consumers, ${dv.getUint32(L.prodWaiters, true)} producers`,
  ]);
  if (mode !== 3) {
    out.push([prefix + "producer", roleHolder(dv, L.producerRole)], [
      prefix + "consumer",
      roleHolder(dv, L.consumerRole),
    ]);
  }
}

function describeLog(seg: SharedMemory, off: number, out: Details): void {
  const L = READER_LAYOUT.log;
  const dv = window(seg, off, L.participants);
  if (!dv) return void out.push(["error", "the log header is cut short"]);
  const capacity = dv.getUint32(L.capacity, true);
  const mode = dv.getUint32(L.mode, true);
  const used = (dv.getUint32(L.tail, true) - dv.getUint32(L.head, true)) >>> 0;
  out.push(["capacity", capacity], ["mode", mode === 0 ? "spsc" : mode === 1 ? "mpsc" : `unknown (${mode})`]);
  out.push(["maxRecord", dv.getUint32(L.maxRecord, true)]);
  out.push(["bytesQueued", used <= capacity ? used : `corrupt (tail - head = ${used})`]);
  out.push(["parked", `${dv.getUint32(L.readWaiters, true)} readers, ${dv.getUint32(L.writeWaiters, true)} writers`]);
  out.push(["reader", roleHolder(dv, L.readerRole)]);
  if (mode === 0) return void out.push(["writer", roleHolder(dv, L.writerRole)]);
  const n = Math.min(dv.getUint32(L.slotCount, true), 1024);
  const slots = window(seg, off + L.participants, 32 * n);
  const users: string[] = [];
  for (let i = 0; slots && i < n; i++) {
    const pid = slots.getUint32(32 * i, true);
    const len = slots.getUint32(32 * i + 16, true);
    if (pid !== 0) {
      users.push(`pid ${pid} (${processAlive(pid) ? "alive" : "dead"})${len ? ` claiming ${len} bytes` : ""}`);
    }
  }
  out.push(["writers", users.length === 0 ? "none" : users.join(", ")]);
}

function describeChannel(seg: SharedMemory, off: number, h: CommonHeader, out: Details): void {
  const L = READER_LAYOUT.channel;
  const dv = window(seg, off, 128);
  if (!dv) return void out.push(["error", "the channel header is cut short"]);
  const mode = dv.getUint32(L.mode, true);
  out.push(["slots", dv.getUint32(L.slots, true)], ["slotSize", dv.getUint32(L.slotSize, true)]);
  out.push(["mode", mode === 0 ? "spsc" : mode === 1 ? "mpmc" : mode === 2 ? "spsc-ordered" : `unknown (${mode})`]);
  out.push(["reclaimed", dv.getUint32(L.reclaimed, true)], ["maxProcesses", dv.getUint32(L.maxProcesses, true)]);
  for (const [label, at] of [["ready.", L.readyOffset]] as const) {
    const ringOff = u64(dv, at);
    const ring = ringOff % 64 === 0 && ringOff + 384 <= h.byteLength ? window(seg, off + ringOff, 64) : undefined;
    const rh = ring ? peekHeader(ring.buffer as ArrayBuffer, ring.byteOffset) : undefined;
    if (rh?.kind === "ring") describeRing(seg, off + ringOff, out, label);
    else out.push([label + "ring", `no ring header at offset ${ringOff}`]);
  }
}

function describeArray(seg: SharedMemory, off: number, h: CommonHeader, out: Details): void {
  const L = READER_LAYOUT.array;
  const dv = window(seg, off, 96);
  if (!dv) return void out.push(["error", "the array header is cut short"]);
  const code = dv.getUint16(L.dtype, true);
  const ndim = dv.getUint32(L.ndim, true);
  const dtype = DTYPE_NAMES[code] || `unknown (${code})`;
  out.push(["dtype", dtype]);
  const dims = ndim <= 32 ? window(seg, off + L.shape, 8 * ndim) : undefined;
  if (!dims) return void out.push(["shape", `corrupt (ndim ${ndim})`]);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(Number(dims.getBigUint64(8 * i, true)));
  out.push(["shape", shape], ["length", u64(dv, L.length)]);
  out.push(["byteOffset", off + h.headerSize], ["itemSize", dv.getUint16(L.itemSize, true)]);
}

/**
 * The header and live state of the shmkit object in segment `name`, as label/value pairs.
 * Kinds this build cannot read further (ring, condition) show the common header only.
 *
 * @param name the segment name
 * @returns the description, or undefined when the segment is not a shmkit object
 * @throws {ShmError} ENOENT, EACCES when it cannot be opened
 * @example
 * ```ts
 * import { SharedArray } from "./mod.ts";
 * import { inspect } from "./src/inspect.ts";
 * using a = SharedArray.zeros("doc-inspect", "int32", [2, 2]);
 * console.assert(inspect("doc-inspect")!.some(([k, v]) => k === "shape" && String(v) === "2,2"));
 * a.unlink();
 * ```
 */
/**
 * A header's `createdMs` as an ISO 8601 time, or null when it is no valid time: a corrupt or foreign
 * header may hold any f64 there, and `Date.prototype.toISOString` throws a RangeError beyond
 * ±8.64e15 ms.
 *
 * @param ms milliseconds since the Unix epoch, as read from a header
 * @returns the ISO time, or null
 */
export function isoTime(ms: number): string | null {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString() : null;
}

export function inspect(name: string): Details | undefined {
  const seg = SharedMemory.open(name, { readOnly: true, trustOthers: true });
  try {
    const head = seg.bytes(0, Math.min(seg.size, 64));
    const h = peekHeader(head.buffer as ArrayBuffer, head.byteOffset);
    if (!h) return undefined;
    const who = holders(name);
    const out: Details = [
      ["name", name],
      ["kind", h.kind],
      ["size", seg.size],
      ["layoutVersion", h.layoutVersion],
      ["state", h.state === 1 ? "ready" : h.state === 0 ? "initializing" : `unknown (${h.state})`],
      ["headerSize", h.headerSize],
      ["byteLength", h.byteLength],
      ["flags", h.flags],
      ["creatorPid", h.creatorPid],
      ["creatorAlive", processAlive(h.creatorPid, h.creatorStart > 0 ? h.creatorStart : -1)],
      ["created", isoTime(h.createdMs)],
      ["holders", who],
    ];
    if (h.byteLength > seg.size) {
      out.push(["error", `the header claims ${h.byteLength} bytes, the segment has ${seg.size}`]);
      return out;
    }
    if (h.state !== 1) return out;
    switch (h.kind) {
      case "mutex":
        describeMutex(seg, 0, out);
        break;
      case "semaphore":
        describeSemaphore(seg, 0, out);
        break;
      case "mempool":
        describeMempool(seg, 0, h, out);
        break;
      case "channel":
        describeChannel(seg, 0, h, out);
        break;
      case "ring":
        describeRing(seg, 0, out);
        break;
      case "array":
        describeArray(seg, 0, h, out);
        break;
      case "heap":
        out.push(...describeHeap(seg, 0));
        describeMutex(seg, HEAP.mutex, out);
        break;
      case "log":
        describeLog(seg, 0, out);
        break;
      default:
        out.push(["details", `this build does not read ${h.kind} state yet (common header only)`]);
    }
    return out;
  } finally {
    seg.close();
  }
}
