"""Shared helpers of the Python suite: unique test names (the shmkit-test-<prefix>-<pid>-... scheme
scripts/test_all.sh uses to find leaks), a Python child process runner, and Unlinking (an object
whose name is removed when a with-block ends)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

PY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")


def uname(prefix: str = "py") -> str:
    return f"shmkit-test-{prefix}-{os.getpid()}-{secrets.token_hex(4)}"


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = PY_DIR + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def child(*args: str, wait: bool = True, timeout: float = 60, **kw):
    """Runs python/tests/child.py with args; returns CompletedProcess (wait) or Popen."""
    cmd = [sys.executable, CHILD, *args]
    if wait:
        return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout, **kw)
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def has_numpy() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


class Unlinking:
    """A shmkit object whose name is removed (then the object closed) when the with-block ends."""

    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        return self.obj

    def __exit__(self, *exc):
        self.obj.unlink()
        self.obj.close()


def sigint(p, settle: float) -> tuple[float, str]:
    """Lets a child that printed "ready" block for ``settle`` seconds, sends it SIGINT (Ctrl-C) and
    waits for it to exit: (seconds from the signal to its exit, its stderr)."""
    time.sleep(settle)
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.wait(10)
    return time.monotonic() - t, p.stderr.read()
