"""Truth-known synthetic counties for validating classifications (issue 15).

:func:`make_county` draws a county from a seed: parcels (Voronoi cells of random seeds
in a stretched plane, so fields are elongated, clipped to an irregular county polygon,
with forest and villages left out), six townships with villages, land use, soil
samples as a lab reports them, and the truth. All geometry is EPSG:4545 (CGCS2000 /
3-degree GK, CM 108°E), metres; concentrations mg/kg.

**Truth definition.** A parcel's true pH and metal contents are the arithmetic means of
the true fields over the 25 m cells of the truth grid whose centres fall inside it (a
parcel holding no cell centre takes the field at a point inside it). Its true class is
the GB 15618-2018 point class of those means with the parcel's own land-use column,
computed by :func:`farmland.classify.samples.classify_samples` (the thresholds are not
re-typed here). ``true_share_1..3`` are the shares of its cells in each class (each
cell classed the same way) for diagnosis.

**Randomness.** One ``numpy.random.default_rng([seed, part])`` per part (geography,
background fields, sampling, lab) and ``[seed, part, scenario]`` for the scenario's own
components, so the same seed gives an identical county and the five scenarios of one
seed share geography, background and sample sites (the sparse scenario thins its sparse
townships).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio.features import rasterize
from scipy.spatial import cKDTree

from farmland.classes import MU_PER_M2
from farmland.classify.samples import classify_samples
from farmland.standards import CLASS_ELEMENTS, landuse_from_dlbm, load_standard
from farmland.validation.fields import Grid, gaussian_field
from farmland.validation.scenarios import SCENARIOS, Scenario, soil_fields

__all__ = ["CRS", "DETECTION_LIMITS", "WITHIN_FIELD_SD", "SyntheticCounty", "lab_report_at",
           "make_county"]

CRS = "EPSG:4545"
CENTRE = (452_000.0, 2_745_000.0)  # about 107.5°E, 24.8°N
TRUTH_CELL_M = 25.0
TOWNSHIP_NAMES = ("东山镇", "西河镇", "南岭乡", "北坪乡", "石桥乡", "青龙乡")
VILLAGE_NUMERALS = "一二三四五六七"
#: lab detection limits, mg/kg (reported as "<DL")
DETECTION_LIMITS = {"cd": 0.01, "hg": 0.002, "as": 0.01, "pb": 0.1, "cr": 4.0}
FARMLAND_SHARE = 0.8  # share of Voronoi cells kept as farmland
MIN_PARCEL_M2 = 200.0
#: log-scale sd of a sample's value around the field at its site (within-field variation)
WITHIN_FIELD_SD = 0.1
_PART = {"geography": 0, "background": 1, "scenario": 2, "sampling": 3, "lab": 4}


@dataclass
class SyntheticCounty:
    """One truth-known county.

    Attributes
    ----------
    scenario, seed
        What drew it.
    parcels
        GeoDataFrame (EPSG:4545): ``parcel_id, township, village, dlbm, TBDLMJ`` (net area
        m²), polygons — what a county's land-survey layer gives.
    samples
        GeoDataFrame (EPSG:4545 points): ``sample_id, pH, Cd, Hg, As, Pb, Cr`` as the lab
        reports them (text with ``<DL`` below the detection limit, lab error and gross
        errors included), ``year``.
    truth
        One row per parcel: ``parcel_id, township, landuse, area_mu, ph, cd, hg, as, pb,
        cr`` (true means), ``true_class``, ``true_driving_element``, ``true_share_1..3``.
    sample_truth
        One row per sample: ``sample_id``, the true point values (``ph``, metals, before
        lab error) and ``gross_error`` (element names hit by a gross error).
    grid, fields
        The truth grid and the true fields on it (``ph``, metals mg/kg, ``karst``).
    features
        ``townships`` (GeoDataFrame with ``sparse``), ``enterprises``, ``wind_to_deg``,
        ``channel``, ``county`` (polygon), ``sample_spacing_m``.
    """

    scenario: str
    seed: int
    parcels: gpd.GeoDataFrame
    samples: gpd.GeoDataFrame
    truth: pd.DataFrame
    sample_truth: pd.DataFrame
    grid: Grid
    fields: dict[str, np.ndarray] = field(repr=False)
    features: dict[str, object] = field(repr=False)

    def values_at(self, xy: np.ndarray) -> pd.DataFrame:
        """True field values at points (n, 2) (bilinear; metals interpolated in logs)."""
        out = {}
        for name, values in self.fields.items():
            log = name in CLASS_ELEMENTS
            v = self.grid.at(np.log(values) if log else values, xy)
            out[name] = np.exp(v) if log else v
        return pd.DataFrame(out)


def make_county(scenario: str, seed: int, *, n_parcels: int = 3000, area_km2: float = 64.0,
                samples_per_km2: float = 4.0) -> SyntheticCounty:
    """Draw a truth-known county.

    Parameters
    ----------
    scenario
        A name of :data:`farmland.validation.scenarios.SCENARIOS`: ``plumes``,
        ``irrigation``, ``karst``, ``sparse``, ``noisy``.
    seed
        Seed of every random draw; the same seed gives an identical county.
    n_parcels
        About this many farmland parcels (the county's extent stays ``area_km2``).
    area_km2
        County area (about 80 % of it farmland).
    samples_per_km2
        Soil samples per km² of farmland (a jittered square grid; 4 per km² is a 500 m
        grid); sparse townships get ``sparse_factor`` of it.

    Returns
    -------
    SyntheticCounty
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if area_km2 < 16 or n_parcels < 50 or samples_per_km2 <= 0:
        raise ValueError("a synthetic county needs area_km2 >= 16 (room for six townships and "
                         "the plumes), n_parcels >= 50 and samples_per_km2 > 0; got "
                         f"{area_km2}, {n_parcels}, {samples_per_km2}")
    spec = SCENARIOS[scenario]
    code = list(SCENARIOS).index(scenario)

    def rng(part: str, own: bool = False) -> np.random.Generator:
        return np.random.default_rng([seed, _PART[part], *([code] if own else [])])

    geo = rng("geography")
    county = _county_polygon(geo, area_km2 * 1e6)
    grid = Grid.covering(county.buffer(2 * TRUTH_CELL_M).bounds, TRUTH_CELL_M)
    own = rng("scenario", True)
    townships = _townships(geo, county, spec, own)
    parcels = _parcels(geo, grid, county, townships, n_parcels)
    fields, features = soil_fields(rng("background"), own, grid, county, townships, spec)
    parcels["dlbm"] = _land_use(geo, grid, parcels, features.get("channel"), fields["karst"])
    truth = _truth(parcels, grid, fields)
    spacing = 1000.0 / np.sqrt(samples_per_km2)
    sites = _sample_sites(rng("sampling"), parcels, townships, spacing, spec.sparse_factor)
    samples, sample_truth = _lab_report(rng("lab"), rng("lab", True), sites, grid, fields, spec)
    features.update(townships=townships, county=county, sample_spacing_m=spacing)
    parcels = parcels[["parcel_id", "township", "village", "dlbm", "TBDLMJ", "geometry"]]
    return SyntheticCounty(scenario, seed, parcels, samples, truth, sample_truth, grid, fields,
                           features)


# ----------------------------------------------------------------------------- geography
def _county_polygon(rng: np.random.Generator, area_m2: float) -> shapely.Polygon:
    """An irregular, somewhat elongated county outline of ``area_m2`` around :data:`CENTRE`."""
    theta = np.linspace(0.0, 2 * np.pi, 360, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += rng.uniform(0.0, 0.07) * np.cos(k * theta + rng.uniform(0.0, 2 * np.pi))
    aspect, turn = rng.uniform(1.0, 1.5), rng.uniform(0.0, np.pi)
    ring = np.c_[np.cos(theta) * r * aspect, np.sin(theta) * r]
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    ring = ring @ rot.T
    scale = np.sqrt(area_m2 / shapely.Polygon(ring).area)
    return shapely.set_precision(shapely.Polygon(ring * scale + CENTRE), 0.01)


def _random_points(rng: np.random.Generator, region: shapely.Geometry, n: int) -> np.ndarray:
    x0, y0, x1, y1 = region.bounds
    shapely.prepare(region)
    out = np.empty((0, 2))
    while len(out) < n:
        cand = rng.uniform((x0, y0), (x1, y1), size=(2 * n + 16, 2))
        out = np.vstack([out, cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]])
    return out[:n]


def _voronoi(points: np.ndarray, region: shapely.Geometry) -> np.ndarray:
    env = shapely.envelope(region).buffer(2000.0)
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=env, ordered=True)
    return shapely.intersection(shapely.get_parts(cells), region)


