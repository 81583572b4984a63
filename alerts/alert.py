"""One incident as every sink sees it: the `Alert`, built from a signal or a proposal.

The `key` is what makes "one shock, one alert": every later signal about the same
incident (same kind, subject and metric) or every superseding proposal for the same
reps carries the same key, so the dispatcher updates the alert it already sent
instead of sending a second one. Labels are chosen to route well in Alertmanager
(alertname, severity, service, kind and the subject as rep/region/model) and stay
stable for an incident; what changes between updates goes into annotations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping

from alerts import messages
from core.clock import SYSTEM_CLOCK, Clock
from core.records import Proposal, Signal

#: The `service` label on every alert, so one Alertmanager route catches them all.
SERVICE = "territory-monitor"
STATUSES = ("firing", "resolved")
#: Subject types that also get a label of their own name (rep="R-1", region="DE-BY").
_SUBJECT_LABELS = ("rep", "region", "model")
#: Annotations that identify one emission of a signal, not what it says (ignored by `content`).
VOLATILE_ANNOTATIONS = frozenset({"signal_id", "detected_at"})
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Alert:
    """An incident in its newest state. Frozen: an update is a new `Alert` with the same key."""

    key: str
    status: str  # "firing" | "resolved"
    severity: str  # "critical" | "warning" | "info"
    summary: str  # one line
    description: str  # a few lines, plain text
    labels: dict[str, str]
    annotations: dict[str, str]
    body: dict[str, Any]  # the full payload (the signal, or the alert message of a proposal)
    starts_at: datetime
    ends_at: datetime | None = None
    updated_at: datetime = field(default_factory=SYSTEM_CLOCK.now)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"alert {self.key!r}: status {self.status!r} is not one of {STATUSES}")
        bad = [name for name in self.labels if not _LABEL_NAME.match(name)]
        if bad:
            raise ValueError(f"alert {self.key!r}: label names {bad} are not [a-zA-Z_][a-zA-Z0-9_]*")

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types only: what the outbox stores and the webhook sends."""
        return {
            "key": self.key,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "body": self.body,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Alert":
        return cls(
            key=data["key"],
            status=data["status"],
            severity=data["severity"],
            summary=data["summary"],
            description=data["description"],
            labels=dict(data["labels"]),
            annotations=dict(data["annotations"]),
            body=dict(data["body"]),
            starts_at=_parse_time(data["starts_at"]),
            ends_at=_parse_time(data["ends_at"]) if data.get("ends_at") else None,
            updated_at=_parse_time(data["updated_at"]),
        )

    def content(self) -> dict[str, Any]:
        """What a receiver shows about the incident, without the times and the raw payload.

        Two alerts with equal content say the same thing; the dispatcher does not send the
        second (a re-emitted signal has a new id and emission time, but nothing new to say).
        """
        return {
            "key": self.key,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "labels": dict(self.labels),
            "annotations": {k: v for k, v in self.annotations.items() if k not in VOLATILE_ANNOTATIONS},
        }

    def with_(self, **changes: Any) -> "Alert":
        return replace(self, **changes)


def content_of(alert_json: Mapping[str, Any]) -> dict[str, Any]:
    """`Alert.content()` of a stored alert dict."""
    return Alert.from_json(alert_json).content()


# ---------------------------------------------------------------------------- signals


def alert_from_signal(
    signal: Signal, *, review_url: str | None = None, runbook_url: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> Alert:
    """The alert for a detector signal (docs/EVENTS.md, `territory.signals`).

    Key: kind, subject and (for imbalance) the metric, so the potential and the workload
    imbalance of one rep are two incidents, and its over -> cleared transition is one.
    """
    subject, evidence = signal.subject, signal.evidence
    metric = str(evidence.get("metric") or "")
    status = "resolved" if signal.resolved else "firing"

    key = f"{signal.kind}:{subject.type}:{subject.id}" + (f":{metric}" if metric else "")
    labels = {
        "alertname": "Territory"
        + "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", signal.kind) if part),
        "severity": signal.severity,
        "service": SERVICE,
        "kind": signal.kind,
        "subject_type": subject.type,
        "subject": subject.id,
    }
    if subject.type in _SUBJECT_LABELS:
        labels[subject.type] = subject.id
    if metric:
        labels["metric"] = metric
    body = signal.to_json()
    summary = _signal_summary(signal)
    # No ids or times in the description: a re-emitted signal with the same figures says nothing new.
    description = "\n".join(
        line
        for line in (
            summary,
            f"state: {signal.state}",
            "evidence: " + _evidence_text(body["evidence"]) if evidence else "",
        )
        if line
    )
    annotations = {
        "summary": summary,
        "description": description,
        "state": signal.state,
        "signal_id": signal.signal_id,
        "detected_at": signal.detected_at.isoformat(),
    }
    _add_links(annotations, review_url, runbook_url)
    # Wall-clock times (emitted_at), not event time: Alertmanager expires alerts by its clock.
    return Alert(
        key=key,
        status=status,
        severity=signal.severity,
        summary=summary,
        description=description,
        labels=labels,
        annotations={k: v for k, v in annotations.items() if v},
        body=body,
        starts_at=signal.emitted_at,
        ends_at=signal.emitted_at if status == "resolved" else None,
        updated_at=clock.now(),
    )


