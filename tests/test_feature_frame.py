"""The potential model's features of many accounts at once (`feature_frame_at`) are exactly
the features of each account alone, as their definition reads: checked against a plain,
one-account-at-a-time reading of that definition, kept here as the oracle, on random
accounts (odd months, far dates, pruned and unpruned buckets, opportunities, missing
profile fields) and on a simulated company's history through the intake."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.state import KEPT_MONTHS, AccountState, opportunity_as_of
from potential.features import _DEFAULTS, feature_frame, feature_frame_at, features_at, size_band
from potential.months import _idx_of, _iso_idx, _key_of, _month_idx
from potential.normalise import SeasonalIndex

WINDOWS = (3, 6, 12, 24)


def plain_features(account: AccountState, at: datetime, seasonal: SeasonalIndex | None) -> dict:
    """The features of one account read plainly off their definition (see `features_at`)."""
    a = _idx_of(at)
    evidence = [_month_idx(k) for k in [*account.monthly_sales, *account.monthly_minutes]]
    evidence += [_iso_idx(moment) for entry in account.opportunities.values() for moment in entry[0::2]]
    evidence += [_iso_idx(account.profile_at)] if account.profile_at else []
    before = [idx for idx in evidence if idx < a]
    history = min(a - min(before), KEPT_MONTHS - 1) if before else 0

    def past(buckets: dict[str, float]) -> list[float]:
        values = [0.0] * history
        for month, value in buckets.items():
            if 0 <= a - 1 - _month_idx(month) < history:
                values[a - 1 - _month_idx(month)] = value
        if buckets:  # the months the state may have pruned are unknown, not zero
            kept = max(_month_idx(k) for k in buckets) - KEPT_MONTHS + 1
            if a - history < kept:
                values = values[: max(a - kept, 0)]
        return values

    sales, minutes = past(account.monthly_sales), past(account.monthly_minutes)
    factors = [seasonal.factors[(a - 1 - d) % 12] if seasonal else 1.0 for d in range(len(sales))]
    row: dict = {}
    for window in WINDOWS:
        n = min(window, len(sales))
        total = weight = 0.0
        for d in range(n):
            total, weight = total + sales[d], weight + factors[d]
        row[f"sales_{window}m"] = 12.0 * total / weight if weight > 0 else 0.0
        row[f"sales_{window}m_months"] = float(n)
    for window in (3, 12):
        n = min(window, len(minutes))
        row[f"minutes_{window}m"] = 12.0 * sum(minutes[:n]) / n if n else 0.0
    ordered = [d for d, value in enumerate(sales) if value > 0]
    row["order_months"] = float(len(ordered))
    row["months_since_first_order"] = float(ordered[-1] + 1) if ordered else 0.0
    row["history_months"] = float(history)
    known = [opportunity_as_of(entry, _key_of(a)) for entry in account.opportunities.values()]
    row["pipeline"] = float(sum(update[1] for update in known if update and update[1] is not None))
    row["industry"] = account.industry or "unknown"
    row["size_band"] = size_band(account.employees)
    has_staff = bool(account.employees and account.employees > 0)
    row["log_employees"] = math.log1p(account.employees) if has_staff else 0.0
    row["employees_missing"] = 0.0 if has_staff else 1.0
    row["region"] = account.region or "unknown"
    located = account.lat is not None and account.lon is not None
    row["lat"] = round(account.lat * 2) / 2 if located else 0.0
    row["lon"] = round(account.lon * 2) / 2 if located else 0.0
    row["month"] = _key_of(a)
    return row


def iso(idx: int, day: int = 1) -> str:
    return datetime(idx // 12, idx % 12 + 1, day, 12, tzinfo=timezone.utc).isoformat()


AT_IDX = 2030 * 12 + 5  # 2030-06: months far before and after it are drawn
money = st.floats(min_value=0.0, max_value=1e12, allow_nan=False) | st.sampled_from([0.0, 1e-9, 0.1, 7.0])
months_near = st.integers(min_value=AT_IDX - 40, max_value=AT_IDX + 6)
months_any = months_near | st.integers(min_value=12 + 30, max_value=9999 * 12 + 11)  # year 1 to 9999


@st.composite
def accounts(draw) -> AccountState:
    def buckets(months) -> dict[str, float]:
        return {_key_of(idx): draw(money) for idx in draw(st.lists(months, max_size=30, unique=True))}

    opportunities = {}
    for n in range(draw(st.integers(0, 3))):
        newest = draw(months_any)
        entry = [iso(newest, draw(st.integers(1, 28))), draw(st.none() | money)]
        if draw(st.booleans()):
            entry += [iso(newest - draw(st.integers(1, 30))), draw(st.none() | money)]
        opportunities[f"o{n}"] = entry
    text = st.none() | st.sampled_from(["", "retail", "Ölförädling & Co", "🚀", "x" * 300])
    return AccountState(
        account_id=draw(st.text(min_size=1, max_size=8)),
        lat=draw(st.none() | st.floats(-90, 90)),
        lon=draw(st.none() | st.floats(-180, 180)),
        industry=draw(text),
        employees=draw(st.none() | st.integers(-5, 10**7)),
        region=draw(text),
        known=True,
        profile_at=draw(st.none() | months_any.map(iso)),
        monthly_sales=buckets(draw(st.sampled_from([months_near, months_any]))),
        monthly_minutes=buckets(months_near),
        opportunities=opportunities,
    )


def seasonal_index(factors: list[float]) -> SeasonalIndex:
    index = SeasonalIndex()
    index.factors = list(factors)
    return index


seasons = st.none() | st.lists(st.floats(0.2, 3.0), min_size=12, max_size=12).map(seasonal_index)


def expected_frame(company: list[AccountState], at: datetime, seasonal: SeasonalIndex | None) -> pd.DataFrame:
    return feature_frame([plain_features(account, at, seasonal) for account in company])


@settings(max_examples=150, deadline=None)
@given(company=st.lists(accounts(), max_size=12), day=st.integers(0, 40), seasonal=seasons)
def test_the_features_of_many_accounts_are_each_accounts_own(company, day, seasonal):
    at = datetime(2030, 6, 1, tzinfo=timezone.utc) + timedelta(days=day)
    pd.testing.assert_frame_equal(
        feature_frame_at(company, at, seasonal=seasonal), expected_frame(company, at, seasonal)
    )
    for account in company[:3]:
        assert features_at(account, at, seasonal=seasonal) == plain_features(account, at, seasonal)


def test_a_company_larger_than_a_chunk_gets_the_same_features_in_the_same_order(monkeypatch):
    from simulator import generate_company

    import potential.features as features

    monkeypatch.setattr(features, "FRAME_CHUNK", 7)
    company = generate_company(seed=5, n_accounts=60)
    states = [
        AccountState(
            account_id=account.account_id,
            lat=account.lat,
            lon=account.lon,
            industry=account.industry,
            employees=account.employees,
            region=account.region,
            known=True,
            profile_at=iso(AT_IDX - 30),
            monthly_sales={_key_of(AT_IDX - 1 - m): float((i * 37 + m * 11) % 90) for m in range(0, 26, 1 + i % 4)},
            monthly_minutes={_key_of(AT_IDX - 1 - m): float(m) for m in range(i % 5)},
        )
        for i, account in enumerate(company.accounts)
    ]
    at = datetime(2030, 6, 15, tzinfo=timezone.utc)
    seasonal = seasonal_index([0.5 + month / 10 for month in range(12)])
    frame = feature_frame_at(states, at, seasonal=seasonal)
    pd.testing.assert_frame_equal(frame, expected_frame(states, at, seasonal))
    assert list(frame.columns) == list(plain_features(states[0], at, seasonal))
    assert set(frame.columns) == set(_DEFAULTS)


def test_no_accounts_make_an_empty_frame_with_every_column():
    frame = feature_frame_at([], datetime(2030, 6, 1, tzinfo=timezone.utc))
    assert len(frame) == 0 and set(frame.columns) == set(_DEFAULTS)


@pytest.mark.parametrize("at", [datetime(1, 2, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, tzinfo=timezone.utc)])
def test_the_first_and_last_months_of_the_calendar_have_features(at):
    account = AccountState(
        "edge",
        known=True,
        profile_at=iso(_idx_of(at)),
        monthly_sales={_key_of(_idx_of(at)): 5.0, _key_of(max(_idx_of(at) - 1, 12)): 3.0},
    )
    assert features_at(account, at) == plain_features(account, at, None)
