"""Durable steps: served from their records, resumed after failures, keyed, refreshed, stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import linecache
import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory
from wfnb import (
    RunResponse,
    UnkeyableArgumentError,
    UnstorableStateError,
    Workflow,
    WorkflowStorage,
    step,
)
from wfnb.storage import _schema

CALLS: list[str] = []  # every step body that ran, in order


@pytest.fixture(autouse=True)
def no_calls() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()


class Pipeline(Workflow):
    """Four steps; ``fail_at`` makes that step raise (once per listed name)."""

    fail_at: Any = None

    @step
    def fetch(self, topic: str) -> list[dict[str, Any]]:
        CALLS.append("fetch")
        return [{"title": f"{topic} {n}", "at": dt.date(2026, 1, n + 1)} for n in range(2)]

    @step
    def rank(self, docs: list[dict[str, Any]]) -> tuple[str, ...]:
        CALLS.append("rank")
        return tuple(sorted(doc["title"] for doc in docs))

    @step
    def summarize(self, titles: tuple[str, ...]) -> Generator[str, None, int]:
        CALLS.append("summarize")
        if self.fail_at == "summarize":
            self.fail_at = None
            raise RuntimeError("model overloaded")
        for title in titles:
            yield f"- {title}\n"
        return len(titles)

    @step(name="publish")
    def publish(self, count: int) -> dict[str, Any]:
        CALLS.append("publish")
        return {"count": count, "id": uuid.UUID(int=count)}

    def run(self, topic: str) -> Iterator[Any]:
        docs = self.fetch(topic)
        titles = self.rank(docs)
        count = yield from self.summarize(titles)
        post = self.publish(count)
        self.session_state["post"] = post
        yield RunResponse(content=f"published {post['count']}")


def text(responses: list[RunResponse]) -> str:
    return "".join(r.get_content_as_string() for r in responses)


def test_a_second_run_is_served_every_step_without_running_a_body(
    storage: WorkflowStorage,
) -> None:
    first = text(list(Pipeline(session_id="s", storage=storage).run("pasta")))
    assert CALLS == ["fetch", "rank", "summarize", "publish"]
    CALLS.clear()
    second = text(list(Pipeline(session_id="s", storage=storage).run("pasta")))
    assert CALLS == []
    assert second == first == "- pasta 0\n- pasta 1\npublished 2"


def test_fail_at_step_three_then_rerun_resumes_there(storage: WorkflowStorage) -> None:
    wf = Pipeline(session_id="s", storage=storage, fail_at="summarize")
    with pytest.raises(RuntimeError, match="overloaded"):
        list(wf.run("pasta"))
    assert CALLS == ["fetch", "rank", "summarize"]
    CALLS.clear()
    assert text(list(wf.run("pasta"))).endswith("published 2")
    assert CALLS == ["summarize", "publish"]  # 1-2 served, 3-4 executed
    CALLS.clear()
    restarted = Pipeline(session_id="s", storage=storage)  # as after a kernel restart
    assert text(list(restarted.run("pasta"))) == "- pasta 0\n- pasta 1\npublished 2"
    assert CALLS == []
    assert restarted.session_state["post"] == {"count": 2, "id": uuid.UUID(int=2)}


def test_records_say_what_each_call_did(storage: WorkflowStorage) -> None:
    wf = Pipeline(session_id="s", storage=storage, fail_at="summarize")
    with pytest.raises(RuntimeError):
        list(wf.run("pasta"))
    list(wf.run("pasta"))
    runs = [run.run_id for run in reversed(storage.runs("s"))]
    first, second = storage.steps("s", run_id=runs[0]), storage.steps("s", run_id=runs[1])
    assert [(r.name, r.status, r.cached) for r in first] == [
        ("Pipeline.fetch", "completed", False), ("Pipeline.rank", "completed", False),
        ("Pipeline.summarize", "failed", False),
    ]
    assert first[2].error == "RuntimeError: model overloaded" and first[2].output is None
    assert [(r.name, r.status, r.cached) for r in second] == [
        ("Pipeline.fetch", "completed", True), ("Pipeline.rank", "completed", True),
        ("Pipeline.summarize", "completed", False), ("publish", "completed", False),
    ]
    assert second[0].served_from == first[0].step_id
    assert second[0].output == first[0].output == [
        {"title": "pasta 0", "at": dt.date(2026, 1, 1)},
        {"title": "pasta 1", "at": dt.date(2026, 1, 2)},
    ]
    assert second[1].output == ("pasta 0", "pasta 1")  # a tuple comes back a tuple
    assert second[2].output == {"chunks": ["- pasta 0\n", "- pasta 1\n"], "returned": 2}
    assert all(r.session_id == "s" and r.workflow_name == "Pipeline" for r in first + second)
    for record in first + second:
        assert record.ended_at is not None and record.started_at <= record.ended_at
        assert record.seconds is not None and record.seconds >= 0
    assert len(storage.steps("s")) == 7


def test_outputs_round_trip_exactly(storage: WorkflowStorage) -> None:
    value = {
        "tuple": (1, "a"), "set": {3, 1}, "bytes": b"\x00\xff", "decimal": Decimal("1.10"),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "big": 2**63,
        "text": "é\u2028\x00", "nested": [[], {}, None, 0.1],
    }

    class Exact(Workflow):
        @step
        def make(self) -> dict[str, Any]:
            CALLS.append("make")
            return value

        def run(self) -> Any:
            self.session_state["out"] = self.make()
            return "ok"

    Exact(session_id="s", storage=storage).run()
    again = Exact(session_id="s", storage=storage)
    again.run()
    assert CALLS == ["make"]
    assert again.session_state["out"] == value
    assert {k: type(v) for k, v in again.session_state["out"].items()} == {
        k: type(v) for k, v in value.items()
    }


def test_outside_a_run_a_step_is_a_plain_call(storage: WorkflowStorage) -> None:
    wf = Pipeline(session_id="s", storage=storage)
    assert wf.rank([{"title": "b"}, {"title": "a"}]) == ("a", "b")
    assert list(wf.summarize(("x",))) == ["- x\n"]
    assert CALLS == ["rank", "summarize"]
    assert storage.steps("s") == []


def test_without_storage_a_step_is_a_plain_call() -> None:
    wf = Pipeline(session_id="s")
    list(wf.run("a"))
    list(wf.run("a"))
    assert CALLS == ["fetch", "rank", "summarize", "publish"] * 2


class Keyed(Workflow):
    @step
    def add(self, a: int, b: int = 1, *, options: dict[str, Any] | None = None) -> int:
        CALLS.append(f"add {a} {b}")
        return a + b

    def run(self, calls: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> Any:
        return [self.add(*args, **kwargs) for args, kwargs in calls]


def test_keys_are_the_arguments_canonically(storage: WorkflowStorage) -> None:
    wf = Keyed(session_id="s", storage=storage)
    wf.run([((1,), {}), ((1, 1), {}), ((), {"a": 1, "b": 1})])  # defaults and keywords: one key
    assert CALLS == ["add 1 1"]
    wf.run([((1,), {"options": {"x": 1, "y": 2}}), ((1,), {"options": {"y": 2, "x": 1}})])
    assert CALLS == ["add 1 1", "add 1 1"]  # dict order does not matter; options do
    wf.run([((2,), {}), ((1, 2), {}), ((1,), {"options": {"x": (1,)}}),
            ((1,), {"options": {"x": [1]}})])
    assert CALLS == ["add 1 1"] * 2 + ["add 2 1", "add 1 2", "add 1 1", "add 1 1"]  # tagged


def test_self_is_not_part_of_the_key(storage: WorkflowStorage) -> None:
    Keyed(session_id="s", storage=storage, name="a").run([((1,), {})])
    Keyed(session_id="s", storage=storage, name="b").run([((1,), {})])
    assert CALLS == ["add 1 1"]


def make_step_class(source: str, storage: WorkflowStorage, filename: str) -> Workflow:
    """A workflow class defined by ``source`` in a notebook-like cell (source in linecache)."""
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    namespace: dict[str, Any] = {"step": step, "Workflow": Workflow, "CALLS": CALLS}
    exec(compile(source, filename, "exec"), namespace)
    workflow: Workflow = namespace["Cell"](session_id="s", storage=storage)
    return workflow


CELL = '''
class Cell(Workflow):
    @step{decorator}
    def answer(self, question):
        CALLS.append("{label}")
        return {value}

    def run(self, question):
        return self.answer(question)
'''


def test_editing_the_source_executes_again_and_version_overrides_it(
    storage: WorkflowStorage,
) -> None:
    def cell(number: int, label: str, value: str, decorator: str = "") -> Workflow:
        source = CELL.format(decorator=decorator, label=label, value=value)
        return make_step_class(source, storage, f"<ipython-input-{number}-cell>")

    assert cell(1, "v1", "1").run("q").content == 1
    assert cell(2, "v1", "1").run("q").content == 1  # the same source, another cell: served
    assert cell(3, "v2", "2").run("q").content == 2  # edited: executes
    assert CALLS == ["v1", "v2"]
    assert cell(4, "v3", "3", '(version="7")').run("q").content == 3
    assert cell(5, "v4", "4", '(version="7")').run("q").content == 3  # same version: served
    assert CALLS == ["v1", "v2", "v3"]


def test_a_function_without_readable_source_is_keyed_by_its_code(
    storage: WorkflowStorage,
) -> None:
    def cell(label: str, value: str) -> Workflow:
        source = CELL.format(decorator="", label=label, value=value)
        namespace: dict[str, Any] = {"step": step, "Workflow": Workflow, "CALLS": CALLS}
        exec(compile(source, "<no source>", "exec"), namespace)  # not in linecache
        workflow: Workflow = namespace["Cell"](session_id="s", storage=storage)
        return workflow

    assert [cell("a", "1").run("q").content, cell("a", "1").run("q").content,
            cell("b", "2").run("q").content] == [1, 1, 2]
    assert CALLS == ["a", "b"]


def test_ttl_bounds_how_old_a_served_record_may_be(
    storage: WorkflowStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Fresh(Workflow):
        @step(ttl=60)
        def quote(self) -> str:
            CALLS.append("quote")
            return f"quote {len(CALLS)}"

        def run(self) -> Any:
            return self.quote()

    wf = Fresh(session_id="s", storage=storage)
    assert [wf.run().content, wf.run().content] == ["quote 1", "quote 1"]
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert wf.run().content == "quote 2"
    with pytest.raises(ValueError, match="ttl must be positive"):
        step(ttl=0)(lambda: None)
    assert step(ttl=dt.timedelta(minutes=1))(lambda: 1)() == 1


def test_workflow_scope_serves_other_sessions_of_the_workflow(storage: WorkflowStorage) -> None:
    class Shared(Workflow):
        @step(scope="workflow")
        def embed(self, text: str) -> list[float]:
            CALLS.append("embed")
            return [float(len(text))]

        @step
        def mine(self, text: str) -> str:
            CALLS.append("mine")
            return text

        def run(self, text: str) -> Any:
            return [self.embed(text), self.mine(text)]

    Shared(session_id="a", storage=storage).run("hi")
    Shared(session_id="b", storage=storage).run("hi")
    Shared(session_id="c", storage=storage, name="Other").run("hi")
    assert CALLS == ["embed", "mine", "mine", "embed", "mine"]
    with pytest.raises(ValueError, match="scope must be one of session, workflow"):
        step(scope="global")(lambda: None)


def test_an_unstorable_output_fails_the_step_naming_it_and_the_path(
    storage: WorkflowStorage,
) -> None:
    class Bad(Workflow):
        @step
        def load(self) -> Any:
            return {"rows": [1, object()]}

        def run(self) -> Any:
            return self.load()

    with pytest.raises(UnstorableStateError) as caught:
        Bad(session_id="s", storage=storage).run()
    assert caught.value.path == """step 'Bad.load' output["rows"][1]"""
    [record] = storage.steps("s")
    assert record.status == "failed" and "object cannot be stored" in (record.error or "")


def test_an_unkeyable_argument_is_named_unless_key_is_given(storage: WorkflowStorage) -> None:
    class Client:
        model = "m1"

    class Ask(Workflow):
        @step
        def query(self, client: Client, prompt: str) -> str:
            CALLS.append(prompt)
            return prompt.upper()

        @step(key=lambda client, prompt: [client.model, prompt])
        def ask_keyed(self, client: Client, prompt: str) -> str:
            CALLS.append(prompt)
            return prompt.upper()

        def run(self, keyed: bool) -> Any:
            return (self.ask_keyed if keyed else self.query)(Client(), "hi")

    with pytest.raises(UnkeyableArgumentError, match="argument client cannot key") as caught:
        Ask(session_id="s", storage=storage).run(False)
    assert caught.value.step == "Ask.query" and caught.value.argument == "client"
    assert isinstance(caught.value, TypeError) and CALLS == []
    wf = Ask(session_id="s", storage=storage)
    assert [wf.run(True).content, wf.run(True).content] == ["HI", "HI"]
    assert CALLS == ["hi"]


def test_an_unkeyable_nested_argument_names_its_path(storage: WorkflowStorage) -> None:
    @step
    def count(items: list[Any]) -> int:
        return len(items)

    class Uses(Workflow):
        def run(self) -> Any:
            return count([1, {"x": object()}])

    with pytest.raises(UnkeyableArgumentError) as caught:
        Uses(session_id="s", storage=storage).run()
    assert caught.value.argument == 'items[1]["x"]'


def test_refresh_makes_the_next_run_execute_those_steps(storage: WorkflowStorage) -> None:
    wf = Pipeline(session_id="s", storage=storage)
    list(wf.run("pasta"))
    CALLS.clear()
    wf.refresh("summarize")
    list(wf.run("pasta"))
    assert CALLS == ["summarize"]
    CALLS.clear()
    list(wf.run("pasta"))
    assert CALLS == []  # refreshed once: the new record is served afterwards
    wf.refresh("Pipeline.rank", "publish")
    list(wf.run("pasta"))
    assert CALLS == ["rank", "publish"]
    CALLS.clear()
    wf.refresh()
    list(wf.run("pasta"))
    assert CALLS == ["fetch", "rank", "summarize", "publish"]


def test_a_refreshed_step_that_failed_is_still_refreshed_next_time(
    storage: WorkflowStorage,
) -> None:
    wf = Pipeline(session_id="s", storage=storage)
    list(wf.run("pasta"))
    wf.refresh("summarize")
    wf.fail_at = "summarize"
    with pytest.raises(RuntimeError):
        list(wf.run("pasta"))
    CALLS.clear()
    list(wf.run("pasta"))
    assert CALLS == ["summarize"]


def test_clear_steps_forgets_records(storage: WorkflowStorage) -> None:
    list(Pipeline(session_id="s", storage=storage).run("pasta"))
    assert storage.clear_steps("s", name="rank") == 1
    assert storage.clear_steps("s", name="nothing") == 0
    CALLS.clear()
    list(Pipeline(session_id="s", storage=storage).run("pasta"))
    assert CALLS == ["rank"]
    assert storage.clear_steps("s") == 7  # 3 left of the first run, 4 of the second
    assert storage.steps("s") == []


def test_steps_work_in_async_runs(storage: WorkflowStorage) -> None:
    class Async(Workflow):
        @step
        async def fetch(self, n: int) -> list[int]:
            CALLS.append("fetch")
            await asyncio.sleep(0)
            return list(range(n))

        @step
        async def stream(self, items: list[int]) -> AsyncIterator[str]:
            CALLS.append("stream")
            for item in items:
                await asyncio.sleep(0)
                yield f"<{item}>"

        async def run(self, n: int) -> AsyncIterator[Any]:
            items = await self.fetch(n)
            async for chunk in self.stream(items):
                yield chunk

    async def collect(wf: Workflow) -> str:
        return "".join([r.content async for r in wf.arun(3)])

    assert asyncio.run(collect(Async(session_id="s", storage=storage))) == "<0><1><2>"
    assert asyncio.run(collect(Async(session_id="s", storage=storage))) == "<0><1><2>"
    assert CALLS == ["fetch", "stream"]
    assert [r.cached for r in storage.steps("s")] == [False, False, True, True]


def test_plain_function_steps_record_into_the_current_run(storage: WorkflowStorage) -> None:
    @step
    def double(x: int) -> int:
        CALLS.append("double")
        return 2 * x

    class Calls(Workflow):
        def run(self) -> Any:
            return double(2) + double(2)

    assert Calls(session_id="s", storage=storage).run().content == 8
    assert double(5) == 10  # outside a run
    assert CALLS == ["double", "double"]
    assert [(r.name, r.cached) for r in storage.steps("s")] == [("double", False),
                                                               ("double", True)]


def test_a_generator_step_stopped_early_is_recorded_failed_and_runs_again(
    storage: WorkflowStorage,
) -> None:
    wf = Pipeline(session_id="s", storage=storage)
    stream = wf.run("pasta")
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    summarize = [r for r in storage.steps("s") if r.name == "Pipeline.summarize"]
    assert [r.status for r in summarize] == ["failed"]
    assert "closed before it finished" in (summarize[0].error or "")
    CALLS.clear()
    list(wf.run("pasta"))
    assert CALLS == ["summarize", "publish"]


def test_a_killed_step_left_running_is_not_served(storage: WorkflowStorage) -> None:
    log = storage.step_log
    from wfnb.storage._steps import StepCall

    log.begin(StepCall("dead", "s", "Keyed", "r0", "k", "Keyed.add"))
    Keyed(session_id="s", storage=storage).run([((1,), {})])
    assert CALLS == ["add 1 1"]
    assert [r.status for r in storage.steps("s")] == ["running", "completed"]


def _concurrent_worker(url: str, table: str, barrier: Any, out: Any) -> None:
    storage = WorkflowStorage(table, url)

    class Slow(Workflow):
        @step
        def call(self) -> str:
            barrier.wait(30)  # both bodies are running at once
            return f"{multiprocessing.current_process().name}"

        def run(self) -> Any:
            return self.call()

    out.put(Slow(session_id="s", storage=storage).run().content)
    storage.close()


def test_two_processes_may_both_execute_and_the_later_record_wins(
    make_storage: StorageFactory,
) -> None:
    storage = make_storage()
    url, table = storage.db_url, storage.table_name
    fork = multiprocessing.get_context("fork")
    barrier, out = fork.Barrier(2), fork.Queue()
    workers = [fork.Process(target=_concurrent_worker, args=(url, table, barrier, out),
                            name=f"worker-{n}") for n in range(2)]
    for worker in workers:
        worker.start()
    results = sorted(out.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert results == ["worker-0", "worker-1"]  # both executed
    records = storage.steps("s")
    assert [(r.status, r.cached) for r in records] == [("completed", False)] * 2
    later = max(records, key=lambda r: r.ended_at or r.started_at)
    served = storage.step_log.find(records[0].key, session_id="s", workflow_name=None)
    assert served is not None and served.step_id == later.step_id
    assert served.document == {"output": later.output}


def test_delete_drops_the_sessions_steps(storage: WorkflowStorage) -> None:
    list(Pipeline(session_id="s", storage=storage).run("pasta"))
    list(Pipeline(session_id="t", storage=storage).run("pasta"))
    assert storage.delete("s")
    assert storage.steps("s") == [] and len(storage.steps("t")) == 4


def test_prune_drops_old_step_records_but_keeps_what_is_served(
    make_storage: StorageFactory,
) -> None:
    storage = make_storage(keep_versions=None)

    class Bump(Workflow):
        @step
        def fixed(self) -> str:
            CALLS.append("fixed")
            return "same"

        @step
        def varying(self, n: int) -> int:
            return n

        def run(self) -> Any:
            self.session_state["n"] = self.session_state.get("n", 0) + 1
            return [self.fixed(), self.varying(self.session_state["n"] % 2)]

    wf = Bump(session_id="s", storage=storage)
    for _ in range(6):
        wf.run()
    assert len(storage.steps("s")) == 12
    storage.prune(keep=2, session_id="s")
    kept = storage.steps("s")
    newest_run = storage.runs("s")[1].started_at  # the older of the two runs kept
    for record in kept:
        cache = record.status == "completed" and not record.cached
        assert cache or record.started_at >= newest_run
    assert sum(r.name == "Bump.fixed" and not r.cached for r in kept) == 1
    CALLS.clear()
    wf.run()
    assert CALLS == []  # what later runs are served survived the prune


def test_keep_versions_prunes_step_records_too(make_storage: StorageFactory) -> None:
    storage = make_storage(keep_versions=1)

    class Bump(Workflow):
        @step
        def same(self) -> int:
            return 1

        def run(self) -> Any:
            self.session_state["n"] = self.session_state.get("n", 0) + self.same()

    wf = Bump(session_id="s", storage=storage)
    for _ in range(40):
        wf.run()
    assert len(storage.steps("s")) < 20  # served records of pruned history went with it
    assert [r.cached for r in storage.steps("s")].count(False) == 1


def test_export_and_import_carry_steps(make_storage: StorageFactory, tmp_path: Path) -> None:
    source = make_storage()
    wf = Pipeline(session_id="s", storage=source, fail_at="summarize")
    with pytest.raises(RuntimeError):
        list(wf.run("pasta"))
    list(wf.run("pasta"))
    path = tmp_path / "out.jsonl"
    assert source.export_sessions(str(path)) == 1
    target = make_storage(table_name=f"{source.table_name}_copy")
    try:
        target.import_sessions(str(path))
        assert target.steps("s") == source.steps("s")
        CALLS.clear()
        list(Pipeline(session_id="s", storage=target).run("pasta"))
        assert CALLS == []
    finally:
        if source.db_url.startswith("postgresql"):
            from tests.conftest import drop_tables

            target.close()
            drop_tables(source.db_url, target.table_name)


def test_to_dataframe_lists_steps(storage: WorkflowStorage) -> None:
    pytest.importorskip("pandas")
    list(Pipeline(session_id="s", storage=storage).run("pasta"))
    list(Pipeline(session_id="s", storage=storage).run("pasta"))
    frame = storage.to_dataframe(steps=True)
    assert list(frame["name"]) == ["Pipeline.fetch", "Pipeline.rank", "Pipeline.summarize",
                                   "publish"] * 2
    assert list(frame["cached"]) == [False] * 4 + [True] * 4
    assert {"session_id", "run_id", "status", "started_at", "ended_at", "seconds", "error",
            "output"} <= set(frame.columns)
    assert frame["output"].iloc[4] == frame["output"].iloc[0]


def test_an_older_database_gets_the_steps_table_on_open(make_storage: StorageFactory) -> None:
    old = make_storage()
    old.save("s", {"a": 1}, expected_version=0)
    engine = old.db.engine
    assert engine is not None
    steps_version = next(v for v, step in _schema.MIGRATIONS if step is _schema._add_steps_v3)
    with engine.begin() as conn:  # back to the schema written by the wfnb before steps
        conn.execute(sa.text(f'DROP TABLE "{old.table_name}_steps"'))
        conn.execute(sa.text(
            f"UPDATE \"{old.table_name}_meta\" SET value = '{steps_version - 1}' "
            "WHERE key = 'schema_version'"
        ))
    upgraded = make_storage()
    assert upgraded.schema_version == _schema.MIGRATIONS[-1][0]
    assert sa.inspect(engine).has_table(f"{old.table_name}_steps")
    Keyed(session_id="s", storage=upgraded).run([((1,), {})])
    Keyed(session_id="s", storage=upgraded).run([((1,), {})])
    assert CALLS == ["add 1 1"]
    stored = upgraded.read("s")
    assert stored is not None and stored.session_state == {"a": 1}


# -- the command line --------------------------------------------------------------------------


def test_cli_lists_and_clears_steps(storage: WorkflowStorage, tmp_path: Path) -> None:
    from tests.test_cli import fails, run_wfnb

    wf = Pipeline(session_id="s", storage=storage, fail_at="summarize")
    with pytest.raises(RuntimeError):
        list(wf.run("pasta"))
    list(wf.run("pasta"))
    if storage.db_url.startswith("sqlite"):
        where = ["--db", storage.db_url.removeprefix("sqlite:///")]
    else:
        where = ["--url", storage.db_url]
    where += ["--table", storage.table_name]

    def wfnb(*args: str) -> Any:
        return run_wfnb(*where, *args, cwd=tmp_path)

    listed = wfnb("steps", "s").stdout.splitlines()
    assert listed[0].split() == ["STEP", "STATUS", "SERVED", "RUN", "STARTED", "DURATION",
                                 "ERROR"]
    assert "Pipeline.summarize  failed" in listed[3] and "RuntimeError: model" in listed[3]
    assert "from record" in listed[4] and len(listed) == 1 + 7
    second_run = storage.runs("s")[0].run_id
    records = orjson.loads(wfnb("steps", "s", "--run", second_run, "--json").stdout)
    assert [(r["name"], r["cached"]) for r in records] == [
        ("Pipeline.fetch", True), ("Pipeline.rank", True), ("Pipeline.summarize", False),
        ("publish", False),
    ]
    assert records[1]["output"] == {"$wfnb": "tuple", "v": ["pasta 0", "pasta 1"]}
    cleared = wfnb("steps", "clear", "s", "--name", "summarize")
    assert cleared.stdout == ("session 's': forgot 2 step records named 'summarize'; their next "
                              "calls execute\n")
    assert len(storage.steps("s")) == 5
    assert wfnb("steps", "clear", "s").stdout.startswith("session 's': forgot 5 step records;")
    fails(wfnb("steps", "nobody"), 1, "'nobody'")
    fails(wfnb("steps", "s", "--name", "x"), 2, "--name goes with")
    fails(wfnb("steps", "one", "two"), 2, "steps takes one SESSION")


def test_steps_called_from_threads_and_gathered_tasks_all_record(
    storage: WorkflowStorage,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    class Fan(Workflow):
        @step
        def square(self, n: int) -> int:
            CALLS.append(f"square {n}")
            return n * n

        @step
        async def cube(self, n: int) -> int:
            await asyncio.sleep(0)
            CALLS.append(f"cube {n}")
            return n**3

        def run(self) -> Any:
            with ThreadPoolExecutor(8) as pool:
                squares = list(pool.map(self.square, [n % 10 for n in range(40)]))

            async def cubes() -> list[int]:
                return list(await asyncio.gather(*(self.cube(n) for n in range(10))))

            return [squares, asyncio.run(cubes())]

    first = Fan(session_id="s", storage=storage).run().content
    assert first == [[(n % 10) ** 2 for n in range(40)], [n**3 for n in range(10)]]
    assert sorted(set(CALLS)) == sorted({f"square {n}" for n in range(10)}
                                        | {f"cube {n}" for n in range(10)})
    CALLS.clear()
    assert Fan(session_id="s", storage=storage).run().content == first
    assert CALLS == []
    records = storage.steps("s")
    assert len({r.step_id for r in records}) == len(records) == 100
    second = storage.steps("s", run_id=storage.runs("s")[0].run_id)
    assert len(second) == 50 and all(r.cached for r in second)
    # in the first run, threads calling the same key at once may both have executed it
    assert sum(not r.cached for r in records) >= 20


def test_import_checks_step_records_and_takes_files_without_them(
    make_storage: StorageFactory, tmp_path: Path
) -> None:
    from wfnb import ImportFormatError

    source = make_storage()
    list(Pipeline(session_id="s", storage=source).run("pasta"))
    path = tmp_path / "out.jsonl"
    source.export_sessions(str(path))
    record = orjson.loads(path.read_bytes())
    assert [step["name"] for step in record["steps"]][:2] == ["Pipeline.fetch", "Pipeline.rank"]
    assert "session_id" not in record["steps"][0] and "tagged" not in record["steps"][0]
    for broken, message in (
        ({"status": "done"}, r"steps\[0\]\.status should be one of running, completed, failed"),
        ({"output": "{not json"}, r"steps\[0\]\.output is not a stored wfnb state"),
        ({"started_at": "yesterday"}, r"steps\[0\]\.started_at should be seconds"),
    ):
        bad = dict(record, steps=[dict(record["steps"][0], **broken)])
        (tmp_path / "bad.jsonl").write_bytes(orjson.dumps(bad))
        with pytest.raises(ImportFormatError, match=message):
            source.import_sessions(str(tmp_path / "bad.jsonl"), on_conflict="skip")
    old = {key: value for key, value in record.items() if key != "steps"}  # before steps existed
    (tmp_path / "old.jsonl").write_bytes(orjson.dumps(dict(old, session_id="old", runs=[])))
    assert source.import_sessions(str(tmp_path / "old.jsonl")).imported == ["old"]
    assert source.steps("old") == []


def test_static_and_class_methods_key_every_argument_they_take(
    storage: WorkflowStorage,
) -> None:
    class Helpers(Workflow):
        @staticmethod
        @step
        def shout(text: str) -> str:
            CALLS.append(f"shout {text}")
            return text.upper()

        @classmethod
        @step
        def named(cls, text: str) -> str:
            CALLS.append(f"named {text}")
            return f"{cls.__name__}:{text}"

        def run(self) -> Any:
            return [self.shout("a"), self.shout("b"), self.named("a"), self.named("b")]

    assert Helpers(session_id="s", storage=storage).run().content == [
        "A", "B", "Helpers:a", "Helpers:b"]
    assert Helpers(session_id="s", storage=storage).run().content == [
        "A", "B", "Helpers:a", "Helpers:b"]
    assert CALLS == ["shout a", "shout b", "named a", "named b"]


def test_a_generator_step_replays_run_responses_as_run_responses(
    storage: WorkflowStorage,
) -> None:
    from wfnb import RunEvent

    class Responses(Workflow):
        @step
        def talk(self) -> Iterator[Any]:
            CALLS.append("talk")
            yield RunResponse(content="hello ")
            yield {"content": "a dict chunk", "event": "not a response"}
            yield RunResponse(content=(1, 2), event=RunEvent.run_response)

        def run(self) -> Iterator[Any]:
            yield from self.talk()

    def contents() -> list[tuple[Any, str]]:
        responses = list(Responses(session_id="s", storage=storage).run())
        return [(r.content, r.content_type) for r in responses]

    first = contents()
    assert contents() == first == [  # (the run reads a dict with "content" as that text)
        ("hello ", "str"), ("a dict chunk", "str"), ((1, 2), "tuple"),
    ]
    assert CALLS == ["talk"]
