// MessageLog across Python (python/shmkit/log.py over csrc/ops_log.c) and TypeScript (src/log.ts):
// a Python writer to this runtime's reader and back (spsc and mpsc, records of random sizes,
// checked byte for byte), mpsc with Python and TypeScript writer processes together (every record
// exactly once, in per-writer order, to a reader of either language), and Python writers
// SIGKILLed in the middle of a record (csrc/ops_log.c fault points, the same names as src/log.ts)
// after which this runtime's reader recovers and keeps reading; Python try_write_batch / try_claim
// writers to this runtime and tryWriteBatch back; a claimer of either language SIGKILLed holding its
// claim, the other language reading on. Runs on every leg.
import { assert, assertEquals } from "./assert.ts";
import { PYTHON, ROOT, run, type RunResult, runScript, RUNTIME, runtimeCommand, test, uniqueName } from "./harness.ts";
import { type LogMode, MessageLog } from "../src/log.ts";
import { SharedMemory } from "../src/segment.ts";
import { checkPayload, fillPayload, payloadLength, recordType, STATUS_BYTES } from "./fixtures/log_common.ts";

const CHILD = `${ROOT}python/tests/child.py`;
const ENV = { PYTHONPATH: `${ROOT}python` };

const probe = await run([PYTHON, "-c", "import sys; print(sys.version_info >= (3, 10))"], { env: ENV }).catch(
  () => undefined,
);
const noPython = probe?.stdout.trim() === "True" ? false : "python3 >= 3.10 is not installed";

