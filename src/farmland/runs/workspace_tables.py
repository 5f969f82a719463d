"""How a run's rows are laid out in the workspace file (:mod:`farmland.runs.workspace`):
the stored parcel and crop tables, geometry keys, an incremental run's difference rows,
and the SQL edits of a (temporary copy of the) workspace."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from farmland.classes import as_class
from farmland.errors import InputError
from farmland.io.values import parse_boolean

#: parcel columns kept per run (missing ones are stored empty)
PARCEL_COLUMNS = ("parcel_id", "township", "landuse", "area_mu", "soil_class", "final_class",
                  "rule", "driving_element", "sample_ids", "qa_flags")
#: crop-sample columns kept per run
CROP_COLUMNS = ("parcel_id", "year", "exceeds", "sample_id", "crop")
_TEXT = ("parcel_id", "township", "landuse", "rule", "driving_element", "sample_ids",
         "qa_flags", "sample_id", "crop", "geom_key")
INDEXES = ("CREATE INDEX IF NOT EXISTS idx_parcels_run_id ON parcels(run_id)",
            "CREATE INDEX IF NOT EXISTS idx_geometries_key ON geometries(geom_key)",
            "CREATE INDEX IF NOT EXISTS idx_crops_run_id ON crops(run_id)")


def layer_names(path: Path) -> set[str]:
    return {str(name) for name, _ in pyogrio.list_layers(path)}


def execute_sql(path: Path, sql: str, params: tuple = ()) -> int:
    """Execute one statement in its own transaction; return the number of rows changed."""
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        return con.execute(sql, params).rowcount


def delete_rows(tmp: Path, run_id: str) -> None:
    """Remove a run's rows from runs, parcels and crops (one transaction)."""
    layers = layer_names(tmp)
    with contextlib.closing(sqlite3.connect(tmp)) as con, con:
        for table in ("parcels", "crops", "runs"):
            if table in layers:
                con.execute(f'DELETE FROM "{table}" WHERE run_id = ?', (run_id,))


def drop_orphans(tmp: Path) -> int:
    """Delete the geometries no parcel row refers to; return how many."""
    if "geometries" not in layer_names(tmp):
        return 0
    return execute_sql(tmp, "DELETE FROM geometries WHERE geom_key IS NULL OR geom_key NOT IN "
                     "(SELECT geom_key FROM parcels WHERE geom_key IS NOT NULL)")


def vacuum(tmp: Path) -> None:
    """Give the space of deleted rows back (the copy is rewritten anyway)."""
    with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as con:
        con.execute("VACUUM")


def keyed_rows(stored: pd.DataFrame, parcels: pd.DataFrame) -> tuple[pd.DataFrame,
                                                                 gpd.GeoDataFrame]:
    """``stored`` rows with ``geom_key`` and their keyed geometries (only the rows stored:
    an incremental run hashes only the parcels that differ)."""
    rows = stored["row_index"].to_numpy() if "row_index" in stored else slice(None)
    geom = parcels.iloc[rows] if isinstance(parcels, gpd.GeoDataFrame) else None
    keys, geoms = geometry_keys(geom, len(stored))
    return stored.assign(geom_key=keys), geoms


def parcel_attrs(parcels: pd.DataFrame) -> pd.DataFrame:
    """The stored attribute table (:data:`PARCEL_COLUMNS`, text and classes normalised)."""
    for col in ("parcel_id", "final_class", "area_mu"):
        if col not in parcels.columns:
            raise InputError(f"parcels lack the column {col}", column=col,
                             fix="pass the parcels layer of a classification run")
    attrs = pd.DataFrame(index=range(len(parcels)))
    for col in PARCEL_COLUMNS:
        values = parcels[col].to_numpy() if col in parcels.columns else [pd.NA] * len(parcels)
        attrs[col] = values
    attrs = as_text(attrs)
    attrs["area_mu"] = pd.to_numeric(attrs["area_mu"], errors="coerce").astype(float)
    for col in ("soil_class", "final_class"):
        attrs[col] = as_class(attrs[col].to_numpy()).array
    return attrs


def geometry_keys(parcels: gpd.GeoDataFrame | None, n: int
                   ) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """``geom_key`` of each of the ``n`` rows (NA without geometry) and the keyed geometries."""
    if parcels is None or not parcels.geometry.notna().any():
        return (pd.Series(pd.NA, index=range(n), dtype="str").to_numpy(),
                gpd.GeoDataFrame({"geom_key": []}, geometry=[], crs=None))
    geometry = parcels.geometry.to_numpy()
    wkb = shapely.to_wkb(geometry)
    keys = pd.Series([None if b is None else hashlib.blake2b(b, digest_size=16).hexdigest()
                      for b in wkb], dtype="str")
    geoms = gpd.GeoDataFrame({"geom_key": keys}, geometry=geometry, crs=parcels.crs)
    geoms = geoms.loc[geoms["geom_key"].notna()].drop_duplicates("geom_key")
    return keys.to_numpy(), geoms


def crop_table(crops: pd.DataFrame | None) -> pd.DataFrame:
    if crops is None:
        crops = pd.DataFrame(columns=list(CROP_COLUMNS))
    missing = [c for c in ("parcel_id", "year", "exceeds") if c not in crops.columns]
    if missing:
        raise InputError(f"crop samples lack the column(s) {', '.join(missing)}",
                         column=missing[0], fix="pass the crops layer of a classification run")
    out = pd.DataFrame({c: crops[c].to_numpy() if c in crops.columns else [pd.NA] * len(crops)
                        for c in CROP_COLUMNS})
    return crop_types(out)


def crop_types(crops: pd.DataFrame) -> pd.DataFrame:
    out = as_text(crops.copy())
    out["year"] = pd.to_numeric(out["year"], errors="coerce").astype("Int64")
    out["exceeds"] = parse_boolean(out["exceeds"]).array
    return out.reset_index(drop=True)


def as_text(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns.intersection(_TEXT):
        df[col] = pd.Series(df[col].to_numpy(), index=df.index, dtype=object).astype("str")
    return df
