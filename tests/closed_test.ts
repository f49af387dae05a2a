// After close(), every method and live getter of every class throws ShmError("ECLOSED") — never a
// raw RangeError/TypeError, never a result read from unmapped (or, on Node 20, zero-filled) memory.
// Plain fields fixed at open (Ring.capacity, SharedArray.length, ...) keep their values.
import { assert } from "./assert.ts";
import { test } from "./harness.ts";
import {
  Channel,
  Condition,
  MappedFile,
  Mempool,
  MessageLog,
  Mutex,
  Ring,
  Semaphore,
  SharedArray,
  SharedHeap,
  SharedMemory,
  ShmError,
} from "../mod.ts";

type Any = Record<string, unknown> & { close(): void; unlink?: () => void };
const t = { timeout: 1 };
const CASES: [string, () => Any, [string, unknown[]][]][] = [
  ["SharedMemory", () => SharedMemory.create(null, 4096) as unknown as Any, [
    ["bytes", []],
    ["view", [Uint8Array]],
    ["handle", []],
    ["buffer", []],
  ]],
  ["MappedFile", () => MappedFile.anonymous(4096) as unknown as Any, [
    ["bytes", []],
    ["read", []],
    ["write", ["x"]],
    ["seek", [0]],
    ["tell", []],
    ["find", ["x"]],
    ["flush", []],
    ["buffer", []],
    ["handle", []],
    ["resize", [8192]],
  ]],
  ["Ring", () => Ring.create(null, { capacity: 4 }) as unknown as Any, [
    ["tryEnqueue", [1]],
    ["tryDequeue", []],
    ["enqueue", [1, t]],
    ["dequeue", [t]],
    ["enqueueBulk", [[1]]],
    ["dequeueBurst", [new Uint32Array(2)]],
    ["size", []],
    ["handle", []],
  ]],
  ["Mempool", () => Mempool.create(null, { count: 2, blockSize: 8 }) as unknown as Any, [
    ["tryGet", []],
    ["get", [t]],
    ["put", [0]],
    ["block", [0]],
    ["reclaim", []],
    ["available", []],
    ["handle", []],
  ]],
  ["Channel", () => Channel.create(null, { slots: 2, slotSize: 8 }) as unknown as Any, [
    ["trySend", ["x"]],
    ["send", ["x", t]],
    ["tryRecv", []],
    ["recv", [t]],
    ["tryLoan", []],
    ["trySendBatch", [["x"]]],
    ["tryRecvBatch", [() => {}]],
    ["reclaim", []],
    ["size", []],
    ["handle", []],
  ]],
  ["MessageLog", () => MessageLog.create(null, { capacity: 4096 }) as unknown as Any, [
    ["tryWrite", ["x"]],
    ["write", ["x", t]],
    ["tryWriteBatch", [["x"]]],
    ["tryClaim", [4]],
    ["tryRead", []],
    ["read", [t]],
    ["tryReadBatch", [() => {}]],
    ["size", []],
    ["validate", []],
    ["handle", []],
  ]],
  ["Mutex", () => Mutex.create(null) as unknown as Any, [["tryLock", []], ["lock", [t]], ["handle", []]]],
  ["Semaphore", () => Semaphore.create(null, { value: 1 }) as unknown as Any, [
    ["tryAcquire", []],
    ["acquire", [t]],
    ["release", [1]],
    ["value", []],
    ["handle", []],
  ]],
  ["Condition", () => Condition.create(null) as unknown as Any, [["notify", []], ["notifyAll", []], ["handle", []]]],
  ["SharedArray", () => SharedArray.create(null, "int32", 4) as unknown as Any, [["data", []], ["handle", []]]],
  ["SharedHeap", () => SharedHeap.create(null, { size: 65536 }) as unknown as Any, [
    ["alloc", [16]],
    ["free", [64]],
    ["bytes", [0, 4]],
    ["get", ["a"]],
    ["set", ["a", 64]],
    ["stats", []],
    ["validate", []],
    ["names", []],
    ["handle", []],
  ]],
];

for (const [kind, make, members] of CASES) {
  test(`${kind}: every method and live getter throws ECLOSED after close()`, () => {
    const o = make();
    o.unlink?.();
    o.close();
    o.close(); // idempotent
    const wrong: string[] = [];
    for (const [m, args] of members) {
      try {
        const v = o[m];
        if (typeof v === "function") {
          const r = (v as (...a: unknown[]) => unknown).apply(o, args);
          if (r instanceof Promise) r.catch(() => {});
          wrong.push(`${m}() returned ${String(r).slice(0, 30)}`);
        } else wrong.push(`${m} read ${String(v).slice(0, 30)}`);
      } catch (e) {
        if (!(e instanceof ShmError && e.code === "ECLOSED")) {
          wrong.push(`${m}: ${(e as Error).constructor.name} ${(e as Error).message.slice(0, 80)}`);
        }
      }
    }
    assert(wrong.length === 0, `${kind} after close: ${wrong.join("; ")}`);
  });
}
