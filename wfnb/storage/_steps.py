"""Steps: what each ``@step`` call of a run did, keyed so that a later run is served its output.

One row per call. A call whose body runs is recorded ``running`` when it starts and ``completed``
(with its output), ``failed`` (with the error) or ``stopped`` (its run asked a question inside
it: it runs again when the run goes on) when it ends; a call served from an earlier
record is recorded ``completed`` with ``served_from`` naming that record and no output of its own.
Outputs are stored as states are (exact JSON bytes, tagged types, no pickle):
``{"output": value}`` for a function, ``{"chunks": [...], "returned": value}`` for a generator
(see ``chunks_document`` in wfnb/_steps.py).

Lookup: the newest completed record whose body ran, with the same key, in the session (or in
every session of the workflow), that ended at or after ``since``. Two processes that execute the
same key at once both record it; the one that ended later is what the next lookup serves.

Retention: the newest completed record of each key is the cache and stays until
``clear_steps``; the other records (served, failed, superseded, or left ``running`` by a kill)
are dropped with the history they belong to: a prune drops those that started before the oldest
version it keeps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from wfnb._errors import UnstorableStateError
from wfnb.storage._codec import decode_state, encode_state
from wfnb.storage._database import Database, Transaction
from wfnb.storage._engine import log
from wfnb.storage._models import StepRecord, timestamp
from wfnb.storage._sql import STEP_COLUMNS

Scope = Literal["session", "workflow"]
SCOPES: tuple[Scope, ...] = ("session", "workflow")
EXPORTED = tuple(column for column in STEP_COLUMNS if column not in ("session_id", "tagged"))
STATUSES = ("running", "completed", "failed", "stopped")


def encode_output(name: str, document: dict[str, Any]) -> tuple[bytes, bool]:
    """A step's output document as stored bytes (and whether it holds tagged types).

    UnstorableStateError names the step and the path, e.g. ``step 'search' output[0]["at"]``.
    """
    try:
        encoded = encode_state(document, root="")
    except UnstorableStateError as refused:
        raise UnstorableStateError(
            f"step {name!r} {_shown_path(refused.path)}", refused.reason
        ) from None
    return encoded.document, encoded.tagged


def _shown_path(path: str) -> str:
    """``output[0]`` from the codec's ``["output"][0]``."""
    for field in ("output", "chunks", "returned"):
        prefix = f'["{field}"]'
        if path.startswith(prefix):
            return field + path[len(prefix):]
    return path


class Served(NamedTuple):
    """A call served from an earlier record: which record, and its output document."""

    step_id: str
    document: dict[str, Any]


class StepCall(NamedTuple):
    """The identity of one step call, as recorded."""

    step_id: str
    session_id: str
    workflow_name: str | None
    run_id: str | None
    key: str
    name: str


class ServedCall(NamedTuple):
    """A call served (at ``at``) from the record ``served_from``, waiting to be recorded."""

    call: StepCall
    served_from: str
    at: float


class StepLog:
    """The steps table of one table family: lookups and records on the hot path, listing,
    clearing, retention and transfer rows; every statement in a ``db.transaction``."""

    def __init__(self, db: Database) -> None:
        self.db, self.table = db, db.tables.steps

    # -- the hot path: one lookup per call, one write when a body starts and one when it ends --

    def find(
        self,
        key: str,
        *,
        session_id: str,
        workflow_name: str | None,
        scope: Scope = "session",
        since: float = 0.0,
    ) -> Served | None:
        """The record a call with ``key`` is served from, or None (see the module docstring)."""
        if scope == "workflow" and workflow_name is None:
            scope = "session"
        values = {"key": key, "since": since, "sid": session_id, "wf": workflow_name}
        with self.db.transaction("look up the step", session_id) as tx:
            row = tx.servable_step(scope, values)
        if row is None:
            return None
        try:
            return Served(row.step_id, decode_state(bytes(row.output), bool(row.tagged)))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("session %r: step record %s cannot be read (%s); the step runs again",
                        session_id, row.step_id, exc)
            return None

    def begin(self, call: StepCall, served: Sequence[ServedCall] = ()) -> None:
        """Record ``call`` as running, with the ``served`` calls waiting to be written."""
        self.record_served([*served, call])

    def record_served(self, served: Sequence[ServedCall | StepCall]) -> None:
        """Write the records of calls served from earlier records (and of a call starting)."""
        if not served:
            return
        rows = [_served_row(done) if isinstance(done, ServedCall) else _row(done, time.time())
                for done in served]
        with self.db.transaction("record the steps", rows[0]["session_id"], write=True) as tx:
            tx.insert_steps(rows)

    def finish(
        self,
        call: StepCall,
        *,
        output: bytes | None = None,
        tagged: bool = False,
        error: str | None = None,
        status: str = "failed",
    ) -> None:
        """Record how an executed call ended: completed with ``output``, or ``status`` (failed,
        or stopped by a question its run asked) with ``error``."""
        values = {"step_id": call.step_id, "status": status if error else "completed",
                  "output": output, "tagged": tagged, "error": error, "ended_at": time.time()}
        with self.db.transaction("record the step", call.session_id, write=True) as tx:
            tx.finish_step(values)

    # -- reading and housekeeping ----------------------------------------------------------------

    def records(self, session_id: str, run_id: str | None = None) -> list[StepRecord]:
        """The session's step records (one run's, with ``run_id``), oldest first."""
        s = self.table
        source = s.alias("source")
        query = (
            sa.select(s, source.c.output.label("source_output"),
                      source.c.tagged.label("source_tagged"))
            .select_from(s.outerjoin(source, s.c.served_from == source.c.step_id))
            .where(s.c.session_id == session_id)
            .order_by(s.c.started_at, s.c.step_id)
        )
        if run_id is not None:
            query = query.where(s.c.run_id == run_id)
        with self.db.transaction("read steps", session_id) as tx:
            return [_record(row) for row in tx.execute(query)]

    def count(self, session_id: str, run_id: str) -> int:
        """How many step records one run has (a continued run numbers its calls on from it)."""
        s = self.table
        query = sa.select(sa.func.count()).where(s.c.session_id == session_id,
                                                 s.c.run_id == run_id)
        with self.db.transaction("count steps", session_id) as tx:
            return int(tx.execute(query).scalar() or 0)

    def clear(self, session_id: str, name: str | None = None) -> int:
        """Delete the session's step records (of the step ``name``: its full name, or the part
        after the last dot); returns how many."""
        s = self.table
        query = sa.delete(s).where(s.c.session_id == session_id)
        if name is not None:
            query = query.where(sa.or_(s.c.name == name,
                                       s.c.name.endswith("." + name, autoescape=True)))
        with self.db.transaction("clear steps", session_id, write=True) as tx:
            return int(tx.execute(query).rowcount)


