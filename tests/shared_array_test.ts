import { assert, assertCode, assertEquals, assertThrows } from "./assert.ts";
import { runPython, runScript, RUNTIME, RUNTIMES, test, uniqueName } from "./harness.ts";
import { attach, type DType, SharedArray, SharedMemory } from "../mod.ts";
import { ARRAY_LAYOUT, DTYPE_CODE, NUMPY_TYPESTR } from "../src/shared_array.ts";
import { HDR, publishReady, writeHeader } from "../src/layout.ts";

const DTYPES = Object.keys(DTYPE_CODE) as DType[];
const isBig = (d: DType) => d === "int64" || d === "uint64";

test("SharedArray.create then open sees the same dtype, shape and elements", () => {
  const name = uniqueName("arr");
  using a = SharedArray.create(name, "float64", [2, 3], { fill: 2.5 });
  assertEquals(a.byteOffset % 64, 0);
  assertEquals(a.length, 6);
  a.data[4] = -1;
  using b = SharedArray.open("/" + name);
  a.unlink();
  assertEquals(b.dtype, "float64");
  assertEquals([...b.shape], [2, 3]);
  assertEquals(b.byteOffset, a.byteOffset);
  assertEquals(Array.from(b.data as Float64Array), [2.5, 2.5, 2.5, 2.5, -1, 2.5]);
  b.data[0] = 7;
  assertEquals(a.data[0], 7);
});

test("every dtype round-trips with its typed array and fill", () => {
  const ctors = {
    int8: Int8Array,
    uint8: Uint8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    int32: Int32Array,
    uint32: Uint32Array,
    int64: BigInt64Array,
    uint64: BigUint64Array,
    float32: Float32Array,
    float64: Float64Array,
  };
  for (const dt of DTYPES) {
    const name = uniqueName("dt");
    using a = SharedArray.create(name, dt, [3], { fill: isBig(dt) ? 3n : 3 });
    using b = SharedArray.open(name);
    a.unlink();
    assert(b.data instanceof ctors[dt], `${dt}: data is a ${b.data.constructor.name}`);
    assertEquals(b.data[2], isBig(dt) ? 3n : 3);
    assertEquals(b.byteOffset, 128);
  }
});

test("SharedArray.zeros, ones and from fill as told and infer the dtype", () => {
  using z = SharedArray.zeros(uniqueName("z"), "int32", 4);
  z.unlink();
  assertEquals(Array.from(z.data as Int32Array), [0, 0, 0, 0]);
  using o = SharedArray.ones(uniqueName("o"), "uint64", [2, 2]);
  o.unlink();
  assertEquals(Array.from(o.data as BigUint64Array), [1n, 1n, 1n, 1n]);
  using f = SharedArray.from(uniqueName("f"), [1.5, 2, 3, 4], [2, 2]);
  f.unlink();
  assertEquals(f.dtype, "float64");
  assertEquals([...f.shape], [2, 2]);
  using g = SharedArray.from(uniqueName("g"), new Int16Array([-1, 2, -3]));
  g.unlink();
  assertEquals(g.dtype, "int16");
  assertEquals(Array.from(g.data as Int16Array), [-1, 2, -3]);
  using h = SharedArray.from(uniqueName("h"), [1n, -2n]);
  h.unlink();
  assertEquals(h.dtype, "int64");
  assertEquals(Array.from(h.data as BigInt64Array), [1n, -2n]);
  assertThrows(() => SharedArray.from(uniqueName("bad"), [1, 2, 3], [2, 2]), RangeError);
});

test("0-length dimensions give an empty array that opens like any other", () => {
  const name = uniqueName("empty");
  using a = SharedArray.zeros(name, "float32", [3, 0, 2]);
  using b = SharedArray.open(name);
  a.unlink();
  assertEquals(b.length, 0);
  assertEquals(b.data.length, 0);
  assertEquals([...b.shape], [3, 0, 2]);
  using s = SharedArray.ones(uniqueName("scalar"), "int8", []);
  s.unlink();
  assertEquals(s.length, 1);
  assertEquals(s.data[0], 1);
});

test("bad dtypes and shapes throw TypeError or RangeError before anything is created", () => {
  const name = uniqueName("bad");
  assertThrows(() => SharedArray.create(name, "complex128" as DType, 3), TypeError);
  assertThrows(() => SharedArray.create(name, "int8", -1), RangeError);
  assertThrows(() => SharedArray.create(name, "int8", [2, 1.5]), RangeError);
  assertThrows(() => SharedArray.create(name, "int8", new Array(33).fill(1)), RangeError);
  assertThrows(() => SharedArray.create(name, "float64", [2 ** 30, 2 ** 30]), RangeError);
  assertThrows(() => SharedArray.create(name, "int64", 2, { fill: 1.5 }), RangeError);
  assert(!SharedMemory.exists(name));
});

