"""What storage hands back: plain, frozen records (no live database objects)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from wfnb._format import clip, shown_value


def timestamp(seconds: float) -> dt.datetime:
    """A stored epoch time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


_EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
_LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def listed_time(seconds: float, what: str, damage: list[str]) -> dt.datetime:
    """``timestamp(seconds)``; for a time no datetime holds (a row written by hand or by
    another tool), the nearest one, with what is wrong added to ``damage``: one damaged row
    must not take a whole listing down."""
    try:
        return timestamp(seconds)
    except (OverflowError, ValueError, OSError):
        damage.append(f"{what} {seconds!r} is not a time")
        return _LATEST if seconds > 0 else _EARLIEST


@dataclass(frozen=True)
class ChangeMark:
    """What a sessions table looks like from afar (see _watch.py): equal marks, no change.
    Each is epoch seconds, None when it never happened."""

    last_update: float | None  # the latest save or restore
    last_delete: float | None  # the latest delete
    last_import: float | None  # the latest import


@dataclass(frozen=True)
class PageCursor:
    """Where a page of ``list_sessions`` ends: the row's stored ``updated_at`` (exact, not the
    rounded datetime) and its id, which breaks ties. Pass it, or the row, as ``after=`` for
    the next page or ``before=`` for the previous one; ``before=PageCursor.end()`` lists the
    last page (the oldest sessions)."""

    updated_at: float
    session_id: str

    @classmethod
    def end(cls) -> PageCursor:
        """The edge past the oldest session."""
        return cls(float("-inf"), "")


@dataclass(frozen=True)
class SessionSummary:
    """One session as listed: everything but the state itself. ``cursor`` (set on listed
    rows) is where ``list_sessions(after=row)`` goes on from."""

    session_id: str
    workflow_name: str | None
    version: int
    state_bytes: int
    created_at: dt.datetime
    updated_at: dt.datetime
    cursor: PageCursor | None = field(default=None, kw_only=True, repr=False, compare=False)
    damaged: str | None = field(default=None, kw_only=True)  # what in the row cannot be read


@dataclass(frozen=True)
class StoredSession(SessionSummary):
    """A session with its state (the current version, or the one asked for).

    ``document`` is the state exactly as stored: compact JSON (UTF-8), extra types tagged.
    """

    session_state: dict[str, Any] = field(default_factory=dict)
    document: bytes = field(default=b"{}", repr=False)

    @property
    def state_json(self) -> str:
        """The stored JSON text of the state."""
        return self.document.decode()


@dataclass(frozen=True)
class VersionInfo:
    """One entry of a session's history. ``source`` says what made it; ``run_id`` which run.

    A fork's first version (source ``"fork"``) names the session and version its state was
    forked from: ``forked_from_session``, ``forked_from_version`` (None on every other version).
    """

    session_id: str
    version: int
    source: str
    run_id: str | None
    state_bytes: int
    created_at: dt.datetime
    forked_from_session: str | None = None
    forked_from_version: int | None = None


class _JsonRecord:
    """A record the runs table keeps as a JSON object (a question, an answer)."""

    def document(self) -> dict[str, Any]:
        """As stored in the runs table."""
        document: dict[str, Any] = dataclasses.asdict(self)  # type: ignore[call-overload]
        return document


@dataclass(frozen=True)
class Question(_JsonRecord):
    """What a run asked (``Workflow.ask``) and waits for. ``key`` tells this question from the
    run's others: its text, its options and how many times the run asked it before."""

    text: str
    options: list[Any] | None
    default: Any
    key: str
    asked_at: float


@dataclass(frozen=True)
class Answer(_JsonRecord):
    """An answer to a run's question: who gave it (``by``) and when (epoch seconds)."""

    key: str
    question: str
    answer: Any
    by: str
    at: float


@dataclass(frozen=True)
class RunRecord:
    """One run of a workflow on a session, as recorded in the runs table.

    A run that asked a question is ``waiting`` with it as ``question`` until a run continues it
    (same run id); ``answers`` are the answers it was given, oldest first."""

    run_id: str
    session_id: str
    workflow_name: str | None
    status: str
    input: Any
    output: str | None
    error: str | None
    version: int | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    question: Question | None = field(default=None, kw_only=True)
    answers: tuple[Answer, ...] = field(default=(), kw_only=True)
    damaged: str | None = field(default=None, kw_only=True)  # what in the row cannot be read

    @property
    def answered(self) -> bool:
        """Whether the question the run waits for has its answer (the next run goes on)."""
        question = self.question
        return question is not None and any(done.key == question.key for done in self.answers)

    def dialogue(self) -> str:
        """The answers in one line (``question: answer (by)``), then the question the run
        waits for, if any: for listings (the CLI's runs, the inspector's Runs tab)."""
        said = [f"{clip(done.question, 30)}: {clip(shown_value(done.answer), 20)} ({done.by})"
                for done in self.answers]
        if self.answered:
            said.append("answered: its next run goes on")
        elif self.question is not None:
            options = self.question.options
            choices = (f" [{' / '.join(clip(shown_value(o), 12) for o in options)}]" if options
                       else "")
            said.append(f"waits: {clip(self.question.text, 40)}{choices}")
        return "; ".join(said)


@dataclass(frozen=True)
class StepRecord:
    """One step of a run, as recorded in the steps table.

    ``cached``: served from an earlier record (``served_from`` names it) instead of executing;
    ``output`` is the step's return value, or for a generator step ``{"chunks": [...],
    "returned": value}`` (with ``"responses"``, the indexes of chunks that were RunResponses,
    stored as their content, content_type and event); None while running, after a failure, or
    when the record it was served from is gone.
    """

    step_id: str
    session_id: str
    workflow_name: str | None
    run_id: str | None
    key: str
    name: str
    status: str
    cached: bool
    served_from: str | None
    output: Any
    error: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None

    @property
    def seconds(self) -> float | None:
        """How long the step took (None while it is running)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class SaveResult:
    """What a save did.

    ``version`` is the session's version after the save. ``merged_keys`` lists the top-level keys
    taken from another writer's newer save (then ``session_state`` is the merged state, which the
    caller should adopt); ``written`` is False when the state had not changed and nothing was
    stored.
    """

    version: int
    written: bool = True
    merged_keys: tuple[str, ...] = ()
    session_state: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImportReport:
    """What an import did: session ids by outcome, in file order.

    ``imported``: created with their history and runs; ``skipped``: existed, left alone;
    ``appended``: existed, got the file's state as a new version; ``unchanged``: existed with
    that state already.
    """

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        """The report as plain data (for JSON)."""
        return dataclasses.asdict(self)
