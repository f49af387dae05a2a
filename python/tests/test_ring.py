import asyncio
import json
import signal
import struct
import time
import unittest

from shmkit import Ring, SharedMemory, ShmError
from shmkit import layout

from _util import Unlinking, child, sigint, uname

MODES = ("spsc", "mpsc", "spmc", "mpmc")


def new_ring(capacity=5, mode="mpmc", **kw):
    return Unlinking(Ring.create(uname("ring"), capacity, mode, **kw))


class RingTest(unittest.TestCase):
    def test_fifo_capacity_bulk_burst_in_every_mode(self):
        for mode in MODES:
            with self.subTest(mode=mode), new_ring(5, mode) as r:
                self.assertIsNone(r.try_dequeue())
                for i in range(5):
                    self.assertTrue(r.try_enqueue(i + 10))
                self.assertFalse(r.try_enqueue(99))
                self.assertEqual(len(r), 5)
                self.assertEqual([r.try_dequeue() for _ in range(5)], [10, 11, 12, 13, 14])
                self.assertTrue(r.enqueue_bulk([1, 2, 3]))
                self.assertFalse(r.enqueue_bulk([4, 5, 6]))
                self.assertEqual(r.enqueue_burst([4, 5, 6]), 2)
                self.assertEqual(r.dequeue_bulk(6), [])
                self.assertEqual(r.dequeue_bulk(2), [1, 2])
                self.assertEqual(r.dequeue_burst(10), [3, 4, 5])
                self.assertTrue(r.try_enqueue(0xFFFFFFFF))
                self.assertEqual(r.try_dequeue(), 0xFFFFFFFF)

    def test_positions_wrap_past_2_32(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                seg = SharedMemory.create(None, Ring.byte_length(6))
                try:
                    r = Ring.init(seg, 0, 6, mode, _initial_position=2**32 - 7)
                    got = []
                    for i in range(40):
                        self.assertEqual(r.enqueue_burst([i, i + 1000]), 2)
                        got += r.dequeue_burst(2)
                    self.assertEqual(got, [x for i in range(40) for x in (i, i + 1000)])
                    r.close()
                finally:
                    seg.unlink()
                    seg.close()

    def test_bad_values_and_closed(self):
        with new_ring() as r:
            for bad in (-1, 2**32, 1.5, "1", True):
                with self.assertRaises((ValueError, TypeError)):
                    r.try_enqueue(bad)
            with self.assertRaises(ValueError):
                r.enqueue_bulk([1, -1])
            self.assertEqual(len(r), 0)  # nothing of a rejected batch went in
        with self.assertRaises(ShmError) as cm:
            r.try_enqueue(1)
        self.assertEqual(cm.exception.code, "ECLOSED")

    def test_blocking_times_out_and_async_waits(self):
        with new_ring(2) as r:
            t = time.monotonic()
            with self.assertRaises(ShmError) as cm:
                r.dequeue(timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")
            self.assertLess(time.monotonic() - t, 1.0)
            r.enqueue(1)
            r.enqueue(2)
            with self.assertRaises(ShmError):
                r.enqueue(3, timeout=0.02)

            async def go():
                self.assertEqual(await r.dequeue_async(timeout=1), 1)
                loop = asyncio.get_running_loop()
                r.try_dequeue()
                later = loop.call_later(0.05, r.try_enqueue, 77)
                v = await r.dequeue_async(timeout=2)
                later.cancel()
                await r.enqueue_async(5, timeout=1)
                return v

            self.assertEqual(asyncio.run(go()), 77)
            self.assertEqual(r.try_dequeue(), 5)

    def test_single_roles_are_EBUSY_for_others_and_taken_from_the_dead(self):
        r = Ring.create(uname("ring"), 4, "spsc")
        name = r.segment.name
        try:
            h = json.dumps(r.handle())
            other = Ring.attach(json.loads(h))
            r.try_enqueue(1)
            with self.assertRaises(ShmError) as cm:
                other.try_enqueue(2)
            self.assertEqual(cm.exception.code, "EBUSY")
            other.try_dequeue()  # the consumer side is free
            other.close()
            r.close()
            # A live process holds the producer role: EBUSY; once it is SIGKILLed, taken over.
            r = Ring.attach(json.loads(h))
            p = child("ring-claim", h, "producer", wait=False)
            self.assertEqual(p.stdout.readline().strip(), "ready")
            with self.assertRaises(ShmError) as cm:
                r.try_enqueue(3)
            self.assertEqual(cm.exception.code, "EBUSY")
            p.send_signal(signal.SIGKILL)
            p.wait()
            self.assertTrue(r.try_enqueue(3))
        finally:
            r.close()
            SharedMemory.unlink_name(name)

    def test_cross_process_python_producers_and_consumer_exactly_once(self):
        with new_ring(64, "mpmc") as r:
            h = json.dumps(r.handle())
            producers = [child("ring-produce", h, str(k * 10000), "2000", wait=False) for k in range(3)]
            got = [r.dequeue(timeout=30) for _ in range(6000)]
            for p in producers:
                self.assertEqual(p.wait(60), 0, p.stderr.read())
            self.assertEqual(sorted(got), sorted(k * 10000 + i for k in range(3) for i in range(2000)))
            for k in range(3):  # FIFO per producer
                mine = [v for v in got if k * 10000 <= v < k * 10000 + 2000]
                self.assertEqual(mine, sorted(mine))

    def test_producer_killed_inside_an_enqueue_leaves_the_ring_working(self):
        for mode in ("mpmc", "spsc"):
            for point in ("ring.enq.before_commit", "ring.enq.after_commit", "ring.enq.after_publish"):
                if mode == "spsc" and point == "ring.enq.after_publish":
                    continue
                with self.subTest(mode=mode, point=point), new_ring(8, mode) as r:
                    h = json.dumps(r.handle())
                    res = child("ring-produce", h, "0", "100", f"{point}:5")
                    self.assertEqual(res.returncode, -signal.SIGKILL, res.stderr)
                    got = r.dequeue_burst(100)
                    committed = 4 if point == "ring.enq.before_commit" else 5
                    self.assertEqual(got, list(range(committed)))
                    # The survivors carry on (a new producer takes over a dead spsc role).
                    res = child("ring-produce", h, "100", "8")
                    self.assertEqual(res.returncode, 0, res.stderr)
                    self.assertEqual(r.dequeue_burst(100), list(range(100, 108)))

    def test_bulk_calls_killed_before_or_after_their_commit_point(self):
        # enqueue_bulk: killed while placing (before B1) nothing is delivered; after B1 all of it
        # (a surviving consumer completes the dead holder's batch). dequeue_bulk: killed after
        # claiming (before B1) the items go back; after taking (after B1) they are gone.
        for point, want in (("ring.bulk.after_place:3", []), ("ring.bulk.after_commit:2", list(range(500, 505)))):
            with self.subTest(point=point), new_ring(16, "mpmc") as r:
                res = child("ring-bulk", json.dumps(r.handle()), "enq", "5", point)
                self.assertEqual(res.returncode, -signal.SIGKILL, res.stdout + res.stderr)
                self.assertEqual(r.dequeue_burst(16), want)
                self.assertTrue(r.enqueue_bulk([1, 2, 3]))  # the bulk lock was recovered
                self.assertEqual(r.dequeue_bulk(3), [1, 2, 3])
        for point, want in (("ring.bulk.after_claim:2", [10, 11, 12, 13]), ("ring.bulk.after_take:1", [13])):
            with self.subTest(point=point), new_ring(16, "mpmc") as r:
                self.assertTrue(r.enqueue_bulk([10, 11, 12, 13]))
                res = child("ring-bulk", json.dumps(r.handle()), "deq", "3", point)
                self.assertEqual(res.returncode, -signal.SIGKILL, res.stdout + res.stderr)
                self.assertEqual(r.dequeue_burst(16), want)

    def test_ctrl_c_interrupts_a_blocking_dequeue(self):
        with new_ring(4) as r:
            p = child("ring-block", json.dumps(r.handle()), wait=False)
            self.assertEqual(p.stdout.readline().strip(), "ready")
            took, err = sigint(p, 0.3)
            self.assertLess(took, 1.0)
            self.assertIn("KeyboardInterrupt", err)

    def test_corrupt_headers_and_slots_are_EBADHDR(self):
        r = Ring.create(uname("ring"), 4, "mpmc")
        r.unlink()
        seg = r.segment
        try:
            for off, fmt, val in ((68, "<I", 12), (64, "<I", 0), (72, "<I", 9), (76, "<I", 0), (16, "<Q", 10**9)):
                saved = bytes(seg.buf[off:off + 8])
                struct.pack_into(fmt, seg.buf, off, val)
                with self.subTest(off=off), self.assertRaises(ShmError) as cm:
                    Ring.at(seg, 0)
                self.assertEqual(cm.exception.code, "EBADHDR")
                seg.buf[off:off + 8] = saved
            Ring.at(seg, 0).close()
            with self.assertRaises(ShmError) as cm:
                Ring.at(seg, 32)
            self.assertEqual(cm.exception.code, "EINVAL")
            # An impossible sequence in the head slot: the next dequeue is EBADHDR, not a hang.
            r.try_enqueue(1)
            struct.pack_into("<I", seg.buf, 384 + 4, 0xDEAD)
            with self.assertRaises(ShmError) as cm:
                r.try_dequeue()
            self.assertEqual(cm.exception.code, "EBADHDR")
            # Never initialized (state 0): EBADHDR after the ready timeout.
            layout.store32(seg, 8, 0)
            with self.assertRaises(ShmError) as cm:
                Ring.at(seg, 0)
            self.assertEqual(cm.exception.code, "EBADHDR")
        finally:
            r.close()

    def test_a_forked_child_is_a_new_process_for_roles(self):
        import os

        with new_ring(4, "spsc") as r:
            r.try_enqueue(1)
            pid = os.fork()
            if pid == 0:  # the child: the parent's producer role is not its own
                try:
                    r.try_enqueue(2)
                    code = 1
                except ShmError as e:
                    code = 0 if e.code == "EBUSY" else 2
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)


if __name__ == "__main__":
    unittest.main()
