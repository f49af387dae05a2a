"""Timeouts and the spin-then-park loop shared by the blocking and asynchronous forms."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Callable, TypeVar

from .errors import ShmError

T = TypeVar("T")


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


def wait_until(attempt: Callable[[], T | None], park: Callable[[float], object], what: str, ms: float,
               spin_ms: float, slice_ms: float) -> T:
    """The blocking form's loop, after its first try failed: ``attempt()`` (None: not yet) while
    spinning ``spin_ms``, then ``park(slice)`` for at most ``slice_ms`` at a time and try again, until
    ``ms`` (from ``timeout_ms``) has passed: ShmError ETIMEDOUT naming ``what``. A park returns early
    on a wake and raises KeyboardInterrupt on Ctrl-C."""
    spin_end = now_ms() + spin_ms
    while now_ms() < spin_end:
        r = attempt()
        if r is not None:
            return r
    deadline = now_ms() + ms
    while True:
        rem = deadline - now_ms()
        if rem <= 0:
            raise timeout_error(what, ms)
        park(min(rem, slice_ms))
        r = attempt()
        if r is not None:
            return r


async def wait_until_async(attempt: Callable[[], T | None], park: Callable[[float], object],
                           closed: Callable[[], Exception | None], what: str, ms: float, slice_ms: float) -> T:
    """The asynchronous form's loop: ``attempt()`` (None: not yet) on the event loop's thread, and
    between attempts ``park(slice)`` (a blocking C wait of at most ``slice_ms``) in a worker thread,
    until ``ms`` has passed (ShmError ETIMEDOUT naming ``what``). ``closed()`` returns the error to
    raise once the object is closed (checked before and after every park), else None. Every
    attempt runs on the loop's thread, so a cancelled task never takes anything behind its caller's
    back."""
    r = attempt()
    if r is not None:
        return r
    loop = asyncio.get_running_loop()
    deadline = now_ms() + ms
    while True:
        rem = deadline - now_ms()
        if rem <= 0:
            raise timeout_error(what, ms)
        e = closed()
        if e is not None:
            raise e
        await loop.run_in_executor(None, park, min(rem, slice_ms))
        e = closed()
        if e is not None:
            raise e
        r = attempt()
        if r is not None:
            return r


class Pacer:
    """Poll pacing for a consumer that found its queue dry (src/pace.ts, docs/INTERNALS.md "Poll
    pacing"): across two cores each poll of the producer's counter takes that cache line from the
    producer. After a run of items the consumer waits a moment (0.3-20 us of local spinning,
    adapting so that a poll finds about 16 items) before polling again; one item at a time
    (ping-pong traffic) never waits."""

    __slots__ = ("pace", "paced")
    MIN_NS = 300
    MAX_NS = 20_000
    RUN = 16

    def __init__(self) -> None:
        self.pace = 0
        self.paced = False

    def dry(self, got: int) -> None:
        """The consumer found nothing, having taken ``got`` items since it last did."""
        p = self.pace
        if self.paced:
            if got <= 1:
                p = 0 if p <= self.MIN_NS else p >> 1
            elif got < self.RUN:
                p = min(p + (p >> 1), self.MAX_NS)
            elif got > 4 * self.RUN:
                p -= p >> 2
        elif got >= 2 and p == 0:
            p = self.MIN_NS
        self.pace = p
        self.paced = p > 0 and got > 0
        if self.paced:
            end = time.perf_counter_ns() + p
            while time.perf_counter_ns() < end:
                pass
