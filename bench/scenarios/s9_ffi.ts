// S9 — FFI call overhead and Atomics cost per runtime, next to the C floor of the same run.
// @bench-runtimes deno bun node
// @bench-ids S9
//
// Cells (ns per call, median of 5 timed batches after a warm-up that lets the JIT optimize):
//   nop call                  sys.shmkit_nop()                        () -> i32
//   (i32,f64,u32)->i32 call   sys.shmkit_waiter_add(-1, 0, 0)         returns -EBADF after the id check
//   release store call        sys.shmkit_atomic_store_u32(id, off, v, 3) on a mapped word
//   futex wake, no waiter     sys.shmkit_futex_wake(id, off, 1)       the FUTEX_WAKE syscall
//   Atomics.load/store/add/compareExchange on an Int32Array over a SharedMemory mapping
import { SharedMemory } from "../../mod.ts";
import { sys } from "../../src/sys.ts";
import { clockNs, cpuSelf, emit, median, pick, pin, RUNTIME } from "../lib.ts";

const BATCHES = 5;
const seg = SharedMemory.create(null, 4096);
const id = seg.mapping.id;
const i32 = new Int32Array(seg.buffer, 0, 64);

// One explicit loop per operation: a shared loop calling a closure would measure the closure call.
function loopNop(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += sys.shmkit_nop();
  return s;
}
function loopArgs(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += sys.shmkit_waiter_add(-1, 0, i >>> 0);
  return s;
}
function loopStore(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += sys.shmkit_atomic_store_u32(id, 64, i >>> 0, 3);
  return s;
}
function loopWake(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += sys.shmkit_futex_wake(id, 128, 1);
  return s;
}
function loopLoad(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Atomics.load(i32, 8);
  return s;
}
function loopAStore(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Atomics.store(i32, 8, i);
  return s;
}
function loopAdd(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Atomics.add(i32, 8, 1);
  return s;
}
function loopCas(n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Atomics.compareExchange(i32, 8, i, i + 1);
  return s;
}

let sink = 0;
function cell(
  variant: string,
  floor: string,
  metric: string,
  loop: (n: number) => number,
  n: number,
  note: string,
): void {
  sink += loop(Math.min(n, 200_000)); // warm-up: interpreter -> optimizing JIT (and Deno's fast call)
  sink += loop(Math.min(n, 200_000));
  const per: number[] = [];
  const c0 = cpuSelf();
  const w0 = clockNs();
  for (let b = 0; b < BATCHES; b++) {
    const t0 = clockNs();
    sink += loop(n);
    per.push((clockNs() - t0) / n);
  }
  const wall = (clockNs() - w0) / 1e9;
  emit({
    bench: "S9",
    variant,
    transport: variant.startsWith("Atomics") ? "shmkit mapped buffer" : "shmkit FFI",
    metric,
    value: median(per),
    cpu_s: cpuSelf() - c0,
    wall_s: wall,
    floor_variant: floor,
    note: `${note}; ${BATCHES} batches of ${n}, median`,
  });
}

pin(0);
const big = pick(RUNTIME === "node" ? 2_000_000 : 10_000_000, 1_000_000);
cell("nop call", "nop call", "ns/call", loopNop, big, "sys.shmkit_nop()");
cell(
  "(i32,f64,u32)->i32 call",
  "nop call",
  "ns/call",
  loopArgs,
  big,
  "sys.shmkit_waiter_add(-1, 0, i): id check, -EBADF",
);
cell(
  "release store call",
  "Atomics.store",
  "ns/call",
  loopStore,
  big,
  "sys.shmkit_atomic_store_u32(id, 64, i, release)",
);
cell(
  "futex wake, no waiter",
  "futex wake, no waiter",
  "ns/call",
  loopWake,
  pick(300_000, 50_000),
  "sys.shmkit_futex_wake(id, 128, 1)",
);
const atom = pick(20_000_000, 2_000_000);
cell("Atomics.load", "Atomics.load", "ns/op", loopLoad, atom, "Int32Array over the mapping");
cell("Atomics.store", "Atomics.store", "ns/op", loopAStore, atom, "Int32Array over the mapping");
cell("Atomics.add", "Atomics.add", "ns/op", loopAdd, atom, "Int32Array over the mapping");
cell("Atomics.compareExchange", "Atomics.compareExchange", "ns/op", loopCas, atom, "Int32Array over the mapping");
if (sink === 0.5) console.error(sink);
seg.close();
seg.unlink();
