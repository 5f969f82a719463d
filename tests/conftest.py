"""Fixtures and builders shared by every test module.

Builders (import them: ``from conftest import X0, Y0, make_parcels, make_samples``):

- :data:`X0`, :data:`Y0`: the projected origin of the hand-made scenes, EPSG:4545
  (CGCS2000 / 3-degree Gauss-Krüger CM 108E) metres; a multiple of every grid used
  (1 km flag cells, raster cells), so cell ids and snapped bounds are round numbers.
- :func:`square`: a square polygon ``size`` m wide at column ``i``, row ``j`` of a grid
  starting at the origin.
- :func:`make_parcels`: canonical parcels (docs/schema.md) as ``farmland classify``
  writes them: ``parcel_id``, ``township``, ``dlbm``, ``landuse``, ``area_mu`` and the
  polygons.
- :func:`make_samples`: canonical soil samples: ``sample_id``, ``ph``, ``cd``, ``hg``,
  ``as``, ``pb``, ``cr`` (class 1 on every land use unless given) and the points;
  :func:`make_points` is the same without the soil defaults (crop samples, plan points).
- :func:`parcel_table`: the non-spatial parcel table of the rate and gap tests.
- :func:`run_cli` (or the ``cli`` fixture): ``farmland ARGS…`` through click's
  ``CliRunner``; stdout and stderr are kept apart (``result.stdout``, ``result.stderr``,
  both in ``result.output``).

Every builder takes its defaults from the arguments a test passes: a test that cares
about a value states it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner, Result

CRS = "EPSG:4545"
X0, Y0 = 500_000.0, 3_000_000.0  # EPSG:4545 metres, a multiple of every grid used in tests
#: soil values of class 1 on every land use and pH band (Cd 0.1 < 0.3, Hg 0.1 < 0.5, …)
SOIL_BACKGROUND = {"ph": 6.0, "cd": 0.1, "hg": 0.1, "as": 5.0, "pb": 20.0, "cr": 50.0}
#: columns stored as nullable small integers (classes may be missing: unclassified)
_CLASS_COLUMNS = ("final_class", "soil_class", "point_class")


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI reconfigures the root logger onto CliRunner's stream; undo it afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# ------------------------------------------------------------------------------ geometry
def square(i: int = 0, j: int = 0, size: float = 100.0, *,
           origin: tuple[float, float] = (X0, Y0)) -> shapely.Polygon:
    """The square of column ``i``, row ``j`` of a ``size`` m grid starting at ``origin``."""
    x, y = origin
    return shapely.box(x + i * size, y + j * size, x + (i + 1) * size, y + (j + 1) * size)


def _classes(columns: dict) -> dict:
    return {k: (pd.array(v, dtype="Int8") if k in _CLASS_COLUMNS and pd.api.types.is_list_like(v)
                else v) for k, v in columns.items()}


def make_parcels(boxes: Sequence[tuple[float, float, float, float]] | None = None, *,
                 n: int = 3, size: float = 100.0, origin: tuple[float, float] = (X0, Y0),
                 crs=CRS, **columns) -> gpd.GeoDataFrame:
    """Canonical parcels: polygons with ``parcel_id`` P0, P1 …, ``township`` T1,
    ``dlbm`` 0101, ``landuse`` paddy and ``area_mu`` from the geometry (1 亩 = 10000/15 m²).

    ``boxes``: (xmin, ymin, xmax, ymax) in metres from ``origin`` (``origin=(0, 0)`` for
    absolute coordinates); by default ``n`` squares of ``size`` m in a row along x.
    ``columns`` (a list, or one value for every row) add columns or replace the defaults;
    ``final_class``/``soil_class`` lists become nullable ``Int8``.
    """
    if boxes is None:
        boxes = [(i * size, 0.0, (i + 1) * size, size) for i in range(n)]
    x, y = origin
    geoms = [shapely.box(x + a, y + b, x + c, y + d) for a, b, c, d in boxes]
    data = {"parcel_id": [f"P{i}" for i in range(len(geoms))], "township": "T1",
            "dlbm": "0101", "landuse": "paddy", **_classes(columns)}
    out = gpd.GeoDataFrame(data, index=pd.RangeIndex(len(geoms)), geometry=geoms, crs=crs)
    if "area_mu" not in columns:
        out["area_mu"] = out.geometry.area * 15 / 10000
    return out


def make_points(xy, *, origin: tuple[float, float] = (X0, Y0), crs=CRS,
                **columns) -> gpd.GeoDataFrame:
    """Points at ``xy`` (metres from ``origin``) with the given columns."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2) + np.asarray(origin, dtype=float)
    return gpd.GeoDataFrame(_classes(columns), index=pd.RangeIndex(len(xy)),
                            geometry=shapely.points(xy) if len(xy) else [], crs=crs)


def make_samples(xy, *, origin: tuple[float, float] = (X0, Y0), crs=CRS,
                 **columns) -> gpd.GeoDataFrame:
    """Canonical soil samples at ``xy`` (metres from ``origin``): ``sample_id`` S0, S1 …
    and :data:`SOIL_BACKGROUND` (pH 6.0, class 1 for every metal) unless given."""
    n = len(np.asarray(xy, dtype=float).reshape(-1, 2))
    return make_points(xy, origin=origin, crs=crs,
                       **{"sample_id": [f"S{i}" for i in range(n)], **SOIL_BACKGROUND, **columns})


def demo_corner(folder: Path) -> pd.DataFrame:
    """A 4 km corner of the demo county: its parcels written to ``folder/p.gpkg`` (layer
    DLTB), its soil samples (a 6 km window, the raw CSV columns as text) returned for a
    test to edit and write."""
    data = Path(__file__).resolve().parents[1] / "data" / "demo"
    window = shapely.box(620_000, 2_718_000, 624_000, 2_722_000)
    parcels = gpd.read_file(data / "parcels.gpkg", layer="DLTB")
    parcels.loc[parcels.intersects(window)].to_file(folder / "p.gpkg", layer="DLTB")
    soil = pd.read_csv(data / "soil_samples.csv", encoding="utf-8-sig", dtype=str)
    x, y = soil["X"].astype(float), soil["Y"].astype(float)
    soil = soil.loc[x.between(619_000, 625_000) & y.between(2_717_000, 2_723_000)]
    return soil.reset_index(drop=True)


def parcel_table(rows) -> pd.DataFrame:
    """Parcels without geometry; rows: (parcel_id, township, final_class or None, area_mu)."""
    ids, towns, classes, areas = zip(*rows, strict=True)
    return pd.DataFrame({"parcel_id": list(ids), "township": list(towns),
                         "final_class": pd.array(list(classes), dtype="Int8"),
                         "area_mu": [float(a) for a in areas]})


# ------------------------------------------------------------------------------------ CLI
def run_cli(*args, cwd: Path | str | None = None) -> Result:
    """``farmland ARGS…`` in-process (paths may be ``Path``); ``cwd``: run from that folder."""
    from farmland.cli import main

    argv = [str(a) for a in args]
    if cwd is None:
        return CliRunner().invoke(main, argv)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        return CliRunner().invoke(main, argv)


@pytest.fixture
def cli():
    """:func:`run_cli` as a fixture: ``result = cli("rate", gpkg, "-o", out)``."""
    return run_cli
