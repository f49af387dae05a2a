#!/usr/bin/env -S deno run --allow-ffi --allow-read
/**
 * The shmkit command line: list, inspect, remove and garbage-collect shmkit objects in /dev/shm.
 *
 * ```sh
 * deno run --allow-ffi --allow-read cli.ts ls [--json] [--all]
 * bun cli.ts inspect NAME [--json]
 * node build/node/cli.js rm NAME... [--force]
 * deno run --allow-ffi --allow-read cli.ts gc [--dry-run] [--prefix P] [--json]
 * ```
 *
 * Exit codes: 0 success, 1 an object could not be found, read or removed, 2 a usage error.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = main(["--help"]); // prints the usage, returns 0
 * console.assert(code === 0);
 * ```
 *
 * @module
 */
import { readFileSync, realpathSync } from "node:fs";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { ShmError } from "./src/errors.ts";
import { describe, inspect, isoTime, listSegments, type SegmentInfo } from "./src/inspect.ts";
import { SharedMemory } from "./src/segment.ts";
import { cstr, sys } from "./src/sys.ts";

const SHM_DIR = "/dev/shm";

/** The shmkit version this CLI belongs to (tests/cli_test.ts checks it against package.json and deno.json). */
export const VERSION = "0.1.0";

const USAGE = `shmkit: inspect and clean up shared memory objects in ${SHM_DIR}

Usage:
  shmkit ls [--json] [--all]          list shmkit objects (--all: every segment, marking foreign ones)
  shmkit inspect NAME [--json]        print an object's header and live state
  shmkit rm NAME... [--force]         remove objects (--force: also segments that are not shmkit objects)
  shmkit gc [--dry-run] [--prefix P] [--json]
                                      remove shmkit objects that no live process has open or mapped
  shmkit --help                       this text
  shmkit --version                    the shmkit version

ls columns: kind, size in bytes, owner and mode of the file in ${SHM_DIR}, creator pid (and whether
it still runs), created time, and the live processes that still have it open or mapped ("in use").
ls --all also lists plain (non-shmkit) segments, so you can find what a program leaked and rm it.
--json prints typed fields: numbers, booleans, pid arrays, null where unknown.
gc never removes a segment a live process holds, nor one that is not a shmkit object.
Exit codes: 0 success, 1 an object could not be found, read or removed, 2 usage error.`;

class UsageError extends Error {}

function names(): string[] {
  return listSegments();
}

function safeDescribe(name: string): SegmentInfo | undefined {
  try {
    return describe(name);
  } catch (e) {
    if (e instanceof ShmError && e.code === "ENOENT") return undefined; // removed meanwhile
    throw e;
  }
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : pad(c, widths[i]))).join("  ").trimEnd()).join("\n");
}

/** Owner and permissions of /dev/shm/<name> (null where it cannot be read, e.g. Deno without --allow-read). */
function ownership(name: string): { uid: number | null; owner: string | null; mode: string | null } {
  // Natively (fstatat in libshmkit): Deno asks for --allow-all before node:fs may stat anything in /dev.
  const st = new Float64Array(8); // size, mode, uid, gid, ino, dev, nlink, regular
  if (sys.shmkit_stat(cstr(`${SHM_DIR}/${name}`), new Uint8Array(st.buffer)) < 0) {
    return { uid: null, owner: null, mode: null };
  }
  return { uid: st[2], owner: userName(st[2]), mode: "0" + (st[1] & 0o777).toString(8).padStart(3, "0") };
}

let passwd: Map<number, string> | undefined;
function userName(uid: number): string | null {
  if (passwd === undefined) {
    passwd = new Map();
    try {
      for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
        const f = line.split(":");
        if (f.length > 2 && /^\d+$/.test(f[2])) passwd.set(Number(f[2]), f[0]);
      }
    } catch { /* no names: uid only */ }
  }
  return passwd.get(uid) ?? null;
}

