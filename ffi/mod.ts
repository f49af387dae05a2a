/**
 * The only module that knows which runtime runs: it detects Deno, then Bun, then Node, locates (or
 * builds) `libshmkit`, and exports one {@linkcode Backend}.
 *
 * Loading is synchronous (no top-level await), so `require("shmkit")` works from CommonJS on Node
 * >= 20.19 / 22.12: the Deno backend is a static import (it only touches `Deno` inside functions),
 * the Bun and Node backends are `require`d through `process.getBuiltinModule("node:module")`, which
 * keeps `bun:ffi` and `koffi` out of Deno's module graph (a Deno user type-checks only ffi/deno.ts).
 *
 * Library search order:
 *  1. `SHMKIT_LIB` (a path to libshmkit.so); when set and it cannot be loaded, that is an ENOLIB
 *     error naming the path (no other copy is tried);
 *  2. `build/libshmkit.so` of this checkout (`make`);
 *  3. the prebuilt copy shipped in the package (`prebuilt/<os>-<arch>/`);
 *  4. `csrc/` compiled with `$CC` (default `cc`) into a cache directory: `$SHMKIT_CACHE_DIR`, else
 *     `$XDG_CACHE_HOME/shmkit`, else `~/.cache/shmkit` (macOS `~/Library/Caches/shmkit`, Windows
 *     `%LOCALAPPDATA%/shmkit/cache`). When this module was imported from a URL (JSR, deno.land),
 *     the csrc/ files are fetched over HTTP(S) next to it first (Deno only: by a `deno eval` child,
 *     so the fetch is synchronous; that path needs `--allow-run`, as the compiler does).
 *
 * @module
 */
import type { Backend, Runtime } from "./types.ts";
import { ShmError } from "../src/errors.ts";
import { open as openDeno } from "./deno.ts";

export type { Backend, Runtime } from "./types.ts";

