"""The imbalance detector: band, hysteresis, saved state."""

from __future__ import annotations

import pytest

from detectors import ImbalanceDetector

FAIR = {"A": 0.5, "B": 0.5}


def shares(a: float) -> dict[str, float]:
    return {"A": a, "B": 1 - a}


def test_value_hovering_at_the_edge_gives_one_finding():
    detector = ImbalanceDetector(tolerance=0.10, hysteresis=0.8)
    findings = []
    for a in [0.50, 0.556, 0.549, 0.556, 0.548, 0.556]:  # crosses +10% then hovers around it
        findings += detector.update(shares(a), FAIR).findings
    assert [(f.rep_id, f.state) for f in findings] == [("A", "over"), ("B", "under")]
    assert detector.out_of_band == {"A": "over", "B": "under"}


def test_leaves_only_inside_the_hysteresis_band():
    detector = ImbalanceDetector(tolerance=0.10, hysteresis=0.5)
    detector.update(shares(0.56), FAIR)
    assert detector.update(shares(0.53), FAIR).findings == []  # +6%: still over (leave at +5%)
    cleared = detector.update(shares(0.52), FAIR).findings  # +4%: back in band
    assert {f.state for f in cleared} == {"in_band"}


def test_capacity_weighted_fair_share():
    detector = ImbalanceDetector(tolerance=0.10)
    found = detector.update({"full": 0.58, "half": 0.42}, {"full": 2 / 3, "half": 1 / 3}).findings
    assert [(f.rep_id, f.state) for f in found] == [("full", "under"), ("half", "over")]


def test_state_survives_save_and_restore():
    detector = ImbalanceDetector(tolerance=0.10)
    detector.update(shares(0.6), FAIR)
    restored = ImbalanceDetector(tolerance=0.10).load_state_dict(detector.state_dict())
    assert restored.out_of_band == {"A": "over", "B": "under"}
    assert restored.update(shares(0.6), FAIR).findings == []  # no second finding after a restart


def test_invalid_parameters_are_refused_with_the_valid_range():
    with pytest.raises(ValueError, match="tolerance must be in"):
        ImbalanceDetector(tolerance=1.5)
    with pytest.raises(ValueError, match="unknown detector states"):
        ImbalanceDetector().load_state_dict({"states": {"A": "sideways"}})
