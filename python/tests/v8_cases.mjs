// V8 serialization fixtures for python/tests/test_v8value.py: prints {name: hex of v8.serialize(value)} as
// JSON. Run by the test on Deno and Node (whichever are found) and compared with python/tests/v8_fixtures.json,
// which is this script's output on Node 24 (regenerate: node python/tests/v8_cases.mjs > python/tests/v8_fixtures.json).
// With "roundtrip" as argument it reads hex lines on stdin and prints, per line, the hex of
// v8.serialize(v8.deserialize(bytes)) (or "ERR message").
const v8 = globalThis.process.getBuiltinModule("node:v8");
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s) => new Uint8Array(s.match(/../g)?.map((x) => parseInt(x, 16)) ?? []);

const cases = {
  null: null,
  undefined: undefined,
  true: true,
  false: false,
  int0: 0,
  int1: 1,
  intneg1: -1,
  intmin: -(2 ** 31),
  intmax: 2 ** 31 - 1,
  int2p31: 2 ** 31,
  int2p53: 2 ** 53,
  intneg2p53: -(2 ** 53),
  big2p53p1: 2n ** 53n + 1n,
  bigneg: -(2n ** 64n),
  bigpos: 10n ** 30n,
  big2p63: 2n ** 63n,
  float: 1.5,
  floatneg0: -0,
  floatnan: NaN,
  floatinf: -Infinity,
  strempty: "",
  strlatin1: "héllo",
  strtwo: "a€",
  strastral: "x😀y",
  strpadded: ["x", "€"],
  strpadded2: { "ab": "€", "é": "中文" },
  list: [1, "a", null, [true, false]],
  listempty: [],
  obj: { a: 1, b: [1, 2], c: { d: "e" } },
  objindex: { b: 1, 10: 2, 2: 3, "01": 4, 4294967294: 5, 4294967295: 6, 2147483648: 7 },
  objempty: {},
  map: new Map([[1, "one"], ["1", "string one"], [2.5, null]]),
  set: new Set([1, "a", 2.5]),
  date: new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789)),
  dateneg: new Date(-1234567),
  bytes: new Uint8Array([0, 1, 2, 255]),
  i16: new Int16Array([1, -2, 30000]),
  u32: new Uint32Array([1, 4294967295]),
  f64: new Float64Array([1.5, -0]),
  b64: new BigInt64Array([-1n, 2n ** 62n]),
  nested: { m: new Map([["k", new Set(["x"])]]), when: new Date(0), list: [{ a: [] }] },
  shared: (() => {
    const inner = { x: 1 };
    return { a: inner, b: inner, c: [inner] };
  })(),
  cycle: (() => {
    const o = { name: "root", kids: [] };
    o.kids.push(o);
    o.self = o;
    return o;
  })(),
  // decode-only (JavaScript values Python reads but does not write the same way)
  hole: [1, , 3],
  sparse: (() => {
    const a = [];
    a[7] = "x";
    return a;
  })(),
  undefs: [undefined, null],
  wrappers: [new Number(2.5), new String("s"), new Boolean(true), Object(5n)],
  arraybuffer: new Uint8Array([9, 8]).buffer,
  dataview: new DataView(new Uint8Array([1, 2, 3]).buffer),
  clamped: new Uint8ClampedArray([7]),
  i8: new Int8Array([-1]),
  f32: new Float32Array([0.5]),
  mapmixed: new Map([[1, 2], [true, 3]]),
  mapobjkey: new Map([[{}, 1]]),
  setobj: new Set([[1]]),
  regexp: /a+/g,
  error: Object.assign(new Error("boom"), { stack: "Error: boom" }),
  invaliddate: new Date(NaN),
  arrayprop: Object.assign([1], { x: 1 }),
};
if (globalThis.process.argv.includes("roundtrip")) {
  const lines = new TextDecoder().decode(globalThis.process.getBuiltinModule("node:fs").readFileSync(0)).split("\n");
  const out = [];
  for (const l of lines) {
    if (!l) continue;
    try {
      out.push(hex(v8.serialize(v8.deserialize(unhex(l)))));
    } catch (e) {
      out.push("ERR " + e.message);
    }
  }
  console.log(out.join("\n"));
} else {
  const out = {};
  for (const [k, v] of Object.entries(cases)) out[k] = hex(v8.serialize(v));
  console.log(JSON.stringify(out, null, 1));
}
