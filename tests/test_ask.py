"""Ask and resume: a run stops at an unanswered question (state and steps saved, recorded
``waiting``), an answer continues the same run (steps served, ``ask`` returns the answer), in
every construct a run can hold, on SQLite and PostgreSQL. No question is ever skipped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.conftest import StorageFactory
from tests.test_cli import Run, run_wfnb
from tests.test_steps import CALLS, no_calls  # noqa: F401 (CALLS cleared around each test)
from wfnb import (
    AnswerRefusedError,
    NestedQuestionError,
    RunEvent,
    RunNotWaitingError,
    Workflow,
    WorkflowStorage,
    step,
)


class Outline(Workflow):
    """The tutorial's shape: a step, a question with options, a free-text question."""

    @step
    def outline(self, topic: str) -> str:
        CALLS.append("outline")
        return f"outline of {topic}"

    @step
    def draft(self, outline: str, notes: str) -> str:
        CALLS.append("draft")
        return f"draft from {outline} ({notes})"

    def run(self, topic: str) -> Any:
        outline = self.outline(topic)
        self.session_state["outline"] = outline
        yield outline
        if self.ask("Approve this outline?", options=["yes", "no"]) == "no":
            yield " rejected"
            return
        notes = self.ask("Any notes for the writer?", default="none")
        self.session_state["post"] = self.draft(outline, notes)
        yield " " + self.session_state["post"]


def events(responses: Any) -> list[tuple[str, str]]:
    """(event, text) of each response a run streamed (its body is typed by what it yields)."""
    return [(r.event, r.get_content_as_string()) for r in responses]


def test_a_question_stops_the_run_and_an_answer_continues_it(storage: WorkflowStorage) -> None:
    wf = Outline(session_id="s", storage=storage)
    assert events(wf.run(topic="pasta")) == [
        ("RunResponse", "outline of pasta"), ("RunPaused", "Approve this outline?")]
    [run] = storage.runs("s")
    assert run.status == "waiting" and run.question is not None
    assert run.question.text == "Approve this outline?" and run.question.options == ["yes", "no"]
    stored = storage.read("s")  # the state reached before the question is saved
    assert stored is not None and stored.session_state == {"outline": "outline of pasta"}
    assert [(s.name, s.status) for s in storage.steps("s")] == [("Outline.outline", "completed")]

    responses = list(wf.resume("yes", by="ann"))
    assert events(iter(responses))[-1] == ("RunPaused", "Any notes for the writer?")
    assert responses[-1].question is not None and responses[-1].question.default == "none"
    responses = list(wf.resume("short"))
    assert events(iter(responses)) == [
        ("RunResponse", "outline of pasta"),
        ("RunResponse", " draft from outline of pasta (short)")]
    assert CALLS == ["outline", "draft"]  # the outline ran once: served on every resume
    [run] = storage.runs("s")  # one run, continued under its own id
    assert run.status == "completed" and run.question is None and run.run_id == wf.run_id
    assert [(a.question, a.answer) for a in run.answers] == [
        ("Approve this outline?", "yes"), ("Any notes for the writer?", "short")]
    assert run.answers[0].by == "ann" and "@" in run.answers[1].by
    assert run.answers[0].at <= run.answers[1].at
    assert {r.run_id for r in responses} == {run.run_id}
    stored = storage.read("s")
    assert stored is not None and stored.session_state["post"].startswith("draft from")


def test_the_answer_decides_the_path(storage: WorkflowStorage) -> None:
    wf = Outline(session_id="s", storage=storage)
    list(wf.run(topic="pasta"))
    assert events(wf.resume("no"))[-1] == ("RunResponse", " rejected")
    assert storage.runs("s")[0].status == "completed"


def test_resume_without_an_answer_takes_the_default_or_refuses(storage: WorkflowStorage) -> None:
    wf = Outline(session_id="s", storage=storage)
    list(wf.run(topic="pasta"))
    with pytest.raises(AnswerRefusedError, match="has no default: pass one"):
        wf.resume()
    list(wf.resume("yes"))
    assert events(wf.resume())[-1] == ("RunResponse", " draft from outline of pasta (none)")


