/**
 * Thin, throwing wrappers over the native calls: a negative return becomes a {@linkcode ShmError}
 * with the errno name, the system call and a sentence that names the object.
 *
 * @module
 */
import { cstr, errnoMessage, errnoName, native } from "../ffi/mod.ts";
import { ShmError } from "./errors.ts";

export { cstr, native };

/** The native functions. */
export const sys = native.symbols;

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
};

/** The OS page size. */
export const PAGE_SIZE: number = sys.shmkit_page_size();

/** This process id. */
export const PID: number = sys.shmkit_getpid();

/** This process's start time in clock ticks since boot: with the pid, an identity that survives pid reuse. */
export const START_TIME: number = sys.shmkit_proc_start_time(PID);

/** True if `pid` runs, is not a zombie, and (when given) started at `startTime`. */
export function processAlive(pid: number, startTime = -1): boolean {
  return sys.shmkit_proc_alive(pid, startTime) === 1;
}

/** Monotonic clock in nanoseconds (CLOCK_MONOTONIC; the same clock in every process). */
export function nowNs(): number {
  return sys.shmkit_now_ns();
}
