"""The folders are the data flow: what each stage may import, checked on the source.

The data flows monitor -> planner (which runs potential, detectors and rebalancer) -> alerts;
every stage imports `core/`, the planner imports the stages it runs, and the alert stage reads
the planner's records from `core/` without importing the planner, a detector or the
rebalancer. `territory/` (the command line and the worker factory) sits on top and no stage
imports it. Pure logic imports no Kafka, Faust, database, web, metrics or template library,
so it runs in a backtest and a unit test as it runs in the worker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("core", "monitor", "potential", "planner", "detectors", "rebalancer", "alerts", "connectors", "simulator")
INFRASTRUCTURE = (
    "faust",
    "aiokafka",
    "kafka",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "aiohttp",
    "mode",
    "prometheus_client",
    "jinja2",
)
PURE = (
    "detectors",
    "rebalancer",
    "potential",
    "monitor/state.py",
    "monitor/intake.py",
    "planner/planner.py",
    "planner/session.py",
    "planner/watermark.py",
    "core/contract.py",
    "core/river_codec.py",
    "core/settings.py",
    "core/topics.py",
    "core/records.py",
    "core/clock.py",
    "core/formatting.py",
    "core/geocode.py",
    "core/shares.py",
)


def imports_of(path: Path) -> set[str]:
    """Top-level and lazy imports alike (an import inside a function still couples)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def modules(*places: str) -> list[Path]:
    found: list[Path] = []
    for place in places:
        path = ROOT / place
        found += (
            [path] if path.suffix == ".py" else sorted(p for p in path.rglob("*.py") if "migrations" not in p.parts)
        )
    return found


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in imports_of(path)
        if name.split(".")[0] in forbidden
    )


def test_no_stage_imports_the_command_line_shell():
    assert offending(modules(*STAGES), ("territory",)) == []


def test_the_alert_stage_imports_no_detector_planner_or_rebalancer():
    found = offending(modules("alerts"), ("detectors", "rebalancer"))
    found += sorted(
        f"{p.relative_to(ROOT)} imports {n}"
        for p in modules("alerts")
        for n in imports_of(p)
        if n in ("planner.planner", "planner.session", "planner") or n.startswith("planner.")
    )
    assert found == []


def test_the_bottom_package_imports_no_stage():
    """core/ is what every stage shares: it depends on none of them."""
    assert offending(modules("core"), tuple(stage for stage in STAGES if stage != "core")) == []


@pytest.mark.parametrize("place", PURE)
def test_pure_logic_imports_no_kafka_faust_database_or_web_library(place):
    assert offending(modules(place), INFRASTRUCTURE) == []
