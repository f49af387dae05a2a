// MessageLog across Python (python/shmkit/log.py over csrc/ops_log.c) and TypeScript (src/log.ts):
// a Python writer to this runtime's reader and back (spsc and mpsc, records of random sizes,
// checked byte for byte), mpsc with Python and TypeScript writer processes together (every record
// exactly once, in per-writer order, to a reader of either language), and Python writers
// SIGKILLed in the middle of a record (csrc/ops_log.c fault points, the same names as src/log.ts)
// after which this runtime's reader recovers and keeps reading. Runs on every leg.
import { assert, assertEquals } from "./assert.ts";
import { ROOT, run, type RunResult, runScript, RUNTIME, test, uniqueName } from "./harness.ts";
import { type LogMode, MessageLog } from "../src/log.ts";
import { SharedMemory } from "../src/segment.ts";
import { checkPayload, fillPayload, payloadLength, recordType, STATUS_BYTES } from "./fixtures/log_common.ts";

const CHILD = `${ROOT}python/tests/child.py`;
const ENV = { PYTHONPATH: `${ROOT}python` };

const probe = await run(["python3", "-c", "import sys; print(sys.version_info >= (3, 10))"], { env: ENV }).catch(
  () => undefined,
);
const noPython = probe?.stdout.trim() === "True" ? false : "python3 >= 3.10 is not installed";

function py(args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<RunResult> {
  return run(["python3", CHILD, ...args], { env: { ...ENV, ...env }, timeout });
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
