"""SharedArray: a numeric n-dimensional array in shared memory (docs/layout/array.md), the same
object as the TypeScript ``SharedArray`` (src/shared_array.ts), seen from Python as a zero-copy
numpy array. numpy is imported only here (the rest of the package does not need it)."""

from __future__ import annotations

import struct
from typing import Any, Sequence

from . import layout
from .errors import ShmError
from .shared_memory import SharedMemory, check_handle, handle_name

DTYPE_CODE = {"int8": 1, "uint8": 2, "int16": 3, "uint16": 4, "int32": 5, "uint32": 6, "int64": 7, "uint64": 8,
              "float32": 9, "float64": 10}
CODE_DTYPE = {v: k for k, v in DTYPE_CODE.items()}
NUMPY_TYPESTR = {"int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4", "uint32": "<u4",
                 "int64": "<i8", "uint64": "<u8", "float32": "<f4", "float64": "<f8"}
ITEM_SIZE = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8,
             "float32": 4, "float64": 8}
MAX_NDIM = 32
_SHAPE = 96
_SAFE = 2**53 - 1

__all__ = ["SharedArray", "DTYPE_CODE", "NUMPY_TYPESTR"]


def _np():
    try:
        import numpy
    except ImportError as e:  # pragma: no cover - numpy is optional
        raise ShmError("ENOTSUP", "SharedArray needs numpy: pip install numpy (or pip install './python[numpy]') "
                       "(ENOTSUP)") from e
    return numpy


def _dtype_name(dtype: Any, what: str) -> str:
    if isinstance(dtype, str) and dtype in DTYPE_CODE:
        return dtype
    try:
        name = _np().dtype(dtype).newbyteorder("<").name if not isinstance(dtype, str) else _np().dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPE_CODE:
        raise ShmError("EINVAL", f"{what}: dtype must be one of {', '.join(DTYPE_CODE)}, got {dtype!r} (EINVAL)")
    return name  # type: ignore[return-value]


def _shape(shape: int | Sequence[int], what: str) -> tuple[int, ...]:
    s = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else tuple(shape)
    if len(s) > MAX_NDIM:
        raise ShmError("EINVAL", f"{what}: {len(s)} dimensions (at most {MAX_NDIM}) (EINVAL)")
    n = 1
    for d in s:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ShmError("EINVAL", f"{what}: dimensions must be non-negative ints, got {s!r} (EINVAL)")
        n *= d
        if n > _SAFE:
            raise ShmError("EINVAL", f"{what}: shape {s!r} is too large (EINVAL)")
    return s


