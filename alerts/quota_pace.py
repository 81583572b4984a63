"""Each rep's quota pace as the weekly review and the review page's index show it: from the
rep's latest ``quota_pace`` signal (read through ``core.records.Signal``), so it is shown
whether or not a proposal is pending. Pure and light (no charts): the index page uses it.

>>> from datetime import datetime, timezone
>>> from core.records import Signal, Subject
>>> signal = Signal.make(kind="quota_pace", state="behind", severity="warning", subject=Subject("rep", "R1"),
...     evidence={"year": 2025, "quota": 1200.0, "sales_to_date": 300.0, "expected_to_date": 400.0,
...               "gap": -100.0, "pace": 0.75, "attainment": 0.25, "projected_year_end": 900.0},
...     detected_at=datetime(2025, 4, 1, tzinfo=timezone.utc), emitted_at=datetime(2025, 4, 1, 6, tzinfo=timezone.utc))
>>> [(row.rep_id, row.state, row.gap, row.as_of) for row in quota_pace_rows([signal])]
[('R1', 'behind', -100.0, '2025-04-01')]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.records import Signal

__all__ = ["KIND", "QuotaPaceRow", "quota_pace_rows"]

#: The signal kind whose latest state per rep the section shows.
KIND = "quota_pace"


@dataclass(frozen=True)
class QuotaPaceRow:
    """A rep's quota pace as of its latest signal: ``state`` is ``behind``, ``ahead`` or
    ``on pace`` (the signal cleared); figures are the signal's evidence (None when absent)."""

    rep_id: str
    name: str | None
    state: str
    year: int | None
    quota: float | None
    sales_to_date: float | None
    expected_to_date: float | None
    gap: float | None
    pace: float | None
    attainment: float | None
    projected_year_end: float | None
    as_of: str  # the day the state was judged (YYYY-MM-DD)


def _figure(evidence: Any, name: str) -> float | None:
    value = evidence.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def quota_pace_rows(signals: Iterable[Signal]) -> list[QuotaPaceRow]:
    """One row per quota_pace signal given (each rep's latest: ``Store.latest_signals``), in
    the order given; a rep whose quota was removed (a cleared signal without a quota) has
    nothing to pace and no row."""
    rows = []
    for signal in signals:
        if signal.kind != KIND:
            continue
        evidence = signal.evidence
        if _figure(evidence, "quota") is None:
            continue
        year = evidence.get("year")
        rows.append(
            QuotaPaceRow(
                rep_id=signal.subject.id,
                name=signal.subject.name,
                state="on pace" if signal.resolved else signal.state,
                year=year if isinstance(year, int) and not isinstance(year, bool) else None,
                quota=_figure(evidence, "quota"),
                sales_to_date=_figure(evidence, "sales_to_date"),
                expected_to_date=_figure(evidence, "expected_to_date"),
                gap=_figure(evidence, "gap"),
                pace=_figure(evidence, "pace"),
                attainment=_figure(evidence, "attainment"),
                projected_year_end=_figure(evidence, "projected_year_end"),
                as_of=signal.detected_at.date().isoformat(),
            )
        )
    return rows
