"""SharedHeap: variable-size allocations, named roots and a crash-safe journal in one shared segment
(docs/layout/heap.md), the same object as the TypeScript ``SharedHeap`` (src/heap.ts). Python,
Deno, Bun and Node processes allocate and free in one heap at the same time and pass allocations
to each other as plain offsets. alloc, free and the named-root operations are one call each into
csrc/ops_heap.c (a second implementation of the layout's TLSF allocator and undo journal); the heap
lock is the Mutex in the header, taken through csrc/ops_sync.c when it is contended.

    heap = shmkit.SharedHeap.create("scratch", size=1 << 20)
    off = heap.alloc(100)               # an offset in the segment: send it to any process
    heap.bytes(off, 5)[:] = b"hello"
    heap.set("greeting", off)           # another process: heap.get("greeting")
    heap.free(off)
"""

from __future__ import annotations

import ctypes
import inspect
import json
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import _accel, layout
from ._lib import errno_value, fast, lib, os_error
from ._ops import HeapLocal, check_sizes
from ._placed import Placed, attach_handle, owning
from .errors import ShmError
from .locks import Mutex
from .ops_codes import EBADHDR_NEG
from .shared_memory import SharedMemory

__all__ = ["SharedHeap", "HeapStats", "HeapName"]

KIND = 9
MUTEX_OFFSET = 832
JOURNAL_CAPACITY = 256
JOURNAL_BYTES = 12
NAME_BYTES = 64
NAME_MAX = 48
BLOCK_HEADER = 16
MIN_BLOCK = 32
MAX_ARENA = 2**31 - 64
DEFAULT_NAMES = 64
DEFAULT_SLOTS = 64
FAULT_POINTS = (
    "heap.alloc.after_remove", "heap.alloc.before_commit", "heap.alloc.after_commit", "heap.alloc.after_unlock",
    "heap.free.after_unlink", "heap.free.before_commit", "heap.free.after_commit", "heap.name.before_commit",
    "heap.recover.mid_rollback",
)

# csrc/ops_heap.c flags and name ops
_HELD, _RECOVERED, _KEEP, _INSIDE = 1, 2, 4, 8
_GET, _SET, _DELETE, _DESTROY, _FIND_OR_ALLOC, _PUT = 0, 1, 2, 3, 4, 5
_USED, _PREV_USED = 1, 2

# EBADHDR reasons of csrc/ops_heap.c (why, a, b, c) -> src/heap.ts's messages.
_WHY: dict[int, Callable[[int, int, int], str]] = {
    1: lambda a, b, c: "its header no longer matches the arena, name count and slot count it was attached with",
    2: lambda a, b, c: f"block at {a} has impossible size {b}",
    3: lambda a, b, c: f"free-list link {a} is outside the arena",
    4: lambda a, b, c: f"the allocation bitmap marks {a}, a free block",
    5: lambda a, b, c: f"free block {a} is not linked from {f'the head of list {c}' if b == 0 else b}",
    6: lambda a, b, c: f"free list broken at {a} <- {b}",
    7: lambda a, b, c: f"first-level bitmap names level {a}, whose lists are empty",
    8: lambda a, b, c: f"bitmap names list {a}.{b}, which is empty",
    9: lambda a, b, c: f"block {a} on a free list is marked used",
    10: lambda a, b, c: f"block {a} of size {b} is on a list for {c}+ bytes",
    11: lambda a, b, c: f"block {a} says its used predecessor {b} is free",
    12: lambda a, b, c: f"block {a} has an impossible previous size {b}",
    13: lambda a, b, c: f"block {a} names a free predecessor at {b} that is not one",
    14: lambda a, b, c: "an operation outgrew the journal",
    15: lambda a, b, c: f"the heap lock named slot {a} while this process (slot {b}) held it",
    16: lambda a, b, c: f"journal entry {a} names word {b}, outside the heap's mutable fields",
    17: lambda a, b, c: f"name entry {a} points to {b}",
    18: lambda a, b, c: "the block walk does not end",
    19: lambda a, b, c: f"name entry {a} has length {b}",
    20: lambda a, b, c: f"word {a} is outside the heap",
}


_ATOMIC_INTS = {ctypes.c_int32: True, ctypes.c_uint32: False, ctypes.c_int64: True, ctypes.c_uint64: False}


