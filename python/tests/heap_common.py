"""SharedHeap helpers shared by python/tests/test_heap.py and the heap-* commands of child.py (which
tests/python_heap_test.ts runs): the tests/harness.ts prng, the ledger of tests/fixtures/heap_crasher.ts
(u32 per entry, 64 entries per child slot: the offset of a held, filled block; offset | FREEING while
its free is in progress) and the accounting that proves a crash left nothing leaked or double-owned."""

from __future__ import annotations

import ctypes
import json
import struct
import sys
import time

import shmkit
from shmkit import SharedHeap, SharedMemory, ShmError, _ops

M = 0xFFFFFFFF
ENTRIES = 64
FREEING = 0x80000000


def prng(seed: int):
    """tests/harness.ts prng (mulberry32), bit for bit."""
    a = seed & M

    def nxt() -> float:
        nonlocal a
        a = (a + 0x6D2B79F5) & M
        t = a
        t = ((t ^ (t >> 15)) * (t | 1)) & M
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & M)) & M
        return ((t ^ (t >> 14)) & M) / 4294967296

    return nxt


def pattern(off: int, s: int, i: int) -> int:
    """tests/fixtures/heap_crasher.ts pattern: word i of the block at off held by ledger slot s."""
    return ((((off ^ (s << 20)) & M) * 2654435761) + i) & M


def fill(heap: SharedHeap, off: int, n: int, slot: int) -> None:
    heap.bytes(off, 4 * n).cast("I")[:] = memoryview(
        struct.pack(f"<{n}I", *(pattern(off, slot, i) for i in range(n)))).cast("I")


def intact(heap: SharedHeap, off: int, n: int, slot: int) -> bool:
    return list(heap.bytes(off, 4 * n).cast("I")) == [pattern(off, slot, i) for i in range(n)]


def live(heap: SharedHeap, off: int) -> bool:
    try:
        heap.size_of(off)
        return True
    except ShmError as e:
        if e.code != "EINVAL":
            raise
        return False


def script(heap: SharedHeap, seed: int, n: int) -> int:
    """The deterministic script run by both languages in tests/python_heap_test.ts (there as
    runScript): the same calls on heaps of the same geometry must leave the same bytes."""
    rnd = prng(seed)
    held: list[int] = []
    nomem = 0
    for op in range(n):
        r = rnd()
        if r < 0.6 or not held:
            a, b = rnd(), rnd()
            length = 1 + int(a * (200 if b < 0.9 else 5000))
            align = (16, 16, 16, 64, 4096)[int(rnd() * 5)]
            try:
                held.append(heap.alloc(length, align))
            except ShmError as e:
                if e.code != "ENOMEM":
                    raise
                nomem += 1
        elif r < 0.95:
            k = int(rnd() * len(held))
            off = held[k]
            held[k] = held[-1]
            held.pop()
            heap.free(off)
        else:
            heap.set(f"n{op % 5}", held[int(rnd() * len(held))])
    return nomem


def churn(heap: SharedHeap, seed: int, ops: int) -> int:
    """tests/fixtures/heap_child.ts churn: exits 1 if a held block changes or overlaps another."""
    rnd = prng(seed)
    held: list[tuple[int, int, int]] = []
    stamp = (shmkit._lib.lib().shmkit_getpid() * 65536) & M
    allocs = 0

    def check(x: tuple[int, int, int]) -> None:
        off, n, st = x
        w = heap.bytes(off, n).cast("I")
        for i in range(n >> 2):
            if w[i] != (st + i) & M:
                fail(f"block {off} ({n} bytes) changed under its holder at word {i}")

    for _ in range(ops):
        if len(held) < 40 and (not held or rnd() < 0.55):
            a, b = rnd(), rnd()
            n = 4 * (1 + int(a * (32 if b < 0.9 else 600)))
            try:
                off = heap.alloc(n, 64 if rnd() < 0.2 else 16)
            except ShmError as e:
                if e.code == "ENOMEM":
                    continue
                raise
            for y in held:
                if off < y[0] + y[1] and y[0] < off + n:
                    fail(f"block {off} overlaps live {y[0]}")
            stamp = (stamp + 1000) & M
            heap.bytes(off, n).cast("I")[:] = memoryview(
                struct.pack(f"<{n >> 2}I", *((stamp + i) & M for i in range(n >> 2)))).cast("I")
            held.append((off, n, stamp))
            allocs += 1
        else:
            k = int(rnd() * len(held))
            x = held[k]
            check(x)
            held[k] = held[-1]
            held.pop()
            heap.free(x[0])
    for x in held:
        check(x)
        heap.free(x[0])
    return allocs


