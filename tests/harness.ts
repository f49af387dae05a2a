/**
 * One test harness for three runners: `Deno.test`, `bun:test` and `node:test`. Test files import
 * `test` from here and run unchanged everywhere. Also: child-process helpers for cross-process
 * and cross-runtime tests.
 *
 * @module
 */
import { spawn } from "node:child_process";

import { PYTHON, RUNTIME, type Runtime, runtimeCommand, RUNTIMES } from "./processes.ts";

export { PYTHON, ROOT, RUNTIME, type Runtime, runtimeCommand, RUNTIMES } from "./processes.ts";

const g = globalThis as unknown as { Deno?: { test: (o: unknown) => void } };

/** Options of one test. */
export interface TestOptions {
  /** Skip the test and print this reason. */
  skip?: string | false;
  /** Per-test timeout in ms (default 120 000). */
  timeout?: number;
}

type Fn = () => unknown | Promise<unknown>;
let register: (name: string, fn: Fn, opts: TestOptions) => void;

if (RUNTIME === "deno") {
  register = (name, fn, opts) =>
    g.Deno!.test({
      name: opts.skip ? `${name} (skipped: ${opts.skip})` : name,
      ignore: Boolean(opts.skip),
      fn,
      sanitizeOps: false,
      sanitizeResources: false,
      sanitizeExit: false,
    });
} else if (RUNTIME === "bun") {
  const spec = "bun:test";
  const bt = await import(spec) as {
    test: ((n: string, f: Fn, t?: number) => void) & { skip: (n: string, f: Fn) => void };
  };
  register = (name, fn, opts) =>
    opts.skip ? bt.test.skip(`${name} (skipped: ${opts.skip})`, fn) : bt.test(name, fn, opts.timeout ?? 120_000);
} else {
  const nt = await import("node:test");
  register = (name, fn, opts) =>
    nt.test(name, { skip: opts.skip || false, timeout: opts.timeout ?? 120_000 }, fn as () => Promise<void>);
}

/**
 * How much of each crash/fuzz campaign this run does (SHMKIT_CAMPAIGN_SCALE, 0..1; 1 when unset).
 * `make test` (scripts/test_all.sh) sets 0.5 on the Deno, Bun and Node 24 legs, whose campaigns all
 * have children of every runtime (together 1.5 full campaigns), and 0.2 on the compatibility leg
 * (the machine's older Node). A smaller campaign still has to hit every fault point it covers.
 * `make stress` runs far larger campaigns.
 */
export const CAMPAIGN_SCALE: number = (() => {
  const v = Number(
    (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
      .SHMKIT_CAMPAIGN_SCALE ?? 1,
  );
  return Number.isFinite(v) && v > 0 && v <= 1 ? v : 1;
})();

/**
 * The runtimes a test that runs a tool or child "on every runtime" uses on this leg: all three
 * with SHMKIT_FULL_MATRIX=1, else the one after this leg's runtime (deno -> bun -> node -> deno):
 * the three legs of `make test` together still run each runtime's side once, and always against a
 * process of another runtime.
 */
export const PEER_RUNTIMES: Runtime[] = (() => {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
  if (env.SHMKIT_FULL_MATRIX === "1") return [...RUNTIMES];
  const order: Runtime[] = ["deno", "bun", "node"];
  return [order[(order.indexOf(RUNTIME) + 1) % 3]];
})();

/** `n` scaled by {@link CAMPAIGN_SCALE}, at least 1. */
export function campaign(n: number): number {
  return Math.max(1, Math.round(n * CAMPAIGN_SCALE));
}

/** Registers a test. Names read as facts: `"Ring.tryEnqueue returns false when full"`. */
export function test(name: string, fn: Fn, opts: TestOptions = {}): void {
  if (opts.skip) console.log(`skip: ${name}: ${opts.skip}`);
  register(name, fn, opts);
}

// ---------------------------------------------------------------------------------------------
// Paths and processes

/** A segment name unique to this process and call, for tests. */
export function uniqueName(prefix = "t"): string {
  const rnd = Math.floor(Math.random() * 0xffffffff).toString(16);
  return `shmkit-test-${prefix}-${(globalThis as { process?: { pid: number } }).process?.pid ?? 0}-${rnd}`;
}

/** What a finished child process did. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  env?: Record<string, string>;
  /** Kill the child (SIGKILL) after this many ms; default 60 000. */
  timeout?: number;
  input?: string;
}

/** Runs a command to completion and collects its output. */
export function run(cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0], cmd.slice(1), {
      env: { ...(globalThis as { process: { env: Record<string, string> } }).process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Uint8Array) => stdout += new TextDecoder().decode(d));
    child.stderr!.on("data", (d: Uint8Array) => stderr += new TextDecoder().decode(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeout ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.write(opts.input);
    child.stdin!.end();
  });
}

/** Runs `script` in `runtime` and throws with its output if it does not exit 0. */
export async function runScript(
  runtime: Runtime,
  script: string,
  opts: RunOptions & { args?: string[] } = {},
): Promise<RunResult> {
  const r = await run([...runtimeCommand(runtime, script), ...(opts.args ?? [])], opts);
  if (r.code !== 0) {
    throw new Error(`${runtime} ${script} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return r;
}

/** Runs Python code (`python3 -c`, the interpreter {@linkcode PYTHON}) and throws with its output if it fails. */
export async function runPython(code: string, opts: RunOptions & { args?: string[] } = {}): Promise<RunResult> {
  const r = await run([PYTHON, "-c", code, ...(opts.args ?? [])], opts);
  if (r.code !== 0) throw new Error(`python exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** A seeded PRNG (mulberry32); print the seed on failure so a run can be repeated. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
