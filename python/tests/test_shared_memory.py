import json
import os
import subprocess
import sys
import unittest

import shmkit
from shmkit import SharedMemory, ShmError

from _util import env, uname


class LibraryTest(unittest.TestCase):
    def test_library_loads_and_names_its_path(self):
        self.assertTrue(os.path.isfile(shmkit.library_path))

    def test_bad_SHMKIT_LIB_is_ENOLIB_naming_the_path(self):
        e = env()
        e["SHMKIT_LIB"] = "/nonexistent/libshmkit.so"
        r = subprocess.run([sys.executable, "-c", "import shmkit\ntry:\n shmkit.SharedMemory.create(None, 64)\n"
                            "except shmkit.ShmError as x: print(x.code, x)"], env=e, capture_output=True, text=True)
        self.assertIn("ENOLIB", r.stdout)
        self.assertIn("/nonexistent/libshmkit.so", r.stdout)

    def test_compiles_into_the_cache_when_no_build_is_found(self):
        # A copy of the package outside the checkout, with bundled sources: the cache build path.
        import shutil
        import tempfile

        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(os.path.join(root, "python", "shmkit"), os.path.join(d, "shmkit"),
                            ignore=shutil.ignore_patterns("_source.py", "__pycache__"))
            os.makedirs(os.path.join(d, "shmkit", "_csrc"))
            for f in os.listdir(os.path.join(root, "csrc")):
                if os.path.isfile(os.path.join(root, "csrc", f)):
                    shutil.copy(os.path.join(root, "csrc", f), os.path.join(d, "shmkit", "_csrc", f))
            e = dict(os.environ, PYTHONPATH=d, SHMKIT_CACHE_DIR=os.path.join(d, "cache"))
            e.pop("SHMKIT_LIB", None)
            r = subprocess.run([sys.executable, "-c", "import shmkit; print(shmkit.library_path)"], env=e,
                               capture_output=True, text=True, cwd=d, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.strip().startswith(os.path.join(d, "cache")), r.stdout)


