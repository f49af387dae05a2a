// SharedHeap across Python (python/shmkit/heap.py over csrc/ops_heap.c) and TypeScript (src/heap.ts):
// the same script of allocs, frees and names leaves the same bytes in either language's heap (both
// place blocks identically); blocks allocated and filled here are checked and freed by Python and
// the other way round; Python and this runtime churn in one heap at the same time with exact
// accounting at the end; Python victims SIGKILLed inside heap operations (csrc/ops_heap.c fault
// points, the names of src/heap.ts) are recovered here, and this runtime's victims
// (tests/fixtures/heap_crasher.ts) by Python, with nothing leaked or double-owned. Runs on every leg.
import { assert, assertEquals } from "./assert.ts";
import {
  prng,
  PYTHON,
  ROOT,
  run,
  type RunResult,
  runScript,
  RUNTIME,
  runtimeCommand,
  test,
  uniqueName,
} from "./harness.ts";
import { FAULT_POINTS, heapGeometry, SharedHeap } from "../src/heap.ts";
import { SharedMemory } from "../src/segment.ts";
import { Ring } from "../src/ring.ts";
import { Semaphore } from "../src/semaphore.ts";
import { SharedArray } from "../src/shared_array.ts";
import { struct } from "../src/struct.ts";

const CHILD = `${ROOT}python/tests/child.py`;
const ENV = { PYTHONPATH: `${ROOT}python` };
const ENTRIES = 64;
const FREEING = 0x80000000;

