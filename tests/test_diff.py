"""Run-to-run diff: changes with their causes, class flows in 亩, rate decomposition,
the layer of changed parcels."""

from __future__ import annotations

import json
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, X0, Y0, make_parcels, make_samples

from farmland.runs.diff import CAUSES, FLOW_LABELS, LAYER_COLUMNS, diff_runs

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


#: compliant own crop samples on every class-2 parcel, in both runs: the treated class-2
#: parcels count in every accounting mode, so the rates below are simple sums
CROPS = pd.DataFrame({"parcel_id": ["P1", "P2", "P5"], "year": YEAR,
                      "sample_id": ["C1", "C2", "C5"], "crop": "rice",
                      "exceeds": pd.array([False] * 3, dtype="boolean")})
LEDGER_A = [("P1", "lime", "safe_use"), ("P2", "lime", "safe_use"),
            ("P4", "fallow", "strict_control")]
LEDGER_B = LEDGER_A + [("P6", "fallow", "strict_control"), ("P5", "lime", "safe_use")]


def rates(**kw):
    return diff_runs(run_a(), run_b(), crops_a=CROPS, crops_b=CROPS, **kw)


def test_diff_of_a_run_with_itself_is_empty():
    d = diff_runs(run_a(), run_a(), measures_a=ledger(LEDGER_A), crops_a=CROPS, crops_b=CROPS)
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
    # the causes: P1 soil class 2 in both runs -> the crop adjustment; P5 uses S9
    assert c["cause"].to_dict() == {"P1": "crop_adjustment", "P3": "removed_parcel",
                                    "P5": "new_samples", "P6": "new_parcel"}
    assert c.loc["P5", "cause_detail"].startswith("new samples S9 (used by no parcel of run A)")
    assert c["flow"].to_dict() == {"P1": "2→1", "P3": "3→absent", "P5": "unclassified→2",
                                   "P6": "absent→3"}


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
    d = rates(measures_a=ledger(LEDGER_A), measures_b=ledger(LEDGER_B))
    # A: class 2 P1 10, P2 20 (both measured, compliant own crop samples);
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
    d = rates(measures_a=ledger(LEDGER_A))
    # ledger A reused for B: no measures effect (the same crop data on either side)
    assert d.measures_effect == 0.0
    assert d.rate_b.rate == pytest.approx(35 / 47)
    summary = json.loads(json.dumps(d.to_dict(), ensure_ascii=False))
    assert summary["n_changes"] == 4 and summary["rate_b"] == pytest.approx(35 / 47)
    assert summary["changes_by_cause"] == {"new_samples": 1, "crop_adjustment": 1,
                                           "new_parcel": 1, "removed_parcel": 1}
    assert summary["samples_layers"] is False


def test_the_counterfactual_rate_is_not_logged(caplog):
    with caplog.at_level(logging.INFO):
        d = rates(measures_a=ledger(LEDGER_A), measures_b=ledger(LEDGER_B))
    mixed = f"{100 * d.rate_mixed.rate:.1f}"
    assert d.rate_mixed.rate not in (d.rate_a.rate, d.rate_b.rate)
    assert not any(mixed in r.getMessage() for r in caplog.records)
    assert not any(r.name.startswith("farmland.rate") and r.levelno < logging.WARNING
                   for r in caplog.records)


def test_area_change_is_reported():
    b = run_a()
    b.loc[1, "area_mu"] = 18.0
    c = diff_runs(run_a(), b).changes
    assert c["parcel_id"].tolist() == ["P2"]
    assert c["reason"].tolist() == ["area changed"]
    assert c["cause"].tolist() == ["area_changed"] and c["flow"].tolist() == ["2→2"]
    assert c["cause_detail"].iloc[0] == "class 2 unchanged; area 20.00 → 18.00 亩"
    assert c[["area_a_mu", "area_b_mu"]].iloc[0].tolist() == [20.0, 18.0]


def geo(frame):
    """The run as a layer: 50 m squares 100 m apart (also test_cli_diff.py)."""
    boxes = [shapely.box(X0 + 100 * i, Y0, X0 + 50 + 100 * i, Y0 + 50)
             for i in range(len(frame))]
    return gpd.GeoDataFrame(frame, geometry=boxes, crs=CRS)


