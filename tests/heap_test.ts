// SharedHeap and struct(): allocation, alignment, invalid frees, named roots, objects and structs
// placed by name, across processes and runtimes, hostile headers, and the README counter example.
import { assert, assertCode, assertEquals } from "./assert.ts";
import { prng, runScript, RUNTIME, RUNTIMES, test, uniqueName } from "./harness.ts";
import {
  Channel,
  Condition,
  Mempool,
  Mutex,
  Ring,
  Semaphore,
  SharedArray,
  SharedHeap,
  SharedMemory,
  ShmError,
  struct,
} from "../mod.ts";
import { HEAP, HEAP_BLOCK_HEADER, HEAP_JOURNAL_BYTES } from "../src/heap.ts";
import { inspect } from "../src/inspect.ts";

const CHILD = "tests/fixtures/heap_child.ts";
const OTHER = { deno: "bun", bun: "node", node: "deno" } as const;

/** Asserts `fn` throws an instance of `type` (RangeError, TypeError). */
function assertThrowsType(fn: () => unknown, type: ErrorConstructor): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof type) return;
    throw new Error(`expected a ${type.name}, got ${e}`);
  }
  throw new Error(`expected a ${type.name}, nothing was thrown`);
}

function withHeap(size: number, fn: (heap: SharedHeap) => void | Promise<void>, opts = {}) {
  return async () => {
    const heap = SharedHeap.create(uniqueName("heap"), { size, ...opts });
    try {
      await fn(heap);
    } finally {
      heap.unlink();
      heap.close();
    }
  };
}

/** Every word of the heap (header, journal excluded: it records history) as a copy. */
function snapshot(heap: SharedHeap): Uint8Array {
  return heap.segment.bytes(heap.byteOffset, SharedHeap.byteLength({ size: heap.size })).slice();
}

function u32(heap: SharedHeap, off: number): number {
  return new DataView(heap.segment.buffer).getUint32(heap.byteOffset + off, true);
}

function setU32(heap: SharedHeap, off: number, v: number): void {
  new DataView(heap.segment.buffer).setUint32(heap.byteOffset + off, v >>> 0, true);
}

test(
  "SharedHeap.alloc returns disjoint blocks that free() coalesces back into one",
  withHeap(1 << 16, (heap) => {
    const s0 = heap.stats();
    assertEquals([s0.allocations, s0.freeBlocks, s0.used, s0.free, s0.largestFree], [0, 1, 0, 1 << 16, 1 << 16]);
    const a = heap.alloc(10);
    const b = heap.alloc(100);
    const c = heap.alloc(1000);
    for (const [x, n] of [[a, 10], [b, 100], [c, 1000]]) assert(heap.sizeOf(x) >= n);
    assert(a + heap.sizeOf(a) <= b && b + heap.sizeOf(b) <= c, `${a} ${b} ${c}`);
    assertEquals(heap.stats().allocations, 3);
    assertEquals(heap.validate(), []);
    heap.free(b);
    assertEquals(heap.validate(), []);
    heap.free(a);
    heap.free(c);
    assertEquals(heap.validate(), []);
    const s = heap.stats();
    assertEquals([s.allocations, s.freeBlocks, s.used, s.free, s.fragmentation], [0, 1, 0, 1 << 16, 0]);
  }),
);

test(
  "SharedHeap.alloc honours every alignment from 1 to 65536",
  withHeap(1 << 20, (heap) => {
    const offs: number[] = [];
    for (let k = 0; k <= 16; k++) {
      const align = 2 ** k;
      const off = heap.alloc(1 + k * 7, { align });
      assertEquals(off % Math.max(align, 16), 0, `align ${align}: ${off}`);
      offs.push(off);
      assertEquals(heap.validate(), []);
    }
    for (const o of offs.reverse()) heap.free(o);
    assertEquals(heap.validate(), []);
    assertEquals(heap.stats().freeBlocks, 1);
    for (const bad of [3, 0, 131072, 48]) assertThrowsType(() => heap.alloc(8, { align: bad }), RangeError);
  }),
);

