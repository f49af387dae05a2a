// S10 — MessageLog throughput across two processes of the same runtime: a writer child (pinned to
// CPU0) appends records with tryWriteBatch (batches of 32), this process (CPU1) drains them with
// tryReadBatch (transport "shmkit log spsc": the reader polls as fast as it can) or the blocking
// readBatch ("shmkit log spsc (readBatch)": it paces its polls, src/pace.ts) and checks each
// record's sequence number and length.
// @bench-runtimes deno bun node
// @bench-ids S10
//
// JS floor (transport "JS floor (log protocol inline)", "64B" only): the same spsc protocol written
// inline in this file with no library: the writer (cpu0) stamps and copies each 56-byte payload
// with the same copy as the library (src/copy.ts copyIn), writes the header and publishes the tail
// once per batch of 32 as the library does; the reader (cpu1) polls the tail, checks each header
// and sequence number inline (no callback, no record object) and publishes the head once per
// batch. What JavaScript itself allows for this protocol on this machine, measured in the same job.
//
// Cells (spsc log, 1 MiB data area): "64B" (64-byte records: 56-byte payload + 8-byte header),
// msgs/s and GB/s of payload; "random 16..1024B" (payloads of 16..1024 bytes from a xorshift
// sequence both sides know), GB/s of payload and msgs/s. bench/c/log_floor.c runs the same
// protocol in C (same variants). The writer reuses its payload arrays ("64B": one per batch
// position, restamped before each batch; random: one per batch slot and size) and the reader one
// Uint32Array over the record view's data (remade only when `record.data` is another array):
// nothing allocated per record.
import { type LogRecord, MessageLog, type MessageLogHandle, SharedMemory, type SharedMemoryHandle } from "../../mod.ts";
import { copyIn } from "../../src/copy.ts";
import { plainPublish } from "../../src/sys.ts";
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

// The JS floor's segment: the tail at byte 0, the head at byte 64 (own lines), data from byte 128.
const F_TAIL = 0;
const F_HEAD = 16;
const F_DATA = 128;
const F_PAYLOAD = 56;

if (args()[0] === "child") child(JSON.parse(args()[1]), JSON.parse(args()[2]), args()[3] === "random");
else if (args()[0] === "floor") floorWriter(JSON.parse(args()[1]), JSON.parse(args()[2]));
else await main();

/** JS floor writer: batches of 32 records of 56 payload bytes, inline (see the header). */
function floorWriter(h: SharedMemoryHandle, ch: SharedMemoryHandle): void {
  pin(0);
  const seg = SharedMemory.attach(h);
  const c = SharedMemory.attach(ch);
  const ctl = c.view(Int32Array, 0, 4);
  const hdr = seg.view(Int32Array, 0, 32);
  const u8 = seg.view(Uint8Array, F_DATA, CAPACITY);
  const i32 = seg.view(Int32Array, F_DATA, CAPACITY >> 2);
  const mask = CAPACITY - 1;
  const items = Array.from({ length: BATCH }, () => new Uint8Array(F_PAYLOAD));
  const stamp = items.map((b) => new Uint32Array(b.buffer, 0, 1));
  let t = 0;
  let hc = 0;
  let seq = 0;
  Atomics.store(ctl, 0, 1);
  while (Atomics.load(ctl, 1) === 0 && !orphaned()) {
    for (let rep = 0; rep < 64; rep++) {
      let k = 0;
      for (; k < BATCH; k++) {
        if (CAPACITY - ((t - hc) >>> 0) < 64) {
          hc = Atomics.load(hdr, F_HEAD) >>> 0; // A2
          if (CAPACITY - ((t - hc) >>> 0) < 64) break;
        }
        const it = items[k];
        stamp[k][0] = seq;
        const off = t & mask;
        const w = off >> 2;
        i32[w + 1] = 1;
        copyIn(u8, i32, off + 8, it, it.length);
        i32[w] = 8 + it.length;
        t = (t + 64) >>> 0;
        seq = (seq + 1) >>> 0;
      }
      if (k === 0) continue;
      if (plainPublish) hdr[F_TAIL] = t | 0; // W-R1, as the library's spsc writer
      else Atomics.store(hdr, F_TAIL, t | 0);
    }
  }
  seg.close();
  c.close();
}

