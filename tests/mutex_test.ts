import { assert, assertCode, assertEquals, assertRejectsCode } from "./assert.ts";
import { runScript, RUNTIME, RUNTIMES, test, uniqueName } from "./harness.ts";
import { attach, Mutex, type MutexHandle, Semaphore, SharedMemory } from "../mod.ts";
import { LOCK_ABANDONED, LOCK_WAITERS, MUTEX, SELF_ID } from "../src/mutex.ts";
import { PID, START_TIME, sys } from "../src/sys.ts";
import process from "node:process";
import { readFileSync } from "node:fs";

const FIXTURE = "tests/fixtures/lock_child.ts";

function words(seg: SharedMemory, off = 0): Uint32Array {
  return seg.view(Uint32Array, off + MUTEX.lock, 3);
}
function slots(seg: SharedMemory, n: number, off = 0): BigUint64Array {
  return seg.view(BigUint64Array, off + MUTEX.slots, n);
}
function identity(pid: number, start: number): bigint {
  return (BigInt(start) << 22n) | BigInt(pid);
}

test("Mutex.create, open and attach share one lock", () => {
  const name = uniqueName("mtx");
  using a = Mutex.create(name);
  using b = Mutex.open("/" + name);
  using c = attach(JSON.parse(JSON.stringify(a.handle()))) as Mutex;
  const g = a.tryLock();
  assert(g !== undefined && g.recovered === false);
  assertEquals(b.tryLock(), undefined);
  assertEquals(c.tryLock(), undefined);
  g.unlock();
  const g2 = c.tryLock();
  assert(g2 !== undefined);
  g2.unlock();
  a.unlink();
});

test("Mutex.byteLength covers the header and the slot table, in 64-byte steps", () => {
  assertEquals(Mutex.byteLength(), 128 + 64 * 8);
  assertEquals(Mutex.byteLength({ slots: 1 }), 192);
  assertEquals(Mutex.byteLength({ slots: 9 }), 256);
  let threw = false;
  try {
    Mutex.byteLength({ slots: 0 });
  } catch (e) {
    threw = e instanceof RangeError;
  }
  assert(threw);
});

test("Mutex.create throws EEXIST and Mutex.open throws ENOENT naming the mutex", () => {
  const name = uniqueName("mtx");
  using a = Mutex.create(name);
  assertCode(() => Mutex.create(name), "EEXIST", /^Cannot create mutex "/);
  a.unlink();
  assertCode(
    () => Mutex.open(name),
    "ENOENT",
    new RegExp(`^Cannot open mutex "${name}": no such segment \\(ENOENT\\)\\. Create it first, or check the name`),
  );
  assertCode(() => Mutex.open("a/b"), "EINVAL");
});

test("Mutex.open throws EBADHDR for another kind, a bad slot count or a corrupt lock word", () => {
  const name = uniqueName("mtx");
  using s = Semaphore.create(name);
  assertCode(() => Mutex.open(name), "EBADHDR", /not a mutex/);
  s.unlink();
  using seg = SharedMemory.create(null, 4096);
  Mutex.init(seg, 0, { slots: 4 }).close();
  const dv = new DataView(seg.buffer);
  dv.setUint32(MUTEX.slotCount, 1000, true);
  assertCode(() => Mutex.at(seg, 0), "EBADHDR", /does not match|impossible/);
  dv.setUint32(MUTEX.slotCount, 0, true);
  assertCode(() => Mutex.at(seg, 0), "EBADHDR", /impossible slot count 0/);
  dv.setUint32(MUTEX.slotCount, 4, true);
  dv.setUint32(MUTEX.lock, 9, true); // owner slot 9 of 4
  assertCode(() => Mutex.at(seg, 0), "EBADHDR", /corrupt lock word/);
  dv.setUint32(MUTEX.lock, 0, true);
  using m = Mutex.at(seg, 0);
  dv.setUint32(MUTEX.lock, 0x00200000, true); // a reserved bit
  assertCode(() => m.tryLock(), "EBADHDR", /corrupt lock word/);
  dv.setUint32(MUTEX.lock, 0, true);
  m.lock().unlock();
  assertCode(() => Mutex.at(seg, 32), "EINVAL");
  seg.unlink();
});

test("Mutex.init places several mutexes in one segment, each independent", () => {
  using seg = SharedMemory.create(null, 4096);
  const len = Mutex.byteLength({ slots: 4 });
  using a = Mutex.init(seg, 0, { slots: 4 });
  using b = Mutex.init(seg, len, { slots: 4 });
  const ga = a.lock();
  const gb = b.lock();
  using a2 = Mutex.at(seg, 0);
  assertEquals(a2.tryLock(), undefined);
  ga.unlock();
  gb.unlock();
  assertEquals(a.handle().byteOffset, 0);
  assertEquals(b.handle().byteOffset, len);
  seg.unlink();
});

test("a second blocking lock from the holding process throws EBUSY instead of deadlocking", () => {
  using seg = SharedMemory.create(null, 4096);
  using a = Mutex.init(seg, 0);
  using b = Mutex.at(seg, 0);
  const g = a.lock();
  assertCode(() => a.lock(), "EBUSY", /already held by this process/);
  assertCode(() => b.lock({ timeout: 5000 }), "EBUSY", /already held by this process/);
  assertEquals(a.tryLock(), undefined);
  assertEquals(b.tryLock(), undefined);
  g.unlock();
  b.lock().unlock();
  seg.unlink();
});

test("unlocking twice throws EPERM; dispose after unlock does nothing", () => {
  using m = Mutex.create(uniqueName("mtx"));
  m.unlink();
  const g = m.lock();
  g.unlock();
  assertCode(() => g.unlock(), "EPERM", /does not hold it/);
  g[Symbol.dispose]();
  {
    using g2 = m.lock();
    assert(m.held && !g2.recovered);
  }
  assert(!m.held);
  m.lock().unlock();
});

test("Mutex.lock with a timeout throws ETIMEDOUT while another process's identity holds it", () => {
  using seg = SharedMemory.create(null, 4096);
  using m = Mutex.init(seg, 0, { slots: 4 });
  // Slot 4 belongs to our parent process (alive, its real start time): a live foreign holder.
  const ppid = process.ppid;
  const start = sys.shmkit_proc_start_time(ppid);
  assert(start >= 0, "the parent's start time is readable");
  slots(seg, 4)[3] = identity(ppid, start);
  words(seg)[0] = 4;
  assertEquals(m.tryLock(), undefined);
  assertCode(
    () => m.lock({ timeout: 300 }),
    "ETIMEDOUT",
    /^Cannot lock mutex "[^"]+": timed out after 300 ms \(ETIMEDOUT\)$/,
  );
  assertCode(() => m.lock({ timeout: 0 }), "ETIMEDOUT");
  assert((words(seg)[0] & LOCK_WAITERS) !== 0, "the waiter announced itself");
  words(seg)[0] = 0;
  m.lock().unlock();
  seg.unlink();
});