def _q(name: object) -> str:
    """A name as src/heap.ts quotes it (JSON.stringify)."""
    try:
        return json.dumps(name, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(name)


def _is_ctypes(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, (ctypes.Structure, ctypes.Union, ctypes.Array))


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class _Geometry:
    arena_size: int
    name_count: int
    slots: int
    mutex_offset: int
    journal_offset: int
    names_offset: int
    bitmap_offset: int
    bitmap_words: int
    arena_offset: int
    byte_length: int


def _geometry(arena_size: int, names: int, slots: int) -> _Geometry:
    """src/heap.ts heapGeometry."""
    journal = _align_up(MUTEX_OFFSET + Mutex.byte_length(slots), 64)
    names_off = _align_up(journal + JOURNAL_CAPACITY * JOURNAL_BYTES, 64)
    bitmap = _align_up(names_off + names * NAME_BYTES, 64)
    words = -(-arena_size // (BLOCK_HEADER * 32))
    arena = _align_up(bitmap + 4 * words, 64)
    return _Geometry(arena_size, names, slots, MUTEX_OFFSET, journal, names_off, bitmap, words, arena,
                     arena + arena_size)


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_options(size: object, names: object, slots: object, what: str) -> _Geometry:
    if not _int(size) or not 64 <= size <= MAX_ARENA:  # type: ignore[operator]
        raise ValueError(f"{what}: size must be an integer in 64..{MAX_ARENA}, got {size!r}")
    if not _int(names) or not 1 <= names <= 65536:  # type: ignore[operator]
        raise ValueError(f"{what}: names must be an integer in 1..65536, got {names!r}")
    if not _int(slots) or not 1 <= slots <= 0xFFFF:  # type: ignore[operator]
        raise ValueError(f"{what}: slots must be an integer in 1..65535, got {slots!r}")
    return _geometry(_align_up(size, 64), names, slots)  # type: ignore[arg-type]


@dataclass
class HeapStats:
    """What ``SharedHeap.stats()`` reports (src/heap.ts HeapStats)."""

    size: int  #: arena bytes
    used: int  #: bytes in live allocations, block headers included
    free: int  #: bytes in free blocks (headers included)
    largest_free: int  #: the largest free block (an allocation of up to largest_free - 16 bytes fits)
    allocations: int  #: live allocations
    free_blocks: int  #: free blocks
    fragmentation: float  #: 1 - largest_free / free (0 when nothing is free)
    recoveries: int  #: times the heap lock was taken over from a dead holder
    rolled_back: int  #: operations a dead holder left half done, undone
    leaked_in_flight: int  #: allocations committed for a holder that died before alloc() returned
    last_leaked: int | None  #: the offset of the last of them
    names: int  #: named roots in use
    name_capacity: int  #: named-root entries


@dataclass
class HeapName:
    """A named root, as ``SharedHeap.names()`` lists it."""

    name: str
    offset: int  #: the allocation's offset in the segment
    length: int  #: usable bytes of its block
    kind: str | None = None  #: the shmkit kind of an object placed there, None for raw memory


class SharedHeap(Placed):
    """A heap in shared memory: variable-size allocations addressed by offset, and named roots.

    Any number of processes (Python, Deno, Bun, Node) allocate, free and name at the same time;
    each operation holds the heap lock for a few dozen stores. A process killed at any instruction
    never corrupts or wedges the heap: the next operation (in any process, any language) rolls
    back its half-done change within one liveness slice (200 ms). An allocation's offset is its
    byte offset in the segment: ``heap.bytes(off, n)`` here, ``heap.bytes(off, n)`` in TypeScript.
    Threads of one process may share one SharedHeap object.
    """

    _kind = "heap"

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use SharedHeap.create(), open(), attach(), at() or init()")

    # ---- construction ---------------------------------------------------------------------------

    @staticmethod
    def byte_length(size: int, names: int = DEFAULT_NAMES, slots: int = DEFAULT_SLOTS) -> int:
        """Bytes a heap with an arena of ``size`` bytes (rounded up to 64), ``names`` named-root
        entries and ``slots`` lock slots occupies (header, lock, journal, names, bitmap, arena)."""
        return _check_options(size, names, slots, "Cannot size heap").byte_length

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, size: int, names: int = DEFAULT_NAMES,
             slots: int = DEFAULT_SLOTS) -> "SharedHeap":
        """Formats an empty heap at ``byte_offset`` of ``seg`` and attaches it (the segment stays
        the caller's)."""
        what = "Cannot init heap"
        g = _check_options(size, names, slots, what)
        if not _int(byte_offset) or byte_offset < 0 or byte_offset % 64:
            raise ShmError("EINVAL", f"{what}: byteOffset {byte_offset} must be a non-negative multiple of 64 (EINVAL)",
                           errno=errno_value("EINVAL"))
        if byte_offset + g.byte_length > seg.size:
            raise ValueError(f"{what}: {g.byte_length} bytes at {byte_offset} do not fit in the {seg.size}-byte "
                             "segment")
        if seg.read_only:
            raise ShmError("EINVAL", f"{what}: the segment is read-only (EINVAL)")
        b, o = seg.buf, byte_offset
        layout.write_header(seg, o, "heap", g.arena_offset, g.byte_length)
        b[o + 64:o + g.arena_offset] = bytes(g.arena_offset - 64)
        struct.pack_into("<9I", b, o + 64, g.arena_offset, g.arena_size, g.name_count, JOURNAL_CAPACITY,
                         g.mutex_offset, g.journal_offset, g.names_offset, g.bitmap_offset, g.slots)
        Mutex.init(seg, o + g.mutex_offset, g.slots).close()
        # One free block spanning the arena.
        a = o + g.arena_offset
        struct.pack_into("<4I", b, a, g.arena_size | _PREV_USED, 0, 0, 0)
        fl = g.arena_size.bit_length() - 1
        sl = (g.arena_size >> (fl - 2)) & 3
        struct.pack_into("<I", b, o + 320 + 4 * (fl * 4 + sl), g.arena_offset)
        struct.pack_into("<I", b, o + 192 + 4 * fl, 1 << sl)
        struct.pack_into("<I", b, o + 128, 1 << fl)
        layout.publish_ready(seg, o)  # release: everything above is visible before "ready"
        return cls._new(seg, o, False, what)

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "SharedHeap":
        """src/heap.ts #at: validates every header field before using any."""

        def bad(why: str) -> ShmError:
            return ShmError("EBADHDR", f"{what}: {why} (EBADHDR)")

        if not _int(off) or off < 0 or off % 64:
            raise ShmError("EINVAL", f"{what}: byteOffset {off} must be a non-negative multiple of 64 (EINVAL)")
        if off + 1024 > seg.size:
            raise bad("the segment is too small")
        h = layout.read_header(seg, off, "heap", what, min_bytes=1024)
        (arena_off, arena_size, name_count, jcap, mutex_off, journal_off, names_off, bitmap_off,
         slots) = struct.unpack_from("<9I", seg.buf, off + 64)
        if arena_size < 64 or arena_size > MAX_ARENA or arena_size % 64:
            raise bad(f"impossible arena size {arena_size}")
        if name_count < 1 or name_count > 65536:
            raise bad(f"impossible name count {name_count}")
        if slots < 1 or slots > 0xFFFF:
            raise bad(f"impossible slot count {slots}")
        g = _geometry(arena_size, name_count, slots)
        for k, got, v in (("arenaOffset", arena_off, g.arena_offset), ("journalCapacity", jcap, JOURNAL_CAPACITY),
                          ("mutexOffset", mutex_off, g.mutex_offset), ("journalOffset", journal_off, g.journal_offset),
                          ("namesOffset", names_off, g.names_offset), ("bitmapOffset", bitmap_off, g.bitmap_offset)):
            if got != v:
                raise bad(f"{k} is {got}, expected {v} for this arena, name count and slot count")
        if h.byte_length != g.byte_length or h.header_size != g.arena_offset:
            raise bad(f"byte length {h.byte_length} / header size {h.header_size} do not match the layout")
        if off + g.byte_length > seg.size:
            raise bad(f"it needs {g.byte_length} bytes, the segment has {seg.size - off}")
        mutex = Mutex.at(seg, off + g.mutex_offset)
        if mutex.slots != slots:
            mutex.close()
            raise bad(f"the heap lock has {mutex.slots} slots, the header says {slots}")
        check_sizes()
        loc = HeapLocal()
        loc.offset, loc.map_id = float(off), seg.map_id
        loc.arena_size, loc.name_count, loc.slots = arena_size, name_count, slots
        r = lib().shmkit_heap_bind(ctypes.byref(loc))
        if r < 0:
            mutex.close()
            raise bad("its header changed while it was read") if r == EBADHDR_NEG else os_error(r, "heap_bind", what)
        seg._exported = True
        self = object.__new__(cls)
        self._seg, self._off, self._owns, self._closed = seg, off, owns, False
        self._g = g
        self._mutex = mutex
        self._local = loc
        self._ref = ctypes.byref(loc)
        self._tlock = threading.RLock()
        self.lock_timeout: float | None = None
        if seg.name is None:
            self._what = f"heap at {off} of anonymous memory"
        else:
            self._what = f'heap "{seg.name}"' if off == 0 else f'heap at {off} of "{seg.name}"'
        F = fast()
        self._c_name = F.shmkit_heap_name
        self._c_size_of, self._c_begin, self._c_end = F.shmkit_heap_size_of, F.shmkit_heap_begin, F.shmkit_heap_end
        self._c_stats = F.shmkit_heap_stats
        self._alloc0 = _accel.bound("shmkit_heap_alloc", _accel.HEAP_ALLOC, loc)  # flags 0: the fast path
        self._free0 = _accel.bound("shmkit_heap_free", _accel.HEAP_FREE, loc)
        self._EAGAIN = -errno_value("EAGAIN")
        self._size = g.arena_size
        self._arena_lo = off + g.arena_offset
        self._arena_hi = off + g.byte_length
        return self

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "SharedHeap":
        """Attaches the heap at ``byte_offset`` of ``seg``, validating its header (the segment stays
        the caller's)."""
        return cls._new(seg, byte_offset, False, f"Cannot attach heap at {byte_offset}")

    @classmethod
    def create(cls, name: str | None, size: int, names: int = DEFAULT_NAMES, slots: int = DEFAULT_SLOTS, *,
               file_mode: int = 0o600) -> "SharedHeap":
        """Creates a segment ``name`` (None: anonymous memory) holding an empty heap with an arena of
        ``size`` bytes (exclusive: EEXIST when the name is taken)."""
        g = _check_options(size, names, slots, f"Cannot create heap {_q(name)}")
        seg = SharedMemory.create(name, g.byte_length, mode=file_mode)

        def make() -> "SharedHeap":
            cls.init(seg, 0, size, names, slots).close()
            return cls._new(seg, 0, False, f'Cannot create heap "{seg.name}"')

        return owning(seg, make, True)

    @classmethod
    def open(cls, name: str) -> "SharedHeap":
        """Opens the heap of segment ``name`` (made by ``create`` here or in TypeScript)."""
        seg = SharedMemory.open(name)
        return owning(seg, lambda: cls._new(seg, 0, False, f'Cannot open heap "{seg.name}"'), False)

    @classmethod
    def attach(cls, handle: dict) -> "SharedHeap":
        """Reopens a heap from its handle (``json.loads`` of a TypeScript ``heap.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.heap")
        what = f"Cannot attach heap at {off} of {seg.name or 'anonymous memory'}"
        return owning(seg, lambda: cls._new(seg, off, False, what), False)

    # ---- properties ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Arena bytes."""
        return self._g.arena_size

    @property
    def name_capacity(self) -> int:
        """Named-root entries."""
        return self._g.name_count

    # ---- errors and the lock ---------------------------------------------------------------------

    def _closed_error(self, doing: str) -> ShmError:
        return ShmError("ECLOSED", f"Cannot {doing} {self._what}: it is closed (ECLOSED)")

    def _error(self, r: int, doing: str) -> ShmError:
        if r == EBADHDR_NEG:
            L = self._local
            why = _WHY.get(L.why)
            text = why(L.a, L.b, L.c) if why else f"a shared word is corrupt (reason {L.why})"
            return ShmError("EBADHDR", f"Corrupt {self._what}: {text} (EBADHDR)")
        if self._seg.closed or r == -errno_value("EBADF"):
            return self._closed_error(doing)
        return os_error(r, "heap", f"Cannot {doing} {self._what}")

    def _slow(self, call: Callable[[int], int], doing: str) -> int:
        """The heap lock is taken (or this object has no slot yet): take it through the Mutex (futex
        sleeps, dead-holder recovery within 200 ms), then run the operation with it held. The
        Mutex object serves one thread at a time: the threads of this process queue on _tlock."""
        if self._closed or self._seg.closed:
            raise self._closed_error(doing)
        what = f"Cannot {doing} {self._what}"
        t = self.lock_timeout
        deadline = None if t is None else time.monotonic() + t
        EAGAIN = -errno_value("EAGAIN")
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ShmError("ETIMEDOUT", f"{what}: the heap lock was not free within {t * 1000:g} ms (ETIMEDOUT)")
            got = self._tlock.acquire(timeout=-1 if left is None else left)
            if not got:
                continue
            try:
                if self._local.holding:  # _tlock is re-entrant: this thread's find_or_alloc init is running
                    raise ShmError("EBUSY", f"{what}: this thread holds the heap lock (an init callback of "
                                   "find_or_alloc / create_object is running); it would never be released (EBUSY)")
                # The fast path once more: another thread of ours may have just released it.
                r = call(0)
                if r != EAGAIN:
                    return r
                try:
                    g = self._mutex.lock(timeout=1.0 if left is None else min(left, 1.0))
                except ShmError as e:
                    if e.code in ("ETIMEDOUT", "EBUSY"):
                        # EBUSY: another SharedHeap object of this process holds it: wait for it.
                        if e.code == "EBUSY":
                            time.sleep(0.0005)
                        continue
                    raise
                try:
                    self._local.slot = self._mutex._slot
                    r = call(_HELD | (_RECOVERED if g.recovered else 0))
                finally:
                    self._after_held()
                if r != EAGAIN:
                    return r
            finally:
                self._tlock.release()

    def _after_held(self) -> None:
        """After a C call made with the Mutex's lock: C unlocked it (unless an operation stays open);
        tell the Mutex object. A lock still ours without an open operation (an interrupt) is released."""
        m = self._mutex
        if self._local.holding:
            return
        if m._held and not self._seg.closed:
            if layout.load32(self._seg, self._off + MUTEX_OFFSET + 64) & 0xFFFF == m._slot:
                lib().shmkit_mutex_unlock(m._id, m._foff, m._n, m._slot)
        m._held = False

    # ---- allocation ------------------------------------------------------------------------------

    def alloc(self, byte_length: int, align: int = 16) -> int:
        """Allocates ``byte_length`` bytes (contents undefined: a freed block keeps old bytes) with
        the offset a multiple of ``align`` (a power of two, 16..65536). Returns the allocation's byte
        offset in the segment, which any process uses. ShmError ENOMEM when no free block fits,
        ECLOSED, ETIMEDOUT (``lock_timeout``), EBADHDR; ValueError for a bad length or alignment."""
        if type(byte_length) is not int or type(align) is not int or not 0 < byte_length <= self._size \
                or not 0 < align <= 65536 or align & (align - 1):
            byte_length, align = self._alloc_args(byte_length, align)
        if self._closed:
            raise self._closed_error("allocate in")
        r = self._alloc0(byte_length, align, 0)
        return r if r > 0 else self._alloc_failed(r, byte_length, align)

    def _alloc_args(self, byte_length: Any, align: Any) -> tuple[int, int]:
        n = self._g.arena_size
        if not _int(byte_length) or not 1 <= byte_length <= n:
            raise ValueError(f"Cannot allocate in {self._what}: byteLength must be an integer in 1..{n}, "
                             f"got {byte_length!r}")
        if not _int(align) or not 1 <= align <= 65536 or align & (align - 1):
            raise ValueError(f"Cannot allocate in {self._what}: align must be a power of two up to 65536, "
                             f"got {align!r}")
        return int(byte_length), int(align)  # int subclasses

    def _alloc_failed(self, r: int, byte_length: int, align: int) -> int:
        if r == self._EAGAIN:
            r = self._slow(lambda f: self._alloc0(byte_length, align, f), "allocate in")
            if r > 0:
                return r
        if r == -errno_value("ENOMEM"):
            raise ShmError("ENOMEM", f"Cannot allocate {byte_length} bytes in {self._what}: no free block fits "
                           f"(largest free {self._local.a} bytes) (ENOMEM)", errno=-r)
        raise self._error(r, "allocate in")

    def free(self, offset: int) -> None:
        """Frees an allocation (made in this or another process). ShmError EINVAL for an offset that
        is not a live allocation (foreign, interior, already freed), which changes nothing; ECLOSED,
        ETIMEDOUT, EBADHDR."""
        if self._closed:
            raise self._closed_error("free in")
        o = offset if type(offset) is int and 0 <= offset < 9007199254740992 else \
            int(offset) if _int(offset) and 0 <= offset < 9007199254740992 else -1
        r = self._free0(o, 0)
        if r < 0:
            if r == self._EAGAIN:
                r = self._slow(lambda f: self._free0(o, f), "free in")
            if r < 0:
                if r == -errno_value("EINVAL"):
                    raise ShmError("EINVAL", f"Cannot free {offset} in {self._what}: it is not a live allocation "
                                   "(foreign, interior or already freed) (EINVAL)", errno=-r)
                raise self._error(r, "free in")

    def size_of(self, offset: int) -> int:
        """The usable size of a live allocation (at least what was asked). ShmError EINVAL when
        ``offset`` is not a live allocation."""
        if self._closed:
            raise self._closed_error("inspect")
        o = float(offset) if _int(offset) else -1.0
        r = self._op(lambda f: self._c_size_of(self._ref, o, f), "inspect")
        if r == -errno_value("EINVAL"):
            raise ShmError("EINVAL", f"Cannot size {offset} in {self._what}: it is not a live allocation (EINVAL)",
                           errno=-r)
        if r < 0:
            raise self._error(r, "inspect")
        return r

    def _op(self, call: Callable[[int], int], doing: str) -> int:
        if self._closed:
            raise self._closed_error(doing)
        r = call(0)
        if r == -errno_value("EAGAIN"):
            r = self._slow(call, doing)
        return r

    def _check_range(self, offset: object, length: object) -> None:
        if self._closed or self._seg.closed:
            raise self._closed_error("view")
        lo, hi = self._arena_lo, self._arena_hi
        if not _int(offset) or not _int(length) or length < 0 or offset < lo or offset + length > hi:  # type: ignore
            raise ValueError(f"Cannot view {length} bytes at {offset} of {self._what}: outside the arena [{lo}, {hi})")

    def bytes(self, offset: int, length: int) -> memoryview:
        """A zero-copy writable memoryview of ``length`` bytes at ``offset`` (an allocation, or part
        of one); ValueError when the range is not inside the arena."""
        self._check_range(offset, length)
        return self._seg.view(offset, length)

    def array(self, offset: int, length: int, dtype: Any = "uint8") -> Any:
        """A zero-copy numpy array of ``length`` elements of ``dtype`` at ``offset`` (needs numpy)."""
        import numpy as np

        dt = np.dtype(dtype)
        self._check_range(offset, length * dt.itemsize)
        if offset % dt.alignment:
            raise ValueError(f"Cannot view {dt} at {offset} of {self._what}: the offset is not aligned for it")
        return np.frombuffer(self._seg.view(offset, length * dt.itemsize), dtype=dt)

    # ---- named roots ----------------------------------------------------------------------------

    def _name_bytes(self, name: object) -> bytes:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Cannot use name {_q(name)} in {self._what}: it must be a non-empty string")
        nb = name.encode()
        if len(nb) > NAME_MAX:
            raise ValueError(f"Cannot use name {_q(name)} in {self._what}: longer than {NAME_MAX} UTF-8 bytes")
        return nb

    def _name_op(self, op: int, name: str, arg: float, doing: str, align: int = 16, flags: int = 0) -> int:
        nb = self._name_bytes(name)
        n = len(nb)
        return self._op(lambda f: self._c_name(self._ref, op, nb, n, arg, align, 0, f | flags), doing)

    def _name_error(self, r: int, name: str, doing: str) -> ShmError:
        if r == -errno_value("ENOSPC"):
            return ShmError("ENOSPC", f"Cannot name {_q(name)} in {self._what}: all {self._g.name_count} name entries "
                            "are used (ENOSPC)", errno=-r)
        return self._error(r, doing)

    def set(self, name: str, offset: int) -> None:
        """Names a live allocation so other processes find it with ``get``; replaces an existing
        name. ShmError EINVAL when ``offset`` is not a live allocation, ENOSPC when the table is
        full; ValueError for a bad name."""
        o = float(offset) if _int(offset) else -1.0
        r = self._name_op(_SET, name, o, "name in")
        if r == -errno_value("EINVAL"):
            raise ShmError("EINVAL", f"Cannot name {offset} in {self._what}: it is not a live allocation (EINVAL)",
                           errno=-r)
        if r < 0:
            raise self._name_error(r, name, "name in")

    def get(self, name: str) -> int | None:
        """The offset stored under ``name``, or None."""
        r = self._name_op(_GET, name, 0.0, "look up in")
        if r < 0:
            raise self._error(r, "look up in")
        return r or None

    def delete(self, name: str) -> bool:
        """Removes a name (the allocation stays; see ``destroy``). True if it existed."""
        r = self._name_op(_DELETE, name, 0.0, "unname in")
        if r < 0:
            raise self._error(r, "unname in")
        return r == 1

    def destroy(self, name: str) -> bool:
        """Removes a name and frees its allocation in one step (atomic across processes). True if it
        existed."""
        r = self._name_op(_DESTROY, name, 0.0, "destroy in")
        if r < 0:
            raise self._error(r, "destroy in")
        return r == 1

    def find_or_alloc(self, name: str, byte_length: int, align: int = 16,
                      init: Callable[[memoryview], None] | None = None) -> int:
        """The allocation named ``name``; if there is none, allocates ``byte_length`` zeroed bytes,
        runs ``init(bytes)`` on them and names them, all under the heap lock: exactly one process
        creates it whatever the races, and a creator killed (or raising) halfway leaves nothing
        behind. ShmError ENOMEM, ENOSPC."""
        nb = self._name_bytes(name)
        n = self._g.arena_size
        if not _int(byte_length) or not 1 <= byte_length <= n:
            raise ValueError(f"Cannot allocate {_q(name)} in {self._what}: byteLength {byte_length!r} is out of range")
        if not _int(align) or not 1 <= align <= 65536 or align & (align - 1):
            raise ValueError(f"Cannot allocate {_q(name)} in {self._what}: bad align {align!r}")
        if init is None:
            r = self._name_op(_FIND_OR_ALLOC, name, float(byte_length), "create in", align)
            if r < 0:
                raise self._create_error(r, name, byte_length)
            return r
        return self._find_or_place(nb, name, byte_length, align, lambda off: init(self._seg.view(off, byte_length)),
                                   False)[0]

    def _find_or_place(self, nb: bytes, name: str, byte_length: int, align: int, init: Callable[[int], None],
                       objects: bool) -> tuple[int, bool]:
        """find_or_alloc with init / the object placements: look up, else allocate (zeroed), run
        ``init(offset)`` and name the block (with the kind of the object placed there), all as one
        heap operation under the lock: (offset, created)."""
        with self._tlock:  # the operation stays open across init(): no other thread of ours may start one
            r = self._name_op(_FIND_OR_ALLOC, name, float(byte_length), "create in", align, _KEEP)
            if r < 0:
                raise self._create_error(r, name, byte_length)
            if not self._local.holding:
                return r, False  # it existed
            try:
                try:
                    init(r)  # the object's own bytes are not journaled: a rollback frees the block
                    kind = 0
                    if objects:
                        h = layout.peek_header(self._seg, r)
                        kind = layout.KIND[h.kind] if h is not None else 0
                    p = self._c_name(self._ref, _PUT, nb, len(nb), float(r), 16, kind, _INSIDE)
                    if p < 0:
                        raise self._create_error(p, name, byte_length)
                    e = self._c_end(self._ref, 0)
                    if e < 0:
                        raise self._error(e, "create in")
                except BaseException:
                    if self._local.holding:
                        self._c_end(self._ref, 1)  # undo: the block is free again, the name unset
                    raise
            finally:
                self._after_held()
            return r, True

    # ---- objects placed by name -------------------------------------------------------------------

    def _placement(self, cls: Any, name: str, options: dict) -> tuple[int, bool]:
        if _is_ctypes(cls):
            if options:
                raise TypeError(f"Cannot place {cls.__name__} in {self._what}: a ctypes type takes no options")
            # A struct has no header (kind 0), its zeroed bytes are its initial value (src/struct.ts).
            n = max(1, ctypes.sizeof(cls))
            return self._find_or_place(self._name_bytes(name), name, n, ctypes.alignment(cls), lambda off: None,
                                       False)
        sizer = getattr(cls, "byte_length_of", None) or getattr(cls, "byte_length", None)
        if sizer is None or not hasattr(cls, "init") or not hasattr(cls, "at"):
            raise TypeError(f"Cannot place {cls!r} in {self._what}: it has no byte_length / init / at")
        params = inspect.signature(sizer).parameters
        n = sizer(**{k: v for k, v in options.items() if k in params})
        nb = self._name_bytes(name)

        def place(off: int) -> None:
            obj = cls.init(self._seg, off, **options)
            close = getattr(obj, "close", None)
            if close is not None:
                close()

        return self._find_or_place(nb, name, n, getattr(cls, "align", 64), place, True)

    def create_object(self, cls: Any, name: str, **options: Any) -> Any:
        """Creates an object (Ring, Mempool, Mutex, Semaphore, Condition, MessageLog, SharedArray) in
        a new allocation and names it, in one step: TypeScript's ``heap.create(Ring, name, options)``
        (``options`` are the class's ``init`` keywords: ``capacity=64``, ``dtype="float64",
        shape=[4]``, ...). The object shares the heap's segment: close it before or with the heap.
        ShmError EEXIST when the name is taken, ENOMEM, ENOSPC."""
        off, created = self._placement(cls, name, options)
        if not created:
            raise ShmError("EEXIST", f"Cannot create {_q(name)} in {self._what}: the name is taken (EEXIST)",
                           errno=errno_value("EEXIST"))
        return self._object_at(cls, off)

    def _object_at(self, cls: Any, off: int) -> Any:
        if _is_ctypes(cls):
            n = ctypes.sizeof(cls)
            self._check_range(off, n)
            if off % ctypes.alignment(cls):
                raise ValueError(f"Cannot view {cls.__name__} at {off} of {self._what}: the offset is not aligned "
                                 f"to {ctypes.alignment(cls)}")
            return cls.from_buffer(self._seg.view(off, n))
        return cls.at(self._seg, off)

    def open_object(self, cls: Any, name: str) -> Any:
        """Attaches the object named ``name`` (made by ``create_object`` / ``find_or_create`` here or
        ``create`` / ``findOrCreate`` in TypeScript): TypeScript's ``heap.open(Ring, name)``.
        ShmError ENOENT when the name is unknown, EBADHDR when it holds another kind."""
        off = self.get(name)
        if off is None:
            raise ShmError("ENOENT", f"Cannot open {_q(name)} in {self._what}: no such name (ENOENT)",
                           errno=errno_value("ENOENT"))
        return self._object_at(cls, off)

    def find_or_create(self, cls: Any, name: str, **options: Any) -> Any:
        """The object named ``name``, created (and named) first if missing: atomic across processes
        and languages (TypeScript's ``findOrCreate``). ``options`` are used only when creating."""
        off, _ = self._placement(cls, name, options)
        return self._object_at(cls, off)

    def struct_at(self, cls: Any, offset: int) -> Any:
        """The ctypes structure ``cls`` over the bytes at ``offset`` (zero-copy, ``cls.from_buffer``):
        TypeScript's ``Struct.at(seg, offset)`` for a struct declared with the same fields."""
        if not _is_ctypes(cls):
            raise TypeError(f"struct_at needs a ctypes type, got {cls!r}")
        return self._object_at(cls, offset)

    # ---- atomics on integer fields of ctypes structs placed in the heap ---------------------------

    def _field(self, obj: Any, field: str) -> tuple[int, int, bool]:
        """(offset in the segment, size, signed) of a 4- or 8-byte integer field of ``obj``."""
        cls = type(obj)
        desc = getattr(cls, field, None)
        ftype = dict((f[0], f[1]) for f in getattr(cls, "_fields_", ())).get(field)
        if desc is None or ftype is None or not hasattr(desc, "offset"):
            raise AttributeError(f"{cls.__name__} has no field {field!r}")
        size = ctypes.sizeof(ftype)
        if ftype not in _ATOMIC_INTS:
            raise TypeError(f"Cannot operate atomically on {cls.__name__}.{field}: only 4- and 8-byte integer fields "
                            f"(c_int32, c_uint32, c_int64, c_uint64) have atomic operations here")
        off = ctypes.addressof(obj) + desc.offset - self._seg.address
        if off < self._arena_lo or off + size > self._arena_hi or off % size:
            raise ValueError(f"Cannot operate atomically on {cls.__name__}.{field}: it is not an aligned field of "
                             f"an object in {self._what}")
        return off, size, _ATOMIC_INTS[ftype]

    def _atomic(self, op: str, obj: Any, field: str, a: int = 0, b: int = 0) -> int:
        if self._closed or self._seg.closed:
            raise self._closed_error("operate atomically in")
        off, size, signed = self._field(obj, field)
        L, mid, o = lib(), self._seg.map_id, float(off)
        mask = (1 << (8 * size)) - 1
        if size == 4:
            if op == "add":
                r = L.shmkit_atomic_fetch_add_u32(mid, o, a & mask, 5)
            elif op == "load":
                r = L.shmkit_atomic_load_u32(mid, o, 5)
            elif op == "exchange":
                r = L.shmkit_atomic_exchange_u32(mid, o, a & mask, 5)
            else:
                r = L.shmkit_atomic_cas_u32(mid, o, a & mask, b & mask, 5)
            if r < 0:
                raise self._error(int(r), "operate atomically in")
            v = int(r)
        else:
            io = (ctypes.c_uint64 * 2)(a & mask, b & mask)
            f = {"add": L.shmkit_atomic_fetch_add_u64, "load": L.shmkit_atomic_load_u64,
                 "exchange": L.shmkit_atomic_exchange_u64, "cas": L.shmkit_atomic_cas_u64}[op]
            r = f(mid, o, 5, io)
            if r < 0:
                raise self._error(int(r), "operate atomically in")
            v = int(io[0])
        return v - (1 << (8 * size)) if signed and v >> (8 * size - 1) else v

    def atomic_add(self, obj: Any, field: str, delta: int) -> int:
        """Atomically adds ``delta`` (wrapping) to a 4- or 8-byte integer field of a ctypes struct
        placed in this heap (TypeScript's ``s.$add(field, delta)``); returns the previous value."""
        return self._atomic("add", obj, field, delta)

    def atomic_load(self, obj: Any, field: str) -> int:
        """A sequentially consistent read of the field (``s.$load(field)``)."""
        return self._atomic("load", obj, field)

    def atomic_exchange(self, obj: Any, field: str, value: int) -> int:
        """Stores ``value`` and returns the previous value (``s.$exchange(field, value)``)."""
        return self._atomic("exchange", obj, field, value)

    def atomic_compare_exchange(self, obj: Any, field: str, expected: int, desired: int) -> int:
        """Stores ``desired`` if the field holds ``expected``; returns the previous value
        (``s.$compareExchange``: it swapped when the result equals ``expected``)."""
        return self._atomic("cas", obj, field, expected, desired)

    def _create_error(self, r: int, name: str, byte_length: int) -> ShmError:
        if r == -errno_value("ENOMEM"):
            return ShmError("ENOMEM", f"Cannot allocate {byte_length} bytes for {_q(name)} in {self._what}: no free "
                            "block fits (ENOMEM)", errno=-r)
        return self._name_error(r, name, "create in")

    def _locked(self, fn: Callable[[memoryview], Any], doing: str) -> Any:
        """Runs ``fn(words)`` under the heap lock as one (empty) operation."""
        with self._tlock:
            r = self._op(lambda f: self._c_begin(self._ref, f), doing)
            if r < 0:
                if self._local.holding:  # never after an error; belt and braces
                    self._c_end(self._ref, 1)
                self._after_held()
                raise self._error(r, doing)
            try:
                try:
                    words = self._seg.view(self._off, self._g.byte_length).cast("I")
                    out = fn(words)
                finally:
                    r = self._c_end(self._ref, 0)
                if r < 0:
                    raise self._error(r, doing)
            finally:
                self._after_held()
            return out

    def names(self) -> list[HeapName]:
        """Every named root (name, offset, length, kind)."""
        g = self._g

        def read(w: memoryview) -> list[HeapName]:
            out = []
            nb = self._seg.view(self._off + g.names_offset, g.name_count * NAME_BYTES)
            base = g.names_offset >> 2
            for e in range(g.name_count):
                n = w[base + e * 16]
                if n == 0:
                    continue
                if n > NAME_MAX:
                    raise ShmError("EBADHDR", f"Corrupt {self._what}: name entry {e} has length {n} (EBADHDR)")
                p = w[base + e * 16 + 2]
                if p < g.arena_offset + BLOCK_HEADER or p >= g.byte_length:
                    raise ShmError("EBADHDR", f"Corrupt {self._what}: name entry {e} points to {p} (EBADHDR)")
                k = w[base + e * 16 + 1]
                s = bytes(nb[e * NAME_BYTES + 16:e * NAME_BYTES + 16 + n]).decode(errors="replace")
                out.append(HeapName(s, self._off + p, w[base + e * 16 + 3],
                                    None if k == 0 else layout.KIND_NAME.get(k, f"kind {k}")))
            return out

        return self._locked(read, "list")

    # ---- diagnostics ------------------------------------------------------------------------------

    def stats(self) -> HeapStats:
        """Sizes, counts and fragmentation from a walk of the whole arena under the lock. ShmError
        EBADHDR when the walk finds a corrupt block."""
        out = (ctypes.c_double * 10)()
        r = self._op(lambda f: self._c_stats(self._ref, out, f), "read stats of")
        if r < 0:
            raise self._error(r, "read stats of")
        used, free, largest, allocs, blocks, names, rec, rb, leaked, last = (int(x) for x in out)
        return HeapStats(self._g.arena_size, used, free, largest, allocs, blocks, 0.0 if free == 0 else 1 - largest / free,
                         rec, rb, leaked, None if last == 0 else self._off + last, names, self._g.name_count)

    def validate(self) -> list[str]:
        """Checks every invariant of docs/layout/heap.md (I1..I5) under the lock; the problems found
        (the same messages as src/heap.ts ``validate``), empty for a sound heap."""
        return self._locked(self._validate, "validate")

    def _validate(self, w: memoryview) -> list[str]:
        g = self._g
        out: list[str] = []
        arena, end = g.arena_offset, g.arena_offset + g.arena_size
        bw = g.bitmap_offset >> 2
        max_steps = g.arena_size // BLOCK_HEADER
        free_set: dict[int, int] = {}
        prev_used, prev_size, b, i = True, 0, arena, 0

        def bit(gi: int) -> bool:
            return (w[bw + (gi >> 5)] >> (gi & 31)) & 1 == 1

        while b < end:
            if i > max_steps:
                out.append("I1: the block walk does not end")
                return out
            i += 1
            v = w[b >> 2]
            sz = v & ~15
            if sz < MIN_BLOCK or sz > end - b:
                out.append(f"I1: block {b} has impossible size {sz}")
                return out
            is_used = (v & _USED) != 0
            if ((v & _PREV_USED) != 0) != prev_used:
                out.append(f"I2: block {b} PREV_USED disagrees with its predecessor")
            if not prev_used and w[(b >> 2) + 1] != prev_size:
                out.append(f"I2: block {b} prevSize {w[(b >> 2) + 1]} != {prev_size}")
            if not prev_used and not is_used:
                out.append(f"I2: free blocks {b - prev_size} and {b} are adjacent")
            gi = (b - arena) >> 4
            on = bit(gi)
            if on != is_used:
                out.append(f"I4: allocation bit of block {b} is {'true' if on else 'false'}, block is "
                           f"{'used' if is_used else 'free'}")
            if not is_used:
                free_set[b] = sz
            for k in range(gi + 1, gi + sz // 16):
                if bit(k):
                    out.append(f"I4: allocation bit set inside block {b} at granule {k}")
                    break
            prev_used, prev_size = is_used, sz
            b += sz
        if b != end:
            out.append(f"I1: blocks end at {b}, the arena at {end}")
        on_lists = 0
        for li in range(128):
            x = w[80 + li]
            prev = 0
            fl = li >> 2
            bit_on = (w[48 + fl] >> (li & 3)) & 1 == 1
            if bit_on != (x != 0):
                out.append(f"I3: bitmap bit of list {li} is {'true' if bit_on else 'false'}, list "
                           f"{'empty' if x == 0 else 'non-empty'}")
            steps = 0
            while x != 0:
                if steps > max_steps:
                    out.append(f"I3: list {li} does not end")
                    break
                steps += 1
                sz = free_set.get(x)
                if sz is None:
                    out.append(f"I3: list {li} holds {x}, which is not a free block")
                    break
                f2 = sz.bit_length() - 1
                if f2 * 4 + ((sz >> (f2 - 2)) & 3) != li:
                    out.append(f"I3: block {x} (size {sz}) is on list {li}")
                if w[(x >> 2) + 3] != prev:
                    out.append(f"I3: back link of {x} is {w[(x >> 2) + 3]}, expected {prev}")
                on_lists += 1
                prev = x
                x = w[(x >> 2) + 2]
        for fl in range(32):
            if ((w[32] >> fl) & 1 == 1) != (w[48 + fl] != 0):
                out.append(f"I3: first-level bit {fl} disagrees with its lists")
        if on_lists != len(free_set):
            out.append(f"I3: {on_lists} blocks on lists, {len(free_set)} free blocks")
        if w[28] != (self._local.seq - 1) & 0xFFFFFFFF:
            out.append(f"I5: the previous operation {(w[27] - 1) & 0xFFFFFFFF} was left open (doneSeq {w[28]})")
        return out

    # ---- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Detaches this object (idempotent); closes the segment if the heap owns it (create/open/
        attach), which detaches views handed out by ``bytes``/``array``."""
        if self._closed:
            return
        self._closed = True
        if self._local.holding and not self._seg.closed:
            lib().shmkit_heap_release(self._ref)
            self._after_held()
        self._mutex.close()
        if self._owns:
            self._seg.close()

    def __repr__(self) -> str:
        return f"<shmkit.SharedHeap {self._what}{' closed' if self._closed else ''}>"
