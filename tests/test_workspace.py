"""Run-history workspace: append-only, atomic, geometry de-duplication, round trips."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import sqlite3
from datetime import datetime

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import CRS, X0, Y0

from farmland.errors import CRSError, FarmlandError, InputError
from farmland.rate.accounting import safe_utilisation_rate
from farmland.runs import workspace as ws_module
from farmland.runs import workspace_tables as tables_module
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
    real_write = tables_module.write_table

    def failing_write(target, df, layer, layers, **kw):
        if layer == "runs":           # parcels and crops are already in the copy
            raise RuntimeError("disk full")
        real_write(target, df, layer, layers, **kw)

    monkeypatch.setattr(tables_module, "write_table", failing_write)
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
    r = safe_utilisation_rate(parcels, ledger, crops=crops, count_unverified=True)
    # 2024 ledger, crop samples are of 2023: P1 unverified (counted here), P2 controlled:
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


# -- relabel, delete, replace (issue 16.3) --------------------------------------------------
def reshaped(i=0, width=60.0):
    """:func:`run_parcels` with parcel ``i`` made ``width`` m wide (a geometry of its own)."""
    parcels = run_parcels()
    parcels.loc[i, "geometry"] = shapely.box(X0 + 100 * i, Y0, X0 + 100 * i + width, Y0 + 50)
    return parcels


def stored_keys(path):
    with contextlib.closing(sqlite3.connect(path)) as con:
        return {r[0] for r in con.execute("SELECT geom_key FROM geometries")}


def assert_consistent(path):
    """Every parcel's geometry resolves, no geometry is orphaned, no row lacks its run,
    and the spatial index and GDAL's feature counts follow the deletes."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        one = lambda sql: con.execute(sql).fetchone()[0]
        runs = {r[0] for r in con.execute("SELECT run_id FROM runs")}
        assert one("SELECT count(*) FROM parcels p WHERE p.geom_key IS NOT NULL AND NOT "
                   "EXISTS (SELECT 1 FROM geometries g WHERE g.geom_key = p.geom_key)") == 0
        assert one("SELECT count(*) FROM geometries WHERE geom_key NOT IN "
                   "(SELECT geom_key FROM parcels WHERE geom_key IS NOT NULL)") == 0
        assert one("SELECT count(*) - count(DISTINCT geom_key) FROM geometries") == 0
        for table in ("parcels", "crops"):
            assert {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {table}")} <= runs
        assert one("SELECT count(*) FROM rtree_geometries_geom") == one(
            "SELECT count(*) FROM geometries")
        for table, n in con.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents"):
            assert n == one(f'SELECT count(*) FROM "{table}"'), table
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith((".", "runs"))
                  ) == [path.name]          # no temporary copy, no lock left behind


def test_relabel(tmp_path):
    ws = Workspace(tmp_path / "runs.gpkg")
    ws.add_run(run_parcels(), manifest=MANIFEST, label="首轮")
    ws.add_run(run_parcels(), manifest=MANIFEST)
    before = ws.runs()
    assert ws.relabel("R0002", "2024 加密 re-sampling") == ""
    assert ws.relabel("R0001", "2023 详查") == "首轮"
    after = ws.runs()
    assert after["label"].tolist() == ["2023 详查", "2024 加密 re-sampling"]
    pd.testing.assert_frame_equal(after.drop(columns="label"), before.drop(columns="label"))
    with pytest.raises(InputError, match=r"no run 'R0003'.*use one of: R0001, R0002"):
        ws.relabel("R0003", "x")


