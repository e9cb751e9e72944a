"""Storage benchmark: how fast wfnb saves and loads session_state, and what history costs on disk.

Run with ``make bench`` (which runs ``python bench/storage.py`` in the venv, peers installed).

Speed. For session states of about 1 KB, 100 KB and 1 MB (a blog-post workflow's
``{"blog_posts": [{"topic", "blog_post"}, ...], "count": n}``, built from a fixed seed), every
iteration appends one post (small next to the state) to each contender's own copy of the state,
then times its save and its load with ``time.perf_counter_ns`` (garbage collection paused during
the timed call). Contenders take turns round-robin, the first one rotating each iteration, so
machine noise hits all of them alike. Medians are reported as ratios to the floor:

- raw sqlite3 (the floor): one ``(session_id TEXT PRIMARY KEY, state TEXT)`` table; save =
  ``json.dumps`` + ``INSERT ... ON CONFLICT DO UPDATE`` + commit, load = SELECT + ``json.loads``;
- wfnb: ``Workflow.write_to_storage()`` on a ``SqliteWorkflowStorage`` with history on (default),
  load = ``storage.read(session_id)``;
- Agno: ``SqliteDb.upsert_session`` / ``get_session`` of a ``WorkflowSession`` whose
  ``session_data["session_state"]`` is the state (as Agno's own Workflow stores it);
- LangGraph: ``SqliteSaver.put`` / ``get_tuple`` of a checkpoint whose ``channel_values`` is the
  state.

Every store runs with the pragmas wfnb uses: ``journal_mode=WAL``, ``synchronous=NORMAL``,
``busy_timeout=30000``, so the bench compares the libraries rather than durability settings
(Agno ships ``synchronous=FULL``; LangGraph leaves the connection to its caller). To keep each
state near its size, the appended posts are cut off again (and the shorter state saved, untimed)
once they add a quarter of the state.

Disk. 20 sessions, each saved 20 times, one ~5 KB post appended per save (~100 KB at the end);
then the database is checkpointed (``PRAGMA wal_checkpoint(TRUNCATE)``) and its file measured
(with any ``-wal`` left), and a ``VACUUM INTO`` copy of it is measured too (free pages dropped).

A peer that cannot be imported or fails its first save and load is shown as ``n/a (reason)``.
"""

from __future__ import annotations

import gc
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import wfnb

State = dict[str, Any]

BUSY_TIMEOUT_MS = 30_000
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
)
SEED = 20240601
WARMUP = 5
VOCABULARY = (
    "the a of and to in workflow state session agent model data notebook cell run output "
    "python storage history version query table row column index cache memory prompt token "
    "answer question draft review edit publish reader writer topic research summary outline "
    "paragraph example result because while after before during quickly carefully simply often "
    "never always every each many few more most less least good better best clear useful "
    "simple fast slow small large new old first last next previous important interesting"
)
WORDS = tuple(VOCABULARY.split())


# -- contenders -----------------------------------------------------------------------------


class Contender(Protocol):
    """One store holding one session; ``state`` is its live session_state, mutated in place."""

    state: State

    def save(self) -> None: ...

    def load(self) -> State: ...

    def close(self) -> None: ...


Opener = Callable[[Path, str, State], Contender]


def apply_pragmas(conn: Any) -> None:
    """Give a sqlite3 connection the settings wfnb uses (WAL, synchronous=NORMAL, busy_timeout)."""
    for pragma in PRAGMAS:
        conn.execute(pragma)


class RawSqlite:
    """The floor: stdlib sqlite3 and json, one row per session, no history."""

    def __init__(self, db_file: Path, session_id: str, state: State) -> None:
        self.state, self._session_id = state, session_id
        self._conn = sqlite3.connect(db_file)
        apply_pragmas(self._conn)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, state TEXT)"
        )
        self._conn.commit()

    def save(self) -> None:
        self._conn.execute(
            "INSERT INTO sessions (session_id, state) VALUES (?, ?) "
            "ON CONFLICT(session_id) DO UPDATE SET state = excluded.state",
            (self._session_id, json.dumps(self.state)),
        )
        self._conn.commit()

    def load(self) -> State:
        row = self._conn.execute(
            "SELECT state FROM sessions WHERE session_id = ?", (self._session_id,)
        ).fetchone()
        loaded: State = json.loads(row[0])
        return loaded

    def close(self) -> None:
        self._conn.close()


class BenchWorkflow(wfnb.Workflow):
    """Never run: the bench saves and loads its session_state directly."""


