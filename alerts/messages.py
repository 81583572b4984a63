"""What people read: an alert built from a proposal, and one log line per move."""

from __future__ import annotations

from typing import Any

from core.clock import SYSTEM_CLOCK, Clock
from core.formatting import percent
from core.records import Proposal

#: Proposal statuses that mean "no balanced assignment was found".
UNSOLVED = ("infeasible", "unknown")


def summary_line(proposal: Proposal) -> str:
    if proposal.status in UNSOLVED:
        return (
            f"proposal {proposal.proposal_id}: no balanced assignment found ({proposal.status}): "
            f"{proposal.explanation or 'no explanation'}"
        )
    moves = len(proposal.moves)
    if proposal.mode == "travel":
        before, after = proposal.travel_km_before or 0.0, proposal.travel_km_after or 0.0
        return (
            f"proposal {proposal.proposal_id}: move {moves} account{'s' if moves != 1 else ''} for less travel: "
            f"{before:,.0f} km -> {after:,.0f} km, every rep in band ({proposal.status}, {proposal.seconds:.1f} s)"
        )
    return (
        f"proposal {proposal.proposal_id}: move {moves} account{'s' if moves != 1 else ''}: "
        f"imbalance {percent(proposal.imbalance_before)} -> {percent(proposal.imbalance_after)} "
        f"({proposal.status}, {proposal.seconds:.1f} s)"
    )


def move_lines(proposal: Proposal) -> list[str]:
    return [
        f"proposal {proposal.proposal_id}: move account {move.account_id} "
        f"(potential {move.potential:,.0f}) from {move.from_rep or 'nobody'} to {move.to_rep}: {move.reason}"
        for move in proposal.moves
    ]


def alert_from_proposal(proposal: Proposal, *, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """The alert as sent to people (`territory.alerts`): a headline, the move lines and the
    figures behind them."""
    return {
        "alert_id": f"alert-{proposal.proposal_id}",
        "proposal_id": proposal.proposal_id,
        # A travel proposal is an offer, not a problem: nothing is out of balance.
        "severity": "critical" if proposal.status in UNSOLVED else "info" if proposal.mode == "travel" else "warning",
        "title": summary_line(proposal),
        "lines": move_lines(proposal),
        "trigger_signals": list(proposal.trigger_signals),
        "imbalance_before": proposal.imbalance_before,
        "imbalance_after": proposal.imbalance_after,
        "event_time": proposal.event_time.isoformat(),
        "sent_at": clock.now().isoformat(),
    }
