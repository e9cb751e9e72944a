"""The runs table: one row per run of a workflow on a session (status, input, output, timings,
tokens used, and who runs it).

A run is recorded ``running`` with its host, pid and process start (_process.py). A run left
``running`` by a process of this host that is gone (killed, crashed) becomes ``abandoned`` when
the session's next run starts and whenever its runs are listed; nothing else about it changes.
Runs recorded on another host are left as they are: whether that process lives cannot be known
from here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from wfnb.storage._database import Database, Transaction
from wfnb.storage._models import RunRecord, listed_time
from wfnb.storage._process import has_ended, host, process_start
from wfnb.storage._steps import ServedCall, insert_served


def record_start(
    db: Database, run_id: str, session_id: str, workflow_name: str | None, run_input: Any
) -> None:
    """Record that a run began (status ``running``, run by this process), and mark the
    session's runs whose process is gone ``abandoned``."""
    with db.transaction("record the run", session_id, write=True) as tx:
        _abandon(tx, _ended_runs(tx, session_id))
        pid = os.getpid()
        tx.execute(
            sa.insert(db.tables.runs).values(
                run_id=run_id, session_id=session_id, workflow_name=workflow_name,
                status="running", input=describe(run_input), started_at=time.time(),
                host=host(), pid=pid, process_start=process_start(pid),
            )
        )


def _ended_runs(tx: Transaction, session_id: str) -> list[str]:
    """The session's ``running`` runs whose process, on this host, is gone."""
    r = tx.db.tables.runs
    running = tx.execute(
        sa.select(r.c.run_id, r.c.pid, r.c.process_start).where(
            r.c.session_id == session_id, r.c.status == "running", r.c.host == host(),
            r.c.pid.is_not(None))
    )
    return [row.run_id for row in running if has_ended(row.pid, row.process_start)]


def _abandon(tx: Transaction, run_ids: list[str]) -> None:
    """Mark these runs ``abandoned`` if they are still ``running`` (only the status changes)."""
    r = tx.db.tables.runs
    if run_ids:
        tx.execute(sa.update(r).where(r.c.run_id.in_(run_ids), r.c.status == "running")
                   .values(status="abandoned"))


def record_end(
    db: Database,
    run_id: str,
    *,
    status: str,
    output: str | None,
    error: str | None,
    version: int | None,
    session_id: str | None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    served_steps: Sequence[ServedCall] = (),
) -> None:
    """Record how a run ended: completed, failed or interrupted (and the tokens it used), with,
    in the same transaction, its step calls served and not recorded yet."""
    r = db.tables.runs
    with db.transaction("record the run", session_id, write=True) as tx:
        tx.execute(
            sa.update(r).where(r.c.run_id == run_id).values(
                status=status, output=output, error=error, version=version,
                ended_at=time.time(), input_tokens=input_tokens, output_tokens=output_tokens,
            )
        )
        insert_served(tx, served_steps)


def runs(db: Database, session_id: str, *, limit: int | None) -> list[RunRecord]:
    """The session's runs, newest first (those of a process now gone marked ``abandoned``)."""
    r = db.tables.runs
    with db.transaction("read runs", session_id) as tx:
        ended = _ended_runs(tx, session_id)
    if ended:  # a write only when there is something to mark
        with db.transaction("mark abandoned runs", session_id, write=True) as tx:
            _abandon(tx, ended)
    query = (
        sa.select(r).where(r.c.session_id == session_id)
        .order_by(r.c.started_at.desc()).limit(limit)
    )
    with db.transaction("read runs", session_id) as tx:
        return [_run(row) for row in tx.execute(query)]


def _run(row: sa.Row[Any]) -> RunRecord:
    """A recorded run; a damaged row (input not JSON, a time out of range) is listed too, its
    input as the stored text, saying what is wrong with it."""
    damage: list[str] = []
    run_input: Any = row.input
    if run_input is not None:
        try:
            run_input = orjson.loads(run_input)
        except orjson.JSONDecodeError:
            damage.append("input is not JSON")
    return RunRecord(
        row.run_id, row.session_id, row.workflow_name, row.status, run_input, row.output,
        row.error, row.version, listed_time(row.started_at, "started_at", damage),
        listed_time(row.ended_at, "ended_at", damage) if row.ended_at is not None else None,
        row.input_tokens, row.output_tokens, damaged="; ".join(damage) or None,
    )


def describe(value: Any) -> str:
    """A run's input as JSON text; values JSON cannot hold are recorded by their repr."""
    try:
        return orjson.dumps(value, default=repr).decode()
    except TypeError:  # a cycle, an int beyond 64 bits, a lone surrogate: the whole repr, then
        return orjson.dumps(repr(value).encode(errors="backslashreplace").decode()).decode()
