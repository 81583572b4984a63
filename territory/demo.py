"""`territory demo`: embedded broker + worker process + simulated company, narrated live."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from alerts.messages import move_lines, summary_line
from core.records import Proposal, Signal
from core import topics
from territory.broker import EmbeddedBroker, die_with_parent, free_port
from core.settings import Settings

WATCHED = (topics.SIGNALS, topics.PROPOSALS, topics.ALERTS)


#: Seconds per CP-SAT solve in the demo (the worker's default is 20); the demo's proposals
#: are found in about 2 s.
DEMO_SOLVER_TIME_LIMIT_S = 3.0
#: Quiet seconds, once the planner judged the last event with no proposal on its way, before
#: the demo ends.
SETTLE_S = 2.0


@dataclass
class DemoOptions:
    seed: int = 7
    reps: int = 8
    accounts: int = 2000
    months: int = 24
    # Simulated seconds per wall second: 20 simulated days per second by default.
    speed: float = 20 * 86400
    max_seconds: float = 300.0
    shock_factor: float = 0.4


@dataclass
class Progress:
    produced: int = 0
    total: int = 0
    simulated_at: datetime | None = None
    signals: int = 0
    proposals: list[dict] = field(default_factory=list)
    alerts: int = 0


def run_demo(settings: Settings, options: DemoOptions, echo=print) -> Progress:
    from simulator import default_shock, generate_company, generate_events, region_name

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    echo(f"generating a company: {options.reps} reps, {options.accounts} accounts, {options.months} months")
    company = generate_company(seed=options.seed, n_reps=options.reps, n_accounts=options.accounts)
    shock = default_shock(company, factor=options.shock_factor)
    events = generate_events(company, months=options.months, shock=shock, seed=options.seed)
    echo(
        f"  {len(events):,} events; market shock: {region_name(shock.region)} demand x{shock.factor:g} "
        f"from {shock.start.date()}"
    )

    with EmbeddedBroker(partitions=settings.partitions, log_path=data_dir / "demo-broker.log") as broker:
        echo(f"embedded broker on {broker.url}")
        db_path = data_dir / "demo.db"
        db_path.unlink(missing_ok=True)
        worker_settings = settings.with_(
            kafka_url=broker.url,
            db_url=os.environ.get("TERRITORY_DB_URL") or f"sqlite:///{db_path}",
            metrics_port=settings.metrics_port
            if settings.metrics_port and _port_free(settings.metrics_port)
            else free_port(),
            # A demo compresses two years into a minute: let proposals follow each other sooner,
            # and give each solve (and each point of its trade-off curve) less time: the planner
            # waits for the proposal before it judges the next day.
            rebalance_cooldown_s=min(settings.rebalance_cooldown_s, 5.0),
            solver_time_limit_s=min(settings.solver_time_limit_s, DEMO_SOLVER_TIME_LIMIT_S),
        )
        worker = _start_worker(worker_settings, data_dir / "demo-worker.log")
        try:
            echo(
                f"worker pid {worker.pid}; metrics on http://127.0.0.1:{worker_settings.metrics_port}/metrics "
                f"(log: {data_dir / 'demo-worker.log'})"
            )
            _wait_metrics(worker_settings.metrics_port, worker, timeout_s=60)
            progress = asyncio.run(_narrate(broker.bootstrap_servers, events, worker_settings, options, worker, echo))
        finally:
            _stop(worker)
    echo(
        f"done: {progress.produced:,} events, {progress.signals} signals, {len(progress.proposals)} proposals, "
        f"{progress.alerts} alerts; store: {worker_settings.db_url}"
    )
    if progress.proposals:
        for path in draw_proposal(company, progress.proposals[-1], data_dir):
            echo(f"picture: {path}")
    return progress


def draw_proposal(company, proposal: dict, directory: Path) -> list[Path]:
    """The latest proposal as pictures: the territory map before/after and the shares."""
    from alerts.charts import MapAccount, MapRep, share_chart_png, territory_map_png

    accounts = [MapAccount(a.account_id, a.lat, a.lon, a.rep_id, a.true_potential) for a in company.accounts]
    reps = [MapRep(r.rep_id, r.home_lat, r.home_lon) for r in company.reps]
    pictures = {
        directory / "demo-map.png": territory_map_png(
            accounts, reps, proposal, title=f"Proposal {proposal['proposal_id']}"
        ),
        directory / "demo-shares.png": share_chart_png(proposal),
    }
    for path, png in pictures.items():
        path.write_bytes(png)
    return list(pictures)


async def _narrate(
    bootstrap: str, events: list, settings: Settings, options: DemoOptions, worker: subprocess.Popen, echo
) -> Progress:
    from simulator.produce import produce_events

    progress = Progress(total=len(events))
    started = time.monotonic()
    # The planner has judged everything once its watermark is at the last event, less the lateness.
    last_event = datetime.fromisoformat(max(envelope["occurred_at"] for _, _, envelope in events))
    last_judged = (last_event - timedelta(days=settings.lateness_days)).timestamp()

    def on_progress(sent: int, total: int, occurred_at: datetime) -> None:
        progress.produced, progress.simulated_at = sent, occurred_at

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0) for topic in WATCHED])
    producing = asyncio.create_task(produce_events(events, bootstrap, speed=options.speed, on_progress=on_progress))
    last_report, settled_since = 0.0, None
    try:
        while time.monotonic() - started < options.max_seconds:
            if worker.poll() is not None:
                echo(f"worker exited with code {worker.returncode}; see its log")
                break
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                for record in records:
                    _show(partition.topic, json.loads(record.value), progress, echo)
            # One scrape: the watermark and whether a proposal is on its way, as of the same moment.
            page = _scrape(settings.metrics_port)
            taken = _metric(page, "territory_intake_events_total")
            watermark = _metric(page, "territory_planner_event_time_watermark_seconds")
            now = time.monotonic()
            if now - last_report >= 3:
                last_report = now
                echo(
                    f"  [{now - started:5.0f} s] produced {progress.produced:,}/{progress.total:,} "
                    f"(simulated {progress.simulated_at.date() if progress.simulated_at else '-'}), "
                    f"worker took {taken:,.0f}, planner at {_date(watermark)}, "
                    f"signals {progress.signals}, proposals {len(progress.proposals)}"
                )
            # Finished when every event was taken, the planner judged up to the last one with no
            # proposal on its way, and all was quiet for a moment (what was sent has arrived).
            solving = _metric(page, "territory_rebalancer_solving")
            if producing.done() and taken >= progress.total and watermark >= last_judged and not solving:
                settled_since = settled_since or now
                if now - settled_since >= SETTLE_S and not batches:
                    break
            else:
                settled_since = None
        else:
            echo(f"stopping after the demo's limit of {options.max_seconds:.0f} s")
    finally:
        producing.cancel()
        await consumer.stop()
    return progress


def _show(topic: str, message: dict, progress: Progress, echo) -> None:
    if topic == topics.SIGNALS:
        progress.signals += 1
        signal = Signal.from_json(message)  # its summary is the detector's own sentence
        what = signal.summary or f"{signal.subject.label} {signal.state}"
        echo(f"SIGNAL   [{signal.detected_at.date().isoformat()}] {signal.kind}: {what} (severity {signal.severity})")
    elif topic == topics.PROPOSALS:
        progress.proposals.append(message)
        proposal = Proposal.from_json(message)
        echo("PROPOSAL " + summary_line(proposal))
        for line in move_lines(proposal)[:15]:
            echo("         " + line)
        if len(proposal.moves) > 15:
            echo(f"         ... and {len(proposal.moves) - 15} more moves")
        echo("         rep      share before -> after   fair share")
        after = {load.rep_id: load for load in proposal.after}
        for load in proposal.before:
            echo(
                f"         {load.rep_id:<8} {load.share:6.1%} -> {after[load.rep_id].share:6.1%}"
                f"        {load.fair_share:6.1%}"
            )
    elif topic == topics.ALERTS:
        progress.alerts += 1
        echo(f"ALERT    {message['title']}")


def worker_env(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment that gives a worker process `settings`: the caller's, plus a
    TERRITORY_ variable for every setting that differs from what the caller's gives (the
    demo's broker, store, ports, shorter cooldown and solver time limit)."""
    environ = os.environ if environ is None else environ
    inherited = Settings.from_env(environ)
    env = dict(environ)
    for item in fields(Settings):
        value = getattr(settings, item.name)
        if value is not None and value != getattr(inherited, item.name):
            env[f"TERRITORY_{item.name.upper()}"] = str(value)
    return env


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen:
    env = worker_env(settings)
    return subprocess.Popen(
        [sys.executable, "-m", "territory.cli", "worker"],
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _date(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, timezone.utc).date().isoformat() if unix_seconds else "-"


def _scrape(port: int) -> str:
    """The worker's metrics page ("" while it cannot be read)."""
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return ""


def _metric(page: str, name: str) -> float:
    """The sum of a metric's samples on a metrics page (0 when absent)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def _wait_metrics(port: int, worker: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with code {worker.returncode} during start-up")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("worker did not come up")
