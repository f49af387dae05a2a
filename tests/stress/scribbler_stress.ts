// make stress: the live scribbler at length (tests/fixtures/fuzz_scribbler.ts): for each round a
// hostile process writes random values into a ring's or a mempool's control words while honest
// processes of all three runtimes use it; every honest call must return within its timeout plus
// 2 s and fail only with ShmError. SHMKIT_SEED fixes the seed; SHMKIT_SCRIBBLE_ROUNDS sets the
// rounds (default 8, alternating ring and mempool, 10 s each).
import { prng, runScript, RUNTIME, type Runtime, RUNTIMES, uniqueName } from "../harness.ts";
import { Mempool, Ring } from "../../mod.ts";

const proc =
  (globalThis as unknown as { process: { env: Record<string, string | undefined>; exit(c: number): never } }).process;
const seed = Number(proc.env.SHMKIT_SEED ?? Date.now() % 1e9);
const rounds = Number(proc.env.SHMKIT_SCRIBBLE_ROUNDS ?? 8);
const MS = 10_000;
const FIXTURE = "tests/fixtures/fuzz_scribbler.ts";
console.log(`scribbler stress (${RUNTIME}): seed ${seed} (rerun with SHMKIT_SEED=${seed}), ${rounds} rounds`);
const rnd = prng(seed);
let failures = 0;
for (let round = 0; round < rounds; round++) {
  const kind = round % 2 === 0 ? "ring" : "mempool";
  const name = uniqueName("scrs");
  const obj = kind === "ring"
    ? Ring.create(name, { capacity: 1 + Math.floor(rnd() * 32), mode: "mpmc" })
    : Mempool.create(name, { count: 1 + Math.floor(rnd() * 8), blockSize: 64 });
  const hostileSeed = Math.floor(rnd() * 2 ** 31);
  try {
    const honest: Runtime[] = [...RUNTIMES];
    const opts = { timeout: MS + 60_000 };
    const [hostile, ...res] = await Promise.all([
      runScript(RUNTIME, FIXTURE, { args: ["hostile", kind, name, String(MS), String(hostileSeed)], ...opts }),
      ...honest.map((rt) => runScript(rt, FIXTURE, { args: ["honest", kind, name, String(MS)], ...opts })),
    ]);
    console.log(`round ${round} ${kind} (hostile seed ${hostileSeed}): ${hostile.stdout.trim()}`);
    for (const [k, r] of res.entries()) {
      const line = r.stdout.trim().split("\n").pop()!;
      console.log(`  ${honest[k]}: ${line}`);
      const v = JSON.parse(line) as { violations: string[] };
      if (v.violations.length > 0) failures++;
    }
  } catch (e) {
    console.log(`round ${round} ${kind}: ${(e as Error).message}`);
    failures++;
  } finally {
    obj.unlink();
    obj.close();
  }
}
console.log(`scribbler stress: ${rounds} rounds, ${failures} failures`);
proc.exit(failures === 0 ? 0 : 1);
