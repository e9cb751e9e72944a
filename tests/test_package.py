"""The public surface: names, typing marker, and an import that stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import wfnb


def test_all_is_sorted_and_every_name_exists() -> None:
    assert wfnb.__all__ == sorted(wfnb.__all__)
    assert all(hasattr(wfnb, name) for name in wfnb.__all__)


def test_the_names_the_design_document_uses_are_public() -> None:
    required = {
        "Workflow", "RunResponse", "RunEvent", "SqliteWorkflowStorage", "PostgresWorkflowStorage",
        "WorkflowStorage", "SessionConflictError", "logger",
    }
    assert required <= set(wfnb.__all__)


def test_every_error_shares_one_root() -> None:
    errors = [getattr(wfnb, n) for n in wfnb.__all__ if n.endswith("Error")]
    assert all(issubclass(e, wfnb.WfnbError) for e in errors)


def test_the_package_is_typed() -> None:
    assert (Path(wfnb.__file__).parent / "py.typed").is_file()


def test_import_wfnb_does_not_load_ipython_or_widgets() -> None:
    code = (
        "import sys, wfnb; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'traitlets', 'ipykernel')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_show_prints_text_in_plain_python() -> None:
    code = (
        "import sys, wfnb\n"
        "def words():\n"
        "    yield 'plain '\n"
        "    yield 'python'\n"
        "result = wfnb.show(words())\n"
        "print(repr(result.content))\n"
        "print('IPython' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "plain python"
    assert out[1].startswith("[done · ") and out[1].endswith("2 chunks]")
    assert out[2:] == ["'plain python'", "False"]
