"""The input contract of docs/EVENTS.md, enforced.

`parse_event` turns one raw Kafka message into a typed `Event` or raises
`ContractError`, whose `field` and `reason` make the one-line dead-letter reason.
No Kafka imports: the intake agent calls this per message.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from core import topics
from core.geocode import UnresolvedPostalCode, default_resolver

MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000
MAX_REGION_LENGTH = 64
MAX_SEGMENT_LENGTH = 64
MAX_SEGMENTS = 200
MAX_ACCOUNTS_CAP = 10**7
#: Workload caps are minutes over the rebalance window (docs/EVENTS.md).
MAX_WORKLOAD_CAP = 1e12
MAX_MESSAGE_BYTES = 256 * 1024
MAX_EMPLOYEES = 10**9
# Event times outside these years are typos or garbage; they would also overflow the
# date arithmetic downstream (UTC conversion, late horizon, hold deadlines).
MIN_YEAR, MAX_YEAR = 1900, 2999


class ContractError(ValueError):
    """A message that breaks the contract. `field` is a dotted path such as `data.amount`."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str
    occurred_at: datetime
    source: str | None
    data: dict[str, Any]
    topic: str
    key: str

    @property
    def subject_id(self) -> str:
        """The id the message is keyed by: the rep for rep events, else the account."""
        return self.data["rep_id"] if self.type == "rep.upserted" else self.data["account_id"]


# --- field checkers: each returns the normalised value or raises ContractError -------

Checker = Callable[[str, Any], Any]


