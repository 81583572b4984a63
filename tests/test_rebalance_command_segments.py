"""`territory rebalance` with segments and account caps (tests/data/rebalance/segments_*.csv).

30 units in two segments ("key account", "smb"), 4 reps of equal capacity: R1 and R2 serve
every segment, R3 only key accounts (it still holds two smb units from before: staying is
allowed), R4 names both segments ("key account; smb", the same as every segment here) and
has a min_accounts of 5 that holds anyway; R2 has a max_accounts of 8 that binds.

R1 holds 11 units and 58.6% more than its fair share. With the segments and the cap the
fewest moves are 4; without the cap 3 moves would do but leave R2 with 9 units; without the
segments 3 moves would do but give R3 an smb unit. Every check below is recomputed from the
CSV files and the moves, not read from the command's `after`.
"""

from __future__ import annotations

from pathlib import Path

from territory import offline
from tests.test_rebalance_command import (
    DATA,
    assignment_after,
    capacities,
    in_band,
    proposal,
    rebalance,
    rows,
    write_csv,
)

UNITS, REPS = DATA / "segments_units.csv", DATA / "segments_reps.csv"


def serves(rep: dict[str, str], segment: str) -> bool:
    served = [s.strip() for s in rep["segments"].split(";") if s.strip()]
    return not segment or not served or segment in served


def check_segments_and_caps(units: list[dict[str, str]], reps: list[dict[str, str]], moves: list[dict]) -> None:
    by_rep = {r["rep_id"]: r for r in reps}
    segment = {u["unit_id"]: u["segment"] for u in units}
    for move in moves:
        assert serves(by_rep[move["to_rep"]], segment[move["unit_id"]]), move
    held = dict.fromkeys(by_rep, 0)
    for rep_id in assignment_after(units, moves).values():
        assert rep_id is not None
        held[rep_id] += 1
    for rep_id, rep in by_rep.items():
        assert not rep["min_accounts"] or held[rep_id] >= int(rep["min_accounts"]), (rep_id, held)
        assert not rep["max_accounts"] or held[rep_id] <= int(rep["max_accounts"]), (rep_id, held)


def held_by(units: list[dict[str, str]], moves: list[dict], rep_id: str) -> int:
    return sum(1 for owner in assignment_after(units, moves).values() if owner == rep_id)


def test_no_move_breaks_a_segment_or_a_cap(tmp_path):
    document = proposal(tmp_path, "--units", UNITS, "--reps", REPS)

    assert document["status"] == "optimal"
    assert document["objective"] == 4 == len(document["moves"]) and document["bound"] == 4
    units, reps = rows(UNITS), rows(REPS)
    check_segments_and_caps(units, reps, document["moves"])
    assert held_by(units, document["moves"], "R2") == 8
    assert not in_band(units, capacities(REPS), assignment_after(units, []), 0.10)
    assert in_band(units, capacities(REPS), assignment_after(units, document["moves"]), 0.10)
    # R3's smb units stay: segments restrict new assignments only.
    r3_smb = {u["unit_id"] for u in units if u["rep_id"] == "R3" and u["segment"] == "smb"}
    assert r3_smb and not r3_smb & {m["unit_id"] for m in document["moves"]}


def test_the_cap_and_the_segments_both_bind(tmp_path):
    units, reps = rows(UNITS), rows(REPS)
    uncapped = write_csv(tmp_path / "uncapped.csv", [{**r, "max_accounts": ""} for r in reps])
    anyone = write_csv(tmp_path / "anyone.csv", [{**r, "segments": ""} for r in reps])

    without_cap = proposal(tmp_path, "--units", UNITS, "--reps", uncapped)
    without_segments = proposal(tmp_path, "--units", UNITS, "--reps", anyone)

    assert without_cap["status"] == "optimal" and without_cap["objective"] == 3
    assert held_by(units, without_cap["moves"], "R2") > 8
    assert without_segments["status"] == "optimal" and without_segments["objective"] == 3
    segment = {u["unit_id"]: u["segment"] for u in units}
    assert any(m["to_rep"] == "R3" and segment[m["unit_id"]] != "key account" for m in without_segments["moves"])


