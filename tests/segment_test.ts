import process from "node:process";
import { assert, assertCode, assertEquals, assertThrows } from "./assert.ts";
import { ROOT, run, runPython, runScript, RUNTIME, runtimeCommand, RUNTIMES, test, uniqueName } from "./harness.ts";
import { Channel, SharedMemory, type SharedMemoryHandle } from "../mod.ts";
import { fillPattern, fnv1a, PY_HELPERS } from "./fixtures/segment_pattern.ts";

test("SharedMemory.create then open sees the same bytes", () => {
  const name = uniqueName("seg");
  using a = SharedMemory.create(name, 4096);
  a.bytes().set([1, 2, 3]);
  using b = SharedMemory.open("/" + name);
  assertEquals(Array.from(b.bytes(0, 3)), [1, 2, 3]);
  assertEquals(b.size, 4096);
  a.unlink();
});

test("SharedMemory.create throws EEXIST when the name is taken, and the message says what to do", () => {
  const name = uniqueName("seg");
  using a = SharedMemory.create(name, 4096);
  const rm = new RegExp(
    `Cannot create shared memory "${name}": the name is taken \\(EEXIST\\)\\. .*\`shmkit rm ${name}\``,
  );
  assertCode(() => SharedMemory.create(name, 10), "EEXIST", rm);
  // Every kind's create says the same (the usual cause: a segment left over from an earlier run).
  assertCode(() => Channel.create(name, { slots: 2, slotSize: 8 }), "EEXIST", /Cannot create channel .*shmkit rm/);
  const missing = /no such segment \(ENOENT\)\. Create it first, or check the name \(`shmkit ls`/;
  assertCode(() => SharedMemory.open(name + "-missing"), "ENOENT", missing);
  assertCode(() => Channel.open(name + "-missing"), "ENOENT", missing);
  a.unlink();
});

test("SharedMemory.close detaches views and is idempotent", () => {
  using a = SharedMemory.create(null, 4096);
  const v = a.view(Uint32Array);
  v[0] = 7;
  a.unlink();
  a.close();
  a.close();
  assert(a.closed);
  if (RUNTIME === "node" && !("transfer" in ArrayBuffer.prototype)) assertEquals(v[0], 0); // Node 20: zero pages
  else assertEquals(v.length, 0);
});

test("a child process of every runtime reads what this one wrote", async () => {
  using a = SharedMemory.create(null, 4096);
  a.bytes().set(new TextEncoder().encode("hi from " + RUNTIME));
  for (const rt of ["deno", "bun", "node"] as const) {
    const r = await runScript(rt, "tests/fixtures/read_segment.ts", { args: [JSON.stringify(a.handle())] });
    assertEquals(r.stdout.trim(), "hi from " + RUNTIME);
  }
  a.unlink();
  void ROOT;
});

// ---------------------------------------------------------------------------------------------
// Names, sizes, existence

const CHILD = "tests/fixtures/segment_child.ts";
const uid = (process as { getuid?: () => number }).getuid?.() ?? -1;

test("SharedMemory.exists and SharedMemory.unlink report whether the name exists", () => {
  const name = uniqueName("seg");
  assertEquals(SharedMemory.exists(name), false);
  assertEquals(SharedMemory.unlink(name), false);
  const a = SharedMemory.create(name, 4096);
  assertEquals(SharedMemory.exists(name), true);
  assertEquals(SharedMemory.exists("/" + name), true);
  assertEquals(SharedMemory.unlink("/" + name), true);
  assertEquals(SharedMemory.exists(name), false);
  assertEquals(SharedMemory.unlink(name), false);
  // Unlinking removes the name only: this mapping keeps working.
  a.bytes()[4095] = 9;
  assertEquals(a.bytes()[4095], 9);
  a.close();
});

test("SharedMemory.open throws ENOENT naming the segment when it does not exist", () => {
  const name = uniqueName("seg");
  assertCode(() => SharedMemory.open(name), "ENOENT", new RegExp(`Cannot open shared memory "${name}".*\\(ENOENT\\)`));
  assertCode(() => SharedMemory.open(name, { readOnly: true }), "ENOENT");
});

test("SharedMemory rejects empty, '/', inner '/', NUL and over-long names with EINVAL", () => {
  const bad = ["", "/", "a/b", "/a/b", "a\0b", "x".repeat(256), "é".repeat(128), ".", ".."];
  for (const n of bad) {
    assertCode(() => SharedMemory.create(n, 4096), "EINVAL", /invalid name/);
    assertCode(() => SharedMemory.open(n), "EINVAL", /invalid name/);
    assertCode(() => SharedMemory.unlink(n), "EINVAL", /invalid name/);
    assertCode(() => SharedMemory.exists(n), "EINVAL", /invalid name/);
  }
  assertThrows(() => SharedMemory.create(42 as unknown as string, 4096), TypeError);
});

test("SharedMemory accepts a name of exactly 255 bytes", () => {
  const name = (uniqueName("long") + "-").padEnd(255, "z");
  using a = SharedMemory.create(name, 4096);
  assertEquals(a.name, name);
  assert(SharedMemory.exists(name));
  a.unlink();
});

test("SharedMemory.create and anonymous reject sizes 0, -1, 1.5 and NaN with EINVAL", () => {
  const name = uniqueName("seg");
  for (const size of [0, -1, 1.5, NaN, Infinity]) {
    assertCode(() => SharedMemory.create(name, size), "EINVAL", /size must be a positive integer/);
    assertCode(() => SharedMemory.anonymous(size), "EINVAL", /size must be a positive integer/);
  }
  assertEquals(SharedMemory.exists(name), false);
});

test("SharedMemory.create with a null name draws a fresh random name each time", () => {
  using a = SharedMemory.create(null, 4096);
  using b = SharedMemory.create(null, 4096);
  try {
    assert(a.name !== null && b.name !== null && a.name !== b.name);
    assert(SharedMemory.exists(a.name!) && SharedMemory.exists(b.name!));
  } finally {
    a.unlink();
    b.unlink();
  }
});

// ---------------------------------------------------------------------------------------------
// Modes and permissions

async function modeOf(name: string): Promise<string> {
  const r = await run(["stat", "-c", "%a", `/dev/shm/${name}`]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.trim();
}

test("SharedMemory.create makes mode 0600 under umask 000 and umask 077", async () => {
  for (const umask of ["000", "077"]) {
    const name = uniqueName("mode");
    try {
      const r = await run([
        "sh",
        "-c",
        `umask ${umask}; exec "$@"`,
        "sh",
        ...runtimeCommand(RUNTIME, CHILD),
        "create",
        name,
        "4096",
      ]);
      assertEquals(r.stdout.trim(), "created", r.stderr);
      assertEquals(await modeOf(name), "600", `umask ${umask}`);
    } finally {
      SharedMemory.unlink(name);
    }
  }
});

test("SharedMemory.create applies the mode option exactly whatever the umask", async () => {
  for (const [umask, mode] of [["077", "640"], ["077", "644"], ["000", "640"], ["022", "644"]]) {
    const name = uniqueName("mode");
    try {
      const r = await run([
        "sh",
        "-c",
        `umask ${umask}; exec "$@"`,
        "sh",
        ...runtimeCommand(RUNTIME, CHILD),
        "create",
        name,
        "4096",
        mode,
      ]);
      assertEquals(r.stdout.trim(), "created", r.stderr);
      assertEquals(await modeOf(name), mode, `umask ${umask}, mode ${mode}`);
    } finally {
      SharedMemory.unlink(name);
    }
  }
  // In this process too (umask of the test runner).
  const name = uniqueName("mode");
  using a = SharedMemory.create(name, 4096, { mode: 0o640 });
  assertEquals(await modeOf(name), "640");
  a.unlink();
  assertThrows(() => SharedMemory.create(uniqueName("mode"), 4096, { mode: 0o1000 }), RangeError);
});

// Root bypasses file modes: the opener must run as another user (setpriv), or, when the tests do
// not run as root, the owner is locked out by mode 0.
const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const nobodyEnv = { HOME: "/tmp", DENO_DIR: "/tmp/shmkit-test-deno-dir-65534", BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" };
let eaccesSkip: string | false = false;
if (uid === 0) {
  const cmd = runtimeCommand(RUNTIME, CHILD);
  const script = cmd[cmd.length - 1];
  const probe = await run([
    ...nobody,
    "sh",
    "-c",
    'command -v "$1" >/dev/null && test -r "$2" && test -r "$3"',
    "sh",
    cmd[0],
    script,
    `${ROOT}build/libshmkit.so`,
  ])
    .catch((e: Error) => ({ code: -1, stderr: e.message, stdout: "", signal: null }));
  if (probe.code !== 0) {
    eaccesSkip = `cannot run ${RUNTIME} as uid 65534 with setpriv (${probe.stderr.trim() || `exit ${probe.code}`})`;
  }
}

test("SharedMemory.open throws EACCES for a segment the caller may not read", async () => {
  const name = uniqueName("acc");
  if (uid === 0) {
    using a = SharedMemory.create(name, 4096); // 0600, owned by root
    try {
      const r = await run([...nobody, ...runtimeCommand(RUNTIME, CHILD), "open", name], { env: nobodyEnv });
      assertEquals(r.stdout.trim(), "open=EACCES openro=EACCES exists=true", r.stderr);
      assertEquals(r.code, 0);
    } finally {
      a.unlink();
    }
  } else {
    using a = SharedMemory.create(name, 4096, { mode: 0 });
    try {
      assertCode(() => SharedMemory.open(name), "EACCES", new RegExp(`"${name}"`));
      assertCode(() => SharedMemory.open(name, { readOnly: true }), "EACCES");
      assertEquals(SharedMemory.exists(name), true);
    } finally {
      a.unlink();
    }
  }
}, { skip: eaccesSkip });

// ---------------------------------------------------------------------------------------------
// Across processes, runtimes and Python

test("data written by each runtime is read by each runtime (all 9 ordered pairs)", async () => {
  for (const writer of RUNTIMES) {
    for (const reader of RUNTIMES) {
      const name = uniqueName("pair");
      const seed = Math.floor(Math.random() * 256);
      try {
        const w = await runScript(writer, CHILD, { args: ["write", name, String(65536 + 123), String(seed)] });
        const { handle, sum } = JSON.parse(w.stdout) as { handle: { name: string; size: number }; sum: string };
        assertEquals(handle.name, name);
        assertEquals(handle.size, 65536 + 123);
        const r = await runScript(reader, CHILD, { args: ["verify", JSON.stringify(handle), sum, String(seed)] });
        assertEquals(r.stdout.trim(), `ok ${sum}`, `${writer} -> ${reader}`);
        // And this process agrees.
        using seg = SharedMemory.open(name);
        assertEquals(fnv1a(seg.bytes()), sum);
      } finally {
        SharedMemory.unlink(name);
      }
    }
  }
});

const PY_UNTRACK = `
import sys
from multiprocessing import shared_memory, resource_tracker
KW = {"track": False} if sys.version_info >= (3, 13) else {}
def untrack(shm):
    if sys.version_info < (3, 13):
        resource_tracker.unregister(shm._name, "shared_memory")
`;

test("a segment Python creates is read here byte for byte, and Python does not unlink it", async () => {
  const name = uniqueName("py");
  const size = 10000;
  const seed = 77;
  try {
    await runPython(
      PY_UNTRACK + PY_HELPERS + `
name, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
shm = shared_memory.SharedMemory(name=name, create=True, size=size, **KW)
untrack(shm)
shm.buf[:size] = pattern(size, seed)
shm.close()
`,
      { args: [name, String(size), String(seed)] },
    );
    using seg = SharedMemory.open(name);
    assertEquals(seg.size, size);
    const expected = new Uint8Array(size);
    fillPattern(expected, seed);
    assertEquals(fnv1a(seg.bytes()), fnv1a(expected));
    assertEquals(seg.bytes(size - 5), expected.subarray(size - 5));
  } finally {
    assertEquals(SharedMemory.unlink(name), true); // still there after Python exited
  }
});

test("Python reads a segment created here and its writes are seen here", async () => {
  const name = uniqueName("py");
  using seg = SharedMemory.create(name, 8192);
  try {
    fillPattern(seg.bytes(), 5);
    const before = `8192 ${fnv1a(seg.bytes())} ${
      Array.from(seg.bytes(0, 4), (x) => x.toString(16).padStart(2, "0")).join("")
    }`;
    const r = await runPython(
      PY_UNTRACK + PY_HELPERS + `
name = sys.argv[1]
shm = shared_memory.SharedMemory(name=name, **KW)
untrack(shm)
print(shm.size, fnv1a(bytes(shm.buf)), bytes(shm.buf[:4]).hex())
shm.buf[8000:8005] = b"hello"
shm.close()
`,
      { args: [name] },
    );
    assertEquals(r.stdout.trim(), before);
    assertEquals(new TextDecoder().decode(seg.bytes(8000, 5)), "hello");
    assert(SharedMemory.exists(name));
  } finally {
    seg.unlink();
  }
});

test("an anonymous segment is shared with a child of each runtime by its handle", async () => {
  using seg = SharedMemory.anonymous(4096);
  assertEquals(seg.name, null);
  const handle = JSON.parse(JSON.stringify(seg.handle()));
  assertEquals(handle.kind, "shmkit.shm");
  for (const rt of RUNTIMES) {
    const text = `written by ${rt} for ${RUNTIME}`;
    await runScript(rt, CHILD, { args: ["anon-write", JSON.stringify(handle), text] });
    assertEquals(new TextDecoder().decode(seg.bytes(0, text.length)), text);
  }
});

test("SharedMemory.attach of an anonymous handle whose process is gone throws ENOENT", () => {
  using seg = SharedMemory.anonymous(4096);
  const h = { ...seg.handle(), startTime: 1 }; // same pid, another start time: a recycled pid
  assertCode(() => SharedMemory.attach(h), "ENOENT", /has exited/);
  assertCode(
    () => SharedMemory.attach({ ...seg.handle(), kind: "shmkit.ring" } as unknown as SharedMemoryHandle),
    "EINVAL",
  );
});

// ---------------------------------------------------------------------------------------------
// Lifetime and read-only mappings

test("SharedMemory after close: stale views are empty (zeros on Node 20), bytes/view/buffer throw ECLOSED", () => {
  const a = SharedMemory.create(null, 8192);
  a.unlink();
  const u8 = a.bytes();
  const dv = a.view(DataView, 4096, 8);
  const buf = a.buffer;
  u8[0] = 1;
  dv.setUint32(0, 0xdeadbeef);
  a.close();
  assert(a.closed);
  if (RUNTIME === "node" && !("transfer" in ArrayBuffer.prototype)) {
    assertEquals(u8[0], 0); // tombstoned: private zero pages
    assertEquals(dv.getUint32(0), 0);
    u8[1] = 5; // lands in the private zero page, never in the segment, never a crash
  } else {
    assertEquals(u8.length, 0);
    assertEquals(u8[0], undefined);
    assertEquals(buf.byteLength, 0);
    assertThrows(() => dv.getUint32(0), TypeError);
  }
  assertCode(() => a.bytes(), "ECLOSED", /is closed/);
  assertCode(() => a.view(Uint32Array), "ECLOSED");
  assertCode(() => a.buffer, "ECLOSED");
  a.close(); // idempotent
});

test("SharedMemory works with using: the segment is closed at the end of the block", () => {
  let outer: SharedMemory;
  {
    using a = SharedMemory.create(null, 4096);
    outer = a;
    a.unlink();
    assertEquals(a.closed, false);
  }
  assertEquals(outer.closed, true);
});

test("a write through a readOnly mapping neither crashes nor reaches the segment", () => {
  const name = uniqueName("ro");
  using a = SharedMemory.create(name, 8192);
  try {
    a.bytes().fill(0x11);
    using ro = SharedMemory.open(name, { readOnly: true });
    assertEquals(ro.readOnly, true);
    assertEquals(ro.bytes()[100], 0x11);
    ro.bytes().fill(0x22); // private copy-on-write pages
    new Uint32Array(ro.buffer)[10] = 0xffffffff;
    assertEquals(a.bytes()[100], 0x11);
    assertEquals(new Uint32Array(a.buffer)[10], 0x11111111);
    using again = SharedMemory.open(name);
    assertEquals(again.bytes()[8191], 0x11);
  } finally {
    a.unlink();
  }
});

// ---------------------------------------------------------------------------------------------
// Limits

const GiB = 2 ** 30;

test("a segment larger than 4 GiB is usable through windows (and through buffer on Deno)", () => {
  const size = RUNTIME === "deno" ? 5 * GiB : 4 * GiB + 2 * 4096;
  const seg = SharedMemory.create(null, size);
  seg.unlink(); // RAM is released when the mapping goes
  try {
    assertEquals(seg.size, size);
    if (RUNTIME === "deno") {
      const all = new Uint8Array(seg.buffer);
      assertEquals(all.length, size);
      all[size - 1] = 0xab;
      all[4 * GiB] = 0xcd;
      assertEquals(seg.bytes(size - 1, 1)[0], 0xab);
    } else {
      // Bun stops below 4 GiB per ArrayBuffer; koffi on Node aborts the process above 2^32 bytes.
      assertThrows(() => seg.buffer, (e: Error) => e instanceof RangeError && /ArrayBuffer limit/.test(e.message));
      assertThrows(() => seg.bytes(), RangeError);
      seg.bytes(size - 1, 1)[0] = 0xab;
      seg.bytes(4 * GiB, 1)[0] = 0xcd;
    }
    // Windows near the end and across the 4 GiB line.
    const tail = seg.view(DataView, size - 16, 16);
    tail.setFloat64(0, Math.PI, true);
    assertEquals(seg.view(Float64Array, size - 16, 1)[0], Math.PI);
    assertEquals(seg.bytes(size - 1, 1)[0], 0xab);
    const across = seg.bytes(4 * GiB - 3, 6);
    assertEquals(across[3], 0xcd);
    across.set([1, 2, 3, 4, 5, 6]);
    assertEquals(Array.from(seg.bytes(4 * GiB - 1, 2)), [3, 4]);
    assertEquals(seg.view(Uint32Array, 4 * GiB + 4096, 2).length, 2);
  } finally {
    seg.close();
  }
}, { timeout: 180_000 });

const ENOSPC_MOUNT = 'mount -t tmpfs -o size=1m shmkit-test /dev/shm && exec "$@"';
let enospcSkip: string | false = false;
{
  const probe = await run(["unshare", "-m", "sh", "-c", ENOSPC_MOUNT, "sh", "true"]).catch((e: Error) => ({
    code: -1,
    stderr: e.message,
    stdout: "",
    signal: null,
  }));
  if (probe.code !== 0) {
    enospcSkip = `cannot mount a 1 MiB tmpfs over /dev/shm in a mount namespace (${
      probe.stderr.trim() || `exit ${probe.code}`
    })`;
  }
}

test("SharedMemory.create on a full /dev/shm throws ENOSPC at create time, not SIGBUS later", async () => {
  const name = uniqueName("nospc");
  const r = await run([
    "unshare",
    "-m",
    "sh",
    "-c",
    ENOSPC_MOUNT,
    "sh",
    ...runtimeCommand(RUNTIME, CHILD),
    "enospc",
    name,
    String(4 * 2 ** 20),
  ]);
  assertEquals(r.signal, null, r.stderr);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(r.stdout.trim(), "ENOSPC", r.stderr);
  assertEquals(SharedMemory.exists(name), false); // the mount was private to the child
}, { skip: enospcSkip });
