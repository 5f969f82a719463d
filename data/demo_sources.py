"""Source-apportionment layers of the SYNTHETIC demo county (issue 17), and their truth.

Called by ``data/make_demo.py``; nothing here draws a random number, so the other demo
files stay exactly as they were. Everything is derived from the model objects the
generator already built (rivers, enterprises, the karst field, the soil model):

* ``rivers.gpkg``: layer ``rivers`` (the four rivers and two irrigation canals, LineStrings
  digitised upstream -> downstream, clipped to the county) and layer ``outfalls`` (one
  point per enterprise on the river it discharges into);
* ``geology.gpkg``: layer ``geology``, carbonate (karst) vs clastic rock polygons from the
  karst field (karst weight >= 0.5), tiling the county;
* ``wind_rose.csv``: an annual 16-sector wind rose (literal table, see :data:`WIND_ROSE`);
* ``truth/source_causes.csv`` and ``truth/source_areas.gpkg``: one row and one area per
  planted Cd cause (enterprise plumes ``E01``-``E06``, the irrigation band ``IRR``, the
  geogenic karst Cd ``KARST``), computed from the model on a grid, not from samples.

All geometry is EPSG:4545 (metres), coordinates rounded to 0.01 m.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
from affine import Affine
from scipy.ndimage import gaussian_filter1d
from scipy.spatial import cKDTree

CRS = "EPSG:4545"
#: river id of each model river, in the generator's order (main river first)
RIVER_IDS = ("R01", "R02", "R03", "R04")
#: the two irrigation canals fed at one weir just below the smelter's outfall, one on each
#: bank of the main river (side +1 = left bank looking downstream)
CANALS = (("C01", "清江左干渠", +1), ("C02", "清江右干渠", -1))
CANAL = {
    "intake_below_outfall_m": 300.0,  # the weir, downstream of the smelter's outfall
    "length_m": 8_700.0,  # to the end of the irrigation band (IRRIGATION_BAND reach 9 km)
    "offset_m": 220.0,  # from the river, inside the band's 380 m half-width
    "ramp_m": 500.0,  # distance over which the canal leaves the river
    "smooth_m": 250.0,  # the canal follows a smoothed river (sd of a Gaussian filter)
}
GRID_M = 100.0  # cell size of the truth areas and the geology raster
AREA_CD_MG_KG = 0.1  # an area is where its cause adds at least this much Cd
KARST_WEIGHT_MIN = 0.5
DOMINANT_SHARE = 0.8  # a cause's point: it adds at least this share of the added Cd
NO_SOURCE_MG_KG = 0.01
KARST_OFF_RIVER_M = 1_000.0  # the KARST point: no enterprise or band adds more than this
GEOLOGY_SIMPLIFY_M = 60.0

#: annual wind rose of non-calm hours: direction the wind blows FROM, frequency %, mean
#: speed m/s. Invented (no station data) in the pattern of northern Guangxi (Hechi):
#: the winter monsoon from N-NE, the summer monsoon from S-SSE, little from the west.
WIND_ROSE = (
    ("N", 9.5, 2.1),
    ("NNE", 12.0, 2.4),
    ("NE", 10.5, 2.2),
    ("ENE", 6.0, 1.8),
    ("E", 4.5, 1.6),
    ("ESE", 4.0, 1.5),
    ("SE", 5.5, 1.7),
    ("SSE", 8.0, 2.0),
    ("S", 9.0, 2.1),
    ("SSW", 6.0, 1.8),
    ("SW", 4.0, 1.5),
    ("WSW", 2.5, 1.3),
    ("W", 2.5, 1.2),
    ("WNW", 3.0, 1.3),
    ("NW", 5.0, 1.6),
    ("NNW", 8.0, 1.9),
)
INDUSTRY_EN = {
    "有色金属冶炼": "non-ferrous smelter",
    "电镀": "electroplating works",
    "化工": "chemical plant",
    "有色金属矿采选": "lead-zinc ore dressing plant",
    "铅蓄电池制造": "lead-acid battery plant",
}


# --------------------------------------------------------------------------- lines
def _round(geom: Any) -> Any:
    return shapely.transform(geom, lambda c: np.round(c, 2))


def clip_in_flow_direction(xy: np.ndarray, county: shapely.Geometry) -> shapely.Geometry:
    """The part(s) of the polyline ``xy`` inside ``county``, each keeping the vertex order
    of ``xy`` (upstream -> downstream), ordered downstream; a LineString when one part."""
    line = shapely.LineString(xy)
    parts = [
        p
        for p in shapely.get_parts(shapely.intersection(line, county))
        if p.geom_type == "LineString" and p.length > 0
    ]
    oriented = []
    for part in parts:
        c = np.asarray(part.coords)
        s0, s1 = line.project(shapely.Point(c[0])), line.project(shapely.Point(c[-1]))
        oriented.append((min(s0, s1), c if s0 <= s1 else c[::-1]))
    oriented.sort(key=lambda t: t[0])
    lines = [shapely.LineString(c) for _, c in oriented]
    return _round(lines[0] if len(lines) == 1 else shapely.MultiLineString(lines))


def canal_xy(main: Any, outfall_vertex: int, side: int) -> np.ndarray:
    """An irrigation canal leaving the main river at the weir below ``outfall_vertex``.

    It starts on a vertex of the river (the intake), moves ``offset_m`` to one side over
    ``ramp_m`` and then follows a smoothed copy of the river down the valley.
    """
    c = CANAL
    s = main.chainage - main.chainage[outfall_vertex]
    sel = np.flatnonzero(
        (s >= c["intake_below_outfall_m"]) & (s <= c["intake_below_outfall_m"] + c["length_m"])
    )
    smooth = gaussian_filter1d(main.xy, c["smooth_m"] / 20.0, axis=0, mode="nearest")
    d = np.gradient(smooth, axis=0)
    d /= np.hypot(*d.T)[:, None]
    normal = side * np.c_[-d[:, 1], d[:, 0]]
    ramp = np.clip((s[sel] - s[sel[0]]) / c["ramp_m"], 0.0, 1.0)
    weight = 0.5 - 0.5 * np.cos(np.pi * ramp)  # leaves the river smoothly
    base = main.xy[sel] * (1 - weight[:, None]) + smooth[sel] * weight[:, None]
    xy = base + normal[sel] * (c["offset_m"] * weight)[:, None]
    line = shapely.simplify(shapely.LineString(xy), 2.0)
    out = np.asarray(line.coords)
    out[0] = main.xy[sel[0]]  # exactly on the river
    return out


def _chainage(xy: np.ndarray) -> np.ndarray:
    return np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]


def _nearest_vertex(xy: np.ndarray, point: shapely.Point) -> np.ndarray:
    return xy[np.argmin(np.hypot(*(xy - np.asarray(point.coords[0])).T))]


def split_at_main(xy: np.ndarray, main_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A tributary that meanders across the main river before its confluence.

    Water meets the main river where the tributary first reaches it, so the tributary ends
    there (on the main river's nearest vertex); the part after its last crossing, which
    runs beside the main river to the model's confluence, is returned as a side channel
    leaving and rejoining the main river (None when the tributary never crosses it).
    """
    line, main = shapely.LineString(xy), shapely.LineString(main_xy)
    hits = shapely.get_parts(shapely.intersection(line, main))
    inner = sorted(a for a in (line.project(h) for h in hits) if a < line.length - 1.0)
    if not inner:
        return xy, None
    s, first, last = _chainage(xy), inner[0], inner[-1]
    head = np.vstack([xy[s < first - 10.0], _nearest_vertex(main_xy, line.interpolate(first))])
    tail = np.vstack([_nearest_vertex(main_xy, line.interpolate(last)), xy[s > last + 10.0]])
    return head, tail


