// S2 — messages through a shmkit Channel between two processes of the same runtime (sender
// cpu0, receiver cpu1), spsc (or spsc-ordered), 1024 slots. Cells (transport, variant):
//   "shmkit channel" "64 B".."4 KiB"        send (copy in) -> recvInto (copy out), order checked
//   "shmkit channel (message API)" "64 B"   send -> recv(), read the bytes in place, release()
//   "shmkit channel (message API, recvRun 32)" "64 B"   the same, the receiver claiming runs of 32
//   "shmkit channel (batch API)" "64 B"     sendBatch of 32 -> recvBatch(fn) reading the bytes
//   "shmkit channel (JSON)" "JSON tick"     send(JSON.stringify(tick)) -> recvBatch + decodeText + JSON.parse,
//                                           checksum of every tick checked (demo_wire.ts)
//   "shmkit channel (JSON, message API)" "JSON tick"    the same ticks, recv() + json() + release()
//   "shmkit channel (sendValue, message API)" "JSON tick"   the tick objects by sendValue (node:v8
//                                           serialize), recv() + value() + release()
//   "shmkit channel spsc-ordered (message API|batch API|JSON|JSON, message API)"   the same cells on an
//                                           "spsc-ordered" channel (blocks in ring order, docs/layout/channel.md)
//   "serialization floor" "JSON tick, no transport"   stringify + parse in one process
//   "serialization floor (JSON.parse + check)" "JSON tick, no transport"   the receiver's parse + check alone
//   "serialization floor (decodeText + JSON.parse + check)"   the same from UTF-8 bytes through decodeText
//   "serialization floor (node:v8)" "JSON tick, no transport"   v8 serialize + deserialize, one process
// Peers for the same variants: bench/scenarios/peers_msgs.ts.
// @bench-runtimes deno bun node
// @bench-ids S2
import { Channel, type ChannelHandle, decodeText, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import { checkTick, makeTick, type Tick } from "../../demo_wire.ts";
import {
  args,
  clockNs,
  cpuSelf,
  emit,
  env,
  exited,
  orphaned,
  phaseProbe,
  pick,
  pin,
  procCpu,
  RUNTIME,
  sameJobFloor,
  spawnScript,
} from "../lib.ts";

const ME = "bench/scenarios/s2_channel_msgs.ts";
const SIZES = [64, 256, 1024, 4096];
const SLOTS = 1024;
const BATCH = 32;
type Base = "copy" | "msg" | "msgrun" | "batch" | "json" | "jsonmsg" | "value";
/** A cell: a base mode, on an "spsc" channel or (prefix "o") an "spsc-ordered" one. */
type Mode = Base | "omsg" | "obatch" | "ojson" | "ojsonmsg";
const BASES: readonly Base[] = ["copy", "msg", "msgrun", "batch", "json", "jsonmsg", "value"];
/**
 * The base mode of a cell as the literal itself: an internalized string, so `mode === "msg"` in the
 * per-message loops is a pointer compare (a sliced or argv string cost V8 a StringEqual call per
 * compare, up to four per message on each side: seen in a profile of the Deno receiver).
 */
const baseOf = (m: Mode): Base => {
  const b = m[0] === "o" ? m.slice(1) : m;
  const hit = BASES.find((x) => x === b);
  if (hit === undefined) throw new Error(`S2: unknown mode ${m}`);
  return hit;
};
/** Wait options, made once (no object per call). */
const T200 = { timeout: 200 };
const T10S = { timeout: 10_000 };

if (args()[0] === "child") {
  child(JSON.parse(args()[1]), JSON.parse(args()[2]), Number(args()[3]), baseOf(args()[4] as Mode));
} else await main();

/** Sender: ctl[0] = 1 once attached, stops when ctl[1] = 1. */
function child(h: ChannelHandle, c: SharedMemoryHandle, size: number, mode: Base): void {
  pin(0);
  const ch = Channel.attach(h);
  const seg = SharedMemory.attach(c);
  const ctl = seg.view(Int32Array, 0, 4);
  const msgs = Array.from({ length: BATCH }, () => new Uint8Array(size));
  for (const m of msgs) for (let i = 0; i < size; i++) m[i] = i & 0xff;
  const dvs = msgs.map((m) => new DataView(m.buffer));
  const ticks = Array.from({ length: 4096 }, (_, i) => makeTick(i, i));
  const objs = mode === "value" ? ticks.map((t) => JSON.parse(t) as Tick) : [];
  Atomics.store(ctl, 0, 1);
  let seq = 0;
  while (Atomics.load(ctl, 1) === 0 && !orphaned()) {
    try {
      if (mode === "batch") {
        for (let k = 0; k < BATCH; k++) dvs[k].setUint32(0, (seq + k) >>> 0, true);
        ch.sendBatch(msgs, T200); // may time out part-way: then the seq is resynced below
        seq = (seq + BATCH) >>> 0;
      } else if (mode === "json" || mode === "jsonmsg") {
        ch.send(ticks[seq & 4095], T200);
        seq = (seq + 1) >>> 0;
      } else if (mode === "value") {
        ch.sendValue(objs[seq & 4095], T200);
        seq = (seq + 1) >>> 0;
      } else {
        dvs[0].setUint32(0, seq, true);
        ch.send(msgs[0], T200);
        seq = (seq + 1) >>> 0;
      }
    } catch (e) {
      if ((e as { code?: string }).code !== "ETIMEDOUT") throw e;
      if (mode === "batch") break; // the receiver stopped: a partial batch would break the order check
    }
  }
  ch.close();
  seg.close();
}

async function cell(size: number, cellMode: Mode, windowS: number): Promise<void> {
  pin(1);
  const ordered = cellMode !== baseOf(cellMode);
  const mode = baseOf(cellMode);
  const slotSize = mode === "json" || mode === "jsonmsg" || mode === "value" ? 256 : size;
  const ch = Channel.create(`shmkit-bench-s2-${RUNTIME}-${size}-${mode}-${Date.now() % 1e6}`, {
    slots: SLOTS,
    slotSize,
    mode: ordered ? "spsc-ordered" : "spsc",
    recvRun: mode === "msgrun" ? 32 : 1,
  });
  const seg = SharedMemory.anonymous(64);
  const ctl = seg.view(Int32Array, 0, 4);
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(ch.handle()),
    JSON.stringify(seg.handle()),
    String(size),
    cellMode,
  ]);
  try {
    while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 5));
    ch.unlink(); // the child has it open
    const out = new Uint8Array(slotSize);
    const dv = new DataView(out.buffer);
    let expect = 0;
    let got = 0;
    let bad = "";
    const check = (n: number, seq: number): void => {
      if (n !== size || seq !== expect) {
        bad ||= `S2 ${mode}: message ${got} has ${n} bytes and seq ${seq}, expected ${size} and ${expect}`;
      }
      expect = (expect + 1) >>> 0;
      got++;
    };
    const onBytes = (b: Uint8Array, n: number): void =>
      check(n, b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24) >>> 0);
    const onTick = (t: Tick): void => {
      if (!checkTick(t) || t.seq !== (expect & 4095)) bad ||= `S2 ${mode}: tick ${got} is ${JSON.stringify(t)}`;
      expect = (expect + 1) >>> 0;
      got++;
    };
    const onJson = (b: Uint8Array, n: number): void => onTick(JSON.parse(decodeText(b, 0, n)) as Tick);
    const one = (): void => {
      if (mode === "jsonmsg" || mode === "value") {
        const m = ch.recv(T10S);
        onTick((mode === "value" ? m.value() : m.json()) as Tick);
        m.release();
      } else if (mode === "copy") {
        const n = ch.recvInto(out, T10S);
        check(n, dv.getUint32(0, true));
      } else if (mode === "msg" || mode === "msgrun") {
        const m = ch.recv(T10S);
        const b = m.bytes;
        check(b.length, (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0);
        m.release();
      } else {
        ch.recvBatch(mode === "json" ? onJson : onBytes, T10S);
      }
      if (bad) throw new Error(bad);
    };
    const warm = clockNs() + 0.3e9;
    while (clockNs() < warm) for (let i = 0; i < 256; i++) one();
    const c0 = cpuSelf() + procCpu(kid.pid!);
    const g0 = got;
    const t0 = clockNs();
    const end = t0 + windowS * 1e9;
    let t1 = t0;
    while (t1 < end) {
      for (let i = 0; i < 64; i++) one();
      t1 = clockNs();
    }
    const msgs = got - g0;
    const cpu = cpuSelf() + procCpu(kid.pid!) - c0;
    Atomics.store(ctl, 1, 1);
    while (kid.exitCode === null) {
      while (ch.tryRecvBatch(() => {}) > 0) { /* drain so the sender sees its stop flag */ }
      await new Promise((r) => setTimeout(r, 1));
    }
    await exited(kid);
    const wall = (t1 - t0) / 1e9;
    const plain = mode === "copy"
      ? "shmkit channel"
      : mode === "msg"
      ? "shmkit channel (message API)"
      : mode === "msgrun"
      ? "shmkit channel (message API, recvRun 32)"
      : mode === "batch"
      ? "shmkit channel (batch API)"
      : mode === "jsonmsg"
      ? "shmkit channel (JSON, message API)"
      : mode === "value"
      ? "shmkit channel (sendValue, message API)"
      : "shmkit channel (JSON)";
    // spsc-ordered cells: "shmkit channel (message API)" -> "shmkit channel spsc-ordered (message API)"
    const transport = ordered ? plain.replace("shmkit channel", "shmkit channel spsc-ordered") : plain;
    const ticky = mode === "json" || mode === "jsonmsg" || mode === "value";
    const variant = ticky ? "JSON tick" : `${size} B`;
    const base = {
      bench: "S2",
      variant,
      transport,
      cpu_s: cpu,
      wall_s: wall,
      // the message API cells against the C floor of the same protocol (bench/c/chan_floor.c)
      floor_variant: mode === "msg" || mode === "msgrun"
        ? (ordered ? "64 B message API, spsc-ordered" : "64 B message API")
        : "none",
      peer_variant: variant,
    };
    const how = mode === "copy"
      ? "send (copy in) -> recvInto (copy out)"
      : mode === "msg" || mode === "msgrun"
      ? `send -> recv()${mode === "msgrun" ? " (recvRun 32)" : ""}, bytes read in place, release()`
      : mode === "batch"
      ? `sendBatch of ${BATCH} -> recvBatch(fn) reading the bytes in place`
      : mode === "jsonmsg"
      ? "send(JSON.stringify) -> recv(), json(), release(), checksums checked"
      : mode === "value"
      ? "sendValue(tick object: node:v8 serialize) -> recv(), value(), release(), checksums checked"
      : "send(JSON.stringify) -> recvBatch + decodeText + JSON.parse, checksums checked";
    const note = `${
      ordered ? "spsc-ordered" : "spsc"
    }, ${SLOTS} slots, ${how}, order checked; sender cpu0, receiver cpu1`;
    emit({ ...base, metric: "msgs/s", value: msgs / wall, note });
    if (!ticky) emit({ ...base, metric: "GB/s", value: (msgs * size) / wall / 1e9, note });
  } finally {
    if (kid.exitCode === null) kid.kill("SIGKILL");
    ch.close();
    seg.close();
  }
}

