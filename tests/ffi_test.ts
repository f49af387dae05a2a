// The native layer as every object sees it: atomics, futex, the async waiter multiplexer,
// process liveness and the safety of stale mapping ids.
import { assert, assertEquals } from "./assert.ts";
import { runScript, RUNTIME, test } from "./harness.ts";
import { SharedMemory } from "../mod.ts";
import { PID, processAlive, START_TIME, sys } from "../src/sys.ts";
import { futexWait, futexWake, pendingAsyncWaits, waitAsync } from "../src/wait.ts";
import { spawn } from "node:child_process";

test("native atomics on a mapping match Atomics on its view", () => {
  using seg = SharedMemory.anonymous(4096);
  const id = seg.mapping.id;
  const u32 = seg.view(Uint32Array);
  assertEquals(sys.shmkit_atomic_store_u32(id, 8, 0xfffffffe, 3), 0);
  assertEquals(Atomics.load(u32, 2), 0xfffffffe);
  assertEquals(sys.shmkit_atomic_fetch_add_u32(id, 8, 3, 5), 0xfffffffe);
  assertEquals(u32[2], 1); // wrapped
  assertEquals(sys.shmkit_atomic_cas_u32(id, 8, 1, 42, 5), 1);
  assertEquals(sys.shmkit_atomic_cas_u32(id, 8, 1, 43, 5), 42); // failed: returns the current value
  assertEquals(sys.shmkit_atomic_exchange_u32(id, 8, 7, 5), 42);
  assertEquals(sys.shmkit_atomic_load_u32(id, 8, 2), 7);
  const io = new BigUint64Array(2);
  io[0] = 0xffffffffffffffffn;
  assertEquals(sys.shmkit_atomic_store_u64(id, 16, 3, io), 0);
  assertEquals(seg.view(BigUint64Array)[2], 0xffffffffffffffffn);
  io[0] = 1n;
  assertEquals(sys.shmkit_atomic_fetch_add_u64(id, 16, 5, io), 0);
  assertEquals(io[0], 0xffffffffffffffffn);
  assertEquals(seg.view(BigUint64Array)[2], 0n);
  io[0] = 0n;
  io[1] = 9n;
  assertEquals(sys.shmkit_atomic_cas_u64(id, 16, 5, io), 1);
  assertEquals(sys.shmkit_atomic_cas_u64(id, 16, 5, io), 0);
  assertEquals(io[0], 9n);
});

test("native calls reject out-of-bounds and misaligned offsets with EINVAL", () => {
  using seg = SharedMemory.anonymous(4096);
  const id = seg.mapping.id;
  assertEquals(sys.shmkit_atomic_load_u32(id, 4096, 5), -22);
  assertEquals(sys.shmkit_atomic_load_u32(id, 4094, 5), -22);
  assertEquals(sys.shmkit_atomic_load_u32(id, 2, 5), -22);
  assertEquals(sys.shmkit_atomic_load_u32(id, -4, 5), -22);
  assertEquals(sys.shmkit_atomic_load_u32(id, 0.5, 5), -22);
  assertEquals(sys.shmkit_futex_wake(id, 1e15, 1), -22);
  assertEquals(sys.shmkit_waiter_add(id, 4096, 0), -22);
  assertEquals(sys.shmkit_atomic_load_u32(id, 0, 99), -22); // bad memory order
});

test("a stale mapping id returns EBADF instead of touching unmapped memory", () => {
  const seg = SharedMemory.anonymous(4096);
  const id = seg.mapping.id;
  seg.close();
  assertEquals(sys.shmkit_atomic_load_u32(id, 0, 5), -9);
  assertEquals(sys.shmkit_futex_wait(id, 0, 0, 1), -9);
  assertEquals(sys.shmkit_munmap(id, 0), -9);
  assertEquals(sys.shmkit_map_addr(id), -9);
});

test("futexWait times out, returns at once on a changed word, and wakes across processes", async () => {
  using seg = SharedMemory.create(null, 4096);
  const m = seg.mapping;
  const i32 = seg.view(Int32Array);
  assertEquals(futexWait(m, 0, 0, 5), false);
  Atomics.store(i32, 0, 1);
  assertEquals(futexWait(m, 0, 0, 5000), true);
  // Another process changes the word and wakes us while we are parked asynchronously.
  const woke = waitAsync(m, 0, 1, 20_000);
  const child = runScript(RUNTIME === "deno" ? "bun" : "deno", "tests/fixtures/ffi_waker.ts", {
    args: [JSON.stringify(seg.handle()), "0", "2"],
  });
  assertEquals(await woke, true);
  assertEquals(Atomics.load(i32, 0), 2);
  await child;
  seg.unlink();
});

test("wake checks read flags plainly on x86-64 on every runtime; SHMKIT_PLAIN_FLAG_READS=0 turns it off", async () => {
  for (const rt of ["deno", "bun", "node"] as const) {
    for (const off of [false, true]) {
      const r = await runScript(
        rt,
        "tests/fixtures/flag_reads.ts",
        off ? { env: { SHMKIT_PLAIN_FLAG_READS: "0" } } : {},
      );
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!) as { runtime: string; arch: string; plain: boolean };
      assertEquals(got.runtime, rt);
      assertEquals(got.plain, got.arch === "x64" && !off, `${rt} (${got.arch}), env off: ${off}`);
    }
  }
});

