import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { assert, assertCode, assertEquals, assertThrows } from "./assert.ts";
import { prng, runPython, runScript, RUNTIME, RUNTIMES, test } from "./harness.ts";
import { MappedFile, type MappedFileAccess, ShmError } from "../mod.ts";

const DIR = mkdtempSync(`${tmpdir()}/shmkit-test-mapped-`);
let fileNo = 0;
/** A fresh file in the test directory with `content`. */
function tempFile(content: Uint8Array | string = ""): string {
  const p = `${DIR}/f${fileNo++}.bin`;
  writeFileSync(p, content);
  return p;
}

// Remove the directory when the runner exits (Deno fires "unload", Node and Bun "exit").
const removeDir = () => rmSync(DIR, { recursive: true, force: true });
process.on("exit", removeDir);
(globalThis as { addEventListener?: (t: string, f: () => void) => void }).addEventListener?.("unload", removeDir);

const PAGE = 4096;
const enc = new TextEncoder();
const dec = new TextDecoder();

function initialContent(size: number, seed: number): Uint8Array {
  const rnd = prng(seed);
  const out = new Uint8Array(size);
  let i = 0;
  while (i < size) {
    const line = enc.encode(`line ${i} abc${Math.floor(rnd() * 10)} hello\n`);
    out.set(line.subarray(0, Math.min(line.length, size - i)), i);
    i += line.length;
    if (rnd() < 0.2 && i < size) out[i++] = Math.floor(rnd() * 256);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parity with Python's mmap: the same operations on two copies of a file, results compared.

type Op = (string | number | null)[];
type Outcome = unknown;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function runOps(m: MappedFile, ops: Op[]): Outcome[] {
  const out: Outcome[] = [];
  for (const op of ops) {
    try {
      const [name, a, b, c] = op;
      switch (name) {
        case "write":
          out.push(m.write(op.length > 2 ? enc.encode(a as string) : a as string));
          break;
        case "writeByte":
          m.writeByte(a as number);
          out.push(null);
          break;
        case "read":
          out.push(hex(op.length > 1 ? m.read(a as number | null) : m.read()));
          break;
        case "readByte":
          out.push(m.readByte());
          break;
        case "readLine":
          out.push(hex(m.readLine()));
          break;
        case "seek":
          m.seek(a as number, (["start", "current", "end"] as const)[b as number]);
          out.push(m.tell());
          break;
        case "tell":
          out.push(m.tell());
          break;
        case "find":
        case "rfind": {
          const needle = enc.encode(a as string);
          const f = name === "find" ? m.find.bind(m) : m.rfind.bind(m);
          out.push(
            b === undefined
              ? f(needle)
              : c === undefined
              ? f(a as string, b as number)
              : f(needle, b as number, c as number),
          );
          break;
        }
        case "move":
          m.move(a as number, b as number, c as number);
          out.push(null);
          break;
        case "flush":
          a === undefined ? m.flush() : m.flush(a as number, b as number);
          out.push(null);
          break;
        case "resize":
          m.resize(a as number);
          out.push(null);
          break;
        case "size":
          out.push(m.fileSize());
          break;
        case "len":
          out.push(m.length);
          break;
        default:
          throw new Error(`unknown op ${name}`);
      }
    } catch (e) {
      if (e instanceof RangeError) out.push(["err", "RangeError"]);
      else if (e instanceof TypeError) out.push(["err", "TypeError"]);
      else throw e;
    }
  }
  return out;
}

const PY_RUN_OPS = `
import json, mmap, sys
path, access, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
ops = json.loads(sys.stdin.read())
acc = {"read": mmap.ACCESS_READ, "write": mmap.ACCESS_WRITE, "copy": mmap.ACCESS_COPY}[access]
f = open(path, "r+b" if access == "write" else "rb")
m = mmap.mmap(f.fileno(), 0, access=acc, offset=offset)
out = []
for op in ops:
    name, args = op[0], op[1:]
    try:
        if name == "write": out.append(m.write(args[0].encode()))
        elif name == "writeByte": m.write_byte(args[0]); out.append(None)
        elif name == "read": out.append(m.read(*args).hex())
        elif name == "readByte": out.append(m.read_byte())
        elif name == "readLine": out.append(m.readline().hex())
        elif name == "seek": m.seek(args[0], args[1]); out.append(m.tell())
        elif name == "tell": out.append(m.tell())
        elif name in ("find", "rfind"):
            fn = m.find if name == "find" else m.rfind
            out.append(fn(args[0].encode(), *args[1:]))
        elif name == "move": m.move(*args); out.append(None)
        elif name == "flush": m.flush(*args); out.append(None)
        elif name == "resize": m.resize(args[0]); out.append(None)
        elif name == "size": out.append(m.size())
        elif name == "len": out.append(len(m))
        else: raise Exception("unknown op " + name)
    except (ValueError, OverflowError):
        out.append(["err", "RangeError"])
    except TypeError:
        out.append(["err", "TypeError"])
m.close()
f.close()
print(json.dumps(out))
`;

/** Runs `ops` on a MappedFile and on Python's mmap over two copies of `content`; compares all. */
async function parity(
  access: MappedFileAccess,
  content: Uint8Array,
  ops: Op[],
  what: string,
  offset = 0,
): Promise<void> {
  const mine = tempFile(content);
  const theirs = tempFile(content);
  const m = MappedFile.open(mine, { access, offset });
  let got: Outcome[];
  try {
    got = runOps(m, ops);
  } finally {
    m.close();
  }
  const r = await runPython(PY_RUN_OPS, { args: [theirs, access, String(offset)], input: JSON.stringify(ops) });
  const want = JSON.parse(r.stdout) as Outcome[];
  for (let i = 0; i < ops.length; i++) {
    assertEquals(
      got[i],
      want[i],
      `${what}: op ${i} ${JSON.stringify(ops[i])} gave ${JSON.stringify(got[i])}, Python ${JSON.stringify(want[i])}`,
    );
  }
  const a = readFileSync(mine);
  const b = readFileSync(theirs);
  assertEquals(a.length, b.length, `${what}: file sizes differ`);
  assert(Buffer.compare(a, b) === 0, `${what}: file contents differ`);
  if (access !== "write") assert(Buffer.compare(a, content) === 0, `${what}: access ${access} changed the file`);
}

const SCRIPTED: Op[] = [
  ["len"],
  ["size"],
  ["tell"],
  ["readLine"],
  ["readLine"],
  ["tell"],
  ["read", 5],
  ["read", -1],
  ["tell"],
  ["read", null],
  ["readByte"],
  ["seek", 0, 0],
  ["readByte"],
  ["seek", -1, 2],
  ["readByte"],
  ["readByte"],
  ["seek", 1, 1],
  ["seek", -5, 0],
  ["seek", 10, 0],
  ["seek", 5, 1],
  ["seek", -20, 1],
  ["seek", 0, 0],
  ["find", "hello"],
  ["find", "hello", 20],
  ["find", "hello", -100],
  ["find", "hello", 0, -8000],
  ["find", "nope", 0],
  ["find", "", 3],
  ["find", "", 3, 2],
  ["find", "", 100000],
  ["find", "line", 5, 4],
  ["seek", 30, 0],
  ["find", "line"],
  ["rfind", "hello"],
  ["rfind", "hello", 0],
  ["rfind", "hello", 0, 30],
  ["rfind", "", 0],
  ["rfind", "x", -2],
  ["rfind", "line", -50, -10],
  ["seek", 0, 0],
  ["write", "HELLO"],
  ["tell"],
  ["writeByte", 33],
  ["writeByte", 256],
  ["writeByte", -1],
  ["write", "héllo", "bytes"],
  ["seek", -3, 2],
  ["write", "toolong"],
  ["tell"],
  ["write", "end"],
  ["write", ""],
  ["writeByte", 1],
  ["write", "x"],
  ["move", 100, 0, 50],
  ["move", 0, 10, 40],
  ["move", 8000, 0, 500],
  ["move", -1, 0, 1],
  ["move", 0, 0, 0],
  ["flush"],
  ["flush", 0, 100],
  ["flush", 0, 100000],
  ["flush", 4096, 4096],
  ["seek", 0, 0],
  ["readLine"],
  ["read", 64],
  ["find", "HELLO", 0],
  ["rfind", "e", 0],
  ["resize", 10000],
  ["len"],
  ["size"],
  ["seek", 9990, 0],
  ["write", "0123456789"],
  ["seek", 0, 2],
  ["tell"],
  ["resize", 100],
  ["len"],
  ["size"],
  ["tell"],
  ["read"],
  ["readLine"],
  ["readByte"],
  ["write", ""],
  ["find", ""],
  ["rfind", ""],
  ["seek", 0, 1],
  ["seek", 0, 0],
  ["read"],
  ["resize", 4096],
  ["seek", 4000, 0],
  ["read", 10],
  ["size"],
];

for (const access of ["write", "copy", "read"] as const) {
  test(`MappedFile access "${access}" matches Python mmap on a scripted sequence`, async () => {
    await parity(access, initialContent(8192, 1), SCRIPTED, `scripted ${access}`);
  });
}

function randomOps(seed: number, count: number): Op[] {
  const rnd = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const words = ["line", "hello", "abc1", "\n", "e", "zz", "lo\nli", ""];
  let size = 8192;
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const k = int(0, 14);
    const idx = () => int(-size - 50, size + 50);
    if (k === 0) ops.push(["seek", int(-100, size + 100), int(0, 2) === 0 ? 0 : int(1, 2)]);
    else if (k === 1) ops.push(["seek", idx(), 0]);
    else if (k === 2) ops.push(["read", int(-2, 300)]);
    else if (k === 3) ops.push(["readByte"]);
    else if (k === 4) ops.push(["readLine"]);
    else if (k === 5) ops.push(["write", words[int(0, words.length - 1)].repeat(int(0, 5))]);
    else if (k === 6) ops.push(["writeByte", int(-1, 256)]);
    else if (k === 7 || k === 8) {
      const op: Op = [k === 7 ? "find" : "rfind", words[int(0, words.length - 1)]];
      const n = int(0, 2);
      if (n >= 1) op.push(idx());
      if (n >= 2) op.push(idx());
      ops.push(op);
    } else if (k === 9) ops.push(["move", int(-5, size), int(-5, size), int(-5, 600)]);
    else if (k === 10) ops.push(["flush"]);
    else if (k === 11) {
      const n = int(1, 12000);
      ops.push(["resize", n]);
      size = n; // only "write" resizes; elsewhere it throws and the bounds are merely loose
    } else if (k === 12) ops.push(["tell"]);
    else if (k === 13) ops.push(["len"]);
    else ops.push(["size"]);
  }
  return ops;
}

for (const access of ["write", "copy", "read"] as const) {
  test(`MappedFile access "${access}" matches Python mmap on 400 random operations`, async () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    try {
      await parity(access, initialContent(8192, seed), randomOps(seed, 400), `random ${access} seed ${seed}`);
    } catch (e) {
      console.error(`MappedFile random parity failed with seed ${seed}`);
      throw e;
    }
  });
}

