"""What every object placed in a segment (Ring, Mempool, MessageLog, Mutex, Semaphore, Condition)
has in common: its segment and offset, ``closed``, the JSON handle, ``unlink()`` and the context
manager. A subclass sets ``_kind`` ("ring", "log", ...), ``_seg``, ``_off``, ``_closed`` and
defines ``close()`` and ``_closed_error(doing)``."""
from __future__ import annotations

from typing import Any, Callable

from .errors import ShmError
from .shared_memory import SharedMemory, check_handle


def attach_handle(handle: object, kind: str) -> tuple[SharedMemory, int]:
    """Checks a JSON handle of ``kind`` ("shmkit.ring", ...) and attaches its segment: (segment, byteOffset)."""
    check_handle(handle, kind)
    assert isinstance(handle, dict)
    off, sh = handle.get("byteOffset"), handle.get("segment")
    if isinstance(off, bool) or not isinstance(off, int) or not isinstance(sh, dict):
        raise ShmError("EINVAL", f"Cannot attach {kind}: the handle lacks byteOffset or segment (EINVAL)")
    return SharedMemory.attach(sh), off


def owning(seg: SharedMemory, make: Callable[[], Any], unlink: bool) -> Any:
    """Runs ``make`` (which places an object in ``seg``); on failure closes (and unlinks) the segment."""
    try:
        obj = make()
    except BaseException:
        if unlink:
            seg.unlink()
        seg.close()
        raise
    obj._owns = True
    return obj


class Placed:
    _kind = ""
    _seg: SharedMemory
    _off: int
    _closed: bool

    def _closed_error(self, doing: str) -> ShmError:  # pragma: no cover - every subclass defines it
        return ShmError("ECLOSED", f"Cannot {doing} this {self._kind}: it is closed (ECLOSED)")

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    @property
    def segment(self) -> SharedMemory:
        """The segment the object lives in."""
        return self._seg

    @property
    def byte_offset(self) -> int:
        """Where the object starts in its segment."""
        return self._off

    def handle(self) -> dict:
        """The same JSON handle as the TypeScript object's ``handle()``."""
        if self._closed or self._seg.closed:
            raise self._closed_error("make a handle of")
        return {"kind": f"shmkit.{self._kind}", "version": 1, "name": self._seg.name, "byteOffset": self._off,
                "segment": self._seg.handle()}

    def unlink(self) -> None:
        """Removes the segment's name; attached processes keep working. An object in anonymous
        memory has no name: nothing happens (as in TypeScript)."""
        if self._seg.name is not None:
            SharedMemory.unlink_name(self._seg.name)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
