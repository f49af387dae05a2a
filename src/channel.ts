/**
 * Channel: zero-copy messages between processes. One named object that holds `slots` blocks of
 * `slotSize` bytes, a ring of free block indices, a ring of ready (sent) block indices and a slot
 * table (message length and owner per block). A sender takes a free block index, writes the
 * message into the block (copy: `send`; in place: `loan`), stores its length and enqueues the
 * index on the ready ring; a receiver dequeues it and reads the block where it lies until
 * `release()` puts the index back on the free ring.
 *
 * Why not a {@linkcode Mempool} for the blocks: a mempool records every block under the process
 * that got it until someone puts it, and its `get()` reclaims the blocks of dead holders on its own.
 * In a channel the getter is the sender, which may exit (normally or not) while its messages are
 * still queued: the pool would hand those queued blocks to the next sender, which would overwrite
 * them before they are received. A channel's ownership has to move with the message (sender, then
 * nobody while queued, then the receiver), which is what the slot table records.
 *
 * Layout (little-endian; offsets from the channel's byteOffset, which is 64-byte aligned):
 *
 * | off          | size          | field         | writer | reader  | note                                    |
 * |--------------|---------------|---------------|--------|---------|-----------------------------------------|
 * | 0            | 64            | common header | init   | open    | src/layout.ts, kind 3, flags = mode     |
 * | 64           | 4             | slots         | init   | open    | number of blocks, 1..2^24               |
 * | 68           | 4             | slotSize      | init   | open    | bytes per block, 1..2^32-1              |
 * | 72           | 4             | mode          | init   | open    | 0 spsc, 1 mpmc                          |
 * | 76           | 4             | entrySize     | init   | open    | 32: bytes per slot-table entry          |
 * | 80           | 8             | blockStride   | init   | open    | u64, alignUp(slotSize, 64)              |
 * | 88           | 8             | freeOffset    | init   | open    | u64, 128: the free ring                 |
 * | 96           | 8             | readyOffset   | init   | open    | u64, after the free ring, 64-aligned    |
 * | 104          | 8             | tableOffset   | init   | open    | u64, after the ready ring, 64-aligned   |
 * | 112          | 8             | dataOffset    | init   | open    | u64, after the table, 4096-aligned      |
 * | 120          | 4             | reclaimed     | any    | cli     | slots reclaimed from dead processes     |
 * | 124          | 4             | reserved      | -      | -       | zero                                    |
 * | freeOffset   | Ring          | free ring     | Ring   | Ring    | capacity slots; receivers put, senders take (mpmc, or mpsc for spsc) |
 * | readyOffset  | Ring          | ready ring    | Ring   | Ring    | capacity slots; senders put, receivers take (mpmc or spsc) |
 * | tableOffset  | 32 * slots    | slot table    | below  | below   | one entry per block                     |
 * | dataOffset   | stride*slots  | blocks        | owner  | owner   | block i at dataOffset + i * blockStride |
 *
 * byteLength = dataOffset + blockStride * slots; headerSize (common header) = 128.
 *
 * Slot table entry i (32 bytes at tableOffset + 32 * i):
 *
 * | off | size | field  | writer                       | reader   | note                           |
 * |-----|------|--------|------------------------------|----------|--------------------------------|
 * | 0   | 4    | length | sender, before enqueue       | receiver | message bytes, <= slotSize     |
 * | 4   | 4    | state  | owner (store), reclaim (CAS) | reclaim  | generation << 2 \| phase       |
 * | 8   | 4    | pid    | owner, before state          | reclaim  | process that owns the block    |
 * | 12  | 4    | -      | -                            | -        | zero                           |
 * | 16  | 8    | start  | owner, before state          | reclaim  | f64, owner start time (ticks)  |
 * | 24  | 8    | -      | -                            | -        | zero                           |
 *
 * Phases: 0 FREE (on the free ring), 1 LOANED (a sender writes it), 2 HELD (a receiver reads it),
 * 3 QUEUED (on the ready ring, owned by nobody). Each change of phase by the owner bumps the
 * generation, so a reclaimer's compare-and-swap never acts on a state it did not see.
 *
 * Invariants: C1 every block index is in exactly one place: the free ring (FREE), one process
 * (LOANED, HELD) or the ready ring (QUEUED); C2 length <= slotSize for a QUEUED or HELD block;
 * C3 by C1 each ring holds at most `slots` values, so enqueueing a block index never finds it
 * full; C4 a LOANED or HELD block whose owner (pid, start time) is dead goes back to the free ring
 * through exactly one reclaimer (a CAS on its state).
 *
 * Crash windows (documented, not closed): a process SIGKILLed in the few instructions between
 * dequeueing a free index and storing LOANED, between storing QUEUED and enqueueing, between
 * dequeueing a ready index and storing HELD, or between storing FREE and enqueueing, loses that
 * one block (the channel works on with one slot fewer). Dying anywhere else loses nothing.
 *
 * @module
 */