test("MappedFile with a page offset matches Python mmap", async () => {
  await parity(
    "write",
    initialContent(3 * PAGE + 100, 9),
    [["len"], ["read", 20], ["find", "line", 0], ["seek", 0, 0], ["write", "at offset"], ["resize", PAGE], ["size"], [
      "len",
    ]],
    "offset",
    PAGE,
  );
});

// ---------------------------------------------------------------------------------------------
// Opening

test("MappedFile.open maps the whole file by default and a file: URL works too", () => {
  const p = tempFile("0123456789");
  using a = MappedFile.open(p);
  assertEquals(a.length, 10);
  assertEquals(a.access, "write");
  assertEquals(a.path, p);
  using b = MappedFile.open(new URL(`file://${p}`), { access: "read", length: 4 });
  assertEquals(dec.decode(b.read()), "0123");
  assertEquals(b.path, p);
});

test("MappedFile.open rejects what Python's mmap rejects, with clear errors", () => {
  const p = tempFile(new Uint8Array(2 * PAGE));
  const empty = tempFile();
  assertCode(() => MappedFile.open(`${DIR}/missing`), "ENOENT", /Cannot map file ".*missing": no such file/);
  assertCode(() => MappedFile.open(p, { offset: 1 }), "EINVAL", /not a multiple of the page size/);
  assertCode(() => MappedFile.open(p, { offset: 2 * PAGE }), "EINVAL", /offset/);
  assertCode(() => MappedFile.open(p, { offset: 3 * PAGE }), "EINVAL", /offset/);
  assertCode(() => MappedFile.open(p, { length: 2 * PAGE + 1 }), "EINVAL", /past the end/);
  assertCode(() => MappedFile.open(p, { offset: PAGE, length: PAGE + 1 }), "EINVAL", /past the end/);
  assertCode(() => MappedFile.open(empty), "EINVAL", /empty/);
  assertCode(() => MappedFile.open(DIR), "EISDIR");
  assertCode(() => MappedFile.open(DIR, { access: "read" }), "EINVAL", /not a regular file/);
  assertThrows(() => MappedFile.open(p, { offset: -PAGE }), RangeError);
  assertThrows(() => MappedFile.open(p, { length: 1.5 }), RangeError);
  assertThrows(() => MappedFile.open(p, { access: "rw" as MappedFileAccess }), TypeError);
  assertThrows(() => MappedFile.open(p, { access: "read", create: true }), TypeError);
  assertThrows(() => MappedFile.open(new URL("https://example.com/x")), TypeError);
});

