// make stress: the live scribbler at length (tests/fixtures/fuzz_scribbler.ts): for each round a
// hostile process writes random values into the control words of a ring, mempool, log or channel while honest
// processes of all three runtimes use it; every honest call must return within its timeout plus
// 2 s and fail only with ShmError. SHMKIT_SEED fixes the seed; SHMKIT_SCRIBBLE_ROUNDS sets the
// rounds (default 42, 10 s each: ring, mempool, log spsc/mpsc and channel mpmc/spsc/spsc-ordered in
// turn, the hostile writing every 0.2, 5 and then 50 ms; rounds 21-41 again with each value put back).
import { prng, runScript, RUNTIME, type Runtime, RUNTIMES, uniqueName } from "../harness.ts";
import { Channel, Mempool, MessageLog, Ring } from "../../mod.ts";

const proc =
  (globalThis as unknown as { process: { env: Record<string, string | undefined>; exit(c: number): never } }).process;
const seed = Number(proc.env.SHMKIT_SEED ?? Date.now() % 1e9);
const rounds = Number(proc.env.SHMKIT_SCRIBBLE_ROUNDS ?? 42);
const MS = 10_000;
const FIXTURE = "tests/fixtures/fuzz_scribbler.ts";
console.log(`scribbler stress (${RUNTIME}): seed ${seed} (rerun with SHMKIT_SEED=${seed}), ${rounds} rounds`);
const rnd = prng(seed);
let failures = 0;
type Kind = "ring" | "mempool" | "log" | "channel";
const KINDS: { kind: Kind; make: (name: string) => { unlink(): void; close(): void }; what: string }[] = [
  {
    kind: "ring",
    what: "ring mpmc",
    make: (n) => Ring.create(n, { capacity: 1 + Math.floor(rnd() * 32), mode: "mpmc" }),
  },
  {
    kind: "mempool",
    what: "mempool",
    make: (n) => Mempool.create(n, { count: 1 + Math.floor(rnd() * 8), blockSize: 64 }),
  },
  {
    kind: "log",
    what: "log spsc",
    make: (n) => MessageLog.create(n, { capacity: 4096, mode: "spsc", maxRecord: 256 }),
  },
  {
    kind: "log",
    what: "log mpsc",
    make: (n) => MessageLog.create(n, { capacity: 4096, mode: "mpsc", maxRecord: 256 }),
  },
  { kind: "channel", what: "channel mpmc", make: (n) => Channel.create(n, { slots: 16, slotSize: 64, mode: "mpmc" }) },
  { kind: "channel", what: "channel spsc", make: (n) => Channel.create(n, { slots: 16, slotSize: 64, mode: "spsc" }) },
  {
    kind: "channel",
    what: "channel spsc-ordered",
    make: (n) => Channel.create(n, { slots: 16, slotSize: 64, mode: "spsc-ordered" }),
  },
];
/** The hostile's gap between writes (ms): a longer one lets the honest processes run between corruptions. */
const GAPS = [0.2, 5, 50];
for (let round = 0; round < rounds; round++) {
  const k = KINDS[round % KINDS.length];
  const kind = k.kind;
  const gap = GAPS[Math.floor(round / KINDS.length) % GAPS.length];
  // Rounds past the first 21 repeat them with the hostile putting each old value back after the gap.
  const heal = round >= KINDS.length * GAPS.length;
  const name = uniqueName("scrs");
  const obj = k.make(name);
  const hostileSeed = Math.floor(rnd() * 2 ** 31);
  try {
    const honest: Runtime[] = [...RUNTIMES];
    const opts = { timeout: MS + 60_000 };
    const [hostile, ...res] = await Promise.all([
      runScript(RUNTIME, FIXTURE, {
        args: ["hostile", kind, name, String(MS), String(hostileSeed), String(gap), heal ? "heal" : "keep"],
        ...opts,
      }),
      ...honest.map((rt) => runScript(rt, FIXTURE, { args: ["honest", kind, name, String(MS)], ...opts })),
    ]);
    console.log(
      `round ${round} ${k.what}, gap ${gap} ms${
        heal ? ", healing" : ""
      } (hostile seed ${hostileSeed}): ${hostile.stdout.trim()}`,
    );
    for (const [k, r] of res.entries()) {
      const line = r.stdout.trim().split("\n").pop()!;
      console.log(`  ${honest[k]}: ${line}`);
      const v = JSON.parse(line) as { violations: string[] };
      if (v.violations.length > 0) failures++;
    }
  } catch (e) {
    console.log(`round ${round} ${k.what}: ${(e as Error).message}`);
    failures++;
  } finally {
    obj.unlink();
    obj.close();
  }
}
console.log(`scribbler stress: ${rounds} rounds, ${failures} failures`);
proc.exit(failures === 0 ? 0 : 1);