def test_answers_that_cannot_be_taken_are_refused_clearly(storage: WorkflowStorage) -> None:
    wf = Outline(session_id="s", storage=storage)
    with pytest.raises(RunNotWaitingError, match="session 's' has no run waiting"):
        wf.resume("yes")
    list(wf.run(topic="pasta"))
    with pytest.raises(AnswerRefusedError, match=r"'maybe' is not an answer .* \"yes\", \"no\""):
        wf.resume("maybe")
    storage.answer("s", "yes", by="cli")
    with pytest.raises(AnswerRefusedError, match=r"answered already .*by cli") as twice:
        storage.answer("s", "no")
    assert twice.value.answered_already
    with pytest.raises(AnswerRefusedError, match="is of type object, not plain JSON"):
        storage.answer("s", object())
    list(wf.resume())  # the recorded answer is taken: now at the second question
    list(wf.resume("ok"))
    run_id = storage.runs("s")[0].run_id
    with pytest.raises(RunNotWaitingError, match=f"run {run_id}: it is completed, not waiting"):
        storage.answer("s", "late", run_id=run_id)
    with pytest.raises(RunNotWaitingError, match="no run waiting"):
        wf.resume("late")


def test_a_new_object_after_a_restart_sees_the_question_and_continues(
    storage: WorkflowStorage,
) -> None:
    list(Outline(session_id="s", storage=storage).run(topic="pasta"))
    fresh = Outline(session_id="s", storage=storage)  # a kernel restart: nothing in memory
    question = fresh.pending_question
    assert question is not None and question.text == "Approve this outline?"
    assert events(fresh.resume("yes"))[-1] == ("RunPaused", "Any notes for the writer?")
    storage.answer("s", "from the CLI", by="cli")  # `wfnb answer s "from the CLI"`
    again = Outline(session_id="s", storage=storage)
    assert events(again.run(topic="pasta"))[-1][1].endswith("(from the CLI)")  # same input
    assert CALLS == ["outline", "draft"] and len(storage.runs("s")) == 1
    assert again.pending_question is None


def test_a_run_with_other_input_is_a_new_run_and_the_question_still_waits(
    storage: WorkflowStorage,
) -> None:
    wf = Outline(session_id="s", storage=storage)
    list(wf.run(topic="pasta"))
    list(wf.run(topic="soup"))
    waiting = storage.waiting_runs("s")
    assert [run.input for run in waiting] == [{"topic": "soup"}, {"topic": "pasta"}]
    storage.answer("s", "no", run_id=waiting[1].run_id)
    assert events(wf.run(topic="pasta"))[-1] == ("RunResponse", " rejected")
    assert [run.input for run in storage.waiting_runs("s")] == [{"topic": "soup"}]


def test_running_again_unanswered_asks_again_in_the_same_run(storage: WorkflowStorage) -> None:
    wf = Outline(session_id="s", storage=storage)
    list(wf.run(topic="pasta"))
    assert events(wf.run(topic="pasta"))[-1] == ("RunPaused", "Approve this outline?")
    assert len(storage.runs("s")) == 1 and CALLS == ["outline"]


def test_a_consumer_that_stops_at_the_question_loses_nothing(storage: WorkflowStorage) -> None:
    wf = Outline(session_id="s", storage=storage)
    for response in wf.run(topic="pasta"):
        if response.event == RunEvent.run_paused.value:
            break
    assert storage.runs("s")[0].status == "waiting"
    stored = storage.read("s")
    assert stored is not None and "outline" in stored.session_state


def test_the_paused_response_resumes_the_run(storage: WorkflowStorage) -> None:
    paused = list(Outline(session_id="s", storage=storage).run(topic="pasta"))[-1]
    assert paused.resume is not None and paused.question is not None
    assert events(paused.resume("yes"))[-1][0] == "RunPaused"


# -- every construct a run can hold ------------------------------------------------------------


def test_ask_inside_a_step_stops_it_and_runs_it_again(storage: WorkflowStorage) -> None:
    class Review(Workflow):
        @step
        def research(self) -> str:
            CALLS.append("research")
            return "facts"

        @step
        def review(self, facts: str) -> str:
            CALLS.append("review")
            verdict = self.ask(f"Are these right: {facts}?", options=["yes", "no"])
            return f"{facts} reviewed: {verdict}"

        def run(self) -> Any:
            return self.review(self.research())

    wf = Review(session_id="s", storage=storage)
    paused = wf.run()
    assert paused.event == "RunPaused" and paused.content == "Are these right: facts?"
    assert [(s.name, s.status) for s in storage.steps("s")] == [
        ("Review.research", "completed"), ("Review.review", "stopped")]
    assert "waits for an answer" in (storage.steps("s")[1].error or "")
    assert wf.resume("yes").content == "facts reviewed: yes"
    assert CALLS == ["research", "review", "review"]
    statuses = [(s.name, s.status, s.cached) for s in storage.steps("s")]
    assert statuses[2:] == [("Review.research", "completed", True),
                            ("Review.review", "completed", False)]
    step_ids = [s.step_id for s in storage.steps("s")]
    assert len(set(step_ids)) == len(step_ids)  # a continued run numbers its calls on


