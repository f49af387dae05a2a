"""Python side of bench/scenarios/py_ring.ts (also runnable alone: python3 bench/python/ring_vs_mp.py [quick]).

S1 batch=1 / batch=32: N small ints from a parent to a child process, the child counts and acks
the last, through a shmkit Ring (spsc), a shmkit Channel (spsc, 8-byte messages), multiprocessing.Queue and multiprocessing.Pipe, measured
the same way in one run (bench/scenarios/peers_python.ts measures the same two peers for the
README tables). Emits JSON lines for the shmkit rows (runtime "python"); prints a summary with the
ratios against the Queue and Pipe of this run on stderr.

Then, when argv[2] == "handoff": the 1 MiB numpy hand-off to Deno. Creates a Mempool of 1 MiB
blocks, an spsc Ring for the hand-off and a second one for Deno's acknowledgements, prints
"HANDOFF [<pool handle>, <ring handle>, <ack ring handle>]" on stdout, waits for "go" on stdin, then
repeatedly takes a block as a float64 numpy array (zero-copy; each block's 1 MiB is filled once, on
its first use), writes the message number into its second and last elements, stamps shmkit's
CLOCK_MONOTONIC into its first 8 bytes, enqueues the block index and waits for Deno's ack (ring
dequeue: spins, then parks) before the next block; the Deno side (polling) measures the time from
the stamp to its first read of the array. As in the JavaScript S5 cells: one block at a time, each
after the previous one's ack, the sender on cpu0, the receiver on cpu1, per message a few words
written into the block (rewriting the whole MiB each time left its store-buffer drain inside the
timed part). Until 2026-12-02 the sender slept 0.5 ms between blocks instead of waiting for an ack:
it then came back to each enqueue from a sleep (its own stamp-to-enqueue time 1.2 us against
0.3-0.8 us), which the JavaScript cells' senders never do. After the "done" sentinel it prints
"PYSEND {p50, p90}": its own time from the stamp to enqueue() returning.
"""

import json
import multiprocessing as mp
import os
import resource
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import shmkit  # noqa: E402
from shmkit import _sys  # noqa: E402

QUICK = len(sys.argv) > 1 and sys.argv[1] == "1"


def pick(full, quick):
    return quick if QUICK else full


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu(pid):
    ns = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        return 0.0
    return ns / 1e9


def emit(**row):
    row = {"bench": row.pop("bench"), **row, "runtime": "python"}
    print(json.dumps(row), flush=True)


# --- children ----------------------------------------------------------------------------------
def child_cpu_us(c0):
    return max(0, int((self_cpu() - c0) * 1e6))


def ring_child(h, ack_h, n, batch):
    c0 = self_cpu()
    r = shmkit.Ring.attach(h)
    ack = shmkit.Ring.attach(ack_h)
    got = 0
    if batch == 1:
        deq = r.dequeue
        for _ in range(n):
            deq()
    else:
        import array

        out = array.array("I", bytes(4 * batch * 4))
        while got < n:
            k = r.dequeue_into(out)
            if k == 0:
                r.dequeue(timeout=10)  # wait for more (spins briefly, then parks; counts one)
                k = 1
            got += k
    ack.enqueue(child_cpu_us(c0))


def channel_child(h, ack_h, n, batch):
    c0 = self_cpu()
    ch = shmkit.Channel.attach(h)
    ack = shmkit.Ring.attach(ack_h)
    if batch == 1:
        recv = ch.recv
        for _ in range(n):
            recv().release()
    else:
        got = 0

        def noop(_view):
            pass

        while got < n:
            k = ch.try_recv_batch(noop, batch)
            got += k if k else ch.recv_batch(noop, batch, timeout=10)
    ack.enqueue(child_cpu_us(c0))


def queue_child(q, ack, n, batch):
    c0 = self_cpu()
    got = 0
    while got < n:
        m = q.get()
        got += len(m) if batch > 1 else 1
    ack.put(child_cpu_us(c0))


