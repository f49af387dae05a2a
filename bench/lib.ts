/**
 * Helpers shared by every benchmark scenario (bench/scenarios/*.ts), on Deno, Bun and Node:
 * the JSON-line output of bench/FORMAT.md, CPU time of this process and of child processes,
 * pinning, clocks, percentiles, and spawning a script in a runtime.
 *
 * Only `node:` modules and `../src/sys.ts` are used, so the file runs unchanged in all three
 * runtimes (Node runs the tsc output under build/node/bench/).
 *
 * @module
 */
import { type ChildProcess, spawn, type SpawnOptions, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import type { Readable } from "node:stream";
import { sys } from "../src/sys.ts";

import { ROOT, RUNTIME, type Runtime, runtimeCommand } from "../tests/processes.ts";

export { ROOT, RUNTIME, type Runtime, runtimeCommand } from "../tests/processes.ts";

const g = globalThis as unknown as {
  Deno?: { version?: { deno?: string }; args: string[] };
  Bun?: { version: string };
  process: { argv: string[]; env: Record<string, string | undefined>; pid: number; versions: Record<string, string> };
};

/** The runtime's version string, e.g. "deno 2.9.6". */
export const RUNTIME_VERSION: string = RUNTIME === "deno"
  ? `deno ${g.Deno!.version!.deno}`
  : RUNTIME === "bun"
  ? `bun ${g.Bun!.version}`
  : `node ${g.process.versions.node}`;

/** Command-line arguments after the script. */
export function args(): string[] {
  return g.Deno?.args ?? g.process.argv.slice(2);
}

/** An environment variable, or undefined. */
export function env(name: string): string | undefined {
  try {
    return g.process.env[name];
  } catch {
    return undefined;
  }
}

/** True for a short smoke run (`SHMKIT_BENCH_QUICK=1`): scenarios shrink their sample counts. */
export const QUICK: boolean = !!env("SHMKIT_BENCH_QUICK") && env("SHMKIT_BENCH_QUICK") !== "0";

/** Picks the full or the quick value. */
export function pick<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}

// ---------------------------------------------------------------------------------------------
// Output

/** One result line (bench/FORMAT.md). */
export interface Row {
  bench: string;
  variant: string;
  transport: string;
  /** Defaults to the runtime running this script. */
  runtime?: string;
  metric: string;
  value: number;
  /** user+sys CPU seconds of every process of the cell. */
  cpu_s?: number;
  wall_s?: number;
  note?: string;
  /** Compare with this C floor variant instead of the one matched by name. */
  floor_variant?: string;
  /** Compare with peers of this variant instead of the ones matched by name. */
  peer_variant?: string;
}

/** Prints one JSON result line on stdout. Non-finite values are dropped with a note on stderr. */
export function emit(row: Row): void {
  if (!Number.isFinite(row.value)) {
    console.error(`bench: dropped non-finite value for ${row.bench} ${row.variant} ${row.metric}`);
    return;
  }
  const out: Row = { ...row, runtime: row.runtime ?? RUNTIME };
  if (out.cpu_s !== undefined) out.cpu_s = Math.round(out.cpu_s * 1e4) / 1e4;
  if (out.wall_s !== undefined) out.wall_s = Math.round(out.wall_s * 1e4) / 1e4;
  // bench first: the driver keys on lines that start with {"bench":
  const { bench, ...rest } = out;
  console.log(JSON.stringify({ bench, ...rest }));
}

/**
 * The VM's cross-core phase at the start of a job: the C floor's spin round trip between CPU0 and
 * CPU1 (`build/bench/floor PROBE`, 30 000 round trips, a few tens of ms), emitted under `bench` as
 * the transport "phase probe (C spin RTT)". On this VM the cross-core latency shifts between
 * phases lasting minutes and every cross-process cell moves with it (bench/README.md); the probe
 * shows which phase each job's cells ran in. Emits nothing when the floor binary is missing.
 */
