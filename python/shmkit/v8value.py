"""V8's ValueSerializer wire format (what ``node:v8`` ``serialize()``/``deserialize()`` write and
read in Deno and Node) for the values Python has natural equivalents for: the body of a structured
channel message (``Channel.send_value`` / ``Message.value()``, TypeScript ``sendValue`` /
``value()``).

``dumps(value)`` writes version 15 (header ``FF 0F``, as current Deno and Node do) and, for the
values below, the same bytes ``v8.serialize`` writes for the corresponding JavaScript value.
``loads(data)`` reads versions 13 to 15.

Python -> JavaScript (``dumps``):

- ``None`` -> null; ``True``/``False`` -> true/false
- ``int``: in -2**31..2**31-1 -> an int32 number; otherwise, with ``abs(x) <= 2**53`` -> a double
  number (exact); beyond that -> a BigInt (so no integer is ever rounded)
- ``float`` -> a double number (NaN, infinities and -0.0 kept)
- ``str`` -> a string (Latin-1 text one byte per char, anything else UTF-16, as V8 stores it;
  lone surrogates are kept)
- ``list``, ``tuple`` -> a dense Array
- ``dict`` whose keys are all ``str`` -> a plain object (keys that are array indices, "0" ..
  "4294967294", come first in ascending order, as in JavaScript); any other ``dict`` -> a Map
- ``set``, ``frozenset`` -> a Set
- ``datetime.datetime`` -> a Date (whole milliseconds, truncated toward zero as ``new Date(x)``
  does; a naive datetime is taken as UTC)
- ``bytes``, ``bytearray``, ``memoryview`` (any buffer, as its bytes) -> a Uint8Array
- ``array.array`` -> the typed array of its item type ('b' Int8Array, 'B' Uint8Array, 'h'
  Int16Array, 'H' Uint16Array, 4-byte 'i'/'l' Int32Array, 'I'/'L' Uint32Array, 8-byte
  'l'/'q' BigInt64Array, 'L'/'Q' BigUint64Array, 'f' Float32Array, 'd' Float64Array)
- the same container object reached twice (including cycles) -> one object and back-references,
  as JavaScript writes a shared object
Any other type raises ``TypeError`` (as ``json.dumps`` does).

JavaScript -> Python (``loads``):

- undefined, null, the hole of an array -> ``None``; numbers -> ``int`` when V8 wrote them as
  int32 (a small integer it holds as such), else ``float``. Which of the two V8 writes for an
  integral number is its internal choice (every element of an array that also holds a
  non-integer, or a computed ``2 ** 30`` in Deno, is a double): convert integral floats if ints
  are wanted. BigInt -> ``int``; strings -> ``str``
- Array (dense or sparse) -> ``list`` (holes ``None``; a sparse array longer than 2**20 elements,
  or an array with named properties, is ENOTSUP)
- plain object -> ``dict`` with ``str`` keys (integer keys become their decimal strings, as
  JavaScript's property keys are strings)
- Map -> ``dict``, Set -> ``set`` (a key or member Python cannot hash, e.g. an object, or two keys
  Python takes as equal such as 1 and true, is ENOTSUP)
- Date -> an aware ``datetime`` in UTC (an invalid Date or one outside years 1..9999 is ENOTSUP)
- Uint8Array, Uint8ClampedArray, Buffer, DataView, ArrayBuffer -> ``bytes``; the other typed
  arrays -> ``array.array`` of the matching item type (Float16Array is ENOTSUP)
- Boolean, Number, BigInt and String wrapper objects -> their primitive value
- shared objects and cycles -> the same Python object (a cycle through a Set or a Map key cannot
  be built in Python: ENOTSUP)
RegExp, Error, SharedArrayBuffer, WebAssembly objects, resizable ArrayBuffers and anything else
raise ``ShmError`` ``ENOTSUP`` naming the tag; malformed or truncated input raises ``ShmError``
``EINVAL``. ``loads`` never raises anything else and never reads past its input.
"""

from __future__ import annotations

import array
import struct
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import ShmError

__all__ = ["dumps", "loads", "VERSION"]

