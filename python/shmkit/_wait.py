"""Timeouts and the spin-then-park loop shared by the blocking and asynchronous forms."""

from __future__ import annotations

import math
import time

from .errors import ShmError


def timeout_ms(timeout: float | None, what: str) -> float:
    """``timeout`` in seconds (None: wait for good) -> milliseconds (inf for None)."""
    if timeout is None:
        return math.inf
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise ValueError(f"{what}: timeout must be a non-negative number of seconds or None, got {timeout!r}")
    return float(timeout) * 1000.0


def timeout_error(what: str, ms: float) -> ShmError:
    return ShmError("ETIMEDOUT", f"{what}: timed out after {ms / 1000.0:g} s (ETIMEDOUT)")


def now_ms() -> float:
    return time.monotonic() * 1000.0