def end_at_first_stream(xy: np.ndarray, streams: Sequence[np.ndarray]) -> np.ndarray:
    """Cut a canal where it first meets one of ``streams``: its tail water drains into it
    there, and the canal ends on that stream's nearest vertex (no line crosses another)."""
    canal = shapely.LineString(xy)
    first = None
    for stream in streams:
        for hit in shapely.get_parts(shapely.intersection(canal, shapely.LineString(stream))):
            along = canal.project(hit)
            if along > 0 and (first is None or along < first[0]):
                first = (along, _nearest_vertex(stream, hit))
    if first is None:
        return xy
    return np.vstack([xy[_chainage(xy) < first[0] - 20.0], first[1]])


def river_layers(
    rivers: Sequence[Any], enterprises: Sequence[Any], county: shapely.Geometry
) -> dict[str, gpd.GeoDataFrame]:
    """Layers ``rivers`` (rivers, side channels and canals in flow direction) and
    ``outfalls``."""
    main, e01 = rivers[0], enterprises[0]
    rows = [(RIVER_IDS[0], main.name, "河流", main.xy)]
    side_channels = []
    for rid, r in zip(RIVER_IDS[1:], rivers[1:], strict=True):
        head, tail = split_at_main(r.xy, main.xy)
        rows.append((rid, r.name, "河流", head))
        if tail is not None:
            side_channels.append(tail)
    for k, tail in enumerate(side_channels, start=1):  # 清江汊流, 清江汊流2 …
        name = f"{main.name}汊流{k if k > 1 else ''}"
        rows.append((f"R{len(rivers) + k:02d}", name, "河流", tail))
    streams = [r[3] for r in rows[1:]]
    rows += [
        (cid, name, "灌渠", end_at_first_stream(canal_xy(main, e01.vertex, side), streams))
        for cid, name, side in CANALS
    ]
    lines = gpd.GeoDataFrame(
        {
            "河流编号": [r[0] for r in rows],
            "名称": [r[1] for r in rows],
            "类型": [r[2] for r in rows],
        },
        geometry=[clip_in_flow_direction(r[3], county) for r in rows],
        crs=CRS,
    )
    outfalls = gpd.GeoDataFrame(
        {
            "企业编号": [f"E{k:02d}" for k in range(1, len(enterprises) + 1)],
            "河流编号": [RIVER_IDS[e.river] for e in enterprises],
        },
        geometry=[shapely.Point(rivers[e.river].xy[e.vertex]) for e in enterprises],
        crs=CRS,
    )
    return {"rivers": lines, "outfalls": outfalls}


