"""Mutex, Semaphore and Condition (python/shmkit/locks.py): single-process semantics, corrupt
headers, Python-only cross-process counters and pingpong, a Python holder SIGKILLed inside the
critical section, Ctrl-C of a blocked lock, fork."""

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import unittest

from shmkit import Condition, LockGuard, Mutex, Semaphore, SharedMemory, ShmError, attach
from shmkit import layout

from _util import env, sigint, uname

LOCKS_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locks_child.py")


def lchild(mode: str, opts: dict, wait: bool = True, timeout: float = 90):
    cmd = [sys.executable, LOCKS_CHILD, mode, json.dumps(opts)]
    if wait:
        return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Named:
    """Objects (and segments) whose names are removed and which are closed at the end of a test."""

    def __init__(self, test: unittest.TestCase):
        self.objs = []
        test.addCleanup(self.cleanup)

    def __call__(self, obj):
        self.objs.append(obj)
        return obj

    def cleanup(self):
        for o in reversed(self.objs):
            try:
                o.unlink()
            except ShmError:
                pass
            o.close()


def words(seg, n):
    return list(struct.unpack_from(f"<{n}i", seg.buf, 0))


class MutexTest(unittest.TestCase):
    def test_create_lock_unlock_guard_and_context_managers(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mx"), slots=8))
        self.assertEqual(Mutex.byte_length(8), 192)
        self.assertEqual(m.slots, 8)
        self.assertEqual(m.segment.size, 192)
        g = m.lock(timeout=1)
        self.assertIsInstance(g, LockGuard)
        self.assertFalse(g.recovered)
        self.assertTrue(m.held)
        self.assertIsNone(m.try_lock())
        with self.assertRaises(ShmError) as e:
            m.lock(timeout=1)
        self.assertEqual(e.exception.code, "EBUSY")
        g.unlock()
        self.assertFalse(m.held)
        with self.assertRaises(ShmError) as e:
            g.unlock()
        self.assertEqual(e.exception.code, "EPERM")
        with m as g2:
            self.assertTrue(m.held)
            self.assertIs(g2, g)
        self.assertFalse(m.held)
        with m.try_lock() as g3:
            self.assertFalse(g3.recovered)
        self.assertFalse(m.held)
        # A second object of the same process: the process holds it -> EBUSY / None.
        other = keep(Mutex.open(m.segment.name))
        with m:
            self.assertIsNone(other.try_lock())
            with self.assertRaises(ShmError) as e:
                other.lock(timeout=0.1)
            self.assertEqual(e.exception.code, "EBUSY")
        with other:
            pass
        self.assertEqual(layout.load32(m.segment, 64), 0)

    def test_handles_at_init_and_attach_dispatch(self):
        keep = Named(self)
        seg = keep(SharedMemory.create(uname("mxseg"), 4096))
        m = Mutex.init(seg, 0, slots=4)
        c = Condition.init(seg, Mutex.byte_length(4))
        s = Semaphore.init(seg, 320, value=3)
        h = json.loads(json.dumps(m.handle()))
        self.assertEqual(h["kind"], "shmkit.mutex")
        self.assertEqual(h["byteOffset"], 0)
        self.assertEqual(h["segment"]["kind"], "shmkit.shm")
        self.assertEqual(c.handle()["byteOffset"], 192)
        m2 = attach(h)
        self.assertIsInstance(m2, Mutex)
        s2 = attach(json.loads(json.dumps(s.handle())))
        self.assertEqual(s2.value, 3)
        c2 = attach(c.handle())
        self.assertIsInstance(c2, Condition)
        with m2:
            self.assertIsNone(m.try_lock())
        self.assertIsNotNone(Mutex.at(seg, 0).try_lock())
        for o in (m2, s2, c2):
            o.close()
        with self.assertRaises(ShmError) as e:
            Mutex.at(seg, 32)
        self.assertEqual(e.exception.code, "EINVAL")
        with self.assertRaises(ShmError) as e:
            Mutex.at(seg, 192)  # the condition
        self.assertEqual(e.exception.code, "EBADHDR")
        with self.assertRaises(ShmError) as e:
            Semaphore.attach(m.handle())
        self.assertEqual(e.exception.code, "EINVAL")
        with self.assertRaises(ValueError):
            Mutex.init(seg, 4032, slots=64)  # does not fit
        with self.assertRaises(ValueError):
            Mutex.byte_length(0)
        m.close()
        with self.assertRaises(ShmError) as e:
            m.lock()
        self.assertEqual(e.exception.code, "ECLOSED")

    def test_a_header_state_other_than_0_or_1_is_EBADHDR_at_once_and_0_after_the_ready_wait(self):
        keep = Named(self)
        seg = keep(SharedMemory.create(uname("mxstate"), 4096))
        Mutex.init(seg, 0).close()
        layout.store32(seg, layout.HDR["state"], 7)  # a hostile or torn state word
        t0 = time.monotonic()
        with self.assertRaises(ShmError) as e:
            Mutex.at(seg, 0)
        self.assertEqual(e.exception.code, "EBADHDR")
        self.assertIn("impossible state 7", str(e.exception))
        self.assertLess(time.monotonic() - t0, 0.5)
        layout.store32(seg, layout.HDR["state"], 0)  # initializing, and the creator never finishes
        t0 = time.monotonic()
        with self.assertRaises(ShmError) as e:
            Mutex.at(seg, 0)
        self.assertEqual(e.exception.code, "EBADHDR")
        self.assertIn("never initialized", str(e.exception))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        layout.store32(seg, layout.HDR["state"], 1)
        Mutex.at(seg, 0).close()

    def test_close_while_held_abandons_and_the_next_locker_recovers(self):
        keep = Named(self)
        a = keep(Mutex.create(uname("mxab")))
        b = Mutex.open(a.segment.name)
        b.lock()
        g = b._guard
        b.close()
        with self.assertRaises(ShmError) as e:
            g.unlock()
        self.assertEqual(e.exception.code, "ECLOSED")
        g = a.lock(timeout=1)
        self.assertTrue(g.recovered)
        self.assertEqual(a.recoveries, 1)
        g.unlock()
        g = a.lock(timeout=1)
        self.assertFalse(g.recovered)
        g.unlock()

    def test_slots_run_out_with_live_participants_ENOSPC(self):
        keep = Named(self)
        a = keep(Mutex.create(uname("mxslots"), slots=1))
        with a:
            pass
        b = keep(Mutex.open(a.segment.name))
        with self.assertRaises(ShmError) as e:
            b.try_lock()
        self.assertEqual(e.exception.code, "ENOSPC")
        a.close()  # frees its slot
        with b:
            pass

    def test_timeout_and_a_holder_in_another_process(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxto")))
        data = keep(SharedMemory.create(uname("mxtod"), 64))
        p = lchild("hold", {"mutex": m.handle(), "data": data.handle()}, wait=False)
        try:
            self.assertTrue(json.loads(p.stdout.readline())["locked"])
            self.assertIsNone(m.try_lock())
            t = time.monotonic()
            with self.assertRaises(ShmError) as e:
                m.lock(timeout=0.3)
            self.assertEqual(e.exception.code, "ETIMEDOUT")
            self.assertGreaterEqual(time.monotonic() - t, 0.29)
            self.assertFalse(m.held)
            os.kill(p.pid, signal.SIGSTOP)  # a stopped holder is alive: never robbed
            with self.assertRaises(ShmError) as e:
                m.lock(timeout=0.5)
            self.assertEqual(e.exception.code, "ETIMEDOUT")
            os.kill(p.pid, signal.SIGCONT)
        finally:
            p.kill()
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
        g = m.lock(timeout=2)
        self.assertTrue(g.recovered)
        g.unlock()

    def test_a_python_holder_sigkilled_inside_is_recovered_by_a_parked_waiter(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxkill")))
        data = keep(SharedMemory.create(uname("mxkilld"), 64))
        p = lchild("hold-die", {"mutex": m.handle(), "data": data.handle()}, wait=False)
        try:
            self.assertEqual(p.stdout.readline().strip(), "locked")
            self.assertEqual(layout.load32(data, 0), p.pid)
            threading.Timer(0.3, lambda: layout.store32(data, 4, 1)).start()  # the child dies then
            t = time.monotonic()
            g = m.lock(timeout=10)  # parked when the holder dies
            took = time.monotonic() - t
            self.assertTrue(g.recovered)
            self.assertLess(took, 2.0)
            g.unlock()
        finally:
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(m.recoveries, 1)

    def test_python_processes_count_exactly_and_crash_rounds_repair(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxcnt")))
        data = keep(SharedMemory.create(uname("mxcntd"), 64))
        o = {"mutex": m.handle(), "data": data.handle(), "n": 300}
        ps = [lchild("counter", o, wait=False), lchild("counter", dict(o, **{"async": True}), wait=False),
              lchild("counter", o, wait=False)]
        for p in ps:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(words(data, 1)[0], 900)
        # Crash rounds: a victim dies between the two halves of the pair, a survivor repairs it.
        for kill_at in (0, 1, 2):
            data.buf[:64] = bytes(64)
            co = {"mutex": m.handle(), "data": data.handle(), "rounds": 30, "spin": 200}
            victim = lchild("crash", dict(co, killAt=kill_at), wait=True)
            self.assertEqual(victim.returncode, -signal.SIGKILL, victim.stderr)
            survivor = lchild("crash", dict(co, rounds=10), wait=True)
            err = survivor.stderr
            self.assertEqual(survivor.returncode, 0, err)
            d = words(data, 8)
            self.assertEqual(d[5], 0, f"recovered-flag mismatches (killAt {kill_at}): {err}")
            self.assertEqual(d[7], 0, "the pair was seen inconsistent after locking")
            self.assertEqual(d[4], 1, "one recovery")
            self.assertEqual(d[6], 1 if kill_at == 1 else 0, "repairs of a torn pair")
            self.assertEqual(d[0], d[1])

    def test_ctrl_c_interrupts_a_blocked_lock(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxint")))
        data = keep(SharedMemory.create(uname("mxintd"), 64))
        g = m.lock()
        p = lchild("block", {"mutex": m.handle(), "data": data.handle()}, wait=False)
        try:
            self.assertEqual(p.stdout.readline().strip(), "ready")
            took, err = sigint(p, 0.4)  # parked by now
            self.assertLess(took, 1.0)
            self.assertIn("KeyboardInterrupt", err)
        finally:
            p.kill()
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(layout.load32(m.segment, 64) & 0xFFFF, m._slot)  # still ours, never taken
        g.unlock()
        g = m.lock(timeout=1)
        self.assertFalse(g.recovered)
        g.unlock()

    def test_ctrl_c_interrupts_a_blocked_acquire_and_wait(self):
        keep = Named(self)
        s = keep(Semaphore.create(uname("semint")))
        m = keep(Mutex.create(uname("cvintm")))
        c = keep(Condition.create(uname("cvintc")))
        data = keep(SharedMemory.create(uname("cvintd"), 64))
        for mode in ("sem-block", "cond-block"):
            p = lchild(mode, {"sem": s.handle(), "mutex": m.handle(), "cond": c.handle(), "data": data.handle()},
                       wait=False)
            try:
                self.assertEqual(p.stdout.readline().strip(), "ready")
                took, err = sigint(p, 0.4)
                self.assertLess(took, 1.0, mode)
                self.assertIn("KeyboardInterrupt", err, mode)
                if mode == "cond-block":  # wait() re-locked the mutex before the exception left it
                    self.assertEqual(json.loads(p.stdout.readline()), {"held_after_interrupt": True})
            finally:
                p.kill()
                p.wait(10)
                p.stdout.close()
                p.stderr.close()
        self.assertEqual(s.value, 0)
        self.assertEqual(layout.load32(s.segment, 68), 0, "the interrupted sleeper left the waiters count")
        self.assertEqual(layout.load32(c.segment, 68), 0, "the interrupted waiter left the waiters count")
        g = m.lock(timeout=2)  # the interrupted child exited holding it: recovered
        self.assertTrue(g.recovered)
        g.unlock()

    def test_lock_async_waits_for_a_holder_in_this_process_and_can_be_cancelled(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxasync")))
        other = keep(Mutex.open(m.segment.name))

        async def main():
            g = m.lock()
            task = asyncio.ensure_future(other.lock_async(timeout=5))
            await asyncio.sleep(0.1)
            self.assertFalse(task.done())
            g.unlock()
            g2 = await task
            self.assertTrue(other.held)
            self.assertFalse(g2.recovered)
            # Cancelled while waiting: nothing is held afterwards.
            t2 = asyncio.ensure_future(m.lock_async())
            await asyncio.sleep(0.1)
            t2.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t2
            self.assertFalse(m.held)
            g2.unlock()
            async with m as g3:
                self.assertFalse(g3.recovered)
            with self.assertRaises(ShmError) as e:
                g = m.lock()
                try:
                    await other.lock_async(timeout=0.2)
                finally:
                    g.unlock()
            self.assertEqual(e.exception.code, "ETIMEDOUT")

        asyncio.run(main())
        with m:
            pass

    def test_corrupt_lock_words_and_headers_are_EBADHDR(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxbad"), slots=4))
        seg = m.segment
        for word in (1 << 20, 5, 0x10001):  # reserved bit, owner > N, ABANDONED with an owner
            layout.store32(seg, 64, word)
            with self.assertRaises(ShmError) as e:
                Mutex.open(seg.name)
            self.assertEqual(e.exception.code, "EBADHDR", hex(word))
            for f in (m.try_lock, lambda: m.lock(timeout=0.2)):
                with self.assertRaises(ShmError) as e:
                    f()
                self.assertEqual(e.exception.code, "EBADHDR")
        layout.store32(seg, 64, 0)
        struct.pack_into("<I", seg.buf, 68, 0)
        with self.assertRaises(ShmError) as e:
            Mutex.open(seg.name)
        self.assertEqual(e.exception.code, "EBADHDR")
        struct.pack_into("<I", seg.buf, 68, 9)  # does not match byteLength any more
        with self.assertRaises(ShmError) as e:
            Mutex.open(seg.name)
        self.assertEqual(e.exception.code, "EBADHDR")
        with self.assertRaises(ShmError) as e:
            m.try_lock()  # the slot count changed under an attached object
        self.assertEqual(e.exception.code, "EBADHDR")
        struct.pack_into("<I", seg.buf, 68, 4)
        struct.pack_into("<I", seg.buf, 12, 64)  # headerSize
        with self.assertRaises(ShmError) as e:
            Mutex.open(seg.name)
        self.assertEqual(e.exception.code, "EBADHDR")

    def test_a_forked_child_claims_its_own_slot(self):
        keep = Named(self)
        m = keep(Mutex.create(uname("mxfork")))
        g = m.lock()
        pid = os.fork()
        if pid == 0:  # the child: the parent's lock is not ours
            code = 1
            try:
                r = m.try_lock()
                code = 0 if r is None and not m.held else 2
                try:
                    m.lock(timeout=0.2)
                    code = 3
                except ShmError as e:
                    code = code if e.code == "ETIMEDOUT" else 4
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        g.unlock()


class SemaphoreTest(unittest.TestCase):
    def test_counts_timeouts_overflow_and_context_manager(self):
        keep = Named(self)
        s = keep(Semaphore.create(uname("sem"), value=2))
        self.assertEqual(Semaphore.byte_length(), 128)
        self.assertEqual(s.value, 2)
        s.acquire()
        self.assertTrue(s.try_acquire())
        self.assertFalse(s.try_acquire())
        with self.assertRaises(ShmError) as e:
            s.acquire(timeout=0.05)
        self.assertEqual(e.exception.code, "ETIMEDOUT")
        s.release(2)
        with s:
            self.assertEqual(s.value, 1)
        self.assertEqual(s.value, 2)
        with self.assertRaises(ValueError):
            s.release(0)
        s.release(0x7FFFFFFF - 2)
        with self.assertRaises(ShmError) as e:
            s.release()
        self.assertEqual(e.exception.code, "EOVERFLOW")
        layout.store32(s.segment, 64, 0x80000000)
        for f in (lambda: s.value, s.try_acquire, s.release, lambda: Semaphore.open(s.segment.name)):
            with self.assertRaises(ShmError) as e:
                f()
            self.assertEqual(e.exception.code, "EBADHDR")
        with self.assertRaises(ValueError):
            Semaphore.create(uname("sem"), value=-1)

    def test_blocking_and_async_acquire_woken_by_a_release(self):
        keep = Named(self)
        s = keep(Semaphore.create(uname("semw")))
        threading.Timer(0.1, s.release).start()
        t = time.monotonic()
        s.acquire(timeout=5)
        self.assertLess(time.monotonic() - t, 0.25 + 0.2)

        async def main():
            task = asyncio.ensure_future(s.acquire_async(timeout=5))
            await asyncio.sleep(0.05)
            self.assertFalse(task.done())
            s.release()
            await task
            c = asyncio.ensure_future(s.acquire_async())
            await asyncio.sleep(0.05)
            c.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await c
            async with s:
                pass

        threading.Timer(0.4, s.release).start()  # for the async with
        asyncio.run(main())
        self.assertEqual(s.value, 1)

    def test_python_processes_never_exceed_the_count(self):
        keep = Named(self)
        s = keep(Semaphore.create(uname("semp"), value=2))
        data = keep(SharedMemory.create(uname("sempd"), 64))
        o = {"sem": s.handle(), "data": data.handle(), "n": 200}
        ps = [lchild("sem", o, wait=False), lchild("sem", dict(o, **{"async": True}), wait=False),
              lchild("sem", o, wait=False)]
        for p in ps:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        d = words(data, 3)
        self.assertEqual(d[2], 600)
        self.assertLessEqual(d[1], 2)
        self.assertGreaterEqual(d[1], 1)
        self.assertEqual(d[0], 0)
        self.assertEqual(s.value, 2)


class ConditionTest(unittest.TestCase):
    def test_wait_times_out_holding_the_mutex_and_is_notified_by_a_thread(self):
        keep = Named(self)
        seg = keep(SharedMemory.create(uname("cv"), 4096))
        m = Mutex.init(seg, 0)
        c = Condition.init(seg, Mutex.byte_length())
        self.assertEqual(Condition.byte_length(), 128)
        g = m.lock()
        with self.assertRaises(ShmError) as e:
            c.wait(g, timeout=0.05)
        self.assertEqual(e.exception.code, "ETIMEDOUT")
        self.assertTrue(m.held)
        flag = []
        m2 = Mutex.at(seg, 0)

        def notifier():
            with m2:
                flag.append(1)
                c.notify()

        threading.Timer(0.1, notifier).start()
        self.assertTrue(c.wait_for(g, lambda: flag, timeout=5))
        self.assertTrue(m.held)
        g.unlock()
        with self.assertRaises(ShmError) as e:
            c.wait(g)
        self.assertEqual(e.exception.code, "EPERM")
        with self.assertRaises(TypeError):
            c.wait(object())
        with self.assertRaises(ValueError):
            c.notify(0)
        struct.pack_into("<I", seg.buf, 128 + 12, 64)
        with self.assertRaises(ShmError) as e:
            Condition.at(seg, 128)
        self.assertEqual(e.exception.code, "EBADHDR")
        m2.close()
        m.close()
        c.close()

    def test_python_pingpong_across_processes_sync_and_async(self):
        for use_async in (False, True):
            keep = Named(self)
            m = keep(Mutex.create(uname("cvm")))
            c = keep(Condition.create(uname("cvc")))
            data = keep(SharedMemory.create(uname("cvd"), 64))
            o = {"mutex": m.handle(), "cond": c.handle(), "data": data.handle(), "n": 100, "async": use_async}
            consumer = lchild("pingpong", o, wait=False)
            producer = lchild("pingpong-produce", o, wait=False)
            for p in (producer, consumer):
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, err)
            d = words(data, 4)
            self.assertEqual(d[2], 100 * 101 // 2)
            self.assertEqual(d[3], 101)


if __name__ == "__main__":
    unittest.main()
