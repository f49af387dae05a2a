"""The Python side of the seeded fuzzer (python/tests/test_fuzz.py runs it in batches).

Usage: python3 fuzz_child.py SEED FROM COUNT [kinds]

Each case creates an object of one kind with the Python API (a few items in it), corrupts 1-3
words of its segment (mostly the common header and control area, boundary values, bit flips,
off-by-one counters) or cuts the segment short, then opens it and runs its operations: try_x,
x(timeout=0.02), the asyncio forms, validation, close, and calls after close. Pass: the process
neither crashes nor hangs, and every exception is a ShmError. Lines on stdout:
  C <i> <json case>     the case (kind, mutations, truncation)
  O <i> <op>            an operation starts (the last one names a hang or a crash)
  F <i> <op> <message>  a failure (an exception other than ShmError, or an operation that overran)
  END <count>
"""

import asyncio
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE)]

from shmkit import (Channel, Condition, Mempool, MessageLog, Mutex, Ring, Semaphore, SharedArray,  # noqa: E402
                    SharedHeap, SharedMemory, ShmError)

KINDS = ["ring", "mempool", "channel", "mutex", "semaphore", "condition", "array", "log", "heap"]
TIMEOUT = 0.02  # seconds: the timed operations' timeout
BUDGET = 2.0  # seconds beyond it before an operation counts as a hang
BOUNDARY = [0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFE, 4, 64, 0x10000]

out: list[str] = []


def emit(line: str) -> None:
    out.append(line)
    if len(out) >= 64:
        flush()


def flush() -> None:
    if out:
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()
        out.clear()


def create(kind: str, name: str, rnd: random.Random) -> None:
    if kind == "ring":
        Ring.create(name, 1 + rnd.randrange(16), rnd.choice(["spsc", "mpsc", "spmc", "mpmc"])).close()
    elif kind == "mempool":
        Mempool.create(name, 1 + rnd.randrange(8), 8 + rnd.randrange(64)).close()
    elif kind == "channel":
        ch = Channel.create(name, 2 + rnd.randrange(6), 64, rnd.choice(["spsc", "mpmc"]))
        for k in range(rnd.randrange(3)):
            ch.try_send(bytes([k]) * (1 + rnd.randrange(60)))
        ch.close()
    elif kind == "mutex":
        Mutex.create(name, 1 + rnd.randrange(8)).close()
    elif kind == "semaphore":
        Semaphore.create(name, rnd.randrange(3)).close()
    elif kind == "condition":
        Condition.create(name).close()
    elif kind == "array":
        SharedArray.create(name, 1 + rnd.randrange(32), rnd.choice(["int32", "float64"])).close()
    elif kind == "log":
        log = MessageLog.create(name, 256 << rnd.randrange(3), rnd.choice(["spsc", "mpsc"]))
        for k in range(rnd.randrange(6)):
            log.try_write(bytes(1 + rnd.randrange(40)), k)
        log.close()
    elif kind == "heap":
        heap = SharedHeap.create(name, 16384)
        offs = [heap.alloc(16 + rnd.randrange(200)) for _ in range(1 + rnd.randrange(6))]
        heap.set("root", offs[0])
        if len(offs) > 2:
            heap.free(offs[1])
        heap.close()
    else:
        raise ValueError(kind)


def pick_value(old: int, rnd: random.Random) -> int:
    r = rnd.random()
    if r < 0.4:
        return rnd.choice(BOUNDARY)
    if r < 0.6:
        return (old + rnd.choice([1, 2, -1, -2, 0x80000000])) & 0xFFFFFFFF
    if r < 0.8:
        return old ^ (1 << rnd.randrange(32))
    return rnd.randrange(1 << 32)


def pick_offset(size: int, rnd: random.Random) -> int:
    r = rnd.random()
    limit = 64 if r < 0.25 else min(size, 512) if r < 0.8 else size
    return rnd.randrange(max(1, limit >> 2)) << 2


