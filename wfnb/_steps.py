"""``@step``: calls a run records, so that a later run is served their outputs instead of paying
for them again.

Inside a run, a call of a step function or method is looked up first: a completed record with
the same key (the step's name, the canonical JSON of its arguments without ``self``, and a hash
of its source or its ``version``), in the session (``scope="session"``) or in every session of
the workflow (``scope="workflow"``), not older than ``ttl`` nor than a ``Workflow.refresh`` of
it, is served: its stored output is returned (a generator step's chunks are yielded again) and
the body does not run. Otherwise the body runs and its output is recorded with the
session_state codec. So a run after a failure, an interrupt, a kill or a kernel restart is served
every step that completed and executes from the first one that did not. Outside a run (or in a
workflow without storage) a step is a plain call.

Two processes that run the same key at once may both execute it; the record that ends later is
the one served afterwards.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import hashlib
import inspect
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from types import CodeType, TracebackType
from typing import Any, TypeVar, overload

import orjson

from wfnb._errors import (
    StorageError,
    UnkeyableArgumentError,
    UnstorableStateError,
    WaitingForAnswer,
)
from wfnb._events import RunResponse
from wfnb.storage import (
    SCOPES,
    Scope,
    ServedCall,
    StepCall,
    StepLog,
    encode_output,
    encode_state,
)

logger = logging.getLogger("wfnb")

_F = TypeVar("_F", bound=Callable[..., Any])
StepObserver = Callable[["StepEvent"], None]


@dataclass(frozen=True)
class StepEvent:
    """What a step call is doing, for displays: ``running``, ``served`` (from a record),
    ``completed``, ``failed``, or ``stopped`` (by a question its run asked)."""

    name: str
    state: str
    session_id: str
    workflow_name: str | None
    run_id: str | None


_observers: list[StepObserver] = []
_current: contextvars.ContextVar[RunSteps | None] = contextvars.ContextVar(
    "wfnb_run_steps", default=None
)
_by_instance: dict[int, RunSteps] = {}  # id(workflow) -> its running run's steps
_registry_lock = threading.Lock()
_refreshing: list[float] = []  # start times of the refreshing() blocks open now


@contextlib.contextmanager
def refreshing() -> Iterator[None]:
    """Runs started inside the block execute every step again (``%workflow --refresh``):
    records that ended before the block began are not served."""
    _refreshing.append(time.time())
    try:
        yield
    finally:
        _refreshing.pop()


@contextlib.contextmanager
def observe_steps(observer: StepObserver) -> Iterator[None]:
    """Call ``observer`` with every StepEvent while the block runs."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


class RunSteps:
    """One run's steps: lookups, records, and the served calls waiting to be recorded (they are
    written with the next executed step, or when the run ends: a hit costs one read)."""

    def __init__(
        self,
        log: StepLog,
        *,
        session_id: str,
        workflow_name: str | None,
        run_id: str,
        refreshed: Mapping[str | None, float],
        numbered_from: int = 0,
    ) -> None:
        """``numbered_from``: the calls recorded already under ``run_id`` (a run continued
        after a question numbers its calls on from them)."""
        self.log, self.session_id, self.workflow_name, self.run_id = (
            log, session_id, workflow_name, run_id
        )
        self._refreshed = dict(refreshed)
        if _refreshing:
            self._refreshed[None] = max(self._refreshed.get(None, 0.0), *_refreshing)
        self._served: list[ServedCall] = []
        self._served_lock = threading.Lock()  # steps may be called from several threads
        self._numbers = itertools.count(numbered_from + 1)  # next() on a count is atomic
        self.closed = False
        self._owner: int | None = None
        self._token: contextvars.Token[RunSteps | None] | None = None

    def open(self, owner: object) -> RunSteps:
        """Make this the run that steps called now (and methods of ``owner``) record into."""
        self._owner = id(owner)
        with _registry_lock:
            _by_instance[self._owner] = self
        self._token = _current.set(self)
        return self

    def close(self) -> list[ServedCall]:
        """Stop recording; the served calls not recorded yet (the run's end records them)."""
        self.closed = True
        with _registry_lock:
            if self._owner is not None and _by_instance.get(self._owner) is self:
                del _by_instance[self._owner]
        if _current.get() is self:
            with contextlib.suppress(ValueError, RuntimeError):  # set in another context
                _current.reset(self._token)  # type: ignore[arg-type]
        return self._take_served()

    def _take_served(self) -> list[ServedCall]:
        with self._served_lock:
            served, self._served = self._served, []
        return served

    def _call(self, spec: _Spec, key: str) -> StepCall:
        """A new call's identity; its id is the run's and the call's number (unique, and in
        call order within the run)."""
        return StepCall(f"{self.run_id}-{next(self._numbers):06d}", self.session_id,
                        self.workflow_name,
                        self.run_id, key, spec.name)

    def serve(self, spec: _Spec, key: str) -> dict[str, Any] | None:
        """The stored output document of a call with ``key``, if one may be served."""
        since = 0.0
        if self._refreshed:
            since = max(
                [at for name, at in self._refreshed.items() if name is None or spec.named(name)],
                default=0.0,
            )
        if spec.ttl is not None:
            since = max(since, time.time() - spec.ttl)
        found = self.log.find(key, session_id=self.session_id, workflow_name=self.workflow_name,
                              scope=spec.scope, since=since)
        if found is None:
            return None
        served = ServedCall(self._call(spec, key), found.step_id, time.time())
        with self._served_lock:
            self._served.append(served)
        _emit(StepEvent(spec.name, "served", self.session_id, self.workflow_name, self.run_id))
        return found.document

    def execute(self, spec: _Spec, key: str) -> _Execution:
        """A call whose body runs: recorded running now, then completed or failed."""
        return _Execution(self, spec, self._call(spec, key), self._take_served())


