// Python's Mutex, Semaphore and Condition (python/shmkit/locks.py over csrc/ops_sync.c) against the
// TypeScript ones, across real processes: a counter incremented under one Mutex by Python, Deno,
// Node and this runtime with the total exact; a Semaphore shared by Python and Bun that never
// admits more holders than its count; Condition mailboxes with Python consumers notified from
// TypeScript and back; and holders SIGKILLed inside the critical section, Python recovered by Deno
// and this runtime, Deno recovered by Python. The TypeScript children are
// tests/fixtures/lock_child.ts; python/tests/locks_child.py has the same modes and shared words.
import { assert, assertEquals } from "./assert.ts";
import { PYTHON, ROOT, run, type RunResult, runScript, RUNTIME, runtimeCommand, test, uniqueName } from "./harness.ts";
import { Condition, Mutex, Semaphore, SharedMemory } from "../mod.ts";

const FIXTURE = "tests/fixtures/lock_child.ts";
const CHILD = `${ROOT}python/tests/locks_child.py`;
const ENV = { PYTHONPATH: `${ROOT}python` };

const probe = await run([PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"], { env: ENV }).catch(
  () => undefined,
);
const noPython = probe?.stdout.trim() === "True" ? false : "python3 >= 3.10 is not installed";

function py(mode: string, opts: unknown, timeout = 120_000): Promise<RunResult> {
  return run([PYTHON, CHILD, mode, JSON.stringify(opts)], { env: ENV, timeout });
}

function ok(r: RunResult, what: string): RunResult {
  assert(r.code === 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** Waits until `count` children have added themselves to word `ready`, then opens the barrier. */
async function startBarrier(d: Int32Array, ready: number, go: number, count: number): Promise<void> {
  const t0 = performance.now();
  while (Atomics.load(d, ready) < count) {
    assert(performance.now() - t0 < 30_000, "the Python children never reached the start barrier");
    await new Promise((r) => setTimeout(r, 2));
  }
  Atomics.store(d, go, 1);
}

/** A child's promise that never rejects unobserved while the test is busy elsewhere; `await settled(p)()` rethrows. */
function settled<T>(p: Promise<T>): () => Promise<T> {
  const s = p.then((v) => ({ v }), (e: unknown) => ({ e }));
  return async () => {
    const r = await s;
    if ("e" in r) throw r.e;
    return r.v;
  };
}

function doneOf(r: RunResult): number {
  return (JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { done: number }).done;
}

test(
  `Mutex: Python (blocking and asyncio), Deno, Node and ${RUNTIME} increment one counter, the total exact`,
  async () => {
    const name = uniqueName("pymtx");
    using m = Mutex.create(name);
    using data = SharedMemory.create(uniqueName("pymtxd"), 64);
    try {
      const d = data.view(Int32Array);
      const n = 3000;
      const opts = { mutex: m.handle(), data: data.handle(), n };
      // The Python children count for 1.5 s from the moment all of them are ready, so they contend with
      // each other, with the TypeScript children (3000 increments each) and with this process.
      const timed = { ...opts, seconds: 1.5, ready: 2, go: 1 };
      const pyPeers = [
        py("counter", timed, 180_000).then((r) => doneOf(ok(r, "python counter"))),
        py("counter", { ...timed, async: true }, 180_000).then((r) => doneOf(ok(r, "python asyncio counter"))),
      ].map(settled);
      const args = (o: unknown) => ({ args: ["counter", JSON.stringify(o)], timeout: 180_000 });
      const tsPeers = [
        runScript("deno", FIXTURE, args(opts)),
        runScript("node", FIXTURE, args({ ...opts, async: true })),
      ].map(settled);
      await startBarrier(d, 2, 1, pyPeers.length);
      for (let i = 0; i < n; i++) {
        const g = await m.lockAsync({ timeout: 60_000 });
        const v = d[0];
        d[0] = v + 1;
        g.unlock();
        if (i % 16 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      const pyDone = await Promise.all(pyPeers.map((p) => p()));
      await Promise.all(tsPeers.map((p) => p()));
      for (const k of pyDone) assert(k > 0, `every Python child incremented (${pyDone})`);
      assertEquals(d[0], 3 * n + pyDone[0] + pyDone[1], "every increment counted exactly once");
      assertEquals(m.recoveries, 0);
      assert(m.tryLock() !== undefined, "the lock is free at the end");
    } finally {
      SharedMemory.unlink(name);
      data.unlink();
    }
  },
  { skip: noPython, timeout: 240_000 },
);

test(
  `Semaphore: Python (blocking and asyncio), Bun and ${RUNTIME} share a count of 2 and never exceed it`,
  async () => {
    const name = uniqueName("pysem");
    using s = Semaphore.create(name, { value: 2 });
    using data = SharedMemory.create(uniqueName("pysemd"), 64);
    try {
      const d = data.view(Int32Array);
      const n = 1000;
      const opts = { sem: s.handle(), data: data.handle(), n };
      const timed = { ...opts, seconds: 1.5, ready: 5, go: 4 };
      const pyPeers = [
        py("sem", timed).then((r) => doneOf(ok(r, "python sem"))),
        py("sem", { ...timed, async: true }).then((r) => doneOf(ok(r, "python asyncio sem"))),
      ].map(settled);
      const bun = settled(runScript("bun", FIXTURE, { args: ["sem", JSON.stringify(opts)], timeout: 120_000 }));
      await startBarrier(d, 5, 4, pyPeers.length);
      for (let i = 0; i < n; i++) {
        await s.acquireAsync({ timeout: 60_000 });
        const now = Atomics.add(d, 0, 1) + 1;
        for (let seen = Atomics.load(d, 1); now > seen; seen = Atomics.load(d, 1)) {
          if (Atomics.compareExchange(d, 1, seen, now) === seen) break;
        }
        Atomics.sub(d, 0, 1);
        Atomics.add(d, 2, 1);
        s.release();
        if (i % 16 === 0) await new Promise((r) => setTimeout(r, 0));
      }
      const pyDone = await Promise.all(pyPeers.map((p) => p()));
      await bun();
      for (const k of pyDone) assert(k > 0, `every Python child acquired (${pyDone})`);
      assertEquals(d[2], 2 * n + pyDone[0] + pyDone[1], "every acquisition completed");
      assert(d[1] >= 1 && d[1] <= 2, `at most 2 holders inside at once, saw ${d[1]}`);
      assertEquals(d[0], 0);
      assertEquals(s.value, 2, "every unit given back");
    } finally {
      SharedMemory.unlink(name);
      data.unlink();
    }
  },
  { skip: noPython, timeout: 180_000 },
);

test(
  `Condition: Python consumers are notified by ${RUNTIME}, and a ${RUNTIME} consumer by a Python producer`,
  async () => {
    const name = uniqueName("pycond");
    using seg = SharedMemory.create(name, 4096);
    using m = Mutex.init(seg, 0, { slots: 8 });
    using c = Condition.init(seg, Mutex.byteLength({ slots: 8 }));
    using data = SharedMemory.create(uniqueName("pycondd"), 64);
    try {
      const d = data.view(Int32Array);
      const opts = { mutex: m.handle(), cond: c.handle(), data: data.handle() };
      // Python consumers (blocking wait_for, asyncio wait_async); this runtime produces.
      const consumers = [
        py("pingpong", opts).then((r) => ok(r, "python pingpong")),
        py("pingpong", { ...opts, async: true }).then((r) => ok(r, "python asyncio pingpong")),
      ];
      const N = 150;
      const items = [...Array.from({ length: N }, (_, i) => i + 1), 0, 0];
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
      // And back: a consumer in this runtime, a Python producer.
      d.fill(0);
      const consumer = runScript(RUNTIME, FIXTURE, { args: ["pingpong", JSON.stringify(opts)], timeout: 120_000 });
      ok(await py("pingpong-produce", { ...opts, n: N }), "python pingpong-produce");
      await consumer;
      assertEquals(d[3], N + 1);
      assertEquals(d[2], (N * (N + 1)) / 2);
    } finally {
      seg.unlink();
      data.unlink();
    }
  },
  { skip: noPython, timeout: 180_000 },
);

test(`Mutex: a Python holder SIGKILLed inside is recovered by Deno, a Deno holder by Python`, async () => {
  const name = uniqueName("pymtxkill");
  using m = Mutex.create(name, { slots: 8 });
  using data = SharedMemory.create(uniqueName("pymtxkilld"), 64);
  try {
    const d = data.view(Int32Array);
    const base = { mutex: m.handle(), data: data.handle(), spin: 200 };
    for (const victimIsPython of [true, false]) {
      for (const killAt of [0, 1, 2]) {
        const what = `${victimIsPython ? "python" : "deno"} victim, killAt ${killAt}`;
        d.fill(0);
        const victimOpts = { ...base, rounds: 20, killAt };
        const victim = victimIsPython
          ? await py("crash", victimOpts)
          : await run([...runtimeCommand("deno", FIXTURE), "crash", JSON.stringify(victimOpts)], { timeout: 60_000 });
        assertEquals(victim.signal, "SIGKILL", `${what}: ${victim.stdout}${victim.stderr}`);
        const survivorOpts = { ...base, rounds: 10 };
        if (victimIsPython) {
          await runScript("deno", FIXTURE, { args: ["crash", JSON.stringify(survivorOpts)], timeout: 60_000 });
        } else {
          ok(await py("crash", survivorOpts), `python survivor (${what})`);
        }
        assertEquals(d[5], 0, `${what}: recovered flag mismatches`);
        assertEquals(d[7], 0, `${what}: the pair seen torn after locking`);
        assertEquals(d[4], 1, `${what}: one recovery`);
        assertEquals(d[6], killAt === 1 ? 1 : 0, `${what}: repairs of a torn pair`);
        assertEquals(d[0], d[1], what);
        assertEquals(d[3], 20 + 11, `${what}: completed sections`);
      }
    }
    assertEquals(m.recoveries, 6);
    // A waiter of this runtime parked on the lock while the Python holder dies takes it over.
    d.fill(0);
    const holder = run([PYTHON, CHILD, "hold-die", JSON.stringify(base)], { env: ENV, timeout: 60_000 });
    const t0 = performance.now();
    while (Atomics.load(d, 0) === 0) {
      assert(performance.now() - t0 < 30_000, "the Python holder never locked");
      await new Promise((r) => setTimeout(r, 5));
    }
    const waiting = m.lockAsync({ timeout: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    Atomics.store(d, 1, 1); // the holder kills itself now
    const t1 = performance.now();
    const g = await waiting;
    assert(g.recovered, "the parked waiter reports the dead holder");
    assert(performance.now() - t1 < 2000, `recovered within 2 s, took ${performance.now() - t1} ms`);
    g.unlock();
    assertEquals((await holder).signal, "SIGKILL");
  } finally {
    SharedMemory.unlink(name);
    data.unlink();
  }
}, { skip: noPython, timeout: 240_000 });

test(
  `Condition: a Python waiter gets the mutex back recovered when a Deno notifier dies holding it, and ${RUNTIME} when a Python one does`,
  async () => {
    const name = uniqueName("pycondkill");
    using seg = SharedMemory.create(name, 4096);
    using m = Mutex.init(seg, 0, { slots: 4 });
    using c = Condition.init(seg, Mutex.byteLength({ slots: 4 }));
    using data = SharedMemory.create(uniqueName("pycondkilld"), 64);
    try {
      const d = data.view(Int32Array);
      const opts = JSON.stringify({ mutex: m.handle(), cond: c.handle(), data: data.handle() });
      const waiters = new Uint32Array(seg.buffer, Mutex.byteLength({ slots: 4 }) + 68, 1);
      // A Python waiter; once it sleeps in the condition, a Deno child locks, notifies and dies holding the mutex.
      const waiter = run([PYTHON, CHILD, "cond-wait", opts], { env: ENV, timeout: 60_000 });
      const t0 = performance.now();
      while (Atomics.load(waiters, 0) === 0) {
        assert(performance.now() - t0 < 30_000, "the Python waiter never waited");
        await new Promise((r) => setTimeout(r, 5));
      }
      const notifier = await run([...runtimeCommand("deno", FIXTURE), "notify-and-die", opts], { timeout: 60_000 });
      assertEquals(notifier.signal, "SIGKILL");
      const out = JSON.parse(ok(await waiter, "python cond-wait").stdout.trim());
      assertEquals(out, { recovered: true, held: true });
      // And back: this runtime waits, a Python notifier dies holding the mutex.
      d.fill(0);
      const g = await m.lockAsync({ timeout: 10_000 });
      const pyNotifier = run([PYTHON, CHILD, "notify-and-die", opts], { env: ENV, timeout: 60_000 });
      while (d[0] === 0) await c.waitAsync(g, { timeout: 30_000 });
      assert(g.recovered, "the re-acquired mutex reports the dead Python holder");
      assert(m.held);
      g.unlock();
      assertEquals((await pyNotifier).signal, "SIGKILL");
    } finally {
      seg.unlink();
      data.unlink();
    }
  },
  { skip: noPython, timeout: 120_000 },
);
