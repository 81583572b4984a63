"""The HTTP API refuses writes without the token and rate-limits failed
attempts; no secret reaches the worker's log; inputs reach SQL as bound parameters only.
(Webhook signatures: tests/test_sinks.py, test_webhook_body_is_signed_and_a_wrong_secret_is_detected.)"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect

from alerts.store import Store
from alerts.web import FailedAuthLimiter, review_app
from core import topics
from territory.broker import free_port
from core.settings import Settings
from tests.kafka_io import produce, wait_for
from tests.test_decisions import Recorder, real_proposal
from tests.test_end_to_end import envelope, scenario
from tests import records

ROOT = Path(__file__).resolve().parent.parent
WRITE_TOKEN = "write-token-for-security-tests"
READ_TOKEN = "read-token-for-security-tests"
TABLES = {"signals", "proposals", "moves", "audit_log", "deliveries", "reports", "alembic_version"}


class FakeClock:
    """A `core.clock.Clock` whose monotonic seconds the test moves (`clock.seconds += 30`)."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, timezone.utc)

    def monotonic(self) -> float:
        return self.seconds


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def proposal() -> dict[str, Any]:
    return real_proposal()


def new_store(tmp_path: Path, *proposals: dict[str, Any]) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    store.migrate()
    for item in proposals:
        assert store.save_proposal(records.proposal(item))
    return store


def with_client(
    store: Store,
    settings: Settings,
    scenario_: Callable[[TestClient], Awaitable[Any]],
    clock: FakeClock | None = None,
) -> Any:
    async def run() -> Any:
        app = review_app(store, Recorder(), settings, **({"clock": clock} if clock else {}))
        async with TestClient(TestServer(app)) as client:
            return await scenario_(client)

    return asyncio.run(run())


# --------------------------------------------------------------------------- rate limiting


def test_limiter_locks_out_after_max_failures_in_the_window_until_the_window_passes():
    clock = FakeClock()
    limiter = FailedAuthLimiter(3, 60.0, clock=clock)
    limiter.failed("10.0.0.1")
    clock.seconds += 30
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0  # two failures: not yet
    clock.seconds += 31  # the first failure has left the window
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0
    limiter.failed("10.0.0.1")  # three within 60 s
    assert limiter.retry_after("10.0.0.1") == pytest.approx(60.0)
    assert limiter.retry_after("10.0.0.2") == 0  # per address
    clock.seconds += 59.5
    assert limiter.retry_after("10.0.0.1") == pytest.approx(0.5)
    clock.seconds += 0.5
    assert limiter.retry_after("10.0.0.1") == 0
    limiter.failed("10.0.0.1")  # a clean slate after the lock: one failure does not lock again
    assert limiter.retry_after("10.0.0.1") == 0


def test_limiter_memory_is_bounded_and_zero_failures_turns_it_off():
    clock = FakeClock()
    limiter = FailedAuthLimiter(2, 60.0, clock=clock, max_clients=100)
    for n in range(1000):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    assert limiter.tracked() == 100
    # The most recent addresses are the ones kept.
    limiter.failed("10.0.3.231")  # n = 999: its second failure
    assert limiter.retry_after("10.0.3.231") == pytest.approx(60.0)
    limiter.failed("10.0.0.0")  # n = 0 was forgotten: this is its first failure again
    assert limiter.retry_after("10.0.0.0") == 0

    off = FailedAuthLimiter(0, 60.0, clock=clock)
    for _ in range(50):
        off.failed("10.0.0.1")
    assert off.retry_after("10.0.0.1") == 0 and off.tracked() == 0


def test_settings_read_the_limits_from_the_environment():
    settings = Settings.from_env(
        {"TERRITORY_AUTH_MAX_FAILURES": "4", "TERRITORY_AUTH_WINDOW_S": "12.5", "TERRITORY_BIND_ADDRESS": "0.0.0.0"}
    )
    assert (settings.auth_max_failures, settings.auth_window_s, settings.bind_address) == (4, 12.5, "0.0.0.0")
    assert (Settings().auth_max_failures, Settings().auth_window_s, Settings().bind_address) == (10, 60.0, "127.0.0.1")