def test_delete_a_middle_run(tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST, label="a")
    ws.add_run(reshaped(0), crops=run_crops(), manifest={"seed": 1}, label="b")
    ws.add_run(reshaped(3), manifest={"seed": 2}, label="c")
    kept = {r: ws.load_run(r) for r in ("R0001", "R0003")}
    rows = ws.runs().set_index("run_id")
    own = hashlib.blake2b(shapely.to_wkb(reshaped(0).geometry[0]), digest_size=16).hexdigest()
    shared = hashlib.blake2b(shapely.to_wkb(run_parcels().geometry[1]),
                             digest_size=16).hexdigest()
    assert {own, shared} <= stored_keys(path) and n_features(path, "geometries") == 6
    deleted = ws.delete_run("R0002")
    assert (deleted["run_id"], deleted["label"], deleted["n_parcels"]) == ("R0002", "b", 4)
    assert ws.runs()["run_id"].tolist() == ["R0001", "R0003"]
    pd.testing.assert_frame_equal(ws.runs().set_index("run_id"), rows.drop(index="R0002"))
    for run_id, (parcels, crops, manifest) in kept.items():
        again = ws.load_run(run_id)
        pd.testing.assert_frame_equal(again[0], parcels)
        pd.testing.assert_frame_equal(again[1], crops) if crops is not None else None
        assert again[2] == manifest
    assert own not in stored_keys(path)          # used by R0002 only: gone
    assert shared in stored_keys(path)           # used by R0001 and R0003 too: kept
    assert n_features(path, "geometries") == 5 and n_features(path, "parcels") == 8
    assert n_features(path, "crops") == 2
    assert_consistent(path)
    assert ws.add_run(run_parcels(), manifest=MANIFEST) == "R0004"
    ws.delete_run("R0004")                       # the highest id: still never issued again
    assert ws.add_run(run_parcels(), manifest=MANIFEST) == "R0005"
    assert_consistent(path)


def test_delete_every_run_and_start_again(tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST)
    ws.delete_run("R0001")
    assert ws.runs().empty
    assert n_features(path, "geometries") == 0 and n_features(path, "parcels") == 0
    assert_consistent(path)
    assert ws.add_run(run_parcels(), manifest=MANIFEST) == "R0002"
    assert ws.load_run("R0002")[0].geometry.notna().all()


def test_delete_refuses_unknown_runs_and_workspaces(tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), manifest=MANIFEST)
    before = sha(path)
    for bad in ("R0002", "r0001", "R0001' OR '1'='1"):
        with pytest.raises(InputError, match=r"no run .* in the workspace.*use one of: R0001"):
            ws.delete_run(bad)
    assert sha(path) == before
    missing = Workspace(tmp_path / "sub" / "none.gpkg")
    for call in (lambda: missing.delete_run("R0001"), lambda: missing.relabel("R0001", "x")):
        with pytest.raises(InputError, match="workspace not found.*farmland classify"):
            call()
    assert not (tmp_path / "sub").exists()       # nothing created for a typo


def test_replace_on_the_same_output_keeps_the_id(tmp_path, monkeypatch):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    out1, out2 = tmp_path / "2023", tmp_path / "2024"
    assert ws.add_run(reshaped(3, width=80), crops=run_crops(), manifest=MANIFEST,
                      label="首轮", output=out1) == "R0001"
    assert ws.add_run(reshaped(3), manifest={"seed": 1}, label="二轮", output=out2) == "R0002"
    second = ws.load_run("R0002")
    assert ws.runs()["output"].tolist() == ["2023", "2024"]   # relative to the workspace
    assert ws.run_of_output(out1) == "R0001" and ws.run_of_output(tmp_path / "x") is None

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2030, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(tables_module, "datetime", Later)
    old_shape, shared = (hashlib.blake2b(shapely.to_wkb(g), digest_size=16).hexdigest()
                         for g in (reshaped(3, width=80).geometry[3], run_parcels().geometry[0]))
    rerun = reshaped(0, width=70).assign(final_class=pd.array([1, 1, 1, 1], dtype="Int8"))
    assert ws.add_run(rerun, manifest={"seed": 7}, output=str(out1),
                      replaces=ws.run_of_output(out1)) == "R0001"
    runs = ws.runs()
    assert runs["run_id"].tolist() == ["R0001", "R0002"]
    assert runs.loc[0, "label"] == "首轮"             # no new label: the old one stays
    assert runs.loc[0, "created"] == "2030-01-02T03:04:05+00:00"
    assert runs.loc[0, "class1_mu"] == 15.0 and runs.loc[0, "n_crops"] == 0
    parcels, crops, manifest = ws.load_run("R0001")
    assert parcels["final_class"].tolist() == [1, 1, 1, 1] and crops is None
    assert manifest == {"seed": 7} and parcels.geometry.iloc[0].area == 70 * 50
    assert old_shape not in stored_keys(path)        # no run uses R0001's old shape now
    assert shared in stored_keys(path)               # R0002 still uses P1's first shape
    pd.testing.assert_frame_equal(ws.load_run("R0002")[0], second[0])
    assert n_features(path, "parcels") == 8 and n_features(path, "crops") == 0
    assert_consistent(path)
    ws.add_run(rerun, manifest={"seed": 8}, label="重算", output=out1, replaces="R0001")
    assert ws.runs()["label"].tolist() == ["重算", "二轮"]
    # a different output folder always adds a run
    assert ws.add_run(rerun, manifest=MANIFEST, output=tmp_path / "2023b") == "R0003"
    with pytest.raises(InputError, match="no run 'R0009'"):
        ws.add_run(rerun, manifest=MANIFEST, output=out1, replaces="R0009")
    assert len(ws.runs()) == 3


