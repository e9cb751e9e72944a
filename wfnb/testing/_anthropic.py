"""Anthropic Messages, ``POST /v1/messages``, as the real API sends it.

Streamed: ``message_start`` (with input usage), ``ping``, then per content block
``content_block_start`` / ``content_block_delta`` / ``content_block_stop``: ``thinking``
(``thinking_delta`` then one ``signature_delta``), ``text`` (``text_delta``), ``tool_use``
(``input_json_delta``, the first one empty); then ``message_delta`` with ``stop_reason`` and
output usage, and ``message_stop``. A mid-stream failure is an ``error`` event; errors are
``{"type": "error", "error": {type, message}, "request_id": ...}`` (529 is ``overloaded_error``).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from wfnb.testing._script import (
    Failure,
    Prompt,
    Reply,
    ToolResult,
    ToolSpec,
    input_tokens,
    split_json,
    text_of,
)
from wfnb.testing._wire import Api, Body, Frames, frame, ident

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 529: "overloaded_error"}


def error_object(failure: Failure) -> Body:
    return {"type": _ERROR_TYPES.get(failure.status, "api_error"), "message": failure.message}


def error_body(failure: Failure, number: int) -> Body:
    return {"type": "error", "error": error_object(failure), "request_id": ident("req_", number)}


def model_info(name: str) -> Body:
    """``GET /v1/models/{name}``, as Anthropic describes a model."""
    return {"type": "model", "id": name, "display_name": name,
            "created_at": "2026-01-01T00:00:00Z", "lifecycle": "active"}


def model_list(names: list[str]) -> Body:
    return {"data": [model_info(name) for name in names], "has_more": False,
            "first_id": names[0] if names else None, "last_id": names[-1] if names else None}


def parse(body: Body) -> Prompt:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = tuple(ToolSpec(str(t.get("name", "")), t.get("input_schema") or {})
                  for t in body.get("tools") or [] if isinstance(t, dict))
    users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    result = None
    last = messages[-1] if messages else {}
    content = last.get("content")
    returned = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"
                ] if isinstance(content, list) else []
    if last.get("role") == "user" and returned:
        block = returned[-1]
        output = block.get("content")
        result = ToolResult(_call_name(messages, block.get("tool_use_id")),
                            output if isinstance(output, str) else text_of(output))
    return Prompt(
        model=str(body.get("model", "")),
        question=next((text for text in reversed(users) if text), ""),
        input_tokens=input_tokens(body.get("system") or "", messages, body.get("tools") or []),
        tools=tools,
        tool_result=result,
    )


def _call_name(messages: list[Body], call_id: Any) -> str:
    for message in messages:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use" \
                    and block.get("id") == call_id:
                return str(block.get("name", "tool"))
    return "tool"


def signature(thinking: str) -> str:
    """A stand-in for the signature that lets a thinking block be sent back: opaque, stable."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def stop_reason(reply: Reply) -> str:
    return "tool_use" if reply.tool_calls else "end_turn"


def usage(prompt: Prompt, output_tokens: int) -> Body:
    return {"input_tokens": prompt.input_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": output_tokens,
            "service_tier": "standard"}


def message(prompt: Prompt, number: int, content: list[Body], stop: str | None,
            output_tokens: int) -> Body:
    return {"id": ident("msg_", number), "type": "message", "role": "assistant",
            "model": prompt.model, "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": usage(prompt, output_tokens)}


def complete(body: Body, prompt: Prompt, reply: Reply, number: int) -> Body:
    content: list[Body] = []
    if reply.reasoning:
        content.append({"type": "thinking", "thinking": reply.reasoning,
                        "signature": signature(reply.reasoning)})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    content.extend({"type": "tool_use", "id": ident("toolu_", number, i), "name": call.name,
                    "input": call.arguments} for i, call in enumerate(reply.tool_calls))
    return message(prompt, number, content, stop_reason(reply), reply.output_tokens)


def stream(body: Body, prompt: Prompt, reply: Reply, number: int) -> Frames:
    def event(kind: str, **fields: Any) -> bytes:
        return frame({"type": kind, **fields}, kind)

    yield event("message_start", message=message(prompt, number, [], None, 1))
    yield event("ping")
    index = 0
    if reply.reasoning:
        yield event("content_block_start", index=index,
                    content_block={"type": "thinking", "thinking": "", "signature": ""})
        for piece in reply.reasoning_deltas():
            yield event("content_block_delta", index=index,
                        delta={"type": "thinking_delta", "thinking": piece})
        yield event("content_block_delta", index=index,
                    delta={"type": "signature_delta", "signature": signature(reply.reasoning)})
        yield event("content_block_stop", index=index)
        index += 1
    if reply.text or reply.failure is not None:
        yield event("content_block_start", index=index,
                    content_block={"type": "text", "text": ""})
        for piece in reply.text_deltas():
            yield event("content_block_delta", index=index,
                        delta={"type": "text_delta", "text": piece})
        if reply.failure is not None:
            yield event("error", error=error_object(reply.failure))
            return
        yield event("content_block_stop", index=index)
        index += 1
    for i, call in enumerate(reply.tool_calls):
        yield event("content_block_start", index=index, content_block={
            "type": "tool_use", "id": ident("toolu_", number, i), "name": call.name, "input": {}})
        for fragment in ["", *split_json(call.arguments_json)]:
            yield event("content_block_delta", index=index,
                        delta={"type": "input_json_delta", "partial_json": fragment})
        yield event("content_block_stop", index=index)
        index += 1
    yield event("message_delta", delta={"stop_reason": stop_reason(reply), "stop_sequence": None},
                usage={"output_tokens": reply.output_tokens})
    yield event("message_stop")


API = Api("anthropic-messages", parse, complete, stream, error_body, "request-id")
