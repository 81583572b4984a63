"""deploy/prometheus/: promtool checks the config and rules and runs the rules' unit tests;
a real Prometheus (Debian's package) scrapes a real worker and answers queries on its API."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from core import topics
from territory.broker import die_with_parent, free_port
from tests.kafka_io import produce, wait_for
from tests.services import INSTALL_HINT, _stop, wait_http
from tests.test_end_to_end import REPS, envelope, scenario

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "prometheus"
CONFIG = DEPLOY / "prometheus.yml"
RULES = DEPLOY / "rules" / "territory.rules.yml"
RULE_TESTS = DEPLOY / "tests" / "territory.rules.test.yml"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"

ALERTS = [
    "TerritoryWorkerDown",
    "TerritoryNotReady",
    "TerritoryConsumerLagGrowing",
    "TerritoryDeadLetterRateHigh",
    "TerritoryAlertSinkFailing",
    "TerritoryPlannerErrors",
    "TerritoryImbalanceAboveBand",
    "TerritoryStoreUnavailable",
]


def _binary(path: str) -> str:
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is missing (Debian's `prometheus` package); {INSTALL_HINT}")
    return path


def _promtool(*args: str) -> str:
    result = subprocess.run([_binary(PROMTOOL), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


# ---------------------------------------------------------------------------- promtool


def test_promtool_check_config() -> None:
    output = _promtool("check", "config", str(CONFIG.relative_to(ROOT)))
    assert "SUCCESS: 1 rule files found" in output, output


def test_promtool_check_rules() -> None:
    output = _promtool("check", "rules", str(RULES.relative_to(ROOT)))
    assert "SUCCESS" in output, output


def test_promtool_test_rules() -> None:
    output = _promtool("test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert "SUCCESS" in output, output


def test_every_alert_is_unit_tested_and_has_its_runbook_anchor() -> None:
    rules, tests = RULES.read_text(), RULE_TESTS.read_text()
    defined = re.findall(r"^\s*- alert: (\w+)", rules, re.M)
    assert sorted(defined) == sorted(ALERTS)
    for name in ALERTS:
        assert f"docs/OPERATIONS.md#{name.lower()}" in rules, name
        # At least one case where it fires (exp_alerts with labels) and one where it does not.
        cases = re.findall(rf"alertname: {name}\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\n|\Z)", tests, re.S)
        assert any("exp_labels" in case for case in cases), f"{name} never shown firing"
        assert any(case.strip().startswith("[]") for case in cases), f"{name} never shown quiet"


# ---------------------------------------------------------------------------- real Prometheus


def _config_for(target: str, rules_dir: Path) -> str:
    """The project's prometheus.yml, pointed at `target`, scraping and evaluating every second."""
    text = CONFIG.read_text()
    replacements = [
        ('"127.0.0.1:9464"', f'"{target}"'),
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("rules/*.rules.yml", f"{rules_dir}/*.rules.yml"),
        # No Alertmanager in this test: a port nobody listens on (sending just fails quietly).
        ('"127.0.0.1:9093"', f'"127.0.0.1:{free_port()}"'),
    ]
    for old, new in replacements:
        assert old in text, f"{old!r} not in {CONFIG}: update this test with the config"
        text = text.replace(old, new)
    return text


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _values(base: str, promql: str, by: str | None = None) -> dict[str, float]:
    """{label `by` (or "") -> value} of an instant query."""
    return {sample["metric"].get(by, "") if by else "": float(sample["value"][1]) for sample in _query(base, promql)}


