"""Hypothesis strategies for malformed input messages (docs/EVENTS.md, broken on purpose).

Each strategy draws a `Malformed(topic, key, value, field)`: the raw Kafka key and value
as they would arrive, and the field the contract must blame (`None` where several fields
could be first, e.g. random bytes that happen to be a JSON object). Every message drawn
breaks the contract in exactly the way its `field` says; nothing here is a valid event.

The field specs are written from docs/EVENTS.md, not imported from core/contract.py,
so the tests check the code against the documented contract.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from core import topics

ACCOUNT_KEY = "acct-fuzz-1"
REP_KEY = "rep-fuzz-1"
MAX_ID, MAX_TEXT, MAX_MESSAGE = 200, 2000, 256 * 1024


@dataclass(frozen=True)
class Malformed:
    topic: str
    key: bytes | None
    value: bytes | None
    field: str | None  # the field the reason must start with; None: any field

    def __repr__(self) -> str:  # keep hypothesis failure reports readable for 900 KB values
        shown = self.value if self.value is None or len(self.value) <= 300 else self.value[:300] + b"..."
        return f"Malformed({self.topic!r}, {self.key!r}, {shown!r} [{len(self.value or b'')} bytes], {self.field!r})"


# kind: "id" | "text" | "bool" | ("num", low, high) | ("int", low, high) | ("enum", *values)
ID, TEXT, BOOL = "id", "text", "bool"
LAT, LON = ("num", -90.0, 90.0), ("num", -180.0, 180.0)
AMOUNT = ("num", 0.0, 1e12)
MINUTES = ("num", 0.0, 1440.0)

# type -> (topic, {field: (kind, required)}, a valid payload)
SCHEMAS: dict[str, tuple[str, dict[str, tuple[Any, bool]], dict[str, Any]]] = {
    "account.upserted": (
        topics.ACCOUNTS,
        {
            "account_id": (ID, True),
            "lat": (LAT, True),
            "lon": (LON, True),
            "postal_code": (TEXT, False),
            "country": (TEXT, False),
            "industry": (TEXT, False),
            "employees": (("int", 0, 10**9), False),
            "rep_id": (ID, False),
            "locked": (BOOL, False),
            "name": (TEXT, False),
        },
        {
            "account_id": ACCOUNT_KEY,
            "lat": 52.52,
            "lon": 13.4,
            "industry": "retail",
            "employees": 120,
            "rep_id": "R-1",
            "locked": False,
            "name": "Bäckerei Müller",
        },
    ),
    "account.closed": (
        topics.ACCOUNTS,
        {"account_id": (ID, True), "reason": (TEXT, False)},
        {"account_id": ACCOUNT_KEY, "reason": "gone"},
    ),
    "account.erased": (
        topics.ACCOUNTS,
        {"account_id": (ID, True), "reason": (TEXT, False), "by": (TEXT, False)},
        {"account_id": ACCOUNT_KEY, "reason": "gdpr", "by": "dpo"},
    ),
    "rep.upserted": (
        topics.REPS,
        {
            "rep_id": (ID, True),
            "home_lat": (LAT, True),
            "home_lon": (LON, True),
            "postal_code": (TEXT, False),
            "country": (TEXT, False),
            "capacity_fte": (("num", 0.0, 10.0), False),
            "active": (BOOL, False),
            "max_travel_km": (("num", 0.0, 20000.0), False),
            "name": (TEXT, False),
        },
        {
            "rep_id": REP_KEY,
            "home_lat": 48.1,
            "home_lon": 11.6,
            "capacity_fte": 1.0,
            "active": True,
            "max_travel_km": 250,
        },
    ),
    "order.placed": (
        topics.ORDERS,
        {
            "order_id": (ID, True),
            "account_id": (ID, True),
            "amount": (AMOUNT, True),
            "currency": (TEXT, False),
        },
        {"order_id": "o-1", "account_id": ACCOUNT_KEY, "amount": 1840.5, "currency": "EUR"},
    ),
    "opportunity.updated": (
        topics.OPPORTUNITIES,
        {
            "opportunity_id": (ID, True),
            "account_id": (ID, True),
            "stage": (("enum", "open", "won", "lost"), True),
            "amount": (AMOUNT, True),
            "probability": (("num", 0.0, 1.0), False),
        },
        {"opportunity_id": "op-1", "account_id": ACCOUNT_KEY, "stage": "open", "amount": 25000, "probability": 0.4},
    ),
    "activity.logged": (
        topics.ACTIVITIES,
        {
            "activity_id": (ID, True),
            "account_id": (ID, True),
            "rep_id": (ID, True),
            "kind": (("enum", "visit", "call", "video"), True),
            "duration_min": (MINUTES, True),
            "travel_min": (MINUTES, False),
        },
        {
            "activity_id": "act-1",
            "account_id": ACCOUNT_KEY,
            "rep_id": "R-1",
            "kind": "visit",
            "duration_min": 60,
            "travel_min": 35,
        },
    ),
    "assignment.override": (
        topics.OVERRIDES,
        {
            "account_id": (ID, True),
            "rep_id": (ID, True),
            "locked": (BOOL, False),
            "reason": (TEXT, False),
            "by": (TEXT, False),
        },
        {"account_id": ACCOUNT_KEY, "rep_id": "R-2", "locked": True, "reason": "key account", "by": "m.keller"},
    ),
}
EVENT_TYPES = sorted(SCHEMAS)


def key_of(event_type: str) -> str:
    return REP_KEY if event_type == "rep.upserted" else ACCOUNT_KEY


def valid_document(event_type: str, event_id: str = "fuzz-e-1") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": "2025-03-01T09:00:00+01:00",
        "source": "fuzz",
        "data": dict(SCHEMAS[event_type][2]),
    }


def encode(document: Any) -> bytes:
    # Python's json writes NaN/Infinity literals and integers of any size, as a careless producer might.
    return json.dumps(document).encode()


# --- bad values ----------------------------------------------------------------------


def _json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=max_leaves,
    )


NESTED = st.integers(2, 400).map(lambda depth: json.loads("[" * depth + "]" * depth))
HUGE_INTEGER = st.sampled_from([10**400, -(10**400), 10**309, 2**1100])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1.7976931348623157e308])
LONE_SURROGATE = st.builds(
    lambda a, s, b: a + s + b,
    st.text(max_size=5),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=5),
)
NOT_STRING = (
    st.booleans()
    | st.integers()
    | st.floats()
    | HUGE_INTEGER
    | NESTED
    | st.lists(_json_values(), max_size=3)
    | st.dictionaries(st.text(max_size=5), _json_values(), max_size=3)
)
NOT_NUMBER = (
    st.booleans()
    | st.text(max_size=20)
    | st.sampled_from(["12", "1e3", "NaN", "", " 5"])
    | NESTED
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
)
# Up to 20 KB here; the messages of hundreds of KB are `giant_messages`.
LONG_TEXT = st.integers(0, 20_000).map(lambda extra: "x" * extra)
ODD_UNICODE = st.sampled_from(["\u200b", "\u202e", "\ufeff", "\U0001f4a9", "\u0301", "\x00", "\uffff", "Ω", "\u3000"])


def _too_long(limit: int) -> st.SearchStrategy[str]:
    return st.builds(lambda head, extra: head + "y" * (limit + 1 + extra), st.text(max_size=10), st.integers(0, 20_000))


def bad_value(kind: Any, required: bool) -> st.SearchStrategy[Any]:
    """Values that `kind` must refuse. Null is refused only where the field is required."""
    options: list[st.SearchStrategy[Any]] = []
    if kind == ID:
        options = [
            NOT_STRING,
            st.just(""),
            st.text(" \t\n\u3000\u00a0", min_size=1, max_size=5),
            _too_long(MAX_ID),
            LONE_SURROGATE,
        ]
    elif kind == TEXT:
        options = [NOT_STRING, _too_long(MAX_TEXT), LONE_SURROGATE]
    elif kind == BOOL:
        options = [
            st.integers(0, 1),
            st.sampled_from(["true", "false", "yes", ""]),
            st.floats(),
            NESTED,
            st.lists(st.booleans(), max_size=2),
        ]
    elif kind[0] == "num":
        low, high = kind[1], kind[2]
        options = [
            NOT_NUMBER,
            NON_FINITE,
            HUGE_INTEGER,
            st.floats(max_value=low, allow_nan=False).filter(lambda v: v < low),
            st.floats(min_value=high, allow_nan=False).filter(lambda v: v > high),
            st.integers(max_value=math.floor(low) - 1),
            st.integers(min_value=math.floor(high) + 1),
        ]
    elif kind[0] == "int":
        low, high = kind[1], kind[2]
        options = [
            NOT_NUMBER,
            NON_FINITE,
            HUGE_INTEGER,
            st.integers(max_value=low - 1),
            st.integers(min_value=high + 1),
            st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not v.is_integer()),
        ]
    elif kind[0] == "enum":
        allowed = kind[1:]
        options = [
            NOT_STRING,
            st.text(max_size=8).filter(lambda v: v not in allowed),
            st.sampled_from([v.upper() for v in allowed] + [v + " " for v in allowed] + ["оpen", "wоn"]),
            st.builds(lambda v, odd: v + odd, st.sampled_from(allowed), ODD_UNICODE),
        ]
    if required:
        options.append(st.none())
    return st.one_of(options)


BAD_TIMESTAMP = st.one_of(
    NOT_STRING,
    st.none(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "2025-03-01T09:00:00",
            "2025-03-01",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1899-12-31T23:00:00Z",
            "3000-01-01T00:00:00Z",
            "２０２５-03-01T09:00:00Z",
            "2025-03-01T09:00:00+25:00",
        ]
    ),
    st.datetimes().map(lambda moment: moment.isoformat()),  # no offset
    st.integers(1, 1899).map(lambda year: f"{year:04d}-06-01T00:00:00+00:00"),
    st.integers(3000, 9999).map(lambda year: f"{year:04d}-06-01T00:00:00Z"),
    _too_long(64),
    LONE_SURROGATE,
)


# --- whole messages ------------------------------------------------------------------


def _message(event_type: str, document: Any, field: str | None, key: bytes | None | str = "default") -> Malformed:
    topic = SCHEMAS[event_type][0]
    raw_key = key_of(event_type).encode() if key == "default" else key
    return Malformed(topic, raw_key, encode(document), field)


@st.composite
def wrong_data_field(draw: st.DrawFn) -> Malformed:
    """One field of the payload of one event type set to a value of the wrong type or range."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    fields = SCHEMAS[event_type][1]
    name = draw(st.sampled_from(sorted(fields)))
    kind, required = fields[name]
    document = valid_document(event_type, f"fuzz-{draw(st.integers(0, 10**9))}")
    if required and draw(st.booleans()):
        del document["data"][name]  # missing altogether
    else:
        document["data"][name] = draw(bad_value(kind, required))
    return _message(event_type, document, f"data.{name}")