test("MappedFile.open with create makes the file and grows a short one", () => {
  const p = `${DIR}/created.bin`;
  using a = MappedFile.open(p, { length: 5000, create: true });
  assertEquals(statSync(p).size, 5000);
  assertEquals(a.fileSize(), 5000);
  a.write("grown");
  a.close();
  using _b = MappedFile.open(p, { length: PAGE, offset: PAGE, create: true });
  assertEquals(statSync(p).size, 2 * PAGE);
  assertEquals(dec.decode(readFileSync(p).subarray(0, 5)), "grown");
});

// ---------------------------------------------------------------------------------------------
// Access modes

test('MappedFile access "read": raw stores stay private and write methods throw TypeError like Python', () => {
  const p = tempFile("original data\n");
  using m = MappedFile.open(p, { access: "read" });
  new Uint8Array(m.buffer).fill(0x41); // private copy-on-write page: no crash, file untouched
  m.bytes(0, 1)[0] = 0x42;
  assertEquals(m.bytes()[0], 0x42);
  assertEquals(dec.decode(readFileSync(p)), "original data\n");
  using other = MappedFile.open(p, { access: "read" });
  assertEquals(dec.decode(other.read()), "original data\n");
  assertThrows(
    () => m.write("x"),
    (e: Error) => e instanceof TypeError && /can't modify a readonly memory map/.test(e.message),
  );
  assertThrows(
    () => m.writeByte(1),
    (e: Error) => e instanceof TypeError && /can't modify a readonly memory map/.test(e.message),
  );
  assertThrows(
    () => m.move(0, 1, 1),
    (e: Error) => e instanceof TypeError && /can't modify a readonly memory map/.test(e.message),
  );
  assertThrows(
    () => m.resize(100),
    (e: Error) => e instanceof TypeError && /can't resize a readonly or copy-on-write/.test(e.message),
  );
  m.flush(); // a no-op, as in Python
});

