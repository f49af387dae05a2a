import { assert, assertCode, assertEquals, assertRejectsCode } from "./assert.ts";
import { prng, runScript, RUNTIMES, test, uniqueName } from "./harness.ts";
import { attach, Mutex, Semaphore, type SemaphoreHandle, SharedMemory, ShmError } from "../mod.ts";
import { SEMAPHORE, SEMAPHORE_MAX_VALUE } from "../src/semaphore.ts";
import process from "node:process";

const FIXTURE = "tests/fixtures/lock_child.ts";

test("Semaphore.create sets the count; tryAcquire takes units until 0", () => {
  const name = uniqueName("sem");
  using s = Semaphore.create(name, { value: 2 });
  using t = Semaphore.open(name);
  assertEquals(t.value, 2);
  assert(s.tryAcquire());
  assert(t.tryAcquire());
  assert(!s.tryAcquire());
  assertEquals(s.value, 0);
  t.release(2);
  assertEquals(s.value, 2);
  using u = attach(JSON.parse(JSON.stringify(s.handle()))) as Semaphore;
  assertEquals(u.value, 2);
  s.unlink();
});

test("Semaphore.acquire throws ETIMEDOUT at 0 and acquireAsync rejects with ETIMEDOUT", async () => {
  using s = Semaphore.create(uniqueName("sem"));
  s.unlink();
  assertCode(
    () => s.acquire({ timeout: 50 }),
    "ETIMEDOUT",
    /^Cannot acquire semaphore "[^"]+": timed out after 50 ms \(ETIMEDOUT\)$/,
  );
  assertCode(() => s.acquire({ timeout: 0 }), "ETIMEDOUT");
  await assertRejectsCode(s.acquireAsync({ timeout: 50 }), "ETIMEDOUT");
  assertEquals(s.value, 0);
});

test("Semaphore.release rejects bad counts and overflow without changing the count", () => {
  using s = Semaphore.create(uniqueName("sem"), { value: SEMAPHORE_MAX_VALUE - 1 });
  s.unlink();
  for (const bad of [0, -1, 1.5, NaN]) {
    let threw = false;
    try {
      s.release(bad);
    } catch (e) {
      threw = e instanceof RangeError;
    }
    assert(threw, `release(${bad}) throws RangeError`);
  }
  let threw = false;
  try {
    s.release(2); // the count is shared state, not an argument: EOVERFLOW like POSIX sem_post
  } catch (e) {
    threw = e instanceof ShmError && e.code === "EOVERFLOW";
  }
  assert(threw, "release past the maximum count throws ShmError EOVERFLOW");
  s.release(1);
  assertEquals(s.value, SEMAPHORE_MAX_VALUE);
  let bad = false;
  try {
    Semaphore.create(uniqueName("sem"), { value: -1 });
  } catch (e) {
    bad = e instanceof RangeError;
  }
  assert(bad);
});

