// Channel mode "spsc-ordered" (docs/layout/channel.md, "spsc-ordered (mode 2)"): blocks in ring
// order, out-of-order release, loans published in order, discarded loans as skip records, counters
// across 2^32, blocking and async waits, hostile ring values and lengths, a killed receiver's
// unreleased messages delivered again, a killed sender's unpublished ones never, and messages
// between runtimes.
import { assert, assertCode, assertEquals, assertRejectsCode } from "./assert.ts";
import { runScript, RUNTIME, type Runtime, test, uniqueName } from "./harness.ts";
import { killed, startUntil } from "./fixtures/spawn_until.ts";
import { Channel, SharedMemory } from "../mod.ts";
import { CHANNEL } from "../src/channel.ts";
import { RING } from "../src/ring.ts";
import { textOf } from "./fixtures/channel_common.ts";

const OTHER: Record<Runtime, [Runtime, Runtime]> = {
  deno: ["bun", "node"],
  bun: ["node", "deno"],
  node: ["deno", "bun"],
};
const dec = new TextDecoder();

function ordered(slots = 4, slotSize = 64): Channel {
  return Channel.create(uniqueName("cho"), { slots, slotSize, mode: "spsc-ordered" });
}

/** Texts of every message queued now, released one by one. */
function drainTexts(ch: Channel): string[] {
  const got: string[] = [];
  for (let m = ch.tryRecv(); m; m = ch.tryRecv()) {
    got.push(m.text());
    m.release();
  }
  return got;
}

/** The ready ring's words of a channel at `off` in `seg` (tail, head, values). */
function ringOf(seg: SharedMemory, off: number): { ctl: Int32Array; values: Uint32Array; table: Uint32Array } {
  const dv = new DataView(seg.buffer, off);
  const ready = off + Number(dv.getBigUint64(CHANNEL.readyOffset, true));
  const table = off + Number(dv.getBigUint64(CHANNEL.tableOffset, true));
  const slots = dv.getUint32(CHANNEL.slots, true);
  const n = new DataView(seg.buffer, ready).getUint32(RING.slotCount, true);
  return {
    ctl: new Int32Array(seg.buffer, ready, 96),
    values: new Uint32Array(seg.buffer, ready + 384, n),
    table: new Uint32Array(seg.buffer, table, 2 * slots),
  };
}

test("spsc-ordered: messages arrive in order across many laps; mode, open by name, text/JSON/bytes", () => {
  using a = ordered(5, 32);
  using b = Channel.open("/" + a.handle().name);
  assertEquals(a.mode, "spsc-ordered");
  assertEquals(b.mode, "spsc-ordered");
  let next = 0;
  for (let i = 0; i < 5000; i++) {
    a.send(String(i));
    if (i % 4 === 3) {
      for (const t of drainTexts(b)) assertEquals(t, String(next++));
    }
  }
  for (const t of drainTexts(b)) assertEquals(t, String(next++));
  assertEquals(next, 5000);
  a.send(JSON.stringify({ n: 1 }));
  a.send(new Uint8Array([0, 255]));
  a.send("");
  using m1 = b.recv();
  assertEquals(m1.json(), { n: 1 });
  using m2 = b.recv();
  assertEquals(Array.from(m2.bytes), [0, 255]);
  using m3 = b.recv();
  assertEquals(m3.bytes.length, 0);
  a.unlink();
});

test("spsc-ordered: a held message holds back the blocks after it; release in any order", () => {
  using ch = ordered(4, 16);
  for (let i = 0; i < 4; i++) assert(ch.trySend(`m${i}`));
  assertEquals(ch.trySend("x"), false);
  assertEquals(ch.available, 0);
  assertEquals(ch.size, 4);
  const m0 = ch.tryRecv()!, m1 = ch.tryRecv()!, m2 = ch.tryRecv()!;
  assertEquals([m0.text(), m1.text(), m2.text()], ["m0", "m1", "m2"]);
  assertEquals(ch.size, 1);
  m2.release();
  m1.release();
  assertEquals(ch.trySend("x"), false, "m0 still held: nothing after it is reused");
  m0.release();
  assertEquals(ch.available, 3);
  assert(ch.trySend("a") && ch.trySend("b") && ch.trySend("c"));
  assertEquals(ch.trySend("d"), false);
  assertEquals(drainTexts(ch), ["m3", "a", "b", "c"]);
  assertEquals(ch.available, 4);
  ch.unlink();
});

