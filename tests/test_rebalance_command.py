"""`territory rebalance`: the offline command on small CSV files whose answers are known
by construction (tests/data/rebalance/).

units.csv / reps.csv: 3 reps of equal capacity, 12 units, total potential 300, so every
fair share is 100 and the ±10% band is [90, 110]. R1 holds 130 (50, 45, 25, 6, 4), R2 100,
R3 70 (35, 25, 10). R1 must lose, and R3 gain, between 20 and 40: the only single move
that does it is U03 (25) from R1 to R3, so the answer is exactly that one move. At ±2%
no single move does ([28, 32] needed) and two do (U03 with U04 or U05). Workloads are
balanced (100 each), and moving U03 (workload 25) alone breaks them, so balancing both
metrics takes 2 moves. (All checked by brute force over the 3^12 assignments.)

grid_*.csv: a 3 x 4 grid of units, R1 owning columns 0-2, R2 column 3; unit G10 (far
west) is worth 40, the others 10. Without adjacency one move (G10 to R2) balances; with
it R2's territory must stay connected, which takes 4 moves.

Every "in band" below is recomputed from the CSV files and the moves, not read from the
command's `after`.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from territory.cli import app

DATA = Path(__file__).parent / "data" / "rebalance"
UNITS, REPS = DATA / "units.csv", DATA / "reps.csv"
TIME_LIMIT = "3"

# ---------------------------------------------------------------------------- helpers


def rebalance(*args: str | Path, expect: int = 0):
    result = CliRunner().invoke(app, ["rebalance", "--time-limit", TIME_LIMIT, *map(str, args)])
    assert result.exit_code == expect, result.output
    assert "Traceback" not in result.output
    return result


def proposal(tmp_path: Path, *args: str | Path, expect: int = 0) -> dict:
    out = tmp_path / "proposal.json"
    rebalance("--out", out, *args, expect=expect)
    return json.loads(out.read_text(encoding="utf-8"))


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, table: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return path


def assignment_after(units: list[dict[str, str]], moves: list[dict]) -> dict[str, str | None]:
    assignment = {u["unit_id"]: u["rep_id"] or None for u in units}
    for move in moves:
        assert assignment[move["unit_id"]] == move["from_rep"], move
        assignment[move["unit_id"]] = move["to_rep"]
    return assignment


def in_band(
    units: list[dict[str, str]],
    capacity: dict[str, float],
    assignment: dict[str, str | None],
    tolerance: float,
    metric: str = "potential",
) -> bool:
    """Every rep's load within fair * (1 ± tolerance), fair proportional to capacity."""
    value = {u["unit_id"]: float(u.get(metric) or 0) for u in units}
    total = math.fsum(value.values())
    loads = dict.fromkeys(capacity, 0.0)
    for unit_id, rep_id in assignment.items():
        assert rep_id in capacity, f"{unit_id} left with {rep_id}"
        loads[rep_id] += value[unit_id]
    eps = 1e-9 * max(total, 1.0)
    fair = {r: total * c / math.fsum(capacity.values()) for r, c in capacity.items()}
    return all(fair[r] * (1 - tolerance) - eps <= loads[r] <= fair[r] * (1 + tolerance) + eps for r in capacity)


def capacities(path: Path = REPS) -> dict[str, float]:
    return {r["rep_id"]: float(r.get("capacity_fte") or 1.0) for r in rows(path)}


def scenario(document: dict, name: str) -> dict:
    found = [s for s in document["scenarios"] if s["scenario"] == name]
    assert len(found) == 1, [s["scenario"] for s in document["scenarios"]]
    return found[0]


def connected(members: set[str], edges: list[dict[str, str]]) -> bool:
    if not members:
        return True
    neighbours: dict[str, set[str]] = {m: set() for m in members}
    for edge in edges:
        a, b = edge["unit_a"], edge["unit_b"]
        if a in members and b in members:
            neighbours[a].add(b)
            neighbours[b].add(a)
    seen, todo = set(), [next(iter(members))]
    while todo:
        unit = todo.pop()
        if unit not in seen:
            seen.add(unit)
            todo.extend(neighbours[unit] - seen)
    return seen == members


# ---------------------------------------------------------------------------- the base case


