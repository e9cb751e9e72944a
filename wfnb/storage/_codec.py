"""session_state <-> JSON bytes, with orjson, exactly or not at all.

What is stored is plain JSON. Besides JSON's own types (dict with str keys, list, str, int within
64 bits, finite float, bool, None) a fixed set of Python types round-trips exactly, written as a
tagged object ``{"$wfnb": "<type>", "v": ...}``: tuple, set, frozenset, bytes, datetime (naive,
UTC/fixed offset, or zoneinfo), date, time, timedelta, UUID, Decimal. Everything else (NaN,
Infinity, objects, dataclasses, enums, subclasses of dict/str/int...) is refused with an
:class:`~wfnb.UnstorableStateError` naming its path, before anything is written: no value is
silently turned into something that does not come back. No pickle, no eval, ever.

A stored document nests at most 254 levels, the most orjson reads and writes back (the state
itself is one, so a top-level value nests at most 253; a tuple or set counts 2): whatever
saves can also be loaded, shown, diffed and exported.

A state is encoded key by key (``parts``), so that history can store per-key deltas and a
concurrent save can tell which top-level keys each writer changed.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import itertools
import math
import operator
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

TAG = "$wfnb"
_TAG_BYTES = b'"$wfnb"'
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
MAX_DEPTH = 254  # levels a document nests at most: orjson refuses to write a deeper one
_PLAIN = (bool, type(None))
_TAGGED_TYPES = (
    tuple, set, frozenset, bytes, dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID, Decimal
)

State = dict[str, Any]
Parts = dict[str, bytes]


@dataclass(frozen=True)
class EncodedState:
    """A state as stored: one JSON value per top-level key, and the whole document."""

    parts: Parts
    document: bytes
    tagged: bool = False  # holds tagged extra types (decoding must revive them)


class _Refused(Exception):
    """Raised deep inside the scan; collects the path on its way out."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str | int] = []


def format_path(root: str, path: list[str | int]) -> str:
    """``session_state["a"][3]`` from ``["a", 3]`` (keys quoted as JSON strings)."""
    return root + "".join(f"[{orjson.dumps(p).decode()}]" for p in path)


def encode_state(state: Mapping[str, Any], root: str = "session_state") -> EncodedState:
    """Validate and encode a state; raise UnstorableStateError naming the first bad value's path."""
    from wfnb._errors import UnstorableStateError

    if type(state) is not dict:
        raise UnstorableStateError(root, f"must be a dict, not {type(state).__name__}")
    fast = _encode_plain(state)
    if fast is not None:
        return fast
    try:
        needs_tags = _scan(state)
    except _Refused as refused:
        raise UnstorableStateError(format_path(root, refused.path[::-1]), refused.reason) from None
    except RecursionError:
        raise UnstorableStateError(root, "nesting too deep (or a reference cycle)") from None
    parts: Parts = {}
    for key, value in state.items():
        try:  # encoded one level down, as in the document, so that orjson checks its depth
            parts[key] = orjson.dumps([_to_native(value) if needs_tags else value])[1:-1]
        except orjson.JSONEncodeError:
            reason = (f"nests too deep: a value in session_state nests at most {MAX_DEPTH - 1} "
                      "levels (a tuple or set counts 2)")
            raise UnstorableStateError(format_path(root, [key]), reason) from None
    return EncodedState(parts, join_parts(parts), needs_tags)


_STRICT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | (
    orjson.OPT_PASSTHROUGH_DATETIME
)
_JSON_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})


def _encode_plain(state: dict[str, Any]) -> EncodedState | None:
    """The common case, fast: a state of JSON's own types only. None sends it to the full check.

    orjson encodes first (refusing subclasses, dataclasses, datetimes, unknown objects, huge
    ints, non-str keys, lone surrogates and cycles by raising); a walk then rules out what it
    would convert silently (NaN, tuples, enums, UUIDs) and the reserved key.
    """
    if not all(type(key) is str for key in state):
        return None
    try:
        parts = {key: orjson.dumps(value, option=_STRICT) for key, value in state.items()}
        document = join_parts(parts)
    except (orjson.JSONEncodeError, RecursionError):
        return None
    return EncodedState(parts, document, False) if _plain(state) else None


