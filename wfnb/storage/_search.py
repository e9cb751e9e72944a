"""Searching session ids, the same on every backend.

A search matches the ids that contain its text, ignoring the case of the ASCII letters A-Z
only: every other character, ``%``, ``_`` and ``\\`` included, matches just itself. Both sides
are folded by the database (``lower`` on SQLite, which folds ASCII only; ``translate`` on
PostgreSQL, whose ``lower``/``ILIKE`` would follow the server's locale), so SQLite and
PostgreSQL list the same sessions. On PostgreSQL the folded id has a pg_trgm GIN index
(schema 3, :func:`trigram_index_sql`), so a search is an index lookup rather than a scan of
every row; the ``LIKE`` above stays the rule (trigrams only narrow the rows it checks).

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
        upper, lower = (sa.literal_column(f"'{letters}'") for letters in (
            string.ascii_uppercase, string.ascii_lowercase))
        return sa.func.translate(column, upper, lower)
    return sa.func.lower(column)


def trigram_index_sql(table: str) -> str:
    """PostgreSQL: the GIN trigram index on the folded session id that searches use."""
    return (f'CREATE INDEX IF NOT EXISTS "ix_{table}_id_trgm" ON "{table}" '
            f"USING gin (({_PG_FOLD}) gin_trgm_ops)")
