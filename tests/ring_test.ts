import { assert, assertCode, assertEquals, assertRejectsCode } from "./assert.ts";
import { prng, runScript, RUNTIME, test, uniqueName } from "./harness.ts";
import { type Runtime } from "./harness.ts";
import { attach, Ring, type RingCreateOptions, type RingMode, SharedMemory, ShmError } from "../mod.ts";
import { pendingAsyncWaits } from "../src/wait.ts";
import { RING } from "../src/ring.ts";

const MODES: RingMode[] = ["spsc", "mpsc", "spmc", "mpmc"];

function withRing(mode: RingMode, capacity: number, fn: (r: Ring) => void | Promise<void>, initialPosition?: number) {
  return async () => {
    const name = uniqueName("ring");
    const r = Ring.create(name, { capacity, mode, initialPosition } as RingCreateOptions); // initialPosition: test-only
    try {
      await fn(r);
    } finally {
      r.unlink();
      r.close();
    }
  };
}

for (const mode of MODES) {
  test(
    `Ring(${mode}).tryEnqueue returns false when full and tryDequeue undefined when empty`,
    withRing(mode, 3, (r) => {
      assertEquals(r.tryDequeue(), undefined);
      assert(r.tryEnqueue(1));
      assert(r.tryEnqueue(2));
      assert(r.tryEnqueue(0xffffffff));
      assertEquals(r.size, 3);
      assertEquals(r.tryEnqueue(4), false);
      assertEquals(r.tryDequeue(), 1);
      assert(r.tryEnqueue(4));
      assertEquals([r.tryDequeue(), r.tryDequeue(), r.tryDequeue(), r.tryDequeue()], [2, 0xffffffff, 4, undefined]);
      assertEquals(r.size, 0);
      r.validate();
    }),
  );

  for (const seed of [2 ** 32 - 5, 2 ** 32 - 1, 2 ** 31 - 2]) {
    test(
      `Ring(${mode}) keeps FIFO order and exact capacity across counter wraparound (start ${seed})`,
      withRing(mode, 5, (r) => {
        const rnd = prng(seed);
        const model: number[] = [];
        let next = 0;
        for (let step = 0; step < 3000; step++) {
          const op = rnd();
          if (op < 0.5) {
            const ok = r.tryEnqueue(next);
            assertEquals(ok, model.length < 5);
            if (ok) model.push(next);
            next = (next + 1) >>> 0;
          } else if (op < 0.65) {
            const vals = [next, next + 1, next + 2].map((x) => x >>> 0);
            const k = r.enqueueBurst(vals);
            assertEquals(k, Math.min(3, 5 - model.length));
            model.push(...vals.slice(0, k));
            next = (next + 3) >>> 0;
          } else if (op < 0.85) {
            assertEquals(r.tryDequeue(), model.shift());
          } else {
            const out = new Uint32Array(4);
            const k = r.dequeueBurst(out, 3);
            assertEquals(Array.from(out.subarray(0, k)), model.splice(0, 3));
          }
          assertEquals(r.size, model.length);
        }
        r.validate();
      }, seed),
    );
  }

  test(
    `Ring(${mode}) rejects values that are not u32 integers`,
    withRing(mode, 4, (r) => {
      for (const bad of [-1, 2 ** 32, 1.5, NaN, Infinity]) {
        let threw = false;
        try {
          r.tryEnqueue(bad);
        } catch (e) {
          threw = e instanceof RangeError;
        }
        assert(threw, `value ${bad}`);
      }
      let typeErr = false;
      try {
        r.tryEnqueue("1" as unknown as number);
      } catch (e) {
        typeErr = e instanceof TypeError;
      }
      assert(typeErr);
      // A bad value anywhere in a batch enqueues nothing.
      let threw = false;
      try {
        r.enqueueBurst([1, 2, -3]);
      } catch (e) {
        threw = e instanceof RangeError;
      }
      assert(threw);
      assertEquals(r.size, 0);
    }),
  );
}

