"""Minimal-move rebalancing of sales territories.

Each rep should serve a share of the total account potential proportional to their
capacity (their *fair share*). Territories drift: accounts grow or shrink, reps leave.
The rebalancer proposes the **fewest account moves** that bring every rep back within a
tolerance band around their fair share (``fair * (1 ± tolerance)``), and among equally
short proposals the one with the least travel for the moved accounts.

- Accounts whose rep is missing or inactive must be placed; each placement is a move.
- Locked accounts keep their rep.
- An account may only go to one of the few reps nearest to it (``candidate_reps``)
  within each rep's ``max_travel_km``; this keeps the model small and the proposal
  sensible on a map.
- An account with a ``segment`` may only go to reps that serve it (``Rep.segments``,
  empty: every segment); each rep holds between its ``min_accounts`` and
  ``max_accounts`` accounts when those are set.

The model is an OR-Tools CP-SAT assignment model (a boolean per account and candidate
rep). A greedy repair, an LP relaxation (bound, and which accounts move) and reduced
models that grow from the LP's answer make it fast at 20k accounts x 50 reps; every
answer comes with a proven bound and gap. Other questions on the same model: least
moved potential, the best balance for at most M moves (:func:`minimal_moves` with
``max_moves``), the moves-vs-imbalance curve (:func:`trade_off_curve`), several metrics
at once, contiguous territories, and the least total travel with every rep in band for at
most M moves (``objective="travel"``) with its curve (``kind="travel"``). When the band
cannot hold, the result names the rep and the constraint at fault instead of a bare
"infeasible". docs/REBALANCER.md has the whole story.

When a rep leaves, :func:`place_accounts` is the narrower answer: only the orphaned
accounts move, to the reps that keep the worst deviation from fair share least (then
the least travel), and the result says when a full rebalance would still be needed.

The package is pure logic (no Kafka, no database): it takes a snapshot and returns a
:class:`RebalanceResult`, whose ``to_dict()`` is what the service publishes and stores.

Examples
--------
>>> from rebalancer import Account, Rep, balance_of
>>> reps = [Rep("R1", 0.0, 0.0), Rep("R2", 0.0, 0.0, capacity_fte=0.5)]
>>> accounts = [Account("A1", 60, rep_id="R1"), Account("A2", 30, rep_id="R2")]
>>> [(b.rep_id, round(b.fair_share, 3), round(b.deviation, 3)) for b in balance_of(accounts, reps)]
[('R1', 0.667, 0.0), ('R2', 0.333, 0.0)]
"""

from core.geo import haversine_km
from rebalancer.model import CURVE_KINDS, minimal_moves, trade_off_curve
from rebalancer.placement import place_accounts
from rebalancer.values import (
    METRICS,
    OBJECTIVES,
    STATUSES,
    Account,
    CurvePoint,
    Move,
    RebalanceResult,
    Rep,
    RepBalance,
    TravelPoint,
    balance_of,
    imbalance_of,
)

__all__ = [
    "CURVE_KINDS",
    "METRICS",
    "OBJECTIVES",
    "STATUSES",
    "Account",
    "CurvePoint",
    "Move",
    "RebalanceResult",
    "Rep",
    "RepBalance",
    "TravelPoint",
    "balance_of",
    "haversine_km",
    "imbalance_of",
    "minimal_moves",
    "place_accounts",
    "trade_off_curve",
]
