"""How the client packages' chunks, events and answers read, recognised by their fields alone
(no client package is imported): OpenAI Chat Completions and Responses, Anthropic Messages,
LangChain and agno, plus objects and dicts with a string ``content``. _chunks.py lists what is
covered and accumulates the Pieces read here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wfnb._errors import ModelStreamError, UnknownChunkError
from wfnb._events import ToolCall, Usage


@dataclass(frozen=True, slots=True)
class CallDelta:
    """A piece of a tool call: ``key`` ties the pieces of one call together within a stream."""

    key: tuple[str, Any] | None = None
    id: str | None = None
    name: str = ""
    arguments: str = ""
    result: str | None = None


@dataclass(frozen=True, slots=True)
class Piece:
    """What one chunk carries. ``usage`` replaces the totals, or adds to them if ``adds_usage``;
    ``whole`` marks text that repeats the whole answer (shown only when nothing else was)."""

    text: str = ""
    reasoning: str = ""
    calls: tuple[CallDelta | ToolCall, ...] = ()
    usage: Usage | None = None
    adds_usage: bool = False
    whole: bool = False


NOTHING = Piece()


def read_shape(chunk: Any) -> Piece | None:
    """Recognise a chunk by its fields; None when no shape fits."""
    if _get(chunk, "choices") is not None:
        return _openai_chat(chunk)
    kind = _get(chunk, "type")
    if isinstance(kind, str):
        piece = _by_type(chunk, kind)
        if piece is not None:
            return piece
    if _get(chunk, "object") == "response":
        return _responses_answer(chunk)
    event = _get(chunk, "event")
    if isinstance(event, str):
        if isinstance(chunk, dict) and event.startswith("on_"):
            return _langchain_event(chunk, event)
        if type(chunk).__module__.startswith("agno."):
            return _agno_event(chunk, event)
    if type(chunk).__name__ in ("RunOutput", "TeamRunOutput", "WorkflowRunOutput"):
        return _agno_output(chunk)
    content = _get(chunk, "content")
    if isinstance(content, str):
        return Piece(text=content)
    text = _get(chunk, "text")  # LangChain GenerationChunk (plain LLMs)
    if isinstance(text, str) and not isinstance(chunk, dict):
        return Piece(text=text)
    return None


def _by_type(chunk: Any, kind: str) -> Piece | None:
    if kind.startswith("response.") or kind == "error":
        return _responses_event(chunk, kind)
    if kind in _ANTHROPIC_EVENTS:
        return _ANTHROPIC_EVENTS[kind](chunk)
    if kind == "chunk" and _get(chunk, "chunk") is not None:
        return _openai_chat(_get(chunk, "chunk"))  # .chat.completions.stream(): the raw chunk
    if kind.split(".", maxsplit=1)[0] in _OPENAI_HELPER_REPEATS and "." in kind:
        return NOTHING
    if kind in _ANTHROPIC_HELPER_REPEATS and (
            _get(chunk, "snapshot") is not None or kind == "signature"):
        return NOTHING
    if kind in _BLOCK_TYPES:  # one content block given as a chunk
        texts, reasoning = _read_blocks([chunk])
        return Piece(text="".join(texts), reasoning="".join(reasoning))
    if kind == "message" and isinstance(_get(chunk, "content"), list):
        return _anthropic_message(chunk)
    if kind in ("AIMessageChunk", "ai", "AIMessage"):
        return _langchain_message(chunk)
    return None


#: Events of the OpenAI and Anthropic stream helpers that repeat what a raw event, also handed
#: out, carries (``content.delta`` ...; Anthropic's ``text``, ``thinking`` ... with a snapshot).
_OPENAI_HELPER_REPEATS = frozenset({"content", "refusal", "tool_calls", "logprobs"})
_ANTHROPIC_HELPER_REPEATS = frozenset({"text", "thinking", "input_json", "citation", "signature"})
_BLOCK_TYPES = frozenset({"text", "output_text", "refusal", "thinking", "reasoning"})


# -- OpenAI Chat Completions -------------------------------------------------------------------


def _openai_chat(chunk: Any) -> Piece:
    choices = _get(chunk, "choices") or []
    first = choices[0] if choices else None
    delta = _get(first, "delta")
    part = delta if delta is not None else _get(first, "message")
    calls = tuple(
        CallDelta(
            key=("chat", _get(call, "index")) if delta is not None else None,
            id=_get(call, "id"), name=_get(_get(call, "function"), "name") or "",
            arguments=_get(_get(call, "function"), "arguments") or "",
        )
        for call in _get(part, "tool_calls") or ()
    )
    text = _get(part, "content") if part is not None else _get(first, "text")
    reasoning = _get(part, "reasoning_content") or _get(part, "reasoning")
    return Piece(
        text=text if isinstance(text, str) else "",
        reasoning=reasoning if isinstance(reasoning, str) else "",
        calls=calls, usage=_usage(_get(chunk, "usage")),
    )


# -- OpenAI Responses --------------------------------------------------------------------------


def _responses_event(event: Any, kind: str) -> Piece:
    if kind in ("response.output_text.delta", "response.refusal.delta"):
        return Piece(text=_get(event, "delta") or "")
    if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        return Piece(reasoning=_get(event, "delta") or "")
    key = ("responses", _get(event, "output_index"))
    if kind == "response.output_item.added":
        item = _get(event, "item")
        if _get(item, "type") == "function_call":
            return Piece(calls=(CallDelta(key, _get(item, "call_id"), _get(item, "name") or "",
                                          _get(item, "arguments") or ""),))
        return NOTHING
    if kind == "response.function_call_arguments.delta":
        return Piece(calls=(CallDelta(key, arguments=_get(event, "delta") or ""),))
    if kind == "response.completed":
        return Piece(usage=_usage(_get(_get(event, "response"), "usage")))
    if kind == "error":
        raise ModelStreamError(f"the model's stream failed: {_get(event, 'message')}")
    if kind == "response.failed":
        error = _get(_get(event, "response"), "error")
        raise ModelStreamError(f"the model's response failed: {_get(error, 'message') or error}")
    return NOTHING


def _responses_answer(response: Any) -> Piece:
    items = _get(response, "output") or ()
    blocks = [part for item in items for part in (
        _get(item, "content") or () if _get(item, "type") == "message" else [item])]
    calls = tuple(CallDelta(None, _get(item, "call_id"), _get(item, "name") or "",
                            _get(item, "arguments") or "")
                  for item in items if _get(item, "type") == "function_call")
    return _answer(blocks, calls, _get(response, "usage"))


# -- Anthropic Messages ------------------------------------------------------------------------


def _anthropic_block_start(event: Any) -> Piece:
    block = _get(event, "content_block")
    kind = _get(block, "type")
    if kind == "text":
        return Piece(text=_get(block, "text") or "")
    if kind == "thinking":
        return Piece(reasoning=_get(block, "thinking") or "")
    if kind in ("tool_use", "server_tool_use"):
        given = _get(block, "input")
        return Piece(calls=(CallDelta(
            ("anthropic", _get(event, "index")), _get(block, "id"), _get(block, "name") or "",
            json.dumps(given) if given else "",
        ),))
    return NOTHING


def _anthropic_block_delta(event: Any) -> Piece:
    delta = _get(event, "delta")
    kind = _get(delta, "type")
    if kind == "text_delta":
        return Piece(text=_get(delta, "text") or "")
    if kind == "thinking_delta":
        return Piece(reasoning=_get(delta, "thinking") or "")
    if kind == "input_json_delta":
        key = ("anthropic", _get(event, "index"))
        return Piece(calls=(CallDelta(key, arguments=_get(delta, "partial_json") or ""),))
    return NOTHING


def _anthropic_error(event: Any) -> Piece:
    raise ModelStreamError(f"the model's stream failed: {_get(_get(event, 'error'), 'message')}")


_ANTHROPIC_EVENTS: dict[str, Callable[[Any], Piece]] = {
    "message_start": lambda event: Piece(usage=_usage(_get(_get(event, "message"), "usage"))),
    "message_delta": lambda event: Piece(usage=_usage(_get(event, "usage"))),
    "content_block_start": _anthropic_block_start,
    "content_block_delta": _anthropic_block_delta,
    "content_block_stop": lambda event: NOTHING,
    "message_stop": lambda event: NOTHING,
    "ping": lambda event: NOTHING,
    "error": _anthropic_error,
}


def _anthropic_message(message: Any) -> Piece:
    blocks = _get(message, "content") or ()
    calls = tuple(CallDelta(None, _get(block, "id"), _get(block, "name") or "",
                            json.dumps(_get(block, "input") or {}))
                  for block in blocks if _get(block, "type") in ("tool_use", "server_tool_use"))
    return _answer(blocks, calls, _get(message, "usage"))


def _answer(blocks: Iterable[Any], calls: tuple[CallDelta, ...], usage: Any) -> Piece:
    texts, reasoning = _read_blocks(blocks)
    return Piece(text="".join(texts), reasoning="".join(reasoning), calls=calls,
                 usage=_usage(usage))


def _read_blocks(blocks: Iterable[Any]) -> tuple[list[str], list[str]]:
    """Text and reasoning from content blocks (Anthropic, LangChain, OpenAI Responses parts)."""
    texts: list[str] = []
    reasoning: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = _get(block, "type")
        if kind in ("text", "output_text"):
            texts.append(_get(block, "text") or "")
        elif kind == "refusal":
            texts.append(_get(block, "refusal") or "")
        elif kind == "thinking":
            reasoning.append(_get(block, "thinking") or "")
        elif kind == "reasoning":
            summary = _get(block, "summary") or ()
            reasoning.append(_get(block, "reasoning") or "".join(
                _get(part, "text") or "" for part in summary))
    return texts, reasoning


# -- LangChain ---------------------------------------------------------------------------------


def _langchain_message(message: Any) -> Piece:
    content = _get(message, "content")
    texts, reasoning = _read_blocks([content] if isinstance(content, str) else content or ())
    extra = _get(_get(message, "additional_kwargs"), "reasoning_content")
    if isinstance(extra, str):
        reasoning.append(extra)
    chunks = _get(message, "tool_call_chunks")
    if chunks is not None:  # AIMessageChunk
        calls = tuple(
            CallDelta(("langchain", _get(c, "index")) if _get(c, "index") is not None else None,
                      _get(c, "id"), _get(c, "name") or "", _get(c, "args") or "")
            for c in chunks
        )
    else:
        calls = tuple(CallDelta(None, _get(c, "id"), _get(c, "name") or "",
                                json.dumps(_get(c, "args") or {}))
                      for c in _get(message, "tool_calls") or ())
    return Piece(text="".join(texts), reasoning="".join(reasoning), calls=calls,
                 usage=_usage(_get(message, "usage_metadata")), adds_usage=chunks is not None)


def _langchain_event(event: dict[str, Any], name: str) -> Piece:
    """``astream_events(version="v2")``: model and LLM deltas, and tool results."""
    data = event.get("data") or {}
    if name in ("on_chat_model_stream", "on_llm_stream"):
        chunk = _get(data, "chunk")
        piece = read_shape(chunk) if chunk is not None else NOTHING
        if piece is None:
            raise UnknownChunkError(type(chunk))
        return piece
    if name == "on_tool_end":
        output = _get(data, "output")
        call_id = _get(output, "tool_call_id")
        if call_id:
            return Piece(calls=(CallDelta(None, call_id, event.get("name") or "",
                                          result=_as_text(_get(output, "content"))),))
    return NOTHING  # start/end events, and chain streams that repeat the model's chunks


# -- agno --------------------------------------------------------------------------------------


def _agno_event(event: Any, name: str) -> Piece:
    kind = name.removeprefix("Team").removeprefix("Workflow")
    if kind == "RunContent":
        return Piece(text=_as_text(_get(event, "content")),
                     reasoning=_get(event, "reasoning_content") or "")
    if kind == "ReasoningContentDelta":
        return Piece(reasoning=_get(event, "reasoning_content") or "")
    if kind in ("RunCompleted", "Completed"):
        return Piece(text=_as_text(_get(event, "content")), usage=_usage(_get(event, "metrics")),
                     whole=True)
    if kind in ("ToolCallStarted", "ToolCallCompleted", "ToolCallError"):
        tool = _get(event, "tool")
        call_id = _get(tool, "tool_call_id")
        started = kind == "ToolCallStarted"
        return Piece(calls=(CallDelta(
            ("agno", call_id), call_id, _get(tool, "tool_name") or "",
            json.dumps(_get(tool, "tool_args") or {}) if started else "",
            None if started else _as_text(_get(tool, "result")),
        ),))
    if kind in ("RunError", "Error"):
        raise ModelStreamError(f"the agno run failed: {_get(event, 'content') or name}")
    return NOTHING


def _agno_output(output: Any) -> Piece:
    calls = tuple(
        CallDelta(None, _get(tool, "tool_call_id"), _get(tool, "tool_name") or "",
                  json.dumps(_get(tool, "tool_args") or {}), _get(tool, "result"))
        for tool in _get(output, "tools") or ()
    )
    return Piece(text=_as_text(_get(output, "content")),
                 reasoning=_get(output, "reasoning_content") or "", calls=calls,
                 usage=_usage(_get(output, "metrics")))


# -- fields ------------------------------------------------------------------------------------


def _get(value: Any, name: str) -> Any:
    """A field of a dict or an object; None when absent (a pydantic model's missing field is
    looked up in its extras, not by getattr: a failed getattr costs an exception per chunk)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    fields = getattr(value, "__dict__", None)
    if fields is not None and name in fields:
        return fields[name]
    if hasattr(value, "__pydantic_extra__"):
        extra = value.__pydantic_extra__
        if extra and name in extra:
            return extra[name]
        kind = type(value)
        if kind not in _CLASS_ATTRIBUTES:
            _CLASS_ATTRIBUTES[kind] = frozenset(dir(kind))
        if name not in _CLASS_ATTRIBUTES[kind]:  # neither a field nor a property
            return None
    return getattr(value, name, None)


_CLASS_ATTRIBUTES: dict[type, frozenset[str]] = {}  # names a pydantic model class defines


def _usage(value: Any) -> Usage | None:
    """Tokens from any provider's usage record (input/prompt, output/completion)."""
    if value is None:
        return None
    given = [_get(value, name) for name in
             ("input_tokens", "prompt_tokens", "output_tokens", "completion_tokens")]
    counts = [count if isinstance(count, int) else None for count in given]
    usage = Usage(first_known(counts[0], counts[1]), first_known(counts[2], counts[3]))
    return usage if usage != Usage() else None


def first_known(*values: int | None) -> int | None:
    """The first count that was reported."""
    return next((value for value in values if value is not None), None)


def _as_text(value: Any) -> str:
    """Content as text: strings as they are, structured output as JSON."""
    if value is None or isinstance(value, str):
        return value or ""
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)