test("spsc-ordered: loans go out in the order they were taken; a discarded one is skipped", () => {
  using ch = ordered(6, 8);
  const l1 = ch.loan(), l2 = ch.loan(), l3 = ch.loan();
  l2.bytes[0] = 2;
  l2.send(1);
  assertEquals(ch.tryRecv(), undefined, "l2 waits for l1");
  l1.discard(); // not the last reserved: a skip record
  const m2 = ch.tryRecv()!;
  assertEquals(Array.from(m2.bytes), [2]);
  m2.release();
  assertEquals(ch.tryRecv(), undefined);
  l3.bytes.set([3, 3]);
  l3.send(2);
  const got: number[][] = [];
  ch.tryRecvBatch((b, n) => got.push(Array.from(b.subarray(0, n))));
  assertEquals(got, [[3, 3]]);
  // The last reserved loan discarded is simply undone: no skip record, the next send takes its block.
  const l4 = ch.loan();
  l4.discard();
  ch.send("after");
  assertEquals(drainTexts(ch), ["after"]);
  // A string too long for the slot gives its block back; nothing is sent.
  let threw = false;
  try {
    ch.send("123456789");
  } catch (e) {
    threw = e instanceof RangeError;
  }
  assert(threw);
  assertEquals(ch.size, 0);
  assertEquals(ch.available, 6);
  ch.unlink();
});

test("spsc-ordered: close() publishes sent loans behind a discarded one and frees held messages", () => {
  const name = uniqueName("cho");
  const tx = Channel.create(name, { slots: 4, slotSize: 8, mode: "spsc-ordered" });
  const rx = Channel.open(name);
  const l1 = tx.loan();
  const l2 = tx.loan();
  l2.bytes[0] = 7;
  l2.send(1);
  tx.close(); // l1 is discarded: l2 goes out
  assertEquals(l1.bytes.length, 0);
  const m = rx.tryRecv()!;
  assertEquals(Array.from(m.bytes), [7]);
  rx.close(); // releases m
  using again = Channel.open(name);
  assertEquals(again.available, 4);
  assertEquals(again.tryRecv(), undefined);
  again.unlink();
});

test("spsc-ordered: batch send and receive; a throwing callback counts its message as delivered", () => {
  using ch = ordered(8, 16);
  assertEquals(ch.trySendBatch(["a", "b", "c", "d", "e"]), 5);
  assertEquals(ch.trySendBatch(["f", "g", "h", "i"]), 3);
  const seen: string[] = [];
  let threw = false;
  try {
    ch.tryRecvBatch((b, n) => {
      seen.push(dec.decode(b.subarray(0, n)));
      if (seen.length === 3) throw new Error("boom");
    });
  } catch (e) {
    threw = (e as Error).message === "boom";
  }
  assert(threw);
  assertEquals(seen, ["a", "b", "c"]);
  assertEquals(ch.recvBatch((b, n) => seen.push(dec.decode(b.subarray(0, n))), { max: 2, timeout: 100 }), 2);
  assertEquals(drainTexts(ch), ["f", "g", "h"]);
  assertEquals(seen, ["a", "b", "c", "d", "e"]);
  assertEquals(ch.available, 8);
  // A batch that does not fit the slot: nothing of it is sent.
  let threwRange = false;
  try {
    ch.trySendBatch(["ok", "x".repeat(17)]);
  } catch (e) {
    threwRange = e instanceof RangeError;
  }
  assert(threwRange);
  assertEquals(ch.size, 0);
  ch.unlink();
});

