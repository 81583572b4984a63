"""What crosses `territory.signals` and `territory.proposals`: typed, frozen records, defined once.

The planner builds them (`Signal.make`, `Proposal`), `to_json` is what goes on the topic,
and the alert stage reads a message back with `from_json`, which refuses a message that
lacks a field or has one of the wrong type with an error naming it. docs/EVENTS.md
describes these fields; a test checks the two agree.

>>> signal = Signal.make(kind="imbalance", state="over", severity="warning",
...                      subject=Subject("rep", "R1"), evidence={"metric": "potential", "share": 0.2},
...                      detected_at=datetime(2025, 3, 1, tzinfo=timezone.utc),
...                      emitted_at=datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc))
>>> signal.signal_id
'sig-81a5f97873742e11'
>>> Signal.from_json(signal.to_json()) == signal
True
>>> Signal.from_json({**signal.to_json(), "subject": {"type": "rep"}})
Traceback (most recent call last):
...
core.records.RecordError: signal.subject.id: required
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any

SEVERITIES = ("info", "warning", "critical")
#: Signal states that mean "the incident is over".
RESOLVED_STATES = frozenset({"cleared", "closed", "resolved", "in_band", "ok"})
#: A signal's kind and state: short snake_case words (they are labels and stored columns).
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_KIND, MAX_STATE = 32, 16
#: What the rebalancer can balance (a proposal's `metrics`) and what "fewest changes" counts.
BALANCED_METRICS = ("potential", "workload")
REBALANCE_OBJECTIVES = ("moves", "moved_potential")
#: How a proposal came about: "minimal_moves" (fewest moves into the band), "place" (only
#: accounts without an active rep move), "travel" (the weekly least travel within a budget of
#: moves, every rep kept in band) or "restore" (a person asked for an earlier alignment back:
#: `territory alignment restore`, alerts/history.py).
PROPOSAL_MODES = ("minimal_moves", "place", "travel", "restore")
#: What people call each mode (review page, e-mail, command line).
PROPOSAL_KINDS = MappingProxyType(
    {"minimal_moves": "rebalance", "place": "placement", "travel": "travel", "restore": "restore"}
)


def proposal_kind(mode: Any) -> str:
    """ "rebalance", "placement", "travel" or "restore" for a proposal's `mode` (a stored payload's too)."""
    return PROPOSAL_KINDS.get(mode, "rebalance")


class RecordError(ValueError):
    """A message that is not a valid record; the message starts with the field's path."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.field = path


def stable_id(prefix: str, *parts: str) -> str:
    """An id derived from what it names: a planner that judges the same moment again after a
    crash publishes the same ids, so the store and the alert outbox see repeats, not news."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


# ----------------------------------------------------------------------------- reading


def _get(
    data: Mapping[str, Any],
    path: str,
    name: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = True,
    default: Any = None,
) -> Any:
    if not isinstance(data, Mapping):
        raise RecordError(path, f"must be an object, got {type(data).__name__}")
    if name not in data or data[name] is None:
        if required:
            raise RecordError(f"{path}.{name}", "required")
        return default
    value = data[name]
    # JSON has one number type: an int is a valid float, a bool is not a number.
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        wanted = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise RecordError(f"{path}.{name}", f"must be {wanted}, got {type(value).__name__}")
    return value


def _time(data: Mapping[str, Any], path: str, name: str) -> datetime:
    text = _get(data, path, name, str)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"{path}.{name}", f"must be an ISO 8601 time, got {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _frozen(value: Any) -> Any:
    """Read-only views of nested JSON (a frozen record must not change under its readers)."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


