"""Decisions on proposals: approve / reject / apply (alerts/decisions.py) and the HTTP API
(alerts/web/), on proposals made by the real planner and rebalancer."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from alerts import decisions
from alerts.decisions import DecisionError, KafkaPublisher, approval_messages
from alerts.store import Store
from alerts.web import review_app
from core.contract import validate_envelope
from planner.planner import Planner
from monitor.state import AccountState, RepState
from rebalancer import minimal_moves
from core import topics
from core.clock import ManualClock
from core.settings import Settings
from tests import records

WRITE_TOKEN, READ_TOKEN = "write-secret-7f3a", "read-secret-19c2"
REPS = {"A": (52.52, 13.40), "B": (53.55, 9.99), "C": (48.14, 11.58)}  # Berlin, Hamburg, Munich
# account -> (owner, potential, locked); A carries half the company, B and C too little.
ACCOUNTS = {
    "a1": ("A", 600.0, True),
    "a2": ("A", 500.0, False),
    "a3": ("A", 300.0, False),
    "a4": ("A", 100.0, False),
    "b1": ("B", 700.0, False),
    "c1": ("C", 500.0, False),
    "c2": ("C", 300.0, False),
}
WATERMARK = datetime(2025, 4, 3, 9, 0, tzinfo=timezone.utc)


def real_proposal() -> dict[str, Any]:
    """A proposal exactly as the worker's planner makes it (context for the map included):
    the planner judges the company, the rebalancer solves, the planner builds the proposal."""
    states = []
    for account_id, (owner, potential, locked) in ACCOUNTS.items():
        lat, lon = REPS[owner]
        states.append(
            AccountState(
                account_id,
                lat + 0.05,
                lon + 0.05,
                rep_id=owner,
                locked=locked,
                known=True,
                monthly_sales={"2025-01": potential * 0.25, "2025-02": potential * 0.75},
            )
        )
    reps = [RepState(rep_id, lat, lon) for rep_id, (lat, lon) in REPS.items()]
    planner = Planner(Settings(potential="trailing", warmup_days=60), clock=ManualClock(WATERMARK))
    evaluation = planner.evaluate(
        states, reps, watermark=WATERMARK, first_event_at=datetime(2025, 1, 1, tzinfo=timezone.utc)
    )
    request = evaluation.rebalance
    assert request is not None, "the scripted company must be out of balance"
    result = minimal_moves(request.accounts, request.reps, tolerance=request.tolerance, time_limit_s=10, num_workers=1)
    proposal = planner.proposal(request, result, WATERMARK).to_json()  # as the alert stage stores it
    assert proposal["moves"], proposal
    return proposal


@pytest.fixture(scope="module")
def proposal() -> dict[str, Any]:
    return real_proposal()


@pytest.fixture
def store(tmp_path: Path, proposal: dict[str, Any]) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    store.migrate()
    assert store.save_proposal(records.proposal(proposal))
    return store


class Recorder:
    """A publisher that keeps what it was given; with `fail_after`, it breaks like a broker
    going away after that many messages."""

    def __init__(self, fail_after: int | None = None):
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []
        self.fail_after = fail_after

    async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("broker went away")
        self.sent.append((topic, key, value))


def audit_actions(store: Store, proposal_id: str) -> list[tuple[str, str, str | None]]:
    return [(row.actor, row.action, row.comment) for row in reversed(store.audit(proposal_id))]


# --------------------------------------------------------------------------- decisions


def test_approval_messages_are_contract_events_from_the_stored_decision(store, proposal):
    pid = proposal["proposal_id"]
    decided = store.decide(pid, "approved", actor="m.keller", comment="agreed with both reps")
    messages = approval_messages(decided, store.moves(pid))
    assert len(messages) == 2 * len(proposal["moves"])

    assignments = [(key, value) for topic, key, value in messages if topic == topics.ASSIGNMENTS]
    overrides = [(key, value) for topic, key, value in messages if topic == topics.OVERRIDES]
    assert [value["account_id"] for _, value in assignments] == [m["account_id"] for m in proposal["moves"]]
    for (key, value), move in zip(assignments, proposal["moves"]):
        assert key == move["account_id"].encode()
        assert value == {
            "account_id": move["account_id"],
            "from_rep": move["from_rep"],
            "to_rep": move["to_rep"],
            "proposal_id": pid,
            "approved_by": "m.keller",
            "approved_at": value["approved_at"],
            "reason": move["reason"],
            "comment": "agreed with both reps",
        }
        assert datetime.fromisoformat(value["approved_at"]).tzinfo is not None
    for (key, value), move in zip(overrides, proposal["moves"]):
        # What the worker's intake will see: a valid assignment.override, keyed by the account.
        event = validate_envelope(value, topic=topics.OVERRIDES, key=key)
        assert event.event_id == f"approval-{pid}-{move['account_id']}"
        assert event.data == {
            "account_id": move["account_id"],
            "rep_id": move["to_rep"],
            "locked": False,
            "reason": f"approved proposal {pid}: agreed with both reps",
            "by": "m.keller",
        }
        # Event time, not the wall clock: the proposal's watermark.
        assert event.occurred_at == WATERMARK

    # Read back from the database (SQLite returns naive datetimes): the very same messages.
    assert approval_messages(store.proposal(pid), store.moves(pid)) == messages


def test_approve_publishes_then_marks_applied_with_the_audit_trail(store, proposal):
    pid = proposal["proposal_id"]
    publisher = Recorder()
    outcome = asyncio.run(decisions.approve(store, publisher, pid, actor="m.keller", comment="fair again"))
    assert outcome == decisions.Outcome(
        pid, "applied", moves=len(proposal["moves"]), published=2 * len(proposal["moves"])
    )
    assert publisher.sent == approval_messages(store.proposal(pid), store.moves(pid))
    row = store.proposal(pid)
    assert (row.status, row.decided_by, row.decision_comment) == ("applied", "m.keller", "fair again")
    assert row.applied_at is not None
    assert audit_actions(store, pid) == [
        ("worker", "proposed", None),
        ("m.keller", "approved", "fair again"),
        ("m.keller", "applied", None),
    ]


def test_reject_publishes_nothing_and_is_audited(store, proposal):
    pid = proposal["proposal_id"]
    publisher = Recorder()
    outcome = asyncio.run(decisions.reject(store, publisher, pid, actor="j.doe", comment="wait for Q3 numbers"))
    assert outcome == decisions.Outcome(pid, "rejected")
    assert publisher.sent == []
    assert store.proposal(pid).status == "rejected"
    assert audit_actions(store, pid)[-1] == ("j.doe", "rejected", "wait for Q3 numbers")


def test_a_decided_or_unknown_proposal_cannot_be_decided_again(store, proposal):
    pid = proposal["proposal_id"]
    asyncio.run(decisions.reject(store, None, pid, actor="j.doe", comment="no"))
    publisher = Recorder()
    with pytest.raises(DecisionError, match=f"proposal {pid} is already rejected by j.doe, not pending"):
        asyncio.run(decisions.approve(store, publisher, pid, actor="m.keller", comment="yes"))
    with pytest.raises(DecisionError, match="is rejected: only an approved proposal can be applied"):
        asyncio.run(decisions.apply(store, publisher, pid))
    with pytest.raises(DecisionError, match="no proposal 'prop-missing'"):
        asyncio.run(decisions.approve(store, publisher, "prop-missing", actor="m.keller", comment="yes"))
    assert publisher.sent == []
    assert store.proposal(pid).status == "rejected"
    assert [action for _, action, _ in audit_actions(store, pid)] == ["proposed", "rejected"]


def test_failed_publishing_keeps_the_approval_and_apply_publishes_the_same_messages(store, proposal):
    pid = proposal["proposal_id"]
    broken = Recorder(fail_after=3)
    outcome = asyncio.run(decisions.approve(store, broken, pid, actor="m.keller", comment="go"))
    assert (outcome.status, outcome.published) == ("approved", 3)
    assert "ConnectionError: broker went away" in outcome.error
    assert store.proposal(pid).status == "approved"  # the decision stands, not applied
    assert [action for _, action, _ in audit_actions(store, pid)] == ["proposed", "approved"]

    # The worker's retry skips a fresh approval (someone may be publishing it right now) ...
    retry = Recorder()
    assert asyncio.run(decisions.apply_approved(store, retry, older_than_s=3600)) == []
    # ... and publishes an older one: everything again, the first three identical to before.
    outcomes = asyncio.run(decisions.apply_approved(store, retry, older_than_s=0))
    assert outcomes == [
        decisions.Outcome(pid, "applied", moves=len(proposal["moves"]), published=2 * len(proposal["moves"]))
    ]
    assert retry.sent[:3] == broken.sent
    assert retry.sent == approval_messages(store.proposal(pid), store.moves(pid))
    assert store.proposal(pid).status == "applied"

    # Applying an applied proposal again publishes nothing and changes nothing.
    again = Recorder()
    assert asyncio.run(decisions.apply(store, again, pid)) == decisions.Outcome(pid, "applied")
    assert again.sent == []
    assert [action for _, action, _ in audit_actions(store, pid)] == ["proposed", "approved", "applied"]


@pytest.mark.slow
def test_approve_publishes_to_both_topics_on_a_real_broker(broker, store, proposal):
    from tests.kafka_io import read_all

    pid = proposal["proposal_id"]

    async def approve() -> decisions.Outcome:
        async with KafkaPublisher(broker.bootstrap_servers) as publisher:
            return await decisions.approve(store, publisher, pid, actor="m.keller", comment="approved in the test")

    outcome = asyncio.run(approve())
    assert outcome.ok and outcome.status == "applied", outcome
    moves = {m["account_id"]: m for m in proposal["moves"]}
    assignments = read_all(broker.bootstrap_servers, topics.ASSIGNMENTS, quiet_s=1.0)
    assert {key.decode(): value["to_rep"] for key, value in assignments} == {a: m["to_rep"] for a, m in moves.items()}
    assert {value["approved_by"] for _, value in assignments} == {"m.keller"}
    overrides = read_all(broker.bootstrap_servers, topics.OVERRIDES, quiet_s=1.0)
    assert sorted(value["event_id"] for _, value in overrides) == sorted(f"approval-{pid}-{a}" for a in moves)
    for key, value in overrides:
        event = validate_envelope(value, topic=topics.OVERRIDES, key=key)
        assert event.data["rep_id"] == moves[event.data["account_id"]]["to_rep"]

    # Applying again publishes nothing: the topics hold one message per move each.
    async def apply_again() -> decisions.Outcome:
        async with KafkaPublisher(broker.bootstrap_servers) as publisher:
            return await decisions.apply(store, publisher, pid)

    assert asyncio.run(apply_again()) == decisions.Outcome(pid, "applied")
    assert len(read_all(broker.bootstrap_servers, topics.ASSIGNMENTS, quiet_s=1.0)) == len(moves)


# --------------------------------------------------------------------------- HTTP API


def settings(**changes: Any) -> Settings:
    return Settings(api_token=WRITE_TOKEN, api_read_token="", web_port=0).with_(**changes)


def with_client(
    store: Store, publisher: Any, config: Settings, scenario: Callable[[TestClient], Awaitable[Any]]
) -> Any:
    async def run() -> Any:
        async with TestClient(TestServer(review_app(store, publisher, config))) as client:
            return await scenario(client)

    return asyncio.run(run())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_refuses_writes_without_the_right_token_and_409s_a_decided_proposal(store, proposal):
    pid = proposal["proposal_id"]
    publisher = Recorder()
    body = {"by": "m.keller", "comment": "fair again"}

    async def scenario(client: TestClient) -> None:
        url = f"/api/proposals/{pid}/approve"
        response = await client.post(url, json=body)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "TERRITORY_API_TOKEN" in (await response.json())["error"]
        response = await client.post(url, json=body, headers=bearer("guess"))
        assert response.status == 403
        assert store.proposal(pid).status == "pending" and publisher.sent == []

        response = await client.post(url, json={"by": " "}, headers=bearer(WRITE_TOKEN))
        assert response.status == 400
        assert (await response.json())["error"] == (
            "by: who decides (a name) is required; comment: why (a reason for the audit log) is required"
        )
        response = await client.post(url, data=b"{nope", headers=bearer(WRITE_TOKEN))
        assert response.status == 400
        response = await client.post("/api/proposals/prop-missing/approve", json=body, headers=bearer(WRITE_TOKEN))
        assert response.status == 404

        response = await client.post(url, json=body, headers=bearer(WRITE_TOKEN))
        assert response.status == 200, await response.text()
        result = await response.json()
        assert (result["status"], result["moves"], result["published"]) == (
            "applied",
            len(proposal["moves"]),
            2 * len(proposal["moves"]),
        )

        response = await client.post(f"/api/proposals/{pid}/reject", json=body, headers=bearer(WRITE_TOKEN))
        assert response.status == 409
        assert (await response.json())["error"] == (
            f"proposal {pid} is already applied by m.keller, not pending: it cannot be rejected"
        )

        detail = await (await client.get(f"/api/proposals/{pid}")).json()
        assert detail["status"] == "applied" and detail["decided_by"] == "m.keller"
        assert [m["account_id"] for m in detail["moves"]] == [m["account_id"] for m in proposal["moves"]]
        assert [(a["actor"], a["action"]) for a in detail["audit"]] == [
            ("worker", "proposed"),
            ("m.keller", "approved"),
            ("m.keller", "applied"),
        ]
        assert detail["proposal"]["proposal_id"] == pid

    with_client(store, publisher, settings(), scenario)
    assert len(publisher.sent) == 2 * len(proposal["moves"])


def test_api_reject_and_a_failed_publish(store, proposal, tmp_path):
    pid = proposal["proposal_id"]

    async def reject(client: TestClient) -> None:
        response = await client.post(
            f"/api/proposals/{pid}/reject", json={"by": "j.doe", "comment": "not now"}, headers=bearer(WRITE_TOKEN)
        )
        assert response.status == 200
        assert (await response.json())["status"] == "rejected"
        listed = await (await client.get("/api/proposals?status=rejected")).json()
        assert [p["proposal_id"] for p in listed["proposals"]] == [pid]
        assert (await client.get("/api/proposals?status=maybe")).status == 400

    publisher = Recorder()
    with_client(store, publisher, settings(), reject)
    assert publisher.sent == []

    # A second store: the broker fails during the approval -> 202, still approved.
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    other.migrate()
    other.save_proposal(records.proposal(proposal))

    async def approve_with_broken_broker(client: TestClient) -> None:
        response = await client.post(
            f"/api/proposals/{pid}/approve", json={"by": "m.keller", "comment": "go"}, headers=bearer(WRITE_TOKEN)
        )
        assert response.status == 202
        body = await response.json()
        assert body["status"] == "approved" and "broker went away" in body["error"]
        assert f"territory proposals apply {pid}" in body["message"]

    with_client(other, Recorder(fail_after=0), settings(), approve_with_broken_broker)
    assert other.proposal(pid).status == "approved"


def test_writes_are_refused_while_no_token_is_configured(store, proposal):
    async def scenario(client: TestClient) -> None:
        response = await client.post(
            f"/api/proposals/{proposal['proposal_id']}/approve",
            json={"by": "m.keller", "comment": "go"},
            headers=bearer(""),
        )
        assert response.status == 403
        assert "no API token is configured" in (await response.json())["error"]

    with_client(store, Recorder(), settings(api_token=""), scenario)
    assert store.proposal(proposal["proposal_id"]).status == "pending"


def test_reads_need_the_read_token_when_one_is_set(store, proposal):
    pid = proposal["proposal_id"]

    async def scenario(client: TestClient) -> None:
        assert (await client.get("/healthz")).status == 200
        response = await client.get("/api/proposals")
        assert response.status == 401
        assert "TERRITORY_API_READ_TOKEN" in (await response.json())["error"]
        assert (await client.get("/api/proposals", headers=bearer("guess"))).status == 401
        for token in (READ_TOKEN, WRITE_TOKEN):  # the write token reads too
            response = await client.get("/api/proposals", headers=bearer(token))
            assert response.status == 200
            assert [p["proposal_id"] for p in (await response.json())["proposals"]] == [pid]

        # A browser: the page asks for the token, and a session cookie (not the token) lets it read.
        response = await client.get(f"/proposals/{pid}")
        assert response.status == 401 and 'action="/login"' in await response.text()
        response = await client.post(
            "/login", data={"token": "guess", "next": f"/proposals/{pid}"}, allow_redirects=False
        )
        assert response.status == 401
        response = await client.post(
            "/login", data={"token": READ_TOKEN, "next": "//evil.example/"}, allow_redirects=False
        )
        assert response.status == 303 and response.headers["Location"] == "/"
        cookie = response.cookies["territory_review"]
        assert READ_TOKEN not in cookie.value and cookie["httponly"] and cookie["samesite"] == "Strict"
        response = await client.get(f"/proposals/{pid}")
        assert response.status == 200
        assert READ_TOKEN not in await response.text()

    with_client(store, Recorder(), settings(api_read_token=READ_TOKEN), scenario)


def test_review_page_shows_the_report_and_the_form_but_no_token(store, proposal):
    pid = proposal["proposal_id"]

    async def scenario(client: TestClient) -> None:
        index = await client.get("/")
        assert index.status == 200
        assert f'href="/proposals/{pid}"' in await index.text()

        response = await client.get(f"/proposals/{pid}")
        assert response.status == 200
        html = await response.text()
        assert WRITE_TOKEN not in html
        # The weekly report's section: the map and the moves, with the decision form under its headline.
        assert re.search(
            r'<img[^>]+src="data:image/png;base64,[^"]+"[^>]*alt="Map of the territories', html
        ) or re.search(r'<img[^>]+alt="Map of the territories[^>]+src="data:image/png', html), html[:2000]
        for move in proposal["moves"]:
            assert move["account_id"] in html
        assert 'id="approve"' in html and 'id="reject"' in html
        nonce = re.search(r"script-src 'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        assert f'<script nonce="{nonce}">' in html

        await client.post(
            f"/api/proposals/{pid}/approve",
            json={"by": "m.keller", "comment": "fair again"},
            headers=bearer(WRITE_TOKEN),
        )
        html = await (await client.get(f"/proposals/{pid}")).text()
        # Decided: no decision form and no script of it; the map's scripts stay.
        scripts = re.findall(r"<script[^>]*>", html)
        assert 'id="approve"' not in html and "sessionStorage" not in html
        assert all('src="/static/' in tag or 'type="application/json"' in tag for tag in scripts), scripts
        assert "m.keller" in html and "fair again" in html and "applied" in html

    with_client(store, Recorder(), settings(), scenario)


# --------------------------------------------------------------------------- command line


def cli(store: Store, *args: str, kafka_url: str = "") -> Any:
    from typer.testing import CliRunner

    from territory.cli import app

    env = {"TERRITORY_DB_URL": store.url, "TERRITORY_KAFKA_URL": kafka_url}
    return CliRunner().invoke(app, ["proposals", *args], env=env)


def test_cli_lists_shows_rejects_and_refuses_what_it_cannot_do(store, proposal):
    pid = proposal["proposal_id"]
    listed = cli(store, "list", "--status", "pending")
    assert listed.exit_code == 0 and pid in listed.output and "pending" in listed.output
    shown = cli(store, "show", pid)
    assert shown.exit_code == 0, shown.output
    for move in proposal["moves"]:
        assert move["account_id"] in shown.output
    assert "audit trail" in shown.output and "proposed" in shown.output

    assert cli(store, "list", "--status", "maybe").exit_code == 2
    missing = cli(store, "show", "prop-missing")
    assert missing.exit_code == 2 and "no proposal 'prop-missing'" in missing.output
    no_broker = cli(store, "approve", pid, "--comment", "go", "--by", "m.keller")
    assert no_broker.exit_code == 2 and "TERRITORY_KAFKA_URL" in no_broker.output
    assert store.proposal(pid).status == "pending"  # nothing decided without a broker to publish to

    rejected = cli(store, "reject", pid, "--comment", "wait for Q3", "--by", "j.doe")
    assert rejected.exit_code == 0 and "rejected" in rejected.output
    again = cli(store, "approve", pid, "--comment", "go", "--by", "m.keller", kafka_url="kafka://127.0.0.1:9")
    assert again.exit_code == 2 and f"proposal {pid} is rejected by j.doe" in again.output
    assert cli(store, "apply", pid).exit_code == 2
    assert audit_actions(store, pid)[-1] == ("j.doe", "rejected", "wait for Q3")


@pytest.mark.slow
def test_cli_approves_and_publishes_on_a_real_broker(broker, store, proposal):
    from tests.kafka_io import read_all

    pid = proposal["proposal_id"]
    approved = cli(store, "approve", pid, "--comment", "fair again", "--by", "m.keller", kafka_url=broker.url)
    assert approved.exit_code == 0, approved.output
    assert f"{len(proposal['moves'])} moves published" in approved.output
    assert store.proposal(pid).status == "applied"
    assignments = read_all(broker.bootstrap_servers, topics.ASSIGNMENTS, quiet_s=1.0)
    assert sorted(key.decode() for key, _ in assignments) == sorted(m["account_id"] for m in proposal["moves"])
    applied = cli(store, "apply", pid, kafka_url=broker.url)
    assert applied.exit_code == 0 and "nothing to publish" in applied.output