def _signal_summary(signal: Signal) -> str:
    """The detector's own line; a signal published before detectors wrote one says its kind,
    state and subject."""
    if signal.summary:
        return signal.summary
    return (
        f"{signal.kind.replace('_', ' ')} {signal.state or 'signal'} for {signal.subject.type} {signal.subject.label}"
    )


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    parts = []
    for name, value in evidence.items():
        if isinstance(value, float):
            value = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
        elif isinstance(value, (list, tuple)) and len(value) > 5:
            value = ", ".join(map(str, value[:5])) + f", ... ({len(value)})"
        parts.append(f"{name}={value}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- proposals


def proposal_key(proposal: Proposal) -> str:
    """ "proposal:" + the reps it touches (as `alerts.store.row_reps`): a superseding
    proposal for the same reps updates the same alert. Unsolved proposals (no moves) are
    one territory-wide incident."""
    reps = proposal.touched_reps
    return "proposal:" + (",".join(sorted(reps)) if reps else "unsolved")


def alert_from_proposal(
    proposal: Proposal, *, review_url: str | None = None, runbook_url: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> Alert:
    """The alert for a rebalance proposal; `body` is the `territory.alerts` message."""
    message = messages.alert_from_proposal(proposal, clock=clock)
    key = proposal_key(proposal)
    reps = key.split(":", 1)[1]
    summary = messages.summary_line(proposal)
    lines = messages.move_lines(proposal)
    description = "\n".join([summary, *lines]) if lines else summary
    labels = {
        "alertname": "TerritoryRebalanceProposal",
        "severity": message["severity"],
        "service": SERVICE,
        "kind": "rebalance_proposal",
        "subject_type": "reps",
        "subject": reps,
    }
    annotations = {
        "summary": summary,
        "description": description,
        "proposal_id": proposal.proposal_id,
        "proposal_status": proposal.status,
        "moves": str(len(proposal.moves)),
        "trigger_signals": ",".join(proposal.trigger_signals),
    }
    _add_links(annotations, review_url, runbook_url)
    return Alert(
        key=key,
        status="firing",
        severity=message["severity"],
        summary=summary,
        description=description,
        labels=labels,
        annotations={k: v for k, v in annotations.items() if v},
        body=message,
        starts_at=proposal.created_at,
        updated_at=clock.now(),
    )


# ---------------------------------------------------------------------------- helpers


def _add_links(annotations: dict[str, str], review_url: str | None, runbook_url: str | None) -> None:
    if review_url:
        annotations["review_url"] = review_url
    if runbook_url:
        annotations["runbook_url"] = runbook_url


def _parse_time(value: str | datetime) -> datetime:
    """ISO 8601 (a trailing Z too) to an aware datetime; naive times are taken as UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def proposal_settled(
    proposal: Proposal,
    status: str,
    *,
    actor: str | None = None,
    comment: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Alert:
    """The proposal's alert, resolved: it was approved, rejected, applied or superseded,
    so nobody needs to act on it any more."""
    firing = alert_from_proposal(proposal, clock=clock)
    by = f" by {actor}" if actor else ""
    summary = f"{status}{by}: {firing.summary}"
    annotations = {
        **firing.annotations,
        "summary": summary,
        "decision": status,
        **({"decided_by": actor} if actor else {}),
        **({"comment": comment} if comment else {}),
    }
    return replace(firing, status="resolved", summary=summary, annotations=annotations, ends_at=clock.now())
