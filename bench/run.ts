/**
 * The benchmark driver (`make bench` runs it through scripts/bench.sh).
 *
 * 1. Runs the C floor (build/bench/floor) and every bench/scenarios/*.ts in each runtime the
 *    scenario supports, `reps` times, visiting the jobs in a rotated order each repetition so
 *    slow drifts of the machine spread over all transports.
 * 2. Collects the JSON lines of bench/FORMAT.md into bench/results/<timestamp>.jsonl.
 * 3. Regenerates the part of bench/README.md between the GENERATED markers: one table per bench
 *    id with the median (and min–max) per cell, the C floor and the best peer of the same run,
 *    their ratios, CPU seconds, the targets with met / missed, and the machine.
 *
 * The driver stays idle while a cell runs (it only awaits the child), so it does not compete for
 * the two CPUs. Environment:
 *   SHMKIT_BENCH=S1,S9         only these bench ids (scenario files are picked by their ids)
 *   SHMKIT_BENCH_QUICK=1       smoke run: 1 repetition, scenarios shrink their samples
 *   SHMKIT_BENCH_REPS=3        repetitions per cell (default 3, quick 1)
 *   SHMKIT_BENCH_BUDGET=780    global time budget in seconds (default 780, quick 300)
 *   SHMKIT_BENCH_RUNTIMES=deno,bun,node   runtimes to use
 *   SHMKIT_BENCH_NO_README=1   write the .jsonl only
 *
 * Only `node:` modules are used, so this file also type-checks for Node; it is run with Deno.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";

type Runtime = "deno" | "bun" | "node" | "c";

const proc = (globalThis as unknown as {
  process: { env: Record<string, string | undefined>; pid: number; stderr: { write(s: string): void } };
}).process;
const ROOT = decodeURIComponent(
  new URL(import.meta.url.endsWith(".ts") ? "../" : "../../../", import.meta.url).pathname,
);
const BIN = `${ROOT}node_modules/.bin`;
const env = (k: string): string | undefined => proc.env[k];
const QUICK = !!env("SHMKIT_BENCH_QUICK") && env("SHMKIT_BENCH_QUICK") !== "0";
const ONLY = (env("SHMKIT_BENCH") ?? "").split(/[,\s]+/).filter(Boolean).map((s) => s.toUpperCase());
const REPS = Math.max(1, Number(env("SHMKIT_BENCH_REPS") ?? (QUICK ? 1 : 3)));
const BUDGET_S = Number(env("SHMKIT_BENCH_BUDGET") ?? (QUICK ? 300 : 780));
const RUNTIMES = (env("SHMKIT_BENCH_RUNTIMES") ?? "deno,bun,node").split(/[,\s]+/).filter(Boolean) as Runtime[];
const FLOOR_BIN = `${ROOT}build/bench/floor`;
/** The C floor of the MessageLog protocol (bench/c/log_floor.c), S10. */
const LOG_FLOOR_BIN = `${ROOT}build/bench/log_floor`;
/** The C floor of the Channel's message protocol (bench/c/chan_floor.c), S2. */
const CHAN_FLOOR_BIN = `${ROOT}build/bench/chan_floor`;
const README = `${ROOT}bench/README.md`;
const BEGIN = "<!-- BEGIN GENERATED (bench/run.ts rewrites this part; edit outside the markers) -->";
const END = "<!-- END GENERATED -->";

function log(s: string): void {
  proc.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);
}
const T0 = Date.now();

// ---------------------------------------------------------------------------------------------
// Jobs

interface Job {
  /** "floor" or the scenario file name without .ts */
  name: string;
  runtime: Runtime;
  cmd: string[];
  ids: string[];
  timeoutS: number;
  /** wall seconds of the first repetition */
  lastS?: number;
}

/** Reads the scenario header (bench/FORMAT.md): `// @bench-runtimes`, `// @bench-ids`, `// @bench-timeout`. */
function scenarioHeader(file: string): { runtimes: Runtime[]; ids: string[]; timeoutS?: number } {
  const text = readFileSync(file, "utf8");
  const base = file.split("/").pop()!.replace(/\.ts$/, "");
  let runtimes: Runtime[] = ["deno", "bun", "node"];
  const rt = text.match(/@bench-runtimes\s+([a-z ,]+)/) ??
    text.match(/BENCH_RUNTIMES\s*(?::[^=]*)?=\s*\[([^\]]*)\]/);
  if (rt) runtimes = (rt[1].match(/deno|bun|node/g) ?? []) as Runtime[];
  const idm = text.match(/@bench-ids\s+([A-Za-z0-9 ,]+)/);
  let ids = idm ? (idm[1].match(/S\d+/gi) ?? []).map((s) => s.toUpperCase()) : [];
  const fm = base.match(/^(s\d+)_/i);
  if (fm && !ids.includes(fm[1].toUpperCase())) ids.push(fm[1].toUpperCase());
  if (ids.length === 0) ids = ["*"];
  const tm = text.match(/@bench-timeout\s+(\d+)/);
  return { runtimes, ids, timeoutS: tm ? Number(tm[1]) : undefined };
}

function commandFor(runtime: Runtime, rel: string): string[] {
  switch (runtime) {
    case "deno":
      return [`${BIN}/deno`, "run", "--allow-all", "--quiet", "--no-check", `${ROOT}${rel}`];
    case "bun":
      return [`${BIN}/bun`, `${ROOT}${rel}`];
    case "node":
      return ["node", `${ROOT}build/node/${rel.replace(/\.ts$/, ".js")}`];
    default:
      throw new Error(runtime);
  }
}

function selected(ids: string[]): boolean {
  return ONLY.length === 0 || ids.includes("*") || ids.some((i) => ONLY.includes(i));
}

