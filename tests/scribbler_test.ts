// A live scribbler: honest processes (Deno and Bun, two each) use a ring / a mempool / a message
// log / a channel while a hostile process writes random values into its control words (and, for
// the log, into record headers). Every honest call returns within its timeout plus slack (a hang
// guard, 2 s) and every error is a ShmError.
import { assert } from "./assert.ts";
import { runScript, type Runtime, test, uniqueName } from "./harness.ts";
import { Channel, type ChannelMode, Mempool, MessageLog, Ring } from "../mod.ts";

const FIXTURE = "tests/fixtures/fuzz_scribbler.ts";
const MS = 2500;

async function scribble(kind: "ring" | "mempool" | "log" | "channel", name: string): Promise<void> {
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

for (const mode of ["spsc", "mpsc"] as const) {
  test(
    `MessageLog (${mode}): honest writers and readers keep their timeouts and get only ShmError while a process scribbles on its control words and record headers`,
    async () => {
      const name = uniqueName("scr");
      const l = MessageLog.create(name, { capacity: 4096, mode, maxRecord: 256 });
      try {
        await scribble("log", name);
      } finally {
        l.unlink();
        l.close();
      }
    },
    { timeout: 120_000 },
  );
}

for (const mode of ["mpmc", "spsc-ordered"] as ChannelMode[]) {
  test(
    `Channel (${mode}): honest senders and receivers keep their timeouts and get only ShmError while a process scribbles on its control words, ready ring and slot table`,
    async () => {
      const name = uniqueName("scr");
      const ch = Channel.create(name, { slots: 16, slotSize: 64, mode });
      try {
        await scribble("channel", name);
      } finally {
        ch.unlink();
        ch.close();
      }
    },
    { timeout: 120_000 },
  );
}
