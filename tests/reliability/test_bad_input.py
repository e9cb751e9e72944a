"""Bad input, end to end: each case gives a clear error or a documented behaviour, and what was
stored before is still there afterwards (docs/reliability.md has the table).

Cases already covered elsewhere are not repeated here; the table points to them:
tests/test_codec.py (the encoder's refusals one by one), tests/test_storage.py (unsafe table
names and session ids, hostile ids stored as data, a hand-corrupted row, a newer schema, a
directory as db_file, a read-only URI), tests/test_workflow.py (a run failing in the middle,
KeyboardInterrupt, a consumer stopping early, a second run on a busy instance).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import gc
import os
import subprocess
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory
from wfnb import (
    CorruptStateError,
    InvalidNameError,
    RunResponse,
    SessionConflictError,
    SessionNotFoundError,
    SqliteWorkflowStorage,
    StorageError,
    UnstorableStateError,
    Workflow,
    WorkflowBusyError,
    WorkflowStorage,
)
from wfnb.storage._database import Transaction

GOOD: dict[str, Any] = {"count": 1, "posts": [{"topic": "pasta"}]}


def good() -> dict[str, Any]:
    return {"count": GOOD["count"], "posts": [dict(GOOD["posts"][0])]}


@pytest.fixture
def seeded(storage: WorkflowStorage) -> WorkflowStorage:
    """A storage holding session "s" at version 1 with the GOOD state."""
    storage.save("s", good(), expected_version=0, workflow_name="Poison")
    return storage


def assert_intact(storage: WorkflowStorage, session_id: str = "s") -> None:
    """What was stored before the bad input is still there, unchanged, at version 1."""
    stored = storage.read(session_id)
    assert stored is not None
    assert (stored.version, stored.session_state) == (1, GOOD)
    assert [v.version for v in storage.history(session_id)] == [1]


# -- values a run puts in session_state --------------------------------------------------------


class Poison(Workflow):
    """Puts ``value`` deep in the state, then completes (the final save must refuse it)."""

    value: Any = None

    def run(self) -> Iterator[RunResponse]:
        self.session_state["count"] += 1
        self.session_state["posts"][0]["meta"] = {"deep": [1, {"x": self.value}]}
        yield RunResponse(content="mutated")


@dataclasses.dataclass
class Point:
    x: int


class Plain:
    def __init__(self) -> None:
        self.attr = 1


class Colour(enum.Enum):
    RED = 1


def _cycle_list() -> Any:
    items: list[Any] = []
    items.append(items)
    return items


def _cycle_dict() -> Any:
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    return mapping


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def _numpy(kind: str) -> Any:
    numpy = pytest.importorskip("numpy")
    return numpy.float64(1.5) if kind == "scalar" else numpy.arange(3)


def _dataframe() -> Any:
    pandas = pytest.importorskip("pandas")
    return pandas.DataFrame({"a": [1]})


AT = 'session_state["posts"][0]["meta"]["deep"][1]["x"]'

#: id: (make the value, the reason the error gives, the path it names)
UNSTORABLE: dict[str, tuple[Callable[[], Any], str, str]] = {
    "object": (object, "object cannot be stored as JSON", AT),
    "nan": (lambda: float("nan"), "nan is not valid JSON", AT),
    "infinity": (lambda: float("inf"), "inf is not valid JSON", AT),
    "minus-infinity": (lambda: float("-inf"), "-inf is not valid JSON", AT),
    "int-2**64": (lambda: 2**64, "does not fit in 64 bits", AT),
    "int-below-int64": (lambda: -(2**63) - 1, "does not fit in 64 bits", AT),
    "int-key": (lambda: {1: "a"}, "dict key 1 is a int; keys must be str", AT),
    "tuple-key": (lambda: {(1, 2): "a"}, "dict key (1, 2) is a tuple", AT),
    "none-key": (lambda: {None: "a"}, "dict key None is a NoneType", AT),
    "list-cycle": (_cycle_list, "reference cycle", "session_state"),
    "dict-cycle": (_cycle_dict, "reference cycle", "session_state"),
    "object-with-dict": (Plain, "Plain cannot be stored as JSON", AT),
    "dataclass": (lambda: Point(1), "store dataclasses.asdict(value)", AT),
    "enum": (lambda: Colour.RED, "Colour cannot be stored as JSON", AT),
    "ordereddict": (lambda: collections.OrderedDict(a=1), "come back as a plain dict", AT),
    "counter": (lambda: collections.Counter("ab"), "come back as a plain dict", AT),
    "function": (lambda: len, "builtin_function_or_method cannot be stored", AT),
    "generator": (lambda: (i for i in range(2)), "generator cannot be stored as JSON", AT),
    "decimal-nan": (lambda: decimal.Decimal("NaN"), "is not finite", AT),
    "lone-surrogate": (lambda: "\udcff", "lone surrogate", AT),
    "reserved-key": (lambda: {"$wfnb": "bytes", "v": ""}, "reserved by wfnb", AT),
    "nesting-300": (lambda: _nested(300), "nests at most 253 levels", 'session_state["posts"]'),
    "numpy-scalar": (lambda: _numpy("scalar"), "float64 would come back as a plain float", AT),
    "numpy-array": (lambda: _numpy("array"), "ndarray cannot be stored as JSON", AT),
    "dataframe": (_dataframe, "DataFrame cannot be stored as JSON", AT),
    "datetime-custom-tz": (
        lambda: dt.datetime(2024, 1, 1, tzinfo=_CustomZone()), "does not round-trip", AT
    ),
}


class _CustomZone(dt.tzinfo):
    def utcoffset(self, _when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)

    def dst(self, _when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, _when: dt.datetime | None) -> str:
        return "custom"


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_an_unstorable_value_deep_in_a_run_is_refused_by_path(
    seeded: WorkflowStorage, case: str
) -> None:
    make, reason, path = UNSTORABLE[case]
    wf = Poison(session_id="s", storage=seeded, value=make())
    with pytest.raises(UnstorableStateError) as raised:
        for _ in wf.run():
            pass
    assert raised.value.path == path
    assert reason in raised.value.reason
    assert str(raised.value).endswith("nothing was written")
    assert_intact(seeded)
    assert wf.session_state["count"] == 2  # the run's state stays in memory for a look
    (run,) = seeded.runs("s")
    assert run.status == "failed" and "UnstorableStateError" in (run.error or "")


def test_session_state_replaced_by_a_non_dict_is_refused_before_the_run(
    seeded: WorkflowStorage,
) -> None:
    wf = Poison(session_id="s", storage=seeded)
    wf.session_state = ["not", "a", "dict"]  # type: ignore[assignment]
    with pytest.raises(UnstorableStateError, match="must be a dict, not list"):
        for _ in wf.run():
            pass
    assert seeded.runs("s") == []  # refused before the run began
    assert_intact(seeded)


@pytest.mark.parametrize(
    ("value", "tag"),
    [(b"\x00\xff raw", "bytes"), ({3, 1, 2}, "set"), (frozenset({"a"}), "frozenset"),
     ((1, "two"), "tuple")],
    ids=["bytes", "set", "frozenset", "tuple"],
)
def test_bytes_sets_and_tuples_are_stored_tagged_and_come_back_exactly(
    seeded: WorkflowStorage, value: Any, tag: str
) -> None:
    """Documented behaviour: stored as {"$wfnb": "<type>", "v": ...} and revived on load."""
    wf = Poison(session_id="s", storage=seeded, value=value)
    for _ in wf.run():
        pass
    stored = seeded.read("s")
    assert stored is not None and stored.version == 2
    back = stored.session_state["posts"][0]["meta"]["deep"][1]["x"]
    assert back == value and type(back) is type(value)
    assert f'"$wfnb":"{tag}"'.encode() in stored.document
    old = seeded.read("s", 1)
    assert old is not None and old.session_state == GOOD  # the version before is kept


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["t" * 10_000, "t'", "t; DROP TABLE t_versions; --", "表", "t\n", "t-1", "t.x", " t"],
    ids=["10kB", "quote", "semicolon", "unicode", "newline", "dash", "dot", "leading-space"],
)
def test_hostile_table_names_are_refused_before_touching_the_database(
    make_storage: StorageFactory, name: str
) -> None:
    storage = make_storage()
    storage.save("s", good(), expected_version=0)
    with pytest.raises(InvalidNameError, match="table_name") as raised:
        make_storage(table_name=name)
    assert len(str(raised.value)) < len(name) + 200
    assert_intact(storage)


def test_a_table_name_sqlite_reserves_is_a_clear_storage_error(tmp_path: Path) -> None:
    storage = SqliteWorkflowStorage("t", tmp_path / "wf.db")
    storage.save("s", good(), expected_version=0)
    with pytest.raises(StorageError, match="reserved for internal use"):
        SqliteWorkflowStorage("sqlite_t", tmp_path / "wf.db")
    assert_intact(storage)


@pytest.mark.postgres
def test_the_longest_table_name_allowed_works_on_postgresql(table_name: str) -> None:
    from tests.conftest import drop_tables, postgres_url

    name = (table_name + "_" * 46)[:46]
    try:
        storage = WorkflowStorage(name, postgres_url())
        storage.save("s", good(), expected_version=0)
        assert_intact(storage)
        storage.close()
    finally:
        drop_tables(postgres_url(), name)


def test_a_10kb_session_id_is_refused_with_a_short_message(seeded: WorkflowStorage) -> None:
    with pytest.raises(InvalidNameError, match="at most 1024 characters") as raised:
        seeded.save("s" * 10_000, good(), expected_version=0)
    assert len(str(raised.value)) < 200
    with pytest.raises(InvalidNameError):
        Poison(session_id="s" * 10_000, storage=seeded)
    assert_intact(seeded)


@pytest.mark.parametrize("session_id", ["\udcff", os.fsdecode(b"run-\xff.json")],
                         ids=["surrogate", "fsdecoded-file-name"])
def test_a_session_id_with_a_lone_surrogate_is_an_invalid_name(
    seeded: WorkflowStorage, session_id: str
) -> None:
    """Was a raw UnicodeEncodeError from the driver (on save, read, and Workflow())."""
    for attempt in (lambda: seeded.save(session_id, good(), expected_version=0),
                    lambda: seeded.read(session_id),
                    lambda: Poison(session_id=session_id, storage=seeded)):
        with pytest.raises(InvalidNameError, match="lone surrogate"):
            attempt()
    assert_intact(seeded)


def test_control_characters_in_a_session_id_are_plain_data(seeded: WorkflowStorage) -> None:
    session_id = "\t\r\n\x1b[31m red \x7f"
    seeded.save(session_id, {"ok": True}, expected_version=0)
    stored = seeded.read(session_id)
    assert stored is not None and stored.session_state == {"ok": True}
    assert_intact(seeded)


# -- database files ----------------------------------------------------------------------------


def test_db_file_inside_a_regular_file_is_an_os_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("I am a file")
    with pytest.raises(OSError, match="plain"):  # FileExistsError: mkdir of its folder
        SqliteWorkflowStorage("t", tmp_path / "plain" / "wf.db")
    assert (tmp_path / "plain").read_text() == "I am a file"


def test_db_file_that_is_not_a_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    with pytest.raises(StorageError, match="file is not a database"):
        SqliteWorkflowStorage("t", path)
    assert path.read_text() == "not a database\n" * 100


def _chattr(flag: str, *paths: Path) -> bool:
    result = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, check=False)
    return result.returncode == 0


def test_db_file_in_an_unwritable_folder_is_a_clear_storage_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    if not _chattr("+i", folder):
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(StorageError, match=r"cannot open sqlite:.*unable to open database"):
            SqliteWorkflowStorage("t", folder / "wf.db")
    finally:
        _chattr("-i", folder)
    assert list(folder.iterdir()) == []


def test_a_read_only_db_file_reads_refuses_saves_then_recovers(tmp_path: Path) -> None:
    """Opened while unwritable: reads work, a save is a StorageError naming the session, and
    once the file is writable the next save works (the read-only connection is replaced)."""
    db_file = tmp_path / "wf.db"
    first = SqliteWorkflowStorage("t", db_file)
    first.save("s", good(), expected_version=0)
    first.close()
    if not _chattr("+i", db_file):
        pytest.skip("chattr +i is not available here")
    try:
        storage = SqliteWorkflowStorage("t", db_file)
        assert_intact(storage)
        with pytest.raises(StorageError, match=r"could not save the session: attempt to write a "
                                               r"readonly database \(table 't', session 's'\)"):
            storage.save("s", {"count": 2}, expected_version=1)
    finally:
        _chattr("-i", db_file)
    assert storage.save("s", {"count": 2}, expected_version=1).version == 2


# -- stored rows damaged by hand -----------------------------------------------------------------


def _raw(storage: WorkflowStorage, sql: str, **params: Any) -> None:
    engine = storage.db.engine
    assert engine is not None
    with engine.begin() as conn:
        conn.execute(sa.text(sql.format(versions=f'"{storage.table_name}_versions"')), params)


def _history(storage: WorkflowStorage, session_id: str, versions: int) -> None:
    state: dict[str, Any] = {"items": []}
    for version in range(1, versions + 1):
        state = {"items": [*state["items"], f"item {version} " + "x" * 1500]}
        storage.save(session_id, state, expected_version=version - 1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"[1, 2]", "not an object"), (b'{"a": {"$wfnb": "pickle", "v": ""}}', "unknown"),
     (b'{"a": 1} trailing', "not valid wfnb JSON")],
    ids=["json-array", "unknown-tag", "trailing-garbage"],
)
def test_a_stored_document_that_is_not_wfnb_json_is_corrupt_state(
    seeded: WorkflowStorage, make_storage: StorageFactory, data: bytes, reason: str
) -> None:
    seeded.save("bad", {"a": 1}, expected_version=0)
    _raw(seeded, "UPDATE {versions} SET data = :data, state_bytes = :n, tagged = :t "
         "WHERE session_id = 'bad'", data=data, n=len(data), t=True)
    fresh = make_storage()  # nothing cached
    with pytest.raises(CorruptStateError, match=reason) as raised:
        fresh.read("bad")
    assert "session 'bad'" in str(raised.value)
    with pytest.raises(CorruptStateError):
        Poison(session_id="bad", storage=fresh)
    assert_intact(fresh)


def test_a_damaged_delta_fails_its_versions_only_and_restore_recovers(
    seeded: WorkflowStorage, make_storage: StorageFactory
) -> None:
    _history(seeded, "h", 6)
    engine = seeded.db.engine
    assert engine is not None
    with engine.connect() as conn:
        bases: dict[int, int | None] = {row.version: row.base_version for row in conn.execute(
            sa.text(f'SELECT version, base_version FROM "{seeded.table_name}_versions" '
                    "WHERE session_id = 'h'"))}
    assert bases[4] == 3 and bases[6] == 5  # version 4 is a delta, and 5 and 6 build on it
    _raw(seeded, "UPDATE {versions} SET data = :data WHERE session_id = 'h' AND version = 4",
         data=b'[[0, 999999, 1]]\nx')
    fresh = make_storage()
    with pytest.raises(CorruptStateError, match="history of version 6 cannot be read"):
        fresh.read("h")
    older = fresh.read("h", 3)
    assert older is not None and len(older.session_state["items"]) == 3
    current = fresh.history("h")[0].version
    result = fresh.restore("h", 3, expected_version=current)  # the way out: a new full version
    stored = fresh.read("h")
    assert stored is not None and stored.version == result.version == 7
    assert stored.session_state == older.session_state
    assert_intact(fresh)


def test_a_truncated_full_row_is_corrupt_state(
    seeded: WorkflowStorage, make_storage: StorageFactory
) -> None:
    seeded.save("cut", {"text": "x" * 100}, expected_version=0)
    _raw(seeded, "UPDATE {versions} SET data = :data WHERE session_id = 'cut'",
         data=b'{"text":"xx"}')
    with pytest.raises(CorruptStateError, match="bytes rebuilt"):
        make_storage().read("cut")
    assert_intact(make_storage())


# -- API arguments -------------------------------------------------------------------------------


def test_reading_version_0_is_not_the_current_version(seeded: WorkflowStorage) -> None:
    """Was: version=0 read as "no version given" and returned the current state."""
    with pytest.raises(SessionNotFoundError, match="no version 0"):
        seeded.read("s", 0)
    with pytest.raises(SessionNotFoundError, match="no version -1"):
        seeded.read("s", -1)
    assert_intact(seeded)


def test_a_restore_against_a_stale_version_refuses_even_when_keys_are_disjoint(
    storage: WorkflowStorage,
) -> None:
    """Was: merged the other writer's key in, storing a state that is not the version restored."""
    storage.save("r", {"a": 0, "b": 0}, expected_version=0)
    storage.save("r", {"a": 1, "b": 0}, expected_version=1)
    storage.save("r", {"a": 1, "b": 5}, expected_version=2)  # another writer, after we looked
    with pytest.raises(SessionConflictError) as raised:
        storage.restore("r", 1, expected_version=2)
    assert raised.value.stored_version == 3
    stored = storage.read("r")
    assert stored is not None and (stored.version, stored.session_state) == (3, {"a": 1, "b": 5})
    assert storage.restore("r", 1).version == 4  # against the current version it is exact
    assert storage.read("r").session_state == {"a": 0, "b": 0}  # type: ignore[union-attr]


