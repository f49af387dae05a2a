// S5 — large blocks (1, 16, 64 MiB) between two processes of the same runtime through a shmkit
// Channel (spsc-ordered), one at a time (ping-pong: the receiver acknowledges each block on a second channel):
//   zero-copy: the sender writes a stamp into a loaned slot and sends it (`loan` / `send(length)`);
//              the receiver gets a view of the same memory, then touches one word per 4 KiB
//              page (the consumer's checksum touch). Two receivers: one spins on `tryRecv`
//              (the handoff itself), one parks in `recv` (adds the futex wake-up, ~30-60 us on
//              this VM). Reported: one-way handoff latency (stamp before send -> message in
//              hand) and handoff + touch.
//   copy:      the sender copies the block in (`send(bytes)`), the receiver copies it out
//              (`recvInto`). Reported: end to end (stamp before send -> copy out done), the
//              sender's `send` alone, and GB/s of the end to end.
// Peers (postMessage, IPC, pipes, UDS) for the same sizes are measured by the peer scenarios.
// @bench-runtimes deno bun node
// @bench-ids S5
import { Channel, type ChannelHandle } from "../../mod.ts";
import {
  args,
  clockNs,
  cpuSelf,
  emit,
  emitLatency,
  env,
  exited,
  lineReader,
  nowNs,
  pick,
  pin,
  procCpu,
  RUNTIME,
  sameJobFloor,
  spawnScript,
} from "../lib.ts";

const ME = "bench/scenarios/s5_large_blocks.ts";
const MIB = 1 << 20;
const SIZES = [1, 16, 64];
// One sender, one receiver: the spsc-ordered mode (its send is one tail store). SHMKIT_BENCH_S5_MODE=spsc
// measures the spsc mode instead (one quick A/B here, Deno, 1 MiB spin p50: spsc 1.50 / 1.61 us,
// spsc-ordered 1.23 / 0.71 us).
const CHANNEL_MODE = (env("SHMKIT_BENCH_S5_MODE") ?? "spsc-ordered") as "spsc" | "spsc-ordered";

if (args()[0] === "child") {
  await child(JSON.parse(args()[1]), JSON.parse(args()[2]), args()[3] as Mode, Number(args()[4]), Number(args()[5]));
} else await main();

type Mode = "zero-copy" | "zero-copy-spin" | "copy";

/** Sender: `count` blocks of `size` bytes, each after the previous one's ack. Prints its send() times. */
function child(dh: ChannelHandle, ah: ChannelHandle, mode: Mode, size: number, count: number): void {
  pin(0);
  const data = Channel.attach(dh);
  const ack = Channel.attach(ah);
  const src = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) src[i] = i & 0xff; // fault the source pages in
  const srcDv = new DataView(src.buffer);
  const sendNs = new Float64Array(count);
  const out = new Uint8Array(ack.slotSize);
  for (let i = 0; i < count; i++) {
    if (mode !== "copy") {
      const loan = data.loan({ timeout: 30_000 });
      const dv = new DataView(loan.bytes.buffer, loan.bytes.byteOffset, 16);
      dv.setUint32(0, i, true);
      const t = nowNs();
      dv.setFloat64(8, t, true);
      loan.send(size);
      sendNs[i] = nowNs() - t;
    } else {
      srcDv.setUint32(0, i, true);
      const t = nowNs();
      srcDv.setFloat64(8, t, true);
      data.send(src, { timeout: 30_000 });
      sendNs[i] = nowNs() - t;
    }
    ack.recvInto(out, { timeout: 30_000 });
  }
  console.log(JSON.stringify(Array.from(sendNs)));
  data.close();
  ack.close();
}