def test_api_answers_429_after_failed_tokens_even_to_the_right_token_until_the_window_passes(tmp_path, proposal):
    store = new_store(tmp_path, proposal)
    approve_url = f"/api/proposals/{proposal['proposal_id']}/approve"
    body = {"by": "m.keller", "comment": "fair again"}
    clock = FakeClock()
    settings = Settings(
        api_token=WRITE_TOKEN, api_read_token=READ_TOKEN, web_port=0, auth_max_failures=4, auth_window_s=60.0
    )

    async def scenario_(client: TestClient) -> None:
        # Successes and a browser's first visit (no credentials at all) are not failures.
        for _ in range(6):
            assert (await client.get("/api/proposals", headers=bearer(READ_TOKEN))).status == 200
            assert (await client.get("/")).status == 401
        # Four failures of every kind: a wrong read token, no write token, a wrong one, a wrong login.
        assert (await client.get("/api/proposals", headers=bearer("guess-1"))).status == 401
        assert (await client.post(approve_url, json=body)).status == 401
        assert (await client.post(approve_url, json=body, headers=bearer("guess-2"))).status == 403
        assert (await client.post("/login", data={"token": "guess-3"}, allow_redirects=False)).status == 401

        # Locked out: the right tokens are not even checked.
        response = await client.post(approve_url, json=body, headers=bearer(WRITE_TOKEN))
        assert response.status == 429 and response.headers["Retry-After"] == "60"
        assert "too many failed authentication attempts" in (await response.json())["error"]
        assert (await client.get("/api/proposals", headers=bearer(READ_TOKEN))).status == 429
        assert (await client.post("/login", data={"token": READ_TOKEN}, allow_redirects=False)).status == 429
        assert store.proposal(proposal["proposal_id"]).status == "pending"
        # Health stays open: a probe behind the same address must not fail.
        assert (await client.get("/livez")).status == 200

        clock.seconds += 59
        response = await client.post(approve_url, json=body, headers=bearer(WRITE_TOKEN))
        assert response.status == 429 and response.headers["Retry-After"] == "1"
        clock.seconds += 1
        response = await client.post(approve_url, json=body, headers=bearer(WRITE_TOKEN))
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == "applied"

    with_client(store, settings, scenario_, clock)


# --------------------------------------------------------------------------- bound parameters

INJECTION = "x'); DROP TABLE proposals;--"
ACTOR = "robert'); DROP TABLE audit_log;--"
COMMENT = "ok\"; DELETE FROM moves WHERE '1'='1'; --"


