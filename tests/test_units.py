"""Evaluation units (评价单元, issue 14 item 5): the point majority, the 80 % / 50 % checks
and the crop adjustment over a unit's parcels; parcels stay the reporting grain.

Every scene is a row of 100 m squares P0, P1 … along x (EPSG:4545), one soil sample at the
centre of a parcel unless said otherwise. Paddy and dry land at pH 6.0 (band b1): Cd
screening value 0.4 (paddy) / 0.3 (other), intervention value 2.0, so Cd 0.2 is class 1,
0.8 class 2 and 2.5 class 3 on both; the other metals are class 1.
"""

from __future__ import annotations

import json
import logging

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import CRS, X0, Y0, make_parcels, make_points, make_samples, run_cli
from test_parcels import Nearest

from farmland.classify.parcels import classify_parcels
from farmland.classify.units import evaluation_units
from farmland.errors import CRSError, InputError
from farmland.rules import load_rules

CD = {1: 0.2, 2: 0.8, 3: 2.5}
#: columns a test reads back (the rest are the interpolation's)
SHOWN = ["parcel_id", "final_class", "rule", "n_samples", "sample_ids", "qa_flags"]


def village(landuse=("paddy", "paddy", "paddy", "dry"), **columns):
    """Parcels P0… of village V1 in township T1, 100 m squares along x."""
    dlbm = {"paddy": "0101", "dry": "0103"}
    columns = {"village": "V1", "landuse": list(landuse), "dlbm": [dlbm[u] for u in landuse],
               **columns}
    return make_parcels(n=len(landuse), **columns)


def soil(classes, at=None):
    """One sample of each class at the centre of P0, P1 … (or at ``at``, m from the origin)."""
    at = at or [(100 * i + 50, 50) for i in range(len(classes))]
    return make_samples(at, cd=[CD[c] for c in classes])


def run(parcels, samples, **kw):
    kw.setdefault("interpolator", lambda _variable: Nearest())
    out, _, crops = classify_parcels(parcels, samples, **kw)
    return out, crops


def rows(out):
    return out[SHOWN].to_dict("records")


# ------------------------------------------------------------------ village × land use
def test_village_paddy_unit_takes_the_majority_and_flags_the_80pct_check():
    out, _ = run(village(), soil([1, 2, 2, 1]), units="village")
    # paddy unit: points 1, 2, 2 -> majority 2; own-class share 2/3 = 67 % < 80 % -> flagged
    paddy = {"final_class": 2, "rule": "points:majority", "n_samples": 3,
             "sample_ids": "S0,S1,S2", "qa_flags": "own_class_points_below_80pct"}
    assert rows(out) == [
        {"parcel_id": "P0", **paddy}, {"parcel_id": "P1", **paddy}, {"parcel_id": "P2", **paddy},
        # the dry parcel of the same village is a unit of its own: its one class-1 point
        {"parcel_id": "P3", "final_class": 1, "rule": "points:majority", "n_samples": 1,
         "sample_ids": "S3", "qa_flags": "single_point_unit"}]
    assert out["unit_id"].tolist() == ["T1/V1/paddy"] * 3 + ["T1/V1/dry"]
    assert out["driving_element"].tolist() == ["cd", "cd", "cd", None]


def test_own_class_share_of_exactly_80pct_passes_the_check():
    # the paddy unit holds 1, 2, 2, 2, 2 (two samples in P0): 4 of 5 = 80 % is not below 80 %
    s = soil([1, 2, 2, 2, 2], at=[(30, 50), (70, 50), (150, 50), (250, 50), (260, 50)])
    out, _ = run(village(("paddy", "paddy", "paddy")), s, units="village")
    assert out["final_class"].tolist() == [2, 2, 2]
    assert out["qa_flags"].tolist() == ["", "", ""]
    assert out["n_samples"].tolist() == [5, 5, 5]


