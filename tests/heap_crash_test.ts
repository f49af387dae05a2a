// Crash tolerance of SharedHeap: child processes (Bun, Deno, Node) SIGKILL themselves at named
// fault points inside alloc, free, named operations and recovery, hundreds of times, while this
// process keeps allocating. The heap is never corrupted nor wedged, and at most the one allocation
// in flight is leaked per kill (and stats() counts the ones it can see).
// More kills (make stress): SHMKIT_HEAP_KILLS=3000 SHMKIT_TESTS=heap_crash bash scripts/test_all.sh deno
// (fault points, plus children SIGKILLed from outside at random moments; SHMKIT_HEAP_POINTS=a,b
// restricts the points, SHMKIT_SEED repeats a run).
import { assert, assertEquals } from "./assert.ts";
import { campaign, RUNTIME, test } from "./harness.ts";
import { heapCrashCampaign } from "./fixtures/heap_crash_driver.ts";

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;
// The full campaign runs under one runner (Deno); the others run a short one.
// (CAMPAIGN_SCALE 0.4 in `make test`: the floor of 100 kills, the least that requires every fault point.)
const kills = Number(env.SHMKIT_HEAP_KILLS ?? (RUNTIME === "deno" ? Math.max(100, campaign(150)) : 30));

test(
  `SharedHeap survives ${kills} SIGKILLs inside alloc, free, named operations and recovery`,
  async () => {
    const seed = Number(env.SHMKIT_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const r = await heapCrashCampaign({ kills, seed, log: kills > 500 ? console.log : undefined });
    const summary =
      `seed ${seed}: ${r.kills} kills, ${r.survivors} survivors, ${r.recoveries} recoveries, ${r.rolledBack} rolled back, ${r.leakedInFlight} leaked in flight, ${r.leftover} left allocated, slowest parent op ${r.slowestParentOpMs} ms, by point ${
        JSON.stringify(r.killsByPoint)
      }`;
    console.log(summary);
    assertEquals(r.problems, [], summary);
    assert(r.kills >= kills, summary);
    if (kills >= 100) {
      for (
        const p of [
          "heap.alloc.before_commit",
          "heap.alloc.after_commit",
          "heap.free.after_unlink",
          "heap.free.before_commit",
        ]
      ) {
        assert(r.killsByPoint[p] > 0, `no kill at ${p}: ${summary}`);
      }
      assert(r.rolledBack > 0, summary);
    }
  },
  { timeout: kills > 500 ? 3_600_000 : 170_000 },
);