function planJobs(): { jobs: Job[]; skipped: string[] } {
  const jobs: Job[] = [];
  const skipped: string[] = [];
  if (existsSync(FLOOR_BIN)) {
    jobs.push({
      name: "floor",
      runtime: "c",
      cmd: [FLOOR_BIN, ONLY.join(",")],
      ids: ["*"],
      timeoutS: 120,
    });
  } else skipped.push("C floor: build/bench/floor is missing (scripts/bench.sh builds it)");
  const HEAP_FLOOR_BIN = `${ROOT}build/bench/heap_floor`;
  if (selected(["S11"]) && existsSync(HEAP_FLOOR_BIN)) {
    jobs.push({ name: "floor", runtime: "c", cmd: [HEAP_FLOOR_BIN], ids: ["S11"], timeoutS: 120 });
  } else if (selected(["S11"])) {
    skipped.push("S11 C floor: build/bench/heap_floor is missing (scripts/bench.sh builds it)");
  }
  if (existsSync(LOG_FLOOR_BIN)) {
    if (selected(["S10"])) {
      jobs.push({ name: "log_floor", runtime: "c", cmd: [LOG_FLOOR_BIN], ids: ["S10"], timeoutS: 60 });
    }
  } else skipped.push("S10 C floor: build/bench/log_floor is missing (scripts/bench.sh builds it)");
  if (existsSync(CHAN_FLOOR_BIN)) {
    if (selected(["S2"])) {
      jobs.push({ name: "chan_floor", runtime: "c", cmd: [CHAN_FLOOR_BIN], ids: ["S2"], timeoutS: 60 });
    }
  } else skipped.push("S2 C floor: build/bench/chan_floor is missing (scripts/bench.sh builds it)");
  const dir = `${ROOT}bench/scenarios`;
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".ts")).sort() : [];
  for (const f of files) {
    const rel = `bench/scenarios/${f}`;
    const h = scenarioHeader(`${ROOT}${rel}`);
    if (!selected(h.ids)) continue;
    for (const rt of h.runtimes) {
      if (!RUNTIMES.includes(rt)) continue;
      if (rt === "node") {
        const js = `${ROOT}build/node/${rel.replace(/\.ts$/, ".js")}`;
        if (!existsSync(js)) {
          skipped.push(`${f} on node: ${js.slice(ROOT.length)} is missing (make node compiles bench/)`);
          continue;
        }
        if (statSync(js).mtimeMs < statSync(`${ROOT}${rel}`).mtimeMs) {
          log(`warning: ${js.slice(ROOT.length)} is older than ${rel}; run make node`);
        }
      }
      jobs.push({
        name: f.replace(/\.ts$/, ""),
        runtime: rt,
        cmd: commandFor(rt, rel),
        ids: h.ids,
        timeoutS: h.timeoutS ?? (QUICK ? 90 : 180),
      });
    }
  }
  return { jobs, skipped };
}

// ---------------------------------------------------------------------------------------------
// Running

interface Line {
  bench: string;
  variant: string;
  transport: string;
  runtime: string;
  metric: string;
  value: number;
  cpu_s?: number;
  wall_s?: number;
  note?: string;
  floor_variant?: string;
  peer_variant?: string;
  // added by the driver
  rep?: number;
  job?: string;
  load1?: number;
  /** % of all CPUs busy (other people's work) in the 250 ms before the job started */
  busy_before?: number;
}

interface JobResult {
  lines: Line[];
  code: number | null;
  signal: string | null;
  wallS: number;
  stderr: string;
}

function runJob(job: Job, rep: number): Promise<JobResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(job.cmd[0], job.cmd.slice(1), {
      cwd: ROOT,
      detached: true, // own process group: a timeout kills the scenario and everything it spawned
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...proc.env, NO_COLOR: "1", SHMKIT_BENCH_REP: String(rep), SHMKIT_BENCH_RUNTIMES: RUNTIMES.join(",") },
    });
    let out = "";
    let err = "";
    const dec1 = new TextDecoder();
    const dec2 = new TextDecoder();
    child.stdout!.on("data", (d: Uint8Array) => out += dec1.decode(d, { stream: true }));
    child.stderr!.on("data", (d: Uint8Array) => {
      err += dec2.decode(d, { stream: true });
      if (err.length > 20000) err = err.slice(-10000);
    });
    const timer = setTimeout(() => {
      err += `\n(bench/run.ts: killed after ${job.timeoutS} s)`;
      try {
        (globalThis as unknown as { process: { kill(pid: number, sig: string): void } }).process.kill(
          -child.pid!,
          "SIGKILL",
        );
      } catch { /* already gone */ }
    }, job.timeoutS * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const lines: Line[] = [];
      for (const raw of out.split("\n")) {
        const s = raw.trim();
        if (!s.startsWith('{"bench":')) continue;
        try {
          const l = JSON.parse(s) as Line;
          if (typeof l.value !== "number" || !Number.isFinite(l.value)) continue;
          l.runtime ??= job.runtime;
          lines.push(l);
        } catch { /* not a result line */ }
      }
      resolve({ lines, code, signal: signal ?? null, wallS: (Date.now() - t0) / 1000, stderr: err });
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ lines: [], code: -1, signal: null, wallS: (Date.now() - t0) / 1000, stderr: String(e) });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Machine facts

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

function cmdVersion(cmd: string, args: string[]): string {
  try {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 15000 });
    return ((r.stdout || r.stderr || "") as string).split("\n")[0].trim() || "unavailable";
  } catch {
    return "unavailable";
  }
}

/** CPU jiffies from /proc/stat: total and steal. */
function cpuStat(): { total: number; steal: number; idle: number } {
  const f = (readText("/proc/stat") ?? "").split("\n")[0].split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  return { total, steal: f[7] || 0, idle: (f[3] || 0) + (f[4] || 0) };
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let quietWaitedMs = 0;
const QUIET_TOTAL_MS = QUICK ? 20_000 : 120_000;

/**
 * Before a job, waits (at most 5 s per job and QUIET_TOTAL_MS per run) until the machine is
 * quiet: less than 30 % of the CPUs busy over a 250 ms window while the driver itself is idle, so
 * the busy share is other people's load. Returns the busy percentage of the last window.
 */
async function waitQuiet(): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const a = cpuStat();
    await sleepMs(250);
    const b = cpuStat();
    const dt = b.total - a.total;
    const busy = dt > 0 ? 100 * (1 - (b.idle - a.idle) / dt) : 0;
    const waited = Date.now() - t0;
    if (busy < 30 || waited >= 5000 || quietWaitedMs + waited >= QUIET_TOTAL_MS) {
      quietWaitedMs += waited;
      return Math.round(busy);
    }
  }
}

interface Machine {
  cpu: string;
  cpus: number;
  kernel: string;
  cpuidle: string;
  haltpoll: string;
  versions: Record<string, string>;
  loadStart: number[];
  loadEnd?: number[];
  stealPct?: number;
  busyPct?: number;
}

function machine(): Machine {
  const cpuinfo = readText("/proc/cpuinfo") ?? "";
  const model = cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
  const cpus = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const drv = readText("/sys/devices/system/cpu/cpuidle/current_driver") ?? "none";
  const gov = readText("/sys/devices/system/cpu/cpuidle/current_governor_ro") ??
    readText("/sys/devices/system/cpu/cpuidle/current_governor") ?? "none";
  const hp = readText("/sys/module/haltpoll/parameters/guest_halt_poll_ns");
  return {
    cpu: model,
    cpus,
    kernel: readText("/proc/sys/kernel/osrelease") ?? "unknown",
    cpuidle: `driver ${drv}, governor ${gov}`,
    haltpoll: hp === undefined ? "not present" : `guest_halt_poll_ns=${hp}` +
      (hp === "0" ? " (no guest halt polling: every sleep/wake pays a full HLT exit)" : ""),
    versions: {
      deno: cmdVersion(`${BIN}/deno`, ["--version"]),
      bun: "bun " + cmdVersion(`${BIN}/bun`, ["--version"]),
      node: "node " + cmdVersion("node", ["--version"]),
      python: cmdVersion("python3", ["--version"]),
      gcc: cmdVersion("gcc", ["--version"]),
    },
    loadStart: loadavg(),
  };
}

// ---------------------------------------------------------------------------------------------
// Aggregation