# ------------------------------------------------------------------------------ causes
#: parcel -> (class A, class B, rule A, rule B, sample_ids A, sample_ids B); P0 … P8 are
#: 100 m squares along x. Soil class = final class except for P1 (crop adjustment in B).
CASES = {
    "P0": (1, 2, "points:majority", "points:majority", "S0", "S0,S9"),         # new S9
    "P1": (2, 1, "points:majority", "points:majority;crops:2->1", "S1", "S1"),   # crops
    "P2": (1, 2, "interpolated:area_majority", "interpolated:area_majority",
           "S2,S3,S4", "S2,S3,S4"),                                             # surface
    "P3": (2, 2, "interpolated:area_majority", "interpolated:area_majority", "S2,S3",
           "S2,S3"),                                                            # unchanged
    "P4": (3, 2, "points:strict_override", "points:majority", "S5,S6", "S5"),    # S6 gone
    "P5": (1, 2, "points:majority", "points:majority", "S7", "S7"),              # S7 values
    "P6": (2, 2, "interpolated:area_majority", "interpolated:area_majority", "S3,S4",
           "S3,S4"),                                                            # area only
    "P7": (2, None, "points:majority", None, "S8", None),                         # only in A
    "P8": (None, 3, None, "points:strict_override", None, "S10"),                 # only in B
}


def cause_runs():
    """Runs A and B of :data:`CASES` (parcels layers with geometry)."""
    cols = list(zip(*CASES.values(), strict=True))
    def side(k):
        cls = list(cols[k])
        soil = [2 if (k == 1 and pid == "P1") else c for pid, c in zip(CASES, cls, strict=True)]
        return make_parcels(n=len(CASES), final_class=cls, soil_class=soil,
                            rule=list(cols[2 + k]), sample_ids=list(cols[4 + k]))
    a, b = side(0), side(1)
    b.loc[b["parcel_id"] == "P6", "area_mu"] = 12.0
    return a[a["parcel_id"] != "P8"], b[b["parcel_id"] != "P7"]


def sample_layers():
    """Soil samples of the runs: B drops S6, adds S9 (in P0) and S10 (in P8), and has a
    corrected Cd value of S7."""
    xy = {"S0": (50, 50), "S1": (150, 50), "S2": (250, 20), "S3": (250, 50),
          "S4": (250, 80), "S5": (450, 40), "S6": (450, 60), "S7": (550, 50),
          "S8": (750, 50), "S9": (60, 50), "S10": (850, 50)}
    a_ids = [s for s in xy if s not in ("S9", "S10")]
    b_ids = [s for s in xy if s != "S6"]
    a = make_samples([xy[s] for s in a_ids], sample_id=a_ids)
    b = make_samples([xy[s] for s in b_ids], sample_id=b_ids)
    b.loc[b["sample_id"] == "S7", "cd"] = 0.5
    return a, b


def manifest(rules_sha="r" * 64, reach=1000.0):
    return {"rules": {"name": "county_practice", "sha256": rules_sha,
                      "values": {"interpolation": {"max_distance_m": reach},
                                 "crops": {"unit": "parcel"}}},
            "standard": {"version": "1.0", "fingerprint": "f" * 64},
            "parameters": {"interpolator": "kriging"}}


CROPS_B = pd.DataFrame({"parcel_id": ["P1"] * 3, "sample_id": ["N1", "N2", "N3"],
                        "year": YEAR, "exceeds": pd.array([False] * 3, dtype="boolean")})


def test_every_change_has_its_cause_from_the_sample_ids():
    a, b = cause_runs()
    d = diff_runs(a, b, crops_b=CROPS_B)
    c = d.changes.set_index("parcel_id")
    assert c["cause"].to_dict() == {
        "P0": "new_samples", "P1": "crop_adjustment", "P2": "interpolation",
        "P4": "removed_samples", "P5": "sample_values", "P6": "area_changed",
        "P7": "removed_parcel", "P8": "new_parcel"}
    assert set(c["cause"]) <= set(CAUSES)
    detail = c["cause_detail"]
    assert detail["P0"] == "new samples S9 (used by no parcel of run A); soil class 1 → 2"
    assert detail["P1"] == ("soil class 2 in both runs; crop adjustment none in A → 2->1 in "
                            "B; crop samples of B: N1, N2, N3 (none exceeds); of A: none")
    assert detail["P2"].startswith("same samples (S2, S3, S4); class moved with the "
                                   "interpolated surface; sample locations not known")
    assert detail["P4"] == ("samples S6 no longer used (used by no parcel of run B); "
                            "soil class 3 → 2")
    assert "values not compared (no samples layers)" in detail["P5"]
    assert detail["P7"] == "not in run B; class 2 in A (points:majority, samples S8)"
    assert detail["P8"] == "not in run A; class 3 in B (points:strict_override, samples S10)"
    assert not d.samples_layers


