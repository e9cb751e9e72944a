"""LiveView, the Markdown block splitter and chunk shapes, without a shell."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tests._shapes import SHAPES, answer
from wfnb import RunResponse, ToolCall, UnknownChunkError, Usage
from wfnb._chunks import adapt
from wfnb.notebook import _live
from wfnb.notebook._live import Data, LiveView, RunInfo, TextView
from wfnb.notebook._markdown import piece_html, to_html
from wfnb.notebook._split import BlockSplitter, Joint


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[Data, str, bool]] = []
        self.now = 0.0

    def publish(self, data: Data, display_id: str, update: bool) -> None:
        self.messages.append((data, display_id, update))

    def clock(self) -> float:
        return self.now


def stream(recorder: Recorder, chunks: list[str], seconds_per_chunk: float, **options: Any) -> None:
    view = LiveView(RunInfo(), recorder.publish, clock=recorder.clock, **options)
    for chunk in chunks:
        recorder.now += seconds_per_chunk
        view.add(chunk)
    view.finish("done")


def test_updates_never_exceed_the_refresh_rate() -> None:
    recorder = Recorder()
    stream(recorder, ["word "] * 5000, 0.001, refresh_rate=4)  # 5 s of chunks
    updates = sum(update for _, _, update in recorder.messages)
    assert updates <= 5 * 4 + 1  # plus the final flush


def test_a_slow_stream_is_shown_chunk_by_chunk() -> None:
    recorder = Recorder()
    stream(recorder, ["a", "b", "c"], 1.0, refresh_rate=10)
    live = [data["text/html"] for data, _, update in recorder.messages
            if update and data.get("text/html")]
    assert [html.split("<div")[0] for html in live] == ["<p>a</p>\n", "<p>ab</p>\n", "<p>abc</p>\n"]


def test_finished_blocks_are_frozen_and_the_text_is_kept_whole() -> None:
    recorder = Recorder()
    text = "".join(f"para {n} " + "x" * 80 + "\n\n" for n in range(30))
    stream(recorder, list(text), 0.01, refresh_rate=100, freeze_chars=300)
    displays = [data for data, _, update in recorder.messages if not update]
    frozen = [d["text/plain"] for d in displays if "wfnb-md" in d.get("text/html", "")]
    assert len(frozen) > 5
    assert "".join(frozen) == text


def test_splitter_ignores_blank_lines_inside_code_fences() -> None:
    splitter = BlockSplitter(freeze_chars=1)
    text = "intro\n\n```\ncode\n\nmore code\n"
    cuts = splitter.feed(text)
    assert (cuts[0].position, cuts[0].joint) == (len("intro\n\n"), None)
    inside = cuts[1:]  # cut inside the fence: every one reopens it in the next piece
    lines = ("code", "\nmore", "more")
    assert [cut.position for cut in inside] == [text.index(line) for line in lines]
    assert all(cut.joint is not None and cut.joint.reopen == "```\n" for cut in inside)
    text += "```\n\nafter\n"
    assert [(cut.position, cut.joint) for cut in splitter.feed(text)] == [
        (len(text) - len("after\n"), None)]


def test_outputs_split_where_the_content_says_whatever_the_timing() -> None:
    text = "".join(f"para {n} " + "y" * (n * 7 % 90) + "\n\n" for n in range(60))
    chunks = [text[i : i + 13] for i in range(0, len(text), 13)]
    saved = []
    for seconds_per_chunk in (0.0001, 0.03, 0.5):
        recorder = Recorder()
        stream(recorder, chunks, seconds_per_chunk, refresh_rate=10, freeze_chars=400)
        saved.append([data for data, _, update in recorder.messages
                      if not update and "wfnb-status" not in data.get("text/html", "")])
    assert saved[0] == saved[1] == saved[2]
    assert len(saved[0]) > 5


def in_chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def saved_outputs(recorder: Recorder) -> list[Data]:
    """What the notebook keeps, status lines left out (they hold the elapsed time); asserting
    on the way that each output's first message is its final content (what nbval compares)."""
    first: dict[str, Data] = {}
    last: dict[str, Data] = {}
    for data, display_id, update in recorder.messages:
        if not update:
            first[display_id] = data
        last[display_id] = data
    assert first == last
    return [data for data in first.values() if "wfnb-status" not in data.get("text/html", "")]


@pytest.mark.parametrize("shape", SHAPES)
def test_saved_outputs_do_not_depend_on_chunking_or_timing(shape: str) -> None:
    text = answer(shape, 8)
    saved = []
    for size, seconds_per_chunk in ((1, 0.0001), (7, 0.03), (300, 0.5), (len(text), 0.0)):
        recorder = Recorder()
        stream(recorder, in_chunks(text, size), seconds_per_chunk, refresh_rate=10,
               freeze_chars=400)
        saved.append(saved_outputs(recorder))
    assert all(outputs == saved[0] for outputs in saved)
    frozen = [data for data in saved[0] if data.get("text/plain")]
    assert len(frozen) > 5
    assert "".join(data["text/plain"] for data in frozen) == text


