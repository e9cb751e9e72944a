"""The two storages people name: a SQLite file, and a PostgreSQL server for teams."""

from __future__ import annotations

from pathlib import Path

from wfnb.storage._engine import sqlite_url
from wfnb.storage._storage import WorkflowStorage


class SqliteWorkflowStorage(WorkflowStorage):
    """Sessions in a SQLite file (its folder is created): the embedded default.

    ``SqliteWorkflowStorage(table_name="generate_blog_post_workflows", db_file="tmp/workflows.db")``
    """

    def __init__(
        self,
        table_name: str,
        db_file: str | Path = "tmp/workflows.db",
        *,
        keep_versions: int | None = 1000,
        busy_timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self.db_file = Path(db_file)
        super().__init__(
            table_name, sqlite_url(db_file), keep_versions=keep_versions,
            busy_timeout=busy_timeout, synchronous=synchronous,
        )


class PostgresWorkflowStorage(WorkflowStorage):
    """Sessions in PostgreSQL, shared by a team (needs the ``postgres`` extra: psycopg 3).

    ``PostgresWorkflowStorage(table_name="blog", db_url="postgresql://user@host:5432/db")``
    """

    def __init__(
        self,
        table_name: str,
        db_url: str,
        *,
        keep_versions: int | None = 1000,
        busy_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            table_name, db_url, keep_versions=keep_versions, busy_timeout=busy_timeout
        )
