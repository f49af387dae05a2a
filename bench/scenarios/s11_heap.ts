// S11 — SharedHeap alloc+free: 64-byte pairs in one process, a window of 64 live blocks of mixed
// sizes (16..1024 B, the same PRNG as bench/c/heap_floor.c), and two processes (same runtime)
// allocating and freeing in one heap at once. The C floor is glibc malloc/free of the same sizes
// (bench/c/heap_floor.c, built by scripts/bench.sh and run by bench/run.ts in the same run).
// @bench-runtimes deno bun node
// @bench-ids S11
import { SharedHeap, type SharedHeapHandle } from "../../mod.ts";
import {
  args,
  clockNs,
  cpuSelf,
  emit,
  exited,
  lineReader,
  measured,
  median,
  pick,
  pin,
  RUNTIME,
  spawnScript,
} from "../lib.ts";

const SCRIPT = "bench/scenarios/s11_heap.ts";
const BATCHES = 5;

function pairs(heap: SharedHeap, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const off = heap.alloc(64);
    s += off;
    heap.free(off);
  }
  return s;
}

function mixed(heap: SharedHeap, n: number, live: Float64Array, seed: number): number {
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const k = x & 63;
    if (live[k] !== 0) heap.free(live[k]);
    live[k] = heap.alloc(16 + ((x >>> 8) & 1008));
  }
  return x;
}

const a = args();
if (a[0] === "peer") {
  pin(1);
  const heap = SharedHeap.attach(JSON.parse(a[1]) as SharedHeapHandle);
  pairs(heap, 200_000);
  console.log("ready");
  const next = lineReader(
    (globalThis as unknown as { process: { stdin: import("node:stream").Readable } }).process.stdin,
  );
  await next();
  const ms = Number(a[2]);
  const c0 = cpuSelf();
  const end = clockNs() + ms * 1e6;
  let n = 0;
  while (clockNs() < end) {
    pairs(heap, 10_000);
    n += 10_000;
  }
  console.log(`${n} ${cpuSelf() - c0}`);
  heap.close();
  (globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0);
} else {
  pin(0);
  const heap = SharedHeap.create(`shmkit-bench-s11-${Date.now()}`, { size: 1 << 22 });
  let sink = 0;
  const n = pick(RUNTIME === "node" ? 2_000_000 : 5_000_000, 1_000_000);

  sink += pairs(heap, 300_000);
  const per: number[] = [];
  const c0 = cpuSelf(), w0 = clockNs();
  for (let b = 0; b < BATCHES; b++) {
    const t0 = clockNs();
    sink += pairs(heap, n);
    per.push(n / ((clockNs() - t0) / 1e9));
  }
  emit({
    bench: "S11",
    variant: "alloc+free 64B, 1 process",
    transport: "shmkit heap",
    metric: "pairs/s",
    value: median(per),
    cpu_s: cpuSelf() - c0,
    wall_s: (clockNs() - w0) / 1e9,
    note: `alloc(64)+free pairs/s, median of ${BATCHES} x ${n}`,
  });

  const live = new Float64Array(64);
  sink += mixed(heap, 100_000, live, 12345);
  const perM: number[] = [];
  const c1 = cpuSelf(), w1 = clockNs();
  for (let b = 0; b < BATCHES; b++) {
    const t0 = clockNs();
    sink += mixed(heap, n / 2, live, 12345 + b);
    perM.push((n / 2) / ((clockNs() - t0) / 1e9));
  }
  for (let k = 0; k < 64; k++) if (live[k] !== 0) heap.free(live[k]);
  const frag = heap.stats();
  emit({
    bench: "S11",
    variant: "mixed 16..1024B, 1 process",
    transport: "shmkit heap",
    metric: "pairs/s",
    value: median(perM),
    cpu_s: cpuSelf() - c1,
    wall_s: (clockNs() - w1) / 1e9,
    note:
      `a window of 64 live blocks, free+alloc pairs/s, median of ${BATCHES}; afterwards ${frag.freeBlocks} free block(s)`,
  });

  const ms = pick(2000, 500);
  const peer = spawnScript(RUNTIME, SCRIPT, ["peer", JSON.stringify(heap.handle()), String(ms)]);
  const next = lineReader(peer.stdout!);
  if ((await next()) !== "ready") throw new Error("S11 peer did not start");
  const m = await measured([], async () => {
    peer.stdin!.end("go\n");
    const end = clockNs() + ms * 1e6;
    let mine = 0;
    while (clockNs() < end) {
      sink += pairs(heap, 10_000);
      mine += 10_000;
    }
    const [theirs, theirCpu] = (await next()).split(" ").map(Number);
    await exited(peer);
    return { pairs: mine + theirs, theirCpu };
  });
  emit({
    bench: "S11",
    variant: "alloc+free 64B, 2 processes",
    transport: "shmkit heap",
    metric: "pairs/s",
    value: m.result.pairs / m.wall_s,
    cpu_s: m.cpu_s + m.result.theirCpu,
    wall_s: m.wall_s,
    note: `two ${RUNTIME} processes doing alloc(64)+free on one heap at once (cpu0, cpu1); total pairs/s`,
    floor_variant: "alloc+free 64B, 1 process",
  });
  if (sink === 0.5) console.error(sink);
  heap.unlink();
  heap.close();
}
