// Channel layout 2: batch send/receive, the text/JSON fast paths, release semantics, corrupt
// rings and state words (EBADHDR, never a hang or a crash), close() detaching every view.
import { assert, assertCode, assertEquals, assertThrows } from "./assert.ts";
import { prng, runScript, RUNTIME, type Runtime, test, uniqueName } from "./harness.ts";
import { Channel, SharedMemory } from "../mod.ts";
import { CHANNEL } from "../src/channel.ts";
import { RING } from "../src/ring.ts";

function fresh(slots = 4, slotSize = 64, mode: "spsc" | "mpmc" = "mpmc"): Channel {
  return Channel.create(uniqueName("chb"), { slots, slotSize, mode });
}

const dec = new TextDecoder();
const texts = (ch: Channel, max?: number): string[] => {
  const out: string[] = [];
  ch.tryRecvBatch((b, n) => out.push(dec.decode(b.subarray(0, n))), max);
  return out;
};

for (const mode of ["spsc", "mpmc"] as const) {
  test(`${mode}: trySendBatch and tryRecvBatch keep order across many wraparounds, with partial batches and max`, () => {
    using ch = fresh(5, 16, mode);
    let next = 0;
    let want = 0;
    for (let round = 0; round < 200; round++) {
      const k = 1 + (round % 7);
      const items = Array.from({ length: k }, (_, j) => `m${next + j}`);
      const sent = ch.trySendBatch(items);
      assert(sent <= k && sent <= 5, `sent ${sent} of ${k}`);
      next += sent;
      const got = texts(ch, 1 + (round % 3));
      assert(got.length <= 1 + (round % 3), `max respected: ${got.length}`);
      for (const g of got) assertEquals(g, `m${want++}`);
    }
    for (const g of texts(ch)) assertEquals(g, `m${want++}`);
    assertEquals(want, next);
    assertEquals(ch.available, 5);
    assertEquals(ch.size, 0);
    ch.unlink();
  });
}

test("trySendBatch sends only what fits; sendBatch blocks for the rest; recvBatch returns once something arrived", () => {
  using ch = fresh(3, 8);
  assertEquals(ch.trySendBatch(["a", "b", "c", "d"]), 3);
  assertEquals(ch.trySendBatch(["e"]), 0);
  assertEquals(texts(ch, 2), ["a", "b"]);
  ch.sendBatch(["d", "e"], { timeout: 1000 });
  const got: string[] = [];
  assertEquals(ch.recvBatch((b, n) => got.push(dec.decode(b.subarray(0, n))), { timeout: 1000 }), 3);
  assertEquals(got, ["c", "d", "e"]);
  assertCode(() => ch.recvBatch(() => {}, { timeout: 20 }), "ETIMEDOUT");
  assertCode(() => ch.sendBatch(["1", "2", "3", "4"], { timeout: 20 }), "ETIMEDOUT");
  assertEquals(ch.size, 3);
  assertThrows(() => ch.tryRecvBatch(() => {}, 0), RangeError);
  ch.unlink();
});

test("a batch receiver that throws keeps the rest of the burst for the next receive", () => {
  using ch = fresh(4, 8);
  ch.trySendBatch(["1", "2", "3"]);
  let calls = 0;
  assertThrows(() =>
    ch.tryRecvBatch(() => {
      if (++calls === 2) throw new Error("boom");
    })
  );
  assertEquals(texts(ch), ["3"]);
  assertEquals(ch.available, 4);
  ch.unlink();
});

test("sendBatchAsync and recvBatchAsync move messages without blocking the event loop", async () => {
  using ch = fresh(2, 8);
  const p = ch.sendBatchAsync(["x", "y", "z"], { timeout: 5000 });
  const got: string[] = [];
  while (got.length < 3) {
    await ch.recvBatchAsync((b, n) => got.push(dec.decode(b.subarray(0, n))), { timeout: 5000 });
  }
  await p;
  assertEquals(got, ["x", "y", "z"]);
  ch.unlink();
});

