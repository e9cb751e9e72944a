"""wfnb.testing.ModelServer speaks the real wire formats: checked byte for byte against the
installed client packages' own types, then through the real clients (openai, anthropic, sync
and async, each reused), their stream helpers, LangChain's ChatOpenAI and agno's models."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, get_args

import anthropic
import openai
import pytest
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
    TextBlock,
    ToolUseBlock,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import (
    Response,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFunctionToolCall,
    ResponseStreamEvent,
)
from pydantic import SecretStr, TypeAdapter

from wfnb.testing import (
    LONG_SHAPES,
    Failure,
    ModelServer,
    Prompt,
    Reply,
    ToolCall,
    count_tokens,
)

QUESTION = "What is the weather in Paris today?"
USER: Any = [{"role": "user", "content": QUESTION}]
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOLS: Any = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER}}]
RESPONSES_TOOLS: Any = [{"type": "function", "name": "get_weather",
                         "description": "The weather in a city.", "parameters": WEATHER}]
ANTHROPIC_TOOLS: Any = [{"name": "get_weather", "description": "The weather in a city.",
                         "input_schema": WEATHER}]
SCENARIOS = ["gpt-test", "fake-reasoning", "fake-tool", "fake-reasoning-tool"]
STREAM_EVENT_CLASSES = {get_args(cls.model_fields["type"].annotation)[0]: cls
                        for cls in get_args(get_args(ResponseStreamEvent)[0])}


# -- the wire itself, checked against the clients' own types (strict validation) ------------


def post(server: ModelServer, path: str, body: Any, raw: bytes | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    connection.request("POST", path, raw if raw is not None else json.dumps(body).encode(),
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def sse(payload: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each Server-Sent Event, as a client decodes them."""
    events = []
    for block in payload.decode().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) <= {"event", "data"}, block
        events.append((fields.get("event"), fields["data"]))
    assert payload.endswith(b"\n\n")
    return events


@pytest.mark.parametrize("model", [*SCENARIOS, "fake-long-table-3k"])
def test_chat_stream_frames_are_valid_chunks_then_usage_then_done(
        model_server: ModelServer, model: str) -> None:
    status, headers, payload = post(model_server, "/v1/chat/completions", {
        "model": model, "messages": USER, "tools": CHAT_TOOLS, "stream": True,
        "stream_options": {"include_usage": True}})
    assert status == 200
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["transfer-encoding"] == "chunked"
    events = sse(payload)
    assert events[-1] == (None, "[DONE]")
    assert all(name is None for name, _ in events)
    chunks = [ChatCompletionChunk.model_validate_json(data) for _, data in events[:-1]]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    if model == "fake-tool":  # only a call: the role comes with it, as OpenAI sends it
        assert first.content is None and first.tool_calls and first.tool_calls[0].id
    else:
        assert first.content == "" and not first.tool_calls
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(json.loads(data)["usage"] is None for _, data in events[:-2])
    finish = chunks[-2].choices[0].finish_reason
    assert finish == ("tool_calls" if "tool" in model else "stop")
    assert [c.choices[0].finish_reason for c in chunks[:-2]] == [None] * (len(chunks) - 2)


def test_chat_stream_without_include_usage_sends_no_usage_at_all(
        model_server: ModelServer) -> None:
    _, _, payload = post(model_server, "/v1/chat/completions",
                         {"model": "gpt-test", "messages": USER, "stream": True})
    data = [json.loads(d) for _, d in sse(payload)[:-1]]
    assert all("usage" not in chunk and chunk["choices"] for chunk in data)


@pytest.mark.parametrize("model", SCENARIOS)
def test_responses_stream_events_are_valid_named_and_numbered(
        model_server: ModelServer, model: str) -> None:
    _, headers, payload = post(model_server, "/v1/responses", {
        "model": model, "input": QUESTION, "tools": RESPONSES_TOOLS, "stream": True})
    assert headers["content-type"].startswith("text/event-stream")
    events = sse(payload)
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    parsed = [adapter.validate_json(data) for _, data in events]
    assert [name for name, _ in events] == [event.type for event in parsed]
    assert [event.sequence_number for event in parsed] == list(range(len(parsed)))
    assert parsed[0].type == "response.created" and parsed[-1].type == "response.completed"
    assert len({event.response.id for event in parsed if hasattr(event, "response")}) == 1
    kinds = [event.type for event in parsed]
    assert ("response.reasoning_summary_text.delta" in kinds) == ("reasoning" in model)
    assert ("response.function_call_arguments.delta" in kinds) == ("tool" in model)
    assert ("response.output_text.delta" in kinds) == ("tool" not in model)
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done")


