"""The real client packages (openai, anthropic, langchain-openai, agno) streaming over real HTTP
from wfnb's local model server, through %workflow, Workflow.run and wfnb.show.

Each client is created once and reused across at least three runs. Notebook cases in real
kernels are in tests/test_model_notebooks.py.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell

from tests._shell import (
    capturing_shell,
    final_outputs,
    fresh_shell,
    outputs,
    run,
    saved_text,
    status_line,
)
from wfnb import RunResponse, SqliteWorkflowStorage, Usage, WorkflowRunError
from wfnb.testing import ModelServer

QUESTION = "Why is the sky blue?"
ANSWER_START = f"**You asked:** {QUESTION}\n\nThis answer comes from wfnb's local model server."
THOUGHT = f"The user asks: {QUESTION} A short, friendly answer will do"
TOOLS_OPENAI = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}]


@pytest.fixture(scope="module")
def shell(model_server: ModelServer) -> InteractiveShell:
    ip = capturing_shell()
    ip.push({"server": model_server, "QUESTION": QUESTION, "TOOLS": TOOLS_OPENAI})
    run(ip, """
import anthropic, openai
client = openai.OpenAI(base_url=server.openai_base_url, api_key=server.api_key)
aclient = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=server.api_key)
claude = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=server.api_key)
aclaude = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key=server.api_key)
msgs = [{"role": "user", "content": QUESTION}]
""")
    return ip


@pytest.fixture(autouse=True)
def fresh(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    yield from fresh_shell(shell, tmp_path, monkeypatch)


def thinking_shown(shell: InteractiveShell) -> str:
    """The saved Thinking output's text (collapsed in HTML, plain text too)."""
    (aside,) = [d for d in final_outputs(shell) if "wfnb-thinking" in d.get("text/html", "")
                or "wfnb-tool" in d.get("text/html", "")]
    assert "<details class='wfnb-thinking'>" in aside["text/html"] or "Thinking" not in aside[
        "text/plain"]
    return aside["text/plain"]


def answer_shown(shell: InteractiveShell) -> str:
    return "".join(d["text/plain"] for d in final_outputs(shell)
                   if "wfnb-md" in d.get("text/html", ""))


def rerun(shell: InteractiveShell, cell: str, times: int = 3) -> list[RunResponse]:
    """Run a cell ``times`` times (the same client each time); the results."""
    results = []
    for _ in range(times):
        shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
        results.append(run(shell, cell))
    return results


CASES = {
    "openai-chat": 'client.chat.completions.create(model="fake-reasoning", messages=msgs, '
                   'stream=True, stream_options={"include_usage": True})',
    "openai-chat-async": 'aclient.chat.completions.create(model="fake-reasoning", messages=msgs, '
                         'stream=True, stream_options={"include_usage": True})',
    "openai-chat-answer": 'client.chat.completions.create(model="fake-reasoning", messages=msgs)',
    "openai-chat-answer-async": 'aclient.chat.completions.create(model="fake-reasoning", '
                                'messages=msgs)',
    "openai-chat-helper": 'client.chat.completions.stream(model="fake-reasoning", messages=msgs, '
                          'stream_options={"include_usage": True})',
    "openai-responses": 'client.responses.create(model="fake-reasoning", input=QUESTION, '
                        'stream=True)',
    "openai-responses-async": 'aclient.responses.create(model="fake-reasoning", input=QUESTION, '
                              'stream=True)',
    "openai-response": 'client.responses.create(model="fake-reasoning", input=QUESTION)',
    "anthropic": 'claude.messages.create(model="fake-reasoning", max_tokens=500, messages=msgs, '
                 'stream=True)',
    "anthropic-async": 'aclaude.messages.create(model="fake-reasoning", max_tokens=500, '
                       'messages=msgs, stream=True)',
    "anthropic-helper": 'claude.messages.stream(model="fake-reasoning", max_tokens=500, '
                        'messages=msgs)',
    "anthropic-async-helper": 'aclaude.messages.stream(model="fake-reasoning", max_tokens=500, '
                              'messages=msgs)',
    "anthropic-message": 'claude.messages.create(model="fake-reasoning", max_tokens=500, '
                         'messages=msgs)',
}


