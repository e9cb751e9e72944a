"""Sessions out of a database and into another, as JSON lines.

One line per session: its current state, its whole stored history (every version as a full state,
with its number, source, run id and time), its runs and its step records (``steps``: optional on
import, so files written before steps existed still import). Every state is the exact JSON text wfnb
stored (tagged types stay tagged) and every time the stored float, so an export from SQLite
imports into PostgreSQL, or back, unchanged. An import writes each session (row, versions, runs)
in one transaction and never overwrites one silently: see :func:`import_sessions`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import sqlalchemy as sa

from wfnb._errors import (
    ImportConflictError,
    ImportFormatError,
    InvalidNameError,
    SessionNotFoundError,
    StorageError,
)
from wfnb._format import noun
from wfnb.storage import _steps
from wfnb.storage._codec import decode_state, may_hold_tags
from wfnb.storage._database import Database, jsonb_copy
from wfnb.storage._listing import all_session_ids, chunks, existing_sessions
from wfnb.storage._models import ImportReport
from wfnb.storage._sessions import Sessions, check_session_id
from wfnb.storage._sql import SessionRow

FORMAT = 1  # the "wfnb" field of every exported line; a newer one is refused, not guessed at
OnConflict = Literal["fail", "skip", "new-version"]
ON_CONFLICT: tuple[OnConflict, ...] = ("fail", "skip", "new-version")
Progress = Callable[[], None]  # called once per session done

# a run as exported: its row without the session id
_RUN_FIELDS = ("run_id", "workflow_name", "status", "input", "output", "error", "version",
               "started_at", "ended_at", "input_tokens", "output_tokens")
_ATTEMPTS = 5  # reads of a session that keeps being saved while it is exported
Row = dict[str, Any]


def check_on_conflict(value: str) -> OnConflict:
    """``value`` if it names an on_conflict mode, else ValueError listing them."""
    for mode in ON_CONFLICT:
        if value == mode:
            return mode
    raise ValueError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, not {value!r}")


# -- export ------------------------------------------------------------------------------------


def export_sessions(
    db: Database,
    sessions: Sessions,
    out: IO[bytes],
    session_ids: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
) -> int:
    """Write sessions (all when ``session_ids`` is None) to ``out`` as JSON lines; returns how
    many. Named sessions must all exist (SessionNotFoundError before anything is written)."""
    if session_ids is not None:
        missing = sorted(set(session_ids) - existing_sessions(db, session_ids).keys())
        if missing:
            raise SessionNotFoundError(f"no {_listed(missing)} in table {db.name!r}")
    written = 0
    for session_id in session_ids if session_ids is not None else all_session_ids(db):
        record = export_record(db, sessions, session_id)
        if record is not None:  # None: deleted since it was listed
            out.write(orjson.dumps(record) + b"\n")
            written += 1
        if progress is not None:
            progress()
    return written


def export_record(db: Database, sessions: Sessions, session_id: str) -> Row | None:
    """One session as exported (None when there is none).

    Its parts are read one after another, so a save meanwhile would tear them apart: the record
    is read again until the session's version held still while it was read.
    """
    for attempt in range(1, _ATTEMPTS + 1):
        before = _session_row(db, session_id)
        if before is None:
            return None
        try:
            record = _read_record(db, sessions, session_id, before)
        except SessionNotFoundError:  # a version pruned, or the session deleted, meanwhile?
            if attempt == _ATTEMPTS:
                raise  # no: that version cannot be read
            continue
        if record is not None and _session_row(db, session_id) == before:
            return record
    raise StorageError(f"the session changed {_ATTEMPTS} times while it was being exported",
                       table=db.name, session_id=session_id)


def _session_row(db: Database, session_id: str) -> SessionRow | None:
    """The session's row, or None."""
    with db.transaction("export the session", session_id) as tx:
        return tx.session(session_id)


