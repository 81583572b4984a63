"""The planner catching up on a company's history, in-process, against a baseline code tree.

    .venv/bin/python bench/planner_catch_up.py [--accounts 100000] [--baseline REF]

The load benchmark's memory step (one `account.upserted` and two orders per account, the
orders spread over 330 days) goes through the intake once; the planner then takes its
snapshots as a worker does: batches of `--batch` snapshots, each followed by at most
`--slice` seconds of judging day by day, then day by day to the end. The streams count as
read to their end once no later snapshot comes from them (the worker's progress report), and
a stream counts from its first snapshot on.
The checkpoint table counts the bytes written to it, as a changelog would carry them.

With `--baseline REF` the same snapshots go through the planner of git revision REF (a
temporary worktree) in the same run, at the same time on the other core: the ratio of the
two is the figure, not the seconds. Prints JSON, keeps bench/results/planner_catch_up.json,
writes docs/benchmarks/planner_catch_up.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "planner_catch_up.json"
SECTION = ROOT / "docs" / "benchmarks" / "planner_catch_up.md"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def snapshots_of_company(accounts: int, path: Path) -> int:
    """Run the synthetic company through the intake; write its state records as JSON lines."""
    sys.path.insert(0, str(ROOT))
    from bench.load import account_events, rep_upserts
    from core.clock import SYSTEM_CLOCK
    from core.settings import Settings
    from monitor.intake import Intake, IntakeRules
    from simulator import generate_company

    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    company = generate_company(seed=3, n_accounts=200)
    reps = rep_upserts(company.reps, start)
    messages = reps + account_events(0, accounts, 2, [rep.rep_id for rep in company.reps], start)
    written = 0
    with path.open("w", encoding="utf-8") as out:

        async def collect(key: str, value: dict[str, Any]) -> None:
            nonlocal written
            out.write(json.dumps(value) + "\n")
            written += 1

        async def ignore(key: str, value: dict[str, Any]) -> None:
            return None

        settings = Settings()
        intake = Intake(
            accounts={},
            reps={},
            stream_times={},
            send_state=collect,
            send_deadletter=ignore,
            on_outcome=lambda *_: None,
            rules=IntakeRules.from_settings(settings),
            clock=SYSTEM_CLOCK,
        )
        loop = asyncio.new_event_loop()
        for offset, (topic, key, value) in enumerate(messages):
            loop.run_until_complete(intake.handle(topic=topic, partition=0, offset=offset, key=key, value=value))
            if offset % 50_000 == 0:
                log(f"intake: {offset:,} of {len(messages):,} events")
        loop.close()
    return written


class CountingTable(dict):
    """A checkpoint table that counts what a changelog would carry."""

    def __init__(self) -> None:
        super().__init__()
        self.records = self.bytes = self.deleted = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.records += 1
        self.bytes += len(key) + len(value if isinstance(value, str) else json.dumps(value))
        super().__setitem__(key, value)

    def pop(self, key: str, *default: Any) -> Any:
        self.deleted += key in self
        return super().pop(key, *default)


def drive(snapshot_file: Path, batch: int, slice_s: float) -> dict[str, Any]:
    """The planner of the code tree on sys.path, fed like a worker's (see the module's doc)."""
    from core.settings import Settings
    from planner.session import PlanningSession

    snapshots = [json.loads(line) for line in snapshot_file.open(encoding="utf-8")]
    last_of_source: dict[str, int] = {}
    for index, snapshot in enumerate(snapshots):
        if snapshot.get("source"):
            last_of_source[snapshot["source"]] = index
    meta = CountingTable()
    session = PlanningSession(Settings(), accounts={}, reps={}, meta=meta)
    judgements = 0
    judging = checkpointing = 0.0
    started = time.perf_counter()

    def judge_and_checkpoint() -> None:
        nonlocal judgements, judging, checkpointing
        t0 = time.perf_counter()
        session.judge()
        t1 = time.perf_counter()
        session.checkpoint()
        judging, checkpointing = judging + t1 - t0, checkpointing + time.perf_counter() - t1
        judgements += 1

    delivered: set[str] = set()  # a stream the planner has not heard of holds nothing back
    for first in range(0, len(snapshots), batch):
        session.apply(snapshots[first : first + batch])
        delivered |= {snapshot["source"] for snapshot in snapshots[first : first + batch] if snapshot.get("source")}
        for source in sorted(delivered):
            session.watermark.caught_up(source, last_of_source[source] < first + batch)
        deadline = time.perf_counter() + slice_s
        while session.due:
            judge_and_checkpoint()
            if not session.behind or time.perf_counter() > deadline:
                break
        if first // batch % 10 == 0:
            log(f"planner: {first + batch:,} of {len(snapshots):,} snapshots, judged through {session.judged_at}")
    while session.due:
        judge_and_checkpoint()
        if not session.behind:
            break
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "snapshots": len(snapshots),
        "snapshots_per_s": round(len(snapshots) / seconds),
        "judgements": judgements,
        "judging_s": round(judging, 1),
        "checkpoint_s": round(checkpointing, 1),
        "checkpoint_records": meta.records,
        "checkpoint_mib": round(meta.bytes / 2**20, 1),
        "judged_through": session.judged_at.isoformat() if session.judged_at else None,
    }


def run_tree(tree: Path, snapshot_file: Path, batch: int, slice_s: float) -> subprocess.Popen:
    command = [sys.executable, str(Path(__file__).resolve()), "--drive", str(snapshot_file), "--tree", str(tree)]
    command += ["--batch", str(batch), "--slice", str(slice_s)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tree)


def write_report(result: dict[str, Any]) -> None:
    current, base = result["current"], result.get("baseline")
    lines = [
        "# Planner catch-up",
        "",
        f"Generated by `bench/planner_catch_up.py` on {result['generated']} ({result['machine']}). "
        f"Command: `{result['command']}`. Raw numbers: `bench/results/planner_catch_up.json`.",
        "",
        f"{result['accounts']:,} synthetic accounts (one profile and two orders each, the orders spread over "
        f"330 days) go through the intake once; the planner takes the {current['snapshots']:,} state records "
        f"in batches of {result['batch']:,}, judging day by day for at most {result['slice_s']} s after each "
        "batch, as a worker does, then to the end. In-process: no broker, the checkpoint table is a dict that "
        "counts the bytes a changelog would carry."
        + (
            f" The baseline is the planner of `{result['baseline_ref']}`, run on the same records at the same "
            "time on the other core."
            if base
            else ""
        ),
        "",
        "| planner | seconds | records/s | judgements | judging (s) | checkpoint (s) | checkpoint records | "
        "checkpoint MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, run in (("this code", current), (f"baseline `{result.get('baseline_ref')}`", base)):
        if run:
            lines.append(
                f"| {name} | {run['seconds']} | {run['snapshots_per_s']:,} | {run['judgements']} | "
                f"{run['judging_s']} | {run['checkpoint_s']} | {run['checkpoint_records']:,} | "
                f"{run['checkpoint_mib']} |"
            )
    if base:
        lines += [
            "",
            f"Speed-up over the baseline: {result['speedup']}x in all; checkpoint time "
            f"{result['checkpoint_speedup']}x; checkpoint bytes {result['checkpoint_bytes_ratio']}x fewer.",
        ]
    SECTION.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=20_000, help="snapshots per planner batch (the load bench's)")
    parser.add_argument("--slice", type=float, default=1.0, help="seconds of judging after each batch")
    parser.add_argument("--baseline", help="git revision whose planner is the baseline")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--drive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:  # a child: the planner of --tree on the records of --drive
        sys.path.insert(0, str(args.tree))
        print(json.dumps(drive(args.drive, args.batch, args.slice)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="territory-catch-up-"))
    snapshot_file = workdir / "snapshots.jsonl"
    log(f"intake: {args.accounts:,} accounts")
    snapshots_of_company(args.accounts, snapshot_file)
    base_tree = None
    try:
        children = {"current": run_tree(ROOT, snapshot_file, args.batch, args.slice)}
        if args.baseline:
            base_tree = workdir / "baseline"
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(base_tree), args.baseline], cwd=ROOT, check=True
            )
            children["baseline"] = run_tree(base_tree, snapshot_file, args.batch, args.slice)
        runs = {}
        for name, child in children.items():
            out, _ = child.communicate()
            if child.returncode:
                raise SystemExit(f"the {name} planner failed ({child.returncode})")
            runs[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        for child in locals().get("children", {}).values():
            if child.poll() is None:
                child.kill()
        if base_tree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    result: dict[str, Any] = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python bench/planner_catch_up.py " + " ".join(sys.argv[1:]),
        "accounts": args.accounts,
        "batch": args.batch,
        "slice_s": args.slice,
        "baseline_ref": args.baseline,
        **runs,
    }
    if "baseline" in runs:
        current, base = runs["current"], runs["baseline"]
        result["speedup"] = round(base["seconds"] / current["seconds"], 2)
        result["checkpoint_speedup"] = round(base["checkpoint_s"] / max(current["checkpoint_s"], 0.1), 1)
        result["checkpoint_bytes_ratio"] = round(base["checkpoint_mib"] / max(current["checkpoint_mib"], 0.1), 1)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_report(result)
        subprocess.run([sys.executable, str(ROOT / "bench" / "report.py")], check=False)


if __name__ == "__main__":
    main()
