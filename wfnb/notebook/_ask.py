"""The form a run that asked shows in a notebook: its question, one button per option (else a
text box and Submit) and, once answered, the rest of the run streamed below it.

Outputs made in a widget's callback do not reach the cell (JupyterLab drops outputs whose parent
is a comm message, and updating displays inside an ``Output`` widget is unreliable, ipywidgets
#1844), so the continued run is shown by a LiveView whose ``publish`` writes each display into
an ``HTML`` widget of the form's own: a new display id appends one, an update sets its value.
The run streams as in a cell (the same pieces and status line), inside the same cell output,
less what it replays: a resumed run starts again from the top, its steps served, so its stream
begins with the text shown above the form, which is left out until the stream differs from it.
Asked again, it shows a new form below. The display also carries static HTML (the question and
how to answer it in code or with ``wfnb answer``) for where widgets cannot render: GitHub,
nbviewer, a notebook opened without its kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from wfnb._errors import RunNotWaitingError
from wfnb._events import RunResponse, ToolCall
from wfnb.notebook._inspector_render import note_html, pre_html
from wfnb.notebook._live import Data, LiveView, RunInfo, View, how_to_answer, is_paused
from wfnb.notebook._markdown import escape
from wfnb.storage import Question

Stream = Callable[[Any, View, RunInfo], RunResponse]  # _runner.consume: a source into a view


class AskForm:
    """The question of a paused run (``RunResponse`` with event RunPaused) as a form;
    ``submit(answer)`` is what a click does. ``widget`` is the root box; ``result`` what the
    continued run returned (a RunPaused response again if it asked again: see ``next``)."""

    def __init__(self, paused: RunResponse, stream: Stream, *, shown: str = "",
                 **view_options: Any) -> None:
        if not is_paused(paused) or paused.question is None or paused.resume is None:
            raise ValueError(f"AskForm needs a RunPaused response that can resume, not {paused!r}")
        self.paused, self.question = paused, paused.question
        self._resume: Callable[..., Any] = paused.resume
        self._stream, self._view_options = stream, view_options
        self._shown_before = shown  # the text the run streamed before it asked
        self.result: RunResponse | None = None
        self.next: AskForm | None = None  # the form of the question the continued run asked
        self._submitted = False
        self._displays: dict[str, Any] = {}  # display id -> the HTML widget showing it
        self.buttons, self.text_box, controls = _controls(self.question, self.submit)
        self.note = widgets.HTML()
        self.output = widgets.VBox()
        self.widget = widgets.VBox([
            widgets.HTML(f"<b>{escape(self.question.text)}</b>"), controls, self.note,
            self.output,
        ])
        self.widget.add_class("wfnb-ask")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, and for where widgets cannot render the question and how to answer it."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        how = how_to_answer(self.question, self.paused.session_id)
        bundle["text/plain"] = f"{self.question.text}\n{how}"
        bundle["text/html"] = (f"<div class='wfnb-ask'><p><b>{escape(self.question.text)}</b>"
                               f"</p>{note_html(how)}</div>")
        return bundle

    def submit(self, answer: Any) -> None:
        """Answer the question and stream the rest of the run below the form (once: a second
        click, or one while the run goes on, does nothing)."""
        if self._submitted:
            return
        self._submitted = True
        self._enable(False)
        self.note.value = note_html(f"answered {answer!r}: the run goes on below")
        try:
            source = self._resume(answer)
        except RunNotWaitingError as gone:  # answered elsewhere (or in code) meanwhile
            self.note.value = note_html(f"not resumed: {gone}", "error")
            return
        except Exception as error:  # AnswerRefusedError, a storage error: the form stays open
            self._submitted = False
            self._enable(True)
            self.note.value = note_html(f"not answered: {type(error).__name__}: {error}",
                                        "error")
            return
        info = RunInfo(self.paused.workflow_name, self.paused.session_id)
        view = Unrepeated(LiveView(info, self._publish, **self._view_options), self._shown_before)
        try:
            self.result = self._stream(source, view, info)
        except (Exception, KeyboardInterrupt) as error:  # the view shows how far it got
            ended = ("was interrupted" if isinstance(error, KeyboardInterrupt)
                     else f"failed: {type(error).__name__}: {error}")
            self.note.value = note_html(f"answered {answer!r}; the run then {ended}", "error")
            return
        if is_paused(self.result) and self.result.resume is not None:
            self.next = AskForm(self.result, self._stream, shown=info.text_before,
                                **self._view_options)
            self.output.children = (*self.output.children, self.next.widget)

    def _enable(self, enabled: bool) -> None:
        for control in (*self.buttons, *([self.text_box] if self.text_box else [])):
            control.disabled = not enabled

    def _publish(self, data: Data, display_id: str, update: bool) -> None:
        """LiveView's output protocol, into this form's widgets (see the module docstring)."""
        if not update:
            shown = self._displays[display_id] = widgets.HTML()
            shown.add_class("jp-RenderedHTMLCommon")  # Markdown styled as in a cell's output
            self.output.children = (*self.output.children, shown)
        html = widget_html(data)
        widget = self._displays[display_id]
        widget.value = html
        widget.layout.display = None if html else "none"  # an empty widget would take a line


class Unrepeated:
    """A view that leaves out the start of a stream while it repeats ``shown``, and shows the
    rest (everything from where it first differs)."""

    def __init__(self, view: View, shown: str) -> None:
        self._view, self._repeating = view, shown

    def add(self, text: str) -> None:
        if self._repeating:
            if self._repeating.startswith(text):
                self._repeating = self._repeating[len(text):]
                return
            pairs = enumerate(zip(self._repeating, text, strict=False))
            same = next((n for n, (a, b) in pairs if a != b),
                        min(len(self._repeating), len(text)))
            text = text[same:]
            self._repeating = ""
        if text:
            self._view.add(text)

    def think(self, text: str) -> None:
        self._view.think(text)

    def call(self, call: ToolCall) -> None:
        self._view.call(call)

    def tick(self) -> None:
        self._view.tick()

    def status(self) -> None:
        self._view.status()

    def finish(self, state: str) -> None:
        self._view.finish(state)


def _controls(question: Question, submit: Callable[[Any], None]) -> tuple[list[Any], Any, Any]:
    """(buttons, text box or None, their row): a button per option, else a text box and
    Submit. A button's description is a text node in the browser, so it is not escaped."""
    if question.options:
        buttons = [widgets.Button(description=str(option), tooltip=f"answer {option!r}",
                                  button_style="primary" if option == question.default else "")
                   for option in question.options]
        for button, option in zip(buttons, question.options, strict=True):
            button.on_click(lambda _button, option=option: submit(option))
        return buttons, None, widgets.HBox(buttons)
    box = widgets.Text(value="" if question.default is None else str(question.default),
                       placeholder="your answer", layout=widgets.Layout(width="420px"))
    send = widgets.Button(description="Submit", button_style="primary")
    send.on_click(lambda _button: submit(box.value))
    return [send], box, widgets.HBox([box, send])


def widget_html(data: Data) -> str:
    """A display bundle as the value of an HTML widget: its HTML (LiveView's is escaped
    already), else its text, escaped."""
    if "text/html" in data:
        return data["text/html"]
    text = data.get("text/plain", "")
    return pre_html(text) if text else ""
