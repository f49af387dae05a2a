import asyncio
import json
import os
import signal
import struct
import time
import unittest

import shmkit
from shmkit import Channel, SharedMemory, ShmError
from shmkit import layout

from _util import Unlinking, child, sigint, uname

TABLE = 104  # tableOffset field
READY = 96  # readyOffset field


def u64(seg, off):
    return struct.unpack_from("<Q", seg.buf, off)[0]


def new_channel(slots=4, slot_size=64, mode="mpmc", **kw):
    return Unlinking(Channel.create(uname("chan"), slots, slot_size, mode, **kw))


def payload(i, slot_size):
    n = 4 + (i * 40503) % (slot_size - 3)
    return struct.pack("<I", i) + bytes((i * 31 + k * 7) & 255 for k in range(4, n))


def ids_of(out):
    return [int(x) for x in out.split() if x.lstrip("-").isdigit()]


class ChannelTest(unittest.TestCase):
    def test_roundtrip_every_payload_kind_and_release(self):
        for mode in ("mpmc", "spsc"):
            with self.subTest(mode=mode), new_channel(4, 64, mode) as ch:
                self.assertEqual((ch.slots, ch.slot_size, ch.mode, ch.max_processes), (4, 64, mode, 64))
                self.assertIsNone(ch.try_recv())
                self.assertTrue(ch.try_send(b"bytes"))
                ch.send("wörld ✓")
                ch.send(bytearray(b"ba"))
                ch.send(memoryview(b"--mv--")[2:4])
                self.assertEqual((len(ch), ch.available), (4, 0))
                self.assertFalse(ch.try_send(b"full"))
                m = ch.recv(timeout=1)
                self.assertEqual(bytes(m), b"bytes")
                self.assertTrue(m.bytes.readonly)
                with ch.recv() as m2:
                    self.assertEqual(m2.text(), "wörld ✓")
                self.assertEqual(ch.available, 1)  # m2 released by the with block, m still held
                self.assertEqual(ch.try_recv().tobytes(), b"ba")
                self.assertEqual(ch.try_recv().tobytes(), b"mv")
                m.release()
                m.release()  # idempotent
                self.assertEqual(len(m.bytes), 0)
                ch.send(json.dumps({"a": [1, 2]}))
                self.assertEqual(ch.recv().json(), {"a": [1, 2]})
                ch.send(b"")
                self.assertEqual(len(ch.recv()), 0)
                for m in list(ch):  # nothing left
                    self.fail(m)

    def test_loans_recv_into_and_batches(self):
        with new_channel(8, 32) as ch:
            ln = ch.try_loan()
            ln.buf[:3] = b"abc"
            ln.send(3)
            self.assertEqual(len(ln.buf), 0)
            with self.assertRaises(ShmError):
                ln.send(3)
            with ch.loan(timeout=1) as ln2:  # discarded by the with block
                self.assertEqual(len(ln2.buf), 32)
            self.assertEqual(ch.available, 7)
            with self.assertRaises(ValueError):
                ch.try_loan().send(33)
            buf = bytearray(32)
            self.assertEqual(ch.try_recv_into(buf), 3)
            self.assertEqual(buf[:3], b"abc")
            self.assertIsNone(ch.try_recv_into(buf))
            with self.assertRaises(ValueError):
                ch.try_recv_into(bytearray(31))
            self.assertEqual(ch.try_send_batch([b"1", "2", b"3"]), 3)
            got = []
            self.assertEqual(ch.try_recv_batch(lambda v: got.append(bytes(v))), 3)
            self.assertEqual(got, [b"1", b"2", b"3"])
            self.assertEqual(ch.available, 7)  # the loan of the ValueError is still out
            # fn raises: that message counts as received, the rest stays for the next receive.
            ch.send_batch([b"a", b"b", b"c"], timeout=1)
            seen = []

            def boom(v):
                seen.append(bytes(v))
                raise RuntimeError("stop")

            with self.assertRaises(RuntimeError):
                ch.try_recv_batch(boom)
            self.assertEqual(len(ch), 2)
            self.assertEqual([m.tobytes() for m in ch], [b"b", b"c"])
            self.assertEqual(seen, [b"a"])
        # fn closes a channel that does not own its segment: the batch ends, nothing more is taken.
        seg = SharedMemory.create(None, Channel.byte_length_of(8, 16))
        try:
            ch = Channel.init(seg, 0, 8, 16)
            ch.try_send_batch([b"1", b"2", b"3"])
            got = []
            self.assertEqual(ch.try_recv_batch(lambda v: (got.append(bytes(v)), ch.close())), 1)
            self.assertEqual(got, [b"1"])
            again = Channel.at(seg, 0)
            # The burst had claimed all three: close() freed the two not handed out (dropped).
            self.assertEqual((len(again), again.available), (0, 8))
            self.assertEqual(again.reclaim(), 0)
            again.close()
        finally:
            seg.unlink()
            seg.close()

    def test_send_batch_is_one_call_partial_in_order_and_checked_first(self):
        import array
        for mode in ("spsc", "mpmc"):
            with self.subTest(mode=mode), new_channel(300, 64, mode) as ch:
                items = [payload(i, 64) for i in range(400)]
                mixed = list(items)
                mixed[1] = bytearray(items[1])
                mixed[2] = memoryview(items[2])
                mixed[3] = memoryview(array.array("B", items[3]))
                mixed[4] = memoryview(bytes(x for b in items[4] for x in (b, 0)))[::2]  # not contiguous
                mixed[5], items[5] = "héllo ✓", "héllo ✓".encode()
                mixed[6] = b""
                items[6] = b""
                self.assertEqual(ch.try_send_batch([]), 0)
                with self.assertRaisesRegex(ValueError, "longer than the slot size"):
                    ch.try_send_batch(items[:10] + [b"x" * 65])
                self.assertEqual((len(ch), ch.available), (0, 300))  # nothing of that call was sent
                self.assertEqual(ch.try_send_batch(iter(mixed)), 300)  # as many as there are slots (2 chunks)
                self.assertEqual(ch.try_send_batch(items), 0)
                got = []
                while len(got) < 300:
                    ch.try_recv_batch(lambda v: got.append(bytes(v)))
                self.assertEqual(got, items[:300])
                # send_batch waits while full: a receiver thread on another Channel object drains.
                import threading
                with new_channel(8, 64, mode) as tx:
                    rx = Channel.attach(tx.handle())
                    out = []

                    def drain():
                        while len(out) < 1000:
                            rx.recv_batch(lambda v: out.append(bytes(v)), timeout=10)

                    t = threading.Thread(target=drain)
                    t.start()
                    many = [payload(i, 64) for i in range(1000)]
                    tx.send_batch(many, timeout=20)
                    t.join(20)
                    rx.close()
                    self.assertEqual(out, many)
                # A full channel: the items that fit are sent, then ETIMEDOUT.
                self.assertEqual(ch.try_send_batch(items[:299]), 299)
                with self.assertRaises(ShmError) as cm:
                    ch.send_batch([b"a", b"b", b"c"], timeout=0.05)
                self.assertEqual(cm.exception.code, "ETIMEDOUT")
                self.assertEqual(len(ch), 300)

    def test_recv_run_and_populate_options(self):
        with self.assertRaisesRegex(ValueError, "recvRun must be an integer in 1..256"):
            Channel.create(uname("chan"), 4, 16, recv_run=0)
        with new_channel(64, 16, "spsc", recv_run=8, populate=False) as ch:
            self.assertEqual(ch._run, 8)
            rx = Channel.attach(ch.handle(), recv_run=8)
            ch.try_send_batch([b"%d" % i for i in range(20)])
            m = rx.try_recv()
            self.assertEqual(m.tobytes(), b"0")
            self.assertEqual(len(ch), 20 - 8)  # a run of 8 was claimed at once
            m.release()
            def take(m):
                with m:
                    return m.tobytes()

            got = [take(rx.recv(timeout=1)) for _ in range(7)]
            buf = bytearray(16)
            n = rx.recv_into(buf, timeout=1)
            got.append(bytes(buf[:n]))
            got += [take(m) for m in rx]
            self.assertEqual(got, [b"%d" % i for i in range(1, 20)])
            self.assertEqual(ch.available, 64)
            rx.close()
        with new_channel(8, 16, "mpmc", recv_run=8) as ch:
            self.assertEqual(ch._run, 1)  # spsc only, as in TypeScript

    def test_structured_values(self):
        from datetime import datetime, timezone
        for mode in ("mpmc", "spsc"):
            with self.subTest(mode=mode), new_channel(4, 256, mode) as ch:
                v = {"when": datetime(2020, 1, 2, tzinfo=timezone.utc), "tags": {"a"}, "m": {1: [2.5, None]},
                     "big": 2**70, "s": "€😀", "b": b"\x00\xff"}
                v["self"] = v
                self.assertTrue(ch.try_send_value(v))
                ch.send_value([1, "two"], timeout=1)
                asyncio.run(ch.send_value_async(None, timeout=1))
                with ch.recv(timeout=1) as m:
                    self.assertEqual(m.bytes[0], 0x56)  # the tag byte "V", as TypeScript on Deno and Node
                    got = m.value()
                self.assertIs(got["self"], got)
                del got["self"], v["self"]
                self.assertEqual(got, v)
                with ch.recv(timeout=1) as m:
                    self.assertEqual(m.value(), [1, "two"])
                with ch.recv(timeout=1) as m:
                    self.assertIsNone(m.value())
                with self.assertRaisesRegex(ValueError, "longer than the slot size"):
                    ch.try_send_value("x" * 300)
                with self.assertRaises(TypeError):
                    ch.try_send_value(object())
                ch.send(b"J\xff\x0f0")  # a Bun-written message: JavaScriptCore's format
                ch.send(b"raw")
                ch.send(b"V\xff\x0f\x41\x05")  # truncated
                for code, pat in (("ENOTSUP", "JavaScriptCore"), ("EINVAL", "not sent by sendValue"),
                                  ("EINVAL", "dense array of 5 elements in 0 bytes")):
                    with ch.recv(timeout=1) as m:
                        with self.assertRaisesRegex(ShmError, pat) as cm:
                            m.value()
                        self.assertEqual(cm.exception.code, code)
                ch.close()
                with self.assertRaises(ShmError):
                    ch.try_send_value(1)

    def test_options_and_messages_match_typescript(self):
        name = uname("chan")
        for kw, exc, msg in ((dict(slots=0), ValueError, "slots must be an integer in 1..16777216, got 0"),
                             (dict(slot_size=0), ValueError, "slotSize must be an integer in 1..4294967295"),
                             (dict(mode="spmc"), TypeError, 'mode must be "spsc", "mpmc" or "spsc-ordered", got \'spmc\''),
                             (dict(max_processes=257), ValueError, "maxProcesses must be an integer in 1..256")):
            args = dict(slots=4, slot_size=64, mode="mpmc", max_processes=64)
            args.update(kw)
            with self.subTest(kw=kw), self.assertRaises(exc) as cm:
                Channel.create(name, **args)
            self.assertIn(msg, str(cm.exception))
            self.assertIn(f'Cannot create channel "{name}"', str(cm.exception))
        self.assertFalse(SharedMemory.exists(name))
        with new_channel(2, 16) as ch:
            with self.assertRaises(ValueError) as cm:
                ch.try_send(b"x" * 17)
            self.assertIn("the message is 17 bytes, longer than the slot size of 16 bytes", str(cm.exception))
            with self.assertRaises(TypeError):
                ch.try_send(12)
        with self.assertRaises(ShmError) as cm:
            ch.try_send(b"x")
        self.assertEqual(cm.exception.code, "ECLOSED")

    def test_full_and_empty_channels_time_out_and_async_forms_wait(self):
        for mode in ("mpmc", "spsc-ordered"):  # spsc-ordered: waits on the ring's head and tail
            with self.subTest(mode=mode):
                self._time_out_and_wait(mode)

    def _time_out_and_wait(self, mode):
        with new_channel(2, 16, mode) as ch:
            t = time.monotonic()
            with self.assertRaises(ShmError) as cm:
                ch.recv(timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")
            ch.send(b"1")
            ch.send(b"2")
            with self.assertRaises(ShmError) as cm:
                ch.send(b"3", timeout=0.1)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")
            self.assertLess(time.monotonic() - t, 2.0)

            async def go():
                loop = asyncio.get_running_loop()
                later = loop.call_later(0.05, lambda: ch.try_recv().release())
                await ch.send_async(b"3", timeout=2)  # waits for the release above
                later.cancel()
                got = []
                for _ in range(2):
                    m = await ch.recv_async(timeout=1)
                    got.append(m.tobytes())
                    m.release()
                loop.call_later(0.05, ch.try_send, b"late")
                m = await ch.recv_async(timeout=2)
                got.append(m.tobytes())
                m.release()
                return got

            self.assertEqual(asyncio.run(go()), [b"2", b"3", b"late"])

            async def more():
                ln = await ch.loan_async(timeout=1)
                ln.buf[:2] = b"ln"
                ln.send(2)
                got = []
                self.assertEqual(await ch.recv_batch_async(lambda v: got.append(bytes(v)), timeout=1), 1)
                ch.send(b"it")
                async for m in ch:  # receives until the channel is closed
                    got.append(m.tobytes())
                    m.release()
                    asyncio.get_running_loop().call_later(0.05, ch.close)
                return got

            self.assertEqual(asyncio.run(more()), [b"ln", b"it"])
            self.assertTrue(ch.closed)

    def test_placement_handles_and_attach(self):
        opts = (4, 100)
        size = Channel.byte_length_of(*opts) + 64
        seg = SharedMemory.create(None, size)
        try:
            ch = Channel.init(seg, 64, *opts, mode="spsc", max_processes=3)
            self.assertEqual(ch.byte_offset, 64)
            ch.send("placed")
            h = json.loads(json.dumps(ch.handle()))
            self.assertEqual((h["kind"], h["byteOffset"]), ("shmkit.channel", 64))
            ch.close()
            again = Channel.at(seg, 64)
            self.assertEqual((again.mode, again.max_processes), ("spsc", 3))
            self.assertEqual(again.recv().text(), "placed")
            again.close()
            with self.assertRaises(ShmError) as cm:
                Channel.at(seg, 0)
            self.assertEqual(cm.exception.code, "EBADHDR")
        finally:
            seg.unlink()
            seg.close()
        with new_channel() as ch:
            other = shmkit.attach(json.loads(json.dumps(ch.handle())))
            self.assertIsInstance(other, Channel)
            other.send(b"via attach")
            self.assertEqual(ch.recv().tobytes(), b"via attach")
            other.close()
            o2 = Channel.open(ch.segment.name)
            o2.close()

    def test_corrupt_headers_slot_table_and_ring_index_are_EBADHDR(self):
        ch = Channel.create(uname("chan"), 4, 64, "mpmc")
        ch.unlink()
        seg = ch.segment
        try:
            # Header fields: each one broken in turn makes open EBADHDR.
            ready = u64(seg, READY)
            for off, fmt, val in ((64, "<I", 0), (64, "<I", 5), (68, "<I", 65), (72, "<I", 2), (76, "<I", 4),
                                  (80, "<Q", 128), (96, "<Q", ready + 64), (104, "<Q", 0), (112, "<Q", 4096),
                                  (124, "<I", 0), (12, "<I", 128), (16, "<Q", 10**9), (72, "<I", 3),
                                  (ready + 64, "<I", 3)):  # the ready ring's capacity
                saved = bytes(seg.buf[off:off + 8])
                struct.pack_into(fmt, seg.buf, off, val)
                with self.subTest(off=off), self.assertRaises(ShmError) as cm:
                    Channel.at(seg, 0)
                self.assertEqual(cm.exception.code, "EBADHDR", cm.exception)
                seg.buf[off:off + 8] = saved
            Channel.at(seg, 0).close()
            table = u64(seg, TABLE)
            # A queued index whose state word is no longer QUEUED: EBADHDR, the index is dropped.
            ch.send(b"a")
            i = struct.unpack_from("<I", seg.buf, ready + 384)[0]  # mpmc slot 0: value, seq
            struct.pack_into("<I", seg.buf, table + 8 * i + 4, 0)
            with self.assertRaises(ShmError) as cm:
                ch.try_recv()
            self.assertEqual(cm.exception.code, "EBADHDR")
            self.assertIsNone(ch.try_recv())
            # A length above slotSize: EBADHDR, and the block comes back.
            ch.send(b"b")
            j = struct.unpack_from("<I", seg.buf, ready + 384 + 8)[0]
            struct.pack_into("<I", seg.buf, table + 8 * j, 65)
            with self.assertRaises(ShmError) as cm:
                ch.recv(timeout=1)
            self.assertEqual(cm.exception.code, "EBADHDR")
            self.assertEqual(ch.available, 4)
            # The ready ring hands out an index >= slots.
            ch.send(b"c")
            struct.pack_into("<I", seg.buf, ready + 384 + 16, 999)
            with self.assertRaises(ShmError) as cm:
                ch.recv(timeout=1)
            self.assertEqual(cm.exception.code, "EBADHDR")
            self.assertEqual(ch.reclaim(), 1)  # its block, QUEUED and in no ring, is an orphan
            # A duplicated index in the ring (the same block twice): the second copy is refused.
            ch.send(b"d")
            k = struct.unpack_from("<I", seg.buf, ready + 384 + 24)[0]
            self.assertTrue(ch._local.ring.slots == 4)
            # Position 4 is slot 0 again (value, seq): make it FULL with the same index.
            struct.pack_into("<II", seg.buf, ready + 384, k, 5)
            m = ch.recv(timeout=1)
            self.assertEqual(m.tobytes(), b"d")
            with self.assertRaises(ShmError) as cm:
                ch.try_recv()
            self.assertEqual(cm.exception.code, "EBADHDR")
            m.release()
            # Garbage in the slot table: malformed words are reclaimed, never followed.
            for w in (0x12345678, 0x400000FF, 0x80000000 | 200):
                struct.pack_into("<I", seg.buf, table + 4, w)
                self.assertGreaterEqual(ch.reclaim(), 1)
            self.assertEqual(ch.available, 4)
            ch.send(b"after")
            self.assertEqual(ch.recv(timeout=1).tobytes(), b"after")
        finally:
            ch.close()

    # ---- spsc-ordered (mode 2, docs/layout/channel.md "spsc-ordered") -------------------------

    def test_ordered_many_laps_in_order_out_of_order_release_and_reclaim_0(self):
        with new_channel(5, 40, "spsc-ordered") as ch:
            seg = ch.segment
            self.assertEqual(ch.mode, "spsc-ordered")
            self.assertEqual(struct.unpack_from("<I", seg.buf, 72)[0], 2)  # the mode word
            self.assertEqual(struct.unpack_from("<I", seg.buf, 28)[0], 2)  # flags = mode
            ready = u64(seg, READY)
            self.assertEqual(struct.unpack_from("<I", seg.buf, ready + 72)[0], 0)  # an spsc ready ring
            self.assertEqual((len(ch), ch.available, ch.reclaim()), (0, 5, 0))
            nxt = 0
            for lap in range(60):  # 60 laps of 1..5 messages: positions wrap the ring many times
                k = 1 + lap % 5
                for i in range(k):
                    self.assertTrue(ch.try_send(payload(nxt + i, 40)))
                self.assertEqual((len(ch), ch.available), (k, 5 - k))
                if k == 5:
                    self.assertFalse(ch.try_send(b"full"))
                ms = [ch.try_recv() for _ in range(k)]
                self.assertIsNone(ch.try_recv())
                self.assertEqual([m.tobytes() for m in ms], [payload(nxt + i, 40) for i in range(k)])
                self.assertEqual(len(ch), 0)
                # Release in reverse: nothing comes free until the oldest goes, then all of them.
                for m in reversed(ms[1:]):
                    m.release()
                    self.assertEqual(ch.available, 5 - k)
                ms[0].release()
                self.assertEqual(ch.available, 5)
                nxt += k
            # A held message holds back the blocks after it, whatever was released behind it.
            for i in range(5):
                ch.send(b"%d" % i)
            held = ch.recv(timeout=1)
            for _ in range(4):
                ch.recv(timeout=1).release()
            self.assertEqual(ch.available, 0)
            with self.assertRaises(ShmError) as cm:
                ch.send(b"x", timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")
            held.release()
            self.assertEqual(ch.available, 5)
            self.assertEqual(ch.reclaim(), 0)

    def test_ordered_loans_publish_in_order_and_a_discarded_loan_is_skipped(self):
        with new_channel(6, 16, "spsc-ordered") as ch:
            a, b, c = ch.try_loan(), ch.try_loan(), ch.try_loan()
            self.assertEqual(ch.available, 3)  # reserved by this object
            c.buf[:1] = b"c"
            c.send(1)
            b.buf[:1] = b"b"
            b.send(1)
            self.assertIsNone(ch.try_recv())  # a, loaned first, is not sent yet: nothing after it goes
            ch.send(b"d")  # queued behind the loan too
            a.discard()  # a becomes a SKIP record: b, c, d go out
            self.assertEqual([bytes(m) for m in self._drain(ch)], [b"b", b"c", b"d"])
            self.assertEqual(ch.available, 6)  # the SKIP was released on the way
            # The last reserved loan discarded is simply unreserved: no SKIP, the block is reused.
            e = ch.try_loan()
            e.discard()
            self.assertEqual(ch.available, 6)
            with ch.loan(timeout=1) as f:  # discarded by the with block
                idx = f._index
            g = ch.try_loan()
            self.assertEqual(g._index, idx)
            g.buf[:2] = b"gg"
            g.send(2)
            with ch.recv(timeout=1) as m:
                self.assertEqual(m.tobytes(), b"gg")
            # A loan can only be sent or discarded once, and a loan index that is not ours is refused by C.
            with self.assertRaises(ShmError):
                g.send(1)
            from shmkit._lib import lib
            self.assertLess(lib().shmkit_chan_queue(ch._addr, (idx + 3) % 6, 1), 0)
            self.assertLess(lib().shmkit_chan_unloan(ch._addr, 99), 0)
            # Every block loaned: try_loan None; a loan wait times out.
            loans = [ch.try_loan() for _ in range(6)]
            self.assertTrue(all(ln is not None for ln in loans))
            self.assertIsNone(ch.try_loan())
            with self.assertRaises(ShmError) as cm:
                ch.loan(timeout=0.05)
            self.assertEqual(cm.exception.code, "ETIMEDOUT")

    def _drain(self, ch):
        out = []
        while True:
            m = ch.try_recv()
            if m is None:
                return out
            out.append(m.tobytes())
            m.release()

    def test_ordered_batches_recv_into_and_a_raising_callback(self):
        with new_channel(8, 24, "spsc-ordered", recv_run=4) as ch:  # recv_run is ignored in this mode
            items = [payload(i, 24) for i in range(11)]
            ch.send_batch(items[:3])
            self.assertEqual(ch.try_send_batch(items[3:11]), 5)  # 5 of 8 fit
            self.assertEqual(ch.available, 0)
            got = []
            self.assertEqual(ch.try_recv_batch(lambda v: got.append(bytes(v)), max=2), 2)
            buf = bytearray(24)
            n = ch.try_recv_into(buf)
            got.append(bytes(buf[:n]))

            def boom(v):
                got.append(bytes(v))
                if len(got) == 5:
                    raise RuntimeError("stop")

            with self.assertRaises(RuntimeError):
                ch.try_recv_batch(boom)
            self.assertEqual(len(ch), 3)  # the rest of the burst waits in order
            m = ch.try_recv()
            got.append(m.tobytes())
            self.assertEqual(ch.recv_batch(lambda v: got.append(bytes(v)), timeout=1), 2)
            self.assertEqual(got, items[:8])
            self.assertEqual(ch.available, 5)  # m (message 5) holds back its block and the two after it
            m.release()
            self.assertEqual(ch.available, 8)
            ch.send_batch(items[8:11], timeout=1)
            self.assertEqual(self._drain(ch), items[8:11])

    def test_ordered_roles_EBUSY_and_a_dead_receivers_messages_come_again(self):
        with new_channel(8, 48, "spsc-ordered") as ch:
            h = json.dumps(ch.handle())
            other = Channel.attach(json.loads(h))
            try:
                self.assertTrue(ch.try_send(b"mine"))  # ch takes the sending role
                with self.assertRaises(ShmError) as cm:
                    other.try_send(b"x")
                self.assertEqual(cm.exception.code, "EBUSY")
                self.assertIn("sending side of this spsc-ordered channel", str(cm.exception))
                self.assertEqual(other.recv(timeout=1).tobytes(), b"mine")  # other receives
                with self.assertRaises(ShmError) as cm:
                    ch.try_recv()
                self.assertEqual(cm.exception.code, "EBUSY")
                self.assertIn("receiving side", str(cm.exception))
            finally:
                other.close()  # releases its message and the receiving role
            self.assertIsNone(ch.try_recv())
            ch.close()
            # A receiving child process takes 4 messages, releases the 1st and 3rd, is SIGKILLed
            # holding the 2nd and 4th: the next receiver gets 1.. again (at least once), in order.
            ch = Channel.attach(json.loads(h))
            for i in range(6):
                ch.send(payload(i, 48))
            r = child("chan-keep", h, "4")
            self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
            self.assertEqual(ids_of(r.stdout), [0, 1, 2, 3])
            got = []
            for m in list(ch):
                got.append(struct.unpack_from("<I", m.bytes)[0])
                self.assertEqual(m.tobytes(), payload(got[-1], 48))
                m.release()
            self.assertEqual(got, [1, 2, 3, 4, 5])
            self.assertEqual(ch.available, 8)
            ch.close()

    def test_ordered_a_sender_killed_before_its_tail_store_leaves_nothing_visible(self):
        # Killed after its 5th commit: 0..4 are there; killed after reserving its 5th block (or
        # after writing it): 0..3. The next sender starts at the published tail, byte for byte.
        for fault, visible in (("channel.send.after_enqueue:5", 5), ("channel.take.after_claim:5", 4),
                               ("channel.send.after_write:5", 4)):
            with self.subTest(fault=fault), new_channel(8, 48, "spsc-ordered") as ch:
                h = json.dumps(ch.handle())
                r = child("chan-send", h, "0", "20", fault)
                self.assertEqual(r.returncode, -signal.SIGKILL, r.stderr)
                self.assertEqual(len(ch), visible)
                for i in range(100, 103):
                    ch.send(payload(i, 48), timeout=1)
                got = []
                for m in list(ch):
                    got.append(struct.unpack_from("<I", m.bytes)[0])
                    self.assertEqual(m.tobytes(), payload(got[-1], 48))
                    m.release()
                self.assertEqual(got, list(range(visible)) + [100, 101, 102])
                self.assertEqual(ch.available, 8)

    def test_ordered_corrupt_ring_values_lengths_and_counters_are_EBADHDR(self):
        seg = SharedMemory.create(uname("chan"), Channel.byte_length_of(4, 16))
        seg.unlink()
        ch = Channel.init(seg, 0, 4, 16, "spsc-ordered")  # the segment stays ours across ch.close()
        ready, table = u64(seg, READY), u64(seg, TABLE)
        tail, vals = ready + 128, ready + 384

        def pos_val(p, v):
            struct.pack_into("<I", seg.buf, vals + 4 * (p & 3), v)

        def ebadhdr(f):
            with self.assertRaises(ShmError) as cm:
                f()
            self.assertEqual(cm.exception.code, "EBADHDR", cm.exception)

        def val(p):
            return struct.unpack_from("<I", seg.buf, vals + 4 * (p & 3))[0]

        try:
            # A ring value >= slots: EBADHDR, the position is dropped, the next one is received.
            ch.send(b"a")
            ch.send(b"b")
            pos_val(0, 999)
            ebadhdr(ch.try_recv)
            held = ch.recv(timeout=1)
            self.assertEqual(held.tobytes(), b"b")
            # The same block again while it is held: EBADHDR, dropped.
            ch.send(b"c")  # position 2
            pos_val(2, held.index)
            ebadhdr(ch.try_recv)
            # A length above slotSize: EBADHDR, released on the way.
            ch.send(b"d")  # position 3
            struct.pack_into("<I", seg.buf, table + 8 * val(3), 17)
            ebadhdr(lambda: ch.recv(timeout=1))
            self.assertIsNone(ch.try_recv())
            self.assertEqual(ch.available, 1)  # b holds back the two dropped positions after it
            # The tail more than `slots` past the head, then behind the receiver: EBADHDR.
            t = struct.unpack_from("<I", seg.buf, tail)[0]
            for bad in (t + 9, t - 1):
                struct.pack_into("<I", seg.buf, tail, bad)
                ebadhdr(ch.try_recv)
                struct.pack_into("<I", seg.buf, tail, t)
            self.assertIsNone(ch.try_recv())
            held.release()
            self.assertEqual(ch.available, 4)
            # A whole lap of SKIP records: released on the way, nothing delivered.
            for k in range(4):
                ch.send(b"s")
                struct.pack_into("<I", seg.buf, table + 8 * val(t + k), 0xFFFFFFFF)
            self.assertIsNone(ch.try_recv())
            self.assertEqual(ch.available, 4)
            # A sender starting on a ring whose last value is out of range: EBADHDR.
            ch.close()
            pos_val(t + 3, 77)
            ch = Channel.at(seg, 0)
            ebadhdr(lambda: ch.try_send(b"x"))
            self.assertIsNone(ch.try_recv())  # the receiving side is unaffected
        finally:
            ch.close()
            seg.close()

    def test_cross_process_mpmc_exactly_once_in_order_per_sender(self):
        with new_channel(8, 48, "mpmc") as ch:
            h = json.dumps(ch.handle())
            per = 400
            senders = [child("chan-send", h, str(k * 10000), str(per), wait=False) for k in range(3)]
            receiver = child("chan-recv", h, wait=False)
            got = []
            while len(got) < per:  # this process receives too, while the child receives
                m = ch.recv(timeout=30)
                i = struct.unpack_from("<I", m.bytes)[0]
                self.assertEqual(m.tobytes(), payload(i, 48))
                got.append(i)
                m.release()
            for p in senders:
                self.assertEqual(p.wait(60), 0, p.stderr.read())
            ch.send(struct.pack("<I", 0xFFFFFFFF))  # STOP for the child receiver
            out, err = receiver.communicate(timeout=60)
            self.assertEqual(receiver.returncode, 0, err)
            theirs = ids_of(out)
            while True:
                m = ch.try_recv()
                if m is None:
                    break
                got.append(struct.unpack_from("<I", m.bytes)[0])
                m.release()
            all_ids = got + theirs
            self.assertEqual(sorted(all_ids), sorted(k * 10000 + i for k in range(3) for i in range(per)))
            for part in (got, theirs):  # FIFO per sender, in each receiver
                for k in range(3):
                    mine = [v for v in part if k * 10000 <= v < k * 10000 + per]
                    self.assertEqual(mine, sorted(mine))
            self.assertEqual(ch.available, 8)

    def test_spsc_second_receiver_process_is_EBUSY_and_a_dead_one_is_taken_over(self):
        with new_channel(4, 16, "spsc") as ch:
            h = json.dumps(ch.handle())
            p = child("chan-block", h, "recv", wait=False)  # takes the receiving side, then parks
            self.assertEqual(p.stdout.readline().strip(), "ready")
            time.sleep(0.3)
            with self.assertRaises(ShmError) as cm:
                ch.try_recv()
            self.assertEqual(cm.exception.code, "EBUSY")
            self.assertIn("receiving side of this spsc channel", str(cm.exception))
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            self.assertIsNone(ch.try_recv())  # the dead receiver's role is taken over
            ch.send(b"z")
            self.assertEqual(ch.recv(timeout=1).tobytes(), b"z")

    def test_participant_entries_EBUSY_while_live_and_freed_from_the_dead(self):
        with new_channel(4, 16, "mpmc", max_processes=1) as ch:
            h = json.dumps(ch.handle())
            p = child("chan-block", h, "recv", wait=False)  # registers, then parks
            self.assertEqual(p.stdout.readline().strip(), "ready")
            time.sleep(0.3)
            with self.assertRaises(ShmError) as cm:
                ch.try_send(b"x")
            self.assertEqual(cm.exception.code, "EBUSY")
            self.assertIn("participant entries", str(cm.exception))
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            self.assertTrue(ch.try_send(b"x"))  # registration reclaims the dead entry

    def test_ctrl_c_interrupts_blocking_recv_and_send(self):
        for side in ("recv", "send"):
            with self.subTest(side=side), new_channel(2, 16) as ch:
                p = child("chan-block", json.dumps(ch.handle()), side, wait=False)
                self.assertEqual(p.stdout.readline().strip(), "ready")
                took, err = sigint(p, 0.3)
                self.assertLess(took, 1.0)
                self.assertIn("KeyboardInterrupt", err)
                seg = ch.segment
                # The interrupted park gave its registration back: the senders' waiters (header 128)
                # and the ready ring's consWaiters (ring + 256) are 0 again.
                self.assertEqual(layout.load32(seg, 128), 0)
                self.assertEqual(layout.load32(seg, u64(seg, READY) + 256), 0)
                if side == "send":
                    self.assertEqual(len(ch), 2)  # its queued messages outlive it
                    self.assertEqual(ch.recv(timeout=1).tobytes(), b"x")

    def test_reclaim_after_a_sigkilled_child_holding_loaned_held_and_queued_blocks(self):
        with new_channel(4, 32) as ch:
            ch.send(b"for the child")
            res = child("chan-hold", json.dumps(ch.handle()))
            self.assertEqual(res.returncode, -signal.SIGKILL, res.stdout + res.stderr)
            self.assertEqual(ch.available, 1)  # LOANED + HELD + QUEUED (not in the ring)
            self.assertEqual(len(ch), 0)
            self.assertEqual(ch.reclaim(), 3)
            self.assertEqual(ch.available, 4)
            self.assertEqual(ch.reclaim(), 0)
            self.assertEqual(struct.unpack_from("<I", ch.segment.buf, 120)[0], 3)  # reclaimed statistic
            # A sender that finds the channel full reclaims by itself, too.
            ch.send(b"x")
            res = child("chan-hold", json.dumps(ch.handle()))
            self.assertEqual(res.returncode, -signal.SIGKILL)
            for _ in range(3):
                ch.send(b"fill", timeout=5)  # the third send needs a reclaimed block
            self.assertEqual(len(ch), 3)

    def test_python_victims_killed_inside_a_batch_send(self):
        # (point, messages delivered before the victim died, blocks reclaim frees): batches of 3.
        cases = [("channel.take.after_claim:5", 3, 2), ("channel.send.after_write:2", 3, 3),
                 ("channel.send.after_queued:2", 3, 3), ("channel.send.after_enqueue:2", 6, 0)]
        for mode in ("mpmc", "spsc"):
            for point, before, freed in cases:
                with self.subTest(mode=mode, point=point), new_channel(8, 40, mode) as ch:
                    h = json.dumps(ch.handle())
                    res = child("chan-send-batch", h, "0", "6", point)
                    self.assertEqual(res.returncode, -signal.SIGKILL, res.stderr)
                    got = []
                    while (m := ch.try_recv()) is not None:
                        self.assertEqual(m.tobytes(), payload(len(got), 40))
                        got.append(struct.unpack_from("<I", m.bytes)[0])
                        m.release()
                    self.assertEqual(got, list(range(before)))
                    self.assertEqual(ch.reclaim(), freed)
                    self.assertEqual(ch.available, 8)
                    self.assertIsNone(ch.try_recv())

    def test_python_victims_killed_inside_send_and_receive(self):
        # (point, victim side, messages the victim handled before dying, blocks reclaim frees)
        cases = [("channel.take.after_claim:3", "send", 2, 1), ("channel.send.after_write:3", "send", 2, 1),
                 ("channel.send.after_queued:3", "send", 2, 1), ("channel.send.after_enqueue:3", "send", 3, 0),
                 ("channel.recv.after_dequeue:3", "recv", 2, 1), ("channel.recv.after_claim:3", "recv", 2, 1),
                 ("channel.release.before:3", "recv", 2, 1)]  # its 3rd (recv_into) is copied, not printed
        for mode in ("mpmc", "spsc"):
            for point, side, before, freed in cases:
                with self.subTest(mode=mode, point=point), new_channel(8, 40, mode) as ch:
                    h = json.dumps(ch.handle())
                    if side == "send":
                        res = child("chan-send", h, "0", "6", point)
                        self.assertEqual(res.returncode, -signal.SIGKILL, res.stderr)
                        got = []
                        while (m := ch.try_recv()) is not None:
                            got.append(struct.unpack_from("<I", m.bytes)[0])
                            m.release()
                        self.assertEqual(got, list(range(before)))
                        ch.close()  # spsc: the receiving side goes to r2 below
                    else:
                        for i in range(6):
                            ch.send(payload(i, 40))
                        ch.close()  # the receiving side is the child's (spsc)
                        res = child("chan-recv", h, point, "6")
                        self.assertEqual(res.returncode, -signal.SIGKILL, res.stderr)
                        theirs = ids_of(res.stdout)
                        self.assertEqual(theirs, list(range(before)))
                    r2 = Channel.attach(json.loads(h))
                    try:
                        self.assertEqual(r2.reclaim(), freed)
                        rest = []
                        while (m := r2.try_recv()) is not None:
                            rest.append(struct.unpack_from("<I", m.bytes)[0])
                            m.release()
                        if side == "recv":  # the message the victim was taking is lost (at most once)
                            self.assertEqual(rest, list(range(3, 6)))
                        self.assertEqual(r2.available, 8)
                        self.assertTrue(r2.try_send(b"on"))
                    finally:
                        r2.close()

    def test_a_forked_child_is_a_new_participant(self):
        with new_channel(4, 16) as ch:
            ch.send(b"parent")
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    m = ch.recv(timeout=5)
                    code = 0 if m.tobytes() == b"parent" and ch._local.pid == os.getpid() else 2
                    ch.send(b"child")
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertEqual(ch.recv(timeout=1).tobytes(), b"child")
            self.assertEqual(ch.reclaim(), 1)  # the child exited holding its message: HELD by the dead


if __name__ == "__main__":
    unittest.main()
