/**
 * The demo's workloads, shared by the parent (demo.ts) and its children (demo_child.ts): frame and
 * JSON message formats, their checksums, and latency statistics. Same code on Deno, Bun and Node.
 *
 * Frame (FRAME_SIZE bytes, little-endian):
 *
 * | off | size | field  | note                                                     |
 * |-----|------|--------|----------------------------------------------------------|
 * | 0   | 4    | magic  | 0x454d4146 "FAME"                                        |
 * | 4   | 4    | seq    | 0, 1, 2, ...                                             |
 * | 8   | 8    | stamp  | f64, sender's CLOCK_MONOTONIC ns just before sending     |
 * | 16  | 4    | sum    | checksumWords(body) mixed with seq                       |
 * | 20  | 12   | -      | zero                                                     |
 * | 32  | ...  | body   | pseudo-random bytes                                      |
 *
 * @module
 */

import { native, nowNs } from "./src/sys.ts";
import { decodeText } from "./src/text.ts";

/** Bytes per frame (1 MiB, header included). */
export const FRAME_SIZE = 1 << 20;
/** Frame header size. */
export const FRAME_HEADER = 32;
/** "FAME". */
export const FRAME_MAGIC = 0x454d4146;

/** Fletcher-style checksum over 32-bit words (position-sensitive, two additions per word). */
export function checksumWords(w: Uint32Array): number {
  let a = 0;
  let b = 0;
  for (let i = 0; i < w.length; i++) {
    a = (a + w[i]) | 0;
    b = (b + a) | 0;
  }
  return (Math.imul(a, 0x9e3779b1) ^ b) >>> 0;
}

/** Mixes a body checksum with the sequence number, so a frame with the wrong seq fails. */
export function frameSum(bodySum: number, seq: number): number {
  return (bodySum ^ Math.imul(seq + 1, 0x9e3779b1)) >>> 0;
}

/** Deterministic pseudo-random bytes (xorshift32), for frame bodies. */
export function fillRandom(b: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 1;
  const w = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x >>> 0;
  }
}

/** Writes a frame header into the first 32 bytes of `frame`. */
export function writeFrameHeader(dv: DataView, seq: number, stampNs: number, bodySum: number): void {
  dv.setUint32(0, FRAME_MAGIC, true);
  dv.setUint32(4, seq, true);
  dv.setFloat64(8, stampNs, true);
  dv.setUint32(16, frameSum(bodySum, seq), true);
}

/** What checking a frame found. */
export interface FrameCheck {
  seq: number;
  stamp: number;
  ok: boolean;
}

/** Checks a received frame: magic, and the checksum of its body mixed with its seq. */
export function checkFrame(frame: Uint8Array, out: FrameCheck): FrameCheck {
  const dv = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER);
  out.seq = dv.getUint32(4, true);
  out.stamp = dv.getFloat64(8, true);
  const want = dv.getUint32(16, true);
  let words: Uint32Array;
  if ((frame.byteOffset & 3) === 0) {
    words = new Uint32Array(frame.buffer, frame.byteOffset + FRAME_HEADER, (FRAME_SIZE - FRAME_HEADER) >>> 2);
  } else {
    words = new Uint32Array(frame.slice(FRAME_HEADER, FRAME_SIZE).buffer);
  }
  out.ok = frame.length === FRAME_SIZE && dv.getUint32(0, true) === FRAME_MAGIC &&
    frameSum(checksumWords(words), out.seq) === want;
  return out;
}

/** A small JSON message, like a market tick. `sum` covers the other fields. */
export interface Tick {
  seq: number;
  t: number;
  sym: string;
  px: number;
  qty: number;
  sum: number;
}

const SYMS = ["ACME", "BUN", "DENO", "NODE", "SHMK", "PY", "RUST", "ZIG"];

/** FNV-1a over a string's UTF-16 units. */
export function checksumString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * FNV-1a over a tick's fields as integers (seq, px in hundredths, qty) and sym's UTF-16 units. Integer
 * arithmetic only: the check should cost little beside the JSON work it guards (a checksum over a
 * formatted `seq|sym|px|qty` string, used until 2026-12-02, cost 180–240 ns per tick on each side,
 * more than `JSON.stringify` of the tick on Bun and Deno).
 */
function tickSum(seq: number, sym: string, px: number, qty: number): number {
  let h = Math.imul(0x811c9dc5 ^ (seq >>> 0), 16777619);
  h = Math.imul(h ^ Math.round(px * 100), 16777619);
  h = Math.imul(h ^ qty, 16777619);
  for (let i = 0; i < sym.length; i++) h = Math.imul(h ^ sym.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The JSON text of tick `seq`, stamped `t` (ns). */
export function makeTick(seq: number, t: number): string {
  const sym = SYMS[seq & 7];
  const px = 100 + ((seq * 37) % 1000) / 100;
  const qty = 100 * ((seq % 9) + 1);
  const tick: Tick = { seq, t, sym, px, qty, sum: tickSum(seq, sym, px, qty) };
  return JSON.stringify(tick);
}

/** True if a parsed tick has every field of the right type and its checksum matches them. */
export function checkTick(t: Tick): boolean {
  return typeof t === "object" && t !== null && typeof t.seq === "number" && typeof t.sym === "string" &&
    typeof t.px === "number" && typeof t.qty === "number" && t.sum === tickSum(t.seq, t.sym, t.px, t.qty);
}

/**
 * A raw 64-byte message (little-endian): seq u32 at 0, sum u32 at 4 (over every other word), stamp
 * f64 at 8, then 12 words derived from seq.
 */
export const RAW_SIZE = 64;
const rawScratch = new Uint32Array(RAW_SIZE / 4);
const rawBytes = new Uint8Array(rawScratch.buffer);
const rawStamp = new Float64Array(rawScratch.buffer, 8, 1);

function rawSum(w: Uint32Array): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < 16; k++) if (k !== 1) h = Math.imul(h ^ w[k], 16777619);
  return h >>> 0;
}