test("spsc-ordered: counters and blocks across 2^32 (positions started near the wrap)", () => {
  for (const slots of [3, 4, 7]) {
    using seg = SharedMemory.anonymous(Channel.byteLength({ slots, slotSize: 16, mode: "spsc-ordered" }));
    Channel.init(seg, 0, { slots, slotSize: 16, mode: "spsc-ordered" }).close();
    const { ctl, values } = ringOf(seg, 0);
    const start = 2 ** 32 - 5;
    Atomics.store(ctl, RING.tail / 4, start | 0);
    Atomics.store(ctl, RING.head / 4, start | 0);
    values[(start - 1) & (values.length - 1)] = slots - 1; // the "last block sent": block 0 is next
    using tx = Channel.at(seg, 0);
    using rx = Channel.at(seg, 0);
    let next = 0;
    for (let i = 0; i < 40; i++) {
      tx.send(`n${i}`);
      if (i % 3 === 2) {
        const m1 = rx.tryRecv()!, m2 = rx.tryRecv()!;
        assertEquals(m1.text(), `n${next++}`);
        assertEquals(m2.text(), `n${next++}`);
        m2.release(); // out of order across the wrap
        m1.release();
        const m3 = rx.tryRecv()!;
        assertEquals(m3.text(), `n${next++}`);
        m3.release();
      }
    }
    assertEquals(drainTexts(rx), ["n39"]);
    assertEquals((Atomics.load(ctl, RING.tail / 4) - start) >>> 0, 40);
    assertEquals(Atomics.load(ctl, RING.head / 4), Atomics.load(ctl, RING.tail / 4));
  }
});

test("spsc-ordered: send and recv time out; sendAsync, recvAsync and for await wake on the other side", async () => {
  using ch = ordered(2, 16);
  assertCode(() => ch.recv({ timeout: 20 }), "ETIMEDOUT");
  ch.send("a");
  ch.send("b");
  assertCode(() => ch.send("c", { timeout: 20 }), "ETIMEDOUT");
  const pending = ch.sendAsync("c", { timeout: 5000 });
  await new Promise((r) => setTimeout(r, 10));
  ch.recv().release(); // room: the async sender goes
  await pending;
  await assertRejectsCode(ch.sendAsync("d", { timeout: 20 }), "ETIMEDOUT");
  assertEquals(drainTexts(ch), ["b", "c"]);
  const later = ch.recvAsync({ timeout: 5000 });
  setTimeout(() => ch.send("late"), 10);
  using m = await later;
  assertEquals(m.text(), "late");
  m.release();
  setTimeout(() => ch.send("it"), 10);
  for await (const x of ch) {
    assertEquals(x.text(), "it");
    x.release();
    break;
  }
  ch.unlink();
});

test("spsc-ordered: a receiver whose sender is in the same thread (same object or another) never paces", () => {
  // Receive pacing (src/pace.ts) waits for a sender on another core to publish a run. With the
  // sender in the same object that wait can only be lost: send 32 and receive 32 in a loop waited
  // up to 77 µs per refill, 2.7 µs per message, before the object checked.
  using ch = ordered(1024, 64);
  const msg = new Uint8Array(64);
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 32; i++) ch.send(msg);
    for (let i = 0; i < 32; i++) ch.recv({ timeout: 1000 }).release();
  }
  assertEquals(ch._paceWait(), 0);
  // Two objects of one channel in this thread: the receiver finds the producer role held by a Ring
  // object of this thread (pid and token), so it does not pace either.
  ch.unlink();
  using tx = ordered(1024, 64);
  using rx = Channel.open(tx.handle().name!);
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 32; i++) tx.send(msg);
    for (let i = 0; i < 32; i++) rx.recv({ timeout: 1000 }).release();
  }
  assertEquals(rx._paceWait(), 0);
  tx.unlink();
});

test('spsc-ordered with { detach: "message" }: views detached per message, order kept', () => {
  const name = uniqueName("cho");
  using tx = Channel.create(name, { slots: 3, slotSize: 16, mode: "spsc-ordered" });
  using rx = Channel.open(name, { detach: "message" });
  tx.send("one");
  tx.send("two");
  const m = rx.recv();
  const view = m.bytes;
  assertEquals(m.text(), "one");
  m.release();
  if (RUNTIME !== "node" || view.length === 0) assertEquals(view.length, 0);
  const got: string[] = [];
  rx.tryRecvBatch((b, n) => got.push(dec.decode(b.subarray(0, n))));
  assertEquals(got, ["two"]);
  tx.unlink();
});

