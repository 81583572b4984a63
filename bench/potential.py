"""Benchmark: the online potential model against the simulator's true potential.

For each seed (with and without the default market shock) a simulated company of
8 reps and 2000 accounts is replayed for 24 months: every event passes
`monitor.contract.validate_envelope` and `monitor.state.apply_account_event` in event
time order, and at each month's end the model learns from history
(`learn_from_history`) and predicts every account (`predict_potential`). After the
warm-up (months 13-24) the predictions are scored against
`simulator.truth.true_yearly_potential` next to the current placeholder, the last 12
complete months' sales (trailing-12 baseline).

Throughput is measured on the same month-end steps and once at 100k accounts
(the 2000 final account states cloned 50 times).

    .venv/bin/python bench/potential.py [--seeds 11 12 13] [--quick]

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
from monitor.contract import validate_envelope  # noqa: E402
from monitor.potential import PotentialModel, learn_from_history, predict_potential  # noqa: E402
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


def evaluate(snap: dict[str, Any], make_model: Callable[[], PotentialModel], *, label_months: int = 3,
             verbose: bool = True) -> dict[str, Any]:
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
        per_month.append({"month": m, "mae_model": round(e_model / n, 1), "mae_baseline": round(e_base / n, 1),
                          "ratio": round(e_model / e_base, 3)})
        if verbose:
            log(f"    month {m:2d}: MAE model {e_model / n:9.0f}  baseline {e_base / n:9.0f}  "
                f"ratio {e_model / e_base:.3f}  prequential rel. error {model.metrics['relative_mae']:.3f}")
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
    return {"accounts": n, "learn_s": round(learn_s, 2), "predict_s": round(predict_s, 2),
            "learn_accounts_per_s": round(n / learn_s), "predict_accounts_per_s": round(n / predict_s),
            "learn_plus_predict_accounts_per_s": round(2 * n / (learn_s + predict_s))}


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {r['seed']} | {'yes' if r['shock'] else 'no'} | {r['mae_model']:,.0f} | {r['mae_baseline']:,.0f} | "
        f"{r['ratio']:.3f} | {r['relative_mae_model']:.3f} | {r['relative_mae_baseline']:.3f} | "
        f"{'' if r['shocked_accounts_ratio'] is None else format(r['shocked_accounts_ratio'], '.3f')} | "
        f"{r['prequential']['relative_mae']:.3f} | {r['throughput_accounts_per_s']:,.0f} |"
        for r in result["runs"]
    )
    s = result["summary"]
    scale = result["scale"]
    return f"""# Potential model benchmark

Generated by `bench/potential.py` ({result['generated_at']}, Python {result['python']}, {result['machine']}).
Do not edit by hand; re-run the script.

**What is measured.** A simulated company ({N_REPS} reps, {N_ACCOUNTS} accounts, {MONTHS} months;
`simulator.generate_company` / `generate_events`) is replayed event by event through
`validate_envelope` and `apply_account_event`. At every month end the model learns
(`learn_from_history`, label window {result['label_months']} months) and predicts every account
(`predict_potential`). From month 13 on, the predictions are scored against the simulator's
true deseasonalised yearly potential (`simulator.truth.true_yearly_potential`), next to the
placeholder it replaces: the last 12 complete months' sales (trailing-12 baseline). The shock
runs use `simulator.default_shock` (one region's demand drops to 40% in month 15).

**Result.** Mean ratio model MAE / baseline MAE: **{s['mean_ratio']:.3f}** (target <= {TARGET_RATIO});
without shock {s['mean_ratio_no_shock']:.3f}, with shock {s['mean_ratio_shock']:.3f}.
Target {'met' if s['target_met'] else 'missed'} on {s['runs_meeting_target']} of {len(result['runs'])} runs.

| seed | shock | MAE model | MAE baseline | ratio | rel. MAE model | rel. MAE baseline | ratio, shocked accounts | prequential rel. error | learn+predict accounts/s |
|---|---|---|---|---|---|---|---|---|---|
{rows}

MAE in EUR of yearly potential per account, averaged over months 13-24. "rel. MAE" divides by the
mean true potential. "prequential rel. error" is the model's own running error against its
(noisy, 3-month) labels: sum |prediction - label| / sum label; most of it is the labels' noise
(a few orders a quarter), not the model's, so it is a drift signal, not an accuracy figure.

**Throughput at scale.** One month-end step on {scale['accounts']:,} accounts (the final states
cloned): learn {scale['learn_s']} s ({scale['learn_accounts_per_s']:,} accounts/s), predict
{scale['predict_s']} s ({scale['predict_accounts_per_s']:,} accounts/s); learn + predict
{scale['learn_plus_predict_accounts_per_s']:,} accounts/s. Almost all of it is feature extraction
in Python (`features_at`); the river models learn and predict in mini-batches.

{result['notes']}
"""


NOTES = """**Design, in short** (see `monitor/potential.py`).

- Label: the next 3 months' sales, deseasonalised with a seasonal index learned from the
  company's total sales per calendar month, annualised. A 12-month label window needs no
  seasonal index but starts learning a year later and reacts to a shock a year late.
- Features (only months before the prediction month): deseasonalised sales rates over 3, 6,
  12 and 24 months, months of history, months with orders, activity minutes over 3 and 12
  months, open weighted pipeline, industry, size, region and coarse location.
- Model: a profile model (river BayesianLinearRegression on the log of the realised yearly
  rate, from industry, size, region, activity and pipeline) gives every account a firmographic
  estimate; a combiner (river BayesianLinearRegression in money units) blends it with the
  account's own rates, weighted by its months of history (h / (h + 12)). Both learn in
  mini-batches (`learn_many`), exactly (no learning rate).
- New accounts (< 3 months of history): blended with the segment prior, the running mean
  label of industry x size band.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--label-months", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed, no 100k scale run, no files written")
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    runs = []
    last = None
    for seed in seeds:
        for shocked in (False, True):
            log(f"seed {seed}, shock {shocked}")
            snap = snapshots(seed, shocked)
            result = evaluate(snap, PotentialModel, label_months=args.label_months)
            runs.append({"seed": seed, "shock": shocked, **result})
            log(f"  => MAE model {result['mae_model']:.0f}, baseline {result['mae_baseline']:.0f}, "
                f"ratio {result['ratio']:.3f}, {result['throughput_accounts_per_s']:.0f} accounts/s")
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
    scale = {}
    if not args.quick and last is not None:
        log("throughput at 100k accounts ...")
        _, month_end, accounts = last["months"][-1]
        scale = scale_throughput(accounts, month_end)
        log(f"  {scale}")
    result = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "n_reps": N_REPS, "n_accounts": N_ACCOUNTS, "months": MONTHS,
        "eval_months": [EVAL_MONTHS.start, EVAL_MONTHS.stop - 1], "label_months": args.label_months,
        "summary": summary, "scale": scale, "runs": runs, "notes": NOTES,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "notes"}, indent=2, default=float))
    if not args.quick:
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "potential.json").write_text(
            json.dumps({k: v for k, v in result.items() if k != "notes"}, indent=2, default=float) + "\n")
        (ROOT / "docs" / "benchmarks").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "benchmarks" / "potential.md").write_text(markdown(result))
        log("wrote bench/results/potential.json and docs/benchmarks/potential.md")


if __name__ == "__main__":
    main()