@pytest.mark.parametrize("model", SCENARIOS)
def test_anthropic_stream_events_are_valid_and_named(
        model_server: ModelServer, model: str) -> None:
    _, headers, payload = post(model_server, "/v1/messages", {
        "model": model, "max_tokens": 100, "messages": USER, "tools": ANTHROPIC_TOOLS,
        "stream": True})
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["request-id"].startswith("req_")
    events = sse(payload)
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    assert events[1] == ("ping", '{"type": "ping"}')
    parsed = [adapter.validate_json(data) for name, data in events if name != "ping"]
    assert [name for name, _ in events if name != "ping"] == [event.type for event in parsed]
    assert parsed[0].type == "message_start" and parsed[-1].type == "message_stop"
    deltas = {event.delta.type for event in parsed if event.type == "content_block_delta"}
    assert ("thinking_delta" in deltas) == ("signature_delta" in deltas) == ("reasoning" in model)
    assert ("input_json_delta" in deltas) == ("tool" in model)


@pytest.mark.parametrize("model", SCENARIOS)
def test_non_streamed_answers_are_valid(model_server: ModelServer, model: str) -> None:
    _, _, chat = post(model_server, "/v1/chat/completions",
                      {"model": model, "messages": USER, "tools": CHAT_TOOLS})
    completion = ChatCompletion.model_validate_json(chat)
    assert completion.usage is not None and completion.usage.total_tokens > 0
    _, _, response = post(model_server, "/v1/responses",
                          {"model": model, "input": QUESTION, "tools": RESPONSES_TOOLS})
    assert Response.model_validate_json(response).status == "completed"
    _, _, message = post(model_server, "/v1/messages", {
        "model": model, "max_tokens": 9, "messages": USER, "tools": ANTHROPIC_TOOLS})
    parsed = anthropic.types.Message.model_validate_json(message)
    assert parsed.stop_reason == ("tool_use" if "tool" in model else "end_turn")


def get(server: ModelServer, path: str, headers: dict[str, str]) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]))
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    body = json.loads(response.read())
    connection.close()
    return body


def test_model_lists_are_valid_in_both_formats(model_server: ModelServer) -> None:
    openai_list = get(model_server, "/v1/models", {})
    models = [openai.types.Model.model_validate(m) for m in openai_list["data"]]
    assert openai_list["object"] == "list" and models[0].id == "fake-reasoning"
    claude_list = get(model_server, "/v1/models", {"anthropic-version": "2023-06-01"})
    infos = [anthropic.types.ModelInfo.model_validate(m) for m in claude_list["data"]]
    assert [info.id for info in infos] == [model.id for model in models]
    assert claude_list["first_id"] == "fake-reasoning" and claude_list["has_more"] is False


def test_bad_requests_get_the_apis_error_bodies(model_server: ModelServer) -> None:
    status, headers, body = post(model_server, "/v1/chat/completions", None, raw=b"{not json")
    assert status == 400 and headers["x-should-retry"] == "false"
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = post(model_server, "/v1/messages", None, raw=b"[]")
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = post(model_server, "/v1/embeddings", {"model": "x"})
    assert status == 404 and "/v1/embeddings" in json.loads(body)["error"]["message"]


def test_both_clients_list_the_models_and_get_404s_in_their_format(
        model_server: ModelServer) -> None:
    model_server.script("scripted-listed", "Listed.")
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    listed = [model.id for model in client.models.list()]
    assert {"fake-reasoning", "fake-tool", "fake-long-table", "scripted-listed"} <= set(listed)
    claude = anthropic.Anthropic(base_url=model_server.anthropic_base_url,
                                 api_key=model_server.api_key)
    assert [model.id for model in claude.models.list()] == listed
    assert client.models.retrieve("any-name").id == "any-name"
    assert claude.models.retrieve("fake-tool").display_name == "fake-tool"
    with pytest.raises(openai.NotFoundError, match="no such endpoint: GET /v1/files"):
        client.files.list()
    status, _, body = post(model_server, "/v1/messages/batches", {})
    assert status == 404 and "error" in json.loads(body)


