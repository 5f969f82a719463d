"""farmland.io.read_cache: a layer read once inside ``reusing_reads`` while its file is
unchanged; copies handed out; a rewritten file read again; no reuse outside the context."""

from __future__ import annotations

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import Point

from farmland.io import read_cache


def _write(path, values):
    frame = gpd.GeoDataFrame({"v": values}, geometry=[Point(i, 0) for i in range(len(values))],
                             crs="EPSG:4545")
    tmp = path.with_name("tmp_" + path.name)
    frame.to_file(tmp, layer="points")
    tmp.replace(path)  # as the outputs are written: a new file, then a rename


def _counting(monkeypatch):
    calls = []
    real = pyogrio.read_dataframe

    def read(path, **kwargs):
        calls.append((str(path), kwargs.get("layer")))
        return real(path, **kwargs)

    monkeypatch.setattr(read_cache.pyogrio, "read_dataframe", read)
    return calls


def test_one_read_per_unchanged_layer_and_copies(tmp_path, monkeypatch):
    path = tmp_path / "p.gpkg"
    _write(path, [1, 2, 3])
    calls = _counting(monkeypatch)
    with read_cache.reusing_reads():
        first = read_cache.read_dataframe(path, layer="points")
        first.loc[0, "v"] = 99  # a caller changing its copy
        second = read_cache.read_dataframe(path, layer="points")
        assert list(second["v"]) == [1, 2, 3]
        assert second.crs == first.crs and list(second.geometry.x) == [0.0, 1.0, 2.0]
        assert len(calls) == 1
        read_cache.read_dataframe(path, layer="points", read_geometry=False)
        assert len(calls) == 2  # other options: another read
        _write(path, [4, 5])
        assert list(read_cache.read_dataframe(path, layer="points")["v"]) == [4, 5]
        assert len(calls) == 3
    read_cache.read_dataframe(path, layer="points")
    read_cache.read_dataframe(path, layer="points")
    assert len(calls) == 5  # outside the context every call reads the file


def test_list_layers_and_missing_file(tmp_path):
    path = tmp_path / "p.gpkg"
    _write(path, [1])
    with read_cache.reusing_reads():
        assert [str(n) for n in read_cache.list_layers(path)[:, 0]] == ["points"]
        assert [str(n) for n in read_cache.list_layers(path)[:, 0]] == ["points"]
        with pytest.raises(pyogrio.errors.DataSourceError):  # the reader's own error
            read_cache.read_dataframe(tmp_path / "none.gpkg", layer="points")