test(
  "Ring.enqueueBulk is all or nothing and dequeueBulk returns count or 0 (spsc)",
  withRing("spsc", 4, (r) => {
    assert(r.enqueueBulk([1, 2, 3]));
    assertEquals(r.enqueueBulk([4, 5]), false);
    assertEquals(r.size, 3);
    assert(r.enqueueBulk(new Uint32Array([4])));
    const out = new Uint32Array(8);
    assertEquals(r.dequeueBulk(out, 5), 0);
    assertEquals(r.dequeueBulk(out, 3), 3);
    assertEquals(Array.from(out.subarray(0, 3)), [1, 2, 3]);
    assertEquals(r.dequeueBurst(out), 1);
    assertEquals(out[0], 4);
  }),
);

test("Ring.enqueueBulk and dequeueBulk are all or nothing on every mode", async () => {
  await withRing("spmc", 4, (r) => {
    assert(r.enqueueBulk([1, 2, 3]));
    assertEquals(r.enqueueBulk([4, 5]), false);
    const two = new Uint32Array(2);
    assertEquals(r.dequeueBulk(two), 2);
    assertEquals(Array.from(two), [1, 2]);
    assertEquals(r.dequeueBulk(two), 0); // only one left: count or 0
    assertEquals(r.dequeueBulk(new Uint32Array(1)), 1);
  })();
  await withRing("mpsc", 4, (r) => {
    assert(r.enqueueBulk([1, 2]));
    assertEquals(r.enqueueBulk([3, 4, 5]), false);
    assertEquals(r.size, 2);
    assertEquals(r.enqueueBurst([3, 4, 5]), 2);
    const out = new Uint32Array(4);
    assertEquals(r.dequeueBulk(out, 4), 4);
    assertEquals(Array.from(out), [1, 2, 3, 4]);
    assertEquals(r.dequeueBulk(out, 1), 0);
  })();
  for (const seed of [0, 2 ** 32 - 3]) {
    await withRing("mpmc", 5, (r) => {
      const model: number[] = [];
      const rnd = prng(seed + 1);
      let next = 0;
      for (let step = 0; step < 2000; step++) {
        const op = rnd();
        if (op < 0.5) {
          const k = 1 + Math.floor(rnd() * 4);
          const vals = Array.from({ length: k }, (_, j) => next + j);
          next += k;
          const ok = r.enqueueBulk(vals);
          assertEquals(ok, model.length + k <= 5);
          if (ok) model.push(...vals);
        } else if (op < 0.75) {
          const out = new Uint32Array(3);
          const got = r.dequeueBurst(out);
          assertEquals(Array.from(out.subarray(0, got)), model.splice(0, 3));
        } else {
          const want = 1 + Math.floor(rnd() * 3);
          const out = new Uint32Array(want);
          const got = r.dequeueBulk(out);
          assertEquals(got, model.length >= want ? want : 0);
          if (got) assertEquals(Array.from(out), model.splice(0, want));
        }
        assertEquals(r.size, model.length);
      }
      r.validate();
    }, seed)();
  }
});

test("Ring.byteLength/init/at place a ring inside a segment at a 64-byte offset", () => {
  const len = Ring.byteLength({ capacity: 100 });
  assertEquals(len, 384 + 8 * 128);
  using seg = SharedMemory.create(uniqueName("ring"), 128 + len);
  const a = Ring.init(seg, 128, { capacity: 100, mode: "mpmc" });
  assert(a.tryEnqueue(7));
  const b = Ring.at(seg, 128);
  assertEquals(b.capacity, 100);
  assertEquals(b.mode, "mpmc");
  assertEquals(b.tryDequeue(), 7);
  assertCode(() => Ring.at(seg, 0), "EBADHDR");
  assertCode(() => Ring.init(seg, 64 + 32, { capacity: 1 }), "EINVAL");
  assertCode(() => Ring.init(seg, 192, { capacity: 100 }), "ENOSPC");
  seg.unlink();
});

