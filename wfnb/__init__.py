"""wfnb: Jupyter-first stateful workflows.

A :class:`Workflow`'s ``session_state`` is read from storage when a run starts and written when
it ends (or on ``write_to_storage()``), through `dataset` in SQLite (:class:`SqliteWorkflowStorage`)
or PostgreSQL (:class:`PostgresWorkflowStorage`), with a version history and compare-and-swap
saves that never lose a concurrent update.
"""

from typing import TYPE_CHECKING, Any

from wfnb._chunks import register_chunk_adapter
from wfnb._errors import (
    AnswerRefusedError,
    CorruptStateError,
    ImportConflictError,
    ImportFormatError,
    InvalidNameError,
    ModelStreamError,
    NestedQuestionError,
    RunNotWaitingError,
    SaveContendedError,
    SchemaVersionError,
    SessionConflictError,
    SessionDeletedError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    UnkeyableArgumentError,
    UnknownChunkError,
    UnstorableStateError,
    WfnbError,
    WorkflowBusyError,
    WorkflowRunError,
)
from wfnb._events import RunEvent, RunResponse, ToolCall, Usage
from wfnb._steps import step
from wfnb._workflow import Workflow, logger
from wfnb.storage import (
    Answer,
    ImportReport,
    PageCursor,
    PostgresWorkflowStorage,
    Question,
    RunRecord,
    SaveResult,
    SessionSummary,
    SqliteWorkflowStorage,
    StepRecord,
    StoredSession,
    VersionInfo,
    WorkflowStorage,
)

if TYPE_CHECKING:
    from wfnb.notebook._inspector import StateInspector
    from wfnb.notebook._runner import show

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AnswerRefusedError",
    "CorruptStateError",
    "ImportConflictError",
    "ImportFormatError",
    "ImportReport",
    "InvalidNameError",
    "ModelStreamError",
    "NestedQuestionError",
    "PageCursor",
    "PostgresWorkflowStorage",
    "Question",
    "RunEvent",
    "RunNotWaitingError",
    "RunRecord",
    "RunResponse",
    "SaveContendedError",
    "SaveResult",
    "SchemaVersionError",
    "SessionConflictError",
    "SessionDeletedError",
    "SessionExistsError",
    "SessionNotFoundError",
    "SessionSummary",
    "SqliteWorkflowStorage",
    "StateInspector",
    "StepRecord",
    "StorageError",
    "StoredSession",
    "ToolCall",
    "UnkeyableArgumentError",
    "UnknownChunkError",
    "UnstorableStateError",
    "Usage",
    "VersionInfo",
    "WfnbError",
    "Workflow",
    "WorkflowBusyError",
    "WorkflowRunError",
    "WorkflowStorage",
    "load_ipython_extension",
    "logger",
    "register_chunk_adapter",
    "show",
    "step",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext wfnb``: register the ``%workflow`` magics (IPython is imported only now)."""
    from wfnb.notebook._magics import WorkflowMagics

    ipython.register_magics(WorkflowMagics)


def __getattr__(name: str) -> Any:
    """``wfnb.StateInspector`` (ipywidgets) and ``wfnb.show`` (Markdown rendering) are imported
    on first use, so ``import wfnb`` stays light."""
    if name == "StateInspector":
        from wfnb.notebook._inspector import StateInspector

        return StateInspector
    if name == "show":
        from wfnb.notebook._runner import show

        return show
    raise AttributeError(f"module 'wfnb' has no attribute {name!r}")
