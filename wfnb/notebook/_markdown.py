"""Markdown for streamed content: safe HTML, for the whole text or for one piece of it.

Content is untrusted (model output) and JupyterLab does not sanitise live outputs, so raw HTML in
it is shown as text, never interpreted; ordinary Markdown (code, lists, tables, links) renders.
A streamed answer is shown as pieces, each an output of its own (see ``_split``); a block cut
between two pieces is rendered so the two halves meet without a gap, as one block would.
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

from wfnb.notebook._split import Joint

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


_OPENING = {"code": ("fence",), "list": ("bullet_list_open", "ordered_list_open"),
            "table": ("table_open",), "paragraph": ("paragraph_open",)}


def piece_html(
    text: str, before: Joint | None = None, after: Joint | None = None, *,
    remote_images: bool = False,
) -> str:
    """One piece of a streamed answer as HTML: its first block continues the previous piece
    (``before``), its last block continues in the next (``after``), with no gap in between.

    A code block or table continued from before is reopened with its fence or header (the
    repeated header is hidden), an ordered list keeps counting, and a cut table has the same
    fixed column widths in every piece, so the pieces line up as one table. Images from other
    hosts are links unless ``remote_images``.
    """
    if before is None and after is None:
        return to_html(text, remote_images=remote_images)
    parser = _parser(remote_images)
    env: dict[str, object] = {}
    tokens = parser.parse((before.reopen if before else "") + text, env)
    blocks = _top_level_blocks(tokens)
    parts = []
    for index, block in enumerate(blocks):
        styles: list[str] = []
        widths: tuple[int, ...] = ()
        if index == 0 and before and block[0].type in _OPENING[before.kind]:
            styles.append("margin-top:0;padding-top:0" if before.kind == "code"
                          else "margin-top:0")
            _continue_above(block, before)
            widths = before.widths
        if index == len(blocks) - 1 and after and block[0].type in _OPENING[after.kind]:
            styles.append("margin-bottom:0;padding-bottom:0" if after.kind == "code"
                          else "margin-bottom:0")
            widths = after.widths
        rendered = str(parser.renderer.render(block, parser.options, env))
        parts.append(_styled(rendered, ";".join(styles), widths) if styles else rendered)
    return "".join(parts)


def _top_level_blocks(tokens: Sequence[Token]) -> list[Sequence[Token]]:
    """The tokens of each top-level block, in order."""
    blocks, start = [], 0
    for index, token in enumerate(tokens):
        if token.level == 0 and token.nesting <= 0:
            blocks.append(tokens[start : index + 1])
            start = index + 1
    return blocks


def _continue_above(block: Sequence[Token], joint: Joint) -> None:
    """An ordered list counts on from the piece above; a table's repeated header is hidden."""
    if joint.start:
        block[0].attrSet("start", str(joint.start))
    for token in block:
        if token.type == "thead_open":
            token.attrSet("style", "visibility:collapse;border:0")


def _styled(rendered: str, style: str, widths: tuple[int, ...]) -> str:
    """``style`` put on the first tag of a rendered block; a cut table gets fixed columns."""
    tag_end = rendered.index(">")
    columns = ""
    if widths:
        total = sum(widths)
        style += f";table-layout:fixed;width:{total}ch;max-width:100%"
        columns = "".join(f'<col style="width:{100 * width / total:.2f}%">' for width in widths)
        columns = f"<colgroup>{columns}</colgroup>"
    return f'{rendered[:tag_end]} style="{style}">{columns}{rendered[tag_end + 1 :]}'
