"""Arbitrary JSON states survive a save and a read exactly, on every backend."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfnb import WorkflowStorage

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
KEYS = st.text(max_size=8).filter(lambda key: key != "$wfnb")  # the one reserved key
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5)
    ),
    max_leaves=30,
)
STATES = st.dictionaries(KEYS, JSON, max_size=6)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types and key order at every level (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # tells -0.0 from 0.0
    return bool(a == b)


_ids = itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=STATES, second=STATES)
def test_any_json_state_round_trips_exactly(
    storage: WorkflowStorage, first: dict[str, Any], second: dict[str, Any]
) -> None:
    session_id = f"s{next(_ids)}"
    storage.save(session_id, first, expected_version=0)
    storage.save(session_id, second, expected_version=1, force=True)
    current, previous = storage.read(session_id), storage.read(session_id, 1)
    assert current is not None and previous is not None
    assert same(current.session_state, second)
    assert same(previous.session_state, first)
