// The C mirror of the byte layout (csrc/shmkit_layout.h: structs with _Static_assert(offsetof…)),
// read at run time through shmkit_layout_offset, against the offset constants the TypeScript
// modules export (each kind's own constant, and the command line's readers in src/inspect.ts), and against the offset | size | field tables of docs/LAYOUT.md (which also
// covers fields the code does not export yet, such as the channel header's).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { assert, assertEquals } from "./assert.ts";
import { ROOT, test } from "./harness.ts";
import { cstr, ERRNO, sys } from "../src/sys.ts";
import { COMMON_HEADER_SIZE, HDR, KIND, type KindName } from "../src/layout.ts";
import { RING, RING_HEADER_SIZE } from "../src/ring.ts";
import { MEMPOOL } from "../src/mempool.ts";
import * as channelModule from "../src/channel.ts";
import { MUTEX, MUTEX_HEADER_SIZE } from "../src/mutex.ts";
import { SEMAPHORE, SEMAPHORE_BYTES } from "../src/semaphore.ts";
import { CONDITION, CONDITION_BYTES } from "../src/condition.ts";
import { ARRAY_LAYOUT } from "../src/shared_array.ts";
import { HEAP, HEAP_NAME_BYTES, HEAP_NAME_LAYOUT } from "../src/heap.ts";
import { READER_LAYOUT } from "../src/inspect.ts";
import { LOG, LOG_HEADER_SIZE, LOG_RECORD_LAYOUT, LOG_SLOT_LAYOUT, LOG_SLOT_SIZE } from "../src/log.ts";

const ENOSYS = sys.shmkit_errno_value(cstr("ENOSYS"));

/**
 * Entries the library's table lacks while csrc/shmkit.c does not list them yet (the log's, kept
 * in csrc/shmkit_layout.h as SHMKIT_LOG_LAYOUT_TABLE): read by compiling a probe against the
 * same header with the same macros.
 */
let probe: Map<string, number> | undefined;
function probed(name: string): number | undefined {
  if (!name.startsWith("log")) return undefined;
  if (!probe) {
    probe = new Map();
    const dir = `${ROOT}build/layout_probe`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      `${dir}/log.c`,
      `#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "shmkit_layout.h"
#define LAYOUT_FIELD(k, T, m) { #k "." #m, (int)offsetof(struct T, m) }, { #k "." #m ".size", (int)sizeof(((struct T *)0)->m) }
#define LAYOUT_ARRAY(k, T, m) { #k "." #m, (int)offsetof(struct T, m) }, { #k "." #m ".size", (int)sizeof(((struct T *)0)->m[0]) }
#define LAYOUT_SIZE(k, T) { #k ".size", (int)sizeof(struct T) }
static const struct { const char *name; int value; } t[] = { SHMKIT_LOG_LAYOUT_TABLE };
int main(void) { for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) printf("%s %d\\n", t[i].name, t[i].value); return 0; }
`,
    );
    execFileSync("cc", ["-std=c11", "-Wall", "-Werror", `-I${ROOT}csrc`, "-o", `${dir}/log`, `${dir}/log.c`]);
    for (const line of execFileSync(`${dir}/log`).toString().trim().split("\n")) {
      const [k, v] = line.split(" ");
      probe.set(k, Number(v));
    }
  }
  return probe.get(name);
}

/** What C reports for `name` ("ring.tail", "ring.tail.size", "ring.size"), or -errno. */
function c(name: string): number {
  const v0 = sys.shmkit_layout_offset(cstr(name));
  const v = v0 === -ERRNO.ENOENT ? probed(name) ?? v0 : v0;
  if (v === -ENOSYS) {
    throw new Error("libshmkit was built without csrc/shmkit_layout.h (shmkit_layout_offset is a stub): run make lib");
  }
  return v;
}

/** One exported TS constant of a kind, and the C name of each key (default `<prefix>.<key>`). */
interface TsConstant {
  label: string;
  offsets: Record<string, number>;
  rename?: Record<string, string>;
}

interface KindSpec {
  /** C names of the kind's header struct and of its table entry struct (if any). */
  header: string;
  entry?: string;
  /** Other entry structs, by words of their docs section title (channel: the participant entry). */
  entries?: Record<string, string>;
  /** Exported TS constants: offset objects, and header sizes as `{ label, value, c }`. */
  ts: TsConstant[];
  sizes: { label: string; value: number; c: string }[];
}