function asJson(i: SegmentInfo): Record<string, unknown> {
  return {
    name: i.name,
    shmkit: i.shmkit,
    kind: i.kind ?? null,
    size: i.size,
    ...ownership(i.name),
    creatorPid: i.header?.creatorPid ?? null,
    creatorAlive: i.creatorAlive ?? null,
    created: i.header ? isoTime(i.header.createdMs) : null,
    state: i.header ? (i.header.state === 1 ? "ready" : "initializing") : null,
    holders: i.holders,
    inUse: i.inUse,
    ...(i.error ? { error: i.error } : {}),
  };
}

function ls(flags: Set<string>, print: (s: string) => void): number {
  const all = flags.has("--all");
  const infos = names().map(safeDescribe).filter((i): i is SegmentInfo => i !== undefined && (all || i.shmkit));
  if (flags.has("--json")) {
    print(JSON.stringify(infos.map(asJson), null, 2));
    return 0;
  }
  if (infos.length === 0) {
    print(all ? `no segments in ${SHM_DIR}` : `no shmkit objects in ${SHM_DIR}`);
    return 0;
  }
  const rows = [["NAME", "KIND", "SIZE", "OWNER", "MODE", "CREATOR", "CREATED", "IN USE"]];
  for (const i of infos) {
    const o = ownership(i.name);
    rows.push([
      i.name,
      i.shmkit ? i.kind! : i.error ? "(unreadable)" : "(not shmkit)",
      i.size < 0 ? "?" : String(i.size),
      o.owner ?? (o.uid === null ? "?" : String(o.uid)),
      o.mode ?? "?",
      i.header ? `${i.header.creatorPid} ${i.creatorAlive ? "alive" : "dead"}` : "-",
      (i.header ? isoTime(i.header.createdMs) : null) ?? "-",
      i.inUse ? `yes (${i.holders.join(",")})` : "no",
    ]);
  }
  print(table(rows));
  return 0;
}

