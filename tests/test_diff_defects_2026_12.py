"""Diff defects found by a county analyst (2026-12): why a crop adjustment no longer
applies, no 0 % rate without a ledger, the closed loop counted as ``farmland rate`` counts
it, and the message for a deleted run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_diff import CROPS, LEDGER_A, LEDGER_B, geo, ledger, run_a, run_b

from farmland.errors import InputError
from farmland.runs.diff import NO_LEDGER, diff_runs
from farmland.runs.workspace import Workspace

CROP_RULES = {"allow_2_to_1": True, "allow_3_to_2": True, "min_compliant_years": 2,
              "min_samples_lower": 3, "min_samples_raise": 1,
              "min_share_grade1_for_3_to_2": 1.0, "raise_class1": True, "unit": "parcel"}
MANIFEST = {"rules": {"name": "county_practice", "sha256": "r" * 64,
                      "values": {"crops": CROP_RULES}}}


def crop_pair():
    """Run A: 2023 crops only, P1 (soil 2) lowered 2->1 on its three compliant 2023
    samples. Run B: the same soil, the 2023 crops plus 2024 samples on P2 only, so the
    data hold two years and P1's samples (all 2023) no longer lower it."""
    a = run_a()
    a.loc[0, ["final_class", "rule"]] = [1, "points:majority;crops:2->1"]
    b = run_a()
    crops_a = pd.DataFrame({"parcel_id": ["P1"] * 3, "sample_id": ["N1", "N2", "N3"],
                            "year": 2023, "crop": "rice",
                            "exceeds": pd.array([False] * 3, dtype="boolean")})
    crops_b = pd.concat([crops_a, pd.DataFrame({
        "parcel_id": ["P2"], "sample_id": ["N9"], "year": 2024, "crop": "rice",
        "exceeds": pd.array([False], dtype="boolean")})], ignore_index=True)
    return a, b, crops_a, crops_b


def test_crop_adjustment_undone_names_the_years_rule():
    a, b, crops_a, crops_b = crop_pair()
    d = diff_runs(a, b, crops_a=crops_a, crops_b=crops_b, manifest_a=MANIFEST,
                  manifest_b=MANIFEST)
    c = d.changes.set_index("parcel_id")
    assert c.index.tolist() == ["P1"] and c.loc["P1", "cause"] == "crop_adjustment"
    # P1: 3 samples (>= min_samples_lower 3), none exceeding, all of 2023; B's crop data
    # hold 2023 and 2024, so min_compliant_years = 2 applies: 1 year < 2
    assert c.loc["P1", "cause_detail"] == (
        "soil class 2 in both runs; crop adjustment 2->1 in A → none in B; 2->1 not applied "
        "in B: 达标样品仅 1 年 compliant samples in 1 year only (2023); 2 years needed once "
        "the crop data hold more than one year (2023, 2024) ([crops] min_compliant_years); "
        "crop samples of B: N1, N2, N3 (none exceeds)")


def test_crop_adjustment_reason_too_few_samples_and_unknown_rules():
    # the other way round: none in A (2 samples < 3 needed) → 2->1 in B (3 samples)
    a, b, crops_a, crops_b = crop_pair()
    a, b = b, a
    crops_a = crops_b.iloc[:2].copy()
    crops_b = crops_b.iloc[:3].copy()
    d = diff_runs(a, b, crops_a=crops_a, crops_b=crops_b, manifest_a=MANIFEST,
                  manifest_b=MANIFEST)
    assert d.changes["cause_detail"].iloc[0] == (
        "soil class 2 in both runs; crop adjustment none in A → 2->1 in B; 2->1 not applied "
        "in A: 农产品样品不足 2 crop sample(s), 3 needed ([crops] min_samples_lower); crop "
        "samples of B: N1, N2, N3 (none exceeds); of A: N1, N2 (none exceeds)")
    # no rules in the manifests: the reason is not knowable, nothing is claimed
    bare = diff_runs(a, b, crops_a=crops_a, crops_b=crops_b)
    assert "not applied" not in bare.changes["cause_detail"].iloc[0]


