"""The subcommands: each takes the parsed arguments, the storage and the console; returns 0.

Failures are raised (CliError, or wfnb's own errors) and turned into one line and an exit code
by :func:`wfnb.cli.main`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from wfnb._errors import ImportConflictError
from wfnb._files import atomic_write
from wfnb._format import (
    clip,
    damaged,
    duration,
    json_diff,
    plural,
    shown_value,
    size,
    tokens,
    visible,
    when,
)
from wfnb.cli._exits import CONFLICT, NOT_FOUND, OK, USAGE, CliError
from wfnb.cli._output import Console
from wfnb.cli._paths import lookup
from wfnb.cli._progress import progress
from wfnb.storage import (
    StoredSession,
    VersionInfo,
    WorkflowStorage,
    check_export_file,
    encode_state,
    same_json,
)

_STATUS_STYLES = {"completed": "green", "failed": "red", "interrupted": "yellow", "running": "cyan",
                  "abandoned": "magenta", "waiting": "blue", "stopped": "blue"}


def sessions(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """A page of sessions, newest first."""
    filters = {"search": args.search, "workflow_name": args.workflow}
    total = storage.count_sessions(**filters)
    page = storage.list_sessions(limit=args.limit, offset=(args.page - 1) * args.limit, **filters)
    if args.json:
        console.json({"total": total, "page": args.page, "limit": args.limit, "sessions": page})
        return OK
    pages = max(1, math.ceil(total / args.limit))
    if page:
        console.table(
            ["SESSION", "WORKFLOW", "VERSION", "SIZE", "UPDATED"],
            [[s.session_id, s.workflow_name or "", str(s.version), size(s.state_bytes),
              damaged(when(s.updated_at), s.damaged)] for s in page],
            numeric=(2, 3),
        )
    matching = " matching" if args.search or args.workflow else ""
    console.line(f"page {args.page} of {pages}, {plural(total, 'session')}{matching}", "dim")
    return OK


def show(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """The state (or the value at --path) as indented JSON, tagged types as stored."""
    value = orjson.loads(read(storage, args.session, args.version).state_json)
    if args.path is not None:
        value = lookup(value, args.path)
    if args.raw and isinstance(value, str):
        console.out.write(value if value.endswith("\n") else value + "\n")
    else:
        console.json(value)
    return OK


def history(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """The stored versions, newest first."""
    versions = storage.history(args.session, limit=args.limit)
    if not versions:
        raise _no_session(storage, args.session)
    if args.json:
        console.json(versions)
        return OK
    forks = any(v.forked_from_session is not None for v in versions)
    console.table(
        ["VERSION", "SOURCE", "RUN", "SIZE", "CREATED", *(["FORKED FROM"] if forks else [])],
        [[str(v.version), v.source, v.run_id or "", size(v.state_bytes), when(v.created_at),
          *([_origin(v)] if forks else [])]
         for v in versions],
        numeric=(0, 3),
    )
    return OK


def _origin(version: VersionInfo) -> str:
    """Where a fork's first version came from: ``SESSION vN`` ("" for other versions)."""
    if version.forked_from_session is None:
        return ""
    return f"{version.forked_from_session} v{version.forked_from_version}"


