"""docs/EVENTS.md says what crosses territory.signals and territory.proposals: its tables are
checked against the records (core/records.py) and the detectors the planner runs, so the two
cannot drift apart again (they had: kinds never emitted, states out of date)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from core.records import Proposal, Signal, field_names
from core.settings import Settings
from detectors import (
    LocalShockDetector,
    LocalShockEvidence,
    LocalShockFinding,
    CompanyCoverage,
    CoverageGapDetector,
    ErrorDriftEvidence,
    ErrorDriftFinding,
    ImbalanceDetector,
    MarketShockDetector,
    ModelDriftDetector,
    MonthlyTerritories,
    QuotaPaceDetector,
    QuotaYear,
    ShockEvidence,
    ShockFinding,
    standard_detectors,
)
from monitor.state import AccountState, RepAggregate, RepState

DOC = Path(__file__).resolve().parent.parent / "docs" / "EVENTS.md"
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def tables(heading: str) -> list[list[list[str]]]:
    """The tables under a `### heading`, as rows of cells (header and rule dropped)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n### {heading}\n", 1)[1].split("\n#", 1)[0]
    found, current = [], []
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        elif current:
            found.append(current[2:])
            current = []
    return found


def names(cell: str) -> list[str]:
    """The `backticked` names of a cell, leaving out what is in parentheses (values, notes)."""
    while re.search(r"\([^()]*\)", cell):
        cell = re.sub(r"\([^()]*\)", "", cell)
    return re.findall(r"`([^`]+)`", cell.split(". ")[0])


@pytest.mark.parametrize("heading, record", [("Signals", Signal), ("Proposals", Proposal)])
def test_the_field_tables_list_exactly_the_record_fields(heading, record):
    documented = [names(row[0])[0] for row in tables(heading)[0]]
    assert documented == list(field_names(record))


def kinds_table() -> dict[str, dict[str, list[str]]]:
    return {
        names(row[0])[0]: {"detectors": names(row[1]), "states": names(row[2]), "evidence": names(row[4])}
        for row in tables("Signals")[1]
    }


def test_the_kinds_table_lists_every_detector_with_its_states():
    by_kind: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"detectors": set(), "states": set()})
    for detector in standard_detectors(Settings()):
        by_kind[detector.kind]["detectors"].add(detector.name)
        by_kind[detector.kind]["states"].update(detector.states)
    documented = {
        kind: {"detectors": set(row["detectors"]), "states": set(row["states"])} for kind, row in kinds_table().items()
    }
    assert documented == dict(by_kind)


def one_signal_per_kind() -> dict[str, Signal]:
    """A signal of each kind made by the detector itself, to compare its evidence with the doc."""
    aggregates = {
        "A": RepAggregate("A", 40, 700.0, 900.0, 1.0, 0.7, 0.5),
        "B": RepAggregate("B", 35, 300.0, 800.0, 1.0, 0.3, 0.5),
    }
    imbalance = ImbalanceDetector()
    (finding, *_) = imbalance.observe(MonthlyTerritories(NOW, aggregates))
    coverage = CoverageGapDetector()
    (gap, *_) = coverage.observe(
        CompanyCoverage(
            [AccountState("a1", 48.0, 11.0, rep_id="R1", known=True)],
            [RepState("R1", 48.0, 11.0, active=False)],
            NOW,
            NOW,
            12,
            True,
        )
    )
    shock = ShockFinding(
        "DE-02",
        "drop",
        -0.3,
        date(2025, 5, 1),
        date(2025, 5, 20),
        ShockEvidence("page_hinkley", 12.0, 10.0, 0.1, 0.07, 100.0, 70.0, 15),
    )
    drift = ErrorDriftFinding(
        "rise", 0.4, date(2025, 4, 1), NOW, ErrorDriftEvidence("adwin", 1e-5, 4.0, 0.2, 0.28, 300, 120)
    )
    local = LocalShockFinding(
        "243:30/2",
        ("243:30", "243:31"),
        "drop",
        -0.3,
        date(2025, 5, 1),
        date(2025, 5, 20),
        LocalShockEvidence("orders", 15.0, 14.0, 0.04, 200.0, 140.0, 15, 12.5, (48.7, 9.15), 22.0),
        ("a1", "a2"),
        ("R1",),
    )
    return {
        "local_shock": LocalShockDetector().signal(local, NOW),
        "imbalance": imbalance.signal(finding, NOW),
        "coverage_gap": coverage.signal(gap, NOW),
        "market_shock": MarketShockDetector().signal(shock, NOW),
        "model_drift": ModelDriftDetector().signal(drift, NOW),
        "quota_pace": quota_pace_signal(),
    }


def quota_pace_signal() -> Signal:
    detector = QuotaPaceDetector()
    year = QuotaYear(2025, 5, {"A": (50_000.0,) * 5}, {"A": 1_000_000.0})
    (finding,) = detector.observe(MonthlyTerritories(NOW, {}, year))
    return detector.signal(finding, NOW)


def test_the_kinds_table_lists_the_evidence_each_detector_gives():
    documented = {kind: row["evidence"] for kind, row in kinds_table().items()}
    made = {kind: list(signal.evidence) for kind, signal in one_signal_per_kind().items()}
    assert {kind: sorted(keys) for kind, keys in documented.items()} == {
        kind: sorted(keys) for kind, keys in made.items()
    }
    assert {signal.state for signal in one_signal_per_kind().values()} <= {
        state for row in kinds_table().values() for state in row["states"]
    }
