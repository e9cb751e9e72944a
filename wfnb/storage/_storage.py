"""WorkflowStorage: the one storage API the runtime, the notebook layer and the CLI use.

A thin facade: each method checks its arguments and hands the work to the module that owns it,
all of them working on one :class:`~wfnb.storage._database.Database` (engine, tables, prepared
SQL, transactions):

- read, save, delete, restore       -> _sessions.py (head cache, compare-and-swap, merge)
- history, prune                    -> _history.py;  fork -> _fork.py
- list_sessions, count_sessions,
  workflow_names                    -> _listing.py
- record_run_start/end, runs,
  waiting_runs,
  answer                            -> _runs.py
- last_change                       -> _watch.py
- steps, clear_steps, step_log      -> _steps.py (step_log: the runtime's lookups and records)
- export_sessions, import_sessions  -> _transfer.py;  to_dataframe -> _frame.py
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from wfnb._errors import AnswerRefusedError
from wfnb.storage import _fork, _frame, _history, _listing, _runs, _transfer, _watch
from wfnb.storage._codec import EncodedState
from wfnb.storage._database import Database
from wfnb.storage._engine import normalize_url
from wfnb.storage._models import (
    ChangeMark,
    ImportReport,
    PageCursor,
    Question,
    RunRecord,
    SaveResult,
    SessionSummary,
    StepRecord,
    StoredSession,
    VersionInfo,
)
from wfnb.storage._process import current_user
from wfnb.storage._schema import check_table_name
from wfnb.storage._sessions import Sessions, check_session_id
from wfnb.storage._steps import ServedCall, StepLog

Progress = Callable[[], None]  # called once per session done


class WorkflowStorage:
    """Sessions of workflows, stored through `dataset` in any SQLAlchemy database.

    ``WorkflowStorage("my_workflows", "sqlite:///tmp/workflows.db")`` keeps six tables
    (``my_workflows``, ``_versions``, ``_runs``, ``_steps``, ``_deleted``, ``_meta``), created or
    upgraded on open.
    ``keep_versions`` bounds each session's history (``None`` keeps all of it);
    ``db`` is the underlying :class:`dataset.Database` for ad-hoc queries.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str,
        *,
        keep_versions: int | None = 1000,
        busy_timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        check_table_name(table_name)
        if keep_versions is not None and keep_versions < 1:
            raise ValueError(f"keep_versions must be at least 1 or None, not {keep_versions}")
        self.keep_versions = keep_versions
        self.db_url = normalize_url(db_url)
        self._database = Database(table_name, self.db_url, busy_timeout=busy_timeout,
                                  synchronous=synchronous)
        self._sessions = Sessions(self._database, keep_versions)
        self.step_log = StepLog(self._database)
        self.table_name = self._database.name
        self.db = self._database.db
        self.schema_version = self._database.schema_version

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table_name={self.table_name!r}, db={self._database.where!r})"

    def close(self) -> None:
        """Release the database connections."""
        self._database.close()

    # -- sessions ----------------------------------------------------------------------------

    def read(self, session_id: str, version: int | None = None) -> StoredSession | None:
        """The stored session (its state at ``version``, default the current one), or None.

        The current version's document is reused from this object's last save or read when the
        database confirms (same version, same creation time) that it is still current.
        """
        return self._sessions.read(session_id, version)

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any] | EncodedState,
        *,
        expected_version: int,
        workflow_name: str | None = None,
        source: str = "save",
        run_id: str | None = None,
        force: bool = False,
    ) -> SaveResult:
        """Store ``state`` as the next version, if the session is still at ``expected_version``.

        ``expected_version=0`` means "the session should not exist yet". When another writer
        saved since, their and our top-level key changes are merged if disjoint (the result's
        ``session_state`` is the merged state); otherwise SessionConflictError is raised and
        nothing is written. ``force=True`` overwrites whatever is stored. A state equal to the
        stored one writes nothing. ``state`` may be given already encoded (``encode_state``).
        """
        return self._sessions.save(
            session_id, state, expected_version=expected_version, workflow_name=workflow_name,
            source=source, run_id=run_id, force=force,
        )

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """Delete a session with its history, runs and steps; False when there was none.

        With ``expected_version``, refuse (SessionConflictError) if it was saved since.
        """
        return self._sessions.delete(session_id, expected_version=expected_version)

    def list_sessions(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        search: str | None = None,
        workflow_name: str | None = None,
        after: SessionSummary | PageCursor | None = None,
        before: SessionSummary | PageCursor | None = None,
    ) -> list[SessionSummary]:
        """Sessions newest first (ties by id), without their states; ``search`` matches part
        of the id (ASCII letters in either case, every other character exactly: see
        _search.py). ``after=row`` (or its ``row.cursor``) lists the page after a listed row,
        ``before=row`` the page before it: keyset paging, fast at any depth, unlike ``offset``.
        """
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be at least 0, not {limit} and {offset}")
        return _listing.list_sessions(self._database, limit=limit, offset=offset, search=search,
                                      workflow_name=workflow_name, after=after, before=before)

    def count_sessions(
        self, *, search: str | None = None, workflow_name: str | None = None,
        limit: int | None = None,
    ) -> int:
        """How many sessions ``list_sessions`` would page through with these filters; with
        ``limit``, at most that many (a capped count stays fast in a million rows)."""
        return _listing.count_sessions(self._database, search=search,
                                       workflow_name=workflow_name, limit=limit)

    def last_change(self) -> ChangeMark:
        """A cheap mark of the table (latest save, delete and import times: index lookups): a
        different mark than before means a writer (kernel, process, CLI) changed it (_watch.py)."""
        return _watch.last_change(self._database)

    def workflow_names(self) -> list[str]:
        """The workflow names sessions were saved under, sorted (for filters and pickers)."""
        return _listing.workflow_names(self._database)

    # -- history -----------------------------------------------------------------------------

    def history(self, session_id: str, *, limit: int | None = None) -> list[VersionInfo]:
        """The session's stored versions, newest first (empty when it has none)."""
        return _history.history(self._database, check_session_id(session_id), limit=limit)

    def restore(
        self, session_id: str, version: int, *, expected_version: int | None = None
    ) -> SaveResult:
        """Append a new version equal to ``version``; history is never rewritten.

        ``expected_version`` (default: the current version) makes it refuse if the session was
        saved since the caller looked at it.
        """
        return self._sessions.restore(session_id, version, expected_version=expected_version)

    def fork(
        self, session_id: str, version: int | None = None, new_session_id: str | None = None
    ) -> VersionInfo:
        """Start a new session whose first version is the state of ``session_id`` at
        ``version`` (default: its current one); returns that first version's entry.

        The new session (``new_session_id``, default a fresh uuid4) keeps the source's workflow
        name; its history says where it came from (source ``"fork"``, ``forked_from_session``,
        ``forked_from_version``). The source is only read. Runs and step records are not copied:
        the fork's runs execute their session-scoped steps afresh (see _fork.py). An id that is
        taken raises SessionExistsError and writes nothing; an id of a deleted session numbers
        on from its last version.
        """
        check_session_id(session_id)
        new_id = check_session_id(new_session_id if new_session_id is not None
                                  else str(uuid.uuid4()))
        return _fork.fork(self._database, session_id, version, new_id)

    def prune(
        self,
        *,
        keep: int | None = None,
        older_than: float | None = None,
        session_id: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Drop history: all but the newest ``keep`` versions and/or those older than
        ``older_than`` seconds, of one session or all. The current version always stays.
        Step records that started before the oldest version kept go too, except the newest
        completed one of each step key (what later runs are served). Returns how many versions
        were dropped; ``progress`` is called after each session.
        """
        ids = [check_session_id(session_id)] if session_id is not None else None
        return _history.prune(self._database, ids, keep=keep, older_than=older_than,
                              progress=progress)

    # -- runs --------------------------------------------------------------------------------

    def record_run_start(
        self, run_id: str, session_id: str, workflow_name: str | None, run_input: Any,
        *, resuming: str | None = None,
    ) -> RunRecord | None:
        """Record that a run began (status ``running``); or, if a run of the session with the
        same input waits for an answer (or the run ``resuming`` does), continue that one: it
        is ``running`` again under its own run id, and its record (with its answers) is
        returned. RunNotWaitingError if the run ``resuming`` does not wait."""
        return _runs.record_start(self._database, run_id, session_id, workflow_name, run_input,
                                  resuming=resuming)

    def record_run_end(
        self,
        run_id: str,
        *,
        status: str,
        output: str | None,
        error: str | None = None,
        version: int | None = None,
        session_id: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        served_steps: Sequence[ServedCall] = (),
        question: Question | None = None,
    ) -> None:
        """Record how a run ended: completed, failed, interrupted, or waiting for an answer to
        ``question``, and the tokens it used, with the records of its step calls that were
        served and not recorded yet, in the same transaction."""
        _runs.record_end(self._database, run_id, status=status, output=output, error=error,
                         version=version, session_id=session_id, input_tokens=input_tokens,
                         output_tokens=output_tokens, served_steps=served_steps,
                         question=question)

    def waiting_runs(self, session_id: str) -> list[RunRecord]:
        """The session's runs waiting for an answer (status ``waiting``), newest first."""
        return _runs.waiting(self._database, check_session_id(session_id))

    def answer(
        self, session_id: str, answer: Any, *, run_id: str | None = None, by: str | None = None,
        question_key: str | None = None,
    ) -> RunRecord:
        """Record ``answer`` to the question the run waits for (the session's newest waiting
        run, without ``run_id``): the next run of the session with that run's input continues
        it and is given the answer. ``by`` says who answered (default: this user).

        Raises RunNotWaitingError when the run waits for nothing, AnswerRefusedError when the
        answer is not one of the options (compared as JSON), the question was answered already,
        the run now asks another question than ``question_key`` (a Question's ``key``), or the
        answer is not plain JSON (text, numbers, booleans, null, lists, objects).
        """
        reason = _runs.not_plain_json(answer, "the answer")
        if reason is not None:
            raise AnswerRefusedError(f"session {session_id!r}: {reason}; nothing was recorded")
        return _runs.answer(self._database, check_session_id(session_id), answer,
                            run_id=run_id, by=by or current_user(), question_key=question_key)

    def runs(self, session_id: str, *, limit: int | None = None) -> list[RunRecord]:
        """The session's runs, newest first."""
        return _runs.runs(self._database, check_session_id(session_id), limit=limit)

    def steps(self, session_id: str, run_id: str | None = None) -> list[StepRecord]:
        """The session's step records (of one run, with ``run_id``), oldest first."""
        return self.step_log.records(check_session_id(session_id), run_id)

    def clear_steps(self, session_id: str, name: str | None = None) -> int:
        """Forget the session's step records (of the step ``name`` only: its full name or the
        part after the last dot), so their next calls execute; returns how many were deleted."""
        return self.step_log.clear(check_session_id(session_id), name)

    # -- transfer ----------------------------------------------------------------------------

    def export_sessions(
        self,
        path: str | Path | IO[bytes],
        session_ids: list[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> int:
        """Write sessions (all, or those named) to a JSON-lines file (a path, or a binary file
        open for writing), one per line with its whole history and runs, for import_sessions
        here or in another database; returns how many. Named sessions must all exist
        (SessionNotFoundError before anything is written). ``progress`` is called per session.
        """
        if isinstance(path, (str, Path)):
            with open(path, "wb") as out:
                return self.export_sessions(out, session_ids, progress=progress)
        return _transfer.export_sessions(self._database, self._sessions, path, session_ids,
                                         progress=progress)

    def import_sessions(
        self, path: str | Path, *, on_conflict: str = "fail", progress: Progress | None = None
    ) -> ImportReport:
        """Import an export_sessions file, never overwriting silently: ``on_conflict`` is
        ``"fail"`` (an existing id is an error), ``"skip"`` or ``"new-version"``.
        Returns session ids by outcome; ``progress`` is called per session."""
        mode = _transfer.check_on_conflict(on_conflict)
        return _transfer.import_sessions(self._database, self._sessions, path, on_conflict=mode,
                                         progress=progress)

    def to_dataframe(
        self, *, search: str | None = None, workflow_name: str | None = None, steps: bool = False
    ) -> Any:
        """A pandas DataFrame of the sessions, one row each with one ``state.<key>`` column per
        top-level state key (reads every state; pandas is optional: ``pip install pandas``).
        ``steps=True``: one row per step record of those sessions (name, status, cached, times,
        error, output)."""
        return _frame.to_dataframe(self._database, self._sessions, search=search,
                                   workflow_name=workflow_name,
                                   step_log=self.step_log if steps else None)
