/**
 * Helpers shared by the structured objects that own their segment (create/open/attach).
 *
 * @module
 */
import { ShmError } from "./errors.ts";
import { HANDLE_VERSION } from "./handle.ts";
import { normalizeName, SharedMemory, type SharedMemoryHandle } from "./segment.ts";

/**
 * Runs `place()` (which formats or attaches an object inside `seg`) and returns its result; if it
 * throws, the segment is closed (and unlinked when this call `created` it) before the error goes on,
 * so a failed create/open/attach leaves nothing mapped or named behind.
 */
export function placeOrRelease<T>(seg: SharedMemory, created: boolean, place: () => T): T {
  try {
    return place();
  } catch (e) {
    if (created) seg.unlink();
    seg.close();
    throw e;
  }
}

/**
 * Runs a SharedMemory call made on behalf of an object and re-words its error to name that object:
 * `Cannot open ring "jobs": no such segment (ENOENT)` instead of `Cannot open shared memory ...`.
 * Code, errno and syscall are kept; the original error is the cause.
 */
export function renamed<T>(fn: () => T, what: string, name: string | null): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ShmError)) throw e;
    if (name === null) {
      throw new ShmError(e.code, `${what} (random name): ${e.message}`, {
        errno: e.errno,
        syscall: e.syscall,
        cause: e,
      });
    }
    let n = name;
    try {
      n = normalizeName(name, what);
    } catch { /* the original error already says why */ }
    const i = e.message.indexOf(": ");
    const why = i >= 0 ? e.message.slice(i) : `: ${e.message}`;
    throw new ShmError(e.code, `${what} ${JSON.stringify(n)}${why}`, { errno: e.errno, syscall: e.syscall, cause: e });
  }
}

/** "Cannot create <kind> <name>" for messages: an anonymous object says so rather than `null`. */
export function createWhat(kind: string, name: string | null): string {
  return `Cannot create ${kind} ${name === null ? "in anonymous shared memory" : JSON.stringify(name)}`;
}

/** The JSON handle of an object placed at `byteOffset` in `seg` (the same shape for every kind). */
export function placedHandle<K extends string>(
  kind: K,
  seg: SharedMemory,
  byteOffset: number,
): { kind: K; version: number; name: string | null; byteOffset: number; segment: SharedMemoryHandle } {
  return { kind, version: HANDLE_VERSION, name: seg.name, byteOffset, segment: seg.handle() };
}

/**
 * `unlink()` of an object placed in `seg`: removes the segment's name; processes already attached
 * keep working. An object in anonymous memory has no name to remove: nothing happens.
 */
export function unlinkName(seg: SharedMemory): void {
  if (seg.name !== null) SharedMemory.unlink(seg.name);
}
