"""Run history: every classification run kept in one GeoPackage (domain.md §4, 动态调整).

Layout of the workspace file (default ``farmland_runs.gpkg``):

- ``runs`` (table): ``run_id`` (``R0001``, ``R0002`` …), ``created`` (ISO 8601, UTC),
  ``label``, ``n_parcels``, ``n_crops``, ``class1_mu`` … ``unclassified_mu``,
  ``total_mu`` (亩) and ``manifest`` (JSON text of the run's manifest);
- ``parcels`` (table): the run's parcels (:data:`PARCEL_COLUMNS`) with ``run_id`` and
  ``geom_key``, the BLAKE2b-128 hash of the parcel's WKB geometry;
- ``geometries`` (layer, the workspace CRS): one row per distinct geometry
  (``geom_key``, geometry). A run stores only geometries not already present, so
  an unchanged parcel map costs attributes only (docs/decisions.md);
- ``crops`` (table): the run's crop samples (:data:`CROP_COLUMNS`) with ``run_id``.

Append-only: :meth:`Workspace.add_run` never rewrites existing rows, run ids are
never reused. Atomic: the file is copied, the run is appended to the copy, and the
copy replaces the file with :func:`os.replace`; a failure leaves the old file as it
was. A lock file next to the workspace keeps two writers apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from farmland.classes import as_class
from farmland.errors import CRSError, FarmlandError, InputError
from farmland.io.values import parse_boolean
from farmland.io.write import atomic_write
from farmland.runs.folder import RUN_ID, WORKSPACE

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = WORKSPACE
#: parcel columns kept per run (missing ones are stored empty)
PARCEL_COLUMNS = ("parcel_id", "township", "landuse", "area_mu", "soil_class", "final_class",
                  "rule", "driving_element", "sample_ids", "qa_flags")
#: crop-sample columns kept per run
CROP_COLUMNS = ("parcel_id", "year", "exceeds", "sample_id", "crop")
_TEXT = ("parcel_id", "township", "landuse", "rule", "driving_element", "sample_ids",
         "qa_flags", "sample_id", "crop", "geom_key")
_INDEXES = ("CREATE INDEX IF NOT EXISTS idx_parcels_run_id ON parcels(run_id)",
            "CREATE INDEX IF NOT EXISTS idx_geometries_key ON geometries(geom_key)",
            "CREATE INDEX IF NOT EXISTS idx_crops_run_id ON crops(run_id)")


class Workspace:
    """A GeoPackage holding every classification run.

    Parameters
    ----------
    path
        The workspace file; created by the first :meth:`add_run`.
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_WORKSPACE) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # -- reading --------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """All runs, oldest first (one row per run; ``manifest`` as JSON text)."""
        if not self.path.exists():
            return pd.DataFrame(columns=["run_id", "created", "label", "n_parcels", "n_crops",
                                         "class1_mu", "class2_mu", "class3_mu",
                                         "unclassified_mu", "total_mu", "manifest"])
        if "runs" not in _layers(self.path):
            raise InputError("not a farmland workspace (no 'runs' table)", file=self.path,
                             fix="give the workspace file written by farmland classify "
                                 "--workspace, or a new file name")
        runs = pyogrio.read_dataframe(self.path, layer="runs", read_geometry=False)
        return runs.sort_values("run_id", kind="stable").reset_index(drop=True)

    def load_run(self, run_id: str) -> tuple[gpd.GeoDataFrame, pd.DataFrame | None,
                                              dict[str, Any]]:
        """Parcels (GeoDataFrame, workspace CRS), crop samples (or ``None``) and manifest.

        ``final_class``/``soil_class`` come back as ``Int8`` (``<NA>`` unclassified),
        parcels in the order they were added.
        """
        row = self._run_row(run_id)
        parcels = self._read_parcels(run_id)
        crops = None
        if int(row["n_crops"]) > 0:
            crops = pyogrio.read_dataframe(self.path, layer="crops", read_geometry=False,
                                           where=f"run_id = '{run_id}'")
            crops = _crop_types(crops.drop(columns="run_id"))
        return parcels, crops, json.loads(row["manifest"])

    def _run_row(self, run_id: str) -> pd.Series:
        runs = self.runs()
        hit = runs.loc[runs["run_id"] == str(run_id)] if RUN_ID.match(str(run_id)) else runs[:0]
        if hit.empty:
            known = ", ".join(runs["run_id"]) or "none yet"
            raise InputError(f"no run {run_id!r} in the workspace", file=self.path,
                             value=run_id, fix=f"use one of: {known} (farmland runs "
                                               f"{self.path} lists them)")
        return hit.iloc[0]

    def _read_parcels(self, run_id: str) -> gpd.GeoDataFrame:
        if "geometries" in _layers(self.path):
            sql = ("SELECT p.*, g.geom FROM parcels p LEFT JOIN geometries g "
                   f"ON p.geom_key = g.geom_key WHERE p.run_id = '{run_id}' ORDER BY p.fid")
            df = pyogrio.read_dataframe(self.path, sql=sql)
            crs = pyogrio.read_info(self.path, layer="geometries")["crs"]
            df = df.set_crs(crs, allow_override=True)
        else:
            attrs = pyogrio.read_dataframe(self.path, layer="parcels", read_geometry=False,
                                           where=f"run_id = '{run_id}'")
            df = gpd.GeoDataFrame(attrs, geometry=[None] * len(attrs))
        df = _text(df.drop(columns=["run_id", "geom_key"]))
        for col in ("soil_class", "final_class"):
            df[col] = as_class(df[col].to_numpy()).array
        return df

    # -- writing --------------------------------------------------------------------
    def add_run(self, parcels: pd.DataFrame, *, crops: pd.DataFrame | None = None,
                manifest: dict[str, Any], label: str | None = None) -> str:
        """Append a classification run; return its new id (``R0001``, ``R0002`` …).

        Parameters
        ----------
        parcels
            Classification ``parcels`` layer (GeoDataFrame in a metric CRS, or a
            DataFrame without geometry). Needs ``parcel_id``, ``final_class``,
            ``area_mu``; the other :data:`PARCEL_COLUMNS` are stored when present.
        crops
            The run's ``crops`` layer (``parcel_id, year, exceeds``; ``sample_id``,
            ``crop`` when present) or ``None``.
        manifest
            JSON-serialisable manifest of the run (inputs and hashes, rules profile
            and hash, parameters, seed, version).
        label
            Free text shown by ``farmland runs``.
        """
        attrs, geoms = _parcel_tables(parcels)
        crop_table = _crop_table(crops)
        try:
            manifest_text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, default=str,
                                       allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"manifest is not JSON-serialisable: {exc}",
                             fix="pass plain dicts, lists, strings and numbers") from exc
        with self._lock():
            run_id = _next_run_id(self.runs()["run_id"])
            new_geoms = self._new_geometries(geoms)
            run = _run_row(run_id, label, manifest_text, attrs, crop_table)
            self._atomic(lambda tmp: _append_run(tmp, run, attrs.assign(run_id=run_id),
                                                 new_geoms,
                                                 crop_table.assign(run_id=run_id)))
        log.info("workspace %s: added %s (%d parcels, %d new geometries)", self.path, run_id,
                 len(attrs), len(new_geoms))
        return run_id

    def _new_geometries(self, geoms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Geometries whose key is not stored yet; the run's CRS must be the workspace's."""
        if geoms.empty or not self.path.exists() or "geometries" not in _layers(self.path):
            return geoms
        stored_crs = pyogrio.read_info(self.path, layer="geometries")["crs"]
        if stored_crs and geoms.crs is not None and CRS(stored_crs) != CRS(geoms.crs):
            raise CRSError("the run's CRS differs from the workspace CRS", file=self.path,
                           value=str(geoms.crs),
                           fix=f"reproject the parcels to {stored_crs} before adding the run")
        keys = pyogrio.read_dataframe(self.path, layer="geometries", columns=["geom_key"],
                                      read_geometry=False)["geom_key"]
        return geoms.loc[~geoms["geom_key"].isin(keys)]

    def _atomic(self, write: Callable[[Path], None]) -> None:
        """Run ``write`` on a temporary copy, then replace the workspace with it."""
        with atomic_write(self.path, overwrite=True) as tmp:
            if self.path.exists():
                shutil.copyfile(self.path, tmp)
            write(tmp)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise FarmlandError(f"{lock}: the workspace is being written by another farmland "
                                "process. Fix: wait for it, or delete the lock file if no "
                                "farmland process is running") from None
        try:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            yield
        finally:
            lock.unlink(missing_ok=True)


# -- helpers --------------------------------------------------------------------------
def _layers(path: Path) -> set[str]:
    return {str(name) for name, _ in pyogrio.list_layers(path)}


def _next_run_id(existing: pd.Series) -> str:
    numbers = existing.astype("str").str.extract(r"^R(\d+)$")[0].dropna().astype(int)
    return f"R{(numbers.max() if len(numbers) else 0) + 1:04d}"


def _parcel_tables(parcels: pd.DataFrame) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Attribute table (:data:`PARCEL_COLUMNS` + ``geom_key``) and keyed geometries."""
    for col in ("parcel_id", "final_class", "area_mu"):
        if col not in parcels.columns:
            raise InputError(f"parcels lack the column {col}", column=col,
                             fix="pass the parcels layer of a classification run")
    attrs = pd.DataFrame(index=range(len(parcels)))
    for col in PARCEL_COLUMNS:
        values = parcels[col].to_numpy() if col in parcels.columns else [pd.NA] * len(parcels)
        attrs[col] = values
    attrs = _text(attrs)
    attrs["area_mu"] = pd.to_numeric(attrs["area_mu"], errors="coerce").astype(float)
    for col in ("soil_class", "final_class"):
        attrs[col] = as_class(attrs[col].to_numpy()).array
    has_geom = isinstance(parcels, gpd.GeoDataFrame) and parcels.geometry.notna().any()
    if not has_geom:
        attrs["geom_key"] = pd.Series(pd.NA, index=attrs.index, dtype="str")
        return attrs, gpd.GeoDataFrame({"geom_key": []}, geometry=[], crs=None)
    geometry = parcels.geometry.to_numpy()
    wkb = shapely.to_wkb(geometry)
    keys = [None if b is None else hashlib.blake2b(b, digest_size=16).hexdigest() for b in wkb]
    attrs["geom_key"] = pd.Series(keys, dtype="str")
    geoms = gpd.GeoDataFrame({"geom_key": attrs["geom_key"]}, geometry=geometry,
                             crs=parcels.crs)
    geoms = geoms.loc[geoms["geom_key"].notna()].drop_duplicates("geom_key")
    return attrs, geoms


def _crop_table(crops: pd.DataFrame | None) -> pd.DataFrame:
    if crops is None:
        crops = pd.DataFrame(columns=list(CROP_COLUMNS))
    missing = [c for c in ("parcel_id", "year", "exceeds") if c not in crops.columns]
    if missing:
        raise InputError(f"crop samples lack the column(s) {', '.join(missing)}",
                         column=missing[0], fix="pass the crops layer of a classification run")
    out = pd.DataFrame({c: crops[c].to_numpy() if c in crops.columns else [pd.NA] * len(crops)
                        for c in CROP_COLUMNS})
    return _crop_types(out)


def _crop_types(crops: pd.DataFrame) -> pd.DataFrame:
    out = _text(crops.copy())
    out["year"] = pd.to_numeric(out["year"], errors="coerce").astype("Int64")
    out["exceeds"] = parse_boolean(out["exceeds"]).array
    return out.reset_index(drop=True)


def _text(df: pd.DataFrame) -> pd.DataFrame:
    for col in df.columns.intersection(_TEXT):
        df[col] = pd.Series(df[col].to_numpy(), index=df.index, dtype=object).astype("str")
    return df


def _run_row(run_id: str, label: str | None, manifest: str, attrs: pd.DataFrame,
             crops: pd.DataFrame) -> pd.DataFrame:
    area = attrs["area_mu"].fillna(0.0)
    cls = attrs["final_class"]
    row = {"run_id": run_id, "created": datetime.now(UTC).isoformat(timespec="seconds"),
           "label": label or "", "n_parcels": len(attrs), "n_crops": len(crops)}
    for code in (1, 2, 3):
        row[f"class{code}_mu"] = float(area[cls.eq(code).fillna(False)].sum())
    row["unclassified_mu"] = float(area[cls.isna()].sum())
    row["total_mu"] = float(area.sum())
    row["manifest"] = manifest
    return pd.DataFrame([row])


def _append_run(tmp: Path, run: pd.DataFrame, attrs: pd.DataFrame,
                geoms: gpd.GeoDataFrame, crops: pd.DataFrame) -> None:
    """Append one run to the (temporary copy of the) workspace; runs row last."""
    layers = _layers(tmp) if tmp.exists() else set()
    if len(geoms):
        _write(tmp, geoms, "geometries", layers, geometry_type="Unknown",
               promote_to_multi=False)
    _write(tmp, attrs[["run_id", *PARCEL_COLUMNS, "geom_key"]], "parcels", layers)
    if len(crops):
        _write(tmp, crops[["run_id", *CROP_COLUMNS]], "crops", layers)
    _write(tmp, run, "runs", layers)
    with contextlib.closing(sqlite3.connect(tmp)) as con, con:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        for sql in _INDEXES:
            if sql.split(" ON ")[1].split("(")[0] in tables:
                con.execute(sql)


def _write(path: Path, df: pd.DataFrame, layer: str, layers: set[str], **kw: Any) -> None:
    pyogrio.write_dataframe(df, path, layer=layer, driver="GPKG", append=layer in layers, **kw)
