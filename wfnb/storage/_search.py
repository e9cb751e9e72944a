"""Searching session ids, the same on every backend.

A search matches the ids that contain its text, ignoring the case of the ASCII letters A-Z
only: every other character, ``%``, ``_`` and ``\\`` included, matches just itself. Both sides
are folded by the database (``lower`` on SQLite, which folds ASCII only; ``translate`` on
PostgreSQL, whose ``lower``/``ILIKE`` would follow the server's locale), so SQLite and
PostgreSQL list the same sessions. Text that no id can hold (NUL, a lone surrogate) is refused
rather than matched: SQLite would cut the pattern at a NUL and match every session.
"""

from __future__ import annotations

import string

import sqlalchemy as sa

from wfnb._errors import InvalidNameError
from wfnb.storage._codec import valid_utf8

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ESCAPE = "\\"


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
        return sa.func.translate(column, string.ascii_uppercase, string.ascii_lowercase)
    return sa.func.lower(column)
