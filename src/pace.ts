// Poll pacing for a consumer that found its queue dry (Channel, MessageLog). Across two cores a
// poll of the producer's counter takes that cache line away from the producer, and it pays a
// miss on its next publish: a consumer that polls as fast as it can keeps the producer at a few
// M messages/s. After a run of items the consumer waits a moment of local work before it polls
// again, adapting so that a poll finds about RUN items (a quarter of the queue in a queue that
// holds fewer than 4 RUN); one item at a time (ping-pong traffic) never waits. The wait is
// measured on the clock, 0.3 to 20 µs, as in Python's pacer (python/shmkit/_wait.py).
// docs/INTERNALS.md "Poll pacing" has the measurements.

/** The first wait, in nanoseconds. */
export const MIN = 300;
/**
 * The longest wait, in nanoseconds: the most a blocking receive adds to a message that arrives
 * while it waits. (Until 2026-12-02 the waits were counted in iterations of local work, meant as
 * 0.3-20 µs and measured at 1.2-77 µs here, ~4.7 ns per iteration on Deno and Bun.)
 */
export const MAX = 20_000;
/** Iterations of local work between two clock reads of a wait (~75 ns here). */
const CHUNK = 16;
/**
 * A poll after a wait should find about this many items (64 B messages across processes, 1024
 * slots, interleaved runs: spsc-ordered message API Deno 10.4 -> 11.8, Bun 12.0 -> 14.6, Node 24
 * 9.8 -> 11.9 M/s going from 16 to 128; 256 fell back to 8-10 on Deno).
 */
export const RUN = 128;

let sink = 0;

/** `n` iterations of local work that touch no shared memory (a pause that keeps off others' lines). */
export function localWork(n: number): void {
  let x = sink;
  for (let k = 0; k < n; k++) x = (x * 1103515245 + 12345) | 0;
  sink = x;
}

/** The adaptive wait of one consumer object. */
export class Pacer {
  #pace = 0;
  #paced = false;
  readonly #run: number;

  /** The run a wait aims at (RUN, or a quarter of a smaller queue). */
  get run(): number {
    return this.#run;
  }

  /** The current wait in nanoseconds (0: polls at once). */
  get wait(): number {
    return this.#pace;
  }

  /**
   * @param capacity the most items the queue can hold: the wait aims at runs of RUN items, or of a
   *   quarter of that when it is smaller (a wait that aims at more than the queue holds grows to
   *   MAX while the producer sits on a full queue: 16 slots ran at 0.27 M/s with RUN 16)
   */
  constructor(capacity: number) {
    this.#run = Math.max(2, Math.min(RUN, Math.floor(capacity / 4)));
  }

  /**
   * The consumer found its queue dry, having taken `got` items since it last did: grows the
   * wait while each one is followed by a short run (2 items up to the target run), halves it when
   * followed by at most one, shrinks it above 4 runs; then waits if a stream is running.
   */
  dry(got: number): void {
    let p = this.#pace;
    const run = this.#run;
    if (this.#paced) {
      if (got <= 1) p = p <= MIN ? 0 : p >> 1;
      else if (got < run) p = Math.min(p + (p >> 1), MAX);
      else if (got > 4 * run) p -= p >> 2;
    } else if (got >= 2 && p === 0) p = MIN;
    this.#pace = p;
    this.#paced = p > 0 && got > 0;
    if (this.#paced) {
      const end = performance.now() + p / 1e6;
      do localWork(CHUNK); while (performance.now() < end);
    }
  }
}
