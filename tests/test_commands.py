"""The command line as a user runs it: `territory broker` and `territory demo`, as processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from core import topics
from territory.broker import die_with_parent, free_port
from tests import records

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a parent that is gone) counts as dead.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _list_topics(bootstrap: str) -> list[str]:
    async def run() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return await admin.list_topics()
        finally:
            await admin.close()

    return asyncio.run(run())


def test_broker_command_serves_the_contract_topics_and_stops_on_ctrl_c():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "territory.cli", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        lines = [process.stdout.readline() for _ in range(2)]  # a log line, then the address
        assert f"broker ready: kafka://127.0.0.1:{port}" in lines[-1], lines
        names = set(_list_topics(f"127.0.0.1:{port}"))
        assert set(topics.INPUT_TOPICS) | set(topics.OUTPUT_TOPICS) <= names
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # the CLI stops its broker child on the way out
            process.wait(15)


def test_demo_prints_a_proposal_with_moves_and_leaves_no_process(tmp_path):
    env = {**os.environ, "TERRITORY_DATA_DIR": str(tmp_path), "TERRITORY_METRICS_PORT": "0"}
    env.pop("TERRITORY_DB_URL", None)
    env.pop("TERRITORY_KAFKA_URL", None)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "territory.cli",
            "demo",
            "--accounts",
            "1500",
            "--days-per-second",
            "30",
            # 17 months: a year of warm-up and the first proposals (the full 24 are bench/demo.py's).
            "--months",
            "17",
            "--max-seconds",
            "300",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
        preexec_fn=die_with_parent,  # the demo runs a broker and a worker of its own
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"^SIGNAL .* imbalance: R\d+ is (under|over)", output, re.MULTILINE), output[-4000:]
    proposal = re.search(r"^PROPOSAL proposal (prop-\w+): move (\d+) accounts?", output, re.MULTILINE)
    assert proposal and int(proposal.group(2)) >= 1, output[-4000:]
    assert re.search(r"move account A\d+ .* from R\d+ to R\d+", output)
    assert f"ALERT    proposal {proposal.group(1)}" in output
    assert "produced" in output and "worker took" in output  # progress was shown
    assert time.monotonic() - started < 400
    # Nothing left behind: the worker and the broker it started are gone.
    worker_pid = int(re.search(r"worker pid (\d+)", output).group(1))
    broker_pid = int(re.search(r"embedded broker pid (\d+)", output).group(1))
    assert not _alive(worker_pid) and not _alive(broker_pid)
    assert (tmp_path / "demo.db").exists()
    for picture in ("demo-map.png", "demo-shares.png"):
        assert f"picture: {tmp_path / picture}" in output
        assert (tmp_path / picture).read_bytes().startswith(b"\x89PNG")


def test_erase_command_removes_the_account_from_store_and_worker_state(broker, start_worker):
    from alerts.store import Store
    from tests.kafka_io import produce, read_topic, wait_for
    from tests.test_end_to_end import envelope

    worker = start_worker()
    produce(
        broker.bootstrap_servers,
        [
            (
                topics.ACCOUNTS,
                "gone-1",
                envelope(
                    "up-gone",
                    "account.upserted",
                    "2025-01-01T00:00:00Z",
                    account_id="gone-1",
                    lat=52.5,
                    lon=13.4,
                    rep_id="A",
                    name="Åse Ødegård",
                ),
            )
        ],
    )
    wait_for(lambda: worker.metric("territory_intake_events_total", {"outcome": "applied"}) == 1, 60, "the upsert")
    store = Store(worker.db_url)
    store.save_proposal(
        records.proposal(
            {
                "proposal_id": "p1",
                "status": "optimal",
                "imbalance_before": 0.2,
                "imbalance_after": 0.0,
                "event_time": "2025-01-01",
                "trigger_signals": [],
                "moves": [
                    {
                        "account_id": "gone-1",
                        "from_rep": "A",
                        "to_rep": "B",
                        "potential": 1.0,
                        "workload": 0.0,
                        "reason": "test",
                    }
                ],
            }
        )
    )

    env = {**os.environ, "TERRITORY_KAFKA_URL": broker.url, "TERRITORY_DB_URL": worker.db_url}
    result = subprocess.run(
        [sys.executable, "-m", "territory.cli", "erase", "gone-1", "--by", "dpo@example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "removed 1 moves; scrubbed the account from 1 proposals" in result.stdout
    assert store.moves("p1") == []
    state = read_topic(
        broker.bootstrap_servers,
        topics.STATE,
        until=lambda found: any(s["kind"] == "account_erased" for s in found),
        timeout_s=30,
    )
    assert [s["account_id"] for s in state if s["kind"] == "account_erased"] == ["gone-1"]
    # The name itself never reached the state: only its keyed hash.
    assert all("Ødegård" not in json.dumps(s, ensure_ascii=False) for s in state)