# --------------------------------------------------------------------------- grids
def county_grid(county: shapely.Geometry, cell: float = GRID_M) -> tuple[np.ndarray, ...]:
    """Cell centres (rows north -> south) of a ``cell`` m grid over the county, the
    raster transform and a mask of the centres inside the county."""
    x0, y0, x1, y1 = county.bounds
    x0, y1 = np.floor(x0 / cell) * cell, np.ceil(y1 / cell) * cell
    nx, ny = int(np.ceil((x1 - x0) / cell)), int(np.ceil((y1 - y0) / cell))
    gx, gy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * cell, y1 - (np.arange(ny) + 0.5) * cell)
    inside = shapely.contains_xy(county, gx, gy)
    return gx, gy, Affine(cell, 0.0, x0, 0.0, -cell, y1), inside


def polygonise(mask: np.ndarray, transform: Affine, county: shapely.Geometry) -> Any:
    """Cells where ``mask`` holds, as one (Multi)Polygon clipped to the county."""
    shapes = rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform)
    polys = [shapely.geometry.shape(g) for g, v in shapes if v == 1]
    if not polys:
        return shapely.MultiPolygon()
    union = shapely.coverage_union_all(polys)
    return _round(shapely.intersection(union, county))


# --------------------------------------------------------------------------- geology
def geology_layer(kw: np.ndarray, transform: Affine, county: shapely.Geometry) -> gpd.GeoDataFrame:
    """Carbonate (karst weight ``kw`` >= 0.5 on the county grid) and clastic rock polygons
    tiling the county."""
    karst = kw >= KARST_WEIGHT_MIN
    polys = shapely.get_parts(polygonise(karst, transform, county.buffer(GRID_M)))
    polys = shapely.make_valid(shapely.simplify(polys, GEOLOGY_SIMPLIFY_M))
    carbonate = _round(shapely.intersection(shapely.union_all(polys), county))
    carbonate = _polygons(carbonate)
    clastic = _polygons(_round(shapely.difference(county, carbonate)))
    parts = [(p, True) for p in shapely.get_parts(carbonate)]
    parts += [(p, False) for p in shapely.get_parts(clastic)]
    parts = [(p, k) for p, k in parts if p.area >= GRID_M**2]  # no slivers
    parts.sort(key=lambda t: (not t[1], -t[0].area))
    return gpd.GeoDataFrame(
        {
            "编号": [f"G{i:03d}" for i in range(1, len(parts) + 1)],
            "岩性": ["碳酸盐岩" if k else "碎屑岩" for _, k in parts],
            "岩溶": ["是" if k else "否" for _, k in parts],
            "土壤类型": ["石灰土" if k else "红壤" for _, k in parts],
        },
        geometry=[p for p, _ in parts],
        crs=CRS,
    )


