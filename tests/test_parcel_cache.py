"""The workspace's checked-parcels cache (:mod:`farmland.runs.parcel_cache`, issue 19):
a hit returns exactly what reading the file returns (values, types, index, CRS) and logs
the reading's messages again; another file content or option is another entry; without a
workspace nothing is cached."""

from __future__ import annotations

import logging

import pandas as pd
import shapely
from conftest import make_parcels

from farmland.io import readers as fio
from farmland.runs.parcel_cache import cache_folder, cached_parcels


def _file(tmp_path, boxes):
    parcels = make_parcels(boxes, dlbm=["0101", "0103", "0101"])
    # a bow-tie: read_parcels repairs it and says so
    parcels.loc[2, "geometry"] = shapely.Polygon([(X := 620400, Y := 2722000),
                                                  (X + 100, Y + 100), (X + 100, Y),
                                                  (X, Y + 100)])
    path = tmp_path / "p.gpkg"
    parcels.to_file(path, layer="DLTB")
    return path


def test_a_hit_returns_the_same_frame_and_messages(tmp_path, caplog):
    path = _file(tmp_path, [(0, 0, 100, 100), (100, 0, 200, 100), (0, 0, 1, 1)])
    ws = tmp_path / "ws.gpkg"
    calls = []

    def read():
        calls.append(1)
        return fio.read_parcels(path, crs="EPSG:4545")

    options = {"workspace": ws, "parcels": path, "layer": None, "crs": "EPSG:4545",
               "mapping": None, "townships": None}
    with caplog.at_level(logging.INFO, logger="farmland"):
        first = cached_parcels(read, **options)
    said = [(r.name, r.levelno, r.getMessage()) for r in caplog.records
            if r.name != "farmland.runs.parcel_cache"]
    assert any(level == logging.WARNING and "repaired 1 invalid polygon(s)" in m
               for _, level, m in said), said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="farmland"):
        again = cached_parcels(read, **options)
    assert len(calls) == 1  # the second came from the cache
    pd.testing.assert_frame_equal(again, first, check_exact=True)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records
            if r.name != "farmland.runs.parcel_cache"] == said
    pd.testing.assert_frame_equal(again, fio.read_parcels(path, crs="EPSG:4545"),
                                  check_exact=True)
    assert again.crs == first.crs
    # another option, then another content: read again; one entry kept
    cached_parcels(read, **{**options, "crs": "EPSG:4546"})
    assert len(calls) == 2
    _file(tmp_path, [(0, 0, 100, 100), (100, 0, 210, 100), (0, 0, 1, 1)])
    changed = cached_parcels(read, **options)
    assert len(calls) == 3
    assert changed.geometry.area.iloc[1] == 110 * 100
    assert [p.suffix for p in cache_folder(ws).iterdir()] == [".parquet"]


def test_no_workspace_no_cache(tmp_path):
    path = _file(tmp_path, [(0, 0, 100, 100), (100, 0, 200, 100), (0, 0, 1, 1)])
    calls = []

    def read():
        calls.append(1)
        return fio.read_parcels(path, crs="EPSG:4545")

    for _ in range(2):
        cached_parcels(read, workspace=None, parcels=path, layer=None, crs="EPSG:4545",
                       mapping=None, townships=None)
    assert len(calls) == 2
    assert not list(tmp_path.glob("*.cache"))


def test_another_code_is_a_miss(tmp_path, monkeypatch):
    """The entry records the farmland source fingerprint: changed code reads the file."""
    import farmland.runs.parcel_cache as cache

    path = _file(tmp_path, [(0, 0, 100, 100), (100, 0, 200, 100), (0, 0, 1, 1)])
    calls = []

    def read():
        calls.append(1)
        return fio.read_parcels(path, crs="EPSG:4545")

    options = {"workspace": tmp_path / "ws.gpkg", "parcels": path, "layer": None,
               "crs": "EPSG:4545", "mapping": None, "townships": None}
    cached_parcels(read, **options)
    monkeypatch.setattr(cache, "_code_fingerprint", lambda: "another")
    cached_parcels(read, **options)
    cached_parcels(read, **options)
    assert len(calls) == 2  # the changed code read once, then its own entry served
