/**
 * A Bun script that shares a Channel (work items) and a SharedArray (results) with Bun.spawn
 * workers by passing their handles in environment variables. Each worker takes ranges from the
 * channel, counts the primes in each, and writes the count into the range's cell of the array.
 *
 *   bun examples/bun_subprocesses.ts [--workers 3] [--ranges 24]
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Channel, type ChannelHandle, SharedArray, type SharedArrayHandle } from "../mod.ts";

interface BunSpawn {
  spawn(
    cmd: string[],
    options: { env: Record<string, string | undefined>; stdout: "inherit"; stderr: "inherit" },
  ): { exited: Promise<number> };
}
const Bun = (globalThis as unknown as { Bun?: BunSpawn }).Bun;
if (!Bun) throw new Error("run this example with Bun: bun examples/bun_subprocesses.ts");

const RANGE = 20_000;

function countPrimes(from: number, to: number): number {
  let n = 0;
  for (let k = Math.max(2, from); k < to; k++) {
    let prime = true;
    for (let d = 2; d * d <= k; d++) {
      if (k % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) n++;
  }
  return n;
}

if (process.env.SHMKIT_WORK) {
  // Worker: attach by handle, take ranges until the "stop" message.
  using work = Channel.attach(JSON.parse(process.env.SHMKIT_WORK) as ChannelHandle);
  using out = SharedArray.attach(JSON.parse(process.env.SHMKIT_RESULTS!) as SharedArrayHandle);
  const cells = out.data as Int32Array;
  let done = 0;
  for (;;) {
    using m = work.recv({ timeout: 60_000 });
    const job = m.json() as { stop?: true; index: number };
    if (job.stop) break;
    cells[job.index] = countPrimes(job.index * RANGE, (job.index + 1) * RANGE);
    done++;
  }
  console.log(`worker ${process.pid}: ${done} ranges`);
} else {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const workers = flag("workers", 3);
  const ranges = flag("ranges", 24);
  using work = Channel.create(`shmkit-example-work-${process.pid}`, { slots: 8, slotSize: 64 });
  using results = SharedArray.zeros(`shmkit-example-results-${process.pid}`, "int32", ranges);
  try {
    const env = {
      ...process.env,
      SHMKIT_WORK: JSON.stringify(work.handle()),
      SHMKIT_RESULTS: JSON.stringify(results.handle()),
    };
    const procs = Array.from(
      { length: workers },
      () =>
        Bun.spawn([process.execPath, fileURLToPath(import.meta.url)], { env, stdout: "inherit", stderr: "inherit" }),
    );
    for (let index = 0; index < ranges; index++) work.send(JSON.stringify({ index }), { timeout: 60_000 });
    for (let w = 0; w < workers; w++) work.send(JSON.stringify({ stop: true }), { timeout: 60_000 });
    const codes = await Promise.all(procs.map((p) => p.exited));
    const total = (results.data as Int32Array).reduce((a, b) => a + b, 0);
    const check = countPrimes(0, ranges * RANGE);
    console.log(
      `primes below ${ranges * RANGE}: ${total} (from ${workers} workers; checked: ${
        check === total ? "ok" : `MISMATCH, expected ${check}`
      })`,
    );
    if (codes.some((c) => c !== 0) || total !== check) process.exitCode = 1;
  } finally {
    work.unlink();
    results.unlink();
  }
}
