// What a user meets in the first hour: every TypeScript/JavaScript snippet of README.md and
// docs/*.md runs twice in a row (so none leaves a segment behind that makes a rerun fail) from a
// directory outside the repository, on this runtime (Node: only where it runs .ts itself, Node >=
// 22.18); the Python snippets run against an array made here; a Deno user type-checks and tests a
// program importing shmkit by relative path and by file URL; plain `deno run` with only the
// documented permissions asks for nothing else; CommonJS-free Node 24 runs a user's app.ts.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { ROOT, run, runPython, RUNTIME, test, uniqueName } from "./harness.ts";
import { Channel, SharedArray, SharedMemory } from "../mod.ts";

const DENO = `${ROOT}node_modules/.bin/deno`;
const BUN = `${ROOT}node_modules/.bin/bun`;
const proc = (globalThis as unknown as { process: { versions: { node?: string }; execPath: string } }).process;
const nodeVersion = (proc.versions.node ?? "0.0").split(".").map(Number);
const nodeRunsTs = nodeVersion[0] > 22 || (nodeVersion[0] === 22 && nodeVersion[1] >= 18);
const skipTs = RUNTIME === "node" && !nodeRunsTs
  ? `Node ${proc.versions.node} does not run .ts files (Node >= 22.18 does; the node leg runs Node 24)`
  : false;

interface Snippet {
  file: string;
  line: number;
  lang: string;
  code: string;
}

