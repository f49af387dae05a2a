"""Channel: zero-copy messages between processes (docs/layout/channel.md), the same object as the
TypeScript ``Channel`` (src/channel.ts): a Deno, Bun or Node process and a Python process send and
receive on one channel. Every operation is one call into csrc/ops_chan.c (a second implementation
of the layout's protocol, ready ring included)."""

from __future__ import annotations

import array
import asyncio
import ctypes
import json as _json
import secrets
import struct
from collections import deque
from typing import Any, Callable, Iterable

from . import layout
from . import _accel
from . import v8value
from ._lib import check, errno_value, fast, lib, os_error
from ._ops import ChanLocal, check_sizes
from ._placed import Placed, attach_handle, owning
from ._wait import now_ms, timeout_error, timeout_ms, wait_until, wait_until_async
from .errors import ShmError
from .ops_codes import EBADHDR_NEG
from .shared_memory import SharedMemory

__all__ = ["Channel", "Message", "Loan", "MODES"]

MODES = ("spsc", "mpmc", "spsc-ordered")  # the mode word: 0, 1, 2
HEADER_SIZE = 192
ENTRY_SIZE = 8
PROC_SIZE = 64
DATA_ALIGN = 4096
MAX_SLOTS = 2**24
MAX_SLOT_SIZE = 2**32 - 1
MAX_PROCS = 256
DEFAULT_PROCS = 64
RING_HEADER_SIZE = 384
MAX_RECV_RUN = 256  # src/channel.ts MAX_RECV_RUN
_SPIN_MS = 0.02  # as src/channel.ts SPIN_MS
_PARK_SLICE_MS = 50.0  # as src/channel.ts PARK_SLICE_MS
_BATCH = 256  # messages per C batch call
_EMPTY = memoryview(b"")
_INF = float("inf")
_HDR = struct.Struct("<IIIIQQQQQII")  # slots .. maxProcesses (offsets 64..127)
# Tag byte of a structured message (src/channel.ts FORMAT_V8 / FORMAT_JSC): V8's format (Deno, Node,
# and Python through shmkit.v8value) or JavaScriptCore's (Bun), which Python cannot read.
FORMAT_V8 = 0x56
FORMAT_JSC = 0x4A
_FORMAT_NAMES = {FORMAT_V8: "V8's format (Deno, Node)", FORMAT_JSC: "JavaScriptCore's format (Bun)"}


def read_value(data: Any) -> Any:
    """The value of a structured message (tag byte, then V8's serialization format): ShmError
    EINVAL for a message sendValue did not write or a malformed body, ENOTSUP for JavaScriptCore's
    format (Bun) or a value with no Python equivalent (see shmkit.v8value)."""
    what = "Cannot read a structured message"
    b = bytes(data)  # one copy: the block is shared memory another process may write
    if not b or b[0] not in _FORMAT_NAMES:
        raise ShmError("EINVAL", f"{what}: it was not sent by sendValue (EINVAL)")
    if b[0] != FORMAT_V8:
        raise ShmError("ENOTSUP", f"{what}: it is in {_FORMAT_NAMES[b[0]]}, which Python cannot read (ENOTSUP)")
    return v8value.loads(memoryview(b)[1:])