@pytest.mark.parametrize("many_keys", [False, True])
def test_rerunning_an_incremental_run_replaces_its_rows_in_place(tmp_path, monkeypatch,
                                                                 many_keys):
    """A run stored as differences whose rerun brings no new geometry is replaced inside
    the workspace file (one SQLite transaction, no copy): its old rows go, the geometries
    only they used go, the base's stay; a failure inside leaves the file byte-identical.
    Both ways of finding the unused geometries (few or many deleted keys) are run."""
    monkeypatch.setattr(tables_module, "MANY_KEYS", 0 if many_keys else 10**9)
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    incremental = {"incremental": {"from": "R0001"}}
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST, output=tmp_path / "a")
    # R0002 differs from R0001 in P1's class (R0001's shape) and in P2's class and shape
    second = reshaped(1, width=70).assign(final_class=pd.array([1, 1, None, 1], dtype="Int8"))
    ws.add_run(second, crops=run_crops(), manifest=incremental, output=tmp_path / "b")
    own_shape = hashlib.blake2b(shapely.to_wkb(second.geometry[1]),
                                digest_size=16).hexdigest()
    assert own_shape in stored_keys(path) and len(stored_keys(path)) == 5

    def no_copy(*args, **kwargs):
        raise AssertionError("the workspace was copied")

    monkeypatch.setattr(ws_module.Workspace, "_atomic", no_copy)
    rerun = run_parcels(classes=(1, 3, None, 1))     # P1's class differs, no new shape
    real = tables_module._insert         # fails after the old rows went, the new went in
    monkeypatch.setattr(tables_module, "_insert", lambda con, table, rows: (
        _fail() if table == "runs" else real(con, table, rows)))
    before = sha(path)
    with pytest.raises(RuntimeError, match="disk full"):
        ws.add_run(rerun, crops=run_crops(), manifest=incremental, output=tmp_path / "b",
                   replaces="R0002")
    assert sha(path) == before and own_shape in stored_keys(path)
    monkeypatch.setattr(tables_module, "_insert", real)
    assert ws.add_run(rerun, crops=run_crops().iloc[:1], manifest=incremental,
                      output=tmp_path / "b", replaces="R0002") == "R0002"
    with contextlib.closing(sqlite3.connect(path)) as con:
        stored = dict(con.execute("SELECT run_id, count(*) FROM parcels GROUP BY run_id"))
    assert stored == {"R0001": 4, "R0002": 1}       # only P1's row differs from R0001
    assert own_shape not in stored_keys(path) and len(stored_keys(path)) == 4
    got = ws.load_run("R0002")[0]
    assert got["final_class"].fillna(0).tolist() == [1, 3, 0, 1]
    assert got.geometry.iloc[1].equals(run_parcels().geometry.iloc[1])
    assert ws.runs()["run_id"].tolist() == ["R0001", "R0002"]
    assert len(ws.load_run("R0002")[1]) == 1 and len(ws.load_run("R0001")[1]) == 2
    assert_consistent(path)


def _fail():
    raise RuntimeError("disk full")


