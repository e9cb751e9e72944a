"""Long Markdown answers in the shapes models write (one code block, one list, one table, one
paragraph without line breaks, or paragraphs), with HTML-looking text in each; and a way to
cut one into pieces as LiveView does and read the pieces' HTML back as a tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from wfnb.notebook._markdown import piece_html
from wfnb.notebook._split import BlockSplitter, Joint


def code_block(lines: int) -> str:
    body = "".join(f"if a < {n}:  # <b>{n}</b> & more\n    b = '</code></pre>'\n"
                   for n in range(lines))
    return f"Some code:\n\n```python\n{body}```\n\nAfter the code.\n"


def ordered_list(items: int) -> str:
    """Numbered lazily (every item "1."), as models often do, with nested bullets now and then."""
    body = "".join(f"1. step **{n}** with `a < {n}`\n" + ("   - nested <i>x</i>\n" if n % 5 == 0
                                                          else "") for n in range(items))
    return f"Steps:\n\n{body}\nDone.\n"


def bullet_list(items: int) -> str:
    return "".join(f"- item {n}: [link](http://example.com/{n}) <script>x</script>\n"
                   + ("  continued on a second line\n" if n % 9 == 4 else "")
                   for n in range(items))


def table(rows: int) -> str:
    body = "".join(f"| {n} | `x{n}` | a <img src=x onerror=alert(1)> b |\n" for n in range(rows))
    return f"| n | name | <b>note</b> |\n| ---: | :--- | --- |\n{body}\nAfter the table.\n"


def paragraph(sentences: int) -> str:
    """One line; dots inside code spans, link text and emphasis must not be cut at."""
    return " ".join(f"Sentence {n} has `code. With a dot` and [a link. Here](http://x.y) and "
                    f"*emphasis. Across* words <u>{n}</u>." for n in range(sentences)) + "\n"


def paragraphs(blocks: int) -> str:
    return "".join(f"Paragraph {n} about the session <em>state</em>. " * (1 + n % 6) + "\n\n"
                   for n in range(blocks))


# Each shape, by how many of its units make about one kilobyte.
SHAPES: dict[str, tuple[Callable[[int], str], int]] = {
    "code block": (code_block, 16),
    "ordered list": (ordered_list, 33),
    "bullet list": (bullet_list, 15),
    "table": (table, 20),
    "paragraph": (paragraph, 8),
    "paragraphs": (paragraphs, 6),
}


def answer(shape: str, kilobytes: float) -> str:
    make, per_kilobyte = SHAPES[shape]
    return make(max(1, round(per_kilobyte * kilobytes)))


@dataclass
class Piece:
    text: str
    before: Joint | None
    after: Joint | None

    def html(self) -> str:
        return piece_html(self.text, self.before, self.after)


def cut(text: str, freeze_chars: int, chunk: int) -> list[Piece]:
    """The pieces LiveView makes of ``text`` arriving ``chunk`` characters at a time."""
    splitter, tail, pieces = BlockSplitter(freeze_chars), "", []
    joint: Joint | None = None
    for start in range(0, len(text), chunk):
        tail += text[start : start + chunk]
        done = 0
        for found in splitter.feed(tail):
            pieces.append(Piece(tail[done : found.position], joint, found.joint))
            joint, done = found.joint, found.position
        tail = tail[done:]
        splitter.drop(done)
    return [*pieces, Piece(tail, joint, None)]


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def elements(self, tag: str | None = None) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and tag in (None, c.tag)]

    def find(self, tag: str) -> list[Node]:
        """Every element named ``tag`` below this one, depth first."""
        found = []
        for child in self.elements():
            found += [child] if child.tag == tag else []
            found += child.find(tag)
        return found

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack = [Node("root", {})]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in ("col", "img", "br", "hr", "input"):
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)

    def handle_entityref(self, name: str) -> None:
        self.stack[-1].children.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.stack[-1].children.append(f"&#{name};")


def tree(html: str) -> Node:
    """HTML as a tree (asserting every element is closed where it was opened)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed <{builder.stack[-1].tag}>"
    return builder.stack[0]
