"""docs/EVENTS.md says what crosses territory.signals and territory.proposals: its tables are
checked against the records (core/records.py) and the detectors the planner runs, so the two
cannot drift apart again (they had: kinds never emitted, states out of date)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from core.records import Proposal, Signal, field_names
from core.settings import Settings
from detectors import standard_detectors
from detectors.protocol import Documented

DOC = Path(__file__).resolve().parent.parent / "docs" / "EVENTS.md"


def tables(heading: str) -> list[list[list[str]]]:
    """The tables under a `### heading`, as rows of cells (header and rule dropped)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n### {heading}\n", 1)[1].split("\n#", 1)[0]
    found, current = [], []
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        elif current:
            found.append(current[2:])
            current = []
    return found


def names(cell: str) -> list[str]:
    """The `backticked` names of a cell, leaving out what is in parentheses (values, notes)."""
    while re.search(r"\([^()]*\)", cell):
        cell = re.sub(r"\([^()]*\)", "", cell)
    return re.findall(r"`([^`]+)`", cell.split(". ")[0])


@pytest.mark.parametrize("heading, record", [("Signals", Signal), ("Proposals", Proposal)])
def test_the_field_tables_list_exactly_the_record_fields(heading, record):
    documented = [names(row[0])[0] for row in tables(heading)[0]]
    assert documented == list(field_names(record))


def kinds_table() -> dict[str, dict[str, list[str]]]:
    return {
        names(row[0])[0]: {"detectors": names(row[1]), "states": names(row[2]), "evidence": names(row[4])}
        for row in tables("Signals")[1]
    }


def test_the_kinds_table_lists_every_detector_with_its_states():
    by_kind: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"detectors": set(), "states": set()})
    for detector in standard_detectors(Settings()):
        by_kind[detector.kind]["detectors"].add(detector.name)
        by_kind[detector.kind]["states"].update(detector.states)
    documented = {
        kind: {"detectors": set(row["detectors"]), "states": set(row["states"])} for kind, row in kinds_table().items()
    }
    assert documented == dict(by_kind)


def example_signals() -> list[Signal]:
    """A signal of each detector the planner runs, made by the detector itself."""
    detectors = standard_detectors(Settings())
    assert all(isinstance(detector, Documented) for detector in detectors)
    return [detector.example_signal() for detector in detectors]


def test_the_kinds_table_lists_the_evidence_each_detector_gives():
    documented = {kind: row["evidence"] for kind, row in kinds_table().items()}
    signals = example_signals()
    assert {signal.kind for signal in signals} == set(documented)
    for signal in signals:
        assert sorted(signal.evidence) == sorted(documented[signal.kind]), signal.kind
        assert signal.state in kinds_table()[signal.kind]["states"]
        assert signal.summary, signal.kind
