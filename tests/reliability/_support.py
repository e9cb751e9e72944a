"""Helpers of the reliability suite: where a test's sessions live, forked children, the
figures it measures, PostgreSQL administration and tiny filesystems to break."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.conftest import postgres_url
from wfnb import WorkflowStorage

FIGURES: dict[str, str] = {}

#: Children are forked: they start in milliseconds (the crash test forks 200 of them) and open
#: their own storage; they never touch the parent's connections and exit without cleanup.
FORK = multiprocessing.get_context("fork")


def record_figure(name: str, text: str) -> None:
    """Keep one measured figure for the summary (and $WFNB_FIGURES_JSON)."""
    FIGURES[name] = text
    print(f"[figure] {name}: {text}")


@dataclass(frozen=True)
class Target:
    """Where one test's sessions live: a backend, a SQLAlchemy URL and a table name.

    Plain data, so a forked child can open its own storage on it.
    """

    backend: str
    url: str
    table: str
    db_file: Path | None = None

    def open(self, **kwargs: Any) -> WorkflowStorage:
        return WorkflowStorage(self.table, self.url, **kwargs)

    def with_table(self, table: str) -> Target:
        return Target(self.backend, self.url, table, self.db_file)


def sqlite_integrity(db_file: Path) -> str:
    """``PRAGMA integrity_check`` of a SQLite file ("ok" when sound)."""
    connection = sqlite3.connect(db_file, timeout=30)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return "; ".join(str(row[0]) for row in rows)


def count_rows(storage: WorkflowStorage, suffix: str, session_id: str | None = None) -> int:
    """Rows of one of the storage's tables (``""``, ``"_versions"``, ``"_runs"``)."""
    query = f'SELECT COUNT(*) FROM "{storage.table_name}{suffix}"'
    params: dict[str, Any] = {}
    if session_id is not None:
        query += " WHERE session_id = :sid"
        params["sid"] = session_id
    engine = storage.db.engine
    assert engine is not None
    with engine.connect() as conn:
        return int(conn.execute(sa.text(query), params).scalar_one())


# -- processes -------------------------------------------------------------------------------


@dataclass
class Children:
    """Forked children, all killed (by their own pid) if the test leaves any behind."""

    started: list[multiprocessing.process.BaseProcess] = field(default_factory=list)

    def start(self, target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
        process = FORK.Process(target=target, args=args, daemon=True)
        process.start()
        self.started.append(process)
        return process

    def join_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for process in self.started:
            process.join(max(0.0, deadline - time.monotonic()))
        stuck = [p.pid for p in self.started if p.is_alive()]
        assert not stuck, f"children {stuck} still running after {timeout}s"


# -- PostgreSQL administration ---------------------------------------------------------------


def pg_admin() -> sa.Engine:
    """An engine for administrative statements on the test server (autocommit)."""
    return sa.create_engine(postgres_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def with_application_name(url: str, name: str) -> str:
    """The URL with a libpq application_name, so a test can find (and drop) its connections."""
    return sa.engine.make_url(url).update_query_dict({"application_name": name}).render_as_string(
        hide_password=False
    )


def terminate_backends(application_name: str) -> int:
    """pg_terminate_backend every connection with that application_name; how many."""
    with pg_admin().connect() as conn:
        return len(conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :name AND pid <> pg_backend_pid()"
        ), {"name": application_name}).all())


def local_cluster() -> tuple[str, str] | None:
    """(version, name) of the local PostgreSQL cluster pg_ctlcluster controls, if we may."""
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        return None
    url = sa.engine.make_url(postgres_url())
    if url.host not in (None, "127.0.0.1", "localhost", "::1"):
        return None
    with contextlib.suppress(OSError):
        versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in
                                                                         v.split(".")])
        if versions and os.path.isdir(f"/etc/postgresql/{versions[-1]}/main"):
            return versions[-1], "main"
    return None


def pg_ctl(action: str, cluster: tuple[str, str]) -> None:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action]
    if action in ("stop", "restart"):
        command += ["-m", "fast"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def wait_for_postgres(timeout: float = 60.0) -> None:
    """Until the test server accepts connections again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with pg_admin().connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- filesystems -----------------------------------------------------------------------------


class Tmpfs:
    """A tiny tmpfs mounted for one test (root only), remountable read-only or resized."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise OSError(f"mount -t tmpfs failed: {result.stderr.strip()}")

    def remount(self, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.path)], check=True,
                       capture_output=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Tmpfs | None]:
    """A mounted Tmpfs, or None where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None
        return
    try:
        mounted = Tmpfs(path, size)
    except OSError:
        yield None
        return
    try:
        yield mounted
    finally:
        mounted.unmount()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
