"""The review page in a real browser: broker -> worker -> a real pending proposal -> headless
Chromium approves it on the worker's page -> store, territory.assignments and the worker's
own state follow. And a write without the token is refused.

`TERRITORY_SCREENSHOTS=1` also saves the page as docs/images/review-page.png (for the README).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from alerts.store import Store
from core import topics
from territory.broker import free_port
from tests.kafka_io import produce, read_topic, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "review-page.png"
TOKEN = "review-test-token-5b1e"

REPS = {"A": (52.52, 13.40), "B": (53.55, 9.99), "C": (48.14, 11.58)}  # Berlin, Hamburg, Munich
# account -> (owner, potential, locked, offset in degrees from the rep's home): A carries half the
# company, B and C too little. The accounts lie some 20-70 km from home, so that each territory
# is an area one can see on the page's map.
ACCOUNTS = {
    "a1": ("A", 600.0, True, (0.25, 0.25)),
    "a2": ("A", 500.0, False, (-0.4, 0.6)),
    "a3": ("A", 300.0, False, (0.55, -0.3)),
    "a4": ("A", 100.0, False, (-0.2, -0.5)),
    "b1": ("B", 700.0, False, (0.25, 0.25)),
    "b2": ("B", 60.0, False, (-0.35, 0.45)),
    "b3": ("B", 40.0, False, (-0.45, -0.2)),
    "c1": ("C", 500.0, False, (0.25, 0.25)),
    "c2": ("C", 300.0, False, (-0.3, -0.4)),
    "c3": ("C", 40.0, False, (0.35, -0.45)),
}


def envelope(event_id: str, event_type: str, occurred_at: str, **data: object) -> dict:
    return {"event_id": event_id, "type": event_type, "occurred_at": occurred_at, "source": "test", "data": data}


def company_out_of_balance() -> list[tuple[str, str, dict]]:
    """Reps, accounts and two months of orders: A carries half the company."""
    messages = [
        (
            topics.REPS,
            rep_id,
            envelope(
                f"rep-{rep_id}", "rep.upserted", "2025-01-01T08:00:00+00:00", rep_id=rep_id, home_lat=lat, home_lon=lon
            ),
        )
        for rep_id, (lat, lon) in REPS.items()
    ]
    for account_id, (owner, potential, locked, (dlat, dlon)) in ACCOUNTS.items():
        lat, lon = REPS[owner]
        messages.append(
            (
                topics.ACCOUNTS,
                account_id,
                envelope(
                    f"acc-{account_id}",
                    "account.upserted",
                    "2025-01-02T08:00:00+00:00",
                    account_id=account_id,
                    lat=lat + dlat,
                    lon=lon + dlon,
                    industry="retail",
                    employees=50,
                    rep_id=owner,
                    locked=locked,
                ),
            )
        )
        for month, share in (("01", 0.25), ("02", 0.75)):
            messages.append(
                (
                    topics.ORDERS,
                    account_id,
                    envelope(
                        f"ord-{account_id}-{month}",
                        "order.placed",
                        f"2025-{month}-15T10:00:00+01:00",
                        order_id=f"o-{account_id}-{month}",
                        account_id=account_id,
                        amount=potential * share,
                    ),
                )
            )
    return messages


def past_the_warm_up() -> list[tuple[str, str, dict]]:
    """An activity whose event time passes the 60-day warm-up: now balance is judged."""
    return [
        (
            topics.ACTIVITIES,
            "b1",
            envelope(
                "act-1",
                "activity.logged",
                "2025-04-05T09:00:00+00:00",
                activity_id="v1",
                account_id="b1",
                rep_id="B",
                kind="visit",
                duration_min=60,
                travel_min=30,
            ),
        )
    ]


def palette_png(path: Path) -> None:
    """Rewrite a screenshot with a 256-colour palette: the full page is some 5,000 pixels tall,
    and the README's copy should stay a few hundred KB."""
    from PIL import Image

    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def post(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def pending(store: Store) -> list:
    """Pending proposals; none while the worker has not created the tables yet."""
    from sqlalchemy.exc import OperationalError

    try:
        return store.proposals("pending")
    except OperationalError:
        return []


def healthy(base: str) -> bool:
    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
        return response.status == 200


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium: "
    "run deploy/services/install.sh (as root) to install it",
)
def test_approving_in_the_browser_reaches_store_assignments_and_worker_state(broker, start_worker):
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    worker = start_worker(
        TERRITORY_WEB_PORT=str(port),
        TERRITORY_API_TOKEN=TOKEN,
        TERRITORY_WARMUP_DAYS="60",
        TERRITORY_POTENTIAL="trailing",
        TERRITORY_TOLERANCE="0.10",
        TERRITORY_HYSTERESIS="0.8",
        TERRITORY_PLANNER_INTERVAL_S="0.3",
    )
    base = f"http://127.0.0.1:{port}"
    # As tests/test_end_to_end.py: the company first, read to its end, then time moves on.
    company = company_out_of_balance()
    produce(broker.bootstrap_servers, company)
    wait_for(lambda: worker.metric("territory_intake_events_total") == len(company), 90, "the company")
    produce(broker.bootstrap_servers, past_the_warm_up())
    store = Store(worker.db_url)
    wait_for(lambda: bool(pending(store)), 120, "a pending proposal")
    [row] = pending(store)
    proposal, pid = row.payload, row.proposal_id
    moves = {m["account_id"]: m for m in proposal["moves"]}
    assert moves and proposal.get("accounts"), "the worker's proposal carries its moves and the map's accounts"
    wait_for(lambda: healthy(base), 30, f"the review page on {base}\n{worker.log()[-3000:]}")

    # Without the token (or with a wrong one) the write is refused, and nothing changes.
    decision = {"by": "intruder", "comment": "let me in"}
    status, body = post(f"{base}/api/proposals/{pid}/approve", decision)
    assert status == 401, body
    assert post(f"{base}/api/proposals/{pid}/approve", decision, token="guess")[0] == 403
    assert store.proposal(pid).status == "pending"
    assert [a.action for a in store.audit(pid)] == ["proposed"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{base}/")
            page.get_by_role("link", name=pid).click()
            # The map, and one row per move in the moves table (account, from, to).
            map_image = page.locator('img[alt^="Map of the territories"]')
            expect(map_image).to_be_visible()
            assert page.evaluate("(img) => img.naturalWidth", map_image.element_handle()) > 300
            rows = page.locator(
                "xpath=//h3[starts-with(normalize-space(), 'Moves')]/following-sibling::table[1]/tbody/tr"
            )
            expect(rows).to_have_count(len(moves))
            for index in range(len(moves)):
                cells = rows.nth(index).locator("td").all_inner_texts()
                assert cells[0] in moves and cells[1:3] == [moves[cells[0]]["from_rep"], moves[cells[0]]["to_rep"]]
            page.fill("#by", "m.keller")
            page.fill("#comment", "Agreed with A, B and C in Monday's call")
            if os.environ.get("TERRITORY_SCREENSHOTS") == "1":
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                palette_png(SCREENSHOT)

            page.fill("#token", TOKEN)
            page.click("#approve")
            expect(page.locator("#decision-result")).to_contain_text("Approved and published", timeout=30_000)
            # The page reloads and shows the decision instead of the form.
            expect(page.locator("#decision-state")).to_contain_text("m.keller", timeout=15_000)
            expect(page.locator("#status")).to_have_text("applied")
            assert page.evaluate("() => sessionStorage.getItem('territory-api-token')") == TOKEN
            assert TOKEN not in page.content()
        finally:
            browser.close()

    # The store: applied, and the audit log says who, when and why.
    row = store.proposal(pid)
    assert (row.status, row.decided_by) == ("applied", "m.keller")
    audit = [(a.actor, a.action, a.comment) for a in reversed(store.audit(pid))]
    assert audit == [
        ("worker", "proposed", None),
        ("m.keller", "approved", "Agreed with A, B and C in Monday's call"),
        ("m.keller", "applied", None),
    ]
    assert all(a.at is not None for a in store.audit(pid))

    # territory.assignments: one message per move, what the CRM export reads.
    assignments = read_topic(
        broker.bootstrap_servers, topics.ASSIGNMENTS, until=lambda found: len(found) >= len(moves), timeout_s=20
    )
    assert {a["account_id"]: a["to_rep"] for a in assignments} == {a: m["to_rep"] for a, m in moves.items()}
    assert {(a["proposal_id"], a["approved_by"]) for a in assignments} == {(pid, "m.keller")}

    # The worker's state follows: the overrides are applied by its intake, the moved accounts'
    # snapshots carry their new rep, and the planner's view of the reps is the proposal's "after".
    wait_for(
        lambda: (
            worker.metric("territory_intake_events_total", {"topic": topics.OVERRIDES, "outcome": "applied"})
            == len(moves)
        ),
        60,
        "the worker to apply the approval's overrides",
    )

    def new_owner_snapshots(found: list[dict]) -> bool:
        return all(
            any(s.get("account_id") == a and s.get("rep_id") == m["to_rep"] for s in found) for a, m in moves.items()
        )

    assert new_owner_snapshots(
        read_topic(broker.bootstrap_servers, topics.STATE, until=new_owner_snapshots, timeout_s=30)
    )
    after = {r["rep_id"]: r["accounts"] for r in proposal["after"]}
    wait_for(
        lambda: all(worker.metric("territory_rep_accounts", {"rep": rep}) == count for rep, count in after.items()),
        60,
        f"the planner's account counts to become the proposal's after {after}",
    )
    assert worker.metric("territory_territory_imbalance_ratio") == pytest.approx(proposal["imbalance_after"], abs=1e-3)
    assert worker.metric("territory_intake_events_total", {"topic": topics.OVERRIDES, "outcome": "deadlettered"}) == 0
