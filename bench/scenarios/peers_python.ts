// Peers: Python multiprocessing.Pipe and multiprocessing.Queue between two Python processes
// (the launcher runs once, under Deno; the lines carry runtime "python").
// @bench-runtimes deno
// @bench-ids S1 S3 S5
//
// Cells (transport "python mp.Pipe" / "python mp.Queue"):
//   S3 "64B"        round trip of 64 bytes (child echoes), us p50 / p99
//   S1 "batch=1"    small ints sent one by one without waiting, child counts and acks, items/s
//   S5 "N MiB"      one bytes block of 1 / 16 / 64 MiB, child receives it and acks: ms, GB/s
// CPU: getrusage of the parent (Queue's feeder thread included) plus the child from /proc.
import { spawn } from "node:child_process";
import { exited, QUICK } from "../lib.ts";

const PY = String.raw`
import json, multiprocessing as mp, os, resource, sys, time

QUICK = sys.argv[1] == "1"

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

def pct(s, q):
    return s[min(len(s) - 1, int(q * len(s)))]

# --- children -------------------------------------------------------------------------------
def pipe_child(conn):
    while True:
        m = conn.recv_bytes()
        if m == b"q":
            return
        op = m[:1]
        if op == b"e":
            conn.send_bytes(m)
        elif op == b"a":
            conn.send_bytes(b"k")
        elif op == b"c":
            n = int(m[1:])
            for _ in range(n):
                conn.recv()
            conn.send_bytes(b"k")

def queue_child(qin, qout):
    while True:
        m = qin.get()
        if m == b"q":
            return
        op = m[:1]
        if op == b"e":
            qout.put(m)
        elif op == b"a":
            qout.put(b"k")
        elif op == b"c":
            n = int(m[1:])
            for _ in range(n):
                qin.get()
            qout.put(b"k")

# --- one transport ----------------------------------------------------------------------------
def run(name, send, recv, pid):
    msg = b"e" + b"x" * 63
    n, warm = pick(3000, 300), pick(300, 50)
    s = []
    cc0, c0, w0 = proc_cpu(pid), self_cpu(), time.perf_counter_ns()
    for i in range(warm + n):
        t0 = time.perf_counter_ns()
        send(msg)
        recv()
        if i >= warm:
            s.append(time.perf_counter_ns() - t0)
    wall = (time.perf_counter_ns() - w0) / 1e9
    cpu = self_cpu() - c0 + proc_cpu(pid) - cc0
    s.sort()
    for q, m in ((0.5, "us p50"), (0.99, "us p99")):
        emit(bench="S3", variant="64B", transport=name, metric=m, value=pct(s, q) / 1e3, cpu_s=round(cpu, 4),
             wall_s=round(wall, 4), note=f"{n} samples, child echoes")

    items = pick(100_000, 10_000)
    cc0, c0, w0 = proc_cpu(pid), self_cpu(), time.perf_counter_ns()
    send(b"c%d" % items)
    for i in range(items):
        send(i)
    recv()
    wall = (time.perf_counter_ns() - w0) / 1e9
    cpu = self_cpu() - c0 + proc_cpu(pid) - cc0
    emit(bench="S1", variant="batch=1", transport=name, metric="items/s", value=items / wall, cpu_s=round(cpu, 4),
         wall_s=round(wall, 4), note=f"{items} small ints sent one by one (pickled); child acks the last")

    for mib in (1, 16, 64):
        size = mib << 20
        block = b"a" + bytes(size - 1)
        reps = pick(20 if mib == 1 else 3, 3 if mib == 1 else 1)
        times = []
        cc0, c0, w0 = proc_cpu(pid), self_cpu(), time.perf_counter_ns()
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            send(block)
            recv()
            times.append(time.perf_counter_ns() - t0)
        wall = (time.perf_counter_ns() - w0) / 1e9
        cpu = self_cpu() - c0 + proc_cpu(pid) - cc0
        times.sort()
        med = times[len(times) // 2]
        note = f"bytes block to the child + 1 ack; median of {reps}"
        for metric, value in (("ms", med / 1e6), ("GB/s", size / med)):
            emit(bench="S5", variant=f"{mib} MiB", transport=name, metric=metric, value=value, cpu_s=round(cpu, 4),
                 wall_s=round(wall, 4), note=note)

def main():
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=pipe_child, args=(b,))
    p.start()
    def psend(m):
        if isinstance(m, bytes):
            a.send_bytes(m)
        else:
            a.send(m)
    run("python mp.Pipe", psend, a.recv_bytes, p.pid)
    a.send_bytes(b"q")
    p.join()

    qin, qout = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=queue_child, args=(qin, qout))
    p.start()
    run("python mp.Queue", qin.put, qout.get, p.pid)
    qin.put(b"q")
    p.join()

main()
`;

const child = spawn("python3", ["-c", PY, QUICK ? "1" : "0"], { stdio: ["ignore", "inherit", "inherit"] });
const code = await exited(child);
if (code !== 0) {
  console.error(`peers_python: python3 exited ${code}`);
  (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = 1;
}