def test_rules_or_standard_when_the_manifests_differ():
    a, b = cause_runs()
    d = diff_runs(a, b, manifest_a=manifest("a" * 64), manifest_b=manifest("b" * 64))
    c = d.changes.set_index("parcel_id")
    # same samples and another rules file: the rules, not the surface nor the values
    assert c.loc["P2", "cause"] == "rules_or_standard"
    assert c.loc["P5", "cause"] == "rules_or_standard"
    assert c.loc["P2", "cause_detail"] == ("same samples (S2, S3, S4); rules county_practice "
                                           "aaaaaaaa → county_practice bbbbbbbb; soil class "
                                           "1 → 2")
    # new or removed samples and the crop adjustment come first
    assert c.loc[["P0", "P1", "P4"], "cause"].tolist() == ["new_samples", "crop_adjustment",
                                                          "removed_samples"]
    same = diff_runs(a, b, manifest_a=manifest(), manifest_b=manifest())
    assert same.changes.set_index("parcel_id").loc["P2", "cause"] == "interpolation"


def test_samples_layers_name_new_samples_and_changed_values():
    a, b = cause_runs()
    sa, sb = sample_layers()
    d = diff_runs(a, b, samples_a=sa, samples_b=sb, manifest_a=manifest(),
                  manifest_b=manifest())
    c = d.changes.set_index("parcel_id")
    assert d.samples_layers
    assert c.loc["P0", "cause_detail"].startswith("new samples S9 (new in run B)")
    assert c.loc["P4", "cause_detail"].startswith("samples S6 no longer used (not in run B)")
    assert c.loc["P5", "cause"] == "sample_values"
    assert "changed: S7 cd 0.1 → 0.5" in c.loc["P5", "cause_detail"]
    # P2 spans x 200-300 m: S9 at x 60 is 140 m away, S10 at x 850 550 m
    assert "nearest new samples within 1000 m: S9 (140 m), S10 (550 m)" in \
        c.loc["P2", "cause_detail"]
    near = diff_runs(a, b, samples_a=sa, samples_b=sb, manifest_a=manifest(reach=300.0),
                     manifest_b=manifest(reach=300.0)).changes.set_index("parcel_id")
    assert "nearest new samples within 300 m: S9 (140 m);" in near.loc["P2", "cause_detail"]
    far = sb.copy()
    far.loc[far["sample_id"].isin(["S9", "S10"]), "geometry"] = shapely.Point(X0 + 5000, Y0)
    none = diff_runs(a, b, samples_a=sa, samples_b=far, manifest_a=manifest(),
                     manifest_b=manifest()).changes.set_index("parcel_id")
    assert "no new sample within 1000 m" in none.loc["P2", "cause_detail"]


def test_changes_layer_has_the_geometry_of_b_else_a():
    a, b = cause_runs()
    layer = diff_runs(a, b).changes_layer()
    assert list(layer.columns) == [*LAYER_COLUMNS, "geometry"]
    assert layer.crs == CRS
    by_id = layer.set_index("parcel_id")
    assert by_id.loc["P8", "geometry"].equals(b.set_index("parcel_id").loc["P8", "geometry"])
    assert by_id.loc["P7", "geometry"].equals(a.set_index("parcel_id").loc["P7", "geometry"])
    assert by_id.loc["P7", "flow"] == "2→absent" and pd.isna(by_id.loc["P7", "class_b"])
    assert not layer.geometry.isna().any()
    # plain frames: a layer without geometry
    plain = diff_runs(pd.DataFrame(a.drop(columns="geometry")),
                      pd.DataFrame(b.drop(columns="geometry"))).changes_layer()
    assert plain.geometry.isna().all() and len(plain) == len(layer)
