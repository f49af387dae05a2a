"""Loads libshmkit (the C library the TypeScript side uses) through ctypes.

Search order (the same as ffi/mod.ts, with Python's own places):

1. ``SHMKIT_LIB``: a path to libshmkit.so. When set and it cannot be loaded, that is ``ShmError``
   ``ENOLIB`` naming the path (no other copy is tried).
2. ``build/libshmkit.so`` of the checkout this package was installed from (recorded in
   ``shmkit/_source.py`` by setup.py), or of a checkout above this file (running from the source
   tree with ``PYTHONPATH=python``).
3. The C sources (the checkout's ``csrc/``, else the copy bundled in the package as
   ``shmkit/_csrc``) compiled with ``$CC`` (default ``cc``) like the Makefile's ``lib`` target,
   into a cache directory: ``$SHMKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/shmkit``, else
   ``~/.cache/shmkit``, in a subdirectory keyed by platform and a hash of the sources.

A library is accepted only if its ABI version is 1 and it has the Python hot-path functions
(csrc/ops.c); an older build/libshmkit.so without them is skipped (``make lib`` rebuilds it).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import threading
from ctypes import POINTER, c_double, c_int32, c_uint32, c_uint64, c_uint8, c_void_p

from .errors import ShmError

I32, U32, F64 = c_int32, c_uint32, c_double
P_U8 = POINTER(c_uint8)
P_I32 = POINTER(c_int32)
P_U32 = POINTER(c_uint32)
P_U64 = POINTER(c_uint64)
P_F64 = POINTER(c_double)

# name: (restype, argtypes). Strings are passed as bytes (c_char_p is compatible with uint8_t*).
_SIGS = {
    "shmkit_abi_version": (I32, []),
    "shmkit_nop": (I32, []),
    "shmkit_page_size": (I32, []),
    "shmkit_name_max": (I32, []),
    "shmkit_strerror": (I32, [I32, ctypes.c_char_p, U32]),
    "shmkit_errno_name": (I32, [I32, ctypes.c_char_p, U32]),
    "shmkit_errno_value": (I32, [ctypes.c_char_p]),
    "shmkit_shm_create": (I32, [ctypes.c_char_p, F64, U32]),
    "shmkit_shm_open": (I32, [ctypes.c_char_p, U32]),
    "shmkit_shm_unlink": (I32, [ctypes.c_char_p]),
    "shmkit_memfd_create": (I32, [ctypes.c_char_p, F64]),
    "shmkit_open_proc_fd": (I32, [I32, I32, U32]),
    "shmkit_close": (I32, [I32]),
    "shmkit_fstat": (I32, [I32, P_F64]),
    "shmkit_mmap": (I32, [I32, F64, F64, U32]),
    "shmkit_map_addr": (F64, [I32]),
    "shmkit_map_length": (F64, [I32]),
    "shmkit_munmap": (I32, [I32, U32]),
    "shmkit_madvise": (I32, [I32, F64, F64, I32]),
    "shmkit_futex_wait": (I32, [I32, F64, U32, F64]),
    "shmkit_futex_wake": (I32, [I32, F64, I32]),
    "shmkit_atomic_load_u32": (F64, [I32, F64, I32]),
    "shmkit_atomic_store_u32": (I32, [I32, F64, U32, I32]),
    "shmkit_atomic_exchange_u32": (F64, [I32, F64, U32, I32]),
    "shmkit_atomic_cas_u32": (F64, [I32, F64, U32, U32, I32]),
    "shmkit_atomic_fetch_add_u32": (F64, [I32, F64, U32, I32]),
    "shmkit_atomic_load_u64": (I32, [I32, F64, I32, P_U64]),
    "shmkit_atomic_store_u64": (I32, [I32, F64, I32, P_U64]),
    "shmkit_atomic_exchange_u64": (I32, [I32, F64, I32, P_U64]),
    "shmkit_atomic_cas_u64": (I32, [I32, F64, I32, P_U64]),
    "shmkit_atomic_fetch_add_u64": (I32, [I32, F64, I32, P_U64]),
    "shmkit_getpid": (I32, []),
    "shmkit_geteuid": (I32, []),
    "shmkit_signal_count": (F64, []),
    "shmkit_proc_start_time": (F64, [I32]),
    "shmkit_proc_alive": (I32, [I32, F64]),
    "shmkit_now_ns": (F64, []),
    "shmkit_rusage": (I32, [P_F64]),
    # csrc/ops.c: the hot operations of Ring and Mempool (one call per operation); the local
    # structs are passed as c_void_p (ctypes.byref / addressof of the Structures in _ops.py).
    "shmkit_ops_local_size": (I32, [I32]),
    "shmkit_ops_fault": (I32, [ctypes.c_char_p]),
    "shmkit_ring_format": (I32, [I32, F64, U32, U32, U32]),
    "shmkit_ring_attach": (I32, [I32, F64, U32, c_void_p]),
    "shmkit_ring_enqueue": (I32, [c_void_p, c_void_p, I32, U32]),
    "shmkit_ring_dequeue": (I32, [c_void_p, c_void_p, I32, U32]),
    "shmkit_ring_enqueue1": (I32, [c_void_p, U32]),
    "shmkit_ring_dequeue1": (ctypes.c_int64, [c_void_p]),
    "shmkit_ring_park": (I32, [c_void_p, U32, F64]),
    "shmkit_ring_count": (F64, [c_void_p]),
    "shmkit_ring_release": (I32, [c_void_p]),
    "shmkit_mempool_attach": (I32, [I32, F64, c_void_p]),
    "shmkit_mempool_get": (I32, [c_void_p]),
    "shmkit_mempool_put": (I32, [c_void_p, I32]),
    "shmkit_mempool_reclaim": (I32, [c_void_p]),
    "shmkit_mempool_park": (I32, [c_void_p, F64]),
    "shmkit_mempool_available": (I32, [c_void_p]),
    "shmkit_mempool_release": (I32, [c_void_p]),
    # csrc/ops_sync.c: Mutex, Semaphore, Condition (python/shmkit/locks.py)
    "shmkit_mutex_check": (I32, [I32, F64, U32]),
    "shmkit_mutex_claim": (I32, [I32, F64, U32]),
    "shmkit_mutex_release_slot": (I32, [I32, F64, U32, U32]),
    "shmkit_mutex_try": (I32, [I32, F64, U32, U32, U32]),
    "shmkit_mutex_park": (I32, [I32, F64, U32, F64]),
    "shmkit_mutex_pass_wake": (I32, [I32, F64, U32, U32]),
    "shmkit_mutex_unlock": (I32, [I32, F64, U32, U32]),
    "shmkit_mutex_abandon": (I32, [I32, F64, U32, U32]),
    "shmkit_sem_value": (I32, [I32, F64]),
    "shmkit_sem_try": (I32, [I32, F64]),
    "shmkit_sem_release": (I32, [I32, F64, U32]),
    "shmkit_sem_park": (I32, [I32, F64, F64]),
    "shmkit_sem_pass_wake": (I32, [I32, F64]),
    "shmkit_cond_enter": (ctypes.c_int64, [I32, F64]),
    "shmkit_cond_park": (I32, [I32, F64, U32, F64]),
    "shmkit_cond_leave": (I32, [I32, F64]),
    "shmkit_cond_notify": (I32, [I32, F64, I32]),
    # csrc/ops_log.c: MessageLog (python/shmkit/log.py); the local struct as c_void_p
    "shmkit_log_local_size": (I32, []),
    "shmkit_log_fault": (I32, [ctypes.c_char_p]),
    "shmkit_log_attach": (I32, [I32, F64, U32, c_void_p]),
    "shmkit_log_write": (I32, [c_void_p, c_void_p, U32, U32]),
    "shmkit_log_read": (I32, [c_void_p, c_void_p]),
    "shmkit_log_read_batch": (I32, [c_void_p, c_void_p, I32]),
    "shmkit_log_consume": (I32, [c_void_p, U32]),
    "shmkit_log_park": (I32, [c_void_p, U32, U32, F64]),
    "shmkit_log_size": (F64, [c_void_p]),
    "shmkit_log_release": (I32, [c_void_p]),
    # csrc/ops_heap.c: SharedHeap (python/shmkit/heap.py); the local struct as c_void_p
    "shmkit_heap_local_size": (I32, []),
    "shmkit_heap_byte_length": (I32, [U32, U32, U32, P_F64]),
    "shmkit_heap_bind": (I32, [c_void_p]),
    "shmkit_heap_alloc": (ctypes.c_int64, [c_void_p, F64, U32, U32]),
    "shmkit_heap_free": (I32, [c_void_p, F64, U32]),
    "shmkit_heap_size_of": (ctypes.c_int64, [c_void_p, F64, U32]),
    "shmkit_heap_name": (ctypes.c_int64, [c_void_p, U32, ctypes.c_char_p, U32, F64, U32, U32, U32]),
    "shmkit_heap_begin": (I32, [c_void_p, U32]),
    "shmkit_heap_end": (I32, [c_void_p, U32]),
    "shmkit_heap_stats": (I32, [c_void_p, P_F64, U32]),
    "shmkit_heap_release": (I32, [c_void_p]),
    "shmkit_log_write_batch": (I32, [c_void_p, c_void_p, ctypes.c_uint64, c_void_p, U32, U32]),
    "shmkit_log_claim": (I32, [c_void_p, U32, U32, c_void_p]),
    "shmkit_log_finish_claim": (I32, [c_void_p, U32, U32]),
    # csrc/ops_chan.c: Channel (python/shmkit/channel.py); the local struct as c_void_p
    "shmkit_chan_local_size": (I32, []),
    "shmkit_chan_attach": (I32, [I32, F64, U32, c_void_p]),
    "shmkit_chan_scratch": (I32, [c_void_p, c_void_p, F64]),
    "shmkit_chan_register": (I32, [c_void_p]),
    "shmkit_chan_take": (I32, [c_void_p]),
    "shmkit_chan_send": (I32, [c_void_p, c_void_p, U32]),
    "shmkit_chan_send_batch": (I32, [c_void_p, c_void_p, F64, c_void_p, I32]),
    "shmkit_chan_queue": (I32, [c_void_p, I32, U32]),
    "shmkit_chan_unloan": (I32, [c_void_p, I32]),
    "shmkit_chan_recv": (ctypes.c_int64, [c_void_p]),
    "shmkit_chan_recv_batch": (I32, [c_void_p, c_void_p, I32]),
    "shmkit_chan_release": (I32, [c_void_p, I32]),
    "shmkit_chan_release_batch": (I32, [c_void_p, c_void_p, I32]),
    "shmkit_chan_park": (I32, [c_void_p, U32, F64]),
    "shmkit_chan_reclaim": (I32, [c_void_p]),
    "shmkit_chan_size": (I32, [c_void_p]),
    "shmkit_chan_available": (I32, [c_void_p]),
    "shmkit_chan_close": (I32, [c_void_p]),
}

_REQUIRED_OPS = ("shmkit_ring_enqueue", "shmkit_cond_notify", "shmkit_log_write", "shmkit_heap_alloc", "shmkit_chan_send")  # ops*.c

# csrc files, as the Makefile's `lib` target compiles them: the C files every platform compiles
# (the Makefile's PORTABLE_CSRC), then the platform's own os_<platform>.c.
_PORTABLE = ["shmkit.c", "ops.c", "ops_sync.c", "ops_log.c", "ops_heap.c", "ops_chan.c"]
_LINUX_SOURCES = _PORTABLE + ["os_linux.c"]
_LINUX_FILES = _LINUX_SOURCES + ["shmkit.h", "os.h", "shmkit_layout.h", "ops_common.h", "exports.map"]
_DARWIN_SOURCES = _PORTABLE + ["os_darwin.c"]
_DARWIN_FILES = _DARWIN_SOURCES + ["shmkit.h", "os.h", "shmkit_layout.h", "ops_common.h"]


def _lib_name() -> str:
    return "libshmkit.dylib" if sys.platform == "darwin" else "libshmkit.so"


def _source_dirs() -> list[str]:
    """Checkouts to look in: the recorded install source, then any parent of this file with csrc/."""
    out: list[str] = []
    try:
        from ._source import SOURCE_DIR  # type: ignore

        out.append(SOURCE_DIR)
    except ImportError:
        pass
    d = os.path.dirname(os.path.abspath(__file__))
    for _ in range(4):
        d = os.path.dirname(d)
        if os.path.isfile(os.path.join(d, "csrc", "shmkit.h")) and d not in out:
            out.append(d)
    return out


def _cache_root() -> str:
    if os.environ.get("SHMKIT_CACHE_DIR"):
        return os.environ["SHMKIT_CACHE_DIR"]
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/shmkit")
    if os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "shmkit")
    return os.path.expanduser("~/.cache/shmkit")


def _try_load(path: str, tried: list[str]) -> ctypes.CDLL | None:
    if not os.path.isfile(path):
        tried.append(f"{path}: no such file")
        return None
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        tried.append(f"{path}: {str(e).splitlines()[0]}")
        return None
    if not hasattr(lib, "shmkit_abi_version"):
        tried.append(f"{path}: not libshmkit (no shmkit_abi_version)")
        return None
    lib.shmkit_abi_version.restype = c_int32
    abi = lib.shmkit_abi_version()
    if abi != 1:
        tried.append(f"{path}: ABI version {abi}, this shmkit needs 1 (rebuild it: make lib)")
        return None
    if not all(hasattr(lib, f) for f in _REQUIRED_OPS):
        tried.append(f"{path}: built without csrc/ops.c, ops_sync.c, ops_log.c, ops_heap.c or ops_chan.c (the Python hot path); rebuild it with `make lib`")
        return None
    return lib


def _compile(csrc: str, tried: list[str]) -> str | None:
    darwin = sys.platform == "darwin"
    if sys.platform not in ("linux", "darwin"):
        tried.append(f"compile {csrc}: no C sources for platform {sys.platform}")
        return None
    files, objects = (_DARWIN_FILES, _DARWIN_SOURCES) if darwin else (_LINUX_FILES, _LINUX_SOURCES)
    h = hashlib.sha256()
    for f in files:
        p = os.path.join(csrc, f)
        if not os.path.isfile(p):
            tried.append(f"compile {csrc}: {f} is missing")
            return None
        with open(p, "rb") as fh:
            h.update(f.encode() + b"\0" + fh.read())
    out_dir = os.path.join(_cache_root(), f"{sys.platform}-{platform.machine()}-py-{h.hexdigest()[:16]}")
    out = os.path.join(out_dir, _lib_name())
    if os.path.isfile(out):
        return out
    cc = os.environ.get("CC") or "cc"
    tmp = f"{out}.{os.getpid()}.tmp"
    args = [cc, "-O2", "-std=c11", "-fPIC", "-fvisibility=hidden", "-pthread", "-o", tmp]
    args += [os.path.join(csrc, f) for f in objects]
    if darwin:
        args += ["-dynamiclib"]
    else:
        args += ["-shared", f"-Wl,--version-script={os.path.join(csrc, 'exports.map')}", "-Wl,-z,nodelete"]
    try:
        os.makedirs(out_dir, mode=0o700, exist_ok=True)
        r = subprocess.run(args, capture_output=True, timeout=300)
    except FileNotFoundError:
        tried.append(f"compile {csrc} into {out_dir}: the C compiler `{cc}` was not found")
        return None
    except (OSError, subprocess.TimeoutExpired) as e:
        tried.append(f"compile {csrc} into {out_dir}: {e}")
        return None
    if r.returncode != 0:
        detail = " | ".join(r.stderr.decode(errors="replace").strip().splitlines()[:3])
        tried.append(f"compile {csrc} into {out_dir} with `{cc}`: exit {r.returncode} ({detail})")
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return None
    os.replace(tmp, out)  # atomic: concurrent first uses each build, one rename wins
    return out


def _locate() -> tuple[ctypes.CDLL, str]:
    tried: list[str] = []
    env = os.environ.get("SHMKIT_LIB")
    if env:
        lib = _try_load(env, tried)
        if lib is None:
            raise ShmError(
                "ENOLIB",
                f"shmkit could not load SHMKIT_LIB={env}: {tried[-1]}\n"
                f"Fix: point SHMKIT_LIB at a built {_lib_name()} (`make lib` in the shmkit checkout writes "
                f"build/{_lib_name()}), or unset it.",
            )
        return lib, env
    sources = _source_dirs()
    for d in sources:
        p = os.path.join(d, "build", _lib_name())
        lib = _try_load(p, tried)
        if lib is not None:
            return lib, p
    csrcs = [os.path.join(d, "csrc") for d in sources]
    csrcs.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_csrc"))
    for c in csrcs:
        if not os.path.isdir(c):
            continue
        p = _compile(c, tried)
        if p is not None:
            lib = _try_load(p, tried)
            if lib is not None:
                return lib, p
    raise ShmError(
        "ENOLIB",
        "shmkit could not load its native library libshmkit. Tried:\n  "
        + "\n  ".join(tried or ["(no checkout and no bundled C sources found)"])
        + f"\nFix: set SHMKIT_LIB=/path/to/{_lib_name()}, or run `make lib` in the shmkit checkout, or install "
        "a C compiler (cc) so shmkit can build it on first use.",
    )


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_fast: ctypes.PyDLL | None = None
_raw: ctypes.PyDLL | None = None
library_path: str | None = None

# Non-blocking hot calls go through a PyDLL handle: the GIL stays held (no release/reacquire per
# call, and no other thread of this process can unmap the segment under the call).
_FAST = [n for n in _SIGS if n.startswith(("shmkit_ring_", "shmkit_mempool_", "shmkit_atomic_", "shmkit_log_", "shmkit_heap_", "shmkit_chan_"))
         and not n.endswith("_park")]


def lib() -> ctypes.CDLL:
    """The loaded library, with every function's ctypes signature set (loaded on first use)."""
    global _lib, library_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            l, path = _locate()
            for name, (res, args) in _SIGS.items():
                f = getattr(l, name)
                f.restype = res
                f.argtypes = args
            f = ctypes.PyDLL(path)
            for name in _FAST:
                fn = getattr(f, name)
                fn.restype, fn.argtypes = _SIGS[name]
            raw_ = ctypes.PyDLL(path)
            for name in _RAW:
                getattr(raw_, name).restype = _SIGS[name][0]  # no argtypes: see raw()
            library_path = path
            globals()["_fast"] = f
            globals()["_raw"] = raw_
            _lib = l
    return _lib


