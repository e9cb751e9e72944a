"""A 50 MB state saves and loads, in memory bounded by a small multiple of its size.

Memory is the peak resident set (``ru_maxrss``) of a fresh process doing one thing, above what
it used just before: real memory. tracemalloc is not used for the bound because it counts what
orjson reserves for its parser up front (about 13 times the document, for a load), most of which
is never touched and so never becomes memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.reliability._support import Target, record_figure
from wfnb import WorkflowStorage

MB = 1_000_000
SIZE = 50 * MB
#: Peak memory of a save or a load above the process's baseline, in state sizes. Measured: about
#: 3-4x on SQLite, 5-6x on PostgreSQL, where libpq also holds the whole row in its input buffer
#: (kept by the pooled connection afterwards) and in the result (docs/reliability.md).
BOUND = {"sqlite": 6, "postgres": 8}
ROOT = Path(__file__).resolve().parents[2]


def big_state() -> dict[str, Any]:
    """~50 MB of JSON: 50 strings of 1 MB (of varied text) plus a few small keys."""
    chunk = "".join(f"{i:07d} lorem ipsum dolor sit amet; " for i in range(MB // 36 + 1))[:MB]
    return {"title": "big", "count": 0, "chunks": [f"{n:04d}" + chunk[4:] for n in range(50)]}


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(url: str, table: str, phase: str) -> None:
    """One measured step in a fresh process; prints {"seconds", "peak"} as JSON."""
    storage = WorkflowStorage(table, url)
    storage.read("warm-up")  # connect and load the drivers before the baseline
    state = big_state() if phase == "save" else None
    baseline = _resident()
    began = time.perf_counter()
    if state is not None:
        storage.save("big", state, expected_version=0)
    else:
        stored = storage.read("big", 1 if phase == "load-v1" else None)
    seconds = time.perf_counter() - began
    peak = _peak() - baseline
    if state is not None:  # a small change, saved as a delta on the 50 MB version
        state["count"] = 1
        assert storage.save("big", state, expected_version=1).version == 2
    else:
        expected = big_state()
        expected["count"] = 0 if phase == "load-v1" else 1
        assert stored is not None and stored.session_state == expected
    print(json.dumps({"seconds": seconds, "peak": peak}))


def measure(target: Target, phase: str) -> dict[str, float]:
    code = f"from {__name__} import child; child(*{[target.url, target.table, phase]!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    measured: dict[str, float] = json.loads(result.stdout.splitlines()[-1])
    return measured


def test_a_50_mb_state_saves_and_loads_in_bounded_memory(target: Target) -> None:
    phases = {phase: measure(target, phase) for phase in ("save", "load-v1", "load-current")}
    storage = target.open()
    stored = storage.read("big")
    assert stored is not None and stored.version == 2
    size = stored.state_bytes
    assert SIZE <= size < SIZE * 1.01
    for phase, figures in phases.items():
        assert figures["peak"] < BOUND[target.backend] * size, (
            f"{phase}: {figures['peak'] / size:.1f}x")
    record_figure(
        f"50 MB state, {target.backend}",
        ", ".join(f"{phase} {f['seconds']:.2f}s (peak memory +{f['peak'] / size:.1f}x the state)"
                  for phase, f in phases.items()),
    )