def _read_record(
    db: Database, sessions: Sessions, session_id: str, row: SessionRow
) -> Row | None:
    """The session as its row describes it, with every version's state and its runs; None if
    it moved on meanwhile."""
    t = db.tables
    with db.transaction("export the session", session_id) as tx:
        versions = tx.execute(
            sa.select(t.versions.c.version, t.versions.c.source, t.versions.c.run_id,
                      t.versions.c.created_at)
            .where(t.versions.c.session_id == session_id).order_by(t.versions.c.version)
        ).all()
        runs = tx.execute(
            sa.select(t.runs).where(t.runs.c.session_id == session_id)
            .order_by(t.runs.c.started_at, t.runs.c.run_id)
        ).all()
        steps = _steps.export_rows(tx, session_id)
    history = [
        {"version": v.version, "source": v.source, "run_id": v.run_id,
         "created_at": v.created_at, "state": _state_json(sessions, session_id, v.version)}
        for v in versions
    ]
    current = sessions.read(session_id)
    if current is None or current.version != row.version:
        return None
    return {
        "wfnb": FORMAT,
        "session_id": session_id,
        "workflow_name": row.workflow_name,
        "version": row.version,
        "created_at": row.created_at,  # the stored floats: datetimes would round them
        "updated_at": row.updated_at,
        "state": current.state_json,
        "history": history,
        "runs": [{key: run._mapping[key] for key in _RUN_FIELDS} for run in runs],
        "steps": steps,
    }


def _state_json(sessions: Sessions, session_id: str, version: int) -> str:
    stored = sessions.read(session_id, version)
    if stored is None:
        raise SessionNotFoundError(f"session {session_id!r} was deleted")
    return stored.state_json


# -- import ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Record:
    """One validated line of an import file."""

    session_id: str
    workflow_name: str | None
    version: int
    state: str
    created_at: float
    updated_at: float
    history: list[Row]  # version, source, run_id, created_at, state
    runs: list[Row]  # rows of the runs table
    steps: list[Row]  # rows of the steps table


def import_sessions(
    db: Database,
    sessions: Sessions,
    path: str | Path,
    *,
    on_conflict: OnConflict = "fail",
    progress: Progress | None = None,
) -> ImportReport:
    """Import an export file; each new session (row, versions, runs) in one transaction.

    The whole file is checked first: a malformed line raises ImportFormatError, and with
    ``on_conflict="fail"`` a session id that already exists raises ImportConflictError, in both
    cases before anything is written. ``"skip"`` leaves existing sessions alone; ``"new-version"``
    saves the file's current state as a new version of the existing session (source ``import``;
    a concurrent writer's changes are merged or refused as by any save; the file's history,
    runs and steps of that session are not imported). A run id that exists already (for a
    session being created) is a conflict in every mode; step records already stored are left
    out.
    """
    check_on_conflict(on_conflict)
    run_ids: dict[str, str] = {}
    session_ids: list[str] = []
    for record in _records(path):
        session_ids.append(record.session_id)
        run_ids.update((run["run_id"], record.session_id) for run in record.runs)
    existing = existing_sessions(db, session_ids)
    if existing and on_conflict == "fail":
        raise ImportConflictError(
            min(existing),
            f"{_listed(sorted(existing))} already in table {db.name!r}: nothing was imported",
            stored_version=existing[min(existing)],
        )
    _check_runs_are_new(db, {r: s for r, s in run_ids.items() if s not in existing})
    outcomes: dict[str, list[str]] = {field.name: [] for field in dataclasses.fields(ImportReport)}
    for record in _records(path):
        if record.session_id in existing or not _insert(db, record):
            outcome = _on_existing(sessions, record, on_conflict)
        else:
            outcome = "imported"
        outcomes[outcome].append(record.session_id)
        if progress is not None:
            progress()
    return ImportReport(**outcomes)


def check_export_file(path: str | Path) -> int:
    """Check every line of an export file (ImportFormatError naming the first bad one) without
    touching a database; returns how many sessions it holds."""
    return sum(1 for _ in _records(path))


def _records(path: str | Path) -> Iterator[_Record]:
    """The file's sessions, validated; ImportFormatError names the first bad line."""
    seen: set[str] = set()
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = _parse(line)
                if record.session_id in seen:
                    raise ImportFormatError(f"session {record.session_id!r} appears twice")
            except (ImportFormatError, InvalidNameError) as exc:
                raise ImportFormatError(f"{Path(path).name}, line {number}: {exc}") from None
            seen.add(record.session_id)
            yield record


