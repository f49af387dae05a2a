// Signals and blocking calls: a process blocked in ring.dequeue() (every blocking call ends in the
// native futex wait) that handles SIGINT must get control back so its handler runs; one that
// does not handle it must still die of it. Children of every runtime.
import { assert, assertEquals } from "./assert.ts";
import { runtimeCommand, RUNTIMES, test, uniqueName } from "./harness.ts";
import { Ring } from "../mod.ts";
import { nowNs } from "../src/sys.ts";
import { spawn } from "node:child_process";
import process from "node:process";

interface Outcome {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** ms from kill() to the child's exit. */
  exitMs: number;
  /** CLOCK_MONOTONIC ns when the signal was sent. */
  sentNs: number;
}

// Deno's node:child_process reports signalCode "SIGINT" for any child it was asked to kill with
// SIGINT, even one that then exits 0: send the signal with process.kill(pid) instead.

/** Spawns the child, waits until it blocks, sends SIGINT and waits (at most 10 s) for its exit. */
function interruptChild(rt: (typeof RUNTIMES)[number], name: string, handler: boolean): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const cmd = runtimeCommand(rt, "tests/fixtures/signal_child.ts");
    const child = spawn(cmd[0], [...cmd.slice(1), name, handler ? "1" : "0"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let killedAt = 0;
    let sentNs = 0;
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout!.on("data", (d: Uint8Array) => {
      stdout += new TextDecoder().decode(d);
      if (killedAt === 0 && stdout.includes("ready")) {
        killedAt = -1;
        // Let it block in the futex wait (past the first 50 ms slices), then interrupt it.
        setTimeout(() => {
          killedAt = performance.now();
          sentNs = nowNs();
          process.kill(child.pid!, "SIGINT");
        }, 300);
      }
    });
    child.stderr!.on("data", (d: Uint8Array) => stderr += new TextDecoder().decode(d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr, exitMs: killedAt > 0 ? performance.now() - killedAt : -1, sentNs });
    });
  });
}

for (const rt of RUNTIMES) {
  test(`a ${rt} child blocked in ring.dequeue() with a SIGINT handler gets EINTR, runs the handler and exits 0`, async () => {
    const name = uniqueName("sig");
    using ring = Ring.create(name, { capacity: 4 });
    try {
      const r = await interruptChild(rt, name, true);
      const info = `${rt}: exit ${r.code ?? r.signal} after ${
        r.exitMs.toFixed(0)
      } ms\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
      assertEquals(r.code, 0, info);
      assert(r.stdout.includes("EINTR at"), info);
      assert(r.stdout.includes("handled"), info);
      // The design goal is < 100 ms from the signal to the handler; measured, not asserted.
      const at = (what: string) => Number(/at (\d+)/.exec(r.stdout.slice(r.stdout.indexOf(what)))?.[1] ?? NaN);
      const eintrMs = (at("EINTR at") - r.sentNs) / 1e6;
      const handledMs = (at("handled at") - r.sentNs) / 1e6;
      console.log(
        `signal: ${rt} child: EINTR ${eintrMs.toFixed(1)} ms, handler ${handledMs.toFixed(1)} ms, exit ${
          r.exitMs.toFixed(0)
        } ms after SIGINT`,
      );
      assert(r.exitMs >= 0 && r.exitMs < 2_000, info);
    } finally {
      ring.unlink();
    }
  });

  test(`a ${rt} child blocked in ring.dequeue() without a handler dies of SIGINT`, async () => {
    const name = uniqueName("sig");
    using ring = Ring.create(name, { capacity: 4 });
    try {
      const r = await interruptChild(rt, name, false);
      const info = `${rt}: exit ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
      assertEquals(r.signal, "SIGINT", info);
      assert(!r.stdout.includes("EINTR"), info);
    } finally {
      ring.unlink();
    }
  });
}
