"""The review page's interactive map in Debian's Chromium (Playwright): boundaries and
territories drawn, a click on a moved account opens its figures, the before / after toggle
recolours it, and the page asks nothing of any server but the worker's review server.

The proposal is a real one: the rebalancer's answer on real places (North Carolina's
counties with their births, libpysal's sids2 extract in tests/data) stored as the worker
stores it. `TERRITORY_SCREENSHOTS=1` also saves docs/images/review-map.png.
"""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiohttp import web

from alerts.store import Store
from alerts.web.app import review_app
from core.records import Proposal, ProposedMove, RepLoad
from core.settings import Settings
from rebalancer import minimal_moves
from territory.broker import free_port
from tests.real_geography import nc_instance
from tests import records

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "review-map.png"


def sales_12m(potential: float) -> float:
    """Sales a little under potential, in whole units (the popup rounds them)."""
    return float(round(0.6 * potential))


def segment(potential: float) -> str:
    return "key account" if potential >= 2000 else "regional"


def popup_rows(text: str) -> dict[str, str]:
    """The popup's table as {label: value} (its inner text: one row a line, label TAB value)."""
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def nc_proposal() -> dict:
    """The fewest moves that bring North Carolina's 6 reps within ±5%, as a stored proposal."""
    instance = nc_instance()
    result = minimal_moves(instance.accounts, instance.reps, tolerance=0.05, time_limit_s=20, num_workers=1)
    assert result.moves, "the case must move something"
    moment = datetime(2025, 4, 1, tzinfo=timezone.utc)
    return Proposal(
        proposal_id="prop-nc-map",
        created_at=moment,
        event_time=moment,
        trigger_signals=("sig-1",),
        mode="minimal_moves",
        status=result.status,
        moves=tuple(ProposedMove(**vars(m)) for m in result.moves),
        before=tuple(RepLoad(**vars(b)) for b in result.before),
        after=tuple(RepLoad(**vars(b)) for b in result.after),
        imbalance_before=result.imbalance_before,
        imbalance_after=result.imbalance_after,
        seconds=result.seconds,
        tolerance=result.tolerance,
        accounts=tuple(
            {"account_id": a.account_id, "lat": a.lat, "lon": a.lon, "rep_id": a.rep_id, "potential": a.potential,
             "sales_12m": sales_12m(a.potential), "segment": segment(a.potential)}
            for a in instance.accounts
        ),
        accounts_scope="all",
        accounts_as_of="2025-03",
        reps=tuple({"rep_id": r.rep_id, "home_lat": r.home_lat, "home_lon": r.home_lon} for r in instance.reps),
        shocks=({"signal_id": "sig-1", "kind": "local_shock", "direction": "drop", "size": -0.3,
                 "name": "Wake and its neighbours", "centre": [35.8, -78.6], "radius_km": 40.0, "accounts": 5},),
    ).to_json()  # fmt: skip