def _townships(rng: np.random.Generator, county: shapely.Polygon, spec: Scenario,
               rng_scenario: np.random.Generator) -> gpd.GeoDataFrame:
    """Six townships (farthest-point seeds, Voronoi); ``sparse`` marks the thinly sampled."""
    cand = _random_points(rng, county.buffer(-1500.0), 400)
    seeds = [cand[0]]
    for _ in range(len(TOWNSHIP_NAMES) - 1):
        d = np.min([np.hypot(*(cand - s).T) for s in seeds], axis=0)
        seeds.append(cand[np.argmax(d)])
    cells = _voronoi(np.array(seeds), county)
    sparse = np.zeros(len(cells), dtype=bool)
    if spec.sparse_townships:
        sparse[rng_scenario.choice(len(cells), spec.sparse_townships, replace=False)] = True
    return gpd.GeoDataFrame({"township": list(TOWNSHIP_NAMES), "sparse": sparse},
                            geometry=cells, crs=CRS)


def _parcels(rng: np.random.Generator, grid: Grid, county: shapely.Polygon,
             townships: gpd.GeoDataFrame, n_parcels: int) -> gpd.GeoDataFrame:
    """Elongated Voronoi fields (1.7 : 1 along a random direction) minus forest and villages."""
    turn, stretch = rng.uniform(0.0, np.pi), 1.7
    rot = np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])
    to_plane = rot.T @ np.diag([1.0 / stretch, 1.0]) @ rot
    back = np.linalg.inv(to_plane)
    centre = np.array(CENTRE)
    n_seeds = round(n_parcels / FARMLAND_SHARE)
    seeds = _random_points(rng, county, n_seeds)
    plane = shapely.transform(county, lambda c: (c - centre) @ to_plane.T)
    cells = _voronoi((seeds - centre) @ to_plane.T, plane)
    cells = shapely.transform(cells, lambda c: c @ back.T + centre)
    cells = shapely.make_valid(shapely.set_precision(cells, 0.01))
    cells = np.array([_largest_polygon(g) for g in cells], dtype=object)
    forest = gaussian_field(rng, grid, 500.0)
    rep = shapely.get_coordinates(shapely.point_on_surface(cells))
    keep = grid.at(forest, rep) <= np.quantile(forest, FARMLAND_SHARE)
    keep &= shapely.area(cells) >= MIN_PARCEL_M2
    cells, rep = cells[keep], rep[keep]
    town_idx = np.full(len(cells), -1)
    for i, geom in enumerate(townships.geometry.values):
        town_idx[(town_idx < 0) & shapely.contains_xy(geom, rep[:, 0], rep[:, 1])] = i
    town_idx[town_idx < 0] = cKDTree(shapely.get_coordinates(
        shapely.point_on_surface(townships.geometry.values))).query(rep[town_idx < 0])[1]
    names = townships["township"].to_numpy()[town_idx]
    village = _villages(rng, townships, rep, town_idx)
    area = shapely.area(cells)
    return gpd.GeoDataFrame({
        "parcel_id": [f"TB{i + 1:05d}" for i in range(len(cells))],
        "township": names, "village": village,
        "TBDLMJ": np.round(area * rng.uniform(0.86, 0.97, len(cells)), 2),
    }, geometry=cells, crs=CRS)


