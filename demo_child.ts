/**
 * A child process of `make demo` (demo.ts). Runs on Deno, Bun or Node (build/node/demo_child.js).
 *
 *   demo_child <send|recv> <chan|pipe> <frames|json|raw> <count> <paced> [channel handle JSON]
 *
 * Senders print "ready send" on stderr and wait for "go" on stdin; they send `count` messages as
 * fast as the transport takes them, then (after a pause for the receiver to drain) `paced` more, a few ms apart, for one-way
 * latency. Receivers print "ready recv" on stderr, "P <n>" progress lines and one final
 * "R <json RunStats>" line on stdout. Pipes carry frames and raw 64-byte messages as they are
 * (one write per message) and ticks as JSON lines (one write per tick). On a channel, JSON ticks
 * and raw messages go out with sendBatch (64 per call) and come in with recvBatch.
 *
 * @module
 */
import process from "node:process";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { Channel, type ChannelHandle, decodeText } from "./mod.ts";
import { nowNs } from "./src/sys.ts";
import {
  checkFrame,
  checkRaw,
  checksumWords,
  checkTick,
  fillRandom,
  FRAME_HEADER,
  FRAME_SIZE,
  type FrameCheck,
  lineReader,
  makeTick,
  RAW_SIZE,
  Tally,
  type Tick,
  WORKER_WINDOW,
  writeFrameHeader,
  writeRaw,
} from "./demo_wire.ts";

// A child process gets its arguments on the command line; the worker baseline through workerData.
const [role, transport, workload, countArg, pacedArg, handleArg] = isMainThread
  ? process.argv.slice(2)
  : (workerData as { args: string[] }).args;
const count = Number(countArg);
const paced = Number(pacedArg);
const total = count + paced;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves on the first "go" line on stdin. */
function waitGo(): Promise<void> {
  return new Promise((resolve) => {
    let buf = "";
    const onData = (d: Uint8Array | string): void => {
      buf += typeof d === "string" ? d : new TextDecoder().decode(d);
      if (buf.includes("go")) {
        process.stdin.off("data", onData);
        process.stdin.destroy(); // nothing more comes; do not keep the process alive
        resolve();
      }
    };
    process.stdin.on("data", onData);
  });
}

// ---------------------------------------------------------------------------------------------
// Senders

const BODIES = 4;

function makeBodies(): { bodies: Uint8Array[]; sums: number[] } {
  const bodies: Uint8Array[] = [];
  const sums: number[] = [];
  for (let k = 0; k < BODIES; k++) {
    const b = new Uint8Array(FRAME_SIZE - FRAME_HEADER);
    fillRandom(b, 0x1234567 + k * 7919);
    bodies.push(b);
    sums.push(checksumWords(new Uint32Array(b.buffer)));
  }
  return { bodies, sums };
}

/** Before the paced (latency) phase: let the receiver drain the throughput phase's backlog. */
async function drained(ch?: Channel): Promise<void> {
  await sleep(100);
  for (let k = 0; ch && k < 2000 && ch.available < ch.slots; k++) await sleep(1);
}

/** The gap between paced messages: more than the receiver needs to check one. */
const GAP_MS = workload === "frames" ? 5 : 1;

async function sendChannel(ch: Channel): Promise<void> {
  if (workload === "frames") {
    const { bodies, sums } = makeBodies();
    for (let seq = 0; seq < total; seq++) {
      if (seq === count) await drained(ch);
      if (seq >= count) await sleep(GAP_MS);
      const loan = ch.loan({ timeout: 30_000 });
      const b = loan.bytes;
      b.set(bodies[seq % BODIES], FRAME_HEADER);
      writeFrameHeader(new DataView(b.buffer, b.byteOffset, FRAME_HEADER), seq, nowNs(), sums[seq % BODIES]);
      loan.send(FRAME_SIZE);
    }
  } else {
    // Throughput phase in batches of 64 (one stamp per batch), then paced single messages.
    const raw = workload === "raw";
    const bufs = Array.from({ length: BATCH }, () => new Uint8Array(RAW_SIZE));
    const ticks: string[] = [];
    let seq = 0;
    while (seq < count) {
      const k = Math.min(BATCH, count - seq);
      const stamp = nowNs();
      if (raw) {
        for (let j = 0; j < k; j++) writeRaw(bufs[j], 0, seq + j, stamp);
        ch.sendBatch(k === BATCH ? bufs : bufs.slice(0, k), { timeout: 30_000 });
      } else {
        ticks.length = k;
        for (let j = 0; j < k; j++) ticks[j] = makeTick(seq + j, stamp);
        ch.sendBatch(ticks, { timeout: 30_000 });
      }
      seq += k;
    }
    await drained(ch);
    for (; seq < total; seq++) {
      await sleep(GAP_MS);
      if (raw) {
        writeRaw(bufs[0], 0, seq, nowNs());
        ch.send(bufs[0], { timeout: 30_000 });
      } else ch.send(makeTick(seq, nowNs()), { timeout: 30_000 });
    }
  }
}

