"""How a run's rows are laid out in the workspace file (:mod:`farmland.runs.workspace`):
the stored parcel and crop tables, geometry keys, an incremental run's difference rows,
and the SQL edits of a (temporary copy of the) workspace."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from farmland.classes import as_class
from farmland.errors import InputError
from farmland.io.values import parse_boolean
from farmland.io.write import sqlite_values

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


def insert_rows(path: Path, tables: dict[str, pd.DataFrame], *,
                replaces: str | None = None) -> None:
    """Append ``tables`` (attribute table -> rows, named by their columns) to the workspace
    in place, in one SQLite transaction: all or nothing by SQLite's journal, the feature
    counts kept by GDAL's triggers. A column a table lacks (``row_index``, ``base_run``,
    ``output`` in older workspaces) is added first, as the GDAL path adds it — inside the
    transaction too (an explicit ``BEGIN``: Python's implicit one would leave it out).

    With ``replaces``, that run's rows are deleted first, in the same transaction, and
    then the geometries its rows used that no row uses any more (:func:`drop_orphans`
    restricted to those keys, so it reads the parcels once instead of comparing every
    stored geometry). The freed pages stay in the file for later runs (no ``VACUUM``:
    it would rewrite the whole workspace)."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            if replaces is not None:
                _delete_run_keeping_keys(con, replaces)
            for table, rows in tables.items():
                _insert(con, table, rows)
            if replaces is not None:
                _drop_unused_keys(con)
            create_indexes(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def _delete_run_keeping_keys(con: sqlite3.Connection, run_id: str) -> None:
    """Delete ``run_id``'s rows; its parcels' geometry keys go to the temporary table
    ``gone`` for :func:`_drop_unused_keys`."""
    con.execute("CREATE TEMP TABLE gone (geom_key TEXT PRIMARY KEY)")
    con.execute("INSERT OR IGNORE INTO gone SELECT geom_key FROM parcels "
                "WHERE run_id = ? AND geom_key IS NOT NULL", (run_id,))
    _delete_run(con, run_id)


#: keys of deleted rows from which :func:`_drop_unused_keys` compares them with every
#: parcel row's key (one index of all keys) instead of looking each up in one pass over the
#: parcel rows (0.4 s for 14 000 keys, 10 s for 10⁶ at a million-parcel province)
MANY_KEYS = 100_000


def _drop_unused_keys(con: sqlite3.Connection) -> None:
    """Delete the geometries of ``gone`` that no parcel row uses now."""
    if con.execute("SELECT count(*) FROM gone").fetchone()[0] > MANY_KEYS:
        con.execute("DELETE FROM gone WHERE geom_key IN (SELECT geom_key FROM parcels)")
    else:
        con.execute("DELETE FROM gone WHERE geom_key IN (SELECT geom_key FROM parcels "
                    "WHERE geom_key IN (SELECT geom_key FROM gone))")
    con.execute("DELETE FROM geometries WHERE geom_key IN (SELECT geom_key FROM gone)")
    con.execute("DROP TABLE gone")


def create_indexes(con: sqlite3.Connection) -> None:
    """The workspace's indexes (:data:`INDEXES`, ``IF NOT EXISTS``) on the tables it has."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    for sql in INDEXES:
        if sql.split(" ON ")[1].split("(")[0] in tables:
            con.execute(sql)


def _insert(con: sqlite3.Connection, table: str, rows: pd.DataFrame) -> None:
    have = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
    for col in rows.columns.difference(list(have), sort=False):
        kind = "INTEGER" if rows[col].dtype.kind in "iu" else "TEXT"
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{col}" {kind}')
    if rows.empty:
        return
    names = ", ".join(f'"{c}"' for c in rows.columns)
    marks = ", ".join("?" * len(rows.columns))
    con.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
                    zip(*(sqlite_values(rows[c]) for c in rows.columns), strict=True))
    con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ', "
                "'now') WHERE lower(table_name) = lower(?)", (table,))


def delete_rows(tmp: Path, run_id: str) -> None:
    """Remove a run's rows from runs, parcels and crops (one transaction)."""
    with contextlib.closing(sqlite3.connect(tmp)) as con, con:
        _delete_run(con, run_id)


def _delete_run(con: sqlite3.Connection, run_id: str) -> None:
    """Delete a run's rows from runs, parcels and crops (those of them the file has)."""
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in ("parcels", "crops", "runs"):
        if table in tables:
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


def differing_rows(new: pd.DataFrame, old: pd.DataFrame, columns, *, mask: bool = False
                   ) -> np.ndarray:
    """Positions of the rows of ``new`` whose ``columns`` differ from ``old``'s (row by
    position; a boolean mask with ``mask=True``). Missing values are equal to each other
    whatever their marker (None, NaN, <NA>); numbers (numpy or nullable) compare as
    floats, everything else as Python values. The one comparison of the incremental run
    (which rows to rewrite) and the workspace (which rows to store)."""
    differs = np.zeros(len(new), dtype=bool)
    for col in columns:
        a, b = new[col], old[col]
        if a.dtype.kind in "biuf":  # numpy and nullable (Int8, boolean) numbers alike
            x = pd.to_numeric(a, errors="coerce").to_numpy(float, na_value=np.nan)
            y = pd.to_numeric(b, errors="coerce").to_numpy(float, na_value=np.nan)
            differs |= ~((x == y) | (np.isnan(x) & np.isnan(y)))
        else:
            x, y = a.astype(object), b.astype(object)
            both_na = (x.isna().to_numpy(bool) & y.isna().to_numpy(bool))
            differs |= ~((x.to_numpy() == y.to_numpy()) | both_na)
    return differs if mask else np.flatnonzero(differs)


def store_in_full(tmp: Path, dependants: list[tuple[str, pd.DataFrame]]) -> None:
    """Replace the difference rows of each dependant run by all its rows (before its base
    run goes); its ``base_run`` becomes NULL."""
    for run_id, rows in dependants:
        with contextlib.closing(sqlite3.connect(tmp)) as con, con:
            con.execute('DELETE FROM parcels WHERE run_id = ?', (run_id,))
            con.execute("UPDATE runs SET base_run = NULL WHERE run_id = ?", (run_id,))
        write_table(tmp, rows.assign(run_id=run_id)[["run_id", *PARCEL_COLUMNS, "geom_key"]],
                    "parcels", layer_names(tmp))


def append_run(tmp: Path, run: pd.DataFrame, attrs: pd.DataFrame,
               geoms: gpd.GeoDataFrame, crops: pd.DataFrame) -> None:
    """Append one run to the (temporary copy of the) workspace; runs row last."""
    layers = layer_names(tmp) if tmp.exists() else set()
    if len(geoms):
        write_table(tmp, geoms, "geometries", layers, geometry_type="Unknown",
                    promote_to_multi=False)
    diff = "row_index" in attrs.columns  # an incremental run's rows (module docstring)
    if diff and "row_index" not in pyogrio.read_info(tmp, layer="parcels")["fields"]:
        execute_sql(tmp, "ALTER TABLE parcels ADD COLUMN row_index INTEGER")
    write_table(tmp, attrs[["run_id", *PARCEL_COLUMNS, "geom_key",
                            *(["row_index"] if diff else [])]], "parcels", layers)
    if len(crops):
        write_table(tmp, crops[["run_id", *CROP_COLUMNS]], "crops", layers)
    fields = pyogrio.read_info(tmp, layer="runs")["fields"] if "runs" in layers else []
    if "runs" in layers and "output" not in fields:
        execute_sql(tmp, "ALTER TABLE runs ADD COLUMN output TEXT")   # a workspace from before
    if pd.isna(run["base_run"].iloc[0]):
        run = run.drop(columns="base_run")  # the column is added by the first incremental run
    elif "runs" in layers and "base_run" not in fields:
        execute_sql(tmp, "ALTER TABLE runs ADD COLUMN base_run TEXT")
    write_table(tmp, run, "runs", layers)
    with contextlib.closing(sqlite3.connect(tmp)) as con, con:
        create_indexes(con)


def write_table(path: Path, df: pd.DataFrame, layer: str, layers: set[str], **kw: Any) -> None:
    pyogrio.write_dataframe(df, path, layer=layer, driver="GPKG", append=layer in layers, **kw)


def class_areas(parcels: pd.DataFrame) -> pd.DataFrame:
    """``area_mu`` and ``final_class`` of every parcel as stored (for the runs row)."""
    return pd.DataFrame({"area_mu": pd.to_numeric(parcels["area_mu"], errors="coerce")
                         .astype(float).to_numpy(),
                         "final_class": as_class(parcels["final_class"].to_numpy()).array})


def run_row(run_id: str, label: str | None, manifest: str, attrs: pd.DataFrame,
            crops: pd.DataFrame, output: str | None = None) -> pd.DataFrame:
    """The ``runs`` row of a run (``attrs``: :func:`class_areas` of its parcels)."""
    area = attrs["area_mu"].fillna(0.0)
    cls = attrs["final_class"]
    row = {"run_id": run_id, "created": datetime.now(UTC).isoformat(timespec="seconds"),
           "label": label or "", "n_parcels": len(attrs), "n_crops": len(crops)}
    for code in (1, 2, 3):
        row[f"class{code}_mu"] = float(area[cls.eq(code).fillna(False)].sum())
    row["unclassified_mu"] = float(area[cls.isna()].sum())
    row["total_mu"] = float(area.sum())
    row["manifest"] = manifest
    out = pd.DataFrame([row])
    out["output"] = pd.array([output], dtype="string")   # a text field even when unknown
    return out