test('MappedFile access "copy": writes are visible in the map, the file and other maps never change', async () => {
  const p = tempFile("copy me please\n");
  using shared = MappedFile.open(p);
  using c = MappedFile.open(p, { access: "copy" });
  c.write("COPY");
  c.move(10, 0, 4);
  c.flush();
  assertEquals(dec.decode(c.bytes()), "COPY me plCOPY\n");
  assertEquals(dec.decode(shared.bytes()), "copy me please\n");
  assertThrows(() => c.resize(100), TypeError);
  c.close();
  const r = await runPython("import sys; print(open(sys.argv[1], 'rb').read().decode(), end='')", { args: [p] });
  assertEquals(r.stdout, "copy me please\n");
});

test('MappedFile access "write": a write is seen at once by Python mmap of the same file', async () => {
  const p = tempFile(new Uint8Array(PAGE));
  using m = MappedFile.open(p);
  m.seek(100);
  m.write("shared bytes");
  m.flush(100, 12);
  const r = await runPython(
    `
import mmap, sys
f = open(sys.argv[1], "r+b"); m = mmap.mmap(f.fileno(), 0)
print(m[100:112].decode())
m[200:203] = b"py!"
m.close()`,
    { args: [p] },
  );
  assertEquals(r.stdout.trim(), "shared bytes");
  assertEquals(dec.decode(m.bytes(200, 3)), "py!");
});

