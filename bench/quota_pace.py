"""Benchmark of the quota pace detector on the simulator, through the planner offline.

Per seed: `simulator.generate_company` (8 reps, 2000 accounts) and 24 months of
`simulator.generate_events` from 2024-01-01, with the simulator's seasonality (December x1.5,
August x0.6, November x1.2: a strongly seasonal year). Every rep gets a quota for the second
year by a `rep.upserted` dated 2025-01-01: their own 2024 sales (`--quota previous_year`, the
default) or their accounts' simulated expected sales, the true yearly potential (`--quota
expected`). The events go through `territory.backtest.run_backtest`, the worker's intake and
planner code without Kafka, with the default settings (the potential model and its learned
seasonal index, a year of warm-up, thresholds 0.85 / 1.2, hysteresis 0.8) except the solver's
time limit and a cooldown that allows one proposal a run (proposals are not applied; they
only cost time here).

The detector has two tests (detectors/quota_pace.py): the year-to-date pace and a run-rate
change test (a CUSUM of each month's sales against its expected); the planner builds it with
the default run-rate settings (threshold 4 noise units, noise 0.12, tuned to a 20 % change).

(a) Drop: from a day spread over 2025-01-01..2025-06-30 (stratified by seed), one seeded rep's
    territory loses 20 % of its demand: each order of that rep's accounts after the day is
    dropped with probability 0.2 (a thinned Poisson process, as the simulator makes its
    regional shocks). Measured: weeks from the drop to that rep's first quota_pace `behind`
    (its `detected_at`, the moment judged; the target is <= 6 weeks), which test found it,
    whether it is found by the year's last judgement, and the other reps' signals in the same
    runs. The "noise-free" column is when the first `behind` would come without any noise (the
    detector on months short by exactly the drop): monthly judgement's floor, and for the
    year to date alone, a cumulative pace's (a 20 % drop pulls it below 0.85 only once the
    months after the drop weigh 3/4 of the year so far).
(b) Null: the same seeds without the drop: every quota_pace `behind` or `ahead` is false.
    Counted per 100 rep-years (each rep judged from March to December 2025, on complete
    months through November: the event stream ends with 2025).

An ablation without the planner feeds the same runs' monthly sales per rep straight into
`QuotaPaceDetector`: with the simulator's true seasonality as the index, with a straight line
(months / 12), and the year-to-date test alone (the detector before the run-rate test).

The operating curve (the `direct` path, no planner: cheap, so larger territories too): per
territory size (`--curve-accounts`, 8 reps each), `--curve-seeds` companies; the per-rep
monthly noise (std of a month's sales over last year's x the true seasonal share; of its log;
of order counts), and for each run-rate threshold (the noise setting at the measured noise)
false signals per 100 rep-years in null runs against drops found, median weeks and the share
found within 6 weeks, every rep dropping 20 % from its own day (January to June).

Run:  .venv/bin/python bench/quota_pace.py [--seeds 8] [--accounts 2000] [--reps 8]
(one process; each seed replays its two years twice, null and drop)
Writes bench/results/quota_pace.json and docs/benchmarks/quota_pace.md (`--out DIR` writes both
there instead, e.g. for a smoke run; `--render-only`: the section from the JSON kept); then
`bench/report.py` rebuilds docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from calendar import month_name, monthrange
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# bench/detectors.py would shadow the `detectors` package: the project root goes first, this folder goes.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from core.settings import Settings  # noqa: E402
from detectors import QuotaPaceDetector, QuotaYear  # noqa: E402
from detectors.quota_pace import RUN_RATE_NOISE, RUN_RATE_SHIFT, RUN_RATE_THRESHOLD  # noqa: E402
from simulator import generate_company, generate_events, rep_profile  # noqa: E402
from simulator.truth import SEASONALITY  # noqa: E402
from territory.backtest import run_backtest  # noqa: E402

DROP = 0.2
TARGET_WEEKS = 6.0
DROP_WINDOW_DAYS = 181  # drops start over the first half of the quota year
_DEFAULTS = Settings()
BEHIND, AHEAD, HYSTERESIS = _DEFAULTS.quota_pace_behind, _DEFAULTS.quota_pace_ahead, _DEFAULTS.hysteresis
#: The operating curve: run-rate thresholds (noise units) and territory sizes (accounts; 8 reps).
CURVE_THRESHOLDS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
CURVE_ACCOUNTS = (2000, 8000, 16000, 32000)
SECTION = ROOT / "docs" / "benchmarks" / "quota_pace.md"
RESULTS = ROOT / "bench" / "results" / "quota_pace.json"

Event = tuple[str, str, dict[str, Any]]


# --------------------------------------------------------------------------- the runs


def _when(envelope: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(envelope["occurred_at"])


def monthly_sales(events: list[Event], owner: dict[str, str]) -> dict[str, dict[str, float]]:
    """rep -> "YYYY-MM" (UTC) -> order value."""
    sales: dict[str, dict[str, float]] = {}
    for _, _, envelope in events:
        if envelope["type"] != "order.placed":
            continue
        moment = _when(envelope).astimezone(timezone.utc)
        rep = sales.setdefault(owner[envelope["data"]["account_id"]], {})
        key = f"{moment.year:04d}-{moment.month:02d}"
        rep[key] = rep.get(key, 0.0) + float(envelope["data"]["amount"])
    return sales


def quota_events(company, quotas: dict[str, float], year: int) -> list[Event]:
    """A rep.upserted per rep on January 1st of `year`: the whole profile, with the quota."""
    at = f"{year:04d}-01-01T00:00:00+00:00"
    return [
        (
            "crm.reps",
            rep.rep_id,
            {
                "event_id": f"quota-{rep.rep_id}-{year}",
                "type": "rep.upserted",
                "occurred_at": at,
                "source": "bench",
                "data": {**rep_profile(rep), "quota": round(quotas[rep.rep_id], 2)},
            },
        )
        for rep in company.reps
    ]


def thinned(events: list[Event], accounts: set[str], start: datetime, seed: int) -> list[Event]:
    """The events with each order of `accounts` from `start` on dropped with probability DROP."""
    rng = np.random.default_rng(seed)
    kept = []
    for event in events:
        envelope = event[2]
        if (
            envelope["type"] == "order.placed"
            and envelope["data"]["account_id"] in accounts
            and _when(envelope) >= start
        ):
            if rng.random() < DROP:
                continue
        kept.append(event)
    return kept


def quota_signals(events: list[Event], settings: Settings) -> tuple[list[dict[str, Any]], float]:
    """The run's quota_pace signals and its seconds."""
    started = time.perf_counter()
    result = run_backtest(events, settings)
    signals = [s for s in result.signals if s["kind"] == "quota_pace"]
    return signals, time.perf_counter() - started