@pytest.mark.parametrize("call", CASES.values(), ids=CASES.keys())
def test_each_client_streams_text_reasoning_and_tokens_run_after_run(
    shell: InteractiveShell, call: str
) -> None:
    for result in rerun(shell, f"%workflow {call}"):
        assert result.content.startswith(ANSWER_START)
        assert result.reasoning_content is not None and result.reasoning_content.startswith(
            THOUGHT)
        assert result.usage is not None and result.usage.output_tokens
        assert answer_shown(shell) == result.content  # the answer alone, as Markdown
        assert thinking_shown(shell).startswith(f"Thinking:\n{THOUGHT}")
        assert status_line(shell).startswith("done") and str(result.usage) in status_line(shell)


TOOL_CASES = {
    "openai-chat": 'client.chat.completions.create(model="fake-tool", messages=msgs, '
                   'tools=TOOLS, stream=True)',
    "openai-chat-async": 'aclient.chat.completions.create(model="fake-tool", messages=msgs, '
                         'tools=TOOLS, stream=True)',
    "openai-responses": 'client.responses.create(model="fake-tool", input=QUESTION, stream=True, '
                        'tools=[dict(TOOLS[0]["function"], type="function")])',
    "anthropic": 'claude.messages.create(model="fake-tool", max_tokens=500, messages=msgs, '
                 'stream=True, tools=[{"name": "get_weather", "input_schema": '
                 'TOOLS[0]["function"]["parameters"]}])',
}


@pytest.mark.parametrize("call", TOOL_CASES.values(), ids=TOOL_CASES.keys())
def test_a_tool_call_only_stream_shows_one_line_per_call(
    shell: InteractiveShell, call: str
) -> None:
    result = run(shell, f"%workflow {call}")
    (tool_call,) = result.tool_calls
    assert (tool_call.name, tool_call.arguments) == (
        "get_weather", '{"city": "Why is the sky blue?"}')
    assert result.content == ""
    assert thinking_shown(shell) == 'tool call: get_weather({"city": "Why is the sky blue?"})'
    assert " · 0 chunks · 1 tool call" in status_line(shell)


def test_langchain_chat_openai_streams_sync_and_async(shell: InteractiveShell) -> None:
    run(shell, "from langchain_openai import ChatOpenAI\n"
               "llm = ChatOpenAI(model='fake-reasoning', base_url=server.openai_base_url, "
               "api_key=server.api_key, stream_usage=True)")
    for cell in ("%workflow llm.stream(QUESTION)", "%workflow llm.astream(QUESTION)",
                 "%workflow llm.astream_events(QUESTION, version='v2')",
                 "%workflow llm.invoke(QUESTION)"):
        for result in rerun(shell, cell):
            assert result.content.startswith(ANSWER_START), cell
            assert answer_shown(shell) == result.content
            assert result.usage is not None and result.usage.output_tokens, cell


AGNO = """
from agno.agent import Agent
from agno.models.openai.like import OpenAILike

def get_weather(city: str) -> str:
    "The weather in a city."
    return f"sunny in {city}"

agent = Agent(model=OpenAILike(id="fake-reasoning-tool", base_url=server.openai_base_url,
                               api_key=server.api_key), tools=[get_weather])
"""
AGNO_ANSWER = "The `get_weather` tool answered: sunny in Why is the sky blue?"


@pytest.mark.parametrize("call", [
    "agent.run(QUESTION, stream=True)", "agent.arun(QUESTION, stream=True)",
    "agent.run(QUESTION, stream=True, stream_events=True)",
    "agent.arun(QUESTION, stream=True, stream_events=True)",
    "agent.run(QUESTION)", "agent.arun(QUESTION)",
])
def test_agno_agents_stream_their_answer_once_run_after_run(
    shell: InteractiveShell, call: str
) -> None:
    run(shell, AGNO)
    for result in rerun(shell, f"%workflow {call}"):
        assert result.content == AGNO_ANSWER  # the completion event does not repeat it
        assert answer_shown(shell) == AGNO_ANSWER
        assert THOUGHT in (result.reasoning_content or "")
        if "stream=True" not in call or "stream_events" in call:  # tool events, metrics
            assert [c.summary() for c in result.tool_calls] == [
                'get_weather({"city": "Why is the sky blue?"}) → sunny in Why is the sky blue?']
            assert "tool call: get_weather" in thinking_shown(shell)
            assert result.usage is not None and result.usage.input_tokens


WORKFLOW = """
import wfnb

class Chat(wfnb.Workflow):
    def run(self, question: str):
        stream = client.chat.completions.create(
            model="fake-reasoning", messages=[{"role": "user", "content": question}],
            stream=True, stream_options={"include_usage": True})
        yield from stream
        self.session_state["runs"] = self.session_state.get("runs", 0) + 1

class AsyncChat(wfnb.Workflow):
    async def run(self, question: str):
        stream = await aclient.chat.completions.create(
            model="fake-reasoning", messages=[{"role": "user", "content": question}],
            stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            yield chunk
        tokens = self.session_state.get("tokens", 0)
        self.session_state["tokens"] = tokens + self.run_response.usage.output_tokens

storage = wfnb.SqliteWorkflowStorage("chats", "chats.db")
"""