def _parse(line: bytes) -> _Record:
    """Check one exported line field by field and turn it into rows."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ImportFormatError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or "wfnb" not in data:
        raise ImportFormatError("not a session exported by wfnb (no 'wfnb' field)")
    if data["wfnb"] != FORMAT:
        raise ImportFormatError(
            f"export format {data['wfnb']!r}, this wfnb reads format {FORMAT} (upgrade wfnb?)"
        )
    session_id = check_session_id(_field(data, "session_id", str))
    version = _version(data, "version")
    state = _state(data, "state")
    history = _field(data, "history", list)
    if not history:
        raise ImportFormatError("'history' is empty (it holds at least the current version)")
    versions = [_history_entry(entry, index) for index, entry in enumerate(history)]
    numbers = [entry["version"] for entry in versions]
    if numbers != sorted(set(numbers)) or numbers[-1] != version:
        raise ImportFormatError(f"history versions {numbers} should increase up to {version}")
    if versions[-1]["state"] != state:
        raise ImportFormatError(f"history version {version} differs from the current 'state'")
    runs = [_run_row(session_id, run, index)
            for index, run in enumerate(_field(data, "runs", list))]
    if len({run["run_id"] for run in runs}) != len(runs):
        raise ImportFormatError("a run id appears twice in 'runs'")
    steps = [_step_row(session_id, entry, index)
             for index, entry in enumerate(_field(data, "steps", list) if "steps" in data else [])]
    if len({row["step_id"] for row in steps}) != len(steps):
        raise ImportFormatError("a step id appears twice in 'steps'")
    return _Record(
        session_id, _field(data, "workflow_name", str, nullable=True), version, state,
        _time(data, "created_at"), _time(data, "updated_at"), versions, runs, steps,
    )


def _history_entry(entry: object, index: int) -> Row:
    where = f"history[{index}]."
    item = _mapping(entry, f"history[{index}]")
    return {
        "version": _version(item, "version", where),
        "source": _field(item, "source", str, where=where),
        "run_id": _field(item, "run_id", str, nullable=True, where=where),
        "created_at": _time(item, "created_at", where), "state": _state(item, "state", where),
    }


def _step_row(session_id: str, entry: object, index: int) -> Row:
    where = f"steps[{index}]."
    item = _mapping(entry, f"steps[{index}]")
    row: Row = {"session_id": session_id}
    for column in ("step_id", "key", "name", "status"):
        row[column] = _field(item, column, str, where=where)
    for column in ("workflow_name", "run_id", "served_from", "error"):
        row[column] = _field(item, column, str, nullable=True, where=where)
    if not row["step_id"]:
        raise ImportFormatError(f"{where}step_id is empty")
    if row["status"] not in _steps.STATUSES:
        raise ImportFormatError(f"{where}status should be one of "
                                f"{', '.join(_steps.STATUSES)}, not {row['status']!r}")
    output = _state(item, "output", where) if item.get("output") is not None else None
    row["output"] = output.encode() if output is not None else None
    row["tagged"] = row["output"] is not None and may_hold_tags(row["output"])
    row["started_at"] = _time(item, "started_at", where)
    row["ended_at"] = None if item.get("ended_at") is None else _time(item, "ended_at", where)
    return row


def _run_row(session_id: str, entry: object, index: int) -> Row:
    where = f"runs[{index}]."
    item = _mapping(entry, f"runs[{index}]")
    run_id = _field(item, "run_id", str, where=where)
    if not run_id:
        raise ImportFormatError(f"{where}run_id is empty")
    ended_at = item.get("ended_at")
    return {
        "run_id": run_id, "session_id": session_id,
        "workflow_name": _field(item, "workflow_name", str, nullable=True, where=where),
        "status": _field(item, "status", str, where=where),
        "input": _field(item, "input", str, nullable=True, where=where),
        "output": _field(item, "output", str, nullable=True, where=where),
        "error": _field(item, "error", str, nullable=True, where=where),
        "version": _field(item, "version", int, nullable=True, where=where),
        "started_at": _time(item, "started_at", where),
        "ended_at": None if ended_at is None else _time(item, "ended_at", where),
        **{tokens: _field(item, tokens, int, nullable=True, where=where) if tokens in item else None
           for tokens in ("input_tokens", "output_tokens")},  # absent from older exports
    }


def _mapping(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImportFormatError(f"{name} should be an object, not {_kind(value)}")
    return value


def _field(
    data: dict[str, Any], key: str, kind: type, *, nullable: bool = False, where: str = ""
) -> Any:
    """``data[key]`` if it is a ``kind`` (or None, when ``nullable``)."""
    if key not in data:
        raise ImportFormatError(f"{where}{key} is missing")
    value = data[key]
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ + (" or null" if nullable else "")
        raise ImportFormatError(f"{where}{key} should be {expected}, not {_kind(value)}")
    return value


def _version(data: dict[str, Any], key: str, where: str = "") -> int:
    value: int = _field(data, key, int, where=where)
    if value < 1:
        raise ImportFormatError(f"{where}{key} should be at least 1, not {value}")
    return value


def _time(data: dict[str, Any], key: str, where: str = "") -> float:
    """A stored time: seconds since the epoch, as the float wfnb stores."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ImportFormatError(f"{where}{key} should be seconds since 1970, not {_kind(value)}")
    return float(value)