def test_saving_against_a_version_from_the_future_conflicts(seeded: WorkflowStorage) -> None:
    with pytest.raises(SessionConflictError, match="loaded version 99"):
        seeded.save("s", {"count": 5}, expected_version=99)
    assert_intact(seeded)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"keep_versions": 0}, "keep_versions must be at least 1"),
     ({"synchronous": "OFF; DROP TABLE t"}, "synchronous must be one of")],
    ids=["keep_versions-0", "synchronous-injection"],
)
def test_bad_storage_options_are_value_errors(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    storage = SqliteWorkflowStorage("t", tmp_path / "wf.db")
    storage.save("s", good(), expected_version=0)
    with pytest.raises(ValueError, match=message):
        SqliteWorkflowStorage("t", tmp_path / "wf.db", **options)
    with pytest.raises(ValueError, match="keep must be at least 1"):
        storage.prune(keep=0)
    assert_intact(storage)


# -- runs ----------------------------------------------------------------------------------------


class Raises(Workflow):
    """Raises at the start (before any yield), in the middle, or at the end (after the last)."""

    def run(self, where: str) -> Iterator[RunResponse]:
        self.session_state["count"] += 1
        if where == "start":
            raise ValueError("at start")
        yield RunResponse(content="one")
        self.session_state["posts"].append({"topic": "soup"})
        yield RunResponse(content="two")
        if where == "end":
            raise ValueError("at end")


class RaisesPlain(Workflow):
    def run(self) -> str:
        self.session_state["count"] += 1
        raise ValueError("plain")


@pytest.mark.parametrize("where", ["start", "end"])
def test_a_run_raising_at_its_start_or_end_writes_nothing(
    seeded: WorkflowStorage, where: str
) -> None:
    wf = Raises(session_id="s", storage=seeded)
    with pytest.raises(ValueError, match=f"at {where}"):
        for _ in wf.run(where):
            pass
    assert_intact(seeded)
    assert seeded.runs("s")[0].status == "failed"
    for _ in wf.run("nowhere"):  # the next run starts from the stored state
        pass
    assert seeded.read("s").session_state["count"] == 2  # type: ignore[union-attr]


def test_a_plain_function_run_raising_writes_nothing(seeded: WorkflowStorage) -> None:
    wf = RaisesPlain(session_id="s", storage=seeded)
    with pytest.raises(ValueError, match="plain"):
        wf.run()
    assert_intact(seeded)
    assert seeded.runs("s")[0].error == "ValueError: plain"


class Yields(Workflow):
    item: Any = None

    def run(self) -> Iterator[Any]:
        self.session_state["count"] += 1
        yield self.item


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@pytest.mark.parametrize(
    ("item", "content_type", "output"),
    [(None, "str", ""), ({"a": 1}, "dict", "{'a': 1}"), (Plain(), "Plain", "<"),
     (1.5, "float", "1.5"), ([1], "list", "[1]")],
    ids=["None", "dict", "object", "float", "list"],
)
def test_a_run_yielding_other_types_wraps_them_in_responses(
    seeded: WorkflowStorage, item: Any, content_type: str, output: str
) -> None:
    """Documented: any yielded value becomes a RunResponse's content; the output recorded is
    its str()."""
    wf = Yields(session_id="s", storage=seeded, item=item)
    (response,) = list(wf.run())
    assert response.content is item and response.content_type == content_type
    assert response.run_id == wf.run_id and response.session_id == "s"
    assert (seeded.runs("s")[0].output or "").startswith(output)
    assert seeded.read("s").session_state["count"] == 2  # type: ignore[union-attr]


def test_a_yielded_object_whose_str_raises_fails_the_run(seeded: WorkflowStorage) -> None:
    wf = Yields(session_id="s", storage=seeded, item=Unprintable())
    with pytest.raises(RuntimeError, match="no text for you"):
        list(wf.run())
    assert_intact(seeded)
    assert seeded.runs("s")[0].status == "failed"


def test_a_generator_dropped_without_close_is_an_interrupted_run(seeded: WorkflowStorage) -> None:
    wf = Raises(session_id="s", storage=seeded)
    stream = wf.run("nowhere")
    next(stream)
    del stream
    gc.collect()  # the generator's finalizer closes it
    assert_intact(seeded)
    assert seeded.runs("s")[0].status == "interrupted"
    for _ in wf.run("nowhere"):  # the instance is free again
        pass
    assert seeded.read("s").version == 2  # type: ignore[union-attr]


def test_an_explicit_save_survives_a_generator_closed_early(seeded: WorkflowStorage) -> None:
    class SavesFirst(Workflow):
        def run(self) -> Generator[RunResponse, None, None]:
            self.session_state["count"] = 10
            self.write_to_storage()
            yield RunResponse(content="saved")
            self.session_state["count"] = 99
            yield RunResponse(content="never seen")

    wf = SavesFirst(session_id="s", storage=seeded)
    stream = wf.run()
    next(stream)
    stream.close()
    stored = seeded.read("s")
    assert stored is not None and stored.session_state["count"] == 10 and stored.version == 2
    assert seeded.read("s", 1).session_state == GOOD  # type: ignore[union-attr]


def test_keyboard_interrupt_inside_a_save_transaction_leaves_no_partial_rows(
    seeded: WorkflowStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the session row's UPDATE and the version row's INSERT: rolled back."""
    def interrupted(*_args: Any, **_kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Transaction, "insert_version", interrupted)
    wf = Poison(session_id="s", storage=seeded, value="fine")
    with pytest.raises(KeyboardInterrupt):
        for _ in wf.run():
            pass
    monkeypatch.undo()
    assert_intact(seeded)
    (run,) = seeded.runs("s")  # was recorded "completed", its final state never saved
    assert run.status == "interrupted" and "KeyboardInterrupt" in (run.error or "")
    assert wf.write_to_storage() == 2  # the state stayed in memory; the next save works
    assert seeded.read("s").session_state["count"] == 2  # type: ignore[union-attr]


def test_two_threads_running_one_instance_at_once(seeded: WorkflowStorage) -> None:
    started, release = threading.Event(), threading.Event()

    class Slow(Workflow):
        def run(self) -> Iterator[RunResponse]:
            self.session_state["count"] += 1
            started.set()
            release.wait(10)
            yield RunResponse(content="done")

    wf = Slow(session_id="s", storage=seeded)
    first = threading.Thread(target=lambda: list(wf.run()))
    first.start()
    assert started.wait(10)
    with pytest.raises(WorkflowBusyError, match="one instance runs one run at a time"):
        list(wf.run())
    release.set()
    first.join(10)
    stored = seeded.read("s")
    assert stored is not None and (stored.version, stored.session_state["count"]) == (2, 2)


@pytest.mark.parametrize(
    "make", [_cycle_list, lambda: 2**70, lambda: "\udcff", lambda: {"when": object()}],
    ids=["cycle", "int-2**70", "lone-surrogate", "object"],
)
def test_a_run_argument_json_cannot_hold_is_recorded_by_repr(
    seeded: WorkflowStorage, make: Callable[[], Any]
) -> None:
    """Was: a raw TypeError from orjson before the run began (cycle, big int, surrogate)."""

    class Takes(Workflow):
        def run(self, anything: Any) -> Iterator[RunResponse]:
            self.session_state["count"] += 1
            yield RunResponse(content="ok")

    value = make()
    wf = Takes(session_id="s", storage=seeded)
    assert [r.content for r in wf.run(value)] == ["ok"]
    (run,) = seeded.runs("s")
    assert run.status == "completed" and run.input is not None
    assert seeded.read("s").session_state["count"] == 2  # type: ignore[union-attr]
