/**
 * The common header every structured shmkit object (Ring, Mempool, Channel, Mutex, Semaphore,
 * Condition, SharedArray) starts with, so any process, in any language, can tell what an object
 * is, whether it is ready and how big it is. docs/LAYOUT.md documents the same table.
 *
 * Common header (64 bytes, little-endian, at the object's byteOffset, which is 64-byte aligned):
 *
 * | off | size | field          | writer  | reader | note                                          |
 * |-----|------|----------------|---------|--------|-----------------------------------------------|
 * | 0   | 4    | magic          | init    | open   | 0x4B4D4853, the bytes "SHMK"                  |
 * | 4   | 2    | layoutVersion  | init    | open   | 1; a different major version is EBADHDR       |
 * | 6   | 2    | kind           | init    | open   | KIND.* below                                  |
 * | 8   | 4    | state          | init    | open   | 0 initializing, 1 ready (stored last, release)|
 * | 12  | 4    | headerSize     | init    | open   | bytes from byteOffset to the kind's payload   |
 * | 16  | 8    | byteLength     | init    | open   | total bytes of the object (u64)               |
 * | 24  | 4    | creatorPid     | init    | cli    |                                               |
 * | 28  | 4    | flags          | init    | kind   | kind-specific                                 |
 * | 32  | 8    | creatorStart   | init    | cli    | creator start time, clock ticks since boot    |
 * | 40  | 8    | createdMs      | init    | cli    | f64, ms since the Unix epoch                  |
 * | 48  | 16   | reserved       | -       | -      | zero                                          |
 *
 * Invariants checked by {@linkcode readHeader}: H1 magic and version match; H2 kind matches;
 * H3 state is ready; H4 64 <= headerSize <= byteLength; H5 byteOffset + byteLength <= segment size.
 *
 * @module
 */
import { ShmError } from "./errors.ts";
import { PID, START_TIME } from "./sys.ts";

/** "SHMK" read as a little-endian u32. */
export const MAGIC = 0x4b4d4853;
/** Layout version written by this build. */
export const LAYOUT_VERSION = 1;
/** Size of the common header. */
export const COMMON_HEADER_SIZE = 64;
/** Every object starts on a 64-byte (cache line) boundary. */
export const OBJECT_ALIGN = 64;

/** Kind numbers in the header. */
export const KIND = {
  ring: 1,
  mempool: 2,
  channel: 3,
  mutex: 4,
  semaphore: 5,
  condition: 6,
  array: 7,
  log: 8,
  heap: 9,
} as const;

/** A kind name. */
export type KindName = keyof typeof KIND;

/** Byte offsets of the common header fields. */
export const HDR = {
  magic: 0,
  layoutVersion: 4,
  kind: 6,
  state: 8,
  headerSize: 12,
  byteLength: 16,
  creatorPid: 24,
  flags: 28,
  creatorStart: 32,
  createdMs: 40,
} as const;

/** `state` values. */
export const STATE_INIT = 0;
/** The object is fully initialized. */
export const STATE_READY = 1;

/** The name of a kind number, or undefined. */
export function kindName(kind: number): KindName | undefined {
  for (const [k, v] of Object.entries(KIND)) if (v === kind) return k as KindName;
  return undefined;
}

/** What {@linkcode readHeader} returns. */
export interface CommonHeader {
  kind: KindName;
  layoutVersion: number;
  state: number;
  headerSize: number;
  byteLength: number;
  creatorPid: number;
  flags: number;
  creatorStart: number;
  createdMs: number;
}

/** Rounds `n` up to a multiple of `a` (a power of two). */
export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * Writes the common header at `off` of `buf` with state INIT. The caller writes its own header
 * and payload, then calls {@linkcode publishReady}.
 */
export function writeHeader(
  buf: ArrayBuffer,
  off: number,
  kind: KindName,
  headerSize: number,
  byteLength: number,
  flags = 0,
): void {
  const dv = new DataView(buf, off, COMMON_HEADER_SIZE);
  const i32 = new Int32Array(buf, off, COMMON_HEADER_SIZE / 4);
  Atomics.store(i32, HDR.state / 4, STATE_INIT);
  dv.setUint32(HDR.magic, MAGIC, true);
  dv.setUint16(HDR.layoutVersion, LAYOUT_VERSION, true);
  dv.setUint16(HDR.kind, KIND[kind], true);
  dv.setUint32(HDR.headerSize, headerSize, true);
  dv.setBigUint64(HDR.byteLength, BigInt(byteLength), true);
  dv.setUint32(HDR.creatorPid, PID, true);
  dv.setUint32(HDR.flags, flags >>> 0, true);
  dv.setBigUint64(HDR.creatorStart, BigInt(Math.max(0, START_TIME)), true);
  dv.setFloat64(HDR.createdMs, Date.now(), true);
  for (let i = 48; i < 64; i++) dv.setUint8(i, 0);
}

/** Marks the object ready (a release store: everything written before is visible to openers). */
export function publishReady(buf: ArrayBuffer, off: number): void {
  Atomics.store(new Int32Array(buf, off, COMMON_HEADER_SIZE / 4), HDR.state / 4, STATE_READY);
}

/**
 * Reads the `state` word. A plain load, not `Atomics.load`: openers may map the segment read-only
 * as a private copy-on-write mapping, and JavaScriptCore (Bun) implements `Atomics.load` outside
 * its optimizing tiers as a read-modify-write, which would copy the page and cut this mapping off
 * from the segment. On x86-64 and arm64 a 4-byte aligned load is single-copy atomic; the fields
 * read after it were written before `state` was stored with release semantics (publishReady).
 */