VERSION = 15
_MIN_VERSION = 13
_MAX_SPARSE = 2**20
_MAX_DEPTH = 300
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_D = struct.Struct("<d")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_MAX_INDEX = 2**32 - 2

# node:v8 DefaultSerializer host objects (array buffer views): type index -> (name, array typecode
# or None for bytes, item size).
_HOST_TYPES: dict[int, tuple[str, str | None, int]] = {
    0: ("Int8Array", "b", 1),
    1: ("Uint8Array", None, 1),
    2: ("Uint8ClampedArray", None, 1),
    3: ("Int16Array", "h", 2),
    4: ("Uint16Array", "H", 2),
    5: ("Int32Array", "i" if array.array("i").itemsize == 4 else "l", 4),
    6: ("Uint32Array", "I" if array.array("I").itemsize == 4 else "L", 4),
    7: ("Float32Array", "f", 4),
    8: ("Float64Array", "d", 8),
    9: ("DataView", None, 1),
    10: ("Buffer", None, 1),
    11: ("BigInt64Array", "q", 8),
    12: ("BigUint64Array", "Q", 8),
    13: ("Float16Array", "", 2),
}
# V8's own ArrayBufferView subtags (after an ArrayBuffer) -> a host type index above.
_VIEW_TAGS = {ord("b"): 0, ord("B"): 1, ord("C"): 2, ord("w"): 3, ord("W"): 4, ord("d"): 5, ord("D"): 6,
              ord("f"): 7, ord("F"): 8, ord("?"): 9, ord("q"): 11, ord("Q"): 12, ord("h"): 13}
_TAG_NAMES = {
    ord("R"): "a RegExp", ord("r"): "an Error", ord("u"): "a SharedArrayBuffer", ord("p"): "a shared object",
    ord("w"): "a WebAssembly.Module", ord("m"): "a WebAssembly.Memory", ord("t"): "a transferred ArrayBuffer",
    ord("~"): "a resizable ArrayBuffer", ord("V"): "an ArrayBuffer view without its buffer",
}


def _bad(why: str) -> ShmError:
    return ShmError("EINVAL", f"Cannot read a V8-serialized value: {why} (EINVAL)")


def _unsup(why: str) -> ShmError:
    return ShmError("ENOTSUP", f"Cannot read a V8-serialized value: {why}, which has no Python equivalent here "
                    "(ENOTSUP)")


# ---- writing -------------------------------------------------------------------------------------


def _varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _varint_len(v: int) -> int:
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def _index_key(k: str) -> int:
    """The array index a property key names (JavaScript's CanonicalNumericIndex for 0..2**32-2), or -1."""
    if not k or len(k) > 10 or not k.isascii() or not k.isdigit() or (k[0] == "0" and len(k) > 1):
        return -1
    v = int(k)
    return v if v <= _MAX_INDEX else -1


