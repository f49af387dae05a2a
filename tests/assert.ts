/**
 * Assertions for every runtime: node:assert/strict re-exported (Deno and Bun implement it).
 *
 * @module
 */
export {
  deepStrictEqual as assertEquals,
  equal,
  ok as assert,
  rejects as assertRejects,
  throws as assertThrows,
} from "node:assert/strict";
import { strict } from "node:assert";
export { strict };

/** Asserts `fn` throws an error with `.code === code` (ShmError). */
export function assertCode(fn: () => unknown, code: string, msg?: RegExp): void {
  try {
    fn();
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c !== code) throw new Error(`expected code ${code}, got ${c}: ${(e as Error).message}`);
    if (msg && !msg.test((e as Error).message)) {
      throw new Error(`message ${JSON.stringify((e as Error).message)} does not match ${msg}`);
    }
    return;
  }
  throw new Error(`expected an error with code ${code}, nothing was thrown`);
}

/** Asserts the promise rejects with `.code === code`. */
export async function assertRejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    const c = (e as { code?: string }).code;
    if (c !== code) throw new Error(`expected code ${code}, got ${c}: ${(e as Error).message}`);
    return;
  }
  throw new Error(`expected a rejection with code ${code}, the promise resolved`);
}
