import { assert, assertEquals, assertCode } from "./assert.ts";
import { ROOT, RUNTIME, runScript, test, uniqueName } from "./harness.ts";
import { SharedMemory } from "../mod.ts";

test("SharedMemory.create then open sees the same bytes", () => {
  const name = uniqueName("seg");
  using a = SharedMemory.create(name, 4096);
  a.bytes().set([1, 2, 3]);
  using b = SharedMemory.open("/" + name);
  assertEquals(Array.from(b.bytes(0, 3)), [1, 2, 3]);
  assertEquals(b.size, 4096);
  a.unlink();
});

test("SharedMemory.create throws EEXIST when the name is taken", () => {
  const name = uniqueName("seg");
  using a = SharedMemory.create(name, 4096);
  assertCode(() => SharedMemory.create(name, 10), "EEXIST", /Cannot create shared memory/);
  a.unlink();
});

test("SharedMemory.close detaches views and is idempotent", () => {
  using a = SharedMemory.create(null, 4096);
  const v = a.view(Uint32Array);
  v[0] = 7;
  a.unlink();
  a.close();
  a.close();
  assert(a.closed);
  if (RUNTIME === "node") assertEquals(v[0], 0);
  else assertEquals(v.length, 0);
});

test("a child process of every runtime reads what this one wrote", async () => {
  using a = SharedMemory.create(null, 4096);
  a.bytes().set(new TextEncoder().encode("hi from " + RUNTIME));
  for (const rt of ["deno", "bun", "node"] as const) {
    const r = await runScript(rt, "tests/fixtures/read_segment.ts", { args: [JSON.stringify(a.handle())] });
    assertEquals(r.stdout.trim(), "hi from " + RUNTIME);
  }
  a.unlink();
  void ROOT;
});
