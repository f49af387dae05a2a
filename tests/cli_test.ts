import { spawn } from "node:child_process";
import { assert, assertEquals } from "./assert.ts";
import {
  PEER_RUNTIMES,
  ROOT,
  run,
  type RunResult,
  runScript,
  RUNTIME,
  type Runtime,
  runtimeCommand,
  RUNTIMES,
  test,
  uniqueName,
} from "./harness.ts";
import { SharedArray, SharedMemory } from "../mod.ts";

/** Runs the CLI in `rt` (Deno with the documented permissions only). */
function cli(rt: Runtime, ...args: string[]): Promise<RunResult> {
  const cmd = rt === "deno"
    ? [`${ROOT}node_modules/.bin/deno`, "run", "--allow-ffi", "--allow-read", "--quiet", "--no-check", `${ROOT}cli.ts`]
    : runtimeCommand(rt, "cli.ts");
  return run([...cmd, ...args], { timeout: 60_000 });
}

type Row = {
  name: string;
  shmkit: boolean;
  kind: string | null;
  size: number;
  creatorPid: number | null;
  creatorAlive: boolean | null;
  inUse: boolean;
  holders: number[];
};

test("shmkit ls lists a live object with kind, size, creator and in-use state, run from another runtime (SHMKIT_FULL_MATRIX=1: every runtime)", async () => {
  const name = uniqueName("clils");
  using a = SharedArray.zeros(name, "float64", [4]);
  try {
    for (const rt of PEER_RUNTIMES) {
      const r = await cli(rt, "ls", "--json");
      assertEquals(r.code, 0, `${rt}: ${r.stderr}`);
      const row = (JSON.parse(r.stdout) as Row[]).find((x) => x.name === name);
      assert(row, `${rt}: ${name} not listed`);
      assertEquals(row.kind, "array");
      assertEquals(row.size, a.byteOffset + 32);
      assertEquals(row.creatorPid, (globalThis as unknown as { process: { pid: number } }).process.pid);
      assertEquals(row.creatorAlive, true);
      assertEquals(row.inUse, true, `${rt}: this process maps it`);
      const text = await cli(rt, "ls");
      assert(text.stdout.includes(name) && /IN USE/.test(text.stdout), `${rt}: ${text.stdout}\n${text.stderr}`);
    }
  } finally {
    a.unlink();
  }
});

test("shmkit inspect prints an array's dtype and shape, and says when a segment is not shmkit", async () => {
  const name = uniqueName("cliinsp");
  const foreign = uniqueName("clifor");
  using a = SharedArray.zeros(name, "int16", [3, 5]);
  using f = SharedMemory.create(foreign, 4096);
  try {
    for (const rt of PEER_RUNTIMES) {
      const r = await cli(rt, "inspect", name, "--json");
      assertEquals(r.code, 0, `${rt}: ${r.stderr}`);
      const d = JSON.parse(r.stdout);
      assertEquals([d.kind, d.dtype, d.shape, d.length, d.byteOffset], ["array", "int16", [3, 5], 15, a.byteOffset]);
      assertEquals(d.state, "ready");
      // Typed fields: numbers, booleans and pid arrays, not display strings.
      assertEquals(d.creatorPid, (globalThis as unknown as { process: { pid: number } }).process.pid);
      assertEquals(d.creatorAlive, true);
      assert(Array.isArray(d.holders) && d.holders.every((p: unknown) => typeof p === "number"), `${rt}: holders`);
      assertEquals(typeof d.size, "number");
      const plain = await cli(rt, "inspect", "/" + name);
      assert(/dtype:\s+int16/.test(plain.stdout), `${rt}: ${plain.stdout}`);
      const nf = await cli(rt, "inspect", foreign);
      assertEquals(nf.code, 1, rt);
      assert(/not a shmkit object/.test(nf.stderr), `${rt}: ${nf.stderr}`);
      const missing = await cli(rt, "inspect", name + "-missing");
      assertEquals(missing.code, 1, rt);
      assert(/no segment named/.test(missing.stderr), `${rt}: ${missing.stderr}`);
    }
  } finally {
    a.unlink();
    f.unlink();
  }
});

