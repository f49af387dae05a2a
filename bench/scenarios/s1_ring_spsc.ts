// S1 — SPSC throughput of shmkit Ring across two processes of the same runtime: a producer child
// (pinned to CPU0) streams sequence numbers, this process (CPU1) consumes and checks the order.
// @bench-runtimes deno bun node
// @bench-ids S1
//
// Cells: batch = 1 (tryEnqueue / tryDequeue per item), 32 and 256 (enqueueBurst / dequeueBurst),
// ring capacity 16384; each measured over a fixed window after a warm-up, with a fresh producer
// child and (since 2026-12-02) a fresh consumer process per cell: on V8 a consumer process that
// had run the batch-1 and batch-32 cells first measured batch 256 at about half of what a fresh
// one does (Deno 468-475 against 874-902 M/s, Node 20 463 against 655 in paired runs; Bun the
// same either way), from its own per-item check loop's JIT state, not the ring's (a scratch
// consumer that first ran the ring's methods in other patterns lost 5 %).
// The batch=1 row's note reports the heap growth over 10 M operations on each side (the hot path
// allocates nothing, so it should stay near 0 apart from unrelated runtime activity).
// JS floor (transport "JS floor (no ring)", batch 32 and 256): the same per-item work with no ring,
// in this process: the producer's fill + copy into a 16384-slot array, and the consumer's copy out
// + order check, each timed alone; the floor is the slower side (the two run in parallel in S1),
// so S1 batch=N reads against what this runtime's per-item loops allow.
import { Ring, type RingHandle, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import {
  args,
  clockNs,
  cpuSelf,
  emit,
  exited,
  lineReader,
  orphaned,
  phaseProbe,
  pick,
  pin,
  procCpu,
  RUNTIME,
  sameJobFloor,
  spawnScript,
} from "../lib.ts";

const ME = "bench/scenarios/s1_ring_spsc.ts";
const heap = (): number =>
  (globalThis as unknown as { process: { memoryUsage(): { heapUsed: number } } }).process.memoryUsage().heapUsed;
const HEAP_OPS = 10_000_000;

if (args()[0] === "child") child(JSON.parse(args()[1]), JSON.parse(args()[2]), Number(args()[3]));
else if (args()[0] === "cell") await cell(Number(args()[1]), Number(args()[2]));
else await main();

/** Producer: ctl[0] = 1 ready, ctl[1] = 1 stop. Prints its heap growth over HEAP_OPS items. */
function child(h: RingHandle, ch: SharedMemoryHandle, batch: number): void {
  pin(0);
  const ring = Ring.attach(h);
  const seg = SharedMemory.attach(ch);
  const ctl = seg.view(Int32Array, 0, 4);
  const buf = new Uint32Array(batch);
  let seq = 0;
  let sent = 0;
  let heap0 = -1;
  let heapDelta = NaN;
  Atomics.store(ctl, 0, 1);
  while (Atomics.load(ctl, 1) === 0 && !orphaned()) {
    for (let rep = 0; rep < 256; rep++) {
      if (batch === 1) {
        if (ring.tryEnqueue(seq)) seq = (seq + 1) >>> 0;
      } else {
        for (let i = 0; i < batch; i++) buf[i] = (seq + i) >>> 0;
        seq = (seq + ring.enqueueBurst(buf)) >>> 0;
      }
    }
    if (heap0 < 0 && seq > 1_000_000) {
      heap0 = heap();
      sent = seq;
    } else if (heap0 >= 0 && Number.isNaN(heapDelta) && seq - sent >= HEAP_OPS) heapDelta = heap() - heap0;
  }
  console.log(JSON.stringify({ heapDelta }));
  ring.close();
  seg.close();
}

async function cell(batch: number, windowS: number): Promise<void> {
  pin(1);
  const ring = Ring.create(`shmkit-bench-s1-${RUNTIME}-${batch}-${Date.now() % 1e6}`, {
    capacity: 16384,
    mode: "spsc",
  });
  const seg = SharedMemory.anonymous(64);
  const ctl = seg.view(Int32Array, 0, 4);
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(ring.handle()),
    JSON.stringify(seg.handle()),
    String(batch),
  ]);
  const nextLine = lineReader(kid.stdout!);
  while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 5));
  ring.unlink(); // the child has it open
  const out = new Uint32Array(batch);
  let expect = 0;
  let got = 0;
  const consume = (): void => {
    if (batch === 1) {
      const v = ring.tryDequeue();
      if (v !== undefined) {
        if (v !== expect) throw new Error(`S1: got ${v}, expected ${expect}`);
        expect = (expect + 1) >>> 0;
        got++;
      }
    } else {
      const k = ring.dequeueBurst(out);
      for (let i = 0; i < k; i++) {
        if (out[i] !== ((expect + i) >>> 0)) throw new Error(`S1: got ${out[i]}, expected ${(expect + i) >>> 0}`);
      }
      expect = (expect + k) >>> 0;
      got += k;
    }
  };
  // Warm-up (JIT, page faults), then the timed window.
  const warm = clockNs() + 0.3e9;
  while (clockNs() < warm) for (let i = 0; i < 1024; i++) consume();
  let heap0 = -1;
  let heapAt = 0;
  let heapDelta = NaN;
  const c0 = cpuSelf() + procCpu(kid.pid!);
  const g0 = got;
  const t0 = clockNs();
  const end = t0 + windowS * 1e9;
  let t1 = t0;
  while (t1 < end) {
    for (let i = 0; i < 1024; i++) consume();
    t1 = clockNs();
    if (heap0 < 0) {
      heap0 = heap();
      heapAt = got;
    } else if (Number.isNaN(heapDelta) && got - heapAt >= HEAP_OPS) heapDelta = heap() - heap0;
  }
  const items = got - g0;
  const cpu = cpuSelf() + procCpu(kid.pid!) - c0;
  // Keep consuming until the child has also covered its heap window, then stop it.
  const stopAt = clockNs() + 5e9;
  while (Number.isNaN(heapDelta) && clockNs() < stopAt) {
    for (let i = 0; i < 1024; i++) consume();
    if (got - heapAt >= HEAP_OPS) heapDelta = heap() - heap0;
  }
  Atomics.store(ctl, 1, 1);
  while (kid.exitCode === null) {
    consume();
    await Promise.resolve();
    if (ring.size === 0) await new Promise((r) => setTimeout(r, 1));
  }
  const childHeap = JSON.parse((await nextLine()) || "{}").heapDelta;
  await exited(kid);
  const wall = (t1 - t0) / 1e9;
  emit({
    bench: "S1",
    variant: `batch=${batch}`,
    transport: "shmkit ring spsc",
    metric: "items/s",
    value: items / wall,
    cpu_s: cpu,
    wall_s: wall,
    note: `capacity 16384, producer cpu0, consumer cpu1, order checked` +
      (batch === 1 ? `; heap growth over 10M ops: consumer ${fmt(heapDelta)} B, producer ${fmt(childHeap)} B` : ""),
  });
  ring.close();
  seg.close();
}

