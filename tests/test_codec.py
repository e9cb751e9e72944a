"""The session_state codec: exact round-trips, deterministic bytes, and refusals naming a path."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import subprocess
import sys
import uuid
import zoneinfo
from collections import OrderedDict, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES
from wfnb import UnstorableStateError
from wfnb.storage._codec import decode_state, encode_state, join_parts, parts_of

PROPERTY = settings(max_examples=EXAMPLES, deadline=None)
PARIS = ZoneInfo("Europe/Paris")

# --- helpers --------------------------------------------------------------------------------


def _same_tz(got: dt.tzinfo | None, want: dt.tzinfo | None) -> bool:
    if want is None:
        return got is None
    if isinstance(want, ZoneInfo):
        return isinstance(got, ZoneInfo) and got.key == want.key
    return (
        type(got) is type(want)
        and got == want
        and got is not None
        and got.tzname(None) == want.tzname(None)
    )


def assert_same(got: Any, want: Any, where: str = "state") -> None:
    """Equal, with exactly the same types, key order, float bits, Decimal digits, fold and zone."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: key order"
        for key, item in want.items():
            assert_same(got[key], item, f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{where}: length"
        for index, (got_item, want_item) in enumerate(zip(got, want, strict=True)):
            assert_same(got_item, want_item, f"{where}[{index}]")
    elif isinstance(want, (set, frozenset)):
        assert got == want, where
        by_value = {item: item for item in got}
        for item in want:
            assert_same(by_value[item], item, f"{where}{{{item!r}}}")
    elif isinstance(want, float):
        assert repr(got) == repr(want), where  # also tells -0.0 from 0.0
    elif isinstance(want, Decimal):
        assert str(got) == str(want), where  # Decimal("1.0") == Decimal("1.00"), but not here
    elif isinstance(want, (dt.datetime, dt.time)):
        assert got.replace(tzinfo=None) == want.replace(tzinfo=None), where
        assert got.fold == want.fold, f"{where}: fold"
        assert _same_tz(got.tzinfo, want.tzinfo), f"{where}: {got.tzinfo!r} != {want.tzinfo!r}"
    else:
        assert got == want, where


def round_trip(state: dict[str, Any]) -> dict[str, Any]:
    return decode_state(encode_state(state).document)


def refuse(state: Any) -> UnstorableStateError:
    """Encoding ``state`` is refused, leaving it untouched and writing nothing."""
    before = repr(state)
    with pytest.raises(UnstorableStateError) as info:
        encode_state(state)
    assert repr(state) == before
    assert str(info.value).startswith(info.value.path + ": ")
    assert str(info.value).endswith("nothing was written")
    return info.value


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


# --- strategies ---------------------------------------------------------------------------

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text() | st.sampled_from(["", "\x00", "a\x00b", "😀", "é€😀𝄞", '"$wfnb"', "\\u0000"])
keys = texts.filter(lambda key: key != "$wfnb")
json_scalars = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)
json_states = st.dictionaries(keys, json_values, max_size=6)

offsets = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
).filter(lambda offset: not offset or abs(offset) >= dt.timedelta(seconds=1))  # see refusals
fixed_zones = st.builds(dt.timezone, offsets) | st.builds(dt.timezone, offsets, st.text(max_size=8))
datetimes = st.builds(
    lambda value, fold: value.replace(fold=fold),
    st.datetimes(timezones=st.none() | st.just(dt.timezone.utc) | fixed_zones | st.timezones()),
    st.integers(0, 1),
)
times = st.builds(
    lambda value, fold: value.replace(fold=fold),
    st.times(timezones=st.none() | fixed_zones),
    st.integers(0, 1),
)
hashable_scalars = (
    json_scalars
    | st.binary()
    | datetimes
    | st.dates()
    | times
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False)
)
hashables = st.recursive(
    hashable_scalars,
    lambda children: (
        st.lists(children, max_size=3).map(tuple) | st.frozensets(children, max_size=3)
    ),
    max_leaves=10,
)
any_values = st.recursive(
    hashable_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=20,
)
any_states = st.dictionaries(keys, any_values, max_size=5)


# --- plain JSON ---------------------------------------------------------------------------


