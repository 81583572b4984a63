"""What people read: an alert built from a proposal, and one log line per move."""

from __future__ import annotations

from typing import Any

from core.clock import SYSTEM_CLOCK, Clock
from core.formatting import percent


def summary_line(proposal: dict[str, Any]) -> str:
    moves = len(proposal["moves"])
    if proposal["status"] in ("infeasible", "unknown"):
        return (
            f"proposal {proposal['proposal_id']}: no balanced assignment found ({proposal['status']}): "
            f"{proposal.get('explanation') or 'no explanation'}"
        )
    return (
        f"proposal {proposal['proposal_id']}: move {moves} account{'s' if moves != 1 else ''}: "
        f"imbalance {percent(proposal['imbalance_before'])} -> {percent(proposal['imbalance_after'])} "
        f"({proposal['status']}, {proposal['seconds']:.1f} s)"
    )


def move_lines(proposal: dict[str, Any]) -> list[str]:
    return [
        f"proposal {proposal['proposal_id']}: move account {move['account_id']} "
        f"(potential {move['potential']:,.0f}) from {move['from_rep'] or 'nobody'} to {move['to_rep']}: {move['reason']}"
        for move in proposal["moves"]
    ]


def alert_from_proposal(proposal: dict[str, Any], *, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """The alert as sent to people: a headline, the move lines and the figures behind them."""
    solved = proposal["status"] not in ("infeasible", "unknown")
    return {
        "alert_id": f"alert-{proposal['proposal_id']}",
        "proposal_id": proposal["proposal_id"],
        "severity": "warning" if solved else "critical",
        "title": summary_line(proposal),
        "lines": move_lines(proposal),
        "trigger_signals": proposal["trigger_signals"],
        "imbalance_before": proposal["imbalance_before"],
        "imbalance_after": proposal["imbalance_after"],
        "event_time": proposal["event_time"],
        "sent_at": clock.now().isoformat(),
    }
