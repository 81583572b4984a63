"""Settings are checked at start, with one line naming the variable.

An empty TERRITORY_API_TOKEN means "writes refused", not the public demo token; the demo
secrets are refused on a bind address other machines reach and warned about on loopback;
out-of-range values stop the command with status 2 and no traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings, SettingsError
from territory.broker import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
OWN_SECRETS = {"TERRITORY_API_TOKEN": "write-token-of-this-site", "TERRITORY_PSEUDONYM_KEY": "key-of-this-site"}


def test_an_empty_api_token_refuses_writes_instead_of_using_the_demo_token():
    settings = Settings.from_env({"TERRITORY_API_TOKEN": ""})
    assert settings.api_token == ""
    assert Settings.from_env({}).api_token == Settings().api_token  # unset: the default


def test_an_empty_pseudonym_key_is_refused_not_replaced_by_the_demo_key():
    with pytest.raises(SettingsError, match="TERRITORY_PSEUDONYM_KEY"):
        Settings.from_env({"TERRITORY_PSEUDONYM_KEY": ""})


@pytest.mark.parametrize(
    "variable, value",
    [
        ("TERRITORY_TOLERANCE", "-0.1"),
        ("TERRITORY_TOLERANCE", "nan"),
        ("TERRITORY_HYSTERESIS", "0"),
        ("TERRITORY_HYSTERESIS", "1.5"),
        ("TERRITORY_QUOTA_PACE_BEHIND", "0"),
        ("TERRITORY_QUOTA_PACE_BEHIND", "1"),
        ("TERRITORY_QUOTA_PACE_BEHIND", "nan"),
        ("TERRITORY_QUOTA_PACE_AHEAD", "1"),
        ("TERRITORY_QUOTA_PACE_AHEAD", "0.9"),
        ("TERRITORY_QUOTA_PACE_AHEAD", "inf"),
        ("TERRITORY_METRICS_PORT", "70000"),
        ("TERRITORY_WEB_PORT", "-1"),
        ("TERRITORY_SMTP_PORT", "0"),
        ("TERRITORY_PARTITIONS", "0"),
        ("TERRITORY_HOLD_DAYS", "-3"),
        ("TERRITORY_LATE_HORIZON_DAYS", "-1"),
        ("TERRITORY_MAX_HELD_PER_ACCOUNT", "-1"),
        ("TERRITORY_WARMUP_DAYS", "-1"),
        ("TERRITORY_POTENTIAL_WINDOW_DAYS", "0"),
        ("TERRITORY_LATENESS_DAYS", "-1"),
        ("TERRITORY_FUTURE_MARGIN_DAYS", "-1"),
        ("TERRITORY_FUTURE_MARGIN_DAYS", "inf"),
        ("TERRITORY_MAX_HELD_BYTES_PER_ACCOUNT", "-5"),
        ("TERRITORY_MAX_RECORD_BYTES", "0"),
        ("TERRITORY_TABLE_STORE", "redis"),
        ("TERRITORY_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("TERRITORY_KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("TERRITORY_REPLICATION_FACTOR", "0"),
        ("TERRITORY_PLANNER_BATCH", "0"),
        ("TERRITORY_PLANNER_INTERVAL_S", "0"),
        ("TERRITORY_SOLVER_TIME_LIMIT_S", "-1"),
        ("TERRITORY_SOLVER_WORKERS", "0"),
        ("TERRITORY_CANDIDATE_REPS", "0"),
        ("TERRITORY_REBALANCE_COOLDOWN_S", "-1"),
        ("TERRITORY_SESSION_TIMEOUT_S", "0"),
        ("TERRITORY_ALERT_THROTTLE_S", "-1"),
        ("TERRITORY_ALERT_RETRY_MAX_S", "0"),
        ("TERRITORY_AUTH_WINDOW_S", "0"),
        ("TERRITORY_AUTH_MAX_FAILURES", "-1"),
        ("TERRITORY_POTENTIAL", "magic"),
        ("TERRITORY_LOG_LEVEL", "LOUD"),
        ("TERRITORY_REPORT_TIMEZONE", "Mars/Olympus"),
        ("TERRITORY_REPORT_CRON", "every monday"),
        ("TERRITORY_SMTP_STARTTLS", "2"),
        ("TERRITORY_EXACT_END_OFFSETS", "5"),
        ("TERRITORY_PARTITIONS", "four"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_variable(variable: str, value: str):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    message = str(refused.value)
    assert variable in message and "\n" not in message


@pytest.mark.parametrize(
    "variable, value",
    [
        ("TERRITORY_TABLE_STORE", "rocksdb"),
        ("TERRITORY_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("TERRITORY_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("TERRITORY_HYSTERESIS", "1"),
        ("TERRITORY_TOLERANCE", "0.25"),
        ("TERRITORY_QUOTA_PACE_BEHIND", "0.9"),
        ("TERRITORY_QUOTA_PACE_AHEAD", "1.05"),
        ("TERRITORY_WEB_PORT", "0"),
        ("TERRITORY_METRICS_PORT", "65535"),
        ("TERRITORY_AUTH_MAX_FAILURES", "0"),
        ("TERRITORY_LOG_LEVEL", "debug"),
    ],
)
def test_valid_values_are_taken(variable: str, value: str):
    Settings.from_env({variable: value})


def test_the_defaults_are_valid():
    Settings()


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.1.2.3", "worker.example"])
@pytest.mark.parametrize("demo_left", ["TERRITORY_API_TOKEN", "TERRITORY_PSEUDONYM_KEY"])
def test_demo_secrets_are_refused_on_a_bind_address_others_reach(bind: str, demo_left: str):
    environ = {**OWN_SECRETS, "TERRITORY_BIND_ADDRESS": bind}
    del environ[demo_left]
    settings = Settings.from_env(environ)
    with pytest.raises(SettingsError) as refused:
        settings.check_demo_secrets(logging.getLogger("test"))
    assert demo_left in str(refused.value) and "\n" not in str(refused.value)
    Settings.from_env({**OWN_SECRETS, "TERRITORY_BIND_ADDRESS": bind}).check_demo_secrets(logging.getLogger("t"))


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_demo_secrets_on_loopback_are_one_warning(bind: str, caplog):
    settings = Settings.from_env({"TERRITORY_BIND_ADDRESS": bind})
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        settings.check_demo_secrets(logging.getLogger("core.settings"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "TERRITORY_API_TOKEN" in warnings[0].getMessage() and "TERRITORY_PSEUDONYM_KEY" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.settings"):
        Settings.from_env({**OWN_SECRETS, "TERRITORY_BIND_ADDRESS": bind}).check_demo_secrets(
            logging.getLogger("core.settings")
        )
    assert not caplog.records


def territory(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the CLI; should it start anyway (the bug), its whole process group dies with the test."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TERRITORY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "territory.cli", *args],
        cwd=ROOT,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_cli_prints_one_line_and_exits_2_on_an_invalid_setting():
    done = territory("worker", TERRITORY_HYSTERESIS="1.5")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "TERRITORY_HYSTERESIS" in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1


def test_the_worker_refuses_demo_secrets_on_0_0_0_0_before_starting_anything(tmp_path):
    done = territory(
        "worker", TERRITORY_BIND_ADDRESS="0.0.0.0", TERRITORY_PSEUDONYM_KEY="own-key", TERRITORY_DATA_DIR=str(tmp_path)
    )
    assert done.returncode == 2, done.stderr
    assert "TERRITORY_API_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert "broker" not in done.stdout  # refused before an embedded broker was started


def test_the_worker_refuses_a_sink_without_its_settings_before_starting(tmp_path):
    done = territory("worker", TERRITORY_ALERT_SINKS="log,webhook", TERRITORY_DATA_DIR=str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "TERRITORY_WEBHOOK_URL" in done.stderr and "Traceback" not in done.stderr


def test_the_deployment_placeholder_counts_as_a_demo_secret():
    settings = Settings.from_env(
        {**OWN_SECRETS, "TERRITORY_API_READ_TOKEN": "CHANGE-ME", "TERRITORY_BIND_ADDRESS": "0.0.0.0"}
    )
    with pytest.raises(SettingsError, match="TERRITORY_API_READ_TOKEN"):
        settings.check_demo_secrets(logging.getLogger("test"))
