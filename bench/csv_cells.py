"""Cell parsing is linear in the cell's length: the time to refuse a long
number-like or e-mail-like cell grows ~10x from 10 KB to 100 KB, not ~100x.

    .venv/bin/python bench/csv_cells.py

Prints seconds per size and the 100 KB / 10 KB ratio per parser; exits 1 when a ratio
exceeds RATIO_LIMIT (linear: about 10; the old `\\d+\\.?\\d*` regex: about 100).
"""

from __future__ import annotations

import sys
import time

from connectors.hubspot import email
from connectors.mapping import Context
from connectors.values import number

RATIO_LIMIT = 30.0
SIZES = (10_000, 100_000)

CASES = {
    # Digits then a non-digit: the old number regex tried every split of the digits.
    "number": (lambda n: "1" * n + "x", lambda text: number(text)),
    # Dots then whitespace: the old e-mail regex tried every dot as the domain's dot.
    "email": (lambda n: "a@" + "." * n + " ", lambda text: email(text, Context())),
}


def seconds(parse, text: str) -> float:
    start = time.perf_counter()
    try:
        parse(text)
    except ValueError:
        pass
    return time.perf_counter() - start


def main() -> int:
    worst = 0.0
    for name, (make, parse) in CASES.items():
        timings = [seconds(parse, make(size)) for size in SIZES]
        ratio = timings[1] / max(timings[0], 1e-6)
        worst = max(worst, ratio)
        print(
            f"{name:7s} "
            + "  ".join(f"{size // 1000} KB {t:.4f} s" for size, t in zip(SIZES, timings))
            + f"  ratio {ratio:.1f}"
        )
    return 0 if worst <= RATIO_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
