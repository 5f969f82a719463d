"""A seeded synthetic province for the scale benchmark (SYNTHETIC: no value is a measurement).

Parcels are the quadrilaterals of a jittered, irregular grid (column and row widths
30-80 m, shared vertices, so the kept parcels form an exact coverage with gaps),
kept where a smooth random "farmland" field is high, until the wanted number is
reached. The square is cut into 25 km counties and 5 km townships (1 km villages);
fields use the demo county's layout (``BSM``, ``DLBM``, ``DLMC``, ``TBDLMJ``,
``ZLDWDM``, ``ZLDWMC``, ``XZQDM``, ``XZQMC``; samples ``样品编号, X, Y, pH, 镉 …``).
Soil samples sit inside random parcels, values from smooth lognormal fields with
a few contaminated hot spots; crop samples are mostly in threes per parcel (so the
crop adjustment applies); the measures ledger puts measures on random parcels.

CRS EPSG:4545 (CGCS2000 / 3-degree GK CM 108°E), metres; concentrations mg/kg.

Run::

    python benchmarks/make_province.py                  # 1 000 000 parcels -> /tmp/province/
    python benchmarks/make_province.py --scale 0.1      # 100 000 parcels -> /tmp/province_0.1/

Writes ``parcels.parquet`` (GeoParquet), ``parcels.gpkg`` (layer ``DLTB``),
``soil_samples.csv``, ``crop_samples.csv``, ``measures.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.ndimage import gaussian_filter, map_coordinates

CRS = "EPSG:4545"
X0, Y0 = 450_000.0, 2_600_000.0
COUNTY_M, TOWNSHIP_M, VILLAGE_M = 25_000.0, 5_000.0, 1_000.0
FIELD_CELL_M = 500.0  # resolution of the smooth random fields
LANDUSE = np.array(["0101", "0102", "0103", "0201"])
LANDUSE_NAME = {"0101": "水田", "0102": "水浇地", "0103": "旱地", "0201": "果园"}
LANDUSE_P = [0.55, 0.1, 0.3, 0.05]
FARMLAND_SHARE = 0.3  # share of grid quads kept as farmland


def smooth_field(rng: np.random.Generator, side_m: float, sigma_m: float) -> np.ndarray:
    """Standard-normal smooth random field on a FIELD_CELL_M grid covering the square."""
    n = int(np.ceil(side_m / FIELD_CELL_M)) + 2
    f = gaussian_filter(rng.standard_normal((n, n)), sigma_m / FIELD_CELL_M, mode="wrap")
    return (f - f.mean()) / f.std()


def at(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear value of a smooth field at coordinates (metres)."""
    return map_coordinates(field, [(y - Y0) / FIELD_CELL_M, (x - X0) / FIELD_CELL_M], order=1,
                           mode="nearest")


def grid_edges(rng: np.random.Generator, side_m: float) -> np.ndarray:
    """Irregular grid lines 30-80 m apart from 0 to about side_m."""
    widths = rng.uniform(30.0, 80.0, size=int(side_m / 30) + 2)
    edges = np.concatenate([[0.0], np.cumsum(widths)])
    return edges[edges <= side_m]


def make_parcels(rng: np.random.Generator, n: int) -> gpd.GeoDataFrame:
    """About n quadrilateral parcels (exactly n when the square holds enough)."""
    side = float(np.sqrt(n / FARMLAND_SHARE) * 55.0 * 1.1)
    ex, ey = X0 + grid_edges(rng, side), Y0 + grid_edges(rng, side)
    vx = ex[None, :] + rng.uniform(-8, 8, size=(len(ey), len(ex)))  # shared jittered vertices
    vy = ey[:, None] + rng.uniform(-8, 8, size=(len(ey), len(ex)))
    cx = 0.5 * (ex[:-1] + ex[1:])
    cy = 0.5 * (ey[:-1] + ey[1:])
    gx, gy = np.meshgrid(cx, cy)
    farm = at(smooth_field(rng, side, 2_000.0), gx, gy) + 0.6 * rng.standard_normal(gx.shape)
    cut = np.sort(farm.ravel())[::-1][min(n, farm.size) - 1]
    r, c = np.nonzero(farm >= cut)
    r, c = r[:n], c[:n]
    ring = np.stack([np.stack([vx[r, c], vy[r, c]], -1), np.stack([vx[r, c + 1], vy[r, c + 1]], -1),
                     np.stack([vx[r + 1, c + 1], vy[r + 1, c + 1]], -1),
                     np.stack([vx[r + 1, c], vy[r + 1, c]], -1),
                     np.stack([vx[r, c], vy[r, c]], -1)], axis=1)
    geoms = shapely.polygons(np.round(ring, 2))
    return _parcel_attributes(rng, geoms, gx[r, c], gy[r, c])


