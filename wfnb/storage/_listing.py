"""Finding sessions without reading their states: pages, counts, filters, lookups of ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from wfnb.storage._database import Database
from wfnb.storage._models import PageCursor, SessionSummary, listed_time
from wfnb.storage._search import check_text, contains, narrowed

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
        if db.search_table is not None:
            found.extend(narrowed(s, db.search_table, search))
    if workflow_name is not None:
        found.append(s.c.workflow_name == check_text(workflow_name, "workflow_name"))
    return found


Edge = PageCursor | SessionSummary


def list_sessions(
    db: Database, *, limit: int, offset: int, search: str | None, workflow_name: str | None,
    after: Edge | None = None, before: Edge | None = None,
) -> list[SessionSummary]:
    """Sessions newest first (ties by id), without their states.

    ``after=`` a row or its cursor: the page that follows it; ``before=``: the page that
    precedes it. Either is a keyset seek on the ``updated_at`` index, as fast on page 50,000
    as on page 1, and stable when rows are saved between pages; ``offset`` counts rows past.
    """
    s = db.tables.sessions
    where = filters(db, search, workflow_name)
    newest_first = (s.c.updated_at.desc(), s.c.session_id.asc())
    order = newest_first
    if after is not None:
        edge = _cursor(after)
        where += [s.c.updated_at <= edge.updated_at,  # a range the index seeks to
                  sa.or_(s.c.updated_at < edge.updated_at, s.c.session_id > edge.session_id)]
    if before is not None:
        edge = _cursor(before)
        where += [s.c.updated_at >= edge.updated_at,
                  sa.or_(s.c.updated_at > edge.updated_at, s.c.session_id < edge.session_id)]
        if after is None:  # read backwards from the edge, then put the page in order
            order = (s.c.updated_at.asc(), s.c.session_id.desc())
    query = (
        sa.select(s.c.session_id, s.c.workflow_name, s.c.version, s.c.state_bytes,
                  s.c.created_at, s.c.updated_at)
        .where(*where).order_by(*order).limit(limit).offset(offset)
    )
    with db.transaction("list sessions") as tx:
        rows = [_summary(r) for r in tx.execute(query)]
    return rows if order is newest_first else rows[::-1]


def _summary(row: sa.Row[Any]) -> SessionSummary:
    """A listed session; a damaged row is listed too, saying what is wrong with it."""
    damage: list[str] = []
    created_at = listed_time(row.created_at, "created_at", damage)
    updated_at = listed_time(row.updated_at, "updated_at", damage)
    return SessionSummary(row.session_id, row.workflow_name, row.version, row.state_bytes,
                          created_at, updated_at, damaged="; ".join(damage) or None,
                          cursor=PageCursor(row.updated_at, row.session_id))


def _cursor(edge: Edge) -> PageCursor:
    if isinstance(edge, PageCursor):
        return edge
    if edge.cursor is None:
        raise ValueError(f"session {edge.session_id!r} was not listed by list_sessions: "
                         "page from a listed row or a PageCursor")
    return edge.cursor


def count_sessions(
    db: Database, *, search: str | None, workflow_name: str | None, limit: int | None = None
) -> int:
    """How many sessions ``list_sessions`` would page through with these filters; with
    ``limit``, counting stops there (a count of a million rows is itself a scan)."""
    s = db.tables.sessions
    matching = sa.select(s.c.session_id).where(*filters(db, search, workflow_name))
    if limit is not None:
        matching = matching.limit(limit)
    query = sa.select(sa.func.count()).select_from(matching.subquery())
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