def _plain(value: Any) -> Any:
    """Plain JSON types of a value `_frozen` made read-only."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


# ----------------------------------------------------------------------------- signals


@dataclass(frozen=True)
class Subject:
    """What a signal is about: a rep, a region (with its readable name) or a model."""

    type: str
    id: str
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, **({"name": self.name} if self.name is not None else {})}

    @property
    def label(self) -> str:
        """How people read it: "Bavaria (DE-BY)" when it has a name of its own, else the id."""
        return f"{self.name} ({self.id})" if self.name and self.name != self.id else self.id

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: str = "subject") -> "Subject":
        return cls(
            type=_get(data, path, "type", str),
            id=str(_get(data, path, "id", (str, int))),
            name=_get(data, path, "name", str, required=False),
        )


@dataclass(frozen=True)
class Signal:
    """A detector's finding as published: one per subject and state change."""

    signal_id: str
    kind: str  # the detector's kind: imbalance, market_shock, model_drift, coverage_gap, ...
    state: str  # what the subject is now (over, under, drop, rise, open, cleared, ...)
    severity: str  # info | warning | critical
    subject: Subject
    evidence: Mapping[str, Any]  # the figures behind it, per kind (docs/EVENTS.md)
    detected_at: datetime  # event time of the finding
    emitted_at: datetime  # wall-clock time of publishing
    # One line for people (an alert's summary), written by the detector; "" on signals
    # published before the field existed (the alert stage then says kind, state and subject).
    summary: str = ""

    def __post_init__(self) -> None:
        for name, limit in (("kind", MAX_KIND), ("state", MAX_STATE)):
            value = getattr(self, name)
            if not NAME.match(value) or len(value) > limit:
                raise RecordError(f"signal.{name}", f"must be snake_case of at most {limit} characters, got {value!r}")
        if self.severity not in SEVERITIES:
            raise RecordError("signal.severity", f"must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    @classmethod
    def make(
        cls,
        *,
        kind: str,
        state: str,
        severity: str,
        subject: Subject,
        evidence: Mapping[str, Any],
        detected_at: datetime,
        emitted_at: datetime,
        summary: str = "",
    ) -> "Signal":
        """The signal with its id: kind, subject, state, the evidence's metric and start, and the
        moment detected say which signal it is (a detector emits one per subject and transition).
        `summary` is the detector's one line for people; it is not part of the id."""
        signal_id = stable_id(
            "sig",
            kind,
            subject.type,
            subject.id,
            state,
            str(evidence.get("metric", "")),
            str(evidence.get("started_on", "")),
            detected_at.isoformat(),
        )
        return cls(signal_id, kind, state, severity, subject, evidence, detected_at, emitted_at, summary)

    @property
    def resolved(self) -> bool:
        return self.state in RESOLVED_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal_id,
            "kind": self.kind,
            "state": self.state,
            "severity": self.severity,
            "subject": self.subject.to_json(),
            "evidence": _plain(self.evidence),
            "detected_at": self.detected_at.isoformat(),
            "emitted_at": self.emitted_at.isoformat(),
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Signal":
        path = "signal"
        return cls(
            signal_id=_get(data, path, "signal_id", str),
            kind=_get(data, path, "kind", str),
            state=_get(data, path, "state", str),
            severity=_get(data, path, "severity", str),
            subject=Subject.from_json(_get(data, path, "subject", Mapping), f"{path}.subject"),
            evidence=dict(_get(data, path, "evidence", Mapping, required=False, default={})),
            detected_at=_time(data, path, "detected_at"),
            emitted_at=_time(data, path, "emitted_at"),
            summary=_get(data, path, "summary", str, required=False, default=""),
        )


# ----------------------------------------------------------------------------- proposals


@dataclass(frozen=True)
class ProposedMove:
    """One account to a new rep (`from_rep` None: it had no active rep)."""

    account_id: str
    from_rep: str | None
    to_rep: str
    potential: float
    workload: float
    distance_km: float  # from to_rep's home to the account
    reason: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: str) -> "ProposedMove":
        return cls(
            account_id=_get(data, path, "account_id", str),
            from_rep=_get(data, path, "from_rep", str, required=False),
            to_rep=_get(data, path, "to_rep", str),
            potential=_get(data, path, "potential", float),
            workload=_get(data, path, "workload", float),
            distance_km=_get(data, path, "distance_km", float),
            reason=_get(data, path, "reason", str),
        )


@dataclass(frozen=True)
class RepLoad:
    """A rep's load against the fair share, before or after the moves."""

    rep_id: str
    accounts: int
    potential: float
    share: float
    fair_share: float
    deviation: float  # share / fair_share - 1
    workload: float = 0.0
    workload_share: float = 0.0
    workload_deviation: float = 0.0

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: str) -> "RepLoad":
        return cls(
            rep_id=_get(data, path, "rep_id", str),
            accounts=_get(data, path, "accounts", int),
            **{name: _get(data, path, name, float) for name in ("potential", "share", "fair_share", "deviation")},
            **{
                name: _get(data, path, name, float, required=False, default=0.0)
                for name in ("workload", "workload_share", "workload_deviation")
            },
        )


def _as_json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _as_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_as_json(item) for item in value]
    return _plain(value)