@st.composite
def wrong_envelope(draw: st.DrawFn) -> Malformed:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    document = valid_document(event_type, f"fuzz-{draw(st.integers(0, 10**9))}")
    field = draw(st.sampled_from(["event_id", "type", "occurred_at", "source", "data", "key"]))
    if field == "event_id":
        value = draw(bad_value(ID, True))
    elif field == "type":
        other_topic_type = [t for t in EVENT_TYPES if SCHEMAS[t][0] != SCHEMAS[event_type][0]]
        value = draw(
            st.one_of(
                NOT_STRING,
                st.none(),
                st.text(max_size=30).filter(lambda t: t not in SCHEMAS),
                st.sampled_from(other_topic_type),
                st.builds(lambda odd: event_type + odd, ODD_UNICODE),
                st.just(event_type.upper()),
                LONE_SURROGATE,
            )
        )
    elif field == "occurred_at":
        value = draw(BAD_TIMESTAMP)
    elif field == "source":
        value = draw(bad_value(TEXT, False))
    elif field == "data":
        value = draw(st.one_of(st.none(), NOT_STRING.filter(lambda v: not isinstance(v, dict)), st.text(max_size=20)))
    else:  # the message key must be the subject's id
        wanted = key_of(event_type).encode()
        key = draw(
            st.one_of(
                st.none(),
                st.binary(max_size=40).filter(lambda k: k != wanted),
                st.just(wanted.upper()),
                st.just(wanted + b" "),
                st.just(b"\xff" + wanted),
            )
        )
        return _message(event_type, document, "key", key)
    if value is None and draw(st.booleans()):
        del document[field]
    else:
        document[field] = value
    return _message(event_type, document, field)


