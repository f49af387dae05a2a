// src/copy.ts: payloads copied into shared memory by a loop of 4-byte stores (short ones) or
// TypedArray.prototype.set, and the per-runtime limit between them (ffi/mod.ts loopCopyMax).
import { assertEquals } from "./assert.ts";
import { runScript, test } from "./harness.ts";
import { copyIn, LOOP_COPY_MAX } from "../src/copy.ts";

test("copyIn copies every length 0..300 from every source byte offset to word-aligned targets and touches nothing else", () => {
  const u8 = new Uint8Array(1024);
  const i32 = new Int32Array(u8.buffer);
  const raw = new Uint8Array(320);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 13 + 5) & 255;
  for (let n = 0; n <= 300; n++) {
    for (let so = 0; so < 4; so++) {
      for (const at of [0, 4, 8, 60, 500]) {
        u8.fill(0xee);
        const src = raw.subarray(so, so + n);
        copyIn(u8, i32, at, src, n);
        for (let i = 0; i < n; i++) {
          if (u8[at + i] !== src[i]) throw new Error(`n ${n}, source offset ${so}, at ${at}: byte ${i}`);
        }
        for (const i of [at - 1, at + n, at + n + 1, at + n + 3]) {
          if (i >= 0 && i < u8.length && u8[i] !== 0xee) throw new Error(`n ${n}, at ${at}: wrote byte ${i}`);
        }
      }
    }
  }
  assertEquals(LOOP_COPY_MAX >= 0, true);
});

test("the loop copies up to 16 bytes on every runtime; SHMKIT_LOOP_COPY_MAX overrides it; logs and channels carry every length byte for byte either way", async () => {
  for (const rt of ["deno", "bun", "node"] as const) {
    for (const env of [undefined, "0", "1024"]) {
      const r = await runScript(
        rt,
        "tests/fixtures/copy_child.ts",
        env === undefined ? {} : { env: { SHMKIT_LOOP_COPY_MAX: env } },
      );
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!) as { loopCopyMax: number; bad: string };
      assertEquals(got.bad, "", `${rt}, SHMKIT_LOOP_COPY_MAX=${env}`);
      assertEquals(
        got.loopCopyMax,
        env === undefined ? 16 : Number(env),
        `${rt}, SHMKIT_LOOP_COPY_MAX=${env}`,
      );
    }
  }
});
