"""Markdown for streamed content: safe HTML, and where the finished blocks end.

Content is untrusted (model output) and JupyterLab does not sanitise live outputs, so raw HTML in
it is shown as text, never interpreted; ordinary Markdown (code, lists, tables, links) renders.
"""

from __future__ import annotations

import html
from functools import lru_cache

from markdown_it import MarkdownIt


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def to_html(text: str) -> str:
    """Markdown rendered to HTML with raw HTML escaped (and javascript: links refused)."""
    return str(_parser().render(text))


def escape(text: str) -> str:
    """Text made safe to put inside HTML."""
    return html.escape(text, quote=True)


class BlockSplitter:
    """Finds where finished Markdown blocks end in growing text, in linear time.

    A block is finished at a blank line outside a fenced code block; text after it may still
    change how it renders, text before it never will.
    """

    def __init__(self) -> None:
        self._scanned = 0
        self._fence: str | None = None

    def feed(self, text: str) -> list[int]:
        """Scan the complete lines added since the last call; the block ends found there."""
        end = text.rfind("\n") + 1
        position = self._scanned
        found: list[int] = []
        while position < end:
            newline = text.index("\n", position)
            line = text[position:newline].strip()
            position = newline + 1
            if self._fence is not None:
                if line.startswith(self._fence):
                    self._fence = None
            elif line.startswith(("```", "~~~")):
                self._fence = line[:3]
            elif not line:
                found.append(position)
        self._scanned = max(self._scanned, end)
        return found

    def drop(self, count: int) -> None:
        """The caller removed the first ``count`` characters of the text (all scanned)."""
        self._scanned -= count
