"""Reasoning and tool calls, shown apart from the answer: a collapsed "Thinking" block (HTML
``<details>``, escaped, with a text/plain fallback) and one line per tool call."""

from __future__ import annotations

from dataclasses import dataclass, field

from wfnb._events import ToolCall
from wfnb.notebook._markdown import escape


@dataclass
class Aside:
    """Reasoning and tool calls shown apart from the answer, in stream order: live, then as one
    output. A run of reasoning is a list of its pieces; a tool call is the growing ToolCall."""

    items: list[list[str] | ToolCall] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)

    def think(self, text: str) -> None:
        last = self.items[-1] if self.items else None
        if isinstance(last, list):
            last.append(text)
        else:
            self.items.append([text])

    def call(self, call: ToolCall) -> None:
        if not any(item is call for item in self.items):
            self.items.append(call)

    def bundle(self) -> dict[str, str]:
        """The final output: collapsed Thinking blocks, one line per tool call."""
        html, plain = [], []
        for item in self.items:
            if isinstance(item, ToolCall):
                html.append(_call_html(item))
                plain.append(f"tool call: {item.summary()}")
            else:
                reasoning = "".join(item)
                html.append(_thinking_html(reasoning, ""))
                plain.append(f"Thinking:\n{reasoning.strip()}")
        return {"text/html": "".join(html), "text/plain": "\n".join(plain)}

    def live_html(self) -> str:
        """While streaming: each run of reasoning's last lines, open, and the tool calls."""
        html = []
        for item in self.items:
            if isinstance(item, ToolCall):
                html.append(_call_html(item))
            else:
                html.append(_thinking_html(_last(item, _LIVE_THOUGHTS), " open"))
        return "".join(html)


_LIVE_THOUGHTS = 1500  # characters of reasoning shown while it streams (bounds each refresh)


def _last(pieces: list[str], count: int) -> str:
    """The last ``count`` characters of the joined pieces (joining only those needed)."""
    size, start = 0, len(pieces)
    while start > 0 and size <= count:
        start -= 1
        size += len(pieces[start])
    text = "".join(pieces[start:])
    return text if len(text) <= count else "…" + text[-count:]


def _thinking_html(reasoning: str, attributes: str) -> str:
    return (
        f"<details class='wfnb-thinking'{attributes}><summary>Thinking</summary>"
        f"<div style='white-space:pre-wrap;opacity:0.7'>{escape(reasoning.strip())}</div>"
        "</details>"
    )


def _call_html(call: ToolCall) -> str:
    return f"<div class='wfnb-tool'>🔧 <code>{escape(call.summary())}</code></div>"
