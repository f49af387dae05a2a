"""shmkit for Python: the same shared memory objects as shmkit's TypeScript API (Deno, Bun,
Node), byte-compatible and attachable through the same JSON handles.

    import shmkit
    ring = shmkit.Ring.create("jobs", capacity=1024, mode="mpmc")
    ring.enqueue(42)
    json.dumps(ring.handle())   # a TypeScript process: Ring.attach(JSON.parse(...))
"""

from __future__ import annotations

from .errors import ShmError
from .shared_memory import SharedMemory

__all__ = ["ShmError", "SharedMemory", "SharedArray", "Ring", "Mempool", "Block", "attach", "library_path",
           "__version__"]
__all__ += ["Mutex", "LockGuard", "Semaphore", "Condition"]  # shmkit.locks
__all__ += ["MessageLog"]  # shmkit.log
__all__ += ["SharedHeap"]  # shmkit.heap
__all__ += ["Channel", "Message", "Loan"]  # shmkit.channel
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: importing shmkit does not load the library or numpy until a class is used.
    if name == "SharedArray":
        from .shared_array import SharedArray

        return SharedArray
    if name == "Ring":
        from .ring import Ring

        return Ring
    if name in ("Mempool", "Block"):
        from . import mempool

        return getattr(mempool, name)
    if name in ("Mutex", "LockGuard", "Semaphore", "Condition"):
        from . import locks

        return getattr(locks, name)
    if name == "MessageLog":
        from .log import MessageLog

        return MessageLog
    if name == "SharedHeap":
        from .heap import SharedHeap

        return SharedHeap
    if name in ("Channel", "Message", "Loan"):
        from . import channel

        return getattr(channel, name)
    if name == "library_path":
        from . import _lib

        _lib.lib()
        return _lib.library_path
    raise AttributeError(f"module 'shmkit' has no attribute {name!r}")


def attach(handle: dict):
    """Reopens the object a handle names (any kind: shmkit.shm, shmkit.array, shmkit.ring,
    shmkit.mempool, shmkit.mutex, shmkit.semaphore, shmkit.condition, shmkit.log, shmkit.heap,
    shmkit.channel), e.g. ``attach(json.loads(line_printed_by_deno))``."""
    if not isinstance(handle, dict) or not isinstance(handle.get("kind"), str):
        raise ShmError("EINVAL", "Cannot attach: the handle is not a shmkit handle object (a dict with a kind)")
    kind = handle["kind"]
    if kind == "shmkit.shm":
        return SharedMemory.attach(handle)
    if kind == "shmkit.array":
        from .shared_array import SharedArray

        return SharedArray.attach(handle)
    if kind == "shmkit.ring":
        from .ring import Ring

        return Ring.attach(handle)
    if kind == "shmkit.mempool":
        from .mempool import Mempool

        return Mempool.attach(handle)
    if kind in ("shmkit.mutex", "shmkit.semaphore", "shmkit.condition"):
        from . import locks

        return getattr(locks, kind[7:].capitalize()).attach(handle)
    if kind == "shmkit.log":
        from .log import MessageLog

        return MessageLog.attach(handle)
    if kind == "shmkit.channel":
        from .channel import Channel

        return Channel.attach(handle)
    if kind == "shmkit.heap":
        from .heap import SharedHeap

        return SharedHeap.attach(handle)
    raise ShmError("EINVAL", f"Cannot attach: unknown handle kind {kind!r} (this Python package reads shmkit.shm, "
                   "shmkit.array, shmkit.ring, shmkit.mempool, shmkit.mutex, shmkit.semaphore, shmkit.condition, "
                   "shmkit.log, shmkit.heap, shmkit.channel)")
