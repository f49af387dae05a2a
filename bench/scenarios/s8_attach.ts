// S8 — attach cost: create + map + first touch of 64 MiB through SharedMemory.create, then
// SharedMemory.open + touch of the same (populated) segment, and process start to first message
// (spawn a runtime process that opens a segment and writes one word).
// @bench-runtimes deno bun node
// @bench-ids S8
//
// Touch = one byte per page (write after create, read after open), like the C floor.
import { SharedMemory } from "../../mod.ts";
import { PAGE_SIZE } from "../../src/sys.ts";
import { args, clockNs, cpuSelf, emit, exited, median, pick, pin, procCpu, RUNTIME, spawnScript } from "../lib.ts";

const SIZE = 64 << 20;
const ME = "bench/scenarios/s8_attach.ts";

if (args()[0] === "child") {
  // Child of the "spawn+open+first message" cell: open the segment and set word 0 to 1.
  const seg = SharedMemory.open(args()[1]);
  Atomics.store(new Int32Array(seg.buffer, 0, 1), 0, 1);
  seg.close();
} else {
  await main();
}

async function main(): Promise<void> {
  pin(0);
  const reps = pick(7, 3);
  const createMs: number[] = [];
  const openMs: number[] = [];
  let cpuCreate = 0;
  let cpuOpen = 0;
  for (let r = 0; r < reps; r++) {
    let c0 = cpuSelf();
    let t0 = clockNs();
    const seg = SharedMemory.create(null, SIZE);
    const u8 = seg.bytes();
    for (let o = 0; o < SIZE; o += PAGE_SIZE) u8[o] = 1;
    createMs.push((clockNs() - t0) / 1e6);
    cpuCreate += cpuSelf() - c0;
    const name = seg.name!;
    seg.close();

    c0 = cpuSelf();
    t0 = clockNs();
    const again = SharedMemory.open(name);
    const v = again.bytes();
    let s = 0;
    for (let o = 0; o < SIZE; o += PAGE_SIZE) s += v[o];
    openMs.push((clockNs() - t0) / 1e6);
    cpuOpen += cpuSelf() - c0;
    again.close();
    SharedMemory.unlink(name);
    if (s !== SIZE / PAGE_SIZE) throw new Error(`S8: read back ${s} touched pages, expected ${SIZE / PAGE_SIZE}`);
  }
  emit({
    bench: "S8",
    variant: "create+map+touch 64 MiB",
    transport: "shmkit SharedMemory",
    metric: "ms",
    value: median(createMs),
    cpu_s: cpuCreate / reps,
    wall_s: median(createMs) / 1e3,
    note: `SharedMemory.create(null, 64 MiB) (reserves the memory) + write one byte per page; median of ${reps}`,
  });
  emit({
    bench: "S8",
    variant: "open+map+touch 64 MiB",
    transport: "shmkit SharedMemory",
    metric: "ms",
    value: median(openMs),
    cpu_s: cpuOpen / reps,
    wall_s: median(openMs) / 1e3,
    note: `SharedMemory.open + read one byte per page of a populated segment; median of ${reps}`,
  });

  // Process start to first message: spawn this script as a child in the same runtime; the child
  // opens a 4 KiB segment and stores 1; the parent polls the word.
  const starts: number[] = [];
  let cpuStart = 0;
  const n = pick(5, 2);
  for (let r = 0; r < n; r++) {
    const seg = SharedMemory.create(null, 4096);
    const word = new Int32Array(seg.buffer, 0, 1);
    const c0 = cpuSelf();
    const t0 = clockNs();
    const child = spawnScript(RUNTIME, ME, ["child", seg.name!], { stdio: ["ignore", "inherit", "inherit"] });
    let childCpu = 0;
    while (Atomics.load(word, 0) === 0) {
      childCpu = procCpu(child.pid!) || childCpu;
      await new Promise((res) => setTimeout(res, 0.2));
    }
    starts.push((clockNs() - t0) / 1e6);
    cpuStart += cpuSelf() - c0 + childCpu;
    await exited(child);
    seg.close();
    seg.unlink();
  }
  emit({
    bench: "S8",
    variant: "spawn+open+first message",
    transport: "shmkit SharedMemory",
    metric: "ms",
    value: median(starts),
    cpu_s: cpuStart / n,
    wall_s: median(starts) / 1e3,
    floor_variant: "none",
    note: `spawn a ${RUNTIME} process that opens a segment and stores one word; parent polls every ~0.2 ms; ` +
      `mostly runtime start-up; median of ${n}; CPU includes the child up to its last sample`,
  });
}
