"""`territory rebalance --scope district`: reps.csv `district`; fair shares and moves within each."""

from __future__ import annotations

from tests.test_rebalance_command import DATA, assignment_after, proposal, rebalance, rows, write_csv

UNITS, REPS = DATA / "segments_units.csv", DATA / "segments_reps.csv"
DISTRICT_REPS = DATA / "districts_reps.csv"


def test_the_district_example_is_the_segments_example_in_two_districts():
    plain, districts = rows(REPS), rows(DISTRICT_REPS)
    assert [{k: v for k, v in r.items() if k not in ("district", "sales_region")} for r in districts] == plain
    assert {r["district"] for r in districts} == {"West", "East"} and {r["sales_region"] for r in districts} == {
        "Berlin"
    }


def test_district_scope_keeps_every_unit_in_its_district(tmp_path):
    # The segments example with R1 and R3 in district "West", R2 and R4 in "East".
    district = {r["rep_id"]: r["district"] for r in rows(DISTRICT_REPS)}
    reps = DISTRICT_REPS
    units = rows(UNITS)
    company = proposal(tmp_path, "--units", UNITS, "--reps", reps)
    assert any(district[m["from_rep"]] != district[m["to_rep"]] for m in company["moves"])  # company-wide crosses

    document = proposal(tmp_path, "--units", UNITS, "--reps", reps, "--scope", "district")
    assert document["status"] in ("optimal", "balanced"), document
    assert all(district[m["from_rep"]] == district[m["to_rep"]] for m in document["moves"]), document["moves"]
    # Within each district the reps end in band around the district's fair share.
    potential = {u["unit_id"]: float(u["potential"]) for u in units}
    owner = assignment_after(units, document["moves"])
    for name in ("West", "East"):
        members = [rep for rep, d in district.items() if d == name]
        loads = {rep: sum(potential[u] for u, r in owner.items() if r == rep) for rep in members}
        fair = sum(loads.values()) / len(members)
        assert all(abs(load / fair - 1) <= 0.10 + 1e-9 for load in loads.values()), (name, loads)


def test_district_scope_refuses_what_it_cannot_do(tmp_path):
    result = rebalance("--units", UNITS, "--reps", REPS, "--scope", "region", expect=2)
    assert "--scope must be one of company, district, segment_pool" in result.output
    result = rebalance("--units", UNITS, "--reps", REPS, "--scope", "district", "--max-moves", "3", expect=2)
    assert "--scope district takes no --max-moves" in result.output
    result = rebalance("--units", UNITS, "--reps", REPS, "--scope", "segment_pool", "--max-moves", "3", expect=2)
    assert "--scope segment_pool takes no --max-moves" in result.output
    result = rebalance("--units", UNITS, "--reps", REPS, "--scope", "district", "--curve", expect=2)
    assert "--curve is drawn for --scope company only" in result.output


def test_segment_pool_scope_balances_each_pool_of_specialists_on_its_own(tmp_path):
    # R1 and R2 serve small businesses only, R3 and R4 key accounts only: two pools, each
    # held to the fair share of its own segment's potential.
    serves = {"R1": "smb", "R2": "smb", "R3": "key account", "R4": "key account"}
    reps = write_csv(
        tmp_path / "reps.csv",
        [{**r, "segments": serves[r["rep_id"]], "min_accounts": "", "max_accounts": ""} for r in rows(REPS)],
    )
    units = [{**u, "rep_id": ("R1" if u["segment"] == "smb" else "R3")} for u in rows(UNITS) if u["segment"]]
    path = write_csv(tmp_path / "units.csv", units)
    document = proposal(tmp_path, "--units", path, "--reps", reps, "--scope", "segment_pool")
    assert document["status"] == "optimal", document
    segment = {u["unit_id"]: u["segment"] for u in units}
    assert all(segment[m["unit_id"]] == serves[m["to_rep"]] for m in document["moves"]), document["moves"]
    potential = {u["unit_id"]: float(u["potential"]) for u in units}
    owner = assignment_after(units, document["moves"])
    for pool in ("smb", "key account"):
        members = [rep for rep, s in serves.items() if s == pool]
        loads = {rep: sum(potential[u] for u, r in owner.items() if r == rep) for rep in members}
        fair = sum(loads.values()) / len(members)
        assert all(abs(load / fair - 1) <= 0.10 + 1e-9 for load in loads.values()), (pool, loads)
