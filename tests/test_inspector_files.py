"""The inspector's Export and Import, at widget level: no file replaced unless asked, none left
half written, and nothing but a regular file of bounded size read (a FIFO is never opened)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.test_inspector import html_values
from wfnb import WorkflowStorage, _files
from wfnb.notebook import _inspector_actions
from wfnb.notebook._inspector import StateInspector

STATE = {"text": "héllo", "n": 1}


@pytest.fixture
def inspector(storage: WorkflowStorage) -> Iterator[StateInspector]:
    storage.save("s", STATE, expected_version=0)
    panel = StateInspector(storage, session_id="s")
    yield panel
    panel.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder for the files (the SQLite database lives in tmp_path)."""
    path = tmp_path / "files"
    path.mkdir()
    return path


def click_export(panel: StateInspector, path: Path, *, overwrite: bool = False) -> None:
    panel.view.path_box.value = str(path)
    panel.view.overwrite_box.value = overwrite
    panel.view.export_button.click()


def click_import(panel: StateInspector, path: Path) -> None:
    panel.view.path_box.value = str(path)
    panel.view.import_button.click()


def test_export_refuses_to_replace_a_file_unless_overwrite_is_ticked(
    inspector: StateInspector, folder: Path
) -> None:
    target = folder / "state.json"
    target.write_text("precious", encoding="utf-8")
    click_export(inspector, target)
    assert inspector.status.startswith(f"export refused: {target} exists; tick overwrite")
    assert target.read_text(encoding="utf-8") == "precious"
    click_export(inspector, target, overwrite=True)
    assert inspector.status.startswith("exported version 1"), inspector.status
    assert json.loads(target.read_text(encoding="utf-8")) == STATE
    assert not inspector.view.overwrite_box.value  # allowed once: ticking again is needed
    assert not inspector.export(target) and "export refused" in inspector.status
    assert inspector.export(target, overwrite=True)  # scripts say so in the call
    assert sorted(p.name for p in folder.iterdir()) == ["state.json"]  # no temporary left


def test_an_export_that_fails_part_way_leaves_the_old_file_whole(
    inspector: StateInspector, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = folder / "state.json"
    target.write_text("old content", encoding="utf-8")

    def full_disk(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    patch_os(monkeypatch, fsync=full_disk)
    assert not inspector.export(target, overwrite=True)
    assert inspector.status == "export failed: [Errno 28] No space left on device"
    assert target.read_text(encoding="utf-8") == "old content"
    assert [p.name for p in folder.iterdir()] == ["state.json"]


def test_a_file_created_while_exporting_is_not_replaced(folder: Path) -> None:
    target = folder / "state.json"

    def race() -> None:
        with _files.atomic_write(target, overwrite=False) as out:
            out.write(b"mine")
            target.write_bytes(b"theirs")  # another program, between the check and the rename

    with pytest.raises(FileExistsError):
        race()
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in folder.iterdir()] == ["state.json"]


def patch_os(monkeypatch: pytest.MonkeyPatch, **functions: Any) -> None:
    """Replace ``os`` functions as wfnb._files sees them (only there)."""
    monkeypatch.setattr(_files, "os", SimpleNamespace(**{**vars(os), **functions}))


def run_briefly(action: Any) -> Any:
    """``action()`` in a thread; fails the test (instead of hanging it) after 10 s."""
    result: list[Any] = []

    def call() -> None:
        try:
            result.append(action())
        except Exception as error:  # raised again in the test's thread
            result.append(error)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the import blocked"
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


def test_import_refuses_a_fifo_without_opening_it(
    inspector: StateInspector, folder: Path
) -> None:
    fifo = folder / "state.json"
    os.mkfifo(fifo)
    opened = threading.Event()

    def write() -> None:  # a writer's open blocks until a reader opens the FIFO: did anyone?
        os.close(os.open(fifo, os.O_WRONLY))
        opened.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    text = inspector.state_text
    run_briefly(lambda: click_import(inspector, fifo))
    assert inspector.status == (f"import of {fifo} refused: {fifo} is a FIFO (named pipe), not a "
                                "regular file: nothing was read")
    assert inspector.state_text == text
    assert not opened.wait(0.5), "the FIFO was opened"
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # let the writer go
    writer.join(10)


def test_a_fifo_swapped_in_after_the_check_is_caught_without_blocking(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = folder / "regular.json"
    regular.write_text("{}", encoding="utf-8")
    fifo = folder / "fifo.json"
    os.mkfifo(fifo)
    real_stat = os.stat
    patch_os(monkeypatch, stat=lambda path: real_stat(regular))  # checked, then swapped
    with pytest.raises(_files.FileRefused, match="is a FIFO"):
        run_briefly(lambda: _files.read_regular_file(fifo, 1000))


@pytest.mark.parametrize(("path", "kind"), [
    ("/dev/zero", "a character device"), ("/dev/null", "a character device"),
    (".", "a directory"),
])
def test_import_refuses_devices_and_directories(
    inspector: StateInspector, folder: Path, path: str, kind: str
) -> None:
    source = folder if path == "." else Path(path)
    run_briefly(lambda: click_import(inspector, source))
    assert inspector.status == (f"import of {source} refused: {source} is {kind}, not a regular "
                                "file: nothing was read")


def test_import_refuses_a_file_over_the_size_bound(
    inspector: StateInspector, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = folder / "big.json"
    big.write_text(json.dumps({"text": "x" * 200}), encoding="utf-8")
    monkeypatch.setattr(_inspector_actions, "IMPORT_LIMIT", 100)
    click_import(inspector, big)
    assert "is 212 bytes, more than the 100 allowed: nothing was read" in inspector.status
    monkeypatch.setattr(_inspector_actions, "IMPORT_LIMIT", 212)
    click_import(inspector, big)
    assert "review it, then Save" in inspector.status
    assert json.loads(inspector.state_text) == {"text": "x" * 200}
    link = folder / "link.json"
    link.symlink_to(big)  # a link to a regular file is read like the file
    assert inspector.import_(link), inspector.status


def test_a_remote_image_in_a_state_stays_text_in_the_inspector(storage: WorkflowStorage) -> None:
    """The inspector renders no Markdown: a model's image in a state is shown as its text."""
    pixel = "![t](http://127.0.0.1:9/p.gif?secret=s3cr3t)"
    storage.save("md", {"answer": pixel}, expected_version=0, workflow_name=pixel)
    storage.record_run_start("r", "md", pixel, {"prompt": pixel})
    storage.record_run_end("r", status="completed", output=pixel, session_id="md")
    panel = StateInspector(storage, session_id="md")
    try:
        panel.view.versions.value = 1
        shown = "".join(html_values(panel))
        assert pixel in shown and "<img" not in shown
    finally:
        panel.close()
