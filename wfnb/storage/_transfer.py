"""Sessions out of a database and into another, as JSON lines.

One line per session: its current state, its whole stored history (every version as a full state,
with its number, source, run id, time and, for a fork's first version, the session and version
it was forked from: optional on import), its runs and its step records (``steps``: optional
on import, so files written before steps existed still import). Every state is the exact JSON
text wfnb stored (tagged types stay tagged) and every time the stored float, so an export from
SQLite imports into PostgreSQL, or back, unchanged. An import reads the file once, checks each
line against what wfnb and the target database hold, writes the whole file in one transaction
(all or nothing), stores history as deltas the way saves do, and never overwrites a session
silently: see :func:`import_sessions`.
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
from wfnb.storage import _steps, _watch
from wfnb.storage._codec import MAX_DEPTH, decode_state, may_hold_tags
from wfnb.storage._database import Database, Transaction, jsonb_copy
from wfnb.storage._listing import all_session_ids, chunks, existing_sessions
from wfnb.storage._models import ImportReport, timestamp
from wfnb.storage._search import check_text
from wfnb.storage._sessions import Sessions, check_session_id, stored_rows
from wfnb.storage._sql import SessionRow

FORMAT = 1  # the "wfnb" field of every exported line; a newer one is refused, not guessed at
OnConflict = Literal["fail", "skip", "new-version"]
ON_CONFLICT: tuple[OnConflict, ...] = ("fail", "skip", "new-version")
Progress = Callable[[], None]  # called once per session done

# a run as exported: its row without the session id
_RUN_FIELDS = ("run_id", "workflow_name", "status", "input", "output", "error", "version",
               "started_at", "ended_at", "input_tokens", "output_tokens", "question", "answers")
# where a fork's first version came from (None for other versions; absent from older exports)
_ORIGIN = ("forked_from_session", "forked_from_version")
_ATTEMPTS = 5  # reads of a session that keeps being saved while it is exported
MAX_LINE = 2**30  # bytes in one line of an import file, at most (a session with its history)
MAX_INTEGER = 2**31 - 1  # PostgreSQL's INTEGER; SQLite's is wider
MAX_RUN_ID = 1024  # bytes: a run id is a primary key, and PostgreSQL's index entries are small
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
                      t.versions.c.created_at, *(t.versions.c[name] for name in _ORIGIN))
            .where(t.versions.c.session_id == session_id).order_by(t.versions.c.version)
        ).all()
        runs = tx.execute(
            sa.select(t.runs).where(t.runs.c.session_id == session_id)
            .order_by(t.runs.c.started_at, t.runs.c.run_id)
        ).all()
        steps = _steps.export_rows(tx, session_id)
    history = [
        {"version": v.version, "source": v.source, "run_id": v.run_id,
         "created_at": v.created_at, "state": _state_json(sessions, session_id, v.version),
         **{name: v._mapping[name] for name in _ORIGIN}}
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
    history: list[Row]  # version, source, run_id, created_at, state, and the _ORIGIN fields
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
    """Import an export file, all or nothing: its new sessions (rows, versions, runs) in one
    transaction.

    The file is read once, line by line: each line is checked against what wfnb and the target
    database can hold before it is written, and a bad line (ImportFormatError naming the line
    and the field) or, with ``on_conflict="fail"``, a session id that already exists
    (ImportConflictError) rolls the whole import back. ``"skip"`` leaves existing sessions
    alone; ``"new-version"`` saves the file's current state as a new version of each existing
    session once the new ones are committed (source ``import``; a concurrent writer's changes
    are merged or refused as by any save; the file's history, runs and steps of that session
    are not imported). A run id that exists already (for a session being created) is a
    conflict in every mode; step records already stored are left out. History is stored as
    saves store it: deltas on the version before.
    """
    check_on_conflict(on_conflict)
    outcomes: dict[str, list[str]] = {field.name: [] for field in dataclasses.fields(ImportReport)}
    existing: list[_Record] = []
    try:
        with db.transaction("import the sessions", write=True) as tx:
            for where, record in _records(path):
                if tx.current_version(record.session_id) is None:
                    _check_runs_are_new(tx, record, where)
                    _insert(tx, record)
                    outcomes["imported"].append(record.session_id)
                    if progress is not None:
                        progress()
                elif on_conflict == "fail":
                    raise ImportConflictError(
                        record.session_id,
                        f"{where}: session {record.session_id!r} is already in table "
                        f"{db.name!r}: nothing was imported",
                        stored_version=tx.current_version(record.session_id) or 0,
                    )
                else:
                    existing.append(record)
            if outcomes["imported"]:  # their own times do not move the change mark: this does
                _watch.note_import(tx)
    except StorageError as exc:
        if isinstance(exc.__cause__, sa.exc.IntegrityError):  # written meanwhile (PostgreSQL)
            raise ImportConflictError(
                "", f"a session or run of {Path(path).name} was written to table {db.name!r} "
                "during the import: nothing was imported (run it again)",
            ) from exc
        raise
    for record in existing:
        outcomes[_on_existing(sessions, record, on_conflict)].append(record.session_id)
        if progress is not None:
            progress()
    return ImportReport(**outcomes)


def check_export_file(path: str | Path) -> int:
    """Check every line of an export file (ImportFormatError naming the first bad one) without
    touching a database; returns how many sessions it holds."""
    return sum(1 for _ in _records(path))


def _records(path: str | Path) -> Iterator[tuple[str, _Record]]:
    """The file's sessions, each validated, with where it is ("file, line N"); ImportFormatError
    names the first bad line and field. Lines longer than ``MAX_LINE`` are refused unread."""
    seen: set[str] = set()
    name = Path(path).name
    with open(path, "rb") as lines:
        number = 0
        while line := lines.readline(MAX_LINE + 1):
            number += 1
            where = f"{name}, line {number}"
            if len(line) > MAX_LINE:
                raise ImportFormatError(f"{where}: longer than {MAX_LINE} bytes")
            if not line.strip():
                continue
            try:
                record = _parse(line)
                if record.session_id in seen:
                    raise ImportFormatError(f"session {record.session_id!r} appears twice")
            except (ImportFormatError, InvalidNameError) as exc:
                raise ImportFormatError(f"{where}: {exc}") from None
            seen.add(record.session_id)
            yield where, record


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
    version = _integer(data, "version", 1)
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
        session_id, _text(data, "workflow_name", nullable=True), version, state,
        _time(data, "created_at"), _time(data, "updated_at"), versions, runs, steps,
    )


def _history_entry(entry: object, index: int) -> Row:
    where = f"history[{index}]."
    item = _mapping(entry, f"history[{index}]")
    origin_session = (_text(item, "forked_from_session", nullable=True, where=where)
                      if "forked_from_session" in item else None)
    origin_version = (_integer(item, "forked_from_version", 1, where, nullable=True)
                      if "forked_from_version" in item else None)
    if (origin_session is None) != (origin_version is None):
        raise ImportFormatError(f"{where}forked_from_session and forked_from_version go "
                                "together (both set, or both null)")
    return {
        "version": _integer(item, "version", 1, where),
        "source": _text(item, "source", where=where),
        "run_id": _text(item, "run_id", nullable=True, where=where),
        "created_at": _time(item, "created_at", where), "state": _state(item, "state", where),
        "forked_from_session": origin_session, "forked_from_version": origin_version,
    }


def _step_row(session_id: str, entry: object, index: int) -> Row:
    where = f"steps[{index}]."
    item = _mapping(entry, f"steps[{index}]")
    row: Row = {"session_id": session_id}
    for column in ("step_id", "key", "name", "status"):
        row[column] = _text(item, column, where=where)
    for column in ("workflow_name", "run_id", "served_from", "error"):
        row[column] = _text(item, column, nullable=True, where=where)
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
    run_id: str = _text(item, "run_id", where=where)
    if not run_id or len(run_id.encode()) > MAX_RUN_ID:
        raise ImportFormatError(
            f"{where}run_id should be 1 to {MAX_RUN_ID} bytes, not {len(run_id.encode())}"
        )
    ended_at = item.get("ended_at")
    return {
        "run_id": run_id, "session_id": session_id,
        "workflow_name": _text(item, "workflow_name", nullable=True, where=where),
        "status": _text(item, "status", where=where),
        "input": _json_text(item, "input", where),
        **{recorded: _json_text(item, recorded, where) if recorded in item else None
           for recorded in ("question", "answers")},  # absent from older exports
        "output": _text(item, "output", nullable=True, where=where),
        "error": _text(item, "error", nullable=True, where=where),
        "version": _integer(item, "version", 1, where, nullable=True),
        "started_at": _time(item, "started_at", where),
        "ended_at": None if ended_at is None else _time(item, "ended_at", where),
        **{tokens: _integer(item, tokens, 0, where, nullable=True) if tokens in item else None
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


def _text(data: dict[str, Any], key: str, *, nullable: bool = False, where: str = "") -> Any:
    """A text field every backend can hold: no NUL (PostgreSQL refuses it), no lone
    surrogate."""
    value = _field(data, key, str, nullable=nullable, where=where)
    if value is not None:
        try:
            check_text(value, f"{where}{key}")
        except InvalidNameError as exc:
            raise ImportFormatError(str(exc).replace(repr(value), _short(value))) from None
    return value


def _integer(
    data: dict[str, Any], key: str, least: int, where: str = "", *, nullable: bool = False
) -> Any:
    """An integer column's value, within what every backend's INTEGER holds."""
    value = _field(data, key, int, nullable=nullable, where=where)
    if value is not None and not least <= value <= MAX_INTEGER:
        raise ImportFormatError(f"{where}{key} should be {least} to {MAX_INTEGER}, not {value}")
    return value


def _time(data: dict[str, Any], key: str, where: str = "") -> float:
    """A stored time: seconds since the epoch, as the float wfnb stores, within what a datetime
    holds (listings turn every time into one)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ImportFormatError(f"{where}{key} should be seconds since 1970, not {_kind(value)}")
    try:
        timestamp(float(value))
    except (OverflowError, ValueError, OSError):
        raise ImportFormatError(
            f"{where}{key} = {value!r} is not a time wfnb can show (years 1 to 9999)"
        ) from None
    return float(value)


