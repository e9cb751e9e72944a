"""History deltas: applying make_delta(old, new) to old gives new back, byte for byte."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES
from wfnb.storage._codec import EncodedState, encode_state
from wfnb.storage._delta import apply_delta, make_delta

PROPERTY = settings(max_examples=EXAMPLES, deadline=None)

State = dict[str, Any]

# --- helpers --------------------------------------------------------------------------------


def rebuilt(old: EncodedState, delta: bytes) -> bytes:
    document = bytearray(old.document)
    apply_delta(document, delta)
    return bytes(document)


def check_delta(base_state: State, new_state: State) -> list[bytes]:
    """Deltas from base to new, with and without per-key parts, each rebuilding new exactly."""
    base, new = encode_state(base_state), encode_state(new_state)
    deltas = []
    for parts in (base.parts, None):
        delta = make_delta(base.document, new.document, parts, new.parts)
        if delta is not None:
            assert rebuilt(base, delta) == new.document
            deltas.append(delta)
    return deltas


def replaced_bytes(delta: bytes) -> int:
    header = orjson.loads(delta[: delta.index(b"\n")])
    return sum(length for _, _, length in header)


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
    check_delta(base, new)


@PROPERTY
@given(edited_states())
def test_delta_after_small_edits_rebuilds_the_new_state(pair: tuple[State, State]) -> None:
    check_delta(*pair)


@PROPERTY
@given(json_states)
def test_delta_to_itself_replaces_nothing(state: State) -> None:
    for delta in check_delta(state, copy.deepcopy(state)):
        assert replaced_bytes(delta) == 0


def long_log(count: int) -> list[dict[str, Any]]:
    return [{"id": n, "text": "entry é " * 20} for n in range(count)]


def test_append_to_a_long_list_costs_about_the_appended_item() -> None:
    base = {"count": 1, "log": long_log(600)}
    new = {"count": 2, "log": [*long_log(600), {"id": 600, "text": "new"}]}
    deltas = check_delta(base, new)
    with_parts = deltas[0]
    assert len(with_parts) < 80  # two small splices: the counter and the appended item
    assert len(encode_state(new).document) > 100_000


def test_without_parts_one_region_is_replaced() -> None:
    base = {"log": long_log(600), "count": 1}
    new = {"log": [*long_log(600), {"id": 600}], "count": 2}
    _, without = check_delta(base, new)
    assert len(orjson.loads(without[: without.index(b"\n")])) == 1
    assert replaced_bytes(without) < 40


def test_a_delta_as_big_as_the_state_is_refused() -> None:
    base, new = encode_state({"a": "x" * 100}), encode_state({"a": "y" * 100})
    assert make_delta(base.document, new.document, base.parts, new.parts) is None


def test_added_keys_are_appended_and_removed_keys_fall_back_to_one_region() -> None:
    check_delta({"a": "x" * 200, "b": 1}, {"a": "x" * 200, "b": 1, "c": 2})
    check_delta({"a": "x" * 200, "b": 1, "c": 2}, {"a": "x" * 200, "c": 2})
    check_delta({"a": "x" * 200, "b": 1}, {"b": 1, "a": "x" * 200})


def test_apply_refuses_a_delta_for_a_shorter_document() -> None:


    base, new = encode_state({"a": "x" * 200}), encode_state({"a": "x" * 200, "b": 1})
    delta = make_delta(base.document, new.document, base.parts, new.parts)
    assert delta is not None
    with pytest.raises(ValueError, match="outside"):
        apply_delta(bytearray(b"{}"), delta)


def test_apply_refuses_a_truncated_delta() -> None:


    base, new = encode_state({"a": "x" * 200}), encode_state({"a": "x" * 200, "b": 12345})
    delta = make_delta(base.document, new.document, base.parts, new.parts)
    assert delta is not None
    with pytest.raises(ValueError, match="add up"):
        apply_delta(bytearray(base.document), delta[:-2])
