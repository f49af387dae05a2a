// Options objects: a key the API does not know is a TypeError naming it, before anything is
// created or written (a misspelled `mode` would otherwise create the default mode, a misspelled
// semaphore `value` a semaphore at 0 whose first acquire waits for good).
import { assert, assertEquals } from "./assert.ts";
import { test, uniqueName } from "./harness.ts";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
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
} from "../mod.ts";

// deno-lint-ignore no-explicit-any
const loose = (o: Record<string, unknown>): any => o;

function rejects(what: string, key: string, f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  assert(err instanceof TypeError, `${what}: expected a TypeError, got ${String(err)}`);
  assert(err.message.includes(`unknown option "${key}"`), `${what}: ${err.message}`);
}

test("create with a misspelled option is a TypeError naming it, and creates nothing", () => {
  const cases: [string, string, (name: string) => unknown][] = [
    ["SharedMemory", "mdoe", (n) => SharedMemory.create(n, 4096, loose({ mdoe: 0o600 }))],
    ["Channel", "mdoe", (n) => Channel.create(n, loose({ slots: 4, slotSize: 64, mdoe: "spsc" }))],
    ["Ring", "mdoe", (n) => Ring.create(n, loose({ capacity: 4, mdoe: "spsc" }))],
    ["MessageLog", "mdoe", (n) => MessageLog.create(n, loose({ capacity: 1024, mdoe: "mpsc" }))],
    ["Mempool", "blocks", (n) => Mempool.create(n, loose({ count: 4, blockSize: 64, blocks: 4 }))],
    ["Semaphore", "initial", (n) => Semaphore.create(n, loose({ initial: 1 }))],
    ["Mutex", "slot", (n) => Mutex.create(n, loose({ slot: 4 }))],
    ["Condition", "mode", (n) => Condition.create(n, loose({ mode: 0o600 }))],
    ["SharedHeap", "sizes", (n) => SharedHeap.create(n, loose({ size: 65536, sizes: 1 }))],
    ["SharedArray", "fileMode", (n) => SharedArray.create(n, "float64", 4, loose({ fileMode: 0o600 }))],
  ];
  for (const [what, key, make] of cases) {
    const name = uniqueName("opt");
    rejects(what, key, () => make(name));
    assert(!existsSync(`/dev/shm/${name}`), `${what}: a segment was created`);
  }
});

test("init, open, at and attach check their options too; the known ones still work", () => {
  using seg = SharedMemory.create(null, 1 << 16);
  try {
    rejects("Ring.init", "mdoe", () => Ring.init(seg, 0, loose({ capacity: 4, mdoe: "spsc" })));
    rejects("MessageLog.init", "mdoe", () => MessageLog.init(seg, 0, loose({ capacity: 1024, mdoe: "spsc" })));
    rejects("Mempool.init", "blocks", () => Mempool.init(seg, 0, loose({ count: 4, blockSize: 64, blocks: 4 })));
    rejects("Semaphore.init", "initial", () => Semaphore.init(seg, 0, loose({ initial: 1 })));
    rejects("Mutex.init", "slot", () => Mutex.init(seg, 0, loose({ slot: 4 })));
    rejects("SharedHeap.init", "sizes", () => SharedHeap.init(seg, 0, loose({ size: 4096, sizes: 1 })));
    rejects("Channel.init", "mdoe", () => Channel.init(seg, 0, loose({ slots: 4, slotSize: 64, mdoe: "spsc" })));
    rejects("SharedArray.init", "dtyp", () => SharedArray.init(seg, 0, loose({ dtype: "float64", shape: 4, dtyp: 1 })));
    rejects("SharedArray.wrap", "offset", () => SharedArray.wrap(seg, "uint8", 4, loose({ offset: 8 })));
    // byteLength takes the same options as create and init (the same check)
    rejects("MessageLog.byteLength", "mdoe", () => MessageLog.byteLength(loose({ capacity: 1024, mdoe: "mpsc" })));
    rejects("Ring.byteLength", "mdoe", () => Ring.byteLength(loose({ capacity: 4, mdoe: "mpmc" })));
    // nothing was written: the segment is still all zeros
    assert(seg.bytes().every((b: number) => b === 0), "an init with a bad option wrote to the segment");
    using ch = Channel.init(seg, 0, { slots: 4, slotSize: 64, mode: "spsc-ordered", recvRun: 1 });
    rejects("Channel.at", "detatch", () => Channel.at(seg, 0, loose({ detatch: "message" })));
    rejects("Channel.attach", "recvrun", () => Channel.attach(ch.handle(), loose({ recvrun: 4 })));
    rejects("SharedMemory.attach", "trust", () => SharedMemory.attach(seg.handle(), loose({ trust: true })));
    rejects("SharedMemory.open", "readonly", () => SharedMemory.open(seg.name!, loose({ readonly: true })));
    rejects("Channel.open", "populates", () => Channel.open(seg.name!, loose({ populates: true })));
    rejects("SharedArray.open", "readonly", () => SharedArray.open(seg.name!, loose({ readonly: true })));
    using again = Channel.at(seg, 0, { detach: "message" });
    assertEquals(again.mode, "spsc-ordered");
  } finally {
    seg.unlink();
  }
  const path = `${tmpdir()}/shmkit-test-opt-${Date.now()}.bin`;
  rejects("MappedFile.open", "lenght", () => MappedFile.open(path, loose({ create: true, lenght: 4096 })));
  assert(!existsSync(path), "MappedFile.open created the file");
});

test("wait options without a timeout are checked too: a misspelled timeout is a TypeError, not a wait for good", async () => {
  using ring = Ring.create(null, { capacity: 4 });
  using ch = Channel.create(null, { slots: 4, slotSize: 64, mode: "spsc-ordered" });
  using log = MessageLog.create(null, { capacity: 1024 });
  using sem = Semaphore.create(null);
  using pool = Mempool.create(null, { count: 1, blockSize: 64 });
  try {
    const held = pool.get();
    rejects("Ring.dequeue", "timout", () => ring.dequeue(loose({ timout: 10 })));
    rejects("Channel.recv", "timout", () => ch.recv(loose({ timout: 10 })));
    rejects("Channel.recvBatch", "timout", () => ch.recvBatch(() => {}, loose({ timout: 10, max: 4 })));
    rejects("MessageLog.read", "timeOut", () => log.read(loose({ timeOut: 10 })));
    rejects("Semaphore.acquire", "timout", () => sem.acquire(loose({ timout: 10 })));
    rejects("Mempool.get", "timout", () => pool.get(loose({ timout: 10 })));
    let err: unknown;
    await ch.recvAsync(loose({ timout: 10 })).catch((e) => err = e);
    assert(err instanceof TypeError && err.message.includes('unknown option "timout"'), String(err));
    // the known keys still work
    pool.put(held);
    assertEquals(ring.tryDequeue(), undefined);
    ring.enqueue(7, { timeout: 10 });
    assertEquals(ring.dequeue({}), 7);
  } finally {
    for (const o of [ring, ch, log, sem, pool]) o.unlink();
  }
});
