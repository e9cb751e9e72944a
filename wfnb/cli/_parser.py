"""The argument parser: global options (before or after the subcommand) and the subcommands."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any, NoReturn

from wfnb.cli import _commands
from wfnb.cli._database import DEFAULT_DB_FILE
from wfnb.cli._exits import EXIT_CODES_HELP, USAGE
from wfnb.cli._output import Console
from wfnb.storage import ON_CONFLICT, WorkflowStorage

Handler = Callable[[argparse.Namespace, WorkflowStorage, Console], int]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

DESCRIPTION = "Look at, edit, export and import the sessions wfnb stores, outside the notebook."
EPILOG = f"""\
database: --db FILE (SQLite) or --url URL (any SQLAlchemy URL); default $WFNB_DB_URL, else
  {DEFAULT_DB_FILE}. table: --table T; default $WFNB_TABLE, else the only wfnb table in the
  database. These options go before or after the subcommand.

{EXIT_CODES_HELP}"""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, ``wfnb: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"wfnb: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """``wfnb [global options] COMMAND [options]``."""
    parser = _Parser(prog="wfnb", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(parser, argparse.SUPPRESS)
    parser.set_defaults(db=None, url=None, table=None, debug=False)
    from wfnb import __version__

    parser.add_argument("--version", action="version", version=f"wfnb {__version__}")
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)  # after the subcommand: set only when given
    commands = _Commands(parser, common)
    _listing_commands(commands)
    _state_commands(commands)
    _transfer_commands(commands)
    return parser


class _Commands:
    """Adds subcommands, each with the global options and its handler."""

    def __init__(self, parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
        self.common = common
        self.subparsers = parser.add_subparsers(title="commands", metavar="COMMAND",
                                                dest="command", required=True)

    def add(self, name: str, handler: Handler, summary: str) -> argparse.ArgumentParser:
        sub = self.subparsers.add_parser(name, parents=[self.common], help=summary,
                                         description=summary)
        sub.set_defaults(handler=handler, prepare=None, creates=False)
        return sub


def _listing_commands(commands: _Commands) -> None:
    sub = commands.add("sessions", _commands.sessions, "list sessions, newest first")
    sub.add_argument("--limit", type=_positive, default=20, help="sessions per page (20)")
    sub.add_argument("--page", type=_positive, default=1, help="which page (1)")
    sub.add_argument("--search", help="only sessions whose id contains this text")
    sub.add_argument("--workflow", help="only sessions of this workflow name")
    _json_option(sub)

    for name, handler, what in (("history", _commands.history, "versions"),
                                ("runs", _commands.runs, "runs")):
        sub = commands.add(name, handler, f"list a session's {what}, newest first")
        sub.add_argument("session")
        sub.add_argument("--limit", type=_positive, help=f"at most this many {what}")
        _json_option(sub)

    sub = commands.add("steps", _commands.steps,
                       "list a session's step records, oldest first; 'steps clear SESSION' "
                       "forgets them, so their next calls execute")
    sub.add_argument("words", nargs="+", metavar="[clear] SESSION")
    sub.add_argument("--run", metavar="RUN", help="only the steps of this run")
    sub.add_argument("--name", metavar="N", help="clear: only the step named N")
    _json_option(sub)


def _state_commands(commands: _Commands) -> None:
    sub = commands.add("show", _commands.show, "print a session's state as JSON")
    sub.add_argument("session")
    sub.add_argument("--version", type=_positive, help="a version from history (default current)")
    sub.add_argument("--path", help="print only the value here, e.g. blog_posts.0.topic")
    sub.add_argument("--raw", action="store_true", help="print a string value as plain text")

    sub = commands.add("diff", _commands.diff, "compare two versions of a session's state")
    sub.add_argument("session")
    sub.add_argument("old", metavar="V1", type=_positive)
    sub.add_argument("new", metavar="V2", type=_positive, nargs="?", help="default: current")

    sub = commands.add("restore", _commands.restore, "save an old version again as the newest")
    sub.add_argument("session")
    sub.add_argument("version", type=_positive)

    sub = commands.add("answer", _commands.answer,
                       "answer the question a session's run waits for; its next run goes on")
    sub.add_argument("session")
    sub.add_argument("text", metavar="TEXT", nargs="?",
                     help="the answer (one of the options, if the question has them); "
                          "default: the question's default")
    sub.add_argument("--run", metavar="RUN", help="the waiting run (default: the newest)")
    sub.add_argument("--by", metavar="NAME", help="who answers (default: user@host)")
    _json_option(sub)

    sub = commands.add("fork", _commands.fork,
                       "start a new session from a session's state at a version (the source "
                       "is left as it is); prints the new session's id")
    sub.add_argument("session")
    sub.add_argument("version", metavar="VERSION", type=_positive, nargs="?",
                     help="a version from history (default current)")
    sub.add_argument("--as", dest="new_session", metavar="NEW",
                     help="the new session's id (default: a fresh uuid); must not exist yet")
    _json_option(sub)

    sub = commands.add("delete", _commands.delete,
                       "delete a session with its history, runs and steps")
    sub.add_argument("session")
    sub.add_argument("--yes", action="store_true", help="confirm: deleting cannot be undone")

    sub = commands.add("prune", _commands.prune, "drop old history (current versions stay)")
    sub.add_argument("--keep", type=_positive, help="keep each session's newest N versions")
    sub.add_argument("--older-than", type=_duration, metavar="AGE",
                     help="drop versions older than AGE: 45s, 30m, 12h, 30d")
    sub.add_argument("--session", help="only this session")


def _transfer_commands(commands: _Commands) -> None:
    sub = commands.add("export", _commands.export,
                       "write sessions with history and runs as JSON lines")
    sub.add_argument("sessions", metavar="SESSION", nargs="*", help="default: all")
    sub.add_argument("-o", "--output", required=True, metavar="FILE.jsonl", help="'-': stdout")

    sub = commands.add("import", _commands.import_, "read sessions from an export file")
    sub.set_defaults(prepare=_commands.check_import_file, creates=True)
    sub.add_argument("file", metavar="FILE.jsonl")
    sub.add_argument("--on-conflict", choices=ON_CONFLICT, default="fail",
                     help="when a session exists: fail (default, exit 3), skip it, or save the "
                          "file's state as its new version")
    _json_option(sub)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say by itself; a usage error (exit 2) before the database opens."""
    if args.command == "delete" and not args.yes:
        parser.error(f"delete removes session {args.session!r} with its history, runs and steps "
                     "for good: add --yes to confirm")
    if args.command == "prune" and args.keep is None and args.older_than is None:
        parser.error("prune needs --keep N or --older-than AGE (or both)")
    if args.command == "steps":
        clear = len(args.words) == 2 and args.words[0] == "clear"
        if len(args.words) > 1 and not clear:
            parser.error("steps takes one SESSION, or 'clear SESSION'")
        args.clear, args.session = clear, args.words[-1]
        if args.name is not None and not clear:
            parser.error("--name goes with 'steps clear SESSION'")
        if args.run is not None and clear:
            parser.error("--run goes with 'steps SESSION' (clear forgets a session's steps)")


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="FILE", default=default, help="a SQLite database file")
    where.add_argument("--url", metavar="URL", default=default, help="a SQLAlchemy database URL")
    parser.add_argument("--table", metavar="T", default=default, help="the wfnb table name")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the traceback of an error")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return number


def _duration(text: str) -> float:
    """Seconds in ``45s``, ``30m``, ``12h``, ``30d`` (or ``1.5h``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: give a number and a unit, s, m, h or d (e.g. 30d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]
