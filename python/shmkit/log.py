"""MessageLog: a packed log of variable-size records in shared memory (docs/layout/log.md), the same
object as the TypeScript ``MessageLog`` (src/log.ts): a Deno, Bun or Node process and a Python
process write and read one log. Every operation is one call into csrc/ops_log.c."""

from __future__ import annotations

import array
import asyncio
import ctypes
import errno as _errno
import secrets
import struct
from typing import Any, Callable, Iterable

from . import layout
from ._lib import check, errno_value, fast, lib
from ._wait import now_ms, timeout_error, timeout_ms, wait_until, wait_until_async
from .errors import ShmError
from .ops_codes import EBADHDR_NEG
from ._placed import Placed, attach_handle
from .shared_memory import SharedMemory

MODES = ("spsc", "mpsc")
LOG_HEADER_SIZE = 384
LOG_SLOT_SIZE = 32
LOG_MPSC_SLOTS = 32
RECORD_HEADER_SIZE = 8
TYPE_PAD = 0x80000000
IN_PROGRESS = 0x80000000
MAX_TYPE = 0xFFFF
MIN_CAPACITY = 256
MAX_CAPACITY = 2**30
_SPIN_MS = 0.05  # as src/log.ts SPIN_MS
_PARK_SLICE_MS = 100.0
_ASYNC_SLICE_MS = 50.0
_BATCH = 256  # records per C batch call
_EINVAL_NEG = -_errno.EINVAL

__all__ = ["MessageLog", "LogClaim", "MODES"]

_LENS: dict[int, struct.Struct] = {}  # count -> Struct("<{count}I"), for batches of up to 1024


def _lens_struct(count: int) -> struct.Struct:
    st = struct.Struct(f"<{count}I")
    if count <= 1024:
        _LENS[count] = st
    return st


class LogLocal(ctypes.Structure):
    """ctypes mirror of csrc/shmkit.h struct shmkit_log_local (checked against the library's sizeof)."""

    _fields_ = [
        ("offset", ctypes.c_double), ("map_id", ctypes.c_int32), ("capacity", ctypes.c_uint32),
        ("mode", ctypes.c_uint32), ("max_record", ctypes.c_uint32), ("data_offset", ctypes.c_uint32),
        ("nslots", ctypes.c_uint32), ("token", ctypes.c_uint32), ("roles", ctypes.c_uint32),
        ("pid", ctypes.c_uint32), ("start_lo", ctypes.c_uint32), ("fork_gen", ctypes.c_uint32),
        ("slot", ctypes.c_int32), ("w_tail", ctypes.c_uint32), ("w_limit", ctypes.c_uint32),
        ("r_pos", ctypes.c_uint32), ("r_head", ctypes.c_uint32), ("r_tail", ctypes.c_uint32),
        ("stuck", ctypes.c_uint32), ("stuck_at", ctypes.c_uint32), ("stuck_since", ctypes.c_double),
        ("waits", ctypes.c_uint32 * 2),
        ("claim_open", ctypes.c_uint32), ("claim_pos", ctypes.c_uint32), ("claim_end", ctypes.c_uint32),
        ("claim_max", ctypes.c_uint32), ("claim_type", ctypes.c_uint32),
    ]


_sized = False


def _check_size() -> None:
    global _sized
    if _sized:
        return
    n = lib().shmkit_log_local_size()
    if n != ctypes.sizeof(LogLocal):
        raise ShmError("ENOLIB", f"libshmkit's LogLocal is {n} bytes, this package expects {ctypes.sizeof(LogLocal)}: "
                       "the library and the package are from different versions (rebuild with `make lib`)")
    _sized = True


def _einval(what: str, why: str) -> ShmError:
    return ShmError("EINVAL", f"{what}: {why} (EINVAL)", errno=errno_value("EINVAL"))


def _bad(what: str, why: str) -> ShmError:
    return ShmError("EBADHDR", f"{what}: {why} (EBADHDR)")


def _check_options(capacity: object, mode: object, max_record: object, what: str) -> tuple[int, int, int]:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"{what}: capacity must be an int, got {type(capacity).__name__}")
    if not MIN_CAPACITY <= capacity <= MAX_CAPACITY or capacity & (capacity - 1):
        raise _einval(what, f"capacity must be a power of two in {MIN_CAPACITY}..{MAX_CAPACITY} bytes, got {capacity}")
    if mode not in MODES:
        raise _einval(what, f'mode must be "spsc" or "mpsc", got {mode!r}')
    most = capacity // 2 - RECORD_HEADER_SIZE
    mr = most if max_record is None else max_record
    if isinstance(mr, bool) or not isinstance(mr, int) or not 0 <= mr <= most:
        raise _einval(what, f"maxRecord must be an integer in 0..{most} (capacity / 2 - 8), got {mr}")
    return capacity, MODES.index(mode), mr


