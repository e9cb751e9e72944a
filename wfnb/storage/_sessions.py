"""Sessions: reading the current state, the compare-and-swap save, delete and restore.

A session's states live in its history: each save inserts one version row, either the full
state (exact JSON bytes) or a delta on the version before it (see _delta.py), plus a
compare-and-swap ``UPDATE ... WHERE version = expected`` of the small session row, in one
transaction. Loading reads the newest full row and the deltas after it. When the swap finds a
newer version, the two writers' changes are merged if they touched different top-level keys,
else :class:`~wfnb.SessionConflictError` is raised and nothing is written (_merge.py).

Version numbers are never reused under one session id: deleting a session records its last
version (the ``_deleted`` table) and a session created again numbers on from there. So an
expected version names one incarnation of the session: a writer still holding a version of a
deleted session never matches the new one (:class:`~wfnb.SessionDeletedError`), and a cached
head, the base of a delta, is the same content wherever its version matches.

Why deltas: rewriting a large state in place is the slowest thing a database does for wfnb
(SQLite frees and re-allocates every overflow page); appending what changed is cheap, and
history then costs little more disk than the state itself. A full row is written again when the
deltas since the last one reach the state's size or ``_MAX_DELTA_CHAIN`` rows, which bounds what
a load reads to about twice the state.

The latest document of recently used sessions is kept (the *head* cache), so that a save can
compute its delta and a load can skip the history rows when the database confirms it is current.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from wfnb._errors import (
    CorruptStateError,
    InvalidNameError,
    SaveContendedError,
    SessionConflictError,
    SessionDeletedError,
    SessionNotFoundError,
    StorageError,
)
from wfnb.storage import _history
from wfnb.storage._codec import (
    EncodedState,
    Parts,
    State,
    decode_state,
    encode_state,
    join_parts,
    may_hold_tags,
    parts_of,
)
from wfnb.storage._database import Database
from wfnb.storage._delta import make_delta
from wfnb.storage._engine import cause, log
from wfnb.storage._merge import changed_keys, merge_or_conflict
from wfnb.storage._models import SaveResult, StoredSession, listed_time
from wfnb.storage._search import check_text
from wfnb.storage._sql import VersionRow

_MAX_DELTA_CHAIN = 32  # delta rows after a full one, at most
_MIN_DELTA_STATE = 4096  # smaller states are stored whole: a delta would save little
# a save that keeps losing the swap to fresh writers gives up after this many rounds: 8
# processes saving their own keys of one session as fast as they can needed up to 54 on
# PostgreSQL (89 without the back-off), 10 on SQLite (docs/reliability.md)
_MAX_MERGE_ROUNDS = 128
_HEAD_CACHE_SIZE = 64  # sessions whose latest document is kept for the next save's delta
_MAX_SESSION_ID = 1024


def _back_off(lost: int) -> None:
    """After the second lost swap in a row, wait a random moment (doubling, up to 64 ms) before
    the next: writers that retry at once keep colliding (PostgreSQL does not queue them)."""
    if lost:
        time.sleep(random.uniform(0, 0.001 * 2 ** min(lost, 6)))


def check_session_id(session_id: object) -> str:
    """The session id, if it is a non-empty str of at most 1024 characters without NUL."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > _MAX_SESSION_ID:
        shown = repr(session_id) if len(repr(session_id)) < 80 else repr(session_id)[:60] + "..."
        raise InvalidNameError(
            f"session_id {shown} is not allowed: use a non-empty str of at most "
            f"{_MAX_SESSION_ID} characters"
        )
    return check_text(session_id, "session_id")


@dataclass(frozen=True)
class _Head:
    """A session's latest version as this storage object last saw it: the base of a delta."""

    version: int
    created_at: float  # with version, names the content: a deleted and re-created session differs
    document: bytes
    tagged: bool
    parts: Parts | None  # known when this object saved it; else computed only if needed
    chain: int  # delta rows since the last full row
    chain_bytes: int  # their total size

    @classmethod
    def of(cls, version: int, created_at: float, document: bytes, chain: list[VersionRow]) -> _Head:
        """The head read from ``chain``, the rows ``document`` was rebuilt from."""
        return cls(version, created_at, document, bool(chain[-1].tagged), None, len(chain) - 1,
                   sum(len(row.data) for row in chain[1:]))


    @classmethod
    def after(
        cls, head: _Head | None, delta: bytes | None, version: int, created_at: float,
        encoded: EncodedState,
    ) -> _Head:
        """The head once ``encoded`` is stored as ``version``: as ``delta`` on ``head``, or
        whole (``delta`` None)."""
        chain, chain_bytes = (
            (head.chain + 1, head.chain_bytes + len(delta))
            if head is not None and delta is not None else (0, 0)
        )
        return cls(version, created_at, encoded.document, encoded.tagged, encoded.parts, chain,
                   chain_bytes)


