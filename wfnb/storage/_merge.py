"""The one rule for two writers of one session: disjoint top-level keys merge, shared keys conflict.

Used by storage when a compare-and-swap save finds a newer version, and by Workflow when edits
made outside a run meet a state that moved on. A key counts as changed when its JSON text differs
from the common base; two writers that both set a key, even to equal values, conflict (two
increments from 0 both give 1, and one of them would be lost).
"""

from __future__ import annotations

from collections.abc import Mapping

from wfnb._errors import SessionConflictError
from wfnb.storage._codec import Parts


def changed_keys(base: Mapping[str, bytes], state: Mapping[str, bytes]) -> set[str]:
    """Top-level keys added, removed or changed in ``state`` relative to ``base``."""
    return {key for key in base.keys() | state.keys() if base.get(key) != state.get(key)}


def merge_parts(
    base: Mapping[str, bytes], ours: Mapping[str, bytes], theirs: Mapping[str, bytes]
) -> tuple[Parts, set[str]] | set[str]:
    """(merged parts, keys taken from theirs), or the set of keys both sides changed."""
    ours_changed = changed_keys(base, ours)
    theirs_changed = changed_keys(base, theirs)
    if both := ours_changed & theirs_changed:
        return both
    merged = {key: raw for key, raw in theirs.items() if key not in ours_changed or key in ours}
    for key in ours_changed:
        if key in ours:
            merged[key] = ours[key]
    return merged, theirs_changed


def merge_or_conflict(
    session_id: str,
    base: Mapping[str, bytes],
    ours: Mapping[str, bytes],
    theirs: Mapping[str, bytes],
    *,
    expected_version: int,
    stored_version: int,
) -> tuple[Parts, set[str]]:
    """(merged parts, keys taken from theirs); SessionConflictError naming the keys both sides
    changed, ``expected_version`` being what ours was based on, ``stored_version`` theirs."""
    result = merge_parts(base, ours, theirs)
    if isinstance(result, set):
        raise SessionConflictError(
            session_id, keys=result, expected_version=expected_version,
            stored_version=stored_version,
        )
    return result