export function phaseProbe(bench: string): void {
  const r = spawnSync(`${ROOT}build/bench/floor`, ["PROBE"], { encoding: "utf8", timeout: 20_000 });
  if (r.status !== 0 || typeof r.stdout !== "string") return;
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith('{"bench":"S3"') || !line.includes('"metric":"ns p50"')) continue;
    const d = JSON.parse(line) as { value: number };
    emit({
      bench,
      variant: "cross-core phase",
      transport: "phase probe (C spin RTT)",
      metric: "ns p50",
      value: d.value,
      note: "build/bench/floor PROBE at the start of this job: busy-poll round trip cpu0 <-> cpu1, 30 000 samples",
    });
  }
}

/** The transport of a C floor measured inside a JavaScript job ({@linkcode sameJobFloor}). */
export const JOB_FLOOR = "C floor (same job)";

/**
 * Runs a C floor program (`build/bench/<prog>`, SHMKIT_BENCH_QUICK=1: 0.2 s per case) inside this
 * job and re-emits its rows for `bench` as transport {@linkcode JOB_FLOOR} under this job's
 * runtime. The driver compares this job's cells with it first (bench/run.ts `floorFor`): the
 * VM's cross-core phase changes over minutes (bench/README.md Methodology), so the floor job run
 * once, minutes away, can sit in the other phase (at 22:35 the log floor ran fast, 111 M/s, while
 * every S10 job ran slow). Jobs call it before and after their cells; the driver compares their
 * cells with the best of those values.
 * Emits nothing when the program is missing (the C floor job's row is used then).
 */
export function sameJobFloor(bench: string, prog: string, args: string[] = []): void {
  const r = spawnSync(`${ROOT}build/bench/${prog}`, args, {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, SHMKIT_BENCH_QUICK: "1" },
  });
  if (r.status !== 0 || typeof r.stdout !== "string") return;
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith(`{"bench":"${bench}"`)) continue;
    const d = JSON.parse(line) as Row & { transport: string };
    if (d.transport !== "C floor") continue;
    emit({
      ...d,
      transport: JOB_FLOOR,
      runtime: RUNTIME,
      note: `${prog} run inside this job (0.2 s per case); ${d.note ?? ""}`,
    });
  }
}

/** Emits p50 / p99 (and p99.9 when asked) of latency samples in `unit` ("ns" | "us" | "ms"). */
export function emitLatency(
  base: Omit<Row, "metric" | "value">,
  samplesNs: Float64Array | number[],
  opts: { unit?: "ns" | "us" | "ms"; p999?: boolean } = {},
): void {
  const unit = opts.unit ?? "ns";
  const div = unit === "ns" ? 1 : unit === "us" ? 1e3 : 1e6;
  const s = summarize(samplesNs);
  emit({ ...base, metric: `${unit} p50`, value: s.p50 / div });
  emit({ ...base, metric: `${unit} p99`, value: s.p99 / div });
  if (opts.p999) emit({ ...base, metric: `${unit} p99.9`, value: s.p999 / div });
}

// ---------------------------------------------------------------------------------------------
// CPU time, pinning, clocks

const ru = new Float64Array(4);

/** user+sys CPU seconds of this whole process (every thread, live or exited), from getrusage. */
export function cpuSelf(): number {
  if (sys.shmkit_rusage(ru) < 0) return procCpu(g.process.pid);
  return ru[0] + ru[1];
}

/** Voluntary and involuntary context switches of this process so far. */
export function ctxSwitches(): { voluntary: number; involuntary: number } {
  sys.shmkit_rusage(ru);
  return { voluntary: ru[2], involuntary: ru[3] };
}

/**
 * CPU seconds used so far by a live process (all its live threads), in nanosecond resolution from
 * /proc/<pid>/task/<tid>/schedstat; falls back to /proc/<pid>/stat (clock ticks). Read it before
 * the process exits: a reaped process has no /proc entry (returns 0).
 */
export function procCpu(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch { /* thread exited */ }
    }
    if (ns > 0) return ns / 1e9;
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

const PARENT_PID = process.ppid;
let orphanTick = 0;

