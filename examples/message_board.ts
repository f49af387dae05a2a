/**
 * A message board in a memory-mapped file, like the classic mmap example: one writer updates a
 * message every second; any number of readers poll the file and print the message when it
 * changes. Works between Deno, Bun and Node processes (and Python's `mmap` on the same file).
 *
 *   deno run -A examples/message_board.ts writer [--file board.bin] [--seconds 10] [--interval 1000]
 *   bun examples/message_board.ts reader [--file board.bin] [--seconds 10] [--interval 200]
 *
 * Board layout (4096 bytes): u32 sequence at 0 (odd while the writer is mid-update: a seqlock),
 * u32 message length at 4, UTF-8 message from 8. A reader copies the message, then re-reads the
 * sequence; if it changed (or was odd) the copy may be torn and the reader tries again.
 *
 * @module
 */
import process from "node:process";
import { tmpdir } from "node:os";
import { MappedFile } from "../mod.ts";

const SIZE = 4096;
const args = process.argv.slice(2);
const role = args[0];
function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const file = flag("file", `${tmpdir()}/shmkit-message-board.bin`);
const seconds = Number(flag("seconds", "10"));
const interval = Number(flag("interval", role === "writer" ? "1000" : "200"));
if ((role !== "writer" && role !== "reader") || !(seconds > 0) || !(interval > 0)) {
  console.error("usage: message_board.ts <writer|reader> [--file PATH] [--seconds N] [--interval MS]");
  process.exit(2);
}

const board = MappedFile.open(file, { length: SIZE, access: "write", create: true });
const words = board.view(Int32Array, 0, 2); // sequence and length, read and written atomically
const text = board.bytes(8, SIZE - 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = Date.now() + seconds * 1000;

if (role === "writer") {
  const encoder = new TextEncoder();
  for (let n = 1; Date.now() < until; n++) {
    const message = `message ${n} from pid ${process.pid} at ${new Date().toISOString()}`;
    Atomics.add(words, 0, 1); // odd: update in progress
    const { written } = encoder.encodeInto(message, text);
    Atomics.store(words, 1, written);
    Atomics.add(words, 0, 1); // even again: the message is whole
    console.log(`wrote: ${message}`);
    await sleep(Math.min(interval, Math.max(0, until - Date.now())));
  }
} else {
  const decoder = new TextDecoder();
  let lastSeq = -1;
  while (Date.now() < until) {
    const seq = Atomics.load(words, 0);
    if (seq !== lastSeq && seq % 2 === 0 && seq > 0) {
      const len = Math.min(Math.max(Atomics.load(words, 1), 0), text.length); // never trust a length
      const message = decoder.decode(text.slice(0, len));
      if (Atomics.load(words, 0) === seq) {
        console.log(`read: ${message}`);
        lastSeq = seq;
        continue;
      }
    }
    await sleep(interval);
  }
}
board.close();
