"""On a real worker: /livez, /readyz, and the operations metrics
on /metrics; then the broker goes away and /readyz says so."""

from __future__ import annotations

import asyncio
import logging
import json
import signal
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts.store import Store
from alerts.web import READINESS, agent_problems, review_app, store_problems
from core.metrics import Metrics
from core import topics
from core.settings import Settings
from territory.broker import free_port
from tests.kafka_io import produce, wait_for
from tests.test_end_to_end import scenario


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def samples(port: int) -> list:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(port: int, name: str, **labels: str) -> float | None:
    found = [s.value for s in samples(port) if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found) if found else None


class FakeActor:
    def __init__(self, crashed: bool = False, done: bool = False):
        self.crashed, self.crash_reason = crashed, RuntimeError("boom") if crashed else None
        self.actor_task = FakeTask(done)


class FakeTask:
    def __init__(self, done: bool):
        self._done = done

    def done(self) -> bool:
        return self._done


class FakeAgent:
    def __init__(self, name: str, *actors: FakeActor):
        self.name, self._actors = name, set(actors)


class FakeApp:
    def __init__(self, *agents: FakeAgent):
        self.agents = {agent.name: agent for agent in agents}


def test_agent_problems_name_crashed_ended_and_missing_actors(caplog):
    app = FakeApp(
        FakeAgent("ok", FakeActor()),
        FakeAgent("crashed", FakeActor(crashed=True)),
        FakeAgent("ended", FakeActor(done=True)),
        FakeAgent("none"),
    )
    with caplog.at_level(logging.WARNING, logger="territory.review"):
        problems = agent_problems(app)
    assert set(problems) == {"agent:crashed", "agent:ended", "agent:none"}
    # /readyz is open to anyone: the category there, the crash reason in the log.
    assert problems["agent:crashed"] == "crashed"
    assert any("boom" in record.getMessage() for record in caplog.records)


def test_readyz_and_livez_on_the_review_app(tmp_path):
    from aiohttp.test_utils import TestClient, TestServer

    store = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    store.migrate()
    assert asyncio.run(store_problems(store)) == {}
    settings = Settings.from_env({})
    web_app = review_app(store, publisher=None, settings=settings)
    answers: list[dict] = [{}, {"agent:intake": "crashed: RuntimeError('boom')"}]

    async def readiness() -> dict:
        return answers.pop(0)

    web_app[READINESS] = readiness

    async def run() -> list[tuple[int, dict]]:
        async with TestClient(TestServer(web_app)) as client:
            results = []
            for path in ("/livez", "/readyz", "/readyz"):
                response = await client.get(path)
                results.append((response.status, await response.json()))
            return results

    (live, live_body), (ready, _), (not_ready, body) = asyncio.run(run())
    assert (live, live_body["status"]) == (200, "ok")
    assert ready == 200
    assert not_ready == 503 and body["not_ready"] == {"agent:intake": "crashed: RuntimeError('boom')"}


class FakeFaustApp:
    """What register_review needs of a Faust app: timers (not run here) and services."""

    def __init__(self) -> None:
        self.services: list[type] = []

    def timer(self, interval: float, name: str = "", on_leader: bool = False):
        return lambda function: function

    def service(self, cls: type) -> type:
        self.services.append(cls)
        return cls


def reachable(host: str, port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://{host}:{port}/livez", timeout=5).status == 200
    except OSError:
        return False


def test_review_and_metrics_servers_listen_on_the_bind_address(tmp_path):
    """TERRITORY_BIND_ADDRESS reaches both servers. 127.0.0.2 (loopback, never 0.0.0.0 in a
    test) differs from the default, so a server that ignored the setting would be seen."""
    from alerts.web import register_review

    store = Store(f"sqlite:///{tmp_path / 'territory.db'}")
    store.migrate()
    port = free_port()
    settings = Settings.from_env({"TERRITORY_BIND_ADDRESS": "127.0.0.2", "TERRITORY_WEB_PORT": str(port)})
    app = FakeFaustApp()
    register_review(app, store, settings)
    (server_class,) = app.services

    async def run() -> tuple[bool, bool]:
        server = server_class()
        await server.start()
        try:
            return (
                await asyncio.to_thread(reachable, "127.0.0.2", port),
                await asyncio.to_thread(reachable, "127.0.0.1", port),
            )
        finally:
            await server.stop()

    assert asyncio.run(run()) == (True, False)

    metrics_port = Metrics.create().serve(0, settings.bind_address)
    text = urllib.request.urlopen(f"http://127.0.0.2:{metrics_port}/metrics", timeout=5).read().decode()
    assert "territory_build_info" in text
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)


