"""The tutorial notebooks as saved: clean, complete, listed in the README.

Each notebook is executed twice per `make test`, and not here: nbval (`make test`, on
notebooks/) runs it in a fresh kernel and compares every cell's output with what is saved,
within a minute per notebook (notebooks/conftest.py), and the browser tests run it in
JupyterLab (tests/e2e/test_tutorials.py). So what these tests check of the saved outputs (no
error, nothing on stderr, the post as streamed) holds for a fresh run too. `make notebooks`
refreshes the saved outputs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).parent.parent / "notebooks"
_spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOKS_DIR / "execute.py")
assert _spec is not None and _spec.loader is not None
runner: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs]


def saved(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("path", runner.NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_saved_run_clean(path: Path) -> None:
    notebook = saved(path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code), "not saved executed"
    kinds = [output["output_type"] for output in outputs(notebook)]
    assert "error" not in kinds
    assert not [o for o in outputs(notebook) if o.get("name") == "stderr"]


def test_the_saved_blog_post_holds_the_streamed_text_not_a_placeholder() -> None:
    notebook = saved(NOTEBOOKS_DIR / "02_blog_post_generator.ipynb")
    shown = [o["data"].get("text/plain", "") for o in outputs(notebook)
             if o["output_type"] == "display_data"]
    post = next(text for text in shown if text.startswith("# Sourdough Bread"))
    assert post.endswith("Everything about sourdough bread begins with curiosity.")
    assert any("from session_state" in text for text in shown)


def test_every_notebook_is_numbered_and_listed_in_the_readme() -> None:
    readme = (NOTEBOOKS_DIR.parent / "README.md").read_text()
    for path in runner.NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme


def test_the_model_clients_notebook_shows_reasoning_tool_calls_and_token_counts() -> None:
    executed = saved(NOTEBOOKS_DIR / "06_model_clients.ipynb")  # nbval runs it again
    html = [o["data"].get("text/html", "") for o in outputs(executed)
            if o["output_type"] == "display_data"]
    printed = "".join(o.get("text", "") for o in outputs(executed) if o.get("name") == "stdout")
    thought_then_called = ["wfnb-thinking" in h and "get_weather" in h for h in html]
    assert sum(thought_then_called) == 3  # OpenAI sync and async, Anthropic
    assert sum("Should I take an umbrella in Paris today?" in h for h in html) >= 5
    statuses = [h for h in html if "wfnb-status" in h and "Assistant" in h]
    assert len(statuses) == 6 and all(" in / " in status for status in statuses)
    runs = [line.split() for line in printed.splitlines() if line.startswith("completed")]
    total = sum(int(run[1]) + int(run[3]) for run in runs)
    assert len(runs) == 6
    assert f"stored session_state: {{'tokens': {total}}}" in printed


LONG_BLOCKS_CELL = """import random, time, wfnb
rows = "".join(f"| {n} | `x{n}` | <b>{n * n}</b> |\\n" for n in range(60))
code = "".join(f"if a < {n}:  # <i>{n}</i>\\n    b = {n}\\n" for n in range(60))
items = "".join(f"1. step {n}\\n" for n in range(60))
text = f"| n | name | square |\\n| -: | - | -: |\\n{rows}\\n```python\\n{code}```\\n\\n{items}"
pace = random.Random()  # a different rhythm on every run

def chunks():
    position = 0
    while position < len(text):
        size = pace.randint(1, 40)
        yield text[position : position + size]
        position += size
        time.sleep(pace.random() * 0.004)

wfnb.show(chunks(), freeze_chars=300)
"""


@pytest.mark.kernel
def test_long_blocks_save_the_same_outputs_on_every_run_in_a_real_kernel(tmp_path: Path) -> None:
    """A table, a code block and a list, each cut into pieces while they stream at a random
    pace: two runs save the same outputs (what nbval compares), and the pieces hold the text."""
    path = tmp_path / "long_blocks.ipynb"
    notebook = runner.nbformat.v4.new_notebook()  # (nbformat through the runner: untyped)
    notebook.cells = [runner.nbformat.v4.new_code_cell(LONG_BLOCKS_CELL)]
    runner.nbformat.write(notebook, path)
    saved = []
    for _ in range(2):
        shown = [o["data"] for o in outputs(runner.execute(path))
                 if o["output_type"] == "display_data"]
        saved.append([data for data in shown if "wfnb-status" not in data.get("text/html", "")])
    assert saved[0] == saved[1]
    pieces = [data for data in saved[0] if data.get("text/plain")]
    assert len(pieces) >= 8
    assert "".join(data["text/plain"] for data in pieces).startswith("| n | name | square |")
    html = "".join(data["text/html"] for data in pieces)
    assert html.count("<thead") == html.count("visibility:collapse") + 1
    assert '<ol start="' in html and "&lt;b&gt;" in html and "&lt;i&gt;" in html
