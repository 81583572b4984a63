"""Assemble docs/BENCHMARKS.md from the sections the benchmark scripts write.

Each script in bench/ prints its figures as JSON, keeps them in bench/results/NAME.json
and writes its own section to docs/benchmarks/NAME.md; this joins the sections.

    python bench/detectors.py && python bench/potential.py && python bench/report.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sections = sorted((ROOT / "docs" / "benchmarks").glob("*.md"))
    header = (
        "# Benchmarks\n\n"
        "Measured on this project's machines (2 cores, shared and noisy: ratios are against a baseline\n"
        "measured in the same run). Each section is written by its script in `bench/`; raw figures are in\n"
        "`bench/results/`. Regenerate with `python bench/<name>.py` then `python bench/report.py`.\n\n"
    )
    body = "\n\n".join(path.read_text(encoding="utf-8").strip() for path in sections)
    (ROOT / "docs" / "BENCHMARKS.md").write_text(header + body + "\n", encoding="utf-8")
    print(f"docs/BENCHMARKS.md: {len(sections)} sections ({', '.join(p.stem for p in sections)})")


if __name__ == "__main__":
    main()
