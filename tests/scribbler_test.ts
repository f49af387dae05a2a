// A live scribbler: honest processes (Deno and Bun, two each) use a ring / a mempool while a
// hostile process writes random values into its control words. Every honest call returns within
// its timeout plus slack (a hang guard, 2 s) and every error is a ShmError.
import { assert } from "./assert.ts";
import { runScript, type Runtime, test, uniqueName } from "./harness.ts";
import { Mempool, Ring } from "../mod.ts";

const FIXTURE = "tests/fixtures/fuzz_scribbler.ts";
const MS = 2500;

async function scribble(kind: "ring" | "mempool", name: string): Promise<void> {
  const seed = Math.floor(Math.random() * 2 ** 31);
  const honest: Runtime[] = ["deno", "bun", "deno", "bun"];
  const opts = { timeout: 60_000 };
  const [hostile, ...results] = await Promise.all([
    runScript("bun", FIXTURE, { args: ["hostile", kind, name, String(MS), String(seed)], ...opts }),
    ...honest.map((rt) => runScript(rt, FIXTURE, { args: ["honest", kind, name, String(MS)], ...opts })),
  ]);
  console.log(`scribbler ${kind} (seed ${seed}): hostile ${hostile.stdout.trim()}`);
  for (const [k, r] of results.entries()) {
    const line = r.stdout.trim().split("\n").pop()!;
    console.log(`  honest ${honest[k]}: ${line}`);
    const res = JSON.parse(line) as { calls: number; violations: string[] };
    assert(res.calls > 0, "the honest process made calls");
    assert(res.violations.length === 0, `${honest[k]} (seed ${seed}): ${res.violations.join("; ")}`);
  }
}

test(
  "Ring: honest producers/consumers keep their timeouts and get only ShmError while a process scribbles on its control words",
  async () => {
    const name = uniqueName("scr");
    const r = Ring.create(name, { capacity: 16, mode: "mpmc" });
    try {
      await scribble("ring", name);
    } finally {
      r.unlink();
      r.close();
    }
  },
  { timeout: 120_000 },
);

test(
  "Mempool: honest getters keep their timeouts and get only ShmError while a process scribbles on its control words",
  async () => {
    const name = uniqueName("scr");
    const p = Mempool.create(name, { count: 4, blockSize: 64 });
    try {
      await scribble("mempool", name);
    } finally {
      p.unlink();
      p.close();
    }
  },
  { timeout: 120_000 },
);
