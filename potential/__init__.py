"""Online model of each account's expected yearly potential, learned from what accounts buy.

The potential model answers "how much would this account buy in a year, on average?"
for every account, new or old. Once a month of event time the planner calls
`learn_from_history`: for each account the model sees the features the account had
three months ago and what it bought since (the label, deseasonalised and annualised),
is scored on that prediction first (progressive validation), then learns from it.
`predict_potential` values every account now; a territory's potential is their sum.

The parts, all saved by `PotentialModel.state_dict`:

- `SeasonalIndex`, learned from the company's total sales per calendar month: sales
  features and labels are deseasonalised with it, so a 3-month label can be
  annualised without calling December's peak a trend;
- `RegionalLevels`, each region's sales against the typical region's: brings an
  account's past sales to its region's current level, so a regional market shock
  reaches every account of the region within a month or two instead of after
  a year of trailing sales;
- two profile models (river `BayesianLinearRegression` on the log of the account's
  realised yearly rate): from industry, size and region, and from those plus
  activity minutes and open pipeline; every account, even one without orders,
  gets an estimate;
- the combiner (river `BayesianLinearRegression` in money units), which blends the
  profile estimate with the account's own rates over the last 3 months and its whole
  history (up to 24): the own part weighs more the longer the history (h / (h + 6)
  before the learned weights) and the more regularly the account orders;
- the segment prior: the running mean label of industry x size band. It is used alone
  before the model has learned anything; after that a new account is valued by the
  segment prior (a quarter) and the firmographic profile (the rest), blended into
  the model as the account's history grows to `prior_months`. A new account of a
  known segment is never valued at zero.

Pure Python, numpy, pandas and river: no Kafka, no database. Months are UTC calendar
months of event time, as in `monitor.state`; "features at `at`" read only month
buckets strictly before `at`'s month.

The modules: `months` (month indices and keys), `normalise` (`SeasonalIndex`,
`RegionalLevels`), `features` (`features_at`, `size_band`, the feature frame), `model`
(`PotentialModel`) and `training` (`learn_from_history`, `predict_potential`,
`sales_totals`); other code imports these names from `potential` itself.

Examples
--------

Four hundred accounts whose yearly potential grows with size, 24 months of noisy
monthly sales; the model learns month by month and beats the last 12 months' sales
as an estimate of the true potential:

>>> import random
>>> from datetime import datetime, timezone
>>> from monitor.state import AccountState, trailing_sum
>>> rng = random.Random(7)
>>> months = [f"{2024 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
>>> truth, accounts = {}, []
>>> for i in range(400):
...     employees = int(rng.lognormvariate(3.5, 1.0)) + 1
...     truth[f"a{i}"] = 800 * employees ** 0.7 * rng.lognormvariate(0, 0.3)
...     sales = {k: truth[f"a{i}"] / 12 * rng.expovariate(1.0) for k in months}
...     accounts.append(AccountState(
...         f"a{i}", industry=rng.choice(["retail", "logistics"]), employees=employees,
...         region=rng.choice("NSEW"), known=True, profile_at="2024-01-01T00:00:00+00:00",
...         monthly_sales=sales))
>>> model = PotentialModel()
>>> for m in range(2, 25):  # month ends 2024-03-01 .. 2026-01-01
...     scored = learn_from_history(model, accounts, datetime(2024 + m // 12, m % 12 + 1, 1, tzinfo=timezone.utc))
>>> model.learned, len(scored)
(8800, 400)
>>> at = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> potential = predict_potential(model, accounts, at)
>>> model_mae = sum(abs(potential[a] - t) for a, t in truth.items()) / len(truth)
>>> last_12 = {a.account_id: trailing_sum(a.monthly_sales, datetime(2025, 12, 31, tzinfo=timezone.utc), 12)
...            for a in accounts}
>>> baseline_mae = sum(abs(last_12[a] - t) for a, t in truth.items()) / len(truth)
>>> round(model_mae / baseline_mae, 2)
0.63

A new account is valued from the segment prior and its profile: 200 employees are
worth more than the average of the 50-249 band (truth here: 800 x 200^0.7 = 32,600):

>>> new = features_at(AccountState("new", industry="retail", employees=200, known=True), at)
>>> round(model.prior(new), -2), round(model.predict(new), -2)
(20300.0, 28100.0)
>>> restored = PotentialModel.from_state_dict(model.state_dict())
>>> restored.predict(new) == model.predict(new)
True
"""

from __future__ import annotations

from potential.features import features_at, size_band
from potential.model import MAX_LEVELS, PotentialModel
from potential.normalise import RegionalLevels, SeasonalIndex
from potential.training import learn_from_history, predict_potential, sales_totals

__all__ = [
    "MAX_LEVELS",
    "PotentialModel",
    "RegionalLevels",
    "SeasonalIndex",
    "features_at",
    "learn_from_history",
    "predict_potential",
    "sales_totals",
    "size_band",
]
