"""What a workflow run yields: RunResponse objects, tagged with a RunEvent, with the reasoning,
tool calls and token usage a model streamed alongside the text."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from wfnb._format import clip, tokens
from wfnb.storage import Question


class RunEvent(str, Enum):
    """The kind of a RunResponse (Agno's names and values, so code moves over unchanged)."""

    run_started = "RunStarted"
    run_response = "RunResponse"
    run_completed = "RunCompleted"
    run_error = "RunError"
    run_paused = "RunPaused"  # the run asked a question (``question``) and waits for an answer
    workflow_started = "WorkflowStarted"
    workflow_completed = "WorkflowCompleted"


#: Events after which a consumer may stop iterating: the run's state is saved before they are
#: handed out, so stopping there loses nothing.
COMPLETION_EVENTS = frozenset({RunEvent.run_completed, RunEvent.workflow_completed})


@dataclass
class ToolCall:
    """A tool call a model made: its name and arguments (JSON text as the model sent it), and
    its result once known. While a stream arrives the same object grows in place."""

    name: str = ""
    arguments: str = ""
    id: str | None = None
    result: str | None = None

    def summary(self, width: int = 60) -> str:
        """One line: ``name(arguments) → result``, each part cut to ``width`` characters."""
        line = f"{self.name or '?'}({clip(self.arguments, width)})"
        return line if self.result is None else f"{line} → {clip(self.result, width)}"


@dataclass(frozen=True)
class Usage:
    """Tokens a run used, as the provider reported them (None: not reported)."""

    input_tokens: int | None = None
    output_tokens: int | None = None

    def __str__(self) -> str:
        return f"tokens {tokens(self.input_tokens, self.output_tokens) or 'unknown'}"


@dataclass(repr=False)
class RunResponse:
    """One piece of a run's output; the runtime fills in ``run_id`` and ``session_id``."""

    content: Any = None
    content_type: str = "str"
    event: str = RunEvent.run_response.value
    run_id: str | None = None
    session_id: str | None = None
    workflow_name: str | None = None
    created_at: float = field(default_factory=time.time)
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    question: Question | None = None  # on a RunPaused response: what the run waits for
    #: on a RunPaused response: ``resume(answer)`` continues the run (``Workflow.resume``)
    resume: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.event, RunEvent):
            self.event = self.event.value
        if self.content_type == "str" and self.content is not None and not isinstance(
            self.content, str
        ):
            self.content_type = type(self.content).__name__

    def __repr__(self) -> str:
        text = self.get_content_as_string()
        shown = repr(text if len(text) <= 60 else text[:57] + "...")
        return (
            f"RunResponse(event={self.event!r}, run_id={self.run_id!r}, "
            f"session_id={self.session_id!r}, content={shown} ({len(text)} chars))"
        )

    def get_content_as_string(self) -> str:
        """The content as text (``""`` for None)."""
        return "" if self.content is None else str(self.content)
