// S7 — mpmc scaling of shmkit Ring: P producer and C consumer processes (same runtime) on one
// mpmc ring of capacity 4096, single-item operations (tryEnqueue / tryDequeue, falling back to
// the blocking forms, which park), for a fixed window. On 2 CPUs, 4P+4C is oversubscribed and
// only works because waiters park instead of spinning.
// @bench-runtimes deno bun node
// @bench-ids S7
//
// Value: total items/s; the note has the per-item ratio to 1P+1C and fairness (min/max items
// per producer). Exactly-once is checked: consumers report count, sum and xor of what they took.
import { Ring, type RingHandle, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import { args, emit, exited, lineReader, orphaned, pick, procCpu, RUNTIME, sleep, spawnScript } from "../lib.ts";

const ME = "bench/scenarios/s7_ring_mpmc.ts";

if (args()[0] === "child") await child(args()[1], JSON.parse(args()[2]), JSON.parse(args()[3]), Number(args()[4]));
else await main();

/** ctl[0] = go, ctl[1] = stop, ctl[2] = producers still running. */
async function child(role: string, h: RingHandle, sh: SharedMemoryHandle, id: number): Promise<void> {
  const ring = Ring.attach(h);
  const seg = SharedMemory.attach(sh);
  const ctl = seg.view(Int32Array, 0, 4);
  while (Atomics.load(ctl, 0) === 0) await sleep(1);
  let n = 0;
  let sum = 0;
  let xor = 0;
  if (role === "prod") {
    while (Atomics.load(ctl, 1) === 0 && !orphaned()) {
      const v = ((id << 26) | (n & 0x3ffffff)) >>> 0;
      if (!ring.tryEnqueue(v)) {
        try {
          ring.enqueue(v, { timeout: 20 });
        } catch (e) {
          if ((e as { code?: string }).code !== "ETIMEDOUT") throw e;
          continue;
        }
      }
      n++;
      sum += v;
      xor = (xor ^ v) >>> 0;
    }
    Atomics.sub(ctl, 2, 1);
  } else {
    for (;;) {
      let v = ring.tryDequeue();
      if (v === undefined) {
        try {
          v = ring.dequeue({ timeout: 20 });
        } catch (e) {
          if ((e as { code?: string }).code !== "ETIMEDOUT") throw e;
          if (Atomics.load(ctl, 2) === 0 && ring.size === 0) break;
          continue;
        }
      }
      n++;
      sum += v;
      xor = (xor ^ v) >>> 0;
    }
  }
  console.log(JSON.stringify({ role, id, n, sum, xor }));
  ring.close();
  seg.close();
}

async function cell(p: number, c: number, windowS: number): Promise<number> {
  const ring = Ring.create(`shmkit-bench-s7-${RUNTIME}-${p}x${c}-${Date.now() % 1e6}`, {
    capacity: 4096,
    mode: "mpmc",
  });
  const seg = SharedMemory.anonymous(64);
  const ctl = seg.view(Int32Array, 0, 4);
  Atomics.store(ctl, 2, p);
  const kids = [
    ...Array.from(
      { length: p },
      (_, i) =>
        spawnScript(RUNTIME, ME, [
          "child",
          "prod",
          JSON.stringify(ring.handle()),
          JSON.stringify(seg.handle()),
          String(i),
        ]),
    ),
    ...Array.from(
      { length: c },
      (_, i) =>
        spawnScript(RUNTIME, ME, [
          "child",
          "cons",
          JSON.stringify(ring.handle()),
          JSON.stringify(seg.handle()),
          String(i),
        ]),
    ),
  ];
  const readers = kids.map((k) => lineReader(k.stdout!));
  await sleep(pick(1500, 800)); // let every child start (runtime startup is not measured)
  const cpu0 = kids.reduce((a, k) => a + procCpu(k.pid!), 0);
  Atomics.store(ctl, 0, 1);
  await sleep(windowS * 1000);
  const cpu1 = kids.reduce((a, k) => a + procCpu(k.pid!), 0);
  Atomics.store(ctl, 1, 1);
  const res = (await Promise.all(readers.map((r) => r()))).map((l) => JSON.parse(l));
  await Promise.all(kids.map(exited));
  ring.unlink();
  ring.close();
  seg.close();
  const prods = res.filter((r) => r.role === "prod");
  const cons = res.filter((r) => r.role === "cons");
  const sent = prods.reduce((a, r) => a + r.n, 0);
  const got = cons.reduce((a, r) => a + r.n, 0);
  const sumOk = prods.reduce((a, r) => a + r.sum, 0) === cons.reduce((a, r) => a + r.sum, 0);
  const xorOk = (prods.reduce((a, r) => a ^ r.xor, 0) >>> 0) === (cons.reduce((a, r) => a ^ r.xor, 0) >>> 0);
  if (sent !== got || !sumOk || !xorOk) {
    throw new Error(`S7 ${p}P${c}C: sent ${sent}, received ${got}, sum ok ${sumOk}, xor ok ${xorOk}`);
  }
  // Items sent in the window are approximated by all items over the window (the drain is short).
  const rate = sent / windowS;
  const per = prods.map((r) => r.n);
  emit({
    bench: "S7",
    variant: `${p}P+${c}C`,
    transport: "shmkit ring mpmc",
    metric: "items/s",
    value: rate,
    cpu_s: cpu1 - cpu0,
    wall_s: windowS,
    note: `fairness min/max per producer ${
      (Math.min(...per) / Math.max(...per)).toFixed(2)
    }; exactly-once checked (count, sum, xor)`,
  });
  return rate;
}

async function main(): Promise<void> {
  const w = pick(2, 0.5);
  const base = await cell(1, 1, w);
  const two = await cell(2, 2, w);
  const four = await cell(4, 4, w);
  console.error(`S7 per-item time vs 1P+1C: 2P+2C x${(base / two).toFixed(2)}, 4P+4C x${(base / four).toFixed(2)}`);
}