def test_out_of_band_counts_the_detectors_current_states():
    from planner.planner import Planner
    from core.settings import Settings

    planner = Planner(Settings())
    fair = {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}
    planner.detector("imbalance").update({"A": 0.40, "B": 0.10, "C": 0.25, "D": 0.25}, fair)
    planner.detector("workload_imbalance").update({"A": 0.30, "B": 0.24, "C": 0.23, "D": 0.23}, fair)
    assert planner.out_of_band() == {"imbalance": 2, "workload_imbalance": 1, "coverage_gap": 0}
    # Back in the leave band: the count falls (a signal-derived count would have to see a "cleared").
    planner.detector("imbalance").update(fair, fair)
    assert planner.out_of_band()["imbalance"] == 0


@pytest.mark.slow
def test_health_routes_and_operations_metrics(broker, start_worker):
    web_port = free_port()
    worker = start_worker(
        TERRITORY_WEB_PORT=str(web_port), TERRITORY_PLANNER_INTERVAL_S="0.3", TERRITORY_STOP_TIMEOUT_S="5"
    )
    messages = scenario()
    produce(broker.bootstrap_servers, messages)
    wait_for(
        lambda: worker.metric("territory_intake_events_total") == len(messages),
        90,
        f"the worker to take all {len(messages)} messages",
    )

    wait_for(lambda: get(web_port, "/livez")[0] == 200, 30, "/livez 200")
    wait_for(lambda: get(web_port, "/readyz")[0] == 200, 60, "/readyz 200")
    status, body = get(web_port, "/readyz")
    assert status == 200 and body["status"] == "ready", body

    port = worker.metrics_port
    # Lag is known (and >= 0) for every partition of every input topic once each was fetched.
    expected = {(topic, str(p)) for topic in topics.INPUT_TOPICS for p in range(broker.partitions)}

    def lags() -> dict:
        return {
            (s.labels["topic"], s.labels["partition"]): s.value
            for s in samples(port)
            if s.name == "territory_intake_lag_messages"
        }

    wait_for(lambda: set(lags()) >= expected, 30, "territory_intake_lag_messages for every input partition")
    assert all(lag >= 0 for lag in lags().values()), lags()
    wait_for(lambda: all(lags()[tp] == 0 for tp in expected), 30, "the lag to drop to 0 once all is read")
    # The planner's too: what it has applied of territory.state, against what is on it.
    wait_for(
        lambda: value(port, "territory_planner_lag_messages", partition="0") == 0,
        60,
        "territory_planner_lag_messages 0 once the planner applied all",
    )

    # Every applied message was timed from its record timestamp (deduplicated and dead-lettered ones too).
    assert value(port, "territory_intake_processing_seconds_count") >= len(messages) - 3
    assert value(port, "territory_intake_processing_seconds_sum") >= 0
    assert value(port, "territory_build_info") == 1
    wait_for(lambda: value(port, "territory_worker_ready") == 1, 30, "territory_worker_ready 1")
    wait_for(
        lambda: value(port, "territory_store_proposals", state="pending") is not None, 30, "territory_store_proposals"
    )
    assert value(port, "territory_alerts_outbox_pending") is not None

    # The broker goes away: the worker is alive but not ready, and says why.
    broker.stop()
    wait_for(lambda: get(web_port, "/readyz")[0] == 503, 60, "/readyz 503 without a broker")
    status, body = get(web_port, "/readyz")
    assert status == 503 and "broker" in body["not_ready"], body
    assert get(web_port, "/livez")[0] == 200
    wait_for(lambda: value(port, "territory_worker_ready") == 0, 30, "territory_worker_ready 0")

    # Stopped while the broker is away: the graceful stop cannot finish (Faust waits 60 s for its
    # consumer), so after TERRITORY_STOP_TIMEOUT_S the worker exits by itself, saying why.
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(40)
    assert time.monotonic() - started < 30, "the stop was not bounded"
    assert worker.process.returncode == 1
    assert "stopping took over 5 s" in worker.log()