def _polygons(geom: Any) -> Any:
    """The polygonal parts of ``geom`` as one MultiPolygon."""
    parts = [
        p
        for p in shapely.get_parts(shapely.make_valid(geom))
        if p.geom_type in ("Polygon", "MultiPolygon")
    ]
    return shapely.MultiPolygon([q for p in parts for q in shapely.get_parts(p)])


# --------------------------------------------------------------------------- wind
def wind_rose_table() -> pd.DataFrame:
    """The literal :data:`WIND_ROSE` as text cells (frequencies sum to 100.0 %)."""
    total = sum(f for _, f, _ in WIND_ROSE)
    if abs(total - 100.0) > 1e-9:
        raise RuntimeError(f"WIND_ROSE sums to {total} %")
    return pd.DataFrame(
        {
            "风向": [d for d, _, _ in WIND_ROSE],
            "频率": [f"{f:.1f}" for _, f, _ in WIND_ROSE],
            "平均风速": [f"{v:.1f}" for _, _, v in WIND_ROSE],
        }
    )


# --------------------------------------------------------------------------- truth
def added_cd(
    model: Any, x: np.ndarray, y: np.ndarray, kw: np.ndarray | None = None
) -> pd.DataFrame:
    """Cd added by each cause (mg/kg): ``E01``-``E06``, ``IRR`` and ``KARST`` (background
    minus the red-soil background of the same site), plus ``background`` and
    ``karst_weight``."""
    kw = model.karst_weight(x, y) if kw is None else kw
    parts = model.cd_parts(x, y, kw)
    out = pd.DataFrame({k: v for k, v in parts.items() if k not in ("background", "red_soil")})
    out["KARST"] = parts["background"] - parts["red_soil"]
    out["background"] = parts["background"]
    out["karst_weight"] = kw
    return out


def karst_area_mask(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    parts: pd.DataFrame,
    screening_other: Sequence[float],
    ph_edges: np.ndarray,
) -> np.ndarray:
    """Karst (weight >= 0.5) whose geogenic Cd median exceeds the class-1 screening value
    of dry land (GB 15618 'other' column) at the model pH."""
    out = parts["karst_weight"].to_numpy() >= KARST_WEIGHT_MIN
    band = np.searchsorted(ph_edges, model.ph(x[out], y[out]), side="left")
    screening = np.take(np.asarray(screening_other), band)
    out[out] = parts["background"].to_numpy()[out] > screening
    return out