// ---------------------------------------------------------------------------------------------
// Lifetime, resize, truncation

test("MappedFile.close detaches views (zeros on Node 20), methods throw ECLOSED, close twice is fine", () => {
  const p = tempFile("abcdef");
  const m = MappedFile.open(p);
  const v = m.bytes();
  m.close();
  m.close();
  assert(m.closed);
  if (RUNTIME === "node" && !("transfer" in ArrayBuffer.prototype)) assertEquals(v[0], 0);
  else assertEquals(v.length, 0);
  for (
    const f of [
      () => m.read(),
      () => m.tell(),
      () => m.seek(0),
      () => m.write("x"),
      () => m.find("a"),
      () => m.bytes(),
      () => m.buffer,
      () => m.fileSize(),
      () => m.flush(),
      () => m.resize(10),
    ]
  ) {
    assertCode(f, "ECLOSED", /mapped file ".*" .*is closed|: it is closed/);
  }
  assertEquals(dec.decode(readFileSync(p)), "abcdef");
});

test("MappedFile works with using: closed at the end of the block", () => {
  let outer: MappedFile;
  {
    using m = MappedFile.open(tempFile("x"));
    outer = m;
  }
  assert(outer.closed);
});

test("MappedFile.resize grows and shrinks file and mapping, old views detached, new views valid", () => {
  const p = tempFile("keep this prefix");
  const m = MappedFile.open(p);
  try {
    const old = m.bytes();
    m.resize(3 * PAGE + 7);
    assertEquals(statSync(p).size, 3 * PAGE + 7);
    assertEquals(m.length, 3 * PAGE + 7);
    if (RUNTIME === "node" && !("transfer" in ArrayBuffer.prototype)) assertEquals(old[0], 0); // tombstoned
    else assertEquals(old.length, 0);
    const now = m.bytes();
    assertEquals(now.length, 3 * PAGE + 7);
    assertEquals(dec.decode(now.subarray(0, 16)), "keep this prefix");
    assertEquals(now[3 * PAGE + 6], 0);
    now[3 * PAGE + 6] = 0x7f;
    m.resize(4);
    assertEquals(statSync(p).size, 4);
    assertEquals(dec.decode(m.read()), "keep");
    assertThrows(() => m.resize(0), RangeError);
    assertThrows(() => m.resize(-1), RangeError);
    assertEquals(statSync(p).size, 4); // a rejected resize never truncates (Python's resize(0) does, then faults)
  } finally {
    m.close();
  }
});

test("MappedFile methods throw EFAULT instead of SIGBUS when the file shrinks under the mapping", async () => {
  const p = tempFile(initialContent(3 * PAGE, 3));
  using m = MappedFile.open(p);
  await runPython("import os, sys; os.truncate(sys.argv[1], 100)", { args: [p] });
  assertEquals(m.length, 3 * PAGE);
  assertEquals(m.fileSize(), 100);
  assertEquals(m.readByte(), "l".charCodeAt(0)); // still backed
  m.seek(0);
  assertEquals(dec.decode(m.readLine()).startsWith("line 0"), true); // the newline is in the backed part
  const e1 = (() => {
    try {
      m.read();
    } catch (e) {
      return e;
    }
  })();
  assert(e1 instanceof ShmError && e1.code === "EFAULT" && /shrank to 100 bytes/.test(e1.message), String(e1));
  m.seek(2 * PAGE);
  assertCode(() => m.readByte(), "EFAULT");
  assertCode(() => m.write("x"), "EFAULT");
  assertCode(() => m.writeByte(1), "EFAULT");
  assertCode(() => m.readLine(), "EFAULT");
  assertCode(() => m.find("zzz", 0), "EFAULT");
  assertCode(() => m.rfind("zzz", 0), "EFAULT");
  assertCode(() => m.move(2 * PAGE, 0, 10), "EFAULT");
  m.resize(2 * PAGE); // growing the file back makes the range usable again
  m.seek(2 * PAGE - 1);
  assertEquals(m.readByte(), 0);
});

