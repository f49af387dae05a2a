// make stress: the seeded fuzzer (tests/fixtures/fuzz_child.ts) at length: children of this
// runtime corrupt objects of every kind and operate on them; exits non-zero on any crash, hang or
// exception other than ShmError. SHMKIT_SEED fixes the seed; SHMKIT_FUZZ_CASES sets the cases
// (default 12,500 per runtime: with the three runtimes of make stress, >= 50,000 mutations).
import { RUNTIME } from "../harness.ts";
import { fuzz } from "../fixtures/fuzz_driver.ts";

const proc =
  (globalThis as unknown as { process: { env: Record<string, string | undefined>; exit(c: number): never } }).process;
const seed = Number(proc.env.SHMKIT_SEED ?? Date.now() % 1e9);
const cases = Number(proc.env.SHMKIT_FUZZ_CASES ?? 12_500);
console.log(`fuzz stress (${RUNTIME} children): seed ${seed} (rerun with SHMKIT_SEED=${seed}), ${cases} cases`);
const t0 = Date.now();
const r = await fuzz(RUNTIME, seed, 0, cases, { batch: 500, log: console.log });
console.log(
  `fuzz stress: ${r.cases} cases, ${r.mutations} mutations, ${r.failures.length} failures (${r.crashes} crashes, ${r.hangs} hangs) in ${
    Math.round((Date.now() - t0) / 1000)
  } s`,
);
proc.exit(r.failures.length === 0 ? 0 : 1);