test("Ring.create throws EINVAL for a bad capacity or mode and EEXIST for a taken name", () => {
  const name = uniqueName("ring");
  for (const c of [0, -1, 1.5, 2 ** 28 + 1]) assertCode(() => Ring.create(name, { capacity: c }), "EINVAL");
  assertCode(() => Ring.create(name, { capacity: 4, mode: "xx" as RingMode }), "EINVAL");
  let te = false;
  try {
    Ring.create(name, { capacity: "4" as unknown as number });
  } catch (e) {
    te = e instanceof TypeError;
  }
  assert(te);
  using r = Ring.create(name, { capacity: 4 });
  assertCode(() => Ring.create(name, { capacity: 4 }), "EEXIST", /Cannot create ring/);
  r.unlink();
  assertCode(() => Ring.open(name), "ENOENT", /Cannot open ring/);
});

test("Ring.open throws EBADHDR for corrupted header fields and counters", () => {
  const fields: [number, number][] = [
    [RING.capacity, 0],
    [RING.capacity, 9],
    [RING.slotCount, 6],
    [RING.slotCount, 4],
    [RING.mode, 4],
    [RING.slotsOffset, 100],
    [RING.tail, 100],
    [RING.head, 100],
    [0, 0x12345678],
  ];
  for (const [off, val] of fields) {
    const name = uniqueName("ring");
    using r = Ring.create(name, { capacity: 5 });
    using seg = SharedMemory.open(name);
    new DataView(seg.buffer).setUint32(off, val, true);
    assertCode(() => Ring.open(name), "EBADHDR");
    r.unlink();
  }
  // A segment that is not a ring at all.
  const name = uniqueName("ring");
  using seg = SharedMemory.create(name, 4096);
  assertCode(() => Ring.open(name), "EBADHDR");
  seg.unlink();
});

test("Ring operations throw EBADHDR, never read out of bounds, when counters are corrupted while open", () => {
  for (const mode of MODES) {
    const name = uniqueName("ring");
    using r = Ring.create(name, { capacity: 5, mode });
    r.tryEnqueue(1);
    using seg = SharedMemory.open(name);
    const dv = new DataView(seg.buffer);
    dv.setUint32(RING.tail, 1_000_000, true);
    assertCode(() => r.size, "EBADHDR");
    assertCode(() => r.validate(), "EBADHDR");
    dv.setUint32(RING.tail, 1, true);
    if (mode !== "spsc") {
      // A slot sequence that belongs to no position near the counters.
      dv.setUint32(RING.slots + 4, 77777, true);
      assertCode(() => r.tryDequeue(), "EBADHDR");
      assertCode(() => r.validate(), "EBADHDR");
    } else {
      for (let i = 0; i < 4; i++) assert(r.tryEnqueue(i)); // full: the next enqueue must read head
      dv.setUint32(RING.head, 2 ** 31, true);
      assertCode(() => r.tryEnqueue(2), "EBADHDR");
      assertCode(() => r.tryDequeue(), "EBADHDR");
    }
    r.unlink();
  }
});

test("Ring.handle attaches in this process and through the top-level attach", () => {
  const name = uniqueName("ring");
  using r = Ring.create(name, { capacity: 8, mode: "mpmc" });
  const h = JSON.parse(JSON.stringify(r.handle()));
  assertEquals(h.kind, "shmkit.ring");
  using a = Ring.attach(h);
  using b = attach(h) as Ring;
  r.tryEnqueue(5);
  assertEquals(a.size, 1);
  assertEquals(b.tryDequeue(), 5);
  r.unlink();
});

test("Ring.close is idempotent, releases the mapping and later use throws", () => {
  const name = uniqueName("ring");
  const r = Ring.create(name, { capacity: 8 });
  r.unlink();
  r.close();
  r.close();
  assert(r.closed);
  let threw = false;
  try {
    r.tryEnqueue(1);
  } catch {
    threw = true;
  }
  assert(threw);
  assertCode(() => r.handle(), "ECLOSED");
});

