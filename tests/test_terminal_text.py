"""Hostile text from the database never acts on a terminal: ``wfnb`` shows it escaped.

Every command runs as ``python -m wfnb`` and its output is checked as bytes (a text-mode pipe
would turn the carriage returns it looks for into newlines).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.test_cli import ROOT, run_wfnb
from wfnb import WorkflowStorage
from wfnb._format import visible

# a window title (OSC 0), a screen clear, a clipboard write (OSC 52), a carriage return over the
# line, C1 CSI, DEL, NEL, and bidi controls: override, isolate, marks
ATTACK = ("\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07\rfake \x9b31m\x7f\x85"
          "\u202etxt.exe\u2066\u200f\u061c")
RAW = [b"\x1b", b"\r", b"\x07", b"\x7f", *(chr(c).encode() for c in range(0x80, 0xA0)),
       *(chr(c).encode() for c in (0x61C, 0x200E, 0x200F, *range(0x2028, 0x202F),
                                   *range(0x2066, 0x206A)))]
SESSION = "s-" + ATTACK


@pytest.fixture
def hostile(storage: WorkflowStorage) -> WorkflowStorage:
    """A session whose id, workflow name, run ids, run error and state all carry ATTACK."""
    storage.save(SESSION, {"text": ATTACK, ATTACK: [1]}, expected_version=0,
                 workflow_name="wf-" + ATTACK, run_id="r1-" + ATTACK, source="run")
    storage.record_run_start("r2-" + ATTACK, SESSION, "wf-" + ATTACK, {"topic": ATTACK})
    storage.record_run_end("r2-" + ATTACK, status="failed", output=ATTACK,
                           error="ValueError: " + ATTACK, session_id=SESSION)
    storage.save(SESSION, {"text": ATTACK + "2", ATTACK: [1]}, expected_version=1)
    return storage


def wfnb_bytes(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``python -m wfnb ARGS`` with its output as bytes, not on a terminal."""
    environ = {k: v for k, v in os.environ.items() if k not in ("WFNB_DB_URL", "WFNB_TABLE")}
    return subprocess.run([sys.executable, "-m", "wfnb", *args], cwd=cwd, capture_output=True,
                          env={**environ, "PYTHONPATH": str(ROOT)}, timeout=60, check=False)


def assert_inert(output: bytes) -> None:
    """No control or bidi character, raw, in ``output`` (newlines aside)."""
    for raw in RAW:
        assert raw not in output, (raw, output)
    assert all(byte >= 0x20 or byte == 0x0A for byte in output), output


@pytest.mark.parametrize("command", [
    ["sessions"], ["sessions", "--search", "s-"], ["history", SESSION], ["runs", SESSION],
    ["diff", SESSION, "1"], ["show", SESSION], ["show", SESSION, "--path", "text"],
    ["show", SESSION, "--version", "1"], ["restore", SESSION, "1"],
    ["show", "no such " + ATTACK], ["sessions", "--json"], ["history", SESSION, "--json"],
    ["runs", SESSION, "--json"], ["delete", SESSION, "--yes"],
])
def test_every_command_shows_hostile_text_escaped(
    hostile: WorkflowStorage, db_args: list[str], tmp_path: Path, command: list[str]
) -> None:
    result = wfnb_bytes([*db_args, *command], tmp_path)
    missing = command[-1].startswith("no such")
    assert result.returncode == (1 if missing else 0), result.stderr
    assert_inert(result.stdout)
    assert_inert(result.stderr)
    shown = (result.stdout + result.stderr).decode()
    assert "\\u202e" in shown  # what was there is still told
    assert "\\x1b" in shown or "\\u001b" in shown


def test_json_output_still_holds_the_exact_text(
    hostile: WorkflowStorage, db_args: list[str], tmp_path: Path
) -> None:
    listed = orjson.loads(wfnb_bytes([*db_args, "sessions", "--json"], tmp_path).stdout)
    assert listed["sessions"][0]["session_id"] == SESSION
    assert listed["sessions"][0]["workflow_name"] == "wf-" + ATTACK
    runs = orjson.loads(wfnb_bytes([*db_args, "runs", SESSION, "--json"], tmp_path).stdout)
    assert runs[0]["run_id"] == "r2-" + ATTACK and runs[0]["error"] == "ValueError: " + ATTACK
    assert runs[0]["input"] == {"topic": ATTACK}
    shown = orjson.loads(wfnb_bytes([*db_args, "show", SESSION], tmp_path).stdout)
    assert shown == {"text": ATTACK + "2", ATTACK: [1]}


def test_raw_prints_a_string_exactly(
    hostile: WorkflowStorage, db_args: list[str], tmp_path: Path
) -> None:
    result = wfnb_bytes([*db_args, "show", SESSION, "--path", "text", "--raw"], tmp_path)
    assert result.stdout == (ATTACK + "2\n").encode()


def test_a_diff_of_hostile_text_is_escaped_and_split_only_at_its_own_lines(
    hostile: WorkflowStorage, db_args: list[str], tmp_path: Path
) -> None:
    diff = wfnb_bytes([*db_args, "diff", SESSION, "1", "2"], tmp_path).stdout.decode()
    assert f"--- {visible(SESSION)} version 1" in diff.splitlines()
    changed = [line for line in diff.splitlines() if line.startswith(("-  ", "+  "))]
    assert [line[:1] for line in changed] == ["-", "+"]  # \u2028 and \x85 did not split them
    assert orjson.loads("{" + changed[1][1:].strip().rstrip(",") + "}") == {"text": ATTACK + "2"}


def test_on_a_terminal_only_the_colours_are_escape_sequences(
    hostile: WorkflowStorage, db_args: list[str], tmp_path: Path
) -> None:
    for command in (["sessions"], ["runs", SESSION], ["diff", SESSION, "1"]):
        result = run_wfnb(*db_args, *command, cwd=tmp_path, tty=True)
        assert result.returncode == 0, result.stderr
        assert "\x1b[" in result.stdout  # coloured
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout).replace("\r\n", "\n")
        assert_inert(plain.encode())


def test_visible_escapes_each_kind_once() -> None:
    assert visible("a\x1bb\rc\u202ed\x9be\x7f") == "a\\x1bb\\rc\\u202ed\\x9be\\x7f".replace(
        "\\r", "\\x0d")
    assert visible("tab\tnew\nline é ☃ \\x1b") == "tab\\x09new\\x0aline é ☃ \\x1b"
    as_json = visible(orjson.dumps({"k": "\u202e\x85"}, option=orjson.OPT_INDENT_2).decode(),
                      json=True)
    assert "\n" in as_json and orjson.loads(as_json) == {"k": "\u202e\x85"}
    assert "\u202e" not in as_json and "\x85" not in as_json


def test_a_stream_shown_in_a_terminal_is_escaped_but_keeps_its_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from wfnb.notebook._live import RunInfo, TextView

    view = TextView(RunInfo(workflow="w", session_id="s\x1b[1m"))
    view.add("line one\n\tindented \x1b[31mred\x1b[0m \u202eevil\n")
    view.finish("done")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "line one\n\tindented \\x1b[31mred\\x1b[0m \\u202eevil\n" in out
    assert "session s\\x1b[1m" in out