def test_small_case_gives_the_one_minimal_move_and_a_complete_proposal(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS)

    assert document["status"] == "optimal"
    assert document["objective"] == 1 and document["bound"] == 1 and document["gap"] == 0
    assert [(m["unit_id"], m["from_rep"], m["to_rep"]) for m in document["moves"]] == [("U03", "R1", "R3")]
    move = document["moves"][0]
    assert set(move) >= {"unit_id", "from_rep", "to_rep", "potential", "workload", "distance_km", "reason"}
    assert move["potential"] == 25 and move["distance_km"] > 0
    assert document["tolerance"] == 0.10 and document["metrics"] == ["potential"]
    assert document["objective_kind"] == "moves"
    assert document["seconds"] >= 0 and "explanation" in document
    assert document["scenario"] == "base" and document["scenarios"] == []
    assert "curve" not in document
    for key in ("before", "after"):
        assert [b["rep_id"] for b in document[key]] == ["R1", "R2", "R3"]
        assert all({"potential", "share", "fair_share", "deviation"} <= set(b) for b in document[key])
    assert [b["potential"] for b in document["before"]] == [130, 100, 70]
    assert document["imbalance_before"] == pytest.approx(0.30)
    assert document["imbalance_after"] == pytest.approx(0.05)

    units = rows(UNITS)
    assert not in_band(units, capacities(), assignment_after(units, []), 0.10)
    assert in_band(units, capacities(), assignment_after(units, document["moves"]), 0.10)


def test_summary_shows_figures_and_the_moves_table():
    result = rebalance("--units", UNITS, "--reps", REPS)
    out = result.stdout
    assert "== base: 12 units, 3 reps, tolerance ±10%" in out
    assert "status     optimal" in out
    assert "objective  1  bound 1  gap 0.0%" in out
    assert "imbalance  30.0% -> 5.0%" in out
    assert "unit  from  to  potential" in out
    assert "U03   R1    R3      25.00" in out
    assert "[1/1] base: solving" in result.stderr and "[1/1] base: optimal, 1 move" in result.stderr


def test_a_locked_unit_never_moves(tmp_path):
    units = rows(UNITS)
    for unit in units:
        unit["locked"] = "true" if unit["unit_id"] == "U03" else ""
    locked = write_csv(tmp_path / "units.csv", units)

    document = proposal(tmp_path, "--units", locked, "--reps", REPS)

    assert document["status"] == "optimal"
    assert document["objective"] == 2  # the one single move is U03's
    assert "U03" not in {m["unit_id"] for m in document["moves"]}
    assert in_band(units, capacities(), assignment_after(units, document["moves"]), 0.10)


def test_an_infeasible_case_exits_1_naming_a_rep(tmp_path):
    out = tmp_path / "proposal.json"
    result = rebalance(
        "--units", DATA / "infeasible_units.csv", "--reps", DATA / "infeasible_reps.csv", "--out", out, expect=1
    )
    assert "rep R1" in result.stdout and "error: no proposal for the base case (infeasible)" in result.stderr
    document = json.loads(out.read_text())
    assert document["status"] == "infeasible" and document["moves"] == []
    assert "rep R1" in document["explanation"]


# ---------------------------------------------------------------------------- scenarios


def test_drop_rep_places_all_their_units_elsewhere_even_locked_ones(tmp_path):
    units = rows(UNITS)
    for unit in units:
        unit["locked"] = "yes" if unit["unit_id"] == "U06" else ""  # an R2 unit: its lock goes with R2
    locked = write_csv(tmp_path / "units.csv", units)

    document = proposal(tmp_path, "--units", locked, "--reps", REPS, "--drop-rep", "R2")

    assert document["objective"] == 1  # the base case is unchanged
    dropped = scenario(document, "drop R2")
    assert dropped["status"] == "optimal" and dropped["objective"] == 4
    r2_units = {u["unit_id"] for u in units if u["rep_id"] == "R2"}
    moved = {m["unit_id"]: m for m in dropped["moves"]}
    assert r2_units <= set(moved)
    assert all(moved[u]["from_rep"] == "R2" for u in r2_units)
    assert all(m["to_rep"] != "R2" for m in dropped["moves"])
    assert [b["rep_id"] for b in dropped["after"]] == ["R1", "R3"]
    remaining = {r: c for r, c in capacities().items() if r != "R2"}
    assert in_band(units, remaining, assignment_after(units, dropped["moves"]), 0.10)


