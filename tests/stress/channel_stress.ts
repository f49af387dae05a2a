// Channel soak (make stress): thousands of SIGKILLs at random channel fault points, children of
// all three runtimes, seeded; mpmc, spsc and spsc-ordered. Usage: <runtime> tests/stress/channel_stress.ts [kills=2000] [seed]
import { channelCrashCampaign } from "../fixtures/channel_crash_driver.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const proc = (globalThis as unknown as { process: { exitCode?: number } }).process;
const kills = Number(args[0] ?? 2000);
const seed = Number(args[1] ?? Math.floor(Math.random() * 2 ** 31));
console.log(`channel stress: ${kills} kills, seed ${seed}`);
const t0 = Date.now();
let failed = false;
for (const mode of ["mpmc", "spsc", "spsc-ordered"] as const) {
  const r = await channelCrashCampaign({
    kills: mode === "mpmc" ? kills : Math.ceil(kills / 4),
    seed,
    mode,
    concurrency: 3,
    runtimes: ["bun", "bun", "deno", "node"],
    log: (l) => console.log(`  ${mode}: ${l}`),
  });
  console.log(
    `  ${mode}: ${r.kills} kills, ${r.survivors} survivors, ${r.received} drained in ${
      ((Date.now() - t0) / 1000).toFixed(0)
    } s, ${r.duplicates} delivered again (spsc-ordered: at least once); by point ${JSON.stringify(r.killsByPoint)}`,
  );
  if (r.problems.length > 0 || r.available !== r.slots) {
    console.error(`FAILED ${mode} (seed ${seed}):\n  ${r.problems.join("\n  ")}`);
    failed = true;
  }
}
if (failed) proc.exitCode = 1;
else {
  console.log(
    `ok: every slot back, no corrupt message, no duplicate (spsc, mpmc) or lost one (spsc-ordered) (seed ${seed})`,
  );
}
