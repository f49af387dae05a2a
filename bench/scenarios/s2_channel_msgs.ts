// S2 — inline messages through a shmkit Channel between two processes of the same runtime: a
// sender child copies 64 B, 256 B, 1 KiB and 4 KiB messages in (`send`, blocking on a full
// channel), this process copies each out (`recvInto`, parking on an empty one) and checks the
// sequence number every message carries.
// @bench-runtimes deno bun node
// @bench-ids S2
import { Channel, type ChannelHandle, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import { args, clockNs, cpuSelf, emit, exited, pick, pin, procCpu, RUNTIME, spawnScript } from "../lib.ts";

const ME = "bench/scenarios/s2_channel_msgs.ts";
const SIZES = [64, 256, 1024, 4096];
const SLOTS = 1024;

if (args()[0] === "child") child(JSON.parse(args()[1]), JSON.parse(args()[2]), Number(args()[3]));
else await main();

/** Sender: ctl[0] = 1 once attached, stops when ctl[1] = 1. */
function child(h: ChannelHandle, c: SharedMemoryHandle, size: number): void {
  pin(0);
  const ch = Channel.attach(h);
  const seg = SharedMemory.attach(c);
  const ctl = seg.view(Int32Array, 0, 4);
  const msg = new Uint8Array(size);
  const dv = new DataView(msg.buffer);
  for (let i = 0; i < size; i++) msg[i] = i & 0xff;
  Atomics.store(ctl, 0, 1);
  let seq = 0;
  while (Atomics.load(ctl, 1) === 0) {
    dv.setUint32(0, seq, true);
    try {
      ch.send(msg, { timeout: 200 });
      seq = (seq + 1) >>> 0;
    } catch (e) {
      if ((e as { code?: string }).code !== "ETIMEDOUT") throw e;
    }
  }
  ch.close();
  seg.close();
}

async function cell(size: number, windowS: number): Promise<void> {
  pin(1);
  const ch = Channel.create(`shmkit-bench-s2-${RUNTIME}-${size}-${Date.now() % 1e6}`, {
    slots: SLOTS,
    slotSize: size,
    mode: "spsc",
  });
  const seg = SharedMemory.anonymous(64);
  const ctl = seg.view(Int32Array, 0, 4);
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(ch.handle()),
    JSON.stringify(seg.handle()),
    String(size),
  ]);
  try {
    while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 5));
    ch.unlink(); // the child has it open
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    let expect = 0;
    let got = 0;
    const one = (): void => {
      const n = ch.recvInto(out, { timeout: 10_000 });
      if (n !== size || dv.getUint32(0, true) !== expect) {
        throw new Error(
          `S2: message ${got} has ${n} bytes and seq ${dv.getUint32(0, true)}, expected ${size} and ${expect}`,
        );
      }
      expect = (expect + 1) >>> 0;
      got++;
    };
    const warm = clockNs() + 0.3e9;
    while (clockNs() < warm) for (let i = 0; i < 256; i++) one();
    const c0 = cpuSelf() + procCpu(kid.pid!);
    const g0 = got;
    const t0 = clockNs();
    const end = t0 + windowS * 1e9;
    let t1 = t0;
    while (t1 < end) {
      for (let i = 0; i < 256; i++) one();
      t1 = clockNs();
    }
    const msgs = got - g0;
    const cpu = cpuSelf() + procCpu(kid.pid!) - c0;
    Atomics.store(ctl, 1, 1);
    while (kid.exitCode === null) {
      while (ch.tryRecvInto(out) >= 0) { /* drain so the sender sees its stop flag */ }
      await new Promise((r) => setTimeout(r, 1));
    }
    await exited(kid);
    const wall = (t1 - t0) / 1e9;
    const base = { bench: "S2", variant: `${size} B`, transport: "shmkit channel", cpu_s: cpu, wall_s: wall };
    const note =
      `spsc, ${SLOTS} slots, send (copy in) -> recvInto (copy out), order checked; sender cpu0, receiver cpu1`;
    emit({ ...base, metric: "msgs/s", value: msgs / wall, note });
    emit({ ...base, metric: "GB/s", value: (msgs * size) / wall / 1e9, note });
  } finally {
    if (kid.exitCode === null) kid.kill("SIGKILL");
    ch.close();
    seg.close();
  }
}

async function main(): Promise<void> {
  const w = pick(1.5, 0.3);
  for (const size of SIZES) await cell(size, w);
}
