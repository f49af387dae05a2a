/**
 * MessageLog: a packed byte-stream log of variable-size records shared by processes (Aeron log
 * buffer / agrona ring buffer style). docs/layout/log.md holds the same layout and protocol.
 *
 * Log layout (little-endian, at the object's byteOffset, 64-byte aligned; C = capacity in bytes,
 * P = participant slots, 0 for spsc and 32 for mpsc):
 *
 * | off | size | field          | writer                 | reader           | note                                    |
 * |-----|------|----------------|------------------------|------------------|-----------------------------------------|
 * | 0   | 64   | common header  | init                   | open             | src/layout.ts; kind 8 (log), flags = mode |
 * | 64  | 4    | capacity       | init                   | all              | C: bytes of the data area, power of two, 256..2^30 |
 * | 68  | 4    | mode           | init                   | all              | 0 spsc, 1 mpsc                          |
 * | 72  | 4    | maxRecord      | init                   | all              | largest payload, 0 <= maxRecord, alignUp(8 + maxRecord, 8) <= C / 2 |
 * | 76  | 4    | dataOffset     | init                   | all              | 384 + 32 * P: bytes from byteOffset to the data area |
 * | 80  | 4    | slotCount      | init                   | all              | P                                       |
 * | 84  | 44   | reserved       | -                      | -                | zero                                    |
 * | 128 | 4    | tail           | writers                | all              | u32 free-running byte position; spsc: published end; mpsc: claim counter (CAS) |
 * | 192 | 4    | head           | reader                 | all              | u32 position the reader resumes at (everything before it is consumed) |
 * | 196 | 4    | clean          | reader                 | mpsc writers     | u32: bytes before it are zeroed and free (mpsc); unused (= head) in spsc |
 * | 256 | 4    | readWaiters    | parked reader          | writers          | readers park on dataSeq                 |
 * | 260 | 4    | writeWaiters   | parked writers         | reader           | writers park on head (spsc) / clean (mpsc) |
 * | 264 | 4    | readSleep      | parking reader: 1; waker: 0 (xchg) | writers | 1 = a reader asked for a wake     |
 * | 268 | 4    | writeSleep     | parking writers: 1; waker: 0 (xchg) | reader | 1 = a writer asked for a wake      |
 * | 272 | 4    | dataSeq        | writers (waking)       | parked reader    | bumped before a wake: the reader's futex word |
 * | 320 | 8    | writerRole     | spsc writer (CAS)      | role claimants   | u64: lo = pid, hi = start time (low 32 bits); 0 free |
 * | 328 | 4    | writerToken    | role holder            | role claimants   | per-object token (same-process check)  |
 * | 336 | 8    | readerRole     | reader (CAS)           | role claimants   | as writerRole                           |
 * | 344 | 4    | readerToken    | role holder            | role claimants   |                                         |
 * | 384 | 32*P | participants   | mpsc writers           | reader           | see below                               |
 * | dataOffset | C | data       | writers                | reader           | records                                 |
 *
 * Participant slot (32 bytes, mpsc only): 0 pid u32, 4 startLo u32 (owner, 64-bit CAS together),
 * 8 token u32, 12 claimPos u32, 16 claimLen u32 (0 = no claim), 20..32 reserved.
 *
 * Record at position p (data offset p & (C - 1), 8-byte aligned, never crossing the end of the
 * data area): `[length u32 | type u32 | payload]`, occupying alignUp(length, 8) bytes.
 * - length: 8 + payload bytes (8 .. 8 + maxRecord) for a record; mpsc only: 0 = nothing written
 *   yet, IN_PROGRESS (bit 31) | n = a writer is writing the n bytes from here (n covers its whole
 *   claim up to the end of the data area).
 * - type: 0..65535 for a user record, PAD (0x80000000) for padding (skipped by readers; its
 *   length is any multiple of 8 up to the end of the data area). Other values are EBADHDR.
 * A record that does not fit before the end of the data area is preceded by a padding record
 * that fills it.
 *
 * Protocol.
 * spsc: the writer writes records at its tail, then publishes `tail` once per batch (release,
 * W-R1); the reader loads `tail` (acquire, A1), reads records up to it, then publishes `head`
 * once per batch (R2); the writer loads `head` (A2) before reusing space. No zeroing.
 * mpsc: a writer (1) writes its participant slot {claimPos = t, claimLen = n} for the tail t it
 * read, (2) claims [t, t + n) with one CAS of `tail` (C1) after checking t + n - clean <= C,
 * (3) stores IN_PROGRESS | n at the claim's first record header (seq_cst: before any payload),
 * (4) writes types and payloads, the other records of the batch complete with their lengths,
 * (5) commits by storing the first header's length (release, C2; pairs with the reader's load A3),
 * (6) clears claimLen. The reader consumes committed records, publishes `head` once per batch
 * (R2), then zeroes the consumed bytes and publishes `clean` (R3). Writers only use bytes behind
 * `clean` + C, so every header they have not written reads 0.
 *
 * Invariants (validate(), and on every value read from shared memory):
 * - L1: 0 <= (tail - head) >>> 0 <= C; mpsc: 0 <= (head - clean) >>> 0 <= C and (tail - clean) >>> 0 <= C.
 * - L2: head, tail and clean are multiples of 8; C is a power of two in 256..2^30; maxRecord fits.
 * - L3: every record from head to tail has a header as above and ends at or before tail and the
 *   end of the data area (a committed length that breaks this is EBADHDR).
 * - L4 (mpsc): a position from head to tail whose header is 0 or IN_PROGRESS is covered by the
 *   claim of a participant slot (claimPos <= p < claimPos + claimLen, unsigned): the claimer wrote
 *   its slot before its CAS and clears it only after its commit.
 * - L5 (mpsc): bytes from clean to clean + C that no writer has written read 0.
 *
 * Crash semantics.
 * - A writer killed before its commit (C2 in mpsc, the tail store in spsc) never makes its
 *   record (or batch) visible. spsc: the next writer starts at the published tail. mpsc: the
 *   reader, stuck at a header that stays 0 or IN_PROGRESS, looks for the participant slots that
 *   cover that position; when every one of them names a dead process (pid, start time) it writes
 *   a padding record over the dead claim and goes on. The claim's length comes from the
 *   IN_PROGRESS marker, or from the one covering slot; when several dead slots cover it (a dead
 *   writer whose CAS lost, left with a stale claim, plus the dead winner) the reader takes the
 *   first position after p that is the tail, a non-zero header or the claimPos of a slot: the
 *   dead winner wrote nothing (its marker is its first store, and stores become visible in
 *   order on x86-64 and, with the seq_cst marker store, on arm64), so its claim reads 0 (L5)
 *   up to the next claim, which starts at one of those.
 *   A slot whose claim is covered by a live (or stopped) process is waited for: a stopped writer
 *   stops the reader at its record until it continues.
 *   A dead writer's slot is reused by a new writer only once its claim is behind `head`.
 * - A reader killed mid-batch has published `head` only for batches it finished: the records of
 *   the batch in progress are delivered again to the next reader (at-least-once for that
 *   batch). Killed after `head` but before `clean` (mpsc), the next reader zeroes [clean, head)
 *   again (writers never write there before `clean` moves) and publishes `clean`.
 * - A handler that throws inside a batch read: the records up to and including that one are
 *   consumed (agrona semantics), the error goes on.
 *
 * Memory orders (JS Atomics are seq_cst; the pairs are what the protocol needs): W-R1/A1 and
 * R2/A2 above; C1 the claim CAS (seq_cst) after the slot writes (ordered by the CAS); C2/A3 the
 * commit store / header load; R3/A4 the `clean` store / the writers' load.
 * Waiting: a waiting reader reads dataSeq, increments readWaiters, stores readSleep = 1, re-checks,
 * then futex-waits on dataSeq with the value read; a writer, after publishing, loads readWaiters
 * and only if non-zero exchanges readSleep with 0 and, if it was 1, bumps dataSeq and wakes
 * (no syscall on the fast path). Writers wait on head (spsc) / clean (mpsc) the same way. On
 * x86-64 the spsc writer publishes its tail with a plain store (a release store there), after
 * which its readWaiters load may be satisfied before the tail store is visible: a reader
 * registering in that window can miss its wake. spsc readers therefore wait at most
 * FIRST_WAIT_MS (0.2 ms) first in every park, re-check, then wait the rest of the slice
 * (src/wait.ts futexWaitShortFirst, as the spsc-ordered Channel's receivers).
 *
 * @module
 */
import { faultHook } from "./fault.ts";
import { checkKeys, ShmError } from "./errors.ts";
import { checkHandle, registerKind } from "./handle.ts";
import { COMMON_HEADER_SIZE, OBJECT_ALIGN, publishReady, readHeader, writeHeader } from "./layout.ts";
import type { Mapping } from "./mapping.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { createWhat, placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { ERRNO, native, PID, plainPublish, processAlive, START_TIME, sys } from "./sys.ts";
import { decodeText } from "./text.ts";
import { copyIn } from "./copy.ts";
import {
  futexWait,
  futexWaitShortFirst,
  futexWake,
  readFlag,
  timeoutError,
  timeoutOf,
  waitAsync,
  waitAsyncShortFirst,
  type WaitOptions,
} from "./wait.ts";
import { Pacer } from "./pace.ts";

/** Who may write: one process (`spsc`) or any number (`mpsc`). There is always one reader. */
export type LogMode = "spsc" | "mpsc";

const MODES: readonly LogMode[] = ["spsc", "mpsc"];

/** Byte offsets of the log's own fields (from the object's byteOffset). */
export const LOG = {
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
  readSleep: 264,
  writeSleep: 268,
  dataSeq: 272,
  writerRole: 320,
  writerToken: 328,
  readerRole: 336,
  readerToken: 344,
  participants: 384,
} as const;

/** Byte offsets inside one participant slot (mpsc). */
export const LOG_SLOT_LAYOUT = {
  pid: 0,
  startLo: 4,
  token: 8,
  claimPos: 12,
  claimLen: 16,
} as const;

/** Byte offsets inside a record header. */
export const LOG_RECORD_LAYOUT = {
  length: 0,
  type: 4,
  payload: 8,
} as const;

/** The fixed part of the log header; participant slots follow. */
export const LOG_HEADER_SIZE = 384;
/** The keys of MessageLogCreateOptions (create, init, byteLength; `initialPosition`, a test hook, is accepted too). */
const LOG_KEYS = ["capacity", "mode", "maxRecord", "fileMode"] as const;
/** Bytes of one participant slot. */
export const LOG_SLOT_SIZE = 32;
/** Participant slots of an mpsc log (at most this many writer objects at once). */
export const LOG_MPSC_SLOTS = 32;
/** Bytes of a record header. */
export const RECORD_HEADER_SIZE = 8;
/** The type of a padding record. */
export const TYPE_PAD = 0x80000000;
/** The largest user record type. */
export const MAX_TYPE = 0xffff;
/** Set in a header's length while its writer is writing (mpsc). */
export const IN_PROGRESS = 0x80000000;
/** Smallest capacity in bytes. */
export const MIN_CAPACITY = 256;
/** Largest capacity in bytes (positions are u32; 2^30 keeps every difference unambiguous). */
export const MAX_CAPACITY = 2 ** 30;

