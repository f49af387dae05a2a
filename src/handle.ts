/**
 * Handles: plain JSON-safe objects that name a shared object so any process can reopen it.
 * `{ kind: "shmkit.ring", version: 1, name: "jobs", ... }`. Each class registers how to attach
 * its kind; {@linkcode attach} dispatches on `kind`.
 *
 * @module
 */
import { ShmError } from "./errors.ts";

declare global {
  // The package's declarations name two web globals. Node's own declarations (@types/node) and the
  // DOM lib define them fully; these empty-bodied merges let a Node project without either
  // (`"types": []`, no "dom" lib) type-check against shmkit's .d.ts files.
  // deno-lint-ignore no-empty-interface
  interface AbortSignal {}
  // deno-lint-ignore no-empty-interface
  interface URL {}
}

/** What every handle has. */
export interface Handle {
  /** `"shmkit.shm"`, `"shmkit.ring"`, `"shmkit.mempool"`, ... */
  readonly kind: string;
  /** Handle format version (1). */
  readonly version: number;
  /** The segment name, or null for anonymous memory. */
  readonly name: string | null;
}

/** The handle format version this build writes and reads. */
export const HANDLE_VERSION = 1;

const kinds = new Map<string, (h: Handle) => unknown>();

/** Registers the attach function of a handle kind (called once per class at module load). */
export function registerKind(kind: string, attachFn: (h: Handle) => unknown): void {
  kinds.set(kind, attachFn);
}

/** Checks that `h` is an object of `kind` and the supported version; throws EINVAL otherwise. */
export function checkHandle(h: unknown, kind: string): asserts h is Handle {
  if (typeof h !== "object" || h === null) {
    throw new ShmError("EINVAL", `Cannot attach ${kind}: the handle is not an object`);
  }
  const o = h as Record<string, unknown>;
  if (o.kind !== kind) {
    throw new ShmError("EINVAL", `Cannot attach ${kind}: the handle is of kind ${JSON.stringify(o.kind)}`);
  }
  if (o.version !== HANDLE_VERSION) {
    throw new ShmError(
      "EINVAL",
      `Cannot attach ${kind}: handle version ${
        String(o.version)
      } is not supported (this build reads ${HANDLE_VERSION})`,
    );
  }
}

/**
 * A handle's segment name: a string, or null for anonymous memory. A handle is another process's
 * JSON, so anything else (a number, a missing name) is EINVAL, not a TypeError further on.
 */
export function handleName(name: unknown, what: string): string | null {
  if (name === null || typeof name === "string") return name;
  throw new ShmError(
    "EINVAL",
    `${what}: the handle's name is ${JSON.stringify(name) ?? "missing"}, not a string or null (EINVAL)`,
  );
}

/** A pid or descriptor number from a handle: an integer in 0..2^31-1 (-0 included). */
export function isId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
}

/**
 * Reopens the object a handle names, whatever its kind.
 *
 * @example
 * ```ts
 * import { attach, SharedMemory } from "./mod.ts";
 * using seg = SharedMemory.create(null, 4096);
 * const json = JSON.stringify(seg.handle());
 * using again = attach(JSON.parse(json)) as SharedMemory;
 * seg.unlink();
 * ```
 */
export function attach(handle: Handle): unknown {
  if (typeof handle !== "object" || handle === null || typeof handle.kind !== "string") {
    throw new ShmError("EINVAL", "Cannot attach: the handle is not a shmkit handle object");
  }
  const fn = kinds.get(handle.kind);
  if (!fn) throw new ShmError("EINVAL", `Cannot attach: unknown handle kind ${JSON.stringify(handle.kind)}`);
  return fn(handle);
}
