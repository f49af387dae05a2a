import { assert, assertCode, assertEquals, assertRejectsCode, assertThrows } from "./assert.ts";
import { run, runScript, RUNTIME, type Runtime, runtimeCommand, test, uniqueName } from "./harness.ts";
import { killed, startUntil } from "./fixtures/spawn_until.ts";
import { Channel, type ChannelHandle, SharedMemory, ShmError } from "../mod.ts";
import { binaryMessage, checkMessage, jsonOf, textOf } from "./fixtures/channel_common.ts";

const OTHER: Record<Runtime, [Runtime, Runtime]> = {
  deno: ["bun", "node"],
  bun: ["node", "deno"],
  node: ["deno", "bun"],
};

function fresh(slots = 4, slotSize = 64, mode: "spsc" | "mpmc" = "mpmc"): Channel {
  return Channel.create(uniqueName("ch"), { slots, slotSize, mode });
}

test("Channel.create then open: strings, bytes and JSON arrive intact and in order", () => {
  using a = fresh(8, 256);
  using b = Channel.open("/" + a.handle().name);
  a.send("héllo ✓");
  a.send(new Uint8Array([0, 1, 2, 255]));
  a.send(JSON.stringify({ n: 42, s: "x" }));
  a.send("");
  assertEquals(b.size, 4);
  using m1 = b.recv();
  assertEquals(m1.text(), "héllo ✓");
  using m2 = b.recv();
  assertEquals(Array.from(m2.bytes), [0, 1, 2, 255]);
  using m3 = b.recv();
  assertEquals(m3.json(), { n: 42, s: "x" });
  using m4 = b.recv();
  assertEquals(m4.bytes.length, 0);
  assertEquals(b.slots, 8);
  assertEquals(b.slotSize, 256);
  assertEquals(b.mode, "mpmc");
  a.unlink();
});

test("Channel.trySend returns false when every slot is in use and tryRecv undefined when empty", () => {
  using ch = fresh(3, 16);
  assertEquals(ch.tryRecv(), undefined);
  assert(ch.trySend("a"));
  assert(ch.trySend("b"));
  const loan = ch.tryLoan()!;
  assert(loan !== undefined);
  assertEquals(ch.trySend("c"), false);
  assertEquals(ch.tryLoan(), undefined);
  assertEquals(ch.available, 0);
  const m = ch.tryRecv()!;
  assertEquals(m.text(), "a");
  assertEquals(ch.trySend("c"), false, "a held message still occupies its slot");
  m.release();
  assert(ch.trySend("c"));
  loan.discard();
  assertEquals(ch.available, 1);
  ch.unlink();
});

test("Channel.send times out with ETIMEDOUT on a full channel and recv on an empty one", () => {
  using ch = fresh(1, 16);
  assertCode(() => ch.recv({ timeout: 30 }), "ETIMEDOUT", /Cannot receive on channel/);
  ch.send("x");
  assertCode(() => ch.send("y", { timeout: 30 }), "ETIMEDOUT", /Cannot send on channel/);
  assertCode(() => ch.loan({ timeout: 0 }), "ETIMEDOUT");
  ch.recv().release();
  ch.unlink();
});

test("Channel.sendAsync and recvAsync time out, abort with signal.reason, and resolve when unblocked", async () => {
  using ch = fresh(1, 16);
  await assertRejectsCode(ch.recvAsync({ timeout: 30 }), "ETIMEDOUT");
  const ac = new AbortController();
  const pending = ch.recvAsync({ signal: ac.signal });
  const reason = new Error("stop");
  ac.abort(reason);
  let got: unknown;
  try {
    await pending;
  } catch (e) {
    got = e;
  }
  assertEquals(got, reason);
  const later = ch.recvAsync({ timeout: 60_000 });
  setTimeout(() => ch.send("late"), 20);
  const m = await later;
  assertEquals(m.text(), "late");
  m.release();
  ch.send("fill", { timeout: 10_000 });
  await assertRejectsCode(ch.sendAsync("more", { timeout: 30 }), "ETIMEDOUT");
  const ac2 = new AbortController();
  const blocked = ch.loanAsync({ signal: ac2.signal });
  ac2.abort(new Error("no loan"));
  await blocked.then(
    () => assert(false, "loanAsync should have rejected"),
    (e) => assertEquals((e as Error).message, "no loan"),
  );
  const sending = ch.sendAsync("after", { timeout: 60_000 });
  setTimeout(() => ch.recv().release(), 20);
  await sending;
  assertEquals(ch.recv().text(), "after");
  ch.unlink();
});