const W_TAIL = LOG.tail >> 2;
const W_HEAD = LOG.head >> 2;
const W_CLEAN = LOG.clean >> 2;
const W_RW = LOG.readWaiters >> 2;
const W_WW = LOG.writeWaiters >> 2;
const W_RS = LOG.readSleep >> 2;
const W_WS = LOG.writeSleep >> 2;
const W_SEQ = LOG.dataSeq >> 2;
const W_WROLE = LOG.writerRole >> 2;
const W_RROLE = LOG.readerRole >> 2;

/** Spin budget before parking (ms); see src/ring.ts. */
const SPIN_MS = 0.05;
const SPIN_BATCH = 64;
/** Longest single park: a parked reader re-checks (and recovers dead claims) this often. */
const PARK_SLICE_MS = 100;
/** How long the reader waits at an unwritten header before asking whether its claimer lives. */
const STUCK_MS = 2;
/** Claim CAS attempts of one tryWrite before it reports "no room now" (contention bound). */
const CAS_TRIES = 4096;

const START_LO = Math.max(0, START_TIME) >>> 0;

// ---------------------------------------------------------------------------------------------
// Fault points for crash tests (src/fault.ts).

/** The named fault points of the log (docs/layout/log.md, crash semantics). */
export const LOG_FAULT_POINTS = [
  "log.write.after_claim",
  "log.write.after_marker",
  "log.write.mid_payload",
  "log.write.before_commit",
  "log.write.after_commit",
  "log.read.mid_batch",
  "log.read.after_head",
  "log.read.after_zero",
  "log.wait.parked",
] as const;

const faultHit = faultHook("log.");
const FAULT_ON = faultHit !== undefined;
const fault = (point: string): void => faultHit!(point);

const ioBuf = new ArrayBuffer(16);
const io8 = new Uint8Array(ioBuf);
const io32 = new Uint32Array(ioBuf);
const encoder = new TextEncoder();

/** Options of {@linkcode MessageLog.create}, {@linkcode MessageLog.init}, {@linkcode MessageLog.byteLength}. */
export interface MessageLogOptions {
  /** Bytes of the data area: a power of two in 256..2^30. */
  capacity: number;
  /** Default "spsc". */
  mode?: LogMode;
  /** Largest payload in bytes (default and maximum: capacity / 2 - 8). */
  maxRecord?: number;
}

/** Options of {@linkcode MessageLog.create}. */
export interface MessageLogCreateOptions extends MessageLogOptions {
  /** File mode of the new segment (default 0o600). */
  fileMode?: number;
}

/** Options of {@linkcode MessageLog.init}. */
export type MessageLogInitOptions = MessageLogOptions;

/** What tests may pass beside the public options (not exported, so not in the public docs):
 * `initialPosition` starts every counter at this u32 position (a multiple of 8, e.g. near 2**32). */
type MessageLogTestOptions = MessageLogOptions & { initialPosition?: number };

/** Options of the blocking and asynchronous writes. */
export interface LogWriteOptions extends WaitOptions {
  /** Record type 0..65535 (default 0). */
  type?: number;
}

/** Options of the blocking and asynchronous batch reads. */
export interface LogReadBatchOptions extends WaitOptions {
  /** The most records to deliver (default: all that are there). */
  max?: number;
}

/** The handle of a log: JSON-safe, reopened by {@linkcode MessageLog.attach} in any process. */
export interface MessageLogHandle {
  /** Always `"shmkit.log"`. */
  readonly kind: "shmkit.log";
  /** Handle format version. */
  readonly version: number;
  /** The segment name, or null for an anonymous segment. */
  readonly name: string | null;
  /** Where the log starts in its segment. */
  readonly byteOffset: number;
  /** The segment's own handle. */
  readonly segment: SharedMemoryHandle;
}

/**
 * One record as the reader sees it: a reusable view (the same object for every record a log
 * delivers, so reading allocates nothing). Valid until the next read call on the log (inside a
 * batch handler: until the handler returns); the bytes live in shared memory.
 */
export class LogRecord {
  /** The whole data area of the log (one view per mapping); the payload is at `offset`. */
  data: Uint8Array = new Uint8Array(0);
  /** Where the payload starts in `data`. */
  offset = 0;
  /** Payload bytes. */
  length = 0;
  /** Record type (0..65535). */
  type = 0;

  /** The payload as a Uint8Array (a new view object over shared memory, no copy). */
  get bytes(): Uint8Array {
    return this.data.subarray(this.offset, this.offset + this.length);
  }

  /** The payload decoded as UTF-8. */
  text(): string {
    const d = this.data; // detached by close(): length 0, so the range clamps to empty, as subarray would
    return decodeText(d, Math.min(this.offset, d.length), Math.min(this.offset + this.length, d.length));
  }

  /** The payload parsed as JSON. */
  json(): unknown {
    return JSON.parse(this.text());
  }

  /** A copy of the payload that outlives the record. */
  copy(): Uint8Array {
    return this.data.slice(this.offset, this.offset + this.length);
  }

  /**
   * Consumes this record now (publishes the reader's head, so writers may reuse its bytes)
   * instead of at the next read call. The view must not be used afterwards. Idempotent.
   */
  release(): void {
    if (this.log) releaseRecord(this.log);
  }

  /** @internal */
  log: MessageLog | undefined;
}

let releaseRecord: (log: MessageLog) => void;

/**
 * A write in place: `data.set(..., offset)` (at most `length` bytes), then `commit()`.
 * Reused by its log: one claim at a time per MessageLog object.
 */
export class LogClaim {
  /** The whole data area of the log; write the payload at `offset`. */
  data: Uint8Array = new Uint8Array(0);
  /** Where the payload goes in `data`. */
  offset = 0;
  /** Bytes claimed for the payload. */
  length = 0;
  /** @internal */
  log: MessageLog | undefined;

  /** Publishes the record with `length` payload bytes (default: all claimed). */
  commit(length: number = this.length): void {
    const log = this.log;
    if (!log) throw new ShmError("EINVAL", "Cannot commit a log claim: it was already committed or aborted (EINVAL)");
    this.log = undefined;
    commitClaim(log, length, false);
  }

  /** Gives the claimed space up: readers skip it. */
  abort(): void {
    const log = this.log;
    if (!log) return;
    this.log = undefined;
    commitClaim(log, 0, true);
  }
}

let commitClaim: (log: MessageLog, length: number, abort: boolean) => void;

function bad(what: string, why: string): ShmError {
  return new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
}

function einval(what: string, why: string): ShmError {
  return new ShmError("EINVAL", `${what}: ${why} (EINVAL)`, { errno: ERRNO.EINVAL });
}

function checkOptions(o: unknown, what: string): { capacity: number; mode: number; maxRecord: number } {
  if (typeof o !== "object" || o === null) throw new TypeError(`${what}: options must be an object with a capacity`);
  checkKeys(o, LOG_KEYS, what, "initialPosition");
  const { capacity, mode, maxRecord } = o as MessageLogOptions;
  if (typeof capacity !== "number") throw new TypeError(`${what}: capacity must be a number, got ${typeof capacity}`);
  if (
    !Number.isInteger(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1))
  ) {
    throw einval(what, `capacity must be a power of two in ${MIN_CAPACITY}..${MAX_CAPACITY} bytes, got ${capacity}`);
  }
  const m = MODES.indexOf(mode ?? "spsc");
  if (m < 0) throw einval(what, `mode must be "spsc" or "mpsc", got ${JSON.stringify(mode)}`);
  const most = capacity / 2 - RECORD_HEADER_SIZE;
  const mr = maxRecord ?? most;
  if (!Number.isInteger(mr) || mr < 0 || mr > most) {
    throw einval(what, `maxRecord must be an integer in 0..${most} (capacity / 2 - 8), got ${mr}`);
  }
  return { capacity, mode: m, maxRecord: mr };
}

function dataOffsetOf(mode: number): number {
  return LOG_HEADER_SIZE + (mode === 1 ? LOG_MPSC_SLOTS * LOG_SLOT_SIZE : 0);
}

/** UTF-8 length of a string (exact, no allocation). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a pair: 4 bytes for 2 code units
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

function sizeOf(data: Uint8Array | string, what: string): number {
  if (typeof data === "string") return utf8Length(data);
  if (data instanceof Uint8Array) return data.length;
  throw new TypeError(`${what}: data must be a Uint8Array or a string`);
}

/** True if (pid, low 32 bits of its start time) names a live process. */
function holderAlive(pid: number, startLo: number): boolean {
  if (pid === PID && startLo === START_LO) return true;
  if (!processAlive(pid, -1)) return false;
  const st = sys.shmkit_proc_start_time(pid);
  if (st < 0) return false;
  return (st >>> 0) === startLo || (Math.max(0, st) % 4294967296) === startLo;
}

/**
 * A packed log of variable-size records (`[length | type | payload]`, 8-byte aligned) in shared
 * memory, usable at once by processes of Deno, Bun and Node (and any language following
 * docs/layout/log.md). Records of mixed sizes take only the bytes they need.
 *
 * Role contract: exactly one reader process at a time (the first process that reads takes the
 * reader role until that object is closed or the process dies; another gets `ShmError` EBUSY).
 * `spsc`: one writer process at a time, the same way. `mpsc`: any number of writer objects, up
 * to 32 at once (each takes a participant slot on its first write, until closed or dead); each
 * claims its space with one CAS. Records of one writer arrive in the order written; across
 * writers, in claim order.
 *
 * Batches: `tryWriteBatch` claims and publishes once for many records; `tryReadBatch` /
 * `readBatch` deliver many records through one reusable {@linkcode LogRecord} and publish the
 * head once. `tryRead()` returns the same reusable record, valid until the next read call.
 *
 * Crash guarantee: a writer killed while writing never makes that record (or batch) visible
 * and never wedges the log: the reader pads over a dead writer's claim once the writer's death
 * is confirmed (about 2 ms after it stops at it). A reader killed mid-batch loses nothing it had
 * not finished: the batch is delivered again to the next reader. Every length read from shared
 * memory is validated: a corrupt log gives `ShmError` EBADHDR, never an out-of-bounds read or an
 * endless loop.
 *
 * @example
 * ```ts
 * import { MessageLog } from "./mod.ts";
 * using log = MessageLog.create("shmkit-doc-log", { capacity: 4096, mode: "mpsc" });
 * log.tryWrite("hello");
 * log.tryWrite(new Uint8Array([1, 2, 3]), 7);
 * console.assert(log.tryRead()!.text() === "hello");
 * const rec = log.tryRead()!;
 * console.assert(rec.type === 7 && rec.length === 3);
 * log.unlink();
 * ```
 */
