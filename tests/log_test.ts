// MessageLog: records of every size in both modes, padding at the wrap, counters across 2^32,
// full log, batches, claims, waits, roles, close, corrupt records and dead-writer recovery, and
// cross-process/cross-runtime exactly-once delivery.
import { assert, assertCode, assertEquals, assertRejectsCode } from "./assert.ts";
import { prng, runScript, RUNTIME, RUNTIMES, test, uniqueName } from "./harness.ts";
import {
  attach,
  LogClaim,
  type LogMode,
  MessageLog,
  type MessageLogCreateOptions,
  SharedMemory,
  ShmError,
} from "../mod.ts";
import { IN_PROGRESS, LOG, LOG_HEADER_SIZE, LOG_SLOT_SIZE, TYPE_PAD } from "../src/log.ts";
import { inspect } from "../src/inspect.ts";
import { errorText, fillPayload, payloadLength, recordType, ST_WRITERS, STATUS_BYTES } from "./fixtures/log_common.ts";

const MODES: LogMode[] = ["spsc", "mpsc"];
const proc = (globalThis as unknown as { process: { pid: number } }).process;

function withLog(
  mode: LogMode,
  capacity: number,
  fn: (log: MessageLog, name: string) => void | Promise<void>,
  extra: { initialPosition?: number; maxRecord?: number } = {},
) {
  return async () => {
    const name = uniqueName("log");
    const log = MessageLog.create(name, { capacity, mode, ...extra } as MessageLogCreateOptions); // initialPosition: test-only
    try {
      await fn(log, name);
    } finally {
      log.unlink();
      log.close();
    }
  };
}

/** Words of the log header as a second view (to watch or corrupt shared state). */
function ctl(name: string): { seg: SharedMemory; u32: Uint32Array; dataOff: number } {
  const seg = SharedMemory.open(name);
  const u32 = seg.view(Uint32Array, 0, LOG_HEADER_SIZE / 4);
  return { seg, u32, dataOff: u32[LOG.dataOffset / 4] };
}

