/**
 * The one error type of shmkit.
 *
 * @module
 */

/** Error codes shmkit raises. OS errors keep their errno name (`ENOENT`, `EACCES`, ...). */
export type ShmErrorCode =
  | "ENOENT"
  | "EEXIST"
  | "EACCES"
  | "EINVAL"
  | "ENOSPC"
  | "ENOMEM"
  | "EBADHDR"
  | "ECLOSED"
  | "ETIMEDOUT"
  | "EBUSY"
  | "ENOTSUP"
  | "ENOLIB"
  // deno-lint-ignore ban-types
  | (string & {});

/** Options for {@linkcode ShmError}. */
export interface ShmErrorOptions {
  /** The OS errno, where one exists. */
  errno?: number;
  /** The system call that failed, e.g. `"shm_open"`. */
  syscall?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error from shmkit: `code` says what went wrong, the message names the object.
 *
 * @example
 * ```ts
 * import { SharedMemory, ShmError } from "./mod.ts";
 * try {
 *   SharedMemory.open("shmkit-doc-missing");
 * } catch (e) {
 *   if (!(e instanceof ShmError) || e.code !== "ENOENT") throw e;
 * }
 * ```
 */
export class ShmError extends Error {
  /** Always `"ShmError"`, so the error reads as such after a JSON round trip or in a log. */
  override name = "ShmError";
  /** What went wrong: an errno name or one of shmkit's own codes. */
  readonly code: ShmErrorCode;
  /** The OS errno where one exists. */
  readonly errno?: number;
  /** The system call that failed. */
  readonly syscall?: string;

  /**
   * Creates an error with a code and a message that names the object.
   *
   * @param code what went wrong
   * @param message a sentence naming the object, e.g. `Cannot open ring "jobs": no such segment (ENOENT)`
   * @param options errno, syscall, cause
   */
  constructor(code: ShmErrorCode, message: string, options: ShmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.syscall !== undefined) this.syscall = options.syscall;
  }
}

/**
 * Throws TypeError when `options` has a key outside `allowed`. A misspelled option would otherwise
 * be ignored: `{ mdoe: "mpsc" }` creates the default mode, `{ initial: 1 }` a semaphore at 0 whose
 * first `acquire()` waits for good. TypeScript flags such keys in object literals; JavaScript
 * callers and options built elsewhere get this error. Not an object: left to the caller's checks.
 * `hidden`: one more accepted key that the message does not list (a test hook).
 */
export function checkKeys(options: unknown, allowed: readonly string[], what: string, hidden?: string): void {
  if (typeof options !== "object" || options === null) return;
  for (const k in options) {
    if (!allowed.includes(k) && k !== hidden) {
      throw new TypeError(`${what}: unknown option ${JSON.stringify(k)} (the options are ${allowed.join(", ")})`);
    }
  }
}