/** A layout constant the channel module may export later (none yet: its H_* offsets are private). */
const channelExport = Object.entries(channelModule as Record<string, unknown>).find(([k, v]) =>
  (k === "CHANNEL" || k === "CHANNEL_LAYOUT") && typeof v === "object" && v !== null
);

function prefixed(prefix: string, o: Record<string, number>): Record<string, string> {
  return Object.fromEntries(Object.keys(o).map((k) => [k, `${prefix}.${k}`]));
}

const KINDS: Record<KindName | "common", KindSpec> = {
  common: {
    header: "common",
    ts: [{ label: "layout.ts HDR", offsets: HDR }],
    sizes: [{ label: "COMMON_HEADER_SIZE", value: COMMON_HEADER_SIZE, c: "common.size" }],
  },
  ring: {
    header: "ring",
    entry: "ring_slot",
    ts: [{ label: "ring.ts RING", offsets: RING }],
    sizes: [{ label: "RING_HEADER_SIZE", value: RING_HEADER_SIZE, c: "ring.size" }],
  },
  mempool: {
    header: "mempool",
    entry: "mempool_slot",
    // MEMPOOL also carries two sizes: headerSize (bytes before the slot table) and slotSize.
    ts: [{
      label: "mempool.ts MEMPOOL",
      offsets: MEMPOOL,
      rename: { headerSize: "mempool.size", slotSize: "mempool_slot.size" },
    }],
    sizes: [],
  },
  channel: {
    header: "channel",
    entry: "channel_entry",
    entries: { "Participant entry": "channel_proc" },
    ts: channelExport
      ? [{ label: `channel.ts ${channelExport[0]}`, offsets: channelExport[1] as Record<string, number> }]
      : [],
    sizes: [],
  },
  mutex: {
    header: "mutex",
    ts: [{ label: "mutex.ts MUTEX", offsets: MUTEX }],
    sizes: [{ label: "MUTEX_HEADER_SIZE", value: MUTEX_HEADER_SIZE, c: "mutex.size" }],
  },
  semaphore: {
    header: "semaphore",
    ts: [{ label: "semaphore.ts SEMAPHORE", offsets: SEMAPHORE }],
    sizes: [{ label: "SEMAPHORE_BYTES", value: SEMAPHORE_BYTES, c: "semaphore.size" }],
  },
  condition: {
    header: "condition",
    ts: [{ label: "condition.ts CONDITION", offsets: CONDITION }],
    sizes: [{ label: "CONDITION_BYTES", value: CONDITION_BYTES, c: "condition.size" }],
  },
  array: {
    header: "array",
    ts: [{ label: "shared_array.ts ARRAY_LAYOUT", offsets: ARRAY_LAYOUT }],
    sizes: [],
  },
  heap: {
    header: "heap",
    entry: "heap_name",
    ts: [
      { label: "heap.ts HEAP", offsets: HEAP },
      {
        label: "heap.ts HEAP_NAME_LAYOUT",
        offsets: HEAP_NAME_LAYOUT,
        rename: Object.fromEntries(Object.keys(HEAP_NAME_LAYOUT).map((k) => [k, `heap_name.${k}`])),
      },
    ],
    sizes: [
      { label: "HEAP.mutex (header size)", value: HEAP.mutex, c: "heap.size" },
      { label: "HEAP_NAME_BYTES", value: HEAP_NAME_BYTES, c: "heap_name.size" },
    ],
  },
  log: {
    header: "log",
    entry: "log_slot",
    ts: [
      { label: "log.ts LOG", offsets: LOG },
      { label: "log.ts LOG_SLOT_LAYOUT", offsets: LOG_SLOT_LAYOUT, rename: prefixed("log_slot", LOG_SLOT_LAYOUT) },
      {
        label: "log.ts LOG_RECORD_LAYOUT",
        offsets: LOG_RECORD_LAYOUT,
        rename: prefixed("log_record", LOG_RECORD_LAYOUT),
      },
    ],
    sizes: [
      { label: "LOG_HEADER_SIZE", value: LOG_HEADER_SIZE, c: "log.size" },
      { label: "LOG_SLOT_SIZE", value: LOG_SLOT_SIZE, c: "log_slot.size" },
    ],
  },
};

// The command line reads objects through its own copy of the offsets (src/inspect.ts).
for (const [kind, offsets] of Object.entries(READER_LAYOUT) as [keyof typeof READER_LAYOUT, Record<string, number>][]) {
  KINDS[kind].ts.push({ label: `inspect.ts READER_LAYOUT.${kind}`, offsets });
}

