"""The exceptions wfnb raises, all under one root so callers can catch them together.

    WfnbError
    ├── StorageError            the database failed at what was asked (names table, session, cause)
    │   ├── SchemaVersionError  the tables were written by a newer wfnb, or a migration failed
    │   ├── SaveContendedError  a save lost the swap to other writers round after round; gave up
    │   └── CorruptStateError   a stored row is not the JSON wfnb wrote (edited by hand?)
    ├── SessionConflictError    another writer saved the same keys first (compare-and-swap lost)
    │   ├── SessionDeletedError the session was deleted (maybe created again) since it was loaded
    │   ├── ImportConflictError an imported session or run already exists; nothing written for it
    │   └── SessionExistsError  a new session (a fork) was asked for under an id that is taken
    ├── ImportFormatError       a line of an import file is not a wfnb export    (a ValueError)
    ├── SessionNotFoundError    no stored session (or version) under that id      (a LookupError)
    ├── UnstorableStateError    a value session_state cannot store; names its path  (a TypeError)
    │   └── UnkeyableArgumentError  a step argument that cannot key its call; names step, argument
    ├── InvalidNameError        a table name, session id or search text refused    (a ValueError)
    ├── WorkflowBusyError       a second run started on an instance that is still running one
    ├── RunNotWaitingError      answered or resumed a run that waits for nothing (a RuntimeError)
    ├── AnswerRefusedError      an answer not among the options, or a second one   (a ValueError)
    ├── NestedQuestionError     a run handed on another run's question: answer that run first
    ├── UnknownChunkError       a streamed chunk of a type no chunk adapter knows  (a TypeError)
    ├── ModelStreamError        a model's stream reported an error event        (a RuntimeError)
    └── WorkflowRunError        a run shown in a notebook cell failed; short message, cause chained

Not an error: ``WaitingForAnswer`` (a BaseException, like GeneratorExit) is how ``ask`` stops a
run; the run's wrapper catches it, so callers see the run end with its question instead.
"""

from __future__ import annotations

from collections.abc import Iterable


class WfnbError(Exception):
    """Base class of every error wfnb raises on purpose."""


class StorageError(WfnbError):
    """A database operation failed; the message names the table, the session and the cause."""

    def __init__(self, message: str, *, table: str, session_id: str | None = None) -> None:
        where = f"table {table!r}" + (f", session {session_id!r}" if session_id is not None else "")
        super().__init__(f"{message} ({where})")
        self.table = table
        self.session_id = session_id


class SchemaVersionError(StorageError):
    """The stored schema cannot be used by this version of wfnb."""


class CorruptStateError(StorageError):
    """A stored state or history row cannot be decoded."""


class SaveContendedError(StorageError):
    """A save kept losing the compare-and-swap to other writers (merging their keys each time)
    and gave up after ``rounds`` rounds: nothing was written. ``keys`` are the top-level keys
    this save changed; saving again later usually succeeds."""

    def __init__(
        self, message: str, *, table: str, session_id: str, keys: Iterable[str], rounds: int
    ) -> None:
        super().__init__(message, table=table, session_id=session_id)
        self.keys = sorted(keys)
        self.rounds = rounds


