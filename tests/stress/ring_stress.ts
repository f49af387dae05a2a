// make stress: thousands of SIGKILLs inside Ring operations (tests/fixtures/ring_crash_round.ts),
// children of all three runtimes, every mode, seeded; prints its seed and exits non-zero on any
// violation. SHMKIT_SEED fixes the seed; SHMKIT_RING_KILLS sets the target (default 2000);
// SHMKIT_RING_CHILD_RUNTIMES="deno bun" limits the runtimes of the children (default all three).
import { prng, type Runtime, RUNTIMES } from "../harness.ts";
import { crashRound } from "../fixtures/ring_crash_round.ts";
import type { RingMode } from "../../mod.ts";

const env =
  (globalThis as unknown as { process: { env: Record<string, string | undefined>; exit(c: number): never } }).process;
const seed = Number(env.env.SHMKIT_SEED ?? Date.now() % 1e9);
const target = Number(env.env.SHMKIT_RING_KILLS ?? 2000);
const modes: RingMode[] = ["mpmc", "spsc", "mpsc", "spmc"];
const childRuntimes = (env.env.SHMKIT_RING_CHILD_RUNTIMES?.split(/[ ,]+/).filter(Boolean) as Runtime[] | undefined) ??
  RUNTIMES;
console.log(
  `ring stress: seed ${seed} (rerun with SHMKIT_SEED=${seed}), target ${target} kills, children ${
    childRuntimes.join(" ")
  }`,
);
const rnd = prng(seed);
let kills = 0;
let rounds = 0;
const byPoint: Record<string, number> = {};
const t0 = Date.now();
try {
  while (kills < target) {
    const res = await Promise.all(
      [0, 1, 2].map((k) =>
        crashRound(
          modes[(rounds + k) % 4],
          prng(Math.floor(rnd() * 2 ** 31)),
          childRuntimes,
          80 + Math.floor(rnd() * 200),
        )
      ),
    );
    rounds += 3;
    for (const r of res) {
      kills += r.kills;
      for (const [p, n] of Object.entries(r.byPoint)) byPoint[p] = (byPoint[p] ?? 0) + n;
    }
    if (rounds % 60 === 0) {
      console.log(`  ${kills} kills in ${rounds} rounds, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
} catch (e) {
  console.error(
    `ring stress FAILED with seed ${seed} after ${kills} kills in ${rounds} rounds: ${(e as Error).message}`,
  );
  env.exit(1);
}
console.log(
  `ring stress: ${kills} kills in ${rounds} rounds, ${
    ((Date.now() - t0) / 1000).toFixed(0)
  } s, seed ${seed}, by point ${JSON.stringify(byPoint)}`,
);
