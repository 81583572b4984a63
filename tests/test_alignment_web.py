"""The alignment history in the review web app (SQLite and PostgreSQL): ``GET /alignment`` lists
the snapshots, ``GET /alignment/diff?from=A&to=B`` compares two, ``POST /alignment/{id}/restore``
asks for one back as a pending restore proposal (the same code as `territory alignment
restore`), behind the write token exactly as approve and reject are; and the JSON twins."""

from __future__ import annotations

import asyncio
import re
import threading
from contextlib import contextmanager
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alerts.store import KnownOwner, Store
from alerts.web import review_app
from core import topics
from core.clock import ManualClock
from core.records import Proposal
from core.settings import Settings
from territory.broker import free_port
from tests import records
from tests.test_alignment_history import (
    COMMA,
    FORMULA,
    OTHER,
    PLAIN,
    REP_A,
    REP_B,
    REP_C,
    T1,
    UNICODE,
    Recorder,
    approve,
    cli,
    payload,
    two_approvals,
)

WRITE_TOKEN, READ_TOKEN = "alignment-write-5d1c", "alignment-read-77e0"
SCRIPT = '<script>alert("x")</script>'
BODY = {"by": "j.doe", "comment": "back to March"}


@pytest.fixture
def history(store: Store) -> Store:
    """As tests/test_alignment_history.py (p1, then p2 a week later), with one more account, whose
    id is a script tag, and a third approval that moves it."""
    store.record_owners({SCRIPT: KnownOwner(REP_A, False, "2025-01-01T00:00:00+00:00")}, {}, None)
    two_approvals(store)
    store.save_proposal(records.proposal(payload("p3", [(SCRIPT, REP_A, REP_B)], "2025-06-01T00:00:00+00:00")))
    store.clock = ManualClock(T1 + timedelta(days=7))
    approve(store, "p3")
    return store


def settings(**changes: Any) -> Settings:
    return Settings(api_token=WRITE_TOKEN, api_read_token="", web_port=0).with_(**changes)


