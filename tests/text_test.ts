// decodeText (src/text.ts): the same string as TextDecoder for every input, on every runtime, and
// Message.text()/json() and LogRecord.text()/json() through it.
import { assert, assertEquals } from "./assert.ts";
import { RUNTIME, test, uniqueName } from "./harness.ts";
import { Channel, decodeText, MessageLog } from "../mod.ts";
import { TEXT_DECODER } from "../src/text.ts";

const dec = new TextDecoder();

test(`decodeText decodes exactly as TextDecoder: 20 000 random byte strings, invalid sequences and BOMs (${RUNTIME}: ${TEXT_DECODER})`, () => {
  const fixed: number[][] = [
    [],
    [0x68, 0x69],
    [0xc3, 0xa9],
    [0xe2, 0x82, 0xac],
    [0xf0, 0x9f, 0x98, 0x80],
    [0xff],
    [0xc3],
    [0xe2, 0x82],
    [0xed, 0xa0, 0x80], // a surrogate encoded: invalid
    [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
    [0xc0, 0xaf], // overlong
    [0xe0, 0x80, 0xaf],
    [0x80, 0x80, 0x41],
    [0xef, 0xbb, 0xbf, 0x41], // a leading BOM: TextDecoder drops it
    [0xef, 0xbb, 0xbf],
    [0xef, 0xbb],
    [0x41, 0xef, 0xbb, 0xbf], // not leading: kept
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0],
  ];
  let a = 12345;
  const rnd = () => (a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const cases = [...fixed];
  for (let i = 0; i < 20_000; i++) {
    const c: number[] = [];
    for (let n = Math.floor(rnd() * 16); n > 0; n--) {
      c.push(rnd() < 0.5 ? Math.floor(rnd() * 128) : Math.floor(rnd() * 256));
    }
    cases.push(c);
  }
  const big = new Uint8Array(64 * 1024);
  let differ = 0;
  for (const c of cases) {
    const u = new Uint8Array(c);
    if (decodeText(u) !== dec.decode(u)) differ++;
    // The same bytes inside a larger array, by range.
    big.set(u, 100);
    if (decodeText(big, 100, 100 + u.length) !== dec.decode(u)) differ++;
  }
  assertEquals(differ, 0);
});

test("decodeText refuses a range outside the view and reads a detached view as empty", () => {
  const u = new TextEncoder().encode("hello");
  assertEquals(decodeText(u, 1, 4), "ell");
  assertEquals(decodeText(u, 5), "");
  for (const [s, e] of [[-1, 2], [0, 6], [3, 2], [0.5, 2], [Number.NaN, 1]]) {
    let threw = false;
    try {
      decodeText(u, s, e);
    } catch (err) {
      threw = err instanceof RangeError;
    }
    assert(threw, `range ${s}..${e} throws RangeError`);
  }
  const buf = new ArrayBuffer(8);
  const v = new Uint8Array(buf);
  v.set([0x61, 0x62]);
  // deno-lint-ignore no-explicit-any
  const transfer = (buf as any).transfer as (() => ArrayBuffer) | undefined;
  if (typeof transfer === "function") {
    transfer.call(buf); // detaches buf: v reads length 0
    assertEquals(decodeText(v), "");
  }
});

test("Message.text()/json() and LogRecord.text()/json() decode through decodeText, non-ASCII and BOM included", () => {
  const texts = ['{"a":1,"s":"é€😀"}', '\ufeff{"bom":true}', "plain ascii", ""];
  using ch = Channel.create(uniqueName("text"), { slots: 8, slotSize: 128 });
  for (const t of texts) ch.send(t);
  for (const t of texts) {
    using m = ch.recv({ timeout: 1000 });
    assertEquals(m.text(), t.startsWith("\ufeff") ? t.slice(1) : t); // TextDecoder drops a leading BOM
    if (t.startsWith("{") || t.startsWith("\ufeff")) {
      assertEquals(JSON.stringify(m.json()), JSON.stringify(JSON.parse(t.replace(/^\ufeff/, ""))));
    }
  }
  ch.unlink();
  using log = MessageLog.create(uniqueName("textlog"), { capacity: 4096 });
  for (const t of texts) assert(log.tryWrite(t));
  const got: string[] = [];
  assertEquals(log.tryReadBatch((r) => got.push(r.text())), texts.length);
  assertEquals(got, texts.map((t) => t.replace(/^\ufeff/, "")));
  log.unlink();
});
