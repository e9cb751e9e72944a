"""Stateful fuzzing (hypothesis): random sequences of save, stale edit, restore, delete, prune and
reads by two storage objects (two writers with their own caches) on one database, checked step
by step against a plain in-memory model of sessions, their versions and the merge rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.reliability._support import Target
from wfnb import SaveResult, SessionConflictError, SessionDeletedError, SessionNotFoundError

KEEP = 4  # keep_versions of both storages: every 8th version past KEEP prunes to KEEP
SLACK = 8
KEYS = ("a", "b", "c")
SESSIONS = ("s1", "s2")
MISSING = object()

values = st.one_of(
    st.integers(-3, 3), st.text("xy", max_size=3), st.lists(st.integers(0, 2), max_size=3),
    st.none(), st.integers(0, 5).map(lambda n: "long " * 1000 + str(n)),  # deltas need 4 KB
)
changes = st.tuples(st.sampled_from(KEYS), st.one_of(values, st.just(MISSING)))


def _json(value: Any) -> Any:
    return MISSING if value is MISSING else orjson.dumps(value)


def changed(base: dict[str, Any], state: dict[str, Any]) -> set[str]:
    return {k for k in base.keys() | state.keys()
            if _json(base.get(k, MISSING)) != _json(state.get(k, MISSING))}


def applied(state: dict[str, Any], change: tuple[str, Any]) -> dict[str, Any]:
    key, value = change
    new = dict(state)
    if value is MISSING:
        new.pop(key, None)
    else:
        new[key] = value
    return new


def outcome(save: Callable[[], SaveResult]) -> SaveResult | SessionConflictError:
    """What a save returned, or the conflict it raised."""
    try:
        return save()
    except SessionConflictError as conflict:
        return conflict


@dataclass
class Session:
    """The model of one session: every state of its current incarnation, and which remain."""

    states: dict[int, dict[str, Any]] = field(default_factory=lambda: {0: {}})
    kept: set[int] = field(default_factory=set)
    current: int = 0
    deleted_at: int = 0  # the version it had when deleted (and not re-created since)
    floor: int = 0  # the last version of a deleted session under this id: never reused

    @property
    def following(self) -> int:
        """The version the next write gets: a re-created session numbers on after ``floor``."""
        return max(self.current, self.floor) + 1

    def write(self, state: dict[str, Any]) -> int:
        self.current = self.following
        self.states[self.current] = state
        self.kept.add(self.current)
        self.deleted_at = 0
        if self.current > KEEP and (self.current - KEEP) % SLACK == 0:  # keep_versions prunes
            self.kept = {v for v in self.kept if v >= self.current - KEEP + 1}
        return self.current


def machine(target: Target) -> type[RuleBasedStateMachine]:
    storages = [target.open(keep_versions=KEEP), target.open(keep_versions=KEEP)]

    class Storage(RuleBasedStateMachine):
        """Two writers, one database, one model."""

        def __init__(self) -> None:
            super().__init__()
            self.prefix = uuid.uuid4().hex[:8]
            self.model = {sid: Session() for sid in SESSIONS}
            self.dirty: set[str] = set()

        def sid(self, name: str) -> str:
            return f"{self.prefix}-{name}"

        def teardown(self) -> None:
            for name in SESSIONS:
                storages[0].delete(self.sid(name))

        @initialize()
        def start(self) -> None:
            pass

        # -- writes ----------------------------------------------------------------------

        def expect_write(self, name: str, result: Any, state: dict[str, Any]) -> None:
            """A save of ``state`` at the current version: a new version, or none if equal."""
            session = self.model[name]
            if not changed(session.states[session.current], state) and session.current:
                assert result.version in (session.current, session.following)
                if result.version == session.current:
                    return
            assert result.version == session.following, (result, session.current)
            session.write(state)
            self.dirty.add(name)

        @rule(who=st.integers(0, 1), name=st.sampled_from(SESSIONS), change=changes)
        def save(self, who: int, name: str, change: tuple[str, Any]) -> None:
            session = self.model[name]
            state = applied(session.states[session.current], change)
            result = storages[who].save(self.sid(name), state, expected_version=session.current)
            self.expect_write(name, result, state)

        @precondition(lambda self: any(s.current for s in self.model.values()))
        @rule(who=st.integers(0, 1), name=st.sampled_from(SESSIONS), change=changes,
              stale=st.integers(1, 6))
        def stale_edit(self, who: int, name: str, change: tuple[str, Any], stale: int) -> None:
            """An inspector saves an edit of the version it read ``stale`` versions ago."""
            session = self.model[name]
            if not session.current:
                return
            # a version of this incarnation, or 0 (a writer that saw no session: it merges)
            base_version = session.current - stale if session.current - stale > session.floor else 0
            base = session.states[base_version]
            ours, theirs = applied(base, change), session.states[session.current]
            if base_version and base_version not in session.kept:  # no base: all contested
                contested = set(theirs) | set(ours)
            else:
                contested = changed(base, ours) & changed(base, theirs)
            result = outcome(lambda: storages[who].save(
                self.sid(name), ours, expected_version=base_version, source="edit"))
            if isinstance(result, SessionConflictError):
                assert contested, f"conflict on {result.keys} with nothing contested"
                assert result.keys == sorted(contested)
                assert result.stored_version == session.current
                return
            ours_changed = changed(base, ours)
            if not ours_changed and not result.written:
                # the edit changes nothing: either this storage last saw its base (no query
                # needed, even when that base was pruned since), or merging it gave the current
                # state (nothing new to write)
                assert result.version in (base_version, session.current)
                return
            assert not contested, f"saved over contested keys {contested}"
            merged = {k: v for k, v in theirs.items() if k not in ours_changed or k in ours}
            merged.update({k: ours[k] for k in ours_changed if k in ours})
            assert result.merged_keys == tuple(sorted(changed(base, theirs)))
            self.expect_write(name, result, merged)

        @precondition(lambda self: any(s.current for s in self.model.values()))
        @rule(who=st.integers(0, 1), name=st.sampled_from(SESSIONS), pick=st.integers(0, 99),
              stale=st.booleans())
        def restore(self, who: int, name: str, pick: int, stale: bool) -> None:
            session = self.model[name]
            if not session.current:
                return
            version = pick % session.current + 1
            expected = session.current - 1 if stale else session.current
            try:
                result = storages[who].restore(self.sid(name), version, expected_version=expected)
            except SessionNotFoundError:
                assert version not in session.kept
                return
            except SessionConflictError:
                assert stale
                return
            assert version in session.kept
            if stale:  # only "nothing to write" passes a stale restore: no merge, ever
                assert not result.written
                assert not changed(session.states[expected], session.states[version])
                return
            self.expect_write(name, result, session.states[version])

        @rule(who=st.integers(0, 1), name=st.sampled_from(SESSIONS), stale=st.booleans())
        def delete(self, who: int, name: str, stale: bool) -> None:
            session = self.model[name]
            if stale and session.current:
                with pytest.raises(SessionConflictError):
                    storages[who].delete(self.sid(name), expected_version=session.current - 1)
                return
            assert storages[who].delete(self.sid(name)) == bool(session.current)
            if session.current:
                self.model[name] = Session(deleted_at=session.current, floor=session.current)
            self.dirty.add(name)

        @precondition(lambda self: any(s.floor for s in self.model.values()))
        @rule(who=st.integers(0, 1), name=st.sampled_from(SESSIONS), change=changes)
        def save_to_deleted(self, who: int, name: str, change: tuple[str, Any]) -> None:
            """A writer that loaded the session before it was deleted (and maybe created again
            since): refused as deleted, never a silent re-creation or an overwrite."""
            session = self.model[name]
            if not session.floor:
                return
            result = outcome(lambda: storages[who].save(
                self.sid(name), applied({}, change), expected_version=session.floor))
            if isinstance(result, SessionDeletedError):
                assert result.stored_version == session.current and "deleted" in str(result)
                return
            # documented: a state equal to what this storage object last saved or read at that
            # version is "unchanged" without asking the database, so nothing is written
            assert isinstance(result, SaveResult) and session.deleted_at, (
                f"a stale writer saved over a re-created session: {result}")
            assert (result.version, result.written) == (session.deleted_at, False)

        @rule(who=st.integers(0, 1), keep=st.one_of(st.none(), st.integers(1, 5)),
              older_than=st.sampled_from([None, 0.0, 3600.0]),
              name=st.one_of(st.none(), st.sampled_from(SESSIONS)))
        def prune(self, who: int, keep: int | None, older_than: float | None,
                  name: str | None) -> None:
            expected = 0
            for each in SESSIONS if name is None else (name,):
                session = self.model[each]
                if not session.current:
                    continue
                first_kept = session.current - keep + 1 if keep is not None else 1
                if older_than == 0:  # every version is older than now: only the current stays
                    first_kept = session.current
                first_kept = min(first_kept, session.current)
                dropped = {v for v in session.kept if v < first_kept}
                expected += len(dropped)
                session.kept -= dropped
                self.dirty.add(each)
            # with no session_id, all sessions: only this example's exist (teardown deletes)
            session_id = self.sid(name) if name is not None else None
            assert storages[who].prune(keep=keep, older_than=older_than,
                                       session_id=session_id) == expected

        # -- reads -----------------------------------------------------------------------

        @precondition(lambda self: any(s.current for s in self.model.values()))
        @rule(who=st.integers(0, 1), name=st.sampled_from(SESSIONS), pick=st.integers(0, 99))
        def read_version(self, who: int, name: str, pick: int) -> None:
            session = self.model[name]
            if not session.current:
                return
            version = pick % session.current + 1
            if version not in session.kept:
                with pytest.raises(SessionNotFoundError):
                    storages[who].read(self.sid(name), version)
                return
            stored = storages[who].read(self.sid(name), version)
            assert stored is not None and stored.session_state == session.states[version]

        @invariant()
        def stored_matches_model(self) -> None:
            for index, name in enumerate(sorted(self.dirty)):
                session = self.model[name]
                reader = storages[index % 2]
                stored = reader.read(self.sid(name))
                if not session.current:
                    assert stored is None
                    assert reader.history(self.sid(name)) == []
                    continue
                assert stored is not None
                assert (stored.version, stored.session_state) == (
                    session.current, session.states[session.current])
                listed = [v.version for v in reader.history(self.sid(name))]
                assert listed == sorted(session.kept, reverse=True)
            self.dirty.clear()

    return Storage


def fuzz(target: Target, examples: int, steps: int) -> None:
    run_state_machine_as_test(machine(target), settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))


def test_storage_against_a_model(target: Target) -> None:
    fuzz(target, examples=20, steps=30)


@pytest.mark.slow
def test_storage_against_a_model_longer(target: Target) -> None:
    fuzz(target, examples=150, steps=40)
