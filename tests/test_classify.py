"""Point classes of soil samples: thresholds at their exact boundaries (domain.md §2)."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import CRS, SOIL_BACKGROUND, X0, Y0
from shapely.geometry import Point, box

from farmland.classify.samples import classify_samples
from farmland.rules import load_rules


def soil(rows):
    """Soil samples from dicts, 10 m apart; unspecified values are the class-1 background
    (pH 6.0, Cd 0.1, Hg 0.1, As 5, Pb 20, Cr 50)."""
    recs = []
    for i, r in enumerate(rows):
        rec = {"sample_id": f"S{i}", **SOIL_BACKGROUND, **r}
        rec.setdefault("geometry", Point(X0 + 10 * i, Y0))
        recs.append(rec)
    return gpd.GeoDataFrame(recs, geometry="geometry", crs=CRS)


def one(row, **kw):
    return classify_samples(soil([row]), **kw).iloc[0]


@pytest.mark.parametrize(
    "landuse, ph, cd, expected",
    [
        ("paddy", 6.5, 0.4, 1),     # exactly the screening value -> class 1
        ("paddy", 6.5, 0.41, 2),
        ("paddy", 6.5, 2.0, 2),     # exactly the intervention value -> class 2
        ("paddy", 6.5, 2.01, 3),
        ("paddy", 5.5, 0.35, 2),    # pH 5.5 belongs to b0 (S = 0.3)
        ("paddy", 5.51, 0.35, 1),   # b1 (S = 0.4)
        ("paddy", 7.5, 0.7, 2),     # pH 7.5 belongs to b2 (S = 0.6)
        ("paddy", 7.51, 0.7, 1),    # b3 (S = 0.8)
        ("paddy", 5.5, 1.5, 2),     # b0 intervention 1.5 exactly
        ("paddy", 5.5, 1.51, 3),
        ("paddy", 7.5, 3.0, 2),     # b2 intervention 3.0
        ("paddy", 7.51, 3.5, 2),    # b3 intervention 4.0
        ("dry", 7.0, 0.35, 2),      # other column 0.3
        ("paddy", 7.0, 0.35, 1),    # paddy column 0.6
        ("orchard", 7.0, 0.31, 2),  # orchards use the "other" column for Cd
        ("rotation", 7.0, 0.35, 2), # stricter of paddy 0.6 / other 0.3
        ("irrigated", 8.0, 0.6, 1), # other b3 0.6 exactly
    ],
)
def test_cd_class_at_boundaries(landuse, ph, cd, expected):
    row = one({"landuse": landuse, "ph": ph, "cd": cd})
    assert row["point_class"] == expected
    assert row["class_cd"] == expected


def test_single_factor_index_and_band():
    row = one({"landuse": "paddy", "ph": 6.5, "cd": 0.2})
    assert row["ph_band"] == 1
    assert row["pi_cd"] == pytest.approx(0.5)   # 0.2 / 0.4


@pytest.mark.parametrize(
    "element, landuse, ph, value, expected",
    [
        ("hg", "rotation", 7.0, 0.6, 1),   # stricter: paddy 0.6 (other 2.4)
        ("hg", "rotation", 7.0, 0.61, 2),
        ("hg", "dry", 7.0, 2.4, 1),
        ("hg", "paddy", 8.0, 6.0, 2),      # intervention b3 6.0 exactly
        ("hg", "paddy", 8.0, 6.01, 3),
        ("as", "paddy", 7.0, 25.0, 1),
        ("as", "dry", 7.0, 30.0, 1),
        ("as", "dry", 7.0, 30.5, 2),
        ("as", "dry", 5.0, 200.0, 2),      # intervention b0 200
        ("as", "dry", 5.0, 200.1, 3),
        ("pb", "rotation", 5.0, 70.0, 1),  # stricter: other 70 (paddy 80)
        ("pb", "rotation", 5.0, 71.0, 2),
        ("cr", "paddy", 7.0, 300.0, 1),
        ("cr", "dry", 7.0, 201.0, 2),
        ("cr", "dry", 7.6, 1300.0, 2),
        ("cr", "dry", 7.6, 1301.0, 3),
    ],
)
def test_other_elements(element, landuse, ph, value, expected):
    row = one({"landuse": landuse, "ph": ph, element: value})
    assert row[f"class_{element}"] == expected
    assert row["point_class"] == expected


def test_worst_element_drives():
    row = one({"landuse": "paddy", "ph": 6.0, "cd": 0.5, "as": 160.0})
    # Cd 0.5 > 0.4 -> 2; As 160 > 150 (b1 intervention) -> 3
    assert row["point_class"] == 3
    assert row["driving_element"] == "as"


def test_driving_element_ties_by_larger_index():
    row = one({"landuse": "paddy", "ph": 6.0, "cd": 0.8, "pb": 110.0})
    # both class 2; Pi(cd) = 0.8/0.4 = 2.0 > Pi(pb) = 110/100 = 1.1
    assert row["driving_element"] == "cd"


def test_class1_has_no_driving_element():
    assert one({"landuse": "paddy", "ph": 6.0, "cd": 0.2})["driving_element"] is None


def test_cu_uses_orchard_column_and_only_flags():
    orchard = one({"landuse": "orchard", "ph": 5.0, "cu": 120.0})
    other = one({"landuse": "paddy", "ph": 5.0, "cu": 120.0})
    assert not orchard["exceeds_screening_cu"]        # orchard 150
    assert other["exceeds_screening_cu"]              # other 50
    assert other["pi_cu"] == pytest.approx(2.4)
    assert other["point_class"] == 1                  # flag only


def test_flag_elements_may_raise_class_when_configured(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text("[points]\nflag_elements_raise_class = true\n")
    row = one({"landuse": "paddy", "ph": 5.0, "zn": 250.0}, rules=load_rules(f))
    assert row["exceeds_screening_zn"] and row["point_class"] == 2


def test_missing_ph_is_unusable_not_class1():
    row = one({"landuse": "paddy", "ph": np.nan, "cd": 0.1})
    assert not row["usable"]
    assert pd.isna(row["point_class"])
    assert "missing pH" in row["unusable_reason"]


def test_missing_ph_strictest_band_fallback(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[points]\nmissing_ph = "strictest_band"\n')
    # Cd paddy strictest band: 0.3 -> 0.35 is class 2
    row = one({"landuse": "paddy", "ph": np.nan, "cd": 0.35}, rules=load_rules(f))
    assert row["usable"] and row["point_class"] == 2


def test_missing_metal_is_unusable():
    row = one({"landuse": "paddy", "ph": 6.0, "hg": np.nan})
    assert not row["usable"] and "missing hg" in row["unusable_reason"]


def test_missing_metal_ignored_when_configured(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[points]\nmissing_metal = "ignore"\n')
    row = one({"landuse": "paddy", "ph": 6.0, "hg": np.nan, "cd": 0.5}, rules=load_rules(f))
    assert row["usable"] and row["point_class"] == 2


def test_below_detection_without_number_is_class1_for_that_element():
    row = one({"landuse": "paddy", "ph": 6.0, "hg": np.nan, "hg_censored": True})
    assert row["usable"] and row["class_hg"] == 1 and row["point_class"] == 1


def _paddy_and_two_samples():
    """Parcel A (paddy) around sample S0; S1 lies outside it."""
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["A"], "landuse": ["paddy"]},
        geometry=[box(X0 - 5, Y0 - 5, X0 + 5, Y0 + 5)], crs=CRS)
    return parcels, soil([{"cd": 0.35, "ph": 7.0}, {"cd": 0.35, "ph": 7.0}])


def test_landuse_taken_from_containing_parcel_else_stricter():
    parcels, samples = _paddy_and_two_samples()
    out = classify_samples(samples, parcels=parcels)
    assert out["parcel_id"].iloc[0] == "A" and pd.isna(out["parcel_id"].iloc[1])
    assert list(out["landuse_used"]) == ["paddy", "unknown"]
    assert list(out["point_class"]) == [1, 2]    # paddy 0.6 vs stricter 0.3


def test_a_later_pass_takes_the_parcels_found_before():
    parcels, samples = _paddy_and_two_samples()
    first = classify_samples(samples, parcels=parcels)
    samples["cd"] = [0.5, 0.2]  # a later pass changes values only
    again = classify_samples(samples, parcels=parcels,
                             placed=first[["parcel_id", "landuse_used"]])
    pd.testing.assert_frame_equal(again, classify_samples(samples, parcels=parcels))
    assert list(again["landuse_used"]) == ["paddy", "unknown"]
    assert list(again["point_class"]) == [1, 1]  # paddy 0.5 <= 0.6; stricter 0.2 <= 0.3
    # rows of another frame (another index) are not taken: looked up again
    other = first[["parcel_id", "landuse_used"]].set_axis([5, 6]).assign(landuse_used="dry")
    out = classify_samples(samples, parcels=parcels, placed=other)
    assert list(out["landuse_used"]) == ["paddy", "unknown"]


def test_input_not_modified():
    samples = soil([{"cd": 0.5}])
    before = samples.copy()
    classify_samples(samples)
    pd.testing.assert_frame_equal(samples, before)


def test_a_parcel_classed_by_a_suspect_value_says_so(monkeypatch):
    """镉 = 45 (meant 0.45) is kept for its own parcel's point class under --outliers flag;
    the parcel's qa_flags name it, so the class-3 row does not look like a sound one."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    import farmland.classify.parcels as parcels_module
    from farmland.classify.parcels import finish_rows, suspect_parcels

    samples = pd.DataFrame({"sample_id": ["S1", "S2", "S3"], "parcel_id": ["P1", "P2", None],
                            "usable": [True, True, True], "cd_suspect": [True, False, True],
                            "pb_suspect": [False, False, False]})
    assert suspect_parcels(samples) == {"P1"}
    assert suspect_parcels(samples.drop(columns=["cd_suspect", "pb_suspect"])) == set()
    out = gpd.GeoDataFrame({"parcel_id": ["P1", "P2"], "final_class": [3, 1],
                            "driving_element": ["cd", None],
                            "qa_flags": [["single_point_unit"], []]},
                           geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4545)
    # this frame's own columns, not the full output order
    monkeypatch.setattr(parcels_module, "output_order", lambda units: list(out.columns))
    done = finish_rows(out, samples)
    assert done["qa_flags"].tolist() == ["single_point_unit;suspect_value_inside", ""]
