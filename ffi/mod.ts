/**
 * The only module that knows which runtime runs: it detects Deno, then Bun, then Node, locates (or
 * builds) `libshmkit`, and exports one {@linkcode Backend}.
 *
 * Library search order:
 *  1. `SHMKIT_LIB` (a path to libshmkit.so);
 *  2. `build/libshmkit.so` of this checkout (`make`);
 *  3. the prebuilt copy shipped in the package (`prebuilt/<os>-<arch>/`);
 *  4. `csrc/` compiled with `cc` into a cache directory (`$XDG_CACHE_HOME/shmkit` or `~/.cache/shmkit`).
 *
 * @module
 */
import type { Backend, Runtime } from "./types.ts";
import { ShmError } from "../src/errors.ts";

export type { Backend, Runtime } from "./types.ts";

const g = globalThis as unknown as {
  Deno?: { version?: { deno?: string }; build?: { os: string; arch: string } };
  Bun?: unknown;
  process?: { versions?: { node?: string; bun?: string }; platform?: string; arch?: string; env?: Record<string, string | undefined> };
};

/** Detects the runtime: Deno first (it also has `process`), then Bun (it also has `process.versions.node`). */
export function detectRuntime(): Runtime {
  if (g.Deno?.version?.deno) return "deno";
  if (g.Bun !== undefined || g.process?.versions?.bun) return "bun";
  if (g.process?.versions?.node) return "node";
  throw new ShmError("ENOTSUP", "shmkit runs on Deno, Bun or Node; this runtime is none of them");
}

/** Reads an environment variable, or undefined when it is unset or not permitted (Deno without --allow-env). */
export function getEnv(name: string): string | undefined {
  try {
    return g.process?.env?.[name];
  } catch {
    return undefined;
  }
}

function platformTag(): string {
  const os = g.Deno?.build?.os ?? g.process?.platform ?? "unknown";
  const arch = g.Deno?.build?.arch ?? g.process?.arch ?? "unknown";
  const a = arch === "x86_64" || arch === "x64" ? "x64" : arch === "aarch64" || arch === "arm64" ? "arm64" : arch;
  return `${os}-${a}`;
}

function libName(): string {
  const os = g.Deno?.build?.os ?? g.process?.platform;
  return os === "darwin" ? "libshmkit.dylib" : os === "windows" || os === "win32" ? "shmkit.dll" : "libshmkit.so";
}

function here(rel: string): string | undefined {
  const url = new URL(rel, import.meta.url);
  return url.protocol === "file:" ? decodeURIComponent(url.pathname) : undefined;
}

/** Candidate library paths, in search order (without the compile step). */
export function libraryCandidates(): string[] {
  const name = libName();
  const out: string[] = [];
  const env = getEnv("SHMKIT_LIB");
  if (env) out.push(env);
  for (const rel of [`../build/${name}`, `../../${name}`, `../prebuilt/${platformTag()}/${name}`, `../../../prebuilt/${platformTag()}/${name}`]) {
    const p = here(rel);
    if (p) out.push(p);
  }
  return out;
}

async function compileIntoCache(tried: string[]): Promise<string | undefined> {
  const csrc = here("../csrc/") ?? here("../../../csrc/");
  if (!csrc) return undefined;
  try {
    const fs = await import("node:fs");
    const os = await import("node:os");
    const cp = await import("node:child_process");
    let dir = csrc;
    if (!fs.existsSync(dir + "shmkit.c")) dir = here("../../../csrc/") ?? dir;
    if (!fs.existsSync(dir + "shmkit.c")) return undefined;
    const files = ["shmkit.c", "os_linux.c", "shmkit.h", "os.h", "exports.map"];
    let hash = 0;
    for (const f of files) {
      for (const b of fs.readFileSync(dir + f)) hash = (Math.imul(hash, 31) + b) >>> 0;
    }
    const cacheRoot = getEnv("XDG_CACHE_HOME") ?? `${os.homedir()}/.cache`;
    const outDir = `${cacheRoot}/shmkit/${platformTag()}-${hash.toString(16)}`;
    const out = `${outDir}/${libName()}`;
    if (fs.existsSync(out)) return out;
    fs.mkdirSync(outDir, { recursive: true, mode: 0o700 });
    const tmp = `${out}.${g.process && "pid" in g.process ? (g.process as { pid: number }).pid : 0}.tmp`;
    cp.execFileSync(getEnv("CC") ?? "cc", [
      "-O2", "-std=c11", "-fPIC", "-fvisibility=hidden", "-pthread", "-shared", "-o", tmp,
      dir + "shmkit.c", dir + "os_linux.c", `-Wl,--version-script=${dir}exports.map`,
    ], { stdio: "pipe" });
    fs.renameSync(tmp, out);
    return out;
  } catch (e) {
    tried.push(`compile csrc/ with cc: ${(e as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

async function openBackend(runtime: Runtime, path: string): Promise<Backend> {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const mod = await import(`./${runtime}${ext}`) as { open(path: string): Backend };
  return mod.open(path);
}

async function load(): Promise<Backend> {
  const runtime = detectRuntime();
  const tried: string[] = [];
  for (const path of libraryCandidates()) {
    try {
      return await openBackend(runtime, path);
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if ((e as Error).name === "NotCapable" || /allow-ffi|Requires ffi/i.test(msg)) {
        throw new ShmError("ENOLIB", `shmkit needs FFI permission: run Deno with --allow-ffi (${msg})`, { cause: e });
      }
      tried.push(`${path}: ${msg.split("\n")[0]}`);
    }
  }
  const built = await compileIntoCache(tried);
  if (built) {
    try {
      return await openBackend(runtime, built);
    } catch (e) {
      tried.push(`${built}: ${(e as Error).message}`);
    }
  }
  throw new ShmError(
    "ENOLIB",
    `shmkit could not load its native library libshmkit. Tried:\n  ${tried.join("\n  ")}\n` +
      "Fix: set SHMKIT_LIB=/path/to/libshmkit.so, or run `make` in the shmkit checkout, or install a C " +
      "compiler (`cc`, e.g. `apt-get install gcc`) so shmkit can build csrc/ on first use.",
  );
}

/** The loaded backend for this process. */
export const native: Backend = await load();

const abi = native.symbols.shmkit_abi_version();
if (abi !== 1) {
  throw new ShmError("ENOLIB", `libshmkit at ${native.libraryPath} has ABI version ${abi}, this shmkit needs 1: rebuild it (make)`);
}

const errnoNames = new Map<number, string>();
const scratch = new Uint8Array(256);

/** The errno name (`"ENOENT"`) of a negative return value or a positive errno. */
export function errnoName(err: number): string {
  const e = Math.abs(err);
  let name = errnoNames.get(e);
  if (name === undefined) {
    const n = native.symbols.shmkit_errno_name(e, scratch, scratch.length);
    name = new TextDecoder().decode(scratch.subarray(0, n));
    errnoNames.set(e, name);
  }
  return name;
}

/** The OS message of an errno (`"No such file or directory"`). */
export function errnoMessage(err: number): string {
  const n = native.symbols.shmkit_strerror(Math.abs(err), scratch, scratch.length);
  return new TextDecoder().decode(scratch.subarray(0, n));
}

/** A NUL-terminated UTF-8 copy of `s` for C string parameters. */
export function cstr(s: string): Uint8Array {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