def _parcel_attributes(rng, geoms, x, y) -> gpd.GeoDataFrame:
    county = ((y - Y0) // COUNTY_M).astype(int) * 10 + ((x - X0) // COUNTY_M).astype(int)
    town = (((y - Y0) % COUNTY_M) // TOWNSHIP_M).astype(int) * 5 + \
        (((x - X0) % COUNTY_M) // TOWNSHIP_M).astype(int)
    village = (((y - Y0) % TOWNSHIP_M) // VILLAGE_M).astype(int) * 5 + \
        (((x - X0) % TOWNSHIP_M) // VILLAGE_M).astype(int)
    xzqdm = np.char.add(np.char.add("4501", np.char.zfill(county.astype(str), 2)),
                        np.char.zfill((100 + town).astype(str), 3))
    order = np.lexsort((x, y, xzqdm))
    serial = np.empty(len(x), dtype=np.int64)
    serial[order] = np.arange(1, len(x) + 1)
    dlbm = rng.choice(LANDUSE, size=len(x), p=LANDUSE_P)
    area = shapely.area(geoms)
    frame = pd.DataFrame({
        "BSM": np.char.add(xzqdm, np.char.zfill(serial.astype(str), 9)),
        "DLBM": dlbm, "DLMC": pd.Series(dlbm).map(LANDUSE_NAME).to_numpy(),
        "TBDLMJ": np.round(area * rng.uniform(0.92, 1.0, len(x)), 2),
        "ZLDWDM": np.char.add(np.char.add(xzqdm, np.char.zfill(village.astype(str), 3)),
                              "0000000"),
        "ZLDWMC": np.char.add(np.char.add("村", np.char.zfill(village.astype(str), 2)), ""),
        "XZQDM": xzqdm,
        "XZQMC": np.char.add(np.char.add(np.char.add("县", county.astype(str)), "乡镇"),
                             town.astype(str)),
    })
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=CRS).iloc[order].reset_index(drop=True)


def points_in(rng: np.random.Generator, geoms: np.ndarray) -> np.ndarray:
    """A random point inside each convex quadrilateral (Dirichlet mix of its corners)."""
    corners = shapely.get_coordinates(geoms).reshape(len(geoms), 5, 2)[:, :4]
    w = rng.dirichlet(np.ones(4), size=len(geoms))
    return np.round(np.einsum("nk,nkd->nd", w, corners), 2)


def make_soil(rng, parcels: gpd.GeoDataFrame, n: int) -> pd.DataFrame:
    """Soil samples inside random parcels; smooth lognormal fields, some hot spots."""
    pick = rng.choice(len(parcels), size=n, replace=False)
    xy = points_in(rng, parcels.geometry.values[pick])
    x, y = xy[:, 0], xy[:, 1]
    side = float(max(x.max() - X0, y.max() - Y0)) + 2 * FIELD_CELL_M

    def field(sigma):
        return at(smooth_field(rng, side, sigma), x, y)

    hot = np.clip(field(3_000.0) - 1.6, 0, None) * 2.0  # contaminated patches
    noise = rng.standard_normal
    ph = np.clip(6.2 + 0.9 * field(8_000.0) + 0.25 * noise(n), 4.2, 8.8)
    values = {
        "pH": np.round(ph, 2),
        "镉": np.round(np.exp(np.log(0.22) + 0.45 * field(4_000.0) + hot + 0.3 * noise(n)), 3),
        "汞": np.round(np.exp(np.log(0.12) + 0.4 * field(5_000.0) + 0.5 * hot
                             + 0.3 * noise(n)), 3),
        "砷": np.round(np.exp(np.log(12.0) + 0.35 * field(6_000.0) + 0.4 * hot
                             + 0.2 * noise(n)), 2),
        "铅": np.round(np.exp(np.log(35.0) + 0.3 * field(5_000.0) + 0.5 * hot
                             + 0.2 * noise(n)), 1),
        "铬": np.round(np.exp(np.log(70.0) + 0.25 * field(7_000.0) + 0.2 * noise(n)), 1),
    }
    ids = np.char.add("TR", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    return pd.DataFrame({"样品编号": ids, "X": x, "Y": y, **values, "采样年份": 2022,
                         "调查类型": "详查"})


def make_crops(rng, parcels: gpd.GeoDataFrame, n: int) -> pd.DataFrame:
    """Crop samples, 90 % in threes in one parcel (adjustment applies), the rest single."""
    triples = int(0.9 * n) // 3
    pick = rng.choice(len(parcels), size=triples + (n - 3 * triples), replace=False)
    which = np.concatenate([np.repeat(pick[:triples], 3), pick[triples:]])
    xy = points_in(rng, parcels.geometry.values[which])
    crop = np.where(rng.random(n) < 0.8, "稻谷", "叶菜类")
    cd = np.exp(np.log(0.08) + 0.7 * rng.standard_normal(n))
    return pd.DataFrame({
        "样品编号": np.char.add("NP", np.char.zfill(np.arange(1, n + 1).astype(str), 6)),
        "X": xy[:, 0], "Y": xy[:, 1], "作物": crop, "镉": np.round(cd, 3),
        "铅": np.round(np.exp(np.log(0.03) + 0.5 * rng.standard_normal(n)), 3),
        "汞": np.round(np.exp(np.log(0.003) + 0.4 * rng.standard_normal(n)), 4),
        "砷": np.round(np.exp(np.log(0.1) + 0.4 * rng.standard_normal(n)), 3),
        "铬": np.round(np.exp(np.log(0.15) + 0.4 * rng.standard_normal(n)), 3),
        "采样年份": 2023})


def make_measures(rng, parcels: gpd.GeoDataFrame) -> pd.DataFrame:
    """Safe-use measures on 12 % of parcels, strict-control measures on 1.5 %."""
    n = len(parcels)
    pick = rng.choice(n, size=int(0.135 * n), replace=False)
    strict = np.arange(len(pick)) < int(0.015 * n)
    kind = np.where(strict, rng.choice(["种植结构调整", "退耕还林还草"], len(pick)),
                    rng.choice(["水分调控", "施用石灰", "低积累品种替代", "叶面阻控"], len(pick)))
    return pd.DataFrame({"图斑编号": parcels["BSM"].to_numpy()[pick], "措施类型": kind,
                         "措施类别": np.where(strict, "严格管控", "安全利用"), "年度": 2023})


def make_province(out: Path, *, scale: float = 1.0, seed: int = 2024) -> dict[str, float]:
    """Write the province into ``out``; return seconds per step."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    t = time.perf_counter()
    parcels = make_parcels(rng, round(1_000_000 * scale))
    soil = make_soil(rng, parcels, round(100_000 * scale))
    crops = make_crops(rng, parcels, round(20_000 * scale))
    measures = make_measures(rng, parcels)
    times["generate"] = time.perf_counter() - t
    t = time.perf_counter()
    parcels.to_parquet(out / "parcels.parquet")
    times["write parquet"] = time.perf_counter() - t
    t = time.perf_counter()
    parcels.to_file(out / "parcels.gpkg", layer="DLTB", engine="pyogrio", use_arrow=True)
    times["write gpkg"] = time.perf_counter() - t
    soil.to_csv(out / "soil_samples.csv", index=False, encoding="utf-8-sig")
    crops.to_csv(out / "crop_samples.csv", index=False, encoding="utf-8-sig")
    measures.to_csv(out / "measures.csv", index=False, encoding="utf-8-sig")
    print(f"{len(parcels)} parcels, {len(soil)} soil, {len(crops)} crop samples, "
          f"{len(measures)} measures -> {out} "
          + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 1 000 000 parcels")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", type=Path, default=None,
                    help="folder (default /tmp/province or /tmp/province_<scale>)")
    a = ap.parse_args()
    out = a.out or Path("/tmp/province" if a.scale == 1.0 else f"/tmp/province_{a.scale:g}")
    make_province(out, scale=a.scale, seed=a.seed)


if __name__ == "__main__":
    main()
