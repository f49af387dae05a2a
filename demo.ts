/**
 * `make demo`: one parent process starts Bun, Deno and Node children and streams messages between
 * them through shmkit Channels (1 MiB frames written in place with a checksum each, a burst of
 * small JSON messages, and raw 64-byte messages), then runs the same workloads over plain pipes
 * (one write per message), verifies every checksum and prints a table: messages/s, GB/s and
 * one-way latency p50/p99 side by side. Under the JSON row it prints each side's own JSON work with no
 * transport (measured by the same children before they run): what a transport that cost nothing would reach.
 *
 * Run: `make demo` (or `deno run --allow-all demo.ts` after `make lib node`). Flags:
 * `--quick` (smaller counts, for tests). Ctrl-C stops the children and removes the demo's segments.
 *
 * @module
 */
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import { Worker } from "node:worker_threads";
import { Channel } from "./mod.ts";
import { checkFrame, FRAME_SIZE, type FrameCheck, nowNs, type RunStats, Tally } from "./demo_wire.ts";

type Runtime = "deno" | "bun" | "node";
type Workload = "frames" | "json" | "raw";

const here = new URL(".", import.meta.url).pathname;
const ROOT = here.includes("/build/node/") ? here.slice(0, here.indexOf("/build/node/") + 1) : here;
const quick = process.argv.includes("--quick");
const g = globalThis as unknown as { Deno?: unknown; Bun?: unknown };
const PARENT: Runtime = g.Deno !== undefined ? "deno" : g.Bun !== undefined ? "bun" : "node";

function childCommand(rt: Runtime): string[] {
  switch (rt) {
    case "deno":
      return [`${ROOT}node_modules/.bin/deno`, "run", "--allow-all", "--quiet", "--no-check", `${ROOT}demo_child.ts`];
    case "bun":
      return [`${ROOT}node_modules/.bin/bun`, `${ROOT}demo_child.ts`];
    case "node":
      return ["node", `${ROOT}build/node/demo_child.js`];
  }
}

interface Run {
  workload: Workload;
  from: Runtime;
  to: Runtime;
  count: number;
  paced: number;
  /** Also run the in-process worker postMessage baseline (frames only). */
  worker?: boolean;
}

const RUNS: Run[] = [
  { workload: "frames", from: "bun", to: "deno", count: quick ? 32 : 512, paced: quick ? 20 : 200, worker: true },
  { workload: "json", from: "node", to: "bun", count: quick ? 2000 : 1_000_000, paced: quick ? 50 : 400 },
  { workload: "raw", from: "deno", to: "bun", count: quick ? 5000 : 1_000_000, paced: quick ? 50 : 400 },
  { workload: "frames", from: "deno", to: "node", count: quick ? 32 : 512, paced: quick ? 20 : 200 },
];

// Everything to clean up on exit or Ctrl-C.
const children = new Set<ChildProcess>();
const workers = new Set<Worker>();
const channels = new Set<Channel>();
let stopping = false;

// Children started as a process group of their own (the `sh -c "a | b"` of a pipe run): killing
// only `sh` would leave a and b running with the pipes open, and the run's "close" would never come.
const groups = new WeakSet<ChildProcess>();

/** How long children may take to exit after the receiver reported its result. */
const LINGER_MS = 10_000;

function kill(c: ChildProcess): void {
  if (c.exitCode !== null || c.signalCode !== null) return;
  if (groups.has(c) && c.pid) {
    try {
      process.kill(-c.pid, "SIGKILL");
      return;
    } catch { /* the group is gone: kill the child alone */ }
  }
  c.kill("SIGKILL");
}

function cleanup(): void {
  for (const c of children) kill(c);
  children.clear();
  for (const w of workers) void w.terminate();
  workers.clear();
  for (const ch of channels) {
    try {
      ch.unlink();
    } catch { /* already gone */ }
    ch.close();
  }
  channels.clear();
}

process.on("SIGINT", () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write("\ninterrupted: stopping the children and removing the demo's segments\n");
  cleanup();
  process.exit(130);
});

const tty = Boolean(process.stdout.isTTY);
function progress(text: string): void {
  if (tty) process.stdout.write(`\r\x1b[2K${text}`);
}

function start(cmd: string[], label: string, group = false): ChildProcess {
  const c = spawn(cmd[0], cmd.slice(1), { stdio: ["pipe", "pipe", "pipe"], detached: group });
  if (group) groups.add(c);
  children.add(c);
  c.on("exit", () => children.delete(c));
  c.on("error", (e) => process.stderr.write(`${label}: ${e.message}\n`));
  return c;
}

/** Calls `onLine` for every line `stream` writes. */
function lines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let rest = "";
  stream?.on("data", (d: Uint8Array | string) => {
    rest += typeof d === "string" ? d : new TextDecoder().decode(d);
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  });
}