import { ShmError } from "./errors.ts";
import { native, PID, processAlive, START_TIME, sys } from "./sys.ts";
import { alignUp, publishReady, readHeader, writeHeader } from "./layout.ts";
import { checkHandle, HANDLE_VERSION, registerKind } from "./handle.ts";
import { SharedMemory, type SharedMemoryHandle } from "./segment.ts";
import { placeOrRelease, renamed } from "./object.ts";
import { MAX_VIEW_BYTES } from "./mapping.ts";
import { timeoutError, timeoutOf, type WaitOptions } from "./wait.ts";
import { Ring } from "./ring.ts";

/** How senders and receivers may share a channel. */
export type ChannelMode = "spsc" | "mpmc";

/** Options of {@linkcode Channel.create}, {@linkcode Channel.byteLength} and {@linkcode Channel.init}. */
export interface ChannelOptions {
  /** Number of message slots (blocks), 1..2^24. */
  slots: number;
  /** Bytes per slot: the largest message, 1..2^32-1. */
  slotSize: number;
  /** "spsc" (one sending and one receiving process) or "mpmc" (any number), default "mpmc". */
  mode?: ChannelMode;
  /** File mode of a new segment (create only), default 0o600. */
  fileMode?: number;
  /** Prefault the channel's pages in this process (default true): no page faults while messaging. */
  populate?: boolean;
}

/** Options of {@linkcode Channel.open} and {@linkcode Channel.attach}. */
export interface ChannelOpenOptions {
  /** Prefault the channel's pages in this process (default true). */
  populate?: boolean;
}

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

