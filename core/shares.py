"""A rep's share of a figure (potential, workload) and its capacity-weighted fair share: one
definition for the imbalance detector (monitor.state) and the rebalancer (rebalancer.values).

Shares are of what the given reps *serve*: an account whose rep is not among them (the rep
left, went inactive, or the account never had one) counts in no total. Why not divide by the
whole company's potential instead:

* Fair shares divide the given reps' capacity among them and sum to 1; shares then sum to 1
  as well, and ``share / fair_share - 1`` measures how the reps split what they carry. Counted
  against the whole company, shares would sum to less than 1 while accounts are orphaned, and
  every remaining rep would read "under" by about the orphaned fraction: a perfectly balanced
  team could not be in band until the orphans are placed.
* Orphaned accounts are a coverage gap, signalled on their own and answered by a placement
  (which moves only them). Counting them again as an imbalance of everyone else would raise
  imbalance signals that clear by themselves once the placement is accepted.
* Detector and rebalancer must agree: the rebalancer's "before" is what the detector judged,
  and its "after" (every account placed, so served = all) is judged the same way. The
  rebalancer's solver bands are set on the placed company, where the two totals coincide.

With nothing to share (a total of 0) every share and deviation is 0: no rep is off.

>>> loads = [("R1", 60.0), ("R2", 30.0), ("GONE", 900.0), (None, 10.0)]
>>> for rep_id, s in rep_shares(loads, {"R1": 1.0, "R2": 0.5}).items():
...     print(rep_id, s.amount, round(s.share, 4), round(s.fair_share, 4), round(s.deviation, 4))
R1 60.0 0.6667 0.6667 0.0
R2 30.0 0.3333 0.3333 0.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RepShare:
    """One rep's part of a figure."""

    amount: float  # what the rep carries: the exact (fsum) sum of its accounts' figures
    share: float  # amount / what all given reps carry; 0 when they carry nothing
    fair_share: float  # capacity / capacity of all given reps
    deviation: float  # share / fair_share - 1; 0 when there is nothing to share or no fair share


def deviation(share: float, fair_share: float, total: float) -> float:
    """``share / fair_share - 1``, or 0 when there is nothing to share (``total`` <= 0) or the
    rep has no fair share."""
    return share / fair_share - 1.0 if total > 0 and fair_share > 0 else 0.0


def rep_shares(loads: Iterable[tuple[str | None, float]], capacities: Mapping[str, float]) -> dict[str, RepShare]:
    """Each rep of ``capacities`` (rep id -> capacity in FTE, in the order given): what it
    carries of ``loads`` (rep id or None, figure per account), its share of what the reps of
    ``capacities`` carry together, its fair share and deviation.

    Loads of a rep not in ``capacities`` serve no one and count in no total (see the module
    docstring for why)."""
    served: dict[str, list[float]] = {rep_id: [] for rep_id in capacities}
    for rep_id, value in loads:
        if rep_id in served:
            served[rep_id].append(value)
    amounts = {rep_id: math.fsum(values) for rep_id, values in served.items()}
    total = math.fsum(amounts.values())
    capacity = math.fsum(capacities.values())
    result = {}
    for rep_id, amount in amounts.items():
        share = amount / total if total > 0 else 0.0
        fair_share = capacities[rep_id] / capacity if capacity > 0 else 0.0
        result[rep_id] = RepShare(amount, share, fair_share, deviation(share, fair_share, total))
    return result
