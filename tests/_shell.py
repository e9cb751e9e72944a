"""A real IPython shell with wfnb's magics, capturing every display message, for magic tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from wfnb.notebook import _frontend


def capturing_shell() -> InteractiveShell:
    ip = InteractiveShell.instance(display_pub_class=CapturingDisplayPublisher)
    ip.run_cell("%load_ext wfnb")
    return ip


def fresh_shell(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """For an autouse fixture: a rich frontend, no outputs yet, default options, in tmp_path."""
    monkeypatch.chdir(tmp_path)
    _frontend.use("jupyterlab")
    shell.display_pub.outputs.clear()  # type: ignore[attr-defined]
    shell.run_cell("%config WorkflowMagics.short_errors = True")
    shell.run_cell("%config WorkflowMagics.db_file = 'tmp/workflows.db'")
    yield
    _frontend.use(None)


def run(shell: InteractiveShell, source: str) -> Any:
    result = shell.run_cell(source)
    if not result.success:
        raise AssertionError(f"cell failed: {result.error_in_exec!r}")
    return result.result


def outputs(shell: InteractiveShell) -> list[dict[str, Any]]:
    return list(shell.display_pub.outputs)  # type: ignore[attr-defined]


def final_outputs(shell: InteractiveShell) -> list[dict[str, str]]:
    """Each output's last content (what a saved notebook holds), empty placeholders left out."""
    final: dict[str, dict[str, str]] = {}
    for message in outputs(shell):
        final[message["transient"]["display_id"]] = message["data"]
    return [data for data in final.values() if data.get("text/plain") or data.get("text/html")]


def saved_text(shell: InteractiveShell) -> str:
    """The text of the final outputs (what a saved notebook shows), status lines excluded."""
    return "".join(
        data.get("text/plain", "") for data in final_outputs(shell)
        if "wfnb-status" not in data.get("text/html", "")
    )


def status_line(shell: InteractiveShell) -> str:
    (line,) = [
        m["data"]["text/plain"] for m in outputs(shell)
        if not m["update"] and "wfnb-status" in m["data"].get("text/html", "")
    ]
    return str(line)