test(
  "SharedHeap.free of a foreign, interior or already freed offset throws EINVAL and changes nothing",
  withHeap(1 << 14, (heap) => {
    const a = heap.alloc(64);
    const b = heap.alloc(64);
    heap.free(a);
    const before = snapshot(heap);
    const bad = [a, b + 16, b - 16, b + 1, 0, -16, heap.byteOffset + 64, 1 << 30, NaN, 1.5, Infinity];
    for (const x of bad) assertCode(() => heap.free(x), "EINVAL", /not a live allocation/);
    assertCode(() => heap.free("12" as unknown as number), "EINVAL");
    const after = snapshot(heap);
    // Only the journal's sequence words may move (each failed free is an empty operation).
    const seqWords = new Set<number>([HEAP.opSeq, HEAP.doneSeq, HEAP.pendingAlloc]);
    for (let i = 0; i < before.length; i++) {
      if (before[i] === after[i]) continue;
      const word = i & ~3;
      assert(seqWords.has(word), `byte ${i} changed (word ${word})`);
    }
    heap.free(b);
    assertEquals(heap.validate(), []);
    assertCode(() => heap.free(b), "EINVAL");
  }),
);

test(
  "SharedHeap.alloc throws ENOMEM when nothing fits and the heap stays usable",
  withHeap(4096, (heap) => {
    assertCode(() => heap.alloc(4096), "ENOMEM");
    const all = heap.alloc(4096 - HEAP_BLOCK_HEADER);
    assertCode(() => heap.alloc(1), "ENOMEM");
    heap.free(all);
    const xs: number[] = [];
    for (;;) {
      try {
        xs.push(heap.alloc(16));
      } catch (e) {
        assertEquals((e as ShmError).code, "ENOMEM");
        break;
      }
    }
    assertEquals(xs.length, 4096 / 32);
    for (const x of xs) heap.free(x);
    assertEquals(heap.validate(), []);
    assertThrowsType(() => heap.alloc(0), RangeError);
    assertThrowsType(() => heap.alloc(1.5), RangeError);
  }),
);

test(
  "SharedHeap random alloc/free keeps every invariant and every block's contents (seeded)",
  withHeap(1 << 18, (heap) => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const rnd = prng(seed);
    const live = new Map<number, { len: number; v: number }>();
    for (let i = 0; i < 6000; i++) {
      if (live.size === 0 || rnd() < 0.55) {
        const len = 1 + Math.floor(rnd() * (rnd() < 0.9 ? 200 : 8000));
        const align = rnd() < 0.15 ? 2 ** (4 + Math.floor(rnd() * 8)) : undefined;
        let off: number;
        try {
          off = heap.alloc(len, { align });
        } catch (e) {
          assertEquals((e as ShmError).code, "ENOMEM", `seed ${seed}`);
          continue;
        }
        if (align) assertEquals(off % align, 0, `seed ${seed}`);
        const v = i & 0xff;
        heap.bytes(off, len).fill(v);
        live.set(off, { len, v });
      } else {
        const keys = [...live.keys()];
        const off = keys[Math.floor(rnd() * keys.length)];
        const x = live.get(off)!;
        assert(heap.bytes(off, x.len).every((b) => b === x.v), `seed ${seed}: block ${off} was overwritten`);
        heap.free(off);
        live.delete(off);
      }
      if (i % 500 === 0) assertEquals(heap.validate(), [], `seed ${seed}`);
    }
    const s = heap.stats();
    assertEquals(s.allocations, live.size, `seed ${seed}`);
    assertEquals(s.used + s.free, s.size);
    assert(s.fragmentation >= 0 && s.fragmentation < 1);
    for (const off of live.keys()) heap.free(off);
    assertEquals(heap.validate(), [], `seed ${seed}`);
    assertEquals(heap.stats().freeBlocks, 1);
  }),
);