test("a file mapped here and in a child of each runtime shares its bytes both ways", async () => {
  const p = tempFile(new Uint8Array(PAGE));
  using m = MappedFile.open(p);
  m.write(`parent ${RUNTIME};`);
  let pos = m.tell();
  let expected = `parent ${RUNTIME};`;
  for (const rt of RUNTIMES) {
    const text = `child ${rt};`;
    const r = await runScript(rt, "tests/fixtures/mapped_child.ts", { args: [p, String(pos), text] });
    expected += text;
    assertEquals(r.stdout.trim(), expected, `${rt} child`);
    assertEquals(dec.decode(m.bytes(0, expected.length)), expected); // seen here at once (MAP_SHARED)
    pos += enc.encode(text).length;
  }
});

// Last: Bun's test runner fires neither "exit" nor "unload" for test files, so clean up here too.
test("MappedFile.seek takes Python's whence 0, 1, 2 as well as the names", () => {
  using f = MappedFile.open(tempFile(new Uint8Array(100)));
  assertEquals(f.seek(10, 0), 10);
  assertEquals(f.seek(5, 1), 15);
  assertEquals(f.seek(-5, 1), 10);
  assertEquals(f.seek(-1, 2), 99);
  assertEquals(f.seek(0, 2), 100);
  assertEquals(f.seek(3), 3);
  assertThrows(() => f.seek(101, 0), RangeError);
  assertThrows(() => f.seek(-101, 2), RangeError);
  assertThrows(() => f.seek(0, 3 as never), TypeError);
  assertThrows(() => f.seek(0, "START" as never), TypeError);
});

test("MappedFile.open with create sizes a new file, and leaves no file behind when it fails", () => {
  const p = `${DIR}/created-${fileNo++}.bin`;
  using f = MappedFile.open(p, { create: true, length: 3 * PAGE });
  assertEquals(f.length, 3 * PAGE);
  assertEquals(statSync(p).size, 3 * PAGE);
  // A new file that cannot be mapped (no length: empty) is removed again.
  const q = `${DIR}/created-${fileNo++}.bin`;
  assertCode(() => MappedFile.open(q, { create: true }), "EINVAL", /empty/);
  assert(!existsSync(q), "the empty file was left behind");
  // An existing file is never removed on failure.
  const r = tempFile("");
  assertCode(() => MappedFile.open(r, { create: true }), "EINVAL", /empty/);
  assert(existsSync(r));
});

test("MappedFile.open refuses a FIFO at once instead of blocking in open(2)", async () => {
  const p = `${DIR}/fifo-${fileNo++}`;
  const { spawnSync } = await import("node:child_process");
  assertEquals(spawnSync("mkfifo", [p]).status, 0);
  assertCode(() => MappedFile.open(p, { access: "read" }), "EINVAL", /not a regular file/);
  assertCode(() => MappedFile.open(p), "EINVAL", /not a regular file/);
  rmSync(p);
});