const BATCH = 64;

function writeOut(data: Uint8Array | string): Promise<void> | undefined {
  if (process.stdout.write(data)) return undefined;
  return new Promise((r) => process.stdout.once("drain", () => r()));
}

async function sendPipe(): Promise<void> {
  if (workload === "frames") {
    const { bodies, sums } = makeBodies();
    for (let seq = 0; seq < total; seq++) {
      if (seq === count) await drained();
      if (seq >= count) await sleep(GAP_MS);
      // A fresh buffer per frame: the stream may still hold the previous one.
      const f = new Uint8Array(FRAME_SIZE);
      f.set(bodies[seq % BODIES], FRAME_HEADER);
      writeFrameHeader(new DataView(f.buffer, 0, FRAME_HEADER), seq, nowNs(), sums[seq % BODIES]);
      const p = writeOut(f);
      if (p) await p;
    }
  } else if (workload === "raw") {
    for (let seq = 0; seq < total; seq++) {
      if (seq === count) await drained();
      if (seq >= count) await sleep(GAP_MS);
      const b = new Uint8Array(RAW_SIZE); // fresh: the stream may still hold the previous one
      writeRaw(b, 0, seq, nowNs());
      const p = writeOut(b);
      if (p) await p;
    }
  } else {
    for (let seq = 0; seq < total; seq++) {
      if (seq === count) await drained();
      if (seq >= count) await sleep(GAP_MS);
      const p = writeOut(makeTick(seq, nowNs()) + "\n");
      if (p) await p;
    }
  }
  await new Promise<void>((r) => process.stdout.end(() => r()));
}

// ---------------------------------------------------------------------------------------------
// Receivers

function recvChannel(ch: Channel, t: Tally): void {
  const fc: FrameCheck = { seq: 0, stamp: 0, ok: false };
  for (let i = 0; i < total; i++) {
    const m = ch.recv({ timeout: 60_000 });
    const now = nowNs();
    if (workload === "frames") {
      const size = m.bytes.length;
      checkFrame(m.bytes, fc);
      m.release();
      t.add(fc.seq, fc.stamp, now, size, fc.ok);
    } else {
      const size = m.bytes.length;
      const tick = m.json() as Tick;
      m.release();
      t.add(tick.seq, tick.t, now, size, checkTick(tick));
    }
  }
}

/**
 * Small messages (JSON ticks, raw 64 B): recvBatch hands each queued message to a callback in
 * place, one ring operation per burst; the receive time is taken once per burst.
 */
function recvChannelSmall(ch: Channel, t: Tally): void {
  const fc: FrameCheck = { seq: 0, stamp: 0, ok: false };
  let now = 0;
  let first = true;
  const onTick = (b: Uint8Array, n: number): void => {
    if (first) now = nowNs(), first = false;
    const tick = JSON.parse(decodeText(b, 0, n)) as Tick; // UTF-8 as TextDecoder, no subarray
    t.add(tick.seq, tick.t, now, n, checkTick(tick));
  };
  const onRaw = (b: Uint8Array, n: number): void => {
    if (first) now = nowNs(), first = false;
    checkRaw(b, 0, n, fc);
    t.add(fc.seq, fc.stamp, now, n, fc.ok);
  };
  const fn = workload === "raw" ? onRaw : onTick;
  while (t.n < total) {
    first = true;
    ch.recvBatch(fn, { timeout: 60_000, max: total - t.n });
  }
}

async function recvPipe(t: Tally): Promise<void> {
  const fc: FrameCheck = { seq: 0, stamp: 0, ok: false };
  if (workload === "frames") {
    const frame = new Uint8Array(FRAME_SIZE);
    let have = 0;
    for await (const chunk of process.stdin as AsyncIterable<Uint8Array>) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(FRAME_SIZE - have, chunk.length - off);
        frame.set(chunk.subarray(off, off + n), have);
        have += n;
        off += n;
        if (have === FRAME_SIZE) {
          const now = nowNs();
          checkFrame(frame, fc);
          t.add(fc.seq, fc.stamp, now, FRAME_SIZE, fc.ok);
          have = 0;
        }
      }
    }
  } else if (workload === "raw") {
    const msg = new Uint8Array(RAW_SIZE);
    let have = 0;
    for await (const chunk of process.stdin as AsyncIterable<Uint8Array>) {
      const now = nowNs(); // every message in this chunk arrived by now
      let off = 0;
      while (off < chunk.length) {
        if (have === 0 && chunk.length - off >= RAW_SIZE) { // a whole message: check it in place
          checkRaw(chunk, off, RAW_SIZE, fc);
          t.add(fc.seq, fc.stamp, now, RAW_SIZE, fc.ok);
          off += RAW_SIZE;
          continue;
        }
        const n = Math.min(RAW_SIZE - have, chunk.length - off);
        msg.set(chunk.subarray(off, off + n), have);
        have += n;
        off += n;
        if (have === RAW_SIZE) {
          checkRaw(msg, 0, RAW_SIZE, fc);
          t.add(fc.seq, fc.stamp, now, RAW_SIZE, fc.ok);
          have = 0;
        }
      }
    }
  } else {
    let now = 0; // every line in a chunk arrived by the time the chunk did
    const feed = lineReader((line, bytes) => {
      const tick = JSON.parse(line) as Tick;
      t.add(tick.seq, tick.t, now, bytes, checkTick(tick));
    });
    for await (const chunk of process.stdin as AsyncIterable<Uint8Array>) {
      now = nowNs();
      feed(chunk);
    }
  }
}

