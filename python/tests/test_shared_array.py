import json
import struct
import unittest

from shmkit import SharedArray, SharedMemory, ShmError

from _util import has_numpy, uname


@unittest.skipUnless(has_numpy(), "numpy is not installed")
class SharedArrayTest(unittest.TestCase):
    def test_create_attach_zero_copy_every_dtype(self):
        import numpy as np

        for dt in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"):
            with self.subTest(dtype=dt):
                a = SharedArray.create(uname("arr"), (3, 5), dt)
                try:
                    a.array[...] = np.arange(15).reshape(3, 5)
                    h = json.loads(json.dumps(a.handle()))
                    self.assertEqual((h["offset"], h["dataOffset"], h["shape"]), (0, 128, [3, 5]))
                    b = SharedArray.attach(h)
                    self.assertEqual(b.array.dtype, np.dtype(dt))
                    self.assertEqual(int(b.array.sum()), 105)
                    b.array[0, 0] = 100
                    self.assertEqual(int(a.array[0, 0]), 100)  # the same memory
                    # Plain numpy code that trusts dataOffset reads the same elements.
                    seg = SharedMemory.open(h["name"])
                    raw = np.ndarray(h["shape"], dtype=dt, buffer=seg.buf, offset=h["dataOffset"])
                    self.assertEqual(int(raw[2, 4]), 14)
                    del raw
                    seg.close()
                    b.close()
                finally:
                    a.unlink()
                    a.close()

    def test_data_and_numpy_are_the_array_as_the_api_names_them(self):
        a = SharedArray.create(uname("arrdata"), 4, "int32")
        try:
            b = SharedArray.attach(a.handle())
            self.assertIs(b.data, b.array)
            self.assertIs(b.numpy(), b.array)
            b.numpy()[2] = 7
            self.assertEqual(int(a.data[2]), 7)  # zero-copy: the same memory
            b.close()
            with self.assertRaises(ShmError) as e:
                b.data
            self.assertEqual(e.exception.code, "ECLOSED")
            with self.assertRaises(ShmError):
                b.numpy()
        finally:
            a.unlink()
            a.close()

    def test_handle_disagreeing_with_the_header_is_EBADHDR(self):
        a = SharedArray.create(uname("arr"), 4, "int32")
        try:
            h = a.handle()
            for k, v in (("dataOffset", 0), ("shape", [5]), ("dtype", "int64")):
                with self.subTest(field=k), self.assertRaises(ShmError) as cm:
                    SharedArray.attach(dict(h, **{k: v}))
                self.assertEqual(cm.exception.code, "EBADHDR")
            seg = a.segment
            for off, fmt, val in ((64, "<H", 11), (66, "<H", 8), (68, "<I", 33), (72, "<Q", 5), (96, "<Q", 2**60)):
                saved = bytes(seg.buf[off:off + 8])
                struct.pack_into(fmt, seg.buf, off, val)
                with self.subTest(off=off), self.assertRaises(ShmError) as cm:
                    SharedArray.at(seg, 0)
                self.assertEqual(cm.exception.code, "EBADHDR")
                seg.buf[off:off + 8] = saved
        finally:
            a.unlink()
            a.close()

    def test_raw_wrap_and_from_numpy(self):
        import numpy as np

        src = np.linspace(0, 1, 7, dtype=">f8")
        a = SharedArray.from_numpy(uname("arr"), src)
        try:
            self.assertEqual(a.dtype, "float64")
            self.assertTrue(np.array_equal(a.array, src))
        finally:
            a.unlink()
            a.close()
        with SharedMemory.create(None, 4096) as seg:
            try:
                w = SharedArray.wrap(seg, "uint16", (2, 3), byte_offset=64)
                w.array[1, 2] = 7
                h = w.handle()
                self.assertTrue(h["raw"])
                self.assertEqual(h["dataOffset"], 64)
                again = SharedArray.attach(h)
                self.assertEqual(int(again.array[1, 2]), 7)
                again.close()
            finally:
                seg.unlink()


if __name__ == "__main__":
    unittest.main()