/** Writes raw message `seq` stamped `stampNs` into `out` at `off` (64 bytes). */
export function writeRaw(out: Uint8Array, off: number, seq: number, stampNs: number): void {
  const w = rawScratch;
  w[0] = seq;
  rawStamp[0] = stampNs;
  for (let k = 4; k < 16; k++) w[k] = Math.imul(seq + k, 0x9e3779b1);
  w[1] = rawSum(w);
  out.set(rawBytes, off);
}

/** Checks the raw message of `length` bytes at `bytes[off]`. */
export function checkRaw(bytes: Uint8Array, off: number, length: number, out: FrameCheck): FrameCheck {
  rawBytes.set(bytes.subarray(off, off + RAW_SIZE));
  const w = rawScratch;
  out.seq = w[0];
  out.stamp = rawStamp[0];
  let ok = length === RAW_SIZE && w[1] === rawSum(w);
  for (let k = 4; ok && k < 16; k++) ok = w[k] === (Math.imul(out.seq + k, 0x9e3779b1) >>> 0);
  out.ok = ok;
  return out;
}

/** The result a receiving child prints (one line: "R " + JSON). */
export interface RunStats {
  /** Messages received in the throughput phase. */
  count: number;
  /** Bytes received in the throughput phase. */
  bytes: number;
  /** Seconds from the first message's send stamp to the last receipt. */
  seconds: number;
  /** One-way latency of the paced phase, ns. */
  p50: number;
  p99: number;
  /** Messages whose checksum or order was wrong. */
  bad: number;
  /** Messages checked. */
  checked: number;
}

/** The q-quantile of sorted numbers. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Frames a worker may have in flight before the main thread acknowledges them. */
export const WORKER_WINDOW = 16;

/** Counts what a receiver got: throughput phase, then one-way latency of the paced phase. */
export class Tally {
  n = 0;
  bytes = 0;
  bad = 0;
  t0 = 0;
  tEnd = 0;
  lat: number[] = [];
  #lastReport = 0;
  #count: number;
  #total: number;
  #progress: (n: number) => void;

  /**
   * @param count messages in the throughput phase
   * @param total messages in all (throughput + paced)
   * @param progress called about every 100 ms with the count so far
   */
  constructor(count: number, total: number, progress: (n: number) => void) {
    this.#count = count;
    this.#total = total;
    this.#progress = progress;
  }

  /** Counts message `seq`, sent at `stamp` and received (whole, before checking) at `now`. */
  add(seq: number, stamp: number, now: number, size: number, ok: boolean): void {
    if (!ok || seq !== this.n) this.bad++;
    if (seq < this.#count) {
      if (seq === 0) this.t0 = stamp;
      this.bytes += size;
      this.tEnd = now;
    } else {
      this.lat.push(now - stamp);
    }
    this.n++;
    if (now - this.#lastReport > 1e8) {
      this.#lastReport = now;
      this.#progress(this.n);
    }
  }

  /** The statistics; missing messages count as bad. */
  result(): RunStats {
    const lat = Float64Array.from(this.lat).sort();
    return {
      count: this.#count,
      bytes: this.bytes,
      seconds: (this.tEnd - this.t0) / 1e9,
      p50: quantile(lat, 0.5),
      p99: quantile(lat, 0.99),
      bad: this.bad + (this.#total - this.n),
      checked: this.n,
    };
  }
}

/** Now, on the monotonic clock every process shares (ns). */
export { nowNs };

/**
 * A newline-delimited text reader for a byte stream (a pipe's chunks): returns a function to call
 * with each chunk; it calls `onLine(text, bytes)` for every complete line (without the newline).
 * The receiving side of the pipe baselines (make demo, bench S2's peers), written the faster of two
 * ways per runtime, measured in one process on 64 KiB chunks of ticks (decode + JSON.parse): on
 * Deno each line decoded from the chunk's bytes with decodeText (711 ns per tick, against 977 for
 * one TextDecoder pass per chunk and a slice per line); on Bun and Node the TextDecoder pass
 * (201 vs 226, 453 vs 616 ns).
 */
export function lineReader(onLine: (line: string, bytes: number) => void): (chunk: Uint8Array) => void {
  if (native.runtime === "deno") {
    let carry = new Uint8Array(0);
    return (c) => {
      let chunk = c;
      if (carry.length > 0) {
        chunk = new Uint8Array(carry.length + c.length);
        chunk.set(carry);
        chunk.set(c, carry.length);
      }
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        onLine(decodeText(chunk, start, nl), nl + 1 - start);
        start = nl + 1;
      }
      carry = chunk.slice(start);
    };
  }
  const dec = new TextDecoder();
  let rest = "";
  return (chunk) => {
    const s = rest + dec.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = s.indexOf("\n"); nl >= 0; nl = s.indexOf("\n", start)) {
      const line = s.slice(start, nl);
      onLine(line, line.length + 1);
      start = nl + 1;
    }
    rest = s.slice(start);
  };
}