interface Cell {
  bench: string;
  variant: string;
  transport: string;
  runtime: string;
  metric: string;
  values: number[];
  cpu: number[];
  wall: number[];
  loads: number[];
  busy: number[];
  note?: string;
  floor_variant?: string;
  peer_variant?: string;
  median: number;
}

const med = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

function aggregate(lines: Line[]): Cell[] {
  const map = new Map<string, Cell>();
  for (const l of lines) {
    const key = [l.bench, l.variant, l.transport, l.runtime, l.metric].join("\u0000");
    let c = map.get(key);
    if (!c) {
      c = {
        bench: l.bench,
        variant: l.variant ?? "",
        transport: l.transport,
        runtime: l.runtime,
        metric: l.metric,
        values: [],
        cpu: [],
        wall: [],
        loads: [],
        busy: [],
        note: l.note,
        floor_variant: l.floor_variant,
        peer_variant: l.peer_variant,
        median: NaN,
      };
      map.set(key, c);
    }
    c.values.push(l.value);
    if (typeof l.cpu_s === "number") c.cpu.push(l.cpu_s);
    if (typeof l.wall_s === "number") c.wall.push(l.wall_s);
    if (typeof l.load1 === "number") c.loads.push(l.load1);
    if (typeof l.busy_before === "number") c.busy.push(l.busy_before);
  }
  for (const c of map.values()) c.median = med(c.values);
  return [...map.values()];
}

// Metric normalization: times become ns (lower is better), rates stay (higher is better).
interface Dim {
  key: string;
  scale: number;
  higherBetter: boolean;
}

function dim(metric: string): Dim {
  const m = metric.trim().toLowerCase().replace("µs", "us");
  const t = m.match(/^(ns|us|ms|s)(?:\/(?:call|op|item|msg))?(?:\s+(.*))?$/);
  if (t) {
    const scale = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 }[t[1] as "ns" | "us" | "ms" | "s"];
    // a bare time ("ms") is a typical (median) value: it compares with "p50"
    return { key: m.includes("/") ? "time per-op" : `time ${t[2] ?? "p50"}`, scale, higherBetter: false };
  }
  // items/s, msgs/s, ops/s, pairs/s: all "events per second", compared with each other
  const r = m.match(/^(k|m|g)?(items|msgs|ops|calls|pairs)\/s$/);
  if (r) return { key: "rate", scale: { k: 1e3, m: 1e6, g: 1e9, "": 1 }[r[1] ?? ""]!, higherBetter: true };
  const b = m.match(/^(k|m|g)b\/s$/);
  if (b) return { key: "bandwidth", scale: { k: 1e3, m: 1e6, g: 1e9 }[b[1]]!, higherBetter: true };
  return { key: m, scale: 1, higherBetter: !/latency|time|rtt/.test(m) };
}

const isFloor = (c: Cell): boolean => c.transport === "C floor";
/** A C floor a JavaScript job ran next to its own cells (bench/lib.ts `sameJobFloor`). */
const isJobFloor = (c: Cell): boolean => c.transport === "C floor (same job)";
const isOurs = (c: Cell): boolean => c.transport.toLowerCase().startsWith("shmkit");
/** A JS floor (the same loop with no transport) or the serialization floor is a reference, not a peer. */
const isJsFloor = (c: Cell): boolean => /^(JS floor|serialization floor)/.test(c.transport);
const isPeer = (c: Cell): boolean => !isFloor(c) && !isJobFloor(c) && !isOurs(c) && !isJsFloor(c);

const SIZE_RE = /(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)\b/;
function sizeOf(variant: string): number | undefined {
  const m = variant.match(SIZE_RE);
  if (!m) return undefined;
  const mult: Record<string, number> = {
    B: 1,
    KiB: 1024,
    KB: 1024,
    MiB: 1 << 20,
    MB: 1 << 20,
    GiB: 2 ** 30,
    GB: 2 ** 30,
  };
  return Number(m[1]) * mult[m[2]];
}
const tokens = (v: string): string[] =>
  v.toLowerCase().replace(SIZE_RE, " ").split(/[\s,;:()/+]+/).filter((t) => t.length > 0);

/**
 * Scores how well candidate variant `cand` matches `want`: -1 = incompatible (different sizes,
 * different batch, seq_cst on one side only), otherwise 100 for equal names plus shared words.
 */
function variantScore(want: string, cand: string): number {
  if (want === cand) return 1000;
  const a = sizeOf(want), b = sizeOf(cand);
  if (a !== undefined && b !== undefined && a !== b) return -1;
  const ba = want.match(/batch\s*=?\s*(\d+)/i)?.[1], bb = cand.match(/batch\s*=?\s*(\d+)/i)?.[1];
  if (ba !== undefined && bb !== undefined && ba !== bb) return -1;
  if (/seq_cst/.test(want) !== /seq_cst/.test(cand)) return -1;
  const pc = (v: string) => {
    const x = v.match(/(\d+)\s*P\s*\+?\s*(\d+)\s*C\b/i);
    return x ? `${x[1]}p${x[2]}c` : undefined;
  };
  const pa = pc(want), pb = pc(cand);
  if (pa && pb && pa === pb) return 500;
  if (pa && pb && pa !== pb) return -1;
  const ta = new Set(tokens(want));
  let s = a !== undefined && a === b ? 50 : 0;
  for (const t of tokens(cand)) if (ta.has(t)) s += 10;
  return s;
}

/** Candidates of the same bench and metric dimension whose variant matches best. */
function bestMatches(c: Cell, pool: Cell[], explicit?: string): Cell[] {
  const d = dim(c.metric).key;
  const same = pool.filter((p) => p.bench === c.bench && dim(p.metric).key === d);
  if (explicit !== undefined) {
    return explicit === "" || explicit === "none" ? [] : same.filter((p) => p.variant === explicit);
  }
  let best = -1;
  let out: Cell[] = [];
  for (const p of same) {
    const s = variantScore(c.variant, p.variant);
    if (s > best) {
      best = s;
      out = [p];
    } else if (s === best && s >= 0) out.push(p);
  }
  // nothing in common and several different variants to choose from: no honest comparison
  if (best === 0 && new Set(out.map((p) => p.variant)).size > 1) return [];
  return best < 0 ? [] : out;
}

function normValue(c: Cell): number {
  return c.median * dim(c.metric).scale;
}

function floorFor(c: Cell, cells: Cell[]): Cell | undefined {
  if (isFloor(c) || isJobFloor(c)) return undefined;
  // shmkit's cells: the floor measured inside their own job first (the same VM phase), then the C
  // floor job's (peers run in other jobs: the C floor job's).
  const mine = isOurs(c) ? cells.filter((f) => isJobFloor(f) && f.runtime === c.runtime) : [];
  for (const pool of [mine, cells.filter(isFloor)]) {
    const m = bestMatches(c, pool, c.floor_variant);
    if (m.length === 0) continue;
    // several floor variants fit equally well (a peer "64B" vs "spin 64B" and "park 64B"): no pick
    if (new Set(m.map((f) => f.variant)).size > 1) return undefined;
    if (pool !== mine) return m[0];
    // The best value the jobs measured, not their median: a floor run before the cells has read
    // up to 2.5x lower than the same job's floor after them (cause not found), and the comparison
    // must not flatter the cell.
    const f = m[0];
    const best = dim(f.metric).higherBetter ? Math.max(...f.values) : Math.min(...f.values);
    return { ...f, median: best };
  }
  return undefined;
}

