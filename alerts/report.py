"""The manager's weekly review: one self-contained HTML report of the pending proposals.

A manager approves territory changes once a week, in a mail client or a browser, so the
report is one HTML file with every picture embedded as a base64 ``data:`` URI and every
style inline (mail clients drop ``<style>`` blocks and linked files). Per pending
proposal: a headline (moves, imbalance before -> after, status, why), the map before and
after, the reps' shares, the moves-vs-imbalance curve when the proposal carries one, the
moves table, and the sales intelligence of every territory the moves touch
(:mod:`alerts.intelligence`): what the manager hands a rep with a new territory. Then, pending
proposals or not, each rep's quota pace from its latest quota_pace signal (:mod:`alerts.quota_pace`).

- :func:`build_weekly_report` -- the whole report (:class:`WeeklyReport`: HTML, subject,
  plain-text body, proposal ids).
- :func:`render_proposal_html` -- one proposal's section as an HTML fragment, the same
  content, for the review web page; ``actions_html`` is where its approve/reject buttons go.
- :func:`iso_week` -- "2026-W48", the week a report is named by.

``python -m territory.sample_report --sample OUT.html`` writes a sample report built from
a simulated company by the real planner and rebalancer.

Templates live in ``alerts/templates`` (Jinja2, autoescaped: account ids and reasons
come from the CRM and are never trusted as HTML).
"""

from __future__ import annotations

import base64
from calendar import month_name
import logging
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from alerts.districts import district_summary
from alerts.charts import MapAccount, MapRep, moves_curve_png, share_chart_png, territory_map_png
from alerts.intelligence import TerritoryIntelligence, territory_intelligence
from alerts.quota_pace import QuotaPaceRow, quota_pace_rows
from core.formatting import number, percent, signed_number, signed_percent
from core.records import Proposal, ProposedMove, RepLoad, Signal, proposal_kind

__all__ = [
    "ReportImage",
    "WeeklyReport",
    "build_weekly_report",
    "iso_week",
    "render_proposal_html",
]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
# Rows per intelligence list: enough to start a territory with, short enough for a mail.
LIST_ROWS = 15
# Widest picture in the page (px): the width attribute mail clients without CSS obey.
MAX_IMAGE_WIDTH = 920
_UNSOLVED = ("infeasible", "unknown")
log = logging.getLogger("territory.report")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ReportImage:
    """A picture of the report: its PNG, alt text and the Content-ID it takes in a
    multipart/related e-mail (see :meth:`WeeklyReport.email_html`)."""

    cid: str
    png: bytes
    alt: str

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    @property
    def width(self) -> int:
        """Display width: the PNG's own width, at most MAX_IMAGE_WIDTH."""
        pixels = struct.unpack(">I", self.png[16:20])[0] if self.png[12:16] == b"IHDR" else MAX_IMAGE_WIDTH
        return min(pixels, MAX_IMAGE_WIDTH)


@dataclass(frozen=True)
class WeeklyReport:
    """The weekly review as sent and stored.

    ``html`` is self-contained (pictures as data URIs): right for the store, a browser and
    most mail clients. Gmail and Outlook show no data-URI pictures; for them send
    :meth:`email_html` with ``images`` attached as inline parts (Content-ID ``cid``).
    """

    week: str
    html: str
    subject: str
    text: str
    proposal_ids: list[str]
    images: tuple[ReportImage, ...] = field(default=(), repr=False)

    def email_html(self) -> str:
        """The HTML with every picture referenced as ``cid:<cid>`` instead of inline data."""
        html = self.html
        for image in self.images:
            html = html.replace(image.data_uri, f"cid:{image.cid}")
        return html


def iso_week(moment: datetime | date) -> str:
    """The ISO 8601 week of a moment, e.g. "2026-W48" (the ISO year: 2027-01-01 is in 2026-W53).

    >>> iso_week(date(2026, 11, 23)), iso_week(date(2027, 1, 1))
    ('2026-W48', '2026-W53')
    """
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


