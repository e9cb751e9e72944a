"""The Workflow runtime: run kinds, persistence rules on every path, runs, merges, busy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest

from tests.conftest import StorageFactory
from wfnb import (
    RunEvent,
    RunResponse,
    SessionConflictError,
    UnstorableStateError,
    Workflow,
    WorkflowBusyError,
    WorkflowStorage,
)


class Counter(Workflow):
    """Counts runs; ``fail`` raises after mutating, ``save_first`` saves explicitly first."""

    def run(
        self, fail: str | None = None, save_first: bool = False
    ) -> Generator[RunResponse, None, None]:
        self.session_state["runs"] = self.session_state.get("runs", 0) + 1
        if save_first:
            self.write_to_storage()
        self.session_state["half"] = "mutated"
        yield RunResponse(content="working")
        if fail == "error":
            raise ValueError("boom")
        if fail == "interrupt":
            raise KeyboardInterrupt
        self.session_state.pop("half")
        yield RunResponse(content="done")


def stored_state(storage: WorkflowStorage, session_id: str = "s") -> dict[str, Any] | None:
    stored = storage.read(session_id)
    return stored.session_state if stored is not None else None


def test_state_is_saved_when_a_run_completes(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    contents = [r.content for r in wf.run()]
    assert contents == ["working", "done"]
    assert stored_state(storage) == {"runs": 1}


def test_a_new_instance_reads_the_stored_state(storage: WorkflowStorage) -> None:
    list(Counter(session_id="s", storage=storage).run())
    again = Counter(session_id="s", storage=storage)
    assert again.session_state == {"runs": 1}
    list(again.run())
    assert stored_state(storage) == {"runs": 2}


def test_every_response_carries_run_and_session_ids(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    first = list(wf.run())
    second = list(wf.run())
    assert {r.session_id for r in first + second} == {"s"}
    assert len({r.run_id for r in first}) == 1 and len({r.run_id for r in second}) == 1
    assert first[0].run_id != second[0].run_id
    assert wf.run_id == second[0].run_id


def test_session_id_is_generated_when_not_given(storage: WorkflowStorage) -> None:
    one, two = Counter(storage=storage), Counter(storage=storage)
    assert one.session_id and two.session_id and one.session_id != two.session_id


def test_a_failing_run_keeps_the_explicit_save_and_not_the_half_mutation(
    storage: WorkflowStorage,
) -> None:
    wf = Counter(session_id="s", storage=storage)
    with pytest.raises(ValueError, match="boom"):
        list(wf.run(fail="error", save_first=True))
    assert stored_state(storage) == {"runs": 1}
    assert wf.session_state == {"runs": 1, "half": "mutated"}  # kept for a look
    (run,) = storage.runs("s")
    assert (run.status, run.error, run.output) == ("failed", "ValueError: boom", "working")


def test_a_failing_run_without_explicit_save_writes_nothing(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    with pytest.raises(ValueError, match="boom"):
        list(wf.run(fail="error"))
    assert stored_state(storage) is None


def test_the_next_run_starts_from_the_stored_state_after_a_failure(
    storage: WorkflowStorage, caplog: pytest.LogCaptureFixture
) -> None:
    wf = Counter(session_id="s", storage=storage)
    list(wf.run())
    with pytest.raises(ValueError, match="boom"):
        list(wf.run(fail="error"))
    with caplog.at_level(logging.WARNING, logger="wfnb"):
        list(wf.run())
    assert stored_state(storage) == {"runs": 2}
    assert "discarding unsaved changes" in caplog.text


def test_a_failed_run_that_changed_nothing_discards_nothing_and_says_nothing(
    storage: WorkflowStorage, caplog: pytest.LogCaptureFixture
) -> None:
    class Fails(Workflow):
        def run(self) -> Iterator[str]:
            yield "reading only"
            raise ValueError("boom")

    wf = Fails(session_id="s", storage=storage)
    with pytest.raises(ValueError, match="boom"):
        list(wf.run())
    with caplog.at_level(logging.WARNING, logger="wfnb"), pytest.raises(ValueError, match="boom"):
        list(wf.run())
    assert "discarding" not in caplog.text


def test_write_to_storage_after_a_failure_keeps_the_half_state_on_purpose(
    storage: WorkflowStorage,
) -> None:
    wf = Counter(session_id="s", storage=storage)
    with pytest.raises(ValueError, match="boom"):
        list(wf.run(fail="error"))
    wf.write_to_storage()
    assert stored_state(storage) == {"runs": 1, "half": "mutated"}


def test_keyboard_interrupt_records_an_interrupted_run(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    with pytest.raises(KeyboardInterrupt):
        list(wf.run(fail="interrupt", save_first=True))
    assert stored_state(storage) == {"runs": 1}
    assert storage.runs("s")[0].status == "interrupted"


def test_a_consumer_stopping_early_writes_nothing_more(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    stream = wf.run()
    assert next(stream).content == "working"
    stream.close()
    assert stored_state(storage) is None
    assert storage.runs("s")[0].status == "interrupted"


class Finisher(Workflow):
    def run(self) -> Iterator[RunResponse]:
        self.session_state["answer"] = 42
        yield RunResponse(content="the answer", event=RunEvent.workflow_completed)
        self.session_state["after"] = "never saved if the consumer stops"


def test_state_is_saved_before_the_completion_event_is_handed_out(
    storage: WorkflowStorage,
) -> None:
    wf = Finisher(session_id="s", storage=storage)
    for response in wf.run():
        assert response.event == RunEvent.workflow_completed.value
        assert stored_state(storage) == {"answer": 42}
        break  # the consumer stops at the completion event
    assert storage.runs("s")[0].status == "completed"


class Plain(Workflow):
    def run(self, text: str) -> RunResponse:
        self.session_state["last"] = text
        return RunResponse(content=text.upper())


class Returns(Workflow):
    def run(self) -> str:
        self.session_state["n"] = 1
        return "plain text"


def test_a_plain_function_run_returns_one_stamped_response(storage: WorkflowStorage) -> None:
    wf = Plain(session_id="s", storage=storage)
    response = wf.run("hi")
    assert isinstance(response, RunResponse)
    assert (response.content, response.session_id, response.run_id) == ("HI", "s", wf.run_id)
    assert stored_state(storage) == {"last": "hi"}


def test_a_returned_value_is_wrapped_in_a_response(storage: WorkflowStorage) -> None:
    response = Returns(session_id="s", storage=storage).run()
    assert isinstance(response, RunResponse) and response.content == "plain text"
    assert storage.runs("s")[0].output == "plain text"


class AsyncAnswer(Workflow):
    async def run(self, question: str) -> RunResponse:
        await asyncio.sleep(0)
        self.session_state["asked"] = question
        return RunResponse(content="42")


class AsyncStream(Workflow):
    async def run(self, fail: bool = False) -> AsyncIterator[RunResponse]:
        self.session_state["streamed"] = True
        for word in ("a", "b"):
            await asyncio.sleep(0)
            yield RunResponse(content=word)
        if fail:
            raise ValueError("async boom")


def test_an_async_function_run_is_awaited_through_arun(storage: WorkflowStorage) -> None:
    wf = AsyncAnswer(session_id="s", storage=storage)
    response = asyncio.run(wf.arun("why?"))
    assert response.content == "42" and response.session_id == "s"
    assert stored_state(storage) == {"asked": "why?"}


def test_an_async_generator_run_streams_and_saves(storage: WorkflowStorage) -> None:
    wf = AsyncStream(session_id="s", storage=storage)

    async def consume() -> list[str]:
        return [r.content async for r in wf.arun()]

    assert asyncio.run(consume()) == ["a", "b"]
    assert stored_state(storage) == {"streamed": True}


def test_a_failing_async_generator_saves_nothing(storage: WorkflowStorage) -> None:
    wf = AsyncStream(session_id="s", storage=storage)

    async def consume() -> None:
        async for _ in wf.arun(fail=True):
            pass

    with pytest.raises(ValueError, match="async boom"):
        asyncio.run(consume())
    assert stored_state(storage) is None
    assert storage.runs("s")[0].status == "failed"


def test_one_instance_refuses_a_second_run_while_one_is_running(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    first = wf.run()
    next(first)
    with pytest.raises(WorkflowBusyError, match="one instance runs one run at a time"):
        next(wf.run())
    assert [r.content for r in first] == ["done"]
    assert stored_state(storage) == {"runs": 1}


def test_runs_are_recorded_with_input_output_and_version(storage: WorkflowStorage) -> None:
    wf = Plain(session_id="s", storage=storage)
    wf.run(text="pasta")
    (run,) = storage.runs("s")
    assert (run.status, run.input, run.output, run.version) == (
        "completed", {"text": "pasta"}, "PASTA", 1
    )
    assert run.workflow_name == "Plain" and run.ended_at is not None


def test_extra_fields_are_taken_as_keyword_arguments(storage: WorkflowStorage) -> None:
    class WithWriter(Workflow):
        writer: Any = None

    assert WithWriter(storage=storage, writer="w").writer == "w"
    with pytest.raises(TypeError, match="has no field 'reader'"):
        WithWriter(storage=storage, reader="r")


def test_edits_outside_a_run_are_carried_into_it(storage: WorkflowStorage) -> None:
    wf = Counter(session_id="s", storage=storage)
    wf.session_state["note"] = "set before the run"
    list(wf.run())
    assert stored_state(storage) == {"note": "set before the run", "runs": 1}


def test_edits_outside_a_run_conflicting_with_a_newer_save_stop_the_run(
    storage: WorkflowStorage,
) -> None:
    mine = Counter(session_id="s", storage=storage)
    theirs = Counter(session_id="s", storage=storage)
    mine.session_state["runs"] = 100
    list(theirs.run())
    with pytest.raises(SessionConflictError, match="'runs'"):
        list(mine.run())
    assert stored_state(storage) == {"runs": 1}


def test_two_instances_of_one_session_merge_different_keys(storage: WorkflowStorage) -> None:
    one, two = Workflow(session_id="s", storage=storage), Workflow(session_id="s", storage=storage)
    one.session_state["a"] = 1
    two.session_state["b"] = 2
    one.write_to_storage()
    two.write_to_storage()
    assert stored_state(storage) == {"a": 1, "b": 2}
    assert two.session_state == {"a": 1, "b": 2}


def test_two_instances_changing_one_key_conflict_unless_forced(storage: WorkflowStorage) -> None:
    one, two = Workflow(session_id="s", storage=storage), Workflow(session_id="s", storage=storage)
    one.session_state["n"] = 1
    two.session_state["n"] = 1
    one.write_to_storage()
    with pytest.raises(SessionConflictError, match="'n'"):
        two.write_to_storage()
    assert two.session_state == {"n": 1}  # kept in memory
    two.session_state["n"] = 5
    two.write_to_storage(force=True)
    assert stored_state(storage) == {"n": 5}


def test_an_unstorable_value_fails_the_run_and_leaves_storage_alone(
    storage: WorkflowStorage,
) -> None:
    class Bad(Workflow):
        def run(self) -> Iterator[str]:
            self.session_state["posts"] = [{"when": {1, 2}}, {"when": object()}]
            yield "ok"

    wf = Bad(session_id="s", storage=storage)
    with pytest.raises(UnstorableStateError) as raised:
        list(wf.run())
    assert raised.value.path == 'session_state["posts"][1]["when"]'
    assert stored_state(storage) is None
    assert storage.runs("s")[0].status == "failed"


def test_session_state_given_to_the_constructor_fills_missing_keys(
    storage: WorkflowStorage,
) -> None:
    storage.save("s", {"runs": 7}, expected_version=0)
    wf = Counter(session_id="s", storage=storage, session_state={"runs": 0, "lang": "en"})
    assert wf.session_state == {"runs": 7, "lang": "en"}
    list(wf.run())
    assert stored_state(storage) == {"runs": 8, "lang": "en"}


def test_without_storage_state_lives_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    wf = Counter(session_id="s")
    list(wf.run())
    list(wf.run())
    assert wf.session_state == {"runs": 2}
    with caplog.at_level(logging.WARNING, logger="wfnb"):
        assert wf.write_to_storage() is None
    assert "has no storage" in caplog.text


def test_yielded_strings_become_responses(storage: WorkflowStorage) -> None:
    class Words(Workflow):
        def run(self) -> Iterator[str]:
            yield "a"
            yield "b"

    responses: list[Any] = list(Words(session_id="s", storage=storage).run())
    assert all(isinstance(r, RunResponse) for r in responses)
    assert [r.content for r in responses] == ["a", "b"]


def test_write_to_storage_returns_the_version(make_storage: StorageFactory) -> None:
    wf = Workflow(session_id="s", storage=make_storage())
    wf.session_state["a"] = 1
    assert wf.write_to_storage() == 1
    assert wf.write_to_storage() == 1  # unchanged: nothing written
    wf.session_state["a"] = 2
    assert wf.write_to_storage() == 2 == wf.version