test("Ring single roles: a second object producing on an spsc ring gets EBUSY until the first closes", () => {
  const name = uniqueName("ring");
  const a = Ring.create(name, { capacity: 8, mode: "spsc" });
  const b = Ring.open(name);
  assert(a.tryEnqueue(1));
  assertCode(() => b.tryEnqueue(2), "EBUSY", /producer role/);
  assertEquals(b.tryDequeue(), 1); // b takes the consumer role
  assertCode(() => a.tryDequeue(), "EBUSY", /consumer role/);
  a.close();
  assert(b.tryEnqueue(3));
  assertEquals(b.tryDequeue(), 3);
  b.unlink();
  b.close();
});

test(
  "Ring.enqueue/dequeue time out with ETIMEDOUT",
  withRing("mpmc", 1, (r) => {
    assertCode(() => r.dequeue({ timeout: 20 }), "ETIMEDOUT", /Cannot dequeue from ring/);
    r.enqueue(1, { timeout: 0 });
    assertCode(() => r.enqueue(2, { timeout: 20 }), "ETIMEDOUT");
    assertEquals(r.dequeue({ timeout: 0 }), 1);
  }),
);

test(
  "Ring.dequeueAsync resolves when a value arrives and rejects on timeout and abort",
  withRing("mpmc", 4, async (r) => {
    const p = r.dequeueAsync({ timeout: 10_000 });
    setTimeout(() => r.tryEnqueue(42), 10);
    assertEquals(await p, 42);
    await assertRejectsCode(r.dequeueAsync({ timeout: 20 }), "ETIMEDOUT");
    const ac = new AbortController();
    const q = r.dequeueAsync({ signal: ac.signal });
    const reason = new Error("stop");
    setTimeout(() => ac.abort(reason), 10);
    let got: unknown;
    try {
      await q;
    } catch (e) {
      got = e;
    }
    assert(got === reason);
    for (let i = 0; i < 4; i++) r.tryEnqueue(i);
    const e = r.enqueueAsync(9, { timeout: 10_000 });
    setTimeout(() => r.tryDequeue(), 10);
    await e;
    await assertRejectsCode(r.enqueueAsync(10, { timeout: 20 }), "ETIMEDOUT");
    assertEquals(pendingAsyncWaits(), 0);
  }),
);

test(
  "2500 pending dequeueAsync calls in one process each get exactly one value",
  withRing("mpmc", 64, async (r) => {
    const N = 2500;
    const ps: Promise<number>[] = [];
    for (let i = 0; i < N; i++) ps.push(r.dequeueAsync({ timeout: 60_000 }));
    let sent = 0;
    const pump = async () => {
      while (sent < N) {
        sent += r.enqueueBurst(Array.from({ length: Math.min(32, N - sent) }, (_, k) => sent + k));
        await new Promise((res) => setTimeout(res, 1));
      }
    };
    await pump();
    const got = await Promise.all(ps);
    got.sort((a, b) => a - b);
    for (let i = 0; i < N; i++) assertEquals(got[i], i);
    assertEquals(r.size, 0);
  }),
);

test("for await over a Ring yields values in order and ends when the ring closes", async () => {
  const name = uniqueName("ring");
  const r = Ring.create(name, { capacity: 8, mode: "spsc" });
  r.enqueueBurst([1, 2, 3]);
  const got: number[] = [];
  setTimeout(() => r.tryEnqueue(4), 5);
  for await (const v of r) {
    got.push(v);
    if (got.length === 4) break;
  }
  assertEquals(got, [1, 2, 3, 4]);
  r.unlink();
  r.close();
});

test("Ring errors are ShmError instances naming the ring", () => {
  const name = uniqueName("ring");
  try {
    Ring.open(name);
  } catch (e) {
    assert(e instanceof ShmError);
    assert((e as Error).message.includes(`Cannot open ring "${name}"`), (e as Error).message);
  }
});

// ---------------------------------------------------------------------------------------------
// Cross-process

const others: Runtime[] = RUNTIME === "deno" ? ["bun", "node"] : RUNTIME === "bun" ? ["node", "deno"] : ["deno", "bun"];

