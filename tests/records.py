"""Signal and proposal records from the short hand-written dicts tests use: the fields a test
does not care about get neutral values, so the record is what the planner would publish."""

from __future__ import annotations

from typing import Any, Mapping

from core.records import Proposal, Signal

_PROPOSAL = {
    "created_at": "2026-01-01T00:00:00+00:00",
    "event_time": "2025-05-01T00:00:00+00:00",
    "trigger_signals": [],
    "mode": "minimal_moves",
    "status": "optimal",
    "moves": [],
    "before": [],
    "after": [],
    "imbalance_before": 0.0,
    "imbalance_after": 0.0,
    "seconds": 0.0,
    "tolerance": 0.1,
}
_MOVE = {"from_rep": None, "potential": 0.0, "workload": 0.0, "distance_km": 0.0, "reason": "test"}


def signal(data: Mapping[str, Any]) -> Signal:
    return Signal.from_json({"evidence": {}, "emitted_at": "2026-01-01T00:00:00+00:00", **data})


def proposal(data: Mapping[str, Any]) -> Proposal:
    moves = [{**_MOVE, **move} for move in data.get("moves") or []]
    return Proposal.from_json({**_PROPOSAL, **data, "moves": moves})