def insert_served(tx: Transaction, served: Sequence[ServedCall]) -> None:
    """Inside the caller's transaction: the records of calls served from earlier records."""
    if served:
        tx.insert_steps([_served_row(done) for done in served])


def prune(tx: Transaction, session_id: str) -> int:
    """Inside the caller's transaction: drop the session's records that started before its
    oldest version kept, except the newest completed record of each key (the cache)."""
    s, v = tx.db.tables.steps, tx.db.tables.versions
    before = tx.execute(
        sa.select(sa.func.min(v.c.created_at)).where(v.c.session_id == session_id)
    ).scalar()
    if before is None:
        return 0
    newer = s.alias("newer")
    superseded = sa.exists().where(
        newer.c.session_id == s.c.session_id, newer.c.key == s.c.key,
        newer.c.status == "completed", newer.c.served_from.is_(None),
        sa.or_(newer.c.ended_at > s.c.ended_at,
               sa.and_(newer.c.ended_at == s.c.ended_at, newer.c.step_id > s.c.step_id)),
    )
    cache = sa.and_(s.c.status == "completed", s.c.served_from.is_(None), ~superseded)
    query = sa.delete(s).where(s.c.session_id == session_id, s.c.started_at < before,
                               sa.not_(cache))
    return int(tx.execute(query).rowcount)


def export_rows(tx: Transaction, session_id: str) -> list[dict[str, Any]]:
    """The session's records as exported: every column but the session id and ``tagged``
    (an import sees tags in the output), the output as its JSON text."""
    s = tx.db.tables.steps
    rows = tx.execute(
        sa.select(s).where(s.c.session_id == session_id).order_by(s.c.started_at, s.c.step_id)
    )
    return [
        {column: (bytes(row.output).decode() if column == "output" and row.output is not None
                  else row._mapping[column])
         for column in EXPORTED}
        for row in rows
    ]


def import_rows(tx: Transaction, rows: list[dict[str, Any]]) -> int:
    """Inside the caller's transaction: insert the records whose ids are not stored yet."""
    s = tx.db.tables.steps
    if not rows:
        return 0
    ids = [row["step_id"] for row in rows]
    taken = set(tx.execute(sa.select(s.c.step_id).where(s.c.step_id.in_(ids))).scalars())
    new = [row for row in rows if row["step_id"] not in taken]
    if new:
        tx.execute(sa.insert(s).values(new))
    return len(new)


def _row(call: StepCall, at: float, *, served_from: str | None = None) -> dict[str, Any]:
    """A new record: ``running`` from ``at``, or (served) ``completed`` at ``at``."""
    served = served_from is not None
    return {
        "step_id": call.step_id, "session_id": call.session_id,
        "workflow_name": call.workflow_name, "run_id": call.run_id, "key": call.key,
        "name": call.name, "status": "completed" if served else "running",
        "served_from": served_from, "output": None, "tagged": False, "error": None,
        "started_at": at, "ended_at": at if served else None,
    }


def _served_row(served: ServedCall) -> dict[str, Any]:
    return _row(served.call, served.at, served_from=served.served_from)


def _record(row: sa.Row[Any]) -> StepRecord:
    """A StepRecord from a row (a served one with the output of the record it came from)."""
    output, tagged = row.output, row.tagged
    if row.served_from is not None:
        output, tagged = row.source_output, row.source_tagged
    document = None
    if output is not None:
        try:
            document = decode_state(bytes(output), bool(tagged))
        except (ValueError, KeyError, TypeError):
            document = None
    value = document.get("output") if document is not None and "output" in document else document
    return StepRecord(
        row.step_id, row.session_id, row.workflow_name, row.run_id, row.key, row.name,
        row.status, row.served_from is not None, row.served_from, value, row.error,
        timestamp(row.started_at),
        timestamp(row.ended_at) if row.ended_at is not None else None,
    )
