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
