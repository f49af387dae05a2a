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
from shmkit import Mempool, Ring, ShmError, _accel
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
# enqueue/dequeue: the accelerated built-ins and the methods behave alike (errors, keywords, waits)
for bad in (-1, 2**32, 1.5, "x", True):
    try:
        r.enqueue(bad)
        out.append("accepted")
    except Exception as e:
        out.append(type(e).__name__)
r.enqueue(6, timeout=1)
r.enqueue(value=9)
out.append([r.dequeue(), r.dequeue(timeout=0.5)])
try:
    r.dequeue(timeout=0.01)
except ShmError as e:
    out.append(e.code)
for v in (1, 2, 3, 4):
    r.enqueue(v)
try:
    r.enqueue(5, timeout=0.01)  # full
except ShmError as e:
    out.append(e.code)
enq, deq = r.enqueue, r.dequeue
out.append([deq() for _ in range(4)])
r.unlink(); r.close()
for f in (lambda: r.enqueue(1), lambda: r.dequeue(), lambda: enq(1), lambda: deq()):
    try:
        f()
        out.append("worked after close")
    except ShmError as e:
        out.append(e.code)
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
            self.assertEqual(type(r.enqueue).__name__, "builtin_function_or_method")  # no Python frame per item
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
        # the blocking enqueue/dequeue (built-ins with a fallback under the accelerator)
        self.assertIn("[6, 9], 'ETIMEDOUT', 'ETIMEDOUT', [1, 2, 3, 4], 'ECLOSED', 'ECLOSED', 'ECLOSED', 'ECLOSED'", slow)

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
        import weakref

        ref = weakref.ref(self)
        with self.assertRaises(ValueError):
            m.bind_or(1, 2, 1, None, print, ref)  # kind 2: only 0 (enqueue) and 1 (dequeue)
        with self.assertRaises(ValueError):
            m.bind_or(0, 0, 1, None, print, ref)  # null function address
        with self.assertRaises(TypeError):
            m.bind_or(1, 0, 1, None, print, None)  # not a weak reference


if __name__ == "__main__":
    unittest.main()
