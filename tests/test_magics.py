"""The %workflow magics through a real IPython shell, capturing every display message."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests._shell import capturing_shell, fresh_shell, outputs, run, saved_text, status_line
from wfnb import RunEvent, RunResponse, SqliteWorkflowStorage, Workflow, WorkflowRunError
from wfnb.notebook import _frontend


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    return capturing_shell()


@pytest.fixture(autouse=True)
def fresh(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    yield from fresh_shell(shell, tmp_path, monkeypatch)


def test_load_ext_registers_both_magics(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.magics
    assert "workflow" in magics["line"] and "workflow" in magics["cell"]


def test_help_comes_from_magic_arguments(shell: InteractiveShell) -> None:
    doc = shell.magics_manager.magics["cell"]["workflow"].__doc__ or ""
    assert "--session-id" in doc and "--input ARG" in doc and "Line magic" in doc


def test_import_wfnb_alone_does_not_register_or_import_display() -> None:
    import subprocess
    import sys

    code = "import wfnb, sys; print('IPython.display' in sys.modules, 'ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "chunks",
    [
        ["Hello", " world"],
        [RunResponse(content="Hello"), RunResponse(content=" world")],
        [SimpleNamespace(content="Hello"), SimpleNamespace(content=" world")],
        [SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=c))])
         for c in ("Hello", " world", None)],
        [{"choices": [{"delta": {"role": "assistant"}}]}]
        + [{"choices": [{"delta": {"content": c}}]} for c in ("Hello", " world")],
    ],
    ids=["str", "RunResponse", "content-attr", "openai-objects", "openai-dicts"],
)
def test_line_magic_streams_every_chunk_shape(shell: InteractiveShell, chunks: list[Any]) -> None:
    shell.user_ns["chunks"] = chunks
    result = run(shell, "%workflow iter(chunks)")
    assert isinstance(result, RunResponse) and result.content == "Hello world"
    assert saved_text(shell) == "Hello world"


def test_line_magic_result_can_be_assigned(shell: InteractiveShell) -> None:
    run(shell, 'answer = %workflow (w for w in ["a", "b"])')
    assert shell.user_ns["answer"].content == "ab"


def test_line_magic_streams_an_async_iterable(shell: InteractiveShell) -> None:
    async def words() -> AsyncIterator[str]:
        for word in ("as", "ync"):
            await asyncio.sleep(0.01)
            yield word

    shell.user_ns["words"] = words
    assert run(shell, "%workflow words()").content == "async"


def test_line_magic_runs_a_workflow_and_shows_its_ids(shell: InteractiveShell) -> None:
    class Greeter(Workflow):
        def run(self, name: str) -> Iterator[str]:
            self.session_state["greeted"] = name
            yield f"Hi {name}"

    storage = SqliteWorkflowStorage("greeters", "tmp/workflows.db")
    shell.user_ns["greeter"] = Greeter(session_id="g1", storage=storage)
    result = run(shell, '%workflow greeter.run(name="Ada")')
    assert (result.content, result.session_id) == ("Hi Ada", "g1")
    assert "Greeter · session g1 · run " in status_line(shell)
    stored = storage.read("g1")
    assert stored is not None and stored.session_state == {"greeted": "Ada"}


INLINE = """%%workflow notes
count = session_state.get("count", 0) + 1
session_state["count"] = count
yield f"run {count} of {session_id}"
"""


def test_cell_magic_persists_state_across_reruns(shell: InteractiveShell) -> None:
    run(shell, INLINE)
    run(shell, INLINE)
    storage = SqliteWorkflowStorage("notebook_workflows", "tmp/workflows.db")
    stored = storage.read("notes")
    assert stored is not None and stored.session_state == {"count": 2}
    assert shell.user_ns["count"] == 2  # the body's names land in the notebook
    assert saved_text(shell).endswith("run 2 of notes")
    assert [r.status for r in storage.runs("notes")] == ["completed", "completed"]


def test_cell_magic_leaves_braces_and_dollars_alone(shell: InteractiveShell) -> None:
    run(shell, '%%workflow raw --out reply\nprompt = "Use {name} and $HOME"\nyield prompt\n')
    assert shell.user_ns["reply"].content == "Use {name} and $HOME"


def test_cell_magic_bare_return_ends_the_run(shell: InteractiveShell) -> None:
    run(shell, '%%workflow early --out r\nyield "one"\nreturn\nyield "two"\n')
    assert shell.user_ns["r"].content == "one"


def test_cell_magic_options_choose_session_file_and_table(shell: InteractiveShell) -> None:
    run(shell, '%%workflow w --session-id s9 --db other/x.db --table tbl\nsession_state["k"] = 1\n')
    stored = SqliteWorkflowStorage("tbl", "other/x.db").read("s9")
    assert stored is not None and stored.session_state == {"k": 1}


def test_quoted_option_values_lose_their_quotes(shell: InteractiveShell) -> None:
    cell = "%%workflow w --session-id 'my notes' --db \"spaced dir/x.db\"\n"
    run(shell, cell + "session_state['k'] = 1\n")
    stored = SqliteWorkflowStorage("notebook_workflows", "spaced dir/x.db").read("my notes")
    assert stored is not None and stored.session_state == {"k": 1}


def test_cell_magic_uses_a_storage_variable(shell: InteractiveShell) -> None:
    shell.user_ns["store"] = SqliteWorkflowStorage("mine", "tmp/mine.db")
    run(shell, '%%workflow w --storage store\nsession_state["via"] = "variable"\n')
    stored = shell.user_ns["store"].read("w")
    assert stored.session_state == {"via": "variable"}


def test_config_sets_the_default_database(shell: InteractiveShell) -> None:
    run(shell, "%config WorkflowMagics.db_file = 'configured/wf.db'")
    run(shell, '%%workflow c\nsession_state["x"] = 1\n')
    assert Path("configured/wf.db").is_file()


def test_cell_body_is_the_input_of_an_existing_workflow(shell: InteractiveShell) -> None:
    class Echo(Workflow):
        def run(self, topic: str) -> Iterator[str]:
            self.session_state.setdefault("topics", []).append(topic.strip())
            yield f"about {topic.strip()}"

    storage = SqliteWorkflowStorage("echo", "tmp/workflows.db")
    shell.user_ns["echo"] = Echo(session_id="e", storage=storage)
    run(shell, "%%workflow echo --input topic --out said\npasta with {sauce}\n")
    assert shell.user_ns["said"].content == "about pasta with {sauce}"
    stored = storage.read("e")
    assert stored is not None and stored.session_state == {"topics": ["pasta with {sauce}"]}


def test_async_cell_body_runs_inside_a_running_event_loop(shell: InteractiveShell) -> None:
    body = '%%workflow a --out r\nimport asyncio\nawait asyncio.sleep(0.01)\nyield "awaited"\n'

    async def kernel_like() -> Any:
        asyncio.get_running_loop()  # the kernel's loop is running while cells execute
        return shell.run_cell(body)

    result = asyncio.run(kernel_like())
    assert result.success, result.error_in_exec
    assert shell.user_ns["r"].content == "awaited"


def test_a_failing_run_is_a_short_error_output(shell: InteractiveShell) -> None:
    result = shell.run_cell('%%workflow bad\nyield "partial"\nraise ValueError("boom")\n')
    error = result.error_in_exec
    assert not result.success and isinstance(error, WorkflowRunError)
    lines = error._render_traceback_()
    assert lines[0] == "ValueError: boom"
    assert "workflow bad · session bad · run " in lines[1]
    assert saved_text(shell) == "partial"
    assert status_line(shell).startswith("failed")


def test_full_tracebacks_on_request(shell: InteractiveShell) -> None:
    shell.run_cell("%config WorkflowMagics.short_errors = False")
    result = shell.run_cell('%%workflow bad\nraise ValueError("boom")\nyield\n')
    assert isinstance(result.error_in_exec, ValueError)


def test_interrupt_keeps_partial_output_and_records_the_run(shell: InteractiveShell) -> None:
    result = shell.run_cell('%%workflow stop\nyield "so far"\nraise KeyboardInterrupt\n')
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert saved_text(shell) == "so far"
    assert status_line(shell).startswith("interrupted")
    runs = SqliteWorkflowStorage("notebook_workflows", "tmp/workflows.db").runs("stop")
    assert runs[0].status == "interrupted"


def test_cached_runs_say_so(shell: InteractiveShell) -> None:
    def cached() -> Iterator[RunResponse]:
        yield RunResponse(content="from cache", event=RunEvent.workflow_completed)

    shell.user_ns["cached"] = cached
    run(shell, "%workflow cached()")
    assert status_line(shell).endswith("from session_state")


def test_streamed_html_is_escaped_and_markdown_rendered(shell: InteractiveShell) -> None:
    text = "# Title\n\n<img src=x onerror=alert(1)> <script>alert(2)</script>\n\n```\na < b\n```\n"
    shell.user_ns["text"] = text
    run(shell, "%workflow iter([text])")
    html = "".join(m["data"].get("text/html", "") for m in outputs(shell))
    assert "<h1>Title</h1>" in html
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<code>a &lt; b\n</code>" in html


def test_every_output_starts_as_it_ends(shell: InteractiveShell) -> None:
    """nbval compares an output's first message with the saved notebook; they must agree."""
    shell.user_ns["long"] = [f"Paragraph {n} " + "word " * 60 + "\n\n" for n in range(40)]
    run(shell, "%config WorkflowMagics.freeze_chars = 500")
    run(shell, "%config WorkflowMagics.refresh_rate = 0")  # refresh on every chunk
    run(shell, "%workflow iter(long)")
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for message in outputs(shell):
        first.setdefault(message["transient"]["display_id"], message["data"])
        last[message["transient"]["display_id"]] = message["data"]
    assert first == last
    assert saved_text(shell) == "".join(shell.user_ns["long"])
    assert sum("wfnb-md" in d.get("text/html", "") for d in first.values()) > 5  # frozen blocks
    run(shell, "%config WorkflowMagics.freeze_chars = 2000")
    run(shell, "%config WorkflowMagics.refresh_rate = 10")