/**
 * Runs `step(i)` for i = 0, 1, 2, ... (index mod 4096) over `windowS` seconds in this process and
 * emits the rate as a "JSON tick, no transport" floor row.
 */
function timedFloor(windowS: number, transport: string, note: string, step: (i: number) => void): void {
  let n = 0;
  const c0 = cpuSelf();
  const t0 = clockNs();
  const end = t0 + windowS * 1e9;
  let t1 = t0;
  while (t1 < end) {
    for (let i = 0; i < 256; i++) step((n + i) & 4095);
    n += 256;
    t1 = clockNs();
  }
  const wall = (t1 - t0) / 1e9;
  emit({
    bench: "S2",
    variant: "JSON tick, no transport",
    transport,
    metric: "msgs/s",
    value: n / wall,
    cpu_s: cpuSelf() - c0,
    wall_s: wall,
    floor_variant: "none",
    note,
  });
}

/**
 * A serialization floor: `roundTrip` (serialize + parse) of the same tick objects in one process,
 * no transport.
 */
function serializationFloor(windowS: number, transport: string, note: string, roundTrip: (t: Tick) => Tick): void {
  const objs = Array.from({ length: 4096 }, (_, i) => JSON.parse(makeTick(i, i)) as Tick);
  let sink = 0;
  timedFloor(windowS, transport, note, (i) => {
    sink += roundTrip(objs[i]).qty;
  });
  if (sink < 0) throw new Error("unreachable: keeps the round trips observable");
}

