"""Mutex, Semaphore and Condition (docs/layout/locks.md): the same objects as the TypeScript
``Mutex`` (src/mutex.ts), ``Semaphore`` (src/semaphore.ts) and ``Condition`` (src/condition.ts),
byte-compatible and attachable through the same JSON handles. Every operation is one call into
csrc/ops_sync.c (a second implementation of the layout's protocols); blocking waits sleep in
short futex slices with the GIL released, so Ctrl-C interrupts them (KeyboardInterrupt).

    m = shmkit.Mutex.create("jobs-lock")
    with m as g:                 # m.lock(); unlocked at the end of the block
        if g.recovered:          # the previous holder died inside: repair the protected data
            ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import os
import struct
import threading
from typing import Any, Callable

from . import _lib, layout
from ._lib import errno_value, lib, os_error
from ._wait import now_ms, timeout_error, timeout_ms
from .errors import ShmError
from .ops_codes import EBADHDR_NEG
from ._placed import Placed, attach_handle, owning
from .shared_memory import SharedMemory

__all__ = ["Mutex", "LockGuard", "Semaphore", "Condition"]

MUTEX_HEADER_SIZE = 128
MUTEX_DEFAULT_SLOTS = 64
MUTEX_MAX_SLOTS = 0xFFFF
LIVENESS_SLICE_MS = 200.0  # src/mutex.ts LIVENESS_SLICE_MS
SEMAPHORE_BYTES = 128
SEMAPHORE_MAX_VALUE = 0x7FFFFFFF
SEMAPHORE_SLICE_MS = 250.0  # src/semaphore.ts SEMAPHORE_SLICE_MS
CONDITION_BYTES = 128
CONDITION_SLICE_MS = 250.0  # src/condition.ts CONDITION_SLICE_MS
_MAX_STEPS = 1024

# shmkit_mutex_try results and flags (csrc/shmkit.h)
_GOT, _GOT_RECOVERED, _BUSY_OTHER, _BUSY_SELF = 0, 1, 2, 3
_CHECK, _PARKED, _FAST = 1, 2, 4

# A Mutex object made before a fork() names the parent's participant slot: the child must claim
# its own. Bumped in every forked child; objects compare it with the value at their claim.
_fork_gen = [0]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _fork_gen.__setitem__(0, _fork_gen[0] + 1))

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_fastlib: ctypes.PyDLL | None = None
# The calls that never sleep go through a PyDLL handle: the GIL stays held (no release and
# re-acquire per call, and no other thread of this process can unmap the segment under the call).
_FAST_CALLS = ("shmkit_mutex_try", "shmkit_mutex_unlock", "shmkit_mutex_pass_wake", "shmkit_sem_try",
               "shmkit_sem_release", "shmkit_sem_value", "shmkit_sem_pass_wake", "shmkit_cond_enter",
               "shmkit_cond_leave", "shmkit_cond_notify")


def _fast() -> ctypes.PyDLL:
    global _fastlib
    if _fastlib is None:
        lib()
        f = ctypes.PyDLL(_lib.library_path)
        for name in _FAST_CALLS:
            fn = getattr(f, name)
            fn.restype, fn.argtypes = _lib._SIGS[name]
        _fastlib = f
    return _fastlib


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    """Worker threads for the asynchronous forms' sleeps (one per concurrent waiter, up to 32)."""
    global _executor
    if _executor is None:
        with _pool_lock:
            if _executor is None:
                _executor = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="shmkit-wait")
    return _executor


def _describe(kind: str, seg: SharedMemory, off: int) -> str:
    if seg.name is None:
        return f"{kind} at {off} of anonymous memory"
    return f'{kind} "{seg.name}"' if off == 0 else f'{kind} at {off} of "{seg.name}"'


def _check_placement(seg: SharedMemory, off: object, length: int, what: str) -> int:
    """src/mutex.ts checkPlacement: EINVAL for a misaligned offset, ValueError when it does not fit."""
    if isinstance(off, bool) or not isinstance(off, int) or off < 0 or off % layout.OBJECT_ALIGN:
        raise ShmError("EINVAL", f"{what}: byteOffset {off} must be a non-negative multiple of "
                       f"{layout.OBJECT_ALIGN} (EINVAL)")
    if off + length > seg.size:
        raise ValueError(f"{what}: {length} bytes at {off} do not fit in the {seg.size}-byte segment")
    if seg.read_only:
        raise ShmError("EINVAL", f"{what}: the segment is read-only (EINVAL)")
    return off


