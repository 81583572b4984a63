"""Topic names of the event contract (docs/EVENTS.md) and the internal topics."""

from __future__ import annotations

ACCOUNTS = "crm.accounts"
REPS = "crm.reps"
ORDERS = "sales.orders"
OPPORTUNITIES = "crm.opportunities"
ACTIVITIES = "sales.activities"
OVERRIDES = "territory.overrides"

SIGNALS = "territory.signals"
PROPOSALS = "territory.proposals"
ALERTS = "territory.alerts"
ASSIGNMENTS = "territory.assignments"
DEADLETTER = "territory.deadletter"

# Internal: per-account and per-rep snapshots from the partitioned intake to the
# single-partition planner, which needs the whole company to balance it.
STATE = "territory.state"

INPUT_TOPICS: tuple[str, ...] = (ACCOUNTS, REPS, ORDERS, OPPORTUNITIES, ACTIVITIES, OVERRIDES)
OUTPUT_TOPICS: tuple[str, ...] = (SIGNALS, PROPOSALS, ALERTS, ASSIGNMENTS, DEADLETTER)

# Which `type` values may arrive on which input topic.
TYPES_BY_TOPIC: dict[str, frozenset[str]] = {
    ACCOUNTS: frozenset({"account.upserted", "account.closed", "account.erased"}),
    REPS: frozenset({"rep.upserted"}),
    ORDERS: frozenset({"order.placed"}),
    OPPORTUNITIES: frozenset({"opportunity.updated"}),
    ACTIVITIES: frozenset({"activity.logged"}),
    OVERRIDES: frozenset({"assignment.override"}),
}
