"""What a streamed chunk means: its text, reasoning, tool-call deltas and token usage.

One adapter layer serves ``%workflow``, ``%%workflow``, ``Workflow.run`` and ``wfnb.show``. It
recognises chunks by their fields, never by importing a client package (``import wfnb`` stays
light):

- ``str``; ``RunResponse``; objects (or dicts) with a string ``content``;
- OpenAI Chat Completions chunks and answers (``choices``: ``delta``/``message`` content,
  ``reasoning_content``, ``tool_calls`` by index, the usage-only chunk), and the events of the
  ``.chat.completions.stream()`` helper (its ``chunk`` events; the others repeat them);
- OpenAI Responses stream events (``response.*``) and ``Response`` answers;
- Anthropic Messages raw stream events (text, thinking and ``tool_use`` input deltas, usage),
  the ``messages.stream()`` helper's events (its derived ``text``/``thinking``/... events repeat
  the raw ones and are skipped), and ``Message`` answers;
- LangChain ``AIMessageChunk``/``AIMessage`` (string content or content blocks, reasoning or
  thinking blocks, ``tool_call_chunks``, ``usage_metadata``), ``astream_events`` v2 dicts and
  LangGraph's ``(message, metadata)`` pairs;
- agno run events (content deltas, reasoning, tool calls; the completion event only when it is
  the first text, since it repeats the answer) and ``RunOutput``.

Anything else raises UnknownChunkError at its first chunk, unless taught with
:func:`register_chunk_adapter`. Events that carry nothing are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wfnb._chunk_shapes import NOTHING, CallDelta, Piece, first_known, read_shape
from wfnb._errors import UnknownChunkError
from wfnb._events import COMPLETION_EVENTS, RunResponse, ToolCall, Usage

ChunkAdapter = Callable[[Any], "str | RunResponse | None"]
_ADAPTERS: dict[type, ChunkAdapter] = {}


def register_chunk_adapter(kind: type, adapter: ChunkAdapter) -> None:
    """Teach wfnb a chunk type: ``adapter(chunk)`` returns its text (``str``), a RunResponse
    (``content``, ``reasoning_content``, ``tool_calls``, ``usage``: the run's totals so far), or
    None when the chunk carries nothing to show. Subclasses of ``kind`` are covered too, and a
    registered adapter takes precedence over wfnb's own."""
    if not isinstance(kind, type) or not callable(adapter):
        raise TypeError("register_chunk_adapter(kind, adapter) takes a type and a callable")
    _ADAPTERS[kind] = adapter


def adapt(chunk: Any) -> Piece:
    """The meaning of one chunk; UnknownChunkError if no adapter knows its type."""
    if chunk is None:
        return NOTHING
    if isinstance(chunk, str):
        return Piece(text=chunk)
    if _ADAPTERS:
        for kind in type(chunk).__mro__:
            if kind in _ADAPTERS:
                return _from_registered(_ADAPTERS[kind](chunk))
    if isinstance(chunk, RunResponse):
        return _from_run_response(chunk)
    if isinstance(chunk, tuple) and len(chunk) == 2 and isinstance(chunk[1], dict):
        return adapt(chunk[0])  # LangGraph stream_mode="messages": (message chunk, metadata)
    piece = read_shape(chunk)
    if piece is None:
        raise UnknownChunkError(type(chunk))
    return piece


def _from_registered(result: str | RunResponse | None) -> Piece:
    if result is None or isinstance(result, str):
        return Piece(text=result or "")
    if isinstance(result, RunResponse):
        return _from_run_response(result)
    raise TypeError(f"a chunk adapter returned {type(result).__name__}: return str, RunResponse "
                    "or None")


def _from_run_response(response: RunResponse) -> Piece:
    """Its fields; a model chunk wrapped as its content (``RunResponse(content=chunk)``) is read
    as that chunk, and any other content as its str()."""
    inner = _wrapped(response.content)
    return Piece(
        text=response.get_content_as_string() if inner is None else inner.text,
        reasoning=(response.reasoning_content or "") + (inner.reasoning if inner else ""),
        calls=tuple(response.tool_calls) + (inner.calls if inner else ()),
        usage=response.usage or (inner.usage if inner else None),
        adds_usage=response.usage is None and inner is not None and inner.adds_usage,
        whole=response.event in COMPLETION_EVENTS or (inner is not None and inner.whole),
    )


def _wrapped(content: Any) -> Piece | None:
    if content is None or isinstance(content, str):
        return None
    try:
        return adapt(content)
    except UnknownChunkError:
        return None


# -- accumulating a stream ---------------------------------------------------------------------


@dataclass
class Collector:
    """A stream's text, reasoning, tool calls and usage, accumulated chunk by chunk."""

    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    _by_key: dict[tuple[str, Any], ToolCall] = field(default_factory=dict)

    def take(self, chunk: Any) -> tuple[Piece, list[ToolCall]]:
        """Add one chunk; what it adds to the display (the tool calls it touched, grown)."""
        piece = adapt(chunk)
        if piece.whole and self.texts:
            piece = Piece(usage=piece.usage)  # a completion event repeating the answer
        if piece.text:
            self.texts.append(piece.text)
        if piece.reasoning:
            self.reasoning.append(piece.reasoning)
        if piece.usage is not None:
            self.usage = _add(self.usage, piece.usage) if piece.adds_usage else _replace(
                self.usage, piece.usage)
        return piece, [self._merge(delta) for delta in piece.calls]

    def response(self, **ids: Any) -> RunResponse:
        """Everything taken, as one RunResponse."""
        return RunResponse(
            content="".join(self.texts), reasoning_content="".join(self.reasoning) or None,
            tool_calls=list(self.calls), usage=self.usage, **ids,
        )

    def _merge(self, delta: CallDelta | ToolCall) -> ToolCall:
        if isinstance(delta, ToolCall):
            if not any(call is delta for call in self.calls):
                self.calls.append(delta)
            return delta
        call = self._by_key.get(delta.key) if delta.key is not None else None
        if call is not None and delta.id and call.id and delta.id != call.id:
            call = None  # a later turn reusing the index
        if call is None and delta.id:
            call = next((known for known in self.calls if known.id == delta.id), None)
        if call is None:
            call = ToolCall()
            self.calls.append(call)
        if delta.key is not None:
            self._by_key[delta.key] = call
        call.id = call.id or delta.id
        call.name = delta.name or call.name
        call.arguments += delta.arguments
        if delta.result is not None:
            call.result = delta.result
        return call


def _replace(old: Usage | None, new: Usage) -> Usage:
    if old is None:
        return new
    return Usage(first_known(new.input_tokens, old.input_tokens),
                 first_known(new.output_tokens, old.output_tokens))


def _add(old: Usage | None, new: Usage) -> Usage:
    if old is None:
        return new
    return Usage(*(None if a is None and b is None else (a or 0) + (b or 0) for a, b in (
        (old.input_tokens, new.input_tokens), (old.output_tokens, new.output_tokens))))



def is_single(source: Any) -> bool:
    """Whether ``source`` is one chunk or answer rather than a stream of them (a pydantic model
    or a dict is iterable, but never a stream)."""
    return (
        isinstance(source, (str, bytes, dict, RunResponse))
        or hasattr(type(source), "model_fields")
        or not isinstance(source, Iterable)
    )