def test_ask_in_a_loop_asks_each_time(storage: WorkflowStorage) -> None:
    class Loop(Workflow):
        def run(self) -> Any:
            for item in ("a", "b", "c"):
                yield f"{item}={self.ask('Keep it?', options=['keep', 'drop'])} "

    wf = Loop(session_id="s", storage=storage)
    answers = ["keep", "drop", "keep"]
    out = events(wf.run())
    for answer in answers:
        assert out[-1] == ("RunPaused", "Keep it?")
        out = events(wf.resume(answer))
    assert "".join(text for _, text in out) == "a=keep b=drop c=keep "
    assert [a.answer for a in storage.runs("s")[0].answers] == answers


def test_ask_in_a_function_run_and_in_async_runs(storage: WorkflowStorage) -> None:
    class Plain(Workflow):
        def run(self, x: int) -> Any:
            return f"{x}:{self.ask('Go?')}"

    class AsyncGen(Workflow):
        async def run(self, x: int) -> Any:
            await asyncio.sleep(0)
            yield f"{x}:"
            yield str(self.ask("Go?"))

    class Coroutine(Workflow):
        async def run(self, x: int) -> Any:
            await asyncio.sleep(0)
            return f"{x}:{self.ask('Go?')}"

    plain = Plain(session_id="plain", storage=storage)
    assert plain.run(1).event == "RunPaused"
    assert plain.resume("y").content == "1:y"

    async def drive() -> None:
        agen = AsyncGen(session_id="agen", storage=storage)
        first = [r async for r in agen.arun(2)]
        assert [r.event for r in first] == ["RunResponse", "RunPaused"]
        assert "".join([r.get_content_as_string() async for r in agen.resume("y")]) == "2:y"
        coro = Coroutine(session_id="coro", storage=storage)
        assert (await coro.arun(3)).event == "RunPaused"
        restarted = Coroutine(session_id="coro", storage=storage)
        assert (await restarted.resume("y")).content == "3:y"

    asyncio.run(drive())
    assert {storage.runs(s)[0].status for s in ("plain", "agen", "coro")} == {"completed"}


def test_questions_in_parallel_threads_are_all_asked(storage: WorkflowStorage) -> None:
    class Fan(Workflow):
        def run(self) -> Any:
            with ThreadPoolExecutor(max_workers=3) as pool:
                verdicts = list(pool.map(lambda part: self.ask(f"Approve {part}?"), "xyz"))
            return ",".join(verdicts)

    wf = Fan(session_id="s", storage=storage)
    response = wf.run()
    asked: list[str] = []
    while response.event == "RunPaused":
        assert response.question is not None
        asked.append(response.question.text)
        response = wf.resume(response.question.text[-2].upper())
    assert sorted(asked) == ["Approve x?", "Approve y?", "Approve z?"]
    assert response.content == "X,Y,Z"


def test_questions_in_asyncio_branches_are_all_asked(storage: WorkflowStorage) -> None:
    class Gather(Workflow):
        async def run(self) -> Any:
            async def branch(name: str) -> str:
                await asyncio.sleep(0)
                return str(self.ask(f"{name}?"))

            return "+".join(await asyncio.gather(branch("left"), branch("right")))

    async def drive() -> list[str]:
        wf = Gather(session_id="s", storage=storage)
        response = await wf.arun()
        asked = []
        while response.event == "RunPaused":
            asked.append(response.content)
            response = await wf.resume(response.content.upper())
        return [*asked, response.content]

    assert asyncio.run(drive()) == ["left?", "right?", "LEFT?+RIGHT?"]


