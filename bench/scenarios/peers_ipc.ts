// Peers: the runtime's built-in parent/child IPC channel — Node `child_process.fork`, Bun
// `Bun.spawn({ ipc })`, Deno `node:child_process.fork` — with JSON and, where the runtime has it,
// "advanced" (structured clone) serialization.
// @bench-runtimes deno bun node
// @bench-ids S1 S3 S5
//
// Cells:
//   S3 "64B"          round trip: a 64-char string (json) or a 64-byte Uint8Array (advanced), us p50/p99
//   S1 "batch=1"      one-way small integers sent back to back, child counts and acks the last, items/s
//   S5 "N MiB"        one block (1 MiB string in json; 1/16/64 MiB Uint8Array in advanced), child acks: ms, GB/s
// CPU: this process plus the child (from /proc, counted from when the child is ready).
import { fork } from "node:child_process";
import { args, clockNs, cpuSelf, emit, emitLatency, exited, pick, procCpu, ROOT, RUNTIME } from "../lib.ts";

type Ser = "json" | "advanced";
interface Chan {
  pid: number;
  send(m: unknown): void;
  next(): Promise<unknown>;
  close(): Promise<void>;
}

const g = globalThis as unknown as {
  process: {
    send?: (m: unknown) => void;
    on(ev: string, f: (m: unknown) => void): void;
    disconnect?: () => void;
    exit(c: number): void;
  };
  Bun?: {
    spawn(o: {
      cmd: string[];
      ipc(m: unknown): void;
      serialization?: Ser;
      stdio?: string[];
    }): { pid: number; send(m: unknown): void; kill(): void; exited: Promise<number>; disconnect?: () => void };
  };
};

function queue(): { push(v: unknown): void; next(): Promise<unknown> } {
  const items: unknown[] = [];
  const waits: Array<(v: unknown) => void> = [];
  return {
    push(v) {
      const w = waits.shift();
      if (w) w(v);
      else items.push(v);
    },
    next: () => items.length ? Promise.resolve(items.shift()) : new Promise((r) => waits.push(r)),
  };
}

async function start(ser: Ser): Promise<Chan> {
  const q = queue();
  let ch: Chan;
  if (RUNTIME === "bun") {
    const p = g.Bun!.spawn({
      cmd: [`${ROOT}node_modules/.bin/bun`, `${ROOT}bench/scenarios/peers_ipc.ts`, "child"],
      ipc: (m) => q.push(m),
      serialization: ser,
      stdio: ["ignore", "inherit", "inherit"],
    });
    ch = {
      pid: p.pid,
      send: (m) => p.send(m),
      next: q.next,
      close: async () => {
        p.send({ k: "q" });
        await p.exited;
      },
    };
  } else {
    const script = RUNTIME === "node"
      ? `${ROOT}build/node/bench/scenarios/peers_ipc.js`
      : `${ROOT}bench/scenarios/peers_ipc.ts`;
    const c = fork(script, ["child"], { serialization: ser, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    c.on("message", (m: unknown) => q.push(m));
    ch = {
      pid: c.pid!,
      send: (m) => c.send(m as never),
      next: q.next,
      close: async () => {
        c.send({ k: "q" });
        await exited(c);
      },
    };
  }
  ch.send({ k: "e", d: 0 });
  await ch.next(); // ready
  return ch;
}

function child(): void {
  let count = 0;
  g.process.on("message", (m: unknown) => {
    const msg = m as { k: string; d?: unknown; n?: number };
    if (msg.k === "e") g.process.send!(msg.d);
    else if (msg.k === "a") g.process.send!(1);
    else if (msg.k === "c") {
      if (++count === msg.n) {
        count = 0;
        g.process.send!(1);
      }
    } else if (msg.k === "q") {
      g.process.disconnect?.();
      g.process.exit(0);
    }
  });
}

async function cells(ser: Ser): Promise<void> {
  let ch: Chan;
  try {
    ch = await start(ser);
  } catch (e) {
    console.error(`peers_ipc: ${RUNTIME} ${ser} IPC is not available: ${e}`);
    return;
  }
  const transport = `child IPC (${ser})`;
  // S3: round trip
  {
    const data = ser === "json" ? "x".repeat(64) : new Uint8Array(64).fill(7);
    const n = pick(3000, 300), warm = pick(300, 50);
    const s = new Float64Array(n);
    const cc0 = procCpu(ch.pid), c0 = cpuSelf(), w0 = clockNs();
    for (let i = 0; i < warm + n; i++) {
      const t0 = clockNs();
      ch.send({ k: "e", d: data });
      await ch.next();
      if (i >= warm) s[i - warm] = clockNs() - t0;
    }
    const wall = (clockNs() - w0) / 1e9;
    const cpu = cpuSelf() - c0 + procCpu(ch.pid) - cc0;
    emitLatency(
      { bench: "S3", variant: "64B", transport, cpu_s: cpu, wall_s: wall, note: `${n} samples, child echoes` },
      s,
      { unit: "us" },
    );
  }
  // S1: small items back to back
  {
    const n = pick(50_000, 5_000);
    const cc0 = procCpu(ch.pid), c0 = cpuSelf(), w0 = clockNs();
    for (let i = 0; i < n; i++) ch.send({ k: "c", n, d: i });
    await ch.next();
    const wall = (clockNs() - w0) / 1e9;
    const cpu = cpuSelf() - c0 + procCpu(ch.pid) - cc0;
    emit({
      bench: "S1",
      variant: "batch=1",
      transport,
      metric: "items/s",
      value: n / wall,
      cpu_s: cpu,
      wall_s: wall,
      note: `${n} messages {k, n, d: i} sent without waiting; child acks the last`,
    });
  }
  // S5: blocks
  for (const mib of ser === "json" ? [1] : [1, 16, 64]) {
    const size = mib << 20;
    const data = ser === "json" ? "x".repeat(size) : new Uint8Array(size).fill(1);
    const reps = pick(mib === 1 ? 20 : 3, mib === 1 ? 3 : 1);
    const times: number[] = [];
    const cc0 = procCpu(ch.pid), c0 = cpuSelf(), w0 = clockNs();
    for (let r = 0; r < reps; r++) {
      const t0 = clockNs();
      ch.send({ k: "a", d: data });
      await ch.next();
      times.push(clockNs() - t0);
    }
    const wall = (clockNs() - w0) / 1e9;
    const cpu = cpuSelf() - c0 + procCpu(ch.pid) - cc0;
    times.sort((a, b) => a - b);
    const med = times[times.length >> 1];
    const base = { bench: "S5", variant: `${mib} MiB`, transport, cpu_s: cpu, wall_s: wall };
    const note = `${ser === "json" ? "1 MiB string" : "Uint8Array"} to the child + 1 ack message; median of ${reps}`;
    emit({ ...base, metric: "ms", value: med / 1e6, note });
    emit({ ...base, metric: "GB/s", value: size / med, note });
  }
  await ch.close();
}

if (args()[0] === "child") {
  child();
} else {
  for (const ser of ["json", "advanced"] as Ser[]) await cells(ser);
}
