"""The deepest state that saves also loads, shows, diffs, exports and imports, on both backends,
through the storage, the command line and the inspector; one level deeper is refused on save."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import StorageFactory, drop_tables, postgres_url
from tests.test_cli import run_wfnb
from tests.test_transfer import snapshot
from wfnb import UnstorableStateError, Workflow, WorkflowStorage
from wfnb.notebook._inspector import StateInspector

DEEPEST = 253  # levels a value in session_state may nest: the document adds one, orjson's 254


def nested(depth: int, leaf: Any = "bottom") -> Any:
    """``leaf`` inside ``depth`` levels of lists and dicts, alternating."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.fixture
def deep(storage: WorkflowStorage) -> WorkflowStorage:
    """Session "deep" at version 2: both versions hold a value nested DEEPEST levels."""
    storage.save("deep", {"a": nested(DEEPEST), "n": 1}, expected_version=0)
    storage.save("deep", {"a": nested(DEEPEST, "changed"), "n": 2}, expected_version=1)
    return storage


def test_the_deepest_state_loads_and_one_level_more_is_refused(deep: WorkflowStorage) -> None:
    stored = deep.read("deep")
    assert stored is not None and stored.session_state["a"] == nested(DEEPEST, "changed")
    old = deep.read("deep", 1)
    assert old is not None and old.session_state["a"] == nested(DEEPEST)
    with pytest.raises(UnstorableStateError) as refused:
        deep.save("deep", {"a": nested(DEEPEST + 1), "n": 3}, expected_version=2)
    assert refused.value.path == 'session_state["a"]' and "253 levels" in refused.value.reason
    with pytest.raises(UnstorableStateError):
        deep.save("new", {"t": nested(DEEPEST - 1, (1,))}, expected_version=0)  # a tuple is 2
    latest = deep.read("deep")
    assert latest is not None and latest.version == 2 and deep.read("new") is None


def test_a_run_that_nests_too_deep_fails_and_writes_nothing(storage: WorkflowStorage) -> None:
    class Deep(Workflow):
        def run(self, depth: int) -> str:
            self.session_state["a"] = nested(depth)
            return "done"

    Deep(session_id="ok", storage=storage).run(depth=DEEPEST)
    stored = storage.read("ok")
    assert stored is not None and stored.session_state["a"] == nested(DEEPEST)
    with pytest.raises(UnstorableStateError):
        Deep(session_id="too-deep", storage=storage).run(depth=DEEPEST + 1)
    assert storage.read("too-deep") is None


def test_the_command_line_shows_diffs_exports_and_imports_the_deepest_state(
    deep: WorkflowStorage, db_args: list[str], tmp_path: Path, make_storage: StorageFactory,
    backend: str,
) -> None:
    def wfnb(*args: str) -> str:
        result = run_wfnb(*db_args, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert orjson.loads(wfnb("show", "deep"))["a"] == nested(DEEPEST, "changed")
    assert orjson.loads(wfnb("show", "deep", "--version", "1"))["a"] == nested(DEEPEST)
    diff = wfnb("diff", "deep", "1", "2")
    ends = ('"k": "bottom"', '"k": "changed"')
    changed = [line.split() for line in diff.splitlines() if line.endswith(ends)]
    assert changed == [["-", '"k":', '"bottom"'], ["+", '"k":', '"changed"']]
    wfnb("export", "-o", "deep.jsonl")
    copy = make_storage(table_name=deep.table_name + "c")
    try:
        copy.import_sessions(str(tmp_path / "deep.jsonl"))
        assert snapshot(copy) == snapshot(deep)
    finally:
        if backend == "postgres":
            drop_tables(postgres_url(), copy.table_name)


def test_the_inspector_shows_diffs_and_exports_the_deepest_state(
    deep: WorkflowStorage, tmp_path: Path
) -> None:
    inspector = StateInspector(deep, session_id="deep")
    try:
        assert inspector.status.startswith("session 'deep'"), inspector.status
        assert json.loads(inspector.state_text)["a"] == nested(DEEPEST, "changed")
        assert '"changed"' in inspector.diff(1)
        assert inspector.export(tmp_path / "deep.json"), inspector.status
        assert json.loads((tmp_path / "deep.json").read_text())["a"] == nested(DEEPEST, "changed")
        inspector.state_text = json.dumps({"a": nested(DEEPEST + 1)})
        assert not inspector.save() and "253 levels" in inspector.status
        assert inspector.restore(1), inspector.status
    finally:
        inspector.close()
