"""The weekly review report, built from a real proposal: a simulated company judged by the
planner and solved by the real rebalancer (territory.sample_report.sample_proposal)."""

from __future__ import annotations

import copy
import re
from datetime import date, datetime, timezone

import pytest

from alerts.report import WeeklyReport, build_weekly_report, iso_week, render_proposal_html
from territory.sample_report import main, sample_proposal
from core.records import Proposal

GENERATED = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
WEEK = "2026-W48"
PNG_URI = "data:image/png;base64,"
# A small company that the planner finds out of balance (4 moves); about 2 s to build.
SMALL = dict(seed=3, n_reps=4, n_accounts=120)


@pytest.fixture(scope="module")
def proposal() -> dict:
    made = sample_proposal(**SMALL)
    assert made["status"] == "optimal" and made["moves"], "the sample company must need a rebalance"
    assert made["curve"] and made["accounts"] and made["reps"] and made["accounts_as_of"]
    return made


@pytest.fixture(scope="module")
def report(proposal) -> WeeklyReport:
    return build_weekly_report(
        [Proposal.from_json(proposal)],
        week=WEEK,
        generated_at=GENERATED,
        review_url="https://territory.example/review/{proposal_id}",
    )


def section_of(html: str, proposal_id: str) -> str:
    start = html.index(f'<section id="proposal-{proposal_id}"')
    return html[start : html.index("</section>", start)]


def test_report_shows_the_three_pictures_and_every_move(report, proposal):
    assert report.week == WEEK and report.proposal_ids == [proposal["proposal_id"]]
    assert report.html.count(PNG_URI) == 3  # map, shares, moves curve
    assert len(re.findall(rf'<img src="{PNG_URI}[A-Za-z0-9+/=]+" alt="[^"]+" width="\d+"', report.html)) == 3
    for move in proposal["moves"]:
        assert move["account_id"] in report.html
        assert move["reason"] in report.html
    section = section_of(report.html, proposal["proposal_id"])
    assert "Territories before and after" in section and "What each move buys" in section
    # The headline: moves and imbalance before -> after, as percentages.
    n = len(proposal["moves"])
    assert (
        f"Move {n} accounts: imbalance {proposal['imbalance_before'] * 100:.1f}% → "
        f"{proposal['imbalance_after'] * 100:.1f}%" in section
    )
    assert all(signal in section for signal in proposal["trigger_signals"])
    assert 'href="https://territory.example/review/' + proposal["proposal_id"] + '"' in section


def test_report_has_the_sales_intelligence_of_every_touched_territory(report, proposal):
    section = section_of(report.html, proposal["proposal_id"])
    assert "Sales intelligence" in section
    touched = sorted({m[side] for m in proposal["moves"] for side in ("from_rep", "to_rep")} - {None})
    for rep_id in touched:
        assert re.search(rf"<h4[^>]*>{rep_id}: \d+ accounts, potential [\d,]+, sales [\d,]+", section), rep_id
    for heading in ("A accounts by potential", "Lapsed accounts (", "Sleeping giants ("):
        assert section.count(heading) == len(touched)
    # Accounts moving in are flagged in the lists the new rep gets.
    assert ">new</span>" in section


def test_overview_subject_and_text(report, proposal):
    n = len(proposal["moves"])
    assert report.subject == f"Territory review {WEEK}: 1 pending proposal, {n} moves"
    assert WEEK in report.text and "1 pending proposal" in report.text
    assert f"worst imbalance {proposal['imbalance_before'] * 100:.1f}%" in report.text
    assert all(move["account_id"] in report.text for move in proposal["moves"])
    assert f"https://territory.example/review/{proposal['proposal_id']}" in report.text
    head = report.html[: report.html.index('<section id="proposal-')]
    assert "pending proposals" in head and "worst imbalance" in head and f"Territory review {WEEK}" in head


def test_two_proposals_are_counted(proposal):
    second = copy.deepcopy(proposal)
    second["proposal_id"] = "prop-second"
    second.pop("curve")
    second.pop("accounts")  # a proposal made before the review context existed
    built = build_weekly_report(
        [Proposal.from_json(proposal), Proposal.from_json(second)], week=WEEK, generated_at=GENERATED
    )
    n = 2 * len(proposal["moves"])
    assert built.subject == f"Territory review {WEEK}: 2 pending proposals, {n} moves"
    assert "2 pending proposals" in built.text and WEEK in built.text
    assert built.proposal_ids == [proposal["proposal_id"], "prop-second"]
    old = section_of(built.html, "prop-second")
    assert old.count(PNG_URI) == 1  # shares only: no coordinates for a map, no curve
    assert "no account figures" in old
    assert built.html.count("<section") == built.html.count("</section>") == 3


