"""A session deleted and created again is a new session: no writer holding a version of the old
one may save over it (issue 12), under 4 KB (whole states) and over it (deltas on a cached head),
through storage.save, a Workflow run, write_to_storage() and an inspector save, on both backends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import StorageFactory
from wfnb import RunResponse, SessionConflictError, SessionDeletedError, Workflow, WorkflowStorage
from wfnb.notebook._inspector import StateInspector

SIZES = pytest.mark.parametrize("pad", [0, 6000], ids=["small", "delta"])


def recreate(storage: WorkflowStorage, pad: int, up_to: int) -> dict[str, Any]:
    """Delete session "s" and save a different one under its id, ``up_to`` times."""
    storage.delete("s")
    state: dict[str, Any] = {}
    version = 0
    for n in range(up_to):
        state = {"pad": "y" * pad, "q": 100 + n, "theirs": True}
        version = storage.save("s", state, expected_version=version).version
    return state


def stored(storage: WorkflowStorage) -> dict[str, Any] | None:
    found = storage.read("s")
    return found.session_state if found is not None else None


@SIZES
def test_a_stale_save_fails_and_the_new_session_is_kept(
    make_storage: StorageFactory, pad: int
) -> None:
    """Was: the stale writer's save at version 2 replaced the new session's version 2 (small),
    or was a delta on the old session's head (CorruptStateError, or a state nobody wrote)."""
    ours, theirs = make_storage(), make_storage()
    ours.save("s", {"pad": "x" * pad, "q": 1}, expected_version=0)
    ours.save("s", {"pad": "x" * pad, "q": 2}, expected_version=1)  # ours caches version 2
    kept = recreate(theirs, pad, 2)
    with pytest.raises(SessionDeletedError, match=r"'s' was deleted \(at version 2\) since this "
                       r"writer loaded version 2, and created again \(now at version 4\)") as err:
        ours.save("s", {"pad": "x" * pad, "q": 7}, expected_version=2)
    assert isinstance(err.value, SessionConflictError)
    assert stored(make_storage()) == kept and stored(ours) == kept
    assert [v.version for v in theirs.history("s")] == [4, 3]  # 1 and 2 are never reused


@SIZES
def test_a_stale_save_of_a_deleted_session_fails(make_storage: StorageFactory, pad: int) -> None:
    ours, theirs = make_storage(), make_storage()
    ours.save("s", {"pad": "x" * pad, "q": 1}, expected_version=0)
    theirs.delete("s")
    with pytest.raises(SessionDeletedError, match="deleted"):
        ours.save("s", {"pad": "x" * pad, "q": 2}, expected_version=1)
    assert stored(theirs) is None


class Racing(Workflow):
    """Bumps ``q``; ``meanwhile`` runs in the middle of the run (another process's writes)."""

    meanwhile: Callable[[], Any] = staticmethod(lambda: None)

    def run(self, pad: int, save: bool = False) -> Iterator[RunResponse]:
        self.session_state["pad"] = "x" * pad
        self.session_state["q"] = self.session_state.get("q", 0) + 1
        self.meanwhile()
        if save:
            self.write_to_storage()
        yield RunResponse(content="done")


@SIZES
@pytest.mark.parametrize("save", [False, True], ids=["run", "write_to_storage"])
def test_a_run_on_a_deleted_and_recreated_session_fails(
    make_storage: StorageFactory, pad: int, save: bool
) -> None:
    ours, theirs = make_storage(), make_storage()
    wf = Racing(session_id="s", storage=ours)
    list(wf.run(pad))
    list(wf.run(pad))  # version 2, cached by ours
    kept: dict[str, Any] = {}
    wf.meanwhile = lambda: kept.update(recreate(theirs, pad, 2))
    with pytest.raises(SessionDeletedError):
        list(wf.run(pad, save=save))
    assert stored(make_storage()) == kept
    assert [run.status for run in theirs.runs("s")] == []  # the runs went with the old session


@SIZES
def test_an_inspector_save_on_a_recreated_session_is_refused(
    make_storage: StorageFactory, pad: int
) -> None:
    ours, theirs = make_storage(), make_storage()
    ours.save("s", {"pad": "x" * pad, "q": 1}, expected_version=0)
    ours.save("s", {"pad": "x" * pad, "q": 2}, expected_version=1)
    inspector = StateInspector(ours, session_id="s")
    try:
        kept = recreate(theirs, pad, 2)
        inspector.state_text = inspector.state_text.replace('"q": 2', '"q": 7')
        assert not inspector.save()
        assert "Nothing was written" in inspector.status, inspector.status
        assert stored(make_storage()) == kept
    finally:
        inspector.close()
