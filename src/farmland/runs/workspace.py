"""Run history: every classification run kept in one GeoPackage (domain.md §4, 动态调整).

Layout of the workspace file (default ``farmland_runs.gpkg``):

- ``runs`` (table): ``run_id`` (``R0001``, ``R0002`` …), ``created`` (ISO 8601, UTC),
  ``label``, ``n_parcels``, ``n_crops``, ``class1_mu`` … ``unclassified_mu``,
  ``total_mu`` (亩), ``manifest`` (JSON text of the run's manifest), ``output``
  (the run's output folder relative to the workspace's folder; NULL when unknown,
  and absent in workspaces written before it existed) and ``base_run`` (below; absent
  until the first incremental run);
- ``parcels`` (table): the run's parcels (:data:`PARCEL_COLUMNS`) with ``run_id`` and
  ``geom_key``, the BLAKE2b-128 hash of the parcel's WKB geometry. An incremental run
  (its manifest's ``incremental.from`` is a run of this workspace, the same parcels in
  the same order) stores only the rows that differ from that run's, with ``row_index``
  (the parcel's position), and names that run in ``base_run``: reading it back takes the
  base run's parcels and replaces those rows, so it reads as if every row were stored
  (docs/decisions.md). Deleting or replacing a base run first stores its dependants'
  rows in full;
- ``geometries`` (layer, the workspace CRS): one row per distinct geometry
  (``geom_key``, geometry). A run stores only geometries not already present, so
  an unchanged parcel map costs attributes only (docs/decisions.md);
- ``crops`` (table): the run's crop samples (:data:`CROP_COLUMNS`) with ``run_id``;
- ``workspace_meta`` (table ``key, value``), written by the first delete only:
  ``last_run_id``, the highest run id ever issued.

Rows are only appended, except by the three explicit edits: :meth:`Workspace.relabel`,
:meth:`Workspace.delete_run` and ``add_run(..., replaces=run_id)`` (a rerun into the
same output folder). Run ids are never reused, even after a delete. Atomic: the file is
copied, the change is made in the copy, and the copy replaces the file with
:func:`os.replace`; a failure leaves the old file as it was. An incremental run stored as
differences that brings no new geometry is appended to the file itself in one SQLite
transaction (atomic by SQLite's journal; the copy of a file holding every earlier run
would cost more than the run's rows). A lock file next to the
workspace keeps two writers apart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS

from farmland.classes import as_class
from farmland.errors import CRSError, FarmlandError, InputError
from farmland.io.write import atomic_write
from farmland.runs.folder import RUN_ID, WORKSPACE, portable_path
from farmland.runs.workspace_tables import CROP_COLUMNS, PARCEL_COLUMNS
from farmland.runs.workspace_tables import append_run as _append_run
from farmland.runs.workspace_tables import as_text as _text
from farmland.runs.workspace_tables import class_areas as _class_areas
from farmland.runs.workspace_tables import crop_table as _crop_table
from farmland.runs.workspace_tables import crop_types as _crop_types
from farmland.runs.workspace_tables import delete_rows as _delete_rows
from farmland.runs.workspace_tables import differing_rows as _differing_rows
from farmland.runs.workspace_tables import drop_orphans as _drop_orphans
from farmland.runs.workspace_tables import execute_sql as _sql
from farmland.runs.workspace_tables import insert_rows as _insert_rows
from farmland.runs.workspace_tables import keyed_rows as _keyed
from farmland.runs.workspace_tables import layer_names as _layers
from farmland.runs.workspace_tables import parcel_attrs as _parcel_attrs
from farmland.runs.workspace_tables import run_row as _new_run_row
from farmland.runs.workspace_tables import store_in_full as _store_in_full
from farmland.runs.workspace_tables import vacuum as _vacuum

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = WORKSPACE
RUN_COLUMNS = ("run_id", "created", "label", "n_parcels", "n_crops", "class1_mu", "class2_mu",
               "class3_mu", "unclassified_mu", "total_mu", "manifest", "output", "base_run")
META = "workspace_meta"
#: up to this many geometry keys are looked up in the index, more are read in one go
_FEW_KEYS = 200_000


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
        """All runs, oldest id first (one row per run; ``manifest`` as JSON text,
        ``output`` the run folder relative to the workspace's folder, ``None`` unknown)."""
        if not self.path.exists():
            return pd.DataFrame(columns=list(RUN_COLUMNS))
        if "runs" not in _layers(self.path):
            raise InputError("not a farmland workspace (no 'runs' table)", file=self.path,
                             fix="give the workspace file written by farmland classify "
                                 "--workspace, or a new file name")
        runs = pyogrio.read_dataframe(self.path, layer="runs", read_geometry=False)
        for col in ("output", "base_run"):   # written before the column existed
            if col not in runs.columns:
                runs[col] = pd.Series(None, index=runs.index, dtype=object)
        return runs.sort_values("run_id", key=_id_number, kind="stable").reset_index(drop=True)

    def run_of_output(self, output: str | os.PathLike) -> str | None:
        """The newest run whose output folder is ``output`` (``None``: no such run, or
        only runs whose folder is unknown)."""
        runs = self.runs()
        hit = runs.loc[runs["output"] == self._portable(output), "run_id"]
        return None if hit.empty else str(hit.iloc[-1])

    def _portable(self, output: str | os.PathLike) -> str:
        return portable_path(output, self.path.resolve().parent)

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
            fix = f"use one of: {known} (farmland runs {self.path} lists them)"
            issued = _highest(runs["run_id"], _last_issued(self.path))
            if RUN_ID.match(str(run_id)) and 0 < int(str(run_id)[1:]) <= issued:
                raise InputError(f"no run {run_id!r} in the workspace: it was deleted (run "
                                 "ids are never reused)", file=self.path, fix=fix)
            raise InputError(f"no run {run_id!r} in the workspace", file=self.path,
                             value=run_id, fix=fix)
        return hit.iloc[0]

    def _read_parcels(self, run_id: str) -> gpd.GeoDataFrame:
        df = self._stored_parcels(run_id, geometry=True)
        return df.drop(columns="geom_key")

    def _stored_parcels(self, run_id: str, *, geometry: bool) -> pd.DataFrame:
        """A run's parcel rows (``geom_key`` kept; with geometry: a GeoDataFrame), the
        rows of an incremental run laid over its base run's."""
        base = self._base_of(run_id)
        if geometry and "geometries" in _layers(self.path):
            sql = ("SELECT p.*, g.geom FROM parcels p LEFT JOIN geometries g "
                   f"ON p.geom_key = g.geom_key WHERE p.run_id = '{run_id}' ORDER BY p.fid")
            df = pyogrio.read_dataframe(self.path, sql=sql)
            crs = pyogrio.read_info(self.path, layer="geometries")["crs"]
            df = df.set_crs(crs, allow_override=True)
        else:
            attrs = pyogrio.read_dataframe(  # in stored order: row_index counts positions
                self.path, sql=f"SELECT * FROM parcels WHERE run_id = '{run_id}' ORDER BY fid",
                read_geometry=False, use_arrow=True)
            df = (gpd.GeoDataFrame(attrs, geometry=[None] * len(attrs)) if geometry
                  else attrs)
        df = _text(df.drop(columns=["run_id"]))
        for col in ("soil_class", "final_class"):
            df[col] = as_class(df[col].to_numpy()).array
        rows = df.pop("row_index") if "row_index" in df.columns else None
        if base is None:
            return df.reset_index(drop=True)
        full = self._stored_parcels(base, geometry=geometry)
        at = rows.to_numpy(dtype="int64")
        for col in full.columns:
            if isinstance(full, gpd.GeoDataFrame) and col == full.geometry.name:
                geoms = full.geometry.values.copy()
                geoms[at] = df.geometry.values
                full = full.set_geometry(gpd.GeoSeries(geoms, index=full.index, crs=full.crs))
                continue
            values = full[col].to_numpy(copy=True)
            values[at] = df[col].to_numpy()
            full[col] = pd.Series(values, index=full.index).astype(full[col].dtype)
        return full

    def _base_of(self, run_id: str) -> str | None:
        """The run whose parcel rows run ``run_id`` stores differences from, or ``None``."""
        base = self._run_row(run_id).get("base_run")
        return str(base) if isinstance(base, str) and base else None

    # -- writing --------------------------------------------------------------------
    def add_run(self, parcels: pd.DataFrame, *, crops: pd.DataFrame | None = None,
                manifest: dict[str, Any], label: str | None = None,
                output: str | os.PathLike | None = None, replaces: str | None = None,
                differences: tuple[str, np.ndarray] | None = None) -> str:
        """Append a classification run; return its new id (``R0001``, ``R0002`` …), or
        replace run ``replaces`` and return that id.

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
            Free text shown by ``farmland runs``. When replacing, ``None`` keeps the
            replaced run's label.
        output
            The run's output folder (stored relative to the workspace's folder), so that
            a rerun into the same folder can find the run it replaces
            (:meth:`run_of_output`).
        replaces
            Id of a run this one replaces (a rerun with ``--overwrite``): its rows are
            removed, the new run takes its id, and geometries no other run uses are
            dropped, all in one atomic write. Unknown id: ``InputError``.
        differences
            ``(run id, positions)``: these parcels are that run's except at these rows
            (in the columns kept here), as an incremental run knows from its comparison
            with the previous run's output. The rows are stored as differences without
            reading that run back; without it (or when that run is not in the workspace
            with as many parcels) the manifest's ``incremental.from`` run is read and
            compared. Rows stored as differences with no new geometry are appended in
            place, in one SQLite transaction (no copy of the workspace file).
        """
        _parcel_attrs(parcels.iloc[:0])  # the needed columns, before any work
        crop_rows = _crop_table(crops)
        try:
            manifest_text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, default=str,
                                       allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"manifest is not JSON-serialisable: {exc}",
                             fix="pass plain dicts, lists, strings and numbers") from exc
        folder = None if output is None else self._portable(output)
        with self._lock():
            if replaces is None:
                run_id = _next_run_id(self.runs()["run_id"], _last_issued(self.path))
            else:
                old = self._run_row(replaces)
                run_id = str(old["run_id"])
                label = old["label"] if label is None and pd.notna(old["label"]) else label
            run = _new_run_row(run_id, label, manifest_text, _class_areas(parcels),
                               crop_rows, folder)
            base, stored = self._rows_to_store(parcels, manifest, run_id, differences)
            stored, geoms = _keyed(stored, parcels)
            new_geoms = self._new_geometries(geoms)
            run["base_run"] = pd.array([base], dtype="string")
            dependants = [] if replaces is None else self._dependants(run_id)
            if base is not None and new_geoms.empty and not dependants \
                    and self._append_in_place(run, stored, crop_rows, replaces is not None):
                log.info("workspace %s: %s %s in place (%d parcels; %d rows differ from "
                         "%s)", self.path, "added" if replaces is None else "replaced",
                         run_id, len(parcels), len(stored), base)
                return run_id

            def write(tmp: Path) -> None:
                if replaces is not None:
                    _store_in_full(tmp, dependants)
                    _delete_rows(tmp, run_id)
                _append_run(tmp, run, stored.assign(run_id=run_id), new_geoms,
                            crop_rows.assign(run_id=run_id))
                if replaces is not None:      # the new rows reuse the freed pages: no VACUUM
                    _drop_orphans(tmp)

            self._atomic(write)
        log.info("workspace %s: %s %s (%d parcels%s, %d new geometries)", self.path,
                 "added" if replaces is None else "replaced", run_id, len(parcels),
                 "" if base is None else f"; {len(stored)} rows differ from {base}",
                 len(new_geoms))
        return run_id

    def _append_in_place(self, run: pd.DataFrame, stored: pd.DataFrame,
                         crop_rows: pd.DataFrame, replace: bool = False) -> bool:
        """Append a run stored as differences to the workspace file itself, in one SQLite
        transaction (attribute rows only: no geometry to index), after deleting the rows
        of the run of the same id when ``replace`` (and the geometries only they used);
        ``False`` (nothing done) when a table it needs is not there yet."""
        if {"parcels", "runs", *(["crops"] if len(crop_rows) else [])} - _layers(self.path):
            return False
        run_id = str(run["run_id"].iloc[0])
        tables = {"parcels": stored.assign(run_id=run_id)[["run_id", *PARCEL_COLUMNS,
                                                           "geom_key", "row_index"]]}
        if len(crop_rows):
            tables["crops"] = crop_rows.assign(run_id=run_id)[["run_id", *CROP_COLUMNS]]
        _insert_rows(self.path, {**tables, "runs": run}, replaces=run_id if replace else None)
        return True

    def _rows_to_store(self, parcels: pd.DataFrame, manifest: dict[str, Any], run_id: str,
                       differences: tuple[str, np.ndarray] | None
                       ) -> tuple[str | None, pd.DataFrame]:
        """``(base run, rows to store)``: the rows ``differences`` names (with
        ``row_index``) when its run is here with as many parcels, else
        :meth:`_differences` of all rows."""
        if differences is not None and self.path.exists():
            base, rows = str(differences[0]), np.asarray(differences[1], dtype=np.int64)
            runs = self.runs()
            hit = runs.loc[runs["run_id"] == base, "n_parcels"]
            if base != run_id and len(hit) and int(hit.iloc[0]) == len(parcels):
                return base, _parcel_attrs(parcels.iloc[rows]).assign(row_index=rows)
        return self._differences(_parcel_attrs(parcels), manifest, run_id)

    def _differences(self, attrs: pd.DataFrame, manifest: dict[str, Any], run_id: str
                     ) -> tuple[str | None, pd.DataFrame]:
        """``(base run, rows to store)``: the rows of ``attrs`` that differ from the run the
        manifest's incremental record names (with ``row_index``), or ``(None, attrs)``."""
        base = str((manifest.get("incremental") or {}).get("from") or "")
        if not base or base == run_id or not self.path.exists():
            return None, attrs
        runs = self.runs()
        if base not in set(runs["run_id"]):
            return None, attrs
        old = self._stored_parcels(base, geometry=False)
        if len(old) != len(attrs) or not np.array_equal(old["parcel_id"].to_numpy(object),
                                                        attrs["parcel_id"].to_numpy(object)):
            return None, attrs
        rows = _differing_rows(attrs, old, PARCEL_COLUMNS)
        return base, attrs.iloc[rows].assign(row_index=rows)

    def _dependants(self, run_id: str) -> list[tuple[str, pd.DataFrame]]:
        """The runs storing differences from ``run_id``, with their parcel rows in full."""
        runs = self.runs()
        ids = runs.loc[runs["base_run"] == str(run_id), "run_id"].astype(str)
        return [(rid, self._stored_parcels(rid, geometry=False)) for rid in ids]

    def relabel(self, run_id: str, label: str) -> str:
        """Give run ``run_id`` a new label; return its old label."""
        self._require_file()
        with self._lock():
            old = self._run_row(run_id)["label"]
            self._atomic(lambda tmp: _sql(tmp, "UPDATE runs SET label = ? WHERE run_id = ?",
                                          (str(label), str(run_id))))
        log.info("workspace %s: relabelled %s", self.path, run_id)
        return "" if pd.isna(old) else str(old)

    def delete_run(self, run_id: str) -> pd.Series:
        """Delete run ``run_id`` (its rows in runs, parcels and crops, and the geometries
        no remaining run uses); return its ``runs`` row. Its id is never issued again."""
        self._require_file()
        with self._lock():
            runs = self.runs()
            row = self._run_row(run_id)
            last = f"R{_highest(runs['run_id'], _last_issued(self.path)):04d}"
            dropped = []
            dependants = self._dependants(str(row["run_id"]))

            def write(tmp: Path) -> None:
                _store_in_full(tmp, dependants)
                _delete_rows(tmp, str(row["run_id"]))
                dropped.append(_drop_orphans(tmp))
                _set_last_issued(tmp, last)
                _vacuum(tmp)

            self._atomic(write)
        log.info("workspace %s: deleted %s (%d geometries no other run used)", self.path,
                 row["run_id"], dropped[0])
        return row

    def _require_file(self) -> None:
        if not self.path.is_file():
            raise InputError("workspace not found", file=self.path,
                             fix="give the workspace file written by farmland classify "
                                 "--workspace (farmland runs list FILE shows its runs)")

    def _new_geometries(self, geoms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Geometries whose key is not stored yet; the run's CRS must be the workspace's."""
        if geoms.empty or not self.path.exists() or "geometries" not in _layers(self.path):
            return geoms
        stored_crs = pyogrio.read_info(self.path, layer="geometries")["crs"]
        if stored_crs and geoms.crs is not None and CRS(stored_crs) != CRS(geoms.crs):
            raise CRSError("the run's CRS differs from the workspace CRS", file=self.path,
                           value=str(geoms.crs),
                           fix=f"reproject the parcels to {stored_crs} before adding the run")
        wanted = geoms["geom_key"].astype(object)
        if len(wanted) <= _FEW_KEYS:  # an incremental run's few rows: look them up (indexed)
            keys = set()
            with contextlib.closing(sqlite3.connect(self.path)) as con:
                for start in range(0, len(wanted), 500):
                    part = wanted.iloc[start:start + 500].tolist()
                    keys.update(k for (k,) in con.execute(
                        "SELECT geom_key FROM geometries WHERE geom_key IN "
                        f"({','.join('?' * len(part))})", part))
            return geoms.loc[~wanted.isin(keys)]
        keys = pyogrio.read_dataframe(self.path, layer="geometries", columns=["geom_key"],
                                      read_geometry=False, use_arrow=True)["geom_key"]
        # hashed lookup of plain strings: Arrow-string isin takes seconds at 10⁶ keys
        return geoms.loc[~wanted.isin(set(keys.astype(object)))]

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
def _id_number(ids: pd.Series) -> pd.Series:
    """The number of each run id (``R0012`` -> 12; -1 for anything else), for sorting."""
    return pd.to_numeric(ids.astype("str").str.extract(r"^R(\d+)$")[0],
                         errors="coerce").fillna(-1).astype(int)


def _highest(existing: pd.Series, last_issued: str | None = None) -> int:
    """The highest run number issued: of the ``existing`` ids and ``last_issued``."""
    numbers = _id_number(pd.concat([existing.astype("str"), pd.Series([last_issued or ""])]))
    return max(int(numbers.max()), 0)


def _next_run_id(existing: pd.Series, last_issued: str | None = None) -> str:
    """The id after every id ever issued (a deleted run's id is not issued again)."""
    return f"R{_highest(existing, last_issued) + 1:04d}"


def _last_issued(path: Path) -> str | None:
    """``last_run_id`` of the ``workspace_meta`` table (``None``: no run deleted yet)."""
    if not path.exists() or META not in _layers(path):
        return None
    meta = pyogrio.read_dataframe(path, layer=META, read_geometry=False)
    hit = meta.loc[meta["key"] == "last_run_id", "value"]
    return None if hit.empty else str(hit.iloc[-1])


def _set_last_issued(tmp: Path, run_id: str) -> None:
    if META not in _layers(tmp):
        pyogrio.write_dataframe(pd.DataFrame({"key": ["last_run_id"], "value": [run_id]}),
                                tmp, layer=META, driver="GPKG")
    else:
        _sql(tmp, f"UPDATE {META} SET value = ? WHERE key = 'last_run_id'", (run_id,))
