// The receive pacer (src/pace.ts): its wait adapts to the runs a consumer finds, and never aims at
// more items than the queue holds. Deterministic: the tests feed run lengths and read the wait
// (no timing).
import { assert, assertEquals } from "./assert.ts";
import { test } from "./harness.ts";
import { MAX, MIN, Pacer, RUN } from "../src/pace.ts";

test("Pacer aims at RUN items per poll in a large queue, at a quarter of a small one (at least 2)", () => {
  assertEquals(new Pacer(1024).run, RUN);
  assertEquals(new Pacer(4 * RUN).run, RUN);
  assertEquals(new Pacer(64).run, 16);
  assertEquals(new Pacer(16).run, 4);
  assertEquals(new Pacer(2).run, 2);
  assertEquals(new Pacer(0).run, 2);
});

test("Pacer: a run of a quarter of a small queue keeps the wait short (it does not grow to MAX while the producer sits on a full queue)", () => {
  // 16 slots: a sender that fills the channel can hand over at most 16 per poll; aiming at more
  // grew the wait to MAX (a 16-slot channel streamed 0.27 M/s that way).
  const small = new Pacer(16);
  for (let i = 0; i < 50; i++) small.dry(4);
  assertEquals(small.wait, MIN);
  for (let i = 0; i < 50; i++) small.dry(16); // a full queue per poll: still no growth
  assertEquals(small.wait, MIN);
  // The same runs in a large queue are short: the wait grows, bounded by MAX.
  const large = new Pacer(1024);
  for (let i = 0; i < 50; i++) large.dry(4);
  assertEquals(large.wait, MAX);
});

test("Pacer: one item per dry spell (ping-pong) never waits; long runs shrink the wait", () => {
  const p = new Pacer(1024);
  for (let i = 0; i < 10; i++) p.dry(1);
  assertEquals(p.wait, 0);
  for (let i = 0; i < 10; i++) p.dry(8); // a stream starts: the wait grows
  assert(p.wait > MIN, `wait ${p.wait} after short runs`);
  const grown = p.wait;
  p.dry(5 * RUN); // far more than the target per poll: shrinks by a quarter
  assertEquals(p.wait, grown - (grown >> 2));
  for (let i = 0; i < 20; i++) p.dry(1); // back to one at a time: halves down to 0
  assertEquals(p.wait, 0);
});
