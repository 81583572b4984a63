"""One settings object, read from TERRITORY_* environment variables.

Defaults run the demo on the embedded broker and a SQLite file. Built once in the
command's entry point and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping


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
    # join for half of it (ARCHITECTURE.md, quirk 1).
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
    # "model": the learned potential model values accounts; "trailing": the trailing sales window.
    potential: str = "model"
    # Trailing window (days of event time) over which sales make the potential.
    potential_window_days: int = 365
    # No imbalance is judged until this much event-time history has been seen.
    warmup_days: int = 365
    # The planner judges this many days of event time behind its watermark, so records still
    # in flight on another partition are counted (allowed lateness).
    lateness_days: float = 2.0
    # Planner: evaluate after at most this many snapshots or this many seconds.
    planner_batch: int = 500
    planner_interval_s: float = 1.0
    # Rebalancer: CP-SAT time limit, solver workers, nearest reps considered per account.
    solver_time_limit_s: float = 20.0
    solver_workers: int = 2
    candidate_reps: int = 3
    # What proposals balance ("potential", "workload" or "potential,workload") and what
    # they minimise ("moves" or "moved_potential"); the same choices as `territory rebalance`.
    rebalance_metrics: str = "potential"
    rebalance_objective: str = "moves"
    # Minimum wall-clock seconds between two proposals for an unchanged set of signals.
    rebalance_cooldown_s: float = 30.0
    log_level: str = "INFO"

    # --- alerts (issue 6): where alerts go, comma list of kafka, log, alertmanager, webhook, smtp.
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Read TERRITORY_<FIELD> variables; `overrides` win over the environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = environ.get(f"TERRITORY_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        from rebalancer import METRICS, OBJECTIVES  # pure logic, no cycle

        unknown = [m for m in self.metric_list if m not in METRICS]
        if unknown or not self.metric_list:
            raise ValueError(f"TERRITORY_REBALANCE_METRICS={self.rebalance_metrics!r}: use a comma list of {METRICS}")
        if self.rebalance_objective not in OBJECTIVES:
            raise ValueError(f"TERRITORY_REBALANCE_OBJECTIVE={self.rebalance_objective!r}: use one of {OBJECTIVES}")

    @property
    def metric_list(self) -> tuple[str, ...]:
        """`rebalance_metrics` as a tuple, e.g. ("potential", "workload")."""
        return tuple(m.strip() for m in self.rebalance_metrics.split(",") if m.strip())

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    @property
    def bootstrap_servers(self) -> str:
        """The broker address without the kafka:// scheme, for aiokafka."""
        url = self.kafka_url
        for scheme in ("kafka://", "tcp://"):
            if url.startswith(scheme):
                url = url[len(scheme):]
        return url

    @property
    def faust_broker(self) -> str:
        return "kafka://" + self.bootstrap_servers


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
        raise ValueError(f"TERRITORY_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
