// Hostile handles: a handle is JSON from another process, so attach() of a malformed one must give a
// ShmError (EINVAL for the handle itself; ENOENT, EBADHDR or EACCES for what it names), never a raw
// TypeError or RangeError from a name, a dtype, a shape or a pid/fd the FFI layer refuses.
// Found by fuzzing handles (2026-12-02): a name that was not a string, a dtype outside the list and a
// raw array's impossible shape gave TypeError/RangeError, an fd of -0 gave Deno's "Invalid FFI i32
// type", and an fd naming a socket gave ShmError "E6" (ENXIO) instead of EINVAL.
import { assert, assertCode } from "./assert.ts";
import { prng, test, uniqueName } from "./harness.ts";
import {
  attach,
  Channel,
  Condition,
  MappedFile,
  Mempool,
  MessageLog,
  Mutex,
  Ring,
  Semaphore,
  SharedArray,
  SharedHeap,
  SharedMemory,
  ShmError,
} from "../mod.ts";
import { createServer } from "node:net";
import { readdirSync, readlinkSync } from "node:fs";

type Attach = (h: unknown) => { close(): void };

const VALUES: unknown[] = [
  -1,
  -0,
  0,
  1,
  3,
  1.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  1e300,
  NaN,
  Infinity,
  "",
  "x",
  "0",
  "../etc/passwd",
  "a/b",
  null,
  undefined,
  true,
  {},
  [],
  [1, 2],
  [-1],
  [1.5],
  ["a"],
  [2 ** 40, 2 ** 40],
  { a: 1 },
  "shmkit.shm",
];

/** 32-bit integers from the harness's seeded PRNG. */
function words(seed: number): () => number {
  const next = prng(seed);
  return () => Math.floor(next() * 2 ** 32);
}

function mutate(h: unknown, rnd: () => number, depth = 0): unknown {
  if (h === null || typeof h !== "object" || Array.isArray(h)) return rnd() % 2 ? VALUES[rnd() % VALUES.length] : h;
  const o = { ...(h as Record<string, unknown>) };
  const keys = Object.keys(o);
  const k = keys[rnd() % keys.length];
  const r = rnd() % 10;
  if (r === 0) delete o[k];
  else if (r === 1) o[`extra${rnd() % 3}`] = VALUES[rnd() % VALUES.length];
  else if (typeof o[k] === "object" && o[k] !== null && depth < 2) o[k] = mutate(o[k], rnd, depth + 1);
  else o[k] = VALUES[rnd() % VALUES.length];
  return o;
}

function tryAttach(fn: Attach, h: unknown): string {
  try {
    fn(h).close();
    return "ok";
  } catch (e) {
    if (e instanceof ShmError && /^E[A-Z]+$/.test(e.code)) return e.code;
    const x = e as Error;
    return `${x?.name}: ${x?.message}`;
  }
}

test("attach() of a mutated handle of every kind gives a ShmError with an errno name, never another exception", () => {
  const tag = uniqueName("hdl");
  const anon = SharedMemory.anonymous(4096);
  const made: [string, Attach, { handle(): unknown; close(): void; unlink?(): void }][] = [
    ["ring", (h) => Ring.attach(h as never), Ring.create(`${tag}-ring`, { capacity: 64, mode: "mpmc" })],
    ["mempool", (h) => Mempool.attach(h as never), Mempool.create(`${tag}-pool`, { count: 16, blockSize: 64 })],
    ["channel", (h) => Channel.attach(h as never), Channel.create(`${tag}-chan`, { slots: 16, slotSize: 64 })],
    ["anonymous channel", (h) => Channel.attach(h as never), Channel.create(null, { slots: 16, slotSize: 64 })],
    ["mutex", (h) => Mutex.attach(h as never), Mutex.create(`${tag}-mutex`)],
    ["semaphore", (h) => Semaphore.attach(h as never), Semaphore.create(`${tag}-sem`)],
    ["condition", (h) => Condition.attach(h as never), Condition.create(`${tag}-cond`)],
    ["array", (h) => SharedArray.attach(h as never), SharedArray.create(`${tag}-arr`, "float64", [4, 5])],
    ["raw array", (h) => SharedArray.attach(h as never), SharedArray.wrap(anon, "int32", [4, 8])],
    ["heap", (h) => SharedHeap.attach(h as never), SharedHeap.create(`${tag}-heap`, { size: 16384 })],
    [
      "log",
      (h) => MessageLog.attach(h as never),
      MessageLog.create(`${tag}-log`, { capacity: 4096, mode: "mpsc", maxRecord: 256 }),
    ],
    ["segment", (h) => SharedMemory.attach(h as never), SharedMemory.create(`${tag}-seg`, 4096)],
    ["anonymous segment", (h) => SharedMemory.attach(h as never), SharedMemory.anonymous(4096)],
    ["mapped file", (h) => MappedFile.attach(h as never), MappedFile.anonymous(4096)],
    ["attach()", (h) => attach(h as never) as { close(): void }, Ring.create(null, { capacity: 16 })],
  ];
  const bad: string[] = [];
  let oks = 0;
  let n = 0;
  try {
    const rnd = words(0x5eed1234);
    for (const [what, fn, obj] of made) {
      const h = JSON.parse(JSON.stringify(obj.handle()));
      assert(tryAttach(fn, h) === "ok", `${what}: its own handle attaches`);
      for (let c = 0; c < 250; c++) {
        let m: unknown = h;
        for (let t = 1 + (rnd() % 3); t > 0; t--) m = mutate(m, rnd);
        const r = tryAttach(fn, m);
        n++;
        if (r === "ok") oks++;
        else if (!/^E[A-Z]+$/.test(r) && bad.length < 20) bad.push(`${what} ${JSON.stringify(m)}: ${r}`);
      }
    }
  } finally {
    for (const [, , o] of made) {
      try {
        o.unlink?.();
      } catch { /* anonymous */ }
      o.close();
    }
    anon.close();
  }
  assert(bad.length === 0, `${bad.length} attach calls threw something else than a named ShmError:\n${bad.join("\n")}`);
  assert(oks > 0 && oks < n, `some mutations are harmless (extra fields) and most are not: ${oks} of ${n} attached`);
});

