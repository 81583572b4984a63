"""Load benchmark: the whole pipeline on the embedded broker.

    .venv/bin/python bench/load.py [--events N] [--quick] [--skip throughput,replay,latency,memory]

Measures, each on its own fresh embedded broker (127.0.0.1) with worker subprocesses
(`python -m territory.cli worker`):

- throughput: N simulated events pre-produced to 4 input partitions; the raw aiokafka
  consume rate of those same messages on the same broker (the ceiling), then the
  pipeline with one worker and (on a second broker, same events) two workers in one
  consumer group. Timing starts once every worker is applying events (after the group
  join, broker quirk 1) and ends when the planner has applied every snapshot.
- replay: a history of 1M simulated events pre-produced, then one worker started on it;
  seconds from its start until the planner has applied the last snapshot.
- latency: a live stream paced in event time across the market shock; event -> signal
  and signal -> alert, median and p99.
- memory: resident set size of one worker after it applied 10k and 100k accounts
  (1M: measured if `--max-accounts 1000000`, else extrapolated and labelled so).

Prints the figures as JSON, keeps them in bench/results/load.json, writes
docs/benchmarks/load.md and re-assembles docs/BENCHMARKS.md (bench/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from core import topics  # noqa: E402
from territory.broker import EmbeddedBroker, die_with_parent, free_port  # noqa: E402
from territory.kafka_compat import probe_end_offsets  # noqa: E402

PARTITIONS = 4
POLL_S = 0.25
SETTLE_S = 4.0
INTAKE_METRIC = "territory_intake_events_total"
PLANNER_METRIC = "territory_planner_updates_total"
PLANNER_LAG_METRIC = "territory_planner_lag_messages"
ASSIGNED_METRIC = "territory_worker_assigned_partitions"
PEER_METRIC = "peer_events_total"


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- workers


class Worker:
    """One `territory worker` subprocess; stopped (by its own PID) in stop()."""

    command = [sys.executable, "-m", "territory.cli", "worker"]
    counter = INTAKE_METRIC  # a counter its metrics endpoint serves

    def __init__(self, broker: EmbeddedBroker, workdir: Path, app_id: str, index: int, **env: str):
        self.metrics_port = free_port()
        self.log_path = workdir / f"{app_id}-worker{index}.log"
        environment = {
            **os.environ,
            "TERRITORY_KAFKA_URL": broker.url,
            "TERRITORY_PARTITIONS": str(broker.partitions),
            "TERRITORY_DB_URL": f"sqlite:///{workdir / (app_id + '.db')}",
            "TERRITORY_METRICS_PORT": str(self.metrics_port),
            "TERRITORY_WEB_PORT": str(free_port()),
            "TERRITORY_DATA_DIR": str(workdir / f"{app_id}-data{index}"),
            "TERRITORY_APP_ID": app_id,
            **env,
        }
        self.db_path = workdir / (app_id + ".db")
        self.process = subprocess.Popen(
            self.command,
            env={**environment, **self.extra_env(broker, workdir, app_id, index)},
            cwd=str(ROOT),
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def extra_env(self, broker: EmbeddedBroker, workdir: Path, app_id: str, index: int) -> dict[str, str]:
        return {}

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the series of `name` (those with `labels` among theirs); 0 without any."""
        return self.metric_if_any(name, **labels) or 0.0

    def metric_if_any(self, name: str, **labels: str) -> float | None:
        """`metric`, or None when the worker exports no such series (yet)."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"worker exited with {self.process.returncode}: {self.log_path}\n"
                + self.log_path.read_text(errors="replace")[-2000:]
            )
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        except OSError:
            return None
        total = None
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if all(label in line for label in wanted):
                    total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
        return total

    def metrics_up(self) -> bool:
        self.metric(self.counter)  # raises if the process died
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read()
            return True
        except OSError:
            return False

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process so far (its own, whatever the machine does)."""
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class Peer(Worker):
    """The bare Faust app of bench/faust_peer.py, run like a worker: one agent, JSON decode,
    one Table update per event; its counter is `peer_events_total`."""

    command = [sys.executable, str(ROOT / "bench" / "faust_peer.py"), "worker", "--loglevel", "warn"]

    def extra_env(self, broker: EmbeddedBroker, workdir: Path, app_id: str, index: int) -> dict[str, str]:
        return {
            "PEER_KAFKA_URL": broker.url,
            "PEER_APP_ID": app_id,
            "PEER_PARTITIONS": str(broker.partitions),
            "PEER_METRICS_PORT": str(self.metrics_port),
            "PEER_DATA_DIR": str(workdir / f"{app_id}-data{index}"),
        }

    counter = PEER_METRIC


