"""Who runs a run: the host, the process id, and when that process started, so that a pid the
system has since given to another process is not mistaken for the one that started the run;
and who answers a run's question (user@host).

The start is the boot id with the process's start time in clock ticks (Linux ``/proc``): both
change when the pid is reused or the machine reboots. Elsewhere it is None and only whether the
pid is alive is known.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
from pathlib import Path

_PROC = Path("/proc")


@functools.cache
def host() -> str:
    """This machine's name, as the runs table records it."""
    return socket.gethostname()


@functools.cache
def current_user() -> str:
    """``user@host``, as an answer records who gave it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{host()}"


def process_start(pid: int) -> str | None:
    """A token naming process ``pid`` since it started (None: unknown here, no such process,
    or one that has ended and waits to be reaped)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # after "pid (name) ": state is field 3 of proc(5); starttime is field 22
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else f"{boot}:{fields[19]}"


def has_ended(pid: int, start: str | None) -> bool:
    """Whether the process that recorded ``pid`` and ``start`` on this host is gone."""
    now = process_start(pid)
    if now is not None:
        return start is not None and now != start
    if _PROC.joinpath("self").exists():  # /proc works here: no entry (or a zombie) is gone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
