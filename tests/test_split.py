"""Cutting a streamed answer into pieces: where cuts fall, and that the pieces, rendered one by
one, show what the whole text rendered at once shows."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._shapes import SHAPES, Node, Piece, answer, cut, tree
from wfnb.notebook._markdown import to_html
from wfnb.notebook._split import BlockSplitter

FREEZE = 300


def rendered(pieces: list[Piece]) -> list[Node]:
    return [tree(piece.html()) for piece in pieces]


def joined(pieces: list[Piece]) -> list[tuple[str, str]]:
    """Every seam between two pieces: (style of the block above, style of the block below)."""
    seams = []
    for upper, lower in itertools.pairwise(pieces):
        if upper.after is not None:
            above = tree(upper.html()).elements()[-1]
            below = tree(lower.html()).elements()[0]
            seams.append((str(above.attrs.get("style")), str(below.attrs.get("style"))))
    return seams


@pytest.mark.parametrize("shape", SHAPES)
def test_cuts_depend_on_the_text_alone(shape: str) -> None:
    text = answer(shape, 6)
    expected = cut(text, FREEZE, len(text))
    assert len(expected) > 5
    assert "".join(piece.text for piece in expected) == text
    for chunk in (1, 2, 3, 7, 16, 17, 64, 501):
        assert cut(text, FREEZE, chunk) == expected, f"chunks of {chunk}"


@pytest.mark.parametrize("shape", ["code block", "ordered list", "bullet list", "table"])
def test_long_blocks_are_cut_inside_and_meet_without_a_gap(shape: str) -> None:
    pieces = cut(answer(shape, 6), FREEZE, 13)
    inside = [piece for piece in pieces if piece.after is not None]
    assert len(inside) >= 5
    assert max(len(piece.text) for piece in pieces) < 2 * FREEZE
    for above, below in joined(pieces):
        assert "margin-bottom:0" in above
        assert "margin-top:0" in below


def test_a_cut_code_block_shows_the_same_code() -> None:
    text = answer("code block", 6)
    pieces = cut(text, FREEZE, 11)
    whole = tree(to_html(text)).find("code")
    parts = [code for piece in rendered(pieces) for code in piece.find("code")]
    assert len(whole) == 1 and len(parts) >= 5
    assert "".join(part.text() for part in parts) == whole[0].text()
    assert {str(part.attrs["class"]) for part in parts} == {"language-python"}
    assert "&lt;/code&gt;&lt;/pre&gt;" in whole[0].text()  # still escaped, in every piece


def test_an_ordered_list_keeps_counting_across_pieces() -> None:
    text = answer("ordered list", 6)  # every item is numbered "1."
    whole = tree(to_html(text)).elements("ol")
    lists = [ol for piece in rendered(cut(text, FREEZE, 5)) for ol in piece.elements("ol")]
    assert len(whole) == 1 and len(lists) >= 5
    assert [item for ol in lists for item in ol.elements("li")] == whole[0].elements("li")
    counted = 1
    for ol in lists:
        assert int(str(ol.attrs.get("start", 1))) == counted
        counted += len(ol.elements("li"))


def test_a_bullet_list_keeps_its_items() -> None:
    text = answer("bullet list", 6)
    whole = tree(to_html(text)).elements("ul")
    lists = [ul for piece in rendered(cut(text, FREEZE, 9)) for ul in piece.elements("ul")]
    assert len(whole) == 1 and len(lists) >= 5
    assert [item for ul in lists for item in ul.elements("li")] == whole[0].elements("li")
    assert "&lt;script&gt;" in whole[0].text()


def test_a_cut_table_keeps_its_header_rows_and_columns() -> None:
    text = answer("table", 6)
    whole = tree(to_html(text)).elements("table")[0]
    tables = [t for piece in rendered(cut(text, FREEZE, 7)) for t in piece.elements("table")]
    assert len(tables) >= 5
    header = whole.elements("thead")
    rows: list[Node] = []
    for number, table in enumerate(tables):
        thead = table.elements("thead")
        assert thead == [Node("thead", {"style": "visibility:collapse;border:0"},
                              header[0].children)] if number else header
        body = table.elements("tbody")[0].elements("tr")
        if number < len(tables) - 1:
            assert len(body) % 2 == 0  # striped rows keep alternating across pieces
        rows += body
        assert table.elements("colgroup") == tables[0].elements("colgroup")
    assert rows == whole.elements("tbody")[0].elements("tr")
    assert "&lt;img" in whole.text() and not whole.find("img")


def test_a_paragraph_is_cut_at_sentence_ends_outside_code_links_and_emphasis() -> None:
    text = answer("paragraph", 6)
    pieces = cut(text, FREEZE, 3)
    paragraphs = [p for piece in rendered(pieces) for p in piece.elements("p")]
    assert len(paragraphs) >= 5
    whole = tree(to_html(text)).elements("p")[0]
    assert [child for p in paragraphs for child in p.children if isinstance(child, Node)] \
        == [child for child in whole.children if isinstance(child, Node)]
    for piece in pieces[1:]:
        assert re.match(r"Sentence \d+ has", piece.text)
    assert " ".join(p.text() for p in paragraphs) == whole.text()


def test_a_paragraph_with_no_safe_place_is_still_cut() -> None:
    unbalanced = "A `tick that never closes. " + "Then more words follow. " * 200
    no_spaces = "x" * 40 * FREEZE
    for text, reach in ((unbalanced, 4), (no_spaces, 8)):
        pieces = cut(text, FREEZE, 10)
        assert len(pieces) > 3
        assert "".join(piece.text for piece in pieces) == text
        assert max(len(piece.text) for piece in pieces) <= reach * FREEZE + 30


def test_blank_lines_inside_a_list_item_or_fence_are_not_block_ends() -> None:
    items = "- item\n\n  more of the same item\n\n- next item\n" * 40
    text = items + "\n```\n" + "line\n\n" * 200 + "```\n"
    kinds = {}
    for found in BlockSplitter(50).feed(text):
        following = text[found.position : found.position + 6]
        kinds[found.joint.kind if found.joint else None] = True
        if found.position < len(items):
            assert found.joint is not None and found.joint.kind == "list", following
            assert following.startswith("- "), following
        elif found.joint is None:
            assert following == "```\nli"
        else:
            assert found.joint.kind == "code", following
            assert following.startswith(("line", "\n")), following
    assert "list" in kinds and "code" in kinds


def test_setext_headings_and_tables_after_a_paragraph_are_not_cut_apart() -> None:
    text = "".join(f"Title {n}\n---\nName | Value\n--- | ---\nx | {n}\n\n" for n in range(50))
    pieces = cut(text, 40, 5)
    for piece in pieces:
        assert piece.text.startswith("Title")
    assert "".join(p.html() for p in pieces).count("<h2>") == 50


@pytest.mark.parametrize("shape", SHAPES)
def test_raw_html_in_the_text_stays_text_in_every_piece(shape: str) -> None:
    text = answer(shape, 6)
    if shape == "code block":  # the fence's info string is repeated in every piece
        text = text.replace("```python", "```<img src=x onerror=alert(1)>")
    pieces = cut(text, FREEZE, 7)
    assert len(pieces) > 3
    for piece in pieces:
        html = piece.html()
        assert not re.search(r"<(script|img|b|i|u)\b", html), html
        tree(html)  # and every element is closed where it was opened


def test_a_cut_tables_column_widths_come_from_all_of_its_first_piece() -> None:
    rows = "".join(f"| {n} | {'word ' * (n % 5 + 1)}|\n" for n in range(40))
    pieces = cut(f"| # | note |\n| --- | --- |\n{rows}", 200, 1)
    widths = {piece.after.widths for piece in pieces if piece.after is not None}
    assert widths == {(len("0") + 2, len("word " * 5) - 1 + 2)}  # the first piece: rows 0-7


def test_short_blocks_are_left_whole() -> None:
    """Lists, code blocks and tables shorter than freeze_chars are never cut inside: pieces end
    between blocks, as they did before blocks could be cut."""
    blocks = ["".join(f"- item {n}\n" for n in range(8)),
              "```\n" + "".join(f"x < {n}\n" for n in range(12)) + "```\n",
              "| a |\n| - |\n" + "".join(f"| {n} |\n" for n in range(12)),
              "".join(f"1. step {n}\n" for n in range(8))]
    text = "".join(f"Paragraph {n}.\n\n{blocks[n % 4]}\n" for n in range(200))
    cuts = BlockSplitter(100).feed(text)
    assert len(cuts) > 50
    assert all(found.joint is None for found in cuts)


LINES = ["- item", "- item with `code. Here`", "* star", "1. one", "7) seven", "  - nested",
         "   continued", "```", "```python", "~~~", "| a | b |", "|---|--:|", "| 1 | 2 |", "",
         "", "# heading", "> quote", "    indented", "Text. More text here", "***", "---",
         "===", "<script>alert(1)</script>", "A *b. C* and [d. E](f) g. Hh.", "x" * 60]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=20, max_size=200), st.integers(1, 40))
def test_any_markdown_is_cut_the_same_whatever_the_chunks(lines: list[str], chunk: int) -> None:
    text = "\n".join(lines) + "\n"
    expected = cut(text, 30, len(text))
    assert cut(text, 30, chunk) == expected
    assert "".join(piece.text for piece in expected) == text
    for piece in expected:
        html = piece.html()
        tree(html)
        assert "<script" not in html