test("a message longer than slotSize throws RangeError naming both sizes", () => {
  using ch = fresh(2, 8);
  assertThrows(
    () => ch.send(new Uint8Array(9)),
    (e: Error) => e instanceof RangeError && /9 bytes/.test(e.message) && /8 bytes/.test(e.message),
  );
  assertThrows(
    () => ch.trySend("ééééé"),
    (e: Error) => e instanceof RangeError && /10 bytes/.test(e.message) && /8 bytes/.test(e.message),
  );
  assertThrows(() => ch.trySend("😀😀x"), (e: Error) => e instanceof RangeError && /9 bytes/.test(e.message));
  assert(ch.trySend("😀😀"), "two 4-byte characters fit 8 bytes exactly");
  const emoji = ch.recv();
  assertEquals(emoji.text(), "😀😀");
  emoji.release();
  assert(ch.trySend("12345678"), "exactly slotSize fits");
  const loan = ch.loan();
  assertThrows(
    () => loan.send(9),
    (e: Error) => e instanceof RangeError && /9 bytes/.test(e.message) && /8 bytes/.test(e.message),
  );
  assertThrows(() => loan.send(-1), RangeError);
  loan.send(8); // still usable after the refused length
  assertEquals(ch.available, 0);
  assertEquals(ch.size, 2);
  ch.unlink();
});

test('with detach: "message" a Message after release() reads an empty view, never the slot\'s next message', () => {
  using ch = Channel.create(uniqueName("ch"), { slots: 1, slotSize: 32, detach: "message" });
  ch.send("first message");
  const m = ch.recv();
  const early = m.bytes;
  assertEquals(early.length, 13);
  m.release();
  m.release(); // idempotent
  assertEquals(m.bytes.length, 0);
  assertEquals(m.text(), "");
  ch.send("second message"); // reuses the only slot
  if (RUNTIME !== "node") assertEquals(early.length, 0, "the earlier reference is detached");
  else assert(m.bytes.length === 0, "Node 20: bytes is empty after release (earlier references alias the slot)");
  using m2 = ch.recv();
  assertEquals(m2.text(), "second message");
  assert(m2 !== m, "strict mode makes a Message per message");
  ch.unlink();
});

test("by default a released Message reads empty, a kept view may read the slot's next message, close() detaches it", () => {
  const ch = fresh(1, 32);
  ch.send("first message");
  const m = ch.recv();
  const early = m.bytes;
  assertEquals(early.length, 13);
  m.release();
  m.release(); // idempotent until the slot is received again
  assertEquals(m.bytes.length, 0);
  assertEquals(m.text(), "");
  ch.send("second message"); // reuses the only slot
  // The kept view aliases the slot: it reads (a prefix of) the newer message, never crashes.
  assertEquals(new TextDecoder().decode(early), "second messag");
  const m2 = ch.recv();
  assertEquals(m2.text(), "second message");
  ch.unlink();
  ch.close(); // releases m2 and detaches every view this object handed out
  if (RUNTIME !== "node") {
    assertEquals(early.length, 0, "the kept view is detached by close()");
    assertEquals(m2.bytes.length, 0);
  }
});

test("Channel.loan writes in place; send publishes, discard returns the slot, reuse is refused", async () => {
  using ch = fresh(2, 1024);
  const loan = ch.loan();
  assertEquals(loan.bytes.length, 1024);
  const payload = binaryMessage(2, 1024, loan.bytes);
  loan.send(payload.length);
  assertEquals(loan.bytes.length, 0);
  assertCode(() => loan.send(1), "EINVAL");
  loan.discard(); // no-op after send
  using m = ch.recv();
  assertEquals(checkMessage(2, m.bytes, 1024), "");
  const l2 = await ch.loanAsync();
  l2.discard();
  l2.discard();
  assertEquals(ch.available, 1);
  {
    using l3 = ch.tryLoan()!;
    l3.bytes[0] = 1;
  } // disposed unsent: discarded
  assertEquals(ch.available, 1);
  ch.unlink();
});

