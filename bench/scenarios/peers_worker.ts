// Peers: worker postMessage inside one process — Web Worker on Deno and Bun, worker_threads on
// Node (Node has no Web Worker).
// @bench-runtimes deno bun node
// @bench-ids S3 S5
//
// Cells:
//   S3 "64B"          round trip of a 64-byte Uint8Array (structured clone), us p50 / p99
//   S3 "small int"    round trip of a small integer
//   S5 "N MiB copy"       postMessage(u8) of 1 / 16 / 64 MiB (structured clone), worker acks: ms, GB/s
//   S5 "N MiB transfer"   postMessage(u8, [u8.buffer]) (ownership moves), worker transfers it back
// CPU: getrusage of the process (every thread, the worker included).
import { clockNs, cpuSelf, emit, emitLatency, pick, RUNTIME } from "../lib.ts";

type Port = {
  post(msg: unknown, transfer?: Transferable[]): void;
  next(): Promise<unknown>;
  close(): Promise<void>;
};

const g = globalThis as unknown as {
  WorkerGlobalScope?: unknown;
  self?: { onmessage: ((e: { data: unknown }) => void) | null; postMessage(m: unknown, t?: Transferable[]): void };
  Worker?: new (url: string | URL, opts?: { type?: string }) => {
    onmessage: ((e: { data: unknown }) => void) | null;
    postMessage(m: unknown, t?: Transferable[]): void;
    terminate(): void;
  };
};

// The worker side: the same file, loaded with "?worker" (Web Worker) or workerData "worker" (Node).
function reply(msg: unknown, post: (m: unknown, t?: Transferable[]) => void): void {
  const m = msg as { kind: string; data?: unknown };
  if (m.kind === "echo") post(m.data);
  else if (m.kind === "ack") post(1);
  else if (m.kind === "back") post(m.data, [(m.data as Uint8Array).buffer]);
}

function queue(): { push(v: unknown): void; next(): Promise<unknown> } {
  const items: unknown[] = [];
  const waits: Array<(v: unknown) => void> = [];
  return {
    push(v) {
      const w = waits.shift();
      if (w) w(v);
      else items.push(v);
    },
    next() {
      return items.length ? Promise.resolve(items.shift()) : new Promise((r) => waits.push(r));
    },
  };
}

async function startWorker(): Promise<Port> {
  const q = queue();
  if (RUNTIME === "node") {
    const wt = await import("node:worker_threads");
    const w = new wt.Worker(new URL(import.meta.url), { workerData: "worker" });
    w.on("message", (m: unknown) => q.push(m));
    await new Promise<void>((r) => w.once("online", () => r()));
    return {
      post: (m, t) => w.postMessage(m, t as never),
      next: q.next,
      close: async () => void await w.terminate(),
    };
  }
  const w = new g.Worker!(new URL(import.meta.url + "?worker"), { type: "module" });
  w.onmessage = (e) => q.push(e.data);
  return { post: (m, t) => w.postMessage(m, t), next: q.next, close: () => Promise.resolve(w.terminate()) };
}

async function main(): Promise<void> {
  const w = await startWorker();
  if ((await w.next()) !== "ready") throw new Error("peers_worker: the worker did not start");
  // warm the channel
  w.post({ kind: "echo", data: 0 });
  await w.next();

  for (const [variant, data] of [["64B", new Uint8Array(64).fill(7)], ["small int", 42]] as const) {
    const n = pick(5000, 500), warm = pick(500, 50);
    const s = new Float64Array(n);
    const c0 = cpuSelf();
    const w0 = clockNs();
    for (let i = 0; i < warm + n; i++) {
      const t0 = clockNs();
      w.post({ kind: "echo", data });
      await w.next();
      if (i >= warm) s[i - warm] = clockNs() - t0;
    }
    const wall = (clockNs() - w0) / 1e9;
    emitLatency(
      {
        bench: "S3",
        variant,
        transport: "worker postMessage",
        cpu_s: cpuSelf() - c0,
        wall_s: wall,
        note: `${n} samples, worker echoes`,
      },
      s,
      { unit: "us" },
    );
  }

  for (const mib of [1, 16, 64]) {
    for (const mode of ["copy", "transfer"] as const) {
      const reps = pick(mib === 1 ? 30 : mib === 16 ? 5 : 3, mib === 1 ? 5 : 1);
      let block = new Uint8Array(mib << 20).fill(1);
      const times: number[] = [];
      const c0 = cpuSelf();
      const w0 = clockNs();
      for (let r = 0; r < reps; r++) {
        const t0 = clockNs();
        if (mode === "copy") {
          w.post({ kind: "ack", data: block });
          await w.next();
        } else {
          w.post({ kind: "back", data: block }, [block.buffer]);
          block = (await w.next()) as Uint8Array<ArrayBuffer>; // the worker hands the buffer back
        }
        times.push(clockNs() - t0);
      }
      const wall = (clockNs() - w0) / 1e9;
      times.sort((a, b) => a - b);
      const med = times[times.length >> 1];
      const base = {
        bench: "S5",
        variant: `${mib} MiB ${mode}`,
        transport: "worker postMessage",
        cpu_s: cpuSelf() - c0,
        wall_s: wall,
      };
      const note = mode === "copy"
        ? `structured clone to the worker + 1 ack message; median of ${reps}`
        : `transfer to the worker and back (a round trip of ownership, no copy); median of ${reps}`;
      emit({ ...base, metric: "ms", value: med / 1e6, note });
      emit({ ...base, metric: "GB/s", value: (mib << 20) / med, note });
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
  self.onmessage = (e) => reply(e.data, (m, t) => self.postMessage(m, t));
  self.postMessage("ready"); // messages posted before onmessage was set may be lost (Bun): handshake
} else if (RUNTIME === "node" && !(await import("node:worker_threads")).isMainThread) {
  const { parentPort } = await import("node:worker_threads");
  parentPort!.on("message", (m: unknown) => reply(m, (x, t) => parentPort!.postMessage(x, t as never)));
  parentPort!.postMessage("ready");
} else {
  await main();
}