function exited(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode);
  return new Promise((r) => c.on("close", (code) => r(code)));
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs one workload over one transport; resolves with the receiver's statistics. */
/** A run's receiver statistics, with each side's JSON floor (ticks/s; JSON runs only, demo_child.ts jsonFloor). */
interface RunResult extends RunStats {
  floorSend?: number;
  floorRecv?: number;
}

async function runOne(run: Run, transport: "chan" | "pipe"): Promise<RunResult> {
  const label = `${run.workload} ${run.from}->${run.to} ${transport === "chan" ? "channel" : "pipe"}`;
  const total = run.count + run.paced;
  const args = [run.workload, String(run.count), String(run.paced)];
  let stderr = "";
  let result: RunStats | undefined;
  const readyNeeded = new Set(["ready send", "ready recv"]);
  let goResolve!: () => void;
  const bothReady = new Promise<void>((r) => goResolve = r);
  const floors: { send?: number; recv?: number } = {};
  const onErr = (line: string): void => {
    const f = /^floor (send|recv) ([0-9.e+]+)$/.exec(line.trim());
    if (f) floors[f[1] as "send" | "recv"] = Number(f[2]);
    else if (readyNeeded.delete(line.trim())) {
      if (readyNeeded.size === 0) goResolve();
    } else stderr += line + "\n";
  };
  const procs: ChildProcess[] = [];
  // Node can deadlock in its own exit (nodejs/node#54918: the main thread joins a V8 compile thread
  // that waits for a GC; seen once in CI, a Node receiver that had printed its result). Once the
  // receiver has reported, children still running LINGER_MS later are killed and the run counts.
  let linger: ReturnType<typeof setTimeout> | undefined;
  let lingered = false;
  const onOut = (line: string): void => {
    if (line.startsWith("P ")) progress(`${label}: ${line.slice(2)}/${total} messages`);
    else if (line.startsWith("R ")) {
      result = JSON.parse(line.slice(2)) as RunStats;
      linger ??= setTimeout(() => {
        lingered = procs.some((p) => p.exitCode === null && p.signalCode === null);
        procs.forEach(kill);
      }, LINGER_MS);
    }
  };
  let sender: ChildProcess;
  let ch: Channel | undefined;
  try {
    if (transport === "chan") {
      const opts = run.workload === "frames"
        ? { slots: 16, slotSize: FRAME_SIZE }
        : { slots: 1024, slotSize: run.workload === "raw" ? 64 : 256 };
      ch = Channel.create(`shmkit-demo-${process.pid}-${run.workload}-${run.from}-${run.to}`, {
        ...opts,
        mode: "spsc-ordered", // one sender and one receiver: the fastest mode (docs/layout/channel.md)
      });
      channels.add(ch);
      const h = JSON.stringify(ch.handle());
      const recv = start([...childCommand(run.to), "recv", "chan", ...args, h], label);
      sender = start([...childCommand(run.from), "send", "chan", ...args, h], label);
      procs.push(recv, sender);
      lines(recv.stdout, onOut);
      lines(recv.stderr, onErr);
      lines(sender.stderr, onErr);
      sender.stdout?.resume();
    } else {
      const a = [...childCommand(run.from), "send", "pipe", ...args].map(quote).join(" ");
      const b = [...childCommand(run.to), "recv", "pipe", ...args].map(quote).join(" ");
      sender = start(["sh", "-c", `${a} | ${b}`], label, true);
      procs.push(sender);
      lines(sender.stdout, onOut);
      lines(sender.stderr, onErr);
    }
    const timer = setTimeout(() => procs.forEach(kill), 60_000);
    const died = Promise.all(procs.map(exited));
    await Promise.race([bothReady, died]);
    sender.stdin?.write("go\n");
    const codes = await died;
    clearTimeout(timer);
    clearTimeout(linger);
    if (!result || (!lingered && codes.some((c) => c !== 0))) {
      throw new Error(`${label}: a child failed (exit codes ${codes.join(", ")})\n${stderr}`);
    }
    if (lingered) {
      process.stderr.write(
        `${label}: a child was still running ${
          LINGER_MS / 1000
        } s after the result; killed it (a runtime stuck in its exit, e.g. nodejs/node#54918)\n`,
      );
    }
    progress("");
    return { ...result, floorSend: floors.send, floorRecv: floors.recv };
  } finally {
    if (ch) {
      channels.delete(ch);
      ch.unlink();
      ch.close();
    }
  }
}

/**
 * The worker baseline: a worker thread of this process transfers fresh 1 MiB frames to the main
 * thread with postMessage (zero-copy transfer, the best case), acknowledged in windows.
 */
