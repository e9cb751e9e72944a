"""How wfnb writes sizes, times and excerpts for people: one style for the CLI and the inspector."""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import re
from collections.abc import Iterator

import orjson


def when(moment: dt.datetime | None) -> str:
    """A stored time in local time, to the second ("" for none; in UTC at the very ends of the
    datetime range, where local time does not exist)."""
    if moment is None:
        return ""
    with contextlib.suppress(OverflowError):
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def damaged(what: str, damage: str | None) -> str:
    """A listed field, or what is wrong with its row when a row is damaged (written by hand or
    by another tool): the row is listed all the same."""
    return what if damage is None else f"damaged: {damage}"


def size(count: int) -> str:
    """Bytes as people read them: 512 B, 2.1 kB, 3.4 MB."""
    if count < 1000:
        return f"{count} B"
    amount, unit = count / 1000, "kB"
    for bigger in ("MB", "GB"):
        if amount < 1000:
            break
        amount, unit = amount / 1000, bigger
    return f"{amount:.1f} {unit}"


def duration(span: float | dt.timedelta | None) -> str:
    """A duration: 850 ms, 12.3 s, 4 min 5 s ("" for none)."""
    if span is None:
        return ""
    seconds = span.total_seconds() if isinstance(span, dt.timedelta) else span
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


def clip(text: str | None, width: int = 40) -> str:
    """One line of at most ``width`` characters, an ellipsis marking a cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def plural(count: int, word: str) -> str:
    """``1 session``, ``2 sessions``, ``1,200 sessions``."""
    return f"{count:,} {noun(count, word)}"


def noun(count: int, word: str) -> str:
    """``word`` for one, else its plural (an ``s`` added): ``session``, ``sessions``."""
    return word if count == 1 else word + "s"


def pretty_json(document: bytes | str, *, sort_keys: bool = False) -> str:
    """A stored JSON document indented by two (tagged types as stored)."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(orjson.loads(document), option=option).decode()


def json_diff(old: bytes | str, new: bytes | str, old_label: str, new_label: str) -> Iterator[str]:
    """The lines of a unified diff of two JSON documents, indented with sorted keys (none when
    they are equal). Split at the layout's newlines only: a string may hold U+2028 or U+0085,
    which ``str.splitlines`` would take for line ends."""
    return difflib.unified_diff(
        pretty_json(old, sort_keys=True).split("\n"),
        pretty_json(new, sort_keys=True).split("\n"), old_label, new_label, lineterm="",
    )


def tokens(input_tokens: int | None, output_tokens: int | None) -> str:
    """Token counts as reported: ``12 in / 30 out`` ("" when neither was)."""
    return " / ".join(f"{count} {side}" for count, side in
                      ((input_tokens, "in"), (output_tokens, "out")) if count is not None)


def shown_value(value: object) -> str:
    """A stored value in one line: a string as itself, anything else as its JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


# C0 controls (ESC, CR, BEL...), DEL and C1 controls (CSI, OSC...), then the bidi controls that
# reorder what follows (ALM, LRM/RLM, embeddings and overrides, isolates) and the line and
# paragraph separators
_CONTROLS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
_HIDDEN = re.compile(f"[{_CONTROLS}]")
_HIDDEN_IN_JSON = re.compile(f"(?!\n)[{_CONTROLS}]")  # a newline there is layout, not text
_HIDDEN_BUT_LAYOUT = re.compile(f"(?![\n\t])[{_CONTROLS}]")  # streamed text: lines kept


def visible(text: str, *, json: bool = False, layout: bool = False) -> str:
    """``text`` with control and bidi characters written as escapes: ``\\x1b``, ``\\u202e``.

    ``json``: ``text`` is JSON, whose newlines are layout (kept) and whose escapes must be
    ``\\uXXXX``, so it stays valid and means the same. A backslash already in the text is left as
    it is (``--json`` tells the two apart). ``layout``: newlines and tabs are kept (a stream
    written to a terminal).
    """
    if json:
        return _HIDDEN_IN_JSON.sub(_json_escape, text)
    return (_HIDDEN_BUT_LAYOUT if layout else _HIDDEN).sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"
