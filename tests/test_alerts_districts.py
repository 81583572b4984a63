"""The per district table of a proposal's review (alerts.districts)."""

from __future__ import annotations

import pytest

from alerts.districts import district_summary
from alerts.report import render_proposal_html
from tests import records


def proposal() -> dict:
    return {
        "proposal_id": "p-1",
        "status": "optimal",
        "tolerance": 0.1,
        "reps": [
            {"rep_id": "N1", "district": "North"},
            {"rep_id": "N2", "district": "North"},
            {"rep_id": "S1", "district": "South"},
            {"rep_id": "X1"},
        ],
        "before": [
            {"rep_id": "N1", "accounts": 4, "potential": 80.0, "share": 0.4, "fair_share": 0.25, "deviation": 0.6},
            {"rep_id": "N2", "accounts": 1, "potential": 20.0, "share": 0.1, "fair_share": 0.25, "deviation": -0.6},
            {"rep_id": "S1", "accounts": 3, "potential": 50.0, "share": 0.25, "fair_share": 0.25, "deviation": 0.0},
            {"rep_id": "X1", "accounts": 3, "potential": 50.0, "share": 0.25, "fair_share": 0.25, "deviation": 0.0},
        ],
        "after": [
            {"rep_id": "N1", "accounts": 3, "potential": 55.0, "share": 0.275, "fair_share": 0.25, "deviation": 0.1},
            {"rep_id": "N2", "accounts": 2, "potential": 45.0, "share": 0.225, "fair_share": 0.25, "deviation": -0.1},
            {"rep_id": "S1", "accounts": 3, "potential": 50.0, "share": 0.25, "fair_share": 0.25, "deviation": 0.0},
            {"rep_id": "X1", "accounts": 3, "potential": 50.0, "share": 0.25, "fair_share": 0.25, "deviation": 0.0},
        ],
        "moves": [
            {
                "account_id": "a",
                "from_rep": "N1",
                "to_rep": "N2",
                "potential": 25.0,
                "workload": 0.0,
                "distance_km": 3.0,
                "reason": "N1 over fair share by 60%",
            }
        ],
    }


def test_each_district_adds_up_its_reps_after_the_proposal():
    north, south = district_summary(records.proposal(proposal()))
    assert (north["district"], north["reps"], north["accounts"]) == ("North", 2, 5)
    assert north["potential"] == pytest.approx(100.0) and north["share"] == pytest.approx(0.5)
    assert north["worst_deviation"] == pytest.approx(0.1)  # the larger |deviation| (a tie keeps the first)
    assert (south["district"], south["accounts"], south["worst_deviation"]) == ("South", 3, 0.0)
    assert south["share"] == pytest.approx(0.25)  # X1 (no district) counts in the total only


def test_a_proposal_that_moves_nothing_is_summed_before_and_without_districts_there_is_no_table():
    unsolved = {**proposal(), "after": []}
    assert district_summary(records.proposal(unsolved))[0]["accounts"] == 5
    assert district_summary(records.proposal({**proposal(), "reps": [{"rep_id": "N1"}]})) == []


def test_the_review_shows_the_district_table_only_when_reps_have_districts():
    html = render_proposal_html(records.proposal(proposal()))
    assert "Districts" in html and "North" in html and "worst deviation" in html
    plain = render_proposal_html(records.proposal({**proposal(), "reps": []}))
    assert "worst deviation" not in plain
