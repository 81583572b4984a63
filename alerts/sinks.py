"""Where alerts go: the log, Prometheus Alertmanager, a signed webhook, e-mail.

Every sink is synchronous with timeouts (the dispatcher calls them from threads, one
thread per sink, so a slow sink never holds up the others) and raises `SinkError` when
the alert did not arrive; the dispatcher then keeps it and retries with backoff. The
`territory.alerts` topic is not a sink here: the worker publishes to it itself.
"""

from __future__ import annotations

import base64
import hashlib
import email.policy
import hmac
import html
import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from alerts.alert import Alert
from core.clock import SYSTEM_CLOCK, Clock

#: Sinks `alert_sinks` may name; "kafka" is the worker's own topic publisher.
SINK_NAMES = ("kafka", "log", "alertmanager", "webhook", "smtp")
SIGNATURE_HEADER = "X-Territory-Signature"
KEY_HEADER = "X-Territory-Alert-Key"


class SinkError(RuntimeError):
    """The alert did not reach the sink.

    `sink_down` is True when the sink as a whole is unreachable or failing (connection
    refused, timeout, 5xx): the dispatcher then defers the sink's other alerts of the
    round instead of waiting on each. False means only this alert was refused (e.g. a 400).
    """

    def __init__(self, message: str, *, sink_down: bool = True):
        super().__init__(message)
        self.sink_down = sink_down


@runtime_checkable
class Sink(Protocol):
    """A destination for alerts.

    `previous` is the alert last delivered to this sink under the same key (None the first
    time): a receiver that identifies incidents by labels (Alertmanager) needs it to close
    the old identity when the labels changed, e.g. when the severity went up.
    """

    name: str

    def send(self, alert: Alert, previous: Alert | None = None) -> None: ...


# ---------------------------------------------------------------------------- log


class LogSink:
    """One log line for the headline and one per description line (moves of a proposal)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("territory.alerts")

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        level = logging.INFO if alert.resolved or alert.severity == "info" else logging.WARNING
        self.logger.log(level, "[%s] %s (%s)", alert.status.upper(), alert.summary, alert.key)
        for line in alert.description.splitlines()[1:]:
            self.logger.log(level, "  %s", line)


# ---------------------------------------------------------------------------- HTTP


def redact_url(url: str) -> str:
    """`url` as it may be logged or stored: user info and query string (either may hold a
    password or token) replaced by ``***``."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme, ("***@" if user else "") + host, parts.path, "***" if parts.query else "", ""))


