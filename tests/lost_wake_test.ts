// The race a plain publish opens (ffi/mod.ts plainPublish): the writer's wake check may read the
// reader's waiter count before its tail store is visible to a reader registering at that moment,
// and skip the wake. Readers therefore wait at most 0.2 ms first in every park and re-check
// (docs/layout/log.md and docs/layout/channel.md "Waiting"). These tests produce the lost wake on
// purpose: right after a reader registers, the writer sends with the waiter count taken down by
// one, so its check reads 0 and it does not wake anyone. The reader must still get the message
// within its first wait, not after a park slice (100 ms for the log, 50 ms for the channel):
// without the short first wait these tests fail with delays of a whole slice. The spsc-ordered
// Channel publishes its head (a release) plainly too, so the same holds for a sender parked for
// room: those tests free a block with the sender's registration hidden from the check. An spsc
// Ring publishes both its tail and its head plainly (src/ring.ts PLAIN_PUBLISH), so the last tests
// do the same to its parked consumers and producers, and to an spsc
// (mode 1) Channel's receivers, which park on its ready ring's tail.
import { assert, assertEquals } from "./assert.ts";
import { PYTHON, ROOT, run, runtimeCommand, RUNTIMES, test } from "./harness.ts";
import { Channel, MessageLog, Ring, SharedMemory } from "../mod.ts";
import { CHANNEL } from "../src/channel.ts";
import { LOG } from "../src/log.ts";
import { RING } from "../src/ring.ts";
import { spawn } from "node:child_process";
import process from "node:process";

const probe = await run([PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"]).catch(() => undefined);
const noPython = probe?.stdout.trim() === "True" ? false : "python3 >= 3.10 is not installed";

/** Far above the first wait (0.2 ms, a timer tick for async waits), far below a park slice. */
const LIMIT_MS = 25;
const ROUNDS = 4;
/**
 * Child rounds, and how many of them must arrive within LIMIT_MS. The parent sends a few
 * microseconds after it sees the child register; a stall of the parent longer than the first wait
 * (a VM hiccup, the runtime's JIT or GC threads taking the CPU: seen on Bun, three rounds in a
 * row) lands the send in the rest of the slice, so some rounds may be slow by chance. Without the
 * short first wait every round is slow (a slice: 50 ms channel, 100 ms log).
 */
const CHILD_ROUNDS = 12;
const CHILD_FAST = 6;
const now = (): number => performance.timeOrigin + performance.now();

interface Target {
  seg: SharedMemory;
  i32: Int32Array;
  /** Index of the reader's waiter count in i32. */
  count: number;
  handle: unknown;
  send(b: Uint8Array): boolean;
  close(): void;
}

function logTarget(): Target & { log: MessageLog } {
  const opts = { capacity: 4096, mode: "spsc" as const };
  const seg = SharedMemory.create(null, MessageLog.byteLength(opts));
  const log = MessageLog.init(seg, 0, opts);
  return {
    seg,
    log,
    i32: seg.view(Int32Array),
    count: LOG.readWaiters >> 2,
    handle: log.handle(),
    send: (b) => log.tryWrite(b),
    close: () => {
      log.close();
      seg.unlink();
      seg.close();
    },
  };
}

function chanTarget(mode: "spsc" | "spsc-ordered"): Target & { ch: Channel } {
  const opts = { slots: 8, slotSize: 64, mode };
  const seg = SharedMemory.create(null, Channel.byteLength(opts));
  const ch = Channel.init(seg, 0, opts);
  const readyOff = Number(new DataView(seg.view(Uint8Array).buffer).getBigUint64(CHANNEL.readyOffset, true));
  return {
    seg,
    ch,
    i32: seg.view(Int32Array),
    count: (readyOff + RING.consWaiters) >> 2,
    handle: ch.handle(),
    send: (b) => ch.trySend(b),
    close: () => {
      ch.close();
      seg.unlink();
      seg.close();
    },
  };
}

const stamp = new Float64Array(1);
const stampBytes = new Uint8Array(stamp.buffer);

/** Sends a stamp with the reader's registration hidden from the wake check (a lost wake). */
function sendUnwoken(t: Target): void {
  Atomics.sub(t.i32, t.count, 1);
  stamp[0] = now();
  const ok = t.send(stampBytes);
  Atomics.add(t.i32, t.count, 1);
  assert(ok, "the send found room");
}

// In one process only the log: its reader parks on dataSeq, which a writer bumps only when it
// wakes. A Channel receiver parks on the ring's tail itself, so an async receiver's waiter thread
// usually sees the published tail when it gets to its futex wait, lost wake or not: there the
// children below are the test.
test("MessageLog (spsc) readAsync: a lost wake costs the parked reader its short first wait, not a park slice", async () => {
  const t = logTarget();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const p = t.log.readAsync({ timeout: 10_000 }).then((r) =>
        new Float64Array(r.data.slice(r.offset, r.offset + 8).buffer)[0]
      );
      // readAsync registered and re-checked before returning the promise.
      assertEquals(Atomics.load(t.i32, t.count), 1, "the reader is registered as a waiter");
      sendUnwoken(t);
      const sent = await p;
      const delay = now() - sent;
      assert(delay < LIMIT_MS, `round ${round}: received ${delay.toFixed(1)} ms after the send`);
    }
  } finally {
    t.close();
  }
});