def test_terminals_get_plain_text(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    _frontend.use("terminal")
    run(shell, '%workflow iter(["plain ", "text"])')
    printed = capsys.readouterr().out
    assert printed.startswith("plain text\n[done · ")
    assert outputs(shell) == []


def test_frontend_detection_can_be_forced_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _frontend.use(None)
    monkeypatch.setitem(os.environ, "WFNB_FRONTEND", "vscode")
    assert _frontend.detect() == "vscode"
    assert _frontend.is_rich("vscode") and not _frontend.is_rich("terminal")


def test_remote_images_are_links_unless_the_config_allows_them(shell: InteractiveShell) -> None:
    shell.user_ns["pixel"] = "Hi ![t](http://127.0.0.1:9/p.gif?secret=s3cr3t)\n\n![](//h/x)\n"
    run(shell, "%workflow iter([pixel])")
    html = "".join(m["data"].get("text/html", "") for m in outputs(shell))
    assert "<img" not in html
    assert 'href="http://127.0.0.1:9/p.gif?secret=s3cr3t" class="wfnb-remote-image"' in html
    assert 'href="//h/x" class="wfnb-remote-image"' in html
    shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
    run(shell, "%config WorkflowMagics.allow_remote_images = True")
    try:
        run(shell, "%workflow iter([pixel])")
    finally:
        run(shell, "%config WorkflowMagics.allow_remote_images = False")
    html = "".join(m["data"].get("text/html", "") for m in outputs(shell))
    assert '<img src="http://127.0.0.1:9/p.gif?secret=s3cr3t"' in html