for (const mode of MODES) {
  test(
    `MessageLog(${mode}) delivers records of every length 0..maxRecord with their types, in order`,
    withLog(mode, 4096, (log) => {
      assertEquals(log.maxRecord, 2040);
      const lens = [0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 2039, 2040];
      for (const [i, n] of lens.entries()) {
        const d = new Uint8Array(n).map((_, j) => (j * 13 + n) & 255);
        log.write(d, { type: i * 1000, timeout: 1000 });
        const r = log.read({ timeout: 1000 });
        assertEquals([r.length, r.type], [n, i * 1000]);
        assertEquals(Array.from(r.bytes), Array.from(d));
        assertEquals(Array.from(r.copy()), Array.from(d));
        r.release(); // consumed now, not at the next read: the next write needs the room
      }
      assertEquals(log.tryRead(), undefined);
      assertEquals(log.size, 0);
      assert(log.tryWrite("héllo wörld ✓ 🎉", 65535));
      const r = log.tryRead()!;
      assertEquals([r.text(), r.type], ["héllo wörld ✓ 🎉", 65535]);
      assert(log.tryWriteJson({ a: [1, "x"] }));
      assertEquals(log.tryRead()!.json(), { a: [1, "x"] });
      log.validate();
    }),
  );

  test(
    `MessageLog(${mode}) rejects a record longer than maxRecord and a bad type with RangeError`,
    withLog(mode, 1024, (log) => {
      let e: unknown;
      try {
        log.tryWrite(new Uint8Array(log.maxRecord + 1));
      } catch (x) {
        e = x;
      }
      assert(e instanceof RangeError);
      for (const t of [-1, 65536, 1.5]) {
        e = undefined;
        try {
          log.tryWrite("x", t);
        } catch (x) {
          e = x;
        }
        assert(e instanceof RangeError, `type ${t}`);
      }
      assertEquals(log.tryRead(), undefined);
    }, { maxRecord: 100 }),
  );

  test(
    `MessageLog(${mode}) pads to the start when a record does not fit before the end`,
    withLog(mode, 256, (log, name) => {
      const { seg, u32, dataOff } = ctl(name);
      try {
        // 3 records of 64 bytes (56-byte payloads), consume them, then a 100-byte payload (112 bytes)
        // does not fit in the last 64 bytes: a 64-byte padding goes first.
        for (let i = 0; i < 3; i++) assert(log.tryWrite(new Uint8Array(56).fill(i)));
        assertEquals(log.tryReadBatch(() => {}), 3);
        assert(log.tryWrite(new Uint8Array(100).fill(9), 5));
        const d = seg.view(Uint32Array, dataOff, 64);
        assertEquals([d[48], d[49]], [64, TYPE_PAD]);
        assertEquals([d[0], d[1]], [108, 5]);
        assertEquals(u32[LOG.tail / 4] - u32[LOG.head / 4], 64 + 112);
        const r = log.tryRead()!;
        assertEquals([r.length, r.type, r.offset, r.data[r.offset]], [100, 5, 8, 9]);
        assertEquals(log.tryRead(), undefined);
      } finally {
        seg.close();
      }
    }),
  );

  for (const start of [2 ** 32 - 512, 2 ** 32 - 8, 2 ** 31 - 64]) {
    test(
      `MessageLog(${mode}) keeps order and bytes across counter wraparound (start ${start})`,
      withLog(mode, 1024, (log) => {
        const rnd = prng(start);
        const model: Uint8Array[] = [];
        let w = 0;
        let r = 0;
        for (let step = 0; step < 4000; step++) {
          const op = rnd();
          if (op < 0.4) {
            const d = new Uint8Array(Math.floor(rnd() * 200)).fill(w & 255);
            if (log.tryWrite(d, w & 0xffff)) {
              model.push(d);
              w++;
            }
          } else if (op < 0.55) {
            const items = Array.from(
              { length: 1 + Math.floor(rnd() * 5) },
              () => new Uint8Array(Math.floor(rnd() * 120)).fill(w & 255),
            );
            const k = log.tryWriteBatch(items, w & 0xffff);
            for (let i = 0; i < k; i++) {
              model.push(items[i]);
            }
            // every record of a batch has the batch's type: remember it in the bytes' fill only
            w += k;
            for (let i = 0; i < k; i++) model[model.length - k + i] = new Uint8Array(items[i]).fill((w - k) & 255);
          } else {
            log.tryReadBatch((rec) => {
              const want = model[r];
              assertEquals(rec.length, want.length, `record ${r}`);
              for (let i = 0; i < want.length; i++) {
                if (rec.data[rec.offset + i] !== want[i]) throw new Error(`record ${r} byte ${i}`);
              }
              r++;
            }, 1 + Math.floor(rnd() * 4));
          }
          if (step % 97 === 0) log.validate();
        }
        while (log.tryRead()) r++;
        assertEquals(r, model.length);
        assert(w > 500, `only ${w} records written`);
      }, { initialPosition: start }),
    );
  }

  test(
    `MessageLog(${mode}) full: tryWrite is false, write and writeAsync time out with ETIMEDOUT`,
    withLog(mode, 256, async (log) => {
      let n = 0;
      while (log.tryWrite(new Uint8Array(24))) n++;
      assertEquals(n, 8);
      assertEquals(log.tryWrite(""), false);
      assertCode(() => log.write("x", { timeout: 20 }), "ETIMEDOUT", /timed out/);
      await assertRejectsCode(log.writeAsync("x", { timeout: 20 }), "ETIMEDOUT");
      assertEquals(log.tryClaim(1), undefined);
      assertEquals(log.tryWriteBatch(["a"]), 0);
      const r = log.tryRead()!;
      assertEquals(log.tryWrite("x"), false, "a record is consumed only when released or at the next read");
      r.release();
      r.release();
      assert(log.tryWrite("x"));
    }),
  );

  test(
    `MessageLog(${mode}).tryWriteBatch writes the prefix that fits with one publish`,
    withLog(mode, 512, (log, name) => {
      const { seg, u32 } = ctl(name);
      try {
        const items = Array.from({ length: 10 }, (_, i) => new Uint8Array(56).fill(i));
        assertEquals(log.tryWriteBatch(items, 3), 8); // 8 x 64 = 512
        assertEquals(u32[LOG.tail / 4] - u32[LOG.head / 4], 512);
        let seen = 0;
        const head0 = u32[LOG.head / 4];
        assertEquals(
          log.tryReadBatch((r) => {
            assertEquals([r.type, r.length, r.data[r.offset]], [3, 56, seen]);
            assertEquals(u32[LOG.head / 4], head0, "head moves only after the batch");
            seen++;
          }),
          8,
        );
        assertEquals(u32[LOG.head / 4], head0 + 512);
        assertEquals(log.tryWriteBatch([]), 0);
        assertEquals(log.tryWriteBatch(["a", "b"], 1), 2);
        assertEquals(log.tryReadBatch(() => {}, 1), 1);
        assertEquals(log.tryReadBatch(() => {}, 5), 1);
      } finally {
        seg.close();
      }
    }),
  );

  test(
    `MessageLog(${mode}).tryReadBatch: a handler that throws consumes the records up to its own`,
    withLog(mode, 1024, (log) => {
      assertEquals(log.tryWriteBatch(["a", "b", "c", "d"]), 4);
      const seen: string[] = [];
      let msg = "";
      try {
        log.tryReadBatch((r) => {
          seen.push(r.text());
          if (r.text() === "b") throw new Error("handler failed");
        });
      } catch (e) {
        msg = (e as Error).message;
      }
      assertEquals([msg, seen], ["handler failed", ["a", "b"]]);
      log.tryReadBatch((r) => seen.push(r.text()));
      assertEquals(seen, ["a", "b", "c", "d"]);
    }),
  );

  test(
    `MessageLog(${mode}).tryWriteBatch: a bad item after those that fit throws and publishes nothing`,
    withLog(mode, 256, (log, name) => {
      const { seg, u32 } = ctl(name);
      try {
        const tail0 = u32[LOG.tail / 4];
        // 3 x 64 bytes fit, the 5th item (not reached by the room) is too long, the 6th not a Uint8Array.
        const items: (Uint8Array | string)[] = [1, 2, 3, 4].map((i) => new Uint8Array(56).fill(i));
        items.push(new Uint8Array(log.maxRecord + 1));
        let e: unknown;
        try {
          log.tryWriteBatch(items);
        } catch (x) {
          e = x;
        }
        assert(e instanceof RangeError, String(e));
        items[4] = "ok";
        items.push(42 as unknown as Uint8Array);
        e = undefined;
        try {
          log.tryWriteBatch(items);
        } catch (x) {
          e = x;
        }
        assert(e instanceof TypeError, String(e));
        assertEquals(u32[LOG.tail / 4], tail0, "nothing published");
        assertEquals(log.tryRead(), undefined);
        assertEquals(log.tryWriteBatch(items.slice(0, 5)), 4);
        const seen: number[] = [];
        log.tryReadBatch((r) => seen.push(r.data[r.offset]));
        assertEquals(seen, [1, 2, 3, 4]);
      } finally {
        seg.close();
      }
    }, { maxRecord: 100 }),
  );

  test(
    `MessageLog(${mode}).tryReadBatch: fn may read on its own or close the log; one lap per call`,
    withLog(mode, 256, (log) => {
      assertEquals(log.tryWriteBatch(["a", "b", "c", "d"]), 4);
      const seen: string[] = [];
      // tryRead inside the handler takes the next record: the batch goes on after it.
      assertEquals(
        log.tryReadBatch((r) => {
          seen.push(r.text());
          if (r.text() === "a") seen.push(log.tryRead()!.text());
        }),
        3,
      );
      assertEquals(seen, ["a", "b", "c", "d"]);
      // A handler that releases each record and writes a new one: without a bound the batch would
      // never end; it ends after one lap (256 bytes, 16 records of 16).
      let n = 0;
      assert(log.tryWrite("x"));
      const k = log.tryReadBatch((r) => {
        n++;
        r.release();
        assert(log.tryWrite("x"), `write ${n}`);
      });
      assertEquals(k, 16);
      assertEquals(log.tryReadBatch(() => {}, 1), 1);
      // close() inside the handler ends the batch without an error; the head covers the record.
      const other = MessageLog.create(null, { capacity: 256, mode });
      assertEquals(other.tryWriteBatch(["p", "q"]), 2);
      let got = 0;
      try {
        assertEquals(
          other.tryReadBatch(() => {
            got++;
            other.close();
          }),
          1,
        );
      } finally {
        other.unlink();
        other.close();
      }
      assertEquals(got, 1);
    }),
  );

  test(
    `MessageLog(${mode}) claims write in place; commit may shrink, abort is skipped`,
    withLog(mode, 1024, (log) => {
      const c = log.tryClaim(100, 4)!;
      assert(c instanceof LogClaim);
      assertCode(() => log.tryWrite("x"), "EINVAL", /claim/);
      c.data.set([1, 2, 3], c.offset);
      let e: unknown;
      try {
        c.commit(101);
      } catch (x) {
        e = x;
      }
      assert(e instanceof RangeError);
      c.commit(3);
      assertCode(() => c.commit(), "EINVAL");
      const a = log.tryClaim(50)!;
      a.abort();
      a.abort();
      assert(log.tryWrite("after"));
      const r = log.tryRead()!;
      assertEquals([r.type, Array.from(r.bytes)], [4, [1, 2, 3]]);
      assertEquals(log.tryRead()!.text(), "after");
      assertEquals(log.tryRead(), undefined);
    }),
  );

  test(
    `MessageLog(${mode}) async reads wait, for await iterates and AbortSignal aborts`,
    withLog(mode, 1024, async (log) => {
      const p = log.readAsync({ timeout: 5000 });
      setTimeout(() => log.tryWrite("late", 2), 20);
      const r = await p;
      assertEquals([r.text(), r.type], ["late", 2]);
      const q = log.readBatchAsync(() => {}, { timeout: 5000 });
      setTimeout(() => log.tryWriteBatch(["1", "2", "3"]), 10);
      const got = await q;
      assert(got >= 1 && got <= 3);
      if (got < 3) await log.readBatchAsync(() => {}, { timeout: 1000 });
      const ac = new AbortController();
      const a = log.readAsync({ signal: ac.signal });
      setTimeout(() => ac.abort(new Error("stop")), 10);
      let msg = "";
      try {
        await a;
      } catch (e) {
        msg = (e as Error).message;
      }
      assertEquals(msg, "stop");
      await assertRejectsCode(log.readAsync({ timeout: 10 }), "ETIMEDOUT");
      const texts: string[] = [];
      setTimeout(() => log.tryWriteBatch(["a", "b"]), 10);
      setTimeout(() => log.tryWrite("c"), 30);
      for await (const rec of log) {
        texts.push(rec.text());
        if (texts.length === 3) break;
      }
      assertEquals(texts, ["a", "b", "c"]);
      // A full log: writeAsync waits for the reader.
      while (log.tryWrite(new Uint8Array(200)));
      const w = log.writeAsync(new Uint8Array(200), { timeout: 5000 });
      let drained = 0;
      setTimeout(() => drained = log.tryReadBatch(() => {}), 20);
      await w;
      assert(drained > 0, "writeAsync returned before the reader made room");
      const wa = new AbortController();
      while (log.tryWrite(new Uint8Array(200)));
      const w2 = log.writeAsync(new Uint8Array(200), { signal: wa.signal });
      wa.abort(new Error("no"));
      msg = "";
      try {
        await w2;
      } catch (e) {
        msg = (e as Error).message;
      }
      assertEquals(msg, "no");
    }),
  );

  test(`MessageLog(${mode}).close detaches the record and claim views and is idempotent`, async () => {
    const name = uniqueName("log");
    const log = MessageLog.create(name, { capacity: 256, mode });
    log.tryWrite("abc");
    const r = log.tryRead()!;
    assertEquals(r.data.length, 256);
    const iter = log[Symbol.asyncIterator]();
    const pending = iter.next();
    log.unlink();
    log.close();
    log.close();
    assert(log.closed);
    assertEquals(r.data.length, 0);
    assertCode(() => log.tryWrite("x"), "ECLOSED");
    assertCode(() => log.tryRead(), "ECLOSED");
    assertCode(() => log.handle(), "ECLOSED");
    assertEquals((await pending).done, true);
  });

  test(
    `MessageLog(${mode}) has one reader: a second reader object gets EBUSY until the first closes`,
    withLog(mode, 256, (log, name) => {
      using other = MessageLog.open(name);
      log.tryRead();
      assertCode(() => other.tryRead(), "EBUSY", /reader/);
      log.close();
      assertEquals(other.tryRead(), undefined);
    }),
  );
}