function readState(dv: DataView): number {
  return dv.getInt32(HDR.state, true);
}

/** Reads the header without validating kind or state (for the CLI). Undefined if not shmkit. */
export function peekHeader(buf: ArrayBuffer, off: number): CommonHeader | undefined {
  if (off < 0 || off + COMMON_HEADER_SIZE > buf.byteLength) return undefined;
  const dv = new DataView(buf, off, COMMON_HEADER_SIZE);
  if (dv.getUint32(HDR.magic, true) !== MAGIC) return undefined;
  const kind = kindName(dv.getUint16(HDR.kind, true));
  if (!kind) return undefined;
  return {
    kind,
    layoutVersion: dv.getUint16(HDR.layoutVersion, true),
    state: readState(dv),
    headerSize: dv.getUint32(HDR.headerSize, true),
    byteLength: Number(dv.getBigUint64(HDR.byteLength, true)),
    creatorPid: dv.getUint32(HDR.creatorPid, true),
    flags: dv.getUint32(HDR.flags, true),
    creatorStart: Number(dv.getBigUint64(HDR.creatorStart, true)),
    createdMs: dv.getFloat64(HDR.createdMs, true),
  };
}

/** A word nobody else touches: `Atomics.wait` on it is a synchronous sleep (allowed on the main thread of Deno, Bun and Node). */
const SLEEP_WORD = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits for a header that is still being initialized (its creator is between reserving the
 * segment and storing state 1), up to `timeoutMs`: polls for the first 200 µs (creators finish in
 * microseconds), then sleeps 1, 2, 4 … 16 ms between looks, so a header that never becomes ready
 * (a creator killed mid-create, or a hostile state word) costs a few dozen wake-ups, not a core
 * spinning for the whole timeout.
 */
function awaitReady(dv: DataView, timeoutMs: number, bad: (why: string) => ShmError): void {
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let sleep = 1;
  for (;;) {
    const st = readState(dv);
    if (st === STATE_READY) return;
    if (st !== STATE_INIT) throw bad(`impossible state ${st} (0 initializing and 1 ready are the only states)`);
    const now = performance.now();
    if (now > deadline) throw bad("it was never initialized (its creator may have died while creating it)");
    if (now - t0 >= 0.2) {
      Atomics.wait(SLEEP_WORD, 0, 0, Math.min(sleep, deadline - now + 0.1));
      sleep = Math.min(sleep * 2, 16);
    }
  }
}

/**
 * Validates the common header of a `kind` object at `off` in a `segmentSize`-byte segment whose
 * bytes are `buf`. Waits up to `readyTimeoutMs` for a creator still initializing.
 *
 * `available` (default `buf.byteLength`) is how many bytes the segment has from the start of
 * `buf`, for a `buf` that is only a window over a larger segment (so H5 checks the whole segment).
 *
 * `minBytes` is the kind's fixed header size (its headerSize with the smallest payload): a header
 * that claims fewer bytes, or a segment with fewer bytes at `off`, is EBADHDR here, before the
 * caller lays any view or DataView over its fields (which would throw a raw RangeError).
 *
 * @throws {ShmError} EBADHDR for a wrong magic, version, kind, an impossible size, a segment too
 * small for the kind's fixed header, or an object that never became ready.
 */
export function readHeader(
  buf: ArrayBuffer,
  off: number,
  kind: KindName,
  what: string,
  readyTimeoutMs = 1000,
  available: number = buf.byteLength,
  minBytes: number = COMMON_HEADER_SIZE,
): CommonHeader {
  const bad = (why: string): ShmError => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
  if (!Number.isSafeInteger(off) || off < 0 || off % OBJECT_ALIGN !== 0) {
    throw new ShmError(
      "EINVAL",
      `${what}: byteOffset ${off} must be a non-negative multiple of ${OBJECT_ALIGN} (EINVAL)`,
    );
  }
  if (off + COMMON_HEADER_SIZE > buf.byteLength) throw bad(`the segment is too small for a header at ${off}`);
  const dv = new DataView(buf, off, COMMON_HEADER_SIZE);
  if (dv.getUint32(HDR.magic, true) !== MAGIC) throw bad("no shmkit header here (bad magic)");
  const version = dv.getUint16(HDR.layoutVersion, true);
  if (version !== LAYOUT_VERSION) throw bad(`layout version ${version}, this build reads ${LAYOUT_VERSION}`);
  const k = dv.getUint16(HDR.kind, true);
  if (k !== KIND[kind]) throw bad(`it is a ${kindName(k) ?? `kind ${k}`}, not a ${kind}`);
  if (readState(dv) !== STATE_READY) awaitReady(dv, readyTimeoutMs, bad);
  const h = peekHeader(buf, off)!;
  if (h.headerSize < COMMON_HEADER_SIZE || h.headerSize > h.byteLength) {
    throw bad(`impossible header size ${h.headerSize}`);
  }
  if (!Number.isSafeInteger(h.byteLength) || off + h.byteLength > available) {
    throw bad(`it claims ${h.byteLength} bytes but only ${available - off} are mapped`);
  }
  if (h.byteLength < minBytes || off + minBytes > buf.byteLength) {
    throw bad(
      `a ${kind} needs at least ${minBytes} bytes, it claims ${h.byteLength} and ${buf.byteLength - off} are mapped`,
    );
  }
  return h;
}