test("2 producers and 2 consumers of mixed runtimes move 1 M values exactly once through an mpmc ring", async () => {
  const name = uniqueName("ring");
  using r = Ring.create(name, { capacity: 1000, mode: "mpmc" });
  const perProducer = 500_000;
  const h = JSON.stringify(r.handle());
  using ctr = SharedMemory.create(uniqueName("ctr"), 64);
  const ch = JSON.stringify(ctr.handle());
  const rts: Runtime[] = [RUNTIME, others[0], others[1], RUNTIME];
  const [p0, p1, c0, c1] = await Promise.all([
    runScript(rts[0], "tests/fixtures/ring_producer.ts", {
      args: [h, "0", String(perProducer), "burst"],
      timeout: 110_000,
    }),
    runScript(rts[1], "tests/fixtures/ring_producer.ts", {
      args: [h, "1", String(perProducer), "single"],
      timeout: 110_000,
    }),
    runScript(rts[2], "tests/fixtures/ring_consumer.ts", {
      args: [h, "2", String(perProducer), "burst", "loose", ch],
      timeout: 110_000,
    }),
    runScript(rts[3], "tests/fixtures/ring_consumer.ts", {
      args: [h, "2", String(perProducer), "single", "loose", ch],
      timeout: 110_000,
    }),
  ]);
  void p0;
  void p1;
  const a = JSON.parse(c0.stdout.trim().split("\n").pop()!);
  const b = JSON.parse(c1.stdout.trim().split("\n").pop()!);
  // Consumers report count, sum, xor and the values as a bitmap (base64).
  const total = 2 * perProducer;
  assertEquals(a.count + b.count, total);
  let sum = 0;
  let xor = 0;
  for (let p = 0; p < 2; p++) {
    for (let i = 0; i < perProducer; i++) {
      const v = (p << 24) | i;
      sum += v;
      xor ^= v;
    }
  }
  assertEquals(a.sum + b.sum, sum);
  assertEquals((a.xor ^ b.xor) >>> 0, xor >>> 0);
  const bmA = Uint8Array.from(atob(a.bitmap), (c) => c.charCodeAt(0));
  const bmB = Uint8Array.from(atob(b.bitmap), (c) => c.charCodeAt(0));
  let dup = 0;
  let seen = 0;
  for (let i = 0; i < bmA.length; i++) {
    dup += popcount(bmA[i] & bmB[i]);
    seen += popcount(bmA[i] | bmB[i]);
  }
  assertEquals(dup, 0);
  assertEquals(seen, total);
  assert(a.fifo && b.fifo, "per-producer FIFO order");
  assertEquals(r.size, 0);
  r.unlink();
  ctr.unlink();
}, { timeout: 120_000 });

test("an spsc ring between two processes of different runtimes delivers 1 M values in strict order", async () => {
  const name = uniqueName("ring");
  using r = Ring.create(name, { capacity: 512, mode: "spsc" });
  const h = JSON.stringify(r.handle());
  const n = 1_000_000;
  const [, c] = await Promise.all([
    runScript(others[0], "tests/fixtures/ring_producer.ts", { args: [h, "0", String(n), "burst"], timeout: 110_000 }),
    runScript(others[1], "tests/fixtures/ring_consumer.ts", {
      args: [h, "1", String(n), "burst", "strict", "none"],
      timeout: 110_000,
    }),
  ]);
  const res = JSON.parse(c.stdout.trim().split("\n").pop()!);
  assertEquals(res.count, n);
  assert(res.strict, "strict order");
  r.unlink();
}, { timeout: 120_000 });

test("a second process producing on an spsc ring gets EBUSY, and the role frees when it exits", async () => {
  const name = uniqueName("ring");
  using r = Ring.create(name, { capacity: 8, mode: "spsc" });
  assert(r.tryEnqueue(1)); // this process is the producer
  const h = JSON.stringify(r.handle());
  const res = await runScript(others[0], "tests/fixtures/ring_role.ts", { args: [h, "produce"] });
  assertEquals(res.stdout.trim(), "EBUSY");
  r.close(); // releases the producer role
  using again = Ring.open(name);
  const res2 = await runScript(others[1], "tests/fixtures/ring_role.ts", { args: [h, "produce"] });
  assertEquals(res2.stdout.trim(), "ok");
  // The child exited without close(): its role is taken over because it is dead.
  assert(again.tryEnqueue(2));
  assertEquals(again.tryDequeue(), 1);
  assertEquals(again.tryDequeue(), 99);
  assertEquals(again.tryDequeue(), 2);
  again.unlink();
});

