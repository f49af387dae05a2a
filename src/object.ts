/**
 * Helpers shared by the structured objects that own their segment (create/open/attach).
 *
 * @module
 */
import type { SharedMemory } from "./segment.ts";

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
