// Peers: byte streams between two processes of the same runtime — a pipe (the child's
// stdin/stdout) and a Unix domain socket (node:net, which works in Deno, Bun and Node).
// @bench-runtimes deno bun node
// @bench-ids S1 S3 S5
//
// Cells, each with a fresh child process (spawned and connected outside the timed part):
//   S3 "64B"        round trip of 64 bytes (child echoes), us p50 / p99
//   S1 "batch=N"    one-way stream of u32 items written N per write() call (N = 1, 32, 256), items/s
//   S5 "N MiB"      one-way block of 1 / 16 / 64 MiB, child reads it all and acks 1 byte: ms, GB/s
// CPU: this process plus the child (from /proc, counted from when the child is ready).
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import type { Readable, Writable } from "node:stream";
import { args, clockNs, cpuSelf, emit, emitLatency, exited, pick, procCpu, RUNTIME, runtimeCommand } from "../lib.ts";

const ME = "bench/scenarios/peers_stream.ts";
type Transport = "pipe" | "unix socket";

// ---------------------------------------------------------------------------------------------
// Child: args = ["child", transport, mode, socketPath]

async function child(transport: Transport, mode: string, path: string): Promise<void> {
  const proc = (globalThis as unknown as { process: { stdin: Readable; stdout: Writable } }).process;
  let input: Readable;
  let output: Writable;
  let sock: Socket | undefined;
  if (transport === "pipe") {
    input = proc.stdin;
    output = proc.stdout;
  } else {
    const { connect } = await import("node:net");
    sock = connect(path);
    await new Promise<void>((r) => sock!.once("connect", () => r()));
    sock.setNoDelay(true);
    input = sock;
    output = sock;
  }
  const [kind, a, b] = mode.split(":");
  let done = false;
  if (kind === "echo") {
    input.on("data", (d: Uint8Array) => output.write(d));
  } else if (kind === "sink") {
    // count `a` bytes, then ack one byte
    let left = Number(a);
    input.on("data", (d: Uint8Array) => {
      left -= d.length;
      if (left <= 0 && !done) {
        done = true;
        output.write(new Uint8Array(1));
      }
    });
  } else if (kind === "blocks") {
    // `b` blocks of `a` bytes; ack each
    const size = Number(a);
    let got = 0;
    input.on("data", (d: Uint8Array) => {
      got += d.length;
      while (got >= size) {
        got -= size;
        output.write(new Uint8Array(1));
      }
    });
    void b;
  }
  output.write(new Uint8Array([0x52])); // "R": ready
  await new Promise<void>((r) => input.once("end", () => r()));
  sock?.destroy();
}

// ---------------------------------------------------------------------------------------------
// Parent

interface Conn {
  proc: ChildProcess;
  input: Readable; // from the child
  output: Writable; // to the child
  server?: Server;
  sock?: Socket;
  cpu0: number;
  /** resolves when `n` more bytes have arrived from the child */
  bytes(n: number): Promise<void>;
}

async function open(transport: Transport, mode: string): Promise<Conn> {
  const path = `${tmpdir()}/shmkit-bench-${
    (globalThis as unknown as { process: { pid: number } }).process.pid
  }-${Date.now()}.sock`;
  let server: Server | undefined;
  let accepted: Promise<Socket> | undefined;
  if (transport === "unix socket") {
    server = createServer();
    accepted = new Promise((r) => server!.once("connection", (s: Socket) => r(s)));
    await new Promise<void>((r) => server!.listen(path, () => r()));
  }
  const [cmd, ...rest] = runtimeCommand(RUNTIME, ME);
  const proc = spawn(cmd, [...rest, "child", transport, mode, path], { stdio: ["pipe", "pipe", "inherit"] });
  let input: Readable, output: Writable, sock: Socket | undefined;
  if (server) {
    sock = await accepted!;
    sock.setNoDelay(true);
    input = sock;
    output = sock;
  } else {
    input = proc.stdout!;
    output = proc.stdin!;
  }
  // byte accounting: waiters resolve in order
  let have = 0;
  const waits: Array<{ n: number; r: () => void }> = [];
  input.on("data", (d: Uint8Array) => {
    have += d.length;
    while (waits.length && have >= waits[0].n) {
      have -= waits[0].n;
      waits.shift()!.r();
    }
  });
  const bytes = (n: number) =>
    have >= n ? (have -= n, Promise.resolve()) : new Promise<void>((r) => waits.push({ n, r }));
  await bytes(1); // ready
  return { proc, input, output, server, sock, cpu0: procCpu(proc.pid!), bytes };
}

