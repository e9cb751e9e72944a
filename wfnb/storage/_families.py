"""Which wfnb table families a database holds, found without creating or changing anything.

A family is a table ``T`` with a ``T_meta`` holding a numeric schema_version (see _schema.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from wfnb._errors import InvalidNameError
from wfnb.storage._engine import cause, shown_url
from wfnb.storage._schema import Tables, check_table_name, stored_schema_version


def table_families(url: str) -> list[str]:
    """The wfnb table families in the database at ``url``, by name; ConnectionError when the
    database cannot be opened."""
    with _connection(url) as conn:
        names = set(sa.inspect(conn).get_table_names())
    found = []
    for name in sorted(name for name in names if f"{name}_meta" in names):
        # each on a connection of its own: on PostgreSQL a query on a table that another
        # program drops meanwhile would spoil the rest of a shared transaction
        with contextlib.suppress(ConnectionError):
            if has_table_family(url, name):
                found.append(name)
    return found


def has_table_family(url: str, name: str) -> bool:
    """Whether ``name``_meta is wfnb's: key/value columns with a numeric schema_version row."""
    try:
        check_table_name(name)
    except InvalidNameError:
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
    """A connection of its own, for looking around; database errors become ConnectionError."""
    backend = sa.engine.make_url(url).get_backend_name()
    connect_args = {"connect_timeout": 10} if backend == "postgresql" else {}
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise ConnectionError(f"cannot open {shown_url(url)}: {cause(exc)}") from exc
    finally:
        engine.dispose()