def with_client(
    store: Store, config: Settings, scenario: Callable[[TestClient], Awaitable[Any]], publisher: Any = None
) -> Any:
    async def run() -> Any:
        async with TestClient(TestServer(review_app(store, publisher or Recorder(), config))) as client:
            return await scenario(client)

    return asyncio.run(run())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class _Tables(HTMLParser):
    """The text of every cell of every table with an id: {id: [[cell, ...], ...]} (body rows)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id"):
            self._table = dict(attrs)["id"]
            self.tables[self._table] = []
        elif tag == "thead":
            self._head = True
        elif tag == "tr" and self._table and not self._head:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._head = False
        elif tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def ids(store: Store) -> list[int]:
    return [s.id for s in store.alignment_snapshots()]


# --------------------------------------------------------------------------- the list


def test_the_page_lists_every_snapshot_with_its_proposal_and_counts(history: Store):
    async def scenario(client: TestClient) -> None:
        index = await (await client.get("/")).text()
        assert 'href="/alignment"' in index
        response = await client.get("/alignment")
        assert response.status == 200, await response.text()
        html = await response.text()
        rows = tables(html)["snapshots"]
        listed = [(row[0], row[2], row[3], row[5], row[6]) for row in rows]
        assert listed == [
            (f"#{s.id}", s.reason, s.proposal_id or "", str(s.accounts), str(s.reps))
            for s in history.alignment_snapshots()
        ]
        assert [row[2] for row in rows][:3] == ["baseline", "approved p1", "applied p1"]
        assert rows[-1][1] == history.alignment_snapshots()[-1].taken_at.strftime("%Y-%m-%d %H:%M")
        assert 'href="/proposals/p2"' in html
        # One restore form per snapshot, each naming its snapshot; no token in the page.
        for snapshot in ids(history):
            assert f'data-restore="/alignment/{snapshot}/restore"' in html
        assert WRITE_TOKEN not in html

        listed_json = await (await client.get("/api/alignment")).json()
        assert [(s["id"], s["reason"], s["proposal_id"], s["accounts"]) for s in listed_json["snapshots"]] == [
            (s.id, s.reason, s.proposal_id, s.accounts) for s in history.alignment_snapshots()
        ]
        assert listed_json["snapshots"][1]["proposal_url"] == "/proposals/p1"

    with_client(history, settings(), scenario)


def test_an_empty_history_says_so(store: Store):
    async def scenario(client: TestClient) -> None:
        html = await (await client.get("/alignment")).text()
        assert "No alignment snapshot yet" in html
        assert (await (await client.get("/api/alignment")).json()) == {"snapshots": []}

    with_client(store, settings(), scenario)


def test_reading_the_history_needs_the_read_token_when_one_is_set(history: Store):
    async def scenario(client: TestClient) -> None:
        assert (await client.get("/api/alignment")).status == 401
        assert (await client.get("/api/alignment/diff?from=1&to=2")).status == 401
        page = await client.get("/alignment/diff?from=1&to=2")
        assert page.status == 401 and 'action="/login"' in await page.text()
        assert (await client.get("/alignment", headers=bearer(READ_TOKEN))).status == 200

    with_client(history, settings(api_read_token=READ_TOKEN), scenario)


# --------------------------------------------------------------------------- the diff


def test_the_diff_lists_exactly_the_approved_moves_and_per_rep_counts(history: Store):
    baseline, *_, approved_p2, applied_p2, approved_p3, applied_p3 = ids(history)

    async def scenario(client: TestClient) -> None:
        response = await client.get(f"/alignment/diff?from={baseline}&to={applied_p2}")
        assert response.status == 200, await response.text()
        shown = tables(await response.text())
        assert sorted(tuple(row[:3]) for row in shown["moves"]) == sorted(
            [
                (PLAIN, REP_A, REP_B),
                (COMMA, REP_A, REP_C),  # moved twice: from where it started to where it ended
                (FORMULA, REP_A, REP_C),
                (UNICODE, REP_B, REP_A),
            ]
        )
        # Per rep: what it lost and gained.
        assert sorted(shown["reps"]) == sorted([[REP_A, "3", "1"], [REP_B, "1", "1"], [REP_C, "0", "2"]])

        # By date, as the command line: between the two days only p2 moved.
        shown = tables(await (await client.get("/alignment/diff?from=2026-03-02&to=2026-03-09")).text())
        assert sorted(row[0] for row in shown["moves"]) == sorted([FORMULA, UNICODE, COMMA])

        # The same approval's two snapshots: nothing moved.
        html = await (await client.get(f"/alignment/diff?from={approved_p2}&to={applied_p2}")).text()
        assert "No account changed rep" in html and 'id="moves"' not in html

        data = await (await client.get(f"/api/alignment/diff?from={applied_p2}&to={applied_p3}")).json()
        assert data["from"]["id"] == applied_p2 and data["to"]["id"] == applied_p3
        assert data["changes"] == [{"account_id": SCRIPT, "from_rep": REP_A, "to_rep": REP_B, "kind": "moved"}]
        data = await (await client.get(f"/api/alignment/diff?from={baseline}&to={applied_p2}")).json()
        assert {(c["account_id"], c["from_rep"], c["to_rep"]) for c in data["changes"]} == {
            (PLAIN, REP_A, REP_B),
            (COMMA, REP_A, REP_C),
            (FORMULA, REP_A, REP_C),
            (UNICODE, REP_B, REP_A),
        }
        assert {r["rep_id"]: (r["lost"], r["gained"]) for r in data["reps"]} == {
            REP_A: (3, 1),
            REP_B: (1, 1),
            REP_C: (0, 2),
        }

    with_client(history, settings(), scenario)


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("from=1", 400, "to:"),
        ("from=1&to=yesterday", 400, "to: 'yesterday' is neither a snapshot id nor a date"),
        ("from=999&to=1", 404, "from: no alignment snapshot 999"),
        ("from=2020-01-01&to=1", 404, "from: no alignment snapshot on or before 2020-01-01"),
    ],
)
def test_a_diff_names_the_argument_it_cannot_use(history: Store, query: str, status: int, message: str):
    async def scenario(client: TestClient) -> None:
        for path in ("/alignment/diff", "/api/alignment/diff"):
            response = await client.get(f"{path}?{query}")
            assert response.status == status
            assert message in (await response.json())["error"]

    with_client(history, settings(), scenario)


def test_odd_account_ids_are_escaped_and_the_page_keeps_the_csp(history: Store):
    baseline, last = ids(history)[0], ids(history)[-1]

    async def scenario(client: TestClient) -> None:
        for path in ("/alignment", f"/alignment/diff?from={baseline}&to={last}"):
            response = await client.get(path)
            html = await response.text()
            policy = response.headers["Content-Security-Policy"]
            nonce = re.search(r"script-src 'nonce-([^']+)'", policy).group(1)
            # Every script is a file of this server with the response's nonce; no inline style.
            scripts = re.findall(r"<script[^>]*>", html)
            assert scripts and all(tag == f'<script nonce="{nonce}" src="/static/alignment.js">' for tag in scripts)
            assert " style=" not in html and "<style" not in html.split("</head>")[1]
            assert "<script>" not in html and "alert(" not in html.replace("alert(&#34;x&#34;)", "")
        for name, kind in (("alignment.js", "text/javascript"), ("alignment.css", "text/css")):
            served = await client.get(f"/static/{name}")
            assert served.status == 200 and served.content_type == kind
        html = await (await client.get(f"/alignment/diff?from={baseline}&to={last}")).text()
        assert unescape("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == SCRIPT
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
        assert "acme, &#34;north&#34;" in html and 'acme, "north"' not in html
        assert UNICODE in html and REP_C in html
        assert SCRIPT in [row[0] for row in tables(html)["moves"]]

    with_client(history, settings(), scenario)


# --------------------------------------------------------------------------- restore


def test_the_restore_post_is_refused_exactly_as_approve_is(history: Store):
    """No token, a wrong one, a read session cookie: the same answers as approve, nothing stored;
    and the failures count towards the same lock-out."""
    history.save_proposal(records.proposal(payload("p9", [(OTHER, REP_C, REP_A)], "2025-07-01T00:00:00+00:00")))
    restore_url, approve_url = f"/alignment/{ids(history)[0]}/restore", "/api/proposals/p9/approve"

    async def scenario(client: TestClient) -> None:
        login = await client.post("/login", data={"token": READ_TOKEN}, allow_redirects=False)
        assert login.status == 303
        for headers in ({}, bearer("guess"), bearer(READ_TOKEN)):
            answers = []
            for url in (approve_url, restore_url):
                response = await client.post(url, json=BODY, headers=headers, allow_redirects=False)
                answers.append((response.status, response.headers.get("WWW-Authenticate"), await response.json()))
            assert answers[0] == answers[1], (headers, answers)
            assert answers[0][0] in (401, 403)
        assert [p.proposal_id for p in history.proposals("pending")] == ["p9"]
        # Six failures so far (three each), the limit is seven: the next one locks out both.
        assert (await client.post(restore_url, json=BODY, allow_redirects=False)).status == 401
        for url in (restore_url, approve_url):
            response = await client.post(url, json=BODY, headers=bearer(WRITE_TOKEN), allow_redirects=False)
            assert response.status == 429 and "Retry-After" in response.headers
        assert [p.proposal_id for p in history.proposals("pending")] == ["p9"]

    with_client(history, settings(api_read_token=READ_TOKEN, auth_max_failures=7), scenario)

    async def no_token_configured(client: TestClient) -> None:
        for url in (approve_url, restore_url):
            response = await client.post(url, json=BODY, headers=bearer(""), allow_redirects=False)
            assert response.status == 403 and "no API token is configured" in (await response.json())["error"]

    with_client(history, settings(api_token=""), no_token_configured)
    assert [p.proposal_id for p in history.proposals("pending")] == ["p9"]


def test_the_restore_post_stores_a_pending_restore_publishes_it_and_redirects(history: Store):
    baseline = ids(history)[0]
    publisher = Recorder()

    async def scenario(client: TestClient) -> None:
        response = await client.post(
            f"/alignment/{baseline}/restore", json=BODY, headers=bearer(WRITE_TOKEN), allow_redirects=False
        )
        assert response.status == 303, await response.text()
        (row,) = history.proposals("pending")
        assert response.headers["Location"] == f"/proposals/{row.proposal_id}"
        proposal = Proposal.from_json(row.payload)
        assert proposal.mode == "restore" and row.proposal_id.startswith(f"prop-restore-{baseline}-")
        assert {(m.account_id, m.from_rep, m.to_rep) for m in proposal.moves} == {
            (PLAIN, REP_B, REP_A),
            (COMMA, REP_C, REP_A),
            (FORMULA, REP_C, REP_A),
            (UNICODE, REP_A, REP_B),
            (SCRIPT, REP_B, REP_A),
        }
        assert [(a.actor, a.action, a.comment) for a in history.audit(row.proposal_id)] == [
            ("j.doe", "proposed", "back to March")
        ]
        # The proposal's review page answers, with the approve form.
        page = await client.get(response.headers["Location"])
        assert page.status == 200 and 'id="approve"' in await page.text()
        # Asked again while pending: the same proposal (its id is made from the snapshot and moves).
        again = await client.post(
            f"/alignment/{baseline}/restore", json=BODY, headers=bearer(WRITE_TOKEN), allow_redirects=False
        )
        assert again.status == 303 and again.headers["Location"] == response.headers["Location"]
        # Once the worker has alerted it, asking again leads to it and publishes nothing more.
        history.mark_alerted(row.proposal_id)
        sent = len(publisher.sent)
        again = await client.post(
            f"/alignment/{baseline}/restore", json=BODY, headers=bearer(WRITE_TOKEN), allow_redirects=False
        )
        assert again.status == 303 and again.headers["Location"] == response.headers["Location"]
        assert len(publisher.sent) == sent

    with_client(history, settings(), scenario, publisher)
    (row,) = history.proposals("pending")
    assert [(topic, key) for topic, key, _ in publisher.sent][:1] == [(topics.PROPOSALS, row.proposal_id.encode())]
    assert publisher.sent[0][2] == row.payload
    # The command line's restore of the same snapshot is the same proposal (one code path), and
    # as it is alerted already, the command says so.
    result = cli(history, "restore", str(baseline), "--by", "j.doe", expect=2)
    assert f"proposal {row.proposal_id} is pending" in result.output
    assert [p.proposal_id for p in history.proposals("pending")] == [row.proposal_id]


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/alignment/999/restore", BODY, 404, "no alignment snapshot 999"),
        ("/alignment/{last}/restore", BODY, 409, "already gives every account its rep of"),
        ("/alignment/{first}/restore", {"comment": "x"}, 400, "by: who asks for the restore"),
        ("/alignment/{first}/restore", {"by": "j\ndoe"}, 400, "by: must not contain control characters"),
        ("/alignment/{first}/restore", {"by": "x" * 201}, 400, "by: at most 200 characters"),
    ],
)
def test_a_restore_that_cannot_be_made_says_why(history: Store, path: str, body: Any, status: int, message: str):
    first, last = ids(history)[0], ids(history)[-1]

    async def scenario(client: TestClient) -> None:
        url = path.format(first=first, last=last)
        response = await client.post(url, json=body, headers=bearer(WRITE_TOKEN), allow_redirects=False)
        assert response.status == status
        assert message in (await response.json())["error"]

    with_client(history, settings(), scenario)
    assert history.proposals("pending") == []


def test_a_failed_publish_keeps_the_restore_and_still_redirects(history: Store):
    class Broken:
        async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
            raise ConnectionError("broker went away")

    async def scenario(client: TestClient) -> None:
        response = await client.post(
            f"/alignment/{ids(history)[0]}/restore", json=BODY, headers=bearer(WRITE_TOKEN), allow_redirects=False
        )
        assert response.status == 303
        assert "broker went away" in (await response.json())["error"]

    with_client(history, settings(), scenario, Broken())
    assert len(history.proposals("pending")) == 1


def test_a_restore_asked_on_the_page_is_approved_into_a_restoring_snapshot(history: Store):
    baseline = ids(history)[0]

    async def scenario(client: TestClient) -> str:
        response = await client.post(
            f"/alignment/{baseline}/restore", json=BODY, headers=bearer(WRITE_TOKEN), allow_redirects=False
        )
        return response.headers["Location"].rsplit("/", 1)[1]

    proposal_id = with_client(history, settings(), scenario)
    latest = history.alignment_rows(ids(history)[-1])
    history.record_owners({a: KnownOwner(r.rep_id, False, r.rep_at) for a, r in latest.items()}, {}, None)
    history.clock = ManualClock(T1 + timedelta(days=14))
    approve(history, proposal_id, by="r.boss")
    assert history.alignment_snapshots()[-1].reason == f"applied {proposal_id}, restores #{baseline}"
    assert history.alignment_diff(baseline, ids(history)[-1]) == []


# --------------------------------------------------------------------------- in a browser

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """`app` on a free loopback port, on an event loop of its own thread."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    port = free_port()
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_the_restore_button_in_a_browser_opens_the_new_proposal(history: Store):
    from playwright.sync_api import expect, sync_playwright

    baseline = ids(history)[0]
    publisher = Recorder()
    with serving(review_app(history, publisher, settings())) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{base}/")
            page.get_by_role("link", name="Alignment history").click()
            expect(page.locator("#snapshots tbody tr")).to_have_count(len(ids(history)))
            # Without a token the script says so and sends nothing.
            page.fill("#by", "j.doe")
            page.locator(f'form[data-restore="/alignment/{baseline}/restore"] button').click()
            expect(page.locator("#restore-result")).to_contain_text("API token")
            page.fill("#token", "guess")
            page.locator(f'form[data-restore="/alignment/{baseline}/restore"] button').click()
            expect(page.locator("#restore-result")).to_contain_text("Refused (403)")
            assert history.proposals("pending") == []

            page.fill("#token", WRITE_TOKEN)
            page.fill("#comment", "back to March")
            page.locator(f'form[data-restore="/alignment/{baseline}/restore"] button').click()
            page.wait_for_url(f"{base}/proposals/prop-restore-{baseline}-*", timeout=30_000)
            expect(page.locator("#status")).to_have_text("pending")
            expect(page.locator("#approve")).to_be_visible()
            assert WRITE_TOKEN not in page.content()
            # The diff page from the list's compare form, with its odd ids shown as text.
            page.goto(f"{base}/alignment")
            page.click("form.compare button")
            expect(page.locator("#moves")).to_contain_text(SCRIPT)
        finally:
            browser.close()
    assert not [text for text in console if "Content Security Policy" in text], console
    (row,) = history.proposals("pending")
    assert row.payload["mode"] == "restore" and publisher.sent[0][0] == topics.PROPOSALS
    assert [(a.actor, a.comment) for a in history.audit(row.proposal_id)] == [("j.doe", "back to March")]