function fmt(x: unknown): string {
  return typeof x === "number" && Number.isFinite(x) ? String(x) : "n/a (fewer than 10M ops)";
}

/** The JS floor of one batch size: per-item fill/copy/check loops with no ring (see the header). */
function floor(batch: number, windowS: number): void {
  pin(1);
  const N = 16384;
  const mask = N - 1;
  const slots = new Uint32Array(2 * N); // as the ring's slot area (spsc uses the first half)
  const buf = new Uint32Array(batch);
  const out = new Uint32Array(batch);
  let seq = 0;
  let pos = 0;
  const produce = (): void => {
    for (let i = 0; i < batch; i++) buf[i] = (seq + i) >>> 0;
    const a = pos & mask;
    const first = Math.min(batch, N - a);
    for (let i = 0; i < first; i++) slots[a + i] = buf[i];
    for (let i = first; i < batch; i++) slots[i - first] = buf[i];
    seq = (seq + batch) >>> 0;
    pos = (pos + batch) >>> 0;
  };
  let expect = 0;
  let rpos = 0;
  const consume = (): void => {
    const a = rpos & mask;
    const first = Math.min(batch, N - a);
    for (let i = 0; i < first; i++) out[i] = slots[a + i];
    for (let i = first; i < batch; i++) out[i] = slots[i - first];
    for (let i = 0; i < batch; i++) {
      if (out[i] !== ((expect + i) >>> 0)) throw new Error(`S1 floor: got ${out[i]}, expected ${(expect + i) >>> 0}`);
    }
    expect = (expect + batch) >>> 0;
    rpos = (rpos + batch) >>> 0;
  };
  const rate = (fn: () => void): number => {
    const warm = clockNs() + 0.2e9;
    while (clockNs() < warm) for (let i = 0; i < 64; i++) fn();
    let items = 0;
    const t0 = clockNs();
    let t1 = t0;
    while (t1 - t0 < windowS * 1e9) {
      for (let i = 0; i < 64; i++) fn();
      items += 64 * batch;
      t1 = clockNs();
    }
    return items / ((t1 - t0) / 1e9);
  };
  const p = rate(produce);
  // The consumer reads what the producer wrote: refill the slots with a known sequence first.
  seq = pos = 0;
  for (let i = 0; i < N / batch; i++) produce();
  expect = rpos = 0;
  let c = 0;
  {
    const warm = clockNs() + 0.2e9;
    const step = (): void => {
      consume();
      if (((rpos & mask) === 0)) expect = 0; // the slots hold 0..N-1: wrap the expectation with them
    };
    while (clockNs() < warm) for (let i = 0; i < 64; i++) step();
    let items = 0;
    const t0 = clockNs();
    let t1 = t0;
    while (t1 - t0 < windowS * 1e9) {
      for (let i = 0; i < 64; i++) step();
      items += 64 * batch;
      t1 = clockNs();
    }
    c = items / ((t1 - t0) / 1e9);
  }
  emit({
    bench: "S1",
    variant: `batch=${batch}`,
    transport: "JS floor (no ring)",
    metric: "items/s",
    value: Math.min(p, c),
    note: `per-item loops alone in one process: producer fill+copy ${(p / 1e6).toFixed(0)} M/s, consumer copy+check ${
      (c / 1e6).toFixed(0)
    } M/s; the floor is the slower side`,
  });
}

async function main(): Promise<void> {
  phaseProbe("S1"); // which cross-core phase of the VM this job ran in (bench/lib.ts)
  const w = pick(2, 0.4);
  sameJobFloor("S1", "floor", ["S1"]); // the C floor in this job's phase, before and after (bench/lib.ts)
  // Each cell in a fresh consumer process (see the header); its JSON lines go to our stdout.
  for (const batch of [1, 32, 256]) {
    const kid = spawnScript(RUNTIME, ME, ["cell", String(batch), String(w)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    kid.stdout!.setEncoding("utf8");
    kid.stdout!.on("data", (d: string) => out += d);
    // "close": the process exited and its stdout is drained.
    const code = await new Promise<number | null>((r) => kid.once("close", (c: number | null) => r(c)));
    for (const line of out.split("\n")) if (line.trim() !== "") console.log(line);
    if (code !== 0) throw new Error(`S1: the batch=${batch} cell exited ${code}`);
  }
  sameJobFloor("S1", "floor", ["S1"]);
  for (const batch of [32, 256]) floor(batch, w / 2);
}
