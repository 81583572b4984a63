"""Per district figures of a proposal, for its review: what a district manager reads first.

From the proposal's own rows only (``after``, or ``before`` when the proposal moves nothing,
and the ``district`` of its ``reps`` rows), so the review shows the same figures whichever
way the proposal was stored. A rep without a district counts in none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def district_summary(proposal: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per district, by name: its reps' accounts and potential after the proposal,
    its ``share`` of the potential every rep serves, and ``worst_deviation``: the deviation
    from fair share (signed) of its rep furthest off it. Empty when no rep has a district.

    >>> district_summary({
    ...     "reps": [{"rep_id": "N1", "district": "North"}, {"rep_id": "N2", "district": "North"},
    ...              {"rep_id": "S1", "district": "South"}],
    ...     "after": [{"rep_id": "N1", "accounts": 3, "potential": 60.0, "deviation": 0.2},
    ...               {"rep_id": "N2", "accounts": 2, "potential": 40.0, "deviation": -0.2},
    ...               {"rep_id": "S1", "accounts": 4, "potential": 100.0, "deviation": 0.0}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'district': 'North', 'reps': 2, 'accounts': 5, 'potential': 100.0, 'share': 0.5, 'worst_deviation': 0.2},
     {'district': 'South', 'reps': 1, 'accounts': 4, 'potential': 100.0, 'share': 0.5, 'worst_deviation': 0.0}]
    """
    district_of = {str(row["rep_id"]): row.get("district") for row in proposal.get("reps") or []}
    if not any(district_of.values()):
        return []
    balances = proposal.get("after") or proposal.get("before") or []
    total = math.fsum(float(row.get("potential") or 0.0) for row in balances)
    members: dict[str, list[Mapping[str, Any]]] = {}
    for row in balances:
        district = district_of.get(str(row["rep_id"]))
        if district:
            members.setdefault(str(district), []).append(row)
    summary = []
    for district, rows in sorted(members.items()):
        potential = math.fsum(float(row.get("potential") or 0.0) for row in rows)
        deviations = [float(row["deviation"]) for row in rows if _finite(row.get("deviation"))]
        summary.append(
            {
                "district": district,
                "reps": len(rows),
                "accounts": sum(int(row.get("accounts") or 0) for row in rows),
                "potential": potential,
                "share": potential / total if total > 0 else 0.0,
                "worst_deviation": max(deviations, key=abs) if deviations else None,
            }
        )
    return summary


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