test("SharedArray.create throws EEXIST and open throws ENOENT naming the array", () => {
  const name = uniqueName("ex");
  using a = SharedArray.zeros(name, "uint8", 1);
  assertCode(() => SharedArray.zeros(name, "uint8", 1), "EEXIST");
  a.unlink();
  assertCode(() => SharedArray.open(name), "ENOENT", /Cannot open array/);
});

test("open throws EBADHDR for a segment that is not an array", () => {
  const name = uniqueName("foreign");
  using seg = SharedMemory.create(name, 4096);
  seg.unlink();
  assertCode(() => SharedArray.at(seg, 0), "EBADHDR", /no shmkit header/);
  using tiny = SharedMemory.create(uniqueName("tiny"), 16);
  tiny.unlink();
  assertCode(() => SharedArray.at(tiny, 0), "EBADHDR");
});

test("a corrupt array header gives EBADHDR, never an out-of-bounds view", () => {
  const corruptions: [string, (dv: DataView) => void][] = [
    ["unknown dtype", (dv) => dv.setUint16(ARRAY_LAYOUT.dtype, 99, true)],
    ["item size mismatch", (dv) => dv.setUint16(ARRAY_LAYOUT.itemSize, 3, true)],
    ["too many dimensions", (dv) => dv.setUint32(ARRAY_LAYOUT.ndim, 33, true)],
    ["more dimensions than the header holds", (dv) => dv.setUint32(ARRAY_LAYOUT.ndim, 5, true)],
    ["a huge dimension", (dv) => dv.setBigUint64(ARRAY_LAYOUT.shape, 2n ** 60n, true)],
    ["an overflowing shape", (dv) => {
      dv.setBigUint64(ARRAY_LAYOUT.shape, 2n ** 40n, true);
      dv.setBigUint64(ARRAY_LAYOUT.shape + 8, 2n ** 40n, true);
    }],
    ["length not the product of shape", (dv) => dv.setBigUint64(ARRAY_LAYOUT.length, 7n, true)],
    ["data beyond the object", (dv) => {
      dv.setBigUint64(ARRAY_LAYOUT.shape, 1000n, true);
      dv.setBigUint64(ARRAY_LAYOUT.length, 1000n * 3n, true);
    }],
    ["object beyond the segment", (dv) => dv.setBigUint64(HDR.byteLength, 1n << 40n, true)],
    ["misaligned header size", (dv) => dv.setUint32(HDR.headerSize, 100, true)],
    ["wrong kind", (dv) => dv.setUint16(HDR.kind, 1, true)],
  ];
  for (const [why, corrupt] of corruptions) {
    const name = uniqueName("corrupt");
    using seg = SharedMemory.create(name, 4096);
    seg.unlink();
    SharedArray.init(seg, 0, { dtype: "int16", shape: [2, 3] }).close();
    corrupt(new DataView(seg.buffer));
    try {
      SharedArray.at(seg, 0);
      throw new Error(`${why}: no error`);
    } catch (e) {
      assertEquals((e as { code?: string }).code, "EBADHDR", `${why}: ${(e as Error).message}`);
    }
  }
});

test("SharedArray.init places an array inside a segment and at() finds it", () => {
  using seg = SharedMemory.create(uniqueName("place"), 8192);
  seg.unlink();
  const need = SharedArray.byteLength({ dtype: "uint32", shape: [10, 10] });
  assertEquals(need, 128 + 400);
  using a = SharedArray.init(seg, 1024, { dtype: "uint32", shape: [10, 10], fill: 9 });
  assertEquals(a.byteOffset, 1024 + 128);
  using b = SharedArray.at(seg, 1024);
  assertEquals(b.data[99], 9);
  assertEquals(seg.view(Uint32Array, b.byteOffset, 1)[0], 9);
  assertCode(() => SharedArray.init(seg, 100, { dtype: "uint8", shape: 1 }), "EINVAL");
  assertCode(() => SharedArray.init(seg, 8192 - 64, { dtype: "uint8", shape: 100 }), "EINVAL");
  assertCode(() => SharedArray.at(seg, 2048), "EBADHDR");
  b.close();
  assert(!seg.closed, "closing an array placed with at() leaves the segment mapped");
});