@PROPERTY
@given(json_states)
def test_json_states_round_trip_with_exact_types_and_key_order(state: dict[str, Any]) -> None:
    assert_same(round_trip(state), state)


@PROPERTY
@given(json_states)
def test_json_state_document_is_what_orjson_writes(state: dict[str, Any]) -> None:
    encoded = encode_state(state)
    assert encoded.document == orjson.dumps(state)
    assert encoded.parts == {key: orjson.dumps(value) for key, value in state.items()}
    assert join_parts(encoded.parts) == encoded.document


@PROPERTY
@given(any_states)
def test_parts_of_the_document_are_the_encoded_parts(state: dict[str, Any]) -> None:
    encoded = encode_state(state)
    assert parts_of(encoded.document) == encoded.parts
    assert list(parts_of(encoded.document)) == list(state)


def test_type_helper_tells_int_float_and_bool_apart() -> None:
    for got, want in [(1, 1.0), (1.0, 1), (True, 1), (1, True), (0.0, -0.0), ((1,), [1])]:
        with pytest.raises(AssertionError):
            assert_same(got, want)


def test_numbers_keep_their_types() -> None:
    state = {"int": 1, "float": 1.0, "true": True, "zero": -0.0, "big": 2**64 - 1, "low": -(2**63)}
    assert_same(round_trip(state), state)


def test_empty_state_round_trips() -> None:
    assert encode_state({}).document == b"{}"
    assert_same(round_trip({}), {})


def test_nested_key_order_is_kept() -> None:
    state = {"z": {"b": 1, "a": {"y": 2, "x": 3}}, "a": [{"d": 0, "c": 1}]}
    result = round_trip(state)
    assert list(result) == ["z", "a"]
    assert list(result["z"]) == ["b", "a"]
    assert list(result["z"]["a"]) == ["y", "x"]
    assert list(result["a"][0]) == ["d", "c"]


def test_nul_and_astral_text_round_trips() -> None:
    state = {"\x00key😀": "a\x00b", "emoji": "😀𝄞", "mixed": "é€😀"}
    assert_same(round_trip(state), state)


def test_decode_accepts_str_documents() -> None:
    state = {"when": dt.date(2024, 2, 29), "text": "é😀"}
    assert_same(decode_state(encode_state(state).document.decode()), state)


# --- extra types --------------------------------------------------------------------------

EXTRA_VALUES: dict[str, Any] = {
    "tuple": (1, "a", None),
    "empty tuple": (),
    "nested tuple": ((1, (2.0, (True,))), [(), {"k": (None,)}]),
    "set": {1, "a", 2.5, (1, 2)},
    "empty set": set(),
    "frozenset": frozenset({"x", frozenset({1, 2}), (3,)}),
    "bytes": b"\x00\xff binary \x80",
    "empty bytes": b"",
    "naive datetime": dt.datetime(2024, 3, 31, 2, 30, 15, 123456),
    "utc datetime": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc),
    "offset datetime": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "sub-minute offset": dt.datetime(
        2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=3601, microseconds=5))
    ),
    "named offset": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
    "zoneinfo datetime": dt.datetime(2024, 7, 14, 9, 30, tzinfo=PARIS),
    "zoneinfo fold 0": dt.datetime(2021, 10, 31, 2, 30, tzinfo=PARIS, fold=0),
    "zoneinfo fold 1": dt.datetime(2021, 10, 31, 2, 30, tzinfo=PARIS, fold=1),
    "naive fold 1": dt.datetime(2021, 10, 31, 2, 30, fold=1),
    "date": dt.date(2024, 2, 29),
    "time": dt.time(23, 59, 59, 999999),
    "time with offset": dt.time(8, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    "time fold 1": dt.time(1, 30, fold=1),
    "timedelta": dt.timedelta(days=3, seconds=7, microseconds=11),
    "negative timedelta": dt.timedelta(microseconds=-1),
    "big negative timedelta": dt.timedelta(days=-999999999),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "uuid4": uuid.uuid4(),
    "decimal": Decimal("3.14"),
    "decimal trailing zeros": Decimal("1.500"),
    "decimal exponent": Decimal("-1.2E+40"),
    "decimal negative zero": Decimal("-0"),
    "decimal high precision": Decimal("3.14159265358979323846264338327950288419716939937510582097"),
}