def ops_of(kind: str, name: str, rnd: random.Random):
    """(object, [(op name, callable)]): the callables may be coroutine functions."""
    t = TIMEOUT
    data = bytes(rnd.randrange(64))
    if kind == "ring":
        r = Ring.open(name)
        return r, [("try_enqueue", lambda: r.try_enqueue(rnd.randrange(1 << 32))), ("try_dequeue", r.try_dequeue),
                   ("enqueue", lambda: r.enqueue(7, timeout=t)), ("dequeue", lambda: r.dequeue(timeout=t)),
                   ("enqueue_burst", lambda: r.enqueue_burst([1, 2, 3])), ("dequeue_burst", lambda: r.dequeue_burst(4)),
                   ("enqueue_bulk", lambda: r.enqueue_bulk([1, 2])), ("dequeue_bulk", lambda: r.dequeue_bulk(2)),
                   ("size", lambda: r.size), ("dequeue_async", lambda: r.dequeue_async(timeout=t))]
    if kind == "mempool":
        p = Mempool.open(name)

        def get_put():
            b = p.try_get()
            if b is not None:
                b.buf[0:1] = b"x"
                p.put(b)

        return p, [("get_put", get_put), ("get", lambda: p.put(p.get(timeout=t))),
                   ("put_index", lambda: p.put(rnd.randrange(16))), ("reclaim", p.reclaim),
                   ("available", lambda: p.available), ("block", lambda: p.block(rnd.randrange(16))),
                   ("get_async", lambda: p.get_async(timeout=t))]
    if kind == "channel":
        ch = Channel.open(name)
        data = data[:ch.slot_size]  # a caller keeps to the slot size (a corrupt but valid one can be small)

        def recv_one():
            m = ch.try_recv()
            if m is not None:
                bytes(m.bytes)
                m.release()

        def loan_send():
            ln = ch.try_loan()
            if ln is not None:
                ln.buf[0:1] = b"y"
                ln.send(1)

        return ch, [("try_send", lambda: ch.try_send(data)), ("try_recv", recv_one),
                    ("send", lambda: ch.send(data, timeout=t)), ("recv", lambda: ch.recv(timeout=t).release()),
                    ("loan", loan_send), ("try_recv_batch", lambda: ch.try_recv_batch(lambda v: len(v))),
                    ("try_recv_into", lambda: ch.try_recv_into(bytearray(64))), ("reclaim", ch.reclaim),
                    ("recv_async", lambda: _release_async(ch.recv_async(timeout=t)))]
    if kind == "mutex":
        m = Mutex.open(name)

        def lock_unlock():
            g = m.try_lock()
            if g is not None:
                g.unlock()

        return m, [("try_lock", lock_unlock), ("lock", lambda: m.lock(timeout=t).unlock()),
                   ("held", lambda: m.held), ("lock_async", lambda: _unlock_async(m.lock_async(timeout=t)))]
    if kind == "semaphore":
        s = Semaphore.open(name)
        return s, [("try_acquire", s.try_acquire), ("acquire", lambda: s.acquire(timeout=t)),
                   ("release", lambda: s.release(1)), ("value", lambda: s.value),
                   ("acquire_async", lambda: s.acquire_async(timeout=t))]
    if kind == "condition":
        c = Condition.open(name)
        return c, [("notify", c.notify), ("notify_all", c.notify_all)]
    if kind == "array":
        a = SharedArray.open(name)
        return a, [("array", lambda: float(a.array.sum()) if a.array is not None else None),
                   ("write", lambda: a.array.fill(1) if a.array is not None else None),
                   ("shape", lambda: a.shape), ("handle", a.handle)]
    if kind == "log":
        log = MessageLog.open(name)
        data = data[:log.max_record]  # a caller keeps to the log's limit (a corrupt but valid maxRecord can be small)
        return log, [("try_write", lambda: log.try_write(data, 7)), ("try_read", log.try_read),
                     ("write", lambda: log.write(data, 1, timeout=t)), ("read", lambda: log.read(timeout=t)),
                     ("try_read_batch", lambda: log.try_read_batch(lambda ty, b: len(b))),
                     ("try_write_batch", lambda: log.try_write_batch([data[:1], data[:2]])), ("validate", log.validate),
                     ("size", lambda: log.size), ("read_async", lambda: log.read_async(timeout=t))]
    if kind == "heap":
        h = SharedHeap.open(name)

        def free_root():
            o = h.get("root")
            if o is not None:
                h.free(o)

        return h, [("alloc_free", lambda: h.free(h.alloc(1 + rnd.randrange(300)))), ("alloc", lambda: h.alloc(64)),
                   ("get", lambda: h.get("root")), ("free_root", free_root), ("stats", h.stats),
                   ("validate", h.validate), ("names", h.names)]
    raise ValueError(kind)