test("a read-only array keeps writes private and does not crash", () => {
  const name = uniqueName("ro");
  using a = SharedArray.ones(name, "int32", 4);
  using r = SharedArray.open(name, { readOnly: true });
  assert(r.readOnly);
  a.data[1] = 8;
  assertEquals(r.data[1], 8, "before a private write, the mapping shows the segment");
  r.data[0] = 55;
  assertEquals(r.data[0], 55);
  assertEquals(a.data[0], 1);
  using again = SharedArray.open("/" + name);
  assertEquals(again.data[0], 1);
  a.unlink();
});

test("SharedArray.close detaches data and windows and is idempotent", () => {
  const a = SharedArray.ones(uniqueName("close"), "uint16", 8);
  a.unlink();
  const d = a.data;
  const w = a.window(2, 2);
  a.close();
  a.close();
  assert(a.closed);
  // Node >= 22 has ArrayBuffer.prototype.transfer and detaches like Deno and Bun; Node 20 cannot
  // detach external buffers and maps zero pages under the stale views instead.
  if (RUNTIME === "node" && typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== "function") {
    assertEquals(d[0], 0);
    assertEquals(w[0], 0);
  } else {
    assertEquals(d.length, 0);
    assertEquals(w.length, 0);
  }
  assertCode(() => a.data, "ECLOSED");
  assertCode(() => a.window(0, 1), "ECLOSED");
});

test("closing an array placed with init() detaches its own views only", () => {
  using seg = SharedMemory.create(uniqueName("own"), 4096);
  seg.unlink();
  const a = SharedArray.init(seg, 0, { dtype: "uint8", shape: 4, fill: 3 });
  const d = a.data;
  a.close();
  if (RUNTIME !== "node") assertEquals(d.length, 0);
  assertEquals(seg.bytes(a.byteOffset, 4)[3], 3);
});

test("window() views any sub-range and rejects ranges outside the array", () => {
  using a = SharedArray.from(uniqueName("win"), new Float32Array([0, 1, 2, 3, 4, 5]), [2, 3]);
  a.unlink();
  assertEquals(Array.from(a.window(3, 3) as Float32Array), [3, 4, 5]);
  assertEquals(Array.from(a.window(4) as Float32Array), [4, 5]);
  a.window(1, 1)[0] = 10;
  assertEquals(a.data[1], 10);
  assertThrows(() => a.window(5, 2), RangeError);
  assertThrows(() => a.window(-1, 1), RangeError);
});

test("handle() and attach() reopen an array, also through the top-level attach", () => {
  const name = uniqueName("h");
  using a = SharedArray.from(name, new Uint8Array([4, 5, 6]));
  const h = JSON.parse(JSON.stringify(a.handle()));
  assertEquals(h.kind, "shmkit.array");
  using b = SharedArray.attach(h);
  using c = attach(h) as SharedArray;
  assertEquals(Array.from(b.data as Uint8Array), [4, 5, 6]);
  assert(c instanceof SharedArray);
  assertCode(() => SharedArray.attach({ ...h, shape: [4] }), "EBADHDR");
  assertCode(() => SharedArray.attach({ ...h, kind: "shmkit.ring" }), "EINVAL");
  a.unlink();
});

test("an array in anonymous memory is attached by handle in a child", async () => {
  using seg = SharedMemory.anonymous(4096);
  using a = SharedArray.init(seg, 0, { dtype: "int32", shape: [5], fill: 4 });
  const other = RUNTIMES[(RUNTIMES.indexOf(RUNTIME) + 1) % 3];
  const r = await runScript(other, "tests/fixtures/array_child.ts", { args: ["add", JSON.stringify(a.handle()), "1"] });
  assertEquals(JSON.parse(r.stdout).sum, "20");
  assertEquals(Array.from(a.data as Int32Array), [5, 5, 5, 5, 5]);
});

test("children of every runtime read every dtype and write back", async () => {
  for (const dt of DTYPES) {
    const name = uniqueName("x" + dt);
    const n = 12;
    using a = SharedArray.create(name, dt, [3, 4]);
    let want = 0;
    for (let i = 0; i < n; i++) {
      (a.data as { [i: number]: number | bigint })[i] = isBig(dt) ? BigInt(i % 50) : i % 50;
      want += i % 50;
    }
    for (const rt of RUNTIMES) {
      const r = await runScript(rt, "tests/fixtures/array_child.ts", {
        args: ["add", JSON.stringify(a.handle()), "1"],
      });
      const got = JSON.parse(r.stdout);
      assertEquals(got.dtype, dt, `${rt} ${dt}`);
      assertEquals(got.shape, [3, 4], `${rt} ${dt}`);
      assertEquals(got.sum, String(want), `${rt} ${dt}`);
      want += n;
    }
    for (let i = 0; i < n; i++) assertEquals(Number(a.data[i]), (i % 50) + 3, `${dt} element ${i}`);
    a.unlink();
  }
});

