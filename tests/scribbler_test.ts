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

/** A test that creates an object of `kind` with `make`, scribbles on it, and removes it. */
function scribbleTest(
  title: string,
  kind: "ring" | "mempool" | "log" | "channel",
  make: (name: string) => { unlink(): void; close(): void },
): void {
  test(title, async () => {
    const name = uniqueName("scr");
    const obj = make(name);
    try {
      await scribble(kind, name);
    } finally {
      obj.unlink();
      obj.close();
    }
  }, { timeout: 120_000 });
}

scribbleTest(
  "Ring: honest producers/consumers keep their timeouts and get only ShmError while a process scribbles on its control words",
  "ring",
  (name) => Ring.create(name, { capacity: 16, mode: "mpmc" }),
);

scribbleTest(
  "Mempool: honest getters keep their timeouts and get only ShmError while a process scribbles on its control words",
  "mempool",
  (name) => Mempool.create(name, { count: 4, blockSize: 64 }),
);

for (const mode of ["spsc", "mpsc"] as const) {
  scribbleTest(
    `MessageLog (${mode}): honest writers and readers keep their timeouts and get only ShmError while a process scribbles on its control words and record headers`,
    "log",
    (name) => MessageLog.create(name, { capacity: 4096, mode, maxRecord: 256 }),
  );
}

for (const mode of ["mpmc", "spsc-ordered"] as ChannelMode[]) {
  scribbleTest(
    `Channel (${mode}): honest senders and receivers keep their timeouts and get only ShmError while a process scribbles on its control words, ready ring and slot table`,
    "channel",
    (name) => Channel.create(name, { slots: 16, slotSize: 64, mode }),
  );
}