test("a second consumer on an mpsc ring gets EBUSY across processes", async () => {
  const name = uniqueName("ring");
  using r = Ring.create(name, { capacity: 8, mode: "mpsc" });
  r.tryDequeue(); // take the consumer role
  const h = JSON.stringify(r.handle());
  const res = await runScript(others[1], "tests/fixtures/ring_role.ts", { args: [h, "consume"] });
  assertEquals(res.stdout.trim(), "EBUSY");
  const res2 = await runScript(others[0], "tests/fixtures/ring_role.ts", { args: [h, "produce"] });
  assertEquals(res2.stdout.trim(), "ok"); // mpsc: any number of producers
  assertEquals(r.tryDequeue(), 99);
  r.unlink();
});

test("no lost wake-ups: 10 000 park/wake rounds with random delays between two processes", async () => {
  const name = uniqueName("ring");
  using ping = Ring.create(name, { capacity: 1, mode: "spsc" });
  using pong = Ring.create(name + "b", { capacity: 1, mode: "spsc" });
  const rounds = 10_000;
  const child = runScript(others[0], "tests/fixtures/ring_pingpong.ts", {
    args: [JSON.stringify(ping.handle()), JSON.stringify(pong.handle()), String(rounds)],
    timeout: 110_000,
  });
  const rnd = prng(12345);
  for (let i = 0; i < rounds; i++) {
    // Random delay of 0..100 us before sending, so the child is sometimes spinning, often parked.
    const until = performance.now() + rnd() * 0.1;
    while (performance.now() < until) { /* short busy delay */ }
    ping.enqueue(i, { timeout: 30_000 });
    assertEquals(pong.dequeue({ timeout: 30_000 }), i);
  }
  await child;
  ping.unlink();
  pong.unlink();
}, { timeout: 120_000 });

function popcount(x: number): number {
  let c = 0;
  while (x) {
    x &= x - 1;
    c++;
  }
  return c;
}

test("Ring.close gives back the waiter registrations of pending async waits", async () => {
  const name = uniqueName("ring");
  using owner = Ring.create(name, { capacity: 4 });
  const r = Ring.open(name);
  const ps = [r.dequeueAsync({ timeout: 5000 }), r.dequeueAsync({ timeout: 5000 })];
  await new Promise((res) => setTimeout(res, 20));
  using seg = SharedMemory.open(name);
  const words = seg.view(Uint32Array, 0, 96);
  // Asynchronous waiters of one Ring object queue locally: one registration (its parker) for both.
  assertEquals(words[RING.consWaiters / 4], 1);
  r.close();
  assertEquals(words[RING.consWaiters / 4], 0);
  for (const p of ps) await assertRejectsCode(p, "ECLOSED");
  owner.unlink();
});

// ---------------------------------------------------------------------------------------------
// Hardening: corrupt shared state, short segments, closed objects (issue 10 items 1, 4, 11)

for (const mode of ["mpsc", "spmc", "mpmc"] as RingMode[]) {
  for (
    const [label, words] of [
      ["head 0 -> 2 with tail 0", [`${RING.head}=2`]],
      ["slot 0's sequence 0xfffffffd", [`${RING.slots + 4}=${0xfffffffd}`]],
      ["slot 1's sequence 0xfffffffd", [`${RING.slots + 12}=${0xfffffffd}`]],
      ["tail 0 -> 0xffffffff", [`${RING.tail}=${0xffffffff}`]],
    ] as [string, string[]][]
  ) {
    test(`Ring (${mode}) with ${label}: every operation returns or throws EBADHDR within its timeout`, async () => {
      const name = uniqueName("ring");
      const r = Ring.create(name, { capacity: 4, mode }); // 4 slots: 0xfffffffd reads as position -4
      try {
        const res = await runScript(RUNTIME, "tests/fixtures/fuzz_ring_corrupt.ts", {
          args: [name, ...words],
          timeout: 20_000, // a hang guard: an endless loop is killed and fails the test
        });
        const lines = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
        assertEquals(lines.length, 6, res.stdout + res.stderr);
        for (const l of lines) {
          assert(l.result !== undefined || ["EBADHDR", "ETIMEDOUT"].includes(l.code), JSON.stringify(l));
          assert(l.ms < 2000, `${l.op} took ${l.ms} ms`);
        }
      } finally {
        r.unlink();
        r.close();
      }
    });
  }
}

