"""Mempool: ``count`` fixed-size blocks in shared memory (docs/layout/mempool.md), the same object
as the TypeScript ``Mempool`` (src/mempool.ts): a block got in Bun can be put back by Python and
the other way round. get and put are one call each into csrc/ops.c."""

from __future__ import annotations

import ctypes
import struct
from typing import Any

from . import layout
from . import _accel
from ._lib import check, errno_value, lib, os_error
from ._ops import MempoolLocal, check_sizes
from ._wait import timeout_ms, wait_until, wait_until_async
from .errors import ShmError
from .ops_codes import EBADHDR_NEG
from ._placed import Placed, attach_handle, owning
from .shared_memory import SharedMemory

HEADER_SIZE = 192
MAX_COUNT = 2**28
MAX_BLOCK_SIZE = 2**31
MAX_PROCESSES = 256
DEFAULT_MAX_PROCESSES = 64
_SPIN_MS = 0.02  # as src/mempool.ts SPIN_NS
_PARK_SLICE_MS = 50.0

__all__ = ["Mempool", "Block"]


def _align(n: int) -> int:
    return (n + 63) // 64 * 64


def _geometry(count: object, block_size: object, procs: object, what: str) -> tuple[int, int, int, int]:
    """(stride, statesOffset, dataOffset, byteLength) for valid options; EINVAL otherwise."""
    for name, v, hi in (("count", count, MAX_COUNT), ("blockSize", block_size, MAX_BLOCK_SIZE),
                        ("maxProcesses", procs, MAX_PROCESSES)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ShmError("EINVAL", f"{what}: {name} must be an integer in 1..{hi}, got {v!r} (EINVAL)",
                           errno=errno_value("EINVAL"))
    stride = _align(block_size)  # type: ignore[arg-type]
    states = _align(HEADER_SIZE + 16 * procs)  # type: ignore[operator]
    data = _align(states + 4 * count)  # type: ignore[operator]
    return stride, states, data, data + stride * count  # type: ignore[operator]


class Block:
    """A block handed out by a Mempool: ``index`` (what you send to another process) and
    ``buf``, a zero-copy writable memoryview of its ``block_size`` bytes."""

    __slots__ = ("index", "buf")

    def __init__(self, index: int, buf: memoryview):
        self.index = index
        self.buf = buf

    def __repr__(self) -> str:
        return f"<shmkit.Block {self.index} ({len(self.buf)} bytes)>"


class Mempool(Placed):
    """A pool of ``count`` fixed-size blocks shared by any number of processes of any language.

    Any process may get, put and reclaim at once; a block got in one process may be put by
    another (send its index, view it there with ``block(index)``). A process SIGKILLed anywhere
    leaves every block free or recorded under it; ``reclaim()`` (which a blocking ``get`` also
    runs) returns a dead process's blocks. One Mempool object belongs to one thread at a time.
    """

    _kind = "mempool"

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use Mempool.create(), open(), attach(), at() or init()")

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "Mempool":
        check_sizes()
        loc = MempoolLocal()
        r = lib().shmkit_mempool_attach(seg.map_id, float(off), ctypes.addressof(loc))
        if r == EBADHDR_NEG:
            raise ShmError("EBADHDR", f"{what}: its offsets or byteLength do not match its count, blockSize and "
                           "maxProcesses, or it does not fit the segment (EBADHDR)")
        check(r, "mempool_attach", what)
        seg._exported = True
        self = object.__new__(cls)
        self._seg, self._off, self._owns, self._closed = seg, off, owns, False
        self._what = "mempool in anonymous shared memory" if seg.name is None else f'mempool "{seg.name}"'
        self._local = loc
        self._addr = ctypes.addressof(loc)
        self.count = loc.count
        self.block_size = loc.block_size
        self.max_processes = loc.procs
        self._stride = loc.stride
        self._data = off + int(loc.data)
        self.byte_length = int(loc.data) + loc.stride * loc.count
        self._blocks: dict[int, Block] = {}
        self._get = _accel.bound("shmkit_mempool_get", _accel.GET, loc)
        self._put = _accel.bound("shmkit_mempool_put", _accel.PUT, loc)
        return self

    @staticmethod
    def byte_length_of(count: int, block_size: int, max_processes: int = DEFAULT_MAX_PROCESSES) -> int:
        """Bytes a pool with these options occupies (a multiple of 64)."""
        return _geometry(count, block_size, max_processes, "Cannot size mempool")[3]

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, count: int, block_size: int,
             max_processes: int = DEFAULT_MAX_PROCESSES) -> "Mempool":
        """Formats a pool (every block free) at ``byte_offset`` of ``seg`` and attaches to it."""
        what = f"Cannot create mempool in {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        stride, states, data, length = _geometry(count, block_size, max_processes, what)
        if isinstance(byte_offset, bool) or not isinstance(byte_offset, int) or byte_offset < 0 or byte_offset % 64:
            raise ShmError("EINVAL", f"{what}: byteOffset {byte_offset} must be a non-negative multiple of 64 (EINVAL)")
        if byte_offset + length > seg.size:
            raise ShmError("EINVAL", f"{what}: {length} bytes at {byte_offset} do not fit in {seg.size} (EINVAL)")
        if seg.read_only:
            raise ShmError("EINVAL", f"{what}: the segment is read-only (EINVAL)")
        b = seg.buf
        b[byte_offset:byte_offset + data] = bytes(data)  # header, counters, slots, states: all FREE
        layout.write_header(seg, byte_offset, "mempool", HEADER_SIZE, length)
        struct.pack_into("<IIIIQQQ", b, byte_offset + 64, count, block_size, stride, max_processes, HEADER_SIZE,
                         states, data)
        layout.publish_ready(seg, byte_offset)
        return cls._new(seg, byte_offset, False, f'mempool "{seg.name}"')

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "Mempool":
        """Attaches to the pool at ``byte_offset`` of ``seg``, validating its header."""
        what = f"Cannot open {'mempool in anonymous shared memory' if seg.name is None else repr(seg.name)}"
        h = layout.read_header(seg, byte_offset, "mempool", what, min_bytes=HEADER_SIZE)
        if h.header_size != HEADER_SIZE:
            raise ShmError("EBADHDR", f"{what}: header size {h.header_size}, expected {HEADER_SIZE} (EBADHDR)")
        return cls._new(seg, byte_offset, False, what)

    @classmethod
    def create(cls, name: str | None, count: int, block_size: int, max_processes: int = DEFAULT_MAX_PROCESSES, *,
               file_mode: int = 0o600) -> "Mempool":
        """Creates a named segment holding a new pool (exclusive: EEXIST if the name is taken)."""
        length = _geometry(count, block_size, max_processes, f"Cannot create mempool {name!r}")[3]
        seg = SharedMemory.create(name, length, mode=file_mode)
        try:
            p = cls.init(seg, 0, count, block_size, max_processes)
        except BaseException:
            seg.unlink()
            seg.close()
            raise
        p._owns = True
        return p

    @classmethod
    def open(cls, name: str) -> "Mempool":
        seg = SharedMemory.open(name)
        return owning(seg, lambda: cls.at(seg, 0), False)

    @classmethod
    def attach(cls, handle: dict) -> "Mempool":
        """Reopens a pool from its handle (``json.loads`` of a TypeScript ``pool.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.mempool")
        return owning(seg, lambda: cls.at(seg, off), False)

    # ---- errors ---------------------------------------------------------------------------------

    def _closed_error(self, doing: str) -> ShmError:
        return ShmError("ECLOSED", f"Cannot {doing} {self._what}: it is closed (ECLOSED)")

    def _err(self, r: int, doing: str) -> ShmError:
        what = f"Cannot {doing} {self._what}"
        if r == EBADHDR_NEG:
            return ShmError("EBADHDR", f"{what}: a state word is corrupt (EBADHDR)")
        if r == -errno_value("EBUSY"):
            return ShmError("EBUSY", f"{what}: all {self.max_processes} participant slots are held by live processes "
                            "(EBUSY)", errno=-r)
        if r == -errno_value("EBADF"):
            return self._closed_error(doing)
        return os_error(r, "mempool", what)

    # ---- get and put ----------------------------------------------------------------------------

    def _block(self, i: int) -> Block:
        b = self._blocks.get(i)
        if b is None:
            b = Block(i, self._seg.view(self._data + i * self._stride, self.block_size))
            self._blocks[i] = b
        return b

    def try_get(self) -> Block | None:
        """A free block, or None when none is free; never blocks."""
        if self._closed:
            raise self._closed_error("get a block from")
        r = self._get()
        if r >= 0:
            b = self._blocks.get(r)
            return b if b is not None else self._block(r)
        if r == -errno_value("EAGAIN"):
            return None
        raise self._err(r, "get a block from")

    def try_get_index(self) -> int | None:
        """As ``try_get``, but only the block's index (no Block object)."""
        if self._closed:
            raise self._closed_error("get a block from")
        r = self._get()
        if r >= 0:
            return r
        if r == -errno_value("EAGAIN"):
            return None
        raise self._err(r, "get a block from")

    def _park(self, ms: float) -> int:
        r = lib().shmkit_mempool_park(self._addr, ms)
        if r < 0 and r != -errno_value("ETIMEDOUT") and r != -errno_value("EINTR"):
            if self._closed:
                raise self._closed_error("get a block from")
            raise self._err(r, "get a block from")
        return r

    def get(self, timeout: float | None = None) -> Block:
        """A block, waiting for one to be put (or reclaimed from a dead process). ``timeout`` in
        seconds (None: for good); ShmError ETIMEDOUT. Ctrl-C interrupts (KeyboardInterrupt)."""
        what = f"Cannot get a block from {self._what}"
        ms = timeout_ms(timeout, what)
        b = self.try_get()
        if b is not None:
            return b
        return wait_until(self.try_get, self._park, what, ms, _SPIN_MS, _PARK_SLICE_MS)

    async def get_async(self, timeout: float | None = None) -> Block:
        """A block, waiting without blocking the event loop (the sleep runs in a worker thread)."""
        what = f"Cannot get a block from {self._what}"
        return await wait_until_async(self.try_get, self._park,
                                      lambda: self._closed_error("get a block from") if self._closed else None, what,
                                      timeout_ms(timeout, what), _PARK_SLICE_MS)

    def put(self, block: Block | int) -> None:
        """Returns a block (a Block, or an index got by any process). EINVAL for an index out of
        range or a block already free; EBADHDR for a corrupt state word."""
        if self._closed:
            raise self._closed_error("put a block into")
        if type(block) is int:
            i = block
        elif isinstance(block, Block):
            i = block.index
            if self._blocks.get(i) is not block:
                raise ShmError("EINVAL", f"Cannot put a block into {self._what}: the block does not belong to this "
                               "mempool (EINVAL)")
        else:
            raise TypeError(f"Cannot put a block into {self._what}: expected a Block or an int index")
        if not 0 <= i < self.count:
            raise ShmError("EINVAL", f"Cannot put a block of {self._what}: index {i} is not an integer in "
                           f"0..{self.count - 1} (EINVAL)")
        r = self._put(i)
        if r < 0:
            if r == -errno_value("EINVAL"):
                raise ShmError("EINVAL", f"Cannot put block {i} into {self._what}: it is already free (EINVAL)")
            raise self._err(r, "put a block into")

    def block(self, index: int) -> Block:
        """The block at ``index`` (e.g. received from another process), zero-copy."""
        if self._closed:
            raise self._closed_error("view a block of")
        if type(index) is not int or not 0 <= index < self.count:
            raise ShmError("EINVAL", f"Cannot view a block of {self._what}: index {index!r} is not an integer in "
                           f"0..{self.count - 1} (EINVAL)")
        return self._block(index)

    def reclaim(self) -> int:
        """Returns the blocks of dead processes; how many were freed."""
        if self._closed:
            raise self._closed_error("reclaim blocks of")
        r = lib().shmkit_mempool_reclaim(self._addr)
        if r < 0:
            raise self._err(r, "reclaim blocks of")
        return r

    @property
    def available(self) -> int:
        """Free blocks now (a snapshot)."""
        if self._closed:
            raise self._closed_error("read")
        r = lib().shmkit_mempool_available(self._addr)
        if r < 0:
            raise self._err(r, "read")
        return r

    def close(self) -> None:
        """Frees this process's participant slot when it holds no block, unmaps if it owns the
        segment. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._seg.closed:
            lib().shmkit_mempool_release(self._addr)
        self._blocks = {}
        if self._owns:
            self._seg.close()

    def __repr__(self) -> str:
        return f"<shmkit.Mempool {self._what} count={self.count} block_size={self.block_size}>"
