"""SharedMemory: a raw named (POSIX shm) or anonymous (memfd) segment, mapped zero-copy.

The same segments, names and JSON handles as the TypeScript ``SharedMemory`` (src/segment.ts),
byte-compatible with ``multiprocessing.shared_memory.SharedMemory`` (both are ``shm_open`` of
``/name``).
"""

from __future__ import annotations

import ctypes
import os
import secrets
from typing import Any

from . import _sys
from ._lib import check, errno_value, lib, os_error
from .errors import ShmError

HANDLE_VERSION = 1

MAP_WRITE = 0x1
MAP_PRIVATE = 0x2
UNMAP_RELEASE = 0
UNMAP_TOMBSTONE = 1

__all__ = ["SharedMemory", "normalize_name", "HANDLE_VERSION"]


def normalize_name(name: object, what: str) -> str:
    """"jobs" and "/jobs" are the same segment. EINVAL for an empty name, an inner "/", a NUL,
    "." or "..", or a name longer than the platform allows (in UTF-8 bytes)."""
    if not isinstance(name, str):
        raise TypeError(f"{what}: the name must be a str, got {type(name).__name__}")
    n = name[1:] if name.startswith("/") else name
    why = ""
    if not n:
        why = "it is empty"
    elif "/" in n:
        why = 'it contains "/" after the first character'
    elif "\0" in n:
        why = "it contains a NUL character"
    elif n in (".", ".."):
        why = f'"{n}" is not a valid name'
    else:
        try:
            b = n.encode("utf-8")
        except UnicodeEncodeError:
            why = "it is not well-formed Unicode (a lone surrogate)"
        else:
            if len(b) > _sys.name_max():
                why = f"it is longer than {_sys.name_max()} bytes"
    if why:
        raise ShmError("EINVAL", f'{what} "{name}": invalid name, {why} (EINVAL)', errno=errno_value("EINVAL"))
    return n


def _cname(n: str) -> bytes:
    return ("/" + n).encode("utf-8")


def _check_size(size: object, what: str) -> int:
    if not isinstance(size, int) or isinstance(size, bool):
        raise TypeError(f"{what}: size must be an int, got {type(size).__name__}")
    if size <= 0 or size > 2**53 - 1:
        raise ShmError("EINVAL", f"{what}: size must be a positive integer number of bytes, got {size} (EINVAL)",
                       errno=errno_value("EINVAL"))
    return size


def _open_error(r: int, what: str) -> ShmError:
    if r == -errno_value("ENODEV"):
        return ShmError("EINVAL", f"{what}: the name is taken by something that is not a shared memory object "
                        "(a FIFO, device or directory) (EINVAL)", errno=errno_value("EINVAL"), syscall="shm_open")
    if r == -errno_value("ELOOP"):
        return ShmError("ELOOP", f"{what}: the name is a symbolic link, which is never followed (ELOOP)",
                        errno=errno_value("ELOOP"), syscall="shm_open")
    if r == -errno_value("ENOENT"):
        return ShmError("ENOENT", f"{what}: no such segment (ENOENT). Create it first, or check the name "
                        "(`shmkit ls`, e.g. `npx shmkit ls`, lists them)", errno=errno_value("ENOENT"),
                        syscall="shm_open")
    return os_error(r, "shm_open", what)


def handle_name(name: object, what: str) -> str | None:
    """A handle's segment name: a str, or None for anonymous memory. A handle is another process's
    JSON, so anything else is ShmError EINVAL, not a TypeError further on."""
    if name is None or isinstance(name, str):
        return name
    raise ShmError("EINVAL", f"{what}: the handle's name is {name!r}, not a string or None (EINVAL)")


def _taken_error(what: str, name: str) -> ShmError:
    return ShmError("EEXIST", f"{what}: the name is taken (EEXIST). Open the existing object instead, or, if it is "
                    f"left over from an earlier run, remove it first: `shmkit rm {name}` or "
                    f"SharedMemory.unlink_name({name!r})", errno=errno_value("EEXIST"), syscall="shm_open")


def _fstat(fd: int, what: str) -> list[float]:
    st = (ctypes.c_double * 8)()
    check(lib().shmkit_fstat(fd, st), "fstat", what)
    return list(st)


