"""Which database and table the command line works on.

The database is ``--db FILE`` (SQLite) or ``--url URL`` (any SQLAlchemy URL), else the
WFNB_DB_URL environment variable, else the SQLite file tmp/workflows.db. The table is ``--table``,
else WFNB_TABLE, else the only wfnb table family in the database (a table ``T`` with a ``T_meta``
holding schema_version). Nothing is created, except by ``import``.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from wfnb import storage
from wfnb.cli._exits import NOT_FOUND, STORAGE, USAGE, CliError
from wfnb.storage import WorkflowStorage, check_table_name, normalize_url, sqlite_url

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
    """The wfnb table families in the database, by name; CliError (4) if it cannot be opened."""
    try:
        return storage.table_families(url)
    except ConnectionError as error:
        raise CliError(str(error), STORAGE) from error


def _has_family(url: str, name: str) -> bool:
    try:
        return storage.has_table_family(url, name)
    except ConnectionError as error:
        raise CliError(str(error), STORAGE) from error


def _shown(url: str) -> str:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"database {parsed.database!r}"
    return f"database {storage.shown_url(url)!r}"


def _holding(families: list[str]) -> str:
    if not families:
        return "holds no wfnb tables"
    return "holds wfnb tables " + ", ".join(repr(name) for name in families)