test(
  "MessageLog(spsc) has one writer: a second writer object gets EBUSY",
  withLog("spsc", 256, (log, name) => {
    using other = MessageLog.open(name);
    log.tryWrite("a");
    assertCode(() => other.tryWrite("b"), "EBUSY", /writer/);
  }),
);

test(
  "MessageLog(mpsc) takes a participant slot per writer object, 32 at most",
  withLog("mpsc", 4096, (log, name) => {
    const others = Array.from({ length: 32 }, () => MessageLog.open(name));
    try {
      for (let i = 0; i < 31; i++) assert(others[i].tryWrite(`w${i}`));
      log.tryWrite("w31");
      assertCode(() => others[31].tryWrite("x"), "EBUSY", /writer slots/);
      others[0].close();
      assert(others[31].tryWrite("x"));
      let n = 0;
      log.tryReadBatch(() => n++);
      assertEquals(n, 33);
    } finally {
      for (const o of others) o.close();
    }
  }),
);

test("MessageLog create/open/attach/init/at/handle and option checks", () => {
  assertEquals(MessageLog.byteLength({ capacity: 1024 }), 384 + 1024);
  assertEquals(MessageLog.byteLength({ capacity: 1024, mode: "mpsc" }), 384 + 32 * 32 + 1024);
  for (const cap of [0, 100, 128, 2 ** 31]) assertCode(() => MessageLog.byteLength({ capacity: cap }), "EINVAL");
  assertCode(() => MessageLog.byteLength({ capacity: 256, mode: "mpmc" as LogMode }), "EINVAL");
  assertCode(() => MessageLog.byteLength({ capacity: 256, maxRecord: 121 }), "EINVAL");
  const name = uniqueName("log");
  using log = MessageLog.create(name, { capacity: 1024, mode: "mpsc", maxRecord: 100 });
  try {
    assertCode(() => MessageLog.create(name, { capacity: 1024 }), "EEXIST");
    const h = JSON.parse(JSON.stringify(log.handle()));
    assertEquals([h.kind, h.name, h.byteOffset], ["shmkit.log", log.handle().name, 0]);
    using b = attach(h) as MessageLog;
    assertEquals([b.capacity, b.mode, b.maxRecord], [1024, "mpsc", 100]);
    b.tryWrite("via attach");
    assertEquals(log.tryRead()!.text(), "via attach");
    const info = inspect(name)!;
    const text = JSON.stringify(info);
    assert(text.includes("log") && text.includes("mpsc"), text);
  } finally {
    log.unlink();
  }
  assertCode(() => MessageLog.open(name), "ENOENT", /Cannot open log/);
  using seg = SharedMemory.create(uniqueName("logseg"), 64 + MessageLog.byteLength({ capacity: 256 }));
  try {
    const a = MessageLog.init(seg, 64, { capacity: 256 });
    a.tryWrite("placed");
    using b = MessageLog.at(seg, 64);
    assertEquals(b.tryRead()!.text(), "placed");
    a.close();
    assertCode(() => MessageLog.init(seg, 32, { capacity: 256 }), "EINVAL");
    assertCode(() => MessageLog.init(seg, 128, { capacity: 256 }), "ENOSPC");
    assertCode(() => MessageLog.at(seg, 0), "EBADHDR");
  } finally {
    seg.unlink();
  }
});