test("Channel.close gives back held slots, detaches views and makes later calls throw ECLOSED", () => {
  const name = uniqueName("ch");
  using other = Channel.create(name, { slots: 2, slotSize: 16 });
  const ch = Channel.open(name);
  other.send("a");
  const m = ch.recv();
  const loan = ch.loan();
  const view = m.bytes;
  assertEquals(other.available, 0);
  ch.close();
  ch.close();
  assert(ch.closed);
  assertEquals(other.available, 2, "the closed object's message and loan went back");
  assertEquals(m.bytes.length, 0);
  assertEquals(loan.bytes.length, 0);
  if (RUNTIME !== "node") assertEquals(view.length, 0);
  assertCode(() => ch.send("x"), "ECLOSED");
  assertCode(() => ch.tryRecv(), "ECLOSED");
  assertCode(() => ch.handle(), "ECLOSED");
  m.release(); // harmless after close
  other.unlink();
});

test("Channel.init and at place a channel inside a larger segment; attach reopens it by handle", () => {
  const opts = { slots: 4, slotSize: 100, mode: "spsc" as const };
  using seg = SharedMemory.create(uniqueName("ch"), 4096 + Channel.byteLength(opts));
  const a = Channel.init(seg, 4096, opts);
  const b = Channel.at(seg, 4096);
  a.send("placed");
  assertEquals(b.recv().text(), "placed");
  // spsc: a holds the sending role and b the receiving one until they close.
  assertCode(() => b.send("x"), "EBUSY");
  const h = JSON.parse(JSON.stringify(a.handle())) as ChannelHandle;
  a.close();
  b.close();
  assert(!seg.closed, "a placed channel leaves its segment mapped");
  using c = Channel.attach(h);
  c.send("via handle");
  assertEquals(c.recv().text(), "via handle");
  assertEquals(c.mode, "spsc");
  assertThrows(() => Channel.init(seg, 4096 + 64, opts), RangeError);
  seg.unlink();
});

test("Channel.open rejects a non-channel segment and corrupt headers with EBADHDR", () => {
  using raw = SharedMemory.create(uniqueName("ch"), 65536);
  assertCode(() => Channel.open(raw.name!), "EBADHDR", /no shmkit header/);
  raw.unlink();
  const name = uniqueName("ch");
  using ch = Channel.create(name, { slots: 4, slotSize: 64 });
  using seg = SharedMemory.open(name);
  const dv = new DataView(seg.buffer);
  for (
    const [off, value, why] of [[64, 0, /slot count/], [64, 2 ** 30, /slot count/], [68, 1 << 20, /byteLength/], [
      72,
      7,
      /mode/,
    ], [88, 64, /offsets/]] as const
  ) {
    const old = dv.getUint32(off, true);
    dv.setUint32(off, value, true);
    assertCode(() => Channel.open(name), "EBADHDR", why);
    dv.setUint32(off, old, true);
  }
  dv.setUint16(6, 2, true); // kind: mempool
  assertCode(() => Channel.open(name), "EBADHDR", /not a channel/);
  dv.setUint16(6, 3, true);
  using ok = Channel.open(name);
  assertEquals(ok.slots, 4);
  ch.unlink();
});

test("a corrupt length in the slot table gives EBADHDR on recv and the slot is not lost", () => {
  const name = uniqueName("ch");
  using ch = Channel.create(name, { slots: 2, slotSize: 64 });
  using seg = SharedMemory.open(name);
  ch.send("abc");
  const dv = new DataView(seg.buffer);
  const table = Number(dv.getBigUint64(104, true));
  for (let i = 0; i < 2; i++) if (dv.getUint32(table + 32 * i, true) === 3) dv.setUint32(table + 32 * i, 1 << 30, true);
  assertCode(() => ch.recv(), "EBADHDR", /claims 1073741824 bytes/);
  assertEquals(ch.available, 2);
  ch.unlink();
});

