// Crash tolerance of the Mempool: hundreds of child processes (Deno, Bun, Node) SIGKILL
// themselves at named fault points inside get, put, parking, slot claiming and reclaim, while
// this process holds blocks and reclaims concurrently. Afterwards no block is lost, none was
// handed to two holders, and the live holder was never robbed.
import { assert, assertEquals } from "./assert.ts";
import { campaign, test } from "./harness.ts";
import { crashCampaign } from "./fixtures/mempool_crash_driver.ts";

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;

// Every campaign must reach these points (a smaller campaign keeps going until it has).
const COVER = [
  "mempool.get.before_claim",
  "mempool.get.after_claim",
  "mempool.put.before_release",
  "mempool.put.after_release",
  "mempool.claim.after_identity",
];
const KILLS = Number(env.SHMKIT_MEMPOOL_KILLS ?? campaign(200));

test(
  `Mempool survives ${KILLS} SIGKILLs at fault points in get, put, park, claim and reclaim without losing a block`,
  async () => {
    const seed = Number(env.SHMKIT_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const kills = KILLS;
    const r = await crashCampaign({ kills, seed, cover: COVER, maxKills: Math.max(kills, 200) });
    const summary = `seed ${seed}: ${r.kills} kills, ${r.survivors} survivors, by point ${
      JSON.stringify(r.killsByPoint)
    }`;
    console.log(summary);
    assertEquals(r.problems, [], summary);
    assert(r.kills >= kills, summary);
    for (const p of COVER) {
      assert(r.killsByPoint[p] > 0, `no kill at ${p}: ${summary}`);
    }
    assertEquals(r.available, r.count);
  },
  { timeout: 170_000 },
);
