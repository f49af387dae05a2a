// Importing shmkit from a URL (as from JSR or deno.land): there is no build/ next to the module,
// so ffi/mod.ts fetches csrc/ over HTTP into a cache directory and compiles it there, or fails
// with ENOLIB saying what is missing. The repository is served (without build/, npm/,
// node_modules/) from 127.0.0.1 and imported by Deno children.
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { ROOT, run, RUNTIME, test } from "./harness.ts";
import { SharedMemory } from "../mod.ts";

const skip = RUNTIME === "deno"
  ? false
  : "the remote-URL import is a Deno feature; its children are Deno, so it runs once, from the Deno pass";

/** Serves the repository read-only; build/, npm/, node_modules/ and dotfiles answer 404. */
function serveRepository(): Promise<{ server: Server; base: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    requests.push(path);
    const hidden = /^\/(build|npm|node_modules|prebuilt)\//.test(path) || path.includes("/.") || path.includes("..");
    let body: Uint8Array | undefined;
    if (!hidden) {
      try {
        if (statSync(ROOT + path.slice(1)).isFile()) body = readFileSync(ROOT + path.slice(1));
      } catch { /* 404 below */ }
    }
    if (!body) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    const type = path.endsWith(".ts")
      ? "application/typescript"
      : path.endsWith(".json")
      ? "application/json"
      : "text/plain";
    res.writeHead(200, { "content-type": type, "content-length": String(body.length) });
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address() as { port: number };
      resolve({ server, base: `http://127.0.0.1:${addr.port}/`, requests });
    });
  });
}

function denoChild(dir: string, code: string, env: Record<string, string>) {
  const script = `${dir}/child_${Math.random().toString(36).slice(2)}.ts`;
  writeFileSync(script, code);
  return run([`${ROOT}node_modules/.bin/deno`, "run", "--allow-all", "--quiet", "--no-check", "--no-lock", script], {
    env: { DENO_DIR: `${dir}/deno_dir`, SHMKIT_LIB: "", SHMKIT_CACHE_DIR: "", NO_COLOR: "1", ...env },
    timeout: 150_000,
  });
}

test("mod.ts imported from an HTTP URL builds libshmkit into XDG_CACHE_HOME and interoperates", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shmkit-remote-`);
  const { server, base, requests } = await serveRepository();
  try {
    const name = `shmkit-test-remote-${(globalThis as { process?: { pid: number } }).process?.pid ?? 0}-${Date.now()}`;
    const code = `
      import { SharedMemory } from "${base}mod.ts";
      import { native } from "${base}ffi/mod.ts";
      const seg = SharedMemory.create(${JSON.stringify(name)}, 4096);
      seg.bytes().set(new TextEncoder().encode("built from a URL"));
      console.log(JSON.stringify({ lib: native.libraryPath }));
      seg.close();
    `;
    const r = await denoChild(dir, code, { XDG_CACHE_HOME: `${dir}/cache` });
    try {
      assertEquals(r.code, 0, `the Deno child failed:\n${r.stdout}\n${r.stderr}`);
      const { lib } = JSON.parse(r.stdout.trim().split("\n").pop()!) as { lib: string };
      assert(lib.startsWith(`${dir}/cache/shmkit/linux-`) && lib.endsWith("/libshmkit.so"), `library path ${lib}`);
      assert(statSync(lib).isFile(), `${lib} exists`);
      assert(
        requests.includes("/csrc/shmkit.c") && requests.includes("/csrc/os_linux.c"),
        "csrc/ was fetched over HTTP",
      );
      assert(!requests.some((p) => p.startsWith("/build/")), "nothing under build/ was requested");
      // This process (local build/) reads what the cache-built library wrote.
      using seg = SharedMemory.open(name);
      const b = seg.bytes(0, 16);
      assertEquals(new TextDecoder().decode(b), "built from a URL");
    } finally {
      SharedMemory.unlink(name);
    }
    // A second import reuses the cached library: same path, csrc/ is fetched again only to hash it.
    const r2 = await denoChild(dir, `import { native } from "${base}ffi/mod.ts"; console.log(native.libraryPath);`, {
      XDG_CACHE_HOME: `${dir}/cache`,
    });
    assertEquals(r2.code, 0, r2.stderr);
    assert(r2.stdout.trim().startsWith(`${dir}/cache/shmkit/linux-`), r2.stdout);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip, timeout: 200_000 });

test("a program importing mod.ts from the HTTP URL type-checks (deno check) and its deno test passes", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shmkit-remote-`);
  const { server, base } = await serveRepository();
  try {
    const app = `${dir}/app_test.ts`;
    writeFileSync(
      app,
      `import { SharedArray, SharedMemory } from "${base}mod.ts";
Deno.test("shmkit from a URL", () => {
  using a = SharedArray.create(null, "float64", 3);
  a.unlink(); // a random name: remove it now, the mapping stays until close
  const f: Float64Array = a.data;
  f[0] = 1.5;
  using seg: SharedMemory = SharedMemory.create(null, 64);
  seg.unlink();
  if (f.reduce((x, y) => x + y, 0) !== 1.5) throw new Error("sum");
});
`,
    );
    const env = {
      DENO_DIR: `${dir}/deno_dir`,
      SHMKIT_LIB: "",
      SHMKIT_CACHE_DIR: "",
      NO_COLOR: "1",
      XDG_CACHE_HOME: `${dir}/cache`,
    };
    const c = await run([`${ROOT}node_modules/.bin/deno`, "check", "--allow-import", "--no-lock", app], {
      env,
      timeout: 150_000,
    });
    assertEquals(c.code, 0, `deno check of a URL import:\n${c.stdout}\n${c.stderr}`);
    assert(!/koffi|TS2307/.test(c.stderr), c.stderr);
    const t = await run([`${ROOT}node_modules/.bin/deno`, "test", "--allow-all", "--quiet", "--no-lock", app], {
      env,
      timeout: 150_000,
    });
    assertEquals(t.code, 0, `deno test of a URL import:\n${t.stdout}\n${t.stderr}`);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip, timeout: 200_000 });

test("mod.ts imported from a URL without a compiler fails with ENOLIB naming SHMKIT_LIB and cc", async () => {
  const dir = mkdtempSync(`${tmpdir()}/shmkit-remote-`);
  const { server, base } = await serveRepository();
  try {
    const code = `
      try {
        await import("${base}mod.ts");
        console.log(JSON.stringify({ loaded: true }));
      } catch (e) {
        console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message }));
      }
    `;
    const r = await denoChild(dir, code, { XDG_CACHE_HOME: `${dir}/cache`, CC: "/nonexistent" });
    assertEquals(r.code, 0, `the Deno child failed:\n${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
      name?: string;
      code?: string;
      message?: string;
      loaded?: boolean;
    };
    assertEquals(out.loaded, undefined, "the library must not load without a compiler or SHMKIT_LIB");
    assertEquals(out.name, "ShmError");
    assertEquals(out.code, "ENOLIB");
    const msg = out.message ?? "";
    assert(msg.includes("SHMKIT_LIB"), `names SHMKIT_LIB: ${msg}`);
    assert(msg.includes("`/nonexistent` (from $CC) was not found"), `names the missing compiler: ${msg}`);
    assert(msg.includes("`cc`"), `names cc: ${msg}`);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, { skip, timeout: 200_000 });