function snippets(): Snippet[] {
  const files = ["README.md", ...readdirSync(`${ROOT}docs`).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  for (const f of readdirSync(`${ROOT}docs/layout`)) if (f.endsWith(".md")) files.push(`docs/layout/${f}`);
  const out: Snippet[] = [];
  for (const file of files) {
    const lines = readFileSync(`${ROOT}${file}`, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const m = /^```(ts|typescript|js|javascript|python)\s*$/.exec(lines[i]);
      if (!m) continue;
      const start = i + 1;
      while (++i < lines.length && !lines[i].startsWith("```"));
      out.push({ file, line: start, lang: m[1], code: lines.slice(start, i).join("\n") });
    }
  }
  return out;
}

/** The snippet as a user's file outside the repository: "./mod.ts" and "shmkit" become the checkout's mod.ts. */
function userFile(code: string): string {
  return code.replace(/from "(\.\/mod\.ts|shmkit)"/g, `from "${ROOT}mod.ts"`);
}

function commandFor(file: string): string[] {
  if (RUNTIME === "deno") return [DENO, "run", "--allow-all", "--quiet", file];
  if (RUNTIME === "bun") return [BUN, file];
  return [proc.execPath, file];
}

const all = snippets();
const code = all.filter((s) => s.lang !== "python");
const python = all.filter((s) => s.lang === "python");

test("README.md and docs/*.md have TypeScript and Python snippets to test", () => {
  assert(code.some((s) => s.file === "README.md"), "README.md has TypeScript snippets");
  assert(python.some((s) => s.file === "README.md"), "README.md has the numpy recipe");
});

for (const s of code) {
  test(`${s.file}:${s.line} runs twice in a row from outside the repository (${RUNTIME})`, async () => {
    const dir = mkdtempSync(`${tmpdir()}/shmkit-readme-`);
    try {
      const file = `${dir}/snippet.ts`;
      writeFileSync(file, userFile(s.code));
      if (RUNTIME === "deno") {
        const c = await run([DENO, "check", "--quiet", file], { timeout: 120_000 });
        assertEquals(c.code, 0, `deno check ${s.file}:${s.line}:\n${c.stdout}\n${c.stderr}`);
      }
      for (const round of [1, 2]) {
        const r = await run(["sh", "-c", 'cd "$0" && exec "$@"', dir, ...commandFor(file)], { timeout: 120_000 });
        assertEquals(r.code, 0, `run ${round} of ${s.file}:${s.line}:\n${r.stdout}\n${r.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, { skip: skipTs, timeout: 300_000 });
}

// The Python snippets read an int64 array named "grid" (docs) or a SharedArray handle `h` (README).
for (const s of python) {
  test(`${s.file}:${s.line} (Python) runs against an array made by shmkit`, async () => {
    using a = SharedArray.create(s.code.includes('name="grid"') ? "grid" : null, "int64", [2, 3]);
    a.data.set([1n, 2n, 3n, 4n, 5n, 6n]);
    try {
      const prelude = [
        "import json, sys",
        "import numpy as np",
        "from multiprocessing import shared_memory, resource_tracker",
        "h = json.loads(sys.argv[1])",
      ].join("\n");
      const epilogue = [
        "try: resource_tracker.unregister(shm._name, 'shared_memory')",
        "except Exception: pass",
        "print(json.dumps(arr.tolist()))",
        "del arr",
        "shm.close()",
      ].join("\n");
      const r = await runPython(`${prelude}\n${s.code}\n${epilogue}`, { args: [JSON.stringify(a.handle())] });
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!) as number[][];
      assertEquals(got.length, 2);
      assertEquals(got[1], [4, 5, 6]);
      if (s.file === "README.md") assertEquals(a.data[0], 2n, "arr[0] += 1 reached the TypeScript side");
    } finally {
      a.unlink();
    }
  }, { skip: RUNTIME === "deno" ? false : "runs once, from the Deno pass" });
}

const APP = `import { SharedMemory } from "SHMKIT";
const seg = SharedMemory.create(null, 4096);
seg.bytes()[0] = 42;
console.log(seg.bytes()[0]);
seg.unlink();
seg.close();
`;

const APP_TEST = `import { SharedMemory } from "SHMKIT";
Deno.test("a user's test sees shmkit", () => {
  using seg = SharedMemory.create(null, 64);
  seg.bytes()[1] = 7;
  if (seg.bytes()[1] !== 7) throw new Error("no");
  seg.unlink();
});
`;

test(
  "Deno: a program importing shmkit by relative path and by file URL from outside the repository passes deno check and deno test",
  async () => {
    const dir = mkdtempSync(`${tmpdir()}/shmkit-user-`);
    try {
      // dir/app/ beside a copy-free link to the checkout: ../shmkit/mod.ts is a relative import.
      mkdirSync(`${dir}/app`);
      await run(["ln", "-s", ROOT.replace(/\/$/, ""), `${dir}/shmkit`]);
      const forms = { relative: "../shmkit/mod.ts", url: new URL("mod.ts", `file://${ROOT}`).href };
      for (const [form, spec] of Object.entries(forms)) {
        writeFileSync(`${dir}/app/${form}.ts`, APP.replace("SHMKIT", spec));
        writeFileSync(`${dir}/app/${form}_test.ts`, APP_TEST.replace("SHMKIT", spec));
        const inApp = (cmd: string[]) =>
          run(["sh", "-c", 'cd "$0" && exec "$@"', `${dir}/app`, ...cmd], { timeout: 120_000 });
        const c = await inApp([DENO, "check", `${form}.ts`, `${form}_test.ts`]);
        assertEquals(c.code, 0, `deno check (${form}):\n${c.stdout}\n${c.stderr}`);
        assert(!/koffi|TS2307/.test(c.stderr), `no koffi/TS2307 (${form}): ${c.stderr}`);
        const t = await inApp([DENO, "test", "--allow-ffi", "--allow-env=SHMKIT_LIB", `${form}_test.ts`]);
        assertEquals(t.code, 0, `deno test (${form}):\n${t.stdout}\n${t.stderr}`);
        const r = await inApp([DENO, "run", "--allow-ffi", "--allow-env=SHMKIT_LIB", `${form}.ts`]);
        assertEquals([r.code, r.stdout.trim()], [0, "42"], `deno run (${form}): ${r.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip: RUNTIME === "deno" ? false : "a Deno user's workflow: runs once, from the Deno pass", timeout: 300_000 },
);

test(
  "Deno: deno run with --allow-ffi --allow-env=SHMKIT_LIB asks for no other permission (no SHMKIT_FAULT, no read)",
  async () => {
    const dir = mkdtempSync(`${tmpdir()}/shmkit-perm-`);
    try {
      writeFileSync(`${dir}/app.ts`, APP.replace("SHMKIT", `${ROOT}mod.ts`));
      // `script` gives Deno a terminal, so a missing permission would show up as a prompt (answered by EOF: denied).
      const cmd = `${DENO} run --allow-ffi --allow-env=SHMKIT_LIB ${dir}/app.ts`;
      const r = await run(["script", "-qec", cmd, "/dev/null"], { timeout: 120_000, env: { NO_COLOR: "1" } });
      const out = r.stdout + r.stderr;
      assert(!/requests|Allow\?|NotCapable/i.test(out), `a permission was asked for:\n${out}`);
      assert(!out.includes("SHMKIT_FAULT"), out);
      assertEquals(r.code, 0, out);
      assert(/^42\s*$/m.test(out), out);
      // And with no env permission at all, it still runs (SHMKIT_LIB is then simply not read) with --no-prompt.
      const bare = await run([DENO, "run", "--no-prompt", "--allow-ffi", `${dir}/app.ts`], { timeout: 120_000 });
      assertEquals([bare.code, bare.stdout.trim()], [0, "42"], bare.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { skip: RUNTIME === "deno" ? false : "a Deno user's permissions: runs once, from the Deno pass", timeout: 200_000 },
);

test("Node 24 runs a user's app.ts importing mod.ts directly, with no build step", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shmkit-node-ts-`);
  try {
    writeFileSync(
      `${dir}/app.ts`,
      APP.replace("SHMKIT", `${ROOT}mod.ts`).replace("const seg", "const seg: SharedMemory"),
    );
    const r = await run([proc.execPath, `${dir}/app.ts`], { timeout: 120_000 });
    assertEquals([r.code, r.stdout.trim()], [0, "42"], r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, {
  skip: RUNTIME !== "node"
    ? "runs from the Node pass"
    : nodeRunsTs
    ? false
    : `Node ${proc.versions.node} does not run .ts`,
});

test("a SHMKIT_LIB that cannot be loaded is an ENOLIB error naming the path, not another copy", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shmkit-enolib-`);
  try {
    const file = `${dir}/app.ts`;
    writeFileSync(
      file,
      `try { await import(${
        JSON.stringify(`${ROOT}mod.ts`)
      }); console.log("loaded"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }\n`,
    );
    const cmd = RUNTIME === "node" && !nodeRunsTs
      ? (writeFileSync(
        `${dir}/app.mjs`,
        readFileSync(file, "utf8").replace(`${ROOT}mod.ts`, `${ROOT}build/node/mod.js`),
      ),
        [proc.execPath, `${dir}/app.mjs`])
      : commandFor(file);
    const r = await run(cmd, { env: { SHMKIT_LIB: "/nonexistent/libshmkit.so" }, timeout: 60_000 });
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { code?: string; message?: string };
    assertEquals(out.code, "ENOLIB", r.stdout);
    assert(out.message?.includes("SHMKIT_LIB=/nonexistent/libshmkit.so"), String(out.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("close() and release() detach every view handed out (Node >= 22 like Deno and Bun; Node 20 reads zeros)", () => {
  const detaches = RUNTIME !== "node" ||
    typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === "function";
  using seg = SharedMemory.create(null, 4096);
  seg.unlink();
  const v = seg.bytes();
  v[0] = 9;
  seg.close();
  if (detaches) assertEquals([v.length, (v.buffer as ArrayBuffer).detached], [0, true], "SharedMemory.close");
  else assertEquals(v[0], 0, "Node 20: the closed range reads zeros");
  using a = SharedArray.create(null, "float64", 4);
  a.unlink();
  const d = a.data;
  a.close();
  if (detaches) assertEquals(d.length, 0, "SharedArray.close");
  // Channel, default { detach: "close" }: release() keeps the reused slot view (a kept reference
  // may read a newer message, never crash); close() detaches every view the object handed out.
  const name = uniqueName("detach");
  const ch = Channel.create(name, { slots: 2, slotSize: 64 });
  assert(ch.trySend("hello"));
  const m = ch.tryRecv()!;
  const b = m.bytes;
  assertEquals(b.length, 5);
  m.release();
  assertEquals(new TextDecoder().decode(b), "hello", "default mode: a kept view still reads the slot after release");
  ch.close();
  if (detaches) assertEquals([b.length, (b.buffer as ArrayBuffer).detached], [0, true], "Channel.close");
  // { detach: "message" }: release() detaches that message's view.
  using strict = Channel.open(name, { detach: "message" });
  strict.unlink();
  assert(strict.trySend("hello"));
  const m2 = strict.tryRecv()!;
  const b2 = m2.bytes;
  assertEquals(b2.length, 5);
  m2.release();
  if (detaches) assertEquals([b2.length, (b2.buffer as ArrayBuffer).detached], [0, true], "strict Message.release");
  // Node 20 cannot detach, and a released slot is not tombstoned (it goes back to the pool): the
  // stale view still reads the slot until a later message reuses it (README, known limitations).
  else assertEquals(b2.length, 5, "Node 20: the released view is not detached");
});
