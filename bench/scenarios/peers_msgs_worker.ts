// Peers of S2 inside one process: a worker thread (Web Worker on Deno and Bun, worker_threads on
// Node) receives the same messages as bench/scenarios/s2_channel_msgs.ts, two ways each:
//   "worker postMessage (per msg)"  one postMessage per message
//   "worker postMessage (batched)"  256 messages per postMessage (one 16 KiB Uint8Array, or an
//                                   array of 256 tick objects)
// variants "64 B" (a fresh 64-byte Uint8Array, structured clone, seq checked) and "JSON tick" (the
// tick object itself, structured clone, checksum checked). The main thread posts in windows of
// 4096 messages and waits for the worker's count before the next window (bounded queue).
// CPU: getrusage of the process (both threads).
// @bench-runtimes deno bun node
// @bench-ids S2
import { checkTick, makeTick, type Tick } from "../../demo_wire.ts";
import { clockNs, cpuSelf, emit, pick, RUNTIME } from "../lib.ts";

const BATCH = 256;
const WINDOW = 4096;

type Post = (m: unknown) => void;
const g = globalThis as unknown as {
  WorkerGlobalScope?: unknown;
  self?: { onmessage: ((e: { data: unknown }) => void) | null; postMessage(m: unknown): void };
  Worker?: new (url: string | URL, opts?: { type?: string }) => {
    onmessage: ((e: { data: unknown }) => void) | null;
    postMessage(m: unknown): void;
    terminate(): void;
  };
};

// Worker side: counts messages, checks each, answers every "sync" with the count so far.
function workerSide(post: Post): (m: unknown) => void {
  let count = 0;
  let bad = "";
  const one = (x: unknown): void => {
    if (x instanceof Uint8Array) {
      const seq = (x[0] | (x[1] << 8) | (x[2] << 16) | (x[3] << 24)) >>> 0;
      if (x.length !== 64 || seq !== count) bad ||= `message ${count}: seq ${seq}`;
    } else if (!checkTick(x as Tick) || (x as Tick).seq !== (count & 4095)) bad ||= `tick ${count} is wrong`;
    count++;
  };
  return (m) => {
    if (m === "sync") return post(bad ? `bad ${bad}` : count);
    if (m === "reset") return void (count = 0, bad = "");
    if (Array.isArray(m)) { for (const x of m) one(x); }
    else if (m instanceof Uint8Array && m.length > 64) {
      for (let off = 0; off < m.length; off += 64) one(m.subarray(off, off + 64));
    } else one(m);
  };
}

async function startWorker(): Promise<{ post: Post; next(): Promise<unknown>; close(): Promise<void> }> {
  const items: unknown[] = [];
  const waits: Array<(v: unknown) => void> = [];
  const push = (v: unknown) => {
    const w = waits.shift();
    if (w) w(v);
    else items.push(v);
  };
  const next = () => items.length ? Promise.resolve(items.shift()) : new Promise<unknown>((r) => waits.push(r));
  if (RUNTIME === "node") {
    const wt = await import("node:worker_threads");
    const w = new wt.Worker(new URL(import.meta.url), { workerData: "worker" });
    w.on("message", push);
    return { post: (m) => w.postMessage(m), next, close: async () => void await w.terminate() };
  }
  const w = new g.Worker!(new URL(import.meta.url + "?worker"), { type: "module" });
  w.onmessage = (e) => push(e.data);
  return { post: (m) => w.postMessage(m), next, close: () => Promise.resolve(w.terminate()) };
}

async function main(): Promise<void> {
  const w = await startWorker();
  if ((await w.next()) !== "ready") throw new Error("peers_msgs_worker: the worker did not start");
  const windowS = pick(1.5, 0.3);
  const ticks = Array.from({ length: 4096 }, (_, i) => JSON.parse(makeTick(i, i)) as Tick);
  for (const kind of ["64", "json"] as const) {
    for (const batched of [false, true]) {
      w.post("reset");
      const c0 = cpuSelf();
      const t0 = clockNs();
      const end = t0 + windowS * 1e9;
      let seq = 0;
      while (clockNs() < end) {
        for (let k = 0; k < WINDOW; k += batched ? BATCH : 1) {
          if (kind === "64") {
            if (batched) {
              const b = new Uint8Array(64 * BATCH);
              const dv = new DataView(b.buffer);
              for (let j = 0; j < BATCH; j++) dv.setUint32(64 * j, seq++, true);
              w.post(b);
            } else {
              const b = new Uint8Array(64);
              new DataView(b.buffer).setUint32(0, seq++, true);
              w.post(b);
            }
          } else if (batched) {
            const a = new Array(BATCH);
            for (let j = 0; j < BATCH; j++) a[j] = ticks[seq++ & 4095];
            w.post(a);
          } else {
            w.post(ticks[seq++ & 4095]);
          }
        }
        w.post("sync");
        const got = await w.next();
        if (typeof got !== "number") throw new Error(`peers_msgs_worker: ${String(got)}`);
      }
      const wall = (clockNs() - t0) / 1e9;
      emit({
        bench: "S2",
        variant: kind === "64" ? "64 B" : "JSON tick",
        transport: batched ? "worker postMessage (batched)" : "worker postMessage (per msg)",
        metric: "msgs/s",
        value: seq / wall,
        cpu_s: cpuSelf() - c0,
        wall_s: wall,
        floor_variant: "none",
        note: `${batched ? `${BATCH} messages per postMessage` : "one postMessage per message"}, structured clone, ${
          kind === "64" ? "seq" : "tick checksum"
        } checked in the worker; windows of ${WINDOW}`,
      });
    }
  }
  await w.close();
}

// Bun drops the "?worker" query from import.meta.url and has no WorkerGlobalScope: ask Bun.
const isWebWorker = RUNTIME === "bun"
  ? !(globalThis as unknown as { Bun: { isMainThread: boolean } }).Bun.isMainThread
  : typeof g.WorkerGlobalScope === "function" && globalThis instanceof (g.WorkerGlobalScope as new () => unknown);
if (isWebWorker) {
  const self = g.self!;
  const on = workerSide((m) => self.postMessage(m));
  self.onmessage = (e) => on(e.data);
  self.postMessage("ready"); // messages posted before onmessage was set may be lost (Bun): handshake
} else if (RUNTIME === "node" && !(await import("node:worker_threads")).isMainThread) {
  const { parentPort } = await import("node:worker_threads");
  const on = workerSide((m) => parentPort!.postMessage(m));
  parentPort!.on("message", on);
  parentPort!.postMessage("ready");
} else {
  await main();
}
