"""Exit codes, the error the commands raise, and which code each error exits with."""

from __future__ import annotations

from wfnb._errors import (
    ImportFormatError,
    InvalidNameError,
    SessionConflictError,
    SessionNotFoundError,
)

OK, NOT_FOUND, USAGE, CONFLICT, STORAGE = 0, 1, 2, 3, 4

EXIT_CODES_HELP = f"""\
exit status:
  {OK}  ok
  {NOT_FOUND}  not found: the session, version, --path element, table, database file or import file
  {USAGE}  usage: bad arguments, delete without --yes, a malformed import file
  {CONFLICT}  conflict: the session exists already (import, fork --as) or was saved meanwhile
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
    if isinstance(error, (InvalidNameError, ImportFormatError)):
        return USAGE
    if isinstance(error, SessionConflictError):
        return CONFLICT
    return STORAGE  # StorageError, OSError, and anything unexpected (reported in one line too)