def test_a_run_cannot_swallow_its_question(storage: WorkflowStorage) -> None:
    class Careless(Workflow):
        def run(self) -> Any:
            try:
                answer = self.ask("Sure?")
            except Exception:  # ask's stop is not an Exception
                answer = "swallowed"
            yield answer

    class Reckless(Workflow):
        def run(self) -> Any:
            with contextlib.suppress(BaseException):  # what a careless run might write
                self.ask("Sure?")
            yield "went on"

    assert events(Careless(session_id="a", storage=storage).run()) == [("RunPaused", "Sure?")]
    out = events(Reckless(session_id="b", storage=storage).run())
    assert out[-1] == ("RunPaused", "Sure?")  # it went on, but the run still waits
    assert storage.runs("b")[0].status == "waiting"


def test_ask_is_refused_where_no_answer_can_come(storage: WorkflowStorage) -> None:
    class NoStorage(Workflow):
        def run(self) -> Any:
            return str(self.ask("Hello?"))

    with pytest.raises(RuntimeError, match="has no storage"):
        NoStorage(session_id="s").run()
    with pytest.raises(RuntimeError, match="only while this workflow runs"):
        NoStorage(session_id="s").ask("Outside?")

    class Bad(Workflow):
        def run(self, how: str) -> Any:
            if how == "empty":
                return str(self.ask(""))
            if how == "no options":
                return str(self.ask("Q?", options=[]))
            return str(self.ask("Q?", options=["a"], default="b"))

    for how, message in (("empty", "non-empty text"), ("no options", "options is empty"),
                         ("default", "default 'b' is not one of the options")):
        with pytest.raises(ValueError, match=message):
            Bad(session_id="bad", storage=storage).run(how)


# -- storage: races, transfer ------------------------------------------------------------------