def pipe_child(conn, n, batch):
    c0 = self_cpu()
    got = 0
    while got < n:
        m = conn.recv()
        got += len(m) if batch > 1 else 1
    conn.send(child_cpu_us(c0))


def measure(name, start_child, make_items, send_all, wait_ack):
    """Wall time from the first send to the child's ack; CPU of parent (from getrusage, the
    Queue's feeder thread included) plus child (reported by the child with its ack).

    The items are made after the fork: a list made before it shares its pages with the child,
    and the parent's first write to each (a reference count) is then a copy-on-write fault,
    ~0.3 µs per item here, which would be measured as transport cost (the same for every row)."""
    p = start_child()
    make_items()
    time.sleep(0.2)  # the child is up and waiting
    c0, w0 = self_cpu(), time.perf_counter_ns()
    send_all()
    child_us = wait_ack()
    wall = (time.perf_counter_ns() - w0) / 1e9
    cpu = self_cpu() - c0 + child_us / 1e6
    p.join()
    return wall, cpu


def s1(ctx, n, batch):
    out = {}
    items: list = []
    chunks: list = []

    def make():  # called by measure() after the fork
        items[:] = range(n)
        chunks[:] = [items[i:i + batch] for i in range(0, n, batch)]

    # shmkit ring (spsc: one producer process, one consumer process, like a Pipe)
    r = shmkit.Ring.create(None, 4096, "spsc")
    ack = shmkit.Ring.create(None, 4, "spsc")
    h, ah = r.handle(), ack.handle()

    def ring_send():
        if batch == 1:
            enq = r.enqueue
            for v in items:
                enq(v)
        else:
            for c in chunks:
                while c:
                    k = r.enqueue_burst(c)
                    if k == 0:  # full: wait for room (parks), then burst the rest
                        r.enqueue(c[0], timeout=60)
                        k = 1
                    c = c[k:]

    out["shmkit ring spsc"] = measure("ring", lambda: _start(ctx, ring_child, (h, ah, n, batch)), make, ring_send,
                                      lambda: ack.dequeue(timeout=60))
    r.unlink(); r.close(); ack.unlink(); ack.close()

    # shmkit channel (spsc): the same count of 8-byte messages, copied in and viewed zero-copy
    ch = shmkit.Channel.create(None, 1024, 64, "spsc")
    ack = shmkit.Ring.create(None, 4, "spsc")
    h, ah = ch.handle(), ack.handle()
    msg = struct.pack("<q", 12345678)

    def channel_send():
        send = ch.send
        for _ in items:
            send(msg)

    out["shmkit channel spsc"] = measure("channel", lambda: _start(ctx, channel_child, (h, ah, n, batch)), make,
                                         channel_send, lambda: ack.dequeue(timeout=60))
    ch.unlink(); ch.close(); ack.unlink(); ack.close()

    q, qa = ctx.Queue(), ctx.Queue()
    out["mp.Queue"] = measure("queue", lambda: _start(ctx, queue_child, (q, qa, n, batch)), make,
                              lambda: [q.put(c if batch > 1 else c[0]) for c in chunks], qa.get)
    a, b = ctx.Pipe()
    out["mp.Pipe"] = measure("pipe", lambda: _start(ctx, pipe_child, (b, n, batch)), make,
                             lambda: [a.send(c if batch > 1 else c[0]) for c in chunks], a.recv)
    return out


def _start(ctx, fn, args):
    p = ctx.Process(target=fn, args=args)
    p.start()
    return p


