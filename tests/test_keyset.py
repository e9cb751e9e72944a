"""Keyset paging (``list_sessions(after=..., before=...)``) and capped counts, on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wfnb import PageCursor, SessionSummary, WorkflowStorage
from wfnb.storage import _listing


def _tie(storage: WorkflowStorage, updated: dict[str, float]) -> None:
    """Give sessions these ``updated_at`` times (ties on purpose), straight in the table."""
    assert storage.db.engine is not None
    table = sa.Table(storage.table_name, sa.MetaData(), autoload_with=storage.db.engine)
    with storage.db.engine.begin() as conn:
        for sid, when in updated.items():
            conn.execute(sa.update(table).where(table.c.session_id == sid)
                         .values(updated_at=when))


def _ids(rows: list[SessionSummary]) -> list[str]:
    return [row.session_id for row in rows]


def test_keyset_pages_walk_every_session_once_in_order_under_ties(
    storage: WorkflowStorage,
) -> None:
    ids = [f"s{n:02d}" for n in range(11)]
    for sid in ids:
        storage.save(sid, {"n": sid}, expected_version=0)
    # three groups of equal times: ties are ordered by id, newest group first
    _tie(storage, {sid: 100.0 + n // 4 for n, sid in enumerate(ids)})
    expected = [*ids[8:], *ids[4:8], *ids[:4]]
    assert _ids(storage.list_sessions(limit=50)) == expected
    walked, page = [], storage.list_sessions(limit=3)
    pages = [page]
    while page:
        walked += _ids(page)
        page = storage.list_sessions(limit=3, after=page[-1])
        pages.append(page)
    assert walked == expected
    # back again with before=, page by page, from the last full page
    back = pages[-2]
    while True:
        previous = storage.list_sessions(limit=3, before=back[0])
        if not previous:
            break
        assert _ids(previous) == expected[expected.index(back[0].session_id) - 3:
                                           expected.index(back[0].session_id)]
        back = previous
    assert _ids(back) == expected[:3]


def test_a_cursor_pages_like_its_row_and_keeps_filters(storage: WorkflowStorage) -> None:
    for n in range(6):
        storage.save(f"job-{n}", {}, expected_version=0, workflow_name="a" if n % 2 else "b")
    first = storage.list_sessions(limit=2, workflow_name="a")
    cursor = first[-1].cursor
    assert isinstance(cursor, PageCursor) and cursor.session_id == first[-1].session_id
    assert _ids(storage.list_sessions(limit=2, after=cursor, workflow_name="a")) == ["job-1"]
    assert _ids(storage.list_sessions(limit=9, after=first[0], search="JOB")) == [
        "job-4", "job-3", "job-2", "job-1", "job-0"]


def test_a_row_not_from_a_listing_is_refused_as_a_cursor(storage: WorkflowStorage) -> None:
    storage.save("s", {}, expected_version=0)
    stored = storage.read("s")
    assert stored is not None
    with pytest.raises(ValueError, match="not listed"):
        storage.list_sessions(after=stored)


def test_paging_stays_stable_when_a_session_is_saved_between_pages(
    storage: WorkflowStorage,
) -> None:
    for n in range(6):
        storage.save(f"s{n}", {}, expected_version=0)
    first = storage.list_sessions(limit=3)
    storage.save("s0", {"moved": True}, expected_version=1)  # jumps to the front
    storage.save("new", {}, expected_version=0)
    assert _ids(first) == ["s5", "s4", "s3"]
    assert _ids(storage.list_sessions(limit=3, after=first[-1])) == ["s2", "s1"]


def test_a_capped_count_stops_at_its_limit(storage: WorkflowStorage) -> None:
    for n in range(5):
        storage.save(f"s{n}", {}, expected_version=0)
    assert storage.count_sessions(limit=3) == 3
    assert storage.count_sessions(limit=10) == storage.count_sessions() == 5
    assert storage.count_sessions(search="s4", limit=3) == 1


def test_before_the_end_lists_the_last_page(storage: WorkflowStorage) -> None:
    for n in range(5):
        storage.save(f"s{n}", {}, expected_version=0)
    assert _ids(storage.list_sessions(limit=2, before=PageCursor.end())) == ["s1", "s0"]


@pytest.mark.parametrize("recent", [3, 5_000])
def test_a_search_finds_the_same_pages_through_recent_rows_or_the_index(
    storage: WorkflowStorage, monkeypatch: pytest.MonkeyPatch, recent: int
) -> None:
    """A search first looks through the newest RECENT rows, then takes every match: matches
    among the newest, among the oldest only, or both, page the same either way."""
    monkeypatch.setattr(_listing, "RECENT", recent)
    for n in range(30):
        storage.save(f"{'old' if n < 10 else 'mid' if n < 25 else 'new'}-{n:02d}", {},
                     expected_version=0)
    for text, expected in (("old", range(9, -1, -1)), ("new", range(29, 24, -1)),
                           ("-1", range(19, 9, -1)), ("d-", range(24, -1, -1))):
        everything = [s.session_id for s in storage.list_sessions(search=text, limit=100)]
        assert [int(sid[-2:]) for sid in everything] == list(expected), text
        pages, after = [], None
        while True:
            page = storage.list_sessions(search=text, limit=4, after=after)
            if not page:
                break
            pages += [s.session_id for s in page]
            after = page[-1]
        assert pages == everything
        back = storage.list_sessions(search=text, limit=4, before=PageCursor.end())
        assert [s.session_id for s in back] == everything[-4:]