class _Execution:
    """The record of one executed call; ``complete(document)`` stores its output, leaving the
    block with an exception records the failure."""

    def __init__(self, run: RunSteps, spec: _Spec, call: StepCall,
                 served: list[ServedCall]) -> None:
        self.run, self.spec, self.call, self._served = run, spec, call, served
        self._done = False

    def __enter__(self) -> _Execution:
        self.run.log.begin(self.call, self._served)
        _emit(StepEvent(self.spec.name, "running", self.run.session_id, self.run.workflow_name,
                        self.run.run_id))
        return self

    def complete(self, document: dict[str, Any]) -> None:
        output, tagged = encode_output(self.spec.name, document)
        self.run.log.finish(self.call, output=output, tagged=tagged)
        self._done = True
        _emit(StepEvent(self.spec.name, "completed", self.run.session_id, self.run.workflow_name,
                        self.run.run_id))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _traceback: TracebackType | None) -> None:
        if self._done or kind is None:
            return
        status = "failed"
        if issubclass(kind, GeneratorExit):
            message = "closed before it finished (its consumer stopped)"
        elif issubclass(kind, WaitingForAnswer):
            status, message = "stopped", f"{error}; it runs again when the run goes on"
        else:
            message = f"{kind.__name__}: {error}"
        try:
            self.run.log.finish(self.call, error=message, status=status)
        except StorageError as failure:  # the step's own error is the one raised
            logger.warning("session %r: step %s failed (%s) and could not be recorded: %s",
                           self.run.session_id, self.spec.name, message, failure)
        _emit(StepEvent(self.spec.name, status, self.run.session_id, self.run.workflow_name,
                        self.run.run_id))


def _emit(event: StepEvent) -> None:
    if not _observers:
        return
    for observer in list(_observers):
        try:
            observer(event)
        except Exception:  # a display's trouble never fails a run
            logger.exception("a step observer failed")


