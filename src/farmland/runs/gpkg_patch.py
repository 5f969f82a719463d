"""An incremental run's ``classification.gpkg`` written from the previous run's (issue 19).

The parcels layer is most of the file (every polygon and its spatial index) and an
incremental run changes the attributes of a tenth of the parcels at most; the geometries
are the same job's. So the previous file is copied, the parcel rows whose computed columns
differ (:class:`farmland.runs.incremental.Patch`) are rewritten in place with one SQL
``UPDATE`` each (by ``fid`` = position + 1, as a fresh write numbers them; attributes only,
so the spatial index stays as it is and its update triggers are set aside), and the other
layers (samples, crops, outliers: small) are written anew in their order. Read back, every
layer equals a freshly written file's (tests/test_incremental.py). When the previous file's
layout does not allow it — other parcel fields or field types, fids not 1…n, a layer this
run does not write — the file is written in full.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from farmland.io.styles import write_styles
from farmland.io.write import replace_gpkg_layers, sqlite_values

__all__ = ["patch_gpkg"]

log = logging.getLogger(__name__)

#: GDAL field type (as pyogrio reports it) that a fresh write gives each pandas dtype
_FIELD_TYPES = {"float64": "float64", "int64": "int64", "Int8": "int16", "bool": "bool",
                "object": "object", "str": "object", "string": "object"}


def patch_gpkg(patch, path: Path, layers: Mapping[str, pd.DataFrame]) -> bool:
    """Write ``layers`` to the new file ``path`` from ``patch.path`` (module docstring);
    ``False`` (nothing written) when the previous file does not allow it."""
    parcels = layers["parcels"]
    why = ("other computed columns" if patch.rows is None
           else _other_layout(patch.path, parcels, layers))
    if why:
        log.info("classification file written in full: the previous one has %s", why)
        return False
    shutil.copyfile(patch.path, path)
    columns = [c for c in parcels.columns if c != parcels.geometry.name]
    rows = np.asarray(patch.rows, dtype=np.int64)
    values = [sqlite_values(parcels[c].iloc[rows]) for c in columns]
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        # the spatial index's update triggers call GDAL's SQL functions; no geometry
        # changes, so they are set aside for the update and restored as they were
        triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                               "AND tbl_name = 'parcels' AND sql LIKE '%UPDATE%'").fetchall()
        for name, _ in triggers:
            con.execute(f'DROP TRIGGER "{name}"')
        con.executemany(f"UPDATE parcels SET {sets} WHERE fid = ?",
                        zip(*values, (rows + 1).tolist(), strict=True))
        for _, sql in triggers:
            con.execute(sql)
    replace_gpkg_layers(path, {k: v for k, v in layers.items() if k != "parcels"},
                        styles=False)
    write_styles(path, layers)  # in layer order, the previous parcels style replaced
    log.info("classification file: %d of %d parcel rows rewritten in a copy of %s",
             len(rows), len(parcels), patch.path)
    return True


def _other_layout(previous: Path, parcels: pd.DataFrame, layers: Mapping[str, pd.DataFrame]
                  ) -> str | None:
    """Why the previous file cannot be patched (``None``: it can): it must have this run's
    parcel fields with the types a fresh write gives, fids 1…n, and no layer this run does
    not write."""
    names = [str(n) for n, _ in pyogrio.list_layers(previous)]
    if not names or names[0] != "parcels" or set(names) - set(layers) - {"layer_styles"}:
        return f"the layers {names}"
    info = pyogrio.read_info(previous, layer="parcels")
    columns = [c for c in parcels.columns if c != parcels.geometry.name]
    if list(info["fields"]) != columns or info["features"] != len(parcels):
        return "other parcel fields or another number of parcels"
    for col, stored in zip(columns, info["dtypes"], strict=True):
        series = parcels[col]
        if _FIELD_TYPES.get(str(series.dtype)) != str(stored):
            return f"another type of {col} ({stored}, now {series.dtype})"
        if series.dtype == object and series.isna().all():  # Arrow null: a fresh type unknown
            return f"{col} empty"
    with contextlib.closing(sqlite3.connect(previous)) as con:
        low, high, n = con.execute("SELECT min(fid), max(fid), count(*) FROM parcels").fetchone()
    return None if (low, high, n) == (1, len(parcels), len(parcels)) else "other fids"