def table_names(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_sql_looking_input_through_the_api_is_stored_verbatim_and_drops_nothing(tmp_path, proposal):
    hostile = {**proposal, "proposal_id": INJECTION}
    store = new_store(tmp_path, hostile)
    moves_before = len(store.moves(INJECTION))

    async def scenario_(client: TestClient) -> None:
        response = await client.get(f"/api/proposals/{quote(INJECTION, safe='')}")
        assert response.status == 200 and (await response.json())["proposal_id"] == INJECTION
        assert (await client.get(f"/api/proposals/{quote(INJECTION + ' OR 1=1', safe='')}")).status == 404
        response = await client.get("/api/proposals", params={"status": "pending' OR '1'='1"})
        assert response.status == 400
        response = await client.post(
            f"/api/proposals/{quote(INJECTION, safe='')}/approve",
            json={"by": ACTOR, "comment": COMMENT},
            headers=bearer(WRITE_TOKEN),
        )
        assert response.status == 200, await response.text()

    with_client(store, Settings(api_token=WRITE_TOKEN, web_port=0), scenario_)
    row = store.proposal(INJECTION)
    assert (row.status, row.decided_by, row.decision_comment) == ("applied", ACTOR, COMMENT)
    assert [(a.actor, a.action, a.comment) for a in store.audit(INJECTION) if a.action == "approved"] == [
        (ACTOR, "approved", COMMENT)
    ]
    assert len(store.moves(INJECTION)) == moves_before > 0
    assert TABLES <= table_names(store)


def test_sql_looking_input_to_the_store_matches_nothing_and_drops_nothing(tmp_path, proposal):
    store = new_store(tmp_path, proposal)
    assert store.proposals("pending' OR '1'='1") == []
    assert store.proposal("' OR '1'='1") is None
    assert store.audit("' OR '1'='1") == []
    assert store.moves("' OR '1'='1") == []
    assert store.erase_account("a2' OR '1'='1") == {"moves": 0, "proposals_scrubbed": 0, "signals_scrubbed": 0}
    assert len(store.moves(proposal["proposal_id"])) == len(proposal["moves"])
    assert TABLES <= table_names(store)


SQL_CALLS = {"text", "execute", "exec_driver_sql", "executescript", "executemany"}


def _built_string(node: ast.AST) -> bool:
    """An expression that builds a string from values: an f-string with fields, `%`, `+`
    or `.format(...)`."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return any(
            isinstance(side, ast.Constant) and isinstance(side.value, str) or _built_string(side)
            for side in (node.left, node.right)
        )
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def dynamic_sql(source: str, filename: str = "<source>") -> list[str]:
    """Calls of text()/execute()/... whose SQL is built from values (file:line)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name in SQL_CALLS and _built_string(node.args[0]):
            found.append(f"{filename}:{node.lineno}")
    return found


def test_the_scan_finds_sql_built_from_values():
    bad = (
        "text(f\"SELECT * FROM p WHERE id = '{pid}'\")\n"
        "conn.execute(\"DELETE FROM p WHERE id = '%s'\" % pid)\n"
        'session.execute("SELECT {}".format(pid))\n'
        'conn.exec_driver_sql("DROP TABLE " + name)\n'
    )
    assert len(dynamic_sql(bad)) == 4
    good = 'text("SELECT 1")\nconn.execute(select(t).where(t.c.id == pid))\nconn.execute(text("SELECT :x"), {"x": f"{v}"})\n'
    assert dynamic_sql(good) == []


def test_no_sql_is_built_from_values_in_the_service_code():
    files = sorted({*ROOT.glob("alerts/**/*.py"), *ROOT.glob("territory/*.py"), *ROOT.glob("monitor/*.py")})
    assert len(files) > 20
    found = [hit for path in files for hit in dynamic_sql(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


# --------------------------------------------------------------------------- no secret in the log

SECRETS = {
    "TERRITORY_API_TOKEN": "apitoken-Q7vX2mK9pL4s",
    "TERRITORY_API_READ_TOKEN": "readtoken-Z3nB8wR1tY6u",
    "TERRITORY_WEBHOOK_SECRET": "hooksecret-H5jD0cF7gV2e",
    "TERRITORY_SMTP_PASSWORD": "smtppass-K8mN3bX6zQ1w",
    "TERRITORY_PSEUDONYM_KEY": "pseudokey-P2rT9yU4iO7a",
}
HOOK_PASSWORD = "hookpass-W4eR7tY1uI9o"
HOOK_QUERY_TOKEN = "hookquery-A6sD9fG2hJ5k"
ALERTMANAGER_PASSWORD = "ampass-L1kJ4hG7fD0s"


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:  # a redirect is the answer itself
        return None


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    data: bytes | None = None,
    content_type: str = "application/json",
) -> int:
    headers = {"Content-Type": content_type, **(bearer(token) if token else {})}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.build_opener(NoRedirects).open(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).read()
        return True
    except OSError:
        return False


def events_taken(metrics_url: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "territory_intake_events_total"
    )


@pytest.mark.slow
def test_worker_serves_on_its_bind_address_and_logs_no_secret(broker, start_worker):
    # 127.0.0.2: a loopback address other than the default, so the setting is seen to work.
    host, web_port, closed_port = "127.0.0.2", free_port(), free_port()  # nothing listens on closed_port
    worker = start_worker(
        **SECRETS,
        TERRITORY_BIND_ADDRESS=host,
        TERRITORY_WEB_PORT=str(web_port),
        TERRITORY_WARMUP_DAYS="60",
        TERRITORY_POTENTIAL="trailing",
        TERRITORY_PLANNER_INTERVAL_S="0.3",
        TERRITORY_ALERT_SINKS="kafka,log,webhook,alertmanager,smtp",
        TERRITORY_ALERT_RETRY_MAX_S="2",
        TERRITORY_WEBHOOK_URL=f"http://hookuser:{HOOK_PASSWORD}@127.0.0.1:{closed_port}/hook?token={HOOK_QUERY_TOKEN}",
        TERRITORY_ALERTMANAGER_URL=f"http://am:{ALERTMANAGER_PASSWORD}@127.0.0.1:{closed_port}",
        TERRITORY_SMTP_PORT=str(closed_port),
        TERRITORY_SMTP_USER="mailer",
        TERRITORY_SMTP_TO="ops@example.com",
    )
    web, metrics = f"http://{host}:{web_port}", f"http://{host}:{worker.metrics_port}/metrics"
    wait_for(lambda: answers(f"{web}/livez") and answers(metrics), 90, f"the worker's ports on {host}")
    assert not answers(f"http://127.0.0.1:{web_port}/livez")
    assert not answers(f"http://127.0.0.1:{worker.metrics_port}/metrics")

    # A proposal and its alert, which every outside sink fails to deliver (and logs). As in
    # tests/test_end_to_end.py: the history first, then an activity past the warm-up.
    history = scenario()
    produce(broker.bootstrap_servers, history)
    wait_for(lambda: events_taken(metrics) == len(history), 90, f"the worker to take all {len(history)} messages")
    produce(
        broker.bootstrap_servers,
        [
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
        ],
    )
    store = Store(worker.db_url)
    wait_for(lambda: store.proposals("pending"), 120, "a pending proposal")
    wait_for(
        lambda: all(f"to {sink} failed" in worker.log() for sink in ("webhook", "alertmanager", "smtp")),
        60,
        "failed deliveries in the log",
    )

    # Failed and successful API calls with every token.
    pid = quote(store.proposals("pending")[0].proposal_id, safe="")
    decision = json.dumps({"by": "m.keller", "comment": "fair again"}).encode()
    assert http("POST", f"{web}/api/proposals/{pid}/approve", token="wrong-token", data=decision) == 403
    assert http("GET", f"{web}/api/proposals", token="wrong-read-token") == 401
    assert http("GET", f"{web}/api/proposals", token=SECRETS["TERRITORY_API_READ_TOKEN"]) == 200
    assert (
        http(
            "POST",
            f"{web}/login",
            data=f"token={SECRETS['TERRITORY_API_READ_TOKEN']}".encode(),
            content_type="application/x-www-form-urlencoded",
        )
        == 303
    )
    assert http("POST", f"{web}/api/proposals/{pid}/approve", token=SECRETS["TERRITORY_API_TOKEN"], data=decision) in (
        200,
        202,
    )
    worker.stop()

    log = worker.log()
    assert "to webhook failed" in log and "http://***@127.0.0.1" in log  # the failures are logged, redacted
    basic = base64.b64encode(f"hookuser:{HOOK_PASSWORD}".encode()).decode()
    leaked = [s for s in [*SECRETS.values(), HOOK_PASSWORD, HOOK_QUERY_TOKEN, ALERTMANAGER_PASSWORD, basic] if s in log]
    assert leaked == [], log[-3000:]
    # The delivery errors kept in the outbox are redacted too.
    with store.engine.connect() as connection:
        errors = " ".join(e or "" for e in connection.exec_driver_sql("SELECT last_error FROM deliveries").scalars())
    assert "127.0.0.1" in errors
    assert not [s for s in (HOOK_PASSWORD, HOOK_QUERY_TOKEN, ALERTMANAGER_PASSWORD) if s in errors]
