// S4 — wake from idle: the consumer (this process, CPU1) blocks in Ring.dequeue() (or awaits
// dequeueAsync()) on an empty spsc ring; the producer child (CPU0) sleeps 2 ms, stamps
// CLOCK_MONOTONIC into a side segment and enqueues one value. One-way latency = dequeue return
// time - stamp (the same clock in both processes).
// @bench-runtimes deno bun node
// @bench-ids S4
import { Ring, type RingHandle, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import { args, cpuSelf, emitLatency, exited, nowNs, pick, pin, procCpu, RUNTIME, sleep, spawnScript } from "../lib.ts";

const ME = "bench/scenarios/s4_ring_wake.ts";

if (args()[0] === "child") await child(JSON.parse(args()[1]), JSON.parse(args()[2]), Number(args()[3]));
else await main();

async function child(h: RingHandle, sh: SharedMemoryHandle, n: number): Promise<void> {
  pin(0);
  const ring = Ring.attach(h);
  const seg = SharedMemory.attach(sh);
  const stamp = seg.view(Float64Array, 0, 1);
  for (let i = 0; i < n; i++) {
    await sleep(2);
    stamp[0] = nowNs();
    ring.tryEnqueue(i);
  }
  ring.close();
  seg.close();
}

async function cell(kind: "park" | "async", n: number): Promise<void> {
  pin(1);
  const ring = Ring.create(`shmkit-bench-s4-${RUNTIME}-${kind}-${Date.now() % 1e6}`, { capacity: 4, mode: "spsc" });
  const seg = SharedMemory.anonymous(64);
  const stamp = seg.view(Float64Array, 0, 1);
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(ring.handle()),
    JSON.stringify(seg.handle()),
    String(n),
  ]);
  const samples = new Float64Array(n);
  const c0 = cpuSelf();
  for (let i = 0; i < n; i++) {
    const v = kind === "park" ? ring.dequeue({ timeout: 30_000 }) : await ring.dequeueAsync({ timeout: 30_000 });
    samples[i] = nowNs() - stamp[0];
    if (v !== i) throw new Error(`S4: got ${v}, expected ${i}`);
  }
  const cpu = cpuSelf() - c0 + procCpu(kid.pid!);
  await exited(kid);
  ring.unlink();
  ring.close();
  seg.close();
  emitLatency(
    {
      bench: "S4",
      variant: kind === "park" ? "park" : "async (waiter multiplexer)",
      transport: "shmkit ring spsc",
      cpu_s: cpu,
      note: `${n} wake-ups after 2 ms idle`,
    },
    samples,
    { unit: "us" },
  );
}

async function main(): Promise<void> {
  await cell("park", pick(500, 50));
  await cell("async", pick(500, 50));
}
