"""Build the Faust app from the stages and run it as a worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading

import faust

from alerts.agents import register_alerts
from alerts.store import Store
from alerts.weekly import register_weekly_review
from core.clock import SYSTEM_CLOCK, Clock
from monitor.agents import register_intake, register_membership
from monitor.worker_health import consumer_state
from planner.agents import register_planner
from core.geocode import default_resolver
from core.metrics import Metrics
from core.producing import track_deliveries
from territory.broker import create_topics, topic_plan
from core.kafka_auth import client_options, faust_credentials, table_store_url
from territory.faust_fixes import (
    install_bounded_rebalance_wait,
    install_redelivered_ack_fix,
    install_seek_before_resume,
)
from territory.kafka_compat import install_exact_end_offsets
from core.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, metrics: Metrics, store: Store, clock: Clock = SYSTEM_CLOCK) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        broker_credentials=faust_credentials(settings),
        store=table_store_url(settings),
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        # Every topic and changelog the app creates; 1 only on the embedded broker.
        topic_replication_factor=settings.replication_factor,
        # Short session: the embedded broker holds a group join for half of it (quirk 1).
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        # No transactions on the embedded broker (quirk 3): exactly-once effect comes
        # from applying each event_id once, so at-least-once delivery is enough.
        processing_guarantee="at_least_once",
        web_enabled=False,
    )
    if settings.exact_end_offsets:
        install_exact_end_offsets(**client_options(settings))
    install_redelivered_ack_fix()
    install_seek_before_resume()
    # Longer than either stage's batch waits to fill (see faust_fixes).
    install_bounded_rebalance_wait(settle_s=2 * max(settings.intake_batch_s, settings.planner_interval_s) + 3.0)
    # Before any stage can produce: durable() waits for what is tracked.
    track_deliveries(app)
    register_intake(app, settings, metrics, clock=clock)
    register_planner(app, settings, metrics, clock=clock)
    register_membership(app, metrics)
    register_alerts(app, settings, store, metrics, clock=clock)
    register_decisions(app, settings, store, metrics)
    register_weekly_review(app, store, settings, clock=clock)
    register_task_dump(app)
    return app


def register_task_dump(app: faust.App) -> None:
    """SIGUSR1 logs where every asyncio task waits, through async generators (where Faust's
    stream iteration lives): what an operator asks of a worker that stopped making progress."""

    @app.task
    async def install_handler() -> None:
        # Replaces mode's SIGUSR1 handler, whose task stacks stop at the first async generator.
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGUSR1, lambda: log.warning("%s\n%s", consumer_state(app), task_stacks())
        )


def task_stacks() -> str:
    """Each pending task with the chain of awaits it is suspended in, innermost last."""
    lines = ["asyncio tasks (SIGUSR1):"]
    for task in sorted(asyncio.all_tasks(), key=lambda task: task.get_name()):
        lines.append(f"task {task.get_name()}:")
        awaited: object = task.get_coro()
        for _ in range(64):  # a chain is short; the bound guards against a cycle
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            frame = frame or getattr(awaited, "gi_frame", None)
            if frame is None:
                # An `async for` step or an awaited task: its generator or coroutine is only
                # reachable as a referent of the wrapper object.
                inner = _awaited_inside(awaited)
                if inner is None:
                    lines.append(f"    awaits {awaited!r}"[:300])
                    break
                awaited = inner
                continue
            lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
            awaited = (
                getattr(awaited, "cr_await", None)
                or getattr(awaited, "ag_await", None)
                or getattr(awaited, "gi_yieldfrom", None)
            )
            if awaited is None:
                break
    return "\n".join(lines)


def _awaited_inside(wrapper: object) -> object | None:
    for referent in gc.get_referents(wrapper):
        if isinstance(referent, asyncio.Task):
            return referent.get_coro()
        if any(hasattr(referent, name) for name in ("cr_frame", "ag_frame", "gi_frame")):
            return referent
    return None


def register_decisions(app: faust.App, settings: Settings, store: Store, metrics: Metrics | None = None) -> None:
    """Decisions: the review page and HTTP API on 127.0.0.1:web_port,
    and the retry that publishes approved proposals (alerts/web/)."""
    from alerts.web import register_review

    register_review(app, store, settings, metrics)


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT/SIGTERM. Creates missing topics first (idempotent)."""
    from faust.worker import Worker

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    default_resolver()  # a missing postal-code file stops the worker here, not every message later
    asyncio.run(
        create_topics(
            settings.bootstrap_servers,
            topic_plan(settings.partitions),
            replication_factor=settings.replication_factor,
            **client_options(settings),
        )
    )
    store = Store(settings.db_url)
    store.migrate()
    metrics = Metrics.create()
    port = metrics.serve(settings.metrics_port, settings.bind_address)
    log.info("metrics on http://%s:%s/metrics", settings.bind_address, port)
    print(f"metrics on http://{settings.bind_address}:{port}/metrics", flush=True)
    app = create_app(settings, metrics, store)
    worker = bounded_stop(Worker)(app, loglevel=settings.log_level, quiet=True)
    worker.stop_timeout_s = settings.stop_timeout_s
    # Above INFO Faust installs its terminal spinner, which sets the root logger to DEBUG:
    # every aiokafka debug call then builds a record (11 % of the worker's CPU, bench/load.py).
    worker.spinner = None
    worker.execute_from_commandline()


def bounded_stop(worker_class: type) -> type:
    """Faust's `Worker` whose stop on SIGTERM or SIGINT takes at most `stop_timeout_s`: after
    that the process exits with status 1. Safe as a SIGKILL is (tests/test_crash.py): what
    was not committed is read again after the restart and recognised."""

    class BoundedStopWorker(worker_class):
        stop_timeout_s: float = 15.0
        _stop_deadline: threading.Timer | None = None

        def _on_sigterm(self) -> None:
            self._arm_stop_deadline()
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            self._arm_stop_deadline()
            super()._on_sigint()

        def _arm_stop_deadline(self) -> None:
            if self._stop_deadline is None:
                self._stop_deadline = threading.Timer(self.stop_timeout_s, _stop_now, (self.stop_timeout_s,))
                self._stop_deadline.daemon = True
                self._stop_deadline.start()

    return BoundedStopWorker


def _stop_now(timeout_s: float) -> None:
    log.error(
        "stopping took over %g s (TERRITORY_STOP_TIMEOUT_S; is the broker reachable?): exiting now; "
        "what was not committed is read again at the next start",
        timeout_s,
    )
    logging.shutdown()
    os._exit(1)