def _largest_polygon(geom: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return max(parts, key=lambda p: p.area) if parts else shapely.Polygon()


def _villages(rng: np.random.Generator, townships: gpd.GeoDataFrame, rep: np.ndarray,
              town_idx: np.ndarray) -> np.ndarray:
    """Five villages per township: the nearest of five random village seats in it."""
    village = np.empty(len(rep), dtype=object)
    for i, (name, geom) in enumerate(zip(townships["township"], townships.geometry.values)):
        seats = _random_points(rng, geom, 5)
        mine = town_idx == i
        if mine.any():
            nearest = cKDTree(seats).query(rep[mine])[1]
            village[mine] = [f"{name}{VILLAGE_NUMERALS[k]}村" for k in nearest]
    return village


def _land_use(rng: np.random.Generator, grid: Grid, parcels: gpd.GeoDataFrame,
              channel: shapely.LineString | None, karst: np.ndarray) -> np.ndarray:
    """DLBM from a terrain field: the lowest half paddy 0101, then 0102, 0103, orchards 0201
    on the highest tenth; land along a channel lies low, limestone lies high."""
    terrain = gaussian_field(rng, grid, 1500.0)
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    level = grid.at(terrain, rep) + 0.6 * rng.standard_normal(len(rep))
    level += 1.5 * grid.at(karst, rep)
    if channel is not None:
        level -= 2.0 * np.exp(-shapely.distance(shapely.points(rep), channel) / 400.0)
    cuts = np.quantile(level, [0.5, 0.62, 0.9])
    return np.array(["0101", "0102", "0103", "0201"])[np.searchsorted(cuts, level)]


# ----------------------------------------------------------------------------- truth
def _cell_labels(grid: Grid, geoms: np.ndarray) -> np.ndarray:
    """Grid-shaped array: 1-based index of the parcel holding each cell centre, 0 outside."""
    top = grid.y0 + grid.ny * grid.cell
    burnt = rasterize(zip(geoms, range(1, len(geoms) + 1)), out_shape=grid.shape,
                      transform=Affine(grid.cell, 0.0, grid.x0, 0.0, -grid.cell, top),
                      fill=0, dtype="int32")
    return burnt[::-1]  # rasterize's row 0 is the top; the grid's is the bottom


def _truth(parcels: gpd.GeoDataFrame, grid: Grid, fields: dict[str, np.ndarray]) -> pd.DataFrame:
    """True mean values and class of every parcel (see the module docstring)."""
    n = len(parcels)
    labels = _cell_labels(grid, parcels.geometry.values).ravel()
    inside = labels > 0
    cell_parcel = labels[inside] - 1
    missing = np.setdiff1d(np.arange(n), cell_parcel)
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values[missing]))
    names = ("ph", *CLASS_ELEMENTS)
    cell_values = {k: np.concatenate([fields[k].ravel()[inside], _at(grid, fields[k], rep, k)])
                   for k in names}
    cell_parcel = np.concatenate([cell_parcel, missing])
    counts = np.bincount(cell_parcel, minlength=n)
    means = {k: np.bincount(cell_parcel, weights=v, minlength=n) / counts
             for k, v in cell_values.items()}
    landuse = np.array([landuse_from_dlbm(c) for c in parcels["dlbm"]], dtype=object)
    std = load_standard()
    cls = classify_samples(pd.DataFrame({"sample_id": parcels["parcel_id"].to_numpy(),
                                         **means, "landuse": landuse}), standard=std)
    cell_cls = classify_samples(pd.DataFrame({"sample_id": np.arange(len(cell_parcel)),
                                              **cell_values,
                                              "landuse": landuse[cell_parcel]}), standard=std)
    pc = cell_cls["point_class"].to_numpy(dtype=int)
    shares = {f"true_share_{c}": np.round(np.bincount(cell_parcel, weights=pc == c,
                                                       minlength=n) / counts, 4)
              for c in (1, 2, 3)}
    return pd.DataFrame({
        "parcel_id": parcels["parcel_id"].to_numpy(),
        "township": parcels["township"].to_numpy(),
        "landuse": landuse,
        "area_mu": parcels["TBDLMJ"].to_numpy() * MU_PER_M2,
        **{k: np.round(v, 5) for k, v in means.items()},
        "true_class": cls["point_class"].astype("Int8").to_numpy(),
        "true_driving_element": cls["driving_element"].to_numpy(),
        **shares,
    })