// ---------------------------------------------------------------------------------------------
// Corrupt shared state: EBADHDR within bounded steps, never a hang or an out-of-bounds read.

for (const mode of MODES) {
  const cases: [string, (u32: Uint32Array, d: Uint32Array) => void][] = [
    ["length past the end", (_u, d) => (d[0] = 300)],
    ["huge length", (_u, d) => (d[0] = 0x7fff0000)],
    ["length below the header", (_u, d) => (d[0] = 4)],
    ["type garbage", (_u, d) => (d[1] = 0x12345678)],
    ["padding not a multiple of 8", (_u, d) => {
      d[0] = 12;
      d[1] = TYPE_PAD;
    }],
    ["padding past the end", (_u, d) => {
      d[0] = 4096;
      d[1] = TYPE_PAD;
    }],
    ["length past the claimed tail", (_u, d) => (d[0] = 8 + 60)],
  ];
  for (const [what, corrupt] of cases) {
    test(
      `MessageLog(${mode}) reading a record with ${what} throws EBADHDR`,
      withLog(mode, 256, (log, name) => {
        assert(log.tryWrite(new Uint8Array(16)));
        const { seg, u32, dataOff } = ctl(name);
        try {
          corrupt(u32, seg.view(Uint32Array, dataOff, 64));
          assertCode(() => log.tryRead(), "EBADHDR", /corrupt/);
          assertCode(() => log.tryReadBatch(() => {}), "EBADHDR");
          assertCode(() => log.validate(), "EBADHDR");
        } finally {
          seg.close();
        }
      }, { maxRecord: 100 }),
    );
  }

  test(
    `MessageLog(${mode}) with impossible head/tail throws EBADHDR on open and on use`,
    withLog(mode, 256, (log, name) => {
      log.tryWrite("x");
      const { seg, u32 } = ctl(name);
      try {
        const h = u32[LOG.head / 4];
        u32[LOG.tail / 4] = h + 4096;
        assertCode(() => MessageLog.open(name), "EBADHDR", /L1/);
        assertCode(() => log.validate(), "EBADHDR");
        u32[LOG.tail / 4] = h + 12;
        assertCode(() => MessageLog.open(name), "EBADHDR", /multiple of 8/);
        u32[LOG.tail / 4] = h + 16;
        // A writer that looks at head (spsc) / clean (mpsc) for room finds them impossible.
        u32[LOG.head / 4] = h + 1024;
        u32[LOG.clean / 4] = h + 1024;
        assertCode(() => {
          for (let i = 0; i < 3; i++) log.tryWrite(new Uint8Array(100));
        }, "EBADHDR");
        assertCode(() => log.tryRead(), "EBADHDR", /L1/);
        u32[LOG.clean / 4] = h;
        u32[LOG.head / 4] = h;
        u32[LOG.capacity / 4] = 300;
        assertCode(() => MessageLog.open(name), "EBADHDR", /capacity/);
        u32[LOG.capacity / 4] = 256;
        u32[LOG.maxRecord / 4] = 1000;
        assertCode(() => MessageLog.open(name), "EBADHDR", /maxRecord/);
        u32[LOG.maxRecord / 4] = 100;
      } finally {
        seg.close();
      }
    }, { maxRecord: 100 }),
  );
}

