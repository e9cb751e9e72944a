"""The ``wfnb`` command line: sessions, their history and runs, outside the notebook.

``wfnb --help`` lists the subcommands and exit codes. Imports no IPython or ipywidgets.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

from wfnb._errors import WfnbError
from wfnb.cli._database import open_storage
from wfnb.cli._exits import OK, CliError, exit_code
from wfnb.cli._output import Console
from wfnb.cli._parser import build_parser, check

__all__ = ["main"]

_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check(parser, args)
    console = Console.standard()
    try:
        if args.prepare is not None:  # checks that need no database, e.g. of an import file
            args.prepare(args)
        storage = open_storage(db=args.db, url=args.url, table=args.table, create=args.creates)
        try:
            status = int(args.handler(args, storage, console))
        finally:
            storage.close()
        console.out.flush()
        return status
    except KeyboardInterrupt:
        console.error("interrupted")
        return _INTERRUPTED
    except BrokenPipeError:  # the reader went away (`wfnb sessions | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as error:
        if args.debug:
            traceback.print_exc()
        console.error(_describe(error, args.debug))
        return exit_code(error)


def _describe(error: Exception, debug: bool) -> str:
    """The error as one line: wfnb's own message, a file error's cause and name, or the type."""
    if isinstance(error, (WfnbError, CliError)):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    hint = "" if debug else " (run with --debug for the traceback)"
    return f"unexpected {type(error).__name__}: {error}{hint}"