test(
  "SharedHeap named roots: set, get, delete, destroy, names and a full table (ENOSPC)",
  withHeap(1 << 14, (heap) => {
    const a = heap.alloc(40);
    heap.set("alpha", a);
    assertEquals(heap.get("alpha"), a);
    assertEquals(heap.get("beta"), undefined);
    heap.set("alpha", heap.alloc(8)); // replaces
    assert(heap.get("alpha") !== a);
    assertCode(() => heap.set("x", a + 16), "EINVAL");
    assertThrowsType(() => heap.set("", a), RangeError);
    assertThrowsType(() => heap.set("é".repeat(25), a), RangeError);
    heap.set("ü".repeat(24), a); // exactly 48 UTF-8 bytes
    assertEquals(heap.get("ü".repeat(24)), a);
    assertEquals(heap.names().map((n) => n.name).sort(), ["alpha", "ü".repeat(24)].sort());
    assert(heap.delete("alpha"));
    assert(!heap.delete("alpha"));
    const before = heap.stats().allocations;
    assert(heap.destroy("ü".repeat(24)));
    assertEquals(heap.stats().allocations, before - 1);
    assertCode(() => heap.free(a), "EINVAL");
    for (let i = 0; i < 4; i++) heap.findOrAlloc(`n${i}`, 8);
    assertCode(() => heap.findOrAlloc("n4", 8), "ENOSPC");
    assertEquals(heap.validate(), []);
  }, { names: 4 }),
);

test(
  "SharedHeap.findOrAlloc rolls back the allocation when init throws",
  withHeap(1 << 14, (heap) => {
    let threw = false;
    try {
      heap.findOrAlloc("x", 100, {
        init: () => {
          throw new Error("boom");
        },
      });
    } catch (e) {
      threw = (e as Error).message === "boom";
    }
    assert(threw);
    assertEquals(heap.get("x"), undefined);
    assertEquals(heap.stats().allocations, 0);
    assertEquals(heap.validate(), []);
  }),
);

test(`SharedHeap.findOrAlloc creates exactly once when processes of every runtime race`, async () => {
  const heap = SharedHeap.create(uniqueName("heap-race"), { size: 1 << 14 });
  try {
    const h = JSON.stringify(heap.handle());
    const runs = await Promise.all(
      [...RUNTIMES, ...RUNTIMES].map((rt) => runScript(rt, CHILD, { args: ["race", h] })),
    );
    const lines = runs.map((r) => r.stdout.trim());
    assertEquals(new Set(lines).size, 1, lines.join("\n"));
    assertEquals(heap.stats().allocations, 1);
    assertEquals(heap.names().length, 1);
  } finally {
    heap.unlink();
    heap.close();
  }
});

