"""The chunk adapters, fed the client packages' own types (built from their wire shapes).

The same streams over real HTTP, through the real clients, are in tests/test_model_clients.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from agno.metrics import RunMetrics
from agno.models.response import ToolExecution
from agno.run.agent import (
    RunCompletedEvent,
    RunContentEvent,
    RunOutput,
    RunStartedEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from anthropic.types import Message, RawMessageStreamEvent
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

import wfnb
from wfnb import RunEvent, RunResponse, ToolCall, UnknownChunkError, Usage, Workflow
from wfnb._chunks import Collector, adapt

Expected = tuple[str, str, list[str], Usage | None]


def collect(chunks: list[Any]) -> Expected:
    collected = Collector()
    for chunk in chunks:
        collected.take(chunk)
    return ("".join(collected.texts), "".join(collected.reasoning),
            [call.summary() for call in collected.calls], collected.usage)


def chat_chunk(delta: dict[str, Any] | None, **fields: Any) -> ChatCompletionChunk:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
    return ChatCompletionChunk.model_validate({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": choices, **fields,
    })


def openai_chat_stream() -> list[ChatCompletionChunk]:
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}
    return [
        chat_chunk({"role": "assistant", "content": ""}),
        chat_chunk({"reasoning_content": "Sunny? "}),
        chat_chunk({"reasoning_content": "Check."}),
        chat_chunk({"tool_calls": [call]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chat_chunk({"content": "It is "}),
        chat_chunk({"content": "sunny."}),
        chat_chunk({}, ),
        chat_chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 30,
                                "total_tokens": 42}),
    ]


def responses_stream() -> list[Any]:
    events = TypeAdapter(ResponseStreamEvent)
    item = {"type": "function_call", "id": "fc1", "call_id": "call_1", "name": "get_weather",
            "arguments": "", "status": "in_progress"}
    completed = dict(RESPONSE, status="completed")
    return [events.validate_python(event) for event in [
        {"type": "response.created", "response": dict(RESPONSE, output=[]),
         "sequence_number": 0},
        {"type": "response.reasoning_summary_text.delta", "delta": "Sunny? Check.",
         "item_id": "r1", "output_index": 0, "summary_index": 0, "sequence_number": 1},
        {"type": "response.output_item.added", "output_index": 1, "item": item,
         "sequence_number": 2},
        {"type": "response.function_call_arguments.delta", "delta": '{"city": "Paris"}',
         "item_id": "fc1", "output_index": 1, "sequence_number": 3},
        {"type": "response.function_call_arguments.done", "arguments": '{"city": "Paris"}',
         "name": "get_weather", "item_id": "fc1", "output_index": 1, "sequence_number": 4},
        *[{"type": "response.output_text.delta", "delta": text, "item_id": "m1",
           "output_index": 2, "content_index": 0, "logprobs": [], "sequence_number": 5 + n}
          for n, text in enumerate(["It is ", "sunny."])],
        {"type": "response.output_text.done", "text": "It is sunny.", "item_id": "m1",
         "output_index": 2, "content_index": 0, "logprobs": [], "sequence_number": 7},
        {"type": "response.completed", "response": completed, "sequence_number": 8},
    ]]


RESPONSE: dict[str, Any] = {
    "id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed",
    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
    "output": [
        {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text",
                                                        "text": "Sunny? Check."}]},
        {"type": "function_call", "id": "fc1", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city": "Paris"}', "status": "completed"},
        {"type": "message", "id": "m1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "It is sunny.", "annotations": []}]},
    ],
    "usage": {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42,
              "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
              "output_tokens_details": {"reasoning_tokens": 0}},
}


def anthropic_stream() -> list[Any]:
    events = TypeAdapter(RawMessageStreamEvent)
    return [events.validate_python(event) for event in [
        {"type": "message_start", "message": dict(ANTHROPIC_MESSAGE, content=[],
                                                  usage={"input_tokens": 12, "output_tokens": 1})},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "Sunny? Check."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                           "input": {}}},
        *[{"type": "content_block_delta", "index": 1,
           "delta": {"type": "input_json_delta", "partial_json": part}}
          for part in ('{"city": ', '"Paris"}')],
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "text", "text": ""}},
        *[{"type": "content_block_delta", "index": 2,
           "delta": {"type": "text_delta", "text": text}} for text in ("It is ", "sunny.")],
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]]


ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 30},
    "content": [
        {"type": "thinking", "thinking": "Sunny? Check.", "signature": "s"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "text", "text": "It is sunny."},
    ],
}


def langchain_stream() -> list[AIMessageChunk]:
    return [
        AIMessageChunk(content=[{"type": "reasoning", "reasoning": "Sunny? ", "index": 0}]),
        AIMessageChunk(content=[{"type": "thinking", "thinking": "Check.", "index": 0}]),
        AIMessageChunk(content="", tool_call_chunks=[
            {"name": "get_weather", "args": '{"city": ', "id": "call_1", "index": 0,
             "type": "tool_call_chunk"}]),
        AIMessageChunk(content="", tool_call_chunks=[
            {"name": None, "args": '"Paris"}', "id": None, "index": 0, "type": "tool_call_chunk"}]),
        AIMessageChunk(content="It is "),
        AIMessageChunk(content=[{"type": "text", "text": "sunny.", "index": 1}]),
        AIMessageChunk(content="", usage_metadata=UsageMetadata(
            input_tokens=12, output_tokens=30, total_tokens=42, input_token_details={},
            output_token_details={})),
    ]


def agno_stream() -> list[Any]:
    started = ToolExecution(tool_call_id="call_1", tool_name="get_weather",
                            tool_args={"city": "Paris"})
    done = ToolExecution(tool_call_id="call_1", tool_name="get_weather",
                         tool_args={"city": "Paris"}, result="sunny")
    return [
        RunStartedEvent(run_id="r", model="m"),
        RunContentEvent(content=None, reasoning_content="Sunny? Check."),
        ToolCallStartedEvent(tool=started),
        ToolCallCompletedEvent(tool=done, content="sunny"),
        RunContentEvent(content="It is "),
        RunContentEvent(content=None),
        RunContentEvent(content="sunny."),
        RunCompletedEvent(content="It is sunny.",
                          metrics=RunMetrics(input_tokens=12, output_tokens=30)),
    ]


WEATHER = '{"city": "Paris"}'
FULL: Expected = ("It is sunny.", "Sunny? Check.", [f"get_weather({WEATHER})"], Usage(12, 30))


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (openai_chat_stream(), FULL),
        ([chunk.model_dump() for chunk in openai_chat_stream()], FULL),
        ([ChatCompletion.model_validate({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "It is sunny.",
                "reasoning_content": "Sunny? Check.",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": WEATHER}}]}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
        })], FULL),
        (responses_stream(), FULL),
        ([Response.model_validate(RESPONSE)], FULL),
        ([RESPONSE], FULL),
        (anthropic_stream(), FULL),
        ([Message.model_validate(ANTHROPIC_MESSAGE)], FULL),
        ([ANTHROPIC_MESSAGE], FULL),
        (langchain_stream(), FULL),
        ([AIMessage(content="It is sunny.",
                    additional_kwargs={"reasoning_content": "Sunny? Check."},
                    tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}],
                    usage_metadata={"input_tokens": 12, "output_tokens": 30,
                                    "total_tokens": 42})], FULL),
        (agno_stream(), ("It is sunny.", "Sunny? Check.", [f"get_weather({WEATHER}) → sunny"],
                         Usage(12, 30))),
        ([RunOutput(content="It is sunny.", reasoning_content="Sunny? Check.",
                    metrics=RunMetrics(input_tokens=12, output_tokens=30),
                    tools=[ToolExecution(tool_call_id="c", tool_name="get_weather",
                                         tool_args={"city": "Paris"}, result="sunny")])],
         ("It is sunny.", "Sunny? Check.", [f"get_weather({WEATHER}) → sunny"], Usage(12, 30))),
    ],
    ids=["openai-chat", "openai-chat-dicts", "chat-completion", "responses", "response",
         "response-dict", "anthropic", "anthropic-message", "anthropic-dict", "langchain",
         "langchain-answer", "agno-events", "agno-output"],
)
def test_each_provider_gives_text_reasoning_tool_calls_and_usage(
    chunks: list[Any], expected: Expected
) -> None:
    assert collect(chunks) == expected


def test_langchain_astream_events_take_model_chunks_and_tool_results() -> None:
    events: list[dict[str, Any]] = [
        {"event": "on_chain_start", "name": "agent", "data": {"input": {}}},
        *[{"event": "on_chat_model_stream", "name": "model", "data": {"chunk": chunk}}
          for chunk in langchain_stream()],
        {"event": "on_chain_stream", "name": "agent", "data": {"chunk": {"messages": []}}},
        {"event": "on_chat_model_end", "name": "model",
         "data": {"output": AIMessage(content="It is sunny.")}},
        {"event": "on_tool_end", "name": "get_weather", "data": {
            "output": ToolMessage(content="sunny", tool_call_id="call_1")}},
    ]
    assert collect(events) == (
        "It is sunny.", "Sunny? Check.", [f"get_weather({WEATHER}) → sunny"], Usage(12, 30))


def test_langgraph_message_pairs_are_their_message() -> None:
    pairs = [(chunk, {"langgraph_node": "model"}) for chunk in langchain_stream()]
    assert collect(pairs) == FULL


def test_a_second_model_turn_reusing_index_zero_is_a_new_call() -> None:
    def call(call_id: str, name: str) -> ChatCompletionChunk:
        return chat_chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                                           "function": {"name": name, "arguments": "{}"}}]})

    assert collect([call("a", "first"), call("b", "second")])[2] == ["first({})", "second({})"]


def test_agno_completion_shows_the_answer_only_when_nothing_streamed() -> None:
    completed = RunCompletedEvent(content="whole answer")
    assert collect([RunStartedEvent(), completed])[0] == "whole answer"
    assert collect([RunContentEvent(content="whole "), RunContentEvent(content="answer"),
                    completed])[0] == "whole answer"


@pytest.mark.parametrize("chunk", [{"a": 1, "b": 2}, 42, object()])
def test_a_type_nothing_understands_names_it_and_how_to_teach_wfnb(chunk: Any) -> None:
    with pytest.raises(UnknownChunkError, match=type(chunk).__qualname__) as raised:
        adapt(chunk)
    assert "wfnb.register_chunk_adapter" in str(raised.value)
    assert isinstance(raised.value, TypeError)


def test_register_chunk_adapter_teaches_a_type() -> None:
    class Token:
        def __init__(self, text: str) -> None:
            self.text_value = text

    wfnb.register_chunk_adapter(
        Token, lambda token: RunResponse(content=token.text_value, usage=Usage(1, 2))
    )
    collected = Collector()
    collected.take(Token("hi"))
    assert (collected.texts, collected.usage) == (["hi"], Usage(1, 2))


def test_workflow_run_yields_text_not_reprs_and_records_usage(tmp_path: Any) -> None:
    class Chat(Workflow):
        def run(self) -> Any:
            yield from openai_chat_stream()

    storage = wfnb.SqliteWorkflowStorage("chat", tmp_path / "w.db")
    workflow = Chat(session_id="s", storage=storage)
    responses = list(workflow.run())
    assert "".join(r.get_content_as_string() for r in responses) == "It is sunny."
    assert all(r.content is None or isinstance(r.content, str) for r in responses)
    assert [c.summary() for r in responses for c in r.tool_calls][-1] == f"get_weather({WEATHER})"
    assert responses[-1].usage == Usage(12, 30)
    (run,) = storage.runs("s")
    assert (run.output, run.input_tokens, run.output_tokens) == ("It is sunny.", 12, 30)


def test_workflow_run_keeps_other_return_values_as_content(tmp_path: Any) -> None:
    class Plain(Workflow):
        def run(self) -> Any:
            return {"answer": 42}

    response = Plain(session_id="s").run()
    assert response.content == {"answer": 42}


def test_a_yielded_completion_does_not_repeat_the_recorded_answer(tmp_path: Any) -> None:
    class Cached(Workflow):
        def run(self) -> Any:
            yield "It is "
            yield "sunny."
            yield RunResponse(content="It is sunny.", event=RunEvent.workflow_completed)

    storage = wfnb.SqliteWorkflowStorage("chat", tmp_path / "w.db")
    list(Cached(session_id="s", storage=storage).run())
    assert storage.runs("s")[0].output == "It is sunny."


def test_tool_call_summary_is_one_short_line() -> None:
    call = ToolCall(name="search", arguments=json.dumps({"q": "x" * 200}), result="a\nb")
    line = call.summary()
    assert "\n" not in line and len(line) < 140 and line.endswith("→ a b")


def test_single_content_blocks_are_chunks_too() -> None:
    blocks = [{"type": "thinking", "thinking": "Sunny? Check."},
              {"type": "text", "text": "It is "}, {"type": "output_text", "text": "sunny."}]
    assert collect(blocks)[:2] == ("It is sunny.", "Sunny? Check.")


def test_a_chunk_wrapped_in_a_run_response_is_read_as_that_chunk(tmp_path: Any) -> None:
    class Wrapping(Workflow):  # the design document's `yield RunResponse(content=chunk)`
        def run(self) -> Any:
            for chunk in [*openai_chat_stream(), *agno_stream()]:
                yield RunResponse(run_id=self.run_id, content=chunk)

    storage = wfnb.SqliteWorkflowStorage("wrap", tmp_path / "w.db")
    responses = list(Wrapping(session_id="s", storage=storage).run())
    assert collect(responses)[:2] == ("It is sunny.It is sunny.", "Sunny? Check.Sunny? Check.")
    assert storage.runs("s")[0].output == "It is sunny.It is sunny."
    assert collect([RunResponse(content={"kept": "as str()"})])[0] == "{'kept': 'as str()'}"