test("shmkit ls and inspect show a creation time that is no valid date (a corrupt header) as unknown, not a crash", async () => {
  // Found by fuzzing the CLI readers (2026-12-02): new Date(1e300).toISOString() throws a RangeError,
  // so one corrupt header made `shmkit ls` fail for every segment. The fuzz child runs the readers now.
  const name = uniqueName("clitime");
  using a = SharedArray.zeros(name, "float64", [2]);
  try {
    for (const bad of [1e300, -1e17, 8.64e15 + 1]) {
      {
        using seg = SharedMemory.open(name, { trustOthers: true });
        new DataView(seg.buffer).setFloat64(40, bad, true); // the common header's createdMs
      }
      for (const rt of PEER_RUNTIMES) {
        const ls = await cli(rt, "ls", "--json");
        assertEquals(ls.code, 0, `${rt} ${bad}: ${ls.stderr}`);
        const row = (JSON.parse(ls.stdout) as (Row & { created: unknown })[]).find((x) => x.name === name);
        assert(row, `${rt}: ${name} not listed`);
        assertEquals([row.kind, row.created], ["array", null], `${rt} ${bad}`);
        const text = await cli(rt, "ls");
        assertEquals(text.code, 0, `${rt} ${bad}: ${text.stderr}`);
        assert(text.stdout.includes(name), `${rt}: ${text.stdout}`);
        const d = await cli(rt, "inspect", name, "--json");
        assertEquals(d.code, 0, `${rt} ${bad}: ${d.stderr}`);
        const j = JSON.parse(d.stdout);
        assertEquals([j.kind, j.created, j.dtype], ["array", null, "float64"], `${rt} ${bad}`);
        const plain = await cli(rt, "inspect", name);
        assert(/created:\s+unknown/.test(plain.stdout), `${rt} ${bad}: ${plain.stdout}\n${plain.stderr}`);
      }
    }
  } finally {
    a.unlink();
  }
});

test("shmkit rm removes objects, refuses foreign segments without --force and fails on unknown names", async () => {
  for (const rt of PEER_RUNTIMES) {
    const name = uniqueName("clirm");
    const foreign = uniqueName("clirmf");
    SharedArray.zeros(name, "uint8", 1).close();
    SharedMemory.create(foreign, 64).close();
    try {
      const r = await cli(rt, "rm", name, name + "-missing");
      assertEquals(r.code, 1, `${rt}: one name was unknown`);
      assert(/no segment named/.test(r.stderr), `${rt}: ${r.stderr}`);
      assert(!SharedMemory.exists(name), `${rt}: ${name} was not removed`);
      const f = await cli(rt, "rm", foreign);
      assertEquals(f.code, 1, rt);
      assert(/not a shmkit object/.test(f.stderr) && SharedMemory.exists(foreign), `${rt}: ${f.stderr}`);
      const forced = await cli(rt, "rm", "--force", foreign);
      assertEquals(forced.code, 0, `${rt}: ${forced.stderr}`);
      assert(!SharedMemory.exists(foreign), `${rt}: rm --force left ${foreign}: ${forced.stdout} ${forced.stderr}`);
    } finally {
      SharedMemory.unlink(name);
      SharedMemory.unlink(foreign);
    }
  }
});

test("shmkit gc removes objects no live process holds and keeps one a live process uses", async () => {
  const prefix = uniqueName("cligc");
  for (const rt of PEER_RUNTIMES) {
    const dead = `${prefix}-${rt}-dead`;
    const live = `${prefix}-${rt}-live`;
    const foreign = `${prefix}-${rt}-foreign`;
    const other = RUNTIMES[(RUNTIMES.indexOf(rt) + 1) % 3];
    await runScript(other, "tests/fixtures/cli_hold.ts", { args: ["create", dead] });
    SharedMemory.create(foreign, 64).close();
    const [cmd, ...cargs] = runtimeCommand(other, "tests/fixtures/cli_hold.ts");
    const holder = spawn(cmd, [...cargs, "hold", live], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = "";
        holder.stdout!.on("data", (d: Uint8Array) => {
          out += new TextDecoder().decode(d);
          if (out.includes("ready")) resolve();
        });
        holder.on("exit", (c) => reject(new Error(`holder exited ${c} before it was ready`)));
      });
      const ls = JSON.parse((await cli(rt, "ls", "--json")).stdout) as Row[];
      const d = ls.find((x) => x.name === dead)!;
      const l = ls.find((x) => x.name === live)!;
      assertEquals([d.creatorAlive, d.inUse], [false, false], `${rt}: the dead creator's object`);
      assertEquals(
        [l.creatorAlive, l.inUse, l.holders.includes(holder.pid!)],
        [true, true, true],
        `${rt}: the live holder's object`,
      );
      const dry = await cli(rt, "gc", "--dry-run", "--json", "--prefix", prefix);
      assertEquals(dry.code, 0, `${rt}: ${dry.stderr}`);
      assertEquals(JSON.parse(dry.stdout).removed, [dead], rt);
      assert(SharedMemory.exists(dead), `${rt}: --dry-run removed ${dead}`);
      const gc = await cli(rt, "gc", "--json", "--prefix", prefix);
      assertEquals(gc.code, 0, `${rt}: ${gc.stderr}`);
      const res = JSON.parse(gc.stdout);
      assertEquals(res.removed, [dead], rt);
      assertEquals(res.kept, [live], rt);
      assert(!SharedMemory.exists(dead), `${rt}: ${dead} is still there`);
      assert(SharedMemory.exists(live), `${rt}: gc removed ${live}, which a live process holds`);
      assert(SharedMemory.exists(foreign), `${rt}: gc removed a foreign segment`);
    } finally {
      holder.kill("SIGKILL");
      SharedMemory.unlink(dead);
      SharedMemory.unlink(live);
      SharedMemory.unlink(foreign);
    }
  }
});

