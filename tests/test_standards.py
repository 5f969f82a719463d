"""Tests of farmland.standards: every number of GB 15618-2018 and GB 2762 as pinned in
/work/shared/domain.md §2-3, the pH band edges, the column rules and table validation."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farmland.errors import StandardError
from farmland.standards import (
    CLASS_ELEMENTS,
    FLAG_ELEMENTS,
    LANDUSES,
    ORGANIC_ITEMS,
    TABLE_FILES,
    landuse_from_dlbm,
    load_standard,
    screening_value,
)
from farmland.standards.loader import DEFAULT_DIR

BAND_MID_PH = (5.0, 6.0, 7.0, 8.0)  # one pH inside each band b0..b3

# --- domain.md §2, literally -------------------------------------------------
SCREENING = [
    ("cd", "paddy", (0.3, 0.4, 0.6, 0.8)),
    ("cd", "other", (0.3, 0.3, 0.3, 0.6)),
    ("hg", "paddy", (0.5, 0.5, 0.6, 1.0)),
    ("hg", "other", (1.3, 1.8, 2.4, 3.4)),
    ("as", "paddy", (30, 30, 25, 20)),
    ("as", "other", (40, 40, 30, 25)),
    ("pb", "paddy", (80, 100, 140, 240)),
    ("pb", "other", (70, 90, 120, 170)),
    ("cr", "paddy", (250, 250, 300, 350)),
    ("cr", "other", (150, 150, 200, 250)),
    ("cu", "orchard", (150, 150, 200, 200)),
    ("cu", "other", (50, 50, 100, 100)),
    ("ni", "all", (60, 70, 100, 190)),
    ("zn", "all", (200, 200, 250, 300)),
]
INTERVENTION = [
    ("cd", (1.5, 2.0, 3.0, 4.0)),
    ("hg", (2.0, 2.5, 4.0, 6.0)),
    ("as", (200, 150, 120, 100)),
    ("pb", (400, 500, 700, 1000)),
    ("cr", (800, 850, 1000, 1300)),
]
ORGANICS = [("hch", 0.10), ("ddt", 0.10), ("bap", 0.55)]
# stricter (lower) of paddy/other, band by band: rotation and unknown land
STRICTER = [
    ("cd", (0.3, 0.3, 0.3, 0.6)),
    ("hg", (0.5, 0.5, 0.6, 1.0)),
    ("as", (30, 30, 25, 20)),
    ("pb", (70, 90, 120, 170)),
    ("cr", (150, 150, 200, 250)),
]
# domain.md §3, GB 2762: crop -> (cd, pb, hg, as, cr), arsenic form
CROP_LIMITS = [
    ("rice", (0.2, 0.2, 0.02, 0.35, 1.0), "inorganic"),
    ("milled_rice", (0.2, 0.2, 0.02, 0.2, 1.0), "inorganic"),
    ("wheat", (0.1, 0.2, 0.02, 0.5, 1.0), "total"),
    ("maize", (0.1, 0.2, 0.02, 0.5, 1.0), "total"),
    ("leafy_veg", (0.2, 0.3, 0.01, 0.5, 0.5), "total"),
    ("root_veg", (0.1, 0.1, 0.01, 0.5, 0.5), "total"),
    ("tuber_veg", (0.1, 0.2, 0.01, 0.5, 0.5), "total"),
    ("other_veg", (0.05, 0.1, 0.01, 0.5, 0.5), "total"),
]
CROP_ELEMENTS = ("cd", "pb", "hg", "as", "cr")
# a land use that selects each GB column
LANDUSE_OF_COLUMN = {"paddy": "paddy", "other": "dry", "orchard": "orchard", "all": "garden"}


def _cells(rows):
    return [(el, col, band, v) for el, col, values in rows for band, v in enumerate(values)]


@pytest.fixture(scope="module")
def std():
    return load_standard()


def tables_copy(tmp_path, file=None, old=None, new=None):
    """A copy of the shipped tables in tmp_path, with ``old`` replaced by ``new`` in ``file``."""
    target = tmp_path / "tables"
    target.mkdir(parents=True)
    for name in TABLE_FILES:
        shutil.copy(DEFAULT_DIR / name, target / name)
    if file is not None:
        path = target / file
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


# --- every cell --------------------------------------------------------------
@pytest.mark.parametrize("element,column,band,expected", _cells(SCREENING))
def test_screening_cell(std, element, column, band, expected):
    assert std.screening[(element, column)][band] == expected
    landuse = LANDUSE_OF_COLUMN[column]
    assert std.screening_value(element, landuse, BAND_MID_PH[band]) == expected
    got = std.screening_values(element, [landuse], [BAND_MID_PH[band]])
    assert got.tolist() == [expected]


def test_screening_table_has_exactly_the_domain_rows(std):
    assert sorted(std.screening) == sorted((el, col) for el, col, _ in SCREENING)


@pytest.mark.parametrize("element,band,expected",
                         [(el, b, v) for el, vals in INTERVENTION for b, v in enumerate(vals)])
def test_intervention_cell(std, element, band, expected):
    assert std.intervention[element][band] == expected
    assert std.intervention_value(element, BAND_MID_PH[band]) == expected
    assert std.intervention_values(element, [BAND_MID_PH[band]]).tolist() == [expected]


@pytest.mark.parametrize("item,expected", ORGANICS)
@pytest.mark.parametrize("landuse", LANDUSES)
def test_organic_items_one_value_any_landuse_any_ph(std, item, expected, landuse):
    assert std.organics[item] == expected
    assert std.gb_column(item, landuse) == "all"
    assert std.screening_value(item, landuse, np.nan) == expected
    assert std.screening_values(item, landuse, [4.0, np.nan]).tolist() == [expected, expected]


def test_organic_items_have_no_intervention_value(std):
    with pytest.raises(StandardError, match="'hch' has no GB 15618-2018 intervention value"):
        std.intervention_value("hch", 7.0)


@pytest.mark.parametrize("crop,limits,form", CROP_LIMITS)
def test_crop_limits(std, crop, limits, form):
    for element, expected in zip(CROP_ELEMENTS, limits):
        assert std.crop_limit(crop, element) == expected
        assert std.crop_limit(crop.upper(), element.upper()) == expected
    assert std.crop_as_form(crop) == form


def test_root_and_tuber_lead_split(std):
    assert std.crop_limit("root_veg", "pb") == 0.1
    assert std.crop_limit("tuber_veg", "pb") == 0.2


@pytest.mark.parametrize("element", FLAG_ELEMENTS + ORGANIC_ITEMS)
def test_crop_limit_none_where_gb2762_sets_none(std, element):
    assert std.crop_limit("rice", element) is None


def test_crop_unknown(std):
    with pytest.raises(StandardError, match="unknown crop 'potato': GB 2762 tables cover rice"):
        std.crop_limit("potato", "cd")
    with pytest.raises(StandardError, match="unknown crop 'soy'"):
        std.crop_as_form("soy")


# --- pH bands ----------------------------------------------------------------
@pytest.mark.parametrize("ph,band", [
    (0.0, 0), (4.0, 0), (5.5, 0), (5.5000001, 1), (6.0, 1), (6.5, 1), (6.5000001, 2),
    (7.0, 2), (7.5, 2), (7.5000001, 3), (8.0, 3), (14.0, 3),
])
def test_ph_band_edges_belong_to_lower_band(std, ph, band):
    assert std.ph_band(ph) == band
    assert std.ph_bands(np.array([ph])).tolist() == [band]


def test_ph_band_definitions(std):
    assert std.band_edges.tolist() == [5.5, 6.5, 7.5]
    assert [(b.name, b.lower, b.upper, b.closed) for b in std.bands] == [
        ("b0", -np.inf, 5.5, "right"), ("b1", 5.5, 6.5, "right"),
        ("b2", 6.5, 7.5, "right"), ("b3", 7.5, np.inf, "right"),
    ]
    assert std.ph_range == (0.0, 14.0)


def test_ph_band_edge_values_pick_lower_band_value(std):
    # Cd paddy: 0.3 | 0.4 | 0.6 | 0.8 — exact edges take the lower band's value
    got = std.screening_values("cd", "paddy", [5.5, 5.5000001, 6.5, 7.5, 7.5000001])
    assert got.tolist() == [0.3, 0.4, 0.4, 0.6, 0.8]
    assert screening_value("Cd", landuse="paddy", ph=6.5) == 0.4


def test_ph_nan(std):
    with pytest.raises(ValueError, match="pH is NaN"):
        std.ph_band(np.nan)
    with pytest.raises(ValueError, match="pH is NaN"):
        std.screening_value("cd", "paddy", float("nan"))
    bands = std.ph_bands([np.nan, 6.0])
    assert bands.dtype == np.int8
    assert bands.tolist() == [-1, 1]


@pytest.mark.parametrize("ph", [-0.1, 14.01])
def test_ph_outside_0_14_rejected(std, ph):
    with pytest.raises(ValueError, match=r"pH outside 0-14: " + str(ph)):
        std.ph_band(ph)
    with pytest.raises(ValueError, match=r"pH outside 0-14: .*\(1 value\(s\)\)"):
        std.ph_bands([7.0, ph, np.nan])


# --- land use -> GB column ---------------------------------------------------
@pytest.mark.parametrize("element", CLASS_ELEMENTS)
def test_gb_column_class_elements(std, element):
    got = {lu: std.gb_column(element, lu) for lu in LANDUSES}
    assert got == {"paddy": "paddy", "irrigated": "other", "dry": "other", "orchard": "other",
                   "garden": "other", "rotation": "stricter", "unknown": "stricter"}


@pytest.mark.parametrize("element,band,expected",
                         [(el, b, v) for el, vals in STRICTER for b, v in enumerate(vals)])
@pytest.mark.parametrize("landuse", ["rotation", "unknown"])
def test_stricter_of_paddy_and_other_per_band(std, element, band, expected, landuse):
    assert std.screening_value(element, landuse, BAND_MID_PH[band]) == expected


@pytest.mark.parametrize("element,ph,expected", [
    ("cd", 7.0, 0.3),   # other, not paddy 0.6
    ("hg", 7.0, 0.6),   # paddy, not other 2.4
    ("as", 7.0, 25),    # paddy, not other 30
    ("pb", 5.0, 70),    # other, not paddy 80
    ("cr", 8.0, 250),   # other, not paddy 350
])
def test_rotation_examples(std, element, ph, expected):
    assert std.screening_value(element, "rotation", ph) == expected


def test_cu_orchard_vs_other(std):
    assert {lu: std.gb_column("cu", lu) for lu in LANDUSES} == {
        "paddy": "other", "irrigated": "other", "dry": "other", "orchard": "orchard",
        "garden": "other", "rotation": "other", "unknown": "stricter"}
    assert std.screening_value("cu", "orchard", 7.0) == 200
    assert std.screening_value("cu", "paddy", 7.0) == 100    # paddy uses "other" for Cu
    assert std.screening_value("cu", "garden", 5.0) == 50
    assert std.screening_value("cu", "unknown", 5.0) == 50   # lower of 150 / 50


@pytest.mark.parametrize("element", ["ni", "zn"])
def test_ni_zn_one_column(std, element):
    assert {std.gb_column(element, lu) for lu in LANDUSES} == {"all"}


def test_element_case_insensitive_and_unknown(std):
    assert std.screening_value(" CD ", "paddy", 8.0) == 0.8
    assert std.gb_column("Pb", "paddy") == "paddy"
    with pytest.raises(StandardError, match=r"unknown element 'Fe': GB 15618-2018 tables cover cd"):
        std.screening_value("Fe", "paddy", 7.0)
    with pytest.raises(StandardError, match="'cu' has no GB 15618-2018 intervention value"):
        std.intervention_values("cu", [7.0])


def test_unknown_landuse_rejected(std):
    with pytest.raises(ValueError, match=r"unknown land use 'forest' \(2 value\(s\)\)"):
        std.screening_values("cd", np.array(["paddy", "forest", "forest"]), 7.0)
    with pytest.raises(ValueError, match="unknown land use 'Paddy'"):
        std.gb_column("cd", "Paddy")


# --- vectorised API ----------------------------------------------------------
def test_screening_values_vectorised(std):
    landuse = np.array(["paddy", "rotation", None, "dry", "orchard", "paddy"], dtype=object)
    ph = np.array([7.0, 7.0, 7.0, np.nan, 8.0, 5.5])
    got = std.screening_values("cd", landuse, ph)
    assert got.dtype == np.float64
    # None land use counts as unknown (stricter); NaN pH gives NaN
    np.testing.assert_array_equal(got, [0.6, 0.3, 0.3, np.nan, 0.6, 0.3])
    got[0] = 99.0  # result is a fresh, writeable array
    assert std.screening_value("cd", "paddy", 7.0) == 0.6


def test_screening_values_broadcast_scalar_landuse(std):
    got = std.screening_values("pb", "dry", np.array([[5.0, 6.0], [7.0, np.nan]]))
    np.testing.assert_array_equal(got, [[70, 90], [120, np.nan]])


def test_vectorised_accepts_pandas_inputs_and_scalar_ph(std):
    landuse = pd.Series(["paddy", None, "dry"], dtype="str")
    ph = pd.Series([7.0, 7.0, None], dtype="Float64")  # <NA> pH -> NaN value
    np.testing.assert_array_equal(std.screening_values("cd", landuse, ph), [0.6, 0.3, np.nan])
    got = std.screening_values("cd", landuse.astype("category"), 8.0)
    np.testing.assert_array_equal(got, [0.8, 0.6, 0.6])
    assert std.ph_bands(np.nan).tolist() == -1
    assert std.ph_bands(6.0).tolist() == 1


def test_intervention_values_vectorised(std):
    got = std.intervention_values("as", np.array([5.5, 6.5, 7.5, 7.6, np.nan]))
    np.testing.assert_array_equal(got, [200, 150, 120, 100, np.nan])


@settings(max_examples=60, deadline=None)
@given(
    element=st.sampled_from(CLASS_ELEMENTS + FLAG_ELEMENTS),
    cells=st.lists(st.tuples(st.sampled_from(LANDUSES), st.floats(0, 14)), min_size=1,
                   max_size=20),
)
def test_vectorised_matches_scalar(std, element, cells):
    landuse, ph = zip(*cells)
    got = std.screening_values(element, np.array(landuse, dtype=object), np.array(ph))
    assert got.tolist() == [std.screening_value(element, lu, p) for lu, p in cells]


def test_vectorised_million_values_fast(std):
    rng = np.random.default_rng(0)
    n = 1_000_000
    ph = rng.uniform(3.0, 9.0, n)
    ph[::7] = np.nan
    landuse = np.array(LANDUSES, dtype=object)[rng.integers(0, len(LANDUSES), n)]
    start = time.perf_counter()
    got = std.screening_values("cd", landuse, ph)
    elapsed = time.perf_counter() - start
    assert np.isnan(got).sum() == np.isnan(ph).sum()
    assert elapsed < 2.0  # ~0.1 s measured; a per-value Python loop takes several seconds


# --- landuse_from_dlbm ----------------------------------------------------------
@pytest.mark.parametrize("dlbm,expected", [
    ("0101", "paddy"), ("0102", "irrigated"), ("0103", "dry"), ("0201", "orchard"),
    ("0202", "garden"), ("0204", "garden"), ("101", "paddy"), (101, "paddy"),
    (101.0, "paddy"), (np.int64(103), "dry"), (201, "orchard"), (203, "garden"),
    (" 0102 ", "irrigated"), (None, "unknown"), ("", "unknown"), (float("nan"), "unknown"),
    ("0301", "unknown"), ("1001", "unknown"), ("01011", "unknown"), ("02ab", "unknown"),
    ("paddy", "unknown"), (101.5, "unknown"), (True, "unknown"),
])
def test_landuse_from_dlbm(dlbm, expected):
    assert landuse_from_dlbm(dlbm) == expected


# --- loading, caching, immutability, fingerprint ---------------------------------
def test_metadata(std):
    assert std.units == "mg/kg"
    assert std.name == "GB 15618-2018 / GB 2762-2022"
    assert std.version == "1.1"
    assert std.standards["gb15618"]["code"] == "GB 15618-2018"
    assert std.standards["gb2762"]["code"] == "GB 2762-2022"
    assert std.manifest()["fingerprint"] == std.fingerprint


def test_load_is_cached(std, tmp_path):
    assert load_standard() is std
    assert load_standard(DEFAULT_DIR) is std
    copy = tables_copy(tmp_path)
    assert load_standard(copy) is load_standard(str(copy))
    assert load_standard(copy) is not std


def test_fingerprint(std, tmp_path):
    digest = hashlib.sha256()
    for name in TABLE_FILES:
        digest.update(name.encode() + b"\0" + (DEFAULT_DIR / name).read_bytes())
    assert std.fingerprint == digest.hexdigest()
    assert load_standard(tables_copy(tmp_path / "same")).fingerprint == std.fingerprint
    changed = tables_copy(tmp_path / "changed", "metadata.toml", 'version = "1.1"',
                          'version = "1.2"')
    assert load_standard(changed).fingerprint != std.fingerprint


def test_standard_is_immutable(std):
    with pytest.raises(dataclasses.FrozenInstanceError):
        std.name = "other"
    with pytest.raises(TypeError):
        std.screening[("cd", "paddy")] = (1.0, 1.0, 1.0, 1.0)
    with pytest.raises(TypeError):
        std.standards["gb15618"]["code"] = "x"
    with pytest.raises(ValueError, match="read-only"):
        std.band_edges[0] = 6.0


# --- validation of broken tables --------------------------------------------------
BROKEN = [
    ("screening.csv", "zn,all,", "fe,all,", r"screening\.csv line 15: unknown element 'fe'"),
    ("screening.csv", "cd,other,", "cd,dryland,",
     r"screening\.csv line 3: unknown column 'dryland' \(known: paddy, other, orchard, all\)"),
    ("screening.csv", "cd,paddy,0.3,0.4,0.6,", "cd,paddy,0.3,0.4,,",
     r"screening\.csv line 2: cd paddy b2: value missing"),
    ("screening.csv", "hg,other,1.3,", "hg,other,-1.3,",
     r"screening\.csv line 5: hg other b0: '-1.3' must be a positive number"),
    ("screening.csv", "ni,all,60,", "ni,all,sixty,",
     r"screening\.csv line 14: ni all b0: 'sixty' is not a number"),
    ("screening.csv", "pb,other,70,90,120,170\n", "",
     r"screening\.csv: no row for element 'pb' column 'other'"),
    ("screening.csv", "cr,other,", "cr,paddy,",
     r"screening\.csv line 11: duplicate row \('cr', 'paddy'\) \(first at line 10\)"),
    ("screening.csv", "as,paddy,30,30,25,20", "as,paddy,30,30,25",
     r"screening\.csv line 6: 5 fields; expected 6"),
    ("screening.csv", "element,column,b0", "element,col,b0", r"screening\.csv line 1: header"),
    ("intervention.csv", "cd,1.5,", "cd,0.3,",
     r"intervention\.csv: cd b0: intervention value 0\.3 is not above the screening value 0\.3"),
    ("intervention.csv", "cr,800,", "cu,800,",
     r"intervention\.csv line 6: unknown element 'cu' \(known: cd, hg, as, pb, cr\)"),
    ("organics.csv", "bap,0.55", "bap,0", r"organics\.csv line 4: bap: '0' must be a positive"),
    ("organics.csv", "ddt,", "dde,", r"organics\.csv: no row for item 'ddt'"),
    ("landuse_columns.csv", "cd,paddy,other,other,other,other,stricter",
     "cd,paddy,other,other,other,other,strict",
     r"landuse_columns\.csv line 2: unknown column for cd/rotation 'strict'"),
    ("landuse_columns.csv", "hch,all,all,all,all,all,all,all", "hch,all,all,all,all,all,all,paddy",
     r"organic items use column 'all' only"),
    ("landuse_columns.csv", "ni,all,all,all,all,all,all,all", "ni,all,all,all,orchard,all,all,all",
     r"screening\.csv: no row for element 'ni' column 'orchard'"),
    ("crop_limits.csv", "0.35,inorganic", "0.35,organic",
     r"crop_limits\.csv line 2: unknown arsenic form 'organic' \(known: inorganic, total\)"),
    ("crop_limits.csv", "maize,", "corn,",
     r"crop_limits\.csv line 5: unknown crop 'corn'"),
    ("metadata.toml", "lower = 5.5\nupper = 6.5", "lower = 5.6\nupper = 6.5",
     r"metadata\.toml: pH bands b0 and b1 are not contiguous: b0 ends at 5\.5, b1 starts at 5\.6"),
    ("metadata.toml", '\nclosed = "right"', '\nclosed = "left"',
     r"metadata\.toml: pH band b0: closed = 'left'; only 'right'"),
    ("metadata.toml", "lower = 6.5\nupper = 7.5", "lower = 6.5\nupper = 6.0",
     r"pH band b2: lower 6\.5 is not below upper 6\.0"),
    ("metadata.toml", 'name = "b3"', 'name = "b4"', r"pH band 3 is named 'b4'; expected 'b3'"),
    ("metadata.toml", "upper = inf", "upper = 14.0", r"pH bands must start at -inf and end at inf"),
    ("metadata.toml", "[ph]", "[ph", r"metadata\.toml: not valid TOML"),
]


@pytest.mark.parametrize("file,old,new,message", BROKEN,
                         ids=[f"{b[0]}:{i}" for i, b in enumerate(BROKEN)])
def test_broken_tables_rejected(tmp_path, file, old, new, message):
    broken = tables_copy(tmp_path, file, old, new)
    with pytest.raises(StandardError, match=f"(?s){message}"):
        load_standard(broken)


def test_a_table_without_a_newer_crop_category_still_loads(tmp_path, caplog):
    # a custom table copied before peanuts were added: peanut samples are left ungraded
    table = tables_copy(tmp_path, "crop_limits.csv", "maize,", "maize,")
    text = (table / "crop_limits.csv").read_text(encoding="utf-8")
    rows = [r for r in text.splitlines() if not r.startswith("peanut,")]
    (table / "crop_limits.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        std = load_standard(table)
    assert "no row for crop(s) peanut" in caplog.text
    assert std.crop_as_form("maize") == "total"


def test_all_problems_reported_at_once_with_directory(tmp_path):
    broken = tables_copy(tmp_path, "screening.csv", "cd,paddy,0.3,", "cd,paddy,x,")
    text = (broken / "screening.csv").read_text(encoding="utf-8").replace("zn,all", "fe,all")
    (broken / "screening.csv").write_text(text, encoding="utf-8")
    with pytest.raises(StandardError) as info:
        load_standard(broken)
    message = str(info.value)
    assert f"standards tables in {broken} are invalid (2 problem(s))" in message
    assert "screening.csv line 2: cd paddy b0: 'x' is not a number" in message
    assert "screening.csv line 15: unknown element 'fe'" in message


def test_missing_table_file(tmp_path):
    broken = tables_copy(tmp_path)
    (broken / "organics.csv").unlink()
    with pytest.raises(StandardError, match=r"organics\.csv: standards table missing"):
        load_standard(broken)


def test_blank_crop_cell_means_no_limit(tmp_path):
    edited = tables_copy(tmp_path, "crop_limits.csv", "other_veg,0.05,0.1,0.01,0.5,total,0.5",
                         "other_veg,0.05,0.1,0.01,0.5,total,")
    assert load_standard(edited).crop_limit("other_veg", "cr") is None