class _Spec:
    """What ``@step`` was told, and how a call of it is keyed."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None,
        version: str | None,
        ttl: float | dt.timedelta | None,
        scope: str,
        key: Callable[..., Any] | None,
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f"@step scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        seconds = ttl.total_seconds() if isinstance(ttl, dt.timedelta) else ttl
        if seconds is not None and seconds <= 0:
            raise ValueError(f"@step ttl must be positive (seconds or a timedelta), not {ttl!r}")
        local = function.__qualname__.rsplit("<locals>.", 1)[-1]
        self.function = function
        self.name = name or local
        self.version = version
        self.ttl = seconds
        self.scope: Scope = "workflow" if scope == "workflow" else "session"
        self.key_function = key
        self.signature = inspect.signature(function)
        parameters = self.signature.parameters.values()
        simple = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
        # all-positional calls of such a signature need no bind(): zip names with arguments
        self._positional = tuple(self.signature.parameters) if simple else None
        self._first = next(iter(self.signature.parameters), "")
        # defined in a class body, taking self (or cls): that first argument is not keyed
        self.is_method = "." in local and self._first in ("self", "cls")
        self._code: str | None = None

    def named(self, name: str) -> bool:
        """Whether ``name`` is this step's name, or its part after the last dot."""
        return self.name == name or self.name.endswith("." + name)

    @functools.cached_property
    def _prefix(self) -> bytes:
        return orjson.dumps([self.name, self.code]) + b"\n"

    @property
    def code(self) -> str:
        """``version:<v>``, or a hash of the function's source (of its code object when the
        source cannot be read)."""
        if self._code is None:
            if self.version is not None:
                self._code = f"version:{self.version}"
            else:
                try:
                    text = inspect.getsource(self.function).encode()
                except (OSError, TypeError):
                    text = _fingerprint(self.function.__code__)
                self._code = "source:" + hashlib.sha256(text).hexdigest()
        return self._code

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The call's key: a hash of the name, the code and the canonical JSON of the
        arguments (without ``self``), or of what ``key=`` made of them."""
        own_args = args[1:] if self.is_method else args
        if self.key_function is not None:
            material = {"key": self.key_function(*own_args, **kwargs)}
            try:
                encoded = encode_state(material, root=f"step {self.name!r}: key=").document
            except UnstorableStateError as refused:
                raise UnkeyableArgumentError(self.name, "key=", refused.reason) from None
        else:
            names = self._positional
            if not kwargs and names is not None and len(args) == len(names):
                arguments = dict(zip(names, args, strict=True))
            else:
                bound = self.signature.bind(*args, **kwargs)
                bound.apply_defaults()
                arguments = dict(bound.arguments)
            if self.is_method:
                del arguments[self._first]
            encoded = self._encode_arguments(arguments)
        if encoded.count(b"{") > 1:  # nested objects: their keys in sorted order
            encoded = orjson.dumps(orjson.loads(encoded), option=orjson.OPT_SORT_KEYS)
        # (the top level is in the signature's order already)
        return hashlib.sha256(self._prefix + encoded).hexdigest()

    def _encode_arguments(self, arguments: dict[str, Any]) -> bytes:
        try:
            return encode_state(arguments).document
        except UnstorableStateError:
            for argument, value in arguments.items():  # which one: name it
                try:
                    encode_state({argument: value}, root="")
                except UnstorableStateError as refused:
                    where = argument + refused.path[len(orjson.dumps([argument]).decode()):]
                    raise UnkeyableArgumentError(self.name, where, refused.reason) from None
            raise


def _fingerprint(code: CodeType) -> bytes:
    """Bytes that change when a function's code does (for functions without readable source)."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        parts.append(_fingerprint(const) if isinstance(const, CodeType) else repr(const).encode())
    return b"\0".join(parts)


def active_steps(owner: object | None = None) -> RunSteps | None:
    """The steps of the run that ``owner`` (a Workflow) is running, else of the run this code
    runs in; None outside a run. (What a step call records into; anything else a run records
    by key, a human's answer say, can use the same.)"""
    if owner is not None:
        mine = _by_instance.get(id(owner))  # one dict read: atomic, needs no lock
        if mine is not None:
            return mine
    current = _current.get()
    return current if current is not None and not current.closed else None


def _run_of(spec: _Spec, args: tuple[Any, ...]) -> RunSteps | None:
    """The run a call records into: its instance's, for a method; else the current one."""
    return active_steps(args[0] if spec.is_method and args else None)


@overload
def step(function: _F, /) -> _F: ...


@overload
def step(
    *,
    name: str | None = None,
    version: str | None = None,
    ttl: float | dt.timedelta | None = None,
    scope: str = "session",
    key: Callable[..., Any] | None = None,
) -> Callable[[_F], _F]: ...