def diff(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """A unified diff of two versions' states, as indented JSON with sorted keys."""
    old = read(storage, args.session, args.old)
    new = read(storage, args.session, args.new)
    label = f"{visible(args.session)} version"
    for line in json_diff(old.document, new.document, f"{label} {old.version}",
                          f"{label} {new.version}"):
        header = line.startswith(("---", "+++"))  # else a JSON line: hidden characters \uXXXX
        console.line(line if header else visible(line, json=True), _diff_style(line))
    return OK


def _diff_style(line: str) -> str | None:
    if line.startswith(("---", "+++")):
        return "bold"
    return {"@": "cyan", "-": "red", "+": "green"}.get(line[:1])


def restore(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """Append a version equal to an old one (history is never rewritten)."""
    current = read(storage, args.session)
    old = read(storage, args.session, args.version)
    if old.state_json == current.state_json:
        console.line(f"session {args.session!r} already has the state of version {old.version} "
                     f"(it is at version {current.version}): nothing written")
        return OK
    result = storage.restore(args.session, old.version, expected_version=current.version)
    console.line(f"session {args.session!r}: version {old.version} restored as version "
                 f"{result.version}")
    return OK


def fork(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """A new session from a session's state at a version: its id on stdout (for scripts:
    ``NEW=$(wfnb fork S 3)``), what was done on stderr; ``--json``: its first version."""
    forked = storage.fork(args.session, args.version, args.new_session)
    if args.json:
        console.json(forked)
        return OK
    console.line(forked.session_id)
    console.note(f"forked session {args.session!r} version {forked.forked_from_version} as "
                 f"{forked.session_id!r} (its version {forked.version})")
    return OK


def delete(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """Delete a session with its history, runs and steps (the parser insists on --yes)."""
    if not storage.delete(args.session):
        raise _no_session(storage, args.session)
    console.line(f"deleted session {args.session!r} with its history, runs and steps")
    return OK


def export(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """Sessions as JSON lines (state, full history, runs), to a file written atomically."""
    ids = args.sessions or None
    total = len(ids) if ids else storage.count_sessions()
    to_stdout = args.output == "-"
    with _output_file(args.output) as out, progress("export", total, console.err) as tick:
        count = storage.export_sessions(out, ids, progress=tick)
    where = "standard output" if to_stdout else repr(args.output)
    message = f"exported {plural(count, 'session')} from table {storage.table_name!r} to {where}"
    if to_stdout:
        console.note(message)
    else:
        console.line(message)
    return OK


@contextlib.contextmanager
def _output_file(name: str) -> Iterator[IO[bytes]]:
    """Standard output for "-"; else a temporary file beside ``name``, renamed to it on success."""
    if name == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_write(Path(name), overwrite=True) as out:
        yield out


def check_import_file(args: argparse.Namespace) -> None:
    """Before the database opens (and import creates its table): the whole file must be good."""
    args.sessions_in_file = check_export_file(args.file)


def import_(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """Sessions from an export file; an existing session id is handled by --on-conflict."""
    try:
        with progress("import", args.sessions_in_file, console.err) as tick:
            report = storage.import_sessions(args.file, on_conflict=args.on_conflict,
                                             progress=tick)
    except ImportConflictError as conflict:
        if conflict.run_id is not None or args.on_conflict != "fail":
            raise
        raise CliError(f"{conflict} (see --on-conflict skip or new-version)",
                       CONFLICT) from conflict
    if args.json:
        console.json(report.as_dict())
        return OK
    outcomes = [
        (report.imported, "imported"),
        (report.appended, "saved as a new version of the existing session"),
        (report.unchanged, "unchanged (the existing session has that state)"),
        (report.skipped, "skipped (already there)"),
    ]
    console.line(f"table {storage.table_name!r}:")
    for ids, outcome in outcomes:
        if ids:
            console.line(f"  {plural(len(ids), 'session')} {outcome}: {clip(', '.join(ids), 60)}")
    if not any(ids for ids, _ in outcomes):
        console.line("  the file holds no sessions")
    return OK


def prune(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """Drop old history (the current version of every session always stays)."""
    if args.session is not None and not storage.history(args.session, limit=1):
        raise _no_session(storage, args.session)
    total = 1 if args.session is not None else storage.count_sessions()
    with progress("prune", total, console.err) as tick:
        done = 0

        def count() -> None:
            nonlocal done
            done += 1
            tick()

        dropped = storage.prune(keep=args.keep, older_than=args.older_than,
                                session_id=args.session, progress=count)
    console.line(f"dropped {plural(dropped, 'version')} from {plural(done, 'session')}")
    return OK


def runs(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """The session's runs, newest first."""
    records = storage.runs(args.session, limit=args.limit)
    if not records and storage.read(args.session) is None:
        raise _no_session(storage, args.session)
    if args.json:
        console.json(records)
        return OK
    console.table(
        ["RUN", "STATUS", "VERSION", "STARTED", "DURATION", "TOKENS", "INPUT", "ERROR",
         "QUESTION / ANSWERS"],
        [[r.run_id, (r.status, _STATUS_STYLES.get(r.status)),
          str(r.version) if r.version is not None else "", when(r.started_at),
          duration(r.ended_at - r.started_at if r.ended_at else None),
          tokens(r.input_tokens, r.output_tokens),
          clip(damaged(orjson.dumps(r.input).decode() if r.input is not None else "",
                       r.damaged)), clip(r.error), r.dialogue()]
         for r in records],
        numeric=(2, 4, 5),
    )
    return OK


def answer(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """Record the answer to the question a session's run waits for (the newest waiting run,
    or --run); the next run of the session with that input (or wf.resume()) continues it."""
    waiting = [run for run in storage.waiting_runs(args.session)
               if args.run in (None, run.run_id)]
    if not waiting or waiting[0].question is None:
        runs = storage.runs(args.session)
        if not runs and storage.read(args.session) is None:
            raise _no_session(storage, args.session)
        if args.run is None:
            raise CliError(f"session {args.session!r} has no run waiting for an answer (see "
                           "'wfnb runs SESSION')", NOT_FOUND)
        found = next((run for run in runs if run.run_id == args.run), None)
        if found is None:
            raise CliError(f"session {args.session!r} has no run {args.run!r}", NOT_FOUND)
        raise CliError(f"session {args.session!r}, run {args.run}: it is {found.status}, not "
                       "waiting for an answer", CONFLICT)
    question = waiting[0].question
    given: object
    if args.text is None:
        if question.default is None:
            raise CliError(f"{clip(question.text, 80)!r} has no default: give the answer as "
                           "TEXT", USAGE)
        given = question.default
    elif question.options is not None:
        given = _option(question.options, args.text)
    else:
        given = args.text
    run = storage.answer(args.session, given, run_id=waiting[0].run_id, by=args.by)
    if args.json:
        console.json(run.answers[-1])
        return OK
    console.line(f"session {args.session!r}, run {run.run_id}: answered "
                 f"{clip(question.text, 80)!r} with {clip(shown_value(given), 80)!r}; the "
                 "session's next run with the same input continues it (in Python: wf.resume())")
    return OK


def _option(options: list[object], text: str) -> object:
    """The option TEXT names: the one shown as TEXT (as `wfnb runs` shows it), else the one
    equal to TEXT read as JSON (``'{"a": 1}'``, ``1``), else TEXT (refused as no option)."""
    shown = [option for option in options if shown_value(option) == text]
    if len(shown) == 1:
        return shown[0]
    with contextlib.suppress(orjson.JSONDecodeError):
        value = orjson.loads(text)
        return next((option for option in options if same_json(option, value)), text)
    return text


def steps(args: argparse.Namespace, storage: WorkflowStorage, console: Console) -> int:
    """The session's step records, oldest first; or, with ``clear``, forget them."""
    if args.clear:
        cleared = storage.clear_steps(args.session, name=args.name)
        if not cleared and storage.read(args.session) is None:
            raise _no_session(storage, args.session)
        which = f" named {args.name!r}" if args.name is not None else ""
        console.line(f"session {args.session!r}: forgot {plural(cleared, 'step record')}{which}; "
                     "their next calls execute")
        return OK
    records = storage.steps(args.session, run_id=args.run)
    if not records and storage.read(args.session) is None:
        raise _no_session(storage, args.session)
    if args.json:
        console.json([dict(dataclasses.asdict(r), output=_as_stored(r.output))
                      for r in records])
        return OK
    console.table(
        ["STEP", "STATUS", "SERVED", "RUN", "STARTED", "DURATION", "ERROR"],
        [[clip(r.name), (r.status, _STATUS_STYLES.get(r.status)),
          "from record" if r.cached else "", (r.run_id or "")[:8], when(r.started_at),
          duration(r.ended_at - r.started_at if r.ended_at else None), clip(r.error)]
         for r in records],
        numeric=(5,),
    )
    return OK


def _as_stored(output: object) -> object:
    """A step output as its stored JSON (tagged types tagged), for --json."""
    return orjson.loads(encode_state({"output": output}).document)["output"]


def read(storage: WorkflowStorage, session_id: str, version: int | None = None) -> StoredSession:
    """The session (at ``version``); CliError (not found) when there is none."""
    stored = storage.read(session_id, version)
    if stored is None:
        raise _no_session(storage, session_id)
    return stored


def _no_session(storage: WorkflowStorage, session_id: str) -> CliError:
    return CliError(f"no session {session_id!r} in table {storage.table_name!r}", NOT_FOUND)
