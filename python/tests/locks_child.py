"""Python child for the lock tests (python/tests/test_locks.py, tests/python_locks_test.ts): the same
modes and shared words as tests/fixtures/lock_child.ts, so Python and TypeScript children can be
mixed on one Mutex / Semaphore / Condition. argv: MODE JSON (mutex, sem, cond, data handles; n,
rounds, killAt, spin, async, cap, items).

  counter      d[0] += 1 under the lock, n times (non-atomic read-modify-write)
  crash        the protected pair d[0] == d[1] (see lock_child.ts); killAt 0/1/2 dies inside round `rounds`
  hold-die     lock, store our pid in d[0], print "locked", then SIGKILL ourselves after d[1] != 0
  hold         lock, print "locked", sleep (a victim the test kills)
  block        print "ready", then lock for good (the Ctrl-C test)
  sem          acquire/release n times; d[0] inside now, d[1] most seen inside, d[2] completed
  pingpong     consumer of the one-slot mailbox (d[0] full, d[1] item, d[2] sum, d[3] count), item 0 ends
  pingpong-produce  producer of the mailbox: items 1..n, then 0
  sem-block / cond-block  print "ready", then acquire / wait for good (the Ctrl-C tests)
  cond-wait    lock, wait until d[0] != 0, print whether the mutex came back recovered
  notify-and-die  lock, d[0] = 1, notify_all, SIGKILL ourselves holding the mutex
"""

import asyncio
import json
import os
import signal
import sys
import time

import shmkit
from shmkit import layout


