"""The common 64-byte header every structured shmkit object starts with (docs/layout/00_common.md,
src/layout.ts), and the atomic helpers the Python classes use on mapped words.

``read_header`` validates exactly like src/layout.ts ``readHeader``: offset a non-negative multiple
of 64 (EINVAL), then magic, layoutVersion, kind, state == 1 (waiting up to ``ready_timeout`` s),
64 <= headerSize <= byteLength, offset + byteLength <= segment size, byteLength >= the kind's
fixed size (EBADHDR for each).
"""

from __future__ import annotations

import ctypes
import struct
import time
from dataclasses import dataclass

from . import _sys
from ._lib import lib
from .errors import ShmError

MAGIC = 0x4B4D4853
LAYOUT_VERSION = 1
COMMON_HEADER_SIZE = 64
OBJECT_ALIGN = 64
KIND = {"ring": 1, "mempool": 2, "channel": 3, "mutex": 4, "semaphore": 5, "condition": 6, "array": 7, "log": 8,
        "heap": 9}
KIND_NAME = {v: k for k, v in KIND.items()}
HDR = {"magic": 0, "layoutVersion": 4, "kind": 6, "state": 8, "headerSize": 12, "byteLength": 16,
       "creatorPid": 24, "flags": 28, "creatorStart": 32, "createdMs": 40}
STATE_INIT = 0
STATE_READY = 1

SEQ_CST = 5
ACQUIRE = 2
RELEASE = 3
RELAXED = 0

_HDR_FMT = struct.Struct("<IHHIIQIIQd")  # magic .. createdMs (48 bytes)


def align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass
class CommonHeader:
    kind: str
    layout_version: int
    state: int
    header_size: int
    byte_length: int
    creator_pid: int
    flags: int
    creator_start: int
    created_ms: float


def peek_header(seg, off: int) -> CommonHeader | None:
    """The header without kind/state validation, or None if there is no shmkit header at ``off``."""
    if off < 0 or off + COMMON_HEADER_SIZE > seg.size:
        return None
    magic, ver, kind, state, hsize, blen, cpid, flags, cstart, cms = _HDR_FMT.unpack_from(seg.buf, off)
    if magic != MAGIC or kind not in KIND_NAME:
        return None
    return CommonHeader(KIND_NAME[kind], ver, state, hsize, blen, cpid, flags, cstart, cms)


def read_header(seg, off: int, kind: str, what: str, ready_timeout: float = 1.0, min_bytes: int = COMMON_HEADER_SIZE
                ) -> CommonHeader:
    """Validates the common header of a ``kind`` object at ``off`` of segment ``seg`` (see module doc)."""

    def bad(why: str) -> ShmError:
        return ShmError("EBADHDR", f"{what}: {why} (EBADHDR)")

    if not isinstance(off, int) or isinstance(off, bool) or off < 0 or off % OBJECT_ALIGN:
        raise ShmError("EINVAL", f"{what}: byteOffset {off} must be a non-negative multiple of {OBJECT_ALIGN} (EINVAL)")
    if off + COMMON_HEADER_SIZE > seg.size:
        raise bad(f"the segment is too small for a header at {off}")
    b = seg.buf
    magic, ver, k = struct.unpack_from("<IHH", b, off)
    if magic != MAGIC:
        raise bad("no shmkit header here (bad magic)")
    if ver != LAYOUT_VERSION:
        raise bad(f"layout version {ver}, this build reads {LAYOUT_VERSION}")
    if k != KIND[kind]:
        raise bad(f"it is a {KIND_NAME.get(k, f'kind {k}')}, not a {kind}")
    deadline = time.monotonic() + ready_timeout
    while (st := load32(seg, off + HDR["state"], ACQUIRE)) != STATE_READY:
        if st != STATE_INIT:
            raise bad(f"impossible state {st} (0 initializing and 1 ready are the only states)")
        if time.monotonic() > deadline:
            raise bad("it was never initialized (its creator may have died while creating it)")
        time.sleep(0.001)
    h = peek_header(seg, off)
    assert h is not None
    if h.header_size < COMMON_HEADER_SIZE or h.header_size > h.byte_length:
        raise bad(f"impossible header size {h.header_size}")
    if h.byte_length > 2**53 - 1 or off + h.byte_length > seg.size:
        raise bad(f"it claims {h.byte_length} bytes but only {seg.size - off} are mapped")
    if h.byte_length < min_bytes or off + min_bytes > seg.size:
        raise bad(f"a {kind} needs at least {min_bytes} bytes, it claims {h.byte_length} and {seg.size - off} are mapped")
    return h


def write_header(seg, off: int, kind: str, header_size: int, byte_length: int, flags: int = 0) -> None:
    """Writes the common header with state INIT; the caller writes its own fields, then
    ``publish_ready``."""
    store32(seg, off + HDR["state"], STATE_INIT)
    struct.pack_into("<IHHIIQIIQd", seg.buf, off, MAGIC, LAYOUT_VERSION, KIND[kind], STATE_INIT, header_size,
                     byte_length, _sys.pid(), flags & 0xFFFFFFFF, max(0, _sys.start_time()), time.time() * 1000.0)
    seg.buf[off + 48:off + 64] = bytes(16)


def publish_ready(seg, off: int) -> None:
    """Marks the object ready (a seq_cst store: everything written before is visible to openers)."""
    store32(seg, off + HDR["state"], STATE_READY)


# ---- atomics on mapped words: (segment, byte offset from the segment start) -----------------------

def _chk(r: float, what: str) -> int:
    if r < 0:
        raise ShmError("EINVAL", f"{what}: atomic access failed ({int(r)})")
    return int(r)


def load32(seg, off: int, order: int = SEQ_CST) -> int:
    return _chk(lib().shmkit_atomic_load_u32(seg.map_id, float(off), order), "load32")


def store32(seg, off: int, value: int, order: int = SEQ_CST) -> None:
    _chk(lib().shmkit_atomic_store_u32(seg.map_id, float(off), value & 0xFFFFFFFF, order), "store32")


def cas32(seg, off: int, expected: int, desired: int) -> int:
    """Compare-and-swap; returns the previous value (== expected when it swapped)."""
    return _chk(lib().shmkit_atomic_cas_u32(seg.map_id, float(off), expected & 0xFFFFFFFF, desired & 0xFFFFFFFF,
                                            SEQ_CST), "cas32")


def fetch_add32(seg, off: int, delta: int) -> int:
    return _chk(lib().shmkit_atomic_fetch_add_u32(seg.map_id, float(off), delta & 0xFFFFFFFF, SEQ_CST),
                "fetch_add32")


def load64(seg, off: int) -> int:
    io = (ctypes.c_uint64 * 2)()
    _chk(lib().shmkit_atomic_load_u64(seg.map_id, float(off), SEQ_CST, io), "load64")
    return int(io[0])


def cas64(seg, off: int, expected: int, desired: int) -> bool:
    io = (ctypes.c_uint64 * 2)(expected, desired)
    return _chk(lib().shmkit_atomic_cas_u64(seg.map_id, float(off), SEQ_CST, io), "cas64") == 1
