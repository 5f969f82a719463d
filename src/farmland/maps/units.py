"""Counties and townships of a multi-county run: which county a parcel is in, what each
unit holds (class shares, safe-utilisation rate, evidence) and its outline.

- County of a parcel: its ``county`` column when present, else the first six digits of
  its nine-digit ``township_code`` (the county code of GB/T 2260 that township codes
  start with); a run without either is one county.
- Rates: :func:`county_rates` runs :func:`farmland.rate.safe_utilisation_rate` once per
  county on that county's parcels, measures and crop samples (each county is accounted
  as it reports: its own county compliance rate for townships with too few crop
  samples); the province row sums the counties' areas and goes through the same
  :func:`farmland.rate.accounting.finish_table`.
- Outlines (:func:`unit_outlines`): township polygons when given (matched by code, else
  by name), otherwise dissolved from the parcels on a grid: each cell of
  :func:`cell_size` metres takes the township holding most of its parcels' area, empty
  cells up to :data:`FILL_CELLS` cells from farmland take the nearest township (closes
  roads and small gaps; a parcel larger than four cells takes every cell whose centre it
  covers), and the labelled grid is polygonised (rasterio) — a coverage, so
  neighbours keep shared edges through the simplification. Linear in the parcels:
  about a second per 100 000.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from farmland import classes
from farmland.vocabulary import townships_of

logger = logging.getLogger(__name__)

#: digits of a county code at the start of a township code (GB/T 2260)
COUNTY_DIGITS = 6
#: county key of parcels whose township code is missing or not a code
UNKNOWN_COUNTY = "未知县 unknown"
#: empty grid cells this many cells from farmland join the nearest township
FILL_CELLS = 3
#: grid cells along the longer side of the run's extent (at least MIN_CELL_M each)
GRID_CELLS = 1_000
MIN_CELL_M = 100.0


def county_keys(parcels: pd.DataFrame) -> pd.Series | None:
    """County of each parcel (text), or ``None`` when the parcels cannot tell (no
    ``county`` column and no ``township_code``)."""
    if "county" in parcels:
        text = parcels["county"].astype(object)
        ok = text.notna() & (text.astype(str).str.strip() != "")
        return text.where(ok, UNKNOWN_COUNTY).astype(str)
    if "township_code" not in parcels:
        return None
    code = parcels["township_code"].astype(object).astype(str).str.strip()
    ok = code.str.fullmatch(r"\d{9,12}").fillna(False)
    return code.str[:COUNTY_DIGITS].where(ok, UNKNOWN_COUNTY)


def n_counties(parcels: pd.DataFrame) -> int:
    """How many counties the parcels span (1 when they cannot tell)."""
    keys = county_keys(parcels)
    return 1 if keys is None else max(1, int(keys.nunique()))


def county_names(parcels: pd.DataFrame, keys: pd.Series) -> dict[str, str]:
    """Display name of each county: its ``county_name`` (most frequent), else the key."""
    if "county_name" not in parcels:
        return {k: k for k in pd.unique(keys)}
    names = parcels["county_name"].astype(object).where(parcels["county_name"].notna(), None)
    frame = pd.DataFrame({"k": keys.to_numpy(), "n": names.to_numpy()}).dropna()
    best = frame.groupby("k")["n"].agg(lambda s: s.value_counts().index[0])
    return {k: str(best.get(k, k)) for k in pd.unique(keys)}


# Rates --------------------------------------------------------------------------------
def county_rates(parcels: pd.DataFrame, keys: pd.Series, measures: pd.DataFrame | None,
                 crops: pd.DataFrame | None, **rate_options: object
                 ) -> tuple[pd.DataFrame, pd.Series]:
    """Rate rows of every county and its townships (column ``county``: the key), and the
    province row.

    Each county is one :func:`farmland.rate.safe_utilisation_rate` call on its parcels,
    the measures and crop samples of those parcels (``rate_options``: year, target,
    accounting, min_township_samples)."""
    from farmland.rate import safe_utilisation_rate
    from farmland.rate.accounting import finish_table
    from farmland.rate.inputs import parcel_ids

    ids = parcel_ids(parcels["parcel_id"]).to_numpy()
    where = _rows_by(keys.to_numpy())
    owner = pd.Series(keys.to_numpy(), index=ids)
    # the county of each measure and crop sample, looked up once (not once per county)
    split = [None if f is None or "parcel_id" not in f else
             _rows_by(parcel_ids(f["parcel_id"]).map(owner).to_numpy(dtype=object))
             for f in (measures, crops)]
    frames = []
    for key, rows in where.items():
        mine = [f if s is None else f.iloc[s.get(key, [])]
                for f, s in zip((measures, crops), split, strict=True)]
        result = safe_utilisation_rate(parcels.iloc[rows], mine[0], crops=mine[1],
                                       county_name=key, **rate_options)  # type: ignore[arg-type]
        frames.append(result.table.assign(county=key))
    table = pd.concat(frames, ignore_index=True)
    counties = table[table["level"] == "county"]
    additive = ["n_parcels_2", "n_parcels_3", "area2_mu", "area3_mu", "achieved2_mu",
                "controlled3_mu", "evidence_own_mu", "evidence_rate_mu", "evidence_none_mu"]
    total = counties[[c for c in additive if c in counties]].sum().to_frame().T
    total.insert(0, "name", "全省 Province")
    total.insert(0, "level", "province")
    target = float(rate_options.get("target", 0.91))  # type: ignore[arg-type]
    return table, finish_table(total, target).iloc[0]


def _rows_by(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Positions of each key (missing keys left out), keys sorted."""
    frame = pd.Series(np.arange(len(keys))).groupby(pd.Series(keys), sort=True)
    return {str(k): v.to_numpy() for k, v in frame}


