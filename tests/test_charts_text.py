"""Text from the data (rep ids, proposal ids) is drawn literally.

Matplotlib reads text between two ``$`` as mathtext; a rep id like ``$x^$`` then raised
while drawing and took the review page and the weekly review down with it. And should a
picture fail for another reason, the page and the digest still render, with a visible
note in its place.
"""

from __future__ import annotations

import copy
import io
import json
import logging
from typing import Any

import pytest
from matplotlib import image as mpimg

from alerts.charts import MapAccount, MapRep, moves_curve_png, share_chart_png, territory_map_png
from alerts.report import build_weekly_report, render_proposal_html
from territory.sample_report import sample_proposal
from core.records import Proposal

# Ids that mathtext cannot parse, HTML, right-to-left text and a very long id.
HOSTILE_IDS = [
    r"$\frac{1}{0}$",
    "$x^$",
    r"$\undefinedmacro$",
    "a$b$c$d",
    "<script>alert(1)</script>",
    "مندوب-المبيعات",
    "R" * 2000,
]


def decoded(png: bytes) -> Any:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return mpimg.imread(io.BytesIO(png), format="png")


def _rows(rep_ids: list[str]) -> list[dict[str, Any]]:
    fair = 1 / len(rep_ids)
    shares = [fair * (1.3 if i == 0 else 0.7 if i == 1 else 1.0) for i in range(len(rep_ids))]
    return [
        {"rep_id": r, "accounts": 3, "potential": 10.0, "share": s, "fair_share": fair, "deviation": s / fair - 1}
        for r, s in zip(rep_ids, shares)
    ]


@pytest.mark.parametrize("rep_id", HOSTILE_IDS)
def test_charts_draw_hostile_rep_and_proposal_ids_literally(rep_id: str):
    reps = [MapRep(rep_id, 52.5, 13.4), MapRep("R2", 48.1, 11.6), MapRep("R3", 53.5, 10.0)]
    accounts = [
        MapAccount(f"A{i}", 48.0 + i * 0.5, 9.0 + i * 0.4, [rep_id, "R2", "R3"][i % 3], 100.0 + i) for i in range(12)
    ]
    proposal = {
        "proposal_id": rep_id,
        "status": "optimal",
        "moves": [{"account_id": "A0", "from_rep": rep_id, "to_rep": "R2", "potential": 100.0}],
        "before": _rows([rep_id, "R2", "R3"]),
        "after": _rows([rep_id, "R2", "R3"]),
        "imbalance_before": 0.3,
        "imbalance_after": 0.0,
        "tolerance": 0.1,
    }
    decoded(territory_map_png(accounts, reps, proposal))
    decoded(territory_map_png(accounts, reps, title=rep_id))
    decoded(share_chart_png(proposal))
    decoded(moves_curve_png([{"moves": 0, "imbalance": 0.3}, {"moves": 2, "imbalance": 0.05}], title=rep_id))


@pytest.fixture(scope="module")
def proposal() -> dict:
    return sample_proposal(seed=3, n_reps=4, n_accounts=120)


def renamed(proposal: dict, old: str, new: str) -> dict:
    """The proposal with rep `old` called `new` everywhere (a JSON round trip so no field is missed)."""
    text = json.dumps(proposal)
    return json.loads(text.replace(json.dumps(old), json.dumps(new)))


@pytest.mark.parametrize("rep_id", [r"$\frac{1}{0}$", "$x^$"])
def test_review_page_and_weekly_review_of_a_mathtext_rep_id_render(proposal, rep_id: str):
    victim = proposal["moves"][0]["to_rep"]
    hostile = renamed(proposal, victim, rep_id)
    html = render_proposal_html(Proposal.from_json(hostile))
    assert html.count("data:image/png;base64,") == 3 and "picture unavailable" not in html
    report = build_weekly_report(
        [Proposal.from_json(proposal), Proposal.from_json(hostile)], week="2026-W48", generated_at=proposal_time()
    )
    assert report.html.count("data:image/png;base64,") == 6 and len(report.images) == 6


def proposal_time():
    from datetime import datetime, timezone

    return datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


def test_a_failed_picture_is_a_visible_note_and_the_rest_renders(proposal, caplog):
    broken = copy.deepcopy(proposal)
    broken["proposal_id"] = "prop-broken-curve"
    broken["curve"] = [{"moves": "many", "imbalance": "a lot"}]  # e.g. a payload from an older version
    with caplog.at_level(logging.WARNING, logger="territory.report"):
        html = render_proposal_html(Proposal.from_json(broken))
    assert "picture unavailable" in html.lower()
    assert html.count("data:image/png;base64,") == 2  # the map and the shares still there
    assert "Sales intelligence" in html and broken["moves"][0]["account_id"] in html
    assert any("prop-broken-curve" in r.getMessage() and "curve" in r.getMessage() for r in caplog.records)

    report = build_weekly_report(
        [Proposal.from_json(proposal), Proposal.from_json(broken)], week="2026-W48", generated_at=proposal_time()
    )
    assert report.proposal_ids == [proposal["proposal_id"], "prop-broken-curve"]
    assert len(report.images) == 5 and "picture unavailable" in report.html.lower()


def test_every_text_of_every_chart_is_literal(monkeypatch):
    """Valid mathtext ("$\\frac{1}{0}$" parses) would be drawn as a formula, not as the id."""
    import alerts.charts as charts
    from matplotlib.text import Text

    drawn: list[Any] = []
    real_png = charts._png

    def keep(fig):
        png = real_png(fig)
        drawn.append(fig)
        return png

    monkeypatch.setattr(charts, "_png", keep)
    rep_id = r"$\frac{1}{0}$"
    test_charts_draw_hostile_rep_and_proposal_ids_literally(rep_id)
    assert len(drawn) == 4
    for fig in drawn:
        texts = [t for t in fig.findobj(Text) if "$" in t.get_text()]
        assert texts, "the id is drawn somewhere on every chart"
        assert all(not t.get_parse_math() and not t.get_usetex() for t in texts)
        assert any(t.get_text() == rep_id or t.get_text().startswith(rep_id) for t in texts)