test("a holder whose pid now belongs to a process with another start time counts as dead", () => {
  using seg = SharedMemory.create(null, 4096);
  using m = Mutex.init(seg, 0, { slots: 4 });
  // Our own pid with a start time we never had: the identity of a process that is gone.
  slots(seg, 4)[2] = identity(PID, START_TIME + 12345);
  words(seg)[0] = 3;
  const g = m.tryLock();
  assert(g !== undefined && g.recovered === true);
  assertEquals(m.recoveries, 1);
  g.unlock();
  // A pid that does not exist at all.
  slots(seg, 4)[2] = identity(4_194_303, 1);
  words(seg)[0] = 3 | LOCK_WAITERS;
  const g2 = m.lock({ timeout: 2000 });
  assert(g2.recovered);
  g2.unlock();
  assertEquals(m.recoveries, 2);
  seg.unlink();
});

test("closing a Mutex while holding abandons the lock: the next locker recovers", () => {
  using seg = SharedMemory.create(null, 4096);
  using a = Mutex.init(seg, 0);
  const b = Mutex.at(seg, 0);
  const gb = b.lock();
  b.close();
  assertEquals(words(seg)[0] & LOCK_ABANDONED, LOCK_ABANDONED);
  assertCode(() => gb.unlock(), "ECLOSED", /abandoned/);
  assertCode(() => b.lock(), "ECLOSED");
  const g = a.lock();
  assert(g.recovered);
  g.unlock();
  const g2 = a.lock();
  assert(!g2.recovered);
  g2.unlock();
  seg.unlink();
});

test("Mutex slots run out with ENOSPC, and slots of dead processes are reused", () => {
  using seg = SharedMemory.create(null, 4096);
  using a = Mutex.init(seg, 0, { slots: 2 });
  using b = Mutex.at(seg, 0);
  using c = Mutex.at(seg, 0);
  a.lock().unlock();
  b.lock().unlock();
  assertCode(() => c.tryLock(), "ENOSPC", /all 2 participant slots/);
  const ids = slots(seg, 2);
  assertEquals(ids[0], SELF_ID);
  ids[1] = identity(4_194_303, 1); // b's slot now names a dead process
  const g = c.lock();
  assert(!g.recovered);
  g.unlock();
  assertEquals(ids[1], SELF_ID);
  a.close();
  assertEquals(ids[0], 0n, "close frees the slot");
  seg.unlink();
});

test("Mutex.lockAsync waits for the holder in this process without blocking the event loop", async () => {
  using m = Mutex.create(uniqueName("mtx"));
  using other = Mutex.open(m.handle().name!);
  m.unlink();
  const g = m.lock();
  let timerFired = false;
  setTimeout(() => {
    timerFired = true;
    g.unlock();
  }, 50);
  const g2 = await other.lockAsync({ timeout: 10_000 });
  assert(timerFired && !g2.recovered);
  await assertRejectsCode(m.lockAsync({ timeout: 100 }), "ETIMEDOUT");
  g2.unlock();
  // The same object queues behind its own holder, too.
  const g3 = await m.lockAsync();
  setTimeout(() => g3.unlock(), 20);
  const g4 = await m.lockAsync({ timeout: 10_000 });
  g4.unlock();
});

