// Crash tolerance of MessageLog: writer and reader children of every runtime SIGKILL themselves
// at the log's fault points (SHMKIT_FAULT); survivors must lose, duplicate or invent nothing and
// never wedge. See tests/fixtures/log_crash_round.ts for the accounting.
// The full count (200+ kills) runs under Deno; Bun and Node run a shorter pass (their children
// still cover every runtime). SHMKIT_LOG_KILLS=3000 (make stress) raises the count.
import { assert } from "./assert.ts";
import { campaign, prng, RUNTIME, RUNTIMES, test } from "./harness.ts";
import { crashRound } from "./fixtures/log_crash_round.ts";
import { LOG_FAULT_POINTS, type LogMode } from "../src/log.ts";

const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
// `make test` scales the Deno campaign (CAMPAIGN_SCALE 0.4: the floor of 100 kills, still enough to require every fault point).
const TARGET = Number(env.SHMKIT_LOG_KILLS ?? (RUNTIME === "deno" ? Math.max(100, campaign(200)) : 40));
// Stop at the target or when the time budget is spent (the machine may be busy): at least 50
// kills, and with 100 or more every fault point, are required either way.
const BUDGET_MS = TARGET > 400 ? TARGET * 400 : 75_000;

test(
  `MessageLog survives SIGKILLs of writers and readers (up to ${TARGET}) with nothing lost, duplicated or half-read`,
  async () => {
    const seed = Number(env.SHMKIT_SEED ?? Date.now() % 1e9);
    const rnd = prng(seed);
    const byPoint: Record<string, number> = {};
    let kills = 0;
    let rounds = 0;
    let records = 0;
    const t0 = Date.now();
    try {
      while (kills < TARGET && Date.now() - t0 < BUDGET_MS) {
        const modes: LogMode[] = ["mpsc", "spsc", "mpsc"];
        const res = await Promise.all(modes.map((m) => crashRound(m, prng(Math.floor(rnd() * 2 ** 31)), RUNTIMES)));
        rounds += modes.length;
        for (const r of res) {
          kills += r.kills;
          records += r.records;
          for (const [p, n] of Object.entries(r.byPoint)) byPoint[p] = (byPoint[p] ?? 0) + n;
        }
      }
    } catch (e) {
      throw new Error(`seed ${seed} (rerun with SHMKIT_SEED=${seed}): ${(e as Error).message}`);
    }
    console.log(
      `log crash: ${kills} kills in ${rounds} rounds (${
        Date.now() - t0
      } ms), ${records} records read, seed ${seed}, by point ${JSON.stringify(byPoint)}`,
    );
    assert(kills >= Math.min(TARGET, 50), `only ${kills} kills in ${rounds} rounds (seed ${seed})`);
    if (kills >= 100) {
      for (const p of LOG_FAULT_POINTS) assert((byPoint[p] ?? 0) > 0, `no kill at ${p} (seed ${seed})`);
    }
  },
  { timeout: Math.max(400_000, BUDGET_MS + 180_000) },
);