class SharedArray:
    """A shmkit array: ``array`` (also ``data`` and ``numpy()``) is a zero-copy numpy ndarray over
    the segment (C order, little-endian), shared with TypeScript's ``SharedArray.data`` of the same
    object.

    The handle carries ``offset`` (where the object, i.e. its header, starts) and ``dataOffset``
    (where the elements start): ``np.ndarray(h["shape"], h["dtype"], buffer=shm.buf,
    offset=h["dataOffset"])`` is what plain numpy code reads.
    """

    def __init__(self, *_a: Any, **_k: Any) -> None:
        raise TypeError("use SharedArray.create(), open(), attach(), at(), init() or wrap()")

    @classmethod
    def _new(cls, seg: SharedMemory, owns: bool, off: int, raw: bool, dtype: str, shape: tuple[int, ...],
             data_offset: int) -> "SharedArray":
        self = object.__new__(cls)
        self._seg, self._owns, self._off, self._raw = seg, owns, off, raw
        self.dtype = dtype
        self.shape = shape
        self.data_offset = data_offset
        n = 1
        for d in shape:
            n *= d
        self.length = n
        self._closed = False
        np = _np()
        mv = seg.view(data_offset, n * ITEM_SIZE[dtype])
        self.array = np.ndarray(shape, dtype=np.dtype(NUMPY_TYPESTR[dtype]), buffer=mv)
        return self

    @staticmethod
    def byte_length(dtype: Any, shape: int | Sequence[int]) -> int:
        """Bytes an array object of this dtype and shape occupies (header and data)."""
        d = _dtype_name(dtype, "Cannot size an array")
        s = _shape(shape, "Cannot size an array")
        n = 1
        for x in s:
            n *= x
        return layout.align_up(_SHAPE + 8 * len(s), 64) + n * ITEM_SIZE[d]

    @classmethod
    def init(cls, seg: SharedMemory, byte_offset: int, dtype: Any, shape: int | Sequence[int]) -> "SharedArray":
        """Formats an array object at ``byte_offset`` (multiple of 64) of ``seg`` (elements 0)."""
        what = f"Cannot create an array in {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        d = _dtype_name(dtype, what)
        s = _shape(shape, what)
        if isinstance(byte_offset, bool) or not isinstance(byte_offset, int) or byte_offset < 0 or byte_offset % 64:
            raise ShmError("EINVAL", f"{what}: byteOffset {byte_offset} must be a non-negative multiple of 64 (EINVAL)")
        hs = layout.align_up(_SHAPE + 8 * len(s), 64)
        n = 1
        for x in s:
            n *= x
        length = hs + n * ITEM_SIZE[d]
        if byte_offset + length > seg.size:
            raise ShmError("ENOSPC", f"{what}: it needs {length} bytes at {byte_offset}, the segment has {seg.size} "
                           "(ENOSPC)")
        b = seg.buf
        layout.write_header(seg, byte_offset, "array", hs, length)
        b[byte_offset + 64:byte_offset + hs] = bytes(hs - 64)
        struct.pack_into("<HHIQ", b, byte_offset + 64, DTYPE_CODE[d], ITEM_SIZE[d], len(s), n)
        for i, x in enumerate(s):
            struct.pack_into("<Q", b, byte_offset + _SHAPE + 8 * i, x)
        b[byte_offset + hs:byte_offset + length] = bytes(length - hs)
        layout.publish_ready(seg, byte_offset)
        return cls._new(seg, False, byte_offset, False, d, s, byte_offset + hs)

    @classmethod
    def at(cls, seg: SharedMemory, byte_offset: int, *, dtype: Any = None) -> "SharedArray":
        """Attaches to the array object at ``byte_offset`` of ``seg``, validating its header like
        src/shared_array.ts (A1..A5: dtype code and item size, ndim <= 32, header size, shape
        product == length, data within byteLength): EBADHDR otherwise."""
        what = f"Cannot open the array at {byte_offset} of {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        return cls._attach(seg, False, byte_offset, what, dtype)

    @classmethod
    def _attach(cls, seg: SharedMemory, owns: bool, off: int, what: str, want: Any = None) -> "SharedArray":
        def bad(why: str) -> ShmError:
            return ShmError("EBADHDR", f"{what}: {why} (EBADHDR)")

        h = layout.read_header(seg, off, "array", what)
        avail = seg.size - off
        if avail < _SHAPE:
            raise bad(f"the segment ends {avail} bytes after the header start, an array header needs {_SHAPE}")
        b = seg.buf
        code, item, ndim, stored = struct.unpack_from("<HHIQ", b, off + 64)
        dtype = CODE_DTYPE.get(code)
        if dtype is None:
            raise bad(f"unknown dtype code {code}")
        if item != ITEM_SIZE[dtype]:
            raise bad(f"item size {item} does not match dtype {dtype} ({ITEM_SIZE[dtype]} bytes)")
        if ndim > MAX_NDIM:
            raise bad(f"{ndim} dimensions (at most {MAX_NDIM})")
        hs = h.header_size
        if hs % 64 or hs < _SHAPE + 8 * ndim or hs > avail:
            raise bad(f"header size {hs} cannot hold {ndim} dimensions")
        shape = []
        n = 1
        for i in range(ndim):
            (d,) = struct.unpack_from("<Q", b, off + _SHAPE + 8 * i)
            if d > _SAFE:
                raise bad(f"dimension {i} is {d}, too large")
            shape.append(d)
            n *= d
            if n * item > _SAFE:
                raise bad(f"shape {shape} overflows")
        if stored != n:
            raise bad(f"length {stored} is not the product of shape {shape}")
        if hs + n * item > h.byte_length:
            raise bad(f"{n} elements of {item} bytes need {hs + n * item} bytes, the object has {h.byte_length}")
        if want is not None and _dtype_name(want, what) != dtype:
            raise bad(f"it holds {dtype}, not {_dtype_name(want, what)}")
        return cls._new(seg, owns, off, False, dtype, tuple(shape), off + hs)

    @classmethod
    def create(cls, name: str | None, shape: int | Sequence[int], dtype: Any = "float64", *,
               file_mode: int = 0o600) -> "SharedArray":
        """Creates a named segment holding a new zero-filled array."""
        what = f"Cannot create array {name!r}"
        seg = SharedMemory.create(name, max(64, cls.byte_length(_dtype_name(dtype, what), shape)), mode=file_mode)
        try:
            a = cls.init(seg, 0, dtype, shape)
        except BaseException:
            seg.unlink()
            seg.close()
            raise
        a._owns = True
        return a

    @classmethod
    def from_numpy(cls, name: str | None, source: Any) -> "SharedArray":
        """Creates a shared array with the shape and dtype of ``source`` and copies it in."""
        np = _np()
        src = np.asarray(source)
        a = cls.create(name, src.shape, src.dtype.newbyteorder("<") if src.dtype.byteorder == ">" else src.dtype)
        a.array[...] = src
        return a

    @classmethod
    def open(cls, name: str, *, dtype: Any = None) -> "SharedArray":
        seg = SharedMemory.open(name)
        try:
            return cls._attach(seg, True, 0, f"Cannot open array {name!r}", dtype)
        except BaseException:
            seg.close()
            raise

    @classmethod
    def wrap(cls, seg: SharedMemory, dtype: Any, shape: int | Sequence[int], *, byte_offset: int = 0) -> "SharedArray":
        """A raw array (no shmkit header) over ``seg`` at ``byte_offset``, e.g. a numpy array made
        by another program; its handle says ``raw: true``."""
        what = f"Cannot wrap {'anonymous shared memory' if seg.name is None else repr(seg.name)}"
        d = _dtype_name(dtype, what)
        s = _shape(shape, what)
        n = 1
        for x in s:
            n *= x
        if isinstance(byte_offset, bool) or not isinstance(byte_offset, int) or byte_offset < 0 or byte_offset % ITEM_SIZE[d]:
            raise ShmError("EINVAL", f"{what}: byteOffset {byte_offset} must be a non-negative multiple of "
                           f"{ITEM_SIZE[d]} (EINVAL)")
        if byte_offset + n * ITEM_SIZE[d] > seg.size:
            raise ShmError("EINVAL", f"{what}: {n} elements at {byte_offset} do not fit in {seg.size} bytes (EINVAL)")
        return cls._new(seg, False, byte_offset, True, d, s, byte_offset)

    @classmethod
    def attach(cls, handle: dict) -> "SharedArray":
        """Reopens an array from its handle (``json.loads`` of TypeScript's ``arr.handle()``);
        checks that dtype, shape and dataOffset agree with the header (EBADHDR otherwise)."""
        check_handle(handle, "shmkit.array")
        what = f"Cannot attach array {handle.get('name')!r}"
        dtype = _dtype_name(handle.get("dtype"), what)
        shape, off = handle.get("shape"), handle.get("offset")
        if not isinstance(shape, list) or isinstance(off, bool) or not isinstance(off, int):
            raise ShmError("EINVAL", f"{what}: the handle lacks a shape or an offset (EINVAL)")
        name = handle_name(handle.get("name"), what)
        if name is not None:
            seg = SharedMemory.open(name)
        elif isinstance(handle.get("segment"), dict):
            seg = SharedMemory.attach(handle["segment"])
        else:
            raise ShmError("EINVAL", f"{what}: an anonymous array handle needs its segment handle (EINVAL)")
        try:
            if handle.get("raw"):
                a = cls.wrap(seg, dtype, shape, byte_offset=off)
                a._owns = True
                return a
            a = cls._attach(seg, True, off, what)
            if a.dtype != dtype or list(a.shape) != shape:
                raise ShmError("EBADHDR", f"{what}: the handle says {dtype} {shape}, the segment holds {a.dtype} "
                               f"{list(a.shape)} (EBADHDR)")
            d_off = handle.get("dataOffset")
            if d_off is not None and d_off != a.data_offset:
                raise ShmError("EBADHDR", f"{what}: the handle says the data starts at {d_off}, the header says "
                               f"{a.data_offset} (EBADHDR)")
            return a
        except BaseException:
            seg.close()
            raise

    @property
    def name(self) -> str | None:
        return self._seg.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def data(self) -> Any:
        """The zero-copy numpy array (the same object as ``array``; TypeScript calls it ``data``).
        ShmError ECLOSED after ``close()``."""
        if self._closed:
            raise ShmError("ECLOSED", "Cannot read the array: it is closed (ECLOSED)")
        return self.array

    def numpy(self) -> Any:
        """The zero-copy numpy array (``data``; no copy is made)."""
        return self.data

    @property
    def closed(self) -> bool:
        return self._closed or self._seg.closed

    @property
    def segment(self) -> SharedMemory:
        return self._seg

    def handle(self) -> dict:
        """The same JSON handle as TypeScript's ``arr.handle()`` (offset = the object's start,
        dataOffset = the elements' start)."""
        if self.closed:
            raise ShmError("ECLOSED", f"Cannot make a handle of array {self._seg.name!r}: it is closed (ECLOSED)")
        h: dict = {"kind": "shmkit.array", "version": 1, "name": self._seg.name, "offset": self._off,
                   "dataOffset": self.data_offset, "dtype": self.dtype, "shape": list(self.shape)}
        if self._raw:
            h["raw"] = True
        if self._seg.name is None:
            h["segment"] = self._seg.handle()
        return h

    def close(self) -> None:
        """Drops the numpy view (the segment is unmapped if this object owns it; arrays still
        referenced elsewhere then read zeros, never fault). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.array = None
        if self._owns:
            self._seg.close()

    def unlink(self) -> None:
        self._seg.unlink()

    def __enter__(self) -> "SharedArray":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<shmkit.SharedArray {self._seg.name!r} {self.dtype} {list(self.shape)}>"
