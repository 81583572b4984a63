"""Real services on loopback for tests, each a context manager that cleans up after itself.

- `alertmanager()`: a private Prometheus Alertmanager (Debian's package) -> its base URL.
- `webhook_receiver(secret)`: an HTTP server in a thread that checks our HMAC signature.
- `smtp_server()`: an aiosmtpd SMTP server in a thread that keeps what it receives.

A service whose binary is missing skips the test, naming the script that installs it.
Processes are stopped by their own PID (and die with the test run if it is killed).
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest

from territory.broker import die_with_parent, free_port

__all__ = [
    "alertmanager",
    "alertmanager_alerts",
    "free_port",
    "smtp_server",
    "wait_http",
    "webhook_receiver",
    "ALERTMANAGER_BIN",
    "INSTALL_HINT",
]

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
INSTALL_HINT = "install it with `sudo bash deploy/services/install.sh`"

# A route to a receiver without integrations: alerts are kept and shown by the API, never sent.
_NULL_CONFIG = """\
route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: "null"
"""


def wait_http(
    url: str, timeout_s: float = 20.0, process: subprocess.Popen | None = None, log_path: Path | None = None
) -> None:
    """Poll `url` until it answers 200; fail early (with the log) if `process` exited."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            log = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before {url} was ready:\n{log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s: {last}")


def _stop(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


@contextmanager
def alertmanager(timeout_s: float = 30.0) -> Iterator[str]:
    """A private Alertmanager on 127.0.0.1: a null receiver, no cluster gossip, storage in a
    temp dir. Yields its base URL, e.g. "http://127.0.0.1:41234"; stopped and removed after."""
    if not os.access(ALERTMANAGER_BIN, os.X_OK):
        pytest.skip(f"prometheus-alertmanager is not installed ({ALERTMANAGER_BIN} missing); {INSTALL_HINT}")
    workdir = Path(tempfile.mkdtemp(prefix="alertmanager-"))
    config = workdir / "alertmanager.yml"
    config.write_text(_NULL_CONFIG)
    log_path = workdir / "alertmanager.log"
    port = free_port()
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            [
                ALERTMANAGER_BIN,
                f"--config.file={config}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            preexec_fn=die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", timeout_s, process, log_path)
        yield url
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def alertmanager_alerts(url: str, **filters: str) -> list[dict[str, Any]]:
    """GET /api/v2/alerts (active ones by default); `filters` are label matchers, name=value."""
    query = "&".join("filter=" + urllib.parse.quote(f'{k}="{v}"') for k, v in filters.items())
    with urllib.request.urlopen(f"{url}/api/v2/alerts" + (f"?{query}" if query else ""), timeout=5) as response:
        return json.loads(response.read())


# ---------------------------------------------------------------------------- webhook


@dataclass
class WebhookReceiver:
    """What a signed-webhook receiver saw. `fail_with` makes it answer that HTTP status."""

    url: str
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)  # verified bodies
    rejected: list[bytes] = field(default_factory=list)  # bodies whose signature did not match
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_with: int | None = None


@contextmanager
def webhook_receiver(secret: str, port: int = 0) -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1 (any free port, or `port`) that accepts POSTs whose
    X-Territory-Signature is the HMAC-SHA256 of the body with `secret` (204) and refuses
    others (401)."""
    from alerts.sinks import SIGNATURE_HEADER, verify_signature

    state: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.headers.append(dict(self.headers.items()))
            if state.fail_with:
                self.send_response(state.fail_with)
            elif verify_signature(state.secret, body, self.headers.get(SIGNATURE_HEADER)):
                state.received.append(json.loads(body))
                self.send_response(204)
            else:
                state.rejected.append(body)
                self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state = WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hook", secret)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------------------- SMTP


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # (mail from, rcpt tos)

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 (free port) in its own thread; keeps every message it gets."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        pytest.skip("aiosmtpd is not installed; pip install -e '.[test]'")

    server = SmtpServer("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
            server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            server.messages.append(
                message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            )
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


Result = TypeVar("Result")


@contextmanager
def in_own_process(work: Callable[[], Result]) -> Iterator[concurrent.futures.Future[Result]]:
    """`work()` (a module-level function) in a process of its own, beside the test: a clean
    run that takes a core for a minute while the live run mostly waits. Spawned, since the
    test process runs threads; it dies with the test's process, and leaving the block waits
    for it."""
    from territory.broker import die_with_parent

    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn, initializer=die_with_parent) as pool:
        yield pool.submit(work)
