// S6 — Mempool get+put: one process uncontended, batches of 32, and two processes (same runtime)
// hammering one pool at once. Also reports heap growth over 10 M get+put pairs (the hot path
// must allocate nothing).
// @bench-runtimes deno bun node
// @bench-ids S6
import { Mempool, type MempoolHandle } from "../../mod.ts";
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

const SCRIPT = "bench/scenarios/s6_mempool.ts";
const BATCHES = 5;

function pairs(pool: Mempool, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    const b = pool.tryGet()!;
    s += b.index;
    pool.put(b);
  }
  return s;
}

function batch32(pool: Mempool, n: number, held: (ReturnType<Mempool["tryGet"]>)[]): number {
  let s = 0;
  for (let i = 0; i < n; i += 32) {
    for (let k = 0; k < 32; k++) held[k] = pool.tryGet();
    for (let k = 0; k < 32; k++) {
      s += held[k]!.index;
      pool.put(held[k]!);
    }
  }
  return s;
}

function heapUsed(): number {
  const g = globalThis as unknown as { gc?: () => void; process: { memoryUsage(): { heapUsed: number } } };
  g.gc?.();
  return g.process.memoryUsage().heapUsed;
}

const a = args();
if (a[0] === "peer") {
  // Peer: wait for "go", run pairs for the given ms, print the count.
  pin(1);
  const pool = Mempool.attach(JSON.parse(a[1]) as MempoolHandle);
  pairs(pool, 200_000); // warm up
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
    pairs(pool, 10_000);
    n += 10_000;
  }
  // Our own CPU seconds: the parent cannot read them from /proc once we have exited.
  console.log(`${n} ${cpuSelf() - c0}`);
  pool.close();
  (globalThis as unknown as { process: { exit(c: number): void } }).process.exit(0); // stdin may keep us alive
} else {
  pin(0);
  const pool = Mempool.create(`shmkit-bench-s6-${Date.now()}`, { count: 1024, blockSize: 256 });
  let sink = 0;
  const n = pick(RUNTIME === "node" ? 2_000_000 : 10_000_000, 1_000_000);

  // 1 process, uncontended.
  sink += pairs(pool, 300_000);
  const per: number[] = [];
  const c0 = cpuSelf(), w0 = clockNs();
  const h0 = heapUsed();
  for (let b = 0; b < BATCHES; b++) {
    const t0 = clockNs();
    sink += pairs(pool, n);
    per.push(n / ((clockNs() - t0) / 1e9));
  }
  const heapDelta = heapUsed() - h0;
  emit({
    bench: "S6",
    variant: "1 process",
    transport: "shmkit mempool",
    metric: "items/s",
    value: median(per),
    cpu_s: cpuSelf() - c0,
    wall_s: (clockNs() - w0) / 1e9,
    note: `get+put pairs/s, median of ${BATCHES} x ${n}; heap ${heapDelta >= 0 ? "+" : ""}${
      (heapDelta / 1024).toFixed(0)
    } KiB over ${BATCHES * n} pairs`,
  });

  // Batches of 32.
  const held: (ReturnType<Mempool["tryGet"]>)[] = new Array(32).fill(undefined);
  sink += batch32(pool, 320_000, held);
  const perB: number[] = [];
  const c1 = cpuSelf(), w1 = clockNs();
  for (let b = 0; b < BATCHES; b++) {
    const t0 = clockNs();
    sink += batch32(pool, n, held);
    perB.push(n / ((clockNs() - t0) / 1e9));
  }
  emit({
    bench: "S6",
    variant: "batch 32",
    transport: "shmkit mempool",
    metric: "items/s",
    value: median(perB),
    cpu_s: cpuSelf() - c1,
    wall_s: (clockNs() - w1) / 1e9,
    note: `32 gets then 32 puts; get+put pairs/s, median of ${BATCHES}`,
  });

  // 2 processes on one pool at once.
  const ms = pick(2000, 500);
  const peer = spawnScript(RUNTIME, SCRIPT, ["peer", JSON.stringify(pool.handle()), String(ms)]);
  const next = lineReader(peer.stdout!);
  if ((await next()) !== "ready") throw new Error("S6 peer did not start");
  sink += pairs(pool, 200_000);
  // CPU: ours (measured) plus what the peer reports for its loop; reading the peer's /proc entry
  // after it has exited would give 0.
  const m = await measured([], async () => {
    peer.stdin!.end("go\n");
    const end = clockNs() + ms * 1e6;
    let mine = 0;
    while (clockNs() < end) {
      sink += pairs(pool, 10_000);
      mine += 10_000;
    }
    const [theirs, theirCpu] = (await next()).split(" ").map(Number);
    await exited(peer);
    return { pairs: mine + theirs, theirCpu };
  });
  emit({
    bench: "S6",
    variant: "2 processes",
    transport: "shmkit mempool",
    metric: "items/s",
    value: m.result.pairs / m.wall_s,
    cpu_s: m.cpu_s + m.result.theirCpu,
    wall_s: m.wall_s,
    note: `two ${RUNTIME} processes doing get+put pairs on one 1024-block pool at once (cpu0, cpu1); total pairs/s`,
  });
  if (sink === 0.5) console.error(sink);
  pool.unlink();
  pool.close();
}