@pytest.mark.parametrize(("kind", "method"), [("Chat", "run"), ("AsyncChat", "arun")])
def test_workflows_yielding_chunks_store_text_and_tokens_run_after_run(
    shell: InteractiveShell, kind: str, method: str
) -> None:
    run(shell, WORKFLOW)
    run(shell, f"chat = {kind}(session_id='s', storage=storage)")
    results = rerun(shell, f"%workflow chat.{method}(QUESTION)")
    assert all(result.content.startswith(ANSWER_START) for result in results)
    assert all(answer_shown(shell).startswith(ANSWER_START) for _ in results)
    runs = SqliteWorkflowStorage("chats", "chats.db").runs("s")
    assert [r.status for r in runs] == ["completed"] * 3
    assert all(r.output == results[0].content and "Choice" not in (r.output or "") for r in runs)
    usage = results[0].usage
    assert usage is not None and usage.output_tokens
    assert {(r.input_tokens, r.output_tokens) for r in runs} == {
        (usage.input_tokens, usage.output_tokens)}
    state = shell.user_ns["chat"].session_state
    assert state == ({"runs": 3} if kind == "Chat" else {"tokens": 3 * usage.output_tokens})


def test_workflow_run_without_a_display_gives_text_responses(shell: InteractiveShell) -> None:
    run(shell, WORKFLOW)
    responses = list(run(shell, "Chat(session_id='t', storage=storage).run(QUESTION)"))
    assert "".join(r.get_content_as_string() for r in responses).startswith(ANSWER_START)
    assert all(r.content is None or isinstance(r.content, str) for r in responses)
    (record,) = SqliteWorkflowStorage("chats", "chats.db").runs("t")
    assert responses[-1].usage == Usage(record.input_tokens, record.output_tokens)


ERRORS = {
    "openai-chat": 'client.chat.completions.create(model="{model}", messages=msgs, stream=True)',
    "openai-chat-async": 'aclient.chat.completions.create(model="{model}", messages=msgs, '
                         'stream=True)',
    "openai-responses": 'client.responses.create(model="{model}", input=QUESTION, stream=True)',
    "anthropic": 'claude.messages.create(model="{model}", max_tokens=500, messages=msgs, '
                 'stream=True)',
    "anthropic-async": 'aclaude.messages.stream(model="{model}", max_tokens=500, messages=msgs)',
}


@pytest.mark.parametrize("call", ERRORS.values(), ids=ERRORS.keys())
def test_an_http_error_fails_the_cell_like_an_error_in_the_stream(
    shell: InteractiveShell, call: str
) -> None:
    shown = []
    for model in ("fake-error-500", "fake-error-midstream"):
        shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
        result = shell.run_cell(f"%workflow {call.format(model=model)}")
        error = result.error_in_exec
        assert not result.success and isinstance(error, WorkflowRunError), model
        lines = error._render_traceback_()
        assert len(lines) == 3 and "fake error" in lines[0] and lines[1] == (
            "  in the %workflow expression")
        assert status_line(shell).startswith("failed")
        shown.append(saved_text(shell))
    assert shown[0] == "" and shown[1].startswith("**You asked:**")  # half an answer came
    assert run(shell, f"%workflow {call.format(model='fake-reasoning')}").content.startswith(
        ANSWER_START)  # the client still works


def test_an_interrupted_async_run_is_recorded_and_the_next_one_works(
    shell: InteractiveShell, model_server: ModelServer
) -> None:
    run(shell, WORKFLOW)
    run(shell, "chat = AsyncChat(session_id='i', storage=storage)")
    model_server.delay = 0.05
    try:
        result = interrupted(shell, "%workflow chat.arun(QUESTION)")
    finally:
        model_server.delay = 0.0
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert status_line(shell).startswith("interrupted")
    assert SqliteWorkflowStorage("chats", "chats.db").runs("i")[0].status == "interrupted"
    shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
    assert run(shell, "%workflow chat.arun(QUESTION)").content.startswith(ANSWER_START)
    assert [r.status for r in SqliteWorkflowStorage("chats", "chats.db").runs("i")] == [
        "completed", "interrupted"]