def main() -> None:
    mode, opts = sys.argv[1], json.loads(sys.argv[2])
    seg = shmkit.SharedMemory.attach(opts["data"])
    d = seg.buf.cast("i")
    use_async = bool(opts.get("async"))

    def die():
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)

    def busy(n: int) -> None:
        x = 0
        for i in range(n):
            x += i

    def schedule():
        """n rounds; or, with "seconds", after the start barrier (opts["go"]: the word index the test
        sets to 1; opts["ready"]: the word each child adds 1 to first) as many rounds as fit in that
        time. The caller prints how many ran."""
        if "seconds" not in opts:
            yield from range(opts["n"])
            return
        layout.fetch_add32(seg, 4 * opts["ready"], 1)
        deadline = time.monotonic() + 30
        while layout.load32(seg, 4 * opts["go"]) == 0:
            if time.monotonic() > deadline:
                raise SystemExit("the start barrier never opened")
            time.sleep(0.001)
        end = time.monotonic() + opts["seconds"]
        i = 0
        while time.monotonic() < end:
            yield i
            i += 1

    if mode == "counter":
        m = shmkit.Mutex.attach(opts["mutex"])

        done = 0

        async def run_async():
            nonlocal done
            for _ in schedule():
                g = await m.lock_async(timeout=30)
                v = d[0]
                busy(20)
                d[0] = v + 1
                g.unlock()
                done += 1

        if use_async:
            asyncio.run(run_async())
        else:
            for _ in schedule():
                with m.lock(timeout=30):
                    v = d[0]
                    busy(20)
                    d[0] = v + 1
                done += 1
        print(json.dumps({"done": done}))
        m.close()
    elif mode == "crash":
        m = shmkit.Mutex.attach(opts["mutex"])
        rounds, kill_at, spin = opts["rounds"], opts.get("killAt"), opts.get("spin", 50)
        for r in range(rounds + 1):
            g = asyncio.run(m.lock_async(timeout=20)) if use_async else m.lock(timeout=20)
            inside = d[2]
            if g.recovered != (inside != 0):
                layout.fetch_add32(seg, 20, 1)
                print(f"mismatch: recovered={g.recovered} holder marker={inside}", file=sys.stderr)
            if g.recovered:
                layout.fetch_add32(seg, 16, 1)
                if d[0] != d[1]:
                    layout.fetch_add32(seg, 24, 1)
                d[1] = d[0]  # repair
            if d[0] != d[1]:
                layout.fetch_add32(seg, 28, 1)
            d[2] = os.getpid()
            dying = r == rounds and kill_at is not None and kill_at >= 0
            if dying and kill_at == 0:
                busy(spin)
                die()
            d[0] += 1
            if dying and kill_at == 1:
                busy(spin)
                die()
            d[1] += 1
            if dying and kill_at == 2:
                busy(spin)
                die()
            d[3] += 1
            d[2] = 0
            g.unlock()
            if r == rounds:
                break
            busy(spin)
        m.close()
    elif mode == "hold-die":
        m = shmkit.Mutex.attach(opts["mutex"])
        m.lock(timeout=10)
        layout.store32(seg, 0, os.getpid())
        print("locked", flush=True)
        deadline = time.monotonic() + 30
        while layout.load32(seg, 4) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        die()
    elif mode == "hold":
        m = shmkit.Mutex.attach(opts["mutex"])
        g = m.lock(timeout=10)
        print(json.dumps({"locked": True, "recovered": g.recovered}), flush=True)
        time.sleep(60)
    elif mode == "block":
        m = shmkit.Mutex.attach(opts["mutex"])
        print("ready", flush=True)
        m.lock()
        print("locked", flush=True)
    elif mode == "sem":
        s = shmkit.Semaphore.attach(opts["sem"])

        def inside():
            now = layout.fetch_add32(seg, 0, 1) + 1
            seen = layout.load32(seg, 4)
            while now > seen:
                prev = layout.cas32(seg, 4, seen, now)
                if prev == seen:
                    break
                seen = prev
            busy(100)
            layout.fetch_add32(seg, 0, -1)
            layout.fetch_add32(seg, 8, 1)
            s.release()

        done = 0

        async def run_async():
            nonlocal done
            for _ in schedule():
                await s.acquire_async(timeout=30)
                inside()
                done += 1

        if use_async:
            asyncio.run(run_async())
        else:
            for _ in schedule():
                s.acquire(timeout=30)
                inside()
                done += 1
        print(json.dumps({"done": done}))
        s.close()
    elif mode in ("pingpong", "pingpong-produce"):
        m = shmkit.Mutex.attach(opts["mutex"])
        c = shmkit.Condition.attach(opts["cond"])

        async def consume_async():
            while True:
                g = await m.lock_async(timeout=30)
                while d[0] == 0:
                    await c.wait_async(g, timeout=30)
                item = d[1]
                d[0] = 0
                d[2] += item
                d[3] += 1
                c.notify_all()
                g.unlock()
                if item == 0:
                    return

        if mode == "pingpong" and use_async:
            asyncio.run(consume_async())
        elif mode == "pingpong":
            while True:
                with m.lock(timeout=30) as g:
                    c.wait_for(g, lambda: d[0] != 0, timeout=30)
                    if d[0] == 0:
                        raise SystemExit("timed out waiting for an item")
                    item = d[1]
                    d[0] = 0
                    d[2] += item
                    d[3] += 1
                    c.notify_all()
                if item == 0:
                    break
        else:
            items = list(range(1, opts["n"] + 1)) + [0]
            for item in items:
                with m.lock(timeout=30) as g:
                    if not c.wait_for(g, lambda: d[0] == 0, timeout=30):
                        raise SystemExit("timed out waiting for the mailbox to empty")
                    d[1] = item
                    d[0] = 1
                    c.notify_all()
        c.close()
        m.close()
    elif mode == "sem-block":
        s = shmkit.Semaphore.attach(opts["sem"])
        print("ready", flush=True)
        s.acquire()
    elif mode == "cond-block":
        m = shmkit.Mutex.attach(opts["mutex"])
        c = shmkit.Condition.attach(opts["cond"])
        g = m.lock(timeout=10)
        print("ready", flush=True)
        try:
            c.wait(g)
        finally:
            print(json.dumps({"held_after_interrupt": m.held}), flush=True)
    elif mode == "cond-wait":
        # Wait (holding the mutex) until d[0] != 0; report whether the re-acquired mutex was recovered.
        m = shmkit.Mutex.attach(opts["mutex"])
        c = shmkit.Condition.attach(opts["cond"])
        g = m.lock(timeout=10)
        recovered = False
        while d[0] == 0:
            c.wait(g, timeout=20)
            recovered = recovered or g.recovered
        print(json.dumps({"recovered": recovered, "held": m.held}), flush=True)
        g.unlock()
        c.close()
        m.close()
    elif mode == "notify-and-die":
        # Lock, set d[0] = 1, notify, then die holding the mutex (as lock_child.ts notify-and-die).
        m = shmkit.Mutex.attach(opts["mutex"])
        c = shmkit.Condition.attach(opts["cond"])
        m.lock(timeout=10)
        d[0] = 1
        c.notify_all()
        die()
    else:
        raise SystemExit(f"unknown mode {mode}")
    del d
    seg.close()


main()
