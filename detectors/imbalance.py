"""Imbalance of a metric (potential, workload) per rep against the fair share."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

STATES = ("in_band", "over", "under")


@dataclass(frozen=True)
class ImbalanceFinding:
    """A rep crossed into (`over`/`under`) or back out of (`in_band`) the imbalance band."""

    rep_id: str
    metric: str
    state: str
    share: float
    fair_share: float
    deviation: float          # share / fair_share - 1
    threshold: float          # the band edge crossed, as a deviation (e.g. +0.10)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImbalanceDetector:
    """Flags reps whose share leaves fair_share × (1 ± tolerance).

    A rep enters the out-of-band state when its deviation passes ±`tolerance` and only
    returns to `in_band` once the deviation is back within ±`tolerance × hysteresis`, so
    a share oscillating at the edge yields one finding, not one per update.

    Parameters
    ----------
    tolerance
        Allowed relative deviation from the fair share, e.g. 0.10 for ±10%.
    hysteresis
        Fraction of the tolerance that must be regained to leave the out-of-band state,
        in (0, 1].
    metric
        Name of the balanced figure, carried into findings.

    Examples
    --------
    >>> detector = ImbalanceDetector(tolerance=0.10, hysteresis=0.5)
    >>> fair = {"A": 0.5, "B": 0.5}
    >>> for shares in [{"A": 0.52, "B": 0.48}, {"A": 0.56, "B": 0.44},
    ...                {"A": 0.54, "B": 0.46}, {"A": 0.51, "B": 0.49}]:
    ...     _ = detector.update(shares, fair)
    ...     print([(f.rep_id, f.state, round(f.deviation, 2)) for f in detector.findings])
    []
    [('A', 'over', 0.12), ('B', 'under', -0.12)]
    []
    [('A', 'in_band', 0.02), ('B', 'in_band', -0.02)]
    """

    def __init__(self, tolerance: float = 0.10, hysteresis: float = 0.8, metric: str = "potential"):
        if not 0 < tolerance < 1:
            raise ValueError(f"tolerance must be in (0, 1), got {tolerance!r}")
        if not 0 < hysteresis <= 1:
            raise ValueError(f"hysteresis must be in (0, 1], got {hysteresis!r}")
        self.tolerance = tolerance
        self.hysteresis = hysteresis
        self.metric = metric
        self._states: dict[str, str] = {}
        self._findings: list[ImbalanceFinding] = []

    def update(self, shares: Mapping[str, float], fair_shares: Mapping[str, float]) -> "ImbalanceDetector":
        """Judge every rep's current share; `findings` then holds the state changes."""
        self._findings = []
        for rep_id in sorted(fair_shares):
            fair = fair_shares[rep_id]
            if fair <= 0:
                continue
            share = shares.get(rep_id, 0.0)
            deviation = share / fair - 1.0
            previous = self._states.get(rep_id, "in_band")
            state, threshold = self._next_state(previous, deviation)
            self._states[rep_id] = state
            if state != previous:
                self._findings.append(
                    ImbalanceFinding(rep_id, self.metric, state, share, fair, deviation, threshold)
                )
        # Reps that disappeared (left, inactive) have no state any more.
        for rep_id in set(self._states) - set(fair_shares):
            del self._states[rep_id]
        return self

    def _next_state(self, previous: str, deviation: float) -> tuple[str, float]:
        enter, leave = self.tolerance, self.tolerance * self.hysteresis
        if deviation > enter:
            return "over", enter
        if deviation < -enter:
            return "under", -enter
        if previous == "over" and deviation > leave:
            return "over", leave
        if previous == "under" and deviation < -leave:
            return "under", -leave
        return "in_band", (leave if previous == "over" else -leave if previous == "under" else 0.0)

    @property
    def findings(self) -> list[ImbalanceFinding]:
        """State changes found by the last `update`."""
        return list(self._findings)

    @property
    def out_of_band(self) -> dict[str, str]:
        """Reps currently over or under the band, with their state."""
        return {rep_id: state for rep_id, state in self._states.items() if state != "in_band"}

    def state_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, "hysteresis": self.hysteresis, "metric": self.metric,
                "states": dict(self._states)}

    def load_state_dict(self, state: Mapping[str, Any]) -> "ImbalanceDetector":
        unknown = set(state.get("states", {}).values()) - set(STATES)
        if unknown:
            raise ValueError(f"unknown detector states {sorted(unknown)}; valid: {', '.join(STATES)}")
        self._states = dict(state.get("states", {}))
        return self

    def _reset(self) -> None:
        self._states, self._findings = {}, []