def _state(data: dict[str, Any], key: str, where: str = "") -> str:
    """A state as stored JSON text, checked to decode as wfnb wrote it and to nest no deeper
    than a save allows (a deeper one could be neither shown nor saved again)."""
    text: str = _field(data, key, str, where=where)
    try:
        decode_state(text)
        orjson.dumps(orjson.loads(text))  # orjson writes MAX_DEPTH levels at most
    except orjson.JSONEncodeError:
        raise ImportFormatError(
            f"{where}{key} nests deeper than {MAX_DEPTH} levels, more than a save stores"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ImportFormatError(f"{where}{key} is not a stored wfnb state ({exc})") from None
    return text


def _json_text(item: dict[str, Any], key: str, where: str) -> str | None:
    """A run's input, question or answers: JSON text (or null), as runs() reads it."""
    text: str | None = _text(item, key, nullable=True, where=where)
    if text is not None:
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ImportFormatError(f"{where}{key} is not JSON text ({exc})") from None
    return text


def _short(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) < 80 else shown[:60] + "..."


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_runs_are_new(tx: Transaction, record: _Record, where: str) -> None:
    """Refuse runs whose ids the database (or an earlier line of the file) already holds."""
    r = tx.db.tables.runs
    for chunk in chunks(sorted(run["run_id"] for run in record.runs)):
        taken = tx.execute(
            sa.select(r.c.run_id, r.c.session_id).where(r.c.run_id.in_(chunk))
        ).first()
        if taken is not None:
            raise ImportConflictError(
                record.session_id,
                f"{where}: run {taken.run_id!r} of session {record.session_id!r} is already in "
                f"table {r.name!r} (for session {taken.session_id!r}): nothing was imported",
                run_id=taken.run_id,
            )


def _insert(tx: Transaction, record: _Record) -> None:
    """Write a new session, its versions (as deltas where a save would), its runs and steps."""
    t = tx.db.tables
    session, versions = _rows(record)
    tx.connection.execute(sa.insert(t.sessions), [session])
    _set_jsonb_copy(tx, record)
    tx.connection.execute(sa.insert(t.versions), versions)
    if record.runs:
        tx.connection.execute(sa.insert(t.runs), record.runs)
    _steps.import_rows(tx, record.steps)


def _rows(record: _Record) -> tuple[Row, list[Row]]:
    """The session row and its version rows, stored as saves store them."""
    session: Row = {
        "session_id": record.session_id, "workflow_name": record.workflow_name,
        "version": record.version, "state_bytes": len(record.state.encode()),
        "created_at": record.created_at, "updated_at": record.updated_at,
    }
    documents = [entry["state"].encode() for entry in record.history]
    stored = stored_rows((entry["version"], document)
                         for entry, document in zip(record.history, documents, strict=True))
    versions = [
        {
            "session_id": record.session_id, "version": entry["version"], "base_version": base,
            "data": data, "tagged": may_hold_tags(document), "state_bytes": len(document),
            "source": entry["source"], "run_id": entry["run_id"],
            "created_at": entry["created_at"], **{name: entry[name] for name in _ORIGIN},
        }
        for entry, document, (base, data) in zip(record.history, documents, stored, strict=True)
    ]
    return session, versions


def _set_jsonb_copy(tx: Transaction, record: _Record) -> None:
    """On PostgreSQL, the session row's queryable JSONB copy of the current state, as a save
    writes it (NULL when the state holds NUL characters, which JSONB refuses)."""
    db = tx.db
    if not db.statements.keeps_jsonb:
        return
    table = tx.connection.dialect.identifier_preparer.quote(db.tables.sessions.name)
    tx.connection.execute(
        sa.text(f"UPDATE {table} SET state = CAST(:copy AS jsonb) WHERE session_id = :sid"),
        {"copy": jsonb_copy(record.state), "sid": record.session_id},
    )


def _on_existing(sessions: Sessions, record: _Record, on_conflict: OnConflict) -> str:
    """Apply ``on_conflict`` to a session the database already holds; returns the outcome
    (a field of ImportReport)."""
    session_id = record.session_id
    if on_conflict == "skip":
        return "skipped"
    current = sessions.read(session_id)
    if current is None:  # deleted since the check
        raise ImportConflictError(
            session_id,
            f"session {session_id!r} was deleted from table {sessions.db.name!r} during the "
            "import: nothing was written for it",
            stored_version=0,
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