def _basic_auth(url: str) -> tuple[str, dict[str, str]]:
    """`url` without its ``user:password@`` and the Basic Authorization header they stand
    for (urllib neither strips nor sends them by itself)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    if not user:
        return url, {}
    username, _, password = user.partition(":")
    credentials = base64.b64encode(f"{unquote(username)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {credentials}"}


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Following a redirect would turn the POST into a body-less GET that counts as
    delivered and carry the Authorization header to another host: a 3xx stays an error."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 (urllib's hook)
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float, what: str) -> None:
    # Errors name the redacted URL: they are logged and kept in the outbox.
    where = f"{what} {redact_url(url)}"
    target, auth = _basic_auth(url)
    request = urllib.request.Request(
        target, data=body, method="POST", headers={"Content-Type": "application/json", **auth, **headers}
    )
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as error:
        if 300 <= error.code < 400:
            location = error.headers.get("Location") if error.headers else None
            moved_to = redact_url(urljoin(target, location)) if location else "(no Location header)"
            # The whole sink points at the wrong address: a configuration error, not this alert's.
            raise SinkError(
                f"{where}: HTTP {error.code} redirect to {moved_to} not followed; set the URL to the final address"
            ) from None
        detail = error.read(500).decode("utf-8", "replace").strip()
        # 4xx: this alert was refused, the receiver is up; 408/429 and 5xx: the receiver is in trouble.
        item_only = 400 <= error.code < 500 and error.code not in (408, 429)
        raise SinkError(f"{where}: HTTP {error.code} {error.reason}: {detail}", sink_down=not item_only) from None
    except (urllib.error.URLError, OSError, ValueError) as error:  # ValueError: http.client.InvalidURL
        reason = getattr(error, "reason", error)
        raise SinkError(f"{where}: {reason}") from None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlertmanagerSink:
    """POSTs to Alertmanager's v2 API (`/api/v2/alerts`).

    Alertmanager resolves an alert by itself once its `endsAt` passes. The dispatcher does
    not re-send unchanged alerts, so a firing alert carries `endsAt = now + firing_ttl_s`
    (default a day); a resolved one `endsAt = now`. The labels are Alertmanager's identity
    of the alert: when an update changes them (severity up), the previous label set is
    resolved in the same request, and a resolution is sent under the labels that fired.
    """

    name = "alertmanager"

    def __init__(
        self, base_url: str, *, timeout_s: float = 10.0, firing_ttl_s: float = 86400.0, clock: Clock = SYSTEM_CLOCK
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager URL {redact_url(base_url)!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.firing_ttl_s = firing_ttl_s
        self.clock = clock

    def payload(self, alert: Alert, previous: Alert | None = None) -> list[dict[str, Any]]:
        """The JSON list POSTed for `alert` (public so the shape can be checked)."""
        now = self.clock.now()
        if alert.resolved:
            labels = previous.labels if previous is not None else alert.labels
            return [self._one(alert, labels, max(now, alert.starts_at))]
        items = [self._one(alert, alert.labels, max(now, alert.starts_at) + timedelta(seconds=self.firing_ttl_s))]
        if previous is not None and previous.labels != alert.labels and not previous.resolved:
            items.append(self._one(previous, previous.labels, max(now, previous.starts_at)))
        return items

    def _one(self, alert: Alert, labels: dict[str, str], ends_at: datetime) -> dict[str, Any]:
        item: dict[str, Any] = {
            "labels": {k: v for k, v in labels.items() if v},
            "annotations": {k: v for k, v in alert.annotations.items() if v},
            "startsAt": _rfc3339(alert.starts_at),
            "endsAt": _rfc3339(ends_at),
        }
        link = alert.annotations.get("review_url") or alert.annotations.get("runbook_url")
        if link:
            item["generatorURL"] = link
        return item

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        body = json.dumps(self.payload(alert, previous)).encode()
        _post(f"{self.base_url}/api/v2/alerts", body, {}, self.timeout_s, "Alertmanager")


def sign(secret: str, body: bytes) -> str:
    """The `X-Territory-Signature` value of `body`: "sha256=" + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver runs on the exact bytes it got (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookSink:
    """POSTs `Alert.to_json()`; the header `X-Territory-Signature: sha256=<hex>` is the
    HMAC-SHA256 of the exact body bytes with the shared secret, so the receiver can tell
    the alert came from us and was not altered. `X-Territory-Alert-Key` names the incident."""

    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout_s: float = 10.0):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {redact_url(url)!r} must start with http:// or https://")
        if not secret:
            raise ValueError("webhook secret is empty: set TERRITORY_WEBHOOK_SECRET, the body must be signed")
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    def body(self, alert: Alert) -> bytes:
        return json.dumps(alert.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        body = self.body(alert)
        headers = {SIGNATURE_HEADER: sign(self.secret, body), KEY_HEADER: alert.key}
        _post(self.url, body, headers, self.timeout_s, "webhook")


# ---------------------------------------------------------------------------- e-mail


class SmtpSink:
    """One e-mail per alert (and per update), text plus a simple HTML part.

    Updates of one incident share a `References` header derived from the key, so mail
    clients thread them as one conversation.
    """

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        *,
        starttls: bool = False,
        user: str = "",
        password: str = "",
        timeout_s: float = 20.0,
    ):
        if not recipients:
            raise ValueError("no e-mail recipients: set TERRITORY_SMTP_TO (a comma list)")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.starttls, self.user, self.password, self.timeout_s = starttls, user, password, timeout_s

    def message(self, alert: Alert) -> EmailMessage:
        # Python folds long headers at 78 columns and a subject with brackets and colons then
        # starts with a stray space on the receiving side; RFC 5322 allows 998.
        msg = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
        subject = f"[{alert.status.upper()}] {alert.summary}"
        msg["Subject"] = subject if len(subject) <= 200 else subject[:199] + "…"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="territory-monitor")
        thread = f"<alert-{hashlib.sha256(alert.key.encode()).hexdigest()[:24]}@territory-monitor>"
        msg["References"] = thread
        msg["In-Reply-To"] = thread
        msg[KEY_HEADER] = alert.key
        links = [f"{name.replace('_', ' ')}: {url}" for name, url in alert.annotations.items() if name.endswith("_url")]
        text = "\n".join(
            [
                alert.description,
                "",
                f"status: {alert.status}, severity: {alert.severity}, since {alert.starts_at.isoformat()}",
                "labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())),
                *links,
            ]
        )
        msg.set_content(text)
        colour = {"critical": "#b00020", "warning": "#b26a00"}.get(alert.severity, "#2e7d32")
        if alert.resolved:
            colour = "#2e7d32"
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in sorted(alert.labels.items())
        )
        anchors = "".join(
            f'<p><a href="{html.escape(url, quote=True)}">{html.escape(name.replace("_", " "))}</a></p>'
            for name, url in alert.annotations.items()
            if name.endswith("_url")
        )
        msg.add_alternative(
            f'<html><body><h2 style="color:{colour}">[{alert.status.upper()}] {html.escape(alert.summary)}</h2>'
            f"<pre>{html.escape(alert.description)}</pre>"
            f"<p>severity: {html.escape(alert.severity)}, since {html.escape(alert.starts_at.isoformat())}</p>"
            f'<table border="1" cellpadding="3">{rows}</table>{anchors}</body></html>',
            subtype="html",
        )
        return msg

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        self.deliver(self.message(alert), what=f"alert {alert.key}")

    def deliver(self, msg: EmailMessage, *, what: str) -> None:
        """Send any message to the configured recipients (the weekly review uses it too)."""
        where = f"SMTP {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=self.recipients)
        except smtplib.SMTPRecipientsRefused as error:
            raise SinkError(f"{where}: every recipient refused: {error.recipients}", sink_down=False) from None
        except smtplib.SMTPResponseException as error:
            permanent = 500 <= error.smtp_code < 600 and not isinstance(error, smtplib.SMTPAuthenticationError)
            message = (
                error.smtp_error.decode("utf-8", "replace")
                if isinstance(error.smtp_error, bytes)
                else str(error.smtp_error)
            )
            raise SinkError(f"{where}: {error.smtp_code} {message}", sink_down=not permanent) from None
        except (smtplib.SMTPException, OSError, socket.timeout) as error:
            raise SinkError(f"{where}: {error}") from None
        if refused:
            # Some recipients got it; retrying would send the others a second copy. Log, not fail.
            logging.getLogger("territory.alerts").warning("%s refused %s for %s", where, refused, what)