# --------------------------------------------------------------------------- formatting


def _signed_pct(value: Any, digits: int = 1) -> str:
    return signed_percent(value, digits, typographic=True)


def _km(value: Any) -> str:
    return f"{float(value):,.0f} km" if _finite(value) else "–"


def _hours(minutes: Any) -> str:
    return f"{float(minutes) / 60:,.1f} h" if _finite(minutes) else "–"


def _months(value: Any) -> str:
    if not _finite(value):
        return "–"
    number = float(value)
    text = f"{number:.0f}" if number == int(number) else f"{number:.1f}"
    return f"{text} month" + ("" if number == 1 else "s")


def _gap(value: Any) -> str:
    """An account's usual gap between ordering months; unknown after a single one."""
    return _months(value) if _finite(value) else "single order"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        number=number,
        pct=partial(percent, digits=1),
        signed_pct=_signed_pct,
        km=_km,
        hours=_hours,
        months=_months,
        gap=_gap,
        signed_number=signed_number,
    )
    return env


_ENV = _environment()


# --------------------------------------------------------------------------- proposal view


def _headline(proposal: Proposal) -> str:
    moves = len(proposal.moves)
    before, after = percent(proposal.imbalance_before, 1), percent(proposal.imbalance_after, 1)
    if proposal.status in _UNSOLVED:
        return f"No balanced assignment found: imbalance stays at {before}"
    if proposal.status == "balanced" or moves == 0:
        return f"Nothing to move: imbalance {before}"
    verb = "Place" if proposal.mode == "place" else "Move"
    if proposal.mode == "travel":
        return f"{verb} {_plural(moves, 'account')}: travel {_travel_change(proposal)}"
    return f"{verb} {_plural(moves, 'account')}: imbalance {before} → {after}"


def _travel_change(proposal: Proposal) -> str:
    """ "12,400 km → 11,100 km (-10.5%)" of a travel proposal (km x each rep's travel factor)."""
    before, after = proposal.travel_km_before or 0.0, proposal.travel_km_after or 0.0
    saved = (after - before) / before if before > 0 else 0.0
    return f"{before:,.0f} km → {after:,.0f} km ({_signed_pct(saved)})"


def _outside(load: RepLoad | None, tolerance: float) -> bool:
    return load is not None and _finite(load.deviation) and abs(load.deviation) > tolerance + 1e-9


def _reasons(proposal: Proposal) -> list[str]:
    """Why the proposal exists, in words: the reps outside their band before, worst first."""
    tolerance = proposal.tolerance
    if proposal.mode == "travel":
        return [
            f"every rep stays within ±{percent(tolerance)} of their fair share; the moves cut the total "
            f"travel from the reps' homes {_travel_change(proposal)}"
        ]
    outside = [load for load in proposal.before if abs(load.deviation) > tolerance + 1e-9]
    reasons = [
        f"{load.rep_id} holds {percent(load.share, 1)} of the potential against a fair share of "
        f"{percent(load.fair_share, 1)} ({_signed_pct(load.deviation)}, band ±{percent(tolerance)})"
        for load in sorted(outside, key=lambda load: -abs(load.deviation))
    ]
    active = _active_reps(proposal)
    orphans = [move for move in proposal.moves if move.from_rep not in active]
    if orphans:
        gone = sorted({move.from_rep for move in orphans if move.from_rep is not None})
        whose = f" (of {', '.join(gone)}, no longer active)" if gone else ""
        reasons.insert(0, f"{_plural(len(orphans), 'account')} without an active rep{whose} must be placed")
    return reasons


