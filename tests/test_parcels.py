"""Parcels into classes: point rules, distance limit, interpolation shares, crops, QA."""

import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import CRS, X0, Y0, make_samples
from scipy.spatial import cKDTree
from shapely.geometry import Point, box

from farmland.classify.parcels import classify_parcels
from farmland.rules import load_rules

# paddy, pH 6.0 (b1): Cd screening 0.4, intervention 2.0
CD = {1: 0.2, 2: 0.8, 3: 2.5}


class Nearest:
    """A hand-checkable interpolator: the value of the nearest sample."""

    def fit(self, coords, values):
        self.tree_, self.values_ = cKDTree(coords), np.asarray(values, float)
        return self

    def predict(self, coords):
        return self.values_[self.tree_.query(coords)[1]]


def nearest(_variable):
    return Nearest()


def parcels(*boxes, landuse="paddy", net=None):
    ids = [f"P{i}" for i in range(len(boxes))]
    df = gpd.GeoDataFrame({"parcel_id": ids, "township": "T", "landuse": landuse},
                          geometry=[box(*b) for b in boxes], crs=CRS)
    if net is not None:
        df["net_area_m2"] = net
    return df


def samples(*points):
    """points: (x, y, class) -> soil samples whose Cd gives that class on paddy at pH 6
    (the other metals class 1)."""
    return make_samples([(x, y) for x, y, _ in points], origin=(0, 0),
                        cd=[CD[c] for _, _, c in points])


def square(i, size=100.0):
    return (X0 + i * size, Y0, X0 + (i + 1) * size, Y0 + size)


def run(p, s, **kw):
    kw.setdefault("interpolator", nearest)
    return classify_parcels(p, s, **kw)


def test_one_class3_point_among_class1_points_makes_class3():
    p = parcels(square(0))
    s = samples((X0 + 10, Y0 + 10, 1), (X0 + 20, Y0 + 20, 1), (X0 + 30, Y0 + 30, 1),
                (X0 + 40, Y0 + 40, 3))
    out, _, _ = run(p, s)
    row = out.iloc[0]
    assert row["final_class"] == 3
    assert row["rule"] == "points:strict_override"
    assert row["n_samples"] == 4
    assert row["sample_ids"] == "S0,S1,S2,S3"
    assert row["driving_element"] == "cd"
    assert "own_class_points_below_50pct" in row["qa_flags"]   # 1 of 4 points is class 3


def test_majority_tie_goes_to_stricter_class():
    out, _, _ = run(parcels(square(0)), samples((X0 + 10, Y0 + 10, 1), (X0 + 20, Y0 + 20, 2)))
    row = out.iloc[0]
    assert row["final_class"] == 2 and row["rule"] == "points:majority"
    assert "own_class_points_below_80pct" in row["qa_flags"]   # 1 of 2 = 50 %


def test_majority_class1_with_a_class2_point_is_flagged():
    s = samples((X0 + 10, Y0 + 10, 1), (X0 + 20, Y0 + 20, 1), (X0 + 30, Y0 + 30, 2))
    row = run(parcels(square(0)), s)[0].iloc[0]
    assert row["final_class"] == 1
    assert row["qa_flags"] == "class1_with_class2_point"


def test_single_point_unit_flag():
    row = run(parcels(square(0)), samples((X0 + 50, Y0 + 50, 2)))[0].iloc[0]
    assert row["final_class"] == 2 and row["qa_flags"] == "single_point_unit"


def test_parcel_beyond_distance_limit_is_unclassified():
    # P1 starts 1 000 m from the sample's parcel edge... sample at x = X0+50;
    # P1 = [X0+1050, X0+1150]: nearest distance 1 000 m exactly -> still reachable;
    # P2 = [X0+1060, ...]: 1 010 m -> too far
    p = parcels(square(0), (X0 + 1050, Y0, X0 + 1150, Y0 + 100),
                (X0 + 1060, Y0 + 200, X0 + 1160, Y0 + 300))
    out, _, _ = run(p, samples((X0 + 50, Y0 + 50, 1)))
    assert out["rule"].tolist() == ["points:majority", "interpolated:area_majority",
                                    "unclassified:too_far"]
    assert pd.isna(out["final_class"].iloc[2])
    assert out["class_label_zh"].iloc[2] == "未分类"


