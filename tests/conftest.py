"""Fixtures: every storage test runs on SQLite and, when WFNB_TEST_POSTGRES_URL is set, PostgreSQL.

Without the variable the PostgreSQL cases skip with that reason shown in the summary (-ra); with
WFNB_REQUIRE_POSTGRES=1 (set by .ci/run) a missing or unreachable server fails them instead.

Test sessions on one machine may share the server (two suites at once, other checkouts): each
holds a shared lock on it while it runs, and a test that stops the server (``postgres_alone``)
first waits for the lock to itself, instead of failing every other session's PostgreSQL tests
with "the database system is shutting down".
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import os
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa

from wfnb import SqliteWorkflowStorage, WorkflowStorage
from wfnb.testing import ModelServer

POSTGRES_URL = os.environ.get("WFNB_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("WFNB_REQUIRE_POSTGRES") == "1"
# property tests' examples: `make check` (WFNB_QUICK=1) runs fewer, `make test` all of them
EXAMPLES = 20 if os.environ.get("WFNB_QUICK") == "1" else 200

StorageFactory = Callable[..., WorkflowStorage]


def postgres_url() -> str:
    """The test server's URL, or skip (fail, when required) with the reason."""
    if not POSTGRES_URL:
        reason = "WFNB_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped"
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " but WFNB_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    _server_lock()
    return POSTGRES_URL


@functools.cache
def _server_lock() -> IO[str]:
    """The machine-wide lock file of the test server, held shared from the session's first
    PostgreSQL test until the process ends."""
    name = f"wfnb-tests-postgres-{zlib.crc32(POSTGRES_URL.encode()):08x}.lock"
    lock = open(Path(tempfile.gettempdir()) / name, "a")  # noqa: SIM115 (open for the session)
    fcntl.flock(lock, fcntl.LOCK_SH)
    atexit.register(lock.close)
    return lock


@pytest.fixture
def postgres_alone() -> Iterator[None]:
    """For a test that stops the server: wait until no other test session uses it (skip after
    60 s, saying so), and keep new ones from starting until the test ends."""
    postgres_url()
    lock = _server_lock()
    deadline = time.monotonic() + 60
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            fcntl.flock(lock, fcntl.LOCK_SH)  # a failed conversion dropped it
            if time.monotonic() > deadline:
                pytest.skip("another test session uses the PostgreSQL server: stopping it would "
                            "fail that session's tests")
            time.sleep(0.5)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_SH)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_url()
    return str(request.param)


@pytest.fixture
def table_name() -> str:
    return f"wf_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_storage(backend: str, tmp_path: Path, table_name: str) -> Iterator[StorageFactory]:
    """Open (another) storage on this test's database and table; tables dropped afterwards."""
    opened: list[WorkflowStorage] = []

    def make(**kwargs: Any) -> WorkflowStorage:
        name = kwargs.pop("table_name", table_name)
        storage: WorkflowStorage
        if backend == "sqlite":
            storage = SqliteWorkflowStorage(name, tmp_path / "workflows.db", **kwargs)
        else:
            storage = WorkflowStorage(name, postgres_url(), **kwargs)
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        storage.close()
    if backend == "postgres":
        drop_tables(postgres_url(), table_name)


@pytest.fixture
def second(backend: str, make_storage: StorageFactory) -> Iterator[WorkflowStorage]:
    """Another table in the same database (dropped afterwards)."""
    name = f"wf_{uuid.uuid4().hex[:12]}"
    yield make_storage(table_name=name)
    if backend == "postgres":
        drop_tables(postgres_url(), name)


@pytest.fixture
def db_args(backend: str, tmp_path: Path, table_name: str) -> list[str]:
    """The wfnb command line's options naming this test's database and table."""
    if backend == "sqlite":
        return ["--db", str(tmp_path / "workflows.db"), "--table", table_name]
    return ["--url", postgres_url(), "--table", table_name]


def drop_tables(url: str, table_name: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for suffix in ("", "_versions", "_runs", "_steps", "_meta", "_deleted"):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table_name}{suffix}"'))
    engine.dispose()


@pytest.fixture
def storage(make_storage: StorageFactory) -> WorkflowStorage:
    return make_storage()


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelServer]:
    """wfnb's local fake model server (OpenAI Chat, OpenAI Responses, Anthropic Messages) on
    127.0.0.1, shared by the session: point the real clients at its base URLs."""
    with ModelServer() as server:
        yield server
