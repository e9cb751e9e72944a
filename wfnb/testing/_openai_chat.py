"""OpenAI Chat Completions, ``POST /v1/chat/completions``, as the real API sends it.

Streamed: a role chunk, ``reasoning_content`` deltas (as DeepSeek and vLLM send reasoning),
content deltas, ``tool_calls`` deltas (id, type and name first, then argument fragments, by
index; an answer that only calls tools carries the role in its first call's chunk, with
``"content": null``), a chunk with ``finish_reason``, a usage-only chunk with empty ``choices``
when ``stream_options.include_usage`` is set (every other chunk then says ``"usage": null``),
and ``data: [DONE]``. A mid-stream failure is a ``data:`` line holding an ``error`` object,
which the openai client raises as ``APIError``; errors are
``{"error": {message, type, param, code}}``.
"""

from __future__ import annotations

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
from wfnb.testing._wire import CREATED, Api, Body, Frames, frame, ident

FINGERPRINT = "fp_wfnb_fake"
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error",
                403: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def error_object(failure: Failure) -> Body:
    return {
        "message": failure.message,
        "type": _ERROR_TYPES.get(failure.status, "server_error"),
        "param": None,
        "code": _ERROR_CODES.get(failure.status),
    }


def error_body(failure: Failure, number: int) -> Body:
    return {"error": error_object(failure)}


def model_info(name: str) -> Body:
    """``GET /v1/models/{name}``, as OpenAI describes a model."""
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "wfnb"}


def model_list(names: list[str]) -> Body:
    return {"object": "list", "data": [model_info(name) for name in names]}


def parse(body: Body) -> Prompt:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = tuple(
        ToolSpec(str(t["function"].get("name", "")), t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    )
    users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    result = None
    if messages and messages[-1].get("role") == "tool":
        last = messages[-1]
        result = ToolResult(_call_name(messages, last.get("tool_call_id")),
                            text_of(last.get("content")))
    return Prompt(
        model=str(body.get("model", "")),
        question=next((text for text in reversed(users) if text), ""),
        input_tokens=input_tokens(messages, body.get("tools") or []),
        tools=tools,
        tool_result=result,
    )


def _call_name(messages: list[Body], call_id: Any) -> str:
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and call.get("id") == call_id:
                return str((call.get("function") or {}).get("name", "tool"))
    return "tool"


def usage(prompt: Prompt, reply: Reply) -> Body:
    output = reply.output_tokens
    return {
        "prompt_tokens": prompt.input_tokens,
        "completion_tokens": output,
        "total_tokens": prompt.input_tokens + output,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


def finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def complete(body: Body, prompt: Prompt, reply: Reply, number: int) -> Body:
    message: Body = {"role": "assistant", "content": reply.text or None, "refusal": None,
                     "annotations": []}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": ident("call_", number, i), "type": "function",
             "function": {"name": call.name, "arguments": call.arguments_json}}
            for i, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": ident("chatcmpl-", number),
        "object": "chat.completion",
        "created": CREATED,
        "model": prompt.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(reply)}],
        "usage": usage(prompt, reply),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def stream(body: Body, prompt: Prompt, reply: Reply, number: int) -> Frames:
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage"))
    head: Body = {"id": ident("chatcmpl-", number), "object": "chat.completion.chunk",
                  "created": CREATED, "model": prompt.model, "service_tier": "default",
                  "system_fingerprint": FINGERPRINT}

    def chunk(delta: Body, finish: str | None = None) -> bytes:
        data = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}
        if include_usage:
            data["usage"] = None
        return frame(data)

    role: Body = {"role": "assistant", "content": "", "refusal": None}
    calls_only = reply.failure is None and not (reply.text or reply.reasoning)
    if not (calls_only and reply.tool_calls):
        yield chunk(role)
    for piece in reply.reasoning_deltas():
        yield chunk({"content": None, "reasoning_content": piece})
    for piece in reply.text_deltas():
        yield chunk({"content": piece})
    if reply.failure is not None:
        yield frame(error_body(reply.failure, number))
        return
    for i, call in enumerate(reply.tool_calls):
        header = {"tool_calls": [{"index": i, "id": ident("call_", number, i),
                                  "type": "function",
                                  "function": {"name": call.name, "arguments": ""}}]}
        # A model that only calls tools sends its role with the first call, content null.
        yield chunk({**role, "content": None, **header} if calls_only and i == 0 else header)
        for fragment in split_json(call.arguments_json):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]})
    yield chunk({}, finish_reason(reply))
    if include_usage:
        yield frame({**head, "choices": [], "usage": usage(prompt, reply)})
    yield frame("[DONE]")


API = Api("openai-chat", parse, complete, stream, error_body, "x-request-id")
