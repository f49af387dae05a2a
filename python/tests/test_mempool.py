import asyncio
import json
import signal
import struct
import time
import unittest

from shmkit import Mempool, SharedMemory, ShmError

from _util import child, uname


class Pool:
    def __init__(self, *a, **k):
        self.p = Mempool.create(uname("pool"), *a, **k)

    def __enter__(self):
        return self.p

    def __exit__(self, *exc):
        self.p.unlink()
        self.p.close()


class MempoolTest(unittest.TestCase):
    def test_get_put_exhaustion_and_errors(self):
        with Pool(4, 100) as p:
            self.assertEqual((p.count, p.block_size, p.available), (4, 100, 4))
            bs = [p.get() for _ in range(4)]
            self.assertEqual(sorted(b.index for b in bs), [0, 1, 2, 3])
            self.assertTrue(all(len(b.buf) == 100 for b in bs))
            self.assertIsNone(p.try_get())
            t = time.monotonic()
            with self.assertRaises(ShmError) as cm:
                p.get(timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")
            self.assertLess(time.monotonic() - t, 1)
            bs[0].buf[:3] = b"xyz"
            p.put(bs[0])
            self.assertEqual(bytes(p.get().buf[:3]), b"xyz")
            p.put(1)
            with self.assertRaises(ShmError) as cm:
                p.put(1)
            self.assertEqual(cm.exception.code, "EINVAL")
            for bad in (-1, 4):
                with self.assertRaises(ShmError) as cm:
                    p.put(bad)
                self.assertEqual(cm.exception.code, "EINVAL")

    def test_another_process_put_and_async_get(self):
        with Pool(2, 64) as p:
            a, b = p.get(), p.get()

            async def go():
                loop = asyncio.get_running_loop()
                loop.call_later(0.05, p.put, a.index)
                return await p.get_async(timeout=2)

            self.assertEqual(asyncio.run(go()).index, a.index)
            other = Mempool.attach(json.loads(json.dumps(p.handle())))
            other.put(b.index)  # a block got by another Mempool object (participant)
            self.assertEqual(p.available, 1)
            other.close()

    def test_a_dead_holders_blocks_are_reclaimed(self):
        with Pool(8, 64, 4) as p:
            h = json.dumps(p.handle())
            c = child("pool-hold", h, "3", wait=False)
            held = json.loads(c.stdout.readline())
            self.assertEqual(len(held), 3)
            self.assertEqual(p.available, 5)
            self.assertEqual(p.reclaim(), 0)  # alive: never robbed
            c.send_signal(signal.SIGKILL)
            c.wait()
            got = [p.get(timeout=5) for _ in range(8)]  # a blocking get reclaims
            self.assertEqual(len(got), 8)

    def test_killed_inside_get_or_put_leaves_no_block_lost(self):
        for point in ("mempool.get.before_claim", "mempool.get.after_claim", "mempool.put.before_release",
                      "mempool.put.after_release", "mempool.claim.after_identity"):
            with self.subTest(point=point), Pool(4, 64, 2) as p:
                r = child("pool-fault", json.dumps(p.handle()), f"{point}:{1 if 'claim.' in point else 3}")
                self.assertEqual(r.returncode, -signal.SIGKILL, r.stdout + r.stderr)
                p.reclaim()
                self.assertEqual(p.available, 4)

    def test_corrupt_pool_is_EBADHDR(self):
        p = Mempool.create(uname("pool"), 4, 64)
        seg = p.segment
        try:
            for off, fmt, val in ((64, "<I", 5), (72, "<I", 128), (88, "<Q", 0), (16, "<Q", 99)):
                saved = bytes(seg.buf[off:off + 8])
                struct.pack_into(fmt, seg.buf, off, val)
                with self.subTest(off=off), self.assertRaises(ShmError) as cm:
                    Mempool.at(seg, 0)
                self.assertEqual(cm.exception.code, "EBADHDR")
                seg.buf[off:off + 8] = saved
            b = p.get()
            states = struct.unpack_from("<Q", seg.buf, 88)[0]
            struct.pack_into("<I", seg.buf, states + 4 * b.index, 0x1234)
            with self.assertRaises(ShmError) as cm:
                p.put(b)
            self.assertEqual(cm.exception.code, "EBADHDR")
        finally:
            p.unlink()
            p.close()


if __name__ == "__main__":
    unittest.main()
