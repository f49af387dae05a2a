// The Python package (python/shmkit) against the TypeScript implementation, across processes: rings
// with Python producers and consumers on both sides, mixed-language mpmc exactly-once, Mempool
// blocks passed between languages, a numpy array read through its handle, and Python victims
// SIGKILLed inside ring and mempool operations (csrc/ops.c fault points) leaving the objects
// working for this runtime. Runs on every leg: the TypeScript side is Deno, Bun or Node in turn.
import { assert, assertEquals } from "./assert.ts";
import { PYTHON, ROOT, run, type RunResult, RUNTIME, runtimeCommand, test, uniqueName } from "./harness.ts";
import { Mempool, Ring, type RingMode, SharedArray, SharedMemory } from "../mod.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";

const CHILD = `${ROOT}python/tests/child.py`;
const ENV = { PYTHONPATH: `${ROOT}python` };

const probe = await run([PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"], { env: ENV }).catch(
  () => undefined,
);
const noPython = probe?.stdout.trim() === "True" ? false : "python3 >= 3.10 is not installed";
const numpyProbe = noPython ? undefined : await run([PYTHON, "-c", "import numpy"]);
const noNumpy = noPython || (numpyProbe?.code === 0 ? false : "numpy is not installed");

function py(args: string[], timeout = 60_000): Promise<RunResult> {
  return run([PYTHON, CHILD, ...args], { env: ENV, timeout });
}

function ok(r: RunResult, what: string): RunResult {
  assert(r.code === 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

for (const mode of ["spsc", "mpmc"] as RingMode[]) {
  test(
    `Ring (${mode}): a Python producer feeds ${RUNTIME} and ${RUNTIME} feeds a Python consumer, in order`,
    async () => {
      const n = 3000;
      const name = uniqueName("pyring");
      using r = Ring.create(name, { capacity: 64, mode });
      try {
        const h = JSON.stringify(r.handle());
        const producer = py(["ring-produce", h, "0", String(n)]);
        const got: number[] = [];
        while (got.length < n) got.push(await r.dequeueAsync({ timeout: 30_000 }));
        ok(await producer, "python ring-produce");
        assertEquals(got, Array.from({ length: n }, (_, i) => i));
        r.close(); // release this runtime's roles before the Python consumer takes them (spsc)
        using back = Ring.attach(JSON.parse(h));
        const consumer = py(["ring-consume", h, String(n)]);
        for (let i = 0; i < n; i++) await back.enqueueAsync(1_000_000 + i, { timeout: 30_000 });
        back.close();
        const out = JSON.parse(ok(await consumer, "python ring-consume").stdout) as number[];
        assertEquals(out, Array.from({ length: n }, (_, i) => 1_000_000 + i));
      } finally {
        SharedMemory.unlink(name);
      }
    },
    { skip: noPython, timeout: 120_000 },
  );
}

test(
  `Ring (mpmc): Python and ${RUNTIME} producers and consumers together deliver every value exactly once`,
  async () => {
    const name = uniqueName("pympmc");
    using r = Ring.create(name, { capacity: 32, mode: "mpmc" });
    try {
      const h = JSON.stringify(r.handle());
      const per = 2000;
      const pyTake = 2500;
      const producers = [
        py(["ring-produce", h, "100000", String(per)]),
        py(["ring-produce", h, "200000", String(per)]),
      ];
      const consumer = py(["ring-consume", h, String(pyTake)]);
      const total = 3 * per;
      const mine: number[] = [];
      const produce = (async () => {
        for (let i = 0; i < per; i++) await r.enqueueAsync(300000 + i, { timeout: 30_000 });
      })();
      while (mine.length < total - pyTake) mine.push(await r.dequeueAsync({ timeout: 30_000 }));
      await produce;
      for (const p of producers) ok(await p, "python ring-produce");
      const theirs = JSON.parse(ok(await consumer, "python ring-consume").stdout) as number[];
      assertEquals(theirs.length, pyTake);
      assertEquals(r.tryDequeue(), undefined);
      const all = [...mine, ...theirs].sort((a, b) => a - b);
      const want = [100000, 200000, 300000].flatMap((b) => Array.from({ length: per }, (_, i) => b + i));
      assertEquals(all, want);
      // Each consumer sees each producer's values in order.
      for (const seen of [mine, theirs]) {
        for (const b of [100000, 200000, 300000]) {
          const s = seen.filter((v) => v >= b && v < b + per);
          assertEquals(s, [...s].sort((x, y) => x - y));
        }
      }
    } finally {
      SharedMemory.unlink(name);
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(`Mempool: blocks got and written by ${RUNTIME} are read and put back by Python`, async () => {
  const name = uniqueName("pypool");
  using pool = Mempool.create(name, { count: 16, blockSize: 256 });
  using r = Ring.create(uniqueName("pypoolring"), { capacity: 16, mode: "spsc" });
  try {
    const n = 400;
    const check = py(["pool-check", JSON.stringify(pool.handle()), JSON.stringify(r.handle()), String(n)]);
    for (let i = 0; i < n; i++) {
      const b = await pool.getAsync({ timeout: 30_000 });
      b.bytes.fill(b.index & 0xff, 0, 8);
      await r.enqueueAsync(b.index, { timeout: 30_000 });
    }
    const res = JSON.parse(ok(await check, "python pool-check").stdout);
    assertEquals(res.bad, 0);
    assertEquals(pool.available, 16);
    assertEquals(pool.validate(), []);
  } finally {
    SharedMemory.unlink(name);
    r.unlink();
  }
}, { skip: noPython, timeout: 120_000 });

test(`SharedArray: a 1 MiB numpy array written by Python is read by ${RUNTIME} through its handle`, async () => {
  const name = uniqueName("pyarr");
  try {
    const r = ok(await py(["array-write", name], 60_000), "python array-write");
    const h = JSON.parse(r.stdout.trim().split("\n")[0]);
    assertEquals(h.dataOffset, 128);
    using a = SharedArray.attach(h);
    assertEquals(a.dtype, "float64");
    assertEquals([...a.shape], [1024, 128]);
    const d = a.data as Float64Array;
    assertEquals(d.length, 131072);
    assertEquals(d[0], 0);
    assertEquals(d[131071], 131071 * 0.5);
    assertEquals(d[12345], 12345 * 0.5);
  } finally {
    SharedMemory.unlink(name);
  }
}, { skip: noNumpy, timeout: 90_000 });

test(`A ring created by Python attaches in ${RUNTIME} from the printed handle`, async () => {
  const name = uniqueName("pymade");
  try {
    const code = `
import json, sys
import shmkit
r = shmkit.Ring.create(sys.argv[1], 8, "mpsc")
r.enqueue_bulk([5, 6, 7])
print(json.dumps(r.handle()))
r.close()
`;
    const r = ok(await run([PYTHON, "-c", code, name], { env: ENV }), "python");
    using ring = Ring.attach(JSON.parse(r.stdout));
    assertEquals(ring.mode, "mpsc");
    assertEquals(ring.capacity, 8);
    assertEquals([ring.tryDequeue(), ring.tryDequeue(), ring.tryDequeue(), ring.tryDequeue()], [5, 6, 7, undefined]);
  } finally {
    SharedMemory.unlink(name);
  }
}, { skip: noPython });

for (const mode of ["mpmc", "spsc"] as RingMode[]) {
  test(
    `Ring (${mode}): a Python producer SIGKILLed inside an enqueue leaves the ring working for ${RUNTIME}`,
    async () => {
      for (const point of ["ring.enq.before_commit", "ring.enq.after_commit"]) {
        const name = uniqueName("pyvictim");
        using r = Ring.create(name, { capacity: 8, mode });
        try {
          const res = await py(["ring-produce", JSON.stringify(r.handle()), "0", "100", `${point}:4`]);
          assertEquals(res.signal, "SIGKILL", `${point}: ${res.stdout}${res.stderr}`);
          const got: number[] = [];
          for (let v = r.tryDequeue(); v !== undefined; v = r.tryDequeue()) got.push(v);
          assertEquals(got, Array.from({ length: point === "ring.enq.before_commit" ? 3 : 4 }, (_, i) => i));
          // This runtime takes over (the dead producer's spsc role included) and the ring works.
          for (let i = 0; i < 8; i++) assert(r.tryEnqueue(50 + i), `${point}: enqueue ${i} after the crash`);
          for (let i = 0; i < 8; i++) assertEquals(r.tryDequeue(), 50 + i);
          r.validate();
        } finally {
          SharedMemory.unlink(name);
        }
      }
    },
    { skip: noPython, timeout: 120_000 },
  );
}

test(
  `Ring (mpmc): ${RUNTIME} completes or rolls back the bulk call of a Python process SIGKILLed inside it`,
  async () => {
    const cases: [string, string, number[]][] = [
      ["enq", "ring.bulk.after_place:3", []],
      ["enq", "ring.bulk.after_commit:2", [500, 501, 502, 503, 504]],
      ["deq", "ring.bulk.after_claim:2", [10, 11, 12, 13]],
      ["deq", "ring.bulk.after_take:1", [13]],
    ];
    for (const [side, point, want] of cases) {
      const name = uniqueName("pybulk");
      using r = Ring.create(name, { capacity: 16, mode: "mpmc" });
      try {
        if (side === "deq") assert(r.enqueueBulk([10, 11, 12, 13]));
        const n = side === "enq" ? "5" : "3";
        const res = await py(["ring-bulk", JSON.stringify(r.handle()), side, n, point]);
        assertEquals(res.signal, "SIGKILL", `${point}: ${res.stdout}${res.stderr}`);
        const out = new Uint32Array(16);
        const k = r.dequeueBurst(out); // meets the dead holder's PENDING/CLAIMED slots: recovers them
        assertEquals(Array.from(out.subarray(0, k)), want, point);
        assert(r.enqueueBulk([1, 2, 3]), `${point}: the bulk lock is free again`);
        assertEquals(r.dequeueBulk(out, 3), 3);
        r.validate();
      } finally {
        SharedMemory.unlink(name);
      }
    }
  },
  { skip: noPython, timeout: 120_000 },
);

test(`Mempool: a Python process SIGKILLed inside get/put loses no block for ${RUNTIME}`, async () => {
  for (const point of ["mempool.get.after_claim", "mempool.put.before_release", "mempool.claim.after_identity"]) {
    const name = uniqueName("pypoolvictim");
    using pool = Mempool.create(name, { count: 4, blockSize: 64, maxProcesses: 2 });
    try {
      const res = await py([
        "pool-fault",
        JSON.stringify(pool.handle()),
        `${point}:${point.includes("claim.") ? 1 : 3}`,
      ]);
      assertEquals(res.signal, "SIGKILL", `${point}: ${res.stdout}${res.stderr}`);
      pool.reclaim();
      assertEquals(pool.available, 4, point);
      const got = [pool.get({ timeout: 1000 }), pool.get({ timeout: 1000 }), pool.get({ timeout: 1000 })];
      for (const b of got) pool.put(b);
      assertEquals(pool.validate(), []);
    } finally {
      SharedMemory.unlink(name);
    }
  }
}, { skip: noPython, timeout: 120_000 });

test(`A ${RUNTIME} victim SIGKILLed inside ring and mempool operations leaves them working for Python`, async () => {
  const victim = (args: string[], fault: string) =>
    run([...runtimeCommand(RUNTIME, "tests/fixtures/py_ts_victim.ts"), ...args], {
      env: { SHMKIT_FAULT: fault },
      timeout: 60_000,
    });
  const cases: [RingMode, string, string, number[]][] = [
    ["spsc", "ring-enq", "ring.enq.before_commit:3", [500, 501]],
    ["spsc", "ring-enq", "ring.enq.after_commit:3", [500, 501, 502]],
    ["mpmc", "ring-enq", "ring.enq.after_commit:3", [500, 501, 502]],
    ["mpmc", "ring-bulk", "ring.bulk.after_place:2", []],
    ["mpmc", "ring-bulk", "ring.bulk.after_commit:1", [500, 501, 502, 503]],
  ];
  for (const [mode, cmd, fault, want] of cases) {
    const name = uniqueName("tsvictim");
    using r = Ring.create(name, { capacity: 8, mode });
    try {
      const h = JSON.stringify(r.handle());
      const res = await victim([cmd, h, "4"], fault);
      assertEquals(res.signal, "SIGKILL", `${fault}: ${res.stdout}${res.stderr}`);
      r.close(); // Python is the only live peer now (and takes the dead producer's role in spsc)
      const code = `
import json, sys
import shmkit
r = shmkit.Ring.attach(json.loads(sys.argv[1]))
got = r.dequeue_burst(16)
ok = r.enqueue_bulk([1, 2, 3]) and r.dequeue_burst(16) == [1, 2, 3]
print(json.dumps({"got": got, "ok": ok}))
`;
      const out = JSON.parse(ok(await run([PYTHON, "-c", code, h], { env: ENV }), `python after ${fault}`).stdout);
      assertEquals(out.got, want, `${mode} ${fault}`);
      assertEquals(out.ok, true, `${mode} ${fault}`);
    } finally {
      SharedMemory.unlink(name);
    }
  }
  for (const fault of ["mempool.get.after_claim:3", "mempool.put.before_release:2", "mempool.claim.after_identity:1"]) {
    const name = uniqueName("tsvictimpool");
    using pool = Mempool.create(name, { count: 4, blockSize: 64, maxProcesses: 2 });
    try {
      const h = JSON.stringify(pool.handle());
      const res = await victim(["pool", h], fault);
      assertEquals(res.signal, "SIGKILL", `${fault}: ${res.stdout}${res.stderr}`);
      const code = `
import json, sys
import shmkit
p = shmkit.Mempool.attach(json.loads(sys.argv[1]))
freed = p.reclaim()
blocks = [p.get(timeout=1) for _ in range(4)]
for b in blocks:
    p.put(b)
print(json.dumps({"freed": freed, "available": p.available}))
`;
      const out = JSON.parse(ok(await run([PYTHON, "-c", code, h], { env: ENV }), `python after ${fault}`).stdout);
      assertEquals(out.available, 4, fault);
      assert(out.freed <= 1, `${fault}: freed ${out.freed}`);
    } finally {
      SharedMemory.unlink(name);
    }
  }
}, { skip: noPython, timeout: 180_000 });

test(`Anonymous memory: a ${RUNTIME} memfd segment and a ring placed in it attach in Python by handle`, async () => {
  using seg = SharedMemory.anonymous(1 << 16);
  seg.bytes(0, 5).set(new TextEncoder().encode("hello"));
  using r = Ring.init(seg, 4096, { capacity: 4, mode: "mpmc" });
  r.tryEnqueue(99);
  const code = `
import json, sys
import shmkit
s = shmkit.attach(json.loads(sys.argv[1]))
r = shmkit.attach(json.loads(sys.argv[2]))
print(json.dumps({"text": bytes(s.buf[:5]).decode(), "v": r.try_dequeue()}))
s.buf[5] = 33
r.try_enqueue(7)
`;
  const out = JSON.parse(
    ok(
      await run([PYTHON, "-c", code, JSON.stringify(seg.handle()), JSON.stringify(r.handle())], { env: ENV }),
      "python",
    ).stdout,
  );
  assertEquals(out, { text: "hello", v: 99 });
  assertEquals(seg.bytes()[5], 33);
  assertEquals(r.tryDequeue(), 7);
}, { skip: noPython });

function pySnippets(): { file: string; line: number; code: string }[] {
  const out: { file: string; line: number; code: string }[] = [];
  for (const file of ["README.md", "docs/python.md"]) {
    const lines = readFileSync(`${ROOT}${file}`, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!/^```py\s*$/.test(lines[i])) continue;
      const start = i + 1;
      while (++i < lines.length && !lines[i].startsWith("```"));
      out.push({ file, line: start, code: lines.slice(start, i).join("\n") });
    }
  }
  return out;
}

test(
  "`pip install ./python` into a fresh venv, then the README's and docs/python.md's Python examples run",
  async () => {
    const snippets = pySnippets();
    assert(snippets.some((s) => s.file === "README.md"), "README.md has a ```py example");
    const dir = mkdtempSync(`${tmpdir()}/shmkit-pip-`);
    try {
      // --system-site-packages: numpy (and the build backend's mirror settings) as the user has them.
      ok(await run([PYTHON, "-m", "venv", "--system-site-packages", `${dir}/venv`]), "python3 -m venv");
      const pip = await run([`${dir}/venv/bin/pip`, "install", "--quiet", `${ROOT}python`], { timeout: 400_000 });
      ok(pip, "pip install ./python");
      for (const s of snippets) {
        writeFileSync(`${dir}/example.py`, s.code);
        // Outside the checkout, without PYTHONPATH: the installed package finds the library itself.
        const r = await run(["sh", "-c", 'cd "$0" && exec "$1" example.py', dir, `${dir}/venv/bin/python`], {
          env: { PYTHONPATH: "" },
        });
        ok(r, `${s.file}:${s.line}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip: noNumpy || (RUNTIME === "deno" ? false : "runs once, from the Deno pass"), timeout: 600_000 },
);
