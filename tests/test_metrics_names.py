"""The worker's metric names, types and labels (what deploy/prometheus and
deploy/grafana query), and the dispatcher's delivery counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from alerts.alert import Alert
from alerts.dispatch import Dispatcher, MemoryOutbox
from alerts.sinks import SinkError
from core.clock import ManualClock
from core.metrics import Metrics, package_version

# name (as exposed, without _total/_bucket suffixes) -> (type, label names)
EXPECTED = {
    "territory_intake_lag_messages": ("gauge", {"topic", "partition"}),
    "territory_intake_processing_seconds": ("histogram", set()),
    "territory_planner_lag_messages": ("gauge", {"partition"}),
    "territory_detector_out_of_band": ("gauge", {"kind"}),
    "territory_rebalancer_moves": ("histogram", set()),
    "territory_store_proposals": ("gauge", {"state"}),
    "territory_alerts_deliveries": ("counter", {"sink", "outcome"}),
    "territory_alerts_outbox_pending": ("gauge", set()),
    "territory_build_info": ("gauge", {"version", "python"}),
    "territory_worker_ready": ("gauge", set()),
    "territory_store_errors": ("counter", {"operation"}),
    "territory_worker_assigned_partitions": ("gauge", {"role"}),
    "territory_worker_leader": ("gauge", set()),
    "territory_rep_quota_attainment_ratio": ("gauge", {"rep"}),
    "territory_rep_quota_pace_ratio": ("gauge", {"rep"}),
}


def families(metrics: Metrics) -> dict:
    text = generate_latest(metrics.registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def exercised() -> Metrics:
    metrics = Metrics.create()
    metrics.intake_lag.labels("territory.orders", "0").set(3)
    metrics.intake_processing_seconds.observe(0.2)
    metrics.planner_lag.labels("0").set(5)
    metrics.out_of_band.labels("imbalance").set(2)
    metrics.rebalancer_moves.observe(4)
    metrics.store_proposals.labels("pending").set(1)
    metrics.deliveries.labels("log", "sent").inc()
    metrics.outbox_pending.set(0)
    metrics.worker_ready.set(1)
    metrics.store_errors.labels("storing a signal").inc()
    metrics.assigned_partitions.labels("intake").set(12)
    metrics.leader.set(1)
    metrics.rep_quota_attainment.labels("R1").set(0.31)
    metrics.rep_quota_pace.labels("R1").set(0.92)
    return metrics


def test_every_new_metric_is_exposed_with_its_type_and_labels():
    found = families(exercised())
    for name, (kind, labels) in EXPECTED.items():
        assert name in found, f"{name} missing from /metrics"
        family = found[name]
        assert family.type == kind, (name, family.type)
        own = [s for s in family.samples if not s.name.endswith("_created")]
        assert own, name
        for sample in own:
            assert set(sample.labels) - {"le"} == labels, (name, sample.labels)
    # Prometheus conventions: counters end in _total, durations in _seconds, no account ids.
    text = generate_latest(exercised().registry).decode()
    assert "territory_alerts_deliveries_total{" in text
    assert "account" not in "".join(" ".join(labels) for _, labels in EXPECTED.values())


def test_histogram_buckets():
    found = families(exercised())
    moves = sorted(
        float(s.labels["le"]) for s in found["territory_rebalancer_moves"].samples if s.name.endswith("_bucket")
    )
    assert moves == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, float("inf")]
    seconds = sorted(
        float(s.labels["le"])
        for s in found["territory_intake_processing_seconds"].samples
        if s.name.endswith("_bucket")
    )
    assert seconds[0] == 0.01 and seconds[-2] == 300 and seconds[-1] == float("inf")


def test_build_info_is_one_with_the_package_version():
    found = families(Metrics.create())
    (sample,) = found["territory_build_info"].samples
    assert sample.value == 1
    assert sample.labels["version"] == package_version() != ""
    assert sample.labels["python"].startswith("3.")


def test_existing_names_are_kept():
    text = generate_latest(Metrics.create().registry).decode()
    for name in (
        "territory_intake_events_total",
        "territory_intake_held_events",
        "territory_rebalancer_solve_seconds",
        "territory_rebalancer_last_proposal_moves",
        "territory_alerts_alerts_total",
        "territory_planner_errors_total",
        "territory_territory_imbalance_ratio",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name


class Recorder:
    name = "ok"

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        self.sent.append(alert)


class Down:
    name = "down"

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        raise SinkError("down: connection refused")


def alert(key: str, summary: str = "A is over its band") -> Alert:
    return Alert(
        key=key,
        status="firing",
        severity="warning",
        summary=summary,
        description="",
        labels={"kind": "imbalance"},
        annotations={},
        body={},
        starts_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
    )


def test_a_dispatcher_round_counts_deliveries_by_outcome():
    metrics = Metrics.create()
    clock = ManualClock(datetime.fromtimestamp(1000.0, timezone.utc))
    dispatcher = Dispatcher(
        [Recorder(), Down()], MemoryOutbox(), throttle_s=0, retry_max_s=60, clock=clock, metrics=metrics
    )
    dispatcher.submit(alert("k1"))
    dispatcher.submit(alert("k2"))
    report = dispatcher.deliver_due()
    assert (report.sent, report.failed) == (2, 2)

    def count(sink: str, outcome: str) -> float | None:
        return metrics.registry.get_sample_value(
            "territory_alerts_deliveries_total", {"sink": sink, "outcome": outcome}
        )

    assert count("ok", "sent") == 2
    assert count("down", "failed") == 2  # one tried, one not tried because the sink was down
    assert metrics.registry.get_sample_value("territory_alerts_outbox_pending") == 2
    # The same content again: nothing new for the working sink, recorded as skipped.
    dispatcher.submit(alert("k1"))
    clock.advance(timedelta(seconds=1))
    dispatcher.deliver_due()
    assert count("ok", "skipped") == 1
    assert count("ok", "sent") == 2
