"""Where growing Markdown can be cut into pieces that are rendered once each, in linear time.

A piece ends at a *cut*. A clean cut falls between blocks. A *joint* falls inside a block that
the next piece continues (a fenced code block, a list, a table, a paragraph); it carries what
rendering needs to join the pieces seamlessly (the fence to reopen, the table header, the
number of the next list item). Cuts depend on the text alone, never on how it arrived, so a
re-run saves the same outputs. Counted from the start of the current piece, a cut is taken at
the first of:

- a block boundary (a blank line, a heading, a closed fence) at least ``freeze_chars`` in;
- a line start inside a code block, list or table at least ``freeze_chars`` long, at least
  ``freeze_chars`` in (tables after an even number of rows, so striped rows keep alternating
  across pieces);
- a sentence end inside a paragraph, outside code spans, links and emphasis, at least
  twice ``freeze_chars`` in;
- a paragraph's word start, at least four times ``freeze_chars`` in; any letter at eight.

What is left uncut (one list item or quote that grows without end, a code line of megabytes)
renders whole: correct, just not bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

JointKind = Literal["code", "list", "table", "paragraph"]


@dataclass(frozen=True)
class Joint:
    """How a block cut in two continues in the next piece."""

    kind: JointKind
    reopen: str = ""  # Markdown put before the next piece to render it: fence or table header
    start: int = 0  # an ordered list: the number of the next piece's first item (0: bullets)
    widths: tuple[int, ...] = ()  # a table: column widths (characters), the same in every piece


@dataclass(frozen=True)
class Cut:
    """Where a piece ends; ``joint`` is None between blocks."""

    position: int
    joint: Joint | None


_HEAD = 16  # characters enough to tell what a line starts (a list marker, a fence, ...)
_CELL_WIDTH = 40  # a cut table's column is at most this many characters wide (plus padding)
_ITEM = re.compile(r" {0,3}(?:([-+*])|(\d{1,9})([.)]))(?:[ \t]|$)")
_FENCE = re.compile(r" {0,3}(`{3,}(?!.*`)|~{3,})")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_QUOTE = re.compile(r" {0,3}>")
# A thematic break, or a setext heading's underline.
_RULE = re.compile(r" {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*)$")
_DELIMITER_ROW = re.compile(r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_PIPE = re.compile(r"(?<!\\)\|")
# In paragraph text: an escape, a code span's backticks, an emphasis or link delimiter, or a
# sentence end followed by a letter (the place to cut is that letter).
_INLINE = re.compile(
    r"(?P<escape>\\.)|(?P<ticks>`+)|(?P<emphasis>[*~]|(?<![^\W_])_+|_+(?![^\W_]))"
    r"|(?P<open>\[)|(?P<close>\])|(?P<end>[.!?][)\"'\u2019\u201d]*[ \t]+(?=[^\W\d_]))"
)
_WORD_START = re.compile(r"(?<=\s)[^\W\d_]")
_LETTER = re.compile(r"(?<!\\)[^\W\d_]")

Context = Literal["none", "paragraph", "list", "table", "fence", "done", "other"]


@dataclass
class _List:
    ordered: bool
    marker: str  # the bullet, or the ordered delimiter
    content_indent: int  # lines indented this far belong to the current item
    start: int
    items: int = 1


@dataclass
class _Table:
    reopen: str  # header line and delimiter row
    rows: int = 0
    lengths: list[int] = field(default_factory=list)
    widths: tuple[int, ...] = ()  # fixed at the table's first joint


@dataclass
class _Inline:
    """Open inline constructs in the paragraph so far; a sentence end is safe when none are."""

    code: int = 0  # length of the open code span's backtick run
    brackets: int = 0
    emphasis: int = 0  # delimiter characters seen, as a parity

    def clean(self) -> bool:
        return not (self.code or self.brackets or self.emphasis)

    def take(self, match: re.Match[str]) -> None:
        kind, found = match.lastgroup, match.group()
        if kind == "ticks":
            if not self.code:
                self.code = len(found)
            elif len(found) == self.code:
                self.code = 0
        elif self.code or kind == "escape":
            return
        elif kind == "emphasis":
            self.emphasis ^= len(found) & 1
        elif kind == "open":
            self.brackets += 1
        elif kind == "close":
            self.brackets = max(0, self.brackets - 1)


class BlockSplitter:
    """Finds the cuts in growing Markdown (see the module docstring for where they fall).

    ``feed`` takes the whole text so far (the caller's tail) and scans only what is new;
    ``drop`` says the caller removed a prefix ending at a cut.
    """

    def __init__(self, freeze_chars: int) -> None:
        self._freeze = max(1, freeze_chars)
        self._piece = 0  # where the current piece starts
        self._line = 0  # where the current line starts (before the piece if cut inside it)
        self._searched = 0  # no line ends between the current line's start and here
        self._headed = False  # the current line's start was looked at
        self._prose = False  # the current line is paragraph text, scanned while it arrives
        self._inline_at = 0  # paragraph text scanned up to here
        self._unforced = 0  # no forced cut falls before here
        self._inline = _Inline()
        self._context: Context = "none"
        self._blank = False  # the previous line was blank
        self._fence: tuple[str, str] | None = None  # (backticks or tildes, the opening line)
        self._fence_top = False  # the fence is at the top level (not in a list item)
        self._list: _List | None = None
        self._table: _Table | None = None
        self._opened = 0  # where the current code block, list or table started
        self._last_line = ""  # the previous line, a table header if a delimiter row follows
        self._cuts: list[Cut] = []

    def feed(self, text: str) -> list[Cut]:
        """The cuts found in what was added since the last call, in order."""
        while True:
            newline = text.find("\n", max(self._line, self._searched))
            complete = newline >= 0
            end = newline if complete else len(text)
            if not self._headed:
                short = end - self._line < _HEAD  # a whole line, or the first _HEAD characters
                if short and not complete:
                    self._searched = end
                    break
                self._head(text[self._line : min(end, self._line + _HEAD)], short)
                self._headed = True
            if self._prose:
                self._scan_paragraph(text, end, complete)
            if not complete:
                self._searched = end
                break
            self._finish_line(text[max(self._line, 0) : newline])
            self._line = self._inline_at = newline + 1
            self._headed = self._prose = False
        cuts, self._cuts = self._cuts, []
        return cuts

    def drop(self, count: int) -> None:
        """The caller removed the first ``count`` characters (a prefix ending at a cut)."""
        self._piece -= count
        self._line -= count
        self._searched -= count
        self._inline_at -= count
        self._unforced -= count
        self._opened -= count

    def _reaches(self, position: int, reach: int) -> bool:
        return position - self._piece >= reach * self._freeze

    def _long_block(self, position: int) -> bool:
        """Whether a joint may fall here: the piece is long enough, and so is the block (a
        short one is left whole: fewer seams, and the same cuts as between blocks)."""
        return self._reaches(position, 1) and position - self._opened >= self._freeze

    def _cut(self, position: int, joint: Joint | None, reach: int) -> bool:
        """Cut at ``position`` if it is at least ``reach`` times freeze_chars into the piece."""
        if not self._reaches(position, reach):
            return False
        self._cuts.append(Cut(position, joint))
        self._piece = position
        return True

    def _head(self, head: str, whole: bool) -> None:
        """Look at the start of a line (``whole``: all of it): is there a cut before it, is it
        paragraph text?"""
        here = self._line
        if self._fence is not None:
            if self._fence_top and not head.lstrip(" ").startswith(self._fence[0]) \
                    and self._long_block(here):
                self._cut(here, Joint("code", reopen=self._fence[1] + "\n"), 1)
            return
        if whole and not head.strip():
            return
        indent = len(head) - len(head.lstrip(" "))
        block = _starts_block(head, whole)
        current = self._list if self._context == "list" else None
        if current is not None:
            item = _ITEM.match(head)
            if indent >= current.content_indent:
                return  # inside the current item
            if item and self._same_list(item):
                if self._long_block(here):
                    self._cut(here, self._list_joint(), 1)
                return
            if not (self._blank or block):
                return  # a lazy continuation of the item's paragraph
            self._cut(here, None, 1)
        elif self._blank or self._context == "done":
            self._cut(here, None, 1)
        elif self._context == "table":
            if block:
                self._cut(here, None, 1)
            elif self._table is not None and self._table.rows % 2 == 0 and self._table.rows \
                    and self._long_block(here):  # (the first joint fixes the column widths)
                self._cut(here, self._table_joint(), 1)
            return
        elif self._context == "paragraph":
            if _FENCE.match(head) or _HEADING.match(head):
                self._cut(here, None, 1)
            elif head[:1].isalpha() and self._inline.clean():
                self._cut(here, Joint("paragraph"), 2)
        elif self._context != "none":
            return
        if block or (indent >= 4 and self._context != "paragraph"):
            return
        if self._context != "paragraph" or self._blank:
            self._inline = _Inline()
        self._prose = True

    def _scan_paragraph(self, text: str, end: int, complete: bool) -> None:
        """Find sentence ends, or forced cuts, in the paragraph text up to ``end``."""
        last = end if complete else _last_word_end(text, self._inline_at, end)
        while True:
            forced = self._forced(text, end)
            limit = last if forced is None else min(last, forced)
            for match in _INLINE.finditer(text, self._inline_at, limit):
                if match.lastgroup != "end":
                    self._inline.take(match)
                elif self._inline.clean() and self._cut(match.end(), Joint("paragraph"), 2):
                    self._inline_at = match.end()
                    break
            else:
                self._inline_at = max(self._inline_at, limit)
                if forced is None:
                    return
                self._cuts.append(Cut(forced, Joint("paragraph")))
                self._piece = self._inline_at = forced
                self._inline = _Inline()

    def _forced(self, text: str, end: int) -> int | None:
        """The first place a paragraph is cut anyway: a word start from four times
        freeze_chars into the piece, a letter from eight."""
        found: list[int] = []
        for pattern, reach in ((_WORD_START, 4), (_LETTER, 8)):
            begin = max(self._line + 1, self._piece + reach * self._freeze, self._unforced)
            match = pattern.search(text, begin, end)
            if match:
                found.append(match.start())
        if not found:
            self._unforced = max(self._unforced, end)
        return min(found, default=None)

    def _finish_line(self, line: str) -> None:
        """Take a complete line into the context of the block it belongs to."""
        stripped = line.strip()
        if self._fence is not None:
            run = self._fence[0]
            if stripped.startswith(run) and stripped == run[0] * len(stripped) \
                    and len(line) - len(line.lstrip(" ")) < 4 + self._item_indent():
                self._fence = None
                if self._fence_top:
                    self._context = "done"
        elif not stripped:
            self._blank = True
            if self._context != "list":
                self._context = "none"
            self._table = None
            return
        else:
            self._classify(line)
        self._blank = False
        self._last_line = line

    def _item_indent(self) -> int:
        return self._list.content_indent if self._list and not self._fence_top else 0

    def _classify(self, line: str) -> None:
        indent = len(line) - len(line.lstrip(" "))
        fence = _FENCE.match(line)
        current = self._list if self._context == "list" else None
        if current is not None and indent >= current.content_indent:
            fence = _FENCE.match(line[current.content_indent :])
            if fence:
                self._fence, self._fence_top = (fence.group(1), line), False
            return
        item = _ITEM.match(line)
        if item and not _RULE.match(line) and self._opens_item(item):
            self._take_item(item, line)
            return
        if current is not None and not self._blank and not _starts_block(line, True):
            return  # a lazy continuation of the item's paragraph
        self._list = None
        previous, self._context = self._context, "paragraph"
        if fence:
            self._fence, self._fence_top = (fence.group(1), line), True
            self._context, self._opened = "fence", self._line
        elif _HEADING.match(line) or (_RULE.match(line) and
                                       (previous == "paragraph" or "=" not in line)):
            self._context = "done"
        elif _QUOTE.match(line) or (indent >= 4 and previous != "paragraph"):
            self._context = "other"
        elif previous == "table":
            self._context = "table"
            self._take_row(line)
        elif previous == "paragraph" and self._starts_table(line):
            self._context, self._opened = "table", self._line
        elif previous == "other":
            self._context = "other"  # a quote's or an indented code block's lazy line

    def _opens_item(self, item: re.Match[str]) -> bool:
        """Whether a line with a list marker starts an item (an ordered one interrupts a
        paragraph only when it starts at 1)."""
        if self._context != "paragraph" or self._blank:
            return True
        return item.group(2) is None or int(item.group(2)) == 1

    def _take_item(self, item: re.Match[str], line: str) -> None:
        marker_end = item.end(1) if item.group(1) else item.end(3)
        rest = line[marker_end:]
        spaces = len(rest) - len(rest.lstrip(" "))
        content_indent = marker_end + (spaces if 1 <= spaces <= 4 and rest.strip() else 1)
        if self._context == "list" and self._list is not None and self._same_list(item):
            self._list.items += 1
            self._list.content_indent = content_indent
        else:
            number = item.group(2)
            self._list = _List(number is not None, item.group(1) or item.group(3),
                               content_indent, int(number) if number else 0)
            self._opened = self._line
        self._context = "list"

    def _same_list(self, item: re.Match[str]) -> bool:
        current = self._list
        return current is not None and (item.group(2) is not None) == current.ordered \
            and (item.group(1) or item.group(3)) == current.marker

    def _list_joint(self) -> Joint:
        current = self._list
        assert current is not None
        return Joint("list", start=current.start + current.items if current.ordered else 0)

    def _starts_table(self, line: str) -> bool:
        """A delimiter row under a line with as many cells makes that line a table header."""
        if "|" not in line or "|" not in self._last_line or not _DELIMITER_ROW.match(line):
            return False
        header = _cells(self._last_line)
        if len(header) != len(_cells(line)):
            return False
        self._table = _Table(f"{self._last_line}\n{line}\n", lengths=[len(c) for c in header])
        return True

    def _take_row(self, line: str) -> None:
        table = self._table
        assert table is not None
        table.rows += 1
        if not table.widths:
            for column, cell in enumerate(_cells(line)[: len(table.lengths)]):
                table.lengths[column] = max(table.lengths[column], len(cell))

    def _table_joint(self) -> Joint:
        table = self._table
        assert table is not None
        if not table.widths:
            table.widths = tuple(min(length, _CELL_WIDTH) + 2 for length in table.lengths)
        return Joint("table", reopen=table.reopen, widths=table.widths)


def _starts_block(head: str, whole: bool) -> bool:
    """Whether a line starts a block other than a paragraph (or ends one, as a rule does);
    ``whole``: ``head`` is the whole line, so a rule can be told from a list item."""
    return bool(_FENCE.match(head) or _HEADING.match(head) or _QUOTE.match(head)
                or _ITEM.match(head) or (whole and _RULE.match(head)))


def _cells(line: str) -> list[str]:
    row = line.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [cell.strip() for cell in _PIPE.split(row)]


def _last_word_end(text: str, start: int, end: int) -> int:
    """Where scanning an unfinished line may stop: after its last letter or digit (nothing
    before it can still grow into a longer delimiter or an escape)."""
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return end
