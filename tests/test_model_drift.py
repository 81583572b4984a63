"""The model-drift detector: a rise of the prediction error found with size and
start; stationary (heavy-tailed) noise and falling error are not findings; one
finding per rise; saved state; parameter checks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detectors import ErrorDriftFinding, ModelDriftDetector

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def error_stream(
    days: int,
    seed: int,
    change_day: int | None = None,
    factor: float = 1.5,
    per_day: int = 60,
    heavy_tailed: bool = False,
):
    """(error, at): absolute relative errors of `per_day` predictions a day in business hours."""
    rng = np.random.default_rng(seed)
    for day in range(days):
        f = factor if change_day is not None and day >= change_day else 1.0
        n = rng.poisson(per_day)
        if heavy_tailed:
            errors = rng.lognormal(-0.5, 0.8, size=n) * 0.3 * f
        else:
            errors = np.abs(rng.normal(0.0, 0.3, size=n)) * f
        for k, e in enumerate(errors):
            yield float(e), T0 + timedelta(days=day, hours=7, seconds=int(43_200 * k / n))


def run(detector: ModelDriftDetector, stream) -> list[ErrorDriftFinding]:
    found = []
    for error, at in stream:
        found += detector.update(error, at).findings
    return found


def test_catches_a_rise_of_the_error_with_size_and_start():
    found = run(ModelDriftDetector(), error_stream(300, seed=1, change_day=200))
    assert len(found) == 1
    f = found[0]
    change = (T0 + timedelta(days=200)).date()
    assert f.direction == "rise"
    assert 0.3 < f.size < 0.9  # true rise: +50%
    assert abs((f.start - change).days) <= 3
    assert 0 <= (f.detected_at.date() - change).days <= 5
    assert f.evidence.detector == "adwin"
    assert f.evidence.recent_error > f.evidence.baseline_error
    assert json.loads(json.dumps(f.to_dict()))["start"] == f.start.isoformat()


def test_stationary_heavy_tailed_noise_gives_no_finding():
    detector = ModelDriftDetector()
    assert run(detector, error_stream(2 * 365, seed=2, heavy_tailed=True)) == []
    assert detector.baseline_error is not None


def test_falling_error_is_not_a_finding():
    assert run(ModelDriftDetector(), error_stream(300, seed=3, change_day=150, factor=0.5)) == []


def test_one_finding_per_rise_even_while_the_error_stays_high():
    found = run(ModelDriftDetector(), error_stream(500, seed=4, change_day=100, factor=1.6, heavy_tailed=True))
    assert len(found) == 1


def test_small_rise_below_min_rise_is_not_reported():
    stream = list(error_stream(400, seed=5, change_day=150, factor=1.25))
    assert len(run(ModelDriftDetector(min_rise=0.1), stream)) == 1
    assert run(ModelDriftDetector(min_rise=0.5), stream) == []


def test_save_and_restore_mid_stream_gives_identical_findings():
    stream = list(error_stream(300, seed=6, change_day=180))
    expected = run(ModelDriftDetector(), stream)
    assert expected
    half = len(stream) // 2
    first = ModelDriftDetector()
    run(first, stream[:half])
    state = json.loads(json.dumps(first.state_dict()))
    restored = ModelDriftDetector().load_state_dict(state)
    assert [f.to_dict() for f in run(restored, stream[half:])] == [f.to_dict() for f in expected]


def test_bad_inputs_are_refused():
    detector = ModelDriftDetector()
    with pytest.raises(ValueError, match="timezone-aware"):
        detector.update(0.1, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="finite number >= 0"):
        detector.update(-0.1, T0)
    with pytest.raises(ValueError, match="valid: 2"):
        detector.load_state_dict({**detector.state_dict(), "version": 1})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"delta": 0}, r"delta must be a number in \(0, 1\)"),
        ({"delta": 1.5}, r"delta must be a number in \(0, 1\)"),
        ({"min_samples": 5}, "min_samples must be an integer >= 10"),
        ({"min_rise": -0.1}, "min_rise must be a finite number >= 0"),
        ({"clock": 0}, "clock must be an integer >= 1"),
    ],
)
def test_invalid_parameters_are_refused_with_the_valid_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelDriftDetector(**kwargs)
