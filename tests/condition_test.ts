import { assert, assertCode, assertEquals } from "./assert.ts";
import { run, runScript, runtimeCommand, RUNTIMES, test, uniqueName } from "./harness.ts";
import { attach, Condition, type ConditionHandle, Mutex, Semaphore, SharedMemory } from "../mod.ts";

const FIXTURE = "tests/fixtures/lock_child.ts";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("Condition.wait times out with ETIMEDOUT and returns holding the mutex", () => {
  using seg = SharedMemory.create(null, 4096);
  using m = Mutex.init(seg, 0);
  using c = Condition.init(seg, Mutex.byteLength());
  seg.unlink();
  const g = m.lock();
  assertCode(
    () => c.wait(g, { timeout: 30 }),
    "ETIMEDOUT",
    /^Cannot wait on condition at 640 of "[^"]+": timed out after 30 ms/,
  );
  assert(m.held, "the mutex is held again");
  using m2 = Mutex.at(seg, 0);
  assertEquals(m2.tryLock(), undefined);
  g.unlock();
  assertCode(() => c.wait(g), "EPERM", /does not hold its mutex/);
});

test("Condition.create, open, attach and headers are checked", () => {
  const name = uniqueName("cond");
  using c = Condition.create(name);
  using c2 = Condition.open(name);
  using c3 = attach(JSON.parse(JSON.stringify(c.handle()))) as Condition;
  const h: ConditionHandle = c.handle();
  assertEquals(h.kind, "shmkit.condition");
  c2.notify();
  c3.notifyAll();
  assertCode(() => Condition.create(name), "EEXIST", /^Cannot create condition "/);
  c.unlink();
  assertCode(() => Condition.open(name), "ENOENT", /^Cannot open condition "/);
  const sname = uniqueName("cond");
  using s = Semaphore.create(sname);
  assertCode(() => Condition.open(sname), "EBADHDR", /not a condition/);
  s.unlink();
  let threw = false;
  try {
    c.notify(0);
  } catch (e) {
    threw = e instanceof RangeError;
  }
  assert(threw);
  c.close();
  c.close();
  assertCode(() => c.notify(), "ECLOSED");
});

test("Condition.waitAsync wakes on notify from another task, holding the mutex again", async () => {
  using seg = SharedMemory.create(null, 4096);
  seg.unlink();
  using m = Mutex.init(seg, 0);
  using c = Condition.init(seg, Mutex.byteLength());
  using m2 = Mutex.at(seg, 0);
  const flag = seg.view(Int32Array, 1024, 1);
  const g = await m.lockAsync();
  setTimeout(async () => {
    const g2 = await m2.lockAsync({ timeout: 10_000 });
    flag[0] = 1;
    c.notify();
    g2.unlock();
  }, 20);
  while (flag[0] === 0) await c.waitAsync(g, { timeout: 10_000 });
  assert(m.held && !g.recovered);
  g.unlock();
  // Abort: rejects with the reason, after re-acquiring the mutex.
  const g3 = await m.lockAsync();
  const ac = new AbortController();
  const reason = new Error("stop");
  setTimeout(() => ac.abort(reason), 20);
  let got: unknown;
  try {
    await c.waitAsync(g3, { signal: ac.signal });
  } catch (e) {
    got = e;
  }
  assert(got === reason && m.held);
  g3.unlock();
});

for (const asyncMode of [false, true]) {
  test(`Condition hands 200 items one at a time to a consumer of each runtime (${asyncMode ? "waitAsync" : "wait"})`, async () => {
    using seg = SharedMemory.create(uniqueName("cond"), 4096);
    using m = Mutex.init(seg, 0, { slots: 8 });
    using c = Condition.init(seg, Mutex.byteLength({ slots: 8 }));
    using data = SharedMemory.create(uniqueName("condd"), 64);
    const d = data.view(Int32Array);
    const opts = JSON.stringify({ mutex: m.handle(), cond: c.handle(), data: data.handle(), async: asyncMode });
    const consumers = RUNTIMES.map((rt) => runScript(rt, FIXTURE, { args: ["pingpong", opts], timeout: 90_000 }));
    // Items 1..N, then one 0 per consumer to stop it.
    const N = 200;
    const items = [...Array.from({ length: N }, (_, i) => i + 1), ...RUNTIMES.map(() => 0)];
    for (const item of items) {
      const g = await m.lockAsync({ timeout: 30_000 });
      while (d[0] !== 0) await c.waitAsync(g, { timeout: 30_000 });
      d[1] = item;
      d[0] = 1;
      c.notifyAll();
      g.unlock();
    }
    await Promise.all(consumers);
    assertEquals(d[3], items.length, "every item taken exactly once");
    assertEquals(d[2], (N * (N + 1)) / 2);
    seg.unlink();
    data.unlink();
  });
}

for (const rt of RUNTIMES) {
  test(`Condition.wait reports recovered when the ${rt} notifier died holding the mutex`, async () => {
    using seg = SharedMemory.create(uniqueName("cond"), 4096);
    using m = Mutex.init(seg, 0, { slots: 4 });
    using c = Condition.init(seg, Mutex.byteLength({ slots: 4 }));
    using data = SharedMemory.create(uniqueName("condd"), 64);
    const d = data.view(Int32Array);
    const g = await m.lockAsync();
    const child = run([
      ...runtimeCommand(rt, FIXTURE),
      "notify-and-die",
      JSON.stringify({ mutex: m.handle(), cond: c.handle(), data: data.handle() }),
    ], {
      timeout: 60_000,
    });
    while (d[0] === 0) await c.waitAsync(g, { timeout: 30_000 });
    assert(g.recovered, "the re-acquired mutex reports the dead holder");
    assert(m.held);
    g.unlock();
    const r = await child;
    assertEquals(r.signal, "SIGKILL");
    await sleep(0);
    seg.unlink();
    data.unlink();
  });
}

test("Condition: after close, and for one placed with at() after its segment closes, every method gives ECLOSED", async () => {
  const seg = SharedMemory.create(null, 4096);
  const m = Mutex.init(seg, 0);
  const placed = Condition.init(seg, Mutex.byteLength());
  const name = uniqueName("cond");
  const own = Condition.create(name);
  own.unlink();
  own.close();
  const g = m.lock();
  seg.unlink();
  seg.close();
  for (const c of [own, placed]) {
    assertCode(() => c.notify(), "ECLOSED");
    assertCode(() => c.notifyAll(), "ECLOSED");
    assertCode(() => c.handle(), "ECLOSED");
    assertCode(() => c.wait(g, { timeout: 10 }), "ECLOSED");
    let code = "";
    try {
      await c.waitAsync(g, { timeout: 10 });
    } catch (e) {
      code = (e as { code?: string }).code ?? String(e);
    }
    assertEquals(code, "ECLOSED");
    c.close();
  }
  m.close();
});