export class MessageLog implements Disposable {
  /** Bytes of the data area. */
  readonly capacity: number;
  /** Who may write, fixed at creation. */
  readonly mode: LogMode;
  /** The largest payload a record may have. */
  readonly maxRecord: number;
  #name: string;
  #wWhat: string;
  #rWhat: string;
  #seg: SharedMemory;
  #owns: boolean;
  #mapping: Mapping;
  #base: number;
  #ctl: Int32Array;
  #slotsView: Int32Array;
  #dataBuf: ArrayBuffer;
  #u8: Uint8Array;
  #i32: Int32Array;
  #mask: number;
  #mpsc: boolean;
  #nSlots: number;
  #token: number;
  #closed = false;
  // Writer state. spsc: the local tail (published once per batch, W-R1) and the cached head.
  #writerReady = false;
  #wTail = 0;
  #wLimit = 0;
  #slot = -1; // mpsc: participant slot index, word offset #slotW
  #slotW = 0;
  // The claim in progress (tryClaim): position of its record, claimed bytes, first-header pos.
  #claim = new LogClaim();
  #claimPos = 0;
  #claimEnd = 0;
  #claimMax = 0;
  #claimType = 0;
  #claimOpen = false;
  // Record sizes of the write in progress, and the prefix #reserve took.
  #sizes = new Int32Array(64);
  #lens = new Int32Array(64);
  #batchK = 0;
  #batchTotal = 0;
  // Reader state: the local read position, the published head, the cached tail (spsc).
  #readerReady = false;
  #rPos = 0;
  #pacer: Pacer; // the blocking reads' poll pacing (src/pace.ts), sized by the records of maxRecord that fit
  #rGot = 0; // records the blocking reads took since they last found the log dry
  #rHead = 0;
  #rTail = 0;
  #stuckAt = -1;
  #stuckSince = 0;
  #rec = new LogRecord();
  // Waits of this object registered in the shared waiter counts (given back by close()).
  #rWaits = 0;
  #wWaits = 0;