async function cell(mode: Mode, mib: number, count: number): Promise<void> {
  pin(1);
  const size = mib * MIB;
  const tag = `${RUNTIME}-${mode}-${mib}-${Date.now() % 1e6}`;
  const data = Channel.create(`shmkit-bench-s5-data-${tag}`, { slots: 2, slotSize: size, mode: CHANNEL_MODE });
  const ack = Channel.create(`shmkit-bench-s5-ack-${tag}`, { slots: 2, slotSize: 16, mode: CHANNEL_MODE });
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(data.handle()),
    JSON.stringify(ack.handle()),
    mode,
    String(size),
    String(count),
  ]);
  try {
    const next = lineReader(kid.stdout!);
    const dst = new Uint8Array(mode === "copy" ? size : 0);
    for (let i = 0; i < dst.length; i += 4096) dst[i] = 1; // fault the destination pages in
    const dstDv = new DataView(dst.buffer);
    const handoff = new Float64Array(count);
    const touched = new Float64Array(count);
    let sink = 0;
    const c0 = cpuSelf();
    const t0 = clockNs();
    for (let i = 0; i < count; i++) {
      if (mode !== "copy") {
        let m = mode === "zero-copy-spin" ? data.tryRecv() : data.recv({ timeout: 60_000 });
        // Spin variant: poll without parking, so the handoff excludes the futex wake-up.
        for (let k = 0; m === undefined; k++) {
          if (k > 50_000_000) throw new Error("S5: no block within the spin budget");
          m = data.tryRecv();
        }
        const t1 = nowNs();
        const b = m.bytes;
        const dv = new DataView(b.buffer, b.byteOffset, 16);
        if (b.length !== size || dv.getUint32(0, true) !== i) throw new Error(`S5: block ${i} is wrong`);
        const stamp = dv.getFloat64(8, true);
        const words = new Int32Array(b.buffer, b.byteOffset, size >>> 2);
        for (let w = 0; w < words.length; w += 1024) sink = (sink + words[w]) | 0; // one word per page
        const t2 = nowNs();
        handoff[i] = t1 - stamp;
        touched[i] = t2 - stamp;
        m.release();
      } else {
        const n = data.recvInto(dst, { timeout: 60_000 });
        const t2 = nowNs();
        if (n !== size || dstDv.getUint32(0, true) !== i) throw new Error(`S5: block ${i} is wrong`);
        touched[i] = t2 - dstDv.getFloat64(8, true);
      }
      ack.send("ok", { timeout: 30_000 });
    }
    const wall = (clockNs() - t0) / 1e9;
    const sendNs = JSON.parse(await next()) as number[];
    const cpu = cpuSelf() - c0 + procCpu(kid.pid!);
    await exited(kid);
    const variant = `${mib} MiB`;
    const parity = sink & 1; // keeps the page touches alive
    const note =
      `${CHANNEL_MODE} channels, one block at a time (acked), sender cpu0, receiver cpu1, ${count} blocks; sink ${parity}`;
    if (mode !== "copy") {
      const how = mode === "zero-copy-spin" ? "receiver spins on tryRecv" : "receiver parks in recv";
      const base = {
        bench: "S5",
        variant,
        transport: `shmkit channel zero-copy (loan${mode === "zero-copy-spin" ? ", spin" : ", park"})`,
        cpu_s: cpu,
        wall_s: wall,
      };
      emitLatency({ ...base, note: `handoff: stamp before send -> recv returned; ${how}; ${note}` }, handoff, {
        unit: "us",
      });
      const withTouch = { ...base, transport: `${base.transport} + touch` };
      emitLatency({ ...withTouch, note: `plus reading one word per 4 KiB page; ${note}` }, touched, { unit: "us" });
      const sorted = Float64Array.from(touched).sort();
      emit({
        ...withTouch,
        metric: "GB/s",
        value: size / sorted[sorted.length >> 1],
        note: `block size / p50 handoff+touch; ${note}`,
      });
    } else {
      const base = { bench: "S5", variant, transport: "shmkit channel copy (send/recvInto)", cpu_s: cpu, wall_s: wall };
      emitLatency({ ...base, note: `stamp before send -> copy out done; ${note}` }, touched, { unit: "ms" });
      const sorted = Float64Array.from(touched).sort();
      emit({
        ...base,
        metric: "GB/s",
        value: size / sorted[sorted.length >> 1],
        note: `block size / p50 end to end; ${note}`,
      });
      emitLatency(
        {
          ...base,
          transport: "shmkit channel copy send() only",
          note: `the sender's send(bytes): copy in + publish; ${note}`,
        },
        sendNs,
        { unit: "ms" },
      );
    }
  } finally {
    if (kid.exitCode === null) kid.kill("SIGKILL");
    data.unlink();
    ack.unlink();
    data.close();
    ack.close();
  }
}

async function main(): Promise<void> {
  const counts: Record<number, number> = pick({ 1: 300, 16: 40, 64: 15 }, { 1: 20, 16: 5, 64: 3 });
  // The C memcpy floor inside this job, before and after the cells (bench/lib.ts): this VM's memory
  // bandwidth drifts (a 64 MiB memcpy took 7.6 ms in one run's C floor job and 8.6-9.8 ms half an
  // hour later), and the 64 MiB copy cells move with it.
  sameJobFloor("S5", "floor", ["S5"]);
  for (const mib of SIZES) {
    await cell("zero-copy-spin", mib, counts[mib]);
    await cell("zero-copy", mib, counts[mib]);
    await cell("copy", mib, counts[mib]);
  }
  sameJobFloor("S5", "floor", ["S5"]);
}
