// Peers of S2: the same messages as bench/scenarios/s2_channel_msgs.ts over a pipe (this
// process writes the child's stdin; the child reads, checks and counts every message). Two ways
// each, one write() per message and batched (256 messages per write()):
//   "pipe (write per msg)"  / "pipe (batched writes)"   "64 B"       length-framed 64-byte messages, seq checked
//   "pipe (write per msg)"  / "pipe (batched writes)"   "JSON tick"  newline-delimited JSON ticks, parsed and
//                                                                    checksummed (demo_wire.ts)
// Rate: messages counted by the child / time from the first write to the child's count.
// CPU: this process plus the child.
// @bench-runtimes deno bun node
// @bench-ids S2
import { type ChildProcess, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { checkTick, lineReader, makeTick, type Tick } from "../../demo_wire.ts";
import { args, clockNs, cpuSelf, emit, exited, pick, pin, RUNTIME, runtimeCommand } from "../lib.ts";

const ME = "bench/scenarios/peers_msgs.ts";
const BATCH = 256;
type Kind = "64" | "json";

if (args()[0] === "child") await child(args()[1] as Kind);
else await main();

async function child(kind: Kind): Promise<void> {
  pin(1);
  const proc = (globalThis as unknown as { process: { stdin: Readable; stdout: Writable } }).process;
  let count = 0;
  let bad = "";
  proc.stdout.write("R\n"); // ready: the parent starts its clock after this
  if (kind === "64") {
    const frame = new Uint8Array(64);
    let have = 0;
    for await (const chunk of proc.stdin as AsyncIterable<Uint8Array>) {
      let off = 0;
      while (off < chunk.length) {
        if (have === 0 && chunk.length - off >= 64) { // whole message in the chunk: read it in place
          const seq = (chunk[off] | (chunk[off + 1] << 8) | (chunk[off + 2] << 16) | (chunk[off + 3] << 24)) >>> 0;
          if (seq !== count) bad ||= `message ${count} has seq ${seq}`;
          count++;
          off += 64;
          continue;
        }
        const n = Math.min(64 - have, chunk.length - off);
        frame.set(chunk.subarray(off, off + n), have);
        have += n;
        off += n;
        if (have === 64) {
          const seq = (frame[0] | (frame[1] << 8) | (frame[2] << 16) | (frame[3] << 24)) >>> 0;
          if (seq !== count) bad ||= `message ${count} has seq ${seq}`;
          count++;
          have = 0;
        }
      }
    }
  } else {
    // demo_wire.ts lineReader: the faster of two ways to split and decode lines on each runtime.
    const feed = lineReader((line) => {
      const t = JSON.parse(line) as Tick;
      if (!checkTick(t) || t.seq !== (count & 4095)) bad ||= `tick ${count} is ${line}`;
      count++;
    });
    for await (const chunk of proc.stdin as AsyncIterable<Uint8Array>) feed(chunk);
  }
  await new Promise<void>((r) => proc.stdout.write(`${count} ${bad || "ok"} ${cpuSelf()}\n`, () => r()));
}

function writeAll(out: Writable, data: Uint8Array | string): Promise<void> | undefined {
  if (out.write(data)) return undefined;
  return new Promise((r) => out.once("drain", () => r()));
}

async function cell(kind: Kind, batched: boolean, windowS: number): Promise<void> {
  pin(0);
  const [cmd, ...rest] = runtimeCommand(RUNTIME, ME);
  const kid: ChildProcess = spawn(cmd, [...rest, "child", kind], { stdio: ["pipe", "pipe", "inherit"] });
  let reply = "";
  kid.stdout!.on("data", (d: Uint8Array) => reply += new TextDecoder().decode(d));
  const out = kid.stdin!;
  while (!reply.includes("R\n")) await new Promise((r) => setTimeout(r, 2)); // started, outside the timed part
  reply = "";
  const ticks = Array.from({ length: 4096 }, (_, i) => makeTick(i, i) + "\n");
  const c0 = cpuSelf();
  const t0 = clockNs();
  const end = t0 + windowS * 1e9;
  let seq = 0;
  while (clockNs() < end) {
    for (let r = 0; r < 16; r++) {
      let p: Promise<void> | undefined;
      if (kind === "64") {
        if (batched) {
          const b = new Uint8Array(64 * BATCH); // fresh: the stream may still hold the last one
          const dv = new DataView(b.buffer);
          for (let k = 0; k < BATCH; k++) dv.setUint32(64 * k, seq++, true);
          p = writeAll(out, b);
        } else {
          const b = new Uint8Array(64);
          new DataView(b.buffer).setUint32(0, seq++, true);
          p = writeAll(out, b);
        }
      } else if (batched) {
        let s = "";
        for (let k = 0; k < BATCH; k++) s += ticks[seq++ & 4095];
        p = writeAll(out, s);
      } else {
        p = writeAll(out, ticks[seq++ & 4095]);
      }
      if (p) await p;
    }
  }
  await new Promise<void>((r) => out.end(() => r()));
  await exited(kid);
  const t1 = clockNs();
  const [countStr, status, kidCpu] = reply.trim().split(" ");
  const cpu = cpuSelf() - c0 + Number(kidCpu); // the child's whole life (its start-up included)
  const count = Number(countStr);
  if (status !== "ok" || count !== seq) {
    throw new Error(`peers_msgs ${kind}: child says "${reply.trim()}", sent ${seq}`);
  }
  const wall = (t1 - t0) / 1e9;
  emit({
    bench: "S2",
    variant: kind === "64" ? "64 B" : "JSON tick",
    transport: batched ? "pipe (batched writes)" : "pipe (write per msg)",
    metric: "msgs/s",
    value: count / wall,
    cpu_s: cpu,
    wall_s: wall,
    floor_variant: "none",
    note: `${batched ? `${BATCH} messages per write()` : "one write() per message"}, child checks ${
      kind === "64" ? "every seq" : "every tick's checksum"
    }; writer cpu0, reader cpu1`,
  });
}

async function main(): Promise<void> {
  const w = pick(1.5, 0.3);
  for (const kind of ["64", "json"] as const) {
    await cell(kind, false, w);
    await cell(kind, true, w);
  }
}