test(
  "MessageLog(mpsc) with an unwritten claim that no writer holds throws EBADHDR",
  withLog("mpsc", 256, async (log, name) => {
    const { seg, u32 } = ctl(name);
    try {
      u32[LOG.tail / 4] += 64; // claimed space, no participant slot, header 0
      assertEquals(log.tryRead(), undefined);
      await new Promise((r) => setTimeout(r, 10));
      assertCode(() => log.tryRead(), "EBADHDR", /L4/);
    } finally {
      seg.close();
    }
  }),
);

// ---------------------------------------------------------------------------------------------
// Dead-writer recovery (mpsc), with participant slots written the way a dead writer leaves them.

const DEAD_PID = 4194000; // above any pid this machine hands out in a test run

function deadClaim(u32: Uint32Array, slot: number, pos: number, len: number): void {
  const w = (LOG_HEADER_SIZE + slot * LOG_SLOT_SIZE) / 4;
  u32[w] = DEAD_PID + slot;
  u32[w + 1] = 1;
  u32[w + 3] = pos;
  u32[w + 4] = len;
}

test(
  "MessageLog(mpsc) reader pads over a dead writer's claim (unwritten, in progress, two stale slots)",
  withLog("mpsc", 1024, async (log, name) => {
    const { seg, u32, dataOff } = ctl(name);
    const u32all = seg.view(Uint32Array);
    const d = (pos: number) => (dataOff + (pos & 1023)) / 4;
    try {
      assert(log.tryWrite("before"));
      // 1. A claim of 64 bytes whose writer died before its marker (header 0), then a live record.
      let t = u32[LOG.tail / 4];
      deadClaim(u32all, 5, t, 64);
      u32[LOG.tail / 4] = t + 64;
      assert(log.tryWrite("after1"));
      // 2. A dead writer with an IN_PROGRESS marker and half a payload.
      t = u32[LOG.tail / 4];
      deadClaim(u32all, 6, t, 96);
      u32[LOG.tail / 4] = t + 96;
      u32all[d(t)] = (IN_PROGRESS | 96) >>> 0;
      u32all[d(t) + 1] = 3;
      u32all[d(t) + 2] = 0xdeadbeef;
      assert(log.tryWrite("after2"));
      // 3. Two dead slots at the same position (a stale loser of the CAS with 200 bytes and the dead
      //    winner with 40): the reader finds the real end at the next written header.
      t = u32[LOG.tail / 4];
      deadClaim(u32all, 7, t, 200);
      deadClaim(u32all, 8, t, 40);
      u32[LOG.tail / 4] = t + 40;
      assert(log.tryWrite("after3"));
      const got: string[] = [];
      const deadline = Date.now() + 5000;
      while (got.length < 4 && Date.now() < deadline) {
        const r = log.tryRead();
        if (r) got.push(r.text());
        else await new Promise((res) => setTimeout(res, 1));
      }
      assertEquals(got, ["before", "after1", "after2", "after3"]);
      assertEquals(log.tryRead(), undefined);
      log.validate();
      // The dead slots are reused once their claims are behind the head (slot 7's stale claim of
      // 200 bytes is not yet: 30 more writers fit beside this object).
      const ws = Array.from({ length: 30 }, () => MessageLog.open(name));
      try {
        for (const w of ws) assert(w.tryWrite("x"));
      } finally {
        for (const w of ws) w.close();
      }
    } finally {
      seg.close();
    }
  }),
);

