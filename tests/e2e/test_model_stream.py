"""A real OpenAI client streaming from the local model server into JupyterLab: the reasoning
shows live, then folds into a collapsed "Thinking" block; the tool call is one line; the
answer is rendered Markdown; the status line counts tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.e2e._lab import (
    Lab,
    Shooter,
    error_outputs,
    open_notebook,
    output_area,
    run_all_cells,
    wait_until_run,
    write_notebook,
)
from wfnb.testing import ModelServer

pytestmark = pytest.mark.browser


@pytest.fixture
def slow_server() -> Iterator[ModelServer]:
    with ModelServer(delay=0.05) as server:
        yield server


def test_reasoning_tool_call_and_answer_render_apart_in_jupyterlab(
    page: Page, lab: Lab, shoot: Shooter, slow_server: ModelServer
) -> None:
    url = slow_server.openai_base_url
    write_notebook(lab.root / "e2e_model.ipynb", [
        f"%load_ext wfnb\nimport openai\n"
        f"client = openai.OpenAI(base_url={url!r}, api_key='x')\n"
        "msgs = [{'role': 'user', 'content': 'Why is the sky blue?'}]\n"
        "tools = [{'type': 'function', 'function': {'name': 'get_weather', 'parameters': "
        "{'type': 'object', 'properties': {'city': {'type': 'string'}}}}}]",
        "%workflow client.chat.completions.create(model='fake-reasoning', messages=msgs, "
        "stream=True, stream_options={'include_usage': True})",
        "%workflow client.chat.completions.create(model='fake-tool', messages=msgs, tools=tools, "
        "stream=True)",
    ])
    open_notebook(page, lab, "e2e_model.ipynb")
    run_all_cells(page)

    answer = output_area(page, 1)
    answer.locator("details.wfnb-thinking[open]").wait_for()  # open while it streams
    answer.scroll_into_view_if_needed()
    shoot("05_model_thinking_live")
    wait_until_run(page, lab)
    shoot("05_model_done")

    thinking = answer.locator("details.wfnb-thinking")
    assert thinking.count() == 1 and thinking.get_attribute("open") is None  # collapsed
    assert thinking.locator("summary").inner_text() == "Thinking"
    thinking.locator("summary").click()
    assert "The user asks: Why is the sky blue?" in thinking.inner_text()
    assert answer.locator(".wfnb-md strong").first.inner_text() == "You asked:"
    assert "Thinking" not in answer.locator(".wfnb-md").inner_text()
    status = answer.locator(".wfnb-status").last.inner_text()
    assert status.startswith("done") and "tokens 6 in / " in status

    tool = output_area(page, 2).locator(".wfnb-tool")
    assert tool.inner_text().strip() == '🔧 get_weather({"city": "Why is the sky blue?"})'
    assert not error_outputs(page)
