"""Which database and table the command line works on.

The database is ``--db FILE`` (SQLite) or ``--url URL`` (any SQLAlchemy URL), else the
WFNB_DB_URL environment variable, else the SQLite file tmp/workflows.db. The table is ``--table``,
else WFNB_TABLE, else the only wfnb table family in the database (a table ``T`` with a ``T_meta``
holding schema_version). Nothing is created, except by ``import``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from wfnb.cli._exits import NOT_FOUND, STORAGE, USAGE, CliError
from wfnb.storage._engine import normalize_url, sqlite_url
from wfnb.storage._schema import Tables, check_table_name, stored_schema_version
from wfnb.storage._sessions import WorkflowStorage

DEFAULT_DB_FILE = "tmp/workflows.db"


def open_storage(
    *, db: str | None, url: str | None, table: str | None, create: bool = False
) -> WorkflowStorage:
    """The storage the options name; CliError when the database or table cannot be used."""
    if db is not None and url is not None:
        raise CliError("give --db FILE or --url URL, not both", USAGE)
    url = database_url(db, url, create=create)
    table = table or os.environ.get("WFNB_TABLE") or None
    where = _shown(url)
    if table is not None:
        check_table_name(table)
        if not create and not _has_family(url, table):
            found = table_families(url)
            raise CliError(f"no wfnb table {table!r} in {where}, which {_holding(found)}",
                           NOT_FOUND)
    else:
        found = table_families(url)
        if len(found) == 1:
            table = found[0]
        elif found:
            raise CliError(f"{where} {_holding(found)}: choose one with --table", USAGE)
        elif create:
            raise CliError(f"{where} {_holding(found)}: name one to create with --table", USAGE)
        else:
            raise CliError(f"{where} {_holding(found)}", NOT_FOUND)
    return WorkflowStorage(table, url)


def database_url(db: str | None, url: str | None, *, create: bool) -> str:
    """The SQLAlchemy URL to open; a SQLite file must exist unless ``create``."""
    if url is None and db is None:
        url = os.environ.get("WFNB_DB_URL") or None
    if url is None:
        url = f"sqlite:///{Path(db or DEFAULT_DB_FILE).expanduser()}"
    url = normalize_url(url)
    parsed = sa.engine.make_url(url)
    file = parsed.database
    if parsed.get_backend_name() == "sqlite" and file and file != ":memory:":
        if create:
            return sqlite_url(file)
        if not Path(file).exists():
            raise CliError(
                f"no database file {file!r} (give --db FILE or --url URL, or set WFNB_DB_URL)",
                NOT_FOUND,
            )
    return url


def table_families(url: str) -> list[str]:
    """The wfnb table families in the database, by name."""
    with _connection(url) as conn:
        names = set(sa.inspect(conn).get_table_names())
    found = []
    for name in sorted(name for name in names if f"{name}_meta" in names):
        # each on a connection of its own: on PostgreSQL a query on a table that another
        # program drops meanwhile would spoil the rest of a shared transaction
        with contextlib.suppress(CliError):
            if _has_family(url, name):
                found.append(name)
    return found


def _has_family(url: str, name: str) -> bool:
    """Whether ``name``_meta is wfnb's: key/value columns with a numeric schema_version row."""
    try:
        check_table_name(name)
    except ValueError:
        return False
    with _connection(url) as conn:
        inspector = sa.inspect(conn)
        if not inspector.has_table(f"{name}_meta"):
            return False
        if not {"key", "value"} <= {c["name"] for c in inspector.get_columns(f"{name}_meta")}:
            return False
        try:
            return stored_schema_version(conn, Tables.define(name)) > 0
        except ValueError:
            return False


@contextlib.contextmanager
def _connection(url: str) -> Iterator[sa.Connection]:
    """A connection of its own, for looking around; database errors become CliError (4)."""
    backend = sa.engine.make_url(url).get_backend_name()
    connect_args = {"connect_timeout": 10} if backend == "postgresql" else {}
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise CliError(f"cannot open {_shown(url)}: {_cause(exc)}", STORAGE) from exc
    finally:
        engine.dispose()


def _cause(exc: sa.exc.SQLAlchemyError) -> str:
    cause = str(getattr(exc, "orig", None) or exc).strip()
    return cause.splitlines()[0] if cause else type(exc).__name__


def _shown(url: str) -> str:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"database {parsed.database!r}"
    return f"database {parsed.render_as_string(hide_password=True)!r}"


def _holding(families: list[str]) -> str:
    if not families:
        return "holds no wfnb tables"
    return "holds wfnb tables " + ", ".join(repr(name) for name in families)