def _at(grid: Grid, values: np.ndarray, xy: np.ndarray, name: str) -> np.ndarray:
    if name in CLASS_ELEMENTS:
        return np.exp(grid.at(np.log(values), xy))
    return grid.at(values, xy)


# ----------------------------------------------------------------------------- samples
def _sample_sites(rng: np.random.Generator, parcels: gpd.GeoDataFrame,
                  townships: gpd.GeoDataFrame, spacing: float,
                  sparse_factor: float) -> np.ndarray:
    """Jittered square grid nodes (±30 % of the spacing) that fall on farmland; sparse
    townships get their own grid of ``spacing / sqrt(sparse_factor)``."""
    farmland = shapely.union_all(parcels.geometry.values)
    sites = []
    dense = shapely.union_all(townships.loc[~townships["sparse"], "geometry"].to_numpy())
    sparse = shapely.union_all(townships.loc[townships["sparse"], "geometry"].to_numpy())
    for region, step in ((dense, spacing), (sparse, spacing / np.sqrt(sparse_factor))):
        if region.is_empty:
            continue
        x0, y0, x1, y1 = region.bounds
        off = rng.uniform(0.0, step, 2)
        gx, gy = np.meshgrid(np.arange(x0 + off[0], x1, step), np.arange(y0 + off[1], y1, step))
        pts = np.c_[gx.ravel(), gy.ravel()] + rng.uniform(-0.3, 0.3, (gx.size, 2)) * step
        ok = shapely.contains_xy(shapely.intersection(region, farmland), pts[:, 0], pts[:, 1])
        sites.append(pts[ok])
    return np.round(np.vstack(sites), 2)


