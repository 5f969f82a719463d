"""Run-history workspace: append-only, atomic, geometry de-duplication, round trips."""

from __future__ import annotations

import hashlib
import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import CRS, X0, Y0

from farmland.errors import CRSError, FarmlandError, InputError
from farmland.rate.accounting import safe_utilisation_rate
from farmland.runs import workspace as ws_module
from farmland.runs.folder import open_run, read_classification
from farmland.runs.workspace import Workspace


def run_parcels(classes=(2, 3, None, 1)):
    """Four 50 m squares (3.75 亩 each) in EPSG:4545, P2 a MultiPolygon (also test_cli_runs.py)."""
    boxes = [shapely.box(X0 + 100 * i, Y0, X0 + 50 + 100 * i, Y0 + 50)
             for i in range(4)]
    boxes[1] = shapely.MultiPolygon([boxes[1]])
    return gpd.GeoDataFrame({
        "parcel_id": ["P1", "P2", "P3", "P4"], "township": ["东乡", "东乡", "西乡", "西乡"],
        "landuse": ["paddy", "dry", "paddy", "orchard"], "area_mu": [3.75, 3.75, 3.75, 3.75],
        "soil_class": pd.array([2, 3, None, 1], dtype="Int8"),
        "final_class": pd.array(list(classes), dtype="Int8"),
        "rule": ["points:majority", "points:strict_override", "unclassified:too_far",
                 "interpolated:area_majority"],
        "driving_element": ["cd", "cd", None, None], "sample_ids": ["S1", "S2,S3", "", "S4"],
        "qa_flags": ["", "single_point_unit", "", ""], "share_1": 0.5,
    }, geometry=boxes, crs=CRS)


def run_crops():
    return pd.DataFrame({"sample_id": ["C1", "C2"], "parcel_id": ["P1", None],
                         "year": [2023, 2023], "exceeds": pd.array([False, None], dtype="boolean"),
                         "crop": ["rice", "wheat"], "cd": [0.1, 0.3]})


MANIFEST = {"rules": {"name": "county_practice", "sha256": "ab12"}, "seed": 0,
            "inputs": [{"path": "村界.shp", "sha256": "cd34"}], "version": "0.1.0"}


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def n_features(path, layer):
    return pyogrio.read_info(path, layer=layer)["features"]


def test_add_and_load_round_trip(tmp_path):
    ws = Workspace(tmp_path / "runs.gpkg")
    assert ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST, label="首轮") == "R0001"
    parcels, crops, manifest = ws.load_run("R0001")
    assert manifest == MANIFEST
    original = run_parcels()
    assert parcels["parcel_id"].tolist() == ["P1", "P2", "P3", "P4"]
    assert parcels["final_class"].dtype == "Int8"
    assert parcels["final_class"].tolist()[:2] == [2, 3] and pd.isna(parcels["final_class"][2])
    assert parcels["sample_ids"].tolist()[:2] == ["S1", "S2,S3"]
    assert parcels.crs == CRS
    assert all(shapely.equals_exact(parcels.geometry.values, original.geometry.values, 0))
    assert parcels.geometry.iloc[1].geom_type == "MultiPolygon"
    assert "share_1" not in parcels.columns        # only the listed run columns are kept
    assert crops["sample_id"].tolist() == ["C1", "C2"]
    assert crops["exceeds"].dtype == "boolean"
    assert not crops["exceeds"][0] and pd.isna(crops["exceeds"][1])
    runs = ws.runs()
    assert runs.loc[0, "label"] == "首轮"
    # class areas: P1 class 2, P2 class 3, P3 unclassified, P4 class 1 -> 3.75 亩 each
    assert runs.loc[0, ["class1_mu", "class2_mu", "class3_mu", "unclassified_mu",
                        "total_mu"]].tolist() == [3.75, 3.75, 3.75, 3.75, 15.0]
    assert json.loads(runs.loc[0, "manifest"])["inputs"][0]["path"] == "村界.shp"


def test_append_only_and_geometry_dedup(tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST)
    first_parcels, first_crops, _ = ws.load_run("R0001")
    first_row = ws.runs().iloc[0]
    assert n_features(path, "geometries") == 4
    # run 2: classes change, geometries identical -> no new geometry stored
    assert ws.add_run(run_parcels(classes=(1, 3, 2, 1)), manifest={"seed": 1}) == "R0002"
    assert n_features(path, "geometries") == 4
    # run 3: one parcel reshaped -> exactly one new geometry
    third = run_parcels()
    third.loc[0, "geometry"] = shapely.box(X0, Y0, X0 + 60, Y0 + 50)
    assert ws.add_run(third, manifest={"seed": 2}) == "R0003"
    assert n_features(path, "geometries") == 5
    assert n_features(path, "parcels") == 12
    # run 1 is exactly as it was
    again, crops_again, _ = ws.load_run("R0001")
    pd.testing.assert_frame_equal(again, first_parcels)
    pd.testing.assert_frame_equal(crops_again, first_crops)
    pd.testing.assert_series_equal(ws.runs().iloc[0], first_row)
    assert ws.runs()["run_id"].tolist() == ["R0001", "R0002", "R0003"]
    second, crops2, _ = ws.load_run("R0002")
    assert second["final_class"].tolist()[:3] == [1, 3, 2]
    assert crops2 is None
    assert ws.load_run("R0003")[0].geometry.iloc[0].area == 60 * 50