test(
  "Objects placed in a heap by name: Ring, Mempool, Channel, Mutex, Semaphore, Condition, SharedArray",
  withHeap(1 << 20, (heap) => {
    using ring = heap.create(Ring, "ring", { capacity: 16 });
    using pool = heap.create(Mempool, "pool", { count: 4, blockSize: 64 });
    using ch = heap.create(Channel, "ch", { slots: 4, slotSize: 64 });
    using mutex = heap.create(Mutex, "mutex");
    using sem = heap.create(Semaphore, "sem", { value: 1 });
    using cond = heap.create(Condition, "cond");
    using arr = heap.create(SharedArray, "arr", { dtype: "int32", shape: [3] });
    assert(ring.tryEnqueue(9));
    using ring2 = heap.open(Ring, "ring");
    assertEquals(ring2.tryDequeue(), 9);
    const blk = pool.tryGet()!;
    pool.put(blk);
    assert(ch.trySend("hi"));
    using ch2 = heap.open(Channel, "ch");
    assertEquals(ch2.tryRecv()!.text(), "hi");
    mutex.lock().unlock();
    assert(sem.tryAcquire());
    cond.notify();
    arr.data[2] = 5;
    using arr2 = heap.open(SharedArray, "arr");
    assertEquals(arr2.data[2], 5);
    for (const x of [ring, pool, ch, mutex, sem, cond, arr]) assertEquals(x.handle().name, heap.segment.name);
    assertEquals(
      heap.names().map((n) => `${n.name}:${n.kind}`).sort(),
      ["arr:array", "ch:channel", "cond:condition", "mutex:mutex", "pool:mempool", "ring:ring", "sem:semaphore"],
    );
    for (const n of heap.names()) assertEquals(n.offset % 64, 0);
    assertCode(() => heap.create(Ring, "ring", { capacity: 4 }), "EEXIST");
    assertCode(() => heap.open(Ring, "mutex"), "EBADHDR");
    assertCode(() => heap.open(Ring, "nothing"), "ENOENT");
    using again = heap.findOrCreate(Ring, "ring", { capacity: 999 });
    assertEquals(again.capacity, 16);
    assertEquals(heap.validate(), []);
  }),
);

test(`Objects placed by ${RUNTIME} in a heap are found by name from ${OTHER[RUNTIME]}`, async () => {
  const heap = SharedHeap.create(uniqueName("heap-obj"), { size: 1 << 18 });
  try {
    using ring = heap.create(Ring, "jobs", { capacity: 8 });
    for (const v of [1, 2, 3, 4]) ring.tryEnqueue(v);
    using sem = heap.create(Semaphore, "sem", { value: 0 });
    using arr = heap.create(SharedArray, "arr", { dtype: "float64", shape: [4] });
    const r = await runScript(OTHER[RUNTIME], CHILD, { args: ["objects", JSON.stringify(heap.handle())] });
    assert(r.stdout.includes("sum 10"), r.stdout);
    assertEquals(ring.size, 0);
    assertEquals(sem.value, 3);
    assertEquals(arr.data[1], 42);
  } finally {
    heap.unlink();
    heap.close();
  }
});

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

test("struct() lays fields out as C does, with atomics on integer fields", () => {
  assertEquals(
    Object.fromEntries(Object.entries(Rec.fields).map(([k, v]) => [k, [v.offset, v.size]])),
    {
      count: [0, 4],
      total: [8, 8],
      ratio: [16, 4],
      ok: [20, 1],
      label: [21, 20],
      tag: [41, 4],
      samples: [46, 6],
      at: [56, 16],
      path: [72, 32],
    },
  );
  assertEquals([Rec.size, Rec.align], [104, 8]);
  assertEquals(struct({ a: "u8", b: "u16", c: "u8" }).size, 6);
  const r = Rec.view(new Uint8Array(Rec.size));
  r.count = 4;
  assertEquals(r.$add("count", 3), 4);
  assertEquals(r.$compareExchange("count", 7, 10), 7);
  assertEquals(r.$compareExchange("count", 7, 11), 10);
  assertEquals(r.$load("count"), 10);
  r.total = -2n;
  assertEquals(r.$sub("total", 3n), -2n);
  assertEquals(r.total, -5n);
  r.label = "héllo";
  assertEquals(r.label, "héllo");
  assertThrowsType(() => (r.label = "x".repeat(21)), RangeError);
  r.ok = true;
  assertEquals(r.ok, true);
  r.samples = [1, 2] as unknown as Uint16Array;
  assertEquals([...r.samples], [1, 2, 0]);
  r.path[1].y = 2.5;
  assertEquals(r.path[1].y, 2.5);
  assertThrowsType(() => (r as unknown as { $add(f: string, n: number): void }).$add("ratio", 1), TypeError);
  assertThrowsType(() => struct({ $x: "u8" }), TypeError);
  assertThrowsType(() => struct({ x: "u128" as "u8" }), TypeError);
  assertThrowsType(() => Rec.view(new Uint8Array(8)), RangeError);
});