function py(args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<RunResult> {
  return run([PYTHON, CHILD, ...args], { env: { ...ENV, ...env }, timeout });
}

function ok(r: RunResult, what: string): RunResult {
  assert(r.code === 0, `${what} exited ${r.code ?? r.signal}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** Reads `count` records with this runtime's reader; checks each payload and per-writer order. */
async function readChecked(log: MessageLog, count: number, next: Map<number, number>): Promise<number> {
  let sum = 0;
  for (let k = 0; k < count; k++) {
    const r = await log.readAsync({ timeout: 60_000 });
    const got = checkPayload(r.data, r.offset, r.length, log.maxRecord, r.type);
    if (typeof got === "string") throw new Error(`record ${k}: ${got}`);
    const [id, seq] = got;
    assertEquals(seq, next.get(id) ?? 0, `writer ${id}: seq ${seq}`);
    next.set(id, seq + 1);
    for (let i = 0; i < r.length; i++) sum = (sum + r.data[r.offset + i]) >>> 0;
  }
  return sum;
}

function payloadSum(id: number, count: number, max: number): number {
  let sum = 0;
  for (let seq = 0; seq < count; seq++) {
    const b = new Uint8Array(payloadLength(id, seq, max));
    fillPayload(b, id, seq);
    for (const x of b) sum = (sum + x) >>> 0;
  }
  return sum;
}

for (const mode of ["spsc", "mpsc"] as LogMode[]) {
  test(
    `MessageLog (${mode}): a Python writer feeds ${RUNTIME} and ${RUNTIME} feeds a Python reader, byte for byte`,
    async () => {
      const n = 3000;
      const name = uniqueName("pylog");
      const log = MessageLog.create(name, { capacity: 4096, mode, maxRecord: 300 });
      try {
        const h = JSON.stringify(log.handle());
        const writer = py(["log-write", h, "1", String(n)]);
        const next = new Map<number, number>();
        const sum = await readChecked(log, n, next);
        ok(await writer, "python log-write");
        assertEquals(next.get(1), n);
        assertEquals(sum, payloadSum(1, n, 300));
        log.close(); // give the reader role to the Python reader
        using back = MessageLog.attach(JSON.parse(h));
        const reader = py(["log-read", h, String(n)]);
        for (let seq = 0; seq < n; seq++) {
          const b = new Uint8Array(payloadLength(2, seq, 300));
          fillPayload(b, 2, seq);
          await back.writeAsync(b, { type: recordType(seq), timeout: 60_000 });
        }
        back.close();
        const out = JSON.parse(ok(await reader, "python log-read").stdout);
        assertEquals(out.errors, []);
        assertEquals(out.count, n);
        assertEquals(out.per, { "2": n });
        assertEquals(out.sum, payloadSum(2, n, 300));
      } finally {
        log.close();
        SharedMemory.unlink(name);
      }
    },
    { skip: noPython, timeout: 180_000 },
  );
}

test(
  `MessageLog (mpsc): Python and ${RUNTIME} writer processes to a reader of each language, exactly once in order`,
  async () => {
    const per = 1500;
    for (const reader of ["ts", "python"]) {
      const name = uniqueName("pylogm");
      const log = MessageLog.create(name, { capacity: 4096, mode: "mpsc", maxRecord: 300 });
      const st = SharedMemory.create(uniqueName("pylogst"), STATUS_BYTES);
      try {
        const h = JSON.stringify(log.handle());
        const sh = JSON.stringify(st.handle());
        const pyReader = reader === "python" ? py(["log-read", h, String(4 * per)]) : undefined;
        const writers = [
          py(["log-write", h, "1", String(per)]).then((r) => ok(r, "python writer 1")),
          py(["log-write", h, "2", String(per)]).then((r) => ok(r, "python writer 2")),
          runScript(RUNTIME, "tests/fixtures/log_writer.ts", { args: [h, sh, "3", String(per), "single"] }),
          runScript(RUNTIME, "tests/fixtures/log_writer.ts", { args: [h, sh, "4", String(per), "batch"] }),
        ];
        if (pyReader) {
          await Promise.all(writers);
          const out = JSON.parse(ok(await pyReader, "python log-read").stdout);
          assertEquals(out.errors, []);
          assertEquals(out.per, { "1": per, "2": per, "3": per, "4": per });
        } else {
          const next = new Map<number, number>();
          await readChecked(log, 4 * per, next);
          await Promise.all(writers);
          assertEquals([1, 2, 3, 4].map((id) => next.get(id)), [per, per, per, per]);
          assertEquals(log.tryRead(), undefined);
        }
        log.validate();
      } finally {
        log.close();
        SharedMemory.unlink(name);
        st.unlink();
        st.close();
      }
    }
  },
  { skip: noPython, timeout: 240_000 },
);

test(
  `MessageLog: a Python writer SIGKILLed in the middle of a record is recovered by a ${RUNTIME} reader`,
  async () => {
    const cases: [LogMode, string][] = [
      ["mpsc", "log.write.after_claim:4"],
      ["mpsc", "log.write.after_marker:4"],
      ["mpsc", "log.write.mid_payload:4"],
      ["mpsc", "log.write.before_commit:4"],
      ["spsc", "log.write.mid_payload:4"],
      ["spsc", "log.write.before_commit:4"],
    ];
    for (const [mode, fault] of cases) {
      const name = uniqueName("pylogk");
      const log = MessageLog.create(name, { capacity: 2048, mode, maxRecord: 300 });
      try {
        const h = JSON.stringify(log.handle());
        const next = new Map<number, number>();
        // Records 0..2 are written and read while the victim lives; it dies inside record 3.
        const victim = py(["log-write", h, "1", "50", fault]);
        await readChecked(log, 3, next);
        const res = await victim;
        assertEquals(res.signal, "SIGKILL", `${mode} ${fault}: ${res.stdout}${res.stderr}`);
        assertEquals(log.tryRead(), undefined, `${mode} ${fault}: the dead writer's record stays invisible`);
        // Another Python writer (spsc: it takes the dead holder's role) goes on; the reader
        // pads over the dead claim (mpsc) and reads every new record.
        const w2 = py(["log-write", h, "2", "200"]);
        await readChecked(log, 200, next);
        ok(await w2, `python writer after ${fault}`);
        assertEquals(next.get(1), 3, fault);
        assertEquals(next.get(2), 200, fault);
        assertEquals(log.tryRead(), undefined);
        // And this runtime writes on after it too.
        using w = MessageLog.attach(JSON.parse(h));
        const b = new Uint8Array(payloadLength(3, 0, 300));
        fillPayload(b, 3, 0);
        assert(w.tryWrite(b, recordType(0)), fault);
        await readChecked(log, 1, next);
        log.validate();
      } finally {
        log.close();
        SharedMemory.unlink(name);
      }
    }
  },
  { skip: noPython, timeout: 180_000 },
);

