"""The optional CPython accelerator (shmkit/_accel.c): it is built and used here, and the per-item
calls through it and through ctypes (SHMKIT_PY_ACCEL=0, in a child) behave the same."""
import os
import subprocess
import sys
import sysconfig
import unittest

from shmkit import Mempool, Ring, ShmError, _accel

from _util import env, uname

HAVE_HEADERS = os.path.isfile(os.path.join(sysconfig.get_paths().get("include") or "", "Python.h"))

SCRIPT = r"""
import sys
from shmkit import Mempool, Ring, _accel
name = sys.argv[1]
out = [_accel.module() is not None]
r = Ring.create(name + "-r", 4, "spsc")
out.append([r.try_enqueue(v) for v in (0, 1, 0xFFFFFFFF, 7, 8)])
out.append([r.try_dequeue() for _ in range(5)])
for bad in (-1, 2**32, 1.5, "x", True):
    try:
        r.try_enqueue(bad)
        out.append("accepted")
    except Exception as e:
        out.append(type(e).__name__)
r.enqueue(5)
out.append(r.dequeue(timeout=1))
r.unlink(); r.close()
p = Mempool.create(name + "-p", count=3, block_size=64)
bs = [p.try_get() for _ in range(4)]
out.append([b is None for b in bs])
idx = sorted(b.index for b in bs if b is not None)
out.append(idx)
for b in bs:
    if b is not None:
        p.put(b)
out.append(p.available)
p.unlink(); p.close()
from shmkit import SharedHeap
h = SharedHeap.create(name + "-h", 4096)
offs = [h.alloc(n, a) for n, a in ((1, 16), (100, 64), (1000, 256))]
out.append([o - h._g.arena_offset for o in offs])
for bad in ((0, 16), (8, 3), (1.5, 16), (True, 16), (8, 2**40)):
    try:
        h.alloc(*bad)
        out.append("accepted")
    except Exception as e:
        out.append(type(e).__name__)
try:
    h.alloc(4000)
except Exception as e:
    out.append(getattr(e, "code", type(e).__name__))
for o in offs + [offs[0], -1, 2**60, "x", 1.5]:
    try:
        h.free(o)
        out.append("freed")
    except Exception as e:
        out.append(getattr(e, "code", type(e).__name__))
out.append(h.stats().allocations)
h.unlink(); h.close()
print(repr(out))
"""


def run(accel: str, name: str) -> str:
    e = env()
    e["SHMKIT_PY_ACCEL"] = accel
    r = subprocess.run([sys.executable, "-c", SCRIPT, name], env=e, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"child (SHMKIT_PY_ACCEL={accel}) exited {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout.strip()


class AccelTest(unittest.TestCase):
    @unittest.skipUnless(HAVE_HEADERS, "this Python has no development headers (Python.h): shmkit uses ctypes")
    def test_built_and_used_when_python_h_and_cc_exist(self):
        self.assertIsNotNone(_accel.module(), _accel.status())
        r = Ring.create(uname("acc"), 4, "spsc")
        try:
            self.assertEqual(type(r._enq1).__name__, "builtin_function_or_method")
        finally:
            r.unlink()
            r.close()

    def test_ring_and_mempool_calls_match_with_and_without_the_accelerator(self):
        fast = run("1", uname("acc1"))
        slow = run("0", uname("acc0"))
        self.assertTrue(slow.startswith("[False,"), slow)
        if HAVE_HEADERS:
            self.assertTrue(fast.startswith("[True,"), fast)
        self.assertEqual(fast.split(",", 1)[1], slow.split(",", 1)[1])
        self.assertIn("[True, True, True, True, False]", slow)
        self.assertIn("[0, 1, 4294967295, 7, None]", slow)

    def test_a_bad_binding_is_refused(self):
        m = _accel.module()
        if m is None:
            self.skipTest(f"no accelerator: {_accel.status()}")
        with self.assertRaises(ValueError):
            m.bind(0, 0, 1, None)
        with self.assertRaises(ValueError):
            m.bind(1, 9, 1, None)
        with self.assertRaises(TypeError):
            m.bind(1, 0)


if __name__ == "__main__":
    unittest.main()
