"""One self-contained HTML page with the base case and every what-if scenario side by side,
each on the same interactive map (`territory rebalance ... --html FILE`).

Self-contained: Leaflet (from the XStatic-Leaflet package), the map script and every map's
data are inside the file, so it opens from a disk or a mail attachment with no server and
no internet access.

>>> from core.records import Proposal
>>> def scenario(name, status):
...     return Proposal.from_json({
...         "proposal_id": name, "status": status, "created_at": "2026-01-05T09:00:00+00:00",
...         "event_time": "2026-01-05T09:00:00+00:00", "trigger_signals": [], "mode": "minimal_moves",
...         "moves": [], "before": [], "after": [], "imbalance_before": 0.2, "imbalance_after": 0.05,
...         "seconds": 0.1, "tolerance": 0.1, "accounts": []})
>>> page = scenario_page_html([scenario("base", "balanced"), scenario("drop R7", "optimal")])
>>> page.count('<section class="territory-map"'), 'src="http' in page, "L.map(" in page
(2, False, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import xstatic.pkg.leaflet as leaflet
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from alerts.map_view import map_view
from core.formatting import percent
from core.records import Proposal

#: The review page's templates (the map's parts are shared), without the web server.
_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _asset(path: Path) -> Markup:
    """A file's text for inlining in a <script> or <style> element (its own "</" escaped)."""
    return Markup(path.read_text(encoding="utf-8").replace("</", "<\\/"))


def _summary(proposal: Proposal) -> str:
    moves = len(proposal.moves)
    status = proposal.status
    if status in ("infeasible", "unknown"):
        return f"no balanced assignment ({status}): {proposal.explanation or 'no explanation'}"
    return (
        f"{moves} move{'s' if moves != 1 else ''}, imbalance {percent(proposal.imbalance_before, 1)} → "
        f"{percent(proposal.imbalance_after, 1)} ({status})"
    )


def scenario_page_html(proposals: Sequence[Proposal], *, title: str = "Rebalancing scenarios") -> str:
    """The page: per proposal (its `proposal_id` names the scenario) a heading, its summary
    and its map."""
    scenarios = [
        {"name": p.proposal_id or f"scenario {n}", "summary": _summary(p), "map": map_view(p)}
        for n, p in enumerate(proposals, start=1)
    ]
    leaflet_dir = Path(leaflet.BASE_DIR)
    with resources.as_file(resources.files("alerts").joinpath("static", "review-map.js")) as script:
        map_script = _asset(script)
    return _ENV.get_template("scenarios.html.j2").render(
        title=title,
        scenarios=scenarios,
        leaflet_css=_asset(leaflet_dir / "leaflet.css"),
        leaflet_js=_asset(leaflet_dir / "leaflet.js"),
        map_script=map_script,
    )
