"""The runs table: one row per run of a workflow on a session (status, input, output, timings,
tokens used, who runs it, and the question it waits for with the answers it was given).

A run that asks (``Workflow.ask``) ends ``waiting``, its question recorded. An answer is added
to the run (who, when) while it waits; a later run of the session with the same input
*continues* it: it takes the run over (same run id, ``running`` again, run by its process) in
one transaction, so two processes can never both continue one run.

A run is recorded ``running`` with its host, pid and process start (_process.py). A run left
``running`` by a process of this host that is gone (killed, crashed) becomes ``abandoned`` when
the session's next run starts and whenever its runs are listed; nothing else about it changes.
Runs recorded on another host are left as they are: whether that process lives cannot be known
from here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from wfnb._errors import AnswerRefusedError, RunNotWaitingError, UnstorableStateError
from wfnb.storage._codec import decode_state, encode_state
from wfnb.storage._database import Database, Transaction
from wfnb.storage._models import Answer, Question, RunRecord, listed_time
from wfnb.storage._process import has_ended, host, process_start
from wfnb.storage._schema import asked
from wfnb.storage._steps import ServedCall, insert_served


def record_start(
    db: Database, run_id: str, session_id: str, workflow_name: str | None, run_input: Any,
    *, resuming: str | None = None,
) -> RunRecord | None:
    """Record that a run began (status ``running``, run by this process), and mark the
    session's runs whose process is gone ``abandoned``; all in one transaction.

    A waiting run of the session with the same input (or the run ``resuming``, whatever its
    input), or one given answers that then failed, is continued instead: it is taken over and
    returned, and nothing new is recorded.
    RunNotWaitingError if the run ``resuming`` does not wait.
    """
    recorded = describe(run_input)  # encoded once: it finds the run to continue, or is stored
    with db.transaction("record the run", session_id, write=True) as tx:
        _abandon(tx, _ended_runs(tx, session_id))
        continued = _take_waiting(tx, session_id, recorded, resuming)
        if continued is None:
            tx.execute(
                sa.insert(db.tables.runs).values(
                    run_id=run_id, session_id=session_id, workflow_name=workflow_name,
                    status="running", input=recorded, started_at=time.time(),
                    **_owner(),
                )
            )
    return continued


#: how a continued run can end short of completing; its answers are not lost: taken over again
_ANSWERED_AND_STOPPED = ("failed", "interrupted", "abandoned")


def _take_waiting(
    tx: Transaction, session_id: str, run_input: str, run_id: str | None
) -> RunRecord | None:
    """Take over the newest waiting run with this input (or the run ``run_id``): ``running``
    again, by this process, its question cleared and its answers kept. So is the newest run
    with this input that was given answers and then failed, was interrupted or killed: like
    completed steps, answers given are not asked for again."""
    r = tx.db.tables.runs
    query = sa.select(r).where(r.c.session_id == session_id)
    if run_id is None:  # the newest run with this input a question touched (an index lookup)
        query = query.where(asked(r), r.c.status != "running", r.c.input == run_input).order_by(
            r.c.started_at.desc()).limit(1)
    else:
        query = query.where(r.c.run_id == run_id)
    row = tx.execute(query.with_for_update()).first()
    if run_id is not None and (row is None or row.status != "waiting"):
        raise RunNotWaitingError(
            _not_waiting(session_id, run_id, _run(row) if row is not None else None))
    if row is None or not (row.status == "waiting" or (
            row.status in _ANSWERED_AND_STOPPED and _latest(tx, row))):
        return None
    tx.execute(sa.update(r).where(r.c.run_id == row.run_id).values(
        status="running", question=None, error=None, ended_at=None, **_owner()))
    return dataclasses.replace(_run(row), status="running", question=None, ended_at=None)


def _owner() -> dict[str, Any]:
    """The columns saying which process runs a run: this one."""
    pid = os.getpid()
    return {"host": host(), "pid": pid, "process_start": process_start(pid)}


def _latest(tx: Transaction, row: sa.Row[Any]) -> bool:
    """Whether no run with the same input started after this one (a stopped run's answers are
    taken over only by the next run with its input, never past a later one)."""
    r = tx.db.tables.runs
    later = sa.select(r.c.run_id).where(
        r.c.session_id == row.session_id, r.c.input == row.input,
        r.c.started_at > row.started_at).limit(1)
    return tx.execute(later).first() is None


def answer(
    db: Database, session_id: str, given: Any, *, run_id: str | None, by: str,
    question_key: str | None = None,
) -> RunRecord:
    """Record ``given`` as the answer to the question a run waits for (the session's newest
    waiting run, without ``run_id``); returns the run as it is now.

    RunNotWaitingError if the run (or the session) waits for nothing; AnswerRefusedError if the
    answer is not one of the question's options, or the question has an answer already.
    """
    r = db.tables.runs
    query = sa.select(r).where(r.c.session_id == session_id)
    if run_id is not None:
        query = query.where(r.c.run_id == run_id)
    else:
        query = query.where(asked(r), r.c.status == "waiting").order_by(
            r.c.started_at.desc()).limit(1)
    with db.transaction("record an answer", session_id, write=True) as tx:
        row = tx.execute(query.with_for_update()).first()
        run = _run(row) if row is not None else None
        if run is None or run.status != "waiting" or run.question is None:
            raise RunNotWaitingError(_not_waiting(session_id, run_id, run))
        question = run.question
        if question_key is not None and question_key != question.key:
            raise AnswerRefusedError(
                f"session {session_id!r}, run {run.run_id}: that answer was for an earlier "
                f"question; the run now asks {question.text!r}: answer that one"
            )
        taken = next((done for done in run.answers if done.key == question.key), None)
        if taken is not None:
            raise AnswerRefusedError(
                f"session {session_id!r}, run {run.run_id}: {question.text!r} was answered "
                f"already ({taken.answer!r}, by {taken.by}); continue the run to use it",
                answered_already=True,
            )
        if question.options is not None and not any(
                same_json(given, option) for option in question.options):
            shown = ", ".join(orjson.dumps(option).decode() for option in question.options)
            raise AnswerRefusedError(
                f"session {session_id!r}, run {run.run_id}: {given!r} is not an answer to "
                f"{question.text!r}; answer one of {shown}"
            )
        answers = (*run.answers, Answer(question.key, question.text, given, by, time.time()))
        tx.execute(sa.update(r).where(r.c.run_id == run.run_id).values(
            answers=_json([done.document() for done in answers])))
    return dataclasses.replace(run, answers=answers)


def not_plain_json(value: Any, where: str = "") -> str | None:
    """Why ``value`` is not plain JSON (text, a number, a boolean, null, a list, an object with
    text keys), naming where; None if it is. Questions and answers are stored as plain JSON,
    so anything else would come back as something else (a tuple as a list, a date as text)."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'the value'} is {value!r}"
    if isinstance(value, list):
        return next((reason for index, item in enumerate(value)
                     if (reason := not_plain_json(item, f"{where}[{index}]")) is not None), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where or 'the value'} has a key {key!r} that is not text"
            reason = not_plain_json(item, f"{where}[{key!r}]")
            if reason is not None:
                return reason
        return None
    return (f"{where or 'the value'} is of type {type(value).__name__}, not plain JSON (text, "
            "numbers, booleans, null, lists, objects)")


