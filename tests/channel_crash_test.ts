// Crash tolerance of the Channel: child processes SIGKILL themselves at every channel fault point
// (taking a slot, writing, marking QUEUED, enqueueing, dequeueing, claiming, releasing,
// reclaiming) while others send and receive. Afterwards every slot is back within 1 s, no
// message was received twice and none was corrupt. SHMKIT_CHANNEL_KILLS raises the kill count
// (tests/stress/channel_stress.ts runs thousands).
import { assert, assertEquals } from "./assert.ts";
import { test } from "./harness.ts";
import { channelCrashCampaign } from "./fixtures/channel_crash_driver.ts";
import { CHANNEL_FAULT_POINTS } from "../src/channel.ts";

const env = (globalThis as unknown as { process: { env: Record<string, string | undefined> } }).process.env;

for (const mode of ["mpmc", "spsc"] as const) {
  test(
    `a ${mode} Channel gets every slot back after SIGKILLs at every fault point, with no duplicate or corrupt message`,
    async () => {
      const seed = Number(env.SHMKIT_SEED ?? Math.floor(Math.random() * 2 ** 31));
      const kills = Number(env.SHMKIT_CHANNEL_KILLS ?? (mode === "mpmc" ? 160 : 60));
      const r = await channelCrashCampaign({ kills, seed, mode });
      const summary = `seed ${seed}: ${r.kills} kills, ${r.survivors} survivors, ${r.received} drained, by point ${
        JSON.stringify(r.killsByPoint)
      }`;
      console.log(summary);
      assertEquals(r.problems, [], summary);
      assert(r.kills >= kills, summary);
      if (mode === "mpmc") {
        for (const p of CHANNEL_FAULT_POINTS) {
          if (p !== "channel.reclaim.mid") assert(r.killsByPoint[p] > 0, `no kill at ${p}: ${summary}`);
        }
      }
      assertEquals(r.available, r.slots);
    },
    { timeout: 170_000 },
  );
}