async def _release_async(coro):
    (await coro).release()


async def _unlock_async(coro):
    (await coro).unlock()


def call(fn):
    r = fn()
    if asyncio.iscoroutine(r):
        return asyncio.run(r)
    return r


def attempt(i: int, op: str, fn) -> None:
    """Runs operation ``op`` of case ``i``: a ShmError is a fine outcome, any other exception a failure line."""
    try:
        call(fn)
    except ShmError:
        pass
    except Exception as e:  # noqa: BLE001 - anything but ShmError is the finding
        emit(f"F {i} {op} {type(e).__name__}: {str(e)[:200]}")


def operate(i: int, kind: str, name: str, rnd: random.Random) -> None:
    emit(f"O {i} open")
    flush()
    t0 = time.monotonic()
    try:
        obj, ops = ops_of(kind, name, rnd)
    except ShmError:
        return
    except Exception as e:  # noqa: BLE001 - anything but ShmError is the finding
        emit(f"F {i} open {type(e).__name__}: {e}")
        return
    if time.monotonic() - t0 > BUDGET:
        emit(f"F {i} open took {time.monotonic() - t0:.2f} s")
    timed = rnd.random() < 0.35
    order = [o for o in ops if timed or o[0] not in ("enqueue", "dequeue", "get", "lock", "acquire", "send", "recv",
                                                        "write", "read") and not o[0].endswith("_async")]
    rnd.shuffle(order)
    for op, fn in order:
        emit(f"O {i} {op}")
        flush()
        s = time.monotonic()
        attempt(i, op, fn)
        took = time.monotonic() - s
        if took > TIMEOUT + BUDGET:
            emit(f"F {i} {op} took {took:.2f} s (hang)")
    emit(f"O {i} close")
    flush()
    try:
        obj.close()
    except Exception as e:  # noqa: BLE001
        emit(f"F {i} close {type(e).__name__}: {e}")
    for op, fn in ops[:3]:  # after close: ShmError ECLOSED or nothing, never another exception
        attempt(i, f"{op}-after-close", fn)


def run_case(seed: int, i: int, kinds: list[str]) -> None:
    rnd = random.Random(seed * 1_000_003 + i)
    kind = rnd.choice(kinds)
    name = f"shmkit-test-pyfz-{os.getpid()}-{i}"
    case: dict = {"kind": kind, "mutations": []}
    try:
        create(kind, name, rnd)
        seg = SharedMemory.open(name)
        try:
            words = seg.buf.cast("I")
            for _ in range(1 + rnd.randrange(3)):
                off = pick_offset(seg.size, rnd)
                value = pick_value(words[off >> 2], rnd)
                words[off >> 2] = value
                case["mutations"].append([off, value])
            del words
            if rnd.random() < 0.1:
                case["truncate"] = rnd.choice([0, 8, 64, 128, seg.size // 2, seg.size - 4])
        finally:
            seg.close()
        if "truncate" in case:
            os.truncate(f"/dev/shm/{name}", case["truncate"])
        emit(f"C {i} {json.dumps(case)}")
        if os.environ.get("SHMKIT_FUZZ_SELFTEST_CRASH") == str(i):  # test_fuzz.py checks its crash report
            emit(f"O {i} selftest-crash")
            flush()
            os.kill(os.getpid(), 9)
        operate(i, kind, name, rnd)
    finally:
        try:
            os.unlink(f"/dev/shm/{name}")
        except FileNotFoundError:
            pass


def main() -> None:
    seed, start, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    kinds = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] else KINDS
    for i in range(start, start + count):
        try:
            run_case(seed, i, kinds)
        except Exception as e:  # noqa: BLE001 - a setup failure is reported, the run goes on
            emit(f"F {i} setup {type(e).__name__}: {e}")
    emit(f"END {count}")
    flush()


if __name__ == "__main__":
    main()
