"""History deltas: a version stored as what changed since the one before it.

A delta is a small JSON object::

    {"keys": [...every key of the new state, in order...],
     "set": {"key": <new JSON value>},                  # keys whose value was replaced
     "splice": {"key": [prefix, suffix, "middle"]}}     # keys whose JSON text changed in one place

Keys named in ``keys`` but in neither map are unchanged. A splice keeps the first ``prefix`` and
last ``suffix`` bytes of the old value's JSON text and puts ``middle`` between them: appending to
a list, the usual way session_state grows, costs only the appended items.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from wfnb.storage._codec import Parts

_BLOCK = 4096


def make_delta(base: Mapping[str, bytes], new: Mapping[str, bytes]) -> bytes:
    """Encode ``new`` as changes to ``base`` (both per-key JSON parts)."""
    replaced: list[bytes] = []
    splices: dict[str, tuple[int, int, str]] = {}
    for key, raw in new.items():
        old = base.get(key)
        if old == raw:
            continue
        splice = _splice(old, raw) if old is not None else None
        if splice is None:
            replaced.append(orjson.dumps(key) + b":" + raw)
        else:
            splices[key] = splice
    return (
        b'{"keys":' + orjson.dumps(list(new)) + b',"set":{' + b",".join(replaced)
        + b'},"splice":' + orjson.dumps(splices) + b"}"
    )


def apply_delta(base: Mapping[str, bytes], delta: bytes) -> Parts:
    """The parts ``make_delta(base, new)`` was made from."""
    changes = orjson.loads(delta)
    replaced, splices = changes["set"], changes["splice"]
    parts: Parts = {}
    for key in changes["keys"]:
        if key in replaced:
            parts[key] = orjson.dumps(replaced[key])
        elif key in splices:
            prefix, suffix, middle = splices[key]
            old = base[key]
            parts[key] = old[:prefix] + middle.encode() + old[len(old) - suffix :]
        else:
            parts[key] = base[key]
    return parts


def _splice(old: bytes, new: bytes) -> tuple[int, int, str] | None:
    """(prefix, suffix, middle) turning old into new, or None when replacing is as small."""
    limit = min(len(old), len(new))
    prefix = _common_prefix(old, new, limit)
    suffix = _common_suffix(old, new, limit - prefix)
    # Cut on UTF-8 character boundaries so the middle is text.
    while prefix and prefix < len(new) and new[prefix] & 0xC0 == 0x80:
        prefix -= 1
    while suffix and new[len(new) - suffix] & 0xC0 == 0x80:
        suffix -= 1
    middle = new[prefix : len(new) - suffix]
    if len(middle) + 24 >= len(new) // 2:
        return None
    return prefix, suffix, middle.decode()


def _common_prefix(a: bytes, b: bytes, limit: int) -> int:
    start = 0
    while start + _BLOCK <= limit and a[start : start + _BLOCK] == b[start : start + _BLOCK]:
        start += _BLOCK
    end = min(start + _BLOCK, limit)
    while start < end and a[start] == b[start]:
        start += 1
    return start


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    length = 0
    la, lb = len(a), len(b)
    while length + _BLOCK <= limit and (
        a[la - length - _BLOCK : la - length] == b[lb - length - _BLOCK : lb - length]
    ):
        length += _BLOCK
    end = min(length + _BLOCK, limit)
    while length < end and a[la - length - 1] == b[lb - length - 1]:
        length += 1
    return length