test("spsc-ordered senders publish the tail with a plain store on x86-64 on every runtime; SHMKIT_PLAIN_PUBLISH=0 turns it off", async () => {
  for (const rt of ["deno", "bun", "node"] as const) {
    for (const off of [false, true]) {
      const r = await runScript(rt, "tests/fixtures/flag_reads.ts", off ? { env: { SHMKIT_PLAIN_PUBLISH: "0" } } : {});
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
        runtime: string;
        arch: string;
        plainPublish: boolean;
      };
      assertEquals(got.runtime, rt);
      assertEquals(got.plainPublish, got.arch === "x64" && !off, `${rt} (${got.arch}), env off: ${off}`);
    }
  }
});

test("thousands of pending async waits on hundreds of words all resolve", async () => {
  using seg = SharedMemory.anonymous(4096);
  const m = seg.mapping;
  const i32 = seg.view(Int32Array);
  const waits: Promise<boolean>[] = [];
  for (let i = 0; i < 3000; i++) waits.push(waitAsync(m, (i % 400) * 4, 0, 60_000));
  assertEquals(pendingAsyncWaits(), 3000);
  await new Promise((r) => setTimeout(r, 50));
  for (let w = 0; w < 400; w++) {
    Atomics.store(i32, w, 1);
    futexWake(m, w * 4);
  }
  const done = await Promise.all(waits);
  assertEquals(done.filter(Boolean).length, 3000);
  assertEquals(pendingAsyncWaits(), 0);
});

test("an async wait times out with false and an aborted one rejects with the reason", async () => {
  using seg = SharedMemory.anonymous(4096);
  assertEquals(await waitAsync(seg.mapping, 0, 0, 20), false);
  const ac = new AbortController();
  const p = waitAsync(seg.mapping, 0, 0, Infinity, ac.signal);
  ac.abort(new Error("stop"));
  let reason: unknown;
  await p.catch((e) => reason = e);
  assertEquals((reason as Error).message, "stop");
  assertEquals(pendingAsyncWaits(), 0);
});

test("closing a mapping completes its pending async waits", async () => {
  const seg = SharedMemory.anonymous(4096);
  const p = waitAsync(seg.mapping, 0, 0, 60_000);
  await new Promise((r) => setTimeout(r, 20));
  seg.close();
  assertEquals(await p, true);
});

test("process liveness: this process is alive, a wrong start time or a reaped pid is not", async () => {
  assert(processAlive(PID, START_TIME));
  assert(!processAlive(PID, START_TIME + 1));
  const child = spawn("sleep", ["30"]);
  const pid = child.pid!;
  const start = sys.shmkit_proc_start_time(pid);
  assert(start > 0);
  assert(processAlive(pid, start));
  child.kill("SIGKILL");
  await new Promise((r) => child.on("exit", r));
  await new Promise((r) => setTimeout(r, 20));
  assert(!processAlive(pid, start));
});

test("a zombie (exited, not yet reaped) process is not alive", async () => {
  // `sh -c 'sleep 0 & exec sleep 2'`: the backgrounded child exits at once and stays a zombie of
  // the exec'd sleep, which never reaps it.
  const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 2"]);
  const pid = await new Promise<number>((resolve) =>
    parent.stdout!.once("data", (d) => resolve(Number(String(d).trim())))
  );
  await new Promise((r) => setTimeout(r, 300));
  assert(!processAlive(pid));
  parent.kill("SIGKILL");
});

test("a signal shmkit does not watch (SIGCHLD of an exiting child) does not end a futex wait early", async () => {
  using seg = SharedMemory.anonymous(4096);
  // The child exits ~30 ms into the wait; the runtime's SIGCHLD handler interrupts the futex
  // syscall (EINTR). Until 2026-12-02 that returned "woken" at once.
  const kid = spawn("sleep", ["0.03"], { stdio: "ignore" });
  const exited = new Promise((r) => kid.on("exit", r));
  const t0 = performance.now();
  const woke = futexWait(seg.mapping, 0, 0, 300);
  const ms = performance.now() - t0;
  await exited;
  assertEquals(woke, false, `futexWait returned ${woke} after ${ms.toFixed(1)} ms`);
  assert(ms >= 290, `the wait ended after ${ms.toFixed(1)} ms, before its 300 ms timeout`);
});

test("native waits reject NaN and negative timeouts with EINVAL instead of waiting forever", () => {
  using seg = SharedMemory.anonymous(4096);
  const id = seg.mapping.id;
  const EINVAL = -sys.shmkit_errno_value(new TextEncoder().encode("EINVAL\0"));
  // Before: NaN and negative timeouts meant "no timeout": these calls never returned.
  assertEquals(sys.shmkit_futex_wait(id, 0, 0, NaN), EINVAL);
  assertEquals(sys.shmkit_futex_wait(id, 0, 0, -1), EINVAL);
  assertEquals(sys.shmkit_futex_wait(id, 0, 0, -Infinity), EINVAL);
  assertEquals(sys.shmkit_waiter_next(new Int32Array(4), 4, NaN), EINVAL);
  assertEquals(sys.shmkit_waiter_next(new Int32Array(4), 4, -5), EINVAL);
  // futexWait treats a NaN or negative timeout as 0: a timed-out wait, at once.
  assertEquals(futexWait(seg.mapping, 0, 0, NaN), false);
  assertEquals(futexWait(seg.mapping, 0, 0, -10), false);
  assertEquals(futexWait(seg.mapping, 0, 1, Infinity), true); // the word is 0, not 1: no wait
  // INT32_MIN as an errno: a name, no overflow.
  const buf = new Uint8Array(32);
  assert(sys.shmkit_errno_name(-(2 ** 31), buf, buf.length) > 0);
  assert(sys.shmkit_strerror(-(2 ** 31), buf, buf.length) > 0);
});
