"""One settings object, read from TERRITORY_* environment variables.

Defaults run the demo on the embedded broker and a SQLite file. Built once in the
command's entry point and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from core.records import BALANCED_METRICS, REBALANCE_OBJECTIVES


class SettingsError(ValueError):
    """A setting is invalid or unsafe; the message is one line naming the TERRITORY_ variable."""


@dataclass(frozen=True)
class Settings:
    # Kafka bootstrap address, e.g. "kafka://127.0.0.1:9092". Empty means: the
    # embedded broker started by `territory demo` / `territory broker`.
    kafka_url: str = ""
    # SQLAlchemy URL of the proposal store.
    db_url: str = "sqlite:///territory-data/territory.db"
    # Port of the Prometheus /metrics endpoint (0: pick a free one).
    metrics_port: int = 9464
    # Address the /metrics and review/health servers listen on. Loopback by default: nothing
    # outside the machine reaches them; "0.0.0.0" in a container, where the network is the pod's.
    bind_address: str = "127.0.0.1"
    # Directory for Faust's local table stores and other worker files.
    data_dir: Path = Path("territory-data")
    # Faust application id (also the consumer group).
    app_id: str = "territory-monitor"
    # Partitions of each input topic (all input topics are co-partitioned).
    partitions: int = 4
    # Consumer-group session timeout; short because the embedded broker holds a
    # join for half of it (docs/ARCHITECTURE.md, quirk 1).
    session_timeout_s: float = 8.0
    # Intake: events this much older than their stream's newest event time are dead-lettered
    # (`too_late`); events for an account not yet seen wait this long (event time) for it,
    # at most this many per account, then are dead-lettered (`unknown_account`).
    late_horizon_days: int = 400
    hold_days: int = 30
    max_held_per_account: int = 100
    # Key of the keyed hash that pseudonymises names on ingest. Set your own in production.
    pseudonym_key: str = "territory-demo-pseudonym-key"
    # Find changelog ends by reading (broker quirk 2); "0" turns it off on a correct Kafka.
    exact_end_offsets: int = 1
    # Events dated more than this many days ahead of the wall clock are dead-lettered
    # (`in_the_future`): one bad date must not move a stream's time or the watermark.
    future_margin_days: float = 3.0
    # Bytes of events held for one unknown account (as parsed events, not raw messages);
    # more are dead-lettered `unknown_account`. Keeps every state record far below the limit below.
    max_held_bytes_per_account: int = 262_144
    # Largest record the broker accepts (Kafka's message.max.bytes, 1 MB by default): a state
    # record that would exceed it is refused before it is produced, never sent.
    max_record_bytes: int = 1_000_000
    # --- Kafka connection: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; SASL mechanism PLAIN,
    # SCRAM-SHA-256 or SCRAM-SHA-512; CA and client certificate files for TLS.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    # Replication factor of every topic and changelog the worker creates (1 on the embedded broker).
    replication_factor: int = 1
    # Where Faust keeps table contents between restarts: "memory" (rebuilt from the changelogs
    # at every start) or "rocksdb" (on disk under data_dir, only the changelog tail is re-read).
    table_store: str = "memory"
    # Imbalance band: a rep is out of balance outside fair_share * (1 +- tolerance).
    tolerance: float = 0.10
    # Leave the out-of-band state only when back inside fair_share * (1 +- tolerance * hysteresis).
    hysteresis: float = 0.8
    # Quota pace (detectors.quota_pace): a rep is behind when their sales so far this calendar
    # year fall below this share of what their quota and the seasons expect by now, ahead above
    # the second; they leave either state as the band above (hysteresis).
    quota_pace_behind: float = 0.85
    quota_pace_ahead: float = 1.2
    # Its run-rate test: a CUSUM of each month's log(sales / expected) in units of a month's
    # noise, signalled at this threshold. The noise falls with the orders a rep's month holds
    # (about 0.11 at 250 accounts a rep, 0.055 at 1,000: docs/benchmarks/quota_pace.md).
    quota_pace_run_rate_threshold: float = 4.0
    quota_pace_run_rate_noise: float = 0.12
    # "model": the learned potential model values accounts; "trailing": the trailing sales window.
    potential: str = "model"
    # Trailing window (days of event time) over which sales make the potential.
    potential_window_days: int = 365
    # No imbalance is judged until this much event-time history has been seen.
    warmup_days: int = 365
    # The planner judges this many days of event time behind its watermark, so records still
    # in flight on another partition are counted (allowed lateness).
    lateness_days: float = 2.0
    # Planner: evaluate after at most this many snapshots or this many seconds. Each batch is
    # judged, checkpointed and made durable once: in alternating demo runs 2,000 ended 4-8 s
    # earlier than 500 while the planner caught up; live traffic below it is judged every
    # `planner_interval_s` as before.
    planner_batch: int = 2000
    # Input messages the intake takes at a time, and how long it waits to fill a batch. A batch
    # sends the planner one snapshot per account it touched, so larger batches mean fewer
    # snapshots for the same events, and the planner's work is per snapshot: the demo's 74k
    # events made 55k snapshots with 1,000 / 0.2 s and 30k with 10,000 / 0.5 s (docs/BENCHMARKS.md,
    # "Demo timing"). The wait adds at most half a second to an event's way to a signal.
    intake_batch: int = 10_000
    intake_batch_s: float = 0.5
    planner_interval_s: float = 1.0
    # Longest a graceful stop (SIGTERM, SIGINT) may take before the worker exits anyway: with
    # the broker away Faust waits 60 s for its consumer. Keep it below the orchestrator's grace.
    stop_timeout_s: float = 15.0
    # Rebalancer: CP-SAT time limit, solver workers, nearest reps considered per account.
    solver_time_limit_s: float = 20.0
    solver_workers: int = 2
    candidate_reps: int = 3
    # What proposals balance ("potential", "workload" or "potential,workload") and what
    # they minimise ("moves" or "moved_potential"); the same choices as `territory rebalance`.
    rebalance_metrics: str = "potential"
    rebalance_objective: str = "moves"
    # "company": one fair share for every rep; "district": fair shares and moves within each
    # district (rep.upserted `district`), so no proposal takes accounts across districts;
    # "segment_pool": the same within each pool of reps linked by the segments they serve.
    rebalance_scope: str = "company"
    # Minimum wall-clock seconds between two proposals for an unchanged set of signals.
    rebalance_cooldown_s: float = 30.0
    # Travel proposals (off at 0): at the first judgement of each ISO week of event time, with
    # every rep in band, the least travel with at most this many moves, band kept; proposed only
    # when it saves at least `travel_proposal_min_saving` of the current total travel.
    travel_proposal_moves: int = 0
    travel_proposal_min_saving: float = 0.02
    log_level: str = "INFO"

    # --- alerts: where alerts go, comma list of kafka, log, alertmanager, webhook, smtp.
    alert_sinks: str = "kafka,log"
    # Prometheus Alertmanager base URL (its v2 API), e.g. "http://127.0.0.1:9093".
    alertmanager_url: str = ""
    # Generic webhook: JSON POSTed here, body signed with HMAC-SHA256 of this secret
    # (header X-Territory-Signature: sha256=<hex>).
    webhook_url: str = ""
    webhook_secret: str = ""
    # SMTP e-mail for alerts and the weekly review; recipients are a comma list.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: int = 0
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "territory-monitor@localhost"
    smtp_to: str = ""
    # The same incident is re-sent to a sink at most this often (updates in between are merged).
    alert_throttle_s: float = 300.0
    # A failing sink is retried with exponential backoff up to this many seconds apart.
    alert_retry_max_s: float = 300.0
    # Decided proposals, signals, sent alerts and stored reports older than this are pruned
    # from the store by the worker (pending proposals are kept until decided).
    retention_days: int = 365
    # --- weekly review: cron (minute hour day month day_of_week) in this time zone.
    report_cron: str = "0 7 * * mon"
    report_timezone: str = "Europe/Berlin"
    report_to: str = ""  # recipients of the weekly review; empty: smtp_to
    # --- review page and HTTP API served by the worker (0: off).
    web_port: int = 8088
    # Bearer token for write actions (approve/reject); reads need `api_read_token` when set.
    api_token: str = "territory-demo-token"
    api_read_token: str = ""
    # After this many failed token checks from one client address within `auth_window_s`
    # seconds, its requests are answered 429 until the window has passed.
    auth_max_failures: int = 10
    auth_window_s: float = 60.0
    # Host names the review server answers to (comma list; "*": any). Empty: localhost,
    # 127.0.0.1, ::1 and bind_address. Another Host header gets 421, so a page of another
    # site whose name was re-pointed at this address (DNS rebinding) cannot read it.
    allowed_hosts: str = ""
    # Lifetime of the review page's login cookie; 1: mark it Secure (serve it over https only).
    session_max_age_s: float = 28800.0
    cookie_secure: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read TERRITORY_<FIELD> variables; `overrides` win over the environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}  # each parsed to its field's type
        for field in fields(cls):
            raw = environ.get(f"TERRITORY_{field.name.upper()}")
            # An empty secret is a value, never "use the public demo one": an empty
            # TERRITORY_API_TOKEN turns writes off, an empty pseudonym key is refused.
            if raw is None or (raw == "" and field.name not in _EMPTY_IS_A_VALUE):
                continue
            values[field.name] = _parse(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise SettingsError("; ".join(problems))

    def _problems(self) -> list[str]:
        """Every invalid value, each as "TERRITORY_X=value: what is allowed"."""
        problems: list[str] = []

        def need(name: str, ok: bool, allowed: str) -> None:
            if not ok:
                problems.append(f"TERRITORY_{name.upper()}={getattr(self, name)!r}: {allowed}")

        # nan compares false with everything: name it once, then skip the range checks.
        not_finite = {
            f.name
            for f in fields(self)
            if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))
        }
        for name in sorted(not_finite):
            need(name, False, "must be a finite number")
        finite = {f.name for f in fields(self)} - not_finite
        for name, low in _AT_LEAST.items():
            if name in finite:
                need(name, getattr(self, name) >= low, f"must be at least {low}")
        for name in _POSITIVE:
            if name in finite:
                need(name, getattr(self, name) > 0, "must be greater than 0")
        for name, low in _PORTS.items():
            port = getattr(self, name)
            need(name, isinstance(port, int) and low <= port <= 65535, f"must be a port number from {low} to 65535")
        for name, allowed in _CHOICES.items():
            need(name, getattr(self, name) in allowed, "use one of " + ", ".join(map(str, allowed)))
        if "hysteresis" in finite:
            need("hysteresis", 0 < self.hysteresis <= 1, "must be in (0, 1]: more than 0, at most 1")
        if "quota_pace_behind" in finite:
            need("quota_pace_behind", 0 < self.quota_pace_behind < 1, "must be in (0, 1): more than 0, less than 1")
        if "travel_proposal_min_saving" in finite:
            need(
                "travel_proposal_min_saving",
                0 <= self.travel_proposal_min_saving < 1,
                "must be in [0, 1): a share of the current total travel",
            )
        if "quota_pace_run_rate_noise" in finite:
            need("quota_pace_run_rate_noise", 0 < self.quota_pace_run_rate_noise <= 2, "must be in (0, 2]")
        if "quota_pace_ahead" in finite:
            need("quota_pace_ahead", self.quota_pace_ahead > 1, "must be more than 1")
        need(
            "log_level",
            isinstance(logging.getLevelName(self.log_level), int),
            "use DEBUG, INFO, WARNING, ERROR or CRITICAL",
        )
        need("pseudonym_key", bool(self.pseudonym_key), "must not be empty: names are pseudonymised with it")
        unknown = [m for m in self.metric_list if m not in BALANCED_METRICS]
        need("rebalance_metrics", bool(self.metric_list) and not unknown, f"use a comma list of {BALANCED_METRICS}")
        need(
            "rebalance_objective",
            self.rebalance_objective in REBALANCE_OBJECTIVES,
            f"use one of {REBALANCE_OBJECTIVES}",
        )
        problems += self._schedule_problems()
        return problems

    def _schedule_problems(self) -> list[str]:
        from zoneinfo import ZoneInfo

        from apscheduler.triggers.cron import CronTrigger

        try:
            zone = ZoneInfo(self.report_timezone)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
            return [f"TERRITORY_REPORT_TIMEZONE={self.report_timezone!r}: use an IANA time zone, e.g. Europe/Berlin"]
        try:
            CronTrigger.from_crontab(self.report_cron, timezone=zone)
        except ValueError as error:
            return [
                f"TERRITORY_REPORT_CRON={self.report_cron!r}: not a cron expression "
                f"(minute hour day month day_of_week): {str(error).splitlines()[0]}"
            ]
        return []

    @property
    def bind_is_loopback(self) -> bool:
        """Whether only this machine reaches the servers on `bind_address` (127.0.0.0/8, ::1, localhost)."""
        if self.bind_address == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind_address).is_loopback
        except ValueError:  # a host name or "": other machines may reach it
            return False

    def demo_secrets(self) -> list[str]:
        """The variables that still hold a public value: this repository's demo default or
        the deployment files' placeholder."""
        return [
            f"TERRITORY_{name.upper()}"
            for name in _SECRETS
            if getattr(self, name) and getattr(self, name) in (_DEMO_SECRETS.get(name), _PLACEHOLDER)
        ]

    def check_demo_secrets(self, log: logging.Logger) -> None:
        """At the start of a serving command: demo secrets are refused on a bind address
        other machines reach (SettingsError) and one warning line on loopback."""
        demo = self.demo_secrets()
        if not demo:
            return
        if not self.bind_is_loopback:
            raise SettingsError(
                f"{', '.join(demo)} still hold{'s' if len(demo) == 1 else ''} the public demo value "
                f"and TERRITORY_BIND_ADDRESS={self.bind_address!r} is reachable from other machines: "
                f"set your own secret{'s' if len(demo) > 1 else ''}"
            )
        log.warning(
            "%s still hold%s the public demo value: fine on loopback (%s), refused on any other TERRITORY_BIND_ADDRESS",
            ", ".join(demo),
            "s" if len(demo) == 1 else "",
            self.bind_address,
        )

    @property
    def potential_window_months(self) -> int:
        """`potential_window_days` in whole months (at least one)."""
        return max(1, round(self.potential_window_days / 30.44))

    @property
    def metric_list(self) -> tuple[str, ...]:
        """`rebalance_metrics` as a tuple, e.g. ("potential", "workload")."""
        return tuple(m.strip() for m in self.rebalance_metrics.split(",") if m.strip())

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)

    @property
    def bootstrap_servers(self) -> str:
        """The broker address without the kafka:// scheme, for aiokafka."""
        url = self.kafka_url
        for scheme in ("kafka://", "tcp://"):
            if url.startswith(scheme):
                url = url[len(scheme) :]
        return url

    @property
    def faust_broker(self) -> str:
        return "kafka://" + self.bootstrap_servers


