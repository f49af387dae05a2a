// Micro-benchmark (one process): ns per tryEnqueue + tryDequeue pair on a ring of each mode,
// and per enqueueBulk/dequeueBulk item (batch 32 and 256). Run it on each runtime:
//   deno run -A bench/micro/ring_ops.ts | bun bench/micro/ring_ops.ts | node build/node/bench/micro/ring_ops.js
import { Ring, type RingMode } from "../../mod.ts";
import { RUNTIME } from "../lib.ts";

function single(mode: RingMode, n: number): number {
  const r = Ring.create(null, { capacity: 1024, mode });
  let sum = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (!r.tryEnqueue(i >>> 0)) throw new Error("full");
    sum += r.tryDequeue()!;
  }
  const dt = performance.now() - t0;
  r.close();
  if (sum !== (n * (n - 1)) / 2) throw new Error("sum");
  return (dt * 1e6) / n;
}

function bulk(mode: RingMode, batch: number, n: number): number {
  const r = Ring.create(null, { capacity: 1000, mode });
  const a = new Uint32Array(batch);
  const b = new Uint32Array(batch);
  for (let i = 0; i < batch; i++) a[i] = i * 7;
  const rounds = Math.ceil(n / batch);
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) {
    if (!r.enqueueBulk(a)) throw new Error("full");
    if (r.dequeueBulk(b) !== batch) throw new Error("short");
  }
  const dt = performance.now() - t0;
  r.close();
  if (b[batch - 1] !== a[batch - 1]) throw new Error("data");
  return (dt * 1e6) / (rounds * batch);
}

const N = 1_000_000;
const best = (f: () => number) => Math.min(f(), f(), f());
const out: string[] = [];
const only = cliArgs().filter((a) => a !== "bulk") as RingMode[];
for (const m of (only.length ? only : ["spsc", "mpsc", "spmc", "mpmc"]) as RingMode[]) {
  single(m, N / 4);
  out.push(`${m} ${best(() => single(m, N)).toFixed(1)}`);
}
const mb = cliArgs().includes("bulk");
if (mb) {
  for (const m of ["spsc", "mpmc"] as RingMode[]) {
    for (const batch of [32, 256]) {
      bulk(m, batch, N / 4);
      out.push(`${m}-b${batch} ${best(() => bulk(m, batch, N)).toFixed(2)}`);
    }
  }
}
console.log(RUNTIME, "ns/op:", out.join(", "));

function cliArgs(): string[] {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno ? g.Deno.args : g.process.argv.slice(2);
}