/**
 * The worker postMessage baseline (frames only): runs in a worker thread of the demo parent and
 * transfers (zero-copy) one fresh frame per message, at most WORKER_WINDOW unacknowledged.
 */
async function sendWorker(): Promise<void> {
  const port = parentPort!;
  const { bodies, sums } = makeBodies();
  let credits = WORKER_WINDOW;
  let wake: (() => void) | undefined;
  const onCredit = (n: number): void => {
    credits += n;
    wake?.();
    wake = undefined;
  };
  port.on("message", onCredit);
  const more = (): Promise<void> => new Promise((r) => wake = r);
  for (let seq = 0; seq < total; seq++) {
    if (seq === count) {
      while (credits < WORKER_WINDOW) await more(); // the receiver has drained the backlog
      await sleep(100);
    }
    if (seq >= count) await sleep(GAP_MS);
    while (credits === 0) await more();
    credits--;
    const f = new Uint8Array(FRAME_SIZE);
    f.set(bodies[seq % BODIES], FRAME_HEADER);
    writeFrameHeader(new DataView(f.buffer, 0, FRAME_HEADER), seq, nowNs(), sums[seq % BODIES]);
    port.postMessage(f, [f.buffer]);
  }
  while (credits < WORKER_WINDOW) await more();
  // Let the worker end: Node and Bun have MessagePort.close(); Deno's parentPort lacks it, so
  // dropping the listener is what releases the worker there.
  port.off("message", onCredit);
  if (typeof (port as { close?: unknown }).close === "function") port.close();
}

/**
 * JSON ticks with no transport at all: this process's own per-tick JSON work, in ticks/s (the best
 * of three rounds of 50 000). A sender builds and stringifies ticks (makeTick), a receiver decodes,
 * parses and checks them as recvChannelSmall does. No transport can deliver ticks faster than the
 * slower of the two sides; demo.ts prints it beside the channel and the pipe. It also warms the JIT
 * for both transports alike.
 */
function jsonFloor(side: "send" | "recv"): number {
  const ROUND = 50_000;
  const stamp = nowNs();
  const texts = Array.from({ length: 64 }, (_, j) => new TextEncoder().encode(makeTick(j, stamp)));
  let best = 0;
  let sink = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = nowNs();
    if (side === "send") {
      for (let i = 0; i < ROUND; i++) sink += makeTick(i, t0).length;
    } else {
      for (let i = 0; i < ROUND; i++) {
        const b = texts[i & 63];
        if (checkTick(JSON.parse(decodeText(b, 0, b.length)) as Tick)) sink++;
      }
    }
    best = Math.max(best, ROUND / ((nowNs() - t0) / 1e9));
  }
  if (sink === 0) throw new Error("jsonFloor: nothing made or checked");
  return best;
}

async function main(): Promise<void> {
  if (!isMainThread) return await sendWorker();
  if (!(count >= 1) || !(paced >= 0) || !["send", "recv"].includes(role) || !["chan", "pipe"].includes(transport)) {
    throw new Error(`usage: demo_child <send|recv> <chan|pipe> <frames|json> <count> <paced> [handle]`);
  }
  const ch = transport === "chan" ? Channel.attach(JSON.parse(handleArg) as ChannelHandle) : undefined;
  try {
    if (workload === "json") process.stderr.write(`floor ${role} ${jsonFloor(role as "send" | "recv")}\n`);
    if (role === "send") {
      process.stderr.write("ready send\n");
      await waitGo();
      if (ch) await sendChannel(ch);
      else await sendPipe();
    } else {
      process.stderr.write("ready recv\n");
      const t = new Tally(count, total, (n) => process.stdout.write(`P ${n}\n`));
      if (ch && workload !== "frames") recvChannelSmall(ch, t);
      else if (ch) recvChannel(ch, t);
      else await recvPipe(t);
      await new Promise<void>((r) => process.stdout.write(`R ${JSON.stringify(t.result())}\n`, () => r()));
    }
  } finally {
    ch?.close();
  }
}

await main();
if (isMainThread) process.exit(0);
