"""What every fake API shares: Server-Sent Event framing, ids, and the shape of one API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wfnb.testing._script import Failure, Prompt, Reply

CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z: fixed, so answers are the same on every run
Body = dict[str, Any]
Frames = Iterator[bytes]


def frame(data: Any, event: str | None = None) -> bytes:
    """One Server-Sent Event: an optional ``event:`` line, a ``data:`` line, a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def ident(prefix: str, number: int, index: int | None = None) -> str:
    """A deterministic id: the request's number on this server, and an item's index in it."""
    return f"{prefix}wfnb{number:06d}" + ("" if index is None else f"_{index}")


@dataclass(frozen=True)
class Api:
    """One wire format: how its requests read and its answers, streamed or not, are written.

    ``parse`` turns a request body into a :class:`Prompt`; ``complete`` writes the JSON answer;
    ``stream`` the SSE frames (``number`` is the request's number, for ids); ``error`` the JSON
    body of an HTTP error.
    """

    name: str
    parse: Callable[[Body], Prompt]
    complete: Callable[[Body, Prompt, Reply, int], Body]
    stream: Callable[[Body, Prompt, Reply, int], Frames]
    error: Callable[[Failure, int], Body]
    request_id_header: str