def _question(proposal: Proposal) -> str:
    """Which question the proposal answers, and that quota pace is not it."""
    shared = " and ".join(proposal.metrics or ("potential",))
    if proposal.mode == "travel":
        asked = (
            "can the same reps cover their accounts with less travel, a few moves at most and every rep "
            f"kept within their band of {shared}? (The weekly travel proposal; nothing is out of balance.)"
        )
    elif proposal.mode == "place":
        asked = f"who takes the accounts without an active rep, keeping the {shared} shared fairly"
    elif proposal.mode == "restore":
        asked = (
            "should the accounts go back to their reps of an earlier approved alignment? (Asked for by a person "
            "with `territory alignment restore`; the notes name the snapshot.)"
        )
    else:
        asked = f"is the {shared} shared fairly between the territories (each rep against their capacity-weighted fair share)?"
    return (
        f"{asked[0].upper()}{asked[1:]} Not quota pace: how reps sell against their quota is judged apart "
        "(quota pace alerts), and no account is moved for it."
    )


def _quota_of(proposal: Proposal) -> dict[str, Mapping[str, Any]]:
    """The quota figures of the reps that have a quota (the proposal's `reps` rows)."""
    return {str(row["rep_id"]): row for row in proposal.reps or () if row.get("quota_pace") is not None}


def _rep_rows(proposal: Proposal) -> list[dict[str, Any]]:
    before = {load.rep_id: load for load in proposal.before}
    after = {load.rep_id: load for load in proposal.after}
    tolerance = proposal.tolerance
    quota = _quota_of(proposal)
    districts = {str(row["rep_id"]): row.get("district") for row in proposal.reps or ()}
    rows = []
    for rep_id in list(before) + [r for r in after if r not in before]:
        was, now = before.get(rep_id), after.get(rep_id)
        either = was or now
        target = quota.get(rep_id, {})
        rows.append(
            {
                "rep_id": rep_id,
                "district": districts.get(rep_id),
                "accounts_before": was.accounts if was else None,
                "accounts_after": now.accounts if now else None,
                "share_before": was.share if was else None,
                "share_after": now.share if now else None,
                "fair_share": either.fair_share if either else None,
                "deviation_before": was.deviation if was else None,
                "deviation_after": now.deviation if now else None,
                "outside_before": _outside(was, tolerance),
                "outside_after": _outside(now, tolerance),
                "quota_attainment": target.get("quota_attainment"),
                "quota_pace": target.get("quota_pace"),
            }
        )
    return rows


def _active_reps(proposal: Proposal) -> set[str]:
    """The reps the rebalancer balanced: the only ones with a territory after the moves."""
    return {load.rep_id for load in (*proposal.before, *proposal.after)}


def _touched_reps(proposal: Proposal) -> list[str]:
    """The territories the moves change (a rep who left has none to show); without moves,
    the reps out of their band."""
    moved = proposal.touched_reps
    active = _active_reps(proposal)
    if moved:
        return sorted(moved & active if active else moved)
    return sorted(load.rep_id for load in proposal.before if abs(load.deviation) > proposal.tolerance + 1e-9)


def _images(
    proposal: Proposal, accounts: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, ReportImage | None], list[str]]:
    """The "map", "shares" and "curve" pictures (None for one the proposal has no data for)
    and the names of those that failed to draw.

    One picture that cannot be drawn must not take the review page or the weekly review of
    every proposal with it: it is logged and the page says the picture is unavailable.
    """
    pid = proposal.proposal_id or "proposal"
    images: dict[str, ReportImage | None] = {"map": None, "shares": None, "curve": None}
    failed: list[str] = []
    # The charts draw offline results too (plain JSON without a record): they take the JSON.
    published = proposal.to_json()

    def draw(name: str, alt: str, make) -> None:
        try:
            images[name] = ReportImage(f"{pid}-{name}", make(), alt)
        except Exception:  # noqa: BLE001 - any drawing error; the rest of the page still renders
            log.warning(
                "proposal %s: the %s picture could not be drawn; the page shows it as unavailable",
                pid,
                name,
                exc_info=True,
            )
            failed.append(name)

    def map_png() -> bytes:
        located = [
            MapAccount(
                str(row["account_id"]),
                float(row["lat"]),
                float(row["lon"]),
                row.get("rep_id"),
                float(row.get("potential") or 0.0),
            )
            for row in accounts
            if _finite(row.get("lat")) and _finite(row.get("lon"))
        ]
        reps = [
            MapRep(str(rep["rep_id"]), float(rep["home_lat"]), float(rep["home_lon"])) for rep in proposal.reps or ()
        ]
        return territory_map_png(located, reps, published)

    def curve_png() -> bytes:
        return moves_curve_png(published["curve"], tolerance=proposal.tolerance or None)

    if any(_finite(row.get("lat")) and _finite(row.get("lon")) for row in accounts):
        draw("map", "Map of the territories before and after the proposed moves", map_png)
    draw(
        "shares",
        "Each rep's share of potential before and after, against the fair share",
        lambda: share_chart_png(published),
    )
    if proposal.curve:
        draw("curve", "Best imbalance reachable with at most M moves", curve_png)
    return images, failed


