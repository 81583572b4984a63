"""Health endpoints and the checks behind ``/readyz``: ``/healthz`` and ``/livez`` answer
while the process and its event loop do; ``/readyz`` answers 200 when the broker
connection works, the store answers ``SELECT 1`` and every Faust agent runs, else 503
naming what is not ready by category only (the driver's message can name hosts and
users: it is logged). None of them needs a token.

What the checks know of Faust's and aiokafka's internals they ask
:mod:`monitor.worker_health`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from alerts.store import Store
from alerts.web.keys import READINESS, STORE
from monitor import worker_health

log = logging.getLogger("territory.review")

#: How long the store may take to answer the readiness probe's SELECT 1.
STORE_PROBE_TIMEOUT_S = 3.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def livez(request: web.Request) -> web.Response:
    """Answered by the event loop: the process and its loop are alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    check = request.app.get(READINESS) or (lambda: store_problems(request.app[STORE]))
    problems = await check()
    if problems:
        return web.json_response({"status": "not ready", "not_ready": problems}, status=503)
    return web.json_response({"status": "ready"})


def _select_one(store: Store) -> None:
    from sqlalchemy import text

    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1")).scalar_one()


_last_logged: dict[str, str] = {}


def _not_ready(component: str, category: str, detail: str) -> dict[str, str]:
    """{component: category} for /readyz, which anyone may read: the driver's message can
    name hosts, users and paths, so it goes to the log (once while it stays the same)."""
    if _last_logged.get(component) != detail:
        _last_logged[component] = detail
        log.warning("not ready: %s: %s", component, detail[:1000])
    return {component: category}


async def store_problems(store: Store) -> dict[str, str]:
    """{"store": category} unless the store answers SELECT 1 in time."""
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, store), STORE_PROBE_TIMEOUT_S)
    except asyncio.TimeoutError:
        return _not_ready("store", "database timeout", f"SELECT 1 did not answer within {STORE_PROBE_TIMEOUT_S:g} s")
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        from sqlalchemy.exc import OperationalError

        category = "database unreachable" if isinstance(error, OperationalError) else "database error"
        return _not_ready("store", category, f"SELECT 1 failed: {type(error).__name__}: {error}")
    _last_logged.pop("store", None)
    return {}


def broker_problems(app: Any) -> dict[str, str]:
    """{"broker": reason} unless the Faust consumer has an assignment and its Kafka client
    holds at least one live connection."""
    try:
        if not app.consumer.assignment():
            return {"broker": "the consumer has no partitions assigned"}
        if not worker_health.broker_connected(app):
            return {"broker": "no live connection to the Kafka broker"}
    except Exception as error:  # noqa: BLE001 - a consumer not started yet, or gone
        return _not_ready("broker", "consumer unavailable", f"{type(error).__name__}: {error}")
    return {}


def agent_problems(app: Any) -> dict[str, str]:
    """{"agent:<name>": reason} for every Faust agent without a running actor: none
    started, or an actor whose task ended or crashed (mode's Service.crashed)."""
    problems: dict[str, str] = {}
    for agent in list(app.agents.values()):
        name = f"agent:{agent.name}"
        actors = worker_health.agent_actors(agent)
        if not actors:
            problems[name] = "no actor running"
            continue
        for actor in actors:
            task = getattr(actor, "actor_task", None)
            if actor.crashed:
                problems.update(_not_ready(name, "crashed", repr(actor.crash_reason)))
            elif task is None or task.done():
                problems[name] = "its task has ended"
    return problems


def worker_readiness(app: Any, store: Store) -> Callable[[], Awaitable[dict[str, str]]]:
    """The readiness check of a Faust worker: broker, store and agents."""

    async def check() -> dict[str, str]:
        problems = broker_problems(app)
        problems.update(await store_problems(store))
        problems.update(agent_problems(app))
        return problems

    return check
