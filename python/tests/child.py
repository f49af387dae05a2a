"""Child process for the Python suite and tests/python_test.ts. One command per run:

  ring-produce HANDLE_JSON START COUNT [FAULT]    enqueue START..START+COUNT-1 (blocking)
  ring-consume HANDLE_JSON COUNT [TIMEOUT_S]      dequeue COUNT values, print them as JSON
  ring-claim HANDLE_JSON SIDE                     take a single role (enqueue or dequeue once), print "ready", sleep
  ring-block HANDLE_JSON                          print "ready", then dequeue for good (Ctrl-C test)
  pool-hold HANDLE_JSON N                         get N blocks, print their indices, sleep (a victim)
  pool-fault HANDLE_JSON FAULT                    arm FAULT, then get/put until it fires
  pool-check HANDLE_JSON RING_JSON COUNT          take COUNT block indices from the ring, check each block's
                                                  bytes (index, repeated), put the block back
  log-write HANDLE_JSON ID COUNT [FAULT|-] [STYLE] write records 0..COUNT-1 of writer ID (tests/fixtures/log_common.ts
                                                  payloads; STYLE single (blocking writes, the default), batch
                                                  (try_write_batch of up to 8, one type each) or claim (try_claim
                                                  of maxRecord, commit of the payload's length)); with FAULT armed
                                                  it dies mid-write
  log-claim-die HANDLE_JSON ID COUNT              write records 0..COUNT-1 of writer ID, then claim record COUNT, fill
                                                  half of it, print "claimed" and SIGKILL itself holding the claim
  log-read HANDLE_JSON COUNT                      read COUNT records (read / read_batch in turn), check each payload and
                                                  that every writer's records arrive once and in order; print a JSON
                                                  summary {count, per, errors, sum}
  log-block HANDLE_JSON                           print "ready", then read for good (Ctrl-C test)
  chan-send HANDLE_JSON START COUNT [FAULT]     send messages START..START+COUNT-1 (chan_payload, blocking sends)
  chan-send-batch HANDLE_JSON START COUNT [FAULT] as chan-send, with send_batch of 3 items at a time
  chan-recv HANDLE_JSON [FAULT] [COUNT]           receive (recv / try_recv_batch / recv_into in turn) until a STOP
                                                  message (or COUNT messages), check each payload, print each id
                                                  on a line as it arrives, then "done"
  chan-hold HANDLE_JSON                           loan a slot (LOANED), receive one (HELD), then die inside a send
                                                  after its QUEUED store (a QUEUED orphan): three blocks to reclaim
  chan-recover HANDLE_JSON                        reclaim, print {"freed", "available"} as JSON, then act as chan-recv
  chan-keep HANDLE_JSON COUNT                     receive COUNT messages (checked), print each id, release the 1st,
                                                  3rd, ... and keep the others, then SIGKILL itself (spsc-ordered)
  chan-value-send HANDLE_JSON                     send_value each of chan_values(), then "done"
  chan-value-recv HANDLE_JSON                     receive len(chan_values()) messages, print "ok I" when value() equals
                                                  chan_values()[I] (cycles followed), "bad I repr" if not, "ERR I CODE" when
                                                  value() raises ShmError CODE
  chan-block HANDLE_JSON SIDE                     print "ready", then recv (SIDE recv) or send on a full channel
                                                  (SIDE send) for good (Ctrl-C test)
  array-write NAME                                create a float64 array NAME of 1 MiB, fill it i*0.5, print the handle, wait for stdin
  heap-churn HANDLE SEED OPS                      allocate, fill, check and free blocks (tests/fixtures/heap_child.ts churn);
                                                  exit 1 if a held block changes or overlaps another; print "ok N"
  heap-crasher HANDLE LEDGER SLOT SEED BUDGET [FAULT]  tests/fixtures/heap_crasher.ts in Python: alloc/fill/free/name with
                                                  the same ledger; with FAULT armed it dies inside a heap operation
  heap-script HANDLE SEED N                       the deterministic alloc/free/name script of tests/python_heap_test.ts
  heap-take HANDLE                                check and free the blocks listed under "ts-blocks", allocate and fill
                                                  blocks of our own, list them under "py-blocks"; print a JSON summary
  heap-check HANDLE LEDGER SLOTS                  recover the heap, account for the ledger (heap_common.check_ledger),
                                                  print JSON {problems, stats}
  heap-hold-lock HANDLE                           take the heap lock (its Mutex), print "ready", sleep (killed by the test)
  heap-new NAME SIZE NAMES SLOTS                  create a heap, print its handle, close it (the caller unlinks it)
  heap-block HANDLE                               print "ready", then alloc for good (the lock is held: Ctrl-C test)
  heap-objects HANDLE                             open the ring "jobs" (print "sum" of what it held), semaphore "sem"
                                                  (release 3) and float64 array "arr" (arr[1] = 42) placed in the heap
  heap-place HANDLE                               place that ring (holding 1..5), semaphore and array by name
  heap-struct HANDLE                              print the Rec struct "rec" (heap_child.ts schema) as JSON, then add 1 to
                                                  count and -5 to total atomically and set label
  heap-count HANDLE N                             N atomic adds of 1 to value and 2 to hits of the Counter struct "counter"
"""