def _after_rows(accounts: Sequence[Mapping[str, Any]], moves: Sequence[ProposedMove]) -> list[dict[str, Any]]:
    new_rep = {move.account_id: move.to_rep for move in moves}
    return [{**row, "rep_id": new_rep.get(str(row["account_id"]), row.get("rep_id"))} for row in accounts]


def _records(frame, limit: int) -> list[dict[str, Any]]:
    return frame.head(limit).to_dict("records")


def _territory_view(intel: TerritoryIntelligence, moved_in: set[str], moved_out: int) -> dict[str, Any]:
    accounts = intel.accounts
    a_accounts = accounts[accounts["abc_potential"] == "A"]
    return {
        "rep_id": intel.rep_id,
        "accounts": len(accounts),
        "potential": intel.potential,
        "sales_12m": intel.sales_12m,
        "moved_in": len(moved_in & set(accounts["account_id"])),
        "moved_out": moved_out,
        "abc": [{"grade": grade, **row} for grade, row in intel.abc.to_dict("index").items()],
        "a_accounts": _records(a_accounts, LIST_ROWS),
        "a_more": max(0, len(a_accounts) - LIST_ROWS),
        "lapsed": _records(intel.lapsed, LIST_ROWS),
        "lapsed_more": max(0, len(intel.lapsed) - LIST_ROWS),
        "giants": _records(intel.sleeping_giants, LIST_ROWS),
        "giants_more": max(0, len(intel.sleeping_giants) - LIST_ROWS),
        "new_ids": moved_in,
    }


def _proposal_view(proposal: Proposal) -> dict[str, Any]:
    """Everything the proposal template shows, computed once (pictures included)."""
    moves = list(proposal.moves)
    accounts = list(proposal.accounts or ())
    as_of = proposal.accounts_as_of
    territories: list[dict[str, Any]] = []
    images, unavailable = _images(proposal, accounts)
    if accounts and as_of:
        touched = _touched_reps(proposal)
        intel = territory_intelligence(_after_rows(accounts, moves), as_of=as_of, rep_ids=touched)
        for rep_id in touched:
            moved_in = {m.account_id for m in moves if m.to_rep == rep_id}
            moved_out = sum(1 for m in moves if m.from_rep == rep_id)
            territories.append(_territory_view(intel[rep_id], moved_in, moved_out))
    return {
        "proposal_id": proposal.proposal_id,
        "anchor": _anchor(proposal.proposal_id),
        "headline": _headline(proposal),
        "status": proposal.status,
        "solved": proposal.status not in _UNSOLVED,
        "mode": proposal_kind(proposal.mode),
        "event_time": proposal.event_time.isoformat()[:10],
        "tolerance": proposal.tolerance,
        "imbalance_before": proposal.imbalance_before,
        "imbalance_after": proposal.imbalance_after,
        "explanation": proposal.explanation,
        "notes": list(proposal.notes),
        "reasons": _reasons(proposal),
        "trigger_signals": list(proposal.trigger_signals),
        "reps": _rep_rows(proposal),
        # Shown only when some rep belongs to a district (TERRITORY_REBALANCE_SCOPE=district).
        "districts": any(row.get("district") for row in proposal.reps or ()),
        "district_summary": district_summary(proposal),  # alerts.districts: one row per district
        "question": _question(proposal),
        "quota": _quota_note(proposal),
        "moves": moves,
        "moved_potential": sum(m.potential for m in moves),
        "images": images,
        "unavailable": unavailable,
        "territories": territories,
        "has_context": bool(accounts and as_of),
        "as_of": as_of,
        "scope": proposal.accounts_scope or "all",
    }