def test_interpolated_shares_exact_with_10m_cells(tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text("[interpolation]\ncell_size_m = 10.0\n")
    p = parcels((X0 + 200, Y0, X0 + 400, Y0 + 100))
    s = samples((X0 + 100, Y0 + 50, 2), (X0 + 500, Y0 + 50, 1))
    row = run(p, s, rules=load_rules(rules))[0].iloc[0]
    assert (row["share_1"], row["share_2"], row["share_3"]) == (0.5, 0.5, 0.0)
    assert row["final_class"] == 2                 # tie -> stricter
    assert row["driving_element"] == "cd"
    assert set(row["sample_ids"].split(",")) == {"S0", "S1"}


def test_interpolated_majority(tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text("[interpolation]\ncell_size_m = 10.0\n")
    # midpoint x = X0+300; parcel [X0+220, X0+400]: 8 columns west (class 2), 10 east (class 1)
    p = parcels((X0 + 220, Y0, X0 + 400, Y0 + 100))
    s = samples((X0 + 100, Y0 + 50, 2), (X0 + 500, Y0 + 50, 1))
    row = run(p, s, rules=load_rules(rules))[0].iloc[0]
    assert row["share_2"] == pytest.approx(8 / 18, abs=1e-4)
    assert row["final_class"] == 1


def test_tiny_parcel_gets_a_point_inside():
    p = parcels((X0 + 201, Y0 + 1, X0 + 205, Y0 + 5))     # 16 m², no 30 m cell centre
    row = run(p, samples((X0 + 100, Y0, 3)))[0].iloc[0]
    assert row["final_class"] == 3 and row["share_3"] == 1.0


def test_parcels_under_point_below_cells_are_estimated_at_one_point(tmp_path):
    rules = tmp_path / "r.toml"
    rules.write_text("[interpolation]\ncell_size_m = 10.0\npoint_below_cells = 4\n")
    # 10 m cells: P0 is 30 × 10 m (3 cells, under 4: one point, its centre X0+215, in the
    # class-2 half); P1 is 200 × 100 m (200 cells): half class 2, half class 1, as with cells
    p = parcels((X0 + 200, Y0 + 200, X0 + 230, Y0 + 210), (X0 + 200, Y0, X0 + 400, Y0 + 100))
    s = samples((X0 + 100, Y0 + 50, 2), (X0 + 500, Y0 + 50, 1))
    out = run(p, s, rules=load_rules(rules))[0]
    assert out["share_2"].tolist() == [1.0, 0.5]
    assert out["final_class"].tolist() == [2, 2]


def test_parcel_cells_point_below_cells_keeps_the_large_parcels_cells():
    from farmland.classify.interpolated import parcel_cells

    geoms = np.array([box(0, 0, 30, 10), box(0, 20, 200, 120)])
    cells, labels = parcel_cells(geoms, 10.0)
    assert np.bincount(labels).tolist() == [3, 200]
    pts, pt_labels = parcel_cells(geoms, 10.0, point_below_cells=4)
    assert np.bincount(pt_labels).tolist() == [1, 200]
    np.testing.assert_array_equal(pts[pt_labels == 1], cells[labels == 1])
    np.testing.assert_allclose(pts[pt_labels == 0], [[15.0, 5.0]])  # a point on its surface


def test_area_from_net_area_when_given_else_geometry():
    p = parcels(square(0), square(1), net=[5000.0, np.nan])
    out, _, _ = run(p, samples((X0 + 50, Y0 + 50, 1), (X0 + 150, Y0 + 50, 1)))
    assert out["area_mu"].tolist() == [7.5, 15.0]        # 5000*15/1e4; 10 000 m² = 15 亩
    assert out["area_hm2"].tolist() == [0.5, 1.0]
    assert out["area_m2"].tolist() == [10_000.0, 10_000.0]


def test_unusable_samples_do_not_classify():
    s = samples((X0 + 50, Y0 + 50, 3))
    s.loc[0, "ph"] = np.nan
    out, classified, _ = run(parcels(square(0)), s)
    assert not classified["usable"].iloc[0]
    assert out["rule"].iloc[0] == "unclassified:no_usable_samples"
    assert pd.isna(out["final_class"].iloc[0])
    assert "unusable_samples_inside" in out["qa_flags"].iloc[0]


# ---------------------------------------------------------------- crop adjustment
def crops(points):
    """points: (x, y, crop, cd)."""
    recs = [{"sample_id": f"C{i}", "crop": c, "cd": v, "geometry": Point(x, y)}
            for i, (x, y, c, v) in enumerate(points)]
    return gpd.GeoDataFrame(recs, geometry="geometry", crs=CRS)


def crop_run(cls, cds, crop="rice", *, rules=None, years=None, extra_far=False):
    """One parcel of soil class ``cls`` with crop samples ``cds``; ``years`` per sample
    (an extra year beyond ``cds`` goes to a sample in a second parcel far away)."""
    p = parcels(square(0), square(50))
    s = samples((X0 + 50, Y0 + 50, cls), (X0 + 5050, Y0 + 50, 1))
    pts = [(X0 + 10 + i, Y0 + 10, crop, v) for i, v in enumerate(cds)]
    if extra_far:
        pts.append((X0 + 5010, Y0 + 10, crop, 0.1))
    c = crops(pts)
    if years is not None:
        c["year"] = years
    kw = {} if rules is None else {"rules": rules}
    return run(p, s, crops=c, **kw)


def _rules_with(**sections):
    """The shipped rules with some keys changed (a user rules file, as the CLI takes)."""
    def value(v):
        return str(v).lower() if isinstance(v, bool) else repr(v)
    text = "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {value(v)}" for k, v in keys.items())
                      for s, keys in sections.items())
    path = Path(tempfile.mkdtemp()) / "rules.toml"
    path.write_text(text + "\n", encoding="utf-8")
    return load_rules(path)