def crasher(heap: SharedHeap, ledger: memoryview, slot: int, seed: int, budget: int) -> None:
    """tests/fixtures/heap_crasher.ts in Python, with the same ledger."""
    rnd = prng(seed)
    base = slot * ENTRIES
    held: list[int] = []
    lens: dict[int, int] = {}
    for op in range(budget):
        r = rnd()
        if r < 0.45 and len(held) < ENTRIES - 1:
            a, b = rnd(), rnd()
            n = 1 + int(a * (24 if b < 0.9 else 400))
            off = heap.alloc(4 * n, 64 if rnd() < 0.2 else 16)
            fill(heap, off, n, slot)
            e = 0
            while ledger[base + e] != 0:
                e += 1
            if e >= ENTRIES:
                fail("ledger full")
            ledger[base + e] = off  # after the fill: a ledger entry always names a filled block
            held.append(e)
            lens[off] = n
        elif r < 0.85 and held:
            k = int(rnd() * len(held))
            e = held[k]
            off = ledger[base + e]
            if not intact(heap, off, lens[off], slot):
                fail(f"block {off} changed")
            ledger[base + e] = off | FREEING
            heap.free(off)
            ledger[base + e] = 0
            held[k] = held[-1]
            held.pop()
            del lens[off]
        elif r < 0.95:
            name = f"c{slot}-{op}"
            off = heap.find_or_alloc(name, 48, init=lambda b: b.__setitem__(slice(None), bytes([7]) * 48))
            if heap.get(name) != off:
                fail(f"name {name} does not lead to {off}")
            if not heap.destroy(name):
                fail(f"name {name} vanished")
        else:
            heap.stats()


def check_ledger(heap: SharedHeap, ledger: memoryview, slots: int) -> list[str]:
    """After crashes: the heap is sound, every block a dead child recorded as held is live, intact
    and freed here; a free in progress either committed or was rolled back (then the block is live
    with the dead child's pattern, and freed here); the names are destroyed. The caller then checks
    what is left allocated."""
    problems = list(heap.validate())
    for i in range(slots * ENTRIES):
        v = ledger[i]
        if v == 0:
            continue
        off, slot = v & ~FREEING & M, i // ENTRIES
        ok = live(heap, off) and heap.bytes(off, 4).cast("I")[0] == pattern(off, slot, 0)
        if v & FREEING:
            if ok:
                heap.free(off)
        elif not live(heap, off):
            problems.append(f"block {off} held by dead child {slot} is not allocated")
        elif not ok:
            problems.append(f"block {off} held by dead child {slot} was overwritten")
        else:
            heap.free(off)
        ledger[i] = 0
    for n in heap.names():
        heap.destroy(n.name)
    problems += heap.validate()
    return problems


def stats_dict(heap: SharedHeap) -> dict:
    s = heap.stats()
    return {"allocations": s.allocations, "used": s.used, "free": s.free, "freeBlocks": s.free_blocks,
            "recoveries": s.recoveries, "rolledBack": s.rolled_back, "leakedInFlight": s.leaked_in_flight,
            "lastLeaked": s.last_leaked, "size": s.size}


class Point(ctypes.Structure):
    """tests/heap_test.ts Point = struct({ x: "f64", y: "f64" }), as a ctypes structure."""

    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


class Rec(ctypes.Structure):
    """tests/fixtures/heap_child.ts Rec, field for field (the schema is the contract)."""

    _fields_ = [("count", ctypes.c_uint32), ("total", ctypes.c_int64), ("ratio", ctypes.c_float),
                ("ok", ctypes.c_bool), ("label", ctypes.c_char * 20), ("tag", ctypes.c_uint8 * 4),
                ("samples", ctypes.c_uint16 * 3), ("at", Point), ("path", Point * 2)]


class Counter(ctypes.Structure):
    """struct({ value: "u64", hits: "u32" })"""

    _fields_ = [("value", ctypes.c_uint64), ("hits", ctypes.c_uint32)]


