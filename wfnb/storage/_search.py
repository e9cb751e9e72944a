"""Searching session ids, the same on every backend.

A search matches the ids that contain its text, ignoring the case of the ASCII letters A-Z
only: every other character, ``%``, ``_`` and ``\\`` included, matches just itself. Both sides
are folded by the database (``lower`` on SQLite, which folds ASCII only; ``translate`` on
PostgreSQL, whose ``lower``/``ILIKE`` would follow the server's locale), so SQLite and
PostgreSQL list the same sessions. On PostgreSQL the folded id has a pg_trgm GIN index
(schema 4, :func:`trigram_index_sql`), so a search is an index lookup rather than a scan of
every row (the ``LIKE`` rechecks what the trigrams found). On SQLite an FTS5 trigram table
finds the ids (:func:`narrowed`); text under three characters, which trigrams cannot find, is
matched by the ``LIKE`` alone, a scan.

Text that no id can hold (NUL, a lone surrogate) is refused rather than matched: SQLite would
cut the pattern at a NUL and match every session.
"""

from __future__ import annotations

import string

import sqlalchemy as sa

from wfnb._errors import InvalidNameError
from wfnb.storage._codec import valid_utf8

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ESCAPE = "\\"
# constants in the SQL text (not bound parameters), so PostgreSQL matches the indexed expression
_PG_FOLD = f"translate(session_id, '{string.ascii_uppercase}', '{string.ascii_lowercase}')"
TRIGRAM_EXTENSION = "pg_trgm"


def check_text(value: str, what: str) -> str:
    """``value``, if a database can hold it as text: no NUL, no lone surrogate."""
    if "\x00" in value:
        raise InvalidNameError(f"{what} {value!r} contains a NUL character")
    if not valid_utf8(value):  # e.g. from os.fsdecode: no database takes it
        raise InvalidNameError(
            f"{what} {value!r} is not valid UTF-8 text (it holds a lone surrogate)"
        )
    return value


def contains(column: sa.ColumnElement[str], text: str, dialect: str) -> sa.ColumnElement[bool]:
    """``column`` contains ``text``, ASCII letters in either case, LIKE wildcards literal."""
    check_text(text, "search text")
    pattern = text.translate(_FOLD)
    for special in (_ESCAPE, "%", "_"):
        pattern = pattern.replace(special, _ESCAPE + special)
    return _folded(column, dialect).like(f"%{pattern}%", escape=_ESCAPE)


def _folded(column: sa.ColumnElement[str], dialect: str) -> sa.ColumnElement[str]:
    if dialect == "postgresql":
        upper = sa.literal_column(f"'{string.ascii_uppercase}'", sa.Text)
        lower = sa.literal_column(f"'{string.ascii_lowercase}'", sa.Text)
        return sa.func.translate(column, upper, lower)
    return sa.func.lower(column)


def trigram_served(text: str) -> bool:
    """Whether a trigram index can find ``text`` (three characters or more; shorter text scans)."""
    return len(text) >= 3


def narrowed(sessions: sa.Table, search_table: str, text: str) -> sa.ColumnElement[bool]:
    """SQLite: the rows whose folded id holds ``text`` (three characters or more), found in the
    FTS5 trigram table: a lookup, not a scan. A trigram phrase matches exactly the ids that
    contain it (folded as :func:`contains` folds), so no ``LIKE`` rechecks them."""
    folded = check_text(text, "search text").translate(_FOLD)
    phrase = '"' + folded.replace('"', '""') + '"'
    table = sa.table(search_table, sa.column("rowid"))
    hits = sa.select(table.c.rowid).where(sa.literal_column(f'"{search_table}"').op("MATCH")(
        phrase))
    return sa.literal_column(f'"{sessions.name}".rowid').in_(hits)


def sqlite_search_sql(table: str) -> list[str]:
    """SQLite: the FTS5 trigram table of folded session ids (``T_search``, rowid = the
    session row's), kept by triggers, filled from the rows there are."""
    search = f"{table}_search"
    return [
        f'CREATE VIRTUAL TABLE IF NOT EXISTS "{search}" USING fts5(folded, '
        "tokenize='trigram case_sensitive 1')",
        f'CREATE TRIGGER IF NOT EXISTS "{search}_insert" AFTER INSERT ON "{table}" BEGIN '
        f'INSERT INTO "{search}" (rowid, folded) VALUES (new.rowid, lower(new.session_id)); END',
        f'CREATE TRIGGER IF NOT EXISTS "{search}_delete" AFTER DELETE ON "{table}" BEGIN '
        f'DELETE FROM "{search}" WHERE rowid = old.rowid; END',
        f'CREATE TRIGGER IF NOT EXISTS "{search}_update" AFTER UPDATE OF session_id ON "{table}" '
        f'BEGIN UPDATE "{search}" SET folded = lower(new.session_id) WHERE rowid = old.rowid; END',
        f'DELETE FROM "{search}"',
        f'INSERT INTO "{search}" (rowid, folded) SELECT rowid, lower(session_id) FROM "{table}"',
    ]


def trigram_index_sql(table: str) -> str:
    """PostgreSQL: the GIN trigram index on the folded session id that searches use."""
    return (f'CREATE INDEX IF NOT EXISTS "ix_{table}_id_trgm" ON "{table}" '
            f"USING gin (({_PG_FOLD}) gin_trgm_ops)")