@pytest.mark.parametrize("name", list(EXTRA_VALUES))
def test_extra_type_round_trips_with_its_type(name: str) -> None:
    state = {"value": EXTRA_VALUES[name], "inside": [{"list": EXTRA_VALUES[name]}]}
    assert_same(round_trip(state), state)


def test_all_extra_types_together_round_trip() -> None:
    assert_same(round_trip(dict(EXTRA_VALUES)), EXTRA_VALUES)


def test_extra_types_are_stored_as_tagged_plain_json() -> None:
    document = encode_state({"t": (1, 2), "b": b"hi"}).document
    assert orjson.loads(document) == {
        "t": {"$wfnb": "tuple", "v": [1, 2]},
        "b": {"$wfnb": "bytes", "v": "aGk="},
    }


def test_fold_picks_the_offset_after_a_round_trip() -> None:
    first = dt.datetime(2021, 10, 31, 2, 30, tzinfo=PARIS, fold=0)
    second = first.replace(fold=1)
    assert round_trip({"d": first})["d"].utcoffset() == dt.timedelta(hours=2)
    assert round_trip({"d": second})["d"].utcoffset() == dt.timedelta(hours=1)


def test_named_fixed_offset_keeps_its_name() -> None:
    value = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET"))
    assert round_trip({"d": value})["d"].tzname() == "CET"


def reordered(items: list[Any]) -> set[Any]:
    """A set of ``items`` grown through a bigger table, so that it iterates in another order."""
    grown = {("padding", index) for index in range(1000)} | set(items)
    return grown - {("padding", index) for index in range(1000)}


def test_same_set_encodes_to_same_bytes_whatever_the_insertion_order() -> None:
    items = [f"item-{index}" for index in range(40)] + ["é", "😀", 3, (1, "a"), None, 2.5]
    first, second = set(items), reordered(items)
    assert first == second
    assert list(first) != list(second)  # the point: same set, different iteration order
    assert encode_state({"s": first}).document == encode_state({"s": second}).document
    assert (
        encode_state({"s": frozenset(first)}).document
        == encode_state({"s": frozenset(second)}).document
    )


def test_set_bytes_do_not_depend_on_the_hash_seed() -> None:
    script = (
        "import sys; from wfnb.storage._codec import encode_state; "
        "s = {f'item-{i}' for i in range(50)} | {('t', i) for i in range(5)}; "
        "sys.stdout.buffer.write(encode_state({'s': s, 'f': frozenset(s)}).document)"
    )
    documents = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(documents) == 1


@PROPERTY
@given(st.lists(hashables, max_size=8))
def test_set_bytes_do_not_depend_on_insertion_order(items: list[Any]) -> None:
    first, second = set(items), reordered(items)
    assert encode_state({"s": first}).document == encode_state({"s": second}).document


@PROPERTY
@given(any_states)
def test_mixed_extra_types_round_trip_exactly(state: dict[str, Any]) -> None:
    assert_same(round_trip(state), state)


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_float_is_refused_at_its_path(bad: float) -> None:
    error = refuse({"ok": 1, "a": [{"b": bad}]})
    assert error.path == 'session_state["a"][0]["b"]'
    assert "NaN and Infinity are refused" in error.reason


def test_path_quotes_keys_as_json_strings() -> None:
    error = refuse({'we"ird\\': {"é😀": [0, [math.nan]]}})
    assert error.path == 'session_state["we\\"ird\\\\"]["é😀"][1][0]'


def test_path_names_the_index_inside_a_tuple() -> None:
    assert refuse({"t": (1, 2, (3, math.inf))}).path == 'session_state["t"][2][1]'


def test_first_bad_value_in_order_is_named() -> None:
    assert refuse({"a": 1, "b": [0, object()], "c": math.nan}).path == 'session_state["b"][1]'