def test_segments_are_split_on_semicolons_and_stripped(tmp_path):
    reps = tmp_path / "reps.csv"
    reps.write_text(
        'rep_id,home_lat,home_lon,segments,min_accounts,max_accounts\nR1,52.5,13.3," key account ;smb;; ",1,2\n'
        "R2,52.5,13.4,,,\n",
        encoding="utf-8",
    )
    read = offline.read_reps(reps)
    assert [(r.segments, r.min_accounts, r.max_accounts) for r in read] == [
        (("key account", "smb"), 1, 2),
        ((), None, None),
    ]
    units = offline.read_units(UNITS)
    assert {u.segment for u in units} == {"key account", "smb"}


def test_a_bad_cap_is_reported_with_file_line_and_column(tmp_path):
    reps = tmp_path / "reps.csv"
    reps.write_text(
        "rep_id,home_lat,home_lon,segments,min_accounts,max_accounts\n"
        "R1,52.5,13.3,,,\n"
        "R2,52.5,13.5,,,2.5\n"
        "R3,52.4,13.4,,-1,abc\n"
        "R4,52.6,13.4,,4,3\n",
        encoding="utf-8",
    )
    result = rebalance("--units", UNITS, "--reps", reps, expect=2)
    assert "reps.csv line 3, column max_accounts: must be a whole number >= 0, got '2.5'" in result.stderr
    assert "reps.csv line 4, column min_accounts: must be a whole number >= 0, got '-1'" in result.stderr
    assert "reps.csv line 4, column max_accounts: must be a whole number >= 0, got 'abc'" in result.stderr
    assert "reps.csv line 5, column min_accounts: must not exceed max_accounts (3), got 4" in result.stderr


def test_workload_caps_are_read_and_a_bad_one_is_reported_with_file_line_and_column(tmp_path):
    reps = tmp_path / "reps.csv"
    reps.write_text(
        "rep_id,home_lat,home_lon,min_workload,max_workload,sales_region\n"
        "R1,52.5,13.3,10,45.5,North\n"
        "R2,52.5,13.5,,,\n",
        encoding="utf-8",
    )
    assert [(r.min_workload, r.max_workload) for r in offline.read_reps(reps)] == [(10.0, 45.5), (None, None)]
    reps.write_text(
        "rep_id,home_lat,home_lon,min_workload,max_workload\n"
        "R1,52.5,13.3,,\n"
        "R2,52.5,13.5,-1,lots\n"
        "R3,52.6,13.4,40,30\n",
        encoding="utf-8",
    )
    result = rebalance("--units", UNITS, "--reps", reps, expect=2)
    assert "reps.csv line 3, column min_workload: must be a number >= 0, got '-1'" in result.stderr
    assert "reps.csv line 3, column max_workload: must be a number >= 0, got 'lots'" in result.stderr
    assert "reps.csv line 4, column min_workload: must not exceed max_workload (30), got 40" in result.stderr


def test_workload_caps_that_cannot_hold_exit_1_naming_them(tmp_path):
    units = DATA / "units.csv"  # the example with workloads
    total = sum(float(u["workload"] or 0) for u in rows(units))
    plain = rows(DATA / "reps.csv")
    reps = write_csv(tmp_path / "reps.csv", [{**r, "max_workload": f"{total / 2 / len(plain):g}"} for r in plain])
    result = rebalance("--units", units, "--reps", reps, expect=1)
    assert f"the reps' max_workload total {total / 2:g}, less than the accounts' workload of {total:g}" in result.stderr


def test_caps_that_cannot_hold_exit_1_naming_them(tmp_path):
    reps = write_csv(tmp_path / "reps.csv", [{**r, "max_accounts": "7"} for r in rows(REPS)])
    result = rebalance("--units", UNITS, "--reps", reps, expect=1)
    assert "the reps' max_accounts total 28, fewer than the 30 accounts" in result.stderr


def test_a_unit_no_rep_serves_exits_1_naming_its_segment(tmp_path):
    # Every rep names its segments: none serves "vip".
    reps = write_csv(tmp_path / "reps.csv", [{**r, "segments": r["segments"] or "smb;key account"} for r in rows(REPS)])
    units = rows(UNITS)
    units[0] = {**units[0], "rep_id": "", "segment": "vip"}
    path = write_csv(tmp_path / "units.csv", units)
    result = rebalance("--units", path, "--reps", reps, expect=1)
    assert "account U01 (segment 'vip') must be placed but no rep serves that segment" in result.stderr


def test_the_example_files_are_small(tmp_path: Path):
    units, reps = rows(UNITS), rows(REPS)
    assert len(units) == 30 and len(reps) == 4
    assert {u["segment"] for u in units} == {"key account", "smb"}
    assert [r["rep_id"] for r in reps if r["segments"] == "key account"] == ["R3"]