@pytest.mark.slow
def test_real_prometheus_scrapes_the_worker_and_evaluates_the_rules(broker, start_worker) -> None:
    prometheus = _binary(PROMETHEUS)
    worker = start_worker(
        TERRITORY_WARMUP_DAYS="60", TERRITORY_POTENTIAL="trailing", TERRITORY_PLANNER_INTERVAL_S="0.3"
    )
    messages = scenario()
    produce(broker.bootstrap_servers, messages)
    wait_for(
        lambda: worker.metric("territory_intake_events_total") == len(messages),
        90,
        f"the worker to take all {len(messages)} messages",
    )
    # Past the 60-day warm-up: the planner judges balance and sets the per-rep shares.
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
    wait_for(lambda: worker.metric("territory_rep_fair_share_ratio") > 0.99, 60, "the planner's fair shares")

    workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(_config_for(f"127.0.0.1:{worker.metrics_port}", RULES.parent))
    log_path = workdir / "prometheus.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            preexec_fn=die_with_parent,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/-/ready", 60, process, log_path)

        def log() -> str:
            return log_path.read_text(errors="replace")[-3000:]

        def queried(promql: str, condition, by: str | None = None) -> dict[str, float]:
            deadline = time.monotonic() + 60
            while True:
                values = _values(base, promql, by=by)
                if values and condition(values):
                    return values
                if time.monotonic() > deadline:
                    raise AssertionError(f"{promql}: {values} after 60 s\n{log()}")
                time.sleep(0.5)

        # The scrape: the worker target is up.
        queried('up{job="territory-worker"}', lambda v: v[""] == 1)

        # Intake counters with the values the worker took.
        by_outcome = queried(
            'sum by (outcome) (territory_intake_events_total{job="territory-worker"})',
            lambda v: sum(v.values()) > 0,
            by="outcome",
        )
        assert sum(by_outcome.values()) == worker.metric("territory_intake_events_total") >= len(messages)
        assert by_outcome["duplicate"] == 1 and by_outcome["deadlettered"] == 2

        # Per-rep gauges: fair shares over the three reps sum to 1, A holds half the potential.
        fair = queried(
            'territory_rep_fair_share_ratio{job="territory-worker"}', lambda v: set(v) == set(REPS), by="rep"
        )
        assert sum(fair.values()) == pytest.approx(1.0, abs=1e-6)
        share = _values(base, 'territory_rep_potential_share_ratio{job="territory-worker"}', by="rep")
        assert share["A"] == pytest.approx(0.5, abs=1e-6)
        imbalance = _values(base, 'territory_territory_imbalance_ratio{job="territory-worker"}')[""]
        assert imbalance == pytest.approx(0.5, abs=1e-3)

        # The recording rules evaluate against the real series.
        deviation = queried("territory:rep_deviation:ratio", lambda v: set(v) == set(REPS), by="rep")
        assert deviation["A"] == pytest.approx(0.5, abs=1e-3)
        assert max(deviation.values()) == pytest.approx(imbalance, abs=1e-6)
        rates = [s["metric"]["outcome"] for s in _samples(base, "territory:intake_events:rate5m", log)]
        assert {"applied", "duplicate", "deadlettered"} <= set(rates)

        # The rules loaded without errors; the imbalance alert is pending (its `for` is an hour).
        groups = json.loads(urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5).read())["data"]["groups"]
        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert all(rule["health"] != "err" for rule in rules.values()), [
            (name, rule.get("lastError")) for name, rule in rules.items() if rule["health"] == "err"
        ]
        assert set(ALERTS) <= set(rules)
        wait_for(
            lambda: _alert_state(base, "TerritoryImbalanceAboveBand") == "pending",
            30,
            "TerritoryImbalanceAboveBand pending",
        )
        assert _alert_state(base, "TerritoryWorkerDown") is None

        # Readiness, build info and consumer lag (and its recording rule) as Prometheus sees them.
        queried('territory_worker_ready{job="territory-worker"}', lambda v: v[""] == 1)
        build = _samples(base, 'territory_build_info{job="territory-worker"}', log)
        assert [float(s["value"][1]) for s in build] == [1.0] and build[0]["metric"]["version"], build
        lag = queried("territory:intake_lag_messages:sum", lambda v: topics.ORDERS in v, by="topic")
        assert all(value >= 0 and not math.isnan(value) for value in lag.values()), lag
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _samples(base: str, promql: str, log, timeout_s: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        samples = _query(base, promql)
        if samples:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql}: no samples after {timeout_s:.0f} s\n{log()}")
        time.sleep(0.5)


def _alert_state(base: str, name: str) -> str | None:
    alerts = json.loads(urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5).read())["data"]["alerts"]
    states = [alert["state"] for alert in alerts if alert["labels"]["alertname"] == name]
    return states[0] if states else None