def _lab_report(rng: np.random.Generator, rng_scenario: np.random.Generator, sites: np.ndarray,
                grid: Grid, fields: dict[str, np.ndarray],
                spec: Scenario) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """What the lab reports at ``sites``: the true point value with 10 % within-cell
    variation, the lab's multiplicative error (mean-preserving log-normal of CV
    ``spec.lab_cv``), gross errors (×10, ×0.1, or ×1000 for Cd and Hg) on
    ``spec.gross_rate`` of the values, three significant digits, ``<DL`` below the detection limit."""
    n = len(sites)
    ids = [f"S{i + 1:04d}" for i in range(n)]
    micro = rng.standard_normal((n, len(CLASS_ELEMENTS)))
    lab = rng_scenario.standard_normal((n, len(CLASS_ELEMENTS)))
    gross = rng_scenario.random((n, len(CLASS_ELEMENTS))) < spec.gross_rate
    factor = rng_scenario.choice([10.0, 0.1, 1000.0], size=gross.shape, p=[0.45, 0.45, 0.1])
    # a µg/kg value typed as mg/kg happens to the trace elements (Cd, Hg); ×1000 on Pb or Cr
    # would be refused by the readers as implausible, so those get a decimal slip instead
    trace = np.isin(np.array(CLASS_ELEMENTS), ["cd", "hg"])
    factor[:, ~trace] = np.where(factor[:, ~trace] == 1000.0, 10.0, factor[:, ~trace])
    true_ph = grid.at(fields["ph"], sites)
    reported = {"sample_id": ids,
                "pH": np.round(true_ph + spec.ph_noise * rng_scenario.standard_normal(n), 2)}
    truth = {"sample_id": ids, "ph": np.round(true_ph, 4)}
    for j, el in enumerate(CLASS_ELEMENTS):
        true = np.exp(grid.at(np.log(fields[el]), sites) + WITHIN_FIELD_SD * micro[:, j])
        cv = spec.lab_cv[el]
        sd = np.sqrt(np.log1p(cv**2))
        value = true * np.exp(sd * lab[:, j] - sd**2 / 2) * np.where(gross[:, j], factor[:, j], 1)
        truth[el] = np.round(true, 5)
        reported[el.capitalize()] = [_lab_text(v, DETECTION_LIMITS[el]) for v in value]
    names = np.array(CLASS_ELEMENTS)
    truth["gross_error"] = [",".join(names[row]) for row in gross]
    samples = gpd.GeoDataFrame({**reported, "year": 2024}, geometry=shapely.points(sites),
                               crs=CRS)
    return samples, pd.DataFrame(truth)


def lab_report_at(county: SyntheticCounty, xy: np.ndarray, *, part: int,
                  prefix: str = "N") -> gpd.GeoDataFrame:
    """What the county's lab reports for new samples at ``xy`` (the scenario's lab error,
    within-field variation, gross errors and ``<DL``), ids ``<prefix>001``…; drawn from
    ``default_rng([seed, part])`` and ``[seed, part, scenario]``, so two calls with the same
    ``part`` and as many points give the k-th point the same error draws."""
    code = list(SCENARIOS).index(county.scenario)
    samples, _ = _lab_report(np.random.default_rng([county.seed, part]),
                             np.random.default_rng([county.seed, part, code]),
                             np.asarray(xy, float).reshape(-1, 2), county.grid, county.fields,
                             SCENARIOS[county.scenario])
    samples["sample_id"] = [f"{prefix}{i + 1:03d}" for i in range(len(samples))]
    return samples


def _lab_text(value: float, limit: float) -> str:
    """Three significant digits, or ``<DL``."""
    if value < limit:
        return f"<{limit:g}"
    decimals = max(0, 2 - int(np.floor(np.log10(value))))
    return f"{value:.{decimals}f}"
