"""History deltas: applying make_delta(base, new) to base gives new back, byte for byte."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfnb.storage._codec import EncodedState, encode_state, join_parts
from wfnb.storage._delta import apply_delta, make_delta

PROPERTY = settings(max_examples=200, deadline=None)

State = dict[str, Any]

# --- helpers --------------------------------------------------------------------------------


def delta_between(base_state: State, new_state: State) -> tuple[EncodedState, bytes]:
    """The delta from base to new, checked to rebuild new exactly (parts, key order, document)."""
    base, new = encode_state(base_state), encode_state(new_state)
    delta = make_delta(base.parts, new.parts)
    parts = apply_delta(base.parts, delta)
    assert parts == new.parts
    assert list(parts) == list(new.parts)
    assert join_parts(parts) == new.document
    for key, (prefix, suffix, middle) in orjson.loads(delta)["splice"].items():
        old = base.parts[key]
        # Both kept pieces of the old JSON text are whole UTF-8 text: no character was cut.
        old[:prefix].decode("utf-8", errors="strict")
        old[len(old) - suffix :].decode("utf-8", errors="strict")
        assert isinstance(middle, str)
    return base, delta


def changes(delta: bytes) -> dict[str, Any]:
    decoded = orjson.loads(delta)
    assert isinstance(decoded, dict)
    return decoded


# --- strategies ---------------------------------------------------------------------------

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
# Characters of 2, 3 and 4 UTF-8 bytes in groups of neighbours sharing lead or trailing bytes
# (é C3 A9, è C3 A8, ĩ C4 A9...), plus ASCII and characters JSON escapes.
NEIGHBOUR_GROUPS = ["éèĩ", "€₭Ⴌ", "😀😁🙀"]
TRICKY = "".join(NEIGHBOUR_GROUPS) + 'a\x00"\\\n'
tricky_texts = st.text(alphabet=st.sampled_from(TRICKY))
texts = st.text() | tricky_texts
keys = texts.filter(lambda key: key != "$wfnb")
json_values = st.recursive(
    st.none() | st.booleans() | ints | floats | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=12,
)
json_states = st.dictionaries(keys, json_values, max_size=6)
records = st.fixed_dictionaries({"id": ints, "note": tricky_texts, "score": floats}) | json_values

EDITS = [
    "append",
    "swap neighbour",
    "change item",
    "edit text",
    "change value",
    "add key",
    "delete key",
    "move key to end",
    "delete and re-add changed",
]


@st.composite
def edited_states(draw: st.DrawFn) -> tuple[State, State]:
    """A base state with a log and a long text, and the same state after a few small edits."""
    base: State = draw(st.dictionaries(keys, json_values, max_size=4))
    base["log"] = draw(st.lists(records, min_size=5, max_size=30))
    base["text"] = draw(st.text(alphabet=st.sampled_from(TRICKY), min_size=40, max_size=200))
    base.update(draw(st.dictionaries(keys, json_values, max_size=2)))
    new = copy.deepcopy(base)
    for edit in draw(st.lists(st.sampled_from(EDITS), min_size=1, max_size=3)):
        if edit == "append" and isinstance(new.get("log"), list):
            new["log"].extend(draw(st.lists(records, min_size=1, max_size=3)))
        elif edit == "change item" and isinstance(new.get("log"), list) and new["log"]:
            index = draw(st.integers(0, len(new["log"]) - 1))
            new["log"][index] = draw(records)
        elif edit == "edit text" and isinstance(new.get("text"), str):
            text: str = new["text"]
            start = draw(st.integers(0, len(text)))
            end = draw(st.integers(start, min(len(text), start + 3)))
            middle = draw(st.text(alphabet=st.sampled_from(TRICKY), max_size=3))
            new["text"] = text[:start] + middle + text[end:]
        elif edit == "swap neighbour" and isinstance(new.get("text"), str):
            text = new["text"]
            index = draw(st.integers(0, len(text) - 1)) if text else 0
            group = next((g for g in NEIGHBOUR_GROUPS if text[index : index + 1] in g), None)
            if group is not None:
                char = draw(st.sampled_from(group.replace(text[index], "")))
                new["text"] = text[:index] + char + text[index + 1 :]
        elif edit == "change value" and new:
            new[draw(st.sampled_from(sorted(new)))] = draw(json_values)
        elif edit == "add key":
            new[draw(keys)] = draw(json_values)
        elif edit == "delete key" and new:
            del new[draw(st.sampled_from(sorted(new)))]
        elif edit == "move key to end" and new:
            key = draw(st.sampled_from(sorted(new)))
            new[key] = new.pop(key)
        elif edit == "delete and re-add changed" and new:
            key = draw(st.sampled_from(sorted(new)))
            del new[key]
            new[key] = draw(json_values)
    return base, new


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(json_states, json_states)
def test_delta_between_any_two_states_rebuilds_the_new_one(base: State, new: State) -> None:
    delta_between(base, new)


@PROPERTY
@given(edited_states())
def test_delta_after_small_edits_rebuilds_the_new_state(pair: tuple[State, State]) -> None:
    delta_between(*pair)


@PROPERTY
@given(json_states)
def test_delta_to_itself_changes_nothing(state: State) -> None:
    _, delta = delta_between(state, state)
    assert changes(delta) == {"keys": list(state), "set": {}, "splice": {}}


@PROPERTY
@given(json_states)
def test_delta_from_empty_state_sets_every_key(state: State) -> None:
    _, delta = delta_between({}, state)
    assert list(changes(delta)["set"]) == list(state)


# --- size ---------------------------------------------------------------------------------


def long_log(count: int) -> list[dict[str, Any]]:
    return [{"i": index, "msg": f"message number {index} é€😀"} for index in range(count)]


def test_append_to_a_long_list_costs_only_the_appended_item() -> None:
    log = long_log(2500)
    new_state = {"log": [*log, {"i": 2500, "msg": "the new one"}]}
    base, delta = delta_between({"log": log}, new_state)
    assert len(base.document) > 100_000
    assert len(delta) < 0.05 * len(base.document)
    assert list(changes(delta)["splice"]) == ["log"]
    assert b"the new one" in delta


def test_unchanged_key_is_not_repeated_in_the_delta() -> None:
    other = {"big": "unchanged text " * 500}
    _, delta = delta_between(
        {"other": other, "log": long_log(100), "n": 1},
        {"other": other, "log": long_log(101), "n": 2},
    )
    assert b"unchanged text" not in delta
    decoded = changes(delta)
    assert decoded["keys"] == ["other", "log", "n"]
    assert "other" not in decoded["set"]
    assert "other" not in decoded["splice"]


def test_small_value_change_is_set_not_spliced() -> None:
    _, delta = delta_between({"n": 1, "s": "short"}, {"n": 2, "s": "shirt"})
    assert changes(delta)["set"] == {"n": 2, "s": "shirt"}
    assert changes(delta)["splice"] == {}


def test_wholly_different_long_value_is_set_not_spliced() -> None:
    _, delta = delta_between({"s": "a" * 1000}, {"s": "b" * 1000})
    assert changes(delta)["set"] == {"s": "b" * 1000}


# --- keys ---------------------------------------------------------------------------------


def test_deleted_key_is_gone() -> None:
    base, delta = delta_between({"a": 1, "b": 2, "c": 3}, {"a": 1, "c": 3})
    assert list(apply_delta(base.parts, delta)) == ["a", "c"]


def test_key_deleted_and_readded_moves_to_the_end() -> None:
    base, delta = delta_between({"a": 1, "b": [1, 2], "c": 3}, {"a": 1, "c": 3, "b": [1, 2]})
    assert list(apply_delta(base.parts, delta)) == ["a", "c", "b"]
    assert changes(delta)["set"] == {}  # moved, not rewritten


def test_new_key_is_set() -> None:
    _, delta = delta_between({"a": 1}, {"a": 1, "é😀": {"x": [1]}})
    assert changes(delta)["set"] == {"é😀": {"x": [1]}}


def test_delta_to_empty_state_is_empty() -> None:
    base, delta = delta_between({"a": 1, "b": "x" * 100}, {})
    assert apply_delta(base.parts, delta) == {}


def test_delta_of_tagged_values_rebuilds_them() -> None:
    base = {"t": tuple(range(300)), "s": {"x", "y"}, "b": b"\x00" * 400}
    new = {"t": (*range(300), "end"), "s": {"x", "y", "z"}, "b": b"\x00" * 401}
    delta_between(base, new)


# --- UTF-8 boundaries ---------------------------------------------------------------------

NEIGHBOURS = [
    ("é", "è"),  # C3 A9 -> C3 A8: same lead byte
    ("é", "ĩ"),  # C3 A9 -> C4 A9: same trailing byte
    ("€", "₭"),  # E2 82 AC -> E2 82 AD: two shared lead bytes
    ("€", "Ⴌ"),  # E2 82 AC -> E1 82 AC: two shared trailing bytes
    ("😀", "😁"),  # F0 9F 98 80 -> F0 9F 98 81: three shared lead bytes
    ("😀", "🙀"),  # F0 9F 98 80 -> F0 9F 99 80: shared lead and trailing bytes
    ("😀", "€"),
    ("é", "😀"),
    ("a", "é"),
    ("é", ""),
    ("", "😀"),
]


@pytest.mark.parametrize(("old", "new"), NEIGHBOURS)
@pytest.mark.parametrize("around", ["x", "é", "€", "😀"])
def test_splice_never_cuts_a_character(old: str, new: str, around: str) -> None:
    pad = around * 200
    base, delta = delta_between({"text": pad + old + pad}, {"text": pad + new + pad})
    prefix, suffix, middle = changes(delta)["splice"]["text"]
    assert new in middle
    assert len(middle.encode()) <= len(new.encode()) + 2 * len(around.encode())
    assert len(base.parts["text"]) - prefix - suffix <= len(old.encode()) + 2 * len(around.encode())


def test_neighbour_pairs_really_share_bytes() -> None:
    for old, new in NEIGHBOURS[:6]:
        old_bytes, new_bytes = old.encode(), new.encode()
        assert old_bytes[0] == new_bytes[0] or old_bytes[-1] == new_bytes[-1]


@pytest.mark.parametrize(("old", "new"), [pair for pair in NEIGHBOURS if all(pair)])
def test_list_edits_next_to_multibyte_text_are_spliced_whole(old: str, new: str) -> None:
    items = [old] * 300
    for edited in ([new, *items], [*items, new], [*items[:150], new, *items[150:]]):
        _, delta = delta_between({"items": items}, {"items": edited})
        assert list(changes(delta)["splice"]) == ["items"]
        assert len(delta) < 100