# -- OpenAI Chat Completions through the real client ----------------------------------------


@dataclass
class Chat:
    """What a chat stream carried, put together as a consumer would."""

    text: str = ""
    reasoning: str = ""
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments]
    finish: str | None = None
    usage: Any = None
    chunks: int = 0

    def add_all(self, chunks: Iterable[ChatCompletionChunk]) -> None:
        for chunk in chunks:
            self.add(chunk)

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.chunks += 1
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            self.text += delta.content or ""
            self.reasoning += getattr(delta, "reasoning_content", None) or ""
            for call in delta.tool_calls or []:
                entry = self.calls.setdefault(call.index, ["", "", ""])
                function = call.function
                if call.id:
                    entry[0] = call.id
                if function is not None:
                    entry[1] += function.name or ""
                    entry[2] += function.arguments or ""
            self.finish = choice.finish_reason or self.finish

    def check(self, model: str) -> None:
        """What the scenario promises: reasoning, text, a valid tool call, exact usage."""
        assert (QUESTION in self.reasoning) == ("reasoning" in model)
        if "tool" in model:
            assert self.text == "" and self.finish == "tool_calls"
            [(call_id, name, arguments)] = self.calls.values()
            assert call_id and name == "get_weather"
            assert json.loads(arguments) == {"city": QUESTION}
            output = count_tokens(name) + count_tokens(arguments)
        else:
            assert self.text.startswith(f"**You asked:** {QUESTION}") and self.finish == "stop"
            assert not self.calls
            output = count_tokens(self.text)
        output += count_tokens(self.reasoning)
        assert self.usage.completion_tokens == output
        assert self.usage.completion_tokens_details.reasoning_tokens == count_tokens(
            self.reasoning)
        assert self.usage.total_tokens == self.usage.prompt_tokens + output


def chat_request(model: str) -> dict[str, Any]:
    return {"model": model, "messages": USER, "tools": CHAT_TOOLS, "stream": True,
            "stream_options": {"include_usage": True}}


def test_openai_sync_client_reused_across_every_scenario(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    for model in SCENARIOS:
        chat = Chat()
        for chunk in client.chat.completions.create(**chat_request(model)):
            chat.add(chunk)
        chat.check(model)


def test_openai_async_client_reused_across_every_scenario(model_server: ModelServer) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=model_server.openai_base_url,
                                    api_key=model_server.api_key)
        for model in SCENARIOS:
            chat = Chat()
            async for chunk in await client.chat.completions.create(**chat_request(model)):
                chat.add(chunk)
            chat.check(model)
        await client.close()

    asyncio.run(main())


