"""Record the file behind tests/test_backtest_ids.py: a simulated company of 500 accounts over
14 months with a regional demand drop from the 8th month and a rep (R07) leaving in December
2024, and the signal and proposal ids the backtest finds in it.

Run it only to re-record on purpose (a change of behaviour), from the repository root:

    python tests/data/backtest/record.py
"""

import gzip
import json
from pathlib import Path

from core.settings import Settings
from simulator import default_shock, generate_company, generate_events
from territory.backtest import read_events, run_backtest

HERE = Path(__file__).parent


def main() -> None:
    company = generate_company(seed=11, n_accounts=500)
    shock = default_shock(company, after_months=7)
    events = [envelope for _, _, envelope in generate_events(company, months=14, shock=shock, seed=11)]
    home = next(e["data"] for e in events if e["type"] == "rep.upserted" and e["data"]["rep_id"] == "R07")
    events.append(
        {
            "event_id": "rep-r07-leaves",
            "type": "rep.upserted",
            "occurred_at": "2024-12-02T09:00:00+00:00",
            "source": "simulator",
            "data": {**home, "active": False},
        }
    )
    events.sort(key=lambda envelope: envelope["occurred_at"])
    lines = [json.dumps(envelope, separators=(",", ":"), ensure_ascii=False) + "\n" for envelope in events]
    with gzip.GzipFile(HERE / "events.jsonl.gz", "wb", mtime=0) as file:
        file.write("".join(lines).encode())
    plain = HERE / "events.jsonl"
    plain.write_text("".join(lines), encoding="utf-8")
    result = run_backtest(read_events(plain), Settings())
    plain.unlink()
    (HERE / "ids.json").write_text(
        json.dumps(
            {
                "signals": [f"{s['signal_id']} {s['kind']}:{s['state']}" for s in result.signals],
                "proposals": [p["proposal_id"] for p in result.proposals],
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(result.summary()["signals"], len(result.proposals), "proposals")


# Only as a script: pytest imports every module under tests/ (doctests), and must not re-record.
if __name__ == "__main__":
    main()
