"""Storage of workflow sessions through `dataset`: SQLite by default, PostgreSQL for teams."""

from wfnb.storage._backends import PostgresWorkflowStorage, SqliteWorkflowStorage
from wfnb.storage._codec import decode_state, encode_state
from wfnb.storage._models import (
    RunRecord,
    SaveResult,
    SessionSummary,
    StepRecord,
    StoredSession,
    VersionInfo,
)
from wfnb.storage._sessions import WorkflowStorage

__all__ = [
    "PostgresWorkflowStorage",
    "RunRecord",
    "SaveResult",
    "SessionSummary",
    "SqliteWorkflowStorage",
    "StepRecord",
    "StoredSession",
    "VersionInfo",
    "WorkflowStorage",
    "decode_state",
    "encode_state",
]
