"""Fixtures of the reliability suite (see docs/reliability.md).

Every test here runs on SQLite and, with WFNB_TEST_POSTGRES_URL set, on PostgreSQL (the
``backend`` fixture of tests/conftest.py). Long variants carry the ``slow`` marker: they are part
of ``make test`` and CI; ``pytest -m "not slow"`` leaves them out for a quick local run.

Figures (throughput, disk growth, memory) are printed in a "wfnb reliability figures" section at
the end of the pytest summary, and written as JSON to ``$WFNB_FIGURES_JSON`` when it is set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import drop_tables, postgres_url
from tests.reliability._support import FIGURES, Children, Target
from wfnb.storage._engine import sqlite_url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("wfnb reliability figures")
    for name in sorted(FIGURES):
        terminalreporter.write_line(f"{name}: {FIGURES[name]}")
    path = os.environ.get("WFNB_FIGURES_JSON")
    if path:
        Path(path).write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def target(backend: str, tmp_path: Path, table_name: str) -> Iterator[Target]:
    """This test's database (a fresh SQLite file, or fresh tables on the PostgreSQL server)."""
    if backend == "sqlite":
        db_file = tmp_path / "reliability.db"
        yield Target("sqlite", sqlite_url(db_file), table_name, db_file)
    else:
        url = postgres_url()
        yield Target("postgres", url, table_name)
        drop_tables(url, table_name)


@pytest.fixture
def children() -> Iterator[Children]:
    """Forked children of this test; any still alive at the end are killed by pid."""
    kids = Children()
    yield kids
    for process in kids.started:
        if process.is_alive():
            process.kill()
            process.join(5)