def run_peer(workdir: Path, broker: EmbeddedBroker, expected: int, app_id: str, timeout_s: float) -> dict[str, Any]:
    """The peer over the same pre-produced events: timed from the first sample where it is
    applying events to the sample where it has counted them all."""
    peer = Peer(broker, workdir, app_id, 0)
    try:
        wait_for(lambda: peer.metrics_up(), 120, "the peer's metrics endpoint")
        started = time.monotonic()
        previous, t_active, count_at_active, cpu_at_active = 0.0, None, 0.0, 0.0
        while time.monotonic() - started < timeout_s:
            count = peer.metric(PEER_METRIC)
            now = time.monotonic()
            if t_active is None and count > previous > 0:
                t_active, count_at_active, cpu_at_active = now, count, peer.cpu_seconds()
            if count >= expected and t_active is not None:
                seconds, cpu = now - t_active, peer.cpu_seconds() - cpu_at_active
                timed = expected - count_at_active
                return {
                    "events": expected,
                    "timed_events": round(timed),
                    "seconds": round(seconds, 2),
                    "events_per_s": round(timed / seconds, 1),
                    "cpu_seconds_per_1k_events": round(1000 * cpu / timed, 3),
                }
            previous = count
            time.sleep(POLL_S)
        raise TimeoutError(f"{app_id}: peer not done in {timeout_s} s ({peer.metric(PEER_METRIC)}/{expected})")
    finally:
        peer.stop()


# --------------------------------------------------------------------------- kafka helpers


async def produce_raw(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> float:
    """Send (topic, key, value) as fast as aiokafka goes; returns seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for topic, key, value in messages:
            pending.append(await producer.send(topic, value=value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(bootstrap: str, expected: int) -> dict[str, float]:
    """Read every input message (no group, no processing): the client's ceiling on this broker."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics.INPUT_TOPICS for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning()
        count, first = 0, None
        started = time.perf_counter()
        while count < expected and time.perf_counter() - started < 300:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            for records in batches.values():
                if first is None and records:
                    first = time.perf_counter()
                count += len(records)
        elapsed = time.perf_counter() - started
        return {"messages": count, "seconds": round(elapsed, 3), "events_per_s": round(count / elapsed, 1)}
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: (await consumer.committed(tp)) or 0 for tp in tps}
    finally:
        await consumer.stop()


def input_tps() -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics.INPUT_TOPICS for p in range(PARTITIONS)]


