"""Noticing that another writer changed the sessions table, with one cheap query.

The mark is three index lookups, whatever the number of sessions: the latest ``updated_at``
(every save and restore moves it), the latest ``deleted_at`` of the ``_deleted`` table (every
delete writes a row there; schema 9 indexes it) and when sessions were last imported (an
import keeps the sessions' own times, so it notes itself in ``_meta``). Two marks differ
whenever sessions were written since; equal marks mean nothing a session list shows changed.
Run records and pruned history are not part of the mark. A count of the sessions would also
see every change, but is a scan: 80 ms a tick at a million sessions on PostgreSQL.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from wfnb.storage._database import Database, Transaction
from wfnb.storage._models import ChangeMark

IMPORTED = "last_import"  # the _meta key imports note their time under


def last_change(db: Database) -> ChangeMark:
    """The table's mark now: compare it with an earlier one to know whether to re-read."""
    t = db.tables
    query = sa.select(
        sa.select(sa.func.max(t.sessions.c.updated_at)).scalar_subquery().label("saved"),
        sa.select(sa.func.max(t.deleted.c.deleted_at)).scalar_subquery().label("deleted"),
        sa.select(t.meta.c.value).where(t.meta.c.key == IMPORTED).scalar_subquery()
        .label("imported"),
    )
    with db.transaction("check for changes") as tx:
        row = tx.execute(query).one()
    return ChangeMark(_seconds(row.saved), _seconds(row.deleted), _seconds(row.imported))


def _seconds(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def note_import(tx: Transaction) -> None:
    """Record, in the import's transaction, that sessions were imported now."""
    meta = tx.db.tables.meta
    tx.execute(sa.delete(meta).where(meta.c.key == IMPORTED))
    tx.execute(sa.insert(meta).values(key=IMPORTED, value=repr(time.time())))
