"""How the command line prints: aligned tables, colour on a terminal only, JSON for machines.

Text from a database is untrusted: every line the console writes passes through
:func:`visible`, so an escape sequence, carriage return or bidi override stored in a session id
or an error message is shown as ``\\x1b``, ``\\r``, ``\\u202e`` and never acts on the terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from wfnb._format import visible

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

Cell = str | tuple[str, str | None]  # text, or (text, style name)

def dump_json(value: Any) -> str:
    """Indented JSON (dataclasses as objects, times as RFC 3339), without a final newline."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@dataclass
class Console:
    """Where output (``out``) and messages (``err``) go; colour only on a terminal, no NO_COLOR."""

    out: TextIO
    err: TextIO
    colour: bool

    @classmethod
    def standard(cls) -> Console:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        return cls(sys.stdout, sys.stderr, colour)

    def paint(self, text: str, style: str | None) -> str:
        if not self.colour or style is None or not text:
            return text
        return f"\x1b[{_STYLES[style]}m{text}\x1b[0m"

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of text (control and bidi characters made visible)."""
        self.out.write(self.paint(visible(text), style) + "\n")

    def note(self, message: str) -> None:
        """A line on ``err`` that is not an error (e.g. what an export to stdout did)."""
        self.err.write(visible(message) + "\n")

    def json(self, value: Any) -> None:
        """Indented JSON; control and bidi characters in strings as \\uXXXX escapes."""
        self.out.write(visible(dump_json(value), json=True) + "\n")

    def error(self, message: str) -> None:
        self.err.write(f"wfnb: error: {visible(' '.join(message.split()))}\n")

    def table(
        self, headers: Sequence[str], rows: Iterable[Sequence[Cell]], numeric: Iterable[int] = ()
    ) -> None:
        """Columns aligned (``numeric`` ones to the right), headers bold."""
        cells = [[(visible(c), None) if isinstance(c, str) else (visible(c[0]), c[1]) for c in row]
                 for row in rows]
        widths = [max([len(h), *(len(row[i][0]) for row in cells)]) for i, h in enumerate(headers)]
        right = set(numeric)

        def render(row: Sequence[tuple[str, str | None]]) -> str:
            padded = [
                self.paint(text.rjust(w) if i in right else text.ljust(w), style)
                for i, ((text, style), w) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(padded).rstrip()

        self.out.write(render([(h, "bold") for h in headers]) + "\n")
        for row in cells:
            self.out.write(render(row) + "\n")
