/**
 * Fault points for crash tests. A fault point SIGKILLs this process the Nth time it is reached,
 * so tests can prove what a process killed at that exact step leaves behind.
 *
 * Production code never reads the environment for this (no permission prompt, no cost): a test
 * child turns fault points on by importing `tests/fixtures/enable_faults.ts` before anything from
 * `src/`, which copies `SHMKIT_FAULT="<point>:<N>"` into `globalThis.__shmkitFault`. Modules read
 * it once at load; when it is unset every hook is one never-taken branch on a constant.
 *
 * @module
 * @internal
 */

/** The fault spec this process was started with: `"<point>:<N>"`, or "" (the usual case). */
export const FAULT_SPEC: string = (() => {
  const v = (globalThis as { __shmkitFault?: unknown }).__shmkitFault;
  return typeof v === "string" ? v.trim() : "";
})();

/** The armed point (e.g. "ring.enq.after_commit") and its countdown, or undefined. */
export function armedFault(prefix: string): { point: string; count: number } | undefined {
  const m = /^([A-Za-z0-9_.]+):(\d+)$/.exec(FAULT_SPEC);
  if (!m || !m[1].startsWith(prefix)) return undefined;
  const count = Number(m[2]);
  return count > 0 ? { point: m[1], count } : undefined;
}

/**
 * The fault hook of one module: a function that SIGKILLs this process the Nth time it is called
 * with the armed point, or undefined when no point of `prefix` is armed (the usual case). Modules
 * keep it in a constant and call it as `if (FAULT_ON) fault("ring.enq.after_commit")`.
 */
export function faultHook(prefix: string): ((point: string) => void) | undefined {
  const armed = armedFault(prefix);
  if (!armed) return undefined;
  let left = armed.count;
  return (point) => {
    if (point === armed.point && --left <= 0) killSelf();
  };
}

/** SIGKILLs this process now; never returns. */
export function killSelf(): never {
  const p = (globalThis as unknown as { process: { pid: number; kill(pid: number, sig: string): void } }).process;
  p.kill(p.pid, "SIGKILL");
  // SIGKILL is not deliverable late; never continue past a fault point.
  for (;;) { /* unreachable */ }
}