const probe = await run([PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"], { env: ENV }).catch(
  () => undefined,
);
const noPython = probe?.stdout.trim() === "True" ? false : "python3 >= 3.10 is not installed";

function py(args: string[], timeout = 120_000): Promise<RunResult> {
  return run([PYTHON, CHILD, ...args], { env: ENV, timeout });
}

function ok(r: RunResult, what: string): RunResult {
  assert(r.code === 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** tests/fixtures/heap_crasher.ts / python/tests/heap_common.py pattern. */
function pattern(off: number, s: number, i: number): number {
  return (Math.imul(off ^ (s << 20), 2654435761) + i) >>> 0;
}

function fill(heap: SharedHeap, off: number, words: number, slot: number): void {
  const w = heap.view(Uint32Array, off, words);
  for (let i = 0; i < words; i++) w[i] = pattern(off, slot, i);
}

function intact(heap: SharedHeap, off: number, words: number, slot: number): boolean {
  const w = heap.view(Uint32Array, off, words);
  for (let i = 0; i < words; i++) if (w[i] !== pattern(off, slot, i)) return false;
  return true;
}

function live(heap: SharedHeap, off: number): boolean {
  try {
    heap.sizeOf(off);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code !== "EINVAL") throw e;
    return false;
  }
}

/** python/tests/heap_common.py script, call for call. */
function script(heap: SharedHeap, seed: number, n: number): number {
  const rnd = prng(seed);
  const held: number[] = [];
  let nomem = 0;
  for (let op = 0; op < n; op++) {
    const r = rnd();
    if (r < 0.6 || held.length === 0) {
      const a = rnd(), b = rnd();
      const length = 1 + Math.floor(a * (b < 0.9 ? 200 : 5000));
      const align = [16, 16, 16, 64, 4096][Math.floor(rnd() * 5)];
      try {
        held.push(heap.alloc(length, { align }));
      } catch (e) {
        if ((e as { code?: string }).code !== "ENOMEM") throw e;
        nomem++;
      }
    } else if (r < 0.95) {
      const k = Math.floor(rnd() * held.length);
      const off = held[k];
      held[k] = held[held.length - 1];
      held.pop();
      heap.free(off);
    } else {
      heap.set(`n${op % 5}`, held[Math.floor(rnd() * held.length)]);
    }
  }
  return nomem;
}

/**
 * python/tests/heap_common.py check_ledger: blocks dead children held are intact and freed here.
 * `freeCommitted(slot)` tells whether that child's free() in progress (a FREEING entry) committed
 * before it died: then the block is no longer its own, and a live block at that offset with its
 * pattern is another child's allocation that reused it unfilled (one killed right after its
 * alloc returned), not to be freed here. Without it, a live block with the pattern is freed.
 */
function checkLedger(
  heap: SharedHeap,
  ledger: Uint32Array,
  slots: number,
  freeCommitted?: (slot: number) => boolean,
): string[] {
  const problems = heap.validate();
  for (let i = 0; i < slots * ENTRIES; i++) {
    const v = ledger[i];
    if (v === 0) continue;
    const off = (v & ~FREEING) >>> 0;
    const slot = Math.floor(i / ENTRIES);
    const ok = live(heap, off) && heap.view(Uint32Array, off, 1)[0] === pattern(off, slot, 0);
    if ((v & FREEING) !== 0) {
      if (ok && !freeCommitted?.(slot)) heap.free(off);
    } else if (!live(heap, off)) {
      problems.push(`block ${off} held by dead child ${slot} is not allocated`);
    } else if (!ok) {
      problems.push(`block ${off} held by dead child ${slot} was overwritten`);
    } else {
      heap.free(off);
    }
    ledger[i] = 0;
  }
  for (const n of heap.names()) heap.destroy(n.name);
  problems.push(...heap.validate());
  return problems;
}

test(
  `SharedHeap: the same script leaves the same bytes in a Python heap and a ${RUNTIME} heap`,
  async () => {
    for (const seed of [1, 77, 4242]) {
      const opts = { size: 1 << 16, names: 8, slots: 4 };
      const a = SharedHeap.create(uniqueName("pyheapA"), opts);
      const b = SharedHeap.create(uniqueName("pyheapB"), opts);
      try {
        const nomem = script(a, seed, 3000);
        const out = JSON.parse(
          ok(await py(["heap-script", JSON.stringify(b.handle()), String(seed), "3000"]), "py")
            .stdout,
        );
        assertEquals(out.nomem, nomem, `seed ${seed}: ENOMEM count`);
        assert(nomem > 0, `seed ${seed}: the script should run the heap full now and then`);
        const g = heapGeometry(1 << 16, 8, 4);
        const A = a.segment.bytes(0, g.byteLength), B = b.segment.bytes(0, g.byteLength);
        // Everything but the common header (creator pid, time) and the heap lock (slot identities).
        for (const [lo, hi] of [[64, g.mutexOffset], [g.journalOffset, g.byteLength]]) {
          for (let i = lo; i < hi; i++) {
            if (A[i] !== B[i]) {
              throw new Error(`seed ${seed}: byte ${i} differs: ${RUNTIME} ${A[i]}, Python ${B[i]}`);
            }
          }
        }
        assertEquals(b.validate(), []);
        assertEquals(b.stats(), { ...a.stats(), recoveries: 0, rolledBack: 0 });
      } finally {
        a.unlink();
        a.close();
        b.unlink();
        b.close();
      }
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(
  `SharedHeap: a heap formatted by Python is the one ${RUNTIME} formats, and opens here`,
  async () => {
    for (const [size, names, slots] of [[4096, 1, 1], [1 << 16, 64, 64], [100_000, 7, 300]]) {
      const name = uniqueName("pyheapn");
      const r = ok(await py(["heap-new", name, String(size), String(names), String(slots)]), "python heap-new");
      assertEquals(JSON.parse(r.stdout).kind, "shmkit.heap");
      using mine = SharedHeap.create(uniqueName("pyheapm"), { size, names, slots });
      using theirs = SharedHeap.open(name);
      try {
        const g = heapGeometry(mine.size, names, slots);
        assertEquals(theirs.size, mine.size);
        const A = mine.segment.bytes(0, g.byteLength), B = theirs.segment.bytes(0, g.byteLength);
        assertEquals(theirs.segment.size, mine.segment.size);
        // Everything after the common header but the lock's own common header (creator pid and time).
        for (
          const [lo, hi] of [[12, 24], [64, g.mutexOffset], [g.mutexOffset + 12, g.mutexOffset + 24], [
            g.mutexOffset + 64,
            g.byteLength,
          ]]
        ) {
          for (let i = lo; i < hi; i++) assertEquals(B[i], A[i], `size ${size}: byte ${i}`);
        }
        assertEquals(theirs.validate(), []);
        const o = theirs.alloc(10);
        theirs.set("x", o);
        assertEquals(theirs.stats().allocations, 1);
        assert(theirs.destroy("x"));
      } finally {
        mine.unlink();
        theirs.unlink();
      }
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(
  `SharedHeap: blocks filled by ${RUNTIME} are checked and freed by Python, and back`,
  async () => {
    using heap = SharedHeap.create(uniqueName("pyheapx"), { size: 1 << 20 });
    try {
      const n = 200;
      const list = heap.findOrAlloc("ts-blocks", 4 + 8 * n);
      const lw = heap.view(Uint32Array, list, 1 + 2 * n);
      lw[0] = n;
      for (let k = 0; k < n; k++) {
        const words = 1 + (k * 53) % 400;
        const off = heap.alloc(4 * words, { align: k % 4 === 0 ? 64 : 16 });
        fill(heap, off, words, 7);
        lw[1 + 2 * k] = off;
        lw[2 + 2 * k] = words;
      }
      const out = JSON.parse(ok(await py(["heap-take", JSON.stringify(heap.handle())]), "python heap-take").stdout);
      assertEquals(out, { taken: n, bad: 0, given: n, validate: [] });
      assertEquals(heap.get("ts-blocks"), undefined);
      const back = heap.get("py-blocks");
      assert(back !== undefined, "py-blocks");
      const pw = heap.view(Uint32Array, back, 1 + 2 * n);
      assertEquals(pw[0], n);
      for (let k = 0; k < n; k++) {
        const off = pw[1 + 2 * k], words = pw[2 + 2 * k];
        assert(intact(heap, off, words, 9), `Python's block ${k} at ${off}`);
        if (k % 3 === 0) assertEquals(off % 64, 0);
        heap.free(off);
      }
      assert(heap.destroy("py-blocks"));
      const s = heap.stats();
      assertEquals([s.allocations, s.used, s.freeBlocks, s.free], [0, 0, 1, s.size]);
      assertEquals(heap.validate(), []);
    } finally {
      heap.unlink();
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(
  `SharedHeap: Python and ${RUNTIME} processes allocate and free in one heap at once, exact accounting`,
  async () => {
    using heap = SharedHeap.create(uniqueName("pyheapc"), { size: 1 << 20 });
    try {
      const mine = [heap.alloc(100), heap.alloc(4000), heap.alloc(64, { align: 64 })];
      for (const m of mine) heap.bytes(m, 64).fill(0x5a);
      const h = JSON.stringify(heap.handle());
      const ops = "4000";
      const outs = await Promise.all([
        py(["heap-churn", h, "11", ops]).then((r) => ok(r, "python churn 1").stdout),
        py(["heap-churn", h, "12", ops]).then((r) => ok(r, "python churn 2").stdout),
        runScript(RUNTIME, "tests/fixtures/heap_child.ts", { args: ["churn", h, "13", ops] }).then((r) => r.stdout),
        runScript(RUNTIME, "tests/fixtures/heap_child.ts", { args: ["churn", h, "14", ops] }).then((r) => r.stdout),
      ]);
      for (const o of outs) assert(/^ok \d+/.test(o.trim()), o);
      assertEquals(heap.validate(), []);
      let used = 0;
      for (const m of mine) {
        assert(heap.bytes(m, 64).every((b) => b === 0x5a), `the parent's block ${m} was touched`);
        used += heap.sizeOf(m) + 16;
      }
      const s = heap.stats();
      assertEquals([s.allocations, s.used, s.free], [3, used, s.size - used]);
      assertEquals([s.recoveries, s.rolledBack, s.leakedInFlight], [0, 0, 0]);
      for (const m of mine) heap.free(m);
      const t = heap.stats();
      assertEquals([t.allocations, t.used, t.freeBlocks], [0, 0, 1]);
    } finally {
      heap.unlink();
    }
  },
  { skip: noPython, timeout: 240_000 },
);

/** What the "objects" step of both languages leaves: the semaphore released 3 times, arr[1] = 42. */
function afterObjects(heap: SharedHeap): void {
  using sem = heap.open(Semaphore, "sem");
  assertEquals([sem.tryAcquire(), sem.tryAcquire(), sem.tryAcquire(), sem.tryAcquire()], [true, true, true, false]);
  using arr = heap.open(SharedArray, "arr");
  assertEquals((arr.data as Float64Array)[1], 42);
}

test(
  `SharedHeap: objects placed by name in ${RUNTIME} are opened by Python, and the other way round`,
  async () => {
    {
      using heap = SharedHeap.create(uniqueName("pyheapo"), { size: 1 << 16 });
      try {
        const ring = heap.create(Ring, "jobs", { capacity: 8 });
        for (let v = 1; v <= 5; v++) ring.tryEnqueue(v);
        ring.close();
        heap.create(Semaphore, "sem", { value: 0 }).close();
        heap.create(SharedArray, "arr", { dtype: "float64", shape: [4] }).close();
        const out = ok(await py(["heap-objects", JSON.stringify(heap.handle())]), "python heap-objects").stdout;
        assertEquals(out.trim(), "sum 15");
        afterObjects(heap);
      } finally {
        heap.unlink();
      }
    }
    {
      using heap = SharedHeap.create(uniqueName("pyheapp"), { size: 1 << 16 });
      try {
        const h = JSON.stringify(heap.handle());
        assertEquals(ok(await py(["heap-place", h]), "python heap-place").stdout.trim(), "placed");
        assertEquals(
          heap.names().map((n) => [n.name, n.kind]),
          [["jobs", "ring"], ["sem", "semaphore"], ["arr", "array"]],
        );
        const r = await runScript(RUNTIME, "tests/fixtures/heap_child.ts", { args: ["objects", h] });
        assertEquals(r.stdout.trim(), "sum 15");
        afterObjects(heap);
        assertEquals(heap.validate(), []);
      } finally {
        heap.unlink();
      }
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(
  `SharedHeap: a struct declared in ${RUNTIME} and as a ctypes Structure in Python is the same bytes; atomic adds race`,
  async () => {
    using heap = SharedHeap.create(uniqueName("pyheaps"), { size: 1 << 16 });
    try {
      // tests/fixtures/heap_child.ts's schema; python/tests/heap_common.py Rec is the ctypes mirror.
      const Point = struct({ x: "f64", y: "f64" });
      const Rec = struct({
        count: "u32",
        total: "i64",
        ratio: "f32",
        ok: "bool",
        label: { type: "utf8", length: 20 },
        tag: { type: "bytes", length: 4 },
        samples: { type: "u16", length: 3 },
        at: Point,
        path: { type: Point, length: 2 },
      });
      const r = heap.findOrCreate(Rec, "rec");
      r.count = 41;
      r.total = -(2n ** 40n);
      r.ratio = 0.5;
      r.ok = true;
      r.label = "naïve";
      r.tag.set([1, 2, 3, 4]);
      r.samples = new Uint16Array([7, 8, 9]);
      r.at.x = 1.25;
      r.path[1].y = -3;
      const h = JSON.stringify(heap.handle());
      const out = JSON.parse(ok(await py(["heap-struct", h]), "python heap-struct").stdout.trim());
      assertEquals(out, {
        count: 41,
        total: `${-(2n ** 40n)}n`,
        ratio: 0.5,
        ok: true,
        label: "naïve",
        tag: [1, 2, 3, 4],
        samples: [7, 8, 9],
        at: { x: 1.25, y: 0 },
        path: [{ x: 0, y: 0 }, { x: 0, y: -3 }],
      });
      assertEquals(r.count, 42);
      assertEquals(r.total, -(2n ** 40n) - 5n);
      assertEquals(r.label, "from python");
      // Two Python processes and this one add to one counter at once: the sum is exact.
      const Counter = struct({ value: "u64", hits: "u32" });
      const c = heap.findOrCreate(Counter, "counter");
      const n = 20_000;
      let done = 0;
      const kids = [py(["heap-count", h, String(n)]), py(["heap-count", h, String(n)])].map((p) =>
        p.then((r) => {
          done++;
          return r;
        })
      );
      let mine = 0; // this process adds while the children run (and a little before and after)
      while (done < 2 || mine < 1000) {
        for (let i = 0; i < 200; i++) {
          c.$add("value", 1n);
          c.$add("hits", 2);
        }
        mine += 200;
        await new Promise((res) => setTimeout(res, 0));
      }
      for (const k of kids) assertEquals(ok(await k, "python heap-count").stdout.trim(), "counted");
      assertEquals([c.value, c.hits], [BigInt(2 * n + mine), 2 * (2 * n + mine)]);
      assertEquals(heap.names().map((x) => [x.name, x.kind, x.length >= Counter.size]), [
        ["rec", undefined, true],
        ["counter", undefined, true],
      ]);
    } finally {
      heap.unlink();
    }
  },
  { skip: noPython, timeout: 120_000 },
);

/** Points, and whether a victim killed there leaves an operation to roll back / a block leaked in flight. */
const POINTS: [string, boolean, boolean][] = [
  ["heap.alloc.after_remove", true, false],
  ["heap.alloc.before_commit", true, false],
  ["heap.alloc.after_commit", false, true],
  ["heap.free.after_unlink", true, false],
  ["heap.free.before_commit", true, false],
  ["heap.free.after_commit", false, false],
  ["heap.name.before_commit", true, false],
];

test(
  `SharedHeap: Python victims killed inside alloc, free and names are recovered by ${RUNTIME}`,
  async () => {
    for (const [k, [point, rolled, leaked]] of POINTS.entries()) {
      using heap = SharedHeap.create(uniqueName("pyheapk"), { size: 1 << 18, names: 128 });
      using ledger = SharedMemory.create(uniqueName("pyheapl"), ENTRIES * 4);
      try {
        const n = point.startsWith("heap.name") ? 1 : 5;
        const r = await py([
          "heap-crasher",
          JSON.stringify(heap.handle()),
          ledger.name!,
          "0",
          String(500 + k),
          "4000",
          `${point}:${n}`,
        ]);
        assertEquals(r.signal, "SIGKILL", `${point}: ${r.code} ${r.stderr}`);
        heap.lockTimeout = 10_000;
        heap.free(heap.alloc(8)); // takes the lock from the dead holder, rolls back
        const s = heap.stats();
        assertEquals([s.recoveries, s.rolledBack, s.leakedInFlight], [1, rolled ? 1 : 0, leaked ? 1 : 0], point);
        if (leaked) heap.free(s.lastLeaked!);
        assertEquals(checkLedger(heap, ledger.view(Uint32Array, 0, ENTRIES), 1), [], point);
        assertEquals(heap.stats().allocations, 0, point);
      } finally {
        heap.unlink();
        ledger.unlink();
      }
    }
  },
  { skip: noPython, timeout: 240_000 },
);

test(
  `SharedHeap: ${RUNTIME} victims killed inside alloc, free and names are recovered by Python`,
  async () => {
    for (const [k, [point, rolled, leaked]] of POINTS.entries()) {
      using heap = SharedHeap.create(uniqueName("pyheapt"), { size: 1 << 18, names: 128 });
      using ledger = SharedMemory.create(uniqueName("pyheapl"), ENTRIES * 4);
      try {
        const n = point.startsWith("heap.name") ? 1 : 5;
        const h = JSON.stringify(heap.handle());
        const r = await run(
          [...runtimeCommand(RUNTIME, "tests/fixtures/heap_crasher.ts"), h, ledger.name!, "0", String(700 + k), "4000"],
          { env: { SHMKIT_FAULT: `${point}:${n}` }, timeout: 60_000 },
        );
        assertEquals(r.signal, "SIGKILL", `${point}: ${r.code} ${r.stdout} ${r.stderr}`);
        const out = JSON.parse(ok(await py(["heap-check", h, ledger.name!, "1"]), `python heap-check ${point}`).stdout);
        assertEquals(out.problems, [], point);
        assertEquals(
          [out.before.recoveries, out.before.rolledBack, out.before.leakedInFlight],
          [1, rolled ? 1 : 0, leaked ? 1 : 0],
          point,
        );
        assertEquals(out.stats.allocations, 0, point);
        assertEquals(heap.validate(), [], point);
        const s = heap.stats();
        assertEquals([s.allocations, s.freeBlocks, s.free], [0, 1, s.size], point);
      } finally {
        heap.unlink();
        ledger.unlink();
      }
    }
  },
  { skip: noPython, timeout: 240_000 },
);

test(
  `SharedHeap: a Python recoverer killed mid-rollback of a ${RUNTIME} victim's operation is recovered by ${RUNTIME}`,
  async () => {
    using heap = SharedHeap.create(uniqueName("pyheapm"), { size: 1 << 18, names: 128 });
    using ledger = SharedMemory.create(uniqueName("pyheapl"), 2 * ENTRIES * 4);
    try {
      const h = JSON.stringify(heap.handle());
      const r1 = await run(
        [...runtimeCommand(RUNTIME, "tests/fixtures/heap_crasher.ts"), h, ledger.name!, "0", "91", "4000"],
        { env: { SHMKIT_FAULT: "heap.alloc.before_commit:6" }, timeout: 60_000 },
      );
      assertEquals(r1.signal, "SIGKILL", r1.stderr);
      const r2 = await py(["heap-crasher", h, ledger.name!, "1", "92", "4000", "heap.recover.mid_rollback:1"]);
      assertEquals(r2.signal, "SIGKILL", r2.stderr);
      heap.lockTimeout = 10_000;
      heap.free(heap.alloc(8));
      const s = heap.stats();
      assertEquals([s.recoveries, s.rolledBack, s.leakedInFlight], [2, 1, 0]);
      assertEquals(checkLedger(heap, ledger.view(Uint32Array, 0, 2 * ENTRIES), 2), []);
      assertEquals(heap.stats().allocations, 0);
    } finally {
      heap.unlink();
      ledger.unlink();
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(
  `SharedHeap: Python and ${RUNTIME} crashers killed at random fault points while others run, exact accounting`,
  async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const rnd = prng(seed);
    const heap = SharedHeap.create(uniqueName("pyheapcamp"), { size: 1 << 20, names: 128 });
    heap.lockTimeout = 10_000;
    const maxChildren = 60;
    const ledger = SharedMemory.create(uniqueName("pyheapl"), maxChildren * ENTRIES * 4);
    const kills: Record<string, number> = {};
    const problems: string[] = [];
    const pointOf: string[] = []; // by ledger slot: the fault point its child was killed at
    let spawned = 0, survivors = 0, killed = 0;
    try {
      const mine = [heap.alloc(100), heap.alloc(4000), heap.alloc(64, { align: 64 })];
      for (const m of mine) heap.bytes(m, 64).fill(0x5a);
      const h = JSON.stringify(heap.handle());
      const worker = async (): Promise<void> => {
        while (killed < 16 && spawned < maxChildren && problems.length === 0) {
          const slot = spawned++;
          const point = FAULT_POINTS[Math.floor(rnd() * FAULT_POINTS.length)];
          const rare = point === "heap.recover.mid_rollback" || point.startsWith("heap.name");
          const n = 1 + Math.floor(rnd() * (rare ? 2 : 30));
          const lang = rnd() < 0.5 ? "python" : RUNTIME;
          const childSeed = String(Math.floor(rnd() * 2 ** 31));
          const r = lang === "python"
            ? await py(["heap-crasher", h, ledger.name!, String(slot), childSeed, "3000", `${point}:${n}`])
            : await run(
              [
                ...runtimeCommand(RUNTIME, "tests/fixtures/heap_crasher.ts"),
                h,
                ledger.name!,
                String(slot),
                childSeed,
                "3000",
              ],
              { env: { SHMKIT_FAULT: `${point}:${n}` }, timeout: 60_000 },
            );
          if (r.signal === "SIGKILL") {
            killed++;
            kills[point] = (kills[point] ?? 0) + 1;
            pointOf[slot] = point;
          } else if (r.code === 0 && r.stdout.includes("survived")) {
            survivors++;
          } else {
            problems.push(`${lang} child ${point}:${n} seed ${childSeed} exited ${r.code ?? r.signal}: ${r.stderr}`);
          }
          heap.free(heap.alloc(1 + Math.floor(rnd() * 300))); // this process carries on between the deaths
        }
      };
      await Promise.all([worker(), worker(), worker()]);
      assertEquals(problems, [], `seed ${seed}`);
      assert(killed >= 10, `seed ${seed}: only ${killed} kills (${survivors} survivors)`);
      const leakedKills = kills["heap.alloc.after_commit"] ?? 0;
      const lostKills = kills["heap.alloc.after_unlock"] ?? 0; // alloc returned, the offset never stored
      assertEquals(heap.stats().leakedInFlight, leakedKills, `seed ${seed} ${JSON.stringify(kills)}`);
      assertEquals(
        // A child killed at heap.free.after_commit had freed the block its FREEING entry names
        // (recovery completes a committed free); any other death inside free() rolled it back.
        checkLedger(
          heap,
          ledger.view(Uint32Array, 0, maxChildren * ENTRIES),
          maxChildren,
          (slot) => pointOf[slot] === "heap.free.after_commit",
        ),
        [],
        `seed ${seed}`,
      );
      for (const m of mine) {
        assert(heap.bytes(m, 64).every((b) => b === 0x5a), `seed ${seed}: the parent's block ${m} was touched`);
        heap.free(m);
      }
      assertEquals(heap.validate(), []);
      // Exactly the blocks no one can know remain: one per kill between an alloc's commit and the caller storing it.
      assertEquals(heap.stats().allocations, leakedKills + lostKills, `seed ${seed} ${JSON.stringify(kills)}`);
    } finally {
      heap.unlink();
      heap.close();
      ledger.unlink();
      ledger.close();
    }
  },
  { skip: noPython, timeout: 300_000 },
);