def handoff():
    import numpy as np

    n = pick(2000, 300)
    pool = shmkit.Mempool.create(None, 8, 1 << 20, 4)
    ring = shmkit.Ring.create(None, 8, "spsc")
    ack = shmkit.Ring.create(None, 8, "spsc")
    print("HANDOFF " + json.dumps([pool.handle(), ring.handle(), ack.handle()]), flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {0})
        except OSError:
            pass
    # The stamp's clock: CLOCK_MONOTONIC, shmkit's now_ns() (what the Deno side reads). On Linux
    # Python's time.monotonic_ns() reads the same clock without a ctypes call (~0.2 us less of the
    # clock call itself inside the measured hand-off); used when the two agree.
    _sys.now_ns()  # loads the library before the comparison
    same = sys.platform == "linux" and abs(time.monotonic_ns() - _sys.now_ns()) < 1e6
    now = time.monotonic_ns if same else _sys.now_ns
    stamp_into = struct.Struct("<d").pack_into
    filled = set()
    own = []  # Python's own time from its stamp to enqueue() returning, ns
    for i in range(n):
        b = pool.get(timeout=10)
        a = np.frombuffer(b.buf, dtype=np.float64)  # zero-copy view of the 1 MiB block
        if b.index not in filled:
            a[:] = -1.0  # the payload, written in place once per block
            filled.add(b.index)
        a[1] = float(i)
        a[-1] = float(i)
        del a  # releasing the view is the writer's own cleanup: before the stamp
        stamp = now()
        stamp_into(b.buf, 0, stamp)  # the stamp: CLOCK_MONOTONIC ns
        ring.enqueue(b.index)
        own.append(now() - stamp)  # after the publish: not part of the measured hand-off
        if ack.dequeue(timeout=10) != i:  # Deno read block i and put it back
            raise RuntimeError(f"handoff: ack for block {i} out of order")
    ring.enqueue(0xFFFFFFFF)  # done
    own.sort()
    print("PYSEND " + json.dumps({"p50": own[len(own) // 2], "p90": own[len(own) * 9 // 10]}), flush=True)
    sys.stdin.readline()
    pool.unlink(); ring.unlink(); ack.unlink(); pool.close(); ring.close(); ack.close()


def main():
    ctx = mp.get_context("fork")
    n = pick(200_000, 20_000)
    summary = []
    for batch in (1, 32):
        res = s1(ctx, n, batch)
        wall, cpu = res["shmkit ring spsc"]
        rate = n / wall
        variant = f"batch={batch}"
        how = "enqueue()/dequeue() one call per item" if batch == 1 else "enqueue_burst/dequeue_burst of 32"
        emit(bench="S1", variant=variant, transport="shmkit ring spsc (python)", metric="items/s", value=rate,
             cpu_s=round(cpu, 4), wall_s=round(wall, 4),
             note=f"{n} small ints parent -> child process, {how}; child acks the last")
        cw, cc = res["shmkit channel spsc"]
        crate = n / cw
        how = "send()/recv()+release() one call each per message" if batch == 1 else \
            "send() per message, try_recv_batch of 32 (one call per burst, one per release)"
        emit(bench="S1", variant=variant, transport="shmkit channel spsc (python)", metric="items/s", value=crate,
             cpu_s=round(cc, 4), wall_s=round(cw, 4),
             note=f"{n} 8-byte messages parent -> child process, {how}; child acks the last")
        q = n / res["mp.Queue"][0]
        p = n / res["mp.Pipe"][0]
        summary.append(f"S1 {variant}: shmkit ring {rate / 1e3:.0f} k/s (cpu {cpu:.2f} s), mp.Queue {q / 1e3:.0f} k/s "
                       f"(cpu {res['mp.Queue'][1]:.2f} s), mp.Pipe {p / 1e3:.0f} k/s (cpu {res['mp.Pipe'][1]:.2f} s): "
                       f"{rate / q:.1f}x Queue, {rate / p:.1f}x Pipe; shmkit channel {crate / 1e3:.0f} k/s (cpu {cc:.2f} s) = "
                       f"{crate / rate:.2f}x ring, {crate / q:.1f}x Queue, {crate / p:.1f}x Pipe")
    for line in summary:
        print("py_ring: " + line, file=sys.stderr, flush=True)
    if len(sys.argv) > 2 and sys.argv[2] == "handoff":
        handoff()


main()