def test_the_same_request_gets_the_same_answer_and_usage(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    answers = []
    for _ in range(2):
        chat = Chat()
        for chunk in client.chat.completions.create(**chat_request("fake-reasoning")):
            chat.add(chunk)
        answers.append((chat.text, chat.reasoning, chat.usage, chat.chunks))
    assert answers[0] == answers[1]


def test_chat_stream_helper_final_completion(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    for model in ["gpt-test", "fake-tool", "fake-reasoning"]:
        with client.chat.completions.stream(model=model, messages=USER, tools=CHAT_TOOLS,
                                            stream_options={"include_usage": True}) as stream:
            kinds = {event.type for event in stream}
            final = stream.get_final_completion()
        message = final.choices[0].message
        assert final.usage is not None and final.usage.completion_tokens > 0
        if model == "fake-tool":
            assert "tool_calls.function.arguments.done" in kinds
            [call] = message.tool_calls or []
            assert json.loads(call.function.arguments) == {"city": QUESTION}
        else:
            assert "content.done" in kinds
            assert (message.content or "").startswith("**You asked:**")


def test_async_chat_stream_helper_final_completion(model_server: ModelServer) -> None:
    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=model_server.openai_base_url,
                                    api_key=model_server.api_key)
        texts = []
        for _ in range(3):
            async with client.chat.completions.stream(model="gpt-test", messages=USER) as stream:
                async for _event in stream:
                    pass
                final = await stream.get_final_completion()
            texts.append(final.choices[0].message.content or "")
        await client.close()
        return texts

    texts = asyncio.run(main())
    assert len(set(texts)) == 1 and texts[0].startswith(f"**You asked:** {QUESTION}")


def test_a_tool_result_sent_back_gets_an_answer_that_uses_it(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    first = client.chat.completions.create(model="fake-tool", messages=USER, tools=CHAT_TOOLS)
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    messages: Any = [*USER, first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = client.chat.completions.create(model="fake-tool", messages=messages,
                                            tools=CHAT_TOOLS)
    assert second.choices[0].message.content == "The `get_weather` tool answered: sunny, 21 C"
    assert second.choices[0].finish_reason == "stop"


def test_openai_errors_raise_the_clients_exception_classes(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    before = len(model_server.requests)
    with pytest.raises(openai.InternalServerError, match="fake error 500") as caught:
        client.chat.completions.create(**chat_request("fake-error-500"))
    assert caught.value.status_code == 500
    assert len(model_server.requests) == before + 1  # x-should-retry: false, so no retries
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-error-429", messages=USER)
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="fake-error-500", input=QUESTION, stream=True)
    chat = Chat()
    with pytest.raises(openai.APIError, match="fake error in the stream") as midstream:
        chat.add_all(client.chat.completions.create(**chat_request("fake-error-midstream")))
    assert not isinstance(midstream.value, openai.APIStatusError)
    assert chat.text.startswith("**You asked:**") and chat.finish is None
    # The client is still good for the next request.
    assert client.chat.completions.create(model="gpt-test", messages=USER).choices


def test_async_openai_errors_then_the_client_keeps_working(model_server: ModelServer) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=model_server.openai_base_url,
                                    api_key=model_server.api_key)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(**chat_request("fake-error-500"))
        with pytest.raises(openai.APIError, match="fake error in the stream"):
            async for _chunk in await client.chat.completions.create(
                    **chat_request("fake-error-midstream")):
                pass
        chat = Chat()
        async for chunk in await client.chat.completions.create(**chat_request("gpt-test")):
            chat.add(chunk)
        chat.check("gpt-test")
        await client.close()

    asyncio.run(main())


# -- OpenAI Responses through the real client -----------------------------------------------


@dataclass
class Responses:
    text: str = ""
    reasoning: str = ""
    arguments: str = ""
    final: Any = None
    kinds: list[str] = field(default_factory=list)

    def add(self, event: Any) -> None:
        assert type(event) is STREAM_EVENT_CLASSES[event.type], type(event)
        self.kinds.append(event.type)
        if event.type == "response.output_text.delta":
            self.text += event.delta
        elif event.type == "response.reasoning_summary_text.delta":
            self.reasoning += event.delta
        elif event.type == "response.function_call_arguments.delta":
            self.arguments += event.delta
        elif event.type == "response.completed":
            self.final = event.response

    def check(self, model: str) -> None:
        assert self.final is not None and self.final.output_text == self.text
        assert (QUESTION in self.reasoning) == ("reasoning" in model)
        if "tool" in model:
            [call] = [item for item in self.final.output if item.type == "function_call"]
            assert isinstance(call, ResponseFunctionToolCall)
            assert call.arguments == self.arguments and call.name == "get_weather"
            assert json.loads(self.arguments) == {"city": QUESTION}
        else:
            assert self.text.startswith(f"**You asked:** {QUESTION}")
        usage = self.final.usage
        assert usage.output_tokens_details.reasoning_tokens == count_tokens(self.reasoning)
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens > 0


def test_responses_stream_gives_typed_events_sync_and_async(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    for model in SCENARIOS:
        seen = Responses()
        for event in client.responses.create(model=model, input=QUESTION, tools=RESPONSES_TOOLS,
                                             stream=True):
            seen.add(event)
        seen.check(model)

    async def main() -> None:
        aclient = openai.AsyncOpenAI(base_url=model_server.openai_base_url,
                                     api_key=model_server.api_key)
        for model in SCENARIOS:
            seen = Responses()
            async for event in await aclient.responses.create(
                    model=model, input=QUESTION, tools=RESPONSES_TOOLS, stream=True):
                seen.add(event)
            seen.check(model)
        await aclient.close()

    asyncio.run(main())


def test_responses_stream_helper_final_response(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    for model in ["fake-reasoning", "fake-tool", "gpt-test"]:
        with client.responses.stream(model=model, input=QUESTION,
                                     tools=RESPONSES_TOOLS) as stream:
            text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
            final = stream.get_final_response()
        assert final.output_text == text
        calls = [item for item in final.output if item.type == "function_call"]
        assert len(calls) == (model == "fake-tool")


def test_responses_tool_result_and_midstream_failure(model_server: ModelServer) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    first = client.responses.create(model="fake-tool", input=QUESTION, tools=RESPONSES_TOOLS)
    [call] = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    items: Any = [{"role": "user", "content": QUESTION}, call.model_dump(exclude_none=True),
                  {"type": "function_call_output", "call_id": call.call_id, "output": "rain"}]
    second = client.responses.create(model="fake-tool", input=items, tools=RESPONSES_TOOLS)
    assert second.output_text == "The `get_weather` tool answered: rain"
    events = list(client.responses.create(model="fake-error-midstream", input=QUESTION,
                                          stream=True))
    error, failed = events[-2:]
    assert isinstance(error, ResponseErrorEvent) and error.code == "server_error"
    assert isinstance(failed, ResponseFailedEvent) and failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.message == error.message


# -- Anthropic Messages through the real client ---------------------------------------------


@dataclass
class Messages:
    thinking: str = ""
    signature: str = ""
    text: str = ""
    json: str = ""
    tool: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    stop: str | None = None

    def add_all(self, events: Iterable[Any]) -> None:
        for event in events:
            self.add(event)

    def add(self, event: Any) -> None:
        if isinstance(event, RawMessageStartEvent):
            self.input_tokens = event.message.usage.input_tokens
        elif isinstance(event, RawContentBlockStartEvent):
            if isinstance(event.content_block, ToolUseBlock):
                self.tool = event.content_block.name
        elif isinstance(event, RawContentBlockDeltaEvent):
            delta = event.delta
            if delta.type == "thinking_delta":
                self.thinking += delta.thinking
            elif delta.type == "signature_delta":
                self.signature += delta.signature
            elif delta.type == "text_delta":
                self.text += delta.text
            elif delta.type == "input_json_delta":
                self.json += delta.partial_json
        elif isinstance(event, RawMessageDeltaEvent):
            self.output_tokens = event.usage.output_tokens
            self.stop = event.delta.stop_reason

    def check(self, model: str) -> None:
        assert (QUESTION in self.thinking) == bool(self.signature) == ("reasoning" in model)
        if "tool" in model:
            assert self.tool == "get_weather" and self.stop == "tool_use"
            assert json.loads(self.json) == {"city": QUESTION}
        else:
            assert self.text.startswith(f"**You asked:** {QUESTION}")
            assert self.stop == "end_turn"
        assert self.input_tokens > 0
        assert self.output_tokens == (count_tokens(self.thinking) + count_tokens(self.text)
                                      + count_tokens(self.tool) + count_tokens(self.json))


def anthropic_request(model: str) -> dict[str, Any]:
    return {"model": model, "max_tokens": 1024, "messages": USER, "tools": ANTHROPIC_TOOLS}


def test_anthropic_sync_and_async_clients_reused_across_every_scenario(
        model_server: ModelServer) -> None:
    client = anthropic.Anthropic(base_url=model_server.anthropic_base_url,
                                 api_key=model_server.api_key)
    for model in SCENARIOS:
        seen = Messages()
        for event in client.messages.create(**anthropic_request(model), stream=True):
            seen.add(event)
        seen.check(model)

    async def main() -> None:
        aclient = anthropic.AsyncAnthropic(base_url=model_server.anthropic_base_url,
                                           api_key=model_server.api_key)
        for model in SCENARIOS:
            seen = Messages()
            async for event in await aclient.messages.create(**anthropic_request(model),
                                                             stream=True):
                seen.add(event)
            seen.check(model)
        await aclient.close()

    asyncio.run(main())


def test_anthropic_stream_helper_final_message(model_server: ModelServer) -> None:
    client = anthropic.Anthropic(base_url=model_server.anthropic_base_url,
                                 api_key=model_server.api_key)
    for model in ["fake-reasoning-tool", "gpt-test", "fake-reasoning"]:
        with client.messages.stream(**anthropic_request(model)) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        kinds = [block.type for block in final.content]
        if model == "fake-reasoning-tool":
            assert kinds == ["thinking", "tool_use"]
            tool = final.content[1]
            assert isinstance(tool, ToolUseBlock) and tool.input == {"city": QUESTION}
        else:
            assert kinds[-1] == "text" and ("thinking" in kinds) == ("reasoning" in model)
            assert isinstance(final.content[-1], TextBlock)
            assert text.startswith("**You asked:**")
        assert final.usage.output_tokens > 0


def test_anthropic_async_stream_helper_and_tool_result(model_server: ModelServer) -> None:
    async def main() -> list[str]:
        client = anthropic.AsyncAnthropic(base_url=model_server.anthropic_base_url,
                                          api_key=model_server.api_key)
        answers = []
        for _ in range(3):
            async with client.messages.stream(**anthropic_request("fake-tool")) as stream:
                first = await stream.get_final_message()
            [tool] = first.content
            assert isinstance(tool, ToolUseBlock)
            messages: Any = [*USER, {"role": "assistant", "content": [tool.model_dump()]},
                             {"role": "user", "content": [{
                                 "type": "tool_result", "tool_use_id": tool.id,
                                 "content": [{"type": "text", "text": "windy"}]}]}]
            second = await client.messages.create(model="fake-tool", max_tokens=99,
                                                  messages=messages, tools=ANTHROPIC_TOOLS)
            block = second.content[0]
            assert isinstance(block, TextBlock)
            answers.append(block.text)
        await client.close()
        return answers

    assert asyncio.run(main()) == ["The `get_weather` tool answered: windy"] * 3


def test_anthropic_errors_raise_the_clients_exception_classes(
        model_server: ModelServer) -> None:
    client = anthropic.Anthropic(base_url=model_server.anthropic_base_url,
                                 api_key=model_server.api_key)
    with pytest.raises(anthropic.InternalServerError, match="fake error 500"):
        client.messages.create(**anthropic_request("fake-error-500"), stream=True)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(**anthropic_request("fake-error-529"))
    seen = Messages()
    with pytest.raises(anthropic.APIStatusError, match="fake error in the stream") as caught:
        seen.add_all(client.messages.create(**anthropic_request("fake-error-midstream"),
                                            stream=True))
    assert seen.text.startswith("**You asked:**") and seen.stop is None
    assert caught.value.body == {"type": "error", "error": {
        "type": "api_error", "message": "fake error in the stream (model 'fake-error-midstream')"}}
    with pytest.raises(anthropic.APIStatusError), \
            client.messages.stream(**anthropic_request("fake-error-midstream")) as stream:
        stream.get_final_message()

    async def main() -> None:
        aclient = anthropic.AsyncAnthropic(base_url=model_server.anthropic_base_url,
                                           api_key=model_server.api_key)
        with pytest.raises(anthropic.OverloadedError):
            await aclient.messages.create(**anthropic_request("fake-error-529"), stream=True)
        with pytest.raises(anthropic.APIStatusError):
            async for _event in await aclient.messages.create(
                    **anthropic_request("fake-error-midstream"), stream=True):
                pass
        final = await aclient.messages.create(**anthropic_request("gpt-test"))
        assert final.stop_reason == "end_turn"
        await aclient.close()

    asyncio.run(main())


# -- scripting, shapes, pacing, lifecycle ---------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
def test_a_scripted_midstream_failure_without_text_still_fails_the_stream(
        model_server: ModelServer, path: str) -> None:
    model_server.script("scripted-fails-at-once", Reply(failure=Failure("gone", midstream=True)))
    body = {"model": "scripted-fails-at-once", "messages": USER, "input": QUESTION,
            "max_tokens": 5, "stream": True}
    status, _, payload = post(model_server, path, body)
    assert status == 200
    events = sse(payload)
    assert "gone" in events[-1][1] and (None, "[DONE]") not in events
    assert not any("completed" in data or "message_stop" in data for _, data in events)


def test_scripts_answer_by_model_name(model_server: ModelServer) -> None:
    model_server.script("scripted-text", "Hello from a script.")
    model_server.script("scripted-reply", Reply(reasoning="Hmm.", tool_calls=(
        ToolCall("search", {"q": "wfnb", "n": 3}), ToolCall("fetch", {"url": "x"}))))
    model_server.script("scripted-echo",
                        lambda prompt: Reply(text=prompt.question.upper()))
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    texts = [client.chat.completions.create(model=m, messages=USER).choices[0].message.content
             for m in ("scripted-text", "scripted-echo")]
    assert texts == ["Hello from a script.", QUESTION.upper()]
    chat = Chat()
    for chunk in client.chat.completions.create(**chat_request("scripted-reply")):
        chat.add(chunk)
    assert chat.reasoning == "Hmm."
    assert [(name, json.loads(args)) for _, name, args in chat.calls.values()] == [
        ("search", {"q": "wfnb", "n": 3}), ("fetch", {"url": "x"})]


def test_a_script_that_raises_is_reported_to_the_client_and_logged(
        model_server: ModelServer, caplog: pytest.LogCaptureFixture) -> None:
    def broken(prompt: Prompt) -> Reply:
        raise KeyError("oops")

    model_server.script("scripted-broken", broken)
    client = anthropic.Anthropic(base_url=model_server.anthropic_base_url,
                                 api_key=model_server.api_key)
    with pytest.raises(anthropic.InternalServerError, match=r"KeyError.*oops"):
        client.messages.create(**anthropic_request("scripted-broken"))
    [record] = [r for r in caplog.records if r.name == "wfnb.testing"]
    assert "scripted-broken" in record.getMessage() and record.exc_info is not None


@pytest.mark.parametrize("shape", LONG_SHAPES)
def test_long_answers_come_in_each_markdown_shape(model_server: ModelServer, shape: str) -> None:
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    chat = Chat()
    for chunk in client.chat.completions.create(**chat_request(f"fake-long-{shape}-8k")):
        chat.add(chunk)
    assert 8000 <= len(chat.text) < 8200
    first_line = chat.text.split("\n", 1)[0]
    expected = {"code": "```python", "table": "| # | name | value |", "list": "- item 1: "}
    assert first_line.startswith(expected.get(shape, ""))
    assert ("\n" in chat.text.rstrip("\n")) == (shape != "line")


def test_delay_paces_the_stream_so_it_can_be_watched() -> None:
    with ModelServer(delay=0.01) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key=server.api_key)
        started = time.monotonic()
        arrivals = [time.monotonic() - started for _ in client.chat.completions.create(
            model="gpt-test", messages=USER, stream=True)]
    assert len(arrivals) > 20
    assert arrivals[-1] >= 0.01 * (len(arrivals) - 1)
    assert arrivals[0] < arrivals[-1] / 2  # the first chunk arrives long before the last


def test_concurrent_streams_are_served_side_by_side(model_server: ModelServer) -> None:
    model_server.script("scripted-slow", Reply(text="one two three four five six seven eight",
                                               delay=0.05))

    async def main() -> tuple[list[str], float]:
        client = openai.AsyncOpenAI(base_url=model_server.openai_base_url,
                                    api_key=model_server.api_key)

        async def one() -> str:
            chat = Chat()
            async for chunk in await client.chat.completions.create(
                    model="scripted-slow", messages=USER, stream=True):
                chat.add(chunk)
            return chat.text

        started = time.monotonic()
        texts = await asyncio.gather(*(one() for _ in range(6)))
        elapsed = time.monotonic() - started
        await client.close()
        return list(texts), elapsed

    texts, elapsed = asyncio.run(main())
    assert texts == ["one two three four five six seven eight"] * 6
    assert elapsed < 6 * 0.05 * 10 / 2  # one after the other would take 6 x 10 pauses


def test_fake_slow_paces_itself_and_a_client_may_hang_up(model_server: ModelServer) -> None:
    assert model_server.delay == 0
    client = openai.OpenAI(base_url=model_server.openai_base_url, api_key=model_server.api_key)
    started = time.monotonic()
    stream = client.chat.completions.create(model="fake-slow", messages=USER, stream=True)
    first = [next(stream) for _ in range(5)]
    assert time.monotonic() - started >= 0.1 * 4
    stream.close()  # mid-answer: the server stops writing, quietly
    assert first[-1].choices[0].delta.content
    assert client.chat.completions.create(model="gpt-test", messages=USER).choices


def test_start_stop_and_open_keep_alive_connections() -> None:
    server = ModelServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key=server.api_key,
                               max_retries=0)
        for _ in range(3):
            client.chat.completions.create(model="gpt-test", messages=USER)
        assert repr(server).startswith("<ModelServer http://127.0.0.1:")
        started = time.monotonic()
    assert time.monotonic() - started < 5  # the pooled keep-alive connection did not block
    assert repr(server) == "<ModelServer stopped>"
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-test", messages=USER)


def test_import_wfnb_does_not_import_the_model_server() -> None:
    code = "import sys, wfnb; print('wfnb.testing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


# -- frameworks on top of the clients -------------------------------------------------------


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def add_up(chunks: Iterable[Any]) -> Any:
    total = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    return total


def test_langchain_chat_openai_streams_text_tools_and_usage(model_server: ModelServer) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="gpt-test", base_url=model_server.openai_base_url,
                     api_key=SecretStr(model_server.api_key), stream_usage=True)
    for _ in range(3):
        answer = add_up(llm.stream(QUESTION))
        assert answer.content.startswith(f"**You asked:** {QUESTION}")
        assert answer.usage_metadata["output_tokens"] == count_tokens(answer.content)
    tool_llm = ChatOpenAI(model="fake-tool", base_url=model_server.openai_base_url,
                          api_key=SecretStr(model_server.api_key)).bind_tools([get_weather])
    call = add_up(tool_llm.stream(QUESTION))
    assert [(c["name"], c["args"]) for c in call.tool_calls] == [
        ("get_weather", {"city": QUESTION})]



def test_langchain_chat_openai_astream_reused_on_one_loop() -> None:
    from langchain_openai import ChatOpenAI

    # A server of its own: langchain-openai caches one async HTTP client per base URL for the
    # whole process, bound to the loop that first used it, which asyncio.run() then closes.
    with ModelServer() as server:
        llm = ChatOpenAI(model="gpt-test", base_url=server.openai_base_url,
                         api_key=SecretStr(server.api_key), stream_usage=True)

        async def main() -> list[str]:
            answers = []
            for _ in range(3):
                answers.append(add_up([c async for c in llm.astream(QUESTION)]).content)
            return answers

        answers = asyncio.run(main())
    assert len(set(answers)) == 1 and answers[0].startswith(f"**You asked:** {QUESTION}")


def test_langchain_chat_openai_on_the_responses_api(model_server: ModelServer) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="fake-reasoning", base_url=model_server.openai_base_url,
                     api_key=SecretStr(model_server.api_key), use_responses_api=True)
    for _ in range(3):
        answer = add_up(llm.stream(QUESTION))
        kinds = [block["type"] for block in answer.content]
        assert kinds == ["reasoning", "text"]
        assert QUESTION in answer.content[0]["summary"][0]["text"]
        assert answer.content[1]["text"].startswith(f"**You asked:** {QUESTION}")
        assert answer.usage_metadata["output_token_details"]["reasoning"] > 0


