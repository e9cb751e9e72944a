"""Workflow: a ``run()`` whose ``session_state`` is loaded before it starts and saved when it ends.

Subclasses write ``run`` as a generator, a plain function, a coroutine or an async generator; the
class wraps it (in ``__init_subclass__``) so that every call is one *run*:

1. a new ``run_id``; a second run on a busy instance raises WorkflowBusyError;
2. ``session_state`` is read from storage (edits made to it outside a run since the last load or
   save are kept, merged by the same rule as concurrent saves);
3. the run is recorded as ``running``; each item it yields becomes a RunResponse stamped with
   ``run_id`` and ``session_id``: a model's chunk or answer (OpenAI, Anthropic, LangChain, agno;
   see _chunks.py) gives its text as ``content``, with ``reasoning_content``, ``tool_calls`` and
   ``usage``; the run's record keeps the text and the token usage;
4. the state is saved when the run completes, and also just before a completion event
   (``RunEvent.workflow_completed`` / ``run_completed``) is handed out, so a consumer that stops
   there loses nothing;
5. a run that raises, is interrupted (KeyboardInterrupt, or an async run cancelled) or is closed
   early by its consumer writes nothing more:
   what ``write_to_storage()`` saved stays, the half-mutated state stays on the instance for a
   look or a deliberate ``write_to_storage()``, and the next run starts from the stored state;
6. a run that calls ``self.ask(question)`` with no answer for it stops there: its state is saved,
   it is recorded ``waiting`` with the question, and it ends with a ``RunPaused`` response
   carrying the question. ``resume(answer)`` (or an answer recorded elsewhere, then a run with
   the same input) continues it: the same run, run again from its start, its completed steps
   served and ``ask`` returning the answer. So code outside steps runs again on every resume
   and should only set what it sets (as in DBOS); steps and answers happen once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import logging
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from types import TracebackType
from typing import Any, TypeVar

from wfnb._chunks import Collector
from wfnb._errors import (
    AnswerRefusedError,
    NestedQuestionError,
    RunNotWaitingError,
    StorageError,
    UnknownChunkError,
    UnstorableStateError,
    WaitingForAnswer,
    WorkflowBusyError,
)
from wfnb._events import COMPLETION_EVENTS, RunEvent, RunResponse
from wfnb._steps import RunSteps
from wfnb.storage import (
    Answer,
    Question,
    RunRecord,
    WorkflowStorage,
    check_session_id,
    decode_state,
    encode_state,
    join_parts,
    merge_or_conflict,
    not_plain_json,
    parts_of,
    recorded_input,
    same_json,
)

logger = logging.getLogger("wfnb")

_Body = TypeVar("_Body", bound=Callable[..., Any])
_STOPS = (KeyboardInterrupt, asyncio.CancelledError)  # a run stopped from outside: interrupted
_NO_ANSWER: Any = object()


class Workflow:
    """Base class of workflows; see the module docstring for the persistence rules.

    Extra fields declared as class attributes (``writer: Agent = None``) may be passed as
    keyword arguments. ``session_state`` given here fills keys the stored session lacks.
    """

    name: str | None = None
    description: str | None = None

    def __init__(
        self,
        *,
        session_id: str | None = None,
        storage: WorkflowStorage | None = None,
        session_state: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        for key, value in fields.items():
            if key.startswith("_") or not hasattr(type(self), key):
                raise TypeError(
                    f"{type(self).__name__} has no field {key!r}; declare it as a class "
                    f"attribute (e.g. `{key}: Any = None`) to pass it here"
                )
            setattr(self, key, value)
        self.name = name or self.name or type(self).__name__
        self.description = description or self.description
        self.session_id = check_session_id(session_id or str(uuid.uuid4()))
        self.storage = storage
        self.run_id: str | None = None
        self.run_response: RunResponse | None = None
        self.session_state: dict[str, Any] = {}
        self._defaults = dict(session_state or {})
        self._synced = b"{}"  # JSON document of the state as last loaded or saved
        self._version = 0  # its version in storage (0: nothing stored)
        self._abandoned_by: str | None = None  # run whose failure left session_state half-done
        self._active_run: _Run | None = None
        self._run_lock = threading.Lock()
        self._refreshed: dict[str | None, float] = {}  # step name (None: all) -> when
        # the run that last paused here: (run id, method, args, kwargs), to call it again
        self._paused: tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None
        self._resuming: str | None = None  # the waiting run resume() asked the next run to go on
        self.read_from_storage()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method in ("run", "arun"):
            body = cls.__dict__.get(method)
            if body is not None and not getattr(body, "_wfnb_wrapped", False):
                setattr(cls, method, _wrap(body))
        if "run" in cls.__dict__ and "arun" not in cls.__dict__:
            run = cls.__dict__["run"]
            if inspect.iscoroutinefunction(run) or inspect.isasyncgenfunction(run):
                cls.arun = run  # type: ignore[method-assign]

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Override with the workflow's body (generator, function, coroutine or async generator)."""
        raise NotImplementedError(f"{type(self).__name__} does not define run()")

    def arun(self, *args: Any, **kwargs: Any) -> Any:
        """The async spelling of run(): defined when run is a coroutine or an async generator."""
        raise NotImplementedError(f"{type(self).__name__} defines no async run()")

    @property
    def version(self) -> int:
        """The stored version ``session_state`` was last loaded from or saved as (0: none)."""
        return self._version

    def refresh(self, *names: str) -> None:
        """Make the next runs execute these steps (all steps, without names) instead of being
        served their records: records that ended before now are not served again.

        A name is a step's full name or its part after the last dot (``refresh("search")``).
        """
        now = time.time()
        for name in names or (None,):
            self._refreshed[name] = now

    # -- questions -----------------------------------------------------------------------------

    def ask(self, question: str, options: list[Any] | None = None, default: Any = None) -> Any:
        """The answer to ``question``, once a person gave it; until then, stop the run here.

        The first time a run reaches an unanswered ``ask``, the state is saved, the run is
        recorded ``waiting`` with the question, and the run ends with a ``RunPaused`` response
        carrying it (a notebook shows a form). ``resume(answer)``, or an answer recorded by
        ``storage.answer`` / ``wfnb answer`` and then a run with the same input, continues the
        run: completed steps are served and this call returns the answer. ``options``: the
        answers allowed (buttons in a notebook); ``default``: what ``resume()`` without an
        answer gives.
        """
        run = self._active_run
        if run is None:
            raise RuntimeError(
                f"workflow {self.name!r}: ask() stops a run until it is answered, so it works "
                "only while this workflow runs (inside run())"
            )
        return run.ask(question, options, default)

    @property
    def pending_question(self) -> Question | None:
        """The question the session's newest waiting run asked (None: no run waits)."""
        if self.storage is None:
            return None
        waiting = self.storage.waiting_runs(self.session_id)
        return waiting[0].question if waiting else None

    def resume(self, answer: Any = _NO_ANSWER, *, run_id: str | None = None,
               by: str | None = None, arguments: dict[str, Any] | None = None,
               question: Question | None = None) -> Any:
        """Answer the question the session's waiting run asked (the newest, or ``run_id``)
        and continue that run; returns what ``run()`` returns (stream it as a run).

        Without ``answer``: an answer recorded already (``wfnb answer``), else the question's
        default. The run is called as this instance called it, else with its recorded input
        (after a restart), or with ``arguments`` (by parameter name) when that input holds a
        value JSON cannot keep. ``question`` (a RunPaused's): refuse if the run now asks
        another. RunNotWaitingError if no run waits; AnswerRefusedError if the answer is not
        one of the options, none is given and there is no default, or the question moved on.
        ``by`` says who answered (default: this user).
        """
        if self.storage is None:
            raise RunNotWaitingError(f"workflow {self.name!r} has no storage: no run can wait")
        waiting = _waiting_run(self.storage, self.session_id, run_id)
        pending = waiting.question
        assert pending is not None, "a waiting run has a question"
        method, args, kwargs = self._call_again(waiting, arguments)
        if answer is _NO_ANSWER and not waiting.answered:
            if pending.default is None:
                raise AnswerRefusedError(
                    f"session {self.session_id!r}, run {waiting.run_id} waits for an answer to "
                    f"{pending.text!r} and has no default: pass one, resume(answer)"
                )
            answer = pending.default
        if answer is not _NO_ANSWER:
            self.storage.answer(self.session_id, answer, run_id=waiting.run_id, by=by,
                                question_key=question.key if question is not None else None)
        return _continuing(self, waiting.run_id, method, args, kwargs)

    def _call_again(
        self, waiting: RunRecord, arguments: dict[str, Any] | None
    ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        """How to call the waiting run again: as this instance called it, else with
        ``arguments`` or the input its record keeps exactly."""
        paused = self._paused
        if arguments is None and paused is not None and paused[0] == waiting.run_id:
            return paused[1], paused[2], paused[3]
        method = self.arun if type(self).run is Workflow.run else self.run
        given = arguments if arguments is not None else recorded_input(waiting)
        if given is None:
            raise TypeError(
                f"session {self.session_id!r}, run {waiting.run_id}: its input holds a value "
                f"JSON cannot keep ({waiting.input!r}); pass the arguments again: "
                "resume(answer, arguments={name: value, ...})"
            )
        return (method, *_call_from(method, given))

    # -- persistence ---------------------------------------------------------------------------

    def read_from_storage(self) -> dict[str, Any]:
        """Replace ``session_state`` with the stored one, dropping unsaved in-memory changes."""
        stored = self.storage.read(self.session_id) if self.storage is not None else None
        if stored is None:
            self._adopt({}, 0, b"{}")
        else:
            self._adopt(stored.session_state, stored.version, stored.document)
        return self.session_state

    def write_to_storage(self, *, force: bool = False) -> int | None:
        """Save ``session_state`` now; returns the stored version (None without storage).

        Raises SessionConflictError if another writer changed the same top-level keys since
        this instance loaded them (``force=True`` overwrites), and UnstorableStateError naming
        the path of a value JSON cannot hold; in both cases nothing is written and
        ``session_state`` is left as it is.
        """
        if self.storage is None:
            logger.warning("workflow %r has no storage: session_state stays in memory", self.name)
            return None
        encoded = encode_state(self.session_state)
        if encoded.document == self._synced and not force:
            return self._version
        result = self.storage.save(
            self.session_id, encoded, expected_version=self._version,
            workflow_name=self.name, run_id=self.run_id if self._active_run else None,
            source="run" if self._active_run else "save", force=force,
        )
        if result.session_state is not None:
            for key in result.merged_keys:
                if key in result.session_state:
                    self.session_state[key] = result.session_state[key]
                else:
                    self.session_state.pop(key, None)
            encoded = encode_state(self.session_state)
        self._synced, self._version, self._abandoned_by = encoded.document, result.version, None
        return result.version

    def _adopt(self, state: dict[str, Any], version: int, document: bytes) -> None:
        """Make ``state`` (stored at ``version`` as ``document``) the in-memory state."""
        missing = {key: value for key, value in self._defaults.items() if key not in state}
        if missing:
            state.update(missing)
            document = encode_state(state).document
        self._synced, self._version, self._abandoned_by = document, version, None
        self.session_state.clear()
        self.session_state.update(state)

    def _load_for_run(self) -> None:
        """Read the stored state, carrying over edits made to session_state outside a run."""
        if self.storage is None:
            return
        if self._abandoned_by is not None:
            if self._has_unsaved_changes():
                logger.warning(
                    "session %r: discarding unsaved changes left by run %s, which did not "
                    "complete; call write_to_storage() after a failed run to keep them",
                    self.session_id, self._abandoned_by,
                )
            self.read_from_storage()
            return
        pending = encode_state(self.session_state)
        if pending.document == self._synced:
            self.read_from_storage()
            return
        stored = self.storage.read(self.session_id)
        theirs = stored.document if stored is not None else b"{}"
        version = stored.version if stored is not None else 0
        merged, _taken = merge_or_conflict(
            self.session_id, parts_of(self._synced), pending.parts, parts_of(theirs),
            expected_version=self._version, stored_version=version,
        )
        self._synced, self._version = theirs, version
        self.session_state.clear()
        self.session_state.update(decode_state(join_parts(merged)))

    def _has_unsaved_changes(self) -> bool:
        try:
            return encode_state(self.session_state).document != self._synced
        except UnstorableStateError:
            return True

    # -- runs ----------------------------------------------------------------------------------

    def _claim(self, run: _Run) -> None:
        with self._run_lock:
            if self._active_run is not None:
                raise WorkflowBusyError(
                    f"workflow {self.name!r} (session {self.session_id!r}) is still running run "
                    f"{self._active_run.run_id}; one instance runs one run at a time: create "
                    "another instance with the same session_id and storage to run in parallel"
                )
            self._active_run = run

    def _release(self) -> None:
        with self._run_lock:
            self._active_run = None


class _Run:
    """One run's bookkeeping, shared by the four kinds of run body."""

    def __init__(self, workflow: Workflow, body: Callable[..., Any], args: Any, kwargs: Any):
        self.workflow = workflow
        self.run_id = str(uuid.uuid4())
        self.call = (getattr(workflow, body.__name__), args, kwargs)  # to call it again
        self.collected = Collector()
        self.completion_handed_out = False
        self.steps: RunSteps | None = None
        self.question: Question | None = None  # the first question asked and not answered
        self.answers: dict[str, Answer] = {}  # by question key: the answers the run was given
        self._asked: dict[str, int] = {}  # how many times each question was asked
        self._ask_lock = threading.Lock()  # branches of a run may ask from several threads
        try:
            bound = inspect.signature(body).bind(workflow, *args, **kwargs)
            bound.apply_defaults()  # run() and run(x=<its default>) are the same input
            self.input = dict(list(bound.arguments.items())[1:])
        except TypeError:
            self.input = {"args": list(args), "kwargs": kwargs}

    def __enter__(self) -> _Run:
        wf = self.workflow
        resuming, wf._resuming = wf._resuming, None
        wf._claim(self)
        try:
            wf._load_for_run()
            if wf.storage is not None:
                continued = wf.storage.record_run_start(
                    self.run_id, wf.session_id, wf.name, self.input, resuming=resuming)
                done = 0
                if continued is not None:  # the run that waited goes on, under its own id
                    self.run_id = continued.run_id
                    self.answers = {given.key: given for given in continued.answers}
                    done = wf.storage.step_log.count(wf.session_id, self.run_id)
                self.steps = RunSteps(
                    wf.storage.step_log, session_id=wf.session_id, workflow_name=wf.name,
                    run_id=self.run_id, refreshed=wf._refreshed, numbered_from=done,
                ).open(wf)
            wf.run_id = self.run_id
        except BaseException:
            wf._release()
            raise
        return self

    def ask(self, text: str, options: list[Any] | None, default: Any) -> Any:
        """The answer this run was given to ``text``; else stop the run (see Workflow.ask)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"ask() needs the question as non-empty text, not {text!r}")
        if options is not None:
            if isinstance(options, (str, bytes, dict)) or not hasattr(options, "__iter__"):
                raise TypeError(f"ask({text!r}): options is a list of answers, not {options!r}")
            options = list(options)
            if not options:
                raise ValueError(f"ask({text!r}): options is empty; pass None for free text")
            if default is not None and not any(same_json(default, o) for o in options):
                raise ValueError(f"ask({text!r}): default {default!r} is not one of the options")
        for value, what in ((options, "options"), (default, "default")):
            reason = not_plain_json(value, what)
            if reason is not None:  # it would come back as something else (a tuple as a list)
                raise TypeError(f"ask({text!r}): {reason}")
        identity = encode_state({"text": text, "options": options}).document
        with self._ask_lock:
            self._asked[identity.decode()] = times = self._asked.get(identity.decode(), 0) + 1
            key = hashlib.sha256(identity + b"#%d" % times).hexdigest()[:32]
            if key in self.answers:
                return self.answers[key].answer
            if self.workflow.storage is None:
                raise RuntimeError(
                    f"workflow {self.workflow.name!r} has no storage: ask({text!r}) cannot wait "
                    "for an answer (give the workflow a storage)"
                )
            if self.question is None:
                self.question = Question(text, options, default, key, time.time())
            raise WaitingForAnswer(self.question.text)

    def paused(self) -> RunResponse:
        """The run's last response: the question it waits for (its state saved first)."""
        question = self.question
        assert question is not None, "paused() follows an ask"
        wf = self.workflow
        response = self.stamp(RunResponse(
            content=question.text, event=RunEvent.run_paused, question=question,
            resume=functools.partial(wf.resume, run_id=self.run_id, question=question)))
        wf.write_to_storage()
        self.completion_handed_out = True
        return response

    def stamp(self, item: Any) -> RunResponse:
        """Wrap and tag one yielded (or returned) item; save first if it announces completion.

        A chunk or answer wfnb knows becomes its text, reasoning, tool calls and usage; any other
        value is kept as the content (its str() is the recorded output).
        """
        wf = self.workflow
        if isinstance(item, RunResponse):
            if item.event == RunEvent.run_paused.value and item.question is not self.question:
                raise NestedQuestionError(item, wf.name)
            response = item
            self.collected.take(item)
        else:
            response = self._adapt(item)
        response.run_id, response.session_id = self.run_id, wf.session_id
        response.workflow_name = wf.name
        if response.event in COMPLETION_EVENTS:
            wf.write_to_storage()
            self.completion_handed_out = True
        wf.run_response = response
        return response

    def _adapt(self, item: Any) -> RunResponse:
        try:
            piece, calls = self.collected.take(item)
        except UnknownChunkError:
            response = RunResponse(content=item)
            self.collected.take(response)
            return response
        return RunResponse(
            content=piece.text or None, reasoning_content=piece.reasoning or None,
            tool_calls=calls, usage=self.collected.usage if piece.usage is not None else None,
        )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        wf = self.workflow
        status, message = "completed", None
        try:
            if kind is None or (kind is GeneratorExit and self.completion_handed_out):
                try:
                    wf.write_to_storage()
                except BaseException as exc:  # KeyboardInterrupt too: the state was not saved
                    status = "interrupted" if isinstance(exc, _STOPS) else "failed"
                    message = f"saving the final state failed: {exc!r}"
                    raise
                if self.question is not None:  # even if the run caught WaitingForAnswer
                    status = "waiting"
                    wf._paused = (self.run_id, *self.call)
            elif issubclass(kind, (GeneratorExit, *_STOPS)):
                status = "interrupted"
            else:
                status, message = "failed", f"{kind.__name__}: {error}"
        finally:
            if status != "completed":
                wf._abandoned_by = self.run_id
            served = self.steps.close() if self.steps is not None else []
            usage = self.collected.usage
            try:
                if wf.storage is not None:
                    wf.storage.record_run_end(
                        self.run_id, status=status, output="".join(self.collected.texts),
                        error=message, version=wf.version or None, session_id=wf.session_id,
                        input_tokens=usage.input_tokens if usage else None,
                        output_tokens=usage.output_tokens if usage else None,
                        served_steps=served,
                        question=self.question if status == "waiting" else None,
                    )
            except StorageError as failure:
                if kind is None and status in ("completed", "waiting"):
                    raise  # a question nobody could answer must not look asked
                # The run's own error (or its final save's) is on its way out: it stays the one
                # raised, rather than being replaced by this consequence of the same outage.
                logger.warning("session %r: run %s ended %s but could not be recorded: %s",
                               wf.session_id, self.run_id, status, failure)
            finally:
                wf._release()


def _wrap(body: _Body) -> _Body:
    """Make ``body`` a run: the same kind of callable, with the run lifecycle around it."""
    if inspect.isasyncgenfunction(body):

        async def run_async_gen(self: Workflow, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            with _Run(self, body, args, kwargs) as run:
                with _until_asked():
                    async for item in body(self, *args, **kwargs):
                        yield run.stamp(item)
                if run.question is not None:
                    yield run.paused()

        wrapper: Any = run_async_gen
    elif inspect.iscoroutinefunction(body):

        async def run_coroutine(self: Workflow, *args: Any, **kwargs: Any) -> RunResponse:
            with _Run(self, body, args, kwargs) as run:
                returned = None
                with _until_asked():
                    returned = await body(self, *args, **kwargs)
                return run.paused() if run.question is not None else run.stamp(returned)

        wrapper = run_coroutine
    elif inspect.isgeneratorfunction(body):

        def run_generator(self: Workflow, *args: Any, **kwargs: Any) -> Iterator[RunResponse]:
            with _Run(self, body, args, kwargs) as run:
                with _until_asked():
                    for item in body(self, *args, **kwargs):
                        yield run.stamp(item)
                if run.question is not None:
                    yield run.paused()

        wrapper = run_generator
    else:

        def run_function(self: Workflow, *args: Any, **kwargs: Any) -> RunResponse:
            with _Run(self, body, args, kwargs) as run:
                returned = None
                with _until_asked():
                    returned = body(self, *args, **kwargs)
                return run.paused() if run.question is not None else run.stamp(returned)

        wrapper = run_function
    functools.update_wrapper(wrapper, body)
    wrapper._wfnb_wrapped = True
    return wrapper  # type: ignore[no-any-return]


@contextlib.contextmanager
def _until_asked() -> Iterator[None]:
    """Let ``ask`` stop the run: swallow WaitingForAnswer, alone or as every error of an
    exception group (the branches of an ``asyncio.TaskGroup`` that asked)."""
    try:
        yield
    except BaseException as error:
        if not _asked(error):
            raise


def _asked(error: BaseException) -> bool:
    if sys.version_info >= (3, 11) and isinstance(error, BaseExceptionGroup):  # noqa: F821
        return all(_asked(inner) for inner in error.exceptions)
    return isinstance(error, WaitingForAnswer)


def _call_from(
    method: Callable[..., Any], arguments: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments that bind to ``method`` as ``arguments`` (a run's
    input, by parameter name: ``*args`` and ``**kwargs`` under their own names)."""
    parameters = inspect.signature(method).parameters.values()
    spread = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.name not in arguments:
            continue
        value = arguments[parameter.name]
        if parameter.kind is parameter.VAR_POSITIONAL:
            args.extend(value)
        elif parameter.kind is parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif parameter.kind is parameter.POSITIONAL_ONLY or (
                spread and parameter.kind is parameter.POSITIONAL_OR_KEYWORD):
            args.append(value)
        else:
            kwargs[parameter.name] = value
    return tuple(args), kwargs


def _waiting_run(storage: WorkflowStorage, session_id: str, run_id: str | None) -> RunRecord:
    """The session's newest waiting run (or the run ``run_id``, if it waits)."""
    waiting = storage.waiting_runs(session_id)
    found = next((run for run in waiting if run_id in (None, run.run_id)), None)
    if found is None or found.question is None:
        which = f"run {run_id!r} of session {session_id!r} is not" if run_id else (
            f"session {session_id!r} has no run")
        raise RunNotWaitingError(f"{which} waiting for an answer")
    return found


def _continuing(
    workflow: Workflow, run_id: str, method: Callable[..., Any], args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``method(*args, **kwargs)``, made to continue the waiting run ``run_id`` when its run
    starts (for a stream: when it is first iterated, so a stream never iterated continues
    nothing)."""

    def target() -> None:
        workflow._resuming = run_id

    if inspect.isasyncgenfunction(method):

        async def continuing_async_gen() -> AsyncIterator[Any]:
            target()
            inner = method(*args, **kwargs)
            try:
                async for item in inner:
                    yield item
            finally:
                await inner.aclose()

        return continuing_async_gen()
    if inspect.iscoroutinefunction(method):

        async def continuing_coroutine() -> Any:
            target()
            return await method(*args, **kwargs)

        return continuing_coroutine()
    if inspect.isgeneratorfunction(method):

        def continuing_generator() -> Generator[Any, Any, Any]:
            target()
            return (yield from method(*args, **kwargs))

        return continuing_generator()
    target()
    return method(*args, **kwargs)
