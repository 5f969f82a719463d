#!/usr/bin/env python
"""Generate the bundled SYNTHETIC demo county ``示范县`` (Demo County, code 450299).

Nothing here is a measurement. Every number comes from a seeded
``numpy.random.default_rng(seed)`` and a spatial model written below, so the same
seed gives the same content (GeoPackages carry timestamps, hence the content
hashes in ``CHECKSUMS.json`` rather than byte hashes).

Usage::

    python data/make_demo.py [--seed 2023] [--out data/demo] [--readme data/README.md]

All geometry is in EPSG:4545 (CGCS2000 / 3-degree Gauss-Kruger CM 108E, metres);
the pollution sources are also written as RFC 7946 GeoJSON (WGS84 lon/lat).
Concentrations are mg/kg (soil: total content, dry weight; crops: edible part,
rice as brown rice); areas are m². See ``data/README.md`` for the file contract.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from scipy.spatial import cKDTree

if str(Path(__file__).resolve().parent) not in sys.path:  # the sibling demo_sources.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_sources  # source-apportionment layers and their truth

log = logging.getLogger("make_demo")

DATA_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = DATA_DIR / "demo"
DEFAULT_README = DATA_DIR / "README.md"
SEED = 2023
CRS = "EPSG:4545"
CENTRE_LONLAT = (109.2, 24.6)
COUNTY_AREA_M2 = 2.0e9
KARST_SHARE = 0.35  # share of the county on karst limestone
COUNTY = {"XZQDM": "450299", "XZQMC": "示范县", "NAME_EN": "Demo County"}
MU_M2 = 10_000 / 15  # 1 亩 in m²
MIN_PARCEL_M2 = 0.2 * MU_M2  # slivers below 0.2 亩 are dropped

#: code, Chinese name, pinyin. Codes follow GB/T 10114: 镇 1xx, 乡 2xx, 管理区 4xx.
#: The first township holds the county seat (the cell nearest the centre).
TOWNSHIPS = (
    ("450299101", "清水镇", "Qingshui"),
    ("450299102", "龙江镇", "Longjiang"),
    ("450299103", "桂岭镇", "Guiling"),
    ("450299104", "白沙镇", "Baisha"),
    ("450299105", "安宁镇", "Anning"),
    ("450299106", "黄塘镇", "Huangtang"),
    ("450299107", "三江口镇", "Sanjiangkou"),
    ("450299201", "石门乡", "Shimen"),
    ("450299202", "凤凰乡", "Fenghuang"),
    ("450299203", "东岩乡", "Dongyan"),
    ("450299204", "马岭乡", "Maling"),
    ("450299205", "平山乡", "Pingshan"),
    ("450299400", "华侨管理区", "Huaqiao Guanliqu"),
)
#: townships sampled about 5x more thinly per km² of farmland (a gap the tool must flag)
UNDER_SAMPLED = ("450299204", "450299400")
UNDER_SAMPLING_FACTOR = 0.03

N_PARCEL_SEEDS = 29_500  # Voronoi seeds; ~30 000 parcels survive clipping
PADDY_SHARE, ORCHARD_SHARE, IRRIGATED_SHARE = 0.55, 0.10, 0.12  # of farmland area
N_SOIL_DETAILED, N_SOIL_DENSIFIED = 1_300, 200
N_CROP_2023, N_SOIL_2024, N_CROP_2024 = 400, 120, 150
#: share of the class-2 + class-3 area covered by a matching measure, on the classes the
#: tool gives the samples known at the start of the year (the classes each ledger follows)
MEASURE_COVERAGE = 0.975
MEASURE_COVERAGE_2024 = 0.99
#: townships whose measures lag behind (share of their class-2/3 area covered)
LAGGING_TOWNSHIPS = {"450299106": 0.88}

LANDUSE = {"0101": "水田", "0102": "水浇地", "0103": "旱地", "0201": "果园"}
SAFE_USE = ("低积累品种替代", "水分调控", "施用石灰", "叶面阻控")
STRICT_CONTROL = ("种植结构调整", "特定农产品禁止生产区", "退耕还林还草", "休耕")
SOIL_HEADER = [
    "样品编号",
    "X",
    "Y",
    "pH",
    "镉",
    "汞",
    "砷",
    "铅",
    "铬",
    "铜",
    "镍",
    "锌",
    "采样年份",
    "调查类型",
]
CROP_HEADER = ["样品编号", "X", "Y", "作物", "镉", "铅", "汞", "砷", "铬", "采样年份"]
MEASURE_HEADER = ["图斑编号", "措施类型", "措施类别", "年度"]
SOIL_COLUMNS = {
    "cd": "镉",
    "hg": "汞",
    "as": "砷",
    "pb": "铅",
    "cr": "铬",
    "cu": "铜",
    "ni": "镍",
    "zn": "锌",
}
CROP_COLUMNS = {"cd": "镉", "pb": "铅", "hg": "汞", "as": "砷", "cr": "铬"}
DECIMALS = {"cd": 3, "hg": 3, "as": 2, "pb": 1, "cr": 1, "cu": 1, "ni": 1, "zn": 1}

# GB 15618-2018 values for calibration only (the tool has its own tables):
# pH bands b0 <= 5.5 < b1 <= 6.5 < b2 <= 7.5 < b3
PH_EDGES = np.array([5.5, 6.5, 7.5])
SCREENING = {  # element -> (paddy row, other row)
    "cd": ((0.3, 0.4, 0.6, 0.8), (0.3, 0.3, 0.3, 0.6)),
    "hg": ((0.5, 0.5, 0.6, 1.0), (1.3, 1.8, 2.4, 3.4)),
    "as": ((30, 30, 25, 20), (40, 40, 30, 25)),
    "pb": ((80, 100, 140, 240), (70, 90, 120, 170)),
    "cr": ((250, 250, 300, 350), (150, 150, 200, 250)),
}
INTERVENTION = {
    "cd": (1.5, 2.0, 3.0, 4.0),
    "hg": (2.0, 2.5, 4.0, 6.0),
    "as": (200, 150, 120, 100),
    "pb": (400, 500, 700, 1000),
    "cr": (800, 850, 1000, 1300),
}
# GB 2762 limits (mg/kg) and a soil-to-crop transfer model: log10 BCF = a - b*pH
CROPS = {
    "稻谷": {
        "limits": {"cd": 0.2, "pb": 0.2, "hg": 0.02, "as": 0.35, "cr": 1.0},
        "cd_ab": (1.80, 0.42),
    },
    "玉米": {
        "limits": {"cd": 0.1, "pb": 0.2, "hg": 0.02, "as": 0.5, "cr": 1.0},
        "cd_ab": (1.20, 0.40),
    },
    "叶菜类": {
        "limits": {"cd": 0.2, "pb": 0.3, "hg": 0.01, "as": 0.5, "cr": 0.5},
        "cd_ab": (1.10, 0.36),
    },
}
CROP_BCF_OTHER = {"pb": 0.00012, "hg": 0.006, "as": 0.008, "cr": 0.002}

#: the six cadmium-related enterprises: name, industry, metals, placement
#: (river, karst or acid setting, plume Cd amplitude mg/kg, plume length m)
ENTERPRISES = (
    ("示范县鑫源有色金属冶炼有限公司", "有色金属冶炼", "Cd,Pb,Zn,As", "main", "acid", 1.6, 550),
    ("龙江华达电镀厂", "电镀", "Cd,Cr,Ni,Cu,Zn", "trib", "acid", 0.9, 450),
    ("桂岭恒通化工有限公司", "化工", "Hg,Cd,As", "main", "any", 0.7, 450),
    ("马岭铅锌矿选矿厂", "有色金属矿采选", "Pb,Zn,Cd", "trib", "karst", 4.5, 600),
    ("白沙宏力蓄电池有限公司", "铅蓄电池制造", "Pb,Cd", "main", "any", 0.8, 450),
    ("东岩磷化工有限公司", "化工", "Cd,As,Zn", "trib", "acid", 0.7, 450),
)
#: extra hotspots per enterprise index: element -> (amplitude mg/kg, radius m)
HOTSPOTS = {
    0: {"pb": (200, 900), "zn": (260, 1000), "as": (20, 800)},
    1: {"cr": (180, 600), "ni": (60, 600), "cu": (70, 700), "zn": (120, 600)},
    2: {"hg": (0.9, 800), "as": (15, 700)},
    3: {"pb": (1600, 700), "zn": (400, 900)},
    4: {"pb": (250, 600)},
    5: {"as": (45, 800), "zn": (90, 700)},
}


@dataclasses.dataclass(frozen=True)
class SmoothField:
    """Stationary Gaussian random field with unit variance (random Fourier features).

    Squared-exponential covariance with correlation length ``length`` (m). Evaluated
    at EPSG:4545 coordinates relative to :attr:`origin`.
    """

    wave: np.ndarray  # (K, 2), rad/m
    phase: np.ndarray  # (K,)
    origin: tuple[float, float]
    shift: float = 0.0  # subtracted from the field

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float) - self.origin[0]
        y = np.asarray(y, float) - self.origin[1]
        out = np.empty(x.shape)
        for i in range(0, x.size, 20_000):  # chunks keep the (n, K) matrix small
            sl = slice(i, i + 20_000)
            arg = np.outer(x.ravel()[sl], self.wave[:, 0]) + np.outer(
                y.ravel()[sl], self.wave[:, 1]
            )
            out.ravel()[sl] = np.cos(arg + self.phase).sum(axis=1)
        return out * np.sqrt(2.0 / len(self.phase)) - self.shift


def smooth_field(
    rng: np.random.Generator, length: float, origin: tuple[float, float], k: int = 192
) -> SmoothField:
    """Draw a :class:`SmoothField` with correlation length ``length`` metres."""
    wave = rng.normal(0.0, 1.0 / length, size=(k, 2))
    return SmoothField(wave, rng.uniform(0, 2 * np.pi, k), origin)


# --------------------------------------------------------------------------- geography
def county_centre() -> tuple[float, float]:
    """EPSG:4545 coordinates (m) of :data:`CENTRE_LONLAT`."""
    tr = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    x, y = tr.transform(*CENTRE_LONLAT)
    return round(float(x), 2), round(float(y), 2)


def county_boundary(rng: np.random.Generator, centre: tuple[float, float]) -> shapely.Polygon:
    """An irregular star-shaped county of :data:`COUNTY_AREA_M2` around ``centre``.

    The radius is one plus a sum of harmonics with amplitudes falling as k^-1.1
    (a rough, natural-looking outline); rounded to 0.01 m.
    """
    theta = np.linspace(0, 2 * np.pi, 1200, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 90):
        r += 0.16 * k**-1.1 * rng.uniform(0.2, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    ring = np.c_[np.cos(theta) * r, np.sin(theta) * r]
    scale = np.sqrt(COUNTY_AREA_M2 / shapely.Polygon(ring).area)
    return shapely.set_precision(shapely.Polygon(ring * scale + centre), 0.01)


def lloyd_seeds(
    rng: np.random.Generator, region: shapely.Polygon, n: int, rounds: int = 6
) -> np.ndarray:
    """``n`` well-spread points inside ``region`` (Lloyd relaxation of random points)."""
    pts = random_points_in(rng, region, n)
    for _ in range(rounds):
        cells = voronoi_cells(pts, region)
        pts = shapely.get_coordinates(shapely.centroid(shapely.intersection(cells, region)))
    return pts


def random_points_in(rng: np.random.Generator, region: shapely.Geometry, n: int) -> np.ndarray:
    """``n`` uniform random points inside ``region`` (rejection sampling)."""
    x0, y0, x1, y1 = region.bounds
    shapely.prepare(region)
    out = np.empty((0, 2))
    while len(out) < n:
        cand = rng.uniform((x0, y0), (x1, y1), size=(4 * n, 2))
        out = np.vstack([out, cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]])
    return out[:n]


def voronoi_cells(points: np.ndarray, region: shapely.Geometry) -> np.ndarray:
    """Voronoi cells of ``points`` (in input order), extended over ``region``'s envelope."""
    env = shapely.envelope(region).buffer(5_000)
    cells = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=env, ordered=True)
    return shapely.get_parts(cells)


