"""A restore asked for on the review page, through the real pipeline: broker -> worker -> a
proposal, approved and applied on the worker's page; then "Propose restoring this alignment"
for the baseline (POST /alignment/ID/restore): the worker publishes it, alerts it like any
pending proposal, and approving it gives an "applied ..., restores #N" snapshot and the old
owners back in the worker's state."""

from __future__ import annotations

import http.client
import json
import urllib.request
from typing import Any, Iterable

import pytest

from alerts.store import Store
from core import topics
from territory.broker import free_port
from tests.kafka_io import read_topic, wait_for
from tests.test_end_to_end import ACCOUNTS, judged_scenario
from tests.test_review_web import healthy, pending, post

pytestmark = pytest.mark.slow

TOKEN = "restore-live-token-41aa"


def post_without_following(port: int, path: str, body: dict[str, Any], token: str) -> tuple[int, str, dict]:
    """A POST whose redirect is not followed: the status, its Location and the JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", json.loads(response.read() or b"{}")
    finally:
        connection.close()


def owners(store: Store, account_ids: Iterable[str]) -> dict[str, str | None]:
    """The owners the worker has reported so far, by account (an unreported one is absent)."""
    return {a: o.rep_id for a, o in store.known_owners(account_ids).items()}


def test_a_restore_asked_on_the_page_is_alerted_and_its_approval_restores_the_owners(broker, start_worker):
    port = free_port()
    worker, proposal = judged_scenario(
        broker,
        start_worker,
        lambda topic, value: None,
        TERRITORY_WEB_PORT=str(port),
        TERRITORY_API_TOKEN=TOKEN,
    )
    base = f"http://127.0.0.1:{port}"
    pid, moves = proposal["proposal_id"], {m["account_id"]: m for m in proposal["moves"]}
    store = Store(worker.db_url)
    wait_for(lambda: [r.proposal_id for r in pending(store)] == [pid], 30, "the stored proposal")
    wait_for(lambda: healthy(base), 30, f"the review page on {base}\n{worker.log()[-3000:]}")

    # Approved and applied on the worker's page; the worker reports the new owners.
    status, body = post(f"{base}/api/proposals/{pid}/approve", {"by": "m.keller", "comment": "fair again"}, TOKEN)
    assert (status, body["status"]) == (200, "applied"), body
    # Every moved account reported with its new owner: an account not reported yet must not
    # pass (the restore's approval would then meet the old owner, still on its way).
    wait_for(
        lambda: owners(store, moves) == {a: m["to_rep"] for a, m in moves.items()},
        60,
        "the worker to report the approved owners",
    )
    baseline = store.alignment_snapshots()[0]
    assert baseline.reason == "baseline"

    # The page's restore form for the baseline.
    with urllib.request.urlopen(f"{base}/alignment", timeout=30) as response:
        assert f'data-restore="/alignment/{baseline.id}/restore"' in response.read().decode()
    status, location, body = post_without_following(
        port, f"/alignment/{baseline.id}/restore", {"by": "j.doe", "comment": "undo the spring moves"}, TOKEN
    )
    assert status == 303 and body["published"] is True, body
    rid = body["proposal_id"]
    assert location == f"/proposals/{rid}" and rid.startswith(f"prop-restore-{baseline.id}-")
    restore = store.proposal(rid)
    assert restore.status == "pending" and restore.payload["mode"] == "restore"
    assert {(m.account_id, m.from_rep, m.to_rep) for m in store.moves(rid)} == {
        (a, m["to_rep"], m["from_rep"]) for a, m in moves.items()
    }

    # Alerted like any pending proposal: on territory.alerts, marked alerted in the store.
    alerts = read_topic(
        broker.bootstrap_servers,
        topics.ALERTS,
        until=lambda found: any(a.get("proposal_id") == rid for a in found),
        timeout_s=30,
    )
    alert = next(a for a in alerts if a.get("proposal_id") == rid)
    assert len(alert["lines"]) == len(moves)
    wait_for(lambda: store.proposal(rid).alerted_at is not None, 20, "the restore marked alerted")

    # Approved like any proposal: the snapshot says what it restores, and the owners go back.
    status, body = post(f"{base}/api/proposals/{rid}/approve", {"by": "r.boss", "comment": "agreed"}, TOKEN)
    assert (status, body.get("status")) == (200, "applied"), (status, body)
    latest = store.alignment_snapshots()[-1]
    assert latest.reason == f"applied {rid}, restores #{baseline.id}"
    assert [c for c in store.alignment_diff(baseline.id, latest.id) if c.kind == "moved"] == []
    wait_for(
        lambda: owners(store, ACCOUNTS) == {a: owner for a, (owner, _, _) in ACCOUNTS.items()},
        60,
        f"the worker to report the restored owners\n{worker.log()[-3000:]}",
    )