def test_only_one_process_continues_a_waiting_run(make_storage: StorageFactory) -> None:
    class Once(Workflow):
        @step
        def slow(self) -> str:
            CALLS.append("slow")
            return "done"

        def run(self) -> Any:
            yield self.slow()
            yield str(self.ask("Go?"))

    first, second = make_storage(), make_storage()
    list(Once(session_id="s", storage=first).run())
    first.answer("s", "yes")
    results: list[str] = []
    barrier = threading.Barrier(2)

    def resume(storage: WorkflowStorage) -> None:
        wf = Once(session_id="s", storage=storage)
        barrier.wait()
        try:  # the loser finds no waiting run, or loses the take-over in the database
            results.append(events(wf.resume())[-1][1])
        except RunNotWaitingError:
            results.append("refused")

    threads = [threading.Thread(target=resume, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "yes"]
    assert CALLS == ["slow"] and storage_status(first) == ["completed"]


def storage_status(storage: WorkflowStorage) -> list[str]:
    return [run.status for run in storage.runs("s")]


def test_waiting_runs_and_answers_survive_export_and_import(
    storage: WorkflowStorage, tmp_path: Path
) -> None:
    wf = Outline(session_id="s", storage=storage)
    list(wf.run(topic="pasta"))
    list(wf.resume("yes", by="ann"))
    with open(tmp_path / "export.jsonl", "wb") as exported:
        storage.export_sessions(exported)
    storage.delete("s")
    storage.import_sessions(tmp_path / "export.jsonl")
    [run] = storage.runs("s")
    assert run.status == "waiting" and run.question is not None
    assert run.question.text == "Any notes for the writer?" and run.answers[0].by == "ann"
    assert events(Outline(session_id="s", storage=storage).resume("fine"))[-1][1].endswith(
        "(fine)")


def test_a_damaged_question_is_listed_not_fatal(storage: WorkflowStorage) -> None:
    list(Outline(session_id="s", storage=storage).run(topic="pasta"))
    engine = sa.create_engine(storage.db_url)
    runs = sa.Table(f"{storage.table_name}_runs", sa.MetaData(), autoload_with=engine)
    with engine.begin() as connection:
        connection.execute(sa.update(runs).values(question="{not json", answers='[{"x": 1}]'))
    engine.dispose()
    [run] = storage.runs("s")
    assert run.question is None and run.damaged is not None and "question is not JSON" in (
        run.damaged)


def test_a_run_record_keeps_what_ask_is_given(storage: WorkflowStorage) -> None:
    class Numbers(Workflow):
        def run(self) -> Any:
            return self.ask("How many?", options=[1, 2, 3], default=2)

    wf = Numbers(session_id="s", storage=storage)
    wf.run()
    assert wf.resume().content == 2
    assert storage.runs("s")[0].answers[0].answer == 2


def test_a_run_is_taken_over_once(storage: WorkflowStorage) -> None:
    list(Outline(session_id="s", storage=storage).run(topic="pasta"))
    [waiting] = storage.waiting_runs("s")
    taken = storage.record_run_start("new-id", "s", "Outline", {}, resuming=waiting.run_id)
    assert taken is not None and taken.run_id == waiting.run_id and taken.status == "running"
    with pytest.raises(RunNotWaitingError, match="it is running, not waiting"):
        storage.record_run_start("other-id", "s", "Outline", {}, resuming=waiting.run_id)
    assert [run.run_id for run in storage.runs("s")] == [waiting.run_id]


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli(db_args: list[str], tmp_path: Path) -> Run:
    """``wfnb ARGS`` on this test's database and table."""
    return lambda *args, **options: run_wfnb(*db_args, *args, cwd=tmp_path, **options)



def test_wfnb_answer_and_runs(cli: Run, storage: WorkflowStorage) -> None:
    class Pick(Workflow):
        def run(self) -> Any:
            return self.ask("Pick \x1b[31mred\x1b[0m\u202e", options=[1, 2], default=2)

    assert cli("answer", "nobody", "x").returncode == 1
    Pick(session_id="s", storage=storage).run()
    table = cli("runs", "s").stdout
    assert "waiting" in table and "waits: Pick \\x1b[31mred\\x1b[0m\\u202e [1 / 2]" in table
    refused = cli("answer", "s", "3")
    assert refused.returncode == 2 and "not an answer" in refused.stderr
    answered = cli("answer", "s", "1", "--by", "bob", "--json")
    assert answered.returncode == 0 and orjson.loads(answered.stdout)["answer"] == 1
    assert "answered: its next run goes on" in cli("runs", "s").stdout
    again = cli("answer", "s", "2")
    assert again.returncode == 3 and "answered already (1, by bob)" in again.stderr
    assert Pick(session_id="s", storage=storage).run().content == 1  # the next run takes it
    assert cli("answer", "s").returncode == 1  # no run waits now
    records = orjson.loads(cli("runs", "s", "--json").stdout)
    assert records[0]["status"] == "completed" and records[0]["answers"][0]["by"] == "bob"


def test_wfnb_answer_takes_the_default_and_a_run(cli: Run, storage: WorkflowStorage) -> None:
    class Free(Workflow):
        def run(self, n: int) -> Any:
            return self.ask("Notes?", default="none" if n else None)

    Free(session_id="s", storage=storage).run(0)
    Free(session_id="s", storage=storage).run(1)
    older, newer = storage.waiting_runs("s")[::-1]
    assert cli("answer", "s", "--run", older.run_id).returncode == 2  # no default: say it
    assert cli("answer", "s").returncode == 0  # the newest: its default
    assert cli("answer", "s", "free text", "--run", older.run_id).returncode == 0
    assert [a.answer for a in storage.runs("s")[0].answers] == ["none"]
    assert Free(session_id="s", storage=storage).run(0).content == "free text"
    assert cli("answer", "s", "x", "--run", newer.run_id).returncode == 3


# -- what the review found -----------------------------------------------------------------


def test_only_plain_json_is_asked_or_answered_and_compared_as_json(
    storage: WorkflowStorage,
) -> None:
    class Choice(Workflow):
        def run(self, options: Any) -> Any:
            return self.ask("Pick?", options=options)

    for options, error in (((1, 2), None), ([(1, 2), 3], "options\\[0\\] is of type tuple"),
                           ("yes", "options is a list of answers"),
                           ([dt.date(2020, 1, 1)], "is of type date")):
        if error is None:
            assert Choice(session_id="ok", storage=storage).run(options).event == "RunPaused"
            continue
        with pytest.raises(TypeError, match=error):
            Choice(session_id="bad", storage=storage).run(options)
    flags = Choice(session_id="flags", storage=storage)
    flags.run([True, False])
    with pytest.raises(AnswerRefusedError, match="not an answer"):
        flags.resume(1)  # 1 == True in Python, not in JSON
    with pytest.raises(AnswerRefusedError, match="of type Decimal"):
        flags.resume(Decimal("1"))
    assert flags.resume(True).content is True


def test_an_old_paused_response_cannot_answer_a_newer_question(storage: WorkflowStorage) -> None:
    first = list(Outline(session_id="s", storage=storage).run(topic="pasta"))[-1]
    assert first.resume is not None
    list(first.resume("yes"))  # the run now asks "Which tone?"
    with pytest.raises(AnswerRefusedError, match=r"was for an earlier question; .*notes"):
        first.resume("formal")


def test_after_a_restart_the_run_is_called_with_exactly_its_arguments(
    storage: WorkflowStorage,
) -> None:
    class Client:
        def complete(self, prompt: str) -> str:
            return "ok:" + prompt

    class Exact(Workflow):
        def run(self, day: dt.date, pair: tuple[int, int], *more: str, **extra: int) -> Any:
            answer = self.ask("Go?")
            return f"{day!r} {pair!r} {more!r} {extra!r} {answer}"

    class WithClient(Workflow):
        def run(self, client: Client, topic: str) -> Any:
            return client.complete(topic + str(self.ask("Go?")))

    class AsyncOnly(Workflow):
        async def arun(self, topic: str) -> Any:
            return f"{topic}:{self.ask('Go?')}"

    Exact(session_id="exact", storage=storage).run(dt.date(2024, 5, 1), (1, 2), "x", k=3)
    assert Exact(session_id="exact", storage=storage).resume("y").content == (
        "datetime.date(2024, 5, 1) (1, 2) ('x',) {'k': 3} y")
    WithClient(session_id="client", storage=storage).run(Client(), "t")
    fresh = WithClient(session_id="client", storage=storage)
    with pytest.raises(TypeError, match="pass the arguments again"):
        fresh.resume("!")
    assert storage.waiting_runs("client")[0].answers == ()  # refused before answering
    assert fresh.resume("!", arguments={"client": Client(), "topic": "t"}).content == "ok:t!"
    asyncio.run(AsyncOnly(session_id="async", storage=storage).arun("a"))
    assert asyncio.run(AsyncOnly(session_id="async", storage=storage).resume("y")).content == (
        "a:y")


def test_answers_outlive_a_continued_run_that_fails(storage: WorkflowStorage) -> None:
    class Flaky(Workflow):
        fail: bool = True

        def run(self) -> Any:
            answer = self.ask("Ship?", options=["yes", "no"])
            if self.fail:
                raise RuntimeError("transient")
            return answer

    Flaky(session_id="s", storage=storage).run()
    storage.answer("s", "yes")
    with pytest.raises(RuntimeError, match="transient"):
        Flaky(session_id="s", storage=storage).run()
    assert Flaky(session_id="s", storage=storage, fail=False).run().content == "yes"
    [run] = storage.runs("s")  # the same run, taken over again, not asked again
    assert run.status == "completed" and [a.answer for a in run.answers] == ["yes"]


def test_wfnb_answer_names_what_is_wrong_and_reads_json_options(
    cli: Run, storage: WorkflowStorage
) -> None:
    class Dicts(Workflow):
        def run(self) -> Any:  # asks before any state is saved: the session has runs only
            return self.ask("Which?", options=[{"a": 1}, None, "1", 1])

    Dicts(session_id="d", storage=storage).run()
    unknown = cli("answer", "d", "x", "--run", "bogus")
    assert unknown.returncode == 1 and "session 'd' has no run 'bogus'" in unknown.stderr
    assert cli("answer", "d", '{"a": 1}').returncode == 0  # an option read as JSON
    assert storage.runs("d")[0].answers[0].answer == {"a": 1}
    run_id = storage.runs("d")[0].run_id
    assert Dicts(session_id="d", storage=storage).run().content == {"a": 1}
    done = cli("answer", "d", "x", "--run", run_id)
    assert done.returncode == 3 and "it is completed, not waiting" in done.stderr


def test_a_question_of_a_nested_run_stops_the_outer_run(storage: WorkflowStorage) -> None:
    class Inner(Workflow):
        def run(self, topic: str) -> Any:
            return f"{topic}: {self.ask('inner q?')}"

    class Outer(Workflow):
        def run(self) -> Any:
            yield "before "
            yield Inner(session_id="inner", storage=storage).run("t")

    with pytest.raises(NestedQuestionError, match=r"'Inner' .* asked 'inner q\?' inside"):
        list(Outer(session_id="outer", storage=storage).run())
    assert storage.runs("outer")[0].status == "failed"
    storage.answer("inner", "yes")
    assert [r.content for r in Outer(session_id="outer", storage=storage).run()] == [
        "before ", "t: yes"]
