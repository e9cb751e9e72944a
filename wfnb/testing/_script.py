"""What the fake model answers: a :class:`Reply` chosen from the request, deterministically.

A request is first reduced to a :class:`Prompt` (the last user text, the tool result it brings
back, the tools it offers). The reply is then the one scripted for its ``model`` name, else the
built-in scenario that name selects (see :func:`scenario_reply`), else a short answer that
quotes the question. Token counts are words and punctuation marks, so they never vary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\S+\s*|\s+")
_JSON_PIECE = re.compile(r"\w+|\W+")
_LONG = re.compile(r"fake-long-(?P<shape>[a-z]+)(?:-(?P<kb>\d+)k)?")
_ERROR = re.compile(r"fake-error-(?P<status>[45]\d\d)")


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per word and per punctuation mark."""
    return len(_TOKEN.findall(text))


def split_words(text: str, words: int = 1) -> list[str]:
    """``text`` in deltas of ``words`` words with their trailing blanks; joined, it is ``text``."""
    pieces = _WORD.findall(text)
    return ["".join(pieces[i:i + words]) for i in range(0, len(pieces), max(1, words))]


def split_json(arguments: str) -> list[str]:
    """A JSON string in the fragments a model streams it in: names, values, punctuation runs."""
    return _JSON_PIECE.findall(arguments)


