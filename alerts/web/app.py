"""The review application and its place in the worker: :func:`review_app` builds it,
:class:`ReviewServer` serves it as a service of the Faust worker, :func:`register_review`
wires both, the republishing of approvals and the readiness metric into a worker."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from aiohttp import web
from mode import Service

from alerts import decisions
from alerts.decisions import Publisher
from alerts.store import Store
from alerts.web.alignment import register_alignment
from alerts.web.api import RETRY_INTERVAL_S, approve, get_proposal, get_proposal_geojson, list_proposals, reject
from alerts.web.auth import FailedAuthLimiter, allowed_hosts, headers_and_read_access
from alerts.web.keys import ALLOWED_HOSTS, ENV, LIMITER, PUBLISHER, READINESS, SECTIONS, SETTINGS, STORE
from alerts.web.maps import register_map_files
from alerts.web.pages import index, login, login_form, logout, proposal_page
from alerts.web.readiness import healthz, livez, readyz, worker_readiness
from core.clock import SYSTEM_CLOCK, Clock
from alerts.web.views import environment
from core.settings import Settings

log = logging.getLogger("territory.review")

#: The review server's default address (Settings.bind_address overrides it).
LOOPBACK = "127.0.0.1"
#: Approved-but-unpublished proposals are republished (every RETRY_INTERVAL_S) once they
#: have been approved at least this long (a fresh one is being published).
RETRY_AFTER_S = 60.0
#: How often the worker refreshes territory_worker_ready.
READY_INTERVAL_S = 5.0


def review_app(
    store: Store, publisher: Publisher, settings: Settings, *, clock: Clock = SYSTEM_CLOCK
) -> web.Application:
    """The review page and HTTP API over `store`; approvals publish through `publisher`.
    `clock` times the failed-authentication window (its monotonic reading; a test moves it)."""
    app = web.Application(middlewares=[headers_and_read_access], client_max_size=64 * 1024)
    app[STORE], app[PUBLISHER], app[SETTINGS] = store, publisher, settings
    app[ENV] = environment()
    app[SECTIONS] = OrderedDict()
    app[LIMITER] = FailedAuthLimiter(settings.auth_max_failures, settings.auth_window_s, clock=clock)
    app[ALLOWED_HOSTS] = allowed_hosts(settings)
    app.router.add_get("/", index)
    app.router.add_get("/proposals/{proposal_id}", proposal_page)
    app.router.add_get("/api/proposals", list_proposals)
    app.router.add_get("/api/proposals/{proposal_id}.geojson", get_proposal_geojson)  # before: not an id
    app.router.add_get("/api/proposals/{proposal_id}", get_proposal)
    app.router.add_post("/api/proposals/{proposal_id}/approve", approve)
    app.router.add_post("/api/proposals/{proposal_id}/reject", reject)
    register_alignment(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    register_map_files(app)
    return app


class ReviewServer(Service):
    """The review application on ``address:port`` (loopback unless told otherwise), as a
    service of the Faust worker.

    Started after table recovery, on the worker's event loop (so approvals publish
    through the worker's own producer), and cleaned up when the worker stops. A port
    that is taken is logged and the worker runs on without the page: the pipeline
    matters more than its review page, and a retry timer still publishes approvals
    made with the command line.
    """

    def __init__(self, web_app: web.Application, port: int, address: str = LOOPBACK, **kwargs: Any):
        super().__init__(**kwargs)
        self.web_app, self.port, self.address = web_app, port, address
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        runner = web.AppRunner(self.web_app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.address, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            log.error(
                "review page not served: cannot listen on %s:%s (%s); set TERRITORY_WEB_PORT to a free port "
                "or TERRITORY_BIND_ADDRESS to an address of this host",
                self.address,
                self.port,
                error,
            )
            return
        self._runner = runner
        log.info("review page on http://%s:%s/", self.address, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def register_review(app: Any, store: Store, settings: Settings, metrics: Any = None) -> None:
    """Serve the review page from the Faust worker `app` (unless ``web_port`` is 0), and
    republish approved proposals whose publishing failed, every ``RETRY_INTERVAL_S``.
    With `metrics`, territory_worker_ready mirrors /readyz every ``READY_INTERVAL_S``."""
    publisher = decisions.FaustPublisher(app)
    readiness = worker_readiness(app, store)

    if metrics is not None:

        @app.timer(READY_INTERVAL_S, name="export-readiness")
        async def export_readiness() -> None:
            problems = await readiness()
            metrics.worker_ready.set(0 if problems else 1)

    # On the leader only: with several workers one of them republishes (the events carry
    # deterministic ids, so a rare double publish during a leader change is a duplicate).
    @app.timer(RETRY_INTERVAL_S, name="publish-approved-proposals", on_leader=True)
    async def publish_approved_proposals() -> None:
        try:
            outcomes = await decisions.apply_approved(store, publisher, older_than_s=RETRY_AFTER_S)
        except Exception:  # noqa: BLE001 - a store or broker hiccup must not stop the worker
            log.exception("retrying approved proposals failed; next try in %g s", RETRY_INTERVAL_S)
            return
        for outcome in outcomes:
            if not outcome.ok:
                log.warning("proposal %s still not published: %s", outcome.proposal_id, outcome.error)

    if not settings.web_port:
        log.info("review page off (TERRITORY_WEB_PORT=0)")
        return
    web_app = review_app(store, publisher, settings)
    web_app[READINESS] = readiness
    port, address = settings.web_port, settings.bind_address

    class WorkerReviewServer(ReviewServer):
        """ReviewServer bound to this worker's application (Faust builds services from a class)."""

        def __init__(self, **kwargs: Any):
            super().__init__(web_app, port, address, **kwargs)

    app.service(WorkerReviewServer)
