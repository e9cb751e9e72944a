"""nbval (`make test` on notebooks/): each tutorial notebook runs in under a minute.

nbval makes one test item per cell; their setup, call and teardown times are added up per
notebook, and the run fails when a notebook took a minute or more.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

LIMIT = 60.0  # seconds per notebook, its kernel's start included
_seconds: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _seconds[Path(report.fspath).name] += report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    slow = {name: took for name, took in _seconds.items() if took >= LIMIT}
    if slow:
        for name, took in sorted(slow.items()):
            print(f"\nnotebooks/{name} took {took:.0f} s to run (at most {LIMIT:.0f} s)")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