test("numpy opens a SharedArray by name and offset, sees the numbers and writes an answer", async () => {
  const name = uniqueName("np");
  using a = SharedArray.create(name, "int64", [3, 4]);
  for (let i = 0; i < 12; i++) (a.data as BigInt64Array)[i] = BigInt(i * 10 - 50);
  try {
    const py = `
import sys, json
import numpy as np
from multiprocessing import shared_memory, resource_tracker
name, typestr, shape, offset = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
shm = shared_memory.SharedMemory(name=name)
resource_tracker.unregister(shm._name, "shared_memory")
arr = np.ndarray(shape, dtype=np.dtype(typestr), buffer=shm.buf, offset=offset)
print(json.dumps({"sum": int(arr.sum()), "row1": arr[1].tolist()}))
arr[2, 3] = 424242
arr[0] *= 2
del arr
shm.close()
`;
    const r = await runPython(py, { args: [name, NUMPY_TYPESTR.int64, JSON.stringify(a.shape), String(a.byteOffset)] });
    const got = JSON.parse(r.stdout);
    assertEquals(got.sum, 60);
    assertEquals(got.row1, [-10, 0, 10, 20]);
    assertEquals(a.data[11], 424242n);
    assertEquals(Array.from((a.data as BigInt64Array).subarray(0, 4)), [-100n, -80n, -60n, -40n]);
  } finally {
    a.unlink();
  }
});

test("SharedArray.wrap views a segment numpy created without a shmkit header", async () => {
  const name = uniqueName("npraw");
  const py = `
import sys
import numpy as np
from multiprocessing import shared_memory, resource_tracker
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=16 + 12 * 4)
resource_tracker.unregister(shm._name, "shared_memory")
arr = np.ndarray((3, 4), dtype="<f4", buffer=shm.buf, offset=16)
arr[:] = np.arange(12, dtype="<f4").reshape(3, 4) / 4
del arr
shm.close()
`;
  await runPython(py, { args: [name] });
  try {
    using a = SharedArray.wrap(name, "float32", [3, 4], { byteOffset: 16 });
    assertEquals(a.byteOffset, 16);
    assertEquals(Array.from(a.window(8, 4) as Float32Array), [2, 2.25, 2.5, 2.75]);
    a.data[0] = 99;
    const h = JSON.parse(JSON.stringify(a.handle()));
    assertEquals(h.raw, true);
    using b = SharedArray.attach(h);
    assertEquals(b.data[0], 99);
    assertCode(() => SharedArray.wrap(name, "float32", [3, 5], { byteOffset: 16 }), "EINVAL");
    assertCode(() => SharedArray.wrap(name, "float32", [1], { byteOffset: 2 }), "EINVAL");
    assertCode(() => SharedArray.open(name), "EBADHDR");
  } finally {
    SharedMemory.unlink(name);
  }
});

test("a 2**26-element uint64 array (512 MiB) works here and in a child", async () => {
  // Anonymous memory: nothing is left in /dev/shm even if this process dies.
  const n = 2 ** 26;
  using seg = SharedMemory.anonymous(SharedArray.byteLength({ dtype: "uint64", shape: [n] }));
  using a = SharedArray.init(seg, 0, { dtype: "uint64", shape: [n], fill: 1n });
  const d = a.data as BigUint64Array;
  assertEquals(d.length, n);
  d[n - 1] = 123n;
  const other = RUNTIMES[(RUNTIMES.indexOf(RUNTIME) + 1) % 3];
  const r = await runScript(other, "tests/fixtures/array_child.ts", {
    args: ["big", JSON.stringify(a.handle())],
    timeout: 110_000,
  });
  assertEquals(r.stdout.trim(), "ok");
  assertEquals(d[(n - 1) >>> 1], 7n);
  assertEquals(d[0], 1n);
});

test("an array over 4 GiB is reachable through data (Deno) or windows (every runtime)", () => {
  const n = 2 ** 32 + 64; // uint8 elements: just past 4 GiB
  const name = uniqueName("huge");
  using a = SharedArray.zeros(name, "uint8", n);
  a.unlink(); // right away: the memory goes when this process closes it or exits
  const last = a.window(n - 1, 1);
  last[0] = 77;
  const across = a.window(2 ** 32 - 8, 16); // spans the 4 GiB boundary
  across[15] = 5;
  assertEquals(a.window(n - 16, 16)[15], 77);
  assertEquals(a.window(2 ** 32 + 7, 1)[0], 5);
  if (RUNTIME === "deno") {
    assertEquals(a.data.length, n);
    assertEquals(a.data[n - 1], 77);
  } else {
    assertThrows(() => a.data, (e: Error) => e instanceof RangeError && /window\(start, length\)/.test(e.message));
  }
  a.close();
});