class Wfnb:
    """wfnb with its defaults: history on, compare-and-swap saves."""

    def __init__(self, db_file: Path, session_id: str, state: State) -> None:
        self._storage = wfnb.SqliteWorkflowStorage(table_name="bench", db_file=db_file)
        self._workflow = BenchWorkflow(session_id=session_id, storage=self._storage)
        self._workflow.session_state.update(state)
        self.state = self._workflow.session_state

    def save(self) -> None:
        self._workflow.write_to_storage()

    def load(self) -> State:
        stored = self._storage.read(self._workflow.session_id)
        if stored is None:
            raise RuntimeError("wfnb: the saved session is missing")
        return stored.session_state

    def close(self) -> None:
        self._storage.close()


class Agno:
    """Agno's SqliteDb, storing session_state in a WorkflowSession's session_data."""

    def __init__(self, db_file: Path, session_id: str, state: State) -> None:
        import sqlalchemy as sa
        from agno.db.base import SessionType
        from agno.db.sqlite import SqliteDb
        from agno.session import WorkflowSession

        self.state, self._session_id = state, session_id
        self._workflow_type, self._session_class = SessionType.WORKFLOW, WorkflowSession
        self._db = SqliteDb(db_file=str(db_file))
        sa.event.listen(self._db.db_engine, "connect", _pragmas_on_connect)
        self._db.db_engine.dispose()  # no pooled connection may have missed the pragmas
        self._session = WorkflowSession(
            session_id=session_id, workflow_id="bench", session_data={"session_state": state}
        )

    def save(self) -> None:
        self._db.upsert_session(self._session)

    def load(self) -> State:
        session = self._db.get_session(self._session_id, self._workflow_type)
        if not isinstance(session, self._session_class) or not session.session_data:
            raise RuntimeError(f"agno: get_session returned {type(session).__name__}")
        loaded: State = session.session_data["session_state"]
        return loaded

    def close(self) -> None:
        self._db.close()


class LangGraph:
    """LangGraph's SqliteSaver: every save is a new checkpoint holding the whole state."""

    def __init__(self, db_file: Path, session_id: str, state: State) -> None:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.state, self._step = state, 0
        self._new_checkpoint = empty_checkpoint
        self._conn = sqlite3.connect(db_file, check_same_thread=False)
        apply_pragmas(self._conn)
        self._saver = SqliteSaver(self._conn)
        self._saver.setup()
        self._thread: Any = {"configurable": {"thread_id": session_id, "checkpoint_ns": ""}}
        self._parent: Any = self._thread

    def save(self) -> None:
        self._step += 1
        checkpoint = self._new_checkpoint()
        checkpoint["channel_values"] = self.state
        checkpoint["channel_versions"] = dict.fromkeys(self.state, self._step)
        metadata: Any = {"source": "loop", "step": self._step}
        self._parent = self._saver.put(self._parent, checkpoint, metadata, {})

    def load(self) -> State:
        found = self._saver.get_tuple(self._thread)
        if found is None:
            raise RuntimeError("langgraph: no checkpoint for the thread")
        loaded: State = found.checkpoint["channel_values"]
        return loaded

    def close(self) -> None:
        self._conn.close()


def _pragmas_on_connect(dbapi_connection: Any, _record: Any) -> None:
    apply_pragmas(dbapi_connection)


@dataclass(frozen=True)
class Store:
    """A contender as the tables name it, and how to open one of its sessions."""

    name: str
    open: Opener
    keeps: str  # what it keeps of a session, for the disk table


FLOOR = Store("raw sqlite3", RawSqlite, "last state only")
WFNB = Store("wfnb", Wfnb, "state + history (deltas)")
PEERS = (
    Store("Agno", Agno, "last state only"),
    Store("LangGraph", LangGraph, "every checkpoint"),
)
DISK_STORES = (FLOOR, WFNB, *PEERS)


def probe(store: Store, folder: Path) -> str | None:
    """None when the store works here, else why not (a peer that cannot be installed, say)."""
    try:
        contender = store.open(folder / f"probe-{store.name}.db", "probe", {"count": 1})
        try:
            contender.save()
            if contender.load() != {"count": 1}:
                return "state did not round-trip"
        finally:
            contender.close()
    except Exception as exc:  # any failure of a peer is reported, not fatal
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
    return None


# -- states -----------------------------------------------------------------------------------


def text(rng: random.Random, size: int) -> str:
    """About ``size`` characters of word salad."""
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def post(rng: random.Random, number: int, size: int) -> dict[str, str]:
    """One blog post whose JSON is about ``size`` bytes."""
    topic = f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{number}"
    return {"topic": topic, "blog_post": text(rng, max(8, size - len(topic) - 30))}