test("strings are encoded straight into the slot: non-ASCII fits exactly, too long throws RangeError and sends nothing", () => {
  using ch = fresh(2, 8);
  const s = "é✓€"; // 2 + 3 + 3 = 8 bytes in 3 UTF-16 units
  assert(ch.trySend(s));
  using m = ch.recv();
  assertEquals(m.bytes.length, 8);
  assertEquals(m.text(), s);
  assertThrows(() => ch.send("✓✓✓"), RangeError); // 9 bytes in 3 units: found by encodeInto
  assertThrows(() => ch.trySend("123456789"), RangeError); // 9 units: refused before taking a slot
  assertThrows(() => ch.send("😀😀😀"), RangeError); // surrogate pairs, 12 bytes
  assertEquals(ch.size, 0, "nothing was sent");
  assertEquals(ch.available, 1, "every slot taken by a refused send came back");
  ch.send("ü!");
  using j = ch.recv();
  assertEquals(j.text(), "ü!");
  ch.unlink();
  using b = fresh(4, 8);
  assertThrows(() => b.trySendBatch(["ok", "✓✓✓", "ok"]), RangeError);
  assertEquals(b.size, 0, "none of the batch was sent");
  assertEquals(b.available, 4);
  b.unlink();
});

test("TextDecoder reads the shared view of a message (text and json) on this runtime", () => {
  using ch = fresh(2, 256);
  ch.send(JSON.stringify({ s: "日本語", n: [1, 2, 3] }));
  using m = ch.recv();
  assertEquals(m.json(), { s: "日本語", n: [1, 2, 3] });
  assertEquals(dec.decode(m.bytes), m.text());
  ch.unlink();
});

test('fast mode reuses one Message per slot; detach: "message" makes one per message', () => {
  using fast = fresh(1, 16);
  fast.send("a");
  const m1 = fast.recv();
  m1.release();
  fast.send("b");
  const m2 = fast.recv();
  assert(m1 === m2, "the slot's Message object is reused");
  assertEquals(m2.text(), "b");
  m2.release();
  fast.unlink();
  using strict = Channel.create(uniqueName("chb"), { slots: 1, slotSize: 16, detach: "message" });
  strict.send("a");
  const s1 = strict.recv();
  s1.release();
  strict.send("b");
  const s2 = strict.recv();
  assert(s1 !== s2);
  assertEquals(s1.bytes.length, 0);
  s2.release();
  strict.unlink();
});

test("spsc, recvRun 32: a single receive claims a run of ready messages; every receive method hands them out in order; size counts the run; close() gives its slots back", () => {
  const name = uniqueName("chrun");
  using tx = Channel.create(name, { slots: 64, slotSize: 16, mode: "spsc" });
  using rx = Channel.open(name, { recvRun: 32 });
  for (let i = 0; i < 40; i++) tx.send(`m${i}`);
  const m0 = rx.tryRecv()!;
  assertEquals(m0.text(), "m0");
  // The run took 32 (m0..m31): m0 handed out, 31 claimed and pending, 8 still in the ring.
  assertEquals(tx.size, 8, "the sender sees what is left in the ring");
  assertEquals(rx.size, 39, "the receiver counts its pending run too");
  assertEquals(tx.available, 64 - 40, "a run's slots are held, not free");
  m0.release();
  assertEquals(tx.available, 64 - 39);
  const m1 = rx.recv({ timeout: 1000 });
  assertEquals(m1.text(), "m1");
  m1.release();
  const buf = new Uint8Array(16);
  const n = rx.tryRecvInto(buf);
  assertEquals(dec.decode(buf.subarray(0, n)), "m2");
  assertEquals(texts(rx, 3), ["m3", "m4", "m5"]);
  const rest: string[] = [];
  for (let m = rx.tryRecv(); m; m = rx.tryRecv()) {
    rest.push(m.text());
    m.release();
  }
  assertEquals(rest, Array.from({ length: 34 }, (_, k) => `m${k + 6}`));
  assertEquals(tx.available, 64);
  // A run still pending when the receiver closes: close() frees every slot of it.
  for (let i = 0; i < 5; i++) tx.send(`n${i}`);
  const n0 = rx.tryRecv()!;
  assertEquals(n0.text(), "n0");
  assertEquals(tx.available, 64 - 5);
  rx.close();
  assertEquals(tx.available, 64, "close() released the handed-out message and the 4 pending ones");
  assertEquals(n0.bytes.length, 0);
  tx.unlink();
});

