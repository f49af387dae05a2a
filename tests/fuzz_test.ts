// The seeded fuzzer over every kind (tests/fixtures/fuzz_child.ts, fuzz_driver.ts): corrupt header
// words and indices, cut segments short, then open and operate. Pass: no crash, no hang, no
// exception other than ShmError. Children of Deno and Bun run from every runtime's suite;
// SHMKIT_SEED fixes the seed, SHMKIT_FUZZ_CASES the cases per child runtime (default 600).
// make stress runs tests/stress/fuzz_stress.ts (>= 50,000 mutations).
import { assertEquals } from "./assert.ts";
import { RUNTIME, test } from "./harness.ts";
import { fuzz } from "./fixtures/fuzz_driver.ts";

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;

test("fuzz: corrupt objects of every kind give ShmError within their timeouts (Deno and Bun children)", async () => {
  const seed = Number(env.SHMKIT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const cases = Number(env.SHMKIT_FUZZ_CASES ?? 600);
  console.log(`fuzz (${RUNTIME}): seed ${seed} (rerun with SHMKIT_SEED=${seed}), ${cases} cases per child runtime`);
  const t0 = Date.now();
  const [d, b] = await Promise.all([
    fuzz("deno", seed, 0, cases, { log: console.log }),
    fuzz("bun", seed, cases, cases, { log: console.log }),
  ]);
  const failures = [...d.failures, ...b.failures];
  const mutations = d.mutations + b.mutations;
  console.log(
    `fuzz: ${d.cases + b.cases} cases, ${mutations} mutations, ${failures.length} failures (${
      d.crashes + b.crashes
    } crashes, ${d.hangs + b.hangs} hangs) in ${Date.now() - t0} ms`,
  );
  assertEquals(failures.length, 0, failures.slice(0, 20).join("\n"));
  assertEquals(d.cases + b.cases, 2 * cases);
  if (cases >= 600 && mutations < 2000) throw new Error(`only ${mutations} mutations; expected >= 2000`);
}, { timeout: 300_000 });