def test_one_class3_point_makes_the_whole_unit_class3():
    out, _ = run(village(), soil([1, 1, 3, 1]), units="village")
    # strict override; own-class share 1/3 = 33 % < 50 % -> flagged on every parcel
    assert out["final_class"].tolist() == [3, 3, 3, 1]
    assert out["rule"].tolist() == ["points:strict_override"] * 3 + ["points:majority"]
    assert out["qa_flags"].tolist() == ["own_class_points_below_50pct"] * 3 + [
        "single_point_unit"]
    assert out["driving_element"].tolist()[:3] == ["cd", "cd", "cd"]


def test_class1_unit_holding_a_class2_point_is_flagged_on_every_parcel():
    out, _ = run(village(("paddy", "paddy", "paddy")), soil([1, 1, 2]), units="village")
    assert out["final_class"].tolist() == [1, 1, 1]
    assert out["qa_flags"].tolist() == ["class1_with_class2_point"] * 3


def test_parcel_without_a_sample_takes_its_units_class_and_a_unit_without_goes_on():
    # samples only in P0 and P1 (class 2, 2); P2 (paddy, no sample) joins their unit;
    # the dry P3 has no sample and no unit sample: interpolated as before (nearest: S1, class 2
    # on dry land too)
    out, _ = run(village(), soil([2, 2]), units="village")
    assert out["final_class"].tolist() == [2, 2, 2, 2]
    assert out["rule"].tolist() == ["points:majority"] * 3 + ["interpolated:area_majority"]
    assert out["n_samples"].tolist() == [2, 2, 2, 0]
    assert out["unit_id"].tolist()[3] == "T1/V1/dry"


def test_parcel_units_give_exactly_todays_result():
    p, s = village(), soil([1, 2, 2, 1])
    today, _ = run(p, s)
    for units in ("parcel", None):
        same, _ = run(p, s, units=units)
        pd.testing.assert_frame_equal(same, today)
    assert "unit_id" not in today
    assert today["final_class"].tolist() == [1, 2, 2, 1]
    assert today["qa_flags"].tolist() == ["single_point_unit"] * 4


def test_township_units_join_villages_but_not_land_uses():
    p = village(("paddy", "paddy", "dry"), village=["V1", "V2", "V2"])
    out, _ = run(p, soil([2, 2, 1]), units="township")
    assert out["unit_id"].tolist() == ["T1/paddy", "T1/paddy", "T1/dry"]
    assert out["n_samples"].tolist() == [2, 2, 1]
    by_village = evaluation_units(p, "village")
    assert by_village.tolist() == ["T1/V1/paddy", "T1/V2/paddy", "T1/V2/dry"]


def test_parcels_without_a_village_or_land_use_are_their_own_unit(caplog):
    p = village(("paddy", "paddy", "paddy"), village=["V1", None, "V1"])
    p.loc[2, "landuse"] = "unknown"
    with caplog.at_level(logging.WARNING):
        ids = evaluation_units(p, "village")
    assert ids.tolist() == ["T1/V1/paddy", "P1", "P2"]
    assert ids.attrs == {"kind": "village", "alone": 2, "units": 3}
    assert "2 parcel(s) without a village name or with unknown land use" in caplog.text
    with pytest.raises(InputError, match=r"--units village: no parcel has a village name.*"
                                         r"Fix: give the parcels' ZLDWMC"):
        evaluation_units(make_parcels(n=2), "village")


# --------------------------------------------------------------------------- crops
def crops(points):
    """points: (x, y, crop, cd) in metres from the origin, year 2023."""
    x, y, crop, cd = zip(*points, strict=True)
    return make_points(list(zip(x, y, strict=True)), sample_id=[f"C{i}" for i in range(len(x))],
                       crop=list(crop), cd=list(cd), year=2023)


def test_crop_adjustment_at_village_unit():
    # soil: the paddy unit is class 2 (points 2, 2, 2); one compliant rice sample (Cd 0.1 <=
    # 0.2) in each paddy parcel: 3 samples in the unit, one year of data -> 2 -> 1 everywhere.
    # Parcel by parcel each has 1 sample (< min_samples_lower 3): all stay class 2.
    p, s = village(), soil([2, 2, 2, 1])
    c = crops([(40, 40, "rice", 0.1), (140, 40, "rice", 0.1), (240, 40, "rice", 0.1)])
    out, graded = run(p, s, crops=c, units="village")
    assert out["final_class"].tolist() == [1, 1, 1, 1]
    assert out["rule"].tolist()[:3] == ["points:majority;crops:2->1"] * 3
    assert out["n_crops"].tolist() == [3, 3, 3, 0]
    assert graded["unit"].tolist() == ["T1/V1/paddy"] * 3
    alone, _ = run(p, s, crops=c)
    assert alone["final_class"].tolist() == [2, 2, 2, 1]
    assert alone["n_crops"].tolist() == [1, 1, 1, 0]


