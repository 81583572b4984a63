"""An HTTP sink that answers with a redirect has not received the alert.

urllib would follow a 301/302 as a body-less GET (counted as delivered) and send the
Basic-auth credentials to the new location. Real local servers on 127.0.0.1: one answers
with the redirect, the other is its target and records whatever reaches it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from alerts.alert import alert_from_signal
from alerts.sinks import AlertmanagerSink, SinkError, WebhookSink
from core.clock import ManualClock
from tests import records


class Recording(ThreadingHTTPServer):
    """Answers every request with `status` (and `Location` when set); keeps what it got."""

    daemon_threads = True

    def __init__(self, status: int, location: str | None = None):
        self.status, self.location = status, location
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recording

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@contextmanager
def serving(status: int, location: str | None = None) -> Iterator[Recording]:
    server = Recording(status, location)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _alert():
    signal = {
        "signal_id": "sig-1",
        "kind": "market_shock",
        "state": "drop",
        "severity": "critical",
        "subject": {"type": "region", "id": "DE-BY", "name": "Bavaria"},
        "evidence": {"direction": "drop", "size": -0.2, "started_on": "2025-05-01"},
        "detected_at": "2025-05-20T00:00:00+00:00",
        "emitted_at": "2026-01-01T00:00:00+00:00",
    }
    return alert_from_signal(records.signal(signal))


def _sinks(base: str):
    authed = base.replace("http://", "http://alice:s3cret@")
    return {
        "webhook": WebhookSink(authed + "/hook", "shared-secret", timeout_s=5),
        "alertmanager": AlertmanagerSink(
            authed, timeout_s=5, clock=ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
        ),
    }


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("sink_name", ["webhook", "alertmanager"])
def test_redirect_is_a_failure_naming_the_location_and_the_target_gets_nothing(status: int, sink_name: str):
    with serving(200) as target, serving(status, location=None) as redirector:
        redirector.location = target.url + "/elsewhere"
        sink = _sinks(redirector.url)[sink_name]
        with pytest.raises(SinkError) as failure:
            sink.send(_alert())
    message = str(failure.value)
    assert str(status) in message
    assert target.url + "/elsewhere" in message
    assert "s3cret" not in message
    assert len(redirector.requests) == 1 and redirector.requests[0][0] == "POST"
    # Nothing followed the redirect: neither the alert nor the credentials reached the target.
    assert target.requests == []


def test_redirect_location_with_credentials_is_redacted_in_the_error():
    with serving(302, location="http://bob:hunter2@127.0.0.1:9/x?token=abc") as redirector:
        with pytest.raises(SinkError) as failure:
            _sinks(redirector.url)["webhook"].send(_alert())
    assert "hunter2" not in str(failure.value) and "abc" not in str(failure.value)
    assert "127.0.0.1:9/x" in str(failure.value)