async function close(c: Conn): Promise<number> {
  const cpu = procCpu(c.proc.pid!) - c.cpu0;
  c.output.end();
  c.sock?.end();
  await exited(c.proc);
  c.server?.close();
  return cpu;
}

async function rtt(transport: Transport): Promise<void> {
  const n = pick(3000, 300), warm = pick(300, 50);
  const c = await open(transport, "echo");
  const msg = new Uint8Array(64).fill(7);
  const samples = new Float64Array(n);
  const c0 = cpuSelf();
  const w0 = clockNs();
  for (let i = 0; i < warm + n; i++) {
    const t0 = clockNs();
    c.output.write(msg);
    await c.bytes(64);
    if (i >= warm) samples[i - warm] = clockNs() - t0;
  }
  const wall = (clockNs() - w0) / 1e9;
  const cpu = cpuSelf() - c0 + await close(c);
  emitLatency(
    { bench: "S3", variant: "64B", transport, cpu_s: cpu, wall_s: wall, note: `${n} samples, child echoes` },
    samples,
    {
      unit: "us",
    },
  );
}

async function stream(transport: Transport, batch: number): Promise<void> {
  const want = pick(batch === 1 ? 100_000 : batch === 32 ? 2_000_000 : 8_000_000, batch === 1 ? 20_000 : 200_000);
  const items = Math.ceil(want / batch) * batch;
  const c = await open(transport, `sink:${items * 4}`);
  const chunk = new Uint32Array(batch);
  const c0 = cpuSelf();
  const t0 = clockNs();
  // write with back-pressure: wait for 'drain' when the stream buffer is full
  for (let i = 0; i < items; i += batch) {
    for (let k = 0; k < batch; k++) chunk[k] = i + k;
    if (!c.output.write(new Uint8Array(chunk.buffer.slice(0)))) {
      await new Promise<void>((r) => c.output.once("drain", () => r()));
    }
  }
  await c.bytes(1);
  const wall = (clockNs() - t0) / 1e9;
  const cpu = cpuSelf() - c0 + await close(c);
  emit({
    bench: "S1",
    variant: `batch=${batch}`,
    transport,
    metric: "items/s",
    value: items / wall,
    cpu_s: cpu,
    wall_s: wall,
    note: `u32 items, ${batch * 4} B per write(), ${items} items, child counts bytes`,
  });
}

async function blocks(transport: Transport, mib: number): Promise<void> {
  const size = mib << 20;
  const reps = pick(mib === 1 ? 30 : mib === 16 ? 5 : 3, mib === 1 ? 5 : 1);
  const c = await open(transport, `blocks:${size}:${reps}`);
  const block = new Uint8Array(size).fill(1);
  const times: number[] = [];
  const c0 = cpuSelf();
  const w0 = clockNs();
  for (let r = 0; r < reps; r++) {
    const t0 = clockNs();
    c.output.write(block);
    await c.bytes(1);
    times.push(clockNs() - t0);
  }
  const wall = (clockNs() - w0) / 1e9;
  const cpu = cpuSelf() - c0 + await close(c);
  times.sort((a, b) => a - b);
  const med = times[times.length >> 1];
  const base = { bench: "S5", variant: `${mib} MiB`, transport, cpu_s: cpu, wall_s: wall };
  const note = `one-way block, child reads all bytes and acks; median of ${reps}`;
  emit({ ...base, metric: "ms", value: med / 1e6, note });
  emit({ ...base, metric: "GB/s", value: size / med, note });
}

const a = args();
if (a[0] === "child") {
  await child(a[1] as Transport, a[2], a[3]);
} else {
  for (const t of ["pipe", "unix socket"] as Transport[]) {
    await rtt(t);
    for (const b of [1, 32, 256]) await stream(t, b);
    for (const m of [1, 16, 64]) await blocks(t, m);
  }
}