def _identifier(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContractError(field, f"must be a non-empty string, got {_show(value)}")
    if len(value) > MAX_ID_LENGTH:
        raise ContractError(field, f"longer than {MAX_ID_LENGTH} characters")
    return _printable(field, _unicode(field, value), allowed="")


# Control characters (C0, DEL, C1) and line/paragraph separators: in an id or a name they
# break e-mail headers and forge log lines. Free text may keep tabs.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(field: str, value: str, *, allowed: str) -> str:
    for match in _CONTROL.finditer(value):
        if match.group() not in allowed:
            raise ContractError(
                field, f"contains a control character (U+{ord(match.group()):04X}) at position {match.start()}"
            )
    return value


def _unicode(field: str, value: str) -> str:
    """JSON's \\uXXXX escapes can smuggle in lone surrogates: such a string cannot be
    encoded again (keys, table rows, hashes), so it is refused here."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError(field, "not valid Unicode (lone surrogate)") from None
    return value


def _text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(field, f"must be a string, got {_show(value)}")
    if len(value) > MAX_TEXT_LENGTH:
        raise ContractError(field, f"longer than {MAX_TEXT_LENGTH} characters")
    return _printable(field, _unicode(field, value), allowed="\t")


def _number(low: float | None = None, high: float | None = None) -> Checker:
    def check(field: str, value: Any) -> float:
        # bool is an int in Python; true/false is not a number in the contract.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ContractError(field, f"must be a number, got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:  # a JSON integer literal beyond float range, e.g. 10**400
            number = math.inf
        if not math.isfinite(number):
            raise ContractError(field, "must be a finite number")
        if low is not None and number < low:
            raise ContractError(field, f"must be >= {low:g}, got {number:g}")
        if high is not None and number > high:
            raise ContractError(field, f"must be <= {high:g}, got {number:g}")
        return number

    return check


def _integer(low: int = 0, high: int | None = None) -> Checker:
    def check(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ContractError(field, f"must be an integer, got {_show(value)}")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise ContractError(field, f"must be an integer, got {_show(value)}")
        if value < low:
            raise ContractError(field, f"must be >= {low}, got {_show(value)}")
        if high is not None and value > high:
            raise ContractError(field, f"must be <= {high}, got {_show(value)}")
        return int(value)

    return check


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ContractError(field, f"must be true or false, got {_show(value)}")
    return value


def _one_of(*allowed: str) -> Checker:
    def check(field: str, value: Any) -> str:
        if value not in allowed:
            raise ContractError(field, f"must be one of {', '.join(allowed)}, got {_show(value)}")
        return value

    return check


def _region(field: str, value: Any) -> str:
    """An account's explicit region id (it names the region in signals, alerts and logs)."""
    if not isinstance(value, str) or not value.strip():
        raise ContractError(field, f"must be a non-empty string, got {_show(value)}")
    if len(value) > MAX_REGION_LENGTH:
        raise ContractError(field, f"longer than {MAX_REGION_LENGTH} characters")
    return _printable(field, _unicode(field, value), allowed="")


def _label(field: str, value: Any) -> str:
    """A label (a segment such as an industry, key account or product line; a district):
    compared as given, less the spaces around it, so "Retail " in one export and "Retail" in
    another are one segment."""
    if not isinstance(value, str) or not value.strip():
        raise ContractError(field, f"must be a non-empty string, got {_show(value)}")
    if len(value.strip()) > MAX_SEGMENT_LENGTH:
        raise ContractError(field, f"longer than {MAX_SEGMENT_LENGTH} characters")
    return _printable(field, _unicode(field, value.strip()), allowed="")


def _segments(field: str, value: Any) -> list[str]:
    """The segments a rep serves, duplicates dropped, in the order given (empty: any)."""
    if not isinstance(value, list):
        raise ContractError(field, f"must be a list of segment labels, got {_show(value)}")
    if len(value) > MAX_SEGMENTS:
        raise ContractError(field, f"more than {MAX_SEGMENTS} segments")
    labels = [_label(f"{field}[{n}]", item) for n, item in enumerate(value)]
    return list(dict.fromkeys(labels))


def _optional_identifier(field: str, value: Any) -> str | None:
    return None if value is None else _identifier(field, value)


_LATITUDE = _number(-90.0, 90.0)
_LONGITUDE = _number(-180.0, 180.0)
_NON_NEGATIVE = _number(0.0)

# Per type: (required fields, optional fields with their defaults). Optional fields
# absent from the message take the default; unknown extra fields are ignored.
_SCHEMAS: dict[str, tuple[dict[str, Checker], dict[str, tuple[Checker, Any]]]] = {
    "account.upserted": (
        {"account_id": _identifier},
        {
            "lat": (_LATITUDE, None),
            "lon": (_LONGITUDE, None),
            "postal_code": (_text, None),
            "country": (_text, None),
            "industry": (_text, None),
            "employees": (_integer(0, MAX_EMPLOYEES), None),
            "rep_id": (_optional_identifier, None),
            # Absent means "unchanged": a CRM re-import must not undo a manager's lock.
            "locked": (_boolean, None),
            "name": (_text, None),
            # Wins over the region looked up from the location (docs/EVENTS.md).
            "region": (_region, None),
            # Only reps who serve it (or serve any segment) may be given the account.
            "segment": (_label, None),
        },
    ),
    "account.closed": ({"account_id": _identifier}, {"reason": (_text, None)}),
    # Right to erasure: the worker forgets the account (`territory erase` sends it).
    "account.erased": ({"account_id": _identifier}, {"reason": (_text, None), "by": (_text, None)}),
    "rep.upserted": (
        {"rep_id": _identifier},
        {
            "home_lat": (_LATITUDE, None),
            "home_lon": (_LONGITUDE, None),
            "postal_code": (_text, None),
            "country": (_text, None),
            "capacity_fte": (_number(0.0, 10.0), 1.0),
            "active": (_boolean, True),
            "max_travel_km": (_number(0.0, 20000.0), None),
            "name": (_text, None),
            # Absent or empty: the rep serves every segment.
            "segments": (_segments, None),
            # With TERRITORY_REBALANCE_SCOPE=district, fair shares and moves stay inside it.
            "district": (_label, None),
            # The region the rep's district belongs to (not an account's `region`: a label).
            "sales_region": (_label, None),
            # Hard limits on how many accounts a proposal leaves the rep with.
            "min_accounts": (_integer(0, MAX_ACCOUNTS_CAP), None),
            "max_accounts": (_integer(0, MAX_ACCOUNTS_CAP), None),
            # ... and on how much workload (visit and travel minutes over the window).
            "min_workload": (_number(0.0, MAX_WORKLOAD_CAP), None),
            "max_workload": (_number(0.0, MAX_WORKLOAD_CAP), None),
            # The rep's sales target for a calendar year (docs/EVENTS.md); absent: no quota.
            "quota": (_number(0.0, 1e12), None),
            # What one straight-line km from the rep's home costs in a travel proposal (1: km).
            "travel_factor": (_number(0.01, 100.0), 1.0),
        },
    ),
    "order.placed": (
        {"order_id": _identifier, "account_id": _identifier, "amount": _number(0.0, 1e12)},
        {"currency": (_text, "EUR")},
    ),
    "opportunity.updated": (
        {
            "opportunity_id": _identifier,
            "account_id": _identifier,
            "stage": _one_of("open", "won", "lost"),
            "amount": _number(0.0, 1e12),
        },
        {"probability": (_number(0.0, 1.0), None)},
    ),
    "activity.logged": (
        {
            "activity_id": _identifier,
            "account_id": _identifier,
            "rep_id": _identifier,
            "kind": _one_of("visit", "call", "video"),
            "duration_min": _number(0.0, 24 * 60),
        },
        {"travel_min": (_number(0.0, 24 * 60), 0.0)},
    ),
    "assignment.override": (
        {"account_id": _identifier, "rep_id": _identifier},
        {"locked": (_boolean, True), "reason": (_text, None), "by": (_text, None)},
    ),
}

EVENT_TYPES: frozenset[str] = frozenset(_SCHEMAS)


def parse_event(raw: bytes | None, *, topic: str, key: bytes | str | None) -> Event:
    """Decode and validate one message from `topic`; raise ContractError naming the field."""
    if raw is None:
        raise ContractError("value", "empty message (null value)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ContractError("value", f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        # UTF-8 only (json.loads would also guess UTF-16/32 from bytes); a BOM is tolerated.
        document = json.loads(raw.decode("utf-8-sig") if isinstance(raw, (bytes, bytearray)) else raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ContractError("value", f"not valid UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise ContractError("value", f"must be a JSON object, got {type(document).__name__}")
    return validate_envelope(document, topic=topic, key=key)


def validate_envelope(document: Mapping[str, Any], *, topic: str, key: bytes | str | None) -> Event:
    event_id = _identifier("event_id", document.get("event_id"))
    event_type = document.get("type")
    if not isinstance(event_type, str) or event_type not in _SCHEMAS:
        raise ContractError(
            "type", f"unknown event type {_show(event_type)}; expected one of {', '.join(sorted(_SCHEMAS))}"
        )
    allowed = topics.TYPES_BY_TOPIC.get(topic)
    if allowed is not None and event_type not in allowed:
        raise ContractError("type", f"{event_type!r} does not belong on topic {topic}")
    occurred_at = _timestamp("occurred_at", document.get("occurred_at"))
    source = _text("source", document.get("source"))
    payload = document.get("data")
    if not isinstance(payload, dict):
        raise ContractError("data", f"must be an object, got {_show(payload)}")
    data = _validate_data(event_type, payload)
    event = Event(event_id, event_type, occurred_at, source, data, topic, _key_text(key))
    if event.key != event.subject_id:
        subject = "rep_id" if event_type == "rep.upserted" else "account_id"
        raise ContractError("key", f"message key {_show(event.key)} must equal data.{subject} {event.subject_id!r}")
    return event


def _validate_data(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    required, optional = _SCHEMAS[event_type]
    data: dict[str, Any] = {}
    for name, check in required.items():
        if payload.get(name) is None:
            raise ContractError(f"data.{name}", f"required for {event_type}")
        data[name] = check(f"data.{name}", payload[name])
    for name, (check, default) in optional.items():
        value = payload.get(name)
        data[name] = default if value is None else check(f"data.{name}", value)
    if event_type == "account.upserted":
        _locate(data, "lat", "lon", event_type)
    elif event_type == "rep.upserted":
        _locate(data, "home_lat", "home_lon", event_type)
        data["segments"] = data["segments"] or []  # a fresh list per event, never a shared default
        low, high = data["min_accounts"], data["max_accounts"]
        if low is not None and high is not None and low > high:
            raise ContractError("data.min_accounts", f"must be <= max_accounts ({high}), got {low}")
        least, most = data["min_workload"], data["max_workload"]
        if least is not None and most is not None and least > most:
            raise ContractError("data.min_workload", f"must be <= max_workload ({most:g}), got {least:g}")
    return data


def _locate(data: dict[str, Any], lat: str, lon: str, event_type: str) -> None:
    """Coordinates as given, or resolved offline from postal_code + country; never (0, 0)."""
    if data[lat] is not None and data[lon] is not None:
        return
    if data["postal_code"] and data["country"] and data[lat] is None and data[lon] is None:
        try:
            data[lat], data[lon] = default_resolver().require(data["postal_code"], data["country"])
        except UnresolvedPostalCode as error:
            raise ContractError("data.postal_code", error.reason) from None
        return
    missing = f"data.{lat}" if data[lat] is None else f"data.{lon}"
    raise ContractError(missing, f"required for {event_type} (or postal_code + country)")


def _timestamp(field: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise ContractError(field, f"must be an ISO 8601 string with offset, got {_show(value)}")
    try:
        if len(value) > 64:
            raise ValueError("too long")
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # UnicodeEncodeError (lone surrogates) is a ValueError too
        raise ContractError(field, f"not an ISO 8601 timestamp: {_show(value)}") from None
    if moment.tzinfo is None:
        raise ContractError(field, "needs a UTC offset, e.g. 2025-03-01T09:00:00+01:00")
    try:
        year = moment.astimezone(timezone.utc).year
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        year = 0
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ContractError(field, f"out of range: {_show(value)} (years {MIN_YEAR}..{MAX_YEAR})")
    return moment


def _key_text(key: bytes | str | None) -> str:
    if key is None:
        return ""
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return key


def _show(value: Any) -> str:
    """A short, always printable rendering of a bad value for the one-line reason."""
    if isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value[:60]))
    elif isinstance(value, str):
        text = json.dumps(value[:60])  # escapes lone surrogates
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        text = f"an integer of {len(str(abs(value)))} digits"
    else:
        try:
            text = json.dumps(value, default=str)
        except (RecursionError, ValueError, TypeError):  # e.g. nested deeper than the encoder goes
            text = f"a deeply nested {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."