function bestPeerFor(c: Cell, cells: Cell[]): Cell | undefined {
  if (!isOurs(c)) return undefined;
  const peers = cells.filter(isPeer);
  let m = bestMatches(c, peers, c.peer_variant);
  // a sized variant ("1 MiB") competes with every peer of that size ("1 MiB copy", "1 MiB transfer")
  const sz = sizeOf(c.variant);
  if (c.peer_variant === undefined && sz !== undefined) {
    const d = dim(c.metric).key;
    const same = peers.filter((p) => p.bench === c.bench && dim(p.metric).key === d && sizeOf(p.variant) === sz);
    if (same.length) m = same;
  }
  if (m.length === 0 && c.peer_variant === undefined) {
    // an under-specified variant ("spin") borrows the name of the floor it matched ("spin 64B")
    const f = floorFor(c, cells);
    if (f) m = bestMatches({ ...c, variant: f.variant }, cells.filter(isPeer));
  }
  if (m.length === 0) return undefined;
  const hb = dim(c.metric).higherBetter;
  return m.reduce((a, b) => (hb ? normValue(b) > normValue(a) : normValue(b) < normValue(a)) ? b : a);
}

/** "How good are we relative to x": > 1 means better. */
function ratio(ours: Cell, ref: Cell): number {
  const a = normValue(ours), b = normValue(ref);
  return dim(ours.metric).higherBetter ? a / b : b / a;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toPrecision(3) + " G";
  if (a >= 1e6) return (v / 1e6).toPrecision(3) + " M";
  if (a >= 1e4) return (v / 1e3).toPrecision(3) + " k";
  if (a >= 100) return v.toFixed(0);
  return v.toPrecision(3);
}

function fmtVal(v: number, metric: string): string {
  const m = metric.replace(/^us/, "µs");
  const rate = m.match(/^(items|msgs|ops|calls|pairs)\/s$/);
  if (rate) return `${fmtNum(v)}/s`.replace(" /s", "/s");
  if (m === "GB/s") return `${v.toPrecision(3)} GB/s`;
  const t = m.match(/^(ns|µs|ms|s)(\/\w+)?(?:\s+(.*))?$/);
  if (t && t[2]) return `${fmtNum(v)} ${t[1]}${t[2]}`;
  if (t) {
    const ns = v * { ns: 1, "µs": 1e3, ms: 1e6, s: 1e9 }[t[1] as "ns" | "µs" | "ms" | "s"];
    const a = Math.abs(ns);
    if (a < 1e4) return `${fmtNum(ns)} ns`;
    if (a < 1e7) return `${fmtNum(ns / 1e3)} µs`;
    if (a < 1e10) return `${fmtNum(ns / 1e6)} ms`;
    return `${fmtNum(ns / 1e9)} s`;
  }
  return `${fmtNum(v)} ${m}`;
}

function fmtCell(c: Cell): string {
  const stat = c.metric.match(/\s(p[\d.]+|mean|max|min)$/)?.[1];
  return fmtVal(c.median, c.metric) + (stat ? ` ${stat}` : "");
}

function fmtRange(c: Cell): string {
  if (c.values.length < 2) return "";
  const lo = Math.min(...c.values), hi = Math.max(...c.values);
  return `${fmtNum(lo)}–${fmtNum(hi)}`;
}

function fmtRatio(r: number, pct: boolean): string {
  if (!Number.isFinite(r)) return "";
  return pct ? `${(r * 100).toFixed(r >= 0.1 ? 0 : 1)} %` : `${r >= 10 ? r.toFixed(0) : r.toFixed(r >= 1 ? 1 : 2)}x`;
}

// deno-lint-ignore no-control-regex
const esc = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "").replace(/\|/g, "\\|").replace(/\n/g, " ");

function cpuCol(c: Cell): string {
  if (c.cpu.length === 0) return "";
  const cpu = med(c.cpu);
  if (c.wall.length === 0) return cpu.toFixed(3);
  const wall = med(c.wall);
  return `${cpu.toFixed(2)} / ${wall.toFixed(2)}` + (wall > 0 ? ` (${(cpu / wall).toFixed(1)} CPU)` : "");
}

const BENCH_TITLES: Record<string, string> = {
  S1: "S1 — SPSC u32 handles across processes (items/s)",
  S2: "S2 — inline messages through a channel (msgs/s, GB/s)",
  S3: "S3 — small-message round trip (spin, park)",
  S4: "S4 — wake from idle (one-way latency)",
  S5: "S5 — large blocks (zero-copy handoff, copy, memcpy)",
  S6: "S6 — mempool get+put",
  S7: "S7 — MPMC scaling",
  S8: "S8 — create / open + map + first touch of 64 MiB",
  S9: "S9 — FFI and atomics cost per runtime",
  S11: "S11 — SharedHeap alloc+free (pairs/s)",
  S10: "S10 — packed message log, variable-size records (msgs/s, GB/s)",
};

function sortCells(a: Cell, b: Cell): number {
  const rank = (c: Cell) => isFloor(c) || isJobFloor(c) ? 0 : isOurs(c) ? 1 : 2;
  return rank(a) - rank(b) || a.variant.localeCompare(b.variant, "en", { numeric: true }) ||
    a.transport.localeCompare(b.transport) || a.runtime.localeCompare(b.runtime) ||
    a.metric.localeCompare(b.metric, "en", { numeric: true });
}