class SessionConflictError(WfnbError):
    """Another writer saved this session since it was loaded, and changed the same top-level keys.

    The in-memory state is left as it was: resolve by reloading, or overwrite on purpose with
    ``write_to_storage(force=True)``.
    """

    def __init__(
        self,
        session_id: str,
        *,
        keys: Iterable[str],
        expected_version: int,
        stored_version: int,
        message: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.keys = sorted(keys)
        self.expected_version = expected_version
        self.stored_version = stored_version
        shown = ", ".join(repr(k) for k in self.keys) or "(the session was deleted)"
        super().__init__(message or (
            f"session {session_id!r} was saved by another writer (version {stored_version}) "
            f"since this one loaded version {expected_version}, and both changed: {shown}. "
            "Reload it, or call write_to_storage(force=True) to overwrite on purpose."
        ))


class SessionDeletedError(SessionConflictError):
    """The session this writer loaded was deleted since, and perhaps created again under the same
    id (a new session, numbered on from the deleted one's last version): nothing was saved."""

    def __init__(
        self, session_id: str, *, expected_version: int, deleted_version: int,
        stored_version: int,
    ) -> None:
        again = (f", and created again (now at version {stored_version})" if stored_version
                 else "")
        super().__init__(
            session_id, keys=(), expected_version=expected_version, stored_version=stored_version,
            message=(
                f"session {session_id!r} was deleted (at version {deleted_version}) since this "
                f"writer loaded version {expected_version}{again}; nothing was saved. Reload "
                "it, or call write_to_storage(force=True) to save this state over it on purpose."
            ),
        )
        self.deleted_version = deleted_version


class ImportConflictError(SessionConflictError):
    """A session (or, with ``run_id``, a run) in an import file already exists."""

    def __init__(
        self, session_id: str, message: str, *, stored_version: int = 0, run_id: str | None = None
    ) -> None:
        super().__init__(session_id, keys=(), expected_version=0, stored_version=stored_version,
                         message=message)
        self.run_id = run_id


class SessionExistsError(SessionConflictError):
    """A new session (a fork) was asked for under an id a stored session has: nothing was
    written, the stored one is left as it is."""

    def __init__(self, session_id: str, message: str, *, stored_version: int) -> None:
        super().__init__(session_id, keys=(), expected_version=0, stored_version=stored_version,
                         message=message)


class ImportFormatError(WfnbError, ValueError):
    """A line of an import file is not a session wfnb exported; names the line and the field."""


class SessionNotFoundError(WfnbError, LookupError):
    """No stored session, or no stored version, under the given id."""


class UnstorableStateError(WfnbError, TypeError):
    """A value cannot be stored as JSON; ``path`` says where, e.g. ``session_state["a"][3]``."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}; nothing was written")


class UnkeyableArgumentError(UnstorableStateError):
    """A ``@step`` call's argument cannot be turned into its key (JSON cannot hold it)."""

    def __init__(self, step: str, argument: str, reason: str) -> None:
        super().__init__(f"step {step!r} argument {argument}", reason)
        self.step = step
        self.argument = argument
        self.args = (
            f"step {step!r}: argument {argument} cannot key the call: {reason}; pass a storable "
            "value, or @step(key=fn) with fn returning one that stands for the arguments",
        )


class InvalidNameError(WfnbError, ValueError):
    """A table name, session id or search text that would be unsafe or unusable in the
    database (a NUL, a lone surrogate...)."""


class WorkflowBusyError(WfnbError, RuntimeError):
    """One Workflow instance runs one run at a time."""


class RunNotWaitingError(WfnbError, RuntimeError):
    """An answer, or a resume, for a run that is not waiting for one (it went on, or never
    asked); the message names the session, the run and its status."""


class AnswerRefusedError(WfnbError, ValueError):
    """An answer the waiting question cannot take: not one of its options, not storable, or
    a second one (``answered_already``: the question has its answer; continue the run)."""

    def __init__(self, message: str, *, answered_already: bool = False) -> None:
        super().__init__(message)
        self.answered_already = answered_already


class NestedQuestionError(WfnbError, RuntimeError):
    """A run yielded (or returned) the RunPaused response of another workflow's run that it
    called: that question waits on the inner run, and would be lost as the outer run's
    output. So the outer run stops here; answer the inner run and run the outer again (its
    completed steps are served, and the inner run, called with the same input, goes on)."""

    def __init__(self, paused: object, outer: str | None) -> None:
        question = getattr(getattr(paused, "question", None), "text", "?")
        inner = getattr(paused, "workflow_name", None)
        session = getattr(paused, "session_id", None)
        super().__init__(
            f"workflow {inner!r} (session {session!r}) asked {question!r} inside a run of "
            f"{outer!r}: answer it (resume, or `wfnb answer {session} ...`), then run {outer!r} "
            "again"
        )
        self.paused = paused


class WaitingForAnswer(BaseException):
    """Raised by ``ask`` to stop a run until its question is answered (a BaseException, so an
    ``except Exception`` in the run cannot swallow a question)."""

    def __init__(self, question: str) -> None:
        super().__init__(f"the run waits for an answer to {question!r}")
        self.question = question


class UnknownChunkError(WfnbError, TypeError):
    """A chunk no adapter understands; says how to teach wfnb (``register_chunk_adapter``)."""

    def __init__(self, kind: type) -> None:
        name = f"{kind.__module__}.{kind.__qualname__}"
        super().__init__(
            f"wfnb cannot show a chunk of type {name}: it knows str, RunResponse, objects with a "
            "string .content, and the chunks, events and answers of OpenAI, Anthropic, LangChain "
            f"and agno. Teach it with wfnb.register_chunk_adapter({kind.__qualname__}, fn), where "
            "fn(chunk) returns the chunk's text (str), a RunResponse (content, reasoning_content, "
            "tool_calls, usage), or None to skip the chunk"
        )
        self.kind = kind


class ModelStreamError(WfnbError, RuntimeError):
    """A model's stream sent an error event (the provider's words are in the message)."""


class WorkflowRunError(WfnbError):
    """A workflow run failed in a notebook cell: a short error output, the cause chained.

    ``_render_traceback_`` gives IPython three lines instead of a wall of traceback; the cell
    still fails (nbval and nbclient see an error output).
    """

    def __init__(self, cause: BaseException, where: str) -> None:
        self.cause = cause
        self.where = where
        super().__init__(f"{type(cause).__name__}: {cause} ({where})")

    def _render_traceback_(self) -> list[str]:
        return [
            f"{type(self.cause).__name__}: {self.cause}",
            f"  in {self.where}",
            "  (full traceback: %config WorkflowMagics.short_errors = False)",
        ]
