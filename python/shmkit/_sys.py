"""Process facts and small helpers over libshmkit (pid, start time, liveness, clocks)."""

from __future__ import annotations

import ctypes

from ._lib import lib

_cached: dict[str, int] = {}


def pid() -> int:
    # Not cached: a forked child has its own pid (multiprocessing's fork start method).
    return lib().shmkit_getpid()


def start_time(p: int | None = None) -> int:
    """Start time of a process in clock ticks since boot (-1 when unknown)."""
    v = lib().shmkit_proc_start_time(pid() if p is None else p)
    return int(v) if v >= 0 else -1


def euid() -> int:
    v = _cached.get("euid")
    if v is None:
        v = max(-1, lib().shmkit_geteuid())
        _cached["euid"] = v
    return v


def page_size() -> int:
    v = _cached.get("page")
    if v is None:
        v = lib().shmkit_page_size()
        _cached["page"] = v
    return v


def name_max() -> int:
    v = _cached.get("name_max")
    if v is None:
        v = lib().shmkit_name_max()
        _cached["name_max"] = v
    return v


def valid_pid(p: object) -> bool:
    return isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 0x7FFFFFFF


def process_alive(p: int, start: float = -1) -> bool:
    """True if ``p`` runs, is not a zombie and (when ``start`` >= 0) started at ``start``."""
    if not valid_pid(p):
        return False
    s = float(start) if isinstance(start, (int, float)) and start == start else -1.0
    return lib().shmkit_proc_alive(p, s) == 1


def now_ns() -> float:
    """CLOCK_MONOTONIC in nanoseconds (the same clock in every process)."""
    return lib().shmkit_now_ns()


def rusage() -> tuple[float, float]:
    """(user seconds, system seconds) of this process."""
    out = (ctypes.c_double * 4)()
    lib().shmkit_rusage(out)
    return out[0], out[1]