def _quota_note(proposal: Proposal) -> str | None:
    """What the quota columns count, or None when no rep of the proposal has a quota."""
    quota = _quota_of(proposal)
    if not quota:
        return None
    first = next(iter(quota.values()))
    year, months = first.get("quota_year"), first.get("quota_months")
    if year and months:
        through = f"January {year}" if int(months) == 1 else f"January to {month_name[int(months)]} {year}"
    else:
        through = "this year"
    return (
        f"Quota attained: sales of {through} against the quota for the year. Quota pace: against what "
        "the quota expects by now, with the seasons (100% is on pace). Judged apart from balance: these moves "
        "do not answer it."
    )


def _anchor(proposal_id: str) -> str:
    """The proposal section's id: the overview links to it; any character an id or URL
    fragment could trip on becomes "-"."""
    return "proposal-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in proposal_id)


def _review_link(review_url: str | None, proposal_id: str) -> str | None:
    """The review page of a proposal: `review_url` with "{proposal_id}" filled in, or as is."""
    if not review_url:
        return None
    return review_url.replace("{proposal_id}", proposal_id)


def _render_fragment(view: Mapping[str, Any], actions_html: str | Markup | None, review_link: str | None) -> str:
    return _ENV.get_template("proposal.html.j2").render(
        p=view, actions_html=Markup(actions_html) if actions_html else None, review_link=review_link
    )


def render_proposal_html(
    proposal: Proposal, *, actions_html: str | Markup | None = None, review_url: str | None = None
) -> str:
    """One proposal's section of the weekly report, as an HTML fragment (a ``<section>``
    with inline styles), for the review web page.

    ``actions_html`` is trusted HTML (not escaped) placed under the headline, where the
    page puts its approve/reject form; without it and with ``review_url`` (which may hold
    "{proposal_id}") a "Review this proposal" link goes there instead.
    """
    view = _proposal_view(proposal)
    return _render_fragment(view, actions_html, _review_link(review_url, view["proposal_id"]))


# --------------------------------------------------------------------------- report


def build_weekly_report(
    proposals: Sequence[Proposal],
    *,
    week: str,
    generated_at: datetime,
    review_url: str | None = None,
    quota_pace: Iterable[Signal] = (),
) -> WeeklyReport:
    """The weekly review of the pending ``proposals`` (oldest first, as given): the HTML
    report, the mail subject and a plain-text body that stands on its own. ``quota_pace``:
    each rep's latest quota_pace signal (``Store.latest_signals``), shown in a section of its
    own whether or not anything is pending.

    ``review_url`` links the review page from the overview and from each proposal; it may
    contain "{proposal_id}" to link each proposal's own page.
    """
    views = [_proposal_view(proposal) for proposal in proposals]
    sections = [Markup(_render_fragment(view, None, _review_link(review_url, view["proposal_id"]))) for view in views]
    total_moves = sum(len(view["moves"]) for view in views)
    worst = max((float(view["imbalance_before"]) for view in views if _finite(view["imbalance_before"])), default=None)
    overview = {"count": len(views), "moves": total_moves, "worst_imbalance": worst}
    paces = quota_pace_rows(quota_pace)
    stamp = _stamp(generated_at)
    html = _ENV.get_template("weekly.html.j2").render(
        week=week,
        generated=stamp,
        overview=overview,
        proposals=views,
        sections=sections,
        quota_pace=paces,
        review_page=review_url if review_url and "{proposal_id}" not in review_url else None,
    )
    if views:
        subject = f"Territory review {week}: {_plural(len(views), 'pending proposal')}, {_plural(total_moves, 'move')}"
    else:
        subject = f"Territory review {week}: nothing pending"
    images = tuple(image for view in views for image in view["images"].values() if image is not None)
    return WeeklyReport(
        week=week,
        html=html,
        subject=subject,
        text=_text(week, stamp, views, overview, review_url, paces),
        proposal_ids=[view["proposal_id"] for view in views],
        images=images,
    )


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d %H:%M ") + (moment.tzname() or moment.strftime("%z"))


