"""The shapes of streamed chunks wfnb understands, reduced to their text.

``str``; ``RunResponse`` (and Agno/LangChain-style objects with a ``.content`` string);
OpenAI-style chat chunks, as objects or dicts (``choices[0].delta.content``, or
``choices[0].message.content`` / ``choices[0].text`` for non-streamed answers).
"""

from __future__ import annotations

from typing import Any

from wfnb._events import COMPLETION_EVENTS, RunResponse


def chunk_text(chunk: Any) -> str | None:
    """The text a chunk carries, or None when it carries none (e.g. a role-only delta)."""
    if isinstance(chunk, str):
        return chunk
    if isinstance(chunk, RunResponse):
        return None if chunk.content is None else chunk.get_content_as_string()
    content = _field(chunk, "content")
    if isinstance(content, str):
        return content
    choices = _field(chunk, "choices")
    if isinstance(choices, (list, tuple)):  # OpenAI-style; the usage chunk has no choices
        first = choices[0] if choices else None
        for holder in ("delta", "message"):
            part = _field(first, holder)
            if part is not None:
                text = _field(part, "content")
                return text if isinstance(text, str) else None
        text = _field(first, "text")
        return text if isinstance(text, str) else None
    if chunk is None:
        return None
    raise TypeError(
        f"cannot show a chunk of type {type(chunk).__name__}: expected str, RunResponse, an "
        "object with a string .content, or an OpenAI-style chunk (choices[0].delta.content)"
    )


def is_completion(chunk: Any) -> bool:
    """Whether a chunk announces that the run is complete (e.g. a cached answer)."""
    return isinstance(chunk, RunResponse) and chunk.event in COMPLETION_EVENTS


def _field(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)