def test_account_ids_and_reasons_are_escaped(proposal):
    hostile = copy.deepcopy(proposal)
    evil = "<script>alert(1)</script>"
    moved = hostile["moves"][0]
    for row in hostile["accounts"]:
        if row["account_id"] == moved["account_id"]:
            row["account_id"] = evil
    moved["account_id"] = evil
    moved["reason"] = 'over "band" & <b>bold</b>'
    html = render_proposal_html(Proposal.from_json(hostile))
    assert evil not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "over &#34;band&#34; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_fragment_takes_the_review_pages_actions(proposal):
    buttons = '<form method="post"><button name="decision" value="approve">Approve</button></form>'
    html = render_proposal_html(Proposal.from_json(proposal), actions_html=buttons)
    assert html.lstrip().startswith("<section") and "<html" not in html
    assert buttons in html
    assert html.index(buttons) < html.index("Territories before and after")
    assert html.count(PNG_URI) == 3 and "Sales intelligence" in html
    linked = render_proposal_html(Proposal.from_json(proposal), review_url="https://x.example/r/{proposal_id}")
    assert f'href="https://x.example/r/{proposal["proposal_id"]}"' in linked


def test_unsolved_proposal_says_why(proposal):
    stuck = copy.deepcopy(proposal)
    stuck.update(
        status="infeasible",
        moves=[],
        after=stuck["before"],
        imbalance_after=stuck["imbalance_before"],
        explanation="R04 cannot reach its band: its candidates hold too little potential",
    )
    stuck.pop("curve")
    html = render_proposal_html(Proposal.from_json(stuck))
    assert "No balanced assignment found" in html and "R04 cannot reach its band" in html
    assert "No account moves." in html
    # Without moves, the intelligence covers the reps out of their band.
    out_of_band = [b["rep_id"] for b in stuck["before"] if abs(b["deviation"]) > stuck["tolerance"]]
    assert out_of_band and all(re.search(rf"<h4[^>]*>{rep}: ", html) for rep in out_of_band)


def test_empty_week():
    empty = build_weekly_report([], week=WEEK, generated_at=GENERATED, review_url="https://territory.example/review")
    assert empty.proposal_ids == [] and empty.images == ()
    assert "Nothing pending" in empty.html and PNG_URI not in empty.html
    assert empty.subject == f"Territory review {WEEK}: nothing pending"
    assert WEEK in empty.text and "Nothing pending" in empty.text
    assert "https://territory.example/review" in empty.text and 'href="https://territory.example/review"' in empty.html


def test_email_html_references_the_pictures_by_content_id(report):
    assert len(report.images) == 3 and len({image.cid for image in report.images}) == 3
    mail = report.email_html()
    assert PNG_URI not in mail
    assert all(f'src="cid:{image.cid}"' in mail for image in report.images)
    assert all(image.png.startswith(b"\x89PNG") and 0 < image.width <= 920 for image in report.images)


def test_iso_week():
    assert iso_week(GENERATED) == WEEK
    assert iso_week(date(2021, 1, 3)) == "2020-W53"  # a Sunday still in the last ISO week of 2020


def test_sample_command_writes_a_report(tmp_path, capsys):
    out = tmp_path / "sample" / "weekly.html"
    assert main(["--sample", str(out), "--seed", "3", "--reps", "4", "--accounts", "120"]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count(PNG_URI) == 3
    assert "1 pending proposal" in capsys.readouterr().out


def test_placement_after_a_rep_left(proposal):
    placed = copy.deepcopy(proposal)
    placed["mode"] = "place"
    move = placed["moves"][0]
    move.update(from_rep="R99", reason="owner R99 inactive")
    placed["moves"] = [move]
    for row in placed["accounts"]:
        if row["account_id"] == move["account_id"]:
            row["rep_id"] = "R99"
    html = render_proposal_html(Proposal.from_json(placed))
    assert "Place 1 account:" in html
    assert "1 account without an active rep (of R99, no longer active) must be placed" in html
    # The receiving rep gets the intelligence, with the placed account flagged; the rep who left none.
    assert re.search(rf"<h4[^>]*>{move['to_rep']}: ", html) and not re.search(r"<h4[^>]*>R99: ", html)
