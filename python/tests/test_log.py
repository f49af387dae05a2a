import asyncio
import json
import random
import signal
import struct
import time
import unittest

from shmkit import MessageLog, SharedMemory, ShmError

from _util import child, uname

PAD = 0x80000000


class _Unlinking:
    def __init__(self, lg):
        self.lg = lg

    def __enter__(self):
        return self.lg

    def __exit__(self, *exc):
        self.lg.unlink()
        self.lg.close()


def new_log(capacity=1024, mode="spsc", **kw):
    return _Unlinking(MessageLog.create(uname("log"), capacity, mode, **kw))


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
            time.sleep(0.3)
            t = time.monotonic()
            p.send_signal(signal.SIGINT)
            p.wait(10)
            self.assertLess(time.monotonic() - t, 1.0)
            self.assertIn("KeyboardInterrupt", p.stderr.read())


if __name__ == "__main__":
    unittest.main()