test("Mutex.lockAsync rejects with signal.reason on abort", async () => {
  using m = Mutex.create(uniqueName("mtx"));
  using other = Mutex.open(m.handle().name!);
  m.unlink();
  const g = m.lock();
  const ac = new AbortController();
  const reason = new Error("stop waiting");
  const p = other.lockAsync({ signal: ac.signal });
  setTimeout(() => ac.abort(reason), 30);
  let got: unknown;
  try {
    await p;
  } catch (e) {
    got = e;
  }
  assert(got === reason);
  const pre = new AbortController();
  pre.abort(reason);
  try {
    await other.lockAsync({ signal: pre.signal });
    assert(false, "an aborted signal rejects at once");
  } catch (e) {
    assert(e === reason);
  }
  g.unlock();
  (await other.lockAsync({ timeout: 5000 })).unlock();
});

test("Mutex.close is idempotent and handle() reports the segment", () => {
  const m = Mutex.create(uniqueName("mtx"));
  const h: MutexHandle = m.handle();
  assertEquals(h.kind, "shmkit.mutex");
  assertEquals(h.version, 1);
  assertEquals(h.byteOffset, 0);
  assertEquals(h.segment.name, h.name);
  m.unlink();
  m.close();
  m.close();
  assert(m.closed);
  assertCode(() => m.tryLock(), "ECLOSED");
});

for (const asyncMode of [false, true]) {
  test(`Mutex gives mutual exclusion to Deno, Bun and Node children at once (${asyncMode ? "lockAsync" : "lock"})`, async () => {
    using m = Mutex.create(uniqueName("mtx"), { slots: 8 });
    using data = SharedMemory.create(uniqueName("mtxd"), 64);
    const d = data.view(Int32Array);
    const n = 300;
    const opts = JSON.stringify({ mutex: m.handle(), data: data.handle(), n, async: asyncMode });
    // The parent takes part too, so every runtime contends with every other.
    const children = RUNTIMES.map((rt) => runScript(rt, FIXTURE, { args: ["counter", opts], timeout: 90_000 }));
    for (let i = 0; i < n; i++) {
      const g = asyncMode ? await m.lockAsync({ timeout: 30_000 }) : m.lock({ timeout: 30_000 });
      const v = d[0];
      d[0] = v + 1;
      g.unlock();
      if (i % 16 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(children);
    assertEquals(d[0], n * (RUNTIMES.length + 1));
    m.unlink();
    data.unlink();
  });
}

void RUNTIME;

// ---------------------------------------------------------------------------------------------
// Hardening (issue 10 items 4, 6, 11)

/** Mappings of segment `name` in this process (/proc/self/maps lines). */
function mappedCount(name: string): number {
  return readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.includes(name)).length;
}

test("Mutex.close on a held mutex whose lock word is corrupt still releases the mapping", () => {
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (s: string) => warnings.push(String(s));
  try {
    for (let k = 0; k < 5; k++) {
      const name = uniqueName("mtx");
      const m = Mutex.create(name);
      try {
        m.lock();
        using seg = SharedMemory.open(name);
        words(seg)[0] = 0x40000 | 1; // a bit outside owner | ABANDONED | WAITERS: corrupt (I1)
        assert(mappedCount(name) >= 1);
        m.close(); // must not throw, must not keep the mapping
        assert(m.closed);
      } finally {
        SharedMemory.unlink(name);
      }
      assertEquals(mappedCount(name), 0, `mapping of ${name} left in /proc/self/maps`);
    }
    assert(warnings.some((w) => /corrupt lock word/.test(w)), "the corruption is reported");
  } finally {
    console.warn = warn;
  }
});

test("Mutex: after close, and for a mutex placed with at() after its segment closes, every method gives ECLOSED", async () => {
  const name = uniqueName("mtx");
  const own = Mutex.create(name);
  const seg = SharedMemory.open(name);
  const placed = Mutex.at(seg, 0);
  const g = placed.lock();
  own.unlink();
  own.close();
  seg.close();
  for (const m of [own, placed]) {
    assertCode(() => m.tryLock(), "ECLOSED");
    assertCode(() => m.lock({ timeout: 10 }), "ECLOSED");
    await assertRejectsCode(m.lockAsync({ timeout: 10 }), "ECLOSED");
    assertCode(() => m.recoveries, "ECLOSED");
    assertCode(() => m.handle(), "ECLOSED");
  }
  assertCode(() => g.unlock(), "ECLOSED");
  placed.close();
});

test("Mutex.open of a segment with a mutex header but fewer bytes than a mutex's fixed header gives EBADHDR", async () => {
  const { writeHeader, publishReady } = await import("../src/layout.ts");
  for (const size of [64, 128]) {
    const name = uniqueName("mtx");
    const seg = SharedMemory.create(name, size);
    try {
      writeHeader(seg.buffer, 0, "mutex", 64, size);
      publishReady(seg.buffer, 0);
      assertCode(() => Mutex.open(name), "EBADHDR");
    } finally {
      seg.unlink();
      seg.close();
    }
  }
});
