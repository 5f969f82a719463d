"""The five validation scenarios and their true soil fields (mg/kg and pH on a grid).

The soil model (written for the harness; it shares nothing with ``data/make_demo.py``):

* **Background** (every scenario): ``ln C = ln median + sd * (0.5 Z_common + 0.87 Z_el)
  + 0.15 ε``, where ``Z_common`` and ``Z_el`` are FFT-synthesised standard-normal fields
  with exponential covariance (scales 900 m and 700 m, practical ranges 2.7 and 2.1 km)
  and ``ε`` is independent per 25 m cell (short-range variation inside a field). Medians
  are those of acid red soils; pH is ``5.8 + 0.45 Z_ph`` (scale 1.5 km). Acid paddy
  soils with Cd above 0.3–0.4 give about a tenth of the land class 2 without any source.
* **plumes**: 2–4 enterprises (smelter, battery plant, chemical plant, electroplating,
  each with its metals) add Gaussian-plume deposition downwind of one prevailing wind
  (and a quarter of it in the opposite season's wind).
* **irrigation**: a meandering channel crosses the county; Cd and As from a mine above
  its intake are carried into a 220 m band of fields on both sides, decaying along the
  channel (5 km), narrower than the sample spacing.
* **karst**: a third of the county is limestone: pH about 8 and geogenic Cd around
  0.6 mg/kg (log sd 0.6) — class 1 or 2 at that pH, class 2 and sometimes 3 at a low
  pH — with acidified patches (30 % of the limestone, pH about 5) where it is.
* **sparse**: two of the six townships are sampled at a fifth of the density; one of
  the two enterprises stands in a sparse township.
* **noisy**: as **plumes** with 2–3 enterprises, but the lab's multiplicative error is
  30 % for every metal (10–20 % elsewhere), pH ± 0.25, and 1 % of the values (about
  one sample in twenty) carry a gross error (0.2 % elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
import shapely

from farmland.standards import CLASS_ELEMENTS
from farmland.validation.fields import (
    Grid,
    band_along_line,
    gaussian_field,
    logistic,
    plume_deposition,
)

__all__ = ["BACKGROUND", "INDUSTRIES", "LAB_CV", "SCENARIOS", "Scenario", "soil_fields"]

#: element -> (median mg/kg, log standard deviation) of the acid red-soil background
BACKGROUND = MappingProxyType({
    "cd": (0.18, 0.45), "hg": (0.07, 0.5), "as": (9.0, 0.35), "pb": (35.0, 0.25),
    "cr": (65.0, 0.25),
})
#: element -> median mg/kg on limestone (karst scenario)
KARST_MEDIAN = MappingProxyType({"cd": 0.6, "hg": 0.15, "as": 16.0, "pb": 48.0, "cr": 110.0})
#: industry -> metals and the mg/kg each adds at the plume peak (times 0.6–1.4 per plant)
INDUSTRIES = MappingProxyType({
    "铅锌冶炼 lead-zinc smelter": {"cd": 4.0, "pb": 500.0, "as": 60.0, "hg": 0.8},
    "蓄电池 battery plant": {"pb": 650.0, "cd": 1.5},
    "化工 chemical plant": {"hg": 1.8, "as": 90.0},
    "电镀 electroplating": {"cr": 550.0, "cd": 2.0},
})
#: lab multiplicative error (coefficient of variation) per element in ordinary scenarios
LAB_CV = MappingProxyType({"cd": 0.15, "hg": 0.2, "as": 0.1, "pb": 0.1, "cr": 0.1})
CELL_NOISE_SD = 0.15
KARST_CD_EXTRA_SD = 0.4  # added in quadrature to Cd's 0.45: log sd 0.6 on limestone


@dataclass(frozen=True)
class Scenario:
    """What makes one scenario: its pollution components and how it is sampled and measured.

    ``enterprises`` is the (min, max) number of plants; ``sparse_townships`` townships are
    sampled at ``sparse_factor`` of the density; ``lab_cv`` (element -> CV), ``ph_noise``
    (pH units, sd) and ``gross_rate`` (share of values with a gross error) describe the lab.
    """

    name: str
    title: str
    enterprises: tuple[int, int] = (0, 0)
    irrigation: bool = False
    karst: bool = False
    sparse_townships: int = 0
    sparse_factor: float = 0.2
    lab_cv: MappingProxyType = field(default_factory=lambda: LAB_CV)
    ph_noise: float = 0.1
    gross_rate: float = 0.002


SCENARIOS: MappingProxyType = MappingProxyType({s.name: s for s in (
    Scenario("plumes", "企业烟羽 enterprise plumes", enterprises=(2, 4)),
    Scenario("irrigation", "灌溉带 irrigation band", irrigation=True),
    Scenario("karst", "岩溶高背景 geogenic karst Cd, high pH", karst=True),
    Scenario("sparse", "稀疏乡镇 sparse townships", enterprises=(2, 2), sparse_townships=2),
    Scenario("noisy", "实验室误差 noisy labs", enterprises=(2, 3),
             lab_cv=MappingProxyType(dict.fromkeys(CLASS_ELEMENTS, 0.3)), ph_noise=0.25,
             gross_rate=0.01),
)})


def soil_fields(rng_background: np.random.Generator, rng_scenario: np.random.Generator,
                grid: Grid, county: shapely.Geometry, townships: pd.DataFrame,
                scenario: Scenario) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """True pH and metal fields of one county on ``grid``, and the scenario's features.

    Parameters
    ----------
    rng_background, rng_scenario
        Generators for the background (shared by every scenario of a seed) and for the
        scenario's own components.
    grid
        Truth grid (EPSG:4545 metres).
    county
        County polygon; plants and the channel are placed inside it.
    townships
        ``township`` and ``geometry`` (polygons) and ``sparse`` (bool) columns.
    scenario
        One of :data:`SCENARIOS`.

    Returns
    -------
    fields, features
        ``fields``: ``ph``, each class-driving element (mg/kg) and ``karst`` (0–1 weight),
        arrays of ``grid.shape``. ``features``: ``enterprises`` (frame of name,
        industry, x, y), ``wind_to_deg``, ``channel`` (LineString or None).
    """
    x, y = grid.centres()
    z_common = gaussian_field(rng_background, grid, 900.0)
    log_c = {}
    for el, (median, sd) in BACKGROUND.items():
        own = gaussian_field(rng_background, grid, 700.0)
        cell = rng_background.standard_normal(grid.shape)
        log_c[el] = np.log(median) + sd * (0.5 * z_common + 0.87 * own) + CELL_NOISE_SD * cell
    ph = 5.8 + 0.45 * gaussian_field(rng_background, grid, 1500.0)
    karst = np.zeros(grid.shape)
    if scenario.karst:
        ph, karst = _karst(rng_scenario, grid, ph, log_c)
    conc = {el: np.exp(v) for el, v in log_c.items()}
    features: dict[str, object] = {"enterprises": _no_plants(), "wind_to_deg": np.nan,
                                   "channel": None}
    if scenario.enterprises[1] > 0:
        plants, wind = _plants(rng_scenario, county, townships, scenario)
        for p in plants.itertuples():
            dep = plume_deposition(x, y, (p.x, p.y), wind, peak_m=p.peak_m)
            dep += 0.25 * plume_deposition(x, y, (p.x, p.y), wind + 180.0, peak_m=p.peak_m)
            for el, amount in INDUSTRIES[p.industry].items():
                conc[el] = conc[el] + p.strength * amount * dep
        features.update(enterprises=plants, wind_to_deg=wind)
    if scenario.irrigation:
        channel = _channel(rng_scenario, county)
        load = band_along_line(x, y, channel, width_m=220.0, edge_m=40.0, decay_m=5000.0)
        strength = rng_scenario.uniform(0.8, 1.2)
        conc["cd"] = conc["cd"] + 2.8 * strength * load
        conc["as"] = conc["as"] + 55.0 * strength * load
        features["channel"] = channel
    fields = {"ph": np.clip(ph, 4.3, 8.6), **conc, "karst": karst}
    return fields, features


def _karst(rng: np.random.Generator, grid: Grid, ph: np.ndarray,
           log_c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Limestone on a third of the county: pH ≈ 8 with acid patches, geogenic metals."""
    z = gaussian_field(rng, grid, 1500.0)
    weight = logistic((z - np.quantile(z, 0.66)) / 0.12)
    patch_z = gaussian_field(rng, grid, 400.0)
    patch = logistic((patch_z - np.quantile(patch_z, 0.7)) / 0.15)
    ph_karst = 7.95 + 0.2 * gaussian_field(rng, grid, 800.0) - 2.9 * patch
    ph = ph * (1.0 - weight) + ph_karst * weight
    for el, median in KARST_MEDIAN.items():
        shift = np.log(median / BACKGROUND[el][0])
        log_c[el] = log_c[el] + weight * shift
    # geogenic Cd varies more than the background: log sd 0.6 on limestone
    log_c["cd"] = log_c["cd"] + weight * KARST_CD_EXTRA_SD * gaussian_field(rng, grid, 600.0)
    return ph, weight