@pytest.mark.parametrize("bad", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_decimal_is_refused(bad: str) -> None:
    error = refuse({"d": {"x": Decimal(bad)}})
    assert error.path == 'session_state["d"]["x"]'
    assert "not finite" in error.reason


@pytest.mark.parametrize("bad", [2**64, -(2**63) - 1, 10**100])
def test_int_beyond_64_bits_is_refused(bad: int) -> None:
    error = refuse({"n": [bad]})
    assert error.path == 'session_state["n"][0]'
    assert "64 bits" in error.reason


@pytest.mark.parametrize("key", [1, (1, 2), None, 1.5, b"k"])
def test_non_str_key_is_refused_at_its_dict(key: Any) -> None:
    error = refuse({"outer": {key: "value"}})
    assert error.path == 'session_state["outer"]'
    assert "keys must be str" in error.reason


def test_non_str_top_level_key_is_refused() -> None:
    error = refuse({1: "value"})
    assert error.path == "session_state"
    assert "keys must be str" in error.reason


def test_str_subclass_key_is_refused() -> None:
    class Key(str):
        pass

    assert "keys must be str" in refuse({Key("k"): 1}).reason


@pytest.mark.parametrize(
    ("state", "path"),
    [
        ({"$wfnb": 1}, "session_state"),
        ({"a": [{"$wfnb": "tuple", "v": []}]}, 'session_state["a"][0]'),
    ],
)
def test_reserved_key_is_refused(state: dict[str, Any], path: str) -> None:
    error = refuse(state)
    assert error.path == path
    assert "reserved" in error.reason


def test_plain_object_is_refused() -> None:
    error = refuse({"o": object()})
    assert error.path == 'session_state["o"]'
    assert error.reason == "object cannot be stored as JSON"


def test_class_instance_is_refused() -> None:
    class Thing:
        def __init__(self) -> None:
            self.x = 1

    error = refuse({"things": [Thing()]})
    assert error.path == 'session_state["things"][0]'
    assert "Thing cannot be stored" in error.reason


def test_dataclass_instance_is_refused_suggesting_asdict() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    error = refuse({"p": Point(1, 2)})
    assert error.path == 'session_state["p"]'
    assert "dataclasses.asdict" in error.reason


def test_pydantic_like_model_is_refused_suggesting_model_dump() -> None:
    class Model:
        def model_dump(self) -> dict[str, Any]:
            return {}

    error = refuse({"m": {"inner": Model()}})
    assert error.path == 'session_state["m"]["inner"]'
    assert "model_dump()" in error.reason


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize("member", [Color.RED, Level.HIGH])
def test_enum_member_is_refused(member: enum.Enum) -> None:
    error = refuse({"e": member})
    assert error.path == 'session_state["e"]'
    assert type(member).__name__ in error.reason


class Name(str):
    pass


class Count(int):
    pass


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (OrderedDict(a=1), "dict"),
        (defaultdict(list, a=[1]), "dict"),
        (Name("x"), "str"),
        (Count(3), "int"),
    ],
)
def test_subclass_is_refused_saying_it_would_come_back_plain(value: Any, plain: str) -> None:
    error = refuse({"a": [value]})
    assert error.path == 'session_state["a"][0]'
    assert f"would come back as a plain {plain}" in error.reason


def test_list_containing_itself_is_refused() -> None:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    error = refuse({"a": cycle})
    assert error.path == "session_state"
    assert "cycle" in error.reason


def test_dict_containing_itself_is_refused() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    assert "cycle" in refuse({"a": cycle}).reason


def test_very_deep_nesting_is_refused_without_crashing() -> None:
    state = {"a": nested_lists(100_000)}
    with pytest.raises(UnstorableStateError) as info:
        encode_state(state)
    assert info.value.path == "session_state"
    assert "too deep" in info.value.reason


def test_deepest_storable_nesting_round_trips() -> None:
    state = {"a": nested_lists(253)}  # the document, one level more, is what orjson writes
    assert_same(round_trip(state), state)
    document = encode_state(state).document
    assert orjson.loads(orjson.dumps(orjson.loads(document), option=orjson.OPT_INDENT_2)) == state


@pytest.mark.parametrize("depth", [254, 255, 300])
def test_nesting_deeper_than_json_allows_is_refused_at_its_key(depth: int) -> None:
    error = refuse({"ok": 1, "a": nested_lists(depth)})
    assert error.path == 'session_state["a"]'
    assert "at most 253 levels" in error.reason