class ReviewServer:
    """The review app on a free loopback port, in a thread with its own event loop."""

    def __init__(self, store: Store, settings: Settings):
        self.port = free_port()
        self._app = review_app(store, publisher=None, settings=settings)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> "ReviewServer":
        self._thread.start()
        assert self._ready.wait(30), "the review server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium: run deploy/services/install.sh (as root)",
)
def test_the_review_map_draws_boundaries_territories_popups_and_toggles_without_leaving_the_worker(tmp_path):
    from playwright.sync_api import sync_playwright

    store = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    store.migrate()
    proposal = nc_proposal()
    assert store.save_proposal(records.proposal(proposal))
    moved = proposal["moves"][0]
    settings = Settings.from_env({}, web_port=0, api_read_token="")

    with ReviewServer(store, settings) as server, sync_playwright() as playwright:
        base = f"http://127.0.0.1:{server.port}"
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})  # a laptop screen
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base}/proposals/{proposal['proposal_id']}")
            page.wait_for_selector("#review-map[data-ready='true']", timeout=30_000)

            assert page.locator("path.boundary.country").count() >= 1
            assert page.locator("path.boundary.admin1").count() >= 1  # North Carolina and its neighbours
            assert page.locator("path.boundary.admin2").count() >= 100  # its 100 counties
            assert page.locator("path.territory-before").count() == 6  # one area per rep
            assert page.locator("path.shock-area").count() == 1
            legend = page.locator(".map-legend").inner_text()
            assert all(rep["rep_id"] in legend for rep in proposal["reps"]) and "fair" in legend

            # A click on a moved account: its figures and why it moves.
            marker = page.locator(f".moved-icon[title^='{moved['account_id']}:']")
            assert page.locator(".moved-icon").count() == len(proposal["moves"])
            marker.click()
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for(timeout=10_000)
            text = popup.inner_text()
            assert moved["account_id"] in text and f"{moved['from_rep']} → {moved['to_rep']}" in text
            assert "Why it moves" in text and "Potential" in text
            moved_row = next(a for a in proposal["accounts"] if a["account_id"] == moved["account_id"])
            rows = popup_rows(text)
            assert rows["Sales, 12 months"] == f"{int(moved_row['sales_12m']):,}"
            assert rows["Segment"] == moved_row["segment"]
            page.keyboard.press("Escape")

            # Before / after: the moved account's dot takes its new rep's colour.
            def fill_of_moved() -> str:
                return page.evaluate(
                    "(id) => [...document.querySelectorAll('path.account.moved')].map(p => p.getAttribute('fill'))",
                    moved["account_id"],
                )

            before_fills = fill_of_moved()
            page.click("#map-toggle button[data-side='after']")
            page.wait_for_selector("#review-map[data-side='after']")
            assert page.get_attribute("#map-toggle button[data-side='after']", "aria-pressed") == "true"
            assert page.locator("path.territory-after").count() >= 1 and page.locator("path.move-line").count() == len(
                proposal["moves"]
            )
            assert fill_of_moved() != before_fills

            # Keyboard: the map takes focus and the moved accounts are Tab stops with a label.
            assert page.locator(".moved-icon[tabindex='0']").count() == len(proposal["moves"])
            assert page.get_attribute("#review-map", "aria-label")

            if os.environ.get("TERRITORY_SCREENSHOTS") == "1":
                page.click("#map-toggle button[data-side='before']")
                page.locator("section[aria-labelledby='map-title']").screenshot(path=str(SCREENSHOT))
            assert errors == [], errors
            outside = [url for url in requested if not url.startswith(base) and not url.startswith("data:")]
            assert outside == [], outside
            assert any(url.endswith("/static/leaflet/leaflet.js") for url in requested)
        finally:
            browser.close()


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium: run deploy/services/install.sh (as root)",
)
def test_a_scenario_page_shows_every_scenario_on_its_own_map_offline_from_disk(tmp_path):
    from playwright.sync_api import sync_playwright
    from typer.testing import CliRunner

    from territory.cli import app
    from tests.test_rebalance_command import REPS, UNITS

    page_file = tmp_path / "scenarios.html"
    args = ["rebalance", "--units", str(UNITS), "--reps", str(REPS), "--time-limit", "3", "--html", str(page_file)]
    result = CliRunner().invoke(app, [*args, "--drop-rep", "R2", "--compare-tolerance", "0.2"])
    assert result.exit_code == 0, result.output
    html = page_file.read_text(encoding="utf-8")
    assert html.count('<section class="territory-map"') == 3  # base, drop R2, tolerance 20%

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_file.as_uri())
            page.wait_for_function("document.querySelectorAll('.map-canvas[data-ready=\"true\"]').length === 3")
            headings = page.locator(".territory-map h2").all_inner_texts()
            assert headings[0] == "base" and "drop R2" in headings
            # Each map has its own toggle: switching one leaves the others as they were.
            page.locator(".territory-map").nth(1).locator("button[data-side='after']").click()
            sides = page.eval_on_selector_all(".map-canvas", "els => els.map(e => e.dataset.side)")
            assert sides == ["before", "after", "before"]
            assert page.locator(".territory-map").nth(1).locator("path.territory-after").count() >= 1
            assert errors == [], errors
            assert all(url.startswith("file://") or url.startswith("data:") for url in requested), requested
        finally:
            browser.close()
