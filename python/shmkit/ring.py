"""Ring: a lock-free FIFO of u32 values in shared memory (docs/layout/ring.md), the same object as
the TypeScript ``Ring`` (src/ring.ts): a Deno, Bun or Node process and a Python process produce and
consume on one ring. Every operation is one call into csrc/ops.c."""

from __future__ import annotations

import array as _array
import asyncio
import ctypes
import secrets
from typing import Any, Iterable

from . import layout
from . import _accel
from ._lib import check, errno_value, fast, lib
from ._ops import RingLocal, check_sizes
from ._wait import Pacer, timeout_ms, wait_until, wait_until_async
from .errors import ShmError
from .ops_codes import EBADHDR_NEG
from ._placed import Placed, attach_handle
from .shared_memory import SharedMemory

MODES = ("spsc", "mpsc", "spmc", "mpmc")
RING_HEADER_SIZE = 384
MAX_SLOTS = 2**28
MAX_CAPACITY = MAX_SLOTS
_MIN_BYTES = RING_HEADER_SIZE + 8 * 4
_BULK = 1
_BURST = 2
_SPIN_MS = 0.05  # as src/ring.ts SPIN_MS
_PARK_SLICE_MS = 200.0
_ASYNC_SLICE_MS = 50.0  # an asynchronous wait's thread re-checks (and notices cancellation) this often

__all__ = ["Ring", "MODES"]

_U32 = "I" if _array.array("I").itemsize == 4 else "L"


def _slots_for(capacity: object, mode: object, what: str) -> tuple[int, int]:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"{what}: capacity must be an int, got {type(capacity).__name__}")
    if not 1 <= capacity <= MAX_CAPACITY:
        raise ShmError("EINVAL", f"{what}: capacity must be an integer in 1..{MAX_CAPACITY}, got {capacity} (EINVAL)",
                       errno=errno_value("EINVAL"))
    if mode not in MODES:
        raise ShmError("EINVAL", f"{what}: mode must be one of {', '.join(MODES)}, got {mode!r} (EINVAL)",
                       errno=errno_value("EINVAL"))
    n = 4
    while n < capacity:
        n *= 2
    return n, MODES.index(mode)


def _bad_value(v: object, what: str) -> Exception:
    if isinstance(v, bool) or not isinstance(v, int):
        return TypeError(f"{what}: values must be ints, got {type(v).__name__}")
    return ValueError(f"{what}: values must be integers in 0..4294967295, got {v}")