test("spsc-ordered: hostile ring values, duplicate blocks, lengths and counters give EBADHDR, then work goes on", () => {
  using seg = SharedMemory.anonymous(Channel.byteLength({ slots: 4, slotSize: 16, mode: "spsc-ordered" }));
  Channel.init(seg, 0, { slots: 4, slotSize: 16, mode: "spsc-ordered" }).close();
  const { ctl, values, table } = ringOf(seg, 0);
  using tx = Channel.at(seg, 0);
  using rx = Channel.at(seg, 0);
  const mask = values.length - 1;
  // A ring value out of range: that position is dropped.
  tx.send("a");
  values[0] = 99;
  assertCode(() => rx.tryRecv(), "EBADHDR");
  // A length longer than the slot: dropped too.
  tx.send("b");
  table[2 * values[1 & mask]] = 1000;
  assertCode(() => rx.tryRecv(), "EBADHDR");
  assertEquals(rx.tryRecv(), undefined);
  // The same block sent twice while the first is held.
  tx.send("c");
  const held = rx.tryRecv()!;
  assertEquals(held.text(), "c");
  tx.send("d");
  values[3 & mask] = values[2 & mask];
  assertCode(() => rx.tryRecv(), "EBADHDR");
  held.release();
  tx.send("e");
  assertEquals(drainTexts(rx), ["e"]);
  // A tail more than a lap ahead: EBADHDR at once (no loop), for the receiver and a new sender.
  const t = Atomics.load(ctl, RING.tail / 4);
  Atomics.store(ctl, RING.tail / 4, (t + 1000) | 0);
  const t0 = performance.now();
  assertCode(() => rx.tryRecv(), "EBADHDR");
  assertCode(() => rx.recv({ timeout: 200 }), "EBADHDR");
  assertCode(() => Channel.at(seg, 0), "EBADHDR"); // a new object checks the ring's counters at open
  assert(performance.now() - t0 < 150, "no waiting on a corrupt channel");
  Atomics.store(ctl, RING.tail / 4, t);
  assertEquals(rx.tryRecv(), undefined);
});

test("spsc-ordered: Channel.reclaim() has nothing to do; roles are EBUSY for a second sender or receiver", () => {
  const name = uniqueName("cho");
  using a = Channel.create(name, { slots: 4, slotSize: 16, mode: "spsc-ordered" });
  using b = Channel.open(name);
  a.send("x");
  assertEquals(a.reclaim(), 0);
  assertCode(() => b.send("y"), "EBUSY");
  using m = a.recv();
  assertCode(() => b.tryRecv(), "EBUSY");
  m.release();
  a.unlink();
});

// Across processes

test("spsc-ordered: a sender blocked on a full channel goes on when another process frees one block", async () => {
  // A sender waiting for room resumes at once when a run of blocks is free (src/channel.ts O_RESUME),
  // else after its short spin, through the park: one freed block must do, whatever the runtime.
  const { binaryMessage, checkMessage } = await import("./fixtures/channel_common.ts");
  for (const other of OTHER[RUNTIME]) {
    using ch = Channel.create(uniqueName("cho"), { slots: 64, slotSize: 512, mode: "spsc-ordered" });
    const id = (k: number): number => 3 * k + 2; // binary messages (kindOf): send(Uint8Array), the fused path
    for (let k = 0; k < 64; k++) ch.send(binaryMessage(id(k), 512));
    assertCode(() => ch.send(binaryMessage(id(64), 512), { timeout: 5 }), "ETIMEDOUT");
    // the child takes exactly one message (the first), checked
    const h = JSON.stringify(ch.handle());
    const child = runScript(other, "tests/fixtures/channel_recv.ts", { args: [h, "1", String(id(0))] });
    ch.send(binaryMessage(id(64), 512), { timeout: 30_000 }); // blocks until the child frees one block
    assertEquals((await child).stdout.trim(), "received 1", other);
    for (let k = 1; k <= 64; k++) {
      using m = ch.tryRecv()!;
      assert(m !== undefined, `message ${k} missing`);
      assertEquals(checkMessage(id(k), m.bytes, 512), "", `${other}: message ${k}`);
    }
    assertEquals(ch.tryRecv(), undefined);
    ch.unlink();
  }
});

