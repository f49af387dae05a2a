// Micro-benchmark (one process): cost of one 64-bit CAS of a ring slot's (value, seq) pair,
// through the native library (FFI, what src/ring.ts did) against Atomics.compareExchange on a
// BigUint64Array view built in several ways. Every CAS succeeds (like an uncontended enqueue).
//   deno run -A bench/micro/cas64.ts | bun bench/micro/cas64.ts | node build/node/bench/micro/cas64.js
import { SharedMemory } from "../../mod.ts";
import { sys } from "../../src/sys.ts";
import { RUNTIME } from "../lib.ts";

const N = 2_000_000;
const seg = SharedMemory.create(null, 4096);
// deno-lint-ignore no-explicit-any
const mapping = (seg as any).mapping;
const buf = seg.buffer;
const u32 = new Uint32Array(buf, 0, 64);
const u64 = new BigUint64Array(buf, 0, 32);
const SLOT = 5; // 64-bit word index

const ioBuf = new ArrayBuffer(16);
const io8 = new Uint8Array(ioBuf);
const io32 = new Uint32Array(ioBuf);
function ffiCas(idx: number, eLo: number, eHi: number, dLo: number, dHi: number): boolean {
  io32[0] = eLo;
  io32[1] = eHi;
  io32[2] = dLo;
  io32[3] = dHi;
  const r = sys.shmkit_atomic_cas_u64(mapping.id, idx * 8, 5, io8);
  if (r < 0) throw new Error("closed");
  return r === 1;
}

const sc64 = new BigUint64Array(2);
const sc32 = new Uint32Array(sc64.buffer);
function aliasCas(idx: number, eLo: number, eHi: number, dLo: number, dHi: number): boolean {
  sc32[0] = eLo;
  sc32[1] = eHi;
  sc32[2] = dLo;
  sc32[3] = dHi;
  const e = sc64[0];
  return Atomics.compareExchange(u64, idx, e, sc64[1]) === e;
}

function shiftCas(idx: number, eLo: number, eHi: number, dLo: number, dHi: number): boolean {
  const e = BigInt(eLo) | (BigInt(eHi) << 32n);
  return Atomics.compareExchange(u64, idx, e, BigInt(dLo) | (BigInt(dHi) << 32n)) === e;
}

function asUintCas(idx: number, eLo: number, eHi: number, dLo: number, dHi: number): boolean {
  const e = BigInt.asUintN(64, BigInt(eLo) + BigInt(eHi) * 4294967296n);
  const d = BigInt.asUintN(64, BigInt(dLo) + BigInt(dHi) * 4294967296n);
  return Atomics.compareExchange(u64, idx, e, d) === e;
}

// Compare through the scratch buffer (no BigInt ===).
function aliasCas2(idx: number, eLo: number, eHi: number, dLo: number, dHi: number): boolean {
  sc32[0] = eLo;
  sc32[1] = eHi;
  sc32[2] = dLo;
  sc32[3] = dHi;
  sc64[0] = Atomics.compareExchange(u64, idx, sc64[0], sc64[1]);
  return sc32[0] === eLo && sc32[1] === eHi;
}

type Cas = (idx: number, eLo: number, eHi: number, dLo: number, dHi: number) => boolean;
function run(cas: Cas, n: number): number {
  let v = u32[2 * SLOT];
  let s = u32[2 * SLOT + 1];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const nv = (v * 2654435761 + i) >>> 0;
    const ns = (s + 1) >>> 0;
    if (!cas(SLOT, v, s, nv, ns)) throw new Error(`cas failed at ${i}`);
    v = nv;
    s = ns;
  }
  const dt = performance.now() - t0;
  if (u32[2 * SLOT] !== v || u32[2 * SLOT + 1] !== s) throw new Error("memory mismatch");
  return (dt * 1e6) / n;
}

// A failing CAS must not write.
u32[2 * SLOT] = 1;
u32[2 * SLOT + 1] = 0xffffffff;
for (
  const [name, f] of [["ffi", ffiCas], ["alias", aliasCas], ["shift", shiftCas], ["asUintN", asUintCas], [
    "alias2",
    aliasCas2,
  ]] as const
) {
  if (f(SLOT, 2, 0xffffffff, 3, 3) || u32[2 * SLOT] !== 1) throw new Error(`${name}: failing cas wrote`);
  if (!f(SLOT, 1, 0xffffffff, 1, 0xffffffff)) throw new Error(`${name}: high word`);
}
const variants: [string, Cas][] = [["ffi", ffiCas], ["alias", aliasCas], ["shift", shiftCas], ["asUintN", asUintCas], [
  "alias2",
  aliasCas2,
]];
for (const [, f] of variants) run(f, N / 4); // warm-up
const res: Record<string, number[]> = {};
for (let rep = 0; rep < 3; rep++) for (const [name, f] of variants) (res[name] ??= []).push(run(f, N));
console.log(
  RUNTIME,
  Object.entries(res).map(([k, v]) => `${k} ${Math.min(...v).toFixed(1)} ns`).join(", "),
);
seg.close();