test("shmkit --help exits 0 and a bad command or flag exits 2 with a message", async () => {
  for (const rt of PEER_RUNTIMES) {
    const h = await cli(rt, "--help");
    assertEquals(h.code, 0, rt);
    assert(/shmkit ls/.test(h.stdout) && /shmkit gc/.test(h.stdout), rt);
    const bad = await cli(rt, "frobnicate");
    assertEquals(bad.code, 2, rt);
    assert(/unknown command "frobnicate"/.test(bad.stderr), `${rt}: ${bad.stderr}`);
    const flag = await cli(rt, "rm", "--dry-run", "x");
    assertEquals(flag.code, 2, rt);
    const none = await cli(rt);
    assertEquals(none.code, 2, rt);
  }
  void RUNTIME;
});

test(
  "shmkit --version prints the version of package.json and deno.json (the CLI on another runtime than this leg's)",
  async () => {
    const { readFileSync } = await import("node:fs");
    const version = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")).version;
    assertEquals(JSON.parse(readFileSync(`${ROOT}deno.json`, "utf8")).version, version);
    for (const rt of PEER_RUNTIMES) {
      const r = await cli(rt, "--version");
      assertEquals(r.code, 0, `${rt}: ${r.stderr}`);
      assertEquals(r.stdout.trim(), `shmkit ${version}`, rt);
    }
    // The README's checkout form for Deno: `deno task cli ...` (deno.json).
    const t = await run([`${ROOT}node_modules/.bin/deno`, "task", "--quiet", "--cwd", ROOT, "cli", "--version"], {
      timeout: 60_000,
    });
    assertEquals([t.code, t.stdout.trim()], [0, `shmkit ${version}`], t.stderr);
  },
  { timeout: 120_000 },
);

test("shmkit ls --all lists a plain segment with size, owner, mode and live holders, typed in --json", async () => {
  const name = uniqueName("cliplain");
  // A plain (non-shmkit) segment held by a live child: what a leaking program leaves behind.
  using seg = SharedMemory.create(name, 12288, { mode: 0o640 });
  // The holder keeps /dev/shm/<name> open as its stdin (held, not mapped), like any program that leaked it.
  const { closeSync, openSync } = await import("node:fs");
  const fd = openSync(`/dev/shm/${name}`, "r");
  const holder = spawn("sh", ["-c", "echo ready; exec sleep 120"], { stdio: [fd, "pipe", "inherit"] });
  closeSync(fd);
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once("data", () => resolve());
      holder.once("exit", (c) => reject(new Error(`the holder exited ${c}`)));
    });
    for (const rt of PEER_RUNTIMES) {
      const plainLs = await cli(rt, "ls");
      assert(!plainLs.stdout.includes(name), `${rt}: ls without --all lists shmkit objects only`);
      const r = await cli(rt, "ls", "--all", "--json");
      assertEquals(r.code, 0, `${rt}: ${r.stderr}`);
      const row = (JSON.parse(r.stdout) as (Row & { uid: number; owner: string | null; mode: string })[])
        .find((x) => x.name === name);
      assert(row, `${rt}: ls --all lists ${name}`);
      assertEquals([row.shmkit, row.kind, row.size, row.mode], [false, null, 12288, "0640"], rt);
      const uid = (globalThis as unknown as { process: { getuid(): number } }).process.getuid();
      assertEquals(row.uid, uid, rt);
      assertEquals(typeof row.owner, uid === 0 ? "string" : typeof row.owner, rt);
      assert(row.holders.includes(holder.pid!), `${rt}: holders ${row.holders} include the live holder ${holder.pid}`);
      assertEquals(row.inUse, true, rt);
      const text = await cli(rt, "ls", "--all");
      const line = text.stdout.split("\n").find((l) => l.startsWith(name + " "));
      assert(line && /\(not shmkit\)\s+12288\s+\S+\s+0640/.test(line), `${rt}: ${line}`);
      // gc never removes it: it is not a shmkit object, and a live process holds it.
      const gc = await cli(rt, "gc", "--json", "--prefix", name);
      assertEquals(JSON.parse(gc.stdout).removed, [], rt);
    }
  } finally {
    holder.kill("SIGKILL");
    seg.unlink();
  }
}, { timeout: 180_000 });