def detector_of(run_rate_threshold: float | None = RUN_RATE_THRESHOLD, noise: float = RUN_RATE_NOISE):
    """The detector as the planner builds it from the default settings, with these run-rate ones."""
    return QuotaPaceDetector(
        BEHIND,
        AHEAD,
        HYSTERESIS,
        run_rate_threshold=run_rate_threshold,
        run_rate_noise=noise,
        run_rate_shift=RUN_RATE_SHIFT,
    )


def year_rows(sales: dict[str, dict[str, float]], quotas: dict[str, float], year: int) -> dict[str, list[float]]:
    """rep -> the 12 months of `year` (January first)."""
    return {rep: [sales.get(rep, {}).get(f"{year:04d}-{m:02d}", 0.0) for m in range(1, 13)] for rep in quotas}


def direct(
    rows: dict[str, list[float]], quotas: dict[str, float], year: int, last_month: int, seasonal, detector=None
) -> list[tuple[str, str, datetime]]:
    """The detector alone (default: as the planner builds it) on each rep's months of `year`,
    judged at months 1..`last_month`: (rep, state, moment judged) of every finding."""
    detector = detector_of() if detector is None else detector
    found = []
    for months in range(1, last_month + 1):
        moment = datetime(year + months // 12, months % 12 + 1, 1, tzinfo=timezone.utc)
        per_rep = {rep: tuple(rows[rep][:months]) for rep in quotas}
        for finding in detector.update(QuotaYear(year, months, per_rep, quotas, seasonal), moment).findings:
            found.append((finding.rep_id, finding.state, moment))
    return found


def exposure(start: datetime, year: int, month: int) -> float:
    """The share of `month` of `year` from `start` on (0 before, 1 after)."""
    first = datetime(year, month, 1, tzinfo=timezone.utc)
    days = monthrange(year, month)[1]
    return min(max((first + timedelta(days=days) - start).total_seconds() / 86400 / days, 0.0), 1.0)


def noise_free_weeks(start: datetime, year: int, last_month: int, detector=None) -> float | None:
    """Weeks from `start` to the first monthly `behind` of the detector (default: as the planner
    builds it) on months without noise: the simulator's seasonality as the index, quota =
    expected sales, each month short by DROP x its share after `start`."""
    rows = {"R": [SEASONALITY[m - 1] / 12.0 * (1.0 - DROP * exposure(start, year, m)) for m in range(1, 13)]}
    for _, state, moment in direct(rows, {"R": 1.0}, year, last_month, SEASONALITY, detector):
        if state == "behind" and moment > start:
            return (moment - start).days / 7.0
    return None


# --------------------------------------------------------------------------- the direct path at any size


def order_arrays(company, months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account index, epoch seconds, amount) of the orders `generate_events` makes (the same
    draws: its first random stream), without building the events."""
    from simulator.events import _BusinessTime, _orders

    order_rng = np.random.default_rng(np.random.SeedSequence(company.seed).spawn(3)[0])
    return _orders(company, _BusinessTime(company.start, months), None, order_rng)


def month_matrix(company, account: np.ndarray, when: np.ndarray, values: np.ndarray, months: int) -> np.ndarray:
    """reps x months (from the company's start month) of `values` summed per order's month (UTC)."""
    rep_index = {r.rep_id: k for k, r in enumerate(company.reps)}
    owner = np.array([rep_index[a.rep_id] for a in company.accounts])
    start = np.datetime64(company.start.strftime("%Y-%m"), "M")
    month = (when.astype("datetime64[s]").astype("datetime64[M]") - start).astype(int)
    out = np.zeros((len(company.reps), months))
    np.add.at(out, (owner[account], month), values)
    return out


def curve_seed(seed: int, index: int, count: int, accounts: int, reps: int, months: int) -> dict[str, Any]:
    """One company on the direct path: per rep the quota year's months, null and with every rep
    dropping from its own day (stratified over January to June: reps are judged apart)."""
    company = generate_company(seed=seed, n_reps=reps, n_accounts=accounts)
    account, when, amount = order_arrays(company, months)
    year = company.start.year + 1
    sales = month_matrix(company, account, when, amount, months)
    counts = month_matrix(company, account, when, np.ones_like(amount), months)
    rep_index = {r.rep_id: k for k, r in enumerate(company.reps)}
    owner = np.array([rep_index[a.rep_id] for a in company.accounts])
    starts = [
        datetime(year, 1, 1, tzinfo=timezone.utc)
        + timedelta(days=int((index * reps + k + 0.5) / (count * reps) * DROP_WINDOW_DAYS))
        for k in range(reps)
    ]
    start_s = np.array([s.timestamp() for s in starts])[owner[account]]
    rng = np.random.default_rng([seed, 29])
    kept = ~((when >= start_s) & (rng.random(len(when)) < DROP))
    dropped = month_matrix(company, account[kept], when[kept], amount[kept], months)
    ids = [r.rep_id for r in company.reps]
    quotas = {rep: float(sales[k, :12].sum()) for k, rep in enumerate(ids)}
    # The noise of a month: sales (and order counts) over last year's x the true seasonal share.
    share = np.array(SEASONALITY) / 12.0
    ratio = sales[:, 12:24] / (sales[:, :12].sum(axis=1, keepdims=True) * share)
    count_ratio = counts[:, 12:24] / (counts[:, :12].sum(axis=1, keepdims=True) * share)
    return {
        "year": year,
        "ids": ids,
        "quotas": quotas,
        "null": {rep: list(sales[k, 12:24]) for k, rep in enumerate(ids)},
        "drop": {rep: list(dropped[k, 12:24]) for k, rep in enumerate(ids)},
        "starts": dict(zip(ids, starts)),
        "ratios": ratio.ravel().tolist(),
        "count_ratios": count_ratio.ravel().tolist(),
        "orders_per_rep_month": float(counts[:, 12:24].mean()),
    }


def operating_curve(seeds: list[int], accounts: int, reps: int, months: int, last_month: int) -> dict[str, Any]:
    """The detector alone at one territory size: its noise, and per run-rate threshold (the
    noise setting at the measured noise) false signals against drop detection."""
    runs = [curve_seed(seed, i, len(seeds), accounts, reps, months) for i, seed in enumerate(seeds)]
    ratios = np.array([r for run in runs for r in run["ratios"]])
    noise = round(float(np.std(np.log(ratios))), 3)
    out: dict[str, Any] = {
        "accounts": accounts,
        "reps": reps,
        "accounts_per_rep": accounts // reps,
        "seeds": len(seeds),
        "orders_per_rep_month": round(statistics.mean(run["orders_per_rep_month"] for run in runs), 1),
        "noise_ratio_std": round(float(np.std(ratios)), 4),
        "noise_log_std": noise,
        "noise_count_ratio_std": round(float(np.std([r for run in runs for r in run["count_ratios"]])), 4),
        "rows": [],
    }
    for threshold in (None, *CURVE_THRESHOLDS):
        false = rep_years_flagged = found = within = 0
        weeks, floors = [], []
        for run in runs:
            year, quotas = run["year"], run["quotas"]
            null = direct(run["null"], quotas, year, last_month, SEASONALITY, detector_of(threshold, noise))
            false += sum(1 for _, state, _ in null if state in ("behind", "ahead"))
            rep_years_flagged += len({rep for rep, state, _ in null if state in ("behind", "ahead")})
            drop = direct(run["drop"], quotas, year, last_month, SEASONALITY, detector_of(threshold, noise))
            for rep, start in run["starts"].items():
                first = sorted(m for r, s, m in drop if r == rep and s == "behind" and m >= start)
                floor = noise_free_weeks(start, year, last_month, detector_of(threshold, noise))
                floors.append(floor)
                if first:
                    found += 1
                    weeks.append((first[0] - start).days / 7.0)
                    within += (first[0] - start).days / 7.0 <= TARGET_WEEKS
        rep_years = len(runs) * reps
        out["rows"].append(
            {
                "run_rate_threshold": threshold,
                "null_false_per_100_rep_years": round(100 * false / rep_years, 2),
                "null_reps_flagged_share": round(rep_years_flagged / rep_years, 3),
                "drops": rep_years,
                "drop_detection_rate": round(found / rep_years, 3),
                "drop_median_weeks": _median(weeks),
                "drop_within_target_rate": round(within / rep_years, 3),
                "noise_free_median_weeks": _median([f for f in floors if f is not None]),
                "noise_free_found_rate": round(sum(f is not None for f in floors) / len(floors), 3),
            }
        )
    print(json.dumps({k: out[k] for k in ("accounts", "noise_log_std", "orders_per_rep_month")}), file=sys.stderr)
    return out


def run_seed(seed: int, index: int, count: int, args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    company = generate_company(seed=seed, n_reps=args.reps, n_accounts=args.accounts)
    events = generate_events(company, months=args.months)
    owner = {account.account_id: account.rep_id for account in company.accounts}
    first_year = company.start.year
    year = first_year + 1 if args.months > 12 else first_year  # the quota year
    last_event = max(_when(e[2]) for e in events).astimezone(timezone.utc)
    # Complete months of the quota year the planner judges: it judges lateness_days behind the
    # last event, and a month once the next has begun.
    judged_until = last_event - timedelta(days=settings.lateness_days)
    last_month = min(12, (judged_until.year - year) * 12 + judged_until.month - 1)
    sales = monthly_sales(events, owner)
    mode = args.quota if year > first_year else "expected"
    if mode == "previous_year":
        quotas = {
            rep.rep_id: sum(v for k, v in sales.get(rep.rep_id, {}).items() if k.startswith(f"{first_year}-"))
            for rep in company.reps
        }
    else:
        quotas = {rep.rep_id: 0.0 for rep in company.reps}
        for account in company.accounts:
            quotas[account.rep_id] += account.true_potential
    with_quotas = events + quota_events(company, quotas, year)

    rng = np.random.default_rng([seed, 17])
    rep = str(rng.choice([r.rep_id for r in company.reps]))
    offset = (index + float(rng.random())) / count * DROP_WINDOW_DAYS
    start = datetime(year, 1, 1, tzinfo=timezone.utc) + timedelta(days=offset)
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    dropped = thinned(with_quotas, {a.account_id for a in company.accounts if a.rep_id == rep}, start, seed)

    null_signals, null_s = quota_signals(with_quotas, settings)
    drop_signals, drop_s = quota_signals(dropped, settings)
    behind = sorted(
        (s["detected_at"], s["evidence"].get("test"))
        for s in drop_signals
        if s["subject"]["id"] == rep and s["state"] == "behind" and datetime.fromisoformat(s["detected_at"]) >= start
    )
    found_at = datetime.fromisoformat(behind[0][0]) if behind else None
    drop_sales = monthly_sales(dropped, owner)
    ablation = {}
    for name, seasonal, threshold in (
        ("seasonal", SEASONALITY, RUN_RATE_THRESHOLD),
        ("straight_line", None, RUN_RATE_THRESHOLD),
        ("year_to_date_only", SEASONALITY, None),
    ):
        null_found = direct(year_rows(sales, quotas, year), quotas, year, last_month, seasonal, detector_of(threshold))
        drop_found = direct(
            year_rows(drop_sales, quotas, year), quotas, year, last_month, seasonal, detector_of(threshold)
        )
        first = sorted(m for r, s, m in drop_found if r == rep and s == "behind" and m >= start)
        ablation[name] = {
            "null_false": sum(1 for _, s, _ in null_found if s in ("behind", "ahead")),
            "null_reps_flagged": len({r for r, s, _ in null_found if s in ("behind", "ahead")}),
            "drop_weeks": (first[0] - start).days / 7.0 if first else None,
        }
    row = {
        "seed": seed,
        "quota": mode,
        "year": year,
        "months_judged": last_month,
        "drop_rep": rep,
        "drop_start": start.date().isoformat(),
        "drop_found_at": found_at.date().isoformat() if found_at else None,
        "drop_weeks": (found_at - start).days / 7.0 if found_at else None,
        "drop_found_by": behind[0][1] if behind else None,
        "noise_free_weeks": noise_free_weeks(start, year, last_month),
        "noise_free_weeks_year_to_date": noise_free_weeks(start, year, last_month, detector_of(None)),
        "drop_other_signals": sum(1 for s in drop_signals if s["subject"]["id"] != rep and s["state"] != "cleared"),
        "null_false": sum(1 for s in null_signals if s["state"] in ("behind", "ahead")),
        "null_false_by_state": {
            state: sum(1 for s in null_signals if s["state"] == state) for state in ("behind", "ahead", "cleared")
        },
        "null_reps_flagged": len({s["subject"]["id"] for s in null_signals if s["state"] in ("behind", "ahead")}),
        "seasonal_basis": sorted({str(s["evidence"].get("seasonal_basis")) for s in null_signals + drop_signals}),
        "rep_pace_at_drop_rep": [
            (s["detected_at"][:10], s["state"], s["evidence"].get("test"), s["evidence"].get("pace"))
            for s in drop_signals
            if s["subject"]["id"] == rep
        ],
        "quotas": {r: round(q, 2) for r, q in quotas.items()},
        "ablation": ablation,
        "seconds": round(null_s + drop_s, 1),
        "events": len(with_quotas),
    }
    print(
        json.dumps({k: row[k] for k in ("seed", "drop_rep", "drop_start", "drop_weeks", "null_false", "seconds")}),
        file=sys.stderr,
    )
    return row


# --------------------------------------------------------------------------- summary and page


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 90)), 1) if values else None


def summarise(rows: list[dict[str, Any]], reps: int) -> dict[str, Any]:
    weeks = [r["drop_weeks"] for r in rows if r["drop_weeks"] is not None]
    rep_years = len(rows) * reps
    summary: dict[str, Any] = {
        "runs": len(rows),
        "drop_found": len(weeks),
        "drop_detection_rate": round(len(weeks) / len(rows), 3) if rows else None,
        "drop_median_weeks": _median(weeks),
        "drop_p90_weeks": _p90(weeks),
        "drop_within_target": sum(1 for w in weeks if w <= TARGET_WEEKS),
        "noise_free_median_weeks": _median([r["noise_free_weeks"] for r in rows if r["noise_free_weeks"] is not None]),
        "null_false_per_100_rep_years": round(100 * sum(r["null_false"] for r in rows) / rep_years, 2)
        if rows
        else None,
        "null_reps_flagged_share": round(sum(r["null_reps_flagged"] for r in rows) / rep_years, 3) if rows else None,
        "drop_runs_other_signals_per_100_rep_years": round(
            100 * sum(r["drop_other_signals"] for r in rows) / (len(rows) * max(1, reps - 1)), 2
        )
        if rows
        else None,
    }
    summary["target_met"] = summary["drop_median_weeks"] is not None and summary["drop_median_weeks"] <= TARGET_WEEKS
    summary["drop_found_by"] = {
        test: sum(1 for r in rows if r["drop_found_by"] == test) for test in ("year_to_date", "run_rate")
    }
    summary["noise_free_year_to_date_median_weeks"] = _median(
        [r["noise_free_weeks_year_to_date"] for r in rows if r["noise_free_weeks_year_to_date"] is not None]
    )
    for name in ("seasonal", "straight_line", "year_to_date_only"):
        found = [r["ablation"][name]["drop_weeks"] for r in rows if r["ablation"][name]["drop_weeks"] is not None]
        summary[f"ablation_{name}"] = {
            "null_false_per_100_rep_years": round(
                100 * sum(r["ablation"][name]["null_false"] for r in rows) / rep_years, 2
            )
            if rows
            else None,
            "drop_detection_rate": round(len(found) / len(rows), 3) if rows else None,
            "drop_median_weeks": _median(found),
        }
    return summary


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def markdown(results: dict[str, Any]) -> str:
    s, p = results["summary"], results["parameters"]
    first = results["runs"][0] if results["runs"] else {"year": "-", "quota": p["quota"]}
    year, mode = first["year"], first["quota"]
    lines = [
        "# Quota pace benchmark",
        "",
        f"Generated by `bench/quota_pace.py` on {results['generated']} ({results['machine']['processor']}, "
        f"Python {results['machine']['python']}, {results['seconds']:.0f} s). Raw numbers: `bench/results/quota_pace.json`.",
        "",
        f"{p['seeds']} simulated companies (seeds {p['seed_list'][0]}-{p['seed_list'][-1]}; {p['reps']} reps, "
        f"{p['accounts']} accounts, {p['months']} months from 2024-01 with the simulator's seasonality, December "
        "x1.5, August x0.6) replayed through the planner offline (`territory.backtest.run_backtest`; "
        f"TERRITORY_POTENTIAL={p['settings']['potential']}, so expected to date follows "
        f"{'the potential model' + chr(39) + 's learned seasonal index' if p['settings']['potential'] == 'model' else 'a straight line'}; "
        f"warm-up {p['settings']['warmup_days']} days, thresholds {p['settings']['behind']} / {p['settings']['ahead']}, "
        f"hysteresis {p['settings']['hysteresis']}; the run-rate test with its defaults: threshold "
        f"{p['settings']['run_rate_threshold']} noise units, noise {p['settings']['run_rate_noise']}, tuned to a "
        f"{p['settings']['run_rate_shift']:.0%} change). Every rep's quota for {year} is "
        f"{'their sales of the year before' if mode == 'previous_year' else 'their simulated expected sales'} "
        f"(a `rep.upserted` on {year}-01-01). Drop runs: one seeded rep's territory loses 20 % of its demand "
        f"from a day spread over January to June {year}; null runs: no drop. Judged monthly, on complete "
        f"months, from the second (March 1st) through month {p['months_judged']} of {year}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| drop found (first `behind` for the rep) | {s['drop_found']} of {s['runs']} |",
        f"| weeks from the drop to the first `behind`: median / p90 | {_cell(s['drop_median_weeks'])} / {_cell(s['drop_p90_weeks'])} |",
        f"| found within the {TARGET_WEEKS:g}-week target | {s['drop_within_target']} of {s['runs']} |",
        f"| found by the run-rate test / the year to date | {s['drop_found_by']['run_rate']} / {s['drop_found_by']['year_to_date']} |",
        f"| noise-free first `behind`, median weeks (year to date alone) | {_cell(s['noise_free_median_weeks'])} "
        f"({_cell(s['noise_free_year_to_date_median_weeks'])}) |",
        f"| false signals in null runs (`behind` or `ahead`) per 100 rep-years | {_cell(s['null_false_per_100_rep_years'])} |",
        f"| share of reps flagged at least once in null runs | {_cell(s['null_reps_flagged_share'])} |",
        f"| other reps' signals in drop runs per 100 rep-years | {_cell(s['drop_runs_other_signals_per_100_rep_years'])} |",
        "",
        f"Target (<= {TARGET_WEEKS:g} weeks from the drop to `behind`): {'met' if s['target_met'] else 'missed'}.",
        "",
        f"Target (no pace signal in null runs): {'met' if not s['null_false_per_100_rep_years'] else 'missed'} "
        f"({_cell(s['null_false_per_100_rep_years'])} false signals per 100 rep-years).",
        "",
        "Per run:",
        "",
        "| seed | rep | drop from | first `behind` | test | weeks | noise-free weeks | null false signals | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['seed']} | {r['drop_rep']} | {r['drop_start']} | {_cell(r['drop_found_at'])} | {_cell(r['drop_found_by'])} | "
            f"{_cell(None if r['drop_weeks'] is None else round(r['drop_weeks'], 1))} | "
            f"{_cell(None if r['noise_free_weeks'] is None else round(r['noise_free_weeks'], 1))} | "
            f"{r['null_false']} | {r['seconds']} |"
        )
    if isinstance(year, int):
        last = int(p["months_judged"] or 11)
        days = [(month, day) for month in range(1, 7) for day in (1, 15)]
        floors = {
            label: [
                noise_free_weeks(datetime(year, month, day, tzinfo=timezone.utc), year, last, detector_of(threshold))
                for month, day in days
            ]
            for label, threshold in (("both tests", RUN_RATE_THRESHOLD), ("year to date alone", None))
        }
        lines += [
            "",
            f"Noise-free first `behind` by the day the drop starts (judged through {month_name[last]} {year}; the",
            "simulator's seasonality as the index, quota = expected sales, the default settings):",
            "",
            "| drop from | " + " | ".join(f"{year}-{m:02d}-{d:02d}" for m, d in days) + " |",
            "| --- | " + " | ".join("---" for _ in days) + " |",
        ]
        for label, weeks in floors.items():
            lines.append(f"| {label} | " + " | ".join("never" if w is None else f"{w:.1f}" for w in weeks) + " |")
    lines += [
        "",
        "Ablation, the detector alone on the same runs' monthly sales per rep (no planner): the simulator's",
        "true seasonality as the index against a straight line (months / 12), and the year-to-date test",
        "alone (the detector before the run-rate test).",
        "",
        "| detector | false signals per 100 rep-years (null) | drop found | median weeks |",
        "| --- | --- | --- | --- |",
    ]
    for name, label in (
        ("seasonal", "both tests, true seasonal index"),
        ("straight_line", "both tests, straight line"),
        ("year_to_date_only", "year to date alone, true seasonal index"),
    ):
        a = s.get(f"ablation_{name}")
        if a is None:
            continue
        lines.append(
            f"| {label} | {_cell(a['null_false_per_100_rep_years'])} | {_cell(a['drop_detection_rate'])} | "
            f"{_cell(a['drop_median_weeks'])} |"
        )
    curves = results.get("curves") or []
    if curves:
        c0 = curves[0]
        lines += [
            "",
            "## Noise and the operating curve by territory size",
            "",
            f"The detector alone on monthly sales per rep (no planner; the `direct` path: the simulator's orders, "
            f"{c0['seeds']} companies of {c0['reps']} reps per size, seeds from {p['seed_list'][0]}), the true "
            "seasonal index, each rep's quota its sales of the year before. Noise: the standard deviation, over "
            "reps and the quota year's months, of a month's sales over (last year's sales x the true seasonal "
            "share of the month); of its log (what the run-rate test divides by, used as the noise setting for "
            "that size's curve); and of the same ratio of order counts. Null: no drop, every `behind` or "
            "`ahead` is false. Drops: every rep loses 20 % of its orders from its own day, spread over January "
            f"to June ({c0['reps']} x {c0['seeds']} drops per size); weeks to the first `behind` (judged "
            "monthly), the share found within 6 weeks of all drops, and the noise-free median (monthly "
            "judgement alone).",
            "",
            "| accounts per rep (orders a month) | noise: ratio / log / counts |",
            "| --- | --- |",
        ]
        for c in curves:
            lines.append(
                f"| {c['accounts_per_rep']} ({c['orders_per_rep_month']:.0f}) | {c['noise_ratio_std']} / "
                f"{c['noise_log_std']} / {c['noise_count_ratio_std']} |"
            )
        lines += [
            "",
            "| accounts per rep | run-rate threshold | false per 100 rep-years | reps flagged | drops found "
            "| median weeks | within 6 weeks | noise-free median weeks |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in curves:
            for row in c["rows"]:
                h = row["run_rate_threshold"]
                lines.append(
                    f"| {c['accounts_per_rep']} | {'off (year to date alone)' if h is None else h} | "
                    f"{row['null_false_per_100_rep_years']} | {row['null_reps_flagged_share']} | "
                    f"{row['drop_detection_rate']} | {_cell(row['drop_median_weeks'])} | "
                    f"{row['drop_within_target_rate']} | {_cell(row['noise_free_median_weeks'])} |"
                )
    lines += ["", *VERDICT.format(**_verdict_figures(results)).strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def _verdict_figures(results: dict[str, Any]) -> dict[str, Any]:
    s, curves = results["summary"], results.get("curves") or []
    small = next((c for c in curves if c["accounts_per_rep"] == 250), curves[0] if curves else None)

    def row(curve, threshold):
        return next((r for r in curve["rows"] if r["run_rate_threshold"] == threshold), {}) if curve else {}

    sizes = []
    for c in curves:
        # The lowest threshold that adds no false signal to the year to date's alone.
        base = row(c, None).get("null_false_per_100_rep_years", 0.0)
        fit = [
            r for r in c["rows"] if r["run_rate_threshold"] is not None and r["null_false_per_100_rep_years"] <= base
        ]
        if fit:
            r = min(fit, key=lambda r: r["run_rate_threshold"])
            sizes.append(
                f"{c['accounts_per_rep']} accounts per rep (noise {c['noise_log_std']}): threshold "
                f"{r['run_rate_threshold']}, median {_cell(r['drop_median_weeks'])} weeks, "
                f"{r['drop_within_target_rate']:.0%} of drops within 6 weeks"
            )
    ablation = s.get("ablation_straight_line", {})
    return {
        "met": "Met" if s["target_met"] else "Not met",
        "median": _cell(s["drop_median_weeks"]),
        "found": s["drop_found"],
        "runs": s["runs"],
        "false": _cell(s["null_false_per_100_rep_years"]),
        "noise": _cell(small["noise_log_std"] if small else None),
        "orders": _cell(round(small["orders_per_rep_month"]) if small else None),
        "sigma": _cell(round(abs(np.log(1 - DROP)) / small["noise_log_std"], 1) if small else None),
        "h1_false": _cell(row(small, 1.0).get("null_false_per_100_rep_years")),
        "h1_weeks": _cell(row(small, 1.0).get("drop_median_weeks")),
        "h4_weeks": _cell(row(small, 4.0).get("drop_median_weeks")),
        "h4_found": _cell(row(small, 4.0).get("drop_detection_rate")),
        "ytd_found": _cell(row(small, None).get("drop_detection_rate")),
        "ytd_false": _cell(row(small, None).get("null_false_per_100_rep_years")),
        "sizes": "; ".join(sizes) or "none measured",
        "straight_false": _cell(ablation.get("null_false_per_100_rep_years")),
    }


VERDICT = """
## Is the 6-week target met?

{met} on the planner path at the simulator's territory size (250 accounts per rep): the drop
was found in {found} of {runs} runs, median {median} weeks, with {false} false signals per 100
rep-years in the null runs (both tests together).

Why not: a rep of 250 accounts sells some {orders} orders a month, and a month's sales against
its expected vary by {noise} (log scale; order values vary with CV 1.1, so the noise is well above
the order counts' alone). A 20 % drop is {sigma} of those a month. A test judged once a month
needs several months of such evidence to tell it from noise: at a run-rate threshold low enough
to answer at the first month-end or two (1 noise unit: median {h1_weeks} weeks) it flags reps
in null runs {h1_false} times per 100 rep-years; at the default threshold (4) it adds no false
signal to the year to date's own ({ytd_false} per 100 rep-years on the curve), finds {h4_found}
of the drops by November (the year to date alone: {ytd_found}), median {h4_weeks} weeks. And
monthly judgement alone puts a floor of about 5 to 6 weeks under any test (the noise-free
column at threshold 1: a drop is seen at the month-end after it, or the one after that). So at
this territory size 6 weeks with no false signals is out of reach for any monthly test; the
run-rate test's gain is finding drops after spring at all, in about a quarter of a year.

By territory size, the lowest threshold that adds no false signal to the year to date's:
{sizes}. The median reaches 6 weeks from about 2000 to 4000 accounts per rep (the noise falls
with the square root of a territory's orders), and even then monthly judgement leaves a share
of drops beyond 6 weeks; a weekly judgement would need per-rep daily sales in the planner.

The noise setting (`run_rate_noise`, default 0.12) should match the territory size: the measured
noise above, or about sqrt((1 + CV^2) / orders a month) plus the seasonal index's error. A year's
few months cannot estimate it honestly (two to eleven months, and a drop inflates the very
estimate that should find it), so it is a setting rather than fitted per rep. The run-rate test
runs only with a seasonal index: against a straight line every busy or slow month of a seasonal
business reads as a change ({straight_false} false signals per 100 rep-years in the straight-line
ablation, which now has the year to date alone).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=1001)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument(
        "--months", type=int, default=24, help="months of events from 2024-01 (the quota year is the second)"
    )
    parser.add_argument("--quota", choices=("previous_year", "expected"), default="previous_year")
    parser.add_argument(
        "--warmup-days", type=int, default=None, help="TERRITORY_WARMUP_DAYS for the runs (default: the setting's)"
    )
    parser.add_argument("--solver-time-limit-s", type=float, default=5.0)
    parser.add_argument(
        "--potential", choices=("model", "trailing"), default="model", help="TERRITORY_POTENTIAL for the runs"
    )
    parser.add_argument("--curve-seeds", type=int, default=8, help="companies per size of the operating curve")
    parser.add_argument(
        "--curve-accounts",
        default=",".join(str(n) for n in CURVE_ACCOUNTS),
        help="territory sizes of the operating curve (accounts of the company, comma separated; 0: none)",
    )
    parser.add_argument("--out", type=Path, help="write the JSON and the page here instead (a smoke run)")
    parser.add_argument("--render-only", action="store_true", help="only the page, from the JSON kept")
    args = parser.parse_args(argv)
    results_path = args.out / "quota_pace.json" if args.out else RESULTS
    section_path = args.out / "quota_pace.md" if args.out else SECTION
    if args.render_only:
        section_path.write_text(markdown(json.loads(results_path.read_text(encoding="utf-8"))), encoding="utf-8")
        return 0
    changes: dict[str, Any] = {
        "solver_time_limit_s": args.solver_time_limit_s,
        "rebalance_cooldown_s": 1e9,
        "potential": args.potential,
    }
    if args.warmup_days is not None:
        changes["warmup_days"] = args.warmup_days
    settings = Settings().with_(**changes)
    started = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    rows = [run_seed(seed, index, len(seeds), args, settings) for index, seed in enumerate(seeds)]
    months_judged = rows[0]["months_judged"] if rows else 11
    curve_seeds = list(range(args.first_seed, args.first_seed + args.curve_seeds))
    sizes = [int(n) for n in args.curve_accounts.split(",") if int(n) > 0]
    curves = [operating_curve(curve_seeds, n, args.reps, args.months, months_judged) for n in sizes]
    results = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "parameters": {
            "seeds": len(seeds),
            "seed_list": seeds,
            "accounts": args.accounts,
            "reps": args.reps,
            "months": args.months,
            "quota": args.quota,
            "drop": DROP,
            "months_judged": rows[0]["months_judged"] if rows else None,
            "settings": {
                "warmup_days": settings.warmup_days,
                "potential": settings.potential,
                "behind": BEHIND,
                "ahead": AHEAD,
                "hysteresis": HYSTERESIS,
                "run_rate_threshold": RUN_RATE_THRESHOLD,
                "run_rate_noise": RUN_RATE_NOISE,
                "run_rate_shift": RUN_RATE_SHIFT,
            },
            "curve_thresholds": list(CURVE_THRESHOLDS),
        },
        "summary": summarise(rows, args.reps),
        "curves": curves,
        "runs": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(results, indent=1)
    print(json.dumps(results["summary"], indent=1))
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(text + "\n", encoding="utf-8")
    section_path.parent.mkdir(parents=True, exist_ok=True)
    section_path.write_text(markdown(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