@pytest.mark.parametrize("model_class", ["OpenAIChat", "OpenAILike"])
def test_agno_agent_streams_reasoning_and_a_tool_round_trip(
        model_server: ModelServer, model_class: str) -> None:
    from agno.agent import Agent
    from agno.models import openai as agno_openai

    model = getattr(agno_openai, model_class)(
        id="fake-reasoning-tool", base_url=model_server.openai_base_url,
        api_key=model_server.api_key)
    agent = Agent(model=model, tools=[get_weather])
    for _ in range(3):
        events = list(agent.run(QUESTION, stream=True, stream_events=True))
        kinds = [type(event).__name__ for event in events]
        assert "ToolCallCompletedEvent" in kinds
        text = "".join(e.content for e in events
                       if type(e).__name__ == "RunContentEvent" and isinstance(e.content, str))
        assert text.endswith(f"The `get_weather` tool answered: sunny in {QUESTION}")
        assert any(QUESTION in (getattr(e, "reasoning_content", None) or "") for e in events)

    async def main() -> list[str]:
        answers = []
        for _ in range(3):
            chunks = [e async for e in agent.arun(QUESTION, stream=True)]
            answers.append("".join(e.content for e in chunks if isinstance(e.content, str)))
        return answers

    assert all(a.endswith("tool answered: sunny in " + QUESTION) for a in asyncio.run(main()))