def township_frame(
    rng: np.random.Generator, county: shapely.Polygon, centre: tuple[float, float]
) -> gpd.GeoDataFrame:
    """Partition the county into the 13 units of :data:`TOWNSHIPS` (exact tiling).

    Voronoi cells of Lloyd-relaxed seeds, clipped to the county, then bent by a smooth
    displacement field that vanishes on the county boundary, so borders wander like
    real ones while shared edges stay shared. Their union (not ``county`` itself, which
    differs by rounding along the outline) is the county polygon written out.
    """
    seeds = lloyd_seeds(rng, county, len(TOWNSHIPS))
    dx, dy = seeds[:, 0] - centre[0], seeds[:, 1] - centre[1]
    seat = int(np.argmin(np.hypot(dx, dy)))
    angle = np.mod(np.arctan2(dx, dy), 2 * np.pi)  # clockwise from north
    angle[seat] = -1.0
    order = np.argsort(angle)
    cells = shapely.intersection(voronoi_cells(seeds[order], county), county)
    warp = [
        (amp, smooth_field(rng, length, centre), smooth_field(rng, length, centre))
        for amp, length in ((900.0, 5000.0), (220.0, 1200.0))
    ]
    edge = county.boundary

    def bend(xy: np.ndarray) -> np.ndarray:
        taper = np.clip(shapely.distance(shapely.points(xy), edge) / 2000.0, 0, 1)[:, None]
        for amp, fx, fy in warp:
            xy = xy + amp * taper * np.c_[fx(xy[:, 0], xy[:, 1]), fy(xy[:, 0], xy[:, 1])]
        return xy

    cells = shapely.transform(shapely.segmentize(cells, 150.0), bend)
    cells = shapely.set_precision(shapely.coverage_clean(cells, snapping_distance=0), 0.01)
    if not (shapely.coverage_is_valid(cells) and shapely.is_valid(cells).all()):
        raise RuntimeError("townships are not a valid coverage")
    return gpd.GeoDataFrame(
        {"XZQDM": [t[0] for t in TOWNSHIPS], "XZQMC": [t[1] for t in TOWNSHIPS]},
        geometry=cells,
        crs=CRS,
    )


# --------------------------------------------------------------------------- rivers
@dataclasses.dataclass(frozen=True)
class River:
    """A river as a densified polyline in flow direction with per-vertex attributes."""

    name: str
    xy: np.ndarray  # (n, 2) vertices, upstream -> downstream, ~20 m apart
    half_width: np.ndarray  # valley (farmland band) half-width at each vertex, m
    channel: float  # water channel half-width, m

    @property
    def chainage(self) -> np.ndarray:
        """Distance along the river from its upstream end (m)."""
        return np.r_[0.0, np.cumsum(np.hypot(*np.diff(self.xy, axis=0).T))]

    @property
    def direction(self) -> np.ndarray:
        """Unit flow direction at each vertex."""
        d = np.gradient(self.xy, axis=0)
        return d / np.hypot(*d.T)[:, None]

    @property
    def line(self) -> shapely.LineString:
        return shapely.LineString(self.xy)


def meander_line(
    rng: np.random.Generator,
    start: np.ndarray,
    end: np.ndarray,
    amps: tuple[float, ...],
    *,
    pinned: bool,
) -> np.ndarray:
    """A meandering polyline from ``start`` to ``end`` (20 m steps).

    Lateral offsets are a sum of sines of rising frequency with amplitudes ``amps`` (m);
    ``pinned`` keeps the offset at zero at ``end`` (a tributary joins its main river).
    """
    length = float(np.hypot(*(end - start)))
    t = np.linspace(0, 1, int(length / 20) + 1)
    offset = np.zeros_like(t)
    for i, amp in enumerate(amps):
        for _ in range(2):
            freq = rng.uniform(1.0, 2.2) * (3.2**i)
            offset += (
                amp
                / 2
                * rng.uniform(0.6, 1.2)
                * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            )
    if pinned:
        offset *= np.clip((1 - t) * length / 1500, 0, 1)
    along = (end - start) / length
    normal = np.array([-along[1], along[0]])
    return start + np.outer(t, end - start) + np.outer(offset, normal)


def make_rivers(rng: np.random.Generator, centre: tuple[float, float]) -> list[River]:
    """Main river 清江 (NW -> SE) and three tributaries joining it."""
    width_noise = (smooth_field(rng, 5000, centre), smooth_field(rng, 900, centre))
    c = np.asarray(centre)
    radius = np.sqrt(COUNTY_AREA_M2 / np.pi)
    a_in = np.deg2rad(150 + rng.uniform(-15, 15))
    a_out = np.deg2rad(-25 + rng.uniform(-15, 15))
    xy = meander_line(
        rng,
        c + 1.5 * radius * np.r_[np.cos(a_in), np.sin(a_in)],
        c + 1.5 * radius * np.r_[np.cos(a_out), np.sin(a_out)],
        (3500, 1300, 420),
        pinned=False,
    )
    main = _river("清江", xy, 110, 500, width_noise, channel=30)
    rivers = [main]
    for name, t_join, side in (("龙溪河", 0.36, 1), ("桂水", 0.52, -1), ("白沙河", 0.68, 1)):
        j = int(t_join * (len(main.xy) - 1))
        d = main.direction[j]
        normal = side * np.array([-d[1], d[0]])
        # the source lies off to one side and 35 degrees upstream of the confluence
        heading = normal * np.cos(np.deg2rad(35)) - d * np.sin(np.deg2rad(35))
        source = main.xy[j] + heading * rng.uniform(13_000, 19_000)
        txy = meander_line(rng, source, main.xy[j], (1300, 350, 110), pinned=True)
        rivers.append(_river(name, txy, 70, 230, width_noise, channel=12))
    return rivers


def _river(
    name: str,
    xy: np.ndarray,
    w0: float,
    w1: float,
    noise: tuple[SmoothField, SmoothField],
    *,
    channel: float,
) -> River:
    """River with a valley that widens downstream from ``w0`` to ``w1`` (half-widths, m)."""
    s = np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
    frac = s / s[-1]
    wiggle = 0.35 * noise[0](xy[:, 0], xy[:, 1]) + 0.25 * noise[1](xy[:, 0], xy[:, 1])
    half = (w0 + (w1 - w0) * frac) * np.exp(wiggle)
    return River(name, np.round(xy, 2), half, channel)


# --------------------------------------------------------------------------- farmland zones
def blob(rng: np.random.Generator, x: float, y: float, radius: float) -> shapely.Polygon:
    """An irregular roundish polygon of mean radius ``radius`` metres."""
    theta = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0, 0.28 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return shapely.Polygon(np.c_[x + radius * r * np.cos(theta), y + radius * r * np.sin(theta)])


def valley_zone(rivers: list[River]) -> shapely.Geometry:
    """Union of discs along every river with the local valley half-width."""
    discs = []
    step = 3  # a disc every third vertex, about 60 m
    for r in rivers:
        pts = shapely.points(r.xy[::step])
        discs.append(shapely.buffer(pts, r.half_width[::step], quad_segs=5))
    valley = shapely.union_all(np.concatenate(discs))
    return valley.buffer(60, quad_segs=3).buffer(-60, quad_segs=3)


def farmland_zone(
    rng: np.random.Generator,
    county: shapely.Polygon,
    rivers: list[River],
    karst: SmoothField,
    n_patches: int = 200,
) -> shapely.Geometry:
    """Farmland: river valleys minus settlements and water, plus hill and karst-depression patches."""
    valley = valley_zone(rivers)
    shapely.prepare(valley)
    vpts = random_points_in(rng, valley, 90)
    holes = [blob(rng, x, y, rng.uniform(90, 260)) for x, y in vpts]  # villages, hillocks
    pts = random_points_in(rng, county.buffer(-400), 6 * n_patches)
    kw = karst_weight(karst, pts[:, 0], pts[:, 1])
    keep = ~shapely.contains_xy(valley.buffer(500), pts[:, 0], pts[:, 1])
    keep &= rng.uniform(size=len(pts)) < 0.4 + 0.6 * kw  # karst depressions dominate
    pts = pts[keep][:n_patches]
    patches = [blob(rng, x, y, rng.uniform(90, 340)) for x, y in pts]
    water = shapely.union_all([shapely.buffer(r.line, r.channel, quad_segs=2) for r in rivers])
    zone = shapely.union_all([valley, *patches]).difference(shapely.union_all([*holes, water]))
    zone = shapely.intersection(zone, county.buffer(-30))
    return shapely.make_valid(shapely.simplify(zone, 2.0))


def karst_field(
    rng: np.random.Generator, county: shapely.Polygon, centre: tuple[float, float]
) -> SmoothField:
    """Smooth field whose positive part marks karst: :data:`KARST_SHARE` of the county."""
    field = smooth_field(rng, 7000, centre)
    x0, y0, x1, y1 = county.bounds
    gx, gy = np.meshgrid(np.arange(x0, x1, 1000.0), np.arange(y0, y1, 1000.0))
    inside = shapely.contains_xy(county, gx, gy)
    shift = float(np.quantile(field(gx[inside], gy[inside]), 1 - KARST_SHARE))
    return dataclasses.replace(field, shift=shift)


