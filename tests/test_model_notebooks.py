"""Model clients in real kernels (nbclient), streaming from the local model server: what the
saved notebook holds, and that nbval finds it the same when it runs the notebook again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from wfnb.testing import ModelServer

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).parent.parent
SETUP = """\
%load_ext wfnb
import openai, wfnb
from agno.agent import Agent
from agno.models.openai.like import OpenAILike
client = openai.OpenAI(base_url="{url}", api_key="x")
aclient = openai.AsyncOpenAI(base_url="{url}", api_key="x")
msgs = [{{"role": "user", "content": "Why is the sky blue?"}}]
TOOLS = [{{"type": "function", "function": {{"name": "get_weather", "parameters": {{
    "type": "object", "properties": {{"city": {{"type": "string"}}}}}}}}}}]

def get_weather(city: str) -> str:
    "The weather in a city."
    return f"sunny in {{city}}"

agent = Agent(model=OpenAILike(id="fake-reasoning-tool", base_url="{url}", api_key="x"),
              tools=[get_weather])

class Chat(wfnb.Workflow):
    async def run(self, question: str):
        stream = await aclient.chat.completions.create(
            model="fake-reasoning", messages=[{{"role": "user", "content": question}}],
            stream=True, stream_options={{"include_usage": True}})
        async for chunk in stream:
            yield chunk
        tokens = self.session_state.get("tokens", 0)
        self.session_state["tokens"] = tokens + self.run_response.usage.output_tokens

chat = Chat(session_id="chat", storage=wfnb.SqliteWorkflowStorage("chats", "chats.db"))"""
ASYNC = ('%workflow aclient.chat.completions.create(model="fake-reasoning", messages=msgs, '
         'stream=True, stream_options={"include_usage": True})')
TOOL = ('%workflow client.chat.completions.create(model="fake-reasoning-tool", messages=msgs, '
        'tools=TOOLS, stream=True)')
AGNO = '%workflow agent.arun("Weather in Paris?", stream=True, stream_events=True)'
WORKFLOW = '%workflow chat.arun("Why is the sky blue?")'
CELLS = [
    SETUP, ASYNC, ASYNC, ASYNC, TOOL, AGNO, AGNO, AGNO, WORKFLOW, WORKFLOW, WORKFLOW,
    'chat.session_state["tokens"]',
]
FAILING = [
    '%workflow client.chat.completions.create(model="fake-error-500", messages=msgs, '
    'stream=True)',
    'stream = await aclient.chat.completions.create(model="fake-reasoning", messages=msgs, '
    'stream=True)\n%workflow stream',
]


def execute(cells: list[str], url: str, tmp_path: Path) -> Any:
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(cell.replace("{url}", url) if cell != SETUP
                                  else SETUP.format(url=url)) for cell in cells])
    NotebookClient(notebook, timeout=60, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def shown(cell: Any) -> list[str]:
    return [output["data"].get("text/html", "") for output in cell.outputs
            if output["output_type"] == "display_data"
            and (output["data"].get("text/plain") or output["data"].get("text/html"))]


@pytest.fixture(scope="module")
def executed(
    model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path]:
    folder = tmp_path_factory.mktemp("notebook")
    notebook = execute(CELLS, model_server.openai_base_url, folder)
    path = folder / "clients.ipynb"
    nbformat.write(notebook, path)
    return notebook, path


def test_the_saved_notebook_holds_thinking_tool_calls_answers_and_tokens(
    executed: tuple[Any, Path],
) -> None:
    notebook, _ = executed
    cells = notebook.cells
    assert not [o for cell in cells for o in cell.outputs if o["output_type"] == "error"]
    for cell in cells[1:4]:  # AsyncOpenAI, one client, three runs
        thinking, answer, status = shown(cell)
        assert thinking.startswith("<details class='wfnb-thinking'><summary>Thinking")
        assert "<strong>You asked:</strong> Why is the sky blue?" in answer
        assert status.startswith("<div class='wfnb-status'>done") and "tokens 6 in / " in status
    aside, status = shown(cells[4])
    assert "🔧 <code>get_weather({&quot;city&quot;: &quot;Why is the sky blue?&quot;})" in aside
    for cell in cells[5:8]:  # agno arun, three runs: the answer once, the tool call with result
        aside, answer, status = shown(cell)
        assert "→ sunny in Weather in Paris?</code>" in aside
        assert answer.count("The <code>get_weather</code> tool answered") == 1
        assert "tokens" in status
    for cell in cells[8:11]:  # a Workflow's arun over AsyncOpenAI, three runs
        assert "done · Chat · session chat · run" in shown(cell)[-1]
    per_run = int(shown(cells[8])[-1].split(" / ")[1].split(" out")[0])
    (tokens,) = cells[11].outputs
    assert int(tokens["data"]["text/plain"]) == 3 * per_run  # session_state kept the count


def test_nbval_finds_the_same_outputs_when_it_runs_the_notebook_again(
    executed: tuple[Any, Path], model_server: ModelServer
) -> None:
    _, path = executed
    (path.parent / "chats.db").unlink()  # the session starts anew, as it did the first time
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", str(ROOT / "notebooks" / "sanitize.cfg"), "-p",
         "no:cacheprovider", str(path)],
        capture_output=True, text=True, cwd=path.parent, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_failures_are_short_cell_errors_in_a_kernel(
    model_server: ModelServer, tmp_path: Path
) -> None:
    notebook = execute([SETUP, *FAILING], model_server.openai_base_url, tmp_path)
    http, bound = (next(o for o in cell.outputs if o["output_type"] == "error")
                   for cell in notebook.cells[1:])
    assert http["ename"] == "WorkflowRunError" and len(http["traceback"]) == 3
    assert "fake error 500" in http["traceback"][0]
    assert bound["ename"] == "WorkflowRunError"
    assert "opened on the notebook's own event loop" in bound["evalue"]
    assert "%workflow client.chat.completions.create(..., stream=True)" in bound["evalue"]
