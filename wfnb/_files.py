"""Files the CLI and the inspector write and read: written whole or not at all, read only when
they are plain files of a bounded size.

A write goes to a temporary file beside the target and is renamed onto it once complete, so a
crash or a full disk never leaves half a file, and a file is replaced only when asked (else the
rename is a hard link, which refuses an existing name even if it appeared meanwhile). A read
looks at the file before opening it: a FIFO, a device or a directory is refused without being
opened (opening a FIFO would wait for a writer, forever), and the open itself cannot block.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class FileRefused(ValueError):
    """A file that is not read (not a regular file, or too big); the message says why."""


@contextlib.contextmanager
def atomic_write(path: Path, *, overwrite: bool) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through; it appears, complete, only if the block succeeds.

    Without ``overwrite`` an existing ``path`` raises FileExistsError, before or at the rename.
    """
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "the file exists", str(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _link_new(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _link_new(temporary: str, path: Path) -> None:
    """Give ``path`` the temporary file's content, unless ``path`` exists by now."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "the file exists", str(path)) from None
    except OSError:  # no hard links on this file system: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "the file exists", str(path)) from None
        os.replace(temporary, path)


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else
    FileRefused (a FIFO or device is never opened; a file swapped for one meanwhile is caught
    after the non-blocking open)."""
    _check(path, os.stat(path), limit)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as file:
        _check(path, os.fstat(file.fileno()), limit)
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew since
        raise FileRefused(f"{path} is larger than {limit:,} bytes: nothing was read")
    return data


def _check(path: Path, info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise FileRefused(f"{path} is {kind}, not a regular file: nothing was read")
    if info.st_size > limit:
        raise FileRefused(f"{path} is {info.st_size:,} bytes, more than the {limit:,} allowed: "
                          "nothing was read")
