"""The incremental run's province-sized steps made to follow the change (issue 19 item 2):

- rules 1–3 on a subset of the parcels give the rows they give on all of them (the point
  rule groups only the samples of those parcels);
- in memory, an incremental run's parcels, samples, crops and summary equal a full run's,
  values and types, also when crop samples change far from any soil change (those parcels
  keep their soil class but are finished again: crop adjustment, flags, labels);
- the one row comparison (:func:`farmland.runs.workspace_tables.differing_rows`);
- the workspace stores the rows the run names as differing without reading its base run
  back, in place (no copy of the workspace file), and they read back as a full run's.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Y0, make_parcels, make_samples
from test_incremental import _classify, _table, county  # noqa: F401 - the module fixture

from farmland.classify.parcels import soil_classes, with_landuse
from farmland.classify.samples import classify_samples
from farmland.rules import load_rules
from farmland.runs.pipeline import ClassificationInputs, classify_run
from farmland.runs.workspace import Workspace
from farmland.runs.workspace_tables import differing_rows
from farmland.standards import load_standard


def test_soil_classes_of_a_subset_are_the_rows_of_all_parcels():
    """12 parcels in a row, samples in 8 of them (two in parcel 3, one class 3); rules 1–3
    on parcels 2, 3, 7 and 11 give exactly their rows of the run on all 12."""
    boxes = [(100 * i, 0, 100 * i + 90, 90) for i in range(12)]
    parcels = with_landuse(make_parcels(boxes))
    xy = np.array([[45, 45], [145, 45], [345, 30], [345, 60], [445, 45], [645, 45],
                   [845, 45], [1045, 45], [1145, 45]], dtype=float)
    cd = np.array([0.2, 0.25, 0.3, 5.0, 0.28, 0.9, 0.1, 0.35, 0.2])
    samples = make_samples(xy, cd=cd, sample_id=[f"S{i}" for i in range(len(xy))])
    std, rules = load_standard(), load_rules()
    samples = classify_samples(samples, parcels=parcels, standard=std, rules=rules)
    every = soil_classes(parcels, samples, rules=rules, interpolator="idw", standard=std)
    rows = [2, 3, 7, 11]
    some = soil_classes(parcels.iloc[rows], samples, rules=rules, interpolator="idw",
                        standard=std)
    pd.testing.assert_frame_equal(some, every.iloc[rows], check_exact=True)
    assert some["soil_class"].tolist()[1] == 3  # parcel 3: the class-3 point decides
    assert some["n_samples"].tolist() == [0, 2, 0, 1]


def test_differing_rows_treats_every_missing_marker_alike():
    new = pd.DataFrame({"c": pd.array([1, pd.NA, 2, 3], dtype="Int8"),
                        "t": pd.array(["a", None, "b", "x"], dtype="str"),
                        "o": [None, "d", np.nan, "e"],
                        "f": [0.5, np.nan, 1.0, 2.0]})
    old = pd.DataFrame({"c": [1.0, np.nan, 2.0, 3.0],
                        "t": ["a", np.nan, "b", "y"],
                        "o": [np.nan, "d", None, "e"],
                        "f": [0.5, np.nan, 1.5, 2.0]})
    assert differing_rows(new, old, ["c", "t", "o"]).tolist() == [3]
    assert differing_rows(new, old, ["c", "f"]).tolist() == [2]
    assert differing_rows(new, old, ["c", "t", "o", "f"], mask=True).tolist() == [
        False, False, True, True]


def _crops_2024(root: Path, folder: Path) -> Path:
    """The county's crop samples with the ones in the middle villages (y 1–4 km, far from
    the soil changes in the south and north-east) ten times as high, one dropped."""
    crops = pd.read_csv(root / "crops.csv")
    middle = (crops["y"] - Y0).between(1000, 4000)
    assert 4 <= middle.sum() < len(crops)
    crops.loc[middle, "cd"] = crops.loc[middle, "cd"] * 10
    path = folder / "crops_2024.csv"
    crops.drop(index=crops.index[middle][0]).to_csv(path, index=False)
    return path


def test_incremental_in_memory_equals_full_with_crops_changed_elsewhere(
        county, tmp_path, caplog):  # noqa: F811 - the fixture imported above
    inputs = ClassificationInputs(
        parcels=county / "p.gpkg", samples=county / "soil_2024.csv",
        crops=_crops_2024(county, tmp_path), crs="EPSG:4545", units="village",
        workspace=county / "ws.gpkg", since="R0001", variograms="reuse",
        output=tmp_path / "out")
    with caplog.at_level(logging.INFO, logger="farmland.runs.incremental"):
        inc = classify_run(inputs)
    full = classify_run(dataclasses.replace(inputs, full=True))
    record = inc.manifest["incremental"]
    assert "incremental" not in full.manifest
    redone = int(re.search(r"flags redone for (\d+)", caplog.text)[1])
    # the middle villages' crop adjustment changed: finished again, soil class kept
    assert record["parcels_recomputed"] < redone <= 900
    first = Workspace(county / "ws.gpkg").load_run("R0001")[0]
    moved = (first["final_class"].astype("Float64") != full.parcels["final_class"]
             .astype("Float64")).fillna(True)
    assert moved.sum() > 0
    pd.testing.assert_frame_equal(inc.parcels, full.parcels, check_exact=True)
    assert inc.parcels.attrs == full.parcels.attrs
    pd.testing.assert_frame_equal(inc.samples, full.samples, check_exact=True)
    pd.testing.assert_frame_equal(inc.crops, full.crops, check_exact=True)
    pd.testing.assert_frame_equal(inc.summary, full.summary, check_exact=True)
    # the rows to rewrite and to store are those that differ from R0001's
    old = first.reset_index(drop=True)
    assert inc.patch.run_id == "R0001"
    stored = differing_rows(inc.parcels, old, ["soil_class", "final_class", "rule",
                                                 "driving_element", "sample_ids", "qa_flags"])
    np.testing.assert_array_equal(inc.patch.workspace_rows, stored)
    assert 0 < len(stored) <= len(inc.patch.rows)


def test_workspace_stores_the_named_rows_in_place(tmp_path):
    """``differences`` names the rows to store: they are appended to the file itself (same
    inode, feature counts kept) without reading the base run, and read back as the run's
    parcels; the crops come along. A base run that is not there, or has another number of
    parcels, falls back to comparing every row (a copy of the file, as before)."""
    from test_workspace import MANIFEST, run_crops, run_parcels

    path = tmp_path / "ws.gpkg"
    ws = Workspace(path)
    assert ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST) == "R0001"
    inode = path.stat().st_ino
    second = run_parcels(classes=(2, 2, None, 1))
    second.loc[1, ["rule", "qa_flags"]] = ["points:strict_override;crops:3->2", ""]
    rid = ws.add_run(second, crops=run_crops(), manifest={"seed": 1},
                     differences=("R0001", np.array([1])))
    assert rid == "R0002" and path.stat().st_ino == inode  # in place, no copy
    with sqlite3.connect(path) as con:
        stored = con.execute("SELECT parcel_id, row_index, final_class, rule FROM parcels "
                             "WHERE run_id = 'R0002'").fetchall()
        counts = dict(con.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents"))
    assert stored == [("P2", 1, 2, "points:strict_override;crops:3->2")]
    assert counts["parcels"] == 5 and counts["crops"] == 4 and counts["runs"] == 2
    got, crops, manifest = ws.load_run("R0002")
    expected = ws.load_run("R0001")[0]
    expected.loc[1, ["final_class", "rule", "qa_flags"]] = [
        2, "points:strict_override;crops:3->2", ""]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert len(crops) == 2 and manifest == {"seed": 1}
    runs = ws.runs().set_index("run_id")
    assert runs.loc["R0002", "base_run"] == "R0001"
    assert runs.loc["R0002", "class2_mu"] == 7.5 and runs.loc["R0002", "class3_mu"] == 0.0
    # a base that is not there: every row is compared with the manifest's run (none): full
    shutil.copy(path, tmp_path / "copy.gpkg")
    other = Workspace(tmp_path / "copy.gpkg")
    assert other.add_run(second, manifest={"seed": 2}, differences=("R0009", np.array([1]))
                         ) == "R0003"
    with sqlite3.connect(tmp_path / "copy.gpkg") as con:
        n = con.execute("SELECT count(*) FROM parcels WHERE run_id = 'R0003'").fetchone()[0]
    assert n == 4
    pd.testing.assert_frame_equal(other.load_run("R0003")[0], expected, check_exact=True)


def test_a_failed_insert_in_place_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    """The in-place append is one SQLite transaction: a failure while inserting the runs
    row (the parcels and crops rows already inserted) leaves the file byte-identical."""
    import hashlib

    from test_workspace import MANIFEST, run_crops, run_parcels

    from farmland.runs import workspace_tables

    path = tmp_path / "ws.gpkg"
    ws = Workspace(path)
    ws.add_run(run_parcels(), crops=run_crops(), manifest=MANIFEST)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    real = workspace_tables.sqlite_values

    def failing(series):
        if series.name == "manifest":
            raise RuntimeError("disk full")
        return real(series)

    monkeypatch.setattr(workspace_tables, "sqlite_values", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        ws.add_run(run_parcels(classes=(2, 2, None, 1)), crops=run_crops(),
                   manifest={"seed": 1}, differences=("R0001", np.array([1])))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert ws.runs()["run_id"].tolist() == ["R0001"]
