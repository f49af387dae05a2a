// Mempool soak (make stress): thousands of SIGKILLs at random fault points, children of all three
// runtimes, seeded. Usage: <runtime> tests/stress/mempool_stress.ts [kills=2000] [seed]
// Prints the seed first and again on failure; rerun with the same seed to repeat the schedule.
import { crashCampaign } from "../fixtures/mempool_crash_driver.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const proc = (globalThis as unknown as { process: { exitCode?: number } }).process;
const kills = Number(args[0] ?? 2000);
const seed = Number(args[1] ?? Math.floor(Math.random() * 2 ** 31));
console.log(`mempool stress: ${kills} kills, seed ${seed}`);
const t0 = Date.now();
const r = await crashCampaign({ kills, seed, concurrency: 4, log: (l) => console.log(`  ${l}`) });
console.log(
  `  ${r.kills} kills, ${r.survivors} survivors in ${((Date.now() - t0) / 1000).toFixed(0)} s; by point ${
    JSON.stringify(r.killsByPoint)
  }`,
);
if (r.problems.length > 0 || r.kills < kills || r.available !== r.count) {
  console.error(`FAILED (seed ${seed}):\n  ${r.problems.join("\n  ")}`);
  proc.exitCode = 1;
} else {
  console.log(`ok: available ${r.available} === count ${r.count}, every invariant holds (seed ${seed})`);
}
