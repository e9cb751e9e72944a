"""Finding sessions without reading their states: pages, counts, filters, lookups of ids."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from wfnb.storage._database import Database
from wfnb.storage._models import PageCursor, SessionSummary, listed_time
from wfnb.storage._search import check_text, contains, narrowed, trigram_served

PAGE = 500  # sessions per query when paging, ids per IN (...) when looking up


def filters(
    db: Database, search: str | None, workflow_name: str | None
) -> list[sa.ColumnElement[bool]]:
    """``search``: part of the session id (ASCII letters in either case, every other character
    exactly: see _search.py), through the trigram index where it can serve it;
    ``workflow_name``: exactly."""
    s = db.tables.sessions
    found: list[sa.ColumnElement[bool]] = []
    if search:
        fts = db.search_table
        found.append(narrowed(s, fts, search) if fts is not None and trigram_served(search)
                     else contains(s.c.session_id, search, db.dialect))
    if workflow_name is not None:
        found.append(s.c.workflow_name == check_text(workflow_name, "workflow_name"))
    return found


Edge = PageCursor | SessionSummary
RECENT = 5_000  # rows a search looks through, in page order, before it asks the index


def list_sessions(
    db: Database, *, limit: int, offset: int, search: str | None, workflow_name: str | None,
    after: Edge | None = None, before: Edge | None = None,
) -> list[SessionSummary]:
    """Sessions newest first (ties by id), without their states.

    ``after=`` a row or its cursor: the page that follows it; ``before=``: the page that
    precedes it. Either is a keyset seek on the ``updated_at`` index, as fast on page 50,000
    as on page 1, and stable when rows are saved between pages; ``offset`` counts rows past.

    A search first looks through the next RECENT rows in page order (cheap, and enough when
    matches are common among recent sessions); when they hold less than the page, it takes
    every match through the trigram index, then the newest (cheap when matches are rare).
    """
    s = db.tables.sessions
    where = filters(db, None, workflow_name)
    backwards = before is not None and after is None  # read back from the edge, then reverse
    if after is not None:
        edge = _cursor(after)
        where += [s.c.updated_at <= edge.updated_at,  # a range the index seeks to
                  sa.or_(s.c.updated_at < edge.updated_at, s.c.session_id > edge.session_id)]
    if before is not None:
        edge = _cursor(before)
        where += [s.c.updated_at >= edge.updated_at,
                  sa.or_(s.c.updated_at > edge.updated_at, s.c.session_id < edge.session_id)]
    listed = sa.select(s.c.session_id, s.c.workflow_name, s.c.version, s.c.state_bytes,
                       s.c.created_at, s.c.updated_at).where(*where)

    def page_of(query: sa.Select[Any]) -> Sequence[sa.Row[Any]]:
        ordered = query.order_by(*_order(query.selected_columns, backwards))
        return tx.execute(ordered.limit(limit).offset(offset)).all()

    with db.transaction("list sessions") as tx:
        if not search:
            rows = page_of(listed)
        else:
            recent = listed.order_by(*_order(s.c, backwards)).limit(RECENT).subquery("recent")
            rows = page_of(sa.select(recent).where(
                contains(recent.c.session_id, search, db.dialect)))
            if len(rows) < limit:  # matches are rare here: every one, through the index
                matches = (listed.where(*filters(db, search, None)).cte("matches")
                           # PostgreSQL would walk the updated_at index when matches are many
                           .prefix_with("MATERIALIZED", dialect="postgresql"))
                rows = page_of(sa.select(matches))
        page = [_summary(r) for r in rows]
    return page[::-1] if backwards else page


def _order(
    columns: sa.ColumnCollection[str, Any], backwards: bool
) -> list[sa.UnaryExpression[Any]]:
    """Newest first, ties by id (``backwards``: the reverse, to read the page before an edge)."""
    if backwards:
        return [columns.updated_at.asc(), columns.session_id.desc()]
    return [columns.updated_at.desc(), columns.session_id.asc()]


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
    ``limit``, counting stops there (a count of a million rows is itself a scan). A search too
    short for the trigram index counts newest first, where the first page looks."""
    s = db.tables.sessions
    matching = sa.select(s.c.session_id).where(*filters(db, search, workflow_name))
    if limit is not None:
        matching = matching.limit(limit)
        if search and not trigram_served(search):
            matching = matching.order_by(*_order(s.c, backwards=False))
    query = sa.select(sa.func.count()).select_from(matching.subquery())
    with db.transaction("count sessions") as tx:
        return int(tx.execute(query).scalar_one())


def workflow_names(db: Database) -> list[str]:
    """The workflow names sessions were saved under, sorted: a loose index scan (one seek in
    the ``(workflow_name, updated_at)`` index per name), not a DISTINCT over every row."""
    s = db.tables.sessions
    first = sa.select(sa.func.min(s.c.workflow_name).label("name"))
    names = first.cte("names", recursive=True)
    following = (sa.select(sa.func.min(s.c.workflow_name))
                 .where(s.c.workflow_name > names.c.name).scalar_subquery())
    names = names.union_all(sa.select(following).where(names.c.name.is_not(None)))
    query = sa.select(names.c.name).where(names.c.name.is_not(None))
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
