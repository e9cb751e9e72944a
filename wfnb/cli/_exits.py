"""Exit codes, the error the commands raise, and which code each error exits with."""

from __future__ import annotations

from wfnb._errors import (
    AnswerRefusedError,
    ImportFormatError,
    InvalidNameError,
    RunNotWaitingError,
    SessionConflictError,
    SessionNotFoundError,
)

OK, NOT_FOUND, USAGE, CONFLICT, STORAGE = 0, 1, 2, 3, 4

EXIT_CODES_HELP = f"""\
exit status:
  {OK}  ok
  {NOT_FOUND}  not found: the session, version, --path element, table, database file or import
     file, or a run waiting for an answer
  {USAGE}  usage: bad arguments, delete without --yes, a malformed import file, an answer that
     is not one of the options
  {CONFLICT}  conflict: the session exists already (import, fork --as) or was saved meanwhile,
     the run is not waiting (any more) or its question was answered already
  {STORAGE}  storage error: the database is unreachable or corrupt, or a file cannot be written
"""


class CliError(Exception):
    """An error the command line reports as one line, exiting with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def exit_code(error: BaseException) -> int:
    """The documented exit code for an error raised while running a command."""
    if isinstance(error, CliError):
        return error.code
    if isinstance(error, (SessionNotFoundError, FileNotFoundError)):
        return NOT_FOUND
    if isinstance(error, AnswerRefusedError) and error.answered_already:
        return CONFLICT
    if isinstance(error, (InvalidNameError, ImportFormatError, AnswerRefusedError)):
        return USAGE
    if isinstance(error, (SessionConflictError, RunNotWaitingError)):
        return CONFLICT
    return STORAGE  # StorageError, OSError, and anything unexpected (reported in one line too)