test("Ring.open of a segment with a ring header but fewer bytes than a ring's fixed header gives EBADHDR", async () => {
  const { writeHeader, publishReady } = await import("../src/layout.ts");
  for (const size of [64, 128, 384, 400]) {
    const name = uniqueName("ring");
    const seg = SharedMemory.create(name, size);
    try {
      writeHeader(seg.buffer, 0, "ring", 64, size);
      publishReady(seg.buffer, 0);
      assertCode(() => Ring.open(name), "EBADHDR");
      assertCode(() => Ring.at(seg, 0), "EBADHDR");
    } finally {
      seg.unlink();
      seg.close();
    }
  }
});

test("Ring: after close every method and getter throws ECLOSED (also a ring placed with at() after its segment closes)", async () => {
  const name = uniqueName("ring");
  const own = Ring.create(name, { capacity: 4, mode: "mpmc" });
  const seg = SharedMemory.open(name);
  const placed = Ring.at(seg, 0);
  own.unlink();
  own.close();
  seg.close(); // `placed` lives in a closed segment now (zero pages on Node 20, detached elsewhere)
  for (const r of [own, placed]) {
    const out = new Uint32Array(2);
    assertCode(() => r.size, "ECLOSED");
    assertCode(() => r.tryEnqueue(1), "ECLOSED");
    assertCode(() => r.tryDequeue(), "ECLOSED");
    assertCode(() => r.enqueueBulk([1, 2]), "ECLOSED");
    assertCode(() => r.enqueueBurst([1, 2]), "ECLOSED");
    assertCode(() => r.dequeueBulk(out), "ECLOSED");
    assertCode(() => r.dequeueBurst(out), "ECLOSED");
    assertCode(() => r.enqueue(1, { timeout: 10 }), "ECLOSED");
    assertCode(() => r.dequeue({ timeout: 10 }), "ECLOSED");
    await assertRejectsCode(r.enqueueAsync(1, { timeout: 10 }), "ECLOSED");
    await assertRejectsCode(r.dequeueAsync({ timeout: 10 }), "ECLOSED");
    assertCode(() => r.handle(), "ECLOSED");
    assertCode(() => r.validate(), "ECLOSED");
    r.close();
  }
});

test(
  "10,000 dequeueAsync waiters on one ring receive 10,000 items from another process (no thundering herd)",
  async () => {
    const name = uniqueName("ring");
    const r = Ring.create(name, { capacity: 1024, mode: "mpmc" });
    try {
      const N = 10_000;
      const ps: Promise<number>[] = [];
      for (let i = 0; i < N; i++) ps.push(r.dequeueAsync({ timeout: 20_000 })); // 20 s: a hang guard
      const t0 = performance.now();
      const child = runScript(RUNTIME === "bun" ? "deno" : "bun", "tests/fixtures/ring_producer.ts", {
        args: [JSON.stringify(r.handle()), "1", String(N), "burst"],
        timeout: 60_000,
      });
      const got = await Promise.all(ps);
      const ms = performance.now() - t0;
      await child;
      console.log(`10,000 async waiters got 10,000 items in ${ms.toFixed(0)} ms (${RUNTIME}, producer child included)`);
      got.sort((a, b) => a - b);
      for (let i = 0; i < N; i++) assertEquals(got[i], ((1 << 24) | i) >>> 0);
      assertEquals(r.size, 0);
      assertEquals(pendingAsyncWaits(), 0);
    } finally {
      r.unlink();
      r.close();
    }
  },
  { timeout: 60_000 },
);
