"""Run-to-run diff: changes with reasons, class flows in 亩, rate decomposition."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, X0, Y0

from farmland.runs.diff import FLOW_LABELS, diff_runs

YEAR = 2023


def run_a():
    return pd.DataFrame({
        "parcel_id": ["P1", "P2", "P3", "P4", "P5"], "township": ["东", "东", "东", "西", "西"],
        "final_class": pd.array([2, 2, 3, 3, None], dtype="Int8"),
        "soil_class": pd.array([2, 2, 3, 3, None], dtype="Int8"),
        "area_mu": [10.0, 20.0, 30.0, 15.0, 5.0],
        "rule": ["points:majority"] * 4 + ["unclassified:too_far"],
        "sample_ids": ["S1", "S2", "S3", "S4", ""]})


def run_b():
    """P1 2->1 by crops, P3 removed, P5 classified 2 from new samples, P6 added (class 3)."""
    b = run_a()
    b.loc[0, ["final_class", "rule"]] = [1, "points:majority;crops:2->1"]
    b.loc[4, ["final_class", "soil_class", "rule", "sample_ids"]] = [
        2, 2, "interpolated:area_majority", "S9"]
    b = b.loc[b["parcel_id"] != "P3"]
    p6 = pd.DataFrame({"parcel_id": ["P6"], "township": ["西"],
                       "final_class": pd.array([3], dtype="Int8"),
                       "soil_class": pd.array([3], dtype="Int8"), "area_mu": [7.0],
                       "rule": ["points:strict_override"], "sample_ids": ["S7"]})
    return pd.concat([b, p6], ignore_index=True)


def ledger(rows):
    ids, types, classes = zip(*rows, strict=True)
    return pd.DataFrame({"parcel_id": list(ids), "measure_type": list(types),
                         "measure_class": list(classes), "year": YEAR})


LEDGER_A = [("P1", "lime", "safe_use"), ("P2", "lime", "safe_use"),
            ("P4", "fallow", "strict_control")]
LEDGER_B = LEDGER_A + [("P6", "fallow", "strict_control"), ("P5", "lime", "safe_use")]


def test_diff_of_a_run_with_itself_is_empty():
    d = diff_runs(run_a(), run_a(), measures_a=ledger(LEDGER_A))
    assert d.changes.empty
    flows = d.flows
    off_diagonal = flows.to_numpy() - np.diag(np.diag(flows.to_numpy()))
    assert not off_diagonal.any()
    # diagonal = class areas: class 2 10 + 20, class 3 30 + 15, unclassified 5
    assert np.diag(flows).tolist() == [0.0, 30.0, 45.0, 5.0, 0.0]
    assert d.reclassification_effect == 0.0 and d.measures_effect == 0.0


def test_changes_and_reasons():
    d = diff_runs(run_a(), run_b(), measures_a=ledger(LEDGER_A), measures_b=ledger(LEDGER_B))
    c = d.changes.set_index("parcel_id")
    assert c.index.tolist() == ["P1", "P3", "P5", "P6"]     # P2, P4 unchanged
    assert c.loc["P1", "reason"] == "crop adjustment 2->1"
    assert c.loc["P3", "reason"] == "parcel removed"
    assert c.loc["P5", "reason"] == ("new soil samples; rule changed (unclassified:too_far -> "
                                     "interpolated:area_majority)")
    assert c.loc["P6", "reason"] == "parcel added"
    assert (c.loc["P1", "class_a"], c.loc["P1", "class_b"]) == (2, 1)
    assert pd.isna(c.loc["P3", "class_b"]) and c.loc["P3", "area_mu"] == 30.0
    assert c.loc["P6", "township"] == "西"


def test_flows_in_mu_sum_to_the_total_area():
    d = diff_runs(run_a(), run_b(), measures_a=ledger(LEDGER_A))
    f = d.flows
    assert list(f.index) == list(FLOW_LABELS) and list(f.columns) == list(FLOW_LABELS)
    assert f.loc["2", "1"] == 10.0           # P1
    assert f.loc["2", "2"] == 20.0           # P2
    assert f.loc["3", "absent"] == 30.0      # P3 removed
    assert f.loc["3", "3"] == 15.0           # P4
    assert f.loc["unclassified", "2"] == 5.0  # P5
    assert f.loc["absent", "3"] == 7.0       # P6 added
    # union area: 10 + 20 + 30 + 15 + 5 + 7 = 87
    assert f.to_numpy().sum() == 87.0
    # row sums are run A's class areas, column sums run B's
    assert f.drop(index="absent").sum(axis=1).tolist() == [0.0, 30.0, 45.0, 5.0]
    assert f.drop(columns="absent").sum(axis=0).tolist() == [10.0, 25.0, 22.0, 0.0]


def test_rate_decomposition():
    d = diff_runs(run_a(), run_b(), measures_a=ledger(LEDGER_A), measures_b=ledger(LEDGER_B))
    # A: class 2 P1 10, P2 20 (both measured, no crops -> unverified, counted);
    #    class 3 P3 30, P4 15 (P4 fallow) -> (10 + 20 + 15) / 75 = 0.6
    assert d.rate_a.rate == pytest.approx(0.6)
    # B classes, ledger A: class 2 P2 20, P5 5; class 3 P4 15, P6 7 -> (20 + 15) / 47
    assert d.rate_mixed.rate == pytest.approx(35 / 47)
    # B classes, ledger B: P5 and P6 now have measures -> 47 / 47
    assert d.rate_b.rate == pytest.approx(1.0)
    assert d.reclassification_effect == pytest.approx(35 / 47 - 0.6)
    assert d.measures_effect == pytest.approx(1 - 35 / 47)
    assert d.reclassification_effect + d.measures_effect == pytest.approx(
        d.rate_b.rate - d.rate_a.rate, abs=1e-12)
    e = d.effects.set_index("name")
    # 东: A (10 + 20) / 60 = 0.5; B classes: P2 20 only -> 20 / 20 = 1
    assert e.loc["东", "rate_a"] == pytest.approx(0.5)
    assert e.loc["东", "reclassification_effect"] == pytest.approx(0.5)
    assert e.loc["东", "measures_effect"] == pytest.approx(0.0)
    total = e["reclassification_effect"] + e["measures_effect"]
    assert total.to_numpy() == pytest.approx((e["rate_b"] - e["rate_a"]).to_numpy(), abs=1e-12)


def test_one_ledger_for_both_runs():
    d = diff_runs(run_a(), run_b(), measures_a=ledger(LEDGER_A))
    # ledger A reused for B: no measures effect (no crop data on either side)
    assert d.measures_effect == 0.0
    assert d.rate_b.rate == pytest.approx(35 / 47)
    summary = json.loads(json.dumps(d.to_dict(), ensure_ascii=False))
    assert summary["n_changes"] == 4 and summary["rate_b"] == pytest.approx(35 / 47)


def test_area_change_is_reported():
    b = run_a()
    b.loc[1, "area_mu"] = 18.0
    c = diff_runs(run_a(), b).changes
    assert c["parcel_id"].tolist() == ["P2"]
    assert c["reason"].tolist() == ["area changed"]
    assert c[["area_a_mu", "area_b_mu"]].iloc[0].tolist() == [20.0, 18.0]


def geo(frame):
    """The run as a layer: 50 m squares 100 m apart (also test_cli_diff.py)."""
    boxes = [shapely.box(X0 + 100 * i, Y0, X0 + 50 + 100 * i, Y0 + 50)
             for i in range(len(frame))]
    return gpd.GeoDataFrame(frame, geometry=boxes, crs=CRS)