test("spsc, default recvRun (1): a receive claims one message, the rest stay queued in the ring; recvRun is checked", () => {
  const name = uniqueName("chrun");
  using tx = Channel.create(name, { slots: 8, slotSize: 16, mode: "spsc" });
  using rx = Channel.open(name);
  for (let i = 0; i < 5; i++) tx.send(`m${i}`);
  const m0 = rx.tryRecv()!;
  assertEquals(m0.text(), "m0");
  assertEquals(tx.size, 4, "four still in the ring");
  assertEquals(rx.size, 4);
  rx.close();
  assertEquals(tx.available, 4, "close() freed the one handed-out message; four are still queued");
  using rx2 = Channel.open(name);
  assertEquals(texts(rx2), ["m1", "m2", "m3", "m4"]);
  for (const bad of [0, 257, 1.5, "8", -1]) {
    assertThrows(() => Channel.open(name, { recvRun: bad as number }), RangeError, "recvRun");
  }
  tx.unlink();
});

test("mpmc: a single receive claims one message, so another receiver can take the next", () => {
  const name = uniqueName("chrun");
  using a = Channel.create(name, { slots: 8, slotSize: 16 });
  using b = Channel.open(name);
  for (let i = 0; i < 3; i++) a.send(`m${i}`);
  const m0 = a.tryRecv()!;
  const m1 = b.tryRecv()!;
  assertEquals([m0.text(), m1.text()], ["m0", "m1"]);
  assertEquals(a.size, 1);
  m0.release();
  m1.release();
  assertEquals(texts(b), ["m2"]);
  a.unlink();
});

test('spsc, detach: "message": messages of a receive run each get a window of their own, detached on release', () => {
  using ch = Channel.create(uniqueName("chrun"), {
    slots: 8,
    slotSize: 16,
    mode: "spsc",
    detach: "message",
    recvRun: 32,
  });
  for (let i = 0; i < 3; i++) ch.send(`s${i}`);
  const s0 = ch.recv();
  const kept = s0.bytes;
  assertEquals(s0.text(), "s0");
  s0.release();
  assertEquals(s0.bytes.length, 0);
  if (RUNTIME !== "node") assertEquals(kept.length, 0, "the released message's window is detached");
  const s1 = ch.recv();
  const s2 = ch.recv();
  assert(s1 !== s2);
  assertEquals([s1.text(), s2.text()], ["s1", "s2"]);
  assertEquals(ch.available, 6);
  s1.release();
  s2.release();
  assertEquals(ch.available, 8);
  ch.unlink();
});

function ringOffset(seg: SharedMemory): number {
  return Number(new DataView(seg.buffer).getBigUint64(CHANNEL.readyOffset, true));
}

test("an index the ready ring holds twice is refused with EBADHDR (one block, one live Message); close() detaches the kept view", async () => {
  const name = uniqueName("chdup");
  const ch = Channel.create(name, { slots: 4, slotSize: 64, mode: "spsc" });
  using seg = SharedMemory.open(name);
  ch.send("only once");
  // Corrupt the spsc ready ring: position 1 holds the same block index as position 0.
  const r = ringOffset(seg);
  const ctl = new Uint32Array(seg.buffer, r, 384 / 4);
  const dense = new Uint32Array(seg.buffer, r + RING.slots, 4);
  const tail = Atomics.load(ctl, RING.tail / 4);
  dense[tail & 3] = dense[(tail - 1) & 3];
  Atomics.store(ctl, RING.tail / 4, tail + 1);
  const m = ch.recv();
  const kept = m.bytes;
  assertEquals(m.text(), "only once");
  assertCode(() => ch.tryRecv(), "EBADHDR");
  assertEquals(m.text(), "only once", "the first Message is untouched");
  ch.close();
  assertEquals(m.bytes.length, 0);
  if (RUNTIME !== "node") assertEquals(kept.length, 0, "the kept view is detached");
  // A child does the same and reads its kept view after close(): no crash.
  const out = await runScript(RUNTIME, "tests/fixtures/channel_dup_child.ts", { args: [uniqueName("chdupc")] });
  // Node 20 cannot detach external buffers: there the kept view keeps its length (no crash either).
  assert((RUNTIME === "node" ? /kept view length \d+|threw/ : /kept view length 0|threw/).test(out.stdout), out.stdout);
  seg.unlink();
});