def test_class2_to_1_with_three_compliant_crop_samples():
    out, _, graded = crop_run(2, [0.1, 0.2, 0.15])         # rice limit 0.2: all grade 1
    row = out.iloc[0]
    assert row["soil_class"] == 2 and row["final_class"] == 1
    assert row["rule"] == "points:majority;crops:2->1"
    assert row["n_crops"] == 3 and not row["crop_exceedance"]
    assert graded["crop_grade"].tolist() == [1, 1, 1]


def test_class2_stays_with_two_crop_samples():
    row = crop_run(2, [0.1, 0.1])[0].iloc[0]
    assert row["final_class"] == 2 and row["rule"] == "points:majority"


def test_class2_stays_when_one_sample_exceeds():
    row = crop_run(2, [0.1, 0.1, 0.21])[0].iloc[0]
    assert row["final_class"] == 2 and row["crop_exceedance"]


def test_class3_to_2_only_when_no_sample_exceeds():
    # default min_share_grade1_for_3_to_2 = 1.0: a lowered parcel is one the rate can count
    fired = crop_run(3, [0.1] * 3)[0].iloc[0]
    assert fired["final_class"] == 2 and fired["rule"].endswith(";crops:3->2")
    # 13 grade 1 (65 %) + 7 grade 2 stays 3 now (it would be a class 2 that cannot count)
    assert crop_run(3, [0.1] * 13 + [0.3] * 7)[0].iloc[0]["final_class"] == 3


def test_class3_to_2_share_setting_still_works_and_warns(caplog):
    rules = _rules_with(crops={"min_share_grade1_for_3_to_2": 0.65})
    fired = crop_run(3, [0.1] * 13 + [0.3] * 7, rules=rules)[0].iloc[0]
    assert fired["final_class"] == 2
    assert "cannot count in the rate" in caplog.text
    assert crop_run(3, [0.1] * 12 + [0.3] * 8, rules=rules)[0].iloc[0]["final_class"] == 3


def test_class3_stays_with_a_grade3_sample():
    row = crop_run(3, [0.1] * 19 + [0.41])[0].iloc[0]    # 0.41 > 2 x 0.2 -> grade 3
    assert row["final_class"] == 3


def test_class1_is_raised_on_one_exceedance_by_default():
    row = crop_run(1, [0.5])[0].iloc[0]
    assert row["final_class"] == 2 and row["rule"].endswith(";crops:1->2")
    kept = crop_run(1, [0.1, 0.1, 0.5], rules=_rules_with(crops={"raise_class1": False}))
    assert kept[0].iloc[0]["final_class"] == 1
    assert "crop_exceedance_on_class1" in kept[0].iloc[0]["qa_flags"]


def test_raising_and_lowering_have_separate_minimums():
    rules = _rules_with(crops={"min_samples_raise": 2, "min_samples_lower": 1})
    assert crop_run(1, [0.5], rules=rules)[0].iloc[0]["final_class"] == 1    # 1 < 2
    assert crop_run(2, [0.1], rules=rules)[0].iloc[0]["final_class"] == 1    # 1 >= 1


def test_class2_to_1_needs_two_compliant_years_when_the_data_hold_several():
    # three compliant samples of 2023 only, while the crop data also hold 2022: stays 2
    one_year = crop_run(2, [0.1, 0.1, 0.1], years=[2023, 2023, 2023, 2022],
                        extra_far=True)[0].iloc[0]
    assert one_year["final_class"] == 2
    two_years = crop_run(2, [0.1, 0.1, 0.1], years=[2022, 2023, 2023])[0].iloc[0]
    assert two_years["final_class"] == 1 and two_years["rule"].endswith(";crops:2->1")


def test_crop_grades_at_boundaries():
    _, _, graded = crop_run(1, [0.2, 0.4, 0.41])
    assert graded["crop_grade"].tolist() == [1, 2, 3]
    assert graded["exceeds"].tolist() == [False, True, True]
    _, _, maize = crop_run(1, [0.1, 0.2, 0.21], crop="maize")   # maize limit 0.1
    assert maize["crop_grade"].tolist() == [1, 2, 3]


def test_same_inputs_give_identical_output():
    p = parcels(square(0), (X0 + 200, Y0, X0 + 400, Y0 + 100))
    s = samples((X0 + 50, Y0 + 50, 2), (X0 + 500, Y0 + 50, 1))
    a, _, _ = run(p, s)
    b, _, _ = run(p, s)
    pd.testing.assert_frame_equal(a, b)
