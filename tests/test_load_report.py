"""bench/load_report.py: the Targets section of docs/benchmarks/load.md judged from fabricated results."""

from __future__ import annotations

from typing import Any

from bench.load_report import render


def _run(workers: int, pipeline_over_peer: float, intake_over_peer: float, records_per_event: float) -> dict[str, Any]:
    """One run as bench/load.py's run_pipeline and throughput() leave it."""
    peer_rate = 1000.0
    return {
        "workers": workers,
        "events": 6000,
        "startup_s": 7.5,
        "first_event_s": 7.0,
        "timed_events": 5900,
        "intake_seconds": 2.0,
        "intake_events_per_s": intake_over_peer * peer_rate,
        "pipeline_seconds": 4.0,
        "pipeline_events_per_s": pipeline_over_peer * peer_rate,
        "events_per_worker": [6000 // workers] * workers,
        "cpu_seconds": [3.0] * workers,
        "cpu_seconds_per_1k_events": 0.5 * workers,
        "events_per_cpu_second": 2000.0 / workers,
        "planner_applied": round(records_per_event * 6000),
        "planner_records_per_event": records_per_event,
        "snapshots_on_state_topic": round(records_per_event * 6000),
        "orders_in_snapshots": 3000,
        "order_events": 3000,
        "committed_at_end": True,
        "rss_mib": [300.0] * workers,
        "raw_consume": {"messages": 6000, "seconds": 0.02, "events_per_s": 300000.0},
        "peer": {
            "events": 6000,
            "timed_events": 5950,
            "seconds": 5.95,
            "events_per_s": peer_rate,
            "cpu_seconds_per_1k_events": 0.9,
        },
        "pipeline_over_peer": pipeline_over_peer,
        "intake_over_peer": intake_over_peer,
        "produce_events_per_s": 50000.0,
        "pipeline_over_raw": round(pipeline_over_peer * peer_rate / 300000.0, 4),
    }


def _summary(median: float | None, samples: int) -> dict[str, Any]:
    return {"samples": samples, "median_s": median, "p99_s": median, "max_s": median}


def _results(
    *,
    pipeline_over_peer: float = 1.6,
    intake_over_peer: float = 2.5,
    two_over_one_per_cpu_second: float = 0.8,
    records_per_event: float = 0.4,
    rss_100k: float = 650.0,
    event_to_signal_median: float = 3.0,
) -> dict[str, Any]:
    return {
        "generated_at": "2026-01-01 00:00 UTC",
        "machine": {"arch": "x86_64", "cores": 2, "python": "3.11.7"},
        "command": "python bench/load.py",
        "seconds": 600,
        "throughput": {
            "events": 6000,
            "partitions": 4,
            "mean_message_bytes": 240.0,
            "workers_1": _run(1, pipeline_over_peer, intake_over_peer, records_per_event),
            "workers_2": _run(2, pipeline_over_peer * 0.9, intake_over_peer * 0.9, records_per_event),
            "two_over_one": 0.9,
            "two_over_one_per_cpu_second": two_over_one_per_cpu_second,
            "two_over_one_intake": 0.95,
        },
        "latency": {
            "accounts": 500,
            "events": 9000,
            "bulk_events": 4000,
            "live_events": 5000,
            "live_speed_days_per_s": 4.0,
            "live_events_per_s": 400.0,
            "signals": 4,
            "signal_kinds": {"imbalance": 3, "market_shock": 1},
            "signals_timed": 4,
            "signals_on_bulk_history": 0,
            "proposals": 1,
            "alerts": 1,
            "event_to_signal": _summary(event_to_signal_median, 4),
            "signal_to_alert_via_proposal": _summary(20.0, 1),
            "proposal_to_alert": _summary(2.0, 1),
            "signal_to_alert_outbox_log": _summary(None, 0),
        },
        "memory": {
            "orders_per_account": 2,
            "measured": [
                {"accounts": 0, "rss_mib": 250.0},
                {
                    "accounts": 10_000,
                    "events": 30_008,
                    "rss_mib": 350.0,
                    "ingest_seconds": 25.0,
                    "events_per_s": 1200.0,
                },
                {
                    "accounts": 100_000,
                    "events": 300_008,
                    "rss_mib": rss_100k,
                    "ingest_seconds": 270.0,
                    "events_per_s": 1000.0,
                },
            ],
            "mib_per_1k_accounts": 3.333,
            "extrapolated": [
                {"accounts": 1_000_000, "rss_mib": 3650.0, "basis": "linear from 10000 and 100000 accounts"}
            ],
        },
    }


def _targets(markdown: str) -> list[str]:
    section = markdown.split("## Targets\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("- ")]


def _target(markdown: str, start: str) -> str:
    found = [line for line in _targets(markdown) if line.startswith(f"- {start}")]
    assert len(found) == 1, (start, _targets(markdown))
    return found[0]


def test_targets_met() -> None:
    markdown = render(_results())
    assert _target(markdown, "pipeline >= 1.5 x the bare Faust peer").endswith(" - met")
    assert "1.6 (1 worker)" in _target(markdown, "pipeline >= 1.5")
    assert _target(markdown, "intake >= 2 x the bare Faust peer").endswith(" - met")
    assert _target(markdown, "two workers: events per worker CPU-second >= 0.75").endswith("0.8 - met")
    planner = _target(markdown, "the planner applies at most one record")
    assert "0.4 (1 worker), 0.4 (2 workers)" in planner and planner.endswith(" - met")
    assert _target(markdown, "memory at 100k accounts <= 700 MiB") == (
        "- memory at 100k accounts <= 700 MiB: 650.0 MiB (measured) - met"
    )
    assert _target(markdown, "event -> signal latency median <= 5 s").endswith("3 s (4 samples) - met")


def test_targets_missed() -> None:
    markdown = render(
        _results(
            pipeline_over_peer=1.2,
            intake_over_peer=1.9,
            two_over_one_per_cpu_second=0.6,
            records_per_event=1.2,
            rss_100k=705.5,
            event_to_signal_median=9.6,
        )
    )
    assert _target(markdown, "pipeline >= 1.5 x the bare Faust peer").endswith(
        "1.2 (1 worker), 1.08 (2 workers) - missed"
    )
    assert _target(markdown, "intake >= 2 x the bare Faust peer").endswith(" - missed")
    assert _target(markdown, "two workers: events per worker CPU-second").endswith("0.6 - missed")
    assert _target(markdown, "the planner applies at most one record").endswith(" - missed")
    assert _target(markdown, "memory at 100k accounts").endswith("705.5 MiB (measured) - missed")
    assert _target(markdown, "event -> signal latency median").endswith(" - missed")


def test_not_measured_is_na() -> None:
    markdown = render(_results())
    assert _target(markdown, "1M events replayed by one worker in <= 5 minutes") == (
        "- 1M events replayed by one worker in <= 5 minutes: not measured in this run - n/a"
    )
    one_million = _target(markdown, "memory at 1M accounts")
    assert "extrapolated" in one_million and "3,650.0 MiB" in one_million and one_million.endswith(" - n/a")


def test_memory_at_100k_extrapolated_is_labelled() -> None:
    results = _results()
    results["memory"]["measured"] = results["memory"]["measured"][:2]
    results["memory"]["extrapolated"].insert(
        0, {"accounts": 100_000, "rss_mib": 690.0, "basis": "linear from 2000 and 10000 accounts"}
    )
    line = _target(render(results), "memory at 100k accounts")
    assert "690.0 MiB (**extrapolated**, linear from 2000 and 10000 accounts)" in line and line.endswith(" - met")


def test_without_latency_and_memory() -> None:
    results = _results()
    del results["latency"], results["memory"]
    markdown = render(results)
    assert "## Latency" not in markdown and "## Memory" not in markdown
    assert _target(markdown, "pipeline >= 1.5").endswith(" - met")
    for start in ("memory at 100k accounts", "memory at 1M accounts", "event -> signal latency"):
        assert _target(markdown, start).endswith(": not measured in this run - n/a")


def test_only_latency() -> None:
    results = _results()
    del results["throughput"], results["memory"]
    markdown = render(results)
    assert "## Throughput" not in markdown
    assert _target(markdown, "pipeline >= 1.5").endswith(": not measured in this run - n/a")
    assert _target(markdown, "event -> signal latency").endswith(" - met")
    assert "ARCHITECTURE.md" not in markdown


def test_replay_is_judged_on_a_million_events_and_a_timeout_is_missed() -> None:
    label = "1M events replayed by one worker in <= 5 minutes"
    results = _results()
    results["replay"] = {**_run(1, 1.0, 2.0, 0.3), "events": 1_000_000, "seconds": 280.0, "accounts": 27_000}
    markdown = render(results)
    assert _target(markdown, label).endswith("1,000,000 events in 280 s - met")
    assert "## Replay of a history" in markdown and "27,000 accounts" in markdown
    results["replay"]["seconds"] = 301.0
    assert _target(render(results), label).endswith(" - missed")
    results["replay"] = {"events": 200_000, "seconds": 100.0}
    assert _target(render(results), label).endswith("(fewer events than the target) - n/a")
    results["replay"] = {"events": 1_000_000, "seconds": None, "timed_out_after_s": 1500, "progress": "intake 9/10"}
    assert _target(render(results), label).endswith("not done within 1,500 s (intake 9/10) - missed")