def _plain(state: dict[str, Any]) -> bool:
    """Whether an (acyclic: orjson encoded it) state holds only JSON's own types, nested at
    most MAX_DEPTH levels.

    Level by level, ``gc.get_referents`` lists what the containers hold, and the checks of
    their types, of the floats' finiteness and of the dicts' keys all run as C iterators.
    """
    if TAG in state:
        return False
    level: list[Any] = [state]
    for _ in range(MAX_DEPTH):
        level = gc.get_referents(*level)
        if not level:
            return True
        types = list(map(type, level))
        kinds = set(types)
        if not kinds <= _JSON_TYPES:
            return False
        if float in kinds and not all(map(math.isfinite, _of_type(level, types, float))):
            return False
        if dict in kinds and any(map(operator.contains, _of_type(level, types, dict),
                                     itertools.repeat(TAG))):
            return False
    return not any(type(item) is dict or type(item) is list for item in level)  # too deep


def _of_type(items: list[Any], types: list[type], kind: type) -> Iterator[Any]:
    return itertools.compress(items, map(operator.is_, types, itertools.repeat(kind)))


def join_parts(parts: Mapping[str, bytes]) -> bytes:
    """The JSON document for per-key encoded values (what orjson.dumps of the whole would give),
    built in one allocation: a large state is not copied piece by piece."""
    if not parts:
        return b"{}"
    pieces = [b"{"]
    for key, raw in parts.items():
        pieces += (orjson.dumps(key), b":", raw, b",")
    pieces[-1] = b"}"  # in place of the last comma
    return b"".join(pieces)


def parts_of(document: bytes) -> Parts:
    """Split a stored document back into per-key parts (orjson re-encodes its output exactly)."""
    return {key: orjson.dumps(value) for key, value in _load_object(document).items()}


def decode_state(document: bytes | bytearray | str, tagged: bool | None = None) -> State:
    """The state a stored document holds, tagged values revived.

    ``tagged`` (recorded when it was encoded) spares a search of the whole document.
    """
    state = _load_object(document)
    if tagged is None:
        tagged = may_hold_tags(document.encode() if isinstance(document, str) else document)
    return _revive(state) if tagged else state


def may_hold_tags(document: bytes | bytearray) -> bool:
    """Whether a JSON document may hold tagged values (False: it surely holds none)."""
    return _TAG_BYTES in document


def _load_object(document: bytes | bytearray | str) -> State:
    value = orjson.loads(document)
    if not isinstance(value, dict):
        raise ValueError(f"stored state is a JSON {type(value).__name__}, not an object")
    return value


def _scan(value: Any) -> bool:
    """Check that ``value`` can be stored; True when it holds types that need a tag."""
    kind = type(value)
    if kind in _PLAIN:
        return False
    if kind is str:
        if not valid_utf8(value):
            raise _Refused("string holds a lone surrogate, which is not valid UTF-8 text")
        return False
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return False
        raise _Refused("integer does not fit in 64 bits (store it as a string)")
    if kind is float:
        if math.isfinite(value):
            return False
        raise _Refused(f"{value!r} is not valid JSON (NaN and Infinity are refused)")
    if kind is dict:
        needs = False
        for key, item in value.items():
            if type(key) is not str:
                raise _Refused(f"dict key {key!r} is a {type(key).__name__}; keys must be str")
            if not valid_utf8(key):
                raise _Refused(f"dict key {key!r} holds a lone surrogate, not valid UTF-8 text")
            if key == TAG:
                raise _Refused(f"the key {TAG!r} is reserved by wfnb")
            try:
                needs = _scan(item) or needs
            except _Refused as refused:
                refused.path.append(key)
                raise
        return needs
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        needs = kind is not list
        for index, item in enumerate(value):
            try:
                needs = _scan(item) or needs
            except _Refused as refused:
                refused.path.append(index)
                raise
        return needs
    if kind in _TAGGED_TYPES:
        return _check_tagged(value)
    raise _Refused(_refusal(value))


