"""Benchmark: the online potential model against the simulator's true potential.

For each seed (with and without the default market shock) a simulated company of
8 reps and 2000 accounts is replayed for 24 months: every event passes
`core.contract.validate_envelope` and `monitor.state.apply_account_event` in event
time order, and at each month's end the model learns from history
(`learn_from_history`) and predicts every account (`predict_potential`). After the
warm-up (months 13-24) the predictions are scored against
`simulator.truth.true_yearly_potential` next to the current placeholder, the last 12
complete months' sales (trailing-12 baseline).

Throughput is measured on the same month-end steps and once at 100k accounts
(the 2000 final account states cloned 50 times).

    .venv/bin/python bench/potential.py [--seeds 31 32 33] [--quick]

Prints progress to stderr and the results as JSON to stdout; writes
bench/results/potential.json and docs/benchmarks/potential.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import simulator  # noqa: E402
from core.contract import validate_envelope  # noqa: E402
from potential import PotentialModel, features_at, learn_from_history, predict_potential  # noqa: E402
from monitor.state import AccountState, apply_account_event, trailing_sum  # noqa: E402
from simulator.clock import add_months  # noqa: E402
from simulator.truth import SEASONALITY, true_yearly_potential  # noqa: E402

N_REPS, N_ACCOUNTS, MONTHS = 8, 2000, 24
EVAL_MONTHS = range(13, MONTHS + 1)  # month ends after 13..24 complete months
TARGET_RATIO = 0.7


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def replay(company: simulator.Company, events: list, on_month_end: Callable[[int, datetime, dict], None]) -> None:
    """Apply events in event-time order; call on_month_end(m, month_end, states) after each month."""
    states: dict[str, AccountState] = {}
    m = 1
    boundary = add_months(company.start, 1)
    for topic, key, envelope in events:
        event = validate_envelope(envelope, topic=topic, key=key)
        while event.occurred_at >= boundary and m <= MONTHS:
            on_month_end(m, boundary, states)
            m += 1
            boundary = add_months(company.start, m)
        if event.type == "rep.upserted":
            continue
        states[event.key] = apply_account_event(states.get(event.key), event)
    while m <= MONTHS:
        on_month_end(m, boundary, states)
        m += 1
        boundary = add_months(company.start, m)


def snapshots(seed: int, shocked: bool) -> dict[str, Any]:
    """The account states at every month end (states are immutable: apply returns new ones)."""
    company = simulator.generate_company(seed=seed, n_reps=N_REPS, n_accounts=N_ACCOUNTS)
    shock = simulator.default_shock(company) if shocked else None
    started = time.perf_counter()
    events = simulator.generate_events(company, months=MONTHS, shock=shock, seed=seed)
    months: list[tuple[int, datetime, list[AccountState]]] = []
    replay(company, events, lambda m, end, states: months.append((m, end, list(states.values()))))
    log(f"  seed {seed} shock={shocked}: {len(events)} events replayed in {time.perf_counter() - started:.1f}s")
    return {"company": company, "shock": shock, "months": months, "events": len(events)}


def evaluate(
    snap: dict[str, Any], make_model: Callable[[], PotentialModel], *, label_months: int = 3, verbose: bool = True
) -> dict[str, Any]:
    """Train month by month; score model and baseline against the truth after the warm-up."""
    company, shock = snap["company"], snap["shock"]
    sim = {a.account_id: a for a in company.accounts}
    model = make_model()
    per_month, seconds, handled = [], 0.0, 0
    err_model, err_base, truth_sum = 0.0, 0.0, 0.0
    shocked_ids = {a.account_id for a in company.accounts if simulator.truth.is_shocked(a, shock)}
    err_model_shocked = err_base_shocked = 0.0
    n_scored = n_shocked = 0
    for m, month_end, accounts in snap["months"]:
        started = time.perf_counter()
        learn_from_history(model, accounts, month_end, label_months=label_months)
        predicted = predict_potential(model, accounts, month_end)
        seconds += time.perf_counter() - started
        handled += 2 * len(accounts)
        if m not in EVAL_MONTHS:
            continue
        watermark = month_end - timedelta(microseconds=1)
        e_model = e_base = t_sum = 0.0
        for account in accounts:
            truth = true_yearly_potential(sim[account.account_id], month_end, shock)
            baseline = trailing_sum(account.monthly_sales, watermark, 12)
            dm, db = abs(predicted[account.account_id] - truth), abs(baseline - truth)
            e_model += dm
            e_base += db
            t_sum += truth
            if account.account_id in shocked_ids:
                err_model_shocked += dm
                err_base_shocked += db
                n_shocked += 1
        n = len(accounts)
        n_scored += n
        err_model += e_model
        err_base += e_base
        truth_sum += t_sum
        per_month.append(
            {
                "month": m,
                "mae_model": round(e_model / n, 1),
                "mae_baseline": round(e_base / n, 1),
                "ratio": round(e_model / e_base, 3),
            }
        )
        if verbose:
            log(
                f"    month {m:2d}: MAE model {e_model / n:9.0f}  baseline {e_base / n:9.0f}  "
                f"ratio {e_model / e_base:.3f}  prequential rel. error {model.metrics['relative_mae']:.3f}"
            )
    factors = model.seasonal.factors
    return {
        "mae_model": err_model / n_scored,
        "mae_baseline": err_base / n_scored,
        "ratio": err_model / err_base,
        "relative_mae_model": err_model / truth_sum,
        "relative_mae_baseline": err_base / truth_sum,
        "shocked_accounts_ratio": (err_model_shocked / err_base_shocked) if n_shocked else None,
        "shocked_accounts_mae_model": err_model_shocked / n_shocked if n_shocked else None,
        "shocked_accounts_mae_baseline": err_base_shocked / n_shocked if n_shocked else None,
        "prequential": model.metrics,
        "seasonal_index_max_abs_error": max(abs(f - s) for f, s in zip(factors, SEASONALITY)),
        "throughput_accounts_per_s": handled / seconds,
        "per_month": per_month,
    }


def frozen_seasonal(factors: list[float]) -> Callable[[], PotentialModel]:
    """A model whose seasonal index is fixed (flat, or the simulator's true one): for the ablation."""

    def make() -> PotentialModel:
        model = PotentialModel()
        model.seasonal.factors = list(factors)
        model.seasonal.update = lambda totals: None  # type: ignore[method-assign]
        return model

    return make


ABLATIONS: list[tuple[str, Callable[[], PotentialModel], int]] = [
    ("chosen: 3-month label, learned seasonal index, regional levels", PotentialModel, 3),
    ("1-month label", PotentialModel, 1),
    ("2-month label", PotentialModel, 2),
    ("6-month label", PotentialModel, 6),
    ("12-month label, learned seasonal index", PotentialModel, 12),
    ("12-month label, no seasonal index", frozen_seasonal([1.0] * 12), 12),
    ("no seasonal index (3-month label)", frozen_seasonal([1.0] * 12), 3),
    ("simulator's true seasonal index", frozen_seasonal(list(SEASONALITY)), 3),
    ("no regional levels", lambda: PotentialModel(threshold=1e9), 3),
    ("own-sales share h / (h + 12) instead of h / (h + 6)", lambda: PotentialModel(shrink_months=12.0), 3),
]


def ablation(snaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, make, label_months in ABLATIONS:
        ratios = [evaluate(snap, make, label_months=label_months, verbose=False)["ratio"] for snap in snaps]
        rows.append({"variant": name, "ratios": [round(r, 3) for r in ratios], "mean_ratio": float(np.mean(ratios))})
        log(f"  {name}: {', '.join(f'{r:.3f}' for r in ratios)}")
    return rows


def young_accounts(snap: dict[str, Any], histories: tuple[int, ...] = (0, 1, 2, 3, 6, 12)) -> list[dict[str, Any]]:
    """New and young accounts, which the simulated company (all accounts start at once)
    does not have after its first months: the final accounts with their history cut to
    the last h months, valued by the trained model and by the segment prior alone."""
    company, shock = snap["company"], snap["shock"]
    sim = {a.account_id: a for a in company.accounts}
    model = PotentialModel()
    for _, month_end, accounts in snap["months"]:
        learn_from_history(model, accounts, month_end)
    end = month_end.year * 12 + month_end.month - 1
    truth = np.array([true_yearly_potential(sim[a.account_id], month_end, shock) for a in accounts])
    rows = []
    for h in histories:
        cut = end - h
        kept = f"{cut // 12:04d}-{cut % 12 + 1:02d}"
        young = [
            replace(
                a,
                monthly_sales={k: v for k, v in a.monthly_sales.items() if k >= kept},
                monthly_minutes={k: v for k, v in a.monthly_minutes.items() if k >= kept},
                opportunities={},
                profile_at=f"{kept}-01T00:00:00+00:00",
            )
            for a in accounts
        ]
        features = [features_at(a, month_end, seasonal=model.seasonal) for a in young]
        predicted = model.predict_many(features)
        prior = np.array([model.prior(f) for f in features])
        rows.append(
            {
                "history_months": h,
                "mae_model": float(np.abs(predicted - truth).mean()),
                "mae_segment_prior": float(np.abs(prior - truth).mean()),
            }
        )
        log(
            f"  {h:2d} months of history: MAE model {rows[-1]['mae_model']:.0f}, "
            f"segment prior {rows[-1]['mae_segment_prior']:.0f}"
        )
    return rows


def oracle(snap: dict[str, Any]) -> dict[str, Any]:
    """The best a shock-unaware estimator could do knowing how the simulator draws everything:
    the posterior median of each account's potential given its industry, employees and the
    sum of its orders over the months seen (true prior, true order rates, true seasonality,
    compound Poisson-gamma likelihood). A reference for what the target asks, not a model."""
    from scipy import stats as st  # river's dependency; only this reference needs it

    from simulator.company import INDUSTRIES, POTENTIAL_NOISE_SIGMA, REFERENCE_EMPLOYEES, SIZE_ELASTICITY
    from simulator.events import _AMOUNT_GAMMA_SHAPE, orders_per_year

    company, shock = snap["company"], snap["shock"]
    sim = {a.account_id: a for a in company.accounts}
    base = {i.name: i.base_potential for i in INDUSTRIES}
    grid = np.exp(np.linspace(np.log(100.0), np.log(5e6), 500))
    rate = orders_per_year(grid)
    counts = np.arange(0, 160)[:, None]
    ratios = []
    for m, month_end, accounts in snap["months"]:
        if m not in EVAL_MONTHS:
            continue
        end = month_end.year * 12 + month_end.month - 1
        seen = [end - 1 - k for k in range(min(m, 24))]
        season = sum(SEASONALITY[idx % 12] for idx in seen) / 12.0  # years of demand seen
        log_pois = st.poisson.logpmf(counts, (rate * season)[None, :])
        err_oracle = err_base = 0.0
        watermark = month_end - timedelta(microseconds=1)
        for account in accounts:
            a = sim[account.account_id]
            truth = true_yearly_potential(a, month_end, shock)
            total = sum(account.monthly_sales.get(f"{idx // 12:04d}-{idx % 12 + 1:02d}", 0.0) for idx in seen)
            mu = np.log(base[a.industry] * (a.employees / REFERENCE_EMPLOYEES) ** SIZE_ELASTICITY)
            log_post = st.norm.logpdf(np.log(grid), mu - POTENTIAL_NOISE_SIGMA**2 / 2, POTENTIAL_NOISE_SIGMA)
            if total <= 0:
                log_post = log_post + log_pois[0]
            else:
                scale = (grid / rate / _AMOUNT_GAMMA_SHAPE)[None, :]
                log_gamma = st.gamma.logpdf(total, _AMOUNT_GAMMA_SHAPE * np.maximum(counts, 1), scale=scale)
                log_gamma[0] = -np.inf
                log_post = log_post + np.logaddexp.reduce(log_pois + log_gamma, axis=0)
            post = np.exp(log_post - log_post.max())
            median = grid[np.searchsorted(np.cumsum(post) / post.sum(), 0.5)]
            err_oracle += abs(median - truth)
            err_base += abs(trailing_sum(account.monthly_sales, watermark, 12) - truth)
        ratios.append(err_oracle / err_base)
        log(f"    oracle month {m}: ratio {ratios[-1]:.3f}")
    return {"mean_ratio": float(np.mean(ratios)), "per_month": [round(r, 3) for r in ratios]}


def scale_throughput(accounts: list[AccountState], month_end: datetime, copies: int = 50) -> dict[str, float]:
    """One learn + predict step over `copies` clones of the accounts (100k for 2000 x 50)."""
    clones = [replace(a, account_id=f"{a.account_id}-{k}") for k in range(copies) for a in accounts]
    model = PotentialModel()
    previous = add_months(month_end, -1)
    learn_from_history(model, clones, previous)  # a first step, so the next one is a warm model
    started = time.perf_counter()
    learn_from_history(model, clones, month_end)
    learn_s = time.perf_counter() - started
    started = time.perf_counter()
    predict_potential(model, clones, month_end)
    predict_s = time.perf_counter() - started
    n = len(clones)
    return {
        "accounts": n,
        "learn_s": round(learn_s, 2),
        "predict_s": round(predict_s, 2),
        "learn_accounts_per_s": round(n / learn_s),
        "predict_accounts_per_s": round(n / predict_s),
        "learn_plus_predict_accounts_per_s": round(2 * n / (learn_s + predict_s)),
    }


def oracle_text(result: dict[str, Any]) -> str:
    reference, seed = result["oracle"], result["ablation_seed"]
    if not reference:
        return "(not computed)"
    no_shock = next(r for r in result["runs"] if r["seed"] == seed and not r["shock"])
    return (
        f"On seed {seed} without shock, a Bayes estimator that knows how the simulator draws "
        f"potentials and orders (the true industry and size effects and noise, true order rates, "
        f"true seasonality; it sees each account's industry, size and total sales) reaches a ratio "
        f"of {reference['mean_ratio']:.3f} (month 13: {reference['per_month'][0]:.3f}, month 24: "
        f"{reference['per_month'][-1]:.3f}); the learned model reaches {no_shock['ratio']:.3f} without "
        f"knowing any of that. What remains is the accounts' own order noise: a year or two of a few "
        f"dozen orders does not pin a yearly potential down better, so without a shock a ratio much "
        f"below 0.65 is not to be had from these data."
    )


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {r['seed']} | {'yes' if r['shock'] else 'no'} | {r['mae_model']:,.0f} | {r['mae_baseline']:,.0f} | "
        f"**{r['ratio']:.3f}** | {r['relative_mae_model']:.3f} | {r['relative_mae_baseline']:.3f} | "
        f"{'-' if r['shocked_accounts_ratio'] is None else format(r['shocked_accounts_ratio'], '.3f')} | "
        f"{r['prequential']['relative_mae']:.3f} | {r['seasonal_index_max_abs_error']:.3f} | "
        f"{r['throughput_accounts_per_s']:,.0f} |"
        for r in result["runs"]
    )
    months = "\n".join(
        f"| {m} | " + " | ".join(f"{r['per_month'][k]['ratio']:.3f}" for r in result["runs"]) + " |"
        for k, m in enumerate(EVAL_MONTHS)
    )
    month_head = " | ".join(f"{r['seed']}{' shock' if r['shock'] else ''}" for r in result["runs"])
    s = result["summary"]
    scale = result["scale"]
    ablation_rows = "\n".join(
        f"| {a['variant']} | {' | '.join(f'{x:.3f}' for x in a['ratios'])} | {a['mean_ratio']:.3f} |"
        for a in result["ablation"]
    )
    young_rows = "\n".join(
        f"| {y['history_months']} | {y['mae_model']:,.0f} | {y['mae_segment_prior']:,.0f} |"
        for y in result["young_accounts"]
    )
    verdict = (
        f"The target is **met** on average ({s['mean_ratio']:.3f}), on {s['runs_meeting_target']} of "
        f"{len(result['runs'])} runs."
        if s["target_met"]
        else f"The target is **missed** on average ({s['mean_ratio']:.3f}); it is met on "
        f"{s['runs_meeting_target']} of {len(result['runs'])} runs."
    )
    scale_text = (
        ""
        if not scale
        else f"""
**Throughput at scale.** One month-end step on {scale["accounts"]:,} accounts (the final states
cloned): learn {scale["learn_s"]} s ({scale["learn_accounts_per_s"]:,} accounts/s), predict
{scale["predict_s"]} s ({scale["predict_accounts_per_s"]:,} accounts/s); learn + predict
**{scale["learn_plus_predict_accounts_per_s"]:,} accounts/s** (the month-end steps of the runs
above, on 2000 accounts, are in the last column). Much of the time is feature extraction
(`feature_frame_at`: a Python pass over each account's month buckets, the windows summed as
arrays for 4,096 accounts at a time); the river models learn and predict in
mini-batches (`learn_many` / `predict_many` on pandas frames). Figures vary with the machine's
other load.
"""
    )
    return f"""# Potential model benchmark

Generated by `bench/potential.py` ({result["generated_at"]}, Python {result["python"]}, {result["machine"]}).
Do not edit by hand; re-run the script (about 6 minutes; `--markdown-only` re-renders this page).

## What is measured

A simulated company ({N_REPS} reps, {N_ACCOUNTS} accounts, {MONTHS} months; `simulator.generate_company`
and `generate_events`) is replayed event by event through `core.contract.validate_envelope` and
`monitor.state.apply_account_event`, in event-time order. At every month end the model learns
(`learn_from_history`, label window {result["label_months"]} months) and then predicts every
account (`predict_potential`). For months {EVAL_MONTHS.start}-{EVAL_MONTHS.stop - 1} the predictions
are scored against the simulator's true deseasonalised yearly potential
(`simulator.truth.true_yearly_potential`), next to the placeholder the model replaces: the sum of
the last 12 complete months' sales (trailing-12 baseline). Shock runs use `simulator.default_shock`
(one region's demand drops to 40% from the 15th of month 15).

## Result

Ratio of mean absolute errors, model / baseline, target <= {TARGET_RATIO}: **{s["mean_ratio"]:.3f}**
over all runs; {s["mean_ratio_no_shock"]:.3f} without shock, {s["mean_ratio_shock"]:.3f} with shock.
{verdict}

| seed | shock | MAE model | MAE baseline | ratio | rel. MAE model | rel. MAE baseline | ratio on shocked accounts | prequential rel. error | seasonal index max error | learn+predict accounts/s |
|---|---|---|---|---|---|---|---|---|---|---|
{rows}

MAE in EUR of yearly potential per account, averaged over the scored months; "rel. MAE" divides
by the mean true potential. "prequential rel. error" is the model's own running error against
its labels (sum |prediction - label| / sum label over all months learned): the labels are a
quarter's orders, a handful per account, so this is mostly their noise. It is the figure a
dashboard can show and a drift detector can watch, not the accuracy, which only a simulation
can measure.

Ratio per month (the model gets better as accounts accumulate history; the baseline does not):

| month | {month_head} |
|---|{"---|" * len(result["runs"])}
{months}

**How far can it go?** {oracle_text(result)}

## Choices, measured (seed {result["ablation_seed"]}, without / with shock)

| variant | ratio, no shock | ratio, shock | mean |
|---|---|---|---|
{ablation_rows}

New and young accounts (seed {result["ablation_seed"]}, no shock: the month-24 accounts with their
history cut to the last h months, valued by the trained model and by the segment prior alone;
the simulated company has no such accounts after its first months, so this is measured apart):

| months of history | MAE model | MAE segment prior |
|---|---|---|
{young_rows}
{scale_text}
{result["notes"]}
"""


NOTES = """## Design

- **Label:** the account's sales in the 3 months after the feature time, deseasonalised with the
  learned seasonal index and annualised. 2- and 6-month labels do as well here; 1 month is
  noisier (many accounts order less than monthly); a 12-month label needs no seasonal index but
  starts teaching a year after the data starts and hears of a shock a year late, and is clearly
  worse.
- **Seasonal index** (`SeasonalIndex`): each month's company total against a centred 2x12 moving
  average (or the nearest full 12-month window), averaged per calendar month; flat until 12
  months have been seen. Learned, not configured; it ends within ~0.05 of the simulator's index
  and does as well as the exact one. Without it the model is a little worse: most of its weight
  is on whole-history rates, which seasonality barely touches, but 3-month rates and labels are
  annualised with it.
- **Regional levels** (`RegionalLevels`): each region's monthly sales divided by the typical
  region's (median over regions, each scaled to its mean), the recent 2 months against the
  feature window, soft-thresholded at 1.5 robust standard errors; the account's older sales and
  its profile estimate are scaled by it. It is what makes the model follow a regional shock
  (without it the shock runs lose most of their lead: the labels tell of a drop months later) at
  a cost of well under 1% when nothing happens. National moves are not scaled (the median
  cancels them with the seasonality); they reach the model through the 3-month rate and labels.
- **Features** (`features_at`, only months before the prediction month): deseasonalised,
  annualised sales over 3, 6, 12 and 24 months (over the months the account existed), months of
  history, months with orders, months since the first order, activity minutes over 3 and 12
  months, open weighted pipeline, industry, employees (log, band, missing flag), region, coarse
  lat/lon, the month. Month of year is not a model input: features and labels are deseasonalised.
- **Model:** two profile models (river `BayesianLinearRegression` on the log of the account's
  realised yearly rate; one from industry, size and region, one adding activity minutes and
  pipeline) give every account an estimate; the combiner (river `BayesianLinearRegression` in
  units of 10k) blends it with the account's 3-month and whole-history rates, the own part scaled
  by h / (h + 6) for h months of history and, for the whole-history rate, also by the share of
  months with an order. All learn exact least squares in mini-batches: no learning rate, no
  scaler drift. Measured and dropped from the combiner: the 6- and 12-month rates (for accounts
  younger than a year 12 and 24 months are the same column, and the weights learned in the first
  year split between them arbitrarily), and the pipeline (the state keeps an opportunity's newest update and
  the newest of an earlier month only, so at training time the pipeline a few months back lacks the opportunities
  updated since: its learned weight came out negative). SGD `LinearRegression` with a log target
  was not used: a 3-month label is often 0 for a small account; ARF runs ~500/s.
- **Segment prior:** running mean label per industry x size band (then industry, then all).
  Used alone until the model has learned anything. A new account is valued at a quarter segment
  prior and three quarters firmographic profile, blended into the model as its history grows to
  6 months (table above: ~20% better than the segment mean at no history).
- Parameters were chosen on seeds 11, 12, 21 and 22; the figures above are from other seeds.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[31, 32, 33])
    parser.add_argument("--label-months", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="one seed, no ablation, oracle or 100k run, no files written"
    )
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="re-render docs/benchmarks/potential.md from bench/results/potential.json",
    )
    args = parser.parse_args()
    if args.markdown_only:
        saved = json.loads((ROOT / "bench" / "results" / "potential.json").read_text())
        (ROOT / "docs" / "benchmarks" / "potential.md").write_text(markdown({**saved, "notes": NOTES}))
        return
    seeds = args.seeds[:1] if args.quick else args.seeds
    runs, first_snaps = [], []
    last = None
    for seed in seeds:
        for shocked in (False, True):
            log(f"seed {seed}, shock {shocked}")
            snap = snapshots(seed, shocked)
            result = evaluate(snap, PotentialModel, label_months=args.label_months)
            runs.append({"seed": seed, "shock": shocked, **result})
            log(
                f"  => MAE model {result['mae_model']:.0f}, baseline {result['mae_baseline']:.0f}, "
                f"ratio {result['ratio']:.3f}, {result['throughput_accounts_per_s']:.0f} accounts/s"
            )
            if seed == seeds[0]:
                first_snaps.append(snap)
            last = snap
    ratios = [r["ratio"] for r in runs]
    summary = {
        "mean_ratio": float(np.mean(ratios)),
        "mean_ratio_no_shock": float(np.mean([r["ratio"] for r in runs if not r["shock"]])),
        "mean_ratio_shock": float(np.mean([r["ratio"] for r in runs if r["shock"]])),
        "runs_meeting_target": sum(r <= TARGET_RATIO for r in ratios),
        "target": TARGET_RATIO,
    }
    summary["target_met"] = summary["mean_ratio"] <= TARGET_RATIO
    scale: dict[str, Any] = {}
    ablation_rows: list[dict[str, Any]] = []
    reference: dict[str, Any] = {}
    young: list[dict[str, Any]] = []
    if not args.quick:
        log(f"ablation on seed {seeds[0]} ...")
        ablation_rows = ablation(first_snaps)
        log(f"young accounts on seed {seeds[0]} ...")
        young = young_accounts(first_snaps[0])
        log(f"oracle on seed {seeds[0]} without shock ...")
        reference = oracle(first_snaps[0])
        log("throughput at 100k accounts ...")
        _, month_end, accounts = last["months"][-1]
        scale = scale_throughput(accounts, month_end)
        log(f"  {scale}")
    result = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "n_reps": N_REPS,
        "n_accounts": N_ACCOUNTS,
        "months": MONTHS,
        "eval_months": [EVAL_MONTHS.start, EVAL_MONTHS.stop - 1],
        "label_months": args.label_months,
        "summary": summary,
        "scale": scale,
        "runs": runs,
        "ablation_seed": seeds[0],
        "ablation": ablation_rows,
        "oracle": reference,
        "young_accounts": young,
    }
    print(json.dumps(result, indent=2, default=float))
    if not args.quick:
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "potential.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
        (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "benchmarks" / "potential.md").write_text(markdown({**result, "notes": NOTES}))
        log("wrote bench/results/potential.json and docs/benchmarks/potential.md")


if __name__ == "__main__":
    main()