class Ring(Placed):
    """A FIFO of u32 values (0..2**32-1) shared by processes of any language following
    docs/layout/ring.md.

    Role contract (as in TypeScript): ``mpmc`` (default) any number of producers and consumers;
    ``mpsc`` one consumer process, ``spmc`` one producer process, ``spsc`` one of each. A single
    role is claimed by the first operation on that side and held until ``close()``; another live
    process (or another Ring object of this process) gets ``ShmError`` ``EBUSY``; a dead holder's
    role is taken over. A process killed inside any operation never wedges the ring.

    One Ring object belongs to one thread at a time (use one per thread); the asynchronous forms
    run on the event loop's thread and only sleep in worker threads.
    """

    _kind = "ring"

    capacity: int
    mode: str

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use Ring.create(), open(), attach(), at() or init()")

    # ---- placement ------------------------------------------------------------------------------

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "Ring":
        check_sizes()
        self = object.__new__(cls)
        self._seg = seg
        self._off = off
        self._owns = owns
        self._closed = False
        self._name = seg.name if seg.name is not None else "anonymous"
        loc = RingLocal()
        r = lib().shmkit_ring_attach(seg.map_id, float(off), secrets.randbits(32) | 1, ctypes.addressof(loc))
        if r == EBADHDR_NEG:
            raise ShmError("EBADHDR", f"{what}: its ring header is inconsistent (slot count, capacity, mode, sizes, "
                           "or head/tail apart beyond capacity) (EBADHDR)")
        check(r, "ring_attach", what)
        seg._exported = True  # C keeps the address: unmap with tombstones, never under a call
        self._local = loc
        self._addr = ctypes.addressof(loc)
        self.capacity = loc.capacity
        self.mode = MODES[loc.mode]
        self.slots = loc.slots
        f = fast()
        self._enq = f.shmkit_ring_enqueue
        self._deq = f.shmkit_ring_dequeue
        self._enq1 = _accel.bound("shmkit_ring_enqueue1", _accel.ENQUEUE1, loc)
        self._deq1 = _accel.bound("shmkit_ring_dequeue1", _accel.DEQUEUE1, loc)
        # With the accelerator, enqueue(v) and dequeue() are built-ins that return at once when the
        # item went through and otherwise call these methods (which also handle timeouts, waits,
        # closed rings and errors): no Python frame per item on the fast path.
        fe = _accel.fast_method("shmkit_ring_enqueue1", _accel.ENQUEUE1, loc, self, type(self).enqueue)
        if fe is not None:
            self.enqueue = fe
            self.dequeue = _accel.fast_method("shmkit_ring_dequeue1", _accel.DEQUEUE1, loc, self,
                                              type(self).dequeue)
        self._eagain = -errno_value("EAGAIN")
        self._pacer = Pacer()
        self._pace_head = 0
        self._scratch = _array.array(_U32, bytes(4 * 256))
        return self

    @staticmethod
    def byte_length(capacity: int, mode: str = "mpmc") -> int:
        """Bytes a ring of ``capacity`` items occupies (384 + 8 * slots, a multiple of 64)."""
        n, _ = _slots_for(capacity, mode, "Cannot size a ring")
        return RING_HEADER_SIZE + 8 * n

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, capacity: int, mode: str = "mpmc", *,
             _initial_position: int = 0) -> "Ring":
        """Formats a ring at ``byte_offset`` (a multiple of 64) of ``seg`` and attaches to it; the
        segment stays the caller's."""
        what = f"Cannot initialize a ring in {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        n, m = _slots_for(capacity, mode, what)
        if isinstance(byte_offset, bool) or not isinstance(byte_offset, int) or byte_offset < 0 or byte_offset % 64:
            raise ShmError("EINVAL", f"{what}: byteOffset {byte_offset} must be a non-negative multiple of 64 (EINVAL)")
        length = RING_HEADER_SIZE + 8 * n
        if byte_offset + length > seg.size:
            raise ShmError("ENOSPC", f"{what}: it needs {length} bytes at {byte_offset}, the segment has {seg.size} "
                           "(ENOSPC)")
        layout.write_header(seg, byte_offset, "ring", RING_HEADER_SIZE, length, m)
        check(lib().shmkit_ring_format(seg.map_id, float(byte_offset), capacity, m, _initial_position & 0xFFFFFFFF),
              "ring_format", what)
        layout.publish_ready(seg, byte_offset)
        return cls._new(seg, byte_offset, False, what)

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "Ring":
        """Attaches to the ring at ``byte_offset`` of ``seg`` (validating its header)."""
        what = f"Cannot open the ring at {byte_offset} of {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        layout.read_header(seg, byte_offset, "ring", what, min_bytes=_MIN_BYTES)
        return cls._new(seg, byte_offset, False, what)

    @classmethod
    def create(cls, name: str | None, capacity: int, mode: str = "mpmc", *, file_mode: int = 0o600) -> "Ring":
        """Creates a named segment holding a new ring (exclusive: EEXIST if the name is taken)."""
        n, _ = _slots_for(capacity, mode, f"Cannot create ring {name!r}")
        seg = SharedMemory.create(name, RING_HEADER_SIZE + 8 * n, mode=file_mode)
        try:
            r = cls.init(seg, 0, capacity, mode)
        except BaseException:
            seg.unlink()
            seg.close()
            raise
        r._owns = True
        return r

    @classmethod
    def open(cls, name: str) -> "Ring":
        """Opens the ring a TypeScript or Python process created under ``name``."""
        seg = SharedMemory.open(name)
        try:
            what = f"Cannot open ring {name!r}"
            layout.read_header(seg, 0, "ring", what, min_bytes=_MIN_BYTES)
            return cls._new(seg, 0, True, what)
        except BaseException:
            seg.close()
            raise

    @classmethod
    def attach(cls, handle: dict) -> "Ring":
        """Reopens a ring from its handle (``json.loads`` of a TypeScript ``ring.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.ring")
        try:
            what = f"Cannot attach ring {handle.get('name')!r}"
            layout.read_header(seg, off, "ring", what, min_bytes=_MIN_BYTES)
            return cls._new(seg, off, True, what)
        except BaseException:
            seg.close()
            raise

    # ---- errors ---------------------------------------------------------------------------------

    def _err(self, r: int, doing: str) -> ShmError:
        what = f'Cannot {doing} ring "{self._name}"'
        if r == EBADHDR_NEG:
            return ShmError("EBADHDR", f'Ring "{self._name}" is corrupt: its shared counters or slots break the '
                            "layout's invariants (EBADHDR)")
        if r == -errno_value("EBUSY"):
            side = "producer" if doing.startswith("enqueue") else "consumer"
            return ShmError("EBUSY", f"{what}: another live process (or another Ring object of this process) holds "
                            f"the {side} role of this {self.mode} ring (EBUSY)", errno=-r)
        if r == -errno_value("EBADF"):
            return ShmError("ECLOSED", f"{what}: it is closed (ECLOSED)")
        from ._lib import os_error

        return os_error(r, "ring", what)

    def _closed_error(self, doing: str) -> ShmError:
        return ShmError("ECLOSED", f'Cannot {doing} ring "{self._name}": it is closed (ECLOSED)')

    # ---- non-blocking ---------------------------------------------------------------------------

    def try_enqueue(self, value: int) -> bool:
        """Enqueues ``value`` if there is room; never blocks. False when full."""
        if self._closed:
            raise self._closed_error("enqueue on")
        if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
            raise _bad_value(value, f'Cannot enqueue on ring "{self._name}"')
        r = self._enq1(value)
        if r < 0:
            raise self._err(r, "enqueue on")
        return r == 1

    def try_dequeue(self) -> int | None:
        """The oldest value, or None when the ring is empty; never blocks."""
        if self._closed:
            raise self._closed_error("dequeue from")
        r = self._deq1()
        if r >= 0:
            return r
        if r == self._eagain:
            return None
        raise self._err(r, "dequeue from")

    def _values(self, values: Iterable[int]) -> tuple[int, int, Any]:
        """(address, count, keep-alive) of the values as contiguous u32: an array.array('I') or a
        C-contiguous numpy uint32 array is used in place; anything else is converted once (with
        array.array's C-level range check: every value in 0..2**32-1, or nothing is enqueued)."""
        if isinstance(values, _array.array) and values.typecode == _U32:
            return values.buffer_info()[0], len(values), values
        if type(values).__name__ == "ndarray" and getattr(values, "dtype", None) is not None:
            a = values
            if a.dtype.str == "<u4" and a.ndim == 1 and a.flags["C_CONTIGUOUS"]:
                return a.ctypes.data, a.shape[0], a
        try:
            arr = _array.array(_U32, values)
        except (OverflowError, TypeError) as e:
            for v in values:
                if type(v) is not int or not 0 <= v <= 0xFFFFFFFF:
                    raise _bad_value(v, f'Cannot enqueue on ring "{self._name}"') from None
            raise TypeError(f'Cannot enqueue on ring "{self._name}": {e}') from None
        return arr.buffer_info()[0], len(arr), arr

    def enqueue_bulk(self, values: Iterable[int]) -> bool:
        """Enqueues all of ``values`` or none (one atomic step in spsc; a committed batch in the
        multi-producer modes); never blocks."""
        if self._closed:
            raise self._closed_error("enqueue on")
        addr, n, _keep = self._values(values)
        if n == 0:
            return True
        r = self._enq(self._addr, addr, n, _BULK)
        if r < 0:
            raise self._err(r, "enqueue on")
        return r == n

    def enqueue_burst(self, values: Iterable[int]) -> int:
        """Enqueues as many of ``values`` (from the start) as fit; returns how many."""
        if self._closed:
            raise self._closed_error("enqueue on")
        addr, n, _keep = self._values(values)
        if n == 0:
            return 0
        r = self._enq(self._addr, addr, n, _BURST)
        if r < 0:
            raise self._err(r, "enqueue on")
        return r

    def _out(self, count: object, what: str) -> Any:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0 or count > 2**31 - 1:
            raise ValueError(f"{what}: count must be a non-negative int, got {count!r}")
        if count <= len(self._scratch):
            return self._scratch
        return _array.array(_U32, bytes(4 * count))

    def dequeue_bulk(self, count: int) -> list[int]:
        """Exactly ``count`` values, or ``[]`` when fewer are queued; never blocks."""
        if self._closed:
            raise self._closed_error("dequeue from")
        out = self._out(count, f'Cannot dequeue from ring "{self._name}"')
        if count == 0:
            return []
        r = self._deq(self._addr, out.buffer_info()[0], count, _BULK)
        if r < 0:
            raise self._err(r, "dequeue from")
        return out[:r].tolist()

    def dequeue_burst(self, max_count: int) -> list[int]:
        """Up to ``max_count`` values (``[]`` when empty); never blocks."""
        if self._closed:
            raise self._closed_error("dequeue from")
        out = self._out(max_count, f'Cannot dequeue from ring "{self._name}"')
        if max_count == 0:
            return []
        r = self._deq(self._addr, out.buffer_info()[0], max_count, _BURST)
        if r < 0:
            raise self._err(r, "dequeue from")
        return out[:r].tolist()

    def dequeue_into(self, out: Any, max_count: int | None = None) -> int:
        """Up to ``max_count`` (default: all that fit) values into ``out``, an array.array('I') or
        a C-contiguous numpy uint32 array, without allocating; returns how many."""
        if self._closed:
            raise self._closed_error("dequeue from")
        if isinstance(out, _array.array) and out.typecode == _U32:
            addr, cap = out.buffer_info()
        elif getattr(out, "dtype", None) is not None and out.dtype.str == "<u4" and out.ndim == 1 \
                and out.flags["C_CONTIGUOUS"] and out.flags["WRITEABLE"]:
            addr, cap = out.ctypes.data, out.shape[0]
        else:
            raise TypeError(f'Cannot dequeue from ring "{self._name}": out must be an array.array("I") or a '
                            "contiguous writable numpy uint32 array")
        n = cap if max_count is None else max_count
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= cap:
            raise ValueError(f'Cannot dequeue from ring "{self._name}": max_count must be in 0..{cap}, got {n!r}')
        if n == 0:
            return 0
        r = self._deq(self._addr, addr, n, _BURST)
        if r < 0:
            raise self._err(r, "dequeue from")
        return r

    # ---- blocking -------------------------------------------------------------------------------

    def _park(self, side: int, ms: float) -> int:
        r = lib().shmkit_ring_park(self._addr, side, ms)
        if r < 0 and r != -errno_value("ETIMEDOUT") and r != -errno_value("EINTR"):
            if self._closed:
                raise self._closed_error("enqueue on" if side == 0 else "dequeue from")
            raise self._err(r, "enqueue on" if side == 0 else "dequeue from")
        return r

    def enqueue(self, value: int, timeout: float | None = None) -> None:
        """Enqueues ``value``, waiting for room (spins briefly, then sleeps on a futex).
        ``timeout`` in seconds (None: for good); ShmError ETIMEDOUT when it passes. Ctrl-C
        interrupts the wait (KeyboardInterrupt)."""
        if timeout is not None:
            timeout_ms(timeout, "Cannot enqueue")  # validated before anything happens
        # The fast path inlined (one Python call less per item); anything unusual goes through
        # try_enqueue, which raises the right error.
        if not self._closed and type(value) is int and 0 <= value <= 0xFFFFFFFF and self._enq1(value) == 1:
            return
        if self.try_enqueue(value):
            return
        what = f'Cannot enqueue on ring "{self._name}"'
        ms = timeout_ms(timeout, what)
        wait_until(lambda: True if self.try_enqueue(value) else None, lambda sl: self._park(0, sl), what, ms, _SPIN_MS,
                   _PARK_SLICE_MS)

    def dequeue(self, timeout: float | None = None) -> int:
        """The oldest value, waiting for one (see ``enqueue``)."""
        if timeout is not None:
            timeout_ms(timeout, "Cannot dequeue")
        if not self._closed:
            v = self._deq1()  # the fast path inlined, as in enqueue
            if v >= 0:
                return v
        v = self.try_dequeue()
        if v is not None:
            return v
        if self.mode == "spsc":
            # Dry after a run: pace before polling again (_wait.Pacer; the producer publishes a run
            # instead of losing its tail line to this core on every poll).
            h = self._local.c_head
            self._pacer.dry((h - self._pace_head) & 0xFFFFFFFF)
            self._pace_head = h
            v = self.try_dequeue()
            if v is not None:
                return v
        what = f'Cannot dequeue from ring "{self._name}"'
        ms = timeout_ms(timeout, what)
        return wait_until(self.try_dequeue, lambda sl: self._park(1, sl), what, ms, _SPIN_MS, _PARK_SLICE_MS)

    # ---- asyncio --------------------------------------------------------------------------------

    async def _wait_async(self, side: int, attempt, what: str, timeout: float | None):
        doing = "enqueue on" if side == 0 else "dequeue from"
        return await wait_until_async(attempt, lambda sl: self._park(side, sl),
                                      lambda: self._closed_error(doing) if self._closed else None, what,
                                      timeout_ms(timeout, what), _ASYNC_SLICE_MS)

    async def enqueue_async(self, value: int, timeout: float | None = None) -> None:
        """Enqueues ``value``, waiting for room without blocking the event loop."""
        what = f'Cannot enqueue on ring "{self._name}"'
        await self._wait_async(0, lambda: True if self.try_enqueue(value) else None, what, timeout)

    async def dequeue_async(self, timeout: float | None = None) -> int:
        """The oldest value, waiting without blocking the event loop."""
        return await self._wait_async(1, self.try_dequeue, f'Cannot dequeue from ring "{self._name}"', timeout)

    def __aiter__(self):
        return self

    async def __anext__(self) -> int:
        return await self.dequeue_async()

    # ---- state ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Items queued now (a snapshot)."""
        if self._closed:
            raise self._closed_error("read")
        r = lib().shmkit_ring_count(self._addr)
        if r < 0:
            raise self._err(int(r), "read")
        return int(r)

    @property
    def size(self) -> int:
        return len(self)

    def close(self) -> None:
        """Releases this object's roles and, if it owns its segment, unmaps it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._seg.closed:
            lib().shmkit_ring_release(self._addr)
        self._local.token = 0  # C refuses the local from now on (the accelerated enqueue/dequeue fall back)
        if self._owns:
            self._seg.close()

    def __repr__(self) -> str:
        return f"<shmkit.Ring {self._name!r} {self.mode} capacity={self.capacity}{' closed' if self._closed else ''}>"
