/**
 * A Deno producer and a Bun consumer connected by two shmkit Channels: Deno streams sensor
 * readings as JSON through `jobs`; Bun (examples/deno_bun_pipeline_consumer.ts) aggregates them
 * and sends a summary back through `results`. The handles travel as a command-line argument.
 *
 *   deno run -A examples/deno_bun_pipeline.ts [--count 10000] [--bun path/to/bun]
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Channel } from "../mod.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const count = Number(flag("count", "10000"));
const here = fileURLToPath(new URL(".", import.meta.url)).replace(/\/build\/node\/examples\/$/, "/examples/");
const localBun = `${here}../node_modules/.bin/bun`;
const bun = flag("bun", existsSync(localBun) ? localBun : "bun");

using jobs = Channel.create(`shmkit-example-jobs-${process.pid}`, { slots: 256, slotSize: 256, mode: "spsc" });
using results = Channel.create(`shmkit-example-results-${process.pid}`, { slots: 4, slotSize: 4096, mode: "spsc" });
try {
  const consumer = spawn(bun, [
    `${here}deno_bun_pipeline_consumer.ts`,
    JSON.stringify(jobs.handle()),
    JSON.stringify(results.handle()),
  ], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise<number | null>((r) => consumer.on("close", (code) => r(code)));

  let expectedSum = 0;
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const reading = { sensor: `s${i % 8}`, seq: i, value: Math.round(Math.sin(i) * 1000) / 10 };
    expectedSum += reading.value;
    await jobs.sendAsync(JSON.stringify(reading), { timeout: 30_000 }); // waits while Bun catches up
  }
  await jobs.sendAsync(JSON.stringify({ end: true }));

  using summary = await results.recvAsync({ timeout: 30_000 });
  const s = summary.json() as { count: number; sum: number; perSensor: Record<string, number> };
  const ms = performance.now() - started;
  console.log(
    `deno: bun aggregated ${s.count} readings in ${ms.toFixed(0)} ms; per sensor: ${JSON.stringify(s.perSensor)}`,
  );
  const ok = s.count === count && Math.abs(s.sum - expectedSum) < 1e-6;
  console.log(
    ok ? "deno: the summary matches what was sent" : `deno: MISMATCH (sum ${s.sum}, expected ${expectedSum})`,
  );
  if ((await exited) !== 0 || !ok) process.exitCode = 1;
} finally {
  jobs.unlink();
  results.unlink();
}
