"""The worker `territory demo` starts runs with the settings the demo chose for it (its
broker, store, ports, a short cooldown and a short solver time limit), not with what the
caller's environment alone would give: before, the solver's 5 s never reached the worker,
which solved each demo proposal for up to 20 s while the planner waited."""

from __future__ import annotations

from core.settings import Settings
from territory.demo import DEMO_SOLVER_TIME_LIMIT_S, worker_env


def test_the_demos_worker_reads_back_every_setting_the_demo_chose():
    environ = {"PATH": "/usr/bin", "TERRITORY_SOLVER_TIME_LIMIT_S": "20", "TERRITORY_LOG_LEVEL": "warning"}
    chosen = Settings.from_env(environ).with_(
        kafka_url="kafka://127.0.0.1:41234",
        db_url="sqlite:////tmp/demo dir/demo.db",
        metrics_port=45678,
        rebalance_cooldown_s=5.0,
        solver_time_limit_s=DEMO_SOLVER_TIME_LIMIT_S,
    )
    env = worker_env(chosen, environ)
    assert Settings.from_env(env) == chosen
    assert env["PATH"] == "/usr/bin" and env["TERRITORY_SOLVER_TIME_LIMIT_S"] == str(DEMO_SOLVER_TIME_LIMIT_S)


def test_settings_the_demo_left_alone_stay_as_the_caller_set_them():
    environ = {"TERRITORY_CANDIDATE_REPS": "6"}
    env = worker_env(Settings.from_env(environ), environ)
    assert env == environ
