"""The one error type of shmkit for Python: ``ShmError`` with the same ``code`` strings as the
TypeScript side (src/errors.ts): an errno name (``ENOENT``, ``EACCES``, ...) or one of shmkit's
own codes (``EBADHDR``, ``ECLOSED``, ``ETIMEDOUT``, ``EBUSY``, ``ENOTSUP``, ``ENOLIB``)."""

from __future__ import annotations

__all__ = ["ShmError"]


class ShmError(Exception):
    """An error from shmkit: ``code`` says what went wrong, the message names the object.

    ``errno`` is the OS errno where one exists, ``syscall`` the system call that failed.
    """

    def __init__(self, code: str, message: str, *, errno: int | None = None, syscall: str | None = None):
        super().__init__(message)
        self.code = code
        self.errno = errno
        self.syscall = syscall

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"ShmError({self.code!r}, {self.message!r})"