def _delta_on(head: _Head, document: bytes, parts: Parts) -> bytes | None:
    """``document`` as a delta on ``head`` when a save would store it so; None: store it whole
    (small states, a long chain, or a delta not much smaller than the state)."""
    if head.chain >= _MAX_DELTA_CHAIN or len(document) < _MIN_DELTA_STATE:
        return None
    delta = make_delta(head.document, document, head.parts, parts)
    if delta is not None and head.chain_bytes + len(delta) > len(document):
        return None
    return delta


def stored_rows(documents: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int | None, bytes]]:
    """``(base_version, data)`` for each of a session's successive versions ``(version,
    document)``, as saves store them: a delta on the version before, or the full document
    (base None). How an import writes a history compactly."""
    head: _Head | None = None
    for version, document in documents:
        encoded = EncodedState(parts_of(document), document)
        delta = _delta_on(head, document, encoded.parts) if head is not None else None
        yield (head.version if head is not None and delta is not None else None,
               delta if delta is not None else document)
        head = _Head.after(head, delta, version, 0.0, encoded)


class _SwapLost(Exception):
    """The compare-and-swap found another version (0: the session is gone); ``deleted`` is the
    last version of a session deleted under this id (0: none)."""

    def __init__(self, version: int, deleted: int) -> None:
        self.version, self.deleted = version, deleted

    def deleted_error(self, session_id: str, expected: int) -> SessionDeletedError | None:
        """The error for a writer whose expected version belongs to a deleted session."""
        if expected == 0 or (self.version and expected > self.deleted):
            return None  # a session that was not there, or the live one moved on: merge
        return SessionDeletedError(session_id, expected_version=expected,
                                   deleted_version=max(self.deleted, expected),
                                   stored_version=self.version)


class _StaleHead(Exception):
    """The cached head is of a session since deleted and created again at the same version."""