def _data_offset(mode: int) -> int:
    return LOG_HEADER_SIZE + (LOG_MPSC_SLOTS * LOG_SLOT_SIZE if mode == 1 else 0)


def _payload(data: object, what: str) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what}: data must be bytes, bytearray, memoryview or str, got {type(data).__name__}")


class MessageLog(Placed):
    """A packed log of variable-size records (``[length | type | payload]``, 8-byte aligned) shared
    by processes of any language following docs/layout/log.md.

    Role contract (as in TypeScript): one reader process at a time (the first read takes the reader
    role until ``close()`` or death; another live process gets ``ShmError`` ``EBUSY``). ``spsc``: one
    writer process at a time, the same way; ``mpsc``: up to 32 writer objects at once, each in a
    participant slot taken on its first write. A writer killed mid-record never makes it visible and
    never wedges the log (the reader pads over a dead writer's claim); a corrupt log is ``EBADHDR``.

    One MessageLog object belongs to one thread at a time.
    """

    _kind = "log"

    def _closed_error(self, doing: str) -> ShmError:
        return ShmError("ECLOSED", f'Cannot {doing} log "{self._name}": it is closed (ECLOSED)')

    capacity: int
    mode: str
    max_record: int

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use MessageLog.create(), open(), attach(), at() or init()")

    # ---- placement ------------------------------------------------------------------------------

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, what: str) -> "MessageLog":
        _check_size()
        if off + LOG_HEADER_SIZE > seg.size:
            raise _bad(what, "the segment is too small for a log header")
        # Read each field once, then validate before using any (src/log.ts constructor).
        header_size, byte_length = struct.unpack_from("<I", seg.buf, off + 12)[0], \
            struct.unpack_from("<Q", seg.buf, off + 16)[0]
        capacity, mode, max_record, data_offset, nslots = struct.unpack_from("<5I", seg.buf, off + 64)
        if not MIN_CAPACITY <= capacity <= MAX_CAPACITY or capacity & (capacity - 1):
            raise _bad(what, f"capacity {capacity} is not a power of two in {MIN_CAPACITY}..{MAX_CAPACITY} (L2)")
        if mode > 1:
            raise _bad(what, f"mode {mode} is not a log mode")
        if max_record > capacity // 2 - RECORD_HEADER_SIZE:
            raise _bad(what, f"maxRecord {max_record} does not fit a {capacity}-byte log (L2)")
        want_slots = LOG_MPSC_SLOTS if mode == 1 else 0
        if nslots != want_slots or data_offset != _data_offset(mode) or header_size != data_offset:
            raise _bad(what, f"header size {header_size} / data offset {data_offset} / {nslots} slots do not match "
                       f"mode {mode}")
        if byte_length != data_offset + capacity:
            raise _bad(what, f"byteLength {byte_length} does not match {capacity}")
        if off + byte_length > seg.size:
            raise _bad(what, f"it needs {byte_length} bytes at {off}, the segment is {seg.size}")
        self = object.__new__(cls)
        self._seg = seg
        self._off = off
        self._owns = owns
        self._closed = False
        self._name = seg.name if seg.name is not None else "anonymous"
        self._wwhat = f'Cannot write to log "{self._name}"'
        self._rwhat = f'Cannot read from log "{self._name}"'
        loc = LogLocal()
        r = lib().shmkit_log_attach(seg.map_id, float(off), secrets.randbits(32) | 1, ctypes.addressof(loc))
        if r == EBADHDR_NEG:
            raise _bad(what, "its log header changed while it was read")
        check(r, "log_attach", what)
        seg._exported = True  # C keeps the address: unmap with tombstones, never under a call
        self._local = loc
        self._addr = ctypes.addressof(loc)
        self.capacity = capacity
        self.mode = MODES[mode]
        self.max_record = max_record
        self._data = off + data_offset
        self._buf = seg.buf
        f = fast()
        self._write = f.shmkit_log_write
        self._write_batch = f.shmkit_log_write_batch
        self._claim_fn = f.shmkit_log_claim
        self._finish_fn = f.shmkit_log_finish_claim
        self._claim = None
        self._read = f.shmkit_log_read
        self._read_batch = f.shmkit_log_read_batch
        self._consume = f.shmkit_log_consume
        self._out = (ctypes.c_uint32 * 4)()
        self._out_addr = ctypes.addressof(self._out)
        self._batch = (ctypes.c_uint32 * (4 * _BATCH))()
        self._batch_addr = ctypes.addressof(self._batch)
        try:
            self._check_counters(what)
        except BaseException:
            lib().shmkit_log_release(self._addr)
            raise
        return self

    def _check_counters(self, what: str) -> None:
        """L1/L2 on the shared counters (src/log.ts #checkCounters). The three words are loaded one
        by one while the reader and the writers may move them (clean, head, tail only move forward),
        so a snapshot that breaks L1 counts only if it holds still when loaded again."""
        seg, off = self._seg, self._off
        snap = None
        for _ in range(64):
            c = layout.load32(seg, off + 196)
            h = layout.load32(seg, off + 192)
            t = layout.load32(seg, off + 128)
            ok = not (t | h | c) & 7 and (t - h) & 0xFFFFFFFF <= self.capacity and (
                self.mode != "mpsc" or ((h - c) & 0xFFFFFFFF <= self.capacity and (t - c) & 0xFFFFFFFF <= self.capacity))
            if ok or snap == (t, h, c):
                break
            snap = (t, h, c)
        if (t | h | c) & 7:
            raise _bad(what, f"tail {t}, head {h} or clean {c} is not a multiple of 8 (L2)")
        if (t - h) & 0xFFFFFFFF > self.capacity:
            raise _bad(what, f"tail {t} is {(t - h) & 0xFFFFFFFF} bytes ahead of head {h} (L1)")
        if self.mode == "mpsc" and ((h - c) & 0xFFFFFFFF > self.capacity or (t - c) & 0xFFFFFFFF > self.capacity):
            raise _bad(what, f"clean {c} is impossible for head {h} and tail {t} (L1)")

    @staticmethod
    def byte_length(capacity: int, mode: str = "spsc") -> int:
        """Bytes a log occupies (for placing it inside a segment): 384 (+ 32 * 32 for mpsc) + capacity."""
        cap, m, _ = _check_options(capacity, mode, None, "Cannot size a log")
        return _data_offset(m) + cap

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, capacity: int, mode: str = "spsc",
             max_record: int | None = None, *, _initial_position: int = 0) -> "MessageLog":
        """Formats a log at ``byte_offset`` (a multiple of 64) of ``seg``; the segment stays the caller's."""
        what = f"Cannot initialize a log in {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        cap, m, mr = _check_options(capacity, mode, max_record, what)
        if isinstance(byte_offset, bool) or not isinstance(byte_offset, int) or byte_offset < 0 or byte_offset % 64:
            raise _einval(what, f"byteOffset {byte_offset} must be a non-negative multiple of 64")
        doff = _data_offset(m)
        length = doff + cap
        if byte_offset + length > seg.size:
            raise ShmError("ENOSPC", f"{what}: it needs {length} bytes at {byte_offset}, the segment has {seg.size} "
                           "(ENOSPC)")
        pos = _initial_position & 0xFFFFFFFF
        if pos & 7:
            raise _einval(what, f"initialPosition {pos} must be a multiple of 8")
        layout.write_header(seg, byte_offset, "log", doff, length, m)
        b = seg.buf
        b[byte_offset + 64:byte_offset + length] = bytes(length - 64)
        struct.pack_into("<5I", b, byte_offset + 64, cap, m, mr, doff, LOG_MPSC_SLOTS if m == 1 else 0)
        struct.pack_into("<I", b, byte_offset + 128, pos)
        struct.pack_into("<II", b, byte_offset + 192, pos, pos)
        layout.publish_ready(seg, byte_offset)
        return cls._new(seg, byte_offset, False, what)

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int) -> "MessageLog":
        """Attaches to the log at ``byte_offset`` of ``seg`` (validating its header)."""
        what = f"Cannot open the log at {byte_offset} of " \
               f"{'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        layout.read_header(seg, byte_offset, "log", what)
        return cls._new(seg, byte_offset, False, what)

    @classmethod
    def create(cls, name: str | None, capacity: int, mode: str = "spsc", max_record: int | None = None, *,
               file_mode: int = 0o600) -> "MessageLog":
        """Creates a named segment holding a new log (exclusive: EEXIST if the name is taken)."""
        cap, m, _ = _check_options(capacity, mode, max_record, f"Cannot create log {name!r}")
        seg = SharedMemory.create(name, _data_offset(m) + cap, mode=file_mode)
        try:
            r = cls.init(seg, 0, capacity, mode, max_record)
        except BaseException:
            if name is not None:
                seg.unlink()
            seg.close()
            raise
        r._owns = True
        return r

    @classmethod
    def open(cls, name: str) -> "MessageLog":
        """Opens the log a TypeScript or Python process created under ``name``."""
        seg = SharedMemory.open(name)
        try:
            what = f"Cannot open log {name!r}"
            layout.read_header(seg, 0, "log", what)
            return cls._new(seg, 0, True, what)
        except BaseException:
            seg.close()
            raise

    @classmethod
    def attach(cls, handle: dict) -> "MessageLog":
        """Reopens a log from its handle (``json.loads`` of a TypeScript ``log.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.log")
        try:
            what = f"Cannot attach log {handle.get('name')!r}"
            layout.read_header(seg, off, "log", what)
            return cls._new(seg, off, True, what)
        except BaseException:
            seg.close()
            raise

    # ---- errors ---------------------------------------------------------------------------------

    def _err(self, r: int, writing: bool) -> ShmError:
        what = self._wwhat if writing else self._rwhat
        if r == EBADHDR_NEG:
            return ShmError("EBADHDR", f'Log "{self._name}" is corrupt: a record header or its shared counters '
                            "break the layout's invariants (L1..L4) (EBADHDR)")
        if r == -errno_value("EBUSY"):
            if writing and self.mode == "mpsc":
                why = f"all {LOG_MPSC_SLOTS} writer slots are held by live processes"
            else:
                why = f"another live process (or another MessageLog object of this process) holds the " \
                      f"{'writer' if writing else 'reader'} role"
            return ShmError("EBUSY", f"{what}: {why} (EBUSY)", errno=-r)
        if r == -_errno.EINPROGRESS:
            return ShmError("EINVAL", f"{what}: a claim of this object is still open; commit or abort it first (EINVAL)")
        if r == -errno_value("EBADF") or self._closed:
            return ShmError("ECLOSED", f"{what}: it is closed (ECLOSED)")
        from ._lib import os_error

        return os_error(r, "log", what)

    # ---- writing --------------------------------------------------------------------------------

    def try_write(self, data: bytes | bytearray | memoryview | str, type: int = 0) -> bool:
        """Appends one record if there is room; never blocks. False when the log has no room now.
        ValueError for a payload longer than ``max_record`` or a type outside 0..65535."""
        if self._closed:
            raise ShmError("ECLOSED", f"{self._wwhat}: it is closed (ECLOSED)")
        b = _payload(data, self._wwhat)
        n = len(b)
        if n > self.max_record:
            raise ValueError(f"{self._wwhat}: a record of {n} bytes is longer than maxRecord {self.max_record}")
        if isinstance(type, bool) or not isinstance(type, int) or not 0 <= type <= MAX_TYPE:
            raise ValueError(f"{self._wwhat}: type must be an integer in 0..{MAX_TYPE}, got {type!r}")
        r = self._write(self._addr, b, n, type)
        if r < 0:
            raise self._err(r, True)
        return r == 1

    def _park(self, side: int, n: int, ms: float) -> int:
        r = lib().shmkit_log_park(self._addr, side, n, ms)
        if r < 0 and r != -errno_value("ETIMEDOUT") and r != -errno_value("EINTR"):
            raise self._err(r, side == 0)
        return r

    def write(self, data: bytes | bytearray | memoryview | str, type: int = 0, timeout: float | None = None) -> None:
        """Appends one record, waiting for room (spins briefly, then sleeps on a futex). ``timeout``
        in seconds (None: for good); ShmError ETIMEDOUT when it passes; Ctrl-C interrupts the wait."""
        ms = timeout_ms(timeout, self._wwhat)
        b = _payload(data, self._wwhat)
        if self.try_write(b, type):
            return
        wait_until(lambda: True if self.try_write(b, type) else None, lambda sl: self._park(0, len(b), sl),
                   self._wwhat, ms, _SPIN_MS, _PARK_SLICE_MS)

    def try_write_batch(self, items: Iterable[bytes | bytearray | memoryview | str], type: int = 0) -> int:
        """Appends as many of ``items`` (from the start) as fit, with one claim and one publish (one
        library call); never blocks. A batch never wraps around the end of the data area: it stops
        there and the next call goes on from the start. In mpsc the batch becomes visible at once.
        Returns how many were written (0 when there is no room). Every item is checked first:
        ValueError for one longer than ``max_record`` (or a bad type), TypeError for one that is
        not bytes-like or str, and then nothing is written."""
        if items.__class__ is not list and items.__class__ is not tuple:
            if isinstance(items, (bytes, bytearray, memoryview, str)):
                raise TypeError(f"{self._wwhat}: items must be a sequence of payloads, got a single "
                                f"{items.__class__.__name__}")
            items = list(items)
        count = len(items)
        if count == 0:
            return 0
        if self._closed:
            raise ShmError("ECLOSED", f"{self._wwhat}: it is closed (ECLOSED)")
        if isinstance(type, bool) or not isinstance(type, int) or not 0 <= type <= MAX_TYPE:
            raise ValueError(f"{self._wwhat}: type must be an integer in 0..{MAX_TYPE}, got {type!r}")
        # Fast path: bytes-like items joined as they are, their len()s packed as u32. C checks every
        # length against maxRecord and that they add up to the joined bytes (a memoryview of wider
        # items counts elements, not bytes): -EINVAL, nothing written, and the slow path below
        # sorts the items out and names the first bad one.
        try:
            data = b"".join(items)
            st = _LENS.get(count) or _lens_struct(count)
            lens = st.pack(*map(len, items))
        except (TypeError, struct.error):
            return self._write_batch_checked(items, count, type)
        r = self._write_batch(self._addr, data, len(data), lens, count, type)
        if r >= 0:
            return r
        if r == _EINVAL_NEG:
            return self._write_batch_checked(items, count, type)
        raise self._err(r, True)

    def _write_batch_checked(self, items: list | tuple, count: int, type: int) -> int:
        w = self._wwhat
        mr = self.max_record
        bs = []
        for x in items:  # the first bad item in order decides the error (as src/log.ts)
            b = _payload(x, w)
            if len(b) > mr:
                raise ValueError(f"{w}: a record of {len(b)} bytes is longer than maxRecord {mr}")
            bs.append(b)
        data = b"".join(bs)
        lens = array.array("I", map(len, bs))
        r = self._write_batch(self._addr, data, len(data), lens.buffer_info()[0], count, type)
        if r < 0:
            raise self._err(r, True)
        return r

    def try_claim(self, length: int, type: int = 0) -> "LogClaim | None":
        """Claims room for one record of up to ``length`` payload bytes to write in place; never
        blocks. Write into ``claim.data`` (a writable memoryview of exactly ``length`` bytes), then
        ``claim.commit(n)`` (n ≤ length, default all) or ``claim.abort()``; as a context manager the
        claim commits on a clean exit and aborts on an exception. None when there is no room now.
        One claim at a time per object: writes and other claims are ShmError EINVAL while one is
        open. A process that dies holding a claim never makes it visible: an mpsc reader skips it
        once the death is confirmed, an spsc writer that takes the role over starts before it."""
        w = self._wwhat
        if self._closed:
            raise ShmError("ECLOSED", f"{w}: it is closed (ECLOSED)")
        mr = self.max_record
        if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= mr:
            raise ValueError(f"{w}: a record of {length} bytes is longer than maxRecord {mr}")
        if isinstance(type, bool) or not isinstance(type, int) or not 0 <= type <= MAX_TYPE:
            raise ValueError(f"{w}: type must be an integer in 0..{MAX_TYPE}, got {type!r}")
        r = self._claim_fn(self._addr, length, type, self._out_addr)
        if r < 0:
            raise self._err(r, True)
        if r == 0:
            return None
        at = self._data + self._out[0]
        c = object.__new__(LogClaim)
        c._log = self
        c.data = self._buf[at:at + length]
        c.length = length
        c.type = type
        self._claim = c
        return c

    def _finish_claim(self, c: "LogClaim", length: int, abort: bool) -> None:
        self._claim = None
        c._drop()
        if self._closed:
            raise ShmError("ECLOSED", f"{self._wwhat}: it is closed (ECLOSED)")
        r = self._finish_fn(self._addr, length, 1 if abort else 0)
        if r < 0:
            raise self._err(r, True)

    # ---- reading --------------------------------------------------------------------------------

    def try_read(self) -> tuple[int, bytes] | None:
        """The next record as ``(type, payload)``, or None when the log is empty (or its next record
        is still being written); never blocks."""
        if self._closed:
            raise ShmError("ECLOSED", f"{self._rwhat}: it is closed (ECLOSED)")
        r = self._read(self._addr, self._out_addr)
        if r == 1:
            o = self._out
            at = self._data + o[0]
            return o[2], bytes(self._buf[at:at + o[1]])
        if r == 0:
            return None
        raise self._err(r, False)

    def read(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next record, waiting for one (see ``write``)."""
        ms = timeout_ms(timeout, self._rwhat)
        rec = self.try_read()
        if rec is not None:
            return rec
        return wait_until(self.try_read, lambda sl: self._park(1, 0, sl), self._rwhat, ms, _SPIN_MS, _PARK_SLICE_MS)

    def try_read_batch(self, fn: Callable[[int, bytes], Any], max: int | None = None) -> int:
        """Calls ``fn(type, payload)`` for the records that are there (up to ``max``, at most one lap
        of the data area) and publishes the head once per 256 records; never blocks. Returns how many
        were delivered. If ``fn`` raises, the records up to and including that one are consumed."""
        if self._closed:
            raise ShmError("ECLOSED", f"{self._rwhat}: it is closed (ECLOSED)")
        limit = -1 if max is None else max
        if max is not None and (isinstance(max, bool) or not isinstance(max, int) or max < 0):
            raise ValueError(f"{self._rwhat}: max must be a non-negative int or None, got {max!r}")
        k = 0
        lap = None
        out = self._batch
        buf = self._buf
        data = self._data
        while limit < 0 or k < limit:
            want = _BATCH if limit < 0 else min(_BATCH, limit - k)
            n = self._read_batch(self._addr, self._batch_addr, want)
            if n < 0:
                raise self._err(n, False)
            if n == 0:
                break
            if lap is None:
                lap = (out[3] - ((out[1] + RECORD_HEADER_SIZE + 7) & ~7)) & 0xFFFFFFFF
            i = 0
            try:
                while i < n:
                    j = 4 * i
                    at = data + out[j]
                    fn(out[j + 2], bytes(buf[at:at + out[j + 1]]))
                    i += 1
                    if self._closed:
                        return k + i
            except BaseException:
                if not self._closed:
                    self._consume(self._addr, out[4 * i + 3])  # this one counts as consumed
                raise
            k += n
            end = out[4 * (n - 1) + 3]
            self._consume(self._addr, end)
            if n < want or (end - lap) & 0xFFFFFFFF >= self.capacity:
                break
        return k

    def read_batch(self, fn: Callable[[int, bytes], Any], max: int | None = None,
                   timeout: float | None = None) -> int:
        """Like ``try_read_batch``, but waits for at least one record first."""
        ms = timeout_ms(timeout, self._rwhat)
        deadline = now_ms() + ms
        while True:
            n = self.try_read_batch(fn, max)
            if n > 0 or max == 0:
                return n
            rem = deadline - now_ms()
            if rem <= 0:
                raise timeout_error(self._rwhat, ms)
            self._park(1, 0, min(rem, _PARK_SLICE_MS))

    def __iter__(self):
        """Yields ``(type, payload)`` for every record there is now (stops when the log is empty)."""
        while True:
            rec = self.try_read()
            if rec is None:
                return
            yield rec

    # ---- asyncio --------------------------------------------------------------------------------

    async def _wait_async(self, side: int, n: int, attempt, what: str, timeout: float | None):
        return await wait_until_async(attempt, lambda sl: self._park(side, n, sl),
                                      lambda: ShmError("ECLOSED", f"{what}: it is closed (ECLOSED)") if self._closed
                                      else None, what, timeout_ms(timeout, what), _ASYNC_SLICE_MS)

    async def write_async(self, data: bytes | bytearray | memoryview | str, type: int = 0,
                          timeout: float | None = None) -> None:
        """Appends one record, waiting for room without blocking the event loop."""
        b = _payload(data, self._wwhat)
        await self._wait_async(0, len(b), lambda: True if self.try_write(b, type) else None, self._wwhat, timeout)

    async def read_async(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next record, waiting without blocking the event loop."""
        return await self._wait_async(1, 0, self.try_read, self._rwhat, timeout)

    def __aiter__(self):
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        return await self.read_async()

    # ---- state ------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes claimed and not yet consumed (a snapshot: tail - head)."""
        if self._closed:
            raise ShmError("ECLOSED", f'Cannot read the size of log "{self._name}": it is closed (ECLOSED)')
        r = lib().shmkit_log_size(self._addr)
        if r < 0:
            raise self._err(int(r), False)
        return int(r)

    def validate(self) -> None:
        """Checks L1..L3 from head to tail (tests, tools; not for the hot path), as src/log.ts
        ``validate``: ShmError EBADHDR naming the first invariant that does not hold. Records still
        being written (mpsc) end the walk."""
        if self._closed:
            raise ShmError("ECLOSED", f'Cannot validate log "{self._name}": it is closed (ECLOSED)')
        what = f'Log "{self._name}" is corrupt'
        self._check_counters(what)
        seg, off, cap = self._seg, self._off, self.capacity
        h = layout.load32(seg, off + 192)
        t = layout.load32(seg, off + 128)
        p = h
        steps = 0
        while p != t and steps <= cap // 8:
            o = p & (cap - 1)
            ln = layout.load32(seg, self._data + o)
            ty = struct.unpack_from("<I", self._buf, self._data + o + 4)[0]
            if ln == 0 or ln & IN_PROGRESS:
                return  # mpsc: being written
            rec = (ln + 7) & ~7
            ok_type = (ln & 7) == 0 if ty == TYPE_PAD else ty <= MAX_TYPE and ln <= RECORD_HEADER_SIZE + self.max_record
            if not ok_type or ln < RECORD_HEADER_SIZE or o + rec > cap or rec > (t - p) & 0xFFFFFFFF:
                raise _bad(what, f"record at position {p} has length {ln} and type {ty} (L3)")
            p = (p + rec) & 0xFFFFFFFF
            steps += 1

    def close(self) -> None:
        """Publishes what this reader consumed, releases the roles and participant slot and, if it
        owns its segment, unmaps it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._claim is not None:  # an open claim is given up (readers skip it): C aborts it
            self._claim._drop()
            self._claim = None
        if not self._seg.closed:
            lib().shmkit_log_release(self._addr)
        if self._owns:
            self._seg.close()

    def __repr__(self) -> str:
        return f"<shmkit.MessageLog {self._name!r} {self.mode} capacity={self.capacity}" \
               f"{' closed' if self._closed else ''}>"


class LogClaim:
    """A record claimed by ``MessageLog.try_claim``: write the payload into ``data`` (a writable
    memoryview of ``length`` bytes inside the log), then ``commit()`` or ``abort()``. As a context
    manager: commits on a clean exit (if still open), aborts on an exception."""

    __slots__ = ("_log", "data", "length", "type")

    _log: "MessageLog | None"
    data: memoryview
    length: int
    type: int

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("claims come from MessageLog.try_claim()")

    @property
    def open(self) -> bool:
        """True until committed or aborted (or the log closed)."""
        return self._log is not None

    def commit(self, length: int | None = None) -> None:
        """Publishes the record with ``length`` payload bytes (default: all claimed); the rest of
        the claim becomes padding. ValueError (the claim stays open) for a length outside
        0..``self.length``; ShmError EINVAL once committed or aborted."""
        log = self._log
        if log is None:
            raise ShmError("EINVAL", "Cannot commit a log claim: it was already committed or aborted (EINVAL)")
        n = self.length if length is None else length
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= self.length:
            raise ValueError(f"{log._wwhat}: commit length must be an integer in 0..{self.length}, got {length!r}")
        self._log = None
        log._finish_claim(self, n, False)

    def abort(self) -> None:
        """Gives the claimed space up (readers skip it). Does nothing once committed or aborted."""
        log = self._log
        if log is None:
            return
        self._log = None
        log._finish_claim(self, 0, True)

    def _drop(self) -> None:
        self._log = None
        try:
            self.data.release()  # writes after the commit would change a published record
        except BufferError:
            pass  # still exported (e.g. a numpy array over it): left to the caller

    def __enter__(self) -> "LogClaim":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._log is not None:
            if exc_type is None:
                self.commit()
            else:
                self.abort()

    def __repr__(self) -> str:
        return f"<shmkit.LogClaim {self.length} bytes type={self.type}{'' if self._log else ' finished'}>"