def _no_plants() -> pd.DataFrame:
    return pd.DataFrame({"name": pd.Series(dtype=str), "industry": pd.Series(dtype=str),
                         "x": pd.Series(dtype=float), "y": pd.Series(dtype=float),
                         "strength": pd.Series(dtype=float), "peak_m": pd.Series(dtype=float),
                         "township": pd.Series(dtype=str)})


def _plants(rng: np.random.Generator, county: shapely.Geometry, townships: pd.DataFrame,
            scenario: Scenario) -> tuple[pd.DataFrame, float]:
    """Enterprises at least 2.5 km apart and 800 m inside the county; the first one in a
    sparse township when the scenario has any. Returns the plants and the wind."""
    lo, hi = scenario.enterprises
    n = int(rng.integers(lo, hi + 1))
    wind = float(rng.uniform(0.0, 360.0))
    inner = county.buffer(-800.0)
    sparse = townships.loc[townships["sparse"], "geometry"]
    rows: list[dict[str, object]] = []
    industries = list(INDUSTRIES)
    for k in range(n):
        region = inner
        if k == 0 and len(sparse):
            region = shapely.intersection(inner, shapely.union_all(sparse.to_numpy()))
        xy = _point_apart(rng, region, [(r["x"], r["y"]) for r in rows], 2500.0)
        industry = industries[int(rng.integers(len(industries)))] if k else industries[0]
        town = townships.loc[shapely.contains_xy(townships.geometry.values, *xy), "township"]
        rows.append({"name": f"企业{k + 1} plant {k + 1}", "industry": industry,
                     "x": xy[0], "y": xy[1], "strength": float(rng.uniform(0.6, 1.4)),
                     "peak_m": float(rng.uniform(500.0, 1000.0)),
                     "township": town.iloc[0] if len(town) else ""})
    return pd.DataFrame(rows), wind