@pytest.mark.parametrize("shape", SHAPES)
def test_published_bytes_grow_linearly_in_every_shape(shape: str) -> None:
    """Twenty kilobytes a second in 10-character chunks, at 10 refreshes a second: what is sent
    stays within a small multiple of what is kept, however long the answer."""
    overheads = []
    for kilobytes in (16, 64):
        recorder = Recorder()
        stream(recorder, in_chunks(answer(shape, kilobytes), 10), 0.0005, refresh_rate=10,
               freeze_chars=500)
        published = sum(len(json.dumps(data)) for data, _, _ in recorder.messages)
        kept = sum(len(json.dumps(data)) for data in saved_outputs(recorder))
        overheads.append(published / kept)
    assert overheads[1] <= 1.6
    assert overheads[1] <= overheads[0] * 1.1


@pytest.mark.parametrize("shape", SHAPES)
def test_each_refresh_renders_a_bounded_tail(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendered characters are counted through the renderer (not wall time): one long list,
    table or code block must not be re-rendered whole at every refresh."""
    rendered: list[int] = []

    def counting(
        text: str, before: Joint | None = None, after: Joint | None = None, **options: Any
    ) -> str:
        rendered.append(len(text))
        return piece_html(text, before, after, **options)

    monkeypatch.setattr(_live, "piece_html", counting)
    text = answer(shape, 48)
    freeze_chars, per_refresh = 500, 200  # 10-character chunks, 20 of them per refresh
    stream(Recorder(), in_chunks(text, 10), 0.005, refresh_rate=10, freeze_chars=freeze_chars)
    assert max(rendered) <= 3 * freeze_chars + per_refresh
    assert sum(rendered) <= 8 * len(text)


def test_markdown_keeps_code_and_escapes_html() -> None:
    html = to_html("**bold** <b>raw</b> [x](javascript:alert(1))\n\n```\na < b\n```")
    assert "<strong>bold</strong>" in html and "&lt;b&gt;raw&lt;/b&gt;" in html
    assert 'href="javascript' not in html
    assert "a &lt; b" in html


@pytest.mark.parametrize(
    ("chunk", "text"),
    [
        ("plain", "plain"),
        (RunResponse(content="resp"), "resp"),
        (RunResponse(content=None), ""),
        (SimpleNamespace(content="attr"), "attr"),
        ({"choices": [{"delta": {"content": "d"}}]}, "d"),
        ({"choices": [{"message": {"content": "m"}}]}, "m"),
        ({"choices": [{"text": "t"}]}, "t"),
        ({"choices": []}, ""),
        (SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=None))]), ""),
    ],
)
def test_chunk_shapes(chunk: Any, text: str) -> None:
    assert adapt(chunk).text == text


def test_an_unknown_chunk_shape_is_a_clear_error() -> None:
    with pytest.raises(UnknownChunkError, match=r"cannot show a chunk of type builtins\.int.*"
                       r"register_chunk_adapter\(int, fn\)"):
        adapt(42)


def aside_stream(recorder: Recorder, **options: Any) -> LiveView:
    """Text, then reasoning and a growing tool call, then text again, then the end."""
    view = LiveView(RunInfo(), recorder.publish, clock=recorder.clock, **options)
    call = ToolCall(name="search", id="c1")
    steps: list[Callable[[], object]] = [
        lambda: view.add("Let me look. "), lambda: view.think("<b>why</b> "),
        lambda: view.think("so."), lambda: view.call(call),
        lambda: setattr(call, "arguments", '{"q": "sky"}'), lambda: view.call(call),
        lambda: setattr(call, "result", "blue"), lambda: view.add("It is **blue**."),
    ]
    for step in steps:
        recorder.now += 1.0
        step()
    view.info.usage = Usage(12, 30)
    view.finish("done")
    return view


def test_reasoning_and_tool_calls_are_shown_apart_in_stream_order() -> None:
    recorder = Recorder()
    aside_stream(recorder)
    first: dict[str, Data] = {}
    last: dict[str, Data] = {}
    for data, display_id, _ in recorder.messages:
        first.setdefault(display_id, data)
        last[display_id] = data
    assert first == last  # every output starts as it ends (what nbval compares)
    shown = [data for data in last.values() if data["text/plain"] or data.get("text/html")]
    assert [data["text/plain"] for data in shown] == [
        "Let me look. ",
        'Thinking:\n<b>why</b> so.\ntool call: search({"q": "sky"}) → blue',
        "It is **blue**.",
        shown[3]["text/plain"],
    ]
    aside = shown[1]["text/html"]
    assert aside.startswith("<details class='wfnb-thinking'><summary>Thinking</summary>")
    assert "&lt;b&gt;why&lt;/b&gt;" in aside and "<b>" not in aside
    assert "🔧 <code>search({&quot;q&quot;: &quot;sky&quot;}) → blue</code>" in aside
    assert "<strong>blue</strong>" in shown[2]["text/html"]
    assert shown[3]["text/plain"].endswith("tokens 12 in / 30 out")


def test_live_reasoning_is_open_and_bounded() -> None:
    recorder = Recorder()
    view = LiveView(RunInfo(), recorder.publish, clock=recorder.clock, refresh_rate=0)
    for _ in range(1000):
        view.think("thinking hard ")
    live = recorder.messages[-1][0]["text/html"]
    assert live.startswith("<details class='wfnb-thinking' open>")
    assert len(live) < 2500  # the last lines only, however long the reasoning


def test_terminal_view_writes_reasoning_and_tool_calls_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    view = TextView(RunInfo(), clock=lambda: 0.0)
    view.think("hmm")
    view.call(ToolCall(name="search", arguments="{}", result="ok"))
    view.add("Answer.")
    view.finish("done")
    assert capsys.readouterr().out == (
        "Thinking: hmm\n[tool call: search({}) → ok]\n\nAnswer.\n[done · 0.0 s · 0 chunks]\n")


def test_an_aside_after_pieces_of_a_long_block_keeps_every_output_whole() -> None:
    recorder = Recorder()
    view = LiveView(RunInfo(), recorder.publish, clock=recorder.clock, refresh_rate=0,
                    freeze_chars=200)
    before = "".join(f"{n}. step {n}\n" for n in range(1, 80))
    after = "".join(f"- item {n}\n" for n in range(60))
    for line in before.splitlines(keepends=True):
        view.add(line)
    view.think("checking")
    view.call(ToolCall(name="search", arguments="{}"))
    for line in after.splitlines(keepends=True):
        view.add(line)
    view.finish("done")
    first: dict[str, Data] = {}
    last: dict[str, Data] = {}
    for data, display_id, _ in recorder.messages:
        first.setdefault(display_id, data)
        last[display_id] = data
    assert first == last
    texts = [data["text/plain"] for data in last.values() if data["text/plain"]][:-1]
    aside = texts.index("Thinking:\nchecking\ntool call: search({})")
    assert "".join(texts[:aside]) == before and "".join(texts[aside + 1:]) == after
    assert aside > 3  # the long list before it was cut into pieces


REMOTE_IMAGES = [
    "![pixel](http://127.0.0.1:9/x.png?secret=s3cr3t)", "![](HTTPS://host/x)",
    "![](//host/x)", "![](<  http://host/x>)", "![](ftp://host/x)", "![alt][ref]\n\n[ref]: http://h/r",
    '[![inner](http://host/i)](http://host/outer)', "![](blob:http://host/x)",
]


@pytest.mark.parametrize("markdown", REMOTE_IMAGES)
def test_an_image_from_another_host_is_a_link_not_an_img(markdown: str) -> None:
    html = to_html(markdown)
    assert "<img" not in html
    assert 'class="wfnb-remote-image"' in html and "image: " in html
    assert "<img" in to_html(markdown, remote_images=True)  # the option lets it through


@pytest.mark.parametrize("markdown", [
    "![local](figures/plot.png)", "![](/files/plot.png)", "![](data:image/png;base64,iVBORw0K)",
    "![](%5C%5Chost/x)", "![](\\\\host\\x)",
])
def test_local_and_data_images_still_render(markdown: str) -> None:
    html = to_html(markdown)
    assert "<img" in html and "wfnb-remote-image" not in html
    assert "//" not in html.split('src="')[1].split('"')[0]  # no other host, however spelled


def test_svg_data_images_and_script_urls_are_never_images() -> None:
    for markdown in ("![](data:image/svg+xml;base64,PHN2Zz4=)", "![](javascript:alert(1))"):
        for remote in (False, True):
            assert "<img" not in to_html(markdown, remote_images=remote)


def test_the_live_view_passes_the_option_to_every_output() -> None:
    for remote in (False, True):
        recorder = Recorder()
        stream(recorder, ["![](http://host/p.png)\n\n", "x" * 50, "\n\n![](http://host/q)"],
               1.0, refresh_rate=10, freeze_chars=10, remote_images=remote)
        shown = [data["text/html"] for data, _, _ in recorder.messages if "host/" in
                 data.get("text/html", "")]
        assert {"host/p.png", "host/q"} <= set(re.findall(r"host/\w+(?:\.png)?", "".join(shown)))
        for html in shown:  # live updates and frozen pieces alike
            assert ("<img" in html) is remote and ("wfnb-remote-image" in html) is not remote
