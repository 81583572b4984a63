"""The potential model: features see only the past, prequential scoring, the segment prior,
learning, persistence, robustness, and a regional shock reaching the region's accounts."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from potential import (
    PotentialModel,
    RegionalLevels,
    SeasonalIndex,
    features_at,
    learn_from_history,
    predict_potential,
    size_band,
)
from monitor.state import AccountState, trailing_sum

START = 2024 * 12  # month index of 2024-01
SEASON = (0.90, 0.95, 1.05, 1.05, 1.00, 0.95, 0.80, 0.60, 0.95, 1.05, 1.20, 1.50)


def key(idx: int) -> str:
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def month_end(m: int) -> datetime:
    """The end of the m-th month of the synthetic company (m = 1 is 2024-01)."""
    idx = START + m
    return datetime(idx // 12, idx % 12 + 1, 1, tzinfo=timezone.utc)


def company(
    n: int = 400,
    months: int = 24,
    seed: int = 3,
    shock_region: str | None = None,
    shock_month: int = 14,
    seasonal: bool = True,
):
    """Accounts whose true yearly potential is 900 x employees^0.7 x noise, per industry
    and region; monthly sales are exponentially distributed around potential / 12 x season (x 0.4 in the
    shock region from `shock_month`). Returns (final account states, truth(account, m))."""
    rng = random.Random(seed)
    industry_factor = {"retail": 0.6, "manufacturing": 1.5, "logistics": 1.0}
    base, region_of, accounts = {}, {}, []
    for i in range(n):
        industry = rng.choice(list(industry_factor))
        employees = int(rng.lognormvariate(3.5, 0.9)) + 1
        region = rng.choice(["north", "south", "east", "west", "centre"])
        account_id = f"acc-{i:04d}"
        base[account_id] = 900 * industry_factor[industry] * employees**0.7 * rng.lognormvariate(0, 0.3)
        region_of[account_id] = region
        sales, minutes = {}, {}
        for m in range(months):
            level = base[account_id] * (0.4 if region == shock_region and m >= shock_month else 1.0)
            season = SEASON[m % 12] if seasonal else 1.0
            mean = level / 12 * season
            sales[key(START + m)] = round(rng.expovariate(1.0 / mean), 2)
            minutes[key(START + m)] = round(rng.expovariate(1.0) * math.sqrt(level), 1)
        accounts.append(
            AccountState(
                account_id,
                lat=50.0,
                lon=10.0,
                industry=industry,
                employees=employees,
                region=region,
                known=True,
                profile_at="2024-01-01T00:00:00+00:00",
                monthly_sales=sales,
                monthly_minutes=minutes,
            )
        )

    def truth(account_id: str, m: int) -> float:
        shocked = region_of[account_id] == shock_region and m >= shock_month
        return base[account_id] * (0.4 if shocked else 1.0)

    return accounts, truth


def train(model: PotentialModel, accounts, months: int = 24):
    scored = []
    for m in range(1, months + 1):
        scored.append(learn_from_history(model, accounts, month_end(m)))
    return scored


@pytest.fixture(scope="module")
def trained():
    accounts, truth = company()
    model = PotentialModel()
    scored = train(model, accounts)
    return model, accounts, truth, scored


# --- features ---------------------------------------------------------------------------


def test_features_ignore_everything_from_the_month_of_at_on():
    account = AccountState(
        "a",
        industry="retail",
        employees=40,
        region="north",
        known=True,
        profile_at="2024-01-05T00:00:00+00:00",
        monthly_sales={"2024-01": 100.0, "2024-02": 50.0, "2024-05": 70.0},
        monthly_minutes={"2024-02": 30.0},
        opportunities={"o1": ["2024-03-02T00:00:00+00:00", 500.0]},
    )
    at = datetime(2024, 6, 10, tzinfo=timezone.utc)
    before = features_at(account, at)
    later = replace(
        account,
        monthly_sales={**account.monthly_sales, "2024-06": 9_999.0, "2024-09": 5_000.0},
        monthly_minutes={**account.monthly_minutes, "2024-06": 600.0, "2025-01": 60.0},
        opportunities={
            **account.opportunities,
            "o2": ["2024-06-01T00:00:00+00:00", 7_000.0],
            "o3": ["2024-07-01T00:00:00+00:00", 1_000.0],
        },
        profile_at="2024-06-20T00:00:00+00:00",  # a later upsert does not shorten the history
    )
    assert features_at(later, at) == before
    assert before["history_months"] == 5.0  # January .. May
    assert before["sales_3m"] == pytest.approx(12 * 70.0 / 3)
    assert before["sales_6m"] == pytest.approx(12 * 220.0 / 5)  # 5 months of history, not 6
    assert before["order_months"] == 3.0 and before["months_since_first_order"] == 5.0
    assert before["pipeline"] == 500.0 and before["size_band"] == "10-49"
    # Changing a bucket before at's month does change them.
    earlier = replace(account, monthly_sales={**account.monthly_sales, "2024-04": 30.0})
    assert features_at(earlier, at)["sales_3m"] == pytest.approx(12 * 100.0 / 3)


def test_features_are_deseasonalised_with_the_index():
    index = SeasonalIndex()
    index.factors = list(SEASON)
    account = AccountState(
        "a",
        industry="retail",
        employees=5,
        known=True,
        profile_at="2024-01-01T00:00:00+00:00",
        monthly_sales={key(START + m): 1000.0 / 12 * SEASON[m] for m in range(12)},
    )
    features = features_at(account, datetime(2025, 1, 1, tzinfo=timezone.utc), seasonal=index)
    for window in (3, 6, 12):
        assert features[f"sales_{window}m"] == pytest.approx(1000.0)


def test_size_bands():
    assert [size_band(e) for e in (None, 0, 1, 9, 10, 49, 50, 249, 250, 999, 1000)] == [
        "unknown",
        "unknown",
        "1-9",
        "1-9",
        "10-49",
        "10-49",
        "50-249",
        "50-249",
        "250-999",
        "250-999",
        "1000+",
    ]


# --- prequential scoring ----------------------------------------------------------------------


def test_learn_returns_the_prediction_made_before_learning(trained):
    model, accounts, _, _ = trained
    model = PotentialModel.from_state_dict(model.state_dict())  # a copy: the fixture is shared
    features = features_at(accounts[0], month_end(24), seasonal=model.seasonal)
    expected = model.predict(features)
    learned = model.learned
    assert model.learn(features, 10 * expected + 50_000.0) == expected
    assert model.learned == learned + 1
    assert model.predict(features) > expected  # it did learn


def test_learn_from_history_scores_each_month_before_learning_it():
    accounts, _ = company(n=120, months=12)
    model = PotentialModel()
    train(model, accounts, months=8)
    end = month_end(9)
    probe = PotentialModel.from_state_dict(model.state_dict())
    scored = learn_from_history(model, accounts, end)
    assert len(scored) == len(accounts)
    # The same month, predicted by the model as it was before this step.
    probe.seasonal = model.seasonal
    probe.regions = model.regions
    rows = [features_at(a, month_end(6), seasonal=model.seasonal) for a in accounts]
    assert np.allclose([p for _, p, _ in scored], probe.predict_many(rows))
    labels = [label for _, _, label in scored]
    assert model.metrics["learned"] == model.learned
    assert all(label >= 0 for label in labels)


def test_a_month_is_learned_once():
    accounts, _ = company(n=50, months=8)
    model = PotentialModel()
    train(model, accounts, months=6)
    learned, mae = model.learned, model.mae
    assert learn_from_history(model, accounts, month_end(6)) == []
    assert learn_from_history(model, accounts, month_end(5)) == []
    assert (model.learned, model.mae) == (learned, mae)
    assert learn_from_history(model, accounts, month_end(7)) != []


# --- the segment prior ------------------------------------------------------------------------


def test_a_new_account_gets_its_segments_mean_label_not_zero():
    model = PotentialModel()
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    old = [AccountState(f"r{i}", industry="retail", employees=20, known=True) for i in range(2)]
    other = AccountState("m", industry="manufacturing", employees=500, known=True)
    model.learn_many([features_at(a, at) for a in [*old, other]], [1_000.0, 3_000.0, 50_000.0])

    new = features_at(AccountState("new", industry="retail", employees=30, known=True), at)
    assert model.prior(new) == 2_000.0
    assert model.predict(new) == 2_000.0  # nothing else learned yet: the prior alone
    bigger = features_at(AccountState("big", industry="retail", employees=300, known=True), at)
    assert model.prior(bigger) == 2_000.0  # no retail 250-999 yet: the industry's mean
    stranger = features_at(AccountState("x", industry="mining", known=True), at)
    assert model.prior(stranger) == pytest.approx(54_000.0 / 3)  # unknown industry: everyone's mean


def test_a_trained_model_values_a_new_account_from_profile_and_prior(trained):
    model, _, truth, _ = trained
    at = month_end(24)
    new = features_at(AccountState("new", industry="manufacturing", employees=60, region="east", known=True), at)
    assert new["history_months"] == 0.0
    prior = model.prior(new)
    assert prior > 0 and model.predict(new) > 0
    true_like = 900 * 1.5 * 60**0.7  # the synthetic company's potential for such an account
    assert abs(model.predict(new) - true_like) < abs(prior - true_like)  # size matters, not just the segment
    only_prior = PotentialModel.from_state_dict(
        {**model.state_dict(), "params": {**model.state_dict()["params"], "prior_weight": 1.0}}
    )
    assert only_prior.predict(new) == pytest.approx(prior)


# --- learning -----------------------------------------------------------------------------------


def test_the_model_learns_the_relation_and_beats_trailing_sales(trained):
    model, accounts, truth, scored = trained

    def mae_against_truth(model: PotentialModel, m: int) -> float:
        predicted = predict_potential(model, accounts, month_end(m))
        return sum(abs(predicted[a.account_id] - truth(a.account_id, m)) for a in accounts) / len(accounts)

    young = PotentialModel()
    train(young, accounts, months=4)  # one month of labels: little more than segment means
    assert mae_against_truth(model, 24) < 0.6 * mae_against_truth(young, 4)

    # The prequential error against the (noisy, 3-month) labels drops too.
    early = np.mean([abs(p - y) for _, p, y in scored[3]])
    late = np.mean([abs(p - y) for month in scored[-3:] for _, p, y in month])
    assert late < early
    assert model.mae == pytest.approx(np.mean([abs(p - y) for month in scored for _, p, y in month]))
    assert 0 < model.metrics["relative_mae"] < 1

    # Against the truth it beats the placeholder, the last 12 months' sales.
    watermark = datetime(2025, 12, 31, tzinfo=timezone.utc)
    baseline = sum(abs(trailing_sum(a.monthly_sales, watermark, 12) - truth(a.account_id, 24)) for a in accounts) / len(
        accounts
    )
    assert mae_against_truth(model, 24) < 0.85 * baseline


def test_the_seasonal_index_is_learned_from_company_totals(trained):
    model, _, _, _ = trained
    assert max(abs(f - s) for f, s in zip(model.seasonal.factors, SEASON)) < 0.1
    assert sum(model.seasonal.factors) == pytest.approx(12.0)


def test_a_regional_shock_reaches_the_regions_accounts_within_months():
    accounts, truth = company(n=500, months=19, seed=5, shock_region="north", shock_month=14)
    model = PotentialModel()
    train(model, accounts, months=17)  # three months of shock seen
    predicted = predict_potential(model, accounts, month_end(17))
    north = [a for a in accounts if a.region == "north"]
    rest = [a for a in accounts if a.region != "north"]
    ratio_north = sum(predicted[a.account_id] for a in north) / sum(truth(a.account_id, 12) for a in north)
    ratio_rest = sum(predicted[a.account_id] for a in rest) / sum(truth(a.account_id, 12) for a in rest)
    assert 0.3 < ratio_north < 0.6  # the truth is 0.4 of before
    assert 0.8 < ratio_rest < 1.2  # and the other regions are not dragged along
    watermark = month_end(17) - timedelta(microseconds=1)
    trailing = sum(trailing_sum(a.monthly_sales, watermark, 12) for a in north) / sum(
        truth(a.account_id, 12) for a in north
    )
    assert trailing > 0.7  # what the placeholder still believes


def test_regional_levels_leave_a_steady_region_alone():
    rng = random.Random(2)
    levels = RegionalLevels()
    months = [key(START + m) for m in range(24)]
    levels.update({r: {k: 100.0 * rng.uniform(0.9, 1.1) for k in months} for r in "abcdef"})
    for region in "abcdef":
        assert np.allclose(levels.table(region, START + 24), 1.0, atol=0.03)  # chance wobbles of +-10%
    assert np.allclose(levels.table("nowhere", START + 24), 1.0)


# --- persistence --------------------------------------------------------------------------------


def test_state_dict_round_trip_gives_identical_predictions_and_learning(trained):
    model, accounts, _, _ = trained
    state = json.loads(json.dumps(model.state_dict()))  # JSON-safe
    restored = PotentialModel.from_state_dict(state)
    rows = [features_at(a, month_end(24), seasonal=model.seasonal) for a in accounts]
    # Equal to the last bits or nearly: a restored model may sum the same weights in another
    # order (river keeps them in dicts), and float sums depend on their order.
    np.testing.assert_allclose(restored.predict_many(rows), model.predict_many(rows), rtol=1e-9)
    assert (restored.learned, restored.mae, restored.metrics, restored.last_month) == (
        model.learned,
        model.mae,
        model.metrics,
        model.last_month,
    )
    assert restored.seasonal.factors == model.seasonal.factors

    copy = PotentialModel.from_state_dict(state)  # both learn the same next batch
    labels = [1_000.0 * (i % 7) for i in range(len(rows))]
    assert np.array_equal(copy.learn_many(rows, labels), restored.learn_many(rows, labels))
    assert np.array_equal(copy.predict_many(rows), restored.predict_many(rows))


def test_unknown_state_versions_and_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="version"):
        PotentialModel().load_state_dict({"version": 99})
    with pytest.raises(ValueError, match="prior_weight"):
        PotentialModel(prior_weight=2.0)
    with pytest.raises(ValueError, match="shrink_months"):
        PotentialModel(shrink_months=0)
    with pytest.raises(ValueError, match="label_months"):
        learn_from_history(PotentialModel(), [], month_end(3), label_months=0)
    with pytest.raises(ValueError, match="labels"):
        PotentialModel().learn_many([{}], [-1.0])


# --- robustness ---------------------------------------------------------------------------------


def test_missing_industry_employees_and_location_are_tolerated(trained):
    model, accounts, _, _ = trained
    model = PotentialModel.from_state_dict(model.state_dict())
    at = month_end(24)
    bare = replace(accounts[0], account_id="bare", industry=None, employees=None, lat=None, lon=None, region=None)
    features = features_at(bare, at, seasonal=model.seasonal)
    assert features["industry"] == "unknown" and features["size_band"] == "unknown"
    assert features["employees_missing"] == 1.0 and features["region"] == "unknown"
    value = model.predict(features)
    assert math.isfinite(value) and value > 0
    # Its own sales still count: close to the same account with a full profile.
    full = model.predict(features_at(accounts[0], at, seasonal=model.seasonal))
    assert value == pytest.approx(full, rel=0.5)
    new = features_at(AccountState("new", known=True), at)
    assert model.predict(new) > 0  # nothing known at all: the overall prior and the average profile
    assert model.predict({}) >= 0  # a hand-made row without any feature
    # Learning from such rows works too.
    assert math.isfinite(model.learn(features, 5_000.0))
    learn_from_history(model, [*accounts, bare], month_end(25))
    assert math.isfinite(model.mae)


def test_closed_accounts_are_worth_nothing_and_not_learned_from(trained):
    model, accounts, _, _ = trained
    closed = replace(accounts[1], closed=True)
    assert predict_potential(model, [closed, accounts[2]], month_end(24))[closed.account_id] == 0.0
    probe = PotentialModel()
    train(probe, [closed], months=6)
    assert probe.learned == 0


# --- memory of a judgement ----------------------------------------------------------------


def test_feature_rows_share_their_column_names():
    # One row per account per judgement: names made anew for each row were a third of its size.
    accounts, _ = company(n=3, months=6)
    rows = [features_at(account, month_end(6)) for account in accounts]
    for name in rows[0]:
        assert len({id(next(k for k in row if k == name)) for row in rows}) == 1, name


def test_the_feature_frame_is_built_in_chunks_with_the_same_result(monkeypatch):
    # A company's rows go into the frame a chunk at a time: the dicts of 100,000 accounts
    # would otherwise all be alive at once (about 190 MB) beside the frame made from them.
    import pandas as pd

    from potential import features

    accounts, _ = company(n=50, months=14)
    rows = [features_at(account, month_end(14)) for account in accounts]
    rows[7] = {key: value for key, value in rows[7].items() if key not in ("lat", "industry")}
    whole = features.feature_frame(rows)
    monkeypatch.setattr(features, "FRAME_CHUNK", 8)
    made = []
    chunked = features.feature_frame(row for row in rows if made.append(1) is None)
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(made) == len(rows)


def test_potentials_of_a_large_company_are_those_of_one_batch(trained, monkeypatch):
    from potential import features

    model, accounts, _, _ = trained
    whole = predict_potential(model, accounts, month_end(24))
    monkeypatch.setattr(features, "FRAME_CHUNK", 64)
    chunked = predict_potential(model, accounts, month_end(24))
    assert chunked.keys() == whole.keys()
    assert all(math.isclose(chunked[key], whole[key], rel_tol=1e-12) for key in whole)
