"""Storage of workflow sessions through `dataset`: SQLite by default, PostgreSQL for teams.

This package's names are the storage API: the runtime (``wfnb._workflow``), the notebook layer
and the CLI import only these, never a ``wfnb.storage._*`` module. WorkflowStorage is the facade
over the internals (docs/architecture.md draws them).
"""

from wfnb.storage._backends import PostgresWorkflowStorage, SqliteWorkflowStorage
from wfnb.storage._codec import (
    TAG,
    EncodedState,
    decode_state,
    encode_state,
    format_path,
    join_parts,
    parts_of,
)
from wfnb.storage._engine import normalize_url, shown_url, sqlite_url
from wfnb.storage._families import has_table_family, table_families
from wfnb.storage._merge import merge_or_conflict
from wfnb.storage._models import (
    Answer,
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
from wfnb.storage._runs import not_plain_json, recorded_input, same_json
from wfnb.storage._schema import check_table_name
from wfnb.storage._sessions import check_session_id
from wfnb.storage._steps import SCOPES, Scope, ServedCall, StepCall, StepLog, encode_output
from wfnb.storage._storage import WorkflowStorage
from wfnb.storage._transfer import ON_CONFLICT, check_export_file

__all__ = [
    "ON_CONFLICT",
    "SCOPES",
    "TAG",
    "Answer",
    "ChangeMark",
    "EncodedState",
    "ImportReport",
    "PageCursor",
    "PostgresWorkflowStorage",
    "Question",
    "RunRecord",
    "SaveResult",
    "Scope",
    "ServedCall",
    "SessionSummary",
    "SqliteWorkflowStorage",
    "StepCall",
    "StepLog",
    "StepRecord",
    "StoredSession",
    "VersionInfo",
    "WorkflowStorage",
    "check_export_file",
    "check_session_id",
    "check_table_name",
    "decode_state",
    "encode_output",
    "encode_state",
    "format_path",
    "has_table_family",
    "join_parts",
    "merge_or_conflict",
    "normalize_url",
    "not_plain_json",
    "parts_of",
    "recorded_input",
    "same_json",
    "shown_url",
    "sqlite_url",
    "table_families",
]