class _Writer:
    __slots__ = ("out", "ids", "keep")

    def __init__(self) -> None:
        self.out = bytearray(b"\xff")
        _varint(self.out, VERSION)
        self.ids: dict[int, int] = {}  # id(obj) -> object id (V8 numbers every object it writes)
        self.keep: list[Any] = []  # keeps the objects alive so that their id() stays unique

    def number(self, v: float) -> None:
        self.out.append(0x4E)  # 'N'
        self.out += _D.pack(v)

    def int(self, v: int) -> None:
        out = self.out
        if _INT32_MIN <= v <= _INT32_MAX:
            out.append(0x49)  # 'I': zigzag varint
            _varint(out, ((-v) << 1) - 1 if v < 0 else v << 1)
        elif -(2**53) <= v <= 2**53:
            self.number(float(v))
        else:
            out.append(0x5A)  # 'Z': bitfield = byteLength << 1 | sign, then 64-bit little-endian digits
            mag = -v if v < 0 else v
            nbytes = (mag.bit_length() + 63) // 64 * 8
            _varint(out, nbytes << 1 | (v < 0))
            out += mag.to_bytes(nbytes, "little")

    def string(self, s: str) -> None:
        out = self.out
        try:
            b = s.encode("latin-1")
        except UnicodeEncodeError:
            b = s.encode("utf-16-le", "surrogatepass")
            # V8 aligns two-byte characters to an even offset with a padding byte (kPadding).
            if (len(out) + 1 + _varint_len(len(b))) & 1:
                out.append(0)
            out.append(0x63)  # 'c'
        else:
            out.append(0x22)  # '"'
        _varint(out, len(b))
        out += b

    def key(self, k: str) -> None:
        i = _index_key(k)
        if i < 0:
            self.string(k)
        elif i <= _INT32_MAX:
            self.int(i)
        else:
            self.number(float(i))

    def value(self, v: Any, depth: int) -> None:
        out = self.out
        t = type(v)
        if v is None:
            out.append(0x30)  # '0' null
        elif v is True:
            out.append(0x54)
        elif v is False:
            out.append(0x46)
        elif t is int or (isinstance(v, int) and not isinstance(v, bool)):
            self.int(int(v))
        elif t is float or isinstance(v, float):
            self.number(float(v))
        elif t is str or isinstance(v, str):
            self.string(str(v))
        else:
            ref = self.ids.get(id(v))
            if ref is not None:
                out.append(0x5E)  # '^'
                _varint(out, ref)
                return
            if depth > _MAX_DEPTH:
                raise ValueError(f"Cannot serialize a value nested deeper than {_MAX_DEPTH} levels")
            self.ids[id(v)] = len(self.ids)
            self.keep.append(v)
            self.receiver(v, depth + 1)

    def receiver(self, v: Any, depth: int) -> None:
        out = self.out
        if isinstance(v, (list, tuple)):
            out.append(0x41)  # 'A' dense array
            _varint(out, len(v))
            for x in v:
                self.value(x, depth)
            out.append(0x24)  # '$' properties 0, length
            _varint(out, 0)
            _varint(out, len(v))
        elif isinstance(v, dict):
            if all(isinstance(k, str) for k in v):
                out.append(0x6F)  # 'o'
                idx = sorted((i, k) for k in v if (i := _index_key(k)) >= 0)
                keys = [k for _, k in idx] + [k for k in v if _index_key(k) < 0]
                for k in keys:
                    self.key(k)
                    self.value(v[k], depth)
                out.append(0x7B)  # '{' property count
                _varint(out, len(keys))
            else:
                out.append(0x3B)  # ';' Map
                for k, x in list(v.items()):
                    self.value(k, depth)
                    self.value(x, depth)
                out.append(0x3A)  # ':' 2 * entries
                _varint(out, 2 * len(v))
        elif isinstance(v, (set, frozenset)):
            out.append(0x27)  # "'" Set
            items = list(v)
            for x in items:
                self.value(x, depth)
            out.append(0x2C)  # ','
            _varint(out, len(items))
        elif isinstance(v, datetime):
            d = v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)
            us = (d - _EPOCH) // timedelta(microseconds=1)
            ms = us // 1000 if us >= 0 else -((-us) // 1000)  # TimeClip truncates toward zero
            out.append(0x44)  # 'D'
            out += _D.pack(float(ms))
        elif isinstance(v, array.array):
            tc, size = v.typecode, v.itemsize
            kind = {("b", 1): 0, ("B", 1): 1, ("h", 2): 3, ("H", 2): 4, ("i", 4): 5, ("l", 4): 5, ("I", 4): 6,
                    ("L", 4): 6, ("f", 4): 7, ("d", 8): 8, ("q", 8): 11, ("l", 8): 11, ("Q", 8): 12,
                    ("L", 8): 12}.get((tc, size))
            if kind is None:
                raise TypeError(f"Cannot serialize an array.array of typecode {tc!r} (no JavaScript typed array)")
            b = v.tobytes() if sys.byteorder == "little" else _swapped(v)
            self.host(kind, b)
        else:
            try:
                mv = memoryview(v)
            except TypeError:
                raise TypeError(f"Cannot serialize a value of type {type(v).__name__} for V8 (supported: None, "
                                "bool, int, float, str, list, tuple, dict, set, frozenset, datetime, bytes-like, "
                                "array.array)") from None
            with mv:
                self.host(1, mv.tobytes())

    def host(self, kind: int, b: bytes) -> None:
        out = self.out
        out.append(0x5C)  # '\\' host object (node:v8 DefaultSerializer): type, byteLength, bytes
        _varint(out, kind)
        _varint(out, len(b))
        out += b