def test_add_rep_gives_the_new_rep_units(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--add-rep", "R4,52.47,13.40,1.0")

    added = scenario(document, "add R4")
    assert added["status"] == "optimal"
    assert any(m["to_rep"] == "R4" for m in added["moves"])
    units = rows(UNITS)
    assert in_band(units, {**capacities(), "R4": 1.0}, assignment_after(units, added["moves"]), 0.10)


def test_compare_tolerance_is_a_scenario_with_another_move_count(tmp_path):
    out = tmp_path / "proposal.json"
    result = rebalance("--units", UNITS, "--reps", REPS, "--compare-tolerance", "0.02", "--out", out)
    document = json.loads(out.read_text())

    tight = scenario(document, "tolerance 2%")
    assert tight["tolerance"] == 0.02
    assert (document["objective"], tight["objective"]) == (1, 2)
    units = rows(UNITS)
    assert in_band(units, capacities(), assignment_after(units, tight["moves"]), 0.02)
    # The side-by-side table.
    assert "scenario      status   moves  moved potential  imbalance after  worst rep" in result.stdout
    assert "tolerance 2%  optimal      2" in result.stdout


def test_combined_scenario_applies_every_drop_and_add_at_once(tmp_path):
    document = proposal(
        tmp_path, "--units", UNITS, "--reps", REPS, "--drop-rep", "R2", "--add-rep", "R4,52.52,13.50", "--combined"
    )

    assert [s["scenario"] for s in document["scenarios"]] == ["drop R2", "add R4", "drop R2 + add R4"]
    both = scenario(document, "drop R2 + add R4")
    assert [b["rep_id"] for b in both["after"]] == ["R1", "R3", "R4"]
    assert all(m["to_rep"] != "R2" for m in both["moves"])
    units = rows(UNITS)
    capacity = {"R1": 1.0, "R3": 1.0, "R4": 1.0}
    assert in_band(units, capacity, assignment_after(units, both["moves"]), 0.10)


# ---------------------------------------------------------------------------- bad input


UNITS_HEADER = "unit_id,lat,lon,potential,workload,rep_id,locked\n"


@pytest.mark.parametrize(
    ("units_text", "expected"),
    [
        (
            UNITS_HEADER + "".join(f"U{i},52.5,13.4,10,,R1,\n" for i in range(5)) + "U9,52.5,13.4,abc,,R2,\n",
            "units.csv line 7, column potential: must be a number >= 0, got 'abc'",
        ),
        (
            UNITS_HEADER + "U1,52.5,13.4,10,,R1,\n\nU2,91,13.4,10,,R1,\n",
            "units.csv line 4, column lat: must be a number in [-90, 90], got '91'",
        ),
        (
            UNITS_HEADER + "U1,52.5,13.4,10,,R1,\nU1,52.5,13.4,10,,R2,\n",
            "units.csv line 3, column unit_id: duplicate unit 'U1' (first on line 2)",
        ),
        (
            UNITS_HEADER + "U1,52.5,13.4,10,-2,R1,maybe\n",
            "units.csv line 2, column workload: must be a number >= 0, got '-2'",
        ),
        (UNITS_HEADER + "U1,52.5,13.4,10,,R1,maybe\n", "units.csv line 2, column locked: must be true or false"),
        (UNITS_HEADER + "U1,52.5,,10,,R1,\n", "units.csv line 2, column lon: required"),
        ("unit_id,potential,rep_id\nU1,10,R1\n", "units.csv: missing required columns lat, lon"),
        ("", "units.csv: empty file"),
    ],
)
def test_bad_units_file_exits_2_naming_file_line_and_column(tmp_path, units_text, expected):
    units = tmp_path / "units.csv"
    units.write_text(units_text, encoding="utf-8")
    result = rebalance("--units", units, "--reps", REPS, expect=2)
    assert expected in result.stderr
    assert result.stderr.startswith("error: ")


def test_bad_reps_and_edges_files_exit_2(tmp_path):
    reps = tmp_path / "reps.csv"
    reps.write_text("rep_id,home_lat,home_lon,capacity_fte\nR1,52.5,13.3,1\nR2,52.5,13.5,0\nR1,52.4,13.4,\n")
    result = rebalance("--units", UNITS, "--reps", reps, expect=2)
    assert "reps.csv line 3, column capacity_fte: must be a number > 0, got '0'" in result.stderr
    assert "reps.csv line 4, column rep_id: duplicate rep 'R1' (first on line 2)" in result.stderr

    edges = tmp_path / "edges.csv"
    edges.write_text("unit_a,unit_b\nU01,U02\nU02,U99\n")
    result = rebalance("--units", UNITS, "--reps", REPS, "--adjacency", edges, expect=2)
    assert "edges.csv line 3, column unit_b: unknown unit 'U99'" in result.stderr


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--add-rep", "R4,north,13.4"], "--add-rep 'R4,north,13.4': LAT must be a number in [-90, 90], got 'north'"),
        (["--add-rep", "R4,52.5"], "--add-rep 'R4,52.5': expected ID,LAT,LON"),
        (["--add-rep", "R2,52.5,13.4"], "--add-rep R2: a rep with that id is already in the reps file"),
        (["--drop-rep", "R9"], "--drop-rep R9: no such rep (reps: R1, R2, R3)"),
        (["--metric", "revenue"], "--metric must be potential or workload or both"),
        (["--objective", "travel"], "--objective must be one of moves, moved_potential"),
        (["--tolerance", "1.5"], "--tolerance must be a fraction in [0, 1)"),
        (["--compare-tolerance", "-0.1"], "--compare-tolerance must be a fraction in [0, 1)"),
        (["--drop-rep", "R2", "--combined"], "--combined needs at least two"),
    ],
)
def test_bad_options_exit_2(options, expected):
    result = rebalance("--units", UNITS, "--reps", REPS, *options, expect=2)
    assert expected in result.stderr