# ---------------------------------------------------------------------------- settings


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def sinks_from_settings(
    settings: Any, *, logger: logging.Logger | None = None, clock: Clock = SYSTEM_CLOCK
) -> list[Sink]:
    """Every sink named in `alert_sinks` except "kafka" (the worker's own publisher).

    A named sink without what it needs is a configuration error, raised at start-up
    with the setting to fix, not an alert lost later.
    """
    names = _names(settings.alert_sinks)
    unknown = [name for name in names if name not in SINK_NAMES]
    if unknown:
        raise ValueError(
            f"TERRITORY_ALERT_SINKS={settings.alert_sinks!r}: unknown sinks {unknown}; "
            f"use a comma list of {', '.join(SINK_NAMES)}"
        )
    sinks: list[Sink] = []
    for name in dict.fromkeys(names):  # in order, once each
        if name == "log":
            sinks.append(LogSink(logger))
        elif name == "alertmanager":
            if not settings.alertmanager_url:
                raise ValueError(
                    "TERRITORY_ALERT_SINKS includes alertmanager but TERRITORY_ALERTMANAGER_URL "
                    "is empty; set it to Alertmanager's base URL, e.g. http://127.0.0.1:9093"
                )
            sinks.append(AlertmanagerSink(settings.alertmanager_url, clock=clock))
        elif name == "webhook":
            if not settings.webhook_url:
                raise ValueError("TERRITORY_ALERT_SINKS includes webhook but TERRITORY_WEBHOOK_URL is empty")
            if not settings.webhook_secret:
                raise ValueError(
                    "TERRITORY_ALERT_SINKS includes webhook but TERRITORY_WEBHOOK_SECRET is empty; "
                    "the webhook body is signed with it"
                )
            sinks.append(WebhookSink(settings.webhook_url, settings.webhook_secret))
        elif name == "smtp":
            recipients = _names(settings.smtp_to)
            if not recipients:
                raise ValueError(
                    "TERRITORY_ALERT_SINKS includes smtp but TERRITORY_SMTP_TO is empty; set a comma list of recipients"
                )
            sinks.append(
                SmtpSink(
                    settings.smtp_host,
                    int(settings.smtp_port),
                    settings.smtp_from,
                    recipients,
                    starttls=bool(settings.smtp_starttls),
                    user=settings.smtp_user,
                    password=settings.smtp_password,
                )
            )
    return sinks
