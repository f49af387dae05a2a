// The C library under AddressSanitizer + UndefinedBehaviorSanitizer: csrc/test/hostile.c calls
// every exported function with hostile arguments (NULL pointers, NaN/negative/huge doubles,
// INT32_MIN, stale ids, a FIFO and a symlink squatting a name) and checks each returns its error.
import { assert } from "./assert.ts";
import { ROOT, run, RUNTIME, test } from "./harness.ts";
import { readFileSync } from "node:fs";

const header = readFileSync(`${ROOT}csrc/shmkit.h`, "utf8");
const harness = readFileSync(`${ROOT}csrc/test/hostile.c`, "utf8");

test("csrc/test/hostile.c calls every function csrc/shmkit.h exports", () => {
  const exported = [...header.matchAll(/SHMKIT_API\s+[\w ]+?\*?\s*(shmkit_\w+)\s*\(/g)].map((m) => m[1]);
  assert(exported.length > 50, `found only ${exported.length} exports in shmkit.h`);
  const missing = exported.filter((name) => !new RegExp(`\\b${name}\\(`).test(harness));
  assert(missing.length === 0, `hostile.c never calls: ${missing.join(", ")}`);
});

const flags = [
  "-g",
  "-O1",
  "-std=c11",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-pthread",
  "-fsanitize=address,undefined",
  "-fno-sanitize-recover=all",
  "-fno-omit-frame-pointer",
];

// Does this compiler have the sanitizers (their runtimes too)? A trivial program tells.
const probe = await run(["sh", "-c", `printf 'int main(void){return 0;}' | cc ${flags.join(" ")} -x c -o /dev/null -`]);
const noSanitizers = probe.code === 0
  ? false
  : `cc cannot build with -fsanitize=address,undefined: ${probe.stderr.trim()}`;

test("every exported C function survives hostile arguments under ASan + UBSan", async () => {
  const out = `${ROOT}build/asan/hostile-${RUNTIME}`;
  await run(["mkdir", "-p", `${ROOT}build/asan`]);
  const cc = await run([
    "cc",
    ...flags,
    "-o",
    out,
    `${ROOT}csrc/test/hostile.c`,
    `${ROOT}csrc/shmkit.c`,
    `${ROOT}csrc/ops.c`,
    `${ROOT}csrc/ops_sync.c`,
    `${ROOT}csrc/ops_log.c`,
    `${ROOT}csrc/ops_heap.c`,
    `${ROOT}csrc/ops_chan.c`,
    `${ROOT}csrc/os_linux.c`,
    "-lm",
  ], { timeout: 120_000 });
  assert(cc.code === 0, `the harness did not build:\n${cc.stderr}`);
  const r = await run([out], { timeout: 60_000, env: { ASAN_OPTIONS: "detect_leaks=0" } });
  assert(r.code === 0, `hostile exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  assert(/hostile: ok \d+ checks/.test(r.stdout), r.stdout);
  // A short randomized run too (make stress runs millions).
  const seed = String(Math.floor(Math.random() * 2 ** 31));
  const rr = await run([out, "--random", "20000", seed], { timeout: 60_000, env: { ASAN_OPTIONS: "detect_leaks=0" } });
  assert(rr.code === 0, `hostile --random 20000 ${seed} exited ${rr.code ?? rr.signal}\n${rr.stdout}\n${rr.stderr}`);
}, {
  // The C harness does not depend on the runtime that builds it: like make cross, it runs once.
  skip: noSanitizers ||
    (RUNTIME === "bun" ? false : "runs once, from the Bun pass (the C harness does not depend on the runtime)"),
});
