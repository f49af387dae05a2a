// Other platforms, checked from Linux: `make cross` builds shmkit.dll with mingw-w64 (exports
// compared with build/libshmkit.so), runs a cross-process C smoke of the DLL under wine when wine
// is installed, and syntax-checks csrc/os_darwin.c against stub macOS headers. It runs once, from
// the Bun pass; the other passes skip with that reason.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { assert, assertEquals } from "./assert.ts";
import { ROOT, run, RUNTIME, test } from "./harness.ts";

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const root = (globalThis as unknown as { process: { getuid?: () => number } }).process.getuid?.() === 0;
const once = RUNTIME === "bun" ? false : "make cross runs once, from the Bun pass (it does not depend on the runtime)";
const mingw = has("x86_64-w64-mingw32-gcc") || (root && has("apt-get"))
  ? false
  : "x86_64-w64-mingw32-gcc is missing and cannot be installed here (needs root and apt-get)";
const wine = has("wine64") || existsSync("/usr/lib/wine/wine64")
  ? false
  : "wine64 is not installed (apt-get install wine64)";

let result: Promise<string> | undefined;
function makeCross(): Promise<string> {
  result ??= run(["make", "-s", "-C", ROOT, "cross"], { timeout: 600_000 }).then((r) => {
    const out = r.stdout + r.stderr;
    if (r.code !== 0) throw new Error(`make cross exited ${r.code ?? r.signal}:\n${out}`);
    return out;
  });
  return result;
}

function output(cmd: string[]): string {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

test("shmkit.dll (mingw-w64) exports exactly the shmkit_* symbols of the Linux library", async () => {
  const out = await makeCross();
  assert(/^cross: windows: ok /m.test(out), out);
  // Read both symbol tables here rather than trusting the Makefile's own comparison.
  const so = output(["nm", "-D", "--defined-only", `${ROOT}build/libshmkit.so`])
    .split("\n").map((l) => l.trim().split(/\s+/)[2]).filter((s): s is string => Boolean(s)).sort();
  const dump = output(["x86_64-w64-mingw32-objdump", "-p", `${ROOT}build/cross/shmkit.dll`]);
  const table = dump.slice(dump.indexOf("[Ordinal/Name Pointer] Table"));
  const dll = [...table.matchAll(/^\s*\[\s*\d+\]\s+(\S+)$/gm)].map((m) => m[1]).sort();
  assert(so.length > 40 && so.every((s) => s.startsWith("shmkit_")), `Linux exports: ${so.join(" ")}`);
  assertEquals(dll, so);
  const imports = [...dump.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]);
  assert(!imports.some((d) => /pthread|libgcc|stdc\+\+/i.test(d)), `only system DLLs are imported: ${imports}`);
}, { skip: once || mingw, timeout: 600_000 });

test("shmkit.dll shares sections, futex wakes and liveness between two processes under wine", async () => {
  const out = await makeCross();
  assert(/^cross: windows-run: ok under wine/m.test(out), out);
  assert(existsSync(`${ROOT}build/cross/wine_smoke.exe`));
}, { skip: once || mingw || wine, timeout: 600_000 });

test("csrc/os_darwin.c passes a syntax check against stub macOS headers", async () => {
  const out = await makeCross();
  assert(/^cross: macos: ok /m.test(out), out);
  // The stubs declare only Darwin-only names; the file must not depend on Linux-only headers.
  const src = readFileSync(`${ROOT}csrc/os_darwin.c`, "utf8");
  assert(!/#include <(linux\/|sys\/syscall\.h|sys\/sysmacros\.h)/.test(src), "no Linux headers in os_darwin.c");
}, { skip: once, timeout: 600_000 });