test("Channel.tryRecvInto and recvInto copy a message out and free its slot at once", () => {
  using ch = fresh(1, 32);
  const out = new Uint8Array(32);
  assertEquals(ch.tryRecvInto(out), -1);
  assertThrows(() => ch.tryRecvInto(new Uint8Array(31)), RangeError);
  ch.send("copied out");
  assertEquals(ch.recvInto(out, { timeout: 1000 }), 10);
  assertEquals(new TextDecoder().decode(out.subarray(0, 10)), "copied out");
  assertEquals(ch.available, 1);
  assertCode(() => ch.recvInto(out, { timeout: 20 }), "ETIMEDOUT");
  ch.unlink();
});

test("Channel's async iterator yields messages until the loop breaks", async () => {
  using ch = fresh(4, 32);
  for (let i = 0; i < 3; i++) ch.send(String(i));
  const seen: string[] = [];
  for await (const m of ch) {
    seen.push(m.text());
    m.release();
    if (seen.length === 3) break;
  }
  assertEquals(seen, ["0", "1", "2"]);
  ch.unlink();
});

test("Channel.create refuses bad options and an existing name", () => {
  const name = uniqueName("ch");
  assertThrows(() => Channel.create(name, { slots: 0, slotSize: 8 }), RangeError);
  assertThrows(() => Channel.create(name, { slots: 1, slotSize: 0 }), RangeError);
  assertThrows(() => Channel.create(name, { slots: 1, slotSize: 8, mode: "spmc" as "spsc" }), TypeError);
  using ch = Channel.create(name, { slots: 1, slotSize: 8 });
  assertCode(() => Channel.create(name, { slots: 1, slotSize: 8 }), "EEXIST");
  assertCode(() => Channel.open(uniqueName("missing")), "ENOENT");
  ch.unlink();
});

// ---------------------------------------------------------------------------------------------
// Across processes and runtimes

const SLOT = 512;

for (const mode of ["mpmc", "spsc"] as const) {
  test(`${mode} Channel carries text, JSON and checksummed binary between runtimes in both directions`, async () => {
    const [x, y] = OTHER[RUNTIME];
    // More messages than slots: senders block on a full channel (backpressure) and wake.
    const pairs: [Runtime, Runtime][] = mode === "mpmc" ? [[x, y], [y, RUNTIME], [RUNTIME, x]] : [[y, x]];
    for (const [from, to] of pairs) {
      using ch = Channel.create(uniqueName("ch"), { slots: 8, slotSize: SLOT, mode });
      const h = JSON.stringify(ch.handle());
      const [s, r] = await Promise.all([
        runScript(from, "tests/fixtures/channel_send.ts", { args: [h, "300"] }),
        runScript(to, "tests/fixtures/channel_recv.ts", { args: [h, "300"] }),
      ]);
      assertEquals(s.stdout.trim(), "sent 300", `${from} -> ${to}`);
      assertEquals(r.stdout.trim(), "received 300", `${from} -> ${to}`);
      assertEquals(ch.available, 8);
      ch.unlink();
    }
  });
}

test("mpmc Channel with two sender processes and this process receiving loses and duplicates nothing", async () => {
  const [x, y] = OTHER[RUNTIME];
  using ch = Channel.create(uniqueName("ch"), { slots: 4, slotSize: SLOT });
  const h = JSON.stringify(ch.handle());
  const senders = Promise.all([
    runScript(x, "tests/fixtures/channel_send.ts", { args: [h, "150", "0"] }),
    runScript(y, "tests/fixtures/channel_send.ts", { args: [h, "150", "1000"] }),
  ]);
  const seen = new Set<number>();
  let lastA = -1, lastB = 999;
  for (let k = 0; k < 300; k++) {
    using m = await ch.recvAsync({ timeout: 60_000 });
    // Which message is it? Try both streams' next expected seq (each sender's order is kept).
    const i = checkMessage(lastA + 1, m.bytes, SLOT) === ""
      ? ++lastA
      : checkMessage(lastB + 1, m.bytes, SLOT) === ""
      ? ++lastB
      : -1;
    assert(i >= 0, `message ${k} is neither sender's next one: ${m.text().slice(0, 40)}`);
    seen.add(i);
  }
  await senders;
  assertEquals(seen.size, 300);
  assertEquals(lastA, 149);
  assertEquals(lastB, 1149);
  assertEquals(ch.tryRecv(), undefined);
  ch.unlink();
});