def fail(msg: str) -> None:
    print(f"heap child: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def command(cmd: str, args: list[str]) -> None:
    if cmd == "heap-new":  # heap-new NAME SIZE NAMES SLOTS: create a heap (left for the caller to unlink)
        with SharedHeap.create(args[0], int(args[1]), int(args[2]), int(args[3])) as made:
            print(json.dumps(made.handle()), flush=True)
        return
    heap = SharedHeap.attach(json.loads(args[0]))
    heap.lock_timeout = 30
    if cmd == "heap-churn":
        print(f"ok {churn(heap, int(args[1]), int(args[2]))}", flush=True)
    elif cmd == "heap-crasher":
        seg = SharedMemory.open(args[1])
        ledger = seg.buf.cast("I")
        if len(args) > 5 and args[5]:
            _ops.arm_fault(args[5])
        crasher(heap, ledger, int(args[2]), int(args[3]), int(args[4]))
        print("survived", flush=True)
        del ledger
        seg.close()
    elif cmd == "heap-script":
        print(json.dumps({"nomem": script(heap, int(args[1]), int(args[2]))}), flush=True)
    elif cmd == "heap-take":
        lst = heap.get("ts-blocks")
        if lst is None:
            fail("no ts-blocks")
        n = heap.bytes(lst, 4).cast("I")[0]
        pairs = list(heap.bytes(lst + 4, 8 * n).cast("I"))
        bad = 0
        for k in range(n):
            off, words = pairs[2 * k], pairs[2 * k + 1]
            if not intact(heap, off, words, 7):
                bad += 1
            heap.free(off)
        heap.destroy("ts-blocks")
        mine = []
        for k in range(n):
            words = 1 + (k * 37) % 300
            off = heap.alloc(4 * words, 64 if k % 3 == 0 else 16)
            fill(heap, off, words, 9)
            mine.append((off, words))
        lst2 = heap.find_or_alloc("py-blocks", 4 + 8 * n)
        heap.bytes(lst2, 4 + 8 * n).cast("I")[:] = memoryview(
            struct.pack(f"<{1 + 2 * n}I", n, *(x for p in mine for x in p))).cast("I")
        print(json.dumps({"taken": n, "bad": bad, "given": n, "validate": heap.validate()}), flush=True)
    elif cmd == "heap-check":
        seg = SharedMemory.open(args[1])
        ledger = seg.buf.cast("I")
        heap.free(heap.alloc(8))  # recovers a dead holder's operation, if one is open
        before = stats_dict(heap)
        if before["leakedInFlight"]:
            heap.free(before["lastLeaked"])  # the one victim's block committed in flight
        problems = check_ledger(heap, ledger, int(args[2]))
        out = {"problems": problems, "before": before, "stats": stats_dict(heap)}
        del ledger
        seg.close()
        print(json.dumps(out), flush=True)
    elif cmd == "heap-objects":  # tests/fixtures/heap_child.ts "objects", in Python
        ring = heap.open_object(shmkit.Ring, "jobs")
        total = 0
        while (v := ring.try_dequeue()) is not None:
            total += v
        sem = heap.open_object(shmkit.Semaphore, "sem")
        sem.release(3)
        arr = heap.open_object(shmkit.SharedArray, "arr")
        arr.array[1] = 42
        for o in (ring, sem, arr):
            o.close()
        print(f"sum {total}", flush=True)
    elif cmd == "heap-place":  # what tests/heap_test.ts's "objects" test places, placed by Python
        ring = heap.create_object(shmkit.Ring, "jobs", capacity=8)
        for v in range(1, 6):
            ring.try_enqueue(v)
        sem = heap.create_object(shmkit.Semaphore, "sem", value=0)
        arr = heap.find_or_create(shmkit.SharedArray, "arr", dtype="float64", shape=[4])
        for o in (ring, sem, arr):
            o.close()
        print("placed", flush=True)
    elif cmd == "heap-struct":  # heap_child.ts "struct", in Python: print Rec as JSON, then change it
        r = heap.open_object(Rec, "rec")
        print(json.dumps({"count": r.count, "total": f"{r.total}n", "ratio": r.ratio, "ok": r.ok,
                          "label": r.label.decode(), "tag": list(r.tag), "samples": list(r.samples),
                          "at": {"x": r.at.x, "y": r.at.y}, "path": [{"x": p.x, "y": p.y} for p in r.path]}),
              flush=True)
        heap.atomic_add(r, "count", 1)
        heap.atomic_add(r, "total", -5)
        r.label = b"from python"
        del r
    elif cmd == "heap-count":  # atomic adds to the Counter named "counter", racing other processes
        c = heap.find_or_create(Counter, "counter")
        for _ in range(int(args[1])):
            heap.atomic_add(c, "value", 1)
            heap.atomic_add(c, "hits", 2)
        del c
        print("counted", flush=True)
    elif cmd == "heap-block":  # an alloc waiting for the heap lock another process holds (Ctrl-C test)
        heap.lock_timeout = None
        print("ready", flush=True)
        heap.alloc(8)
    elif cmd == "heap-hold-lock":
        m = shmkit.Mutex.at(heap.segment, heap.byte_offset + 832)
        m.lock()
        print("ready", flush=True)
        time.sleep(60)
    else:
        fail(f"unknown command {cmd}")
    heap.close()