function renderBench(id: string, cells: Cell[], all: Cell[]): string {
  const rows = cells.filter((c) => c.bench === id).sort(sortCells);
  const out = [`### ${BENCH_TITLES[id] ?? id}`, ""];
  out.push(
    "| transport | runtime | variant | value (median) | min–max | n | C floor | % of C floor | best peer | x best peer | CPU s / wall s | others busy |",
  );
  out.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const c of rows) {
    const f = floorFor(c, all);
    const p = bestPeerFor(c, all);
    out.push(
      "| " + [
        isOurs(c) ? `**${esc(c.transport)}**` : esc(c.transport),
        c.runtime,
        esc(c.variant),
        fmtCell(c),
        fmtRange(c),
        String(c.values.length),
        f ? fmtCell(f) : "",
        f ? fmtRatio(ratio(c, f), true) : "",
        p ? `${fmtCell(p)} (${esc(p.transport)}, ${p.runtime})` : "",
        p ? fmtRatio(ratio(c, p), false) : "",
        cpuCol(c),
        c.busy.length ? `${Math.round(med(c.busy))} %` : "",
      ].join(" | ") + " |",
    );
  }
  const notes = rows.filter((c) => c.note).map((c) => `${c.transport} ${c.runtime} ${c.variant}: ${c.note}`);
  const uniq = [...new Set(notes)];
  if (uniq.length) {
    out.push("", "<details><summary>notes of the cells</summary>", "");
    for (const n of uniq) out.push(`- ${esc(n)}`);
    out.push("", "</details>");
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Targets (from the issues): evaluated per runtime on the best matching shmkit cell

interface Target {
  id: string;
  text: string;
  bench: string;
  variant: RegExp;
  metric: RegExp;
  runtimes?: string[];
  /** false when the matched C floor does not do the same job (memcpy vs a zero-copy handoff) */
  floorExplains?: boolean;
  /**
   * absolute bound in the normalized unit (ns for times), or a function of the run; `short` lists
   * the parts not met with the value each needs (normalized), for `ceiling`
   */
  check: (c: Cell, all: Cell[]) => { ok: boolean; want: string; short?: { what: string; need: number }[] } | undefined;
  /**
   * A floor of the same run that bounds every transport of this kind (not only shmkit): a JSON
   * receiver's parse + check alone, or the per-message protocol in C. A part of the target above it
   * cannot be met on this machine, and the table says so, with `ceilingWhy`.
   */
  ceiling?: (c: Cell, all: Cell[]) => Cell | undefined;
  ceilingWhy?: string;
}

const atLeast = (v: number, label: string) => (c: Cell) => ({ ok: normValue(c) >= v, want: label });
const atMost = (v: number, label: string) => (c: Cell) => ({ ok: normValue(c) <= v, want: label });

/** The best peer cell of `c`'s bench, variant, runtime and metric whose transport matches `re` (S2 targets). */
function bestPeerBy(c: Cell, all: Cell[], re: RegExp): Cell | undefined {
  const m = all.filter((x) =>
    isPeer(x) && x.bench === c.bench && x.variant === c.variant && x.runtime === c.runtime && x.metric === c.metric &&
    re.test(x.transport)
  );
  return m.length ? m.reduce((a, b) => normValue(b) > normValue(a) ? b : a) : undefined;
}

/** S2: at least `per`x the best per-message peer and `batched`x the best batched peer. */
const beatsPeers = (per: number, batched: number) => (c: Cell, all: Cell[]) => {
  const p = bestPeerBy(c, all, /per msg/), b = bestPeerBy(c, all, /batched/);
  if (!p && !b) return undefined;
  const okP = !p || ratio(c, p) >= per, okB = !b || ratio(c, b) >= batched;
  const want = [
    p ? `≥ ${per}x ${p.transport} (${fmtCell(p)})` : "",
    b ? `≥ ${batched}x ${b.transport} (${fmtCell(b)})` : "",
  ].filter(Boolean).join(", ");
  const short: { what: string; need: number }[] = [];
  if (p && !okP) short.push({ what: `${per}x the best per-message peer`, need: per * normValue(p) });
  if (b && !okB) short.push({ what: `${batched}x the best batched peer`, need: batched * normValue(b) });
  return { ok: okP && okB, want, short };
};

/** The JS floor of `c`'s bench, variant, runtime and metric in the same run (S1 "no ring", S10 "log protocol inline"). */
const jsFloorOf = (c: Cell, all: Cell[]): Cell | undefined =>
  all.find((x) =>
    isJsFloor(x) && x.bench === c.bench && x.variant === c.variant && x.runtime === c.runtime && x.metric === c.metric
  );

/** The JSON receiver's floor of `c`'s runtime in the same run: JSON.parse + check alone (S2 serializationFloors). */
const jsonParseFloor = (c: Cell, all: Cell[]): Cell | undefined =>
  all.find((x) =>
    x.bench === c.bench && x.runtime === c.runtime && x.metric === c.metric &&
    x.transport === "serialization floor (JSON.parse + check)"
  );

const TARGETS: Target[] = [
  {
    id: "S1-b1",
    text: "S1 batch 1 ≥ 15 M/s",
    bench: "S1",
    variant: /batch\s*=?\s*1(?!\d)(?!.*seq_cst)/,
    metric: /items\/s/,
    check: atLeast(15e6, "≥ 15 M/s"),
  },
  {
    id: "S1-b32",
    text: "S1 batch 32 ≥ 250 M/s",
    bench: "S1",
    variant: /batch\s*=?\s*32(?!\d)(?!.*seq_cst)/,
    metric: /items\/s/,
    check: atLeast(250e6, "≥ 250 M/s"),
  },
  {
    id: "S1-b256",
    text: "S1 batch 256 ≥ 500 M/s",
    bench: "S1",
    variant: /batch\s*=?\s*256(?!\d)(?!.*seq_cst)/,
    metric: /items\/s/,
    check: atLeast(500e6, "≥ 500 M/s"),
  },
  {
    id: "S1-b256-js",
    text: "S1 batch 256 ≥ 80 % of the JS floor (same loop with no ring, same runtime and run)",
    bench: "S1",
    variant: /batch\s*=?\s*256(?!\d)(?!.*seq_cst)/,
    metric: /items\/s/,
    floorExplains: false,
    check: (c, all) => {
      const f = jsFloorOf(c, all);
      if (!f) return undefined;
      return {
        ok: normValue(c) >= 0.8 * normValue(f),
        want: `≥ ${fmtVal(0.8 * f.median, f.metric)} (80 % of ${fmtCell(f)})`,
      };
    },
  },
  {
    id: "S2-msg",
    text: "S2 64 B message API ≥ 10 M msgs/s (Deno, Bun)",
    bench: "S2",
    variant: /message API.*64\s*B/,
    metric: /msgs\/s/,
    runtimes: ["deno", "bun"],
    check: atLeast(10e6, "≥ 10 M/s"),
  },
  {
    id: "S2-msg-node",
    text: "S2 64 B message API ≥ 5 M msgs/s (Node)",
    bench: "S2",
    variant: /message API.*64\s*B/,
    metric: /msgs\/s/,
    runtimes: ["node"],
    check: atLeast(5e6, "≥ 5 M/s"),
  },
  {
    id: "S2-msg-peers",
    text: "S2 64 B message API ≥ 10x the best per-message peer and ≥ 2x the best batched peer",
    bench: "S2",
    variant: /message API.*64\s*B/,
    metric: /msgs\/s/,
    floorExplains: false,
    check: beatsPeers(10, 2),
    // The same protocol in C, measured inside the cell's job: a peer that batches 256 messages per
    // write can move more than half of what any per-message protocol moves here.
    ceiling: (c, all) => floorFor(c, all),
    ceilingWhy: "the same per-message protocol in C, in the same job, so no per-message transport gets there on " +
      "this machine",
  },
  {
    id: "S2-json-peers",
    text: "S2 JSON ≥ 3x the best per-message peer and ≥ 1.2x the best batched peer",
    bench: "S2",
    variant: /\(JSON\).*JSON tick/,
    metric: /msgs\/s/,
    floorExplains: false,
    check: beatsPeers(3, 1.2),
    ceiling: jsonParseFloor,
    ceilingWhy: "the receiver's own work, no transport, so no JSON transport gets there on this machine",
  },
  {
    id: "S3-spin-p50",
    text: "S3 spin RTT p50 ≤ 400 ns",
    bench: "S3",
    variant: /spin/,
    metric: /p50/,
    check: atMost(400, "≤ 400 ns"),
  },
  {
    id: "S3-spin-p99",
    text: "S3 spin RTT p99 ≤ 1 µs",
    bench: "S3",
    variant: /spin/,
    metric: /p99$/,
    check: atMost(1000, "≤ 1 µs"),
  },
  {
    id: "S3-park-p50",
    text: "S3 park RTT p50 within +10 % of the C futex RTT",
    bench: "S3",
    variant: /park/,
    metric: /p50/,
    check: (c, all) => {
      const f = floorFor(c, all);
      if (!f) return undefined;
      return { ok: normValue(c) <= 1.1 * normValue(f), want: `≤ ${fmtVal(1.1 * f.median, f.metric)} (C +10 %)` };
    },
  },
  {
    id: "S6-deno",
    text: "S6 get+put ≥ 30 M/s on Deno (1 process)",
    bench: "S6",
    variant: /1 process|uncontended|single/i,
    metric: /(ops|pairs|items)\/s/,
    runtimes: ["deno"],
    check: atLeast(30e6, "≥ 30 M/s"),
  },
  {
    id: "S6-bun",
    text: "S6 get+put ≥ 50 M/s on Bun (1 process)",
    bench: "S6",
    variant: /1 process|uncontended|single/i,
    metric: /(ops|pairs|items)\/s/,
    runtimes: ["bun"],
    check: atLeast(50e6, "≥ 50 M/s"),
  },
  {
    id: "S11-deno",
    text: "S11 heap alloc+free of 64 B ≥ 5 M pairs/s on Deno (1 process)",
    bench: "S11",
    variant: /alloc\+free 64B, 1 process/,
    metric: /pairs\/s/,
    runtimes: ["deno"],
    check: atLeast(5e6, "≥ 5 M/s"),
  },
  {
    id: "S11-bun",
    text: "S11 heap alloc+free of 64 B ≥ 5 M pairs/s on Bun (1 process)",
    bench: "S11",
    variant: /alloc\+free 64B, 1 process/,
    metric: /pairs\/s/,
    runtimes: ["bun"],
    check: atLeast(5e6, "≥ 5 M/s"),
  },
  {
    id: "S7-2p2c",
    text: "S7 2P2C within 2x of 1P1C per item",
    bench: "S7",
    variant: /2\s*P\s*\+?\s*2\s*C/i,
    metric: /items\/s/,
    check: (c, all) => {
      const one = all.find((x) =>
        x.bench === "S7" && x.transport === c.transport && x.runtime === c.runtime &&
        /1\s*P\s*\+?\s*1\s*C/i.test(x.variant) &&
        x.metric === c.metric
      );
      if (!one) return undefined;
      return {
        ok: normValue(c) >= 0.5 * normValue(one),
        want: `≥ ${fmtVal(0.5 * one.median, one.metric)} (½ of 1P1C)`,
      };
    },
  },
  {
    id: "S5-1m-zc",
    text: "S5 1 MiB zero-copy handoff < 2 µs",
    bench: "S5",
    variant: /(zero.?copy|handoff).*1\s*MiB|1\s*MiB.*(zero.?copy|handoff)/i,
    metric: /^(ns|us|µs|ms)( p50)?$/,
    floorExplains: false,
    check: atMost(2000, "< 2 µs"),
  },
  {
    id: "S5-64m-copy",
    text: "S5 64 MiB copy send ≤ 10 ms",
    bench: "S5",
    variant: /^(?!.*memcpy)(?=.*(?<!zero-)copy)(?=.*64\s*MiB)/i,
    metric: /^(ns|us|µs|ms)( p50)?$/,
    check: atMost(10e6, "≤ 10 ms"),
  },
  {
    id: "S10-64-deno-bun",
    text: "S10 log 64 B records ≥ 25 M msgs/s on Deno and Bun",
    bench: "S10",
    variant: /(^| )64B$/,
    metric: /msgs\/s/,
    runtimes: ["deno", "bun"],
    check: atLeast(25e6, "≥ 25 M msgs/s"),
  },
  {
    id: "S10-64-node",
    text: "S10 log 64 B records ≥ 10 M msgs/s on Node",
    bench: "S10",
    variant: /(^| )64B$/,
    metric: /msgs\/s/,
    runtimes: ["node"],
    check: atLeast(10e6, "≥ 10 M msgs/s"),
  },
  {
    id: "S10-64-floor",
    text: "S10 log 64 B msgs/s ≥ 50 % of the C floor",
    bench: "S10",
    variant: /(^| )64B$/,
    metric: /msgs\/s/,
    check: (c, all) => {
      const f = floorFor(c, all);
      if (!f) return undefined;
      const need = 0.5 * normValue(f);
      return {
        ok: normValue(c) >= need,
        want: `≥ ${fmtVal(0.5 * f.median, f.metric)} (½ C)`,
        short: [{ what: "half the C floor", need }],
      };
    },
    // The same protocol written inline in JavaScript (no library), in the same job.
    ceiling: jsFloorOf,
    ceilingWhy: "the same log protocol written inline in JavaScript with no library, in the same job: " +
      "JavaScript's own per-record work falls short of it, library or not",
  },
  {
    id: "S10-random-floor",
    text: "S10 log random 16..1024 B bytes/s ≥ 50 % of the C floor",
    bench: "S10",
    variant: /random/,
    metric: /GB\/s/,
    check: (c, all) => {
      const f = floorFor(c, all);
      if (!f) return undefined;
      return { ok: normValue(c) >= 0.5 * normValue(f), want: `≥ ${fmtVal(0.5 * f.median, f.metric)} (½ C)` };
    },
  },
  {
    id: "S5-peer",
    text: "S5 ≥ 10x best peer at ≥ 64 KiB",
    floorExplains: false,
    bench: "S5",
    variant: /./,
    metric: /./,
    check: (c, all) => {
      const sz = sizeOf(c.variant);
      if (sz === undefined || sz < 65536) return undefined;
      const p = bestPeerFor(c, all);
      if (!p) return undefined;
      return { ok: ratio(c, p) >= 10, want: `≥ 10x ${p.transport} (${fmtCell(p)})` };
    },
  },
];

/** Hand-written notes per target id, from the "Target notes" section of README.md (outside the markers). */
function targetNotes(readme: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readme.split("\n")) {
    const t = line.match(/^- \*\*([A-Za-z0-9-]+)\*\*:?\s*(.*)$/);
    if (t) m.set(t[1], t[2]);
  }
  return m;
}

