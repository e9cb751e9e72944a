"""Finding sessions without reading their states: pages, counts, filters, lookups of ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from wfnb.storage._database import Database
from wfnb.storage._models import SessionSummary, listed_time
from wfnb.storage._search import check_text, contains

PAGE = 500  # sessions per query when paging, ids per IN (...) when looking up


def filters(
    db: Database, search: str | None, workflow_name: str | None
) -> list[sa.ColumnElement[bool]]:
    """``search``: part of the session id (ASCII letters in either case, every other character
    exactly: see _search.py); ``workflow_name``: exactly."""
    s = db.tables.sessions
    found: list[sa.ColumnElement[bool]] = []
    if search:
        found.append(contains(s.c.session_id, search, db.dialect))
    if workflow_name is not None:
        found.append(s.c.workflow_name == check_text(workflow_name, "workflow_name"))
    return found


def list_sessions(
    db: Database, *, limit: int, offset: int, search: str | None, workflow_name: str | None
) -> list[SessionSummary]:
    """Sessions newest first, without their states."""
    s = db.tables.sessions
    query = (
        sa.select(s.c.session_id, s.c.workflow_name, s.c.version, s.c.state_bytes,
                  s.c.created_at, s.c.updated_at)
        .where(*filters(db, search, workflow_name))
        .order_by(s.c.updated_at.desc(), s.c.session_id)
        .limit(limit)
        .offset(offset)
    )
    with db.transaction("list sessions") as tx:
        return [_summary(r) for r in tx.execute(query)]


def _summary(row: sa.Row[Any]) -> SessionSummary:
    """A listed session; a damaged row is listed too, saying what is wrong with it."""
    damage: list[str] = []
    created_at = listed_time(row.created_at, "created_at", damage)
    updated_at = listed_time(row.updated_at, "updated_at", damage)
    return SessionSummary(row.session_id, row.workflow_name, row.version, row.state_bytes,
                          created_at, updated_at, damaged="; ".join(damage) or None)


def count_sessions(db: Database, *, search: str | None, workflow_name: str | None) -> int:
    """How many sessions ``list_sessions`` would page through with these filters."""
    s = db.tables.sessions
    query = sa.select(sa.func.count()).select_from(s).where(*filters(db, search, workflow_name))
    with db.transaction("count sessions") as tx:
        return int(tx.execute(query).scalar_one())


def workflow_names(db: Database) -> list[str]:
    """The workflow names sessions were saved under, sorted."""
    s = db.tables.sessions
    query = (
        sa.select(s.c.workflow_name).where(s.c.workflow_name.is_not(None)).distinct()
        .order_by(s.c.workflow_name)
    )
    with db.transaction("list workflow names") as tx:
        return [str(name) for name in tx.execute(query).scalars()]


def pages(
    db: Database,
    columns: Sequence[sa.ColumnElement[Any]],
    where: Sequence[sa.ColumnElement[bool]],
    size: int = PAGE,
) -> Iterator[list[sa.Row[Any]]]:
    """Session rows in id order, ``size`` at a time (keyset paging: stable under inserts)."""
    s = db.tables.sessions
    after: str | None = None
    while True:
        query = sa.select(s.c.session_id, *columns).where(*where)
        if after is not None:
            query = query.where(s.c.session_id > after)
        with db.transaction("list sessions") as tx:
            rows = tx.execute(query.order_by(s.c.session_id).limit(size)).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1].session_id


def all_session_ids(db: Database) -> Iterator[str]:
    """Every session id, in id order, a page at a time."""
    for rows in pages(db, [], []):
        yield from (row.session_id for row in rows)


def existing_sessions(db: Database, session_ids: Iterable[str]) -> dict[str, int]:
    """Which of these sessions exist, with their current versions."""
    s = db.tables.sessions
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(session_ids))):
        with db.transaction("look up sessions") as tx:
            rows = tx.execute(
                sa.select(s.c.session_id, s.c.version).where(s.c.session_id.in_(chunk))
            )
            found.update({row.session_id: row.version for row in rows})
    return found


def chunks(items: list[str]) -> Iterator[list[str]]:
    """``items`` a page at a time (for ``IN (...)`` lists)."""
    for start in range(0, len(items), PAGE):
        yield items[start : start + PAGE]