/** TS constant vs C: every key of every exported constant of the kind; lists what differs. */
function compareTs(kind: keyof typeof KINDS): string[] {
  const spec = KINDS[kind];
  const out: string[] = [];
  for (const t of spec.ts) {
    for (const [key, value] of Object.entries(t.offsets)) {
      if (!Number.isSafeInteger(value)) continue;
      const name = t.rename?.[key] ?? `${spec.header}.${key}`;
      const got = c(name);
      if (got < 0) out.push(`${t.label}.${key} = ${value}: the C mirror has no "${name}" (${got})`);
      else if (got !== value) out.push(`${t.label}.${key} = ${value} in TypeScript, "${name}" = ${got} in C`);
    }
  }
  for (const s of spec.sizes) {
    const got = c(s.c);
    if (got !== s.value) out.push(`${s.label} = ${s.value} in TypeScript, "${s.c}" = ${got} in C`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// docs/LAYOUT.md tables

interface Row {
  offset: number | undefined;
  size: number | undefined;
  field: string;
  line: number;
}
interface Table {
  /** "common", a kind name, or undefined when the table is under no kind heading. */
  kind: string | undefined;
  section: string;
  source: string;
  rows: Row[];
}

const KIND_BY_NUMBER = new Map<number, string>(Object.entries(KIND).map(([k, v]) => [v, k]));

/** Every markdown table with offset (or off), size and field columns, with the kind it is under. */
function parseTables(md: string, source: string): Table[] {
  const lines = md.split("\n");
  const tables: Table[] = [];
  let section = "";
  let kind: string | undefined;
  let kindLevel = 0; // heading level of the heading that set `kind`
  const cells = (l: string) => l.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((x) => x.trim());
  const num = (x: string | undefined) => (x !== undefined && /^\d+$/.test(x) ? Number(x) : undefined);
  for (let i = 0; i < lines.length; i++) {
    const h = lines[i].match(/^(#+)\s*(.*)$/);
    if (h) {
      section = h[2];
      const level = h[1].length;
      const k = section.match(/\(kind (\d+)\)/);
      if (k) [kind, kindLevel] = [KIND_BY_NUMBER.get(Number(k[1])) ?? `kind ${k[1]}`, level];
      else if (/^common header\b/i.test(section)) [kind, kindLevel] = ["common", level];
      else if (level <= kindLevel) [kind, kindLevel] = [undefined, 0]; // a sibling part, not a subsection
    }
    if (!lines[i].trim().startsWith("|") || !/^\|\s*-/.test(lines[i + 1]?.trim() ?? "")) continue;
    const head = cells(lines[i]).map((x) => x.toLowerCase());
    const o = head.findIndex((x) => x === "offset" || x === "off");
    const s = head.indexOf("size");
    const f = head.indexOf("field");
    if (o < 0 || s < 0 || f < 0) continue;
    const t: Table = { kind, section, source, rows: [] };
    for (let j = i + 2; j < lines.length && lines[j].trim().startsWith("|"); j++) {
      const x = cells(lines[j]);
      const field = (x[f] ?? "").replace(/`/g, "").match(/^[A-Za-z_][A-Za-z0-9_]*/)?.[0] ?? "";
      t.rows.push({ offset: num(x[o]), size: num(x[s]), field, line: j + 1 });
    }
    tables.push(t);
  }
  return tables;
}

const notes: string[] = [];

/**
 * The documented tables of each kind: from docs/LAYOUT.md, or, for a kind docs/LAYOUT.md lacks
 * (a stale LAYOUT.md, see tests/layout_test.ts), from the docs/layout/*.md part it is made of.
 */
function docTables(): Map<string, Table[]> {
  const byKind = new Map<string, Table[]>();
  const add = (t: Table) => {
    if (t.kind === undefined) return;
    if (!byKind.has(t.kind)) byKind.set(t.kind, []);
    byKind.get(t.kind)!.push(t);
  };
  for (const t of parseTables(readFileSync(`${ROOT}docs/LAYOUT.md`, "utf8"), "docs/LAYOUT.md")) add(t);
  const inLayout = new Set(byKind.keys());
  for (const f of readdirSync(`${ROOT}docs/layout`).filter((x) => x.endsWith(".md")).sort()) {
    const src = `docs/layout/${f}`;
    for (const t of parseTables(readFileSync(`${ROOT}${src}`, "utf8"), src)) {
      if (t.kind === undefined || inLayout.has(t.kind)) continue;
      add(t);
      const note = `docs/LAYOUT.md has no ${t.kind} table: compared the C mirror with ${src} (run scripts/layout.sh)`;
      if (!notes.includes(note)) notes.push(note);
    }
  }
  return byKind;
}

const DOCS = docTables();
if (notes.length) console.log(`layout_c_test:\n  ${notes.join("\n  ")}`);

/** C names a documented row may stand for: its field, or the reserved / padding members. */
function candidates(prefix: string, field: string): string[] {
  if (field === "" || field === "reserved") {
    const members = ["reserved", "reserved2", "reserved3", ...Array.from({ length: 8 }, (_, i) => `pad${i + 1}`)];
    return members.map((m) => `${prefix}.${m}`);
  }
  return [`${prefix}.${field}`];
}

/** Documented rows vs C: offsets, and sizes where the table gives a number; lists what differs. */
function compareDoc(kind: keyof typeof KINDS): { checked: number; out: string[] } {
  const spec = KINDS[kind];
  const out: string[] = [];
  let checked = 0;
  const tables = DOCS.get(kind) ?? [];
  if (tables.length === 0) return { checked, out: [`no table documents the ${kind} layout`] };
  for (const t of tables) {
    // The kind's header table starts with the 64-byte common header (or is the common header);
    // any other table of the kind documents its entry struct (ring slot, mempool slot, slot table).
    const first = t.rows.find((r) => r.offset !== undefined);
    const isHeader = kind === "common" || (first?.offset === 0 && first.size === 64);
    const other = Object.entries(spec.entries ?? {}).find(([section]) => t.section.includes(section))?.[1];
    const prefix = isHeader ? spec.header : other ?? spec.entry;
    if (!prefix) {
      out.push(`${t.source} "${t.section}" (line ${t.rows[0]?.line}): the C mirror has no ${kind} entry struct`);
      continue;
    }
    for (const r of t.rows) {
      if (r.offset === undefined) continue; // placed at a stored offset (freeOffset, S, D, ...)
      const where = `${t.source} line ${r.line} (${kind} ${r.field || "-"} at ${r.offset})`;
      const names = candidates(prefix, r.field);
      const name = names.find((n) => c(n) === r.offset) ?? names[0];
      const off = c(name);
      checked++;
      if (off < 0) {
        out.push(`${where}: the C mirror has no "${name}"`);
        continue;
      }
      if (off !== r.offset) out.push(`${where}: "${name}" is at ${off} in C`);
      if (r.size !== undefined) {
        const size = c(`${name}.size`);
        if (size !== r.size) out.push(`${where}: documented size ${r.size}, "${name}.size" = ${size} in C`);
      }
    }
  }
  return { checked, out };
}

// ---------------------------------------------------------------------------------------------

test("the C mirror answers ENOENT for a name it does not know", () => {
  assertEquals(c("common.nope"), -ERRNO.ENOENT);
  assertEquals(c("nope.size"), -ERRNO.ENOENT);
  assertEquals(c(""), -ERRNO.ENOENT);
  assertEquals(c("common.kind"), 6);
  assertEquals(c("common.kind.size"), 2);
  assertEquals(c("common.size"), 64);
});

test("every kind in KIND has a C mirror that starts with the 64-byte common header", () => {
  for (const kind of Object.keys(KIND)) {
    assertEquals(c(`${kind}.common`), 0, kind);
    assertEquals(c(`${kind}.common.size`), c("common.size"), kind);
    const size = c(`${kind}.size`);
    assert(size >= 64 && size % 8 === 0, `${kind}.size = ${size}`);
    assert(kind in KINDS, `tests/layout_c_test.ts has no spec for kind ${kind}`);
  }
});

const TITLES: Record<keyof typeof KINDS, string> = {
  common: "common header",
  ring: "ring header",
  mempool: "mempool header",
  channel: "channel header",
  mutex: "mutex header",
  semaphore: "semaphore",
  condition: "condition",
  array: "array header",
  heap: "heap header",
  log: "log header",
};

for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
  if (KINDS[kind].ts.length > 0) {
    test(`the ${TITLES[kind]} offsets in TypeScript match the C mirror`, () => {
      assertEquals(compareTs(kind), []);
    });
  }
  test(`the ${TITLES[kind]} table in docs/LAYOUT.md matches the C mirror`, () => {
    const { checked, out } = compareDoc(kind);
    assertEquals(out, []);
    assert(checked >= 2, `only ${checked} documented ${kind} fields found`);
  });
}
