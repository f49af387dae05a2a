// shmkit for Python (python/shmkit): a Ring (and a Channel of 8-byte messages) between two Python processes against
// multiprocessing.Queue and multiprocessing.Pipe on small items (S1, the same method as
// peers_python.ts), and a 1 MiB numpy array handed from Python to this Deno process zero-copy
// through a Mempool block and an spsc Ring (S5 "1 MiB handoff": time from Python's stamp, taken
// after it wrote the message's words into the array, to Deno's first read of it; Deno polls the
// ring and acknowledges each block on a second ring, Python sends the next block after the ack, as
// the JavaScript S5 cells do; Python on cpu0, Deno on cpu1).
// Runnable alone (inside the CPU lock):
//   flock -w 1800 /tmp/shmkit-cpu.lock node_modules/.bin/deno run -A bench/scenarios/py_ring.ts
// @bench-runtimes deno
// @bench-ids S1 S5
import { spawn } from "node:child_process";
import { emit, emitLatency, exited, pin, QUICK, ROOT } from "../lib.ts";
import { Mempool, Ring } from "../../mod.ts";
import { nowNs } from "../../src/sys.ts";

const child = spawn("python3", [`${ROOT}bench/python/ring_vs_mp.py`, QUICK ? "1" : "0", "handoff"], {
  stdio: ["pipe", "pipe", "inherit"],
});
let buf = "";
let handoff: ((line: string) => void) | undefined;
const gotHandoff = new Promise<string>((resolve) => handoff = resolve);
let pySend: ((line: string) => void) | undefined;
const gotPySend = new Promise<string>((resolve) => pySend = resolve);
child.stdout!.on("data", (d: Uint8Array) => {
  buf += new TextDecoder().decode(d);
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.startsWith("HANDOFF ")) handoff!(line);
    else if (line.startsWith("PYSEND ")) pySend!(line.slice(7));
    else if (line.length) console.log(line); // the Python rows go to the driver as they are
  }
});
const early = exited(child).then((code) => {
  handoff?.("");
  pySend?.("");
  return code;
});
const line = await gotHandoff;
if (line) {
  const [poolH, ringH, ackH] = JSON.parse(line.slice("HANDOFF ".length));
  const pool = Mempool.attach(poolH);
  const ring = Ring.attach(ringH);
  const ack = Ring.attach(ackH);
  pin(1); // the receiver on cpu1, the Python sender pins itself to cpu0 (as the JavaScript S5 cells)
  child.stdin!.write("go\n");
  const samples: number[] = [];
  let bad = 0;
  const t0 = performance.now();
  for (;;) {
    let v = ring.tryDequeue();
    while (v === undefined) v = ring.tryDequeue(); // poll: the consumer is dedicated
    const t = nowNs();
    if (v === 0xffffffff) break;
    const b = pool.block(v);
    const f = new Float64Array(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength / 8); // zero-copy
    samples.push(t - f[0]);
    if (f[f.length - 1] !== f[1]) bad++;
    pool.put(b);
    if (!ack.tryEnqueue(samples.length - 1)) throw new Error("py_ring: the ack ring is full (Python sent ahead)");
    if (performance.now() - t0 > 60_000) break;
  }
  const wall = (performance.now() - t0) / 1000;
  // Python's own share: its time from the stamp to enqueue() returning (interpreter calls).
  const own = await Promise.race([gotPySend, new Promise<string>((r) => setTimeout(() => r(""), 5000))]);
  const ownP50 = own ? (JSON.parse(own) as { p50: number }).p50 : NaN;
  emitLatency(
    {
      bench: "S5",
      variant: "1 MiB handoff",
      transport: "shmkit mempool+ring (numpy)",
      runtime: "python->deno",
      wall_s: wall,
      note: `${samples.length} numpy float64 arrays of 1 MiB in Mempool blocks (each filled once; per message Python ` +
        `writes its number at both ends), Python (cpu0) stamps CLOCK_MONOTONIC, enqueues the block index (spsc ring); ` +
        `Deno (cpu1) polls, views the block zero-copy, reads it, acks on a second ring (Python sends the next block ` +
        `after the ack); Python's own time from its stamp to enqueue() ` +
        `returning: p50 ${Number.isNaN(ownP50) ? "?" : `${(ownP50 / 1000).toFixed(2)} us`}${
          bad ? `; ${bad} payload mismatches` : ""
        }`,
    },
    samples,
    { unit: "us" },
  );
  emit({
    bench: "S5",
    variant: "1 MiB handoff",
    transport: "shmkit mempool+ring (numpy)",
    runtime: "python->deno",
    metric: "GB/s",
    value: (1 << 20) / [...samples].sort((a, b) => a - b)[samples.length >> 1],
    note: "1 MiB / p50 hand-off time (nothing is copied)",
  });
  ring.close();
  ack.close();
  pool.close();
  child.stdin!.write("done\n");
}
const code = await early;
if (code !== 0) {
  console.error(`py_ring: python3 exited ${code}`);
  (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = 1;
}