def test_reasoning_and_answers_from_a_model_are_escaped(
    shell: InteractiveShell, model_server: ModelServer
) -> None:
    from wfnb.testing import Reply

    model_server.script("fake-html", Reply(text="<img src=x onerror=alert(1)>",
                                           reasoning="<script>alert(2)</script>"))
    run(shell, '%workflow client.chat.completions.create(model="fake-html", messages=msgs, '
               'stream=True)')
    html = "".join(m["data"].get("text/html", "") for m in outputs(shell))
    assert "<img" not in html and "<script" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_terminals_show_reasoning_and_tool_calls_apart(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    from wfnb.notebook import _frontend

    _frontend.use("terminal")
    run(shell, '%workflow client.chat.completions.create(model="fake-reasoning-tool", '
               'messages=msgs, tools=TOOLS, stream=True, stream_options={"include_usage": True})')
    printed = capsys.readouterr().out
    assert printed.startswith(f"Thinking: {THOUGHT}")
    assert '\n[tool call: get_weather({"city": "Why is the sky blue?"})]\n' in printed
    (status,) = [line for line in printed.splitlines() if line.startswith("[done · ")]
    assert "tokens" in status


def test_a_dict_answer_shows_its_text_and_a_plain_dict_is_refused(shell: InteractiveShell) -> None:
    run(shell, 'answer = client.chat.completions.create(model="fake-reasoning", messages=msgs)')
    assert run(shell, "%workflow answer.model_dump()").content.startswith(ANSWER_START)
    assert answer_shown(shell).startswith(ANSWER_START)
    shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
    result = shell.run_cell('%workflow {"id": 1, "choice": "x"}')
    assert isinstance(result.error_in_exec, WorkflowRunError)
    assert "UnknownChunkError: wfnb cannot show a chunk of type builtins.dict" in (
        result.error_in_exec._render_traceback_()[0])
    assert saved_text(shell) == ""  # not its keys


def test_a_client_bound_to_another_loop_gets_a_message_saying_what_to_write(
    shell: InteractiveShell,
) -> None:
    run(shell, """
import asyncio
used = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key=server.api_key)

async def once():
    return await used.chat.completions.create(model="fake-reasoning", messages=msgs)

asyncio.run(once())  # its connection pool stays bound to that loop, now closed
""")
    result = shell.run_cell(
        '%workflow used.chat.completions.create(model="fake-reasoning", messages=msgs, '
        'stream=True)')
    assert isinstance(result.error_in_exec, WorkflowRunError)
    message = result.error_in_exec._render_traceback_()[0]
    assert "belongs to another event loop" in message
    assert "pass the call itself, without await" in message


@pytest.mark.parametrize("body", [
    "yield from client.chat.completions.create(model='fake-reasoning', messages=msgs, "
    "stream=True, stream_options={'include_usage': True})",
    "stream = await aclient.chat.completions.create(model='fake-reasoning', messages=msgs, "
    "stream=True, stream_options={'include_usage': True})\n"
    "async for chunk in stream:\n    yield chunk",
], ids=["sync", "async"])
def test_workflow_cells_yielding_client_chunks_show_and_store_text(
    shell: InteractiveShell, body: str
) -> None:
    for _ in range(3):
        shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
        run(shell, f"%%workflow ask\n{body}\n")
        assert answer_shown(shell).startswith(ANSWER_START)
        assert thinking_shown(shell).startswith(f"Thinking:\n{THOUGHT}")
        assert "tokens 6 in / " in status_line(shell)
    runs = SqliteWorkflowStorage("notebook_workflows", "tmp/workflows.db").runs("ask")
    assert [r.status for r in runs] == ["completed"] * 3
    assert all(r.output and r.output.startswith(ANSWER_START) and r.input_tokens == 6
               for r in runs)


def test_an_interrupted_stream_releases_its_connection(
    shell: InteractiveShell, model_server: ModelServer
) -> None:
    model_server.delay = 0.05
    try:
        run(shell, "stream = client.chat.completions.create(model='fake-reasoning', "
                   "messages=msgs, stream=True)")
        result = interrupted(shell, "%workflow stream")
    finally:
        model_server.delay = 0.0
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert status_line(shell).startswith("interrupted")
    assert shell.user_ns["stream"].response.is_closed


def interrupted(shell: InteractiveShell, cell: str) -> ExecutionResult:
    """Run ``cell`` and press the stop button (KeyboardInterrupt) half a second in."""
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    result: ExecutionResult = shell.run_cell(cell)
    timer.join()
    return result