/** JS floor reader (this process, cpu1): the "64B" cell of transport "JS floor (log protocol inline)". */
async function floorCell(windowS: number): Promise<void> {
  pin(1);
  const seg = SharedMemory.anonymous(F_DATA + CAPACITY);
  const c = SharedMemory.anonymous(64);
  const ctl = c.view(Int32Array, 0, 4);
  const kid = spawnScript(RUNTIME, ME, ["floor", JSON.stringify(seg.handle()), JSON.stringify(c.handle())]);
  while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 5));
  const hdr = seg.view(Int32Array, 0, 32);
  const i32 = seg.view(Int32Array, F_DATA, CAPACITY >> 2);
  const mask = CAPACITY - 1;
  let p = 0;
  let expect = 0;
  let msgs = 0;
  let bad = "";
  const drain = (): void => {
    const t = Atomics.load(hdr, F_TAIL) >>> 0; // A1
    if (t === p) return;
    if (((t - p) >>> 0) > CAPACITY) {
      bad ||= `tail ${t} is more than the capacity ahead of ${p}`;
      return;
    }
    while (p !== t) {
      const off = p & mask;
      const w = off >> 2;
      const len = i32[w] >>> 0;
      const size = (len + 7) & ~7;
      if (len < 8 || off + size > CAPACITY || size > ((t - p) >>> 0) || i32[w + 1] !== 1) {
        bad ||= `record at ${p}: length ${len}, type ${i32[w + 1]}`;
        return;
      }
      if (len !== 8 + F_PAYLOAD || i32[w + 2] >>> 0 !== expect) {
        bad ||= `record ${expect}: seq ${i32[w + 2] >>> 0}, length ${len}`;
      }
      expect = (expect + 1) >>> 0;
      msgs++;
      p = (p + size) >>> 0;
    }
    Atomics.store(hdr, F_HEAD, p | 0); // R2, as the library's reader
  };
  const warm = clockNs() + 0.3e9;
  while (clockNs() < warm) drain();
  const c0 = cpuSelf() + procCpu(kid.pid!);
  const m0 = msgs;
  const t0 = clockNs();
  const end = t0 + windowS * 1e9;
  let t1 = t0;
  while (t1 < end && !bad) {
    for (let i = 0; i < 64; i++) drain();
    t1 = clockNs();
  }
  const n = msgs - m0;
  const cpu = cpuSelf() + procCpu(kid.pid!) - c0;
  Atomics.store(ctl, 1, 1);
  while (kid.exitCode === null) {
    drain();
    await new Promise((r) => setTimeout(r, 1));
  }
  await exited(kid);
  if (bad) throw new Error(`S10 JS floor: ${bad}`);
  const wall = (t1 - t0) / 1e9;
  const note = "the spsc log protocol inline, no library: batches of 32 records of 56 payload bytes (the library's " +
    "copy, src/copy.ts), tail published per batch; the reader polls, checks every header and sequence number " +
    "inline and publishes the head per batch; writer cpu0, reader cpu1";
  const base = {
    bench: "S10",
    variant: "64B",
    transport: "JS floor (log protocol inline)",
    cpu_s: cpu,
    wall_s: wall,
    note,
  };
  emit({ ...base, metric: "msgs/s", value: n / wall });
  emit({ ...base, metric: "GB/s", value: (n * F_PAYLOAD) / wall / 1e9, note: `payload bytes; ${note}` });
  seg.close();
  c.close();
}

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
  if (!random) {
    // "64B": 32 payload arrays of 56 bytes, each stamped with its sequence number before every
    // batch; a batch that wrote k records moves the sequence on by k, and the next one stamps the
    // rest again from there.
    const items = Array.from({ length: BATCH }, () => new Uint8Array(F_PAYLOAD));
    const stamps = items.map((b) => new Uint32Array(b.buffer, 0, 1));
    let next = 0;
    Atomics.store(ctl, 0, 1);
    while (Atomics.load(ctl, 1) === 0 && !orphaned()) {
      for (let rep = 0; rep < 64; rep++) {
        for (let i = 0; i < BATCH; i++) stamps[i][0] = next + i;
        next = (next + log.tryWriteBatch(items, 1)) >>> 0;
      }
    }
    log.close();
    seg.close();
    return;
  }
  // "random 16..1024B":
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
  await floorCell(w);
  sameJobFloor("S10", "log_floor");
}
