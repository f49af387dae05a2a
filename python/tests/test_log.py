import array
import asyncio
import json
import random
import signal
import struct
import time
import unittest

from shmkit import MessageLog, SharedMemory, ShmError

from _util import Unlinking, child, sigint, uname

PAD = 0x80000000


def new_log(capacity=1024, mode="spsc", **kw):
    return Unlinking(MessageLog.create(uname("log"), capacity, mode, **kw))


class MessageLogTest(unittest.TestCase):
    def test_records_in_order_in_both_modes(self):
        for mode in ("spsc", "mpsc"):
            with self.subTest(mode=mode), new_log(1024, mode) as lg:
                self.assertEqual(lg.max_record, 504)
                self.assertIsNone(lg.try_read())
                self.assertTrue(lg.try_write(b"hello", 3))
                self.assertTrue(lg.try_write("h\u00e9llo"))
                self.assertTrue(lg.try_write(bytearray(b"xy"), 65535))
                self.assertTrue(lg.try_write(memoryview(b"abc")))
                self.assertTrue(lg.try_write(b""))
                self.assertEqual(lg.size, 16 + 16 + 16 + 16 + 8)
                self.assertEqual(lg.try_read(), (3, b"hello"))
                self.assertEqual(lg.try_read(), (0, "h\u00e9llo".encode()))
                self.assertEqual(list(lg), [(65535, b"xy"), (0, b"abc"), (0, b"")])
                self.assertIsNone(lg.try_read())
                # Full: 72 bytes were used, so 15 records of 64 bytes fit; the 16th would need a
                # 56-byte padding record at the end first, and there is no room for both.
                n = 0
                while lg.try_write(bytes(56)):
                    n += 1
                self.assertEqual(n, 15)
                with self.assertRaises(ValueError):
                    lg.try_write(bytes(505))
                for bad in (-1, 65536, 1.0, True):
                    with self.assertRaises(ValueError):
                        lg.try_write(b"x", bad)
                with self.assertRaises(TypeError):
                    lg.try_write(123)
                got = []
                self.assertEqual(lg.try_read_batch(lambda t, b: got.append(len(b))), 15)
                self.assertEqual(got, [56] * 15)
                self.assertEqual(lg.size, 0)

    def test_wraparound_past_2_32_with_padding_records(self):
        rnd = random.Random(7)
        for mode in ("spsc", "mpsc"):
            with self.subTest(mode=mode):
                seg = SharedMemory.create(None, MessageLog.byte_length(512, mode))
                try:
                    lg = MessageLog.init(seg, 0, 512, mode, 120, _initial_position=2**32 - 1024)
                    data = lg._data
                    pads = 0
                    for i in range(400):
                        p = rnd.randrange(0, 121)
                        b = bytes((i + k) & 255 for k in range(p))
                        self.assertTrue(lg.try_write(b, i & 0xFFFF), i)
                        # A record that does not fit before the end follows a padding record there.
                        for off in range(0, 512, 8):
                            ln, ty = struct.unpack_from("<II", seg.buf, data + off)
                            if ty == PAD and ln >= 8 and off + ln == 512:
                                pads += 1
                        self.assertEqual(lg.try_read(), (i & 0xFFFF, b))
                    self.assertIsNone(lg.try_read())
                    self.assertGreater(pads, 0)
                    tail = struct.unpack_from("<I", seg.buf, 128)[0]
                    self.assertLess(tail, 2**31)  # the positions did pass 2^32
                    lg.close()
                finally:
                    seg.unlink()
                    seg.close()

    def test_corrupt_records_and_headers_are_EBADHDR(self):
        for mode in ("spsc", "mpsc"):
            for off, val in ((0, 4), (0, 8 + 505), (0, 0x7FFFFFF8), (4, 65536), (4, PAD + 1)):
                with self.subTest(mode=mode, off=off, val=val), new_log(1024, mode) as lg:
                    lg.try_write(b"abcdefgh")
                    lg.try_write(b"second")
                    struct.pack_into("<I", lg.segment.buf, lg._data + off, val)
                    with self.assertRaises(ShmError) as cm:
                        lg.try_read()
                    self.assertEqual(cm.exception.code, "EBADHDR")
        # A padding record longer than the claimed bytes.
        with new_log(1024, "spsc") as lg:
            lg.try_write(b"x")
            struct.pack_into("<II", lg.segment.buf, lg._data, 64, PAD)
            with self.assertRaises(ShmError) as cm:
                lg.try_read_batch(lambda t, b: None)
            self.assertEqual(cm.exception.code, "EBADHDR")
        # Header fields.
        lg = MessageLog.create(uname("log"), 1024, "mpsc")
        lg.unlink()
        seg = lg.segment
        try:
            for off, fmt, val in ((64, "<I", 1000), (68, "<I", 2), (72, "<I", 600), (76, "<I", 384), (80, "<I", 31),
                                  (16, "<Q", 10**9), (128, "<I", 4), (128, "<I", 4096), (196, "<I", 8)):
                saved = bytes(seg.buf[off:off + 8])
                struct.pack_into(fmt, seg.buf, off, val)
                with self.subTest(off=off), self.assertRaises(ShmError) as cm:
                    MessageLog.at(seg, 0).close()
                self.assertEqual(cm.exception.code, "EBADHDR")
                seg.buf[off:off + 8] = saved
            MessageLog.at(seg, 0).close()
        finally:
            lg.close()

    def test_closed_is_ECLOSED_and_roles_are_single(self):
        with new_log(1024, "spsc") as lg:
            h = lg.handle()
            self.assertEqual(h["kind"], "shmkit.log")
            other = MessageLog.attach(json.loads(json.dumps(h)))
            lg.try_write(b"a")
            with self.assertRaises(ShmError) as cm:
                other.try_write(b"b")  # spsc: this process's other object holds the writer role
            self.assertEqual(cm.exception.code, "EBUSY")
            self.assertEqual(other.try_read(), (0, b"a"))
            with self.assertRaises(ShmError) as cm:
                lg.try_read()
            self.assertEqual(cm.exception.code, "EBUSY")
            other.close()
            other.close()
            for op in (lambda: other.try_write(b"x"), other.try_read, lambda: other.size, other.handle,
                       lambda: other.read(timeout=0)):
                with self.assertRaises(ShmError) as cm:
                    op()
                self.assertEqual(cm.exception.code, "ECLOSED")
            self.assertIsNone(lg.try_read())  # the role came back with close()

    def test_batch_handler_that_raises_consumes_up_to_that_record(self):
        with new_log(1024, "mpsc") as lg:
            for i in range(6):
                lg.try_write(bytes([i]))

            def fn(t, b):
                if b == b"\x02":
                    raise RuntimeError("stop")

            with self.assertRaises(RuntimeError):
                lg.try_read_batch(fn)
            self.assertEqual(lg.try_read(), (0, b"\x03"))
            self.assertEqual(lg.read_batch(lambda t, b: None, max=1, timeout=1), 1)
            self.assertEqual(lg.try_read(), (0, b"\x05"))

    def test_blocking_and_async_forms(self):
        with new_log(256, "mpsc") as lg:
            t = time.monotonic()
            with self.assertRaises(ShmError) as cm:
                lg.read(timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")
            self.assertGreater(time.monotonic() - t, 0.04)
            while lg.try_write(bytes(100)):
                pass
            with self.assertRaises(ShmError) as cm:
                lg.write(bytes(100), timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")

            async def main():
                w = asyncio.ensure_future(lg.write_async(bytes(99), 9, timeout=5))
                await asyncio.sleep(0.05)
                self.assertFalse(w.done())
                got = [await lg.read_async(timeout=1), await lg.read_async(timeout=1)]
                await w
                got.append(await lg.read_async(timeout=1))
                return got

            got = asyncio.run(main())
            self.assertEqual(got, [(0, bytes(100)), (0, bytes(100)), (9, bytes(99))])

    def test_a_python_writer_killed_mid_record_is_padded_over(self):
        with new_log(4096, "mpsc", max_record=200) as lg:
            h = json.dumps(lg.handle())
            for fault in ("log.write.after_marker:3", "log.write.mid_payload:3", "log.write.after_claim:3"):
                with self.subTest(fault=fault):
                    r = child("log-write", h, "1", "10", fault)
                    self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
                    self.assertTrue(lg.try_write(b"after", 5))
                    got = []
                    deadline = time.monotonic() + 5
                    while len(got) < 3 and time.monotonic() < deadline:
                        rec = lg.read(timeout=5)
                        got.append(rec if rec[0] == 5 else struct.unpack_from("<II", rec[1]))
                    self.assertEqual(got, [(1, 0), (1, 1), (5, b"after")])
                    self.assertIsNone(lg.try_read())

    def test_ctrl_c_interrupts_a_blocking_read(self):
        with new_log(1024) as lg:
            p = child("log-block", json.dumps(lg.handle()), wait=False)
            self.assertEqual(p.stdout.readline().strip(), "ready")
            took, err = sigint(p, 0.3)
            self.assertLess(took, 1.0)
            self.assertIn("KeyboardInterrupt", err)

    # ---- batches, claims, validate ---------------------------------------------------------------

    def test_write_batch_all_prefix_full_and_bad_items(self):
        for mode in ("spsc", "mpsc"):
            with self.subTest(mode=mode), new_log(1024, mode) as lg:
                self.assertEqual(lg.try_write_batch([]), 0)
                self.assertEqual(lg.try_write_batch([b"a", "h\u00e9", bytearray(b"xyz"), memoryview(b"")], 7), 4)
                self.assertEqual(lg.size, 4 * 16 - 8)
                lg.validate()
                self.assertEqual(list(lg), [(7, b"a"), (7, "h\u00e9".encode()), (7, b"xyz"), (7, b"")])
                self.assertEqual(lg.try_write_batch(iter([b"g"])), 1)  # any iterable
                self.assertEqual(lg.try_read(), (0, b"g"))
                self.assertIsNone(lg.try_read())  # publishes the head of what was read
                # head = tail = 72: 14 records of 64 bytes fit before the end (56 bytes left there);
                # a batch never wraps, so the next one starts with a 56-byte padding record.
                self.assertEqual(lg.try_write_batch([bytes([i]) * 56 for i in range(20)], 2), 14)
                self.assertEqual(lg.try_write_batch([b"\xee" * 56] * 3, 3), 1)  # 1024 - 896 - 56 = 72 bytes free
                pad = struct.unpack_from("<II", lg.segment.buf, lg._data + 1024 - 56)
                self.assertEqual(pad, (56, PAD))
                self.assertEqual(lg.size, 14 * 64 + 56 + 64)
                self.assertEqual(lg.try_write_batch([b"x"]), 0)  # full: 8 bytes free, 16 needed
                # A bad item anywhere: nothing is written, the error of the first bad item.
                for items, exc in (([b"ok", bytes(505)], ValueError), ([b"ok", 5, bytes(505)], TypeError),
                                   ([bytes(505), 5], ValueError)):
                    before = lg.size
                    with self.assertRaises(exc):
                        lg.try_write_batch(items)
                    self.assertEqual(lg.size, before)
                for bad in (-1, 65536, True, 1.5):
                    with self.assertRaises(ValueError):
                        lg.try_write_batch([b"x"], bad)
                with self.assertRaises(TypeError):
                    lg.try_write_batch(b"not a list")
                got = []
                self.assertEqual(lg.try_read_batch(lambda t, b: got.append((t, b))), 15)
                self.assertEqual(got, [(2, bytes([i]) * 56) for i in range(14)] + [(3, b"\xee" * 56)])
                lg.validate()
        with new_log(1024) as lg:
            lg.close()
            with self.assertRaises(ShmError) as cm:
                lg.try_write_batch([b"x"])
            self.assertEqual(cm.exception.code, "ECLOSED")

    def test_write_batch_is_one_publish_with_a_prefix_when_room_is_short(self):
        for mode in ("spsc", "mpsc"):
            with self.subTest(mode=mode), new_log(256, mode) as lg:
                self.assertEqual(lg.try_write_batch([bytes(56)] * 3), 3)  # 192 of 256 bytes
                self.assertEqual(lg.try_write_batch([bytes(24), bytes(24), bytes(24)]), 2)  # 64 left: 2 x 32
                self.assertEqual(lg.size, 256)
                self.assertEqual([len(b) for _, b in lg], [56, 56, 56, 24, 24])
                self.assertIsNone(lg.try_read())
                wide = memoryview(array.array("I", [1, 2]))  # len() 2, 8 bytes
                self.assertEqual(lg.try_write_batch((wide, b"z")), 2)
                self.assertEqual(list(lg), [(0, struct.pack("=II", 1, 2)), (0, b"z")])


    def test_claims_commit_abort_context_manager_and_misuse(self):
        for mode in ("spsc", "mpsc"):
            with self.subTest(mode=mode), new_log(1024, mode) as lg:
                c = lg.try_claim(100, 5)
                self.assertEqual((len(c.data), c.length, c.type, c.open), (100, 100, 5, True))
                c.data[:5] = b"hello"
                self.assertIsNone(lg.try_read())  # not visible before the commit
                for op in (lambda: lg.try_write(b"x"), lambda: lg.try_write_batch([b"x"]), lambda: lg.try_claim(1)):
                    with self.assertRaises(ShmError) as cm:
                        op()
                    self.assertEqual(cm.exception.code, "EINVAL")
                    self.assertIn("claim", str(cm.exception))
                with self.assertRaises(ValueError):
                    c.commit(101)  # the claim stays open
                self.assertTrue(c.open)
                c.commit(5)  # shrunk: the rest of the claim is a padding record
                self.assertFalse(c.open)
                with self.assertRaises(ValueError):
                    c.data[0]  # the view is released with the commit
                with self.assertRaises(ShmError) as cm:
                    c.commit()
                self.assertEqual(cm.exception.code, "EINVAL")
                c.abort()  # a no-op now
                a = lg.try_claim(10)
                a.data[:] = b"x" * 10
                a.abort()  # readers skip it
                with lg.try_claim(3, 9) as k:
                    k.data[:] = b"abc"  # committed on a clean exit
                with self.assertRaises(KeyError):
                    with lg.try_claim(3) as k2:
                        k2.data[:] = b"zzz"
                        raise KeyError("aborted")
                self.assertFalse(k2.open)
                with lg.try_claim(8) as k3:
                    k3.data[:2] = b"ok"
                    k3.commit(2)
                self.assertEqual(lg.try_claim(0).commit(), None)
                with self.assertRaises(ValueError):
                    lg.try_claim(505)
                with self.assertRaises(ValueError):
                    lg.try_claim(1, 65536)
                self.assertEqual(list(lg), [(5, b"hello"), (9, b"abc"), (0, b"ok"), (0, b"")])
                lg.validate()
                # Full: no claim; a claim that fills the log exactly.
                while lg.try_write(bytes(56)):
                    pass
                self.assertIsNone(lg.try_claim(56))
                lg.try_read_batch(lambda t, b: None)
            # close() with a claim open gives it up: the next writer's record is read next.
            with new_log(1024, mode) as lg:
                h = lg.handle()
                self.assertEqual(lg.try_read(), None)  # lg is the reader
                w = MessageLog.attach(h)
                c = w.try_claim(20)
                c.data[:3] = b"old"
                w.close()
                self.assertFalse(c.open)
                with self.assertRaises(ShmError) as cm:
                    c.commit()
                self.assertEqual(cm.exception.code, "EINVAL")
                w = MessageLog.attach(h)
                self.assertTrue(w.try_write(b"after"))
                self.assertEqual(lg.try_read(), (0, b"after"))
                self.assertIsNone(lg.try_read())
                w.close()

    def test_validate_finds_scribbled_headers(self):
        for mode in ("spsc", "mpsc"):
            for off, val in ((0, 4), (0, 8 + 505), (0, 0x7FFFF000), (4, 65536), (4, PAD), (0, 2000)):
                with self.subTest(mode=mode, off=off, val=val), new_log(1024, mode) as lg:
                    lg.try_write_batch([b"abcdefgh", b"second", b"third"])
                    lg.validate()
                    struct.pack_into("<I", lg.segment.buf, lg._data + 16 + off, val)  # the second record
                    with self.assertRaises(ShmError) as cm:
                        lg.validate()
                    self.assertEqual(cm.exception.code, "EBADHDR")
                    self.assertIn("L3", str(cm.exception))
            for off, val in ((128, 4), (128, 4096), (192, 2048)):
                with self.subTest(mode=mode, off=off), new_log(1024, mode) as lg:
                    lg.try_write(b"x")
                    struct.pack_into("<I", lg.segment.buf, off, val)
                    with self.assertRaises(ShmError) as cm:
                        lg.validate()
                    self.assertEqual(cm.exception.code, "EBADHDR")
        with new_log(1024, "mpsc") as lg:
            lg.try_write(b"x")
            c = lg.try_claim(10)  # in progress: ends the walk
            lg.validate()
            c.abort()
            lg.validate()
            lg.close()
            with self.assertRaises(ShmError) as cm:
                lg.validate()
            self.assertEqual(cm.exception.code, "ECLOSED")

    def test_a_python_child_killed_holding_a_claim_is_recovered(self):
        for mode in ("mpsc", "spsc"):
            with self.subTest(mode=mode), new_log(4096, mode, max_record=200) as lg:
                r = child("log-claim-die", json.dumps(lg.handle()), "1", "3")
                self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
                self.assertIn("claimed", r.stdout)
                # spsc: this process takes the dead writer's role and starts at the published tail;
                # mpsc: the reader pads over the dead claim once it sees the owner is dead.
                self.assertTrue(lg.try_write(b"after", 5))
                got = []
                while len(got) < 4:
                    rec = lg.read(timeout=5)
                    got.append(rec if rec[0] == 5 else struct.unpack_from("<II", rec[1]))
                self.assertEqual(got, [(1, 0), (1, 1), (1, 2), (5, b"after")])
                self.assertIsNone(lg.try_read())
                lg.validate()

    def test_batch_and_claim_writer_children(self):
        for mode in ("spsc", "mpsc"):
            for style in ("batch", "claim"):
                with self.subTest(mode=mode, style=style), new_log(2048, mode, max_record=300) as lg:
                    h = json.dumps(lg.handle())
                    p = child("log-write", h, "4", "500", "-", style, wait=False)
                    r = child("log-read", h, "500")
                    self.assertEqual(p.wait(60), 0, p.stderr.read())
                    out = json.loads(r.stdout)
                    self.assertEqual((out["errors"], out["count"], out["per"]), ([], 500, {"4": 500}))


if __name__ == "__main__":
    unittest.main()