def cause_rows(
    model: Any, enterprises: Sequence[Any], rivers: Sequence[Any], farmland_xy: np.ndarray
) -> pd.DataFrame:
    """One row per cause: its representative farmland point and the Cd it adds there.

    Enterprise and band: the farmland point with the most Cd from that cause among the
    points where it adds at least :data:`DOMINANT_SHARE` of the added Cd. KARST: the
    farmland point with the most geogenic Cd where the karst weight is at least 0.9, no
    enterprise or band adds more than :data:`NO_SOURCE_MG_KG` and no river is within
    :data:`KARST_OFF_RIVER_M` (a karst-depression field, not a valley downstream of a plant).
    """
    parts = added_cd(model, farmland_xy[:, 0], farmland_xy[:, 1])
    river_xy = np.concatenate([r.xy for r in rivers])
    off_river = cKDTree(river_xy).query(farmland_xy)[0] >= KARST_OFF_RIVER_M
    causes = [f"E{k:02d}" for k in range(1, len(enterprises) + 1)] + ["IRR", "KARST"]
    total = parts[causes].to_numpy().sum(axis=1)
    sources = parts[causes[:-1]].to_numpy().sum(axis=1)
    rows = []
    for cause in causes:
        if cause == "KARST":
            ok = (sources < NO_SOURCE_MG_KG) & (parts["karst_weight"].to_numpy() >= 0.9)
            ok &= off_river
        else:
            ok = parts[cause].to_numpy() >= DOMINANT_SHARE * total
        score = np.where(ok, parts[cause].to_numpy(), -np.inf)
        i = int(np.argmax(score))
        rows.append(
            {
                "cause_id": cause,
                "x": farmland_xy[i, 0],
                "y": farmland_xy[i, 1],
                "added_cd_mg_kg": parts[cause].iloc[i],
                **_describe(cause, enterprises, rivers),
            }
        )
    out = pd.DataFrame(rows)
    return out[
        [
            "cause_id",
            "cause_type",
            "enterprise_id",
            "x",
            "y",
            "added_cd_mg_kg",
            "description_zh",
            "description_en",
        ]
    ]


def _describe(cause: str, enterprises: Sequence[Any], rivers: Sequence[Any]) -> dict[str, str]:
    if cause == "IRR":
        e = enterprises[0]
        return {
            "cause_type": "irrigation",
            "enterprise_id": "E01",
            "description_zh": f"{e.name}下游清江灌区：含镉废水经左右干渠进入农田",
            "description_en": "irrigation district below the smelter E01: Cd carried by "
            "canal water (C01, C02) into the fields along the main river",
        }
    if cause == "KARST":
        return {
            "cause_type": "geogenic",
            "enterprise_id": "",
            "description_zh": "岩溶区碳酸盐岩成土的地质高背景镉，无企业来源，铅锌砷仅略高",
            "description_en": "geogenic Cd of soils on karst limestone: background Cd about "
            "doubled, Pb/Zn/As only mildly raised, no enterprise nearby",
        }
    k = int(cause[1:]) - 1
    e = enterprises[k]
    river = rivers[e.river].name
    return {
        "cause_type": "enterprise_plume",
        "enterprise_id": cause,
        "description_zh": f"{e.name}排污沿{river}向下游扩散的镉污染羽",
        "description_en": f"Cd plume of the {INDUSTRY_EN[e.industry]} {cause}, stretched "
        f"downstream along {river} ({RIVER_IDS[e.river]})",
    }


def area_rows(
    model: Any,
    grid: tuple[np.ndarray, ...],
    county: shapely.Geometry,
    causes: Sequence[str],
    screening_other: Sequence[float],
    ph_edges: np.ndarray,
) -> gpd.GeoDataFrame:
    """Per cause the county area where it adds >= :data:`AREA_CD_MG_KG` Cd (KARST: karst
    whose geogenic Cd median exceeds the dry-land screening value), on the county grid
    (``gx, gy, transform, inside, kw``)."""
    gx, gy, transform, inside, kw = grid
    x, y = gx[inside], gy[inside]
    parts = added_cd(model, x, y, kw[inside])
    karst = karst_area_mask(model, x, y, parts, screening_other, ph_edges)
    rows, geoms = [], []
    for cause in causes:
        hit = karst if cause == "KARST" else parts[cause].to_numpy() >= AREA_CD_MG_KG
        mask = np.zeros(gx.shape, bool)
        mask[inside] = hit
        rows.append(
            {
                "cause_id": cause,
                "criterion": (
                    "karst weight >= 0.5 and geogenic Cd median > class-1 "
                    "screening value of dry land at the model pH"
                )
                if cause == "KARST"
                else f"added Cd >= {AREA_CD_MG_KG} mg/kg",
            }
        )
        geoms.append(polygonise(mask, transform, county))
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS)


