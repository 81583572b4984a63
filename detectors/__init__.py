"""Detectors: small stateful classes that turn territory figures into findings and signals.

Every detector follows `detectors.protocol.Detector`: it observes one kind of observation
the planner builds, returns findings, makes a `core.records.Signal` of each, and saves and
restores its state. No Kafka or database imports: the planner feeds them.

- `ImbalanceDetector`: a rep's share of potential (or of workload) against the
  capacity-weighted fair share, with hysteresis so a value hovering at the band's edge
  does not flap.
- `CoverageGapDetector`: accounts whose rep left or that have no rep.
- `MarketShockDetector`: a region's demand dropping or rising against the rest of the
  country (which removes the seasonality all regions share), fed once per day with
  sales per region; river `PageHinkley` on the standardised share, one finding per
  shock with its direction, size and start.
- `LocalShockDetector`: a shock in the orders or order value of a neighbourhood of 2-20 %
  of the company's sales, anywhere: a prospective scan over circular zones of grid cells,
  one CUSUM per zone and measure.
- `ModelDriftDetector`: a sustained rise of the potential model's prediction error;
  river `ADWIN` on the scaled error, with the start and size of the rise.
- `QuotaPaceDetector`: a rep's sales so far this calendar year against what their quota
  expects by now (the seasonal index's share of the months elapsed), behind or ahead, with
  hysteresis; signalled, never rebalanced on.

`standard_detectors` is the list the planner runs; a new detector is one module and one
entry there (and its row in docs/EVENTS.md, which a test checks against its `example_signal`).
Each detector writes the one-line summary of its signals itself, so the alert stage, which
imports no detector, shows any kind.
"""

from __future__ import annotations

from core.settings import Settings
from detectors.coverage_gap import CoverageGapDetector, CoverageGapFinding
from detectors.imbalance import ImbalanceDetector, ImbalanceFinding
from detectors.local_shock import LocalShockDetector, LocalShockEvidence, LocalShockFinding
from detectors.market_shock import MarketShockDetector, ShockEvidence, ShockFinding
from detectors.model_drift import ErrorDriftEvidence, ErrorDriftFinding, ModelDriftDetector
from detectors.protocol import (
    CellDay,
    CompanyCoverage,
    Detector,
    Documented,
    ModelErrors,
    MonthlyTerritories,
    QuotaYear,
    RegionalDay,
)
from detectors.quota_pace import QuotaPaceDetector, QuotaPaceFinding, QuotaStanding


def standard_detectors(settings: Settings) -> list[Detector]:
    """The detectors the planner runs, in the order their signals of one judgement are published."""
    return [
        ImbalanceDetector(tolerance=settings.tolerance, hysteresis=settings.hysteresis),
        # Workload (activity minutes) against the same capacity-weighted fair share. Signalled,
        # not rebalanced on: the rebalancer balances potential only.
        ImbalanceDetector(
            tolerance=settings.tolerance, hysteresis=settings.hysteresis, metric="workload", name="workload_imbalance"
        ),
        CoverageGapDetector(),
        # Order counts react about twice as fast as order values (bench/detectors.py).
        MarketShockDetector(measure="orders", delta=0.35),
        LocalShockDetector(),
        ModelDriftDetector(),
        # Sales so far this year, and each month's run rate, against the quota: alerted, not
        # rebalanced on.
        QuotaPaceDetector(
            behind=settings.quota_pace_behind,
            ahead=settings.quota_pace_ahead,
            hysteresis=settings.hysteresis,
            run_rate_threshold=settings.quota_pace_run_rate_threshold,
            run_rate_noise=settings.quota_pace_run_rate_noise,
        ),
    ]


__all__ = [
    "CellDay",
    "CompanyCoverage",
    "CoverageGapDetector",
    "CoverageGapFinding",
    "Detector",
    "Documented",
    "ErrorDriftEvidence",
    "ErrorDriftFinding",
    "ImbalanceDetector",
    "ImbalanceFinding",
    "LocalShockDetector",
    "LocalShockEvidence",
    "LocalShockFinding",
    "MarketShockDetector",
    "ModelDriftDetector",
    "ModelErrors",
    "MonthlyTerritories",
    "QuotaPaceDetector",
    "QuotaPaceFinding",
    "QuotaStanding",
    "QuotaYear",
    "RegionalDay",
    "ShockEvidence",
    "ShockFinding",
    "standard_detectors",
]