/**
 * Runs `cmd` (with `handle` and CHILD_ROUNDS appended) as a child that parks CHILD_ROUNDS times;
 * for each park, once the waiter count at `i32[count]` reads 1, calls `act(round)`. Returns the
 * child's last stdout line, parsed.
 */
async function childRounds(
  cmd: string[],
  handle: unknown,
  i32: Int32Array,
  count: number,
  act: (round: number) => void,
): Promise<unknown> {
  const child = spawn(cmd[0], [...cmd.slice(1), JSON.stringify(handle), String(CHILD_ROUNDS)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PYTHONPATH: `${ROOT}python` },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => out += d);
  child.stderr!.on("data", (d) => err += d);
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  // Busy waits (bounded), also through the child's start: its registration must be caught
  // within its first wait (0.2 ms), or the act lands in the rest of the slice.
  const spinUntil = (want: number, what: string): void => {
    const deadline = Date.now() + 20_000;
    while (Atomics.load(i32, count) !== want) {
      if (Date.now() > deadline) throw new Error(`the child never ${what}`);
    }
  };
  try {
    for (let round = 0; round < CHILD_ROUNDS; round++) {
      if (round > 0) spinUntil(0, `left its park (round ${round})`);
      spinUntil(1, `parked (round ${round})`);
      act(round);
    }
  } catch (e) {
    child.kill("SIGKILL");
    await exited; // its output arrives while we wait
    throw new Error(`${(e as Error).message}; child output: ${out} ${err}`);
  }
  const code = await exited;
  assertEquals(code, 0, `child exited ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").pop()!);
}

/** Runs `cmd` as a child that reads CHILD_ROUNDS stamps; feeds each right after the child registers. */
async function feedChild(kind: "log" | "chan" | "chan-spsc", cmd: string[]): Promise<number[]> {
  const t = kind === "log" ? logTarget() : chanTarget(kind === "chan" ? "spsc-ordered" : "spsc");
  try {
    const r = await childRounds(cmd, t.handle, t.i32, t.count, () => sendUnwoken(t));
    return (r as { delays: number[] }).delays;
  } finally {
    t.close();
  }
}

function checkChild(who: string, delays: number[]): void {
  assertEquals(delays.length, CHILD_ROUNDS);
  const fast = delays.filter((d) => d < LIMIT_MS).length;
  assert(
    fast >= CHILD_FAST,
    `${who}: ${fast} of ${CHILD_ROUNDS} messages arrived within ${LIMIT_MS} ms of their send (want >= ${CHILD_FAST}): ${
      delays.map((d) => d.toFixed(1)).join(", ")
    } ms`,
  );
}

for (const kind of ["log", "chan", "chan-spsc"] as const) {
  const what = kind === "log"
    ? "MessageLog (spsc) read()"
    : kind === "chan"
    ? "Channel (spsc-ordered) recv()"
    : "Channel (spsc) recv()";
  for (const rt of RUNTIMES) {
    test(`${what} in a ${rt} child: a lost wake costs the parked reader its short first wait`, async () => {
      const delays = await feedChild(kind, runtimeCommand(rt, "tests/fixtures/lost_wake_reader.ts").concat(kind));
      checkChild(rt, delays);
    });
  }
  test(`${what} in a Python child (the C park): a lost wake costs the parked reader its short first wait`, async () => {
    const cmd = [PYTHON, `${ROOT}python/tests/child.py`, kind === "log" ? "log-stamped" : "chan-stamped"];
    const delays = await feedChild(kind, cmd);
    checkChild("python", delays);
  }, { skip: noPython });
}

/**
 * Runs `cmd` as an spsc-ordered sender child that fills the channel and then blocks in send()
 * CHILD_ROUNDS times; frees one block right after each registration, with the sender's waiter count
 * taken down by one so that the release's wake check reads 0. Returns each send's delay (ms).
 */
async function freeForChild(cmd: string[]): Promise<number[]> {
  const opts = { slots: 8, slotSize: 64, mode: "spsc-ordered" as const };
  const seg = SharedMemory.create(null, Channel.byteLength(opts));
  const ch = Channel.init(seg, 0, opts);
  const i32 = seg.view(Int32Array);
  const readyOff = Number(new DataView(seg.view(Uint8Array).buffer).getBigUint64(CHANNEL.readyOffset, true));
  const count = (readyOff + RING.prodWaiters) >> 2;
  try {
    const freed: number[] = [];
    const r = await childRounds(cmd, ch.handle(), i32, count, (round) => {
      Atomics.sub(i32, count, 1);
      freed.push(now());
      const m = ch.tryRecv();
      assert(m !== undefined, `round ${round}: the channel is full`);
      m.release(); // publishes the head; its wake check reads 0
      Atomics.add(i32, count, 1);
    });
    const times = (r as { times: number[] }).times;
    assertEquals(times.length, CHILD_ROUNDS);
    return times.map((t, i) => t - freed[i]);
  } finally {
    ch.close();
    seg.unlink();
    seg.close();
  }
}

for (const rt of RUNTIMES) {
  test(`Channel (spsc-ordered) send() in a ${rt} child: a lost wake costs the sender parked for room its short first wait`, async () => {
    checkChild(rt, await freeForChild(runtimeCommand(rt, "tests/fixtures/lost_wake_sender.ts")));
  });
}
test(
  "Channel (spsc-ordered) send() in a Python child (the C park): a lost wake costs the parked sender its short first wait",
  async () => {
    checkChild("python", await freeForChild([PYTHON, `${ROOT}python/tests/child.py`, "chan-sender-stamped"]));
  },
  { skip: noPython },
);

/**
 * Runs `cmd` as one side of an spsc Ring (tests/fixtures/lost_wake_ring.ts, python child.py) that
 * parks CHILD_ROUNDS times: a consumer gets each value right after it registers, a producer (after
 * filling the ring) a free slot, each with the child's registration hidden from the wake check.
 * Returns each blocked call's delay (ms).
 */
async function ringChild(consumer: boolean, cmd: string[]): Promise<number[]> {
  const opts = { capacity: 4, mode: "spsc" as const };
  const seg = SharedMemory.create(null, Ring.byteLength(opts));
  const ring = Ring.init(seg, 0, opts);
  const i32 = seg.view(Int32Array);
  const count = (consumer ? RING.consWaiters : RING.prodWaiters) >> 2;
  try {
    const acted: number[] = [];
    const r = await childRounds(cmd, ring.handle(), i32, count, (round) => {
      Atomics.sub(i32, count, 1);
      acted.push(now());
      // Publishes the tail (or the head); its wake check reads 0.
      const ok = consumer ? ring.tryEnqueue(round) : ring.tryDequeue() !== undefined;
      Atomics.add(i32, count, 1);
      assert(ok, `round ${round}: the ring is ${consumer ? "full" : "empty"}`);
    }) as { times: number[]; values: number[] };
    assertEquals(r.times.length, CHILD_ROUNDS);
    if (consumer) assertEquals(r.values, Array.from({ length: CHILD_ROUNDS }, (_, i) => i));
    else assertEquals(ring.size, opts.capacity, "every blocked enqueue landed");
    return r.times.map((t, i) => t - acted[i]);
  } finally {
    ring.close();
    seg.unlink();
    seg.close();
  }
}

// Sync calls only: an async waiter's futex wait runs on a waiter thread that usually gets to it
// after the parent's publish (as for the Channel above), so those rounds pass with or without the
// short first wait (checked); src/ring.ts #park uses the same waitAsyncShortFirst as the Channel.
for (const side of ["consumer", "producer"] as const) {
  const what = `Ring (spsc) ${side === "consumer" ? "dequeue" : "enqueue"}()`;
  for (const rt of RUNTIMES) {
    test(`${what} in a ${rt} child: a lost wake costs the parked ${side} its short first wait`, async () => {
      const cmd = runtimeCommand(rt, "tests/fixtures/lost_wake_ring.ts").concat(side);
      checkChild(rt, await ringChild(side === "consumer", cmd));
    });
  }
}
for (const consumer of [true, false]) {
  test(
    `Ring (spsc) ${
      consumer ? "dequeue" : "enqueue"
    }() in a Python child (the C park): a lost wake costs it its short first wait`,
    async () => {
      const cmd = [
        PYTHON,
        `${ROOT}python/tests/child.py`,
        consumer ? "ring-consumer-stamped" : "ring-producer-stamped",
      ];
      checkChild("python", await ringChild(consumer, cmd));
    },
    { skip: noPython },
  );
}