import json
import struct
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
    elif cmd == "log-write":
        lg = shmkit.MessageLog.attach(json.loads(args[0]))
        wid, count = int(args[1]), int(args[2])
        if len(args) > 3 and args[3] != "-":
            _ops.arm_fault(args[3])
        style = args[4] if len(args) > 4 else "single"
        deadline = time.monotonic() + 60
        seq = 0
        while seq < count:
            if style == "batch":
                k = min(count - seq, 8 - seq % 8)  # a batch never spans two types
                got = lg.try_write_batch([log_payload(wid, seq + j, lg.max_record) for j in range(k)], log_type(seq))
            elif style == "claim":
                b = log_payload(wid, seq, lg.max_record)
                c = lg.try_claim(lg.max_record, log_type(seq))
                got = 0
                if c is not None:
                    c.data[:len(b)] = b
                    c.commit(len(b))
                    got = 1
            else:
                lg.write(log_payload(wid, seq, lg.max_record), log_type(seq), timeout=30)
                got = 1
            if got == 0:
                if time.monotonic() > deadline:
                    raise SystemExit(f"log-write: no room for 60 s at seq {seq}")
                time.sleep(0.0002)
            seq += got
        lg.close()
        print("done", flush=True)
    elif cmd == "log-claim-die":
        import os
        import signal

        lg = shmkit.MessageLog.attach(json.loads(args[0]))
        wid, count = int(args[1]), int(args[2])
        for seq in range(count):
            lg.write(log_payload(wid, seq, lg.max_record), log_type(seq), timeout=30)
        b = log_payload(wid, count, lg.max_record)
        c = None
        while c is None:
            c = lg.try_claim(lg.max_record, log_type(count))
            if c is None:
                time.sleep(0.001)
        c.data[:len(b) // 2] = b[:len(b) // 2]
        print("claimed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    elif cmd == "log-read":
        lg = shmkit.MessageLog.attach(json.loads(args[0]))
        count = int(args[1])
        per: dict[int, int] = {}
        errors: list[str] = []
        total = [0, 0]

        def take(t: int, b: bytes) -> None:
            total[0] += 1
            total[1] = (total[1] + sum(b)) & 0xFFFFFFFF
            err = log_check(b, t, lg.max_record)
            if isinstance(err, str):
                errors.append(err)
                return
            wid, seq = err
            want = per.get(wid, 0)
            if seq != want:
                errors.append(f"writer {wid}: seq {seq}, expected {want}")
            per[wid] = seq + 1

        turn = 0
        while total[0] < count:
            turn += 1
            if turn % 2:
                take(*lg.read(timeout=30))
            else:
                lg.read_batch(take, max=min(7, count - total[0]), timeout=30)
        lg.close()
        print(json.dumps({"count": total[0], "per": {str(k): v for k, v in per.items()}, "errors": errors[:5],
                          "sum": total[1]}), flush=True)
    elif cmd in ("log-stamped", "chan-stamped"):
        # tests/lost_wake_test.ts: `count` blocking reads of Float64 wall-clock stamps (ms) written
        # right after this process registered as a waiter, with the writer's wake check made to miss.
        obj = (shmkit.MessageLog if cmd == "log-stamped" else shmkit.Channel).attach(json.loads(args[0]))
        delays = []
        for _ in range(int(args[1])):
            if cmd == "log-stamped":
                b = obj.read(timeout=30)[1]
            else:
                with obj.recv(timeout=30) as m:
                    b = bytes(m.bytes)
            delays.append(time.time() * 1000 - struct.unpack_from("<d", b, 0)[0])
        obj.close()
        print(json.dumps({"delays": delays}), flush=True)
    elif cmd == "chan-sender-stamped":
        # tests/lost_wake_test.ts, the sender side: fill the spsc-ordered channel, then `count`
        # blocking sends, each freed by the parent with the receiver's wake check made to miss.
        ch = shmkit.Channel.attach(json.loads(args[0]))
        while ch.try_send(b"\0" * 8):
            pass
        times = []
        for _ in range(int(args[1])):
            ch.send(b"\0" * 8, timeout=30)
            times.append(time.time() * 1000)
        ch.close()
        print(json.dumps({"times": times}), flush=True)
    elif cmd in ("ring-consumer-stamped", "ring-producer-stamped"):
        # tests/lost_wake_test.ts, an spsc Ring: `count` blocking dequeues (the parent enqueues right
        # after this process registered, with its wake check made to miss), or, after filling the
        # ring, `count` blocking enqueues (the parent dequeues one value the same way).
        r = shmkit.Ring.attach(json.loads(args[0]))
        times, values = [], []
        if cmd == "ring-consumer-stamped":
            for _ in range(int(args[1])):
                values.append(r.dequeue(timeout=30))
                times.append(time.time() * 1000)
        else:
            while r.try_enqueue(1000):
                pass
            for i in range(int(args[1])):
                r.enqueue(i, timeout=30)
                times.append(time.time() * 1000)
        r.close()
        print(json.dumps({"times": times, "values": values}), flush=True)
    elif cmd == "log-block":
        lg = shmkit.MessageLog.attach(json.loads(args[0]))
        print("ready", flush=True)
        lg.read()
    elif cmd.startswith("heap-"):
        import heap_common

        heap_common.command(cmd, args)
    elif cmd == "chan-send":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        start, count = int(args[1]), int(args[2])
        if len(args) > 3:
            _ops.arm_fault(args[3])
        for i in range(start, start + count):
            ch.send(chan_payload(i, ch.slot_size), timeout=30)
        ch.close()
        print("done", flush=True)
    elif cmd == "chan-send-batch":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        start, count = int(args[1]), int(args[2])
        if len(args) > 3:
            _ops.arm_fault(args[3])
        items = [chan_payload(i, ch.slot_size) for i in range(start, start + count)]
        for k in range(0, count, 3):
            ch.send_batch(items[k:k + 3], timeout=30)
        ch.close()
        print("done", flush=True)
    elif cmd in ("chan-recv", "chan-recover"):
        ch = shmkit.Channel.attach(json.loads(args[0]))
        if cmd == "chan-recover":
            freed = ch.reclaim()
            print(json.dumps({"freed": freed, "available": ch.available}), flush=True)
        elif len(args) > 1 and args[1]:
            _ops.arm_fault(args[1])
        chan_receive(ch, int(args[2]) if len(args) > 2 else -1)
        ch.close()
        print("done", flush=True)
    elif cmd == "chan-hold":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        ch.try_loan()  # LOANED, never sent
        ch.recv(timeout=10)  # HELD, never released
        _ops.arm_fault("channel.send.after_queued:1")
        ch.send(b"orphan", timeout=10)  # QUEUED, never enqueued
        sys.exit(3)  # the fault did not fire
    elif cmd == "chan-keep":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        kept = []
        for k in range(int(args[1])):
            m = ch.recv(timeout=30)
            i = struct.unpack_from("<I", m.bytes)[0]
            if m.tobytes() != chan_payload(i, ch.slot_size):
                sys.exit(1)
            print(i, flush=True)
            if k % 2 == 0:
                m.release()
            else:
                kept.append(m)
        import os as _os

        _os.kill(_os.getpid(), 9)  # SIGKILL, holding kept, unreleased
    elif cmd == "chan-value-send":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        for v in chan_values():
            ch.send_value(v, timeout=30)
        ch.close()
        print("done", flush=True)
    elif cmd == "chan-value-recv":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        for i, want in enumerate(chan_values()):
            with ch.recv(timeout=30) as m:
                try:
                    got = m.value()
                except shmkit.ShmError as e:
                    print(f"ERR {i} {e.code}", flush=True)
                    continue
            print(f"ok {i}" if chan_value_equal(got, want, i) else f"bad {i} {got!r}", flush=True)
        ch.close()
        print("done", flush=True)
    elif cmd == "chan-block":
        ch = shmkit.Channel.attach(json.loads(args[0]))
        print("ready", flush=True)
        if args[1] == "recv":
            ch.recv()
        else:
            while ch.try_send(b"x"):
                pass
            ch.send(b"x")
    else:
        raise SystemExit(f"unknown command {cmd}")


# Record payloads of tests/fixtures/log_common.ts: [u32 writer id, u32 seq, bytes (id*31 + seq*7 + i) & 255].
def log_length(wid: int, seq: int, most: int) -> int:
    return 8 + (((seq + 1) * 2654435761 + wid * 40503) & 0xFFFFFFFF) % (most - 8 + 1)


def log_type(seq: int) -> int:
    return (seq >> 3) & 0xFFFF


def log_payload(wid: int, seq: int, most: int) -> bytes:
    n = log_length(wid, seq, most)
    return struct.pack("<II", wid, seq) + bytes((wid * 31 + seq * 7 + i) & 255 for i in range(8, n))


# Channel messages of tests/python_channel_test.ts: [u32 id, bytes (id*31 + k*7) & 255], 4 + (id * 40503) %
# (slotSize - 3) bytes; id 0xFFFFFFFF (4 bytes) is STOP.
STOP = 0xFFFFFFFF


def chan_values() -> list:
    """The structured values of tests/python_channel_test.ts (VALUES there), as Python writes and reads them."""
    from datetime import datetime, timezone

    root = {"name": "root", "kids": []}
    root["kids"].append(root)
    root["self"] = root
    return [
        {"k": 1, 2: "two"},  # a key that is not a str: a Map
        {"a", 3},
        datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=timezone.utc),
        {"a": {"b": [1, 2.5, "é€😀", None, True]}, "big": 2**70, "neg": -(2**64), "n53": float(2**53)},
        root,
        "中文 ✓ \U0001F600",
        b"\x00\x01\xff",
        [-(2**30), 2**30 - 1, {"x": {1, "1"}}],
        [1.0, 2.5],  # V8 writes every element of a JavaScript array holding a non-integer as a double
    ]


def chan_value_equal(got, want, i: int) -> bool:
    if i == 4:  # the cycle
        return (type(got) is dict and list(got) == ["name", "kids", "self"] and got["name"] == "root"
                and got["self"] is got and got["kids"] == [got] and got["kids"][0] is got)
    return _strict_equal(got, want)


def _strict_equal(a, b) -> bool:
    """Equal values of the same types (1 != 1.0 != True here), dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, set):
        return a == b and {(type(x), x) for x in a} == {(type(x), x) for x in b}
    return a == b


def chan_payload(i: int, slot_size: int) -> bytes:
    n = 4 + (i * 40503) % (slot_size - 3)
    return struct.pack("<I", i) + bytes((i * 31 + k * 7) & 255 for k in range(4, n))


def chan_receive(ch, count: int) -> None:
    """Receives until STOP (or count messages), in turn with recv, try_recv_batch and recv_into,
    reclaiming every 16 turns; prints each id as it arrives; exit 1 on a corrupt payload."""
    got = 0
    turn = 0
    buf = bytearray(ch.slot_size)
    stop = [False]

    def take(b) -> None:
        nonlocal got
        i = struct.unpack_from("<I", b)[0] if len(b) >= 4 else -1
        if i == STOP and len(b) == 4:
            if stop[0]:  # a batch took a second STOP: it belongs to another receiver
                ch.send(struct.pack("<I", STOP), timeout=30)
            stop[0] = True
            return
        if bytes(b) != chan_payload(i, ch.slot_size):
            print(f"message {i}: {len(b)} bytes differ", file=sys.stderr, flush=True)
            sys.exit(1)
        got += 1
        print(i, flush=True)

    while not stop[0] and (count < 0 or got < count):
        turn += 1
        if turn % 16 == 0:
            ch.reclaim()  # R1 (csrc/ops_chan.c) while senders of both languages are inside their brackets
        if turn % 3 == 1:
            with ch.recv(timeout=30) as m:
                take(m.bytes)
        elif turn % 3 == 2:
            ch.recv_batch(take, max=1 if count >= 0 else 3, timeout=30)
        else:
            n = ch.recv_into(buf, timeout=30)
            take(memoryview(buf)[:n])


def log_check(b: bytes, t: int, most: int):
    if len(b) < 8:
        return f"payload of {len(b)} bytes"
    wid, seq = struct.unpack_from("<II", b)
    if wid >= 1024:
        return f"writer id {wid}"
    if t != log_type(seq):
        return f"writer {wid} seq {seq}: type {t}"
    if b != log_payload(wid, seq, most):
        return f"writer {wid} seq {seq}: {len(b)} bytes differ from the expected {log_length(wid, seq, most)}"
    return wid, seq


main()
