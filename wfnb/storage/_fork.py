"""Forks: a new session whose first version is another session's state at one of its versions.

A fork is for trying another path from a state a session reached, leaving that session as it
is. :func:`fork` reads the source's version and creates the new session with it in one write
transaction: the session row (numbered on after a deleted session of the same id, as every new
session is) and its first version, stored whole, with source ``"fork"`` and the session and
version it came from. The source's rows are only read (on PostgreSQL its session row is held
``FOR SHARE`` meanwhile, so a prune or delete of it waits until the fork is committed).

Where the origin is kept: on that first version row (``forked_from_session``,
``forked_from_version``; schema 7), not on the session row. It says how one version's state came
to be, as ``source`` and ``run_id`` do, so history() lists it without a join and an export
carries it with the version. The price: pruning the fork's first version drops the record of
its origin with it, as it drops the version's source and run.

What is not copied: the source's runs and step records. A fork's runs execute their steps of
session scope afresh; serving them the source's step outputs would replay the path the fork
was made to leave (steps of workflow scope are shared by the workflow's sessions anyway).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from wfnb._errors import SessionExistsError, SessionNotFoundError
from wfnb.storage import _history
from wfnb.storage._database import Database
from wfnb.storage._models import VersionInfo, timestamp

SOURCE = "fork"  # the source of a fork's first version in history


def fork(db: Database, session_id: str, version: int | None, new_session_id: str) -> VersionInfo:
    """Create ``new_session_id`` with the state of ``session_id`` at ``version`` (None: its
    current one); returns the new session's first version.

    SessionNotFoundError when the source or that version is not stored; SessionExistsError
    when ``new_session_id`` is (nothing is written then).
    """
    s = db.tables.sessions
    with db.transaction("fork the session", session_id, write=True) as tx:
        source = tx.execute(
            sa.select(s.c.version, s.c.workflow_name).where(s.c.session_id == session_id)
            .with_for_update(read=True)
        ).first()
        if source is None:
            raise SessionNotFoundError(f"no session {session_id!r} in table {db.name!r}")
        at = source.version if version is None else version
        chain, document = _history.rebuild(tx, session_id, at, source.version)
        now = time.time()
        created = tx.create_session(new_session_id, source.workflow_name, document, now)
        if created is None:
            stored = tx.current_version(new_session_id) or 0
            raise SessionExistsError(
                new_session_id,
                f"cannot fork session {session_id!r} version {at} as {new_session_id!r}: "
                f"a session {new_session_id!r} is already in table {db.name!r} (at version "
                f"{stored}); nothing was written, choose another id",
                stored_version=stored,
            )
        tx.insert_version(
            new_session_id, created.version, base=None, data=document,
            tagged=bool(chain[-1].tagged), state_bytes=len(document), source=SOURCE,
            run_id=None, now=now, forked_from=(session_id, at),
        )
    return VersionInfo(new_session_id, created.version, SOURCE, None, len(document),
                       timestamp(now), session_id, at)