def test_a_crop_unit_named_in_the_rules_wins(tmp_path):
    # [crops] unit = "township": the dry parcel's maize (Cd 0.3 > 2 x 0.1, grade 3) is in the
    # same crop unit as the paddy parcels' rice: no 2 -> 1; the dry class 1 is raised 1 -> 2
    rules = tmp_path / "rules.toml"
    rules.write_text('[crops]\nunit = "township"\n', encoding="utf-8")
    p, s = village(), soil([2, 2, 2, 1])
    c = crops([(40, 40, "rice", 0.1), (140, 40, "rice", 0.1), (240, 40, "rice", 0.1),
               (340, 40, "maize", 0.3)])
    out, graded = run(p, s, crops=c, units="village", rules=load_rules(rules))
    assert out["final_class"].tolist() == [2, 2, 2, 2]
    assert out["rule"].tolist()[3] == "points:majority;crops:1->2"
    assert out["n_crops"].tolist() == [4, 4, 4, 4]
    assert graded["unit"].tolist() == ["T1"] * 4


# ---------------------------------------------------------------------- units files
def test_polygon_units_file(tmp_path, caplog):
    # U1 holds P0, P1; U2 holds P2 (paddy) and P3 (dry); P4 lies outside every unit
    p = village(("paddy", "paddy", "paddy", "dry", "paddy"))
    units = gpd.GeoDataFrame({"评价单元编号": ["U1", "U2"]},
                             geometry=[shapely.box(X0, Y0, X0 + 200, Y0 + 100),
                                       shapely.box(X0 + 200, Y0, X0 + 400, Y0 + 100)], crs=CRS)
    units.to_file(tmp_path / "units.gpkg", layer="units")
    with caplog.at_level(logging.WARNING):
        out, _ = run(p, soil([1, 2, 3, 1, 1]), units=tmp_path / "units.gpkg")
    assert out["unit_id"].tolist() == ["U1", "U1", "U2", "U2", "P4"]
    # U1: points 1, 2 -> tie to the stricter, 2 (own share 50 % < 80 %); U2: 3, 1 -> strict
    # override (own share 50 % is not below 50 %); P4 alone with its class-1 point
    assert out["final_class"].tolist() == [2, 2, 3, 3, 1]
    assert out["qa_flags"].tolist() == ["own_class_points_below_80pct"] * 2 + [""] * 2 + [
        "single_point_unit"]
    assert "1 parcel(s) lie outside every unit polygon and are each their own unit: P4" in (
        caplog.text)
    assert "1 evaluation unit(s) mix paddy with other farmland" in caplog.text


def test_table_units_file_with_a_missing_and_an_unknown_parcel(tmp_path, caplog):
    table = tmp_path / "units.csv"
    pd.DataFrame({"图斑编号": ["P0", "P1", "P3", "P9"], "评价单元编号": ["A", "A", "B", "A"]}).to_csv(
        table, index=False, encoding="utf-8-sig")
    p = village(("paddy", "paddy", "paddy", "paddy"))
    with caplog.at_level(logging.WARNING):
        out, _ = run(p, soil([2, 3, 1, 1]), units=table)
    assert out["unit_id"].tolist() == ["A", "A", "P2", "B"]
    assert out["final_class"].tolist() == [3, 3, 1, 1]
    assert out["n_samples"].tolist() == [2, 2, 1, 1]
    assert "1 parcel id(s) of the units table are not in the parcels and are ignored: P9" in (
        caplog.text)
    assert "1 parcel(s) are not in the units table and are each their own unit: P2" in (
        caplog.text)