const g = globalThis as unknown as {
  Deno?: {
    version?: { deno?: string };
    build?: { os: string; arch: string };
    permissions?: { querySync(d: { name: "env"; variable: string }): { state: string } };
    env?: { get(name: string): string | undefined };
  };
  Bun?: unknown;
  process?: {
    versions?: { node?: string; bun?: string };
    getBuiltinModule?: (id: string) => unknown;
    execPath?: string;
    platform?: string;
    arch?: string;
    env?: Record<string, string | undefined>;
  };
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

/**
 * An environment variable that never asks for a permission: on Deno it is read only when env access
 * to it is already granted (README: `--allow-env=SHMKIT_LIB` is the only grant shmkit asks for);
 * elsewhere as {@linkcode getEnv}.
 */
function quietEnv(name: string): string | undefined {
  const d = g.Deno;
  if (d?.permissions === undefined || d.env === undefined) return getEnv(name);
  try {
    return d.permissions.querySync({ name: "env", variable: name }).state === "granted" ? d.env.get(name) : undefined;
  } catch {
    return undefined;
  }
}

/** A Node built-in module (`node:fs`, ...), synchronously: Node >= 20.16, Bun and Deno have getBuiltinModule. */
function builtin<T>(id: string): T {
  const m = g.process?.getBuiltinModule?.(id) as T | undefined;
  if (m === undefined) {
    throw new ShmError("ENOTSUP", `shmkit needs process.getBuiltinModule("${id}") (Node >= 20.16, Bun, Deno 2)`);
  }
  return m;
}

type NodeFs = typeof import("node:fs");
type Require = (id: string) => unknown;

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

/** Candidate library paths next to this module, in search order (after `SHMKIT_LIB`, before the compile step). */
export function libraryCandidates(): string[] {
  const name = libName();
  const out: string[] = [];
  for (
    const rel of [
      `../build/${name}`,
      `../../${name}`,
      `../prebuilt/${platformTag()}/${name}`,
      `../../../prebuilt/${platformTag()}/${name}`,
    ]
  ) {
    const p = here(rel);
    if (p) out.push(p);
  }
  return out;
}

/** The C files every platform compiles (csrc/), before its own os_<platform>.c. */
const PORTABLE_C = ["shmkit.c", "ops.c", "ops_sync.c", "ops_log.c", "ops_heap.c", "ops_chan.c"];
/** The headers they include. */
const HEADERS = ["shmkit.h", "os.h", "shmkit_layout.h", "ops_common.h"];

/** A platform's sources: `files` must all be present, `objects` are compiled. */
function platformSources(os: string, extra: string[] = []): { files: string[]; objects: string[] } {
  const objects = [...PORTABLE_C, `os_${os}.c`];
  return { files: [...objects, ...HEADERS, ...extra], objects };
}

/** The C sources of each platform (csrc/), and how `cc` links them into a shared library. */
const SOURCES: Record<string, { files: string[]; objects: string[]; flags: (dir: string) => string[] }> = {
  linux: {
    ...platformSources("linux", ["exports.map"]),
    flags: (dir) => ["-shared", `-Wl,--version-script=${dir}exports.map`, "-Wl,-z,nodelete"], // as the Makefile
  },
  darwin: { ...platformSources("darwin"), flags: () => ["-dynamiclib"] },
  windows: {
    ...platformSources("windows"),
    // winpthreads linked in statically, so the DLL needs nothing beside it.
    flags: () => ["-shared", "-static", "-lpthread"],
  },
};

function osName(): string {
  const os = g.Deno?.build?.os ?? g.process?.platform ?? "unknown";
  return os === "win32" ? "windows" : os;
}

function cacheRoot(home: string): string {
  const override = getEnv("SHMKIT_CACHE_DIR");
  if (override) return override;
  const xdg = getEnv("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/shmkit`;
  const os = osName();
  if (os === "windows") return `${getEnv("LOCALAPPDATA") ?? home}/shmkit/cache`;
  if (os === "darwin") return `${home}/Library/Caches/shmkit`;
  return `${home}/.cache/shmkit`;
}

/**
 * Fetches `urls` synchronously: a `deno eval` child (it has every permission) prints each body as
 * base64. Only Deno imports modules from URLs, so only Deno gets here; this needs `--allow-run`.
 */
function fetchSync(urls: URL[], tried: string[]): Uint8Array[] | undefined {
  const cp = builtin<typeof import("node:child_process")>("node:child_process");
  const exe = g.process?.execPath ?? "deno";
  const code = `const out = [];
for (const u of JSON.parse(Deno.args[0])) {
  const res = await fetch(u);
  if (!res.ok) { console.log(JSON.stringify({ error: u + ": HTTP " + res.status + " " + res.statusText })); Deno.exit(0); }
  const b = new Uint8Array(await res.arrayBuffer());
  let s = ""; for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  out.push(btoa(s));
}
console.log(JSON.stringify({ files: out }));`;
  try {
    const stdout = cp.execFileSync(exe, ["eval", "--quiet", code, JSON.stringify(urls.map((u) => u.href))], {
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 << 20,
      timeout: 120_000,
    });
    const res = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").pop()!) as {
      error?: string;
      files?: string[];
    };
    if (res.error || !res.files) {
      tried.push(`fetch ${res.error ?? "(no answer)"}`);
      return undefined;
    }
    return res.files.map((b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  } catch (e) {
    const err = e as Error & { stderr?: Uint8Array };
    const detail = err.stderr?.length ? new TextDecoder().decode(err.stderr).trim().split("\n")[0] : "";
    tried.push(`fetch ${urls[0]?.href ?? ""} ...: ${err.message.split("\n")[0]}${detail ? ` (${detail})` : ""}`);
    return undefined;
  }
}

/**
 * Reads the C sources next to this module: from disk, or over HTTP(S) when this module was
 * imported from a remote URL (JSR, deno.land, a web server). Returns file name -> bytes.
 */
function readSources(files: string[], tried: string[]): Map<string, Uint8Array> | undefined {
  const out = new Map<string, Uint8Array>();
  const base = new URL("../csrc/", import.meta.url);
  if (base.protocol === "http:" || base.protocol === "https:") {
    const bodies = fetchSync(files.map((f) => new URL(f, base)), tried);
    if (!bodies) return undefined;
    files.forEach((f, i) => out.set(f, bodies[i]));
    return out;
  }
  const fs = builtin<NodeFs>("node:fs");
  const dirs = [here("../csrc/"), here("../../../csrc/")].filter((d): d is string => d !== undefined);
  const dir = dirs.find((d) => files.every((f) => fs.existsSync(d + f)));
  if (!dir) {
    tried.push(`csrc/ sources (${files.join(", ")}): not found in ${dirs.join(" or ") || "(no local directory)"}`);
    return undefined;
  }
  for (const f of files) out.set(f, fs.readFileSync(dir + f));
  return out;
}

/**
 * Compiles csrc/ with `$CC` (default `cc`) into the cache directory and returns the library path.
 * The sources are copied into the cache first (fetched when this module is remote); the output
 * directory is keyed by platform and a hash of the sources, so an upgrade builds a fresh copy.
 */
function compileIntoCache(tried: string[]): string | undefined {
  const set = SOURCES[osName()];
  if (!set) {
    tried.push(`compile csrc/: no C sources for platform ${platformTag()}`);
    return undefined;
  }
  const sources = readSources(set.files, tried);
  if (!sources) return undefined;
  const cc = getEnv("CC") || "cc";
  let outDir = "";
  try {
    const fs = builtin<NodeFs>("node:fs");
    const os = builtin<typeof import("node:os")>("node:os");
    const cp = builtin<typeof import("node:child_process")>("node:child_process");
    let hash = 0x811c9dc5;
    for (const f of set.files) {
      for (const b of sources.get(f)!) hash = Math.imul(hash ^ b, 16777619) >>> 0;
    }
    outDir = `${cacheRoot(os.homedir())}/${platformTag()}-${hash.toString(16)}`;
    const out = `${outDir}/${libName()}`;
    if (fs.existsSync(out)) return out;
    const pid = g.process && "pid" in g.process ? (g.process as { pid: number }).pid : 0;
    const srcDir = `${outDir}/src.${pid}/`;
    fs.mkdirSync(srcDir, { recursive: true, mode: 0o700 });
    for (const [f, bytes] of sources) fs.writeFileSync(srcDir + f, bytes);
    const tmp = `${out}.${pid}.tmp`;
    try {
      cp.execFileSync(cc, [
        "-O2",
        "-std=c11",
        "-fPIC",
        "-fvisibility=hidden",
        "-pthread",
        "-o",
        tmp,
        ...set.objects.map((f) => srcDir + f),
        ...set.flags(srcDir),
      ], { stdio: "pipe" });
      fs.renameSync(tmp, out); // atomic: concurrent first uses each build, one rename wins
    } finally {
      fs.rmSync(srcDir, { recursive: true, force: true });
      fs.rmSync(tmp, { force: true });
    }
    return out;
  } catch (e) {
    const err = e as Error & { code?: string; stderr?: Uint8Array };
    const where = outDir ? ` into ${outDir}` : "";
    if (err.code === "ENOENT" && /spawn/i.test(err.message)) {
      tried.push(`compile csrc/${where}: the C compiler \`${cc}\`${getEnv("CC") ? " (from $CC)" : ""} was not found`);
    } else {
      const detail = err.stderr?.length
        ? new TextDecoder().decode(err.stderr).trim().split("\n").slice(0, 3).join(" | ")
        : "";
      tried.push(`compile csrc/${where} with \`${cc}\`: ${err.message.split("\n")[0]}${detail ? ` (${detail})` : ""}`);
    }
    return undefined;
  }
}

/** `require` relative to this module (Bun and Node backends; both runtimes require ES modules synchronously). */
function requireHere(): Require {
  return builtin<{ createRequire(url: string): Require }>("node:module").createRequire(import.meta.url);
}

function openBackend(runtime: Runtime, path: string): Backend {
  if (runtime === "deno") return openDeno(path);
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  let mod: { open(path: string): Backend };
  try {
    mod = requireHere()(`./${runtime}${ext}`) as { open(path: string): Backend };
  } catch (e) {
    // `bun build --compile` bundles this module into the executable's entry (/$bunfs/root/<app>),
    // and the backend, which no bundler can see behind this computed require, is an extra
    // entrypoint there, placed relative to --root: `bun build --compile --root . app.ts
    // ffi/bun.ts ffi/bun_waiter.ts` (a checkout), or node_modules/shmkit/ffi/bun.js and
    // bun_waiter.js (an npm install). See docs/platforms.md.
    if (!import.meta.url.startsWith("file:///$bunfs/")) throw e;
    let found: { open(path: string): Backend } | undefined;
    for (const spec of [`./ffi/${runtime}.js`, `./node_modules/shmkit/ffi/${runtime}.js`]) {
      try {
        found = requireHere()(spec) as { open(path: string): Backend };
        break;
      } catch { /* next */ }
    }
    if (!found) {
      throw new Error(
        `${(e as Error).message} (in a bun build --compile executable, add the backend as entrypoints: ` +
          "--root . app.ts ffi/bun.ts ffi/bun_waiter.ts)",
      );
    }
    mod = found;
  }
  return mod.open(path);
}

function permissionError(e: unknown): ShmError | undefined {
  const msg = (e as Error).message ?? String(e);
  if ((e as Error).name === "NotCapable" || /allow-ffi|Requires ffi/i.test(msg)) {
    return new ShmError("ENOLIB", `shmkit needs FFI permission: run Deno with --allow-ffi (${msg})`, { cause: e });
  }
  return undefined;
}

function load(): Backend {
  const runtime = detectRuntime();
  const tried: string[] = [];
  const env = getEnv("SHMKIT_LIB");
  if (env) {
    // An explicit choice: a library that cannot be loaded is an error, never a silent fallback.
    try {
      return openBackend(runtime, env);
    } catch (e) {
      throw permissionError(e) ?? new ShmError(
        "ENOLIB",
        `shmkit could not load SHMKIT_LIB=${env}: ${((e as Error).message ?? String(e)).split("\n")[0]}\n` +
          `Fix: point SHMKIT_LIB at a built ${libName()} (\`make\` writes build/${libName()}), or unset it.`,
        { cause: e },
      );
    }
  }
  for (const path of libraryCandidates()) {
    try {
      return openBackend(runtime, path);
    } catch (e) {
      const denied = permissionError(e);
      if (denied) throw denied;
      tried.push(`${path}: ${((e as Error).message ?? String(e)).split("\n")[0]}`);
    }
  }
  const built = compileIntoCache(tried);
  if (built) {
    try {
      return openBackend(runtime, built);
    } catch (e) {
      tried.push(`${built}: ${(e as Error).message}`);
    }
  }
  throw new ShmError(
    "ENOLIB",
    `shmkit could not load its native library libshmkit. Tried:\n  ${tried.join("\n  ")}\n` +
      `Fix: set SHMKIT_LIB=/path/to/${libName()}, or run \`make\` in the shmkit checkout, or install a C ` +
      "compiler (`cc`, e.g. `apt-get install gcc`; or set CC) so shmkit can build csrc/ on first use.",
  );
}

/** The loaded backend for this process. */
export const native: Backend = load();

/**
 * Payloads of at most this many bytes are copied into shared memory by a loop of 4-byte stores
 * instead of `TypedArray.prototype.set` (src/copy.ts): 16 on every runtime, where the call costs
 * more than the loop. Bun used the loop up to 64 bytes until 2026-12-02 (it had doubled its
 * cross-process 64-byte log rate, 11.5 -> 23 M records/s, in interleaved runs); paired runs on
 * the same Bun 1.4.5 now put `set` ahead (S10 64 B 42-45 vs 30-43 M/s, S2 message API
 * spsc-ordered 19-22 vs 12-18 M/s; what changed is not known).
 * `SHMKIT_LOOP_COPY_MAX=<bytes>` overrides it.
 */
export const loopCopyMax: number = (() => {
  const v = Number(quietEnv("SHMKIT_LOOP_COPY_MAX") ?? NaN);
  if (Number.isInteger(v) && v >= 0) return v;
  return 16;
})();

/**
 * True on x86-64 (every runtime): an spsc-ordered Channel sender and an spsc MessageLog writer
 * publish their tail, and an spsc-ordered Channel receiver its head, with a plain typed-array
 * store, which x86 keeps after the process's earlier stores (a release store), instead of
 * `Atomics.store`, a seq_cst `xchg` that waits for those stores' cache lines and was most of a
 * sender's time across processes (a profile of bench S2). The wake check after it may then read
 * the peer's waiter count before the store is visible to a peer registering right then, so the
 * peers parked on those counters make the first wait of each park short (src/wait.ts
 * futexWaitShortFirst; docs/layout/channel.md and docs/layout/log.md "Waiting").
 * `SHMKIT_PLAIN_PUBLISH=0` turns it off.
 */
export const plainPublish: boolean = platformTag().endsWith("-x64") && quietEnv("SHMKIT_PLAIN_PUBLISH") !== "0";

/**
 * True on x86-64 (every runtime): the wake check that follows this thread's own `Atomics` store or
 * read-modify-write (src/wait.ts `readFlag`) reads the peer's waiter word with a plain typed-array
 * read, ordered there as `Atomics.load` would be: the `Atomics` operation before it is an `xchg` or
 * a `lock`-prefixed instruction (a full barrier on x86), and neither JIT moves a later load above
 * it. JavaScriptCore (Bun) compiles `Atomics.load` to `lock xadd 0`, which took the peer's cache
 * line exclusive on every message (a `Fence` effect in B3, checked in its FTL dump); V8 (Deno,
 * Node) calls a builtin for every `Atomics` operation on a non-shared typed array (checked in
 * `--print-opt-code` of Node 20, Node 24 and Deno: `call AtomicsCompareExchange`, the plain load
 * after it), ~10 ns per call: a Mempool get+put pair went 30.6-32.4 -> 34.5-37.1 M/s on Deno (bench S6,
 * one process, three paired runs). Other CPUs need the real acquire. `SHMKIT_PLAIN_FLAG_READS=0`
 * turns it off.
 */
export const plainFlagReads: boolean = platformTag().endsWith("-x64") &&
  quietEnv("SHMKIT_PLAIN_FLAG_READS") !== "0";

const abi = native.symbols.shmkit_abi_version();
if (abi !== 1) {
  throw new ShmError(
    "ENOLIB",
    `libshmkit at ${native.libraryPath} has ABI version ${abi}, this shmkit needs 1: rebuild it (make)`,
  );
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