def _check_trust(st: list[float], trust_others: bool, what: str) -> None:
    e = _sys.euid()
    if trust_others or e < 0:
        return
    mode, owner = int(st[1]), int(st[2])
    why = ""
    if owner != e:
        why = f"it belongs to user {owner}, not to this process's user {e}"
    elif mode & 0o022:
        why = f"its mode 0o{mode:o} lets other users write it"
    if why:
        raise ShmError("EACCES", f"{what}: {why}, so anyone could have created it or written its contents; "
                       "pass trust_others=True to open it anyway (EACCES)", errno=errno_value("EACCES"))


class SharedMemory:
    """A raw shared memory segment (one mapping in this process).

    ``buf`` is a writable zero-copy ``memoryview`` of the whole segment. ``close()`` unmaps; views
    handed out earlier then read zeros (the range is replaced by private zero pages), they never
    fault. ``unlink()`` removes the name; attached processes keep working.

    Internal API (used by the structured objects): ``map_id`` is the libshmkit mapping id that the
    atomic, futex and csrc/ops.c calls take with a byte offset; ``address`` is the base address.
    """

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use SharedMemory.create(), open(), anonymous(), attach() or from_multiprocessing()")

    @classmethod
    def _wrap(cls, name: str | None, size: int, read_only: bool, map_id: int, fd: int) -> "SharedMemory":
        self = object.__new__(cls)
        self.name = name
        self.size = size
        self.read_only = read_only
        self.map_id = map_id
        self.address = int(lib().shmkit_map_addr(map_id))
        self._fd = fd
        self._closed = False
        self._exported = False
        self._buf: memoryview | None = None
        return self

    @staticmethod
    def _map(fd: int, size: int, flags: int, what: str) -> int:
        return check(lib().shmkit_mmap(fd, float(size), 0.0, flags), "mmap", what)

    @classmethod
    def create(cls, name: str | None, size: int, *, mode: int = 0o600) -> "SharedMemory":
        """Creates a new segment exclusively (O_CREAT|O_EXCL), mode 0o600 unless ``mode``; the memory
        is reserved at once (a full /dev/shm fails here with ENOSPC). ``name`` None draws a random
        unused name. Raises ShmError EEXIST, EINVAL, ENOSPC, EACCES."""
        if not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise ValueError(f"Cannot create shared memory: mode must be an integer in 0..0o777, got {mode!r}")
        L = lib()
        for attempt in range(101):
            n = "shmkit-" + secrets.token_hex(8) if name is None else normalize_name(name, "Cannot create shared memory")
            what = f'Cannot create shared memory "{n}"'
            _check_size(size, what)
            fd = L.shmkit_shm_create(_cname(n), float(size), mode)
            if fd == -errno_value("EEXIST") and name is None and attempt < 100:
                continue
            if fd == -errno_value("EEXIST"):
                raise _taken_error(what, n)
            check(fd, "shm_open", what)
            try:
                mid = cls._map(fd, size, MAP_WRITE, what)
            except BaseException:
                L.shmkit_shm_unlink(_cname(n))
                raise
            finally:
                L.shmkit_close(fd)
            return cls._wrap(n, size, False, mid, -1)
        raise AssertionError("unreachable")

    @classmethod
    def open(cls, name: str, *, read_only: bool = False, trust_others: bool = False) -> "SharedMemory":
        """Opens an existing segment (made by shmkit, multiprocessing or anyone) at its full size.
        A segment owned by another user or writable by group/others is refused with EACCES unless
        ``trust_others``. Read-only opens map copy-on-write (writes stay private). Raises ShmError
        ENOENT, EACCES, EINVAL (bad name, empty, not a segment), ELOOP (a symbolic link)."""
        n = normalize_name(name, "Cannot open shared memory")
        what = f'Cannot open shared memory "{n}"'
        L = lib()
        fd = L.shmkit_shm_open(_cname(n), 1 if read_only else 0)
        if fd < 0:
            raise _open_error(fd, what)
        try:
            st = _fstat(fd, what)
            size = int(st[0])
            if st[7] != 1:
                raise ShmError("EINVAL", f"{what}: it is not a regular shared memory object (EINVAL)")
            _check_trust(st, trust_others, what)
            if size == 0:
                raise ShmError("EINVAL", f"{what}: it is empty (size 0), nothing to map (EINVAL)")
            mid = cls._map(fd, size, MAP_WRITE | MAP_PRIVATE if read_only else MAP_WRITE, what)
            return cls._wrap(n, size, read_only, mid, -1)
        finally:
            L.shmkit_close(fd)

    @classmethod
    def anonymous(cls, size: int) -> "SharedMemory":
        """An anonymous segment (memfd): no name, other processes attach by ``handle()`` while this
        process keeps it open (Linux: through /proc/<pid>/fd)."""
        what = "Cannot create anonymous shared memory"
        _check_size(size, what)
        fd = check(lib().shmkit_memfd_create(b"shmkit-anon", float(size)), "memfd_create", what)
        try:
            return cls._wrap(None, size, False, cls._map(fd, size, MAP_WRITE, what), fd)
        except BaseException:
            lib().shmkit_close(fd)
            raise

    @staticmethod
    def unlink_name(name: str) -> bool:
        """Removes a segment's name; False if it did not exist."""
        n = normalize_name(name, "Cannot unlink shared memory")
        r = lib().shmkit_shm_unlink(_cname(n))
        if r == -errno_value("ENOENT"):
            return False
        check(r, "shm_unlink", f'Cannot unlink shared memory "{n}"')
        return True

    @staticmethod
    def exists(name: str) -> bool:
        """True if the name is taken (by a segment, or by something squatting it). Never blocks."""
        n = normalize_name(name, "Cannot look up shared memory")
        L = lib()
        fd = L.shmkit_shm_open(_cname(n), 1)
        if fd >= 0:
            L.shmkit_close(fd)
            return True
        if fd == -errno_value("ENOENT"):
            return False
        if fd in (-errno_value("EACCES"), -errno_value("ENODEV"), -errno_value("ELOOP")):
            return True
        raise os_error(fd, "shm_open", f'Cannot look up shared memory "{n}"')

    @classmethod
    def attach(cls, handle: dict, *, trust_others: bool = False) -> "SharedMemory":
        """Reopens a segment from its handle (a dict, e.g. ``json.loads`` of a TypeScript handle)."""
        check_handle(handle, "shmkit.shm")
        name = handle_name(handle.get("name"), "Cannot attach shared memory")
        if name is not None:
            return cls.open(name, trust_others=trust_others)
        p, fd, size, st = handle.get("pid"), handle.get("fd"), handle.get("size"), handle.get("startTime", -1)
        what = f"Cannot attach anonymous shared memory of process {p}"
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (p, fd, size)):
            raise ShmError("EINVAL", f"{what}: the handle lacks pid, fd or size (EINVAL)")
        if not _sys.process_alive(p, st if isinstance(st, (int, float)) else -1):
            raise ShmError("ENOENT", f"{what}: that process has exited, and the memory with it (ENOENT)")
        if not 0 <= fd <= 0x7FFFFFFF:
            raise ShmError("EINVAL", f"{what}: bad descriptor {fd} (EINVAL)")
        own = lib().shmkit_open_proc_fd(p, fd, 0)
        if own == -errno_value("ENODEV"):
            raise ShmError("EINVAL", f"{what}: descriptor {fd} there is not shared memory (EINVAL)")
        check(own, "open", what)
        try:
            s = _fstat(own, what)
            if int(s[0]) != size:
                raise ShmError("EINVAL", f"{what}: descriptor {fd} is {int(s[0])} bytes, the handle says {size} (EINVAL)")
            return cls._wrap(None, size, False, cls._map(own, size, MAP_WRITE, what), own)
        except BaseException:
            lib().shmkit_close(own)
            raise

    @classmethod
    def from_multiprocessing(cls, shm: Any, *, trust_others: bool = False) -> "SharedMemory":
        """Opens the segment of a ``multiprocessing.shared_memory.SharedMemory`` (the same POSIX
        object, mapped again by shmkit). The size is the segment's own (it may be larger than
        ``shm.size``, which is page-rounded on some platforms)."""
        return cls.open(shm.name, trust_others=trust_others)

    def to_multiprocessing(self) -> Any:
        """A ``multiprocessing.shared_memory.SharedMemory`` over the same named segment, not
        registered with the resource tracker (so exiting Python does not unlink a segment another
        process owns)."""
        if self.name is None:
            raise ShmError("EINVAL", "Cannot hand an anonymous segment to multiprocessing: it has no name (EINVAL)")
        from multiprocessing import shared_memory

        try:
            return shared_memory.SharedMemory(name=self.name, track=False)  # type: ignore[call-arg]  # 3.13+
        except TypeError:
            from multiprocessing import resource_tracker

            s = shared_memory.SharedMemory(name=self.name)
            resource_tracker.unregister(s._name, "shared_memory")  # type: ignore[attr-defined]
            return s

    @property
    def closed(self) -> bool:
        return self._closed

    def _what(self) -> str:
        return "anonymous shared memory" if self.name is None else f'shared memory "{self.name}"'

    def _live(self, what: str) -> None:
        if self._closed:
            raise ShmError("ECLOSED", f"{what} {self._what()}: it is closed (ECLOSED)")

    def view(self, offset: int = 0, length: int | None = None) -> memoryview:
        """A writable zero-copy memoryview of ``[offset, offset + length)`` (default: to the end)."""
        self._live("Cannot view")
        if not isinstance(offset, int) or offset < 0 or offset > self.size:
            raise ValueError(f"Cannot view {self._what()}: offset {offset} is outside 0..{self.size}")
        n = self.size - offset if length is None else length
        if not isinstance(n, int) or n < 0 or offset + n > self.size:
            raise ValueError(f"Cannot view {self._what()}: {n} bytes at {offset} do not fit in {self.size}")
        self._exported = True
        return memoryview((ctypes.c_uint8 * n).from_address(self.address + offset)).cast("B")

    @property
    def buf(self) -> memoryview:
        """The whole segment as a writable zero-copy memoryview (like multiprocessing's ``buf``)."""
        if self._buf is None or self._closed:
            self._buf = self.view(0, self.size)
        return self._buf

    def handle(self) -> dict:
        """A JSON-safe handle; ``SharedMemory.attach`` (Python) or ``SharedMemory.attach`` /
        ``attach`` (TypeScript) reopen it in any process."""
        self._live("Cannot make a handle of")
        h: dict = {"kind": "shmkit.shm", "version": HANDLE_VERSION, "name": self.name, "size": self.size}
        if self.name is None:
            h.update(pid=_sys.pid(), startTime=_sys.start_time(), fd=self._fd)
        return h

    def close(self) -> None:
        """Unmaps (idempotent). Views handed out read zeros afterwards instead of faulting."""
        if self._closed:
            return
        self._closed = True
        self._buf = None
        lib().shmkit_munmap(self.map_id, UNMAP_TOMBSTONE if self._exported else UNMAP_RELEASE)
        if self._fd >= 0:
            lib().shmkit_close(self._fd)
            self._fd = -1

    def unlink(self) -> None:
        """Removes the segment's name (no-op for anonymous memory)."""
        if self.name is not None:
            SharedMemory.unlink_name(self.name)

    def __enter__(self) -> "SharedMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<shmkit.SharedMemory {self.name!r} size={self.size}{' closed' if self._closed else ''}>"


def check_handle(h: object, kind: str) -> None:
    """EINVAL unless ``h`` is a dict of ``kind`` and handle version 1 (src/handle.ts checkHandle)."""
    if not isinstance(h, dict):
        raise ShmError("EINVAL", f"Cannot attach {kind}: the handle is not an object (a dict)")
    if h.get("kind") != kind:
        raise ShmError("EINVAL", f"Cannot attach {kind}: the handle is of kind {h.get('kind')!r}")
    if h.get("version") != HANDLE_VERSION or isinstance(h.get("version"), bool):
        raise ShmError("EINVAL", f"Cannot attach {kind}: handle version {h.get('version')} is not supported "
                       f"(this build reads {HANDLE_VERSION})")
