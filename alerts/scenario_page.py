"""One self-contained HTML page with the base case and every what-if scenario side by side,
each on the same interactive map (`territory rebalance ... --html FILE`).

Self-contained: Leaflet (from the XStatic-Leaflet package), the map script and every map's
data are inside the file, so it opens from a disk or a mail attachment with no server and
no internet access.

>>> page = scenario_page_html([{"proposal_id": "base", "status": "balanced", "moves": [], "accounts": []},
...                            {"proposal_id": "drop R7", "status": "optimal", "moves": [], "accounts": []}])
>>> page.count('<section class="territory-map"'), 'src="http' in page, "L.map(" in page
(2, False, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import xstatic.pkg.leaflet as leaflet
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from alerts.map_view import map_view
from core.formatting import percent

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


def _summary(payload: Mapping[str, Any]) -> str:
    moves = len(payload.get("moves") or [])
    status = payload.get("status", "")
    if status in ("infeasible", "unknown"):
        return f"no balanced assignment ({status}): {payload.get('explanation') or 'no explanation'}"
    return (
        f"{moves} move{'s' if moves != 1 else ''}, imbalance {percent(payload.get('imbalance_before'), 1)} → "
        f"{percent(payload.get('imbalance_after'), 1)} ({status})"
    )


def scenario_page_html(payloads: Sequence[Mapping[str, Any]], *, title: str = "Rebalancing scenarios") -> str:
    """The page: per payload (a proposal as the worker stores it; `proposal_id` names the
    scenario) a heading, its summary and its map."""
    scenarios = [
        {"name": str(p.get("proposal_id") or f"scenario {n}"), "summary": _summary(p), "map": map_view(p)}
        for n, p in enumerate(payloads, start=1)
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
