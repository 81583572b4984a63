"""A sample weekly review of a simulated company, end to end without Kafka: simulator
events folded into account state, judged by the planner, solved by the rebalancer and
rendered by the alert stage's report. For the README's pictures and the tests.

    python -m territory.sample_report --sample OUT.html [--seed 7] [--reps 8] [--accounts 400]
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from alerts.report import build_weekly_report, iso_week
from core.records import Proposal


def sample_proposal(
    *,
    seed: int = 7,
    n_reps: int = 8,
    n_accounts: int = 400,
    months: int = 20,
    potential: str = "model",
    time_limit_s: float = 5.0,
) -> dict[str, Any]:
    """A real proposal for a simulated company: simulator events folded into account
    state, judged by the planner (`potential`: "model", the learned potential as in
    production, or "trailing" sales), solved by the rebalancer, with its
    moves-vs-imbalance curve. For the sample report and the tests.

    A market shock in one region after `months` - 8 months unbalances the territories;
    raises RuntimeError if the planner asks for no rebalance (try another seed).
    """
    from core.contract import validate_envelope
    from planner.planner import Planner
    from monitor.state import AccountState, RepState, apply_account_event
    from rebalancer import minimal_moves, trade_off_curve
    from simulator import default_shock, generate_company, generate_events
    from core.clock import ManualClock
    from core.settings import Settings

    company = generate_company(seed=seed, n_reps=n_reps, n_accounts=n_accounts)
    shock = default_shock(company, after_months=max(1, months - 8))
    states: dict[str, AccountState] = {}
    reps: dict[str, RepState] = {}
    last = company.start
    for topic, key, envelope in generate_events(company, months=months, shock=shock):
        event = validate_envelope(envelope, topic=topic, key=key)
        if event.type == "rep.upserted":
            data = event.data
            reps[data["rep_id"]] = RepState(
                data["rep_id"],
                data["home_lat"],
                data["home_lon"],
                data["capacity_fte"],
                data["active"],
                data["max_travel_km"],
            )
        else:
            states[event.subject_id] = apply_account_event(states.get(event.subject_id), event)
        last = max(last, event.occurred_at)
    clock = ManualClock(last + timedelta(hours=1))  # the proposal is stamped in event time
    planner = Planner(Settings(potential=potential, warmup_days=180), clock=clock)
    evaluation = planner.evaluate(
        list(states.values()), list(reps.values()), watermark=last, first_event_at=company.start
    )
    request = evaluation.rebalance
    if request is None:
        raise RuntimeError(
            f"seed {seed}: the planner found nothing to rebalance (imbalance "
            f"{evaluation.imbalance:.1%}); try another seed"
        )
    result = minimal_moves(
        request.accounts, request.reps, tolerance=request.tolerance, time_limit_s=time_limit_s, num_workers=1
    )
    curve = [
        {"moves": point.moves, "imbalance": round(point.imbalance, 5)}
        for point in trade_off_curve(
            request.accounts, request.reps, tolerance=request.tolerance, time_limit_s=time_limit_s, num_workers=1
        )
    ]
    return planner.proposal(request, result, last).with_(curve=tuple(curve)).to_json()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m territory.sample_report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sample",
        type=Path,
        required=True,
        metavar="OUT.html",
        help="write a sample weekly report of a simulated company to this file",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--review-url", default=None, help="review page link, may contain {proposal_id}")
    args = parser.parse_args(argv)
    proposal = sample_proposal(seed=args.seed, n_reps=args.reps, n_accounts=args.accounts)
    now = datetime.now(timezone.utc)
    report = build_weekly_report(
        [Proposal.from_json(proposal)], week=iso_week(now), generated_at=now, review_url=args.review_url
    )
    args.sample.parent.mkdir(parents=True, exist_ok=True)
    args.sample.write_text(report.html, encoding="utf-8")
    print(f"{report.subject}: wrote {args.sample} ({len(report.html) / 1024:,.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
