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

(a) Drop: from a day spread over 2025-01-01..2025-06-30 (stratified by seed), one seeded rep's
    territory loses 20 % of its demand: each order of that rep's accounts after the day is
    dropped with probability 0.2 (a thinned Poisson process, as the simulator makes its
    regional shocks). Measured: weeks from the drop to that rep's first quota_pace `behind`
    (its `detected_at`, the moment judged; the target is <= 6 weeks), whether it is found by
    the year's last judgement, and the other reps' signals in the same runs. The "noise-free"
    column is when the first `behind` would come without any noise: the pace is cumulative
    (sales to date over expected to date), so a 20 % drop pulls it below 0.85 only once the
    months after the drop weigh 3/4 of the year so far.
(b) Null: the same seeds without the drop: every quota_pace `behind` or `ahead` is false.
    Counted per 100 rep-years (each rep judged from March to December 2025, on complete
    months through November: the event stream ends with 2025).

An ablation without the planner feeds the same runs' monthly sales per rep straight into
`QuotaPaceDetector`, once with the simulator's true seasonality as the index and once with a
straight line (months / 12): what the seasonal index is worth against false signals.

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
from simulator import generate_company, generate_events  # noqa: E402
from simulator.truth import SEASONALITY  # noqa: E402
from territory.backtest import run_backtest  # noqa: E402

DROP = 0.2
TARGET_WEEKS = 6.0
DROP_WINDOW_DAYS = 181  # drops start over the first half of the quota year
_DEFAULTS = Settings()
BEHIND, AHEAD, HYSTERESIS = _DEFAULTS.quota_pace_behind, _DEFAULTS.quota_pace_ahead, _DEFAULTS.hysteresis
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
                "data": {
                    "rep_id": rep.rep_id,
                    "home_lat": rep.home_lat,
                    "home_lon": rep.home_lon,
                    "capacity_fte": rep.capacity_fte,
                    "active": True,
                    "max_travel_km": rep.max_travel_km,
                    "quota": round(quotas[rep.rep_id], 2),
                },
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


