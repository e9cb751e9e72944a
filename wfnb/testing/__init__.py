"""Testing helpers: a local fake model server for trying wfnb, and testing with it, offline.

``with ModelServer() as server:`` serves OpenAI Chat Completions, OpenAI Responses and Anthropic
Messages on 127.0.0.1 in the real wire formats, so the real client packages (and LangChain,
agno, ... on top of them) stream from it without network or keys. The request's ``model``
picks a scenario (``fake-reasoning``, ``fake-tool``, ``fake-error-500``, ...; see
:func:`scenario_reply`) and :meth:`ModelServer.script` sets your own replies. Not imported by
``import wfnb``; standard library only.
"""

from wfnb.testing._script import (
    LONG_SHAPES,
    Failure,
    Prompt,
    Reply,
    ToolCall,
    ToolResult,
    ToolSpec,
    count_tokens,
    scenario_reply,
)
from wfnb.testing.model_server import ModelServer, RecordedRequest

__all__ = [
    "LONG_SHAPES",
    "Failure",
    "ModelServer",
    "Prompt",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "count_tokens",
    "scenario_reply",
]
