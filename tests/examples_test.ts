// Runs every program in examples/ (and the `make demo` parent in quick mode) as a user would,
// each with a bounded time, and checks what it prints.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { ROOT, runScript, RUNTIME, type Runtime, runtimeCommand, test } from "./harness.ts";

const OTHER: Record<Runtime, Runtime> = { deno: "bun", bun: "node", node: "deno" };

function leftovers(prefix: string): string[] {
  return readdirSync("/dev/shm").filter((f) => f.startsWith(prefix));
}

test("examples/bun_subprocesses.ts shares a Channel and a SharedArray with Bun.spawn workers", async () => {
  const r = await runScript("bun", "examples/bun_subprocesses.ts", {
    args: ["--workers", "2", "--ranges", "8"],
    timeout: 90_000,
  });
  assert(/primes below 160000: 14683 \(from 2 workers; checked: ok\)/.test(r.stdout), r.stdout);
  assertEquals(r.stdout.match(/^worker \d+: \d+ ranges$/gm)?.length, 2);
});

test(`examples/deno_bun_pipeline.ts streams JSON from a ${RUNTIME} producer to a Bun consumer and back`, async () => {
  const r = await runScript(RUNTIME, "examples/deno_bun_pipeline.ts", { args: ["--count", "3000"], timeout: 90_000 });
  assert(r.stdout.includes("bun: received 3000 readings"), r.stdout + r.stderr);
  assert(r.stdout.includes("bun aggregated 3000 readings"), r.stdout);
  assert(r.stdout.includes("the summary matches what was sent"), r.stdout);
});

test(`examples/python_interop.ts (${RUNTIME}) and python_interop.py exchange a segment and a numpy array`, async () => {
  const r = await runScript(RUNTIME, "examples/python_interop.ts", { timeout: 90_000 });
  assert(r.stdout.includes("sum=249750.0"), r.stdout + r.stderr);
  assert(r.stdout.includes("sum matches; array doubled in place"), r.stdout);
});

test(`examples/message_board.ts: a ${RUNTIME} writer updates the board, a ${OTHER[RUNTIME]} reader prints each message`, async () => {
  const file = `${tmpdir()}/shmkit-test-board-${Math.floor(Math.random() * 1e9)}.bin`;
  try {
    const writer = runScript(RUNTIME, "examples/message_board.ts", {
      args: ["writer", "--file", file, "--seconds", "3", "--interval", "500"],
      timeout: 60_000,
    });
    const reader = runScript(OTHER[RUNTIME], "examples/message_board.ts", {
      args: ["reader", "--file", file, "--seconds", "4", "--interval", "50"],
      timeout: 60_000,
    });
    const [w, r] = await Promise.all([writer, reader]);
    const wrote = w.stdout.match(/^wrote: (.*)$/gm)!.map((l) => l.slice(7));
    const read = r.stdout.match(/^read: (.*)$/gm)?.map((l) => l.slice(6)) ?? [];
    assert(wrote.length >= 4, w.stdout);
    // The reader starts late (process start-up) but then sees every later message, whole.
    assert(read.length >= 2, `reader saw ${read.length} messages:\n${r.stdout}\n${r.stderr}`);
    for (const m of read) assert(wrote.includes(m), `read a message nobody wrote: ${m}`);
    assertEquals(read.at(-1), wrote.at(-1));
  } finally {
    rmSync(file, { force: true });
  }
});

test(`the make demo parent (${RUNTIME}, --quick) runs Bun, Deno and Node children and verifies every checksum`, async () => {
  const r = await runScript(RUNTIME, "demo.ts", { args: ["--quick"], timeout: 100_000 });
  assert(r.stdout.includes("every checksum verified"), r.stdout + r.stderr);
  for (const route of ["bun -> deno", "node -> bun", "deno -> node"]) {
    assertEquals(r.stdout.split("\n").filter((l) => l.includes(route) && / ok\s*$/.test(l)).length >= 2, true, route);
  }
  assert(/1 MiB frames\s+bun -> deno\s+shmkit Channel/.test(r.stdout), r.stdout);
  // The JSON floor: each side's own JSON work with no transport, measured by the same children.
  assert(
    /JSON alone, no transport: node builds \+ stringifies [0-9.]+( [kM])? ticks\/s, bun decodes \+ parses \+ checks [0-9.]+( [kM])?\/s: a transport that cost nothing would be [0-9.]+ x the pipe/
      .test(r.stdout),
    r.stdout,
  );
  assert(new RegExp(`1 MiB frames\\s+${RUNTIME} worker -> main\\s+worker postMessage.* ok`).test(r.stdout), r.stdout);
});

test(`the demo stops its children and removes its segments on SIGINT (${RUNTIME})`, async () => {
  assert(existsSync(`${ROOT}demo.ts`));
  const cmd = runtimeCommand(RUNTIME, "demo.ts");
  const child = spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
  const closed = new Promise<[number | null, string | null]>((resolve) =>
    child.on("close", (code, sig) => resolve([code, sig]))
  );
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  // Interrupt as soon as the first channel exists (full mode: the first run lasts seconds).
  const prefix = `shmkit-demo-${child.pid}-`;
  for (let k = 0; k < 600 && leftovers(prefix).length === 0 && child.exitCode === null; k++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert(leftovers(prefix).length > 0, "the demo created its first channel");
  child.kill("SIGINT");
  const [code, sig] = await closed;
  clearTimeout(timer);
  // exit(130) from the handler; Deno may report the interrupt as the signal itself.
  assert(code === 130 || sig === "SIGINT", `exit ${code} ${sig}\n${out}`);
  assert(out.includes("interrupted: stopping the children and removing the demo's segments"), out);
  assertEquals(leftovers(prefix), []);
});