_RAW = ["shmkit_ring_enqueue1", "shmkit_ring_dequeue1", "shmkit_mempool_get", "shmkit_mempool_put", "shmkit_chan_recv",
        "shmkit_chan_release"]


def raw() -> ctypes.PyDLL:
    """The per-item hot functions (``_RAW``) through a PyDLL handle with no ``argtypes``: ctypes'
    default conversions take a ``ctypes.byref(local)`` and a Python int as is, which halves the
    cost of a call (about 250 ns instead of 520 ns here). The caller MUST pass exactly
    (byref(local struct)[, int already range-checked]): nothing checks the types."""
    if _raw is None:
        lib()
    assert _raw is not None
    return _raw


def fast() -> ctypes.PyDLL:
    """The library through a PyDLL handle (GIL held during the call) for the non-blocking hot
    functions (shmkit_ring_*, shmkit_mempool_*, shmkit_atomic_*, shmkit_log_* except *_park)."""
    if _fast is None:
        lib()
    assert _fast is not None
    return _fast


_errno_cache: dict[int, str] = {}


def errno_name(r: int) -> str:
    """The errno name of a negative native return (``-ENOENT`` -> ``"ENOENT"``)."""
    from .ops_codes import EBADHDR_NEG

    if r == EBADHDR_NEG:
        return "EBADHDR"
    n = _errno_cache.get(r)
    if n is None:
        buf = ctypes.create_string_buffer(64)
        k = lib().shmkit_errno_name(-r, buf, 64)
        n = buf.value.decode() if k > 0 else f"E{-r}"
        _errno_cache[r] = n
    return n


def strerror(r: int) -> str:
    buf = ctypes.create_string_buffer(256)
    lib().shmkit_strerror(-r, buf, 256)
    return buf.value.decode(errors="replace")


def os_error(r: int, syscall: str, what: str) -> ShmError:
    code = errno_name(r)
    return ShmError(code, f"{what}: {strerror(r).lower()} ({code})", errno=-r, syscall=syscall)


def check(r: int, syscall: str, what: str) -> int:
    if r < 0:
        raise os_error(int(r), syscall, what)
    return int(r)


_errnos: dict[str, int] = {}


def errno_value(name: str) -> int:
    """This platform's errno number for a name (errno numbers differ between platforms)."""
    v = _errnos.get(name)
    if v is None:
        v = lib().shmkit_errno_value(name.encode())
        if v < 0:
            raise RuntimeError(f"libshmkit does not know errno {name}")
        _errnos[name] = v
    return v
