"""ctypes mirrors of csrc/shmkit.h's process-local structs for csrc/ops.c and ops_chan.c (checked
against the library's own sizeof at first use)."""

from __future__ import annotations

import ctypes
from ctypes import c_double, c_int32, c_uint32

from ._lib import lib
from .errors import ShmError


class RingLocal(ctypes.Structure):
    _fields_ = [
        ("offset", c_double), ("map_id", c_int32), ("mode", c_uint32), ("capacity", c_uint32),
        ("slots", c_uint32), ("token", c_uint32), ("roles", c_uint32), ("pid", c_uint32), ("start_lo", c_uint32),
        ("fork_gen", c_uint32), ("p_tail", c_uint32), ("p_head", c_uint32), ("c_head", c_uint32),
        ("c_tail", c_uint32), ("head_cache", c_uint32), ("last_pos", c_uint32), ("waits", c_uint32 * 2),
        ("reserved", c_uint32),
    ]


class MempoolLocal(ctypes.Structure):
    _fields_ = [
        ("offset", c_double), ("map_id", c_int32), ("count", c_uint32), ("block_size", c_uint32),
        ("stride", c_uint32), ("procs", c_uint32), ("states", c_uint32), ("data", c_double), ("slot", c_int32),
        ("tag", c_uint32), ("cursor", c_uint32), ("pid", c_uint32), ("start_lo", c_uint32), ("fork_gen", c_uint32),
        ("parked", c_uint32), ("reserved", c_uint32),
    ]


class HeapLocal(ctypes.Structure):
    """csrc/shmkit.h struct shmkit_heap_local (checked against shmkit_heap_local_size)."""

    _fields_ = [
        ("offset", c_double), ("map_id", c_int32), ("arena_size", c_uint32), ("name_count", c_uint32),
        ("slots", c_uint32), ("slot", c_uint32), ("fork_gen", c_uint32), ("holding", c_uint32), ("seq", c_uint32),
        ("jpos", c_uint32), ("created", c_uint32), ("recovered", c_uint32), ("why", c_uint32), ("a", c_uint32),
        ("b", c_uint32), ("c", c_uint32),
    ]


class ChanLocal(ctypes.Structure):
    """csrc/shmkit.h struct shmkit_chan_local (csrc/ops_chan.c): the channel's geometry, this
    object's participant entry, tag, op counter and cursor, the ready ring's RingLocal, and the
    spsc-ordered (mode 2) sender/receiver state with the address of its scratch."""

    _fields_ = [
        ("offset", c_double), ("map_id", c_int32), ("slots", c_uint32), ("slot_size", c_uint32), ("mode", c_uint32),
        ("procs", c_uint32), ("ready_off", c_uint32), ("table_off", c_uint32), ("data_off", c_uint32),
        ("p", c_int32), ("tag", c_uint32), ("op", c_uint32), ("cursor", c_uint32), ("pid", c_uint32),
        ("start_lo", c_uint32), ("fork_gen", c_uint32), ("parked", c_uint32), ("bad", c_uint32),
        ("last_reclaim", c_double), ("ring", RingLocal),
        # spsc-ordered (mode 2): this object's sender / receiver state and its scratch
        ("o_roles", c_uint32), ("o_t", c_uint32), ("o_n", c_uint32), ("o_b", c_uint32), ("o_hc", c_uint32),
        ("o_next", c_uint32), ("o_head", c_uint32), ("o_pub", c_uint32), ("o_tc", c_uint32), ("o_pad", c_uint32),
        ("o_mem", ctypes.c_void_p), ("o_len", ctypes.c_uint64), ("o_chk", ctypes.c_uint64),
    ]


_checked = False


def check_sizes() -> None:
    global _checked
    if _checked:
        return
    L = lib()
    for cls, size in ((RingLocal, L.shmkit_ops_local_size(1)), (MempoolLocal, L.shmkit_ops_local_size(2)),
                      (ChanLocal, L.shmkit_chan_local_size())):
        if size != ctypes.sizeof(cls):
            raise ShmError("ENOLIB", f"libshmkit's {cls.__name__} is {size} bytes, this package expects "
                           f"{ctypes.sizeof(cls)}: the library and the package are from different versions (rebuild "
                           "with `make lib`)")
    if L.shmkit_heap_local_size() != ctypes.sizeof(HeapLocal):
        raise ShmError("ENOLIB", f"libshmkit's HeapLocal is {L.shmkit_heap_local_size()} bytes, this package expects "
                       f"{ctypes.sizeof(HeapLocal)}: the library and the package are from different versions "
                       "(rebuild with `make lib`)")
    _checked = True


def arm_fault(spec: str) -> None:
    """Tests only: SIGKILL this process at the Nth hit of a csrc/ops.c fault point
    ("ring.enq.after_commit:3"); the same point names as src/ring.ts, src/mempool.ts and src/channel.ts
    ("channel.send.after_queued:2": csrc/ops_chan.c uses ops.c's fault points). "log."
    points ("log.write.mid_payload:2", as src/log.ts LOG_FAULT_POINTS) arm csrc/ops_log.c; "heap."
    points (src/heap.ts FAULT_POINTS) arm csrc/ops_heap.c (through the same counter as csrc/ops.c)."""
    L = lib()
    r = L.shmkit_log_fault(spec.encode()) if spec.startswith("log.") else L.shmkit_ops_fault(spec.encode())
    if r < 0:
        raise ValueError(f"bad fault spec {spec!r}")
