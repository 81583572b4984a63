"""The proposal store on SQLite: idempotent writes, superseding, erasure."""

from __future__ import annotations

from alerts.store import Store


def proposal(proposal_id: str, accounts: list[str]) -> dict:
    return {"proposal_id": proposal_id, "status": "optimal", "imbalance_before": 0.2, "imbalance_after": 0.05,
            "event_time": "2025-05-01T00:00:00+00:00", "trigger_signals": [],
            "moves": [{"account_id": a, "from_rep": "A", "to_rep": "B", "potential": 10.0, "workload": 0.0,
                       "reason": "test"} for a in accounts]}


def test_proposal_is_stored_once_and_newer_supersedes_older(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db' / 'store.db'}")
    store.create_schema()
    assert store.save_proposal(proposal("p1", ["a1"])) is True
    store.mark_alerted("p1")
    assert store.save_proposal(proposal("p1", ["a1"])) is False  # redelivered: no second alert
    assert store.save_proposal(proposal("p2", ["a2"])) is True
    assert {row.proposal_id: row.status for row in store.proposals()} == {"p1": "superseded", "p2": "pending"}


def test_unalerted_proposal_is_alerted_again_after_a_crash(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    store.save_proposal(proposal("p1", ["a1"]))
    assert store.save_proposal(proposal("p1", ["a1"])) is True


def test_erase_removes_moves_and_scrubs_payloads(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    store.save_proposal(proposal("p1", ["a1", "a2"]))
    store.save_signal({"signal_id": "s1", "kind": "coverage_gap", "state": "open", "severity": "critical",
                       "subject": {"type": "rep", "id": "C"}, "detected_at": "2025-05-01",
                       "evidence": {"account_ids": ["a1", "a3"]}})
    assert store.erase_account("a1") == {"moves": 1, "proposals_scrubbed": 1, "signals_scrubbed": 1}
    assert [m.account_id for m in store.moves("p1")] == ["a2"]
    assert [m["account_id"] for m in store.proposals()[0].payload["moves"]] == ["a2"]
    assert store.signals()[0].payload["evidence"]["account_ids"] == ["a3"]
    assert store.erase_account("a1") == {"moves": 0, "proposals_scrubbed": 0, "signals_scrubbed": 0}