# ---------------------------------------------------------------------------- adjacency (grid)


def test_grid_without_adjacency_moves_the_big_far_unit_alone(tmp_path):
    # What --adjacency has to prevent: R2's territory in two pieces.
    document = proposal(tmp_path, "--units", DATA / "grid_units.csv", "--reps", DATA / "grid_reps.csv")
    assert [(m["unit_id"], m["to_rep"]) for m in document["moves"]] == [("G10", "R2")]
    units = rows(DATA / "grid_units.csv")
    assignment = assignment_after(units, document["moves"])
    assert not connected({u for u, r in assignment.items() if r == "R2"}, rows(DATA / "grid_edges.csv"))


def test_adjacency_keeps_territories_connected(tmp_path):
    document = proposal(
        tmp_path,
        "--units",
        DATA / "grid_units.csv",
        "--reps",
        DATA / "grid_reps.csv",
        "--adjacency",
        DATA / "grid_edges.csv",
    )
    assert document["status"] == "optimal" and document["objective"] == 4
    units, edges = rows(DATA / "grid_units.csv"), rows(DATA / "grid_edges.csv")
    assignment = assignment_after(units, document["moves"])
    for rep_id in ("R1", "R2"):
        assert connected({u for u, r in assignment.items() if r == rep_id}, edges), rep_id
    assert in_band(units, capacities(DATA / "grid_reps.csv"), assignment, 0.10)


# ---------------------------------------------------------------------------- metrics, objectives, curve, contiguity


def test_potential_and_workload_both_stay_in_band(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--metric", "potential,workload")
    assert document["metrics"] == ["potential", "workload"]
    assert document["status"] == "optimal" and document["objective"] == 2  # U03 alone breaks workload
    units = rows(UNITS)
    assignment = assignment_after(units, document["moves"])
    assert in_band(units, capacities(), assignment, 0.10, "potential")
    assert in_band(units, capacities(), assignment, 0.10, "workload")
    assert all({"workload", "workload_share", "workload_deviation"} <= set(b) for b in document["after"])


def test_moved_potential_objective(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--objective", "moved_potential")
    assert document["objective_kind"] == "moved_potential"
    assert document["objective"] == pytest.approx(25)  # nothing lighter than U03 balances R1 and R3
    assert [m["unit_id"] for m in document["moves"]] == ["U03"]


def test_max_moves_caps_the_moves(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--tolerance", "0.02", "--max-moves", "1")
    assert len(document["moves"]) <= 1 and document["max_moves"] == 1
    assert document["imbalance_after"] < document["imbalance_before"]


def test_curve_starts_at_zero_moves_and_never_gets_worse(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS, "--curve")
    curve = document["curve"]
    assert curve[0]["moves"] == 0 and curve[0]["imbalance"] == pytest.approx(0.30)
    assert all(set(p) == {"moves", "imbalance", "status", "moves_used", "bound"} for p in curve)
    moves = [p["moves"] for p in curve]
    assert moves == sorted(set(moves))
    imbalances = [p["imbalance"] for p in curve]
    assert all(b <= a + 1e-9 for a, b in zip(imbalances, imbalances[1:])), imbalances
    # The first point inside the ±10% band is the minimal-move proposal's.
    assert next(p["moves"] for p in curve if p["imbalance"] <= 0.10 + 1e-9) == 1


def test_charts_draws_the_map_the_shares_and_the_curve(tmp_path):
    rebalance("--units", UNITS, "--reps", REPS, "--curve", "--charts", tmp_path / "charts")
    for name in ("map.png", "shares.png", "curve.png"):
        picture = (tmp_path / "charts" / name).read_bytes()
        assert picture.startswith(b"\x89PNG") and len(picture) > 5_000, name