def same_json(one: Any, other: Any) -> bool:
    """Equal as JSON: ``1`` is not ``True`` nor ``1.0``, key order does not matter."""
    return orjson.dumps(one, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        other, option=orjson.OPT_SORT_KEYS)


def _not_waiting(session_id: str, run_id: str | None, run: RunRecord | None) -> str:
    if run_id is None:
        return f"session {session_id!r} has no run waiting for an answer"
    if run is None:
        return f"session {session_id!r} has no run {run_id!r}"
    return (f"session {session_id!r}, run {run_id}: it is {run.status}, not waiting for an "
            "answer (it went on, or never asked)")


def waiting(db: Database, session_id: str) -> list[RunRecord]:
    """The session's runs waiting for an answer, newest first."""
    r = db.tables.runs
    query = (sa.select(r).where(r.c.session_id == session_id, asked(r), r.c.status == "waiting")
             .order_by(r.c.started_at.desc()))
    with db.transaction("read waiting runs", session_id) as tx:
        return [_run(row) for row in tx.execute(query)]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ended_runs(tx: Transaction, session_id: str) -> list[str]:
    """The session's ``running`` runs whose process, on this host, is gone."""
    r = tx.db.tables.runs
    running = tx.execute(
        sa.select(r.c.run_id, r.c.pid, r.c.process_start).where(
            r.c.session_id == session_id, r.c.status == "running", r.c.host == host(),
            r.c.pid.is_not(None))
    )
    return [row.run_id for row in running if has_ended(row.pid, row.process_start)]


def _abandon(tx: Transaction, run_ids: list[str]) -> None:
    """Mark these runs ``abandoned`` if they are still ``running`` (only the status changes)."""
    r = tx.db.tables.runs
    if run_ids:
        tx.execute(sa.update(r).where(r.c.run_id.in_(run_ids), r.c.status == "running")
                   .values(status="abandoned"))