class _Base(Placed):
    _kind = ""
    _seg: SharedMemory
    _off: int
    _owns: bool
    _closed: bool
    _what: str

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError(f"use {type(self).__name__}.create(), open(), attach(), at() or init()")

    def _setup(self, seg: SharedMemory, off: int, owns: bool) -> None:
        seg._exported = True  # C reads the mapping: unmap with tombstones, never under a call
        self._seg, self._off, self._owns, self._closed = seg, off, owns, False
        self._id = seg.map_id
        self._foff = float(off)
        self._what = _describe(self._kind, seg, off)

    def _closed_error(self, doing: str) -> ShmError:
        return ShmError("ECLOSED", f"Cannot {doing} {self._what}: it is closed (ECLOSED)")

    def _live(self, doing: str) -> None:
        if self._closed or self._seg.closed:
            raise self._closed_error(doing)

    def _fail(self, r: int, doing: str) -> ShmError:
        what = f"Cannot {doing} {self._what}"
        if r == EBADHDR_NEG:
            return ShmError("EBADHDR", f"{what}: a shared word is corrupt (EBADHDR)")
        if self._seg.closed or r == -errno_value("EBADF"):
            return self._closed_error(doing)
        return os_error(r, self._kind, what)

    def close(self) -> None:
        """Detaches this object (idempotent); closes the segment if it owns it (create/open/attach)."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            self._seg.close()

    def __repr__(self) -> str:
        return f"<shmkit.{type(self).__name__} {self._what}{' closed' if self._closed else ''}>"


# ------------------------------------------------------------------------------------------------
# Mutex


class LockGuard:
    """Proof of holding a Mutex (``m.lock()`` returns it; ``with m.lock() as g:`` unlocks at the
    end). ``recovered`` is True when the previous holder died (or closed its Mutex) while holding
    the lock, as POSIX EOWNERDEAD: the protected data may be half-updated and the new holder
    repairs it; unlocking afterwards makes the lock consistent again. One guard per Mutex object,
    reused by every lock: do not keep it after unlocking."""

    __slots__ = ("mutex", "recovered")

    def __init__(self, mutex: "Mutex"):
        self.mutex = mutex
        self.recovered = False

    def unlock(self) -> None:
        """Releases the lock. ShmError EPERM when already released, ECLOSED when its Mutex was closed
        (the lock was abandoned then)."""
        self.mutex._unlock()

    def __enter__(self) -> "LockGuard":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.mutex._held:
            self.mutex._unlock()

    def __repr__(self) -> str:
        return f"<shmkit.LockGuard of {self.mutex._what}{' recovered' if self.recovered else ''}>"


class Mutex(_Base):
    """A robust inter-process mutex (src/mutex.ts): any number of processes of any language lock
    and unlock it; at most one holds it. If the holder dies (or closes its Mutex) while holding it,
    the next locker gets it with ``guard.recovered`` True. A stopped or slow holder is never robbed.

    Ownership is per process: within one process a second blocking ``lock()`` while the process
    holds the lock (through any Mutex object) raises ``EBUSY`` instead of deadlocking, ``try_lock``
    returns None, ``lock_async`` waits. One Mutex object belongs to one thread at a time (threads
    of one process are the same owner: give each its own Mutex object, and expect EBUSY).
    """

    _kind = "mutex"

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "Mutex":
        h = layout.read_header(seg, off, "mutex", what, min_bytes=MUTEX_HEADER_SIZE + 8)

        def bad(why: str) -> ShmError:
            return ShmError("EBADHDR", f"{what}: {why} (EBADHDR)")

        if h.header_size != MUTEX_HEADER_SIZE:
            raise bad(f"header size {h.header_size}, expected {MUTEX_HEADER_SIZE}")
        (n,) = struct.unpack_from("<I", seg.buf, off + 68)  # read once
        if n < 1 or n > MUTEX_MAX_SLOTS:
            raise bad(f"impossible slot count {n}")
        if h.byte_length != layout.align_up(MUTEX_HEADER_SIZE + 8 * n, layout.OBJECT_ALIGN):
            raise bad(f"byte length {h.byte_length} does not match {n} slots")
        self = object.__new__(cls)
        self._setup(seg, off, owns)
        self._n = n
        self._slot = 0
        self._held = False
        self._gen = _fork_gen[0]
        self._guard = LockGuard(self)
        L, F = lib(), _fast()
        self._c_try, self._c_park, self._c_unlock = F.shmkit_mutex_try, L.shmkit_mutex_park, F.shmkit_mutex_unlock
        r = L.shmkit_mutex_check(self._id, self._foff, n)  # I1 on the current lock word
        if r == EBADHDR_NEG:
            word = layout.load32(seg, off + 64)
            raise ShmError("EBADHDR", f"Cannot use {self._what}: corrupt lock word 0x{word:x} (owner "
                           f"{word & 0xFFFF} of {n} slots) (EBADHDR)")
        if r < 0:
            raise self._fail(r, "attach")
        return self

    @staticmethod
    def byte_length(slots: int = MUTEX_DEFAULT_SLOTS) -> int:
        """Bytes a mutex with ``slots`` participant slots occupies (a multiple of 64)."""
        return layout.align_up(MUTEX_HEADER_SIZE + 8 * _slots_of(slots), layout.OBJECT_ALIGN)

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, slots: int = MUTEX_DEFAULT_SLOTS) -> "Mutex":
        """Formats a mutex (unlocked, all slots free) at ``byte_offset`` of ``seg`` and attaches it;
        the caller keeps the segment."""
        n = _slots_of(slots)
        length = cls.byte_length(n)
        off = _check_placement(seg, byte_offset, length, "Cannot init mutex")
        layout.write_header(seg, off, "mutex", MUTEX_HEADER_SIZE, length)
        seg.buf[off + 64:off + length] = bytes(length - 64)
        struct.pack_into("<I", seg.buf, off + 68, n)
        layout.publish_ready(seg, off)
        return cls._new(seg, off, False, f"Cannot init mutex at {off}")

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "Mutex":
        """Attaches the mutex at ``byte_offset`` of ``seg`` (validating its header); the caller keeps
        the segment."""
        return cls._new(seg, byte_offset, False, f"Cannot attach mutex at {byte_offset}")

    @classmethod
    def create(cls, name: str | None, slots: int = MUTEX_DEFAULT_SLOTS, *, file_mode: int = 0o600) -> "Mutex":
        """Creates a segment ``name`` holding one mutex (exclusive: EEXIST when the name is taken)."""
        length = cls.byte_length(slots)
        seg = SharedMemory.create(name, length, mode=file_mode)
        return owning(seg, lambda: cls.init(seg, 0, slots), True)

    @classmethod
    def open(cls, name: str) -> "Mutex":
        """Opens the mutex of segment ``name`` (made by ``create`` here or in TypeScript)."""
        seg = SharedMemory.open(name)
        return owning(seg, lambda: cls._new(seg, 0, False, f'Cannot open mutex "{seg.name}"'), False)

    @classmethod
    def attach(cls, handle: dict) -> "Mutex":
        """Reopens a mutex from its handle (``json.loads`` of a TypeScript ``m.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.mutex")
        what = f"Cannot attach mutex at {off} of {seg.name or 'anonymous memory'}"
        return owning(seg, lambda: cls._new(seg, off, False, what), False)

    @property
    def slots(self) -> int:
        """The number of participant slots."""
        return self._n

    @property
    def held(self) -> bool:
        """True while this Mutex object holds the lock."""
        return self._held

    @property
    def recoveries(self) -> int:
        """How many times a dead or departed holder's lock was taken over (a free-running u32)."""
        self._live("read")
        return layout.load32(self._seg, self._off + 72)

    # ---- locking ----------------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self._closed or self._seg.closed:
            raise self._closed_error("lock")
        if self._gen != _fork_gen[0]:  # a forked child: the slot and the lock are the parent's
            self._gen, self._slot, self._held = _fork_gen[0], 0, False
        if self._slot == 0:
            r = lib().shmkit_mutex_claim(self._id, self._foff, self._n)
            if r == -errno_value("ENOSPC"):
                raise ShmError("ENOSPC", f"Cannot lock {self._what}: all {self._n} participant slots are used by "
                               "live processes (ENOSPC)", errno=-r)
            if r < 0:
                raise self._fail(r, "lock")
            self._slot = r

    def _try(self, flags: int) -> int:
        r = self._c_try(self._id, self._foff, self._n, self._slot, flags)
        if r < 0:
            raise self._fail(r, "lock")
        return r

    def _grant(self, recovered: bool) -> LockGuard:
        self._held = True
        self._guard.recovered = recovered
        return self._guard

    def _undo(self) -> None:
        """After an exception (KeyboardInterrupt) between a C call that took the lock and ``_grant``:
        release a lock this object holds without knowing it."""
        if self._held or self._slot == 0 or self._seg.closed:
            return
        if layout.load32(self._seg, self._off + 64) & 0xFFFF == self._slot:
            self._c_unlock(self._id, self._foff, self._n, self._slot)

    def _self_error(self) -> ShmError:
        return ShmError("EBUSY", f"Cannot lock {self._what}: it is already held by this process, a blocking lock "
                        "would never return; use lock_async() to wait for it (EBUSY)")

    def try_lock(self) -> LockGuard | None:
        """Takes the lock if it is free or its holder is dead (then ``recovered`` is True); never
        blocks. None when a live process (this one included) holds it."""
        self._prepare()
        if self._held:
            return None
        try:
            r = self._try(_FAST | _CHECK)
            return self._grant(r == _GOT_RECOVERED) if r <= _GOT_RECOVERED else None
        except BaseException:
            self._undo()
            raise

    def lock(self, timeout: float | None = None) -> LockGuard:
        """Takes the lock, blocking the calling thread (futex sleeps of at most 200 ms, after which
        the holder's liveness is checked). ``timeout`` in seconds (None: for good). ShmError
        ETIMEDOUT, EBUSY (this process holds it), ECLOSED, ENOSPC, EBADHDR; Ctrl-C interrupts the
        wait (KeyboardInterrupt)."""
        if timeout is None and not self._held and self._slot and self._gen == _fork_gen[0] and not self._closed \
                and not self._seg._closed:
            # The uncontended path: one C call (A1), nothing else.
            try:
                if self._c_try(self._id, self._foff, self._n, self._slot, _FAST) == _GOT:
                    self._held = True
                    g = self._guard
                    g.recovered = False
                    return g
            except BaseException:  # KeyboardInterrupt raised right after the call returned
                self._undo()
                raise
        return self._lock(timeout)

    def _lock(self, timeout: float | None) -> LockGuard:
        what = f"Cannot lock {self._what}"
        ms = timeout_ms(timeout, what)
        self._prepare()
        if self._held:
            raise self._self_error()
        try:
            r = self._try(_FAST)
            if r <= _GOT_RECOVERED:
                return self._grant(r == _GOT_RECOVERED)
            deadline = now_ms() + ms
            flags = _CHECK
            freed = 0
            while True:
                r = self._try(flags)
                if r <= _GOT_RECOVERED:
                    return self._grant(r == _GOT_RECOVERED)
                if r == _BUSY_SELF:
                    raise self._self_error()
                left = deadline - now_ms()
                if left <= 0:
                    raise timeout_error(what, ms)
                p = self._c_park(self._id, self._foff, self._n, min(LIVENESS_SLICE_MS, left))
                if p == 2:  # released meanwhile: try again (the deadline is checked now and then)
                    freed += 1
                    if freed % _MAX_STEPS == 0 and now_ms() >= deadline:
                        raise timeout_error(what, ms)
                    continue
                if p < 0 and p != -errno_value("EINTR"):
                    raise self._fail(p, "lock")
                # 1: a whole slice without a wake: look at the holder's liveness
                flags = _PARKED | (_CHECK if p == 1 else 0)
        except BaseException:
            self._undo()
            raise

    async def lock_async(self, timeout: float | None = None) -> LockGuard:
        """Takes the lock without blocking the event loop (the sleeps run in a worker thread, the
        attempts on the loop's thread). Waits for holders in this process too. ShmError ETIMEDOUT,
        ECLOSED, ENOSPC, EBADHDR; cancelling the task stops the wait."""
        what = f"Cannot lock {self._what}"
        ms = timeout_ms(timeout, what)
        self._prepare()
        deadline = now_ms() + ms
        flags = _CHECK
        freed = 0
        try:
            while True:
                self._live("lock")
                if not self._held:
                    r = self._try(flags)
                    if r <= _GOT_RECOVERED:
                        return self._grant(r == _GOT_RECOVERED)
                left = deadline - now_ms()
                if left <= 0:
                    raise timeout_error(what, ms)
                seen = layout.load32(self._seg, self._off + 64)
                cf = _pool().submit(self._c_park, self._id, self._foff, self._n, min(LIVENESS_SLICE_MS, left))
                try:
                    p = await asyncio.wrap_future(cf)
                except asyncio.CancelledError:
                    # The sleep may still take a wake meant for another waiter: pass it on when it ends.
                    cf.add_done_callback(lambda _f: self._pass_wake(seen))
                    raise
                if p == 2:
                    freed += 1
                    if freed % _MAX_STEPS == 0:
                        await asyncio.sleep(0)
                    continue
                if p < 0 and p != -errno_value("EINTR"):
                    raise self._fail(p, "lock")
                if p == 1:
                    self._pass_wake(seen)
                flags = _PARKED | (_CHECK if p == 1 else 0)
        except BaseException:
            self._undo()
            raise

    def _pass_wake(self, seen: int) -> None:
        if not self._seg.closed:
            _fast().shmkit_mutex_pass_wake(self._id, self._foff, self._n, seen | 0x80000000)

    def _unlock(self) -> None:
        if self._held and self._gen == _fork_gen[0] and not self._seg._closed:
            self._held = False  # first: an exception raised right after the call finds it consistent
            r = self._c_unlock(self._id, self._foff, self._n, self._slot)  # R1
            if r != 0:
                self._unlock_failed(r)
            return
        self._unlock_slow()

    def _unlock_failed(self, r: int) -> None:
        if r == -errno_value("EPERM"):
            self._held = False
            word = layout.load32(self._seg, self._off + 64)
            raise ShmError("EPERM", f"Cannot unlock {self._what}: the lock word names slot {word & 0xFFFF}, not this "
                           f"holder's slot {self._slot} (EPERM)", errno=-r)
        raise self._fail(r, "unlock")

    def _unlock_slow(self) -> None:
        if self._seg.closed and not self._closed:
            self._held = False
            raise self._closed_error("unlock")
        if not self._held:
            if self._closed:
                raise ShmError("ECLOSED", f"Cannot unlock {self._what}: it was closed while held, the lock was "
                               "abandoned (ECLOSED)")
            raise ShmError("EPERM", f"Cannot unlock {self._what}: this guard does not hold it (already unlocked) "
                           "(EPERM)")
        if self._gen != _fork_gen[0]:
            self._held = False
            raise ShmError("EPERM", f"Cannot unlock {self._what}: the lock was taken by the parent process, before "
                           "fork() (EPERM)")
        self._held = False
        r = self._c_unlock(self._id, self._foff, self._n, self._slot)
        if r < 0:
            self._unlock_failed(r)

    def unlock(self) -> None:
        """Releases the lock this object holds (the same as ``guard.unlock()``)."""
        self._unlock()

    def close(self) -> None:
        """Detaches this object (idempotent). If it holds the lock, the lock is abandoned: released so
        that the next locker gets ``recovered`` True. Frees this object's participant slot; closes the
        segment if the mutex owns it (create/open/attach)."""
        if self._closed:
            return
        corrupt = None
        forked = self._gen != _fork_gen[0]
        if not self._seg.closed and not forked:
            L = lib()
            if self._held:
                r = L.shmkit_mutex_abandon(self._id, self._foff, self._n, self._slot)
                if r < 0:
                    corrupt = self._fail(r, "release")
            if self._slot:
                L.shmkit_mutex_release_slot(self._id, self._foff, self._n, self._slot)  # C1
        self._held = False
        self._slot = 0
        self._closed = True
        if self._owns:
            self._seg.close()
        if corrupt is not None:
            import warnings

            warnings.warn(f"shmkit: closed {self._what} without releasing it: {corrupt}", RuntimeWarning,
                          stacklevel=2)

    def __enter__(self) -> LockGuard:
        return self.lock()

    def __exit__(self, *exc: Any) -> None:
        if self._held:
            self._unlock()

    async def __aenter__(self) -> LockGuard:
        return await self.lock_async()

    async def __aexit__(self, *exc: Any) -> None:
        if self._held:
            self._unlock()


def _slots_of(slots: object) -> int:
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MUTEX_MAX_SLOTS:
        raise ValueError(f"Mutex slots must be an integer in 1..{MUTEX_MAX_SLOTS}, got {slots!r}")
    return slots


# ------------------------------------------------------------------------------------------------
# Semaphore


class Semaphore(_Base):
    """A counting semaphore shared by processes (src/semaphore.ts). Any number of processes acquire
    and release in any mix; the count stays in 0..2^31-1. Units have no owner: anyone may release,
    and a process that dies does not return the units it took (as POSIX semaphores)."""

    _kind = "semaphore"

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "Semaphore":
        h = layout.read_header(seg, off, "semaphore", what, min_bytes=SEMAPHORE_BYTES)
        if h.header_size != SEMAPHORE_BYTES or h.byte_length != SEMAPHORE_BYTES:
            raise ShmError("EBADHDR", f"{what}: header size {h.header_size} / length {h.byte_length}, expected "
                           f"{SEMAPHORE_BYTES} (EBADHDR)")
        self = object.__new__(cls)
        self._setup(seg, off, owns)
        self._c_try, self._c_park = _fast().shmkit_sem_try, lib().shmkit_sem_park
        self._c_release = _fast().shmkit_sem_release
        self._load()  # S1
        return self

    @staticmethod
    def byte_length() -> int:
        """Bytes a semaphore occupies (128)."""
        return SEMAPHORE_BYTES

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, value: int = 0) -> "Semaphore":
        """Formats a semaphore with count ``value`` at ``byte_offset`` of ``seg``; the caller keeps
        the segment."""
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEMAPHORE_MAX_VALUE:
            raise ValueError(f"Semaphore value must be an integer in 0..{SEMAPHORE_MAX_VALUE}, got {value!r}")
        off = _check_placement(seg, byte_offset, SEMAPHORE_BYTES, "Cannot init semaphore")
        layout.write_header(seg, off, "semaphore", SEMAPHORE_BYTES, SEMAPHORE_BYTES)
        seg.buf[off + 64:off + SEMAPHORE_BYTES] = bytes(SEMAPHORE_BYTES - 64)
        struct.pack_into("<I", seg.buf, off + 64, value)
        layout.publish_ready(seg, off)
        return cls._new(seg, off, False, f"Cannot init semaphore at {off}")

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "Semaphore":
        return cls._new(seg, byte_offset, False, f"Cannot attach semaphore at {byte_offset}")

    @classmethod
    def create(cls, name: str | None, value: int = 0, *, file_mode: int = 0o600) -> "Semaphore":
        """Creates a segment ``name`` holding one semaphore with count ``value`` (EEXIST if taken)."""
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEMAPHORE_MAX_VALUE:
            raise ValueError(f"Semaphore value must be an integer in 0..{SEMAPHORE_MAX_VALUE}, got {value!r}")
        seg = SharedMemory.create(name, SEMAPHORE_BYTES, mode=file_mode)
        return owning(seg, lambda: cls.init(seg, 0, value), True)

    @classmethod
    def open(cls, name: str) -> "Semaphore":
        seg = SharedMemory.open(name)
        return owning(seg, lambda: cls._new(seg, 0, False, f'Cannot open semaphore "{seg.name}"'), False)

    @classmethod
    def attach(cls, handle: dict) -> "Semaphore":
        """Reopens a semaphore from its handle (``json.loads`` of a TypeScript ``s.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.semaphore")
        what = f"Cannot attach semaphore at {off} of {seg.name or 'anonymous memory'}"
        return owning(seg, lambda: cls._new(seg, off, False, what), False)

    def _load(self) -> int:
        r = lib().shmkit_sem_value(self._id, self._foff)
        if r == EBADHDR_NEG:
            v = layout.load32(self._seg, self._off + 64)
            raise ShmError("EBADHDR", f"Cannot use {self._what}: corrupt count {v} (EBADHDR)")
        if r < 0:
            raise self._fail(r, "read")
        return r

    @property
    def value(self) -> int:
        """The current count (a snapshot)."""
        self._live("read")
        return self._load()

    def try_acquire(self) -> bool:
        """Takes one unit if the count is positive; never blocks."""
        if self._closed or self._seg._closed:
            raise self._closed_error("acquire")
        r = self._c_try(self._id, self._foff)
        if r < 0:
            if r == EBADHDR_NEG:
                self._load()
            raise self._fail(r, "acquire")
        return r == 1

    def _park(self, ms: float) -> int:
        r = self._c_park(self._id, self._foff, ms)
        if r < 0 and r != -errno_value("ETIMEDOUT") and r != -errno_value("EINTR"):
            if r == EBADHDR_NEG:
                self._load()
            raise self._fail(r, "acquire")
        return r

    def acquire(self, timeout: float | None = None) -> None:
        """Takes one unit, blocking the calling thread while the count is 0. ``timeout`` in seconds
        (None: for good); ShmError ETIMEDOUT; Ctrl-C interrupts (KeyboardInterrupt)."""
        what = f"Cannot acquire {self._what}"
        ms = timeout_ms(timeout, what)
        if self.try_acquire():
            return
        deadline = now_ms() + ms
        while True:
            left = deadline - now_ms()
            if left <= 0:
                raise timeout_error(what, ms)
            self._park(min(SEMAPHORE_SLICE_MS, left))
            if self.try_acquire():
                return

    async def acquire_async(self, timeout: float | None = None) -> None:
        """Takes one unit without blocking the event loop (the sleeps run in a worker thread)."""
        what = f"Cannot acquire {self._what}"
        ms = timeout_ms(timeout, what)
        if self.try_acquire():
            return
        deadline = now_ms() + ms
        while True:
            left = deadline - now_ms()
            if left <= 0:
                raise timeout_error(what, ms)
            cf = _pool().submit(self._park, min(SEMAPHORE_SLICE_MS, left))
            try:
                await asyncio.wrap_future(cf)
            except asyncio.CancelledError:
                cf.add_done_callback(lambda _f: self._pass_wake())
                raise
            self._live("acquire")
            if self.try_acquire():
                return

    def _pass_wake(self) -> None:
        if not self._seg.closed:
            _fast().shmkit_sem_pass_wake(self._id, self._foff)

    def release(self, n: int = 1) -> None:
        """Adds ``n`` units and wakes up to ``n`` sleepers. ValueError for n < 1; ShmError EOVERFLOW
        when the count would pass 2^31-1."""
        if type(n) is not int or n < 1:
            raise ValueError(f"Cannot release {self._what}: n must be a positive integer, got {n!r}")
        if self._closed or self._seg._closed:
            raise self._closed_error("release")
        if n > SEMAPHORE_MAX_VALUE:
            r = -errno_value("EOVERFLOW")
        else:
            r = self._c_release(self._id, self._foff, n)
            if r == 0:
                return
        if r == -errno_value("EOVERFLOW"):
            v = layout.load32(self._seg, self._off + 64)
            raise ShmError("EOVERFLOW", f"Cannot release {self._what}: {v} + {n} exceeds the maximum count "
                           f"{SEMAPHORE_MAX_VALUE} (EOVERFLOW)", errno=-r)
        if r == EBADHDR_NEG:
            self._load()
            raise ShmError("EBADHDR", f"Cannot release {self._what}: its count keeps changing under every CAS "
                           "(EBADHDR)")
        if r < 0:
            raise self._fail(r, "release")

    def __enter__(self) -> "Semaphore":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    async def __aenter__(self) -> "Semaphore":
        await self.acquire_async()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.release()


# ------------------------------------------------------------------------------------------------
# Condition


class Condition(_Base):
    """A condition variable shared by processes (src/condition.ts), used with a Mutex: waiters hold
    the Mutex protecting the predicate when they call ``wait``; notifiers should hold it while they
    change the predicate. ``wait`` returns (or raises ETIMEDOUT, KeyboardInterrupt) only after
    re-acquiring the mutex; ``guard.recovered`` is then True if its holder died meanwhile. Spurious
    wake-ups happen: wait in a loop on a predicate (``wait_for``)."""

    _kind = "condition"

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "Condition":
        h = layout.read_header(seg, off, "condition", what, min_bytes=CONDITION_BYTES)
        if h.header_size != CONDITION_BYTES or h.byte_length != CONDITION_BYTES:
            raise ShmError("EBADHDR", f"{what}: header size {h.header_size} / length {h.byte_length}, expected "
                           f"{CONDITION_BYTES} (EBADHDR)")
        self = object.__new__(cls)
        self._setup(seg, off, owns)
        return self

    @staticmethod
    def byte_length() -> int:
        """Bytes a condition occupies (128)."""
        return CONDITION_BYTES

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int) -> "Condition":
        """Formats a condition at ``byte_offset`` of ``seg`` (typically right after its Mutex:
        ``Condition.init(seg, Mutex.byte_length())``); the caller keeps the segment."""
        off = _check_placement(seg, byte_offset, CONDITION_BYTES, "Cannot init condition")
        layout.write_header(seg, off, "condition", CONDITION_BYTES, CONDITION_BYTES)
        seg.buf[off + 64:off + CONDITION_BYTES] = bytes(CONDITION_BYTES - 64)
        layout.publish_ready(seg, off)
        return cls._new(seg, off, False, f"Cannot init condition at {off}")

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "Condition":
        return cls._new(seg, byte_offset, False, f"Cannot attach condition at {byte_offset}")

    @classmethod
    def create(cls, name: str | None, *, file_mode: int = 0o600) -> "Condition":
        seg = SharedMemory.create(name, CONDITION_BYTES, mode=file_mode)
        return owning(seg, lambda: cls.init(seg, 0), True)

    @classmethod
    def open(cls, name: str) -> "Condition":
        seg = SharedMemory.open(name)
        return owning(seg, lambda: cls._new(seg, 0, False, f'Cannot open condition "{seg.name}"'), False)

    @classmethod
    def attach(cls, handle: dict) -> "Condition":
        seg, off = attach_handle(handle, "shmkit.condition")
        what = f"Cannot attach condition at {off} of {seg.name or 'anonymous memory'}"
        return owning(seg, lambda: cls._new(seg, off, False, what), False)

    def _check_guard(self, guard: object, what: str) -> LockGuard:
        if self._closed or self._seg.closed:
            raise ShmError("ECLOSED", f"{what}: it is closed (ECLOSED)")
        if not isinstance(guard, LockGuard):
            raise TypeError(f"{what}: the guard must come from Mutex.lock / try_lock / lock_async")
        if not guard.mutex.held:
            raise ShmError("EPERM", f"{what}: the guard does not hold its mutex (EPERM)")
        return guard

    def _enter(self, what: str) -> int:
        s = _fast().shmkit_cond_enter(self._id, self._foff)  # W1
        if s < 0:
            raise self._fail(int(s), "wait on")
        return int(s)

    def _leave(self) -> None:
        if not self._seg.closed:
            lib().shmkit_cond_leave(self._id, self._foff)

    def _park(self, s: int, ms: float) -> int:
        r = lib().shmkit_cond_park(self._id, self._foff, s, ms)  # W2
        if r < 0 and r != -errno_value("EINTR"):
            raise self._fail(r, "wait on")
        return r

    def wait(self, guard: LockGuard, timeout: float | None = None) -> None:
        """Unlocks the guard's mutex, sleeps until notified (or a spurious wake-up), then locks it
        again (also on timeout and Ctrl-C). ShmError ETIMEDOUT (the mutex is held again), EPERM when
        the guard does not hold its mutex, ECLOSED; from the re-lock: EBUSY when another Mutex object
        of this process holds it."""
        what = f"Cannot wait on {self._what}"
        ms = timeout_ms(timeout, what)
        g = self._check_guard(guard, what)
        deadline = now_ms() + ms
        s = self._enter(what)
        timed_out = False
        try:
            g.unlock()
            while True:
                left = deadline - now_ms()
                if left <= 0:
                    timed_out = True
                    break
                if self._park(s, min(CONDITION_SLICE_MS, left)) == 1:
                    break
        finally:
            self._leave()
            if not g.mutex.closed:
                g.mutex.lock()  # the same guard: its `recovered` now reports this acquisition
        if timed_out:
            raise timeout_error(what, ms)

    async def wait_async(self, guard: LockGuard, timeout: float | None = None) -> None:
        """Like ``wait`` without blocking the event loop; the mutex is re-acquired with
        ``lock_async`` (also on timeout and cancellation)."""
        what = f"Cannot wait on {self._what}"
        ms = timeout_ms(timeout, what)
        g = self._check_guard(guard, what)
        deadline = now_ms() + ms
        s = self._enter(what)
        failure: BaseException | None = None
        try:
            g.unlock()
            while True:
                left = deadline - now_ms()
                if left <= 0:
                    failure = timeout_error(what, ms)
                    break
                cf = _pool().submit(self._park, s, min(CONDITION_SLICE_MS, left))
                r = await asyncio.wrap_future(cf)
                if r == 1 or self._seg.closed:
                    break
        except BaseException as e:
            failure = e
        self._leave()
        if not g.mutex.closed:
            await g.mutex.lock_async()
        if failure is not None:
            raise failure

    def wait_for(self, guard: LockGuard, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Waits until ``predicate()`` (evaluated holding the mutex) is true; returns its last value
        (false after the timeout, like ``threading.Condition.wait_for``)."""
        ms = timeout_ms(timeout, f"Cannot wait on {self._what}")
        deadline = now_ms() + ms
        result = predicate()
        while not result:
            left = deadline - now_ms()
            if left <= 0:
                break
            try:
                self.wait(guard, None if left == float("inf") else left / 1000.0)
            except ShmError as e:
                if e.code != "ETIMEDOUT":
                    raise
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wakes up to ``n`` waiters (default 1)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Cannot notify {self._what}: n must be a positive integer, got {n!r}")
        self._live("notify")
        r = _fast().shmkit_cond_notify(self._id, self._foff, min(n, 0x7FFFFFFF))
        if r < 0:
            raise self._fail(r, "notify")

    def notify_all(self) -> None:
        """Wakes every waiter."""
        self.notify(0x7FFFFFFF)
