"""Adding a detector is one module and one list entry: a toy detector registered with the
planner is judged, checkpointed, published as a signal record, stored (SQLite and PostgreSQL)
and alerted, with no other change to the planner or the alert stage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from alerts.alert import alert_from_signal
from alerts.dispatch import Dispatcher
from core.records import RecordError, Signal, Subject
from core.settings import Settings
from detectors import Detector, MonthlyTerritories, standard_detectors
from planner.session import PlanningSession
from tests.test_planner import START, company
from tests.test_sinks import Recorder

JUDGED_AT = datetime(2025, 4, 2, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ThinFinding:
    rep_id: str
    accounts: int
    month: datetime


class ThinTerritoryDetector:
    """Reps serving fewer than `min_accounts` accounts (a toy: once per rep)."""

    name = kind = "thin_territory"
    states = ("thin",)
    observes = MonthlyTerritories
    triggers_rebalance = False

    def __init__(self, min_accounts: int = 2) -> None:
        self.min_accounts = min_accounts
        self.flagged: set[str] = set()

    def observe(self, observation: MonthlyTerritories) -> list[ThinFinding]:
        found = [
            ThinFinding(rep_id, agg.accounts, observation.month)
            for rep_id, agg in sorted(observation.aggregates.items())
            if agg.accounts < self.min_accounts and rep_id not in self.flagged
        ]
        self.flagged |= {finding.rep_id for finding in found}
        return found

    def signal(self, finding: ThinFinding, emitted_at: datetime) -> Signal:
        return Signal.make(
            kind=self.kind,
            state="thin",
            severity="info",
            subject=Subject("rep", finding.rep_id),
            evidence={"accounts": finding.accounts, "min_accounts": self.min_accounts},
            detected_at=finding.month,
            emitted_at=emitted_at,
        )

    def open_subjects(self) -> int:
        return len(self.flagged)

    def state_dict(self) -> dict:
        return {"flagged": sorted(self.flagged)}

    def load_state_dict(self, state) -> None:
        self.flagged = set(state.get("flagged", []))


def with_toy(settings: Settings) -> list[Detector]:
    return [*standard_detectors(settings), ThinTerritoryDetector()]


def session(meta: dict) -> PlanningSession:
    settings = Settings(tolerance=0.10, hysteresis=0.8, warmup_days=30, potential="trailing")
    return PlanningSession(settings, accounts={}, reps={}, meta=meta, make_detectors=with_toy)


def judge(planning: PlanningSession):
    return planning.planner.evaluate(*company(a_sales=300.0), watermark=JUDGED_AT, first_event_at=START)


def test_the_toy_follows_the_protocol():
    assert isinstance(ThinTerritoryDetector(), Detector)


def test_a_registered_detector_is_judged_checkpointed_stored_and_alerted(store):
    meta: dict = {}
    planning = session(meta)
    signals = judge(planning).signals
    toy = [signal for signal in signals if signal.kind == "thin_territory"]
    assert [(s.subject.id, s.evidence["accounts"]) for s in toy] == [("B", 1)]
    # The imbalance detectors still run beside it, and only they trigger the rebalance.
    assert {s.kind for s in signals} == {"imbalance", "thin_territory"}
    assert planning.planner.out_of_band()["thin_territory"] == 1

    # Its state is saved as a part of its own and restored by a fresh session.
    planning.checkpoint()
    assert meta["planner.detector.thin_territory"] == {"flagged": ["B"]}
    restored = session(meta)
    assert restored.restore()
    assert [s for s in judge(restored).signals if s.kind == "thin_territory"] == []  # remembered: no repeat

    # What the alert stage gets from the topic: the record read back, stored, alerted.
    message = toy[0].to_json()
    signal = Signal.from_json(message)
    assert store.save_signal(signal) is True
    assert [(row.kind, row.state, row.subject) for row in store.signals()] == [("thin_territory", "thin", "rep:B")]
    recorder = Recorder("webhook")
    dispatcher = Dispatcher([recorder], store.outbox(), throttle_s=60, retry_max_s=60)
    dispatcher.submit(alert_from_signal(signal))
    assert dispatcher.deliver_due().sent == 1
    (alert,) = recorder.got
    assert alert.key == "thin_territory:rep:B" and alert.labels["alertname"] == "TerritoryThinTerritory"
    assert alert.status == "firing" and "accounts=1" in alert.description


def test_a_detector_kind_the_store_could_not_hold_is_refused_when_the_signal_is_made():
    with pytest.raises(RecordError, match="signal.kind"):
        Signal.make(
            kind="a_kind_name_much_longer_than_the_column_allows",
            state="x",
            severity="info",
            subject=Subject("rep", "R"),
            evidence={},
            detected_at=JUDGED_AT,
            emitted_at=JUDGED_AT,
        )


def test_detector_names_must_be_unique():
    from planner.planner import Planner

    with pytest.raises(ValueError, match="unique"):
        Planner(
            Settings(), detectors=[*standard_detectors(Settings()), ThinTerritoryDetector(), ThinTerritoryDetector()]
        )


def test_a_checkpoint_saved_before_the_protocol_loads_into_the_detectors():
    """An upgraded worker reads the part names of the version before (one per detector
    attribute) once; it then saves them as "detector.<name>"."""
    from planner.planner import Planner

    band = {"tolerance": 0.1, "hysteresis": 0.8}
    old = {
        "detector": {**band, "metric": "potential", "states": {"A": "over", "B": "in_band"}},
        "workload_detector": {**band, "metric": "workload", "states": {"C": "under"}},
        "gap_reps": ["R9", "R7"],
        "judged_month": "2025-04-01T00:00:00+00:00",
    }
    planner = Planner(Settings())
    planner.load_state_dict(old)
    assert planner.out_of_band() == {"imbalance": 1, "workload_imbalance": 1, "coverage_gap": 2}
    saved = planner.state_dict()
    assert saved["detector.coverage_gap"] == {"gap_reps": ["R7", "R9"]} and "gap_reps" not in saved