for (const mode of ["spsc", "mpsc"] as LogMode[]) {
  test(
    `MessageLog (${mode}): Python try_write_batch and try_claim feed ${RUNTIME}; ${RUNTIME} tryWriteBatch feeds Python`,
    async () => {
      const n = 2000;
      const name = uniqueName("pylogb");
      const log = MessageLog.create(name, { capacity: 4096, mode, maxRecord: 300 });
      try {
        const h = JSON.stringify(log.handle());
        const next = new Map<number, number>();
        for (const [id, style] of [[1, "batch"], [2, "claim"]] as const) {
          const writer = py(["log-write", h, String(id), String(n), "-", style]);
          const sum = await readChecked(log, n, next);
          ok(await writer, `python log-write ${style}`);
          assertEquals(next.get(id), n, style);
          assertEquals(sum, payloadSum(id, n, 300), style);
          assertEquals(log.tryRead(), undefined);
        }
        log.validate();
        log.close(); // give the reader role to the Python reader
        using back = MessageLog.attach(JSON.parse(h));
        const reader = py(["log-read", h, String(n)]);
        const bufs: Uint8Array[] = [];
        const deadline = Date.now() + 60_000;
        for (let i = 0; i < n;) {
          // A batch never spans two types: at most up to the next multiple of 8.
          const k = Math.min(n - i, 8 - (i % 8));
          bufs.length = 0;
          for (let j = 0; j < k; j++) {
            const b = new Uint8Array(payloadLength(3, i + j, 300));
            fillPayload(b, 3, i + j);
            bufs.push(b);
          }
          const got = back.tryWriteBatch(bufs, recordType(i));
          if (got === 0) {
            assert(Date.now() < deadline, `no room for 60 s at ${i}`);
            await new Promise((r) => setTimeout(r, 1));
          }
          i += got;
        }
        back.close();
        const out = JSON.parse(ok(await reader, "python log-read").stdout);
        assertEquals(out.errors, []);
        assertEquals(out.count, n);
        assertEquals(out.per, { "3": n });
        assertEquals(out.sum, payloadSum(3, n, 300));
      } finally {
        log.close();
        SharedMemory.unlink(name);
      }
    },
    { skip: noPython, timeout: 180_000 },
  );
}

test(
  `MessageLog: a Python claimer SIGKILLed holding a claim is recovered by ${RUNTIME}, and a ${RUNTIME} one by Python`,
  async () => {
    for (const mode of ["mpsc", "spsc"] as LogMode[]) {
      // Python dies holding a claim (after 3 records); this runtime reads on past it.
      let name = uniqueName("pylogc");
      let log = MessageLog.create(name, { capacity: 2048, mode, maxRecord: 300 });
      try {
        const h = JSON.stringify(log.handle());
        const r = await py(["log-claim-die", h, "1", "3"]);
        assertEquals(r.signal, "SIGKILL", `${mode}: ${r.stdout}${r.stderr}`);
        assert(r.stdout.includes("claimed"), mode);
        const next = new Map<number, number>();
        await readChecked(log, 3, next);
        assertEquals(log.tryRead(), undefined, `${mode}: the dead claim stays invisible`);
        // spsc: this runtime takes the dead writer's role; mpsc: the reader pads over the claim.
        using w = MessageLog.attach(JSON.parse(h));
        for (let seq = 0; seq < 50; seq++) {
          const b = new Uint8Array(payloadLength(2, seq, 300));
          fillPayload(b, 2, seq);
          assert(w.tryWrite(b, recordType(seq)), `${mode}: write ${seq}`);
          await readChecked(log, 1, next);
        }
        assertEquals([next.get(1), next.get(2)], [3, 50], mode);
        assertEquals(log.tryRead(), undefined);
        log.validate();
      } finally {
        log.close();
        SharedMemory.unlink(name);
      }
      // This runtime dies holding a claim (tests/fixtures/log_hold.ts); a Python reader reads on.
      name = uniqueName("pylogc");
      log = MessageLog.create(name, { capacity: 2048, mode, maxRecord: 300 });
      const st = SharedMemory.create(uniqueName("pylogcst"), 64);
      try {
        const h = JSON.stringify(log.handle());
        const flag = st.view(Int32Array, 0, 2);
        const kid = run([...runtimeCommand(RUNTIME, "tests/fixtures/log_hold.ts"), h, JSON.stringify(st.handle())], {
          timeout: 60_000,
        });
        const deadline = Date.now() + 30_000;
        while (Atomics.load(flag, 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        const pid = Atomics.load(flag, 0);
        assert(pid > 0, `${mode}: the child never opened its claim`);
        (globalThis as unknown as { process: { kill(pid: number, sig: string): void } }).process.kill(pid, "SIGKILL");
        assertEquals((await kid).signal, "SIGKILL", mode);
        const reader = py(["log-read", h, "200"]);
        using w = MessageLog.attach(JSON.parse(h));
        for (let seq = 0; seq < 200; seq++) {
          const b = new Uint8Array(payloadLength(4, seq, 300));
          fillPayload(b, 4, seq);
          await w.writeAsync(b, { type: recordType(seq), timeout: 60_000 });
        }
        w.close();
        const out = JSON.parse(ok(await reader, `python log-read after a dead ${RUNTIME} claimer (${mode})`).stdout);
        assertEquals(out.errors, []);
        assertEquals(out.per, { "4": 200 });
        log.validate();
      } finally {
        log.close();
        SharedMemory.unlink(name);
        st.unlink();
        st.close();
      }
    }
  },
  { skip: noPython, timeout: 180_000 },
);
