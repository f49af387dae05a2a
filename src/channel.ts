/**
 * Channel: zero-copy messages between processes. One named object that holds `slots` blocks of
 * `slotSize` bytes, a slot table (one state word and one length per block), a small participant
 * table and a ring of ready (sent) block indices. A sender claims a FREE block with one
 * compare-and-swap on its state word (the owner's identity is in the same word), writes the
 * message into the block (copy: `send`; in place: `loan`), stores its length, marks it QUEUED and
 * enqueues the index on the ready ring; a receiver dequeues indices in bursts, claims each
 * (QUEUED -> HELD, a CAS) and reads the block where it lies until `release()` (HELD -> FREE, a CAS).
 *
 * Why not a {@linkcode Mempool} for the blocks: ownership has to move with the message (sender,
 * then nobody while queued, then the receiver); a mempool would reclaim queued blocks when their
 * sender exits. Why no free ring (layout 1 had one): claiming a block by CAS on the table records
 * the owner in the same instruction, so no crash window is left between "taken" and "owned", and
 * the hot path saves a ring operation.
 *
 * Layout (little-endian; offsets from the channel's byteOffset, which is 64-byte aligned;
 * P = maxProcesses):
 *
 * | off          | size          | field         | writer | reader  | note                                    |
 * |--------------|---------------|---------------|--------|---------|-----------------------------------------|
 * | 0            | 64            | common header | init   | open    | src/layout.ts, kind 3, headerSize 192, flags = mode |
 * | 64           | 4             | slots         | init   | open    | number of blocks, 1..2^24               |
 * | 68           | 4             | slotSize      | init   | open    | bytes per block, 1..2^32-1              |
 * | 72           | 4             | mode          | init   | open    | 0 spsc, 1 mpmc                          |
 * | 76           | 4             | entrySize     | init   | open    | 8: bytes per slot-table entry           |
 * | 80           | 8             | blockStride   | init   | open    | u64, alignUp(slotSize, 64)              |
 * | 88           | 8             | procsOffset   | init   | open    | u64, 192: the participant table         |
 * | 96           | 8             | readyOffset   | init   | open    | u64, alignUp(192 + 64 P, 64)            |
 * | 104          | 8             | tableOffset   | init   | open    | u64, after the ready ring, 64-aligned   |
 * | 112          | 8             | dataOffset    | init   | open    | u64, after the table, 4096-aligned      |
 * | 120          | 4             | reclaimed     | any    | cli     | slots reclaimed from dead processes     |
 * | 124          | 4             | maxProcesses  | init   | open    | P, participant entries, 1..256          |
 * | 128          | 4             | waiters       | senders| release | i32: senders parked on a full channel   |
 * | 132          | 4             | wakeSeq       | release, reclaim | senders | u32 futex word, bumped only if waiters > 0 |
 * | 136          | 56            | reserved      | -      | -       | zero                                    |
 * | procsOffset  | 64 * P        | participants  | below  | below   | one entry (own cache line) per Channel object |
 * | readyOffset  | Ring          | ready ring    | Ring   | Ring    | capacity slots; senders put, receivers take (spsc or mpmc) |
 * | tableOffset  | 8 * slots     | slot table    | below  | below   | one entry per block                     |
 * | dataOffset   | stride*slots  | blocks        | owner  | owner   | block i at dataOffset + i * blockStride |
 *
 * byteLength = dataOffset + blockStride * slots. Layout 2: a headerSize of 192 (layout 1 had 128
 * and a free ring) is how either version refuses the other.
 *
 * Participant entry p (64 bytes at procsOffset + 64 p; one per Channel object that sent or received):
 *
 * | off | size | field    | writer                                   | note                                    |
 * |-----|------|----------|------------------------------------------|-----------------------------------------|
 * | 0   | 8    | identity | claimant (CAS 0 -> id), closer/reclaimer (CAS id -> 0) | pid \| (startTime mod 2^32) << 32 |
 * | 8   | 4    | gen      | claimant (add 1)                         | tenure, low 22 bits go in state words   |
 * | 12  | 4    | op       | owner (store)                            | odd while a queue step is in flight (O1) |
 * | 16  | 4    | parked   | owner (add/sub), reclaimer (exchange 0)  | this entry's senders counted in waiters |
 * | 20  | 44   | reserved | -                                        | zero                                    |
 *
 * Slot table entry i (8 bytes at tableOffset + 8 i):
 *
 * | off | size | field  | writer                                | note                              |
 * |-----|------|--------|---------------------------------------|-----------------------------------|
 * | 0   | 4    | length | sender, before QUEUED                 | message bytes, <= slotSize        |
 * | 4   | 4    | state  | CAS by takers/receivers/releasers/reclaimers | 0 FREE, else phase << 30 \| tag |
 *
 * A tag is `(gen & 0x3fffff) << 8 | p` (participant p in its tenure gen). Phases: 1 LOANED (a
 * sender writes the block), 2 HELD (a receiver reads it), 3 QUEUED (on its way through the ready
 * ring; the tag is the sender's, kept for diagnostics, owner nobody).
 *
 * Protocol (every Atomics operation is seq_cst; the labels pair them):
 * - T1 take: CAS state FREE -> LOANED|tag (pairs with F1, R1). The owner is recorded by the claim.
 * - Q1 queue: store length; op := odd (O1); store state LOANED -> QUEUED; enqueue i on the ready
 *   ring; op := even (O2). A batch does one bracket and one enqueueBurst.
 * - D1 receive: op := odd; dequeueBurst; for each index i < slots: CAS state QUEUED(any tag) ->
 *   HELD|tag, else EBADHDR (an index twice in the ring, or corrupt); op := even. On spsc a single
 *   receive claims a run of up to recvRun (an option, default 1; one bracket, one head publish) and hands the claimed
 *   blocks out one by one; a receiver killed with a run claimed loses those messages (R1a frees
 *   the blocks). The odd op store (O1) is plain: the next step of the bracket (the QUEUED store or
 *   the ring's head store) is a release that publishes it; the even one (O2) is seq_cst.
 * - F1 release: CAS HELD|tag -> FREE (EBADHDR if it fails); if waiters > 0 bump wakeSeq and wake
 *   (a batch receive wakes once, after its last release).
 * - R1 reclaim: (a) LOANED/HELD words whose tag names a dead participant tenure (or a malformed
 *   word) are CASed to FREE; (b) QUEUED words that are not in the ready ring are orphans of a
 *   process that died between Q1's state store and its enqueue, or between D1's dequeue and
 *   its claim. The reclaimer reads every live participant's op (r1), reads the state words,
 *   scans the ring (a bounded scan of its slots; values of non-empty positions), reads the ops
 *   again (r2) and CASes each QUEUED word it saw and did not find in the ring to FREE only if no
 *   live participant's op was odd at r1 or changed by r2. Why that is safe: a live process only
 *   reaches a QUEUED block inside an op bracket (as its sender, or as a receiver after dequeueing
 *   it), so with every live op even and unchanged across the scan, a QUEUED block missing from
 *   the ring was left by a dead process and nobody else can touch it: the CAS frees it once.
 *
 * Invariants: C1 every block is FREE, owned by one participant tenure (LOANED, HELD), or QUEUED
 * and then in the ready ring at most once (or orphaned by a dead process, see R1); C2 length <=
 * slotSize for a QUEUED or HELD block; C3 by C1 the ready ring holds at most `slots` values, so an
 * enqueue never finds it full; C4 every state change is a CAS from the exact word read (or a store
 * by the tag's owner), so a block is handed out once and returned once.
 *
 * Crash windows: none left open. A process SIGKILLed after T1 leaves LOANED|tag (R1a); after Q1's
 * QUEUED store and before the enqueue, or after D1's dequeue and before the claim, leaves an
 * orphan QUEUED block (R1b); holding HELD blocks, R1a; inside F1 the CAS either happened or not.
 * Reclaim runs when a sender finds no free block (trySend/tryLoan at most every 250 ms, blocking
 * sends every 250 ms while they wait) and on {@linkcode Channel.reclaim}. Fault points
 * (src/fault.ts): CHANNEL_FAULT_POINTS. The ready ring's own crash behaviour is src/ring.ts's.
 *
 * Views: the whole data area is one ArrayBuffer made once per Channel object; messages and loans
 * are views of it (no FFI call and no ArrayBuffer per message). `close()` detaches it, so every
 * view this object ever handed out reads length 0 afterwards (Node 20 cannot detach: see Message).
 * With `{ detach: "message" }` each Message and Loan gets a window of its own, detached on
 * release/send (the layout-1 behaviour, an FFI call per message).
 *
 * @module
 */
import { checkKeys, ShmError } from "./errors.ts";
import { native, PID, plainPublish, processAlive, START_TIME, sys } from "./sys.ts";

import { ERRNO } from "./sys.ts";
import { alignUp, publishReady, readHeader, writeHeader } from "./layout.ts";
import { checkHandle, registerKind } from "./handle.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { createWhat, placedHandle, placeOrRelease, renamed, unlinkName } from "./object.ts";
import { MAX_VIEW_BYTES } from "./mapping.ts";
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
import { RING, Ring, RING_HEADER_SIZE } from "./ring.ts";
import { faultHook } from "./fault.ts";
import { localWork, Pacer } from "./pace.ts";
import { decodeText } from "./text.ts";
import { copyIn } from "./copy.ts";

/** How senders and receivers may share a channel. */
export type ChannelMode = "spsc" | "mpmc" | "spsc-ordered";

/**
 * When the views a Channel object hands out stop working: "close" (default, the fast path) when
 * the Channel object is closed; "message" also when each Message is released or Loan sent.
 */
export type DetachMode = "close" | "message";

/** Options of {@linkcode Channel.create}, {@linkcode Channel.byteLength} and {@linkcode Channel.init}. */
export interface ChannelOptions {
  /** Number of message slots (blocks), 1..2^24. */
  slots: number;
  /** Bytes per slot: the largest message, 1..2^32-1. */
  slotSize: number;
  /**
   * "spsc" (one sending and one receiving process), "mpmc" (any number), default "mpmc", or
   * "spsc-ordered": one sender and one receiver with blocks used and recycled in ring order (the
   * fastest per message; a message held unreleased holds back the reuse of the blocks sent after
   * it, and a receiver killed before releasing a message leaves it for the next receiver). See
   * docs/layout/channel.md.
   */
  mode?: ChannelMode;
  /** Channel objects that may send or receive at once (all processes), 1..256, default 64. */
  maxProcesses?: number;
  /** File mode of a new segment (create only), default 0o600. */
  fileMode?: number;
  /** Prefault the channel's pages in this process (default true): no page faults while messaging. */
  populate?: boolean;
  /** When handed-out views stop working, default "close" (see {@linkcode DetachMode}). */
  detach?: DetachMode;
  /**
   * spsc only: how many ready messages one `tryRecv`/`recv`/`tryRecvInto`/`recvInto` claims at once,
   * 1..256, default 1. Above 1 a receive takes a run of queued messages with one ring publish and
   * hands them out one by one (less cross-core traffic per message); a receiver killed with a run
   * claimed loses the messages of the run it had not handed out yet (their slots come back), as with
   * a batch receive. With 1, a message stays queued, for the next receiver, until it is received.
   */
  recvRun?: number;
}

/** Options of {@linkcode Channel.open}, {@linkcode Channel.at} and {@linkcode Channel.attach}. */
export interface ChannelOpenOptions {
  /** Prefault the channel's pages in this process (default true). */
  populate?: boolean;
  /** When handed-out views stop working, default "close" (see {@linkcode DetachMode}). */
  detach?: DetachMode;
  /**
   * spsc only: how many ready messages one `tryRecv`/`recv`/`tryRecvInto`/`recvInto` claims at once,
   * 1..256, default 1. Above 1 a receive takes a run of queued messages with one ring publish and
   * hands them out one by one (less cross-core traffic per message); a receiver killed with a run
   * claimed loses the messages of the run it had not handed out yet (their slots come back), as with
   * a batch receive. With 1, a message stays queued, for the next receiver, until it is received.
   */
  recvRun?: number;
}

/** Options of {@linkcode Channel.recvBatch} and {@linkcode Channel.recvBatchAsync}. */
export interface RecvBatchOptions extends WaitOptions {
  /** The most messages to hand to the callback in this call (default: the slot count). */
  max?: number;
}

/**
 * Called by the batch receive methods once per message: the message is `bytes[0, length)`.
 * `bytes` is the whole slot (a view reused for every message in that slot, no allocation); it is
 * valid only during the call: the slot is released when the callback returns.
 */
export type BatchReceiver = (bytes: Uint8Array, length: number) => void;

/** The handle of a Channel: JSON-safe, reopened by {@linkcode Channel.attach} in any process. */
export interface ChannelHandle {
  /** Always `"shmkit.channel"`. */
  readonly kind: "shmkit.channel";
  /** Handle format version. */
  readonly version: number;
  /** The segment name, or null when the channel lives in anonymous memory. */
  readonly name: string | null;
  /** The segment holding the channel. */
  readonly segment: SharedMemoryHandle;
  /** Where the channel starts in the segment. */
  readonly byteOffset: number;
}

/**
 * A received message: a view of the shared block until {@linkcode Message.release}.
 *
 * Release semantics: with the default `{ detach: "close" }` a Message object is reused for the
 * next message received into the same slot, and `bytes` is a view of the channel's data area. After
 * `release()` the object's `bytes` is empty, but a `bytes` reference kept from before may read a
 * newer message (never crash), and a Message kept past release must not be released again (it may
 * by then stand for a newer message). `close()` of the channel detaches every view it handed out:
 * they read length 0 (Deno, Bun, Node >= 22). With `{ detach: "message" }` every message has
 * views of its own, detached by `release()`.
 */
export interface Message extends Disposable {
  /** The message bytes, zero-copy, in shared memory; empty after `release()`. */
  readonly bytes: Uint8Array;
  /** The bytes decoded as UTF-8, exactly as TextDecoder would ({@linkcode decodeText}: no subarray, no intermediate copy). */
  text(): string;
  /** The bytes decoded as UTF-8 and parsed as JSON. */
  json(): unknown;
  /**
   * The value a {@linkcode Channel.sendValue} sent (node:v8 deserialize). Throws ShmError ENOTSUP
   * when it was written in the other engine's format (Bun vs Deno/Node) or node:v8 is missing, and
   * EINVAL when the bytes are not a valid value (the deserializer's own error as `cause`).
   */
  value(): unknown;
  /** Returns the slot to the channel. Idempotent until the slot is received again. */
  release(): void;
}

/** A block lent to a sender: write `bytes` in place, then `send(length)` or `discard()`. */
export interface Loan extends Disposable {
  /** The whole slot (`slotSize` bytes), zero-copy. Empty after send() or discard(). */
  readonly bytes: Uint8Array;
  /** Publishes the first `length` bytes as one message. */
  send(length: number): void;
  /** Gives the block back unsent. Idempotent; also what `[Symbol.dispose]` does if not sent. */
  discard(): void;
}

/** Byte offsets of the channel header fields (from the channel start); docs/layout/channel.md. */
export const CHANNEL = {
  slots: 64,
  slotSize: 68,
  mode: 72,
  entrySize: 76,
  blockStride: 80,
  procsOffset: 88,
  readyOffset: 96,
  tableOffset: 104,
  dataOffset: 112,
  reclaimed: 120,
  maxProcesses: 124,
  waiters: 128,
  wakeSeq: 132,
} as const;

const HEADER_SIZE = 192;
const ENTRY_SIZE = 8; // slot-table entry: length, state
const PROC_SIZE = 64; // participant entry
const DATA_ALIGN = 4096;
const MAX_SLOTS = 2 ** 24;
const MAX_SLOT_SIZE = 2 ** 32 - 1;
const MAX_PROCS = 256;
const DEFAULT_PROCS = 64;
const W_WAITERS = CHANNEL.waiters / 4;
const W_SEQ = CHANNEL.wakeSeq / 4;
const W_RECLAIMED = CHANNEL.reclaimed / 4;