// A 1 MiB tmpfs: filling a mapping past the free space must fail up front (ENOSPC), not SIGBUS.
async function withSmallTmpfs(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const { spawnSync } = await import("node:child_process");
  const dir = mkdtempSync(`${tmpdir()}/shmkit-test-tmpfs-`);
  try {
    const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
    assertEquals(m.status, 0, `mount failed: ${m.stderr}`);
    try {
      await fn(dir);
    } finally {
      spawnSync("umount", [dir]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const canMount = await (async () => {
  if (process.platform !== "linux") return `a tmpfs mount needs Linux (this is ${process.platform})`;
  const { spawnSync } = await import("node:child_process");
  const dir = mkdtempSync(`${tmpdir()}/shmkit-test-tmpfs-probe-`);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
  const ok = m.status === 0;
  if (ok) spawnSync("umount", [dir]);
  rmSync(dir, { recursive: true, force: true });
  return ok ? false : `cannot mount a small tmpfs (needs root): ${String(m.stderr).trim() || m.status}`;
})();

test("MappedFile on a full tmpfs: create and resize fail with ENOSPC up front instead of SIGBUS", async () => {
  await withSmallTmpfs(async (dir) => {
    const big = `${dir}/big.bin`;
    // Before the fix this succeeded and the child below died of SIGBUS while filling it.
    assertCode(() => MappedFile.open(big, { create: true, length: 2 * 1024 * 1024 }), "ENOSPC");
    assert(!existsSync(big), "a file that could not be allocated was left behind");
    using f = MappedFile.open(`${dir}/half.bin`, { create: true, length: 512 * 1024 });
    f.write(new Uint8Array(512 * 1024).fill(1)); // every page is backed: no SIGBUS
    assertCode(() => f.resize(2 * 1024 * 1024), "ENOSPC");
    assertEquals(f.length, 512 * 1024, "the old mapping stays");
    assertEquals(f.fileSize(), 512 * 1024, "the file got its old size back");
    f.seek(0);
    assertEquals(f.read(4)[3], 1);
    // A child filling a fresh mapping of the free space, in this runtime: must exit 0.
    await runScript(RUNTIME, "tests/fixtures/mapped_child.ts", { args: [`${dir}/half.bin`, "10", "still alive"] });
  });
}, { skip: canMount });

test("MappedFile.anonymous is zero-filled memory shared with a child of each runtime through its handle", async () => {
  using m = MappedFile.anonymous(PAGE);
  assertEquals(m.path, "");
  assertEquals(m.length, PAGE);
  assert(m.bytes().every((b) => b === 0));
  m.write("hello from the parent");
  const h = m.handle();
  assertEquals(h.kind, "shmkit.mappedfile");
  assertEquals(JSON.parse(JSON.stringify(h)), h);
  for (const rt of RUNTIMES) {
    m.bytes(100, 20).fill(0);
    const r = await runScript(rt, "tests/fixtures/mapped_anon_child.ts", { args: [JSON.stringify(h)] });
    assertEquals(r.stdout.trim(), "hello from the parent", rt);
    m.seek(100);
    assertEquals(dec.decode(m.read(14)), "child was here", rt);
  }
  using again = MappedFile.attach(JSON.parse(JSON.stringify(h)));
  again.write("X");
  assertEquals(m.bytes()[0], "X".charCodeAt(0));
  assertThrows(() => MappedFile.open(tempFile("abc")).handle(), TypeError);
  assertThrows(() => MappedFile.anonymous(0), RangeError);
  assertCode(() => MappedFile.attach({ ...h, kind: "shmkit.shm" } as never), "EINVAL");
  assertCode(() => MappedFile.attach({ ...h, pid: 2 ** 32 - 1 }), "ENOENT");
});

test("MappedFile.madvise takes Python's advice names, checks its range, and dontneed drops private copies", () => {
  const p = tempFile(new Uint8Array(2 * PAGE).fill(7));
  using f = MappedFile.open(p, { access: "copy" });
  for (const a of ["normal", "random", "sequential", "willneed"] as const) {
    f.madvise(a);
    f.madvise(a, 100, 10);
  }
  f.write(new Uint8Array([1, 2, 3]));
  assertEquals(f.bytes()[0], 1);
  f.madvise("dontneed", 0, PAGE); // the private copy goes, the file shows through again
  assertEquals(f.bytes()[0], 7);
  assertThrows(() => f.madvise("huge" as never), TypeError);
  assertThrows(() => f.madvise("normal", 2 * PAGE + 1), RangeError);
  assertThrows(() => f.madvise("normal", 0, 2 * PAGE + 1), RangeError);
  assertThrows(() => f.madvise("normal", -1), RangeError);
  using a = MappedFile.anonymous(PAGE);
  a.write("kept");
  a.madvise("dontneed");
  a.seek(0);
  assertEquals(dec.decode(a.read(4)), "kept", "anonymous shared memory keeps its contents");
  f.close();
  assertCode(() => f.madvise("normal"), "ECLOSED");
});

test("MappedFile tests leave no temporary files behind", () => {
  removeDir();
  assertEquals(existsSync(DIR), false);
});