def _text(
    week: str,
    stamp: str,
    views: Sequence[Mapping[str, Any]],
    overview: Mapping[str, Any],
    review_url: str | None,
    paces: Sequence[QuotaPaceRow] = (),
) -> str:
    lines = [f"Territory review {week} (generated {stamp})", ""]
    if not views:
        lines.append("Nothing pending: no territory changes wait for a decision this week.")
    else:
        lines.append(
            f"{_plural(overview['count'], 'pending proposal')}, {_plural(overview['moves'], 'move')} in all, "
            f"worst imbalance {percent(overview['worst_imbalance'], 1)}."
        )
        for view in views:
            lines += ["", f"* {view['proposal_id']} ({view['mode']}, {view['status']}): {view['headline']}"]
            lines += [f"  why: {reason}" for reason in view["reasons"][:3]]
            lines.append(f"  answers: {view['question']}")
            paced = [rep for rep in view["reps"] if rep["quota_pace"] is not None]
            if paced:
                lines.append(
                    "  quota pace (judged apart): "
                    + ", ".join(
                        f"{rep['rep_id']} {percent(rep['quota_pace'])} (attained {percent(rep['quota_attainment'])})"
                        for rep in paced
                    )
                )
            if view["explanation"]:
                lines.append(f"  solver: {view['explanation']}")
            for move in view["moves"][:10]:
                lines.append(
                    f"  - {move.account_id}: {move.from_rep or 'nobody'} -> {move.to_rep} "
                    f"(potential {number(move.potential)}, {_km(move.distance_km)})"
                )
            if len(view["moves"]) > 10:
                lines.append(f"  ... and {len(view['moves']) - 10} more moves in the report")
            if view["territories"]:
                lines.append(
                    "  for the reps: "
                    + "; ".join(
                        f"{t['rep_id']} {_plural(len(t['lapsed']) + t['lapsed_more'], 'lapsed account')}, "
                        f"{_plural(len(t['giants']) + t['giants_more'], 'sleeping giant')}"
                        for t in view["territories"]
                    )
                )
            link = _review_link(review_url, view["proposal_id"])
            if link and "{proposal_id}" in (review_url or ""):
                lines.append(f"  review: {link}")
        lines += [
            "",
            "The HTML report shows the maps, the shares, the moves and the sales intelligence "
            "(ABC classes, lapsed accounts, sleeping giants) of every territory concerned.",
        ]
    if paces:
        lines += ["", "Quota pace (each rep's latest judgement; judged apart from balance, no account moves for it):"]
        lines += [
            f"* {row.rep_id} {row.state} (as of {row.as_of}): sales {number(row.sales_to_date)} against "
            f"{number(row.expected_to_date)} expected, gap {signed_number(row.gap)}, "
            f"pace {percent(row.pace)}, projected year end {number(row.projected_year_end)}"
            for row in paces
        ]
    if review_url and "{proposal_id}" not in review_url:
        lines += ["", f"Review and decide: {review_url}"]
    return "\n".join(lines) + "\n"