test(`A struct written by ${RUNTIME} is read and updated by schema from ${OTHER[RUNTIME]}`, async () => {
  const heap = SharedHeap.create(uniqueName("heap-struct"), { size: 1 << 14 });
  try {
    const r = heap.create(Rec, "rec");
    r.count = 41;
    r.total = -(2n ** 40n);
    r.ratio = 0.5;
    r.ok = true;
    r.label = "naïve";
    r.tag = new Uint8Array([1, 2, 3, 4]);
    r.samples = new Uint16Array([7, 8, 9]);
    r.at.x = 1.25;
    r.path[1].y = -3;
    const out = await runScript(OTHER[RUNTIME], CHILD, { args: ["struct", JSON.stringify(heap.handle())] });
    assertEquals(JSON.parse(out.stdout.trim()), {
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
    assert(/^from \d+$/.test(r.label), r.label);
  } finally {
    heap.unlink();
    heap.close();
  }
});

test(
  `Two processes (${RUNTIME}, ${OTHER[RUNTIME]}) allocating and freeing concurrently never share a block`,
  async () => {
    const heap = SharedHeap.create(uniqueName("heap-churn"), { size: 1 << 18 });
    try {
      const h = JSON.stringify(heap.handle());
      const seed = Math.floor(Math.random() * 2 ** 31);
      const [a, b] = await Promise.all([
        runScript(RUNTIME, CHILD, { args: ["churn", h, String(seed), "60000"], timeout: 110_000 }),
        runScript(OTHER[RUNTIME], CHILD, { args: ["churn", h, String(seed + 1), "60000"], timeout: 110_000 }),
      ]);
      assert(a.stdout.startsWith("ok") && b.stdout.startsWith("ok"), `seed ${seed}\n${a.stdout}\n${b.stdout}`);
      assertEquals(heap.validate(), [], `seed ${seed}`);
      const s = heap.stats();
      assertEquals([s.allocations, s.freeBlocks, s.recoveries], [0, 1, 0], `seed ${seed}`);
    } finally {
      heap.unlink();
      heap.close();
    }
  },
  { timeout: 120_000 },
);

test(`examples/heap_counter.ts: ${RUNTIME} and ${OTHER[RUNTIME]} increment one counter to 20000`, async () => {
  const name = uniqueName("heap-counter");
  try {
    const runs = await Promise.all([
      runScript(RUNTIME, "examples/heap_counter.ts", { args: [name], timeout: 90_000 }),
      runScript(OTHER[RUNTIME], "examples/heap_counter.ts", { args: [name], timeout: 90_000 }),
    ]);
    for (const r of runs) assertEquals(r.stdout.trim(), "counter = 20000");
    assert(!SharedMemory.exists(name), "the last process removes the name");
  } finally {
    SharedMemory.unlink(name);
  }
});

// ---------------------------------------------------------------------------------------------
// Hostile headers: a corrupt value gives EBADHDR, never an out-of-bounds access or a hang.

test("SharedHeap.open rejects impossible header fields with EBADHDR", () => {
  const name = uniqueName("heap-hostile");
  const heap = SharedHeap.create(name, { size: 1 << 14 });
  try {
    const fields: [number, number][] = [
      [HEAP.arenaSize, 0xffffffc0],
      [HEAP.arenaSize, 100],
      [HEAP.arenaSize, (1 << 14) + 64],
      [HEAP.nameCount, 0],
      [HEAP.nameCount, 1 << 20],
      [HEAP.slots, 0],
      [HEAP.mutexOffset, 64],
      [HEAP.journalOffset, 1 << 30],
      [HEAP.bitmapOffset, 12],
      [HEAP.arenaOffset, 8],
    ];
    for (const [off, v] of fields) {
      const old = u32(heap, off);
      setU32(heap, off, v);
      assertCode(() => SharedHeap.open(name).close(), "EBADHDR");
      setU32(heap, off, old);
    }
    SharedHeap.open(name).close();
    using seg = SharedMemory.create(uniqueName("heap-small"), 512);
    assertCode(() => SharedHeap.at(seg, 0), "EBADHDR");
    seg.unlink();
  } finally {
    heap.unlink();
    heap.close();
  }
});

test(
  "SharedHeap operations on corrupt blocks, links, bitmaps and journals throw EBADHDR",
  withHeap(1 << 14, (heap) => {
    const arena = u32(heap, HEAP.arenaOffset);
    const a = heap.alloc(64);
    const b = heap.alloc(64);
    const blockB = b - heap.byteOffset - HEAP_BLOCK_HEADER;
    const tail = blockB + u32(heap, blockB) - (u32(heap, blockB) & 15); // the free block after b
    const cases: [string, number, number, () => unknown][] = [
      ["a block size beyond the arena", blockB, 0xfffffff1, () => heap.free(b)],
      ["a zero block size", blockB, 1, () => heap.free(b)],
      ["a free-list link outside the arena", tail + 8, 0xfff0, () => heap.alloc(64)],
      ["a free-list link into the header", tail + 12, 64, () => heap.free(b)],
      ["a huge free block size", tail, 0x7ffffff0 | 2, () => heap.alloc(32)],
      ["a first-level bitmap naming empty lists", HEAP.flBitmap, 0xffffffff, () => heap.alloc(16)],
    ];
    for (const [why, off, v, op] of cases) {
      const old = u32(heap, off);
      setU32(heap, off, v);
      try {
        op();
        throw new Error(`${why}: no error`);
      } catch (e) {
        if (!(e instanceof ShmError) || e.code !== "EBADHDR") throw new Error(`${why}: ${e}`);
      }
      if (why.includes("size")) assertCode(() => heap.stats(), "EBADHDR");
      setU32(heap, off, old);
      assertEquals(heap.validate(), [], why);
    }
    // A cyclic free list and a walk that never ends are reported, not followed forever.
    setU32(heap, tail + 8, tail);
    assert(heap.validate().length > 0);
    setU32(heap, tail + 8, 0);
    assertEquals(heap.validate(), []);
    // A journal left open whose entries name words outside the heap's mutable fields.
    const j = u32(heap, HEAP.journalOffset);
    const seq = u32(heap, HEAP.opSeq);
    setU32(heap, j, 0); // word 0: the magic
    setU32(heap, j + 4, 0);
    setU32(heap, j + 8, seq);
    setU32(heap, HEAP.doneSeq, seq - 1);
    assertCode(() => heap.alloc(8), "EBADHDR");
    setU32(heap, j + 8, seq - 7);
    heap.free(heap.alloc(8)); // an open operation with no entries is simply closed
    assertEquals(heap.stats().rolledBack, 1);
    assert(HEAP_JOURNAL_BYTES === 12 && arena > 0);
    heap.free(a);
    heap.free(b);
    assertEquals(heap.validate(), []);
  }),
);

test("shmkit inspect shows a heap's figures, named roots and lock", () => {
  const name = uniqueName("heap-inspect");
  const heap = SharedHeap.create(name, { size: 1 << 16 });
  try {
    heap.create(Ring, "jobs", { capacity: 8 }).close();
    heap.findOrAlloc("cfg", 100);
    const d = Object.fromEntries(inspect(name)!);
    assertEquals(d.kind, "heap");
    assertEquals(d.allocations, 2);
    assertEquals(d.arena, 1 << 16);
    assert(String(d["name jobs"]).endsWith("ring"), String(d["name jobs"]));
    assert(String(d["name cfg"]).includes(`offset ${heap.get("cfg")}`));
    assertEquals(d["leaked in flight"], 0);
    assertEquals(d.holder, "none");
  } finally {
    heap.unlink();
    heap.close();
  }
});