test("SharedArray.open of a 64-byte segment (a common header and nothing else) is EBADHDR", () => {
  const name = uniqueName("short");
  using seg = SharedMemory.create(name, 64);
  try {
    // A valid common header of kind "array" (header size 64, byte length 64): the segment ends
    // where the array header's dtype field would start.
    const b = seg.bytes();
    writeHeader(b.buffer as ArrayBuffer, b.byteOffset, "array", 64, 64);
    publishReady(b.buffer as ArrayBuffer, b.byteOffset);
    assertCode(() => SharedArray.open(name), "EBADHDR"); // was a raw RangeError from DataView
    assertCode(() => SharedArray.at(seg, 0), "EBADHDR");
  } finally {
    seg.unlink();
  }
});

test('SharedArray is typed by its dtype: create(null, "float64", 3).data is a Float64Array', () => {
  // null: a random unused name (unlinked at the end, after the attaches below have opened it).
  using a = SharedArray.create(null, "float64", 3);
  a.data.set([1, 2, 3.5]);
  const f: Float64Array = a.data; // a type error if data were the union of every typed array
  assertEquals(f.reduce((x, y) => x + y, 0), 6.5);
  using big = SharedArray.zeros(null, "uint64", 2);
  big.unlink(); // the mapping stays until close
  const b: BigUint64Array = big.window(0, 2);
  b[1] = 2n ** 64n - 1n;
  assertEquals(big.data[1], 2n ** 64n - 1n);
  // open/attach: a dtype option is checked against the header; is() narrows an unknown array.
  using h = SharedArray.attach(JSON.parse(JSON.stringify(a.handle())) as ReturnType<typeof a.handle>);
  const hf: Float64Array = h.data;
  assertEquals(hf[2], 3.5);
  using u = SharedArray.attach(JSON.parse(JSON.stringify(a.handle())));
  assert(u.is("float64") && !u.is("int32"));
  if (u.is("float64")) assertEquals(u.data.reduce((x, y) => Math.max(x, y), 0), 3.5);
  const name = uniqueName("typed");
  using n = SharedArray.create(name, "int32", 2);
  try {
    using o = SharedArray.open(name, { dtype: "int32" });
    const i: Int32Array = o.data;
    assertEquals(i.length, 2);
    assertCode(() => SharedArray.open(name, { dtype: "float32" }), "EBADHDR");
  } finally {
    n.unlink();
    a.unlink();
  }
});

test("a SharedArray handle gives the data offset as dataOffset; offset stays where the header starts", () => {
  const name = uniqueName("dataoff");
  using a = SharedArray.create(name, "int16", [2, 2]);
  try {
    const h = a.handle();
    assertEquals(h.dataOffset, a.byteOffset);
    assertEquals(h.offset + 128, h.dataOffset!, "one 128-byte header (ndim 2) between them");
    // A handle whose dataOffset disagrees with the header is refused.
    assertCode(() => SharedArray.attach({ ...h, dataOffset: h.offset }), "EBADHDR");
    // Raw arrays: the object is the data.
    using raw = SharedArray.wrap(name, "uint8", 8);
    assertEquals(raw.handle().dataOffset, raw.handle().offset);
  } finally {
    a.unlink();
  }
});

test("numpy reads a SharedArray from its handle with the README's three lines (dataOffset)", async () => {
  const name = uniqueName("nph");
  using a = SharedArray.create(name, "float32", [2, 3]);
  a.data.set([0.5, 1, 1.5, 2, 2.5, 3]);
  try {
    // The README recipe, verbatim apart from reading the handle from argv.
    const py = `
import sys, json
import numpy as np
from multiprocessing import shared_memory, resource_tracker
h = json.loads(sys.argv[1])
shm = shared_memory.SharedMemory(name=h["name"])
resource_tracker.unregister(shm._name, "shared_memory")
arr = np.ndarray(h["shape"], dtype=h["dtype"], buffer=shm.buf, offset=h["dataOffset"])
print(json.dumps({"sum": float(arr.sum()), "last": arr[1].tolist()}))
del arr
shm.close()
`;
    const r = await runPython(py, { args: [JSON.stringify(a.handle())] });
    assertEquals(JSON.parse(r.stdout), { sum: 10.5, last: [2, 2.5, 3] });
  } finally {
    a.unlink();
  }
});
