"""WorkflowStorage: sessions, their versioned history and their runs, in one database.

A session's states live in its history: each save inserts one version row, either the full
state (exact JSON bytes) or a delta on the version before it (see _delta.py), plus a
compare-and-swap ``UPDATE ... WHERE version = expected`` of the small session row, in one
transaction. Loading reads the newest full row and the deltas after it. When the swap finds a
newer version, the two writers' changes are merged if they touched different top-level keys,
else :class:`~wfnb.SessionConflictError` is raised and nothing is written.

Why deltas: rewriting a large state in place is the slowest thing a database does for wfnb
(SQLite frees and re-allocates every overflow page); appending what changed is cheap, and
history then costs little more disk than the state itself. A full row is written again when the
deltas since the last one reach the state's size or ``_MAX_DELTA_CHAIN`` rows, which bounds what
a load reads to about twice the state.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from wfnb._errors import (
    CorruptStateError,
    InvalidNameError,
    SessionConflictError,
    SessionNotFoundError,
    StorageError,
)
from wfnb.storage._codec import (
    EncodedState,
    Parts,
    State,
    decode_state,
    encode_state,
    join_parts,
    parts_of,
)
from wfnb.storage._delta import apply_delta, make_delta
from wfnb.storage._engine import database_cause, log, normalize_url, open_database
from wfnb.storage._merge import changed_keys, merge_parts
from wfnb.storage._models import (
    RunRecord,
    SaveResult,
    SessionSummary,
    StepRecord,
    StoredSession,
    VersionInfo,
    timestamp,
)
from wfnb.storage._schema import MIGRATIONS, Tables, check_table_name, migrate
from wfnb.storage._search import check_text, contains
from wfnb.storage._sql import HotPath, jsonb_copy
from wfnb.storage._steps import ServedCall, StepLog

_MAX_DELTA_CHAIN = 32  # delta rows after a full one, at most
_MIN_DELTA_STATE = 4096  # smaller states are stored whole: a delta would save little
_MAX_MERGE_ROUNDS = 8  # a save that keeps losing the swap to fresh writers gives up after this
_HEAD_CACHE_SIZE = 64  # sessions whose latest document is kept for the next save's delta
_MAX_SESSION_ID = 1024


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


class _SwapLost(Exception):
    """The compare-and-swap found another version (0: the session is gone)."""

    def __init__(self, version: int) -> None:
        self.version = version


class WorkflowStorage:
    """Sessions of workflows, stored through `dataset` in any SQLAlchemy database.

    ``WorkflowStorage("my_workflows", "sqlite:///tmp/workflows.db")`` keeps five tables
    (``my_workflows``, ``_versions``, ``_runs``, ``_steps``, ``_meta``), created or upgraded on
    open.
    ``keep_versions`` bounds each session's history (``None`` keeps all of it);
    ``db`` is the underlying :class:`dataset.Database` for ad-hoc queries.
    """

    def __init__(
        self,
        table_name: str,
        db_url: str,
        *,
        keep_versions: int | None = 1000,
        busy_timeout: float = 30.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self.table_name = check_table_name(table_name)
        if keep_versions is not None and keep_versions < 1:
            raise ValueError(f"keep_versions must be at least 1 or None, not {keep_versions}")
        self.keep_versions = keep_versions
        self.db_url = normalize_url(db_url)
        self._tables = Tables.define(table_name)
        self._heads: OrderedDict[str, _Head] = OrderedDict()
        self._heads_lock = threading.Lock()
        try:
            self.db = open_database(self.db_url, busy_timeout=busy_timeout, synchronous=synchronous)
            assert self.db.engine is not None
            self._engine: sa.Engine = self.db.engine
            self._dialect = self._engine.dialect.name
            self._sql = HotPath(self._engine, self._tables)
            self.step_log = StepLog(self._engine, self._tables.steps, self._sql)
            with self._write() as conn:
                if self._dialect == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(table_name))))
                self.schema_version = migrate(conn, self._tables, MIGRATIONS)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StorageError(
                f"cannot open {self._where()}: {database_cause(exc)}", table=table_name
            ) from exc

    # -- plumbing --------------------------------------------------------------------------

    def _where(self) -> str:
        return sa.engine.make_url(self.db_url).render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table_name={self.table_name!r}, db={self._where()!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A connection in a write transaction (BEGIN IMMEDIATE on SQLite), committed on exit."""
        with self._engine.connect().execution_options(wfnb_write=True) as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _failing_as(self, action: str, session_id: str | None = None) -> Iterator[None]:
        """Turn database errors into StorageError naming the action, table and session."""
        try:
            yield
        except (sa.exc.SQLAlchemyError, OSError, self._sql.error) as exc:
            raise StorageError(f"could not {action}: {database_cause(exc)}", table=self.table_name,
                               session_id=session_id) from exc

    def close(self) -> None:
        """Release the database connections."""
        self.db.close()

    # -- sessions ----------------------------------------------------------------------------

    def read(self, session_id: str, version: int | None = None) -> StoredSession | None:
        """The stored session (its state at ``version``, default the current one), or None.

        The current version's document is reused from this object's last save or read when the
        database confirms (same version, same creation time) that it is still current.
        """
        check_session_id(session_id)
        sql = self._sql
        with self._failing_as("read the session", session_id), sql.transaction(write=False) as tx:
            tx.execute(sql.select_session, {"sid": session_id})
            meta = tx.fetchone()
            if meta is None:
                return None
            workflow_name, current, state_bytes, created_at, updated_at = meta
            target = current if version is None else version
            head = self._head(session_id, target) if target == current else None
            if head is None or head.created_at != created_at:
                tx.execute(sql.select_chain, {"sid": session_id, "v": target})
                chain = tx.fetchall()
                if (not chain or chain[-1][0] != target) and target != current:
                    tx.execute(sql.select_has_version, {"sid": session_id, "v": target})
                    listed = tx.fetchone() is not None
                else:
                    listed = True  # the current version is listed by the session row
                head = self._head_from(session_id, target, created_at, chain, listed)
                state_bytes = chain[-1][4]
                if target == current:
                    self._remember(session_id, head, keep=True)
                else:
                    updated_at = chain[-1][5]  # when that version was saved
                del chain  # a large state's rows need not outlive its document
        state = self._decode(head.document, session_id, head.tagged, version)
        return StoredSession(
            session_id, workflow_name, target, state_bytes, timestamp(created_at),
            timestamp(updated_at), state, head.document,
        )

    def _head_from(
        self, session_id: str, version: int, created_at: float, chain: Sequence[Any], listed: bool
    ) -> _Head:
        document = self._assemble(session_id, version, chain, listed=listed)
        return _Head(version, created_at, document, bool(chain[-1][3]), None, len(chain) - 1,
                     sum(len(row[2]) for row in chain[1:]))

    def _assemble(
        self, session_id: str, version: int, chain: Sequence[Any], *, listed: bool = False
    ) -> bytes:
        """The document of ``version`` from its chain rows (a full row, then deltas in order).

        ``listed``: the version is known to exist, so missing rows mean damage, not absence.
        """
        if not chain or chain[-1][0] != version:
            if listed:
                raise CorruptStateError(
                    f"version {version} is recorded but the rows it is rebuilt from are missing "
                    "(deleted by hand?); the other rows are left as they are",
                    table=self.table_name, session_id=session_id,
                )
            raise SessionNotFoundError(
                f"session {session_id!r} has no version {version} in history "
                f"(table {self.table_name!r}; pruned, or never saved)"
            )
        try:
            full = chain[0][2]
            if len(chain) == 1 and isinstance(full, bytes):
                document = full  # a full row alone is the document: no copies of a large state
            else:
                edited = bytearray(full)
                for previous, row in itertools.pairwise(chain):
                    if row[1] != previous[0]:
                        raise ValueError(f"version {row[0]} follows missing version {row[1]}")
                    apply_delta(edited, bytes(row[2]))
                document = bytes(edited)
            if len(document) != chain[-1][4]:
                raise ValueError(f"{len(document)} bytes rebuilt, {chain[-1][4]} were saved")
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise CorruptStateError(
                f"history of version {version} cannot be read ({exc}); rows left as they are",
                table=self.table_name, session_id=session_id,
            ) from exc
        return document

    def _decode(
        self, document: bytes, session_id: str, tagged: Any, version: int | None = None
    ) -> State:
        try:
            return decode_state(document, bool(tagged))
        except (ValueError, KeyError, TypeError) as exc:
            at = f" version {version}" if version is not None else ""
            raise CorruptStateError(
                f"stored state{at} is not valid wfnb JSON ({exc}); the row is left as it is",
                table=self.table_name, session_id=session_id,
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
        """Store ``state`` as the next version, if the session is still at ``expected_version``.

        ``expected_version=0`` means "the session should not exist yet". When another writer
        saved since, their and our top-level key changes are merged if disjoint (the result's
        ``session_state`` is the merged state); otherwise SessionConflictError is raised and
        nothing is written. ``force=True`` overwrites whatever is stored. A state equal to the
        stored one writes nothing. ``state`` may be given already encoded (``encode_state``).
        """
        check_session_id(session_id)
        encoded = state if isinstance(state, EncodedState) else encode_state(state)
        merged_keys: set[str] = set()
        for _ in range(_MAX_MERGE_ROUNDS):
            try:
                with self._failing_as("save the session", session_id):
                    version, written = self._swap(
                        session_id, encoded, expected_version, workflow_name, source, run_id
                    )
            except _SwapLost as lost:
                if force:
                    expected_version = lost.version
                    continue
                if lost.version == 0:
                    raise SessionConflictError(
                        session_id, keys=(), expected_version=expected_version,
                        stored_version=0,
                    ) from None
                # the next swap expects the version the merge was made on, which may be newer
                # than the one this swap lost to
                encoded, taken, expected_version = self._merge(
                    session_id, encoded, expected_version
                )
                merged_keys |= taken
                continue
            merged = decode_state(encoded.document, encoded.tagged) if merged_keys else None
            return SaveResult(version, written, tuple(sorted(merged_keys)), merged)
        raise StorageError(
            f"gave up saving after {_MAX_MERGE_ROUNDS} rounds of concurrent writes",
            table=self.table_name, session_id=session_id,
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
        """One compare-and-swap transaction; raises _SwapLost when the session moved on."""
        document, new = encoded.document, expected + 1
        head = self._head(session_id, expected)
        if head is not None and head.document == document:
            return expected, False
        delta = None
        if head is not None and head.chain < _MAX_DELTA_CHAIN and (
            len(document) >= _MIN_DELTA_STATE
        ):
            delta = make_delta(head.document, document, head.parts, encoded.parts)
            if delta is not None and head.chain_bytes + len(delta) > len(document):
                delta = None
        now = time.time()
        sql = self._sql
        with sql.transaction(write=True) as tx:
            values = {"sid": session_id, "wf": workflow_name, "bytes": len(document), "now": now,
                      "new": new, "expected": expected}
            if sql.keeps_jsonb:
                values["json"] = jsonb_copy(document.decode())
            tx.execute(sql.insert_session if expected == 0 else sql.update_session, values)
            swapped = tx.fetchone()
            if swapped is None:
                tx.execute(sql.select_version, {"sid": session_id})
                row = tx.fetchone()
                raise _SwapLost(row[0] if row is not None else 0)
            tx.execute(sql.insert_version, {
                "sid": session_id, "new": new, "base": expected if delta is not None else None,
                "data": delta if delta is not None else document, "tagged": encoded.tagged,
                "bytes": len(document), "source": source, "run": run_id, "now": now,
            })
        keep = self.keep_versions
        if keep is not None and new > keep and (new - keep) % _prune_slack(keep) == 0:
            # once per slack versions: a test on `new` alone would prune after every save
            try:
                with self._write() as conn:
                    self._prune_session(conn, session_id, new - keep + 1, None)
                    self._prune_steps(conn, session_id)
            except (sa.exc.SQLAlchemyError, self._sql.error) as exc:  # the save is committed
                log.warning("session %r: saved as version %d, but pruning its history failed "
                            "(%s); a later save prunes it", session_id, new, database_cause(exc))
        chain, chain_bytes = (
            (head.chain + 1, head.chain_bytes + len(delta))
            if head is not None and delta is not None else (0, 0)
        )
        self._remember(session_id, _Head(new, swapped[1], document, encoded.tagged, encoded.parts,
                                         chain, chain_bytes))
        return new, True

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
        result = merge_parts(base, ours.parts, theirs)
        if isinstance(result, set):
            raise SessionConflictError(
                session_id, keys=result, expected_version=expected, stored_version=current.version
            )
        merged, taken = result
        log.info("session %r: merged keys %s saved meanwhile by another writer",
                 session_id, sorted(taken))
        document = join_parts(merged)
        tagged = ours.tagged or b'"$wfnb"' in document
        return EncodedState(merged, document, tagged), taken, current.version

    def _parts_at(self, session_id: str, version: int) -> Parts:
        with self._failing_as("read history", session_id), self._read() as conn:
            return parts_of(self._document_at(conn, session_id, version))

    def _document_at(self, conn: sa.Connection, session_id: str, version: int) -> bytes:
        """The document of ``version``, read inside the caller's transaction."""
        chain = conn.exec_driver_sql(
            self._sql.select_chain, {"sid": session_id, "v": version}
        ).all()
        return self._assemble(session_id, version, chain)

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
        """Delete a session with its history, runs and steps; False when there was none.

        With ``expected_version``, refuse (SessionConflictError) if it was saved since.
        """
        check_session_id(session_id)
        t = self._tables
        with self._failing_as("delete the session", session_id), self._write() as conn:
            current = conn.execute(
                sa.select(t.sessions.c.version).where(t.sessions.c.session_id == session_id)
            ).scalar()
            if current is None:
                return False
            if expected_version is not None and current != expected_version:
                raise SessionConflictError(
                    session_id, keys=(), expected_version=expected_version, stored_version=current
                )
            for table in (t.sessions, t.versions, t.runs, t.steps):
                conn.execute(sa.delete(table).where(table.c.session_id == session_id))
        self._remember(session_id, None)
        return True

    def list_sessions(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        search: str | None = None,
        workflow_name: str | None = None,
    ) -> list[SessionSummary]:
        """Sessions newest first, without their states; ``search`` matches part of the id
        (ASCII letters in either case, every other character exactly: see _search.py)."""
        s = self._tables.sessions
        query = (
            sa.select(s.c.session_id, s.c.workflow_name, s.c.version, s.c.state_bytes,
                      s.c.created_at, s.c.updated_at)
            .where(*self._filters(search, workflow_name))
            .order_by(s.c.updated_at.desc(), s.c.session_id)
            .limit(limit)
            .offset(offset)
        )
        with self._failing_as("list sessions"), self._read() as conn:
            return [
                SessionSummary(r.session_id, r.workflow_name, r.version, r.state_bytes,
                               timestamp(r.created_at), timestamp(r.updated_at))
                for r in conn.execute(query)
            ]

    def count_sessions(
        self, *, search: str | None = None, workflow_name: str | None = None
    ) -> int:
        """How many sessions ``list_sessions`` would page through with these filters."""
        s = self._tables.sessions
        query = (
            sa.select(sa.func.count()).select_from(s).where(*self._filters(search, workflow_name))
        )
        with self._failing_as("count sessions"), self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def workflow_names(self) -> list[str]:
        """The workflow names sessions were saved under, sorted (for filters and pickers)."""
        s = self._tables.sessions
        query = (
            sa.select(s.c.workflow_name).where(s.c.workflow_name.is_not(None)).distinct()
            .order_by(s.c.workflow_name)
        )
        with self._failing_as("list workflow names"), self._read() as conn:
            return [str(name) for name in conn.execute(query).scalars()]

    def _filters(
        self, search: str | None, workflow_name: str | None
    ) -> list[sa.ColumnElement[bool]]:
        s = self._tables.sessions
        filters: list[sa.ColumnElement[bool]] = []
        if search:
            filters.append(contains(s.c.session_id, search, self._dialect))
        if workflow_name is not None:
            filters.append(s.c.workflow_name == check_text(workflow_name, "workflow_name"))
        return filters

    # -- history -----------------------------------------------------------------------------

    def history(self, session_id: str, *, limit: int | None = None) -> list[VersionInfo]:
        """The session's stored versions, newest first (empty when it has none)."""
        check_session_id(session_id)
        v = self._tables.versions
        query = (
            sa.select(v.c.version, v.c.source, v.c.run_id, v.c.state_bytes, v.c.created_at)
            .where(v.c.session_id == session_id)
            .order_by(v.c.version.desc())
            .limit(limit)
        )
        with self._failing_as("read history", session_id), self._read() as conn:
            return [
                VersionInfo(session_id, r.version, r.source, r.run_id, r.state_bytes,
                            timestamp(r.created_at))
                for r in conn.execute(query)
            ]

    def restore(
        self, session_id: str, version: int, *, expected_version: int | None = None
    ) -> SaveResult:
        """Append a new version equal to ``version``; history is never rewritten.

        ``expected_version`` (default: the current version) makes it refuse if the session was
        saved since the caller looked at it.
        """
        old = self.read(session_id, version)
        if old is None:
            raise SessionNotFoundError(f"no session {session_id!r} in table {self.table_name!r}")
        if expected_version is None:
            current = self.read(session_id)
            expected_version = current.version if current is not None else 0
        encoded = encode_state(old.session_state)
        try:  # a plain swap: a restore that merged another writer's keys would not equal `old`
            with self._failing_as("restore the session", session_id):
                new, written = self._swap(
                    session_id, encoded, expected_version, None, "restore", None
                )
        except _SwapLost as lost:
            current = self.read(session_id) if lost.version else None
            theirs = parts_of(current.document) if current is not None else {}
            raise SessionConflictError(
                session_id, keys=changed_keys(theirs, encoded.parts) if current else (),
                expected_version=expected_version, stored_version=lost.version,
            ) from None
        return SaveResult(new, written, (), None)

    def prune(
        self,
        *,
        keep: int | None = None,
        older_than: float | None = None,
        session_id: str | None = None,
    ) -> int:
        """Drop history: all but the newest ``keep`` versions and/or those older than
        ``older_than`` seconds, of one session or all. The current version always stays.
        Step records that started before the oldest version kept go too, except the newest
        completed one of each step key (what later runs are served). Returns how many versions
        were dropped.
        """
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        s = self._tables.sessions
        ids = [check_session_id(session_id)] if session_id is not None else None
        dropped = 0
        with self._failing_as("prune history", session_id):
            if ids is None:
                with self._read() as conn:
                    ids = list(conn.execute(sa.select(s.c.session_id)).scalars())
            for sid in ids:
                with self._write() as conn:
                    current = conn.execute(
                        sa.select(s.c.version).where(s.c.session_id == sid)
                    ).scalar()
                    if current is None:
                        continue
                    first_kept = current - keep + 1 if keep is not None else 1
                    cutoff = time.time() - older_than if older_than is not None else None
                    dropped += self._prune_session(conn, sid, first_kept, cutoff)
                    self._prune_steps(conn, sid)
        return dropped

    def _prune_session(
        self, conn: sa.Connection, session_id: str, first_kept: int, cutoff: float | None
    ) -> int:
        """Delete versions before ``first_kept`` (and before ``cutoff`` time), keeping the newest.

        When the first version kept is a delta, it is rewritten as the full state it stands for,
        so what remains can still be read.
        """
        s, v = self._tables.sessions, self._tables.versions
        # PostgreSQL: one prune of a session at a time (saves wait too), or two interleaved
        # would deadlock, or rebuild a version the other just deleted (SQLite: BEGIN IMMEDIATE)
        conn.execute(sa.select(s.c.version).where(s.c.session_id == session_id).with_for_update())
        newest = conn.execute(
            sa.select(sa.func.max(v.c.version)).where(v.c.session_id == session_id)
        ).scalar()
        if newest is None:
            return 0
        if cutoff is not None:
            young = conn.execute(
                sa.select(sa.func.min(v.c.version))
                .where(v.c.session_id == session_id, v.c.created_at >= cutoff)
            ).scalar()
            first_kept = max(first_kept, young if young is not None else newest)
        first_kept = min(first_kept, newest)
        oldest = conn.execute(
            sa.select(sa.func.min(v.c.version)).where(v.c.session_id == session_id)
        ).scalar()
        if oldest is None or oldest >= first_kept:
            return 0
        kept = conn.execute(
            sa.select(v.c.base_version)
            .where(v.c.session_id == session_id, v.c.version == first_kept)
        ).first()
        if kept is not None and kept.base_version is not None:
            document = self._document_at(conn, session_id, first_kept)
            conn.execute(
                sa.update(v)
                .where(v.c.session_id == session_id, v.c.version == first_kept)
                .values(base_version=None, data=document)
            )
        return int(
            conn.execute(
                sa.delete(v).where(v.c.session_id == session_id, v.c.version < first_kept)
            ).rowcount
        )

    def _prune_steps(self, conn: sa.Connection, session_id: str) -> None:
        v = self._tables.versions
        oldest = conn.execute(
            sa.select(sa.func.min(v.c.created_at)).where(v.c.session_id == session_id)
        ).scalar()
        if oldest is not None:
            self.step_log.prune(conn, session_id, oldest)

    # -- runs --------------------------------------------------------------------------------

    def record_run_start(
        self, run_id: str, session_id: str, workflow_name: str | None, run_input: Any
    ) -> None:
        """Record that a run began (status ``running``)."""
        with self._failing_as("record the run", session_id), self._write() as conn:
            conn.execute(
                sa.insert(self._tables.runs).values(
                    run_id=run_id, session_id=session_id, workflow_name=workflow_name,
                    status="running", input=_describe(run_input), started_at=time.time(),
                )
            )

    def record_run_end(
        self,
        run_id: str,
        *,
        status: str,
        output: str | None,
        error: str | None = None,
        version: int | None = None,
        session_id: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        served_steps: Sequence[ServedCall] = (),
    ) -> None:
        """Record how a run ended: completed, failed or interrupted (and the tokens it used),
        with the records of its step calls that were served and not recorded yet, in the same
        transaction."""
        r = self._tables.runs
        with self._failing_as("record the run", session_id), self._write() as conn:
            conn.execute(
                sa.update(r).where(r.c.run_id == run_id).values(
                    status=status, output=output, error=error, version=version,
                    ended_at=time.time(), input_tokens=input_tokens, output_tokens=output_tokens,
                )
            )
            self.step_log.insert_served(conn, served_steps)

    def runs(self, session_id: str, *, limit: int | None = None) -> list[RunRecord]:
        """The session's runs, newest first."""
        check_session_id(session_id)
        r = self._tables.runs
        query = (
            sa.select(r).where(r.c.session_id == session_id)
            .order_by(r.c.started_at.desc()).limit(limit)
        )
        with self._failing_as("read runs", session_id), self._read() as conn:
            return [
                RunRecord(
                    row.run_id, row.session_id, row.workflow_name, row.status,
                    orjson.loads(row.input) if row.input is not None else None,
                    row.output, row.error, row.version, timestamp(row.started_at),
                    timestamp(row.ended_at) if row.ended_at is not None else None,
                    row.input_tokens, row.output_tokens,
                )
                for row in conn.execute(query)
            ]

    def steps(self, session_id: str, run_id: str | None = None) -> list[StepRecord]:
        """The session's step records (of one run, with ``run_id``), oldest first."""
        return self.step_log.records(check_session_id(session_id), run_id)

    def clear_steps(self, session_id: str, name: str | None = None) -> int:
        """Forget the session's step records (of the step ``name`` only: its full name or the
        part after the last dot), so their next calls execute; returns how many were deleted."""
        return self.step_log.clear(check_session_id(session_id), name)

    # -- transfer ----------------------------------------------------------------------------

    def export_sessions(self, path: str, session_ids: list[str] | None = None) -> int:
        """Write sessions (all, or those named) to a JSON-lines file, one per line with its whole
        history and runs, for import_sessions here or in another database; returns how many."""
        from wfnb.storage import _transfer

        with open(path, "wb") as out:
            return _transfer.export_sessions(self, out, session_ids)

    def import_sessions(self, path: str, *, on_conflict: str = "fail") -> dict[str, list[str]]:
        """Import an export_sessions file, never overwriting silently: ``on_conflict`` is
        ``"fail"`` (an existing id is an error), ``"skip"`` or ``"new-version"``.
        Returns session ids by outcome (imported, skipped, appended, unchanged)."""
        from wfnb.storage import _transfer

        mode = _transfer.check_on_conflict(on_conflict)
        return _transfer.import_sessions(self, path, on_conflict=mode).as_dict()

    def to_dataframe(
        self, *, search: str | None = None, workflow_name: str | None = None, steps: bool = False
    ) -> Any:
        """A pandas DataFrame of the sessions, one row each with one ``state.<key>`` column per
        top-level state key (reads every state; pandas is optional: ``pip install pandas``).
        ``steps=True``: one row per step record of those sessions (name, status, cached, times,
        error, output)."""
        from wfnb.storage import _frame

        return _frame.to_dataframe(self, search=search, workflow_name=workflow_name, steps=steps)


def _describe(value: Any) -> str:
    """A run's input as JSON text; values JSON cannot hold are recorded by their repr."""
    try:
        return orjson.dumps(value, default=repr).decode()
    except TypeError:  # a cycle, an int beyond 64 bits, a lone surrogate: the whole repr, then
        return orjson.dumps(repr(value).encode(errors="backslashreplace").decode()).decode()


def _lock_key(name: str) -> int:
    """A stable advisory-lock key for one table family (serializes concurrent migrations)."""
    return zlib.crc32(f"wfnb:{name}".encode())


def _prune_slack(keep: int) -> int:
    """Versions allowed past ``keep`` before a save prunes: pruning in batches costs less."""
    return max(8, keep // 8)