function inspectCmd(args: string[], flags: Set<string>, print: (s: string) => void, err: (s: string) => void): number {
  if (args.length !== 1) throw new UsageError("inspect takes exactly one NAME");
  const name = args[0].replace(/^\//, "");
  let d;
  try {
    d = inspect(name);
  } catch (e) {
    if (e instanceof ShmError && e.code === "ENOENT") {
      err(`shmkit inspect: no segment named "${name}" in ${SHM_DIR}`);
      return 1;
    }
    throw e;
  }
  if (d === undefined) {
    err(`shmkit inspect: "${name}" is not a shmkit object (no shmkit header)`);
    return 1;
  }
  if (flags.has("--json")) print(JSON.stringify(Object.fromEntries(d), null, 2));
  else {
    const text = (k: string, v: unknown): string =>
      Array.isArray(v)
        ? (v.length === 0 ? "none" : v.join(", "))
        : v === null
        ? (k === "created" ? "unknown" : "-")
        : String(v);
    print(table(d.map(([k, v]) => [k + ":", text(k, v)])));
  }
  return 0;
}

function rm(args: string[], flags: Set<string>, print: (s: string) => void, err: (s: string) => void): number {
  if (args.length === 0) throw new UsageError("rm needs at least one NAME");
  let status = 0;
  for (const raw of args) {
    const name = raw.replace(/^\//, "");
    try {
      const info = safeDescribe(name);
      if (!info) {
        err(`shmkit rm: no segment named "${name}" in ${SHM_DIR}`);
        status = 1;
        continue;
      }
      if (!info.shmkit && !flags.has("--force")) {
        err(`shmkit rm: "${name}" is not a shmkit object; not removed (use --force to remove it anyway)`);
        status = 1;
        continue;
      }
      if (!SharedMemory.unlink(name)) {
        err(`shmkit rm: no segment named "${name}" in ${SHM_DIR}`);
        status = 1;
        continue;
      }
      print(`removed ${name}${info.inUse ? ` (still mapped by ${info.holders.join(", ")}; they keep working)` : ""}`);
    } catch (e) {
      err(`shmkit rm: ${(e as Error).message}`);
      status = 1;
    }
  }
  return status;
}

function gc(flags: Set<string>, prefix: string, print: (s: string) => void, err: (s: string) => void): number {
  const dry = flags.has("--dry-run");
  const removed: string[] = [];
  const kept: string[] = [];
  let status = 0;
  for (const name of names()) {
    if (!name.startsWith(prefix)) continue;
    let info;
    try {
      info = safeDescribe(name);
    } catch (e) {
      err(`shmkit gc: skipping "${name}": ${(e as Error).message}`);
      continue;
    }
    if (!info || !info.shmkit) continue; // foreign segments are never touched
    if (info.inUse || info.error) {
      kept.push(name);
      continue;
    }
    if (!dry) {
      // Re-check right before removing: a process may have opened it meanwhile.
      const again = safeDescribe(name);
      if (!again || again.inUse) {
        kept.push(name);
        continue;
      }
      try {
        SharedMemory.unlink(name);
      } catch (e) {
        err(`shmkit gc: cannot remove "${name}": ${(e as Error).message}`);
        status = 1;
        continue;
      }
    }
    removed.push(name);
  }
  if (flags.has("--json")) print(JSON.stringify({ dryRun: dry, removed, kept }, null, 2));
  else {
    for (const n of removed) print(`${dry ? "would remove" : "removed"} ${n}`);
    print(`${removed.length} ${dry ? "to remove" : "removed"}, ${kept.length} in use kept`);
  }
  return status;
}

/**
 * Runs the command line with `argv` (without the runtime and script) and returns the exit code.
 *
 * @param argv the arguments, e.g. `["ls", "--json"]`
 * @param print where normal output goes (default: stdout)
 * @param err where errors go (default: stderr)
 * @returns the exit code: 0 success, 1 failure, 2 usage error
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const lines: string[] = [];
 * main(["ls", "--json"], (s) => lines.push(s));
 * console.assert(Array.isArray(JSON.parse(lines.join("\n"))));
 * ```
 */
export function main(
  argv: string[],
  print: (s: string) => void = (s) => console.log(s),
  err: (s: string) => void = (s) => console.error(s),
): number {
  const flags = new Set<string>();
  const args: string[] = [];
  let prefix = "";
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === "--prefix") {
        if (i + 1 >= argv.length) throw new UsageError("--prefix needs a value");
        prefix = argv[++i];
      } else if (a.startsWith("--prefix=")) prefix = a.slice(9);
      else if (a === "-h" || a === "--help" || a.startsWith("--")) flags.add(a === "-h" ? "--help" : a);
      else args.push(a);
    }
    const cmd = args.shift();
    if (flags.has("--version") || cmd === "version") {
      print(`shmkit ${VERSION}`);
      return 0;
    }
    if (flags.has("--help") || cmd === "help") {
      print(USAGE);
      return 0;
    }
    const allowed: Record<string, string[]> = {
      ls: ["--json", "--all"],
      inspect: ["--json"],
      rm: ["--force"],
      gc: ["--dry-run", "--json"],
    };
    if (cmd === undefined) throw new UsageError("missing command");
    if (!(cmd in allowed)) throw new UsageError(`unknown command "${cmd}"`);
    for (const f of flags) if (!allowed[cmd].includes(f)) throw new UsageError(`${cmd} does not take ${f}`);
    if (prefix && cmd !== "gc") throw new UsageError(`${cmd} does not take --prefix`);
    switch (cmd) {
      case "ls":
        if (args.length) throw new UsageError("ls takes no NAME");
        return ls(flags, print);
      case "inspect":
        return inspectCmd(args, flags, print, err);
      case "rm":
        return rm(args, flags, print, err);
      default:
        if (args.length) throw new UsageError("gc takes no NAME (use --prefix)");
        return gc(flags, prefix, print, err);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`shmkit: ${e.message}\nRun "shmkit --help" for usage.`);
      return 2;
    }
    err(`shmkit: ${(e as Error).message}`);
    return 1;
  }
}

/** True when this module is the program (also when started through a symlink such as npm's bin link). */
function isMainModule(): boolean {
  const flag = (import.meta as { main?: boolean }).main;
  if (flag !== undefined) return flag;
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

const self = isMainModule();
if (self) process.exitCode = main(process.argv.slice(2));
