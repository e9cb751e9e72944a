"""Sessions, or their step records, as a pandas DataFrame (pandas is optional: imported only
when asked for)."""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

from wfnb.storage._database import Database
from wfnb.storage._listing import PAGE, filters, pages
from wfnb.storage._sessions import Sessions
from wfnb.storage._steps import StepLog

Row = dict[str, Any]

DATAFRAME_COLUMNS = ("session_id", "workflow_name", "version", "updated_at", "state_bytes")
STEP_COLUMNS = ("session_id", "workflow_name", "run_id", "name", "status", "cached",
                "started_at", "ended_at", "seconds", "error", "output", "key", "step_id")


def to_dataframe(
    db: Database,
    sessions: Sessions,
    *,
    search: str | None = None,
    workflow_name: str | None = None,
    step_log: StepLog | None = None,
    chunk_size: int = PAGE,
) -> Any:
    """A pandas DataFrame, one row per session (newest first): its metadata, then one
    ``state.<key>`` column per top-level state key. Reads states ``chunk_size`` sessions at a time.
    With ``step_log``, one row per step record of those sessions instead (oldest first).
    """
    try:
        pandas = importlib.import_module("pandas")
    except ImportError:
        raise ImportError("to_dataframe() needs pandas: pip install pandas") from None
    records: list[Row] = []
    if step_log is not None:
        for rows in pages(db, [], filters(db, search, workflow_name), chunk_size):
            for row in rows:
                records += ({column: getattr(step, column) for column in STEP_COLUMNS}
                            for step in step_log.records(row.session_id))
        records.sort(key=lambda record: (record["started_at"], record["step_id"]))
        return pandas.DataFrame(records, columns=list(STEP_COLUMNS))
    for rows in pages(db, [], filters(db, search, workflow_name), chunk_size):
        for row in rows:
            stored = sessions.read(row.session_id)
            if stored is None:  # deleted meanwhile
                continue
            record: Row = {"session_id": stored.session_id, "workflow_name": stored.workflow_name,
                            "version": stored.version, "updated_at": stored.updated_at,
                            "state_bytes": stored.state_bytes}
            record.update((f"state.{key}", value) for key, value in stored.session_state.items())
            records.append(record)
    records.sort(key=_newest_first)
    return pandas.DataFrame(records, columns=None if records else list(DATAFRAME_COLUMNS))


def _newest_first(record: Row) -> tuple[float, str]:
    updated: dt.datetime = record["updated_at"]
    return -updated.timestamp(), record["session_id"]