  private constructor(seg: SharedMemory, byteOffset: number, owns: boolean, what: string) {
    const buf = seg.buffer;
    if (byteOffset + LOG_HEADER_SIZE > buf.byteLength) throw bad(what, "the segment is too small for a log header");
    const dv = new DataView(buf, byteOffset, LOG_HEADER_SIZE);
    // Read each field once into a local, then validate before using any of them.
    const capacity = dv.getUint32(LOG.capacity, true);
    const mode = dv.getUint32(LOG.mode, true);
    const maxRecord = dv.getUint32(LOG.maxRecord, true);
    const dataOffset = dv.getUint32(LOG.dataOffset, true);
    const nSlots = dv.getUint32(LOG.slotCount, true);
    const byteLength = Number(dv.getBigUint64(16, true));
    const headerSize = dv.getUint32(12, true);
    if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
      throw bad(what, `capacity ${capacity} is not a power of two in ${MIN_CAPACITY}..${MAX_CAPACITY} (L2)`);
    }
    if (mode > 1) throw bad(what, `mode ${mode} is not a log mode`);
    if (maxRecord > capacity / 2 - RECORD_HEADER_SIZE) {
      throw bad(what, `maxRecord ${maxRecord} does not fit a ${capacity}-byte log (L2)`);
    }
    const wantSlots = mode === 1 ? LOG_MPSC_SLOTS : 0;
    if (nSlots !== wantSlots || dataOffset !== dataOffsetOf(mode) || headerSize !== dataOffset) {
      throw bad(
        what,
        `header size ${headerSize} / data offset ${dataOffset} / ${nSlots} slots do not match mode ${mode}`,
      );
    }
    if (byteLength !== dataOffset + capacity) throw bad(what, `byteLength ${byteLength} does not match ${capacity}`);
    if (byteOffset + byteLength > buf.byteLength) {
      throw bad(what, `it needs ${byteLength} bytes at ${byteOffset}, the segment is ${buf.byteLength}`);
    }
    this.capacity = capacity;
    this.mode = MODES[mode];
    this.maxRecord = maxRecord;
    this.#pacer = new Pacer(Math.floor(capacity / ((RECORD_HEADER_SIZE + maxRecord + 7) & ~7)));
    this.#name = seg.name ?? "anonymous";
    this.#wWhat = `Cannot write to log "${this.#name}"`;
    this.#rWhat = `Cannot read from log "${this.#name}"`;
    this.#seg = seg;
    this.#owns = owns;
    this.#mapping = seg.mapping;
    this.#base = byteOffset;
    this.#ctl = new Int32Array(buf, byteOffset, LOG_HEADER_SIZE / 4);
    this.#slotsView = new Int32Array(buf, byteOffset + LOG_HEADER_SIZE, (nSlots * LOG_SLOT_SIZE) / 4);
    // One view of the data area per object (its own ArrayBuffer, detached by close()).
    this.#dataBuf = seg.mapping.view(byteOffset + dataOffset, capacity, `Cannot view log "${this.#name}"`);
    this.#u8 = new Uint8Array(this.#dataBuf);
    this.#i32 = new Int32Array(this.#dataBuf);
    this.#mask = capacity - 1;
    this.#mpsc = mode === 1;
    this.#nSlots = nSlots;
    this.#token = ((Math.random() * 0xfffffffe) >>> 0) + 1;
    this.#rec.data = this.#u8;
    this.#rec.log = this;
    this.#claim.data = this.#u8;
    this.#checkCounters(what);
  }

  /** L1/L2 on the shared counters (open, validate, reader start). */
  #checkCounters(what: string): void {
    // On a live log the reader moves head and clean (and writers the tail) between the three loads:
    // a violation counts only if a second read sees the same three values (a bounded retry).
    const ctl = this.#ctl;
    let why = "";
    let pc = -1, ph = -1, pt = -1;
    for (let attempt = 0; attempt < 64; attempt++) {
      const c = Atomics.load(ctl, W_CLEAN) >>> 0;
      const h = Atomics.load(ctl, W_HEAD) >>> 0;
      const t = Atomics.load(ctl, W_TAIL) >>> 0;
      if ((t | h | c) & 7) why = `tail ${t}, head ${h} or clean ${c} is not a multiple of 8 (L2)`;
      else if (((t - h) >>> 0) > this.capacity) why = `tail ${t} is ${(t - h) >>> 0} bytes ahead of head ${h} (L1)`;
      else if (this.#mpsc && (((h - c) >>> 0) > this.capacity || ((t - c) >>> 0) > this.capacity)) {
        why = `clean ${c} is impossible for head ${h} and tail ${t} (L1)`;
      } else return;
      if (c === pc && h === ph && t === pt) break; // the same bad values twice: not a moving snapshot
      pc = c;
      ph = h;
      pt = t;
    }
    throw bad(what, why);
  }

  /**
   * Bytes a log occupies (for placing it inside a segment).
   *
   * @param options `{ capacity, mode? }`
   * @returns the byte length (a multiple of 64)
   * @throws {ShmError} EINVAL for a bad capacity, mode or maxRecord
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * console.assert(MessageLog.byteLength({ capacity: 1024 }) === 384 + 1024);
   * ```
   */
  static byteLength(options: MessageLogOptions): number {
    const { capacity, mode } = checkOptions(options, "Cannot size a log");
    return dataOffsetOf(mode) + capacity;
  }

  /**
   * Formats a log at `byteOffset` (a multiple of 64) of `segment`, overwriting what is there.
   * Nobody may use that range while it is being formatted.
   *
   * @param segment the segment to place the log in (it stays owned by the caller)
   * @param byteOffset a multiple of 64 with room for {@linkcode MessageLog.byteLength} bytes
   * @param options `{ capacity, mode?, maxRecord? }`
   * @returns the log
   * @throws {ShmError} EINVAL for bad options or offset; ENOSPC if it does not fit
   * @example
   * ```ts
   * import { MessageLog, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, 64 + MessageLog.byteLength({ capacity: 512 }));
   * const log = MessageLog.init(seg, 64, { capacity: 512 });
   * log.tryWrite("x");
   * console.assert(MessageLog.at(seg, 64).capacity === 512);
   * log.close();
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: MessageLogInitOptions): MessageLog {
    const what = `Cannot initialize a log in ${
      segment.name === null ? "anonymous shared memory" : `"${segment.name}"`
    }`;
    const { capacity, mode, maxRecord } = checkOptions(options, what);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % OBJECT_ALIGN !== 0) {
      throw einval(what, `byteOffset ${byteOffset} must be a non-negative multiple of ${OBJECT_ALIGN}`);
    }
    const dataOffset = dataOffsetOf(mode);
    const len = dataOffset + capacity;
    if (byteOffset + len > segment.size) {
      throw new ShmError(
        "ENOSPC",
        `${what}: it needs ${len} bytes at ${byteOffset}, the segment has ${segment.size} (ENOSPC)`,
      );
    }
    const pos = ((options as MessageLogTestOptions).initialPosition ?? 0) >>> 0;
    if (pos & 7) throw einval(what, `initialPosition ${pos} must be a multiple of 8`);
    const buf = segment.buffer;
    writeHeader(buf, byteOffset, "log", dataOffset, len, mode);
    new Uint8Array(buf, byteOffset + COMMON_HEADER_SIZE, len - COMMON_HEADER_SIZE).fill(0);
    const dv = new DataView(buf, byteOffset, dataOffset);
    dv.setUint32(LOG.capacity, capacity, true);
    dv.setUint32(LOG.mode, mode, true);
    dv.setUint32(LOG.maxRecord, maxRecord, true);
    dv.setUint32(LOG.dataOffset, dataOffset, true);
    dv.setUint32(LOG.slotCount, mode === 1 ? LOG_MPSC_SLOTS : 0, true);
    dv.setUint32(LOG.tail, pos, true);
    dv.setUint32(LOG.head, pos, true);
    dv.setUint32(LOG.clean, pos, true);
    publishReady(buf, byteOffset);
    return new MessageLog(segment, byteOffset, false, what);
  }

  /**
   * Attaches the log at `byteOffset` of `segment` and validates its header.
   *
   * @param segment the segment holding the log (it stays owned by the caller)
   * @param byteOffset where the log starts
   * @returns the log
   * @throws {ShmError} EBADHDR when there is no valid log there; EINVAL for a bad offset
   * @example
   * ```ts
   * import { MessageLog, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, MessageLog.byteLength({ capacity: 256 }));
   * MessageLog.init(seg, 0, { capacity: 256 }).close();
   * console.assert(MessageLog.at(seg, 0).mode === "spsc");
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number): MessageLog {
    const what = `Cannot open the log at ${byteOffset} of ${
      segment.name === null ? "anonymous shared memory" : `"${segment.name}"`
    }`;
    readHeader(segment.buffer, byteOffset, "log", what);
    return new MessageLog(segment, byteOffset, false, what);
  }

  /**
   * Creates a named log: a new segment (exclusive, mode 0o600 unless `fileMode`) holding it.
   *
   * @param name the segment name ("events" and "/events" are the same)
   * @param options `{ capacity, mode?, maxRecord?, fileMode? }`
   * @returns the log (owning its segment)
   * @throws {ShmError} EEXIST when the name is taken; EINVAL for a bad name or options
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-create", { capacity: 1 << 16, mode: "mpsc" });
   * console.assert(log.mode === "mpsc" && log.maxRecord === (1 << 15) - 8);
   * log.unlink();
   * ```
   */
  static create(name: string | null, options: MessageLogCreateOptions & MessageLogInitOptions): MessageLog {
    const what = createWhat("log", name);
    const { capacity, mode } = checkOptions(options, what);
    const seg = renamed(
      () => SharedMemory.create(name, dataOffsetOf(mode) + capacity, { mode: options.fileMode }),
      "Cannot create log",
      name,
    );
    return placeOrRelease(seg, true, () => {
      const r = MessageLog.init(seg, 0, options);
      r.#owns = true;
      return r;
    });
  }

  /**
   * Opens an existing named log and validates its header.
   *
   * @param name the segment name
   * @returns the log (owning its mapping)
   * @throws {ShmError} ENOENT when there is no such segment; EBADHDR when it is not a valid log
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using a = MessageLog.create("shmkit-doc-log-open", { capacity: 1024 });
   * using b = MessageLog.open("shmkit-doc-log-open");
   * a.tryWrite("hi");
   * console.assert(b.tryRead()!.text() === "hi");
   * a.unlink();
   * ```
   */
  static open(name: string): MessageLog {
    const seg = renamed(() => SharedMemory.open(name), "Cannot open log", name);
    return placeOrRelease(seg, false, () => {
      const what = `Cannot open log ${JSON.stringify(name)}`;
      readHeader(seg.buffer, 0, "log", what);
      return new MessageLog(seg, 0, true, what);
    });
  }

  /**
   * Reopens a log from its {@linkcode MessageLog.handle} (in any process).
   *
   * @param handle a handle from `log.handle()`, possibly through JSON
   * @returns the log (owning its mapping)
   * @throws {ShmError} EINVAL for a bad handle; ENOENT; EBADHDR
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using a = MessageLog.create("shmkit-doc-log-attach", { capacity: 1024 });
   * using b = MessageLog.attach(JSON.parse(JSON.stringify(a.handle())));
   * console.assert(b.capacity === 1024);
   * a.unlink();
   * ```
   */
  static attach(handle: MessageLogHandle): MessageLog {
    checkHandle(handle, "shmkit.log");
    const seg = SharedMemory.attach(handle.segment);
    return placeOrRelease(seg, false, () => {
      const what = `Cannot attach log ${JSON.stringify(handle.name)}`;
      readHeader(seg.buffer, handle.byteOffset, "log", what);
      return new MessageLog(seg, handle.byteOffset, true, what);
    });
  }

  /** Bytes claimed and not yet consumed (a snapshot: tail - head). */
  get size(): number {
    if (this.#closed) {
      throw new ShmError("ECLOSED", `Cannot read the size of log "${this.#name}": it is closed (ECLOSED)`);
    }
    const h = Atomics.load(this.#ctl, W_HEAD) >>> 0;
    const t = Atomics.load(this.#ctl, W_TAIL) >>> 0;
    const n = (t - h) >>> 0;
    return n > this.capacity ? 0 : n;
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------
  // Writing

  /**
   * Appends one record if there is room; never blocks.
   *
   * @param data the payload (a string is written as UTF-8 straight into the record)
   * @param type the record type, 0..65535 (default 0)
   * @returns true if written, false if the log has no room now
   * @throws {RangeError} for a payload longer than maxRecord or a bad type; {ShmError} EBUSY when
   * another process holds the writer role (spsc) or every participant slot (mpsc); EBADHDR
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-trywrite", { capacity: 256 });
   * let n = 0;
   * while (log.tryWrite(new Uint8Array(50))) n++;
   * console.assert(n === 4); // 4 x 64 bytes
   * log.unlink();
   * ```
   */
  tryWrite(data: Uint8Array | string, type = 0): boolean {
    const what = this.#writeWhat();
    const n = sizeOf(data, what);
    this.#checkRecord(n, type, what);
    if (!this.#writerReady) this.#startWriter();
    if (this.#claimOpen) throw this.#claimOpenError(what);
    const rec = (RECORD_HEADER_SIZE + n + 7) & ~7;
    this.#sizes[0] = rec;
    const p = this.#reserve(1);
    if (p < 0) return false;
    this.#fill(p, data, n, type);
    this.#commitRecord(p, RECORD_HEADER_SIZE + n, p + rec);
    return true;
  }

  /**
   * Appends one record as JSON (`JSON.stringify`, encoded straight into the record); never blocks.
   *
   * @param value any JSON-serializable value
   * @param type the record type (default 0)
   * @returns true if written, false if there is no room now
   * @throws {RangeError} if the JSON is longer than maxRecord
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-json", { capacity: 1024 });
   * log.tryWriteJson({ a: 1 });
   * console.assert((log.tryRead()!.json() as { a: number }).a === 1);
   * log.unlink();
   * ```
   */
  tryWriteJson(value: unknown, type = 0): boolean {
    return this.tryWrite(JSON.stringify(value), type);
  }

  /**
   * Appends as many of `items` (from the start) as fit, with one claim and one publish; never
   * blocks. A batch never wraps around the end of the data area: it stops there and the next
   * call goes on from the start. In mpsc the batch becomes visible at once (one commit).
   *
   * @param items payloads (Uint8Array or string)
   * @param type the type of every record (default 0)
   * @returns how many were written (0 when there is no room)
   * @throws {RangeError} for an item longer than maxRecord (nothing written)
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-wbatch", { capacity: 1024 });
   * console.assert(log.tryWriteBatch(["a", "b", "c"]) === 3);
   * let seen = "";
   * log.tryReadBatch((r) => seen += r.text());
   * console.assert(seen === "abc");
   * log.unlink();
   * ```
   */
  tryWriteBatch(items: ArrayLike<Uint8Array | string>, type = 0): number {
    const count = items.length;
    if (count === 0) return 0;
    if (!this.#writerReady) this.#startWriter();
    if (this.#claimOpen) throw this.#claimOpenError(this.#wWhat);
    if ((type & MAX_TYPE) !== type) this.#checkRecord(0, type, this.#wWhat);
    if (!this.#mpsc) return this.#writeBatchSpsc(items, count, type);
    if (this.#sizes.length < count) {
      this.#sizes = new Int32Array(Math.max(count, this.#sizes.length * 2));
      this.#lens = new Int32Array(this.#sizes.length);
    }
    const sizes = this.#sizes;
    const lens = this.#lens;
    const max = this.maxRecord;
    for (let i = 0; i < count; i++) {
      const it = items[i];
      const n = typeof it === "string" ? utf8Length(it) : it instanceof Uint8Array ? it.length : -1;
      if (n < 0 || n > max) {
        if (n < 0) sizeOf(it, this.#wWhat); // throws the TypeError
        this.#checkRecord(n, type, this.#wWhat);
      }
      lens[i] = n;
      sizes[i] = (RECORD_HEADER_SIZE + n + 7) & ~7;
    }
    const p = this.#reserve(count);
    if (p < 0) return 0;
    const k = this.#batchK;
    const i32 = this.#i32;
    const mask = this.#mask;
    let q = (p + sizes[0]) >>> 0;
    // Records after the first are complete now (their lengths written); the batch commits with
    // the first one's length (mpsc) or with the tail (spsc).
    for (let i = 1; i < k; i++) {
      const n = lens[i];
      this.#fill(q, items[i], n, type);
      i32[(q & mask) >> 2] = RECORD_HEADER_SIZE + n;
      q = (q + sizes[i]) >>> 0;
    }
    this.#fill(p, items[0], lens[0], type);
    this.#commitRecord(p, RECORD_HEADER_SIZE + lens[0], q);
    return k;
  }

  /**
   * spsc tryWriteBatch in one pass: sizes, room, padding, headers and payloads per item, with the
   * local tail in a local; the cached head is reloaded (A2) at most once, when it says full; one
   * tail store (W-R1) publishes the batch. Records written past the published tail are invisible
   * until then, so an invalid item anywhere in `items` throws with nothing published (as mpsc).
   */
  #writeBatchSpsc(items: ArrayLike<Uint8Array | string>, count: number, type: number): number {
    const cap = this.capacity;
    const mask = this.#mask;
    const max = this.maxRecord;
    const i32 = this.#i32;
    const u8 = this.#u8;
    const t0 = this.#wTail;
    let t = t0;
    let free = cap - ((t0 - this.#wLimit) >>> 0);
    let reloaded = false;
    let k = 0;
    for (; k < count; k++) {
      const it = items[k];
      const n = typeof it === "string" ? utf8Length(it) : it instanceof Uint8Array ? it.length : -1;
      if (n < 0 || n > max) break;
      const size = (RECORD_HEADER_SIZE + n + 7) & ~7;
      let off = t & mask;
      let pad = 0;
      if (off + size > cap) {
        if (k > 0) break; // a batch never wraps: the next call starts with the padding
        pad = cap - off;
      }
      if (pad + size > free) {
        if (reloaded) break;
        reloaded = true;
        const h = Atomics.load(this.#ctl, W_HEAD) >>> 0; // A2: acquire head; pairs with R2
        const used = (t0 - h) >>> 0;
        if (used > cap) throw this.#corrupt(`head ${h} is ${used} bytes behind tail ${t0} (L1)`);
        this.#wLimit = h;
        free = cap - used - ((t - t0) >>> 0);
        if (pad + size > free) break;
      }
      if (FAULT_ON && k === 0) fault("log.write.after_claim");
      if (pad) {
        i32[off >> 2] = pad;
        i32[(off >> 2) + 1] = TYPE_PAD;
        t = (t + pad) >>> 0;
        free -= pad;
        off = 0;
      }
      const w = off >> 2;
      i32[w + 1] = type;
      if (n !== 0) {
        const at = off + RECORD_HEADER_SIZE;
        if (typeof it === "string") encoder.encodeInto(it, u8.subarray(at, at + n));
        else copyIn(u8, i32, at, it as Uint8Array, n);
        if (FAULT_ON) fault("log.write.mid_payload");
      }
      i32[w] = RECORD_HEADER_SIZE + n;
      t = (t + size) >>> 0;
      free -= size;
    }
    // Items not written (no room) are still checked: a bad one anywhere throws, nothing published.
    for (let i = k; i < count; i++) {
      const it = items[i];
      const n = typeof it === "string" ? utf8Length(it) : it instanceof Uint8Array ? it.length : -1;
      if (n < 0) sizeOf(it, this.#wWhat); // throws the TypeError
      if (n > max) this.#checkRecord(n, type, this.#wWhat);
    }
    if (k === 0) return 0;
    if (FAULT_ON) fault("log.write.before_commit");
    const ctl = this.#ctl;
    // W-R1: publish tail once per batch (release); pairs with A1. On x86-64 a plain store is one
    // (src/sys.ts plainPublish); its W2 read may then pass it, which spsc readers cover with a short
    // first wait ("Waiting" above).
    if (plainPublish) ctl[W_TAIL] = t | 0;
    else Atomics.store(ctl, W_TAIL, t | 0);
    this.#wTail = t;
    if (FAULT_ON) fault("log.write.after_commit");
    // W2: after a plain publish the check is unordered against it anyway: a plain read too.
    if ((plainPublish ? ctl[W_RW] : readFlag(ctl, W_RW)) !== 0) this.#wakeReader();
    return k;
  }

  /**
   * Claims room for one record of up to `length` payload bytes to write in place; never blocks.
   * Write into `claim.data` at `claim.offset`, then `claim.commit(actualLength?)` (or `abort()`).
   * One claim at a time per object; the claim object is reused.
   *
   * @param length payload bytes to reserve (0..maxRecord)
   * @param type the record type (default 0)
   * @returns the claim, or undefined when there is no room now
   * @throws {RangeError} for a bad length or type; {ShmError} EINVAL if a claim is already open
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-claim", { capacity: 1024, mode: "mpsc" });
   * const c = log.tryClaim(100)!;
   * const { written } = new TextEncoder().encodeInto("in place", c.data.subarray(c.offset, c.offset + c.length));
   * c.commit(written);
   * console.assert(log.tryRead()!.text() === "in place");
   * log.unlink();
   * ```
   */
  tryClaim(length: number, type = 0): LogClaim | undefined {
    const what = this.#writeWhat();
    this.#checkRecord(length, type, what);
    if (!this.#writerReady) this.#startWriter();
    if (this.#claimOpen) throw this.#claimOpenError(what);
    const rec = (RECORD_HEADER_SIZE + length + 7) & ~7;
    this.#sizes[0] = rec;
    const p = this.#reserve(1);
    if (p < 0) return undefined;
    const off = p & this.#mask;
    this.#i32[(off >> 2) + 1] = type;
    this.#claimOpen = true;
    this.#claimPos = p;
    this.#claimEnd = (p + rec) >>> 0;
    this.#claimMax = length;
    this.#claimType = type;
    const c = this.#claim;
    c.log = this;
    c.offset = off + RECORD_HEADER_SIZE;
    c.length = length;
    return c;
  }

  static {
    commitClaim = (log, length, abort) => log.#finishClaim(length, abort);
    releaseRecord = (log) => {
      if (!log.#closed && log.#readerReady) log.#publishHead();
    };
  }

  #finishClaim(length: number, abort: boolean): void {
    const what = this.#writeWhat();
    this.#claimOpen = false;
    if (this.#closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    const p = this.#claimPos;
    const end = this.#claimEnd;
    if (abort) {
      this.#i32[((p & this.#mask) >> 2) + 1] = TYPE_PAD;
      this.#commitRecord(p, (end - p) >>> 0, end);
      return;
    }
    if (!Number.isInteger(length) || length < 0 || length > this.#claimMax) {
      this.#claimOpen = true;
      this.#claim.log = this;
      throw new RangeError(`${what}: commit length must be an integer in 0..${this.#claimMax}, got ${length}`);
    }
    const rec = (RECORD_HEADER_SIZE + length + 7) & ~7;
    const used = (p + rec) >>> 0;
    if (used !== end) {
      // Shrunk: the rest of the claim becomes a complete padding record (visible with the commit).
      const o = (used & this.#mask) >> 2;
      this.#i32[o + 1] = TYPE_PAD;
      this.#i32[o] = (end - used) >>> 0;
    }
    this.#i32[((p & this.#mask) >> 2) + 1] = this.#claimType;
    this.#commitRecord(p, RECORD_HEADER_SIZE + length, end);
  }

  /**
   * Appends one record, waiting for room: spins briefly, then sleeps on a futex.
   *
   * @param data the payload
   * @param options `{ type, timeout }` (timeout in ms, default Infinity)
   * @throws {ShmError} ETIMEDOUT when no room appeared in time; {RangeError} for a bad payload
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-write", { capacity: 256 });
   * log.write("a", { type: 1 });
   * try { for (;;) log.write(new Uint8Array(100), { timeout: 10 }); } catch (e) { console.assert((e as { code: string }).code === "ETIMEDOUT"); }
   * log.unlink();
   * ```
   */
  write(data: Uint8Array | string, options?: LogWriteOptions): void {
    const what = this.#writeWhat();
    const timeout = timeoutOf(options, what);
    const type = options?.type ?? 0;
    if (this.tryWrite(data, type)) return;
    const spinEnd = performance.now() + SPIN_MS;
    do {
      for (let i = 0; i < SPIN_BATCH; i++) if (this.tryWrite(data, type)) return;
    } while (performance.now() < spinEnd);
    this.#park(false, () => this.tryWrite(data, type), performance.now() + timeout, timeout, what);
  }

  /**
   * Appends one record, waiting for room without blocking the event loop.
   *
   * @param data the payload
   * @param options `{ type, timeout, signal }`
   * @returns a promise that resolves once written
   * @throws {ShmError} ETIMEDOUT (rejects); rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-writea", { capacity: 1024 });
   * await log.writeAsync("x");
   * console.assert(log.tryRead()!.text() === "x");
   * log.unlink();
   * ```
   */
  async writeAsync(data: Uint8Array | string, options?: LogWriteOptions): Promise<void> {
    const what = this.#writeWhat();
    const timeout = timeoutOf(options, what);
    const type = options?.type ?? 0;
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    if (this.tryWrite(data, type)) return;
    const deadline = performance.now() + timeout;
    const ready = (): boolean => this.tryWrite(data, type);
    for (;;) {
      if (await this.#parkAsync(false, ready, deadline, timeout, what, signal)) return;
      if (this.tryWrite(data, type)) return;
    }
  }

  #writeWhat(): string {
    return this.#wWhat;
  }

  #checkRecord(n: number, type: number, what: string): void {
    if (this.#closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    if (!Number.isInteger(n) || n < 0 || n > this.maxRecord) {
      throw new RangeError(`${what}: a record of ${n} bytes is longer than maxRecord ${this.maxRecord}`);
    }
    if ((type & MAX_TYPE) !== type) {
      throw new RangeError(`${what}: type must be an integer in 0..${MAX_TYPE}, got ${type}`);
    }
  }

  #claimOpenError(what: string): ShmError {
    return new ShmError("EINVAL", `${what}: a claim of this object is still open; commit or abort it first (EINVAL)`);
  }

  /**
   * Sets #batchK / #batchTotal to the longest prefix (at least one) of the first `count` record
   * sizes in #sizes that fits in `free` bytes from position t and before the end of the data
   * area (after a padding to the start if not even the first fits there). Returns the padding
   * bytes, or -1 when the first record does not fit.
   */
  #prefix(t: number, free: number, count: number): number {
    const cap = this.capacity;
    const sizes = this.#sizes;
    const toEnd = cap - (t & this.#mask);
    const first = sizes[0];
    const pad = first > toEnd ? toEnd : 0;
    const room = Math.min(free - pad, pad ? cap : toEnd);
    if (first > room) return -1;
    let total = first;
    let k = 1;
    while (k < count && total + sizes[k] <= room) total += sizes[k++];
    this.#batchK = k;
    this.#batchTotal = total;
    return pad;
  }

  /**
   * Reserves room for the longest prefix of the first `count` records sized in #sizes (see
   * #prefix). Returns the position of the first record (after any padding, which is written),
   * or -1 when there is no room. mpsc: the claim is made (CAS) and its first header holds the
   * IN_PROGRESS marker when this returns.
   */
  #reserve(count: number): number {
    const cap = this.capacity;
    const mask = this.#mask;
    if (!this.#mpsc) {
      let t = this.#wTail;
      let pad = this.#prefix(t, cap - ((t - this.#wLimit) >>> 0), count);
      if (pad < 0 || this.#batchK < count) {
        const h = Atomics.load(this.#ctl, W_HEAD) >>> 0; // A2: acquire head; pairs with R2
        const used = (t - h) >>> 0;
        if (used > cap) throw this.#corrupt(`head ${h} is ${used} bytes behind tail ${t} (L1)`);
        this.#wLimit = h;
        pad = this.#prefix(t, cap - used, count);
        if (pad < 0) return -1;
      }
      if (FAULT_ON) fault("log.write.after_claim");
      if (pad) {
        const o = (t & mask) >> 2;
        this.#i32[o] = pad;
        this.#i32[o + 1] = TYPE_PAD;
        t = (t + pad) >>> 0;
      }
      return t;
    }
    const ctl = this.#ctl;
    const sl = this.#slotsView;
    const sw = this.#slotW;
    for (let attempt = 0; attempt < CAS_TRIES; attempt++) {
      const t = Atomics.load(ctl, W_TAIL) >>> 0;
      const c = Atomics.load(ctl, W_CLEAN) >>> 0; // A4: pairs with R3
      const used = (t - c) >>> 0;
      if (used > cap || (t & 7) !== 0) {
        if ((Atomics.load(ctl, W_TAIL) >>> 0) !== t) continue; // moved under us
        throw this.#corrupt(`tail ${t} and clean ${c} are impossible (L1, L2)`);
      }
      const pad = this.#prefix(t, cap - used, count);
      if (pad < 0) {
        sl[sw + 4] = 0;
        return -1;
      }
      const total = this.#batchTotal;
      const need = pad + total;
      // Slot first (L4): a reader that finds this claim unwritten can find its claimer.
      sl[sw + 3] = t;
      Atomics.store(sl, sw + 4, need);
      // C1: claim with one CAS (seq_cst; orders the slot writes before it).
      if (Atomics.compareExchange(ctl, W_TAIL, t | 0, (t + need) | 0) !== (t | 0)) continue;
      if (FAULT_ON) fault("log.write.after_claim");
      let p = t;
      if (pad) {
        const o = (t & mask) >> 2;
        this.#i32[o + 1] = TYPE_PAD;
        Atomics.store(this.#i32, o, pad); // a complete padding record: nothing to lose
        p = (t + pad) >>> 0;
      }
      // The marker: the first store into the record (seq_cst, so no payload store passes it).
      Atomics.store(this.#i32, (p & mask) >> 2, (IN_PROGRESS | total) | 0);
      if (FAULT_ON) fault("log.write.after_marker");
      return p;
    }
    sl[sw + 4] = 0;
    return -1;
  }

  /** Writes the type and payload of a record at position p (not its length word). */
  #fill(p: number, data: Uint8Array | string, n: number, type: number): void {
    const off = p & this.#mask;
    this.#i32[(off >> 2) + 1] = type;
    if (n === 0) return;
    const at = off + RECORD_HEADER_SIZE;
    if (typeof data === "string") {
      encoder.encodeInto(data, this.#u8.subarray(at, at + n));
    } else {
      copyIn(this.#u8, this.#i32, at, data, n);
    }
    if (FAULT_ON) fault("log.write.mid_payload");
  }

  /** Commits the record (or batch) starting at p, whose first length word is `len`; `end` is its end. */
  #commitRecord(p: number, len: number, end: number): void {
    const o = (p & this.#mask) >> 2;
    if (FAULT_ON) fault("log.write.before_commit");
    const ctl = this.#ctl;
    if (this.#mpsc) {
      Atomics.store(this.#i32, o, len); // C2: commit (release); pairs with A3 in the reader
      if (FAULT_ON) fault("log.write.after_commit");
      this.#slotsView[this.#slotW + 4] = 0; // the claim is done (L4 no longer needs it)
    } else {
      this.#i32[o] = len;
      if (plainPublish) ctl[W_TAIL] = end | 0; // W-R1 (release), as in #writeBatchSpsc
      else Atomics.store(ctl, W_TAIL, end | 0);
      this.#wTail = end;
      if (FAULT_ON) fault("log.write.after_commit");
    }
    // W2 (a plain read after a plain publish, as in #writeBatchSpsc)
    if ((plainPublish && !this.#mpsc ? ctl[W_RW] : readFlag(ctl, W_RW)) !== 0) this.#wakeReader();
  }

  #startWriter(): void {
    if (this.#closed) throw new ShmError("ECLOSED", `${this.#writeWhat()}: it is closed (ECLOSED)`);
    if (this.#mpsc) {
      this.#takeSlot();
    } else {
      this.#claimRole(W_WROLE, "writer");
      this.#wTail = Atomics.load(this.#ctl, W_TAIL) >>> 0;
      this.#wLimit = Atomics.load(this.#ctl, W_HEAD) >>> 0;
      if (((this.#wTail - this.#wLimit) >>> 0) > this.capacity || (this.#wTail & 7)) {
        throw this.#corrupt(`tail ${this.#wTail} and head ${this.#wLimit} are impossible (L1, L2)`);
      }
    }
    this.#writerReady = true;
  }

  /** mpsc: takes a free participant slot, or one whose dead owner's claim is consumed. */
  #takeSlot(): void {
    const sl = this.#slotsView;
    const head = Atomics.load(this.#ctl, W_HEAD) >>> 0;
    for (let i = 0; i < this.#nSlots; i++) {
      const w = (i * LOG_SLOT_SIZE) >> 2;
      const pid = Atomics.load(sl, w) >>> 0;
      const st = Atomics.load(sl, w + 1) >>> 0;
      if (pid !== 0) {
        if (holderAlive(pid, st)) continue;
        const len = Atomics.load(sl, w + 4) >>> 0;
        const pos = Atomics.load(sl, w + 3) >>> 0;
        // A dead owner's claim must be behind head before its slot is reused (L4).
        if (len !== 0 && ((head - pos) | 0) < (len | 0)) continue;
      }
      if (this.#cas64(LOG_HEADER_SIZE + i * LOG_SLOT_SIZE, pid, st, PID, START_LO)) {
        sl[w + 4] = 0;
        sl[w + 3] = 0;
        Atomics.store(sl, w + 2, this.#token);
        this.#slot = i;
        this.#slotW = w;
        return;
      }
    }
    throw new ShmError(
      "EBUSY",
      `${this.#writeWhat()}: all ${this.#nSlots} writer slots are held by live processes (EBUSY)`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  /**
   * Takes the next record if there is one; never blocks. The record is a reusable view, valid
   * until the next read call on this object (which consumes it).
   *
   * @returns the record, or undefined when the log is empty (or its next record is still being written)
   * @throws {ShmError} EBUSY when another live process holds the reader role; EBADHDR for a corrupt record
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-tryread", { capacity: 1024 });
   * console.assert(log.tryRead() === undefined);
   * log.tryWrite("x", 3);
   * const r = log.tryRead()!;
   * console.assert(r.type === 3 && r.text() === "x");
   * log.unlink();
   * ```
   */
  tryRead(): LogRecord | undefined {
    if (!this.#readerReady) this.#startReader();
    this.#publishHead();
    const ok = this.#next();
    return ok ? this.#rec : undefined;
  }

  /**
   * Delivers the records that are there (up to `max`, and at most one lap of the data area) to
   * `fn`, through one reusable {@linkcode LogRecord}, and publishes the head once at the end;
   * never blocks. `fn` may close the log: the batch ends there.
   *
   * @param fn called with each record (valid until fn returns)
   * @param max the most records to deliver (default: all there are)
   * @returns how many records were delivered
   * @throws {ShmError} EBADHDR for a corrupt record (the records before it stay delivered)
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-rbatch", { capacity: 1024 });
   * log.tryWriteBatch(["a", "bb"]);
   * let bytes = 0;
   * console.assert(log.tryReadBatch((r) => bytes += r.length) === 2 && bytes === 3);
   * log.unlink();
   * ```
   */
  tryReadBatch(fn: (record: LogRecord) => void, max = Infinity): number {
    if (!this.#readerReady) this.#startReader();
    this.#publishHead();
    if (!this.#mpsc) return this.#readBatchSpsc(fn, max);
    let k = 0;
    const rec = this.#rec;
    const start = this.#rPos;
    const cap = this.capacity;
    try {
      // At most one lap per call (writers that never stop cannot keep the caller here).
      while (k < max && ((this.#rPos - start) >>> 0) < cap && this.#next()) {
        k++;
        fn(rec);
        if (FAULT_ON) fault("log.read.mid_batch");
        if (this.#closed) return k; // fn closed the log (close() published the head)
      }
    } finally {
      if (!this.#closed) this.#publishHead();
    }
    return k;
  }

  /**
   * spsc tryReadBatch in one loop: the position and the cached tail in locals, the tail reloaded
   * (A1) only when the cache says empty, each header validated (L3) before its record is
   * delivered, the head published once at the end (R2). At most one lap per call, so a writer
   * that never stops cannot keep the caller here.
   */
  #readBatchSpsc(fn: (record: LogRecord) => void, max: number): number {
    const cap = this.capacity;
    const mask = this.#mask;
    const most = RECORD_HEADER_SIZE + this.maxRecord;
    const i32 = this.#i32;
    const rec = this.#rec;
    const start = this.#rPos;
    let p = start;
    let t = this.#rTail;
    let k = 0;
    try {
      while (k < max) {
        if (p === t) {
          if (((p - start) >>> 0) >= cap) break;
          t = Atomics.load(this.#ctl, W_TAIL) >>> 0; // A1: acquire tail; pairs with W-R1
          if (((t - p) >>> 0) > cap) throw this.#corrupt(`tail ${t} is ${(t - p) >>> 0} bytes ahead of ${p} (L1)`);
          this.#rTail = t;
          if (t === p) break;
        }
        const off = p & mask;
        const len = i32[off >> 2] >>> 0;
        const type = i32[(off >> 2) + 1] >>> 0;
        const size = (len + 7) & ~7;
        if (
          type <= MAX_TYPE && len >= RECORD_HEADER_SIZE && len <= most && off + size <= cap && size <= ((t - p) >>> 0)
        ) {
          p = (p + size) >>> 0;
          this.#rPos = p;
          rec.offset = off + RECORD_HEADER_SIZE;
          rec.length = len - RECORD_HEADER_SIZE;
          rec.type = type;
          k++;
          fn(rec);
          if (FAULT_ON) fault("log.read.mid_batch");
          if (this.#rPos !== p || this.#closed) {
            // fn read on its own (tryRead) or closed the log: go on from where that left things.
            if (this.#closed) return k;
            p = this.#rPos;
            t = this.#rTail;
          }
        } else if (
          type === TYPE_PAD && len >= RECORD_HEADER_SIZE && (len & 7) === 0 && off + len <= cap &&
          len <= ((t - p) >>> 0)
        ) {
          p = (p + len) >>> 0;
          this.#rPos = p;
        } else {
          throw this.#corrupt(
            type === TYPE_PAD
              ? `padding of ${len} bytes at position ${p} (offset ${off}) is impossible (L3)`
              : `record at position ${p} (offset ${off}) has length ${len} and type ${type}, impossible with ${
                (t - p) >>> 0
              } bytes claimed (L3)`,
          );
        }
      }
    } finally {
      if (!this.#closed) this.#publishHead();
    }
    return k;
  }

  /**
   * Like {@linkcode tryReadBatch}, but waits for at least one record first.
   *
   * @param fn called with each record
   * @param options `{ max, timeout }`
   * @returns how many records were delivered (at least 1)
   * @throws {ShmError} ETIMEDOUT when nothing arrived in time
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-readbatch", { capacity: 1024 });
   * log.tryWrite("z");
   * console.assert(log.readBatch(() => {}, { timeout: 100 }) === 1);
   * log.unlink();
   * ```
   */
  readBatch(fn: (record: LogRecord) => void, options?: LogReadBatchOptions): number {
    const max = options?.max ?? Infinity;
    const timeout = timeoutOf(options, this.#readWhat());
    const deadline = performance.now() + timeout;
    let n = this.tryReadBatch(fn, max);
    if (n === 0) {
      // Dry: pace (a writer streaming records publishes a run meanwhile), then look once more.
      this.#pacer.dry(this.#rGot);
      this.#rGot = 0;
      while ((n = this.tryReadBatch(fn, max)) === 0) {
        // Ready may have been a padding only, or a dead claim just padded over: look again.
        this.#waitRead(deadline, timeout);
      }
    }
    this.#rGot += n;
    return n;
  }

  /**
   * Like {@linkcode tryReadBatch}, but waits for at least one record without blocking the event loop.
   *
   * @param fn called with each record
   * @param options `{ max, timeout, signal }`
   * @returns a promise of how many records were delivered (at least 1)
   * @throws {ShmError} ETIMEDOUT (rejects); rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-readbatcha", { capacity: 1024 });
   * const p = log.readBatchAsync(() => {}, { timeout: 1000 });
   * log.tryWrite("z");
   * console.assert(await p === 1);
   * log.unlink();
   * ```
   */
  async readBatchAsync(fn: (record: LogRecord) => void, options?: LogReadBatchOptions): Promise<number> {
    const max = options?.max ?? Infinity;
    const timeout = timeoutOf(options, this.#readWhat());
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const deadline = performance.now() + timeout;
    for (;;) {
      const n = this.tryReadBatch(fn, max);
      if (n > 0) return n;
      await this.#waitReadAsync(deadline, timeout, signal);
    }
  }

  /**
   * Takes the next record, waiting for one: spins briefly, then sleeps on a futex.
   *
   * @param options `{ timeout }` in ms (default Infinity)
   * @returns the record (a reusable view, valid until the next read call)
   * @throws {ShmError} ETIMEDOUT when nothing arrived in time
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-read", { capacity: 1024 });
   * log.tryWrite("r");
   * console.assert(log.read({ timeout: 100 }).text() === "r");
   * log.unlink();
   * ```
   */
  read(options?: WaitOptions): LogRecord {
    const timeout = timeoutOf(options, this.#readWhat());
    const deadline = performance.now() + timeout;
    let r = this.tryRead();
    if (r === undefined) {
      this.#pacer.dry(this.#rGot); // as in readBatch
      this.#rGot = 0;
      while ((r = this.tryRead()) === undefined) this.#waitRead(deadline, timeout);
    }
    this.#rGot++;
    return r;
  }

  /**
   * Takes the next record, waiting for one without blocking the event loop.
   *
   * @param options `{ timeout, signal }`
   * @returns a promise of the record (a reusable view, valid until the next read call)
   * @throws {ShmError} ETIMEDOUT (rejects); rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-reada", { capacity: 1024 });
   * const p = log.readAsync({ timeout: 1000 });
   * log.tryWrite("later");
   * console.assert((await p).text() === "later");
   * log.unlink();
   * ```
   */
  async readAsync(options?: WaitOptions): Promise<LogRecord> {
    const timeout = timeoutOf(options, this.#readWhat());
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const deadline = performance.now() + timeout;
    for (;;) {
      const r = this.tryRead();
      if (r) return r;
      await this.#waitReadAsync(deadline, timeout, signal);
    }
  }

  /**
   * Iterates the records as they arrive (`for await`), never blocking the event loop; ends when
   * the log is closed. Each record is the reusable view, valid until the next iteration.
   *
   * @returns an async iterator of records
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-iter", { capacity: 1024 });
   * log.tryWriteBatch(["1", "2"]);
   * const got: string[] = [];
   * for await (const r of log) { got.push(r.text()); if (got.length === 2) break; }
   * console.assert(got.join() === "1,2");
   * log.unlink();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<LogRecord> {
    while (!this.#closed) {
      let r: LogRecord;
      try {
        r = await this.readAsync();
      } catch (e) {
        if (this.#closed) return;
        throw e;
      }
      yield r;
    }
  }

  #readWhat(): string {
    return this.#rWhat;
  }

  /** Blocks until a record may be there (or throws ETIMEDOUT at `deadline`). */
  #waitRead(deadline: number, timeout: number): void {
    const what = this.#readWhat();
    const spinEnd = performance.now() + SPIN_MS;
    do {
      for (let i = 0; i < SPIN_BATCH; i++) if (this.#peek()) return;
    } while (performance.now() < spinEnd);
    this.#park(true, () => this.#peek(), deadline, timeout, what);
  }

  /**
   * The park loop of both sides ("Waiting"): until `ready()` is true, or ETIMEDOUT at `deadline`,
   * read the side's futex word, register in its waiter count, ask for a wake (W1), re-check, then
   * sleep on the word in slices. The reader sleeps on dataSeq (woken by writers after a commit),
   * writers on head (spsc) / clean (mpsc) (woken by the reader after it publishes).
   */
  #park(reader: boolean, ready: () => boolean, deadline: number, timeout: number, what: string): void {
    const ctl = this.#ctl;
    const word = reader ? W_SEQ : this.#mpsc ? W_CLEAN : W_HEAD;
    const waiters = reader ? W_RW : W_WW;
    const sleep = reader ? W_RS : W_WS;
    for (;;) {
      const rem = deadline - performance.now();
      if (rem <= 0) throw timeoutError(what, timeout);
      const v0 = Atomics.load(ctl, word); // W1: futex word, read before the re-check
      Atomics.add(ctl, waiters, 1); // W1: register (seq_cst); pairs with W2 on the other side
      Atomics.store(ctl, sleep, 1); // W1: ask for a wake, then re-check
      if (reader) this.#rWaits++;
      else this.#wWaits++;
      try {
        if (ready()) return;
        if (FAULT_ON) fault("log.wait.parked");
        // A reader stuck at an unwritten record (mpsc) wakes up soon to ask whether its writer lives.
        const slice = Math.min(rem, reader && this.#stuckAt >= 0 ? STUCK_MS * 2 : PARK_SLICE_MS);
        const at = this.#base + word * 4;
        // spsc readers: a short first wait and a re-check, then the rest ("Waiting" above).
        if (reader && !this.#mpsc) futexWaitShortFirst(this.#mapping, at, v0, slice, ready);
        else futexWait(this.#mapping, at, v0, slice);
      } finally {
        if (!this.#closed) {
          Atomics.sub(ctl, waiters, 1);
          if (reader) this.#rWaits--;
          else this.#wWaits--;
        }
      }
      if (ready()) return;
    }
  }

  async #waitReadAsync(deadline: number, timeout: number, signal?: AbortSignal): Promise<void> {
    await this.#parkAsync(true, () => this.#peek(), deadline, timeout, this.#readWhat(), signal);
  }

  /**
   * One park of {@linkcode #park} without blocking the event loop: true if `ready()` was true at
   * the re-check, false after a wake or a slice; ETIMEDOUT at `deadline`, ECLOSED if closed meanwhile.
   */
  async #parkAsync(
    reader: boolean,
    ready: () => boolean,
    deadline: number,
    timeout: number,
    what: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const ctl = this.#ctl;
    const word = reader ? W_SEQ : this.#mpsc ? W_CLEAN : W_HEAD;
    const waiters = reader ? W_RW : W_WW;
    const rem = deadline - performance.now();
    if (rem <= 0) throw timeoutError(what, timeout);
    const v0 = Atomics.load(ctl, word); // W1
    Atomics.add(ctl, waiters, 1); // W1
    Atomics.store(ctl, reader ? W_RS : W_WS, 1); // W1
    if (reader) this.#rWaits++;
    else this.#wWaits++;
    try {
      if (ready()) return true;
      // A pending dead claim needs the reader to look again: park in slices.
      const slice = Math.min(rem, reader && this.#stuckAt >= 0 ? STUCK_MS * 2 : PARK_SLICE_MS);
      const at = this.#base + word * 4;
      // spsc readers: as #park (their callers go back to tryRead after any return).
      if (reader && !this.#mpsc) {
        await waitAsyncShortFirst(this.#mapping, at, v0, slice, () => this.#closed || ready(), signal);
      } else await waitAsync(this.#mapping, at, v0, slice, signal);
    } finally {
      if (!this.#closed) {
        Atomics.sub(ctl, waiters, 1);
        if (reader) this.#rWaits--;
        else this.#wWaits--;
      }
    }
    if (this.#closed) throw new ShmError("ECLOSED", `${what}: it is closed (ECLOSED)`);
    return false;
  }

  /** True if a record is ready at the read position (runs dead-claim recovery when due). */
  #peek(): boolean {
    if (!this.#readerReady) this.#startReader();
    return this.#ready(this.#rPos);
  }

  /**
   * Whether a committed record (or padding) is at position p, skipping nothing. mpsc: a header
   * that stays unwritten past STUCK_MS makes the reader look for its claimer (recovery).
   */
  #ready(p: number): boolean {
    if (!this.#mpsc) {
      if (p !== this.#rTail) return true;
      const t = Atomics.load(this.#ctl, W_TAIL) >>> 0; // A1: acquire tail; pairs with W-R1
      if (((t - p) >>> 0) > this.capacity) {
        throw this.#corrupt(`tail ${t} is ${(t - p) >>> 0} bytes ahead of ${p} (L1)`);
      }
      this.#rTail = t;
      return t !== p;
    }
    if (p === this.#rTail) {
      // Nothing claimed past p as far as we know: look at the tail (a header at p with p == tail
      // is the previous lap's, consumed in this batch and not zeroed yet).
      const t = Atomics.load(this.#ctl, W_TAIL) >>> 0;
      if (((t - p) >>> 0) > this.capacity) {
        throw this.#corrupt(`tail ${t} is ${(t - p) >>> 0} bytes ahead of ${p} (L1)`);
      }
      this.#rTail = t;
      if (t === p) {
        this.#stuckAt = -1;
        return false;
      }
    }
    const w = Atomics.load(this.#i32, (p & this.#mask) >> 2); // A3: pairs with C2
    if (w > 0) return true;
    if (w === 0 && (Atomics.load(this.#ctl, W_TAIL) >>> 0) === p) {
      this.#stuckAt = -1;
      return false;
    }
    // Unwritten (0) or in progress (IN_PROGRESS | n): its writer is at work, or dead.
    const now = performance.now();
    if (this.#stuckAt !== p) {
      this.#stuckAt = p;
      this.#stuckSince = now;
      return false;
    }
    if (now - this.#stuckSince < STUCK_MS) return false;
    this.#stuckSince = now;
    return this.#recover(p);
  }

  /**
   * Moves to the next record (skipping padding) and fills the record view. False when there is
   * none ready. Bounded: at most two paddings in a row are possible (a wrap, a dead claim); a
   * third is skipped on the next call.
   */
  #next(): boolean {
    const cap = this.capacity;
    const mask = this.#mask;
    const i32 = this.#i32;
    for (let hop = 0; hop < 4; hop++) {
      const p = this.#rPos;
      if (!this.#ready(p)) return false;
      const off = p & mask;
      const len = (this.#mpsc ? Atomics.load(i32, off >> 2) : i32[off >> 2]) >>> 0;
      const type = i32[(off >> 2) + 1] >>> 0;
      let avail = (this.#rTail - p) >>> 0;
      if (this.#mpsc && ((len + 7) & ~7) > avail) {
        this.#rTail = Atomics.load(this.#ctl, W_TAIL) >>> 0; // tail only moves on: cache it
        avail = (this.#rTail - p) >>> 0;
        if (avail > cap) throw this.#corrupt(`tail ${this.#rTail} is ${avail} bytes ahead of ${p} (L1)`);
      }
      if (type === TYPE_PAD) {
        if (len < RECORD_HEADER_SIZE || (len & 7) !== 0 || off + len > cap || len > avail) {
          throw this.#corrupt(`padding of ${len} bytes at position ${p} (offset ${off}) is impossible (L3)`);
        }
        this.#rPos = (p + len) >>> 0;
        continue;
      }
      const rec = (len + 7) & ~7;
      if (
        type > MAX_TYPE || len < RECORD_HEADER_SIZE || len > RECORD_HEADER_SIZE + this.maxRecord ||
        off + rec > cap || rec > avail
      ) {
        throw this.#corrupt(
          `record at position ${p} (offset ${off}) has length ${len} and type ${type}, impossible with ${avail} bytes claimed (L3)`,
        );
      }
      const r = this.#rec;
      r.offset = off + RECORD_HEADER_SIZE;
      r.length = len - RECORD_HEADER_SIZE;
      r.type = type;
      this.#rPos = (p + rec) >>> 0;
      return true;
    }
    return false;
  }

  /** Publishes the head up to the read position (R2), and in mpsc zeroes and publishes clean (R3). */
  #publishHead(): void {
    const p = this.#rPos;
    const h = this.#rHead;
    if (p === h) return;
    const ctl = this.#ctl;
    Atomics.store(ctl, W_HEAD, p | 0); // R2: publish head once per batch (release); pairs with A2
    this.#rHead = p;
    if (FAULT_ON) fault("log.read.after_head");
    if (this.#mpsc) {
      this.#zero(h, p);
      if (FAULT_ON) fault("log.read.after_zero");
      Atomics.store(ctl, W_CLEAN, p | 0); // R3: the zeroed bytes are free (release); pairs with A4
    }
    if (readFlag(ctl, W_WW) !== 0) this.#wakeWriters(); // W2
  }

  /** Zeroes positions [from, to) of the data area (at most C bytes; two runs at the wrap). */
  #zero(from: number, to: number): void {
    const n = (to - from) >>> 0;
    const a = from & this.#mask;
    const first = Math.min(n, this.capacity - a);
    this.#u8.fill(0, a, a + first);
    if (n > first) this.#u8.fill(0, 0, n - first);
  }

  #startReader(): void {
    if (this.#closed) throw new ShmError("ECLOSED", `${this.#readWhat()}: it is closed (ECLOSED)`);
    this.#claimRole(W_RROLE, "reader");
    this.#checkCounters(`Log "${this.#name}" is corrupt`);
    const ctl = this.#ctl;
    const h = Atomics.load(ctl, W_HEAD) >>> 0;
    if (this.#mpsc) {
      // A previous reader may have died between publishing head and clean: finish its zeroing.
      const c = Atomics.load(ctl, W_CLEAN) >>> 0;
      if (c !== h) {
        this.#zero(c, h);
        Atomics.store(ctl, W_CLEAN, h | 0); // R3
      }
    }
    this.#rPos = h;
    this.#rHead = h;
    this.#rTail = h;
    this.#stuckAt = -1;
    this.#readerReady = true;
  }

  /**
   * mpsc, reader: the header at p stayed unwritten or in progress. If every participant slot
   * whose claim covers p names a dead process, write a padding record over the dead claim (up to
   * the end of the data area) and return true; false while a covering claimer lives.
   */
  #recover(p: number): boolean {
    const sl = this.#slotsView;
    const i32 = this.#i32;
    const o = (p & this.#mask) >> 2;
    const tail = Atomics.load(this.#ctl, W_TAIL) >>> 0;
    const avail = (tail - p) >>> 0;
    if (avail > this.capacity) throw this.#corrupt(`tail ${tail} is ${avail} bytes ahead of ${p} (L1)`);
    if (avail === 0) return false;
    let covering = 0;
    let onlyEnd = 0;
    for (let i = 0; i < this.#nSlots; i++) {
      const w = (i * LOG_SLOT_SIZE) >> 2;
      const len = Atomics.load(sl, w + 4) >>> 0;
      if (len === 0) continue;
      const pos = Atomics.load(sl, w + 3) >>> 0;
      if (((p - pos) >>> 0) >= len) continue;
      const pid = Atomics.load(sl, w) >>> 0;
      const st = Atomics.load(sl, w + 1) >>> 0;
      if (pid === 0 || holderAlive(pid, st)) return false; // a live claimer: wait for it
      covering++;
      onlyEnd = (pos + len) >>> 0;
    }
    // Re-read the header: its writer may have committed (and cleared its slot) meanwhile (C2 first).
    const w0 = Atomics.load(i32, o) >>> 0;
    if (w0 !== 0 && (w0 & IN_PROGRESS) === 0) return true;
    if (covering === 0) {
      if (w0 === 0 && (Atomics.load(this.#ctl, W_TAIL) >>> 0) === p) return false;
      throw this.#corrupt(`position ${p} is unwritten but no writer claims it (L4)`);
    }
    const toEnd = this.capacity - (p & this.#mask);
    let n: number;
    if (w0 & IN_PROGRESS) {
      n = w0 & ~IN_PROGRESS; // the dead writer's own marker: its claim from here
    } else if (covering === 1) {
      n = (onlyEnd - p) >>> 0;
    } else {
      // Several dead slots cover p (a stale one whose CAS lost, and the dead winner, who wrote
      // nothing): the claim ends at the first tail, written header or claim start after p (L5).
      n = this.#scanDeadClaim(p, tail);
    }
    if (n > toEnd) n = toEnd; // the rest (after the wrap) is recovered at the next position
    if (n < RECORD_HEADER_SIZE || (n & 7) !== 0 || n > avail) {
      throw this.#corrupt(`a dead writer's claim of ${n} bytes at position ${p} is impossible (L4)`);
    }
    i32[o + 1] = TYPE_PAD;
    Atomics.store(i32, o, n); // a committed padding record over the dead claim
    this.#stuckAt = -1;
    return true;
  }

  #scanDeadClaim(p: number, tail: number): number {
    const sl = this.#slotsView;
    let limit = (tail - p) >>> 0;
    for (let i = 0; i < this.#nSlots; i++) {
      const w = (i * LOG_SLOT_SIZE) >> 2;
      if ((Atomics.load(sl, w + 4) >>> 0) === 0) continue;
      const d = ((Atomics.load(sl, w + 3) >>> 0) - p) >>> 0;
      if (d > 0 && d < limit) limit = d;
    }
    const toEnd = this.capacity - (p & this.#mask);
    if (limit > toEnd) limit = toEnd;
    const base = (p & this.#mask) >> 2;
    for (let d = RECORD_HEADER_SIZE; d < limit; d += RECORD_HEADER_SIZE) {
      if (this.#i32[base + (d >> 2)] !== 0) return d;
    }
    return limit;
  }

  // -------------------------------------------------------------------------------------------
  // Waking

  #wakeReader(): void {
    if (Atomics.exchange(this.#ctl, W_RS, 0) !== 0) {
      Atomics.add(this.#ctl, W_SEQ, 1);
      futexWake(this.#mapping, this.#base + LOG.dataSeq);
    }
  }

  #wakeWriters(): void {
    if (Atomics.exchange(this.#ctl, W_WS, 0) !== 0) {
      futexWake(this.#mapping, this.#base + (this.#mpsc ? LOG.clean : LOG.head));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Roles

  #cas64(byteOff: number, expLo: number, expHi: number, desLo: number, desHi: number): boolean {
    io32[0] = expLo;
    io32[1] = expHi;
    io32[2] = desLo;
    io32[3] = desHi;
    const r = sys.shmkit_atomic_cas_u64(this.#mapping.id, this.#base + byteOff, 5, io8);
    if (r < 0) throw new ShmError("ECLOSED", `Cannot use log "${this.#name}": it is closed (ECLOSED)`);
    return r === 1;
  }

  #claimRole(w: number, side: string): void {
    const ctl = this.#ctl;
    const what = side === "writer" ? this.#writeWhat() : this.#readWhat();
    for (let attempt = 0; attempt < 64; attempt++) {
      const pid = Atomics.load(ctl, w) >>> 0;
      const st = Atomics.load(ctl, w + 1) >>> 0;
      if (pid === PID && st === START_LO) {
        if ((Atomics.load(ctl, w + 2) >>> 0) === this.#token) return;
        throw new ShmError("EBUSY", `${what}: another MessageLog object in this process is the ${side} (EBUSY)`);
      }
      if (pid !== 0 && holderAlive(pid, st)) {
        throw new ShmError("EBUSY", `${what}: process ${pid} holds the ${side} role (EBUSY)`);
      }
      if (this.#cas64(w * 4, pid, st, PID, START_LO)) {
        Atomics.store(ctl, w + 2, this.#token);
        return;
      }
    }
    throw new ShmError("EBUSY", `${what}: the ${side} role keeps changing hands (EBUSY)`);
  }

  #releaseRole(w: number): void {
    const ctl = this.#ctl;
    if ((Atomics.load(ctl, w + 2) >>> 0) !== this.#token) return;
    Atomics.store(ctl, w + 2, 0);
    this.#cas64(w * 4, PID, START_LO, 0, 0);
  }

  // -------------------------------------------------------------------------------------------
  // Lifetime

  /**
   * A JSON-safe handle; {@linkcode MessageLog.attach} reopens it in any process.
   *
   * @returns `{ kind: "shmkit.log", version, name, byteOffset, segment }`
   * @throws {ShmError} ECLOSED after close()
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-handle", { capacity: 256 });
   * console.assert(log.handle().kind === "shmkit.log");
   * log.unlink();
   * ```
   */
  handle(): MessageLogHandle {
    if (this.#closed) {
      throw new ShmError("ECLOSED", `Cannot make a handle of log "${this.#name}": it is closed (ECLOSED)`);
    }
    return placedHandle("shmkit.log", this.#seg, this.#base);
  }

  /**
   * Publishes what this reader consumed, releases this object's roles and participant slot,
   * detaches the record and claim views and, if it owns its mapping, unmaps it. Idempotent.
   * An open claim is given up (readers skip it).
   *
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * const log = MessageLog.create("shmkit-doc-log-close", { capacity: 256 });
   * log.tryWrite("x");
   * const r = log.tryRead()!;
   * log.unlink();
   * log.close();
   * log.close();
   * console.assert(log.closed && r.data.length === 0);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (!this.#seg.closed) {
      if (this.#claimOpen) this.#claim.abort();
      if (this.#readerReady) {
        this.#publishHead();
        this.#releaseRole(W_RROLE);
      }
      if (this.#writerReady) {
        if (this.#mpsc) {
          const w = this.#slotW;
          this.#slotsView[w + 4] = 0;
          Atomics.store(this.#slotsView, w + 2, 0);
          this.#cas64(LOG_HEADER_SIZE + this.#slot * LOG_SLOT_SIZE, PID, START_LO, 0, 0);
        } else this.#releaseRole(W_WROLE);
      }
      if (this.#rWaits) Atomics.sub(this.#ctl, W_RW, this.#rWaits);
      if (this.#wWaits) Atomics.sub(this.#ctl, W_WW, this.#wWaits);
    }
    this.#rWaits = this.#wWaits = 0;
    this.#closed = true;
    this.#readerReady = this.#writerReady = false;
    this.#claim.log = undefined;
    this.#claimOpen = false;
    const empty = new Uint8Array(0);
    this.#rec.data = empty;
    this.#rec.log = undefined;
    this.#claim.data = empty;
    this.#ctl = new Int32Array(0);
    this.#slotsView = new Int32Array(0);
    this.#u8 = empty;
    this.#i32 = new Int32Array(0);
    native.detach(this.#dataBuf);
    if (this.#owns) this.#seg.close();
  }

  /**
   * Removes the log's segment name; processes already attached keep working. A log in anonymous
   * memory has no name: nothing happens (as for every other object).
   *
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-unlink", { capacity: 256 });
   * log.unlink();
   * ```
   */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Checks L1..L3 from head to tail (tests, tools; not for the hot path). Records still being
   * written (mpsc) end the walk.
   *
   * @throws {ShmError} EBADHDR naming the first invariant that does not hold
   * @example
   * ```ts
   * import { MessageLog } from "./mod.ts";
   * using log = MessageLog.create("shmkit-doc-log-validate", { capacity: 256 });
   * log.tryWrite("ok");
   * log.validate();
   * log.unlink();
   * ```
   */
  validate(): void {
    if (this.#closed) throw new ShmError("ECLOSED", `Cannot validate log "${this.#name}": it is closed (ECLOSED)`);
    const what = `Log "${this.#name}" is corrupt`;
    this.#checkCounters(what);
    const h = Atomics.load(this.#ctl, W_HEAD) >>> 0;
    const t = Atomics.load(this.#ctl, W_TAIL) >>> 0;
    let p = h;
    for (let steps = 0; p !== t && steps <= this.capacity / 8; steps++) {
      const off = p & this.#mask;
      const len = Atomics.load(this.#i32, off >> 2) >>> 0;
      const type = this.#i32[(off >> 2) + 1] >>> 0;
      if (len === 0 || (len & IN_PROGRESS)) return; // mpsc: being written
      const rec = (len + 7) & ~7;
      const okType = type === TYPE_PAD ? (len & 7) === 0 : type <= MAX_TYPE && len <= 8 + this.maxRecord;
      if (!okType || len < 8 || off + rec > this.capacity || rec > ((t - p) >>> 0)) {
        throw bad(what, `record at position ${p} has length ${len} and type ${type} (L3)`);
      }
      p = (p + rec) >>> 0;
    }
  }

  #corrupt(why: string): ShmError {
    return new ShmError("EBADHDR", `Log "${this.#name}" is corrupt: ${why} (EBADHDR)`);
  }
}

registerKind("shmkit.log", (h) => MessageLog.attach(h as unknown as MessageLogHandle));
