"""Opening a database through dataset, with the settings each backend needs for safe saves.

SQLite: WAL journal (readers never block the writer), ``synchronous=NORMAL`` (durable across a
crash of the process; a power cut may lose the last commits, never corrupt the file; pass
``synchronous="FULL"`` to trade speed for that too), a ``busy_timeout`` so writers queue instead
of failing with "database is locked", and write transactions opened with ``BEGIN IMMEDIATE`` so a
save never has to abort half-way for a lock another writer took first.

PostgreSQL: psycopg 3, ``pool_pre_ping`` so a restarted server costs a reconnect, not an error,
and ``lock_timeout`` set to the same ``busy_timeout`` (unless the URL passes its own ``options``)
so a save never waits forever on a row another transaction holds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import dataset
import sqlalchemy as sa
from sqlalchemy.engine import make_url

log = logging.getLogger("wfnb.storage")

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def database_cause(exc: BaseException) -> str:
    """The database's own words for an error, without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc).strip().splitlines()[0]


def sqlite_url(db_file: str | Path) -> str:
    """The SQLAlchemy URL of a SQLite file, its parent folder created."""
    path = Path(db_file).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"db_file {str(path)!r} is a directory, not a database file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for bare ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_database(url: str, *, busy_timeout: float, synchronous: str) -> dataset.Database:
    """A dataset Database on ``url``, configured for wfnb's transactions."""
    if synchronous.upper() not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        db = dataset.connect(
            url,
            on_connect_statements=[
                f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}",
                f"PRAGMA synchronous = {synchronous.upper()}",
            ],
            engine_kwargs={"connect_args": {"timeout": busy_timeout}},
        )
        assert db.engine is not None
        _sqlite_transactions(db.engine)
        _reopen_read_only_connections(db.engine, make_url(url).database or "")
        return db
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "postgresql" and "options" not in make_url(url).query:
        # PostgreSQL has no busy_timeout: without lock_timeout a save waits for a row lock as
        # long as another transaction holds it. The same bound as SQLite's, unless the URL says.
        engine_kwargs["connect_args"] = {"options": f"-c lock_timeout={int(busy_timeout * 1000)}"}
    return dataset.connect(url, engine_kwargs=engine_kwargs)


def begin(cursor: Any, dialect: str, *, write: bool) -> None:
    """Open a transaction on a fresh connection's DBAPI cursor: the one place that says how.

    SQLite: ``BEGIN IMMEDIATE`` for writes, so a save never aborts half-way for a lock another
    writer took first; ``BEGIN`` for reads (one snapshot). PostgreSQL opens transactions by
    itself; a read asks for REPEATABLE READ, so the session row and its history rows come from
    one snapshot and a concurrent save + prune cannot remove a version between the two reads.
    """
    if dialect == "sqlite":
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    elif dialect == "postgresql" and not write:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def end(cursor: Any, dialect: str, *, commit: bool) -> None:
    """Commit, or roll back, what :func:`begin` opened on ``cursor``."""
    if dialect == "sqlite":  # on the cursor: its statement is reset first, a cheaper COMMIT
        cursor.execute("COMMIT" if commit else "ROLLBACK")
    elif commit:
        cursor.connection.commit()
    else:
        cursor.connection.rollback()


def _sqlite_transactions(engine: sa.Engine) -> None:
    """Turn off the sqlite3 module's own implicit BEGIN: transactions are begun by
    :func:`begin`, also those SQLAlchemy begins for others (``storage.db``)."""

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        driver: Any = connection.connection.driver_connection
        if not driver.in_transaction:  # wfnb's own transactions have begun already
            begin(driver, "sqlite", write=False)


def shown_url(url: str) -> str:
    """A database URL for messages: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def cause(error: BaseException) -> str:
    """The database's own words for an error (first line), without SQLAlchemy's statement dump."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reopen_read_only_connections(engine: sa.Engine, path: str) -> None:
    """Replace connections opened while the file could not be written, once it can be.

    SQLite opens a file it may not write (read-only mount, immutable file, permissions) read-only
    and keeps that connection read-only after the file is writable again: kept in the pool, it
    would fail the first write after an outage ("attempt to write a readonly database").
    """

    def writable() -> bool:
        return not os.path.isfile(path) or os.access(path, os.W_OK)

    @sa.event.listens_for(engine, "connect")
    def _note_read_only(_dbapi_connection: Any, record: Any) -> None:
        record.info["wfnb_read_only"] = not writable()

    @sa.event.listens_for(engine, "checkout")
    def _replace_if_writable(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("wfnb_read_only") and writable():
            raise sa.exc.DisconnectionError("the database file is writable again: reconnect")