test("spsc-ordered carries text, JSON and checksummed binary between runtimes (backpressure included)", async () => {
  const [x, y] = OTHER[RUNTIME];
  for (const [from, to] of [[x, y], [y, RUNTIME]] as [Runtime, Runtime][]) {
    using ch = Channel.create(uniqueName("cho"), { slots: 8, slotSize: 512, mode: "spsc-ordered" });
    const h = JSON.stringify(ch.handle());
    if (to === RUNTIME) {
      const sender = runScript(from, "tests/fixtures/channel_send.ts", { args: [h, "300"] });
      const { checkMessage } = await import("./fixtures/channel_common.ts");
      for (let i = 0; i < 300; i++) {
        using m = await ch.recvAsync({ timeout: 60_000 });
        assertEquals(checkMessage(i, m.bytes, 512), "", `${from} -> ${to}`);
      }
      assertEquals((await sender).stdout.trim(), "sent 300");
    } else {
      const [s, r] = await Promise.all([
        runScript(from, "tests/fixtures/channel_send.ts", { args: [h, "300"] }),
        runScript(to, "tests/fixtures/channel_recv.ts", { args: [h, "300"] }),
      ]);
      assertEquals(s.stdout.trim(), "sent 300", `${from} -> ${to}`);
      assertEquals(r.stdout.trim(), "received 300", `${from} -> ${to}`);
    }
    assertEquals(ch.available, 8);
    ch.unlink();
  }
});

test("spsc-ordered: a SIGKILLed receiver's unreleased messages go to the next receiver; a killed loan-holder's loans never appear", async () => {
  for (const rt of OTHER[RUNTIME]) {
    using ch = ordered(4, 64);
    for (let i = 0; i < 4; i++) ch.send(textOf(i).slice(0, 60));
    const child = await startUntil(rt, "tests/fixtures/channel_hold.ts", [
      JSON.stringify(ch.handle()),
      "recv",
      "3",
    ], "held 3");
    assertCode(() => ch.tryRecv(), "EBUSY"); // the live receiver keeps its role
    await killed(child);
    // At least once: the 3 it held and did not release come again, then the 4th.
    assertEquals(drainTexts(ch), [0, 1, 2, 3].map((i) => textOf(i).slice(0, 60)));
    assertEquals(ch.available, 4);
    ch.send("x");
    const name = ch.handle().name!;
    ch.close();
    // A sender killed holding loans (sent nothing): the next sender goes on after what was published.
    using tx = Channel.open(name);
    const loaner = await startUntil(rt, "tests/fixtures/channel_hold.ts", [
      JSON.stringify(tx.handle()),
      "loan",
      "2",
    ], "held 2");
    await killed(loaner);
    tx.send("y");
    assertEquals(drainTexts(tx), ["x", "y"]);
    assertEquals(tx.available, 4);
    tx.unlink();
  }
});

test(
  "spsc-ordered: senders killed at every fault point publish whole messages or nothing; nothing is lost",
  async () => {
    const { channelCrashCampaign } = await import("./fixtures/channel_crash_driver.ts");
    const seed = Math.floor(Math.random() * 2 ** 31);
    const r = await channelCrashCampaign({ kills: 40, seed, mode: "spsc-ordered" });
    const summary =
      `seed ${seed}: ${r.kills} kills, ${r.survivors} survivors, ${r.received} drained, ${r.duplicates} ` +
      `delivered again, by point ${JSON.stringify(r.killsByPoint)}`;
    console.log(summary);
    assertEquals(r.problems, [], summary);
    assert(r.kills >= 40, summary);
    assertEquals(r.available, r.slots);
  },
  { timeout: 170_000 },
);