def valid_utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (no lone surrogates): what databases and JSON accept."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_tagged(value: Any) -> bool:
    if isinstance(value, Decimal) and not value.is_finite():
        raise _Refused(f"{value!r} is not finite (NaN and Infinity are refused)")
    if isinstance(value, (dt.datetime, dt.time)):
        zone = value.tzinfo
        if zone is not None and not isinstance(zone, (dt.timezone, ZoneInfo)):
            raise _Refused(
                f"tzinfo {type(zone).__name__} does not round-trip; "
                "use zoneinfo or datetime.timezone"
            )
        if isinstance(zone, ZoneInfo) and isinstance(value, dt.time):
            raise _Refused("a time with a zoneinfo tzinfo has no fixed offset; use datetime")
        offset = zone.utcoffset(None) if isinstance(zone, dt.timezone) else None
        if offset and abs(offset) < dt.timedelta(seconds=1):  # fromisoformat reads it as UTC
            raise _Refused("a UTC offset under a second (but not zero) does not round-trip")
        if isinstance(zone, ZoneInfo) and zone.key is None:
            raise _Refused("a ZoneInfo without a key (from_file) cannot be looked up again")
    return True


def _refusal(value: Any) -> str:
    name = type(value).__name__
    if hasattr(value, "model_dump"):
        return f"{name} (pydantic) is not stored as itself; store value.model_dump()"
    if hasattr(value, "__dataclass_fields__"):
        return f"{name} (dataclass) is not stored as itself; store dataclasses.asdict(value)"
    if isinstance(value, (dict, list, str, int, float)):
        base = next(t for t in (dict, list, str, int, float) if isinstance(value, t)).__name__
        return f"{name} would come back as a plain {base}; store {base}(value)"
    return f"{name} cannot be stored as JSON"


def _to_native(value: Any) -> Any:
    """A JSON-native copy of an already scanned value, tagging the extra types."""
    kind = type(value)
    if kind is dict:
        return {key: _to_native(item) for key, item in value.items()}
    if kind is list:
        return [_to_native(item) for item in value]
    if kind is tuple:
        return {TAG: "tuple", "v": [_to_native(item) for item in value]}
    if kind is set or kind is frozenset:
        items = sorted((_to_native(item) for item in value), key=orjson.dumps)
        return {TAG: kind.__name__, "v": items}
    if kind is bytes:
        return {TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if kind is dt.datetime or kind is dt.time:
        tagged = {TAG: kind.__name__, "v": value.isoformat()}
        zone = value.tzinfo
        if isinstance(zone, ZoneInfo):
            tagged = {TAG: kind.__name__, "v": value.replace(tzinfo=None).isoformat(),
                      "tz": zone.key, "fold": value.fold}
        elif value.fold:  # isoformat() drops fold
            tagged["fold"] = value.fold
        if isinstance(zone, dt.timezone) and zone.tzname(None) != _unnamed(zone).tzname(None):
            tagged["tzname"] = zone.tzname(None)  # isoformat() drops timezone(offset, name)
        return tagged
    if kind is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is uuid.UUID:
        return {TAG: "uuid", "v": str(value)}
    if kind is Decimal:
        return {TAG: "decimal", "v": str(value)}
    return value


def _unnamed(zone: dt.timezone) -> dt.timezone:
    offset = zone.utcoffset(None)
    return dt.timezone.utc if not offset else dt.timezone(offset)


def _revive(value: Any) -> Any:
    """Undo ``_to_native``: turn tagged objects back into their Python types."""
    if type(value) is list:
        return [_revive(item) for item in value]
    if type(value) is not dict:
        return value
    tag = value.get(TAG)
    if tag is None:
        return {key: _revive(item) for key, item in value.items()}
    payload = value["v"]
    if tag in ("tuple", "set", "frozenset"):
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](
            _revive(item) for item in payload
        )
    if tag == "bytes":
        return base64.b64decode(payload)
    if tag in ("datetime", "time"):
        parsed = (dt.datetime if tag == "datetime" else dt.time).fromisoformat(payload)
        if "tz" in value:
            parsed = parsed.replace(tzinfo=ZoneInfo(value["tz"]))
        if "tzname" in value:
            offset = parsed.utcoffset() or dt.timedelta(0)
            parsed = parsed.replace(tzinfo=dt.timezone(offset, value["tzname"]))
        if "fold" in value:
            parsed = parsed.replace(fold=value["fold"])
        return parsed
    if tag == "date":
        return dt.date.fromisoformat(payload)
    if tag == "timedelta":
        return dt.timedelta(days=payload[0], seconds=payload[1], microseconds=payload[2])
    if tag == "uuid":
        return uuid.UUID(payload)
    if tag == "decimal":
        return Decimal(payload)
    raise ValueError(f"unknown {TAG} tag {tag!r}")