/**
 * True once the parent of this bench child has exited (it was killed, or timed out). A child spins
 * until its parent sets a stop flag, so without this check a killed parent leaves it spinning on a
 * CPU forever and every later cell measures against it. `process.ppid` is a getppid call (~1.5 us
 * here), so only every 65 536th call asks (a counter otherwise): a few ms apart even when called per
 * message, and an orphan exits within seconds.
 */
export function orphaned(): boolean {
  if ((++orphanTick & 0xffff) !== 0) return false;
  return process.ppid !== PARENT_PID;
}

/** Pins the calling thread (the JS main thread) to one CPU. Returns false if that failed. */
export function pin(cpu: number): boolean {
  return sys.shmkit_pin_cpu(cpu) === 0;
}

/** CLOCK_MONOTONIC in ns: the same clock in every process (for one-way latencies across processes). */
export function nowNs(): number {
  return sys.shmkit_now_ns();
}

const perf = globalThis.performance;
/**
 * The cheapest interval clock of this runtime, in ns (not comparable across processes): Deno's
 * performance.now() costs ~110 ns here, so Deno uses the FFI clock (~25 ns); Bun and Node use
 * performance.now() (3 ns / 55 ns; koffi's FFI clock costs ~85 ns).
 */
export const clockNs: () => number = RUNTIME === "deno" ? () => sys.shmkit_now_ns() : () => perf.now() * 1e6;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** Order statistics of a sample set (same unit as the input). */
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** The q-quantile (0..1) of an ascending array: the element at floor(q * n), clamped. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.floor(q * n)))];
}

/** Sorts a copy of the samples and returns their order statistics. */
export function summarize(samples: ArrayLike<number>): Summary {
  const s = Float64Array.from(samples).sort();
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i];
  return {
    n: s.length,
    min: s[0],
    p50: percentile(s, 0.5),
    p90: percentile(s, 0.9),
    p99: percentile(s, 0.99),
    p999: percentile(s, 0.999),
    max: s[s.length - 1],
    mean: sum / s.length,
  };
}

/** The median of a few numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Log2 histogram of latency samples: `[[upperBoundNs, count], ...]`, empty buckets omitted. */
export function histogram(samplesNs: ArrayLike<number>): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (let i = 0; i < samplesNs.length; i++) {
    const b = 2 ** Math.ceil(Math.log2(Math.max(1, samplesNs[i])));
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => a[0] - b[0]);
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** Spawns `script` in `runtime` with `args`; stdio defaults to pipes, stderr inherited. */
export function spawnScript(
  runtime: Runtime,
  script: string,
  scriptArgs: string[] = [],
  opts: SpawnOptions = {},
): ChildProcess {
  const [cmd, ...rest] = runtimeCommand(runtime, script);
  return spawn(cmd, [...rest, ...scriptArgs], { stdio: ["pipe", "pipe", "inherit"], ...opts });
}

/** Resolves with the exit code when `child` exits. */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
}

/**
 * Reads newline-delimited text lines from a readable stream (child stdout), one at a time:
 * `const next = lineReader(child.stdout!); const line = await next();`.
 */
export function lineReader(stream: Readable): () => Promise<string> {
  let buf = "";
  const lines: string[] = [];
  const waiting: Array<(s: string) => void> = [];
  const dec = new TextDecoder();
  stream.on("data", (d: Uint8Array | string) => {
    buf += typeof d === "string" ? d : dec.decode(d, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  stream.on("end", () => {
    for (const w of waiting.splice(0)) w("");
  });
  return () => lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r));
}

/** Runs `fn` while measuring wall time and the CPU time of this process plus `pids`. */
export async function measured<T>(
  pids: number[],
  fn: () => Promise<T> | T,
): Promise<{ result: T; wall_s: number; cpu_s: number }> {
  const c0 = cpuSelf() + pids.reduce((a, p) => a + procCpu(p), 0);
  const t0 = clockNs();
  const result = await fn();
  const wall_s = (clockNs() - t0) / 1e9;
  const cpu_s = cpuSelf() + pids.reduce((a, p) => a + procCpu(p), 0) - c0;
  return { result, wall_s, cpu_s };
}