def _state(data: dict[str, Any], key: str, where: str = "") -> str:
    """A state as stored JSON text, checked to decode as wfnb wrote it."""
    text: str = _field(data, key, str, where=where)
    try:
        decode_state(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise ImportFormatError(f"{where}{key} is not a stored wfnb state ({exc})") from None
    return text


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_runs_are_new(db: Database, run_ids: dict[str, str]) -> None:
    """Refuse, before anything is written, runs whose ids the database already holds."""
    r = db.tables.runs
    for chunk in chunks(sorted(run_ids)):
        with db.transaction("check existing runs") as tx:
            taken = tx.execute(
                sa.select(r.c.run_id, r.c.session_id).where(r.c.run_id.in_(chunk))
            ).first()
        if taken is not None:
            session_id = run_ids[taken.run_id]
            raise ImportConflictError(
                session_id,
                f"run {taken.run_id!r} of session {session_id!r} is already in table "
                f"{r.name!r} (for session {taken.session_id!r}): nothing was imported",
                run_id=taken.run_id,
            )


def _insert(db: Database, record: _Record) -> bool:
    """Write a new session, its versions and its runs in one transaction; False if it exists."""
    t = db.tables
    try:
        with db.transaction("import the session", record.session_id, write=True) as tx:
            if tx.current_version(record.session_id) is not None:
                return False
            session, versions = _rows(record)
            tx.connection.execute(sa.insert(t.sessions), [session])
            _set_jsonb_copy(db, tx.connection, record)
            tx.connection.execute(sa.insert(t.versions), versions)
            if record.runs:
                tx.connection.execute(sa.insert(t.runs), record.runs)
            _steps.import_rows(tx, record.steps)
    except StorageError as exc:
        if isinstance(exc.__cause__, sa.exc.IntegrityError):  # created meanwhile (PostgreSQL)
            return False
        raise
    return True


def _rows(record: _Record) -> tuple[Row, list[Row]]:
    """The session row and its version rows, each version a full state."""
    session: Row = {
        "session_id": record.session_id, "workflow_name": record.workflow_name,
        "version": record.version, "state_bytes": len(record.state.encode()),
        "created_at": record.created_at, "updated_at": record.updated_at,
    }
    versions = []
    for entry in record.history:
        document = entry["state"].encode()
        versions.append({
            "session_id": record.session_id, "version": entry["version"], "base_version": None,
            "data": document, "tagged": may_hold_tags(document), "state_bytes": len(document),
            "source": entry["source"], "run_id": entry["run_id"],
            "created_at": entry["created_at"],
        })
    return session, versions


def _set_jsonb_copy(db: Database, conn: sa.Connection, record: _Record) -> None:
    """On PostgreSQL, the session row's queryable JSONB copy of the current state, as a save
    writes it (NULL when the state holds NUL characters, which JSONB refuses)."""
    if not db.statements.keeps_jsonb:
        return
    table = conn.dialect.identifier_preparer.quote(db.tables.sessions.name)
    copy = jsonb_copy(record.state)
    conn.execute(
        sa.text(f"UPDATE {table} SET state = CAST(:copy AS jsonb) WHERE session_id = :sid"),
        {"copy": copy, "sid": record.session_id},
    )


def _on_existing(sessions: Sessions, record: _Record, on_conflict: OnConflict) -> str:
    """Apply ``on_conflict`` to a session the database already holds; returns the outcome
    (a field of ImportReport)."""
    session_id = record.session_id
    if on_conflict == "skip":
        return "skipped"
    current = sessions.read(session_id)
    if on_conflict == "fail" or current is None:  # created, or deleted, since the check
        raise ImportConflictError(
            session_id,
            f"session {session_id!r} changed in table {sessions.db.name!r} during the import: "
            "nothing was written for it",
            stored_version=current.version if current is not None else 0,
        )
    if current.state_json == record.state:
        return "unchanged"
    sessions.save(session_id, decode_state(record.state), expected_version=current.version,
                  source="import")
    return "appended"


def _listed(ids: list[str], most: int = 5) -> str:
    """``'a', 'b' and 3 more`` for messages that name sessions."""
    shown = ", ".join(repr(i) for i in ids[:most])
    more = f" and {len(ids) - most} more" if len(ids) > most else ""
    return f"{noun(len(ids), 'session')} {shown}{more}"
