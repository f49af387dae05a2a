// A counter and a lock in one shared heap, incremented by several processes (the shmutils
// MappedMemory example). Start it twice, from any runtimes, with the same name:
//
//   deno run -A examples/heap_counter.ts my-counter & bun examples/heap_counter.ts my-counter; wait
//   (Node: node build/node/examples/heap_counter.js my-counter, after `make node`)
//
// Each process adds 10000 under the lock; both print "counter = 20000". Options: --procs N (how
// many processes take part, default 2), --count N (increments per process, default 10000).
import { Mutex, SharedHeap, ShmError, struct } from "../mod.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const opt = (flag: string, dflt: number) => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const name = args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--")) ?? "shmkit-counter";
const procs = opt("--procs", 2);
const count = opt("--count", 10_000);

// The struct every process agrees on: its byte layout is the contract (docs in src/struct.ts).
const Counter = struct({ value: "u64", done: "u32" });

// Whoever comes first creates the heap; the others open it (open waits until it is initialized).
function createOrOpen(): SharedHeap {
  try {
    return SharedHeap.create(name, { size: 64 * 1024 });
  } catch (e) {
    if (e instanceof ShmError && e.code === "EEXIST") return SharedHeap.open(name);
    throw e;
  }
}

using heap = createOrOpen();
// findOrCreate is atomic across processes: exactly one of them creates each object.
using lock = heap.findOrCreate(Mutex, "lock");
const counter = heap.findOrCreate(Counter, "counter");

for (let i = 0; i < count; i++) {
  using guard = lock.lock();
  if (guard.recovered) console.log("a previous holder died inside; the counter is still consistent");
  counter.value += 1n; // a plain read-modify-write, safe under the lock
}

// Wait for the others, then print; the last process to finish removes the heap's name.
const last = counter.$add("done", 1) + 1 === procs;
const deadline = Date.now() + 60_000;
while (counter.$load("done") < procs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
console.log(`counter = ${counter.value}`);
if (last) heap.unlink();