def _addr_of(data: bytes) -> int:
    """The address of a bytes object's buffer (valid while the object lives)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _ring_slots(capacity: int) -> int:
    n = 4
    while n < capacity:
        n *= 2
    return n


def _layout(slots: int, slot_size: int, procs: int) -> tuple[int, int, int, int, int]:
    """(blockStride, readyOffset, tableOffset, dataOffset, byteLength): src/channel.ts layoutOf."""
    stride = _align(slot_size, 64)
    ready = _align(HEADER_SIZE + PROC_SIZE * procs, 64)
    table = _align(ready + RING_HEADER_SIZE + 8 * _ring_slots(slots), 64)
    data = _align(table + ENTRY_SIZE * slots, DATA_ALIGN)
    return stride, ready, table, data, data + stride * slots


def _check_int(v: object, name: str, lo: int, hi: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{what}: {name} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _check_options(slots: object, slot_size: object, mode: object, procs: object, what: str
                   ) -> tuple[int, int, int, int]:
    """src/channel.ts checkOptions: the same limits and messages (RangeError -> ValueError)."""
    s = _check_int(slots, "slots", 1, MAX_SLOTS, what)
    z = _check_int(slot_size, "slotSize", 1, MAX_SLOT_SIZE, what)
    if mode not in MODES:
        raise TypeError(f'{what}: mode must be "spsc", "mpmc" or "spsc-ordered", got {mode!r}')
    p = _check_int(procs, "maxProcesses", 1, MAX_PROCS, what)
    return s, z, MODES.index(mode), p


class Message:
    """A received message: ``bytes`` (also ``buf``) is a read-only zero-copy memoryview of the
    shared block until ``release()`` (then it is empty). ``text()``, ``json()``, ``value()`` decode
    it; ``bytes(message)`` / ``tobytes()`` copy it. A context manager: ``with ch.recv() as m:``
    releases on exit. Release it promptly: the block is not reused until then (on spsc-ordered
    neither are the blocks sent after it; messages may still be released in any order).

    ``release()`` frees the block and empties this Message; it cannot detach a memoryview taken
    from ``bytes`` before (Python has no way to): such a view keeps pointing at the slot and may
    read a newer message once the slot is reused (never a crash; after the owning channel's
    ``close()`` it reads zeros). This is TypeScript's default ``detach: "close"``; its
    ``detach: "message"`` has no Python counterpart. Copy (``bytes(m)``) to keep the data."""

    __slots__ = ("_ch", "_index", "_len")

    def __init__(self, ch: "Channel", index: int, length: int):
        self._ch = ch
        self._index = index
        self._len = length

    @property
    def bytes(self) -> memoryview:
        """The message, zero-copy (read-only); empty after ``release()`` or the channel's close."""
        if self._len < 0 or self._ch._closed:
            return _EMPTY
        off = self._index * self._ch._stride
        return self._ch._rdata[off:off + self._len]

    buf = bytes

    @property
    def index(self) -> int:
        """The slot the message lies in."""
        return self._index

    def __len__(self) -> int:
        return self._len if self._len >= 0 and not self._ch._closed else 0

    def __bytes__(self) -> bytes:
        return self.bytes.tobytes()

    def tobytes(self) -> bytes:
        """A copy of the message."""
        return self.bytes.tobytes()

    def text(self, encoding: str = "utf-8") -> str:
        """The bytes decoded (UTF-8 by default), as TypeScript's ``message.text()``."""
        return str(self.bytes, encoding)

    def json(self) -> Any:
        """The bytes decoded as UTF-8 and parsed as JSON."""
        return _json.loads(str(self.bytes, "utf-8"))

    def value(self) -> Any:
        """The value a ``send_value`` (Python) or ``sendValue`` (Deno, Node) sent, decoded from V8's
        serialization format (see shmkit.v8value for the types). ShmError ENOTSUP when Bun sent
        it (JavaScriptCore's format) or it holds a value Python has no equivalent for; EINVAL when
        it was not sent by sendValue or is malformed."""
        return read_value(self.bytes)

    def release(self) -> None:
        """Returns the slot to the channel. Idempotent; a no-op after the channel's close (which
        returned it)."""
        if self._len < 0:
            return
        self._len = -1
        ch = self._ch
        if ch._closed:
            return
        r = ch._release1(self._index)
        if r < 0:
            raise ch._err(r, "release a slot of")

    def __enter__(self) -> "Message":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<shmkit.Message slot {self._index}, {len(self)} bytes{' released' if self._len < 0 else ''}>"


class Loan:
    """A block lent to a sender: write ``buf`` (a writable zero-copy memoryview of ``slot_size``
    bytes) in place, then ``send(length)`` or ``discard()``. As a context manager it discards an
    unsent loan on exit."""

    __slots__ = ("_ch", "_index", "_done")

    def __init__(self, ch: "Channel", index: int):
        self._ch = ch
        self._index = index
        self._done = False

    @property
    def buf(self) -> memoryview:
        """The whole slot, writable; empty after ``send()`` or ``discard()``."""
        if self._done or self._ch._closed:
            return _EMPTY
        off = self._index * self._ch._stride
        return self._ch._wdata[off:off + self._ch.slot_size]

    bytes = buf

    def send(self, length: int) -> None:
        """Publishes the first ``length`` bytes as one message."""
        ch = self._ch
        if self._done:
            raise ShmError("EINVAL", "Cannot send a loan: it was already sent or discarded (EINVAL)")
        if ch._closed:
            raise ch._closed_error("send on")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"Cannot send a loan of {ch._what}: length must be an integer in 0..{ch.slot_size}, "
                             f"got {length!r}")
        if length > ch.slot_size:
            raise ch._too_big(length)
        self._done = True
        r = lib().shmkit_chan_queue(ch._addr, self._index, length)
        if r < 0:
            raise ch._err(r, "send on")

    def discard(self) -> None:
        """Gives the block back unsent. Idempotent."""
        if self._done:
            return
        self._done = True
        ch = self._ch
        if ch._closed:
            return
        r = lib().shmkit_chan_unloan(ch._addr, self._index)
        if r < 0:
            raise ch._err(r, "give back a slot of")

    def __enter__(self) -> "Loan":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.discard()