test("corrupt state words make trySend, send and sendAsync return, time out or throw EBADHDR, and release() of a clobbered word throw EBADHDR", async () => {
  const name = uniqueName("chbad");
  using ch = Channel.create(name, { slots: 2, slotSize: 16 });
  using seg = SharedMemory.open(name);
  const table = Number(new DataView(seg.buffer).getBigUint64(CHANNEL.tableOffset, true));
  const st = new Int32Array(seg.buffer, table, 4);
  // Both state words hold an impossible value (phase 0 with bits set): nothing is free.
  Atomics.store(st, 1, 0x123);
  Atomics.store(st, 3, 0x456);
  // reclaim() frees malformed words; trySend reclaims them too (at most every 250 ms).
  ch.trySend("a");
  ch.reclaim();
  assertEquals(ch.available + ch.size, 2, "both malformed words were freed");
  ch.send("b", { timeout: 300 });
  const m = ch.tryRecv()!;
  // Someone overwrites the HELD word: release() throws EBADHDR instead of freeing a block it does not hold.
  for (let i = 0; i < 2; i++) if ((Atomics.load(st, 2 * i + 1) >>> 30) === 2) Atomics.store(st, 2 * i + 1, 0x7fffffff);
  assertCode(() => m.release(), "EBADHDR");
  // A full channel with a corrupt ring: send({timeout}) and sendAsync({timeout}) time out.
  for (let i = 0; i < 2; i++) Atomics.store(st, 2 * i + 1, (1 << 30) | 0x7ffff0); // LOANED by entry 0xf0: malformed
  Atomics.store(st, 1, (2 << 30) | 0x100); // HELD by a live-looking entry 0 tenure that is not ours
  const started = Date.now();
  try {
    ch.send("c", { timeout: 200 });
  } catch (e) {
    assert(["ETIMEDOUT", "EBADHDR"].includes((e as { code: string }).code), String(e));
  }
  try {
    await ch.sendAsync("d", { timeout: 200 });
  } catch (e) {
    assert(["ETIMEDOUT", "EBADHDR"].includes((e as { code: string }).code), String(e));
  }
  assert(Date.now() - started < 30_000, "bounded");
  seg.unlink();
});

const OTHER: Record<Runtime, [Runtime, Runtime]> = {
  deno: ["bun", "node"],
  bun: ["node", "deno"],
  node: ["deno", "bun"],
};

for (const mode of ["spsc", "mpmc"] as const) {
  test(`${mode}: sendBatch in one runtime, recvBatch in the others and back, every message checked`, async () => {
    const [x, y] = OTHER[RUNTIME];
    const pairs: [Runtime, Runtime][] = [[RUNTIME, x], [RUNTIME, y], [x, RUNTIME], [y, x]];
    for (const [from, to] of pairs) {
      using ch = Channel.create(uniqueName("chbx"), { slots: 8, slotSize: 512, mode });
      const h = JSON.stringify(ch.handle());
      const [s, r] = await Promise.all([
        runScript(from, "tests/fixtures/channel_batch_peer.ts", { args: [h, "send", "400"] }),
        runScript(to, "tests/fixtures/channel_batch_peer.ts", { args: [h, "recv", "400"] }),
      ]);
      assertEquals(s.stdout.trim(), "sent 400", `${from} -> ${to}`);
      assertEquals(r.stdout.trim(), "received 400", `${from} -> ${to}`);
      assertEquals(ch.available, 8);
      ch.unlink();
    }
  });
}