def _swapped(a: array.array) -> bytes:
    c = array.array(a.typecode, a)
    c.byteswap()
    return c.tobytes()


def dumps(value: Any) -> bytes:
    """``value`` in V8's serialization format (what ``v8.deserialize`` reads); TypeError for a
    type with no JavaScript equivalent here, ValueError for nesting deeper than 300 levels."""
    w = _Writer()
    w.value(value, 0)
    return bytes(w.out)


# ---- reading -------------------------------------------------------------------------------------


class _Hole:
    """The array hole (kTheHole) while an array is read; None in the result."""


_HOLE = _Hole()
_END = object()  # an end tag where a value would be


class _Reader:
    __slots__ = ("b", "pos", "end", "objs", "version")

    def __init__(self, data: bytes | memoryview) -> None:
        self.b = data
        self.pos = 0
        self.end = len(data)
        self.objs: list[Any] = []  # object id -> the Python object
        self.version = 0

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _bad("the data ends in the middle of a value")
        c = self.b[self.pos]
        self.pos += 1
        return c

    def varint(self, limit: int = 2**64) -> int:
        v = shift = 0
        while True:
            c = self.byte()
            v |= (c & 0x7F) << shift
            if v >= limit:
                raise _bad(f"a length or count {v} out of range")
            if c < 0x80:
                return v
            shift += 7
            if shift > 70:
                raise _bad("a varint longer than 10 bytes")

    def raw(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise _bad(f"{n} bytes announced, {self.end - self.pos} left")
        r = bytes(self.b[self.pos:self.pos + n])
        self.pos += n
        return r

    def double(self) -> float:
        return _D.unpack(self.raw(8))[0]

    def tag(self) -> int:
        while True:  # padding bytes are skipped (bounded by the input)
            t = self.byte()
            if t != 0:
                return t

    def peek_tag(self) -> int:
        p = self.pos
        while p < self.end and self.b[p] == 0:
            p += 1
        return self.b[p] if p < self.end else -1

    def header(self) -> None:
        if self.byte() != 0xFF:
            raise _bad("no version header (0xFF)")
        v = self.varint(2**32)
        if not _MIN_VERSION <= v <= VERSION:
            raise ShmError("ENOTSUP", f"Cannot read a V8-serialized value: format version {v}, this reader "
                           f"reads {_MIN_VERSION}..{VERSION} (ENOTSUP)")
        self.version = v

    def string_body(self, t: int) -> str:
        n = self.varint(self.end - self.pos + 1)
        b = self.raw(n)
        if t == 0x22:
            return b.decode("latin-1")
        if t == 0x53:
            try:
                return b.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad("a UTF-8 string is not valid UTF-8") from None
        if n & 1:
            raise _bad("a two-byte string of an odd byte length")
        return b.decode("utf-16-le", "surrogatepass")

    def string(self) -> str:
        t = self.tag()
        if t not in (0x22, 0x53, 0x63):
            raise _bad(f"a string expected, tag 0x{t:02x} found")
        return self.string_body(t)

    def bigint(self) -> int:
        bits = self.varint(2**32)
        b = self.raw(bits >> 1)
        v = int.from_bytes(b, "little")
        return -v if bits & 1 else v

    def new_id(self, obj: Any) -> int:
        self.objs.append(obj)
        return len(self.objs) - 1

    def key(self, depth: int) -> Any:
        """A property key, or _END at the object's end tag."""
        t = self.tag()
        if t in (0x22, 0x53, 0x63):
            return self.string_body(t)
        if t == 0x49:
            z = self.varint(2**32)
            return str((z >> 1) ^ -(z & 1))
        if t == 0x55:
            return str(self.varint(2**32))
        if t == 0x4E:
            d = self.double()
            if not (d == d and d.is_integer() and abs(d) <= 2**53):
                raise _bad(f"an object key {d!r} that is not an integer")
            return str(int(d))
        self.pos -= 1
        return _END

    def value(self, depth: int) -> Any:
        t = self.tag()
        while t == 0x3F:  # '?' verify object count (old writers): a count, then the value
            self.varint()
            t = self.tag()
        if t == 0x5F or t == 0x30:  # '_' undefined, '0' null
            return None
        if t == 0x54:
            return True
        if t == 0x46:
            return False
        if t == 0x49:  # 'I' zigzag int32
            z = self.varint(2**32)
            return (z >> 1) ^ -(z & 1)
        if t == 0x55:  # 'U'
            return self.varint(2**32)
        if t == 0x4E:
            return self.double()
        if t == 0x5A:
            return self.bigint()
        if t in (0x22, 0x53, 0x63):
            return self.string_body(t)
        if t == 0x2D:  # '-' the hole
            return _HOLE
        if t == 0x5E:  # '^' back-reference
            i = self.varint(2**32)
            if i >= len(self.objs):
                raise _bad(f"a reference to object {i}, only {len(self.objs)} read")
            return self.objs[i]
        if depth >= _MAX_DEPTH:
            raise _unsup(f"a value nested deeper than {_MAX_DEPTH} levels")
        return self.receiver(t, depth + 1)

    def receiver(self, t: int, depth: int) -> Any:
        if t == 0x6F:  # 'o' object
            d: dict[str, Any] = {}
            self.new_id(d)
            n = 0
            while True:
                k = self.key(depth)
                if k is _END:
                    break
                d[k] = self.elem(depth)
                n += 1
            if self.tag() != 0x7B:
                raise _bad("an object's end tag ('{') expected")
            if self.varint(2**32) != n:
                raise _bad("an object's property count differs from its properties")
            return d
        if t == 0x41:  # 'A' dense array
            n = self.varint(2**32)
            if n > self.end - self.pos:
                raise _bad(f"a dense array of {n} elements in {self.end - self.pos} bytes")
            lst: list[Any] = []
            self.new_id(lst)
            for _ in range(n):
                lst.append(self.elem(depth))
            props = self.array_props(depth)
            if self.tag() != 0x24:
                raise _bad("a dense array's end tag ('$') expected")
            if self.varint(2**32) != props or self.varint(2**32) != n:
                raise _bad("a dense array's end counts differ from its contents")
            return lst
        if t == 0x61:  # 'a' sparse array: length, then index/value pairs
            n = self.varint(2**32)
            if n > _MAX_SPARSE:
                raise _unsup(f"a sparse array of length {n} (more than {_MAX_SPARSE})")
            lst = [None] * n
            self.new_id(lst)
            props = 0
            while True:
                k = self.key(depth)
                if k is _END:
                    break
                i = _index_key(k)
                if i < 0 or i >= n:
                    raise _unsup(f"an array with the named property {k[:40]!r}")
                lst[i] = self.elem(depth)
                props += 1
            if self.tag() != 0x40:
                raise _bad("a sparse array's end tag ('@') expected")
            if self.varint(2**32) != props or self.varint(2**32) != n:
                raise _bad("a sparse array's end counts differ from its contents")
            return lst
        if t == 0x44:  # 'D' Date
            ms = self.double()
            self.new_id(None)
            slot = len(self.objs) - 1
            if ms != ms:
                raise _unsup("an invalid Date (NaN)")
            try:
                dt = _EPOCH + timedelta(milliseconds=ms)
            except (OverflowError, ValueError):
                raise _unsup(f"a Date of {ms!r} ms, outside Python's years 1..9999") from None
            self.objs[slot] = dt
            return dt
        if t == 0x3B:  # ';' Map
            m: dict[Any, Any] = {}
            self.new_id(m)
            n = 0
            while self.peek_tag() != 0x3A:
                k = self.elem(depth)
                v = self.elem(depth)
                try:
                    m[k] = v
                except TypeError:
                    raise _unsup(f"a Map key of type {type(k).__name__} (not hashable in Python)") from None
                n += 2
                if len(m) * 2 != n:
                    raise _unsup("a Map whose keys Python takes as equal (e.g. 1 and true, or 1 and 1.0n)")
            self.tag()
            if self.varint(2**32) != n:
                raise _bad("a Map's end count differs from its entries")
            return m
        if t == 0x27:  # "'" Set
            s: set[Any] = set()
            self.new_id(s)
            n = 0
            while self.peek_tag() != 0x2C:
                x = self.elem(depth)
                try:
                    s.add(x)
                except TypeError:
                    raise _unsup(f"a Set member of type {type(x).__name__} (not hashable in Python)") from None
                n += 1
                if len(s) != n:
                    raise _unsup("a Set whose members Python takes as equal (e.g. 1 and true)")
            self.tag()
            if self.varint(2**32) != n:
                raise _bad("a Set's end count differs from its members")
            return s
        if t in (0x79, 0x78):  # 'y' / 'x' Boolean objects
            self.new_id(t == 0x79)
            return t == 0x79
        if t == 0x6E:  # 'n' Number object
            return self.objs[self.new_id(self.double())]
        if t == 0x7A:  # 'z' BigInt object
            return self.objs[self.new_id(self.bigint())]
        if t == 0x73:  # 's' String object
            return self.objs[self.new_id(self.string())]
        if t == 0x42:  # 'B' ArrayBuffer, maybe followed by V8's own view of it
            n = self.varint(self.end - self.pos + 1)
            buf = self.raw(n)
            self.new_id(buf)
            if self.peek_tag() == 0x56:
                self.tag()
                return self.view(buf)
            return buf
        if t == 0x5C:  # '\\' host object: node:v8's array buffer views
            kind = self.varint(2**32)
            spec = _HOST_TYPES.get(kind)
            if spec is None:
                raise _unsup(f"a host object of type {kind} (not a node:v8 typed array)")
            n = self.varint(self.end - self.pos + 1)
            b = self.raw(n)
            slot = self.new_id(None)
            self.objs[slot] = r = _typed(spec, b)
            return r
        if t == 0x24 or t == 0x40 or t == 0x7B or t == 0x3A or t == 0x2C:
            raise _bad(f"an end tag 0x{t:02x} where a value belongs")
        name = _TAG_NAMES.get(t)
        if name is not None:
            raise _unsup(name)
        raise _bad(f"unknown tag 0x{t:02x}")

    def view(self, buf: bytes) -> Any:
        sub = self.byte()
        off = self.varint(2**32)
        n = self.varint(2**32)
        if self.version >= 14:
            self.varint(2**32)  # flags (length-tracking, backed by a resizable buffer)
        kind = _VIEW_TAGS.get(sub)
        if kind is None:
            raise _bad(f"unknown ArrayBuffer view subtag 0x{sub:02x}")
        if off + n > len(buf):
            raise _bad(f"a view of {n} bytes at {off} of an ArrayBuffer of {len(buf)}")
        r = _typed(_HOST_TYPES[kind], buf[off:off + n])
        self.new_id(r)
        return r

    def elem(self, depth: int) -> Any:
        v = self.value(depth)
        return None if v is _HOLE else v

    def array_props(self, depth: int) -> int:
        if self.peek_tag() == 0x24:
            return 0
        k = self.key(depth)
        if k is _END:
            return 0
        raise _unsup(f"an array with the named property {str(k)[:40]!r}")


def _typed(spec: tuple[str, str | None, int], b: bytes) -> Any:
    name, tc, size = spec
    if len(b) % size:
        raise _bad(f"a {name} of {len(b)} bytes (not a multiple of {size})")
    if tc is None:
        return b
    if tc == "":
        raise _unsup(f"a {name}")
    a = array.array(tc)
    a.frombytes(b)
    if sys.byteorder != "little":
        a.byteswap()
    return a


def loads(data: bytes | bytearray | memoryview) -> Any:
    """The value ``data`` (V8's serialization format, versions 13..15) holds. ShmError EINVAL for
    malformed or truncated data (or bytes after the value), ENOTSUP for a value with no Python
    equivalent here; nothing else."""
    r = _Reader(data)
    try:
        r.header()
        v = r.value(0)
        if v is _HOLE:
            raise _bad("the hole as a top-level value")
        if r.pos != r.end:
            raise _bad(f"{r.end - r.pos} bytes after the value")
        return v
    except ShmError:
        raise
    except RecursionError:
        raise _unsup("a value nested too deeply") from None
    except MemoryError:
        raise _unsup("a value too large for this process's memory") from None
    except Exception as e:  # defence in depth: every bound is checked above
        raise _bad(f"{type(e).__name__}: {e}") from None