// State words: 0 FREE, else phase << 30 | tag; a tag is (gen & GEN_MASK) << 8 | participant.
const FREE = 0;
const LOANED = 1;
const HELD = 2;
const QUEUED = 3;
const GEN_MASK = 0x3fffff;
const TAG_MASK = 0x3fffffff;

// Participant entry words (i32 index within the entry).
const P_GEN = 2;
const P_OP = 3;
const P_PARKED = 4;

// The ready ring's words this file reads directly (waiting, and the orphan scan of R1b).
const RW_TAIL = RING.tail / 4;
const RW_HEAD = RING.head / 4;
const RW_CW = RING.consWaiters / 4;
const RW_CS = RING.consSleep / 4;
const RW_PW = RING.prodWaiters / 4; // spsc-ordered: the sender parks on the ring's head
const RW_PS = RING.prodSleep / 4;

/** While blocked on a full channel, look for slots of dead processes this often (ms). */
const RECLAIM_EVERY_MS = 250;
/** Parked receivers and senders re-check at least this often (ms). */
const PARK_SLICE_MS = 50;
/** spsc-ordered tail (sender) and head (receiver) stores: plain (release on x86-64) or `Atomics.store` (ffi/mod.ts). */
const PLAIN_PUBLISH = plainPublish;
/** Blocking calls spin this long (ms) before parking. */
const SPIN_MS = 0.02;
const BAD_INDEX = 0xffffffff;
/** spsc-ordered: the length word of a discarded loan's block (the receiver skips it). */
const SKIP = 0xffffffff;
/**
 * spsc-ordered sender: at the first block of each group of 8 it writes one byte of each block of
 * the group after next (TOUCH_AHEAD blocks, free ones only) and one word of their slot-table line,
 * and one word of the ring line 16 positions ahead: the cache misses of those lines (the receiver
 * read them a lap ago) then overlap, instead of each send's seq_cst tail store waiting for one.
 */
const TOUCH_AHEAD = 16;
/** The keys of ChannelOptions (create, init, byteLength) and of ChannelOpenOptions (open, at, attach). */
const CREATE_KEYS = ["slots", "slotSize", "mode", "maxProcesses", "fileMode", "populate", "detach", "recvRun"] as const;
const OPEN_KEYS = ["populate", "detach", "recvRun"] as const;
/** The mode word of each mode. */
const MODE_NUM: Record<ChannelMode, number> = { "spsc": 0, "mpmc": 1, "spsc-ordered": 2 };
const MODE_NAME: readonly ChannelMode[] = ["spsc", "mpmc", "spsc-ordered"];
/**
 * Receive runs (spsc, the `recvRun` option, default 1): tryRecv/recv/tryRecvInto/recvInto dequeue
 * and claim up to that many ready messages at once (one op bracket and one head publish for the
 * run) and hand them out one by one. mpmc channels take one at a time, so a slow receiver never
 * sits on messages another could take.
 */
const MAX_RECV_RUN = 256;
/** Iterations of local work between two polls of an empty ready ring (see #pause; ~1.2 µs here). */
const PAUSE_ITERS = 256;
/**
 * Sender pacing: a sender waiting on a full channel polls the slot table, which is where the
 * receiver is freeing blocks; every poll takes that line away from it. The pause between polls
 * grows (x1.5, up to SPACE_MAX iterations, ~19 µs here: ~4.7 ns each on Deno and Bun) while polls
 * find nothing and shrinks when the first poll after a pause finds a block, so that the sender polls
 * about once per table line freed.
 */
const SPACE_MAX = 4096;
/**
 * The waiting sender's heuristics below apply to spsc channels, where one receiver frees blocks in
 * the order they were sent (the sender's cursor order). A blocking take first looks at this many
 * slots from its cursor (two table lines).
 */
const FIRST_SCAN = 16;
/** A sender waiting for a free slot re-scans the whole table every this many polls of its cursor slot. */
const SCAN_EVERY = 16;
/** ...and resumes only when the slot this far past its cursor is free as well (8 = one table line). */
const TAKE_AHEAD = 8;
/** spsc-ordered: a sender waiting for room resumes once this many blocks are free (at most slots / 4). */
const O_RESUME = 32;
/**
 * An spsc sender of a channel with at least this many slots claims the rest of a table line's free
 * blocks when it claims one (at most TAKE_AHEAD - 1 more, kept LOANED in a private stash) and
 * writes one byte of each: the data lines then move to its core together (their cache misses
 * overlap) instead of one full miss per send.
 */
const STASH_MIN_SLOTS = 64;

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/** The fault points of the channel (tests: SHMKIT_FAULT="<point>:<N>", see src/fault.ts). */
export const CHANNEL_FAULT_POINTS = [
  "channel.take.after_claim",
  "channel.send.after_write",
  "channel.send.after_queued",
  "channel.send.after_enqueue",
  "channel.recv.after_dequeue",
  "channel.recv.after_claim",
  "channel.release.before",
  "channel.reclaim.mid",
] as const;

const faultHit = faultHook("channel.");
const FAULT_ON = faultHit !== undefined;
const fault = (point: string): void => faultHit!(point);

const MY_IDENTITY = BigInt(PID) | (BigInt(START_TIME >= 0 ? START_TIME % 2 ** 32 : 0) << 32n);

/** True unless the identity's process is certainly gone (dead, zombie, or its pid was recycled). */
function identityAlive(pid: number, startLo: number): boolean {
  if (pid <= 0) return false;
  const st = sys.shmkit_proc_start_time(pid);
  if (st === -ERRNO.ESRCH) return false;
  if (st < 0) return true; // cannot tell: never rob
  if (st % 2 ** 32 !== startLo) return false;
  return processAlive(pid, st);
}

interface Layout {
  blockStride: number;
  procsOffset: number;
  readyOffset: number;
  tableOffset: number;
  dataOffset: number;
  byteLength: number;
}

interface Checked {
  slots: number;
  slotSize: number;
  mode: ChannelMode;
  procs: number;
}

function checkOptions(o: ChannelOptions, what: string): Checked {
  if (typeof o !== "object" || o === null) throw new TypeError(`${what}: options { slots, slotSize } are required`);
  checkKeys(o, CREATE_KEYS, what);
  const { slots, slotSize } = o;
  const mode = o.mode ?? "mpmc";
  const procs = o.maxProcesses ?? DEFAULT_PROCS;
  if (typeof slots !== "number" || !Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
    throw new RangeError(`${what}: slots must be an integer in 1..${MAX_SLOTS}, got ${String(slots)}`);
  }
  if (typeof slotSize !== "number" || !Number.isInteger(slotSize) || slotSize < 1 || slotSize > MAX_SLOT_SIZE) {
    throw new RangeError(`${what}: slotSize must be an integer in 1..${MAX_SLOT_SIZE}, got ${String(slotSize)}`);
  }
  if (mode !== "spsc" && mode !== "mpmc" && mode !== "spsc-ordered") {
    throw new TypeError(`${what}: mode must be "spsc", "mpmc" or "spsc-ordered", got ${String(mode)}`);
  }
  if (typeof procs !== "number" || !Number.isInteger(procs) || procs < 1 || procs > MAX_PROCS) {
    throw new RangeError(`${what}: maxProcesses must be an integer in 1..${MAX_PROCS}, got ${String(procs)}`);
  }
  checkDetach(o.detach, what);
  return { slots, slotSize, mode, procs };
}

function checkRecvRun(r: unknown, what: string): number {
  if (r === undefined) return 1;
  if (typeof r !== "number" || !Number.isInteger(r) || r < 1 || r > MAX_RECV_RUN) {
    throw new RangeError(`${what}: recvRun must be an integer in 1..${MAX_RECV_RUN}, got ${String(r)}`);
  }
  return r;
}

function checkDetach(d: unknown, what: string): void {
  if (d !== undefined && d !== "close" && d !== "message") {
    throw new TypeError(`${what}: detach must be "close" or "message", got ${String(d)}`);
  }
}

function layoutOf(slots: number, slotSize: number, procs: number): Layout {
  const blockStride = alignUp(slotSize, 64);
  const ringBytes = Ring.byteLength({ capacity: slots });
  const procsOffset = HEADER_SIZE;
  const readyOffset = alignUp(procsOffset + PROC_SIZE * procs, 64);
  const tableOffset = alignUp(readyOffset + ringBytes, 64);
  const dataOffset = alignUp(tableOffset + ENTRY_SIZE * slots, DATA_ALIGN);
  const byteLength = dataOffset + blockStride * slots;
  return { blockStride, procsOffset, readyOffset, tableOffset, dataOffset, byteLength };
}

/** Bytes of `s` in UTF-8 (lone surrogates count as U+FFFD, 3 bytes, as TextEncoder writes them). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function isShmError(e: unknown, code: string): boolean {
  return e instanceof ShmError && e.code === code;
}

// ---------------------------------------------------------------------------------------------
// Structured values (node:v8 serialize/deserialize), loaded on first use: Deno and Node write V8's
// format, Bun's node:v8 writes JavaScriptCore's. A structured message starts with one tag byte
// naming the format, so a reader of the other format fails with ENOTSUP instead of misreading.

interface V8Like {
  serialize(value: unknown): Uint8Array;
  deserialize(bytes: Uint8Array): unknown;
}

/** Tag byte of a structured message: "V" (V8: Deno, Node) or "J" (JavaScriptCore: Bun). */
const FORMAT_V8 = 0x56;
const FORMAT_JSC = 0x4a;
const MY_FORMAT = native.runtime === "bun" ? FORMAT_JSC : FORMAT_V8;
const FORMAT_NAMES: Record<number, string> = {
  [FORMAT_V8]: "V8's format (Deno, Node)",
  [FORMAT_JSC]: "JavaScriptCore's format (Bun)",
};
let v8module: V8Like | null | undefined;

function v8(what: string): V8Like {
  if (v8module === undefined) {
    const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    try {
      const m = p?.getBuiltinModule?.("node:v8") as Partial<V8Like> | undefined;
      v8module = m && typeof m.serialize === "function" && typeof m.deserialize === "function" ? m as V8Like : null;
    } catch {
      v8module = null;
    }
  }
  if (v8module === null) {
    throw new ShmError("ENOTSUP", `${what}: this runtime has no node:v8 serialize/deserialize (ENOTSUP)`);
  }
  return v8module;
}

function readValue(bytes: Uint8Array): unknown {
  const what = "Cannot read a structured message";
  if (bytes.length === 0 || (bytes[0] !== FORMAT_V8 && bytes[0] !== FORMAT_JSC)) {
    throw new ShmError("EINVAL", `${what}: it was not sent by sendValue (EINVAL)`);
  }
  if (bytes[0] !== MY_FORMAT) {
    throw new ShmError(
      "ENOTSUP",
      `${what}: it is in ${FORMAT_NAMES[bytes[0]]}, which this runtime's node:v8 cannot read (ENOTSUP)`,
    );
  }
  const de = v8(what);
  try {
    return de.deserialize(bytes.subarray(1));
  } catch (e) {
    // A message is another process's bytes: whatever the engine's deserializer says about bad ones
    // (Error, TypeError, SyntaxError, each engine its own) is one ShmError, the engine's error its cause.
    throw new ShmError(
      "EINVAL",
      `${what}: it is not a valid structured value (${String((e as Error)?.message ?? e)}) (EINVAL)`,
      { cause: e },
    );
  }
}

/**
 * Zero-copy messages between processes: fixed-size slots, a slot table claimed by compare-and-swap
 * and a ring of ready slots in one shared segment.
 *
 * Role contract: in "mpmc" mode any number of processes (and Channel objects, up to maxProcesses
 * at once) may send and receive at once; in "spsc" mode at most one process sends and at most one
 * receives at a time (others get ShmError EBUSY from the ready ring's roles). Messages arrive in
 * the order their senders enqueued them. A Channel object belongs to one thread. `send` blocks
 * while every slot is in use (backpressure); `recv` parks while the channel is empty; neither
 * spins for long when idle. A process that dies anywhere in a send, receive or release does not
 * leak its slots: a sender that finds the channel full reclaims them (also {@linkcode reclaim}).
 * Messages already queued outlive their sender.
 *
 * Fast paths: {@linkcode tryRecvBatch}/{@linkcode recvBatch} drain what is queued with one ring
 * operation per burst and hand each message to a callback; {@linkcode trySendBatch}/
 * {@linkcode sendBatch} queue several payloads with one ring operation. Neither allocates per
 * message. Views are detached when the Channel object closes (`{ detach: "close" }`, the default)
 * or, with `{ detach: "message" }`, also per message (slower: an FFI call per message).
 *
 * @example
 * ```ts
 * import { Channel } from "./mod.ts";
 * using ch = Channel.create(`doc-ch-${Date.now()}`, { slots: 8, slotSize: 1024 });
 * ch.send("hello");
 * ch.send(new Uint8Array([1, 2, 3]));
 * using m = ch.recv();
 * console.assert(m.text() === "hello");
 * const loan = ch.loan();
 * loan.bytes.set([9, 9]);
 * loan.send(2);
 * ch.recv().release();
 * using m2 = ch.recv({ timeout: 100 });
 * console.assert(m2.bytes[0] === 9);
 * ch.unlink();
 * ```
 */
export class Channel implements Disposable {
  /** Number of slots: how many messages may be in flight (queued, loaned or held) at once. */
  readonly slots: number;
  /** The largest message in bytes. */
  readonly slotSize: number;
  /** "spsc", "mpmc" or "spsc-ordered". */
  readonly mode: ChannelMode;
  /** Participant entries: Channel objects that may send or receive at once. */
  readonly maxProcesses: number;
  /** Where the channel starts in its segment. */
  readonly byteOffset: number;
  #seg: SharedMemory;
  #owned: boolean;
  #strict: boolean;
  #ready: Ring;
  #readyOff: number; // mapping offset of the ready ring
  #dataOffset: number; // mapping offset of block 0
  #blockStride: number;
  #base: number; // address of the mapping in this process
  #what: string;
  #closed = false;
  #hdr: Int32Array; // channel header words
  #tab: Int32Array; // slot table: length at 2i, state at 2i + 1
  #lenU: Uint32Array; // the same words unsigned
  #procs32: Int32Array; // participant table as words (16 per entry)
  #procs64: BigInt64Array; // the same as u64 (8 per entry)
  #rctl: Int32Array; // the ready ring's header words
  #rslots: Uint32Array; // the ready ring's slot words
  #rmask: number;
  #rspsc: boolean;
  #dataBuf: ArrayBuffer; // one view over every block, made once, detached by close()
  #data32: Int32Array; // the same blocks as words (src/copy.ts copyIn)
  #data: Uint8Array;
  #slotViews: (Uint8Array | undefined)[]; // whole-slot views of #dataBuf, made once each
  #msgs: (FastMessage | undefined)[]; // reusable Message per slot (detach "close")
  #live: (StrictMessage | LoanImpl | undefined)[]; // per-message windows and loans, by slot
  #p = -1; // our participant entry
  #tag = 0; // our tag; 0 until the first send or receive
  #loanedWord = 0;
  #heldWord = 0;
  #queuedWord = 0;
  #opW = 0; // index of our op word in #procs32
  #op = 0; // our op counter (even between brackets)
  #cursor = 0; // where the next take looks first
  #lastReclaim = 0;
  #ridx: Uint32Array; // received indices: pending ones are [#pHead, #pTail)
  #pHead = 0;
  #pTail = 0;
  #sidx: Uint32Array; // indices being sent by a batch
  #subs: (Uint32Array | undefined)[]; // #sidx.subarray(0, k), made once each
  #asyncParked = 0; // sendAsync waits of this object counted in waiters
  #asyncReady = 0; // recvAsync waits of this object counted in the ring's consWaiters
  #deferred: ShmError | undefined; // EBADHDR found in a receive run, thrown once its good messages are out
  #bursts = false; // a dequeue succeeded here: the ring's consumer role is ours
  #ahead: number; // TAKE_AHEAD - 1, at most slots - 1
  #oResume: number; // spsc-ordered: free blocks a sender waiting for room waits for (O_RESUME, at most slots / 4)
  #stash = new Uint32Array(TAKE_AHEAD); // blocks claimed ahead (LOANED to us): [#stHead, #stTail)
  #stHead = 0;
  #stTail = 0;
  #stashOn: boolean; // spsc with at least STASH_MIN_SLOTS slots
  #firstScan: number; // FIRST_SCAN on spsc; mpmc scans every slot (blocks come free in any order)
  #scanEvery: number; // SCAN_EVERY on spsc; 1 on mpmc
  #run: number; // how many ready messages a single receive claims at once (recvRun on spsc, else 1)
  // spsc-ordered (see docs/layout/channel.md): position p of the ready ring holds the block of
  // message p; blocks follow each other in ring order; head moves when messages are released.
  #ord: boolean;
  #oProd = false; // this object holds the ready ring's producer role
  #oT = 0; // sender: the published tail (ours alone once we hold the role)
  #oN = 0; // sender: positions reserved after #oT (loans and sends not published yet)
  #oB = 0; // sender: the block of position #oT
  #oHc = 0; // sender: cached head (<= the shared head)
  #oDone: Uint8Array; // sender, per block: 0 reserved, 1 written (to publish), 2 discarded (skip record)
  #oCons = false; // this object holds the ready ring's consumer role
  #oNext = 0; // receiver: the next position to hand out
  #oHead = 0; // receiver: every position before it is released (published as the ring's head)
  #oPub = 0; // receiver: the head last stored
  #oTc = 0; // receiver: cached tail
  #oRun = 0; // receiver: #oNext at the last refill (the run since then, for the pacer)
  #oPacing = false; // receiver: inside a blocking receive (tryRecv never waits)
  #oPos: Uint32Array; // receiver, per block: the position it was handed out at
  #oHeld: Uint8Array; // receiver, per block: 1 while handed out and not released
  #oRel: Uint8Array; // receiver, per ring slot (position & mask): released ahead of #oHead
  #sendWhat: string; // error prefixes, made once (no string per message)
  #recvWhat: string;
  #loanWhat: string;

