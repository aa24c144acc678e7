"""Opening the files a user names (workflows, schemas, data): regular files only, found out
without blocking.

A FIFO opened for reading waits for a writer, and no Python signal handler runs while
``open()`` waits, so a workflow path that is a named pipe would hang the command, deaf to
Ctrl-C. The file is opened non-blocking and its kind read from the open descriptor (no
gap in which it could be swapped), and anything but a regular file is refused.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """The path names a FIFO, device or socket; ``kind`` says which ("a FIFO (named pipe)")."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", str(path))
        self.kind = kind


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a file"


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading; raises ``IsADirectoryError`` for a folder,
    ``NotRegularFileError`` for a FIFO, device or socket, else the ``OSError`` of ``open``."""
    flags = (
        os.O_RDONLY
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_NOCTTY", 0)
        | getattr(os, "O_BINARY", 0)
    )
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ENXIO:  # a socket cannot be opened at all
            raise NotRegularFileError(path, "a socket") from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(path, file_kind(mode))
        os.set_blocking(
            descriptor, True
        )  # reads of a regular file block either way; say so plainly
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


__all__ = ["NotRegularFileError", "file_kind", "open_regular"]
