// Poll pacing for a consumer that found its queue dry (Channel, MessageLog). Across two cores a
// poll of the producer's counter takes that cache line away from the producer, and it pays a
// miss on its next publish: a consumer that polls as fast as it can keeps the producer at a few
// M messages/s. After a run of items the consumer waits a moment of local work before it polls
// again, adapting so that a poll finds about RUN items; one item at a time (ping-pong traffic)
// never waits. docs/INTERNALS.md "Poll pacing" has the measurements.

/** The first wait, in iterations of local work (~0.3 µs). */
const MIN = 256;
/** The longest wait (~20 µs). */
const MAX = 16384;
/** A poll after a wait should find about this many items. */
const RUN = 16;

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

  /**
   * The consumer found its queue dry, having taken `got` items since it last did: grows the
   * wait while each one is followed by a short run (2..RUN-1 items), halves it when followed by at
   * most one, shrinks it above 4 RUN; then waits if a stream is running.
   */
  dry(got: number): void {
    let p = this.#pace;
    if (this.#paced) {
      if (got <= 1) p = p <= MIN ? 0 : p >> 1;
      else if (got < RUN) p = Math.min(p + (p >> 1), MAX);
      else if (got > 4 * RUN) p -= p >> 2;
    } else if (got >= 2 && p === 0) p = MIN;
    this.#pace = p;
    this.#paced = p > 0 && got > 0;
    if (this.#paced) localWork(p);
  }
}