def karst_weight(karst: SmoothField, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0 (red-soil area) .. 1 (karst limestone area), a smooth logistic of a field."""
    return 1.0 / (1.0 + np.exp(-karst(x, y) / 0.12))


# --------------------------------------------------------------------------- parcels
def parcel_seeds(
    rng: np.random.Generator, pieces: np.ndarray, density: SmoothField, n: int
) -> np.ndarray:
    """``n`` Voronoi seeds inside the farmland ``pieces`` with a smoothly varying density.

    Uniform candidates (each piece's bounding box drawn in proportion to its area, then
    rejection against the piece) thinned by ``exp(0.5 * density)``.
    """
    b = shapely.bounds(pieces)
    box_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    k = rng.choice(len(pieces), size=12 * n, p=box_area / box_area.sum())
    u = rng.uniform(size=(len(k), 2))
    x, y = b[k, 0] + u[:, 0] * (b[k, 2] - b[k, 0]), b[k, 1] + u[:, 1] * (b[k, 3] - b[k, 1])
    inside = shapely.contains_xy(pieces[k], x, y)
    x, y = x[inside], y[inside]
    w = np.exp(0.5 * np.clip(density(x, y), -2.5, 2.5))
    keep = rng.uniform(size=len(x)) < w / np.exp(1.25)
    if keep.sum() < n:
        raise RuntimeError(f"only {keep.sum()} parcel seeds for {n}; raise the candidate factor")
    return np.c_[x[keep], y[keep]][:n]


def zone_pieces(zone: shapely.Geometry, townships: gpd.GeoDataFrame, tile: float = 2_000.0):
    """Zone ∩ township ∩ a square tile grid: small polygons that speed up clipping."""
    geoms, town = [], []
    for i, t in enumerate(townships.geometry):
        zt = shapely.intersection(zone, t)
        x0, y0, x1, y1 = zt.bounds
        gx, gy = np.meshgrid(np.arange(x0, x1, tile), np.arange(y0, y1, tile))
        tiles = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + tile, gy.ravel() + tile)
        parts = shapely.get_parts(shapely.intersection(zt, tiles))
        parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
        geoms.append(parts)
        town.append(np.full(len(parts), i))
    return np.concatenate(geoms), np.concatenate(town)


def clip_cells(cells: np.ndarray, pieces: np.ndarray, piece_town: np.ndarray):
    """Clip Voronoi ``cells`` to the farmland ``pieces`` (zone ∩ township ∩ tile), merging
    the parts of a cell that fall in one township.

    Returns polygons (cells fully inside one piece are kept untouched) and the township
    index of each; coordinates rounded to 0.01 m, slivers below 0.2 亩 dropped.
    """
    ci, pi = shapely.STRtree(pieces).query(cells, predicate="intersects")
    whole = shapely.contains_properly(pieces[pi], cells[ci])
    parts = shapely.intersection(cells[ci[~whole]], pieces[pi[~whole]])
    df = pd.DataFrame({"cell": ci[~whole], "town": piece_town[pi[~whole]], "geom": parts})
    merged = []
    for (_, town), grp in df.groupby(["cell", "town"], sort=True):
        g = grp["geom"].to_numpy()
        merged.append((town, g[0] if len(g) == 1 else shapely.union_all(g)))
    geoms = np.concatenate([cells[ci[whole]], np.array([m[1] for m in merged], dtype=object)])
    towns = np.concatenate([piece_town[pi[whole]], np.array([m[0] for m in merged], dtype=int)])
    polys, idx = shapely.get_parts(geoms, return_index=True)
    is_poly = shapely.get_type_id(polys) == 3
    polys, towns = shapely.set_precision(polys[is_poly], 0.01), towns[idx[is_poly]]
    polys, pidx = shapely.get_parts(polys, return_index=True)  # rounding can split a polygon
    towns = towns[pidx]
    keep = (shapely.get_type_id(polys) == 3) & (shapely.area(polys) >= MIN_PARCEL_M2)
    return repair_coverage(polys[keep]), towns[keep]


def repair_coverage(polys: np.ndarray) -> np.ndarray:
    """Make the parcels an exact coverage: where two parcels overlap or their shared edges
    do not match (cells cut at a township border by separate intersections), clean that
    neighbourhood with ``shapely.coverage_clean`` (no snapping) and round again."""
    polys = polys.copy()
    bad = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(polys)))
    if len(bad):
        near = np.unique(shapely.STRtree(polys).query(polys[bad], predicate="intersects")[1])
        polys[near] = shapely.set_precision(
            shapely.coverage_clean(polys[near], snapping_distance=0), 0.01
        )
        log.info("cleaned %d parcels around %d coverage defects", len(near), len(bad))
    if not shapely.coverage_is_valid(polys):
        raise RuntimeError("parcels are not an exact coverage after repair")
    return polys


def nearest_river(rivers: list[River], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Distance (m) to the nearest river vertex, that river's index and local half-width."""
    xy = np.concatenate([r.xy for r in rivers])
    rid = np.concatenate([np.full(len(r.xy), i) for i, r in enumerate(rivers)])
    half = np.concatenate([r.half_width for r in rivers])
    vid = np.concatenate([np.arange(len(r.xy)) for r in rivers])
    dist, j = cKDTree(xy).query(np.c_[x, y])
    return {"dist": dist, "river": rid[j], "vertex": vid[j], "half_width": half[j]}


def assign_landuse(
    rng: np.random.Generator, area: np.ndarray, d_rel: np.ndarray, f1: np.ndarray, f2: np.ndarray
) -> np.ndarray:
    """Land-use codes by area quota: paddy nearest the rivers, orchards clustered on hills.

    ``d_rel`` is the distance to the river over the local valley half-width;
    ``f1``/``f2`` are smooth fields at the parcel centroids (spatial clustering).
    """
    code = np.full(len(area), "0103", dtype=object)
    noise = rng.normal(0, 0.25, len(area))
    paddy_score = -0.8 * np.minimum(d_rel, 2.5) + 0.7 * f1 + noise
    code[_top_area(paddy_score, area, PADDY_SHARE)] = "0101"
    free = code == "0103"
    orchard_score = np.where(free, 0.9 * f2 + 0.35 * np.minimum(d_rel, 3) + noise, -np.inf)
    code[_top_area(orchard_score, area, ORCHARD_SHARE)] = "0201"
    free = code == "0103"
    irr_score = np.where(free, -np.minimum(d_rel, 3) + 0.4 * f1 + 2 * noise, -np.inf)
    code[_top_area(irr_score, area, IRRIGATED_SHARE)] = "0102"
    return code


def _top_area(score: np.ndarray, area: np.ndarray, share: float) -> np.ndarray:
    """Boolean mask of the highest-scoring parcels that together hold ``share`` of the area."""
    order = np.argsort(-score, kind="stable")
    cum = np.cumsum(area[order])
    mask = np.zeros(len(area), bool)
    mask[order[cum <= share * area.sum()]] = True
    return mask & np.isfinite(score)


VILLAGE_FIRST = list("大小新上下东西南北高古龙凤石马黄白青金长平双太福永安陈李罗莲塘岭")
VILLAGE_SECOND = list("坪塘岭岩洞江湾寨垌圩田坡冲山河桥屯洲岸林园头湖")


def village_table(rng: np.random.Generator, townships: gpd.GeoDataFrame) -> pd.DataFrame:
    """Village seats (about one per 12 km²) with unique fictional names and 19-digit codes."""
    names = [a + b for a in VILLAGE_FIRST for b in VILLAGE_SECOND if a != b]
    names = list(rng.permutation(names))
    rows = []
    for ti, (code, poly) in enumerate(zip(townships["XZQDM"], townships.geometry)):
        n = max(5, round(poly.area / 12e6))
        seats = random_points_in(rng, poly, n)
        seats = seats[np.lexsort((seats[:, 0], -seats[:, 1]))]  # numbered north to south
        for k, (x, y) in enumerate(seats, start=1):
            rows.append(
                {
                    "town": ti,
                    "x": x,
                    "y": y,
                    "ZLDWDM": f"{code}{k:03d}0000000",
                    "ZLDWMC": names.pop() + "村",
                }
            )
    return pd.DataFrame(rows)


def build_parcels(
    rng: np.random.Generator,
    zone: shapely.Geometry,
    townships: gpd.GeoDataFrame,
    rivers: list[River],
    centre: tuple[float, float],
) -> gpd.GeoDataFrame:
    """The DLTB coverage: Voronoi cells clipped to farmland and townships, with attributes."""
    density = smooth_field(rng, 1500, centre)
    pieces, piece_town = zone_pieces(zone, townships)
    shapely.prepare(pieces)
    seeds = parcel_seeds(rng, pieces, density, N_PARCEL_SEEDS)
    polys, town = clip_cells(voronoi_cells(seeds, zone), pieces, piece_town)
    rep = shapely.get_coordinates(shapely.point_on_surface(polys))
    area = shapely.area(polys)
    near = nearest_river(rivers, rep[:, 0], rep[:, 1])
    d_rel = near["dist"] / near["half_width"]
    f1, f2 = smooth_field(rng, 1200, centre), smooth_field(rng, 2500, centre)
    dlbm = assign_landuse(rng, area, d_rel, f1(rep[:, 0], rep[:, 1]), f2(rep[:, 0], rep[:, 1]))
    hill = d_rel > 1.3
    factor = np.where(hill, rng.uniform(0.92, 0.97, len(area)), rng.uniform(0.96, 1.0, len(area)))
    villages = village_table(rng, townships)
    vil = np.empty(len(polys), int)
    for ti in range(len(townships)):
        vt = villages.index[villages["town"] == ti].to_numpy()
        sel = town == ti
        vil[sel] = vt[cKDTree(villages.loc[vt, ["x", "y"]].to_numpy()).query(rep[sel])[1]]
    order = np.lexsort((rep[:, 0].round(), -rep[:, 1].round(), vil, town))
    codes = townships["XZQDM"].to_numpy()
    frame = (
        pd.DataFrame(
            {
                "DLBM": dlbm,
                "DLMC": [LANDUSE[c] for c in dlbm],
                "TBDLMJ": np.round(area * factor, 2),
                "ZLDWDM": villages["ZLDWDM"].to_numpy()[vil],
                "ZLDWMC": villages["ZLDWMC"].to_numpy()[vil],
                "XZQDM": codes[town],
                "XZQMC": townships["XZQMC"].to_numpy()[town],
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    frame.insert(0, "BSM", [f"{c}{i:09d}" for i, c in enumerate(frame["XZQDM"], start=1)])
    return gpd.GeoDataFrame(frame, geometry=polys[order], crs=CRS)


# --------------------------------------------------------------------------- soil model
@dataclasses.dataclass
class Enterprise:
    """A cadmium-related enterprise beside a river (EPSG:4545 position, flow direction)."""

    name: str
    industry: str
    metals: str
    xy: np.ndarray
    flow: np.ndarray
    amplitude: float
    length: float
    river: int
    vertex: int


def place_enterprises(
    rng: np.random.Generator, rivers: list[River], county: shapely.Polygon, karst: SmoothField
) -> list[Enterprise]:
    """Put each of :data:`ENTERPRISES` on a river bank in its geological setting.

    The smelter (first entry) sits on the upper main river so that its irrigation band
    runs downstream through the valley; all enterprises are at least 6 km apart.
    """
    out: list[Enterprise] = []
    inner = county.buffer(-4000)
    shapely.prepare(inner)
    for k, (name, industry, metals, where, setting, amp, length) in enumerate(ENTERPRISES):
        rids = [0] if where == "main" else list(range(1, len(rivers)))
        xy = np.concatenate([rivers[i].xy for i in rids])
        rid = np.concatenate([np.full(len(rivers[i].xy), i) for i in rids])
        vid = np.concatenate([np.arange(len(rivers[i].xy)) for i in rids])
        frac = np.concatenate([rivers[i].chainage / rivers[i].chainage[-1] for i in rids])
        kw = karst_weight(karst, xy[:, 0], xy[:, 1])
        ok = shapely.contains_xy(inner, xy[:, 0], xy[:, 1])
        ok &= {"acid": kw < 0.2, "karst": kw > 0.8, "any": np.ones(len(xy), bool)}[setting]
        ok &= (frac > 0.15) & (frac < 0.45) if k == 0 else (frac > 0.25) & (frac < 0.9)
        for e in out:
            ok &= np.hypot(*(xy - e.xy).T) > 6000
        if not ok.any():
            raise RuntimeError(f"no river bank fits enterprise {name!r} ({where}, {setting})")
        j = int(rng.choice(np.flatnonzero(ok)))
        r, v = rivers[rid[j]], int(vid[j])
        d = r.direction[v]
        bank = r.xy[v] + np.array([-d[1], d[0]]) * rng.choice([-1, 1]) * (r.channel + 120)
        out.append(
            Enterprise(name, industry, metals, np.round(bank, 2), d, amp, length, int(rid[j]), v)
        )
    return out


#: soil background per element: (acid red-soil median, karst median, log-sd acid, log-sd karst),
#: mg/kg; the median moves geometrically with the karst weight
SOIL_BACKGROUND = {
    "cd": (0.16, 0.33, 0.35, 0.5),
    "hg": (0.028, 0.09, 0.6, 0.5),
    "as": (11.0, 14.0, 0.25, 0.3),
    "pb": (32.0, 42.0, 0.2, 0.25),
    "cr": (62.0, 105.0, 0.2, 0.2),
    "cu": (24.0, 34.0, 0.3, 0.3),
    "ni": (22.0, 48.0, 0.3, 0.3),
    "zn": (85.0, 135.0, 0.2, 0.25),
}
#: the irrigation district below the smelter: Cd added (mg/kg) = amplitude
#: * exp(-ds / decay) * logistic((reach - ds) / edge) * logistic((width - d) / side),
#: ds = distance downstream along the main river, d = distance from the river (m)
IRRIGATION_BAND = {
    "enterprise": 0,
    "amplitude": 3.0,
    "decay": 16_000.0,
    "reach": 9_000.0,
    "edge": 700.0,
    "width": 380.0,
    "side": 50.0,
}


@dataclasses.dataclass
class SoilModel:
    """Median soil concentrations (mg/kg) and pH as smooth functions of position."""

    karst: SmoothField
    fields: dict[str, SmoothField]
    enterprises: list[Enterprise]
    rivers: list[River]

    def ph(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Median soil pH at EPSG:4545 ``x``/``y``: acid red soils rising to about 8 on karst."""
        kw = np.sqrt(karst_weight(self.karst, x, y))  # limestone buffers soils quickly
        base = 5.45 + 0.42 * self.fields["ph"](x, y)
        return np.clip(base + kw * (8.05 - base) + 0.12 * kw * self.fields["ph2"](x, y), 4.6, 8.2)

    def karst_weight(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """0 (red-soil area) .. 1 (karst limestone area) at EPSG:4545 ``x``/``y``."""
        return karst_weight(self.karst, x, y)

    def background(self, el: str, kw: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Geological background median (mg/kg) of ``el`` at karst weight ``kw``."""
        acid, karst, sd_acid, sd_karst = SOIL_BACKGROUND[el]
        sd = sd_acid + kw * (sd_karst - sd_acid)
        return np.exp(np.log(acid) + kw * np.log(karst / acid) + sd * self.fields[el](x, y))

    def cd_parts(
        self, x: np.ndarray, y: np.ndarray, kw: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Median Cd (mg/kg) by cause, in the order :meth:`concentrations` adds them.

        ``background`` (red soil to karst), ``E01`` … ``E06`` (enterprise plumes) and
        ``IRR`` (the irrigation band) sum to the model's Cd; ``red_soil`` is the background
        the same site would have at karst weight 0, so ``background - red_soil`` is the
        geogenic Cd that the karst adds. ``kw``: the karst weight at ``x``/``y`` if known.
        """
        kw = self.karst_weight(x, y) if kw is None else kw
        parts = {"background": self.background("cd", kw, x, y)}
        for k, e in enumerate(self.enterprises, start=1):
            parts[f"E{k:02d}"] = e.amplitude * np.exp(-self._plume_distance(e, x, y))
        parts["IRR"] = self._irrigation_band(x, y)
        parts["red_soil"] = self.background("cd", np.zeros_like(kw), x, y)
        return parts

    def concentrations(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Median mg/kg of every element: background + enterprise plumes, hotspots and band."""
        kw = self.karst_weight(x, y)
        out = {el: self.background(el, kw, x, y) for el in SOIL_BACKGROUND}
        for k, e in enumerate(self.enterprises):
            r = self._plume_distance(e, x, y)
            out["cd"] = out["cd"] + e.amplitude * np.exp(-r)
            for el, (amp, radius) in HOTSPOTS.get(k, {}).items():
                out[el] = out[el] + amp * np.exp(
                    -0.5 * (np.hypot(x - e.xy[0], y - e.xy[1]) / radius) ** 2
                )
        out["cd"] = out["cd"] + self._irrigation_band(x, y)
        return out

    def _plume_distance(self, e: Enterprise, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Anisotropic distance in plume lengths: stretched 2.2x downstream, 0.7x upstream."""
        vx, vy = x - e.xy[0], y - e.xy[1]
        along = vx * e.flow[0] + vy * e.flow[1]
        across = np.abs(vx * e.flow[1] - vy * e.flow[0])
        la = np.where(along > 0, 2.2, 0.7) * e.length
        return np.hypot(along / la, across / e.length)

    def _irrigation_band(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cd carried by irrigation water into the fields along the main river below the smelter."""
        b = IRRIGATION_BAND
        e = self.enterprises[b["enterprise"]]
        main = self.rivers[0]
        dist, j = cKDTree(main.xy).query(np.c_[x, y])
        ds = main.chainage[j] - main.chainage[e.vertex]
        along = np.where(
            ds > 0, np.exp(-ds / b["decay"]) * _logistic((b["reach"] - ds) / b["edge"]), 0.0
        )
        return b["amplitude"] * along * _logistic((b["width"] - dist) / b["side"])


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def soil_model(
    rng: np.random.Generator,
    karst: SmoothField,
    enterprises: list[Enterprise],
    rivers: list[River],
    centre: tuple[float, float],
) -> SoilModel:
    """Draw the smooth fields of :class:`SoilModel`."""
    names = ["ph", "ph2", *SOIL_BACKGROUND]
    lengths = {"ph": 4000, "ph2": 1500}
    fields = {n: smooth_field(rng, lengths.get(n, 2500), centre) for n in names}
    return SoilModel(karst, fields, enterprises, rivers)


def point_classes(ph: np.ndarray, conc: dict[str, np.ndarray], paddy: np.ndarray) -> np.ndarray:
    """GB 15618 class (1/2/3) of each point from pH, concentrations and the paddy flag."""
    band = np.searchsorted(PH_EDGES, ph, side="left")
    cls = np.ones(len(ph), int)
    for el, (rice, other) in SCREENING.items():
        s = np.where(paddy, np.take(rice, band), np.take(other, band))
        iv = np.take(INTERVENTION[el], band)
        cls = np.maximum(cls, np.where(conc[el] > iv, 3, np.where(conc[el] > s, 2, 1)))
    return cls


def expected_classes(model: SoilModel, parcels: gpd.GeoDataFrame) -> pd.DataFrame:
    """Class of every parcel from the noise-free model at its representative point."""
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    ph = model.ph(rep[:, 0], rep[:, 1])
    conc = model.concentrations(rep[:, 0], rep[:, 1])
    cls = point_classes(ph, conc, (parcels["DLBM"] == "0101").to_numpy())
    return pd.DataFrame(
        {
            "BSM": parcels["BSM"],
            "expected_class": cls,
            "ph": ph.round(2),
            "cd": conc["cd"].round(3),
            "x": rep[:, 0],
            "y": rep[:, 1],
        }
    )


# --------------------------------------------------------------------------- sampling sites
def points_in_parcels(rng: np.random.Generator, geoms: np.ndarray, tries: int = 16) -> np.ndarray:
    """One uniform random point inside each polygon (falls back to a point on the surface)."""
    geoms = np.asarray(geoms, dtype=object)
    b = shapely.bounds(geoms)
    u = rng.uniform(size=(len(geoms), tries, 2))
    x = b[:, None, 0] + u[..., 0] * (b[:, None, 2] - b[:, None, 0])
    y = b[:, None, 1] + u[..., 1] * (b[:, None, 3] - b[:, None, 1])
    inside = shapely.contains_xy(geoms[:, None], x, y)
    first = inside.argmax(axis=1)
    out = np.c_[x[np.arange(len(geoms)), first], y[np.arange(len(geoms)), first]]
    miss = ~inside.any(axis=1)
    out[miss] = shapely.get_coordinates(shapely.point_on_surface(geoms[miss]))
    return out


def spread(
    candidates: np.ndarray, n: int, min_dist: float, fixed: np.ndarray | None = None
) -> np.ndarray:
    """Indices of up to ``n`` candidates, taken in order, at least ``min_dist`` m apart
    (and from the ``fixed`` points)."""
    cell = min_dist
    grid: dict[tuple[int, int], list[np.ndarray]] = {}

    def add(p: np.ndarray) -> None:
        grid.setdefault((int(p[0] // cell), int(p[1] // cell)), []).append(p)

    for p in [] if fixed is None else fixed:
        add(p)
    taken: list[int] = []
    for i, p in enumerate(candidates):
        gx, gy = int(p[0] // cell), int(p[1] // cell)
        near = [
            q for dx in (-1, 0, 1) for dy in (-1, 0, 1) for q in grid.get((gx + dx, gy + dy), [])
        ]
        if all(np.hypot(*(p - q)) >= min_dist for q in near):
            taken.append(i)
            add(p)
            if len(taken) == n:
                break
    return np.asarray(taken, int)


def sample_sites(
    rng: np.random.Generator,
    parcels: gpd.GeoDataFrame,
    weight: np.ndarray,
    n: int,
    min_dist: float,
    fixed: np.ndarray | None = None,
    oversample: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points inside parcels drawn with probability ∝ ``weight``, spread ``min_dist`` apart.

    ``oversample * n`` candidates are drawn and thinned in order. Returns the (n, 2)
    coordinates and the parcel row of each point.
    """
    rows = rng.choice(len(parcels), size=oversample * n, p=weight / weight.sum())
    xy = points_in_parcels(rng, parcels.geometry.values[rows])
    keep = spread(xy, n, min_dist, fixed)
    if len(keep) < n:
        raise RuntimeError(f"only {len(keep)} of {n} sample sites fit at {min_dist} m spacing")
    return xy[keep], rows[keep]


def soil_values(
    rng: np.random.Generator, model: SoilModel, xy: np.ndarray
) -> dict[str, np.ndarray]:
    """Lab values at ``xy``: model medians times log-normal noise; pH with normal noise."""
    sd = {"cd": 0.3, "hg": 0.35, "as": 0.2, "pb": 0.2, "cr": 0.15, "cu": 0.2, "ni": 0.2, "zn": 0.2}
    conc = model.concentrations(xy[:, 0], xy[:, 1])
    out = {el: conc[el] * np.exp(rng.normal(0, sd[el], len(xy))) for el in SOIL_COLUMNS}
    out["ph"] = np.clip(model.ph(xy[:, 0], xy[:, 1]) + rng.normal(0, 0.15, len(xy)), 4.5, 8.4)
    return out


def soil_table(
    rng: np.random.Generator,
    xy: np.ndarray,
    values: dict[str, np.ndarray],
    years: np.ndarray,
    survey: np.ndarray,
    first_id: int,
) -> pd.DataFrame:
    """The soil CSV as strings: ids, 2-decimal coordinates, rounded values, censored Hg."""
    df = pd.DataFrame(
        {
            "样品编号": [f"TR{i:04d}" for i in range(first_id, first_id + len(xy))],
            "X": _fmt(xy[:, 0], 2),
            "Y": _fmt(xy[:, 1], 2),
            "pH": _fmt(values["ph"], 2),
        }
    )
    for el, col in SOIL_COLUMNS.items():
        df[col] = _fmt(values[el], DECIMALS[el])
    low = values["hg"] < 0.01
    df.loc[low, "汞"] = np.where(rng.uniform(size=int(low.sum())) < 0.35, "ND", "<0.01")
    df["采样年份"] = years.astype(str)
    df["调查类型"] = survey
    return df[SOIL_HEADER]


def _fmt(values: np.ndarray, decimals: int) -> list[str]:
    return [f"{v:.{decimals}f}" for v in np.round(values, decimals)]


def suspicion(model: SoilModel, xy: np.ndarray) -> np.ndarray:
    """0..1: how strongly the survey designers suspected pollution (near sources, band)."""
    s = np.zeros(len(xy))
    for e in model.enterprises:
        s = np.maximum(s, np.exp(-model._plume_distance(e, xy[:, 0], xy[:, 1]) / 2))
    return np.maximum(s, np.minimum(1.0, model._irrigation_band(xy[:, 0], xy[:, 1]) / 0.5))


def soil_survey(
    rng: np.random.Generator, model: SoilModel, parcels: gpd.GeoDataFrame
) -> pd.DataFrame:
    """The 2019-2021 soil samples: 详查 spread by farmland area, 加密 around suspected sources.

    The :data:`UNDER_SAMPLED` townships get :data:`UNDER_SAMPLING_FACTOR` times the
    county's samples per km² of farmland and no 加密 points.
    """
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    area = parcels["TBDLMJ"].to_numpy()
    thin = parcels["XZQDM"].isin(UNDER_SAMPLED).to_numpy()
    ratio = UNDER_SAMPLING_FACTOR * area[thin].sum() / area[~thin].sum()
    n_thin = round(ratio * (N_SOIL_DETAILED + N_SOIL_DENSIFIED) / (1 + ratio))
    sus = suspicion(model, rep)
    xy0, _ = sample_sites(rng, parcels, area * thin, n_thin, 250.0, oversample=20)
    xy1, _ = sample_sites(
        rng, parcels, area * ~thin * (1 + 1.5 * sus), N_SOIL_DETAILED - n_thin, 180.0
    )
    xy2, _ = sample_sites(rng, parcels, area * ~thin * sus**2, N_SOIL_DENSIFIED, 110.0, fixed=xy1)
    xy = np.vstack([xy0, xy1, xy2])
    drift = rng.uniform(size=len(xy)) < 0.04  # GPS drift / sampled on a field ridge
    ang = rng.uniform(0, 2 * np.pi, int(drift.sum()))
    xy[drift] += np.c_[np.cos(ang), np.sin(ang)] * rng.uniform(10, 35, (int(drift.sum()), 1))
    town = _township_of(parcels, xy)
    years = np.where(
        np.arange(len(xy)) < N_SOIL_DETAILED, np.where(town % 2 == 0, 2019, 2020), 2021
    )
    survey = np.where(years < 2021, "详查", "加密")
    order = np.lexsort((np.round(xy[:, 0]), -np.round(xy[:, 1]), town, years))
    xy, years, survey = xy[order], years[order], survey[order]
    return soil_table(rng, xy, soil_values(rng, model, xy), years, survey, first_id=1)


def _township_of(parcels: gpd.GeoDataFrame, xy: np.ndarray) -> np.ndarray:
    """Rank of the township code of the parcel nearest to each point (ordering only)."""
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    codes = pd.factorize(parcels["XZQDM"], sort=True)[0]
    return codes[cKDTree(rep).query(xy)[1]]


# --------------------------------------------------------------------------- crops
def crop_kinds(rng: np.random.Generator, dlbm: np.ndarray) -> np.ndarray:
    """Crop grown on each parcel: rice on paddy, maize (60 %) or leafy vegetables on dry land."""
    dry = np.where(rng.uniform(size=len(dlbm)) < 0.6, "玉米", "叶菜类")
    return np.where(dlbm == "0101", "稻谷", dry)


def crop_cd_ratio(crop: np.ndarray, ph: np.ndarray, cd: np.ndarray) -> np.ndarray:
    """Median crop Cd over its GB 2762 limit predicted from soil pH and Cd."""
    a = np.array([CROPS[c]["cd_ab"][0] for c in crop])
    b = np.array([CROPS[c]["cd_ab"][1] for c in crop])
    lim = np.array([CROPS[c]["limits"]["cd"] for c in crop])
    return cd * 10 ** (a - b * ph) / lim


def crop_values(
    rng: np.random.Generator,
    model: SoilModel,
    xy: np.ndarray,
    crop: np.ndarray,
    *,
    cd_factor: np.ndarray | float = 1.0,
    ph_shift: np.ndarray | float = 0.0,
) -> dict[str, np.ndarray]:
    """Crop concentrations (mg/kg) from the soil at ``xy``: log10 BCF(Cd) = a - b·pH + noise.

    ``cd_factor`` and ``ph_shift`` model remediation (low-accumulation variety, lime ...).
    """
    soil = soil_values(rng, model, xy)
    a = np.array([CROPS[c]["cd_ab"][0] for c in crop])
    b = np.array([CROPS[c]["cd_ab"][1] for c in crop])
    log_bcf = a - b * (soil["ph"] + ph_shift) + rng.normal(0, 0.25, len(xy))
    out = {"cd": soil["cd"] * 10**log_bcf * cd_factor}
    for el, bcf in CROP_BCF_OTHER.items():
        out[el] = soil[el] * bcf * np.exp(rng.normal(0, 0.4, len(xy)))
    return out


def crop_table(
    xy: np.ndarray, crop: np.ndarray, values: dict[str, np.ndarray], year: int, first_id: int
) -> pd.DataFrame:
    """The crop CSV as strings; Hg below 0.002 mg/kg is reported as ``ND``."""
    df = pd.DataFrame(
        {
            "样品编号": [f"NP{i:04d}" for i in range(first_id, first_id + len(xy))],
            "X": _fmt(xy[:, 0], 2),
            "Y": _fmt(xy[:, 1], 2),
            "作物": crop,
        }
    )
    for el, col in CROP_COLUMNS.items():
        df[col] = _fmt(values[el], 4 if el == "hg" else 3)
    df.loc[values["hg"] < 0.002, "汞"] = "ND"
    df["采样年份"] = str(year)
    return df[CROP_HEADER]


def cluster_sites(
    rng: np.random.Generator,
    parcels: gpd.GeoDataFrame,
    candidates: np.ndarray,
    n_parcels: int,
    per_parcel: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Several crop points (``per_parcel`` inclusive range) in each of ``n_parcels`` parcels."""
    chosen = rng.choice(candidates, size=min(n_parcels, len(candidates)), replace=False)
    rows = np.repeat(chosen, rng.integers(per_parcel[0], per_parcel[1] + 1, len(chosen)))
    return points_in_parcels(rng, parcels.geometry.values[rows]), rows


def crop_survey(
    rng: np.random.Generator,
    parcels: gpd.GeoDataFrame,
    groups: list[tuple[np.ndarray, int, tuple[int, int]]],
    n_total: int,
    single_weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Crop sample sites: clusters in chosen parcels (``groups``) plus single samples."""
    xys, rows = [], []
    for cand, n_parcels, per in groups:
        xy, r = cluster_sites(rng, parcels, cand, n_parcels, per)
        xys.append(xy)
        rows.append(r)
    n_single = n_total - sum(len(r) for r in rows)
    xy, r = sample_sites(rng, parcels, single_weight, n_single, 150.0, fixed=np.vstack(xys))
    return np.vstack([*xys, xy]), np.concatenate([*rows, r])


def crop_groups_2023(parcels: gpd.GeoDataFrame, truth: pd.DataFrame) -> list:
    """Parcels that receive >= 3 crop samples in 2023 (so the crop adjustment fires)."""
    cls, ratio = truth["expected_class"].to_numpy(), truth["crop_ratio"].to_numpy()
    ok = (parcels["TBDLMJ"].to_numpy() >= 1.5 * MU_M2) & (parcels["DLBM"].to_numpy() != "0201")

    def pick(mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(ok & mask)

    return [
        (pick((cls == 3) & (ratio < 0.6)), 8, (3, 5)),  # karst class 3, crops compliant -> 3->2
        (pick((cls == 3) & (ratio > 1.2)), 4, (3, 4)),  # acid class 3, crops exceed
        (pick((cls == 2) & (ratio < 0.4)), 12, (3, 4)),  # class 2, no exceedance -> 2->1
        (pick((cls == 2) & (ratio > 0.9)), 5, (3, 4)),  # class 2 with exceedances
        (pick((cls == 1) & (ratio > 0.4)), 6, (3, 4)),  # class 1, some exceed
    ]


# --------------------------------------------------------------------------- measures
def measure_plan(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Per parcel: a random priority (who gets a measure first) and the measure types,
    drawn once so a parcel keeps its measure from one year to the next."""
    safe_p, strict_p = (0.35, 0.3, 0.25, 0.1), (0.4, 0.25, 0.2, 0.15)
    return pd.DataFrame(
        {
            "priority": rng.uniform(size=n),
            "safe": rng.choice(4, size=n, p=safe_p),
            "safe2": rng.choice(4, size=n, p=safe_p),
            "strict": rng.choice(4, size=n, p=strict_p),
            "strict2": rng.choice(4, size=n, p=strict_p),
            "second": rng.uniform(size=n),
        }
    )


def covered_parcels(
    parcels: gpd.GeoDataFrame,
    cls: np.ndarray,
    plan: pd.DataFrame,
    coverage: float,
    lagging: dict[str, float],
) -> np.ndarray:
    """Mask of class-2/3 parcels given a matching measure: in each township the parcels of
    highest priority until its share of class-2/3 area is reached; lagging townships get
    their own share, the others one share that brings the county to ``coverage``."""
    area = parcels["TBDLMJ"].to_numpy()
    town = parcels["XZQDM"].to_numpy()
    need = cls >= 2
    total = area[need].sum()
    lag_area = {t: area[need & (town == t)].sum() for t in lagging}
    rest = (coverage * total - sum(lagging[t] * a for t, a in lag_area.items())) / (
        total - sum(lag_area.values())
    )
    covered = np.zeros(len(area), bool)
    for t in np.unique(town):
        idx = np.flatnonzero(need & (town == t))
        idx = idx[np.argsort(plan["priority"].to_numpy()[idx], kind="stable")]
        share = lagging.get(t, rest)
        covered[idx[np.cumsum(area[idx]) <= share * area[idx].sum() + 1e-6]] = True
    return covered


def measure_ledger(
    parcels: gpd.GeoDataFrame,
    cls: np.ndarray,
    plan: pd.DataFrame,
    *,
    coverage: float,
    lagging: dict[str, float],
    year: int,
    errors: np.random.Generator | None,
    keep: np.ndarray | None = None,
) -> pd.DataFrame:
    """The measures ledger for ``year``: matching measures on covered class-2/3 parcels,
    some parcels with two; with ``errors`` also phantom parcel ids and one mismatch. The
    parcels of ``keep`` (last year's measures) that are still class 2/3 keep a measure,
    of the type their class now needs."""
    covered = covered_parcels(parcels, cls, plan, coverage, lagging)
    if keep is not None:
        covered |= keep & (cls >= 2)
    c3_open = np.flatnonzero((cls == 3) & ~covered)
    bsm = parcels["BSM"].to_numpy()
    col = {k: plan[k].to_numpy() for k in plan.columns}
    rows = []
    for i in np.flatnonzero(covered):
        kinds, cat, first, second = (
            (SAFE_USE, "安全利用", "safe", "safe2")
            if cls[i] == 2
            else (STRICT_CONTROL, "严格管控", "strict", "strict2")
        )
        types = [kinds[col[first][i]]]
        if col["second"][i] < 0.08 and col[second][i] != col[first][i]:
            types.append(kinds[col[second][i]])
        rows += [(bsm[i], t, cat, year) for t in types]
    if errors is not None:
        if len(c3_open):  # a safe-use measure on a strict-control parcel: does not count
            rows.append((bsm[errors.choice(c3_open)], "施用石灰", "安全利用", year))
        for k, ghost in enumerate(_phantom_ids(errors, bsm)):
            rows.append((ghost, SAFE_USE[k % 2], "安全利用", year))
    ledger = pd.DataFrame(rows, columns=MEASURE_HEADER)
    ledger["年度"] = ledger["年度"].astype(str)
    return ledger.sort_values(["图斑编号", "措施类别", "措施类型"], kind="stable").reset_index(
        drop=True
    )


def _phantom_ids(rng: np.random.Generator, bsm: np.ndarray) -> list[str]:
    """Three parcel ids that do not exist: two past the last number, one in a township
    code the county does not have (data-entry errors the tool must report)."""
    n = len(bsm)
    ghosts = [
        f"{bsm[-1][:9]}{n + int(rng.integers(50, 900)):09d}",
        f"{bsm[n // 3][:9]}{n + 1000:09d}",
        f"{COUNTY['XZQDM']}108{int(rng.integers(1, n)):09d}",
    ]
    if set(ghosts) & set(bsm):
        raise RuntimeError(f"phantom parcel ids {ghosts} collide with real ones")
    return ghosts


CONTROL_HEADER = ["图斑编号", "环节", "日期", "结果", "责任人", "种植作物", "去向", "批次号", "备注"]
#: share of strict-control parcels per closed-loop fate (the rest: closed), in this order
CONTROL_FATES = (
    ("no_rows", 0.05),  # measure claimed, nothing in the closed-loop ledger
    ("designated_only", 0.06),  # notified and designated, never inspected
    ("no_notice", 0.03),  # designated and inspected, the notification never recorded
    ("failed", 0.04),  # inspection found rice planted, not corrected
    ("corrected", 0.04),  # rice found, corrected two weeks later, loop then closed
    ("inspected_only", 0.10),  # harvest never checked
    ("harvest_only", 0.06),  # not yet accepted
)
_PLANTED = {"种植结构调整": "玉米", "特定农产品禁止生产区": "玉米", "退耕还林还草": "苗木", "休耕": "无（休耕）"}
_DESTINATION = {"玉米": "饲料加工", "苗木": "无粮食收获", "无（休耕）": "无收获"}


def _day(rng: np.random.Generator, year: int, start: tuple[int, int], days: int) -> pd.Timestamp:
    return pd.Timestamp(year, *start, 1) + pd.Timedelta(days=int(rng.integers(0, days)))


def control_ledger(
    rng: np.random.Generator,
    parcels: gpd.GeoDataFrame,
    cls: np.ndarray,
    measures: pd.DataFrame,
    year: int,
    carried: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The strict-control closed-loop ledger (严格管控闭环台账) of ``year``: one row per
    parcel, stage and date for the parcels with a strict-control measure, with the gaps
    of :data:`CONTROL_FATES`, a few sales into the county depot (lot ids), and rows for
    a few class-2 parcels designated from an older survey. With ``carried`` (the
    previous year's fates), parcels closed then start at the inspection (their
    designation stands). Returns the ledger and each parcel's fate."""
    bsm = parcels["BSM"].to_numpy()
    town = dict(zip(bsm, parcels["XZQMC"], strict=True))
    strict = measures.loc[measures["措施类别"] == "严格管控"].drop_duplicates("图斑编号")
    kinds = dict(zip(strict["图斑编号"], strict["措施类型"], strict=True))
    names = np.array([f for f, _ in CONTROL_FATES] + ["closed"])
    cum = np.cumsum([w for _, w in CONTROL_FATES])
    rows, fates = [], {}
    for pid in sorted(kinds):
        fate = str(names[np.searchsorted(cum, rng.random(), side="right")])
        fates[pid] = fate
        if fate == "no_rows":
            continue
        station = f"{town[pid]}农业服务中心"
        planted = _PLANTED.get(kinds[pid], "玉米")
        notified = _day(rng, year, (2,), 40)
        stages = []
        if not (carried and carried.get(pid) in ("closed", "corrected")):
            if fate != "no_notice":
                stages.append(("告知", notified, "已告知", station, "", "", ""))
            stages.append(("划定", notified + pd.Timedelta(days=int(rng.integers(0, 15))),
                           "通过", "县农业农村局", "", "", ""))
        if fate == "designated_only":
            rows += [(pid, *r) for r in stages]
            continue
        inspected = _day(rng, year, (6,), 50)
        if fate in ("failed", "corrected"):
            stages.append(("种植巡查", inspected, "不合格", station, "稻谷", "", ""))
            rows += [(pid, *r) for r in stages]
            if fate == "failed":
                continue
            stages = [("种植巡查", inspected + pd.Timedelta(days=14), "已整改", station, planted,
                       "", "")]
        else:
            stages.append(("种植巡查", inspected, "通过", station, planted, "", ""))
        if fate not in ("inspected_only",):
            depot = planted == "玉米" and rng.random() < 0.04
            dest = "收储（县粮食储备库）" if depot else _DESTINATION[planted]
            lot = f"LS{year}-{900 + len(fates):03d}" if depot else ""
            stages.append(("收获核查", _day(rng, year, (9,), 50), "通过", station, planted, dest,
                           lot))
            if fate != "harvest_only":
                if kinds[pid] in ("休耕", "种植结构调整", "退耕还林还草"):
                    stages.append(("补偿", _day(rng, year, (11,), 25), "已补偿", "县财政局",
                                   "", "", ""))
                stages.append(("验收", _day(rng, year, (12,), 20), "通过", "县农业农村局",
                               "", "", ""))
        rows += [(pid, *r) for r in stages]
    # a few class-2 parcels still designated from the 2019 detailed survey
    old = [b for b in bsm[cls == 2] if b not in kinds]
    for pid in sorted(rng.choice(old, size=4, replace=False)):
        rows.append((pid, "告知", _day(rng, year, (2,), 40), "已告知",
                     f"{town[pid]}农业服务中心", "", "", ""))
    ledger = pd.DataFrame(
        [(*r[:2], f"{r[2]:%Y-%m-%d}", *r[3:], "") for r in rows], columns=CONTROL_HEADER
    )
    return ledger, fates


def grain_lots(
    rng: np.random.Generator, parcels: gpd.GeoDataFrame, cls: np.ndarray, ledger: pd.DataFrame
) -> pd.DataFrame:
    """Grain procurement lots of 2023 (粮食收购批次): the depot lots named in the
    closed-loop ledger, lots from villages with class-3 paddy, and lots from clean
    villages; a few name their source parcels."""
    p = pd.DataFrame({"BSM": parcels["BSM"], "town": parcels["XZQMC"],
                      "village": parcels["ZLDWMC"], "cls": cls, "dlbm": parcels["DLBM"]})
    paddy3 = p.loc[(p["cls"] == 3) & (p["dlbm"] == "0101")]
    hot = sorted(set(zip(paddy3["town"], paddy3["village"], strict=True)))
    clean = sorted(set(zip(p["town"], p["village"], strict=True)) - set(hot))
    rows = []
    depot = ledger.loc[ledger["批次号"] != ""]
    for lot, pid in zip(depot["批次号"], depot["图斑编号"], strict=True):
        t, v = p.loc[p["BSM"] == pid, ["town", "village"]].iloc[0]
        rows.append((lot, "玉米", t, v, "", "县粮食储备库"))
    for k in range(30):
        pick = hot if k < 12 and hot else clean
        t, v = pick[int(rng.integers(0, len(pick)))]
        crop = "稻谷" if rng.random() < 0.8 else "玉米"
        src = ""
        if k % 5 == 0:  # a few lots name their source parcels
            in_v = p.loc[(p["town"] == t) & (p["village"] == v), "BSM"].to_numpy()
            src = "；".join(sorted(rng.choice(in_v, size=min(2, len(in_v)), replace=False)))
        buyer = "县粮食储备库" if rng.random() < 0.5 else f"{t}粮食收购点"
        rows.append((f"LS2023-{k + 1:03d}", crop, t, v, src, buyer))
    out = pd.DataFrame(rows, columns=["批次号", "作物", "乡镇", "来源村", "来源图斑", "收购单位"])
    out.insert(2, "数量（吨）", [f"{x:.1f}" for x in rng.uniform(5, 60, len(out))])
    out["收购日期"] = [f"{_day(rng, 2023, (9,), 80):%Y-%m-%d}" for _ in range(len(out))]
    return out


def measured_rate(parcels: gpd.GeoDataFrame, cls: np.ndarray, ledger: pd.DataFrame) -> float:
    """(class-2 area with a safe-use measure + class-3 area with a strict-control measure)
    / (class-2 + class-3 area), each parcel counted once (areas = TBDLMJ)."""
    area = parcels["TBDLMJ"].to_numpy()
    safe = parcels["BSM"].isin(ledger.loc[ledger["措施类别"] == "安全利用", "图斑编号"]).to_numpy()
    strict = (
        parcels["BSM"].isin(ledger.loc[ledger["措施类别"] == "严格管控", "图斑编号"]).to_numpy()
    )
    ok = ((cls == 2) & safe) | ((cls == 3) & strict)
    return float(area[ok].sum() / area[cls >= 2].sum())


# --------------------------------------------------------------------------- sources
def sources_geojson(enterprises: list[Enterprise]) -> str:
    """RFC 7946 FeatureCollection (WGS84 lon/lat, 7 decimals) of the enterprises."""
    tr = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    feats = []
    for k, e in enumerate(enterprises, start=1):
        lon, lat = tr.transform(*e.xy)
        feats.append(
            {
                "type": "Feature",
                "properties": {
                    "企业编号": f"E{k:02d}",
                    "企业名称": e.name,
                    "行业": e.industry,
                    "特征污染物": e.metals,
                },
                "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
            }
        )
    fc = {"type": "FeatureCollection", "name": "pollution_sources", "features": feats}
    return json.dumps(fc, ensure_ascii=False, indent=1) + "\n"


# --------------------------------------------------------------------------- 2024 re-sampling
MEASURE_EFFECT = {  # crop Cd factor and soil pH shift of a safe-use measure (both years)
    "低积累品种替代": (0.25, 0.0),
    "水分调控": (0.35, 0.0),
    "施用石灰": (1.0, 1.0),
    "叶面阻控": (0.5, 0.0),
}


def resample_soil(
    rng: np.random.Generator,
    model: SoilModel,
    parcels: gpd.GeoDataFrame,
    cls: np.ndarray,
    existing: np.ndarray,
) -> pd.DataFrame:
    """2024 加密 soil samples: half in class-2/3 land, half in the under-sampled townships."""
    area = parcels["TBDLMJ"].to_numpy()
    thin = parcels["XZQDM"].isin(UNDER_SAMPLED).to_numpy()
    n1 = N_SOIL_2024 // 2
    xy1, _ = sample_sites(rng, parcels, area * (cls >= 2), n1, 100.0, fixed=existing, oversample=20)
    xy2, _ = sample_sites(
        rng,
        parcels,
        area * thin,
        N_SOIL_2024 - n1,
        200.0,
        fixed=np.vstack([existing, xy1]),
        oversample=20,
    )
    xy = np.vstack([xy1, xy2])
    n = len(existing)
    return soil_table(
        rng,
        xy,
        soil_values(rng, model, xy),
        np.full(len(xy), 2024),
        np.full(len(xy), "加密"),
        first_id=n + 1,
    )


def crop_groups_2024(parcels: gpd.GeoDataFrame, truth: pd.DataFrame, safe_2024: np.ndarray):
    """Parcels with >= 3 crop samples in 2024: remediated class 2, karst class 3, acid class 1."""
    cls, ratio = truth["expected_class"].to_numpy(), truth["crop_ratio"].to_numpy()
    ok = (parcels["TBDLMJ"].to_numpy() >= 1.5 * MU_M2) & (parcels["DLBM"].to_numpy() != "0201")
    return [
        (np.flatnonzero(ok & (cls == 2) & safe_2024 & (ratio < 1.5)), 14, (3, 4)),
        (np.flatnonzero(ok & (cls == 3) & (ratio < 0.6)), 8, (3, 4)),
        (np.flatnonzero(ok & (cls == 1) & (ratio > 0.4)), 4, (3, 3)),
    ]


def crop_effects(
    parcels: gpd.GeoDataFrame, rows: np.ndarray, ledger: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Crop Cd factor and pH shift at each sampled parcel from its first safe-use measure."""
    safe = ledger[ledger["措施类别"] == "安全利用"].drop_duplicates("图斑编号")
    kind = parcels["BSM"].iloc[rows].map(dict(zip(safe["图斑编号"], safe["措施类型"])))
    eff = np.array(
        [MEASURE_EFFECT.get(k, (1.0, 0.0)) if isinstance(k, str) else (1.0, 0.0) for k in kind]
    )
    return eff[:, 0], eff[:, 1]


# --------------------------------------------------------------------------- hashes, writing
def content_hash(path: Path) -> str:
    """SHA-256 of a file's content: bytes for text files; for a GeoPackage, per layer
    (sorted by name) the CRS, the attribute table sorted by its first column and the
    WKB of the geometries with coordinates rounded to 0.01 m (timestamps ignored)."""
    h = hashlib.sha256()
    if path.suffix != ".gpkg":
        h.update(path.read_bytes())
        return h.hexdigest()
    for name in sorted(pyogrio.list_layers(path)[:, 0]):
        df = pyogrio.read_dataframe(path, layer=name)
        df = df.sort_values(df.columns[0], kind="stable").reset_index(drop=True)
        h.update(f"{name}\n{df.crs.to_epsg()}\n".encode())
        h.update(df.drop(columns="geometry").to_csv(index=False, lineterminator="\n").encode())
        geoms = shapely.transform(df.geometry.values, lambda c: np.round(c, 2))
        for wkb in shapely.to_wkb(geoms, byte_order=1):
            h.update(wkb)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions that the geometry (and so the content hashes) depend on."""
    return {
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "pyproj": pyproj.__version__,
        "proj": pyproj.proj_version_str,
        "gdal": pyogrio.__gdal_version_string__,
    }


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """UTF-8 with BOM, ``\\n`` line ends, all values already formatted as strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: Path) -> None:
    """Write ``layers`` into a fresh GeoPackage at ``path``."""
    path.unlink(missing_ok=True)
    for name, gdf in layers.items():
        gdf.to_file(path, layer=name, driver="GPKG", engine="pyogrio")


def classes_from_tool(
    parcels: gpd.GeoDataFrame, soil: pd.DataFrame, crops: pd.DataFrame | None = None
) -> np.ndarray:
    """Final classes (0 = unclassified) that ``farmland classify`` gives these tables (no
    crop adjustment without ``crops``), read back through the tool's own readers from a
    temporary folder. With the county-practice point rule (``[points] rule = "override"``):
    the demo's ledgers were laid on those classes before the shipped profile weighed a
    parcel's own samples against its neighbourhood, and the committed data stay as they
    are (docs/decisions.md "The shipped point rule"). Likewise with a kriging fallback
    counted as certain (``[interpolation] fallback_variance = "none"``), the rule the
    ledgers were laid on (docs/decisions.md "Fallback variance"), and with the structure
    test of the time, at one distance (``structure_test = "one"``; docs/decisions.md "The
    structure test looks at several distances"), isotropic variograms (``anisotropy =
    "none"``; docs/decisions.md "Anisotropy") and variograms of the values, not of
    linear-trend residuals (``trend = "none"``; docs/decisions.md "A linear trend")."""
    import tempfile

    from farmland.classify.parcels import classify_parcels
    from farmland.io import readers as fio
    from farmland.rules import load_rules

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_gpkg({"DLTB": parcels}, tmp / "parcels.gpkg")
        write_csv(soil, tmp / "soil.csv")
        p = fio.read_parcels(tmp / "parcels.gpkg", layer="DLTB")
        s = fio.read_soil_samples(tmp / "soil.csv", crs=CRS, target_crs=p.crs)
        c = None
        if crops is not None:
            write_csv(crops, tmp / "crops.csv")
            c = fio.read_crop_samples(tmp / "crops.csv", crs=CRS, target_crs=p.crs)
        (tmp / "rules.toml").write_text('[points]\nrule = "override"\n\n[interpolation]\n'
                                        'fallback_variance = "none"\nstructure_test = "one"\n'
                                        'anisotropy = "none"\ntrend = "none"\n',
                                        encoding="utf-8")
        out, _, _ = classify_parcels(p, s, crops=c, rules=load_rules(tmp / "rules.toml"))
    by_id = out.set_index("parcel_id")["final_class"].fillna(0).astype(int)
    return by_id.reindex(parcels["BSM"].astype(str)).fillna(0).to_numpy(dtype=int)


# --------------------------------------------------------------------------- pipeline
STREAMS = (
    "county",
    "townships",
    "karst",
    "rivers",
    "zone",
    "parcels",
    "enterprises",
    "soil_model",
    "soil",
    "crop_kinds",
    "crops_2023",
    "measures",
    "ledger_errors",
    "soil_2024",
    "crops_2024",
    "control_2023",
    "lots_2023",
    "control_2024",
)


def generate(seed: int = SEED) -> dict:
    """Build every demo table in memory (nothing is written). Returns a dict of frames."""
    rng = dict(zip(STREAMS, np.random.default_rng(seed).spawn(len(STREAMS))))
    centre = county_centre()
    county = county_boundary(rng["county"], centre)
    townships = township_frame(rng["townships"], county, centre)
    county = shapely.coverage_union_all(
        townships.geometry.values
    )  # the exact outline of the tiling
    karst = karst_field(rng["karst"], county, centre)
    rivers = make_rivers(rng["rivers"], centre)
    zone = farmland_zone(rng["zone"], county, rivers, karst)
    parcels = build_parcels(rng["parcels"], zone, townships, rivers, centre)
    log.info("%d parcels, %.1f km² farmland", len(parcels), parcels.area.sum() / 1e6)
    enterprises = place_enterprises(rng["enterprises"], rivers, county, karst)
    model = soil_model(rng["soil_model"], karst, enterprises, rivers, centre)
    truth = expected_classes(model, parcels)
    truth["crop"] = crop_kinds(rng["crop_kinds"], parcels["DLBM"].to_numpy())
    truth["crop_ratio"] = crop_cd_ratio(
        truth["crop"].to_numpy(), truth["ph"].to_numpy(), truth["cd"].to_numpy()
    )
    cls = truth["expected_class"].to_numpy()
    soil = soil_survey(rng["soil"], model, parcels)
    soil_xy = soil[["X", "Y"]].astype(float).to_numpy()
    plan = measure_plan(rng["measures"], len(parcels))
    # each year's ledger follows the classes the tool gives the soil samples known at the
    # start of that year (as a county's ledger follows its official classification): 2023
    # the 2019-2021 survey alone, before the 2023 crop monitoring; the crops then respond
    # to the measures, and the crop adjustment moves a few parcels the ledger did not expect
    tool_cls = classes_from_tool(parcels, soil)
    ledger_2023 = measure_ledger(
        parcels,
        tool_cls,
        plan,
        coverage=MEASURE_COVERAGE,
        lagging=LAGGING_TOWNSHIPS,
        year=2023,
        errors=rng["ledger_errors"],
    )
    crops_2023 = _crops(
        rng["crops_2023"],
        model,
        parcels,
        truth,
        crop_groups_2023(parcels, truth),
        N_CROP_2023,
        year=2023,
        first_id=1,
        ledger=ledger_2023,
    )
    soil_2024 = resample_soil(rng["soil_2024"], model, parcels, cls, soil_xy)
    # 2024: the classes of all soil samples and the 2023 crops; every 2023 measure on land
    # still class 2/3 is kept (of the type its class now needs), coverage extended
    tool_cls_2024 = classes_from_tool(
        parcels, pd.concat([soil, soil_2024], ignore_index=True), crops_2023
    )
    ledger_2024 = measure_ledger(
        parcels,
        tool_cls_2024,
        plan,
        coverage=MEASURE_COVERAGE_2024,
        lagging={t: min(1.0, c + 0.15) for t, c in LAGGING_TOWNSHIPS.items()},
        year=2024,
        errors=None,
        keep=parcels["BSM"].isin(ledger_2023["图斑编号"]).to_numpy(),
    )
    safe_2024 = (
        parcels["BSM"]
        .isin(ledger_2024.loc[ledger_2024["措施类别"] == "安全利用", "图斑编号"])
        .to_numpy()
    )
    crops_2024 = _crops(
        rng["crops_2024"],
        model,
        parcels,
        truth,
        crop_groups_2024(parcels, truth, safe_2024),
        N_CROP_2024,
        year=2024,
        first_id=N_CROP_2023 + 1,
        ledger=ledger_2024,
    )
    control_2023, fates = control_ledger(rng["control_2023"], parcels, tool_cls, ledger_2023, 2023)
    lots_2023 = grain_lots(rng["lots_2023"], parcels, tool_cls, control_2023)
    control_2024, _ = control_ledger(
        rng["control_2024"], parcels, tool_cls_2024, ledger_2024, 2024, carried=fates
    )
    bundle = {
        "control_2023": control_2023,
        "lots_2023": lots_2023,
        "control_2024": control_2024,
        "county": county,
        "townships": townships,
        "rivers": rivers,
        "parcels": parcels,
        "model": model,
        "truth": truth,
        "enterprises": enterprises,
        "soil": soil,
        "crops_2023": crops_2023,
        "measures_2023": ledger_2023,
        "soil_2024": soil_2024,
        "crops_2024": crops_2024,
        "measures_2024": ledger_2024,
        "tool_classes": tool_cls,
        "tool_classes_2024": tool_cls_2024,
    }
    # rivers and canals, outfalls, geology, wind rose and the truth of the Cd causes: drawn
    # from the model objects above, without a random number (data/demo_sources.py)
    bundle["sources"] = demo_sources.source_frames(bundle, SCREENING["cd"][1], PH_EDGES)
    return bundle


def _crops(
    rng: np.random.Generator,
    model: SoilModel,
    parcels: gpd.GeoDataFrame,
    truth: pd.DataFrame,
    groups: list,
    n: int,
    *,
    year: int,
    first_id: int,
    ledger: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Crop samples of one year: clusters (``groups``) plus singles on class-2/3 and acid land."""
    cls, ratio = truth["expected_class"].to_numpy(), truth["crop_ratio"].to_numpy()
    field_crop = parcels["DLBM"].to_numpy() != "0201"
    # monitoring favours treated class-2 land (the compliance rates of the rate) and risky soil
    risk = 1 + 2 * (cls >= 2) + 4 * (cls == 2) + 3 * (ratio > 0.3)
    weight = parcels["TBDLMJ"].to_numpy() * field_crop * risk
    xy, rows = crop_survey(rng, parcels, groups, n, weight)
    kind = truth["crop"].to_numpy()[rows]
    factor, shift = (1.0, 0.0) if ledger is None else crop_effects(parcels, rows, ledger)
    values = crop_values(rng, model, xy, kind, cd_factor=factor, ph_shift=shift)
    order = np.lexsort((np.round(xy[:, 0]), -np.round(xy[:, 1]), rows))
    return crop_table(
        xy[order], kind[order], {k: v[order] for k, v in values.items()}, year, first_id
    )


# --------------------------------------------------------------------------- output
def frames(bundle: dict) -> dict[str, object]:
    """Relative path -> table (GeoDataFrame layers for GeoPackages, DataFrame, or text)."""
    county = gpd.GeoDataFrame([COUNTY], geometry=[bundle["county"]], crs=CRS)
    rivers = gpd.GeoDataFrame(
        {"名称": [r.name for r in bundle["rivers"]]},
        geometry=shapely.set_precision(
            shapely.intersection([r.line for r in bundle["rivers"]], bundle["county"]), 0.01
        ),
        crs=CRS,
    )
    truth = bundle["truth"][["BSM", "expected_class", "ph", "cd"]].copy()
    truth["ph"], truth["cd"] = _fmt(truth["ph"].to_numpy(), 2), _fmt(truth["cd"].to_numpy(), 3)
    return {  # the files of the source-apportionment issue (17) come last
        "parcels.gpkg": {"DLTB": bundle["parcels"]},
        "townships.gpkg": {"townships": bundle["townships"], "county": county, "rivers": rivers},
        "soil_samples.csv": bundle["soil"],
        "crop_samples.csv": bundle["crops_2023"],
        "measures_2023.csv": bundle["measures_2023"],
        "pollution_sources.geojson": sources_geojson(bundle["enterprises"]),
        "resample_2024/soil_samples.csv": bundle["soil_2024"],
        "resample_2024/crop_samples.csv": bundle["crops_2024"],
        "resample_2024/measures_2024.csv": bundle["measures_2024"],
        "strict_control_2023.csv": bundle["control_2023"],
        "grain_lots_2023.csv": bundle["lots_2023"],
        "resample_2024/strict_control_2024.csv": bundle["control_2024"],
        "truth/expected_classes.csv": truth.astype(str),
        **bundle["sources"],
    }


def write_demo(bundle: dict, out: Path, seed: int) -> dict:
    """Write every file of the demo under ``out`` and ``CHECKSUMS.json``; return the checksums."""
    files = {}
    for rel, table in frames(bundle).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(table, dict):
            write_gpkg(table, path)
        elif isinstance(table, str):
            path.write_text(table, encoding="utf-8")
        else:
            write_csv(table, path)
        files[rel] = content_hash(path)
    checksums = {
        "generator": "data/make_demo.py",
        "seed": seed,
        "crs": CRS,
        "method": "sha256 of the bytes for CSV/GeoJSON; for GeoPackages of each layer (by name): "
        "EPSG code, attribute table sorted by its first column as CSV, WKB (little endian) "
        "of the geometries with coordinates rounded to 0.01 m",
        "versions": library_versions(),
        "files": files,
    }
    (out / "CHECKSUMS.json").write_text(
        json.dumps(checksums, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return checksums


# --------------------------------------------------------------------------- README blocks
def township_rows(bundle: dict) -> pd.DataFrame:
    """Per township: area, farmland, parcels, 2019-2021 soil samples and their density."""
    towns, parcels, soil = bundle["townships"], bundle["parcels"], bundle["soil"]
    pts = shapely.points(soil[["X", "Y"]].astype(float).to_numpy())
    t_idx, _ = shapely.STRtree(pts).query(towns.geometry.values, predicate="contains")
    n_soil = np.bincount(t_idx, minlength=len(towns))
    farm = (
        parcels.groupby("XZQDM")["TBDLMJ"].sum().reindex(towns["XZQDM"]).fillna(0).to_numpy() / 1e6
    )
    return pd.DataFrame(
        {
            "code": towns["XZQDM"],
            "name": towns["XZQMC"],
            "pinyin": [t[2] for t in TOWNSHIPS],
            "area_km2": towns.area.to_numpy() / 1e6,
            "farmland_km2": farm,
            "parcels": parcels["XZQDM"]
            .value_counts()
            .reindex(towns["XZQDM"])
            .fillna(0)
            .astype(int)
            .to_numpy(),
            "soil_samples": n_soil,
            "per_km2_farmland": n_soil / np.maximum(farm, 1e-9),
            "under_sampled": towns["XZQDM"].isin(UNDER_SAMPLED).to_numpy(),
        }
    )


def summary(bundle: dict) -> dict:
    """Headline numbers of the generated county (for the README and the report)."""
    p, cls = bundle["parcels"], bundle["truth"]["expected_class"].to_numpy()
    a = p["TBDLMJ"].to_numpy()
    return {
        "parcels": len(p),
        "farmland_km2": round(float(a.sum()) / 1e6, 2),
        "median_parcel_mu": round(float(np.median(p.area)) / MU_M2, 2),
        "landuse_area_share": {
            k: round(float(a[p["DLBM"] == k].sum() / a.sum()), 3) for k in LANDUSE
        },
        "expected_class_area_share": {
            k: round(float(a[cls == k].sum() / a.sum()), 3) for k in (1, 2, 3)
        },
        "soil_samples": len(bundle["soil"]),
        "crop_samples": len(bundle["crops_2023"]),
        "measures_2023_rows": len(bundle["measures_2023"]),
        "rate_2023": round(measured_rate(p, bundle["tool_classes"], bundle["measures_2023"]), 4),
        "rate_2024": round(
            measured_rate(p, bundle["tool_classes_2024"], bundle["measures_2024"]), 4
        ),
        "soil_samples_2024": len(bundle["soil_2024"]),
        "crop_samples_2024": len(bundle["crops_2024"]),
    }


def readme_blocks(bundle: dict, checksums: dict) -> dict[str, str]:
    """Markdown for the generated blocks of ``data/README.md``."""
    t = township_rows(bundle)
    lines = [
        (
            "| code (XZQDM) | name (XZQMC) | pinyin | area km² | farmland km² | parcels "
            "| soil samples 2019–2021 | per km² farmland |"
        ),
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in t.itertuples():
        mark = " **(under-sampled)**" if r.under_sampled else ""
        lines.append(
            f"| {r.code} | {r.name} | {r.pinyin}{mark} | {r.area_km2:.1f} | {r.farmland_km2:.2f} "
            f"| {r.parcels} | {r.soil_samples} | {r.per_km2_farmland:.1f} |"
        )
    s = summary(bundle)
    info = [
        (
            f"- parcels: {s['parcels']}, farmland {s['farmland_km2']} km² (TBDLMJ), median parcel "
            f"{s['median_parcel_mu']} 亩"
        ),
        "- land use (share of TBDLMJ): "
        + ", ".join(f"{k} {LANDUSE[k]} {v:.1%}" for k, v in s["landuse_area_share"].items()),
        (
            "- expected classes from the noise-free model at parcel representative points "
            "(share of TBDLMJ): "
            + ", ".join(f"class {k} {v:.1%}" for k, v in s["expected_class_area_share"].items())
        ),
        (
            f"- soil samples {s['soil_samples']} (+{s['soil_samples_2024']} in 2024), crop samples "
            f"{s['crop_samples']} (+{s['crop_samples_2024']} in 2024)"
        ),
        (
            "- share of class-2/3 area under a matching measure, on the classes each ledger "
            "follows (`farmland classify` of the samples known at the start of the year): "
            f"2023 {s['rate_2023']:.1%} "
            f"(MEASURE_COVERAGE = {MEASURE_COVERAGE}), 2024 {s['rate_2024']:.1%} "
            f"(MEASURE_COVERAGE_2024 = {MEASURE_COVERAGE_2024})"
        ),
    ]
    sums = ["| file | content SHA-256 |", "|---|---|"]
    sums += [f"| `{k}` | `{v}` |" for k, v in checksums["files"].items()]
    return {
        "townships": "\n".join(lines),
        "summary": "\n".join(info),
        "sources": demo_sources.readme_table(bundle["sources"], bundle["enterprises"]),
        "checksums": f"Seed {checksums['seed']}.\n\n" + "\n".join(sums),
    }


def update_readme(path: Path, blocks: dict[str, str]) -> None:
    """Replace the text between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``."""
    text = path.read_text(encoding="utf-8")
    for name, body in blocks.items():
        begin, end = f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"
        if begin not in text or end not in text:
            log.warning("%s has no %s block; left unchanged", path, name)
            continue
        head, rest = text.split(begin, 1)
        text = head + begin + "\n" + body + "\n" + end + rest.split(end, 1)[1]
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line: generate, write, refresh the README blocks."""
    ap = argparse.ArgumentParser(description="Generate the synthetic demo county (no network).")
    ap.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    ap.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default data/demo)"
    )
    ap.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="README whose generated blocks to refresh (default data/README.md when --out is the default)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyogrio").setLevel(logging.WARNING)
    start = time.perf_counter()
    bundle = generate(args.seed)
    checksums = write_demo(bundle, args.out, args.seed)
    readme = args.readme or (DEFAULT_README if args.out.resolve() == DEFAULT_OUT else None)
    if readme is not None and readme.exists():
        update_readme(readme, readme_blocks(bundle, checksums))
    log.info("%s", json.dumps(summary(bundle), ensure_ascii=False))
    log.info("wrote %s in %.1f s", args.out, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
