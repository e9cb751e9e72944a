"""History deltas: a version stored as byte splices on the document of the version before it.

A delta is ``[[start, end, length], ...]`` (JSON, ascending, non-overlapping offsets into the old
document), a newline, then the replacement bytes one after another. Splices are found key by key
when the old document's per-key parts are known (a change to a counter at the top and an append
to a list at the bottom cost two small splices), else as the one region between the common
prefix and suffix of the two documents. Appending to a list, the usual way session_state grows,
costs about the appended bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

Splice = tuple[int, int, bytes]


def make_delta(
    old: bytes, new: bytes, old_parts: Mapping[str, bytes] | None, new_parts: Mapping[str, bytes]
) -> bytes | None:
    """Encode ``new`` as splices on ``old``; None when a full copy would be about as small."""
    splices = _key_splices(old_parts, new_parts) if old_parts is not None else None
    if splices is None:
        splices = [_trim(0, old, new)]
    size = sum(len(replacement) for _, _, replacement in splices)
    if size * 2 > len(new):
        return None
    header = orjson.dumps([[start, end, len(rep)] for start, end, rep in splices])
    return header + b"\n" + b"".join(rep for _, _, rep in splices)


def apply_delta(document: bytearray, delta: bytes) -> None:
    """Turn ``document`` (the old version, edited in place) into the new one."""
    newline = delta.index(b"\n")
    splices = orjson.loads(delta[:newline])
    position = newline + 1
    pieces = []
    for start, end, length in splices:
        pieces.append((start, end, delta[position : position + length]))
        position += length
    if position != len(delta):
        raise ValueError("delta replacements do not add up to its length")
    for start, end, replacement in reversed(pieces):  # later splices first: offsets stay valid
        if not 0 <= start <= end <= len(document):
            raise ValueError(f"delta splice {start}:{end} outside a {len(document)}-byte document")
        document[start:end] = replacement


def _key_splices(
    old_parts: Mapping[str, bytes], new_parts: Mapping[str, bytes]
) -> list[Splice] | None:
    """Splices per changed top-level value, plus new keys appended; None if keys were removed
    or reordered (then the whole-document splice is used)."""
    old_keys = list(old_parts)
    new_keys = list(new_parts)
    if new_keys[: len(old_keys)] != old_keys:
        return None
    splices: list[Splice] = []
    position = 1  # after "{"
    for index, key in enumerate(old_keys):
        position += (1 if index else 0) + len(orjson.dumps(key)) + 1  # [","] "key" ":"
        old_value, new_value = old_parts[key], new_parts[key]
        if old_value != new_value:
            splices.append(_trim(position, old_value, new_value))
        position += len(old_value)
    added = new_keys[len(old_keys) :]
    if added:
        entries = b",".join(orjson.dumps(key) + b":" + new_parts[key] for key in added)
        splices.append((position, position, (b"," if old_keys else b"") + entries))
    return splices


def _trim(offset: int, old: bytes, new: bytes) -> Splice:
    """The one splice turning ``old`` into ``new``, placed at ``offset`` in the document."""
    prefix = _common_prefix(old, new)
    suffix = _common_suffix(old, new, min(len(old), len(new)) - prefix)
    return offset + prefix, offset + len(old) - suffix, new[prefix : len(new) - suffix]


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by binary search with memcmp-speed compares (no copies)."""
    view, low, high = memoryview(a), 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if b.startswith(view[low:middle], low):
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common suffix, at most ``limit`` (so it never overlaps the prefix)."""
    view, la, lb = memoryview(a), len(a), len(b)
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if b.endswith(view[la - middle : la - low], 0, lb - low):
            low = middle
        else:
            high = middle - 1
    return low
