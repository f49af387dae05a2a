// S3 — round trip of one u32 through two spsc Rings between two processes of the same runtime:
// this process (CPU1) sends i on "ping", the child (CPU0) echoes it on "pong".
// @bench-runtimes deno bun node
// @bench-ids S3
//
// Cells:
//   "spin"  both sides busy-poll tryDequeue (no parking), RTT p50 / p99 / p99.9 in ns
//   "park"  both sides use the blocking dequeue() (spin ~50 us, then futex); the sender waits
//           300 us between pings, so the echo side has given up spinning and sleeps on the futex:
//           every RTT includes at least one futex wake-up (compare with the C futex floor)
import { Ring, type RingHandle } from "../../mod.ts";
import {
  args,
  clockNs,
  cpuSelf,
  emitLatency,
  exited,
  orphaned,
  pick,
  pin,
  procCpu,
  RUNTIME,
  spawnScript,
} from "../lib.ts";

const ME = "bench/scenarios/s3_ring_rtt.ts";

if (args()[0] === "child") child(JSON.parse(args()[1]), JSON.parse(args()[2]), args()[3], Number(args()[4]));
else await main();

function child(pingH: RingHandle, pongH: RingHandle, mode: string, n: number): void {
  pin(0);
  const ping = Ring.attach(pingH);
  const pong = Ring.attach(pongH);
  for (let i = 0; i < n; i++) {
    let v: number | undefined;
    if (mode === "spin") {
      while ((v = ping.tryDequeue()) === undefined) if (orphaned()) return;
    } else v = ping.dequeue({ timeout: 30_000 });
    pong.tryEnqueue(v!);
  }
  ping.close();
  pong.close();
}

async function cell(mode: "spin" | "park", n: number, warm: number): Promise<void> {
  pin(1);
  const tag = `${RUNTIME}-${mode}-${Date.now() % 1e6}`;
  const ping = Ring.create(`shmkit-bench-s3p-${tag}`, { capacity: 4, mode: "spsc" });
  const pong = Ring.create(`shmkit-bench-s3q-${tag}`, { capacity: 4, mode: "spsc" });
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(ping.handle()),
    JSON.stringify(pong.handle()),
    mode,
    String(n + warm),
  ]);
  const samples = new Float64Array(n);
  let c0 = 0;
  for (let i = 0; i < n + warm; i++) {
    if (i === warm) c0 = cpuSelf() + procCpu(kid.pid!);
    if (mode === "park") {
      const until = clockNs() + 300_000;
      while (clockNs() < until) { /* let the echo side park */ }
    }
    const t0 = clockNs();
    ping.tryEnqueue(i);
    let v: number | undefined;
    if (mode === "spin") { while ((v = pong.tryDequeue()) === undefined) { /* spin */ } }
    else v = pong.dequeue({ timeout: 30_000 });
    const dt = clockNs() - t0;
    if (v !== i) throw new Error(`S3: got ${v}, expected ${i}`);
    if (i >= warm) samples[i - warm] = dt;
  }
  const cpu = cpuSelf() + procCpu(kid.pid!) - c0;
  await exited(kid);
  ping.unlink();
  pong.unlink();
  ping.close();
  pong.close();
  const base = {
    bench: "S3",
    variant: mode,
    transport: "shmkit ring spsc",
    cpu_s: cpu,
    note: `${n} round trips, sender cpu1, echo cpu0`,
  };
  if (mode === "spin") emitLatency(base, samples, { unit: "ns", p999: true });
  else emitLatency(base, samples, { unit: "us" });
}

async function main(): Promise<void> {
  await cell("spin", pick(200_000, 20_000), pick(20_000, 2_000));
  await cell("park", pick(3_000, 300), pick(200, 20));
}
