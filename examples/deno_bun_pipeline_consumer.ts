/**
 * The Bun side of examples/deno_bun_pipeline.ts: receives JSON readings from the `jobs` Channel
 * until an `{ end: true }` message, then sends a summary through the `results` Channel.
 *
 *   bun examples/deno_bun_pipeline_consumer.ts JOBS_HANDLE RESULTS_HANDLE
 *
 * @module
 */
import process from "node:process";
import { Channel, type ChannelHandle } from "../mod.ts";

const [jobsHandle, resultsHandle] = process.argv.slice(2);
using jobs = Channel.attach(JSON.parse(jobsHandle) as ChannelHandle);
using results = Channel.attach(JSON.parse(resultsHandle) as ChannelHandle);

let count = 0;
let sum = 0;
const perSensor: Record<string, number> = {};
for await (const m of jobs) {
  const r = m.json() as { end?: true; sensor: string; value: number };
  m.release();
  if (r.end) break;
  count++;
  sum += r.value;
  perSensor[r.sensor] = (perSensor[r.sensor] ?? 0) + 1;
}
results.send(JSON.stringify({ count, sum, perSensor }));
console.log(`bun: received ${count} readings`);
