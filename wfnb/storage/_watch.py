"""Noticing that another writer changed the sessions table, with one cheap query.

The mark is (how many sessions, the latest ``updated_at``): every save, restore and import
moves the latest ``updated_at`` (an index gives it without a scan), and a delete changes the
count. Two marks differ whenever the table changed; equal marks mean nothing a session list
shows changed. Run records and pruned history are not part of the mark.
"""

from __future__ import annotations

import sqlalchemy as sa

from wfnb.storage._database import Database
from wfnb.storage._models import ChangeMark


def last_change(db: Database) -> ChangeMark:
    """The table's mark now: compare it with an earlier one to know whether to re-read."""
    s = db.tables.sessions
    query = sa.select(sa.func.count().label("sessions"),
                      sa.func.max(s.c.updated_at).label("last_update"))
    with db.transaction("check for changes") as tx:
        row = tx.execute(query).one()
    return ChangeMark(int(row.sessions), None if row.last_update is None
                      else float(row.last_update))