def _point_apart(rng: np.random.Generator, region: shapely.Geometry,
                 taken: list[tuple[float, float]], spacing: float) -> tuple[float, float]:
    """A uniform random point of ``region`` at least ``spacing`` from ``taken`` (relaxed
    by 10 % after every 200 failed draws)."""
    x0, y0, x1, y1 = region.bounds
    for attempt in range(2000):
        px, py = rng.uniform(x0, x1), rng.uniform(y0, y1)
        if not shapely.contains_xy(region, px, py):
            continue
        need = spacing * 0.9 ** (attempt // 200)
        if all(np.hypot(px - tx, py - ty) >= need for tx, ty in taken):
            return float(px), float(py)
    raise RuntimeError("no room for another enterprise in the synthetic county")


def _channel(rng: np.random.Generator, county: shapely.Geometry) -> shapely.LineString:
    """A meandering channel through the county centre; its intake is its first vertex."""
    c = county.centroid
    angle = rng.uniform(0.0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-direction[1], direction[0]])
    x0, y0, x1, y1 = county.bounds
    half = 0.75 * np.hypot(x1 - x0, y1 - y0)
    t = np.linspace(-half, half, 120)
    wiggle = np.cumsum(rng.normal(0.0, 1.0, len(t)))
    wiggle = np.convolve(wiggle - wiggle.mean(), np.ones(15) / 15, mode="same")
    wiggle *= 350.0 / max(np.abs(wiggle).max(), 1e-9)
    pts = (np.array([c.x, c.y]) + t[:, None] * direction + wiggle[:, None] * normal)
    line = shapely.intersection(shapely.LineString(pts), county)
    if line.geom_type != "LineString":  # a meander left and re-entered the county
        parts = shapely.get_parts(line)
        line = parts[np.argmax(shapely.length(parts))]
    return line
