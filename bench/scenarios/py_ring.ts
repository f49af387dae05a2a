// shmkit for Python (python/shmkit): a Ring (and a Channel of 8-byte messages) between two Python processes against
// multiprocessing.Queue and multiprocessing.Pipe on small items (S1, the same method as
// peers_python.ts), and a 1 MiB numpy array handed from Python to this Deno process zero-copy
// through a Mempool block and an spsc Ring (S5 "1 MiB handoff": time from Python's stamp, taken
// after the array is written, to Deno's first read of it; Deno polls the ring).
// Runnable alone (inside the CPU lock):
//   flock -w 1800 /tmp/shmkit-cpu.lock node_modules/.bin/deno run -A bench/scenarios/py_ring.ts
// @bench-runtimes deno
// @bench-ids S1 S5
import { spawn } from "node:child_process";
import { emit, emitLatency, exited, QUICK, ROOT } from "../lib.ts";
import { Mempool, Ring } from "../../mod.ts";
import { nowNs } from "../../src/sys.ts";

const child = spawn("python3", [`${ROOT}bench/python/ring_vs_mp.py`, QUICK ? "1" : "0", "handoff"], {
  stdio: ["pipe", "pipe", "inherit"],
});
let buf = "";
let handoff: ((line: string) => void) | undefined;
const gotHandoff = new Promise<string>((resolve) => handoff = resolve);
child.stdout!.on("data", (d: Uint8Array) => {
  buf += new TextDecoder().decode(d);
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.startsWith("HANDOFF ")) handoff!(line);
    else if (line.length) console.log(line); // the Python rows go to the driver as they are
  }
});
const early = exited(child).then((code) => {
  handoff?.("");
  return code;
});
const line = await gotHandoff;
if (line) {
  const [, poolJson, ringJson] = line.match(/^HANDOFF (\{.*\}) (\{.*\})$/)!;
  const pool = Mempool.attach(JSON.parse(poolJson));
  const ring = Ring.attach(JSON.parse(ringJson));
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
    if (performance.now() - t0 > 60_000) break;
  }
  const wall = (performance.now() - t0) / 1000;
  emitLatency(
    {
      bench: "S5",
      variant: "1 MiB handoff",
      transport: "shmkit mempool+ring (numpy)",
      runtime: "python->deno",
      wall_s: wall,
      note: `${samples.length} numpy float64 arrays of 1 MiB in Mempool blocks; Python stamps CLOCK_MONOTONIC after ` +
        `writing, enqueues the block index (spsc ring); Deno polls, views the block zero-copy, reads it${
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
  pool.close();
  child.stdin!.write("done\n");
}
const code = await early;
if (code !== 0) {
  console.error(`py_ring: python3 exited ${code}`);
  (globalThis as unknown as { process: { exitCode: number } }).process.exitCode = 1;
}
