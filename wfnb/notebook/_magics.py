"""``%workflow`` and ``%%workflow``: run workflows from cells and show their stream live."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Float, Integer, Unicode

from wfnb._errors import WorkflowRunError
from wfnb._events import RunResponse
from wfnb._steps import refreshing
from wfnb._workflow import Workflow
from wfnb.notebook._inline import AsyncInlineWorkflow, InlineWorkflow, compile_body
from wfnb.notebook._live import RunInfo
from wfnb.notebook._runner import Deferred, show
from wfnb.storage import SqliteWorkflowStorage, WorkflowStorage

if TYPE_CHECKING:  # imported when first shown: runs need no inspector
    from wfnb.notebook._inspector import StateInspector


@magics_class
class WorkflowMagics(Magics):
    """Magics that run workflows in cells; defaults are set with ``%config WorkflowMagics.x``."""

    db_file = Unicode("tmp/workflows.db", help="SQLite file of inline workflows").tag(config=True)
    table_name = Unicode("notebook_workflows", help="table of inline workflows").tag(config=True)
    refresh_rate = Float(10.0, help="live display updates per second, at most").tag(config=True)
    freeze_chars = Integer(
        2000, help="finished Markdown (characters) shown as its own output"
    ).tag(config=True)
    short_errors = Bool(
        True, help="a failed run shows a short error; False shows the full traceback"
    ).tag(config=True)
    live_interval = Float(
        None, allow_none=True,
        help="seconds between a shown inspector's checks for writes elsewhere (0: off; "
        "None: 2 s, the default of wfnb.notebook._inspector_live.INTERVAL)",
    ).tag(config=True)
    allow_remote_images = Bool(
        False, help="show Markdown images from other hosts (off: a link, never fetched)"
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._storages: dict[tuple[str, str], WorkflowStorage] = {}
        self._panels: dict[int, StateInspector] = {}  # the newest panel shown per storage

    @property
    def _shell(self) -> InteractiveShell:
        assert self.shell is not None, "WorkflowMagics is registered with a shell"
        return self.shell

    @no_var_expand
    @magic_arguments()
    @argument("name", nargs="?", help="cell: the inline workflow's name (line: see above)")
    @argument("--session-id", help="session to continue (default: the workflow's name)")
    @argument("--db", help="SQLite file (default: WorkflowMagics.db_file)")
    @argument("--table", help="table name (default: WorkflowMagics.table_name)")
    @argument("--storage", metavar="VAR", help="a WorkflowStorage variable to use instead")
    @argument("--out", metavar="VAR", help="store the final RunResponse in this variable")
    @argument(
        "--input", metavar="ARG",
        help="run the existing Workflow NAME with the cell body as its argument ARG",
    )
    @argument("--refresh", action="store_true",
              help="execute every @step again instead of serving its record")
    @line_cell_magic
    def workflow(self, line: str, cell: str | None = None) -> RunResponse | None:
        """Run a workflow and show what it streams, live, as Markdown.

        Line magic: ``%workflow EXPR`` evaluates EXPR (``generate_blog_post.run(topic="pasta")``,
        a model client's call, streamed or not, sync or async, or any iterable / async iterable
        of chunks: see wfnb/_chunks.py) and returns the final RunResponse (its content is the
        whole text, with reasoning_content, tool_calls and usage), so ``post = %workflow ...``
        keeps it. A run that asks (``self.ask(...)``; ``ask(...)`` in a cell) returns its
        RunPaused response (``.question``, ``.resume(answer)``) and shows a form that answers it.

        Cell magic: ``%%workflow NAME`` makes the cell body the run of an inline workflow named
        NAME: ``session_state`` (persisted), ``session_id`` and ``run_id`` are in scope, ``yield``
        streams, a bare ``return`` ends the run, and names the body assigns land in the notebook.
        Running the cell again continues the session; ``@step`` functions defined in the body
        are served their records. ``%%workflow NAME --input ARG`` instead runs the existing
        Workflow NAME with the cell body as its argument ARG
        (``%%workflow generate_blog_post --input topic``).

        ``--refresh`` (``%workflow --refresh EXPR`` too) executes every step again instead of
        serving its record.
        """
        if cell is None:
            refresh, expression = _refresh_option(line)
            with refreshing() if refresh else contextlib.nullcontext():
                return self._show(Deferred(lambda: self._shell.ev(expression)), RunInfo())
        args = _parse(self.workflow, line)
        if not args.name:
            raise WorkflowUsage("%%workflow needs a NAME: %%workflow NAME [options]")
        with refreshing() if args.refresh else contextlib.nullcontext():
            result = (self._run_existing(args, cell) if args.input
                      else self._run_inline(args, cell))
        if args.out:
            self._shell.user_ns[args.out] = result
        return None

    @magic_arguments()
    @argument("--db", help="SQLite file (default: WorkflowMagics.db_file)")
    @argument("--table", help="table name (default: WorkflowMagics.table_name)")
    @argument("--storage", metavar="VAR", help="a WorkflowStorage variable to use instead")
    @argument("--session-id", help="select this session")
    @argument("--page-size", type=int, default=20, metavar="N", help="sessions per page")
    @line_magic
    def workflow_state(self, line: str) -> None:
        """Show a StateInspector: browse, search, edit, diff and restore stored sessions.

        ``%workflow_state`` inspects the table inline workflows use; ``--storage VAR`` any
        WorkflowStorage. It refreshes itself after ``%workflow`` runs in this kernel, and while
        shown checks every ``WorkflowMagics.live_interval`` seconds for writes from other
        kernels, processes or the CLI.
        """
        from IPython.display import display

        from wfnb.notebook._inspector import StateInspector

        args = _parse(self.workflow_state, line)
        storage = self._storage(args)
        panel = StateInspector(storage, page_size=args.page_size, session_id=args.session_id,
                               live_interval=self.live_interval)
        older = self._panels.get(id(storage))
        if older is not None:  # a re-run cell: one panel per storage keeps polling, not one a run
            older.poller.stop()
        self._panels[id(storage)] = panel
        display(panel)

    def _run_inline(self, args: argparse.Namespace, body: str) -> RunResponse:
        filename = self._shell.compile.cache(body)
        function, is_async = compile_body(body, self._shell.user_ns, filename)
        kind = AsyncInlineWorkflow if is_async else InlineWorkflow
        workflow = kind(
            name=args.name, session_id=args.session_id or args.name,
            storage=self._storage(args), cell_body=function,
        )
        return self._show(workflow.run(), RunInfo(args.name, workflow.session_id))

    def _run_existing(self, args: argparse.Namespace, body: str) -> RunResponse:
        workflow = self._shell.user_ns.get(args.name)
        if not isinstance(workflow, Workflow):
            raise WorkflowUsage(f"--input needs NAME to be a Workflow; {args.name!r} is "
                                f"{type(workflow).__name__}")
        info = RunInfo(workflow.name, workflow.session_id)
        return self._show(workflow.run(**{args.input: body}), info)

    def _storage(self, args: argparse.Namespace) -> WorkflowStorage:
        if args.storage:
            storage = self._shell.user_ns.get(args.storage)
            if not isinstance(storage, WorkflowStorage):
                raise WorkflowUsage(f"--storage {args.storage}: not a WorkflowStorage")
            return storage
        key = (str(Path(args.db or self.db_file).resolve()), args.table or self.table_name)
        if key not in self._storages:
            self._storages[key] = SqliteWorkflowStorage(key[1], key[0])
        return self._storages[key]

    def _show(self, source: Any, info: RunInfo) -> RunResponse:
        """Stream ``source`` into the right view; a failure becomes a short error output."""
        try:
            return show(source, refresh_rate=self.refresh_rate, freeze_chars=self.freeze_chars,
                        info=info, remote_images=self.allow_remote_images)
        except Exception as error:
            if not self.short_errors or isinstance(error, WorkflowUsage):
                raise
            where = " · ".join(
                part for part in (
                    f"workflow {info.workflow}" if info.workflow else "",
                    f"session {info.session_id}" if info.session_id else "",
                    f"run {info.run_id}" if info.run_id else "",
                ) if part
            ) or "the %workflow expression"
            raise WorkflowRunError(error, where) from error
        finally:
            _refresh_inspectors(info.session_id)


def _refresh_option(line: str) -> tuple[bool, str]:
    """``(True, EXPR)`` for ``--refresh EXPR``, else ``(False, line)``."""
    first, _, rest = line.strip().partition(" ")
    return (True, rest) if first == "--refresh" else (False, line)


def _parse(magic: Any, line: str) -> argparse.Namespace:
    """A magic's arguments, quoted values unquoted (IPython's splitter keeps the quotes)."""
    args: argparse.Namespace = parse_argstring(magic, line)
    for name, value in vars(args).items():
        if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] in "'\"":
            setattr(args, name, value[1:-1])
    return args


def _refresh_inspectors(session_id: str | None) -> None:
    """Let state inspectors on screen show what a run saved; imports nothing if there are none."""
    inspector = sys.modules.get("wfnb.notebook._inspector")
    if inspector is not None:
        inspector.refresh_live(session_id)


class WorkflowUsage(WorkflowRunError):
    """A mistake in how a magic was called (shown short, like any run error)."""

    def __init__(self, message: str) -> None:
        super().__init__(ValueError(message), "the magic's arguments")