/** A received message: a view of the shared block until {@linkcode Message.release}. */
export interface Message extends Disposable {
  /**
   * The message bytes, zero-copy, in shared memory. After `release()` this is an empty array and
   * every earlier reference reads length 0 (Deno, Bun, Node >= 22). On Node 20, which cannot detach
   * external buffers, an earlier reference keeps aliasing the slot: do not use it after release.
   */
  readonly bytes: Uint8Array;
  /** The bytes decoded as UTF-8. */
  text(): string;
  /** The bytes decoded as UTF-8 and parsed as JSON. */
  json(): unknown;
  /** Returns the slot to the channel. Idempotent. */
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

// Channel header fields (offsets from the channel start).
const H_SLOTS = 64;
const H_SLOT_SIZE = 68;
const H_MODE = 72;
const H_ENTRY = 76;
const H_BLOCK_STRIDE = 80;
const H_FREE_OFF = 88;
const H_READY_OFF = 96;
const H_TABLE_OFF = 104;
const H_DATA_OFF = 112;
const H_RECLAIMED = 120;
const HEADER_SIZE = 128;
const SLOT_STRIDE = 32; // slot-table entry size
const DATA_ALIGN = 4096;
const MAX_SLOTS = 2 ** 24;
const MAX_SLOT_SIZE = 2 ** 32 - 1;

// Slot phases (low two bits of the state word).
const FREE = 0;
const LOANED = 1;
const HELD = 2;
const QUEUED = 3;

/** While blocked on a full channel, look for slots of dead processes this often (ms). */
const RECLAIM_EVERY_MS = 250;

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Layout {
  blockStride: number;
  freeOffset: number;
  readyOffset: number;
  tableOffset: number;
  dataOffset: number;
  byteLength: number;
}

function checkOptions(o: ChannelOptions, what: string): { slots: number; slotSize: number; mode: ChannelMode } {
  if (typeof o !== "object" || o === null) throw new TypeError(`${what}: options { slots, slotSize } are required`);
  const { slots, slotSize } = o;
  const mode = o.mode ?? "mpmc";
  if (typeof slots !== "number" || !Number.isInteger(slots) || slots < 1 || slots > MAX_SLOTS) {
    throw new RangeError(`${what}: slots must be an integer in 1..${MAX_SLOTS}, got ${String(slots)}`);
  }
  if (typeof slotSize !== "number" || !Number.isInteger(slotSize) || slotSize < 1 || slotSize > MAX_SLOT_SIZE) {
    throw new RangeError(`${what}: slotSize must be an integer in 1..${MAX_SLOT_SIZE}, got ${String(slotSize)}`);
  }
  if (mode !== "spsc" && mode !== "mpmc") {
    throw new TypeError(`${what}: mode must be "spsc" or "mpmc", got ${String(mode)}`);
  }
  return { slots, slotSize, mode };
}

function layoutOf(slots: number, slotSize: number): Layout {
  const blockStride = alignUp(slotSize, 64);
  const ringBytes = Ring.byteLength({ capacity: slots });
  const freeOffset = HEADER_SIZE;
  const readyOffset = alignUp(freeOffset + ringBytes, 64);
  const tableOffset = alignUp(readyOffset + ringBytes, 64);
  const dataOffset = alignUp(tableOffset + SLOT_STRIDE * slots, DATA_ALIGN);
  const byteLength = dataOffset + blockStride * slots;
  return { blockStride, freeOffset, readyOffset, tableOffset, dataOffset, byteLength };
}

function ringModes(mode: ChannelMode): { free: "mpmc" | "mpsc"; ready: "mpmc" | "spsc" } {
  // spsc: one sender takes free slots, but the receiver and any reclaimer put them back.
  return mode === "spsc" ? { free: "mpsc", ready: "spsc" } : { free: "mpmc", ready: "mpmc" };
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

/**
 * Zero-copy messages between processes: fixed-size slots, a ring of free slots and a ring of ready slots in
 * one shared segment.
 *
 * Role contract: in "mpmc" mode any number of processes (and Channel objects) may send and
 * receive at once; in "spsc" mode at most one process sends and at most one receives at a time.
 * Messages arrive in the order their senders enqueued them. A Channel object belongs to one
 * thread. `send` blocks while every slot is in use (backpressure); `recv` parks while the channel
 * is empty; neither spins when idle. A process that dies holding received messages or loans does
 * not leak their slots: a sender that finds the channel full reclaims them (also {@linkcode reclaim}).
 * In "spsc" mode the first Channel object that sends holds the sending role, and the first that
 * receives the receiving role, until it is closed or its process dies; any other object that
 * tries gets ShmError EBUSY. Messages already queued outlive their sender.
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
  /** "spsc" or "mpmc". */
  readonly mode: ChannelMode;
  /** Where the channel starts in its segment. */
  readonly byteOffset: number;
  #seg: SharedMemory;
  #owned: boolean;
  #free: Ring;
  #ready: Ring;
  #dataOffset: number; // mapping offset of block 0
  #blockStride: number;
  #base: number; // address of the mapping in this process
  #what: string;
  #closed = false;
  #blocks: (Uint8Array | undefined)[]; // cached full-slot views for copying in
  #lenU32: Uint32Array; // slot table as u32 words (stride 8 words)
  #stateI32: Int32Array; // the same words for Atomics
  #startF64: Float64Array; // the same table as f64 (stride 4)
  #hdrI32: Int32Array;
  #live: (MessageImpl | LoanImpl | undefined)[]; // messages and loans this object handed out, by slot

  private constructor(seg: SharedMemory, off: number, owned: boolean, populate: boolean) {
    this.#seg = seg;
    this.#owned = owned;
    this.byteOffset = off;
    const name = seg.name === null ? "(anonymous)" : seg.name;
    this.#what = `channel "${name}"${off ? ` at ${off}` : ""}`;
    const what = `Cannot open ${this.#what}`;
    if (seg.size > MAX_VIEW_BYTES) {
      throw new ShmError("ENOTSUP", `${what}: the segment is larger than this runtime's ArrayBuffer limit (ENOTSUP)`);
    }
    const buf = seg.buffer;
    const h = readHeader(buf, off, "channel", what);
    const bad = (why: string): ShmError => new ShmError("EBADHDR", `${what}: ${why} (EBADHDR)`);
    const dv = new DataView(buf, off, HEADER_SIZE);
    if (h.headerSize !== HEADER_SIZE) throw bad(`header size ${h.headerSize}, expected ${HEADER_SIZE}`);
    const slots = dv.getUint32(H_SLOTS, true);
    const slotSize = dv.getUint32(H_SLOT_SIZE, true);
    const mode = dv.getUint32(H_MODE, true);
    if (slots < 1 || slots > MAX_SLOTS) throw bad(`impossible slot count ${slots}`);
    if (slotSize < 1) throw bad("slot size 0");
    if (mode > 1) throw bad(`unknown mode ${mode}`);
    if (dv.getUint32(H_ENTRY, true) !== SLOT_STRIDE) {
      throw bad(`slot table entry size ${dv.getUint32(H_ENTRY, true)}, expected ${SLOT_STRIDE}`);
    }
    let lay: Layout;
    try {
      lay = layoutOf(slots, slotSize);
    } catch (e) {
      throw bad(`impossible sizes (${slots} slots of ${slotSize} bytes): ${(e as Error).message}`);
    }
    if (h.byteLength !== lay.byteLength) {
      throw bad(`byteLength ${h.byteLength} does not match ${slots} slots of ${slotSize} bytes (${lay.byteLength})`);
    }
    const u64 = (at: number): number => Number(dv.getBigUint64(at, true));
    if (
      u64(H_BLOCK_STRIDE) !== lay.blockStride || u64(H_FREE_OFF) !== lay.freeOffset ||
      u64(H_READY_OFF) !== lay.readyOffset ||
      u64(H_TABLE_OFF) !== lay.tableOffset || u64(H_DATA_OFF) !== lay.dataOffset
    ) {
      throw bad("its block stride or ring, table or data offsets do not match its sizes");
    }
    this.slots = slots;
    this.slotSize = slotSize;
    this.mode = mode === 0 ? "spsc" : "mpmc";
    this.#free = Ring.at(seg, off + lay.freeOffset);
    this.#ready = Ring.at(seg, off + lay.readyOffset);
    const modes = ringModes(this.mode);
    if (this.#free.capacity !== slots || this.#ready.capacity !== slots) {
      throw bad(`its rings hold ${this.#free.capacity} and ${this.#ready.capacity} values, expected ${slots}`);
    }
    if (this.#free.mode !== modes.free || this.#ready.mode !== modes.ready) {
      throw bad(
        `its rings are ${this.#free.mode} and ${this.#ready.mode}, expected ${modes.free} and ${modes.ready} for a ${this.mode} channel`,
      );
    }
    this.#dataOffset = off + lay.dataOffset;
    this.#blockStride = lay.blockStride;
    this.#base = seg.mapping.address;
    this.#blocks = new Array(slots);
    const table = off + lay.tableOffset;
    this.#lenU32 = new Uint32Array(buf, table, slots * (SLOT_STRIDE / 4));
    this.#stateI32 = new Int32Array(buf, table, slots * (SLOT_STRIDE / 4));
    this.#startF64 = new Float64Array(buf, table, slots * (SLOT_STRIDE / 8));
    this.#hdrI32 = new Int32Array(buf, off, HEADER_SIZE / 4);
    this.#live = new Array(slots);
    if (populate) sys.shmkit_madvise(seg.mapping.id, off, lay.byteLength, 1); // best effort
  }

  /**
   * Bytes a channel with these options occupies (for placing one inside a larger segment).
   *
   * @param options slots and slotSize
   * @returns the byte length, a multiple of 64
   * @throws {RangeError} for a slot count or size out of range
   * @example
   * ```ts
   * import { Channel } from "./mod.ts";
   * console.assert(Channel.byteLength({ slots: 4, slotSize: 64 }) > 4 * 64);
   * ```
   */
  static byteLength(options: ChannelOptions): number {
    const { slots, slotSize } = checkOptions(options, "Cannot size a channel");
    return layoutOf(slots, slotSize).byteLength;
  }

  /**
   * Formats a channel at `byteOffset` of `segment` (overwriting what is there) and attaches it.
   * The returned Channel does not own the segment: closing it leaves the segment mapped.
   *
   * @param segment the segment to place the channel in
   * @param byteOffset a multiple of 64 with room for {@linkcode Channel.byteLength} bytes
   * @param options slots, slotSize, mode
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
    const { slots, slotSize, mode } = checkOptions(options, what);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % 64 !== 0) {
      throw new RangeError(`${what}: byteOffset ${byteOffset} must be a non-negative multiple of 64`);
    }
    const lay = layoutOf(slots, slotSize);
    if (byteOffset + lay.byteLength > segment.size) {
      throw new RangeError(`${what}: ${lay.byteLength} bytes at ${byteOffset} do not fit in ${segment.size} bytes`);
    }
    const buf = segment.buffer;
    const modeNum = mode === "spsc" ? 0 : 1;
    writeHeader(buf, byteOffset, "channel", HEADER_SIZE, lay.byteLength, modeNum);
    const dv = new DataView(buf, byteOffset, HEADER_SIZE);
    dv.setUint32(H_SLOTS, slots, true);
    dv.setUint32(H_SLOT_SIZE, slotSize, true);
    dv.setUint32(H_MODE, modeNum, true);
    dv.setUint32(H_ENTRY, SLOT_STRIDE, true);
    dv.setBigUint64(H_BLOCK_STRIDE, BigInt(lay.blockStride), true);
    dv.setBigUint64(H_FREE_OFF, BigInt(lay.freeOffset), true);
    dv.setBigUint64(H_READY_OFF, BigInt(lay.readyOffset), true);
    dv.setBigUint64(H_TABLE_OFF, BigInt(lay.tableOffset), true);
    dv.setBigUint64(H_DATA_OFF, BigInt(lay.dataOffset), true);
    for (let i = H_RECLAIMED; i < HEADER_SIZE; i++) dv.setUint8(i, 0);
    const modes = ringModes(mode);
    const free = Ring.init(segment, byteOffset + lay.freeOffset, { capacity: slots, mode: modes.free });
    try {
      // C1: every block starts on the free ring.
      const all = new Uint32Array(slots);
      for (let i = 0; i < slots; i++) all[i] = i;
      if (free.enqueueBurst(all) !== slots) {
        throw new ShmError("EINVAL", `${what}: its free ring did not take ${slots} slots (EINVAL)`);
      }
    } finally {
      free.close();
    }
    Ring.init(segment, byteOffset + lay.readyOffset, { capacity: slots, mode: modes.ready }).close();
    new Uint8Array(buf, byteOffset + lay.tableOffset, SLOT_STRIDE * slots).fill(0);
    publishReady(buf, byteOffset); // everything above is visible to whoever sees "ready"
    return new Channel(segment, byteOffset, false, options.populate ?? true);
  }

  /**
   * Attaches the channel at `byteOffset` of `segment` and validates its header. Does not own the
   * segment.
   *
   * @param segment the segment holding the channel
   * @param byteOffset where {@linkcode Channel.init} placed it
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
    return new Channel(segment, byteOffset, false, options.populate ?? true);
  }

  /**
   * Creates a named channel exclusively (a segment of exactly {@linkcode Channel.byteLength}).
   *
   * @param name the segment name ("jobs" or "/jobs")
   * @param options slots, slotSize, mode ("mpmc" by default), fileMode
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
  static create(name: string, options: ChannelOptions): Channel {
    const { slots, slotSize } = checkOptions(options, `Cannot create channel ${JSON.stringify(name)}`);
    const size = layoutOf(slots, slotSize).byteLength;
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
   * @param options populate (default true)
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
    const seg = renamed(() => SharedMemory.open(name), "Cannot open channel", name);
    return Channel.#openOwned(seg, 0, options);
  }

  /**
   * Reopens a channel from its {@linkcode handle}, in any process.
   *
   * @param handle what {@linkcode handle} returned (possibly through JSON)
   * @param options populate (default true)
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
    return placeOrRelease(seg, false, () => {
      const ch = new Channel(seg, off, true, options.populate ?? true);
      return ch;
    });
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Messages queued now and not yet received (a snapshot). */
  get size(): number {
    this.#open();
    return this.#ready.size;
  }

  /** Slots free for sending now (a snapshot). */
  get available(): number {
    this.#open();
    return this.#free.size;
  }

  #open(): void {
    if (this.#closed) throw new ShmError("ECLOSED", `Cannot use ${this.#what}: it is closed (ECLOSED)`);
  }

  #tooBig(n: number): RangeError {
    return new RangeError(
      `Cannot send on ${this.#what}: the message is ${n} bytes, longer than the slot size of ${this.slotSize} bytes`,
    );
  }