function renderTargets(all: Cell[], notes: Map<string, string>): string {
  const out = [
    "| target | id | runtime | measured (best shmkit cell) | C floor | wanted | status | what limits it |",
    "|---|---|---|---|---|---|---|---|",
  ];
  let prevId = "";
  let prevLimit = "";
  let prevRt = "";
  for (const t of TARGETS) {
    const cand = all.filter((c) =>
      isOurs(c) && c.bench === t.bench && t.variant.test(`${c.transport} ${c.variant}`) && t.metric.test(c.metric)
    );
    const byRt = new Map<string, Cell[]>();
    for (const c of cand) {
      if (t.runtimes && !t.runtimes.includes(c.runtime)) continue;
      byRt.set(c.runtime, [...(byRt.get(c.runtime) ?? []), c]);
    }
    if (byRt.size === 0) {
      out.push(
        `| ${t.text} | ${t.id} | ${t.runtimes?.join(", ") ?? "all"} | no shmkit cell in this run | | | no data | ${
          esc(notes.get(t.id) ?? "")
        } |`,
      );
      continue;
    }
    for (const [rt, cs] of byRt) {
      const judged = cs.map((c) => ({ c, r: t.check(c, all) })).filter((x) => x.r !== undefined);
      if (judged.length === 0) continue;
      // the best cell of this runtime: the best met one if any (not the first met one: the column says "best")
      const hb = dim(judged[0].c.metric).higherBetter;
      const better = <T extends { c: Cell }>(a: T, b: T): T =>
        (hb ? normValue(b.c) > normValue(a.c) : normValue(b.c) < normValue(a.c)) ? b : a;
      const met = judged.filter((x) => x.r!.ok);
      const pick = met.length ? met.reduce(better) : judged.reduce(better);
      const f = floorFor(pick.c, all);
      let limit = pick.r!.ok ? "" : notes.get(t.id) ?? "";
      if (!pick.r!.ok && f && t.floorExplains !== false) {
        const fr = t.check(f, all);
        if (fr && !fr.ok) {
          limit = `the C floor of the same run misses it too (${fmtCell(f)}): the machine in this run is the limit ` +
            `(see "others busy"). ${limit}`;
        }
      }
      const ceil = t.ceiling?.(pick.c, all);
      if (!pick.r!.ok && ceil) {
        const above = (pick.r!.short ?? []).filter((x) => x.need > normValue(ceil));
        if (above.length) {
          const m = ceil.metric;
          const parts = above.map((x) => `${x.what} (${fmtVal(x.need / dim(m).scale, m)})`).join(" and ");
          limit = `${parts} ${above.length > 1 ? "are" : "is"} above the ${ceil.transport} of the same run ` +
            `(${fmtCell(ceil)}): ${t.ceilingWhy ?? "the machine is the limit"}. ${limit}`;
        }
      }
      const floorCol = f
        ? fmtCell(f)
        : ceil
        ? `${fmtCell(ceil)} (JS floor: ${ceil.transport.replace(/^serialization floor \((.*)\)$/, "$1")})`
        : "";
      // A note already shown in the row above for the same target is not repeated.
      const shown = limit !== "" && t.id === prevId && limit === prevLimit ? `as for ${prevRt} above` : limit;
      if (limit !== "" && shown === limit) {
        prevId = t.id;
        prevLimit = limit;
        prevRt = rt;
      }
      out.push(
        `| ${t.text} | ${t.id} | ${rt} | ${fmtCell(pick.c)} (${esc(pick.c.transport)}, ${esc(pick.c.variant)}) | ${
          esc(floorCol)
        } | ${esc(pick.r!.want)} | ${pick.r!.ok ? "met" : "**missed**"} | ${esc(shown)} |`,
      );
    }
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// README

function renderReport(
  cells: Cell[],
  m: Machine,
  info: {
    file: string;
    reps: number;
    elapsedS: number;
    failures: string[];
    skipped: string[];
    loads: number[];
    busies: number[];
  },
  notes: Map<string, string>,
): string {
  const ids = [...new Set(cells.map((c) => c.bench))].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const out: string[] = [];
  out.push(`## Results of the last run (${date}${QUICK ? ", QUICK smoke run: small samples, do not quote" : ""})`);
  out.push("");
  out.push(
    `Raw lines: \`bench/results/${info.file}\` (git-ignored). Up to ${info.reps} repetition(s) per cell (column n; ` +
      `repetitions the time budget did not allow are left out), jobs interleaved; ` +
      `the value is the median over repetitions, min–max shows the spread. Run time ${
        (info.elapsedS / 60).toFixed(1)
      } min.`,
  );
  out.push("");
  out.push("**Machine**");
  out.push("");
  out.push(`- CPU: ${m.cpu}, ${m.cpus} vCPUs; kernel ${m.kernel}`);
  out.push(`- cpuidle: ${m.cpuidle}; haltpoll: ${m.haltpoll}`);
  out.push(`- ${Object.values(m.versions).join("; ")}`);
  const lmin = Math.min(...info.loads), lmax = Math.max(...info.loads);
  out.push(
    `- load average (1/5/15 min) at start ${m.loadStart.map((x) => x.toFixed(2)).join(" / ")}, at end ${
      (m.loadEnd ?? []).map((x) => x.toFixed(2)).join(" / ")
    }; 1-min load seen before the cells: ${lmin.toFixed(2)}–${lmax.toFixed(2)} ` +
      `(other engineers' test runs share the 2 CPUs; cells run while the box was busy are slower and noisier)`,
  );
  const bs = [...info.busies].sort((a, b) => a - b);
  if (bs.length) {
    out.push(
      `- CPU busy with other work just before each job (the driver waits up to 5 s for < 30 %): median ${
        bs[bs.length >> 1]
      } %, max ${bs[bs.length - 1]} % over ${bs.length} jobs; waited ${(quietWaitedMs / 1000).toFixed(0)} s in total`,
    );
  }
  out.push(
    `- CPU steal during the run: ${(m.stealPct ?? 0).toFixed(2)} % of CPU time; whole-machine busy: ${
      (m.busyPct ?? 0).toFixed(0)
    } %`,
  );
  out.push("");
  out.push("**Targets**");
  out.push("");
  out.push(renderTargets(cells, notes));
  out.push("");
  for (const id of ids) {
    out.push(renderBench(id, cells, cells));
    out.push("");
  }
  if (info.failures.length || info.skipped.length) {
    out.push("**Jobs that failed or were skipped in this run**");
    out.push("");
    for (const f of [...info.failures, ...info.skipped]) out.push(`- ${esc(f)}`);
    out.push("");
  }
  return out.join("\n");
}

/** The hand-written part of README.md (everything outside the GENERATED markers). */
function handWritten(readme: string): string {
  const a = readme.indexOf(BEGIN), b = readme.indexOf(END);
  return a < 0 || b < a ? readme : readme.slice(0, a) + readme.slice(b + END.length);
}

function writeReadme(report: string): void {
  let text = existsSync(README) ? readFileSync(README, "utf8") : `# shmkit benchmarks\n\n${BEGIN}\n${END}\n`;
  const a = text.indexOf(BEGIN), b = text.indexOf(END);
  if (a < 0 || b < a) text = `${text.trimEnd()}\n\n${BEGIN}\n${END}\n`;
  const i = text.indexOf(BEGIN), j = text.indexOf(END);
  text = text.slice(0, i + BEGIN.length) + "\n\n" + report.trimEnd() + "\n\n" + text.slice(j);
  writeFileSync(README, text);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const { jobs, skipped } = planJobs();
  const m = machine();
  const stat0 = cpuStat();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").replace(/Z$/, "");
  const resultsDir = `${ROOT}bench/results`;
  mkdirSync(resultsDir, { recursive: true });
  const file = `${stamp}${QUICK ? "-quick" : ""}.jsonl`;
  const results: string[] = [
    JSON.stringify({ meta: { ...m, quick: QUICK, only: ONLY, reps: REPS, budget_s: BUDGET_S } }),
  ];
  const flush = () => writeFileSync(`${resultsDir}/${file}`, results.join("\n") + "\n");
  log(
    `${jobs.length} jobs × ${REPS} reps, budget ${BUDGET_S} s${QUICK ? " (quick)" : ""}; load ${
      m.loadStart.map((x) => x.toFixed(2)).join(" ")
    }`,
  );
  for (const s of skipped) log(`skip: ${s}`);
  const lines: Line[] = [];
  const failures: string[] = [];
  const loads: number[] = [];
  const busies: number[] = [];
  let repsDone = 0;
  for (let rep = 1; rep <= REPS; rep++) {
    // rotate the order each repetition (the floor stays first: it is short and anchors the run)
    const rest = jobs.filter((j) => j.runtime !== "c");
    const k = rest.length ? (rep - 1) % rest.length : 0;
    const order = [...jobs.filter((j) => j.runtime === "c"), ...rest.slice(k), ...rest.slice(0, k)];
    let ranAny = false;
    for (const job of order) {
      const elapsed = (Date.now() - T0) / 1000;
      const est = job.lastS ?? 0;
      if (elapsed + est > BUDGET_S) {
        const why = `${job.name} on ${job.runtime}, rep ${rep}: skipped, the time budget (${BUDGET_S} s) is spent`;
        if (rep === 1) failures.push(why);
        log(why);
        continue;
      }
      const busyBefore = await waitQuiet();
      busies.push(busyBefore);
      const load1 = loadavg()[0];
      loads.push(load1);
      const r = await runJob(job, rep);
      ranAny = true;
      if (rep === 1) job.lastS = r.wallS;
      for (const l of r.lines) {
        l.rep = rep;
        l.job = `${job.name}:${job.runtime}`;
        l.load1 = Math.round(load1 * 100) / 100;
        l.busy_before = busyBefore;
        lines.push(l);
        results.push(JSON.stringify(l));
      }
      const ok = r.code === 0;
      log(
        `rep ${rep}/${REPS} ${job.name.padEnd(22)} ${job.runtime.padEnd(4)} ${
          r.wallS.toFixed(1).padStart(6)
        } s, ${r.lines.length} lines, load ${load1.toFixed(2)}, others busy ${busyBefore} %${
          ok ? "" : ` — exit ${r.code ?? r.signal}`
        }`,
      );
      if (!ok) {
        const tail = r.stderr.trim().split("\n").slice(-3).join(" / ");
        failures.push(`${job.name} on ${job.runtime}, rep ${rep}: exit ${r.code ?? r.signal}: ${tail.slice(0, 400)}`);
        results.push(
          JSON.stringify({
            failure: {
              job: job.name,
              runtime: job.runtime,
              rep,
              code: r.code,
              signal: r.signal,
              stderr: r.stderr.slice(-4000),
            },
          }),
        );
      }
      flush();
    }
    if (ranAny) repsDone = rep;
  }
  m.loadEnd = loadavg();
  const stat1 = cpuStat();
  const dt = stat1.total - stat0.total;
  m.stealPct = dt > 0 ? 100 * (stat1.steal - stat0.steal) / dt : 0;
  m.busyPct = dt > 0 ? 100 * (1 - (stat1.idle - stat0.idle) / dt) : 0;
  results.push(JSON.stringify({
    end: {
      loadEnd: m.loadEnd,
      stealPct: m.stealPct,
      busyPct: m.busyPct,
      elapsed_s: (Date.now() - T0) / 1000,
      quiet_waited_ms: quietWaitedMs,
    },
  }));
  flush();
  const cells = aggregate(lines);
  log(`${lines.length} lines, ${cells.length} cells -> bench/results/${file}`);
  if (env("SHMKIT_BENCH_NO_README")) return;
  const readme = existsSync(README) ? readFileSync(README, "utf8") : "";
  const report = renderReport(
    cells,
    m,
    { file, reps: repsDone, elapsedS: (Date.now() - T0) / 1000, failures, skipped, loads, busies },
    targetNotes(handWritten(readme)),
  );
  writeReadme(report);
  log("bench/README.md updated");
}

/** `deno run -A bench/run.ts --render bench/results/x.jsonl`: rebuild README.md from saved lines. */
function renderSaved(path: string): void {
  const lines: Line[] = [];
  let m: Machine | undefined;
  const failures: string[] = [];
  let elapsed = 0;
  let reps = 0;
  for (const raw of readFileSync(path, "utf8").split("\n")) {
    if (!raw.trim()) continue;
    const o = JSON.parse(raw);
    if (o.meta) m = o.meta as Machine;
    else if (o.end) {
      if (m) Object.assign(m, { loadEnd: o.end.loadEnd, stealPct: o.end.stealPct, busyPct: o.end.busyPct });
      elapsed = o.end.elapsed_s;
      quietWaitedMs = o.end.quiet_waited_ms ?? 0;
    } else if (o.failure) {
      const f = o.failure;
      failures.push(
        `${f.job} on ${f.runtime}, rep ${f.rep}: exit ${f.code ?? f.signal}: ${
          String(f.stderr).trim().split("\n").slice(-3).join(" / ").slice(0, 400)
        }`,
      );
    } else if (typeof o.bench === "string") {
      lines.push(o as Line);
      reps = Math.max(reps, o.rep ?? 1);
    }
  }
  if (!m) throw new Error(`${path}: no meta line`);
  const byJob = new Map<string, { load1: number; busy: number }>();
  for (const l of lines) byJob.set(`${l.job}:${l.rep}`, { load1: l.load1 ?? NaN, busy: l.busy_before ?? NaN });
  const loads = [...byJob.values()].map((x) => x.load1).filter(Number.isFinite);
  const busies = [...byJob.values()].map((x) => x.busy).filter(Number.isFinite);
  const readme = existsSync(README) ? readFileSync(README, "utf8") : "";
  const file = path.split("/").pop()!;
  writeReadme(
    renderReport(
      aggregate(lines),
      m,
      { file, reps, elapsedS: elapsed, failures, skipped: [], loads, busies },
      targetNotes(handWritten(readme)),
    ),
  );
  log(`bench/README.md rendered from ${path}`);
}

const argv = (globalThis as unknown as { process: { argv: string[] } }).process.argv;
const ri = argv.indexOf("--render");
if (ri >= 0) renderSaved(argv[ri + 1]);
else await main();