/** Starts `script` in `rt` and resolves once it prints a line starting with `marker`. */
test("slots held by a SIGKILLed receiver come back when a sender finds the channel full", async () => {
  for (const rt of OTHER[RUNTIME]) {
    using ch = Channel.create(uniqueName("ch"), { slots: 4, slotSize: 64 });
    for (let i = 0; i < 4; i++) ch.send(textOf(i).slice(0, 60));
    const child = await startUntil(
      rt,
      "tests/fixtures/channel_hold.ts",
      [JSON.stringify(ch.handle()), "recv", "3"],
      "held 3",
    );
    assertEquals(ch.size, 1);
    assertEquals(ch.reclaim(), 0, "a live holder is never robbed");
    await killed(child);
    // Full: 1 queued + 3 held by the dead receiver. send() reclaims instead of waiting forever.
    for (let i = 0; i < 3; i++) ch.send(`after ${i}`, { timeout: 10_000 });
    const got: string[] = [];
    for (let m = ch.tryRecv(); m; m = ch.tryRecv()) {
      got.push(m.text());
      m.release();
    }
    assertEquals(got, [textOf(3).slice(0, 60), "after 0", "after 1", "after 2"]);
    assertEquals(ch.available, 4);
    ch.unlink();
  }
});

test("spsc, recvRun 32: a receiver SIGKILLed holding a receive run gives every slot back; the messages of its run go with it", async () => {
  const rt = OTHER[RUNTIME][0];
  using ch = Channel.create(uniqueName("ch"), { slots: 8, slotSize: 64, mode: "spsc" });
  for (let i = 0; i < 6; i++) ch.send(`before ${i}`);
  // The child receives one message and keeps it: its receive claimed all 6 as one run.
  const child = await startUntil(
    rt,
    "tests/fixtures/channel_hold.ts",
    [JSON.stringify(ch.handle()), "recv", "1", "", "32"],
    "held 1",
  );
  assertEquals(ch.size, 0, "the run took every queued message");
  assertEquals(ch.available, 2);
  assertEquals(ch.reclaim(), 0, "a live receiver's run is never robbed");
  await killed(child);
  // The sender finds 2 free slots, then reclaims the 6 held by the dead receiver's tenure.
  for (let i = 0; i < 8; i++) ch.send(`after ${i}`, { timeout: 10_000 });
  assertEquals(ch.available, 0);
  const got: string[] = [];
  for (let m = ch.tryRecv(); m; m = ch.tryRecv()) {
    got.push(m.text());
    m.release();
  }
  assertEquals(got, Array.from({ length: 8 }, (_, i) => `after ${i}`));
  assertEquals(ch.available, 8, "no slot lost");
  ch.unlink();
});

test("spsc, default recvRun: a receiver SIGKILLed holding a message loses only that one; the queued ones reach the next receiver", async () => {
  const rt = OTHER[RUNTIME][0];
  using ch = Channel.create(uniqueName("ch"), { slots: 8, slotSize: 64, mode: "spsc" });
  for (let i = 0; i < 6; i++) ch.send(`before ${i}`);
  const child = await startUntil(
    rt,
    "tests/fixtures/channel_hold.ts",
    [JSON.stringify(ch.handle()), "recv", "1"],
    "held 1",
  );
  assertEquals(ch.size, 5, "one received, five still queued");
  await killed(child);
  assertEquals(ch.reclaim(), 1, "the dead receiver's one held slot comes back");
  const got: string[] = [];
  for (let m = ch.tryRecv(); m; m = ch.tryRecv()) {
    got.push(m.text());
    m.release();
  }
  assertEquals(got, [1, 2, 3, 4, 5].map((i) => `before ${i}`));
  assertEquals(ch.available, 8, "no slot lost");
  ch.unlink();
});

test("loans held by a SIGKILLed sender come back, also to a sender waiting asynchronously", async () => {
  const rt = OTHER[RUNTIME][0];
  using ch = Channel.create(uniqueName("ch"), { slots: 3, slotSize: 64 });
  const child = await startUntil(
    rt,
    "tests/fixtures/channel_hold.ts",
    [JSON.stringify(ch.handle()), "loan", "3"],
    "held 3",
  );
  assertEquals(ch.available, 0);
  const waiting = ch.sendAsync("got through", { timeout: 20_000 });
  await killed(child);
  await waiting;
  const m = ch.recv();
  assertEquals(m.text(), "got through");
  m.release();
  assertEquals(ch.reclaim(), 0);
  assertEquals(ch.available, 3, "every loan of the dead sender was reclaimed");
  ch.unlink();
});