def source_truth(
    model: Any,
    enterprises: Sequence[Any],
    rivers: Sequence[Any],
    parcels: gpd.GeoDataFrame,
    county: shapely.Geometry,
    grid: tuple[np.ndarray, ...],
    screening_other: Sequence[float],
    ph_edges: np.ndarray,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """``truth/source_causes.csv`` (as text cells) and the ``areas`` layer."""
    rep = shapely.get_coordinates(shapely.point_on_surface(parcels.geometry.values))
    causes = cause_rows(model, enterprises, rivers, rep)
    areas = area_rows(model, grid, county, causes["cause_id"].tolist(), screening_other, ph_edges)
    areas.insert(1, "cause_type", causes["cause_type"].to_numpy())
    areas.insert(2, "enterprise_id", causes["enterprise_id"].to_numpy())
    text = causes.copy()
    text["x"] = [f"{v:.2f}" for v in causes["x"]]
    text["y"] = [f"{v:.2f}" for v in causes["y"]]
    text["added_cd_mg_kg"] = [f"{v:.3f}" for v in causes["added_cd_mg_kg"]]
    return text, areas


def source_frames(
    bundle: dict, screening_other: Sequence[float], ph_edges: np.ndarray
) -> dict[str, object]:
    """Relative path -> table of every file this module writes (see the module docstring)."""
    model, county = bundle["model"], bundle["county"]
    gx, gy, transform, inside = county_grid(county)
    kw = model.karst_weight(gx, gy)
    causes, areas = source_truth(
        model,
        bundle["enterprises"],
        bundle["rivers"],
        bundle["parcels"],
        county,
        (gx, gy, transform, inside, kw),
        screening_other,
        ph_edges,
    )
    return {
        "rivers.gpkg": river_layers(bundle["rivers"], bundle["enterprises"], county),
        "geology.gpkg": {"geology": geology_layer(kw, transform, county)},
        "wind_rose.csv": wind_rose_table(),
        "truth/source_causes.csv": causes,
        "truth/source_areas.gpkg": {"areas": areas},
    }


def readme_table(sources: dict, enterprises: Sequence[Any]) -> str:
    """Markdown of the causes for ``data/README.md``, with their area and plume axis."""
    causes = sources["truth/source_causes.csv"]
    areas = sources["truth/source_areas.gpkg"]["areas"].set_index("cause_id")
    head = "| cause_id | cause_type | enterprise_id | x | y | added Cd mg/kg | area km² "
    table = [head + "| plume axis ° |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in causes.itertuples():
        axis = "–"
        if r.enterprise_id:  # the flow direction at the outfall, as a bearing (toward)
            flow = enterprises[int(r.enterprise_id[1:]) - 1].flow
            axis = f"{np.degrees(np.arctan2(flow[0], flow[1])) % 360:.0f}"
        table.append(
            f"| {r.cause_id} | {r.cause_type} | {r.enterprise_id or '–'} | {r.x} | {r.y} "
            f"| {r.added_cd_mg_kg} | {areas.geometry[r.cause_id].area / 1e6:.2f} | {axis} |"
        )
    note = (
        "Plume axis: the river's flow direction at the outfall as a bearing (degrees "
        "clockwise from north, the way the plume points); `IRR` follows 清江 below E01."
    )
    return "\n".join(table) + "\n\n" + note
