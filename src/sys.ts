/**
 * Thin, throwing wrappers over the native calls: a negative return becomes a {@linkcode ShmError}
 * with the errno name, the system call and a sentence that names the object.
 *
 * @module
 */
import { cstr, errnoMessage, errnoName, loopCopyMax, native, plainFlagReads, plainPublish } from "../ffi/mod.ts";
import type { NativeSymbols } from "../ffi/symbols.ts";
import { ShmError } from "./errors.ts";

export { cstr, loopCopyMax, native, plainFlagReads, plainPublish };

/**
 * A pid as every platform's native layer takes it: an integer in 1..2^31-1 (Linux's pid_max is at
 * most 2^22). Anything else, e.g. a hostile or torn owner word of 0xffffffff, names no process:
 * passing it to an `i32` FFI parameter would throw on Deno (`Invalid FFI i32 type`) and wrap on
 * Bun and Node, so it is screened here, the same way on every runtime.
 */
export function validPid(pid: unknown): pid is number {
  return typeof pid === "number" && Number.isInteger(pid) && pid >= 1 && pid <= 0x7fffffff;
}

const raw: NativeSymbols = native.symbols;
const ESRCH_NEG = -raw.shmkit_errno_value(cstr("ESRCH"));
const EINVAL_NEG = -raw.shmkit_errno_value(cstr("EINVAL"));

/**
 * The native functions. Those taking a pid screen it first ({@linkcode validPid}): an invalid
 * pid is "no such process" (0 from proc_alive, -ESRCH from proc_start_time, -EINVAL from
 * open_proc_fd), identical on Deno, Bun and Node.
 */
export const sys: NativeSymbols = {
  ...raw,
  shmkit_proc_alive: (pid: number, startTime: number): number =>
    validPid(pid) ? raw.shmkit_proc_alive(pid, typeof startTime === "number" ? startTime : -1) : 0,
  shmkit_proc_start_time: (pid: number): number => validPid(pid) ? raw.shmkit_proc_start_time(pid) : ESRCH_NEG,
  shmkit_open_proc_fd: (pid: number, fd: number, flags: number): number =>
    validPid(pid) && Number.isInteger(fd) && fd >= 0 && fd <= 0x7fffffff && (flags === 0 || flags === 1)
      ? raw.shmkit_open_proc_fd(pid, fd, flags)
      : EINVAL_NEG,
};

/** Builds the ShmError for a negative native return `r`. */
export function osError(r: number, syscall: string, what: string): ShmError {
  const code = errnoName(r);
  return new ShmError(code, `${what}: ${errnoMessage(r).toLowerCase()} (${code})`, { errno: -r, syscall });
}

/** Returns `r` when it is >= 0, otherwise throws the ShmError for it. */
export function check(r: number, syscall: string, what: string): number {
  if (r < 0) throw osError(r, syscall, what);
  return r;
}

function errnoOf(name: string): number {
  const v = sys.shmkit_errno_value(cstr(name));
  if (v < 0) throw new Error(`libshmkit does not know errno ${name}`);
  return v;
}

/**
 * This platform's errno numbers (they differ between Linux, macOS and Windows): compare native
 * returns against `-ERRNO.ENOENT`, never against literal numbers.
 */
export const ERRNO: {
  readonly EPERM: number;
  readonly ENOENT: number;
  readonly ESRCH: number;
  readonly EINTR: number;
  readonly EBADF: number;
  readonly EAGAIN: number;
  readonly EACCES: number;
  readonly EEXIST: number;
  readonly EINVAL: number;
  readonly EFAULT: number;
  readonly ENOSPC: number;
  readonly ETIMEDOUT: number;
  readonly ENODEV: number;
  readonly ELOOP: number;
} = {
  EPERM: errnoOf("EPERM"),
  ENOENT: errnoOf("ENOENT"),
  ESRCH: errnoOf("ESRCH"),
  EINTR: errnoOf("EINTR"),
  EBADF: errnoOf("EBADF"),
  EAGAIN: errnoOf("EAGAIN"),
  EACCES: errnoOf("EACCES"),
  EEXIST: errnoOf("EEXIST"),
  EINVAL: errnoOf("EINVAL"),
  EFAULT: errnoOf("EFAULT"),
  ENOSPC: errnoOf("ENOSPC"),
  ETIMEDOUT: errnoOf("ETIMEDOUT"),
  ENODEV: errnoOf("ENODEV"),
  ELOOP: errnoOf("ELOOP"),
};

/** The OS page size. */
export const PAGE_SIZE: number = sys.shmkit_page_size();

/** This process's effective user id, or -1 where the platform has none (Windows). */
export const EUID: number = Math.max(-1, sys.shmkit_geteuid());

/** This process id. */
export const PID: number = sys.shmkit_getpid();

/** This process's start time in clock ticks since boot: with the pid, an identity that survives pid reuse. */
export const START_TIME: number = sys.shmkit_proc_start_time(PID);

/**
 * True if `pid` runs, is not a zombie, and (when given: >= 0) started at `startTime`. A pid that
 * is not an integer in 1..2^31-1 (see {@linkcode validPid}) is no live process, on every runtime;
 * a start time that is not a number (NaN from a corrupt word) counts as unknown.
 *
 * @example
 * ```ts
 * import { PID, processAlive } from "./src/sys.ts";
 * console.assert(processAlive(PID) && !processAlive(2 ** 32 - 1) && !processAlive(Number.NaN));
 * ```
 */
export function processAlive(pid: number, startTime = -1): boolean {
  return sys.shmkit_proc_alive(pid, startTime) === 1;
}

/** Monotonic clock in nanoseconds (CLOCK_MONOTONIC; the same clock in every process). */
export function nowNs(): number {
  return sys.shmkit_now_ns();
}
