// S10 — MessageLog throughput across two processes of the same runtime: a writer child (pinned to
// CPU0) appends records with tryWriteBatch (batches of 32), this process (CPU1) drains them with
// tryReadBatch (transport "shmkit log spsc": the reader polls as fast as it can) or the blocking
// readBatch ("shmkit log spsc (readBatch)": it paces its polls, src/pace.ts) and checks each
// record's sequence number and length.
// @bench-runtimes deno bun node
// @bench-ids S10
//
// Cells (spsc log, 1 MiB data area): "64B" (64-byte records: 56-byte payload + 8-byte header),
// msgs/s and GB/s of payload; "random 16..1024B" (payloads of 16..1024 bytes from a xorshift
// sequence both sides know), GB/s of payload and msgs/s. bench/c/log_floor.c runs the same
// protocol in C (same variants). The writer reuses its payload arrays (one per batch slot and
// size) and the reader one Uint32Array over the record view's data (remade only when `record.data` is
// another array): nothing allocated per record.
import { type LogRecord, MessageLog, type MessageLogHandle, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import {
  args,
  clockNs,
  cpuSelf,
  emit,
  exited,
  orphaned,
  phaseProbe,
  pick,
  pin,
  procCpu,
  RUNTIME,
  sameJobFloor,
  spawnScript,
} from "../lib.ts";

const ME = "bench/scenarios/s10_log.ts";
const BATCH = 32;
const CAPACITY = 1 << 20;

if (args()[0] === "child") child(JSON.parse(args()[1]), JSON.parse(args()[2]), args()[3] === "random");
else await main();

/** The same sequence as bench/c/log_floor.c payload_len. */
function nextLen(random: boolean, rng: Uint32Array): number {
  if (!random) return 56;
  let x = rng[0];
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  x >>>= 0;
  rng[0] = x;
  return 16 + (x % 1009);
}

/** Writer: ctl[0] = 1 ready, ctl[1] = 1 stop. */
function child(h: MessageLogHandle, ch: SharedMemoryHandle, random: boolean): void {
  pin(0);
  const log = MessageLog.attach(h);
  const seg = SharedMemory.attach(ch);
  const ctl = seg.view(Int32Array, 0, 4);
  // Per batch slot: one 1024-byte buffer and a view of every length over it (made once).
  const backing = Array.from({ length: BATCH }, () => new Uint8Array(1024));
  const views = backing.map((b) => Array.from({ length: 1025 }, (_, n) => b.subarray(0, n)));
  const stamp = backing.map((b) => new Uint32Array(b.buffer, 0, 1));
  const slot = new Int32Array(BATCH); // which backing buffer each batch position uses
  const items: Uint8Array[] = new Array(BATCH);
  const lens = new Int32Array(BATCH);
  const tmp = new Int32Array(BATCH);
  const rng = new Uint32Array([12345]);
  for (let i = 0; i < BATCH; i++) slot[i] = i;
  let seq = 0;
  let pending = 0; // positions 0..pending-1 hold stamped records not written yet
  Atomics.store(ctl, 0, 1);
  while (Atomics.load(ctl, 1) === 0 && !orphaned()) {
    for (let rep = 0; rep < 64; rep++) {
      for (let i = pending; i < BATCH; i++) {
        const n = nextLen(random, rng);
        lens[i] = n;
        stamp[slot[i]][0] = seq++;
        items[i] = views[slot[i]][n];
      }
      pending = BATCH;
      const k = log.tryWriteBatch(items, 1);
      if (k === 0) continue;
      // Move the unwritten ones to the front (their buffers with them), reuse the written buffers.
      for (let i = 0; i < k; i++) tmp[i] = slot[i];
      for (let i = k; i < BATCH; i++) {
        slot[i - k] = slot[i];
        lens[i - k] = lens[i];
        items[i - k] = items[i];
      }
      for (let i = 0; i < k; i++) slot[BATCH - k + i] = tmp[i];
      pending = BATCH - k;
    }
  }
  log.close();
  seg.close();
}

async function cell(random: boolean, windowS: number, blocking: boolean): Promise<void> {
  pin(1);
  const variant = random ? "random 16..1024B" : "64B";
  const log = MessageLog.create(`shmkit-bench-s10-${RUNTIME}-${random ? "r" : "f"}-${Date.now() % 1e6}`, {
    capacity: CAPACITY,
    mode: "spsc",
    maxRecord: 1024,
  });
  const seg = SharedMemory.anonymous(64);
  const ctl = seg.view(Int32Array, 0, 4);
  const kid = spawnScript(RUNTIME, ME, [
    "child",
    JSON.stringify(log.handle()),
    JSON.stringify(seg.handle()),
    random ? "random" : "fixed",
  ]);
  while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 5));
  log.unlink(); // the child has it open
  const rng = new Uint32Array([12345]);
  // A Uint32Array over the record view's data, remade only when the record's data array changes
  // (it is the same object for the whole life of the log object).
  let data: Uint8Array = new Uint8Array(0);
  let u32: Uint32Array = new Uint32Array(0);
  let expect = 0;
  let msgs = 0;
  let bytes = 0;
  let bad = "";
  const take = (r: LogRecord): void => {
    if (r.data !== data) {
      data = r.data;
      u32 = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
    }
    const want = nextLen(random, rng);
    if (u32[r.offset >> 2] !== expect || r.length !== want) {
      bad ||= `record ${expect}: seq ${u32[r.offset >> 2]}, length ${r.length} (want ${want})`;
    }
    expect = (expect + 1) >>> 0;
    msgs++;
    bytes += r.length;
  };
  const warm = clockNs() + 0.3e9;
  while (clockNs() < warm) log.tryReadBatch(take);
  const c0 = cpuSelf() + procCpu(kid.pid!);
  const m0 = msgs;
  const b0 = bytes;
  const t0 = clockNs();
  const end = t0 + windowS * 1e9;
  let t1 = t0;
  while (t1 < end) {
    if (blocking) { for (let i = 0; i < 64; i++) log.readBatch(take, { timeout: 10_000 }); }
    else for (let i = 0; i < 64; i++) log.tryReadBatch(take);
    t1 = clockNs();
  }
  const n = msgs - m0;
  const nb = bytes - b0;
  const cpu = cpuSelf() + procCpu(kid.pid!) - c0;
  Atomics.store(ctl, 1, 1);
  while (kid.exitCode === null) {
    log.tryReadBatch(take);
    await new Promise((r) => setTimeout(r, 1));
  }
  await exited(kid);
  if (bad) throw new Error(`S10 ${variant}: ${bad}`);
  const wall = (t1 - t0) / 1e9;
  const note = `spsc, 1 MiB data area, tryWriteBatch of 32 / ${
    blocking ? "readBatch (blocking, paced polls)" : "tryReadBatch (polled as fast as it can)"
  }, writer cpu0, reader cpu1, order and lengths checked`;
  const transport = blocking ? "shmkit log spsc (readBatch)" : "shmkit log spsc";
  const base = { bench: "S10", variant, transport, cpu_s: cpu, wall_s: wall, note };
  emit({ ...base, metric: "msgs/s", value: n / wall });
  emit({ ...base, metric: "GB/s", value: nb / wall / 1e9, note: `payload bytes; ${note}` });
  log.close();
  seg.close();
}

async function main(): Promise<void> {
  phaseProbe("S10"); // which cross-core phase of the VM this job ran in (bench/lib.ts)
  const w = pick(1.5, 0.5);
  sameJobFloor("S10", "log_floor"); // the C floor in this job's phase, before and after (bench/lib.ts)
  for (const blocking of [false, true]) {
    await cell(false, w, blocking);
    await cell(true, w, blocking);
  }
  sameJobFloor("S10", "log_floor");
}