  #checkData(data: Uint8Array | string): void {
    if (typeof data === "string") {
      // UTF-8 needs at most 3 bytes per UTF-16 unit: only long strings need the exact count.
      if (data.length * 3 > this.slotSize) {
        const n = utf8Length(data);
        if (n > this.slotSize) throw this.#tooBig(n);
      }
    } else if (data instanceof Uint8Array) {
      if (data.length > this.slotSize) throw this.#tooBig(data.length);
    } else {
      throw new TypeError(`Cannot send on ${this.#what}: data must be a Uint8Array or a string, got ${typeof data}`);
    }
  }

  // Marks block i as owned by this process in `phase` (bumping the generation).
  #own(i: number, phase: number): void {
    const w = i * (SLOT_STRIDE / 4);
    this.#lenU32[w + 2] = PID;
    this.#startF64[i * (SLOT_STRIDE / 8) + 2] = START_TIME;
    const s = Atomics.load(this.#stateI32, w + 1);
    // S1: publish owner (seq_cst store); pairs with S3 in reclaim.
    Atomics.store(this.#stateI32, w + 1, ((((s >>> 2) + 1) << 2) | phase) | 0);
  }

  // Sets block i to an unowned phase (FREE or QUEUED), bumping the generation.
  #disown(i: number, phase: number): void {
    const w = i * (SLOT_STRIDE / 4) + 1;
    const s = Atomics.load(this.#stateI32, w);
    // S2: give up ownership (seq_cst store) before the block moves on; pairs with S3 in reclaim.
    Atomics.store(this.#stateI32, w, ((((s >>> 2) + 1) << 2) | phase) | 0);
  }

  #blockBytes(i: number): Uint8Array {
    let b = this.#blocks[i];
    if (b === undefined || b.length === 0) {
      b = new Uint8Array(this.#seg.buffer, this.#dataOffset + i * this.#blockStride, this.slotSize);
      this.#blocks[i] = b;
    }
    return b;
  }

  // Copies data into block i and publishes it.
  #fill(i: number, data: Uint8Array | string): void {
    const b = this.#blockBytes(i);
    let n: number;
    if (typeof data === "string") {
      const r = encoder.encodeInto(data, b);
      if (r.read !== data.length) {
        this.#putFree(i);
        throw this.#tooBig(encoder.encode(data).length);
      }
      n = r.written;
    } else {
      b.set(data);
      n = data.length;
    }
    this.#publish(i, n);
  }

  // Stores the length, marks the block QUEUED and enqueues it.
  #publish(i: number, length: number): void {
    this.#lenU32[i * (SLOT_STRIDE / 4)] = length;
    this.#disown(i, QUEUED);
    // C3: the ring holds every block index at most once, so it has room.
    if (!this.#ready.tryEnqueue(i)) {
      throw new ShmError(
        "EBADHDR",
        `Cannot send on ${this.#what}: its ready ring is full while a slot was free; the segment is corrupt (EBADHDR)`,
      );
    }
  }

  // Marks block i FREE and puts it on the free ring.
  #putFree(i: number): void {
    this.#disown(i, FREE);
    // C3: the free ring holds every block index at most once, so it has room.
    if (!this.#free.tryEnqueue(i)) {
      throw new ShmError(
        "EBADHDR",
        `Cannot release a slot of ${this.#what}: its free ring is full; the segment is corrupt (EBADHDR)`,
      );
    }
  }

  // Checks a block index read from a ring (another process wrote it) and marks it ours.
  #claim(v: number, phase: number, doing: string): number {
    const i = v >>> 0;
    if (i >= this.slots) {
      throw new ShmError(
        "EBADHDR",
        `Cannot ${doing} ${this.#what}: a ring returned slot ${i} of ${this.slots}; the segment is corrupt (EBADHDR)`,
      );
    }
    this.#own(i, phase);
    return i;
  }

  // Takes a free block and marks it LOANED; -1 when none is free.
  #tryTake(): number {
    const v = this.#free.tryDequeue();
    return v === undefined ? -1 : this.#claim(v, LOANED, "send on");
  }

  #take(options: WaitOptions | undefined, what: string): number {
    this.#open();
    const ms = timeoutOf(options, what);
    let i = this.#tryTake();
    if (i >= 0) return i;
    const deadline = Date.now() + ms;
    for (;;) {
      // Full: slots held by dead processes come back first.
      if (this.reclaim() > 0 && (i = this.#tryTake()) >= 0) return i;
      const left = deadline - Date.now();
      if (left <= 0) throw timeoutError(what, ms);
      try {
        return this.#claim(this.#free.dequeue({ timeout: Math.min(left, RECLAIM_EVERY_MS) }), LOANED, "send on");
      } catch (e) {
        if (!isShmError(e, "ETIMEDOUT")) throw e;
      }
      this.#open();
    }
  }

  async #takeAsync(options: WaitOptions | undefined, what: string): Promise<number> {
    this.#open();
    const ms = timeoutOf(options, what);
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    let i = this.#tryTake();
    if (i >= 0) return i;
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.reclaim() > 0 && (i = this.#tryTake()) >= 0) return i;
      const left = deadline - Date.now();
      if (left <= 0) throw timeoutError(what, ms);
      let v: number | undefined;
      try {
        v = await this.#free.dequeueAsync({ timeout: Math.min(left, RECLAIM_EVERY_MS), signal });
      } catch (e) {
        if (!isShmError(e, "ETIMEDOUT")) throw e;
      }
      if (v !== undefined) {
        if (this.#closed) {
          this.#free.tryEnqueue(v); // not ours to keep: the slot goes back
          this.#open();
        }
        return this.#claim(v, LOANED, "send on");
      }
      this.#open();
    }
  }

  /**
   * Sends a copy of `data` if a slot is free now.
   *
   * @param data bytes, or a string sent as UTF-8
   * @returns false when every slot is in use
   * @throws {RangeError} when the message is longer than slotSize
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
    const i = this.#tryTake();
    if (i < 0) return false;
    this.#fill(i, data);
    return true;
  }

  /**
   * Sends a copy of `data`, blocking while the channel is full (slots of dead processes are
   * reclaimed meanwhile).
   *
   * @param data bytes, or a string sent as UTF-8
   * @param options timeout in ms
   * @throws {RangeError} when the message is longer than slotSize
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
    this.#checkData(data);
    this.#fill(this.#take(options, `Cannot send on ${this.#what}`), data);
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
    this.#fill(await this.#takeAsync(options, `Cannot send on ${this.#what}`), data);
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
    const i = this.#tryTake();
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
    return this.#lend(this.#take(options, `Cannot loan a slot of ${this.#what}`));
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
    return this.#lend(await this.#takeAsync(options, `Cannot loan a slot of ${this.#what}`));
  }

  #lend(i: number): Loan {
    const loan = new LoanImpl(this, i, new Uint8Array(this.#window(i, this.slotSize)));
    this.#live[i] = loan;
    return loan;
  }

  // A window of its own over block i, detached when its Message/Loan is done. When this object
  // owns the mapping, the windows are tracked here (#live: close() finishes them all before it
  // unmaps), so the native view skips the mapping's own tracking, which costs microseconds.
  #window(i: number, length: number): ArrayBuffer {
    const off = this.#dataOffset + i * this.#blockStride; // i < slots and length <= slotSize: checked
    if (length === 0) return new ArrayBuffer(0);
    if (this.#owned) return native.view(this.#base + off, length);
    return this.#seg.mapping.view(off, length, `Cannot view a message of ${this.#what}`);
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

  /** @internal Loan.send, after the loan's view is detached. */
  _loanPublish(loan: LoanImpl, i: number, length: number): void {
    if (this.#live[i] === loan) this.#live[i] = undefined;
    this.#publish(i, length);
  }

  /** @internal Loan.discard and Message.release. */
  _giveBack(item: MessageImpl | LoanImpl, i: number): void {
    if (this.#live[i] === item) this.#live[i] = undefined;
    if (this.#closed) return;
    this.#putFree(i);
  }

  // Turns a dequeued block index into a Message.
  #message(v: number): Message {
    const i = this.#claim(v, HELD, "receive on");
    const len = this.#lenU32[i * (SLOT_STRIDE / 4)]; // read once, check, use the local
    if (len > this.slotSize) {
      this.#putFree(i);
      throw new ShmError(
        "EBADHDR",
        `Cannot receive on ${this.#what}: slot ${i} claims ${len} bytes, more than the slot size ${this.slotSize}; the segment is corrupt (EBADHDR)`,
      );
    }
    const m = new MessageImpl(this, i, this.#window(i, len));
    this.#live[i] = m;
    return m;
  }

  #recvError(e: unknown, what: string, options: WaitOptions | undefined): unknown {
    if (isShmError(e, "ETIMEDOUT")) return timeoutError(what, options?.timeout ?? Infinity);
    if (isShmError(e, "ECLOSED") && this.#closed) return new ShmError("ECLOSED", `${what}: it was closed (ECLOSED)`);
    return e;
  }

  /**
   * Receives the next message if one is queued now.
   *
   * @returns the message (call `release()` when done), or undefined when the channel is empty
   * @throws {ShmError} ECLOSED, EBADHDR for a corrupt slot index or length
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
    const v = this.#ready.tryDequeue();
    return v === undefined ? undefined : this.#message(v);
  }

  /**
   * Receives the next message, parking (no spinning) while the channel is empty.
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
    const v = this.#ready.tryDequeue();
    if (v !== undefined) return this.#message(v);
    const what = `Cannot receive on ${this.#what}`;
    timeoutOf(options, what);
    let got: number;
    try {
      got = this.#ready.dequeue(options);
    } catch (e) {
      throw this.#recvError(e, what, options);
    }
    return this.#message(got);
  }

  /**
   * Copies the next message into `target` and releases its slot at once, if one is queued now:
   * the allocation-free way to receive small messages.
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
    const v = this.#ready.tryDequeue();
    return v === undefined ? -1 : this.#copyOut(v, target);
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
    const v = this.#ready.tryDequeue();
    if (v !== undefined) return this.#copyOut(v, target);
    const what = `Cannot receive on ${this.#what}`;
    timeoutOf(options, what);
    let got: number;
    try {
      got = this.#ready.dequeue(options);
    } catch (e) {
      throw this.#recvError(e, what, options);
    }
    return this.#copyOut(got, target);
  }

  #checkTarget(target: Uint8Array): void {
    if (!(target instanceof Uint8Array) || target.length < this.slotSize) {
      throw new RangeError(
        `Cannot receive on ${this.#what}: the target must be a Uint8Array of at least the slot size ${this.slotSize} bytes`,
      );
    }
  }

  #copyOut(v: number, target: Uint8Array): number {
    const i = this.#claim(v, HELD, "receive on");
    const len = this.#lenU32[i * (SLOT_STRIDE / 4)]; // read once, check, use the local
    if (len > this.slotSize) {
      this.#putFree(i);
      throw new ShmError(
        "EBADHDR",
        `Cannot receive on ${this.#what}: slot ${i} claims ${len} bytes, more than the slot size ${this.slotSize}; the segment is corrupt (EBADHDR)`,
      );
    }
    target.set(this.#blockBytes(i).subarray(0, len));
    this.#putFree(i);
    return len;
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
    const v = this.#ready.tryDequeue();
    if (v !== undefined) return this.#message(v);
    const what = `Cannot receive on ${this.#what}`;
    timeoutOf(options, what);
    let got: number;
    try {
      got = await this.#ready.dequeueAsync(options);
    } catch (e) {
      throw this.#recvError(e, what, options);
    }
    if (this.#closed) throw new ShmError("ECLOSED", `${what}: it was closed (ECLOSED)`);
    return this.#message(got);
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

  /**
   * Returns to the free ring every slot loaned to or held by a process that has died (checked by pid
   * and process start time). Senders call this on their own when the channel is full.
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
    let n = 0;
    const st = this.#stateI32;
    for (let i = 0; i < this.slots; i++) {
      const w = i * (SLOT_STRIDE / 4);
      // S3: read the state (seq_cst), then the owner it covers; pairs with S1/S2.
      const s = Atomics.load(st, w + 1);
      const phase = s & 3;
      if (phase !== LOANED && phase !== HELD) continue;
      const pid = this.#lenU32[w + 2];
      const start = this.#startF64[i * (SLOT_STRIDE / 8) + 2];
      if (Atomics.load(st, w + 1) !== s) continue; // the owner changed while we read
      if (pid === PID && start === START_TIME) continue; // ours, alive
      if (processAlive(pid, start)) continue;
      // S4: claim the dead owner's slot; exactly one reclaimer wins (C4).
      const next = ((((s >>> 2) + 1) << 2) | FREE) | 0;
      if (Atomics.compareExchange(st, w + 1, s, next) !== s) continue;
      if (!this.#free.tryEnqueue(i)) {
        throw new ShmError(
          "EBADHDR",
          `Cannot reclaim a slot of ${this.#what}: its free ring is full; the segment is corrupt (EBADHDR)`,
        );
      }
      Atomics.add(this.#hdrI32, H_RECLAIMED / 4, 1);
      n++;
    }
    return n;
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
    return {
      kind: "shmkit.channel",
      version: HANDLE_VERSION,
      name: this.#seg.name,
      segment: this.#seg.handle(),
      byteOffset: this.byteOffset,
    };
  }

  /**
   * Returns the slots of every message and loan this object still holds, then unmaps (if it owns
   * the segment). Every Message and Loan view is detached. Idempotent.
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
    for (let i = 0; i < this.slots; i++) {
      const item = this.#live[i];
      if (item !== undefined) item.finish(); // gives the slot back while still open
    }
    this.#closed = true;
    this.#free.close();
    this.#ready.close();
    this.#blocks.fill(undefined);
    if (this.#owned) this.#seg.close();
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
    this.#seg.unlink();
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

class MessageImpl implements Message {
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
    return decoder.decode(this.bytes);
  }

  json(): unknown {
    return JSON.parse(this.text());
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
    this.#ch._giveBack(this, this.#slot);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

class LoanImpl implements Loan {
  #ch: Channel;
  #slot: number;
  #bytes: Uint8Array;
  #done = false;

  constructor(ch: Channel, slot: number, bytes: Uint8Array) {
    this.#ch = ch;
    this.#slot = slot;
    this.#bytes = bytes;
  }

  get bytes(): Uint8Array {
    return this.#done ? EMPTY : this.#bytes;
  }

  send(length: number): void {
    if (this.#done) throw new ShmError("EINVAL", "Cannot send a loan: it was already sent or discarded (EINVAL)");
    this.#ch._checkLoan(length);
    this.#done = true;
    native.detach(this.#bytes.buffer as ArrayBuffer); // no stale write can reach the receiver
    this.#ch._loanPublish(this, this.#slot, length);
  }

  /** @internal close() of the channel. */
  finish(): void {
    this.discard();
  }

  discard(): void {
    if (this.#done) return;
    this.#done = true;
    native.detach(this.#bytes.buffer as ArrayBuffer);
    this.#ch._giveBack(this, this.#slot);
  }

  [Symbol.dispose](): void {
    this.discard();
  }
}

registerKind("shmkit.channel", (h) => Channel.attach(h as ChannelHandle));