class Channel(Placed):
    """Zero-copy messages between processes of any language following docs/layout/channel.md:
    ``slots`` fixed-size blocks, a slot table claimed by compare-and-swap, and a ring of ready
    blocks, in one shared object.

    Role contract (as in TypeScript): ``mpmc`` (default) any number of processes (and Channel
    objects, up to ``max_processes`` at once) send and receive; ``spsc`` one sending and one
    receiving process at a time (others get ``ShmError`` ``EBUSY``); ``spsc-ordered`` one of each
    too, blocks used and recycled in ring order (docs/layout/channel.md mode 2: a message held
    unreleased keeps the blocks after it from reuse, loans are published in the order taken, a
    killed receiver's unreleased messages are delivered again, ``reclaim()`` is 0). ``send`` blocks
    while every slot is in use; ``recv`` waits while the channel is empty; Ctrl-C interrupts either
    (KeyboardInterrupt). A process killed anywhere in a send, receive or release does not leak its
    slots: a sender that finds the channel full reclaims them (also ``reclaim()``). Messages already
    queued outlive their sender. One Channel object belongs to one thread at a time.
    """

    _kind = "channel"

    slots: int
    slot_size: int
    mode: str
    max_processes: int

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use Channel.create(), open(), attach(), at() or init()")

    # ---- placement ------------------------------------------------------------------------------

    @classmethod
    def _new(cls, seg: SharedMemory, off: int, owns: bool, populate: bool = True, recv_run: int = 1) -> "Channel":
        check_sizes()
        name = "(anonymous)" if seg.name is None else seg.name
        what_obj = f'channel "{name}"' + (f" at {off}" if off else "")
        what = f"Cannot open {what_obj}"
        h = layout.read_header(seg, off, "channel", what, min_bytes=HEADER_SIZE)

        def bad(why: str) -> ShmError:
            return ShmError("EBADHDR", f"{what}: {why} (EBADHDR)")

        if isinstance(recv_run, bool) or not isinstance(recv_run, int) or not 1 <= recv_run <= MAX_RECV_RUN:
            raise ValueError(f"{what}: recvRun must be an integer in 1..{MAX_RECV_RUN}, got {recv_run!r}")
        if h.header_size != HEADER_SIZE:
            raise bad(f"header size {h.header_size}, expected {HEADER_SIZE} (channel layout 2; layout 1 had 128)")
        # Read each field once, validate before using any (src/channel.ts constructor).
        slots, slot_size, mode, esize, stride, procs_off, ready, table, data, _rec, procs = \
            _HDR.unpack_from(seg.buf, off + 64)
        if not 1 <= slots <= MAX_SLOTS:
            raise bad(f"impossible slot count {slots}")
        if slot_size < 1:
            raise bad("slot size 0")
        if mode > 2:
            raise bad(f"unknown mode {mode}")
        if not 1 <= procs <= MAX_PROCS:
            raise bad(f"impossible participant count {procs}")
        if esize != ENTRY_SIZE:
            raise bad(f"slot table entry size {esize}, expected {ENTRY_SIZE}")
        lay = _layout(slots, slot_size, procs)
        if h.byte_length != lay[4]:
            raise bad(f"byteLength {h.byte_length} does not match {slots} slots of {slot_size} bytes ({lay[4]})")
        if off + lay[4] > seg.size:
            raise bad(f"{lay[4]} bytes at {off} do not fit the segment")
        if (stride, procs_off, ready, table, data) != (lay[0], HEADER_SIZE, lay[1], lay[2], lay[3]):
            raise bad("its block stride or participant, ring, table or data offsets do not match its sizes")
        layout.read_header(seg, off + ready, "ring", f"{what}: its ready ring", min_bytes=RING_HEADER_SIZE)
        loc = ChanLocal()
        r = lib().shmkit_chan_attach(seg.map_id, float(off), secrets.randbits(32) | 1, ctypes.addressof(loc))
        if r == EBADHDR_NEG:
            rm = struct.unpack_from("<II", seg.buf, off + ready + 64)
            raise bad(f"its ready ring is not {'mpmc' if mode == 1 else 'spsc'} of {slots} (capacity {rm[0]}, {rm[1]} "
                      "slots), or its header changed while it was read")
        check(r, "chan_attach", what)
        scratch = None
        if mode == 2:  # spsc-ordered keeps per-block state (held, released, loans) in memory this object owns
            need = lib().shmkit_chan_scratch(ctypes.addressof(loc), None, 0.0)
            check(need, "chan_scratch", what)
            scratch = (ctypes.c_uint8 * need)()
            check(lib().shmkit_chan_scratch(ctypes.addressof(loc), ctypes.addressof(scratch), float(need)),
                  "chan_scratch", what)
        seg._exported = True  # C keeps the address: unmap with tombstones, never under a call
        self = object.__new__(cls)
        self._seg, self._off, self._owns, self._closed = seg, off, owns, False
        self._what = what_obj
        self._swhat = f"Cannot send on {what_obj}"
        self._rwhat = f"Cannot receive on {what_obj}"
        self._lwhat = f"Cannot loan a slot of {what_obj}"
        self._local = loc
        self._scratch = scratch  # kept alive as long as the local that points at it
        self._addr = ctypes.addressof(loc)
        self.slots = slots
        self.slot_size = slot_size
        self.mode = MODES[mode]
        self.max_processes = procs
        self.byte_length = lay[4]
        self._stride = lay[0]
        self._wdata = seg.view(off + data, lay[0] * slots)  # every block, writable (loans)
        self._rdata = self._wdata.toreadonly()  # messages are read-only views of it
        f = fast()
        self._send1 = _accel.bound("shmkit_chan_send", _accel.SEND, loc)  # int32 fn(local, data, n)
        self._recv_batch = f.shmkit_chan_recv_batch
        self._send_batch = f.shmkit_chan_send_batch
        self._release_batch = f.shmkit_chan_release_batch
        self._recv1 = _accel.bound("shmkit_chan_recv", _accel.DEQUEUE1, loc)  # int64 fn(local)
        self._release1 = _accel.bound("shmkit_chan_release", _accel.PUT, loc)  # int32 fn(local, int32)
        self._eagain = -errno_value("EAGAIN")
        self._pending: deque = deque()  # (index, length) claimed by a batch and not handed out yet
        self._batch = (ctypes.c_uint32 * (2 * _BATCH))()
        self._batch_addr = ctypes.addressof(self._batch)
        self._run = min(recv_run, slots) if mode == 0 else 1  # recv_run: spsc only, as TypeScript
        if populate:  # prefault the channel's pages in this process (best effort), as TypeScript does
            lib().shmkit_madvise(seg.map_id, float(off), float(lay[4]), 1)
        return self

    @staticmethod
    def byte_length_of(slots: int, slot_size: int, max_processes: int = DEFAULT_PROCS) -> int:
        """Bytes a channel with these options occupies (for placing one inside a larger segment)."""
        s, z, _, p = _check_options(slots, slot_size, "mpmc", max_processes, "Cannot size a channel")
        return _layout(s, z, p)[4]

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, slots: int, slot_size: int, mode: str = "mpmc",
             max_processes: int = DEFAULT_PROCS, *, populate: bool = True, recv_run: int = 1) -> "Channel":
        """Formats a channel at ``byte_offset`` (a multiple of 64) of ``seg`` (overwriting what is
        there) and attaches to it; the segment stays the caller's."""
        what = f"Cannot create a channel in {'anonymous memory' if seg.name is None else repr(seg.name)}"
        s, z, m, p = _check_options(slots, slot_size, mode, max_processes, what)
        if isinstance(byte_offset, bool) or not isinstance(byte_offset, int) or byte_offset < 0 or byte_offset % 64:
            raise ValueError(f"{what}: byteOffset {byte_offset!r} must be a non-negative multiple of 64")
        stride, ready, table, data, length = _layout(s, z, p)
        if byte_offset + length > seg.size:
            raise ValueError(f"{what}: {length} bytes at {byte_offset} do not fit in {seg.size} bytes")
        if seg.read_only:
            raise ShmError("EINVAL", f"{what}: the segment is read-only (EINVAL)")
        off = byte_offset
        layout.write_header(seg, off, "channel", HEADER_SIZE, length, m)
        ctypes.memset(seg.address + off + 64, 0, data - 64)  # header fields, participants, ring, table
        _HDR.pack_into(seg.buf, off + 64, s, z, m, ENTRY_SIZE, stride, HEADER_SIZE, ready, table, data, 0, p)
        rmode = 3 if m == 1 else 0  # the ready ring: mpmc for mpmc, else spsc
        n = _ring_slots(s)
        layout.write_header(seg, off + ready, "ring", RING_HEADER_SIZE, RING_HEADER_SIZE + 8 * n, rmode)
        check(lib().shmkit_ring_format(seg.map_id, float(off + ready), s, rmode, 0), "ring_format", what)
        layout.publish_ready(seg, off + ready)
        layout.publish_ready(seg, off)  # C1: every block FREE; everything above is visible
        return cls._new(seg, off, False, populate, recv_run)

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int, *, populate: bool = True, recv_run: int = 1) -> "Channel":
        """Attaches to the channel at ``byte_offset`` of ``seg``, validating it; does not own the segment."""
        return cls._new(seg, byte_offset, False, populate, recv_run)

    @classmethod
    def create(cls, name: str | None, slots: int, slot_size: int, mode: str = "mpmc",
               max_processes: int = DEFAULT_PROCS, *, file_mode: int = 0o600, populate: bool = True,
               recv_run: int = 1) -> "Channel":
        """Creates a named channel exclusively (EEXIST if the name is taken); ``mode`` "mpmc"
        (default), "spsc" or "spsc-ordered"."""
        s, z, _, p = _check_options(slots, slot_size, mode, max_processes, f"Cannot create channel {_json.dumps(name)}")
        seg = SharedMemory.create(name, _layout(s, z, p)[4], mode=file_mode)
        return owning(seg, lambda: cls.init(seg, 0, s, z, mode, p, populate=populate, recv_run=recv_run),
                      name is not None)

    @classmethod
    def open(cls, name: str, *, populate: bool = True, recv_run: int = 1) -> "Channel":
        """Opens the channel a TypeScript or Python process created under ``name``."""
        seg = SharedMemory.open(name)
        return owning(seg, lambda: cls._new(seg, 0, False, populate, recv_run), False)

    @classmethod
    def attach(cls, handle: dict, *, populate: bool = True, recv_run: int = 1) -> "Channel":
        """Reopens a channel from its handle (``json.loads`` of a TypeScript ``channel.handle()``)."""
        seg, off = attach_handle(handle, "shmkit.channel")
        return owning(seg, lambda: cls._new(seg, off, False, populate, recv_run), False)

    # ---- errors ---------------------------------------------------------------------------------

    def _closed_error(self, doing: str = "use") -> ShmError:
        return ShmError("ECLOSED", f"Cannot {doing} {self._what}: it is closed (ECLOSED)")

    def _too_big(self, n: int) -> ValueError:
        return ValueError(f"Cannot send on {self._what}: the message is {n} bytes, longer than the slot size of "
                          f"{self.slot_size} bytes")

    def _err(self, r: int, doing: str) -> ShmError:
        what = f"Cannot {doing} {self._what}"
        if r == EBADHDR_NEG:
            return ShmError("EBADHDR", f"{what}: a slot index, slot state, length or the ready ring breaks the "
                            "layout's invariants; the segment is corrupt (EBADHDR)")
        if r == -errno_value("EBUSY"):
            if self._local.p < 0 and self.mode != "spsc-ordered":
                why = f"all {self.max_processes} participant entries are held by live Channel objects"
            else:
                side = "sending" if doing.startswith(("send", "loan")) else "receiving"
                why = f"another live process (or another Channel object of this process) is the {side} side of " \
                      f"this {self.mode} channel"
            return ShmError("EBUSY", f"{what}: {why} (EBUSY)", errno=-r)
        if r == -errno_value("EBADF") or self._closed:
            return self._closed_error(doing)
        return os_error(r, "channel", what)

    # ---- sending --------------------------------------------------------------------------------

    def _data(self, data: object) -> Any:
        """A payload as something the send call takes in place: bytes as is, str as UTF-8, any
        C-contiguous buffer as a byte memoryview of it (others through one copy)."""
        if isinstance(data, str):
            return data.encode("utf-8")
        try:
            mv = memoryview(data)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(f"{self._swhat}: data must be bytes, bytearray, memoryview (any buffer) or str, got "
                            f"{type(data).__name__}") from None
        return mv.cast("B") if mv.c_contiguous else mv.tobytes()

    def try_send(self, data: bytes | bytearray | memoryview | str) -> bool:
        """Sends a copy of ``data`` (bytes or any buffer; a str as UTF-8) if a slot is free now.
        False when every slot is in use. ValueError when it is longer than ``slot_size``."""
        if self._closed:
            raise self._closed_error("send on")
        if type(data) is not bytes:
            data = self._data(data)
        if len(data) > self.slot_size:
            raise self._too_big(len(data))
        r = self._send1(data)
        if r < 0:
            raise self._err(r, "send on")
        return r == 1

    def _park(self, side: int, ms: float) -> int:
        r = lib().shmkit_chan_park(self._addr, side, ms)
        if r < 0 and r != -errno_value("ETIMEDOUT") and r != -errno_value("EINTR"):
            raise self._err(r, "send on" if side == 0 else "receive on")
        return r

    def send(self, data: bytes | bytearray | memoryview | str, timeout: float | None = None) -> None:
        """Sends a copy of ``data``, waiting while the channel is full (slots of dead processes are
        reclaimed meanwhile). ``timeout`` in seconds (None: for good): ShmError ETIMEDOUT."""
        ms = timeout_ms(timeout, self._swhat) if timeout is not None else _INF
        if self._closed:
            raise self._closed_error("send on")
        if type(data) is not bytes:
            data = self._data(data)
        if len(data) > self.slot_size:
            raise self._too_big(len(data))
        r = self._send1(data)
        if r == 1:
            return
        if r < 0:
            raise self._err(r, "send on")
        wait_until(lambda: True if self.try_send(data) else None, lambda sl: self._park(0, sl), self._swhat, ms,
                   _SPIN_MS, _PARK_SLICE_MS)

    def _value_data(self, value: Any) -> bytes:
        data = bytes((FORMAT_V8,)) + v8value.dumps(value)
        if len(data) > self.slot_size:
            raise self._too_big(len(data))
        return data

    def try_send_value(self, value: Any) -> bool:
        """Sends a structured value (None, bool, int, float, str, list, tuple, dict, set, datetime,
        bytes, array.array, shared references and cycles: see shmkit.v8value) if a slot is free now,
        in V8's serialization format behind the tag byte "V", as TypeScript's ``trySendValue`` on
        Deno and Node: their ``message.value()`` reads it (as Map, Set, Date, Uint8Array, ...), and so
        does ``Message.value()``; Bun's reports ENOTSUP (it reads JavaScriptCore's format only).
        False when every slot is in use; ValueError when it does not fit a slot; TypeError for a
        type with no JavaScript equivalent."""
        if self._closed:
            raise self._closed_error("send on")
        return self.try_send(self._value_data(value))

    def send_value(self, value: Any, timeout: float | None = None) -> None:
        """Sends a structured value (see ``try_send_value``), waiting while the channel is full."""
        if self._closed:
            raise self._closed_error("send on")
        self.send(self._value_data(value), timeout)

    def _batch_args(self, items: Iterable[bytes | bytearray | memoryview | str]) -> tuple[bytes, list[int]]:
        """The items as one byte string and their lengths (checked against the slot size before
        anything is sent)."""
        items = items if type(items) is list else list(items)
        if items and set(map(type, items)) != {bytes}:
            items = [x if type(x) is bytes else self._data(x) for x in items]
        lens = list(map(len, items))
        if lens:
            big = max(lens)
            if big > self.slot_size:
                raise self._too_big(big)
        return b"".join(items), lens

    def _send_from(self, data: bytes, lens: list[int], la: Any, sent: int, off: int) -> int:
        """One library call: sends items sent.. while slots are free; how many it sent."""
        r = self._send_batch(self._addr, _addr_of(data) + off, float(len(data) - off),
                             la.buffer_info()[0] + 4 * sent, len(lens) - sent)
        if r < 0:
            raise self._err(r, "send on")
        return r

    def try_send_batch(self, items: Iterable[bytes | bytearray | memoryview | str]) -> int:
        """Sends as many of ``items`` (from the start, in order) as there are free slots now; returns
        how many. One library call for the whole batch (one queue bracket and one ready-ring burst
        per 256 messages). ValueError, before anything is sent, when an item is longer than
        ``slot_size``."""
        if self._closed:
            raise self._closed_error("send on")
        data, lens = self._batch_args(items)
        if not lens:
            return 0
        la = array.array("I", lens)
        return self._send_from(data, lens, la, 0, 0)

    def send_batch(self, items: Iterable[bytes | bytearray | memoryview | str], timeout: float | None = None
                   ) -> None:
        """Sends every item in order, waiting while the channel is full; ``timeout`` for the whole
        call (ETIMEDOUT: the items before the one it waited for were sent). Items go out in bursts
        of as many as there are free slots, one library call each."""
        ms = timeout_ms(timeout, self._swhat)
        deadline = now_ms() + ms
        if self._closed:
            raise self._closed_error("send on")
        data, lens = self._batch_args(items)
        n = len(lens)
        la = array.array("I", lens)
        sent = off = 0
        while sent < n:
            k = self._send_from(data, lens, la, sent, off)
            off += sum(lens[sent:sent + k])
            sent += k
            if sent == n:
                return
            rem = deadline - now_ms()
            if rem <= 0:
                raise timeout_error(self._swhat, ms)
            self.send(data[off:off + lens[sent]], timeout=rem / 1000.0)  # waits for a free slot
            off += lens[sent]
            sent += 1

    def try_loan(self) -> Loan | None:
        """Lends a free slot to write a message in place (``loan.buf``, then ``loan.send(n)``), or
        None when every slot is in use."""
        if self._closed:
            raise self._closed_error("loan a slot of")
        r = lib().shmkit_chan_take(self._addr)
        if r >= 0:
            return Loan(self, r)
        if r == self._eagain:
            return None
        raise self._err(r, "loan a slot of")

    def loan(self, timeout: float | None = None) -> Loan:
        """Lends a free slot, waiting while the channel is full."""
        ms = timeout_ms(timeout, self._lwhat)
        ln = self.try_loan()
        if ln is not None:
            return ln
        return wait_until(self.try_loan, lambda sl: self._park(0, sl), self._lwhat, ms, _SPIN_MS, _PARK_SLICE_MS)

    # ---- receiving ------------------------------------------------------------------------------

    def _take_run(self) -> tuple[int, int] | None:
        """recv_run > 1: claims a run of up to recv_run queued messages (one bracket, one ring
        publish) and hands out the first; the rest wait in _pending."""
        k = self._recv_batch(self._addr, self._batch_addr, self._run)
        if k < 0:
            raise self._err(k, "receive on")
        if k == 0:
            return None
        out = self._batch
        if k > 1:
            rest = iter(out[2:2 * k])  # C-level: one list of ints, paired by zip
            self._pending.extend(zip(rest, rest))
        return out[0], out[1]

    def _next(self) -> tuple[int, int] | None:
        """The next claimed (index, length), or None when the channel is empty."""
        if self._pending:
            return self._pending.popleft()
        if self._run > 1:
            return self._take_run()
        r = self._recv1()
        if r >= 0:
            return r & 0xFFFFFF, r >> 24
        if r == self._eagain:
            return None
        raise self._err(r, "receive on")

    def try_recv(self) -> Message | None:
        """The next message (``release()`` it when done), or None when the channel is empty.
        EBADHDR for a corrupt slot index or length, or an index the ready ring holds twice."""
        if self._closed:
            raise self._closed_error("receive on")
        if not self._pending:
            if self._run > 1:
                nx = self._take_run()
                return None if nx is None else Message(self, nx[0], nx[1])
            r = self._recv1()  # the fast path inlined
            if r >= 0:
                return Message(self, r & 0xFFFFFF, r >> 24)
            if r == self._eagain:
                return None
            raise self._err(r, "receive on")
        nx = self._pending.popleft()
        return Message(self, nx[0], nx[1])

    def recv(self, timeout: float | None = None) -> Message:
        """The next message, waiting while the channel is empty (spins ~20 us, then sleeps on the
        ready ring). ``timeout`` in seconds (None: for good); Ctrl-C interrupts the wait."""
        if not self._closed:
            if self._pending:  # the rest of a receive run (recv_run) or of an interrupted batch
                nx = self._pending.popleft()
                return Message(self, nx[0], nx[1])
            if self._run == 1:
                r = self._recv1()  # the fast path inlined (one Python call less per message)
                if r >= 0:
                    return Message(self, r & 0xFFFFFF, r >> 24)
                if r != self._eagain:
                    raise self._err(r, "receive on")
            else:
                nx = self._take_run()
                if nx is not None:
                    return Message(self, nx[0], nx[1])
        ms = timeout_ms(timeout, self._rwhat) if timeout is not None else _INF
        m = self.try_recv()
        if m is not None:
            return m
        return wait_until(self.try_recv, lambda sl: self._park(1, sl), self._rwhat, ms, _SPIN_MS, _PARK_SLICE_MS)

    def _target(self, target: Any) -> memoryview:
        try:
            mv = memoryview(target).cast("B")
        except (TypeError, ValueError):
            mv = None
        if mv is None or mv.readonly or mv.nbytes < self.slot_size:
            raise ValueError(f"{self._rwhat}: the target must be a writable buffer of at least the slot size "
                             f"{self.slot_size} bytes")
        return mv

    def _copy_out(self, nx: tuple[int, int], mv: memoryview) -> int:
        i, n = nx
        off = i * self._stride
        mv[:n] = self._rdata[off:off + n]
        r = self._release1(i)
        if r < 0:
            raise self._err(r, "release a slot of")
        return n

    def try_recv_into(self, target: Any) -> int | None:
        """Copies the next message into ``target`` (a writable buffer of at least ``slot_size``
        bytes) and releases its slot at once: the message length, or None when the channel is empty."""
        if self._closed:
            raise self._closed_error("receive on")
        mv = self._target(target)
        nx = self._next()
        return None if nx is None else self._copy_out(nx, mv)

    def recv_into(self, target: Any, timeout: float | None = None) -> int:
        """As ``try_recv_into``, waiting while the channel is empty."""
        ms = timeout_ms(timeout, self._rwhat)
        if self._closed:
            raise self._closed_error("receive on")
        mv = self._target(target)
        nx = self._next() or wait_until(self._next, lambda sl: self._park(1, sl), self._rwhat, ms, _SPIN_MS,
                                        _PARK_SLICE_MS)
        return self._copy_out(nx, mv)

    def try_recv_batch(self, fn: Callable[[memoryview], Any], max: int | None = None) -> int:
        """Calls ``fn(view)`` for every message queued now (up to ``max``), in order, and releases
        each slot after its call: one library call per burst of up to 256 messages and one for their
        release. ``view`` is a read-only zero-copy memoryview valid only during the call. If ``fn``
        raises, that message counts as received and the rest of the burst stays for the next
        receive; if ``fn`` closes the channel, the rest of the burst is dropped (its blocks are
        freed, as a TypeScript receive run's are by ``close()``). Returns how many messages were
        handed to ``fn``."""
        if self._closed:
            raise self._closed_error("receive on")
        if max is not None and (isinstance(max, bool) or not isinstance(max, int) or max < 1):
            raise ValueError(f"{self._rwhat}: max must be a positive integer, got {max!r}")
        limit = self.slots if max is None else min(max, self.slots)
        done = 0
        rdata, stride = self._rdata, self._stride
        while self._pending and done < limit and not self._closed:  # the rest of a burst an earlier fn interrupted
            i, n = self._pending.popleft()
            try:
                fn(rdata[i * stride:i * stride + n])
            finally:
                if not self._closed:
                    r = self._release1(i)
                    if r < 0:
                        raise self._err(r, "release a slot of")
            done += 1
        out = self._batch
        while done < limit and not self._closed:  # fn may close the channel
            want = min(_BATCH, limit - done)
            k = self._recv_batch(self._addr, self._batch_addr, want)
            if k < 0:
                raise self._err(k, "receive on")  # messages handed out before stay received
            if k == 0:
                break
            j = 0
            try:
                while j < k and not self._closed:  # close() in fn freed the rest of the burst
                    i, n = out[2 * j], out[2 * j + 1]
                    j += 1
                    fn(rdata[i * stride:i * stride + n])
            finally:
                if not self._closed:
                    for q in range(j, k):  # fn raised: the rest stays claimed, handed out next time
                        self._pending.append((out[2 * q], out[2 * q + 1]))
                    r = self._release_batch(self._addr, self._batch_addr, j)
                    if r < 0:
                        raise self._err(r, "release a slot of")
            done += j
            if k < want:
                break
        return done

    def recv_batch(self, fn: Callable[[memoryview], Any], max: int | None = None, timeout: float | None = None
                   ) -> int:
        """As ``try_recv_batch``, waiting while the channel is empty: returns once at least one
        message was handed to ``fn``."""
        ms = timeout_ms(timeout, self._rwhat)
        n = self.try_recv_batch(fn, max)
        if n > 0:
            return n
        return wait_until(lambda: self.try_recv_batch(fn, max) or None, lambda sl: self._park(1, sl), self._rwhat, ms,
                          _SPIN_MS, _PARK_SLICE_MS)

    def __iter__(self):
        """Yields the messages queued now (stops when the channel is empty); release each."""
        while True:
            m = self.try_recv()
            if m is None:
                return
            yield m

    # ---- asyncio --------------------------------------------------------------------------------

    async def _wait_async(self, side: int, attempt: Callable[[], Any], what: str, timeout: float | None) -> Any:
        return await wait_until_async(attempt, lambda sl: self._park(side, sl),
                                      lambda: ShmError("ECLOSED", f"{what}: it was closed (ECLOSED)") if self._closed
                                      else None, what, timeout_ms(timeout, what), _PARK_SLICE_MS)

    async def send_async(self, data: bytes | bytearray | memoryview | str, timeout: float | None = None) -> None:
        """Sends a copy of ``data``, waiting without blocking the event loop while the channel is full."""
        if type(data) is not bytes:
            data = self._data(data)
        if len(data) > self.slot_size:
            raise self._too_big(len(data))
        await self._wait_async(0, lambda: True if self.try_send(data) else None, self._swhat, timeout)

    async def send_value_async(self, value: Any, timeout: float | None = None) -> None:
        """Sends a structured value (see ``try_send_value``) without blocking the event loop."""
        if self._closed:
            raise self._closed_error("send on")
        await self.send_async(self._value_data(value), timeout)

    async def loan_async(self, timeout: float | None = None) -> Loan:
        """Lends a free slot, waiting without blocking the event loop."""
        return await self._wait_async(0, self.try_loan, self._lwhat, timeout)

    async def recv_async(self, timeout: float | None = None) -> Message:
        """The next message, waiting without blocking the event loop."""
        return await self._wait_async(1, self.try_recv, self._rwhat, timeout)

    async def recv_batch_async(self, fn: Callable[[memoryview], Any], max: int | None = None,
                               timeout: float | None = None) -> int:
        """As ``recv_batch`` without blocking the event loop."""
        return await self._wait_async(1, lambda: self.try_recv_batch(fn, max) or None, self._rwhat, timeout)

    def __aiter__(self):
        return self

    async def __anext__(self) -> Message:
        """``async for m in channel``: receives until the channel is closed."""
        if self._closed:
            raise StopAsyncIteration
        try:
            return await self.recv_async()
        except ShmError as e:
            if self._closed and e.code == "ECLOSED":
                raise StopAsyncIteration from None
            raise

    # ---- recovery, state, lifetime --------------------------------------------------------------

    def reclaim(self) -> int:
        """Returns every slot whose owner died (loaned to or held by a dead process, or queued and
        left outside the ready ring by a process killed mid-send or mid-receive) and frees dead
        processes' participant entries; how many slots were reclaimed. Always 0 on spsc-ordered
        (nothing to reclaim: a dead sender published nothing, a dead receiver's messages stay queued)."""
        if self._closed:
            raise self._closed_error("reclaim slots of")
        r = lib().shmkit_chan_reclaim(self._addr)
        if r < 0:
            raise self._err(r, "reclaim slots of")
        return r

    def __len__(self) -> int:
        """Messages queued now and not yet received (a snapshot)."""
        if self._closed:
            raise self._closed_error("read")
        r = lib().shmkit_chan_size(self._addr)
        if r < 0:
            raise self._err(r, "read")
        return min(r + len(self._pending), self.slots)

    @property
    def size(self) -> int:
        return len(self)

    @property
    def available(self) -> int:
        """Slots free for sending now (a snapshot)."""
        if self._closed:
            raise self._closed_error("read")
        r = lib().shmkit_chan_available(self._addr)
        if r < 0:
            raise self._err(r, "read")
        return r

    def close(self) -> None:
        """Returns the slots of every message and loan this object still holds (and of messages a
        batch claimed and did not hand out), frees its participant entry and, if it owns its
        segment, unmaps it (views handed out then read zeros). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        if not self._seg.closed:
            lib().shmkit_chan_close(self._addr)
        if self._owns:
            self._seg.close()

    def __repr__(self) -> str:
        return f"<shmkit.Channel {self._what} {self.mode} slots={self.slots} slot_size={self.slot_size}" \
               f"{' closed' if self._closed else ''}>"