def test_a_workspace_from_before_the_output_column(tmp_path):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), manifest=MANIFEST, output=tmp_path / "2023")
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("ALTER TABLE runs DROP COLUMN output")   # as written by farmland 0.1
    assert ws.runs()["output"].isna().all()
    assert ws.run_of_output(tmp_path / "2023") is None       # unknown: a rerun adds
    assert ws.add_run(run_parcels(), manifest=MANIFEST, output=tmp_path / "2023") == "R0002"
    assert ws.runs()["output"].tolist()[1] == "2023" and pd.isna(ws.runs()["output"][0])
    assert ws.run_of_output(tmp_path / "2023") == "R0002"
    assert ws.load_run("R0001")[0]["parcel_id"].tolist() == ["P1", "P2", "P3", "P4"]


def test_any_sequence_of_changes_keeps_the_workspace_consistent(tmp_path):
    rng = random.Random(163)
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    expected, issued, done = {}, [], []
    for step in range(24):
        op = rng.choice(["add", "add", "replace", "delete", "relabel"]) if expected else "add"
        done.append(op)
        if op in ("add", "replace"):
            parcels = run_parcels(classes=[rng.choice([1, 2, 3, None]) for _ in range(4)])
            for i in rng.sample(range(4), rng.randint(0, 2)):
                parcels.loc[i, "geometry"] = shapely.box(X0 + 100 * i, Y0,
                                                         X0 + 100 * i + rng.randint(10, 90),
                                                         Y0 + 50)
            crops = run_crops() if rng.random() < 0.5 else None
            replaces = rng.choice(sorted(expected)) if op == "replace" else None
            run_id = ws.add_run(parcels, crops=crops, manifest={"step": step},
                                output=tmp_path / f"out{step}", replaces=replaces)
            if replaces is None:
                assert run_id not in issued
                issued.append(run_id)
            else:
                assert run_id == replaces
            expected[run_id] = ws.load_run(run_id)
            assert len(expected[run_id][0]) == 4
        elif op == "delete":
            run_id = rng.choice(sorted(expected))
            assert ws.delete_run(run_id)["run_id"] == run_id
            del expected[run_id]
        else:
            ws.relabel(rng.choice(sorted(expected)), f"label {step}")
        assert ws.runs()["run_id"].tolist() == sorted(expected)
        for run_id, (parcels, crops, manifest) in expected.items():
            again = ws.load_run(run_id)
            pd.testing.assert_frame_equal(again[0], parcels)
            assert (again[1] is None) == (crops is None)
            if crops is not None:
                pd.testing.assert_frame_equal(again[1], crops)
            assert again[2] == manifest
        assert_consistent(path)
    assert issued == sorted(issued) and len(issued) == len(set(issued))
    assert min(done.count(op) for op in ("add", "replace", "delete", "relabel")) >= 2, done


@pytest.mark.parametrize("operation", ["delete", "replace", "relabel"])
def test_a_failed_change_leaves_the_file_byte_identical(tmp_path, monkeypatch, operation):
    path = tmp_path / "runs.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST, output=tmp_path / "a")
    ws.add_run(reshaped(0), crops=run_crops(), manifest=MANIFEST, output=tmp_path / "b")
    before = sha(path)

    def fail(*args, **kw):
        raise RuntimeError("disk full")

    if operation == "delete":       # R0002's rows are already gone from the copy
        monkeypatch.setattr(ws_module, "_drop_orphans", fail)
        change = lambda: ws.delete_run("R0002")
    elif operation == "replace":    # old rows deleted, new parcels appended, runs row fails
        real_write = tables_module.write_table
        monkeypatch.setattr(tables_module, "write_table", lambda tmp, df, layer, layers, **kw: (
            fail() if layer == "runs" else real_write(tmp, df, layer, layers, **kw)))
        change = lambda: ws.add_run(reshaped(1), manifest={"seed": 1},
                                    output=tmp_path / "b", replaces="R0002")
    else:
        monkeypatch.setattr(ws_module, "_sql", fail)
        change = lambda: ws.relabel("R0001", "new")
    with pytest.raises(RuntimeError, match="disk full"):
        change()
    assert sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.gpkg"]   # no temp, no lock
    monkeypatch.undo()
    change()
    assert_consistent(path)