def test_failed_write_leaves_the_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST)
    before = sha(path)
    real_write = ws_module._write

    def failing_write(target, df, layer, layers, **kw):
        if layer == "runs":           # parcels and crops are already in the copy
            raise RuntimeError("disk full")
        real_write(target, df, layer, layers, **kw)

    monkeypatch.setattr(ws_module, "_write", failing_write)
    reshaped = run_parcels()
    reshaped.loc[0, "geometry"] = shapely.box(0, 0, 1, 1)
    with pytest.raises(RuntimeError, match="disk full"):
        ws.add_run(reshaped, crops=run_crops(), manifest={"seed": 9})
    assert sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.gpkg"]   # no temp, no lock
    monkeypatch.undo()
    assert ws.add_run(run_parcels(), manifest={"seed": 3}) == "R0002"
    assert n_features(path, "parcels") == 8


def test_lock_blocks_a_second_writer(tmp_path):
    ws = Workspace(tmp_path / "runs.gpkg")
    (tmp_path / "runs.gpkg.lock").write_text("12345")
    with pytest.raises(FarmlandError, match="being written by another farmland process"):
        ws.add_run(run_parcels(), manifest=MANIFEST)


def test_crs_must_match_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "runs.gpkg")
    ws.add_run(run_parcels(), manifest=MANIFEST)
    other = run_parcels().to_crs("EPSG:4546")
    with pytest.raises(CRSError, match="differs from the workspace CRS.*reproject the parcels "
                                       "to EPSG:4545"):
        ws.add_run(other, manifest=MANIFEST)


def test_unknown_run_and_bad_manifest(tmp_path):
    ws = Workspace(tmp_path / "runs.gpkg")
    ws.add_run(run_parcels(), manifest=MANIFEST)
    with pytest.raises(InputError, match=r"no run 'R0009' in the workspace.*use one of: R0001"):
        ws.load_run("R0009")
    with pytest.raises(InputError, match="no run .*R1; DROP TABLE runs"):
        ws.load_run("R1; DROP TABLE runs")
    foreign = tmp_path / "other.gpkg"
    pyogrio.write_dataframe(run_parcels(), foreign, layer="DLTB")
    with pytest.raises(InputError, match=r"not a farmland workspace \(no 'runs' table\)"):
        Workspace(foreign).add_run(run_parcels(), manifest=MANIFEST)
    with pytest.raises(InputError, match="manifest is not JSON-serialisable"):
        ws.add_run(run_parcels(), manifest={"x": float("nan")})


def test_rate_on_a_stored_run_with_todays_ledger(tmp_path):
    ws = Workspace(tmp_path / "runs.gpkg")
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST)
    parcels, crops, _ = ws.load_run("R0001")
    ledger = pd.DataFrame({"parcel_id": ["P1", "P2"], "measure_type": ["lime", "fallow"],
                           "measure_class": ["safe_use", "strict_control"], "year": [2024, 2024]})
    r = safe_utilisation_rate(parcels, ledger, crops=crops)
    # 2024 ledger, crop samples are of 2023: P1 unverified (counted), P2 controlled:
    # (3.75 + 3.75) / (3.75 + 3.75) = 100 %
    assert r.year == 2024
    assert r.rate == pytest.approx(1.0)
    assert r.county["unverified2_mu"] == 3.75


def test_open_run_reads_classification_files(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    gpkg = folder / "classification.gpkg"
    pyogrio.write_dataframe(run_parcels(), gpkg, layer="parcels")
    crops = gpd.GeoDataFrame(run_crops(), geometry=shapely.points([(X0 + 10, Y0 + 10)] * 2),
                             crs=CRS)
    pyogrio.write_dataframe(crops, gpkg, layer="crops")
    (folder / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    for ref in (gpkg, folder):
        parcels, crops_read, manifest = open_run(ref)
        assert parcels["final_class"].dtype == "Int8"
        assert manifest == MANIFEST
        assert crops_read["exceeds"].dtype == "boolean"
    with pytest.raises(InputError, match="looks like a run id but no workspace was given"):
        open_run("R0001")
    with pytest.raises(InputError, match="classification file not found"):
        read_classification(tmp_path / "missing.gpkg")