class Sessions:
    """The current state of each session: read, save (with merge), delete, restore."""

    def __init__(self, db: Database, keep_versions: int | None) -> None:
        self.db = db
        self.keep_versions = keep_versions
        self._heads: OrderedDict[str, _Head] = OrderedDict()
        self._heads_lock = threading.Lock()

    def read(self, session_id: str, version: int | None = None) -> StoredSession | None:
        """See :meth:`wfnb.storage.WorkflowStorage.read`."""
        check_session_id(session_id)
        with self.db.transaction("read the session", session_id) as tx:
            meta = tx.session(session_id)
            if meta is None:
                return None
            current, state_bytes, updated_at = meta.version, meta.state_bytes, meta.updated_at
            target = current if version is None else version
            head = self._head(session_id, target) if target == current else None
            if head is None or head.created_at != meta.created_at:
                chain, document = _history.rebuild(tx, session_id, target, current)
                head = _Head.of(target, meta.created_at, document, chain)
                state_bytes = chain[-1].state_bytes
                if target == current:
                    self._remember(session_id, head, keep=True)
                else:
                    updated_at = chain[-1].created_at  # when that version was saved
                del chain  # a large state's rows need not outlive its document
        state = self._decode(head.document, session_id, head.tagged, version)
        damage: list[str] = []
        created_at = listed_time(meta.created_at, "created_at", damage)
        return StoredSession(
            session_id, meta.workflow_name, target, state_bytes, created_at,
            listed_time(updated_at, "updated_at", damage), state, head.document,
            damaged="; ".join(damage) or None,
        )

    def _decode(
        self, document: bytes, session_id: str, tagged: Any, version: int | None = None
    ) -> State:
        try:
            return decode_state(document, bool(tagged))
        except (ValueError, KeyError, TypeError) as exc:
            at = f" version {version}" if version is not None else ""
            raise CorruptStateError(
                f"stored state{at} is not valid wfnb JSON ({exc}); the row is left as it is",
                table=self.db.name, session_id=session_id,
            ) from exc

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any] | EncodedState,
        *,
        expected_version: int,
        workflow_name: str | None = None,
        source: str = "save",
        run_id: str | None = None,
        force: bool = False,
    ) -> SaveResult:
        """See :meth:`wfnb.storage.WorkflowStorage.save`."""
        check_session_id(session_id)
        encoded = state if isinstance(state, EncodedState) else encode_state(state)
        loaded_version, ours = expected_version, encoded.parts
        merged_keys: set[str] = set()
        for round_ in range(_MAX_MERGE_ROUNDS):
            try:
                version, written = self._swap(
                    session_id, encoded, expected_version, workflow_name, source, run_id
                )
            except _SwapLost as lost:
                if force:
                    expected_version = lost.version
                    continue
                deleted = lost.deleted_error(session_id, expected_version)
                if deleted is not None:
                    raise deleted from None
                # the next swap expects the version the merge was made on, which may be newer
                # than the one this swap lost to
                encoded, taken, expected_version = self._merge(
                    session_id, encoded, expected_version
                )
                merged_keys |= taken
                _back_off(round_)
                continue
            merged = decode_state(encoded.document, encoded.tagged) if merged_keys else None
            return SaveResult(version, written, tuple(sorted(merged_keys)), merged)
        raise self._contended(session_id, ours, loaded_version, expected_version, merged_keys)

    def _contended(
        self, session_id: str, ours: Parts, loaded: int, last_seen: int, merged: set[str]
    ) -> SaveContendedError:
        """The error of a save that lost every round: which keys it changed, what it merged."""
        try:
            keys = changed_keys(self._parts_at(session_id, loaded) if loaded else {}, ours)
        except SessionNotFoundError:  # that version pruned meanwhile: name every key
            keys = set(ours)
        shown = ", ".join(repr(key) for key in sorted(keys)) or "(none)"
        return SaveContendedError(
            f"gave up saving after {_MAX_MERGE_ROUNDS} merge rounds: other writers saved the "
            f"session each time first (version {loaded} when loaded, {last_seen} at the last "
            f"round; their keys {sorted(merged)} were merged each time). Nothing was written; "
            f"the keys this save changed: {shown}. Save again.",
            table=self.db.name, session_id=session_id, keys=keys, rounds=_MAX_MERGE_ROUNDS,
        )

    def _swap(
        self,
        session_id: str,
        encoded: EncodedState,
        expected: int,
        workflow_name: str | None,
        source: str,
        run_id: str | None,
    ) -> tuple[int, bool]:
        """One compare-and-swap transaction; raises _SwapLost when the session moved on.

        The cached head (the base of the "unchanged" shortcut and of a delta) is trusted only
        when the session row still has its creation time: a session deleted and saved again by
        another writer can be at the same version with other content.
        """
        document = encoded.document
        head = self._head(session_id, expected)
        if head is not None and head.document == document:
            with self.db.transaction("save the session", session_id) as tx:
                row = tx.session(session_id)
            if row is not None and row.created_at == head.created_at:
                return expected, False
            self._remember(session_id, None)
            head = None
        delta = _delta_on(head, document, encoded.parts) if head is not None else None
        now = time.time()
        try:
            with self.db.transaction("save the session", session_id, write=True) as tx:
                swapped = (
                    tx.create_session(session_id, workflow_name, document, now) if expected == 0
                    else tx.update_session(session_id, workflow_name, document, now, expected)
                )
                if swapped is None:
                    raise _SwapLost(tx.current_version(session_id) or 0,
                                    tx.deleted_version(session_id))
                new = swapped.version
                if delta is not None and head is not None and (
                    swapped.created_at != head.created_at
                ):
                    raise _StaleHead  # rolled back: the delta's base is not what is stored
                tx.insert_version(
                    session_id, new, base=expected if delta is not None else None,
                    data=delta if delta is not None else document, tagged=encoded.tagged,
                    state_bytes=len(document), source=source, run_id=run_id, now=now,
                )
        except _StaleHead:
            self._remember(session_id, None)
            return self._swap(session_id, encoded, expected, workflow_name, source, run_id)
        self._prune_after_save(session_id, new)
        self._remember(session_id, _Head.after(head, delta, new, swapped.created_at, encoded))
        return new, True

    def _prune_after_save(self, session_id: str, version: int) -> None:
        """Apply ``keep_versions`` once per slack versions (a test on ``version`` alone would
        prune after every save), in a transaction of its own: the save is committed already."""
        keep = self.keep_versions
        if keep is None or version <= keep or (version - keep) % _history.prune_slack(keep):
            return
        try:
            with self.db.transaction("prune history", session_id, write=True) as tx:
                _history.prune_session(tx, session_id, version - keep + 1, None)
        except (StorageError, sa.exc.SQLAlchemyError) as error:
            failure = error.__cause__ if isinstance(error, StorageError) else error
            log.warning("session %r: saved as version %d, but pruning its history failed "
                        "(%s); a later save prunes it", session_id, version,
                        cause(failure or error))

    def _merge(
        self, session_id: str, ours: EncodedState, expected: int
    ) -> tuple[EncodedState, set[str], int]:
        """Our changes on top of the newer stored state (and its version), or
        SessionConflictError."""
        current = self.read(session_id)
        if current is None:
            raise SessionConflictError(
                session_id, keys=(), expected_version=expected, stored_version=0
            )
        theirs = parts_of(current.document)
        try:
            base = self._parts_at(session_id, expected) if expected else {}
        except SessionNotFoundError:  # history pruned: no common base, every key is contested
            raise SessionConflictError(
                session_id, keys=set(theirs) | set(ours.parts), expected_version=expected,
                stored_version=current.version,
            ) from None
        merged, taken = merge_or_conflict(session_id, base, ours.parts, theirs,
                                          expected_version=expected,
                                          stored_version=current.version)
        log.info("session %r: merged keys %s saved meanwhile by another writer",
                 session_id, sorted(taken))
        document = join_parts(merged)
        tagged = ours.tagged or may_hold_tags(document)
        return EncodedState(merged, document, tagged), taken, current.version

    def _parts_at(self, session_id: str, version: int) -> Parts:
        with self.db.transaction("read history", session_id) as tx:
            return parts_of(_history.document_at(tx, session_id, version))

    def _head(self, session_id: str, version: int) -> _Head | None:
        with self._heads_lock:
            head = self._heads.get(session_id)
        return head if head is not None and head.version == version else None

    def _remember(self, session_id: str, head: _Head | None, *, keep: bool = False) -> None:
        """Cache ``head`` as the session's latest; ``keep`` leaves a richer entry in place."""
        with self._heads_lock:
            known = self._heads.pop(session_id, None)
            if keep and known is not None and head is not None and known.version == head.version:
                head = known
            if head is not None:
                self._heads[session_id] = head
                while len(self._heads) > _HEAD_CACHE_SIZE:
                    self._heads.popitem(last=False)

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """See :meth:`wfnb.storage.WorkflowStorage.delete`."""
        check_session_id(session_id)
        t = self.db.tables
        with self.db.transaction("delete the session", session_id, write=True) as tx:
            current = tx.current_version(session_id)
            if current is None:
                return False
            if expected_version is not None and current != expected_version:
                raise SessionConflictError(
                    session_id, keys=(), expected_version=expected_version, stored_version=current
                )
            for table in (t.sessions, t.versions, t.runs, t.steps, t.deleted):
                tx.execute(sa.delete(table).where(table.c.session_id == session_id))
            # its version numbers are never given to a session created again under this id
            tx.execute(sa.insert(t.deleted).values(session_id=session_id, version=current,
                                                   deleted_at=time.time()))
        self._remember(session_id, None)
        return True

    def restore(
        self, session_id: str, version: int, *, expected_version: int | None = None
    ) -> SaveResult:
        """See :meth:`wfnb.storage.WorkflowStorage.restore`."""
        old = self.read(session_id, version)
        if old is None:
            raise SessionNotFoundError(f"no session {session_id!r} in table {self.db.name!r}")
        if expected_version is None:
            current = self.read(session_id)
            expected_version = current.version if current is not None else 0
        encoded = encode_state(old.session_state)
        try:  # a plain swap: a restore that merged another writer's keys would not equal `old`
            new, written = self._swap(session_id, encoded, expected_version, None, "restore", None)
        except _SwapLost as lost:
            deleted = lost.deleted_error(session_id, expected_version)
            if deleted is not None:
                raise deleted from None
            current = self.read(session_id) if lost.version else None
            theirs = parts_of(current.document) if current is not None else {}
            raise SessionConflictError(
                session_id, keys=changed_keys(theirs, encoded.parts) if current else (),
                expected_version=expected_version, stored_version=lost.version,
            ) from None
        return SaveResult(new, written, (), None)