/**
 * A receive floor: what every JSON receiver does per message, alone in one process: `parse` of the
 * same tick texts (strings, or their UTF-8 bytes) and the checksum check every JSON cell and peer
 * does. No transport's JSON receiver can run faster than the first (the JSON targets' ceiling in
 * bench/run.ts); the second adds shmkit's decode from shared bytes (`decodeText`).
 */
function receiveFloor(windowS: number, transport: string, note: string, parse: (i: number) => Tick): void {
  let bad = 0;
  timedFloor(windowS, transport, note, (i) => {
    const t = parse(i);
    if (!checkTick(t) || t.seq !== i) bad++;
  });
  if (bad) throw new Error(`S2 ${transport}: ${bad} ticks failed their check`);
}

/**
 * The JSON floors: stringify + parse, the receiver's parse + check alone (from strings and from
 * bytes) and, where the runtime has node:v8, the sendValue one.
 */
function serializationFloors(windowS: number): void {
  serializationFloor(
    windowS,
    "serialization floor",
    "JSON.stringify + JSON.parse of the same ticks in one process (a sender that stringifies and a receiver " +
      "that parses, together; the cells and peers send ready-made tick strings)",
    (t) => JSON.parse(JSON.stringify(t)) as Tick,
  );
  const texts = Array.from({ length: 4096 }, (_, i) => makeTick(i, i));
  const enc = new TextEncoder();
  const bytes = texts.map((t) => enc.encode(t));
  receiveFloor(
    windowS,
    "serialization floor (JSON.parse + check)",
    "JSON.parse of the same tick strings + the checksum check, one process: the receiver's work of every JSON " +
      "cell and peer, so no JSON transport's receiver is faster",
    (i) => JSON.parse(texts[i]) as Tick,
  );
  receiveFloor(
    windowS,
    "serialization floor (decodeText + JSON.parse + check)",
    "decodeText of the same ticks' UTF-8 bytes + JSON.parse + the checksum check, one process: the shmkit " +
      "JSON receiver's work without the transport",
    (i) => JSON.parse(decodeText(bytes[i], 0, bytes[i].length)) as Tick,
  );
  const v8 = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    ?.getBuiltinModule?.("node:v8") as
      | { serialize(v: unknown): Uint8Array; deserialize(b: Uint8Array): unknown }
      | undefined;
  if (!v8) return;
  serializationFloor(
    windowS,
    "serialization floor (node:v8)",
    "node:v8 serialize + deserialize of the same tick objects in one process (the ceiling of sendValue)",
    (t) => v8.deserialize(v8.serialize(t)) as Tick,
  );
}

