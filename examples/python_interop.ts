/**
 * TypeScript and Python sharing memory: TypeScript writes a question into a SharedMemory segment
 * and numbers into a SharedArray; Python (standard library + numpy, examples/python_interop.py)
 * reads both, writes its answer into the segment and doubles the array in place.
 *
 *   deno run -A examples/python_interop.ts      (or: bun examples/python_interop.ts)
 *
 * @module
 */
import process from "node:process";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SharedArray, SharedMemory } from "../mod.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const script = here.includes("/build/node/") ? here.replace(/\/build\/node\/examples\/$/, "/examples/") : here;
const python = process.env.PYTHON ?? "python3";

using seg = SharedMemory.create(null, 4096);
const n = 1000;
using arr = SharedArray.from(`shmkit-example-${process.pid}`, Float64Array.from({ length: n }, (_, i) => i * 0.5));
try {
  seg.bytes().set(new TextEncoder().encode("what is the sum of the array?\0"));
  const data = arr.data as Float64Array;
  const expected = data.reduce((a, b) => a + b, 0);

  // The array goes by its handle: Python reads name, dtype, shape and dataOffset (where the elements start).
  const r = spawnSync(python, [`${script}python_interop.py`, seg.name!, JSON.stringify(arr.handle())], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status ?? r.error?.message}): ${r.stderr}`);
  process.stdout.write(r.stdout);

  const b = seg.bytes();
  const answer = new TextDecoder().decode(b.subarray(0, b.indexOf(0)));
  const sum = Number(/sum=([0-9.e+-]+)/.exec(answer)?.[1]);
  const doubled = data.every((v, i) => v === i);
  console.log(`typescript read back: ${JSON.stringify(answer)}`);
  console.log(
    `sum ${sum === expected ? "matches" : `MISMATCH (expected ${expected})`}; array ${
      doubled ? "doubled in place" : "NOT doubled"
    }`,
  );
  if (sum !== expected || !doubled) process.exitCode = 1;
} finally {
  seg.unlink();
  arr.unlink();
}