test("Semaphore.open throws EBADHDR for another kind and a corrupt count", () => {
  const name = uniqueName("sem");
  using m = Mutex.create(name);
  assertCode(() => Semaphore.open(name), "EBADHDR", /not a semaphore/);
  m.unlink();
  assertCode(() => Semaphore.open(name), "ENOENT", /^Cannot open semaphore "/);
  using seg = SharedMemory.create(null, 4096);
  using s = Semaphore.init(seg, 128, { value: 1 });
  new DataView(seg.buffer).setUint32(128 + SEMAPHORE.value, 0x80000000, true);
  assertCode(() => Semaphore.at(seg, 128), "EBADHDR", /corrupt count/);
  assertCode(() => s.tryAcquire(), "EBADHDR");
  new DataView(seg.buffer).setUint32(128 + SEMAPHORE.value, 1, true);
  assert(s.tryAcquire());
  seg.unlink();
});

test("Semaphore.acquireAsync resolves on release without blocking the event loop, and aborts with signal.reason", async () => {
  using s = Semaphore.create(uniqueName("sem"));
  s.unlink();
  let ticked = false;
  setTimeout(() => {
    ticked = true;
    s.release();
  }, 30);
  await s.acquireAsync({ timeout: 10_000 });
  assert(ticked);
  assertEquals(s.value, 0);
  const ac = new AbortController();
  const reason = new Error("enough");
  const p = s.acquireAsync({ signal: ac.signal });
  setTimeout(() => ac.abort(reason), 20);
  let got: unknown;
  try {
    await p;
  } catch (e) {
    got = e;
  }
  assert(got === reason);
  s.release();
  assertEquals(s.value, 1, "the aborted wait took nothing");
});

test("Semaphore.close is idempotent, handle() names the segment, stale use throws ECLOSED", () => {
  const s = Semaphore.create(uniqueName("sem"), { value: 1 });
  const h: SemaphoreHandle = s.handle();
  assertEquals(h.kind, "shmkit.semaphore");
  assertEquals(h.segment.name, h.name);
  s.unlink();
  s.close();
  s.close();
  assertCode(() => s.tryAcquire(), "ECLOSED");
  assertCode(() => s.release(), "ECLOSED");
});

test("Semaphore never admits more than its count across Deno, Bun and Node children, and ends where it began", async () => {
  const K = 2;
  using s = Semaphore.create(uniqueName("sem"), { value: K });
  using data = SharedMemory.create(uniqueName("semd"), 64);
  const d = data.view(Int32Array);
  const n = 150;
  const jobs = [...RUNTIMES, ...RUNTIMES].map((rt, i) =>
    runScript(rt, FIXTURE, {
      args: ["sem", JSON.stringify({ sem: s.handle(), data: data.handle(), n, async: i >= 3 })],
      timeout: 90_000,
    })
  );
  await Promise.all(jobs);
  assertEquals(d[2], n * jobs.length, "every acquire completed");
  assertEquals(d[0], 0);
  assert(d[1] >= 1 && d[1] <= K, `at most ${K} inside at once (saw ${d[1]})`);
  assertEquals(s.value, K, "no unit lost or duplicated");
  s.unlink();
  data.unlink();
});

test("Semaphore conserves units between producer and consumer processes of mixed runtimes", async () => {
  const seed = Number(process.env.SHMKIT_SEED ?? Date.now() % 1e9);
  const rand = prng(seed);
  using s = Semaphore.create(uniqueName("sem"));
  using data = SharedMemory.create(uniqueName("semd"), 64);
  const d = data.view(Int32Array);
  // Three producers release random batches; three consumers take fixed shares of the total.
  const batches = RUNTIMES.map(() => Array.from({ length: 40 }, () => 1 + Math.floor(rand() * 5)));
  const total = batches.flat().reduce((a, b) => a + b, 0);
  const extra = 7; // left over at the end
  const shares = [Math.floor((total - extra) / 3), Math.floor((total - extra) / 3)];
  shares.push(total - extra - shares[0] - shares[1]);
  try {
    const consumers = RUNTIMES.map((rt, i) =>
      runScript(rt, FIXTURE, {
        args: ["consume", JSON.stringify({ sem: s.handle(), data: data.handle(), take: shares[i], async: i === 1 })],
        timeout: 90_000,
      })
    );
    const producers = RUNTIMES.map((_rt, i) =>
      runScript(RUNTIMES[(i + 1) % 3], FIXTURE, {
        args: ["produce", JSON.stringify({ sem: s.handle(), data: data.handle(), units: batches[i] })],
        timeout: 90_000,
      })
    );
    await Promise.all([...consumers, ...producers]);
    assertEquals(d[0], total, "every unit released was counted");
    assertEquals(d[1], total - extra, "every consumer got its share");
    assertEquals(s.value, extra, "released - acquired remains");
  } catch (e) {
    console.error(`semaphore conservation seed ${seed}`);
    throw e;
  } finally {
    s.unlink();
    data.unlink();
  }
});

test("Semaphore: after close, and for one placed with at() after its segment closes, every method gives ECLOSED", async () => {
  const name = uniqueName("sem");
  const own = Semaphore.create(name, { value: 1 });
  const seg = SharedMemory.open(name);
  const placed = Semaphore.at(seg, 0);
  own.unlink();
  own.close();
  seg.close();
  for (const s of [own, placed]) {
    assertCode(() => s.value, "ECLOSED");
    assertCode(() => s.tryAcquire(), "ECLOSED");
    assertCode(() => s.acquire({ timeout: 10 }), "ECLOSED");
    await assertRejectsCode(s.acquireAsync({ timeout: 10 }), "ECLOSED");
    assertCode(() => s.release(), "ECLOSED");
    assertCode(() => s.handle(), "ECLOSED");
    s.close();
  }
});

test("Semaphore.open of a segment with a semaphore header but too few bytes gives EBADHDR", async () => {
  const { writeHeader, publishReady } = await import("../src/layout.ts");
  const name = uniqueName("sem");
  const seg = SharedMemory.create(name, 64);
  try {
    writeHeader(seg.buffer, 0, "semaphore", 64, 64);
    publishReady(seg.buffer, 0);
    assertCode(() => Semaphore.open(name), "EBADHDR");
  } finally {
    seg.unlink();
    seg.close();
  }
});
