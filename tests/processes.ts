/**
 * Which runtime runs this script, where the repository is, and the command that runs a script in
 * any runtime: shared by tests/harness.ts and bench/lib.ts. No test-runner side effects.
 *
 * @module
 */

/** A runtime that runs shmkit's TypeScript. */
export type Runtime = "deno" | "bun" | "node";

const g = globalThis as unknown as { Deno?: { version?: { deno?: string } }; Bun?: unknown };

/** The runtime running this script. */
export const RUNTIME: Runtime = g.Deno?.version?.deno ? "deno" : g.Bun !== undefined ? "bun" : "node";

const envOf = (name: string): string | undefined => {
  const d = (g as { Deno?: { env?: { get(n: string): string | undefined } } }).Deno;
  if (d?.env) return d.env.get(name);
  return (globalThis as unknown as { process?: { env: Record<string, string | undefined> } }).process?.env[name];
};

/**
 * The Python interpreter the tests spawn: `SHMKIT_PYTHON` (scripts/test_all.sh sets it to
 * `sys.executable` of the `python3` on PATH, resolved once) or `python3`. A version manager's
 * shim (pyenv: a bash script that looks up the version on every call) costs ~0.35 s per spawn
 * on this machine, ten times the interpreter's own start; the Python cross-language tests spawn
 * hundreds of processes per leg.
 */
export const PYTHON: string = envOf("SHMKIT_PYTHON") || "python3";

/** All runtimes, for cross-runtime matrices. */
export const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];

const compiled = !import.meta.url.endsWith(".ts");
/** The repository root (a file path ending in "/"); Node runs this module from build/node/tests/. */
export const ROOT: string = decodeURIComponent(new URL(compiled ? "../../../" : "../", import.meta.url).pathname);

/**
 * The command that runs `script` (a path relative to the repository root, ending in `.ts`) in
 * `runtime`. Node runs the tsc output under build/node/.
 */
export function runtimeCommand(runtime: Runtime, script: string): string[] {
  switch (runtime) {
    case "deno":
      return [`${ROOT}node_modules/.bin/deno`, "run", "--allow-all", "--quiet", "--no-check", `${ROOT}${script}`];
    case "bun":
      return [`${ROOT}node_modules/.bin/bun`, `${ROOT}${script}`];
    case "node":
      return ["node", `${ROOT}build/node/${script.replace(/\.ts$/, ".js")}`];
  }
}