test("attach() names what is wrong in a malformed handle: name, dtype, shape, pid and fd", () => {
  using seg = SharedMemory.anonymous(4096);
  const h = seg.handle();
  const named = { ...h, name: 5 };
  assertCode(() => SharedMemory.attach(named as never), "EINVAL", /name/);
  // -0 is descriptor 0 (stdin here: not shared memory), and reaches the FFI layer as an integer.
  assertCode(() => SharedMemory.attach({ ...h, fd: -0 } as never), "EINVAL", /descriptor 0 there is not shared/);
  for (const fd of [-1, 1.5, 2 ** 31, NaN]) {
    assertCode(() => SharedMemory.attach({ ...h, fd } as never), "EINVAL", /valid pid, fd or size/);
  }
  // A pid no process can have: no such process (as a pid that has exited), never an FFI error.
  for (const pid of [0, -1, -0, 1.5, 2 ** 40, NaN]) {
    assertCode(() => SharedMemory.attach({ ...h, pid } as never), "ENOENT", /has exited/);
  }
  using mf = MappedFile.anonymous(4096);
  assertCode(() => MappedFile.attach({ ...mf.handle(), fd: -0 } as never), "EINVAL", /descriptor 0 there is not/);
  assertCode(() => MappedFile.attach({ ...mf.handle(), fd: 1.5 } as never), "EINVAL", /valid fd or length/);
  assertCode(() => MappedFile.attach({ ...mf.handle(), pid: -0 } as never), "ENOENT", /has exited/);
  const arr = SharedArray.zeros(null, "int16", [3]);
  try {
    assertCode(() => SharedArray.attach({ ...arr.handle(), dtype: "float128" } as never), "EINVAL", /dtype/);
    assertCode(() => SharedArray.attach({ ...arr.handle(), dtype: 7 } as never), "EINVAL", /dtype/);
  } finally {
    arr.unlink(); // a null name is a random one in /dev/shm
    arr.close();
  }
  using raw = SharedArray.wrap(seg, "int32", [4, 8]);
  for (const shape of [[-1], [1.5], [2 ** 40, 2 ** 40]]) {
    assertCode(() => SharedArray.attach({ ...raw.handle(), shape } as never), "EINVAL", /dimension|too large/);
  }
});

test("attach() of an anonymous handle whose fd names a socket of that process is EINVAL (not ENXIO)", async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  try {
    let fd = -1;
    for (const e of readdirSync("/proc/self/fd")) {
      try {
        if (readlinkSync(`/proc/self/fd/${e}`).startsWith("socket:")) {
          fd = Number(e);
          break;
        }
      } catch { /* closed meanwhile */ }
    }
    assert(fd >= 0, "a listening server holds a socket descriptor");
    using seg = SharedMemory.anonymous(4096);
    assertCode(() => SharedMemory.attach({ ...seg.handle(), fd } as never), "EINVAL", /not shared memory/);
    using mf = MappedFile.anonymous(4096);
    assertCode(() => MappedFile.attach({ ...mf.handle(), fd } as never), "EINVAL", /not a memory file/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