def test_a_parcel_alone_never_joins_a_unit_named_like_it(tmp_path):
    table = pd.DataFrame({"parcel_id": ["P0", "P1"], "unit_id": ["P2", "P2"]})
    ids = evaluation_units(village(("paddy",) * 3), table)
    assert ids.tolist() == ["P2", "P2", "parcel:P2"]


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_bad_units_inputs_are_refused_naming_file_and_column(tmp_path):
    p = village(("paddy", "paddy"))
    with pytest.raises(InputError, match=r"unknown evaluation unit.*\(got 'vilage'\)\. Fix: use "
                                         r"--units parcel, village or township"):
        evaluation_units(p, "vilage")
    no_unit = tmp_path / "no_unit.csv"
    pd.DataFrame({"图斑编号": ["P0"], "备注": ["x"]}).to_csv(no_unit, index=False)
    with pytest.raises(InputError, match=r"no_unit\.csv, column 'unit_id': missing required "
                                         r"column\(s\) unit_id .*评价单元编号"):
        evaluation_units(p, no_unit)
    twice = tmp_path / "twice.csv"
    pd.DataFrame({"BSM": ["P0", "P0"], "unit": ["A", "B"]}).to_csv(twice, index=False)
    with pytest.raises(InputError, match=r"row/id P0 \(A and B\), column 'BSM': a parcel is "
                                         r"listed in more than one evaluation unit"):
        evaluation_units(p, twice)
    bare = gpd.GeoDataFrame({"DYBH": ["U1"]}, geometry=[shapely.box(X0, Y0, X0 + 200, Y0 + 100)])
    bare.to_file(tmp_path / "bare.shp")
    with pytest.raises(CRSError, match=r"bare\.shp: no coordinate reference system"):
        evaluation_units(p, tmp_path / "bare.shp")
    points = gpd.GeoDataFrame({"DYBH": ["U1"]}, geometry=[shapely.Point(X0, Y0)], crs=CRS)
    with pytest.raises(InputError, match=r"evaluation units must be polygons"):
        evaluation_units(p, points)


# ----------------------------------------------------------------------------- CLI
@pytest.fixture
def county(tmp_path):
    """Four parcels of village V1 (P0–P2 paddy, P3 dry) and their samples, as files."""
    p = village().rename(columns={"parcel_id": "BSM", "dlbm": "DLBM", "township": "XZQMC",
                                  "village": "ZLDWMC"}).drop(columns=["landuse", "area_mu"])
    p.to_file(tmp_path / "parcels.gpkg", layer="DLTB")
    s = soil([1, 2, 2, 1]).rename(columns={"sample_id": "样品编号", "ph": "pH", "cd": "镉",
                                           "hg": "汞", "as": "砷", "pb": "铅", "cr": "铬"})
    s.to_file(tmp_path / "samples.gpkg")
    return tmp_path


def classify(county, out, *extra):
    result = run_cli("-q", "classify", "--parcels", county / "parcels.gpkg", "--samples",
                     county / "samples.gpkg", "--interpolator", "idw", "-o", county / out,
                     *extra)
    return result


def _parcels(run):
    return pyogrio.read_dataframe(run / "classification.gpkg", layer="parcels")


def _manifest(run):
    data = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    data.pop("created")
    return data


def test_cli_units_parcel_is_todays_run_and_village_adds_unit_id(county):
    for out, extra in (("default", ()), ("parcel", ("--units", "parcel")),
                       ("village", ("--units", "village"))):
        assert classify(county, out, *extra).exit_code == 0
    default, parcel, by_village = (county / n for n in ("default", "parcel", "village"))
    pd.testing.assert_frame_equal(_parcels(parcel), _parcels(default))
    assert _manifest(parcel) == _manifest(default)
    assert "units" not in _manifest(default)["parameters"]
    table = _parcels(by_village)
    assert table["unit_id"].tolist() == ["T1/V1/paddy"] * 3 + ["T1/V1/dry"]
    assert table["final_class"].tolist() == [2, 2, 2, 1]
    manifest = _manifest(by_village)
    assert manifest["parameters"]["units"] == "village"
    assert manifest["counts"]["evaluation_units"] == 2
    assert manifest["counts"]["parcels_alone"] == 0