test(
  "MessageLog(mpsc) reader waits for a live writer's open claim",
  withLog("mpsc", 1024, async (log, name) => {
    using w = MessageLog.open(name);
    const c = w.tryClaim(10)!;
    assert(log.tryWrite("second"));
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(log.tryRead(), undefined);
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(log.tryRead(), undefined);
    c.data.set([7], c.offset);
    c.commit(1);
    assertEquals(Array.from(log.tryRead()!.bytes), [7]);
    assertEquals(log.tryRead()!.text(), "second");
  }),
);

test("MessageLog(mpsc) reader waits at a stopped (SIGSTOP) writer's claim and goes on after SIGCONT", async () => {
  const name = uniqueName("log");
  using log = MessageLog.create(name, { capacity: 1024, mode: "mpsc" });
  using seg = SharedMemory.create(uniqueName("logst"), 64);
  const st = seg.view(Int32Array, 0, 2);
  const kid = runScript(RUNTIMES[(RUNTIMES.indexOf(RUNTIME) + 1) % 3], "tests/fixtures/log_hold.ts", {
    args: [JSON.stringify(log.handle()), JSON.stringify(seg.handle())],
    timeout: 60_000,
  });
  try {
    const deadline = Date.now() + 30_000;
    while (Atomics.load(st, 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const pid = Atomics.load(st, 0);
    assert(pid > 0, "the child never opened its claim");
    assert(log.tryWrite("mine"));
    const p = (globalThis as unknown as { process: { kill(pid: number, sig: string): void } }).process;
    p.kill(pid, "SIGSTOP");
    try {
      for (let i = 0; i < 5; i++) {
        assertEquals(log.tryRead(), undefined);
        await new Promise((r) => setTimeout(r, 10));
      }
      await assertRejectsCode(log.readAsync({ timeout: 50 }), "ETIMEDOUT");
    } finally {
      p.kill(pid, "SIGCONT");
    }
    Atomics.store(st, 1, 1);
    const r = await log.readAsync({ timeout: 10_000 });
    assertEquals([r.text(), r.type], ["held", 9]);
    assertEquals(log.tryRead()!.text(), "mine");
    await kid;
  } finally {
    Atomics.store(st, 1, 1);
    log.unlink();
    seg.unlink();
  }
});

// ---------------------------------------------------------------------------------------------
// Cross-process and cross-runtime.

async function crossRun(
  mode: LogMode,
  writers: { runtime: (typeof RUNTIMES)[number]; style: string; count: number }[],
  reader: { runtime: (typeof RUNTIMES)[number]; style: string },
  capacity = 8192,
): Promise<void> {
  const name = uniqueName("logx");
  const log = MessageLog.create(name, { capacity, mode, maxRecord: 300 });
  const st = SharedMemory.create(uniqueName("logst"), STATUS_BYTES);
  try {
    const s = st.view(Int32Array);
    const rd = runScript(reader.runtime, "tests/fixtures/log_reader.ts", {
      args: [JSON.stringify(log.handle()), JSON.stringify(st.handle()), reader.style],
      timeout: 120_000,
    });
    await Promise.all(writers.map((w, id) =>
      runScript(w.runtime, "tests/fixtures/log_writer.ts", {
        args: [JSON.stringify(log.handle()), JSON.stringify(st.handle()), String(id), String(w.count), w.style],
        timeout: 120_000,
      })
    ));
    Atomics.store(s, 0, 1);
    await rd;
    assertEquals(errorText(st.bytes()), "");
    assertEquals(s[1], 0);
    assertEquals(s[3], 0, "duplicates");
    for (const [id, w] of writers.entries()) {
      assertEquals(s[ST_WRITERS + 4 * id + 2], w.count, `writer ${id} done`);
      assertEquals(s[ST_WRITERS + 4 * id + 3], w.count, `writer ${id} (${w.runtime}) records read`);
    }
  } finally {
    log.unlink();
    log.close();
    st.unlink();
    st.close();
  }
}

for (const rt of RUNTIMES.filter((r) => r !== "deno")) {
  test(`MessageLog(spsc): a Deno writer to a ${rt} reader, every record exactly once in order`, async () => {
    await crossRun("spsc", [{ runtime: "deno", style: "batch", count: 3000 }], { runtime: rt, style: "batch" });
  }, { timeout: 150_000 });
}

test("MessageLog(mpsc): writers on Deno, Bun and Node to one reader, exactly once in per-writer order", async () => {
  await crossRun(
    "mpsc",
    [
      { runtime: "deno", style: "single", count: 1500 },
      { runtime: "bun", style: "batch", count: 1500 },
      { runtime: "node", style: "claim", count: 1500 },
    ],
    { runtime: RUNTIME, style: "async" },
    4096,
  );
}, { timeout: 150_000 });

test(
  "MessageLog(mpsc) in-process: records from two writer objects keep their per-writer order",
  withLog("mpsc", 512, (log, name) => {
    using a = MessageLog.open(name);
    using b = MessageLog.open(name);
    const rnd = prng(7);
    const next = [0, 0];
    const seen = [0, 0];
    for (let i = 0; i < 5000; i++) {
      const k = rnd() < 0.5 ? 0 : 1;
      const buf = new Uint8Array(payloadLength(k, next[k], 60));
      fillPayload(buf, k, next[k]);
      if ((k ? b : a).tryWrite(buf, recordType(next[k]))) next[k]++;
      if (rnd() < 0.3) {
        log.tryReadBatch((r) => {
          const id = new DataView(r.data.buffer, r.data.byteOffset + r.offset).getUint32(0, true);
          const seq = new DataView(r.data.buffer, r.data.byteOffset + r.offset).getUint32(4, true);
          assertEquals(seq, seen[id]++);
          assertEquals(r.length, payloadLength(id, seq, 60));
        });
      }
    }
    while (log.tryRead()) { /* drain */ }
    assert(next[0] > 100 && next[1] > 100);
    void proc;
    void ShmError;
  }),
);