test("a sender blocked in send() reclaims the slots of a receiver that dies while it waits", async () => {
  const rt = OTHER[RUNTIME][1];
  using ch = Channel.create(uniqueName("ch"), { slots: 2, slotSize: 64 });
  ch.send("one");
  ch.send("two");
  // The child takes both messages, then SIGKILLs itself 300 ms later, while we are blocked.
  const child = await startUntil(rt, "tests/fixtures/channel_hold.ts", [
    JSON.stringify(ch.handle()),
    "recv",
    "2",
    "300",
  ], "held 2");
  const gone = new Promise<void>((resolve) => child.on("close", () => resolve()));
  assertEquals(ch.available, 0);
  ch.send("three", { timeout: 20_000 }); // blocks the thread until the reclaim finds the dead holder
  await gone;
  using m = ch.recv({ timeout: 1000 });
  assertEquals(m.text(), "three");
  ch.unlink();
});

test("messages queued by a sender that exited are delivered intact after it is gone", async () => {
  const rt = OTHER[RUNTIME][1];
  using ch = Channel.create(uniqueName("ch"), { slots: 30, slotSize: SLOT });
  await runScript(rt, "tests/fixtures/channel_send.ts", { args: [JSON.stringify(ch.handle()), "30"] });
  // Another sender now finds the channel full: it must not take the queued messages' slots.
  assertCode(() => ch.send("extra", { timeout: 50 }), "ETIMEDOUT");
  for (let i = 0; i < 30; i++) {
    using m = ch.recv({ timeout: 1000 });
    assertEquals(checkMessage(i, m.bytes, SLOT), "");
  }
  assertEquals(ch.available, 30);
  void jsonOf;
  void ShmError;
  ch.unlink();
});

test("an spsc sender claims the rest of a slot-table line ahead: it counts them as available, others do not; close() gives them back", () => {
  using rx = Channel.create(uniqueName("chst"), { slots: 64, slotSize: 16, mode: "spsc" });
  using tx = Channel.attach(rx.handle());
  tx.send("a");
  // One block queued, the other 7 of its table line LOANED to tx ahead of its next sends.
  assertEquals(tx.available, 63);
  assertEquals(rx.available, 56);
  for (let i = 1; i < 8; i++) tx.send(`b${i}`); // served from the claimed-ahead blocks
  assertEquals(rx.available, 56);
  tx.send("c"); // the next line
  assertEquals(rx.available, 48);
  const got: string[] = [];
  while (got.length < 9) {
    const m = rx.tryRecv();
    assert(m !== undefined, `only ${got.length} of 9 messages arrived`);
    got.push(m.text());
    m.release();
  }
  assertEquals(got, ["a", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "c"]);
  assertEquals(rx.available, 57);
  tx.close();
  assertEquals(rx.available, 64, "close() gave the claimed-ahead blocks back");
  rx.unlink();
});

test("blocks an spsc sender claimed ahead come back by reclaim() after it is SIGKILLed (every runtime)", async () => {
  for (const rt of [RUNTIME, ...OTHER[RUNTIME]]) {
    using rx = Channel.create(uniqueName("chst"), { slots: 64, slotSize: 16, mode: "spsc" });
    const r = await run([
      ...runtimeCommand(rt, "tests/fixtures/channel_stash_child.ts"),
      JSON.stringify(rx.handle()),
      "3",
    ]);
    assertEquals(r.signal, "SIGKILL", `${rt} child: ${r.stdout}${r.stderr}`);
    assert(r.stdout.includes("sent"), `${rt} child: ${r.stdout}${r.stderr}`);
    for (let i = 0; i < 3; i++) {
      const m = rx.recv({ timeout: 1000 });
      assertEquals(m.text(), `m${i}`);
      m.release();
    }
    assertEquals(rx.available, 64 - 5, `${rt}: the dead sender's 5 claimed-ahead blocks are still LOANED`);
    assertEquals(rx.reclaim(), 5);
    assertEquals(rx.available, 64);
    rx.unlink();
  }
});
