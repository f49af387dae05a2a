"""Python Channel batch send: one library call per batch (try_send_batch / send_batch over
shmkit_chan_send_batch) against one call per item (a try_send / send loop, what send_batch did
before), 64-byte items, in one run so that the ratio is meaningful.

  single: one process, spsc, 1024 slots: send a batch of 256, then try_recv_batch them
  cross:  a child process receives (recv_batch), the parent sends N items in batches of 256
  recv:   a child sends (send_batch), the parent receives with recv() + release() per message, recv_run 1 or 32

Usage: python3 bench/python/chan_batch.py [N]   (wrap in the shared CPU lock: flock -w 1800 /tmp/shmkit-cpu.lock ...)
Prints one line per cell: items/s (wall), CPU seconds of this process, and (single) the send side's
share in ns per item."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import shmkit  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
ITEM = bytes(range(64))
BATCH = [ITEM] * 256


def single(style: str, n: int) -> tuple[float, float]:
    ch = shmkit.Channel.create(None, 1024, 64, "spsc")
    sink = []
    fn = sink.append
    try:
        rounds = n // 256
        t0, c0 = time.perf_counter(), time.process_time()
        ts = 0.0
        for _ in range(rounds):
            a = time.perf_counter()
            if style == "batch":
                k = ch.try_send_batch(BATCH)
            else:
                k = 0
                for it in BATCH:
                    if not ch.try_send(it):
                        break
                    k += 1
            ts += time.perf_counter() - a
            assert k == 256
            got = ch.try_recv_batch(fn)
            assert got == 256
            sink.clear()
        return rounds * 256 / (time.perf_counter() - t0), time.process_time() - c0, ts / (rounds * 256) * 1e9
    finally:
        ch.close()


CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import shmkit
ch = shmkit.Channel.attach(json.loads(sys.argv[2]))
n = int(sys.argv[3])
got = 0
def fn(v):
    pass
while got < n:
    got += ch.recv_batch(fn, timeout=60)
print(got, flush=True)
"""


def cross(style: str, n: int) -> tuple[float, float]:
    ch = shmkit.Channel.create(None, 1024, 64, "spsc")
    try:
        py_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
        p = subprocess.Popen([sys.executable, "-c", CHILD, py_dir, json.dumps(ch.handle()), str(n)],
                             stdout=subprocess.PIPE, text=True)
        rounds = n // 256
        assert rounds * 256 == n
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            if style == "batch":
                ch.send_batch(BATCH, timeout=60)
            else:
                for it in BATCH:
                    ch.send(it, timeout=60)
        out = p.communicate(timeout=120)[0]
        dt = time.perf_counter() - t0
        assert int(out) == n, out
        return n / dt, time.process_time() - c0, 0.0
    finally:
        ch.close()


SENDER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import shmkit
ch = shmkit.Channel.attach(json.loads(sys.argv[2]))
n = int(sys.argv[3])
batch = [bytes(range(64))] * 256
for _ in range(n // 256):
    ch.send_batch(batch, timeout=60)
print("done", flush=True)
"""


def cross_recv(run: int, n: int) -> tuple[float, float, float]:
    """A child sends (send_batch); this process receives with recv() + release per message."""
    ch = shmkit.Channel.create(None, 1024, 64, "spsc", recv_run=run)
    try:
        py_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
        p = subprocess.Popen([sys.executable, "-c", SENDER, py_dir, json.dumps(ch.handle()), str(n)],
                             stdout=subprocess.PIPE, text=True)
        m = ch.recv(timeout=60)  # the clock starts at the first message
        m.release()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n - 1):
            m = ch.recv(timeout=60)
            m.release()
        dt = time.perf_counter() - t0
        p.communicate(timeout=60)
        return (n - 1) / dt, time.process_time() - c0, 0.0
    finally:
        ch.close()


def main() -> None:
    n = N // 256 * 256
    for name, fn in (("single", single), ("cross", cross)):
        for style in ("per-item", "batch", "per-item", "batch"):
            rate, cpu, send_ns = fn(style, n if name == "single" else n // 2)
            extra = f"  (send side {send_ns:.0f} ns/item)" if send_ns else ""
            print(f"{name:6} {style:8} {rate / 1e6:6.2f} M items/s  cpu {cpu:.2f} s (this process){extra}", flush=True)
    for run in (1, 32, 1, 32):
        rate, cpu, _ = cross_recv(run, n // 2)
        print(f"recv   run={run:<4} {rate / 1e6:6.2f} M items/s  cpu {cpu:.2f} s (this process, the receiver)", flush=True)


if __name__ == "__main__":
    main()
