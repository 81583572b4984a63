"""`PotentialModel`: the river models (profile, firmographic, combiner), the segment prior,
prequential scoring and the JSON-safe state."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from river import linear_model, metrics, stats

from core import river_codec
from monitor.state import KEPT_MONTHS
from potential.features import WINDOWS, feature_frame
from potential.months import _month_idx
from potential.normalise import RegionalLevels, SeasonalIndex

# The windows the combiner uses: the recent quarter and all history. 6 and 12 months add
# nothing measurable, and for accounts younger than a year 12 and 24 are the same column,
# so the weights learned in the first year split between them arbitrarily.
COMBINED_WINDOWS: tuple[int, ...] = (3, 24)
# Money is fed to the linear models in units of 10k (any currency): keeps the
# normal equations well conditioned without a scaler whose drift would move the weights.
MONEY_UNIT = 10_000.0
# Value of the profile models' intercept column (see PotentialModel._profile_design).
INTERCEPT = 10.0
# Industry and region values that get a one-hot column each; others share OTHER.
LEVEL_COLUMNS = ("industry", "region")
MAX_LEVELS = 32
OTHER = "(other)"
STATE_VERSION = 2  # 2: river objects as data (core.river_codec), no pickle


class PotentialModel:
    """Expected yearly potential of an account, learned online, scored prequentially.

    Parameters
    ----------
    prior_months
        Accounts with fewer months of history are blended with the new-account estimate
        (segment prior and firmographic profile), with a weight falling linearly from 1 at
        no history to 0 at `prior_months`. Before the model has learned anything the
        segment prior is used alone.
    prior_weight
        Share of the segment prior in the new-account estimate (0..1), the rest being the
        firmographic profile model. Measured on the simulator, that model alone is ~20%
        better than the segment mean for a brand-new account and a 0.25 blend a little
        better still.
    shrink_months
        How fast the combiner moves from the profile estimate to the account's own
        sales: the own share of its features is h / (h + shrink_months) for h months of
        history (its learned weights then scale both parts).
    min_profile_months
        Months of history an account needs before its realised rate trains the profile
        models, and before its activity figures are used to estimate it.
    recent_months, threshold
        Of the regional level adjustment (`RegionalLevels`).
    """

    def __init__(
        self,
        *,
        prior_months: int = 6,
        prior_weight: float = 0.25,
        shrink_months: float = 6.0,
        min_profile_months: int = 6,
        recent_months: int = 2,
        threshold: float = 1.5,
    ) -> None:
        if not isinstance(prior_months, int) or prior_months < 0:
            raise ValueError(f"prior_months must be an int >= 0, got {prior_months!r}")
        if not 0.0 <= prior_weight <= 1.0:
            raise ValueError(f"prior_weight must be in [0, 1], got {prior_weight!r}")
        if not shrink_months > 0:
            raise ValueError(f"shrink_months must be > 0, got {shrink_months!r}")
        if not isinstance(min_profile_months, int) or min_profile_months < 1:
            raise ValueError(f"min_profile_months must be an int >= 1, got {min_profile_months!r}")
        self.prior_months = prior_months
        self.prior_weight = float(prior_weight)
        self.shrink_months = float(shrink_months)
        self.min_profile_months = min_profile_months
        self.seasonal = SeasonalIndex()
        self.regions = RegionalLevels(recent_months=recent_months, threshold=threshold)
        # Log-rate models: with activity figures, and firmographic only (for young accounts).
        self._profile = linear_model.BayesianLinearRegression()
        self._firmographic = linear_model.BayesianLinearRegression()
        self._profile_rows = 0
        # Money-unit blend of the profile estimate with the account's own sales rates.
        self._combiner = linear_model.BayesianLinearRegression()
        self._combiner_rows = 0
        # Segment prior: "industry|band", then "industry|*", then "*".
        self._segments: dict[str, stats.Mean] = {}
        # Stands in for a missing employee count.
        self._log_employees = stats.Mean()
        self._mae = metrics.MAE()
        self._abs_error = 0.0
        self._abs_label = 0.0
        self._learned = 0
        # Industry and region values with a column of their own (see `_bounded`).
        self._levels: dict[str, list[str]] = {}
        # The last month whose end `learn_from_history` has learned ("YYYY-MM").
        self.last_month: str | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def learned(self) -> int:
        """Number of (features, label) pairs learned from."""
        return self._learned

    @property
    def mae(self) -> float:
        """Prequential mean absolute error of the predictions against their labels."""
        return self._mae.get()

    @property
    def metrics(self) -> dict[str, float]:
        """Prequential error: MAE, relative MAE (sum |error| / sum label) and the count.

        The labels are a few months of real orders, so most of this error is their
        noise; it is a drift signal (it jumps when the market moves), not the accuracy
        against the true potential, which only a simulation knows.
        """
        return {
            "mae": self._mae.get(),
            "relative_mae": self._abs_error / self._abs_label if self._abs_label > 0 else 0.0,
            "learned": float(self._learned),
        }

    def predict(self, features: Mapping[str, Any]) -> float:
        """Expected yearly potential (>= 0) of an account with these features (`features_at`)."""
        return float(self.predict_many([features])[0])

    def learn(self, features: Mapping[str, Any], label: float) -> float:
        """Learn one (features, yearly label) pair; returns the prediction made before learning."""
        return float(self.learn_many([features], [label])[0])

    def predict_many(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> np.ndarray:
        """Potentials of many accounts at once (feature rows, or their `feature_frame`): one
        mini-batch through the river models."""
        if len(rows) == 0:
            return np.zeros(0)
        return self._predict_frame(rows if isinstance(rows, pd.DataFrame) else feature_frame(rows))

    def learn_many(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame, labels: Sequence[float]) -> np.ndarray:
        """Learn a batch (feature rows, or their `feature_frame`); returns the predictions made
        before learning from any of it."""
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} feature rows but {len(labels)} labels")
        if len(rows) == 0:
            return np.zeros(0)
        y = np.asarray(labels, dtype=float)
        if not np.all(np.isfinite(y)) or np.any(y < 0):
            raise ValueError("labels must be finite and >= 0")
        frame = rows if isinstance(rows, pd.DataFrame) else feature_frame(rows)
        before = self._predict_frame(frame)
        self._admit_levels(frame)
        for truth, guess in zip(y.tolist(), before.tolist()):
            self._mae.update(truth, guess)
        self._abs_error += float(np.abs(y - before).sum())
        self._abs_label += float(y.sum())

        combined = self._combiner_design(frame)  # with the profile as it was, like `before`
        self._learn_profile(frame)
        # Rows without any estimate (the very first batch: no segment means yet) would
        # teach the intercept that every account is average; skip them.
        usable = ((combined["profile"] > 0) | (combined["prior"] > 0)).to_numpy()
        if usable.any():
            self._combiner.learn_many(
                combined.loc[usable], pd.Series(y[usable] / MONEY_UNIT, index=combined.index[usable])
            )
            self._combiner_rows += int(usable.sum())
        for keys, label in zip(self._segment_keys(frame), y.tolist()):
            for key in keys:
                self._segments.setdefault(key, stats.Mean()).update(label)
        self._learned += len(y)
        return before

    def prior(self, features: Mapping[str, Any]) -> float:
        """The segment prior: mean label of the industry x size band (else industry, else all); 0 if none."""
        return float(self._prior_values(feature_frame([features]))[0])

    # -- internals ---------------------------------------------------------------------------

    def _admit_levels(self, frame: pd.DataFrame) -> None:
        """Give new industry and region values a column of their own while there is room.

        Each value is a one-hot column of the profile models, whose state is a square matrix
        over the columns, and a segment prior: free-text industries must not grow them (or
        the checkpoint) without end. Values come in the order they are first learned; once a
        column has MAX_LEVELS values, later ones share OTHER."""
        for column in LEVEL_COLUMNS:
            known = self._levels.setdefault(column, [])
            for value in dict.fromkeys(frame[column].tolist()):
                if len(known) >= MAX_LEVELS:
                    break
                if value not in known:
                    known.append(value)

    def _level(self, column: str, frame: pd.DataFrame) -> list[str]:
        """The column's values, those without a column of their own as OTHER."""
        known = set(self._levels.get(column, ()))
        if len(known) < MAX_LEVELS:
            return frame[column].tolist()  # not full: an unseen value simply has no column yet
        return [value if value in known else OTHER for value in frame[column].tolist()]

    def _segment_keys(self, frame: pd.DataFrame) -> list[tuple[str, str, str]]:
        return [
            (f"{i}|{b}", f"{i}|*", "*") for i, b in zip(self._level("industry", frame), frame["size_band"].tolist())
        ]

    def _prior_values(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame))
        for n, keys in enumerate(self._segment_keys(frame)):
            for key in keys:
                mean = self._segments.get(key)
                if mean is not None and mean.n > 0:
                    out[n] = mean.get()
                    break
        return out

    def _profile_design(self, frame: pd.DataFrame, *, activity: bool) -> pd.DataFrame:
        # A large constant for the intercept: the ridge prior then leaves the intercept in it
        # and the one-hot columns carry deviations, so an unseen industry or region (no
        # column) gets the average, not a fraction of the intercept.
        missing = frame["employees_missing"].to_numpy() > 0
        log_employees = np.where(missing, self._log_employees.get(), frame["log_employees"].to_numpy())
        columns = {
            "bias": np.full(len(frame), INTERCEPT),
            "log_employees": log_employees,
            "employees_missing": missing.astype(float),
        }
        if activity:
            columns["log_minutes_3m"] = np.log1p(frame["minutes_3m"].to_numpy())
            columns["log_minutes_12m"] = np.log1p(frame["minutes_12m"].to_numpy())
            columns["log_pipeline"] = np.log1p(frame["pipeline"].to_numpy())
        design = pd.DataFrame(columns, index=frame.index)
        dummies = [
            pd.get_dummies(pd.Series(self._level(column, frame), index=frame.index), prefix=column, dtype=float)
            for column in LEVEL_COLUMNS
        ]
        return pd.concat([design, *dummies], axis=1)

    def _profile_values(self, frame: pd.DataFrame) -> np.ndarray:
        """exp(profile model), money units: with activity figures where the account has a
        record of them, else firmographic only ("no minutes yet" must not read as "small")."""
        out = np.zeros(len(frame))
        seasoned = frame["history_months"].to_numpy() >= self.min_profile_months
        for model, rows, activity in ((self._profile, seasoned, True), (self._firmographic, ~seasoned, False)):
            if rows.any():
                design = self._profile_design(frame.loc[rows], activity=activity)
                log_rate = np.asarray(model.predict_many(design), dtype=float)
                out[rows] = np.exp(np.clip(log_rate, -10.0, 30.0)) / MONEY_UNIT
        return out

    def _learn_profile(self, frame: pd.DataFrame) -> None:
        # Target: log of the deseasonalised yearly rate over the account's history (up to 24
        # months): long enough to rarely be 0, unlike a 3-month label.
        rate = frame["sales_24m"].to_numpy()
        keep = (frame["history_months"].to_numpy() >= self.min_profile_months) & (rate > 0)
        if not keep.any():
            return
        rows = frame.loc[keep]
        for value in rows.loc[rows["employees_missing"] == 0, "log_employees"].tolist():
            self._log_employees.update(value)
        target = pd.Series(np.log(rate[keep]), index=rows.index)
        self._firmographic.learn_many(self._profile_design(rows, activity=False), target)
        self._profile.learn_many(self._profile_design(rows, activity=True), target)
        self._profile_rows += int(keep.sum())

    def _regional_factors(self, frame: pd.DataFrame) -> dict[int, np.ndarray]:
        """Per sales window, each row's regional level factor (1 where nothing is known)."""
        if not self.regions.totals:
            return {window: np.ones(len(frame)) for window in WINDOWS}
        keys = list(zip(frame["region"].tolist(), frame["month"].tolist()))
        tables = {
            key: self.regions.table(key[0], _month_idx(key[1])) if key[1] else np.ones(KEPT_MONTHS + 1)
            for key in set(keys)
        }
        stacked = np.stack([tables[key] for key in keys])
        rows = np.arange(len(frame))
        months = {
            window: np.clip(frame[f"sales_{window}m_months"].to_numpy().astype(int), 0, KEPT_MONTHS)
            for window in WINDOWS
        }
        return {window: stacked[rows, months[window]] for window in WINDOWS}

    def _combiner_design(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The combiner's inputs, money units: the profile estimate weighted by 1 - own and the
        account's own rates weighted by own = h / (h + shrink_months), each also times the
        share of months with an order (frequent buyers' rates are less noisy)."""
        history = frame["history_months"].to_numpy()
        own = history / (history + self.shrink_months)
        regular = frame["order_months"].to_numpy() / np.maximum(history, 1.0)
        factors = self._regional_factors(frame)
        # The account's estimate before its own sales: the profile model's once it has
        # learned, else (cold start) the segment prior, in a column of its own so the two
        # do not share a weight.
        trained = self._profile_rows > 0
        estimate = self._profile_values(frame) * factors[WINDOWS[-1]] if trained else np.zeros(len(frame))
        prior = np.zeros(len(frame)) if trained else self._prior_values(frame) / MONEY_UNIT
        rates = {
            window: frame[f"sales_{window}m"].to_numpy() / MONEY_UNIT * factors[window] * own
            for window in COMBINED_WINDOWS
        }
        design = {
            "bias": np.ones(len(frame)),
            "profile": estimate * (1.0 - own),
            "prior": prior * (1.0 - own),
            **{f"sales_{window}m": rate for window, rate in rates.items()},
            "sales_regular": rates[COMBINED_WINDOWS[-1]] * regular,
        }
        return pd.DataFrame(design, index=frame.index)

    def _predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        prior = self._prior_values(frame)
        if not self._combiner_rows:
            return prior  # cold start: the segment prior alone
        estimate = np.asarray(self._combiner.predict_many(self._combiner_design(frame)), dtype=float)
        estimate = np.maximum(estimate * MONEY_UNIT, 0.0)
        if self.prior_months:
            history = frame["history_months"].to_numpy()
            young = history < self.prior_months
            if young.any():
                estimate[young] = self._young_values(frame.loc[young], prior[young], estimate[young])
        return estimate

    def _young_values(self, frame: pd.DataFrame, prior: np.ndarray, model: np.ndarray) -> np.ndarray:
        """Accounts with little history: the model blended with the new-account estimate
        (segment prior and firmographic profile), whose weight falls from 1 at no history
        to 0 at `prior_months`."""
        if self._profile_rows:
            design = self._profile_design(frame, activity=False)
            log_rate = np.asarray(self._firmographic.predict_many(design), dtype=float)
            firmographic = np.exp(np.clip(log_rate, -10.0, 30.0))
            new = np.where(
                prior > 0, self.prior_weight * prior + (1.0 - self.prior_weight) * firmographic, firmographic
            )
        else:
            new = np.where(prior > 0, prior, model)
        weight = np.clip(frame["history_months"].to_numpy() / self.prior_months, 0.0, 1.0)
        return weight * model + (1.0 - weight) * new

    # -- persistence ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state: parameters, counts, seasonal index, regional totals, river objects.

        The river objects (three BayesianLinearRegression, the segment means, the MAE
        metric) are plain data too (`core.river_codec`): loading a foreign state runs no code.
        """
        return {
            "version": STATE_VERSION,
            "params": self._params(),
            "seasonal": self.seasonal.to_dict(),
            "regions": self.regions.to_dict(),
            "learned": self._learned,
            "last_month": self.last_month,
            "profile_rows": self._profile_rows,
            "combiner_rows": self._combiner_rows,
            "abs_error": self._abs_error,
            "abs_label": self._abs_label,
            "levels": self._levels,
            "river": river_codec.dump(
                {
                    "profile": self._profile,
                    "firmographic": self._firmographic,
                    "combiner": self._combiner,
                    "segments": self._segments,
                    "mae": self._mae,
                    "log_employees": self._log_employees,
                }
            ),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "PotentialModel":
        """Restore `state_dict()` output (parameters included) into this model; returns it."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"unknown potential model state version {state.get('version')!r}; expected {STATE_VERSION}"
            )
        self.__init__(**state["params"])  # type: ignore[misc]
        self.seasonal = SeasonalIndex.from_dict(state["seasonal"])
        self.regions = RegionalLevels.from_dict(state["regions"])
        self._learned = int(state["learned"])
        self.last_month = state["last_month"]
        self._profile_rows = int(state["profile_rows"])
        self._combiner_rows = int(state["combiner_rows"])
        self._abs_error = float(state["abs_error"])
        self._abs_label = float(state["abs_label"])
        self._levels = {
            column: [str(value) for value in state["levels"].get(column, [])][:MAX_LEVELS] for column in LEVEL_COLUMNS
        }
        river_objects = river_codec.load(state["river"])
        if not isinstance(river_objects, dict):
            raise river_codec.CheckpointError(f"the model's river objects are a {type(river_objects).__name__}")
        self._profile = river_objects["profile"]
        self._firmographic = river_objects["firmographic"]
        self._combiner = river_objects["combiner"]
        self._segments = river_objects["segments"]
        self._mae = river_objects["mae"]
        self._log_employees = river_objects["log_employees"]
        return self

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "PotentialModel":
        return cls().load_state_dict(state)

    def _params(self) -> dict[str, Any]:
        return {
            "prior_months": self.prior_months,
            "prior_weight": self.prior_weight,
            "shrink_months": self.shrink_months,
            "min_profile_months": self.min_profile_months,
            "recent_months": self.regions.recent,
            "threshold": self.regions.threshold,
        }
