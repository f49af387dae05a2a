"""The optional CPython accelerator (_accel.c) for the per-item ring, mempool and heap calls.

``bound(name, kind, local)`` returns a callable running libshmkit's ``name`` on the ctypes struct
``local`` (the object's process-local state): through the accelerator when it is available (a
METH_FASTCALL function, tens of ns per call), else through ctypes (``_lib.raw()``, about 250 ns).
Both call the same C function, so results are identical; SHMKIT_PY_ACCEL=0 forces ctypes.

The accelerator is compiled on first use with ``cc`` and Python's headers into the cache directory
libshmkit uses (keyed by the source's hash and the interpreter's ABI tag); when there is no
compiler or no Python.h, shmkit quietly keeps ctypes (``shmkit._accel.status()`` says why).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import subprocess
import sys
import sysconfig
import threading
import weakref
from typing import Any, Callable

from . import _lib

ENQUEUE1, DEQUEUE1, GET, PUT, HEAP_ALLOC, HEAP_FREE, SEND = 0, 1, 2, 3, 4, 5, 6

_lock = threading.Lock()
_module: Any = None
_tried = False
_status = "not tried yet"


def _build() -> Any:
    global _status
    if os.environ.get("SHMKIT_PY_ACCEL", "1") == "0":
        _status = "disabled by SHMKIT_PY_ACCEL=0"
        return None
    if sys.implementation.name != "cpython":
        _status = f"not CPython ({sys.implementation.name})"
        return None
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_accel.c")
    include = sysconfig.get_paths().get("include") or ""
    suffix = (importlib.machinery.EXTENSION_SUFFIXES or [".so"])[0]
    if not os.path.isfile(src):
        _status = f"{src} is missing"
        return None
    if not os.path.isfile(os.path.join(include, "Python.h")):
        _status = f"no Python.h in {include!r} (install the Python development headers)"
        return None
    with open(src, "rb") as fh:
        h = hashlib.sha256(fh.read() + suffix.encode() + include.encode()).hexdigest()[:16]
    out_dir = os.path.join(_lib._cache_root(), f"{sys.platform}-{platform.machine()}-accel-{h}")
    out = os.path.join(out_dir, "_shmkit_accel" + suffix)
    if not os.path.isfile(out):
        cc = os.environ.get("CC") or "cc"
        tmp = f"{out}.{os.getpid()}.tmp"
        args = [cc, "-O2", "-fPIC", "-std=c11", "-I", include, "-o", tmp, src]
        args += ["-dynamiclib", "-undefined", "dynamic_lookup"] if sys.platform == "darwin" else ["-shared"]
        try:
            os.makedirs(out_dir, mode=0o700, exist_ok=True)
            r = subprocess.run(args, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            _status = f"could not run {cc}: {e}"
            return None
        if r.returncode != 0:
            _status = f"{cc} failed: " + " | ".join(r.stderr.decode(errors="replace").strip().splitlines()[:3])
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return None
        os.replace(tmp, out)  # atomic: concurrent first uses each build, one rename wins
    try:
        spec = importlib.util.spec_from_file_location("_shmkit_accel", out)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001 - any failure means: use ctypes
        _status = f"could not load {out}: {e}"
        return None
    _status = f"loaded {out}"
    return mod


def module() -> Any:
    """The accelerator module, or None (then ``status()`` says why)."""
    global _module, _tried
    if not _tried:
        with _lock:
            if not _tried:
                _module = _build()
                _tried = True
    return _module


def status() -> str:
    """Whether the accelerator is in use, and if not, why."""
    module()
    return _status


def fast_method(name: str, kind: int, local: ctypes.Structure, obj: Any, slow: Callable[..., Any]) -> Callable[..., Any] | None:
    """With the accelerator: a callable that runs libshmkit's ``name`` (kind ENQUEUE1 or
    DEQUEUE1) on ``local`` and returns at once when it succeeded, and otherwise calls
    ``slow(obj, *args, **kwargs)`` (the method it stands in for; the accelerator holds ``obj``
    weakly). None without the accelerator: then the method itself is used."""
    m = module()
    if m is None or not hasattr(m, "bind_or"):
        return None
    fn = getattr(_lib.raw(), name)
    return m.bind_or(ctypes.cast(fn, ctypes.c_void_p).value, kind, ctypes.addressof(local), local, slow,
                     weakref.ref(obj))


def bound(name: str, kind: int, local: ctypes.Structure) -> Callable[..., int]:
    """libshmkit's ``name`` bound to ``local``: ``f(value)`` for ENQUEUE1/PUT, ``f()`` for
    DEQUEUE1/GET, ``f(n, align, flags)`` for HEAP_ALLOC and ``f(offset, flags)`` for HEAP_FREE (ints),
    ``f(buffer)`` for SEND (a C-contiguous buffer, passed in place with its length).
    The caller range-checks values (the accelerator also refuses out-of-range ones)."""
    fn = getattr(_lib.raw(), name)
    m = module()
    if kind == SEND and m is None:
        fs = getattr(_lib.fast(), name)  # argtypes (local, c_void_p, u32): bytes only, others copied once
        addr = ctypes.addressof(local)

        def send(data: Any, _keep: ctypes.Structure = local) -> int:
            b = data if type(data) is bytes else bytes(data)
            return fs(addr, b, len(b))

        return send
    fn = getattr(_lib.raw(), name)
    if m is not None:
        return m.bind(ctypes.cast(fn, ctypes.c_void_p).value, kind, ctypes.addressof(local), local)
    if kind in (HEAP_ALLOC, HEAP_FREE):  # doubles: through the argtypes of _lib.fast()
        return functools.partial(getattr(_lib.fast(), name), ctypes.byref(local))
    return functools.partial(fn, ctypes.byref(local))