  private constructor(seg: SharedMemory, off: number, owned: boolean, opts: ChannelOpenOptions) {
    this.#seg = seg;
    this.#owned = owned;
    this.byteOffset = off;
    const name = seg.name === null ? "(anonymous)" : seg.name;
    this.#what = `channel "${name}"${off ? ` at ${off}` : ""}`;
    this.#sendWhat = `Cannot send on ${this.#what}`;
    this.#recvWhat = `Cannot receive on ${this.#what}`;
    this.#loanWhat = `Cannot loan a slot of ${this.#what}`;
    const what = `Cannot open ${this.#what}`;
    checkDetach(opts.detach, what);
    const recvRun = checkRecvRun(opts.recvRun, what);
    this.#strict = opts.detach === "message";
    if (seg.size > MAX_VIEW_BYTES) {
      throw new ShmError("ENOTSUP", `${what}: the segment is larger than this runtime's ArrayBuffer limit (ENOTSUP)`);
    }
    const buf = seg.buffer;
    const h = readHeader(buf, off, "channel", what, undefined, undefined, HEADER_SIZE);
    const bad = (why: string): ShmError => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    if (h.headerSize !== HEADER_SIZE) {
      throw bad(`header size ${h.headerSize}, expected ${HEADER_SIZE} (channel layout 2; layout 1 had 128)`);
    }
    const dv = new DataView(buf, off, HEADER_SIZE);
    const slots = dv.getUint32(CHANNEL.slots, true);
    const slotSize = dv.getUint32(CHANNEL.slotSize, true);
    const mode = dv.getUint32(CHANNEL.mode, true);
    const procs = dv.getUint32(CHANNEL.maxProcesses, true);
    if (slots < 1 || slots > MAX_SLOTS) throw bad(`impossible slot count ${slots}`);
    if (slotSize < 1) throw bad("slot size 0");
    if (mode > 2) throw bad(`unknown mode ${mode}`);
    if (procs < 1 || procs > MAX_PROCS) throw bad(`impossible participant count ${procs}`);
    if (dv.getUint32(CHANNEL.entrySize, true) !== ENTRY_SIZE) {
      throw bad(`slot table entry size ${dv.getUint32(CHANNEL.entrySize, true)}, expected ${ENTRY_SIZE}`);
    }
    const lay = layoutOf(slots, slotSize, procs);
    if (h.byteLength !== lay.byteLength) {
      throw bad(`byteLength ${h.byteLength} does not match ${slots} slots of ${slotSize} bytes (${lay.byteLength})`);
    }
    if (off + lay.byteLength > seg.size) throw bad(`${lay.byteLength} bytes at ${off} do not fit the segment`);
    const u64 = (at: number): number => Number(dv.getBigUint64(at, true));
    if (
      u64(CHANNEL.blockStride) !== lay.blockStride || u64(CHANNEL.procsOffset) !== lay.procsOffset ||
      u64(CHANNEL.readyOffset) !== lay.readyOffset ||
      u64(CHANNEL.tableOffset) !== lay.tableOffset || u64(CHANNEL.dataOffset) !== lay.dataOffset
    ) {
      throw bad("its block stride or participant, ring, table or data offsets do not match its sizes");
    }
    this.slots = slots;
    this.#pacer = new Pacer(slots);
    this.slotSize = slotSize;
    this.maxProcesses = procs;
    this.mode = MODE_NAME[mode];
    this.#ord = mode === 2;
    this.#readyOff = off + lay.readyOffset;
    this.#ready = Ring.at(seg, this.#readyOff);
    const rmode = this.mode === "mpmc" ? "mpmc" : "spsc";
    if (this.#ready.capacity !== slots || this.#ready.mode !== rmode) {
      this.#ready.close();
      throw bad(`its ready ring is ${this.#ready.mode} of ${this.#ready.capacity}, expected ${rmode} of ${slots}`);
    }
    const n = new DataView(buf, this.#readyOff, RING_HEADER_SIZE).getUint32(RING.slotCount, true); // checked by Ring.at
    this.#rmask = n - 1;
    this.#rspsc = rmode === "spsc";
    this.#run = this.#rspsc ? Math.min(recvRun, slots) : 1;
    this.#ahead = this.#rspsc ? Math.min(TAKE_AHEAD, slots) - 1 : 0;
    this.#oResume = Math.max(1, Math.min(O_RESUME, slots >> 2));
    this.#stashOn = this.mode === "spsc" && slots >= STASH_MIN_SLOTS;
    this.#firstScan = this.#rspsc ? FIRST_SCAN : slots;
    this.#scanEvery = this.#rspsc ? SCAN_EVERY : 1;
    this.#rctl = new Int32Array(buf, this.#readyOff, RING_HEADER_SIZE / 4);
    this.#rslots = new Uint32Array(buf, this.#readyOff + RING_HEADER_SIZE, this.#rspsc ? n : 2 * n);
    this.#dataOffset = off + lay.dataOffset;
    this.#blockStride = lay.blockStride;
    this.#base = seg.mapping.address;
    this.#hdr = new Int32Array(buf, off, HEADER_SIZE / 4);
    this.#tab = new Int32Array(buf, off + lay.tableOffset, 2 * slots);
    this.#lenU = new Uint32Array(buf, off + lay.tableOffset, 2 * slots);
    this.#procs32 = new Int32Array(buf, off + lay.procsOffset, (PROC_SIZE / 4) * procs);
    this.#procs64 = new BigInt64Array(buf, off + lay.procsOffset, (PROC_SIZE / 8) * procs);
    // One view over every block (one FFI call per Channel object), detached by close().
    this.#dataBuf = seg.mapping.view(
      this.#dataOffset,
      lay.blockStride * slots,
      `Cannot view the blocks of ${this.#what}`,
    );
    this.#data = new Uint8Array(this.#dataBuf);
    this.#data32 = new Int32Array(this.#dataBuf);
    this.#slotViews = new Array(slots);
    this.#msgs = new Array(slots);
    this.#live = new Array(slots);
    this.#ridx = new Uint32Array(slots);
    this.#sidx = new Uint32Array(slots);
    this.#subs = new Array(slots + 1);
    this.#oDone = new Uint8Array(this.#ord ? slots : 0);
    this.#oPos = new Uint32Array(this.#ord ? slots : 0);
    this.#oHeld = new Uint8Array(this.#ord ? slots : 0);
    this.#oRel = new Uint8Array(this.#ord ? n : 0);
    if (opts.populate ?? true) sys.shmkit_madvise(seg.mapping.id, off, lay.byteLength, 1); // best effort
  }

  /**
   * Bytes a channel with these options occupies (for placing one inside a larger segment).
   *
   * @param options slots, slotSize and maxProcesses
   * @returns the byte length, a multiple of 64
   * @throws {RangeError} for a slot count or size out of range
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * console.assert(Channel.byteLength({ slots: 4, slotSize: 64 }) > 4 * 64);
   * ```
   */
  static byteLength(options: ChannelOptions): number {
    const { slots, slotSize, procs } = checkOptions(options, "Cannot size a channel");
    return layoutOf(slots, slotSize, procs).byteLength;
  }