def test_no_ledger_compares_no_rate(cli, tmp_path):
    d = diff_runs(run_a(), run_b(), crops_a=CROPS, crops_b=CROPS)
    assert d.rate_a is None and d.rate_b is None and not d.rates_compared
    assert d.effects.empty
    summary = d.to_dict()
    assert summary["rate_compared"] is False and summary["rate_note"] == NO_LEDGER
    assert summary["rate_a"] is None and summary["measures_effect"] is None
    with pytest.raises(InputError, match="measures ledger for run B but none for run A"):
        diff_runs(run_a(), run_b(), measures_b=ledger(LEDGER_B))
    wsp = tmp_path / "runs.gpkg"
    ws = Workspace(wsp)
    ws.add_run(geo(run_a()), crops=CROPS, manifest={"seed": 0})
    ws.add_run(geo(run_b()), crops=CROPS, manifest={"seed": 0})
    res = cli("diff", "R0002", "R0002", "--workspace", wsp, "-o", tmp_path / "d")
    assert res.exit_code == 0, res.output
    assert ("安全利用率 safe-utilisation rate: 未提供措施台账 no measures ledger given: the rate "
            "is not compared (give --measures-a and --measures-b)") in res.stdout
    assert "0.00 %" not in res.output and "pp" not in res.stdout
    saved = json.loads((tmp_path / "d" / "diff.json").read_text("utf-8"))
    assert saved["rate_a"] is None and saved["rate_b"] is None and not saved["rate_compared"]


def test_closed_loop_gates_the_rates_as_farmland_rate_does():
    # A: P4 (class 3, 15 亩, fallow) counts as controlled only if its loop is closed.
    # Loop not reached: (10 + 20) / 75 = 0.4 instead of (10 + 20 + 15) / 75 = 0.6
    loop_a = pd.Series({"P3": True, "P4": False})
    loop_b = pd.Series({"P4": True, "P6": True})
    d = diff_runs(run_a(), run_b(), measures_a=ledger(LEDGER_A), measures_b=ledger(LEDGER_B),
                  crops_a=CROPS, crops_b=CROPS, loop_ok_a=loop_a, loop_ok_b=loop_b)
    assert d.rate_a.rate == pytest.approx(30 / 75)
    # B classes, ledger A, loop A: class 2 P2 20 + P5 5 (P2 counts), class 3 P4 15 (loop
    # not reached), P6 7 (no measure in A) -> 20 / 47
    assert d.rate_mixed.rate == pytest.approx(20 / 47)
    # B: P2 20, P5 5, P4 15 and P6 7 with closed loops -> 47 / 47
    assert d.rate_b.rate == pytest.approx(1.0)
    assert d.closed_loop == (True, True) and d.to_dict()["closed_loop_a"] is True
    with pytest.raises(InputError, match="closed loop for one run only"):
        diff_runs(run_a(), run_b(), measures_a=ledger(LEDGER_A), measures_b=ledger(LEDGER_B),
                  loop_ok_a=loop_a)


def test_cli_says_when_no_closed_loop_is_counted(cli, tmp_path):
    wsp = tmp_path / "runs.gpkg"
    ws = Workspace(wsp)
    ws.add_run(geo(run_a()), crops=CROPS, manifest={"seed": 0})
    ws.add_run(geo(run_b()), crops=CROPS, manifest={"seed": 0})
    ma = tmp_path / "a.csv"
    ledger(LEDGER_A).to_csv(ma, index=False)
    res = cli("diff", "R0001", "R0002", "--workspace", wsp, "--measures-a", ma,
              "-o", tmp_path / "d")
    assert res.exit_code == 0, res.output
    assert "闭环台账 closed-loop ledger: none given" in res.stdout
    loop = tmp_path / "loop.csv"
    loop.write_text("parcel_id,stage,date\nP4,designated,2023-03-01\n", "utf-8")
    bad = cli("diff", "R0001", "R0002", "--workspace", wsp, "--measures-a", ma,
              "--measures-b", ma, "--closed-loop-a", loop, "-o", tmp_path / "e")
    assert bad.exit_code == 2 and "closed-loop ledger for one run only" in bad.stderr


def test_deleted_run_is_named_as_deleted(cli, tmp_path):
    wsp = tmp_path / "runs.gpkg"
    ws = Workspace(wsp)
    ws.add_run(geo(run_a()), manifest={"seed": 0})
    ws.add_run(geo(run_b()), manifest={"seed": 0})
    ws.delete_run("R0001")
    res = cli("diff", "R0001", "R0002", "--workspace", wsp, "-o", tmp_path / "d")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [(
        f"farmland: error: {wsp}: no run 'R0001' in the workspace: it was deleted (run ids "
        f"are never reused). Fix: use one of: R0002 (farmland runs {wsp} lists them)")]
    # an id never issued keeps the plain message
    with pytest.raises(InputError, match=r"no run 'R0003' in the workspace \(got 'R0003'\)"):
        ws.load_run("R0003")