@dataclass(frozen=True)
class Proposal:
    """The rebalancer's answer to the signals that asked for it, with the review's figures."""

    proposal_id: str
    created_at: datetime  # wall clock
    event_time: datetime  # the moment judged
    trigger_signals: tuple[str, ...]
    mode: str  # PROPOSAL_MODES
    status: str  # optimal | feasible | balanced | infeasible | unknown
    moves: tuple[ProposedMove, ...]
    before: tuple[RepLoad, ...]
    after: tuple[RepLoad, ...]
    imbalance_before: float  # largest |deviation| over reps and metrics
    imbalance_after: float
    seconds: float
    tolerance: float
    objective: float | None = None
    objective_kind: str = "moves"
    bound: float | None = None
    gap: float | None = None
    tolerances: Mapping[str, float] | None = None
    metrics: tuple[str, ...] = ("potential",)
    explanation: str | None = None
    notes: tuple[str, ...] = ()
    # Total travel (straight-line km x each rep's travel_factor) before and after, travel
    # proposals only.
    travel_km_before: float | None = None
    travel_km_after: float | None = None
    # The review's context (see docs/EVENTS.md): account rows, their scope and month, rep homes,
    # and the moves-vs-imbalance curve. Absent on proposals built without a company view.
    # The areas of the shocks among the triggers (the review's map draws them).
    shocks: tuple[Mapping[str, Any], ...] | None = None
    accounts: tuple[Mapping[str, Any], ...] | None = None
    accounts_scope: str | None = None
    accounts_as_of: str | None = None
    reps: tuple[Mapping[str, Any], ...] | None = None
    curve: tuple[Mapping[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        if self.mode not in PROPOSAL_MODES:
            raise RecordError("proposal.mode", f"must be one of {', '.join(PROPOSAL_MODES)}, got {self.mode!r}")
        for name in ("tolerances", "shocks", "accounts", "reps", "curve"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def touched_reps(self) -> frozenset[str]:
        return frozenset({move.to_rep for move in self.moves} | {move.from_rep for move in self.moves if move.from_rep})

    def with_(self, **changes: Any) -> "Proposal":
        return Proposal(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    def to_json(self) -> dict[str, Any]:
        out = {f.name: _as_json(getattr(self, f.name)) for f in fields(self)}
        out["created_at"], out["event_time"] = self.created_at.isoformat(), self.event_time.isoformat()
        for name in ("shocks", "accounts", "accounts_scope", "accounts_as_of", "reps", "curve"):
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Proposal":
        path = "proposal"

        def rows(name: str, record: Any, *, required: bool = True) -> Any:
            items = _get(data, path, name, list, required=required)
            if items is None:
                return None
            return tuple(record(item, f"{path}.{name}[{n}]") for n, item in enumerate(items))

        def mapping(item: Any, where: str) -> Mapping[str, Any]:
            if not isinstance(item, Mapping):
                raise RecordError(where, f"must be an object, got {type(item).__name__}")
            return item

        def text(item: Any, where: str) -> str:
            if not isinstance(item, str):
                raise RecordError(where, f"must be str, got {type(item).__name__}")
            return item

        return cls(
            proposal_id=_get(data, path, "proposal_id", str),
            created_at=_time(data, path, "created_at"),
            event_time=_time(data, path, "event_time"),
            trigger_signals=rows("trigger_signals", text),
            mode=_get(data, path, "mode", str),
            status=_get(data, path, "status", str),
            moves=rows("moves", ProposedMove.from_json),
            before=rows("before", RepLoad.from_json),
            after=rows("after", RepLoad.from_json),
            imbalance_before=_get(data, path, "imbalance_before", float),
            imbalance_after=_get(data, path, "imbalance_after", float),
            seconds=_get(data, path, "seconds", float),
            tolerance=_get(data, path, "tolerance", float),
            objective=_get(data, path, "objective", float, required=False),
            objective_kind=_get(data, path, "objective_kind", str, required=False, default="moves"),
            bound=_get(data, path, "bound", float, required=False),
            gap=_get(data, path, "gap", float, required=False),
            tolerances=_get(data, path, "tolerances", Mapping, required=False),
            metrics=rows("metrics", text, required=False) or ("potential",),
            explanation=_get(data, path, "explanation", str, required=False),
            notes=rows("notes", text, required=False) or (),
            travel_km_before=_get(data, path, "travel_km_before", float, required=False),
            travel_km_after=_get(data, path, "travel_km_after", float, required=False),
            shocks=rows("shocks", mapping, required=False),
            accounts=rows("accounts", mapping, required=False),
            accounts_scope=_get(data, path, "accounts_scope", str, required=False),
            accounts_as_of=_get(data, path, "accounts_as_of", str, required=False),
            reps=rows("reps", mapping, required=False),
            curve=rows("curve", mapping, required=False),
        )


#: The records whose fields docs/EVENTS.md lists, by topic.
RECORDS_BY_TOPIC: Mapping[str, tuple[type, ...]] = MappingProxyType(
    {
        "territory.signals": (Signal, Subject),
        "territory.proposals": (Proposal, ProposedMove, RepLoad),
    }
)


def field_names(record: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record))


__all__ = [
    "BALANCED_METRICS",
    "PROPOSAL_KINDS",
    "PROPOSAL_MODES",
    "REBALANCE_OBJECTIVES",
    "RECORDS_BY_TOPIC",
    "RESOLVED_STATES",
    "SEVERITIES",
    "Proposal",
    "ProposedMove",
    "RecordError",
    "RepLoad",
    "Signal",
    "Subject",
    "field_names",
    "proposal_kind",
    "stable_id",
]