async function main(): Promise<void> {
  phaseProbe("S2"); // which cross-core phase of the VM this job ran in (bench/lib.ts)
  const w = pick(1.5, 0.3);
  // SHMKIT_BENCH_S2_CELLS=msg,batch runs only those cells (copy, msg, omsg, msgrun, batch, obatch, json, jsonmsg,
  // ojson, ojsonmsg, value, floor; "o" = the same on an spsc-ordered channel); default all.
  const only = (env("SHMKIT_BENCH_S2_CELLS") ?? "").split(/[,\s]+/).filter(Boolean);
  const want = (c: string): boolean => only.length === 0 || only.includes(c);
  if (want("copy")) { for (const size of SIZES) await cell(size, "copy", w); }
  // The C floor of the message protocol in this job's phase, before and after the message cells (bench/lib.ts).
  const floors = only.length === 0 || only.some((c) => c !== "copy" && c !== "floor");
  if (floors) sameJobFloor("S2", "chan_floor");
  if (want("msg")) await cell(64, "msg", w);
  if (want("omsg")) await cell(64, "omsg", w);
  if (want("msgrun")) await cell(64, "msgrun", w);
  if (want("batch")) await cell(64, "batch", w);
  if (want("obatch")) await cell(64, "obatch", w);
  if (want("json")) await cell(64, "json", w);
  if (want("jsonmsg")) await cell(64, "jsonmsg", w);
  if (want("ojson")) await cell(64, "ojson", w);
  if (want("ojsonmsg")) await cell(64, "ojsonmsg", w);
  if (want("value")) await cell(64, "value", w);
  if (floors) sameJobFloor("S2", "chan_floor");
  if (want("floor")) serializationFloors(w);
}
