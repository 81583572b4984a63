"""Profile one worker under load with py-spy (development aid for bench/load.py).

    .venv/bin/python bench/load_profile.py [--events N] [--seconds S] [--out FILE]

Pre-produces N simulated events on a fresh embedded broker, starts one worker and
records it with `py-spy record` (speedscope JSON or flame SVG by the file suffix)
while it works through them; prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import INTAKE_METRIC, PARTITIONS, Worker, produce_raw, simulated_events  # noqa: E402
from territory.broker import EmbeddedBroker  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seconds", type=int, default=25)
    parser.add_argument(
        "--after-intake",
        action="store_true",
        help="record once the intake has read everything (the planner's catch-up)",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "load-profile.txt"))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="territory-profile-"))
    messages = simulated_events(args.events)
    with EmbeddedBroker(partitions=PARTITIONS) as broker:
        asyncio.run(produce_raw(broker.bootstrap_servers, messages))
        worker = Worker(broker, workdir, "load-profile", 0)
        try:
            while worker.metric(INTAKE_METRIC) < (len(messages) if args.after_intake else 1):
                time.sleep(0.2)
            raw = workdir / "profile.txt"
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(worker.process.pid),
                    "--duration",
                    str(args.seconds),
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
            print(f"intake events after profiling: {worker.metric(INTAKE_METRIC):.0f}", file=sys.stderr)
        finally:
            worker.stop()
    own, total = collections.Counter(), collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"samples: {samples}", "", "own time:"]
    lines += [f"{100 * n / samples:5.1f}%  {frame}" for frame, n in own.most_common(25)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / samples:5.1f}%  {frame}" for frame, n in total.most_common(45)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
