"""OpenAI Responses, ``POST /v1/responses``, as the real API sends it.

Streamed: named events, each with a ``sequence_number`` from 0: ``response.created``,
``response.in_progress``; per output item ``response.output_item.added`` ... ``.done``: a
reasoning item (``response.reasoning_summary_part.added``, ``reasoning_summary_text.delta`` ...
``.done``, ``reasoning_summary_part.done``), a message (``response.content_part.added``,
``response.output_text.delta`` ... ``.done``, ``response.content_part.done``), function calls
(``response.function_call_arguments.delta`` ... ``.done``); then ``response.completed`` with
usage. No ``[DONE]``. A mid-stream failure is an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

import itertools
from typing import Any

from wfnb.testing._openai_chat import error_body
from wfnb.testing._script import (
    Prompt,
    Reply,
    ToolResult,
    ToolSpec,
    input_tokens,
    split_json,
    text_of,
)
from wfnb.testing._wire import CREATED, Api, Body, Frames, frame, ident


def parse(body: Body) -> Prompt:
    given = body.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else [
        item for item in given or [] if isinstance(item, dict)]
    tools = tuple(ToolSpec(str(t.get("name", "")), t.get("parameters") or {})
                  for t in body.get("tools") or []
                  if isinstance(t, dict) and t.get("type") == "function")
    users = [text_of(item.get("content")) for item in items if item.get("role") == "user"]
    result = None
    if items and items[-1].get("type") == "function_call_output":
        last = items[-1]
        name = next((str(item.get("name")) for item in items
                     if item.get("type") == "function_call"
                     and item.get("call_id") == last.get("call_id")), "tool")
        output = last.get("output")
        result = ToolResult(name, output if isinstance(output, str) else text_of(output))
    return Prompt(
        model=str(body.get("model", "")),
        question=next((text for text in reversed(users) if text), ""),
        input_tokens=input_tokens(body.get("instructions") or "", items, body.get("tools") or []),
        tools=tools,
        tool_result=result,
    )


def usage(prompt: Prompt, reply: Reply) -> Body:
    output = reply.output_tokens
    return {
        "input_tokens": prompt.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": prompt.input_tokens + output,
    }


def response(body: Body, prompt: Prompt, number: int, status: str, output: list[Body],
             usage: Body | None = None, error: Body | None = None) -> Body:
    tools = [{"type": "function", "name": t.get("name"), "description": t.get("description"),
              "parameters": t.get("parameters"), "strict": t.get("strict", True)}
             for t in body.get("tools") or [] if isinstance(t, dict)]
    return {
        "id": ident("resp_", number), "object": "response", "created_at": CREATED,
        "status": status, "background": False, "error": error, "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": prompt.model,
        "output": output, "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "store": True, "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
        "tools": tools, "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": None,
        "metadata": {},
    }


def reasoning_item(number: int, summary: str | None) -> Body:
    return {"id": ident("rs_", number), "type": "reasoning",
            "summary": [] if summary is None else [{"type": "summary_text", "text": summary}]}


def message_item(number: int, text: str | None) -> Body:
    done = text is not None
    return {"id": ident("msg_", number), "type": "message",
            "status": "completed" if done else "in_progress",
            "content": [text_part(text)] if done else [], "role": "assistant"}


def text_part(text: str | None) -> Body:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text or ""}


def call_item(number: int, index: int, name: str, arguments: str, done: bool) -> Body:
    return {"id": ident("fc_", number, index), "type": "function_call",
            "status": "completed" if done else "in_progress", "arguments": arguments,
            "call_id": ident("call_", number, index), "name": name}


def output_items(number: int, reply: Reply) -> list[Body]:
    """The finished output: reasoning, message, function calls (those the reply has)."""
    items = [reasoning_item(number, reply.reasoning)] if reply.reasoning else []
    if reply.text:
        items.append(message_item(number, reply.text))
    items.extend(call_item(number, i, call.name, call.arguments_json, True)
                 for i, call in enumerate(reply.tool_calls))
    return items


def complete(body: Body, prompt: Prompt, reply: Reply, number: int) -> Body:
    return response(body, prompt, number, "completed", output_items(number, reply),
                    usage(prompt, reply))


def stream(body: Body, prompt: Prompt, reply: Reply, number: int) -> Frames:
    sequence = itertools.count()

    def event(kind: str, **fields: Any) -> bytes:
        return frame({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    yield event("response.created", response=response(body, prompt, number, "in_progress", []))
    yield event("response.in_progress",
                response=response(body, prompt, number, "in_progress", []))
    index = 0
    if reply.reasoning:
        item_id = ident("rs_", number)
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        yield event("response.output_item.added", output_index=index,
                    item=reasoning_item(number, None))
        yield event("response.reasoning_summary_part.added", **where,
                    part={"type": "summary_text", "text": ""})
        for piece in reply.reasoning_deltas():
            yield event("response.reasoning_summary_text.delta", **where, delta=piece)
        yield event("response.reasoning_summary_text.done", **where, text=reply.reasoning)
        yield event("response.reasoning_summary_part.done", **where,
                    part={"type": "summary_text", "text": reply.reasoning})
        yield event("response.output_item.done", output_index=index,
                    item=reasoning_item(number, reply.reasoning))
        index += 1
    if reply.text or reply.failure is not None:
        where = {"item_id": ident("msg_", number), "output_index": index, "content_index": 0}
        yield event("response.output_item.added", output_index=index,
                    item=message_item(number, None))
        yield event("response.content_part.added", **where, part=text_part(None))
        for piece in reply.text_deltas():
            yield event("response.output_text.delta", **where, delta=piece, logprobs=[])
        if reply.failure is not None:
            message = reply.failure.message
            yield event("error", code="server_error", message=message, param=None)
            yield event("response.failed", response=response(
                body, prompt, number, "failed", [],
                error={"code": "server_error", "message": message}))
            return
        yield event("response.output_text.done", **where, text=reply.text, logprobs=[])
        yield event("response.content_part.done", **where, part=text_part(reply.text))
        yield event("response.output_item.done", output_index=index,
                    item=message_item(number, reply.text))
        index += 1
    for i, call in enumerate(reply.tool_calls):
        where = {"item_id": ident("fc_", number, i), "output_index": index}
        yield event("response.output_item.added", output_index=index,
                    item=call_item(number, i, call.name, "", False))
        for fragment in split_json(call.arguments_json):
            yield event("response.function_call_arguments.delta", **where, delta=fragment)
        yield event("response.function_call_arguments.done", **where,
                    arguments=call.arguments_json)
        yield event("response.output_item.done", output_index=index,
                    item=call_item(number, i, call.name, call.arguments_json, True))
        index += 1
    yield event("response.completed", response=complete(body, prompt, reply, number))


API = Api("openai-responses", parse, complete, stream, error_body, "x-request-id")