async function runWorker(run: Run): Promise<RunStats> {
  const label = `frames ${PARENT} worker->main postMessage`;
  const total = run.count + run.paced;
  const file = PARENT === "node" ? `${ROOT}build/node/demo_child.js` : `${ROOT}demo_child.ts`;
  const w = new Worker(file, {
    workerData: { args: ["send", "worker", "frames", String(run.count), String(run.paced)] },
  });
  workers.add(w);
  const t = new Tally(run.count, total, (n) => progress(`${label}: ${n}/${total} messages`));
  const fc: FrameCheck = { seq: 0, stamp: 0, ok: false };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: timed out`)), 60_000);
      w.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      w.on("message", (f: Uint8Array) => {
        const now = nowNs();
        checkFrame(f, fc);
        t.add(fc.seq, fc.stamp, now, f.length, fc.ok);
        w.postMessage(1); // one more credit
        if (t.n === total) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    workers.delete(w);
    await w.terminate();
  }
  progress("");
  return t.result();
}

const WORKLOAD_NAMES: Record<Workload, string> = { frames: "1 MiB frames", json: "JSON ticks", raw: "raw 64 B" };

function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(0);
}

function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return "-";
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  return `${(ns / 1e3).toFixed(1)} us`;
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log("shmkit demo: Bun, Deno and Node processes passing messages through shared memory");
  console.log(`  1 MiB frames (written in place via Channel.loan, read in place, checksummed), ~100-byte`);
  console.log(`  JSON ticks and raw 64-byte messages (Channel.sendBatch / recvBatch, read in place);`);
  console.log(`  the same workloads over OS pipes (one write per message), and frames between threads with`);
  console.log(`  worker postMessage (transfer).`);
  console.log(`  Latency: one-way, of messages paced a few ms apart.\n`);
  const rows: string[][] = [];
  const ratios: string[] = [];
  let allOk = true;
  for (const run of RUNS) {
    const stats: Record<string, RunResult> = {};
    for (const transport of ["chan", "pipe"] as const) {
      const s = await runOne(run, transport);
      stats[transport] = s;
      const ok = s.bad === 0;
      allOk &&= ok;
      const rate = s.count / s.seconds;
      rows.push([
        WORKLOAD_NAMES[run.workload],
        `${run.from} -> ${run.to}`,
        transport === "chan" ? "shmkit Channel" : "pipe",
        fmtRate(rate),
        (s.bytes / s.seconds / 1e9).toFixed(2),
        fmtNs(s.p50),
        fmtNs(s.p99),
        ok ? `${s.checked} ok` : `${s.bad} BAD of ${s.checked}`,
      ]);
      if (!tty) console.log(`  done: ${rows.at(-1)!.join(" | ")}`);
    }
    if (run.worker) {
      const s = await runWorker(run);
      allOk &&= s.bad === 0;
      rows.push([
        "1 MiB frames",
        `${PARENT} worker -> main`,
        "worker postMessage",
        fmtRate(s.count / s.seconds),
        (s.bytes / s.seconds / 1e9).toFixed(2),
        fmtNs(s.p50),
        fmtNs(s.p99),
        s.bad === 0 ? `${s.checked} ok` : `${s.bad} BAD of ${s.checked}`,
      ]);
      if (!tty) console.log(`  done: ${rows.at(-1)!.join(" | ")}`);
    }
    const c = stats.chan, p = stats.pipe;
    // Latency: "N x shorter" when the channel's p50 is below the pipe's, else "N x longer".
    const lat = c.p50 <= p.p50 ? `${(p.p50 / c.p50).toFixed(1)} x shorter` : `${(c.p50 / p.p50).toFixed(1)} x longer`;
    const pipeRate = p.count / p.seconds;
    ratios.push(
      `${WORKLOAD_NAMES[run.workload].padEnd(12)} ${run.from}->${run.to}: channel ${
        ((c.count / c.seconds) / pipeRate).toFixed(1)
      } x the pipe's throughput, p50 latency ${lat}`,
    );
    // JSON with no transport, measured by the same children just before they ran (the best of
    // the chan and pipe runs' measurements): no transport delivers ticks faster than the slower side.
    const fs = Math.max(c.floorSend ?? 0, p.floorSend ?? 0), fr = Math.max(c.floorRecv ?? 0, p.floorRecv ?? 0);
    if (fs > 0 && fr > 0) {
      ratios.push(
        `${"".padEnd(12)} JSON alone, no transport: ${run.from} builds + stringifies ${
          fmtRate(fs)
        } ticks/s, ${run.to} ` +
          `decodes + parses + checks ${fmtRate(fr)}/s: a transport that cost nothing would be ${
            (Math.min(fs, fr) / pipeRate).toFixed(1)
          } x the pipe`,
      );
    }
  }
  const head = ["workload", "route", "transport", "msgs/s", "GB/s", "p50", "p99", "checksums"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i >= 3 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
  console.log("");
  for (const r of ratios) console.log(r);
  console.log(
    `\n${allOk ? "every checksum verified" : "CHECKSUM FAILURES: see the table"}; ${
      ((Date.now() - started) / 1000).toFixed(1)
    } s`,
  );
  if (!allOk) process.exitCode = 1;
}

try {
  await main();
} catch (e) {
  process.stderr.write(`\ndemo failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
}
