"""A session's history: rebuilding a version from its rows, listing versions, pruning them.

Each save appends one version row, the full state or a delta on the version before it (see
_delta.py). A version is rebuilt from its *chain*: the newest full row at or before it, then the
deltas after that one, in order. Pruning drops the oldest rows and rewrites the first one kept as
a full state when it was a delta, so what remains can always be read; the current version
always stays.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from wfnb._errors import CorruptStateError, SessionNotFoundError
from wfnb.storage import _steps
from wfnb.storage._database import Database, Transaction
from wfnb.storage._delta import apply_delta
from wfnb.storage._models import VersionInfo, timestamp
from wfnb.storage._sql import VersionRow

Progress = Callable[[], None]  # called once per session done


def assemble(
    table: str, session_id: str, version: int, chain: Sequence[VersionRow], *,
    listed: bool = False,
) -> bytes:
    """The document of ``version`` from its chain rows (a full row, then deltas in order).

    ``listed``: the version is known to exist, so missing rows mean damage, not absence.
    """
    if not chain or chain[-1].version != version:
        if listed:
            raise CorruptStateError(
                f"version {version} is recorded but the rows it is rebuilt from are missing "
                "(deleted by hand?); the other rows are left as they are",
                table=table, session_id=session_id,
            )
        raise SessionNotFoundError(
            f"session {session_id!r} has no version {version} in history "
            f"(table {table!r}; pruned, or never saved)"
        )
    try:
        full = chain[0].data
        if len(chain) == 1 and isinstance(full, bytes):
            document = full  # a full row alone is the document: no copies of a large state
        else:
            edited = bytearray(full)
            for previous, row in itertools.pairwise(chain):
                if row.base_version != previous.version:
                    raise ValueError(
                        f"version {row.version} follows missing version {row.base_version}"
                    )
                apply_delta(edited, bytes(row.data))
            document = bytes(edited)
        if len(document) != chain[-1].state_bytes:
            raise ValueError(f"{len(document)} bytes rebuilt, {chain[-1].state_bytes} were saved")
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise CorruptStateError(
            f"history of version {version} cannot be read ({exc}); rows left as they are",
            table=table, session_id=session_id,
        ) from exc
    return document


def rebuild(
    tx: Transaction, session_id: str, version: int, current: int
) -> tuple[list[VersionRow], bytes]:
    """The chain rows of ``version`` and the document rebuilt from them, in the caller's
    transaction; ``current`` is the session's version (its row lists it, so missing rows of
    it are damage, not absence: CorruptStateError rather than SessionNotFoundError)."""
    chain = tx.chain(session_id, version)
    # the current version is listed by the session row; an older one must be asked
    listed = (version == current or (bool(chain) and chain[-1].version == version)
              or tx.has_version(session_id, version))
    return chain, assemble(tx.db.name, session_id, version, chain, listed=listed)


def document_at(tx: Transaction, session_id: str, version: int) -> bytes:
    """The document of ``version``, read inside the caller's transaction."""
    return assemble(tx.db.name, session_id, version, tx.chain(session_id, version))


def history(db: Database, session_id: str, *, limit: int | None = None) -> list[VersionInfo]:
    """The session's stored versions, newest first (empty when it has none)."""
    v = db.tables.versions
    query = (
        sa.select(v.c.version, v.c.source, v.c.run_id, v.c.state_bytes, v.c.created_at,
                  v.c.forked_from_session, v.c.forked_from_version)
        .where(v.c.session_id == session_id)
        .order_by(v.c.version.desc())
        .limit(limit)
    )
    with db.transaction("read history", session_id) as tx:
        return [
            VersionInfo(session_id, r.version, r.source, r.run_id, r.state_bytes,
                        timestamp(r.created_at), r.forked_from_session, r.forked_from_version)
            for r in tx.execute(query)
        ]


def prune(
    db: Database,
    session_ids: Sequence[str] | None,
    *,
    keep: int | None,
    older_than: float | None,
    progress: Progress | None = None,
) -> int:
    """Drop all but the newest ``keep`` versions and/or those older than ``older_than``
    seconds, of the sessions named (None: all), one transaction per session; returns how many
    versions were dropped. ``progress`` is called after each session."""
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    s = db.tables.sessions
    scope = session_ids[0] if session_ids is not None and len(session_ids) == 1 else None
    if session_ids is None:
        with db.transaction("prune history") as tx:
            session_ids = list(tx.execute(sa.select(s.c.session_id)).scalars())
    dropped = 0
    for session_id in session_ids:
        with db.transaction("prune history", scope, write=True) as tx:
            current = tx.current_version(session_id)
            if current is not None:
                first_kept = current - keep + 1 if keep is not None else 1
                cutoff = time.time() - older_than if older_than is not None else None
                dropped += prune_session(tx, session_id, first_kept, cutoff)
        if progress is not None:
            progress()
    return dropped


def prune_session(tx: Transaction, session_id: str, first_kept: int, cutoff: float | None) -> int:
    """Drop the session's versions (see :func:`_prune_versions`), then its step records that
    started before the oldest version kept (see _steps.py); returns how many versions went."""
    dropped = _prune_versions(tx, session_id, first_kept, cutoff)
    _steps.prune(tx, session_id)
    return dropped


def _prune_versions(
    tx: Transaction, session_id: str, first_kept: int, cutoff: float | None
) -> int:
    """Delete versions before ``first_kept`` (and before ``cutoff`` time), keeping the newest.

    When the first version kept is a delta, it is rewritten as the full state it stands for,
    so what remains can still be read.
    """
    s, v = tx.db.tables.sessions, tx.db.tables.versions
    # PostgreSQL: one prune of a session at a time (saves wait too), or two interleaved
    # would deadlock, or rebuild a version the other just deleted (SQLite: BEGIN IMMEDIATE)
    tx.execute(sa.select(s.c.version).where(s.c.session_id == session_id).with_for_update())
    newest = tx.execute(
        sa.select(sa.func.max(v.c.version)).where(v.c.session_id == session_id)
    ).scalar()
    if newest is None:
        return 0
    if cutoff is not None:
        young = tx.execute(
            sa.select(sa.func.min(v.c.version))
            .where(v.c.session_id == session_id, v.c.created_at >= cutoff)
        ).scalar()
        first_kept = max(first_kept, young if young is not None else newest)
    first_kept = min(first_kept, newest)
    oldest = tx.execute(
        sa.select(sa.func.min(v.c.version)).where(v.c.session_id == session_id)
    ).scalar()
    if oldest is None or oldest >= first_kept:
        return 0
    kept = tx.execute(
        sa.select(v.c.base_version).where(v.c.session_id == session_id, v.c.version == first_kept)
    ).first()
    if kept is not None and kept.base_version is not None:
        document = document_at(tx, session_id, first_kept)
        tx.execute(
            sa.update(v)
            .where(v.c.session_id == session_id, v.c.version == first_kept)
            .values(base_version=None, data=document)
        )
    return int(
        tx.execute(
            sa.delete(v).where(v.c.session_id == session_id, v.c.version < first_kept)
        ).rowcount
    )


def prune_slack(keep: int) -> int:
    """Versions allowed past ``keep`` before a save prunes: pruning in batches costs less."""
    return max(8, keep // 8)
