"""Fixtures that start real parts: the embedded broker, worker processes, and the store on
SQLite and on a private PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine

from alerts.schema import Base
from alerts.store import Store
from territory.broker import EmbeddedBroker, die_with_parent, free_port
from tests.kafka_io import metric_value
from tests.postgres import postgres_server


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker per test, with every topic of the contract (2 input partitions,
    or as many as `@pytest.mark.partitions(n)` says)."""
    marker = request.node.get_closest_marker("partitions")
    embedded = EmbeddedBroker(partitions=marker.args[0] if marker else 2, log_path=tmp_path / "broker.log")
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


#: Every worker a test started, for the failure report (`pytest_runtest_makereport`).
STARTED_WORKERS: list["WorkerProcess"] = []


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, metrics_port: int, db_url: str, log_path: Path):
        self.process = process
        self.metrics_port = metrics_port
        self.db_url = db_url
        self.log_path = log_path
        STARTED_WORKERS.append(self)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A metric from the worker's /metrics; fails at once if the worker died."""
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        return metric_value(self.metrics_port, name, labels)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def start_worker(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `territory worker` processes on the test's broker; all are stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(**env_overrides: str) -> WorkerProcess:
        index = len(started)
        metrics_port = free_port()
        db_url = f"sqlite:///{tmp_path / 'territory.db'}"
        env = {
            **os.environ,
            "TERRITORY_KAFKA_URL": broker.url,
            "TERRITORY_PARTITIONS": str(broker.partitions),
            "TERRITORY_DB_URL": db_url,
            "TERRITORY_METRICS_PORT": str(metrics_port),
            # Its own review page port: workers of parallel tests must not compete for 8088.
            "TERRITORY_WEB_PORT": str(free_port()),
            "TERRITORY_DATA_DIR": str(tmp_path / f"worker{index}"),
            "TERRITORY_APP_ID": "territory-test",
            **env_overrides,
        }
        log_path = tmp_path / f"worker{index}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "territory.cli", "worker"],
            env=env,
            stdout=open(log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        worker = WorkerProcess(process, metrics_port, db_url, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """An empty, migrated store on SQLite and on a private PostgreSQL (one cluster per module)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = create_engine(url)
        with engine.begin() as connection:  # each test starts from an empty database
            for table in ("alembic_version", *reversed([t.name for t in Base.metadata.sorted_tables])):
                connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        engine.dispose()
    store = Store(url)
    store.migrate()
    yield store
    store.engine.dispose()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that ran workers or a broker shows the end of their logs: a timeout on a
    slower machine is then explained by what the worker was doing."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    live = [worker for worker in STARTED_WORKERS if worker.process.poll() is None]
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and tmp_path is not None:
        for log_path in sorted(tmp_path.glob("worker*.log")) + sorted(tmp_path.glob("broker.log")):
            lines = log_path.read_text(errors="replace").splitlines()
            report.sections.append((f"{log_path.name} (last 60 of {len(lines)} lines)", "\n".join(lines[-60:])))
    if report.failed:
        # SIGUSR1: the worker logs where each of its asyncio tasks waits (territory.worker).
        for worker in live:
            os.kill(worker.process.pid, signal.SIGUSR1)
        if live:
            time.sleep(2)
        for worker in live:
            text = worker.log()
            at = text.rfind("asyncio tasks (SIGUSR1):")
            if at >= 0:
                report.sections.append((f"{worker.log_path.name}: task stacks", text[at:][:60000]))
    STARTED_WORKERS[:] = live
