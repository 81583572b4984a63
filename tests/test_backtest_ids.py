"""Refactoring keeps decisions: the backtest of a recorded simulator file gives the recorded
signal and proposal ids (ids derive from kind, subject, state, evidence and moment, so any
change in what is found, or when, changes them). Re-record with tests/data/backtest/record.py
only for an intended change of behaviour."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from core.settings import Settings
from territory.backtest import read_events, run_backtest

# Backtests of a recorded company: the full suite's, not `make test-fast`'s.
pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data" / "backtest"


def test_backtest_of_the_recorded_file_gives_the_recorded_signal_and_proposal_ids(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(gzip.decompress((DATA / "events.jsonl.gz").read_bytes()))
    expected = json.loads((DATA / "ids.json").read_text(encoding="utf-8"))

    result = run_backtest(read_events(events), Settings())

    assert [f"{s['signal_id']} {s['kind']}:{s['state']}" for s in result.signals] == expected["signals"]
    assert [p["proposal_id"] for p in result.proposals] == expected["proposals"]
    # The file exercises every kind a balance, a market and a rep leaving produce.
    kinds = {line.split()[1].split(":")[0] for line in expected["signals"]}
    assert {"imbalance", "market_shock", "coverage_gap"} <= kinds


def test_the_signals_do_not_depend_on_how_often_the_planner_judges(tmp_path):
    """A live worker judges whenever a batch arrives, a backtest once a day: days and months
    are judged in event-time order either way (a shock followed in the month its day completes
    in), so the signals are the same. Only a coverage gap is dated by the judgement itself."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(gzip.decompress((DATA / "events.jsonl.gz").read_bytes()))

    def found(every: int) -> list[tuple[str, str, str, str]]:
        signals = run_backtest(read_events(events), Settings(), judge_every_days=every).signals
        return sorted(
            (s["kind"], s["subject"]["id"], s["state"], "" if s["kind"] == "coverage_gap" else s["detected_at"])
            for s in signals
        )

    daily = found(1)
    assert {kind for kind, *_ in daily} >= {"imbalance", "market_shock", "local_shock", "coverage_gap"}
    assert found(13) == daily
