"""Per district figures of a proposal, for its review: what a district manager reads first.

From the proposal's own rows only (``after``, or ``before`` when the proposal moves nothing,
and the ``district`` of its ``reps`` rows), so the review shows the same figures whichever
way the proposal was stored. A rep without a district counts in none.
"""

from __future__ import annotations

import math
from typing import Any

from core.records import Proposal, RepLoad


def district_summary(proposal: Proposal) -> list[dict[str, Any]]:
    """One row per district, by name: its reps' accounts and potential after the proposal,
    its ``share`` of the potential every rep serves, and ``worst_deviation``: the deviation
    from fair share (signed) of its rep furthest off it. Empty when no rep has a district.

    >>> from datetime import datetime, timezone
    >>> def load(rep_id, accounts, potential, deviation):
    ...     return RepLoad(rep_id, accounts, potential, 0.0, 0.0, deviation)
    >>> at = datetime(2025, 6, 1, tzinfo=timezone.utc)
    >>> after = (load("N1", 3, 60.0, 0.2), load("N2", 2, 40.0, -0.2), load("S1", 4, 100.0, 0.0))
    >>> reps = ({"rep_id": "N1", "district": "North"}, {"rep_id": "N2", "district": "North"},
    ...         {"rep_id": "S1", "district": "South"})
    >>> district_summary(Proposal(
    ...     proposal_id="p", created_at=at, event_time=at, trigger_signals=(), mode="minimal_moves",
    ...     status="optimal", moves=(), before=(), after=after, imbalance_before=0.2,
    ...     imbalance_after=0.2, seconds=1.0, tolerance=0.1, reps=reps))
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'district': 'North', 'reps': 2, 'accounts': 5, 'potential': 100.0, 'share': 0.5, 'worst_deviation': 0.2},
     {'district': 'South', 'reps': 1, 'accounts': 4, 'potential': 100.0, 'share': 0.5, 'worst_deviation': 0.0}]
    """
    district_of = {str(row["rep_id"]): row.get("district") for row in proposal.reps or ()}
    if not any(district_of.values()):
        return []
    balances = proposal.after or proposal.before
    total = math.fsum(row.potential for row in balances)
    members: dict[str, list[RepLoad]] = {}
    for row in balances:
        district = district_of.get(row.rep_id)
        if district:
            members.setdefault(str(district), []).append(row)
    summary = []
    for district, rows in sorted(members.items()):
        potential = math.fsum(row.potential for row in rows)
        deviations = [row.deviation for row in rows if math.isfinite(row.deviation)]
        summary.append(
            {
                "district": district,
                "reps": len(rows),
                "accounts": sum(row.accounts for row in rows),
                "potential": potential,
                "share": potential / total if total > 0 else 0.0,
                "worst_deviation": max(deviations, key=abs) if deviations else None,
            }
        )
    return summary