def direct(
    sales: dict[str, dict[str, float]], quotas: dict[str, float], year: int, last_month: int, seasonal
) -> list[tuple[str, str, datetime]]:
    """The detector alone on the monthly sales, judged at months 2..`last_month` of `year`:
    (rep, state, moment judged) of every finding."""
    detector = QuotaPaceDetector(BEHIND, AHEAD, HYSTERESIS)
    found = []
    for months in range(1, last_month + 1):
        moment = datetime(year + months // 12, months % 12 + 1, 1, tzinfo=timezone.utc)
        per_rep = {
            rep: tuple(sales.get(rep, {}).get(f"{year:04d}-{m:02d}", 0.0) for m in range(1, months + 1))
            for rep in quotas
        }
        for finding in detector.update(QuotaYear(year, months, per_rep, quotas, seasonal), moment).findings:
            found.append((finding.rep_id, finding.state, moment))
    return found


def noise_free_weeks(start: datetime, year: int, last_month: int) -> float | None:
    """Weeks from `start` to the first monthly judgement whose pace, without noise, is below
    BEHIND (the simulator's seasonality as the index, quota = expected sales)."""
    expected = lost = 0.0
    for month in range(1, last_month + 1):
        first = datetime(year, month, 1, tzinfo=timezone.utc)
        days = monthrange(year, month)[1]
        after = min(max((first + timedelta(days=days) - start).total_seconds() / 86400 / days, 0.0), 1.0)
        expected += SEASONALITY[month - 1]
        lost += DROP * SEASONALITY[month - 1] * after
        judged = first + timedelta(days=days)
        if month >= 2 and 1.0 - lost / expected < BEHIND and judged > start:
            return (judged - start).days / 7.0
    return None


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
        s["detected_at"]
        for s in drop_signals
        if s["subject"]["id"] == rep and s["state"] == "behind" and datetime.fromisoformat(s["detected_at"]) >= start
    )
    found_at = datetime.fromisoformat(behind[0]) if behind else None
    drop_sales = monthly_sales(dropped, owner)
    ablation = {}
    for name, seasonal in (("seasonal", SEASONALITY), ("straight_line", None)):
        null_found = direct(sales, quotas, year, last_month, seasonal)
        drop_found = direct(drop_sales, quotas, year, last_month, seasonal)
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
        "noise_free_weeks": noise_free_weeks(start, year, last_month),
        "drop_other_signals": sum(1 for s in drop_signals if s["subject"]["id"] != rep and s["state"] != "cleared"),
        "null_false": sum(1 for s in null_signals if s["state"] in ("behind", "ahead")),
        "null_false_by_state": {
            state: sum(1 for s in null_signals if s["state"] == state) for state in ("behind", "ahead", "cleared")
        },
        "null_reps_flagged": len({s["subject"]["id"] for s in null_signals if s["state"] in ("behind", "ahead")}),
        "seasonal_basis": sorted({str(s["evidence"].get("seasonal_basis")) for s in null_signals + drop_signals}),
        "rep_pace_at_drop_rep": [
            (s["detected_at"][:10], s["state"], s["evidence"].get("pace"))
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
    for name in ("seasonal", "straight_line"):
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
        f"hysteresis {p['settings']['hysteresis']}). Every rep's quota for {year} is "
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
        f"| noise-free first `behind`, median weeks | {_cell(s['noise_free_median_weeks'])} |",
        f"| false signals in null runs (`behind` or `ahead`) per 100 rep-years | {_cell(s['null_false_per_100_rep_years'])} |",
        f"| share of reps flagged at least once in null runs | {_cell(s['null_reps_flagged_share'])} |",
        f"| other reps' signals in drop runs per 100 rep-years | {_cell(s['drop_runs_other_signals_per_100_rep_years'])} |",
        "",
        f"Target (<= {TARGET_WEEKS:g} weeks from the drop to `behind`): {'met' if s['target_met'] else 'missed'}.",
        "",
        "Per run:",
        "",
        "| seed | rep | drop from | first `behind` | weeks | noise-free weeks | null false signals | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['seed']} | {r['drop_rep']} | {r['drop_start']} | {_cell(r['drop_found_at'])} | "
            f"{_cell(None if r['drop_weeks'] is None else round(r['drop_weeks'], 1))} | "
            f"{_cell(None if r['noise_free_weeks'] is None else round(r['noise_free_weeks'], 1))} | "
            f"{r['null_false']} | {r['seconds']} |"
        )
    if isinstance(year, int):
        last = int(p["months_judged"] or 11)
        floor = [
            (
                f"{year}-{month:02d}-{day:02d}",
                noise_free_weeks(datetime(year, month, day, tzinfo=timezone.utc), year, last),
            )
            for month in range(1, 7)
            for day in (1, 15)
        ]
        lines += [
            "",
            f"Noise-free first `behind` by the day the drop starts (judged through {month_name[last]} {year}; the",
            "simulator's seasonality as the index, quota = expected sales):",
            "",
            "| drop from | " + " | ".join(day for day, _ in floor) + " |",
            "| --- | " + " | ".join("---" for _ in floor) + " |",
            "| weeks | " + " | ".join("never" if weeks is None else f"{weeks:.1f}" for _, weeks in floor) + " |",
        ]
    lines += [
        "",
        "Ablation, the detector alone on the same runs' monthly sales per rep (no planner): the simulator's",
        "true seasonality as the index against a straight line (months / 12).",
        "",
        "| expected to date | false signals per 100 rep-years (null) | drop found | median weeks |",
        "| --- | --- | --- | --- |",
    ]
    for name, label in (("seasonal", "true seasonal index"), ("straight_line", "straight line")):
        a = s[f"ablation_{name}"]
        lines.append(
            f"| {label} | {_cell(a['null_false_per_100_rep_years'])} | {_cell(a['drop_detection_rate'])} | "
            f"{_cell(a['drop_median_weeks'])} |"
        )
    lines += [
        "",
        "Reading the numbers: the pace is cumulative over the year (sales to date over expected to date),",
        "so a drop of 20 % from a day pulls it below 0.85 only once the months since the drop make about",
        "three quarters of the expected sales so far, and it is judged at a month's end. The noise-free",
        "column is that floor: it grows with how far into the year the drop starts, and a drop in spring",
        "or summer cannot be found within weeks by a year-to-date pace, whatever the noise. That is the",
        "question quota pace answers (will the rep make the quota?), not how fast a territory's demand",
        "changed: the market and local shock detectors watch the days for that. A quicker signal for a",
        "drop would need a recent-months pace (e.g. the last three months against their seasonal",
        "expectation) beside the year-to-date one.",
    ]
    return "\n".join(lines) + "\n"


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
            },
        },
        "summary": summarise(rows, args.reps),
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