# Secrets where an empty variable is taken as given (see from_env).
_EMPTY_IS_A_VALUE = frozenset({"api_token", "api_read_token", "pseudonym_key", "webhook_secret"})
_SECRETS = ("api_token", "api_read_token", "pseudonym_key", "webhook_secret")
# The defaults anyone can read in this repository, and the placeholder of deploy/k8s/secret.yaml:
# for the demo on loopback only.
_DEMO_SECRETS = {f.name: f.default for f in fields(Settings) if f.name in _SECRETS and f.default}
_PLACEHOLDER = "CHANGE-ME"
# Lower bounds: counts, days and bytes are never negative; some must be at least 1.
_AT_LEAST = {
    "partitions": 1,
    "replication_factor": 1,
    "planner_batch": 1,
    "intake_batch": 1,
    "solver_workers": 1,
    "candidate_reps": 1,
    "potential_window_days": 1,
    "max_record_bytes": 1,
    "retention_days": 1,
    "tolerance": 0,
    "travel_proposal_moves": 0,
    "late_horizon_days": 0,
    "hold_days": 0,
    "max_held_per_account": 0,
    "warmup_days": 0,
    "lateness_days": 0,
    "future_margin_days": 0,
    "max_held_bytes_per_account": 0,
    "rebalance_cooldown_s": 0,
    "alert_throttle_s": 0,
    "auth_max_failures": 0,
}
# Durations that must be more than zero (a zero interval or timeout would spin or never wait).
_POSITIVE = (
    "session_timeout_s",
    "planner_interval_s",
    "intake_batch_s",
    "solver_time_limit_s",
    "stop_timeout_s",
    "quota_pace_run_rate_threshold",
    "alert_retry_max_s",
    "auth_window_s",
    "session_max_age_s",
)
# Lowest allowed port; 0 means "off" (web) or "pick a free one" (metrics).
_PORTS = {"metrics_port": 0, "web_port": 0, "smtp_port": 1}
_CHOICES: dict[str, tuple[object, ...]] = {
    "table_store": ("memory", "rocksdb"),
    "kafka_security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "kafka_sasl_mechanism": ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    "potential": ("model", "trailing"),
    "smtp_starttls": (0, 1),
    "cookie_secure": (0, 1),
    "exact_end_offsets": (0, 1),
    "rebalance_scope": ("company", "district", "segment_pool"),
}
# Names people write in either case; the value is compared in this case.
_UPPER = frozenset({"log_level", "kafka_security_protocol", "kafka_sasl_mechanism"})
_LOWER = frozenset({"table_store", "potential"})


def _parse(name: str, type_name: object, raw: str) -> object:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError:
        raise SettingsError(f"TERRITORY_{name.upper()}={raw!r} is not a valid {kind}") from None
    if name in _UPPER:
        return raw.strip().upper()
    if name in _LOWER:
        return raw.strip().lower()
    return raw