def step(
    function: Any = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    ttl: float | dt.timedelta | None = None,
    scope: str = "session",
    key: Callable[..., Any] | None = None,
) -> Any:
    """Make a function or method a step (see the module docstring): ``@step`` or
    ``@step(name=, version=, ttl=, scope="session"|"workflow", key=fn)``.

    ``name``: what records and ``refresh`` call it (default: its qualified name);
    ``version``: replaces the source hash in the key (change it to say the step changed);
    ``ttl``: seconds (or a timedelta) a record may be served for; ``scope="workflow"``: served
    from any session of the same workflow; ``key``: called with the step's arguments (without
    ``self``), returns a storable value that keys the call instead of the arguments.
    """

    def decorate(body: _F) -> _F:
        spec = _Spec(body, name=name, version=version, ttl=ttl, scope=scope, key=key)
        wrapper = _wrap(spec)
        functools.update_wrapper(wrapper, body)
        wrapper.step_name = spec.name
        return wrapper  # type: ignore[no-any-return]

    return decorate(function) if function is not None else decorate


def _wrap(spec: _Spec) -> Any:
    """The wrapper of the function's kind: plain, generator, coroutine or async generator."""
    body = spec.function
    if inspect.isasyncgenfunction(body):
        return _async_generator_step(spec)
    if inspect.iscoroutinefunction(body):
        return _coroutine_step(spec)
    if inspect.isgeneratorfunction(body):
        return _generator_step(spec)

    def function_step(*args: Any, **kwargs: Any) -> Any:
        run = _run_of(spec, args)
        if run is None:
            return body(*args, **kwargs)
        key = spec.key(args, kwargs)
        served = run.serve(spec, key)
        if served is not None:
            return served["output"]
        with run.execute(spec, key) as execution:
            output = body(*args, **kwargs)
            execution.complete({"output": output})
        return output

    return function_step


def chunks_document(chunks: list[Any], returned: Any) -> dict[str, Any]:
    """A generator step's output as stored: its chunks (a RunResponse as its content, type and
    event, its index listed in ``responses``) and what it returned."""
    document: dict[str, Any] = {"chunks": chunks, "returned": returned}
    responses = [index for index, chunk in enumerate(chunks) if isinstance(chunk, RunResponse)]
    if responses:
        document["chunks"] = [
            {"content": chunk.content, "content_type": chunk.content_type, "event": chunk.event}
            if isinstance(chunk, RunResponse) else chunk
            for chunk in chunks
        ]
        document["responses"] = responses
    return document


def replayed(document: dict[str, Any]) -> Iterator[Any]:
    """The chunks a stored generator step yields again (RunResponses rebuilt)."""
    responses = set(document.get("responses", ()))
    for index, chunk in enumerate(document["chunks"]):
        yield RunResponse(**chunk) if index in responses else chunk


def _generator_step(spec: _Spec) -> Any:
    body = spec.function

    def generator_step(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        run = _run_of(spec, args)
        if run is None:
            return (yield from body(*args, **kwargs))
        key = spec.key(args, kwargs)
        served = run.serve(spec, key)
        if served is not None:
            yield from replayed(served)
            return served["returned"]
        with run.execute(spec, key) as execution:
            chunks: list[Any] = []
            inner = body(*args, **kwargs)
            try:
                while True:
                    try:
                        chunk = next(inner)
                    except StopIteration as stop:
                        returned = stop.value
                        break
                    chunks.append(chunk)
                    yield chunk
            finally:
                inner.close()
            execution.complete(chunks_document(chunks, returned))
        return returned

    return generator_step


def _coroutine_step(spec: _Spec) -> Any:
    body = spec.function

    async def coroutine_step(*args: Any, **kwargs: Any) -> Any:
        run = _run_of(spec, args)
        if run is None:
            return await body(*args, **kwargs)
        key = spec.key(args, kwargs)
        served = run.serve(spec, key)
        if served is not None:
            return served["output"]
        with run.execute(spec, key) as execution:
            output = await body(*args, **kwargs)
            execution.complete({"output": output})
        return output

    return coroutine_step


def _async_generator_step(spec: _Spec) -> Any:
    body = spec.function

    async def async_generator_step(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        run = _run_of(spec, args)
        if run is None:
            async for chunk in body(*args, **kwargs):
                yield chunk
            return
        key = spec.key(args, kwargs)
        served = run.serve(spec, key)
        if served is not None:
            for chunk in replayed(served):
                yield chunk
            return
        with run.execute(spec, key) as execution:
            chunks: list[Any] = []
            inner = body(*args, **kwargs)
            try:
                async for chunk in inner:
                    chunks.append(chunk)
                    yield chunk
            finally:
                await inner.aclose()
            execution.complete(chunks_document(chunks, None))

    return async_generator_step