test("sendValue and Message.value carry Map, Set and Date through node:v8 serialize", () => {
  using ch = fresh(3, 256);
  ch.sendValue({ when: new Date(5), tags: new Set([1, 2]), m: new Map([["k", [1, 2]]]) });
  assert(ch.trySendValue(42));
  using m = ch.recv();
  const v = m.value() as { when: Date; tags: Set<number>; m: Map<string, number[]> };
  assert(v.when instanceof Date && v.when.getTime() === 5);
  assert(v.tags.has(2) && v.m.get("k")![1] === 2);
  using n = ch.recv();
  assertEquals(n.value(), 42);
  assertThrows(() => ch.sendValue("x".repeat(300)), RangeError);
  ch.send("plain text", { timeout: 1000 });
  using t = ch.recv();
  assertCode(() => t.value(), "EINVAL");
  ch.unlink();
});

test("Message.value of damaged structured values (a hostile sender's bytes) is ShmError EINVAL, never another error", () => {
  // Before 2026-12-02 the engine's own errors came through: Error, TypeError or SyntaxError, each
  // runtime its own ("ReadRawBytes() failed", "t is not a constructor", an invalid RegExp source).
  using ch = Channel.create(null, { slots: 2, slotSize: 4096 });
  ch.unlink(); // a null name is a random one in /dev/shm; this process keeps it mapped
  const samples: unknown[] = [
    { a: 1, b: "x", c: [1, 2, 3], d: { e: null } },
    [1.5, "héllo", true, false, null, undefined],
    new Map([[1, 2]]),
    new Set(["a"]),
    new Uint8Array([1, 2, 3]),
    new Date(0),
    12345678901234567890n,
    /re/g,
    new Float64Array(4),
    // deno-lint-ignore no-sparse-arrays
    [, 1, , 2],
  ];
  const blobs = samples.map((v) => {
    ch.sendValue(v);
    using m = ch.recv();
    return m.bytes.slice();
  });
  const next = prng(0x2545f491);
  const rnd = (): number => Math.floor(next() * 2 ** 32);
  let ok = 0;
  const other: string[] = [];
  for (let c = 0; c < 3000; c++) {
    const base = blobs[rnd() % blobs.length];
    let b = base.slice();
    if (rnd() % 3 === 0) b = b.subarray(0, 1 + (rnd() % b.length));
    else for (let j = 1 + (rnd() % 4); j > 0; j--) b[1 + (rnd() % (b.length - 1))] = rnd() & 0xff;
    ch.send(b);
    using m = ch.recv();
    try {
      m.value();
      ok++;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== "EINVAL" && other.length < 10) other.push(`${(e as Error).name} ${code}: ${(e as Error).message}`);
    }
  }
  assertEquals(other, [], "every failure is ShmError EINVAL");
  assert(ok > 0 && ok < 3000, `some damaged values still decode, most do not (${ok} of 3000)`);
});

test("a structured value crosses between Deno and Node; Bun's format gives ENOTSUP there (and V8's on Bun)", async () => {
  const v8Family = (rt: Runtime) => rt !== "bun";
  for (const [from, to] of [[RUNTIME, OTHER[RUNTIME][0]], [OTHER[RUNTIME][1], RUNTIME]] as [Runtime, Runtime][]) {
    using ch = Channel.create(uniqueName("chv"), { slots: 2, slotSize: 512 });
    const h = JSON.stringify(ch.handle());
    await runScript(from, "tests/fixtures/channel_value_peer.ts", { args: [h, "send"] });
    const r = await runScript(to, "tests/fixtures/channel_value_peer.ts", { args: [h, "recv"] });
    if (v8Family(from) === v8Family(to)) assertEquals(r.stdout.trim(), "value ok", `${from} -> ${to}`);
    else assert(/^ENOTSUP .*format/.test(r.stdout.trim()), `${from} -> ${to}: ${r.stdout}`);
    ch.unlink();
  }
});