@st.composite
def not_an_object(draw: st.DrawFn) -> Malformed:
    """Valid JSON, but not an object at the top."""
    value = draw(_json_values().filter(lambda v: not isinstance(v, dict)) | HUGE_INTEGER | NON_FINITE)
    return Malformed(
        draw(st.sampled_from(topics.INPUT_TOPICS)), draw(st.none() | st.binary(max_size=20)), encode(value), "value"
    )


INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82", b"\x80"]


@st.composite
def broken_bytes(draw: st.DrawFn) -> Malformed:
    """Random bytes, invalid UTF-8 inside a valid event, other encodings, cut-off JSON, JSON5-isms."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    topic, key = SCHEMAS[event_type][0], key_of(event_type).encode()
    good = encode(valid_document(event_type, f"fuzz-{draw(st.integers(0, 10**9))}"))
    how = draw(st.sampled_from(["random", "utf8", "encoding", "truncated", "syntax", "null"]))
    if how == "random":
        return Malformed(topic, draw(st.none() | st.binary(max_size=20)), draw(st.binary(max_size=3000)), None)
    if how == "utf8":
        at = draw(st.integers(0, len(good)))
        return Malformed(topic, key, good[:at] + draw(st.sampled_from(INVALID_UTF8)) + good[at:], "value")
    if how == "encoding":
        codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1-bom"]))
        raw = b"\xfe\xff" + good if codec == "latin-1-bom" else good.decode().encode(codec)
        return Malformed(topic, key, raw, "value")
    if how == "truncated":
        return Malformed(topic, key, good[: draw(st.integers(0, len(good) - 1))], "value")
    if how == "syntax":
        raw = draw(
            st.sampled_from(
                [
                    good.replace(b'"', b"'"),
                    good[:-1] + b",}",
                    b"//c\n" + good,
                    good + b"x",
                    good.replace(b": ", b": +", 1),
                    b"{" + good,
                    good.replace(b"{", b"{,", 1),
                ]
            )
        )
        return Malformed(topic, key, raw, "value")
    return Malformed(topic, key, None, "value")  # a tombstone on an input topic


@st.composite
def deep_nesting(draw: st.DrawFn) -> Malformed:
    """Nesting beyond what json can parse (RecursionError): `[[[[...` up to 100k levels."""
    depth = draw(st.sampled_from([1_100, 2_000, 5_000, 10_000, 100_000]))
    opener = draw(st.sampled_from([b"[", b'{"a":', b'[{"a":']))
    closer = {b"[": b"]", b'{"a":': b"}", b'[{"a":': b"}]"}[opener]
    raw = opener * depth + (closer * depth if draw(st.booleans()) else b"")
    raw = raw[: MAX_MESSAGE + draw(st.integers(-1000, 1000))]  # near the size limit at most
    return Malformed(draw(st.sampled_from(topics.INPUT_TOPICS)), b"k", raw, "value")


def malformed_messages() -> st.SearchStrategy[Malformed]:
    """Every kind of malformed message, none larger than ~70 KB."""
    # Deep nesting is the bulky kind (up to 256 KB): one in seven.
    return st.one_of(
        wrong_data_field(),
        wrong_envelope(),
        wrong_data_field(),
        wrong_envelope(),
        not_an_object(),
        broken_bytes(),
        deep_nesting(),
    )


@st.composite
def giant_messages(draw: st.DrawFn) -> Malformed:
    """Enormous strings, 200 KB to 900 KB: in a checked field, in an ignored extra field
    (the message is then too large as a whole), or the whole message."""
    event_type = draw(st.sampled_from(EVENT_TYPES))
    size = draw(st.integers(200_000, 900_000))
    document = valid_document(event_type, f"fuzz-giant-{draw(st.integers(0, 10**9))}")
    filler = draw(st.sampled_from(["x", "é", "\U0001f600", "\\", '"']))
    text = filler * (size // (len(json.dumps(filler)) - 2))
    where = draw(st.sampled_from(["field", "extra", "raw"]))
    if where == "raw":
        return Malformed(SCHEMAS[event_type][0], key_of(event_type).encode(), text.encode()[:size], "value")
    if where == "extra":
        document["data"]["notes"] = text + "y" * MAX_MESSAGE  # unknown fields are ignored, but not their size
        return _message(event_type, document, "value")
    fields = SCHEMAS[event_type][1]
    name = draw(st.sampled_from(sorted(n for n, (kind, _) in fields.items() if kind in (ID, TEXT))))
    document["data"][name] = text
    return _message(event_type, document, "value" if len(encode(document)) > MAX_MESSAGE else f"data.{name}")