def record_end(
    db: Database,
    run_id: str,
    *,
    status: str,
    output: str | None,
    error: str | None,
    version: int | None,
    session_id: str | None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    served_steps: Sequence[ServedCall] = (),
    question: Question | None = None,
) -> None:
    """Record how a run ended: completed, failed, interrupted or waiting (with ``question``),
    and the tokens it used, with, in the same transaction, its step calls served and not
    recorded yet."""
    r = db.tables.runs
    with db.transaction("record the run", session_id, write=True) as tx:
        tx.execute(
            sa.update(r).where(r.c.run_id == run_id).values(
                status=status, output=output, error=error, version=version,
                ended_at=time.time(), input_tokens=input_tokens, output_tokens=output_tokens,
                question=_json(question.document()) if question is not None else None,
            )
        )
        insert_served(tx, served_steps)


def runs(db: Database, session_id: str, *, limit: int | None) -> list[RunRecord]:
    """The session's runs, newest first (those of a process now gone marked ``abandoned``)."""
    r = db.tables.runs
    with db.transaction("read runs", session_id) as tx:
        ended = _ended_runs(tx, session_id)
    if ended:  # a write only when there is something to mark
        with db.transaction("mark abandoned runs", session_id, write=True) as tx:
            _abandon(tx, ended)
    query = (
        sa.select(r).where(r.c.session_id == session_id)
        .order_by(r.c.started_at.desc()).limit(limit)
    )
    with db.transaction("read runs", session_id) as tx:
        return [_run(row) for row in tx.execute(query)]


def _run(row: sa.Row[Any]) -> RunRecord:
    """A recorded run; a damaged row (input not JSON, a time out of range) is listed too, its
    input as the stored text, saying what is wrong with it."""
    damage: list[str] = []
    run_input: Any = row.input
    if run_input is not None:
        try:
            run_input = orjson.loads(run_input)
        except orjson.JSONDecodeError:
            damage.append("input is not JSON")
    question = _recorded(row.question, "question", damage)
    answers = _recorded(row.answers, "answers", damage) or []
    try:
        asked = Question(**question) if question is not None else None
        given = tuple(Answer(**done) for done in answers)
    except TypeError:
        damage.append("question or answers not as wfnb records them")
        asked, given = None, ()
    return RunRecord(
        row.run_id, row.session_id, row.workflow_name, row.status, run_input, row.output,
        row.error, row.version, listed_time(row.started_at, "started_at", damage),
        listed_time(row.ended_at, "ended_at", damage) if row.ended_at is not None else None,
        row.input_tokens, row.output_tokens, question=asked, answers=given,
        damaged="; ".join(damage) or None,
    )


def _recorded(text: str | None, what: str, damage: list[str]) -> Any:
    """A JSON column's value (None if absent or damaged, the damage noted)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        damage.append(f"{what} is not JSON")
        return None


UNSTORABLE = "$unstorable"  # lists the arguments of an input that were kept by repr only


def describe(value: Any) -> str:
    """A run's input as JSON text, encoded as session_state is (dates, tuples, Decimals...
    tagged, so ``recorded_input`` gives them back exactly). Arguments the codec refuses (a
    client object) are kept for people by their repr, and named under ``"$unstorable"``."""
    try:
        return encode_state(value, root="the run's input").document.decode()
    except (UnstorableStateError, TypeError):
        pass
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        return _shown(value)
    kept: dict[str, Any] = {}
    for name, argument in value.items():
        try:
            kept[name] = orjson.loads(encode_state({name: argument}).document)[name]
        except (UnstorableStateError, TypeError):
            kept[name] = repr(argument)
            kept.setdefault(UNSTORABLE, []).append(name)
    if UNSTORABLE in kept:  # after the arguments, whatever order they were refused in
        kept[UNSTORABLE] = kept.pop(UNSTORABLE)
    return _shown(kept)


def _shown(value: Any) -> str:
    """JSON for people: values JSON cannot hold by their repr."""
    try:
        return orjson.dumps(value, default=repr).decode()
    except TypeError:  # a cycle, an int beyond 64 bits, a lone surrogate: the whole repr, then
        return orjson.dumps(repr(value).encode(errors="backslashreplace").decode()).decode()


def recorded_input(run: RunRecord) -> dict[str, Any] | None:
    """The arguments a run was called with, exactly as given, if its record keeps them so
    (None: some were kept by repr only, as ``"$unstorable"`` names)."""
    if not isinstance(run.input, dict) or UNSTORABLE in run.input:
        return None
    return decode_state(orjson.dumps(run.input))