@dataclass(frozen=True)
class ToolSpec:
    """A tool the request offers the model: its name and JSON-schema parameters."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolResult:
    """The result of an earlier tool call that the request sends back."""

    name: str
    content: str


@dataclass(frozen=True)
class Prompt:
    """What a request asks, whichever API it came through."""

    model: str
    question: str
    input_tokens: int
    tools: tuple[ToolSpec, ...] = ()
    tool_result: ToolResult | None = None


@dataclass(frozen=True)
class ToolCall:
    """A call the model makes; ``arguments`` are sent as JSON, in fragments when streamed."""

    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class Failure:
    """An API error: an HTTP ``status`` before any output, or, when ``midstream``, an error event
    in the middle of a stream that already began (HTTP 200)."""

    message: str
    status: int = 500
    midstream: bool = False


@dataclass(frozen=True)
class Reply:
    """One answer of the fake model: reasoning, then text, then tool calls (any may be empty).

    ``words_per_delta`` sets how many words each streamed text delta carries; ``delay``, when
    set, the seconds between streamed events (instead of the server's ``delay``).
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    failure: Failure | None = None
    words_per_delta: int = 1
    delay: float | None = None

    @property
    def output_tokens(self) -> int:
        calls = sum(count_tokens(c.name) + count_tokens(c.arguments_json) for c in self.tool_calls)
        return count_tokens(self.text) + self.reasoning_tokens + calls

    @property
    def reasoning_tokens(self) -> int:
        return count_tokens(self.reasoning)

    def text_deltas(self) -> list[str]:
        """The text as streamed: cut after its first half when the reply fails mid-stream."""
        deltas = split_words(self.text, self.words_per_delta)
        return deltas if self.failure is None else deltas[:len(deltas) // 2]

    def reasoning_deltas(self) -> list[str]:
        return split_words(self.reasoning)


Responder = Callable[[Prompt], Reply]


def answer(prompt: Prompt) -> str:
    """The default answer: it quotes the question, so each request gets its own."""
    return (
        f"**You asked:** {prompt.question or '(nothing)'}\n\n"
        "This answer comes from wfnb's local model server. It streams word by word, the way a "
        "real model does, so you can watch it arrive."
    )


def reasoning(prompt: Prompt) -> str:
    return (
        f"The user asks: {prompt.question or '(nothing)'} "
        "A short, friendly answer will do; no need for a long explanation."
    )


def tool_call(prompt: Prompt) -> ToolCall:
    """A call of the first tool the request offers, each argument filled from the question
    (``lookup(query=question)`` when it offers none)."""
    if not prompt.tools:
        return ToolCall("lookup", {"query": prompt.question})
    tool = prompt.tools[0]
    properties = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    return ToolCall(tool.name, {str(name): _argument(schema, prompt.question)
                                for name, schema in (properties or {}).items()})


def _argument(schema: Any, question: str) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind in ("integer", "number"):
        return count_tokens(question)
    if kind == "boolean":
        return True
    if kind == "array":
        return [question]
    if kind == "object":
        return {}
    return question


_SHAPES: dict[str, tuple[str, str, Callable[[int], str]]] = {
    # shape: (head, tail, line i)
    "paragraphs": ("", "", lambda i: f"Paragraph {i} explains one more step of the plan, "
                   "with enough words to wrap on a screen.\n\n"),
    "code": ("```python\n", "```\n", lambda i: f"def step_{i}(x):\n    return x + {i}\n"),
    "list": ("", "", lambda i: f"- item {i}: one more thing worth remembering\n"),
    "table": ("| # | name | value |\n|---|---|---|\n", "",
              lambda i: f"| {i} | row {i} | {i * 7 % 100} |\n"),
    "line": ("", "\n", lambda i: f"Sentence {i} goes on without a line break. "),
}
LONG_SHAPES = tuple(_SHAPES)


def long_text(shape: str, size: int) -> str:
    """About ``size`` characters of Markdown in one ``shape``: paragraphs, one fenced code block,
    one bullet list, one table, or one paragraph with no line break."""
    head, tail, line = _SHAPES[shape]
    parts = [head]
    total, i = len(head) + len(tail), 1
    while total < size:
        parts.append(line(i))
        total += len(parts[-1])
        i += 1
    parts.append(tail)
    return "".join(parts)


SCENARIO_MODELS = (
    "fake-reasoning", "fake-tool", "fake-reasoning-tool", "fake-error-500", "fake-error-529",
    "fake-error-midstream", "fake-slow", *(f"fake-long-{shape}" for shape in LONG_SHAPES),
)


def scenario_reply(prompt: Prompt) -> Reply:
    """The built-in scenarios, chosen by the request's ``model``:

    - ``fake-reasoning``: thinks, then answers; ``fake-tool``: calls a tool (see
      :func:`tool_call`); ``fake-reasoning-tool``: both. Once the request brings a tool's result
      back, they answer with it instead.
    - ``fake-error-<status>`` (500, 529, 429, ...): HTTP error; ``fake-error-midstream``: half the
      answer, then an error event in the stream.
    - ``fake-long-<shape>[-<n>k]``: about n KB (default 20) of one Markdown shape, in
      :data:`LONG_SHAPES`.
    - ``fake-slow``: the default answer, 0.1 s between events (to interrupt it, or watch it).
    - any other name: the default answer.
    """
    model = prompt.model
    if error := _ERROR.fullmatch(model):
        status = int(error["status"])
        return Reply(failure=Failure(f"fake error {status} (model {model!r})", status))
    if model == "fake-error-midstream":
        return Reply(text=answer(prompt),
                     failure=Failure(f"fake error in the stream (model {model!r})", 500, True))
    if (long := _LONG.fullmatch(model)) and long["shape"] in LONG_SHAPES:
        size = int(long["kb"] or 20) * 1000
        return Reply(text=long_text(long["shape"], size), words_per_delta=4)
    if model == "fake-slow":
        return Reply(text=answer(prompt), delay=0.1)
    parts = model.split("-")
    thinks = model.startswith("fake-") and "reasoning" in parts
    calls = model.startswith("fake-") and "tool" in parts
    thought = reasoning(prompt) if thinks else ""
    if prompt.tool_result is not None:
        result = prompt.tool_result
        return Reply(text=f"The `{result.name}` tool answered: {result.content}",
                     reasoning=thought)
    if calls:
        return Reply(reasoning=thought, tool_calls=(tool_call(prompt),))
    return Reply(text=answer(prompt), reasoning=thought)


def collect_texts(value: Any, skip: frozenset[str]) -> list[str]:
    """Every string inside a request's messages, except under the keys in ``skip`` (roles,
    types, ids): what the fake tokenizer counts as input."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() if key not in skip
                for text in collect_texts(item, skip)]
    if isinstance(value, list):
        return [text for item in value for text in collect_texts(item, skip)]
    return []


def input_tokens(*parts: Any) -> int:
    skip = frozenset({"role", "type", "id", "tool_call_id", "tool_use_id", "call_id",
                      "signature", "cache_control"})
    return sum(count_tokens(text) for part in parts for text in collect_texts(part, skip))


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of blocks with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content
                       if isinstance(block, dict) and isinstance(block.get("text"), str))
    return ""