def test_cli_units_table_is_hashed_in_the_manifest(county):
    table = county / "units.csv"
    pd.DataFrame({"BSM": ["P0", "P1", "P2", "P3"], "评价单元": ["A", "A", "A", "A"]}).to_csv(
        table, index=False, encoding="utf-8-sig")
    assert classify(county, "file", "--units", table).exit_code == 0
    manifest = _manifest(county / "file")
    assert manifest["parameters"]["units"] == "file"
    assert [i["path"] for i in manifest["inputs"]["units"]] == ["../units.csv"]
    assert _parcels(county / "file")["unit_id"].tolist() == ["A"] * 4


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
@pytest.mark.parametrize("units, message", [
    ("vilage", ("column '--units': unknown evaluation unit: neither parcel, village, township "
                "nor an existing units file (got 'vilage'). Fix: use --units parcel, village or "
                "township, or the path of a units file")),
    ("no_unit.csv", "no_unit.csv, column 'unit_id': missing required column(s) unit_id"),
    ("bare.shp", "bare.shp: no coordinate reference system (CRS) declared"),
])
def test_cli_bad_units_exit_2_with_one_line(county, units, message):
    pd.DataFrame({"BSM": ["P0"], "备注": ["x"]}).to_csv(county / "no_unit.csv", index=False)
    gpd.GeoDataFrame({"DYBH": ["U1"]}, geometry=[shapely.box(X0, Y0, X0 + 9, Y0 + 9)]).to_file(
        county / "bare.shp")
    result = classify(county, "bad", "--units", county / units if units != "vilage" else units)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert message in line


# -------------------------------------------------------------------------- config
def test_run_config_units(tmp_path, county):
    from farmland.cli.config import load_config
    from farmland.cli.steps import step_commands

    (tmp_path / "units.csv").write_text("BSM,unit\nP0,A\n", encoding="utf-8")

    def config(units):
        path = tmp_path / "job.toml"
        path.write_text(f'[project]\nyear = 2023\n[inputs]\nparcels = "parcels.gpkg"\n'
                        f'soil_samples = "samples.gpkg"\n[classify]\nunits = "{units}"\n',
                        encoding="utf-8")
        return load_config(path)

    def argv(units):
        [(_, args)] = step_commands("classify", config(units))
        return args

    assert "--units" not in argv("parcel")
    assert argv("village")[argv("village").index("--units") + 1] == "village"
    assert config("units.csv")["classify"]["units"] == str(tmp_path / "units.csv")
    with pytest.raises(InputError, match=r"'classify\.units': file not found: .*vilage\. Fix: "
                                         r"use \"parcel\", \"village\", \"township\" or the path"):
        config("vilage")


# --------------------------------------------------------------------------- dask
@pytest.mark.parametrize("crop_unit", ["parcel", "township"])
def test_distributed_run_keeps_units_whole(tmp_path, crop_unit):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    from farmland.classify.distributed import classify_parcels_distributed

    # 6 paddy parcels, villages V1 (P0-P2) and V2 (P3-P5), 150 m partition cells: a unit
    # spans two cells and goes to the cell of its mean point, so the class-3 point in P5
    # still reaches P3; with [crops] unit = "township" both villages go to one partition
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[crops]\nunit = "{crop_unit}"\n', encoding="utf-8")
    p = village(("paddy",) * 6, village=["V1"] * 3 + ["V2"] * 3)
    s = soil([1, 1, 1, 1, 1, 3])
    c = crops([(40, 40, "rice", 0.1), (540, 40, "rice", 0.1)])
    kw = {"crops": c, "interpolator": "idw", "units": "village", "rules": load_rules(rules)}
    single, _, graded = classify_parcels(p, s, **kw)
    spread, _, graded_spread = classify_parcels_distributed(p, s, partition_size=150.0, **kw)
    pd.testing.assert_frame_equal(spread, single)
    pd.testing.assert_frame_equal(graded_spread, graded)
    assert single["final_class"].tolist() == [1, 1, 1, 3, 3, 3]