# Statistics -----------------------------------------------------------------------------
def unit_table(parcels: pd.DataFrame, keys: pd.Series, level: str,
               rates: pd.DataFrame | None = None, *,
               names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per county (``level="county"``) or township: parcels, area (亩), class
    shares (% of the area; ``share_na`` unclassified), ``own_pct`` (% of the area
    classified from its own soil samples: rule ``points…``), soil samples in its parcels
    and their density per 1 000 亩, and from ``rates`` (:func:`county_rates`) the rate,
    target and the share of the counted area backed by own crop samples (%)."""
    area = pd.to_numeric(parcels["area_mu"], errors="coerce").fillna(0.0).to_numpy(float)
    cls = classes.as_class(parcels["final_class"].to_numpy()).to_numpy(dtype=float,
                                                                       na_value=0.0)
    own = _own_samples(parcels)
    frame = pd.DataFrame({"county": keys.to_numpy(), "area_mu": area,
                          **{f"a{c}": area * (cls == c) for c in (1, 2, 3, 0)},
                          "own": area * own,
                          "n_samples": pd.to_numeric(parcels.get("n_samples", 0),
                                                     errors="coerce")})
    by = ["county"]
    if level == "township":
        frame["township"] = townships_of(parcels).to_numpy()
        frame["code"] = _text(parcels, "township_code").to_numpy()
        by.append("township")
    grouped = frame.groupby(by, sort=True, dropna=False)
    out = grouped[["area_mu", "a1", "a2", "a3", "a0", "own", "n_samples"]].sum(min_count=1)
    out["n_parcels"] = grouped.size()
    if level == "township":
        out["code"] = grouped["code"].agg(lambda s: s.value_counts().index[0]
                                          if s.notna().any() else None)
    out = out.reset_index()
    if level == "county":
        out["code"] = out["county"]
    total = out["area_mu"].where(out["area_mu"] > 0)
    for c, col in ((1, "share_1"), (2, "share_2"), (3, "share_3"), (0, "share_na")):
        out[col] = 100 * out[f"a{c}"] / total
    out["own_pct"] = 100 * out["own"] / total
    out["density"] = 1000 * out["n_samples"] / total
    out["county_name"] = out["county"].map(dict(names or {})).fillna(out["county"])
    out = out.drop(columns=["a1", "a2", "a3", "a0", "own"])
    return _with_rates(out, rates, level)


def _own_samples(parcels: pd.DataFrame) -> np.ndarray:
    """Whether each parcel's class rests on its own soil samples: rule ``points…``, else
    (no rule column) at least one sample in it."""
    if "rule" in parcels:
        return parcels["rule"].astype(str).str.startswith("points").to_numpy(dtype=bool)
    if "n_samples" in parcels:
        return pd.to_numeric(parcels["n_samples"], errors="coerce").fillna(0).to_numpy() > 0
    return np.zeros(len(parcels), dtype=bool)


def _text(parcels: pd.DataFrame, col: str) -> pd.Series:
    if col not in parcels:
        return pd.Series(None, index=parcels.index, dtype=object)
    s = parcels[col].astype(object)
    return s.where(s.notna(), None).map(lambda v: v if v is None else str(v))


def _with_rates(out: pd.DataFrame, rates: pd.DataFrame | None, level: str) -> pd.DataFrame:
    for col in ("rate_pct", "target_pct", "gap_mu", "crop_own_pct"):
        out[col] = np.nan
    if rates is None or rates.empty:
        return out
    rows = rates[rates["level"] == level]
    on = ["county"] if level == "county" else ["county", "name"]
    counted = rows[["evidence_own_mu", "evidence_rate_mu", "evidence_none_mu"]].sum(axis=1)
    pick = pd.DataFrame({"county": rows["county"], "name": rows["name"],
                         "rate_pct": 100 * rows["rate"], "target_pct": 100 * rows["target"],
                         "gap_mu": rows["gap_mu"],
                         "crop_own_pct": 100 * rows["evidence_own_mu"] / counted.where(
                             counted > 0)})
    left = out.drop(columns=["rate_pct", "target_pct", "gap_mu", "crop_own_pct"])
    if level == "township":
        left = left.assign(name=left["township"])
    merged = left.merge(pick.drop(columns=[] if level == "township" else ["name"]),
                        on=on, how="left")
    return merged.drop(columns=["name"], errors="ignore")


# Outlines -------------------------------------------------------------------------------
def cell_size(bounds: np.ndarray) -> float:
    """Grid cell (m) of the dissolved outlines: :data:`GRID_CELLS` along the longer side of
    the extent, at least :data:`MIN_CELL_M`."""
    minx, miny, maxx, maxy = bounds
    return max(MIN_CELL_M, max(maxx - minx, maxy - miny) / GRID_CELLS)


def unit_outlines(parcels: gpd.GeoDataFrame, unit: np.ndarray, group: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Outlines dissolved from the parcels (metric CRS) of each unit and each group.

    Parameters
    ----------
    unit
        Integer 0…U-1 per parcel (the township).
    group
        Integer 0…G-1 per unit (its county).

    Returns
    -------
    (units, groups, cell)
        Polygons per unit and per group (empty where a unit has no cell), and the cell
        size in metres; the polygons of each set form a coverage.
    """
    import rasterio.transform
    from scipy import ndimage

    geoms = parcels.geometry.to_numpy()
    cell = cell_size(shapely.total_bounds(geoms))
    pad = FILL_CELLS + 1
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    nx = int(np.ceil((maxx - minx) / cell)) + 2 * pad
    ny = int(np.ceil((maxy - miny) / cell)) + 2 * pad
    ox, oy = minx - pad * cell, maxy + pad * cell
    xy = shapely.get_coordinates(shapely.centroid(geoms))
    flat = ((oy - xy[:, 1]) // cell).astype(np.int64) * nx + ((xy[:, 0] - ox) // cell).astype(
        np.int64)
    weight = pd.DataFrame({"cell": flat, "unit": unit + 1, "w": shapely.area(geoms)})
    best = (weight.groupby(["cell", "unit"], sort=False)["w"].sum().reset_index()
            .sort_values(["cell", "w", "unit"]).drop_duplicates("cell", keep="last"))
    labels = np.zeros(ny * nx, np.int32)
    labels[best["cell"].to_numpy()] = best["unit"].to_numpy()
    labels = labels.reshape(ny, nx)
    transform = rasterio.transform.Affine(cell, 0.0, ox, 0.0, -cell, oy)  # north up
    large = np.flatnonzero(shapely.area(geoms) > 4 * cell * cell)
    if len(large):  # parcels of several cells: every cell whose centre they cover
        import rasterio.features

        burnt = rasterio.features.rasterize(
            zip(geoms[large], unit[large] + 1, strict=True), out_shape=(ny, nx),
            transform=transform, fill=0, dtype="int32")
        labels = np.where(burnt > 0, burnt, labels)
    dist, (ri, ci) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    labels = np.where(dist <= FILL_CELLS, labels[ri, ci], 0).astype(np.int32)
    n_units, n_groups = int(unit.max()) + 1 if len(unit) else 0, int(group.max()) + 1
    units = _polygonise(labels, transform, n_units)
    lookup = np.concatenate([[0], group + 1]).astype(np.int32)
    groups = _polygonise(lookup[labels], transform, n_groups)
    return (shapely.coverage_simplify(units, cell), shapely.coverage_simplify(groups, cell),
            cell)


def _polygonise(labels: np.ndarray, transform: object, n: int) -> np.ndarray:
    """Polygon of each label 1…n of a grid (empty polygon for a label not present)."""
    import rasterio.features

    pieces = [(shapely.geometry.shape(g), int(v)) for g, v in
              rasterio.features.shapes(labels, mask=labels > 0, transform=transform)]
    out = np.array([shapely.Polygon()] * n, dtype=object)
    if not pieces:
        return out
    geoms = np.array([g for g, _ in pieces], dtype=object)
    values = np.array([v for _, v in pieces])
    order = np.argsort(values, kind="stable")
    for v, idx in zip(*np.unique(values[order], return_index=True), strict=True):
        stop = np.searchsorted(values[order], v, side="right")
        part = geoms[order[idx:stop]]
        out[v - 1] = part[0] if len(part) == 1 else shapely.MultiPolygon(
            [p for g in part for p in shapely.get_parts(g)])
    return out


def boundary_outlines(townships: gpd.GeoDataFrame, table: pd.DataFrame, crs: object
                      ) -> np.ndarray:
    """Polygon of each row of the township ``table`` (``county, township, code``) from a
    townships layer: by ``township_code`` when both have codes, else by name when the
    name is in one county only; empty where none matches."""
    towns = townships.to_crs(crs)
    towns = towns[~(towns.geometry.isna() | towns.geometry.is_empty)]
    out = np.array([shapely.Polygon()] * len(table), dtype=object)
    if "township" not in towns or towns.empty:
        return out
    by_code = ({str(c): g for c, g in zip(towns["township_code"], towns.geometry, strict=True)
                if pd.notna(c)} if "township_code" in towns else {})
    unique = table["township"].map(table["township"].value_counts()) == 1
    by_name = {str(n): g for n, g in zip(towns["township"], towns.geometry, strict=True)
               if pd.notna(n)}
    for i, (code, name, alone) in enumerate(zip(table["code"], table["township"], unique,
                                                strict=True)):
        geom = by_code.get(str(code)) if code is not None else None
        if geom is None and alone:
            geom = by_name.get(str(name))
        if geom is not None:
            out[i] = geom
    return out
