// Hostile names and owners at the OS boundary: a FIFO or a symlink squatting a segment name, a
// segment owned by another user or writable by others, names that are not well-formed Unicode,
// and pids no platform can hold (a torn or hostile owner word of 0xffffffff).
import { assert, assertCode, assertEquals } from "./assert.ts";
import { run, test, uniqueName } from "./harness.ts";
import { Mempool, SharedMemory } from "../mod.ts";
import { MEMPOOL } from "../src/mempool.ts";
import { EUID, PID, processAlive, START_TIME, sys, validPid } from "../src/sys.ts";
import { chmodSync, symlinkSync, unlinkSync } from "node:fs";

const SHM = "/dev/shm/";

test("a FIFO squatting a segment name is refused at once by open, open readOnly and exists", async () => {
  const name = uniqueName("fifo");
  const mk = await run(["mkfifo", SHM + name]);
  assertEquals(mk.code, 0, mk.stderr);
  try {
    // Before the fix, each of these blocked forever in open(2) waiting for a writer.
    assert(SharedMemory.exists(name), "the name is taken");
    assertCode(() => SharedMemory.open(name, { readOnly: true }), "EINVAL", /not a shared memory object \(a FIFO/);
    assertCode(() => SharedMemory.open(name), "EINVAL", /FIFO/);
    assertCode(() => SharedMemory.create(name, 4096), "EEXIST");
  } finally {
    unlinkSync(SHM + name);
  }
});

test("a symbolic link squatting a segment name is never followed", () => {
  const target = uniqueName("target");
  const name = uniqueName("link");
  using real = SharedMemory.create(target, 4096);
  symlinkSync(SHM + target, SHM + name);
  try {
    assert(SharedMemory.exists(name));
    assertCode(() => SharedMemory.open(name), "ELOOP", /symbolic link/);
    assertCode(() => SharedMemory.open(name, { readOnly: true }), "ELOOP");
  } finally {
    unlinkSync(SHM + name);
    real.unlink();
  }
});

test("SharedMemory.open refuses a segment writable by others unless trustOthers", () => {
  const name = uniqueName("mode");
  using seg = SharedMemory.create(name, 4096);
  seg.bytes()[0] = 7;
  chmodSync(SHM + name, 0o666);
  try {
    assertCode(() => SharedMemory.open(name), "EACCES", /mode 0o666 lets other users write it.*trustOthers: true/);
    assertCode(() => SharedMemory.open(name, { readOnly: true }), "EACCES", /trustOthers/);
    chmodSync(SHM + name, 0o620);
    assertCode(() => SharedMemory.open(name), "EACCES", /0o620/);
    using ok = SharedMemory.open(name, { trustOthers: true });
    assertEquals(ok.bytes()[0], 7);
    chmodSync(SHM + name, 0o640); // group may read, nobody else may write: trusted
    using ok2 = SharedMemory.open(name);
    assertEquals(ok2.bytes()[0], 7);
    using ok3 = SharedMemory.attach(seg.handle(), { trustOthers: true });
    assertEquals(ok3.size, 4096);
  } finally {
    seg.unlink();
  }
});

const notRoot = EUID !== 0 ? `chown to another user needs root (euid ${EUID})` : false;

test("SharedMemory.open refuses a segment owned by another user unless trustOthers", async () => {
  const name = uniqueName("owner");
  using seg = SharedMemory.create(name, 4096);
  const ch = await run(["chown", "65534", SHM + name]);
  assertEquals(ch.code, 0, ch.stderr);
  try {
    assertCode(
      () => SharedMemory.open(name),
      "EACCES",
      /belongs to user 65534, not to this process's user 0.*trustOthers/,
    );
    assertCode(() => SharedMemory.attach(seg.handle()), "EACCES", /65534/);
    using ok = SharedMemory.open(name, { trustOthers: true });
    assertEquals(ok.size, 4096);
    // Objects whose open() takes only a name are refused too.
    assertCode(() => Mempool.open(name), "EACCES");
  } finally {
    seg.unlink();
  }
}, { skip: notRoot });

test("an object in a segment others may write opens with SharedMemory.open(trustOthers) and X.at()", () => {
  const name = uniqueName("mpshared");
  using pool = Mempool.create(name, { count: 2, blockSize: 8, fileMode: 0o660 });
  assertCode(() => Mempool.open(name), "EACCES", /0o660.*trustOthers/);
  using seg = SharedMemory.open(name, { trustOthers: true });
  using peer = Mempool.at(seg, 0);
  const b = peer.get();
  assertEquals(pool.available, 1);
  peer.put(b);
  pool.unlink();
});

test("segment names that are not well-formed Unicode are EINVAL", () => {
  for (const bad of ["x\ud800", "x\udfff", "\udc00abc", "a\ud800\ud800"]) {
    assertCode(() => SharedMemory.create(bad, 4096), "EINVAL", /not well-formed Unicode/);
    assertCode(() => SharedMemory.open(bad), "EINVAL", /not well-formed Unicode/);
    assertCode(() => SharedMemory.exists(bad), "EINVAL");
    assertCode(() => SharedMemory.unlink(bad), "EINVAL");
  }
  // A proper surrogate pair is fine.
  const name = uniqueName("pair") + "-\ud83d\ude00";
  using seg = SharedMemory.create(name, 4096);
  assert(SharedMemory.exists(name));
  seg.unlink();
});

test("processAlive treats pids outside 1..2^31-1 as no process, on every runtime", () => {
  for (const pid of [2 ** 31, 2 ** 32 - 1, 2 ** 53, -1, 0, NaN, Infinity, 1.5, -(2 ** 31)]) {
    assertEquals(processAlive(pid), false, `pid ${pid}`);
    assertEquals(processAlive(pid, 12345), false, `pid ${pid} with a start time`);
    assertEquals(validPid(pid), false);
    assert(sys.shmkit_proc_start_time(pid) < 0, `start time of ${pid}`);
    assert(sys.shmkit_proc_alive(pid, -1) === 0, `proc_alive ${pid}`);
    assert(sys.shmkit_open_proc_fd(pid, 3, 0) < 0, `open_proc_fd ${pid}`);
  }
  assert(processAlive(PID));
  assert(processAlive(PID, START_TIME));
  assert(processAlive(PID, NaN), "a NaN start time is unknown, not a mismatch");
  assertEquals(validPid(2 ** 31 - 1), true);
});

test("Mempool.reclaim frees a participant slot whose owner word holds pid 0xffffffff", () => {
  const name = uniqueName("pidword");
  using pool = Mempool.create(name, { count: 4, blockSize: 8, maxProcesses: 4 });
  using seg = SharedMemory.open(name);
  const slots = seg.view(BigUint64Array, MEMPOOL.headerSize, 2 * 4);
  // Participant slot 2: identity = pid 0xffffffff | start 5 << 32 (no process can have it).
  Atomics.store(slots, 2 * 2, 0xffffffffn | (5n << 32n));
  // Before the fix Deno threw "TypeError: Invalid FFI i32 type" here.
  pool.reclaim();
  assertEquals(Atomics.load(slots, 2 * 2), 0n, "the dead identity's slot is freed");
  assertEquals(pool.validate(), []);
  pool.unlink();
});
