"""The ``wfnb`` command line, run as ``python -m wfnb`` on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory, drop_tables, postgres_url
from tests.test_transfer import seed, snapshot
from wfnb import SqliteWorkflowStorage, WorkflowStorage
from wfnb.cli import _progress

ROOT = Path(__file__).resolve().parents[1]
Run = Callable[..., subprocess.CompletedProcess[str]]


def run_wfnb(
    *args: str, cwd: Path, tty: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m wfnb ARGS``, without the WFNB_/NO_COLOR variables unless given; on a
    pseudo-terminal for stdout with ``tty``."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("WFNB_DB_URL", "WFNB_TABLE", "NO_COLOR")}
    environ.update(env, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "wfnb", *args]
    if not tty:
        return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True,
                              timeout=60, check=False)
    leader, follower = pty.openpty()
    done = subprocess.run(command, cwd=cwd, env=environ, stdout=follower, stderr=subprocess.PIPE,
                          text=True, timeout=60, check=False)
    os.close(follower)
    out = b""
    with open(leader, "rb", buffering=0) as terminal:
        while True:
            try:
                chunk = terminal.read(65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            out += chunk
    return subprocess.CompletedProcess(command, done.returncode, out.decode(), done.stderr)


@pytest.fixture
def wfnb(db_args: list[str], tmp_path: Path) -> Run:
    """Run wfnb on this test's database and table."""

    def run(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return run_wfnb(*db_args, *args, cwd=tmp_path, **options)

    return run


@pytest.fixture
def seeded(storage: WorkflowStorage) -> WorkflowStorage:
    seed(storage)
    return storage


@pytest.fixture
def sqlite_seeded(tmp_path: Path) -> Iterator[WorkflowStorage]:
    """Seeded sessions in table "blog" of workflows.db, for tests of SQLite files only."""
    storage = SqliteWorkflowStorage("blog", tmp_path / "workflows.db")
    seed(storage)
    yield storage
    storage.close()


def fails(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """Exit ``code`` with one ``wfnb: error:`` line naming ``words``, and no traceback."""
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("wfnb: error: ") and result.stderr.count("\n") == 1
    assert all(word in result.stderr for word in words), result.stderr


# -- the program -------------------------------------------------------------------------------


def test_help_lists_the_commands_and_the_exit_codes(tmp_path: Path) -> None:
    result = run_wfnb("--help", cwd=tmp_path)
    assert result.returncode == 0
    for word in ("sessions", "show", "history", "diff", "restore", "fork", "delete", "export",
                 "import", "prune", "runs", "0  ok", "1  not found", "2  usage", "3  conflict",
                 "4  storage error"):
        assert word in result.stdout


def test_a_usage_error_is_one_line_with_exit_2(tmp_path: Path) -> None:
    fails(run_wfnb("show", cwd=tmp_path), 2, "session")


def test_the_command_line_does_not_load_ipython(
    tmp_path: Path, sqlite_seeded: WorkflowStorage
) -> None:
    code = (
        "import sys; from wfnb.cli import main; "
        f"main(['--db', {str(tmp_path / 'workflows.db')!r}, 'sessions', '--json']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'traitlets', 'ipykernel')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip().endswith("[]")


# -- choosing the database and table -----------------------------------------------------------


def test_the_only_table_in_the_database_is_the_default(
    tmp_path: Path, sqlite_seeded: WorkflowStorage
) -> None:
    result = run_wfnb("--db", str(tmp_path / "workflows.db"), "sessions", "--json", cwd=tmp_path)
    assert orjson.loads(result.stdout)["total"] == 3


def test_the_database_and_table_may_come_from_the_environment(
    tmp_path: Path, sqlite_seeded: WorkflowStorage
) -> None:
    url = f"sqlite:///{tmp_path / 'workflows.db'}"
    result = run_wfnb("history", "gamma", "--json", cwd=tmp_path, WFNB_DB_URL=url,
                      WFNB_TABLE="blog")
    assert [v["version"] for v in orjson.loads(result.stdout)] == [5, 4]


def test_global_options_may_follow_the_command(
    tmp_path: Path, sqlite_seeded: WorkflowStorage
) -> None:
    result = run_wfnb("history", "gamma", "--json", "--db", "workflows.db", cwd=tmp_path)
    assert [v["version"] for v in orjson.loads(result.stdout)] == [5, 4]


def test_several_tables_need_table_exit_2(tmp_path: Path) -> None:
    for name in ("first", "second"):
        SqliteWorkflowStorage(name, tmp_path / "workflows.db").close()
    result = run_wfnb("--db", str(tmp_path / "workflows.db"), "sessions", cwd=tmp_path)
    fails(result, 2, "'first', 'second'", "--table")


def test_an_unknown_table_is_not_found(tmp_path: Path, sqlite_seeded: WorkflowStorage) -> None:
    result = run_wfnb("--db", "workflows.db", "--table", "nope", "sessions", cwd=tmp_path)
    fails(result, 1, "'nope'", "'blog'")


def test_a_missing_database_file_is_not_found_and_not_created(tmp_path: Path) -> None:
    fails(run_wfnb("sessions", cwd=tmp_path), 1, "tmp/workflows.db")
    assert not (tmp_path / "tmp").exists()


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    fails(run_wfnb("--db", "junk.db", "sessions", cwd=tmp_path), 4, "junk.db")


def test_an_unreachable_server_is_a_storage_error(tmp_path: Path) -> None:
    result = run_wfnb("--url", "postgresql://nobody@127.0.0.1:1/none", "sessions", cwd=tmp_path)
    fails(result, 4, "cannot open")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_wfnb("--debug", "--url", "postgresql://nobody@127.0.0.1:1/none", "sessions",
                      cwd=tmp_path)
    assert result.returncode == 4 and "Traceback" in result.stderr


# -- listing and reading -----------------------------------------------------------------------


def test_sessions_prints_an_aligned_table_newest_first(
    wfnb: Run, seeded: WorkflowStorage
) -> None:
    lines = wfnb("sessions").stdout.splitlines()
    assert lines[0].split() == ["SESSION", "WORKFLOW", "VERSION", "SIZE", "UPDATED"]
    assert [line.split()[0] for line in lines[1:4]] == [
        s.session_id for s in seeded.list_sessions()
    ]
    assert len({line.index(":") for line in lines[1:4]}) == 1  # the times line up
    assert lines[4] == "page 1 of 1, 3 sessions"
    assert "\x1b[" not in "".join(lines)  # no colour into a pipe


def test_sessions_json_pages(wfnb: Run, seeded: WorkflowStorage) -> None:
    page = orjson.loads(wfnb("sessions", "--json", "--limit", "2", "--page", "2").stdout)
    assert (page["total"], page["page"], page["limit"]) == (3, 2, 2)
    assert [s["session_id"] for s in page["sessions"]] == [seeded.list_sessions()[2].session_id]


def test_sessions_filters_by_search_and_workflow(wfnb: Run, seeded: WorkflowStorage) -> None:
    page = orjson.loads(wfnb("sessions", "--json", "--search", "a", "--workflow", "Counter").stdout)
    assert [s["session_id"] for s in page["sessions"]] == ["gamma"]


def test_show_prints_the_state_as_stored(wfnb: Run, seeded: WorkflowStorage) -> None:
    stored = seeded.read("alpha")
    assert stored is not None
    assert orjson.loads(wfnb("show", "alpha").stdout) == orjson.loads(stored.state_json)


def test_show_version_prints_an_older_state(wfnb: Run, seeded: WorkflowStorage) -> None:
    shown = orjson.loads(wfnb("show", "alpha", "--version", "2").stdout)
    assert [p["topic"] for p in shown["posts"]] == ["topic 0", "topic 1"]


def test_show_path_prints_the_value_there(wfnb: Run, seeded: WorkflowStorage) -> None:
    assert wfnb("show", "alpha", "--path", "posts.1.topic").stdout == '"topic 1"\n'
    assert wfnb("show", "alpha", "--path", "pair.-1", "--raw").stdout == "two\n"


def test_show_an_unknown_path_names_the_element_with_exit_1(
    wfnb: Run, seeded: WorkflowStorage
) -> None:
    fails(wfnb("show", "alpha", "--path", "posts.9.topic"), 1, "'9'", "has 6 items")


def test_unknown_sessions_and_versions_exit_1(wfnb: Run, seeded: WorkflowStorage) -> None:
    fails(wfnb("show", "nobody"), 1, "'nobody'")
    fails(wfnb("history", "nobody"), 1, "'nobody'")
    fails(wfnb("diff", "gamma", "1"), 1, "version 1")


def test_history_lists_versions_newest_first(wfnb: Run, seeded: WorkflowStorage) -> None:
    versions = orjson.loads(wfnb("history", "alpha", "--json").stdout)
    assert [(v["version"], v["source"], v["run_id"]) for v in versions] == [
        (i, "run", f"run-{i - 1}") for i in range(6, 0, -1)
    ]
    table = wfnb("history", "alpha", "--limit", "2").stdout.splitlines()
    assert table[0].split() == ["VERSION", "SOURCE", "RUN", "SIZE", "CREATED"]
    assert [line.split()[:3] for line in table[1:]] == [["6", "run", "run-5"],
                                                        ["5", "run", "run-4"]]


def test_runs_lists_runs_with_status_and_error(wfnb: Run, seeded: WorkflowStorage) -> None:
    records = orjson.loads(wfnb("runs", "alpha", "--json").stdout)
    assert [(r["run_id"], r["status"], r["error"], r["output_tokens"]) for r in records] == [
        ("run-bad", "failed", "ValueError: boom", None), ("run-ok", "completed", None, 30)
    ]
    table = wfnb("runs", "alpha").stdout
    assert "run-bad  failed" in table and "ValueError: boom" in table
    assert "TOKENS" in table and "12 in / 30 out" in table


def test_diff_prints_a_unified_diff_of_two_versions(wfnb: Run, seeded: WorkflowStorage) -> None:
    lines = wfnb("diff", "alpha", "5").stdout.splitlines()
    assert lines[:2] == ["--- alpha version 5", "+++ alpha version 6"]
    assert '+      "topic": "topic 5"' in lines
    assert not any(line.startswith("-  ") for line in lines)  # only appended


def test_diff_is_coloured_on_a_terminal_only(
    tmp_path: Path, sqlite_seeded: WorkflowStorage
) -> None:
    args = ("--db", "workflows.db", "diff", "gamma", "4")
    assert "\x1b[31m-" in run_wfnb(*args, cwd=tmp_path, tty=True).stdout
    assert "\x1b[" not in run_wfnb(*args, cwd=tmp_path, tty=True, NO_COLOR="1").stdout


# -- changing ----------------------------------------------------------------------------------


def test_restore_saves_an_old_state_as_a_new_version(wfnb: Run, seeded: WorkflowStorage) -> None:
    result = wfnb("restore", "alpha", "2")
    assert result.stdout == "session 'alpha': version 2 restored as version 7\n"
    assert seeded.read("alpha").state_json == seeded.read("alpha", 2).state_json  # type: ignore[union-attr]
    assert seeded.history("alpha")[0].source == "restore"


def test_fork_prints_the_new_id_and_the_fork_holds_that_version(
    wfnb: Run, seeded: WorkflowStorage
) -> None:
    before = seeded.history("alpha")
    result = wfnb("fork", "alpha", "2", "--as", "alpha-try")
    assert (result.returncode, result.stdout) == (0, "alpha-try\n")
    assert result.stderr == "forked session 'alpha' version 2 as 'alpha-try' (its version 1)\n"
    fork, source = seeded.read("alpha-try"), seeded.read("alpha", 2)
    assert fork is not None and source is not None
    assert (fork.document, fork.workflow_name) == (source.document, "BlogPostGenerator")
    assert seeded.history("alpha") == before and seeded.steps("alpha-try") == []
    table = wfnb("history", "alpha-try").stdout.splitlines()
    assert table[0].split() == ["VERSION", "SOURCE", "RUN", "SIZE", "CREATED", "FORKED", "FROM"]
    assert table[1].split()[:2] == ["1", "fork"] and table[1].endswith("  alpha v2")
    assert "FORKED" not in wfnb("history", "alpha").stdout
    (entry,) = orjson.loads(wfnb("history", "alpha-try", "--json").stdout)
    assert (entry["forked_from_session"], entry["forked_from_version"]) == ("alpha", 2)


def test_fork_without_a_version_or_id_forks_the_current_state_under_a_uuid(
    wfnb: Run, seeded: WorkflowStorage
) -> None:
    forked = orjson.loads(wfnb("fork", "gamma", "--json").stdout)
    assert str(uuid.UUID(forked["session_id"])) == forked["session_id"]
    assert (forked["version"], forked["source"], forked["forked_from_version"]) == (1, "fork", 5)
    new_id = wfnb("fork", "gamma").stdout.strip()
    assert seeded.read(new_id).session_state == {"count": 4}  # type: ignore[union-attr]


def test_fork_refuses_a_taken_id_exit_3_and_unknown_ones_exit_1(
    wfnb: Run, seeded: WorkflowStorage
) -> None:
    beta = seeded.read("beta")
    fails(wfnb("fork", "alpha", "--as", "beta"), 3, "'beta' is already in table",
          "nothing was written")
    assert seeded.read("beta") == beta
    fails(wfnb("fork", "nobody"), 1, "no session 'nobody'")
    fails(wfnb("fork", "gamma", "1", "--as", "g"), 1, "no version 1", "pruned")
    fails(wfnb("fork", "gamma", "0"), 2, "'0' is not a whole number")
    assert seeded.read("g") is None


def test_delete_without_yes_is_refused_with_exit_2(wfnb: Run, seeded: WorkflowStorage) -> None:
    fails(wfnb("delete", "alpha"), 2, "--yes")
    assert seeded.read("alpha") is not None


def test_delete_with_yes_removes_the_session_history_and_runs(
    wfnb: Run, seeded: WorkflowStorage
) -> None:
    assert wfnb("delete", "alpha", "--yes").returncode == 0
    assert (seeded.read("alpha"), seeded.history("alpha"), seeded.runs("alpha")) == (None, [], [])
    fails(wfnb("delete", "alpha", "--yes"), 1, "'alpha'")


def test_prune_keep_drops_all_but_the_newest_versions(wfnb: Run, seeded: WorkflowStorage) -> None:
    assert wfnb("prune", "--keep", "2").stdout == "dropped 4 versions from 3 sessions\n"
    assert [v.version for v in seeded.history("alpha")] == [6, 5]


def test_prune_older_than_drops_old_versions(wfnb: Run, seeded: WorkflowStorage) -> None:
    versions = seeded._database.tables.versions
    with seeded._database.transaction("age history", write=True) as tx:
        tx.execute(sa.update(versions).where(versions.c.version < 4)
                     .values(created_at=time.time() - 40 * 86400))
    assert wfnb("prune", "--older-than", "30d").stdout == "dropped 3 versions from 3 sessions\n"
    assert [v.version for v in seeded.history("alpha")] == [6, 5, 4]


def test_prune_needs_keep_or_a_valid_age(tmp_path: Path) -> None:
    fails(run_wfnb("prune", cwd=tmp_path), 2, "--keep", "--older-than")
    fails(run_wfnb("prune", "--older-than", "3 weeks", cwd=tmp_path), 2, "'3 weeks'")


# -- export and import -------------------------------------------------------------------------


def test_export_writes_one_line_per_session_with_history_and_runs(
    wfnb: Run, seeded: WorkflowStorage, tmp_path: Path
) -> None:
    result = wfnb("export", "-o", "all.jsonl")
    assert result.stdout == f"exported 3 sessions from table {seeded.table_name!r} to 'all.jsonl'\n"
    sessions = {line["session_id"]: line for line in map(orjson.loads, (tmp_path / "all.jsonl")
                                                          .read_bytes().splitlines())}
    assert sorted(sessions) == ["alpha", "beta", "gamma"]
    assert [h["version"] for h in sessions["gamma"]["history"]] == [4, 5]
    assert [r["run_id"] for r in sessions["alpha"]["runs"]] == ["run-ok", "run-bad"]


def test_export_of_an_unknown_session_exits_1_and_writes_no_file(
    wfnb: Run, seeded: WorkflowStorage, tmp_path: Path
) -> None:
    fails(wfnb("export", "alpha", "nobody", "-o", "some.jsonl"), 1, "'nobody'")
    assert list(tmp_path.glob("*.jsonl")) == [] and list(tmp_path.glob(".some*")) == []


@pytest.fixture
def export_file(wfnb: Run, seeded: WorkflowStorage, tmp_path: Path) -> Path:
    """alpha and beta exported; then alpha gets a new version and beta is deleted."""
    assert wfnb("export", "alpha", "beta", "-o", "two.jsonl").returncode == 0
    seeded.save("alpha", {"changed": True}, expected_version=6)
    seeded.delete("beta")
    return tmp_path / "two.jsonl"


def test_import_of_an_existing_session_fails_with_exit_3_and_writes_nothing(
    wfnb: Run, seeded: WorkflowStorage, export_file: Path
) -> None:
    fails(wfnb("import", str(export_file)), 3, "'alpha'", "--on-conflict")
    assert seeded.read("beta") is None
    assert seeded.read("alpha").version == 7  # type: ignore[union-attr]


def test_import_skip_leaves_existing_sessions_alone(
    wfnb: Run, seeded: WorkflowStorage, export_file: Path
) -> None:
    report = orjson.loads(wfnb("import", str(export_file), "--on-conflict", "skip",
                               "--json").stdout)
    assert (report["imported"], report["skipped"]) == (["beta"], ["alpha"])
    assert seeded.read("alpha").session_state == {"changed": True}  # type: ignore[union-attr]
    assert seeded.read("beta") is not None


def test_import_new_version_appends_the_imported_state(
    wfnb: Run, seeded: WorkflowStorage, export_file: Path
) -> None:
    result = wfnb("import", str(export_file), "--on-conflict", "new-version")
    assert "1 session saved as a new version of the existing session: alpha" in result.stdout
    alpha = seeded.read("alpha")
    assert alpha is not None and alpha.version == 8
    assert alpha.state_json == seeded.read("alpha", 6).state_json  # type: ignore[union-attr]
    assert seeded.history("alpha")[0].source == "import"


def test_a_malformed_import_file_is_a_usage_error_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"wfnb": 1, "session_id": "x"}\n')
    result = run_wfnb("--db", "new.db", "--table", "t", "import", "bad.jsonl", cwd=tmp_path)
    fails(result, 2, "bad.jsonl, line 1", "version is missing")
    assert not (tmp_path / "new.db").exists()


def test_export_then_import_into_another_table_is_identical(
    backend: str, db_args: list[str], seeded: WorkflowStorage, make_storage: StorageFactory,
    wfnb: Run, tmp_path: Path,
) -> None:
    assert wfnb("export", "-o", "all.jsonl").returncode == 0
    other = f"wf_{uuid.uuid4().hex[:12]}"
    try:
        result = run_wfnb(*db_args[:2], "--table", other, "import", "all.jsonl", cwd=tmp_path)
        assert result.stdout.splitlines()[1] == "  3 sessions imported: alpha, beta, gamma"
        assert snapshot(make_storage(table_name=other)) == snapshot(seeded)
    finally:
        if backend == "postgres":
            drop_tables(postgres_url(), other)


@pytest.mark.postgres
def test_sessions_round_trip_exactly_from_sqlite_to_postgresql_and_back(tmp_path: Path) -> None:
    url, table = postgres_url(), f"wf_{uuid.uuid4().hex[:12]}"
    source = SqliteWorkflowStorage(table, tmp_path / "source.db")
    seed(source)
    try:
        for args in (["--db", "source.db", "export", "-o", "a.jsonl"],
                     ["--url", url, "--table", table, "import", "a.jsonl"],
                     ["--url", url, "--table", table, "export", "-o", "b.jsonl"],
                     ["--db", "back.db", "--table", table, "import", "b.jsonl"]):
            assert run_wfnb(*args, cwd=tmp_path).returncode == 0, args
        postgres = WorkflowStorage(table, url)
        back = SqliteWorkflowStorage(table, tmp_path / "back.db")
        assert snapshot(postgres) == snapshot(source) == snapshot(back)
        assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
        for storage in (source, postgres, back):
            storage.close()
    finally:
        drop_tables(url, table)


# -- progress ----------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_on_a_terminal_and_wipes_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the fallback counter
    terminal = _Terminal()
    with _progress.progress("export", 3, terminal, delay=0) as tick:
        for _ in range(3):
            tick()
    assert "export: 3/3 sessions" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r")


def test_progress_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    with _progress.progress("export", 3, stream, delay=0) as tick:
        tick()
    assert stream.getvalue() == ""
