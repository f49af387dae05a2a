"""Child process for the Python suite and tests/python_test.ts. One command per run:

  ring-produce HANDLE_JSON START COUNT [FAULT]    enqueue START..START+COUNT-1 (blocking)
  ring-consume HANDLE_JSON COUNT [TIMEOUT_S]      dequeue COUNT values, print them as JSON
  ring-claim HANDLE_JSON SIDE                     take a single role (enqueue or dequeue once), print "ready", sleep
  ring-block HANDLE_JSON                          print "ready", then dequeue for good (Ctrl-C test)
  pool-hold HANDLE_JSON N                         get N blocks, print their indices, sleep (a victim)
  pool-fault HANDLE_JSON FAULT                    arm FAULT, then get/put until it fires
  pool-check HANDLE_JSON RING_JSON COUNT          take COUNT block indices from the ring, check each block's
                                                  bytes (index, repeated), put the block back
  array-write NAME                                create a float64 array NAME of 1 MiB, fill it i*0.5, print the handle, wait for stdin
"""

import json
import sys
import time

import shmkit
from shmkit import _ops


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ring-produce":
        r = shmkit.Ring.attach(json.loads(args[0]))
        start, count = int(args[1]), int(args[2])
        if len(args) > 3:
            _ops.arm_fault(args[3])
        for v in range(start, start + count):
            r.enqueue(v, timeout=30)
        r.close()
    elif cmd == "ring-consume":
        r = shmkit.Ring.attach(json.loads(args[0]))
        timeout = float(args[2]) if len(args) > 2 else 30
        out = [r.dequeue(timeout=timeout) for _ in range(int(args[1]))]
        print(json.dumps(out))
        r.close()
    elif cmd == "ring-bulk":  # ring-bulk HANDLE enq|deq N FAULT: one bulk call of N, killed at FAULT
        r = shmkit.Ring.attach(json.loads(args[0]))
        _ops.arm_fault(args[3])
        n = int(args[2])
        ok = r.enqueue_bulk(list(range(500, 500 + n))) if args[1] == "enq" else r.dequeue_bulk(n)
        print(json.dumps(ok), flush=True)
        sys.exit(3)  # the fault did not fire
    elif cmd == "ring-claim":
        r = shmkit.Ring.attach(json.loads(args[0]))
        if args[1] == "producer":
            r.try_enqueue(7)
        else:
            r.try_dequeue()
        print("ready", flush=True)
        time.sleep(60)
    elif cmd == "ring-block":
        r = shmkit.Ring.attach(json.loads(args[0]))
        print("ready", flush=True)
        r.dequeue()
    elif cmd == "pool-hold":
        p = shmkit.Mempool.attach(json.loads(args[0]))
        got = [p.get(timeout=10).index for _ in range(int(args[1]))]
        print(json.dumps(got), flush=True)
        time.sleep(60)
    elif cmd == "pool-fault":
        p = shmkit.Mempool.attach(json.loads(args[0]))
        _ops.arm_fault(args[1])
        for _ in range(1000):
            b = p.get(timeout=10)
            p.put(b)
        print("fault never fired", flush=True)
        sys.exit(3)
    elif cmd == "pool-check":
        p = shmkit.Mempool.attach(json.loads(args[0]))
        r = shmkit.Ring.attach(json.loads(args[1]))
        bad = 0
        for _ in range(int(args[2])):
            i = r.dequeue(timeout=30)
            b = p.block(i)
            if bytes(b.buf[:8]) != bytes([i & 0xFF]) * 8:
                bad += 1
            p.put(i)
        print(json.dumps({"bad": bad}))
        r.close()
        p.close()
    elif cmd == "array-write":
        import numpy as np

        a = shmkit.SharedArray.create(args[0], (1024, 128), "float64")
        a.array[...] = np.arange(1024 * 128, dtype=np.float64).reshape(1024, 128) * 0.5
        print(json.dumps(a.handle()), flush=True)
        sys.stdin.readline()
        a.close()
    else:
        raise SystemExit(f"unknown command {cmd}")


main()