class SharedMemoryTest(unittest.TestCase):
    def test_create_open_roundtrip_and_exclusive(self):
        n = uname()
        with SharedMemory.create(n, 4096) as a:
            try:
                a.buf[:3] = b"abc"
                with SharedMemory.open("/" + n) as b:
                    self.assertEqual(bytes(b.buf[:3]), b"abc")
                    self.assertEqual(b.size, 4096)
                with self.assertRaises(ShmError) as cm:
                    SharedMemory.create(n, 64)
                self.assertEqual(cm.exception.code, "EEXIST")
                self.assertEqual(os.stat(f"/dev/shm/{n}").st_mode & 0o777, 0o600)
                self.assertTrue(SharedMemory.exists(n))
            finally:
                a.unlink()
        self.assertFalse(SharedMemory.exists(n))
        self.assertFalse(SharedMemory.unlink_name(n))

    def test_errors_have_the_typescript_codes(self):
        with self.assertRaises(ShmError) as cm:
            SharedMemory.open(uname())
        self.assertEqual(cm.exception.code, "ENOENT")
        for bad in ("", "a/b", "x\0y", ".", ".."):
            with self.assertRaises(ShmError) as cm:
                SharedMemory.create(bad, 64)
            self.assertEqual(cm.exception.code, "EINVAL")
        with self.assertRaises(ShmError) as cm:
            SharedMemory.create(None, 0)
        self.assertEqual(cm.exception.code, "EINVAL")

    def test_untrusted_mode_is_EACCES_unless_trusted(self):
        n = uname()
        s = SharedMemory.create(n, 64, mode=0o666)
        try:
            os.chmod(f"/dev/shm/{n}", 0o666)
            with self.assertRaises(ShmError) as cm:
                SharedMemory.open(n)
            self.assertEqual(cm.exception.code, "EACCES")
            SharedMemory.open(n, trust_others=True).close()
        finally:
            s.unlink()
            s.close()

    def test_read_only_writes_stay_private(self):
        with SharedMemory.create(None, 64) as s:
            try:
                with SharedMemory.open(s.name, read_only=True) as ro:
                    ro.buf[0] = 9
                    self.assertEqual(s.buf[0], 0)
            finally:
                s.unlink()

    def test_anonymous_attach_through_handle_json(self):
        with SharedMemory.anonymous(8192) as a:
            h = json.loads(json.dumps(a.handle()))
            self.assertIsNone(h["name"])
            with SharedMemory.attach(h) as b:
                b.buf[100] = 42
                self.assertEqual(a.buf[100], 42)
        bad = dict(h, pid=2**31 - 1)
        with self.assertRaises(ShmError) as cm:
            SharedMemory.attach(bad)
        self.assertEqual(cm.exception.code, "ENOENT")

    def test_taken_and_missing_names_say_what_to_do(self):
        name = "pytest-taken-" + os.urandom(4).hex()
        with SharedMemory.create(name, 4096) as a:
            try:
                with self.assertRaises(ShmError) as cm:
                    SharedMemory.create(name, 4096)
                self.assertEqual(cm.exception.code, "EEXIST")
                self.assertIn("the name is taken (EEXIST)", str(cm.exception))
                self.assertIn(f"`shmkit rm {name}`", str(cm.exception))
                with self.assertRaises(ShmError) as cm:
                    SharedMemory.open(name + "-missing")
                self.assertEqual(cm.exception.code, "ENOENT")
                self.assertIn("no such segment (ENOENT). Create it first", str(cm.exception))
            finally:
                a.unlink()

    def test_foreign_handles_are_EINVAL(self):
        for h in (None, {}, {"kind": "shmkit.ring", "version": 1}, {"kind": "shmkit.shm", "version": 2, "name": "x"}):
            with self.assertRaises(ShmError) as cm:
                SharedMemory.attach(h)  # type: ignore[arg-type]
            self.assertEqual(cm.exception.code, "EINVAL")
        with self.assertRaises(ShmError) as cm:
            shmkit.attach({"kind": "shmkit.nope", "version": 1})
        self.assertEqual(cm.exception.code, "EINVAL")
        # A handle is another process's JSON: a name that is no string is EINVAL, not a TypeError.
        for name in (5, {}, True, ["x"]):
            with self.assertRaises(ShmError) as cm:
                SharedMemory.attach({"kind": "shmkit.shm", "version": 1, "name": name})
            self.assertEqual(cm.exception.code, "EINVAL")
            with self.assertRaises(ShmError) as cm:
                shmkit.SharedArray.attach({"kind": "shmkit.array", "version": 1, "name": name, "dtype": "int16",
                                           "shape": [3], "offset": 0})
            self.assertEqual(cm.exception.code, "EINVAL")

    def test_close_makes_views_read_zeros_and_calls_ECLOSED(self):
        s = SharedMemory.create(None, 4096)
        s.unlink()
        v = s.buf
        v[0] = 5
        s.close()
        s.close()
        self.assertEqual(v[0], 0)  # tombstoned: never a fault
        with self.assertRaises(ShmError) as cm:
            s.handle()
        self.assertEqual(cm.exception.code, "ECLOSED")

    def test_multiprocessing_shared_memory_interop(self):
        from multiprocessing import shared_memory

        mp = shared_memory.SharedMemory(create=True, size=4096)
        try:
            mp.buf[:2] = b"hi"
            with SharedMemory.from_multiprocessing(mp) as s:
                self.assertEqual(bytes(s.buf[:2]), b"hi")
                s.buf[2] = ord("!")
            self.assertEqual(bytes(mp.buf[:3]), b"hi!")
        finally:
            mp.close()
            mp.unlink()
        with SharedMemory.create(None, 4096) as s:
            try:
                s.buf[0] = 77
                m = s.to_multiprocessing()
                self.assertEqual(m.buf[0], 77)
                m.close()
            finally:
                s.unlink()


if __name__ == "__main__":
    unittest.main()