def blog_state(rng: random.Random, target: int, post_size: int) -> State:
    """A state whose JSON is at least ``target`` bytes, in posts of ``post_size`` bytes."""
    posts: list[dict[str, str]] = []
    size = len('{"blog_posts": [], "count": 0}')
    while size < target:
        posts.append(post(rng, len(posts), post_size))
        size += len(json.dumps(posts[-1])) + 2
    return {"blog_posts": posts, "count": len(posts)}


def append_post(state: State, item: dict[str, str]) -> None:
    """What a run does to session_state: one more post, one more count."""
    state["blog_posts"].append(item)
    state["count"] += 1


def json_size(state: State) -> int:
    return len(json.dumps(state).encode())


# -- timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """One state size to time, with the ratios to raw sqlite3 wfnb should stay under there."""

    label: str
    target: int
    iterations: int
    save_limit: float
    load_limit: float
    beat_peers_on_load: bool

    @property
    def post_size(self) -> int:
        return min(2000, self.target // 4)

    @property
    def item_size(self) -> int:
        """The appended post: small next to the state."""
        return min(2000, max(40, self.target // 50))

    @property
    def cycle(self) -> int:
        """Appends before the posts are cut back: they add at most a quarter of the state."""
        return max(1, self.target // 4 // self.item_size)


# Saves per session (warm-up + iterations + cut-backs) stay under wfnb's default
# keep_versions=1000, so no save in the race also prunes history.
SIZES = (
    Size("~1 KB", 1024, 800, save_limit=4.0, load_limit=4.0, beat_peers_on_load=False),
    Size("~100 KB", 100 * 1024, 600, save_limit=0.5, load_limit=0.7, beat_peers_on_load=True),
    Size("~1 MB", 1024 * 1024, 150, save_limit=0.5, load_limit=0.7, beat_peers_on_load=True),
)


@dataclass(frozen=True)
class Medians:
    save_ns: float
    load_ns: float


@dataclass(frozen=True)
class SizeResult:
    size: Size
    state_bytes: int  # median JSON size of the states saved
    medians: dict[str, Medians]
    floor_json: Medians  # what raw sqlite3's save and load spend in json.dumps / json.loads


def timed(operation: Callable[[], object]) -> int:
    """Nanoseconds one call takes, garbage collection paused."""
    gc.disable()
    try:
        start = time.perf_counter_ns()
        operation()
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


def rotated(items: Sequence[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def race(
    contenders: dict[str, Contender], size: Size, items: Sequence[dict[str, str]]
) -> SizeResult:
    """Round-robin: each iteration every contender appends the same post, saves, then loads."""
    names = list(contenders)
    saves: dict[str, list[int]] = {name: [] for name in names}
    loads: dict[str, list[int]] = {name: [] for name in names}
    floor = contenders[FLOOR.name]  # every contender holds an equal state; sizes are taken here
    base_length = len(floor.state["blog_posts"])
    state_sizes: list[int] = []
    for i in range(WARMUP + size.iterations):
        if i % size.cycle == 0:
            for contender in contenders.values():
                cut_back(contender, base_length)
        for name in rotated(names, i):
            contender = contenders[name]
            append_post(contender.state, items[i % len(items)])
            save_ns, load_ns = timed(contender.save), timed(contender.load)
            if i >= WARMUP:
                saves[name].append(save_ns)
                loads[name].append(load_ns)
        state_sizes.append(json_size(floor.state))
    check_round_trip(contenders)
    medians = {
        name: Medians(statistics.median(saves[name]), statistics.median(loads[name]))
        for name in names
    }
    floor_json = json_costs(floor.state, max(10, size.iterations // 4))
    return SizeResult(size, int(statistics.median(state_sizes)), medians, floor_json)


def json_costs(state: State, repeat: int) -> Medians:
    """Median json.dumps and json.loads times of a state: the floor's share that is not SQLite."""
    document = json.dumps(state)
    dumps = [timed(lambda: json.dumps(state)) for _ in range(repeat)]
    loads = [timed(lambda: json.loads(document)) for _ in range(repeat)]
    return Medians(statistics.median(dumps), statistics.median(loads))


def cut_back(contender: Contender, length: int) -> None:
    """Drop the appended posts and save the shorter state (untimed)."""
    posts = contender.state["blog_posts"]
    if len(posts) > length:
        del posts[length:]
        contender.state["count"] = length
        contender.save()


def check_round_trip(contenders: dict[str, Contender]) -> None:
    for name, contender in contenders.items():
        if contender.load() != contender.state:
            raise RuntimeError(f"{name}: the loaded state differs from the saved one")


def time_size(size: Size, stores: Sequence[Store], folder: Path) -> SizeResult:
    """Open every store on a fresh file holding one session of this size, and race them."""
    rng = random.Random(f"{SEED}-{size.target}")
    base = blog_state(rng, size.target, size.post_size)
    items = [post(rng, 10_000 + n, size.item_size) for n in range(64)]
    contenders: dict[str, Contender] = {}
    try:
        for store in stores:
            db_file = folder / f"speed-{size.target}-{store.name}.db"
            copy = json.loads(json.dumps(base))
            contenders[store.name] = store.open(db_file, "bench-session", copy)
        return race(contenders, size, items)
    finally:
        for contender in contenders.values():
            contender.close()


# -- disk -----------------------------------------------------------------------------------

DISK_SESSIONS = 20
DISK_SAVES = 20
DISK_POST_SIZE = 5 * 1024


@dataclass(frozen=True)
class DiskResult:
    store: Store
    file_bytes: int  # database file (+ -wal) after a TRUNCATE checkpoint
    vacuumed_bytes: int  # a VACUUM INTO copy of it


def fill(store: Store, db_file: Path, posts: Sequence[Sequence[dict[str, str]]]) -> None:
    """Save every session DISK_SAVES times, one post more each time, sessions taking turns."""
    sessions = [
        store.open(db_file, f"session-{n:02d}", {"blog_posts": [], "count": 0})
        for n in range(len(posts))
    ]
    try:
        for save in range(DISK_SAVES):
            for session, session_posts in zip(sessions, posts, strict=True):
                append_post(session.state, session_posts[save])
                session.save()
    finally:
        for session in sessions:
            session.close()


def disk_usage(db_file: Path) -> tuple[int, int]:
    """(file + -wal after a TRUNCATE checkpoint, size of a VACUUM INTO copy)."""
    copy = db_file.with_suffix(".vacuumed.db")
    conn = sqlite3.connect(db_file)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM INTO ?", (str(copy),))
    finally:
        conn.close()
    wal = db_file.with_name(db_file.name + "-wal")
    on_disk = db_file.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return on_disk, copy.stat().st_size


def measure_disk(stores: Sequence[Store], folder: Path) -> list[DiskResult]:
    rng = random.Random(f"{SEED}-disk")
    posts = [
        [post(rng, n, DISK_POST_SIZE) for n in range(DISK_SAVES)] for _ in range(DISK_SESSIONS)
    ]
    results = []
    for store in stores:
        db_file = folder / f"disk-{store.name}.db"
        fill(store, db_file, posts)
        results.append(DiskResult(store, *disk_usage(db_file)))
    return results


# -- report ---------------------------------------------------------------------------------


NOISE = 0.02  # medians closer than this are called a tie, whichever side they fall on


@dataclass(frozen=True)
class Target:
    goal: str
    measured: str
    met: bool | None  # None: could not be measured
    tie: bool = False  # within NOISE of the line: the verdict could flip on another run

    @property
    def verdict(self) -> str:
        verdict = {True: "met", False: "**MISSED**", None: "n/a"}[self.met]
        return f"{verdict} (within {NOISE:.0%}: noise)" if self.tie else verdict


def ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x"


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_ns(ns: float) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.3g} ms"
    return f"{ns / 1000:.3g} µs"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def speed_cells(result: SizeResult, name: str, missing: dict[str, str]) -> list[str]:
    if name in missing:
        return [f"n/a ({missing[name]})"] * 2
    floor, mine = result.medians[FLOOR.name], result.medians[name]
    return [ratio(mine.save_ns, floor.save_ns), ratio(mine.load_ns, floor.load_ns)]


def speed_table(results: Sequence[SizeResult], missing: dict[str, str]) -> str:
    names = [WFNB.name] + [peer.name for peer in PEERS]
    header = ["state size", "JSON (median)"]
    header += [f"{name} {op}" for name in names for op in ("save", "load")]
    rows = [
        [r.size.label, human_bytes(r.state_bytes)]
        + [cell for name in names for cell in speed_cells(r, name, missing)]
        for r in results
    ]
    return markdown_table(header, rows)


def floor_line(results: Sequence[SizeResult]) -> str:
    parts = [
        f"{r.size.label} save {human_ns(m.save_ns)} (json.dumps {human_ns(r.floor_json.save_ns)})"
        f" / load {human_ns(m.load_ns)} (json.loads {human_ns(r.floor_json.load_ns)})"
        for r in results
        for m in [r.medians[FLOOR.name]]
    ]
    return "raw sqlite3 medians (= 1.00x), of which JSON: " + "; ".join(parts)


def disk_table(results: Sequence[DiskResult], missing: dict[str, str]) -> str:
    floor = next(r for r in results if r.store is FLOOR)
    rows = [
        [r.store.name, r.store.keeps,
         human_bytes(r.file_bytes), ratio(r.file_bytes, floor.file_bytes),
         human_bytes(r.vacuumed_bytes), ratio(r.vacuumed_bytes, floor.vacuumed_bytes)]
        for r in results
    ]
    rows += [[name, f"n/a ({reason})", "", "", "", ""] for name, reason in missing.items()]
    header = ["store", "keeps", "file after checkpoint", "ratio", "VACUUM copy", "ratio"]
    return markdown_table(header, rows)


def speed_targets(results: Sequence[SizeResult], missing: dict[str, str]) -> list[Target]:
    targets = []
    for r in results:
        floor, mine = r.medians[FLOOR.name], r.medians[WFNB.name]
        for op, value, base, limit in (
            ("save", mine.save_ns, floor.save_ns, r.size.save_limit),
            ("load", mine.load_ns, floor.load_ns, r.size.load_limit),
        ):
            targets.append(Target(f"{r.size.label}: wfnb {op} <= {limit:g}x raw sqlite3",
                                  ratio(value, base), value / base <= limit))
        ops = ("save", "load") if r.size.beat_peers_on_load else ("save",)
        targets += [peer_target(r, peer.name, op, missing) for peer in PEERS for op in ops]
    return targets


def peer_target(result: SizeResult, peer: str, op: str, missing: dict[str, str]) -> Target:
    goal = f"{result.size.label}: wfnb {op} faster than {peer}"
    if peer in missing:
        return Target(goal, f"{peer} unavailable", None)
    mine: float = getattr(result.medians[WFNB.name], f"{op}_ns")
    theirs: float = getattr(result.medians[peer], f"{op}_ns")
    measured = f"{human_ns(mine)} vs {human_ns(theirs)} ({ratio(mine, theirs)})"
    return Target(goal, measured, mine < theirs, tie=abs(mine / theirs - 1) < NOISE)


def disk_target(results: Sequence[DiskResult]) -> Target:
    sizes = {r.store.name: r.file_bytes for r in results}
    value = sizes[WFNB.name] / sizes[FLOOR.name]
    return Target("disk: wfnb with history <= 3x a history-less store (file after checkpoint)",
                  f"{value:.2f}x", value <= 3.0)


def targets_table(targets: Sequence[Target]) -> str:
    return markdown_table(["target", "measured", "verdict"],
                          [[t.goal, t.measured, t.verdict] for t in targets])


def versions() -> str:
    names = ("wfnb", "dataset", "SQLAlchemy", "orjson", "agno", "langgraph-checkpoint-sqlite")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return (f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            + ", ".join(found))


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    started = time.perf_counter()
    print("# wfnb storage benchmark\n")
    print(versions() + "\n")
    with tempfile.TemporaryDirectory(prefix="wfnb-bench-") as tmp:
        folder = Path(tmp)
        missing = {
            store.name: reason
            for store in (WFNB, *PEERS)
            if (reason := probe(store, folder)) is not None
        }
        if WFNB.name in missing:
            print(f"wfnb itself does not work here: {missing[WFNB.name]}", file=sys.stderr)
            return 1
        racing = [s for s in (FLOOR, WFNB, *PEERS) if s.name not in missing]
        results = [time_size(size, racing, folder) for size in SIZES]
        disk = measure_disk([s for s in DISK_STORES if s.name not in missing], folder)
    iterations = ", ".join(f"{s.label} {s.iterations}" for s in SIZES)
    print("## Speed: median per operation, as a ratio to raw sqlite3 (lower is faster)\n")
    print(speed_table(results, missing) + "\n")
    print(floor_line(results))
    print(f"Timed iterations per contender (after {WARMUP} warm-up): {iterations}; "
          "contenders interleaved round-robin.\n")
    print(f"## Disk: {DISK_SESSIONS} sessions x {DISK_SAVES} saves, one ~5 KB post appended "
          "per save (~100 KB state at the end)\n")
    print(disk_table(disk, missing) + "\n")
    print("File after checkpoint: the database file plus its -wal after "
          "PRAGMA wal_checkpoint(TRUNCATE); VACUUM copy: VACUUM INTO a new file (no free pages).\n")
    print("## Targets\n")
    print(targets_table([*speed_targets(results, missing), disk_target(disk)]) + "\n")
    print(f"Took {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