  /**
   * Formats a channel at `byteOffset` of `segment` (overwriting what is there) and attaches it.
   * The returned Channel does not own the segment: closing it leaves the segment mapped.
   *
   * @param segment the segment to place the channel in
   * @param byteOffset a multiple of 64 with room for {@linkcode Channel.byteLength} bytes
   * @param options slots, slotSize, mode, maxProcesses, detach
   * @returns the new channel
   * @throws {RangeError} for bad options or a channel that does not fit
   * @example
   * ```ts
   * import { Channel, SharedMemory } from "./mod.ts";
   * const opts = { slots: 4, slotSize: 256 };
   * using seg = SharedMemory.create(null, Channel.byteLength(opts) + 64);
   * using ch = Channel.init(seg, 64, opts);
   * ch.send("placed");
   * using again = Channel.at(seg, 64);
   * console.assert(again.recv().text() === "placed");
   * seg.unlink();
   * ```
   */
  static init(segment: SharedMemory, byteOffset: number, options: ChannelOptions): Channel {
    const what = `Cannot create a channel in ${segment.name === null ? "anonymous memory" : `"${segment.name}"`}`;
    const { slots, slotSize, mode, procs } = checkOptions(options, what);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % 64 !== 0) {
      throw new RangeError(`${what}: byteOffset ${byteOffset} must be a non-negative multiple of 64`);
    }
    const lay = layoutOf(slots, slotSize, procs);
    if (byteOffset + lay.byteLength > segment.size) {
      throw new RangeError(`${what}: ${lay.byteLength} bytes at ${byteOffset} do not fit in ${segment.size} bytes`);
    }
    const buf = segment.buffer;
    const modeNum = MODE_NUM[mode];
    writeHeader(buf, byteOffset, "channel", HEADER_SIZE, lay.byteLength, modeNum);
    const dv = new DataView(buf, byteOffset, HEADER_SIZE);
    dv.setUint32(CHANNEL.slots, slots, true);
    dv.setUint32(CHANNEL.slotSize, slotSize, true);
    dv.setUint32(CHANNEL.mode, modeNum, true);
    dv.setUint32(CHANNEL.entrySize, ENTRY_SIZE, true);
    dv.setBigUint64(CHANNEL.blockStride, BigInt(lay.blockStride), true);
    dv.setBigUint64(CHANNEL.procsOffset, BigInt(lay.procsOffset), true);
    dv.setBigUint64(CHANNEL.readyOffset, BigInt(lay.readyOffset), true);
    dv.setBigUint64(CHANNEL.tableOffset, BigInt(lay.tableOffset), true);
    dv.setBigUint64(CHANNEL.dataOffset, BigInt(lay.dataOffset), true);
    dv.setUint32(CHANNEL.reclaimed, 0, true);
    dv.setUint32(CHANNEL.maxProcesses, procs, true);
    for (let i = CHANNEL.waiters; i < HEADER_SIZE; i++) dv.setUint8(i, 0);
    new Uint8Array(buf, byteOffset + lay.procsOffset, PROC_SIZE * procs).fill(0);
    Ring.init(segment, byteOffset + lay.readyOffset, { capacity: slots, mode: mode === "mpmc" ? "mpmc" : "spsc" })
      .close();
    new Uint8Array(buf, byteOffset + lay.tableOffset, ENTRY_SIZE * slots).fill(0); // C1: every block FREE
    publishReady(buf, byteOffset); // everything above is visible to whoever sees "ready"
    return new Channel(segment, byteOffset, false, options);
  }

  /**
   * Attaches the channel at `byteOffset` of `segment` and validates its header. Does not own the
   * segment.
   *
   * @param segment the segment holding the channel
   * @param byteOffset where {@linkcode Channel.init} placed it
   * @param options populate, detach
   * @returns the channel
   * @throws {ShmError} EBADHDR when no valid channel is there
   * @example
   * ```ts
   * import { Channel, SharedMemory } from "./mod.ts";
   * using seg = SharedMemory.create(null, Channel.byteLength({ slots: 2, slotSize: 64 }));
   * Channel.init(seg, 0, { slots: 2, slotSize: 64 }).close();
   * using ch = Channel.at(seg, 0);
   * console.assert(ch.slots === 2);
   * seg.unlink();
   * ```
   */
  static at(segment: SharedMemory, byteOffset: number, options: ChannelOpenOptions = {}): Channel {
    checkKeys(options, OPEN_KEYS, "Cannot open channel");
    return new Channel(segment, byteOffset, false, options);
  }

  /**
   * Creates a named channel exclusively (a segment of exactly {@linkcode Channel.byteLength}).
   *
   * @param name the segment name ("jobs" or "/jobs")
   * @param options slots, slotSize, mode ("mpmc" by default), maxProcesses, fileMode, detach
   * @returns the channel, owning its segment
   * @throws {ShmError} EEXIST when the name is taken, EINVAL for a bad name
   * @throws {RangeError} for a slot count or size out of range
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-create-${Date.now()}`, { slots: 16, slotSize: 4096, mode: "spsc" });
   * console.assert(ch.mode === "spsc");
   * ch.unlink();
   * ```
   */
  static create(name: string | null, options: ChannelOptions): Channel {
    const { slots, slotSize, procs } = checkOptions(options, createWhat("channel", name));
    const size = layoutOf(slots, slotSize, procs).byteLength;
    const seg = renamed(
      () => SharedMemory.create(name, size, options.fileMode === undefined ? {} : { mode: options.fileMode }),
      "Cannot create channel",
      name,
    );
    return placeOrRelease(seg, true, () => {
      const ch = Channel.init(seg, 0, options);
      ch.#owned = true;
      return ch;
    });
  }

  /**
   * Opens an existing named channel and validates it.
   *
   * @param name the segment name
   * @param options populate (default true), detach
   * @returns the channel, owning its mapping
   * @throws {ShmError} ENOENT when there is no such segment, EBADHDR when it is not a valid channel
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * const name = `doc-open-${Date.now()}`;
   * using a = Channel.create(name, { slots: 2, slotSize: 64 });
   * using b = Channel.open(name);
   * a.send("x");
   * console.assert(b.recv().text() === "x");
   * a.unlink();
   * ```
   */
  static open(name: string, options: ChannelOpenOptions = {}): Channel {
    checkKeys(options, OPEN_KEYS, "Cannot open channel");
    const seg = renamed(() => SharedMemory.open(name), "Cannot open channel", name);
    return Channel.#openOwned(seg, 0, options);
  }

  /**
   * Reopens a channel from its {@linkcode handle}, in any process.
   *
   * @param handle what {@linkcode handle} returned (possibly through JSON)
   * @param options populate (default true), detach
   * @returns the channel, owning its mapping
   * @throws {ShmError} EINVAL for a malformed handle, ENOENT, EBADHDR
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using a = Channel.create(`doc-attach-${Date.now()}`, { slots: 2, slotSize: 64 });
   * using b = Channel.attach(JSON.parse(JSON.stringify(a.handle())));
   * b.send("y");
   * console.assert(a.recv().text() === "y");
   * a.unlink();
   * ```
   */
  static attach(handle: ChannelHandle, options: ChannelOpenOptions = {}): Channel {
    checkHandle(handle, "shmkit.channel");
    checkKeys(options, OPEN_KEYS, "Cannot attach channel");
    const off = handle.byteOffset;
    if (!Number.isSafeInteger(off) || off < 0) {
      throw new ShmError(
        "EINVAL",
        `Cannot attach shmkit.channel: byteOffset ${String(off)} is not a valid offset (EINVAL)`,
      );
    }
    const seg = SharedMemory.attach(handle.segment);
    return Channel.#openOwned(seg, off, options);
  }

  static #openOwned(seg: SharedMemory, off: number, options: ChannelOpenOptions): Channel {
    return placeOrRelease(seg, false, () => new Channel(seg, off, true, options));
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Messages queued now and not yet received (a snapshot). */
  get size(): number {
    this.#open();
    const ctl = this.#rctl;
    if (this.#ord) {
      const q = this.#oQueued();
      return q < 0 ? 0 : Math.min(q, this.slots);
    }
    const n = (Atomics.load(ctl, RW_TAIL) - Atomics.load(ctl, RW_HEAD)) | 0;
    // Plus what this object claimed in a receive run and has not handed out yet.
    return Math.min((n < 0 ? 0 : n) + this.#pTail - this.#pHead, this.slots);
  }

  /** Slots free for sending now (a snapshot: counts FREE state words). */
  get available(): number {
    this.#open();
    if (this.#ord) { // blocks not in flight (sent and not released) and not reserved by this object
      const used = (Atomics.load(this.#rctl, RW_TAIL) - Atomics.load(this.#rctl, RW_HEAD)) >>> 0;
      return Math.max(0, this.slots - Math.min(used, this.slots) - this.#oN);
    }
    let n = this.#stTail - this.#stHead; // claimed ahead by this object: free for its sends
    for (let i = 0; i < this.slots; i++) if (Atomics.load(this.#tab, 2 * i + 1) === FREE) n++;
    return n;
  }

  #open(): void {
    if (this.#closed) throw new ShmError("ECLOSED", `Cannot use ${this.#what}: it is closed (ECLOSED)`);
  }

  #tooBig(n: number): RangeError {
    return new RangeError(
      `Cannot send on ${this.#what}: the message is ${n} bytes, longer than the slot size of ${this.slotSize} bytes`,
    );
  }

  #corrupt(doing: string, why: string): ShmError {
    return new ShmError("EBADHDR", `Cannot ${doing} ${this.#what}: ${why}; the segment is corrupt (EBADHDR)`);
  }

  // What can be checked before a slot is taken. A string of more UTF-16 units than slotSize never
  // fits (every unit is at least one UTF-8 byte); shorter ones are checked by encodeInto.
  #checkData(data: Uint8Array | string): void {
    if (typeof data === "string") {
      if (data.length > this.slotSize) throw this.#tooBig(utf8Length(data));
    } else if (data instanceof Uint8Array) {
      if (data.length > this.slotSize) throw this.#tooBig(data.length);
    } else {
      throw new TypeError(`Cannot send on ${this.#what}: data must be a Uint8Array or a string, got ${typeof data}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Participants, slot claims and the queue step

  /** Claims a participant entry (first send or receive of this object). */
  #register(): void {
    const ids = this.#procs64;
    const w32 = this.#procs32;
    for (let attempt = 0; attempt < 2; attempt++) {
      for (let p = 0; p < this.maxProcesses; p++) {
        const at = (PROC_SIZE / 8) * p;
        // P1: claim a free entry (seq_cst CAS 0 -> our identity); pairs with P3 in reclaim/close.
        if (Atomics.load(ids, at) === 0n && Atomics.compareExchange(ids, at, 0n, MY_IDENTITY) === 0n) {
          const base = (PROC_SIZE / 4) * p;
          // P2: a new tenure (seq_cst add) before any state word carries our tag.
          const gen = (Atomics.add(w32, base + P_GEN, 1) + 1) & GEN_MASK;
          // O0: continue the entry's op counter from an even value (a dead tenant may have left it odd).
          let op = Atomics.load(w32, base + P_OP);
          if (op & 1) op = (op + 1) | 0;
          Atomics.store(w32, base + P_OP, op);
          this.#op = op;
          this.#opW = base + P_OP;
          this.#p = p;
          this.#tag = (gen << 8) | p;
          this.#loanedWord = ((LOANED << 30) | this.#tag) | 0;
          this.#heldWord = ((HELD << 30) | this.#tag) | 0;
          this.#queuedWord = ((QUEUED << 30) | this.#tag) | 0;
          this.#cursor = (8 * p) % this.slots;
          return;
        }
      }
      this.reclaim(); // dead processes may be sitting on entries
    }
    throw new ShmError(
      "EBUSY",
      `Cannot use ${this.#what}: all ${this.maxProcesses} participant entries are held by live Channel objects (EBUSY)`,
    );
  }

  // Takes a FREE block (T1), scanning at most `limit` words from the cursor; -1 when none is free.
  #tryTake(limit: number = this.slots): number {
    if (this.#ord) return this.#oTake();
    if (this.#stHead !== this.#stTail) return this.#stash[this.#stHead++ & (TAKE_AHEAD - 1)];
    if (this.#tag === 0) this.#register();
    const st = this.#tab;
    const n = this.slots;
    const want = this.#loanedWord;
    let i = this.#cursor;
    const m = limit < n ? limit : n;
    for (let k = 0; k < m; k++) {
      const w = 2 * i + 1;
      // T1: relaxed peek, then claim with a CAS (seq_cst; acquires the bytes the last owner
      // wrote); pairs with F1 in release and R1 in reclaim.
      if (st[w] === FREE && Atomics.compareExchange(st, w, FREE, want) === FREE) {
        if (FAULT_ON) fault("channel.take.after_claim");
        const next = i + 1 === n ? 0 : i + 1;
        this.#cursor = next;
        if (this.#stashOn && (next & (TAKE_AHEAD - 1)) !== 0) this.#claimAhead(next);
        return i;
      }
      i = i + 1 === n ? 0 : i + 1;
    }
    return -1;
  }

  // T1 for the FREE blocks from `j` to the end of its table line (the line is in our cache after
  // the claim before it), stopping at the first one that is not free; each claimed block gets one
  // byte written so that its data line's transfer to this core starts now, overlapping the others.
  #claimAhead(j: number): void {
    const st = this.#tab;
    const want = this.#loanedWord;
    const data = this.#data;
    const stride = this.#blockStride;
    let t = this.#stTail;
    do {
      const w = 2 * j + 1;
      if (st[w] !== FREE || Atomics.compareExchange(st, w, FREE, want) !== FREE) break;
      data[j * stride] = 0; // a block LOANED to us: nobody else reads or writes it
      this.#stash[t++ & (TAKE_AHEAD - 1)] = j;
      j++;
    } while ((j & (TAKE_AHEAD - 1)) !== 0 && j < this.slots);
    this.#stTail = t;
    this.#cursor = j === this.slots ? 0 : j;
  }

  // Gives back the blocks claimed ahead (close()): CAS LOANED -> FREE each.
  #dropStash(): void {
    while (this.#stHead !== this.#stTail) this.#unloan(this.#stash[this.#stHead++ & (TAKE_AHEAD - 1)]);
  }

  // A waiting sender's cheap retry: only the cursor slot (in FIFO use the next one to come free),
  // with a whole-table scan every SCAN_EVERY polls (slots released out of order). Polling one word
  // keeps the sender off the table lines the receiver is writing.
  #poll(n: number): number {
    if (this.#ord) {
      // Hysteresis, as below: resume once a run of blocks is free rather than one, so that a sender
      // faster than its receiver does not reload the head (a line the receiver writes) per message.
      const used = this.#oReloadHead();
      if (used <= this.slots && this.slots - used - this.#oN < this.#oResume) return -1;
      return this.#oTake();
    }
    if (n % this.#scanEvery === 0) return this.#tryTake();
    const i = this.#cursor;
    const w = 2 * i + 1;
    const st = this.#tab;
    // Hysteresis: wait until the slot TAKE_AHEAD - 1 past the cursor is free too (relaxed peek), so
    // the sender resumes a table line after the receiver has left it, not one slot behind it.
    const a = i + this.#ahead;
    const ahead = 2 * (a >= this.slots ? a - this.slots : a) + 1;
    if (st[ahead] === FREE && st[w] === FREE && Atomics.compareExchange(st, w, FREE, this.#loanedWord) === FREE) {
      if (FAULT_ON) fault("channel.take.after_claim"); // T1, as in #tryTake
      this.#cursor = i + 1 === this.slots ? 0 : i + 1;
      return i;
    }
    return -1;
  }

  // tryX on a full channel: reclaims at most every RECLAIM_EVERY_MS, then tries once more.
  #tryTakeOrReclaim(): number {
    const i = this.#tryTake();
    if (i >= 0) return i;
    const now = Date.now();
    if (now - this.#lastReclaim < RECLAIM_EVERY_MS) return -1;
    this.#lastReclaim = now;
    return this.reclaim() > 0 ? this.#tryTake() : -1;
  }

  // Gives back a LOANED block of ours (send failed before queueing, or a discarded loan).
  #unloan(i: number): void {
    if (this.#ord) return this.#oUnloan(i);
    if (Atomics.compareExchange(this.#tab, 2 * i + 1, this.#loanedWord, FREE) !== this.#loanedWord) {
      throw this.#corrupt("give back a slot of", `slot ${i} is no longer loaned to this object`);
    }
    if (readFlag(this.#hdr, W_WAITERS) !== 0) this.#wakeSenders();
  }

  #wakeSenders(): void {
    Atomics.add(this.#hdr, W_SEQ, 1); // W3: bump the futex word (seq_cst); pairs with W1 in #take
    futexWake(this.#seg.mapping, this.byteOffset + CHANNEL.wakeSeq);
  }

  // F1: returns a HELD block of ours to FREE.
  #releaseSlot(i: number): void {
    if (this.#ord) {
      this.#oRelease(i);
      this.#oPublishHead();
      return;
    }
    this.#free(i);
    // W2: a parked sender registered in waiters before its last re-check; pairs with W1.
    if (readFlag(this.#hdr, W_WAITERS) !== 0) this.#wakeSenders();
  }

  // F1 without the wake (a batch wakes parked senders once, after its last release).
  #free(i: number): void {
    if (FAULT_ON) fault("channel.release.before");
    // F1: CAS HELD|tag -> FREE (seq_cst; releases our reads of the block); pairs with T1.
    if (Atomics.compareExchange(this.#tab, 2 * i + 1, this.#heldWord, FREE) !== this.#heldWord) {
      throw this.#corrupt("release a slot of", `slot ${i} is no longer held by this object`);
    }
  }

  #slotView(i: number): Uint8Array {
    const v = this.#slotViews[i];
    if (v !== undefined) return v;
    const off = i * this.#blockStride;
    return (this.#slotViews[i] = this.#data.subarray(off, off + this.slotSize));
  }

  // Copies data into LOANED block i and stores its length; gives the block back and throws
  // RangeError when a string does not fit (nothing is sent).
  #fill(i: number, data: Uint8Array | string): void {
    let n: number;
    if (typeof data === "string") {
      const r = encoder.encodeInto(data, this.#slotView(i)); // straight into the slot
      if (r.read !== data.length) {
        this.#unloan(i);
        throw this.#tooBig(utf8Length(data));
      }
      n = r.written;
    } else {
      n = data.length;
      copyIn(this.#data, this.#data32, i * this.#blockStride, data, n);
    }
    this.#lenU[2 * i] = n; // published by the QUEUED store below (Q1)
    if (FAULT_ON) fault("channel.send.after_write");
  }

  // Q1 for one block: op odd, QUEUED, enqueue, op even.
  #queueOne(i: number): void {
    if (this.#ord) {
      this.#oDone[i] = 1;
      this.#oPublish();
      return;
    }
    const st = this.#tab;
    const w32 = this.#procs32;
    // O1: bracket open (odd): a plain store, ordered before the seq_cst QUEUED store below (that
    // store is a release on every target), which is all r2 in reclaim needs: whoever sees QUEUED
    // sees the odd op. O2 stays seq_cst (it must not pass the enqueue).
    w32[this.#opW] = this.#op = (this.#op + 1) | 0;
    let ok = false;
    try {
      // Q1: LOANED -> QUEUED (seq_cst store by the owner; publishes length and bytes).
      Atomics.store(st, 2 * i + 1, this.#queuedWord);
      if (FAULT_ON) fault("channel.send.after_queued");
      ok = this.#ready.tryEnqueue(i); // C3: never full
      if (FAULT_ON) fault("channel.send.after_enqueue");
    } finally {
      // Not enqueued (corrupt ring or EBUSY): the block is ours to give back.
      if (!ok) Atomics.compareExchange(st, 2 * i + 1, this.#queuedWord, FREE);
      // O2: bracket closed (seq_cst store, even).
      Atomics.store(w32, this.#opW, this.#op = (this.#op + 1) | 0);
    }
    if (!ok) throw this.#corrupt("send on", "its ready ring is full while a slot was free");
  }

  // Q1 for #sidx[0, k): one bracket, one enqueueBurst.
  #queueMany(k: number): void {
    if (this.#ord) {
      for (let j = 0; j < k; j++) this.#oDone[this.#sidx[j]] = 1;
      this.#oPublish();
      return;
    }
    const st = this.#tab;
    const w32 = this.#procs32;
    const idx = this.#sidx;
    const q = this.#queuedWord;
    const values = this.#subs[k] ??= idx.subarray(0, k);
    w32[this.#opW] = this.#op = (this.#op + 1) | 0; // O1 (plain: see #queueOne)
    let m = 0;
    try {
      for (let j = 0; j < k; j++) Atomics.store(st, 2 * idx[j] + 1, q); // Q1
      if (FAULT_ON) fault("channel.send.after_queued");
      m = this.#ready.enqueueBurst(values); // C3: never short
      if (FAULT_ON) fault("channel.send.after_enqueue");
    } finally {
      for (let j = m; j < k; j++) Atomics.compareExchange(st, 2 * idx[j] + 1, q, FREE);
      Atomics.store(w32, this.#opW, this.#op = (this.#op + 1) | 0); // O2
    }
    if (m < k) throw this.#corrupt("send on", "its ready ring is full while slots were free");
  }

  // D1: dequeues up to `max` indices and claims them; they become pending [#pHead, #pTail).
  #burst(max: number, defer = false): number {
    if (this.#tag === 0) this.#register();
    const st = this.#tab;
    const w32 = this.#procs32;
    const idx = this.#ridx;
    const held = this.#heldWord;
    const slots = this.slots;
    let k = 0;
    let bad = -1;
    let why = "";
    // O1 (plain, as in #queueOne): the ring's seq_cst head store publishes it with the dequeue.
    w32[this.#opW] = this.#op = (this.#op + 1) | 0;
    try {
      if (max === 1) { // the single-message path: tryDequeue skips the burst's argument checks
        const v = this.#ready.tryDequeue();
        if (v !== undefined) idx[k++] = v;
      } else k = this.#ready.dequeueBurst(idx, max);
      this.#bursts = true; // the ring took us as its consumer
      if (FAULT_ON && k > 0) fault("channel.recv.after_dequeue");
      for (let j = 0; j < k; j++) {
        const i = idx[j]; // read once, bounds-checked, used as the local
        if (i >= slots) {
          why = `its ready ring returned slot ${i} of ${slots}`;
          bad = j;
          idx[j] = BAD_INDEX;
          continue;
        }
        const w = 2 * i + 1;
        const s = Atomics.load(st, w);
        // D1: claim QUEUED -> HELD|tag with a CAS from the exact word (seq_cst; acquires the
        // length and bytes of Q1). A second copy of the index (or any other state) fails.
        if ((s >>> 30) !== QUEUED || Atomics.compareExchange(st, w, s, held) !== s) {
          why = `slot ${i} came off its ready ring while ${(s >>> 30) === HELD ? "held by a receiver" : "not queued"}`;
          bad = j;
          idx[j] = BAD_INDEX;
        }
      }
      if (FAULT_ON && k > 0) fault("channel.recv.after_claim");
    } finally {
      Atomics.store(w32, this.#opW, this.#op = (this.#op + 1) | 0); // O2
    }
    if (bad >= 0) {
      let g = 0;
      for (let j = 0; j < k; j++) if (idx[j] !== BAD_INDEX) idx[g++] = idx[j];
      this.#pHead = 0;
      this.#pTail = g; // the good ones stay pending for the next receive
      const err = this.#corrupt("receive on", why);
      // A run taken for single receives hands out the good messages first and reports the bad
      // index on the receive after them, as if they had been dequeued one at a time.
      if (defer && g > 0) {
        this.#deferred = err;
        return g;
      }
      throw err;
    }
    this.#pHead = 0;
    this.#pTail = k;
    return k;
  }

  // Reads the length of a HELD block of ours (C2), releasing it when corrupt.
  #lengthOf(i: number): number {
    const len = this.#lenU[2 * i]; // read once, check, use the local
    if (len > this.slotSize) {
      this.#releaseSlot(i);
      throw this.#corrupt("receive on", `slot ${i} claims ${len} bytes, more than the slot size ${this.slotSize}`);
    }
    return len;
  }

  #sPace = PAUSE_ITERS; // a full channel's sender: pause iterations between polls (adaptive)
  #pacer: Pacer; // the receiver's poll pacing (spsc, spsc-ordered); aims at runs of at most slots / 4
  #paceHead = 0; // the ready ring's head when this receiver last ran dry

  // A blocking receive found the ready ring dry: src/pace.ts (the sender publishes a run instead
  // of handing the ring's tail and slot lines over to this core on every poll).
  #paceDry(): void {
    if (!this.#ord && (!this.#rspsc || !this.#bursts)) return;
    const h = this.#ord ? this.#oNext : this.#ready._spscHead(); // messages taken so far (mod 2^32)
    const got = (h - this.#paceHead) >>> 0;
    this.#paceHead = h;
    this.#pacer.dry(got);
  }

  // Between two polls of an empty ready ring: stay off the sender's lines for a moment (~1.2 µs of
  // local work, PAUSE_ITERS) so it can publish a run instead of handing each line over per message.
  #pause(): void {
    localWork(PAUSE_ITERS);
  }

  #throwDeferred(): never {
    const e = this.#deferred!;
    this.#deferred = undefined;
    throw e;
  }

  // The next pending or queued index, claimed; -1 when the channel is empty. spsc claims a run of
  // up to #run ready messages at once (one op bracket, one head publish) and hands them out in
  // order; an empty spsc ring is seen without opening a bracket, from the ring's cached tail (the
  // head is ours alone; the shared tail, the sender's line, is read only once the cache is used up).
  #next(): number {
    if (this.#ord) return this.#oNextBlock();
    if (this.#pHead === this.#pTail) {
      if (this.#deferred !== undefined) this.#throwDeferred();
      if (this.#rspsc && this.#bursts && this.#ready._spscReady() === 0) {
        return -1;
      }
      if (this.#burst(this.#run, true) === 0) return -1;
    }
    return this.#ridx[this.#pHead++];
  }

  // A strict-mode window of its own over block i.
  #window(i: number, length: number): ArrayBuffer {
    const off = this.#dataOffset + i * this.#blockStride; // i < slots and length <= slotSize: checked
    if (length === 0) return new ArrayBuffer(0);
    if (this.#owned) return native.view(this.#base + off, length);
    return this.#seg.mapping.view(off, length, `Cannot view a message of ${this.#what}`);
  }

  #message(i: number): Message {
    const len = this.#lengthOf(i);
    if (this.#strict) {
      const m = new StrictMessage(this, i, this.#window(i, len));
      this.#live[i] = m;
      return m;
    }
    const m = this.#msgs[i] ??= new FastMessage(this, i);
    m._reset(len);
    return m;
  }

  /** @internal For tests: the receive pacer's current wait in nanoseconds (src/pace.ts). */
  _paceWait(): number {
    return this.#pacer.wait;
  }

  /** @internal FastMessage.bytes: the message's view (cached per slot and length). */
  _view(i: number, len: number): Uint8Array {
    return len === this.slotSize ? this.#slotView(i) : this.#slotView(i).subarray(0, len);
  }

  /** @internal Message.text: block i's first len bytes as UTF-8, without a view per message. */
  _text(i: number, len: number): string {
    const off = i * this.#blockStride;
    const d = this.#data;
    return off + len <= d.length ? decodeText(d, off, off + len) : ""; // detached by close(): ""
  }

  /** @internal Message.release. */
  _release(item: StrictMessage | FastMessage, i: number): void {
    if (this.#live[i] === item) this.#live[i] = undefined;
    if (this.#closed) return;
    this.#releaseSlot(i);
  }

  /** @internal Loan.discard. */
  _discard(loan: LoanImpl, i: number): void {
    if (this.#live[i] === loan) this.#live[i] = undefined;
    if (this.#closed) return;
    this.#unloan(i);
  }

  /** @internal Loan.send, before anything changes: the length must fit the slot. */
  _checkLoan(length: number): void {
    this.#open();
    if (Number.isInteger(length) && length > this.slotSize) throw this.#tooBig(length);
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(
        `Cannot send a loan of ${this.#what}: length must be an integer in 0..${this.slotSize}, got ${length}`,
      );
    }
  }

  /** @internal Loan.send, after the loan's view is done. */
  _loanPublish(loan: LoanImpl, i: number, length: number): void {
    if (this.#live[i] === loan) this.#live[i] = undefined;
    this.#lenU[2 * i] = length;
    this.#queueOne(i);
  }

  #lend(i: number): Loan {
    const bytes = this.#strict ? new Uint8Array(this.#window(i, this.slotSize)) : this.#slotView(i);
    const loan = new LoanImpl(this, i, bytes, this.#strict);
    this.#live[i] = loan;
    return loan;
  }

  // -------------------------------------------------------------------------------------------
  // spsc-ordered (docs/layout/channel.md): the ready ring's positions are the messages, position p
  // holds the block of message p, blocks follow each other in ring order. The sender publishes with
  // one tail store; the receiver frees with one head store; no slot-table state words, no CAS.

  // The sender's start: the ring's producer role, the published tail, the block after the last one
  // sent (a previous sender may have died with loans reserved: they were never published).
  #oClaimProducer(): void {
    this.#ready._role(true);
    const ctl = this.#rctl;
    const t = Atomics.load(ctl, RW_TAIL);
    const h = Atomics.load(ctl, RW_HEAD);
    if (((t - h) >>> 0) > this.slots) {
      throw this.#corrupt(
        "send on",
        `its ready ring's tail ${t >>> 0} is more than ${this.slots} past its head ${h >>> 0}`,
      );
    }
    const prev = this.#rslots[(t - 1) & this.#rmask]; // read once, checked, used as the local
    if (prev >= this.slots) throw this.#corrupt("send on", `its ready ring names block ${prev} of ${this.slots}`);
    this.#oT = t >>> 0;
    this.#oHc = h >>> 0;
    this.#oN = 0;
    this.#oB = prev + 1 === this.slots ? 0 : prev + 1;
    // Only this object sends now: a waiter count left by a dead sender would cost a check per release.
    Atomics.store(ctl, RW_PW, 0);
    this.#oProd = true;
  }

  // Reserves the next block in ring order; -1 when every block is in flight or reserved.
  #oTake(): number {
    if (!this.#oProd) this.#oClaimProducer();
    const slots = this.slots;
    if (((this.#oT + this.#oN - this.#oHc) >>> 0) >= slots) {
      const used = this.#oReloadHead();
      if (used > slots) {
        throw this.#corrupt("send on", `its ready ring's head ${this.#oHc} is ${used} behind its tail ${this.#oT}`);
      }
      if (used + this.#oN >= slots) return -1;
    }
    let b = this.#oB + this.#oN;
    if (b >= slots) b -= slots;
    this.#oN++;
    if ((b & 7) === 0 && slots - ((this.#oT + this.#oN - this.#oHc) >>> 0) >= 8 + TOUCH_AHEAD) this.#oTouch(b);
    this.#oDone[b] = 0;
    if (FAULT_ON) fault("channel.take.after_claim");
    return b;
  }

  // Pre-touch (TOUCH_AHEAD): blocks b+8 .. b+8+TOUCH_AHEAD-1 are free (the caller checked, with
  // the cached head), so are their slot-table entries and the ring positions up to 8+TOUCH_AHEAD
  // past the reserved ones: neither side reads them before the sender publishes them again.
  #oTouch(b: number): void {
    const slots = this.slots;
    const data = this.#data;
    const stride = this.#blockStride;
    for (let k = 8; k < 8 + TOUCH_AHEAD; k++) {
      let j = b + k;
      if (j >= slots) j -= slots;
      data[j * stride] = 0;
      if ((k & 7) === 0) this.#lenU[2 * j] = 0;
    }
    this.#rslots[(this.#oT + this.#oN + 15) & this.#rmask] = 0;
  }

  // Publishes the reserved blocks that are done, in order, up to the first one still loaned: one
  // value store each, then one tail store (the commit), then a wake if the receiver is parked.
  #oPublish(): void {
    const done = this.#oDone;
    const rs = this.#rslots;
    const mask = this.#rmask;
    const slots = this.slots;
    const n = this.#oN;
    const t = this.#oT;
    let b = this.#oB;
    let k = 0;
    while (k < n) {
      const d = done[b];
      if (d === 0) break;
      if (d === 2) this.#lenU[2 * b] = SKIP;
      rs[(t + k) & mask] = b;
      k++;
      b = b + 1 === slots ? 0 : b + 1;
    }
    if (k === 0) return;
    this.#oT = (t + k) >>> 0;
    this.#oN = n - k;
    this.#oB = b;
    // R1: the commit; pairs with A1. x86-64 keeps this store after the payload, length and ring
    // stores above (a release store); Atomics.store's xchg would also wait for their lines.
    if (PLAIN_PUBLISH) this.#rctl[RW_TAIL] = this.#oT | 0;
    else Atomics.store(this.#rctl, RW_TAIL, this.#oT | 0);
    if (FAULT_ON) fault("channel.send.after_enqueue");
    // W2. After a plain publish the check is not ordered after it anyway (the receiver's short
    // first wait, src/wait.ts futexWaitShortFirst, covers that), so it reads plainly too: on V8
    // Atomics.load is a builtin call (~12 ns per message; Deno +8-14 % in paired quick S2 runs).
    // Inline, not through a shared helper: helpers for the store and this read measured 2-4 %
    // lower on Deno in six paired S2 runs (noisy, but not risked on the hot path).
    const cw = PLAIN_PUBLISH ? this.#rctl[RW_CW] : readFlag(this.#rctl, RW_CW);
    if (cw !== 0 && Atomics.exchange(this.#rctl, RW_CS, 0) !== 0) {
      futexWake(this.#seg.mapping, this.#readyOff + RING.tail);
    }
  }

  // A reserved block not sent: the last reservation is simply undone; any other becomes a skip
  // record so the blocks after it still go out in order.
  #oUnloan(b: number): void {
    let last = this.#oB + this.#oN - 1;
    if (last >= this.slots) last -= this.slots;
    if (this.#oN > 0 && b === last && this.#oDone[b] === 0) {
      this.#oN--;
      return;
    }
    this.#oDone[b] = 2;
    this.#oPublish();
  }

  // Reloads the cached head (A2: acquire the receiver's releases); returns the blocks in flight,
  // unchecked (more than `slots` only when the counters are corrupt).
  #oReloadHead(): number {
    const h = Atomics.load(this.#rctl, RW_HEAD) >>> 0;
    this.#oHc = h;
    return (this.#oT - h) >>> 0;
  }

  // True when a block is free for this sender (reloads the head).
  #oRoom(): boolean {
    if (!this.#oProd) this.#oClaimProducer();
    return this.#oReloadHead() + this.#oN < this.slots;
  }

  // The sender parks on the ring's head until a release (the ring's W1 protocol, producer side).
  #oWaitRoom(left: number): void {
    this.#park(RW_HEAD, RW_PW, RW_PS, this.#roomNow, left);
  }

  #oWaitRoomAsync(left: number, signal: AbortSignal | undefined): Promise<void> {
    return this.#parkAsync(RW_HEAD, RW_PW, RW_PS, this.#roomNow, left, signal, true);
  }

  // spsc-ordered: messages sent and not handed out yet (from this object's next position when it
  // receives, else from the shared head), as a signed difference (negative only when corrupt).
  #oQueued(): number {
    const from = this.#oCons ? this.#oNext : Atomics.load(this.#rctl, RW_HEAD);
    return (Atomics.load(this.#rctl, RW_TAIL) - from) | 0;
  }

  #oClaimConsumer(): void {
    this.#ready._role(false);
    const h = Atomics.load(this.#rctl, RW_HEAD) >>> 0; // a dead receiver's unreleased messages come again
    this.#oNext =
      this.#oHead =
      this.#oPub =
      this.#oTc =
        h;
    this.#paceHead = h;
    this.#oHeld.fill(0);
    this.#oRel.fill(0);
    this.#oCons = true;
  }

  // The next message's block, marked held; -1 when none is queued. Skip records are released on
  // the way (at most one lap of them per call).
  #oNextBlock(): number {
    if (!this.#oCons) this.#oClaimConsumer();
    const slots = this.slots;
    for (let guard = 0; guard <= slots; guard++) {
      const p = this.#oNext;
      if (p === this.#oTc) {
        // Receive pacing on every refill, not only when dry: a receiver that keeps catching up
        // with a stream takes the tail line from the sender every few messages (a miss on each
        // of its tail stores); after short runs it waits a moment (src/pace.ts) to find longer ones.
        // Not when the sender is this object or another object of this thread (the ready ring's
        // producer role is held here): it cannot publish while we wait (send 32, receive 32 in a
        // loop waited up to 77 µs per refill).
        if (this.#oPacing && !this.#ready._producerHere()) this.#pacer.dry((p - this.#oRun) >>> 0);
        this.#oRun = p;
        const t = Atomics.load(this.#rctl, RW_TAIL) >>> 0; // A1: acquire the sender's writes
        const ahead = (t - this.#oHead) >>> 0;
        if (ahead > slots || ahead < ((p - this.#oHead) >>> 0)) {
          throw this.#corrupt("receive on", `its ready ring's tail ${t} is ${ahead | 0} past its head ${this.#oHead}`);
        }
        this.#oTc = t;
        if (p === t) {
          this.#oPublishHead(); // skips released on the way
          return -1;
        }
      }
      const b = this.#rslots[p & this.#rmask]; // read once, checked, used as the local
      this.#oNext = (p + 1) >>> 0;
      if (b >= slots || this.#oHeld[b] !== 0) {
        this.#oRetire(p);
        this.#oPublishHead();
        throw this.#corrupt(
          "receive on",
          b >= slots ? `its ready ring names block ${b} of ${slots}` : `block ${b} was sent again while held`,
        );
      }
      if (this.#lenU[2 * b] === SKIP) {
        this.#oRetire(p);
        continue;
      }
      this.#oPos[b] = p;
      this.#oHeld[b] = 1;
      if (FAULT_ON) fault("channel.recv.after_dequeue");
      return b;
    }
    this.#oPublishHead();
    return -1;
  }

  // Marks position p released and moves the local head over every released position from it.
  #oRetire(p: number): void {
    if (p !== this.#oHead) {
      this.#oRel[p & this.#rmask] = 1;
      return;
    }
    const rel = this.#oRel;
    const mask = this.#rmask;
    const end = this.#oNext;
    let h = (p + 1) >>> 0;
    while (h !== end && rel[h & mask] !== 0) {
      rel[h & mask] = 0;
      h = (h + 1) >>> 0;
    }
    this.#oHead = h;
  }

  // Release of a held block (F1 of this mode).
  #oRelease(b: number): void {
    if (FAULT_ON) fault("channel.release.before");
    if (this.#oHeld[b] === 0) throw this.#corrupt("release a slot of", `slot ${b} is not held by this object`);
    this.#oHeld[b] = 0;
    this.#oRetire(this.#oPos[b]);
  }

  // Stores the ring's head if it moved (R2: release of the blocks; pairs with A2), then wakes a
  // parked sender. On x86-64 the store is plain (a release store, as the sender's tail: on V8
  // Atomics.store is a builtin call and an xchg per release) and so is the wake check after it; a
  // check that misses a sender registering at that moment costs the sender its short first wait
  // (#park). Paired quick S2 runs of the message API: Node 20 +9-26 % (six pairs), Deno and Bun within noise.
  #oPublishHead(): void {
    if (this.#oHead === this.#oPub) return;
    this.#oPub = this.#oHead;
    const ctl = this.#rctl;
    if (PLAIN_PUBLISH) ctl[RW_HEAD] = this.#oHead | 0;
    else Atomics.store(ctl, RW_HEAD, this.#oHead | 0);
    // W2 of the ring's protocol: one wake per park (the sender asked with prodSleep).
    if ((PLAIN_PUBLISH ? ctl[RW_PW] : readFlag(ctl, RW_PW)) !== 0 && Atomics.exchange(ctl, RW_PS, 0) !== 0) {
      futexWake(this.#seg.mapping, this.#readyOff + RING.head);
    }
  }

  // The batch receive of this mode: each message to fn, released when fn returns (or throws), one
  // head store at the end.
  #oDrain(fn: BatchReceiver, max: number): number {
    let n = 0;
    try {
      while (n < max) {
        const b = this.#oNextBlock();
        if (b < 0) break;
        const len = this.#lengthOf(b); // a corrupt length: released, EBADHDR
        try {
          this.#deliver(fn, b, len);
        } finally {
          if (!this.#closed) this.#oRelease(b); // delivered, also when fn threw
        }
        n++;
      }
    } finally {
      if (!this.#closed) this.#oPublishHead();
    }
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Waiting

  // Takes a free block, parking on wakeSeq while none is free (reclaiming every RECLAIM_EVERY_MS).
  #take(options: WaitOptions | undefined, what: string): number {
    this.#open();
    const ms = timeoutOf(options, what);
    // First try: a short scan from the cursor. Slots come free in cursor order when the receiver
    // releases in order, so on a full channel a whole-table scan per message would read every
    // table line (the receiver's too) for nothing; the polls below scan it all every SCAN_EVERY.
    let i = this.#tryTake(this.#firstScan);
    if (i >= 0) return i;
    const start = performance.now();
    const spinEnd = start + SPIN_MS;
    let polls = 1;
    do {
      localWork(this.#sPace);
      if ((i = this.#poll(polls++)) >= 0) {
        // Sender pacing (see SPACE_MAX): found at the first poll, the wait may shrink.
        if (polls === 2 && this.#sPace > PAUSE_ITERS) this.#sPace -= this.#sPace >> 2;
        return i;
      }
      if (this.#sPace < SPACE_MAX) this.#sPace += this.#sPace >> 1;
    } while (performance.now() < spinEnd);
    const deadline = start + ms;
    if (this.#ord) {
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) throw timeoutError(what, ms);
        this.#oWaitRoom(left);
        this.#open();
        if ((i = this.#oTake()) >= 0) return i;
      }
    }
    const hdr = this.#hdr;
    const parked = (PROC_SIZE / 4) * this.#p + P_PARKED;
    let nextReclaim = 0;
    for (;;) {
      const now = performance.now();
      if (now >= nextReclaim) {
        nextReclaim = now + RECLAIM_EVERY_MS;
        if (this.reclaim() > 0 && (i = this.#tryTake()) >= 0) return i;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      // W1: read the futex word, register as a waiter (seq_cst), re-check, park; pairs with W2/W3.
      const seen = Atomics.load(hdr, W_SEQ);
      Atomics.add(this.#procs32, parked, 1);
      Atomics.add(hdr, W_WAITERS, 1);
      try {
        if ((i = this.#tryTake()) >= 0) return i;
        futexWait(this.#seg.mapping, this.byteOffset + CHANNEL.wakeSeq, seen, Math.min(left, PARK_SLICE_MS));
      } finally {
        Atomics.sub(hdr, W_WAITERS, 1);
        Atomics.sub(this.#procs32, parked, 1);
      }
      this.#open();
      if ((i = this.#tryTake()) >= 0) return i;
    }
  }

  async #takeAsync(options: WaitOptions | undefined, what: string): Promise<number> {
    this.#open();
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    let i = this.#tryTake();
    if (i >= 0) return i;
    const deadline = performance.now() + ms;
    if (this.#ord) {
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) throw timeoutError(what, ms);
        await this.#oWaitRoomAsync(left, signal);
        if (this.#closed) throw new ShmError("ECLOSED", `${what}: it was closed (ECLOSED)`);
        if ((i = this.#oTake()) >= 0) return i;
      }
    }
    const hdr = this.#hdr;
    const parked = (PROC_SIZE / 4) * this.#p + P_PARKED;
    let nextReclaim = 0;
    for (;;) {
      const now = performance.now();
      if (now >= nextReclaim) {
        nextReclaim = now + RECLAIM_EVERY_MS;
        if (this.reclaim() > 0 && (i = this.#tryTake()) >= 0) return i;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      const seen = Atomics.load(hdr, W_SEQ); // W1 (see #take)
      Atomics.add(this.#procs32, parked, 1);
      Atomics.add(hdr, W_WAITERS, 1);
      this.#asyncParked++;
      try {
        if ((i = this.#tryTake()) >= 0) return i;
        await waitAsync(
          this.#seg.mapping,
          this.byteOffset + CHANNEL.wakeSeq,
          seen,
          Math.min(left, PARK_SLICE_MS),
          signal,
        );
      } finally {
        if (!this.#closed) { // close() already withdrew this wait
          this.#asyncParked--;
          Atomics.sub(hdr, W_WAITERS, 1);
          Atomics.sub(this.#procs32, parked, 1);
        }
      }
      if (this.#closed) throw new ShmError("ECLOSED", `${what}: it was closed (ECLOSED)`);
      if ((i = this.#tryTake()) >= 0) return i;
    }
  }

  #readyEmpty(): boolean {
    if (this.#ord) {
      if (this.#oCons && this.#oNext !== this.#oTc) return false; // cached, not handed out yet
      return this.#oQueued() <= 0;
    }
    if (this.#pHead !== this.#pTail) return false;
    const ctl = this.#rctl;
    return ((Atomics.load(ctl, RW_TAIL) - Atomics.load(ctl, RW_HEAD)) | 0) <= 0;
  }

  // Parks until the ready ring may hold something, or `left` ms pass (the ring's W1 protocol:
  // read tail, register in consWaiters, ask for a wake, re-check, futex-wait on tail).
  #waitReady(left: number): void {
    this.#park(RW_TAIL, RW_CW, RW_CS, this.#readyNow, left);
  }

  #waitReadyAsync(left: number, signal: AbortSignal | undefined): Promise<void> {
    return this.#parkAsync(RW_TAIL, RW_CW, RW_CS, this.#readyNow, left, signal, false);
  }

  #readyNow = (): boolean => !this.#readyEmpty(); // made once: no closure per park
  #roomNow = (): boolean => this.#oRoom();

  // The ready ring's W1 protocol on one of its counters (`word`: tail for a receiver, head for an
  // spsc-ordered sender): read it, count this waiter, ask for a wake, re-check, futex-wait on it.
  #park(word: number, waitersW: number, sleepW: number, ready: () => boolean, left: number): void {
    const ctl = this.#rctl;
    const seen = Atomics.load(ctl, word);
    Atomics.add(ctl, waitersW, 1);
    Atomics.store(ctl, sleepW, 1);
    try {
      if (ready()) return;
      const off = this.#readyOff + 4 * word;
      const slice = Math.min(left, PARK_SLICE_MS);
      // An spsc ready ring (modes 1 and 2; mode 2 parks senders on it too): a short first wait, a
      // re-check, then the rest (src/wait.ts): its counters are published plainly on x86-64
      // (src/ring.ts PLAIN_PUBLISH; mode 2's own stores), so a wake check may miss this park.
      if (this.#rspsc) futexWaitShortFirst(this.#seg.mapping, off, seen, slice, ready);
      else futexWait(this.#seg.mapping, off, seen, slice);
    } finally {
      Atomics.sub(ctl, waitersW, 1);
    }
  }

  // #park without blocking the event loop; the wait is counted in #asyncParked (a sender) or
  // #asyncReady (a receiver) so that close() can withdraw it.
  async #parkAsync(
    word: number,
    waitersW: number,
    sleepW: number,
    ready: () => boolean,
    left: number,
    signal: AbortSignal | undefined,
    sender: boolean,
  ): Promise<void> {
    const ctl = this.#rctl;
    const seen = Atomics.load(ctl, word);
    Atomics.add(ctl, waitersW, 1);
    Atomics.store(ctl, sleepW, 1);
    if (sender) this.#asyncParked++;
    else this.#asyncReady++;
    try {
      if (ready()) return;
      const off = this.#readyOff + 4 * word;
      const slice = Math.min(left, PARK_SLICE_MS);
      // As #park (the short first wait is a timer tick at least here).
      if (this.#rspsc) {
        await waitAsyncShortFirst(this.#seg.mapping, off, seen, slice, () => this.#closed || ready(), signal);
      } else await waitAsync(this.#seg.mapping, off, seen, slice, signal);
    } finally {
      if (!this.#closed) { // close() already withdrew this wait
        if (sender) this.#asyncParked--;
        else this.#asyncReady--;
        Atomics.sub(ctl, waitersW, 1);
      }
    }
  }

  // The next claimed index, parking while the channel is empty (bounded by the timeout).
  #nextBlocking(options: WaitOptions | undefined, what: string): number {
    this.#oPacing = true;
    let i = this.#next();
    this.#oPacing = false;
    if (i >= 0) return i;
    const ms = timeoutOf(options, what);
    this.#paceDry();
    if ((i = this.#next()) >= 0) return i;
    const start = performance.now();
    const spinEnd = start + SPIN_MS;
    do {
      this.#pause();
      if ((i = this.#next()) >= 0) return i;
    } while (performance.now() < spinEnd);
    const deadline = start + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      this.#waitReady(left);
      this.#open();
      if ((i = this.#next()) >= 0) return i;
    }
  }

  async #nextAsync(options: WaitOptions | undefined, what: string): Promise<number> {
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    let i = this.#next();
    if (i >= 0) return i;
    const deadline = performance.now() + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      await this.#waitReadyAsync(left, signal);
      if (this.#closed) throw new ShmError("ECLOSED", `${what}: it was closed (ECLOSED)`);
      if ((i = this.#next()) >= 0) return i;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends a copy of `data` if a slot is free now. A string is encoded straight into the slot.
   *
   * @param data bytes, or a string sent as UTF-8
   * @returns false when every slot is in use
   * @throws {RangeError} when the message is longer than slotSize (nothing is sent)
   * @throws {ShmError} ECLOSED after close()
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-try-${Date.now()}`, { slots: 1, slotSize: 16 });
   * console.assert(ch.trySend("a") === true);
   * console.assert(ch.trySend("b") === false);
   * ch.unlink();
   * ```
   */
  trySend(data: Uint8Array | string): boolean {
    this.#open();
    this.#checkData(data);
    const i = this.#tryTakeOrReclaim();
    if (i < 0) return false;
    this.#fill(i, data);
    this.#queueOne(i);
    return true;
  }

  // send() of bytes on an spsc-ordered channel, the per-message hot path in one method: #checkData,
  // #take, #fill and #queueOne without their string and mode branches (V8 does not inline those
  // calls here). A method of its own so that send() stays small enough to inline into callers.
  #oSendBytes(data: Uint8Array, options: WaitOptions | undefined): void {
    const n = data.length;
    if (n > this.slotSize) throw this.#tooBig(n);
    if (options !== undefined) timeoutOf(options, this.#sendWhat);
    let b = this.#oTake();
    if (b < 0) b = this.#take(options, this.#sendWhat);
    copyIn(this.#data, this.#data32, b * this.#blockStride, data, n);
    this.#lenU[2 * b] = n;
    if (FAULT_ON) fault("channel.send.after_write");
    this.#oDone[b] = 1;
    this.#oPublish();
  }

  /**
   * Sends a copy of `data`, blocking while the channel is full (slots of dead processes are
   * reclaimed meanwhile).
   *
   * @param data bytes, or a string sent as UTF-8
   * @param options timeout in ms
   * @throws {RangeError} when the message is longer than slotSize (nothing is sent)
   * @throws {ShmError} ETIMEDOUT, ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-send-${Date.now()}`, { slots: 4, slotSize: 64 });
   * ch.send(JSON.stringify({ n: 1 }), { timeout: 1000 });
   * console.assert((ch.recv().json() as { n: number }).n === 1);
   * ch.unlink();
   * ```
   */
  send(data: Uint8Array | string, options?: WaitOptions): void {
    this.#open();
    if (this.#ord && data instanceof Uint8Array) {
      this.#oSendBytes(data, options);
      return;
    }
    this.#checkData(data);
    const i = this.#take(options, this.#sendWhat);
    this.#fill(i, data);
    this.#queueOne(i);
  }

  /**
   * Sends a copy of `data` without blocking the event loop while the channel is full.
   *
   * @param data bytes, or a string sent as UTF-8
   * @param options timeout in ms, signal to abort
   * @returns a promise that resolves once the message is queued
   * @throws {RangeError} when the message is longer than slotSize
   * @throws {ShmError} ETIMEDOUT, ECLOSED; rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-sendasync-${Date.now()}`, { slots: 4, slotSize: 64 });
   * await ch.sendAsync("later");
   * console.assert((await ch.recvAsync()).text() === "later");
   * ch.unlink();
   * ```
   */
  async sendAsync(data: Uint8Array | string, options?: WaitOptions): Promise<void> {
    this.#open();
    this.#checkData(data);
    const i = await this.#takeAsync(options, this.#sendWhat);
    this.#fill(i, data);
    this.#queueOne(i);
  }

  // Sends items[from..] while slots are free: one queue bracket and one ring burst. Returns the
  // count sent. A payload that does not fit gives back every slot this call took (none of this
  // call's items is sent) and throws RangeError.
  #sendFrom(items: readonly (Uint8Array | string)[], from: number): number {
    const n = Math.min(items.length - from, this.slots);
    const idx = this.#sidx;
    let k = 0;
    try {
      while (k < n) {
        const i = this.#tryTake();
        if (i < 0) break;
        this.#fill(i, items[from + k]); // on RangeError it gave i back
        idx[k++] = i;
      }
    } catch (e) {
      for (let j = k - 1; j >= 0; j--) this.#unloan(idx[j]); // newest first (spsc-ordered: undone, no skip records)
      throw e;
    }
    if (k > 0) this.#queueMany(k);
    return k;
  }

  #checkItems(items: readonly (Uint8Array | string)[], what: string): void {
    if (!Array.isArray(items)) throw new TypeError(`${what}: items must be an array of Uint8Array or string`);
    for (let j = 0; j < items.length; j++) this.#checkData(items[j]);
  }

  /**
   * Sends as many of `items` (from the start, in order) as there are free slots now, with one
   * ring operation for all of them and no allocation per message.
   *
   * @param items payloads: bytes, or strings sent as UTF-8
   * @returns how many were sent (0 when every slot is in use)
   * @throws {RangeError} when a payload is longer than slotSize (none of this call's items is sent)
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-trysendbatch-${Date.now()}`, { slots: 2, slotSize: 16 });
   * console.assert(ch.trySendBatch(["a", "b", "c"]) === 2);
   * ch.unlink();
   * ```
   */
  trySendBatch(items: readonly (Uint8Array | string)[]): number {
    this.#open();
    this.#checkItems(items, this.#sendWhat);
    if (items.length === 0) return 0;
    const k = this.#sendFrom(items, 0);
    if (k > 0) return k;
    const i = this.#tryTakeOrReclaim();
    if (i < 0) return 0;
    this.#fill(i, items[0]);
    this.#queueOne(i);
    return 1 + this.#sendFrom(items, 1);
  }

  /**
   * Sends every item in order, blocking while the channel is full; items go out in bursts of as
   * many as there are free slots.
   *
   * @param items payloads: bytes, or strings sent as UTF-8
   * @param options timeout in ms (for the whole call)
   * @throws {RangeError} when a payload is longer than slotSize (checked before anything is sent
   * for Uint8Array and long strings; otherwise the items before it are sent)
   * @throws {ShmError} ETIMEDOUT (some items may have been sent), ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-sendbatch-${Date.now()}`, { slots: 4, slotSize: 16 });
   * ch.sendBatch(["x", "y"], { timeout: 1000 });
   * console.assert(ch.size === 2);
   * ch.unlink();
   * ```
   */
  sendBatch(items: readonly (Uint8Array | string)[], options?: WaitOptions): void {
    this.#open();
    const what = this.#sendWhat;
    this.#checkItems(items, what);
    const ms = timeoutOf(options, what);
    const deadline = performance.now() + ms;
    let sent = 0;
    while (sent < items.length) {
      sent += this.#sendFrom(items, sent);
      if (sent === items.length) return;
      const left = deadline - performance.now();
      const i = this.#take({ timeout: Math.max(0, left) }, what);
      this.#fill(i, items[sent]);
      this.#queueOne(i);
      sent++;
    }
  }

  /**
   * Sends every item in order without blocking the event loop while the channel is full.
   *
   * @param items payloads: bytes, or strings sent as UTF-8
   * @param options timeout in ms (for the whole call), signal to abort
   * @returns a promise that resolves once every item is queued
   * @throws {RangeError} as {@linkcode sendBatch}
   * @throws {ShmError} ETIMEDOUT, ECLOSED; rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-sendbatchasync-${Date.now()}`, { slots: 4, slotSize: 16 });
   * await ch.sendBatchAsync(["x", "y", "z"]);
   * console.assert(ch.size === 3);
   * ch.unlink();
   * ```
   */
  async sendBatchAsync(items: readonly (Uint8Array | string)[], options?: WaitOptions): Promise<void> {
    this.#open();
    const what = this.#sendWhat;
    this.#checkItems(items, what);
    const ms = timeoutOf(options, what);
    const deadline = performance.now() + ms;
    let sent = 0;
    while (sent < items.length) {
      sent += this.#sendFrom(items, sent);
      if (sent === items.length) return;
      const left = deadline - performance.now();
      const i = await this.#takeAsync({ timeout: Math.max(0, left), signal: options?.signal }, what);
      this.#fill(i, items[sent]);
      this.#queueOne(i);
      sent++;
    }
  }

  // Serializes `value` with node:v8 behind its format tag.
  #serialize(value: unknown): Uint8Array {
    const what = this.#sendWhat;
    const body = v8(what).serialize(value);
    if (body.length + 1 > this.slotSize) throw this.#tooBig(body.length + 1);
    return body;
  }

  // Writes a serialized value into LOANED block i (tag byte first) and stores its length.
  #fillValue(i: number, body: Uint8Array): void {
    const off = i * this.#blockStride;
    this.#data[off] = MY_FORMAT;
    this.#data.set(body, off + 1);
    this.#lenU[2 * i] = body.length + 1;
  }

  /**
   * Sends a structured value (node:v8 serialize: Map, Set, Date, typed arrays, cycles...) if a
   * slot is free now; the receiver reads it with {@linkcode Message.value}. Deno and Node share
   * V8's format; Bun writes JavaScriptCore's, which they cannot read (and vice versa): such a
   * message gives ShmError ENOTSUP on `value()`. Slower than JSON for small plain objects (the
   * serializer, not the channel: see bench S2).
   *
   * @param value what to send
   * @returns false when every slot is in use
   * @throws {RangeError} when the serialized value does not fit a slot
   * @throws {ShmError} ENOTSUP when this runtime has no node:v8; ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-trysendvalue-${Date.now()}`, { slots: 2, slotSize: 256 });
   * ch.trySendValue({ when: new Date(0), tags: new Set(["a"]) });
   * using m = ch.recv();
   * const v = m.value() as { when: Date; tags: Set<string> };
   * console.assert(v.when instanceof Date && v.tags.has("a"));
   * ch.unlink();
   * ```
   */
  trySendValue(value: unknown): boolean {
    this.#open();
    const body = this.#serialize(value);
    const i = this.#tryTakeOrReclaim();
    if (i < 0) return false;
    this.#fillValue(i, body);
    this.#queueOne(i);
    return true;
  }

  /**
   * Sends a structured value (see {@linkcode trySendValue}), blocking while the channel is full.
   *
   * @param value what to send
   * @param options timeout in ms
   * @throws {RangeError} when the serialized value does not fit a slot
   * @throws {ShmError} ETIMEDOUT, ENOTSUP, ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-sendvalue-${Date.now()}`, { slots: 2, slotSize: 256 });
   * ch.sendValue(new Map([["k", 1]]), { timeout: 1000 });
   * using m = ch.recv();
   * console.assert((m.value() as Map<string, number>).get("k") === 1);
   * ch.unlink();
   * ```
   */
  sendValue(value: unknown, options?: WaitOptions): void {
    this.#open();
    const body = this.#serialize(value);
    const i = this.#take(options, this.#sendWhat);
    this.#fillValue(i, body);
    this.#queueOne(i);
  }

  /**
   * Lends a free slot to write a message in place, if one is free now.
   *
   * @returns the loan, or undefined when every slot is in use
   * @throws {ShmError} ECLOSED after close()
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-tryloan-${Date.now()}`, { slots: 1, slotSize: 8 });
   * const loan = ch.tryLoan()!;
   * loan.bytes[0] = 42;
   * loan.send(1);
   * console.assert(ch.recv().bytes[0] === 42);
   * ch.unlink();
   * ```
   */
  tryLoan(): Loan | undefined {
    this.#open();
    const i = this.#tryTakeOrReclaim();
    return i < 0 ? undefined : this.#lend(i);
  }

  /**
   * Lends a free slot to write a message in place, blocking while the channel is full.
   *
   * @param options timeout in ms
   * @returns the loan: write `bytes`, then `send(length)` or `discard()`
   * @throws {ShmError} ETIMEDOUT, ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-loan-${Date.now()}`, { slots: 1, slotSize: 1 << 20 });
   * const loan = ch.loan({ timeout: 1000 });
   * loan.bytes.fill(7);
   * loan.send(loan.bytes.length);
   * ch.unlink();
   * ```
   */
  loan(options?: WaitOptions): Loan {
    return this.#lend(this.#take(options, this.#loanWhat));
  }

  /**
   * Lends a free slot without blocking the event loop while the channel is full.
   *
   * @param options timeout in ms, signal to abort
   * @returns a promise of the loan
   * @throws {ShmError} ETIMEDOUT, ECLOSED; rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-loanasync-${Date.now()}`, { slots: 1, slotSize: 16 });
   * const loan = await ch.loanAsync();
   * loan.discard();
   * ch.unlink();
   * ```
   */
  async loanAsync(options?: WaitOptions): Promise<Loan> {
    return this.#lend(await this.#takeAsync(options, this.#loanWhat));
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  /**
   * Receives the next message if one is queued now. On an spsc channel opened with `recvRun` > 1
   * this claims a run of up to that many ready messages at once (one ring publish) and hands them
   * out one by one from this object; {@linkcode close} frees claimed ones not handed out yet.
   *
   * @returns the message (call `release()` when done), or undefined when the channel is empty
   * @throws {ShmError} ECLOSED; EBADHDR for a corrupt slot index or length, or an index the ready
   * ring holds twice (the second copy is refused: one block never makes two live Messages)
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-tryrecv-${Date.now()}`, { slots: 2, slotSize: 16 });
   * console.assert(ch.tryRecv() === undefined);
   * ch.send("z");
   * const m = ch.tryRecv()!;
   * console.assert(m.text() === "z");
   * m.release();
   * ch.unlink();
   * ```
   */
  tryRecv(): Message | undefined {
    this.#open();
    const i = this.#next();
    return i < 0 ? undefined : this.#message(i);
  }

  /**
   * Receives the next message, parking (no spinning beyond ~20 µs) while the channel is empty.
   *
   * @param options timeout in ms
   * @returns the message; call `release()` (or `using`) when done with it
   * @throws {ShmError} ETIMEDOUT, ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-recv-${Date.now()}`, { slots: 2, slotSize: 16 });
   * ch.send("now");
   * using m = ch.recv({ timeout: 1000 });
   * console.assert(m.bytes.length === 3);
   * ch.unlink();
   * ```
   */
  recv(options?: WaitOptions): Message {
    this.#open();
    return this.#message(this.#nextBlocking(options, this.#recvWhat));
  }

  /**
   * Receives the next message without blocking the event loop.
   *
   * @param options timeout in ms, signal to abort
   * @returns a promise of the message
   * @throws {ShmError} ETIMEDOUT, ECLOSED; rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-recvasync-${Date.now()}`, { slots: 2, slotSize: 16 });
   * setTimeout(() => ch.send("hi"), 10);
   * using m = await ch.recvAsync({ timeout: 5000 });
   * console.assert(m.text() === "hi");
   * ch.unlink();
   * ```
   */
  async recvAsync(options?: WaitOptions): Promise<Message> {
    this.#open();
    return this.#message(await this.#nextAsync(options, this.#recvWhat));
  }

  #checkTarget(target: Uint8Array): void {
    if (!(target instanceof Uint8Array) || target.length < this.slotSize) {
      throw new RangeError(
        `Cannot receive on ${this.#what}: the target must be a Uint8Array of at least the slot size ${this.slotSize} bytes`,
      );
    }
  }

  #copyOut(i: number, target: Uint8Array): number {
    const len = this.#lengthOf(i);
    const off = i * this.#blockStride;
    target.set(this.#data.subarray(off, off + len));
    this.#releaseSlot(i);
    return len;
  }

  /**
   * Copies the next message into `target` and releases its slot at once, if one is queued now.
   *
   * @param target where to copy; must hold at least slotSize bytes
   * @returns the message length, or -1 when the channel is empty
   * @throws {RangeError} when target is shorter than slotSize
   * @throws {ShmError} ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-into-${Date.now()}`, { slots: 2, slotSize: 16 });
   * const buf = new Uint8Array(ch.slotSize);
   * console.assert(ch.tryRecvInto(buf) === -1);
   * ch.send("abc");
   * console.assert(ch.tryRecvInto(buf) === 3);
   * ch.unlink();
   * ```
   */
  tryRecvInto(target: Uint8Array): number {
    this.#open();
    this.#checkTarget(target);
    const i = this.#next();
    return i < 0 ? -1 : this.#copyOut(i, target);
  }

  /**
   * Copies the next message into `target` and releases its slot, parking while the channel is
   * empty.
   *
   * @param target where to copy; must hold at least slotSize bytes
   * @param options timeout in ms
   * @returns the message length
   * @throws {RangeError} when target is shorter than slotSize
   * @throws {ShmError} ETIMEDOUT, ECLOSED, EBADHDR
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-recvinto-${Date.now()}`, { slots: 2, slotSize: 16 });
   * ch.send(new Uint8Array([5, 6]));
   * const buf = new Uint8Array(16);
   * console.assert(ch.recvInto(buf, { timeout: 1000 }) === 2 && buf[1] === 6);
   * ch.unlink();
   * ```
   */
  recvInto(target: Uint8Array, options?: WaitOptions): number {
    this.#open();
    this.#checkTarget(target);
    return this.#copyOut(this.#nextBlocking(options, this.#recvWhat), target);
  }

  #checkMax(max: number | undefined): number {
    if (max === undefined) return this.slots;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`Cannot receive on ${this.#what}: max must be a positive integer, got ${String(max)}`);
    }
    return Math.min(max, this.slots);
  }

  // Hands block i's message to a batch callback: the shared slot view, or with { detach: "message" }
  // a window of its own, detached after the call.
  #deliver(fn: BatchReceiver, i: number, len: number): void {
    if (!this.#strict) return fn(this.#slotView(i), len);
    const view = new Uint8Array(this.#window(i, len));
    try {
      fn(view, len);
    } finally {
      native.detach(view.buffer as ArrayBuffer);
    }
  }

  // Hands pending messages (claiming a burst first if none) to fn, releasing each after its call.
  #drain(fn: BatchReceiver, max: number): number {
    if (this.#ord) return this.#oDrain(fn, max);
    if (this.#pHead === this.#pTail) {
      if (this.#deferred !== undefined) this.#throwDeferred();
      if (this.#burst(max) === 0) return 0;
    }
    const idx = this.#ridx;
    let n = 0;
    let i = -1;
    try {
      while (this.#pHead < this.#pTail && n < max) {
        i = idx[this.#pHead++];
        this.#deliver(fn, i, this.#lengthOf(i));
        const j = i;
        i = -1;
        this.#free(j);
        n++;
      }
    } finally {
      if (i >= 0 && !this.#closed) this.#free(i); // fn threw: that message was delivered
      // W2 once per batch: parked senders registered in waiters before their last re-check.
      if (!this.#closed && readFlag(this.#hdr, W_WAITERS) !== 0) this.#wakeSenders();
    }
    return n;
  }

  /**
   * Hands every message queued now (up to `max`) to `fn`, in order, and releases each slot when
   * `fn` returns: one ring operation per burst and no allocation per message. `fn(bytes, length)`
   * gets the whole slot as `bytes` (a view reused for every message in that slot) and the message
   * length; the message is `bytes[0, length)`, valid only during the call. If `fn` throws, that
   * message counts as received and the rest of the burst stays for the next receive.
   *
   * @param fn called once per message
   * @param max the most messages for this call (default: the slot count)
   * @returns how many messages were handed to fn (0 when the channel is empty)
   * @throws {ShmError} ECLOSED, EBADHDR; whatever fn throws
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-tryrecvbatch-${Date.now()}`, { slots: 8, slotSize: 16 });
   * ch.trySendBatch(["a", "bb", "ccc"]);
   * let total = 0;
   * const n = ch.tryRecvBatch((_bytes, length) => { total += length; });
   * console.assert(n === 3 && total === 6);
   * ch.unlink();
   * ```
   */
  tryRecvBatch(fn: BatchReceiver, max?: number): number {
    this.#open();
    return this.#drain(fn, this.#checkMax(max));
  }

  /**
   * As {@linkcode tryRecvBatch}, parking while the channel is empty: returns once at least one
   * message was handed to `fn`.
   *
   * @param fn called once per message (see {@linkcode BatchReceiver})
   * @param options timeout in ms, max messages for this call
   * @returns how many messages were handed to fn (at least 1)
   * @throws {ShmError} ETIMEDOUT, ECLOSED, EBADHDR; whatever fn throws
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-recvbatch-${Date.now()}`, { slots: 8, slotSize: 16 });
   * ch.send("hi");
   * const got: string[] = [];
   * const dec = new TextDecoder();
   * ch.recvBatch((b, n) => got.push(dec.decode(b.subarray(0, n))), { timeout: 1000 });
   * console.assert(got[0] === "hi");
   * ch.unlink();
   * ```
   */
  recvBatch(fn: BatchReceiver, options?: RecvBatchOptions): number {
    this.#open();
    const max = this.#checkMax(options?.max);
    let n = this.#drain(fn, max);
    if (n > 0) return n;
    const what = this.#recvWhat;
    const ms = timeoutOf(options, what);
    this.#paceDry();
    if ((n = this.#drain(fn, max)) > 0) return n;
    const start = performance.now();
    const spinEnd = start + SPIN_MS;
    do {
      this.#pause();
      if ((n = this.#drain(fn, max)) > 0) return n;
    } while (performance.now() < spinEnd);
    const deadline = start + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      this.#waitReady(left);
      this.#open();
      if ((n = this.#drain(fn, max)) > 0) return n;
    }
  }

  /**
   * As {@linkcode recvBatch} without blocking the event loop.
   *
   * @param fn called once per message (see {@linkcode BatchReceiver})
   * @param options timeout in ms, signal to abort, max messages for this call
   * @returns a promise of how many messages were handed to fn (at least 1)
   * @throws {ShmError} ETIMEDOUT, ECLOSED, EBADHDR; rejects with `signal.reason` on abort
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-recvbatchasync-${Date.now()}`, { slots: 8, slotSize: 16 });
   * setTimeout(() => ch.sendBatch(["1", "2"]), 10);
   * let n = 0;
   * while (n < 2) n += await ch.recvBatchAsync(() => {}, { timeout: 5000 });
   * ch.unlink();
   * ```
   */
  async recvBatchAsync(fn: BatchReceiver, options?: RecvBatchOptions): Promise<number> {
    this.#open();
    const max = this.#checkMax(options?.max);
    let n = this.#drain(fn, max);
    if (n > 0) return n;
    const what = this.#recvWhat;
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    const deadline = performance.now() + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timeoutError(what, ms);
      await this.#waitReadyAsync(left, signal);
      if (this.#closed) throw new ShmError("ECLOSED", `${what}: it was closed (ECLOSED)`);
      if ((n = this.#drain(fn, max)) > 0) return n;
    }
  }

  /**
   * Receives messages forever (until the channel is closed). Release each message when done.
   *
   * @returns an async iterator of messages
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-iter-${Date.now()}`, { slots: 4, slotSize: 16 });
   * ch.send("1");
   * ch.send("2");
   * let sum = 0;
   * for await (const m of ch) {
   *   sum += Number(m.text());
   *   m.release();
   *   if (sum === 3) break;
   * }
   * ch.unlink();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    while (!this.#closed) {
      let m: Message;
      try {
        m = await this.recvAsync();
      } catch (e) {
        if (this.#closed && isShmError(e, "ECLOSED")) return;
        throw e;
      }
      yield m;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Recovery and lifetime

  // Marks the ready ring's indices that may still be in it (conservative: a non-empty position).
  #ringIndices(): Uint8Array {
    const seen = new Uint8Array(this.slots);
    const rs = this.#rslots;
    const mask = this.#rmask;
    const n = mask + 1;
    if (this.#rspsc) {
      const ctl = this.#rctl;
      const h = Atomics.load(ctl, RW_HEAD);
      const t = Atomics.load(ctl, RW_TAIL);
      const used = (t - h) >>> 0;
      if (used > n) return seen.fill(1); // corrupt counters: claim nothing is orphaned
      for (let k = 0; k < used; k++) {
        const v = Atomics.load(rs, (h + k) & mask);
        if (v < this.slots) seen[v] = 1;
      }
      return seen;
    }
    for (let k = 0; k < n; k++) {
      const s = Atomics.load(rs, 2 * k + 1); // seq first: the value below is at least as new
      if (((s - k) & mask) === 0) continue; // EMPTY (or taken) for its position
      const v = Atomics.load(rs, 2 * k);
      if (v < this.slots) seen[v] = 1;
    }
    return seen;
  }

  /**
   * Returns every slot whose owner died: loaned to or held by a dead process (its participant
   * entry names a process that is gone), and queued slots that a process killed mid-send or
   * mid-receive left outside the ready ring (proved by a bounded scan of the ring while no live
   * process is between its queue steps). Frees the participant entries of dead processes.
   * Senders call this on their own when the channel is full.
   *
   * @returns how many slots were reclaimed
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-reclaim-${Date.now()}`, { slots: 2, slotSize: 16 });
   * console.assert(ch.reclaim() === 0);
   * ch.unlink();
   * ```
   */
  reclaim(): number {
    this.#open();
    if (this.#ord) return 0; // nothing to reclaim: see "spsc-ordered" in docs/layout/channel.md
    const procs = this.maxProcesses;
    const ids = this.#procs64;
    const w32 = this.#procs32;
    const E32 = PROC_SIZE / 4;
    const E64 = PROC_SIZE / 8;
    const deadTags = new Int32Array(procs).fill(-1);
    const deadIds: (bigint | undefined)[] = new Array(procs);
    const liveOps = new Int32Array(procs);
    const live = new Uint8Array(procs);
    const ids0 = new BigUint64Array(procs); // every entry's identity at r0, for r2
    let quiet = true; // no live participant is inside a queue bracket (R1b)
    for (let p = 0; p < procs; p++) {
      // r0: identity (seq_cst load); pairs with P1/P3.
      const id = Atomics.load(ids, E64 * p);
      ids0[p] = id;
      if (id === 0n) continue;
      const alive = p === this.#p ||
        identityAlive(Number(BigInt.asUintN(32, id)), Number(BigInt.asUintN(32, id >> 32n)));
      if (alive) {
        live[p] = 1;
        // r1: the op counter before the table is read (seq_cst); pairs with O1/O2.
        liveOps[p] = Atomics.load(w32, E32 * p + P_OP);
        if (liveOps[p] & 1) quiet = false;
        continue;
      }
      // Dead: its gen is final (only the owner bumps it). Confirm the entry still names it.
      const gen = Atomics.load(w32, E32 * p + P_GEN) & GEN_MASK;
      if (Atomics.load(ids, E64 * p) !== id) continue;
      deadTags[p] = (gen << 8) | p;
      deadIds[p] = id;
    }
    const st = this.#tab;
    let freed = 0;
    let orphans: number[] | undefined;
    for (let i = 0; i < this.slots; i++) {
      const w = Atomics.load(st, 2 * i + 1);
      if (w === FREE) continue;
      const phase = w >>> 30;
      const tag = w & TAG_MASK;
      const p = tag & 0xff;
      if (phase === QUEUED) {
        (orphans ??= []).push(i, w);
        continue;
      }
      // R1a: LOANED/HELD of a dead tenure, or a malformed word (phase 0 with bits, or p >= P).
      if (phase === 0 || p >= procs || deadTags[p] === tag) {
        // R1: CAS from exactly the word read (seq_cst); pairs with T1, F1 and D1.
        if (Atomics.compareExchange(st, 2 * i + 1, w, FREE) === w) {
          freed++;
          if (FAULT_ON) fault("channel.reclaim.mid");
        }
      }
    }
    if (orphans !== undefined && quiet) {
      const inRing = this.#ringIndices();
      // r2: every live op unchanged since r1 (seq_cst): no live process moved a block into or
      // out of the ring meanwhile, so a QUEUED block the scan did not find is an orphan. And no
      // entry changed hands since r0: a process that registered after r0 has no r1 op here, yet
      // may have marked a block QUEUED before the table scan and not enqueued it before the ring
      // scan (or dequeued one before the ring scan and not claimed it yet); its P1 precedes those
      // steps, so if the scans saw them, this load sees its identity.
      for (let p = 0; p < procs && quiet; p++) {
        if (live[p] && Atomics.load(w32, E32 * p + P_OP) !== liveOps[p]) quiet = false;
        else if (Atomics.load(ids, E64 * p) !== ids0[p]) quiet = false;
      }
      for (let j = 0; quiet && j < orphans.length; j += 2) {
        const i = orphans[j];
        const w = orphans[j + 1];
        if (inRing[i]) continue;
        if (Atomics.compareExchange(st, 2 * i + 1, w, FREE) === w) { // R1b
          freed++;
          if (FAULT_ON) fault("channel.reclaim.mid");
        }
      }
    }
    for (let p = 0; p < procs; p++) {
      const id = deadIds[p];
      if (id === undefined) continue;
      // P3: free the dead entry once its blocks are back: take over its parked count, then
      // CAS identity -> 0 (seq_cst); pairs with P1. A gen that moved means a new tenant.
      if ((Atomics.load(w32, E32 * p + P_GEN) & GEN_MASK) !== (deadTags[p] >>> 8)) continue;
      const parked = Atomics.exchange(w32, E32 * p + P_PARKED, 0);
      if (parked > 0) Atomics.sub(this.#hdr, W_WAITERS, parked);
      Atomics.compareExchange(ids, E64 * p, id, 0n);
    }
    if (freed > 0) {
      Atomics.add(this.#hdr, W_RECLAIMED, freed);
      if (readFlag(this.#hdr, W_WAITERS) !== 0) this.#wakeSenders();
    }
    return freed;
  }

  /**
   * A JSON-safe handle; {@linkcode Channel.attach} reopens the channel in any process.
   *
   * @returns the handle
   * @throws {ShmError} ECLOSED
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-handle-${Date.now()}`, { slots: 2, slotSize: 16 });
   * console.assert(ch.handle().kind === "shmkit.channel");
   * ch.unlink();
   * ```
   */
  handle(): ChannelHandle {
    this.#open();
    return placedHandle("shmkit.channel", this.#seg, this.byteOffset);
  }

  /**
   * Returns the slots of every message and loan this object still holds (and of messages it
   * claimed but did not hand out yet), frees its participant entry, detaches every view it ever
   * handed out (they read length 0; not on Node 20, which cannot detach), then unmaps (if it owns
   * the segment). Idempotent.
   *
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * const ch = Channel.create(`doc-close-${Date.now()}`, { slots: 2, slotSize: 16 });
   * ch.unlink();
   * ch.close();
   * ch.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    const errors: unknown[] = [];
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        errors.push(e);
      }
    };
    if (!this.#seg.closed) {
      attempt(() => this.#dropStash());
      while (this.#pHead < this.#pTail) {
        const i = this.#ridx[this.#pHead++];
        attempt(() => this.#releaseSlot(i));
      }
      for (let i = 0; i < this.slots; i++) {
        const item = this.#live[i];
        if (item !== undefined) attempt(() => item.finish()); // gives the slot back while still open
        const m = this.#msgs[i];
        if (m !== undefined && m._live) attempt(() => m.release());
      }
      if (this.#asyncParked > 0 && this.#ord) Atomics.sub(this.#rctl, RW_PW, this.#asyncParked);
      else if (this.#asyncParked > 0) {
        Atomics.sub(this.#hdr, W_WAITERS, this.#asyncParked);
        Atomics.sub(this.#procs32, (PROC_SIZE / 4) * this.#p + P_PARKED, this.#asyncParked);
      }
      if (this.#asyncReady > 0) Atomics.sub(this.#rctl, RW_CW, this.#asyncReady);
      if (this.#p >= 0) {
        let held = false;
        const mine = this.#tag;
        for (let i = 0; i < this.slots && !held; i++) {
          const w = Atomics.load(this.#tab, 2 * i + 1);
          held = w !== FREE && (w >>> 30) !== QUEUED && (w & TAG_MASK) === mine;
        }
        // P3': free our entry only when no LOANED/HELD word carries our tag (seq_cst CAS id -> 0).
        if (!held) Atomics.compareExchange(this.#procs64, (PROC_SIZE / 8) * this.#p, MY_IDENTITY, 0n);
      }
    }
    this.#asyncParked = this.#asyncReady = 0;
    this.#closed = true;
    this.#ready.close();
    native.detach(this.#dataBuf); // every view handed out (subarrays of it) now reads length 0
    this.#slotViews.fill(undefined);
    this.#msgs.fill(undefined);
    this.#live.fill(undefined);
    if (this.#owned) this.#seg.close();
    if (errors.length > 0) throw errors[0];
  }

  /**
   * Removes the channel's name; processes already attached keep working.
   *
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * using ch = Channel.create(`doc-unlink-${Date.now()}`, { slots: 2, slotSize: 16 });
   * ch.unlink();
   * ```
   */
  unlink(): void {
    unlinkName(this.#seg);
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A Message in `{ detach: "close" }` mode: one per slot, reused for every message in it. */
class FastMessage implements Message {
  #ch: Channel;
  #slot: number;
  #len = 0;
  #view: Uint8Array = EMPTY;
  #viewLen = -1;
  /** @internal true between receive and release. */
  _live = false;

  constructor(ch: Channel, slot: number) {
    this.#ch = ch;
    this.#slot = slot;
  }

  /** @internal a new message in this slot. */
  _reset(len: number): void {
    this.#len = len;
    this._live = true;
  }

  get bytes(): Uint8Array {
    if (!this._live) return EMPTY;
    if (this.#viewLen !== this.#len) {
      this.#view = this.#ch._view(this.#slot, this.#len);
      this.#viewLen = this.#len;
    }
    return this.#view;
  }

  text(): string {
    return this._live ? this.#ch._text(this.#slot, this.#len) : "";
  }

  json(): unknown {
    return JSON.parse(this.text());
  }

  value(): unknown {
    return readValue(this.bytes);
  }

  release(): void {
    if (!this._live) return;
    this._live = false;
    this.#ch._release(this, this.#slot);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** A Message in `{ detach: "message" }` mode: a window of its own, detached by release(). */
class StrictMessage implements Message {
  #ch: Channel;
  #slot: number;
  #buf: ArrayBuffer;
  #bytes: Uint8Array | undefined;
  #released = false;

  constructor(ch: Channel, slot: number, buf: ArrayBuffer) {
    this.#ch = ch;
    this.#slot = slot;
    this.#buf = buf;
  }

  get bytes(): Uint8Array {
    if (this.#released) return EMPTY;
    return this.#bytes ??= new Uint8Array(this.#buf);
  }

  text(): string {
    return decodeText(this.bytes);
  }

  json(): unknown {
    return JSON.parse(this.text());
  }

  value(): unknown {
    return readValue(this.bytes);
  }

  /** @internal close() of the channel. */
  finish(): void {
    this.release();
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    native.detach(this.#buf); // Node 20 cannot: `bytes` reads empty from now on, see Message.bytes
    this.#bytes = undefined;
    this.#ch._release(this, this.#slot);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

class LoanImpl implements Loan {
  #ch: Channel;
  #slot: number;
  #bytes: Uint8Array;
  #own: boolean; // a window of its own (detach "message"), detached when done
  #done = false;

  constructor(ch: Channel, slot: number, bytes: Uint8Array, own: boolean) {
    this.#ch = ch;
    this.#slot = slot;
    this.#bytes = bytes;
    this.#own = own;
  }

  get bytes(): Uint8Array {
    return this.#done ? EMPTY : this.#bytes;
  }

  send(length: number): void {
    if (this.#done) throw new ShmError("EINVAL", "Cannot send a loan: it was already sent or discarded (EINVAL)");
    this.#ch._checkLoan(length);
    this.#done = true;
    if (this.#own) native.detach(this.#bytes.buffer as ArrayBuffer); // no stale write reaches the receiver
    this.#ch._loanPublish(this, this.#slot, length);
  }

  /** @internal close() of the channel. */
  finish(): void {
    this.discard();
  }

  discard(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#own) native.detach(this.#bytes.buffer as ArrayBuffer);
    this.#ch._discard(this, this.#slot);
  }

  [Symbol.dispose](): void {
    this.discard();
  }
}

registerKind("shmkit.channel", (h) => Channel.attach(h as ChannelHandle));