async def read_with_timestamps(
    bootstrap: str, topic: str, quiet_s: float = 2.0
) -> list[tuple[float, bytes | None, dict]]:
    """Every record of `topic` as (record timestamp in s, key, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        for _ in range(50):
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts or [0])])
        await consumer.seek_to_beginning()
        found, last = [], time.monotonic()
        while time.monotonic() - last < quiet_s:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    found.append((record.timestamp / 1000.0, record.key, json.loads(record.value)))
                last = time.monotonic()
        return found
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- events


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def simulated_events(n_events: int, seed: int = 11) -> list[tuple[str, bytes, bytes]]:
    """The first `n_events` of a simulated company, sized so 24 months hold about that many."""
    from simulator import generate_company, generate_events

    accounts = max(200, int(n_events / 37))  # ~37 events per account over 24 months
    company = generate_company(seed=seed, n_accounts=accounts)
    events = generate_events(company, months=24, seed=seed)[:n_events]
    return [(topic, key.encode(), encode(envelope)) for topic, key, envelope in events]


def rep_upserts(reps, at: datetime) -> list[tuple[str, bytes, bytes]]:
    """A rep.upserted for each of the simulated `reps`, at `at`."""
    from simulator import rep_profile

    return [
        (
            topics.REPS,
            rep.rep_id.encode(),
            encode(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "rep.upserted",
                    "occurred_at": at.isoformat(),
                    "source": "bench",
                    "data": rep_profile(rep),
                }
            ),
        )
        for rep in reps
    ]


def account_events(
    first: int, last: int, orders_per_account: int, rep_ids: list[str], start: datetime
) -> list[tuple[str, bytes, bytes]]:
    """Synthetic account.upserted for accounts [first, last) plus a few orders each (contract-valid)."""
    rng = random.Random(first)
    out = []
    industries = ("manufacturing", "retail", "healthcare", "construction", "logistics")
    accounts = []
    for i in range(first, last):
        account_id = f"M{i:07d}"
        envelope = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": "account.upserted",
            "occurred_at": start.isoformat(),
            "source": "bench",
            "data": {
                "account_id": account_id,
                "lat": round(rng.uniform(47.5, 54.5), 5),
                "lon": round(rng.uniform(6.5, 14.5), 5),
                "industry": rng.choice(industries),
                "employees": rng.randint(5, 5000),
                "rep_id": rng.choice(rep_ids),
                "locked": False,
                "name": f"Bench Account {i}",
            },
        }
        accounts.append(account_id)
        out.append((topics.ACCOUNTS, account_id.encode(), encode(envelope)))
    for account_id in accounts:
        for k in range(orders_per_account):
            at = start + timedelta(days=1 + rng.randint(0, 330), hours=rng.randint(8, 17))
            envelope = {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": "order.placed",
                "occurred_at": at.isoformat(),
                "source": "bench",
                "data": {
                    "order_id": f"O{account_id}-{k}",
                    "account_id": account_id,
                    "amount": round(rng.uniform(100, 20000), 2),
                    "currency": "EUR",
                },
            }
            out.append((topics.ORDERS, account_id.encode(), encode(envelope)))
    return out


# --------------------------------------------------------------------------- throughput


def wait_for(condition, timeout_s: float, what: str, poll_s: float = POLL_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def wait_settled(worker: "Worker", intake_target: int, timeout_s: float, what: str) -> float:
    """Wait until the intake counted `intake_target` messages, the planner has applied all of
    territory.state (its lag is 0) and its count has not moved for SETTLE_S. Returns the
    planner count. (A count that stood still alone was not enough: a judgement of a million
    accounts takes longer than SETTLE_S, with most of the snapshots still to apply.)"""
    deadline = time.monotonic() + timeout_s
    last, last_change = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        intake, planner = worker.metric(INTAKE_METRIC), worker.metric(PLANNER_METRIC)
        lag = worker.metric_if_any(PLANNER_LAG_METRIC)
        if planner != last:
            last, last_change = planner, time.monotonic()
        caught_up = lag == 0 and time.monotonic() - last_change >= SETTLE_S
        if intake >= intake_target and planner > 0 and caught_up:
            return planner
        time.sleep(POLL_S)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def settled(workers: list[Worker], input_partitions: int) -> bool:
    """Every input partition is assigned, and every worker holds some."""
    held = [int(w.metric(ASSIGNED_METRIC, role="intake")) for w in workers]
    return sum(held) == input_partitions and all(held)


def count_snapshots(bootstrap: str) -> tuple[int, int]:
    """Account and rep snapshots on territory.state, and the orders they carry."""
    state = asyncio.run(read_with_timestamps(bootstrap, topics.STATE, quiet_s=1.5))
    snapshots = [v for _, _, v in state if v.get("kind") not in ("progress", "stream_times")]
    return len(snapshots), sum(len(v.get("orders") or []) for v in snapshots)


def run_pipeline(
    workdir: Path,
    broker: EmbeddedBroker,
    n_workers: int,
    expected: int,
    app_id: str,
    timeout_s: float,
    order_events: int = 0,
    burst: list[tuple[str, bytes, bytes]] | None = None,
) -> dict[str, Any]:
    """Start `n_workers`; sample their counters until the planner has applied every snapshot.
    With `burst`, the workers first settle in the group (every input partition assigned, each
    worker holding some), then `burst` is produced: the timing then holds no group join or
    hand-over of partitions, which a scale-out measure must not charge to the second worker."""
    workers: list[Worker] = []
    try:
        for i in range(n_workers):
            # One at a time: they share the SQLite store, and two first-time migrations race.
            workers.append(Worker(broker, workdir, app_id, i))
            wait_for(lambda: workers[-1].metrics_up(), 120, "the worker's metrics endpoint")
        if burst is not None:
            wait_for(lambda: settled(workers, len(input_tps())), 120, "every input partition assigned")
        samples: list[tuple[float, list[float], float]] = []  # (t, intake per worker, planner total)
        started = time.monotonic()
        t_first = t_all_active = t_intake_done = t_done = None
        t_last_planner = 0.0
        snapshots = None
        count_at_active = 0.0
        cpu_at_active: list[float] = []
        if burst is not None:  # timed from the burst: every event, and the CPU from then on
            t_all_active, cpu_at_active = time.monotonic(), [w.cpu_seconds() for w in workers]
            asyncio.run(produce_raw(broker.bootstrap_servers, burst))
        while time.monotonic() - started < timeout_s:
            now = time.monotonic()
            intake = [w.metric(INTAKE_METRIC) for w in workers]
            planner = sum(w.metric(PLANNER_METRIC) for w in workers)
            samples.append((now, intake, planner))
            total = sum(intake)
            if t_first is None and total > 0:
                t_first = now
            # Every worker applies events (a small run can be over on one worker before the
            # other's first sample, so "rising on every worker at once" is not required).
            if t_all_active is None and all(cur > 0 for cur in intake):
                t_all_active, count_at_active = now, total
                cpu_at_active = [w.cpu_seconds() for w in workers]
            if t_intake_done is None and total >= expected:
                t_intake_done = now
            if len(samples) >= 2 and planner > samples[-2][2]:
                t_last_planner = now
            # Done: the intake has counted every input message and the planner has applied every
            # snapshot it will get (no change for SETTLE_S; its count is checked against the topic below).
            if t_intake_done is not None and planner > 0 and now - max(t_last_planner, t_intake_done) >= SETTLE_S:
                if snapshots is None:  # the state topic no longer grows (but for progress records)
                    snapshots = count_snapshots(broker.bootstrap_servers)[0]
                if planner >= snapshots:
                    t_done = t_last_planner if t_last_planner > t_intake_done else t_intake_done
                    break
            time.sleep(POLL_S)
        if t_done is None or t_all_active is None or not all(samples[-1][1]):
            raise TimeoutError(
                f"{app_id}: not done in {timeout_s} s or not every worker took part (intake per worker "
                f"{samples[-1][1]} of {expected}, planner {samples[-1][2]}, state-topic snapshots {snapshots})"
            )
        rss = [w.rss() for w in workers]
        cpu = [w.cpu_seconds() - at for w, at in zip(workers, cpu_at_active)]
        # The group's committed offsets must reach every input partition's end.
        ends = asyncio.run(probe_end_offsets(broker.bootstrap_servers, {tp: 0 for tp in input_tps()}))
        committed_ok = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = asyncio.run(committed(broker.bootstrap_servers, app_id, input_tps()))
            if all(done[tp] >= ends[tp] for tp in ends):
                committed_ok = True
                break
            time.sleep(1)
        snapshots, orders_in_snapshots = count_snapshots(broker.bootstrap_servers)
        intake_s = t_intake_done - t_all_active
        pipeline_s = t_done - t_all_active
        per_worker = [round(x) for x in samples[-1][1]]
        timed_events = expected - count_at_active
        return {
            "workers": n_workers,
            "events": expected,
            "startup_s": round(t_all_active - started, 2),
            "first_event_s": round(t_first - started, 2),
            "timed_events": round(expected - count_at_active),
            "intake_seconds": round(intake_s, 2),
            "intake_events_per_s": round((expected - count_at_active) / intake_s, 1),
            "pipeline_seconds": round(pipeline_s, 2),
            # Whole pipeline: intake and the planner applied every event counted from the start of timing.
            "pipeline_events_per_s": round((expected - count_at_active) / pipeline_s, 1),
            "events_per_worker": per_worker,
            # CPU each worker process used from the start of timing to the end (intake, planner
            # and the rest of the worker), and the events per CPU-second of all of them.
            "cpu_seconds": [round(c, 2) for c in cpu],
            "cpu_seconds_per_1k_events": round(1000 * sum(cpu) / timed_events, 3),
            "events_per_cpu_second": round(timed_events / sum(cpu), 1),
            "planner_applied": round(samples[-1][2]),
            "planner_records_per_event": round(samples[-1][2] / expected, 4),
            "snapshots_on_state_topic": snapshots,
            # Events applied on arrival of their account (held, then released) share the account's
            # snapshot, so snapshots < events; every order is in exactly one snapshot's "orders".
            "orders_in_snapshots": orders_in_snapshots,
            "order_events": order_events,
            "committed_at_end": committed_ok,
            "rss_mib": [round(r / 2**20, 1) for r in rss],
        }
    finally:
        for w in workers:
            w.stop()


def throughput(workdir: Path, n_events: int, timeout_s: float) -> dict[str, Any]:
    log(f"generating {n_events} simulated events")
    messages = simulated_events(n_events)
    result: dict[str, Any] = {
        "events": len(messages),
        "partitions": PARTITIONS,
        "mean_message_bytes": round(sum(len(v) for _, _, v in messages) / len(messages), 1),
    }
    for n_workers in (1, 2):
        with EmbeddedBroker(partitions=PARTITIONS, log_path=workdir / f"broker-tp{n_workers}.log") as broker:
            produce_s = asyncio.run(produce_raw(broker.bootstrap_servers, messages))
            raw = asyncio.run(raw_consume(broker.bootstrap_servers, len(messages)))
            log(f"{n_workers} worker(s): produced in {produce_s:.1f} s, raw consume {raw['events_per_s']}/s")
            peer = run_peer(workdir, broker, len(messages), f"peer-{n_workers}w", timeout_s)
            log(f"{n_workers} worker(s): bare Faust peer {json.dumps(peer)}")
        # The workers on a broker of their own: they settle in the group, then the events come.
        with EmbeddedBroker(partitions=PARTITIONS, log_path=workdir / f"broker-load{n_workers}.log") as broker:
            run = run_pipeline(
                workdir,
                broker,
                n_workers,
                len(messages),
                f"load-{n_workers}w",
                timeout_s,
                order_events=sum(1 for topic, _, _ in messages if topic == topics.ORDERS),
                burst=messages,
            )
            run["raw_consume"] = raw
            run["peer"] = peer
            run["pipeline_over_peer"] = round(run["pipeline_events_per_s"] / peer["events_per_s"], 3)
            run["intake_over_peer"] = round(run["intake_events_per_s"] / peer["events_per_s"], 3)
            run["produce_events_per_s"] = round(len(messages) / produce_s, 1)
            run["pipeline_over_raw"] = round(run["pipeline_events_per_s"] / raw["events_per_s"], 4)
            log(f"{n_workers} worker(s): {json.dumps(run)}")
            result[f"workers_{n_workers}"] = run
    result["two_over_one"] = round(
        result["workers_2"]["pipeline_events_per_s"] / result["workers_1"]["pipeline_events_per_s"], 3
    )
    # Scale-out on a machine whose two cores the broker shares: events per worker CPU-second,
    # two workers against one (>= 0.75 means two machines would give >= 1.5x one).
    result["two_over_one_per_cpu_second"] = round(
        result["workers_2"]["events_per_cpu_second"] / result["workers_1"]["events_per_cpu_second"], 3
    )
    result["two_over_one_intake"] = round(
        result["workers_2"]["intake_events_per_s"] / result["workers_1"]["intake_events_per_s"], 3
    )
    return result


def replay(workdir: Path, n_events: int, timeout_s: float) -> dict[str, Any]:
    """A company's history (the simulator's events in time order) pre-produced to a fresh
    broker, then read by one worker started on it: the back-fill a new installation does."""
    log(f"replay: generating {n_events} simulated events")
    messages = simulated_events(n_events)
    with EmbeddedBroker(partitions=PARTITIONS, log_path=workdir / "broker-replay.log") as broker:
        produce_s = asyncio.run(produce_raw(broker.bootstrap_servers, messages))
        log(f"replay: produced {len(messages)} events in {produce_s:.1f} s; starting one worker")
        try:
            run = run_pipeline(
                workdir,
                broker,
                1,
                len(messages),
                "replay",
                timeout_s,
                order_events=sum(1 for topic, _, _ in messages if topic == topics.ORDERS),
            )
        except TimeoutError as error:  # a figure all the same: how far it got
            log(f"replay: {error}")
            return {"events": len(messages), "seconds": None, "timed_out_after_s": timeout_s, "progress": str(error)}
    # Judged from the worker's start (start-up and group join included) to the planner's last record.
    run["seconds"] = round(run["startup_s"] + run["pipeline_seconds"], 1)
    run["accounts"] = sum(1 for topic, _, _ in messages if topic == topics.ACCOUNTS)
    log(f"replay: {json.dumps(run)}")
    return run


# --------------------------------------------------------------------------- latency


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "samples": len(values),
        "median_s": _r(percentile(values, 0.5)),
        "p99_s": _r(percentile(values, 0.99)),
        "max_s": _r(max(values) if values else None),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def produce_paced(
    bootstrap: str, events: list, live_from: datetime, speed: float
) -> list[tuple[datetime, float]]:
    """Bulk-send events before `live_from`, then pace the rest at `speed` event-seconds per second.
    Returns (occurred_at, wall send time) of every live event, in order."""
    from simulator.produce import encode_value

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    sent: list[tuple[datetime, float]] = []
    try:
        wall_start = None
        for topic, key, envelope in events:
            at = datetime.fromisoformat(envelope["occurred_at"])
            if at >= live_from:
                if wall_start is None:
                    await producer.flush()
                    wall_start = time.time()
                delay = wall_start + (at - live_from).total_seconds() / speed - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent.append((at, time.time()))
            await producer.send(topic, value=encode_value(envelope), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def latency(workdir: Path, accounts: int, speed_days: float, timeout_s: float) -> dict[str, Any]:
    from simulator import default_shock, generate_company, generate_events

    company = generate_company(seed=7, n_accounts=accounts)
    shock = default_shock(company)
    events = generate_events(company, months=24, shock=shock, seed=7)
    live_from = company.start + timedelta(days=330)
    lateness = timedelta(days=2.0)
    speed = speed_days * 86400
    with EmbeddedBroker(partitions=PARTITIONS, log_path=workdir / "broker-latency.log") as broker:
        bulk = [
            (t, k.encode(), encode(e)) for t, k, e in events if datetime.fromisoformat(e["occurred_at"]) < live_from
        ]
        asyncio.run(produce_raw(broker.bootstrap_servers, bulk))
        worker = Worker(broker, workdir, "load-latency", 0)
        try:
            wait_settled(worker, len(bulk), timeout_s, "the worker to catch up")
            live = [e for e in events if datetime.fromisoformat(e[2]["occurred_at"]) >= live_from]
            log(f"latency: {len(bulk)} events bulk-loaded; producing {len(live)} live at {speed_days} days/s")
            sent = asyncio.run(produce_paced(broker.bootstrap_servers, events, live_from, speed))
            wait_settled(worker, len(events), timeout_s, "the live stream")
            time.sleep(8)  # proposals in the solver and alert delivery (1 s timer) finish
            signals = asyncio.run(read_with_timestamps(broker.bootstrap_servers, topics.SIGNALS))
            proposals = asyncio.run(read_with_timestamps(broker.bootstrap_servers, topics.PROPOSALS))
            alerts = asyncio.run(read_with_timestamps(broker.bootstrap_servers, topics.ALERTS))
            deliveries = _deliveries(worker.db_path)
        finally:
            worker.stop()
    # event -> signal: signal record time minus the send time of the first live event at or
    # after detected_at + lateness (the event that let the watermark reach the judged moment).
    times = [at for at, _ in sent]
    import bisect

    event_to_signal, skipped = [], 0
    for ts, _, value in signals:
        needed = datetime.fromisoformat(value["detected_at"]) + lateness
        i = bisect.bisect_left(times, needed)
        if not sent or needed < live_from or i >= len(sent):
            skipped += 1  # judged on bulk-loaded history (or at the end): no live event to time it from
            continue
        event_to_signal.append(ts - sent[i][1])
    signal_ts = {value["signal_id"]: ts for ts, _, value in signals}
    proposal_ts = {value["proposal_id"]: (ts, value) for ts, _, value in proposals}
    signal_to_alert, proposal_to_alert = [], []
    for ts, key, value in alerts:
        pid = value.get("proposal_id") or (key.decode() if key else None)
        if pid not in proposal_ts:
            continue
        p_ts, proposal = proposal_ts[pid]
        proposal_to_alert.append(ts - p_ts)
        for sid in proposal.get("trigger_signals") or []:
            if sid in signal_ts:
                signal_to_alert.append(ts - signal_ts[sid])
    # Signal alerts through the outbox (log sink): first send of each incident minus its first signal.
    first_signal_by_key: dict[str, float] = {}
    for ts, _, value in signals:
        key = _alert_key(value)
        first_signal_by_key.setdefault(key, ts)
    outbox = [
        row["sent_at"] - first_signal_by_key[row["alert_key"]]
        for row in deliveries
        if row["sink"] == "log" and row["sent_at"] and row["alert_key"] in first_signal_by_key and row["attempts"] <= 1
    ]
    kinds: dict[str, int] = {}
    for _, _, value in signals:
        kinds[value["kind"]] = kinds.get(value["kind"], 0) + 1
    return {
        "accounts": accounts,
        "events": len(events),
        "bulk_events": len(events) - len(sent),
        "live_events": len(sent),
        "live_speed_days_per_s": speed_days,
        "live_events_per_s": round(len(sent) / max(1e-9, sent[-1][1] - sent[0][1]), 1) if len(sent) > 1 else None,
        "signals": len(signals),
        "signal_kinds": kinds,
        "signals_timed": len(event_to_signal),
        "signals_on_bulk_history": skipped,
        "proposals": len(proposals),
        "alerts": len(alerts),
        "event_to_signal": summary(event_to_signal),
        "signal_to_alert_via_proposal": summary(signal_to_alert),
        "proposal_to_alert": summary(proposal_to_alert),
        "signal_to_alert_outbox_log": summary(outbox),
    }


def _alert_key(signal_value: dict) -> str:
    subject = signal_value.get("subject") or {}
    metric = str((signal_value.get("evidence") or {}).get("metric") or "")
    key = f"{signal_value['kind']}:{subject.get('type') or 'subject'}:{subject.get('id') or '?'}"
    return key + (f":{metric}" if metric else "")


def _deliveries(db_path: Path) -> list[dict]:
    try:
        with sqlite3.connect(db_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("select alert_key, sink, sent_at, attempts from deliveries")]
    except sqlite3.Error:
        return []


# --------------------------------------------------------------------------- memory


def memory(workdir: Path, steps: list[int], orders: int, timeout_s: float, extrapolate_to: list[int]) -> dict[str, Any]:
    from simulator import generate_company

    company = generate_company(seed=3, n_accounts=200)
    rep_ids = [r.rep_id for r in company.reps]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rep_messages = rep_upserts(company.reps, start)
    points: list[dict[str, Any]] = []
    result_unsettled: list[dict[str, Any]] = []
    with EmbeddedBroker(partitions=PARTITIONS, log_path=workdir / "broker-memory.log") as broker:
        asyncio.run(produce_raw(broker.bootstrap_servers, rep_messages))
        # A judgement reads every account; judge every 20k snapshots, not every 500, so the
        # planner keeps up with the bulk load (memory is what is measured here).
        worker = Worker(
            broker, workdir, "load-memory", 0, TERRITORY_PLANNER_BATCH="20000", TERRITORY_PLANNER_INTERVAL_S="5"
        )
        try:
            wait_settled(worker, len(rep_messages), 120, "the worker to start")
            baseline = worker.rss()
            points.append({"accounts": 0, "rss_mib": round(baseline / 2**20, 1)})
            done, applied = 0, len(rep_messages)
            for target in steps:
                batch = account_events(done, target, orders, rep_ids, start)
                t0 = time.monotonic()
                asyncio.run(produce_raw(broker.bootstrap_servers, batch))
                applied += len(batch)
                try:
                    wait_settled(worker, applied, timeout_s, f"{target} accounts")
                except TimeoutError:
                    # Recorded, not dropped: how far the worker got is the finding (the planner
                    # judges the whole company each day, so it falls behind as companies grow).
                    unsettled = {
                        "accounts": target,
                        "events": applied,
                        "rss_mib": round(worker.rss() / 2**20, 1),
                        "intake_applied": int(worker.metric(INTAKE_METRIC)),
                        "planner_applied": int(worker.metric(PLANNER_METRIC)),
                        "seconds": round(time.monotonic() - t0),
                    }
                    log(f"memory: not settled within {timeout_s} s: {unsettled}")
                    result_unsettled.append(unsettled)
                    break
                seconds = time.monotonic() - t0 - SETTLE_S
                time.sleep(3)
                rss = max(worker.rss() for _ in range(3) if time.sleep(0.5) is None)
                points.append(
                    {
                        "accounts": target,
                        "events": applied,
                        "rss_mib": round(rss / 2**20, 1),
                        "ingest_seconds": round(seconds, 1),
                        "events_per_s": round(len(batch) / seconds, 1),
                    }
                )
                log(f"memory: {points[-1]}")
                done = target
        finally:
            worker.stop()
    result: dict[str, Any] = {"orders_per_account": orders, "measured": points}
    if result_unsettled:
        result["unsettled"] = result_unsettled
    # Linear fit through the measured points above the baseline, to the sizes not measured.
    fit = [p for p in points if p["accounts"] > 0]
    if len(fit) >= 2:
        a, b = fit[-2], fit[-1]
        per_account = (b["rss_mib"] - a["rss_mib"]) / (b["accounts"] - a["accounts"])
        result["mib_per_1k_accounts"] = round(per_account * 1000, 3)
        result["extrapolated"] = [
            {
                "accounts": n,
                "rss_mib": round(b["rss_mib"] + per_account * (n - b["accounts"]), 1),
                "basis": f"linear from {a['accounts']} and {b['accounts']} accounts",
            }
            for n in extrapolate_to
            if n > b["accounts"]
        ]
    return result


# --------------------------------------------------------------------------- report


def write_report(results: dict[str, Any]) -> None:
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "load.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    from bench.load_report import render

    (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "benchmarks" / "load.md").write_text(render(results), encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "bench" / "report.py")], check=True, cwd=str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60000, help="events in the throughput runs")
    parser.add_argument("--quick", action="store_true", help="small sizes (development), no report written")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: throughput, replay, latency, memory")
    parser.add_argument("--replay-events", type=int, default=1_000_000, help="events in the replay part")
    parser.add_argument("--max-accounts", type=int, default=100_000, help="largest measured memory step")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results and docs")
    parser.add_argument("--from-json", default=None, help="only re-write the docs from a results JSON file")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.from_json:
        write_report(json.loads(Path(args.from_json).read_text(encoding="utf-8")))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the workers and brokers
    workdir = Path(tempfile.mkdtemp(prefix="territory-load-"))
    started = time.time()
    results: dict[str, Any] = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
        "command": "python bench/load.py"
        + (" --quick" if args.quick else "")
        + (f" --events {args.events}" if args.events != 60000 else ""),
    }
    try:
        if "throughput" not in skip:
            results["throughput"] = throughput(workdir, 5000 if args.quick else args.events, 120 if args.quick else 900)
        if "replay" not in skip:
            results["replay"] = replay(workdir, 20_000 if args.quick else args.replay_events, 1500)
        if "latency" not in skip:
            results["latency"] = latency(workdir, 500 if args.quick else 2000, 30.0 if args.quick else 4.0, 900)
        if "memory" not in skip:
            steps = [2000, 10000] if args.quick else [s for s in (10_000, 100_000, 1_000_000) if s <= args.max_accounts]
            results["memory"] = memory(workdir, steps, 2, 3600, [100_000, 1_000_000])
        results["seconds"] = round(time.time() - started)
        print(json.dumps(results, indent=2))
        if not args.quick and not args.no_write:
            write_report(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True) if not os.environ.get("LOAD_KEEP") else log(f"kept {workdir}")


if __name__ == "__main__":
    main()