@pytest.mark.parametrize(("leaf", "own"), [
    ("text", 0), ({}, 1), ([], 1), (dt.date(2024, 1, 1), 1), ((1,), 2), (frozenset({1}), 2),
])
def test_the_depth_limit_is_the_same_for_every_kind_of_value(leaf: Any, own: int) -> None:
    """An empty container is a level; a tagged value adds its own (a tuple or set two)."""
    for depth, storable in ((253, True), (254, False)):
        value: Any = leaf
        for _ in range(depth - own):
            value = {"k": value}
        if storable:
            document = encode_state({"a": value}).document
            orjson.dumps(orjson.loads(document))  # what show, diff and export do
        else:
            assert refuse({"a": value}).path == 'session_state["a"]'


def test_deep_tuples_count_twice_and_are_refused() -> None:
    value: Any = ()
    for _ in range(200):
        value = (value,)
    assert refuse({"t": value}).path == 'session_state["t"]'


@pytest.mark.parametrize("state", [[1, 2], (("a", 1),), "text", None, OrderedDict(a=1)])
def test_top_level_non_dict_is_refused(state: Any) -> None:
    error = refuse(state)
    assert error.path == "session_state"
    assert "must be a dict" in error.reason


def test_custom_root_names_the_path() -> None:
    with pytest.raises(UnstorableStateError) as info:
        encode_state({"a": [math.nan]}, root="state")
    assert info.value.path == 'state["a"][0]'


class Plus2(dt.tzinfo):
    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=2)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "+2"


@pytest.mark.parametrize(
    "value", [dt.datetime(2024, 1, 1, tzinfo=Plus2()), dt.time(tzinfo=Plus2())]
)
def test_datetime_with_custom_tzinfo_is_refused(value: dt.datetime | dt.time) -> None:
    error = refuse({"when": [value]})
    assert error.path == 'session_state["when"][0]'
    assert "Plus2 does not round-trip" in error.reason


@pytest.mark.parametrize("microseconds", [1, -1, 999_999, -999_999])
def test_nonzero_utc_offset_under_a_second_is_refused(microseconds: int) -> None:
    # datetime.fromisoformat reads "+00:00:00.000001" back as UTC (seen on CPython 3.11)
    zone = dt.timezone(dt.timedelta(microseconds=microseconds))
    for value in (dt.datetime(2024, 1, 1, tzinfo=zone), dt.time(tzinfo=zone)):
        error = refuse({"when": value})
        assert error.path == 'session_state["when"]'
        assert "under a second" in error.reason


def test_time_with_zoneinfo_is_refused() -> None:
    assert "no fixed offset" in refuse({"t": dt.time(12, tzinfo=PARIS)}).reason


def test_zoneinfo_without_key_is_refused() -> None:
    files = [Path(root, "Europe", "Paris") for root in zoneinfo.TZPATH]
    found = next((file for file in files if file.is_file()), None)
    if found is None:
        pytest.skip("no system tz database file to load with ZoneInfo.from_file")
    with found.open("rb") as file:
        zone = ZoneInfo.from_file(file)
    error = refuse({"d": dt.datetime(2024, 1, 1, tzinfo=zone)})
    assert error.path == 'session_state["d"]'
    assert "without a key" in error.reason


@pytest.mark.parametrize(
    ("state", "path"),
    [
        ({"a": ["ok", "bad \ud800"]}, 'session_state["a"][1]'),
        ({"a": {"bad \udfff": 1}}, 'session_state["a"]'),
        ({"\ud83d": 1}, "session_state"),
    ],
)
def test_lone_surrogate_is_refused_at_its_path(state: dict[str, Any], path: str) -> None:
    error = refuse(state)
    assert error.path == path
    assert "surrogate" in error.reason


def test_refusal_is_a_type_error() -> None:
    assert isinstance(refuse({"a": object()}), TypeError)


# --- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document", [b"[1, 2]", b'"text"', b"null", b"", b"{", b'{"a": 1', b"\xff\xfe", b"{'a': 1}"]
)
def test_decoding_a_non_object_or_corrupt_document_raises_value_error(document: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - orjson.JSONDecodeError is a ValueError
        decode_state(document)


def test_decoding_an_unknown_tag_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        decode_state(b'{"a": {"$wfnb": "pickle", "v": "..."}}')


def test_parts_of_a_list_document_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not an object"):
        parts_of(b"[]")
